"""The bureau's files in Chinese: headers by title or synonym (名称, 床位数(张), 经度/东经 ...), values by label or
alias (敬老院, 公建民营, 是/否, 2021年3月5日), bad values named with what would be right, and ``--labels zh``
exports that import back unchanged, layer by layer."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gis_service.cli import app
from gis_service.errors import ImportRejected, InvalidInputError
from gis_service.io.files import write_export
from gis_service.io.layers_io import import_into, read_layer
from gis_service.layers import LAYERS, get_layer
from gis_service.settings import Settings

from .helpers import fingerprint

#: A community of 中和街道 and points inside it.
COMMUNITY = "500241001006"
LON, LAT = 108.9950, 28.4480


def excel_csv(path: Path, rows: list[list[object]]) -> Path:
    """A CSV as Excel on Chinese Windows saves one ("CSV (逗号分隔)"): GBK, CRLF line ends, no BOM."""
    lines = [",".join("" if v is None else str(v) for v in row) for row in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    return path


def titled_sheet(path: Path, rows: list[list[object]], *, title: str) -> Path:
    """A workbook as an office fills one in: a merged title row, a row saying who filled it in, then the table."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append([title])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(rows[0]))
    sheet.append(["填报单位：秀山县民政局"])
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def _stored(conn: sa.Connection, sql: str) -> list[tuple]:
    return [tuple(row) for row in conn.execute(sa.text(sql))]


def test_a_gbk_csv_from_excel_with_chinese_headers_and_values(conn: sa.Connection, settings: Settings,
                                                              tmp_path: Path) -> None:
    path = excel_csv(tmp_path / "养老机构名单.csv", [
        ["序号", "机构名称", "类型", "床位数（张）", "护理型床位", "运营方式", "是否具备综合功能", "所属区划代码",
         "经度", "纬度"],
        [1, "中和街道敬老院", "敬老院", 60, 30, "公办", "是", COMMUNITY, LON, LAT],
        [2, "凤凰村幸福院", "农村幸福院", 8, 0, "公建民营", "否", COMMUNITY, LON + 0.001, LAT],
        [3, "凤凰社区日间照料中心", "日间照料中心", 12, 2, "民营", "有", COMMUNITY, LON, LAT + 0.001],
    ])
    result, notes = import_into(conn, settings, "elder_care", path)
    assert result.rows_written == 3 and "GB18030" in notes
    assert _stored(conn, "SELECT name, kind, beds, nursing_beds, operator, comprehensive, division_code "
                         "FROM elder_care ORDER BY id DESC LIMIT 3")[::-1] == [
        ("中和街道敬老院", "township_home", 60, 30, "government", True, COMMUNITY),
        ("凤凰村幸福院", "rural_happiness_home", 8, 0, "public_private", False, COMMUNITY),
        ("凤凰社区日间照料中心", "community_station", 12, 2, "private", True, COMMUNITY),
    ]


def test_an_xlsx_with_a_title_row_and_chinese_headers(conn: sa.Connection, settings: Settings,
                                                      tmp_path: Path) -> None:
    path = titled_sheet(tmp_path / "殡葬设施.xlsx", [
        ["名称", "类别", "城乡", "是否公益性", "容量(穴)", "已用(穴)", "现状", "东经", "北纬"],
        ["凤凰村公益性公墓", "公益性墓地", "农村", "是", 500, 120, "在用", LON, LAT],
        ["中和殡葬服务站", "殡仪服务站", "城镇", "否", None, None, "规划", LON + 0.001, LAT],
    ], title="秀山县殡葬设施统计表")
    result, notes = import_into(conn, settings, "cemeteries", path)
    assert result.rows_written == 2 and "header in row 3" in notes
    assert _stored(conn, "SELECT name, kind, urban_rural, public_welfare, capacity, graves_used, status "
                         "FROM cemeteries ORDER BY id DESC LIMIT 2")[::-1] == [
        ("凤凰村公益性公墓", "public_welfare_cemetery", "rural", True, 500, 120, "existing"),
        ("中和殡葬服务站", "funeral_service_station", "urban", False, None, None, "planned"),
    ]


