"""Benchmark inputs: the European NUTS-3 atlas panel and the synthetic lattices.

Real data come only through the project's loaders with ``Settings()``; everything
synthetic is generated here from fixed seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.lattice import autocorrelated, queen_lattice, smooth
from geo.weights import SpatialWeights

SEED = 20_240_607
INDICATORS = 20
YEARS = 5
GDP_ROW = 0  # the panel row that holds the real GDP per head
GDP_YEAR: int | None = 2020  # the latest year with near-complete NUTS-3 coverage (1,296)
MISSING_RATES = (0.0, 0.0, 0.01, 0.03)  # share of regions without a value, by indicator


@dataclass(frozen=True)
class Panel:
    """Series over regions (``values`` is ``(S, n)``, NaN = missing) and their weights."""

    values: np.ndarray
    weights: SpatialWeights
    description: str


def europe_weights() -> SpatialWeights:
    """Queen weights over the 1,514 NUTS-3 regions of the NUTS 2021 1:3M layer."""
    from geo.boundaries import regions
    from geo.settings import Settings
    from geo.weights import build_weights

    return build_weights(regions(Settings(), 3), "queen")


def gdp_per_head(ids: np.ndarray, year: int | None = GDP_YEAR) -> tuple[np.ndarray, int]:
    """Eurostat GDP per inhabitant (nama_10r_3gdp, EUR_HAB) of ``year``, aligned with ``ids``.

    Returns the values (NaN where a region has none) and the year used.
    """
    from geo.indicators import load_eurostat
    from geo.settings import Settings

    table, _ = load_eurostat(Settings(), "nama_10r_3gdp")
    table = table[table["unit"] == "EUR_HAB"]
    years = table["time"].astype(int)
    chosen = int(years.max()) if year is None else year
    series = table[years == chosen].set_index("geo")["value"].astype(float)
    return series.reindex(ids).to_numpy(), chosen


def synthetic_indicators(weights: SpatialWeights, seed: int = SEED) -> np.ndarray:
    """``INDICATORS * YEARS`` positive, skewed, spatially autocorrelated series.

    Indicator ``k`` has a smooth base field; each year adds a little smooth noise to it.
    Some indicators miss a fixed random share of regions in every year (NaN).
    Rows are ordered indicator by indicator, years within.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(INDICATORS):
        base = smooth(rng.standard_normal(weights.n), weights.adjacency, passes=2)[0]
        level, spread = 10.0 ** rng.uniform(1, 5), rng.uniform(0.2, 0.8)
        missing = rng.random(weights.n) < MISSING_RATES[k % len(MISSING_RATES)]
        for _ in range(YEARS):
            drift = smooth(rng.standard_normal(weights.n), weights.adjacency, passes=1)[0]
            year = level * np.exp(spread * (0.9 * base + 0.3 * drift))
            year[missing] = np.nan
            rows.append(year)
    return np.vstack(rows)


def atlas_panel() -> Panel:
    """The Europe-wide panel: 20 synthetic indicators x 5 years, one row the real GDP."""
    weights = europe_weights()
    values = synthetic_indicators(weights)
    gdp, year = gdp_per_head(weights.ids)
    values[GDP_ROW] = gdp
    description = (
        f"{values.shape[0]} series x {weights.n:,} NUTS-3 regions; row {GDP_ROW} is GDP per "
        f"head {year} ({int(np.isfinite(gdp).sum()):,} regions with a value)"
    )
    return Panel(values, weights, description)


def lattice_panel(side: int, seed: int = SEED) -> Panel:
    """One positive, autocorrelated variable on a ``side`` x ``side`` queen lattice.

    Positive because Getis-Ord G divides by the sum of the values: esda's Gi* z-scores
    are undefined for a variable centred on zero.
    """
    weights = queen_lattice(side, side)
    values = 100.0 * np.exp(0.5 * autocorrelated(weights, seed, series=1, passes=1))
    return Panel(values, weights, f"1 series x {weights.n:,} lattice cells ({side}x{side} queen)")
