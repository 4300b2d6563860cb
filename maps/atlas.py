"""folium elements of the atlas: one embedded payload, the layers built from it in the
browser by ``static/js/atlas.js``, the time slider and the region finder.

The payload holds every region's geometry once (or, for fine layers, where its vector
tiles are) and the statistics of every year as arrays aligned with ``ids``, so switching
layers or years needs no second copy of the geometry and no request.
"""

from __future__ import annotations

import math
import re
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.template import Template

from geo.geojson import feature_collection
from maps.classify import NO_DATA_COLOUR, Classes
from maps.i18n import Text

DISPLAY_TOLERANCE_DEG = 0.002  # about 200 m: invisible at the zooms a NUTS map is read at
ATLAS_JS = "js/atlas.js"  # under the static URL


class AtlasData(JSCSSMixin, MacroElement):
    """The payload, as one JavaScript object, and the atlas script that reads it."""

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        var {{ this.get_name() }} = {{ this.payload|tojson }};
        {%- endmacro %}
        """
    )

    def __init__(self, payload: dict[str, Any], static_url: str) -> None:
        super().__init__()
        self._name = "AtlasData"
        self.payload = payload
        self.default_js = [("atlas", f"{static_url.rstrip('/')}/{ATLAS_JS}")]


class AtlasLayer(Layer):
    """A layer of the layer control: ``indicator``, ``classes`` or ``catchments``."""

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        var {{ this.get_name() }} = AC.layer({{ this._parent.get_name() }},
            {{ this.data.get_name() }}, {{ this.kind|tojson }});
        {%- endmacro %}
        """
    )

    def __init__(self, data: AtlasData, kind: str, name: str, *, overlay: bool, show: bool) -> None:
        super().__init__(name=name, overlay=overlay, show=show)
        self._name = "AtlasLayer"
        self.data = data
        self.kind = kind


class AtlasControls(MacroElement):
    """The time slider (when there are several years) and the region finder."""

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        {%- if this.years|length > 1 %}
        AC.slider({{ this._parent.get_name() }}, {{ this.years|tojson }});
        {%- endif %}
        AC.finder({{ this._parent.get_name() }});
        {%- endmacro %}
        """
    )

    def __init__(self, years: list[int]) -> None:
        super().__init__()
        self._name = "AtlasControls"
        self.years = years


def display_geometry(gdf: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Geometries simplified for display, keeping shared borders shared."""
    simplified = shapely.coverage_simplify(gdf.geometry.values, DISPLAY_TOLERANCE_DEG)
    return gpd.GeoSeries(shapely.set_precision(simplified, 1e-5), index=gdf.index, crs=gdf.crs)


def region_payload(regions: gpd.GeoDataFrame, *, geometry: bool) -> dict[str, Any]:
    """Codes, names (Latin, national, country) and a label point of every region, and
    (with ``geometry``) the simplified polygons with their position ``i`` as property."""
    points = regions.geometry.representative_point()
    names = [
        [str(latn), str(nat), str(cntr), round(float(pt.y), 4), round(float(pt.x), 4)]
        for latn, nat, cntr, pt in zip(
            regions["NAME_LATN"], regions["NUTS_NAME"], regions["CNTR_CODE"], points, strict=True
        )
    ]
    out: dict[str, Any] = {"ids": [str(i) for i in regions.index], "names": names}
    if geometry:
        shapes = gpd.GeoDataFrame(
            {"i": np.arange(len(regions))}, geometry=display_geometry(regions).values, crs=4326
        )
        out["regions"] = feature_collection(shapes, precision=4)
    return out


def numbers(values: Any, digits: int) -> list[float | None]:
    """Rounded numbers for the payload, ``None`` for NaN."""
    return [
        None if v is None or not math.isfinite(float(v)) else round(float(v), digits)
        for v in values
    ]


def indicator_legend(
    classes: Classes, digits: int, label: str, unit: str, _: Text
) -> dict[str, Any]:
    """The indicator's classes as the payload and the legend show them."""
    return {
        "label": label,
        "unit": unit,
        "digits": digits,
        "colours": classes.colours,
        "labels": classes.labels(digits),
        "nodata": [NO_DATA_COLOUR, _("No data")],
    }


def popup_text(_: Text) -> dict[str, str]:
    """The popups' and controls' words, in the page's language."""
    return {
        "code": _("NUTS code"),
        "name": _("Name"),
        "national": _("National name"),
        "country": _("Country"),
        "year": _("Year"),
        "value": _("Value"),
        "flag": _("Eurostat flag"),
        "indicator_class": _("Indicator class"),
        "klass": _("Hot-spot class"),
        "neighbours": _("Neighbours"),
        "none": _("none"),
        "catchment": _("Catchment"),
        "members": _("Member regions"),
        "countries": _("Countries"),
        "area": _("Surface area"),
        "open_catchment": _("Open the catchment page"),
    }


def empty_map(tiles: str | None, tiles_attribution: str, *, embed: bool = False) -> folium.Map:
    """A map without folium's default tiles (none are reachable offline); an embedded map
    opens its links in the page around its iframe."""
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=False, zoom_snap=0.25)
    root: Any = m.get_root()
    root.header.add_child(folium.Element('<link rel="icon" href="data:,">'))
    if embed:
        root.header.add_child(folium.Element('<base target="_top">'))
    if tiles:
        folium.TileLayer(
            tiles, attr=tiles_attribution, name="Basemap", overlay=True, control=False
        ).add_to(m)
    return m


def year_index(frame: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    """``frame`` (indexed by region) in the order of ``ids``."""
    return frame.reindex(pd.Index(ids, name=frame.index.name))


def view_bounds(regions: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    """The bounds a map opens on: every region but far-off ones (the outermost regions of
    a Europe-wide layer), those whose inner point lies more than three interquartile ranges
    from the median in longitude or latitude."""
    points = regions.geometry.representative_point()
    coords = np.column_stack([points.x.to_numpy(), points.y.to_numpy()])
    median = np.median(coords, axis=0)
    iqr = np.subtract(*np.percentile(coords, [75, 25], axis=0))
    near = (np.abs(coords - median) <= 3 * np.maximum(iqr, 1.0)).all(axis=1)
    minx, miny, maxx, maxy = regions[near].total_bounds
    return float(minx), float(miny), float(maxx), float(maxy)


_VIEWPORT = re.compile(r'<meta name="viewport"[^>]*>', re.S)


def render_page(m: folium.Map, lang: str) -> str:
    """The map's HTML page in language ``lang``, which the reader may zoom (folium's page
    has no language and forbids zooming, which WCAG 1.4.4 asks to allow)."""
    page = m.get_root().render()
    page = page.replace("<html>", f'<html lang="{lang}">', 1)
    viewport = '<meta name="viewport" content="width=device-width, initial-scale=1">'
    return _VIEWPORT.sub(viewport, page, count=1)
