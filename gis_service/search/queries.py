"""The SQL of place-name search: index-backed candidate look-ups, successors, features, reverse look-up, clashes.

Every look-up uses an index the migration ``0002_placename_search`` made (btree text_pattern_ops for equality
and prefixes, GIN for one-edit variants and trigrams, GiST for the nearest features); the candidates are
then ordered by :func:`gis_service.search.ranking.rank`. Distances are measured in the projected CRS
``measure_srid`` (EPSG:4545 for Xiushan), never in degrees; answers are GeoJSON in EPSG:4326 (lon, lat).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

import sqlalchemy as sa

from gis_service.errors import InvalidInputError, LimitExceeded, NotFoundError
from gis_service.layers.registry import DIVISIONS, GAZETTEER
from gis_service.search import naming
from gis_service.search.keys import FUZZY_SOUNDS, fuzzy_pinyin, levenshtein, pinyin_key, short_name
from gis_service.search.normalize import HAN_PATTERN, SearchQuery, normalize_query, typed_text
from gis_service.search.ranking import Candidate, Ranked, level_rank, rank

#: The categories of place names a search may be narrowed to.
CATEGORIES = GAZETTEER.field_named("category").codes
STATUSES = ("current", "historical", "all")
#: Candidates taken from one look-up at most (prefix look-ups of one letter match thousands of names).
PER_LOOKUP = 120
#: Rows taken from the one-edit look-up of characters at most. In a province's gazetteer a short name has hundreds
#: of one-edit neighbours (岩石寨: 1,000 of a million names), each a heap row to fetch and rank; the cap stops the
#: bitmap scan after 200 (search p95 a third lower at a million names, and the top 10 of the 207 benchmark queries
#: unchanged: those neighbours rank last, behind exact, prefix and pinyin matches).
TYPO_CAP = 200
#: pg_trgm similarity below which the fuzzy fallback does not answer.
FUZZY_THRESHOLD = 0.45
MAX_LIMIT = 100
MAX_AUTOCOMPLETE = 20
MAX_NEAREST = 50
#: A "contains" search pages through all its matches: the furthest page starts here (narrow the search beyond).
MAX_OFFSET = 100_000
MAX_RADIUS_M = 200_000
#: Most existing names a naming check looks at (a specific part shared by hundreds of names says enough).
MAX_CHECK_ROWS = 500
#: What ``near`` accepts, as the API document's pattern: lon,lat in decimal degrees within ±180 and ±90.
_LON = r"-?(?:180(?:\.0+)?|(?:1[0-7][0-9]|[0-9]{1,2})(?:\.[0-9]+)?)"
_LAT = r"-?(?:90(?:\.0+)?|[0-8]?[0-9](?:\.[0-9]+)?)"
NEAR_PATTERN = rf"^(?: *{_LON} *, *{_LAT} *)?$"
DIVISION_CODE_PATTERN = "^(?:[0-9]{6}|[0-9]{9}|[0-9]{12})?$"

_KEY_COLUMNS = ("p.id, p.name, p.name_short, p.py_key, p.py_short_key, p.py_initials, p.py_alt_key, "
                "p.py_alt_short_key, p.py_alt_initials, p.status, p.successor_id, p.category, p.division_code")
_QUERY_POINT = "ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 4490)"


@dataclass(frozen=True)
class SearchFilters:
    """Checked filters of a search. ``division_prefix`` is the code without its trailing zero groups."""

    category: str | None = None
    division_prefix: str | None = None
    near: tuple[float, float] | None = None
    radius_m: float | None = None
    #: current, historical or all (as the API takes them), or current_only (type-ahead: no former names)
    status: str = "current"


# -- checking the parameters --------------------------------------------------------------------------

def parse_near(text: str | None, *, measure_srid: int) -> tuple[float, float] | None:
    """``lon,lat`` in EPSG:4326 -> (lon, lat); InvalidInputError naming what is wrong."""
    if not text:
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        lon, lat = (float(p) for p in parts)
    except ValueError:
        raise InvalidInputError(f"near must be lon,lat in EPSG:4326, e.g. near=108.99,28.45; got {text!r}") from None
    check_lon_lat(lon, lat, argument="near", measure_srid=measure_srid)
    if not re.fullmatch(NEAR_PATTERN, text):
        raise InvalidInputError(f"near must be lon,lat in decimal degrees, e.g. near=108.99,28.45; got {text!r}")
    return lon, lat


@functools.cache
def measure_area(measure_srid: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees: where the CRS distances are measured in is defined (its area of use;
    for EPSG:4545, China between 106°30'E and 109°30'E). Farther away a Gauss-Krüger zone's distances mean
    nothing, and near 90° from its meridian they cannot be computed at all."""
    from pyproj import CRS

    area = CRS.from_epsg(measure_srid).area_of_use
    return (area.west, area.south, area.east, area.north) if area else (-180.0, -90.0, 180.0, 90.0)


