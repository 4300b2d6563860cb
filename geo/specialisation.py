"""Smart-specialisation analytics on regional employment by sector.

Every function works on a **long table** with the columns ``region``, ``sector``, ``value``
and, optionally, ``year`` (one row per region, sector and year; a wide region x sector table
becomes one with :func:`long_table`). Everything is vectorised over the whole table (merges,
group sums, transforms; no loop over regions), so the same code runs on a whole Eurostat cube.

* :func:`location_quotients`: LQ(r, s) = (E_rs / E_r) / (E_s / E), against a reference the
  caller chooses (:data:`AREA`, :data:`NATIONAL`, a reference row such as ``"EU27_2020"``, or
  a set of region codes).
* :func:`krugman_index`, :func:`hoover_index` (per region) and :func:`hoover_localisation`
  (per sector).
* :func:`shift_share`: national share, industry mix and regional shift between two years.
* :func:`strong_clusters` (U.S. Cluster Mapping Project) and :func:`cluster_stars`
  (European Cluster Observatory) flag region x sector pairs.
* :func:`load_employment`: Eurostat's ``nama_10r_3empers`` and ``lfst_r_lfe2en2`` tables as
  long tables, read through :func:`geo.indicators.load_eurostat`.

Overlapping sector codes
------------------------
Eurostat's NACE Rev. 2 aggregates overlap: in ``nama_10r_3empers`` ``C`` is part of ``B-E``,
``G-J = G-I + J``, ``K-N = K + L + M_N`` and ``O-U = O-Q + R-U``, and ``TOTAL`` is all of them.
Summing every code of a table therefore counts employment two or three times. This module
never adds sectors up behind the caller's back:

* a region's total E_r is its ``TOTAL`` row (``total="TOTAL"``, the default), never the sum
  over its sectors; with ``total=None`` it is the sum over the ``sectors`` given, which must
  then be disjoint (checked by :func:`check_disjoint`);
* indices that add sectors up (Krugman, Hoover) require a disjoint set, checked the same way;
* :func:`disjoint_sectors` picks a disjoint set from the codes of a table, coarse
  (``A, B-E, F, G-J, K-N, O-U``) or fine (``A, B-E, F, G-I, J, K, L, M_N, O-Q, R-U``).
  ``C`` never replaces ``B-E``: ``B``, ``D`` and ``E`` are not published separately.

The hierarchy is :data:`NACE_PARENT` (each code's smallest enclosing aggregate) with the
complete splits :data:`NACE_PARTS`; both can be replaced for other classifications.

Missing values stay missing: a cell without a value gives NaN, and so does a zero
denominator (never ``inf``). Reference sums (E_s and E over an area, a set of codes or a
country's regions) add the values present, ignoring missing cells.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from geo.errors import DataSourceError, InvalidParameterError

if TYPE_CHECKING:
    from geo.settings import Settings

TOTAL = "TOTAL"
AREA = "area"
NATIONAL = "national"

#: A reference: :data:`AREA` (the sum over the analysed regions), :data:`NATIONAL` (each
#: region's country), one region code of the table (e.g. ``"EU27_2020"``), or a collection of
#: region codes whose sum is the reference.
Reference = str | Collection[str]

#: NACE Rev. 2 codes of Eurostat's regional tables -> their smallest enclosing aggregate.
NACE_PARENT: dict[str, str] = {
    "A": TOTAL,
    "B-E": TOTAL,
    "C": "B-E",
    "F": TOTAL,
    "G-J": TOTAL,
    "G-I": "G-J",
    "J": "G-J",
    "K-N": TOTAL,
    "K": "K-N",
    "L": "K-N",
    "M_N": "K-N",
    "O-U": TOTAL,
    "O-Q": "O-U",
    "R-U": "O-U",
    "NRP": TOTAL,  # LFS "no response"
}

#: Aggregates -> the codes that split them completely (``B-E`` has no complete split).
NACE_PARTS: dict[str, tuple[str, ...]] = {
    "G-J": ("G-I", "J"),
    "K-N": ("K", "L", "M_N"),
    "O-U": ("O-Q", "R-U"),
}

#: The mirror files of the employment tables, used while ``data/nuts/sources.toml`` has no
#: entry for them (``nama_10r_3empers_*``): read from ``settings.data_mirror`` only.
_RENAME = {"geo": "region", "nace_r2": "sector", "time": "year"}
_FILTERS = {"unit": "THS", "wstatus": "EMP", "freq": "A", "age": "Y_GE15"}


# -- tables and sectors -----------------------------------------------------------------


def long_table(wide: pd.DataFrame, year: int | None = None) -> pd.DataFrame:
    """A wide region x sector table (index: regions, columns: sectors) as a long table.

    Parameters
    ----------
    wide
        Values with regions as the index and sector codes as the columns.
    year
        Added as a ``year`` column when given.
    """
    out = wide.rename_axis(index="region", columns="sector").stack(future_stack=True)
    frame = out.rename("value").reset_index()
    if year is not None:
        frame["year"] = year
    return frame


def wide_table(frame: pd.DataFrame, column: str = "value") -> pd.DataFrame:
    """``column`` of a long result as a region x sector table (one year at most)."""
    if "year" in frame and frame["year"].nunique() > 1:
        raise InvalidParameterError(
            f"wide_table needs one year; the table has {sorted(frame['year'].unique())}"
        )
    return frame.pivot(index="region", columns="sector", values=column)


def ancestors(code: str, hierarchy: Mapping[str, str] = NACE_PARENT) -> list[str]:
    """The aggregates that contain ``code``, innermost first (``"C"`` -> ``["B-E", "TOTAL"]``)."""
    out: list[str] = []
    while code in hierarchy:
        code = hierarchy[code]
        out.append(code)
    return out


def check_disjoint(sectors: Collection[str], hierarchy: Mapping[str, str] = NACE_PARENT) -> None:
    """Raise unless ``sectors`` are known codes of which none contains another.

    Raises
    ------
    InvalidParameterError
        Naming unknown codes (with the known ones) or the first overlapping pair.
    """
    unknown = sorted(set(sectors) - set(hierarchy))
    if unknown:
        raise InvalidParameterError(
            f"unknown sector codes {unknown}; known codes: {sorted(hierarchy)} "
            "(pass hierarchy= for another classification)"
        )
    chosen = set(sectors)
    for code in sorted(chosen):
        inside = [a for a in ancestors(code, hierarchy) if a in chosen]
        if inside:
            raise InvalidParameterError(
                f"sectors overlap: {code!r} is part of {inside[0]!r}; use disjoint_sectors() "
                "to choose non-overlapping codes"
            )


def disjoint_sectors(
    codes: Collection[str],
    prefer: Literal["coarse", "fine"] = "coarse",
    hierarchy: Mapping[str, str] = NACE_PARENT,
    parts: Mapping[str, Sequence[str]] = NACE_PARTS,
) -> list[str]:
    """Non-overlapping sectors among ``codes`` (``TOTAL`` and unknown codes are left out).

    ``prefer="coarse"`` keeps each code none of whose aggregates is among ``codes``;
    ``"fine"`` first replaces every aggregate whose complete split (``parts``) is among
    ``codes`` by that split. An incomplete part (``C`` of ``B-E``) never replaces its
    aggregate. On the 15 codes of ``nama_10r_3empers``: coarse ``A, B-E, F, G-J, K-N, O-U``,
    fine ``A, B-E, F, G-I, J, K, L, M_N, O-Q, R-U``.

    Returns
    -------
    list of str
        The chosen codes, in the order of ``codes``.
    """
    if prefer not in ("coarse", "fine"):
        raise InvalidParameterError(f"prefer must be 'coarse' or 'fine', not {prefer!r}")
    present = [c for c in dict.fromkeys(codes) if c in hierarchy]
    dropped: set[str] = set()
    if prefer == "fine":
        dropped = {c for c in present if c in parts and set(parts[c]) <= set(present)}
    kept = [c for c in present if c not in dropped]
    return [c for c in kept if not any(a in kept for a in ancestors(c, hierarchy))]


def _keys(frame: pd.DataFrame) -> list[str]:
    return ["year"] if "year" in frame.columns else []


def _checked(table: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("region", "sector", "value") if c not in table.columns]
    if missing:
        raise InvalidParameterError(
            f"the table lacks the columns {missing}; a long table has region, sector, value "
            f"and optionally year (columns given: {list(table.columns)})"
        )
    keys = ["region", "sector", *_keys(table)]
    if table.duplicated(keys).any():
        first = table.loc[table.duplicated(keys, keep=False), keys].iloc[0].tolist()
        raise InvalidParameterError(f"the table has more than one row for {first} ({keys})")
    data = table[[*keys, "value"]].copy()
    data["value"] = data["value"].astype("float64")
    return data


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    """num / den, NaN where den is zero or missing (never inf)."""
    num = num.astype("float64")
    den = den.astype("float64")
    return num / den.where(den != 0)


# -- references ---------------------------------------------------------------------------


def _reference(
    data: pd.DataFrame, regions: Sequence[str], reference: Reference
) -> tuple[pd.DataFrame, pd.Series]:
    """Reference values (``ref``, [year], sector, ``ref_value``) and each region's ``ref``."""
    keys = ["ref", *_keys(data), "sector"]
    if isinstance(reference, str) and reference == NATIONAL:
        rows, refs = _national(data, regions)
    elif isinstance(reference, str) and reference == AREA:
        rows = data[data["region"].isin(regions)].assign(ref=AREA)
        refs = pd.Series(AREA, index=pd.Index(regions))
    else:
        codes = [reference] if isinstance(reference, str) else list(reference)
        absent = sorted(set(codes) - set(data["region"]))
        if absent or not codes:
            raise InvalidParameterError(
                f"reference regions {absent or codes} are not in the table; give "
                f"{AREA!r}, {NATIONAL!r}, a region code of the table or a set of them"
            )
        rows = data[data["region"].isin(codes)].assign(ref="reference")
        refs = pd.Series("reference", index=pd.Index(regions))
    summed = rows.groupby(keys, sort=False)["value"].sum(min_count=1)
    return summed.rename("ref_value").reset_index(), refs


