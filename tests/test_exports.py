"""The boundary inspectors' field package holds exactly the selected lines and their markers, in every format."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import gpxpy
import pyogrio
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from .helpers import REPO

YOUYANG = "500242"  # 酉阳, the neighbour to the north-west
KML = "{http://www.opengis.net/kml/2.2}"


def _expected_markers(conn: sa.Connection, neighbour: str) -> set[str]:
    return set(conn.execute(sa.text(
        "SELECT m.number FROM boundary_markers m JOIN boundary_lines l ON l.code = m.line_code "
        "WHERE l.level = 'county' AND l.right_code = :n"), {"n": neighbour}).scalars())


def _markers_in(fmt: str, content: bytes, tmp_path: Path) -> set[str]:
    if fmt == "geojson":
        document = json.loads(content)
        assert "crs" not in document
        for feature in document["features"]:
            lon, lat = (feature["geometry"]["coordinates"] if feature["geometry"]["type"] == "Point"
                        else feature["geometry"]["coordinates"][0][0])
            assert 108.6 < lon < 109.4 and 28.1 < lat < 28.95  # lon, lat order (RFC 7946)
        return {f["properties"]["number"] for f in document["features"]
                if f["properties"]["feature_type"] == "boundary_marker"}
    if fmt == "kml":
        root = ElementTree.fromstring(content)
        folders = {f.findtext(f"{KML}name"): f for f in root.iter() if f.tag in (f"{KML}Folder", f"{KML}Document")}
        return {p.findtext(f"{KML}name") for p in folders["boundary_markers"].iter(f"{KML}Placemark")}
    if fmt == "gpx":
        gpx = gpxpy.parse(content.decode("utf-8"))
        assert len(gpx.tracks) >= 1 and all(t.segments[0].points for t in gpx.tracks)
        return {w.name for w in gpx.waypoints}
    if fmt == "gpkg":
        path = tmp_path / "x.gpkg"
        path.write_bytes(content)
        assert pyogrio.read_info(path, layer="boundary_markers")["crs"] == "EPSG:4490"
        return set(pyogrio.read_dataframe(path, layer="boundary_markers")["number"])
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        archive.extractall(tmp_path)
        assert {"boundary_lines.shp", "boundary_markers.shp", "boundary_markers.prj"} <= set(archive.namelist())
    return set(pyogrio.read_dataframe(tmp_path / "boundary_markers.shp")["number"])


@pytest.mark.parametrize("fmt", ["geojson", "kml", "gpx", "gpkg", "shp"])
def test_export_for_one_neighbour_holds_exactly_its_markers(
        client: TestClient, conn: sa.Connection, tmp_path: Path, fmt: str) -> None:
    expected = _expected_markers(conn, YOUYANG)
    assert len(expected) >= 10
    response = client.get("/exports/boundaries", params={"neighbour": YOUYANG, "format": fmt})
    assert response.status_code == 200, response.text
    assert f"boundaries_neighbour_{YOUYANG}" in response.headers["content-disposition"]
    assert _markers_in(fmt, response.content, tmp_path) == expected


def test_gpx_waypoints_are_named_by_marker_number_and_lines_are_tracks(
        client: TestClient, conn: sa.Connection) -> None:
    line = conn.execute(sa.text("SELECT code FROM boundary_lines WHERE level = 'county' AND right_code = '500242'"
                                )).scalar_one()
    gpx = gpxpy.parse(client.get("/exports/boundaries", params={"line": line, "format": "gpx"}).text)
    assert [t.name.split()[0] for t in gpx.tracks] == [line]
    first = conn.execute(sa.text(
        "SELECT number, ST_X(geom), ST_Y(geom) FROM boundary_markers WHERE line_code = :l ORDER BY number LIMIT 1"),
        {"l": line}).one()
    waypoint = next(w for w in gpx.waypoints if w.name == first[0])
    assert (waypoint.longitude, waypoint.latitude) == pytest.approx((first[1], first[2]), abs=1e-6)
    assert "状况" in waypoint.description


def test_a_township_export_has_its_lines_and_the_parts_of_county_lines_on_its_border(
        client: TestClient, conn: sa.Connection) -> None:
    township = "500241107"  # 石堤镇, on the north-east edge of the county
    own = set(conn.execute(sa.text("SELECT code FROM boundary_lines WHERE level = 'township' "
                                   "AND (left_code = :t OR right_code = :t)"), {"t": township}).scalars())
    document = client.get("/exports/boundaries", params={"township": township}).json()
    lines = {f["properties"]["code"]: f["properties"] for f in document["features"]
             if f["properties"]["feature_type"] == "boundary_line"}
    assert own and own <= set(lines)
    parts = {c: p for c, p in lines.items() if p["level"] == "county"}
    assert parts, "石堤 lies on the county border"
    assert all(c == f"{p['part_of']}/{township}" for c, p in parts.items())
    markers = [f["properties"] for f in document["features"] if f["properties"]["feature_type"] == "boundary_marker"]
    assert {m["part_code"] or m["line_code"] for m in markers} <= set(lines)


@pytest.mark.parametrize(("params", "status", "words"), [
    ({}, 400, "name exactly one of"),
    ({"line": "500241-500242", "neighbour": "500242"}, 400, "name exactly one of"),
    ({"neighbour": "5002"}, 400, "must look like"),
    ({"neighbour": "999999"}, 404, "the neighbours are"),
    ({"line": "500241-500242", "format": "dwg"}, 400, "format"),
])
def test_bad_selections_are_explained(client: TestClient, params: dict, status: int, words: str) -> None:
    response = client.get("/exports/boundaries", params=params)
    assert response.status_code == status
    assert words in response.text


def test_the_cli_writes_the_same_field_package(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    with engine.connect() as conn:
        expected = _expected_markers(conn, YOUYANG)
    target = tmp_path / "youyang.gpx"
    result = subprocess.run(
        [sys.executable, "-m", "gis_service.cli", "export", "boundaries", "--neighbour", YOUYANG,
         "--format", "gpx", "--out", str(target)],
        env={**os.environ, "GIS_DATABASE_URL": database_url}, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert {w.name for w in gpxpy.parse(target.read_text()).waypoints} == expected
    refused = subprocess.run(
        [sys.executable, "-m", "gis_service.cli", "export", "boundaries", "--neighbour", "999999"],
        env={**os.environ, "GIS_DATABASE_URL": database_url}, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "the neighbours are" in refused.stderr and "Traceback" not in refused.stderr
