"""The engine under test, ``geo.engine.run_panel``, imported lazily.

The harness calls ``run_panel(values, weights, method=..., permutations=..., seed=...,
alpha=..., correction=..., inference=..., chunk_size=..., scheduler=...)``. An engine that
takes its inference options as one object, ``run_panel(values, weights, method, opts, *,
chunk_size, scheduler)`` with ``geo.engine.Options``, is called through a thin adapter.

Until ``geo.engine`` exists, :func:`load_run_panel` raises :class:`EngineUnavailableError` with a
message saying so. ``legacy=True`` swaps in :func:`legacy_run_panel`, a loop over the
per-series ``geo.hotspots`` functions with the same signature: it exercises the harness end
to end, but its numbers are not those of the engine.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from geo.hotspots import HotSpotResult
    from geo.weights import SpatialWeights

RunPanel = Callable[..., list["HotSpotResult"]]

ENGINE_MODULE = "geo.engine"


class EngineUnavailableError(RuntimeError):
    """``geo.engine.run_panel`` cannot be imported."""


def load_run_panel(legacy: bool = False) -> RunPanel:
    """``geo.engine.run_panel``, or the legacy loop; a clear error when the engine is absent."""
    if legacy:
        return legacy_run_panel
    try:
        module = importlib.import_module(ENGINE_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != ENGINE_MODULE:
            raise EngineUnavailableError(
                f"{ENGINE_MODULE} exists but imports a missing module {exc.name!r}: {exc}"
            ) from exc
        raise EngineUnavailableError(
            f"{ENGINE_MODULE} is not there yet: the benchmark times "
            "geo.engine.run_panel(values, weights, method=..., ...). "
            "Run `python -m bench --legacy` to exercise the harness with the per-series "
            "geo.hotspots functions instead (its numbers are not the engine's)."
        ) from exc
    except Exception as exc:  # any other import-time failure of the engine
        raise EngineUnavailableError(f"importing {ENGINE_MODULE} failed: {exc!r}") from exc
    run_panel = getattr(module, "run_panel", None)
    if not callable(run_panel):
        raise EngineUnavailableError(f"{ENGINE_MODULE} has no callable run_panel")
    options = getattr(module, "Options", None)
    if _takes_options_object(run_panel) and options is not None:
        return _with_options_object(run_panel, options)
    return run_panel


def _takes_options_object(run_panel: Callable[..., Any]) -> bool:
    """Whether run_panel takes ``(values, weights, method, opts)`` rather than keywords."""
    params = inspect.signature(run_panel).parameters
    return "opts" in params and "permutations" not in params


def _with_options_object(run_panel: Callable[..., Any], options: type) -> RunPanel:
    """The keyword form over ``run_panel(values, weights, method, Options(...), ...)``."""

    def call(
        values: np.ndarray,
        weights: SpatialWeights,
        method: str = "gi_star",
        permutations: int = 9999,
        seed: int = 1,
        alpha: float = 0.05,
        correction: str = "fdr",
        inference: str = "permutation",
        chunk_size: int | None = None,
        scheduler: Any = "threads",
    ) -> list[HotSpotResult]:
        opts = options(
            permutations=permutations,
            seed=seed,
            alpha=alpha,
            correction=correction,
            inference=inference,
        )
        results = run_panel(
            values, weights, method, opts, chunk_size=chunk_size, scheduler=scheduler
        )
        return list(results)

    call.__name__ = call.__qualname__ = "run_panel_with_options"
    call.__doc__ = f"{ENGINE_MODULE}.run_panel with its options passed as {options.__name__}."
    return call


def describe(run_panel: RunPanel) -> str:
    """What ``run_panel`` is, for the table's header."""
    return {
        "legacy_run_panel": "geo.hotspots per-series loop (--legacy), not the engine",
        "run_panel_with_options": f"{ENGINE_MODULE}.run_panel (options passed as Options)",
    }.get(getattr(run_panel, "__name__", ""), f"{ENGINE_MODULE}.run_panel")


def _legacy_series(
    row: np.ndarray, weights: SpatialWeights, method: str, options: dict[str, Any]
) -> HotSpotResult:
    """One series through ``geo.hotspots.gi_star`` or ``local_moran``."""
    from geo.hotspots import gi_star, local_moran

    if method == "gi_star":
        return gi_star(row, weights, **options)
    options = {k: v for k, v in options.items() if k != "inference"}
    return local_moran(row, weights, **options)


def legacy_run_panel(
    values: np.ndarray,
    weights: SpatialWeights,
    method: str = "gi_star",
    permutations: int = 9999,
    seed: int = 1,
    alpha: float = 0.05,
    correction: str = "fdr",
    inference: str = "permutation",
    chunk_size: int | None = None,
    scheduler: Any = "threads",
) -> list[HotSpotResult]:
    """``run_panel``'s signature over a loop of per-series calls (``chunk_size`` is ignored).

    With a ``distributed.Client`` as scheduler, every series is one task on the cluster.
    """
    del chunk_size  # the per-series functions do not chunk regions
    options = {
        "permutations": permutations,
        "seed": seed,
        "alpha": alpha,
        "correction": correction,
        "inference": inference,
    }
    rows = list(np.atleast_2d(values))
    if hasattr(scheduler, "submit"):  # a distributed.Client
        shared = scheduler.scatter(weights, broadcast=True, hash=False)
        futures = [
            scheduler.submit(_legacy_series, row, shared, method, options, pure=False)
            for row in rows
        ]
        return list(scheduler.gather(futures))
    return [_legacy_series(row, weights, method, options) for row in rows]
