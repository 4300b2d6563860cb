"""geo.specialisation: hand-checked small tables, and plain-pandas recomputations on the real
Eurostat tables nama_10r_3empers (2013, 2018) and lfst_r_lfe2en2 of the mirror.

The small tables are generated from ``np.arange``; the expected values are worked out by hand
in the comments. The real-table references are written here with pivots, ``groupby`` and
``transform``, independently of the module (which merges reference rows onto a grid).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo import specialisation as sp
from geo.areas import area_codes
from geo.errors import InvalidParameterError
from geo.nuts_versions import conversion
from geo.settings import Settings

SECTORS = ["A", "B-E", "F"]
NAMA = "eurostat/nama_10r_3empers_{}.parquet"
TIGHT = {"rtol": 1e-12, "atol": 1e-12}


def small(values: np.ndarray, regions: list[str], year: int | None = None) -> pd.DataFrame:
    """A long table of ``values`` (regions x SECTORS) with a TOTAL row = the row sum."""
    wide = pd.DataFrame(values, index=regions, columns=SECTORS).astype(float)
    wide["TOTAL"] = wide.sum(axis=1)
    return sp.long_table(wide, year)


# E0 = arange(1, 10).reshape(3, 3):
#        A  B-E  F | TOTAL
#   R1   1   2   3 |   6
#   R2   4   5   6 |  15
#   R3   7   8   9 |  24
#  area 12  15  18 |  45
E0 = np.arange(1, 10).reshape(3, 3)
# E1 = E0 + diag(1, 2, 3): R1 2 2 3 | 7;  R2 4 7 6 | 17;  R3 7 8 12 | 27;  area 13 17 21 | 51
E1 = E0 + np.diag([1, 2, 3])
REGIONS = ["AT11", "AT12", "DE11"]


@pytest.fixture
def table() -> pd.DataFrame:
    return small(E0, REGIONS)


def test_lq_by_hand(table: pd.DataFrame) -> None:
    lq = sp.wide_table(sp.location_quotients(table), "lq")
    # LQ(R1, A) = (1/6) / (12/45) = 45/72 = 0.625
    assert lq.loc["AT11", "A"] == pytest.approx(0.625, rel=1e-15)
    # LQ(R1, F) = (3/6) / (18/45) = 0.5 / 0.4 = 1.25
    assert lq.loc["AT11", "F"] == pytest.approx(1.25, rel=1e-15)
    # LQ(R3, F) = (9/24) / (18/45) = 0.375 / 0.4 = 0.9375
    assert lq.loc["DE11", "F"] == pytest.approx(0.9375, rel=1e-15)
    # LQ(R2, B-E) = (5/15) / (15/45) = 1
    assert lq.loc["AT12", "B-E"] == pytest.approx(1.0, rel=1e-15)


def test_lq_reference_row_and_codes(table: pd.DataFrame) -> None:
    # A reference row "EU" with A 10, B-E 30, F 60 (TOTAL 100): LQ(R1, A) = (1/6) / 0.1 = 5/3
    eu = small(np.array([[10, 30, 60]]), ["EU27_2020"])
    both = pd.concat([table, eu], ignore_index=True)
    lq = sp.location_quotients(both, reference="EU27_2020")
    assert "EU27_2020" not in set(lq["region"])  # the reference row is not analysed
    got = lq.set_index(["region", "sector"])["lq"]
    assert got["AT11", "A"] == pytest.approx(5 / 3, rel=1e-15)
    # A set of codes: R1 + R2 = A 5, B-E 7, F 9, TOTAL 21 -> LQ(R3, A) = (7/24) / (5/21)
    lq2 = sp.location_quotients(table, regions=["DE11"], reference=["AT11", "AT12"])
    assert lq2.set_index("sector").at["A", "lq"] == pytest.approx((7 / 24) / (5 / 21), rel=1e-15)
    with pytest.raises(InvalidParameterError, match="not in the table"):
        sp.location_quotients(table, reference="EU27_2020")


def test_lq_national(table: pd.DataFrame) -> None:
    # Country row AT = A 10, B-E 10, F 10 (TOTAL 30); DE has no row: its reference is the sum
    # over the table's DE regions of the same level (DE11 alone), so every LQ of DE11 is 1.
    at = small(np.array([[10, 10, 10]]), ["AT"])
    lq = sp.location_quotients(
        pd.concat([table, at]), regions=REGIONS, reference=sp.NATIONAL
    ).set_index(["region", "sector"])["lq"]
    # LQ(R1, A) = (1/6) / (10/30) = 0.5;  LQ(R2, F) = (6/15) / (1/3) = 1.2
    assert lq["AT11", "A"] == pytest.approx(0.5, rel=1e-15)
    assert lq["AT12", "F"] == pytest.approx(1.2, rel=1e-15)
    np.testing.assert_allclose(lq.loc["DE11"].to_numpy(), 1.0, rtol=1e-15)


def test_lq_uses_total_row_not_sector_sum(table: pd.DataFrame) -> None:
    # Make R1's TOTAL 12 (other, unlisted sectors): LQ(R1, A) = (1/12) / (12/51)
    t = table.copy()
    t.loc[(t["region"] == "AT11") & (t["sector"] == "TOTAL"), "value"] = 12.0
    lq = sp.location_quotients(t).set_index(["region", "sector"])["lq"]
    assert lq["AT11", "A"] == pytest.approx((1 / 12) / (12 / 51), rel=1e-15)
    # total=None: E_r is the sum over the (disjoint) sectors, as in the untouched table.
    lq_sum = sp.location_quotients(t, SECTORS, total=None).set_index(["region", "sector"])
    assert lq_sum.at[("AT11", "A"), "lq"] == pytest.approx(0.625, rel=1e-15)
    with pytest.raises(InvalidParameterError, match="overlap"):
        sp.location_quotients(t.assign(sector=t["sector"].replace("F", "C")), ["B-E", "C"],
                              total=None)  # fmt: skip


def test_missing_and_zero_denominators(table: pd.DataFrame) -> None:
    t = table[~((table["region"] == "AT11") & (table["sector"] == "A"))].copy()  # no row
    t.loc[(t["region"] == "AT12") & (t["sector"] == "TOTAL"), "value"] = 0.0  # E_r = 0
    t.loc[(t["region"] == "DE11") & (t["sector"] == "F"), "value"] = np.nan  # ":" cell
    t.loc[t["sector"] == "B-E", "value"] = 0.0  # E_s = 0 for the reference
    lq = sp.location_quotients(t).set_index(["region", "sector"])["lq"]
    assert len(lq) == 9  # the missing cell is a row, with NaN
    assert np.isnan(lq["AT11", "A"])
    assert lq.loc["AT12"].isna().all()
    assert np.isnan(lq["DE11", "F"])
    assert lq.loc[(slice(None), "B-E")].isna().all()
    assert not np.isinf(lq.to_numpy()).any()
    # The reference sum skips the missing cell: A over R2 and R3 = 11, TOTAL = 6 + 0 + 24
    assert lq["DE11", "A"] == pytest.approx((7 / 24) / (11 / 30), rel=1e-15)


def test_krugman_and_hoover_by_hand(table: pd.DataFrame) -> None:
    # R1 shares 1/6, 2/6, 3/6 vs the area's 12/45, 15/45, 18/45:
    # |1/6 - 4/15| + |1/3 - 1/3| + |1/2 - 2/5| = 0.1 + 0 + 0.1 = 0.2; Hoover = 0.1
    # R2 equals the area (4/15, 1/3, 2/5): 0.
    k = sp.krugman_index(table, SECTORS).set_index("region")["krugman"]
    assert k["AT11"] == pytest.approx(0.2, rel=1e-14)
    assert k["AT12"] == pytest.approx(0.0, abs=1e-15)
    h = sp.hoover_index(table, SECTORS).set_index("region")["hoover"]
    assert h["AT11"] == pytest.approx(0.1, rel=1e-14)
    # Localisation of A: regional shares 1/12, 4/12, 7/12 vs total shares 6/45, 15/45, 24/45
    # -> 0.5 * (3/60 + 0 + 3/60) = 0.05
    loc = sp.hoover_localisation(table).set_index("sector")
    assert loc.at["A", "hoover"] == pytest.approx(0.05, rel=1e-14)
    assert loc.at["A", "regions"] == 3
    with pytest.raises(InvalidParameterError, match="overlap"):
        sp.krugman_index(table, ["B-E", "C"])
    # A missing sector makes the region's K NaN (shares within S would be wrong).
    t = table[~((table["region"] == "AT11") & (table["sector"] == "F"))]
    assert np.isnan(sp.krugman_index(t, SECTORS).set_index("region").at["AT11", "krugman"])


def test_shift_share_by_hand() -> None:
    t = pd.concat([small(E0, REGIONS, 2013), small(E1, REGIONS, 2018)], ignore_index=True)
    ss = sp.shift_share(t, 2013, 2018, reference=sp.AREA).set_index(["region", "sector"])
    row = ss.loc[("AT11", "A")]
    # g = 51/45 - 1 = 2/15; g_A = 13/12 - 1 = 1/12; g_rs = 2/1 - 1 = 1; E0 = 1
    # NS = 2/15; IM = 1/12 - 2/15 = -1/20; RS = 1 - 1/12 = 11/12; sum = 1 = 2 - 1
    assert row["g"] == pytest.approx(2 / 15, rel=1e-14)
    assert row["national_share"] == pytest.approx(2 / 15, rel=1e-14)
    assert row["industry_mix"] == pytest.approx(-1 / 20, rel=1e-13)
    assert row["regional_shift"] == pytest.approx(11 / 12, rel=1e-14)
    parts = ss[["national_share", "industry_mix", "regional_shift"]].sum(axis=1)
    np.testing.assert_allclose(parts, ss["change"], rtol=0, atol=1e-13)


def test_shift_share_zero_start_and_missing() -> None:
    start = E0.copy()
    start[0, 0] = 0  # R1 had no A: NS = IM = 0, RS = the whole change
    t = pd.concat([small(start, REGIONS, 2013), small(E1, REGIONS, 2018)], ignore_index=True)
    t = t[~((t["region"] == "DE11") & (t["sector"] == "F") & (t["year"] == 2018))]
    ss = sp.shift_share(t, 2013, 2018, reference=sp.AREA).set_index(["region", "sector"])
    row = ss.loc[("AT11", "A")]
    assert (row["national_share"], row["industry_mix"], row["regional_shift"]) == (0, 0, 2)
    assert ss.loc[("DE11", "F")].drop(["start_value", "g", "g_s"]).isna().all()
    with pytest.raises(InvalidParameterError, match="2020"):
        sp.shift_share(t, 2013, 2020)


def test_disjoint_sectors() -> None:
    nama = ["TOTAL", "A", "B-E", "C", "F", "G-J", "G-I", "J", "K-N", "K", "L", "M_N", "O-U"]
    nama += ["O-Q", "R-U"]
    assert sp.disjoint_sectors(nama) == ["A", "B-E", "F", "G-J", "K-N", "O-U"]
    fine = sp.disjoint_sectors(nama, "fine")
    assert fine == ["A", "B-E", "F", "G-I", "J", "K", "L", "M_N", "O-Q", "R-U"]
    # Without B-E, C is the only code left of that branch and is kept.
    assert "C" in sp.disjoint_sectors([c for c in nama if c != "B-E"])
    # An incomplete split is not used: without L, K-N stays and K, M_N go.
    partial = sp.disjoint_sectors([c for c in nama if c != "L"], "fine")
    assert "K-N" in partial and "K" not in partial
    lfs = ["TOTAL", "A", "B-E", "F", "G-I", "J", "K", "L", "M_N", "O-Q", "R-U", "NRP"]
    assert sp.disjoint_sectors(lfs) == lfs[1:]
    for chosen in (sp.disjoint_sectors(nama), fine):
        sp.check_disjoint(chosen)
    with pytest.raises(InvalidParameterError, match="unknown sector"):
        sp.check_disjoint(["A", "X"])


# -- benchmark flags: at, below and above the quantile boundaries ---------------------------


def flags_frame(lq: list[float], value: list[float], sector: str = "C") -> pd.DataFrame:
    n = len(lq)
    return pd.DataFrame(
        {
            "region": [f"R{i}" for i in range(n)],
            "sector": sector,
            "value": value,
            "lq": lq,
            "share": [v / 100 for v in value],
        }
    )


def test_strong_clusters_rules() -> None:
    # LQ sorted 0.5 1.0 1.2 2.0 2.0 (+ NaN): Q3 (linear) = x[3] = 2.0, ties both at Q3.
    # Values 10 10 20 30 40 (+ 50): Q1 = x[1] = 10; a region exactly at Q1 is not strong.
    frame = flags_frame([2.0, 0.5, 1.0, 1.2, 2.0, np.nan], [10, 10, 20, 30, 40, 50])
    out = sp.strong_clusters(frame).set_index("region")
    assert out["lq_threshold"].iloc[0] == np.quantile([0.5, 1.0, 1.2, 2.0, 2.0], 0.75) == 2.0
    assert out["size_threshold"].iloc[0] == np.quantile([10, 10, 20, 30, 40, 50], 0.25)
    assert out["strong"].to_dict() == {
        "R0": False,  # LQ at Q3 but value == Q1 (not above)
        "R1": False,
        "R2": False,
        "R3": False,
        "R4": True,  # LQ at Q3 (tie), value above Q1
        "R5": False,  # NaN LQ
    }
    # Q3 below 1: top quartile alone is not enough, LQ >= 1 is needed; LQ = 1 exactly counts.
    low = sp.strong_clusters(flags_frame([0.2, 0.4, 0.6, 0.8, 0.9], [50] * 4 + [60], "F"))
    assert not low["strong"].any()
    one = sp.strong_clusters(flags_frame([0.1, 0.2, 0.3, 1.0, 1.0], [5, 5, 5, 6, 7], "A"))
    assert one["strong"].tolist() == [False, False, False, True, True]


def test_strong_clusters_interpolated_boundary() -> None:
    # LQ 1 2 3 4 -> Q3 = 3 + 0.25 = 3.25 (linear); 3.25 - 1e-9 is out, 3.25 is in.
    lq = [1.0, 2.0, 3.0, 4.0, 3.25 - 1e-9, 3.25]
    threshold = np.quantile(lq, 0.75)
    frame = flags_frame(lq, [100] * 6)
    frame.loc[0, "value"] = 1  # Q1 of values = 100, so only regions with value > 100...
    frame["value"] = [1, 2, 3, 200, 200, 200]
    out = sp.strong_clusters(frame)
    expected = [(x >= 1) and (x >= threshold) and (v > np.quantile(frame["value"], 0.25))
                for x, v in zip(lq, frame["value"], strict=True)]  # fmt: skip
    assert out["strong"].tolist() == expected
    assert sum(expected) >= 2  # the boundary case and LQ 4 both pass


def test_cluster_stars_rules() -> None:
    # 11 regions, values 1..11: Q(0.9) = x[9] = 10, so 10 (boundary) and 11 get the size star.
    # Shares (value / 100) likewise; LQ 2.0 exactly earns the star, 1.999 not; NaN never.
    lq = [2.0, 1.999, 0.5, 3.0, 1.0, 0.2, np.nan, 2.5, 1.0, 1.0, 2.0]
    frame = flags_frame(lq, [float(v) for v in range(1, 12)])
    # Region R10: biggest, but its share 0.05 is below Q(0.9) of the shares
    # .01 .02 .03 .04 .05 .05 .06 .07 .08 .09 .10 -> x[9] = 0.09 (R8 sits on it: a star).
    frame.loc[10, "share"] = 0.05
    out = sp.cluster_stars(frame).set_index("region")
    shares = frame["share"].to_numpy()
    assert out["size_threshold"].iloc[0] == np.quantile(np.arange(1, 12), 0.9) == 10
    assert out["focus_threshold"].iloc[0] == np.quantile(shares, 0.9)
    assert out["size_star"][out["size_star"]].index.tolist() == ["R9", "R10"]
    assert out["specialisation_star"][out["specialisation_star"]].index.tolist() == [
        "R0", "R3", "R7", "R10"
    ]  # fmt: skip
    assert out.loc["R10", "stars"] == 2  # size + specialisation, not focus
    assert out.loc["R9", "stars"] == 2  # size + focus (share 0.10 > Q(0.9)), LQ 1
    assert out.loc["R8", "stars"] == 1  # focus only: share 0.09 == Q(0.9), boundary included
    expected = (
        (frame["value"] >= 10).astype(int)
        + (frame["lq"] >= 2).astype(int)
        + (frame["share"] >= np.quantile(shares, 0.9)).astype(int)
    )
    assert out["stars"].tolist() == expected.tolist()
    nan = frame.assign(value=np.nan, share=np.nan, lq=np.nan)
    assert (sp.cluster_stars(nan)["stars"] == 0).all()


# -- the real tables -----------------------------------------------------------------------


def raw(settings: Settings, year: int) -> pd.DataFrame:
    """The mirror file itself, read independently of the module's loader."""
    assert settings.data_mirror is not None
    return pd.read_parquet(settings.data_mirror / NAMA.format(year))


