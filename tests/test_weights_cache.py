"""Weights kept on disk equal the ones libpysal builds, and are found again."""

from __future__ import annotations

import numpy as np
import pytest

from geo.areas import resolve
from geo.boundaries import layer_key, load_boundaries
from geo.weights import build_weights, cached_weights


@pytest.mark.parametrize("spec", ["queen", "rook", "knn:4"])
def test_cached_weights_equal_libpysal(settings, tmp_path, spec):
    """The first call builds with libpysal and writes; the second reads the same graph."""
    layer = load_boundaries(settings)
    gdf = layer.loc[resolve(settings, layer, "austria", 3)][["geometry"]]
    built = build_weights(gdf, spec)
    first = cached_weights(gdf, spec, tmp_path, layer_key(settings))
    assert len(list((tmp_path / "weights").glob("*.npz"))) == 1
    second = cached_weights(gdf, spec, tmp_path, layer_key(settings))
    for w in (first, second):
        np.testing.assert_array_equal(w.ids, built.ids)
        assert (w.adjacency != built.adjacency).nnz == 0
        assert str(w.spec) == spec
    other = cached_weights(gdf.iloc[:-1], spec, tmp_path, layer_key(settings))
    assert other.n == built.n - 1
    assert len(list((tmp_path / "weights").glob("*.npz"))) == 2
