"""The load generator of the OGC benchmark: N concurrent keep-alive clients on loopback.

Each client is a thread with its own ``http.client.HTTPConnection`` (HTTP/1.1 keep-alive,
``TCP_NODELAY``); the body is read whole. The threads connect first, then start together
and send request after request, each as soon as the previous response is read (a closed
loop, no think time), until the deadline. The request in flight at the deadline is read to
its end and counted, so every request sent is measured; throughput is the requests
completed over the time from the start to the last completion.

Every response is checked while the load runs: status 200 and the number of
``"Feature"`` members in the body (a byte count, cheap enough not to load the client).
One response before the load and one after it are parsed whole (:func:`check_collection`).
"""

from __future__ import annotations

import http.client
import json
import resource
import socket
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

FEATURE = b'"Feature"'  # "type": "Feature" once per feature ("FeatureCollection" differs)


@dataclass(frozen=True)
class Target:
    """What every client requests."""

    host: str
    port: int
    path: str
    headers: dict[str, str]


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]
    seconds: float


@dataclass
class Sample:
    """One request of the load: when it was sent and read, and what came back."""

    sent: float
    done: float
    status: int
    body_bytes: int
    features: int


@dataclass
class Load:
    """The measured phase: every request, the wall time and the client's CPU time."""

    clients: int
    duration_s: float  # issue window
    elapsed_s: float  # start to last completion
    samples: list[Sample]
    client_cpu_s: float
    errors: list[str] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return sorted(s.done - s.sent for s in self.samples)

    def summary(self, features: int) -> dict[str, Any]:
        """Requests/s, latency percentiles, bytes and the checks of every response."""
        lat = self.latencies
        statuses = Counter(s.status for s in self.samples)
        sizes = [s.body_bytes for s in self.samples]
        bad = sum(1 for s in self.samples if s.status != 200 or s.features != features)
        return {
            "clients": self.clients,
            "duration_s": self.duration_s,
            "elapsed_s": self.elapsed_s,
            "requests": len(self.samples),
            "rps": len(self.samples) / self.elapsed_s if self.elapsed_s else 0.0,
            "p50_s": percentile(lat, 50),
            "p95_s": percentile(lat, 95),
            "mean_s": statistics.fmean(lat) if lat else None,
            "max_s": lat[-1] if lat else None,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "bad_responses": bad,
            "body_bytes_min": min(sizes) if sizes else None,
            "body_bytes_max": max(sizes) if sizes else None,
            "client_cpu_s": self.client_cpu_s,
            "client_errors": self.errors[:5],
            "client_error_count": len(self.errors),
        }


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation, like numpy's default)."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def connect(target: Target, timeout: float) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    conn.connect()
    assert conn.sock is not None
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def request(conn: http.client.HTTPConnection, target: Target) -> Response:
    """One GET on an open connection; the whole body is read."""
    sent = time.perf_counter()
    conn.request("GET", target.path, headers=target.headers)
    resp = conn.getresponse()
    body = resp.read()
    seconds = time.perf_counter() - sent
    headers = {k.lower(): v for k, v in resp.getheaders()}
    if resp.will_close:
        conn.close()
    return Response(resp.status, body, headers, seconds)


def fetch(target: Target, timeout: float = 120.0) -> Response:
    """One request on a fresh connection (validation and warm-up)."""
    conn = connect(target, timeout)
    try:
        return request(conn, target)
    finally:
        conn.close()


def run_load(target: Target, clients: int, seconds: float, timeout: float = 120.0) -> Load:
    """``clients`` closed-loop clients for ``seconds``; in-flight requests are completed."""
    conns = [connect(target, timeout) for _ in range(clients)]
    samples: list[Sample] = []
    errors: list[str] = []
    lock = threading.Lock()
    go = threading.Event()
    start = [0.0]

    def client(conn: http.client.HTTPConnection) -> None:
        go.wait()
        deadline = start[0] + seconds
        mine: list[Sample] = []
        try:
            while time.perf_counter() < deadline:
                if conn.sock is None:  # the server closed the connection
                    conn = connect(target, timeout)
                sent = time.perf_counter()
                conn.request("GET", target.path, headers=target.headers)
                resp = conn.getresponse()
                body = resp.read()
                done = time.perf_counter()
                mine.append(Sample(sent, done, resp.status, len(body), body.count(FEATURE)))
                if resp.will_close:
                    conn.close()
        except (OSError, http.client.HTTPException) as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
            with lock:
                samples.extend(mine)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in conns]
    for t in threads:
        t.start()
    cpu0 = _cpu_s()
    start[0] = time.perf_counter()
    go.set()
    for t in threads:
        t.join(seconds + timeout)
    cpu = _cpu_s() - cpu0
    last = max((s.done for s in samples), default=start[0])
    return Load(clients, seconds, last - start[0], samples, cpu, errors)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def check_collection(body: bytes, expected_ids: set[str]) -> dict[str, Any]:
    """Parse a FeatureCollection whole: counts, ids, geometries and coordinates."""
    doc = json.loads(body)
    features = doc.get("features", [])
    ids = [str(f.get("id")) for f in features]
    geometries = [f.get("geometry") for f in features]
    return {
        "type": doc.get("type"),
        "features": len(features),
        "number_matched": doc.get("numberMatched"),
        "number_returned": doc.get("numberReturned"),
        "ids_match": set(ids) == expected_ids and len(ids) == len(set(ids)),
        "null_geometries": sum(1 for g in geometries if not g),
        "positions": sum(_positions(g["coordinates"]) for g in geometries if g),
        "members": sorted(doc),
        "property_names": sorted(features[0].get("properties", {})) if features else [],
    }


def _positions(coords: Any) -> int:
    """Number of positions in a GeoJSON coordinates array."""
    if coords and isinstance(coords[0], (int, float)):
        return 1
    return sum(_positions(c) for c in coords)
