"""The HTML panels around a map: title with downloads, legends, the summary with the Moran
scatterplot, and the plain country background."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import folium
import geopandas as gpd
import shapely

from geo.store import IndicatorInfo
from maps.classify import NO_DATA_COLOUR, Classes
from maps.i18n import Text
from maps.scatter import scatter_svg
from maps.styles import CORRECTION_TEXT, OUTLINE_STYLE, legend_entries

if TYPE_CHECKING:
    from geo.atlas import ResultView
    from maps.analysis import MapOptions

ATTRIBUTION = "© EuroGeographics for the administrative boundaries · Source: Eurostat"


@dataclass(frozen=True)
class Link:
    """A link of a panel; ``keep_state`` links follow the year and layer shown."""

    label: str
    href: str
    keep_state: bool = True
    download: bool = False


def esc(text: object) -> str:
    return html.escape(str(text))


def links_html(links: list[Link]) -> str:
    return " · ".join(
        f'<a href="{esc(link.href)}"{" data-keep-state" if link.keep_state else ""}'
        f"{' download' if link.download else ''}>{esc(link.label)}</a>"
        for link in links
    )


def finder(regions: gpd.GeoDataFrame, _: Text) -> str:
    """A labelled list of every region: keyboard access to its popup."""
    options = "".join(
        f'<option value="{esc(code)}">{esc(code)} {esc(latn)}'
        f"{' / ' + esc(nat) if nat != latn else ''}</option>"
        for code, latn, nat in zip(
            regions.index, regions["NAME_LATN"], regions["NUTS_NAME"], strict=True
        )
    )
    return (
        f'<label for="ac-find">{esc(_("Find a region"))}</label> '
        f'<select id="ac-find"><option value="">—</option>{options}</select>'
    )


def title_panel(
    title: str,
    subtitle: str,
    opts: MapOptions,
    _: Text,
    *,
    regions: gpd.GeoDataFrame,
    n_hot: dict[int, int] | None = None,
) -> str:
    """Title, subtitle, the region finder, downloads, languages and the way home."""
    hot = "".join(
        f'<p data-year="{y}">{esc(_("{n} significant hot-spot region(s) in {year}", n=n, year=y))}'
        "</p>"
        for y, n in (n_hot or {}).items()
    )
    langs = (
        f'<p class="ac-links">{esc(_("Language"))}: {links_html(opts.languages)}</p>'
        if opts.languages
        else ""
    )
    return (
        '<div class="ac-panel ac-title" role="region" aria-label="'
        f'{esc(_("Map title"))}"><p class="ac-links"><a href="{esc(opts.home)}">'
        f"{esc(_('AlpClusters start page'))}</a></p>"
        f"<h1>{esc(title)}</h1><p>{esc(subtitle)}</p>{hot}"
        f'<p class="ac-find">{finder(regions, _)}</p>'
        f'<p class="ac-links">{esc(_("Download"))}: {links_html(opts.downloads)}</p>{langs}</div>'
    )


def _swatches(entries: list[tuple[str, str]], _: Text) -> str:
    return "".join(
        f'<li><span class="ac-swatch" style="background:{colour}"></span>{esc(_(label))}</li>'
        for colour, label in entries
    )


def class_legend(
    method: str,
    params: dict[str, Any],
    summaries: dict[int, dict[str, Any]],
    _: Text,
    *,
    hidden: bool,
    catchments: bool,
) -> str:
    """The classes, the catchment outline and how significance was decided."""
    items = _swatches(legend_entries(method), _)
    if catchments:
        items += (
            '<li><span class="ac-swatch ac-swatch-outline"></span>'
            f"{esc(_('Cluster catchment'))}</li>"
        )
    inference = (
        _(
            "{n} conditional permutations (seed {seed})",
            n=format(params["permutations"], ","),
            seed=params["seed"],
        )
        if method == "local_moran" or params.get("inference") == "permutation"
        else _("normal approximation")
    )
    note = _(
        "Significance: {inference}; {correction}, α = {alpha}. Weights: {weights}.",
        inference=inference,
        correction=_(CORRECTION_TEXT[params["correction"]]),
        alpha=f"{params['alpha']:g}",
        weights=params["weights"],
    )
    heading = _("Gi* hot spots") if method == "gi_star" else _("LISA clusters")
    return (
        f'<div data-legend="classes"{" hidden" if hidden else ""}><h2>{esc(heading)}</h2>'
        f'<ul>{items}</ul><div class="ac-note">{esc(note)}</div></div>'
    )


def indicator_legend_html(
    scheme: Classes,
    digits: int,
    indicator: IndicatorInfo,
    source: str,
    _: Text,
    *,
    hidden: bool,
) -> str:
    """The indicator's classes with its unit and source, and "no data"."""
    from maps.classify import SCHEME_LABELS

    entries = list(zip(scheme.colours, scheme.labels(digits), strict=True))
    items = "".join(
        f'<li><span class="ac-swatch" style="background:{c}"></span>{esc(label)}</li>'
        for c, label in entries
    )
    items += (
        f'<li><span class="ac-swatch ac-swatch-nodata" style="background:{NO_DATA_COLOUR}">'
        f"</span>{esc(_('No data'))}</li>"
    )
    unit = f" ({esc(indicator.unit)})" if indicator.unit else ""
    return (
        f'<div data-legend="indicator"{" hidden" if hidden else ""}>'
        f"<h2>{esc(indicator.label)}{unit}</h2><ul>{items}</ul>"
        f'<div class="ac-note">{esc(_("Classes"))}: {esc(_(SCHEME_LABELS[scheme.scheme]))}, '
        f"{esc(_('the same for every year'))}. {esc(_('Source'))}: {esc(source)}</div></div>"
    )


