"""A catalogue of bad inputs (issue #7): each one is refused with a 4xx, never a 5xx, with a message that says
what was wrong in a user's words, and the database is left exactly as it was.

Requests go through the HTTP API; files go through :func:`gis_service.io.layers_io.import_into` and the command
line (there is no HTTP import). A few inputs that look hostile but are only text (SQL in a name or a search, emoji
in a name) are answered normally and stored exactly; they are at the end.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gis_service.auth import create_token, revoke_token
from gis_service.cli import app as cli_app
from gis_service.errors import GisServiceError
from gis_service.io.layers_io import import_into
from gis_service.settings import Settings

from .helpers import GEOJSON, NEAR_SEAT, bearer, fingerprint, station

ELDER_CARE = "/collections/elder_care/items"
TILE = "/collections/roads/tiles/WebMercatorQuad"


@dataclass
class Api:
    """What a case needs to send its request: the client, the test's connection and a token per role."""

    client: TestClient
    conn: sa.Connection
    tokens: dict[str, str]

    def write(self, method: str, url: str, *, role: str = "planner", headers: dict | None = None,
              **kwargs) -> httpx.Response:
        return self.client.request(method, url, headers=bearer(self.tokens[role], **(headers or {})), **kwargs)

    def create(self, feature: dict, *, layer: str = "elder_care", role: str = "planner", **kwargs) -> httpx.Response:
        return self.write("POST", f"/collections/{layer}/items", role=role, json=feature, **kwargs)

    def existing(self, table: str = "elder_care") -> tuple[str, str]:
        """URL and current ETag of the layer's first feature."""
        fid, version = self.conn.execute(sa.text(f"SELECT id, version FROM {table} ORDER BY id LIMIT 1")).one()
        return f"/collections/{table}/items/{fid}", f'"{table}.{fid}.v{version}"'


@dataclass(frozen=True)
class Refused:
    send: Callable[[Api], httpx.Response]
    status: int
    words: str


REQUESTS: dict[str, Refused] = {}


def refused(status: int, words: str):
    """Register a bad request: it must be answered with ``status`` and a description containing ``words``."""
    def register(send: Callable[[Api], httpx.Response]) -> Callable[[Api], httpx.Response]:
        REQUESTS[send.__name__] = Refused(send, status, words)
        return send
    return register


def with_geometry(geometry: dict) -> dict:
    return {**station(), "geometry": geometry}


def with_properties(**changes) -> dict:
    feature = station()
    return {**feature, "properties": {**feature["properties"], **changes}}


# -- bodies ----------------------------------------------------------------------------------------------------

@refused(400, "the body is not valid JSON")
def malformed_json(api: Api) -> httpx.Response:
    return api.write("POST", ELDER_CARE, content=b'{"type": "Feature", "geometry": ')


@refused(415, "send the feature as application/geo+json")
def wrong_content_type(api: Api) -> httpx.Response:
    return api.write("POST", ELDER_CARE, content=json.dumps(station()).encode(),
                     headers={"Content-Type": "text/plain"})


@refused(400, "must be a GeoJSON Feature")
def feature_collection_instead_of_feature(api: Api) -> httpx.Response:
    return api.create({"type": "FeatureCollection", "features": [station()]})


@refused(413, "at most 5,242,880 are accepted")
def oversize_body(api: Api) -> httpx.Response:
    return api.create(with_properties(data_source="x" * (6 * 1024 * 1024)))


# -- geometry --------------------------------------------------------------------------------------------------

@refused(422, "is a LineString; elder_care holds Point geometries")
def wrong_geometry_type(api: Api) -> httpx.Response:
    return api.create(with_geometry({"type": "LineString", "coordinates": [NEAR_SEAT, [108.995, 28.45]]}))


def _division_with(ring: list) -> dict:
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"code": "500241001901", "name": "测试村", "level": "village", "kind": "村",
                           "parent_code": "500241001000"}}


@refused(422, "is not valid: Self-intersection")
def self_intersecting_polygon(api: Api) -> httpx.Response:
    bow_tie = [[108.99, 28.44], [109.00, 28.45], [109.00, 28.44], [108.99, 28.45], [108.99, 28.44]]
    return api.create(_division_with(bow_tie), layer="admin_divisions", role="admin")


@refused(400, "the last equal to the first")
def unclosed_ring(api: Api) -> httpx.Response:
    open_ring = [[108.99, 28.44], [109.00, 28.44], [109.00, 28.45], [108.99, 28.45]]
    return api.create(_division_with(open_ring), layer="admin_divisions", role="admin")