@pytest.mark.parametrize("written", ["2021-03-05", "2021/3/5", "2021.3.5", "2021年3月5日"])
def test_marker_records_with_dates_as_people_write_them(conn: sa.Connection, settings: Settings, tmp_path: Path,
                                                        written: str) -> None:
    line = conn.execute(sa.text("SELECT code FROM boundary_lines ORDER BY code LIMIT 1")).scalar_one()
    path = excel_csv(tmp_path / "界桩.csv", [
        ["界桩编号", "界桩类型", "所属界线", "材质", "埋设日期", "状况", "经度", "纬度"],
        [f"{line}-991Q", "单立", line, "花岗岩", written, "破损", LON, LAT],
        [f"{line}-992A", "A", line, "钢筋混凝土", written, "完好", LON + 0.001, LAT],
    ])
    import_into(conn, settings, "boundary_markers", path)
    assert _stored(conn, "SELECT number, marker_type, material, set_on, condition FROM boundary_markers "
                         f"WHERE number LIKE '{line}-99%' ORDER BY number") == [
        (f"{line}-991Q", "Q", "granite", dt.date(2021, 3, 5), "damaged"),
        (f"{line}-992A", "A", "concrete", dt.date(2021, 3, 5), "intact"),
    ]


@pytest.mark.parametrize(("yes", "no"), [("是", "否"), ("有", "无"), ("true", "false"), ("1", "0"), ("TRUE", "FALSE")])
def test_yes_and_no_as_people_write_them(conn: sa.Connection, settings: Settings, tmp_path: Path, yes: str,
                                         no: str) -> None:
    path = excel_csv(tmp_path / "社区服务设施.csv", [
        ["名称", "建筑面积（平方米）", "志愿服务站点", "未成年人保护工作站", "区划代码", "lng", "lat"],
        ["凤凰社区综合服务站", 320.5, yes, no, COMMUNITY, LON, LAT],
    ])
    import_into(conn, settings, "community_centres", path)
    assert _stored(conn, "SELECT name, floor_area_m2, volunteer_point, minor_protection_station "
                         "FROM community_centres ORDER BY id DESC LIMIT 1") == [
        ("凤凰社区综合服务站", 320.5, True, False)]


@pytest.mark.parametrize(("cell", "said"), [
    ("养老公寓", "'养老公寓' is not one of: welfare_institution (社会福利机构), township_home (敬老院), "
                "community_station (社区养老服务站), rural_happiness_home (农村幸福院) (the Chinese label or the "
                "code)"),
    ("spaceport", "'spaceport' is not one of: welfare_institution (社会福利机构)"),
])
def test_a_value_that_names_nothing_is_a_bad_row_listing_the_accepted_ones(
        conn: sa.Connection, settings: Settings, tmp_path: Path, cell: str, said: str) -> None:
    path = excel_csv(tmp_path / "养老机构.csv", [
        ["名称", "类型", "运营方式", "床位", "经度", "纬度"],
        ["中和街道敬老院", "敬老院", "公办", 60, LON, LAT],
        ["中和养老公寓", cell, "公办民营办", "很多", LON, LAT],
    ])
    before = fingerprint(conn)
    with pytest.raises(ImportRejected) as rejected:
        import_into(conn, settings, "elder_care", path)
    problems = {(p.row, p.field): p.message for p in rejected.value.problems}
    assert set(problems) == {(2, "kind"), (2, "operator"), (2, "beds")}
    assert said in problems[(2, "kind")]
    assert problems[(2, "operator")].startswith("'公办民营办' is not one of: government (公办), private (民办), "
                                                "public_private (公建民营)")
    assert problems[(2, "beds")] == "'很多' is not a whole number"
    assert fingerprint(conn) == before