def check_lon_lat(lon: float, lat: float, *, argument: str = "lon/lat", measure_srid: int) -> tuple[float, float]:
    """(lon, lat) when it is a point where distances can be measured (see :func:`measure_area`)."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or lon != lon or lat != lat:
        raise InvalidInputError(f"{argument}: longitude must be within -180..180 and latitude within -90..90 "
                                f"(EPSG:4326, lon first); got lon={lon}, lat={lat}")
    west, south, east, north = measure_area(measure_srid)
    if not (west <= lon <= east and south <= lat <= north):
        raise InvalidInputError(f"{argument}: ({lon}, {lat}) is outside the area distances are measured in "
                                f"(EPSG:{measure_srid}: longitude {west:g}..{east:g}, latitude {south:g}..{north:g}); "
                                "is the point in this county, lon first?")
    return lon, lat


def division_prefix(conn: sa.Connection, code: str | None) -> str | None:
    """The code prefix that selects a division and everything below it: 500241107000 -> 500241107.

    Accepts 6-, 9- or 12-digit codes; InvalidInputError when the code is malformed, NotFoundError when it names
    no division.
    """
    if not code:
        return None
    if not re.fullmatch(DIVISION_CODE_PATTERN, code):
        raise InvalidInputError(f"division must be a 6-, 9- or 12-digit division code, e.g. 500241107000; got {code!r}")
    full = code.ljust(12, "0")
    exists = conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM admin_divisions WHERE code = :code)"),
                          {"code": full}).scalar()
    if not exists:
        raise NotFoundError(f"division {code} is not the code of any administrative division")
    if full.endswith("000000"):
        return full[:6]
    if full.endswith("000"):
        return full[:9]
    return full


def check_filters(conn: sa.Connection, *, category: str | None, division: str | None, near: str | None,
                  radius_m: float | None, status: str | None, measure_srid: int) -> SearchFilters:
    if category and category not in CATEGORIES:
        raise InvalidInputError(f"unknown category {category!r}; use one of {', '.join(CATEGORIES)}")
    status = "current" if status is None else status
    if status not in STATUSES:
        raise InvalidInputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    point = parse_near(near, measure_srid=measure_srid)
    if radius_m is not None:
        if point is None:
            raise InvalidInputError("radius_m needs near=lon,lat: the radius is measured around that point")
        if not 0 < radius_m <= MAX_RADIUS_M:
            raise InvalidInputError(f"radius_m must be more than 0 and at most {MAX_RADIUS_M}; got {radius_m}")
    return SearchFilters(category=category or None, division_prefix=division_prefix(conn, division), near=point,
                         radius_m=radius_m, status=status)


def check_limit(limit: int, *, maximum: int = MAX_LIMIT) -> int:
    if not 1 <= limit <= maximum:
        raise InvalidInputError(f"limit must be between 1 and {maximum}; got {limit}")
    return limit


# -- candidates ---------------------------------------------------------------------------------------

def _starts(column: str, param: str = "key") -> str:
    """``column`` starts with the parameter: a range its text_pattern_ops index answers, in generic plans too."""
    return f"{column} ~>=~ :{param} AND {column} ~<~ :{param}_next"


def _lookups(q: SearchQuery, *, autocomplete: bool) -> list[str]:
    """The index-backed look-ups for ``q``: each the WHERE/ORDER BY/LIMIT of a SELECT on place_names ``p``.

    Equality tests share one bitmap scan. Each prefix look-up walks its text_pattern_ops index in order (ORDER
    BY ... USING ~<~) and stops at its limit; a second one over the administrative names alone makes sure a
    short prefix still finds the townships and villages."""
    n = PER_LOOKUP // 2 if autocomplete else PER_LOOKUP
    parts: list[str] = []
    equal: list[str] = []
    if q.is_han:
        equal.append("p.name = :text OR p.name_short = :text")
        parts.append(f"{_starts('p.name', 'text')} ORDER BY p.name USING ~<~ LIMIT {n}")
        parts.append(f"p.category = 'administrative' AND {_starts('p.name', 'text')} LIMIT {n}")
        if not autocomplete:
            equal.append("p.py_key = ANY(:keys) OR p.py_short_key = ANY(:keys) OR p.py_alt_key = ANY(:keys) "
                         "OR p.py_alt_short_key = ANY(:keys)")
            parts.append(f"{_starts('p.py_key')} ORDER BY p.py_key USING ~<~ LIMIT {n // 4}")
            if q.typo_variants:
                parts.append("(p.typo_keys && CAST(:variants AS text[]) OR p.name = ANY(CAST(:deletes AS text[])) "
                             f"OR p.name_short = ANY(CAST(:deletes AS text[]))) LIMIT {TYPO_CAP}")
    else:
        equal.append("p.py_key = :letters OR p.py_short_key = :letters OR p.py_alt_key = :letters "
                     "OR p.py_alt_short_key = :letters OR p.py_initials = :letters OR p.py_alt_initials = :letters")
        parts.append(f"{_starts('p.py_key')} ORDER BY p.py_key USING ~<~ LIMIT {n}")
        parts.append(f"p.category = 'administrative' AND {_starts('p.py_key')} LIMIT {n}")
        parts.append(f"{_starts('p.py_initials')} ORDER BY p.py_initials USING ~<~ LIMIT {n}")
        parts.append(f"p.category = 'administrative' AND {_starts('p.py_initials')} LIMIT {n}")
        parts.append(f"(({_starts('p.py_alt_key')}) OR ({_starts('p.py_alt_initials')})) LIMIT {n // 4}")
    if not autocomplete and q.pinyin_typo_variants:
        equal.append("p.py_typo_keys && CAST(:py_variants AS text[]) OR p.py_key = ANY(CAST(:py_deletes AS text[])) "
                     "OR p.py_short_key = ANY(CAST(:py_deletes AS text[]))")
    # No LIMIT on these (but the one-edit look-up, whose bitmap scan a LIMIT stops early: EXPLAIN shows it kept):
    # with one the planner may read the whole table in the hope of stopping early. One look-up each: OR-ed
    # together, the planner read the whole table and tested every typo array (40 ms).
    parts[0:0] = [f"({condition})" for condition in equal]
    return parts


def _next_string(prefix: str) -> str:
    """The least string after every string that starts with ``prefix`` (in code-point order, which is the byte
    order of UTF-8 that the ~<~ operators use): a prefix look-up is the range prefix <= s < next."""
    if not prefix:
        return "\U0010ffff"
    return prefix[:-1] + chr(min(ord(prefix[-1]) + 1, 0x10FFFF))


def _params(q: SearchQuery) -> dict:
    first_key = q.pinyin_keys[0] if q.pinyin_keys else ""
    return {
        "text": q.text,
        "text_next": _next_string(q.text),
        "keys": list(q.pinyin_keys),
        "key": first_key,
        "key_next": _next_string(first_key),
        "fuzzy_key": fuzzy_pinyin(first_key),
        "letters": q.letters,
        "variants": list(q.typo_variants),
        "deletes": list(q.typo_deletes),
        "py_variants": list(q.pinyin_typo_variants),
        "py_deletes": [v for v in q.pinyin_typo_variants if v != first_key],
    }


def _filter_sql(filters: SearchFilters, alias: str = "p") -> tuple[list[str], dict]:
    """Conditions on the record shown to the user (category, division, radius), with their parameters."""
    conditions, params = [], {}
    if filters.category:
        conditions.append(f"{alias}.category = :category")
        params["category"] = filters.category
    if filters.division_prefix:
        conditions.append(f"{alias}.division_code LIKE :division_like")
        params["division_like"] = filters.division_prefix + "%"
    if filters.near and filters.radius_m:
        conditions.append(f"ST_DWithin(ST_Transform({alias}.geom, :measure_srid), "
                          f"ST_Transform({_QUERY_POINT}, :measure_srid), :radius_m)")
        params["radius_m"] = filters.radius_m
    return conditions, params


def _distance_sql(filters: SearchFilters, alias: str = "p") -> str:
    if not filters.near:
        return "NULL::double precision"
    return f"ST_Distance(ST_Transform({alias}.geom, :measure_srid), ST_Transform({_QUERY_POINT}, :measure_srid))"


def _point_params(filters: SearchFilters, measure_srid: int) -> dict:
    params: dict = {"measure_srid": measure_srid}
    if filters.near:
        params["lon"], params["lat"] = filters.near
    return params


def _fuzzy_sql(expression: str) -> str:
    """Mirror of :func:`gis_service.search.keys.fuzzy_pinyin` in SQL."""
    for sound, merged in FUZZY_SOUNDS:
        expression = f"replace({expression}, '{sound}', '{merged}')"
    return expression


def _distance_columns() -> str:
    """Least pinyin edit distances (capped at 5, fuzzystrmatch) between the query key and a candidate's keys."""
    keys = ("c.py_key", "c.py_short_key", "c.py_alt_key", "c.py_alt_short_key")
    plain = ", ".join(f"levenshtein_less_equal({k}, :key, 5)" for k in keys)
    fuzzy = ", ".join(f"levenshtein_less_equal({_fuzzy_sql(k)}, :fuzzy_key, 5)" for k in keys)
    return f"least({plain}) AS pinyin_distance, least({fuzzy}) AS fuzzy_pinyin_distance"


