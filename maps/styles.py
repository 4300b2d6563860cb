"""Class colours and labels: ArcGIS hot-spot colours for Gi*, GeoDa's colours for LISA."""

from __future__ import annotations

NO_DATA = ("#bdbdbd", "No data")

# ArcGIS "Hot Spot Analysis" renderer, Gi_Bin -3..3.
GI_CLASSES: dict[int, tuple[str, str]] = {
    3: ("#d62f27", "Hot spot, 99 % confidence"),
    2: ("#ed7551", "Hot spot, 95 % confidence"),
    1: ("#fab984", "Hot spot, 90 % confidence"),
    0: ("#f7f7f2", "Not significant"),
    -1: ("#c0ccbe", "Cold spot, 90 % confidence"),
    -2: ("#849eba", "Cold spot, 95 % confidence"),
    -3: ("#4575b5", "Cold spot, 99 % confidence"),
}

# GeoDa LISA cluster map, cluster codes 0..6.
LISA_CLASSES: dict[int, tuple[str, str]] = {
    1: ("#ff0000", "High-High (hot spot)"),
    4: ("#f4ada8", "High-Low (outlier)"),
    3: ("#a7adf9", "Low-High (outlier)"),
    2: ("#0000ff", "Low-Low (cold spot)"),
    0: ("#eeeeee", "Not significant"),
    6: ("#999999", "Neighbourless"),
    5: ("#464646", "Undefined (no data)"),
}

# Country outlines drawn under the regions when there is no basemap.
OUTLINE_STYLE = {"fillColor": "#ffffff", "fillOpacity": 1, "color": "#9a9a9a", "weight": 1}

CORRECTION_TEXT = {
    "none": "no correction for multiple testing",
    "fdr": "False Discovery Rate (Benjamini–Hochberg)",
    "bonferroni": "Bonferroni correction",
}


def class_of(method: str, row: dict[str, object]) -> tuple[str, str]:
    """Colour and label of one region's class."""
    if row.get("status") == "missing":
        return NO_DATA if method == "gi_star" else LISA_CLASSES[5]
    if method == "gi_star":
        if row.get("status") == "isolate":
            return ("#999999", "Neighbourless (not tested)")
        return GI_CLASSES[int(row["bin"])]  # type: ignore[call-overload]
    return LISA_CLASSES[int(row["cluster"])]  # type: ignore[call-overload]


def legend_entries(method: str) -> list[tuple[str, str]]:
    if method == "gi_star":
        return [*GI_CLASSES.values(), ("#999999", "Neighbourless (not tested)"), NO_DATA]
    return list(LISA_CLASSES.values())
