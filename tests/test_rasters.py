"""Rasters in (geo.rasters): validation and zonal statistics.

References: ``rasterio.mask.mask`` per region (centre-point statistics, exactly);
exactextract on the whole raster (coverage-weighted statistics); an analytic linear ramp
and shapely's exact pixel-polygon intersections (coverage weights computed independently);
the SHA-256 of the file for the lineage. The real rasters come from the data mirror
(section 4 of PROVENANCE.md), reached through ``settings.data_mirror``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.mask
import shapely
from affine import Affine

from geo.boundaries import load_boundaries
from geo.errors import IngestError, TooLargeError
from geo.rasters import RasterLimits, validate_raster, zonal_dataset_frame, zonal_stats
from geo.settings import Settings

RASTERS = {"oetztal": "srtm_oetztal_alps.tif", "swiss": "switzerland_elev_1km_robinson.tif"}


def raster_path(settings: Settings, key: str) -> Path:
    assert settings.data_mirror is not None
    return settings.data_mirror / "rasters" / RASTERS[key]


def regions_on(settings: Settings, path: Path) -> gpd.GeoDataFrame:
    """The NUTS-3 regions that intersect the raster's valid pixels' footprint."""
    with rasterio.open(path) as ds:
        footprint = gpd.GeoSeries([shapely.box(*ds.bounds)], crs=ds.crs).to_crs(4326).iloc[0]
    layer = load_boundaries(settings)
    layer = layer[(layer["LEVL_CODE"] == 3) & layer.intersects(footprint)]
    return layer[["CNTR_CODE", "geometry"]]


def mask_reference(path: Path, regions: gpd.GeoDataFrame) -> pd.DataFrame:
    """count, mean, min, max per region from ``rasterio.mask.mask`` (all_touched=False)."""
    rows = {}
    with rasterio.open(path) as ds:
        geoms = regions.geometry.to_crs(ds.crs)
        for code, geom in geoms.items():
            try:
                data, _ = rasterio.mask.mask(ds, [geom], crop=True, filled=False)
            except ValueError:  # the shape does not overlap the raster
                rows[code] = (0, np.nan, np.nan, np.nan)
                continue
            values = data[0].compressed().astype(float)
            values = values[np.isfinite(values)]
            stats = (values.mean(), values.min(), values.max()) if len(values) else (np.nan,) * 3
            rows[code] = (len(values), *stats)
    return pd.DataFrame.from_dict(rows, orient="index", columns=["count", "mean", "min", "max"])


@pytest.fixture(scope="module", params=sorted(RASTERS), ids=sorted(RASTERS))
def real(request: pytest.FixtureRequest, settings: Settings) -> tuple[str, Path, gpd.GeoDataFrame]:
    path = raster_path(settings, request.param)
    regions = regions_on(settings, path)
    ref = mask_reference(path, regions)
    return request.param, path, regions[ref["count"] > 0]


def test_validate_real_rasters(settings: Settings) -> None:
    oetztal = validate_raster(raster_path(settings, "oetztal"), settings)
    assert (oetztal.crs, oetztal.width, oetztal.height, oetztal.count) == ("EPSG:4326", 582, 444, 1)
    assert oetztal.nodata is None and not oetztal.nan_nodata and oetztal.dtypes == ("int16",)
    assert oetztal.driver == "GTiff" and not oetztal.is_cog and oetztal.geographic
    swiss = validate_raster(raster_path(settings, "swiss"), settings)
    assert (swiss.crs, swiss.width, swiss.height) == ("ESRI:54030", 413, 240)
    assert swiss.nodata is not None and np.isnan(swiss.nodata) and swiss.nan_nodata
    assert not swiss.geographic and swiss.resolution == pytest.approx((1000.0, 1000.0))


def test_centre_statistics_equal_rasterio_mask(real: tuple[str, Path, gpd.GeoDataFrame]) -> None:
    """Centre-point statistics per NUTS-3 region against rasterio.mask.mask, region by
    region; the Robinson raster exercises the reprojection of the regions."""
    key, path, regions = real
    ref = mask_reference(path, regions)
    ours = zonal_stats(path, regions, ("count", "mean", "min", "max"), mode="centre", chunk=128)
    fraction = zonal_stats(path, regions, ("count", "mean"), chunk=128)
    exact = _exactextract_means(path, regions)
    table = pd.DataFrame(
        {
            "pixels": ref["count"].astype(int),
            "centre_ours": ours["mean"],
            "mask_ref": ref["mean"],
            "fraction_ours": fraction["mean"],
            "exactextract": exact,
        }
    )
    print(f"\nzonal mean elevation (m), {RASTERS[key]}, {len(regions)} NUTS-3 regions")
    print(table.round(4).to_string())
    np.testing.assert_array_equal(ours["count"].to_numpy(), ref["count"].to_numpy())
    np.testing.assert_allclose(ours["mean"], ref["mean"], rtol=1e-12)
    np.testing.assert_array_equal(ours[["min", "max"]].to_numpy(), ref[["min", "max"]].to_numpy())


def _exactextract_means(path: Path, regions: gpd.GeoDataFrame) -> pd.Series:
    from exactextract import exact_extract

    with rasterio.open(path) as ds:
        frame = regions.to_crs(ds.crs)
    out = exact_extract(str(path), frame.reset_index(), ["mean", "count"], output="pandas")
    return pd.Series(out["mean"].to_numpy(), index=regions.index)


def test_fraction_statistics_equal_exactextract(real: tuple[str, Path, gpd.GeoDataFrame]) -> None:
    """Coverage-weighted mean and count, read block by block, against exactextract reading
    the whole raster."""
    from exactextract import exact_extract

    _key, path, regions = real
    ours = zonal_stats(path, regions, ("count", "mean", "min", "max"), chunk=100)
    with rasterio.open(path) as ds:
        frame = regions.to_crs(ds.crs).reset_index()
    ref = exact_extract(str(path), frame, ["mean", "count", "min", "max"], output="pandas")
    for stat in ("mean", "count", "min", "max"):
        np.testing.assert_allclose(ours[stat].to_numpy(), ref[stat].to_numpy(), rtol=1e-10)


# --- the analytic ramp -------------------------------------------------------------------

ORIGIN = (4_000_000.0, 2_600_000.0)  # EPSG:3035, upper left
PIXEL = 20.0
SIDE = 1000  # pixels: a 20 km square


def ramp_value(x: np.ndarray) -> np.ndarray:
    """The linear field: kilometres east of the raster's left edge."""
    return (x - ORIGIN[0]) / 1000.0


