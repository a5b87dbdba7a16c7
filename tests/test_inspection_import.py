"""Field records come back in: ``gis-service import marker_inspections FILE`` updates markers all or nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gis_service.cli import app
from gis_service.errors import ImportRejected, InvalidInputError
from gis_service.io.inspections import import_inspections, parse_condition

from .helpers import fingerprint

#: Days of the inspections in the files: after every demo inspection (the last is in 2023), before today.
DAY = dt.date(2024, 3, 5)


def _markers(conn: sa.Connection, n: int) -> list[str]:
    """The numbers of ``n`` markers currently intact, by id."""
    return conn.execute(sa.text("SELECT number FROM boundary_markers WHERE condition = 'intact' "
                                "AND last_inspected < '2024-01-01' ORDER BY id LIMIT :n"), {"n": n}).scalars().all()


def _marker(conn: sa.Connection, number: str) -> tuple:
    return conn.execute(sa.text("SELECT condition, last_inspected FROM boundary_markers WHERE number = :n"),
                        {"n": number}).one()


def field_sheet(path: Path, rows: list[list]) -> Path:
    """A joint-inspection sheet as an inspection team fills it in: a title, the team line, Chinese headers."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "界桩检查记录"
    sheet.append(["秀山县—酉阳县行政区域界线联合检查界桩登记表"])
    sheet.merge_cells("A1:F1")
    sheet.append(["检查组：秀山县民政局、酉阳县民政局"])
    sheet.append(["序号", "界桩编号", "检查日期", "状况", "检查人", "备注"])
    for n, row in enumerate(rows, start=1):
        sheet.append([n, *row])
    workbook.save(path)
    return path


def test_a_field_sheet_updates_every_marker_in_one_go(conn: sa.Connection, tmp_path: Path) -> None:
    numbers = _markers(conn, 5)
    rows = [
        [numbers[0], dt.datetime(2024, 3, 5), "完好", "张明", "字迹清晰"],
        [numbers[1], "2024/3/5", "损坏", "张明", "桩体断裂，需重埋"],
        [numbers[2], "2024.3.6", "丢失", "李华", None],
        [numbers[3], "2024年3月6日", "移位", "李华", "向东偏移约2米"],
        [numbers[4], "2024-03-06", "缺失", "李华", "原址仅余基座"],
    ]
    before_audit = conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
    result = import_inspections(conn, field_sheet(tmp_path / "检查记录.xlsx", rows))
    assert (result.rows, result.markers, result.older) == (5, 5, 0)
    assert result.changed == {"damaged": 1, "missing": 2, "displaced": 1}
    assert result.unused_columns == ["序号"]
    assert [_marker(conn, n) for n in numbers] == [
        ("intact", dt.date(2024, 3, 5)), ("damaged", dt.date(2024, 3, 5)), ("missing", dt.date(2024, 3, 6)),
        ("displaced", dt.date(2024, 3, 6)), ("missing", dt.date(2024, 3, 6))]
    recorded = conn.execute(sa.text(
        "SELECT m.number, i.inspected_on, i.inspector, i.condition, i.notes FROM marker_inspections i "
        "JOIN boundary_markers m ON m.id = i.marker_id ORDER BY i.id DESC LIMIT 5")).all()[::-1]
    assert recorded[1] == (numbers[1], dt.date(2024, 3, 5), "张明", "damaged", "桩体断裂，需重埋")
    assert recorded[2][4] is None
    audit = conn.execute(sa.text("SELECT action, actor, request_id, after->>'condition' FROM audit_log "
                                 "ORDER BY id DESC LIMIT 5")).all()
    assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one() == before_audit + 5
    assert {a[0] for a in audit} == {"inspect"} and len({a[2] for a in audit}) == 1
    assert audit[0][1].endswith("(command line)") and audit[0][2].startswith("import-")


def test_an_older_record_joins_the_history_without_overwriting_newer_findings(
        conn: sa.Connection, tmp_path: Path) -> None:
    number = _markers(conn, 1)[0]
    _, last = _marker(conn, number)
    older = last - dt.timedelta(days=30)
    path = field_sheet(tmp_path / "late.xlsx", [[number, older.isoformat(), "损坏", "王强", "补录"]])
    result = import_inspections(conn, path)
    assert result.older == 1 and not result.changed
    assert _marker(conn, number) == ("intact", last)
    assert conn.execute(sa.text("SELECT count(*) FROM marker_inspections i JOIN boundary_markers m ON "
                                "m.id = i.marker_id WHERE m.number = :n AND i.inspected_on = :d"),
                        {"n": number, "d": older}).scalar_one() == 1


def test_every_bad_row_is_listed_with_what_would_be_right_and_nothing_is_written(
        conn: sa.Connection, tmp_path: Path) -> None:
    numbers = _markers(conn, 3)
    typo = numbers[0][:-4] + numbers[0][-3:]  # a digit of the sequence left out
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    rows = [
        [typo, "2024-03-05", "完好", "张明", None],
        [numbers[1], "2024-13-05", "完好", "张明", None],
        [numbers[1], "2024-03-05", "很好", "张明", None],
        [numbers[2], tomorrow.isoformat(), "完好", None, None],
        [numbers[2], "2024-03-05", "完好", "李华", None],
        [numbers[2], "2024/3/5", "损坏", "李华", None],
    ]
    before = fingerprint(conn)
    with pytest.raises(ImportRejected) as caught:
        import_inspections(conn, field_sheet(tmp_path / "bad.xlsx", rows))
    message = str(caught.value)
    assert "import into marker_inspections rejected: 5 of 6 rows have problems; nothing was written (rows are " \
           "numbered as in the sheet)" in message
    assert f"row 4, 界桩编号: '{typo}' is not the number of a boundary marker; did you mean {numbers[0]}" in message
    assert "row 5, 检查日期: '2024-13-05' is not a date: 2024-13-5 is not a day of the calendar" in message
    assert "row 6, 状况: '很好' is not a condition; write one of 完好 (intact), 损坏 (damaged), 缺失 (missing), " \
           "移位 (displaced); also" in message
    assert f"row 7, 检查日期: {tomorrow} is in the future" in message
    assert "row 7, 检查人: is empty; write who inspected, or pass --inspector NAME" in message
    assert f"row 9, 界桩编号: {numbers[2]} is recorded twice for 2024-03-05 (also row 8); keep one row" in message
    assert fingerprint(conn) == before


