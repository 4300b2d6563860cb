"""Structurally similar regions: the k nearest by standardised Euclidean distance.

This is the method of the JRC Smart Specialisation Platform's regional benchmarking tool
(Navarro, Gibaja, Franco, Murciego, Gianelle, Hegyi & Kleibrink 2014, "Regional
benchmarking in the smart specialisation process: identification of reference regions
based on structural similarity", S3 Working Paper 03/2014, JRC-IPTS): every indicator is
standardised across the regions compared (z-score), and regions are ranked by their
Euclidean distance to the chosen region over the standardised indicators.

Conventions (documented on :func:`similar_regions`):

* z = (x - mean) / std over the regions compared, population standard deviation
  (``ddof=0``); an indicator constant over them carries no information and is dropped,
  with a note in the result's ``attrs["notes"]``;
* missing values: ``missing="drop"`` (default) drops every region lacking one of the
  indicators before standardising, listed in ``attrs["dropped"]``; ``missing="rescale"``
  keeps them and measures each distance over the indicators both regions have, scaled by
  sqrt(p / p_common) (as scikit-learn's ``nan_euclidean_distances``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from geo.errors import InvalidParameterError, UnknownRegionError


def standardise(values: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """z-scores per column (population std, NaN left out); constant columns are dropped.

    Returns
    -------
    tuple
        The standardised table and the names of the dropped constant columns.
    """
    std = values.std(ddof=0)
    constant = [str(c) for c in values.columns if not (std[c] > 0)]
    kept = values.drop(columns=constant)
    return (kept - kept.mean()) / std.drop(labels=constant), constant


def _distances(z: pd.DataFrame, region: str, missing: str) -> pd.Series:
    """Euclidean distance of every row of ``z`` to ``region``'s row."""
    diff = z.sub(z.loc[region], axis="columns")
    if missing == "drop":
        return pd.Series(np.sqrt((diff**2).sum(axis=1)), index=z.index)
    common = diff.notna().sum(axis=1)
    scale = z.shape[1] / common.where(common > 0)
    return np.sqrt(scale * (diff**2).sum(axis=1, min_count=1))


def _select(values: pd.DataFrame, region: str, indicators: Sequence[str] | None) -> pd.DataFrame:
    if region not in values.index:
        raise UnknownRegionError(f"region {region!r} is not among the {len(values)} regions")
    chosen = list(values.columns if indicators is None else indicators)
    absent = [c for c in chosen if c not in values.columns]
    if absent or not chosen:
        raise InvalidParameterError(
            f"unknown indicators {absent or chosen}; available: {list(values.columns)}"
        )
    return values[chosen].astype("float64")


def similar_regions(
    values: pd.DataFrame,
    region: str,
    k: int = 5,
    *,
    indicators: Sequence[str] | None = None,
    exclude_country: bool = False,
    candidates: Collection[str] | None = None,
    missing: Literal["drop", "rescale"] = "drop",
) -> pd.DataFrame:
    r"""The ``k`` regions most similar to ``region``.

    .. math:: d(r, q) = \sqrt{\sum_i (z_{ri} - z_{qi})^2}, \quad
              z_{ri} = \frac{x_{ri} - \bar x_i}{\sigma_i}

    with mean and population standard deviation of indicator i over all regions of
    ``values`` (after ``missing="drop"`` removed incomplete ones): the JRC S3 Platform's
    regional benchmarking (Navarro et al. 2014, S3 Working Paper 03/2014).

    Parameters
    ----------
    values
        Indicators: one row per region (index: region codes), one column per indicator.
    region
        The region to compare.
    k
        How many regions to return (fewer when fewer candidates remain).
    indicators
        The columns to use (default: all).
    exclude_country
        Leave out regions of ``region``'s country (same first two letters of the code).
        Standardisation still runs over every region.
    candidates
        Only these regions may be returned (default: all); standardisation still runs over
        every region.
    missing
        ``"drop"``: regions lacking an indicator are dropped (``attrs["dropped"]``); the
        chosen region must be complete. ``"rescale"``: distance over the indicators both
        regions have, times sqrt(p / p_common); regions sharing none are dropped.

    Returns
    -------
    pandas.DataFrame
        ``region, distance, rank`` (1 = nearest; ties broken by region code) and one
        ``z_<indicator>`` column per standardised indicator, sorted by rank. ``attrs`` holds
        ``dropped`` (regions) and ``notes`` (why).
    """
    if k < 1:
        raise InvalidParameterError(f"k must be at least 1, not {k!r}")
    if missing not in ("drop", "rescale"):
        raise InvalidParameterError(f"missing must be 'drop' or 'rescale', not {missing!r}")
    table = _select(values, region, indicators)
    notes: list[str] = []
    incomplete = [str(r) for r in table.index[table.isna().any(axis=1)]]
    if missing == "drop":
        if region in incomplete:
            lacking = [str(c) for c in table.columns[table.loc[region].isna()]]
            raise InvalidParameterError(
                f"{region} has no value for {lacking}; choose other indicators or missing='rescale'"
            )
        table = table.drop(index=incomplete)
        if incomplete:
            notes.append(f"{len(incomplete)} regions dropped for missing indicators")
    z, constant = standardise(table)
    if constant:
        notes.append(f"constant indicators dropped: {constant}")
    if z.shape[1] == 0:
        raise InvalidParameterError("no indicator varies across the regions")
    distance = _distances(z, region, missing)
    pool = distance.drop(index=region).dropna()
    if exclude_country:
        pool = pool[~pool.index.str.startswith(region[:2])]
    if candidates is not None:
        pool = pool[pool.index.isin(list(candidates))]
    return _ranked(pool, z, k, incomplete if missing == "drop" else [], notes)


def _ranked(
    pool: pd.Series, z: pd.DataFrame, k: int, dropped: list[str], notes: list[str]
) -> pd.DataFrame:
    frame = pd.DataFrame({"region": pool.index.astype(str), "distance": pool.to_numpy()})
    frame = frame.sort_values(["distance", "region"], kind="stable").head(k)
    frame["rank"] = np.arange(1, len(frame) + 1)
    scores = z.loc[frame["region"]].add_prefix("z_").reset_index(drop=True)
    out = pd.concat([frame.reset_index(drop=True), scores], axis=1)
    out.attrs["dropped"] = dropped
    out.attrs["notes"] = notes
    return out
