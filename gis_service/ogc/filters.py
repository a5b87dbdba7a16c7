"""CQL2 filters (OGC API - Features Part 3) translated to SQL over one layer's table.

Parsing is done by the ``cql2`` package (developmentseed's cql2-rs): CQL2 text and CQL2 JSON both become
CQL2 JSON, which :class:`FilterTranslator` walks into a SQL condition, checking each operator's arguments.
Property names become column names only through the layer registry; every literal is a bound parameter; a query
geometry is transformed to the storage CRS (EPSG:4490) in Python before it is bound, so the column is compared as
stored and its GiST index is used.

Supported: ``= <> < <= > >=``, ``LIKE``, ``IN``, ``BETWEEN``, ``IS NULL``, ``AND``/``OR``/``NOT``, ``CASEI``,
``S_INTERSECTS``, ``S_WITHIN``, ``S_CONTAINS``, ``S_DISJOINT``, ``S_TOUCHES``, ``S_CROSSES``, ``S_OVERLAPS``,
``S_EQUALS``, ``S_DWITHIN`` (distance in metres, measured on the ellipsoid), the array operators ``A_CONTAINS``,
``A_CONTAINEDBY``, ``A_OVERLAPS``, ``A_EQUALS`` and the temporal ``T_BEFORE``, ``T_AFTER``, ``T_EQUALS``,
``T_INTERSECTS`` on date properties. Anything else is a 400 that names the operator and where it is.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field

import cql2
import numpy as np
import shapely
import shapely.geometry
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from gis_service.errors import FilterError, InvalidInputError
from gis_service.geo.gcj02 import gcj02_to_wgs84
from gis_service.layers.base import Field, Layer
from gis_service.limits import LimitExceeded, check_cql2_expression, check_cql2_json_text, check_cql2_text, load_json
from gis_service.ogc.crs import ServedCrs
from gis_service.settings import STORAGE_SRID

#: Names a filter may use for the layer's geometry.
GEOMETRY_NAMES = ("geometry", "geom")
FILTER_LANGS = ("cql2-text", "cql2-json")

_COMPARISONS = {"=": "=", "<>": "<>", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_SPATIAL = {"s_intersects": "ST_Intersects", "s_within": "ST_Within", "s_contains": "ST_Contains",
            "s_touches": "ST_Touches", "s_crosses": "ST_Crosses", "s_overlaps": "ST_Overlaps",
            "s_equals": "ST_Equals"}
_ARRAY = {"a_contains": "@>", "a_containedby": "<@", "a_overlaps": "&&", "a_equals": "="}
_TEMPORAL = {"t_before": "<", "t_after": ">", "t_equals": "="}
#: (fewest, most) arguments of each operator; None: no upper bound.
_ARITY = {"and": (2, None), "or": (2, None), "not": (1, 1), "like": (2, 2), "in": (2, 2), "between": (3, 3),
          "isnull": (1, 1), "s_dwithin": (3, 4), "s_disjoint": (2, 2), "t_intersects": (2, 2),
          **{op: (2, 2) for op in (*_COMPARISONS, *_SPATIAL, *_ARRAY, *_TEMPORAL)}}
_DISTANCE_UNITS_M = {"meters": 1.0, "metres": 1.0, "m": 1.0, "kilometers": 1000.0, "kilometres": 1000.0,
                     "km": 1000.0}
#: Metres per degree of latitude, lower bound (at the equator), for the index pre-filter of S_DWITHIN.
_M_PER_DEG_LAT_MIN = 110_574.0


def parse_filter(text: str, lang: str | None) -> dict:
    """CQL2 JSON of a ``filter`` parameter written in ``lang`` (cql2-text by default; JSON if it starts with '{').

    Raises FilterError with the parser's message, which shows the line and column where parsing failed.
    """
    if lang is not None and lang not in FILTER_LANGS:
        raise FilterError(f"filter-lang must be one of {', '.join(FILTER_LANGS)}; got {lang!r}")
    # The limits come first: cql2 (Rust) kills the process on input nested deep enough (see gis_service.limits).
    if lang == "cql2-json" or (lang is None and text.lstrip().startswith("{")):
        check_cql2_json_text(text)
        try:
            load_json(text, what="filter")
        except LimitExceeded:
            raise
        except InvalidInputError as exc:
            raise FilterError(f"{exc} (filter-lang cql2-json)") from None
        try:
            expr = cql2.parse_json(text)
        except (cql2.ParseError, ValueError) as exc:
            raise FilterError(f"filter is not valid CQL2 JSON: {exc}") from None
    else:
        check_cql2_text(text)
        try:
            expr = cql2.parse_text(text)
        except (cql2.ParseError, ValueError) as exc:
            raise FilterError(f"filter could not be parsed as CQL2 text; it failed here:\n{exc}") from None
    # cql2's schema validation costs ~50 ms a call; the translator checks each operator's arguments instead.
    parsed = expr.to_json()
    check_cql2_expression(parsed)  # the translator recurses: arithmetic chains nest as deep as they are long
    return parsed


@dataclass
class FilterTranslator:
    """Turns CQL2 JSON into a SQL condition on ``layer``'s table, adding bound values to ``params``.

    ``filter_crs`` is the CRS of geometry literals (its axis order is respected); ``prefix`` names the bound
    parameters so that several translators can share one ``params`` dict.
    """

    layer: Layer
    filter_crs: ServedCrs
    params: dict = field(default_factory=dict)
    prefix: str = "cql"

    def translate(self, node) -> str:
        """The SQL condition of CQL2 JSON ``node``; FilterError (400) names what is wrong and where."""
        try:
            return self._condition(node, "")
        except FilterError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise FilterError(f"filter is not well-formed CQL2 ({type(exc).__name__}: {exc}); see the CQL2 JSON "
                              f"schema or write the filter in CQL2 text") from None

    def _check_arity(self, op: str, args, node, path: str) -> None:
        if not isinstance(args, list):
            raise self._fail(f"the arguments of {op!r} must be a list", node, path)
        low, high = _ARITY.get(op, (0, None))
        if len(args) < low or (high is not None and len(args) > high):
            count = f"{low}" if low == high else f"{low} to {high}" if high else f"at least {low}"
            raise self._fail(f"{op!r} takes {count} arguments; got {len(args)}", node, path)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _bind(self, value) -> str:
        if any("\x00" in text for text in (value if isinstance(value, list) else [value]) if isinstance(text, str)):
            raise FilterError("filter holds the character NUL (\\u0000) in a text value; the database cannot "
                              "compare text that holds it, so no feature could match: remove it")
        name = f"{self.prefix}{len(self.params)}"
        while name in self.params:
            name += "_"
        self.params[name] = value
        return f":{name}"

    def _fail(self, message: str, node, path: str) -> FilterError:
        where = f" at {path or 'the top'}" if path else ""
        snippet = _as_text(node)
        return FilterError(f"filter{where}: {message}" + (f" (in: {snippet})" if snippet else ""))

    def _field(self, node, path: str) -> Field | None:
        """The registry field named by a ``{"property": ...}`` node; None for the feature id."""
        name = node["property"]
        if name == "id":
            return None
        spec = self.layer.get_field(name)
        if spec is None:
            known = ", ".join(["id", *self.layer.field_names, "geometry"])
            raise self._fail(f"unknown property {name!r}; the queryables of {self.layer.id} are: {known}",
                             node, path)
        return spec

    def _column(self, node, path: str) -> tuple[str, str]:
        """SQL column and its field type for a property node (geometry excluded)."""
        if node["property"] in GEOMETRY_NAMES:
            raise self._fail(f"{node['property']} is the geometry; compare it with S_INTERSECTS and the like",
                             node, path)
        spec = self._field(node, path)
        if spec is None:
            return "id", "integer"
        return spec.name, spec.type

    # -- conditions ------------------------------------------------------------------------------------------
    def _condition(self, node, path: str) -> str:
        if isinstance(node, bool):
            return "TRUE" if node else "FALSE"
        if isinstance(node, dict) and "property" in node:
            column, kind = self._column(node, path)
            if kind != "boolean":
                raise self._fail(f"{node['property']} is not a boolean, so it cannot stand alone as a condition",
                                 node, path)
            return column
        if not isinstance(node, dict) or "op" not in node:
            raise self._fail("expected a condition", node, path)
        op = str(node["op"]).lower()
        args = node.get("args", [])
        here = f"{path}/{op}" if path else op
        self._check_arity(op, args, node, path)
        if op in ("and", "or"):
            parts = [self._condition(a, f"{here}[{i}]") for i, a in enumerate(args)]
            return "(" + f" {op.upper()} ".join(parts) + ")"
        if op == "not":
            return f"(NOT {self._condition(args[0], f'{here}[0]')})"
        if op in _COMPARISONS:
            return self._comparison(_COMPARISONS[op], args, node, here)
        if op == "like":
            return self._like(args, node, here)
        if op == "in":
            return self._in(args, node, here)
        if op == "between":
            return self._between(args, node, here)
        if op == "isnull":
            column, _ = self._column_arg(args[0], node, here)
            return f"({column} IS NULL)"
        if op in _SPATIAL or op == "s_disjoint":
            return self._spatial(op, args, node, here)
        if op == "s_dwithin":
            return self._dwithin(args, node, here)
        if op in _ARRAY:
            return self._array(op, args, node, here)
        if op in _TEMPORAL or op == "t_intersects":
            return self._temporal(op, args, node, here)
        raise self._fail(f"the operator {node['op']!r} is not supported here; use comparisons, LIKE, IN, BETWEEN, "
                         "IS NULL, AND/OR/NOT, CASEI, S_INTERSECTS/S_WITHIN/S_DWITHIN and the other S_, A_ and "
                         "T_BEFORE/T_AFTER/T_EQUALS/T_INTERSECTS operators", node, path)

    def _column_arg(self, arg, node, path: str) -> tuple[str, str]:
        """A scalar argument that must be a property, possibly wrapped in CASEI/ACCENTI."""
        if isinstance(arg, dict) and "property" in arg:
            return self._column(arg, path)
        if isinstance(arg, dict) and str(arg.get("op", "")).lower() in ("casei", "accenti"):
            inner, kind = self._column_arg(arg["args"][0], node, path)
            if kind != "text":
                raise self._fail(f"{arg['op']} applies to text properties only", node, path)
            return (f"lower({inner})" if arg["op"].lower() == "casei" else inner), "text"
        raise self._fail("one side must be a property of the layer", node, path)

    def _scalar(self, arg, kind: str | None, node, path: str) -> str:
        """SQL of one side of a comparison: a property, CASEI(...) or a literal coerced to ``kind``."""
        if isinstance(arg, dict) and ("property" in arg or str(arg.get("op", "")).lower() in ("casei", "accenti")):
            return self._column_arg(arg, node, path)[0]
        return self._bind(self._literal(arg, kind, node, path))

    def _literal(self, value, kind: str | None, node, path: str):
        """A literal as the Python value bound for a column of field type ``kind``."""
        if isinstance(value, dict):
            if "date" in value:
                value = value["date"]
            elif "timestamp" in value:
                value = value["timestamp"]
            elif str(value.get("op", "")).lower() in ("casei", "accenti"):
                return str(self._literal(value["args"][0], kind, node, path)).lower()
            else:
                raise self._fail(f"expected a value, got {json.dumps(value, ensure_ascii=False)}", node, path)
        if kind is None:
            return value
        if kind in ("integer", "number"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self._fail(f"a number was expected, got {value!r}", node, path)
            if kind == "integer" and float(value).is_integer():
                return int(value)
            return float(value)
        if kind == "boolean":
            if not isinstance(value, bool):
                raise self._fail(f"true or false was expected, got {value!r}", node, path)
            return value
        if kind == "date":
            if not isinstance(value, str):
                raise self._fail(f"a date was expected (DATE('2020-01-31')), got {value!r}", node, path)
            try:
                return dt.date.fromisoformat(value[:10])
            except ValueError:
                raise self._fail(f"a date was expected (YYYY-MM-DD), got {value!r}", node, path) from None
        if kind == "text":
            if not isinstance(value, str):
                raise self._fail(f"text was expected, got {value!r}; write text in single quotes", node, path)
            return value
        if kind == "text_list":
            raise self._fail("a list property is compared with A_CONTAINS, A_OVERLAPS, A_CONTAINEDBY or A_EQUALS",
                             node, path)
        return value

    def _kind_of(self, arg, node, path: str) -> str | None:
        if isinstance(arg, dict) and ("property" in arg or str(arg.get("op", "")).lower() in ("casei", "accenti")):
            return self._column_arg(arg, node, path)[1]
        return None

    def _comparison(self, sql_op: str, args, node, path: str) -> str:
        kinds = [self._kind_of(a, node, path) for a in args]
        kind = next((k for k in kinds if k is not None), None)
        if kind is None:
            raise self._fail("a comparison needs a property on one side", node, path)
        if kind == "text_list":
            raise self._fail("a list property is compared with A_CONTAINS, A_OVERLAPS, A_CONTAINEDBY or A_EQUALS",
                             node, path)
        lhs, rhs = (self._scalar(a, kind, node, path) for a in args)
        return f"({lhs} {sql_op} {rhs})"

    def _like(self, args, node, path: str) -> str:
        column, kind = self._column_arg(args[0], node, path)
        if kind != "text":
            raise self._fail("LIKE applies to text properties only", node, path)
        pattern = self._literal(args[1], "text", node, path)
        if column.startswith("lower("):
            pattern = pattern.lower()
        return f"({column} LIKE {self._bind(pattern)})"

    def _in(self, args, node, path: str) -> str:
        column, kind = self._column_arg(args[0], node, path)
        values = args[1]
        if not isinstance(values, list) or not values:
            raise self._fail("IN needs a non-empty list of values", node, path)
        binds = [self._bind(self._literal(v, kind, node, path)) for v in values]
        return f"({column} IN ({', '.join(binds)}))"

    def _between(self, args, node, path: str) -> str:
        column, kind = self._column_arg(args[0], node, path)
        if kind not in ("integer", "number", "date"):
            raise self._fail("BETWEEN applies to numbers and dates", node, path)
        low = self._bind(self._literal(args[1], kind, node, path))
        high = self._bind(self._literal(args[2], kind, node, path))
        return f"({column} BETWEEN {low} AND {high})"

    def _array(self, op: str, args, node, path: str) -> str:
        column, kind = self._column_arg(args[0], node, path)
        if kind != "text_list":
            raise self._fail(f"{op.upper()} applies to list properties (e.g. former_names)", node, path)
        values = args[1]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self._fail(f"{op.upper()} needs a list of text values, e.g. ('a', 'b')", node, path)
        return f"({column} {_ARRAY[op]} CAST({self._bind(list(values))} AS text[]))"

    def _temporal(self, op: str, args, node, path: str) -> str:
        column, kind = self._column_arg(args[0], node, path)
        if kind != "date":
            raise self._fail(f"{op.upper()} applies to date properties", node, path)
        value = args[1]
        if isinstance(value, dict) and "interval" in value:
            start, end = value["interval"]
            low = None if start in ("..", None) else self._literal(start, "date", node, path)
            high = None if end in ("..", None) else self._literal(end, "date", node, path)
        else:
            low = high = self._literal(value, "date", node, path)
        if op == "t_intersects":
            parts = [f"{column} IS NOT NULL"]
            if low is not None:
                parts.append(f"{column} >= {self._bind(low)}")
            if high is not None:
                parts.append(f"{column} <= {self._bind(high)}")
            return "(" + " AND ".join(parts) + ")"
        if op == "t_before":
            return f"({column} < {self._bind(low or high)})"
        if op == "t_after":
            return f"({column} > {self._bind(high or low)})"
        if low != high:
            raise self._fail("T_EQUALS needs an instant, not an interval", node, path)
        return f"({column} = {self._bind(low)})"

    # -- spatial ---------------------------------------------------------------------------------------------
    def _geometry_sides(self, args, node, path: str) -> tuple[str, str, BaseGeometry | None]:
        sides, literal = [], None
        for arg in args[:2]:
            if isinstance(arg, dict) and arg.get("property") in GEOMETRY_NAMES:
                sides.append("geom")
            elif isinstance(arg, dict) and "property" in arg:
                self._field(arg, path)
                raise self._fail(f"{arg['property']} is not the geometry; spatial operators take 'geometry'",
                                 node, path)
            else:
                literal = self._geometry_literal(arg, node, path)
                sides.append(f"ST_GeomFromEWKB({self._bind(shapely.to_wkb(literal, include_srid=True))})")
        if "geom" not in sides:
            raise self._fail("a spatial operator needs the property 'geometry' on one side", node, path)
        return sides[0], sides[1], literal

    def _geometry_literal(self, value, node, path: str) -> BaseGeometry:
        """A geometry literal (GeoJSON, BBOX or ENVELOPE) in EPSG:4490, from ``filter_crs``'s axis order."""
        try:
            if isinstance(value, dict) and "bbox" in value:
                box = value["bbox"]
                values = [box[0], box[1], box[3], box[4]] if len(box) == 6 else box
                geom = shapely.box(*values)
            elif isinstance(value, dict) and str(value.get("op", "")).lower() in ("envelope", "bbox"):
                minx, miny, maxx, maxy = value["args"]
                geom = shapely.box(minx, miny, maxx, maxy)
            elif isinstance(value, dict) and "type" in value:
                geom = shapely.geometry.shape(value)
            else:
                raise ValueError("not a geometry")
        except (ValueError, TypeError, KeyError, IndexError, shapely.errors.GEOSException) as exc:
            raise self._fail(f"expected a geometry (WKT, GeoJSON or BBOX(...)): {exc}", node, path) from None
        try:
            return to_storage(geom, self.filter_crs)
        except InvalidInputError as exc:
            raise self._fail(str(exc), node, path) from None

    def _spatial(self, op: str, args, node, path: str) -> str:
        lhs, rhs, _ = self._geometry_sides(args, node, path)
        if op == "s_disjoint":
            return f"(NOT ST_Intersects({lhs}, {rhs}))"
        return f"({_SPATIAL[op]}({lhs}, {rhs}))"

    def _dwithin(self, args, node, path: str) -> str:
        if len(args) not in (3, 4):
            raise self._fail("S_DWITHIN takes (geometry, <geometry>, <distance in metres>)", node, path)
        lhs, rhs, literal = self._geometry_sides(args, node, path)
        distance = args[2]
        if isinstance(distance, bool) or not isinstance(distance, (int, float)) or distance < 0:
            raise self._fail(f"the distance of S_DWITHIN must be a number of metres >= 0, got {distance!r}", node,
                             path)
        if len(args) == 4:
            unit = args[3].get("property") if isinstance(args[3], dict) else args[3]
            factor = _DISTANCE_UNITS_M.get(str(unit).lower())
            if factor is None:
                raise self._fail(f"unknown distance unit {unit!r}; use meters or kilometers", node, path)
            distance *= factor
        if literal is None:
            raise self._fail("S_DWITHIN compares the geometry with a geometry literal", node, path)
        # Index pre-filter: the literal's box grown by the distance in degrees (generous at this latitude),
        # then the exact test on the ellipsoid.
        minx, miny, maxx, maxy = literal.bounds
        dlat = distance / _M_PER_DEG_LAT_MIN * 1.01
        max_lat = min(89.0, max(abs(miny), abs(maxy)) + dlat)
        dlon = dlat / max(math.cos(math.radians(max_lat)), 1e-6)
        grown = shapely.set_srid(shapely.box(minx - dlon, miny - dlat, maxx + dlon, maxy + dlat), STORAGE_SRID)
        box_sql = f"ST_GeomFromEWKB({self._bind(shapely.to_wkb(grown, include_srid=True))})"
        other = rhs if lhs == "geom" else lhs
        return (f"(geom && {box_sql} AND ST_DWithin(geom::geography, {other}::geography, "
                f"{self._bind(float(distance))}))")


