"""地名查询's "contains" mode (issue 13): every place name holding the typed text, counted and paged by the service,
and downloaded whole. Counts are checked against plain SQL over the demo gazetteer."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.api import pages
from gis_service.search import queries

SHIDI_TOWN = "500241107000"


def contains(client: TestClient, q: str, **params) -> dict:
    response = client.get("/placenames/search", params={"q": q, "mode": "contains", **params})
    assert response.status_code == 200, response.text
    return response.json()


def count_in_sql(conn: sa.Connection, condition: str, **params) -> int:
    return conn.execute(sa.text(f"SELECT count(*) FROM place_names WHERE {condition}"), params).scalar_one()


def every_page(client: TestClient, q: str, **params) -> list[dict]:
    """All matches, fetched 100 at a time with offset."""
    first = contains(client, q, limit=100, **params)
    features = first["features"]
    while len(features) < first["numberMatched"]:
        features += contains(client, q, limit=100, offset=len(features), **params)["features"]
    return features


def test_the_total_is_every_current_name_holding_the_text(client: TestClient, conn: sa.Connection) -> None:
    expected = count_in_sql(conn, "status = 'current' AND name LIKE '%村%'")
    assert expected > queries.MAX_LIMIT  # beyond what the ranked search can answer
    first = contains(client, "村", limit=20)
    assert (first["numberMatched"], first["numberReturned"], first["offset"]) == (expected, 20, 0)
    features = every_page(client, "村")
    names = [f["properties"]["name"] for f in features]
    assert len(names) == expected and len({f["id"] for f in features}) == expected
    assert all("村" in n for n in names) and {f["properties"]["match"] for f in features} == {"contains"}
    assert {f["properties"]["status"] for f in features} == {"current"}


def test_the_whole_name_first_then_names_starting_with_it(client: TestClient, conn: sa.Connection) -> None:
    names = [f["properties"]["name"] for f in every_page(client, "河")]
    starting = [n.startswith("河") for n in names]
    assert starting == sorted(starting, reverse=True), "a name starting with 河 came after one that does not"
    assert any(starting) and not all(starting)  # 河 at the start of some names, inside others
    assert len(names) == count_in_sql(conn, "status = 'current' AND name LIKE '%河%'")
    shidi = [f["properties"]["name"] for f in contains(client, "石堤镇")["features"]]
    assert shidi[0] == "石堤镇"  # the whole name first


def test_pages_do_not_overlap_and_keep_one_order(client: TestClient) -> None:
    whole = [f["id"] for f in contains(client, "河", limit=60)["features"]]
    paged = [f["id"] for offset in (0, 20, 40) for f in contains(client, "河", limit=20, offset=offset)["features"]]
    assert paged == whole and len(whole) == 60


def test_pinyin_finds_names_holding_the_syllables(client: TestClient, conn: sa.Connection) -> None:
    answer = contains(client, "hekou", limit=100)
    expected = count_in_sql(conn, "status = 'current' AND (py_key LIKE '%hekou%' OR name ILIKE '%hekou%')")
    assert answer["numberMatched"] == expected > 0
    assert all("口" in f["properties"]["name"] for f in answer["features"])


def test_filters_apply_to_the_count(client: TestClient, conn: sa.Connection) -> None:
    answer = contains(client, "村", division=SHIDI_TOWN, category="administrative", limit=100)
    expected = count_in_sql(conn, "status = 'current' AND name LIKE '%村%' AND category = 'administrative' "
                            "AND division_code LIKE '500241107%'")
    assert answer["numberMatched"] == expected > 0
    assert {f["properties"]["division_code"][:9] for f in answer["features"]} == {"500241107"}
    historical = contains(client, "乡", status="historical", limit=100)
    assert historical["numberMatched"] == count_in_sql(conn, "status <> 'current' AND name LIKE '%乡%'") > 0
    assert {f["properties"]["status"] for f in historical["features"]} - {"current"} == \
        {f["properties"]["status"] for f in historical["features"]}


def test_like_wildcards_are_taken_literally(client: TestClient) -> None:
    assert contains(client, "石_镇")["numberMatched"] == 0
    assert contains(client, "石%")["numberMatched"] == 0
    assert contains(client, "石堤")["numberMatched"] > 0


@pytest.mark.parametrize(("params", "words"), [
    ({"q": "石堤", "offset": 20}, "mode=contains"),
    ({"q": "石堤", "mode": "contains", "offset": queries.MAX_OFFSET + 1}, "offset"),
    ({"q": "石堤", "mode": "contains", "offset": -1}, "offset"),
    ({"q": "石堤", "mode": "substring"}, "mode"),
    ({"q": "%", "mode": "contains"}, "no letters"),
])
def test_bad_paging_is_400_with_a_plain_message(client: TestClient, params: dict, words: str) -> None:
    answer = client.get("/placenames/search", params=params)
    assert answer.status_code == 400 and words in answer.json()["description"], answer.text


def test_download_holds_every_match(client: TestClient, conn: sa.Connection) -> None:
    answer = client.get("/pages/placenames/export", params={"q": "村", "mode": "contains", "format": "csv"})
    assert answer.status_code == 200, answer.text
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    expected = [f["properties"]["name"] for f in every_page(client, "村")]
    assert [r[0] for r in rows[1:]] == expected and answer.headers["x-total-count"] == str(len(expected))


def test_download_of_too_many_matches_asks_to_narrow(client: TestClient, conn: sa.Connection,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "MAX_EXPORT_ROWS", 50)
    matched = count_in_sql(conn, "status = 'current' AND name LIKE '%村%'")
    answer = client.get("/pages/placenames/export", params={"q": "村", "mode": "contains"})
    assert answer.status_code == 400 and answer.json()["code"] == "LimitExceeded"
    assert f"{matched:,} place names" in answer.json()["description"] and "at most 50" in answer.json()["description"]
