"""Alembic environment: migrate the connection handed over by :func:`geo.store.migrate`,
or the database named by ``sqlalchemy.url`` when run from the ``alembic`` command."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from geo.schema import metadata


def run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            _migrate(conn)
        return
    _migrate(connection)


def _migrate(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
    )
    with context.begin_transaction():
        context.run_migrations()


run()
