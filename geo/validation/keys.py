"""Integer ids and stable 64-bit hashes of the validated rows' keys and contents."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geo.errors import InvalidParameterError

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective scramble of 64-bit words."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class _Interner:
    """Small integer ids for strings (indicators, codes), with a stable 64-bit hash each."""

    def __init__(self, limit: int) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self.hashes: list[int] = []
        self.limit = limit

    def encode(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Ids and hashes of ``values`` (no nulls)."""
        encoded = pc.dictionary_encode(values)
        local = [self._id(s) for s in encoded.dictionary.to_pylist()]
        index = np.asarray(encoded.indices, dtype=np.int64)
        ids = np.asarray(local, dtype=np.uint64)[index] if local else np.zeros(0, np.uint64)
        hashes = np.asarray(self.hashes, dtype=np.uint64)[ids.astype(np.int64)]
        return ids, hashes

    def _id(self, text: str) -> int:
        if text not in self.ids:
            if len(self.names) >= self.limit:
                raise InvalidParameterError(f"more than {self.limit} distinct values of a key")
            self.ids[text] = len(self.names)
            self.names.append(text)
            self.hashes.append(_text_hash(text))
        return self.ids[text]


def _value_bits(values: np.ndarray) -> np.ndarray:
    clean = np.where(np.isnan(values), np.nan, values + 0.0)  # one NaN, and -0.0 as 0.0
    return clean.view(np.uint64)