@pytest.fixture(scope="module")
def ramp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A float64 GeoTIFF in EPSG:3035 whose pixel holds the field at its centre."""
    path = tmp_path_factory.mktemp("ramp") / "ramp.tif"
    transform = Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])
    xs = ORIGIN[0] + PIXEL * (np.arange(SIDE) + 0.5)
    data = np.broadcast_to(ramp_value(xs), (SIDE, SIDE))
    profile = {"driver": "GTiff", "width": SIDE, "height": SIDE, "count": 1, "dtype": "float64"}
    profile |= {"crs": "EPSG:3035", "transform": transform, "tiled": True}
    profile |= {"blockxsize": 256, "blockysize": 256}
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
    return path


def ramp_polygons(settings: Settings) -> gpd.GeoDataFrame:
    """A triangle, a rotated square, a disc and a real (asymmetric) NUTS-3 outline, inside
    the ramp's square, off the pixel grid."""
    x0, y1 = ORIGIN[0], ORIGIN[1]
    tri = shapely.Polygon([(x0 + 1013, y1 - 2207), (x0 + 9391, y1 - 3313), (x0 + 4447, y1 - 8809)])
    square = shapely.affinity.rotate(shapely.box(x0 + 11e3, y1 - 9e3, x0 + 17e3, y1 - 3e3), 27)
    disc = shapely.Point(x0 + 5123.4, y1 - 14567.8).buffer(3517.3)
    region = load_boundaries(settings).to_crs(3035).loc["AT332", "geometry"]
    rminx, rminy, rmaxx, rmaxy = region.bounds
    scale = 7000.0 / max(rmaxx - rminx, rmaxy - rminy)
    region = shapely.affinity.scale(region, scale, scale, origin=(rminx, rminy))
    region = shapely.affinity.translate(region, x0 + 11_333.3 - rminx, y1 - 19_111.1 - rminy)
    geoms = [tri, square, disc, region]
    return gpd.GeoDataFrame(
        {"name": ["triangle", "square", "disc", "AT332"]}, geometry=geoms, crs=3035
    ).set_index("name")


