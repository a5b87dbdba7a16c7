"""Placing a row by its address or its village (地址, 所在村(社区)) with the service's own gazetteer.

A facility list often has no coordinates, only ``地址`` ("秀山县石堤镇高桥村3组张家寨15号") or the village it is in.
:func:`geocode` reads such a text against a :class:`Gazetteer` (the townships and villages of the divisions layer,
the settlements and roads of the place-name gazetteer, former names answering for their successors) and returns the
point, how precise it is (``settlement``, ``road`` or ``village``) and, when the text fits several places equally
well, every one of them. It is pure: :func:`load_gazetteer` is the only function that reads the database.

How a text is read (Chinese addresses have no spaces, and people write them every way):

1. normalised as the place-name search normalises queries (full-width forms, spaces and punctuation dropped), and
   the province and county in front (重庆市, 秀山土家族苗族自治县, 秀山县, 秀山) taken off;
2. at its start a township (its name, short name or a former name; a wrong generic such as 石堤乡 for 石堤镇 passes),
   then a village of it (or of the county when no township is written); one wrong character in a name of three or
   more is forgiven, as the search forgives it (:func:`gis_service.search.keys.levenshtein`);
3. in what follows, with groups and house numbers (3组, 五社, 15号, 附2号) left out, the longest settlement or road
   name of that village (or township, or county) it contains, a one-character typo again forgiven inside a named
   township or village.

Each reading is scored by what it matched (exact above typo, more levels above fewer, a longer name above a shorter
one); the best wins. When the best readings put the row in different villages it is ambiguous and every reading is
returned; when they agree it is placed.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import shapely
import sqlalchemy as sa

from gis_service.errors import InvalidInputError, RowProblem
from gis_service.layers.base import LOCATION_PRECISIONS
from gis_service.search.keys import levenshtein, short_name

#: What stands before the county in a full address. The county's own names come from the divisions layer.
PROVINCE_PREFIXES = ("中华人民共和国", "中国", "重庆市", "重庆")
#: Generics that may follow a township's or a village's short name, whatever the unit's own generic is.
TOWNSHIP_GENERICS = ("街道办事处", "街道", "办事处", "镇", "乡")
VILLAGE_GENERICS = ("村民委员会", "居民委员会", "村委会", "居委会", "社区", "村")
_NUMBER = "[0-9一二三四五六七八九十百千零〇两]+"
#: Groups (3组, 五社, 二队) and house numbers (15号, 附2号, 3-1号, 2栋, 1单元) say nothing the gazetteer knows.
NOISE = re.compile(rf"(?:附)?{_NUMBER}(?:[-之]{_NUMBER})?"
                   "(?:村民小组|小组|组|社|队|号楼|号院|号|栋|幢|单元|楼|层|室|户)")
_PUNCTUATION = re.compile(r"[\s\u3000·•・.,，。、;；:：'\"“”‘’()（）\[\]【】<>《》!！?？/\\|_\-—#＃]+")
#: Shortest name a one-character typo is forgiven in (two-character names differ from each other by one).
MIN_TYPO_LENGTH = 3
#: Scores of a match: a whole name (or a short name with a generic after it), a bare short name (高桥: maybe the start
#: of a settlement's name, 高桥湾), a name with one typo; and what naming a village adds (the level a row needs).
EXACT, SHORT, TYPO, VILLAGE_BONUS = 2.0, 1.5, 1.0, 0.5


@dataclass(frozen=True)
class Place:
    """One name of the gazetteer: a township, a village, a settlement or a road, with the village and township
    codes it lies in ('' when not known) and its point (EPSG:4490 lon, lat)."""

    name: str
    kind: str
    village_code: str
    township_code: str
    lon: float
    lat: float
    #: The standard name when ``name`` is a former one.
    standard: str = ""

    @property
    def label(self) -> str:
        return self.standard or self.name


@dataclass
class Gazetteer:
    """The names a text is read against, indexed by kind and by the division they lie in."""

    county_names: tuple[str, ...]
    townships: list[Place]
    villages: list[Place]
    leaves: list[Place]
    _villages_of: dict[str, list[Place]] = field(default_factory=dict, repr=False)
    _leaves_of: dict[str, list[Place]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for village in self.villages:
            self._villages_of.setdefault(village.township_code, []).append(village)
        for leaf in self.leaves:
            self._leaves_of.setdefault(leaf.village_code, []).append(leaf)
            self._leaves_of.setdefault(leaf.township_code, []).append(leaf)
        self.county_prefixes = tuple(sorted({p for name in self.county_names for p in _county_forms(name)},
                                            key=len, reverse=True))

    def villages_in(self, township: Place | None) -> list[Place]:
        return self.villages if township is None else self._villages_of.get(township.township_code, [])

    def village_name(self, code: str | None) -> str:
        return next((v.name for v in self._villages_of.get(code[:9] + "000", []) if v.village_code == code), "") \
            if code else ""

    def leaves_in(self, division: Place | None) -> list[Place]:
        if division is None:
            return self.leaves
        code = division.village_code if division.kind == "village" else division.township_code
        return self._leaves_of.get(code, [])


@dataclass(frozen=True)
class Reading:
    """One way of reading a text: what it matched at each level, and the score of that."""

    township: Place | None
    village: Place | None
    leaf: Place | None
    score: float

    @property
    def place(self) -> Place | None:
        return self.leaf or self.village

    @property
    def precision(self) -> str | None:
        if self.leaf is not None:
            return self.leaf.kind
        return "village" if self.village is not None else None

    @property
    def village_code(self) -> str | None:
        return self.place.village_code or None if self.place else None

    def describe(self) -> str:
        parts = [p.label for p in (self.township, self.village, self.leaf) if p is not None]
        return "".join(parts)


@dataclass
class Geocoded:
    """Where a text places a row. ``point`` is None when it could not be placed or could be placed several ways
    (``candidates`` then lists them); ``problem`` says why in words."""

    text: str
    point: tuple[float, float] | None = None
    precision: str | None = None
    village_code: str | None = None
    matched: str = ""
    candidates: list[Reading] = field(default_factory=list)
    problem: str | None = None


def geocode(text: str, gazetteer: Gazetteer) -> Geocoded:
    """Place ``text`` (an address, a village's name, or both run together) with ``gazetteer``."""
    normal = normalize_address(text, gazetteer)
    if not normal:
        return Geocoded(text, problem="is empty")
    readings = _readings(normal, gazetteer)
    placed = [r for r in readings if r.place is not None]
    if not placed:
        townships = {r.township.label for r in readings if r.township is not None}
        where = f"only the township {'/'.join(sorted(townships))} is recognised" if townships else \
            "no township, village, settlement or road of the county is recognised in it"
        return Geocoded(text, problem=f"cannot be placed: {where}; write the village (村/社区) and, if you can, the "
                                      "settlement or road")
    best = max(r.score for r in placed)
    top = [r for r in placed if r.score >= best - 1e-9]
    villages = {r.village_code for r in top}
    if len(villages) > 1:
        ways = sorted(top, key=lambda r: r.village_code or "")
        described = [f"{r.place.label} in {gazetteer.village_name(r.village_code) or '?'} ({r.village_code})"
                     for r in ways]
        return Geocoded(text, candidates=ways, problem="can be placed more than one way: " + "; ".join(described[:6])
                        + ("; …" if len(ways) > 6 else "") + "; add the township or village to tell them apart")
    chosen = min(top, key=lambda r: LOCATION_PRECISIONS.index(r.precision))
    return Geocoded(text, point=(chosen.place.lon, chosen.place.lat), precision=chosen.precision,
                    village_code=chosen.village_code, matched=chosen.describe())


def normalize_address(text: str, gazetteer: Gazetteer) -> str:
    """``text`` without spaces, punctuation, and the province and county in front (as the search normalises)."""
    normal = _PUNCTUATION.sub("", unicodedata.normalize("NFKC", str(text)))
    for prefixes in (PROVINCE_PREFIXES, gazetteer.county_prefixes):
        for prefix in prefixes:
            if normal.startswith(prefix) and len(normal) > len(prefix):
                normal = normal[len(prefix):]
                break
    return normal


def _readings(text: str, gazetteer: Gazetteer) -> list[Reading]:
    readings = []
    for township, after_township, t_score in [(None, 0, 0), *_match_at(text, 0, gazetteer.townships,
                                                                       TOWNSHIP_GENERICS)]:
        village_options = [(None, after_township, 0), *_match_at(text, after_township,
                                                                 gazetteer.villages_in(township), VILLAGE_GENERICS)]
        for village, after_village, v_score in village_options:
            scope = village or township
            v_score += VILLAGE_BONUS if village else 0
            # a road may carry its village's name (高桥村张家寨便道): exact names are looked for after the township;
            # mistyped ones only after the village, which would otherwise pass for one typo of 高桥村道
            leaves = _leaves_in(NOISE.sub("", text[after_township:]), NOISE.sub("", text[after_village:]),
                                gazetteer.leaves_in(scope), typos=scope is not None)
            if not leaves:
                if township or village:
                    readings.append(Reading(township, village, None, t_score + v_score))
                continue
            for leaf, l_score in leaves:
                readings.append(Reading(township, village, leaf, t_score + v_score + l_score))
    return readings


def _match_at(text: str, at: int, places: Iterable[Place], generics: tuple[str, ...]) -> list[tuple[Place, int, int]]:
    """(place, where its name ends in ``text``, score) for each place whose name (or short name, then any generic)
    starts at ``at``, exactly or with one wrong, missing or extra character."""
    found: dict[Place, tuple[int, float]] = {}
    for place in places:
        for name in {place.name, short_name(place.name)}:
            end, score = _exact_end(text, at, name, generics, short=name != place.name)
            if end is None and len(name) >= MIN_TYPO_LENGTH:
                end, score = _typo_end(text, at, name), TYPO
            if end is not None and (place not in found or found[place][1] < score + len(name) / 100):
                found[place] = (end, score + len(name) / 100)
    return [(place, end, score) for place, (end, score) in found.items()]


def _exact_end(text: str, at: int, name: str, generics: tuple[str, ...], *, short: bool) -> tuple[int | None, float]:
    """Where ``name`` ends when ``text`` has it at ``at`` (a short name with any generic after it: 石堤乡 for 石堤镇),
    and the score of that."""
    if not text.startswith(name, at):
        return None, 0.0
    end = at + len(name)
    if short:
        for generic in generics:
            if text.startswith(generic, end):
                return end + len(generic), EXACT
        if any(text.startswith(generic, end) for generic in TOWNSHIP_GENERICS + VILLAGE_GENERICS):
            return None, 0.0  # 石堤镇 is the township, not the village 石堤社区 by its short name
        return end, SHORT
    return end, EXACT


def _typo_end(text: str, at: int, name: str) -> int | None:
    for length in (len(name), len(name) - 1, len(name) + 1):
        window = text[at:at + length]
        if len(window) == length and window[0] == name[0] and levenshtein(window, name, limit=2) <= 1:
            return at + length
    return None


def _leaves_in(rest: str, rest_after_village: str, leaves: list[Place], *, typos: bool) -> list[tuple[Place, float]]:
    """The settlements and roads ``rest`` names: every one it contains exactly (the longest names win over names
    inside them), else, with ``typos`` (inside a township or village: county-wide a near-miss is no evidence, 朝阳区
    is one edit from 朝阳小区), every one ``rest_after_village`` contains with one typo."""
    exact = [leaf for leaf in leaves if len(leaf.name) >= 2 and leaf.name in rest]
    if exact:
        longest = [leaf for leaf in exact if not any(leaf.name in other.name and leaf.name != other.name
                                                     for other in exact)]
        return [(leaf, EXACT + len(leaf.name) / 100) for leaf in longest]
    if not typos:
        return []
    typo = [leaf for leaf in leaves if len(leaf.name) >= MIN_TYPO_LENGTH
            and _contains_typo(rest_after_village, leaf.name)]
    return [(leaf, TYPO + len(leaf.name) / 100) for leaf in typo]


def _contains_typo(text: str, name: str) -> bool:
    return any(_typo_end(text, at, name) is not None for at in range(len(text) - len(name) + 2))


def _county_forms(name: str) -> list[str]:
    """秀山土家族苗族自治县 -> 秀山土家族苗族自治县, 秀山自治县, 秀山县, 秀山."""
    short = re.sub("(土家族苗族|苗族土家族|[^族]{0,6}族)?自治县$|县$", "", name)
    return [name, short + "自治县", short + "县", short] if short and short != name else [name]


# -- a file's rows ------------------------------------------------------------------------------------------------

#: Columns that place a row, compared after NFKC (full-width brackets too): the township, the village, the address.
TOWNSHIP_COLUMNS = ("所在乡镇(街道)", "乡镇(街道)", "所在乡镇", "乡镇街道", "乡镇", "township")
VILLAGE_COLUMNS = ("所在村(社区)", "村(社区)", "所在村", "所在社区", "村社区", "村/社区", "village")
ADDRESS_COLUMNS = ("地址", "详细地址", "地点", "所在地", "位置", "address")


def place_columns(columns: Iterable[object]) -> list[str]:
    """The columns of a file that place a row (township, village, address), in that order."""
    keys = {unicodedata.normalize("NFKC", str(c)).replace(" ", "").lower(): c for c in columns}
    return [keys[k] for names in (TOWNSHIP_COLUMNS, VILLAGE_COLUMNS, ADDRESS_COLUMNS) for k in names if k in keys]


def place_frame(frame: gpd.GeoDataFrame, gazetteer: Gazetteer, *, allow_approximate: bool,
                division_field: str | None, precision_field: str = "location_precision"
                ) -> tuple[gpd.GeoDataFrame, list[RowProblem], Counter]:
    """Give every row of ``frame`` (EPSG:4490) without a geometry the point its township, village and address
    columns name. Returns the frame without those columns (with ``precision_field`` set, and ``division_field`` set
    to the village where it was empty), one problem per row that could not be placed, could be placed two ways, or,
    unless ``allow_approximate``, only at its village; and how many rows were placed at each precision."""
    columns = place_columns(frame.columns)
    if not columns:
        raise InvalidInputError("--geocode needs a column naming where each row is: 地址 (address) or 所在村(社区) "
                                "(village), optionally 所在乡镇(街道) (township); the columns are "
                                + ", ".join(str(c) for c in frame.columns if c != frame.geometry.name))
    label = str(columns[-1])
    frame = frame.copy()
    geometries = list(frame.geometry.values)
    precisions: list[str | None] = [None] * len(frame)
    divisions = list(frame[division_field]) if division_field in frame.columns else [None] * len(frame)
    problems: list[RowProblem] = []
    placed: Counter = Counter()
    for i, parts in enumerate(zip(*(frame[c] for c in columns))):
        geometry = geometries[i]
        if geometry is not None and not (isinstance(geometry, float) or geometry.is_empty):
            continue
        text = "".join(str(p).strip() for p in parts if isinstance(p, str | int) and str(p).strip())
        if not text:
            problems.append(RowProblem(i + 1, label, "has no coordinates and no address or village to place it by"))
            continue
        found = geocode(text, gazetteer)
        if found.point is None:
            problems.append(RowProblem(i + 1, label, f"{text!r} {found.problem}"))
        elif found.precision == "village" and not allow_approximate:
            problems.append(RowProblem(i + 1, label, f"{text!r} is placed only at the village ({found.matched}): "
                                       "add the settlement or road, give lon/lat, or pass --allow-approximate to "
                                       "take the village's point"))
        else:
            geometries[i] = shapely.Point(*found.point)
            precisions[i] = found.precision
            placed[found.precision] += 1
            if divisions[i] is None or (isinstance(divisions[i], float) or not str(divisions[i]).strip()):
                divisions[i] = found.village_code
    frame = frame.drop(columns=columns).set_geometry(geometries, crs=frame.crs)
    frame[precision_field] = precisions
    if division_field is not None:
        frame[division_field] = divisions
    return frame, problems, placed


# -- the database -----------------------------------------------------------------------------------------------

_GAZETTEER_SQL = """
WITH village AS (
    SELECT code, name, parent_code, geom FROM admin_divisions WHERE level = 'village' AND valid_to IS NULL
), seat AS (  -- a division's point: its entry in the gazetteer, else a point inside it
    SELECT d.code, d.name, d.level, d.parent_code,
           coalesce((SELECT p.geom FROM place_names p WHERE p.category = 'administrative' AND p.status = 'current'
                     AND p.division_code = d.code ORDER BY p.id LIMIT 1), ST_PointOnSurface(d.geom)) AS geom
    FROM admin_divisions d WHERE d.valid_to IS NULL AND d.level IN ('township', 'village')
)
SELECT 'division' AS source, s.level AS kind, s.name, NULL AS standard,
       CASE WHEN s.level = 'village' THEN s.code ELSE '' END AS village_code,
       CASE WHEN s.level = 'village' THEN s.parent_code ELSE s.code END AS township_code,
       ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat
FROM seat s
UNION ALL  -- former names of townships and villages answer for their successors
SELECT 'former', d.level, f.name, d.name,
       CASE WHEN d.level = 'village' THEN d.code ELSE '' END,
       CASE WHEN d.level = 'village' THEN d.parent_code ELSE d.code END,
       ST_X(s.geom), ST_Y(s.geom)
FROM place_names f JOIN place_names c ON c.id = f.successor_id
JOIN admin_divisions d ON d.code = c.division_code AND d.valid_to IS NULL AND d.level IN ('township', 'village')
JOIN seat s ON s.code = d.code
WHERE f.category = 'administrative' AND f.status <> 'current' AND c.category = 'administrative'
UNION ALL  -- settlements and roads, in the village their point lies in
SELECT 'leaf', CASE p.category WHEN 'road' THEN 'road' ELSE 'settlement' END, p.name, c.name,
       coalesce(v.code, ''), coalesce(v.parent_code, left(p.division_code, 9) || '000'),
       ST_X(coalesce(c.geom, p.geom)), ST_Y(coalesce(c.geom, p.geom))
FROM place_names p
LEFT JOIN place_names c ON c.id = p.successor_id AND p.status <> 'current'
LEFT JOIN village v ON ST_Intersects(v.geom, coalesce(c.geom, p.geom))
WHERE p.category IN ('settlement', 'road') AND (p.status = 'current' OR c.id IS NOT NULL)
"""


def load_gazetteer(conn: sa.Connection, *, county_code: str) -> Gazetteer:
    """The gazetteer of the county's current townships and villages (with former names) and of its settlements and
    roads, from the divisions layer and the place names (EPSG:4490 points)."""
    county = conn.execute(sa.text("SELECT name, short_name FROM admin_divisions WHERE level = 'county' AND "
                                  "valid_to IS NULL AND code = :code"), {"code": county_code.ljust(12, "0")}).first()
    townships, villages, leaves = [], [], []
    for row in conn.execute(sa.text(_GAZETTEER_SQL)):
        place = Place(row.name, row.kind, row.village_code or "", row.township_code or "", row.lon, row.lat,
                      standard=row.standard if row.standard and row.standard != row.name else "")
        {"township": townships, "village": villages}.get(row.kind, leaves).append(place)
    names = tuple(n for n in (county or ()) if n)
    return Gazetteer(county_names=names, townships=townships, villages=villages, leaves=leaves)
