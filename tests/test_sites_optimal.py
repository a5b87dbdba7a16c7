"""Proven-optimal site suggestions: the solver on hand-made instances whose optimum is known (one where greedy is
provably not optimal), against brute force on small random ones, then on the demo county (checked by building the
suggested facilities and measuring again) and through the API, the command line and the scenario endpoint."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from scipy import sparse
from typer.testing import CliRunner

from gis_service.analysis import optimise
from gis_service.analysis.coverage import coverage
from gis_service.analysis.sites import site_suggestions
from gis_service.analysis.travel import AnalysisSettings

from .helpers import fingerprint

SETTINGS = AnalysisSettings(_env_file=None)


def brute_force(values: np.ndarray, k: int) -> float:
    """The best Σ_i max_{j∈S} V_ij over every set S of k candidates."""
    return max(values[list(chosen)].max(axis=0).sum() for chosen in itertools.combinations(range(len(values)), k))


# -- hand-made instances -----------------------------------------------------------------------------------------

#: Four villages on a line (households 3, 4, 4, 3); candidate A reaches the first two, B the middle two, C the last
#: two. Greedy takes B (8 households), then A or C (+3): 11. A and C together reach all four: 14.
LINE_COVER = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=bool)
LINE_HOUSEHOLDS = np.array([3, 4, 4, 3])


def test_greedy_is_not_optimal_here_and_the_solver_proves_the_optimum() -> None:
    values = optimise.cover_values(LINE_COVER, LINE_HOUSEHOLDS)
    greedy, gains = optimise.greedy_choice(values, 2)
    assert greedy[0] == 1 and sum(gains) == 11
    best = optimise.solve(values, 2, time_limit_s=5)
    assert sorted(best.chosen) == [0, 2] and best.objective == 14
    assert best.optimal and best.optimality_gap == 0 and best.bound == 14
    assert best.gains == [7, 7]  # in greedy order, each one's own households


def test_p_median_where_greedy_puts_the_first_site_in_the_middle() -> None:
    """Hamlets at 0 km (10 households), 5 km (3) and 10 km (10); sites possible at each; time counted up to 12.
    Today every household counts 12: 276. Greedy opens the middle first (saves 176), then one end: 50 remain.
    The ends together leave only the middle hamlet's 3 × 5 = 15."""
    positions, households, cap = np.array([0, 5, 10]), np.array([10, 3, 10]), 12
    cost = np.abs(positions[:, None] - positions[None, :])  # candidates × demand
    savings = np.where(cost < cap, households[None, :] * (cap - cost), 0)
    greedy, gains = optimise.greedy_choice(savings, 2)
    assert greedy == [1, 0] or greedy == [1, 2]
    assert 276 - sum(gains) == 50
    best = optimise.solve(savings, 2, time_limit_s=5)
    assert sorted(best.chosen) == [0, 2] and 276 - best.objective == 15 and best.optimal


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("problem", ["max_cover", "p_median"])
def test_the_solver_matches_brute_force_on_small_random_instances(seed: int, problem: str) -> None:
    rng = np.random.default_rng(seed)
    reach = rng.random((14, 40)) < 0.18
    if problem == "max_cover":
        values = optimise.cover_values(reach, rng.integers(1, 60, size=40)).toarray()
    else:
        values = np.where(reach, rng.random((14, 40)) * 100, 0.0)
    best = optimise.solve(values, 3, time_limit_s=10)
    assert best.optimal
    assert best.objective == pytest.approx(brute_force(values, 3), rel=1e-9)
    assert optimise.evaluate(values, best.chosen) == pytest.approx(best.objective, rel=1e-9)
    greedy, gains = optimise.greedy_choice(values, 3)
    assert sum(gains) <= best.objective + 1e-9