def _with_display(sql: str, *, distances: bool = True) -> str:
    """``sql`` (rows of candidate keys) joined with what an answer shows (spelling, division name, lon/lat) and
    the pinyin distances the ranking weighs (parameters ``key`` and ``fuzzy_key``)."""
    return ("SELECT c.*, q.pinyin, q.pinyin_manual, q.heritage_listed, d.name AS division_name, "
            "ST_X(ST_Transform(q.geom, 4326)) AS lon, ST_Y(ST_Transform(q.geom, 4326)) AS lat"
            f"{', ' + _distance_columns() if distances else ''} "
            f"FROM ({sql}) AS c JOIN place_names q ON q.id = c.id "
            "LEFT JOIN admin_divisions d ON d.code = c.division_code AND d.valid_to IS NULL")


def _candidate(row, similarity: float = 0.0) -> Candidate:
    return Candidate(id=row.id, name=row.name, name_short=row.name_short or row.name, py_key=row.py_key or "",
                     py_short_key=row.py_short_key or "", py_initials=row.py_initials or "",
                     status=row.status, successor_id=row.successor_id, py_alt_key=row.py_alt_key,
                     py_alt_short_key=row.py_alt_short_key, py_alt_initials=row.py_alt_initials,
                     level=level_rank(row.category, row.division_code), distance_m=row.distance_m,
                     similarity=similarity, display=row, pinyin_distance=getattr(row, "pinyin_distance", None),
                     fuzzy_pinyin_distance=getattr(row, "fuzzy_pinyin_distance", None))


def _status_condition(filters: SearchFilters, conditions: list[str]) -> str:
    shown = " AND ".join(conditions) if conditions else "TRUE"
    if filters.status == "current":
        # a former name is kept whatever the filters: they apply to its successor
        return f"((p.status = 'current' AND {shown}) OR (p.status <> 'current' AND p.successor_id IS NOT NULL))"
    if filters.status == "historical":
        return f"(p.status <> 'current' AND {shown})"
    if filters.status == "current_only":  # type-ahead: former names are not offered
        return f"(p.status = 'current' AND {shown})"
    return f"({shown})"


#: Mirror of :func:`gis_service.search.ranking.level_rank`.
_LEVEL_SQL = ("CASE WHEN p.category = 'administrative' AND p.division_code IS NOT NULL THEN "
              "CASE WHEN p.division_code LIKE '%000000' THEN 3 WHEN p.division_code LIKE '%000' THEN 2 ELSE 1 END "
              "ELSE 0 END")


def _coarse_tier_sql(q: SearchQuery) -> str:
    """The match tier (as :func:`ranking.rank` sorts it: kind x 2, + 1 for a former name), roughly, in SQL: only
    the best candidates are sent back to be ranked exactly. One-edit matches all get the last tier."""
    if q.is_han:
        tier = ("CASE WHEN p.name = :text OR p.name_short = :text THEN 0 WHEN starts_with(p.name, :text) THEN 4 "
                "WHEN p.py_key = ANY(:keys) OR p.py_short_key = ANY(:keys) OR p.py_alt_key = ANY(:keys) "
                "OR p.py_alt_short_key = ANY(:keys) THEN 6 WHEN starts_with(p.py_key, :key) THEN 10 ELSE 14 END")
    else:
        tier = ("CASE WHEN :letters IN (p.py_key, p.py_short_key, p.py_alt_key, p.py_alt_short_key) THEN 6 "
                "WHEN :letters IN (p.py_initials, p.py_alt_initials, left(p.py_initials, char_length(p.name_short)))"
                " THEN 8 WHEN starts_with(p.py_key, :key) OR starts_with(p.py_alt_key, :key) THEN 10 "
                "WHEN starts_with(p.py_initials, :key) OR starts_with(p.py_alt_initials, :key) THEN 12 ELSE 14 END")
    return f"({tier} + CASE WHEN p.status = 'current' THEN 0 ELSE 1 END)"


