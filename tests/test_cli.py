"""The ``alpclusters`` console script, run for real in subprocesses.

The mirror is passed as ``ALPCLUSTERS_DATA_MIRROR``; the store is a temporary SQLite file and
the boundary cache a temporary NUTS folder holding copies of the repository's manifests.
Every input file is written by code from the mirror.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geo.areas import named_areas, resolve
from geo.boundaries import load_boundaries
from geo.catchments import catchments as catchments_of
from geo.hotspots import gi_star
from geo.indicators import load_eurostat
from geo.settings import Settings
from geo.sources import locate, source
from geo.store import Store
from geo.weights import build_weights

PERMUTATIONS = 99
SEED = 4242
CORRECTION = "none"  # with 99 permutations, FDR would leave no hot spot to group
STATS = ("z", "p_norm", "p_sim", "bin", "status", "significant", "hot", "catchment")


def script() -> str:
    """The installed console script next to the interpreter running the tests."""
    found = shutil.which("alpclusters", path=str(Path(sys.executable).parent))
    assert found, "the alpclusters console script is not installed in this environment"
    return found


class Cli:
    """Runs the console script with a fixed environment."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd

    def __call__(self, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script(), *map(str, args)],
            capture_output=True,
            text=True,
            env={**self.env, **env},
            cwd=self.cwd,
            timeout=600,
            check=False,
        )


