"""OGC API – Features (Parts 1 and 2) without the web: layers, selection and GeoJSON.

A :class:`FeatureLayer` holds one :class:`~geo.collections.Collection` ready to serve: each
feature's GeoJSON text in pieces (``{"type":"Feature","id":...,"geometry":``, the geometry,
``,"properties":{...}}``), each distinct geometry serialised once per CRS, and the arrays
that the ``bbox``, ``datetime`` and property filters test. A page is the join of cached
bytes. Layers never change once built (NUTS layers are fixed in a process, dataset versions
and finished analyses are immutable), so :class:`Catalogue` keeps them by collection id.
Query parameters are parsed by :mod:`geo.ogc_query`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely

from geo.collections import Collection, UnknownCollectionError, collection_ids, load_collection
from geo.crs import CRS84, SUPPORTED, CrsInfo, from_lonlat, swap_xy
from geo.errors import NotFoundError
from geo.ogc_query import ItemQuery, typed_value
from geo.settings import Settings
from geo.store import Store

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
)
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
GEOJSON = "application/geo+json"


class UnknownFeatureError(NotFoundError):
    code = "unknown-feature"
    title = "Unknown feature"


# -- serialisation --------------------------------------------------------------------------

_geometry_texts: OrderedDict[tuple[bytes, str, int], bytes] = OrderedDict()
_geometry_lock = threading.Lock()
GEOMETRY_CACHE_SIZE = 20_000  # distinct geometries x CRSs kept across layers
PAGE_CACHE_SIZE = 8  # joined pages kept per layer


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Drop the lines and points that ``make_valid`` may leave beside collapsed polygons."""
    out = geoms.copy()
    mixed = np.flatnonzero(shapely.get_type_id(out) == 7)  # GeometryCollection
    for i in mixed:
        parts = [p for p in shapely.get_parts(out[i]) if p.geom_type in ("Polygon", "MultiPolygon")]
        out[i] = shapely.union_all(parts) if parts else out[i]
    return out


def geometry_texts(geoms: np.ndarray, info: CrsInfo, decimals: int) -> list[bytes]:
    """RFC 7946 GeoJSON geometries in ``info`` (its axis order), rounded to ``decimals``:
    valid, exterior rings counter-clockwise on the ground (in easting/northing order), no
    ``crs`` member. ``null`` for missing or empty geometries."""
    out: list[bytes] = [b"null"] * len(geoms)
    present = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    keys = [hashlib.blake2b(w, digest_size=16).digest() for w in shapely.to_wkb(geoms[present])]
    todo = []
    with _geometry_lock:
        for i, key in zip(present, keys, strict=True):
            text = _geometry_texts.get((key, info.uri, decimals))
            if text is None:
                todo.append((i, key))
            else:
                out[i] = text
    if todo:
        idx = np.array([i for i, _ in todo])
        planar = from_lonlat(geoms[idx], info, authority_order=False)
        # the doubles nearest to the decimals (they print as written), then repaired
        planar = shapely.transform(planar, lambda xy: np.round(xy, decimals))
        planar = shapely.remove_repeated_points(planar)
        planar = _polygonal(shapely.make_valid(planar))
        planar = shapely.orient_polygons(planar, exterior_cw=False)
        if info.northing_first:
            planar = swap_xy(planar)
        with _geometry_lock:
            for (i, key), geom in zip(todo, planar, strict=True):
                data = _geojson(geom)
                out[i] = data
                _geometry_texts[(key, info.uri, decimals)] = data
            while len(_geometry_texts) > GEOMETRY_CACHE_SIZE:
                _geometry_texts.popitem(last=False)
    return out


def _geojson(geom: shapely.Geometry | None) -> bytes:
    """Compact GeoJSON; Python's shortest float repr keeps rounded numbers clean (GEOS'
    writer prints 17.09558 as 17.095580000000002)."""
    if geom is None or geom.is_empty:
        return b"null"
    return json.dumps(shapely.geometry.mapping(geom), separators=(",", ":")).encode()


def properties_texts(frame: pd.DataFrame) -> list[bytes]:
    """Each row as a JSON object (non-finite numbers and missing values as ``null``)."""
    if not len(frame.columns):  # (such a frame is "empty" whatever its rows)
        return [b"{}"] * len(frame)
    if not len(frame):
        return []
    text = frame.to_json(
        orient="records", lines=True, force_ascii=False, double_precision=10, date_format="iso"
    )
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    assert len(lines) == len(frame), "one JSON line per row"
    return [line.encode() for line in lines]


