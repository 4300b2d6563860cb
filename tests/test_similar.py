"""geo.similar: the k nearest regions against scipy's cdist on independently standardised
matrices (generated with a fixed seed), missing values both ways, and ITH2 (Trento) on real
sector shares of nama_10r_3empers 2018 (NUTS 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics.pairwise import nan_euclidean_distances

from geo import specialisation as sp
from geo.errors import InvalidParameterError, UnknownRegionError
from geo.settings import Settings
from geo.similar import similar_regions


@pytest.fixture
def values() -> pd.DataFrame:
    rng = np.random.default_rng(20240611)
    codes = [f"{cc}{i:02d}" for cc in ("AT", "DE", "IT") for i in range(1, 9)]
    scale = np.array([1.0, 100.0, 0.01, 5.0])  # very different units: z-scores matter
    return pd.DataFrame(
        rng.normal(size=(len(codes), 4)) * scale, index=codes, columns=["a", "b", "c", "d"]
    )


def reference(values: pd.DataFrame, region: str) -> pd.Series:
    x = values.to_numpy()
    z = (x - x.mean(axis=0)) / x.std(axis=0)  # numpy's std: ddof=0
    i = list(values.index).index(region)
    d = cdist(z[i : i + 1], z)[0]
    return pd.Series(d, index=values.index).drop(region).sort_values()


def test_k_nearest_against_cdist(values: pd.DataFrame) -> None:
    out = similar_regions(values, "AT03", k=5)
    expected = reference(values, "AT03").head(5)
    assert out["region"].tolist() == expected.index.tolist()
    np.testing.assert_allclose(out["distance"], expected.to_numpy(), rtol=1e-12)
    assert out["rank"].tolist() == [1, 2, 3, 4, 5]
    z = (values - values.mean()) / values.std(ddof=0)
    np.testing.assert_allclose(
        out[["z_a", "z_b", "z_c", "z_d"]], z.loc[out["region"]].to_numpy(), rtol=1e-12
    )


def test_indicator_subset_and_exclude_country(values: pd.DataFrame) -> None:
    out = similar_regions(values, "DE04", k=6, indicators=["a", "c"], exclude_country=True)
    expected = reference(values[["a", "c"]], "DE04")
    expected = expected[~expected.index.str.startswith("DE")].head(6)
    assert out["region"].tolist() == expected.index.tolist()
    assert not out["region"].str.startswith("DE").any()
    np.testing.assert_allclose(out["distance"], expected.to_numpy(), rtol=1e-12)
    assert list(out.columns) == ["region", "distance", "rank", "z_a", "z_c"]


def test_missing_dropped_or_rescaled(values: pd.DataFrame) -> None:
    holes = values.copy()
    holes.loc["IT02", "b"] = np.nan
    holes.loc["AT07", "d"] = np.nan
    dropped = similar_regions(holes, "AT01", k=30)
    assert dropped.attrs["dropped"] == ["AT07", "IT02"]
    assert {"AT07", "IT02"}.isdisjoint(dropped["region"])
    complete = holes.drop(index=["AT07", "IT02"])
    np.testing.assert_allclose(
        dropped["distance"], reference(complete, "AT01").to_numpy(), rtol=1e-12
    )
    with pytest.raises(InvalidParameterError, match="AT07 has no value"):
        similar_regions(holes, "AT07")
    # rescale: z over the values present, then sklearn's nan_euclidean_distances
    rescaled = similar_regions(holes, "AT07", k=30, missing="rescale")
    z = (holes - holes.mean()) / holes.std(ddof=0)
    d = nan_euclidean_distances(z.loc[["AT07"]].to_numpy(), z.to_numpy())[0]
    expected = pd.Series(d, index=z.index).drop("AT07").sort_values()
    assert rescaled["region"].tolist() == expected.index.tolist()
    np.testing.assert_allclose(rescaled["distance"], expected.to_numpy(), rtol=1e-12)


def test_constant_indicator_and_errors(values: pd.DataFrame) -> None:
    flat = values.assign(e=7.0)
    out = similar_regions(flat, "AT01", k=3)
    assert "z_e" not in out.columns and "constant indicators dropped" in out.attrs["notes"][0]
    with pytest.raises(UnknownRegionError):
        similar_regions(values, "XX01")
    with pytest.raises(InvalidParameterError, match="unknown indicators"):
        similar_regions(values, "AT01", indicators=["zz"])
    with pytest.raises(InvalidParameterError, match="k must"):
        similar_regions(values, "AT01", k=0)


def test_trento_on_real_sector_shares(settings: Settings) -> None:
    table = sp.load_employment(settings, "nama_10r_3empers_2018")
    fine = ["A", "B-E", "F", "G-I", "J", "K", "L", "M_N", "O-Q", "R-U"]
    nuts2 = [r for r in table["region"].unique() if len(r) == 4 and not r.endswith("Z")]
    lq = sp.location_quotients(table, fine, regions=nuts2, reference="EU27_2020")
    shares = sp.wide_table(lq, "share")[fine]
    out = similar_regions(shares, "ITH2", k=5, exclude_country=True)
    print("\nITH2 (Trento), most similar NUTS 2 outside IT by 2018 sector shares:")
    print(out[["region", "distance", "rank"]].round(4).to_string(index=False))
    assert len(out) == 5 and not out["region"].str.startswith("IT").any()
    complete = shares.dropna()
    expected = reference(complete, "ITH2")
    expected = expected[~expected.index.str.startswith("IT")].head(5)
    assert out["region"].tolist() == expected.index.tolist()
    np.testing.assert_allclose(out["distance"], expected.to_numpy(), rtol=1e-12)
    with_it = similar_regions(shares, "ITH2", k=5)
    assert len(with_it) == 5