@pytest.fixture(scope="module")
def nama18(settings: Settings) -> pd.DataFrame:
    return sp.load_employment(settings, "nama_10r_3empers_2018")


def test_loader_matches_the_file(settings: Settings, nama18: pd.DataFrame) -> None:
    file = raw(settings, 2018)
    assert len(nama18) == len(file) == 20789
    merged = nama18.merge(file, left_on=["region", "sector"], right_on=["geo", "nace_r2"])
    assert len(merged) == len(file)
    np.testing.assert_array_equal(merged["value_x"], merged["value_y"])
    lfs = sp.load_employment(settings, "lfst_r_lfe2en2_nuts2_2008_2016")
    assert len(lfs) == 34344 and set(lfs["year"]) == set(range(2008, 2017))


def test_real_lq_against_eu27(settings: Settings, nama18: pd.DataFrame) -> None:
    file = raw(settings, 2018)
    wide = file.pivot(index="geo", columns="nace_r2", values="value")
    eu = wide.loc["EU27_2020"]
    nuts2 = wide[(wide.index.str.len() == 4) & ~wide.index.str.endswith("Z")]
    expected = nuts2.div(nuts2["TOTAL"], axis=0) / (eu / eu["TOTAL"])
    ours = sp.location_quotients(nama18, regions=list(nuts2.index), reference="EU27_2020")
    got = sp.wide_table(ours, "lq").reindex(index=expected.index, columns=expected.columns)
    got = got.drop(columns="TOTAL")
    np.testing.assert_allclose(got, expected.drop(columns="TOTAL"), **TIGHT)
    assert got.notna().sum().sum() > 3000


