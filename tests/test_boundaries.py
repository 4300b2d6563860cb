"""GISCO NUTS layers from the mirror, named areas and code lists."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pytest

from geo.areas import named_areas, resolve
from geo.boundaries import COLUMNS, LEVELS, load_boundaries, regions
from geo.errors import InvalidParameterError, NotFoundError, UnknownAreaError, UnknownRegionError
from geo.settings import Settings
from geo.sources import locate, source

ALPINE_SPACE_L2 = 42  # acceptance criteria of the issue
ALPINE_SPACE_L3 = 272


@pytest.fixture(scope="module")
def fresh(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session settings with an empty cache, so every layer is built from the mirror."""
    nuts_dir = tmp_path_factory.mktemp("nuts")
    for name in ("sources.toml", "areas.toml"):
        shutil.copy(settings.nuts_dir / name, nuts_dir / name)
    return settings.model_copy(update={"nuts_dir": nuts_dir})


def raw_layer(settings: Settings, key: str) -> gpd.GeoDataFrame:
    """The mirror file of a layer, read independently of geo.boundaries."""
    path = locate(settings, source(settings, "boundaries", key))
    return gpd.read_parquet(path)


@pytest.fixture(scope="module")
def layer(fresh: Settings) -> gpd.GeoDataFrame:
    """The default NUTS 2021 1:3M layer, built into the fresh cache."""
    return load_boundaries(fresh)


@pytest.fixture(scope="module")
def raw03(fresh: Settings) -> gpd.GeoDataFrame:
    return raw_layer(fresh, "2021-03M")


def test_layer_comes_from_the_mirror(fresh: Settings, mirror: Path) -> None:
    """With a mirror configured, the 1:3M source is the mirror's file and it is cached."""
    path = locate(fresh, source(fresh, "boundaries", "2021-03M"))
    assert path.is_relative_to(mirror)
    load_boundaries(fresh)
    assert (fresh.cache_dir / "nuts-2021-03M.parquet").is_file()


def test_feature_counts_match_the_source(layer: gpd.GeoDataFrame, raw03: gpd.GeoDataFrame) -> None:
    """Every feature of the mirror layer is loaded: the total and the count per level agree."""
    assert len(layer) == len(raw03)
    expected = raw03["LEVL_CODE"].astype(int).value_counts().sort_index().to_dict()
    got = layer["LEVL_CODE"].astype(int).value_counts().sort_index().to_dict()
    assert got == expected
    assert sorted(got) == list(LEVELS)
    assert set(layer.index) == set(raw03["NUTS_ID"])


def test_columns_index_and_crs(layer: gpd.GeoDataFrame, raw03: gpd.GeoDataFrame) -> None:
    """The GISCO attribute columns are kept in order, indexed by NUTS_ID, in EPSG:4326."""
    assert list(layer.columns) == [*COLUMNS, "geometry"]
    assert (layer.index == layer["NUTS_ID"]).all()
    assert layer.index.is_unique
    assert layer.crs is not None and layer.crs.to_epsg() == 4326
    src = raw03.set_index("NUTS_ID").loc[layer.index]
    for col in ("CNTR_CODE", "NAME_LATN", "NUTS_NAME"):
        assert (layer[col].to_numpy() == src[col].to_numpy()).all(), col
    assert (layer["LEVL_CODE"].to_numpy() == src["LEVL_CODE"].to_numpy()).all()


def test_geometries_valid_and_polygonal(layer: gpd.GeoDataFrame) -> None:
    """All geometries of the 1:3M layer are valid, non-empty polygons or multipolygons."""
    assert layer.geometry.is_valid.all()
    assert not layer.geometry.is_empty.any()
    assert set(layer.geom_type) <= {"Polygon", "MultiPolygon"}


def test_invalid_source_geometries_are_repaired(fresh: Settings) -> None:
    """The 1:1M layer ships invalid geometries; the loaded layer has only valid ones."""
    raw = raw_layer(fresh, "2021-01M")
    invalid = raw.loc[~raw.geometry.is_valid, "NUTS_ID"].tolist()
    assert len(invalid) == 5  # DE, DE2, DE27, PL5, PL51 as published (PROVENANCE.md)
    gdf = load_boundaries(fresh, 2021, "01M")
    assert len(gdf) == len(raw)
    assert gdf.geometry.is_valid.all()
    repaired = gdf.loc[invalid]
    assert set(repaired.geom_type) <= {"Polygon", "MultiPolygon"}
    before = raw.set_index("NUTS_ID").loc[invalid].geometry.to_crs(3035).area
    after = repaired.geometry.to_crs(3035).area
    assert (after / before).between(0.999, 1.001).all()


def test_layer_without_level_3_says_so(fresh: Settings) -> None:
    """Asking the 1:1M layer (levels 0-2) for level 3 names the available levels."""
    one_m = fresh.model_copy(update={"nuts_scale": "01M"})
    with pytest.raises(InvalidParameterError, match=r"available levels: \[0, 1, 2\]"):
        regions(one_m, 3)


def test_nuts_2024_layer_loads(fresh: Settings) -> None:
    """The NUTS 2024 1:20M layer loads with the source's features, valid, in EPSG:4326."""
    raw = raw_layer(fresh, "2024-20M")
    gdf = load_boundaries(fresh, 2024, "20M")
    assert len(gdf) == len(raw)
    assert set(gdf.index) == set(raw["NUTS_ID"])
    assert gdf.crs is not None and gdf.crs.to_epsg() == 4326
    assert gdf.geometry.is_valid.all()
    expected = raw["LEVL_CODE"].astype(int).value_counts().to_dict()
    assert gdf["LEVL_CODE"].astype(int).value_counts().to_dict() == expected


