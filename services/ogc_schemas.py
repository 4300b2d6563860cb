"""Response models of the OGC API – Features endpoints (for the OpenAPI document and tests)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid")

    href: str
    rel: str
    type: str | None = None
    title: str | None = None
    templated: bool | None = None


class LandingPage(BaseModel):
    title: str
    description: str
    links: list[Link]


class Conformance(BaseModel):
    conformsTo: list[str]  # noqa: N815 (OGC member name)


class SpatialExtent(BaseModel):
    bbox: list[list[float]] = Field(min_length=1)
    crs: str


class TemporalExtent(BaseModel):
    interval: list[list[str | None]] = Field(min_length=1)
    trs: str


class Extent(BaseModel):
    spatial: SpatialExtent
    temporal: TemporalExtent | None = None


class Collection(BaseModel):
    id: str
    title: str
    description: str
    keywords: list[str]
    attribution: str
    extent: Extent
    itemType: Literal["feature"]  # noqa: N815
    itemCount: int = Field(ge=0)  # noqa: N815
    crs: list[str] = Field(min_length=1)
    storageCrs: str  # noqa: N815
    links: list[Link]


class Collections(BaseModel):
    links: list[Link]
    collections: list[Collection]


class FeatureCollection(BaseModel):
    """A page of features (``application/geo+json``)."""

    type: Literal["FeatureCollection"]
    features: list[dict[str, Any]]
    numberMatched: int = Field(ge=0)  # noqa: N815
    numberReturned: int = Field(ge=0)  # noqa: N815
    timeStamp: str  # noqa: N815
    links: list[Link]


class Feature(BaseModel):
    type: Literal["Feature"]
    id: str
    geometry: dict[str, Any] | None
    properties: dict[str, Any]
    links: list[Link] | None = None
