"""Reading uploads of every layout: each file is written by code from the real GDP table.

The reference is always the mirror's Eurostat nama_10r_3gdp table (through
``geo.indicators.load_eurostat``), converted here into the layouts statisticians upload:
Eurostat TSV and SDMX-CSV, semicolon/decimal-comma/Windows-1252 CSV with the real GISCO
region names, UTF-8 with BOM, tab-separated, wide tables, Parquet and an office workbook
with merged cells. What is read back is compared with the table row by row.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geo.boundaries import load_boundaries, regions
from geo.errors import IngestError
from geo.formats import Layout, ReadOptions, read_chunks, sniff
from geo.indicators import load_eurostat
from geo.settings import Settings
from geo.validation import Validator

COUNTRIES = ["AT", "SI", "CH"]  # CH reports NUTS 3 only for 2011-2018: gaps in wide layouts
UNITS = ["EUR_HAB", "MIO_EUR"]
KEY = ["indicator", "geo", "time"]


@pytest.fixture(scope="module")
def gdp(settings: Settings) -> pd.DataFrame:
    """GDP of the Austrian, Slovenian and Swiss NUTS 3 regions, two units, every year."""
    frame, _ = load_eurostat(settings, "nama_10r_3gdp")
    keep = (
        frame["cntr_code"].isin(COUNTRIES)
        & (frame["nuts_level"] == 3)
        & frame["unit"].isin(UNITS)
        & ~frame["geo"].str.endswith("ZZZ")  # extra-regio codes have no GISCO region
    )
    table = frame.loc[keep].sort_values(["unit", "geo", "time"]).reset_index(drop=True)
    assert table["flag"].notna().any() and table["flag"].isna().any()
    return table


@pytest.fixture(scope="module")
def known(settings: Settings) -> set[str]:
    """Every NUTS 2021 code of the boundary layer in use."""
    return set(load_boundaries(settings).index)


def read(path: Path, **options: object) -> tuple[Layout, pd.DataFrame]:
    """Sniff and read a whole file into one frame of chunks."""
    opts = ReadOptions(**options)  # type: ignore[arg-type]
    layout = sniff(path, opts)
    chunks = list(read_chunks(path, layout, opts))
    assert all(len(c) <= opts.chunk_rows for c in chunks)
    return layout, pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()


def validate(
    path: Path, known: set[str], **options: object
) -> tuple[Layout, pd.DataFrame, Validator]:
    """Read and validate a file; return the layout, the kept rows and the finished validator."""
    opts = ReadOptions(**options)  # type: ignore[arg-type]
    layout = sniff(path, opts)
    validator = Validator(str(path), known, decimal=layout.decimal, columns=layout.columns)
    kept = [validator.check(chunk) for chunk in read_chunks(path, layout, opts)]
    validator.finish()
    return layout, pd.concat(kept, ignore_index=True), validator


def expected(table: pd.DataFrame, indicator: str = "unit") -> pd.DataFrame:
    """The normalised rows the validator should return for ``table``."""
    out = pd.DataFrame(
        {
            "indicator": table[indicator].astype(str),
            "geo": table["geo"].astype(str),
            "time": table["time"].astype("int64"),
            "value": table["value"].astype(float),
            "flag": table["flag"].astype(object).where(table["flag"].notna(), None),
        }
    )
    return out.sort_values(KEY).reset_index(drop=True)


def assert_same(kept: pd.DataFrame, reference: pd.DataFrame) -> None:
    """Row by row: keys, exact values (NaN where missing) and flags."""
    got = kept.sort_values(KEY).reset_index(drop=True)
    assert got[KEY].astype(str).values.tolist() == reference[KEY].astype(str).values.tolist()
    np.testing.assert_array_equal(got["value"].to_numpy(), reference["value"].to_numpy())
    flags = [f if isinstance(f, str) else None for f in got["flag"]]
    assert flags == reference["flag"].tolist()


def cell(value: float, flag: object) -> str:
    """A Eurostat TSV cell: "12345.6 p", "12345.6" or ":"."""
    text = ":" if pd.isna(value) else repr(float(value))
    return f"{text} {flag}" if isinstance(flag, str) else text


def write_tsv(
    table: pd.DataFrame, path: Path, confidential: pd.Series
) -> dict[tuple[str, str], int]:
    """Eurostat TSV as downloaded; returns the line of each (unit, geo) series.

    Rows marked ``confidential`` are written ": c" (missing, flag c), and combinations of
    region and year the table lacks as ":".
    """
    cells = [
        ": c" if conf else cell(v, f)
        for v, f, conf in zip(table["value"], table["flag"], confidential, strict=True)
    ]
    wide = table.assign(cell=cells).pivot(
        index=["freq", "unit", "geo"], columns="time", values="cell"
    )
    years = sorted(wide.columns, reverse=True)
    lines = ["freq,unit,geo\\TIME_PERIOD\t" + "\t".join(f"{y} " for y in years)]
    series = {}
    for (freq, unit, geo), row in wide[years].iterrows():
        lines.append(
            f"{freq},{unit},{geo}\t" + "\t".join(c if isinstance(c, str) else ":" for c in row)
        )
        series[(unit, geo)] = len(lines)
    path.write_bytes(("\n".join(lines) + "\n").encode())
    return series


def full_grid(table: pd.DataFrame) -> pd.DataFrame:
    """Every (unit, geo, year) of the table's series, NaN where the table has no row."""
    grid = pd.MultiIndex.from_product(
        [table["unit"].unique(), table["geo"].unique(), table["time"].unique()],
        names=["unit", "geo", "time"],
    ).to_frame(index=False)
    series = table[["unit", "geo"]].drop_duplicates()
    grid = grid.merge(series, on=["unit", "geo"])
    return grid.merge(table, on=["unit", "geo", "time"], how="left")


