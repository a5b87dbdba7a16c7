"""Analyses on the demo county: checked against independent recomputations, pgRouting and plain SQL."""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from scipy.sparse.csgraph import dijkstra

from gis_service.analysis import network as net
from gis_service.analysis.coverage import compute_served, coverage
from gis_service.analysis.facility_area import facility_area
from gis_service.analysis.graph import road_csr
from gis_service.analysis.indicators import indicators
from gis_service.analysis.service_areas import served_area, service_areas
from gis_service.analysis.sites import site_suggestions
from gis_service.analysis.travel import AnalysisSettings, make_travel

from .harness.networkx_baseline import networkx_costs

SETTINGS = AnalysisSettings(_env_file=None)


def _geoms(conn: sa.Connection, sql: str) -> tuple[list, np.ndarray]:
    rows = conn.execute(sa.text(sql)).all()
    return [r[0] for r in rows], shapely.from_wkb([bytes(r[-1]) for r in rows])


def independent_served_share(conn: sa.Connection, limit_m: float) -> tuple[float, set[int]]:
    """Served households ÷ households, recomputed without the service's network: roads read back from the layer
    in EPSG:4545, every settlement and facility joined at the nearest point of the nearest road, each road split
    at those points, NetworkX multi-source Dijkstra from the facilities with a cutoff of ``limit_m``."""
    _, roads = _geoms(conn, "SELECT id, ST_AsBinary(ST_Transform(geom, 4545)) FROM roads ORDER BY id")
    settlement_ids, settlements = _geoms(conn, "SELECT id, ST_AsBinary(ST_Transform(geom, 4545)) FROM settlements "
                                               "ORDER BY id")
    households = dict(conn.execute(sa.text("SELECT id, households FROM settlements")).all())
    _, facilities = _geoms(conn, "SELECT id, ST_AsBinary(ST_Transform(geom, 4545)) FROM elder_care "
                                 "WHERE status = 'existing' ORDER BY id")
    tree = shapely.STRtree(roads)
    graph = nx.Graph()
    on_road: dict[int, list[tuple[float, object]]] = {}

    def node(point) -> tuple[float, float]:
        return (round(point.x, 3), round(point.y, 3))

    for label, points in (("s", settlements), ("f", facilities)):
        for i, point in enumerate(points):
            road = int(tree.nearest(point))
            along = roads[road].project(point)
            foot = roads[road].interpolate(along)
            key = (label, i)
            graph.add_edge(key, ("foot", label, i), weight=point.distance(foot))
            on_road.setdefault(road, []).append((along, ("foot", label, i)))
    for r, line in enumerate(roads):
        stops = [(0.0, node(shapely.Point(line.coords[0]))), (line.length, node(shapely.Point(line.coords[-1])))]
        stops += on_road.get(r, [])
        stops.sort(key=lambda s: s[0])
        for (a, u), (b, v) in zip(stops, stops[1:]):
            if u != v:
                graph.add_edge(u, v, weight=b - a)
    sources = [("f", i) for i in range(len(facilities))]
    reach = nx.multi_source_dijkstra_path_length(graph, sources, cutoff=limit_m + 1e-3)
    served = {settlement_ids[i] for i in range(len(settlements)) if ("s", i) in reach}
    total = sum(households.values())
    return sum(households[s] for s in served) / total, served


def test_county_coverage_agrees_with_an_independent_recomputation(conn: sa.Connection) -> None:
    answer = coverage(conn, group_by="county", settings=SETTINGS, use_cache=False)
    assert (answer["mode"], answer["minutes"], answer["speed_kmh"], answer["limit_m"]) == ("walk", 15, 4.8, 1200)
    share, served = independent_served_share(conn, answer["limit_m"])
    assert answer["totals"]["coverage_rate"] == pytest.approx(share, abs=0.01)
    ours = set(conn.execute(sa.text("SELECT id FROM settlements")).scalars()) - {r["id"] for r in answer["unserved"]}
    assert len(ours ^ served) <= 0.01 * len(ours | served)


