"""Feature collections as files for GIS clients and spreadsheets.

A :class:`~geo.collections.Collection` is written whole, in one of the supported CRSs, as

* ``gpkg``, GeoPackage (pyogrio/GDAL). The layer is named after the collection;
  ``gpkg_contents.identifier`` is its title and ``gpkg_contents.description`` its description
  followed by the attribution; ``title``, ``description`` and ``attribution`` are also layer
  metadata (``gpkg_metadata``, read back as ``pyogrio.read_info(...)["layer_metadata"]``).
* ``fgb``, FlatGeobuf (pyogrio/GDAL, spatial index): ``title`` and ``description`` in the
  header fields of the same names, ``attribution`` in the header's metadata (GDAL >= 3.9
  writes layer metadata there and reads it back as layer metadata).
* ``parquet``, GeoParquet 1.1 (pyarrow): WKB geometries (ISO), the ``geo`` file metadata with
  the CRS as PROJJSON, the geometry types and the bbox, and ``attribution``, ``title`` and
  ``description`` as further key-value metadata of the file.
* ``csv``, CSV (pyogrio/GDAL, RFC 4180 with CRLF): GDAL's conventions, the geometry as WKT in
  a first column named ``WKT`` (``ogr2ogr`` and pyogrio find it by name; the other columns
  are read as text unless ``AUTODETECT_TYPE=YES``). Text cells, header cells included, that a
  spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or
  carriage return) get a leading apostrophe (OWASP's advice); numbers stay numbers, so
  ``-3.5`` is written as it is. A CSV carries neither CRS nor attribution: it stays a plain
  table, and the web layer sends both as headers (``Content-Crs``, ``Attribution``).
* ``shp``, zipped ESRI Shapefile (pyogrio/GDAL): ``.shp``, ``.shx``, ``.dbf``, ``.prj``,
  ``.cpg`` (``UTF-8``), ``{id}.txt`` with title, description, attribution, CRS and the field
  names, and ``{id}_fields.csv`` mapping each DBF field to its column (:func:`shapefile_names`:
  at most 10 ASCII characters, unique regardless of case, deterministic). The ``.shp`` and
  ``.dbf`` files must stay below 2 GiB (:data:`SHAPEFILE_LIMIT`): the ``.shp`` size is
  computed exactly before writing (:func:`shapefile_size`) and an oversize collection is
  refused with a hint to GeoPackage or FlatGeobuf. DBF has no NULL: GDAL writes a missing
  value as a blank field and reads a blank field back as NULL, so an empty text and a
  missing one are alike.

Axis order. Every one of these formats stores x = easting or longitude, y = northing or
latitude, whatever axis order the CRS definition has: GeoPackage (its specification's
geometry encoding), Shapefile and FlatGeobuf (x/y by design), GeoParquet (its specification:
WKB's de facto (x, y) order) and the WKT of GDAL's CSV. GDAL >= 3 reads and writes
such layers with the "traditional GIS order" axis mapping (RFC 73). So ``EPSG:4326`` and
``EPSG:3035``, whose EPSG definitions put latitude or northing first, are still written
longitude/easting first; ``CRS84`` and ``EPSG:4326`` give the same coordinates and differ in
the CRS recorded in the file. A Shapefile's ``.prj`` (ESRI WKT, no authority code) of a
``CRS84`` export is WGS 84's, the same as ``EPSG:4326``'s, which GDAL recognises as such.

Geometry types. Polygons among multipolygons are written as multipolygons in GeoPackage,
FlatGeobuf and Shapefile, whose layers have one geometry type; GeoParquet and CSV keep each
feature's own type.

Writing streams: the features are transformed, encoded as WKB and handed over in chunks (an
Arrow record batch stream for GDAL, row groups for Parquet), so no second copy of the whole
collection is made in memory; the file is written in a directory of the caller's choice.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import shapely

from geo.collections import Collection
from geo.errors import InvalidParameterError

SHAPEFILE_LIMIT = 2**31 - 1
"""Largest ``.shp`` or ``.dbf`` file (bytes) that every Shapefile reader accepts."""

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2000


@dataclass(frozen=True)
class ExportFormat:
    """An export format: its ``f`` key, file extension, media type and GDAL driver."""

    key: str
    extension: str
    media_type: str
    title: str
    driver: str | None


FORMATS: dict[str, ExportFormat] = {
    f.key: f
    for f in (
        ExportFormat("gpkg", "gpkg", "application/geopackage+sqlite3", "GeoPackage", "GPKG"),
        ExportFormat("fgb", "fgb", "application/flatgeobuf", "FlatGeobuf", "FlatGeobuf"),
        ExportFormat("parquet", "parquet", "application/vnd.apache.parquet", "GeoParquet", None),
        ExportFormat("csv", "csv", "text/csv", "CSV with WKT geometry", "CSV"),
        ExportFormat("shp", "zip", "application/zip", "zipped ESRI Shapefile", "ESRI Shapefile"),
    )
}


@dataclass(frozen=True)
class ExportCrs:
    """A supported output CRS: its OGC URI and its authority code (``"EPSG:3035"``)."""

    uri: str
    code: str

    @property
    def crs(self) -> pyproj.CRS:
        return pyproj.CRS.from_user_input(self.code)

    @property
    def is_wgs84(self) -> bool:
        """CRS84 or EPSG:4326: the collections' own coordinates, written unchanged."""
        return self.code in ("OGC:CRS84", "EPSG:4326")


