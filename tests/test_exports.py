"""Collection exports read back with GDAL and compared with the source collection.

Every file is downloaded through the API (``GET /ogc/collections/{id}/export``) and read back
by an independent reader: GDAL through pyogrio for GeoPackage, FlatGeobuf, CSV and Shapefile
(and SQLite itself for ``gpkg_contents``); pyarrow and geopandas for GeoParquet, since the GDAL
bundled with pyogrio's wheels has no Parquet driver. The reference is the library's collection
(``geo.collections.load_collection``) transformed by geopandas/pyproj, or by a bare
``pyproj.Transformer`` in the CRS's authority axis order for the axis-order test. Geometries
are compared vertex by vertex (GEOS ``normalize`` then ``equals_exact``): exactly for the
binary formats, within the 15 significant digits of GDAL's WKT for CSV.

Inputs: the GISCO NUTS 2021 level-2 layer and the demo GDP dataset collection of the session
store (``client``), and a dataset uploaded through ``POST /datasets`` to a store of this
module, built from the real Eurostat GDP table with indicator codes that a spreadsheet would
run as formulas (``=EUR_HAB``, ``@EUR_HAB_CHANGE``) and negative numbers.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pyproj
import pytest
import shapely
from fastapi.testclient import TestClient

from geo.collections import Collection, load_collection
from geo.errors import InvalidParameterError
from geo.exports import FORMULA_START, neutralise, shapefile_names, shapefile_size, write_export
from geo.indicators import load_eurostat
from geo.settings import Settings
from geo.store import Store
from services.app import create_app
from tests.auth import headers

NUTS2 = "nuts-2021-level-2"
GDP_DEMO = "dataset-nama_10r_3gdp-v1-level-3"
FORMULAS = "dataset-gdp_formulas-v1-level-3"
FORMATS = ["gpkg", "fgb", "parquet", "csv", "shp"]
MEDIA = {
    "gpkg": "application/geopackage+sqlite3",
    "fgb": "application/flatgeobuf",
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "shp": "application/zip",
}
EXTENSION = {"gpkg": "gpkg", "fgb": "fgb", "parquet": "parquet", "csv": "csv", "shp": "zip"}
URI = {
    "OGC:CRS84": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    **{f"EPSG:{c}": f"http://www.opengis.net/def/crs/EPSG/0/{c}" for c in (4326, 3035, 3857)},
}
PROBLEM = "application/problem+json"


# -- sources ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upload_client(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The service on a store of this module (uploads stay out of the session's demo store)."""
    tmp = tmp_path_factory.mktemp("exports")
    local = settings.model_copy(
        update={"database_url": f"sqlite:///{tmp / 'store.db'}", "upload_dir": tmp / "uploads"}
    )
    with TestClient(create_app(local), headers=headers(local)) as c:
        yield c


@pytest.fixture(scope="module")
def formula_table(settings: Settings) -> pd.DataFrame:
    """Real GDP per head of Austrian and Slovenian NUTS-3 regions since 2015, and its change
    from the year before (negative in some regions and years), under formula-like codes."""
    table, _ = load_eurostat(settings, "nama_10r_3gdp")
    keep = (table["unit"] == "EUR_HAB") & (table["geo"].str.len() == 5)
    keep &= table["geo"].str[:2].isin(["AT", "SI"]) & (table["time"].astype(int) >= 2014)
    gdp = table.loc[keep, ["geo", "time", "value"]].astype({"time": int})
    gdp["value"] = pd.to_numeric(gdp["value"], errors="coerce")
    gdp = gdp.dropna().sort_values(["geo", "time"])
    change = gdp.assign(value=gdp.groupby("geo")["value"].diff())
    out = pd.concat([gdp.assign(indicator="=EUR_HAB"), change.assign(indicator="@EUR_HAB_CHANGE")])
    out = out[out["time"] >= 2015].dropna()
    assert (out["value"] < 0).any()  # the table exercises negative numbers
    return out.assign(unit="EUR_HAB")[["indicator", "geo", "time", "value", "unit"]]


@pytest.fixture(scope="module")
def formulas(upload_client: TestClient, formula_table: pd.DataFrame) -> Collection:
    """The uploaded dataset's collection, as the library builds it."""
    body = formula_table.to_csv(index=False).encode()
    answer = upload_client.post(
        "/datasets",
        files={"file": ("gdp.csv", body)},
        data={"name": "GDP formulas", "source": "Eurostat nama_10r_3gdp", "licence": "CC BY 4.0"},
    )
    assert answer.status_code == 201, answer.text
    state = upload_client.app.state  # type: ignore[attr-defined]
    collection = load_collection(state.settings, state.store, FORMULAS)
    assert {"=EUR_HAB", "@EUR_HAB_CHANGE"} <= set(collection.features.columns)
    return collection