def test_the_reduction_groups_demand_and_drops_dominated_candidates() -> None:
    reach = np.array([
        [1, 1, 1, 0, 0],
        [1, 1, 0, 0, 0],  # inside candidate 0's reach: dropped
        [0, 0, 1, 1, 1],
        [0, 0, 1, 1, 1],  # the same as candidate 2: dropped
        [0, 0, 0, 0, 0],  # reaches nobody: dropped
    ], dtype=bool)
    reduced = optimise.reduce_cover(optimise.cover_values(reach, [5, 7, 1, 2, 3]))
    assert reduced.candidates.tolist() == [0, 2]
    # demand 0 and 1 are reached by candidates 0 and 1 only (one group), demand 3 and 4 by 2 and 3 (one group)
    assert sorted(reduced.weights.tolist()) == [1, 5, 12]


def test_a_short_time_limit_still_answers_no_worse_than_greedy_and_states_the_gap() -> None:
    rng = np.random.default_rng(7)
    reach = sparse.random(3000, 4000, density=0.01, random_state=8, data_rvs=np.ones) > 0
    values = optimise.cover_values(reach, rng.integers(1, 40, size=4000))
    greedy, gains = optimise.greedy_choice(values, 25)
    best = optimise.solve(values, 25, time_limit_s=0.5)
    assert best.objective >= sum(gains)
    assert best.solve_seconds < 5
    assert best.optimal or 0 < best.optimality_gap < 1
    assert best.bound >= best.objective


# -- the demo county -------------------------------------------------------------------------------------------

def _build_at(conn: sa.Connection, site: dict, kind: str) -> None:
    """Build an elder-care facility of ``kind`` where a suggestion puts it (at the settlement itself when the site
    is one)."""
    if site["at_settlement_id"] is not None:
        conn.execute(sa.text("INSERT INTO elder_care (name, kind, operator, geom) SELECT '新建', :kind, "
                             "'government', geom FROM settlements WHERE id = :id"),
                     {"kind": kind, "id": site["at_settlement_id"]})
    else:
        conn.execute(sa.text("INSERT INTO elder_care (name, kind, operator, geom) VALUES ('新建', :kind, "
                             "'government', ST_SetSRID(ST_MakePoint(:lon, :lat), 4490))"),
                     {"kind": kind, "lon": site["lon"], "lat": site["lat"]})


def test_ten_rural_happiness_homes_proven_optimal_and_building_them_serves_what_was_promised(
        conn: sa.Connection) -> None:
    kind = "rural_happiness_home"
    answer = site_suggestions(conn, kind=kind, k=10, settings=SETTINGS, use_cache=False, time_limit_s=30)
    assert answer["method"] == "max_cover" and answer["optimal"] is True and answer["optimality_gap"] == 0
    assert answer["objective"]["households"] == answer["newly_served_households"]
    assert answer["objective"]["upper_bound_households"] == answer["newly_served_households"]
    assert answer["newly_served_households"] >= answer["greedy"]["newly_served_households"]
    assert answer["gain_over_greedy_households"] == (answer["newly_served_households"]
                                                     - answer["greedy"]["newly_served_households"])
    gains = [site["newly_served_households"] for site in answer["sites"]]
    assert len(gains) == 10 and gains == sorted(gains, reverse=True)
    assert sum(gains) == answer["newly_served_households"]
    before = coverage(conn, kind=kind, group_by="county", settings=SETTINGS, use_cache=False)["totals"]
    for site in answer["sites"]:
        _build_at(conn, site, kind)
    after = coverage(conn, kind=kind, group_by="county", settings=SETTINGS, use_cache=False)["totals"]
    assert after["served_households"] - before["served_households"] == answer["newly_served_households"]


