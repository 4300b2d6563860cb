"""Response models of the emerging hot-spot and similar-regions endpoints."""

from __future__ import annotations

from pydantic import BaseModel, Field


class EmergingParameters(BaseModel):
    dataset: str
    version: int = Field(description="The dataset version analysed (its latest).")
    indicator: str
    years: list[int] = Field(description="The years of the panel, at least 6.")
    area: str
    level: int
    weights: str
    permutations: int
    seed: int
    alpha: float
    correction: str
    inference: str


class EmergingRegion(BaseModel):
    region: str = Field(description="NUTS code.")
    name: str = Field(description="Name in Latin script.")
    national_name: str = Field(description="Name in the national language.")
    country: str
    category: str = Field(description="One of the 17 category codes (counts lists them).")
    label: str = Field(description="The category's English name.")
    trend_z: float | None = Field(description="Mann-Kendall z of the region's Gi* z-scores.")
    trend_p: float | None = Field(description="Two-sided p-value of the trend.")
    trend_tau: float | None = Field(description="Kendall's tau of the trend.")
    n_years: int = Field(description="Years with a Gi* z-score.")
    n_hot: int = Field(description="Years as a significant hot spot.")
    n_cold: int = Field(description="Years as a significant cold spot.")
    hot_years: list[int]
    cold_years: list[int]
    z: dict[str, float | None] = Field(description="Gi* z-score per year (null: no value).")
    bins: dict[str, int] = Field(description="Per year: +1 hot, -1 cold, 0 neither.")


class EmergingResult(BaseModel):
    parameters: EmergingParameters
    counts: dict[str, int] = Field(
        description="Regions per category: the 16 patterns and no_pattern, zeros included."
    )
    regions: list[EmergingRegion]


class SimilarRegion(BaseModel):
    region: str = Field(description="NUTS code.")
    rank: int = Field(description="1 = most similar.")
    distance: float = Field(description="Euclidean distance over the standardised indicators.")
    name: str
    national_name: str
    country: str
    z: dict[str, float | None] = Field(description="Standardised value per indicator.")
    values: dict[str, float | None] = Field(description="Value per indicator.")


class SimilarParameters(BaseModel):
    region: str
    level: int
    datasets: list[str]
    indicators: list[str]
    year: int
    k: int
    exclude_country: bool
    area: str


class SimilarResult(BaseModel):
    parameters: SimilarParameters
    region: SimilarRegion = Field(description="The region compared (rank 0, distance 0).")
    compared: int = Field(description="Regions with every indicator in the year compared.")
    similar: list[SimilarRegion]
    notes: list[str] = Field(description="Regions dropped, constant indicators left out.")
