"""Mapbox Vector Tiles of feature collections on the OGC WebMercatorQuad tile matrix set.

Addressing
----------
OGC API - Tiles writes a tile as ``{tileMatrix}/{tileRow}/{tileCol}``. In WebMercatorQuad
(EPSG:3857) the tile matrix is the zoom level ``z``; the row ``y`` counts from the north edge
(85.0511 degrees N) southwards and the column ``x`` from the antimeridian (180 degrees W)
eastwards, as in the XYZ ("slippy map") scheme of Leaflet and OpenStreetMap, not TMS, whose
rows count from the south. The service's URLs are therefore ``.../WebMercatorQuad/{z}/{y}/{x}``:
row before column. Every function here takes ``(z, x, y)`` in that XYZ meaning.

Content of a tile
-----------------
* **Selection**: the features whose geometry (as stored, projected to EPSG:3857) intersects
  the tile's bounds, less those smaller than one pixel of a 256-pixel tile at that zoom
  (polygons of less than one square pixel, lines shorter than a pixel).
* **Generalisation**: per zoom up to :data:`DATA_MAX_ZOOM`, every distinct geometry is
  simplified with a tolerance of one pixel (:func:`pixel_size`); polygons as a coverage
  (``shapely.coverage_simplify``), so a border shared by two regions stays shared, without
  gaps or slivers. Deeper zooms use the geometries as stored.
* **Clipping**: to the tile's bounds grown by :data:`BUFFER` grid units (4 pixels) on every
  side, so outlines do not show at tile edges, then snapped to the 4096-unit grid.
* **Encoding**: one layer named after the collection; feature ids are integers (the
  feature's position in the collection, from 1) and the string id is the property ``id``,
  beside the collection's own properties (missing values left out).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from geo.collections import Collection
from geo.errors import InvalidParameterError
from geo.mvt import EXTENT, Feature, PropertyValue, encode_tile

HALF_WORLD = math.pi * 6378137.0  # EPSG:3857 spans [-HALF_WORLD, HALF_WORLD] on both axes
MAX_LATITUDE = math.degrees(math.atan(math.sinh(math.pi)))  # 85.0511...
TILE_PIXELS = 256
BUFFER = 64  # grid units of 4096: 4 pixels
MAX_ZOOM = 24  # the deepest tile matrix of WebMercatorQuad
DATA_MAX_ZOOM = 12  # deepest generalised zoom, advertised as maxzoom (GISCO 1:1M or coarser)
WEB_MERCATOR_QUAD = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
WEB_MERCATOR_CRS = "http://www.opengis.net/def/crs/EPSG/0/3857"

_to_mercator = Transformer.from_crs(4326, 3857, always_xy=True)


def check_tile(z: int, x: int, y: int) -> None:
    """Raise :class:`InvalidParameterError` unless ``(z, x, y)`` is a WebMercatorQuad tile.

    Parameters
    ----------
    z
        Zoom level (tileMatrix), 0 to :data:`MAX_ZOOM`.
    x, y
        Column (tileCol, from the west) and row (tileRow, from the north), 0 to 2**z - 1.
    """
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidParameterError(f"zoom (tileMatrix) must be 0 to {MAX_ZOOM}, not {z}")
    last = (1 << z) - 1
    for name, value in (("column x (tileCol)", x), ("row y (tileRow)", y)):
        if not 0 <= value <= last:
            raise InvalidParameterError(f"tile {name} must be 0 to {last} at zoom {z}, not {value}")


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Bounds ``(minx, miny, maxx, maxy)`` of a tile in EPSG:3857 metres.

    Row ``y`` = 0 is the northernmost row, column ``x`` = 0 the westernmost column.
    """
    check_tile(z, x, y)
    size = 2 * HALF_WORLD / (1 << z)
    minx = -HALF_WORLD + x * size
    maxy = HALF_WORLD - y * size
    return (minx, maxy - size, minx + size, maxy)


def pixel_size(z: int) -> float:
    """Width of one pixel of a 256-pixel tile at zoom ``z``, in EPSG:3857 metres."""
    return 2 * HALF_WORLD / (TILE_PIXELS * (1 << z))