def to_storage(geom: BaseGeometry, crs: ServedCrs, *, what: str = "the geometry") -> BaseGeometry:
    """``geom`` (coordinates in ``crs``'s axis order) as a shapely geometry in EPSG:4490, SRID set.

    Projected boxes are densified before they are transformed, so their edges stay where the client drew them.
    InvalidInputError (naming ``what``) when the coordinates lie so far beyond the CRS's area that they do not
    transform (PROJ answers infinity): matching against them would silently find nothing.
    """
    if crs.lat_first:
        geom = shapely.transform(geom, lambda x, y: (y, x), interleaved=False)
    if crs.gcj02:
        geom = shapely.transform(geom, gcj02_to_wgs84, interleaved=False)
    elif crs.transform_needed:
        length = max(geom.bounds[2] - geom.bounds[0], geom.bounds[3] - geom.bounds[1])
        try:
            if length > 0 and geom.geom_type not in ("Point", "MultiPoint"):
                geom = shapely.segmentize(geom, length / 64)
            geom = shapely.transform(geom, _transformer(crs.srid).transform, interleaved=False)
        except shapely.errors.GEOSException:  # segmentize refuses lengths like 1e300
            geom = None
        if geom is None or not np.isfinite(shapely.get_coordinates(geom)).all():
            raise InvalidInputError(f"{what} lies outside the area {crs.uri} covers: its coordinates do not turn "
                                    "into longitude and latitude; check the numbers, the CRS and its axis order")
    return shapely.set_srid(geom, STORAGE_SRID)


_TRANSFORMERS: dict[int, Transformer] = {}


def _transformer(srid: int) -> Transformer:
    if srid not in _TRANSFORMERS:
        _TRANSFORMERS[srid] = Transformer.from_crs(srid, STORAGE_SRID, always_xy=True)
    return _TRANSFORMERS[srid]


def _as_text(node) -> str:
    """The CQL2 text of a filter node, for messages; empty when it cannot be written."""
    if not isinstance(node, dict):
        return ""
    try:
        text = cql2.parse_json(json.dumps(node)).to_text()
    except Exception:  # noqa: BLE001 - a message helper must never fail
        return ""
    return text if len(text) <= 200 else text[:200] + "..."

