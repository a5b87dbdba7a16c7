"""Checking rows before they are written: geometry, fields, codes. Pure: no database access.

:func:`validate_frame` takes a GeoDataFrame already in EPSG:4490 and a :class:`ValidationContext` (what the
database holds that rows may refer to) and returns the cleaned rows plus every problem found, each naming
its row, its field and what is wrong. Callers write nothing when any problem is returned.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep

from gis_service.errors import InvalidInputError, RowProblem
from gis_service.layers.base import Field, Layer
from gis_service.limits import MAX_IMPORTED_ID, load_json

#: Largest number of vertices accepted in one geometry.
MAX_VERTICES = 100_000
#: Largest value of an integer field: its column is a PostgreSQL ``integer`` (successor_id is a ``bigint``, but no
#: id comes near this).
INTEGER_MAX = 2**31 - 1
#: Identifier columns that files often carry and that are not layer fields (序号: the row number of a sheet).
IGNORED_COLUMNS = {"fid", "ogc_fid", "objectid", "gid", "序号"}

_TRUE = {"true", "t", "yes", "y", "1", "是", "有", "√"}
_FALSE = {"false", "f", "no", "n", "0", "否", "无", "×"}


@dataclass
class ValidationContext:
    """What rows may refer to or clash with, read from the database by the caller."""

    #: Polygon (EPSG:4490) that geometries must lie in: the county, with a small tolerance.
    county_area: BaseGeometry | None = None
    #: Per field with a Reference: the values it may name that exist (current features only, where the layer
    #: referred to keeps versions).
    found: dict[str, set] = field(default_factory=dict)
    #: Values already taken, per unique field.
    taken: dict[str, set] = field(default_factory=dict)
    #: Ids already in the layer's table.
    existing_ids: set[int] = field(default_factory=set)


def validate_frame(layer: Layer, frame: gpd.GeoDataFrame, context: ValidationContext
                   ) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Check every row of ``frame`` (EPSG:4490) for ``layer``.

    Returns a DataFrame with the columns ``id`` (or None), each writable field and ``geom`` (shapely
    geometries of the layer's type), and the list of problems (empty when all rows are good).
    """
    problems: list[RowProblem] = []
    row_numbers = np.arange(1, len(frame) + 1)
    geometry_name = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) and frame._geometry_column_name \
        else None

    columns = [c for c in frame.columns if c != geometry_name]
    known = set(layer.field_names) | {"id"}
    for column in columns:
        if column not in known and str(column).lower() not in IGNORED_COLUMNS:
            problems.append(RowProblem(None, str(column), f"unknown field; the fields of {layer.id} are "
                                       + ", ".join(f.heading for f in layer.writable_fields)))
    if geometry_name is None:
        problems.append(RowProblem(None, "geometry", "the file has no geometry column"))
        return pd.DataFrame(), problems

    clean: dict[str, list] = {}
    ids = _validate_ids(frame, row_numbers, context, problems) if "id" in frame.columns else [None] * len(frame)
    clean["id"] = ids
    for spec in layer.writable_fields:
        values = frame[spec.name].tolist() if spec.name in frame.columns else [None] * len(frame)
        clean[spec.name] = [_check_value(spec, value, int(n), problems) for value, n in zip(values, row_numbers)]
    clean["geom"] = _validate_geometries(layer, frame.geometry.values, row_numbers, context, problems)
    # object columns keep None as None (pandas 3 would turn None into NaN in a str column)
    result = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in clean.items()})
    _check_cross_row_rules(layer, result, row_numbers, context, problems)
    problems.sort(key=lambda p: (p.row or 0))
    return result, problems


# -- geometry ----------------------------------------------------------------------------------

def _validate_geometries(layer: Layer, geometries, row_numbers, context: ValidationContext,
                         problems: list[RowProblem]) -> list:
    out: list = []
    geometries = np.asarray(geometries, dtype=object)
    valid_flags = shapely.is_valid(geometries)
    area = prep(context.county_area) if context.county_area is not None else None
    for geom, ok, n in zip(geometries, valid_flags, row_numbers):
        n = int(n)
        message = _geometry_problem(layer, geom, bool(ok))
        if message:
            problems.append(RowProblem(n, "geometry", message))
            out.append(None)
            continue
        geom = _coerce_type(layer.geometry_type, geom)
        if geom is None:
            problems.append(RowProblem(n, "geometry", f"expected a {layer.geometry_type}"))
            out.append(None)
            continue
        if area is not None and not area.covers(geom):
            problems.append(RowProblem(n, "geometry", _outside_message(geom, context.county_area)))
            out.append(None)
            continue
        out.append(geom)
    return out


