"""Zonal statistics of a large raster (geo.rasters.zonal_stats) against rasterstats.

``python -m bench.rasters`` (``--quick`` for small sizes) writes, untimed, a seeded
synthetic field (smooth waves + Gaussian noise, float32) over the Alpine Space bounds in
EPSG:3035 twice: 20,000 x 20,000 pixels and 4,000 x 4,000 pixels (the same field sampled
on a 5x coarser grid), tiled 512 x 512, DEFLATE, written 512 rows at a time. Files go to
``bench/out/rasters/`` (git-ignored) and are reused while their sidecar matches.

Each side runs in its own ``python -m bench.rasters child SIDE`` process (its peak RSS,
``ru_maxrss``, is its own), over the 272 Alpine Space NUTS-3 regions:

* ``ours-big-centre`` / ``ours-big-fraction``: the 20k raster, centre-point and
  coverage-weighted, timed once (peak RSS target < 2 GB);
* ``ours-small``: the 4k raster, centre-point mode, best of 3 after one warm-up call;
* ``rasterstats-small``: ``rasterstats.zonal_stats(..., all_touched=False)`` on the same
  4k raster and the same EPSG:3035 geometries, best of up to 3 (10 s budget).

Counts, minima and maxima of ours-small and rasterstats must be equal; the means agree
to float32 rounding only (relative < 1e-6), because rasterstats averages the float32
pixels in float32 (numpy masked mean) while ours accumulates in float64. The ratio is
rasterstats' time over ours (target >= 3x).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.memory import peak_rss_mb
from bench.timing import best_of, timed

OUT = Path(__file__).resolve().parent / "out" / "rasters"
SIDES = ("ours-big-centre", "ours-big-fraction", "ours-small", "rasterstats-small")
FULL_SIZES = {"big": 20_000, "small": 4_000}
QUICK_SIZES = {"big": 3_000, "small": 1_000}
GENERATOR = 1
SEED = 20240901
STATS = ("count", "sum", "mean", "min", "max")
RATIO_TARGET = 3.0
RSS_TARGET_MB = 2e9 / 2**20


def regions() -> Any:
    """The 272 Alpine Space NUTS-3 regions (real boundaries from the mirror), EPSG:3035."""
    from geo.areas import resolve
    from geo.boundaries import load_boundaries
    from geo.settings import Settings

    settings = Settings()
    layer = load_boundaries(settings)
    ids = resolve(settings, layer, "alpine-space", 3)
    return layer.loc[ids, ["geometry"]].to_crs(3035)


def field(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Smooth waves in metres of EPSG:3035 plus Gaussian noise (sd 5)."""
    smooth = 1000 + 500 * np.sin(x / 40e3) * np.cos(y / 55e3) + 200 * np.sin((x + y) / 13e3)
    return (smooth + rng.normal(0.0, 5.0, smooth.shape)).astype(np.float32)


def write_field(path: Path, side: int, bounds: tuple[float, ...]) -> None:
    """A ``side`` x ``side`` tiled GeoTIFF over ``bounds``, written 512 rows at a time."""
    import rasterio
    from rasterio.transform import from_bounds
    from rasterio.windows import Window

    transform = from_bounds(*bounds, side, side)
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 1, "dtype": "float32"}
    profile |= {"crs": "EPSG:3035", "transform": transform, "tiled": True, "blockxsize": 512}
    profile |= {"blockysize": 512, "compress": "deflate", "zlevel": 1, "BIGTIFF": "IF_SAFER"}
    rng = np.random.default_rng([SEED, side])
    xs = transform.c + transform.a * (np.arange(side) + 0.5)
    with rasterio.open(path, "w", **profile) as ds:
        for row in range(0, side, 512):
            h = min(512, side - row)
            ys = transform.f + transform.e * (np.arange(row, row + h) + 0.5)
            ds.write(field(xs[None, :], ys[:, None], rng), 1, window=Window(0, row, side, h))


def inputs(out: Path, quick: bool) -> dict[str, Path]:
    """Write (or reuse) both rasters; their paths by size name."""
    out.mkdir(parents=True, exist_ok=True)
    sizes = QUICK_SIZES if quick else FULL_SIZES
    bounds = tuple(float(b) for b in regions().total_bounds)
    paths = {}
    for name, side in sizes.items():
        path = out / f"field-{side}.tif"
        meta = {"generator": GENERATOR, "seed": SEED, "side": side, "bounds": bounds}
        sidecar = path.with_suffix(".json")
        fresh = path.is_file() and sidecar.is_file()
        if not (fresh and json.loads(sidecar.read_text())["meta"] == meta):
            started = time.perf_counter()
            write_field(path, side, bounds)
            sidecar.write_text(json.dumps({"meta": meta, "bytes": path.stat().st_size}))
            log(f"wrote {path.name} ({time.perf_counter() - started:.0f} s)")
        paths[name] = path
    return paths


