"""The reference side: PySAL esda's ``G_Local`` and ``Moran_Local`` with ``n_jobs=1``.

esda takes no missing values, so every series runs on its own valid regions with a libpysal
``W`` built for that subset (one ``W`` per distinct set of valid regions, as a user looping
over series would do; the ``W`` of all regions is built once beforehand). Outputs are
spread back over all regions, NaN elsewhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp

from geo.weights import SpatialWeights


@contextmanager
def quiet() -> Iterator[None]:
    """Silence esda's and libpysal's expected warnings (islands, default alternative)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def esda_weights(adjacency: sp.csr_array) -> Any:
    """A libpysal ``W`` with the same binary neighbours as ``adjacency``."""
    from libpysal.weights import WSP

    with quiet():
        return WSP(sp.csr_matrix(adjacency)).to_W(silence_warnings=True)


def esda_statistic(
    y: np.ndarray, w: Any, method: str, permutations: int, keep_simulations: bool | None
) -> tuple[np.ndarray, np.ndarray]:
    """esda's statistic (Gi* ``Zs`` or Local Moran ``Is``) and its ``p_sim`` for one series.

    ``keep_simulations=None`` leaves esda's default (``True``), which is what users get.
    """
    import esda

    options: dict[str, Any] = {"permutations": permutations, "n_jobs": 1, "seed": 1}
    if keep_simulations is not None:
        options["keep_simulations"] = keep_simulations
    with quiet():
        if method == "gi_star":
            g = esda.G_Local(y, w, transform="B", star=True, **options)
            return g.Zs, g.p_sim
        lisa = esda.Moran_Local(y, w, transformation="r", **options)
        return lisa.Is, lisa.p_sim


def _scatter(valid: np.ndarray, sub: np.ndarray) -> np.ndarray:
    out = np.full(valid.shape, np.nan)
    out[valid] = sub
    return out


class SeriesLoop:
    """esda over the rows of a panel, each on its valid regions.

    ``full_w`` is the ``W`` of all regions, built beforehand like our ``SpatialWeights``
    (so not timed). The ``W`` of a subset, needed for series with missing values, is built
    on first use and cached per subset: that work counts in esda's time.
    """

    def __init__(
        self,
        weights: SpatialWeights,
        full_w: Any,
        method: str,
        permutations: int,
        keep: bool | None,
    ) -> None:
        self.weights = weights
        self.full_w = full_w
        self.method = method
        self.permutations = permutations
        self.keep = keep
        self._w: dict[bytes, Any] = {}

    def weights_for(self, valid: np.ndarray) -> Any:
        """The ``W`` of the valid regions."""
        if valid.all():
            return self.full_w
        key = np.packbits(valid).tobytes()
        if key not in self._w:
            self._w[key] = esda_weights(self.weights.subset(valid).adjacency)
        return self._w[key]

    def series(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Statistic and ``p_sim`` of one series, over all regions (NaN where missing)."""
        valid = np.isfinite(row)
        stat, p_sim = esda_statistic(
            row[valid], self.weights_for(valid), self.method, self.permutations, self.keep
        )
        return _scatter(valid, stat), _scatter(valid, p_sim)

    def panel(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(S, n)`` statistics and p-values of every row of ``values``."""
        parts = [self.series(row) for row in values]
        return np.vstack([s for s, _ in parts]), np.vstack([p for _, p in parts])
