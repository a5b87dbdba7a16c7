"""The place-name office's look-ups (地名查询): search, type-ahead, reverse look-up, duplicate check, one record.

Thin: parameters are checked and handed to :mod:`gis_service.search.queries`. Answers are GeoJSON in
EPSG:4326 (RFC 7946, lon/lat); bad parameters are 400 with a message saying what to send instead.
"""

from __future__ import annotations

from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from gis_service.api.deps import NEEDS_TOKEN, ConnectionDep, ReadRunnerDep, SettingsDep
from gis_service.api.openapi import error_responses
from gis_service.errors import InvalidInputError
from gis_service.search import naming, queries
from gis_service.search.normalize import HAN_PATTERN, MAX_QUERY_LENGTH, SEARCHABLE_PATTERN

router = APIRouter(prefix="/placenames", tags=["place names"])

#: Ids are PostgreSQL bigints.
MAX_PLACE_NAME_ID = 2**63 - 1

QueryText = Annotated[str, Query(
    description="What the user typed: a standard name or its short form (石堤镇, 石堤), toneless pinyin with or "
    "without spaces (shidi, shi di zhen; ü as v or u), pinyin initials (sdz), a name with one wrong, missing or "
    f"extra character (including a homophone), or a former name (孝溪乡). At most {MAX_QUERY_LENGTH} characters, "
    "holding at least one Chinese character, letter or digit.",
    json_schema_extra={"minLength": 1, "maxLength": MAX_QUERY_LENGTH, "pattern": SEARCHABLE_PATTERN})]


#: How /placenames/search matches: ranked best matches, or every name holding the text.
SearchMode = Literal["ranked", "contains"]


def _limit(maximum: int, what: str = "answers"):
    return Annotated[int, Query(description=f"How many {what} at most (1 to {maximum}).",
                                json_schema_extra={"minimum": 1, "maximum": maximum})]


@router.get("/search", summary="Find place names", responses=error_responses(400, 404, 503),
            description="Place names matching q, best first, as a GeoJSON FeatureCollection (EPSG:4326). Each "
            "feature has `score` (0..1) and `match`: exact, short_name, former_name, prefix, pinyin, initials, "
            "pinyin_prefix, initials_prefix, typo or fuzzy. Exact matches come before prefixes before the rest; "
            "among equals the higher administrative level, then the nearer (with `near`). A former name is "
            "answered with the current name that replaced it, with `former_name` and a `note`. With "
            "mode=contains: every name holding q, paged, with their number (`numberMatched`; `match` is contains, "
            "no score).")
async def search(
    read: ReadRunnerDep,
    settings: SettingsDep,
    q: QueryText,
    category: Annotated[str | None, Query(
        description="Only this category: administrative (行政区划), settlement (居民点), road (道路街巷), natural "
        "(自然地理实体), memorial (纪念地/名胜) or facility (设施); empty: every category.",
        json_schema_extra={"enum": ["", *queries.CATEGORIES]})] = None,
    division: Annotated[str | None, Query(
        description="Only names inside this administrative division and everything below it: its 6-, 9- or "
        "12-digit statistical code, e.g. 500241107000 (石堤镇); 404 when no division has it.",
        json_schema_extra={"pattern": queries.DIVISION_CODE_PATTERN})] = None,
    near: Annotated[str | None, Query(
        description="lon,lat in EPSG:4326, in decimal degrees, within the area of use of the county's "
        "Gauss-Krüger zone (where distance_m is measured; for EPSG:4545 longitude 106.5..109.51, latitude "
        "18.19..42.47): nearer names rank first among equally good matches, and each answer carries distance_m.",
        examples=["108.99,28.45"],
        json_schema_extra={"pattern": queries.NEAR_PATTERN})] = None,
    radius_m: Annotated[float | None, Query(
        description=f"Only with near: only names within this many metres of the point (at most "
        f"{queries.MAX_RADIUS_M:,}).",
        json_schema_extra={"exclusiveMinimum": 0, "maximum": queries.MAX_RADIUS_M})] = None,
    status: Annotated[str | None, Query(
        description="current (default: former names answer with their successor), historical (only names no "
        "longer in use, as themselves) or all (every record as itself).",
        json_schema_extra={"enum": list(queries.STATUSES)})] = "current",
    limit: _limit(queries.MAX_LIMIT) = 10,
    mode: Annotated[SearchMode, Query(
        description="ranked (default): the best matches as described above, at most "
        f"{queries.MAX_LIMIT}. contains: every place name whose standard name holds q as typed (a Latin q: the "
        "name or its toneless pinyin holds it, hekou finds 大河口村), in a fixed order (the whole name, then names "
        "starting with q, then higher divisions, shorter names first), a page of `limit` from `offset`, with "
        "`numberMatched`, the number of all of them. status applies to each record itself in this mode.")] = "ranked",
    offset: Annotated[int, Query(
        description=f"Only with mode=contains: skip this many matches (0 to {queries.MAX_OFFSET:,}) to page "
        "through them.", json_schema_extra={"minimum": 0, "maximum": queries.MAX_OFFSET})] = 0,
) -> JSONResponse:
    def answers(conn: sa.Connection) -> dict:
        filters = queries.check_filters(conn, category=category, division=division, near=near, radius_m=radius_m,
                                        status=status, measure_srid=settings.measure_srid)
        if mode == "contains":
            return queries.contains(conn, q, filters, measure_srid=settings.measure_srid,
                                    limit=queries.check_limit(limit), offset=offset)
        if offset:
            raise InvalidInputError("offset pages through the matches of mode=contains only; the ranked search "
                                    f"answers its best {queries.MAX_LIMIT} at most (limit)")
        return queries.search(conn, q, filters, measure_srid=settings.measure_srid, limit=queries.check_limit(limit))

    # in a transaction: the fuzzy fallback sets its threshold with SET LOCAL. JSONResponse directly: the answer is
    # plain JSON already, and FastAPI's encoder pass would cost time
    return JSONResponse(await read(answers, transaction=True))