def summary_panel(view: ResultView, opts: MapOptions, _: Text) -> str:
    """Global Moran's I, the catchments and the Moran scatterplot of every year."""
    parts = []
    for year in view.years:
        s = view.summaries.get(year, {})
        gm = s.get("global_moran", {})
        moran = (
            _(
                "Global Moran's I = {i} (pseudo p = {p})",
                i=format(gm["I"], ".3f"),
                p=format(gm["p_sim"], ".4f"),
            )
            if gm.get("I") is not None and gm.get("p_sim") is not None
            else _("Global Moran's I: not computed")
        )
        parts.append(
            f'<div data-year="{year}"><p>{esc(moran)}</p>'
            f"{_catchment_table(view, year, opts, _)}"
            f"{scatter_svg(view.scatters[year], _)}</div>"
        )
    return (
        '<details class="ac-panel ac-summary" open><summary>'
        f"{esc(_('Summary'))}</summary>{''.join(parts)}</details>"
    )


def _catchment_table(view: ResultView, year: int, opts: MapOptions, _: Text) -> str:
    catch = view.catchments[view.catchments["year"] == year]
    if not len(catch):
        return f"<p>{esc(_('No catchment: no two or more contiguous hot-spot regions.'))}</p>"
    digits = 0 if catch["value_mean"].abs().max() >= 100 else 2
    rows = "".join(
        f'<tr><th scope="row"><a href="{esc(_catchment_href(opts, str(r.catchment), year))}">'
        f"{esc(r.catchment)}</a></th><td>{r.n_regions}</td><td>{esc(r.countries)}</td>"
        f"<td>{r.area_km2:,.0f}</td><td>{r.value_total:,.{digits}f}</td>"
        f"<td>{r.value_mean:,.{digits}f}</td></tr>"
        for r in catch.itertuples()
    )
    head = "".join(
        f'<th scope="col">{esc(_(h))}</th>'
        for h in ("Catchment", "Regions", "Countries", "Area (km²)", "Total", "Mean")
    )
    return (
        f'<table class="ac-table"><caption>{esc(_("Cluster catchments"))}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _catchment_href(opts: MapOptions, cid: str, year: int) -> str:
    return opts.catchment_url.replace("{catchment}", cid).replace("{year}", str(year))


def outlines_layer(
    outlines: gpd.GeoDataFrame, bbox: tuple[float, float, float, float], pane: str
) -> folium.GeoJson:
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
        pane=pane,
    )


def member_panel(
    members: gpd.GeoDataFrame, catchment: Any, method: str, p_col: str, _: Text
) -> str:
    """A catchment's figures and its member regions with their statistics and class."""
    from maps.styles import class_of

    stat = "z" if method == "gi_star" else "I"
    head = "".join(
        f'<th scope="col">{esc(h)}</th>'
        for h in (
            _("NUTS code"),
            _("Name"),
            _("National name"),
            _("Country"),
            _("Value"),
            stat,
            "p",
            _("Hot-spot class"),
        )
    )
    rows = "".join(
        f'<tr><th scope="row">{esc(code)}</th><td>{esc(r["NAME_LATN"])}</td>'
        f"<td>{esc(r['NUTS_NAME'])}</td><td>{esc(r['CNTR_CODE'])}</td>"
        f"<td>{r['value']:,.2f}</td><td>{r[stat]:.2f}</td><td>{r[p_col]:.4f}</td>"
        f"<td>{esc(_(class_of(method, r.to_dict())[1]))}</td></tr>"
        for code, r in members.iterrows()
    )
    figures = _(
        "{n} regions in {countries}; {area} km²; total {total}, mean {mean}",
        n=catchment["n_regions"],
        countries=str(catchment["countries"]).replace(",", ", "),
        area=format(catchment["area_km2"], ",.0f"),
        total=format(catchment["value_total"], ",.2f"),
        mean=format(catchment["value_mean"], ",.2f"),
    )
    return (
        '<div class="ac-panel ac-members" role="region" aria-label="'
        f'{esc(_("Member regions"))}"><h2>{esc(_("Catchment {c}", c=catchment["catchment"]))}'
        f"</h2><p>{esc(figures)}</p>"
        f'<table class="ac-table"><caption>{esc(_("Member regions"))}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
    )