@pytest.mark.parametrize(("text", "code"), [
    ("完好", "intact"), ("基本完好", "intact"), ("intact", "intact"), ("Damaged", "damaged"), ("破损", "damaged"),
    ("丢失", "missing"), ("缺失", "missing"), ("灭失", "missing"), ("移位", "displaced"), ("位移", "displaced"),
    ("损坏，桩体断裂", "damaged"), ("移位 (约2米)", "displaced"),
])
def test_conditions_in_the_words_inspectors_write(text: str, code: str) -> None:
    assert parse_condition(text) == code


@pytest.mark.parametrize("text", ["很好", "无损坏", "完好损坏", "ok"])
def test_words_that_are_no_condition_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a condition; write one of 完好 \\(intact\\)"):
        parse_condition(text)


def test_gpx_waypoints_from_a_handheld(conn: sa.Connection, tmp_path: Path) -> None:
    numbers = _markers(conn, 3)
    waypoints = [
        (numbers[0], "2024-03-05T02:10:00Z", "<cmt>完好</cmt><desc>字迹清晰</desc>"),
        (numbers[1], "2024-03-05T23:30:00Z", "<cmt>移位</cmt>"),  # 07:30 on 6 March in Xiushan
        (numbers[2], "2024-03-05T03:00:00Z", "<desc>损坏，桩体倾斜</desc>"),
    ]
    lon, lat = conn.execute(sa.text("SELECT ST_X(geom), ST_Y(geom) FROM boundary_markers LIMIT 1")).one()
    points = "".join(f'<wpt lat="{lat}" lon="{lon}"><time>{time}</time><name>{name}</name>{extra}</wpt>'
                     for name, time, extra in waypoints)
    path = tmp_path / "handheld.gpx"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?><gpx version="1.1" creator="eTrex" '
                    f'xmlns="http://www.topografix.com/GPX/1/1">{points}</gpx>', encoding="utf-8")
    result = import_inspections(conn, path, inspector="巡查组")
    assert result.rows == 3
    assert [_marker(conn, n) for n in numbers] == [
        ("intact", dt.date(2024, 3, 5)), ("displaced", dt.date(2024, 3, 6)), ("damaged", dt.date(2024, 3, 5))]
    notes = conn.execute(sa.text("SELECT inspector, notes FROM marker_inspections i JOIN boundary_markers m "
                                 "ON m.id = i.marker_id WHERE m.number = :n ORDER BY i.id DESC LIMIT 1"),
                         {"n": numbers[2]}).one()
    assert notes == ("巡查组", "损坏，桩体倾斜")


def test_geojson_and_gbk_csv_records(conn: sa.Connection, tmp_path: Path) -> None:
    numbers = _markers(conn, 2)
    document = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": None,
        "properties": {"number": numbers[0], "condition": "damaged", "inspected_on": "2024-03-05",
                       "inspector": "张明", "notes": "bent"}}]}
    (tmp_path / "records.geojson").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    assert import_inspections(conn, tmp_path / "records.geojson").changed == {"damaged": 1}
    csv_path = tmp_path / "records.csv"
    csv_path.write_bytes(f"界桩编号,巡查日期,现状,巡查人\r\n{numbers[1]},2024年3月5日,丢失,李华\r\n".encode("gbk"))
    result = import_inspections(conn, csv_path)
    assert result.changed == {"missing": 1} and "GB18030" in result.note
    assert _marker(conn, numbers[1]) == ("missing", dt.date(2024, 3, 5))


def test_a_file_without_the_columns_of_a_field_record_is_refused(conn: sa.Connection, tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("名称,地址\n甲,乙\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="wrong.csv lacks the columns of a field record \\(number: marker / "
                                                "marker_number / 界桩编号; condition"):
        import_inspections(conn, path)


def test_the_command_checks_a_dry_run_and_refuses_a_bad_file(runner: CliRunner, conn: sa.Connection,
                                                             tmp_path: Path) -> None:
    numbers = _markers(conn, 2)
    good = field_sheet(tmp_path / "good.xlsx", [[numbers[0], "2024-03-05", "损坏", "张明", None],
                                               [numbers[1], "2024-03-05", "完好", "张明", None]])
    result = runner.invoke(app, ["import", "marker_inspections", str(good), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "checked (dry run, nothing written): 2 inspections of 2 markers; condition changed: 1 now 损坏 (damaged)" \
        in result.output
    assert "header in row 3; rows 1-2 above it taken for titles" in result.output
    bad = field_sheet(tmp_path / "bad.xlsx", [[numbers[0], "2024-03-05", "好像还行", "张明", None]])
    result = runner.invoke(app, ["import", "marker_inspections", str(bad)])
    assert result.exit_code == 1
    assert "row 4, 状况: '好像还行' is not a condition" in str(result.exception)