@refused(400, "contains NaN, which is not a JSON number")
def nan_coordinate(api: Api) -> httpx.Response:
    body = json.dumps(station()).replace(str(NEAR_SEAT[1]), "NaN")
    return api.write("POST", ELDER_CARE, content=body.encode())


@refused(422, "has NaN or infinite coordinates")
def infinite_coordinate(api: Api) -> httpx.Response:
    body = json.dumps(station()).replace(str(NEAR_SEAT[1]), "1e999")  # valid JSON, read as infinity
    return api.write("POST", ELDER_CARE, content=body.encode())


@refused(422, "lies outside the county (first vertex at 116.400000, 39.900000")
def coordinates_outside_the_county(api: Api) -> httpx.Response:
    return api.create(with_geometry({"type": "Point", "coordinates": [116.4, 39.9]}))


@refused(422, "would lie inside with longitude and latitude swapped")
def longitude_and_latitude_swapped(api: Api) -> httpx.Response:
    return api.create(with_geometry({"type": "Point", "coordinates": NEAR_SEAT[::-1]}))


@refused(422, "has 3-D coordinates (x, y, z); this layer stores 2-D")
def three_d_coordinates(api: Api) -> httpx.Response:
    return api.create(with_geometry({"type": "Point", "coordinates": [*NEAR_SEAT, 300.0]}))


@refused(422, "vertices; the limit is 100,000 per geometry")
def too_many_vertices(api: Api) -> httpx.Response:
    line = [[108.99 + i * 1e-7, 28.449] for i in range(100_001)]
    road = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": line},
            "properties": {"name": "测试路", "road_class": "village"}}
    return api.create(road, layer="roads", role="placename")


@refused(400, "Content-Crs 'EPSG:99999' is not supported")
def unknown_content_crs(api: Api) -> httpx.Response:
    return api.create(station(), headers={"Content-Crs": "EPSG:99999"})


@refused(422, "check the coordinate reference system (--crs of an import, the Content-Crs header of a request)")
def content_crs_whose_coordinates_are_out_of_range(api: Api) -> httpx.Response:
    # lon/lat sent as Web Mercator metres: a point a hundred metres off Null Island
    return api.create(station(), headers={"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/3857>"})


# -- properties ------------------------------------------------------------------------------------------------

@refused(422, "name: contains control characters")
def control_characters_in_a_name(api: Api) -> httpx.Response:
    return api.create(with_properties(name="养老\x07服务站\x1b[2J"))


@refused(422, "name: is 10000 characters long; at most 100 are allowed")
def ten_thousand_character_name(api: Api) -> httpx.Response:
    return api.create(with_properties(name="养" * 10_000))


@refused(422, "kind: 'spaceport' is not one of: welfare_institution")
def unknown_enum_value_in_a_feature(api: Api) -> httpx.Response:
    return api.create(with_properties(kind="spaceport"))


@refused(422, "division_code: '50024100100' does not have the form ^[0-9]{12}$")
def malformed_division_code(api: Api) -> httpx.Response:
    return api.create(with_properties(division_code="50024100100"))


@refused(422, "division_code: 500241999999 is not the code of a current administrative division")
def reference_to_an_unknown_division(api: Api) -> httpx.Response:
    return api.create(with_properties(division_code="500241999999"))


@refused(422, "beds: 10000000000 is above the maximum")
def integer_beyond_the_column(api: Api) -> httpx.Response:
    return api.create(with_properties(beds=10**10))


@refused(422, "former_names: contains control characters")
def control_characters_in_a_list_of_names(api: Api) -> httpx.Response:
    road = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [NEAR_SEAT, [108.995, 28.45]]},
            "properties": {"name": "测试路", "road_class": "village", "former_names": ["旧\x00路"]}}
    return api.create(road, layer="roads", role="placename")


@refused(422, "colour: unknown field")
def unknown_property(api: Api) -> httpx.Response:
    return api.create(with_properties(colour="red"))


@refused(422, "is already in boundary_markers")
def duplicate_marker_number(api: Api) -> httpx.Response:
    url, _ = api.existing("boundary_markers")
    marker = api.client.get(url).json()
    marker["properties"] = {k: v for k, v in marker["properties"].items() if k != "last_inspected"}
    return api.create({"type": "Feature", "geometry": marker["geometry"], "properties": marker["properties"]},
                      layer="boundary_markers", role="inspector")


