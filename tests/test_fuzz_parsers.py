"""Fuzzing the upload parsers with mutated real files: whatever the bytes, an upload either
succeeds or is refused with a report naming the file, never with another error or a hang.

Reference: the contract of :func:`geo.uploads.upload` (a refusal is a
:class:`geo.errors.AlpClustersError`, answered as a 4xx problem) and, over HTTP, the
service's ``POST /datasets/{id}/validate`` answering 4xx ``application/problem+json``, never
5xx. The seed files are written in code from the real Eurostat ``nama_10r_3gdp`` table of the
mirror (Austrian NUTS 3 GDP per head), one per upload format: tidy CSV, wide CSV (a column
per year), XLSX, Eurostat TSV as downloaded, and SDMX-CSV. Hypothesis mutates them:
truncation, random bytes inserted or overwritten, other encodings (Latin-1, UTF-16, UTF-32,
byte-order marks), huge numbers, NaN and infinity, spreadsheet formulas, very long lines and
cells, thousands of columns, compression (gzip, gzip of gzip) and archives (an XLSX inside a
zip, a zip posing as an XLSX, an XLSX holding another archive). Derandomized: every CI run
tries the same files.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from geo.errors import AlpClustersError
from geo.settings import Settings
from geo.store import Store
from geo.uploads import UploadRequest, upload
from services.forms import read_options
from tests.auth import headers
from tests.test_formats import sdmx, write_tsv

YEARS = range(2012, 2022)
EXAMPLES = 40  # per format
HTTP_EXAMPLES = 12  # per format, through POST /datasets/{id}/validate
DEADLINE = timedelta(seconds=30)  # one upload of a few hundred rows takes well under 1 s
FORMULAS = ("=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1+1)*cmd|' /C calc'!A0", "=1/0")
NUMBERS = ("1e400", "-1e400", "9" * 400, "NaN", "nan", "inf", "-Infinity", "1e-400", "0x1F")
ENCODINGS = ("latin-1", "cp1252", "utf-16", "utf-16-be", "utf-32", "utf-8-sig", "utf-7")
BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE)


@pytest.fixture(scope="module")
def table(settings: Settings) -> pd.DataFrame:
    """Real GDP per head of the Austrian NUTS 3 regions, 2012-2021, with Eurostat's flags."""
    from geo.indicators import load_eurostat

    frame, _ = load_eurostat(settings, "nama_10r_3gdp")
    keep = (
        frame["geo"].str.startswith("AT")
        & (frame["nuts_level"] == 3)
        & (frame["unit"] == "EUR_HAB")
        & frame["time"].isin(YEARS)
        & ~frame["geo"].str.endswith("ZZZ")
    )
    out = frame.loc[keep].sort_values(["geo", "time"]).reset_index(drop=True)
    assert len(out) > 300
    return out


def tidy_csv(table: pd.DataFrame, folder: Path) -> bytes:
    return table[["geo", "time", "value", "flag"]].to_csv(index=False).encode()


def wide_csv(table: pd.DataFrame, folder: Path) -> bytes:
    wide = table.pivot(index="geo", columns="time", values="value")
    wide.columns = [str(c) for c in wide.columns]
    return wide.reset_index().to_csv(index=False).encode()


def xlsx(table: pd.DataFrame, folder: Path) -> bytes:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        table[["geo", "time", "value", "flag"]].to_excel(writer, index=False)
    return buffer.getvalue()


def eurostat_tsv(table: pd.DataFrame, folder: Path) -> bytes:
    path = folder / "seed.tsv"
    write_tsv(table, path, pd.Series(False, index=table.index))
    return path.read_bytes()


def sdmx_csv(table: pd.DataFrame, folder: Path) -> bytes:
    return sdmx(table).to_csv(index=False).encode()


SEEDS: dict[str, tuple[Callable[[pd.DataFrame, Path], bytes], str]] = {
    "tidy-csv": (tidy_csv, "gdp.csv"),
    "wide-csv": (wide_csv, "gdp_wide.csv"),
    "xlsx": (xlsx, "gdp.xlsx"),
    "eurostat-tsv": (eurostat_tsv, "nama_10r_3gdp.tsv"),
    "sdmx-csv": (sdmx_csv, "nama_10r_3gdp_sdmx.csv"),
}


