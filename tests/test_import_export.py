"""Imports check every row and write all or nothing; exports write what the layer holds, in real GDAL formats."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
import sqlalchemy as sa

from gis_service.errors import ImportRejected, InvalidInputError, UnknownLayerError
from gis_service.io.files import write_export
from gis_service.io.layers_io import import_into, read_layer
from gis_service.layers import get_layer
from gis_service.settings import Settings


def _count(conn: sa.Connection, table: str) -> int:
    return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def _settlements_file(conn: sa.Connection, path: Path, *, rows: int = 2500) -> gpd.GeoDataFrame:
    frame = read_layer(conn, get_layer("settlements")).head(rows).drop(columns=["id"])
    frame["name"] = frame["name"] + "新区"
    write_export(frame, path, fmt="geojson", layer_name="settlements")
    return frame


def test_one_invalid_feature_among_thousands_writes_nothing_and_is_named(
        conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "settlements.geojson"
    _settlements_file(conn, path)
    document = json.loads(path.read_text())
    document["features"][1233]["geometry"] = {"type": "Polygon", "coordinates": [[
        [109.0, 28.4], [109.01, 28.41], [109.01, 28.4], [109.0, 28.41], [109.0, 28.4]]]}
    document["features"][2400]["properties"]["households"] = -3
    path.write_text(json.dumps(document, ensure_ascii=False))
    before = _count(conn, "settlements")
    with pytest.raises(ImportRejected) as caught:
        import_into(conn, settings, "settlements", path)
    message = str(caught.value)
    assert "2 of 2500 rows have problems; nothing was written" in message
    assert "row 1234, geometry: is a Polygon; settlements holds Point geometries" in message
    assert "row 2401, households: -3 is below the minimum 0" in message
    assert _count(conn, "settlements") == before


def test_a_good_file_is_written_whole_with_measured_lengths(
        conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "settlements.geojson"
    _settlements_file(conn, path)
    before = _count(conn, "settlements")
    result, note = import_into(conn, settings, "settlements", path)
    assert result.rows_written == 2500
    assert "EPSG:4326" in note or "OGC:CRS84" in note
    assert _count(conn, "settlements") == before + 2500

    roads = tmp_path / "roads.gpkg"
    frame = read_layer(conn, get_layer("roads")).head(50).drop(columns=["id"])
    frame["length_m"] = 1.0  # computed by the service, never taken from a file
    write_export(frame, roads, fmt="gpkg", layer_name="roads")
    import_into(conn, settings, "roads", roads)
    lengths = conn.execute(sa.text("SELECT length_m FROM roads ORDER BY id DESC LIMIT 50")).scalars().all()
    assert min(lengths) > 1.0


def test_dry_run_checks_but_writes_nothing(conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "settlements.geojson"
    _settlements_file(conn, path, rows=20)
    before = _count(conn, "settlements")
    result, _ = import_into(conn, settings, "settlements", path, dry_run=True)
    assert (result.rows_read, result.rows_written) == (20, 0)
    assert _count(conn, "settlements") == before


def test_csv_with_swapped_coordinates_and_unknown_codes_is_explained(
        conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    path.write_text("name,village_code,households,lon,lat,colour\n"
                    "甲,500241001001,10,108.99,28.45,red\n"
                    "乙,500241001001,10,28.45,108.99,red\n"
                    "丙,500241999999,10,108.99,28.45,red\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as caught:
        import_into(conn, settings, "settlements", path)
    message = str(caught.value)
    assert "file, colour: unknown field" in message
    assert "row 2, geometry: lies outside the county, but would lie inside with longitude and latitude swapped" \
        in message
    assert "row 3, village_code: 500241999999 is not the code of a current administrative division" in message


def test_projected_coordinates_need_the_right_crs(conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    point = gpd.GeoSeries([shapely.Point(108.99, 28.45)], crs=4490).to_crs(4545)[0]
    path = tmp_path / "gk.csv"
    path.write_text(f"name,village_code,households,x,y\n甲,500241001001,10,{point.x},{point.y}\n")
    with pytest.raises(ImportRejected, match="check the coordinate reference system"):
        import_into(conn, settings, "settlements", path)
    result, note = import_into(conn, settings, "settlements", path, crs="EPSG:4545")
    assert result.rows_written == 1 and "EPSG:4545" in note
    lon, lat = conn.execute(sa.text(
        "SELECT ST_X(geom), ST_Y(geom) FROM settlements ORDER BY id DESC LIMIT 1")).one()
    assert lon == pytest.approx(108.99, abs=1e-7) and lat == pytest.approx(28.45, abs=1e-7)


@pytest.mark.filterwarnings("ignore:.*(truncated|Normalized/laundered).*")
def test_shapefile_zip_round_trip(conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    frame = read_layer(conn, get_layer("elder_care")).head(10).drop(columns=["id"])
    folder = tmp_path / "shp"
    folder.mkdir()
    frame.to_file(folder / "elder_care.shp", engine="pyogrio", encoding="utf-8")
    archive = tmp_path / "elder_care.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for member in folder.iterdir():
            handle.write(member, member.name)
    before = _count(conn, "elder_care")
    import_into(conn, settings, "elder_care", archive)
    assert _count(conn, "elder_care") == before + 10
    names = conn.execute(sa.text("SELECT name FROM elder_care ORDER BY id DESC LIMIT 10")).scalars().all()
    assert sorted(names) == sorted(frame["name"])


def test_malformed_and_unknown_inputs_are_refused_plainly(
        conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(InvalidInputError, match="cannot read broken.geojson"):
        import_into(conn, settings, "settlements", broken)
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InvalidInputError, match="not a readable zip"):
        import_into(conn, settings, "settlements", corrupt)
    with pytest.raises(UnknownLayerError, match="unknown layer 'graves'"):
        import_into(conn, settings, "graves", broken)
    with pytest.raises(InvalidInputError, match="unknown coordinate reference system"):
        import_into(conn, settings, "settlements", broken, crs="EPSG:99999999")


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "csv"])
def test_export_then_import_gives_back_the_same_features(
        conn: sa.Connection, settings: Settings, tmp_path: Path, fmt: str) -> None:
    layer = get_layer("roads")
    original = read_layer(conn, layer)
    path = write_export(original, tmp_path / f"roads.{fmt}", fmt=fmt, layer_name="roads")
    conn.execute(sa.text("DELETE FROM roads"))
    import_into(conn, settings, "roads", path)
    again = read_layer(conn, layer)
    assert len(again) == len(original)
    assert sorted(again["name"]) == sorted(original["name"])
    assert again["former_names"].map(len).sum() == original["former_names"].map(len).sum()
    assert again.to_crs(4545).length.sum() == pytest.approx(original.to_crs(4545).length.sum(), rel=1e-6)


def test_codes_already_taken_and_unknown_lines_are_named(conn: sa.Connection, settings: Settings,
                                                         tmp_path: Path) -> None:
    markers = read_layer(conn, get_layer("boundary_markers")).head(2).drop(columns=["id"])
    markers.loc[1, "line_code"] = "500241-999999"
    path = write_export(markers, tmp_path / "markers.geojson", fmt="geojson", layer_name="boundary_markers")
    with pytest.raises(ImportRejected) as caught:
        import_into(conn, settings, "boundary_markers", path)
    message = str(caught.value)
    assert f"row 1, number: {markers.loc[0, 'number']} is already in boundary_markers" in message
    assert "row 2, line_code: 500241-999999 is not the code of a boundary line" in message
