"""Validating uploads: every problem is reported with its file, row, column, value and rule.

Inputs are the mirror's GDP table (Eurostat nama_10r_3gdp) written by code as CSV and
then broken in chosen cells; the expected rows are where the test put the breakage, the
expected hints are the codes it broke, and counts are recomputed from the table with pandas.
NUTS version cases rename real codes with pairs taken from the real GISCO 2021 and 2024 layers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geo.boundaries import load_boundaries
from geo.errors import IngestError
from geo.formats import ReadOptions, read_chunks, sniff
from geo.indicators import load_eurostat
from geo.settings import Settings
from geo.validation import Report, Validator

COLUMNS = ["unit", "geo", "time", "value", "flag"]
FIELDS = {"file", "row", "column", "value", "rule", "reason"}
ROW = 7  # the altered data row (0-based); it is line ROW + 2 of the CSV


def line(i: int) -> int:
    """The CSV line of data row ``i`` (line 1 is the header)."""
    return i + 2


@pytest.fixture(scope="module")
def table(settings: Settings) -> pd.DataFrame:
    """GDP per inhabitant of the Austrian and Slovenian NUTS 3 regions, as CSV text."""
    frame, _ = load_eurostat(settings, "nama_10r_3gdp")
    keep = (
        frame["cntr_code"].isin(["AT", "SI"])
        & (frame["nuts_level"] == 3)
        & (frame["unit"] == "EUR_HAB")
        & ~frame["geo"].str.endswith("ZZZ")
    )
    out = frame.loc[keep, COLUMNS].sort_values(["geo", "time"]).reset_index(drop=True)
    return out.astype(object).where(out.notna(), "").astype(str)


@pytest.fixture(scope="module")
def known(settings: Settings) -> set[str]:
    return set(load_boundaries(settings).index)


def run(
    path: Path, known: set[str], options: ReadOptions | None = None, **kwargs: object
) -> Validator:
    """Read and validate a file with a finished validator."""
    options = options or ReadOptions()
    layout = sniff(path, options)
    validator = Validator(
        str(path), known, decimal=layout.decimal, columns=layout.columns, **kwargs
    )  # type: ignore[arg-type]
    for chunk in read_chunks(path, layout, options, report=validator.report):
        validator.check(chunk)
    validator.finish()
    return validator


def write(frame: pd.DataFrame, path: Path, sep: str = ",") -> Path:
    frame.to_csv(path, index=False, sep=sep)
    return path


# -- one broken cell at a time ----------------------------------------------------------------

Problem = tuple[str, int, str, str]  # rule, row, column, value
Case = Callable[[pd.DataFrame], tuple[pd.DataFrame, list[Problem], str]]


def set_cell(column: str, text: str, rule: str, hint: str = "") -> Case:
    def case(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem], str]:
        out = frame.copy()
        out.loc[ROW, column] = text
        return out, [(rule, line(ROW), column, text)], hint

    return case


def typo(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem], str]:
    """A real code with a doubled first letter: the real code is the closest one."""
    out = frame.copy()
    good = out.loc[ROW, "geo"]
    out.loc[ROW, "geo"] = good[0] + good
    return (
        out,
        [("unknown-nuts-code", line(ROW), "geo", good[0] + good)],
        f"closest valid code: {good}",
    )


def duplicate(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem], str]:
    """A row repeated at the end: both occurrences are reported, naming the first."""
    out = pd.concat([frame, frame.iloc[[ROW]]], ignore_index=True)
    geo = frame.loc[ROW, "geo"]
    found = [
        ("duplicate-key", line(ROW), "geo", geo),
        ("duplicate-key", line(len(out) - 1), "geo", geo),
    ]
    return out, found, f"first in row {line(ROW)}"


def two_problems(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem], str]:
    """Problems in different rows and columns are all reported."""
    out = frame.copy()
    out.loc[1, "value"] = "n/a"
    out.loc[ROW, "time"] = "2019Q1"
    return (
        out,
        [("non-numeric", line(1), "value", "n/a"), ("not-a-year", line(ROW), "time", "2019Q1")],
        "",
    )


CASES: dict[str, Case] = {
    "non-numeric": set_cell("value", "n/a", "non-numeric", "not a number"),
    "nan-text": set_cell("value", "NaN", "nan-value", "':' or an empty cell"),
    "infinity": set_cell("value", "inf", "infinite-value"),
    "minus-infinity": set_cell("value", "-Infinity", "infinite-value"),
    "grouped-without-decimals": set_cell("value", "23,700", "ambiguous-number", "ambiguous"),
    "decimal-comma-in-a-dot-file": set_cell("value", "23700,5", "non-numeric", "decimal mark '.'"),
    "year-out-of-range": set_cell("time", "1850", "year-out-of-range", "1900 to 2100"),
    "quarter": set_cell("time", "2019Q1", "not-a-year"),
    "unknown-flag": set_cell("flag", "x", "unknown-flag", "bcdefnprsuz"),
    "upper-case-flag": set_cell("flag", "P", "unknown-flag"),
    "empty-code": set_cell("geo", "", "missing-nuts-code"),
    "typo-in-code": typo,
    "duplicate-key": duplicate,
    "two-problems": two_problems,
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_problem_names_file_row_column_value_rule(
    table: pd.DataFrame, known: set[str], tmp_path: Path, case: Case
) -> None:
    frame, expected, hint = case(table)
    path = write(frame, tmp_path / "gdp.csv")
    validator = run(path, known)
    problems = validator.report.problems
    assert all(set(p) == FIELDS and p["file"] == str(path) for p in problems)
    assert sorted((p["rule"], p["row"], p["column"], p["value"]) for p in problems) == sorted(
        expected
    )
    assert all(hint in p["reason"] for p in problems)
    # rows with duplicate keys pass check(); finish() finds them, and refuses the table
    dropped = {row for rule, row, _, _ in expected if rule != "duplicate-key"}
    assert validator.summary["rows_kept"] == len(frame) - len(dropped)
    with pytest.raises(IngestError) as err:
        validator.report.raise_if_any()
    assert str(path) in str(err.value)


def test_missing_values_are_kept_with_their_flags(
    table: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    """Empty cells and ':' are missing values (NaN), kept with their flags, not problems."""
    frame = table.copy()
    frame.loc[[1, 2], "value"] = ["", ":"]
    frame.loc[[1, 2], "flag"] = ["c", ""]
    validator = run(write(frame, tmp_path / "gdp.csv"), known)
    assert validator.report.ok
    assert validator.summary["rows_missing"] == 2
    layout = sniff(tmp_path / "gdp.csv")
    kept = pd.concat(
        Validator("x", known).check(c) for c in read_chunks(tmp_path / "gdp.csv", layout)
    )
    assert kept["value"].iloc[[1, 2]].isna().all() and kept["flag"].iloc[1] == "c"
    assert kept["flag"].iloc[2] is None
    np.testing.assert_array_equal(kept["value"].iloc[3:], table["value"].iloc[3:].astype(float))


def test_every_bad_row_is_counted_beyond_the_listed_ones(
    table: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    """Years outside the range: the first max_problems are listed, all are counted."""
    path = write(table, tmp_path / "gdp.csv")
    years = table["time"].astype(int)
    outside = (years < 2005) | (years > 2015)
    validator = run(path, known, years=(2005, 2015), max_problems=10)
    report = validator.report
    assert report.counts["year-out-of-range"] == int(outside.sum()) > 10
    assert [p["row"] for p in report.problems] == [line(i) for i in np.flatnonzero(outside)[:10]]
    assert report.more_problems == int(outside.sum()) - 10
    assert validator.summary["rows_kept"] == int((~outside).sum())
    with pytest.raises(IngestError) as err:
        report.raise_if_any()
    assert err.value.problems[-1]["rule"] == "more-problems"
    assert str(report.more_problems) in err.value.problems[-1]["reason"]


def test_report_add_and_describe() -> None:
    """add() lists up to the limit and counts the rest; describe() is JSON-able."""
    report = Report("f.csv", max_problems=2)
    for row in (3, 4, 5):
        report.add(row, "value", "x", "non-numeric", "not a number")
    report.add(9, "geo", "AT11", "recoded", "AT11 recoded", warning=True)
    described = report.describe()
    assert [p["row"] for p in described["problems"]] == [3, 4]
    assert described["more_problems"] == 1 and described["counts"] == {
        "non-numeric": 3,
        "recoded": 1,
    }
    assert described["warnings"][0]["rule"] == "recoded" and not report.ok


# -- NUTS versions ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def renamed(settings: Settings) -> dict[str, str]:
    """NUTS 3 codes of 2024 -> 2021 for regions of the same name whose code changed."""
    old = load_boundaries(settings)
    new = load_boundaries(settings, 2024, "20M")
    only_old = old[~old.index.isin(new.index) & (old["LEVL_CODE"] == 3)]
    only_new = new[~new.index.isin(old.index) & (new["LEVL_CODE"] == 3)]
    pairs = only_new.reset_index(drop=True).merge(only_old.reset_index(drop=True), on="NAME_LATN")
    pairs = pairs.drop_duplicates("NAME_LATN", keep=False)
    assert len(pairs) >= 5
    return dict(zip(pairs["NUTS_ID_x"], pairs["NUTS_ID_y"], strict=True))


def test_recode_flagged_and_other_versions(
    settings: Settings, known: set[str], renamed: dict[str, str], tmp_path: Path
) -> None:
    """Renames are applied and counted; flagged and other-version codes are problems."""
    frame, _ = load_eurostat(settings, "nama_10r_3gdp")
    old = {v: k for k, v in renamed.items()}
    real = frame[frame["geo"].isin(old) & (frame["unit"] == "EUR_HAB")][COLUMNS]
    real = real.sort_values(["geo", "time"]).reset_index(drop=True)
    coded_2024 = real.assign(geo=real["geo"].map(old))
    codes = sorted(old.values())
    flagged = {codes[0]: "split into two regions in 2024 (test explanation)"}
    other = {codes[1]: 2024}
    recode = {k: v for k, v in renamed.items() if k not in flagged and k not in other}
    path = write(coded_2024, tmp_path / "nuts2024.csv")
    validator = run(path, known, recode=recode, flagged=flagged, other_versions=other)
    refused = coded_2024["geo"].isin([codes[0], codes[1]])
    rules = {p["row"]: (p["rule"], p["value"]) for p in validator.report.problems}
    expected = {
        line(i): ("nuts-code-not-convertible" if g == codes[0] else "nuts-code-other-version", g)
        for i, g in zip(np.flatnonzero(refused), coded_2024["geo"][refused], strict=True)
    }
    assert rules == expected
    reasons = {p["rule"]: p["reason"] for p in validator.report.problems}
    assert flagged[codes[0]] in reasons["nuts-code-not-convertible"]
    assert "NUTS 2024" in reasons["nuts-code-other-version"]
    counts = coded_2024.loc[~refused, "geo"].value_counts()
    assert validator.summary["recoded"] == {
        c: {"new": recode[c], "rows": int(n)} for c, n in counts.items()
    }
    assert sorted(w["value"] for w in validator.report.warnings) == sorted(counts.index)
    layout = sniff(path)
    v = Validator(str(path), known, recode=recode)
    kept = pd.concat([v.check(c) for c in read_chunks(path, layout)], ignore_index=True)
    assert kept["geo"].tolist() == real["geo"][~refused].tolist()


def test_mixed_nuts_levels(
    settings: Settings, table: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    """NUTS 2 rows in a NUTS 3 indicator are each reported, naming the levels."""
    frame, _ = load_eurostat(settings, "nama_10r_3gdp")
    nuts2 = frame[
        (frame["cntr_code"] == "SI") & (frame["nuts_level"] == 2) & (frame["unit"] == "EUR_HAB")
    ]
    mixed = pd.concat([table, nuts2[COLUMNS].astype(str).replace("<NA>", "")], ignore_index=True)
    validator = run(write(mixed, tmp_path / "mixed.csv"), known)
    problems = validator.report.problems
    assert {p["rule"] for p in problems} == {"mixed-nuts-levels"}
    assert [p["row"] for p in problems] == [line(i) for i in range(len(table), len(mixed))]
    assert [p["value"] for p in problems] == nuts2["geo"].tolist()
    assert f"NUTS 2: {len(nuts2)} rows" in problems[0]["reason"]
    assert f"NUTS 3: {len(table)} rows" in problems[0]["reason"]


# -- whole files ------------------------------------------------------------------------------


def test_empty_file_and_header_only(table: pd.DataFrame, known: set[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(IngestError) as err:
        sniff(empty)
    assert [p["rule"] for p in err.value.problems] == ["empty-file"]
    header = write(table.iloc[:0], tmp_path / "header.csv")
    validator = run(header, known)
    assert [p["rule"] for p in validator.report.problems] == ["no-data-rows"]
    bare = tmp_path / "bare.csv"  # the header without a line break
    bare.write_text(header.read_text().rstrip("\n"))
    assert [p["rule"] for p in run(bare, known).report.problems] == ["no-data-rows"]


def test_size_and_row_limits(table: pd.DataFrame, known: set[str], tmp_path: Path) -> None:
    """Files over the byte or row limit are refused as problems naming the limit."""
    path = write(table, tmp_path / "gdp.csv")
    size = path.stat().st_size
    with pytest.raises(IngestError) as err:
        sniff(path, ReadOptions(max_bytes=size - 1))
    (problem,) = err.value.problems
    assert (problem["rule"], problem["value"]) == ("file-too-large", str(size))
    assert sniff(path, ReadOptions(max_bytes=size)).format == "tidy"
    limit = len(table) - 3
    options = ReadOptions(max_rows=limit, chunk_rows=10)
    with pytest.raises(IngestError) as err:
        list(read_chunks(path, sniff(path), options))
    assert [(p["rule"], p["row"]) for p in err.value.problems] == [("too-many-rows", line(limit))]
    validator = run(path, known, ReadOptions(chunk_rows=10), max_rows=limit)
    (problem,) = validator.report.problems
    assert (problem["rule"], problem["row"]) == ("too-many-rows", line(limit))
    assert f"has {len(table)} data rows" in problem["reason"]


def test_row_limit_counts_rows_of_a_wide_table(
    table: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    """A wide row holds several observations; the limit counts the file's rows."""
    wide = table.pivot(index="geo", columns="time", values="value").reset_index()
    path = write(wide, tmp_path / "wide.csv")
    options = ReadOptions(indicator="EUR_HAB", chunk_rows=25)
    assert run(path, known, options, max_rows=len(wide)).report.ok
    validator = run(path, known, options, max_rows=len(wide) - 1)
    (problem,) = validator.report.problems
    assert (problem["rule"], problem["row"]) == ("too-many-rows", line(len(wide) - 1))
    assert validator.summary["data_rows"] == len(wide)


