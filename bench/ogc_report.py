"""Case 6 in the benchmark table: OGC API – Features items under load, ours against pygeoapi.

The table rows put the p50 latency under load in the time columns and ours' requests/s
over pygeoapi's in the ratio column; the notes carry a small table of every side
(requests/s, latencies, bytes per response, CPU), the checks and the protocol.
"""

from __future__ import annotations

from bench.cases import OGC_MIN_RPS_RATIO, OURS, PYGEOAPI_GEOJSON, PYGEOAPI_PARQUET
from bench.report import Record, Records, Report, Row, _ok

CASE = "ogc-items"
REFERENCES = (("6a", PYGEOAPI_PARQUET, "Parquet"), ("6b", PYGEOAPI_GEOJSON, "GeoJSON"))
SIDE_NAME = {
    OURS: "ours",
    PYGEOAPI_PARQUET: "pygeoapi Parquet",
    PYGEOAPI_GEOJSON: "pygeoapi GeoJSON",
}
COLUMNS = (
    ("side", "<"),
    ("req/s", ">"),
    ("p50 s", ">"),
    ("p95 s", ">"),
    ("requests", ">"),
    ("bytes/response", ">"),
    ("1st s", ">"),
    ("alone s", ">"),
    ("server CPU", ">"),
    ("client CPU", ">"),
    ("checks", "<"),
)


def _met(ours: Record, ref: Record) -> bool:
    """The target: at least 2x pygeoapi's requests/s at a p50 latency not above its, and
    both sides' responses all correct."""
    return (
        ours["valid"]
        and ref["valid"]
        and ours["rps"] >= OGC_MIN_RPS_RATIO * ref["rps"]
        and ours["p50_s"] <= ref["p50_s"]
    )


def _row(tag: str, name: str, ours: Record | None, ref: Record | None) -> Row:
    row = Row(f"{tag} OGC items 1,514 feat vs pygeoapi {name}")
    if _ok(ours):
        row.ours_s, row.ours_mb = ours["p50_s"], f"{ours['rss_mb']:.0f}"
    if _ok(ref):
        row.esda_s, row.esda_mb = ref["p50_s"], f"{ref['rss_mb']:.0f}"
        row.esda_first_s = ref["first_s"]
    row.target = f">= {OGC_MIN_RPS_RATIO:g}x req/s, p50 <= ref"
    if _ok(ours) and _ok(ref):
        row.ratio = ours["rps"] / ref["rps"] if ref["rps"] else None
        row.met = _met(ours, ref)
    return row


def _checks(record: Record) -> str:
    if not record["valid"]:
        return "FAILED"
    return f"{record['requests'] - record['bad_responses']}/{record['requests']} ok"


def _cells(side: str, record: Record) -> list[str]:
    return [
        SIDE_NAME.get(side, side),
        f"{record['rps']:.2f}",
        f"{record['p50_s']:.3f}",
        f"{record['p95_s']:.3f}",
        f"{record['requests']:,}",
        f"{record['bytes_per_response']:,}",
        f"{record['first_s']:.2f}",
        f"{record['solo_s']:.3f}",
        f"{record['server_cpu_share']:.2f} core",
        f"{record['client_cpu_share']:.2f} core",
        _checks(record),
    ]


def side_table(records: list[tuple[str, Record]]) -> list[str]:
    """The per-side numbers as an aligned text table."""
    cells = [[name for name, _ in COLUMNS]] + [_cells(side, rec) for side, rec in records]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    fmt = "  ".join(
        f"{{:{align}{width}}}" for (_, align), width in zip(COLUMNS, widths, strict=True)
    )
    return [fmt.format(*line).rstrip() for line in cells]


def _protocol(any_rec: Record) -> list[str]:
    versions = any_rec["versions"]
    return [
        f"6 protocol: GET .../collections/nuts-2021-level-3/items?limit=2000 (ours under /ogc), "
        f"Accept: application/geo+json, no compression; each server alone on the machine's "
        f"loopback: {any_rec['workers']} uvicorn process, started by the benchmark, 2 requests "
        f"parsed and checked, then {any_rec['clients']} closed-loop keep-alive clients "
        f"(threads of one process, http.client) for {any_rec['duration_s']:g} s; the "
        f"requests in flight at the end are completed and counted; the servers in turn",
        "6 columns: ours s / ref s = p50 latency under load; ratio = ours req/s / pygeoapi "
        "req/s; ref 1st s = pygeoapi's first request; MiB = peak RSS (VmHWM) of the server",
        f"6 versions: pygeoapi {versions['pygeoapi']} (starlette_app:APP), uvicorn "
        f"{versions['uvicorn']}, starlette {versions['starlette']}, fastapi "
        f"{versions['fastapi']}, pyarrow {versions['pyarrow']}, geopandas "
        f"{versions['geopandas']}",
    ]


def _side_notes(side: str, record: Record) -> list[str]:
    name = SIDE_NAME.get(side, side)
    check = record["check"]
    notes = [
        f"6 {name}: {check['features']:,} features, numberMatched {check['number_matched']}, "
        f"numberReturned {check['number_returned']}, ids = the layer's NUTS codes: "
        f"{'yes' if check['ids_match'] else 'NO'}, {check['positions']:,} positions, "
        f"{check['content_type']}; responses {record['statuses']}, body "
        f"{record['body_bytes_min']:,}-{record['body_bytes_max']:,} B; started in "
        f"{record['startup_s']:.1f} s; 1-min load average {record['load_1min'][0]:.1f} "
        f"before, {record['load_1min'][1]:.1f} after"
    ]
    if record.get("s3fs_stub"):
        notes.append(
            f"6 {name}: s3fs is not installed; pygeoapi's Parquet provider imports it for "
            "s3:// sources only, so a stand-in module is on the server's path (bench/pygeoapi)"
        )
    if record["client_error_count"]:
        notes.append(f"6 {name}: client errors {record['client_errors']}")
    return notes


def ogc_report(records: Records) -> Report:
    """Rows 6a and 6b, and the notes of case 6."""
    present = [
        (side, records[(CASE, side)])
        for side in (OURS, PYGEOAPI_PARQUET, PYGEOAPI_GEOJSON)
        if (CASE, side) in records
    ]
    if not present:
        return Report([], [])
    ours = records.get((CASE, OURS))
    rows = [
        _row(tag, name, ours, records.get((CASE, side)))
        for tag, side, name in REFERENCES
        if (CASE, side) in records
    ]
    good = [(side, rec) for side, rec in present if _ok(rec)]
    notes: list[str] = []
    if good:
        notes += _protocol(good[0][1])
        notes += [f"6 {line}" for line in side_table(good)]
        for side, rec in good:
            notes += _side_notes(side, rec)
    notes += [
        f"6 {SIDE_NAME.get(side, side)}: FAILED: {rec['error']}"
        for side, rec in present
        if not _ok(rec)
    ]
    return Report(rows, notes)