def to_web_mercator(geoms: np.ndarray) -> np.ndarray:
    """Longitude/latitude geometries projected to EPSG:3857, cut at 85.0511 degrees."""
    if not len(geoms):  # an empty collection (an analysis without catchments)
        return np.asarray(geoms, dtype=object)
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    if ymin < -MAX_LATITUDE or ymax > MAX_LATITUDE or xmin < -180 or xmax > 180:
        geoms = shapely.clip_by_rect(geoms, -180, -MAX_LATITUDE, 180, MAX_LATITUDE)

    def project(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(_to_mercator.transform(coords[:, 0], coords[:, 1]))

    return shapely.transform(geoms, project)


def generalise(geoms: np.ndarray, z: int) -> np.ndarray:
    """Geometries simplified with a tolerance of one pixel at zoom ``z``.

    Polygons are simplified together as a coverage, keeping shared borders shared; other
    geometries one by one, preserving their topology. Zooms past :data:`DATA_MAX_ZOOM` are
    returned as they are.

    Parameters
    ----------
    geoms
        Geometries in EPSG:3857.
    z
        Zoom level.

    Returns
    -------
    numpy.ndarray
        Valid geometries, in the same order.
    """
    if z > DATA_MAX_ZOOM or not len(geoms):
        return geoms
    tolerance = pixel_size(z)
    if (shapely.get_dimensions(geoms) == 2).all():
        try:
            out = shapely.coverage_simplify(geoms, tolerance)
        except shapely.errors.GEOSException:  # not a coverage GEOS can read: one by one
            out = shapely.simplify(geoms, tolerance, preserve_topology=True)
    else:
        out = shapely.simplify(geoms, tolerance, preserve_topology=True)
    invalid = ~shapely.is_valid(out)
    out[invalid] = shapely.make_valid(out[invalid])
    return out


def to_tile_grid(geoms: np.ndarray, bounds: tuple[float, float, float, float]) -> np.ndarray:
    """EPSG:3857 geometries clipped to the buffered tile and snapped to its integer grid.

    The grid has :data:`~geo.mvt.EXTENT` units across the tile, x to the east and y to the
    south from the tile's north-west corner; polygons stay valid (collapsed parts go).
    """
    minx, miny, maxx, maxy = bounds
    scale = EXTENT / (maxx - minx)
    pad = BUFFER / scale
    clipped = shapely.clip_by_rect(geoms, minx - pad, miny - pad, maxx + pad, maxy + pad)

    def local(coords: np.ndarray) -> np.ndarray:
        return np.column_stack([(coords[:, 0] - minx) * scale, (maxy - coords[:, 1]) * scale])

    grid = shapely.transform(clipped, local)
    mixed = shapely.get_type_id(grid) == 7  # collections from clipping: keep their polygons
    grid[mixed] = [_polygonal_part(g) for g in grid[mixed]]
    return shapely.set_precision(grid, 1.0)


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry:
    parts = [p for p in shapely.get_parts(geom) if shapely.get_dimensions(p) == 2]
    return shapely.multipolygons(parts) if parts else shapely.from_wkt("POLYGON EMPTY")


class TileSource:
    """A collection prepared for tiling: distinct geometries in EPSG:3857, an index of them,
    their generalisations per zoom (computed when first asked for) and clean properties.

    Features that share a geometry (a region in every year of a dataset) share its work.

    Parameters
    ----------
    collection
        The features (EPSG:4326), their ids, title and queryable properties.
    """

    def __init__(self, collection: Collection) -> None:
        frame = collection.features
        self.collection = collection
        self.name = collection.id
        self.ids = frame.index.astype(str).to_numpy()
        self._which, distinct = _distinct(frame.geometry.to_numpy())
        self.geometries = to_web_mercator(distinct)
        self._tree = shapely.STRtree(self.geometries)
        dims = shapely.get_dimensions(self.geometries)
        size = np.where(dims == 2, shapely.area(self.geometries), np.inf)
        self._size = np.where(dims == 1, shapely.length(self.geometries), size)
        self._dims = dims
        self._properties = frame.drop(columns=frame.geometry.name)
        self._generalised: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def generalised(self, z: int) -> np.ndarray:
        """The distinct geometries generalised for zoom ``z`` (cached)."""
        with self._lock:
            if z not in self._generalised:
                self._generalised[z] = generalise(self.geometries, z)
            return self._generalised[z]

    def selected(
        self, z: int, x: int, y: int, where: Mapping[str, str] | None = None
    ) -> np.ndarray:
        """Positions of the features in tile ``(z, x, y)`` that match ``where``, in order."""
        hits = self._tree.query(shapely.box(*tile_bounds(z, x, y)), predicate="intersects")
        px = pixel_size(z)
        hits = hits[self._size[hits] >= np.where(self._dims[hits] == 2, px * px, px)]
        return np.flatnonzero(np.isin(self._which, hits) & self.matches(where))

    def matches(self, where: Mapping[str, str] | None) -> np.ndarray:
        """Which features have every property of ``where`` equal to its value.

        Only the collection's queryables can be filtered on; numbers compare as numbers.
        """
        mask = np.ones(len(self.ids), dtype=bool)
        for key, text in (where or {}).items():
            if key not in self.collection.queryables:
                raise InvalidParameterError(
                    f"cannot filter {self.name} on {key!r}; its queryable properties are "
                    f"{list(self.collection.queryables)}"
                )
            mask &= _equals(self.collection.features[key], key, text)
        return mask

    def tile(self, z: int, x: int, y: int, where: Mapping[str, str] | None = None) -> bytes:
        """Encode one tile.

        Parameters
        ----------
        z, x, y
            The tile: zoom, column from the west, row from the north.
        where
            Property values to keep (queryables only), e.g. ``{"year": "2018"}``.

        Returns
        -------
        bytes
            The Mapbox Vector Tile, one layer named after the collection; empty when no
            feature is in the tile.

        Raises
        ------
        InvalidParameterError
            For a tile outside the matrix or a filter on a property that is not queryable.
        """
        positions = self.selected(z, x, y, where)
        if not positions.size:
            return b""
        needed = np.unique(self._which[positions])
        grid = to_tile_grid(self.generalised(z)[needed], tile_bounds(z, x, y))
        shapes = dict(zip(needed.tolist(), grid, strict=True))
        records = _records(self._properties.iloc[positions])
        features = []
        for i, props in zip(positions.tolist(), records, strict=True):
            shape = shapes[int(self._which[i])]
            if not shape.is_empty:
                features.append(Feature(i + 1, shape, {"id": str(self.ids[i]), **props}))
        return encode_tile({self.name: features})


def _distinct(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each geometry's index among the distinct ones (-1 for none), and those.

    Repeated objects are recognised by identity first, so that only one copy of each is
    serialised for the comparison by content (WKB).
    """
    ids = np.fromiter((id(g) for g in geoms), dtype=np.int64, count=len(geoms))
    _, first, by_object = np.unique(ids, return_index=True, return_inverse=True)
    wkb = pd.Series(shapely.to_wkb(geoms[first]), dtype=object)
    codes, distinct = pd.factorize(wkb)  # None (no geometry) is -1
    return codes[by_object], shapely.from_wkb(np.asarray(distinct, dtype=object))


def _equals(column: pd.Series, key: str, text: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column):
        if text.lower() not in ("true", "false"):
            raise InvalidParameterError(f"{key} is true or false, not {text!r}")
        return (column == (text.lower() == "true")).fillna(False).to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(column):
        try:
            number = float(text)
        except ValueError:
            raise InvalidParameterError(f"{key} is a number, not {text!r}") from None
        return (column.astype("float64") == number).fillna(False).to_numpy(dtype=bool)
    return (column.astype(str) == text).to_numpy(dtype=bool) & column.notna().to_numpy()


def _records(frame: pd.DataFrame) -> list[dict[str, PropertyValue]]:
    """Each row as a dict of tile property values, missing and non-finite values left out."""
    columns = {str(name): [_scalar(v) for v in frame[name].tolist()] for name in frame.columns}
    rows = zip(*columns.values(), strict=True) if columns else ([] for _ in range(len(frame)))
    names = list(columns)
    return [{k: v for k, v in zip(names, row, strict=True) if v is not None} for row in rows]


def _scalar(value: Any) -> PropertyValue | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, default=str)


def field_types(source: TileSource) -> dict[str, str]:
    """TileJSON field types of the layer's properties: ``String``, ``Number``, ``Boolean``."""
    frame = source.collection.features
    types = {"id": "String"}
    for name in frame.columns.drop(frame.geometry.name):
        column = frame[name]
        if pd.api.types.is_bool_dtype(column):
            types[str(name)] = "Boolean"
        elif pd.api.types.is_numeric_dtype(column):
            types[str(name)] = "Number"
        else:
            types[str(name)] = "String"
    return types


def tilejson(source: TileSource, tiles: str) -> dict[str, Any]:
    """TileJSON 3.0.0 of a collection's tiles, with OGC API - Tiles tileset fields.

    Parameters
    ----------
    source
        The prepared collection.
    tiles
        URL template of the tiles, with ``{z}``, ``{x}`` and ``{y}`` placeholders.
    """
    west, south, east, north = source.collection.bbox
    south, north = max(south, -MAX_LATITUDE), min(north, MAX_LATITUDE)
    (x0, x1), (y0, y1) = _to_mercator.transform([west, east], [south, north])
    span = max(x1 - x0, y1 - y0, pixel_size(DATA_MAX_ZOOM))
    zoom = int(min(DATA_MAX_ZOOM, max(0, math.floor(math.log2(2 * HALF_WORLD / span)))))
    layer = {
        "id": source.name,
        "description": source.collection.title,
        "minzoom": 0,
        "maxzoom": DATA_MAX_ZOOM,
        "fields": field_types(source),
    }
    return {
        "tilejson": "3.0.0",
        "name": source.collection.title,
        "description": source.collection.description,
        "attribution": source.collection.attribution,
        "scheme": "xyz",
        "tiles": [tiles],
        "minzoom": 0,
        "maxzoom": DATA_MAX_ZOOM,
        "bounds": [west, south, east, north],
        "center": [(west + east) / 2, (south + north) / 2, zoom],
        "vector_layers": [layer],
        "dataType": "vector",
        "crs": WEB_MERCATOR_CRS,
        "tileMatrixSetURI": WEB_MERCATOR_QUAD,
    }


@dataclass(frozen=True)
class EncodedTile:
    """Tile bytes and their entity tag (a hash of the bytes, quoted for HTTP)."""

    data: bytes
    etag: str

    @classmethod
    def of(cls, data: bytes) -> EncodedTile:
        return cls(data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')


TileKey = tuple[str, int, int, int, tuple[tuple[str, str], ...]]


class TileCache:
    """Least-recently-used caches of encoded tiles and of prepared collections.

    Tiles are keyed by ``(collection, z, x, y, filter)`` and bounded by their total size;
    prepared collections (:class:`TileSource`) by their number. Thread-safe.

    Parameters
    ----------
    max_bytes
        Most bytes of tiles kept.
    max_sources
        Most prepared collections kept.
    """

    def __init__(self, max_bytes: int = 64 << 20, max_sources: int = 8) -> None:
        self.max_bytes = max_bytes
        self.max_sources = max_sources
        self._tiles: OrderedDict[TileKey, EncodedTile] = OrderedDict()
        self._sources: OrderedDict[str, TileSource] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._loading = threading.Lock()

    def tile(
        self,
        collection_id: str,
        z: int,
        x: int,
        y: int,
        load: Callable[[], Collection],
        where: Mapping[str, str] | None = None,
    ) -> EncodedTile:
        """The tile, from the cache or encoded now; ``load`` gives the collection if needed."""
        check_tile(z, x, y)
        key = (collection_id, z, x, y, tuple(sorted((where or {}).items())))
        with self._lock:
            if key in self._tiles:
                self.hits += 1
                self._tiles.move_to_end(key)
                return self._tiles[key]
        tile = EncodedTile.of(self.source(collection_id, load).tile(z, x, y, where))
        with self._lock:
            self.misses += 1
            if key not in self._tiles:
                self._tiles[key] = tile
                self._bytes += len(tile.data)
            while self._bytes > self.max_bytes and len(self._tiles) > 1:
                _, old = self._tiles.popitem(last=False)
                self._bytes -= len(old.data)
        return tile

    def source(self, collection_id: str, load: Callable[[], Collection]) -> TileSource:
        """The prepared collection, loaded and prepared once."""
        with self._lock:
            if collection_id in self._sources:
                self._sources.move_to_end(collection_id)
                return self._sources[collection_id]
        with self._loading:  # one collection prepared at a time; others wait for it
            with self._lock:
                if collection_id in self._sources:
                    return self._sources[collection_id]
            source = TileSource(load())
            with self._lock:
                self._sources[collection_id] = source
                while len(self._sources) > self.max_sources:
                    self._sources.popitem(last=False)
        return source

    def info(self) -> dict[str, int]:
        """Counts: cached tiles, their bytes, prepared collections, hits and misses."""
        with self._lock:
            return {
                "tiles": len(self._tiles),
                "bytes": self._bytes,
                "sources": len(self._sources),
                "hits": self.hits,
                "misses": self.misses,
            }
