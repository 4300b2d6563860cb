"""Versioned datasets: immutable versions with provenance, observations stored as slices.

Every existing dataset becomes version 1 of itself, its observations packed into slices
(one row per indicator and year); analyses record the version they used.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create_tables()
    conn = op.get_bind()
    old = conn.execute(sa.text("SELECT * FROM datasets")).mappings().all()
    for row in old:
        version_id = _copy_version(conn, row)
        _copy_observations(conn, row["id"], version_id)
    op.drop_index("ix_observations_series", table_name="observations")
    op.drop_table("observations")
    op.drop_table("indicators")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("nuts_year")
        batch.drop_column("content_hash")
        batch.drop_column("n_rows")
        batch.add_column(sa.Column("owner", sa.Text, nullable=False, server_default=""))
    with op.batch_alter_table("analyses") as batch:
        batch.add_column(sa.Column("dataset_version", sa.Integer, nullable=True))
    conn.execute(
        sa.text(
            "UPDATE analyses SET dataset_version = 1 "
            "WHERE dataset_id IN (SELECT dataset_id FROM dataset_versions)"
        )
    )


def _create_tables() -> None:
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "dataset_id",
            sa.String(128),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("uploader", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("nuts_year", sa.Integer, nullable=False),
        sa.Column("source_nuts_year", sa.Integer, nullable=True),
        sa.Column("file_name", sa.Text, nullable=False, server_default=""),
        sa.Column("format", sa.String(32), nullable=False, server_default=""),
        sa.Column("report", sa.JSON, nullable=True),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_version"),
        sa.UniqueConstraint("dataset_id", "content_hash", name="uq_dataset_versions_content"),
    )
    op.create_table(
        "version_indicators",
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("code", sa.String(256), primary_key=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("unit", sa.String(64), nullable=False, server_default=""),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "slices",
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("indicator", sa.String(256), primary_key=True),
        sa.Column("time", sa.Integer, primary_key=True),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("n_values", sa.Integer, nullable=False),
        sa.Column("geos", sa.Text, nullable=False),
        sa.Column("vals", sa.LargeBinary, nullable=False),
        sa.Column("flags", sa.Text, nullable=True),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("dataset_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("file_name", sa.Text, nullable=False, server_default=""),
        sa.Column("uploader", sa.Text, nullable=False, server_default=""),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def _copy_version(conn: sa.Connection, row: sa.RowMapping) -> int:
    """Version 1 of an existing dataset, with its indicators; returns the version's id."""
    version_id = conn.execute(
        sa.text(
            "INSERT INTO dataset_versions (dataset_id, version, content_hash, uploader, "
            "created_at, n_rows, nuts_year, file_name, format) VALUES (:id, 1, :hash, "
            "'', :created, :n_rows, :nuts_year, '', '') RETURNING id"
        ),
        {
            "id": row["id"],
            "hash": row["content_hash"],
            "created": row["created_at"],
            "n_rows": row["n_rows"],
            "nuts_year": row["nuts_year"],
        },
    ).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO version_indicators (version_id, code, label, unit, position) "
            "SELECT :vid, code, label, unit, position FROM indicators WHERE dataset_id = :id"
        ),
        {"vid": version_id, "id": row["id"]},
    )
    return int(version_id)


def _copy_observations(conn: sa.Connection, dataset_id: str, version_id: int) -> None:
    """Pack a dataset's observation rows into slices (the layout of this revision)."""
    obs = pd.DataFrame(
        conn.execute(
            sa.text(
                "SELECT indicator, time, geo, value, flag FROM observations "
                "WHERE dataset_id = :id ORDER BY indicator, time, geo"
            ),
            {"id": dataset_id},
        ).all(),
        columns=["indicator", "time", "geo", "value", "flag"],
    )
    rows = []
    for (indicator, time), part in obs.groupby(["indicator", "time"], sort=False):
        values = pd.to_numeric(part["value"], errors="coerce").to_numpy(dtype="<f8")
        flags = part["flag"].fillna("")
        rows.append(
            {
                "version_id": version_id,
                "indicator": indicator,
                "time": int(time),
                "n_rows": len(part),
                "n_values": int(np.isfinite(values).sum()),
                "geos": ",".join(part["geo"]),
                "vals": values.tobytes(),
                "flags": ",".join(flags) if flags.str.len().any() else None,
            }
        )
    if rows:
        conn.execute(
            sa.text(
                "INSERT INTO slices (version_id, indicator, time, n_rows, n_values, geos, "
                "vals, flags) VALUES (:version_id, :indicator, :time, :n_rows, :n_values, "
                ":geos, :vals, :flags)"
            ),
            rows,
        )


def downgrade() -> None:
    raise NotImplementedError("versioned datasets cannot be folded back into one table")
