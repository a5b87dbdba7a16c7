"""Query parameters of ``/collections/{id}/items``, checked early and turned into an :class:`ItemsQuery`.

A request is parsed once, here, from its query string (:func:`parse_items_query`): FastAPI does not parse the
parameters as well, and :func:`items_parameters` describes them for the API document. Every message names the
parameter, says what was expected and shows what was sent.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gis_service.errors import InvalidInputError
from gis_service.io.validate import CONTROL_CHARACTERS
from gis_service.layers import LAYERS
from gis_service.layers.base import Layer
from gis_service.limits import FILTER_LIMITS_DOC, MAX_FILTER_CHARS
from gis_service.ogc.crs import CRS_DOC, ServedCrs, parse_crs
from gis_service.ogc.filters import FILTER_LANGS, GEOMETRY_NAMES, parse_filter

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
#: PostgreSQL's bigint: the largest feature id, and the largest offset (OFFSET takes a bigint).
BIGINT_MAX = 2**63 - 1
MAX_OFFSET = BIGINT_MAX
#: Parameters of the items endpoint; any other name must be a queryable (a property filter).
ITEMS_PARAMETERS = ("f", "bbox", "bbox-crs", "crs", "limit", "offset", "datetime", "properties", "sortby",
                    "filter", "filter-lang", "filter-crs")
FORMATS = ("json", "geojson", "html")

# What `datetime` accepts, as the API document's pattern: an RFC 3339 date or date-time (days of the calendar
# only: 29 February in leap years), or an interval of two with `..` (or nothing) for an open end, not open at both.
_YEAR = "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_DATE = (f"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
         f"|02-(?:0[1-9]|1[0-9]|2[0-8]))|{_LEAP_YEAR}-02-29)")
_TIME = r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_INSTANT = f"{_DATE}(?:{_TIME})?"
DATETIME_PATTERN = rf"^(?:{_INSTANT}(?:/(?:{_INSTANT}|\.\.)?)?|(?:\.\.)?/{_INSTANT})$"


@dataclass
class ItemsQuery:
    """What a client asked of a collection's items, checked against the layer."""

    layer: Layer
    crs: ServedCrs
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: ServedCrs | None = None
    #: Closed interval of dates; None at either end means open.
    datetime: tuple[dt.date | None, dt.date | None] | None = None
    property_filters: dict[str, object] = field(default_factory=dict)
    filter: dict | None = None
    filter_crs: ServedCrs | None = None
    #: (field name, descending) in order of precedence; the id is always the last key.
    sortby: list[tuple[str, bool]] = field(default_factory=list)
    #: Fields to return; None: all.
    properties: list[str] | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    f: str = "json"


def parse_items_query(layer: Layer, params: Mapping[str, str], *, measure_srid: int) -> ItemsQuery:
    """An :class:`ItemsQuery` from the request's query parameters; InvalidInputError (400) on any bad one."""
    unknown = [name for name in params if name not in ITEMS_PARAMETERS and name not in layer.field_names
               and name != "id"]
    if unknown:
        raise InvalidInputError(
            f"unknown query parameter {unknown[0]!r}; the parameters are {', '.join(ITEMS_PARAMETERS)} and the "
            f"queryables of {layer.id} as property filters: {', '.join(layer.field_names)}")
    for name, value in params.items():
        if CONTROL_CHARACTERS.search(value):
            raise InvalidInputError(f"{name} contains control characters; send it without them")
    query = ItemsQuery(layer=layer, crs=parse_crs(params.get("crs"), parameter="crs", measure_srid=measure_srid))
    query.f = parse_format(params.get("f"))
    # above the maximum, limit is capped rather than refused (OGC API - Features Part 1, 7.15.3; the OGC test
    # suite asks for a larger page and expects the maximum)
    limit = parse_int(params.get("limit"), "limit", default=DEFAULT_LIMIT, low=None, high=None)
    if limit < 1:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}; got {limit}")
    query.limit = min(limit, MAX_LIMIT)
    query.offset = parse_int(params.get("offset"), "offset", default=0, low=0, high=MAX_OFFSET)
    # bbox-crs and filter-crs are checked even without the bbox or filter they describe (where they change nothing)
    bbox_crs = parse_crs(params.get("bbox-crs"), parameter="bbox-crs", measure_srid=measure_srid)
    filter_crs = parse_crs(params.get("filter-crs"), parameter="filter-crs", measure_srid=measure_srid)
    if params.get("bbox") is not None:
        query.bbox_crs = bbox_crs
        query.bbox = parse_bbox(params["bbox"], bbox_crs)
    if params.get("datetime") is not None:
        if not layer.temporal:
            raise InvalidInputError(f"{layer.id} has no dates, so datetime cannot be used on it")
        query.datetime = parse_datetime(params["datetime"])
    for name in layer.field_names:
        if name in params:
            query.property_filters[name] = parse_property_value(layer, name, params[name])
    if "id" in params:
        query.property_filters["id"] = parse_int(params["id"], "id", default=0, low=None, high=None)
    if params.get("filter") is not None:
        query.filter_crs = filter_crs
        query.filter = parse_filter(params["filter"], params.get("filter-lang"))
    elif params.get("filter-lang") is not None and params["filter-lang"] not in FILTER_LANGS:
        raise InvalidInputError(f"filter-lang must be one of {', '.join(FILTER_LANGS)}; got {params['filter-lang']!r}")
    if params.get("sortby") is not None:
        query.sortby = parse_sortby(layer, params["sortby"])
    if params.get("properties") is not None:
        query.properties = parse_properties(layer, params["properties"])
    return query