def test_a_label_two_values_share_asks_which(conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    line = conn.execute(sa.text("SELECT code FROM boundary_lines ORDER BY code LIMIT 1")).scalar_one()
    path = excel_csv(tmp_path / "界桩.csv", [["界桩编号", "类型", "所属界线", "经度", "纬度"],
                                             [f"{line}-993A", "同号双立", line, LON, LAT]])
    with pytest.raises(ImportRejected) as rejected:
        import_into(conn, settings, "boundary_markers", path)
    assert [(p.field, p.message) for p in rejected.value.problems] == [
        ("marker_type", "'同号双立' is the label of A and B: write the one meant")]


@pytest.mark.parametrize("headers", [["名称", "机构名称"], ["name", "名字"], ["床位", "床位数(张)"]])
def test_two_columns_for_one_field_are_refused(conn: sa.Connection, settings: Settings, tmp_path: Path,
                                               headers: list[str]) -> None:
    path = excel_csv(tmp_path / "两列.csv", [[*headers, "类型", "运营方式", "经度", "纬度"],
                                             ["10", "20", "敬老院", "公办", LON, LAT]])
    spec = get_layer("elder_care").field_for_header(headers[0])
    before = fingerprint(conn)
    with pytest.raises(InvalidInputError, match=re.escape(f"the columns '{headers[0]}' and '{headers[1]}' both name "
                       f"the field {spec.name} ({spec.title_zh}) of elder_care: keep one, or rename the other")):
        import_into(conn, settings, "elder_care", path)
    assert fingerprint(conn) == before


def test_an_unknown_column_is_named_with_the_fields_in_both_languages(conn: sa.Connection, settings: Settings,
                                                                      tmp_path: Path) -> None:
    path = excel_csv(tmp_path / "养老机构.csv", [["名称", "类型", "运营方式", "负责人", "经度", "纬度"],
                                                ["中和街道敬老院", "敬老院", "公办", "张三", LON, LAT]])
    with pytest.raises(ImportRejected) as rejected:
        import_into(conn, settings, "elder_care", path)
    (problem,) = rejected.value.problems
    assert problem.field == "负责人"
    assert problem.message.startswith("unknown field; the fields of elder_care are name (名称), kind (类型), "
                                      "beds (床位)")


# -- --labels zh: out in Chinese and back unchanged ---------------------------------------------------------------

#: Per layer with enumerated values: which of its features to send out and back (the first 60 of them).
ROUND_TRIPS = {
    "elder_care": "TRUE",
    "cemeteries": "TRUE",
    "community_centres": "TRUE",
    "roads": "TRUE",
    "place_names": "status <> 'current' OR id % 7 = 0",
    "boundary_markers": "TRUE",
    "boundary_lines": "TRUE",
    "admin_divisions": "level = 'village'",
}


def _delete_with_referrers(conn: sa.Connection, layer_id: str, chosen: list[int]) -> None:
    """Delete the features ``chosen`` of ``layer_id``, and first the features of other layers that refer to them
    (all rolled back after the test)."""
    layer = get_layer(layer_id)
    for other in LAYERS.values():
        for spec in other.fields:
            if spec.references is not None and spec.references.layer == layer_id and other.id != layer_id:
                conn.execute(sa.text(f"DELETE FROM {other.table} WHERE {spec.name} IN (SELECT "
                                     f"{spec.references.field} FROM {layer.table} WHERE id = ANY(:ids))"),
                             {"ids": chosen})
    conn.execute(sa.text(f"DELETE FROM {layer.table} WHERE id = ANY(:ids)"), {"ids": chosen})


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("layer_id", list(ROUND_TRIPS))
def test_a_layer_exported_in_chinese_is_imported_back_unchanged(conn: sa.Connection, settings: Settings,
                                                                tmp_path: Path, layer_id: str, fmt: str) -> None:
    layer = get_layer(layer_id)
    chosen = conn.execute(sa.text(f"SELECT id FROM {layer.table} WHERE {ROUND_TRIPS[layer_id]} ORDER BY id "
                                  "LIMIT 60")).scalars().all()
    stored = read_layer(conn, layer).set_index("id").loc[chosen].reset_index()
    path = write_export(stored, tmp_path / f"{layer_id}.{fmt}", fmt=fmt, layer_name=layer_id, labels="zh")

    table = pd.read_csv(path, dtype=str, encoding="utf-8-sig") if fmt == "csv" else pd.read_excel(path, dtype=str)
    titles = [spec.title_zh for spec in layer.fields]
    assert [c for c in table.columns if c not in ("id", "经度", "纬度", "wkt")] == titles
    for spec in layer.fields:
        if spec.values is not None and not all(v.label_zh == v.code for v in spec.values) \
                and stored[spec.name].notna().any():
            written = set(table[spec.title_zh].dropna())
            assert written <= {spec.written_label(v.code) for v in spec.values}
            assert any(label not in (spec.codes or ()) for label in written), f"{spec.name} written as codes"
        if spec.type == "boolean":
            assert set(table[spec.title_zh].dropna()) <= {"是", "否"}

    _delete_with_referrers(conn, layer_id, chosen)
    import_into(conn, settings, layer_id, path)
    back = read_layer(conn, layer).set_index("id").loc[chosen]
    before = stored.set_index("id")
    for spec in layer.fields:
        if spec.computed:
            assert back[spec.name].to_numpy() == pytest.approx(before[spec.name].to_numpy(), abs=0.011)  # to cm
        else:
            assert _cells(back[spec.name]) == _cells(before[spec.name]), spec.name
    assert back.geometry.geom_equals_exact(before.geometry, tolerance=1e-7).all()


def _cells(column: pd.Series) -> list:
    """The values of a column as compared across a round trip: missing as None, lists as tuples."""
    return [None if not isinstance(v, (list, tuple)) and pd.isna(v) else tuple(v) if isinstance(v, list) else v
            for v in column]


def test_the_export_command_writes_chinese_and_refuses_it_where_tools_need_codes(runner: CliRunner,
                                                                                 tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "elder_care", "--format", "csv", "--labels", "zh",
                                 "--out", str(tmp_path / "养老.csv")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "养老.csv", dtype=str, encoding="utf-8-sig")
    assert list(table.columns[:4]) == ["id", "名称", "类型", "床位"] and list(table.columns[-2:]) == ["经度", "纬度"]
    assert "敬老院" in set(table["类型"]) and set(table["运营方式"]) <= {"公办", "民办", "公建民营"}
    refused = runner.invoke(app, ["export", "elder_care", "--format", "gpkg", "--labels", "zh",
                                  "--out", str(tmp_path / "养老.gpkg")])
    assert refused.exit_code == 1 and "--labels zh applies to csv and xlsx exports" in str(refused.exception)
    assert not (tmp_path / "养老.gpkg").exists()


@pytest.mark.parametrize(("command", "known"), [
    (["coverage", "--group-by", "township"], {"层级": {"乡级"}, "设施图层": {"养老服务设施"}}),
    (["service-areas", "--kind", "township_home"], {"类型": {"敬老院"}}),
    (["facility-area", "--level", "township"], {"是否达标": {"是", "否"}}),
    (["indicators"], {}),
    (["site-suggestions", "--k", "2", "--max-candidates", "200"], {"出行方式": {"walk"}}),
])
def test_analysis_tables_in_chinese(runner: CliRunner, tmp_path: Path, command: list[str],
                                    known: dict[str, set[str]]) -> None:
    out = tmp_path / "结果.xlsx"
    result = runner.invoke(app, ["analyse", *command, "--out", str(out), "--labels", "zh"])
    assert result.exit_code == 0, result.output
    table = pd.read_excel(out, dtype=str)
    assert len(table) > 0
    assert [h for h in table.columns if not re.search("[\u4e00-\u9fff]", h)] == []  # every header in Chinese
    for header, values in known.items():
        assert set(table[header].dropna()) <= values and set(table[header].dropna()), header
