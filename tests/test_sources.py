"""The data-source mechanism: the mirror first, then a real HTTP download, then the cache.

The download is exercised over HTTP on 127.0.0.1: a ``http.server`` serves files that are
written by code from the mirror (a GISCO-style GeoJSON and a gzip-compressed SDMX-CSV).
"""

from __future__ import annotations

import functools
import gzip
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from geo.boundaries import COLUMNS, load_boundaries
from geo.errors import DataSourceError, NotFoundError
from geo.indicators import load_eurostat
from geo.settings import Settings
from geo.sources import locate, source

COUNTRIES = ["AT", "LI", "SI"]
BOUNDARY_KEY = "2021-03M"
EUROSTAT_KEY = "nama_10r_3gdp"


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves a directory and counts requests, without logging to stderr."""

    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


class LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1 in a background thread."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(QuietHandler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests  # type: ignore[attr-defined, no-any-return]

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=10)
            self.running = False


def free_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def gisco_layer(settings: Settings) -> gpd.GeoDataFrame:
    """A few countries of the mirror's 1:3M layer, as GISCO publishes them (id, FID columns)."""
    raw = gpd.read_parquet(locate(settings, source(settings, "boundaries", BOUNDARY_KEY)))
    part = raw[raw["CNTR_CODE"].isin(COUNTRIES)].copy()
    part.insert(0, "id", part["NUTS_ID"])
    part["FID"] = part["NUTS_ID"]
    return part.reset_index(drop=True)


@pytest.fixture(scope="module")
def gdp_table(settings: Settings) -> pd.DataFrame:
    """The mirror's GDP table for a few countries, as tidy columns."""
    frame, _ = load_eurostat(settings, EUROSTAT_KEY)
    return frame[frame["cntr_code"].isin(COUNTRIES)].reset_index(drop=True)


