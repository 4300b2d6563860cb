"""The emerging hot-spot map: one polygon layer coloured by the 17 space-time categories of
ArcGIS Pro's *Emerging Hot Spot Analysis*, a category legend, popups and the country
outlines behind it."""

from __future__ import annotations

import html
from typing import Any

import folium
from branca.element import MacroElement
from folium.template import Template

from geo.emerging import CATEGORIES, COLD, HOT
from geo.geojson import feature_collection
from geo.s3_views import EmergingView
from maps.analysis import BACKGROUND_PANE, MapOptions
from maps.assets import localise
from maps.atlas import display_geometry, empty_map, view_bounds
from maps.i18n import Text
from maps.panels import ATTRIBUTION, esc, outlines_layer, title_panel
from maps.styles import CORRECTION_TEXT

# Hot patterns in reds and oranges, cold ones in blues (darkest for the strongest and most
# lasting), "no pattern" light grey, as ArcGIS's emerging hot-spot renderer.
COLOURS: dict[str, str] = {
    "new_hot": "#fdd0a2",
    "consecutive_hot": "#fd8d3c",
    "intensifying_hot": "#99000d",
    "persistent_hot": "#d7301f",
    "diminishing_hot": "#fc9272",
    "sporadic_hot": "#f16913",
    "oscillating_hot": "#a63603",
    "historical_hot": "#fee0d2",
    "new_cold": "#c6dbef",
    "consecutive_cold": "#6baed6",
    "intensifying_cold": "#08306b",
    "persistent_cold": "#2171b5",
    "diminishing_cold": "#9ecae1",
    "sporadic_cold": "#4292c6",
    "oscillating_cold": "#3f007d",
    "historical_cold": "#deebf7",
    "no_pattern": "#eeeeee",
}


def category_names(_: Text) -> dict[str, str]:
    """The 17 categories' names in the page's language, in the order of the legend."""
    names = {
        "new_hot": _("New hot spot"),
        "consecutive_hot": _("Consecutive hot spot"),
        "intensifying_hot": _("Intensifying hot spot"),
        "persistent_hot": _("Persistent hot spot"),
        "diminishing_hot": _("Diminishing hot spot"),
        "sporadic_hot": _("Sporadic hot spot"),
        "oscillating_hot": _("Oscillating hot spot"),
        "historical_hot": _("Historical hot spot"),
        "new_cold": _("New cold spot"),
        "consecutive_cold": _("Consecutive cold spot"),
        "intensifying_cold": _("Intensifying cold spot"),
        "persistent_cold": _("Persistent cold spot"),
        "diminishing_cold": _("Diminishing cold spot"),
        "sporadic_cold": _("Sporadic cold spot"),
        "oscillating_cold": _("Oscillating cold spot"),
        "historical_cold": _("Historical cold spot"),
        "no_pattern": _("No pattern detected"),
    }
    return {c: names[c] for c in CATEGORIES}


class RegionPopups(MacroElement):
    """Popups and hover text from each feature's ``popup`` and ``tip`` properties, the
    "Find a region" list opening a region's popup, and ``window.acReady`` once drawn."""

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        (function () {
          var layer = {{ this.layer.get_name() }}, map = {{ this._parent.get_name() }};
          var byId = {};
          layer.eachLayer(function (l) {
            var p = l.feature.properties;
            byId[l.feature.id] = l;
            l.bindPopup(p.popup, {maxWidth: 380});
            l.bindTooltip(p.tip, {sticky: true, className: "ac-region-tip"});
            if (p.label) {
              l.bindTooltip(p.label, {permanent: true, direction: "center",
                className: "ac-catchment-label"});
            }
          });
          var select = document.getElementById("ac-find");
          if (select) {
            select.addEventListener("change", function () {
              var l = byId[select.value];
              if (!l) { return; }
              map.fitBounds(l.getBounds(), {maxZoom: 8});
              l.openPopup(l.getBounds().getCenter());
            });
          }
          window.acReadyAt = performance.now();
          window.acReady = true;
        })();
        {%- endmacro %}
        """
    )

    def __init__(self, layer: folium.GeoJson) -> None:
        super().__init__()
        self._name = "RegionPopups"
        self.layer = layer


def popup_table(caption: str, rows: list[tuple[str, str]]) -> str:
    """A popup's table: a caption and (header, value) rows, escaped."""
    body = "".join(f'<tr><th scope="row">{esc(h)}</th><td>{esc(v)}</td></tr>' for h, v in rows)
    return f'<table class="ac-popup"><caption>{esc(caption)}</caption>{body}</table>'


def _number(value: Any, digits: int) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if number != number else f"{number:,.{digits}f}"


def _years(years: list[int], _: Text) -> str:
    return ", ".join(map(str, years)) if years else _("none")