def _national(data: pd.DataFrame, regions: Sequence[str]) -> tuple[pd.DataFrame, pd.Series]:
    """The country row (code = first two letters) or, without one, the sum over the table's
    regions of that country at the region's level (code length)."""
    country = data["region"].str[:2]
    is_country = data["region"] == country
    own = data[is_country].assign(ref=country[is_country])  # aligned: no rows if none
    level = data["region"].str.len().astype(str)
    parts = data[data["region"].str.len() > 2].assign(ref=country + "*" + level)
    has_row = set(own["ref"])
    index = pd.Index(regions)
    cc = pd.Series(index.str[:2], index=index)
    refs = cc.where(
        cc.isin(has_row), cc + "*" + pd.Series(index.str.len(), index=index).astype(str)
    )
    return pd.concat([own, parts], ignore_index=True), refs


def _regions(
    data: pd.DataFrame, regions: Collection[str] | None, reference: Reference
) -> list[str]:
    if regions is not None:
        return list(dict.fromkeys(regions))
    skip: set[str] = set()
    if isinstance(reference, str) and reference not in (AREA, NATIONAL):
        skip = {reference}
    elif not isinstance(reference, str):
        skip = set(reference)
    return [r for r in data["region"].unique() if r not in skip]


def _with_totals(data: pd.DataFrame, sectors: list[str], total: str | None) -> pd.DataFrame:
    """The table with its ``TOTAL`` rows: the table's own (``total``) or, with
    ``total=None``, the sum over the disjoint ``sectors`` (NaN when one is missing)."""
    if total is not None:
        rows = data[data["sector"] == total].assign(sector=TOTAL)
        return pd.concat([data[data["sector"].isin(sectors)], rows], ignore_index=True)
    check_disjoint(sectors)
    part = data[data["sector"].isin(sectors)]
    summed = part.groupby(["region", *_keys(data)], sort=False)["value"]
    rows = summed.sum(min_count=len(sectors)).rename("value").reset_index().assign(sector=TOTAL)
    return pd.concat([part, rows], ignore_index=True)


