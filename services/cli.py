"""The ``alpclusters`` command line: serve, data, ingest, demo, hotspots, catchments."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from geo.defaults import DEFAULT_ALPHA, DEFAULT_PERMUTATIONS, DEFAULT_SEED
from geo.errors import AlpClustersError, IngestError, describe
from services.cli_users import users_app

app = typer.Typer(
    help="AlpClusters: cross-border hot spots and cluster catchments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Boundaries and named areas.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(users_app, name="users")

Method = Annotated[str, typer.Option(help="gi_star or local_moran.")]
Weights = Annotated[str, typer.Option(help="queen, rook, knn:K or distance:KM.")]
Permutations = Annotated[int, typer.Option(help="Conditional permutations.")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
Alpha = Annotated[float, typer.Option(help="Significance level.")]
Correction = Annotated[str, typer.Option(help="none, fdr or bonferroni.")]
Inference = Annotated[str, typer.Option(help="Gi* classes from 'permutation' or 'normal' p.")]


def _settings() -> Any:
    from geo.settings import Settings

    return Settings()


def _store(settings: Any) -> Any:
    from geo.store import Store

    return Store(settings.database_url)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes sharing the store (PostgreSQL suits several best); "
            "each reads its settings from the environment.",
        ),
    ] = 1,
    log_level: Annotated[
        str, typer.Option(help="uvicorn's log level: critical, error, warning, info, debug.")
    ] = "info",
    timeout_keep_alive: Annotated[
        int,
        typer.Option(
            min=1,
            help="Seconds an idle keep-alive connection stays open (uvicorn's own default is "
            "5, which races with busy clients reusing a connection: resets under load); "
            "keep it longer than a proxy's or client's idle timeout.",
        ),
    ] = 75,
) -> None:
    """Start the web service."""
    import uvicorn

    from services.app import create_app

    settings = _settings()
    host, port = host or settings.host, port or settings.port
    if workers == 1:
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level=log_level,
            timeout_keep_alive=timeout_keep_alive,
        )
        return
    # Several processes: uvicorn imports the factory in each of them.
    uvicorn.run(
        "services.app:create_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level=log_level,
        timeout_keep_alive=timeout_keep_alive,
    )


@data_app.command("fetch")
def data_fetch(
    year: Annotated[int | None, typer.Option(help="NUTS version.")] = None,
    scale: Annotated[str | None, typer.Option(help="01M, 03M, 10M or 20M.")] = None,
) -> None:
    """Load a NUTS boundary layer from the mirror or GISCO into the cache."""
    from geo.boundaries import load_boundaries

    gdf = load_boundaries(_settings(), year, scale)
    counts = gdf.groupby("LEVL_CODE").size().to_dict()
    typer.echo(f"{len(gdf)} regions cached; per level: {counts}")


@data_app.command("import")
def data_import(
    path: Path,
    year: Annotated[int, typer.Option(help="NUTS version.")],
    scale: Annotated[str, typer.Option(help="01M, 03M, 10M or 20M.")],
) -> None:
    """Import a GISCO NUTS file downloaded by hand (GeoJSON, GeoPackage or GeoParquet)."""
    from geo.boundaries import import_layer

    gdf = import_layer(_settings(), path, year, scale)
    typer.echo(f"imported {len(gdf)} regions as NUTS {year} {scale}")


@data_app.command("areas")
def data_areas(
    level: Annotated[int, typer.Option(help="Count regions at this level.")] = 3,
) -> None:
    """List the named areas and how many regions each has at a level."""
    from geo.areas import named_areas, resolve
    from geo.boundaries import load_boundaries

    settings = _settings()
    layer = load_boundaries(settings)
    for name, area in named_areas(settings).items():
        try:
            n: int | str = len(resolve(settings, layer, name, level))
        except AlpClustersError:
            n = "-"
        typer.echo(f"{name:15} {n!s:>5}  {area.title}")


@app.command()
def ingest(
    path: Path,
    dataset: Annotated[str, typer.Option(help="Dataset id; a new version when it exists.")],
    title: Annotated[str | None, typer.Option(help="Title; default: the id.")] = None,
    description: str = "",
    source: str = "",
    licence: str = "",
    uploader: Annotated[str, typer.Option(help="Who uploads (provenance).")] = "",
    format: Annotated[
        str | None,
        typer.Option(
            help="tidy, wide, xlsx, eurostat-tsv, sdmx-csv or parquet; default: detected."
        ),
    ] = None,
    sheet: Annotated[str | None, typer.Option(help="XLSX sheet; default: the first.")] = None,
    encoding: Annotated[str | None, typer.Option(help="utf-8, utf-8-sig or cp1252.")] = None,
    delimiter: Annotated[str | None, typer.Option(help="',', ';' or 'tab'.")] = None,
    decimal: Annotated[str | None, typer.Option(help="'.' or ','.")] = None,
    indicator: Annotated[
        str | None, typer.Option(help="Indicator code of a table that names none.")
    ] = None,
    where: Annotated[list[str] | None, typer.Option(help="Keep rows with COLUMN=VALUE.")] = None,
    indicator_from: Annotated[
        list[str] | None, typer.Option(help="Columns that name the indicator.")
    ] = None,
    level: Annotated[
        list[int] | None, typer.Option(help="Keep only this NUTS level (repeatable).")
    ] = None,
    on_problem: Annotated[
        str,
        typer.Option(
            help="refuse: any problem refuses the file; "
            "skip: store the valid rows, problems become warnings."
        ),
    ] = "refuse",
    drop_unknown: Annotated[bool, typer.Option(help="Same as --on-problem skip.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only check the file; store nothing.")] = False,
) -> None:
    """Check a table (CSV, TSV, XLSX, Eurostat TSV/SDMX-CSV, Parquet) and store it as the next
    version of a dataset; the same checks as POST /datasets."""
    from geo.formats import ReadOptions
    from geo.uploads import UploadRequest, upload

    filters = {}
    for item in where or []:
        if "=" not in item:
            raise typer.BadParameter(f"--where {item!r}: use COLUMN=VALUE")
        key, value = item.split("=", 1)
        filters[key] = value
    if on_problem not in ("refuse", "skip"):
        raise typer.BadParameter(f"--on-problem {on_problem!r}: use refuse or skip")
    read = ReadOptions(
        format=format,
        sheet=int(sheet) if sheet and sheet.isdigit() else sheet,
        encoding=encoding,
        delimiter="\t" if delimiter in ("tab", "\\t") else delimiter,
        decimal=decimal,
        indicator=indicator,
        where=filters,
        indicator_from=indicator_from,
    )
    request = UploadRequest(
        dataset_id=dataset,
        title=title or "",  # the id for a new dataset; an existing one keeps its title
        description=description,
        source=source,
        licence=licence,
        uploader=uploader,
        read=read,
        levels=tuple(level) if level else None,
        on_problem="skip" if drop_unknown else on_problem,  # type: ignore[arg-type]
        file_name=str(path),
    )
    settings = _settings()
    outcome = upload(settings, _store(settings), path, request, dry_run=dry_run)
    for warning in outcome.report["warnings"]:
        _warn(warning)
    if dry_run:
        n = outcome.report["summary"]["rows_kept"]
        verdict = "ok" if outcome.ok else f"{len(outcome.report['problems'])} problem(s)"
        typer.echo(f"checked {path}: {n} rows, {verdict}")
        for problem in outcome.report["problems"]:
            typer.echo(f"  {describe(problem)}")
        return
    info = outcome.dataset
    assert info is not None
    state = "stored" if outcome.created else "unchanged"
    typer.echo(
        f"{state} {info.id}: {info.n_rows} rows, indicators {[i.code for i in info.indicators]}"
        f", version {info.version}"
    )


DEMO_ANALYST = "demo-analyst"


def demo_analyses() -> list[Any]:
    """The demo's analyses: hot spots of GDP per head (the defaults), and of the location
    quotient of manufacturing across the Alpine Space in 2018 (Gi*, queen, 9,999
    permutations, FDR 5 %)."""
    from geo.analysis import AnalysisParams

    return [
        AnalysisParams(dataset="nama_10r_3gdp"),
        AnalysisParams(
            dataset="lq_manufacturing",
            indicators=["LQ_C"],
            years=[2018],
            area="alpine-space",
            level=3,
            method="gi_star",
            weights="queen",
            permutations=9999,
            alpha=0.05,
            correction="fdr",
        ),
    ]


DEMO_EMERGING = "/maps/datasets/nama_10r_3gdp/emerging?start=2010&end=2021&permutations=9999"


@app.command()
def demo(
    analyse: Annotated[bool, typer.Option(help="Also run the default analysis.")] = True,
) -> None:
    """Load the boundaries and the demo datasets; run the demo's Gi* analyses."""
    from geo.indicators import load_demo
    from geo.jobs import AnalysisRunner

    settings = _settings()
    store = _store(settings)
    for info in load_demo(settings, store):
        typer.echo(f"dataset {info.id}: {info.n_rows} rows")
    if analyse:
        runner = AnalysisRunner(settings, store)
        for params in demo_analyses():
            record = runner.submit(params, wait=True, actor="demo")
            typer.echo(f"analysis {record.id}: {json.dumps(record.params)}")
            typer.echo(f"  map: /maps/analyses/{record.id}")
        typer.echo(f"emerging hot spots of GDP per head: {DEMO_EMERGING}")
    if not any(e["account"].name == DEMO_ANALYST for e in store.accounts.all()):
        _, key = store.accounts.add(DEMO_ANALYST, "analyst", days=30)
        typer.echo(f"analyst key for the start page's form (shown once): {key}")
    else:
        typer.echo(f"account {DEMO_ANALYST} exists: `alpclusters users key {DEMO_ANALYST}`")


