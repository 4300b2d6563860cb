"""The indicator map: a choropleth of one indicator with a time slider over its years."""

from __future__ import annotations

import html
from typing import Any

import folium
import numpy as np

from geo.atlas import IndicatorSlice
from maps.analysis import BACKGROUND_PANE, MapOptions
from maps.assets import localise
from maps.atlas import (
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
from maps.classify import classes, digits_for
from maps.i18n import Text
from maps.panels import ATTRIBUTION, esc, indicator_legend_html, outlines_layer, title_panel


def indicator_payload(
    data: IndicatorSlice, year: int, opts: MapOptions, _: Text
) -> tuple[dict[str, Any], Any]:
    """The regions once, and per year the values, flags and class numbers; the classes are
    fitted on every year's values together, so colours compare across years."""
    pooled = data.values.to_numpy(dtype=float).ravel()
    scheme = classes(pooled, opts.scheme, opts.k)
    digits = digits_for(pooled)
    series = {
        str(y): {
            "v": numbers(data.values[y], 4),
            "b": scheme.classify(data.values[y].to_numpy(dtype=float)).tolist(),
            "f": [str(f) for f in data.flags[y]],
        }
        for y in data.years
    }
    payload = region_payload(data.regions, geometry=True) | {
        "years": data.years,
        "year": year,
        "stat": "",
        "series": series,
        "classes": [],
        "indicator": indicator_legend(scheme, digits, data.indicator.label, data.indicator.unit, _),
        "catchments": {"type": "FeatureCollection", "features": []},
        "text": popup_text(_),
        "links": {"catchment": ""},
    }
    return payload, scheme


def indicator_map(data: IndicatorSlice, year: int, opts: MapOptions, _: Text) -> folium.Map:
    """A choropleth of ``data`` with ``year`` shown first; missing values are grey and
    named "No data"."""
    payload, scheme = indicator_payload(data, year, opts, _)
    m = empty_map(opts.tiles, opts.tiles_attribution, embed=opts.embed)
    localise(m, opts.static_url)
    folium.map.CustomPane(BACKGROUND_PANE, z_index=350, pointer_events=False).add_to(m)
    minx, miny, maxx, maxy = data.regions.total_bounds
    if opts.outlines is not None and len(opts.outlines):
        bbox = (minx - 3, miny - 2, maxx + 3, maxy + 2)
        outlines_layer(opts.outlines, bbox, BACKGROUND_PANE).add_to(m)
    atlas = AtlasData(payload, opts.static_url)
    atlas.add_to(m)
    AtlasLayer(atlas, "indicator", _("Indicator values"), overlay=False, show=True).add_to(m)
    AtlasControls(data.years).add_to(m)
    west, south, east, north = view_bounds(data.regions)
    m.fit_bounds([[south, west], [north, east]])
    root: Any = m.get_root()
    ind = data.indicator
    title = f"{ind.label} ({ind.code})"
    root.header.add_child(folium.Element(f"<title>{html.escape(title)}</title>"))
    if not opts.embed:
        missing = {y: int(np.isnan(data.values[y].to_numpy(dtype=float)).sum()) for y in data.years}
        subtitle = _(
            "{n} NUTS {level} regions of {area}",
            n=len(data.regions),
            level=data.level,
            area=data.area_title,
        )
        panel = title_panel(title, subtitle, opts, _, regions=data.regions)
        gaps = "".join(
            f'<p data-year="{y}">{esc(_("No data for {n} region(s) in {year}", n=n, year=y))}</p>'
            for y, n in missing.items()
        )
        root.html.add_child(folium.Element(panel.replace("</h1>", "</h1>" + gaps, 1)))
    legend = indicator_legend_html(
        scheme, payload["indicator"]["digits"], ind, data.dataset.source, _, hidden=False
    )
    root.html.add_child(
        folium.Element(
            f'<div class="ac-panel ac-legend" role="region" aria-label="{esc(_("Legend"))}">'
            f'{legend}<div class="ac-note">{esc(ATTRIBUTION)}</div></div>'
        )
    )
    return m
