"""The OpenAPI document says what the service does: every error an operation can answer, in the shape it answers
it; no 422 where FastAPI would have sent one (the service answers 400); the bodies the writes read; parameter
bounds and choices equal to the ones the code enforces."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gis_service.analysis.sites import MAX_CANDIDATES, MAX_K
from gis_service.analysis.travel import FACILITY_LAYERS, MAX_MINUTES, MODES
from gis_service.app import create_app
from gis_service.layers import LAYERS
from gis_service.ogc.crs import crs_names
from gis_service.ogc.openapi import to_openapi_30
from gis_service.ogc.params import MAX_LIMIT
from gis_service.search import queries
from gis_service.settings import Settings

WRITES = ("post", "put", "patch", "delete")
#: Posted, but writing nothing: a what-if analysis whose body is too long for a query string.
POSTED_READS = {("post", "/analysis/scenario")}
#: The writes that change an existing feature, and so need its ETag.
ETAG_WRITES = [("put", "/collections/{collectionId}/items/{featureId}"),
               ("patch", "/collections/{collectionId}/items/{featureId}"),
               ("delete", "/collections/{collectionId}/items/{featureId}")]
#: The only operations that answer 422: a feature that breaks the layer's rules.
SENDS_422 = [("post", "/collections/{collectionId}/items"), *ETAG_WRITES[:2]]


def document(**settings) -> dict:
    return create_app(Settings(_env_file=None, warm_up=False, **settings)).openapi()


def operations(doc: dict):
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def test_every_error_is_documented_with_the_shape_the_service_answers() -> None:
    doc = document()
    assert set(doc["components"]["schemas"]["Exception"]["required"]) == {"code", "description", "request_id"}
    for method, path, operation in operations(doc):
        # a path segment that is any text can only name nothing (404); anything else can be malformed (400)
        takes_input = bool(operation.get("requestBody")) or any(
            p["in"] != "path" or p["schema"].get("type") != "string" for p in operation.get("parameters", []))
        statuses = set(operation["responses"])
        assert ("400" in statuses) == takes_input, (method, path, statuses)
        if "{" in path:
            assert "404" in statuses, (method, path)
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Exception"}, (method, path, status)


def test_writes_document_tokens_roles_rate_limits_and_preconditions() -> None:
    doc = document()
    writes = [(m, p, op) for m, p, op in operations(doc) if m in WRITES and (m, p) not in POSTED_READS]
    assert len(writes) == 5
    for method, path, operation in writes:
        assert operation["security"] == [{"bearer": []}], (method, path)
        assert {"401", "403", "429", "503"} <= set(operation["responses"]), (method, path)
        etag = (method, path) in ETAG_WRITES
        assert ("412" in operation["responses"]) == etag and ("428" in operation["responses"]) == etag
        if etag:
            if_match = next(p for p in operation["parameters"] if p["name"] == "If-Match")
            assert if_match["in"] == "header" and if_match["required"] is True
    assert doc["components"]["securitySchemes"]["bearer"] == {
        **doc["components"]["securitySchemes"]["bearer"], "type": "http", "scheme": "bearer"}


#: The reads that name the bureau's staff, or keep copies of deleted features: a token of any role.
TOKEN_READS = {"/collections/{collectionId}/items/{featureId}/history",
               "/collections/boundary_markers/items/{featureId}/inspections", "/placenames/{place_name_id}/changes"}


def test_reads_that_name_staff_document_their_token_and_no_other_read_does() -> None:
    doc = document()
    reads = {p: op for m, p, op in operations(doc) if m == "get"}
    assert {p for p, op in reads.items() if "security" in op} == TOKEN_READS
    for path in TOKEN_READS:
        assert reads[path]["security"] == [{"bearer": []}]
        challenge = reads[path]["responses"]["401"]["headers"]["WWW-Authenticate"]
        assert challenge["schema"]["pattern"] == "^Bearer "
    assert all("401" not in op["responses"] for p, op in reads.items() if p not in TOKEN_READS)


def test_only_writes_of_features_document_422_and_fastapis_validation_error_is_gone() -> None:
    for doc in (document(), to_openapi_30(document())):
        documented = {(m, p) for m, p, op in operations(doc) if "422" in op["responses"]}
        assert documented == set(SENDS_422)
        assert "HTTPValidationError" not in doc["components"]["schemas"]
        assert "ValidationError" not in doc["components"]["schemas"]


def test_a_feature_that_breaks_the_rules_is_the_documented_422(client_with, conn) -> None:
    from gis_service.auth import create_token

    token = create_token(conn, role="admin", name="openapi")[1]
    response = client_with().post(
        "/collections/elder_care/items", headers={"Authorization": f"Bearer {token}"},
        json={"type": "Feature", "geometry": {"type": "Point", "coordinates": [116.4, 39.9]},
              "properties": {"name": "北京的养老院", "kind": "township_home", "operator": "government"}})
    assert response.status_code == 422
    assert set(response.json()) == {"code", "description", "request_id"}
    assert "outside the county" in response.json()["description"]


def test_bodies_read_by_hand_are_described() -> None:
    doc = document()
    create = doc["paths"]["/collections/{collectionId}/items"]["post"]["requestBody"]
    assert create["required"] is True
    assert set(create["content"]) == {"application/geo+json", "application/json"}
    feature = doc["components"]["schemas"]["Feature"]
    assert feature["properties"]["type"]["enum"] == ["Feature"] and set(feature["required"]) == {"type", "geometry"}
    patch = doc["paths"]["/collections/{collectionId}/items/{featureId}"]["patch"]["requestBody"]
    assert patch["content"]["application/geo+json"]["schema"] == {"$ref": "#/components/schemas/FeaturePatch"}
    inspection = doc["paths"]["/collections/boundary_markers/items/{featureId}/inspections"]["post"]["requestBody"]
    assert inspection["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Inspection"}
    assert doc["components"]["schemas"]["Inspection"]["properties"]["condition"]["enum"] == [
        "intact", "damaged", "missing", "displaced"]


def test_answers_are_documented_with_their_media_types() -> None:
    doc = document()
    paths = doc["paths"]
    assert set(paths["/collections/{collectionId}/items"]["get"]["responses"]["200"]["content"]) == {
        "application/geo+json", "text/html"}
    assert list(paths["/api"]["get"]["responses"]["200"]["content"]) == [
        "application/vnd.oai.openapi+json;version=3.0"]
    assert list(paths["/collections/{collectionId}/tiles/WebMercatorQuad/{z}/{x}/{y}"]["get"]["responses"]["200"][
        "content"]) == ["application/vnd.mapbox-vector-tile"]
    assert list(paths["/maps/{name}"]["get"]["responses"]["200"]["content"]) == ["text/html"]
    assert list(paths["/analysis/service-areas"]["get"]["responses"]["200"]["content"]) == ["application/geo+json"]


def _parameter(doc: dict, path: str, name: str, method: str = "get") -> dict:
    return next(p for p in doc["paths"][path][method]["parameters"] if p["name"] == name)["schema"]


def test_parameter_bounds_and_choices_are_the_ones_the_code_enforces() -> None:
    doc = document()
    items = "/collections/{collectionId}/items"
    assert "maximum" not in _parameter(doc, items, "limit")  # capped at MAX_LIMIT rather than refused
    limit = next(p for p in doc["paths"][items]["get"]["parameters"] if p["name"] == "limit")
    assert f"served as {MAX_LIMIT}" in limit["description"]
    assert _parameter(doc, items, "collectionId")["enum"] == list(LAYERS)
    assert _parameter(doc, items, "crs")["enum"] == crs_names(4545)
    assert _parameter(doc, "/analysis/site-suggestions", "k")["maximum"] == MAX_K
    assert _parameter(doc, "/analysis/site-suggestions", "max_candidates")["maximum"] == MAX_CANDIDATES
    assert _parameter(doc, "/analysis/coverage", "minutes")["maximum"] == MAX_MINUTES
    assert _parameter(doc, "/analysis/coverage", "mode")["enum"] == list(MODES)
    assert _parameter(doc, "/analysis/coverage", "layer")["enum"] == list(FACILITY_LAYERS)
    assert _parameter(doc, "/placenames/search", "limit")["maximum"] == queries.MAX_LIMIT
    assert _parameter(doc, "/placenames/autocomplete", "limit")["maximum"] == queries.MAX_AUTOCOMPLETE
    assert _parameter(doc, "/placenames/reverse", "lon")["minimum"] == queries.measure_area(4545)[0]
    # the county's Gauss-Krüger zone decides the CRSs and the area a look-up may name
    other_zone = document(measure_srid=4544)
    assert "EPSG:4544" in _parameter(other_zone, items, "crs")["enum"]
    assert _parameter(other_zone, "/placenames/reverse", "lon")["maximum"] == queries.measure_area(4544)[2]


@pytest.mark.parametrize("name", crs_names(4545))
def test_every_crs_the_document_lists_is_accepted(client: TestClient, name: str) -> None:
    response = client.get("/collections/elder_care/items", params={"crs": name, "bbox-crs": name, "limit": 1})
    assert response.status_code == 200, response.text
    assert client.get("/collections/elder_care/items", params={"crs": ""}).status_code == 400


@pytest.mark.parametrize("value, status", [
    ("name", 200), ("-beds,name", 200), (" name, -beds", 200), ("", 200), ("beds;", 400), ("--beds", 400),
])
def test_sortby_is_read_as_the_document_writes_it(client: TestClient, value: str, status: int) -> None:
    response = client.get("/collections/elder_care/items", params={"sortby": value, "limit": 1})
    assert response.status_code == status, response.text


def test_with_reading_behind_a_token_every_operation_but_health_and_sign_in_says_so() -> None:
    for method, path, operation in operations(document(read_requires_token=True)):
        needs_token = path not in ("/health", "/pages/static/{asset_path}")  # /pages/sign-in is not in it
        assert ("401" in operation["responses"]) == needs_token, (method, path)
        assert bool(operation.get("security")) == needs_token, (method, path)


def test_the_openapi_30_document_carries_the_same_answers() -> None:
    doc = document()
    doc30 = to_openapi_30(doc)
    assert doc30["openapi"] == "3.0.3"
    for method, path, operation in operations(doc):
        assert set(doc30["paths"][path][method]["responses"]) == set(operation["responses"]), (method, path)
    assert doc30["components"]["schemas"]["Exception"] == doc["components"]["schemas"]["Exception"]
    bbox = next(p for p in doc30["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
                if p["name"] == "bbox")
    assert bbox["style"] == "form" and bbox["explode"] is False and bbox["schema"]["type"] == "array"
