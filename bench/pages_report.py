"""Case 7 in the benchmark table: the result map page in headless Chromium, against folium.

One row per map: the median time to interactive of ours and of the folium reference in
the time columns, ref / ours in the ratio column, the page's HTML in MB (10^6 B) in the
two size columns. The notes carry a small table of both sides of both maps (HTML and
transferred bytes, requests, median, min and max time to interactive, how ready was
told, clicks answered), the byte ratios, the targets one by one, and the checks.
"""

from __future__ import annotations

from typing import Any

from bench.cases import PAGES_SIDE, PAGES_TARGETS
from bench.report import Record, Records, Report, Row, _ok

CASE = "pages-map"
TAGS = {"alpine": "7a", "europe": "7b"}
SIDE_NAME = {"ours": "ours", "ref": "folium"}
COLUMNS = (
    ("map", "<"),
    ("side", "<"),
    ("HTML B", ">"),
    ("transferred B", ">"),
    ("requests", ">"),
    ("ready med s", ">"),
    ("min s", ">"),
    ("max s", ">"),
    ("+frame s", ">"),
    ("HTML end s", ">"),
    ("ready by", "<"),
    ("clicks", "<"),
)


def _mb(n: float | None) -> str | None:
    return None if n is None else f"{n / 1e6:.2f} MB"


def _map_label(m: Record) -> str:
    return f"{m['label']} {m['n']:,}"


def _met(m: Record) -> tuple[bool, list[str]]:
    """Both targets of a map, and ours' clicks answered; the reasons, one by one."""
    max_bytes, max_s = PAGES_TARGETS[m["key"]]
    ours = m["ours"]
    small = ours["html_bytes"] is not None and ours["html_bytes"] < max_bytes
    fast = ours["ready_median_s"] < max_s
    clicks = ours["clicks_ok"] == len(ours["loads"])
    why = [
        f"HTML {'met' if small else 'NOT met'} ({ours['html_bytes']:,} B "
        f"{'<' if small else '>='} {max_bytes / 1e6:g} MB)",
        f"interactive {'met' if fast else 'NOT met'} (median {ours['ready_median_s']:.2f} s "
        f"{'<' if fast else '>='} {max_s:g} s)",
        f"clicks answered {ours['clicks_ok']}/{len(ours['loads'])}",
    ]
    return small and fast and clicks, why


def _row(m: Record) -> Row:
    tag = TAGS.get(m["key"], "7")
    max_bytes, max_s = PAGES_TARGETS[m["key"]]
    ours, ref = m["ours"], m["ref"]
    row = Row(f"{tag} Result map {_map_label(m)} reg, Gi* {m['year']}")
    row.ours_s, row.esda_s = ours["ready_median_s"], ref["ready_median_s"]
    row.ratio = ref["ready_median_s"] / ours["ready_median_s"] if ours["ready_median_s"] else None
    row.ours_mb, row.esda_mb = _mb(ours["html_bytes"]), _mb(ref["html_bytes"])
    row.target = f"HTML < {max_bytes / 1e6:g} MB, ready < {max_s:g} s"
    row.met, _why = _met(m)
    return row


def _cells(m: Record, side: str) -> list[str]:
    d = m[side]
    return [
        _map_label(m),
        SIDE_NAME[side],
        f"{d['html_bytes']:,}",
        f"{d['transfer_bytes']:,.0f}",
        f"{d['requests']:.0f}",
        f"{d['ready_median_s']:.3f}",
        f"{d['ready_min_s']:.3f}",
        f"{d['ready_max_s']:.3f}",
        f"{d['ready_frame_median_s'] - d['ready_median_s']:.3f}",
        f"{_median_of(d, 'response_end_s'):.3f}",
        f"{', '.join(d['ready_by'])} ({', '.join(d.get('ready_clock', []))})",
        f"{d['clicks_ok']}/{len(d['loads'])}",
    ]


def _median_of(d: Record, key: str) -> float:
    values = sorted(load[key] for load in d["loads"] if load.get(key) is not None)
    if not values:
        return float("nan")
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def side_table(maps: list[Record]) -> list[str]:
    cells = [[name for name, _ in COLUMNS]]
    cells += [_cells(m, side) for m in maps for side in ("ours", "ref")]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    fmt = "  ".join(
        f"{{:{align}{width}}}" for (_, align), width in zip(COLUMNS, widths, strict=True)
    )
    return [fmt.format(*line).rstrip() for line in cells]


def _ratios(m: Record) -> str:
    ours, ref = m["ours"], m["ref"]
    return (
        f"{TAGS.get(m['key'], '7')} ratios ref/ours: time to interactive "
        f"{ref['ready_median_s'] / ours['ready_median_s']:.2f}x, HTML bytes "
        f"{ref['html_bytes'] / ours['html_bytes']:.2f}x, transferred bytes "
        f"{ref['transfer_bytes'] / ours['transfer_bytes']:.2f}x"
    )