def test_real_lq_area_reference_groupby(settings: Settings, nama18: pd.DataFrame) -> None:
    # Reference = the analysed area: NUTS 3 of AT, DE, IT (extra-regio included), with
    # groupby/transform sums that skip missing cells.
    file = raw(settings, 2018)
    part = file[(file["nuts_level"] == 3) & file["cntr_code"].isin(["AT", "DE", "IT"])].copy()
    total = part[part["nace_r2"] == "TOTAL"].set_index("geo")["value"]
    sect = part[part["nace_r2"] != "TOTAL"].copy()
    sect["e_r"] = sect["geo"].map(total)
    sect["e_s"] = sect.groupby("nace_r2")["value"].transform("sum")
    sect["lq"] = (sect["value"] / sect["e_r"]) / (sect["e_s"] / total.sum())
    ours = sp.location_quotients(nama18, regions=part["geo"].unique())
    got = sect.merge(ours, left_on=["geo", "nace_r2"], right_on=["region", "sector"])
    assert len(got) == len(sect)
    np.testing.assert_allclose(got["lq_y"], got["lq_x"], **TIGHT)
    # Cells absent from the file are NaN rows in ours (AT, DE: only the 6-sector split).
    assert ours["lq"].isna().sum() == len(ours) - len(sect)