@pytest.fixture(scope="module")
def sources(
    settings: Settings,
    demo_store: Store,
    client: TestClient,
    upload_client: TestClient,
    formulas: Collection,
) -> dict[str, tuple[TestClient, Collection]]:
    """Collection id -> (the app serving it, the collection from the library)."""
    out = {cid: (client, load_collection(settings, demo_store, cid)) for cid in (NUTS2, GDP_DEMO)}
    out[FORMULAS] = (upload_client, formulas)
    return out


# -- downloading and reading back ----------------------------------------------------------------


@dataclass
class Export:
    """A downloaded export read back: features by id, the CRS in the file, the response."""

    frame: gpd.GeoDataFrame
    crs: pyproj.CRS | None
    metadata: dict[str, str]
    headers: dict[str, str]
    path: Path
    fields: dict[str, str]  # Shapefile: DBF field -> column (from the zip's mapping file)


def download(client: TestClient, cid: str, f: str, crs: str | None, tmp: Path) -> Export:
    params = {"f": f} | ({"crs": crs} if crs else {})
    answer = client.get(f"/ogc/collections/{cid}/export", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].split(";")[0] == MEDIA[f]
    name = f"{cid}.{EXTENSION[f]}"
    assert answer.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert int(answer.headers["content-length"]) == len(answer.content)
    path = tmp / name
    path.write_bytes(answer.content)
    frame, found, metadata, fields = read_back(path, f)
    return Export(frame, found, metadata, dict(answer.headers), path, fields)


def read_back(path: Path, f: str) -> tuple[gpd.GeoDataFrame, pyproj.CRS | None, dict, dict]:
    """The file read by GDAL (pyogrio), or by pyarrow/geopandas for GeoParquet."""
    fields: dict[str, str] = {}
    if f == "parquet":
        frame = gpd.read_parquet(path)
        metadata = {k.decode(): v.decode() for k, v in pq.read_metadata(path).metadata.items()}
        return frame, frame.crs, metadata, fields
    if f == "shp":
        with zipfile.ZipFile(path) as archive:
            archive.extractall(path.parent / "shp")
        path = path.parent / "shp" / path.with_suffix(".shp").name
        with open(path.with_name(path.stem + "_fields.csv"), newline="", encoding="utf-8") as fh:
            fields = {row["field"]: row["column"] for row in csv.DictReader(fh)}
    info = pyogrio.read_info(path)
    frame = pyogrio.read_dataframe(path, use_arrow=True)
    if f == "csv":
        assert frame.columns[0] == "WKT"  # GDAL's own CSV convention, geometry found by name
        frame = frame.drop(columns="WKT")
    found = pyproj.CRS(info["crs"]) if info["crs"] and f != "csv" else None
    return frame, found, info.get("layer_metadata") or {}, fields


def multi(geoms: np.ndarray) -> np.ndarray:
    out = np.asarray(geoms, dtype=object).copy()
    single = shapely.get_type_id(out) == 3
    if single.any():
        out[single] = shapely.multipolygons(out[single][:, None])
    return shapely.normalize(out)


def assert_same_geometries(got: np.ndarray, want: np.ndarray, ids: pd.Index, tol: float) -> None:
    same = shapely.equals_exact(multi(got), multi(want), tolerance=tol)
    assert same.all(), f"{(~same).sum()} geometries differ, e.g. {list(ids[~same][:5])}"