def _geometry_problem(layer: Layer, geom, is_valid: bool) -> str | None:
    if geom is None or (isinstance(geom, float) and math.isnan(geom)):
        return "missing geometry"
    if geom.is_empty:
        return "empty geometry"
    if shapely.has_z(geom):
        return "has 3-D coordinates (x, y, z); this layer stores 2-D (lon, lat) only"
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        return "has NaN or infinite coordinates"
    if len(coords) > MAX_VERTICES:
        return f"has {len(coords):,} vertices; the limit is {MAX_VERTICES:,} per geometry"
    if _coerce_type(layer.geometry_type, geom) is None:
        return f"is a {geom.geom_type}; {layer.id} holds {layer.geometry_type} geometries"
    if not is_valid:
        return f"is not valid: {shapely.is_valid_reason(geom)}"
    return None


def _coerce_type(target: str, geom):
    """Return geom as the target type (Polygon→MultiPolygon and the like), or None if it cannot be."""
    kind = geom.geom_type
    if kind == target:
        return geom
    if target == "MultiPolygon" and kind == "Polygon":
        return shapely.MultiPolygon([geom])
    if target == "MultiLineString" and kind == "LineString":
        return shapely.MultiLineString([geom])
    if target == "LineString" and kind == "MultiLineString" and len(geom.geoms) == 1:
        return geom.geoms[0]
    if target == "Point" and kind == "MultiPoint" and len(geom.geoms) == 1:
        return geom.geoms[0]
    return None


def _outside_message(geom, county_area) -> str:
    swapped = shapely.transform(geom, lambda xy: xy[:, ::-1])
    if county_area.covers(swapped):
        return "lies outside the county, but would lie inside with longitude and latitude swapped: " \
               "write coordinates as lon, lat"
    x, y = shapely.get_coordinates(geom)[0]
    minx, miny, maxx, maxy = county_area.bounds
    return (f"lies outside the county (first vertex at {x:.6f}, {y:.6f}; the county spans lon {minx:.3f}–{maxx:.3f}, "
            f"lat {miny:.3f}–{maxy:.3f}); check the coordinate reference system (--crs of an import, "
            "the Content-Crs header of a request)")


# -- attributes --------------------------------------------------------------------------------

def _validate_ids(frame, row_numbers, context, problems) -> list:
    ids: list = []
    seen: set[int] = set()
    for value, n in zip(frame["id"].tolist(), row_numbers):
        if _is_missing(value):
            ids.append(None)
            continue
        try:
            ident = _to_int(value)
        except ValueError:
            problems.append(RowProblem(int(n), "id", f"{value!r} is not a whole number"))
            ids.append(None)
            continue
        if ident <= 0:
            problems.append(RowProblem(int(n), "id", "must be a positive whole number"))
        elif ident > MAX_IMPORTED_ID:
            problems.append(RowProblem(int(n), "id", f"{ident} is above {MAX_IMPORTED_ID:,} (2^53 - 1), the largest "
                                       "id a file may give: leave the id out and the service numbers the row"))
        elif ident in seen:
            problems.append(RowProblem(int(n), "id", f"id {ident} appears twice in the file"))
        elif ident in context.existing_ids:
            problems.append(RowProblem(int(n), "id", f"id {ident} is already used in the layer"))
        seen.add(ident)
        ids.append(ident)
    return ids


def _check_value(spec: Field, value, row: int, problems: list[RowProblem]):
    if _is_missing(value):
        if spec.default is not None:
            return list(spec.default) if spec.type == "text_list" else spec.default
        if spec.required:
            problems.append(RowProblem(row, spec.name, "is required but empty"))
        return [] if spec.type == "text_list" else None
    try:
        value = _CONVERTERS[spec.type](value)
    except (ValueError, TypeError) as exc:
        problems.append(RowProblem(row, spec.name, f"{_short(value)} is not {_TYPE_WORDS[spec.type]}"
                                   + (f" ({exc})" if str(exc) else "")))
        return None
    if spec.values is not None:
        code = spec.code_of(value)
        if code is None:
            problems.append(RowProblem(row, spec.name, _unknown_value(spec, value)))
            return None
        value = code
    message = _rule_problem(spec, value)
    if message:
        problems.append(RowProblem(row, spec.name, message))
        return None
    return value


