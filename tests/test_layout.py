"""Package layout: the library is free of web code, and the distribution is complete."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import subprocess
import sys
import textwrap

import pytest

WEB_MODULES = ("fastapi", "starlette", "folium", "branca", "uvicorn", "services", "maps")

# Imports every submodule of a package in a fresh interpreter and prints the top-level
# names of everything that ended up in sys.modules.
PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    pkg = importlib.import_module(sys.argv[1])
    for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(info.name)
    print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
    """
)


def imported_after_loading(package: str) -> set[str]:
    """Top-level modules present after importing ``package`` and all its submodules."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, package],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_geo_is_free_of_web_code() -> None:
    """Importing every geo module loads no web framework, no folium, no services, no maps."""
    loaded = imported_after_loading("geo")
    assert {"geo", "geopandas", "shapely"} <= loaded
    assert not set(WEB_MODULES) & loaded, sorted(set(WEB_MODULES) & loaded)


def test_maps_is_free_of_service_code() -> None:
    """Importing every maps module loads folium but neither the service nor FastAPI."""
    loaded = imported_after_loading("maps")
    assert {"maps", "folium"} <= loaded
    forbidden = {"services", "fastapi", "starlette", "uvicorn"}
    assert not forbidden & loaded, sorted(forbidden & loaded)


def test_distribution_name_and_console_script() -> None:
    """The installed distribution is called alpclusters and provides the alpclusters command."""
    dist = importlib.metadata.distribution("alpclusters")
    assert dist.metadata["Name"] == "alpclusters"
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert "alpclusters" in scripts
    module, _, func = scripts["alpclusters"].partition(":")
    target = getattr(importlib.import_module(module), func)
    assert callable(target)


def test_licence_is_eupl() -> None:
    """The metadata declares EUPL-1.2 and ships the EUPL v1.2 text as licence file."""
    dist = importlib.metadata.distribution("alpclusters")
    assert dist.metadata["License-Expression"] == "EUPL-1.2"
    files = dist.metadata.get_all("License-File") or []
    assert "LICENSE" in files
    text = dist.read_text("licenses/LICENSE") or dist.read_text("LICENSE")
    assert text is not None
    assert "EUROPEAN UNION PUBLIC LICENCE V. 1.2" in text.splitlines()[0].upper()


@pytest.mark.parametrize("package", ["geo", "maps", "services"], ids=["geo", "maps", "services"])
def test_packages_are_typed(package: str) -> None:
    """Every package carries a PEP 561 py.typed marker."""
    assert importlib.resources.files(package).joinpath("py.typed").is_file()