def clean_env(mirror: Path, db: Path, nuts_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPCLUSTERS_")}
    env.update(
        ALPCLUSTERS_DATA_MIRROR=str(mirror),
        ALPCLUSTERS_DATABASE_URL=f"sqlite:///{db}",
        ALPCLUSTERS_NUTS_DIR=str(nuts_dir),
        ALPCLUSTERS_ALLOW_DOWNLOAD="false",
        COLUMNS="200",
    )
    return env


def copy_manifests(settings: Settings, nuts_dir: Path) -> Path:
    nuts_dir.mkdir(parents=True, exist_ok=True)
    for name in ("sources.toml", "areas.toml"):
        shutil.copy(settings.nuts_dir / name, nuts_dir / name)
    return nuts_dir


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def db(workdir: Path) -> Path:
    return workdir / "store.db"


@pytest.fixture(scope="module")
def cli(settings: Settings, mirror: Path, workdir: Path, db: Path) -> Cli:
    nuts_dir = copy_manifests(settings, workdir / "nuts")
    return Cli(clean_env(mirror, db, nuts_dir), workdir)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single 'error: ...' line of a domain error; no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    return lines[0]


def usage_error(proc: subprocess.CompletedProcess[str]) -> str:
    """A command-line usage error: exit code 2, no traceback; its text without the frame."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", proc.stderr).split())


# -- data -------------------------------------------------------------------------------------


def test_data_fetch(cli: Cli, settings: Settings) -> None:
    """'data fetch' caches the layer and reports the regions per level of the mirror file."""
    proc = cli("data", "fetch")
    assert proc.returncode == 0, proc.stderr
    raw = gpd.read_parquet(locate(settings, source(settings, "boundaries", "2021-03M")))
    counts = raw["LEVL_CODE"].astype(int).value_counts().sort_index().to_dict()
    assert proc.stdout.strip() == f"{len(raw)} regions cached; per level: {counts}"
    assert (Path(cli.env["ALPCLUSTERS_NUTS_DIR"]) / "cache" / "nuts-2021-03M.parquet").is_file()


def test_data_fetch_other_layer(cli: Cli, settings: Settings) -> None:
    """'data fetch --year 2024 --scale 20M' loads the NUTS 2024 layer."""
    proc = cli("data", "fetch", "--year", "2024", "--scale", "20M")
    assert proc.returncode == 0, proc.stderr
    raw = gpd.read_parquet(locate(settings, source(settings, "boundaries", "2024-20M")))
    assert proc.stdout.startswith(f"{len(raw)} regions cached")


@pytest.mark.parametrize("level", [2, 3], ids=["level-2", "level-3"])
def test_data_areas(cli: Cli, settings: Settings, level: int) -> None:
    """'data areas' lists every named area with its number of regions at the level."""
    proc = cli("data", "areas", "--level", str(level))
    assert proc.returncode == 0, proc.stderr
    layer = load_boundaries(settings)
    rows = {line.split()[0]: line.split()[1] for line in proc.stdout.strip().splitlines()}
    areas = named_areas(settings)
    assert set(rows) == set(areas)
    for name in areas:
        assert rows[name] == str(len(resolve(settings, layer, name, level))), name
    assert rows["alpine-space"] == {2: "42", 3: "272"}[level]


def test_data_import(cli: Cli, settings: Settings, workdir: Path) -> None:
    """'data import' stores a hand-downloaded GISCO file as another version and scale."""
    raw = gpd.read_parquet(locate(settings, source(settings, "boundaries", "2021-03M")))
    part = raw[raw["CNTR_CODE"].isin(["AT", "SI", "LI"])]
    path = workdir / "NUTS_RG_by_hand.geojson"
    part.to_file(path, driver="GeoJSON")
    nuts_dir = copy_manifests(settings, workdir / "nuts-import")
    env = {"ALPCLUSTERS_NUTS_DIR": str(nuts_dir)}
    proc = cli("data", "import", path, "--year", "2021", "--scale", "20M", **env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"imported {len(part)} regions as NUTS 2021 20M"
    cached = gpd.read_parquet(nuts_dir / "cache" / "nuts-2021-20M.parquet")
    assert set(cached["NUTS_ID"]) == set(part["NUTS_ID"])
    assert cached.geometry.is_valid.all()
    fetched = cli("data", "fetch", "--year", "2021", "--scale", "20M", **env)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.startswith(f"{len(part)} regions cached")


def test_data_import_rejects_a_non_gisco_file(cli: Cli, settings: Settings, workdir: Path) -> None:
    """A vector file without the GISCO columns is refused with one error line."""
    raw = gpd.read_parquet(locate(settings, source(settings, "boundaries", "2021-03M")))
    path = workdir / "not_gisco.geojson"
    raw.loc[raw["CNTR_CODE"] == "LI", ["NUTS_ID", "geometry"]].to_file(path, driver="GeoJSON")
    nuts_dir = copy_manifests(settings, workdir / "nuts-reject")
    line = one_error_line(
        cli(
            "data", "import", path, "--year", "2021", "--scale", "20M",
            ALPCLUSTERS_NUTS_DIR=str(nuts_dir),
        )
    )  # fmt: skip
    assert "lacks the GISCO columns" in line
    assert not (nuts_dir / "cache" / "nuts-2021-20M.parquet").exists()


# -- ingest and demo --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gdp_si(settings: Settings) -> pd.DataFrame:
    """Slovenian NUTS 3 GDP per inhabitant from the mirror, as a tidy table."""
    frame, _ = load_eurostat(settings, "nama_10r_3gdp")
    keep = (frame["unit"] == "EUR_HAB") & (frame["cntr_code"] == "SI") & (frame["nuts_level"] == 3)
    return frame.loc[keep, ["geo", "time", "value", "flag", "unit"]].reset_index(drop=True)


def test_ingest_good_file(cli: Cli, db: Path, gdp_si: pd.DataFrame, workdir: Path) -> None:
    """'ingest' stores a tidy CSV and reports its rows and indicators."""
    path = workdir / "gdp_si.csv"
    gdp_si.to_csv(path, index=False)
    proc = cli("ingest", path, "--dataset", "cli_gdp", "--title", "GDP SI", "--level", "3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"stored cli_gdp: {len(gdp_si)} rows, indicators ['EUR_HAB'], version 1"
    )
    again = cli("ingest", path, "--dataset", "cli_gdp", "--level", "3")
    assert again.stdout.strip().startswith("unchanged cli_gdp:") and "version 1" in again.stdout
    info = Store(f"sqlite:///{db}").dataset("cli_gdp")
    assert info.title == "GDP SI"
    assert info.n_rows == len(gdp_si)
    assert info.indicators[0].years == sorted(gdp_si["time"].unique().tolist())


def test_ingest_bad_file(cli: Cli, db: Path, gdp_si: pd.DataFrame, workdir: Path) -> None:
    """A bad table exits with code 2 and names file, row, column, value and reason."""
    bad = gdp_si.astype(object).where(gdp_si.notna(), "").astype(str)
    bad.loc[4, "value"] = bad.loc[4, "value"].replace(".", ",")
    bad.loc[6, "time"] = "20x9"
    path = workdir / "gdp_bad.csv"
    bad.to_csv(path, index=False)
    proc = cli("ingest", path, "--dataset", "cli_bad", "--level", "3")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and "(and 1 more problem)" in lines[0]
    report = "\n".join(line.removeprefix("error: ").strip() for line in lines)
    value = bad.loc[4, "value"]
    assert f"{path}, row 6, column value, value '{value}': not a number" in report
    assert f"{path}, row 8, column time, value '20x9': not a year" in report
    assert "cli_bad" not in Store(f"sqlite:///{db}").dataset_ids()


def test_ingest_missing_file(cli: Cli, workdir: Path) -> None:
    """A missing input file is one clear error line, not a traceback."""
    line = one_error_line(cli("ingest", workdir / "nowhere.csv", "--dataset", "x"))
    assert "nowhere.csv" in line


def test_ingest_drop_unknown_warns(cli: Cli, db: Path, gdp_si: pd.DataFrame, workdir: Path) -> None:
    """'--drop-unknown' drops unknown codes and says so ('with a warning', as its help says)."""
    table = gdp_si.copy()
    first = table.loc[0, "geo"]
    bad = "X" + first
    table.loc[table["geo"] == first, "geo"] = bad
    path = workdir / "gdp_unknown.csv"
    table.to_csv(path, index=False)
    proc = cli("ingest", path, "--dataset", "cli_drop", "--level", "3", "--drop-unknown")
    assert proc.returncode == 0, proc.stderr
    kept = int((table["geo"] != bad).sum())
    assert Store(f"sqlite:///{db}").dataset("cli_drop").n_rows == kept
    assert bad in proc.stderr + proc.stdout, "the dropped code is not reported"


def test_demo(settings: Settings, mirror: Path, tmp_path: Path) -> None:
    """'demo' loads the demo datasets and runs and stores its analyses: the default one of
    GDP per head, and Gi* of the manufacturing LQ with 9,999 permutations."""
    db = tmp_path / "demo.db"
    nuts_dir = copy_manifests(settings, tmp_path / "nuts")
    run = Cli(clean_env(mirror, db, nuts_dir), tmp_path)
    proc = run("demo")
    assert proc.returncode == 0, proc.stderr
    store = Store(f"sqlite:///{db}")
    lines = proc.stdout.strip().splitlines()
    datasets = [line for line in lines if line.startswith("dataset ")]
    expected = {f"dataset {i}: {store.dataset(i).n_rows} rows" for i in store.dataset_ids()}
    assert set(datasets) == expected
    assert len(datasets) == 6
    analyses = [line for line in lines if line.startswith("analysis ")]
    records = []
    for analysis in analyses:
        aid, _, params = analysis.removeprefix("analysis ").partition(": ")
        record = store.analysis(aid, with_tables=False)
        assert record.status == "done"
        assert record.params == json.loads(params)
        records.append(record)
    gdp, lq = records
    assert gdp.params["dataset"] == "nama_10r_3gdp" and gdp.params["area"] == "alpine-space"
    assert lq.params["dataset"] == "lq_manufacturing" and lq.params["permutations"] == 9999
    assert (lq.params["correction"], lq.params["years"]) == ("fdr", [2018])
    (shown,) = [line for line in lines if line.startswith("analyst key")]
    key = shown.rsplit(" ", 1)[1]
    assert store.accounts.authenticate(key).role == "analyst"
    again = run("demo", "--no-analyse")
    assert "demo-analyst exists" in again.stdout and key not in again.stdout


# -- hotspots and catchments ------------------------------------------------------------------


@pytest.fixture(scope="module")
def alpine_gpkg(settings: Settings, workdir: Path) -> Path:
    """Alpine Space NUTS 3 regions with GDP 2018 (per inhabitant and total) as a GeoPackage."""
    layer = load_boundaries(settings)
    ids = resolve(settings, layer, "alpine-space", 3)
    frame, _ = load_eurostat(settings, "nama_10r_3gdp")
    gdp = frame[(frame["time"] == 2018) & frame["geo"].isin(ids)]
    wide = gdp.pivot_table(index="geo", columns="unit", values="value", aggfunc="first")
    regions = layer.loc[ids, ["NUTS_ID", "CNTR_CODE", "NAME_LATN", "geometry"]].rename(
        columns={"NUTS_ID": "nuts_id", "NAME_LATN": "name"}
    )
    regions["gdp"] = wide["EUR_HAB"].reindex(ids).to_numpy()
    regions["gdp_mio"] = wide["MIO_EUR"].reindex(ids).to_numpy()
    assert regions["gdp"].notna().sum() > 250 and regions["gdp"].isna().any()  # LI: no data
    path = workdir / "alpine_gdp_2018.gpkg"
    regions.reset_index(drop=True).to_file(path, driver="GPKG")
    return path


@pytest.fixture(scope="module")
def direct(alpine_gpkg: Path) -> dict[str, pd.DataFrame]:
    """gi_star called directly on the GeoPackage's values, per value column."""
    gdf = gpd.read_file(alpine_gpkg).set_index("nuts_id", drop=False)
    weights = build_weights(gdf, "queen")
    out = {}
    for col in ("gdp", "gdp_mio"):
        result = gi_star(
            gdf[col], weights, permutations=PERMUTATIONS, seed=SEED, correction=CORRECTION
        )
        out[col] = result.to_frame()
    return out


def hotspot_args(gpkg: Path, output: Path, *values: str) -> list[str | Path]:
    args: list[str | Path] = ["hotspots", gpkg, "--id", "nuts_id", "-o", output]
    for v in values:
        args += ["--value", v]
    return [
        *args,
        "--permutations", str(PERMUTATIONS), "--seed", str(SEED), "--correction", CORRECTION,
    ]  # fmt: skip


def assert_matches_direct(out: pd.DataFrame, direct: pd.DataFrame, prefix: str = "") -> None:
    """Per-region statistics of the output equal those of gi_star called directly."""
    got = out.set_index("nuts_id").loc[direct.index]
    for col in ("z", "p_norm", "p_sim"):
        np.testing.assert_allclose(
            got[prefix + col].to_numpy(dtype=float),
            direct[col].to_numpy(dtype=float),
            rtol=1e-9,
            equal_nan=True,
            err_msg=col,
        )
    assert (got[prefix + "bin"].astype(int).to_numpy() == direct["bin"].to_numpy()).all()
    assert (got[prefix + "status"].to_numpy() == direct["status"].to_numpy()).all()
    assert (got[prefix + "hot"].astype(bool).to_numpy() == direct["hot"].to_numpy()).all()


def test_hotspots_geojson_single_value(
    cli: Cli, alpine_gpkg: Path, direct: dict[str, pd.DataFrame], workdir: Path
) -> None:
    """One --value to GeoJSON: unprefixed statistics, id column first, values as gi_star."""
    output = workdir / "hot.geojson"
    proc = cli(*hotspot_args(alpine_gpkg, output, "gdp"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wrote {len(direct['gdp'])} regions to {output}")
    raw = json.loads(output.read_text())
    assert "crs" not in raw
    out = gpd.read_file(output)
    assert out.columns[0] == "nuts_id"
    assert set(STATS) <= set(out.columns)
    assert "gdp_z" not in out.columns
    assert len(out) == len(direct["gdp"])
    assert_matches_direct(out, direct["gdp"])


@pytest.mark.parametrize("suffix", [".parquet", ".csv"], ids=["parquet", "csv"])
def test_hotspots_multiple_values(
    cli: Cli, alpine_gpkg: Path, direct: dict[str, pd.DataFrame], workdir: Path, suffix: str
) -> None:
    """Several --value columns give prefixed statistics (gdp_z, gdp_bin, ...), id first."""
    output = workdir / f"hot_multi{suffix}"
    proc = cli(*hotspot_args(alpine_gpkg, output, "gdp", "gdp_mio"))
    assert proc.returncode == 0, proc.stderr
    if suffix == ".parquet":
        out = gpd.read_parquet(output)
        assert out.crs is not None
    else:
        out = pd.read_csv(output, keep_default_na=False, na_values=[""])
        assert "geometry" not in out.columns
        out["gdp_catchment"] = out["gdp_catchment"].fillna("")
    assert out.columns[0] == "nuts_id"
    for col in ("gdp", "gdp_mio"):
        assert {f"{col}_{s}" for s in STATS} <= set(out.columns)
        assert_matches_direct(out, direct[col], prefix=f"{col}_")
    assert "z" not in out.columns


def test_catchments(cli: Cli, alpine_gpkg: Path, workdir: Path) -> None:
    """'catchments' writes the connected hot-spot groups that geo.catchments finds."""
    output = workdir / "catch.geojson"
    proc = cli(
        "catchments", alpine_gpkg, "--id", "nuts_id", "--value", "gdp", "-o", output,
        "--permutations", str(PERMUTATIONS), "--seed", str(SEED), "--correction", CORRECTION,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    gdf = gpd.read_file(alpine_gpkg).set_index("nuts_id", drop=False).rename_axis(None)
    weights = build_weights(gdf, "queen")
    result = gi_star(
        gdf["gdp"], weights, permutations=PERMUTATIONS, seed=SEED, correction=CORRECTION
    )
    expected = catchments_of(result, weights, gdf.to_crs(4326))
    out = gpd.read_file(output)
    assert proc.stdout.startswith(f"wrote {len(expected)} catchments to {output} in ")
    assert len(out) == len(expected) > 0
    assert (out["value_column"] == "gdp").all()
    assert out["members"].tolist() == expected["members"].tolist()
    assert out["catchment"].tolist() == expected["catchment"].tolist()
    hot = set(result.ids[result.hot])
    assert {m for ms in out["members"] for m in ms.split(",")} == hot


# -- bad input --------------------------------------------------------------------------------


def test_missing_input_file(cli: Cli, workdir: Path) -> None:
    """A missing input file is one error line naming it."""
    line = one_error_line(cli(*hotspot_args(workdir / "missing.gpkg", workdir / "x.csv", "gdp")))
    assert "missing.gpkg" in line and "no such file" in line


def test_unknown_column(cli: Cli, alpine_gpkg: Path, workdir: Path) -> None:
    """An unknown --value column is named, with the columns that exist."""
    line = one_error_line(cli(*hotspot_args(alpine_gpkg, workdir / "x.csv", "gdp_per_head")))
    assert "gdp_per_head" in line and "nuts_id" in line


def test_non_numeric_column(cli: Cli, alpine_gpkg: Path, workdir: Path) -> None:
    """A text column given as --value is refused."""
    line = one_error_line(cli(*hotspot_args(alpine_gpkg, workdir / "x.csv", "name")))
    assert "'name'" in line and "not a number" in line


def test_id_column_not_unique(cli: Cli, alpine_gpkg: Path, workdir: Path) -> None:
    """An --id column with repeated values is refused."""
    args = hotspot_args(alpine_gpkg, workdir / "x.csv", "gdp")
    args[args.index("nuts_id")] = "CNTR_CODE"
    line = one_error_line(cli(*args))
    assert "CNTR_CODE" in line and "not unique" in line


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("--weights", "hexagonal", "weights 'hexagonal' not understood"),
        ("--method", "kriging", "--method"),
        ("--alpha", "1.5", "--alpha"),
        ("--permutations", "-5", "--permutations"),
    ],
    ids=["weights", "method", "alpha", "permutations"],
)
def test_bad_options(
    cli: Cli, alpine_gpkg: Path, workdir: Path, option: str, value: str, needle: str
) -> None:
    """Bad analysis options are usage errors that name the option, without a traceback."""
    output = workdir / "never.csv"
    text = usage_error(cli(*hotspot_args(alpine_gpkg, output, "gdp"), option, value))
    assert needle in text
    assert not output.exists()


def test_unsupported_output_suffix(cli: Cli, alpine_gpkg: Path, workdir: Path) -> None:
    """An output type other than .geojson, .parquet or .csv is one error line."""
    output = workdir / "hot.shp"
    line = one_error_line(cli(*hotspot_args(alpine_gpkg, output, "gdp")))
    assert "'.shp'" in line and ".geojson" in line
    assert not output.exists()