def _grid(data: pd.DataFrame, regions: list[str], sectors: list[str]) -> pd.DataFrame:
    """Every region x sector (x year) cell, with the table's value or NaN."""
    levels = [pd.Index(regions, name="region"), pd.Index(sectors, name="sector")]
    keys = _keys(data)
    if keys:
        levels.append(pd.Index(sorted(data["year"].unique()), name="year"))
    grid = pd.MultiIndex.from_product(levels).to_frame(index=False)
    return grid.merge(data, on=["region", "sector", *keys], how="left")


def _sectors(data: pd.DataFrame, sectors: Collection[str] | None, total: str | None) -> list[str]:
    totals = {TOTAL, total}
    if sectors is None:
        return [s for s in data["sector"].unique() if s not in totals]
    chosen = [s for s in dict.fromkeys(sectors) if s not in totals]
    if not chosen:
        raise InvalidParameterError("no sectors given")
    return chosen


# -- location quotients -----------------------------------------------------------------


def location_quotients(
    table: pd.DataFrame,
    sectors: Collection[str] | None = None,
    *,
    regions: Collection[str] | None = None,
    reference: Reference = AREA,
    total: str | None = TOTAL,
) -> pd.DataFrame:
    r"""Location quotients of employment.

    .. math:: LQ_{rs} = \frac{E_{rs} / E_r}{E_s / E}

    with E_rs the region's employment in sector s, E_r its total, and E_s, E the sector's
    and the total employment of the reference (Isard 1960, *Methods of Regional Analysis*;
    European Cluster Observatory and U.S. Cluster Mapping use the same quotient).

    Parameters
    ----------
    table
        Long table: ``region``, ``sector``, ``value`` and optionally ``year``.
    sectors
        The sectors to compute (default: every code but the total). LQs of overlapping
        codes may be computed side by side: each is a ratio of its own.
    regions
        The analysed regions (default: every region of the table but a reference row).
    reference
        ``"area"``: E_s and E are sums over ``regions``; ``"national"``: each region's
        country (its NUTS 0 row, or without one the sum over the table's regions of that
        country at the region's level); a region code of the table (``"EU27_2020"``): that
        row; a collection of codes: their sum.
    total
        The sector code of the totals (E_r is that row; no row gives NaN, never a sum over
        sectors). ``None``: E_r is the sum over ``sectors``, which must then be disjoint
        (:func:`check_disjoint`) and all present.

    Returns
    -------
    pandas.DataFrame
        One row per region x sector (x year): ``region, sector, [year], value,
        region_total, ref_sector, ref_total, share`` (E_rs / E_r) and ``lq``. Missing
        cells and zero denominators give NaN.
    """
    data = _checked(table)
    chosen = _sectors(data, sectors, total)
    data = _with_totals(data, chosen, total)
    analysed = _regions(data, regions, reference)
    ref, refs = _reference(data, analysed, reference)
    keys = _keys(data)
    out = _grid(data[data["sector"] != TOTAL], analysed, chosen)
    region_total = data[data["sector"] == TOTAL].drop(columns="sector")
    out = out.merge(region_total.rename(columns={"value": "region_total"}), how="left")
    out["ref"] = out["region"].map(refs)
    ref_total = ref[ref["sector"] == TOTAL].drop(columns="sector")
    out = out.merge(ref.rename(columns={"ref_value": "ref_sector"}), how="left")
    out = out.merge(ref_total.rename(columns={"ref_value": "ref_total"}), how="left")
    out["share"] = _ratio(out["value"], out["region_total"])
    out["lq"] = _ratio(out["share"], _ratio(out["ref_sector"], out["ref_total"]))
    columns = ["region", "sector", *keys, "value", "region_total", "ref_sector", "ref_total"]
    return out[[*columns, "share", "lq"]]