def _within_tier_sql(q: SearchQuery) -> str:
    """Mirror of the ranking's tie-break before distance: the whole name before the short name, the whole
    pinyin before the short pinyin."""
    if q.is_han:
        return "CASE WHEN p.name = :text THEN 0 ELSE 1 END"
    return "CASE WHEN :letters IN (p.py_short_key, p.py_alt_short_key) AND :letters NOT IN (p.py_key, " \
           "coalesce(p.py_alt_key, '')) THEN 1 ELSE 0 END"


def _closeness_sql(q: SearchQuery) -> str:
    """Mirror of a prefix match's quality (how much of the name the prefix covers): for pinyin, the shorter
    pinyin first; for characters the shorter name."""
    return "char_length(p.name)" if q.is_han else "char_length(p.py_key)"


def _union(lookups: list[str], filters: SearchFilters) -> str:
    """The look-ups as one UNION ALL of SELECTs of the key columns and distance, each with the filters inside it
    (so that its limit counts only eligible rows)."""
    conditions, _ = _filter_sql(filters)
    eligible = _status_condition(filters, conditions)
    selects = []
    for lookup in lookups:
        if " ORDER BY " in lookup:
            where, _, tail = lookup.partition(" ORDER BY ")
            tail = "ORDER BY " + tail
        elif " LIMIT " in lookup:
            where, _, tail = lookup.rpartition(" LIMIT ")
            tail = "LIMIT " + tail
        else:
            where, tail = lookup, ""
        selects.append(f"(SELECT {_KEY_COLUMNS}, {_distance_sql(filters)} AS distance_m FROM place_names p "
                       f"WHERE ({where}) AND {eligible} {tail})")
    # UNION ALL: a row found by two look-ups comes twice; ranking keeps one answer per record
    return " UNION ALL ".join(selects)


def find_candidates(conn: sa.Connection, q: SearchQuery, filters: SearchFilters, *, measure_srid: int,
                    autocomplete: bool = False, keep: int = 80) -> list[Candidate]:
    """Place names that may match ``q``, with their search keys: found by the indexed look-ups, then the
    ``keep`` best by tier, administrative level, distance and length."""
    _, params = _filter_sql(filters)
    # type-ahead offers prefixes only: the pinyin edit distances that rank typos are not needed
    sql = _with_display(f"SELECT * FROM ({_union(_lookups(q, autocomplete=autocomplete), filters)}) AS p "
                        f"ORDER BY {_coarse_tier_sql(q)}, {_LEVEL_SQL} DESC, {_within_tier_sql(q)}, p.distance_m, "
                        f"{_closeness_sql(q)}, char_length(p.name), "
                        f"p.id LIMIT :keep", distances=not autocomplete)
    rows = conn.execute(sa.text(sql), {**_params(q), **params, **_point_params(filters, measure_srid),
                                       "keep": keep})
    return [_candidate(row) for row in rows]


def find_fuzzy(conn: sa.Connection, q: SearchQuery, filters: SearchFilters, *, measure_srid: int,
               limit: int = 20) -> list[Candidate]:
    """The fallback when nothing matched better: pinyin (and name) trigram similarity through the GIN indexes."""
    key = q.pinyin_keys[0] if q.pinyin_keys else ""
    if len(key) < 3:
        return []
    _, params = _filter_sql(filters)
    conn.execute(sa.text("SELECT set_config('pg_trgm.similarity_threshold', :t, true)"),
                 {"t": str(FUZZY_THRESHOLD)})
    lookups = ["p.py_key % :key LIMIT 200"]
    if q.is_han and len(q.text) >= 3:
        lookups.append("p.name % :text LIMIT 50")
    sql = _with_display(f"SELECT p.*, greatest(similarity(p.py_key, :key), similarity(p.name, :text)) AS sim "
                        f"FROM ({_union(lookups, filters)}) AS p ORDER BY sim DESC, p.id LIMIT :limit")
    rows = conn.execute(sa.text(sql), {"key": key, "fuzzy_key": fuzzy_pinyin(key), "text": q.text, "limit": limit,
                                       **params,
                                       **_point_params(filters, measure_srid)})
    return [_candidate(row, similarity=float(row.sim)) for row in rows]


def find_successors(conn: sa.Connection, candidates: list[Candidate], filters: SearchFilters, *,
                    measure_srid: int) -> dict[int, Candidate]:
    """For each successor id named by a former name: the current record at the end of its chain of successors
    (a name renamed twice leads to today's), if it passes the filters. Keyed by the successor id named."""
    starts = sorted({c.successor_id for c in candidates if c.status != "current" and c.successor_id})
    if not starts:
        return {}
    conditions, params = _filter_sql(filters)
    shown = " AND ".join(["p.status = 'current'", *conditions])
    sql = (
        "WITH RECURSIVE chain (start_id, id, depth) AS ("
        " SELECT s, s, 0 FROM unnest(CAST(:starts AS bigint[])) AS s"
        " UNION ALL SELECT chain.start_id, p.successor_id, chain.depth + 1 FROM chain"
        " JOIN place_names p ON p.id = chain.id"
        " WHERE p.status <> 'current' AND p.successor_id IS NOT NULL AND chain.depth < 10)"
        f" SELECT DISTINCT ON (chain.start_id) chain.start_id, {_KEY_COLUMNS}, {_distance_sql(filters)} AS distance_m"
        f" FROM chain JOIN place_names p ON p.id = chain.id WHERE {shown} ORDER BY chain.start_id, chain.depth"
    )
    rows = conn.execute(sa.text(_with_display(sql, distances=False)), {"starts": starts, **params,
                                                      **_point_params(filters, measure_srid)})
    return {row.start_id: _candidate(row) for row in rows}


