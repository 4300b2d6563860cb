"""The similar-regions map: the chosen region and its k most similar regions (JRC S3
benchmarking) labelled by rank, with their table in a panel and the country outlines
behind them."""

from __future__ import annotations

import html
from typing import Any

import folium

from geo.geojson import feature_collection
from geo.s3_views import SimilarView
from maps.analysis import BACKGROUND_PANE, MapOptions
from maps.assets import localise
from maps.atlas import display_geometry, empty_map
from maps.emerging import RegionPopups, popup_table
from maps.i18n import Text
from maps.panels import ATTRIBUTION, esc, outlines_layer, title_panel

CHOSEN_COLOUR = "#542788"  # purple: the region compared
SIMILAR_COLOUR = "#f1a340"  # orange: its most similar regions


def _distance(value: Any) -> str:
    return f"{float(value):.3f}"


def similar_features(view: SimilarView, _: Text) -> dict[str, Any]:
    """The chosen and the similar regions with colour, rank label, popup and hover text."""
    regions = view.regions
    popups, tips, labels, colours = [], [], [], []
    for code, r in regions.iterrows():
        rank = int(r["rank"])
        role = _("Chosen region") if rank == 0 else _("Similar region, rank {rank}", rank=rank)
        rows = [
            (_("NUTS code"), str(code)),
            (_("Name"), str(r["NAME_LATN"])),
            (_("National name"), str(r["NUTS_NAME"])),
            (_("Country"), str(r["CNTR_CODE"])),
            (_("Role"), role),
            (_("Distance"), _distance(r["distance"])),
        ]
        rows += [
            (ind.label or ind.code, f"{float(r['value_' + ind.code]):,.2f}")
            for ind in view.indicators
            if f"value_{ind.code}" in r
        ]
        popups.append(popup_table(str(r["NAME_LATN"]), rows))
        tips.append(f"{esc(code)} {esc(r['NAME_LATN'])}<br>{esc(role)}")
        labels.append(str(code) if rank == 0 else str(rank))
        colours.append(CHOSEN_COLOUR if rank == 0 else SIMILAR_COLOUR)
    shapes = regions[["rank"]].assign(colour=colours, popup=popups, tip=tips, label=labels)
    shapes = shapes.set_geometry(display_geometry(regions).values, crs=4326)
    return feature_collection(shapes, precision=4)


def style(feature: dict[str, Any]) -> dict[str, Any]:
    return {
        "fillColor": feature["properties"]["colour"],
        "fillOpacity": 0.8,
        "color": "#222222",
        "weight": 1.2,
    }


def similar_table(view: SimilarView, _: Text) -> str:
    """The similar regions by rank: code, names, country and distance."""
    head = "".join(
        f'<th scope="col">{esc(h)}</th>'
        for h in (
            _("Rank"),
            _("NUTS code"),
            _("Name"),
            _("National name"),
            _("Country"),
            _("Distance"),
        )
    )
    rows = "".join(
        f'<tr><td>{int(r["rank"])}</td><th scope="row">{esc(code)}</th>'
        f"<td>{esc(r['NAME_LATN'])}</td><td>{esc(r['NUTS_NAME'])}</td>"
        f"<td>{esc(r['CNTR_CODE'])}</td><td>{_distance(r['distance'])}</td></tr>"
        for code, r in view.similar.iterrows()
    )
    indicators = ", ".join(f"{i.label} ({i.code})" for i in view.indicators)
    note = _(
        "Standardised Euclidean distance over {indicators} in {year}, the {n} regions "
        "compared having every indicator (JRC S3 regional benchmarking).",
        indicators=indicators,
        year=view.year,
        n=view.compared,
    )
    caption = _("Regions most similar to {region}", region=view.region)
    return (
        '<div class="ac-panel ac-members" role="region" aria-label="'
        f'{esc(_("Similar regions"))}"><table class="ac-table"><caption>{esc(caption)}'
        f"</caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        f'<p class="ac-note">{esc(note)}</p></div>'
    )


def similar_legend(view: SimilarView, _: Text) -> str:
    chosen, similar = _("Chosen region"), _("Similar region (label: rank)")
    items = (
        f'<li><span class="ac-swatch" style="background:{CHOSEN_COLOUR}"></span>'
        f"{esc(chosen)}</li>"
        f'<li><span class="ac-swatch" style="background:{SIMILAR_COLOUR}"></span>'
        f"{esc(similar)}</li>"
    )
    return (
        f'<div class="ac-panel ac-legend" role="region" aria-label="{esc(_("Legend"))}">'
        f"<h2>{esc(_('Similar regions'))}</h2><ul>{items}</ul>"
        f'<div class="ac-note">{esc(ATTRIBUTION)}</div></div>'
    )


def similar_map(view: SimilarView, opts: MapOptions, _: Text) -> folium.Map:
    """``view``'s region and its similar regions, rank-labelled, with their table."""
    m = empty_map(opts.tiles, opts.tiles_attribution, embed=opts.embed)
    localise(m, opts.static_url)
    folium.map.CustomPane(BACKGROUND_PANE, z_index=350, pointer_events=False).add_to(m)
    minx, miny, maxx, maxy = view.regions.total_bounds
    if opts.outlines is not None and len(opts.outlines):
        bbox = (minx - 3, miny - 2, maxx + 3, maxy + 2)
        outlines_layer(opts.outlines, bbox, BACKGROUND_PANE).add_to(m)
    layer = folium.GeoJson(
        similar_features(view, _), name=_("Similar regions"), style_function=style
    )
    layer.add_to(m)
    RegionPopups(layer).add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]], padding=(30, 30))
    root: Any = m.get_root()
    name = str(view.regions.loc[view.region, "NAME_LATN"])
    title = _("Regions most similar to {name} ({code})", name=name, code=view.region)
    root.header.add_child(folium.Element(f"<title>{html.escape(title)}</title>"))
    if not opts.embed:
        subtitle = _(
            "{k} of the NUTS {level} regions of {area} in {year}",
            k=len(view.similar),
            level=view.level,
            area=view.area_title,
            year=view.year,
        )
        if view.exclude_country:
            subtitle += " · " + _("other countries only")
        panel = title_panel(title, subtitle, opts, _, regions=view.regions)
        root.html.add_child(folium.Element(panel))
        root.html.add_child(folium.Element(similar_table(view, _)))
    root.html.add_child(folium.Element(similar_legend(view, _)))
    return m
