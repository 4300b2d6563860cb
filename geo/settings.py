"""Typed settings, read from ``ALPCLUSTERS_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Configuration of the library, the CLI and the service.

    Every field can be set with an environment variable named ``ALPCLUSTERS_<FIELD>``,
    for example ``ALPCLUSTERS_DATA_MIRROR=../shared/data``.
    """

    model_config = SettingsConfigDict(
        env_prefix="ALPCLUSTERS_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        env_ignore_empty=True,
    )

    data_mirror: Path | None = Field(
        default=None,
        description="Local mirror directory laid out as shared/data (PROVENANCE.md). "
        "Tried before the official GISCO and Eurostat downloads.",
    )
    nuts_dir: Path = Field(
        default=REPO_ROOT / "data" / "nuts",
        description="Directory holding sources.toml, areas.toml and the download cache.",
    )
    allow_download: bool = Field(
        default=True, description="Fall back to the official HTTPS downloads."
    )
    download_timeout: float = Field(default=60.0, gt=0)
    nuts_year: Literal[2021, 2024] = Field(default=2021, description="NUTS version in use.")
    nuts_scale: Literal["01M", "03M", "10M", "20M"] = Field(
        default="03M", description="GISCO generalisation scale of the boundaries."
    )
    database_url: str = Field(
        default=f"sqlite:///{REPO_ROOT / 'var' / 'alpclusters.db'}",
        description="SQLAlchemy URL of the indicator and analysis store.",
    )
    scheduler: str = Field(
        default="threads",
        description="'threads', 'sync' or the address of a dask.distributed scheduler "
        "(tcp://host:8786).",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    tiles: str | None = Field(
        default=None,
        description="Basemap tile URL template; none draws a plain background with "
        "country outlines, which works offline.",
    )
    tiles_attribution: str = ""
    geojson_precision: int = Field(
        default=5, ge=0, le=9, description="Decimal places of GeoJSON coordinates."
    )
    max_permutations: int = Field(default=99_999, ge=0)
    background_work: float = Field(
        default=5e7,
        gt=0,
        description="Series x regions x permutations above which POST /analyses answers 202 "
        "and computes in the background.",
    )

    upload_dir: Path = Field(
        default=REPO_ROOT / "var" / "uploads",
        description="Where uploaded files wait while they are checked (deleted afterwards).",
    )
    max_upload_bytes: int = Field(
        default=1 << 30, gt=0, description="Largest accepted upload file, in bytes."
    )
    max_upload_rows: int = Field(
        default=20_000_000, gt=0, description="Most data rows accepted in one upload."
    )
    max_upload_columns: int = Field(
        default=10_000, gt=0, description="Most columns accepted in one uploaded table."
    )
    max_cell_chars: int = Field(
        default=1_000, gt=0, description="Longest cell (characters) accepted in a column read."
    )
    max_unpacked_bytes: int = Field(
        default=4 << 30,
        gt=0,
        description="Largest unpacked size of an uploaded XLSX or gzip file (zip bombs).",
    )
    max_request_bytes: int = Field(
        default=1 << 20,
        gt=0,
        description="Largest request body other than a file upload (forms, JSON), in bytes.",
    )
    parse_isolated: bool = Field(
        default=True,
        description="Read uploaded files in a child process with the time and memory limits "
        "below, so that a pathological file fails alone.",
    )
    parse_timeout_s: float = Field(
        default=900.0, gt=0, description="Longest time reading and checking one upload may take."
    )
    parse_memory_bytes: int = Field(
        default=6 << 30,
        gt=0,
        description="Memory (address space) reading one upload may take, beyond the service's.",
    )
    raster_dir: Path = Field(
        default=REPO_ROOT / "var" / "rasters",
        description="Where uploaded rasters are kept (POST /rasters).",
    )
    max_raster_pixels: int = Field(
        default=1_000_000_000, gt=0, description="Most pixels (width x height x bands)."
    )
    max_raster_bands: int = Field(default=64, gt=0, description="Most bands of a raster.")
    upload_background_bytes: int = Field(
        default=4 << 20,
        ge=0,
        description="Uploads larger than this are checked and stored in the background "
        "(POST /datasets answers 202 with a status URL).",
    )

    anonymous_read: bool = Field(
        default=True,
        description="Whether visitors without a credential may read datasets, analyses and "
        "maps (every write needs an API key whatever this says).",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="A bootstrap admin API key (alp_<16 hex>_<secret>), added to the 'admin' "
        "account at start, so a fresh deployment can be administered.",
    )

    rate_limit_per_minute: int = Field(
        default=600,
        ge=0,
        description="Requests per minute per API key (without one, per client address), "
        "counted by each service process; 0 turns the limit off.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Web origins allowed to call the API from a browser (CORS), e.g. "
        '["https://atlas.example.eu"]; ["*"] allows any; none by default.',
    )
    frame_ancestors: str = Field(
        default="*",
        description="Who may embed the bare maps (?embed=1) in an iframe (CSP "
        "frame-ancestors); every other page may be framed by AlpClusters only.",
    )
    hsts: bool = Field(
        default=False,
        description="Send Strict-Transport-Security (only behind HTTPS).",
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.tiles and not self.tiles_attribution:
            raise ValueError("ALPCLUSTERS_TILES needs ALPCLUSTERS_TILES_ATTRIBUTION as well")
        if self.data_mirror is not None and not self.data_mirror.is_dir():
            raise ValueError(f"ALPCLUSTERS_DATA_MIRROR {self.data_mirror} is not a directory")
        if not self.data_mirror and not self.allow_download:
            raise ValueError("no data source: set ALPCLUSTERS_DATA_MIRROR or allow downloads")
        return self

    @property
    def cache_dir(self) -> Path:
        """Where downloaded and converted layers are cached (git-ignored)."""
        return self.nuts_dir / "cache"