def test_decimal_comma_file(table: pd.DataFrame, known: set[str], tmp_path: Path) -> None:
    """In a ';' file with decimal commas, '1.234' is ambiguous and '1.5' is not a number."""
    frame = table.copy()
    values = frame["value"].astype(float)
    frame["value"] = [f"{v:.1f}".replace(".", ",") for v in values]
    frame.loc[2, "value"] = f"{int(values[2]):,}".replace(",", ".")  # 23.700: grouped, no decimals
    frame.loc[3, "value"] = f"{values[3]:.1f}"  # a decimal point
    path = write(frame, tmp_path / "gdp.csv", sep=";")
    validator = run(path, known)
    found = [(p["rule"], p["row"]) for p in validator.report.problems]
    assert sorted(found) == [("ambiguous-number", line(2)), ("non-numeric", line(3))]
    assert validator.summary["rows_kept"] == len(frame) - 2


def test_filters_and_columns_are_checked(table: pd.DataFrame, tmp_path: Path) -> None:
    """A filter matching nothing, or naming an absent column, is a problem; so is no region."""
    path = write(table, tmp_path / "gdp.csv")
    layout = sniff(path)
    with pytest.raises(IngestError) as err:
        list(read_chunks(path, layout, ReadOptions(where={"unit": "PPS_HAB"})))
    assert err.value.problems[0]["rule"] == "no-matching-rows"
    with pytest.raises(IngestError) as err:
        sniff(path, ReadOptions(where={"sex": "T"}))
    assert (err.value.problems[0]["rule"], err.value.problems[0]["value"]) == (
        "unknown-column",
        "sex",
    )
    no_geo = write(table.drop(columns="geo"), tmp_path / "no_geo.csv")
    with pytest.raises(IngestError) as err:
        sniff(no_geo)
    assert err.value.problems[0]["rule"] == "no-region-column"
    assert "'unit', 'time', 'value', 'flag'" in err.value.problems[0]["reason"]


def test_summary_matches_the_table(settings: Settings, known: set[str], tmp_path: Path) -> None:
    """Years, units and levels per indicator, as pandas counts them from the table."""
    frame, _ = load_eurostat(settings, "nama_10r_3gdp")
    part = frame[
        (frame["cntr_code"] == "AT")
        & (frame["nuts_level"] == 3)
        & ~frame["geo"].str.endswith("ZZZ")
    ]
    path = tmp_path / "at.csv"
    part[COLUMNS].to_csv(path, index=False)
    validator = run(path, known, ReadOptions(indicator_from=["unit"]))
    assert validator.report.ok
    facts = validator.summary["indicators"]
    assert sorted(facts) == sorted(part["unit"].unique())
    for unit, rows in part.groupby("unit"):
        assert facts[unit] == {
            "years": sorted(rows["time"].astype(int).unique().tolist()),
            "units": [unit],
            "levels": [3],
        }
    assert validator.summary["rows_read"] == validator.summary["rows_kept"] == len(part)
