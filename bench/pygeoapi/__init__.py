"""pygeoapi's side of the OGC benchmark (case 6): configuration, OpenAPI document, command.

``config.yml`` beside this file is a :class:`string.Template`; :func:`write_config` fills it
in for one provider (pygeoapi's own ``GeoJSON`` or ``Parquet`` feature provider) and writes
it to the benchmark's output directory, :func:`generate_openapi` runs
``pygeoapi openapi generate`` on it, and :func:`command` is the uvicorn command line that
serves pygeoapi's Starlette application (``pygeoapi.starlette_app:APP``).

pygeoapi's Parquet provider imports ``s3fs`` at module level, for ``s3://`` sources only.
s3fs is not a dependency of pygeoapi and installing it would downgrade ``python-dateutil``
in the project's environment, so when it is missing :func:`environment` puts a stand-in
``s3fs`` module (a class that raises if used) on the server's ``PYTHONPATH``. A local file
never reaches it; pygeoapi's own code runs unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).with_name("config.yml")
PROVIDERS = {"geojson": "GeoJSON", "parquet": "Parquet"}  # our key -> pygeoapi plugin name
S3FS_STUB = '''"""Stand-in for s3fs, imported by pygeoapi's Parquet provider (bench/pygeoapi)."""


class S3FileSystem:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("s3fs is not installed: only local Parquet files are benchmarked")
'''


def write_config(
    out: Path,
    *,
    port: int,
    provider: str,
    data: Path,
    collection: str,
    title: str,
    description: str,
    bbox: list[float],
    max_items: int,
    id_field: str = "NUTS_ID",
) -> Path:
    """Fill in the template for ``provider`` (a key of :data:`PROVIDERS`); the file written."""
    source = str(data.resolve())
    fields = {
        "port": port,
        "max_items": max_items,
        "collection": collection,
        "title": json.dumps(title),
        "description": json.dumps(description),
        "bbox": json.dumps([round(v, 6) for v in bbox]),
        "provider": PROVIDERS[provider],
        # pygeoapi's GeoJSON provider takes the path, its Parquet provider a mapping
        "data": json.dumps(source if provider == "geojson" else {"source": source}),
        "id_field": id_field,
    }
    text = Template(TEMPLATE.read_text(encoding="utf-8")).substitute(fields)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"pygeoapi-{provider}.yml"
    path.write_text(text, encoding="utf-8")
    return path


def environment(config: Path, openapi: Path, out: Path) -> dict[str, str]:
    """The server's environment: pygeoapi's two variables, and the s3fs stand-in if needed."""
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    if s3fs_stubbed():
        shim = out / "shim"
        shim.mkdir(parents=True, exist_ok=True)
        (shim / "s3fs.py").write_text(S3FS_STUB, encoding="utf-8")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), env.get("PYTHONPATH")]))
    return env


def s3fs_stubbed() -> bool:
    """Whether :func:`environment` puts the s3fs stand-in on the server's path."""
    return importlib.util.find_spec("s3fs") is None


def generate_openapi(config: Path, env: dict[str, str]) -> Path:
    """``pygeoapi openapi generate CONFIG --output-file ...``; the OpenAPI document written."""
    path = config.with_suffix(".openapi.yml")
    command = [
        sys.executable,
        "-c",
        "import sys; from pygeoapi import cli; sys.exit(cli())",
        *("openapi", "generate", str(config), "--output-file", str(path)),
    ]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise RuntimeError(f"pygeoapi openapi generate failed ({proc.returncode}):\n{tail}")
    return path


def command(port: int, workers: int) -> list[str]:
    """uvicorn serving pygeoapi's ASGI application, like ours (same options)."""
    return [
        sys.executable,
        *("-m", "uvicorn", "pygeoapi.starlette_app:APP"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
        *("--no-access-log", "--log-level", "warning"),
    ]
