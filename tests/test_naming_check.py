"""The graded naming check: each clash graded same_name, same_sound or similar with the scope it was found in, and
refused only where 《地名管理条例》 (2022) 第九条第一款第（八）项 forbids it; similar names are warnings."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.search import naming

SHIDI = "500241107000"  # 石堤镇
MEIJIANG = "500241112000"  # 梅江镇, a rural township with its own seat


def check(client: TestClient, name: str, **params) -> dict:
    response = client.get("/placenames/check", params={"name": name, **params})
    assert response.status_code == 200, response.text
    return response.json()


def clashes(answer: dict) -> dict[str, dict]:
    return {f["properties"]["name"]: f["properties"] for f in answer["clashes"]["features"]}


def test_meijiang_road_is_clear_with_warnings(client: TestClient) -> None:
    answer = check(client, "梅江路")
    assert answer["kind"] == "road" and answer["specific"] == "梅江" and answer["generic"] == "路"
    assert answer["clear"] is True and answer["refused"] == 0 and answer["warnings"] >= 8
    found = clashes(answer)
    assert found["梅江镇"]["grade"] == "similar" and found["梅江镇"]["refused"] is False  # one character apart
    assert found["梅江大道"]["grade"] == "similar"  # the same specific part
    assert found["梅林路"]["grade"] == "similar"
    assert all(not c["refused"] and "不禁止" in c["rule"] for c in found.values() if c["grade"] == "similar")


@pytest.mark.parametrize("name", ["石堤镇", "梅江镇", "中和街道"])
def test_an_existing_township_name_is_refused_with_its_rule(client: TestClient, name: str) -> None:
    answer = check(client, name)
    assert answer["kind"] == "township" and answer["clear"] is False
    first = answer["clashes"]["features"][0]["properties"]
    assert (first["name"], first["grade"], first["refused"]) == (name, "same_name", True)
    assert first["scope"] == "same_county" and first["existing_kind"] == "township"
    assert "第九条第一款第（八）项" in first["rule"] and "乡、镇名称不应重名" in first["rule"]
    assert answer["rule"] == first["rule"]


def test_the_same_sound_is_refused_among_township_names(client: TestClient) -> None:
    answer = check(client, "时堤镇")
    first = answer["clashes"]["features"][0]["properties"]
    assert (first["name"], first["grade"], first["refused"]) == ("石堤镇", "same_sound", True)
    assert answer["clear"] is False


def test_a_village_name_is_refused_anywhere_in_the_county_and_scoped(client: TestClient, conn: sa.Connection) -> None:
    village, township = conn.execute(sa.text(
        "SELECT name, parent_code FROM admin_divisions WHERE level = 'village' AND valid_to IS NULL AND kind = '村' "
        "AND parent_code <> :t AND name NOT IN (SELECT name FROM admin_divisions WHERE parent_code = :t) "
        "ORDER BY code LIMIT 1"), {"t": SHIDI}).one()
    here = check(client, village, division=township)
    there = check(client, village, division=SHIDI)
    assert clashes(here)[village]["scope"] == "same_township" and clashes(here)[village]["refused"] is True
    # 2022: the scope of village names is the county (1986: the township)
    assert clashes(there)[village]["scope"] in ("neighbouring_township", "same_county")
    assert clashes(there)[village]["refused"] is True
    assert "县级行政区域内的村民委员会" in clashes(there)[village]["rule"]


def test_a_road_name_is_refused_only_in_the_same_built_up_area(client: TestClient) -> None:
    seat = check(client, "梅林路")  # a street of the county seat; no division: taken to be for the county seat
    assert seat["clear"] is False and seat["built_up_area"] == "county_seat" and seat["assumptions"]
    assert clashes(seat)["梅林路"]["refused"] is True and "建成区内的街路巷名称" in clashes(seat)["梅林路"]["rule"]
    elsewhere = check(client, "梅林路", division=MEIJIANG)  # the same name in 梅江镇's own seat
    assert elsewhere["clear"] is True and elsewhere["built_up_area"] == "500241112"
    assert clashes(elsewhere)["梅林路"]["grade"] == "same_name"
    assert clashes(elsewhere)["梅林路"]["ruling"] == "outside_scope"


def test_a_name_of_another_kind_or_a_historical_name_is_a_warning(client: TestClient) -> None:
    as_road = check(client, "石堤镇", kind="road")
    assert as_road["clear"] is True and clashes(as_road)["石堤镇"]["ruling"] == "other_kind"
    former = check(client, "涌洞乡")  # became 涌洞镇 in 2021
    assert former["clear"] is True and clashes(former)["涌洞乡"]["ruling"] == "historical"


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"name": "梅江路", "kind": "bridge"}, 400, "kind"),
    ({"name": "meijianglu"}, 400, "Chinese characters"),
    ({"name": "梅江路", "division": "500241999000"}, 404, "not the code of any"),
])
def test_bad_checks_are_explained(client: TestClient, params: dict, status: int, words: str) -> None:
    response = client.get("/placenames/check", params=params)
    assert response.status_code == status
    assert words in response.json()["description"]


@pytest.mark.parametrize(("name", "kind", "specific"), [
    ("梅江路", "road", "梅江"), ("梅江大道", "road", "梅江"), ("石堤镇", "township", "石堤"),
    ("清溪场街道", "township", "清溪场"), ("高桥村", "village", "高桥"), ("东风社区", "village", "东风"),
    ("梅江家园", "residential", "梅江"), ("梅江河", "other", "梅江"), ("凤凰", "other", "凤凰"),
])
def test_the_generic_part_tells_the_kind(name: str, kind: str, specific: str) -> None:
    assert naming.kind_of(name)[0] == kind
    assert naming.specific_part(name) == specific
