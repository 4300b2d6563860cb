"""The result map of an analysis: classes, catchment outlines, tooltips, legend."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from maps.assets import localise
from maps.styles import CORRECTION_TEXT, OUTLINE_STYLE, class_of, legend_entries
from maps.vector_tiles import (
    FINE_LAYER_REGIONS,
    ClassTiles,
    VectorTiles,
    outline_tiles,
    region_pane,
)

ATTRIBUTION = "© EuroGeographics for the administrative boundaries · Source: Eurostat"
DISPLAY_TOLERANCE_DEG = 0.002  # about 200 m: invisible at the zooms a NUTS map is read at
BACKGROUND_PANE = "ac-background"  # country outlines: above a basemap, below every layer


@dataclass(frozen=True)
class MapInfo:
    """Texts for the map's title and legend panels."""

    title: str
    subtitle: str
    method: str
    params: dict[str, Any]
    summary: dict[str, Any]


def analysis_map(
    regions: gpd.GeoDataFrame,
    catchments: gpd.GeoDataFrame,
    info: MapInfo,
    *,
    static_url: str,
    outlines: gpd.GeoDataFrame | None = None,
    tiles: str | None = None,
    tiles_attribution: str = "",
    vector_tiles: VectorTiles | None = None,
    outline_vector_tiles: VectorTiles | None = None,
    fine_layer_regions: int = FINE_LAYER_REGIONS,
) -> folium.Map:
    """Render the classes of one (indicator, year) series and its catchments.

    ``regions`` holds one row per region with the columns of
    :meth:`geo.hotspots.HotSpotResult.to_frame`, ``NAME_LATN``, ``NUTS_NAME`` and the
    geometry in EPSG:4326. Without ``tiles`` the map has a plain background and the
    country ``outlines``, so it works with no tile server.

    A fine layer, of more than ``fine_layer_regions`` regions, is drawn from ``vector_tiles``
    (the analysis's regions collection, filtered to this series) when given, instead of a
    GeoJSON of every region; its country outlines then come from ``outline_vector_tiles``
    (NUTS level 0) when given.
    """
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=False)
    localise(m, static_url)
    if tiles:
        folium.TileLayer(tiles, attr=tiles_attribution, name="Basemap").add_to(m)
    folium.map.CustomPane(BACKGROUND_PANE, z_index=350, pointer_events=False).add_to(m)
    minx, miny, maxx, maxy = regions.total_bounds
    fine = vector_tiles is not None and len(regions) > fine_layer_regions
    if fine and outline_vector_tiles is not None:
        outline_tiles(outline_vector_tiles, BACKGROUND_PANE, static_url=static_url).add_to(m)
    elif outlines is not None and len(outlines):
        _outlines(outlines, (minx - 3, miny - 2, maxx + 3, maxy + 2)).add_to(m)
    name = "Hot spots (Gi*)" if info.method == "gi_star" else "LISA clusters"
    if fine and vector_tiles is not None:
        region_pane().add_to(m)
        ClassTiles(
            vector_tiles,
            regions,
            info.method,
            _p_column(info),
            static_url=static_url,
            name=name,
        ).add_to(m)
    else:
        _classes(regions, info.method, _p_column(info), name).add_to(m)
    if len(catchments):
        _catchments(catchments).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    root: Any = m.get_root()  # a branca Figure
    root.header.add_child(folium.Element(f"<title>{html.escape(info.title)}</title>"))
    root.html.add_child(folium.Element(_title_panel(info)))
    root.html.add_child(folium.Element(_legend_panel(info, has_catchments=len(catchments) > 0)))
    return m


