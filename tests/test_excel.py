"""Excel in and out: sheets as county offices fill them in are imported; layers and analyses are exported as XLSX
(text never a formula, dates as dates); every CSV carries a BOM; GeoPackage and Shapefile keep dates as dates; a GBK
Shapefile for old desktop tools."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pyogrio
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gis_service.cli import app
from gis_service.errors import ImportRejected, InvalidInputError
from gis_service.io.files import write_export
from gis_service.io.layers_io import import_into, read_layer
from gis_service.layers import get_layer
from gis_service.settings import Settings

from .helpers import fingerprint

pytestmark = pytest.mark.filterwarnings("ignore:.*(Normalized/laundered field name|truncated)")

HEADER = ["name", "kind", "beds", "nursing_beds", "operator", "division_code", "经度", "纬度"]


def office_sheet(path: Path, rows: list[list], *, title_rows: bool = True, sheet: str = "养老机构") -> Path:
    """A workbook as a county office makes one: a merged title, a line saying who filled it in, an empty row, the
    header, the rows (a division code merged over the rows of one community, an empty row between blocks) and a
    total row (合计)."""
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = sheet
    if title_rows:
        first.append(["秀山县养老服务设施统计表（2021年）"])
        first.merge_cells("A1:H1")
        first.append(["填报单位：秀山县民政局", None, None, None, "填报日期：2021年3月5日"])
        first.append([])
    first.append(HEADER)
    top = first.max_row + 1
    for row in rows:
        first.append(row)
    first.merge_cells(f"F{top}:F{top + 2}")  # one community's code, written once for its three rows
    first.append([])
    first.append(["合计", None, sum(int(r[2]) for r in rows if str(r[2]).isdigit()), None, None, None, None, None])
    workbook.create_sheet("说明").append(["本表由各乡镇（街道）填报。"])
    workbook.save(path)
    return path


def _station_rows() -> list[list]:
    return [
        ["凤凰社区养老服务站", "community_station", "20", 8, "public_private", "500241001006", 108.9950, 28.4480],
        ["凤凰社区日间照料中心", "community_station", 12, "4", "government", None, "108.9952", "28.4482"],
        ["凤凰社区长者之家", "community_station", 6, 0, "private", None, 108.9954, 28.4484],
    ]


def _last(conn: sa.Connection, n: int) -> list[tuple]:
    return conn.execute(sa.text("SELECT name, beds, nursing_beds, operator, division_code FROM elder_care "
                                "ORDER BY id DESC LIMIT :n"), {"n": n}).all()[::-1]


def test_an_office_sheet_is_imported_below_its_titles_with_merged_cells_and_numbers_as_text(
        conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    path = office_sheet(tmp_path / "养老机构.xlsx", _station_rows())
    result, notes = import_into(conn, settings, "elder_care", path)
    assert result.rows_written == 3
    assert ("sheet '养老机构' of 养老机构.xlsx: header in row 4; rows 1-3 above it taken for titles; "
            "1 total row (合计) left out") in notes
    assert _last(conn, 3) == [("凤凰社区养老服务站", 20, 8, "public_private", "500241001006"),
                              ("凤凰社区日间照料中心", 12, 4, "government", "500241001006"),
                              ("凤凰社区长者之家", 6, 0, "private", "500241001006")]


def test_bad_rows_of_a_sheet_are_named_by_the_sheet_row_and_nothing_is_written(
        conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    rows = _station_rows()
    rows[1][2] = "十二"  # beds in words
    rows[2][6], rows[2][7] = 28.4484, 108.9954  # lat and lon swapped
    path = office_sheet(tmp_path / "bad.xlsx", rows)
    before = fingerprint(conn)
    with pytest.raises(ImportRejected) as caught:
        import_into(conn, settings, "elder_care", path)
    message = str(caught.value)
    assert "2 of 3 rows have problems; nothing was written (rows are numbered as in the sheet)" in message
    assert "row 6, beds: '十二' is not a whole number" in message
    assert "row 7, geometry: lies outside the county, but would lie inside with longitude and latitude swapped" \
        in message
    assert fingerprint(conn) == before


def test_sheet_and_header_row_can_be_named(conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    path = office_sheet(tmp_path / "book.xlsx", _station_rows(), sheet="2021")
    workbook = openpyxl.load_workbook(path)
    second = workbook.create_sheet("复核")
    second.append(["复核后名单"])
    second.append(["备注：经度纬度为复核值"])
    second.append(HEADER)
    second.append(["平凯社区养老服务站", "community_station", 10, 2, "government", "500241001006", 108.995, 28.448])
    workbook.save(path)
    result, notes = import_into(conn, settings, "elder_care", path, sheet="复核", header_row=3)
    assert result.rows_written == 1 and "sheet '复核' of book.xlsx: header in row 3" in notes
    assert _last(conn, 1)[0][0] == "平凯社区养老服务站"
    with pytest.raises(InvalidInputError, match="book.xlsx has no sheet '汇总'; its sheets are 2021, 说明, 复核"):
        import_into(conn, settings, "elder_care", path, sheet="汇总")


def test_excel_dates_are_dates(conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["number", "marker_type", "line_code", "material", "set_on", "lon", "lat"])
    lon, lat = conn.execute(sa.text("SELECT ST_X(geom), ST_Y(geom) FROM boundary_markers "
                                    "WHERE line_code = '500241-500242' LIMIT 1")).one()
    sheet.append(["500241-500242-901Q", "Q", "500241-500242", "granite", dt.datetime(2021, 3, 5), lon, lat])
    sheet.append(["500241-500242-902Q", "Q", "500241-500242", "granite", "2021年3月6日", lon, lat])
    path = tmp_path / "markers.xlsx"
    workbook.save(path)
    import_into(conn, settings, "boundary_markers", path)
    assert conn.execute(sa.text("SELECT set_on FROM boundary_markers WHERE number LIKE '500241-500242-90_Q' "
                                "ORDER BY number")).scalars().all() == [dt.date(2021, 3, 5), dt.date(2021, 3, 6)]


def test_a_layer_exported_as_xlsx_reads_back_the_same(conn: sa.Connection, settings: Settings,
                                                      tmp_path: Path) -> None:
    stored = read_layer(conn, get_layer("elder_care")).head(40)
    path = write_export(stored, tmp_path / "elder_care.xlsx", fmt="xlsx", layer_name="elder_care")
    sheet = openpyxl.load_workbook(path).active
    assert sheet.title == "elder_care"
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["id", "name", "kind"] and header[-2:] == ["lon", "lat"]
    assert [c.value for c in sheet["B"][1:4]] == list(stored["name"][:3])
    conn.execute(sa.text("DELETE FROM elder_care WHERE id = ANY(:ids)"), {"ids": list(stored["id"])})
    import_into(conn, settings, "elder_care", path)
    back = read_layer(conn, get_layer("elder_care")).set_index("id").loc[list(stored["id"])]
    assert list(back["name"]) == list(stored["name"]) and list(back["beds"]) == list(stored["beds"])
    assert back.geometry.geom_equals_exact(stored.set_index("id").geometry, tolerance=1e-7).all()


def test_xlsx_cells_never_hold_formulas(conn: sa.Connection, tmp_path: Path) -> None:
    texts = ['=HYPERLINK("http://evil.example","点我")', "+86 023 7666", "-1 号", "@SUM(A1)", "#N/A"]
    stored = read_layer(conn, get_layer("elder_care")).head(len(texts))
    stored["name"] = texts
    path = write_export(stored, tmp_path / "x.xlsx", fmt="xlsx", layer_name="elder_care")
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and 't="e"' not in xml
    cells = openpyxl.load_workbook(path).active["B"][1:]
    assert [c.value for c in cells] == texts and {c.data_type for c in cells} == {"s"}
    assert [c.quotePrefix for c in cells] == [True, True, True, True, False]


def test_dates_stay_dates_in_geopackage_shapefile_and_xlsx(conn: sa.Connection, tmp_path: Path) -> None:
    stored = read_layer(conn, get_layer("boundary_markers")).head(5)
    expected = list(stored["set_on"])
    for fmt in ("gpkg", "shp"):
        path = write_export(stored, tmp_path / f"markers.{fmt}", fmt=fmt, layer_name="boundary_markers")
        info = pyogrio.read_info(path)
        assert info["ogr_types"][list(info["fields"]).index("set_on")] == "OFTDate", fmt
        assert [d.date() for d in pyogrio.read_dataframe(path)["set_on"]] == expected, fmt
    path = write_export(stored, tmp_path / "markers.xlsx", fmt="xlsx", layer_name="boundary_markers")
    sheet = openpyxl.load_workbook(path).active
    column = [c.value for c in sheet[1]].index("set_on")
    cells = [row[column] for row in sheet.iter_rows(min_row=2)]
    assert [c.value.date() for c in cells] == expected and cells[0].number_format == "yyyy-mm-dd"


def test_the_boundary_package_keeps_dates_in_geopackage_and_shapefile(conn: sa.Connection, tmp_path: Path) -> None:
    from gis_service.io.boundary_export import Selection, export_boundaries

    content, _, _ = export_boundaries(conn, Selection(line="500241-500242"), fmt="gpkg", measure_srid=4545)
    (tmp_path / "b.gpkg").write_bytes(content)
    info = pyogrio.read_info(tmp_path / "b.gpkg", layer="boundary_markers")
    assert info["ogr_types"][list(info["fields"]).index("set_on")] == "OFTDate"
    content, _, _ = export_boundaries(conn, Selection(line="500241-500242"), fmt="geojson", measure_srid=4545)
    assert b'"set_on": "20' in content  # GeoJSON has no dates: ISO text


def test_every_csv_the_service_writes_starts_with_a_bom(runner: CliRunner, conn: sa.Connection,
                                                        tmp_path: Path) -> None:
    from gis_service.io.placenames_export import place_name_records, write_place_names

    layer_csv = write_export(read_layer(conn, get_layer("elder_care")).head(3), tmp_path / "layer.csv", fmt="csv",
                             layer_name="elder_care")
    gazetteer_csv = write_place_names(place_name_records(conn)[:3], tmp_path / "gazetteer.csv", fmt="csv")
    result = runner.invoke(app, ["analyse", "indicators", "--out", str(tmp_path / "indicators.csv")])
    assert result.exit_code == 0, result.output
    for path in (layer_csv, gazetteer_csv, tmp_path / "indicators.csv"):
        assert path.read_bytes().startswith("\ufeff".encode()), path.name
        assert "秀山" in path.read_text(encoding="utf-8-sig") or "养老" in path.read_text(encoding="utf-8-sig")


def test_analyses_write_xlsx(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["analyse", "indicators", "--out", str(tmp_path / "indicators.xlsx")])
    assert result.exit_code == 0, result.output
    rows = list(openpyxl.load_workbook(tmp_path / "indicators.xlsx").active.iter_rows(values_only=True))
    header = rows[0]
    assert len(rows) == 1 + 10 and "title_zh" in header
    titles = [row[header.index("title_zh")] for row in rows[1:]]
    assert any("护理型床位" in title for title in titles)


def test_a_gbk_shapefile_for_old_desktop_tools(runner: CliRunner, conn: sa.Connection, settings: Settings,
                                               tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "elder_care", "--format", "shp", "--encoding", "gbk",
                                 "--out", str(tmp_path / "elder_care.shp")])
    assert result.exit_code == 0, result.output
    dbf = (tmp_path / "elder_care.dbf").read_bytes()
    assert (tmp_path / "elder_care.cpg").read_text() == "936" and dbf[29] == 0x4D
    names = conn.execute(sa.text("SELECT name FROM elder_care ORDER BY id")).scalars().all()
    assert names[0].encode("gbk") in dbf and names[0].encode("utf-8") not in dbf
    # what the service reads back from it, as a desktop tool would, honouring the .cpg
    frame = pyogrio.read_dataframe(tmp_path / "elder_care.shp", encoding="CP936")
    assert list(frame["name"]) == names


def test_text_gbk_cannot_hold_is_refused_not_replaced(conn: sa.Connection, tmp_path: Path) -> None:
    stored = read_layer(conn, get_layer("elder_care")).head(3)
    stored.loc[stored.index[1], "name"] = "𠮷溪村农村幸福院"
    with pytest.raises(InvalidInputError, match="row 2, name: '𠮷溪村农村幸福院' holds '𠮷', which GBK cannot hold"):
        write_export(stored, tmp_path / "x.shp", fmt="shp", layer_name="elder_care", encoding="gbk")
    assert not (tmp_path / "x.shp").exists()
