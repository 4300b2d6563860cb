"""The AlpClusters web service (FastAPI) and command-line interface."""
