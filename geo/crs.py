"""Coordinate reference systems by URI (OGC API – Features Part 2), with their axis order.

OGC URIs name a CRS (``http://www.opengis.net/def/crs/EPSG/0/3035``); coordinates follow the
axis order of its definition: CRS84 longitude/latitude, EPSG:4326 latitude/longitude,
EPSG:3035 northing/easting, EPSG:3857 easting/northing. Layers are held in lon/lat
(geopandas' traditional GIS order), so every transform here states which order it speaks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from geo.errors import InvalidParameterError

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"
# The CRSs every collection offers: the default first (OGC API – Features Part 2, "crs").
SUPPORTED = (
    CRS84,
    EPSG_URI.format(code=4326),
    EPSG_URI.format(code=3035),
    EPSG_URI.format(code=3857),
)

_URI = re.compile(r"^https?://www\.opengis\.net/def/crs/(EPSG|OGC)/([^/]+)/([^/]+)/?$", re.I)
_CURIE = re.compile(r"^\[?(EPSG|OGC):(?::?[\d.]*:)?([A-Za-z0-9]+)\]?$", re.I)
_URN = re.compile(r"^urn:ogc:def:crs:(EPSG|OGC):[\d.]*:([A-Za-z0-9]+)$", re.I)


@dataclass(frozen=True)
class CrsInfo:
    """One CRS: its URI, pyproj definition and how coordinates are written in it."""

    uri: str
    crs: pyproj.CRS
    northing_first: bool  # first axis points north (EPSG:4326 lat/lon, EPSG:3035 N/E)
    geographic: bool

    @property
    def header(self) -> str:
        """The ``Content-Crs`` header value: the URI in angle brackets."""
        return f"<{self.uri}>"

    def decimals(self, degree_decimals: int) -> int:
        """Decimal places of coordinates: as configured for degrees; for metres one decimal
        at most (0.1 m), none when the degree precision is coarser than about 10 m."""
        if self.geographic:
            return degree_decimals
        return max(0, min(1, degree_decimals - 4))


def canonical(value: str, supported: tuple[str, ...] = SUPPORTED) -> str:
    """The supported URI that ``value`` names (a URI, ``[EPSG:3035]``, ``EPSG:3035``,
    ``OGC:CRS84`` or ``urn:ogc:def:crs:EPSG::3035``), or :class:`InvalidParameterError`
    naming the supported ones."""
    text = value.strip()
    uri = None
    if match := _URI.match(text):
        uri = f"http://www.opengis.net/def/crs/{match[1].upper()}/{match[2]}/{match[3]}"
    elif match := (_CURIE.match(text) or _URN.match(text)):
        auth, code = match[1].upper(), match[2]
        uri = CRS84 if (auth, code.upper()) == ("OGC", "CRS84") else EPSG_URI.format(code=code)
        if auth == "OGC" and uri != CRS84:
            uri = None
    if uri is None or uri not in supported:
        raise InvalidParameterError(
            f"unsupported CRS {value!r}; supported: {list(supported)} "
            "(URIs, or safe CURIEs such as [EPSG:3035])"
        )
    return uri


@lru_cache(maxsize=32)
def crs_info(uri: str) -> CrsInfo:
    """Definition and axis order of a supported CRS URI."""
    crs = pyproj.CRS.from_user_input("OGC:CRS84" if uri == CRS84 else uri)
    first = crs.axis_info[0].direction.lower()
    return CrsInfo(uri, crs, first in ("north", "south"), crs.is_geographic)


@lru_cache(maxsize=32)
def _transformer(source: str, target: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs_info(source).crs, crs_info(target).crs, always_xy=True)


def _apply(transformer: pyproj.Transformer, xy: np.ndarray) -> np.ndarray:
    x, y = transformer.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def swap_xy(geoms: np.ndarray) -> np.ndarray:
    """Geometries with their first two coordinates exchanged."""
    return np.asarray(shapely.transform(geoms, lambda xy: xy[:, ::-1]))


def from_lonlat(geoms: np.ndarray, target: CrsInfo, authority_order: bool = True) -> np.ndarray:
    """Transform lon/lat geometries into ``target``; with ``authority_order`` the
    coordinates follow the CRS's axis order (latitude first in EPSG:4326)."""
    out = np.asarray(geoms, dtype=object)
    if target.uri not in (CRS84, EPSG_URI.format(code=4326)):
        transformer = _transformer(CRS84, target.uri)
        out = np.asarray(shapely.transform(out, lambda xy: _apply(transformer, xy)))
    return swap_xy(out) if authority_order and target.northing_first else out


def to_lonlat(geoms: np.ndarray, source: CrsInfo, authority_order: bool = True) -> np.ndarray:
    """Transform geometries in ``source`` (in its axis order when ``authority_order``)
    into lon/lat."""
    out = np.asarray(geoms, dtype=object)
    if authority_order and source.northing_first:
        out = swap_xy(out)
    if source.uri not in (CRS84, EPSG_URI.format(code=4326)):
        transformer = _transformer(source.uri, CRS84)
        out = np.asarray(shapely.transform(out, lambda xy: _apply(transformer, xy)))
    return out


def transform_frame(gdf: gpd.GeoDataFrame, uri: str) -> gpd.GeoDataFrame:
    """A copy of a GeoDataFrame in the CRS ``uri``, coordinates in that CRS's axis order
    (as OGC API clients read them; geopandas itself keeps easting/longitude first)."""
    info = crs_info(canonical(uri))
    lonlat = gdf.to_crs(4326) if gdf.crs is not None and not gdf.crs.equals(4326) else gdf
    geoms = from_lonlat(lonlat.geometry.values, info)
    return gpd.GeoDataFrame(lonlat.drop(columns=lonlat.geometry.name), geometry=geoms, crs=None)


def bbox_area(values: tuple[float, ...], source: CrsInfo) -> shapely.Geometry:
    """The lon/lat area of a ``bbox`` given in ``source``'s axis order.

    Four numbers (or six, whose heights are ignored: the layers are 2D). In CRS84 a west
    edge east of the east edge crosses the antimeridian. The box's edges are densified
    before the transform, so a projected box keeps its curved outline in lon/lat.
    """
    if len(values) == 6:
        values = (values[0], values[1], values[3], values[4])
    a1, a2, b1, b2 = values
    x0, y0, x1, y1 = (a2, a1, b2, b1) if source.northing_first else (a1, a2, b1, b2)
    if not np.isfinite([x0, y0, x1, y1]).all():
        raise InvalidParameterError(f"bbox {list(values)} holds a non-finite number")
    if source.geographic:
        if not (-90 <= y0 <= y1 <= 90):
            raise InvalidParameterError(
                f"bbox {list(values)}: latitudes must lie within -90..90, the lower first"
            )
        if not (-180 <= x0 <= 180 and -180 <= x1 <= 180):
            raise InvalidParameterError(
                f"bbox {list(values)}: longitudes must lie within -180..180"
            )
        if x0 > x1:  # across the antimeridian
            return shapely.MultiPolygon(
                [shapely.box(x0, y0, 180.0, y1), shapely.box(-180.0, y0, x1, y1)]
            )
        return shapely.box(x0, y0, x1, y1)
    if x0 > x1 or y0 > y1:
        raise InvalidParameterError(
            f"bbox {list(values)}: the lower corner must come first in {source.uri}"
        )
    box = shapely.segmentize(shapely.box(x0, y0, x1, y1), max(x1 - x0, y1 - y0) / 64 or 1.0)
    return to_lonlat(np.array([box], dtype=object), source, authority_order=False)[0]