def blank(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def assert_same_values(got: pd.Series, want: pd.Series, rtol: float, empty_is_null: bool) -> None:
    if pd.api.types.is_numeric_dtype(want) or pd.api.types.is_bool_dtype(want):
        if not pd.api.types.is_numeric_dtype(got):  # CSV: GDAL reads text
            assert all(blank(v) or v == "" or float(v) is not None for v in got)
            got = pd.to_numeric(got.replace("", None))
        np.testing.assert_allclose(
            got.to_numpy(float, na_value=np.nan),
            want.astype("Float64").to_numpy(float, na_value=np.nan),
            rtol=rtol,
            equal_nan=True,
            err_msg=str(want.name),
        )
        return

    def norm(v: Any) -> str | None:
        return None if blank(v) or (empty_is_null and v == "") else str(v)

    assert [norm(v) for v in got] == [norm(v) for v in want], want.name


def expected_columns(source: Collection, f: str) -> dict[str, str]:
    """Source column -> column name in the file (CSV headers are neutralised too)."""
    names = ["id", *source.features.columns.drop(source.features.geometry.name)]
    if f == "csv":
        return {c: str(neutralise(pd.Series([c]))[0]) for c in names}
    return {c: c for c in names}


def assert_same_features(export: Export, source: Collection, f: str, code: str) -> None:
    """Same ids, same attribute values (NaN/None alike), same geometries in ``code``."""
    frame = export.frame
    if f == "shp":
        assert list(frame.columns.drop("geometry")) == list(export.fields)
        unneutral = {
            v: v[1:] if v[1:].startswith(FORMULA_START) else v for v in export.fields.values()
        }
        frame = frame.rename(columns={k: unneutral[v] for k, v in export.fields.items()})
    columns = expected_columns(source, f)
    assert list(frame.columns.drop("geometry")) == list(columns.values())
    assert frame["id"].is_unique
    assert sorted(frame["id"]) == sorted(source.features.index)
    frame = frame.set_index("id").loc[source.features.index]
    numbers = {"csv": 1e-14, "shp": 1e-12}.get(f, 0.0)
    for column, name in columns.items():
        if column == "id":
            continue
        want = source.features[column]
        if f == "csv" and not pd.api.types.is_numeric_dtype(want):
            # GDAL's CSV reader returns a CR LF inside a quoted cell as LF (GISCO's name of
            # NO0B has one)
            want = neutralise(want).str.replace("\r\n", "\n")
        assert_same_values(frame[name], want, numbers, empty_is_null=f in ("csv", "shp"))
    want_geoms = source.features.geometry.to_crs(code).to_numpy()
    tol = 0.0 if f != "csv" else float(np.abs(shapely.get_coordinates(want_geoms)).max()) * 1e-14
    assert_same_geometries(frame.geometry.to_numpy(), want_geoms, source.features.index, tol)


def assert_crs(export: Export, f: str, code: str) -> None:
    """The CRS as GDAL (or GeoParquet's PROJJSON) records it, and the Content-Crs header."""
    assert export.headers["content-crs"] == f"<{URI[code]}>"
    if f == "csv":
        assert export.crs is None  # a CSV has no place for it: the header is all
        return
    assert export.crs is not None
    # a .prj has no authority: CRS84 is written as WGS 84 (x/y like every Shapefile)
    expected = "EPSG:4326" if f == "shp" and code == "OGC:CRS84" else code
    assert ":".join(export.crs.to_authority() or ()) == expected
    assert export.crs.equals(pyproj.CRS(code), ignore_axis_order=True)


def assert_attribution(export: Export, f: str, source: Collection) -> None:
    assert unquote(export.headers["attribution"]) == source.attribution
    if f in ("gpkg", "fgb", "parquet"):
        assert export.metadata["attribution"] == source.attribution
        assert export.metadata["title" if f != "fgb" else "TITLE"] == source.title
    if f == "gpkg":
        with sqlite3.connect(export.path) as db:
            (row,) = db.execute("SELECT table_name, identifier, description FROM gpkg_contents")
        assert row[0] == source.id and row[1] == source.title
        assert source.attribution in row[2] and source.description in row[2]
    if f == "shp":
        with zipfile.ZipFile(export.path) as archive:
            names = set(archive.namelist())
            readme = archive.read(f"{source.id}.txt").decode()
            cpg = archive.read(f"{source.id}.cpg").decode().strip()
        stems = {".shp", ".shx", ".dbf", ".prj", ".cpg", ".txt"}
        assert names == {f"{source.id}{s}" for s in stems} | {f"{source.id}_fields.csv"}
        assert f"Attribution: {source.attribution}" in readme and cpg == "UTF-8"


# -- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cid", [NUTS2, GDP_DEMO, FORMULAS], ids=["nuts2", "gdp-demo", "formulas"])
@pytest.mark.parametrize("crs", ["OGC:CRS84", "EPSG:3035"], ids=["crs84", "3035"])
@pytest.mark.parametrize("f", FORMATS)
def test_round_trip(
    sources: dict[str, tuple[TestClient, Collection]], cid: str, crs: str, f: str, tmp_path: Path
) -> None:
    """Download, read back with GDAL (pyarrow for GeoParquet): same ids, values, geometries
    (the source transformed by geopandas), CRS and attribution."""
    client, source = sources[cid]
    export = download(client, cid, f, None if crs == "OGC:CRS84" else URI[crs], tmp_path)
    assert_same_features(export, source, f, crs)
    assert_crs(export, f, crs)
    assert_attribution(export, f, source)


@pytest.mark.parametrize("code", ["EPSG:4326", "EPSG:3035", "EPSG:3857"])
@pytest.mark.parametrize("f", FORMATS)
def test_axis_order(
    sources: dict[str, tuple[TestClient, Collection]], f: str, code: str, tmp_path: Path
) -> None:
    """Files hold x = longitude/easting even where the EPSG definition puts latitude/northing
    first (4326, 3035): the reference is PROJ's transformation in authority order, swapped
    by the target's axis directions."""
    client, source = sources[NUTS2]
    export = download(client, NUTS2, f, code, tmp_path)
    target = pyproj.CRS(code)
    north_first = target.axis_info[0].direction == "north"
    assert north_first == (code != "EPSG:3857")  # the test does exercise a swap
    to_target = pyproj.Transformer.from_crs("EPSG:4326", target)  # authority order both ends

    def reference(lonlat: np.ndarray) -> np.ndarray:
        first, second = to_target.transform(lonlat[:, 1], lonlat[:, 0])  # lat, lon in
        return np.column_stack([second, first] if north_first else [first, second])

    want = shapely.transform(source.features.geometry.to_numpy(), reference)
    got = export.frame.set_index("id").loc[source.features.index].geometry.to_numpy()
    scale = float(np.abs(shapely.get_coordinates(want)).max())
    assert_same_geometries(got, want, source.features.index, scale * 1e-12)
    assert_crs(export, f, code)


def test_csv_formula_cells_neutralised(
    upload_client: TestClient, formulas: Collection, formula_table: pd.DataFrame, tmp_path: Path
) -> None:
    """In the CSV no text cell (header included) starts a formula; numbers stay numbers,
    negative ones included; the GIS formats keep the column names as they are."""
    answer = upload_client.get(f"/ogc/collections/{FORMULAS}/export", params={"f": "csv"})
    assert answer.status_code == 200
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8"), newline="")))
    header, body = rows[0], rows[1:]
    assert answer.content.split(b"\n", 1)[0].endswith(b"\r")  # RFC 4180 line breaks
    assert "'=EUR_HAB" in header and "'@EUR_HAB_CHANGE" in header
    assert not [c for c in header if c.startswith(FORMULA_START)]
    negative = 0
    for row in body:
        for cell in row[1:]:  # after the WKT
            if cell.startswith(FORMULA_START):
                float(cell)  # a number, never text
                negative += cell.startswith("-")
    want = (formula_table["indicator"] == "@EUR_HAB_CHANGE") & (formula_table["value"] < 0)
    assert negative == want.sum() > 0
    export = download(upload_client, FORMULAS, "gpkg", None, tmp_path)
    assert {"=EUR_HAB", "@EUR_HAB_CHANGE"} <= set(export.frame.columns)


def test_cli_csv_output_neutralised(
    settings: Settings, formula_table: pd.DataFrame, tmp_path: Path
) -> None:
    """The CLI's CSV output (``alpclusters hotspots ... out.csv``) neutralises the same
    formula-like text as the service's exports; numbers stay numbers."""
    from geo.boundaries import load_boundaries
    from geo.files import write_output

    regions = load_boundaries(settings)
    table = formula_table.drop_duplicates("geo").set_index("geo")
    frame = regions.loc[table.index, ["geometry"]].join(table[["indicator", "value"]])
    write_output(gpd.GeoDataFrame(frame, geometry="geometry", crs=regions.crs), tmp_path / "o.csv")
    rows = list(csv.DictReader((tmp_path / "o.csv").open(encoding="utf-8", newline="")))
    assert {r["indicator"] for r in rows} == {"'" + c for c in table["indicator"]}
    assert [float(r["value"]) for r in rows] == list(table["value"])


def test_shapefile_field_names(
    sources: dict[str, tuple[TestClient, Collection]], settings: Settings, tmp_path: Path
) -> None:
    """DBF fields of at most 10 ASCII characters, unique without case, mapped to columns in the
    zip's mapping file (the round trips rename by it); long, accented and clashing real NUTS
    names keep those rules deterministically."""
    client, source = sources[FORMULAS]
    export = download(client, FORMULAS, "shp", None, tmp_path)
    assert export.fields["_EUR_HAB"] == "'=EUR_HAB"
    assert export.fields["_EUR_HAB_C"] == "'@EUR_HAB_CHANGE"
    names = list(sources[NUTS2][1].features["NAME_LATN"])
    fields = shapefile_names(names)
    assert fields == shapefile_names(names)  # deterministic
    assert shapefile_names(names[:100]) == dict(list(fields.items())[:100])  # order-stable
    values = list(fields.values())
    assert all(len(v) <= 10 and v.isascii() and v.replace("_", "").isalnum() for v in values)
    assert len({v.upper() for v in values}) == len(set(names))
    clashing = [n for n in names if n[:10] != fields[n]]
    assert clashing  # real names that share their first ten characters or are not ASCII


@pytest.mark.parametrize("cid", [NUTS2, GDP_DEMO], ids=["nuts2", "gdp-demo"])
def test_shapefile_size(
    sources: dict[str, tuple[TestClient, Collection]], cid: str, tmp_path: Path
) -> None:
    """The .shp size is known before writing (GDAL writes exactly that many bytes), and a
    collection over the limit is refused without leaving files behind."""
    _, source = sources[cid]
    path = write_export(source, "shp", "EPSG:3035", tmp_path)
    with zipfile.ZipFile(path) as archive:
        written = archive.getinfo(f"{cid}.shp").file_size
    assert shapefile_size(source.features.geometry.to_numpy()) == written
    empty = tmp_path / "limit"
    empty.mkdir()
    with pytest.raises(InvalidParameterError, match="f=gpkg"):
        write_export(source, "shp", None, empty, shapefile_limit=written - 1)
    assert not any(empty.iterdir())


# -- parameters and errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "EPSG:3035",
        "epsg:3035",
        "urn:ogc:def:crs:EPSG::3035",
        "[EPSG:3035]",
        "http://www.opengis.net/def/crs/EPSG/0/3035",
        "https://www.opengis.net/def/crs/EPSG/0/3035",
    ],
)
def test_crs_spellings(client: TestClient, value: str) -> None:
    answer = client.get(f"/ogc/collections/{NUTS2}/export", params={"f": "fgb", "crs": value})
    assert answer.status_code == 200
    assert answer.headers["content-crs"] == f"<{URI['EPSG:3035']}>"