# -- answers -------------------------------------------------------------------------------------------

_FEATURE_SQL = """
SELECT p.id, p.name, p.pinyin, p.pinyin_manual, p.category, p.division_code, d.name AS division_name,
       p.meaning, p.origin, p.history, p.status, p.successor_id, p.heritage_listed, p.data_source,
       p.py_key, p.py_alt_key,
       ST_X(ST_Transform(p.geom, 4326)) AS lon, ST_Y(ST_Transform(p.geom, 4326)) AS lat
FROM place_names p
LEFT JOIN admin_divisions d ON d.code = p.division_code AND d.valid_to IS NULL
WHERE p.id = ANY(CAST(:ids AS bigint[]))
"""


def spelling(row) -> str | None:
    """The Roman-alphabet spelling shown: the office's manual pinyin when set, else the stored one."""
    return row.pinyin_manual or row.pinyin


def feature_rows(conn: sa.Connection, ids: list[int]) -> dict[int, sa.Row]:
    if not ids:
        return {}
    return {row.id: row for row in conn.execute(sa.text(_FEATURE_SQL), {"ids": ids})}


def feature(row, **extra) -> dict:
    """A place name as a GeoJSON Feature (RFC 7946: EPSG:4326, lon/lat, coordinates to 7 decimals)."""
    properties = {
        "name": row.name,
        "pinyin": spelling(row),
        "category": row.category,
        "division_code": row.division_code,
        "division_name": row.division_name,
        "status": row.status,
        "successor_id": row.successor_id,
        "heritage_listed": row.heritage_listed,
        **extra,
    }
    return {"type": "Feature", "id": row.id,
            "geometry": {"type": "Point", "coordinates": [round(row.lon, 7), round(row.lat, 7)]},
            "properties": properties}


def _answers(conn: sa.Connection, ranked: list[Ranked]) -> list[dict]:
    rows = {r.candidate.id: r.candidate.display for r in ranked if r.candidate.display is not None}
    rows.update(feature_rows(conn, [r.candidate.id for r in ranked if r.candidate.id not in rows]))
    features = []
    for answer in ranked:
        extra = {"score": answer.score, "match": answer.match.kind}
        if answer.candidate.distance_m is not None:
            extra["distance_m"] = round(answer.candidate.distance_m, 1)
        if answer.former is not None:
            extra["former_name"] = answer.former.name
            extra["former_name_id"] = answer.former.id
            extra["note"] = f"formerly {answer.former.name}; {answer.former.name} is now {answer.candidate.name}"
        features.append(feature(rows[answer.candidate.id], **extra))
    return features


def _ranked(conn: sa.Connection, query: SearchQuery, filters: SearchFilters, *, measure_srid: int,
            limit: int) -> list[Ranked]:
    candidates = find_candidates(conn, query, filters, measure_srid=measure_srid)
    resolve = filters.status == "current"
    successors = find_successors(conn, candidates, filters, measure_srid=measure_srid) if resolve else {}
    return rank(query, candidates, successors=successors, resolve_former=resolve, limit=limit)


def _division_named_first(conn: sa.Connection, query: SearchQuery) -> tuple[str, str, str] | None:
    """(name, code prefix, rest) when the query starts with the name or short name of a current division and
    goes on: 石堤镇高桥村 -> (石堤镇, 500241107, 高桥村)."""
    if not query.is_han or len(query.text) < 4:
        return None
    row = conn.execute(sa.text(
        "SELECT name, name_short, division_code FROM place_names "
        "WHERE category = 'administrative' AND status = 'current' AND division_code IS NOT NULL "
        "AND (starts_with(:text, name) OR starts_with(:text, name_short)) "
        "AND char_length(:text) - char_length(name_short) >= 2 "
        "ORDER BY starts_with(:text, name) DESC, right(division_code, 3) = '000' DESC, char_length(name) DESC, id "
        "LIMIT 1"), {"text": query.text}).first()
    if row is None:
        return None
    used = row.name if query.text.startswith(row.name) else row.name_short
    rest = query.text[len(used):]
    code = row.division_code
    prefix = code[:6] if code.endswith("000000") else code[:9] if code.endswith("000") else code
    return (row.name, prefix, rest) if len(rest) >= 2 else None


def search(conn: sa.Connection, q: str, filters: SearchFilters, *, measure_srid: int, limit: int = 10) -> dict:
    """The place names ``q`` may mean, best first, as a GeoJSON FeatureCollection with ``score`` and ``match``.

    When nothing matches exactly or by prefix and the query starts with a division's name (石堤镇高桥村), the
    rest is searched inside that division. When nothing matches at all, pinyin trigram similarity answers.
    """
    query = normalize_query(q)
    ranked = _ranked(conn, query, filters, measure_srid=measure_srid, limit=limit)
    within = None
    if not ranked or ranked[0].match.tier > 2:
        split = _division_named_first(conn, query)
        if split is not None and (filters.division_prefix is None or split[1].startswith(filters.division_prefix)):
            inner = replace(filters, division_prefix=split[1])
            inner_ranked = _ranked(conn, normalize_query(split[2]), inner, measure_srid=measure_srid, limit=limit)
            if inner_ranked and (not ranked or inner_ranked[0].sort_key[0] <= ranked[0].sort_key[0]):
                ranked, within = inner_ranked, split[0]
    if not ranked:
        resolve = filters.status == "current"
        fuzzy = find_fuzzy(conn, query, filters, measure_srid=measure_srid)
        successors = find_successors(conn, fuzzy, filters, measure_srid=measure_srid) if resolve else {}
        ranked = rank(query, fuzzy, successors=successors, resolve_former=resolve, limit=limit)
    features = _answers(conn, ranked)
    if within:
        for item in features:
            item["properties"]["within"] = within
    return {"type": "FeatureCollection", "query": query.raw, "numberReturned": len(ranked), "features": features}


