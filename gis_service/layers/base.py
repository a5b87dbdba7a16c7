"""The contract every layer follows: its table, geometry and typed fields.

A layer is published only if it is in :mod:`gis_service.layers.registry`; identifiers that reach SQL
come from here, never from a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FieldType = Literal["text", "integer", "number", "boolean", "date", "text_list"]
GeometryType = Literal["Point", "LineString", "MultiLineString", "MultiPolygon"]

#: 12-digit statistical division code (统计用区划代码).
DIVISION_CODE_PATTERN = r"^[0-9]{12}$"
STATUS_VALUES = ("existing", "planned", "closed")


@dataclass(frozen=True)
class Field:
    """One attribute of a layer, as stored and as served."""

    name: str
    type: FieldType
    description: str
    title_zh: str = ""
    required: bool = False
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    #: Text of several lines (tabs and line breaks allowed); other text is one line.
    multiline: bool = False
    #: "division": must be the code of a current administrative division.
    references: Literal["division"] | None = None
    #: Unique among the layer's (current) features.
    unique: bool = False
    #: Computed by the service from the geometry (e.g. length_m); never taken from input.
    computed: bool = False
    default: object = None


@dataclass(frozen=True)
class Layer:
    """A published collection backed by one table."""

    id: str
    table: str
    title: str
    title_zh: str
    description: str
    geometry_type: GeometryType
    fields: tuple[Field, ...]
    #: Fields holding dates, for OGC ``datetime`` queries.
    temporal: tuple[str, ...] = ()
    #: SQL condition selecting the current features (e.g. divisions not yet replaced); None: all rows.
    current_condition: str | None = None
    #: Properties whose values are the feature's label in maps and search.
    label_field: str = "name"
    extra: dict = field(default_factory=dict)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def get_field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def writable_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.computed)


def data_source_field() -> Field:
    return Field("data_source", "text", "Where the feature comes from; demo data says 'synthetic' where it is.",
                 title_zh="数据来源", max_length=500)


def status_field() -> Field:
    return Field("status", "text", "existing, planned or closed.", title_zh="状态", enum=STATUS_VALUES,
                 default="existing")


#: How a point was placed from an address (io/geocode.py), most precise first.
LOCATION_PRECISIONS = ("settlement", "road", "village")


def location_precision_field() -> Field:
    return Field("location_precision", "text", "How the point was placed from an address: at a settlement (居民点), on "
                 "a road (道路) or at the village (村/社区); empty when coordinates were given.", title_zh="定位精度",
                 enum=LOCATION_PRECISIONS)


def division_field(name: str = "division_code", *, required: bool = False, description: str = "") -> Field:
    return Field(name, "text", description or "12-digit code of the administrative division it lies in.",
                 title_zh="所属区划代码", required=required, pattern=DIVISION_CODE_PATTERN, references="division")


def name_field(description: str = "Standard name.") -> Field:
    return Field("name", "text", description, title_zh="名称", required=True, max_length=100)