@pytest.mark.parametrize("value", [None, "CRS84", "OGC:CRS84", URI["OGC:CRS84"]])
def test_default_crs84(client: TestClient, value: str | None) -> None:
    params = {"f": "fgb"} | ({"crs": value} if value else {})
    answer = client.get(f"/ogc/collections/{NUTS2}/export", params=params)
    assert answer.headers["content-crs"] == f"<{URI['OGC:CRS84']}>"


def problem(answer: Any, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["status"] == status and body["code"] == code and body["type"].endswith(code)
    return str(body["detail"])


def test_errors(client: TestClient) -> None:
    """Unknown collection 404; unknown format or CRS 400, naming what is supported."""
    detail = problem(
        client.get("/ogc/collections/nuts-2021-level-9/export"), 404, "unknown-collection"
    )
    assert NUTS2 in detail
    detail = problem(
        client.get(f"/ogc/collections/{NUTS2}/export", params={"f": "kml"}),
        400,
        "invalid-parameter",
    )
    assert "'kml'" in detail and all(f in detail for f in FORMATS)
    for crs in ("EPSG:31287", "EPSG:4258", "http://www.opengis.net/def/crs/EPSG/0/99999", "x"):
        answer = client.get(f"/ogc/collections/{NUTS2}/export", params={"crs": crs})
        detail = problem(answer, 400, "invalid-parameter")
        assert repr(crs) in detail and all(uri in detail for uri in URI.values())


def test_temporary_files_removed(client: TestClient, tmp_path: Path, monkeypatch: Any) -> None:
    """The file is written to a temporary directory, removed before the answer streams (the
    open file is read after its directory is gone), so a broken download leaves nothing."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for f in FORMATS:
        answer = client.get(f"/ogc/collections/{NUTS2}/export", params={"f": f})
        assert answer.status_code == 200 and len(answer.content) > 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("f", FORMATS)
def test_empty_collection(
    sources: dict[str, tuple[TestClient, Collection]], f: str, tmp_path: Path
) -> None:
    """A collection without features (an analysis without catchments) is still a file that
    GDAL (pyarrow) opens, with every column and the CRS."""
    _, source = sources[NUTS2]
    empty = dataclasses.replace(source, features=source.features.iloc[:0])
    frame, found, _, fields = read_back(write_export(empty, f, "EPSG:3035", tmp_path), f)
    assert len(frame) == 0
    names = fields.values() if f == "shp" else frame.columns.drop("geometry")
    assert list(names) == list(expected_columns(source, f).values())
    assert found is None if f == "csv" else found.to_authority() == ("EPSG", "3035")
