"""Detecting a table file's layout: its kind from the first bytes, then per format."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pyarrow as pa

from geo.errors import InvalidParameterError
from geo.formats.columnar import _sniff_parquet
from geo.formats.options import FORMATS, MAGIC, Layout, ReadOptions, _refuse
from geo.formats.sheets import _sniff_xlsx
from geo.formats.text import _sniff_text


def sniff(path: Path, options: ReadOptions = ReadOptions()) -> Layout:  # noqa: B008
    """Detect the layout of a table file from its first bytes and rows.

    Parameters
    ----------
    path
        A CSV/TSV (optionally gzip-compressed), XLSX or Parquet file.
    options
        What not to detect.

    Returns
    -------
    Layout
        What :func:`read_chunks` needs to read the file.

    Raises
    ------
    IngestError
        When the file cannot be read as a table: missing, empty, too large, an unsupported
        format, no region column, no value column, or options naming absent columns.
    """
    path = Path(path)
    if options.format is not None and options.format not in FORMATS:
        raise InvalidParameterError(f"unknown format {options.format!r}; use one of {FORMATS}")
    kind = _check_file(path, options)
    if options.format in ("parquet", "xlsx"):
        kind = options.format
    elif options.format in ("eurostat-tsv", "sdmx-csv") and kind != "gzip":
        kind = "text"
    try:
        if kind == "parquet":
            layout = _sniff_parquet(path, options)
        elif kind == "xlsx":
            layout = _sniff_xlsx(path, options)
        else:
            layout = _sniff_text(path, options, kind == "gzip")
    except (pa.ArrowInvalid, OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise _refuse(path, "unreadable-file", f"cannot read the file: {exc}") from exc
    _check_columns(path, layout, options)
    return layout


def _check_file(path: Path, options: ReadOptions) -> str:
    """The file's kind from its first bytes: parquet, xlsx, gzip or text."""
    if not path.is_file():
        raise _refuse(path, "no-such-file", "no such file")
    size = path.stat().st_size
    if options.max_bytes is not None and size > options.max_bytes:
        reason = f"the file has {size} bytes; at most {options.max_bytes} are accepted"
        raise _refuse(path, "file-too-large", reason, size)
    if size == 0:
        raise _refuse(path, "empty-file", "the file is empty")
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        reason = "an old Excel .xls workbook: save it as .xlsx or CSV"
        raise _refuse(path, "unsupported-format", reason, path.suffix)
    return next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), "text")


def _check_columns(path: Path, layout: Layout, options: ReadOptions) -> None:
    known = set(layout.names) | set(layout.packed)
    for name in [*options.where, *(options.indicator_from or [])]:
        if name not in known:
            reason = f"no column {name!r}; the table has {sorted(known)}"
            raise _refuse(path, "unknown-column", reason, name)