# -- Eurostat layouts -------------------------------------------------------------------------


def test_eurostat_tsv_round_trip(gdp: pd.DataFrame, known: set[str], tmp_path: Path) -> None:
    """The TSV layout: packed dimensions, "value flag" cells, ":" and ": c" for missing."""
    confidential = pd.Series(np.arange(len(gdp)) % 97 == 0)
    path = tmp_path / "nama_10r_3gdp.tsv"
    lines = write_tsv(gdp, path, confidential)
    layout, raw = read(path)
    assert layout.format == "eurostat-tsv"
    assert layout.packed == ("freq", "unit", "geo") and layout.dimensions == ("unit",)
    # every cell names its line and its year column
    assert raw["row"].tolist() == [
        lines[(u, g)] for u, g in zip(raw["unit"], raw["geo"], strict=True)
    ]
    assert (raw["column"] == raw["time"]).all()
    reference = full_grid(gdp.assign(value=gdp["value"].where(~confidential)))
    conf_keys = set(map(tuple, gdp.loc[confidential, ["unit", "geo", "time"]].astype(str).values))
    reference["flag"] = [
        "c" if (u, g, str(t)) in conf_keys else f
        for u, g, t, f in zip(
            reference["unit"], reference["geo"], reference["time"], reference["flag"], strict=True
        )
    ]
    _, kept, validator = validate(path, known)
    assert validator.report.ok, validator.report.problems[:3]
    assert_same(kept, expected(reference))
    assert validator.summary["rows_missing"] == int(reference["value"].isna().sum())


