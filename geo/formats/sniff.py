"""Detecting a table file's layout: its kind from the first bytes, then per format."""

from __future__ import annotations

import codecs
import zipfile
import zlib
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
    if options.encoding is not None:
        try:
            codecs.lookup(options.encoding)
        except LookupError as exc:
            raise InvalidParameterError(f"unknown text encoding {options.encoding!r}") from exc
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
    except (pa.ArrowException, OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise _refuse(path, "unreadable-file", f"cannot read the file: {exc}") from exc
    _check_columns(path, layout, options)
    return layout


def _check_file(path: Path, options: ReadOptions) -> str:
    """The file's kind from its first bytes (parquet, xlsx, gzip or text), once its size,
    and an archive's unpacked size and members, are within the limits."""
    if not path.is_file():
        raise _refuse(path, "no-such-file", "no such file")
    size = path.stat().st_size
    if options.max_bytes is not None and size > options.max_bytes:
        reason = f"the file has {size} bytes; at most {options.max_bytes} are accepted"
        raise _refuse(path, "file-too-large", reason, size, limit=True)
    if size == 0:
        raise _refuse(path, "empty-file", "the file is empty")
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        reason = "an old Excel .xls workbook: save it as .xlsx or CSV"
        raise _refuse(path, "unsupported-format", reason, path.suffix)
    kind = next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), "text")
    if kind == "xlsx":
        _check_workbook(path, options.max_unpacked_bytes)
    elif kind == "gzip" and options.max_unpacked_bytes is not None:
        _check_gzip(path, options.max_unpacked_bytes)
    return kind


# Archives inside a workbook: refused (a sheet is XML; embedded archives serve no table).
NESTED = (".zip", ".xlsx", ".xlsm", ".xlsb", ".gz", ".7z", ".rar", ".jar", ".docx", ".bin")
MAX_MEMBERS = 10_000


def _check_workbook(path: Path, limit: int | None) -> None:
    """A ZIP that is an XLSX workbook, holds no other archive and unpacks to at most ``limit``
    bytes. The sizes are the archive's own; :mod:`zipfile` (which openpyxl reads with) never
    unpacks a member beyond its stated size, so a lying header cannot get past them."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse(path, "unreadable-file", f"cannot read the workbook: {exc}") from exc
    names = {m.filename for m in members}
    if "xl/workbook.xml" not in names:
        reason = "a ZIP archive but not an XLSX workbook (it has no xl/workbook.xml)"
        raise _refuse(path, "unsupported-format", reason, path.suffix)
    nested = sorted(n for n in names if n.lower().endswith(NESTED))
    if nested:
        shown = ", ".join(nested[:5])
        reason = f"the workbook holds other archives ({shown}); save the sheet alone"
        raise _refuse(path, "nested-archive", reason, nested[0])
    unpacked = sum(m.file_size for m in members)
    if len(members) > MAX_MEMBERS or (limit is not None and unpacked > limit):
        reason = (
            f"the workbook unpacks to {unpacked} bytes in {len(members)} parts; at most "
            f"{limit} bytes and {MAX_MEMBERS} parts are accepted"
        )
        raise _refuse(path, "unpacked-too-large", reason, unpacked, limit=True)


def _check_gzip(path: Path, limit: int) -> None:
    """A gzip file that unpacks to at most ``limit`` bytes (read through, nothing kept)."""
    import gzip

    unpacked = 0
    try:
        with gzip.open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                unpacked += len(block)
                if unpacked > limit:
                    reason = f"the file unpacks to more than {limit} bytes, the most accepted"
                    raise _refuse(path, "unpacked-too-large", reason, unpacked, limit=True)
    except (OSError, EOFError, zlib.error) as exc:
        raise _refuse(path, "unreadable-file", f"cannot unpack the file: {exc}") from exc


def _check_columns(path: Path, layout: Layout, options: ReadOptions) -> None:
    if options.max_columns is not None and len(layout.names) > options.max_columns:
        reason = (
            f"the table has {len(layout.names)} columns; at most {options.max_columns} are accepted"
        )
        raise _refuse(path, "too-many-columns", reason, len(layout.names), limit=True)
    known = set(layout.names) | set(layout.packed)
    for name in [*options.where, *(options.indicator_from or [])]:
        if name not in known:
            reason = f"no column {name!r}; the table has {sorted(known)}"
            raise _refuse(path, "unknown-column", reason, name)
