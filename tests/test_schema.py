"""The database itself refuses bad rows, whatever path they come by."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

POINT = "SRID=4490;POINT(108.99 28.45)"


def _insert_fails(conn: sa.Connection, sql: str, params: dict, *, deferred: bool = False) -> str:
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text(sql), params)
        if deferred:
            conn.execute(sa.text("SET CONSTRAINTS ALL IMMEDIATE"))
    except DBAPIError as exc:
        savepoint.rollback()
        return str(exc.orig)
    savepoint.rollback()
    pytest.fail("the database accepted the row")


def test_self_intersecting_polygon_is_refused(conn: sa.Connection) -> None:
    message = _insert_fails(conn, "INSERT INTO admin_divisions (code, name, level, kind, parent_code, geom) VALUES "
                            "('500241999999', 'X', 'village', '村', '500241001000', "
                            "ST_GeomFromEWKT('SRID=4490;MULTIPOLYGON(((109 28.4, 109.01 28.41, 109.01 28.4, "
                            "109 28.41, 109 28.4)))'))", {})
    assert "admin_divisions_geom_valid" in message


def test_wrong_geometry_type_is_refused(conn: sa.Connection) -> None:
    message = _insert_fails(conn, "INSERT INTO settlements (name, village_code, households, geom) VALUES "
                            "('X', '500241001001', 1, ST_GeomFromEWKT('SRID=4490;LINESTRING(109 28.4, 109.1 28.5)'))",
                            {})
    assert "Geometry type (LineString) does not match column type (Point)" in message


def test_a_settlement_in_an_unknown_village_is_refused(conn: sa.Connection) -> None:
    message = _insert_fails(conn, "INSERT INTO settlements (name, village_code, households, geom) VALUES "
                            "('X', '500241999999', 1, ST_GeomFromEWKT(:p))", {"p": POINT}, deferred=True)
    assert "500241999999 is not the code of a current administrative division" in message


def test_marker_numbers_follow_line_sequence_and_type(conn: sa.Connection) -> None:
    line = conn.execute(sa.text("SELECT code FROM boundary_lines ORDER BY id LIMIT 1")).scalar_one()
    message = _insert_fails(conn, "INSERT INTO boundary_markers (number, marker_type, line_code, geom) VALUES "
                            "(:n, 'Q', :l, ST_GeomFromEWKT(:p))", {"n": f"{line}-9999A", "l": line, "p": POINT})
    assert "boundary_markers_check" in message


def test_enumerations_are_constrained(conn: sa.Connection) -> None:
    message = _insert_fails(conn, "INSERT INTO elder_care (name, kind, operator, geom) VALUES "
                            "('X', 'hotel', 'government', ST_GeomFromEWKT(:p))", {"p": POINT})
    assert "elder_care_kind_check" in message


def test_current_division_codes_are_unique_but_history_is_kept(conn: sa.Connection) -> None:
    message = _insert_fails(conn, "INSERT INTO admin_divisions (code, name, level, kind, parent_code, geom) "
                            "SELECT code, name, level, kind, parent_code, geom FROM admin_divisions "
                            "WHERE code = '500241001001'", {})
    assert "admin_divisions_current_code" in message
    historical = conn.execute(sa.text(
        "SELECT name FROM admin_divisions WHERE valid_to IS NOT NULL ORDER BY name")).scalars().all()
    assert {"清溪场镇", "孝溪乡", "涌洞乡"} <= set(historical)