def autocomplete(conn: sa.Connection, q: str, *, measure_srid: int, limit: int = 10) -> dict:
    """Current place names whose name, short name, pinyin or initials start with ``q``, best first."""
    query = normalize_query(q)
    filters = SearchFilters(status="current_only")
    # the database's order mirrors the ranking's closely: with twice the limit, the top 10 of 300 benchmark
    # queries differed from those of 120 candidates in 4 (in 53 before the SQL order had the tie-breaks)
    candidates = find_candidates(conn, query, filters, measure_srid=measure_srid, autocomplete=True, keep=2 * limit)
    ranked = rank(query, candidates, resolve_former=False, limit=limit)
    return {"type": "FeatureCollection", "query": query.raw, "numberReturned": len(ranked),
            "features": _answers(conn, ranked)}


# -- "contains" -----------------------------------------------------------------------------------------

def _like_literal(text: str) -> str:
    """``text`` for a LIKE pattern with LIKE's own wildcards (``%``, ``_``) and its escape taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_pattern(text: str) -> str:
    """``%text%`` for LIKE: names holding ``text`` as typed."""
    return f"%{_like_literal(text)}%"


def _contains_sql(query: SearchQuery, filters: SearchFilters) -> tuple[str, dict, str]:
    """WHERE and ORDER BY of a "contains" search and their parameters.

    A Chinese query is looked for inside the standard name; a Latin one inside the name (G319, 2号) and inside the
    toneless pinyin (hekou finds 大河口村). The status filter applies to each record itself: no former name is
    replaced by its successor here. Answers the trigram indexes on name and py_key serve from three characters on.
    """
    conditions, params = _filter_sql(filters)
    if query.is_han:
        text = typed_text(query)
        # LIKE: Chinese has no case, and ILIKE costs twice as much per name read; ILIKE when it holds letters
        # (g319国道 finds G319国道)
        conditions.append(f"p.name {'ILIKE' if re.search('[A-Za-z]', text) else 'LIKE'} :pattern")
        params |= {"pattern": _like_pattern(text), "text": text}
        exact, starts = "p.name = :text", "starts_with(p.name, :text)"
    else:
        conditions.append("(p.name ILIKE :pattern OR p.py_key LIKE :key_pattern)")
        params |= {"pattern": _like_pattern(query.raw), "key_pattern": _like_pattern(query.letters),
                   "key": query.letters}
        exact, starts = "p.py_key = :key", "starts_with(p.py_key, :key)"
    if filters.status in ("current", "current_only"):
        conditions.append("p.status = 'current'")
    elif filters.status == "historical":
        conditions.append("p.status <> 'current'")
    # whole name, then names starting with it, then divisions by level, shorter names, name, id: a stable order
    order = f"{exact} DESC, {starts} DESC, {_LEVEL_SQL} DESC, char_length(p.name), p.name, p.id"
    return " AND ".join(conditions), params, order


def _contains_page(conn: sa.Connection, q: str, filters: SearchFilters, *, measure_srid: int, limit: int,
                   offset: int) -> tuple[SearchQuery, list[sa.Row], int]:
    """The query, a page of (id, distance_m) of the names holding ``q`` and the number of all of them, from one
    reading of the names (a count of its own only when the page is empty past the first)."""
    query = normalize_query(q)
    where, params, order = _contains_sql(query, filters)
    params |= _point_params(filters, measure_srid)
    page = conn.execute(sa.text(
        f"SELECT p.id, {_distance_sql(filters)} AS distance_m, count(*) OVER () AS matched FROM place_names p "
        f"WHERE {where} ORDER BY {order} LIMIT :limit OFFSET :offset"),
        params | {"limit": limit, "offset": offset}).all()
    if page:
        return query, page, page[0].matched
    matched = conn.execute(sa.text(f"SELECT count(*) FROM place_names p WHERE {where}"), params).scalar_one() \
        if offset else 0
    return query, page, matched


def contains(conn: sa.Connection, q: str, filters: SearchFilters, *, measure_srid: int, limit: int = 10,
             offset: int = 0) -> dict:
    """Every place name holding ``q`` (see :func:`_contains_sql`), a page at a time, with their number: a
    FeatureCollection with ``numberMatched`` (all of them), ``numberReturned`` and ``offset``."""
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInputError(f"offset must be between 0 and {MAX_OFFSET:,}; got {offset}. Narrow the search "
                                "by township or category to reach the names beyond")
    query, page, matched = _contains_page(conn, q, filters, measure_srid=measure_srid, limit=limit, offset=offset)
    rows = feature_rows(conn, [r.id for r in page])
    features = []
    for r in page:
        extra = {"match": "contains"}
        if r.distance_m is not None:
            extra["distance_m"] = round(r.distance_m, 1)
        features.append(feature(rows[r.id], **extra))
    return {"type": "FeatureCollection", "query": query.raw, "numberMatched": matched,
            "numberReturned": len(features), "offset": offset, "features": features}


def contains_ids(conn: sa.Connection, q: str, filters: SearchFilters, *, measure_srid: int,
                 maximum: int) -> list[int]:
    """The ids of every place name holding ``q`` in the order of :func:`contains`; LimitExceeded (400) when
    there are more than ``maximum``."""
    _, page, matched = _contains_page(conn, q, filters, measure_srid=measure_srid, limit=maximum, offset=0)
    if matched > maximum:
        raise LimitExceeded(f"{matched:,} place names hold {q.strip()!r}; a download holds at most {maximum:,}. "
                            "Narrow the search by township, category or status")
    return [r.id for r in page]


# -- reverse look-up -----------------------------------------------------------------------------------

_LEVEL_ORDER = {level: i for i, level in enumerate(DIVISIONS.field_named("level").codes)}


def reverse(conn: sa.Connection, lon: float, lat: float, *, measure_srid: int, nearest: int = 5) -> dict:
    """What is at (lon, lat) in EPSG:4326: the divisions containing it, the nearest named road and its distance
    in metres, and the nearest current place names with theirs."""
    lon, lat = check_lon_lat(lon, lat, measure_srid=measure_srid)
    params = {"lon": lon, "lat": lat, "measure_srid": measure_srid, "n": nearest}
    divisions = conn.execute(sa.text(
        f"SELECT code, name, level, kind FROM admin_divisions WHERE valid_to IS NULL "
        f"AND ST_Intersects(geom, {_QUERY_POINT})"), params).all()
    found = {row.level: {"code": row.code, "name": row.name, "kind": row.kind} for row in
             sorted(divisions, key=lambda r: _LEVEL_ORDER.get(r.level, 9))}
    road = conn.execute(sa.text(
        f"SELECT id, name, road_class, ST_Distance(ST_Transform(geom, :measure_srid), "
        f"ST_Transform({_QUERY_POINT}, :measure_srid)) AS distance_m "
        f"FROM (SELECT * FROM roads ORDER BY geom <-> {_QUERY_POINT} LIMIT 20) AS near_roads "
        f"ORDER BY distance_m LIMIT 1"), params).first()
    names = conn.execute(sa.text(
        f"SELECT id, ST_Distance(ST_Transform(geom, :measure_srid), "
        f"ST_Transform({_QUERY_POINT}, :measure_srid)) AS distance_m "
        f"FROM (SELECT id, geom FROM place_names WHERE status = 'current' "
        f"ORDER BY geom <-> {_QUERY_POINT} LIMIT :n * 4) AS near_names ORDER BY distance_m, id LIMIT :n"),
        params).all()
    rows = feature_rows(conn, [r.id for r in names])
    return {
        "point": {"lon": lon, "lat": lat},
        "county": found.get("county"),
        "township": found.get("township"),
        "village": found.get("village"),
        "inside_county": "county" in found,
        "nearest_road": None if road is None else {"id": road.id, "name": road.name, "road_class": road.road_class,
                                                   "distance_m": round(road.distance_m, 1)},
        "nearest_place_names": {"type": "FeatureCollection", "features": [
            feature(rows[r.id], distance_m=round(r.distance_m, 1)) for r in names]},
    }


# -- naming check -----------------------------------------------------------------------------------------

_CHECK_SQL = f"""
SELECT {_KEY_COLUMNS}, levenshtein(p.name, :name) AS distance,
       CASE WHEN right(p.division_code, 6) <> '000000' THEN left(p.division_code, 9)
            ELSE (SELECT left(t.code, 9) FROM admin_divisions t WHERE t.level = 'township' AND t.valid_to IS NULL
                  AND ST_Contains(t.geom, p.geom) ORDER BY t.code LIMIT 1) END AS township