def test_eurostat_tsv_gzip_as_downloaded(
    gdp: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    """A gzip-compressed TSV (Eurostat's bulk download) reads as the plain one."""
    plain = tmp_path / "t.tsv"
    write_tsv(gdp, plain, pd.Series(False, index=gdp.index))
    packed = tmp_path / "t.tsv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    layout, kept, validator = validate(packed, known)
    assert layout.compression == "gzip" and layout.format == "eurostat-tsv"
    _, reference, _ = validate(plain, known)
    pd.testing.assert_frame_equal(kept, reference)
    assert validator.report.ok


def test_eurostat_tsv_where_and_indicator_from(
    gdp: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    """Dimensions of the packed first column filter rows and name indicators."""
    path = tmp_path / "t.tsv"
    write_tsv(gdp, path, pd.Series(False, index=gdp.index))
    _, kept, _ = validate(path, known, where={"unit": "EUR_HAB"}, indicator_from=["unit", "freq"])
    eur = gdp[gdp["unit"] == "EUR_HAB"]
    reference = expected(full_grid(eur).assign(indicator="EUR_HAB.A"), "indicator")
    assert_same(kept, reference)


def sdmx(table: pd.DataFrame) -> pd.DataFrame:
    """The table in Eurostat's SDMX-CSV layout."""
    out = table.rename(
        columns={
            "time": "TIME_PERIOD",
            "value": "OBS_VALUE",
            "flag": "OBS_FLAG",
            "last_update": "LAST UPDATE",
        }
    )
    out.insert(0, "DATAFLOW", "ESTAT:NAMA_10R_3GDP(1.0)")
    return out[
        ["DATAFLOW", "LAST UPDATE", "freq", "unit", "geo", "TIME_PERIOD", "OBS_VALUE", "OBS_FLAG"]
    ]


def test_sdmx_csv_round_trip(gdp: pd.DataFrame, known: set[str], tmp_path: Path) -> None:
    """SDMX-CSV: the indicator is named by the dimensions other than geo and freq (unit)."""
    path = tmp_path / "nama_10r_3gdp.csv"
    sdmx(gdp).to_csv(path, index=False)
    layout, raw = read(path)
    assert layout.format == "sdmx-csv" and layout.dimensions == ("unit",)
    assert layout.columns["value"] == "OBS_VALUE" and layout.columns["flag"] == "OBS_FLAG"
    assert raw["row"].tolist() == list(range(2, len(gdp) + 2))
    assert raw["value"].tolist() == [repr(v) for v in gdp["value"]]  # as written
    _, kept, validator = validate(path, known)
    assert validator.report.ok
    assert_same(kept, expected(gdp))


# -- encodings, delimiters, decimal marks -----------------------------------------------------


def named(settings: Settings, table: pd.DataFrame) -> pd.DataFrame:
    """The table with the real GISCO Latin-script names, where Windows-1252 can write them."""
    names = regions(settings, 3)["NAME_LATN"]
    out = table.assign(NAME_LATN=table["geo"].map(names))

    def fits(name: object) -> bool:
        try:
            str(name).encode("cp1252")
        except UnicodeEncodeError:
            return False
        return isinstance(name, str)

    return out[out["NAME_LATN"].map(fits)]


def continental(value: float) -> str:
    """1234567.8 -> "1.234.567,80", as a German or Italian spreadsheet writes it."""
    return f"{value:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def test_latin1_semicolon_decimal_comma(
    settings: Settings, gdp: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    """Windows-1252, ';' and '1.234,5': detected, names decoded, grouped numbers warned."""
    table = named(settings, gdp)
    assert any(not n.isascii() for n in table["NAME_LATN"])
    text = table.assign(value=table["value"].map(continental))
    path = tmp_path / "bip.csv"
    columns = {"geo": "NUTS_ID", "time": "Jahr"}
    text.rename(columns=columns)[["NUTS_ID", "NAME_LATN", "unit", "Jahr", "value", "flag"]].to_csv(
        path, sep=";", index=False, encoding="cp1252"
    )
    layout = sniff(path)
    assert (layout.encoding, layout.delimiter, layout.decimal) == ("cp1252", ";", ",")
    assert layout.columns["geo"] == "NUTS_ID"
    _, kept, validator = validate(path, known, columns={"time": "Jahr"})
    assert validator.report.ok, validator.report.problems[:3]
    assert_same(kept, expected(table))
    grouped = int((table["value"].abs() >= 1000).sum())
    assert validator.report.counts.get("thousands-separator", 0) == grouped
    # the non-ASCII names survive decoding: they filter rows and can name indicators
    name = next(n for n in table["NAME_LATN"] if not n.isascii())
    _, one, _ = validate(path, known, columns={"time": "Jahr"}, where={"NAME_LATN": name})
    assert_same(one, expected(table[table["NAME_LATN"] == name]))
    _, by_name, _ = validate(
        path, known, columns={"time": "Jahr"}, indicator_from=["NAME_LATN", "unit"]
    )
    assert set(by_name["indicator"]) == set(table["NAME_LATN"] + "." + table["unit"])


@pytest.mark.parametrize(
    ("encoding", "sep"),
    [("utf-8-sig", ","), ("utf-8", "\t"), ("utf-8-sig", "\t"), ("cp1252", ",")],
    ids=["bom-comma", "utf8-tab", "bom-tab", "cp1252-comma"],
)
def test_encodings_and_delimiters(
    settings: Settings, gdp: pd.DataFrame, known: set[str], tmp_path: Path, encoding: str, sep: str
) -> None:
    """Each encoding and delimiter is detected and the table read back unchanged."""
    table = named(settings, gdp)
    path = tmp_path / "gdp.txt"
    table[["geo", "NAME_LATN", "unit", "time", "value", "flag"]].to_csv(
        path, sep=sep, index=False, encoding=encoding
    )
    layout, kept, validator = validate(path, known)
    assert (layout.encoding, layout.delimiter, layout.decimal) == (encoding, sep, ".")
    assert validator.report.ok
    assert_same(kept, expected(table))


# -- wide tables ------------------------------------------------------------------------------


def test_wide_by_year(gdp: pd.DataFrame, known: set[str], tmp_path: Path) -> None:
    """``geo,2000,2001,...``: one value per year column; empty cells are missing values."""
    eur = gdp[gdp["unit"] == "EUR_HAB"]
    wide = eur.pivot(index="geo", columns="time", values="value")
    path = tmp_path / "wide.csv"
    wide.reset_index().to_csv(path, index=False)
    layout, raw = read(path, indicator="EUR_HAB")
    assert layout.format == "wide" and [c for c, _, _ in layout.wide] == [
        str(y) for y in wide.columns
    ]
    line = {g: i + 2 for i, g in enumerate(wide.index)}
    assert raw["row"].tolist() == [line[g] for g in raw["geo"]]
    _, kept, validator = validate(path, known, indicator="EUR_HAB")
    assert validator.report.ok
    reference = full_grid(eur).assign(flag=None)
    assert_same(kept, expected(reference))
    assert validator.summary["rows_missing"] == int(wide.isna().sum().sum()) > 0


def test_wide_by_indicator(gdp: pd.DataFrame, known: set[str], tmp_path: Path) -> None:
    """``geo,time,EUR_HAB,MIO_EUR``: each numeric column is an indicator."""
    wide = gdp.pivot(index=["geo", "time"], columns="unit", values="value").reset_index()
    path = tmp_path / "by_indicator.csv"
    wide.to_csv(path, index=False)
    layout, kept, validator = validate(path, known)
    assert [c for c, _, _ in layout.wide] == UNITS
    assert validator.report.ok
    reference = full_grid(gdp).assign(flag=None)
    reference = reference[
        reference.set_index(["geo", "time"]).index.isin(wide.set_index(["geo", "time"]).index)
    ]
    assert_same(kept, expected(reference))


def test_parquet_tidy_and_wide(gdp: pd.DataFrame, known: set[str], tmp_path: Path) -> None:
    """Parquet stores numbers: values come as floats, rows as 1-based record numbers."""
    tidy = tmp_path / "tidy.parquet"
    gdp[["unit", "geo", "time", "value", "flag"]].to_parquet(tidy)
    layout, raw = read(tidy)
    assert layout.format == "parquet" and not layout.wide
    assert raw["row"].tolist() == list(range(1, len(gdp) + 1))
    np.testing.assert_array_equal(raw["value"].to_numpy(dtype=float), gdp["value"].to_numpy())
    _, kept, validator = validate(tidy, known)
    assert validator.report.ok
    assert_same(kept, expected(gdp))
    wide = tmp_path / "wide.parquet"
    eur = gdp[gdp["unit"] == "EUR_HAB"]
    pivot = eur.pivot(index="geo", columns="time", values="value")
    pivot.columns = [str(c) for c in pivot.columns]
    pivot.reset_index().to_parquet(wide)
    layout, kept, validator = validate(wide, known, indicator="EUR_HAB")
    assert len(layout.wide) == pivot.shape[1] and validator.report.ok
    assert_same(kept, expected(full_grid(eur).assign(flag=None)))


# -- office workbooks -------------------------------------------------------------------------


def workbook(settings: Settings, gdp: pd.DataFrame, path: Path) -> dict[str, int]:
    """A workbook as offices make them; returns the spreadsheet row of each region.

    Sheet "GDP": a merged title row, then "Region" (the names) and "NUTS code" merged over
    two header rows, and a merged "Year" cell above the year columns. Sheet "tidy": one row
    per year, the region code merged down over its years.
    """
    eur = gdp[gdp["unit"] == "EUR_HAB"]
    wide = eur.pivot(index="geo", columns="time", values="value")
    names = regions(settings, 3)["NAME_LATN"]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "GDP"
    last = 2 + wide.shape[1]
    ws.append(["Gross domestic product per inhabitant, EUR (Eurostat nama_10r_3gdp)"])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=last)
    ws.append(["Region", "NUTS code", "Year"])  # a name column first, named like a code one
    ws.merge_cells("A2:A3")
    ws.merge_cells("B2:B3")
    ws.merge_cells(start_row=2, start_column=3, end_row=2, end_column=last)
    ws.append([None, None, *[int(y) for y in wide.columns]])
    rows = {}
    for geo, values in wide.iterrows():
        ws.append([names.get(geo), geo, *[None if pd.isna(v) else float(v) for v in values]])
        rows[geo] = ws.max_row
    tidy = wb.create_sheet("tidy")
    tidy.append(["nuts_id", "year", "value", "flag"])
    for geo, group in eur.groupby("geo"):
        first = tidy.max_row + 1
        for i, (year, value, flag) in enumerate(
            zip(group["time"], group["value"], group["flag"], strict=True)
        ):
            tidy.append(
                [
                    geo if i == 0 else None,
                    int(year),
                    float(value),
                    flag if isinstance(flag, str) else None,
                ]
            )
        tidy.merge_cells(start_row=first, start_column=1, end_row=tidy.max_row, end_column=1)
    wb.save(path)
    return rows


def test_xlsx_merged_title_and_header(
    settings: Settings, gdp: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    """The real header row is found below the title; merged cells name the year columns."""
    path = tmp_path / "gdp.xlsx"
    rows = workbook(settings, gdp, path)
    layout, raw = read(path, indicator="EUR_HAB")
    assert (layout.format, layout.sheet, layout.header_rows) == ("xlsx", "GDP", 3)
    assert layout.columns["geo"] == "NUTS code"
    eur = gdp[gdp["unit"] == "EUR_HAB"]
    assert [c for c, _, _ in layout.wide] == [str(y) for y in sorted(eur["time"].unique())]
    assert raw["row"].tolist() == [rows[g] for g in raw["geo"]]
    _, kept, validator = validate(path, known, indicator="EUR_HAB")
    assert validator.report.ok
    assert_same(kept, expected(full_grid(eur).assign(flag=None)))


@pytest.mark.parametrize("sheet", ["tidy", 1], ids=["by-name", "by-index"])
def test_xlsx_tidy_sheet_with_merged_codes(
    settings: Settings, gdp: pd.DataFrame, known: set[str], tmp_path: Path, sheet: str | int
) -> None:
    """A region code merged down over its years applies to every row of the range."""
    path = tmp_path / "gdp.xlsx"
    workbook(settings, gdp, path)
    layout, kept, validator = validate(path, known, sheet=sheet, indicator="EUR_HAB")
    assert layout.sheet == "tidy" and not layout.wide
    assert validator.report.ok, validator.report.problems[:3]
    eur = gdp[gdp["unit"] == "EUR_HAB"]
    assert_same(kept, expected(eur.assign(indicator="EUR_HAB"), "indicator"))


def test_unknown_sheet_names_the_sheets(
    settings: Settings, gdp: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "gdp.xlsx"
    workbook(settings, gdp, path)
    with pytest.raises(IngestError) as err:
        sniff(path, ReadOptions(sheet="Tabelle1"))
    (problem,) = err.value.problems
    assert problem["rule"] == "unknown-sheet" and "'GDP', 'tidy'" in problem["reason"]


# -- streaming --------------------------------------------------------------------------------

Writer = Callable[[pd.DataFrame, Path], Path]


def csv_writer(frame: pd.DataFrame, path: Path) -> Path:
    frame[["unit", "geo", "time", "value", "flag"]].to_csv(path, index=False)
    return path


def tsv_writer(frame: pd.DataFrame, path: Path) -> Path:
    write_tsv(frame, path, pd.Series(False, index=frame.index))
    return path


def xlsx_writer(frame: pd.DataFrame, path: Path) -> Path:
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        frame[["unit", "geo", "time", "value", "flag"]].to_excel(writer, index=False)
    return path


@pytest.mark.parametrize(
    "writer", [csv_writer, tsv_writer, xlsx_writer], ids=["csv", "tsv", "xlsx"]
)
def test_chunking_invariance(
    gdp: pd.DataFrame, known: set[str], tmp_path: Path, writer: Writer
) -> None:
    """Chunks of 7 rows and the default give the same rows, report and content hash."""
    table = gdp[gdp["geo"].str.startswith("SI")].copy()
    table.loc[table.index[5], "value"] = np.inf  # a problem, reported identically
    path = writer(table, tmp_path / f"gdp.{writer.__name__[:4]}")
    _, small, a = validate(path, known, chunk_rows=7)
    _, large, b = validate(path, known)
    pd.testing.assert_frame_equal(small, large)
    assert a.content_hash == b.content_hash
    assert a.report.problems == b.report.problems and a.report.problems
    assert a.summary == b.summary


def test_content_hash_ignores_order_and_format(
    gdp: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    """The same observations in another order or format hash alike; one changed value does not."""
    a = validate(csv_writer(gdp, tmp_path / "a.csv"), known)[2].content_hash
    shuffled = gdp.sample(frac=1.0, random_state=7)
    b = validate(csv_writer(shuffled, tmp_path / "b.csv"), known)[2].content_hash
    gdp[["unit", "geo", "time", "value", "flag"]].to_parquet(tmp_path / "c.parquet")
    c = validate(tmp_path / "c.parquet", known)[2].content_hash
    changed = gdp.copy()
    changed.loc[changed.index[0], "value"] += 1
    d = validate(csv_writer(changed, tmp_path / "d.csv"), known)[2].content_hash
    assert a == b == c != d


def test_line_numbers_survive_blank_and_malformed_lines(
    gdp: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    """Blank lines are skipped, a malformed line is reported, later rows keep their line."""
    lines = csv_writer(gdp.head(40), tmp_path / "x.csv").read_text().splitlines()
    lines.insert(5, "")  # line 6 blank
    lines.insert(10, "EUR_HAB,AT111,2001")  # line 11: too few fields
    lines[30] = lines[30].rsplit(",", 2)[0] + ",n/a," + lines[30].rsplit(",", 1)[1]  # line 31
    path = tmp_path / "x.csv"
    path.write_text("\n".join(lines) + "\n")
    layout = sniff(path)
    validator = Validator(str(path), known, columns=layout.columns)
    for chunk in read_chunks(path, layout, ReadOptions(chunk_rows=4), report=validator.report):
        validator.check(chunk)
    report = validator.finish()
    found = {(p["rule"], p["row"], p["value"]) for p in report.problems}
    assert found == {("malformed-row", 11, "EUR_HAB,AT111,2001"), ("non-numeric", 31, "n/a")}
    assert validator.summary["rows_kept"] == 40 - 1
    with pytest.raises(IngestError) as err:  # without a report, the malformed line raises
        list(read_chunks(path, layout))
    assert [p["row"] for p in err.value.problems] == [11]


def test_streams_without_loading_the_file(gdp: pd.DataFrame, tmp_path: Path) -> None:
    """read_chunks is lazy: the first chunk arrives before the rest of the file is parsed."""
    path = csv_writer(gdp, tmp_path / "gdp.csv")
    layout = sniff(path)
    chunks = read_chunks(path, layout, ReadOptions(chunk_rows=100))
    first = next(chunks)
    assert len(first) == 100 and first["row"].tolist() == list(range(2, 102))
    chunks.close()


def test_parquet_nan_is_a_value_null_is_missing(
    gdp: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    """In Parquet, a stored NaN is a problem; a null is a missing value."""
    table = pa.table(
        {
            "geo": pa.array(gdp["geo"].head(3).tolist()),
            "time": pa.array(gdp["time"].head(3).astype(int).tolist()),
            "value": pa.array([float("nan"), None, float(gdp["value"].iloc[2])], pa.float64()),
        }
    )
    path = tmp_path / "nan.parquet"
    pq.write_table(table, path)
    _, kept, validator = validate(path, known, indicator="EUR_HAB")
    problems = validator.report.problems
    assert [(p["rule"], p["row"]) for p in problems] == [("nan-value", 1)]
    assert kept["geo"].tolist() == gdp["geo"].iloc[1:3].tolist()
    assert np.isnan(kept["value"].iloc[0]) and kept["value"].iloc[1] == gdp["value"].iloc[2]


def test_xlsx_merged_group_headers_name_indicators(
    gdp: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    """Merged group cells over repeated year columns (EUR_HAB 2000..., MIO_EUR 2000...)."""
    wide = gdp.pivot(index="geo", columns=["unit", "time"], values="value")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["GDP of the NUTS 3 regions"])
    ws.append(["NUTS_ID"])
    ws.append([None])
    column = 2
    for unit in UNITS:
        years = [int(y) for u, y in wide.columns if u == unit]
        ws.cell(row=2, column=column, value=unit)
        ws.merge_cells(
            start_row=2, start_column=column, end_row=2, end_column=column + len(years) - 1
        )
        for k, year in enumerate(years):
            ws.cell(row=3, column=column + k, value=year)
        column += len(years)
    ws.merge_cells("A2:A3")
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=column - 1)
    for geo, values in wide.iterrows():
        ws.append([geo, *[None if pd.isna(v) else float(v) for v in values]])
    path = tmp_path / "groups.xlsx"
    wb.save(path)
    layout, kept, validator = validate(path, known)
    assert layout.header_rows == 3 and {i for _, i, _ in layout.wide} == set(UNITS)
    assert validator.report.ok
    assert_same(kept, expected(full_grid(gdp).assign(flag=None)))


@pytest.mark.parametrize("forced", ["tidy", "parquet"])
def test_forced_format_keeps_the_files_reader(
    gdp: pd.DataFrame, known: set[str], tmp_path: Path, forced: str
) -> None:
    """Forcing a layout (tidy) or the format itself reads a Parquet file as Parquet."""
    path = tmp_path / "gdp.bin"
    gdp[["unit", "geo", "time", "value", "flag"]].to_parquet(path)
    layout, kept, validator = validate(path, known, format=forced)
    assert layout.format == "parquet" and validator.report.ok
    assert_same(kept, expected(gdp))


def test_forced_eurostat_tsv_still_unzips(
    gdp: pd.DataFrame, known: set[str], tmp_path: Path
) -> None:
    plain = tmp_path / "t.tsv"
    write_tsv(gdp, plain, pd.Series(False, index=gdp.index))
    packed = tmp_path / "t.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    layout, kept, _ = validate(packed, known, format="eurostat-tsv")
    assert (layout.format, layout.compression) == ("eurostat-tsv", "gzip")
    assert_same(kept, expected(full_grid(gdp)))