def write_sdmx_csv_gz(table: pd.DataFrame, path: Path) -> None:
    """Write a table in Eurostat's SDMX-CSV layout, gzip-compressed."""
    sdmx = pd.DataFrame(
        {
            "DATAFLOW": "ESTAT:" + table["dataset"].str.upper() + "(1.0)",
            "LAST UPDATE": table["last_update"],
            "freq": table["freq"],
            "unit": table["unit"],
            "geo": table["geo"],
            "TIME_PERIOD": table["time"],
            "OBS_VALUE": table["value"],
            "OBS_FLAG": table["flag"],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        sdmx.to_csv(fh, index=False)


def write_sources(settings: Settings, nuts_dir: Path, base: str) -> None:
    """A sources.toml whose boundary and Eurostat URLs point at ``base``, plus areas.toml."""
    nuts_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(settings.nuts_dir / "areas.toml", nuts_dir / "areas.toml")
    b = source(settings, "boundaries", BOUNDARY_KEY)
    e = source(settings, "eurostat", EUROSTAT_KEY)
    text = (
        f'[boundaries."{b.key}"]\n'
        f"nuts_year = {b.nuts_year}\n"
        f'scale = "{b.scale}"\n'
        f'url = "{base}/gisco/NUTS_RG_{b.scale}_{b.nuts_year}_4326.geojson"\n'
        f'mirror = "{b.mirror}"\n'
        f'licence = "{b.licence}"\n\n'
        f"[eurostat.{e.key}]\n"
        f'title = "{e.title}"\n'
        f'url = "{base}/eurostat/{e.key}?format=SDMX-CSV&compressed=true"\n'
        f'mirror = "{e.mirror}"\n'
        f"nuts_year = {e.nuts_year}\n"
        f'licence = "{e.licence}"\n'
    )
    (nuts_dir / "sources.toml").write_text(text, encoding="utf-8")


def download_settings(nuts_dir: Path, **extra: object) -> Settings:
    """Settings without a mirror: downloads only, from the manifest in ``nuts_dir``."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_mirror=None,
        allow_download=True,
        download_timeout=10,
        nuts_dir=nuts_dir,
        database_url="sqlite:///:memory:",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture()
def served(
    tmp_path: Path, gisco_layer: gpd.GeoDataFrame, gdp_table: pd.DataFrame
) -> Iterator[LocalServer]:
    """A local server holding the GISCO GeoJSON and the gzip SDMX-CSV."""
    root = tmp_path / "www"
    (root / "gisco").mkdir(parents=True)
    gisco_layer.to_file(root / "gisco" / "NUTS_RG_03M_2021_4326.geojson", driver="GeoJSON")
    write_sdmx_csv_gz(gdp_table, root / "eurostat" / EUROSTAT_KEY)
    server = LocalServer(root)
    yield server
    server.stop()


@pytest.fixture()
def dl_settings(settings: Settings, served: LocalServer, tmp_path: Path) -> Settings:
    """Download-only settings whose manifest points at the local server."""
    nuts_dir = tmp_path / "nuts"
    write_sources(settings, nuts_dir, served.base)
    return download_settings(nuts_dir)


def test_mirror_is_tried_first(settings: Settings, mirror: Path, tmp_path: Path) -> None:
    """With a mirror holding the file, nothing is downloaded even if the URL is dead."""
    nuts_dir = tmp_path / "nuts"
    write_sources(settings, nuts_dir, f"http://127.0.0.1:{free_port()}")
    s = download_settings(nuts_dir).model_copy(update={"data_mirror": mirror})
    src = source(s, "boundaries", BOUNDARY_KEY)
    assert locate(s, src) == mirror / str(src.mirror)
    gdf = load_boundaries(s)
    assert len(gdf) == len(gpd.read_parquet(mirror / str(src.mirror)))
    assert not (s.cache_dir / "downloads").exists()


def test_boundaries_download_and_cache(
    dl_settings: Settings, served: LocalServer, gisco_layer: gpd.GeoDataFrame
) -> None:
    """The GeoJSON is downloaded, normalised, cached, and served from the cache afterwards."""
    gdf = load_boundaries(dl_settings)
    assert any(r.endswith(".geojson") for r in served.requests)
    assert list(gdf.columns) == [*COLUMNS, "geometry"]  # id and FID dropped
    assert set(gdf.index) == set(gisco_layer["NUTS_ID"])
    assert gdf.crs is not None and gdf.crs.to_epsg() == 4326
    assert gdf.geometry.is_valid.all()
    assert str(gdf["LEVL_CODE"].dtype) == "int8"
    expected = gisco_layer.set_index("NUTS_ID").loc[gdf.index]
    assert (gdf["NAME_LATN"].to_numpy() == expected["NAME_LATN"].to_numpy()).all()
    assert (dl_settings.cache_dir / "nuts-2021-03M.parquet").is_file()
    assert (dl_settings.cache_dir / "downloads" / "boundaries-2021-03M.geojson").is_file()

    served.stop()
    again = load_boundaries(dl_settings)
    assert list(again.index) == list(gdf.index)


def test_download_cache_is_reused_without_network(
    dl_settings: Settings, served: LocalServer
) -> None:
    """A downloaded file is located in the cache once the server is gone."""
    src = source(dl_settings, "boundaries", BOUNDARY_KEY)
    first = locate(dl_settings, src)
    served.stop()
    assert locate(dl_settings, src) == first
    assert first.is_relative_to(dl_settings.cache_dir)


def test_eurostat_download_ungzip_and_rename(
    dl_settings: Settings, served: LocalServer, gdp_table: pd.DataFrame
) -> None:
    """The gzip SDMX-CSV is downloaded, stored plain, and read with the tidy column names."""
    frame, path = load_eurostat(dl_settings, EUROSTAT_KEY)
    assert any("format=SDMX-CSV" in r for r in served.requests)
    stored = Path(path)
    assert stored.is_relative_to(dl_settings.cache_dir)
    with stored.open("rb") as fh:
        assert fh.read(2) != b"\x1f\x8b"  # un-gzipped
    assert {"dataflow", "last_update", "time", "value", "flag", "geo", "unit"} <= set(frame)
    assert not {"TIME_PERIOD", "OBS_VALUE", "OBS_FLAG", "LAST UPDATE"} & set(frame)
    assert len(frame) == len(gdp_table)
    got = frame.assign(time=frame["time"].astype(int), value=pd.to_numeric(frame["value"]))
    key = ["unit", "geo", "time"]
    merged = got.merge(gdp_table, on=key, suffixes=("_dl", "_mirror"), validate="1:1")
    assert len(merged) == len(gdp_table)
    pd.testing.assert_series_equal(
        merged["value_dl"], merged["value_mirror"], check_names=False, check_dtype=False
    )
    flags = merged["flag_mirror"].fillna("").astype(str)
    assert (merged["flag_dl"].astype(str) == flags).all()

    served.stop()
    cached, cached_path = load_eurostat(dl_settings, EUROSTAT_KEY)
    assert cached_path == path
    assert len(cached) == len(frame)


def test_server_down_and_nothing_cached(settings: Settings, tmp_path: Path) -> None:
    """No mirror, no cache and no server: a DataSourceError naming the URL."""
    nuts_dir = tmp_path / "nuts"
    base = f"http://127.0.0.1:{free_port()}"
    write_sources(settings, nuts_dir, base)
    s = download_settings(nuts_dir)
    with pytest.raises(DataSourceError, match="127.0.0.1"):
        load_boundaries(s)
    with pytest.raises(DataSourceError, match="download of"):
        load_eurostat(s, EUROSTAT_KEY)
    assert not (s.cache_dir / "nuts-2021-03M.parquet").exists()
    leftovers = list((s.cache_dir / "downloads").glob("*")) if s.cache_dir.exists() else []
    assert leftovers == []


def test_downloads_disabled_and_mirror_lacks_the_file(settings: Settings, tmp_path: Path) -> None:
    """An empty mirror with downloads disabled is a DataSourceError, not a crash."""
    nuts_dir = tmp_path / "nuts"
    write_sources(settings, nuts_dir, f"http://127.0.0.1:{free_port()}")
    empty_mirror = tmp_path / "empty-mirror"
    empty_mirror.mkdir()
    s = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_mirror=empty_mirror,
        allow_download=False,
        nuts_dir=nuts_dir,
        database_url="sqlite:///:memory:",
    )
    with pytest.raises(DataSourceError, match="downloads are disabled"):
        load_boundaries(s)
    with pytest.raises(DataSourceError, match="downloads are disabled"):
        load_eurostat(s, EUROSTAT_KEY)


def test_unknown_source_lists_the_valid_keys(settings: Settings) -> None:
    """Asking the manifest for a layer it lacks names the layers it has."""
    with pytest.raises(NotFoundError, match="2021-03M"):
        source(settings, "boundaries", "1999-99M")


def test_settings_need_a_source(tmp_path: Path) -> None:
    """Settings without a mirror and without downloads are refused."""
    with pytest.raises(ValueError, match="no data source"):
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_mirror=None,
            allow_download=False,
            nuts_dir=tmp_path,
        )


def test_http_error_is_a_data_source_error(
    settings: Settings, served: LocalServer, tmp_path: Path
) -> None:
    """A 404 from the server is a DataSourceError and leaves nothing in the cache."""
    nuts_dir = tmp_path / "nuts"
    write_sources(settings, nuts_dir, served.base + "/missing")
    s = download_settings(nuts_dir)
    with pytest.raises(DataSourceError, match="404"):
        load_boundaries(s)
    assert served.requests
    assert list((s.cache_dir / "downloads").glob("*")) == []