def test_the_network_is_built_with_pgrouting_from_every_road(conn: sa.Connection) -> None:
    network = net.ensure_network(conn, measure_srid=4545, settings=SETTINGS)
    roads, mismatched = conn.execute(sa.text(
        "SELECT count(*), count(*) FILTER (WHERE abs(e.length_m - r.length_m) > 0.05) "
        "FROM roads r JOIN network_edges e ON e.road_id = r.id")).one()
    assert roads == conn.execute(sa.text("SELECT count(*) FROM roads")).scalar() == network.graph.n_edges
    assert mismatched == 0
    assert network.state["components"] == 1  # the demo county is one connected network
    assert conn.execute(sa.text("SELECT count(*) FROM network_edges WHERE source IS NULL OR target IS NULL")
                        ).scalar() == 0


#: Nodes and edges that differ from pgRouting's own vertices (pgr_extractVertices over the built edges: id, point,
#: edges out and in) and components (pgr_connectedComponents), and how many components the build recorded.
PGROUTING_DIFFERENCES_SQL = """
WITH v AS MATERIALIZED (
    SELECT id, in_edges, out_edges, geom FROM pgr_extractVertices('SELECT id, geom FROM network_edges ORDER BY id')),
outs AS (SELECT id AS vid, unnest(out_edges) AS eid FROM v),
ins AS (SELECT id AS vid, unnest(in_edges) AS eid FROM v),
c AS (SELECT node, component FROM pgr_connectedComponents(
    'SELECT id, source, target, length_m AS cost, length_m AS reverse_cost FROM network_edges'))
SELECT
    (SELECT count(*) FROM v FULL JOIN network_nodes n USING (id) LEFT JOIN c ON c.node = n.id
     WHERE v.id IS NULL OR n.id IS NULL OR NOT ST_Equals(v.geom, n.geom) OR ST_SRID(v.geom) <> ST_SRID(n.geom)
        OR c.component IS DISTINCT FROM n.component) AS nodes,
    (SELECT count(*) FROM network_edges e LEFT JOIN outs ON outs.eid = e.id LEFT JOIN ins ON ins.eid = e.id
     WHERE e.source IS DISTINCT FROM outs.vid OR e.target IS DISTINCT FROM ins.vid) AS edges,
    (SELECT count(DISTINCT component) FROM c) AS components
"""


@pytest.mark.parametrize(("roads_removed", "nodes", "components"), [
    (None, 14_394, 1),
    ("is_bridge", 14_389, 5),  # the river splits the county without its bridges
])
def test_the_network_has_pgrouting_s_own_vertices_and_components(conn: sa.Connection, roads_removed: str | None,
                                                                 nodes: int, components: int) -> None:
    """The build numbers vertices itself (pgr_extractVertices's arrays of edges cost most of the build at 40
    counties) and must give what pgRouting gives: the same vertex ids and points, every edge's source and target,
    the same components."""
    if roads_removed:
        conn.execute(sa.text(f"DELETE FROM roads WHERE {roads_removed}"))
    network = net.ensure_network(conn, measure_srid=4545, settings=SETTINGS)
    different = conn.execute(sa.text(PGROUTING_DIFFERENCES_SQL)).mappings().one()
    assert (different["nodes"], different["edges"]) == (0, 0)
    assert (network.state["nodes"], network.state["components"]) == (nodes, components) == (
        nodes, different["components"])
    assert network.state["edges"] == conn.execute(sa.text("SELECT count(*) FROM roads")).scalar()