def exact_pixelated(polys: gpd.GeoDataFrame, threshold: float) -> pd.DataFrame:
    """Mean and share above ``threshold`` from shapely's exact pixel-polygon intersections."""
    rows = {}
    for name, poly in polys.geometry.items():
        minx, miny, maxx, maxy = poly.bounds
        c0, c1 = int((minx - ORIGIN[0]) // PIXEL), int((maxx - ORIGIN[0]) // PIXEL) + 1
        r0, r1 = int((ORIGIN[1] - maxy) // PIXEL), int((ORIGIN[1] - miny) // PIXEL) + 1
        cols, rws = np.meshgrid(np.arange(c0, c1), np.arange(r0, r1))
        left, top = ORIGIN[0] + PIXEL * cols.ravel(), ORIGIN[1] - PIXEL * rws.ravel()
        boxes = shapely.box(left, top - PIXEL, left + PIXEL, top)
        shapely.prepare(poly)
        cover = shapely.contains_properly(poly, boxes).astype(float)
        edge = (cover == 0) & shapely.intersects(poly, boxes)
        cover[edge] = shapely.area(shapely.intersection(boxes[edge], poly)) / PIXEL**2
        value = ramp_value(left + PIXEL / 2)
        rows[name] = (
            (cover * value).sum() / cover.sum(),
            cover[value > threshold].sum() / cover.sum(),
        )
    return pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "above"])


@pytest.fixture(scope="module")
def ramp_reference(settings: Settings) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """The polygons and their shapely reference (threshold 10 km, a pixel edge)."""
    polys = ramp_polygons(settings)
    return polys, exact_pixelated(polys, threshold=10.0)


def test_fraction_mean_on_linear_ramp(
    ramp: Path, ramp_reference: tuple[gpd.GeoDataFrame, pd.DataFrame]
) -> None:
    """On a linear field the exact mean over a polygon is the field at its centroid; the
    coverage-weighted pixel mean approaches it (1e-6 km here) and equals shapely's exact
    pixel-polygon intersections to rounding."""
    polys, shapely_ref = ramp_reference
    ours = zonal_stats(ramp, polys, ("mean", "count", "area"), chunk=300)
    centroid = ramp_value(polys.centroid.x.to_numpy())
    print("\nlinear ramp: coverage-weighted mean vs the field at the centroid (km)")
    print(pd.DataFrame({"ours": ours["mean"], "centroid": centroid}).to_string())
    np.testing.assert_allclose(ours["mean"], shapely_ref["mean"], rtol=1e-10)
    np.testing.assert_allclose(ours["mean"], centroid, atol=2e-6, rtol=0)
    np.testing.assert_allclose(ours["area_km2"], polys.area / 1e6, rtol=1e-9)
    np.testing.assert_allclose(ours["count"], polys.area / PIXEL**2, rtol=1e-9)


def test_threshold_shares_on_linear_ramp(
    ramp: Path, ramp_reference: tuple[gpd.GeoDataFrame, pd.DataFrame]
) -> None:
    """With the threshold on a pixel edge, the share of the area above (below) it is the
    exact share of the polygon east (west) of that line."""
    polys, shapely_ref = ramp_reference
    edge = 10.0  # km: the edge between columns 499 and 500
    ours = zonal_stats(ramp, polys, ("above", "below"), thresholds=(edge,), chunk=300)
    line_x = ORIGIN[0] + edge * 1000
    east = polys.geometry.intersection(shapely.box(line_x, 0, 1e8, 1e8))
    expected = (east.area / polys.area).to_numpy()
    np.testing.assert_allclose(ours["above_10"], expected, atol=1e-12)
    np.testing.assert_allclose(ours["below_10"], 1 - expected, atol=1e-12)
    np.testing.assert_allclose(ours["above_10"], shapely_ref["above"], atol=1e-12)
    centre = zonal_stats(ramp, polys, ("above", "mean"), thresholds=(edge,), mode="centre")
    assert ((centre["above_10"] >= 0) & (centre["above_10"] <= 1)).all()