@pytest.mark.parametrize(
    ("level", "expected"),
    [(2, ALPINE_SPACE_L2), (3, ALPINE_SPACE_L3)],
    ids=["level-2", "level-3"],
)
def test_alpine_space_region_counts(
    settings: Settings, layer: gpd.GeoDataFrame, level: int, expected: int
) -> None:
    """The Alpine Space programme area has 42 NUTS 2 and 272 NUTS 3 regions."""
    codes = resolve(settings, layer, "alpine-space", level)
    assert len(codes) == expected
    assert codes == sorted(set(codes))
    assert (layer.loc[codes, "LEVL_CODE"] == level).all()


def test_alpine_space_level_3_nests_in_level_2(settings: Settings, layer: gpd.GeoDataFrame) -> None:
    """Each Alpine Space NUTS 3 region lies in one of its NUTS 2 regions and vice versa."""
    l2 = set(resolve(settings, layer, "alpine-space", 2))
    l3 = resolve(settings, layer, "alpine-space", 3)
    assert {c[:4] for c in l3} == l2


COUNTRY_AREAS = [
    "austria",
    "switzerland",
    "germany",
    "france",
    "italy",
    "liechtenstein",
    "slovenia",
]


@pytest.mark.parametrize("name", COUNTRY_AREAS, ids=COUNTRY_AREAS)
def test_country_areas_resolve(
    settings: Settings, layer: gpd.GeoDataFrame, raw03: gpd.GeoDataFrame, name: str
) -> None:
    """Each Alpine country area resolves to its country and all of its regions per level."""
    area = named_areas(settings)[name]
    (country,) = area.codes
    assert resolve(settings, layer, name, 0) == [country]
    for level in (1, 2, 3):
        expected = sorted(
            raw03.loc[(raw03["CNTR_CODE"] == country) & (raw03["LEVL_CODE"] == level), "NUTS_ID"]
        )
        assert resolve(settings, layer, name, level) == expected
        assert expected


def test_area_names_are_case_insensitive(settings: Settings, layer: gpd.GeoDataFrame) -> None:
    """A named area may be written in any case and with surrounding spaces."""
    assert resolve(settings, layer, "  Alpine-Space ", 2) == resolve(
        settings, layer, "alpine-space", 2
    )


def test_code_list_includes_descendants(
    settings: Settings, layer: gpd.GeoDataFrame, raw03: gpd.GeoDataFrame
) -> None:
    """A list of coarse codes resolves to all their descendants at the requested level."""
    coarse = ["AT3", "SI04", "LI"]
    expected = sorted(
        raw03.loc[
            (raw03["LEVL_CODE"] == 3) & raw03["NUTS_ID"].str.startswith(tuple(coarse)), "NUTS_ID"
        ]
    )
    got = resolve(settings, layer, " at3 , SI04,LI ", 3)
    assert got == expected
    assert {c[:3] for c in got} >= {"AT3", "SI0", "LI0"}


def test_code_at_the_requested_level_resolves_to_itself(
    settings: Settings, layer: gpd.GeoDataFrame
) -> None:
    """A code of the requested level resolves to exactly that code."""
    assert resolve(settings, layer, "AT332", 3) == ["AT332"]


def test_unknown_area_lists_the_named_areas(settings: Settings, layer: gpd.GeoDataFrame) -> None:
    """An unknown area names every valid named area."""
    with pytest.raises(UnknownAreaError) as err:
        resolve(settings, layer, "alpine-spaces", 3)
    message = str(err.value)
    for name in named_areas(settings):
        assert name in message
    assert isinstance(err.value, NotFoundError)


def test_unknown_code_suggests_the_closest(settings: Settings, layer: gpd.GeoDataFrame) -> None:
    """An unknown NUTS code is answered with the closest valid code."""
    assert "AT34X" not in layer.index
    with pytest.raises(UnknownAreaError, match=r"AT34X: did you mean AT34\b"):
        resolve(settings, layer, "AT34X", 2)


def test_unknown_code_in_a_list(settings: Settings, layer: gpd.GeoDataFrame) -> None:
    """In a list, the unknown code is named, with a hint, and the valid ones are not."""
    with pytest.raises(UnknownRegionError) as err:
        resolve(settings, layer, "AT3,SI04,ATX32", 3)
    message = str(err.value)
    assert "ATX32" in message and "did you mean" in message
    assert "SI04" not in message.split("(")[0]


def test_codes_finer_than_the_level_are_rejected(
    settings: Settings, layer: gpd.GeoDataFrame
) -> None:
    """A NUTS 3 code cannot define an area at NUTS 2; the error suggests level 3."""
    with pytest.raises(InvalidParameterError, match="choose level 3"):
        resolve(settings, layer, "AT3,AT332", 2)


@pytest.mark.parametrize("level", [-1, 4, 5], ids=["minus-1", "4", "5"])
def test_levels_outside_0_to_3_are_rejected(
    settings: Settings, layer: gpd.GeoDataFrame, level: int
) -> None:
    """Only NUTS levels 0 to 3 exist, for areas and for region lists."""
    with pytest.raises(InvalidParameterError, match="level must be one of"):
        resolve(settings, layer, "alpine-space", level)
    with pytest.raises(InvalidParameterError, match="level must be one of"):
        regions(settings, level)
