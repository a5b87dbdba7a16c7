"""Placing facilities by their address or village (io/geocode.py, ``import --geocode``)."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

from gis_service.errors import ImportRejected, InvalidInputError
from gis_service.io.geocode import Gazetteer, Place, geocode
from gis_service.io.layers_io import import_into
from gis_service.settings import Settings

from .helpers import fingerprint

SHIDI, XIKOU, QXC = "500241107000", "500241115000", "500241005000"
GAOQIAO, XINHUA_CUN, XINHUA_SQ, LONGFENG = "500241107201", "500241115201", "500241107001", "500241005201"


def _hand_made() -> Gazetteer:
    """Three townships (one with a former name), four villages (two short names alike), settlements and a road,
    each at its own point."""
    def place(name, kind, village, township, x, standard=""):
        return Place(name, kind, village, township, 109.0 + x / 100, 28.4, standard=standard)

    return Gazetteer(
        county_names=("秀山土家族苗族自治县", "秀山"),
        townships=[place("石堤镇", "township", "", SHIDI, 0), place("溪口镇", "township", "", XIKOU, 1),
                   place("清溪场街道", "township", "", QXC, 2), place("孝溪乡", "township", "", QXC, 2, "清溪场街道")],
        villages=[place("高桥村", "village", GAOQIAO, SHIDI, 3), place("新华社区", "village", XINHUA_SQ, SHIDI, 4),
                  place("石堤社区", "village", "500241107002", SHIDI, 13),
                  place("新华村", "village", XINHUA_CUN, XIKOU, 5), place("龙凤村", "village", LONGFENG, QXC, 6)],
        leaves=[place("张家寨", "settlement", GAOQIAO, SHIDI, 7), place("张家寨", "settlement", XINHUA_CUN, XIKOU, 8),
                place("李家湾", "settlement", GAOQIAO, SHIDI, 9),
                place("高桥村张家寨便道", "road", GAOQIAO, SHIDI, 10),
                place("梅江新村", "settlement", XINHUA_SQ, SHIDI, 11),
                place("满家岭", "settlement", LONGFENG, QXC, 12)])


@pytest.mark.parametrize(("text", "village", "precision", "x"), [
    ("重庆市秀山土家族苗族自治县石堤镇高桥村张家寨", GAOQIAO, "settlement", 7),
    ("秀山石堤高桥3组张家寨15号", GAOQIAO, "settlement", 7),
    ("秀山县 石堤镇，高桥村 李家湾（附2号）", GAOQIAO, "settlement", 9),
    ("石堤乡高桥村李家湾", GAOQIAO, "settlement", 9),  # the wrong generic for 石堤镇
    ("石堤镇高乔村张家寨", GAOQIAO, "settlement", 7),  # one character mistyped in the village
    ("石堤镇高桥村李佳湾", GAOQIAO, "settlement", 9),  # ... and in the settlement
    ("溪口镇新华村五社张家寨", XINHUA_CUN, "settlement", 8),
    ("石堤镇高桥村张家寨便道8号", GAOQIAO, "road", 10),
    ("梅江新村", XINHUA_SQ, "settlement", 11),  # a name found once in the county
    ("孝溪乡龙凤村满家岭", LONGFENG, "settlement", 12),  # a former township's name
    ("高桥村", GAOQIAO, "village", 3),
    ("溪口镇新华", XINHUA_CUN, "village", 5),
    ("石堤镇高桥村一组", GAOQIAO, "village", 3),
])
def test_addresses_written_every_way_are_placed(text: str, village: str, precision: str, x: int) -> None:
    found = geocode(text, _hand_made())
    assert (found.village_code, found.precision, found.problem) == (village, precision, None)
    assert found.point == (109.0 + x / 100, 28.4)


@pytest.mark.parametrize(("text", "problem"), [
    ("张家寨", "can be placed more than one way: 张家寨 in 高桥村 (500241107201); 张家寨 in 新华村 (500241115201); "
              "add the township or village to tell them apart"),
    ("新华", "can be placed more than one way: 新华社区 in 新华社区 (500241107001); 新华村 in 新华村 (500241115201)"),
    ("石堤镇", "cannot be placed: only the township 石堤镇 is recognised; write the village"),
    ("秀山县石堤镇", "cannot be placed: only the township 石堤镇 is recognised"),  # not the village 石堤社区
    ("北京市朝阳区建国路88号", "cannot be placed: no township, village, settlement or road of the county"),
])
def test_what_cannot_be_placed_one_way_says_why(text: str, problem: str) -> None:
    found = geocode(text, _hand_made())
    assert found.point is None and problem in found.problem


# -- importing with --geocode ----------------------------------------------------------------------------------------

def _settlements(conn: sa.Connection) -> list[sa.Row]:
    """Settlements whose name is found once in their township but more than once in the county, with their
    village, township and point."""
    return conn.execute(sa.text(
        "SELECT s.name, v.code, v.name AS village, t.name AS township, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat "
        "FROM settlements s JOIN admin_divisions v ON v.code = s.village_code AND v.valid_to IS NULL "
        "JOIN admin_divisions t ON t.code = v.parent_code AND t.valid_to IS NULL "
        "WHERE (SELECT count(*) FROM settlements o WHERE o.name = s.name) > 1 "
        "AND (SELECT count(*) FROM settlements o WHERE o.name = s.name AND left(o.village_code, 9) = "
        "left(s.village_code, 9)) = 1 ORDER BY s.id LIMIT 3")).all()


def _list(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = ["name,kind,operator,beds,地址"] + [f"{name},rural_happiness_home,government,10,{address}"
                                               for name, address in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_facility_list_with_addresses_is_placed_and_every_unplaceable_row_listed(
        conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    a, b, c = _settlements(conn)
    road = conn.execute(sa.text("SELECT p.name, v.code FROM place_names p JOIN admin_divisions v ON v.level = "
                                "'village' AND v.valid_to IS NULL AND ST_Intersects(v.geom, p.geom) WHERE "
                                "p.category = 'road' AND p.name LIKE '%街' ORDER BY p.id LIMIT 1")).one()
    rows = [("甲幸福院", f"秀山县{a.township}{a.village}3组{a.name}"),
            ("乙幸福院", f"{b.township}{b.name}12号"),
            ("丙幸福院", f"秀山县{road.name}8号"),
            ("丁幸福院", f"{c.township}{c.village}"),  # the village only
            ("戊幸福院", f"{a.name}"),  # found in several villages
            ("己幸福院", "北京市朝阳区建国路88号")]
    path = _list(tmp_path / "幸福院.csv", rows)
    before = fingerprint(conn)
    with pytest.raises(ImportRejected) as caught:
        import_into(conn, settings, "elder_care", path, geocode=True)
    message = str(caught.value)
    assert "3 of 6 rows have problems; nothing was written" in message
    assert f"row 4, 地址: '{c.township}{c.village}' is placed only at the village" in message
    assert "--allow-approximate" in message
    assert f"row 5, 地址: '{a.name}' can be placed more than one way: {a.name} in " in message
    assert "row 6, 地址: '北京市朝阳区建国路88号' cannot be placed" in message
    assert fingerprint(conn) == before

    result, notes = import_into(conn, settings, "elder_care", _list(tmp_path / "ok.csv", rows[:4]), geocode=True,
                                allow_approximate=True)
    assert result.rows_written == 4
    assert "rows placed by their address: 2 at a settlement, 1 on a road, 1 at their village (approximate)" in notes
    stored = conn.execute(sa.text("SELECT name, location_precision, division_code, ST_X(geom), ST_Y(geom) "
                                  "FROM elder_care ORDER BY id DESC LIMIT 4")).all()[::-1]
    assert [(s[0], s[1], s[2]) for s in stored] == [
        ("甲幸福院", "settlement", a.code), ("乙幸福院", "settlement", b.code), ("丙幸福院", "road", road.code),
        ("丁幸福院", "village", c.code)]
    assert stored[0][3:] == pytest.approx((a.lon, a.lat)) and stored[1][3:] == pytest.approx((b.lon, b.lat))


def test_a_sheet_with_township_and_village_columns(conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    a, b, _ = _settlements(conn)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["name", "kind", "operator", "所在乡镇（街道）", "所在村（社区）", "地址", "lon", "lat"])
    sheet.append(["甲幸福院", "rural_happiness_home", "government", a.township, a.village, a.name, None, None])
    sheet.append(["乙幸福院", "rural_happiness_home", "private", None, None, None, b.lon, b.lat])
    path = tmp_path / "list.xlsx"
    workbook.save(path)
    import_into(conn, settings, "elder_care", path, geocode=True)
    stored = conn.execute(sa.text("SELECT name, location_precision, division_code FROM elder_care "
                                  "ORDER BY id DESC LIMIT 2")).all()[::-1]
    assert stored == [("甲幸福院", "settlement", a.code), ("乙幸福院", None, None)]


def test_geocoding_is_for_facilities_and_is_asked_for(conn: sa.Connection, settings: Settings,
                                                      tmp_path: Path) -> None:
    path = _list(tmp_path / "x.csv", [("甲", "石堤镇")])
    with pytest.raises(InvalidInputError, match="--geocode places facilities \\(cemeteries, elder_care, "
                                                "community_centres\\); settlements needs coordinates"):
        import_into(conn, settings, "settlements", path, geocode=True)
    with pytest.raises(InvalidInputError, match="needs lon and lat columns \\(or a wkt column\\); or pass --geocode"):
        import_into(conn, settings, "elder_care", path)
