"""Fine layers drawn from AlpClusters' own vector tiles instead of one large GeoJSON.

A map with more than :data:`FINE_LAYER_REGIONS` regions draws its classes with
Leaflet.VectorGrid (served from ``/static/vectorgrid``, installed from the npm registry like
Leaflet) from ``/ogc/collections/analysis-{id}-regions/tiles/WebMercatorQuad/{z}/{y}/{x}``,
filtered to the series shown. Colours come from the same class tables as the GeoJSON layer
(:mod:`maps.styles`); tooltips and popups read the tile properties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
from folium.map import CustomPane
from folium.plugins import VectorGridProtobuf
from folium.template import Template

from maps.styles import GI_CLASSES, LISA_CLASSES, OUTLINE_STYLE, class_of

FINE_LAYER_REGIONS = 1000  # above this many regions a layer is drawn from vector tiles
VECTORGRID_JS = "vectorgrid/Leaflet.VectorGrid.bundled.min.js"  # under the static URL
PANE = "ac-region-tiles"
PANE_Z_INDEX = 390  # above the country outlines (350), below catchment outlines (400)
STYLE = {"fill": True, "fillOpacity": 0.85, "color": "#555555", "weight": 0.6, "opacity": 1}
HIGHLIGHT = {"weight": 2.5, "color": "#000000"}


@dataclass(frozen=True)
class VectorTiles:
    """Where a layer's tiles are: a URL template with ``{z}``, ``{y}`` and ``{x}``, and the
    name of the tiles' layer (the collection id)."""

    url: str
    layer: str


def class_table(method: str) -> dict[str, Any]:
    """What the browser needs to colour a region as :func:`maps.styles.class_of` does.

    ``status`` maps statuses that decide the class alone (missing values, neighbourless Gi*
    regions) to ``[colour, label]``; otherwise the property ``key`` (``bin`` or
    ``cluster``) is looked up in ``codes``.
    """
    key, codes = ("bin", GI_CLASSES) if method == "gi_star" else ("cluster", LISA_CLASSES)
    statuses = ("missing", "isolate") if method == "gi_star" else ("missing",)
    return {
        "key": key,
        "codes": {str(c): class_of(method, {"status": "ok", key: c}) for c in codes},
        "status": {s: class_of(method, {"status": s}) for s in statuses},
    }


def _local_js(layer: VectorGridProtobuf, static_url: str) -> None:
    """folium's default points at a public CDN: load our own copy instead."""
    layer.default_js = [("vectorGrid", f"{static_url.rstrip('/')}/{VECTORGRID_JS}")]


def outline_tiles(tiles: VectorTiles, pane: str, *, static_url: str) -> VectorGridProtobuf:
    """Country outlines from vector tiles: a plain, non-interactive background."""
    style = {"fill": True, **OUTLINE_STYLE}
    options = {"pane": pane, "interactive": False, "vectorTileLayerStyles": {tiles.layer: style}}
    layer = VectorGridProtobuf(tiles.url, name="Countries", options=options, control=False)
    _local_js(layer, static_url)
    return layer


class ClassTiles(VectorGridProtobuf):
    """Regions coloured by class from vector tiles, with a hover tooltip and a click popup."""

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        var {{ this.get_name() }} = (function (map) {
          var table = {{ this.table|tojson }}, names = {{ this.names|tojson }};
          var fields = {{ this.fields|tojson }}, base = {{ this.style|tojson }};
          function esc(s) {
            return String(s).replace(/[&<>"']/g, function (c) {
              return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
            });
          }
          function classOf(p) {
            return table.status[p.status] || table.codes[String(p[table.key])] || ["#bdbdbd", "–"];
          }
          function fmt(v, digits) {
            if (typeof v !== "number" || !isFinite(v)) { return "–"; }
            return v.toLocaleString("en-US",
              {minimumFractionDigits: digits, maximumFractionDigits: digits});
          }
          function describe(p) {
            var name = names[p.region] || ["", ""];
            var rows = [["NUTS", p.region], ["Name", name[0]], ["National name", name[1]],
              ["Value", fmt(p.value, 1)], [fields.stat, fmt(p[fields.stat], 2)],
              ["p", fmt(p[fields.p], 4)], ["Class", classOf(p)[1]],
              ["Catchment", p.catchment || "–"]];
            return "<table>" + rows.map(function (r) {
              return "<tr><th>" + esc(r[0]) + "</th><td>" + esc(r[1]) + "</td></tr>";
            }).join("") + "</table>";
          }
          var styles = {};
          styles[{{ this.layer|tojson }}] = function (p) {
            return Object.assign({}, base, {fillColor: classOf(p)[0]});
          };
          var layer = L.vectorGrid.protobuf({{ this.url|tojson }}, {
            pane: {{ this.pane|tojson }}, interactive: true, vectorTileLayerStyles: styles,
            getFeatureId: function (f) { return f.properties.id; }
          });
          var tip = L.tooltip({sticky: true});
          layer.on("mouseover", function (e) {
            var p = e.layer.properties;
            layer.setFeatureStyle(p.id,
              Object.assign({}, base, {fillColor: classOf(p)[0]}, {{ this.highlight|tojson }}));
            tip.setContent(describe(e.layer.properties)).setLatLng(e.latlng);
            map.openTooltip(tip);
          });
          layer.on("mousemove", function (e) { tip.setLatLng(e.latlng); });
          layer.on("mouseout", function (e) {
            layer.resetFeatureStyle(e.layer.properties.id);
            map.closeTooltip(tip);
          });
          layer.on("click", function (e) {
            L.popup().setLatLng(e.latlng).setContent(describe(e.layer.properties)).openOn(map);
          });
          return layer;
        })({{ this._parent.get_name() }});
        {%- endmacro %}
        """
    )

    def __init__(
        self,
        tiles: VectorTiles,
        regions: gpd.GeoDataFrame,
        method: str,
        p_column: str,
        *,
        static_url: str,
        name: str,
    ) -> None:
        super().__init__(tiles.url, name=name)
        _local_js(self, static_url)
        self.layer = tiles.layer
        self.table = class_table(method)
        self.fields = {"stat": "z" if method == "gi_star" else "I", "p": p_column}
        self.names = {
            str(code): [str(row["NAME_LATN"]), str(row["NUTS_NAME"])]
            for code, row in regions[["NAME_LATN", "NUTS_NAME"]].iterrows()
        }
        self.pane = PANE
        self.style = STYLE
        self.highlight = HIGHLIGHT


def region_pane() -> CustomPane:
    """The pane of the tiled regions: above the country outlines, below the catchments."""
    return CustomPane(PANE, z_index=PANE_Z_INDEX, pointer_events=True)
