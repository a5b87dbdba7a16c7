"""The demo county as loaded into PostGIS keeps the invariants a user would check."""

from __future__ import annotations

import csv

import networkx as nx
import sqlalchemy as sa

from .helpers import REPO

XIUSHAN = REPO / "layers" / "xiushan"


def _csv(name: str) -> list[dict]:
    with open(XIUSHAN / name, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_real_township_and_village_code_is_there_with_its_name(conn: sa.Connection) -> None:
    rows = dict(conn.execute(sa.text(
        "SELECT code, name FROM admin_divisions WHERE valid_to IS NULL AND level <> 'county'")).all())
    townships = {r["code12"]: r["name"] for r in _csv("xiushan_townships.csv")}
    villages = {r["code12"]: r["short_name"] for r in _csv("xiushan_villages.csv")}
    assert len(townships) == 27 and len(villages) == 268
    assert {c: rows.get(c) for c in townships} == townships
    assert set(villages) <= set(rows)
    assert len(rows) == 27 + 268
    assert rows["500241001001"].startswith("东风社区")


def test_villages_tile_their_township_and_townships_tile_the_county(conn: sa.Connection) -> None:
    areas = conn.execute(sa.text("""
        SELECT t.code, ST_Area(ST_Transform(t.geom, 4545)) AS township_m2,
               (SELECT sum(ST_Area(ST_Transform(v.geom, 4545))) FROM admin_divisions v
                 WHERE v.parent_code = t.code AND v.valid_to IS NULL) AS villages_m2
        FROM admin_divisions t WHERE t.level = 'township' AND t.valid_to IS NULL""")).all()
    assert len(areas) == 27
    for code, township_m2, villages_m2 in areas:
        assert abs(villages_m2 - township_m2) / township_m2 < 0.001, code
    county_m2, townships_m2 = conn.execute(sa.text("""
        SELECT (SELECT ST_Area(ST_Transform(geom, 4545)) FROM admin_divisions WHERE level = 'county'),
               (SELECT sum(ST_Area(ST_Transform(geom, 4545))) FROM admin_divisions
                 WHERE level = 'township' AND valid_to IS NULL)""")).one()
    assert abs(townships_m2 - county_m2) / county_m2 < 0.001
    assert 2.40e9 < county_m2 < 2.50e9  # Xiushan is about 2,450 km²
    overlap_m2 = conn.execute(sa.text("""
        SELECT coalesce(sum(ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), 4545))), 0)
        FROM admin_divisions a JOIN admin_divisions b
          ON a.level = b.level AND a.id < b.id AND a.geom && b.geom AND ST_Overlaps(a.geom, b.geom)
        WHERE a.valid_to IS NULL AND b.valid_to IS NULL AND a.level = 'township'""")).scalar()
    assert overlap_m2 < 1000


def test_households_follow_the_2020_census_divided_by_3_03(conn: sa.Connection) -> None:
    census = {r["current_code9"]: int(r["resident_population_2020_11_01"])
              for r in _csv("xiushan_census2020_township_population.csv") if r["current_code9"] != "500241"}
    households = dict(conn.execute(sa.text(
        "SELECT left(code, 9), households FROM admin_divisions WHERE level = 'township' AND valid_to IS NULL")).all())
    combined = census.pop("500241005;500241120") + census.pop("500241005")  # 清溪场镇 + 孝溪乡
    assert households["500241005"] + households["500241120"] == round(combined / 3.03)
    for code9, population in census.items():
        assert households[code9] == round(population / 3.03), code9
    village_sums = dict(conn.execute(sa.text("""
        SELECT t.code, sum(v.households) FROM admin_divisions t
        JOIN admin_divisions v ON v.parent_code = t.code AND v.valid_to IS NULL
        WHERE t.level = 'township' AND t.valid_to IS NULL GROUP BY t.code""")).all())
    assert all(village_sums[f"{c}000"] == h for c, h in households.items())


def test_settlements_hold_every_household_and_lie_near_a_road(conn: sa.Connection) -> None:
    count, mismatched = conn.execute(sa.text("""
        SELECT (SELECT count(*) FROM settlements),
               (SELECT count(*) FROM admin_divisions v WHERE v.level = 'village' AND v.valid_to IS NULL
                  AND v.households <> (SELECT coalesce(sum(households), 0) FROM settlements s
                                       WHERE s.village_code = v.code))""")).one()
    assert count >= 2000
    assert mismatched == 0
    far = conn.execute(sa.text("""
        SELECT count(*) FROM settlements s WHERE NOT EXISTS (
            SELECT 1 FROM roads r WHERE ST_DWithin(r.geom, s.geom, 0.01)
              AND ST_Distance(ST_Transform(r.geom, 4545), ST_Transform(s.geom, 4545)) <= 500)""")).scalar()
    assert far == 0


def test_the_road_network_is_connected_and_large(conn: sa.Connection) -> None:
    ends = conn.execute(sa.text("""
        SELECT ST_AsText(ST_StartPoint(geom)), ST_AsText(ST_EndPoint(geom)) FROM roads""")).all()
    assert len(ends) >= 15000
    graph = nx.Graph()
    graph.add_edges_from(ends)
    assert nx.number_connected_components(graph) == 1


def test_facilities_come_in_the_numbers_the_plan_reports(conn: sa.Connection) -> None:
    elder = dict(conn.execute(sa.text(
        "SELECT kind, count(*) FROM elder_care WHERE status = 'existing' GROUP BY kind")).all())
    assert elder.get("welfare_institution", 0) + elder.get("township_home", 0) == 33
    assert elder["community_station"] == 62
    assert elder["rural_happiness_home"] == 98
    existing_burial = conn.execute(sa.text(
        "SELECT count(*) FROM cemeteries WHERE status = 'existing' AND public_welfare "
        "AND kind IN ('public_welfare_cemetery', 'burial_point')")).scalar()
    assert existing_burial == 7
    planned_rural = conn.execute(sa.text(
        "SELECT count(*) FROM cemeteries WHERE status = 'planned' AND kind = 'public_welfare_cemetery' "
        "AND urban_rural = 'rural'")).scalar()
    assert planned_rural >= 30
    centres, villages, short = conn.execute(sa.text("""
        SELECT count(*), count(DISTINCT c.division_code),
               count(*) FILTER (WHERE c.floor_area_m2 / v.households * 100 < 30)
        FROM community_centres c JOIN admin_divisions v ON v.code = c.division_code AND v.valid_to IS NULL
        WHERE v.level = 'village'""")).one()
    assert centres == villages == 268
    assert 0 < short < 268


def test_boundary_lines_and_markers(conn: sa.Connection) -> None:
    county_lines = dict(conn.execute(sa.text(
        "SELECT right_name, round(length_m / 1000) FROM boundary_lines WHERE level = 'county'")).all())
    assert county_lines == {"酉阳土家族苗族自治县": 86, "龙山县": 15, "保靖县": 54, "花垣县": 13,
                            "松桃苗族自治县": 148}
    assert conn.execute(sa.text("SELECT count(*) FROM boundary_lines WHERE level = 'township'")).scalar() > 30
    per_line = conn.execute(sa.text("""
        SELECT count(*) FROM boundary_lines l WHERE level = 'county'
          AND NOT EXISTS (SELECT 1 FROM boundary_markers m WHERE m.line_code = l.code)""")).scalar()
    assert per_line == 0
    types = set(conn.execute(sa.text("SELECT DISTINCT marker_type FROM boundary_markers")).scalars())
    assert types == {"Q", "A", "B", "C", "D", "E"}


def test_place_names_cover_divisions_and_the_2021_changes(conn: sa.Connection) -> None:
    assert conn.execute(sa.text("SELECT count(*) FROM place_names")).scalar() >= 1000
    successors = dict(conn.execute(sa.text("""
        SELECT h.name, s.name FROM place_names h JOIN place_names s ON s.id = h.successor_id
        WHERE h.status = 'historical'""")).all())
    assert successors["孝溪乡"] == "清溪场街道"
    assert successors["清溪场镇"] == "清溪场街道"
    assert successors["涌洞乡"] == "涌洞镇"
    pinyin = conn.execute(sa.text("SELECT pinyin FROM place_names WHERE name = '龙凤坝镇'")).scalar()
    assert pinyin == "Lóngfèngbà Zhèn"


def test_synthetic_data_says_so(conn: sa.Connection) -> None:
    for table in ("settlements", "roads", "elder_care", "community_centres"):
        unlabelled = conn.execute(sa.text(
            f"SELECT count(*) FROM {table} WHERE data_source NOT ILIKE '%synthetic%' OR data_source IS NULL")).scalar()
        assert unlabelled == 0, table
