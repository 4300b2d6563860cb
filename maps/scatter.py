"""The Moran scatterplot as an inline SVG (no plotting library, no image request)."""

from __future__ import annotations

import html

import numpy as np

from geo.atlas import MoranScatter
from maps.i18n import Text

SIZE, PAD = 220, 30
# GeoDa's LISA colours for the four quadrants.
QUADRANT_COLOURS = {
    "High-High": "#ff0000",
    "Low-High": "#a7adf9",
    "Low-Low": "#0000ff",
    "High-Low": "#f4ada8",
}


def scatter_svg(scatter: MoranScatter, _: Text) -> str:
    """Standardised value (x) against its spatial lag (y), with the slope of Moran's I."""
    if not len(scatter.z):
        return f"<p>{html.escape(_('No region with a value and neighbours.'))}</p>"
    extent = float(np.nanmax(np.abs(np.concatenate([scatter.z, scatter.lag])))) * 1.05 or 1.0
    inner = SIZE - 2 * PAD

    def x(v: float) -> float:
        return PAD + (v + extent) / (2 * extent) * inner

    def y(v: float) -> float:
        return SIZE - PAD - (v + extent) / (2 * extent) * inner

    slope = scatter.slope
    title = _(
        "Moran scatterplot: standardised value against its spatial lag; slope = "
        "Moran's I = {slope}",
        slope=format(slope, ".3f"),
    )
    points = "".join(
        f'<circle cx="{x(zv):.1f}" cy="{y(lv):.1f}" r="2.5" fill="{QUADRANT_COLOURS[q]}" '
        f'stroke="#333" stroke-width="0.4"><title>{html.escape(str(rid))}: {html.escape(_(q))}'
        f"</title></circle>"
        for rid, zv, lv, q in zip(
            scatter.ids, scatter.z, scatter.lag, scatter.quadrant, strict=True
        )
    )
    line = (
        f'<line x1="{x(-extent):.1f}" y1="{y(-extent * slope):.1f}" x2="{x(extent):.1f}" '
        f'y2="{y(extent * slope):.1f}" stroke="#000" stroke-width="1.2"/>'
    )
    axes = (
        f'<rect x="{PAD}" y="{PAD}" width="{inner}" height="{inner}" fill="#fff" stroke="#888"/>'
        f'<line x1="{x(0):.1f}" y1="{PAD}" x2="{x(0):.1f}" y2="{SIZE - PAD}" stroke="#aaa" '
        'stroke-dasharray="3 2"/>'
        f'<line x1="{PAD}" y1="{y(0):.1f}" x2="{SIZE - PAD}" y2="{y(0):.1f}" stroke="#aaa" '
        'stroke-dasharray="3 2"/>'
    )
    labels = (
        f'<text x="{SIZE / 2}" y="{SIZE - 8}" text-anchor="middle" font-size="10">'
        f"{html.escape(_('Standardised value'))}</text>"
        f'<text x="10" y="{SIZE / 2}" text-anchor="middle" font-size="10" '
        f'transform="rotate(-90 10 {SIZE / 2})">{html.escape(_("Spatial lag"))}</text>'
        f'<text x="{PAD + 4}" y="{PAD + 12}" font-size="10">I = {slope:.3f}</text>'
    )
    return (
        f'<svg class="ac-scatter" viewBox="0 0 {SIZE} {SIZE}" width="{SIZE}" height="{SIZE}" '
        f'role="img" aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>'
        f"{axes}{points}{line}{labels}</svg>"
    )