def test_p_median_lowers_the_weighted_travel_time_at_least_as_much_as_greedy(conn: sa.Connection) -> None:
    answer = site_suggestions(conn, kind="community_station", k=5, method="p_median", settings=SETTINGS,
                              use_cache=False, time_limit_s=30)
    objective = answer["objective"]
    assert answer["optimal"] is True
    assert objective["after"]["mean_minutes"] < objective["before"]["mean_minutes"] <= 15
    assert objective["after"]["household_weighted_minutes"] <= answer["greedy"]["objective"]["after"][
        "household_weighted_minutes"]
    assert answer["gain_over_greedy_minutes"] >= 0
    assert sum(s["weighted_minutes_saved"] for s in answer["sites"]) == pytest.approx(objective["minutes_saved"],
                                                                                      abs=1)


def test_greedy_answers_as_before_with_its_own_bound(conn: sa.Connection) -> None:
    answer = site_suggestions(conn, k=3, method="greedy", candidates="unserved_settlements", settings=SETTINGS,
                              use_cache=False)
    assert answer["solver"]["name"] == "greedy" and answer["gain_over_greedy_households"] == 0
    assert answer["newly_served_households"] <= answer["bound"]["upper_bound_households"]
    assert all(site["site_source"] == "settlement" for site in answer["sites"])


# -- API, command line ------------------------------------------------------------------------------------------

def test_the_api_takes_method_and_time_limit(client: TestClient) -> None:
    body = client.get("/analysis/site-suggestions", params={"k": 2, "method": "max_cover", "time_limit_s": 20}).json()
    assert body["optimal"] is True and len(body["sites"]) == 2 and body["solver"]["time_limit_s"] <= 20
    assert body["candidate_sites"]["sources"] == ["settlements", "facility_sites"]
    doc = client.get("/openapi.json").json()
    parameters = {p["name"]: p for p in doc["paths"]["/analysis/site-suggestions"]["get"]["parameters"]}
    assert parameters["method"]["schema"]["enum"] == ["max_cover", "p_median", "greedy"]
    assert parameters["time_limit_s"]["schema"]["maximum"] == optimise.MAX_TIME_LIMIT_S


@pytest.mark.parametrize(("params", "words"), [
    ({"method": "simulated_annealing"}, "method must be one of"),
    ({"candidates": "rooftops"}, "candidates must be"),
    ({"time_limit_s": 0}, "time_limit_s"),
    ({"time_limit_s": 600}, "time_limit_s"),
])
def test_bad_site_parameters_are_refused(client: TestClient, params: dict, words: str) -> None:
    response = client.get("/analysis/site-suggestions", params=params)
    assert response.status_code == 400
    assert words in response.json()["description"]