def run_ours(path: Path, mode: str, repeat: bool) -> tuple[Any, float, list[float]]:
    from geo.rasters import zonal_stats

    frame = regions()

    def call() -> Any:
        return zonal_stats(path, frame, STATS, mode=mode)  # type: ignore[arg-type]

    if not repeat:
        result, seconds = timed(call)
        return result, seconds, [seconds]
    timed(call)  # warm-up
    runs = best_of(call)
    return runs.result, runs.best, list(runs.runs)


def run_rasterstats(path: Path) -> tuple[Any, float, list[float]]:
    import pandas as pd
    from rasterstats import zonal_stats as rs_zonal

    frame = regions()

    def call() -> Any:
        out = rs_zonal(
            list(frame.geometry), str(path), stats=list(STATS), all_touched=False, nodata=-1e30
        )
        return pd.DataFrame(out, index=frame.index)

    runs = best_of(call)
    return runs.result, runs.best, list(runs.runs)


def child(side: str, out: Path, quick: bool) -> dict[str, Any]:
    """One side in this process: its record; the statistics go to ``OUT/SIDE.parquet``."""
    paths = inputs(out, quick)
    size = "small" if side.endswith("small") else "big"
    if side == "rasterstats-small":
        result, best, runs = run_rasterstats(paths[size])
    else:
        mode = "fraction" if side.endswith("fraction") else "centre"
        result, best, runs = run_ours(paths[size], mode, repeat=size == "small")
    result.astype(float).to_parquet(out / f"{side}.parquet")
    return {"side": side, "raster": paths[size].name, "time_s": best, "runs": runs,
            "rss_mb": peak_rss_mb(), "regions": len(result)}  # fmt: skip


def compare(out: Path) -> dict[str, float]:
    """Largest differences of ours-small (centre) against rasterstats."""
    import pandas as pd

    ours = pd.read_parquet(out / "ours-small.parquet")
    ref = pd.read_parquet(out / "rasterstats-small.parquet")
    diff = {f"max |d {s}|": float(np.nanmax(np.abs(ours[s] - ref[s]))) for s in STATS}
    for s in ("sum", "mean"):  # rasterstats accumulates float32 pixels in float32
        diff[f"max rel d {s}"] = float(np.nanmax(np.abs(ours[s] / ref[s] - 1)))
    diff["regions with pixels"] = float((ref["count"] > 0).sum())
    return diff


def log(message: str) -> None:
    print(f"[bench.rasters] {message}", file=sys.stderr, flush=True)


def run_side(side: str, out: Path, quick: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.rasters", "child", side, "--out", str(out)]
    proc = subprocess.run(command + (["--quick"] if quick else []), capture_output=True, text=True)
    if proc.returncode != 0:
        return {"side": side, "error": proc.stderr.strip().splitlines()[-5:]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def render(records: dict[str, dict[str, Any]], checks: dict[str, float]) -> str:
    """The table: time, peak RSS and the targets."""
    lines = [f"{'side':20} {'raster':18} {'time s':>8} {'peak MiB':>9}"]
    for side, rec in records.items():
        if "error" in rec:
            lines.append(f"{side:20} FAILED {rec['error']}")
            continue
        lines.append(f"{side:20} {rec['raster']:18} {rec['time_s']:8.2f} {rec['rss_mb']:9.0f}")
    small, ref = records.get("ours-small", {}), records.get("rasterstats-small", {})
    if "time_s" in small and "time_s" in ref:
        ratio = ref["time_s"] / small["time_s"]
        lines.append(f"ratio rasterstats / ours (4k, centre): {ratio:.1f}x (target >= 3x)")
    for side in ("ours-big-centre", "ours-big-fraction"):
        if "rss_mb" in records.get(side, {}):
            ok = records[side]["rss_mb"] < RSS_TARGET_MB
            lines.append(f"{side} peak RSS < 2 GB ({RSS_TARGET_MB:.0f} MiB): {ok}")
    lines += [f"check {k}: {v:.3g}" for k, v in checks.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rasters", description=__doc__)
    parser.add_argument("what", nargs="?", default="all", choices=("all", "child"))
    parser.add_argument("side", nargs="?", choices=SIDES)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.what == "child":
        print(json.dumps(child(args.side, args.out, args.quick), default=float))
        return 0
    inputs(args.out, args.quick)
    records = {side: run_side(side, args.out, args.quick) for side in SIDES}
    ok = all("error" not in r for r in records.values())
    checks = compare(args.out) if ok else {}
    print(render(records, checks))
    (args.out / "results.json").write_text(json.dumps({"records": records, "checks": checks}))
    exact = all(checks.get(f"max |d {s}|", 1.0) == 0 for s in ("count", "min", "max"))
    return 0 if ok and exact and checks.get("max rel d mean", 1.0) < 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
