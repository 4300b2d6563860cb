"""Peak resident memory of this process and of the workers of a dask cluster."""

from __future__ import annotations

import resource
import sys
from typing import Any

# ru_maxrss is in kibibytes on Linux and in bytes on macOS.
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024


def peak_rss_mb() -> float:
    """Peak resident set size of the calling process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _RSS_UNIT / 2**20


def worker_peak_rss_mb(client: Any) -> dict[str, float]:
    """Peak RSS of every worker process of a ``distributed.Client``, by worker address."""
    return dict(client.run(peak_rss_mb))
