"""The contract every layer follows: its table, geometry, typed fields and everything that differs between layers.

A layer is published only if it is in :mod:`gis_service.layers.registry`; identifiers that reach SQL come from
here, never from a request. Whatever one layer does differently from another is said here, as data or a small
hook, and every caller asks the layer: its enumerated values with their Chinese labels and accepted aliases
(:class:`Value`), what its fields refer to (:class:`Reference`), the checks across the fields of a row
(:class:`RowRule`), which roles write it, its part in the road network's analyses (:class:`NetworkRole`), how
a name change is recorded (:class:`KeepFormerRecord`, :class:`AppendFormerName`), whether its pinyin is
generated (:class:`Spelling`) and how maps draw it (:class:`MapStyle`). Nothing outside ``gis_service/layers/``
branches on a layer's id.

Pure: no database access.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

FieldType = Literal["text", "integer", "number", "boolean", "date", "text_list"]
GeometryType = Literal["Point", "LineString", "MultiLineString", "MultiPolygon"]
#: How a field is stored, where it is not the plain type of its FieldType (text, integer, double precision, ...).
StorageType = Literal["varchar(12)", "char(1)", "smallint", "bigint", "real"]

#: The roles of the bureau's staff; ``admin`` may change everything, the others what each layer's ``writers`` say.
ROLES = ("inspector", "placename", "planner", "admin")
ADMIN = "admin"

#: 12-digit statistical division code (统计用区划代码).
DIVISION_CODE_PATTERN = r"^[0-9]{12}$"


@dataclass(frozen=True)
class Value:
    """One value of an enumerated field: the code stored and served, its Chinese label (what people read and
    write), other spellings accepted for it, and tags that say what it counts as (e.g. ``institution``)."""

    code: str
    label_zh: str
    aliases: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()
    #: How maps draw features with this value (see :attr:`MapStyle.by`): fill colour and icon shape.
    color: str | None = None
    shape: str | None = None


@dataclass(frozen=True)
class Reference:
    """A field whose value must name an existing feature of ``layer`` (a current one, where that layer keeps
    versions) by its ``field``. ``problem`` is the message when it does not, with ``{value}``.

    The database enforces it too: by a foreign key with these ``on_delete``/``on_update`` actions, or, where
    ``foreign_key`` is false (a reference to a current version, which a foreign key cannot name), by a trigger."""

    layer: str
    field: str
    problem: str
    foreign_key: bool = True
    on_delete: str | None = None
    on_update: str | None = None


@dataclass(frozen=True)
class RowRule:
    """A check across fields of one row: a row breaks it when ``holds(row)`` is false, and the problem (``problem``
    formatted with the row's values) is reported on ``field``. Rows where one of ``reads`` is empty or already
    has a problem are not checked."""

    reads: tuple[str, ...]
    field: str
    holds: Callable[[Mapping[str, object]], bool]
    problem: str

    def check(self, row: Mapping[str, object]) -> str | None:
        """The problem of ``row`` (a mapping holding at least ``reads``), or None."""
        if any(row[name] is None for name in self.reads) or self.holds(row):
            return None
        return self.problem.format(**row)


@dataclass(frozen=True)
class Population:
    """Who a kind of facility is planned for (the civil-affairs plan, 民政事业发展"十四五"规划, ch. 5 §2: the
    15-minute circle for urban communities, rural happiness homes at village level): the settlements whose
    village-level unit has ``urban_rural`` (None: every settlement). The analyses count these households and name
    them in every answer (``served_population``). ``own_township``: a household is served only by a facility of its
    own township (the township its village belongs to), as a township home (敬老院) serves its township."""

    code: str
    label_zh: str
    description: str
    urban_rural: str | None = None
    own_township: bool = False


EVERYONE = Population("everyone", "全体居民", "every household of every settlement")
POPULATIONS: dict[str, Population] = {p.code: p for p in (
    EVERYONE,
    Population("urban_communities", "城镇社区居民", "households of the settlements of urban communities (村(社区) "
               "with urban_rural = urban)", "urban"),
    Population("rural_villages", "农村居民", "households of the settlements of rural villages (村(社区) with "
               "urban_rural = rural)", "rural"),
    Population("own_township", "本乡镇居民", "every household, served only by a facility of its own township (the "
               "township its 村(社区) belongs to)", own_township=True),
)}


@dataclass(frozen=True)
class Reach:
    """How far a kind of facility is meant to serve: a travel mode and minutes, and why (what the plan says). The
    analyses use it when a request names no mode or minutes, and say so."""

    mode: Literal["walk", "cycle", "drive"]
    minutes: float
    why: str


#: The plan's one figure of reach: the 15-minute circle (“15分钟路程半径”, ch. 5 §2), walked (GB 50180-2018).
FIFTEEN_MINUTE_WALK = Reach("walk", 15, "the plan's 15-minute circle (15分钟路程半径, ch. 5 §2), walked")


@dataclass(frozen=True)
class NetworkRole:
    """What a layer is to the analyses along the roads: the ``demand`` (households to serve) or a ``facility``
    layer (what serves them). ``columns``: the fields the analyses read besides id and geometry."""

    role: Literal["demand", "facility"]
    columns: tuple[str, ...]
    #: Only features with these values count (facilities: those that exist, not the planned or closed ones).
    counts: tuple[tuple[str, object], ...] = ()
    #: Facilities: the field holding the kind asked for by ``kind=`` (none: the layer has one kind).
    kind: str | None = None
    #: Demand: the field naming the village, whose parent division is the feature's township.
    village: str | None = None
    #: Facilities: (kind, population code) for the kinds planned for part of the people (see :class:`Population`);
    #: other kinds, a layer without kinds and all kinds at once serve everyone.
    serves: tuple[tuple[str, str], ...] = ()
    #: Facilities: (kind, reach) for the kinds whose default travel is not the 15-minute walk (see :class:`Reach`).
    reaches: tuple[tuple[str, Reach], ...] = ()

    def population(self, kind: str | None) -> Population:
        """Whom facilities of ``kind`` (None: every kind of the layer) are for."""
        return POPULATIONS[dict(self.serves).get(kind, EVERYONE.code)] if kind else EVERYONE

    def reach(self, kind: str | None) -> Reach:
        """The default travel of facilities of ``kind`` (None: every kind of the layer: the 15-minute walk)."""
        return dict(self.reaches).get(kind, FIFTEEN_MINUTE_WALK) if kind else FIFTEEN_MINUTE_WALK


@dataclass(frozen=True)
class Spelling:
    """``field`` holds the Hanyu Pinyin of ``source``, generated when not given and again when ``source`` changes;
    ``manual`` (a spelling set by hand) is cleared then, unless the same change sets it."""

    field: str = "pinyin"
    source: str = "name"
    manual: str | None = None


@dataclass(frozen=True)
class KeepFormerRecord:
    """A rename keeps the feature's id; its old name becomes a record of its own (a copy with ``status`` set to
    ``historical``, ``successor`` pointing at the renamed feature) and ``history`` gains a line saying when.
    Only a current feature (``status`` = ``current``) leaves such a record."""

    status: str = "status"
    current: str = "current"
    historical: str = "historical"
    successor: str = "successor_id"
    history: str = "history"


@dataclass(frozen=True)
class AppendFormerName:
    """A rename appends the old name to the list field ``field`` (when it is not in it already)."""

    field: str = "former_names"


@dataclass(frozen=True)
class MapStyle:
    """How maps draw the layer where a recipe does not say otherwise (see :mod:`gis_service.maps.recipes`)."""

    #: Points: ``circle`` (a circle marker) or ``icon`` (an SVG shape).
    symbol: Literal["circle", "icon"] = "circle"
    shape: str = "circle"
    size: int = 14
    color: str = "#1565c0"
    #: An enumerated field whose values' ``color`` and ``shape`` draw each feature, with a legend entry per value.
    by: str | None = None
    #: Lines drawn merged: one per value of these fields (with their summed length_m), not one per segment.
    merged_by: tuple[str, ...] = ()
    #: (field, value): lines with this value are merged without their label (many short named tracks).
    unnamed_when: tuple[str, str] | None = None


@dataclass(frozen=True)
class Field:
    """One attribute of a layer, as stored and as served."""

    name: str
    type: FieldType
    description: str
    title_zh: str = ""
    required: bool = False
    #: The values an enumerated field takes, with their Chinese labels and aliases; None: any value of its type.
    values: tuple[Value, ...] | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    #: Text of several lines (tabs and line breaks allowed); other text is one line.
    multiline: bool = False
    references: Reference | None = None
    #: Unique among the layer's (current) features.
    unique: bool = False
    #: Computed by the service from the geometry (e.g. length_m); never taken from input.
    computed: bool = False
    default: object = None
    #: The column's type where it is not the plain one of ``type`` (see :mod:`gis_service.store.tables`).
    storage: StorageType | None = None
    #: Other column headers that name this field in the bureau's files, besides its name and ``title_zh``
    #: (compared as :func:`header_key` does; a unit in brackets after a header is ignored: 床位(张) is 床位).
    synonyms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.values is not None:
            _check_unambiguous(self.name, self.values)

    @property
    def headers(self) -> tuple[str, ...]:
        """Every column header that names this field: its name, its Chinese title, its synonyms."""
        return (self.name, *((self.title_zh,) if self.title_zh else ()), *self.synonyms)

    @property
    def heading(self) -> str:
        """How a message names the field: ``beds (床位)``."""
        return f"{self.name} ({self.title_zh})" if self.title_zh else self.name

    @property
    def codes(self) -> tuple[str, ...] | None:
        """The codes of an enumerated field, in order; None for any other field."""
        return None if self.values is None else tuple(v.code for v in self.values)

    def label_of(self, code: object) -> str:
        """The Chinese label of ``code`` (the code itself when the field has no such value; empty for None)."""
        if code is None:
            return ""
        found = next((v for v in self.values or () if v.code == code), None)
        return found.label_zh if found else str(code)

    def code_of(self, text: object) -> str | None:
        """The code ``text`` names: a code, a Chinese label or an alias (spaces around it ignored, Latin letters in
        any case, full-width forms as their ASCII ones), or None when it names none. A label two values share (A and
        B are both 同号双立) names neither."""
        if not isinstance(text, str) or self.values is None:
            return None
        return _lookup(self.values).get(_value_key(text))

    def codes_labelled(self, text: str) -> tuple[str, ...]:
        """The codes of the values whose label or alias is ``text`` (several for a label they share)."""
        key = _value_key(text)
        return tuple(v.code for v in self.values or () if key in {_value_key(t) for t in (v.label_zh, *v.aliases)})

    def written_label(self, code: object) -> object:
        """What a file in Chinese holds for ``code``: its label, or the code itself where the label is shared by
        several values (and would not name it) or the field has no such value."""
        label = self.label_of(code)
        return label if code is not None and self.code_of(label) == code else code

    @property
    def accepted_values(self) -> str:
        """The values of an enumerated field as a message lists them: ``township_home (敬老院), ...``."""
        return ", ".join(f"{v.code} ({v.label_zh})" if v.label_zh != v.code else v.code for v in self.values or ())

    def codes_tagged(self, tag: str) -> tuple[str, ...]:
        """The codes of the values tagged ``tag``, e.g. the elder-care kinds that are institutions."""
        return tuple(v.code for v in self.values or () if tag in v.tags)


def _value_key(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


@functools.cache
def _lookup(values: tuple[Value, ...]) -> dict[str, str]:
    """Code, label or alias (as :func:`_value_key` reads it) -> code; a text naming two values maps to none."""
    names: dict[str, set[str]] = {}
    for value in values:
        for text in (value.code, value.label_zh, *value.aliases):
            names.setdefault(_value_key(text), set()).add(value.code)
    codes = {_value_key(v.code): v.code for v in values}
    return {text: codes.get(text) or next(iter(found)) for text, found in names.items()
            if len(found) == 1 or text in codes}


def header_key(header: object) -> str:
    """A column header as headers are compared: full-width forms as ASCII (（）→()), no spaces, any case."""
    return "".join(unicodedata.normalize("NFKC", str(header)).split()).casefold() if header is not None else ""


#: A unit in brackets closing a header: 床位(张), 建筑面积(平方米), 经度(°).
_UNIT = re.compile(r"\([^()]*\)$")


def without_unit(key: str) -> str:
    """A header key (:func:`header_key`) without the unit in brackets that closes it (the key itself when the
    brackets are all it holds)."""
    return _UNIT.sub("", key) or key


def _check_unambiguous(name: str, values: tuple[Value, ...]) -> None:
    """A code is never another value's label or alias, and an alias names one value: a mistake in the registry."""
    codes = {v.code.casefold(): v.code for v in values}
    for value in values:
        for alias in value.aliases:
            other = codes.get(alias.casefold())
            if other is not None and other != value.code:
                raise ValueError(f"field {name}: alias {alias!r} of {value.code} is the code {other}")
        other = codes.get(value.label_zh.casefold())
        if other is not None and other != value.code:
            raise ValueError(f"field {name}: the label of {value.code} is the code {other}")