# -- specialisation and localisation indices --------------------------------------------


def _normalised(frame: pd.DataFrame, by: list[str], column: str, n: int) -> pd.Series:
    """``column`` divided by its sum over the ``n`` sectors of each group (NaN unless all
    ``n`` are present)."""
    total = frame.groupby(by, sort=False)[column].transform(lambda s: s.sum(min_count=n))
    return _ratio(frame[column], total)


def krugman_index(
    table: pd.DataFrame,
    sectors: Collection[str],
    *,
    regions: Collection[str] | None = None,
    reference: Reference = AREA,
) -> pd.DataFrame:
    r"""Krugman's dissimilarity (specialisation) index per region.

    .. math:: K_r = \sum_{s \in S} \left| \frac{E_{rs}}{\sum_{s' \in S} E_{rs'}}
              - \frac{E_s}{\sum_{s' \in S} E_{s'}} \right|

    over a disjoint sector set S, with E_s the reference's employment (Krugman 1991,
    *Geography and Trade*, ch. 3; Midelfart-Knarvik, Overman, Redding & Venables 2000,
    *The Location of European Industry*). Shares are taken within S, so K_r lies in
    [0, 2]; 0 means the region's structure equals the reference's.

    Parameters
    ----------
    table
        Long table (``region, sector, value``, optionally ``year``).
    sectors
        Disjoint sector codes (checked; see :func:`disjoint_sectors`).
    regions, reference
        As for :func:`location_quotients`.

    Returns
    -------
    pandas.DataFrame
        ``region, [year], krugman``; NaN when a sector of S is missing for the region.
    """
    chosen = list(dict.fromkeys(sectors))
    check_disjoint(chosen)
    data = _checked(table)
    data = data[data["sector"].isin(chosen)]
    analysed = _regions(data, regions, reference)
    ref, refs = _reference(data, analysed, reference)
    keys = _keys(data)
    out = _grid(data, analysed, chosen)
    out["ref"] = out["region"].map(refs)
    out = out.merge(ref, how="left")
    out["share"] = _normalised(out, ["region", *keys], "value", len(chosen))
    out["ref_share"] = _normalised(out, ["region", *keys], "ref_value", len(chosen))
    out["gap"] = (out["share"] - out["ref_share"]).abs()
    summed = out.groupby(["region", *keys], sort=False)["gap"].sum(min_count=len(chosen))
    return summed.rename("krugman").reset_index()


