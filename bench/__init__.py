"""Benchmarks of AlpClusters against the reference libraries, run with ``make bench``."""
