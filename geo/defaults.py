"""Documented defaults shared by the library, the service and the CLI (no heavy imports)."""

DEFAULT_SEED = 123456789  # GeoDa's default seed
DEFAULT_PERMUTATIONS = 999
DEFAULT_ALPHA = 0.05
COVERAGE_FOR_DEFAULT_YEAR = 0.95  # a missing country would distort cross-border results