def hoover_index(
    table: pd.DataFrame,
    sectors: Collection[str],
    *,
    regions: Collection[str] | None = None,
    reference: Reference = AREA,
) -> pd.DataFrame:
    r"""The regional Hoover (specialisation) index: half the Krugman index.

    .. math:: H_r = \frac{1}{2} \sum_{s \in S} |share_{rs} - share_{ref,s}|

    with the shares of :func:`krugman_index` (Hoover 1936, "The measurement of industrial
    localization", *Review of Economic Statistics* 18(4), 162-171, applied across sectors
    of one region). H_r lies in [0, 1): the share of the region's employment that would
    have to change sector for its structure to equal the reference's.

    Returns
    -------
    pandas.DataFrame
        ``region, [year], hoover``.
    """
    out = krugman_index(table, sectors, regions=regions, reference=reference)
    return out.assign(hoover=out["krugman"] / 2).drop(columns="krugman")


def hoover_localisation(
    table: pd.DataFrame,
    sectors: Collection[str] | None = None,
    *,
    regions: Collection[str] | None = None,
    total: str | None = TOTAL,
) -> pd.DataFrame:
    r"""Hoover's coefficient of localisation per sector, across the analysed regions.

    .. math:: H_s = \frac{1}{2} \sum_r \left| \frac{E_{rs}}{\sum_{r'} E_{r's}}
              - \frac{E_r}{\sum_{r'} E_{r'}} \right|

    (Hoover 1936, *Review of Economic Statistics* 18(4), 162-171; Isard 1960, ch. 7): 0 when
    the sector is spread over the regions as total employment is, near 1 when it sits in
    one small region. Sums run over the regions with both E_rs and E_r present (pairwise).

    Parameters
    ----------
    table, sectors, regions, total
        As for :func:`location_quotients` (the reference is the analysed area itself).

    Returns
    -------
    pandas.DataFrame
        ``sector, [year], hoover, regions`` (the number of regions used).
    """
    lq = location_quotients(table, sectors, regions=regions, total=total)
    keys = _keys(lq)
    both = lq[lq["value"].notna() & lq["region_total"].notna()].copy()
    by = ["sector", *keys]
    both["a"] = _ratio(both["value"], both.groupby(by)["value"].transform("sum"))
    both["b"] = _ratio(both["region_total"], both.groupby(by)["region_total"].transform("sum"))
    both["gap"] = (both["a"] - both["b"]).abs() / 2
    grouped = both.groupby(by, sort=False)
    out = pd.DataFrame({"hoover": grouped["gap"].sum(min_count=1), "regions": grouped.size()})
    return out.reset_index()


# -- shift-share --------------------------------------------------------------------------