def items_parameters() -> list[dict]:
    """The query parameters :func:`parse_items_query` reads, as OpenAPI parameter objects (the property filters,
    one per queryable, are described by the operation). The CRS parameters' choices depend on the county and are
    added when the document is finished (:func:`gis_service.api.openapi.finish`)."""
    all_fields = sorted({f for layer in LAYERS.values() for f in layer.field_names})

    def query(name: str, description: str, schema: dict, **extra) -> dict:
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": {"type": "string", **schema, "description": description}, **extra}

    return [
        query("f", f"Response format: {' or '.join(FORMATS)} (default json).", {"enum": list(FORMATS)}),
        query("bbox", "minx,miny,maxx,maxy (or 6 numbers with heights) in `bbox-crs`, in that CRS's axis order "
              "(CRS84: lon,lat; EPSG:4490/4326: lat,lon; EPSG:4545: northing,easting), the minimum not above the "
              "maximum, longitudes and latitudes within ±180 and ±90. Features intersecting it.",
              {"type": "array", "items": {"type": "number"},
               "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}]},
              examples={"county seat": {"value": [108.95, 28.40, 109.05, 28.50]}}),
        query("bbox-crs", "CRS of `bbox`: " + CRS_DOC, {}),
        query("crs", "CRS of the returned geometries (the `Content-Crs` header says which): " + CRS_DOC, {}),
        query("limit", f"Features per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}); a larger limit is served "
              f"as {MAX_LIMIT}.",
              {"type": "integer", "minimum": 1, "default": DEFAULT_LIMIT}),  # no maximum: a larger one is capped
        query("offset", "Features to skip (the `next` link sets it).",
              {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}),
        query("datetime", "A date or RFC 3339 date-time, or an interval `start/end` with `..` (or nothing) for an "
              "open end; the start not after the end. admin_divisions: the versions in force then; other layers "
              "with dates (see the collection's datetimeProperty): their first date field within it. A layer "
              "without dates refuses it.", {"pattern": DATETIME_PATTERN}),
        query("properties", "Comma-separated properties of the collection to return (default: all; empty: none); "
              "see its /queryables.", {"pattern": name_list_pattern([*all_fields, *GEOMETRY_NAMES], signed=False)}),
        query("sortby", "Comma-separated properties of the collection (or id) to sort by, `-name` for descending; "
              "ties are broken by id.", {"pattern": name_list_pattern(["id", *all_fields], signed=True)}),
        query("filter", "A CQL2 filter (text or JSON, see `filter-lang`) on the queryables: comparisons, LIKE, IN, "
              "BETWEEN, IS NULL, AND/OR/NOT, CASEI, ACCENTI, S_INTERSECTS/S_WITHIN/S_CONTAINS/S_DWITHIN (distance in "
              "metres), A_CONTAINS…, T_BEFORE/T_AFTER/T_INTERSECTS. The geometry is `geometry`. E.g. on "
              "elder_care: `kind = 'township_home' AND beds >= 50`. " + FILTER_LIMITS_DOC,
              {"maxLength": MAX_FILTER_CHARS},
              examples={"cql2-text": {"value": "S_INTERSECTS(geometry, BBOX(108.95, 28.40, 109.05, 28.50))"}}),
        query("filter-lang", "cql2-text (default) or cql2-json.", {"enum": list(FILTER_LANGS)}),
        query("filter-crs", "CRS of geometry literals in `filter`: " + CRS_DOC, {}),
    ]


def parse_format(value: str | None, formats: tuple[str, ...] = FORMATS) -> str:
    """json (also for geojson) or html: the ``f`` asked for, among ``formats`` (any case); json when absent."""
    if value is None:
        return "json"
    if value.lower() not in formats:
        raise InvalidInputError(f"f must be {' or '.join(formats)} here; got {value!r}")
    return "json" if value.lower() == "geojson" else value.lower()


def parse_int(value: str | None, name: str, *, default: int, low: int | None, high: int | None) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInputError(f"{name} must be a whole number; got {value!r}") from None
    too_low, too_high = low is not None and number < low, high is not None and number > high
    if too_low or too_high:
        if low is not None and high is not None and high < BIGINT_MAX:
            bounds = f"between {low} and {high}"
        else:  # one side is a technical limit (a bigint): name only the side that was crossed
            bounds = f"at least {low}" if too_low else f"at most {high}"
        raise InvalidInputError(f"{name} must be {bounds}; got {number}")
    return number


def parse_bbox(value: str, crs: ServedCrs) -> tuple[float, float, float, float]:
    """``minx,miny,maxx,maxy`` in ``crs``'s axis order (4 or 6 numbers), returned as x/y (east, north) order."""
    order = "lat,lon" if crs.lat_first and crs.geographic else ("northing,easting" if crs.lat_first else "x,y")
    hint = (f"bbox must be minx,miny,maxx,maxy (4 numbers, or 6 with heights) in {crs.uri} axis order ({order}); "
            f"got {value!r}")
    parts = [p.strip() for p in value.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise InvalidInputError(hint + ": not all are numbers") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4:
        raise InvalidInputError(hint + f": {len(parts)} values")
    if not all(math.isfinite(n) for n in numbers):
        raise InvalidInputError(hint + ": values must be finite")
    a1, b1, a2, b2 = numbers
    if a1 > a2 or b1 > b2:
        raise InvalidInputError(hint + ": the minimum exceeds the maximum"
                                + (" (minx > maxx)" if a1 > a2 else " (miny > maxy)"))
    if crs.lat_first:
        a1, b1, a2, b2 = b1, a1, b2, a2
    if crs.geographic and (a1 < -180 or a2 > 180 or b1 < -90 or b2 > 90):
        raise InvalidInputError(hint + ": longitude must be within -180..180 and latitude within -90..90")
    return a1, b1, a2, b2


def parse_datetime(value: str) -> tuple[dt.date | None, dt.date | None]:
    """An RFC 3339 instant or interval (``a/b``, ``../b``, ``a/..``) as a closed interval of dates."""
    if "/" in value and all(part in ("..", "") for part in value.split("/", 1)):
        raise InvalidInputError(f"datetime {value!r} is not an interval; give at least one end")
    if not re.fullmatch(DATETIME_PATTERN, value):
        raise InvalidInputError(
            "datetime must be a date or date-time (RFC 3339), or an interval start/end with '..' for an open end, "
            f"e.g. 2021-01-01, 2021-01-01T08:00:00Z, 2020-01-01/2021-12-31 or ../2021-12-31; got {value!r}")

    def one(text: str) -> dt.date | None:
        return None if text in ("..", "") else dt.date.fromisoformat(text[:10])  # the date as written

    start_text, _, end_text = value.partition("/")
    start, end = one(start_text), (one(end_text) if "/" in value else one(start_text))
    if start and end and start > end:
        raise InvalidInputError(f"datetime interval starts after it ends: {value!r}")
    return start, end


def parse_property_value(layer: Layer, name: str, value: str):
    """The value of a property filter (``?kind=community_station``) as the field's type."""
    spec = layer.get_field(name)
    kind = spec.type
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            lowered = value.lower()
            if lowered not in ("true", "false"):
                raise ValueError
            return lowered == "true"
        if kind == "date":
            return dt.date.fromisoformat(value)
    except ValueError:
        expected = {"integer": "a whole number", "number": "a number", "boolean": "true or false",
                    "date": "a date YYYY-MM-DD"}[kind]
        raise InvalidInputError(f"{name} must be {expected}; got {value!r}") from None
    if spec.values is not None and value not in spec.codes:
        raise InvalidInputError(f"{name} must be one of {', '.join(spec.codes)}; got {value!r}")
    return value


def name_list_pattern(names: Iterable[str], *, signed: bool) -> str:
    """The pattern of a comma-separated list of ``names`` (``sortby``, ``properties``), as the API document
    states it: spaces around an item allowed, empty items skipped, ``+``/``-`` in front of a name when ``signed``
    (a ``+`` typed in a URL arrives as a space)."""
    sign = "[+-]? *" if signed else ""
    item = f" *(?:{sign}(?:{'|'.join(re.escape(n) for n in names)}) *)?"
    return f"^{item}(?:,{item})*$"


_SORT_ITEM = re.compile(r" *([+-]?) *([A-Za-z_][A-Za-z0-9_]*) *")


def parse_sortby(layer: Layer, value: str) -> list[tuple[str, bool]]:
    """(name, descending) for each item of ``sortby``, e.g. ``-beds,name``."""
    keys = []
    for raw in value.split(","):
        if not raw.strip(" "):
            continue
        match = _SORT_ITEM.fullmatch(raw)
        name = match.group(2) if match else raw.strip()
        if match is None or (name != "id" and layer.get_field(name) is None):
            raise InvalidInputError(f"sortby: {layer.id} has no property {name!r}; sort by one of: "
                                    f"id, {', '.join(layer.field_names)} (prefix - for descending)")
        keys.append((name, match.group(1) == "-"))
    return keys


def parse_properties(layer: Layer, value: str) -> list[str]:
    """The names listed in ``properties`` (the geometry's name aside); an empty list: no properties."""
    names = [n.strip(" ") for n in value.split(",") if n.strip(" ")]
    for name in names:
        if layer.get_field(name) is None and name not in GEOMETRY_NAMES:
            raise InvalidInputError(f"properties: {layer.id} has no property {name!r}; choose from: "
                                    f"{', '.join(layer.field_names)}")
    return [n for n in names if n not in GEOMETRY_NAMES]