def test_the_command_line_takes_method_and_time_limit(engine: sa.Engine, database_url: str, tmp_path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from gis_service.cli import app

    monkeypatch.setenv("GIS_DATABASE_URL", database_url)
    out = tmp_path / "sites.json"
    result = CliRunner().invoke(app, ["analyse", "site-suggestions", "--k", "2", "--method", "p_median",
                                      "--time-limit-s", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "mean travel time" in result.output
    answer = json.loads(out.read_text(encoding="utf-8"))
    assert answer["method"] == "p_median" and len(answer["sites"]) == 2


# -- scenario ---------------------------------------------------------------------------------------------------

def _unserved_settlement(conn: sa.Connection, client: TestClient) -> dict:
    """The largest settlement no community station serves today."""
    body = client.get("/analysis/coverage", params={"kind": "community_station", "group_by": "county"}).json()
    return body["unserved"][0]


def test_a_scenario_adds_a_station_in_memory_only(client: TestClient, conn: sa.Connection) -> None:
    target = _unserved_settlement(conn, client)
    before_rows = fingerprint(conn)
    response = client.post("/analysis/scenario", json={
        "kind": "community_station", "group_by": "township",
        "facilities": [{"lon": target["lon"], "lat": target["lat"], "name": "拟建站"}]})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["written"] is False and fingerprint(conn) == before_rows
    added = answer["facilities_added"][0]
    assert added["kind"] == "community_station" and added["township_code"] == target["township_code"]
    gain = answer["after"]["served_households"] - answer["before"]["served_households"]
    assert gain == answer["gain"]["served_households"] == added["alone_newly_served_households"] > 0
    assert target["id"] in {s["id"] for s in answer["newly_served"]}
    assert all(s["by_facility_index"] == 0 for s in answer["newly_served"])
    row = next(u for u in answer["units"] if u["code"] == target["township_code"])
    assert row["gain_households"] == gain
    # the same as building it and measuring again
    conn.execute(sa.text("INSERT INTO elder_care (name, kind, operator, geom) SELECT '新建', 'community_station', "
                         "'government', geom FROM settlements WHERE id = :id"), {"id": target["id"]})
    built = client.get("/analysis/coverage", params={"kind": "community_station", "group_by": "county"}).json()
    assert built["totals"]["served_households"] == answer["after"]["served_households"]


@pytest.mark.parametrize(("body", "words"), [
    ({"facilities": [{"lon": 110.5, "lat": 28.4, "kind": "community_station"}]}, "outside the county"),
    ({"facilities": [{"lon": 28.45, "lat": 108.99, "kind": "community_station"}]}, "swapped"),
    ({"facilities": [{"lon": 108.99, "lat": 28.45, "kind": "spaceport"}]}, "kind must be one of"),
    ({"kind": "township_home", "facilities": [{"lon": 108.99, "lat": 28.45, "kind": "community_station"}]},
     "but the scenario measures township_home"),
    ({"facilities": []}, "non-empty list"),
    ({"facilities": [{"lon": 108.99, "lat": 28.45, "kind": "community_station"}] * 101}, "at most 100"),
    ({"facilities": [{"lon": "108.99", "lat": 28.45, "kind": "community_station"}]}, "facilities[0].lon"),
    ({"facilities": [{"lon": 108.99, "lat": 28.45}], "colour": "red"}, "unknown field 'colour'"),
    ({"layer": "community_centres", "facilities": [{"lon": 108.99, "lat": 28.45, "kind": "x"}]}, "has no kinds"),
])
def test_bad_scenarios_are_refused_and_write_nothing(client: TestClient, conn: sa.Connection, body: dict,
                                                      words: str) -> None:
    before = fingerprint(conn)
    response = client.post("/analysis/scenario", json=body)
    assert response.status_code == 400, response.text
    assert words in response.json()["description"]
    assert fingerprint(conn) == before


def test_scenario_bodies_obey_the_body_limits(client_with) -> None:
    small = client_with(max_body_bytes=2048)
    facilities = [{"lon": 108.99, "lat": 28.45, "kind": "community_station", "name": "站" * 60}] * 20
    assert small.post("/analysis/scenario", json={"facilities": facilities}).status_code == 413
    assert small.post("/analysis/scenario", content=b"lon=108.99",
                      headers={"Content-Type": "text/plain"}).status_code == 415


def test_road_junctions_as_candidates_stand_where_the_graph_puts_its_nodes(conn: sa.Connection) -> None:
    from gis_service.analysis import network as net
    from gis_service.analysis.sites import _road_nodes

    graph = net.ensure_network(conn, measure_srid=4545, settings=AnalysisSettings()).graph
    candidates = _road_nodes(graph)
    assert len(candidates.frame) == graph.n_nodes
    assert np.allclose(candidates.frame[["x", "y"]].to_numpy(), graph.node_xy, atol=0.01)
    ends = np.where(candidates.points.frac == 0.0, graph.source[candidates.points.edge],
                    graph.target[candidates.points.edge])
    assert (ends == np.arange(graph.n_nodes)).all()  # each candidate at the end of an edge that is its node
    answer = site_suggestions(conn, kind="community_station", k=2, minutes=10, candidates="road_nodes",
                              time_limit_s=10, use_cache=False)
    assert [s["site_source"] for s in answer["sites"]] == ["road_node", "road_node"]
    assert all(108.3 < s["lon"] < 109.3 and 28.1 < s["lat"] < 28.9 for s in answer["sites"])