def timestamp() -> str:
    """Now, as RFC 3339 UTC (``timeStamp`` of a response)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FeatureLayer:
    """A collection ready to serve: filter arrays and cached GeoJSON pieces."""

    def __init__(self, collection: Collection, degree_decimals: int) -> None:
        gdf = collection.features
        if gdf.crs is not None and not gdf.crs.equals(4326):
            gdf = gdf.to_crs(4326)
        self.collection = collection
        self.info = describe(collection)
        self.decimals = degree_decimals
        self.ids = np.array([str(i) for i in gdf.index], dtype=object)
        self.positions = {fid: pos for pos, fid in enumerate(self.ids)}
        self.properties = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        geoms = np.asarray(gdf.geometry.values, dtype=object)
        # Layers repeat one region's geometry for every year: serialise each object once.
        objects = np.array([id(g) for g in geoms], dtype=np.int64)
        _, firsts, codes = np.unique(objects, return_index=True, return_inverse=True)
        self.codes = codes.astype(np.int64)
        self.geometries = geoms[firsts]
        self.bounds = shapely.bounds(self.geometries)
        self.years = None if collection.time is None else collection.time.to_numpy(np.int64)
        self.heads = [
            b'{"type":"Feature","id":' + json.dumps(fid).encode() + b',"geometry":'
            for fid in self.ids
        ]
        self.tails = [b',"properties":' + p + b"}" for p in properties_texts(self.properties)]
        self._texts: dict[str, list[bytes]] = {}
        self._pages: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    def geometry_texts(self, info: CrsInfo) -> list[bytes]:
        """Each distinct geometry's GeoJSON in ``info`` (built once per CRS)."""
        texts = self._texts.get(info.uri)
        if texts is None:
            with self._lock:
                texts = self._texts.get(info.uri)
                if texts is None:
                    texts = geometry_texts(self.geometries, info, info.decimals(self.decimals))
                    self._texts[info.uri] = texts
        return texts

    def position(self, feature_id: str) -> int:
        """Row of a feature, or :class:`UnknownFeatureError`."""
        pos = self.positions.get(feature_id)
        if pos is None:
            raise UnknownFeatureError(
                f"collection {self.collection.id!r} has no feature {feature_id!r}"
            )
        return pos

    def select(self, query: ItemQuery) -> np.ndarray:
        """Rows matching every filter of ``query``, in the collection's order."""
        mask = np.ones(len(self), dtype=bool)
        if query.time is not None and self.years is not None:
            first, last = query.time.years()
            if first is not None:
                mask &= self.years >= first
            if last is not None:
                mask &= self.years <= last
        for name, values in query.equals:
            column = self.properties[name]
            typed = [typed_value(column, name, v) for v in values]
            mask &= column.isin(typed).fillna(False).to_numpy(dtype=bool)
        if query.area is not None:
            mask &= self._intersecting(query.area)[self.codes]
        return np.flatnonzero(mask)

    def _intersecting(self, area: shapely.Geometry) -> np.ndarray:
        """Which distinct geometries intersect ``area`` (lon/lat)."""
        x0, y0, x1, y1 = area.bounds
        b = self.bounds
        near = (b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0)
        hits = np.zeros(len(self.geometries), dtype=bool)
        idx = np.flatnonzero(near)
        if len(idx):
            shapely.prepare(area)
            hits[idx] = shapely.intersects(self.geometries[idx], area)
        return hits

    def tails_for(self, rows: np.ndarray, properties: tuple[str, ...] | None) -> list[bytes]:
        """``,"properties":{...}}`` of ``rows``, all properties or only the named ones."""
        if properties is None:
            return [self.tails[i] for i in rows]
        texts = properties_texts(self.properties.iloc[rows][list(properties)])
        return [b',"properties":' + p + b"}" for p in texts]

    def features(self, rows: np.ndarray, query: ItemQuery) -> bytes:
        """The features of ``rows`` as the members of a JSON array, joined (recent runs of
        consecutive rows with every property are kept: repeated pages cost no join)."""
        key = None
        if query.properties is None and len(rows) and rows[-1] - rows[0] + 1 == len(rows):
            key = (query.crs.uri, int(rows[0]), len(rows))
            cached = self._pages.get(key)
            if cached is not None:
                return cached
        text = self._join(rows, query)
        if key is not None:
            with self._lock:
                self._pages[key] = text
                while len(self._pages) > PAGE_CACHE_SIZE:
                    self._pages.popitem(last=False)
        return text

    def _join(self, rows: np.ndarray, query: ItemQuery) -> bytes:
        geoms = self.geometry_texts(query.crs)
        heads, codes = self.heads, self.codes
        tails = self.tails_for(rows, query.properties)
        parts: list[bytes] = []
        for i, tail in zip(rows.tolist(), tails, strict=True):
            parts += (heads[i], geoms[codes[i]], tail, b",")
        if parts:
            parts.pop()
        return b"".join(parts)

    def feature(self, row: int, query: ItemQuery, links: list[dict[str, Any]]) -> bytes:
        """One feature as a GeoJSON Feature with its links."""
        tail = self.tails_for(np.array([row]), query.properties)[0]
        geoms = self.geometry_texts(query.crs)
        return b"".join(
            (
                self.heads[row],
                geoms[self.codes[row]],
                tail[:-1],
                b',"links":',
                json.dumps(links).encode(),
                b"}",
            )
        )