def test_shortest_paths_agree_with_pgrouting(conn: sa.Connection) -> None:
    network = net.ensure_network(conn, measure_srid=4545, settings=SETTINGS)
    pairs = conn.execute(sa.text(
        "SELECT a.id, b.id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM network_nodes) a "
        "JOIN (SELECT id, row_number() OVER (ORDER BY id DESC) AS n FROM network_nodes) b USING (n) "
        "WHERE n IN (1, 500, 2000, 7000)")).all()
    graph = network.graph
    csr = road_csr(graph, np.ones(graph.n_edges))
    vid_rows = conn.execute(sa.text("SELECT id, source, target FROM network_edges ORDER BY id")).all()
    index = {}
    for (_, source, target), u, v in zip(vid_rows, graph.source, graph.target):
        index[source], index[target] = int(u), int(v)
    for a, b in pairs:
        expected = conn.execute(sa.text(
            "SELECT agg_cost FROM pgr_dijkstraCost('SELECT id, source, target, length_m AS cost, "
            "length_m AS reverse_cost FROM network_edges', CAST(:a AS bigint), CAST(:b AS bigint), false)"),
            {"a": a, "b": b}).scalar()
        ours = dijkstra(csr, indices=index[a])[index[b]]
        assert ours == pytest.approx(expected, abs=0.01)


def test_the_scipy_and_networkx_engines_serve_the_same_settlements(conn: sa.Connection) -> None:
    network = net.ensure_network(conn, measure_srid=4545, settings=SETTINGS)
    travel = make_travel(SETTINGS, mode="walk", minutes=15)
    ours = compute_served(conn, network, travel, layer="elder_care", kind=None, method="network")
    theirs = compute_served(conn, network, travel, layer="elder_care", kind=None, method="network",
                            path_costs=networkx_costs)
    assert np.array_equal(ours.served, theirs.served)
    assert np.allclose(ours.minutes[ours.served], theirs.minutes[ours.served])


def test_network_coverage_is_below_the_circle_and_bridges_matter(conn: sa.Connection) -> None:
    network = coverage(conn, group_by="county", settings=SETTINGS, use_cache=False)["totals"]
    circle = coverage(conn, group_by="county", method="euclidean", settings=SETTINGS, use_cache=False)["totals"]
    assert network["served_households"] < circle["served_households"]
    conn.execute(sa.text("DELETE FROM roads WHERE is_bridge"))
    cut = net.ensure_network(conn, measure_srid=4545, settings=SETTINGS)
    assert cut.state["components"] > 1  # the river splits the county without its bridges
    without = coverage(conn, group_by="county", settings=SETTINGS, use_cache=False)["totals"]
    assert without["served_households"] <= network["served_households"]


def test_results_are_cached_until_the_data_changes(conn: sa.Connection) -> None:
    first = coverage(conn, group_by="township", settings=SETTINGS)
    again = coverage(conn, group_by="township", settings=SETTINGS)
    assert again["cached"] and again["totals"] == first["totals"]
    village = conn.execute(sa.text("SELECT village_code, ST_AsText(geom) FROM settlements ORDER BY id LIMIT 1")).one()
    conn.execute(sa.text("INSERT INTO settlements (name, village_code, households, geom) "
                         "VALUES ('新居民点', :v, 1000, ST_GeomFromText(:g, 4490))"),
                 {"v": village[0], "g": village[1]})
    changed = coverage(conn, group_by="township", settings=SETTINGS)
    assert not changed["cached"]
    assert changed["totals"]["households"] == first["totals"]["households"] + 1000
    before = conn.execute(sa.text("SELECT roads_version FROM network_state")).scalar()
    conn.execute(sa.text("DELETE FROM roads WHERE id = (SELECT max(id) FROM roads WHERE NOT is_bridge)"))
    rebuilt = coverage(conn, group_by="township", settings=SETTINGS)
    assert not rebuilt["cached"]
    after, current = conn.execute(sa.text(
        "SELECT roads_version, (SELECT version FROM data_versions WHERE table_name = 'roads') FROM network_state"
    )).one()
    assert after == current != before