def test_real_krugman_hoover(settings: Settings, nama18: pd.DataFrame) -> None:
    file = raw(settings, 2018)
    coarse = ["A", "B-E", "F", "G-J", "K-N", "O-U"]
    wide = file[file["nace_r2"].isin(coarse)].pivot(index="geo", columns="nace_r2", values="value")
    wide = wide[coarse]
    eu = wide.loc["EU27_2020"] / wide.loc["EU27_2020"].sum()
    nuts2 = wide[(wide.index.str.len() == 4) & ~wide.index.str.endswith("Z")].dropna()
    shares = nuts2.div(nuts2.sum(axis=1), axis=0)
    expected = (shares - eu).abs().sum(axis=1)
    k = sp.krugman_index(nama18, coarse, regions=list(nuts2.index), reference="EU27_2020")
    np.testing.assert_allclose(k.set_index("region")["krugman"][expected.index], expected, **TIGHT)
    h = sp.hoover_index(nama18, coarse, regions=list(nuts2.index), reference="EU27_2020")
    np.testing.assert_allclose(h.set_index("region")["hoover"][expected.index], expected / 2)
    # Hoover localisation over the same NUTS 2 regions, per sector
    long = file[file["geo"].isin(nuts2.index)]
    tot = long[long["nace_r2"] == "TOTAL"].set_index("geo")["value"]
    c = long[long["nace_r2"] == "C"].set_index("geo")["value"].dropna()
    both = tot[c.index]
    expected_c = 0.5 * (c / c.sum() - both / both.sum()).abs().sum()
    loc = sp.hoover_localisation(nama18, ["C"], regions=list(nuts2.index))
    assert loc["hoover"].iloc[0] == pytest.approx(expected_c, rel=1e-12)


