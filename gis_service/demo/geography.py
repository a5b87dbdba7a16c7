"""The fixed synthetic geography of the demo county: township seats, the urban area and 梅江河.

These do not depend on the seed: they are rough, hand-placed approximations of the real layout
(石堤 in the north-east where 梅江河 meets 酉水, 洪安 on the east border, 梅江 in the south, 隘口
in the north, the five 街道 around the county seat). They are labelled synthetic in every frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
from scipy.interpolate import splev, splprep

from . import geo, sources

# Township seats (lon, lat, EPSG:4490), approximate and synthetic, by 9-digit code.
# 中和街道 sits at the real county seat; the other 街道 are given as offsets (km east, km north) from it.
URBAN_SEAT_OFFSETS_KM: dict[str, tuple[float, float]] = {
    "500241001": (0.0, 0.0),  # 中和街道
    "500241002": (0.5, -2.9),  # 乌杨街道
    "500241003": (3.0, 0.4),  # 平凯街道
    "500241004": (-0.2, 3.1),  # 官庄街道
    "500241005": (-3.6, 0.6),  # 清溪场街道 (across 梅江河 from the county seat)
}
RURAL_SEATS_LONLAT: dict[str, tuple[float, float]] = {
    "500241103": (109.110, 28.735),  # 隘口镇
    "500241104": (108.935, 28.565),  # 溶溪镇
    "500241106": (108.985, 28.630),  # 龙池镇
    "500241107": (109.206, 28.772),  # 石堤镇
    "500241108": (109.140, 28.585),  # 峨溶镇
    "500241109": (109.262, 28.540),  # 洪安镇
    "500241110": (108.855, 28.570),  # 雅江镇
    "500241111": (108.865, 28.460),  # 石耶镇
    "500241112": (108.985, 28.275),  # 梅江镇
    "500241113": (108.810, 28.280),  # 兰桥镇
    "500241114": (109.150, 28.665),  # 膏田镇
    "500241115": (109.120, 28.420),  # 溪口镇
    "500241116": (109.150, 28.510),  # 妙泉镇
    "500241117": (109.230, 28.700),  # 宋农镇
    "500241118": (108.800, 28.505),  # 里仁镇
    "500241119": (108.895, 28.345),  # 钟灵镇
    "500241120": (108.905, 28.500),  # 龙凤坝镇
    "500241121": (109.205, 28.830),  # 涌洞镇
    "500241207": (109.060, 28.235),  # 海洋乡
    "500241208": (108.760, 28.540),  # 大溪乡
    "500241214": (108.825, 28.395),  # 中平乡
    "500241215": (109.050, 28.360),  # 岑溪乡
}

URBAN_AREA_RADIUS_M = 6200.0  # the five 街道 share a compact urban area of roughly 120 km2
URBAN_GRID_RADIUS_M = 3000.0  # the dense street grid around the county seat
URBAN_GRID_SPACING_M = 125.0
URBAN_GRID_ANGLE_DEG = 14.0

# 梅江河 (synthetic course): from the south border, past 梅江, just west of the county seat, out to
# the 酉水 near 石堤 in the north-east. (lon, lat) control points, the first and last outside the county.
_RIVER_CONTROL = (
    (109.045, 28.130),
    (109.025, 28.195),
    (108.990, 28.240),
    (108.958, 28.290),
    (108.945, 28.335),
    (108.952, 28.385),
    (108.966, 28.420),
    (108.974, 28.452),
    (108.980, 28.490),
    (109.010, 28.540),
    (109.060, 28.595),
    (109.110, 28.640),
    (109.160, 28.700),
    (109.195, 28.745),
    (109.240, 28.772),
    (109.300, 28.790),
)


def county_seat_metric() -> np.ndarray:
    """The county seat (中和街道's seat) in EPSG:4545 metres, shape (2,)."""
    return geo.xy_to_metric(np.array([sources.COUNTY_SEAT_LONLAT]))[0]


@lru_cache(maxsize=1)
def township_seats_metric() -> dict[str, np.ndarray]:
    """Seat of every township (9-digit code -> (x, y) in EPSG:4545 metres)."""
    seat = county_seat_metric()
    out = {code9: seat + np.array(offset) * 1000.0 for code9, offset in URBAN_SEAT_OFFSETS_KM.items()}
    lonlat = np.array(list(RURAL_SEATS_LONLAT.values()))
    for code9, xy in zip(RURAL_SEATS_LONLAT, geo.xy_to_metric(lonlat), strict=True):
        out[code9] = xy
    return dict(sorted(out.items()))


@lru_cache(maxsize=1)
def county_metric() -> shapely.Polygon:
    """The real county polygon in EPSG:4545, vertices rounded to the partition grid (1 mm)."""
    return shapely.set_precision(geo.to_metric(sources.county_polygon()), geo.GRID_M)


@lru_cache(maxsize=1)
def county_vertex_map() -> dict[tuple[float, float], tuple[float, float]]:
    """Rounded EPSG:4545 county vertex -> the original EPSG:4490 vertex."""
    original = np.asarray(sources.county_polygon().exterior.coords)
    metric = np.asarray(shapely.set_precision(shapely.linestrings(geo.xy_to_metric(original)), geo.GRID_M).coords)
    if len(metric) != len(original):  # rounding never merges vertices that are metres apart
        raise RuntimeError("county outline lost vertices when rounded to the partition grid")
    return {(float(x), float(y)): (float(lon), float(lat)) for (x, y), (lon, lat) in zip(metric, original, strict=True)}


@lru_cache(maxsize=1)
def urban_area_metric() -> shapely.Polygon:
    """The compact urban area shared by the five 街道 (a lobed disc around the county seat), EPSG:4545."""
    seat = county_seat_metric()
    theta = np.linspace(0, 2 * np.pi, 97)[:-1]
    radius = URBAN_AREA_RADIUS_M * (
        1 + 0.14 * np.sin(2 * theta + 0.7) + 0.09 * np.sin(3 * theta + 2.1) + 0.05 * np.sin(5 * theta + 0.4)
    )
    ring = seat + np.column_stack([radius * np.cos(theta), radius * np.sin(theta)])
    return shapely.set_precision(shapely.Polygon(ring), geo.GRID_M)


@lru_cache(maxsize=1)
def river_metric() -> shapely.LineString:
    """梅江河 inside the county, EPSG:4545 (a smooth synthetic course with gentle meanders)."""
    control = geo.xy_to_metric(np.array(_RIVER_CONTROL))
    tck, _ = splprep([control[:, 0], control[:, 1]], s=0, k=3)
    u = np.linspace(0, 1, 4000)
    x, y = splev(u, tck)
    dx, dy = splev(u, tck, der=1)
    pts = np.column_stack([x, y])
    seglen = np.hypot(np.diff(pts[:, 0]), np.diff(pts[:, 1]))
    s = np.concatenate([[0.0], np.cumsum(seglen)])
    normal = np.column_stack([-np.asarray(dy), np.asarray(dx)])
    normal /= np.linalg.norm(normal, axis=1)[:, None]
    meander = 180.0 * np.sin(2 * np.pi * s / 2600.0) + 90.0 * np.sin(2 * np.pi * s / 1100.0 + 1.3)
    pts = pts + normal * meander[:, None]
    line = shapely.simplify(shapely.LineString(pts), 2.0)
    inside = shapely.intersection(line, county_metric())
    parts = [p for p in shapely.get_parts(shapely.line_merge(inside)) if p.geom_type == "LineString"]
    river = max(parts, key=lambda p: p.length)
    return shapely.set_precision(river, geo.GRID_M)


def meijiang_river() -> shapely.LineString:
    """梅江河 (synthetic course) inside the county, as a LineString in EPSG:4490."""
    return geo.StorageTransform(county_vertex_map())(river_metric())
