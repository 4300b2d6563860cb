"""The engine under test, ``geo.engine.run_panel``, called with keyword options.

:mod:`bench.worker` imports this module only in the processes that run the engine, so an
esda-only process does not pay for (or count in its peak RSS) the engine's imports.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geo.engine import run_panel
from geo.hotspots import HotSpotResult, Options
from geo.weights import SpatialWeights


def run_engine(
    values: np.ndarray,
    weights: SpatialWeights,
    *,
    method: str,
    permutations: int,
    seed: int,
    alpha: float,
    correction: str,
    inference: str,
    chunk_size: int | None = None,
    scheduler: Any = "threads",
) -> list[HotSpotResult]:
    """``run_panel(values, weights, method, Options(...), chunk_size=, scheduler=)``."""
    opts = Options(
        permutations=permutations,
        seed=seed,
        alpha=alpha,
        correction=correction,
        inference=inference,
    )
    return run_panel(values, weights, method, opts, chunk_size=chunk_size, scheduler=scheduler)