def test_real_shift_share_national(settings: Settings, nama18: pd.DataFrame) -> None:
    # NUTS 3 of IT and FR (all 15 sectors), 2013 -> 2018, reference = the country's row.
    nama13 = sp.load_employment(settings, "nama_10r_3empers_2013")
    both = pd.concat([nama13, nama18], ignore_index=True)
    f0, f1 = raw(settings, 2013), raw(settings, 2018)
    w0 = f0.pivot(index="geo", columns="nace_r2", values="value")
    w1 = f1.pivot(index="geo", columns="nace_r2", values="value")
    regs = [g for g in w0.index if len(g) == 5 and g[:2] in ("IT", "FR")]
    ss = sp.shift_share(both, 2013, 2018, regions=regs).set_index(["region", "sector"])
    sectors = [s for s in w0.columns if s != "TOTAL"]
    for cc in ("IT", "FR"):
        mine = [r for r in regs if r.startswith(cc)]
        e0, e1 = w0.loc[mine, sectors], w1.loc[mine, sectors]
        g = w1.loc[cc, "TOTAL"] / w0.loc[cc, "TOTAL"] - 1
        gs = w1.loc[cc, sectors] / w0.loc[cc, sectors] - 1
        grs = e1 / e0 - 1
        expected = {
            "national_share": e0 * g,
            "industry_mix": e0 * (gs - g),
            # where E_rs,2013 = 0 (FR106 A, ITF21 L, ITZZZ) g_rs is undefined: RS = change
            "regional_shift": (e0 * (grs - gs)).where(e0 != 0, e1 - e0),
        }
        for name, frame in expected.items():
            got = ss[name].unstack().loc[mine, sectors]
            np.testing.assert_allclose(got, frame, rtol=1e-12, atol=1e-12)
    total = ss[["national_share", "industry_mix", "regional_shift"]].sum(axis=1)
    np.testing.assert_allclose(total, ss["change"], rtol=0, atol=1e-12)