def shift_share(
    table: pd.DataFrame,
    start: int,
    end: int,
    sectors: Collection[str] | None = None,
    *,
    regions: Collection[str] | None = None,
    reference: Reference = NATIONAL,
    total: str | None = TOTAL,
) -> pd.DataFrame:
    r"""Classic shift-share decomposition of the change E_rs,start -> E_rs,end.

    With the reference's total growth g = E_end / E_start - 1, its sector growth
    g_s = E_s,end / E_s,start - 1 and the region's g_rs:

    * national share NS = E_rs,start * g;
    * industry mix IM = E_rs,start * (g_s - g);
    * regional shift (competitiveness) RS = E_rs,start * (g_rs - g_s),

    so NS + IM + RS = E_rs,end - E_rs,start (Dunn 1960, "A statistical and analytical
    technique for regional analysis", *Papers of the Regional Science Association* 6,
    97-112; Stevens & Moore 1980, *Journal of Regional Science* 20(4), 419-437). RS is
    computed as the change minus NS and IM, which is the formula above and keeps the
    identity exact to rounding; for E_rs,start = 0 it is the whole change (NS = IM = 0).

    Parameters
    ----------
    table
        Long table with a ``year`` column holding ``start`` and ``end``.
    start, end
        The two years.
    sectors, regions, total
        As for :func:`location_quotients`.
    reference
        ``"national"`` (default: each region's country, NUTS code's first two letters),
        ``"area"``, a reference row (``"EU27_2020"``) or a set of codes.

    Returns
    -------
    pandas.DataFrame
        ``region, sector, start_value, end_value, change, g, g_s, g_rs, national_share,
        industry_mix, regional_shift``; NaN where a value of either year is missing.
    """
    data = _checked(table)
    if "year" not in data or not {start, end} <= set(data["year"].unique()):
        raise InvalidParameterError(
            f"shift_share needs a year column with {start} and {end}; years in the table: "
            f"{sorted(data['year'].unique()) if 'year' in data else 'none'}"
        )
    data = data[data["year"].isin([start, end])]
    lq = location_quotients(data, sectors, regions=regions, reference=reference, total=total)
    cols = ["region", "sector", "value", "ref_sector", "ref_total"]
    a = lq.loc[lq["year"] == start, cols]
    b = lq.loc[lq["year"] == end, cols]
    out = a.merge(b, on=["region", "sector"], suffixes=("_0", "_1"), how="outer")
    out = out.rename(columns={"value_0": "start_value", "value_1": "end_value"})
    out["change"] = out["end_value"] - out["start_value"]
    out["g"] = _ratio(out["ref_total_1"], out["ref_total_0"]) - 1
    out["g_s"] = _ratio(out["ref_sector_1"], out["ref_sector_0"]) - 1
    out["g_rs"] = _ratio(out["end_value"], out["start_value"]) - 1
    present = out["change"].notna()
    out["national_share"] = (out["start_value"] * out["g"]).where(present)
    out["industry_mix"] = (out["start_value"] * (out["g_s"] - out["g"])).where(present)
    out["regional_shift"] = out["change"] - out["national_share"] - out["industry_mix"]
    names = ["start_value", "end_value", "change", "g", "g_s", "g_rs"]
    return out[["region", "sector", *names, "national_share", "industry_mix", "regional_shift"]]


# -- benchmark flags ------------------------------------------------------------------------


def _quantile(frame: pd.DataFrame, column: str, q: float) -> pd.Series:
    """The ``q`` quantile of ``column`` per sector (and year), NaN left out; numpy's default
    linear interpolation (Hyndman & Fan type 7)."""
    by = ["sector", *_keys(frame)]
    return frame.groupby(by, sort=False)[column].transform(lambda s: s.quantile(q))