def test_geographic_areas_are_geodesic(settings: Settings) -> None:
    """In EPSG:4326 the covered area is geodesic: about the region's EPSG:3035 area."""
    path = raster_path(settings, "oetztal")
    regions = regions_on(settings, path)
    with rasterio.open(path) as ds:
        inside = regions.clip(shapely.box(*ds.bounds))
    ours = zonal_stats(path, inside, ("area",))
    # edges straight in degrees, as the raster sees them: densified before projecting
    dense = inside.set_geometry(shapely.segmentize(inside.geometry.values, 0.0005))
    np.testing.assert_allclose(ours["area_km2"], dense.to_crs(3035).area / 1e6, rtol=1e-4)


# --- bad rasters ---------------------------------------------------------------------------


def _write(path: Path, crs: str | None, side: int = 64) -> Path:
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 1, "dtype": "float32"}
    profile |= {"transform": Affine(100, 0, 4e6, 0, -100, 2.6e6), "crs": crs}
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.ones((side, side), np.float32), 1)
    return path


def test_no_crs_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "no_crs.tif", None)
    with pytest.raises(IngestError, match="no_crs.tif.*coordinate reference system") as info:
        validate_raster(path)
    assert info.value.file == "no_crs.tif"


def test_truncated_file_is_refused(tmp_path: Path, settings: Settings) -> None:
    data = raster_path(settings, "oetztal").read_bytes()
    path = tmp_path / "truncated.tif"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="truncated.tif.*truncated") as info:
        validate_raster(path)
    assert info.value.file == "truncated.tif"


def test_not_a_raster_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "table.tif"
    path.write_text("indicator,geo,time,value\n")
    with pytest.raises(IngestError, match="table.tif.*not a readable raster"):
        validate_raster(path)


@pytest.mark.parametrize(
    "limits, rule",
    [
        (RasterLimits(max_bytes=1000), "bytes"),
        (RasterLimits(max_pixels=1000), "pixels"),
        (RasterLimits(max_bands=0), "bands"),
    ],
    ids=["bytes", "pixels", "bands"],
)
def test_too_large_is_refused(tmp_path: Path, limits: RasterLimits, rule: str) -> None:
    path = _write(tmp_path / "big.tif", "EPSG:3035")
    with pytest.raises(TooLargeError, match=f"big.tif.*{rule}.*limit") as info:
        validate_raster(path, limits)
    assert info.value.file == "big.tif"


# --- a zonal result as an indicator dataset ------------------------------------------------


def test_zonal_dataset_frame_and_upload(settings: Settings, tmp_path: Path) -> None:
    """The tidy frame, labels and lineage; stored through the upload pipeline."""
    from geo.indicators import upload_frame
    from geo.store import Store
    from geo.uploads import UploadRequest

    path = raster_path(settings, "oetztal")
    regions = regions_on(settings, path)
    zonal = zonal_stats(path, regions, ("mean", "above"), thresholds=(2000,))
    ds = zonal_dataset_frame(path, zonal, year=2000, prefix="elev", unit="m", thresholds=(2000,))
    assert list(ds.frame.columns) == ["indicator", "geo", "time", "value"]
    assert set(ds.frame["indicator"]) == {"ELEV_MEAN", "ELEV_ABOVE_2000"}
    assert ds.labels["ELEV_MEAN"][1] == "m" and ds.labels["ELEV_ABOVE_2000"][1] == "share"
    assert ds.lineage["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ds.lineage["raster"] == path.name and ds.lineage["crs"] == "EPSG:4326"
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    request = UploadRequest(
        dataset_id="elevation_oetztal",
        title="Elevation, Ötztal SRTM",
        source="SRTM via OGGM sample data",
        labels=ds.labels,
        lineage=ds.lineage,
        levels=(3,),
    )
    outcome = upload_frame(settings, store, ds.frame.dropna(subset=["value"]), request)
    assert outcome.ok and outcome.dataset is not None
    stored = outcome.dataset
    assert {i.code for i in stored.indicators} == {"ELEV_MEAN", "ELEV_ABOVE_2000"}
