"""Fine layers drawn from AlpClusters' own vector tiles instead of one large GeoJSON.

A map with more than :data:`FINE_LAYER_REGIONS` regions draws their shapes with
Leaflet.VectorGrid (served from ``/static/vectorgrid``, installed from the npm registry like
Leaflet) from ``/ogc/collections/analysis-{id}-regions/tiles/WebMercatorQuad/{z}/{y}/{x}``;
``static/js/atlas.js`` colours them from the page's payload by the tiles' ``region``
property, as it colours the GeoJSON layer of smaller maps.
"""

from __future__ import annotations

from dataclasses import dataclass

from folium.map import CustomPane
from folium.plugins import VectorGridProtobuf

from maps.styles import OUTLINE_STYLE

FINE_LAYER_REGIONS = 1000  # above this many regions a layer is drawn from vector tiles
VECTORGRID_JS = "vectorgrid/Leaflet.VectorGrid.bundled.min.js"  # under the static URL
PANE = "ac-region-tiles"
PANE_Z_INDEX = 390  # above the country outlines (350), below catchment outlines (400)


@dataclass(frozen=True)
class VectorTiles:
    """Where a layer's tiles are: a URL template with ``{z}``, ``{y}`` and ``{x}``, and the
    name of the tiles' layer (the collection id)."""

    url: str
    layer: str


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


def region_pane() -> CustomPane:
    """The pane of the tiled regions: above the country outlines, below the catchments."""
    return CustomPane(PANE, z_index=PANE_Z_INDEX, pointer_events=True)