def _unknown_value(spec: Field, text: str) -> str:
    """The problem of a value naming none of an enumerated field's values, or several (a label they share)."""
    shared = spec.codes_labelled(text)
    if len(shared) > 1:
        return f"{_short(text)} is the label of {' and '.join(shared)}: write the one meant"
    return f"{_short(text)} is not one of: {spec.accepted_values} (the Chinese label or the code)"


def _rule_problem(spec: Field, value) -> str | None:
    if spec.pattern is not None and not re.fullmatch(spec.pattern.strip("^$"), value):
        return f"{_short(value)} does not have the form {spec.pattern}"
    if spec.max_length is not None and isinstance(value, str) and len(value) > spec.max_length:
        return f"is {len(value)} characters long; at most {spec.max_length} are allowed"
    texts = [value] if spec.type == "text" else value if spec.type == "text_list" else []
    for text in texts:
        problem = text_problem(text, multiline=spec.multiline)
        if problem:
            return problem
    if spec.minimum is not None and value < spec.minimum:
        return f"{value} is below the minimum {spec.minimum:g}"
    if spec.maximum is not None and value > spec.maximum:
        return f"{value} is above the maximum {spec.maximum:g}"
    if spec.type == "integer" and value > INTEGER_MAX:
        return f"{value} is above the maximum {INTEGER_MAX:,}"
    return None


def _check_cross_row_rules(layer: Layer, rows: pd.DataFrame, row_numbers, context: ValidationContext,
                           problems: list[RowProblem]) -> None:
    """Unique values, references, and the layer's own rules across fields (each only on fields without a problem
    so far: a problem is reported once, where it starts)."""
    current = _current(layer, rows)
    for spec in layer.writable_fields:
        values = rows[spec.name].tolist()
        if spec.unique:
            taken = context.taken.get(spec.name, set())
            seen: dict = {}
            for value, n, is_current in zip(values, row_numbers, current):
                if value is None or not is_current:
                    continue
                if value in seen:
                    problems.append(RowProblem(int(n), spec.name, f"{value} appears twice (also row {seen[value]})"))
                elif value in taken:
                    problems.append(RowProblem(int(n), spec.name, f"{value} is already in {layer.id}"))
                seen.setdefault(value, int(n))
        if spec.references is not None:
            known = set(context.found.get(spec.name, ()))
            if spec.references.layer == layer.id:  # rows of the same file may be referred to
                known |= {v for v, is_current in zip(rows[spec.references.field], current)
                          if v is not None and is_current}
            for value, n in zip(values, row_numbers):
                if value is not None and value not in known:
                    problems.append(RowProblem(int(n), spec.name, spec.references.problem.format(value=value)))
    if not layer.rules:
        return
    wrong = {(p.row, p.field) for p in problems}
    records = rows.to_dict("records")
    for rule in layer.rules:
        for row, n in zip(records, row_numbers):
            if any((int(n), name) in wrong for name in rule.reads):
                continue
            problem = rule.check(row)
            if problem:
                problems.append(RowProblem(int(n), rule.field, problem))


def _current(layer: Layer, rows: pd.DataFrame) -> np.ndarray:
    """Which rows are current features: all, unless the layer keeps versions (then those without valid_to)."""
    if layer.validity is None:
        return np.ones(len(rows), bool)
    return rows[layer.validity[1]].isna().to_numpy()


# -- conversions ---------------------------------------------------------------------------------

#: Characters no text may hold: C0 controls but tab and line breaks, and DEL. (PostgreSQL refuses NUL outright.)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: What stored text may not hold, besides those: C1 controls (U+0080-U+009F); tabs and line breaks outside the
#: multi-line fields; lone surrogates (no UTF-8 for them: the database refuses them); and the Unicode
#: noncharacters U+FDD0-U+FDEF and U+xFFFE/U+xFFFF of every plane, which XML (so KML and GPX) cannot carry.
_CONTROL_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NONCHARACTER = re.compile("[\ufdd0-\ufdef" + "".join(f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}"
                                                      for plane in range(17)) + "]")


