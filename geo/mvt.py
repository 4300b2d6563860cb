"""Mapbox Vector Tile encoding (specification 2.1), written as protobuf by hand.

The encoder takes geometries already in tile coordinates: integers on a grid of ``extent``
units (4096 by default) with x to the right and y down, possibly a little outside
``[0, extent]`` (the buffer). Polygons must be valid; their rings are oriented here so that
exteriors have a positive area by the surveyor's formula in tile coordinates (they look
clockwise on screen) and holes a negative one, as the specification requires.

Only the messages of ``vector_tile.proto`` that a writer needs are produced: ``Tile`` with
``layers`` (field 3), ``Layer`` (version 2, name, features, keys, values, extent),
``Feature`` (id, packed tags, type, packed geometry commands) and ``Value`` (string, double,
uint, sint or bool).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

EXTENT = 4096
POINT, LINESTRING, POLYGON = 1, 2, 3
_MOVE_TO, _LINE_TO, _CLOSE_PATH = 1, 2, 7
_VARINT, _FIXED64, _BYTES = 0, 1, 2

PropertyValue = str | int | float | bool


@dataclass(frozen=True)
class Feature:
    """One feature of a layer: integer id, geometry in tile coordinates, properties."""

    id: int
    geometry: BaseGeometry
    properties: Mapping[str, PropertyValue]


def encode_tile(layers: Mapping[str, Iterable[Feature]], extent: int = EXTENT) -> bytes:
    """Encode layers of features as one tile; layers without features are left out.

    Parameters
    ----------
    layers
        Layer name to its features, in drawing order.
    extent
        Tile size in grid units.

    Returns
    -------
    bytes
        The ``Tile`` message (empty when no layer has a feature).
    """
    out = bytearray()
    for name, features in layers.items():
        layer = _layer(name, features, extent)
        if layer is not None:
            out += _field(3, layer)
    return bytes(out)


def _layer(name: str, features: Iterable[Feature], extent: int) -> bytes | None:
    keys: dict[str, int] = {}
    values: dict[tuple[str, PropertyValue], int] = {}
    body = bytearray()
    for feature in features:
        encoded = _feature(feature, keys, values)
        if encoded is not None:
            body += _field(2, encoded)
    if not body:
        return None
    head = _key(15, _VARINT) + _varint(2) + _field(1, name.encode())
    tail = bytearray()
    for key in keys:
        tail += _field(3, key.encode())
    for (_, value), _index in values.items():
        tail += _field(4, _value(value))
    tail += _key(5, _VARINT) + _varint(extent)
    return bytes(head + body + tail)


def _feature(
    feature: Feature,
    keys: dict[str, int],
    values: dict[tuple[str, PropertyValue], int],
) -> bytes | None:
    kind, commands = geometry_commands(feature.geometry)
    if not commands.size:
        return None
    tags: list[int] = []
    for key, value in feature.properties.items():
        tags.append(keys.setdefault(key, len(keys)))
        tags.append(values.setdefault((type(value).__name__, value), len(values)))
    out = _key(1, _VARINT) + _varint(feature.id)
    if tags:
        out += _field(2, _varints(np.asarray(tags, dtype=np.uint64)))
    out += _key(3, _VARINT) + _varint(kind)
    return out + _field(4, _varints(commands))


def geometry_commands(geom: BaseGeometry) -> tuple[int, np.ndarray]:
    """The geometry type (1 point, 2 line, 3 polygon) and its command integers.

    Of a geometry collection the parts of the highest dimension are kept. Repeated points
    are dropped; rings left with fewer than three points (and the holes of a dropped
    exterior) are dropped too.
    """
    parts = [p for p in shapely.get_parts(geom) if not p.is_empty]
    dims = [shapely.get_dimensions(p) for p in parts]
    if not parts:
        return POINT, np.empty(0, dtype=np.uint64)
    top = max(dims)
    parts = [p for p, d in zip(parts, dims, strict=True) if d == top]
    cursor = np.zeros(2, dtype=np.int64)
    chunks: list[np.ndarray] = []
    if top == 0:
        points = np.rint(shapely.get_coordinates(parts)).astype(np.int64)
        deltas = np.diff(np.vstack([cursor, points]), axis=0)
        chunks = [np.array([_command(_MOVE_TO, len(points))], dtype=np.uint64), _zigzag(deltas)]
        return POINT, np.concatenate(chunks)
    if top == 1:
        for line in parts:
            cursor = _path(shapely.get_coordinates(line), cursor, chunks, closed=False)
        return LINESTRING, _joined(chunks)
    for polygon in shapely.orient_polygons(parts, exterior_cw=False):
        # shapely's counter-clockwise is a positive surveyor's area in tile coordinates
        rings = [polygon.exterior, *polygon.interiors]
        for i, ring in enumerate(rings):
            before = len(chunks)
            cursor = _path(shapely.get_coordinates(ring)[:-1], cursor, chunks, closed=True)
            if i == 0 and len(chunks) == before:
                break  # a collapsed exterior: its holes go with it
    return POLYGON, _joined(chunks)


def _path(
    coords: np.ndarray, cursor: np.ndarray, chunks: list[np.ndarray], closed: bool
) -> np.ndarray:
    """Append MoveTo, LineTo (and ClosePath) for one line or ring; return the new cursor."""
    points = np.rint(coords).astype(np.int64)
    if len(points):
        keep = np.ones(len(points), dtype=bool)
        keep[1:] = np.any(np.diff(points, axis=0) != 0, axis=1)
        points = points[keep]
        if closed and len(points) > 1 and np.array_equal(points[0], points[-1]):
            points = points[:-1]
    if len(points) < (3 if closed else 2):
        return cursor
    deltas = np.diff(np.vstack([cursor, points]), axis=0)
    zz = _zigzag(deltas)
    chunks.append(np.array([_command(_MOVE_TO, 1)], dtype=np.uint64))
    chunks.append(zz[:2])
    chunks.append(np.array([_command(_LINE_TO, len(points) - 1)], dtype=np.uint64))
    chunks.append(zz[2:])
    if closed:
        chunks.append(np.array([_command(_CLOSE_PATH, 1)], dtype=np.uint64))
    return points[-1]


def _joined(chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=np.uint64)


def _command(command: int, count: int) -> int:
    return (command & 0x7) | (count << 3)


def _zigzag(deltas: np.ndarray) -> np.ndarray:
    """Zigzag-encoded (x, y) deltas, flattened."""
    d = deltas.astype(np.int64).ravel()
    return ((d << 1) ^ (d >> 63)).astype(np.uint64)


def _value(value: PropertyValue) -> bytes:
    if isinstance(value, bool):
        return _key(7, _VARINT) + _varint(int(value))
    if isinstance(value, int):
        if value >= 0:
            return _key(5, _VARINT) + _varint(value)
        return _key(6, _VARINT) + _varint((value << 1) ^ (value >> 63))
    if isinstance(value, float):
        return _key(3, _FIXED64) + struct.pack("<d", value)
    return _field(1, str(value).encode())


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _field(field: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _key(field, _BYTES) + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _varints(values: np.ndarray) -> bytes:
    """Base-128 varints of unsigned integers, vectorised (a packed repeated field)."""
    v = values.astype(np.uint64)
    if not v.size:
        return b""
    shifts = np.arange(10, dtype=np.uint64) * np.uint64(7)
    groups = ((v[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    lengths = 1 + (v[:, None] >= (np.uint64(1) << shifts[1:])).sum(axis=1)
    used = np.arange(10) < lengths[:, None]
    more = np.arange(10) < (lengths - 1)[:, None]
    groups[more] |= 0x80
    return groups[used].tobytes()
