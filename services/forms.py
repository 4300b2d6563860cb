"""The upload form: a file and how to read, check and describe it."""

from __future__ import annotations

import codecs
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, File, Form, UploadFile

from geo.errors import InvalidParameterError, TooLargeError
from geo.formats import FORMATS, ReadOptions
from geo.formats.options import DELIMITERS
from geo.uploads import UploadRequest
from services.dependencies import SettingsDep

_SLUG = re.compile(r"[^a-z0-9_]+")
_SUFFIX = re.compile(r"^(\.[a-z0-9]{1,8}){1,2}$")


def dataset_slug(name: str) -> str:
    """A dataset id from a name: lower case letters, digits and ``_``."""
    slug = _SLUG.sub("_", name.strip().lower()).strip("_")[:128]
    if not slug:
        raise InvalidParameterError(f"cannot make a dataset id of the name {name!r}")
    return slug


def _pairs(text: str | None, field: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (p.strip() for p in (text or "").split(","))):
        if "=" not in item:
            raise InvalidParameterError(f"{field}: {item!r} is not COLUMN=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _ints(text: str | None, field: str) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise InvalidParameterError(f"{field}: {text!r} is not a list of whole numbers") from exc


def _encoding(name: str | None) -> str | None:
    """A text encoding Python knows (``utf-8``, ``cp1252``, ...), or ``None``."""
    if not name:
        return None
    try:
        known = codecs.lookup(name)
    except (LookupError, ValueError):
        known = None
    if known is None or not getattr(known, "_is_text_encoding", True):
        raise InvalidParameterError(
            f"encoding {name!r} is not a text encoding; use utf-8, utf-8-sig or cp1252"
        )
    return name


def _one_of(value: str | None, field: str, allowed: dict[str, str]) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise InvalidParameterError(f"{field} {value!r} not understood; use one of {list(allowed)}")
    return allowed[value]


DELIMITER_NAMES = {d: d for d in DELIMITERS} | {"tab": "\t", "\\t": "\t"}
DECIMALS = {".": ".", ",": ","}
Text = Annotated[str | None, Form()]


def read_options(
    settings: SettingsDep,
    format: Annotated[
        str | None, Form(description=f"One of {list(FORMATS)}; default: detected.")
    ] = None,
    sheet: Annotated[str | None, Form(description="XLSX sheet name; default: the first.")] = None,
    encoding: Annotated[str | None, Form(description="utf-8, utf-8-sig or cp1252.")] = None,
    delimiter: Annotated[str | None, Form(description="',', ';' or tab.")] = None,
    decimal: Annotated[str | None, Form(description="'.' or ','.")] = None,
    indicator: Annotated[
        str | None, Form(description="Indicator code for a table that names none.")
    ] = None,
    where: Annotated[
        str | None, Form(description="Keep rows with COLUMN=VALUE[,COLUMN=VALUE...].")
    ] = None,
    indicator_from: Annotated[
        str | None, Form(description="Columns whose values name the indicator, e.g. unit.")
    ] = None,
) -> ReadOptions:
    """How to read the file; everything is detected unless given."""
    if format is not None and format not in FORMATS:
        raise InvalidParameterError(f"format {format!r} not understood; use one of {FORMATS}")
    return ReadOptions(
        format=format or None,
        sheet=sheet or None,
        encoding=_encoding(encoding),
        delimiter=_one_of(delimiter, "delimiter", DELIMITER_NAMES),
        decimal=_one_of(decimal, "decimal", DECIMALS),
        indicator=indicator or None,
        where=_pairs(where, "where"),
        indicator_from=[c.strip() for c in indicator_from.split(",")] if indicator_from else None,
        max_bytes=settings.max_upload_bytes,
        max_rows=settings.max_upload_rows,
        max_columns=settings.max_upload_columns,
        max_cell_chars=settings.max_cell_chars,
        max_unpacked_bytes=settings.max_unpacked_bytes,
    )


def upload_request(
    read: Annotated[ReadOptions, Depends(read_options)],
    file: Annotated[UploadFile, File(description="The table: CSV, TSV, XLSX or Parquet.")],
    name: Annotated[
        str | None, Form(description="Dataset name; a new version when it exists.")
    ] = None,
    description: Text = None,
    source: Text = None,
    licence: Text = None,
    uploader: Annotated[str | None, Form(description="Who uploads (provenance).")] = None,
    levels: Annotated[
        str | None, Form(description="Keep only these NUTS levels, e.g. 3 or 2,3.")
    ] = None,
    on_problem: Annotated[
        Literal["refuse", "skip"],
        Form(
            description="refuse: any problem refuses the file; skip: store the valid rows "
            "and list the problems as warnings."
        ),
    ] = "refuse",
) -> UploadRequest:
    """The upload's description; the dataset name defaults to the file's name."""
    file_name = Path(file.filename or "upload").name
    title = (name or Path(file_name).stem).strip()
    return UploadRequest(
        dataset_id=dataset_slug(title),
        title=title,
        description=description or "",
        source=source or "",
        licence=licence or "",
        uploader=uploader or "",
        read=read,
        levels=_ints(levels, "levels"),
        on_problem=on_problem,
        file_name=file_name,
    )


def spool(settings: SettingsDep, file: Annotated[UploadFile, File()]) -> Path:
    """Copy the uploaded file to the upload directory, refusing files over the limit."""
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    suffix = "".join(Path(file.filename or "").suffixes[-2:]).lower()
    suffix = suffix if _SUFFIX.match(suffix) else ""  # the name itself never reaches the disk
    target = settings.upload_dir / f"{os.getpid()}-{uuid.uuid4().hex}{suffix}"
    with target.open("wb") as out:
        shutil.copyfileobj(file.file, out, 1 << 20)
    size = target.stat().st_size
    if size > settings.max_upload_bytes:
        target.unlink()
        raise TooLargeError(
            file.filename or "upload",
            [
                {
                    "file": file.filename,
                    "row": None,
                    "column": None,
                    "value": size,
                    "rule": "file-too-large",
                    "reason": f"the file has {size} bytes; at most "
                    f"{settings.max_upload_bytes} are accepted",
                }
            ],
        )
    return target


RequestDep = Annotated[UploadRequest, Depends(upload_request)]
SpoolDep = Annotated[Path, Depends(spool)]