def text_problem(text: str, *, multiline: bool = False) -> str | None:
    """What makes ``text`` unfit to store and export (as "contains ..."), or None."""
    control = (_CONTROL_MULTILINE if multiline else _CONTROL_ONE_LINE).search(text)
    if control:
        allowed = "" if multiline else "; tabs and line breaks only in multi-line fields"
        return f"contains control characters (U+{ord(control.group()):04X} at character {control.start() + 1}{allowed})"
    surrogate = _SURROGATE.search(text)
    if surrogate:
        return (f"contains a lone surrogate (U+{ord(surrogate.group()):04X} at character {surrogate.start() + 1}), "
                "which is not text: send text as UTF-8")
    nonchar = _NONCHARACTER.search(text)
    if nonchar:
        return (f"contains the Unicode noncharacter U+{ord(nonchar.group()):04X} (at character {nonchar.start() + 1}), "
                "which exports (KML, GPX) cannot carry; remove it")
    return None


def _is_missing(value) -> bool:
    if value is None or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and value.strip() == "":
        return True
    return False


def _to_text(value) -> str:
    if isinstance(value, bool):
        raise ValueError("")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, np.integer)):
        return str(value)
    if not isinstance(value, str):
        raise TypeError("")
    return value.strip()


#: Digits a whole number may be written with (a bigint has 19).
_MAX_DIGITS = 30


def _to_int(value) -> int:
    """Exactly the whole number ``value`` holds: text is read digit by digit, never through a float (which
    rounds beyond 2^53)."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError("")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not value.is_integer():
            raise ValueError("")
        return int(value)
    whole = re.fullmatch(r"\s*([+-]?\d+)(?:\.0*)?\s*", value) if isinstance(value, str) else None
    if whole is None:
        raise ValueError("")
    if len(whole.group(1).lstrip("+-0")) > _MAX_DIGITS:
        raise ValueError(f"more than {_MAX_DIGITS} digits")
    return int(whole.group(1))


def _to_number(value) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError("")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


def _to_bool(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("")


def _to_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, str):
        return parse_date(value)
    raise ValueError("")


#: Dates as people write them: 2021-03-05, 2021/3/5, 2021.3.5, 2021年3月5日, 20210305 (a time after them is ignored).
_DATE = re.compile(r"\s*(\d{4})\s*(?:[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})|年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?"
                   r"|(\d{2})(\d{2}))"
                   r"(?:[T\s]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\s*")
DATE_FORMS = "2021-03-05, 2021/3/5, 2021.3.5 or 2021年3月5日"


def parse_date(text: str) -> dt.date:
    """The date ``text`` writes in one of :data:`DATE_FORMS` (full-width digits too); ValueError otherwise."""
    found = _DATE.fullmatch(unicodedata.normalize("NFKC", text))
    if found is None:
        raise ValueError(f"write it as {DATE_FORMS}")
    year, month, day = (int(g) for g in found.groups() if g is not None)
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"{year}-{month}-{day} is not a day of the calendar") from None


def _to_text_list(value) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = load_json(text, what="the list", max_depth=1)
            except InvalidInputError as exc:
                raise ValueError(str(exc)) from None
        else:
            return [part.strip() for part in re.split(r"[;；]", text) if part.strip()]
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [_to_text(v) for v in value if not _is_missing(v)]
        return items
    raise ValueError("")


_CONVERTERS = {"text": _to_text, "integer": _to_int, "number": _to_number, "boolean": _to_bool,
               "date": _to_date, "text_list": _to_text_list}
_TYPE_WORDS = {"text": "text", "integer": "a whole number", "number": "a number",
               "boolean": "yes or no (是/否, 有/无, true/false, 1/0)",
               "date": f"a date ({DATE_FORMS})", "text_list": "a list of names (separated by ';')"}


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def candidate_texts(frame: pd.DataFrame, column: str) -> set[str]:
    """The values of a column that read as text (the rest are reported by validation)."""
    return _candidates(frame, column, _to_text)


def candidate_ints(frame: pd.DataFrame, column: str) -> set[int]:
    """The values of a column that read as whole numbers."""
    return _candidates(frame, column, _to_int)


def _candidates(frame: pd.DataFrame, column: str, convert) -> set:
    if column not in frame.columns:
        return set()
    found = set()
    for value in frame[column].tolist():
        if _is_missing(value):
            continue
        try:
            found.add(convert(value))
        except (ValueError, TypeError):
            pass
    return found