def _params(
    method: str,
    weights: str,
    permutations: int,
    seed: int,
    alpha: float,
    correction: str,
    inference: str,
) -> Any:
    from pydantic import ValidationError

    from geo.analysis import AnalysisParams

    try:
        return AnalysisParams.model_validate(
            {
                "dataset": "-",
                "method": method,
                "weights": weights,
                "permutations": permutations,
                "seed": seed,
                "alpha": alpha,
                "correction": correction,
                "inference": inference,
            }
        )
    except ValidationError as exc:
        msgs = "; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(msgs) from None


def _file_command(kind: str) -> Any:
    """The ``hotspots`` and ``catchments`` commands: same inputs, different output table."""

    def command(
        input: Path,
        id: Annotated[str, typer.Option("--id", help="Column with unique region ids.")],
        value: Annotated[list[str], typer.Option("--value", help="Value column; repeatable.")],
        output: Annotated[Path, typer.Option("-o", "--output", help=".geojson, .parquet, .csv")],
        method: Method = "gi_star",
        weights: Weights = "queen",
        permutations: Permutations = DEFAULT_PERMUTATIONS,
        seed: Seed = DEFAULT_SEED,
        alpha: Alpha = DEFAULT_ALPHA,
        correction: Correction = "fdr",
        inference: Inference = "permutation",
    ) -> None:
        from geo.files import hotspots_file, read_vector, write_output

        params = _params(method, weights, permutations, seed, alpha, correction, inference)
        started = time.perf_counter()
        regions, catch = hotspots_file(read_vector(input, id, value), id, value, params)
        table = regions if kind == "regions" else catch
        write_output(table, output)
        took = time.perf_counter() - started
        typer.echo(f"wrote {len(table)} {kind} to {output} in {took:.2f} s")

    return command