@refused(422, "code: 500241001001 is already in admin_divisions")
def duplicate_division_code(api: Api) -> httpx.Response:
    division = _division_with([[108.99, 28.44], [109.00, 28.44], [109.00, 28.45], [108.99, 28.45], [108.99, 28.44]])
    division["properties"]["code"] = "500241001001"
    return api.create(division, layer="admin_divisions", role="admin")


@refused(422, "beds: 'many' is not a whole number")
def patch_setting_a_field_to_the_wrong_type(api: Api) -> httpx.Response:
    url, etag = api.existing()
    return api.write("PATCH", url, json={"type": "Feature", "properties": {"beds": "many"}},
                     headers={"If-Match": etag})


@refused(400, "inspected_on must be a date written YYYY-MM-DD")
def inspection_on_an_impossible_date(api: Api) -> httpx.Response:
    url, _ = api.existing("boundary_markers")
    return api.write("POST", url + "/inspections", role="inspector",
                     json={"inspected_on": "2026-02-30", "condition": "intact"})


@refused(400, "inspected_on 2999-01-01 is in the future")
def inspection_in_the_future(api: Api) -> httpx.Response:
    url, _ = api.existing("boundary_markers")
    return api.write("POST", url + "/inspections", role="inspector",
                     json={"inspected_on": "2999-01-01", "condition": "intact"})


@refused(400, "notes contains control characters")
def control_characters_in_inspection_notes(api: Api) -> httpx.Response:
    url, _ = api.existing("boundary_markers")
    return api.write("POST", url + "/inspections", role="inspector",
                     json={"inspected_on": "2026-11-20", "condition": "intact", "notes": "桩体\x00倾斜"})


# -- changes and tokens ----------------------------------------------------------------------------------------

@refused(428, "needs an If-Match header with the ETag")
def change_without_if_match(api: Api) -> httpx.Response:
    url, _ = api.existing()
    return api.write("PATCH", url, json={"type": "Feature", "properties": {"beds": 30}})


@refused(412, "has changed since you read it")
def change_with_an_etag_of_another_version(api: Api) -> httpx.Response:
    url, etag = api.existing()
    other = etag.replace(".v", ".v9")
    return api.write("PATCH", url, json={"type": "Feature", "properties": {"beds": 30}}, headers={"If-Match": other})


@refused(401, "the bearer token has expired")
def expired_token(api: Api) -> httpx.Response:
    token_id, token = create_token(api.conn, role="planner", name="过期", expires_days=1)
    api.conn.execute(sa.text("UPDATE api_tokens SET expires_at = now() - interval '1 minute' WHERE id = :id"),
                     {"id": token_id})
    return api.client.post(ELDER_CARE, json=station(), headers=bearer(token))


@refused(401, "the bearer token has been revoked")
def revoked_token(api: Api) -> httpx.Response:
    token_id, token = create_token(api.conn, role="planner", name="已吊销")
    revoke_token(api.conn, token_id)
    return api.client.post(ELDER_CARE, json=station(), headers=bearer(token))


@refused(403, "role inspector may not change elder_care")
def token_of_the_wrong_role(api: Api) -> httpx.Response:
    return api.create(station(), role="inspector")


@refused(401, "the bearer token is not known")
def unknown_token(api: Api) -> httpx.Response:
    return api.client.post(ELDER_CARE, json=station(), headers=bearer("gis_" + "x" * 43))


@refused(401, "this request needs a bearer token")
def no_token(api: Api) -> httpx.Response:
    return api.client.post(ELDER_CARE, json=station(), headers=GEOJSON)


# -- collections and features ----------------------------------------------------------------------------------

@refused(404, "unknown layer 'graves'; the layers are: admin_divisions")
def unknown_collection(api: Api) -> httpx.Response:
    return api.client.get("/collections/graves/items")


@refused(404, "elder_care has no feature '999999999'")
def unknown_feature_id(api: Api) -> httpx.Response:
    return api.client.get(f"{ELDER_CARE}/999999999")


@refused(404, "elder_care has no feature '99999999999999999999'")
def feature_id_beyond_bigint(api: Api) -> httpx.Response:
    return api.client.get(f"{ELDER_CARE}/99999999999999999999")


@refused(400, "featureId (path): Input should be less than or equal to")
def change_of_a_feature_id_beyond_bigint(api: Api) -> httpx.Response:
    return api.write("PATCH", f"{ELDER_CARE}/99999999999999999999", json={"type": "Feature", "properties": {}},
                     headers={"If-Match": '"x"'})