def test_service_areas_give_one_valid_polygon_per_facility_of_a_kind(conn: sa.Connection) -> None:
    answer = service_areas(conn, kind="rural_happiness_home", settings=SETTINGS, use_cache=False)
    count = conn.execute(sa.text("SELECT count(*) FROM elder_care WHERE kind = 'rural_happiness_home' "
                                 "AND status = 'existing'")).scalar()
    assert len(answer["features"]) == count
    for feature in answer["features"]:
        polygon = shapely.geometry.shape(feature["geometry"])
        assert polygon.is_valid and polygon.area > 0
        assert feature["properties"]["reached_road_m"] > 0
        assert feature["properties"]["area_m2"] > 0


def test_the_area_served_by_any_facility_is_the_union_of_their_service_areas(conn: sa.Connection) -> None:
    kind = dict(kind="rural_happiness_home", minutes=10, settings=SETTINGS, use_cache=False)
    each = [shapely.geometry.shape(f["geometry"]) for f in service_areas(conn, **kind)["features"] if f["geometry"]]
    union = shapely.union_all(each)
    served = served_area(conn, **kind)
    area = shapely.geometry.shape(served["geometry"])
    assert served["properties"]["facilities"] == len(each)
    assert area.is_valid
    # the same shape, but for the corners where roads meet: lines merged across many facilities' reaches are grown
    # with rounded joins where one facility's pieces met with flat ends (slivers of 0.01 % each, 0.6 % in all)
    assert shapely.area(shapely.symmetric_difference(area, union)) < 0.01 * union.area
    measured = sum(f["properties"]["area_m2"] for f in service_areas(conn, **kind)["features"])
    assert served["properties"]["area_m2"] < measured  # the facilities' areas overlap; the union counts them once


def test_the_area_served_at_24_minutes_by_bicycle_is_drawn(conn: sa.Connection) -> None:
    """What the coverage map asked with mode=cycle&minutes=24 draws: per facility it is refused as too large."""
    started = time.perf_counter()
    served = served_area(conn, mode="cycle", minutes=24, settings=SETTINGS, use_cache=False)
    assert time.perf_counter() - started < 15
    roads_m = conn.execute(sa.text("SELECT sum(ST_Length(ST_Transform(geom, 4545))) FROM roads")).scalar()
    assert 0.3 * roads_m < served["properties"]["reached_road_m"] <= roads_m
    assert shapely.geometry.shape(served["geometry"]).area > 0


def test_indicators_cover_the_plan_and_match_plain_sql(conn: sa.Connection) -> None:
    answer = indicators(conn, settings=SETTINGS, use_cache=False)
    items = {item["id"]: item for item in answer["indicators"]}
    assert set(items) == {
        "community_floor_area_per_100_households", "volunteer_points_in_centres",
        "townships_with_minor_protection_station", "burial_facility_coverage", "nursing_beds_share",
        "government_operated_beds_share", "townships_with_comprehensive_elder_care",
        "fifteen_minute_elder_care_circle", "rural_villages_with_happiness_home", "township_homes_per_township"}
    for item in items.values():
        assert {"value", "target", "met", "counts"} <= set(item)
        if item["target"] is None:  # the plan sets no figure: nothing is judged
            assert item["met"] is None
            continue
        assert item["met"] == (item["value"] >= item["target"] if item["comparison"] == ">="
                               else item["value"] <= item["target"])
    volunteers = conn.execute(sa.text("SELECT 100.0 * count(*) FILTER (WHERE volunteer_point) / count(*) "
                                      "FROM community_centres WHERE status = 'existing'")).scalar()
    assert items["volunteer_points_in_centres"]["value"] == pytest.approx(float(volunteers), abs=0.01)
    nursing = conn.execute(sa.text(
        "SELECT 100.0 * sum(nursing_beds) / sum(beds) FROM elder_care WHERE status = 'existing' "
        "AND kind IN ('welfare_institution', 'township_home')")).scalar()
    assert items["nursing_beds_share"]["value"] == pytest.approx(float(nursing), abs=0.01)
    assert items["townships_with_minor_protection_station"]["counts"]["townships"] == 27