@app.command()
def export(
    analysis: Annotated[str, typer.Argument(help="The analysis id (GET /analyses).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .tif to write.")],
    format: Annotated[str, typer.Option(help="cog: a Cloud-Optimized GeoTIFF.")] = "cog",
    kind: Annotated[
        str, typer.Option(help="classes (bands z, class, catchment) or kde (smoothed).")
    ] = "classes",
    indicator: Annotated[str | None, typer.Option(help="Default: the first.")] = None,
    year: Annotated[int | None, typer.Option(help="Default: the first.")] = None,
    resolution_m: Annotated[float, typer.Option(help="Pixel size, EPSG:3035 metres.")] = 1000,
    bandwidth_m: Annotated[float, typer.Option(help="kde: the kernel's sigma.")] = 25_000,
) -> None:
    """Write an analysis as a Cloud-Optimized GeoTIFF in EPSG:3035."""
    from geo.analysis import pick_series, series_layers
    from geo.surfaces import analysis_surface, kde_surface

    if format != "cog" or kind not in ("classes", "kde"):
        raise typer.BadParameter("--format cog, with --kind classes or kde")
    settings = _settings()
    record = _store(settings).analysis(analysis)
    ind, yr = pick_series(record, indicator, year)
    regions, _, _ = series_layers(settings, record, ind, yr)
    if kind == "kde":
        surface = kde_surface(regions, output, bandwidth_m=bandwidth_m, resolution_m=resolution_m)
    else:
        klass = "bin" if "bin" in regions.columns else "cluster"
        surface = analysis_surface(regions, output, resolution_m=resolution_m, klass=klass)
    height, width = surface.shape
    typer.echo(f"wrote {output}: {width} x {height} pixels of {resolution_m:g} m, EPSG:3035")


app.command("hotspots", help="Per-region hot-spot statistics of any vector file.")(
    _file_command("regions")
)
app.command(
    "catchments", help="Cluster catchments (connected hot-spot regions) of any vector file."
)(_file_command("catchments"))


def _warn(warning: dict[str, Any]) -> None:
    typer.echo(f"warning: {describe(warning)}", err=True)


def main() -> None:
    """Entry point: domain errors become one clear line on stderr and exit code 2."""
    try:
        app()
    except IngestError as exc:
        typer.echo(f"error: {exc}", err=True)
        for problem in exc.problems[1:]:
            typer.echo(f"  {describe(problem)}", err=True)
        sys.exit(2)
    except AlpClustersError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
