"""A province in one database: `demo build --counties N` lays the demo county and synthetic copies side by side, and
the analyses, maps and writes take a county code (or the province's) where they need one."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.analysis import network as net
from gis_service.analysis.coverage import coverage
from gis_service.analysis.travel import AnalysisSettings
from gis_service.app import create_app
from gis_service.auth import create_token
from gis_service.db import migrate
from gis_service.db.engine import create_db_engine
from gis_service.demo.province import build_province, county_code, offset_deg
from gis_service.io.load_demo import load_frames
from gis_service.settings import Settings

from .helpers import bearer, open_map, station

pytestmark = pytest.mark.slow
COUNTIES = 3


@pytest.fixture(scope="module")
def province() -> dict:
    return build_province(COUNTIES, scale=1)


def test_the_copies_are_distinct_counties_beside_the_real_one(province: dict) -> None:
    counties = province["admin_divisions"][province["admin_divisions"]["level"] == "county"]
    assert counties["code"].tolist() == ["500241000000", "509001000000", "509002000000"]
    assert counties["name"].tolist() == ["秀山土家族苗族自治县", "模拟01县", "模拟02县"]
    assert "synthetic copy" not in counties["data_source"].iloc[0]
    assert all(s.startswith("synthetic copy") for s in counties["data_source"].iloc[1:])
    outlines = counties.geometry.values
    assert not shapely.intersects(outlines[0], outlines[1]) and not shapely.intersects(outlines[1], outlines[2])
    for name, frame in province.items():
        assert frame["id"].is_unique, name
    for column, frame in (("code", "admin_divisions"), ("code", "boundary_lines"), ("number", "boundary_markers")):
        assert province[frame][column].is_unique, (frame, column)
    # each county's rows name its own codes: settlements their villages, inspections their markers
    settlements = province["settlements"]
    for k in range(COUNTIES):
        mine = settlements[settlements["village_code"].str.startswith(county_code(k))]
        assert len(mine) == len(settlements) // COUNTIES
        assert shapely.contains(outlines[k], mine.geometry.values).all()
    markers = province["boundary_markers"].set_index("id")
    inspected = markers.loc[province["marker_inspections"]["marker_id"], "line_code"]
    per_county = inspected.str.contains(county_code(2)).sum()
    assert per_county == len(province["marker_inspections"]) // COUNTIES
    assert offset_deg(2) == (-1.2, 0.0) and offset_deg(4) == (0.0, 0.75)


@pytest.fixture(scope="module")
def province_db(province: dict, admin_url: str, database_url: str, settings: Settings) -> Iterator[str]:
    """A database of its own holding the three counties, its network built."""
    from .helpers import create_database, drop_database

    url = create_database(admin_url, database_url, "gis_province_test")
    migrate.upgrade(url)
    engine = create_db_engine(url)
    try:
        load_frames(engine, province, county_code="500000", measure_srid=settings.measure_srid)
        with engine.connect() as conn:
            net.ensure_network(conn, measure_srid=settings.measure_srid, settings=AnalysisSettings())
            conn.commit()
        yield url
    finally:
        engine.dispose()
        drop_database(admin_url, "gis_province_test")


@pytest.fixture()
def province_client(province_db: str, settings: Settings, tmp_path) -> Iterator[TestClient]:
    engine = create_db_engine(province_db)
    app = create_app(settings.model_copy(update={"database_url": province_db, "county_code": "500000",
                                                 "data_dir": tmp_path}), engine)
    try:
        with TestClient(app) as client:
            yield client
    finally:
        engine.dispose()
        net.keep_graphs_in(settings.data_dir / "network")


def test_one_county_s_coverage_is_that_county_s_and_the_same_in_each_copy(province_db: str) -> None:
    engine = create_db_engine(province_db)
    try:
        with engine.connect() as conn:
            answers = {code: coverage(conn, county=code, group_by="township", use_cache=False)
                       for code in ("500241", "509001")}
            everything = coverage(conn, group_by="county", use_cache=False)
    finally:
        engine.dispose()
    real, copy = answers["500241"], answers["509001"]
    assert real["totals"] == copy["totals"] and real["totals"]["households"] > 100_000
    assert {u["code"][:6] for u in copy["units"]} == {"509001"} and len(copy["units"]) == 27
    assert [u["code"] for u in everything["units"]] == ["500241000000", "509001000000", "509002000000"]
    assert everything["totals"]["households"] == COUNTIES * real["totals"]["households"]
    assert all(u["coverage_percent"] == real["totals"]["coverage_percent"] for u in everything["units"])


def test_analyses_and_maps_take_a_county_through_the_api(province_client: TestClient) -> None:
    served = province_client.get("/analysis/coverage", params={"county": "509002", "group_by": "township"})
    assert served.status_code == 200, served.text
    assert served.json()["county"] == "509002" and {u["code"][:6] for u in served.json()["units"]} == {"509002"}
    areas = province_client.get("/analysis/facility-area", params={"county": "509001", "level": "county"})
    assert [u["name"] for u in areas.json()["units"]] == ["模拟01县"]
    indicators = province_client.get("/analysis/indicators", params={"county": "509001"}).json()
    townships = {i["id"]: i["counts"] for i in indicators["indicators"]}["townships_with_minor_protection_station"]
    assert townships["townships"] == 27
    unknown = province_client.get("/analysis/coverage", params={"county": "509099"})
    assert unknown.status_code == 400
    assert unknown.json()["description"] == ("county 509099 is not in the database; the counties are: "
                                             "500241, 509001, 509002")
    page = open_map(province_client, "/maps/facility_area", {"county": "509001"})
    assert page.status_code == 200
    [(south, west, north, east)] = [tuple(map(float, m)) for m in re.findall(
        r"fitBounds\(\[\[([\d.]+), ([\d.]+)\], \[([\d.]+), ([\d.]+)\]\]", page.text)]
    shift = offset_deg(1)[0]  # the map shows the copy, 0.6° west of Xiushan (108.72-109.30° E)
    assert 108.72 + shift - 0.05 < west < east < 109.31 + shift + 0.05 and 28.1 < south < north < 28.9


def test_writes_anywhere_in_the_province_are_accepted_and_outside_it_refused(province_client: TestClient,
                                                                            province_db: str) -> None:
    engine = create_db_engine(province_db)
    try:
        with engine.begin() as conn:
            token_id, token = create_token(conn, role="planner", name="测试省级")
        lon, lat = (a + b for a, b in zip((108.9930, 28.4490), offset_deg(2)))
        feature = station("测试模拟02县养老站")
        feature["geometry"]["coordinates"] = [lon, lat]
        feature["properties"]["division_code"] = "509002001001"
        made = province_client.post("/collections/elder_care/items", json=feature, headers=bearer(token))
        assert made.status_code == 201, made.text
        feature["geometry"]["coordinates"] = [lon + 3.0, lat]  # between the counties, in none
        refused = province_client.post("/collections/elder_care/items", json=feature, headers=bearer(token))
        assert refused.status_code == 422 and "outside the county" in refused.text
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM elder_care WHERE name = '测试模拟02县养老站'"))
        engine.dispose()