def _types(d: Record) -> str:
    return ", ".join(
        f"{kind} {v['requests']} ({v['bytes']:,} B)" for kind, v in sorted(d["by_type"].items())
    )


def _map_notes(m: Record) -> list[str]:
    tag = TAGS.get(m["key"], "7")
    ours, ref = m["ours"], m["ref"]
    _met_, why = _met(m)
    analysis = m["analysis"]
    notes = [
        _ratios(m),
        f"{tag} targets: " + "; ".join(why),
        f"{tag} analysis {analysis['id']}: area {m['area']}, NUTS 3, {m['year']}, "
        f"{m['n']:,} regions in regions.geojson (n_regions {analysis['n_regions']}), "
        f"POST /analyses -> done in {analysis['seconds']:.1f} s; page {m['url']}",
        f"{tag} requests ours: {_types(ours)}; folium: {_types(ref)}",
        f"{tag} untimed warm-up load (the server's first render of the page): ours "
        f"{ours['warm_up']['ready_s']:.2f} s, folium {ref['warm_up']['ready_s']:.2f} s; "
        f"reference page {ref['page']['bytes']:,} B, {len(ref['page']['fields'])} tooltip "
        f"fields, view: {ref['page']['view']} ({_view(ours['warm_up']['view'])})",
    ]
    if not ours["ready_flag"]:
        notes.append(
            f"{tag} ours: window.acReady was not true within 5 s on some loads: ready there = "
            f"the first path.leaflet-interactive in the DOM (ready_flag false in the record)"
        )
    for side in ("ours", "ref"):
        d = m[side]
        problems = []
        if d["external_requests"]:
            problems.append(f"requests off the loopback {d['external_requests'][:3]}")
        if d["failed_requests"]:
            problems.append(f"failed requests {d['failed_requests'][:3]}")
        if d["js_error_count"]:
            problems.append(f"{d['js_error_count']} JS errors {d['js_errors'][:2]}")
        if not d["network_idle"]:
            problems.append("the network was not idle 15 s after ready")
        if problems:
            notes.append(f"{tag} {SIDE_NAME[side]}: " + "; ".join(problems))
    return notes


def _view(view: Record | None) -> str:
    if not view:
        return "unknown"
    return (
        f"zoom {view['zoom']:g} at {view['lat']:.3f}, {view['lon']:.3f}, map "
        f"{view['width']}x{view['height']} px"
    )


def _protocol(rec: Record) -> list[str]:
    counts = rec["europe_coverage"]
    years = ", ".join(f"{n:,} in {y}" for y, n in counts.items())
    return [
        f"7 protocol: one server (services.app.create_app under uvicorn, a fresh SQLite store "
        f"with load_demo) serves both pages; headless Chromium {rec['chromium']} (Debian, "
        f"Playwright {rec['versions']['playwright']}), viewport {rec['viewport']['width']}x"
        f"{rec['viewport']['height']}; per map one untimed warm-up load per side, then "
        f"{rec['loads']} timed loads per side, ours and folium alternately, each in a new "
        "browser context with the cache disabled",
        "7 ready: ours = window.acReady === true, timed by the page's window.acReadyAt (else "
        "by a setter injected before the page's scripts; no flag within 5 s: the first region "
        "path, ready_flag false); folium = the first path.leaflet-interactive in the DOM (a "
        "MutationObserver; folium adds every region in one call); in s since navigation "
        "start (performance.now()). +frame s: from ready to the next frame; HTML end s: the "
        "page's HTML received (responseEnd). Untimed after each load: a click inside a region "
        "must open ours' popup or folium's tooltip (clicks)",
        "7 bytes: HTML B = the decoded body of the page's own response; transferred B = "
        "bodies as sent + response headers of every request until the network is idle "
        "(Playwright request.sizes())",
        f"7 inputs: nama_10r_3gdp EUR_HAB; Europe's year has the most regions with a value "
        f"({years}); folium {rec['versions']['folium']}; reference = folium.Map + "
        f"folium.GeoJson(regions.geojson of the analysis, tooltip = every property, colour = "
        f"Gi* class), Leaflet from /static/leaflet/ (maps.assets.localise); setup "
        f"{rec['setup_s']:.1f} s, 1-min load average {rec['load_1min']:.1f}",
    ]


def pages_report(records: Records) -> Report:
    """Rows 7a and 7b, and the notes of case 7."""
    rec = records.get((CASE, PAGES_SIDE))
    if rec is None:
        return Report([], [])
    if not _ok(rec):
        return Report([Row("7 Result map pages")], [f"7: FAILED: {rec['error']}"])
    maps: list[dict[str, Any]] = rec["maps"]
    rows = [_row(m) for m in maps]
    notes = _protocol(rec) + [f"7 {line}" for line in side_table(maps)]
    for m in maps:
        notes += _map_notes(m)
    return Report(rows, notes)
