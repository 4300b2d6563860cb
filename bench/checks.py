"""Sanity checks on the saved outputs: ours agrees with esda, and with itself across schedulers.

The statistic (Gi* z, Local Moran I) is deterministic and must match esda to rounding. The
permutation p-values come from different random draws: ours are two-sided, esda's folded
one-sided, so ours are compared with ``min(1, 2 p_esda)`` and should differ only by noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STAT_NAME = {"gi_star": "z", "local_moran": "I"}


def _load(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def versus_esda(ours_path: str | Path, esda_path: str | Path, method: str) -> str:
    """How closely our statistic and p-values match esda's on the series esda ran."""
    ours, ref = _load(ours_path), _load(esda_path)
    rows = ref["rows"]
    stat, ref_stat = ours["stat"][rows], ref["stat"]
    both = np.isfinite(stat) & np.isfinite(ref_stat)
    if not both.any():
        return f"{STAT_NAME[method]}: no common finite values to compare"
    d_stat = float(np.max(np.abs(stat[both] - ref_stat[both])))
    p, ref_p = ours["p"][rows], np.minimum(1.0, 2.0 * ref["p"])
    tested = np.isfinite(p) & np.isfinite(ref_p)
    d_p = np.abs(p[tested] - ref_p[tested])
    return (
        f"max|Δ{STAT_NAME[method]}| = {d_stat:.1e} over {int(both.sum()):,} values; "
        f"p_sim vs min(1, 2·esda p_sim): mean|Δ| = {d_p.mean():.4f}, max = {d_p.max():.3f}"
    )


def identical(paths: list[str | Path]) -> bool:
    """Whether the saved p-values of several runs are identical (NaN equal to NaN)."""
    first = _load(paths[0])["p"]
    return all(np.array_equal(first, _load(p)["p"], equal_nan=True) for p in paths[1:])