def test_real_flags_follow_their_rules(nama18: pd.DataFrame) -> None:
    regions = [r for r in nama18["region"].unique() if len(r) == 4 and not r.endswith("Z")]
    lq = sp.location_quotients(nama18, regions=regions, reference="EU27_2020")
    strong = sp.strong_clusters(lq)
    stars = sp.cluster_stars(lq)
    for sector, part in lq.groupby("sector"):
        ok = part.dropna(subset=["lq", "value"])
        q3, q1 = np.quantile(ok["lq"], 0.75), np.quantile(ok["value"], 0.25)
        rule = (part["lq"] >= 1) & (part["lq"] >= q3) & (part["value"] > q1)
        assert strong.loc[part.index, "strong"].tolist() == rule.tolist(), sector
        size = part["value"] >= np.quantile(part["value"].dropna(), 0.9)
        focus = part["share"] >= np.quantile(part["share"].dropna(), 0.9)
        count = size.astype(int) + (part["lq"] >= 2).astype(int) + focus.astype(int)
        assert stars.loc[part.index, "stars"].tolist() == count.tolist(), sector
    assert strong["strong"].sum() > 0 and (stars["stars"] == 3).sum() > 0


# -- the lists for the report (run with -s to see them) --------------------------------------


def alpine_nuts2(settings: Settings, version: int) -> tuple[list[str], dict[str, str]]:
    """The Alpine Space NUTS 2 codes (areas.toml, NUTS 2021) in NUTS ``version``: one-to-one
    renames from geo.nuts_versions; codes it flags only because the older workbook lists no
    such country (CH, LI) are unchanged; any other flag fails the test."""
    codes = area_codes(settings, "alpine-space")
    conv = conversion(settings, 2021, version)
    odd = {c: why for c, why in conv.flagged.items() if c in codes and "lists no" not in why}
    assert not odd
    return [conv.renames.get(c, c) for c in codes], {
        c: conv.renames[c] for c in codes if c in conv.renames
    }


