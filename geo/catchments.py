"""Cluster catchments: connected groups of hot-spot regions in the weights graph."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.boundaries import EQUAL_AREA_CRS
from geo.hotspots import HotSpotResult
from geo.weights import SpatialWeights

COLUMNS = [
    "catchment",
    "n_regions",
    "members",
    "countries",
    "cross_border",
    "area_km2",
    "value_total",
    "value_mean",
    "value_min",
    "value_max",
    "mean_z",
]


def catchment_labels(result: HotSpotResult, weights: SpatialWeights) -> np.ndarray:
    """Catchment id per region (``"C1"``, ``"C2"``, ...; ``""`` outside any catchment).

    Catchments are the connected components of the weights graph restricted to the hot
    regions. They are numbered by decreasing number of regions, then by their first code.
    """
    comp = weights.components(result.hot)
    labels = np.full(len(comp), "", dtype=object)
    groups = [np.flatnonzero(comp == c) for c in np.unique(comp[comp >= 0])]
    groups.sort(key=lambda idx: (-len(idx), str(weights.ids[idx].min())))
    for rank, idx in enumerate(groups, start=1):
        labels[idx] = f"C{rank}"
    return labels.astype(str)


def catchments(
    result: HotSpotResult, weights: SpatialWeights, regions: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """One row per catchment with its members, dissolved polygon and summary figures.

    ``regions`` is indexed by region id, holds ``CNTR_CODE`` and the geometry (EPSG:4326).
    The area is measured in EPSG:3035. ``value_total`` is meaningful for counts,
    ``value_mean`` (unweighted mean over members) for ratios such as GDP per head.
    """
    labels = catchment_labels(result, weights)
    frame = result.to_frame().assign(catchment=labels)
    frame = frame[frame["catchment"] != ""]
    rows = []
    for cid, members in frame.groupby("catchment", sort=False):
        geom = regions.loc[members.index]
        countries = sorted(geom["CNTR_CODE"].unique().tolist())
        union = shapely.union_all(geom.geometry.values)
        z = members["z"] if "z" in members else pd.Series(np.nan, index=members.index)
        rows.append(
            {
                "catchment": cid,
                "n_regions": len(members),
                "members": ",".join(sorted(members.index)),
                "countries": ",".join(countries),
                "cross_border": len(countries) > 1,
                "area_km2": float(gpd.GeoSeries([union], crs=4326).to_crs(EQUAL_AREA_CRS).area[0])
                / 1e6,
                "value_total": float(members["value"].sum()),
                "value_mean": float(members["value"].mean()),
                "value_min": float(members["value"].min()),
                "value_max": float(members["value"].max()),
                "mean_z": float(z.mean()),
                "geometry": union,
            }
        )
    out = gpd.GeoDataFrame(rows, columns=[*COLUMNS, "geometry"], geometry="geometry", crs=4326)
    return out.sort_values("catchment", key=lambda s: s.str[1:].astype(int)).reset_index(drop=True)