@pytest.fixture(scope="module")
def seeds(table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    return {kind: write(table, folder) for kind, (write, _) in SEEDS.items()}


# -- mutations ----------------------------------------------------------------------------------

Mutation = Callable[[bytes], bytes]


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _cells(data: bytes, replace: Callable[[list[str]], list[str]]) -> bytes:
    """The text's lines split at , ; or tab, cells replaced, joined again."""
    text = data.decode("utf-8", errors="replace")
    sep = "\t" if text.count("\t") > text.count(",") else ","
    lines = text.split("\n")
    return "\n".join(sep.join(replace(line.split(sep))) for line in lines).encode()


def _one_line(data: bytes, where: float, replace: Callable[[list[str]], list[str]]) -> bytes:
    """The text with the cells of one line (at fraction ``where`` of the lines) replaced."""
    lines = data.split(b"\n")
    i = int((len(lines) - 1) * where)
    lines[i] = _cells(lines[i], replace)
    return b"\n".join(lines)


def _xlsx_cells(data: bytes, value: object, every: int) -> bytes:
    """An XLSX with every ``every``-th cell of its value and region columns replaced."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data))
    except Exception:  # an earlier mutation broke the workbook: nothing to replace
        return data
    sheet = book.active
    if sheet is None:
        return data
    for i, row in enumerate(sheet.iter_rows(min_row=2)):
        if i % every == 0:
            row[2 if i % 2 else 0].value = value  # type: ignore[assignment]
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@st.composite
def mutation(draw: st.DrawFn, kind: str) -> tuple[str, Mutation]:
    """One named mutation of a seed file of ``kind``."""
    where = draw(st.floats(0, 1))
    junk = draw(st.binary(min_size=1, max_size=64))
    every = draw(st.integers(1, 40))
    word = draw(st.sampled_from(FORMULAS + NUMBERS))
    encoding = draw(st.sampled_from(ENCODINGS))
    bom = draw(st.sampled_from(BOMS))
    long = draw(st.sampled_from((5_000, 200_000)))  # 200,000: past csv's field limit

    def at(data: bytes) -> int:
        return int(len(data) * where)

    def every_nth(cells: list[str]) -> list[str]:
        return [word if i % every == 0 else c for i, c in enumerate(cells)]

    text_or_book: dict[str, Mutation] = {
        "cells": (lambda d: _xlsx_cells(d, word, every))
        if kind == "xlsx"
        else (lambda d: _cells(d, every_nth)),
        "long-cell": (lambda d: _xlsx_cells(d, "A" * long, every))
        if kind == "xlsx"
        else (lambda d: _one_line(d, where, lambda c: [*c[:-1], "A" * long])),
    }
    mutations: dict[str, Mutation] = {
        "truncate": lambda d: d[: at(d)],
        "insert": lambda d: d[: at(d)] + junk + d[at(d) :],
        "overwrite": lambda d: d[: at(d)] + junk + d[at(d) + len(junk) :],
        "encoding": lambda d: d.decode("utf-8", errors="replace").encode(
            encoding, errors="replace"
        ),
        "bom": lambda d: bom + d,
        "long-line": lambda d: d[: at(d)] + b"x" * long + d[at(d) :],
        "many-columns": lambda d: (
            _cells(d, lambda c: c + [str(i) for i in range(20_000)]) if kind != "xlsx" else d
        ),
        "gzip": gzip.compress,
        "gzip-of-gzip": lambda d: gzip.compress(gzip.compress(d)),
        "zip": lambda d: _zip({"table" + (".xlsx" if kind == "xlsx" else ".csv"): d}),
        "xlsx-holding-zip": lambda d: _zip(
            {"[Content_Types].xml": b"<Types/>", "xl/nested.zip": _zip({"t.csv": d})}
        ),
        "empty": lambda d: b"",
        **text_or_book,
    }
    name = draw(st.sampled_from(sorted(mutations)))
    return name, mutations[name]


def mutated(kind: str, seed: bytes) -> st.SearchStrategy[tuple[list[str], bytes]]:
    """The seed file of ``kind`` with one to three mutations applied in turn."""

    def apply(chosen: list[tuple[str, Mutation]]) -> tuple[list[str], bytes]:
        data = seed
        for _, change in chosen:
            data = change(data)
        return [name for name, _ in chosen], data

    return st.lists(mutation(kind), min_size=1, max_size=3).map(apply)


# -- the property -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parsing(
    settings: Settings, demo_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, Store]:
    """Settings on a store of this module (parsing in this process: tracebacks are direct)."""
    tmp = tmp_path_factory.mktemp("fuzz-parsers")
    local = settings.model_copy(
        update={"database_url": f"sqlite:///{tmp / 'store.db'}", "upload_dir": tmp / "uploads"}
    )
    if "parse_isolated" in Settings.model_fields:
        local = local.model_copy(update={"parse_isolated": False})
    store = Store(local.database_url)
    from geo.boundaries import load_boundaries

    load_boundaries(local)  # once, before the first example's deadline
    return local, store


def attempt(settings: Settings, store: Store, path: Path, name: str, dry_run: bool) -> None:
    """Upload ``path`` as ``name``: a success or a refusal naming the file, nothing else."""
    request = UploadRequest(
        dataset_id="fuzzed", title="Fuzzed", file_name=name, read=read_options(settings)
    )
    try:
        upload(settings, store, path, request, dry_run=dry_run)
    except AlpClustersError as exc:
        assert name in str(exc), f"the refusal does not name the file: {exc}"


KINDS = sorted(SEEDS)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("kind", KINDS)
def test_mutated_files_are_stored_or_refused(
    parsing: tuple[Settings, Store], seeds: dict[str, bytes], kind: str, tmp_path: Path
) -> None:
    settings, store = parsing
    name = SEEDS[kind][1]

    @hypothesis_settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=DEADLINE,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(file=mutated(kind, seeds[kind]), dry_run=st.booleans())
    def check(file: tuple[list[str], bytes], dry_run: bool) -> None:
        path = tmp_path / f"upload-{len(file[1])}{Path(name).suffix}"
        path.write_bytes(file[1])
        try:
            attempt(settings, store, path, name, dry_run)
        finally:
            path.unlink(missing_ok=True)

    check()


@pytest.fixture(scope="module")
def service(
    settings: Settings, demo_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The service on a store of this module, sending the admin key (rate limit off)."""
    from services.app import create_app

    tmp = tmp_path_factory.mktemp("fuzz-parsers-http")
    update: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp / 'store.db'}",
        "upload_dir": tmp / "uploads",
    }
    if "rate_limit_per_minute" in Settings.model_fields:
        update["rate_limit_per_minute"] = 0
    local = settings.model_copy(update=update)
    with TestClient(create_app(local), headers=headers(local)) as client:
        yield client


