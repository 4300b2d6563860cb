"""AlpClusters geospatial library: boundaries, indicators, spatial weights, hot spots, catchments.

The package is free of web code: nothing here imports FastAPI, Starlette or folium.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
