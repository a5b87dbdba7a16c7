"""Civil-affairs facilities of the demo county: elder care (养老), cemeteries (殡葬), community centres.

Counts follow the bureau's plan (民政事业发展"十四五"规划): 33 social welfare institutions and
township homes, 62 community elder-care stations, 98 rural happiness homes; 7 public-welfare
cemeteries and burial points, one funeral home, and the planned funeral home, service station,
urban and (at least 30) rural public-welfare cemeteries; one service centre per village-level unit.
Locations, names, beds, areas and ratings are synthetic.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from . import geo
from .divisions import Layout

WELFARE_AND_TOWNSHIP_HOMES = 33
COMMUNITY_STATIONS = 62
RURAL_HAPPINESS_HOMES = 98
EXISTING_PUBLIC_BURIAL = 7  # public-welfare cemeteries and central burial points built by 2020
PLANNED_RURAL_CEMETERIES = 32  # the plan: at least 30
FLOOR_AREA_PER_100_HOUSEHOLDS_M2 = 30.0

_WELFARE_INSTITUTIONS = (
    # name, operator, beds range, nursing share, rating
    ("秀山县社会福利院", "government", (180, 220), 0.72, 4),
    ("秀山县中心敬老院", "government", (120, 160), 0.65, 3),
    ("秀山县老年养护中心", "public_private", (200, 260), 0.80, 4),
    ("凤栖康养中心", "private", (90, 140), 0.70, 3),
    ("夕阳红养老院", "private", (50, 80), 0.55, 2),
    ("福寿养老公寓", "private", (60, 100), 0.60, 3),
    ("颐和颐养院", "private", (70, 110), 0.75, 3),
    ("武陵山康养院", "public_private", (80, 120), 0.70, 3),
    ("花灯社区养老院", "private", (40, 70), 0.50, 2),
    ("梅江镇区域养老服务中心", "public_private", (80, 110), 0.65, 3),
    ("龙池镇区域养老服务中心", "public_private", (60, 90), 0.65, 3),
)


def _point_near(polygon, anchor: np.ndarray, radius: float, rng, margin: float = 25.0) -> np.ndarray:
    """A point inside ``polygon`` (at least ``margin`` m from its edge) within ``radius`` m of ``anchor``."""
    inner = polygon.buffer(-margin)
    if inner.is_empty:
        inner = polygon
    for _ in range(60):
        angle = rng.uniform(0, 2 * np.pi)
        distance = radius * np.sqrt(rng.random())
        xy = anchor + distance * np.array([np.cos(angle), np.sin(angle)])
        if inner.contains(shapely.Point(xy)):
            return xy
    if inner.contains(shapely.Point(anchor)):
        return np.asarray(anchor, dtype=float)
    return np.asarray(shapely.point_on_surface(inner).coords)[0]


def _frame(rows: list[dict], xy: list[np.ndarray]) -> gpd.GeoDataFrame:
    storage = geo.xy_to_storage(np.array(xy)) if xy else np.zeros((0, 2))
    frame = gpd.GeoDataFrame(rows, geometry=shapely.points(storage), crs=geo.CRS_STORAGE).rename_geometry("geom")
    frame.insert(0, "id", np.arange(1, len(frame) + 1, dtype=np.int64))
    return frame


def _share(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """A random boolean array of length ``n`` with exactly round(share * n) True values."""
    out = np.zeros(n, dtype=bool)
    out[rng.permutation(n)[: int(round(share * n))]] = True
    return out


def _nursing(beds: int, share: float, rng) -> int:
    return int(min(beds, round(beds * share * rng.uniform(0.85, 1.15))))


def elder_care(layout: Layout, rng: np.random.Generator, seed: int) -> gpd.GeoDataFrame:
    """Welfare institutions, township homes (敬老院), community stations and rural happiness homes."""
    tag = f"synthetic (gis-service demo, seed {seed})"
    rows, xy = [], []
    villages, townships = layout.villages, layout.townships
    urban_communities = [
        v
        for v in range(len(villages))
        if villages[v].kind == "社区" and townships[layout.village_township[v]].kind == "街道"
    ]
    rural_townships = [t for t, township in enumerate(townships) if township.kind != "街道"]

    # social welfare institutions: mostly in the county town, two in the large towns
    town_of = {"梅江": None, "龙池": None}
    for t in rural_townships:
        if townships[t].short_name in town_of:
            town_of[townships[t].short_name] = t
    welfare_count = WELFARE_AND_TOWNSHIP_HOMES - len(rural_townships)
    hosts = list(rng.permutation(urban_communities))
    for name, operator, beds_range, share, rating in _WELFARE_INSTITUTIONS[:welfare_count]:
        town = next((t for short, t in town_of.items() if name.startswith(short)), None)
        v = int(layout.seat_village[town]) if town is not None else int(hosts.pop())
        beds = int(rng.integers(*beds_range))
        rows.append(
            dict(
                name=name,
                kind="welfare_institution",
                beds=beds,
                nursing_beds=_nursing(beds, share, rng),
                operator=operator,
                comprehensive=True,
                rating=int(rating),
                status="existing",
                division_code=villages[v].code,
                data_source=tag,
            )
        )
        xy.append(_point_near(layout.village_polygons[v], layout.village_anchor[v], 500.0, rng))

    # township homes (敬老院): one per 镇/乡, near the seat, coded to the township
    comprehensive = set(int(t) for t in rng.permutation(rural_townships)[: int(round(0.75 * len(rural_townships)))])
    run_by_government = _share(rng, len(rural_townships), 0.6)  # the rest: public-built, privately run
    for k, t in enumerate(rural_townships):
        township = townships[t]
        beds = int(rng.integers(30, 91))
        operator = "government" if run_by_government[k] else "public_private"
        rows.append(
            dict(
                name=f"{township.short_name}{township.kind}敬老院",
                kind="township_home",
                beds=beds,
                nursing_beds=_nursing(beds, 0.6, rng),
                operator=operator,
                comprehensive=t in comprehensive,
                rating=int(rng.integers(1, 4)),
                status="existing",
                division_code=township.code,
                data_source=tag,
            )
        )
        xy.append(_point_near(layout.township_polygons[t], layout.seats[t], 600.0, rng, margin=60.0))

    # community elder-care stations in 62 社区
    communities = [v for v in range(len(villages)) if villages[v].kind == "社区"]
    station_operators = rng.permutation(
        ["government"] * 9 + ["private"] * 15 + ["public_private"] * (COMMUNITY_STATIONS - 24)
    )
    for k, v in enumerate(sorted(int(c) for c in rng.permutation(communities)[:COMMUNITY_STATIONS])):
        beds = int(rng.integers(6, 21))
        rows.append(
            dict(
                name=f"{villages[v].name}养老服务站",
                kind="community_station",
                beds=beds,
                nursing_beds=_nursing(beds, 0.35, rng),
                operator=str(station_operators[k]),
                comprehensive=False,
                rating=int(rng.integers(0, 3)),
                status="existing",
                division_code=villages[v].code,
                data_source=tag,
            )
        )
        xy.append(_point_near(layout.village_polygons[v], layout.village_anchor[v], 250.0, rng))

    # rural happiness homes in 98 村
    hamlets = [v for v in range(len(villages)) if villages[v].kind == "村"]
    village_run = _share(rng, RURAL_HAPPINESS_HOMES, 0.5)
    for k, v in enumerate(sorted(int(c) for c in rng.permutation(hamlets)[:RURAL_HAPPINESS_HOMES])):
        beds = int(rng.integers(4, 13))
        rows.append(
            dict(
                name=f"{villages[v].name}农村幸福院",
                kind="rural_happiness_home",
                beds=beds,
                nursing_beds=_nursing(beds, 0.25, rng),
                operator="government" if village_run[k] else "public_private",
                comprehensive=False,
                rating=None,
                status="existing",
                division_code=villages[v].code,
                data_source=tag,
            )
        )
        xy.append(_point_near(layout.village_polygons[v], layout.village_anchor[v], 300.0, rng))

    # planned: comprehensive centres for townships whose home has no comprehensive functions
    for t in sorted(set(rural_townships) - comprehensive)[:4]:
        township = townships[t]
        v = int(layout.seat_village[t])
        rows.append(
            dict(
                name=f"{township.short_name}{township.kind}综合养老服务中心",
                kind="township_home",
                beds=60,
                nursing_beds=36,
                operator="public_private",
                comprehensive=True,
                rating=None,
                status="planned",
                division_code=township.code,
                data_source=f"planned; {tag}",
            )
        )
        xy.append(_point_near(layout.village_polygons[v], layout.village_anchor[v], 400.0, rng))
    return _frame(rows, xy)


def cemeteries(layout: Layout, rng: np.random.Generator, seed: int) -> gpd.GeoDataFrame:
    """Public-welfare cemeteries, burial points and funeral facilities, existing and planned."""
    tag = f"synthetic (gis-service demo, seed {seed})"
    planned_tag = f"planned in the 14th five-year plan; location synthetic (gis-service demo, seed {seed})"
    rows, xy = [], []
    villages, townships = layout.villages, layout.townships
    urban_villages = [v for v in range(len(villages)) if townships[layout.village_township[v]].kind == "街道"]
    outer_urban = [v for v in urban_villages if villages[v].kind == "村"] or urban_villages
    rural_townships = [t for t, township in enumerate(townships) if township.kind != "街道"]

    def rural_village(t: int, exclude: set[int]) -> int:
        members = [
            v for v in np.flatnonzero(layout.village_township == t) if villages[v].kind == "村" and v not in exclude
        ]
        members = members or list(np.flatnonzero(layout.village_township == t))
        return int(members[int(rng.integers(len(members)))])

    def add(name, kind, urban_rural, capacity, used, status, v, source, radius=1500.0):
        rows.append(
            dict(
                name=name,
                kind=kind,
                urban_rural=urban_rural,
                public_welfare=kind != "commercial_cemetery",
                capacity=capacity,
                graves_used=used,
                status=status,
                division_code=villages[v].code,
                data_source=source,
            )
        )
        xy.append(_point_near(layout.village_polygons[v], layout.village_anchor[v], radius, rng, margin=60.0))

    # existing: one urban public-welfare cemetery, three rural ones, three central burial points
    used_villages: set[int] = set()
    v = int(outer_urban[int(rng.integers(len(outer_urban)))])
    capacity = int(rng.integers(40, 61)) * 100
    add(
        "凤凰山公益性公墓",
        "public_welfare_cemetery",
        "urban",
        capacity,
        int(capacity * rng.uniform(0.5, 0.8)),
        "existing",
        v,
        tag,
    )
    used_villages.add(v)
    hosts = [int(t) for t in rng.permutation(rural_townships)]
    for k in range(EXISTING_PUBLIC_BURIAL - 1):
        t = hosts[k]
        v = rural_village(t, used_villages)
        used_villages.add(v)
        if k < 3:
            capacity = int(rng.integers(15, 41)) * 100
            kind, label = "public_welfare_cemetery", "公益性公墓"
        else:
            capacity = int(rng.integers(3, 11)) * 100
            kind, label = "burial_point", "集中安葬点"
        add(
            f"{townships[t].short_name}{townships[t].kind}{label}",
            kind,
            "rural",
            capacity,
            int(capacity * rng.uniform(0.2, 0.7)),
            "existing",
            v,
            tag,
        )
    v = int(outer_urban[int(rng.integers(len(outer_urban)))])
    add("秀山县殡仪馆", "funeral_home", "urban", None, None, "existing", v, tag)

    # planned (2021-2025)
    v = int(outer_urban[int(rng.integers(len(outer_urban)))])
    add("秀山县殡仪馆新馆", "funeral_home", "urban", None, None, "planned", v, planned_tag)
    east = max(rural_townships, key=lambda t: layout.seats[t][0])
    v = int(layout.seat_village[east])
    add(
        f"{townships[east].short_name}殡葬服务站",
        "funeral_service_station",
        "rural",
        None,
        None,
        "planned",
        v,
        planned_tag,
        radius=600.0,
    )
    v = int(outer_urban[int(rng.integers(len(outer_urban)))])
    add("秀山县城市公益性公墓", "public_welfare_cemetery", "urban", 8000, 0, "planned", v, planned_tag)
    order = sorted(rural_townships, key=lambda t: -int(layout.township_population[t]))
    hosts = list(order) + order[: PLANNED_RURAL_CEMETERIES - len(order)]
    for t in hosts:
        v = rural_village(t, used_villages)
        used_villages.add(v)
        add(
            f"{townships[t].name}{villages[v].name}公益性公墓",
            "public_welfare_cemetery",
            "rural",
            int(rng.integers(5, 21)) * 100,
            0,
            "planned",
            v,
            planned_tag,
        )
    return _frame(rows, xy)


def community_centres(layout: Layout, rng: np.random.Generator, seed: int) -> gpd.GeoDataFrame:
    """One service centre per village-level unit; some fall short of 30 m2 per 100 households."""
    tag = f"synthetic (gis-service demo, seed {seed})"
    villages, townships = layout.villages, layout.townships
    n = len(villages)
    short = rng.random(n) < np.where([v.kind == "社区" for v in villages], 0.2, 0.12)
    for kind in ("社区", "村"):  # make sure both kinds have a few shortfalls
        members = [v for v in range(n) if villages[v].kind == kind and layout.village_households[v] > 400]
        for v in rng.permutation(members)[:3]:
            short[v] = True
    volunteer = _share(rng, n, 0.78)
    with_station = sorted(int(t) for t in rng.permutation(len(townships))[: int(round(0.44 * len(townships)))])
    station_village = {int(layout.seat_village[t]) for t in with_station}
    rows, xy = [], []
    for v, village in enumerate(villages):
        required = FLOOR_AREA_PER_100_HOUSEHOLDS_M2 * layout.village_households[v] / 100.0
        if short[v] and required > 60:
            area = required * rng.uniform(0.45, 0.95)
        else:
            area = max(required * rng.uniform(1.05, 2.0), rng.uniform(120.0, 300.0))
        suffix = "综合服务中心" if village.kind == "社区" else "便民服务中心"
        rows.append(
            dict(
                name=f"{village.name}{suffix}",
                floor_area_m2=round(float(area) * 2) / 2,
                volunteer_point=bool(volunteer[v]),
                minor_protection_station=v in station_village,
                division_code=village.code,
                status="existing",
                data_source=tag,
            )
        )
        xy.append(_point_near(layout.village_polygons[v], layout.village_anchor[v], 60.0, rng))
    return _frame(rows, xy)
