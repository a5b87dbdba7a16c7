"""Files in the encodings a county bureau's tools write are read as written, never garbled (io/encodings.py).

The files are made the way old ArcGIS/MapGIS and Excel on Chinese Windows make them: a Shapefile whose DBF is GBK
with no .cpg and language-driver byte 0 (GDAL alone reads 梅江新村 from it as ``Ã·½­ÐÂ´å``), CSV saved as GBK with
CRLF line ends, UTF-8 with a byte-order mark, GB18030 holding characters GBK lacks; Big5 and Latin-1 files are
refused with a message naming --encoding.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
import sqlalchemy as sa

from gis_service.errors import InvalidInputError
from gis_service.io.encodings import choose, dbf_decoding
from gis_service.io.layers_io import import_into
from gis_service.search.queries import SearchFilters, search
from gis_service.settings import Settings

from .helpers import NEAR_SEAT, fingerprint

pytestmark = pytest.mark.filterwarnings("ignore:.*Normalized/laundered field name")

NAMES = ["梅江新村", "清溪场街道", "龙凤坝镇敬老院"]
GARBLED = "Ã·½\xadÐÂ´å"  # 梅江新村's GBK bytes read as ISO-8859-1: what GDAL stores without help


def _place_names(names: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": names, "category": "settlement", "division_code": "500241001001"},
                            geometry=[shapely.Point(NEAR_SEAT[0] + i * 1e-4, NEAR_SEAT[1]) for i in range(len(names))],
                            crs=4490)


def gbk_shapefile(folder: Path, names: list[str], *, language_driver: int = 0x00, cpg: str | None = None,
                  encoding: str = "GBK") -> Path:
    """A Shapefile of place names whose DBF holds ``encoding`` bytes, with ``language_driver`` in header byte 29 and
    a .cpg only when ``cpg`` is given: as ArcGIS 9 and MapGIS write them."""
    folder.mkdir(exist_ok=True)
    path = folder / "place_names.shp"
    pyogrio.write_dataframe(_place_names(names), path, encoding=encoding)
    path.with_suffix(".cpg").unlink()
    if cpg is not None:
        path.with_suffix(".cpg").write_text(cpg, encoding="ascii")
    with open(path.with_suffix(".dbf"), "r+b") as dbf:
        dbf.seek(29)
        dbf.write(bytes([language_driver]))
    return path


def _stored(conn: sa.Connection, n: int) -> list[str]:
    names = conn.execute(sa.text("SELECT name FROM place_names ORDER BY id DESC LIMIT :n"), {"n": n}).scalars().all()
    return names[::-1]


def test_gdal_alone_garbles_the_gbk_shapefile(tmp_path: Path) -> None:
    """The failure this module exists for: without the encoding, GDAL reads the names as Latin-1."""
    path = gbk_shapefile(tmp_path / "shp", NAMES)
    assert pyogrio.read_dataframe(path)["name"][0] == GARBLED


def test_a_gbk_shapefile_without_code_page_is_stored_searched_and_exported_as_written(
        conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    path = gbk_shapefile(tmp_path / "shp", NAMES)
    result, notes = import_into(conn, settings, "place_names", path)
    assert result.rows_written == 3
    assert "text read as GB18030: the file is not valid UTF-8 and has no .cpg or code page" in notes
    assert _stored(conn, 3) == NAMES
    found = search(conn, "梅江新村", SearchFilters(), measure_srid=settings.measure_srid)
    assert found["features"][0]["properties"]["name"] == "梅江新村"
    assert conn.execute(sa.text("SELECT count(*) FROM place_names WHERE name LIKE '%Ã%'")).scalar_one() == 0

    from gis_service.io.files import write_export
    from gis_service.io.layers_io import read_layer
    from gis_service.layers import get_layer

    stored = read_layer(conn, get_layer("place_names")).tail(3)
    exported = write_export(stored, tmp_path / "out.csv", fmt="csv", layer_name="place_names")
    assert exported.read_bytes().startswith(b"\xef\xbb\xbf")
    with exported.open(encoding="utf-8-sig") as handle:
        assert [row["name"] for row in csv.DictReader(handle)] == NAMES
    back = write_export(stored, tmp_path / "gbk.shp", fmt="shp", layer_name="place_names", encoding="gbk")
    assert list(pyogrio.read_dataframe(back, encoding="GBK")["name"]) == NAMES


@pytest.mark.parametrize(("language_driver", "cpg", "reason"), [
    (0x4D, None, "GB18030: the DBF's language driver 0x4D says GBK (code page 936)"),
    (0x7A, None, "GB18030: the DBF's language driver 0x7A says GBK (code page 936)"),
    (0x57, None, "GB18030: the file is not valid UTF-8 and has no .cpg or code page"),  # ANSI: names nothing
    (0x00, "936", "GB18030: from the .cpg beside it (936)"),
    (0x00, "GBK", "GB18030: from the .cpg beside it (GBK)"),
    (0x57, "ANSI 936", "GB18030: from the .cpg beside it (ANSI 936)"),
])
def test_the_code_page_a_shapefile_declares_is_honoured(conn: sa.Connection, settings: Settings, tmp_path: Path,
                                                        language_driver: int, cpg: str | None, reason: str) -> None:
    path = gbk_shapefile(tmp_path / "shp", NAMES, language_driver=language_driver, cpg=cpg)
    _, notes = import_into(conn, settings, "place_names", path)
    assert f"text read as {reason}" in notes
    assert _stored(conn, 3) == NAMES


def test_a_zipped_gbk_shapefile_is_read_as_written(conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    path = gbk_shapefile(tmp_path / "shp", NAMES)
    archive = tmp_path / "place_names.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for member in path.parent.iterdir():
            handle.write(member, member.name)
    _, notes = import_into(conn, settings, "place_names", archive)
    assert "GB18030" in notes and _stored(conn, 3) == NAMES


def test_a_cpg_that_does_not_fit_the_bytes_is_refused_naming_encoding(
        conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    path = gbk_shapefile(tmp_path / "shp", NAMES, cpg="UTF-8")
    before = fingerprint(conn)
    with pytest.raises(InvalidInputError) as caught:
        import_into(conn, settings, "place_names", path)
    message = str(caught.value)
    assert "place_names.dbf is not valid UTF-8 as from the .cpg beside it (UTF-8) says" in message
    assert "--encoding" in message and "codec" not in message
    assert fingerprint(conn) == before
    _, notes = import_into(conn, settings, "place_names", path, encoding="gbk")
    assert "GB18030: from --encoding gbk" in notes and _stored(conn, 3) == NAMES


def _csv(path: Path, text: str, encoding: str) -> Path:
    """A place-name CSV as Excel saves one: CRLF line ends, in ``encoding``."""
    path.write_bytes(text.replace("\n", "\r\n").encode(encoding))
    return path


def _rows(names: list[str], sep: str = ",") -> str:
    lines = [["name", "category", "division_code", "lon", "lat"]] + [
        [name, "settlement", "500241001001", str(NEAR_SEAT[0] + i * 1e-4), str(NEAR_SEAT[1])]
        for i, name in enumerate(names)]
    return "".join(sep.join(line) + "\n" for line in lines)


@pytest.mark.parametrize(("encoding", "names", "reason"), [
    ("gbk", NAMES, "GB18030: the file is not valid UTF-8 and has no .cpg or code page"),
    ("utf-8-sig", NAMES, "UTF-8: the file starts with a byte-order mark"),
    ("utf-8", NAMES, "UTF-8: the file is valid UTF-8"),
    ("gb18030", ["𠮷溪村", "㘵坝", "梅江新村"], "GB18030: the file is not valid UTF-8 and has no .cpg or code page"),
    ("utf-16", NAMES, "UTF-16: the file starts with a byte-order mark"),  # Excel's "Unicode text", tab-separated
])
def test_csv_saved_by_excel_is_read_as_written(conn: sa.Connection, settings: Settings, tmp_path: Path,
                                               encoding: str, names: list[str], reason: str) -> None:
    path = _csv(tmp_path / "names.csv", _rows(names, "\t" if encoding == "utf-16" else ","), encoding)
    result, notes = import_into(conn, settings, "place_names", path)
    assert f"text read as {reason}" in notes
    assert result.rows_written == 3 and _stored(conn, 3) == names


@pytest.mark.parametrize(("encoding", "names", "refusal"), [
    ("big5", ["梅江新村", "清溪場街道", "龍鳳壩鎮敬老院"], "probably in another encoding, such as Big5"),
    ("latin-1", ["Café Müller", "Straße à côté", "Ørsted"], "is neither UTF-8 nor GBK/GB18030 text"),
])
def test_big5_and_latin1_csv_are_refused_naming_encoding(conn: sa.Connection, settings: Settings, tmp_path: Path,
                                                         encoding: str, names: list[str], refusal: str) -> None:
    path = _csv(tmp_path / "names.csv", _rows(names), encoding)
    before = fingerprint(conn)
    with pytest.raises(InvalidInputError) as caught:
        import_into(conn, settings, "place_names", path)
    message = str(caught.value)
    assert refusal in message and "--encoding" in message
    assert "codec" not in message and "can't decode" not in message
    assert fingerprint(conn) == before
    _, notes = import_into(conn, settings, "place_names", path, encoding=encoding)
    assert f"from --encoding {encoding}" in notes and _stored(conn, 3) == names


def test_an_unknown_encoding_name_is_refused_plainly(conn: sa.Connection, settings: Settings, tmp_path: Path) -> None:
    path = _csv(tmp_path / "names.csv", _rows(NAMES), "gbk")
    with pytest.raises(InvalidInputError, match="unknown encoding 'klingon' \\(--encoding\\)"):
        import_into(conn, settings, "place_names", path, encoding="klingon")


# -- the decision alone ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "codec"), [
    (b"plain ascii", "utf-8"),
    ("梅江新村".encode(), "utf-8"),
    ("梅江新村".encode("gbk"), "gb18030"),
    ("𠮷".encode("gb18030") + "梅江".encode("gbk"), "gb18030"),
])
def test_undeclared_text_is_utf8_else_gb18030(data: bytes, codec: str) -> None:
    assert choose([data], what="t.csv").codec == codec


def test_a_dbf_written_by_hand_with_gbk_bytes_and_no_code_page() -> None:
    """A dBase III file built byte by byte (one C field, two records), as MapGIS writes it: no code page at all."""
    names = ["梅江新村".encode("gbk"), "平凯".encode("gbk")]
    header = bytes([3, 126, 1, 1]) + (2).to_bytes(4, "little") + (65).to_bytes(2, "little") \
        + (21).to_bytes(2, "little") + bytes(17) + bytes([0]) + bytes(2)
    field = b"NAME".ljust(11, b"\0") + b"C" + bytes(4) + bytes([20, 0]) + bytes(14)
    records = b"".join(b" " + name.ljust(20, b" ") for name in names)
    dbf = header + field + b"\r" + records + b"\x1a"
    decoding = dbf_decoding(dbf, name="old.dbf")
    assert decoding.codec == "gb18030"
    assert decoding.reason == "GB18030: the file is not valid UTF-8 and has no .cpg or code page"