def feature_collection(
    features: bytes, matched: int, returned: int, links: list[dict[str, Any]]
) -> bytes:
    """A GeoJSON FeatureCollection around joined ``features``."""
    meta = json.dumps(
        {
            "numberMatched": matched,
            "numberReturned": returned,
            "timeStamp": timestamp(),
            "links": links,
        }
    ).encode()
    return b"".join((b'{"type":"FeatureCollection","features":[', features, b"],", meta[1:]))


@dataclass(frozen=True)
class CollectionInfo:
    """What the collection listing shows of a collection (kept when its layer is dropped)."""

    id: str
    title: str
    description: str
    keywords: tuple[str, ...]
    attribution: str
    queryables: tuple[str, ...]
    bbox: list[float]
    interval: list[str | None] | None
    count: int


def describe(collection: Collection) -> CollectionInfo:
    return CollectionInfo(
        id=collection.id,
        title=collection.title,
        description=collection.description,
        keywords=tuple(collection.keywords),
        attribution=collection.attribution,
        queryables=tuple(collection.queryables),
        bbox=collection.bbox,
        interval=collection.interval,
        count=len(collection.features),
    )


class Catalogue:
    """The collections of one store, their layers built once and kept (least recently used
    dropped beyond ``size``); their descriptions are kept for good."""

    def __init__(self, settings: Settings, store: Store, size: int = 16) -> None:
        self.settings = settings
        self.store = store
        self.size = size
        self._layers: OrderedDict[str, FeatureLayer] = OrderedDict()
        self._infos: dict[str, CollectionInfo] = {}
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def ids(self) -> list[str]:
        """Every collection id (NUTS levels, dataset versions by level, finished analyses)."""
        return list(collection_ids(self.settings, self.store))

    def info(self, collection_id: str) -> CollectionInfo:
        """The description of a collection, or :class:`UnknownCollectionError`."""
        info = self._infos.get(collection_id)
        return info if info is not None else self.layer(collection_id).info

    def layer(self, collection_id: str) -> FeatureLayer:
        """The collection's layer, built once (concurrent callers wait for one build)."""
        with self._lock:
            layer = self._layers.get(collection_id)
            if layer is not None:
                self._layers.move_to_end(collection_id)
                return layer
            building = self._building.setdefault(collection_id, threading.Lock())
        try:
            with building:
                with self._lock:
                    layer = self._layers.get(collection_id)
                if layer is None:
                    layer = FeatureLayer(self._load(collection_id), self.settings.geojson_precision)
                    with self._lock:
                        self._layers[collection_id] = layer
                        self._infos[collection_id] = layer.info
                        while len(self._layers) > self.size:
                            self._layers.popitem(last=False)
        finally:
            with self._lock:  # unknown ids must not leave a lock each behind
                self._building.pop(collection_id, None)
        return layer

    def _load(self, collection_id: str) -> Collection:
        try:
            return load_collection(self.settings, self.store, collection_id)
        except UnknownCollectionError:
            raise
        except NotFoundError as exc:  # an unknown dataset, version or analysis in the id
            raise UnknownCollectionError(f"unknown collection {collection_id!r}: {exc}") from None


# -- metadata -------------------------------------------------------------------------------


def extent(info: CollectionInfo) -> dict[str, Any]:
    """``extent``: the CRS84 bbox and, for collections with time, the interval."""
    out: dict[str, Any] = {"spatial": {"bbox": [info.bbox], "crs": CRS84}}
    if info.interval is not None:
        out["temporal"] = {"interval": [info.interval], "trs": GREGORIAN}
    return out


_JSON_TYPES = {"b": "boolean", "i": "integer", "u": "integer", "f": "number"}


def queryables(layer: FeatureLayer, self_url: str) -> dict[str, Any]:
    """The queryable properties as a JSON Schema (OGC API – Features Part 3 style)."""
    props: dict[str, Any] = {
        "geometry": {"format": "geometry-any", "x-ogc-role": "primary-geometry"}
    }
    for name in layer.info.queryables:
        dtype = layer.properties[name].dtype
        kind = "O" if isinstance(dtype, pd.StringDtype) else dtype.kind
        if pd.api.types.is_integer_dtype(dtype):
            kind = "i"
        props[name] = {"title": name, "type": _JSON_TYPES.get(kind, "string")}
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": self_url,
        "type": "object",
        "title": layer.info.title,
        "properties": props,
        "additionalProperties": False,
    }


def collection_document(info: CollectionInfo, links: list[dict[str, Any]]) -> dict[str, Any]:
    """The collection object of ``/collections`` and ``/collections/{id}``."""
    return {
        "id": info.id,
        "title": info.title,
        "description": info.description,
        "keywords": list(info.keywords),
        "attribution": info.attribution,
        "extent": extent(info),
        "itemType": "feature",
        "itemCount": info.count,
        "crs": list(SUPPORTED),
        "storageCrs": CRS84,
        "links": links,
    }
