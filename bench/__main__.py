"""``python -m bench``: time our statistics against PySAL esda on the same inputs.

Each case prints our time, esda's time measured in the same run, and the ratio. esda is
timed warm (its numba compilation is excluded by a first untimed call).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from geo.areas import resolve
from geo.boundaries import load_boundaries
from geo.hotspots import gi_star, local_moran
from geo.indicators import load_eurostat
from geo.settings import Settings
from geo.weights import build_weights


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def alpine_case(settings: Settings) -> tuple[np.ndarray, Any, Any]:
    """GDP per inhabitant 2018 on the Alpine Space NUTS-3 regions, queen weights."""
    layer = load_boundaries(settings)
    ids = resolve(settings, layer, "alpine-space", 3)
    gdp, _ = load_eurostat(settings, "nama_10r_3gdp")
    gdp = gdp[(gdp["unit"] == "EUR_HAB") & (gdp["time"].astype(int) == 2018)]
    values = gdp.set_index("geo")["value"].astype(float).reindex(ids)
    valid = values.notna().to_numpy()
    weights = build_weights(layer.loc[ids], "queen").subset(valid)
    return values.to_numpy()[valid], weights, layer.loc[np.asarray(ids)[valid]]


def main() -> None:
    import esda
    from libpysal.graph import Graph

    warnings.filterwarnings("ignore")
    settings = Settings()
    y, weights, _ = alpine_case(settings)
    w = Graph.from_sparse(weights.adjacency, ids=weights.ids).to_W()
    perms = 9999
    esda.G_Local(y, w, transform="B", star=True, permutations=99, n_jobs=1, seed=1)
    esda.Moran_Local(y, w, transformation="r", permutations=99, n_jobs=1, seed=1)
    gi_star(y, weights, permutations=99, seed=1)
    rows = [
        (
            "Gi* alpine NUTS-3, 9,999 perms",
            best_of(lambda: gi_star(y, weights, permutations=perms, seed=1)),
            best_of(
                lambda: esda.G_Local(
                    y, w, transform="B", star=True, permutations=perms, n_jobs=1, seed=1
                )
            ),
        ),
        (
            "Local Moran alpine NUTS-3, 9,999 perms",
            best_of(lambda: local_moran(y, weights, permutations=perms, seed=1)),
            best_of(
                lambda: esda.Moran_Local(
                    y, w, transformation="r", permutations=perms, n_jobs=1, seed=1
                )
            ),
        ),
    ]
    print(f"{'case':42} {'ours (s)':>10} {'esda (s)':>10} {'ratio':>8}")
    for name, ours, ref in rows:
        print(f"{name:42} {ours:10.3f} {ref:10.3f} {ref / ours:7.1f}x")


if __name__ == "__main__":
    main()