def test_floor_area_per_100_households_and_the_shortfall(conn: sa.Connection) -> None:
    village = conn.execute(sa.text(
        "SELECT code FROM admin_divisions WHERE level = 'village' AND valid_to IS NULL ORDER BY code LIMIT 1")).scalar()
    conn.execute(sa.text("UPDATE admin_divisions SET households = 1000 WHERE code = :c AND valid_to IS NULL"),
                 {"c": village})
    conn.execute(sa.text("UPDATE community_centres SET floor_area_m2 = 100 WHERE division_code = :c"), {"c": village})
    centres = conn.execute(sa.text("SELECT count(*) FROM community_centres WHERE division_code = :c "
                                   "AND status = 'existing'"), {"c": village}).scalar()
    rows = {r["code"]: r for r in facility_area(conn, level="village")["units"]}
    row = rows[village]
    assert row["floor_area_m2"] == 100 * centres
    assert row["m2_per_100_households"] == pytest.approx(10 * centres)
    assert row["shortfall_m2"] == pytest.approx(max(0, 300 - 100 * centres))
    county = facility_area(conn, level="county")["units"][0]
    area, households = conn.execute(sa.text(
        "SELECT (SELECT sum(floor_area_m2) FROM community_centres WHERE status = 'existing'), "
        "(SELECT households FROM admin_divisions WHERE level = 'county' AND valid_to IS NULL)")).one()
    assert county["m2_per_100_households"] == pytest.approx(float(area) / households * 100, abs=0.001)


def test_a_facility_at_the_first_suggested_site_serves_what_was_promised(conn: sa.Connection) -> None:
    answer = site_suggestions(conn, k=3, settings=SETTINGS, use_cache=False)
    gains = [site["newly_served_households"] for site in answer["sites"]]
    assert len(gains) == 3 and gains == sorted(gains, reverse=True) and gains[0] > 0
    assert answer["newly_served_households"] <= answer["bound"]["upper_bound_households"]
    before = coverage(conn, group_by="county", settings=SETTINGS, use_cache=False)["totals"]["served_households"]
    conn.execute(sa.text(
        "INSERT INTO elder_care (name, kind, operator, geom) SELECT '新建站', 'community_station', 'government', geom "
        "FROM settlements WHERE id = :id"), {"id": answer["sites"][0]["at_settlement_id"]})
    after = coverage(conn, group_by="county", settings=SETTINGS, use_cache=False)["totals"]["served_households"]
    assert after - before == gains[0]


def test_the_api_answers_for_the_demo_county(client: TestClient) -> None:
    coverage_body = client.get("/analysis/coverage", params={"group_by": "township"}).json()
    assert len(coverage_body["units"]) == 27
    assert sum(u["households"] for u in coverage_body["units"]) == coverage_body["totals"]["households"]
    indicators_body = client.get("/analysis/indicators").json()
    assert len(indicators_body["indicators"]) == 10
    area = client.get("/analysis/facility-area", params={"level": "township"}).json()
    assert len(area["units"]) == 27 and area["target_m2_per_100_households"] == 30
    sites = client.get("/analysis/site-suggestions", params={"k": 2}).json()
    assert len(sites["sites"]) == 2 and sites["limit_m"] == 1200


def test_service_areas_too_large_to_draw_are_refused_early_with_a_message(client) -> None:
    started = time.perf_counter()
    answer = client.get("/analysis/service-areas", params={"minutes": 120, "mode": "drive"})
    assert answer.status_code == 400
    assert "too large to draw" in answer.json()["description"]
    assert "/analysis/coverage" in answer.json()["description"]
    assert time.perf_counter() - started < 20  # refused after the first facilities, not after drawing them all
