"""Spatial weights built with libpysal: queen, rook, k-nearest neighbours, distance band."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from geo.boundaries import EQUAL_AREA_CRS
from geo.errors import InvalidParameterError

_SPEC = re.compile(r"^(queen|rook)$|^knn:(\d+)$|^distance:(\d+(?:\.\d+)?)$")
SPEC_HELP = "queen, rook, knn:K (K nearest neighbours) or distance:KM (band in km, EPSG:3035)"


@dataclass(frozen=True)
class WeightsSpec:
    """A parsed weights specification such as ``queen`` or ``knn:6``."""

    kind: str
    k: int | None = None
    km: float | None = None

    @classmethod
    def parse(cls, spec: str) -> WeightsSpec:
        """Parse ``queen``, ``rook``, ``knn:K`` or ``distance:KM``."""
        m = _SPEC.match(spec.strip().lower())
        if not m:
            raise InvalidParameterError(f"weights {spec!r} not understood; use {SPEC_HELP}")
        if m.group(1):
            return cls(m.group(1))
        if m.group(2):
            k = int(m.group(2))
            if k < 1:
                raise InvalidParameterError(f"knn needs K >= 1, not {k}; use {SPEC_HELP}")
            return cls("knn", k=k)
        km = float(m.group(3))
        if km <= 0:
            raise InvalidParameterError(
                f"distance band needs a positive km, not {km:g}; use {SPEC_HELP}"
            )
        return cls("distance", km=km)

    def __str__(self) -> str:
        if self.kind == "knn":
            return f"knn:{self.k}"
        if self.kind == "distance":
            return f"distance:{self.km:g}"
        return self.kind


@dataclass(frozen=True, eq=False)
class SpatialWeights:
    """Binary neighbour relations between regions, without self-links.

    ``adjacency[i, j] == 1`` when ``ids[j]`` is a neighbour of ``ids[i]``. It is
    symmetric for contiguity and distance bands and may be asymmetric for knn.
    """

    ids: np.ndarray
    adjacency: sp.csr_array
    spec: WeightsSpec

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def cardinalities(self) -> np.ndarray:
        """Number of neighbours of every region."""
        return np.diff(self.adjacency.indptr)

    @cached_property
    def csr(self) -> tuple[np.ndarray, np.ndarray]:
        """``(indptr, indices)`` for the kernels: int32 (half the bytes to ship to workers)
        unless the graph is too large for it."""
        dtype = np.int32 if self.adjacency.nnz < 2**31 - 1 else np.int64
        adj = self.adjacency
        return np.asarray(adj.indptr, dtype=dtype), np.asarray(adj.indices, dtype=dtype)

    @cached_property
    def moran_moments(self) -> tuple[float, float]:
        """esda's ``s1`` and ``s2`` of the row-standardised weights ``w_ij = a_ij / k_i``:
        ``s1 = sum_ij w_ij^2 + sum_ij w_ij w_ji``, ``s2 = sum_i (1 + sum_j w_ji)^2`` over
        non-isolates, for the variance of global Moran's I (see
        :func:`geo._kernels.moments`). They depend on the graph only, so they are cached."""
        from geo._kernels import moments

        card = self.cardinalities.astype(float)
        inv = np.divide(1.0, card, out=np.zeros(self.n), where=card > 0)
        s1, s2 = moments(*self.csr, inv)
        return float(s1), float(s2)

    def pieces(self, rows: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(rows, indptr, indices)`` of every chunk of region numbers: the CSR rows of
        the chunk alone, so a worker gets only the part of the graph it needs."""
        indptr, indices = self.csr
        out = []
        for chunk in rows:
            card = indptr[chunk + 1] - indptr[chunk]
            local = np.zeros(len(chunk) + 1, dtype=indptr.dtype)
            np.cumsum(card, out=local[1:])
            gather = np.repeat(indptr[chunk] - local[:-1], card) + np.arange(local[-1])
            out.append((chunk, local, indices[gather]))
        return out

    @property
    def isolates(self) -> np.ndarray:
        """Ids of the regions without neighbours."""
        return self.ids[self.cardinalities == 0]

    def subset(self, keep: np.ndarray) -> SpatialWeights:
        """The weights among the regions where the boolean ``keep`` is true."""
        if keep.all():
            return self
        idx = np.flatnonzero(keep)
        sub = sp.csr_array(self.adjacency[idx][:, idx])
        sub.sort_indices()
        return SpatialWeights(self.ids[idx], sub, self.spec)

    def components(self, members: np.ndarray) -> np.ndarray:
        """Connected-component labels of the regions where ``members`` is true, else -1.

        Links are taken in both directions, so knn graphs are weakly connected.
        """
        labels = np.full(self.n, -1, dtype=np.int64)
        idx = np.flatnonzero(members)
        if not len(idx):
            return labels
        sub = self.adjacency[idx][:, idx]
        _, comp = connected_components(sub, directed=True, connection="weak")
        labels[idx] = comp
        return labels


