"""Folium (Leaflet) rendering of AlpClusters results. Imports ``geo``, never ``services``."""
