"""Choropleth classes of an indicator: a mapclassify scheme and a colour-blind-safe palette."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from branca.utilities import color_brewer

SCHEMES = {
    "quantiles": "Quantiles",
    "fisher_jenks": "FisherJenks",
    "equal_interval": "EqualInterval",
}
SCHEME_LABELS = {
    "quantiles": "Quantiles (equal counts)",
    "fisher_jenks": "Natural breaks (Fisher–Jenks)",
    "equal_interval": "Equal intervals",
}
DEFAULT_SCHEME = "quantiles"
DEFAULT_K = 5
# ColorBrewer's YlGnBu: sequential, colour-blind safe, readable in grey print.
PALETTE = "YlGnBu"
NO_DATA_COLOUR = "#bdbdbd"


@dataclass(frozen=True)
class Classes:
    """Upper bounds of the classes (the last is the maximum) and their colours."""

    scheme: str
    bins: np.ndarray
    colours: list[str]
    minimum: float

    def classify(self, values: np.ndarray) -> np.ndarray:
        """Class number of every value (as mapclassify: ``v <= bins[i]``), -1 for NaN."""
        values = np.asarray(values, dtype=float)
        out = np.searchsorted(self.bins, values, side="left")
        out = np.minimum(out, len(self.bins) - 1)
        return np.where(np.isfinite(values), out, -1)

    def labels(self, digits: int) -> list[str]:
        """``lower – upper`` of every class."""
        lowers = [self.minimum, *self.bins[:-1]]
        return [
            f"{lo:,.{digits}f} – {hi:,.{digits}f}" for lo, hi in zip(lowers, self.bins, strict=True)
        ]


def classes(values: np.ndarray, scheme: str = DEFAULT_SCHEME, k: int = DEFAULT_K) -> Classes:
    """Classes of the finite ``values`` by ``scheme`` (a key of :data:`SCHEMES`)."""
    import mapclassify

    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; valid schemes: {sorted(SCHEMES)}")
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        raise ValueError("no finite value to classify")
    distinct = len(np.unique(finite))
    if distinct == 1:  # one class holding every value (mapclassify refuses constant data)
        return Classes(scheme, finite[:1].copy(), palette(1), float(finite[0]))
    k = max(1, min(k, distinct))
    fitted = getattr(mapclassify, SCHEMES[scheme])(finite, k=k)
    bins = np.unique(np.asarray(fitted.bins, dtype=float))
    return Classes(scheme, bins, palette(len(bins)), float(finite.min()))


def palette(n: int) -> list[str]:
    """``n`` colours of :data:`PALETTE`, light to dark (ColorBrewer has 3 to 9)."""
    colours = color_brewer(PALETTE, max(n, 3))
    return colours[-n:] if n < 3 else colours[:n]


def digits_for(values: np.ndarray) -> int:
    """Decimal places that tell classes apart: none for large numbers, more for small."""
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite)]
    top = float(finite.max()) if len(finite) else 0.0
    return 0 if top >= 100 else 1 if top >= 10 else 2
