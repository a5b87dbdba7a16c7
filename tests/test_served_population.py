"""Each kind of facility serves its own people (issue 16, item 1): the registry says whom a kind is planned for,
coverage and site suggestions count those households by default and say so (``served_population``), and a
caller may name another population."""

from __future__ import annotations

import dataclasses
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gis_service.analysis import network as net
from gis_service.analysis.coverage import compute_served, coverage
from gis_service.analysis.sites import site_suggestions
from gis_service.analysis.travel import AnalysisSettings, make_travel
from gis_service.layers import FACILITY_LAYERS, LAYERS
from gis_service.layers.registry import _check
from tests.harness.networkx_baseline import networkx_costs

from .helpers import open_map

SETTINGS = AnalysisSettings(_env_file=None)


def population_totals(conn: sa.Connection, urban_rural: str | None) -> tuple[int, int]:
    """Households and settlements of the settlements whose current village is ``urban_rural`` (None: all)."""
    return tuple(conn.execute(sa.text(
        "SELECT coalesce(sum(s.households), 0), count(*) FROM settlements s "
        "LEFT JOIN admin_divisions v ON v.code = s.village_code AND v.valid_to IS NULL "
        "WHERE CAST(:urban_rural AS text) IS NULL OR v.urban_rural = :urban_rural"),
        {"urban_rural": urban_rural}).one())


@pytest.mark.parametrize("kind, population, urban_rural", [
    ("community_station", "urban_communities", "urban"),
    ("rural_happiness_home", "rural_villages", "rural"),
    ("township_home", "own_township", None),
    (None, "everyone", None),
])
def test_coverage_counts_the_households_the_kind_is_planned_for(conn: sa.Connection, kind: str | None,
                                                                population: str, urban_rural: str | None) -> None:
    answer = coverage(conn, kind=kind, group_by="county", settings=SETTINGS, use_cache=False)
    assert answer["served_population"]["code"] == population
    households, settlements = population_totals(conn, urban_rural)
    assert (answer["totals"]["households"], answer["totals"]["settlements"]) == (households, settlements)


def test_urban_and_rural_households_make_up_the_county(conn: sa.Connection) -> None:
    everyone, _ = population_totals(conn, None)
    urban, _ = population_totals(conn, "urban")
    rural, _ = population_totals(conn, "rural")
    assert 0 < urban < everyone and 0 < rural < everyone and urban + rural == everyone


@pytest.mark.parametrize("kind", ["community_station", "rural_happiness_home"])
def test_each_kinds_coverage_agrees_with_an_independent_path_search(conn: sa.Connection, kind: str) -> None:
    network = net.ensure_network(conn, measure_srid=4545, settings=SETTINGS)
    travel = make_travel(SETTINGS, mode="walk", minutes=15)
    ours = compute_served(conn, network, travel, layer="elder_care", kind=kind, method="network")
    theirs = compute_served(conn, network, travel, layer="elder_care", kind=kind, method="network",
                            path_costs=networkx_costs)
    households = ours.settlements.frame["households"].to_numpy(dtype=float)
    assert abs(households[ours.served].sum() - households[theirs.served].sum()) / households.sum() < 0.01


def test_a_population_asked_for_replaces_the_kinds(conn: sa.Connection, client: TestClient) -> None:
    answer = client.get("/analysis/coverage", params={"kind": "community_station", "group_by": "county",
                                                      "population": "everyone"}).json()
    assert answer["served_population"]["code"] == "everyone"
    assert answer["totals"]["households"] == population_totals(conn, None)[0]
    default = client.get("/analysis/coverage", params={"kind": "community_station", "group_by": "county"}).json()
    assert default["served_population"]["label_zh"] == "城镇社区居民"
    assert default["totals"]["coverage_percent"] != answer["totals"]["coverage_percent"]


def test_an_unknown_population_is_refused(client: TestClient) -> None:
    response = client.get("/analysis/coverage", params={"population": "tourists"})
    assert response.status_code == 400
    assert "population must be one of everyone, urban_communities, rural_villages" in response.json()["description"]


@pytest.mark.parametrize("kind, urban_rural", [("rural_happiness_home", "rural"), ("community_station", "urban")])
def test_site_suggestions_land_among_the_kinds_people(conn: sa.Connection, kind: str, urban_rural: str) -> None:
    answer = site_suggestions(conn, kind=kind, k=10, settings=SETTINGS, use_cache=False)
    assert answer["served_population"]["code"] == {"rural": "rural_villages", "urban": "urban_communities"}[
        urban_rural]
    assert answer["demand"]["households"] == population_totals(conn, urban_rural)[0]
    villages = [site["village_code"] for site in answer["sites"]]
    assert len(villages) == 10
    kinds = dict(conn.execute(sa.text("SELECT code, urban_rural FROM admin_divisions WHERE code = ANY(:codes) "
                                      "AND valid_to IS NULL"), {"codes": villages}).all())
    assert [kinds.get(code) for code in villages] == [urban_rural] * 10


def test_facility_area_says_whose_households_it_counts(client: TestClient) -> None:
    answer = client.get("/analysis/facility-area", params={"level": "county"}).json()
    assert answer["served_population"]["code"] == "everyone"


def test_the_registry_refuses_a_kind_serving_a_population_it_does_not_know() -> None:
    elder_care = FACILITY_LAYERS["elder_care"]
    wrong = dataclasses.replace(elder_care, network=dataclasses.replace(
        elder_care.network, serves=(("community_station", "tourists"),)))
    with pytest.raises(ValueError, match="serves community_station: tourists"):
        _check({**LAYERS, "elder_care": wrong})
    assert [elder_care.network.population(k).code for k in ("welfare_institution", "township_home", None)] == [
        "everyone", "own_township", "everyone"]


def test_the_command_line_says_and_takes_the_population(engine: sa.Engine, database_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from gis_service.cli import app

    monkeypatch.setenv("GIS_DATABASE_URL", database_url)
    default = CliRunner().invoke(app, ["analyse", "coverage", "--kind", "rural_happiness_home", "--group-by",
                                       "county"])
    assert default.exit_code == 0, default.output
    assert "households of rural_villages" in default.output
    everyone = CliRunner().invoke(app, ["analyse", "coverage", "--kind", "rural_happiness_home", "--group-by",
                                        "county", "--population", "everyone"])
    assert everyone.exit_code == 0, everyone.output
    assert "households of everyone" in everyone.output


def test_the_coverage_map_shows_and_counts_only_the_kinds_people(client: TestClient, conn: sa.Connection) -> None:
    page = open_map(client, "/maps/coverage", {"kind": "rural_happiness_home"})
    assert page.status_code == 200, page.text
    assert "计入：农村居民（该类设施的服务对象）" in page.text
    names = {kind: conn.execute(sa.text(
        "SELECT s.name FROM settlements s JOIN admin_divisions v ON v.code = s.village_code AND v.valid_to IS NULL "
        "WHERE v.urban_rural = :kind AND s.name NOT IN (SELECT s2.name FROM settlements s2 JOIN admin_divisions "
        "v2 ON v2.code = s2.village_code AND v2.valid_to IS NULL WHERE v2.urban_rural <> :kind) "
        "ORDER BY s.households DESC LIMIT 1"), {"kind": kind}).scalar() for kind in ("urban", "rural")}
    in_page = {kind: json.dumps(name)[1:-1] for kind, name in names.items()}  # as the page's ASCII JSON holds it
    assert in_page["rural"] in page.text and in_page["urban"] not in page.text