# -- query parameters ------------------------------------------------------------------------------------------

@refused(400, "the minimum exceeds the maximum (minx > maxx)")
def inverted_bbox(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"bbox": "109.1,28.4,108.9,28.5"})


@refused(400, "bbox must be minx,miny,maxx,maxy (4 numbers, or 6 with heights)")
def bbox_with_three_values(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"bbox": "108.9,28.4,109.1"})


@refused(400, "crs 'EPSG:99999' is not supported; use one of")
def unknown_crs(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"crs": "EPSG:99999"})


@refused(400, "limit must be between 1 and 10000; got -5")
def negative_limit(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"limit": "-5"})


@refused(400, "limit must be between 1 and 10000; got 1000000000000")
def huge_limit(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"limit": str(10**12)})


@refused(400, "offset must be at least 0; got -1")
def negative_offset(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"offset": "-1"})


@refused(400, "offset must be at most 9223372036854775807")
def huge_offset(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"offset": str(10**30)})


@refused(400, "kind must be one of welfare_institution")
def unknown_enum_value_in_a_property_filter(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"kind": "spaceport"})


@refused(400, "datetime must be a date or date-time (RFC 3339)")
def impossible_date_in_datetime(api: Api) -> httpx.Response:
    return api.client.get("/collections/admin_divisions/items", params={"datetime": "2021-13-45"})


@refused(400, "format (query): Input should be 'geojson', 'kml', 'gpx', 'gpkg' or 'shp'")
def unknown_export_format(api: Api) -> httpx.Response:
    return api.client.get("/exports/boundaries", params={"line": "500241-500242", "format": "exe"})


@refused(400, "unknown query parameter 'colour'")
def unknown_query_parameter(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"colour": "red"})


@refused(400, "sortby: elder_care has no property 'colour'")
def sortby_an_unknown_field(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"sortby": "-colour"})


@refused(400, "unknown property 'colour'; the queryables of elder_care are")
def filter_on_an_unknown_property(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"filter": "colour = 'red'"})


@refused(400, "filter could not be parsed as CQL2 text")
def filter_carrying_sql(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"filter": "beds > 0; DROP TABLE elder_care; --"})


@refused(400, "unknown property 'beds) OR 1=1 --'")
def filter_with_sql_as_a_property_name(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"filter": '"beds) OR 1=1 --" = 1'})


@refused(400, "name contains control characters")
def control_characters_in_a_property_filter(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"name": "养老\x00"})


@refused(400, "filter contains control characters")
def control_characters_in_a_filter(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"filter": "name = '养老\x00'"})


@refused(400, "bbox lies outside the area http://www.opengis.net/def/crs/EPSG/0/3857 covers")
def projected_bbox_beyond_the_world(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"bbox": "-1e300,-1e300,1e300,1e300", "bbox-crs": "EPSG:3857"})


@refused(400, "bbox lies outside the area http://www.opengis.net/def/crs/EPSG/0/4545 covers")
def gauss_kruger_bbox_beyond_the_world(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"bbox": "0,0,100000000,100000000", "bbox-crs": "EPSG:4545"})


@refused(400, "lies outside the area http://www.opengis.net/def/crs/EPSG/0/4545 covers")
def filter_geometry_beyond_the_world(api: Api) -> httpx.Response:
    return api.client.get(ELDER_CARE, params={"filter": "S_INTERSECTS(geometry, POINT(100000000 100000000))",
                                              "filter-crs": "EPSG:4545"})


@refused(400, "mode must be one of walk")
def analysis_in_an_unknown_mode(api: Api) -> httpx.Response:
    return api.client.get("/analysis/coverage", params={"mode": "fly"})


@refused(400, "minutes must be more than 0 and at most 120; got nan")
def analysis_for_nan_minutes(api: Api) -> httpx.Response:
    return api.client.get("/analysis/coverage", params={"minutes": "nan"})


@refused(404, "zoom 99 is outside 0..22")
def tile_at_a_huge_zoom(api: Api) -> httpx.Response:
    return api.client.get(f"{TILE}/99/0/0")


@refused(404, "tile 3/8/0 is outside the grid: at zoom 3, x and y run 0..7")
def tile_outside_the_grid(api: Api) -> httpx.Response:
    return api.client.get(f"{TILE}/3/8/0")


@refused(400, "tile coordinates must be whole numbers")
def tile_with_words_for_numbers(api: Api) -> httpx.Response:
    return api.client.get(f"{TILE}/z/x/y")


# -- searches --------------------------------------------------------------------------------------------------

