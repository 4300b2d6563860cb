"""Rasters out (geo.surfaces): the analysis COG and the kernel-density surface.

References: rio-cogeo's ``cog_validate`` (GDAL's COG layout rules); rasterio reading the
file back (CRS, bands, tiling, overviews, tags); the regions' own z, class and catchment
at pixel centres well inside each region (``rasterio.sample``); the kernel sum evaluated
directly with numpy at sampled pixel centres.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rio_cogeo.cogeo import cog_validate

from geo.areas import resolve
from geo.boundaries import load_boundaries
from geo.settings import Settings
from geo.surfaces import NODATA, analysis_surface, kde_surface


@pytest.fixture(scope="module")
def analysed(settings: Settings) -> gpd.GeoDataFrame:
    """The 272 Alpine Space NUTS-3 regions with a z field, classes and two catchments."""
    layer = load_boundaries(settings)
    ids = resolve(settings, layer, "alpine-space", 3)
    frame = layer.loc[ids, ["geometry"]].copy()
    centre = frame.to_crs(3035).centroid
    frame["z"] = (centre.x - centre.x.mean()) / 1e5 + np.sin(centre.y / 5e4)
    frame["bin"] = np.clip(np.trunc(frame["z"]), -3, 3).astype(int)
    frame["catchment"] = np.where(frame["z"] > 2.5, "C1", np.where(frame["z"] < -3, "C2", ""))
    frame.loc[frame.index[:3], "z"] = np.nan  # regions without a value
    return frame


def interior_centres(frame: gpd.GeoDataFrame, res: float, n: int = 12) -> list[tuple]:
    """(region, pixel centre) pairs: a pixel centre at least two pixels inside a region."""
    picked = []
    for code, geom in frame.to_crs(3035).geometry.items():
        p = geom.representative_point()
        x, y = (np.floor(p.x / res) + 0.5) * res, (np.floor(p.y / res) + 0.5) * res
        centre = shapely.Point(x, y)
        if geom.contains(centre) and geom.boundary.distance(centre) > 2 * res:
            picked.append((code, (x, y)))
    step = max(1, len(picked) // n)
    return picked[::step]


def test_analysis_surface_is_a_valid_cog(analysed: gpd.GeoDataFrame, tmp_path: Path) -> None:
    surface = analysis_surface(analysed, tmp_path / "analysis.tif", resolution_m=1000)
    valid, errors, _warnings = cog_validate(str(surface.path), quiet=True)
    assert valid and errors == []
    with rasterio.open(surface.path) as ds:
        assert ds.crs.to_epsg() == 3035 and ds.count == 3 and ds.driver == "GTiff"
        assert ds.block_shapes == [(512, 512)] * 3 and ds.profile["tiled"]
        assert ds.overviews(1) and ds.nodata == NODATA
        assert ds.descriptions == ("gi_z", "class", "catchment")
        assert ds.res == (1000.0, 1000.0) and (ds.height, ds.width) == surface.shape
        assert ds.tags(3) == {f"CATCHMENT_{k}": v for k, v in surface.catchments.items()}
    assert set(surface.catchments.values()) == {"C1", "C2"}


def test_analysis_surface_values_at_pixel_centres(
    analysed: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    surface = analysis_surface(analysed, tmp_path / "analysis.tif", resolution_m=1000)
    number = {v: k for k, v in surface.catchments.items()} | {"": 0}
    picks = interior_centres(analysed, 1000.0)
    picks += interior_centres(analysed[analysed["catchment"] != ""], 1000.0, 4)
    picks += interior_centres(analysed.iloc[:3], 1000.0, 3)  # z missing
    with rasterio.open(surface.path) as ds:
        sampled = list(ds.sample([xy for _code, xy in picks]))
    for (code, _xy), values in zip(picks, sampled, strict=True):
        row = analysed.loc[code]
        z = np.float32(row["z"]) if np.isfinite(row["z"]) else np.float32(NODATA)
        assert values[0] == z, code
        assert values[1] == row["bin"] and values[2] == number[row["catchment"]], code
    outside = (surface.bounds[0] + 500.0, surface.bounds[1] + 500.0)  # a corner, off land
    with rasterio.open(surface.path) as ds:
        assert list(next(ds.sample([outside]))) == [NODATA] * 3


def test_kde_surface(analysed: gpd.GeoDataFrame, tmp_path: Path) -> None:
    bandwidth = 30_000.0
    surface = kde_surface(analysed, tmp_path / "kde.tif", bandwidth_m=bandwidth, resolution_m=2000)
    assert cog_validate(str(surface.path), quiet=True)[:2] == (True, [])
    keep = analysed[np.isfinite(analysed["z"])]
    centres = keep.to_crs(3035).centroid
    rng = np.random.default_rng(9)
    with rasterio.open(surface.path) as ds:
        assert ds.crs.to_epsg() == 3035 and ds.count == 1 and ds.tags()["KERNEL"] == "gaussian"
        rows, cols = rng.integers(0, ds.height, 20), rng.integers(0, ds.width, 20)
        xy = [ds.xy(r, c) for r, c in zip(rows, cols, strict=True)]
        sampled = np.array([v[0] for v in ds.sample(xy)])
    for (x, y), value in zip(xy, sampled, strict=True):
        d2 = (centres.x - x) ** 2 + (centres.y - y) ** 2
        kernel = np.exp(-d2 / (2 * bandwidth**2)) / (2 * np.pi * bandwidth**2)
        expected = float((keep["z"] * kernel).sum() * 1e6)
        assert value == pytest.approx(expected, rel=1e-5, abs=1e-9)
