"""The store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Alembic migrations in :mod:`geo.migrations` build this schema step by step; a test checks
that the migrated database and these definitions agree.

Observations are stored as *slices*: one row per dataset version, indicator and year,
holding the region codes, the float64 values (little-endian bytes) and the Eurostat flags
of that slice. An analysis reads whole slices (its data cube is made of them), a version
of ten million observations is a few thousand rows, and PostgreSQL loads them with COPY.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("source", sa.Text, nullable=False, server_default=""),
    sa.Column("licence", sa.Text, nullable=False, server_default=""),
    sa.Column("owner", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
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
    sa.Column("nuts_year", sa.Integer, nullable=False),  # the boundaries the codes match
    sa.Column("source_nuts_year", sa.Integer, nullable=True),  # as uploaded, when detected
    sa.Column("file_name", sa.Text, nullable=False, server_default=""),
    sa.Column("format", sa.String(32), nullable=False, server_default=""),
    sa.Column("report", sa.JSON, nullable=True),
    sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_version"),
    sa.UniqueConstraint("dataset_id", "content_hash", name="uq_dataset_versions_content"),
)

version_indicators = sa.Table(
    "version_indicators",
    metadata,
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

slices = sa.Table(
    "slices",
    metadata,
    sa.Column(
        "version_id",
        sa.Integer,
        sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("indicator", sa.String(256), primary_key=True),
    sa.Column("time", sa.Integer, primary_key=True),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("n_values", sa.Integer, nullable=False),  # rows with a value (not missing)
    sa.Column("geos", sa.Text, nullable=False),  # region codes joined by ","
    sa.Column("vals", sa.LargeBinary, nullable=False),  # float64 little-endian, NaN = missing
    sa.Column("flags", sa.Text, nullable=True),  # flags joined by ","; NULL: no flags at all
)

analyses = sa.Table(
    "analyses",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("dataset_id", sa.String(128), nullable=False),
    sa.Column("dataset_version", sa.Integer, nullable=True),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("summary", sa.JSON, nullable=True),
    sa.Column("regions", sa.LargeBinary, nullable=True),
    sa.Column("catchments", sa.LargeBinary, nullable=True),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("progress", sa.Float, nullable=False, server_default="0"),
    # The process running it (host/boot/pid/start) and when it last said it still does.
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
)

uploads = sa.Table(
    "uploads",
    metadata,
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
    sa.Column("owner", sa.String(255), nullable=True),  # as for analyses
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),  # viewer, statistician, analyst, admin
    sa.Column("scope", sa.Text, nullable=False, server_default=""),  # NUTS prefixes, ","
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),  # the key's public prefix
    sa.Column(
        "account",
        sa.String(128),
        sa.ForeignKey("accounts.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("hash", sa.String(64), nullable=False),  # SHA-256 of the whole key
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.Text, nullable=False, server_default=""),
    sa.Column("content_hash", sa.String(64), nullable=True),
    sa.Column("detail", sa.JSON, nullable=True),
)
