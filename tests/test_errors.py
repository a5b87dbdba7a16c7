"""Errors are a contract: every error class lives in gis_service.errors with a stable code that always goes with the
same HTTP status, the API document lists the codes, and the answers carry them."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from fastapi.testclient import TestClient

import gis_service
from gis_service.app import create_app
from gis_service.errors import CODES, HTTP_ERROR_CODE, codes_for
from gis_service.settings import Settings

from .helpers import bearer, station


def _subclasses(base: type) -> set[type]:
    return {sub for direct in base.__subclasses__() for sub in {direct, *_subclasses(direct)}}


def test_every_error_class_of_the_package_lives_in_errors() -> None:
    for module in pkgutil.walk_packages(gis_service.__path__, "gis_service."):
        if ".migrations" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    elsewhere = {f"{cls.__module__}.{cls.__name__}" for cls in _subclasses(Exception)
                 if cls.__module__.startswith("gis_service.") and cls.__module__ != "gis_service.errors"}
    assert elsewhere == set()


def test_the_api_document_lists_every_code_and_each_status_its_codes() -> None:
    doc = create_app(Settings(_env_file=None, warm_up=False)).openapi()
    assert doc["components"]["schemas"]["Exception"]["properties"]["code"]["enum"] == [*CODES, HTTP_ERROR_CODE]
    answers = doc["paths"]["/collections/{collectionId}/items/{featureId}"]["put"]["responses"]
    for status in ("404", "412", "422", "428", "429"):
        assert all(f"`{code}`" in answers[status]["description"] for code in codes_for(int(status))), status
    assert "`NotFound`" in answers["404"]["description"] and "`FeatureRejected`" in answers["422"]["description"]


@pytest.mark.parametrize("code, status", [
    ("InvalidParameterValue", 400), ("NotFound", 404), ("PreconditionFailed", 412), ("FeatureRejected", 422),
    ("PreconditionRequired", 428), ("TooManyRequests", 429), ("QueryTimeout", 503), ("Busy", 503),
])
def test_a_code_always_goes_with_one_status(code: str, status: int) -> None:
    assert CODES[code] == status


def test_answers_carry_the_code_of_their_meaning(client: TestClient, tokens: dict) -> None:
    planner = tokens["planner"]
    assert client.get("/collections/nowhere").json()["code"] == "NotFound"
    assert client.get("/collections/elder_care/items", params={"limit": "x"}).json()["code"] == "InvalidParameterValue"
    created = client.post("/collections/elder_care/items", json=station(), headers=bearer(planner))
    url = created.headers["Location"]
    patch = {"type": "Feature", "properties": {"beds": 30}}
    assert client.patch(url, json=patch, headers=bearer(planner)).json()["code"] == "PreconditionRequired"
    stale = client.patch(url, json=patch, headers=bearer(planner, **{"If-Match": '"elder_care.1.v99"'}))
    assert stale.json()["code"] == "PreconditionFailed"
    outside = {**station(), "geometry": {"type": "Point", "coordinates": [116.4, 39.9]}}
    assert client.post("/collections/elder_care/items", json=outside, headers=bearer(planner)).json()[
        "code"] == "FeatureRejected"
    assert client.post("/collections/roads/items", json=station(), headers=bearer(planner)).json()[
        "code"] == "Forbidden"
    assert client.post("/collections/elder_care/items", json=station()).json()["code"] == "AuthenticationRequired"
