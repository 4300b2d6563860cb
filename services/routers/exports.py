"""OGC API – Features: whole collections as files (GeoPackage, FlatGeobuf, GeoParquet, CSV,
zipped Shapefile) in a supported CRS.

Besides ``Content-Disposition``, every answer carries ``Content-Crs`` (the CRS URI in angle
brackets, as in OGC API – Features Part 2) and ``Attribution``: the data sources to credit,
UTF-8 with every character outside printable ASCII (and ``%``) percent-encoded, so that
``urllib.parse.unquote`` restores it. A CSV carries neither inside the file (it stays a plain
table); the other formats carry both in their own metadata as well (see ``geo.exports``).
The file is written to a temporary directory, opened, and the directory deleted before the
answer streams from the open file.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path as FilePath
from typing import Annotated, BinaryIO
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from geo.collections import load_collection
from geo.exports import FORMATS, SUPPORTED_CRS, export_crs, export_format, write_export
from services.dependencies import SettingsDep, StoreDep
from services.schemas import problems

router = APIRouter(prefix="/ogc", tags=["ogc"])

FormatQuery = Annotated[
    str,
    Query(
        description="File format: "
        + ", ".join(f"`{k}` ({f.title}, {f.media_type})" for k, f in FORMATS.items())
        + ". Another value answers 400."
    ),
]
CrsQuery = Annotated[
    str | None,
    Query(
        description="Output CRS as a URI, URN or `EPSG:xxxx`/`CRS84`: "
        + ", ".join(c.uri for c in SUPPORTED_CRS)
        + ". Default CRS84 (longitude, latitude). Files store x = easting or longitude "
        "whatever the CRS's axis order. Another CRS answers 400."
    ),
]
CollectionId = Annotated[
    str, Path(alias="collectionId", description="Collection id, as in /ogc/collections.")
]
_SAFE = "".join(chr(c) for c in range(32, 127) if chr(c) != "%")


@router.get(
    "/collections/{collectionId}/export",
    summary="Download a whole collection as a file",
    response_class=StreamingResponse,
    responses={
        200: {"content": {f.media_type: {} for f in FORMATS.values()}},
        **problems(400, 404),
    },
)
def export_collection(
    collection_id: CollectionId,
    settings: SettingsDep,
    store: StoreDep,
    f: FormatQuery = "gpkg",
    crs: CrsQuery = None,
) -> StreamingResponse:
    """Every feature of the collection, with its attribution, as one file."""
    fmt, target = export_format(f), export_crs(crs)
    collection = load_collection(settings, store, collection_id)
    tmp = FilePath(tempfile.mkdtemp(prefix="alpclusters-export-"))
    try:  # the open file outlives its directory: nothing is left behind, even on disconnect
        path = write_export(collection, fmt, target, tmp)
        handle, size = path.open("rb"), path.stat().st_size
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    headers = {
        "Content-Length": str(size),
        "Content-Disposition": f'attachment; filename="{path.name}"',
        "Content-Crs": f"<{target.uri}>",
        "Attribution": quote(collection.attribution, safe=_SAFE),
    }
    return StreamingResponse(_read(handle), media_type=fmt.media_type, headers=headers)


def _read(handle: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(size):
            yield chunk
