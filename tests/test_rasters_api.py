"""Rasters over HTTP and the CLI: GeoTIFF uploads, zonal statistics stored as a dataset with
their lineage, and analyses exported as Cloud-Optimized GeoTIFFs.

References: exactextract run here on the real Ötztal DEM of the mirror (coverage-weighted
means) and rasterio's own reading of the files; rio-cogeo's ``cog_validate`` (GDAL's COG
layout rules) and ``rasterio.sample`` at region interiors against the analysis's z-scores;
the SHA-256 of the bytes sent, computed here with hashlib.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from fastapi.testclient import TestClient
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import shape

from geo.boundaries import regions
from geo.settings import Settings
from geo.store import Store
from tests.auth import headers

REGIONS = ["AT332", "AT334", "ITH10"]  # the NUTS-3 regions the Ötztal DEM covers


@pytest.fixture(scope="module")
def service(
    settings: Settings, demo_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Settings]]:
    from services.app import create_app

    local = settings.model_copy(update={"raster_dir": tmp_path_factory.mktemp("rasters")})
    with TestClient(create_app(local), headers=headers(local)) as client:
        yield client, local


@pytest.fixture(scope="module")
def dem(settings: Settings) -> Path:
    assert settings.data_mirror is not None
    return settings.data_mirror / "rasters" / "srtm_oetztal_alps.tif"


def upload(client: TestClient, name: str, content: bytes, **kw: Any) -> Any:
    return client.post("/rasters", files={"file": (name, content, "image/tiff")}, **kw)


def test_raster_upload_and_zonal_dataset(service: Any, dem: Path, demo_store: Store) -> None:
    client, settings = service
    content = dem.read_bytes()
    resp = upload(client, "oetztal.tif", content)
    assert resp.status_code == 201, resp.text
    raster = resp.json()
    with rasterio.open(dem) as ds:
        assert raster["info"]["crs"] == "EPSG:4326" == ds.crs.to_string()
        assert (raster["info"]["width"], raster["info"]["height"]) == (ds.width, ds.height)
    assert raster["sha256"] == hashlib.sha256(content).hexdigest()
    assert client.get(f"/rasters/{raster['id']}").json() == raster

    body = {
        "raster": raster["id"],
        "name": "elevation_oetztal",
        "area": ",".join(REGIONS),
        "stats": ["mean", "count", "above"],
        "thresholds": [2500],
        "prefix": "ELEV",
        "unit": "m",
        "year": 2000,
    }
    resp = client.post("/datasets/from-raster", json=body)
    assert resp.status_code == 201, resp.text
    obs = demo_store.observations("elevation_oetztal", ["ELEV_MEAN"]).set_index("geo")["value"]

    from exactextract import exact_extract

    layer = regions(settings, 3, REGIONS)
    with rasterio.open(dem) as ds:
        frame = layer.to_crs(ds.crs).reset_index(drop=True)
    ref = exact_extract(str(dem), frame, ["mean"], output="pandas")
    expected = pd.Series(ref["mean"].to_numpy(), index=layer.index)
    np.testing.assert_allclose(obs.loc[REGIONS], expected.loc[REGIONS], rtol=1e-10)
    above = demo_store.observations("elevation_oetztal", ["ELEV_ABOVE_2500"])["value"]
    assert ((above >= 0) & (above <= 1)).all() and above.max() > 0.3

    lineage = client.get("/datasets/elevation_oetztal/versions").json()[-1]["report"]["lineage"]
    assert lineage["sha256"] == raster["sha256"] and lineage["raster"] == "oetztal.tif"
    assert lineage["mode"] == "fraction" and lineage["thresholds"] == [2500]


def test_bad_rasters_are_refused(service: Any, dem: Path, settings: Settings) -> None:
    client, local = service
    resp = upload(client, "table.tif", b"geo,time,value\nAT332,2020,1\n")
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "table.tif" in resp.json()["detail"]
    truncated = dem.read_bytes()[:200_000]
    resp = upload(client, "cut.tif", truncated)
    assert resp.status_code == 422 and "cut.tif" in resp.json()["detail"]
    with rasterio.open(dem) as ds:  # the same pixels without a CRS
        data, profile = ds.read(), ds.profile
    profile.pop("crs")
    raw = io.BytesIO()
    with rasterio.MemoryFile() as mem:
        with mem.open(**profile) as out:
            out.write(data)
        raw.write(mem.read())
    resp = upload(client, "nocrs.tif", raw.getvalue())
    assert resp.status_code == 422 and "CRS" in resp.json()["detail"]
    assert upload(client, "x.tif", b"II*\0", headers={"Authorization": ""}).status_code == 401
    assert client.get("/rasters/" + "0" * 32).status_code == 404
    assert client.get("/rasters/..%2F..%2Fetc").status_code == 404
    assert not list(local.raster_dir.glob("*.part"))


@pytest.fixture(scope="module")
def analysis(service: Any) -> dict[str, Any]:
    client, _ = service
    body = {"dataset": "nama_10r_3gdp", "years": [2018], "permutations": 99, "seed": 7}
    resp = client.post("/analyses", json=body)
    assert resp.status_code in (200, 201), resp.text
    return dict(resp.json())


def test_analysis_as_cog(service: Any, analysis: dict[str, Any], tmp_path: Path) -> None:
    client, _ = service
    aid = analysis["id"]
    resp = client.get(f"/analyses/{aid}/surface.tif", params={"resolution_m": 2000})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("image/tiff")
    path = tmp_path / "surface.tif"
    path.write_bytes(resp.content)
    assert cog_validate(str(path), quiet=True)[:2] == (True, [])
    stats = client.get(f"/analyses/{aid}/regions.geojson").json()["features"]
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 3035 and ds.count == 3 and ds.res == (2000.0, 2000.0)
        assert ds.overviews(1)
        frame = gpd.GeoDataFrame(
            [f["properties"] for f in stats],
            geometry=[shape(f["geometry"]) for f in stats],
            crs=4326,
        ).to_crs(3035)
        big = frame[frame.area > 2e9].dropna(subset=["z"]).head(10)
        points = [p.coords[0] for p in big.geometry.representative_point()]
        sampled = np.array([v[0] for v in ds.sample(points, indexes=1)])
    np.testing.assert_allclose(sampled, big["z"].to_numpy(), rtol=1e-6)
    kde = client.get(f"/analyses/{aid}/surface.tif", params={"kind": "kde"})
    assert kde.status_code == 200
    (tmp_path / "kde.tif").write_bytes(kde.content)
    assert cog_validate(str(tmp_path / "kde.tif"), quiet=True)[:2] == (True, [])
    page = client.get(f"/maps/analyses/{aid}", headers={"accept": "text/html"}).text
    assert f"/analyses/{aid}/surface.tif?" in page and "GeoTIFF (COG)" in page
    assert client.get(f"/analyses/{aid}/surface.tif", params={"resolution_m": 1}).status_code == 422


def test_cli_exports_a_cog(
    service: Any, analysis: dict[str, Any], settings: Settings, tmp_path: Path, monkeypatch: Any
) -> None:
    """``alpclusters export ID --format cog`` writes the same surface as the API."""
    from typer.testing import CliRunner

    from services.cli import app

    client, _ = service
    monkeypatch.setenv("ALPCLUSTERS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ALPCLUSTERS_DATA_MIRROR", str(settings.data_mirror))
    monkeypatch.setenv("ALPCLUSTERS_ALLOW_DOWNLOAD", "false")
    out = tmp_path / "cli.tif"
    args = ["export", analysis["id"], "--format", "cog", "-o", str(out), "--resolution-m", "2000"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert cog_validate(str(out), quiet=True)[:2] == (True, [])
    api = client.get(f"/analyses/{analysis['id']}/surface.tif", params={"resolution_m": 2000})
    (tmp_path / "api.tif").write_bytes(api.content)
    with rasterio.open(out) as a, rasterio.open(tmp_path / "api.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())
