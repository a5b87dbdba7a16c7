"""A township's field package holds its own boundary: its township lines and the parts of the county lines that
bound it, with exactly the markers on them; line and neighbour packages still hold whole lines; every value in
an export can be had in Chinese, and KML colours the markers by condition."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import gpxpy
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gis_service.io.boundary_export import Selection, read_selection
from gis_service.layers import get_layer

RONGXI = "500241104000"  # 溶溪镇: 1.96 km of the 85 km 秀山—酉阳 county line bounds it
YOUYANG_LINE = "500241-500242"
KML = "{http://www.opengis.net/kml/2.2}"
#: How far a marker may stand from its line in the demo county: single markers on township lines stand on them,
#: on county lines 8 m inside the county; triples at a county tri-junction 15 m inside; pairs (A/B) 12-25 m on
#: either side of a township line.
MARKER_OFFSET_M = {"Q": 10.0, "C": 20.0, "D": 20.0, "E": 20.0, "A": 26.0, "B": 26.0}


def townships(conn: sa.Connection) -> list[tuple[str, str, float]]:
    return [tuple(r) for r in conn.execute(sa.text(
        "SELECT code, name, ST_Perimeter(ST_Transform(geom, 4545)) FROM admin_divisions "
        "WHERE level = 'township' AND valid_to IS NULL ORDER BY code"))]


def test_rongxi_package_is_its_own_boundary(client: TestClient, conn: sa.Connection) -> None:
    document = client.get("/exports/boundaries", params={"township": RONGXI}).json()
    lines = [f["properties"] for f in document["features"] if f["properties"]["feature_type"] == "boundary_line"]
    markers = [f["properties"] for f in document["features"] if f["properties"]["feature_type"] == "boundary_marker"]
    part = next(p for p in lines if p["level"] == "county")
    assert part["code"] == f"{YOUYANG_LINE}/500241104" and part["part_of"] == YOUYANG_LINE
    assert part["name"] == "秀山—酉阳县级界线（溶溪镇段）"
    assert 1900 < part["length_m"] < 2000  # not the whole 85 km line
    perimeter = conn.execute(sa.text("SELECT ST_Perimeter(ST_Transform(geom, 4545)) FROM admin_divisions "
                                     "WHERE code = :c"), {"c": RONGXI}).scalar()
    assert sum(p["length_m"] for p in lines) == pytest.approx(perimeter, rel=0.01)  # 46.0 km, was 130 km
    assert {m["line_code"] for m in markers if m["part_code"]} == {YOUYANG_LINE}
    youyang_markers = conn.execute(sa.text("SELECT count(*) FROM boundary_markers WHERE line_code = :l"),
                                   {"l": YOUYANG_LINE}).scalar()
    assert 0 < sum(1 for m in markers if m["line_code"] == YOUYANG_LINE) < youyang_markers


@pytest.mark.parametrize("index", range(27))
def test_each_township_package_runs_along_its_perimeter_and_holds_only_markers_on_it(
        conn: sa.Connection, index: int) -> None:
    code, name, perimeter = townships(conn)[index]
    lines, markers = read_selection(conn, Selection(township=code), measure_srid=4545)
    assert lines["length_m"].sum() == pytest.approx(perimeter, rel=0.01), name
    measured = shapely.union_all(lines.to_crs(4545).geometry.values)
    assert measured.length == pytest.approx(perimeter, rel=0.01), name
    assert len(markers) > 0
    for number, kind, point in zip(markers["number"], markers["marker_type"], markers.to_crs(4545).geometry):
        assert point.distance(measured) <= MARKER_OFFSET_M[kind], (name, number, point.distance(measured))


def test_every_marker_is_in_a_township_package_and_county_line_markers_in_exactly_one(conn: sa.Connection) -> None:
    seen: dict[str, int] = {}
    for code, _, _ in townships(conn):
        _, markers = read_selection(conn, Selection(township=code), measure_srid=4545)
        for number in markers["number"]:
            seen[number] = seen.get(number, 0) + 1
    levels = dict(conn.execute(sa.text("SELECT m.number, l.level FROM boundary_markers m JOIN boundary_lines l "
                                       "ON l.code = m.line_code")).all())
    assert set(seen) == set(levels)
    assert {seen[n] for n, level in levels.items() if level == "county"} == {1}
    assert {seen[n] for n, level in levels.items() if level == "township"} == {2}  # both townships patrol it


def test_the_parts_of_a_county_line_add_up_to_it(conn: sa.Connection) -> None:
    total = 0.0
    for code, _, _ in townships(conn):
        lines, _ = read_selection(conn, Selection(township=code), measure_srid=4545)
        total += lines.loc[lines["part_of"] == YOUYANG_LINE, "length_m"].sum()
    whole = conn.execute(sa.text("SELECT length_m FROM boundary_lines WHERE code = :l"), {"l": YOUYANG_LINE}).scalar()
    assert total == pytest.approx(whole, rel=0.001)


@pytest.mark.parametrize("params", [{"line": YOUYANG_LINE}, {"neighbour": "500242"}])
def test_line_and_neighbour_packages_keep_the_whole_county_line(client: TestClient, conn: sa.Connection,
                                                                params: dict) -> None:
    document = client.get("/exports/boundaries", params=params).json()
    lines = {f["properties"]["code"]: f["properties"] for f in document["features"]
             if f["properties"]["feature_type"] == "boundary_line"}
    whole = conn.execute(sa.text("SELECT round(length_m::numeric, 1)::float FROM boundary_lines WHERE code = :l"),
                         {"l": YOUYANG_LINE}).scalar()
    assert lines[YOUYANG_LINE]["length_m"] == whole > 85_000 and "part_of" not in lines[YOUYANG_LINE]


# -- values in Chinese, styles by condition ------------------------------------------------------------------

CODED = {"condition", "status", "level", "material"}
ENGLISH_CODES = {code for layer, field in (("boundary_markers", "condition"), ("boundary_lines", "status"),
                                           ("boundary_lines", "level"), ("boundary_markers", "material"))
                 for code in get_layer(layer).field_named(field).codes}


def test_kml_and_gpx_descriptions_say_every_value_in_chinese(client: TestClient) -> None:
    kml = client.get("/exports/boundaries", params={"township": RONGXI, "format": "kml"}).text
    descriptions = [d.text for d in ElementTree.fromstring(kml.encode()).iter(f"{KML}description")]
    gpx = gpxpy.parse(client.get("/exports/boundaries", params={"township": RONGXI, "format": "gpx"}).text)
    descriptions += [w.description for w in gpx.waypoints] + [t.description for t in gpx.tracks]
    assert descriptions and any("状态 已勘定" in d or "状态 有争议" in d for d in descriptions if "状态" in d)
    for text in descriptions:
        assert not any(f"状态 {code}" in text or f"状况 {code}" in text for code in ENGLISH_CODES), text


def test_kml_colours_markers_by_condition_as_the_boundaries_map_does(client: TestClient, conn: sa.Connection) -> None:
    root = ElementTree.fromstring(client.get("/exports/boundaries",
                                             params={"neighbour": "500242", "format": "kml"}).content)
    styles = {s.get("id"): s.findtext(f"{KML}IconStyle/{KML}color") for s in root.iter(f"{KML}Style")}
    assert styles["condition_intact"] == "ff327d2e" and styles["condition_missing"] == "ff2828c6"  # #2e7d32, #c62828
    conditions = dict(conn.execute(sa.text("SELECT number, condition FROM boundary_markers")).all())
    placemarks = [p for p in root.iter(f"{KML}Placemark") if p.findtext(f"{KML}name") in conditions]
    assert placemarks
    for placemark in placemarks:
        assert placemark.findtext(f"{KML}styleUrl") == f"#condition_{conditions[placemark.findtext(f'{KML}name')]}"


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "kml"])
def test_lang_zh_writes_attribute_values_in_chinese(client: TestClient, tmp_path: Path, fmt: str) -> None:
    content = client.get("/exports/boundaries", params={"township": RONGXI, "format": fmt, "lang": "zh"}).content
    values: list[str] = []
    if fmt == "geojson":
        for feature in json.loads(content)["features"]:
            values += [v for k, v in feature["properties"].items() if k in CODED | {"feature_type"} and v]
        assert "界桩" in values
    elif fmt == "kml":
        root = ElementTree.fromstring(content)
        values = [d.text for d in root.iter(f"{KML}SimpleData") if d.get("name") in CODED and d.text]
    else:
        path = tmp_path / "package.gpkg"
        if fmt == "shp":
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                archive.extractall(tmp_path)
            frames = [pyogrio.read_dataframe(tmp_path / f"{layer}.shp") for layer in ("boundary_lines",
                                                                                      "boundary_markers")]
        else:
            path.write_bytes(content)
            frames = [pyogrio.read_dataframe(path, layer=layer) for layer in ("boundary_lines", "boundary_markers")]
        for frame in frames:
            for column in CODED & set(frame.columns):
                values += [v for v in frame[column] if v]
    assert "完好" in values and "乡级界线" in values
    assert not set(values) & ENGLISH_CODES


def test_a_bad_lang_is_refused(client: TestClient) -> None:
    response = client.get("/exports/boundaries", params={"township": RONGXI, "lang": "fr"})
    assert response.status_code == 400


def test_the_command_line_writes_a_township_package_in_chinese(engine: sa.Engine, database_url: str,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gis_service.cli import app

    monkeypatch.setenv("GIS_DATABASE_URL", database_url)
    out = tmp_path / "rongxi.geojson"
    result = CliRunner().invoke(app, ["export", "boundaries", "--township", RONGXI, "--labels", "zh", "--out",
                                      str(out)])
    assert result.exit_code == 0, result.output
    features = json.loads(out.read_text(encoding="utf-8"))["features"]
    assert {f["properties"]["feature_type"] for f in features} == {"行政区域界线", "界桩"}
    assert "完好" in {f["properties"].get("condition") for f in features}
