"""The gazetteer export in the field order of the national place-name database (国家地名信息库).

Fields, in order: standard name (标准名称), Roman-alphabet spelling (罗马字母拼写), category (类别),
division (所属行政区划), location (地理位置), meaning (含义), origin (来历), history (历史沿革); then the
service's own: status, heritage listing, former names, division code, lon, lat and id.
CSV is UTF-8 with a byte-order mark (Excel opens it as UTF-8), no cell a spreadsheet would run as a formula;
XLSX (the 地名查询 page's download) has the same headers and cells, text never a formula; GeoJSON is EPSG:4326
(RFC 7946).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import sqlalchemy as sa

from gis_service.errors import InvalidInputError
from gis_service.io.csv_cells import write_rows
from gis_service.io.excel import write_sheet
from gis_service.layers.registry import GAZETTEER
from gis_service.store import exports

EXPORT_FORMATS = ("csv", "geojson")
#: The formats of a list of place names people open in a spreadsheet (the 地名查询 page's 导出).
TABLE_FORMATS = ("csv", "xlsx")

#: (field, Chinese header of the national database) in the national order.
NATIONAL_FIELDS: tuple[tuple[str, str], ...] = (
    ("standard_name", "标准名称"),
    ("roman_spelling", "罗马字母拼写"),
    ("category", "类别"),
    ("division", "所属行政区划"),
    ("location", "地理位置"),
    ("meaning", "含义"),
    ("origin", "来历"),
    ("history", "历史沿革"),
)
EXTRA_FIELDS: tuple[tuple[str, str], ...] = (
    ("status", "状态"),
    ("heritage_listed", "地名文化遗产"),
    ("former_names", "曾用名"),
    ("division_code", "区划代码"),
    ("lon", "经度"),
    ("lat", "纬度"),
    ("id", "编号"),
)

def place_name_records(conn: sa.Connection, ids: list[int] | None = None) -> list[dict]:
    """Every place name (current, historical and cancelled) as a dict in the national field order, then extras;
    with ``ids``, those place names in that order."""
    records = []
    for row in exports.gazetteer_rows(conn, ids):
        lon, lat = round(row.lon, 7), round(row.lat, 7)
        records.append({
            "standard_name": row.name,
            "roman_spelling": row.spelling or "",
            "category": GAZETTEER.field_named("category").label_of(row.category),
            "division": row.division or "",
            "location": f"{lon:.7f}, {lat:.7f}",
            "meaning": row.meaning or "",
            "origin": row.origin or "",
            "history": row.history or "",
            "status": GAZETTEER.field_named("status").label_of(row.status),
            "heritage_listed": "是" if row.heritage_listed else "否",
            "former_names": row.former_names or "",
            "division_code": row.division_code or "",
            "lon": lon,
            "lat": lat,
            "id": row.id,
        })
    if ids is not None:
        position = {place_name_id: i for i, place_name_id in enumerate(ids)}
        records.sort(key=lambda record: position[record["id"]])
    return records


def export_place_names(engine: sa.Engine, path: Path, *, fmt: str) -> tuple[Path, int]:
    """Write the gazetteer to ``path`` as CSV (Chinese headers, national order) or GeoJSON (EPSG:4326 points,
    properties in the same order). Returns the path and the number of records."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInputError(f"place names export as {' or '.join(EXPORT_FORMATS)}; got --format {fmt}")
    with engine.connect() as conn:
        records = place_name_records(conn)
    return write_place_names(records, path, fmt=fmt), len(records)


def write_place_names(records: list[dict], path: Path, *, fmt: str) -> Path:
    """Write :func:`place_name_records` to ``path`` as :func:`export_place_names` describes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = NATIONAL_FIELDS + EXTRA_FIELDS
    if fmt in TABLE_FORMATS:
        write = write_rows if fmt == "csv" else write_sheet
        write(path, [header for _, header in fields], ([record[name] for name, _ in fields] for record in records))
        return path
    features = [{
        "type": "Feature",
        "id": record["id"],
        "geometry": {"type": "Point", "coordinates": [record["lon"], record["lat"]]},
        "properties": {name: record[name] for name, _ in fields if name not in ("lon", "lat")},
    } for record in records]
    document = {"type": "FeatureCollection", "name": "place_names",
                "field_titles_zh": {name: header for name, header in fields}, "features": features}
    path.write_text(json.dumps(document, ensure_ascii=False, indent=None), encoding="utf-8")
    return path


def place_names_file(records: list[dict], *, fmt: str) -> bytes:
    """:func:`write_place_names` as the bytes of the file (for an answer sent over HTTP)."""
    with tempfile.TemporaryDirectory(prefix="gis-placenames-") as folder:
        return write_place_names(records, Path(folder) / f"place_names.{fmt}", fmt=fmt).read_bytes()
