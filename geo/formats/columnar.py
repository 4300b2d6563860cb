"""Parquet files: sniffing the schema and a first batch, and streaming record batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from geo.formats.header import _classify, _detect_decimal, _find_header, _value_cells
from geo.formats.options import HEAD_ROWS, Batch, Layout, ReadOptions, _needed, _norm


def _sniff_parquet(path: Path, options: ReadOptions) -> Layout:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = list(pf.schema_arrow.names)
    first = next(pf.iter_batches(batch_size=HEAD_ROWS), None)
    sample = [list(r.values()) for r in first.to_pylist()] if first is not None else []
    header = [names]
    _find_header(path, header, header, set(), options)  # a region column is required
    sdmx = {"obs_value", "time_period"} <= {_norm(n) for n in names}
    names, roles, wide, dims = _classify(path, names, [""] * len(names), sample, options, sdmx)
    decimal = options.decimal or _detect_decimal(_value_cells(names, roles, wide, sample), None)
    return Layout("parquet", None, None, decimal, None, 0, roles, tuple(names), wide, dims)


def _parquet_batches(
    path: Path, layout: Layout, options: ReadOptions, batch_rows: int
) -> Iterator[Batch]:
    import pyarrow.parquet as pq

    needed = _needed(layout, options)
    record = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=needed):
        rows = np.arange(record + 1, record + 1 + batch.num_rows, dtype=np.int64)
        record += batch.num_rows
        yield {n: batch.column(n) for n in needed}, rows, {}
