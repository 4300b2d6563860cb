"""Wall-clock timing: the best of a few runs within a time budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Timed(Generic[T]):
    """The result of the last successful run and the seconds of every successful run.

    ``repeat_error`` describes a failure of a repeated run (the first run must succeed).
    """

    result: T
    runs: tuple[float, ...]
    repeat_error: str | None = None

    @property
    def best(self) -> float:
        return min(self.runs)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Call ``fn`` once; return its result and the seconds it took."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def best_of(fn: Callable[[], T], max_runs: int = 3, budget_s: float = 10.0) -> Timed[T]:
    """Run ``fn`` at least once and again while under ``max_runs`` runs and ``budget_s`` s.

    Slow calls are timed once, fast ones up to ``max_runs`` times; the best run counts.
    The previous result stays alive during a repeat, so callers return small outputs
    (statistics and p-values), never large intermediates. An exception in the first run
    propagates; one in a repeat ends the runs and is recorded in ``repeat_error``.
    """
    result, seconds = timed(fn)
    runs = [seconds]
    while len(runs) < max_runs and sum(runs) + runs[-1] <= budget_s:
        try:
            result, seconds = timed(fn)
        except Exception as exc:  # a failing repeat must not hide the successful run
            return Timed(result, tuple(runs), f"{type(exc).__name__}: {exc}")
        runs.append(seconds)
    return Timed(result, tuple(runs))