@router.get("/autocomplete", summary="Type-ahead suggestions",
            description="Up to 10 current place names whose name, short name, pinyin or pinyin initials start "
            "with q, best first (GeoJSON FeatureCollection with `score` and `match`).",
            responses=error_responses(400, 503))
async def autocomplete(read: ReadRunnerDep, settings: SettingsDep, q: QueryText,
                       limit: _limit(queries.MAX_AUTOCOMPLETE, "suggestions") = 10) -> JSONResponse:
    return JSONResponse(await read(lambda conn: queries.autocomplete(
        conn, q, measure_srid=settings.measure_srid,
        limit=queries.check_limit(limit, maximum=queries.MAX_AUTOCOMPLETE))))


@router.get("/reverse", summary="What is here",
            description="The county, township and village containing a point, the nearest named road with its "
            "distance in metres (measured in the county's Gauss-Krüger zone), and the nearest current place names.",
            responses=error_responses(400, 503))
def reverse(
    conn: ConnectionDep,
    settings: SettingsDep,
    lon: Annotated[float, Query(description="Longitude in EPSG:4326 (CGCS2000 is treated as the same), e.g. 108.99; "
                                            "within the area of the county's Gauss-Krüger zone.")],
    lat: Annotated[float, Query(description="Latitude in EPSG:4326, e.g. 28.45; within the area of the county's "
                                            "Gauss-Krüger zone.")],
    nearest: _limit(queries.MAX_NEAREST, "nearest place names") = 5,
) -> dict:
    return queries.reverse(conn, lon, lat, measure_srid=settings.measure_srid,
                           nearest=queries.check_limit(nearest, maximum=queries.MAX_NEAREST))


@router.get("/check", summary="Would a new name clash, and does the regulation refuse it",
            description="Before naming: the existing names of the county (current and historical) the proposed "
            "name clashes with, each graded `same_name` (同名), `same_sound` (同音: the same toneless pinyin) or "
            "`similar` (one character apart, or the same specific part, 专名), with the `scope` it was found in "
            "(same_township, neighbouring_township, same_county), and `refused` with the `rule` (in Chinese, with "
            "its article) when 《地名管理条例》 (2022) 第九条第一款第（八）项 forbids it: the same name or sound among "
            "township names of the county, village names of the county, road or residential names of the same "
            "built-up area (the county seat, or a township's seat). Everything else is a warning. `clear` is false "
            "only when a clash is refused.",
            responses=error_responses(400, 404, 503))
def check(
    conn: ConnectionDep,
    name: Annotated[str, Query(description=f"The proposed standard name, in Chinese characters (at most "
                                           f"{MAX_QUERY_LENGTH}).",
                               json_schema_extra={"maxLength": MAX_QUERY_LENGTH, "pattern": HAN_PATTERN})],
    division: Annotated[str | None, Query(
        description="Code (6, 9 or 12 digits) of the division the new name is for: sets the township the scopes "
        "are measured from and the built-up area of a road; 404 when no division has it. Without it a road or "
        "residential name is taken to be for the county seat.",
        json_schema_extra={"pattern": queries.DIVISION_CODE_PATTERN})] = None,
    kind: Annotated[str | None, Query(
        description="What the name is for: township, village, road, residential or other. Default: read from "
        "the name's generic part (镇/乡/街道: township; 村/社区: village; 路/街/巷/大道: road; 小区/家园/苑…: "
        "residential).", json_schema_extra={"enum": ["", *naming.KINDS]})] = None,
) -> dict:
    return queries.check_name(conn, name, division=division, kind=kind)


PlaceNameId = Annotated[int, Path(description="Id of the place name (a positive whole number).",
                                  ge=1, le=MAX_PLACE_NAME_ID)]


@router.get("/{place_name_id}", summary="One place name with its history",
            description="The record with its meaning, origin and history, the former names that lead to it and "
            "its successor when it is no longer current. Who changed it and when: /placenames/{id}/changes.",
            responses=error_responses(400, 404, 503))
def get_place_name(conn: ConnectionDep, place_name_id: PlaceNameId) -> dict:
    return queries.place_name_detail(conn, place_name_id)


@router.get("/{place_name_id}/changes", summary="Who changed a place name, and how",
            description="Every recorded change of the record, oldest first: the action (renamed, cancelled, "
            "pinyin set …), who made it, when, a note, and the values before and after. Needs a bearer token of "
            "any role: it names the bureau's staff.",
            responses=error_responses(400, 401, 404, 503), dependencies=NEEDS_TOKEN)
def get_place_name_changes(conn: ConnectionDep, place_name_id: PlaceNameId) -> dict:
    return queries.place_name_changes(conn, place_name_id)
