"""Alembic migrations of the store (see :func:`geo.store.migrate`)."""