@refused(400, "q contains control characters")
def control_characters_in_a_search(api: Api) -> httpx.Response:
    return api.client.get("/placenames/search", params={"q": "石堤\x00镇"})


@refused(400, "holds no letters, digits or Chinese characters to search for")
def only_emoji_in_a_search(api: Api) -> httpx.Response:
    return api.client.get("/placenames/search", params={"q": "🏔️🌊"})


@refused(400, "q is 10000 characters long; at most 100 are accepted")
def ten_thousand_character_search(api: Api) -> httpx.Response:
    return api.client.get("/placenames/search", params={"q": "shidi" * 2_000})


@refused(400, "unknown category 'temple'")
def search_in_an_unknown_category(api: Api) -> httpx.Response:
    return api.client.get("/placenames/search", params={"q": "石堤", "category": "temple"})


@refused(400, "division must be a 6-, 9- or 12-digit division code")
def search_in_a_malformed_division(api: Api) -> httpx.Response:
    return api.client.get("/placenames/search", params={"q": "石堤", "division": "5002411"})


@refused(400, "longitude must be within -180..180 and latitude within -90..90")
def nan_coordinates_in_a_reverse_look_up(api: Api) -> httpx.Response:
    return api.client.get("/placenames/reverse", params={"lon": "nan", "lat": "nan"})


@refused(400, "place_name_id (path): Input should be less than or equal to 9223372036854775807")
def place_name_id_beyond_bigint(api: Api) -> httpx.Response:
    return api.client.get("/placenames/99999999999999999999")


# -- file names ------------------------------------------------------------------------------------------------

@refused(400, "line must look like 500241-500242")
def export_named_by_a_path(api: Api) -> httpx.Response:
    return api.client.get("/exports/boundaries", params={"line": "../../etc/passwd"})


@refused(404, "no map asset '../../../../etc/passwd'")
def map_asset_outside_its_folder(api: Api) -> httpx.Response:
    return api.client.get("/maps/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd")


@pytest.mark.parametrize("case", list(REQUESTS))
def test_a_bad_request_is_refused_plainly_and_writes_nothing(
        case: str, client: TestClient, conn: sa.Connection, tokens: dict[str, str]) -> None:
    expected = REQUESTS[case]
    before = fingerprint(conn)
    response = expected.send(Api(client, conn, tokens))
    assert response.status_code == expected.status, response.text[:500]
    body = response.json()
    assert set(body) == {"code", "description", "request_id"}
    assert expected.words in body["description"]
    assert fingerprint(conn) == before


# -- files (the command line's import and export) --------------------------------------------------------------

def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _claim_size(path: Path, size: int) -> Path:
    """Make the zip's central directory claim that its (first) member expands to ``size`` bytes, as a zip bomb's
    does: the field is the 4-byte uncompressed size 24 bytes into the central directory entry."""
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")
    data[entry + 24:entry + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))
    return path


@dataclass(frozen=True)
class BadFile:
    make: Callable[[Path], Path]
    layer: str
    crs: str | None
    words: str


FILES: dict[str, BadFile] = {}


def bad_file(words: str, *, layer: str = "elder_care", crs: str | None = None):
    """Register a bad file (made in a folder by the function): importing it into ``layer`` must raise a 4xx
    error whose message contains ``words``."""
    def register(make: Callable[[Path], Path]) -> Callable[[Path], Path]:
        FILES[make.__name__] = BadFile(make, layer, crs, words)
        return make
    return register


@bad_file("evil.zip holds an unsafe path '../evil.shp'")
def zip_member_with_a_parent_path(folder: Path) -> Path:
    return _zip(folder / "evil.zip", {"../evil.shp": b"x", "elder_care.shp": b"x"})


@bad_file("evil.zip holds an unsafe path '/etc/cron.d/evil.shp'")
def zip_member_with_an_absolute_path(folder: Path) -> Path:
    return _zip(folder / "evil.zip", {"/etc/cron.d/evil.shp": b"x"})


@bad_file("bomb.zip expands to more than 1000 files or 2 GiB; refusing to open it")
def zip_bomb_of_many_members(folder: Path) -> Path:
    return _zip(folder / "bomb.zip", {f"part{i}.shp": b"" for i in range(1001)})


@bad_file("bomb.zip expands to more than 1000 files or 2 GiB; refusing to open it")
def zip_bomb_of_one_huge_member(folder: Path) -> Path:
    return _claim_size(_zip(folder / "bomb.zip", {"elder_care.shp": bytes(1000)}), 4_000_000_000)