def test_alpine_lists(settings: Settings, nama18: pd.DataFrame) -> None:
    lfs = sp.load_employment(settings, "lfst_r_lfe2en2_nuts2_2008_2016")
    lfs16 = lfs[lfs["year"] == 2016]
    codes, renames = alpine_nuts2(settings, 2013)
    present = [c for c in codes if c in set(lfs16["region"])]
    assert "EU27_2020" not in set(lfs16["region"])  # so the reference is the whole table
    every = sorted(lfs16["region"].unique())
    lq = sp.location_quotients(lfs16, ["B-E"], regions=every, reference=sp.AREA)
    alp = lq[lq["region"].isin(present)].set_index("region")["lq"]
    high = alp[alp >= 1.25].sort_values(ascending=False)
    print(f"\nNUTS 2021 -> 2013 renames: {renames}; not in the table: "
          f"{sorted(set(codes) - set(present))}")  # fmt: skip
    print(f"Alpine Space NUTS 2, LQ(B-E) >= 1.25, 2016, reference = {len(every)} regions:")
    print(high.round(4).to_string())
    # independent: pivot and divide
    w = lfs16.pivot(index="region", columns="sector", values="value")
    ref = w["B-E"].sum() / w["TOTAL"].sum()
    np.testing.assert_allclose(alp, (w["B-E"] / w["TOTAL"] / ref)[alp.index], **TIGHT)

    nuts2, _ = alpine_nuts2(settings, 2024)
    n3 = [r for r in nama18["region"].unique() if len(r) == 5 and r.startswith(tuple(nuts2))]
    c = sp.location_quotients(nama18, ["C"], regions=n3, reference="EU27_2020")
    c = c.set_index("region")
    print(f"Alpine Space NUTS 3, LQ(C) 2018, reference EU27_2020: {len(n3)} regions, "
          f"{c['lq'].notna().sum()} with C")  # fmt: skip
    by_country = c["lq"].notna().groupby(c.index.str[:2]).agg(["sum", "size"])
    print(by_country.to_string())
    print(c["lq"].sort_values(ascending=False).round(4).to_string())
    assert c["lq"].notna().all()