def _need(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidParameterError(
            f"{what} needs the columns {list(columns)} (location_quotients' result); "
            f"missing: {missing}"
        )


def strong_clusters(
    lq: pd.DataFrame,
    *,
    lq_min: float = 1.0,
    lq_quantile: float = 0.75,
    size_quantile: float = 0.25,
) -> pd.DataFrame:
    """Flag "strong clusters" as the U.S. Cluster Mapping Project does.

    A region x sector is strong when, among the regions of the table for that sector
    (and year):

    * ``lq >= lq_min`` (1);
    * ``lq >= Q(lq_quantile)``: its LQ is in the top quartile, the boundary included (ties
      at the 75th percentile are all strong);
    * ``value > Q(size_quantile)``: its employment is above the bottom quartile, strictly
      (a region exactly at the 25th percentile is not strong).

    Quantiles use linear interpolation (numpy's default) over the regions whose value is
    present; a missing LQ or employment is never strong and does not enter the quantiles.
    Source: Delgado, Porter & Stern (2014), "Clusters, convergence, and economic
    performance", *Research Policy* 43(10), 1785-1799, and the U.S. Cluster Mapping
    methodology (clustermapping.us, "strong clusters").

    Parameters
    ----------
    lq
        :func:`location_quotients`' result (``region, sector, [year], value, lq``).

    Returns
    -------
    pandas.DataFrame
        ``lq`` with ``lq_threshold``, ``size_threshold`` and boolean ``strong`` added.
    """
    _need(lq, ["region", "sector", "value", "lq"], "strong_clusters")
    out = lq.copy()
    out["lq_threshold"] = _quantile(out, "lq", lq_quantile)
    out["size_threshold"] = _quantile(out, "value", size_quantile)
    strong = (out["lq"] >= lq_min) & (out["lq"] >= out["lq_threshold"])
    out["strong"] = (strong & (out["value"] > out["size_threshold"])).astype(bool)
    return out


def cluster_stars(lq: pd.DataFrame, *, top: float = 0.9, lq_min: float = 2.0) -> pd.DataFrame:
    """European Cluster Observatory star rating (0-3 stars) per region x sector.

    One star each, among the regions of the table for that sector (and year), for

    * **size**: employment ``value >= Q(top)``, the top 10 % (boundary included);
    * **specialisation**: ``lq >= lq_min`` (2);
    * **focus**: the sector's share of the region's employment (``share`` = E_rs / E_r)
      ``>= Q(top)`` of that sector's shares, the top 10 % (boundary included).

    Quantiles as in :func:`strong_clusters` (linear interpolation, missing values left
    out); a missing value earns no star. Source: European Cluster Observatory star
    methodology (Center for Strategy and Competitiveness, Stockholm School of Economics,
    2007/2008; Sölvell, Ketels & Lindqvist 2009, *The European Cluster Observatory*,
    Europe INNOVA paper 12; Ketels & Protsiv 2014, *Methodology and findings report for a
    cluster mapping of related sectors*, European Commission).

    Returns
    -------
    pandas.DataFrame
        ``lq`` with ``size_threshold``, ``focus_threshold``, boolean ``size_star``,
        ``specialisation_star``, ``focus_star`` and integer ``stars``.
    """
    _need(lq, ["region", "sector", "value", "share", "lq"], "cluster_stars")
    out = lq.copy()
    out["size_threshold"] = _quantile(out, "value", top)
    out["focus_threshold"] = _quantile(out, "share", top)
    out["size_star"] = (out["value"] >= out["size_threshold"]).astype(bool)
    out["specialisation_star"] = (out["lq"] >= lq_min).astype(bool)
    out["focus_star"] = (out["share"] >= out["focus_threshold"]).astype(bool)
    stars = out[["size_star", "specialisation_star", "focus_star"]].sum(axis=1)
    out["stars"] = stars.astype(np.int64)
    return out


# -- real tables ----------------------------------------------------------------------------


def load_employment(settings: Settings, key: str = "nama_10r_3empers_2018") -> pd.DataFrame:
    """An employment-by-sector table of the mirror as a long table.

    ``nama_10r_3empers_{2013,2018}`` (regional accounts, NUTS 2024 codes, unit THS, employed
    persons) or ``lfst_r_lfe2en2_nuts2_2008_2016`` (LFS, NUTS 2013 codes, THS, age 15+),
    read with :func:`geo.indicators.load_eurostat` (``data/nuts/sources.toml``).

    Returns
    -------
    pandas.DataFrame
        ``region, sector, year, value`` (thousand persons; NaN where Eurostat has ":" or a
        confidential cell) and ``flag``.

    Raises
    ------
    DataSourceError
        When the table is missing, or has more than one row per region, sector and year.
    """
    frame = _read(settings, key).rename(columns=_RENAME)
    for column, wanted in _FILTERS.items():
        if column in frame.columns:
            frame = frame[frame[column] == wanted]
    if "flag" not in frame.columns:
        frame = frame.assign(flag=pd.NA)
    out = frame[["region", "sector", "year", "value", "flag"]].reset_index(drop=True)
    out = out.astype({"region": str, "sector": str, "year": "int64", "value": "float64"})
    if out.duplicated(["region", "sector", "year"]).any():
        raise DataSourceError(f"{key} has more than one row per region, sector and year")
    return out


def _read(settings: Settings, key: str) -> pd.DataFrame:
    from geo.indicators import load_eurostat

    return load_eurostat(settings, key)[0]