FROM place_names p
WHERE p.status <> 'cancelled' AND (p.name = :name OR p.py_key = ANY(:keys) OR p.py_alt_key = ANY(:keys)
      OR p.typo_keys && CAST(:variants AS text[]) OR p.name = ANY(CAST(:deletes AS text[]))
      OR (:specific_prefix <> '' AND p.name LIKE :specific_prefix ESCAPE '\\'))
ORDER BY p.id
LIMIT {MAX_CHECK_ROWS}
"""


def _townships(conn: sa.Connection) -> dict[str, dict]:
    """Current townships by 9-digit code: name, urban (a 街道 of the county seat) and the codes of the townships
    sharing a border with it."""
    rows = conn.execute(sa.text("""
        SELECT left(t.code, 9) AS code9, t.name, t.urban_rural = 'urban' AS urban,
               coalesce(array_agg(left(n.code, 9) ORDER BY n.code) FILTER (WHERE n.code IS NOT NULL), '{}') AS near
        FROM admin_divisions t
        LEFT JOIN admin_divisions n ON n.level = 'township' AND n.valid_to IS NULL AND n.code <> t.code
             AND ST_Intersects(n.geom, t.geom)
        WHERE t.level = 'township' AND t.valid_to IS NULL
        GROUP BY t.code, t.name, t.urban_rural""")).mappings().all()
    return {r["code9"]: {"name": r["name"], "urban": bool(r["urban"]), "near": set(r["near"])} for r in rows}


def _built_up_area(township: str | None, townships: dict[str, dict]) -> str | None:
    """The built-up area (建成区) a name in ``township`` belongs to: ``county_seat`` for the 街道 of the county
    seat, else the township's own seat (its code)."""
    if township is None or township not in townships:
        return None
    return "county_seat" if townships[township]["urban"] else township


