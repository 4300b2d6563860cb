"""The tidy CSV of the ingestion case: seeded, written in blocks, reused across runs.

The table has the columns ``indicator,geo,time,value,flag,unit``. Its rows are every
(indicator, year, NUTS-3 region) of ``indicators`` synthetic indicators, ``years``
consecutive years and the 1,514 NUTS-3 regions of the boundary layer in use
(``geo.boundaries.load_boundaries``), in that order, so no key repeats and the real
validator accepts every row. One indicator (its years × regions) is one block, generated
from its own seed: any block can be regenerated alone to check stored values.

Values are positive and skewed (log-normal around a level of 3 to 30,000, a fixed
region effect and a trend over the years), written with two decimals. About 2 % carry
the Eurostat flag ``p``, 1 % ``e`` and 0.5 % ``b``; 1 % are missing as ``:`` and 0.3 %
as an empty cell. Every indicator has one unit.

The file and a sidecar JSON with its parameters go to ``OUT/ingest/``
(``bench/out/`` is git-ignored). A file whose sidecar matches the parameters, with the
recorded size, is reused; otherwise it is rewritten (to a temporary name, then renamed).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

GENERATOR = 2  # bump when the file or the sidecar for given parameters changes
COLUMNS = ("indicator", "geo", "time", "value", "flag", "unit")
UNITS = ("EUR_HAB", "PPS_HAB", "THS_PER", "PC_ACT", "MIO_EUR", "NR", "PER_KM2", "I15")
FLAGS = (("p", 0.02), ("e", 0.01), ("b", 0.005))  # Eurostat flag, share of the rows
MISSING_COLON, MISSING_EMPTY = 0.01, 0.003  # shares of ":" and of empty value cells


@dataclass(frozen=True)
class Spec:
    """What the file holds; equal specs give byte-identical files."""

    indicators: int
    years: int
    first_year: int = 1985
    seed: int = 20_240_501

    @property
    def name(self) -> str:
        return f"tidy-{self.indicators}x{self.years}y-seed{self.seed}"


FULL_SPEC = Spec(indicators=165, years=40)  # 165 x 40 x 1,514 = 9,992,400 rows
QUICK_SPEC = Spec(indicators=6, years=10)  # 90,840 rows, to check the harness


@dataclass(frozen=True)
class Generated:
    """The file on disk and what it holds (the sidecar's content)."""

    path: Path
    rows: int
    bytes: int
    missing: int
    flagged: int
    spec: Spec
    regions: tuple[str, ...]  # the NUTS-3 codes, in file order within a year
    seconds: float = 0.0  # time spent writing it in this run (0: reused)

    @property
    def indicator_codes(self) -> list[str]:
        return [indicator_code(k) for k in range(self.spec.indicators)]


def indicator_code(k: int) -> str:
    return f"indicator_{k:03d}"


def nuts3_codes() -> list[str]:
    """The NUTS-3 codes of the boundary layer in use, sorted (``Settings()``: the mirror)."""
    from geo.boundaries import load_boundaries
    from geo.settings import Settings

    boundaries = load_boundaries(Settings(allow_download=False))
    level = boundaries["LEVL_CODE"].astype(int) == 3
    return sorted(str(code) for code in boundaries.index[level])


def _region_effect(spec: Spec, n: int) -> np.ndarray:
    """A fixed standard-normal effect per region, shared by every indicator."""
    return np.random.default_rng([spec.seed, 0xFFFF]).standard_normal(n)


@dataclass(frozen=True)
class Block:
    """The rows of one indicator (year-major, then region) and their expected content."""

    indicator: str
    unit: str
    geo: np.ndarray  # str objects
    time: np.ndarray  # int
    text: pa.Array  # the value cells as written
    value: np.ndarray  # float64 as stored (NaN for missing)
    flag: np.ndarray  # "" or the flag


def block(spec: Spec, regions: list[str], k: int) -> Block:
    """Indicator ``k``: generated from the seed ``(spec.seed, k)`` alone."""
    rng = np.random.default_rng([spec.seed, k])
    n_reg, n = len(regions), len(regions) * spec.years
    level = 10.0 ** rng.uniform(0.5, 4.5)
    spread, trend = rng.uniform(0.3, 1.0), rng.normal(0.01, 0.02)
    years = np.repeat(np.arange(spec.years), n_reg)
    field = 0.8 * np.tile(_region_effect(spec, n_reg), spec.years) + 0.6 * rng.standard_normal(n)
    cents = np.rint(100.0 * level * np.exp(spread * field + trend * years)).astype(np.int64)
    draw = rng.random(n)
    flag = np.full(n, "", dtype=object)
    lower = 0.0
    for letter, share in FLAGS:
        flag[(draw >= lower) & (draw < lower + share)] = letter
        lower += share
    gap = rng.random(n)
    colon = gap < MISSING_COLON
    empty = (gap >= MISSING_COLON) & (gap < MISSING_COLON + MISSING_EMPTY)
    whole = pc.cast(pa.array(cents // 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0")
    text = pc.binary_join_element_wise(whole, frac, ".")
    text = pc.if_else(pa.array(colon), ":", text)
    text = pc.if_else(pa.array(empty), "", text)
    value = cents / 100.0  # the nearest double to the decimal written, as a parser reads it
    value[colon | empty] = np.nan
    return Block(
        indicator=indicator_code(k),
        unit=UNITS[k % len(UNITS)],
        geo=np.tile(np.asarray(regions, dtype=object), spec.years),
        time=spec.first_year + years,
        text=text,
        value=value,
        flag=flag,
    )


def _table(b: Block) -> pa.Table:
    n = len(b.value)
    return pa.table(
        {
            "indicator": pa.array([b.indicator] * n, pa.string()),
            "geo": pa.array(b.geo, pa.string()),
            "time": pa.array(b.time, pa.int32()),
            "value": b.text,
            "flag": pa.array(b.flag, pa.string()),
            "unit": pa.array([b.unit] * n, pa.string()),
        }
    )


def _blocks(spec: Spec, regions: list[str]) -> Iterator[Block]:
    for k in range(spec.indicators):
        yield block(spec, regions, k)


def write(spec: Spec, regions: list[str], path: Path) -> Generated:
    """Write the CSV block by block (memory: one indicator) and its sidecar."""
    import pyarrow.csv as pcsv

    started = time.perf_counter()
    tmp = path.with_suffix(".csv.part")
    rows = missing = flagged = 0
    options = pcsv.WriteOptions(include_header=False, quoting_style="none")
    with open(tmp, "wb") as fh:
        fh.write((",".join(COLUMNS) + "\n").encode())
        for b in _blocks(spec, regions):
            pcsv.write_csv(_table(b), fh, options)
            rows += len(b.value)
            missing += int(np.isnan(b.value).sum())
            flagged += int((b.flag != "").sum())
    os.replace(tmp, path)
    generated = Generated(
        path=path,
        rows=rows,
        bytes=path.stat().st_size,
        missing=missing,
        flagged=flagged,
        spec=spec,
        regions=tuple(regions),
        seconds=time.perf_counter() - started,
    )
    _sidecar(path).write_text(json.dumps(describe(generated)))
    return generated


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def describe(g: Generated) -> dict[str, Any]:
    """The sidecar's content (JSON-able): the parameters and what the file holds."""
    fields = {k: v for k, v in asdict(g).items() if k not in ("path", "spec", "seconds")}
    return {"generator": GENERATOR, "spec": asdict(g.spec), **fields, "regions": list(g.regions)}


def path_of(spec: Spec, out: Path) -> Path:
    return out / "ingest" / f"{spec.name}.csv"


def load(spec: Spec, out: Path) -> Generated | None:
    """The existing file of ``spec`` when its sidecar matches and its size is the recorded
    one; ``None`` otherwise. Imports nothing of ``geo`` (the pandas side uses it)."""
    path = path_of(spec, out)
    try:
        meta = json.loads(_sidecar(path).read_text())
        size = path.stat().st_size
    except (OSError, ValueError):
        return None
    if meta.get("generator") != GENERATOR or meta.get("spec") != asdict(spec):
        return None
    if meta.get("bytes") != size:
        return None
    keys = ("rows", "bytes", "missing", "flagged")
    return Generated(path, spec=spec, regions=tuple(meta["regions"]), **{k: meta[k] for k in keys})


def ensure(spec: Spec, out: Path) -> Generated:
    """The CSV of ``spec`` under ``out/ingest``: reused when its sidecar matches the
    parameters and the NUTS-3 codes of the layer in use, else written."""
    regions = nuts3_codes()
    found = load(spec, out)
    if found is not None and list(found.regions) == regions:
        return found
    path = path_of(spec, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write(spec, regions, path)


def expected(spec: Spec, regions: list[str], k: int, year: int) -> pd.DataFrame:
    """The rows of indicator ``k`` in ``year`` as stored: ``geo, value, flag`` by region."""
    b = block(spec, regions, k)
    at = b.time == year
    return pd.DataFrame({"geo": b.geo[at], "value": b.value[at], "flag": b.flag[at]})


if __name__ == "__main__":  # python -m bench.ingest_data [--quick]: write (or reuse) the file
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.ingest_data", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the small harness-check file")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args()
    done = ensure(QUICK_SPEC if args.quick else FULL_SPEC, args.out)
    record = {k: v for k, v in describe(done).items() if k != "regions"}
    record |= {"n_regions": len(done.regions), "path": str(done.path), "seconds": done.seconds}
    print(json.dumps(record))
