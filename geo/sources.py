"""The data-source mechanism: a local mirror first, then the official HTTPS download.

The manifest ``data/nuts/sources.toml`` names every file. :func:`locate` returns a local
path for an entry, downloading it into the cache when no mirror holds it. Entries with an
empty ``url`` are mirror-only (files that have no official download, such as the mirror's
CSV exports of the NUTS change sheets).
"""

from __future__ import annotations

import gzip
import logging
import shutil
import tempfile
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from geo.errors import DataSourceError, NotFoundError
from geo.settings import Settings

log = logging.getLogger(__name__)

Kind = Literal["boundaries", "eurostat", "nuts_changes"]


@dataclass(frozen=True)
class Source:
    """One manifest entry."""

    kind: str
    key: str
    url: str
    licence: str
    mirror: str | None = None
    nuts_year: int | None = None
    scale: str | None = None
    title: str | None = None
    from_year: int | None = None


def manifest(settings: Settings) -> dict[tuple[str, str], Source]:
    """Read ``sources.toml`` into :class:`Source` entries keyed by ``(kind, key)``."""
    path = settings.nuts_dir / "sources.toml"
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    return {
        (kind, key): Source(kind=kind, key=key, **entry)
        for kind, entries in raw.items()
        for key, entry in entries.items()
    }


def source(settings: Settings, kind: Kind, key: str) -> Source:
    """Return the manifest entry ``kind``/``key`` or raise with the valid keys."""
    entries = manifest(settings)
    if (kind, key) not in entries:
        valid = sorted(k for (kd, k) in entries if kd == kind)
        raise NotFoundError(f"no {kind} source {key!r} in sources.toml; valid: {valid}")
    return entries[(kind, key)]


def locate(settings: Settings, src: Source) -> Path:
    """Return a local file for ``src``: the mirror copy, a cached download, or a new download.

    Raises
    ------
    DataSourceError
        When neither the mirror nor the download can deliver the file.
    """
    if settings.data_mirror is not None and src.mirror:
        candidate = settings.data_mirror / src.mirror
        if candidate.is_file():
            return candidate
        log.info("mirror %s has no %s", settings.data_mirror, src.mirror)
    if not src.url:
        raise DataSourceError(
            f"{src.kind} {src.key!r} is mirror-only and the mirror {settings.data_mirror} "
            f"lacks {src.mirror}"
        )
    target = settings.cache_dir / "downloads" / f"{src.kind}-{src.key}{_suffix(src.url)}"
    if target.is_file():
        return target
    if not settings.allow_download:
        raise DataSourceError(
            f"{src.kind} {src.key!r} is not in the mirror {settings.data_mirror} "
            "and downloads are disabled (ALPCLUSTERS_ALLOW_DOWNLOAD=false)"
        )
    return download(src.url, target, settings.download_timeout)


def download(url: str, target: Path, timeout: float) -> Path:
    """Download ``url`` to ``target`` atomically, un-gzipping a gzip stream."""
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s", url)
    try:
        with (
            urllib.request.urlopen(url, timeout=timeout) as resp,
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp,
        ):
            shutil.copyfileobj(resp, tmp)
    except OSError as exc:
        raise DataSourceError(f"download of {url} failed: {exc}") from exc
    tmp_path = Path(tmp.name)
    with tmp_path.open("rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    if gzipped:
        plain = tmp_path.with_suffix(".plain")
        with gzip.open(tmp_path, "rb") as src, plain.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp_path.unlink()
        tmp_path = plain
    tmp_path.replace(target)
    return target


def _suffix(url: str) -> str:
    path = url.split("?", 1)[0]
    if path.endswith(".geojson"):
        return ".geojson"
    if "format=SDMX-CSV" in url:
        return ".csv"
    return Path(path).suffix or ".bin"
