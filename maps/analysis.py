"""The result map of an analysis: the indicator, the hot-spot classes and the catchments as
layers, a time slider over the analysis's years, popups, a legend, a summary panel with the
Moran scatterplot, and downloads."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely

from geo.atlas import ResultView
from geo.geojson import feature_collection
from maps.assets import localise
from maps.atlas import (
    DISPLAY_TOLERANCE_DEG,
    AtlasControls,
    AtlasData,
    AtlasLayer,
    empty_map,
    indicator_legend,
    numbers,
    popup_text,
    region_payload,
    view_bounds,
)
from maps.classify import DEFAULT_K, DEFAULT_SCHEME, classes, digits_for
from maps.i18n import Text
from maps.panels import (
    ATTRIBUTION,
    Link,
    class_legend,
    indicator_legend_html,
    outlines_layer,
    summary_panel,
    title_panel,
)
from maps.styles import class_of, legend_entries
from maps.vector_tiles import FINE_LAYER_REGIONS, PANE, VectorTiles, outline_tiles, region_pane

BACKGROUND_PANE = "ac-background"  # country outlines: above a basemap, below every layer
LAYERS = ("classes", "indicator")
FOCUS_CSS = (
    "html, body { height: auto; } .folium-map { height: 62vh !important; position: relative; }"
    " .ac-members { position: static; max-width: none; max-height: none; margin: 8px; }"
    " .ac-legend { bottom: auto; top: calc(62vh - 260px); }"
)


@dataclass(frozen=True)
class MapOptions:
    """How to draw a map: where its assets and tiles are, and what the URL asked for."""

    static_url: str
    outlines: gpd.GeoDataFrame | None = None
    tiles: str | None = None
    tiles_attribution: str = ""
    vector_tiles: VectorTiles | None = None
    outline_vector_tiles: VectorTiles | None = None
    fine_layer_regions: int = FINE_LAYER_REGIONS
    embed: bool = False
    layer: str = "classes"
    show_catchments: bool = True
    scheme: str = DEFAULT_SCHEME
    k: int = DEFAULT_K
    downloads: list[Link] = field(default_factory=list)
    languages: list[Link] = field(default_factory=list)
    home: str = "/"
    catchment_url: str = ""  # with {catchment} and {year}
    focus: Any = None  # a geometry to zoom to instead of the whole area
    extra_html: str = ""
    area_titles: dict[str, str] = field(default_factory=dict)  # named area -> its title


def area_title(opts: MapOptions, area: str) -> str:
    return opts.area_titles.get(area, area)


def stat_name(method: str) -> str:
    return "z" if method == "gi_star" else "I"


def p_column(params: dict[str, Any]) -> str:
    """The p-value that decided the classes."""
    if params["method"] == "local_moran" or params.get("inference") == "permutation":
        return "p_sim"
    return "p_norm"


def method_name(method: str, _: Text) -> str:
    return _("Getis-Ord Gi*") if method == "gi_star" else _("Local Moran's I (LISA)")


def result_payload(view: ResultView, opts: MapOptions, _: Text, *, fine: bool) -> dict[str, Any]:
    """Everything the browser needs to draw and restyle the result map."""
    params = view.record.params
    method, pcol, stat = params["method"], p_column(params), stat_name(params["method"])
    table = [(y, view.year_table(y)) for y in view.years]
    pooled = np.concatenate([t["value"].to_numpy(dtype=float) for _y, t in table])
    scheme = classes(pooled, opts.scheme, opts.k)
    digits = digits_for(pooled)
    codes = legend_entries(method)
    series = {}
    for year, t in table:
        rows = t.reset_index().to_dict("records")
        series[str(year)] = {
            "v": numbers(t["value"], 4),
            "s": numbers(t[stat], 3),
            "p": numbers(t[pcol], 4),
            "k": [codes.index(class_of(method, r)) for r in rows],
            "b": scheme.classify(t["value"].to_numpy(dtype=float)).tolist(),
            "c": [str(c) if isinstance(c, str) else "" for c in t["catchment"]],
        }
    ids = [str(i) for i in view.regions.index]
    position = {c: i for i, c in enumerate(ids)}
    payload = region_payload(view.regions, geometry=not fine)
    payload |= {
        "years": view.years,
        "year": view.year,
        "stat": stat,
        "series": series,
        "classes": [[colour, _(label)] for colour, label in codes],
        "indicator": indicator_legend(scheme, digits, view.indicator.label, view.indicator.unit, _),
        "neighbours": [[position[n] for n in view.neighbours.get(c, [])] for c in ids],
        "catchments": _catchment_features(view),
        "text": popup_text(_),
        "links": {"catchment": opts.catchment_url},
    }
    if fine and opts.vector_tiles is not None:
        payload["tiles"] = {
            "url": opts.vector_tiles.url,
            "layer": opts.vector_tiles.layer,
            "pane": PANE,
        }
    payload["_scheme"] = scheme  # used by the legend, dropped before embedding
    return payload


def _catchment_features(view: ResultView) -> dict[str, Any]:
    catch = view.catchments[
        ["year", "catchment", "n_regions", "members", "countries", "area_km2", "geometry"]
    ].copy()
    catch["year"] = catch["year"].astype(int)
    catch["area_km2"] = catch["area_km2"].round(0)
    catch["geometry"] = shapely.simplify(catch.geometry.values, DISPLAY_TOLERANCE_DEG)
    catch.index = catch["year"].astype(str) + "-" + catch["catchment"].astype(str)
    return feature_collection(gpd.GeoDataFrame(catch, crs=4326), precision=4)


def analysis_map(view: ResultView, opts: MapOptions, _: Text) -> folium.Map:
    """The result map of ``view``'s indicator; every year is in the page, ``view.year``
    shown first. A layer of more than ``opts.fine_layer_regions`` regions draws its
    geometry from ``opts.vector_tiles`` (country outlines then from
    ``opts.outline_vector_tiles``); without ``opts.tiles`` the background is plain with
    the country ``opts.outlines``, so the map works with no tile server."""
    fine = opts.vector_tiles is not None and len(view.regions) > opts.fine_layer_regions
    payload = result_payload(view, opts, _, fine=fine)
    scheme = payload.pop("_scheme")
    m = empty_map(opts.tiles, opts.tiles_attribution, embed=opts.embed)
    localise(m, opts.static_url)
    folium.map.CustomPane(BACKGROUND_PANE, z_index=350, pointer_events=False).add_to(m)
    minx, miny, maxx, maxy = view.regions.total_bounds
    if fine and opts.outline_vector_tiles is not None:
        outline_tiles(
            opts.outline_vector_tiles, BACKGROUND_PANE, static_url=opts.static_url
        ).add_to(m)
        region_pane().add_to(m)
    elif opts.outlines is not None and len(opts.outlines):
        outlines_layer(
            opts.outlines, (minx - 3, miny - 2, maxx + 3, maxy + 2), BACKGROUND_PANE
        ).add_to(m)
    if fine:
        _vectorgrid_js(m, opts.static_url)
    data = AtlasData(payload, opts.static_url)
    data.add_to(m)
    method = view.record.params["method"]
    layer = opts.layer if opts.layer in LAYERS else "classes"
    names = {
        "classes": _("Hot spots (Gi*)") if method == "gi_star" else _("LISA clusters"),
        "indicator": _("Indicator values"),
    }
    for kind in LAYERS:
        AtlasLayer(data, kind, names[kind], overlay=False, show=kind == layer).add_to(m)
    AtlasLayer(
        data, "catchments", _("Cluster catchments"), overlay=True, show=opts.show_catchments
    ).add_to(m)
    AtlasControls(view.years).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    bounds = opts.focus.bounds if opts.focus is not None else view_bounds(view.regions)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]], padding=(30, 30))
    _chrome(m, view, opts, _, scheme=scheme, digits=payload["indicator"]["digits"], layer=layer)
    return m


def _vectorgrid_js(m: folium.Map, static_url: str) -> None:
    from maps.vector_tiles import VECTORGRID_JS

    m.default_js = [*m.default_js, ("vectorGrid", f"{static_url.rstrip('/')}/{VECTORGRID_JS}")]


def _chrome(
    m: folium.Map,
    view: ResultView,
    opts: MapOptions,
    _: Text,
    *,
    scheme: Any,
    digits: int,
    layer: str,
) -> None:
    """Title, legend and summary panels around the map."""
    params = view.record.params
    method = params["method"]
    root: Any = m.get_root()
    title = _(
        "{label} ({code}): {method}",
        label=view.indicator.label,
        code=view.indicator.code,
        method=method_name(method, _),
    )
    root.header.add_child(folium.Element(f"<title>{html.escape(title)}</title>"))
    root.html.add_child(
        folium.Element(f'<div id="ac-lang" data-lang="{html.escape(_.lang)}"></div>')
    )
    if not opts.embed:
        n_hot = {y: int(s.get("n_hot", 0)) for y, s in view.summaries.items()}
        subtitle = _(
            "{n} NUTS {level} regions of {area} · {years}",
            n=len(view.regions),
            level=params["level"],
            area=area_title(opts, params["area"]),
            years=", ".join(map(str, view.years)),
        )
        root.html.add_child(
            folium.Element(title_panel(title, subtitle, opts, _, regions=view.regions, n_hot=n_hot))
        )
    legend = class_legend(
        method,
        params,
        view.summaries,
        _,
        hidden=layer != "classes",
        catchments=len(view.catchments) > 0,
    )
    legend += indicator_legend_html(
        scheme, digits, view.indicator, view.dataset.source, _, hidden=layer != "indicator"
    )
    root.html.add_child(
        folium.Element(
            '<div class="ac-panel ac-legend" role="region" aria-label="'
            f'{html.escape(_("Legend"))}">{legend}'
            f'<div class="ac-note">{html.escape(ATTRIBUTION)}</div></div>'
        )
    )
    if opts.focus is not None:  # a catchment page: the map above, the member table below
        root.header.add_child(folium.Element("<style>" + FOCUS_CSS + "</style>"))
    elif not opts.embed:
        root.html.add_child(folium.Element(summary_panel(view, opts, _)))
    if opts.extra_html:
        root.html.add_child(folium.Element(opts.extra_html))
