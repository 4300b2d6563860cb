"""Dataset versions as files: CSV (streamed) and Parquet."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pandas as pd

from geo.exports import neutralise
from geo.records import VersionInfo
from geo.store import Store

COLUMNS = ["indicator", "geo", "time", "value", "flag", "unit"]


def _frames(store: Store, info: VersionInfo) -> Iterator[pd.DataFrame]:
    units = {i.code: i.unit for i in info.indicators}
    for frame in store.version_frames(info.dataset_id, info.version):
        yield frame.assign(unit=frame["indicator"].map(units))[COLUMNS]


def version_csv(store: Store, info: VersionInfo) -> Iterator[bytes]:
    """UTF-8 CSV, header first, values with full precision, missing values empty."""
    yield (",".join(COLUMNS) + "\n").encode()
    for frame in _frames(store, info):
        for column in ("indicator", "geo", "flag", "unit"):
            frame[column] = neutralise(frame[column])
        yield frame.to_csv(index=False, header=False, float_format="%.17g").encode()


def version_parquet(store: Store, info: VersionInfo) -> bytes:
    """One Parquet file (the version's observations are held once in memory)."""
    frames = list(_frames(store, info))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return buf.getvalue()