def check_name(conn: sa.Connection, name: str, *, division: str | None = None, kind: str | None = None) -> dict:
    """Would the proposed ``name`` clash with an existing name (current or historical) of the county? Each clash is
    graded ``same_name``, ``same_sound`` or ``similar``, with the scope it was found in (same township,
    neighbouring township, same county), and ruled refused or a warning by 《地名管理条例》 (2022) 第九条
    (:mod:`gis_service.search.naming`). ``clear`` is false only when a clash is refused. ``division`` (a 6-, 9- or
    12-digit code) places the new name; ``kind`` (township, village, road, residential, other) says what it names,
    by default read from its generic part (梅江路: road)."""
    query = normalize_query(name, argument="name")
    if not re.search(HAN_PATTERN, name):
        raise InvalidInputError("name must be the proposed standard name in Chinese characters, e.g. 梅江路")
    if kind not in (None, "") and kind not in naming.KINDS:
        raise InvalidInputError(f"kind must be one of {', '.join(naming.KINDS)}; got {kind!r}")
    prefix = division_prefix(conn, division)
    proposed = query.text
    inferred, generic = naming.kind_of(proposed)
    kind_from = "given" if kind else (f"the generic part {generic}" if generic else "no generic part recognised")
    kind = kind or inferred
    specific = naming.specific_part(proposed)
    townships = _townships(conn)
    township = prefix[:9] if prefix and len(prefix) >= 9 else None
    assumptions = []
    built_up = _built_up_area(township, townships)
    if built_up is None and kind in ("road", "residential"):
        built_up = "county_seat"
        assumptions.append("no township given (division): the name is taken to be for the county seat's built-up "
                           "area (中和、乌杨、平凯、官庄、清溪场街道)")
    keys = list(query.pinyin_keys)
    like = _like_literal(specific) + "%" if len(specific) >= 2 and specific != proposed else ""
    rows = conn.execute(sa.text(_CHECK_SQL), {
        "name": proposed, "keys": keys, "variants": list(query.typo_variants), "deletes": list(query.typo_deletes),
        "specific_prefix": like}).all()
    clashes = []
    for row in rows:
        grade = _grade(row, proposed, keys, specific)
        if grade is None:
            continue
        their_kind = naming.existing_kind(row.category, row.division_code)
        scope = ("same_county" if township is None or row.township is None else "same_township"
                 if row.township == township else "neighbouring_township"
                 if row.township in townships.get(township, {}).get("near", ()) else "same_county")
        same_area = built_up is not None and _built_up_area(row.township, townships) == built_up
        ruling = naming.rule_on(grade=grade, proposed_kind=kind, existing_kind=their_kind, scope=scope,
                                same_built_up_area=same_area, existing_current=row.status == "current")
        order = (not ruling.refused, naming.GRADES.index(grade), naming.SCOPES.index(scope), row.status != "current",
                 row.id)
        clashes.append((order, row.id, {"grade": grade, "scope": scope, "existing_kind": their_kind,
                                        "same_built_up_area": same_area, "refused": ruling.refused,
                                        "ruling": ruling.why, "rule": ruling.rule,
                                        "same_division": bool(prefix and row.division_code
                                                              and row.division_code.startswith(prefix))}))
    clashes.sort(key=lambda c: c[0])
    feature_by_id = feature_rows(conn, [c[1] for c in clashes])
    refused = [props for _, _, props in clashes if props["refused"]]
    return {
        "name": proposed,
        "pinyin_key": pinyin_key(proposed),
        "short_name": short_name(proposed),
        "specific": specific, "generic": generic,
        "kind": kind, "kind_from": kind_from,
        "division": division, "township": township,
        "township_name": townships.get(township, {}).get("name") if township else None,
        "built_up_area": built_up, "assumptions": assumptions,
        "clear": not refused,
        "refused": len(refused), "warnings": len(clashes) - len(refused),
        "rule": naming.RULES.get(kind, naming.WARNINGS["no_rule"]),
        "clashes": {"type": "FeatureCollection", "features": [
            feature(feature_by_id[i], **props) for _, i, props in clashes]},
    }


def _grade(row, proposed: str, keys: list[str], specific: str) -> str | None:
    """same_name, same_sound, similar or None (no clash)."""
    if row.name == proposed:
        return "same_name"
    if set(keys) & {row.py_key, row.py_alt_key}:
        return "same_sound"
    if min(row.distance, levenshtein(proposed, row.name)) <= 1:
        return "similar"
    if len(specific) >= 2 and specific != proposed and naming.specific_part(row.name) == specific:
        return "similar"
    return None


# -- one record ----------------------------------------------------------------------------------------

def place_name_detail(conn: sa.Connection, place_name_id: int) -> dict:
    """One place name with everything the office publishes: meaning, origin, history, the former names that
    lead to it and its successor (if it is no longer current). Who changed it is in :func:`place_name_changes`."""
    rows = feature_rows(conn, [place_name_id])
    row = rows.get(place_name_id)
    if row is None:
        raise NotFoundError(f"no place name has id {place_name_id}")
    former = conn.execute(sa.text(
        "WITH RECURSIVE earlier (id, depth) AS ("
        " SELECT id, 1 FROM place_names WHERE successor_id = :id"
        " UNION ALL SELECT p.id, e.depth + 1 FROM earlier e JOIN place_names p ON p.successor_id = e.id"
        " WHERE e.depth < 10)"
        " SELECT p.id, p.name, p.pinyin, p.pinyin_manual, p.status, p.history, e.depth FROM earlier e"
        " JOIN place_names p ON p.id = e.id ORDER BY e.depth, p.id"), {"id": place_name_id}).all()
    successor = None
    if row.successor_id is not None:
        successor = conn.execute(sa.text("SELECT id, name, status FROM place_names WHERE id = :id"),
                                 {"id": row.successor_id}).first()
    result = feature(row, meaning=row.meaning, origin=row.origin, history=row.history,
                     pinyin_manual=row.pinyin_manual, pinyin_generated=row.pinyin, data_source=row.data_source,
                     pinyin_search_keys=[k for k in (row.py_key, row.py_alt_key) if k])
    result["properties"]["former_names"] = [
        {"id": f.id, "name": f.name, "pinyin": f.pinyin_manual or f.pinyin, "status": f.status,
         "history": f.history, "steps_back": f.depth} for f in former]
    result["properties"]["successor"] = None if successor is None else {
        "id": successor.id, "name": successor.name, "status": successor.status}
    return result


def place_name_changes(conn: sa.Connection, place_name_id: int) -> dict:
    """The log of changes of one place name, oldest first: what, who, when, the values before and after."""
    if conn.execute(sa.text("SELECT 1 FROM place_names WHERE id = :id"), {"id": place_name_id}).scalar() is None:
        raise NotFoundError(f"no place name has id {place_name_id}")
    events = conn.execute(sa.text(
        "SELECT action, changed_at, changed_by, note, old_values, new_values FROM place_name_events "
        "WHERE place_name_id = :id ORDER BY changed_at, id"), {"id": place_name_id}).all()
    return {"placeNameId": place_name_id, "changes": [
        {"action": e.action, "changed_at": e.changed_at.isoformat(), "changed_by": e.changed_by, "note": e.note,
         "old": e.old_values, "new": e.new_values} for e in events]}

