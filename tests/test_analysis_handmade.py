"""Coverage and service areas on small hand-made networks whose answers are known by hand.

Each test empties roads, settlements and facilities inside its own transaction (rolled back afterwards) and draws
a few roads near 108.99 E, 28.45 N (inside Xiushan). Coordinates are written in metres in EPSG:4545 relative to
that point and stored in EPSG:4490, as the layers are. Walking at 4.8 km/h, 15 minutes is 1,200 m.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.analysis import network as net
from gis_service.analysis.coverage import coverage
from gis_service.analysis.service_areas import service_areas
from gis_service.analysis.sites import site_suggestions
from gis_service.analysis.travel import AnalysisSettings

#: 108.99 E, 28.45 N in EPSG:4545 (CGCS2000 / 3-degree Gauss-Krüger CM 108E).
X0, Y0 = 596973.377, 3148711.280
WALK = AnalysisSettings(_env_file=None)


def _wkt_line(points) -> str:
    return "LINESTRING(" + ", ".join(f"{X0 + x:.6f} {Y0 + y:.6f}" for x, y in points) + ")"


def add_road(conn: sa.Connection, *points: tuple[float, float], road_class: str = "village",
             is_bridge: bool = False, name: str = "测试路") -> int:
    return conn.execute(sa.text(
        "INSERT INTO roads (name, road_class, is_bridge, length_m, geom) "
        "SELECT :name, :cls, :bridge, ST_Length(g), ST_Transform(g, 4490) "
        "FROM (SELECT ST_GeomFromText(:wkt, 4545) AS g) s RETURNING id"
    ), {"name": name, "cls": road_class, "bridge": is_bridge, "wkt": _wkt_line(points)}).scalar_one()


def _point(x: float, y: float) -> str:
    return f"POINT({X0 + x:.6f} {Y0 + y:.6f})"


def add_settlement(conn: sa.Connection, x: float, y: float, *, households: int, village_code: str,
                   name: str = "测试居民点") -> int:
    return conn.execute(sa.text(
        "INSERT INTO settlements (name, village_code, households, geom) "
        "VALUES (:name, :village, :households, ST_Transform(ST_GeomFromText(:wkt, 4545), 4490)) RETURNING id"
    ), {"name": name, "village": village_code, "households": households, "wkt": _point(x, y)}).scalar_one()


def add_elder_care(conn: sa.Connection, x: float, y: float, *, kind: str = "community_station",
                   name: str = "测试养老站", status: str = "existing") -> int:
    return conn.execute(sa.text(
        "INSERT INTO elder_care (name, kind, operator, status, geom) "
        "VALUES (:name, :kind, 'government', :status, ST_Transform(ST_GeomFromText(:wkt, 4545), 4490)) "
        "RETURNING id"), {"name": name, "kind": kind, "status": status, "wkt": _point(x, y)}).scalar_one()


def empty_layers(conn: sa.Connection) -> list[str]:
    """Delete the demo roads, settlements and facilities (inside the test's transaction); return two village
    codes of one township to put settlements in."""
    for table in ("elder_care", "community_centres", "cemeteries", "settlements", "roads"):
        conn.execute(sa.text(f"DELETE FROM {table}"))
    return list(conn.execute(sa.text(
        "SELECT code FROM admin_divisions WHERE level = 'village' AND valid_to IS NULL AND parent_code = "
        "(SELECT min(parent_code) FROM admin_divisions WHERE level = 'village' AND valid_to IS NULL) "
        "ORDER BY code LIMIT 2")).scalars())


@pytest.fixture()
def villages(conn: sa.Connection) -> list[str]:
    return empty_layers(conn)


def _unserved(answer: dict) -> dict[int, dict]:
    return {row["id"]: row for row in answer["unserved"]}


def _coverage(conn, **kwargs) -> dict:
    return coverage(conn, settings=WALK, use_cache=False, **{"group_by": "county", **kwargs})


# -- the river without a bridge ----------------------------------------------------------------------------------

def river(conn: sa.Connection, village: str) -> dict[str, int]:
    """Two roads 300 m apart on either bank of a river, running north; a facility on the west bank."""
    add_road(conn, (0, 0), (0, 2000))  # west bank
    add_road(conn, (300, 0), (300, 2000))  # east bank
    return {
        "facility": add_elder_care(conn, -10, 1000),
        "across": add_settlement(conn, 310, 1000, households=40, village_code=village, name="对岸"),
        "same_bank": add_settlement(conn, -10, 1500, households=25, village_code=village, name="同岸"),
    }


def test_a_settlement_across_a_river_without_a_bridge_is_not_served_by_network(conn, villages) -> None:
    ids = river(conn, villages[0])
    answer = _coverage(conn)
    assert (answer["method"], answer["mode"], answer["minutes"], answer["limit_m"]) == ("network", "walk", 15, 1200)
    assert answer["speed_kmh"] == 4.8
    unserved = _unserved(answer)
    assert set(unserved) == {ids["across"]}
    assert unserved[ids["across"]]["distance_m"] is None  # no way across at all
    assert answer["totals"]["households"] == 65
    assert answer["totals"]["served_households"] == 25
    assert answer["totals"]["coverage_rate"] == pytest.approx(25 / 65, abs=1e-6)


def test_the_same_settlement_is_served_by_the_straight_line(conn, villages) -> None:
    river(conn, villages[0])
    answer = _coverage(conn, method="euclidean")
    assert answer["method"] == "euclidean" and answer["limit_m"] == 1200
    assert answer["unserved"] == []
    assert answer["totals"]["served_households"] == 65


def test_a_bridge_far_downstream_gives_the_long_way_round(conn, villages) -> None:
    ids = river(conn, villages[0])
    add_road(conn, (0, 0), (300, 0), is_bridge=True, road_class="township", name="测试桥")
    unserved = _unserved(_coverage(conn))
    # 10 connector + 1000 down + 300 bridge + 1000 up + 10 connector
    assert unserved[ids["across"]]["distance_m"] == pytest.approx(2320, abs=0.01)
    assert unserved[ids["across"]]["nearest_facility_id"] == ids["facility"]
    assert unserved[ids["across"]]["travel_minutes"] == pytest.approx(2320 / 80, abs=0.01)


# -- partial edges and the limit ---------------------------------------------------------------------------------

def straight_road(conn: sa.Connection, village: str) -> dict[str, int]:
    """Two 1,000 m edges end to end (the second drawn east to west); a facility 20 m off the first, 100 m from
    its start."""
    add_road(conn, (0, 0), (1000, 0))
    add_road(conn, (2000, 0), (1000, 0))
    return {
        "facility": add_elder_care(conn, 100, -20),
        # 20 + (1270 - 100) + 10 = 1,200 m: exactly at the limit
        "at_limit": add_settlement(conn, 1270, 10, households=7, village_code=village, name="界上"),
        # 20 + 1172 + 10 = 1,202 m: just beyond
        "beyond": add_settlement(conn, 1272, 10, households=9, village_code=village, name="界外"),
    }


def test_a_settlement_exactly_at_the_limit_is_served_and_one_2_m_further_is_not(conn, villages) -> None:
    ids = straight_road(conn, villages[0])
    unserved = _unserved(_coverage(conn))
    assert set(unserved) == {ids["beyond"]}
    assert unserved[ids["beyond"]]["distance_m"] == pytest.approx(1202, abs=0.01)


def test_the_service_area_reaches_into_the_middle_of_an_edge(conn, villages) -> None:
    ids = straight_road(conn, villages[0])
    answer = service_areas(conn, settings=WALK, buffer_m=25, use_cache=False)
    (feature,) = answer["features"]
    props = feature["properties"]
    assert props["facility_id"] == ids["facility"]
    # the whole first edge (1,000 m) and the first 280 m of the second: 1,180 m east of the joint, 100 m west
    assert props["reached_road_m"] == pytest.approx(1280, abs=0.01)
    assert props["edges_reached"] == 2
    geometry = json.dumps(feature["geometry"])

    def inside(x: float, y: float) -> bool:
        return conn.execute(sa.text(
            "SELECT ST_Contains(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326), 4545), "
            "ST_GeomFromText(:p, 4545))"), {"g": geometry, "p": _point(x, y)}).scalar()

    assert inside(1270, 0) and inside(1, 0) and inside(1000, 0) and not inside(-5, 0)
    assert inside(1279, 0) and inside(1279, 20)  # up to the reached point, 25 m either side
    assert not inside(1281, 0) and not inside(1600, 0) and not inside(2000, 0)  # the area stops there
    assert not inside(0, 30)
    assert not inside(500, 200)  # not a hull: only the strip along the road
    assert answer["parameters"]["limit_m"] == 1200 and answer["parameters"]["buffer_m"] == 25


def test_service_area_matches_pgrouting_driving_distance_on_whole_edges(conn, villages) -> None:
    """pgr_drivingDistance from the node at x=0 within 1,100 m reaches the node at x=1000 but not x=2000; our area
    adds the partial edge up to x=1100."""
    straight_road(conn, villages[0])
    net.ensure_network(conn, measure_srid=4545, settings=WALK)
    reached = conn.execute(sa.text(
        "SELECT count(*) FROM pgr_drivingDistance('SELECT id, source, target, length_m AS cost, length_m AS "
        "reverse_cost FROM network_edges', (SELECT id FROM network_nodes ORDER BY ST_X(geom) LIMIT 1), 1100)"
    )).scalar()
    assert reached == 2


# -- a facility on a dead end ------------------------------------------------------------------------------------

def dead_end(conn: sa.Connection, village: str) -> dict[str, int]:
    add_road(conn, (0, 0), (500, 0))
    add_road(conn, (500, 0), (1000, 0))
    add_road(conn, (1000, 0), (2000, 0))
    add_road(conn, (500, 0), (500, 400), name="断头路")  # the spur ends nowhere
    return {
        "facility": add_elder_care(conn, 510, 390),
        "west_end": add_settlement(conn, 0, 10, households=11, village_code=village),  # 10+390+500+10 = 910
        "on_spur": add_settlement(conn, 505, 100, households=5, village_code=village),  # 10+290+5 = 305, same edge
        "far_east": add_settlement(conn, 1400, 10, households=13, village_code=village),  # 10+390+900+10 = 1,310
    }


def test_a_facility_on_a_dead_end_serves_along_its_spur(conn, villages) -> None:
    ids = dead_end(conn, villages[0])
    answer = _coverage(conn)
    unserved = _unserved(answer)
    assert set(unserved) == {ids["far_east"]}
    assert unserved[ids["far_east"]]["distance_m"] == pytest.approx(1310, abs=0.01)
    assert answer["totals"]["served_households"] == 16
    # at 5 minutes (400 m) only the settlement on the spur itself is served: along the edge, not via its end
    five = _coverage(conn, minutes=5)
    assert set(_unserved(five)) == {ids["west_end"], ids["far_east"]}


def test_coverage_per_village_counts_each_unit(conn, villages) -> None:
    ids = dead_end(conn, villages[0])
    add_settlement(conn, 1500, -10, households=3, village_code=villages[1])  # 10+390+1000+10 = 1,410: unserved
    answer = _coverage(conn, group_by="village")
    rows = {row["code"]: row for row in answer["units"]}
    assert rows[villages[0]]["households"] == 29 and rows[villages[0]]["served_households"] == 16
    assert rows[villages[1]]["households"] == 3 and rows[villages[1]]["served_households"] == 0
    assert rows[villages[1]]["coverage_rate"] == 0
    assert ids["far_east"] in _unserved(answer)


def test_closed_and_planned_facilities_do_not_serve(conn, villages) -> None:
    ids = straight_road(conn, villages[0])
    conn.execute(sa.text("UPDATE elder_care SET status = 'planned' WHERE id = :id"), {"id": ids["facility"]})
    answer = _coverage(conn)
    assert answer["facilities"] == 0 and answer["totals"]["served_households"] == 0


def test_site_suggestion_picks_the_site_serving_most_unserved_households(conn, villages) -> None:
    ids = river(conn, villages[0])
    east = [add_settlement(conn, 310, y, households=h, village_code=villages[0]) for y, h in
            ((200, 5), (600, 8), (1800, 30))]
    answer = site_suggestions(conn, settings=WALK, k=1, use_cache=False)
    (site,) = answer["sites"]
    # a site at "across" (y=1000) reaches y 200..1800 on the east bank within 1,200 m: 40+5+8+30 households
    assert site["at_settlement_id"] == ids["across"]
    assert site["newly_served_households"] == 83
    assert set(site["newly_served_settlement_ids"]) == {ids["across"], *east}
    assert answer["bound"]["upper_bound_households"] == 83


# -- the API -----------------------------------------------------------------------------------------------------

def test_the_api_answers_coverage_by_network_and_by_straight_line(client: TestClient, conn, villages) -> None:
    ids = river(conn, villages[0])
    network = client.get("/analysis/coverage", params={"group_by": "county"}).json()
    assert [row["id"] for row in network["unserved"]] == [ids["across"]]
    assert (network["method"], network["mode"], network["speed_kmh"], network["minutes"], network["limit_m"]) == (
        "network", "walk", 4.8, 15, 1200)
    euclidean = client.get("/analysis/coverage", params={"group_by": "county", "method": "euclidean"}).json()
    assert euclidean["unserved"] == [] and euclidean["method"] == "euclidean"


def test_the_api_draws_one_service_area_per_facility(client: TestClient, conn, villages) -> None:
    ids = river(conn, villages[0])
    second = add_elder_care(conn, 290, 100, kind="rural_happiness_home")
    response = client.get("/analysis/service-areas", params={"layer": "elder_care", "minutes": 10})
    assert response.headers["content-type"].startswith("application/geo+json")
    features = {f["id"]: f for f in response.json()["features"]}
    assert set(features) == {ids["facility"], second}
    assert features[second]["properties"]["kind"] == "rural_happiness_home"
    only = client.get("/analysis/service-areas", params={"kind": "rural_happiness_home"}).json()
    assert [f["id"] for f in only["features"]] == [second]


@pytest.mark.parametrize(("path", "params", "message"), [
    ("/analysis/coverage", {"layer": "roads"}, "layer must be one of"),
    ("/analysis/coverage", {"kind": "castle"}, "kind must be one of"),
    ("/analysis/coverage", {"layer": "community_centres", "kind": "x"}, "has no kinds"),
    ("/analysis/coverage", {"mode": "fly"}, "mode must be one of"),
    ("/analysis/coverage", {"minutes": 0}, "minutes must be"),
    ("/analysis/coverage", {"minutes": 500}, "minutes must be"),
    ("/analysis/coverage", {"group_by": "province"}, "group_by must be one of"),
    ("/analysis/coverage", {"method": "manhattan"}, "method must be one of"),
    ("/analysis/service-areas", {"mode": "swim"}, "mode must be one of"),
    ("/analysis/service-areas", {"buffer_m": 0}, "buffer_m must be"),
    ("/analysis/facility-area", {"level": "province"}, "level must be one of"),
    ("/analysis/site-suggestions", {"k": 0}, "k must be between"),
    ("/analysis/coverage", {"minutes": "fifteen"}, "minutes (query): Input should be a valid number"),
])
def test_bad_parameters_get_400_with_a_plain_message(client: TestClient, path, params, message) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 400
    assert message in response.json()["description"]


def test_driving_time_depends_on_the_road_class(conn, villages) -> None:
    add_road(conn, (0, 0), (4000, 0), road_class="county")  # 50 km/h: 5 minutes is 4,167 m
    add_road(conn, (0, 0), (0, 4000), road_class="village")  # 25 km/h: 5 minutes is 2,083 m
    add_elder_care(conn, 0, 0)
    on_county = add_settlement(conn, 3000, 0, households=10, village_code=villages[0])
    on_village = add_settlement(conn, 0, 3000, households=20, village_code=villages[0])
    answer = _coverage(conn, mode="drive", minutes=5)
    assert answer["speeds_kmh_by_road_class"]["county"] == 50
    assert answer["speeds_kmh_by_road_class"]["village"] == 25
    unserved = _unserved(answer)
    assert set(unserved) == {on_village} and on_county not in unserved
    assert unserved[on_village]["travel_minutes"] == pytest.approx(3000 / (25000 / 60), abs=0.01)
    assert unserved[on_village]["distance_m"] is None  # speeds differ by class: time, not one distance
    cycling = _coverage(conn, mode="cycle", minutes=15)  # 12 km/h: 3,000 m
    assert cycling["limit_m"] == 3000 and cycling["unserved"] == []