def display_geometry(gdf: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Geometries simplified for display, keeping shared borders shared."""
    simplified = shapely.coverage_simplify(gdf.geometry.values, DISPLAY_TOLERANCE_DEG)
    return gpd.GeoSeries(shapely.set_precision(simplified, 1e-5), index=gdf.index, crs=gdf.crs)


def _p_column(info: MapInfo) -> str:
    """The p-value that decided the classes."""
    if info.method == "local_moran" or info.params.get("inference") == "permutation":
        return "p_sim"
    return "p_norm"


def _fmt(x: Any, digits: int) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:,.{digits}f}"


def _classes(regions: gpd.GeoDataFrame, method: str, p_column: str, name: str) -> folium.GeoJson:
    rows = regions.to_dict("records")
    styled = [class_of(method, r) for r in rows]
    stat = "z" if method == "gi_star" else "I"
    layer = gpd.GeoDataFrame(
        {
            "code": regions.index.astype(str),
            "name_latn": regions["NAME_LATN"].astype(str),
            "name_national": regions["NUTS_NAME"].astype(str),
            "value": [_fmt(r["value"], 1) for r in rows],
            "stat": [_fmt(r.get(stat), 2) for r in rows],
            "p": [_fmt(r.get(p_column), 4) for r in rows],
            "klass": [label for _, label in styled],
            "fill": [colour for colour, _ in styled],
            "catchment": regions.get("catchment", pd.Series("", index=regions.index))
            .fillna("")
            .replace("", "–")
            .astype(str),
        },
        geometry=display_geometry(regions),
        crs=4326,
    )
    return folium.GeoJson(
        layer,
        name=name,
        style_function=lambda f: {
            "fillColor": f["properties"]["fill"],
            "color": "#555555",
            "weight": 0.6,
            "fillOpacity": 0.85,
        },
        highlight_function=lambda f: {"weight": 2.5, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(
            fields=[
                "code",
                "name_latn",
                "name_national",
                "value",
                "stat",
                "p",
                "klass",
                "catchment",
            ],
            aliases=["NUTS", "Name", "National name", "Value", stat, "p", "Class", "Catchment"],
            sticky=True,
        ),
    )


def _catchments(catchments: gpd.GeoDataFrame) -> folium.GeoJson:
    layer = catchments[["catchment", "n_regions", "countries", "area_km2", "geometry"]].copy()
    layer["area_km2"] = layer["area_km2"].round(0)
    layer["geometry"] = shapely.set_precision(
        shapely.simplify(layer.geometry.values, DISPLAY_TOLERANCE_DEG), 1e-5
    )
    return folium.GeoJson(
        layer,
        name="Cluster catchments",
        style_function=lambda f: {"fill": False, "color": "#000000", "weight": 3},
        tooltip=folium.GeoJsonTooltip(
            fields=["catchment", "n_regions", "countries", "area_km2"],
            aliases=["Catchment", "Regions", "Countries", "Area (km²)"],
        ),
    )


def _outlines(outlines: gpd.GeoDataFrame, bbox: tuple[float, float, float, float]) -> Any:
    """Whole countries near the area, generalised, as a plain background."""
    near = outlines[outlines.intersects(shapely.box(*bbox))]
    layer = gpd.GeoDataFrame(
        {"country": near["NUTS_ID"].astype(str)},
        geometry=shapely.set_precision(shapely.simplify(near.geometry.values, 0.01), 1e-4),
        crs=4326,
    )
    return folium.GeoJson(
        layer,
        name="Countries",
        style_function=lambda f: OUTLINE_STYLE,
        control=False,
        interactive=False,
        pane=BACKGROUND_PANE,
    )


def _title_panel(info: MapInfo) -> str:
    return (
        '<div class="ac-panel ac-title" role="region" aria-label="Map title">'
        f"<h1>{html.escape(info.title)}</h1><p>{html.escape(info.subtitle)}</p></div>"
    )


def _legend_panel(info: MapInfo, has_catchments: bool) -> str:
    items = "".join(
        f'<li><span class="ac-swatch" style="background:{colour}"></span>{html.escape(label)}</li>'
        for colour, label in legend_entries(info.method)
    )
    if has_catchments:
        items += '<li><span class="ac-swatch ac-swatch-outline"></span>Cluster catchment</li>'
    p = info.params
    inference = (
        f"{p['permutations']:,} conditional permutations (seed {p['seed']})"
        if info.method == "local_moran" or p.get("inference") == "permutation"
        else "normal approximation"
    )
    gm = info.summary.get("global_moran", {})
    moran = (
        f"Global Moran's I = {gm['I']:.3f} (p = {gm['p_sim']:.4f})"
        if gm.get("I") is not None and gm.get("p_sim") is not None
        else ""
    )
    note = (
        f"Significance: {inference}; {CORRECTION_TEXT[p['correction']]}, "
        f"α = {p['alpha']:g}. Weights: {p['weights']}. {moran}"
    )
    heading = "Gi* hot spots" if info.method == "gi_star" else "LISA clusters"
    return (
        '<div class="ac-panel ac-legend" role="region" aria-label="Legend">'
        f"<h2>{heading}</h2><ul>{items}</ul>"
        f'<div class="ac-note">{html.escape(note)}</div>'
        f'<div class="ac-note">{html.escape(ATTRIBUTION)}</div></div>'
    )