def build_weights(gdf: gpd.GeoDataFrame, spec: str | WeightsSpec) -> SpatialWeights:
    """Build weights for the regions of ``gdf`` (indexed by region id) with libpysal.

    Contiguity is computed on the shared boundaries of the GISCO layer, across national
    borders. knn and distance bands use the centroids in EPSG:3035 (metres).
    """
    from libpysal.graph import Graph  # heavy import, kept lazy

    ws = spec if isinstance(spec, WeightsSpec) else WeightsSpec.parse(spec)
    ids = np.asarray(gdf.index.astype(str))
    if ws.kind in ("queen", "rook"):
        graph = Graph.build_contiguity(gdf.geometry, rook=ws.kind == "rook")
    else:
        points = gdf.geometry.to_crs(EQUAL_AREA_CRS).centroid
        if ws.kind == "knn":
            if ws.k is None or ws.k >= len(gdf):
                raise InvalidParameterError(
                    f"knn:{ws.k} needs more than {ws.k} regions; the area has {len(gdf)}"
                )
            graph = Graph.build_knn(points, k=ws.k)
        else:
            graph = Graph.build_distance_band(points, threshold=float(ws.km or 0) * 1000.0)
    return SpatialWeights(ids, _binary_adjacency(graph, ids), ws)


def _binary_adjacency(graph: object, ids: np.ndarray) -> sp.csr_array:
    """A 0/1 CSR matrix without diagonal, rows and columns ordered as ``ids``."""
    from libpysal.graph import Graph

    assert isinstance(graph, Graph)
    order = {rid: i for i, rid in enumerate(graph.unique_ids)}
    perm = np.array([order[r] for r in ids])
    adj = sp.csr_array(graph.sparse)[perm][:, perm]
    adj.setdiag(0)
    adj.eliminate_zeros()
    adj.data[:] = 1.0
    adj.sort_indices()
    return sp.csr_array(adj)


def cached_weights(
    gdf: gpd.GeoDataFrame, spec: str | WeightsSpec, cache_dir: Path, layer: str
) -> SpatialWeights:
    """:func:`build_weights`, kept on disk per layer, region set and specification.

    libpysal builds the graph once; later processes read the compressed adjacency, which
    spares them libpysal's import and the contiguity search (the cold start of a service).
    """
    ws = spec if isinstance(spec, WeightsSpec) else WeightsSpec.parse(spec)
    ids = np.asarray(gdf.index.astype(str))
    digest = hashlib.sha256("\n".join([layer, str(ws), *ids]).encode()).hexdigest()[:20]
    path = cache_dir / "weights" / f"{digest}.npz"
    if path.is_file():
        with np.load(path) as npz:
            adj = sp.csr_array((npz["data"], npz["indices"], npz["indptr"]), shape=(len(ids),) * 2)
        return SpatialWeights(ids, adj, ws)
    weights = build_weights(gdf, ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    adj = weights.adjacency
    np.savez_compressed(tmp, data=adj.data, indices=adj.indices, indptr=adj.indptr)
    tmp.replace(path)
    return weights