CRS84 = ExportCrs("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "OGC:CRS84")
SUPPORTED_CRS: tuple[ExportCrs, ...] = (
    CRS84,
    *(
        ExportCrs(f"http://www.opengis.net/def/crs/EPSG/0/{code}", f"EPSG:{code}")
        for code in (4326, 3035, 3857)
    ),
)
_EPSG = re.compile(
    r"^(?:epsg:|https?://www\.opengis\.net/def/crs/epsg/0/|urn:ogc:def:crs:epsg:[\d.]*:)(\d+)$"
)
_CRS84 = re.compile(
    r"^(?:ogc:|https?://www\.opengis\.net/def/crs/ogc/1\.3/|urn:ogc:def:crs:ogc:[\d.]*:)?crs84$"
)


def export_format(key: str) -> ExportFormat:
    """The format of this ``f`` key, or :class:`InvalidParameterError` naming the valid ones."""
    try:
        return FORMATS[key.strip().lower()]
    except KeyError:
        valid = ", ".join(f"{k} ({f.title})" for k, f in FORMATS.items())
        raise InvalidParameterError(f"unknown export format {key!r}; supported: {valid}") from None


def export_crs(value: str | None) -> ExportCrs:
    """The supported CRS named by ``value`` (default CRS84).

    Parameters
    ----------
    value
        An OGC URI (``http://www.opengis.net/def/crs/EPSG/0/3035``), a URN
        (``urn:ogc:def:crs:EPSG::3035``), ``EPSG:3035``, ``CRS84`` or ``OGC:CRS84``; optionally
        in the brackets of a safe CURIE (``[EPSG:3035]``). Case does not matter.

    Raises
    ------
    InvalidParameterError
        For any other CRS, naming the supported ones.
    """
    if value is None or not value.strip():
        return CRS84
    text = value.strip().removeprefix("[").removesuffix("]").strip().lower()
    if _CRS84.match(text):
        return CRS84
    if match := _EPSG.match(text):
        for crs in SUPPORTED_CRS:
            if crs.code == f"EPSG:{int(match[1])}":
                return crs
    valid = ", ".join(c.uri for c in SUPPORTED_CRS)
    raise InvalidParameterError(f"unsupported crs {value!r}; supported: {valid}")


def neutralise(column: pd.Series) -> pd.Series:
    """Text a spreadsheet would run as a formula gets a leading apostrophe (OWASP)."""
    text = column.astype("string")
    risky = text.str.startswith(FORMULA_START).fillna(False).astype(bool)
    return text.where(~risky, "'" + text)


def _cell(text: str) -> str:
    return f"'{text}" if text.startswith(FORMULA_START) else text


def shapefile_names(columns: Sequence[str]) -> dict[str, str]:
    """DBF field names for ``columns``: column -> field, in column order.

    A field name is the column's ASCII letters, digits and underscores (others become ``_``)
    cut to 10 characters; a name already taken, compared without case as DBF readers do,
    gets the shortest free suffix ``_1``, ``_2``, ... within the 10 characters.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        base = re.sub(r"[^A-Za-z0-9_]", "_", str(column).encode("ascii", "replace").decode())
        base = base or "field"
        name, n = base[:10], 0
        while name.upper() in taken:
            n += 1
            name = base[: 10 - len(f"_{n}")] + f"_{n}"
        taken.add(name.upper())
        out[column] = name
    return out


def shapefile_size(geometries: Any) -> int:
    """Exact size in bytes of the ``.shp`` file holding these 2D geometries.

    A 100-byte header, then per record an 8-byte header and its content: 4 bytes for an empty
    shape, 20 for a point, 40 + 16 per point for a multipoint, and for lines and polygons
    44 + 4 per part (line or ring) + 16 per point (ESRI Shapefile Technical Description).
    """
    geoms = np.asarray(geometries, dtype=object)
    types = shapely.get_type_id(geoms)
    points = shapely.get_num_coordinates(geoms)
    parts, index = shapely.get_parts(geoms, return_index=True)
    rings = np.where(shapely.get_type_id(parts) == 3, shapely.get_num_interior_rings(parts) + 1, 1)
    n_parts = np.bincount(index, weights=rings, minlength=len(geoms)).astype(np.int64)
    content = np.select(
        [shapely.is_empty(geoms) | shapely.is_missing(geoms), types == 0, types == 4],
        [4, 20, 40 + 16 * points],
        44 + 4 * n_parts + 16 * points,
    )
    return int(100 + (8 + content).sum())


# -- attributes and geometries as Arrow record batches ------------------------------------


_TYPES = (  # by shapely's type id
    *("Point", "LineString", "LinearRing", "Polygon"),
    *("MultiPoint", "MultiLineString", "MultiPolygon", "GeometryCollection"),
)
_MULTI = {0: 4, 1: 5, 3: 6}  # Point, LineString, Polygon -> their multi type


def _attributes(collection: Collection) -> pd.DataFrame:
    """The id column first (``id``, or ``feature_id`` when a property is named ``id``)."""
    frame = collection.features
    attrs = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    for column in attrs.columns:
        if pd.api.types.is_object_dtype(attrs[column]):  # Python objects as text
            attrs[column] = attrs[column].astype("string")
    attrs.insert(0, _id_column(collection), frame.index.astype(str))
    return attrs.reset_index(drop=True)


def _id_column(collection: Collection) -> str:
    return "feature_id" if "id" in collection.features.columns else "id"


def _layer_type(geometries: Any) -> tuple[str, int | None]:
    """The layer geometry type, and the singular type id to promote to multi (or None).

    Polygons among multipolygons make a MultiPolygon layer (likewise points and lines), as
    GeoPackage and FlatGeobuf want one geometry type per layer; other mixes are "Unknown".
    """
    found = set(shapely.get_type_id(geometries).tolist()) - {-1}
    if len(found) == 1 and (only := found.pop()) != 2:
        return _TYPES[only], None
    for single, multi in _MULTI.items():
        if found == {single, multi}:
            return _TYPES[multi], single
    return "Unknown", None


def _promote(geoms: np.ndarray, single: int | None) -> np.ndarray:
    if single is None:
        return geoms
    make = {0: shapely.multipoints, 1: shapely.multilinestrings, 3: shapely.multipolygons}
    out = geoms.copy()
    pick = shapely.get_type_id(out) == single
    if pick.any():
        out[pick] = make[single](out[pick][:, None])
    return out


@dataclass
class _Extent:
    """Geometry types and bbox of the features written so far (GeoParquet's metadata)."""

    types: set[str] = field(default_factory=set)
    bounds: list[float] = field(default_factory=lambda: [np.inf, np.inf, -np.inf, -np.inf])

    def add(self, geoms: np.ndarray) -> None:
        self.types.update(_TYPES[t] for t in set(shapely.get_type_id(geoms).tolist()) - {-1})
        box = shapely.total_bounds(geoms)
        if np.isfinite(box).all():
            low, high = np.fmin(self.bounds[:2], box[:2]), np.fmax(self.bounds[2:], box[2:])
            self.bounds = [float(v) for v in (*low, *high)]


def _batches(
    collection: Collection,
    crs: ExportCrs,
    *,
    names: dict[str, str] | None = None,
    promote: int | None = None,
    csv: bool = False,
    extent: _Extent | None = None,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema and a stream of record batches: attributes, then ``geometry`` as ISO WKB.

    Columns are renamed with ``names`` (Shapefile); for ``csv`` text cells and headers are
    neutralised; ``extent`` gathers types and bbox as the batches go by. Each batch is
    transformed to ``crs`` on its own (pyproj, x = easting/longitude).
    """
    attrs = _attributes(collection)
    text: list[str] = []
    if csv:
        text = [_cell(c) for c in attrs.columns if pd.api.types.is_string_dtype(attrs[c])]
        attrs = attrs.rename(columns=_cell)
    if names:
        attrs = attrs.rename(columns=names)
    fields = pa.Schema.from_pandas(attrs, preserve_index=False).remove_metadata()
    fields = pa.schema(
        [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in fields]
    )
    geometries, target = collection.features.geometry, crs.crs

    def stream() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(attrs), CHUNK):
            chunk = attrs.iloc[start : start + CHUNK].copy()
            for column in text:
                chunk[column] = neutralise(chunk[column])
            part = geometries.iloc[start : start + CHUNK]
            geoms = part.to_numpy() if crs.is_wgs84 else part.to_crs(target).to_numpy()
            geoms = _promote(np.asarray(geoms, dtype=object), promote)
            if extent is not None:
                extent.add(geoms)
            wkb = pa.array(shapely.to_wkb(geoms, flavor="iso"), type=pa.binary())
            table = pa.Table.from_pandas(chunk, schema=fields, preserve_index=False)
            yield from table.append_column("geometry", wkb).to_batches()

    return fields.append(pa.field("geometry", pa.binary())), stream()


# -- writers ------------------------------------------------------------------------------


def write_export(
    collection: Collection,
    fmt: ExportFormat | str,
    crs: ExportCrs | str | None,
    directory: Path,
    *,
    shapefile_limit: int = SHAPEFILE_LIMIT,
) -> Path:
    """Write ``collection`` in ``fmt`` and ``crs`` as ``directory/{id}.{extension}``.

    Parameters
    ----------
    collection
        The features (EPSG:4326) with their title, description and attribution.
    fmt
        An :class:`ExportFormat` or its key (``gpkg``, ``fgb``, ``parquet``, ``csv``, ``shp``).
    crs
        An :class:`ExportCrs` or anything :func:`export_crs` accepts (None: CRS84).
    directory
        An existing directory; the caller removes the file (and any side files) afterwards.
    shapefile_limit
        Largest ``.shp``/``.dbf`` file in bytes; a larger Shapefile is refused.

    Returns
    -------
    Path
        The file written (a ``.zip`` for Shapefiles).

    Raises
    ------
    InvalidParameterError
        For an unknown format or CRS, or a collection too large for a Shapefile.
    """
    fmt = export_format(fmt) if isinstance(fmt, str) else fmt
    crs = crs if isinstance(crs, ExportCrs) else export_crs(crs)
    path = directory / f"{collection.id}.{fmt.extension}"
    if fmt.key == "parquet":
        _write_parquet(collection, crs, path)
    elif fmt.key == "shp":
        _write_shapefile(collection, crs, path, shapefile_limit)
    else:
        _write_ogr(collection, fmt, crs, path)
    return path


def _metadata(collection: Collection) -> dict[str, str]:
    return {
        "title": collection.title,
        "description": collection.description,
        "attribution": collection.attribution,
    }


def _write_ogr(collection: Collection, fmt: ExportFormat, crs: ExportCrs, path: Path) -> None:
    """GeoPackage, FlatGeobuf or CSV through GDAL's Arrow stream writer."""
    import pyogrio

    csv = fmt.key == "csv"
    layer_type, single = ("Unknown", None) if csv else _layer_type(collection.features.geometry)
    schema, batches = _batches(collection, crs, promote=single, csv=csv)
    options: dict[str, str] = {}
    if fmt.key == "gpkg":
        description = f"{collection.description} Attribution: {collection.attribution}".strip()
        options = {"IDENTIFIER": collection.title, "DESCRIPTION": description}
    elif csv:
        options = {"GEOMETRY": "AS_WKT", "LINEFORMAT": "CRLF", "STRING_QUOTING": "IF_AMBIGUOUS"}
    pyogrio.write_arrow(
        pa.RecordBatchReader.from_batches(schema, batches),
        path,
        layer=collection.id,
        driver=fmt.driver,
        geometry_name="geometry",
        geometry_type=layer_type,
        crs=crs.crs.to_wkt(),  # for CSV only a side .prj, which is not served
        layer_metadata=None if csv else _metadata(collection),
        layer_options=options,
    )


def _write_parquet(collection: Collection, crs: ExportCrs, path: Path) -> None:
    """GeoParquet 1.1: one row group per chunk, the ``geo`` metadata added at the end."""
    extent = _Extent()
    schema, batches = _batches(collection, crs, extent=extent)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch, row_group_size=CHUNK)
        column: dict[str, Any] = {
            "encoding": "WKB",
            "geometry_types": sorted(extent.types),
            "crs": crs.crs.to_json_dict(),  # PROJJSON; coordinates are x/y whatever its axes
        }
        if np.isfinite(extent.bounds).all():
            column["bbox"] = extent.bounds
        geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
        writer.add_key_value_metadata({"geo": json.dumps(geo), **_metadata(collection)})


def _write_shapefile(collection: Collection, crs: ExportCrs, path: Path, limit: int) -> None:
    """The Shapefile's parts, a README and the field names, zipped as ``path``."""
    import pyogrio

    geometries = collection.features.geometry
    size = shapefile_size(geometries.to_numpy())
    if size > limit:
        raise InvalidParameterError(
            f"collection {collection.id!r} needs a {size:,}-byte .shp file, over the "
            f"Shapefile limit of {limit:,} bytes; export it as GeoPackage (f=gpkg) or "
            "FlatGeobuf (f=fgb)"
        )
    columns = [_id_column(collection), *collection.features.columns.drop(geometries.name)]
    names = shapefile_names(columns)
    layer_type, single = _layer_type(geometries)
    schema, batches = _batches(collection, crs, names=names, promote=single)
    parts = path.parent / f"{collection.id}-shp"
    parts.mkdir()
    try:
        shp = parts / f"{collection.id}.shp"
        # CRS84 as WGS 84's ESRI WKT: a .prj has no authority and shapefiles are x/y anyway
        prj = pyproj.CRS("EPSG:4326") if crs.is_wgs84 else crs.crs
        pyogrio.write_arrow(
            pa.RecordBatchReader.from_batches(schema, batches),
            shp,
            driver="ESRI Shapefile",
            geometry_name="geometry",
            geometry_type=layer_type,
            crs=prj.to_wkt(),
            encoding="UTF-8",
            layer_options={"2GB_LIMIT": "YES"},  # GDAL fails rather than write past 2 GiB
        )
        if max(shp.stat().st_size, shp.with_suffix(".dbf").stat().st_size) > limit:
            raise InvalidParameterError(
                f"collection {collection.id!r} is over the Shapefile limit of {limit:,} bytes "
                "per file; export it as GeoPackage (f=gpkg) or FlatGeobuf (f=fgb)"
            )
        _zip_shapefile(collection, crs, names, parts, path)
    finally:
        shutil.rmtree(parts, ignore_errors=True)


def _zip_shapefile(
    collection: Collection, crs: ExportCrs, names: dict[str, str], parts: Path, path: Path
) -> None:
    """Add the README and the field mapping (CSV, neutralised) to the parts; zip them all."""
    (parts / f"{collection.id}.txt").write_text(_readme(collection, crs, names), "utf-8")
    mapping = pd.DataFrame({"field": list(names.values()), "column": list(names)})
    mapping["column"] = neutralise(mapping["column"])
    mapping.to_csv(parts / f"{collection.id}_fields.csv", index=False, lineterminator="\r\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(parts.iterdir()):
            archive.write(part, part.name)


def _readme(collection: Collection, crs: ExportCrs, names: dict[str, str]) -> str:
    lines = [
        collection.title,
        "",
        collection.description,
        "",
        f"Attribution: {collection.attribution}",
        f"Coordinate reference system: {crs.uri} (x = easting or longitude)",
        "",
        "DBF field names (at most 10 characters) and the columns they hold:",
        *(f"  {name:<10}  {column}" for column, name in names.items()),
    ]
    return "\n".join(lines) + "\n"