@bad_file("cannot read corrupt.zip")
def corrupt_shapefile(folder: Path) -> Path:
    header = b"\x00\x00\x27\x0a" + bytes(96)  # a .shp's file code, then nothing that makes sense
    return _zip(folder / "corrupt.zip", {"elder_care.shp": header + b"garbage" * 50,
                                         "elder_care.shx": b"garbage", "elder_care.dbf": b"garbage"})


@bad_file("truncated.zip is not a readable zip file")
def corrupt_zip(folder: Path) -> Path:
    return _write(folder / "truncated.zip", b"PK\x03\x04\x14\x00\x00\x00")


@bad_file("unknown layer '../../etc/passwd'", layer="../../etc/passwd")
def import_into_a_layer_named_by_a_path(folder: Path) -> Path:
    return _write(folder / "empty.geojson", b'{"type": "FeatureCollection", "features": []}')


@bad_file("unknown coordinate reference system 'EPSG:99999'", crs="EPSG:99999")
def import_with_an_unknown_crs(folder: Path) -> Path:
    return _write(folder / "points.csv", "name,lon,lat\n甲,108.99,28.45\n".encode())


@pytest.mark.parametrize("case", list(FILES))
def test_a_bad_file_is_refused_plainly_and_writes_nothing(case: str, conn: sa.Connection, settings: Settings,
                                                          tmp_path: Path) -> None:
    bad = FILES[case]
    before = fingerprint(conn)
    with pytest.raises(GisServiceError) as caught:
        import_into(conn, settings, bad.layer, bad.make(tmp_path), crs=bad.crs)
    assert 400 <= caught.value.status_code < 500
    assert bad.words in str(caught.value)
    assert fingerprint(conn) == before


@pytest.fixture()
def cli(engine: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("GIS_DATABASE_URL", database_url)
    return CliRunner()


def test_the_command_line_refuses_an_export_named_by_a_path(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(cli_app, ["export", "../../etc/passwd", "--out", str(tmp_path / "out.geojson")])
    assert isinstance(result.exception, GisServiceError)
    assert "unknown layer '../../etc/passwd'" in str(result.exception)
    assert not any(tmp_path.iterdir())


def test_the_command_line_refuses_a_zip_that_would_unpack_outside_its_folder(
        cli: CliRunner, conn: sa.Connection, tmp_path: Path) -> None:
    folder = tmp_path / "upload"
    folder.mkdir()
    before = fingerprint(conn)
    result = cli.invoke(cli_app, ["import", "elder_care", str(zip_member_with_a_parent_path(folder))])
    assert isinstance(result.exception, GisServiceError)
    assert "holds an unsafe path '../evil.shp'" in str(result.exception)
    assert not (tmp_path / "evil.shp").exists()
    assert fingerprint(conn) == before


# -- inputs that look hostile but are only text: answered, and stored exactly -----------------------------------

def _place_name(name: str) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": NEAR_SEAT},
            "properties": {"name": name, "category": "natural", "division_code": "500241001001"}}


#: Decided: emoji are not refused in names; they are stored and served exactly, like any other character.
ACCEPTED = {
    "emoji_in_a_facility_name": ("elder_care", "planner", station("养老服务站🏠👵")),
    "emoji_in_a_place_name": ("place_names", "placename", _place_name("凤凰山🏔️")),
    "sql_in_a_facility_name": ("elder_care", "planner", station("x'); DROP TABLE elder_care; --")),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_a_name_with_emoji_or_sql_is_stored_exactly(case: str, client: TestClient, conn: sa.Connection,
                                                     tokens: dict[str, str]) -> None:
    layer, role, feature = ACCEPTED[case]
    name = feature["properties"]["name"]
    created = client.post(f"/collections/{layer}/items", json=feature, headers=bearer(tokens[role]))
    assert created.status_code == 201, created.text
    assert client.get(created.headers["Location"]).json()["properties"]["name"] == name
    assert conn.execute(sa.text(f"SELECT name FROM {layer} WHERE id = :id"),
                        {"id": created.json()["id"]}).scalar_one() == name


def test_sql_in_a_search_is_only_text(client: TestClient, conn: sa.Connection) -> None:
    before = fingerprint(conn)
    found = client.get("/placenames/search", params={"q": "石堤'; DROP TABLE place_names; --"})
    assert found.status_code == 200, found.text
    assert all("DROP" not in f["properties"]["name"] for f in found.json()["features"])
    assert fingerprint(conn) == before