def emerging_features(view: EmergingView, _: Text) -> dict[str, Any]:
    """The regions for the map: simplified polygons with colour, popup and hover text."""
    names = category_names(_)
    hot, cold = view.year_lists(HOT), view.year_lists(COLD)
    regions = view.regions
    popups, tips, colours = [], [], []
    for i, (code, r) in enumerate(regions.iterrows()):
        category = names[str(r["category"])]
        rows = [
            (_("NUTS code"), str(code)),
            (_("Name"), str(r["NAME_LATN"])),
            (_("National name"), str(r["NUTS_NAME"])),
            (_("Country"), str(r["CNTR_CODE"])),
            (_("Category"), category),
            (_("Trend z (Mann-Kendall)"), _number(r["trend_z"], 2)),
            (_("Trend p"), _number(r["trend_p"], 4)),
            (_("Hot-spot years"), f"{int(r['n_hot'])}: {_years(hot[i], _)}"),
            (_("Cold-spot years"), f"{int(r['n_cold'])}: {_years(cold[i], _)}"),
            (_("Years with a z-score"), str(int(r["n_years"]))),
        ]
        popups.append(popup_table(str(r["NAME_LATN"]), rows))
        tips.append(f"{esc(code)} {esc(r['NAME_LATN'])}<br>{esc(category)}")
        colours.append(COLOURS[str(r["category"])])
    shapes = regions[["category"]].assign(colour=colours, popup=popups, tip=tips)
    shapes = shapes.set_geometry(display_geometry(regions).values, crs=4326)
    return feature_collection(shapes, precision=4)


def style(feature: dict[str, Any]) -> dict[str, Any]:
    return {
        "fillColor": feature["properties"]["colour"],
        "fillOpacity": 0.85,
        "color": "#555555",
        "weight": 0.6,
    }


def category_legend(view: EmergingView, _: Text) -> str:
    """Every category with its colour, name and number of regions, and how it was decided."""
    names = category_names(_)
    items = "".join(
        f'<li data-category="{c}"><span class="ac-swatch" style="background:{COLOURS[c]}">'
        f"</span>{esc(names[c])} ({int(view.counts[c])})</li>"
        for c in CATEGORIES
    )
    p = view.params
    note = _(
        "Gi* each year: {n} conditional permutations (seed {seed}); {correction}, α = "
        "{alpha}. Weights: {weights}. Trend: Mann-Kendall test of the Gi* z-scores.",
        n=format(p.permutations, ","),
        seed=p.seed,
        correction=_(CORRECTION_TEXT.get(p.correction, p.correction)),
        alpha=f"{p.alpha:g}",
        weights=p.weights,
    )
    return (
        f'<div data-legend="categories"><h2>{esc(_("Emerging hot spots"))}</h2>'
        f'<ul>{items}</ul><div class="ac-note">{esc(note)}</div></div>'
    )


def emerging_map(view: EmergingView, opts: MapOptions, _: Text) -> folium.Map:
    """The categories of ``view`` as a choropleth with a category legend; without
    ``opts.tiles`` the background is plain with the country ``opts.outlines``."""
    m = empty_map(opts.tiles, opts.tiles_attribution, embed=opts.embed)
    localise(m, opts.static_url)
    folium.map.CustomPane(BACKGROUND_PANE, z_index=350, pointer_events=False).add_to(m)
    minx, miny, maxx, maxy = view.regions.total_bounds
    if opts.outlines is not None and len(opts.outlines):
        outlines_layer(
            opts.outlines, (minx - 3, miny - 2, maxx + 3, maxy + 2), BACKGROUND_PANE
        ).add_to(m)
    layer = folium.GeoJson(
        emerging_features(view, _), name=_("Emerging hot spots"), style_function=style
    )
    layer.add_to(m)
    RegionPopups(layer).add_to(m)
    west, south, east, north = view_bounds(view.regions)
    m.fit_bounds([[south, west], [north, east]])
    root: Any = m.get_root()
    ind, p = view.indicator, view.params
    title = _(
        "{label} ({code}): emerging hot spots {first}–{last}",
        label=ind.label,
        code=ind.code,
        first=p.years[0],
        last=p.years[-1],
    )
    root.header.add_child(folium.Element(f"<title>{html.escape(title)}</title>"))
    if not opts.embed:
        subtitle = _(
            "{n} NUTS {level} regions of {area}",
            n=len(view.regions),
            level=p.level,
            area=view.area_title,
        )
        panel = title_panel(title, subtitle, opts, _, regions=view.regions)
        root.html.add_child(folium.Element(panel))
    root.html.add_child(
        folium.Element(
            f'<div class="ac-panel ac-legend" role="region" aria-label="{esc(_("Legend"))}">'
            f'{category_legend(view, _)}<div class="ac-note">{esc(ATTRIBUTION)}</div></div>'
        )
    )
    return m