@pytest.mark.timeout(150)
@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_validate_answers_mutated_files_with_a_report_or_a_problem(
    service: TestClient, seeds: dict[str, bytes], kind: str
) -> None:
    name = SEEDS[kind][1]

    @hypothesis_settings(
        max_examples=HTTP_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=DEADLINE,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(file=mutated(kind, seeds[kind]))
    def check(file: tuple[list[str], bytes]) -> None:
        answer = service.post(
            "/datasets/fuzzed/validate", files={"file": (name, file[1], "application/octet-stream")}
        )
        assert answer.status_code < 500, answer.text
        if answer.status_code >= 400:
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert name in answer.json()["detail"], answer.json()

    check()


# -- the parser bugs the fuzzing found (geo/formats/text.py), minimal reproductions -----------


def long_line(kind: str, seed: bytes) -> bytes:
    """B1: a line of 200,000 characters in the first lines the sniffer reads."""
    first, rest = seed.split(b"\n", 1)
    return first + b"\n" + b"x" * 200_000 + b"\n" + rest


def short_row_bad_utf8(kind: str, seed: bytes) -> bytes:
    """B2: a UTF-8 (BOM) file with one row short of cells that holds a byte invalid in UTF-8."""
    lines = seed.split(b"\n")
    cells = lines[5].split(b",")
    lines[5] = b",".join(cells[:2]) + b"\xb3"
    return codecs.BOM_UTF8 + b"\n".join(lines)


@pytest.mark.parametrize("kind", ["tidy-csv", "wide-csv", "sdmx-csv"])
def test_b1_a_very_long_line_is_refused(
    parsing: tuple[Settings, Store], seeds: dict[str, bytes], kind: str, tmp_path: Path
) -> None:
    settings, store = parsing
    name = SEEDS[kind][1]
    path = tmp_path / name
    path.write_bytes(long_line(kind, seeds[kind]))
    try:
        attempt(settings, store, path, name, dry_run=True)
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc}") from exc


@pytest.mark.parametrize("kind", ["tidy-csv", "wide-csv"])
def test_b2_a_short_row_with_invalid_utf8_is_reported(
    parsing: tuple[Settings, Store], seeds: dict[str, bytes], kind: str, tmp_path: Path
) -> None:
    settings, store = parsing
    name = SEEDS[kind][1]
    path = tmp_path / name
    path.write_bytes(short_row_bad_utf8(kind, seeds[kind]))
    try:
        attempt(settings, store, path, name, dry_run=True)
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc}") from exc