@dataclass(frozen=True, eq=False)
class Layer:
    """A published collection backed by one table, and the rules that are its own."""

    id: str
    table: str
    title: str
    title_zh: str
    description: str
    geometry_type: GeometryType
    fields: tuple[Field, ...]
    #: Fields holding dates, for OGC ``datetime`` queries.
    temporal: tuple[str, ...] = ()
    #: (valid_from, valid_to) of a layer that keeps earlier versions of its features: the current ones have no
    #: valid_to. None: every row is current.
    validity: tuple[str, str] | None = None
    #: Properties whose values are the feature's label in maps and search.
    label_field: str = "name"
    #: Checks across the fields of one row (beyond each field's own).
    rules: tuple[RowRule, ...] = ()
    #: Who may change the layer besides ``admin``: role -> the fields it may change (None: every field, and it may
    #: create and delete features).
    writers: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    network: NetworkRole | None = None
    spelling: Spelling | None = None
    on_rename: KeepFormerRecord | AppendFormerName | None = None
    map_style: MapStyle = MapStyle()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_headers", _header_index(self))

    def field_for_header(self, header: object) -> Field | None:
        """The field a file's column header names: its name, Chinese title or a synonym, with or without a unit
        in brackets after it (床位数(张) is beds); None when it names none."""
        key = header_key(header)
        headers: dict[str, str] = self._headers  # type: ignore[attr-defined]
        name = headers.get(key) or headers.get(without_unit(key))
        return None if name is None else self.field_named(name)

    @property
    def current_condition(self) -> str | None:
        """``validity`` as the text of a SQL condition selecting the current features (None: all are current), for
        statements written by hand; the service's own are built from it by :mod:`gis_service.store`."""
        return None if self.validity is None else f"{self.validity[1]} IS NULL"

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def get_field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def field_named(self, name: str) -> Field:
        """The field ``name``, which the caller knows the layer has (KeyError otherwise: a mistake in the code)."""
        found = self.get_field(name)
        if found is None:
            raise KeyError(f"{self.id} has no field {name}")
        return found

    @property
    def writable_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.computed)

    @property
    def computed_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.computed)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of a facility layer (its kind field's codes); empty when it has one kind."""
        kind = self.network.kind if self.network else None
        return self.field_named(kind).codes or () if kind else ()

    def may_be_changed_by(self, role: str, fields: set[str] | None) -> bool:
        """Whether ``role`` may change ``fields`` of a feature (None: the whole feature: create or delete)."""
        if role == ADMIN:
            return True
        if role not in self.writers:
            return False
        allowed = self.writers[role]
        return allowed is None or (fields is not None and fields <= allowed)


def _header_index(layer: Layer) -> dict[str, str]:
    """Header key (with its unit and without) -> the field of ``layer`` it names; a header naming two fields is a
    mistake in the registry, found when the layer is built."""
    found: dict[str, str] = {}
    for spec in layer.fields:
        for header in spec.headers:
            for key in {header_key(header), without_unit(header_key(header))}:
                if found.setdefault(key, spec.name) != spec.name:
                    raise ValueError(f"layer {layer.id}: the header {header!r} names both {found[key]} and "
                                     f"{spec.name}")
    return found


def data_source_field() -> Field:
    return Field("data_source", "text", "Where the feature comes from; demo data says 'synthetic' where it is.",
                 title_zh="数据来源", max_length=500, synonyms=("来源", "资料来源"))


#: Whether a facility exists: only existing ones count in the analyses and indicators (see NetworkRole.counts).
STATUS_VALUES = (
    Value("existing", "现有", ("在用", "已建成")),
    Value("planned", "规划", ("规划中", "拟建")),
    Value("closed", "已关闭", ("关闭", "停用")),
)
URBAN_RURAL_VALUES = (Value("urban", "城镇", ("城市", "城区")), Value("rural", "农村", ("乡村",)))


def status_field() -> Field:
    return Field("status", "text", "existing, planned or closed.", title_zh="状态", values=STATUS_VALUES,
                 default="existing", synonyms=("现状", "运营状态", "建设状态"))


#: How a point was placed from an address (io/geocode.py), most precise first.
LOCATION_PRECISION_VALUES = (
    Value("settlement", "居民点", ("自然村", "院落")),
    Value("road", "道路", ("路",)),
    Value("village", "村(社区)", ("村", "社区", "村级")),
)
LOCATION_PRECISIONS = tuple(v.code for v in LOCATION_PRECISION_VALUES)


def location_precision_field() -> Field:
    return Field("location_precision", "text", "How the point was placed from an address: at a settlement (居民点), on "
                 "a road (道路) or at the village (村/社区); empty when coordinates were given.", title_zh="定位精度",
                 values=LOCATION_PRECISION_VALUES)


def division_field(name: str = "division_code", *, required: bool = False, description: str = "",
                   synonyms: tuple[str, ...] = ()) -> Field:
    return Field(name, "text", description or "12-digit code of the administrative division it lies in.",
                 title_zh="所属区划代码", required=required, pattern=DIVISION_CODE_PATTERN, storage="varchar(12)",
                 references=DIVISION_REFERENCE,
                 synonyms=("区划代码", "行政区划代码", "统计用区划代码", "所在区划代码", *synonyms))


#: A current administrative division, named by its code.
DIVISION_REFERENCE = Reference("admin_divisions", "code", "{value} is not the code of a current administrative "
                               "division", foreign_key=False)


def name_field(description: str = "Standard name.", *, synonyms: tuple[str, ...] = ()) -> Field:
    """The feature's name; ``synonyms``: the layer's own headers for it (机构名称, 道路名称 ...) besides 名称/名字."""
    return Field("name", "text", description, title_zh="名称", required=True, max_length=100,
                 synonyms=("名字", "标准名称", *synonyms))


def facility_network_role(kind: str | None = None, serves: tuple[tuple[str, str], ...] = (),
                          reaches: tuple[tuple[str, Reach], ...] = ()) -> NetworkRole:
    """The part of a facility layer in the analyses: its existing features (of the kind asked for, by the field
    ``kind``) serve the settlements (those of the population ``serves`` names for their kind, within the reach
    ``reaches`` gives it); the analyses read their name, kind and division."""
    columns = ("name", kind, "division_code") if kind else ("name", "division_code")
    return NetworkRole("facility", columns, counts=(("status", "existing"),), kind=kind, serves=serves,
                       reaches=reaches)
