"""The gazetteer (地名) of the demo county: divisions, settlements, roads, natural features and more.

Every current division, settlement and distinct road name gets a record; natural features,
memorials, scenic spots and facilities are added by hand; the three names retired in 2021 are kept
as historical records pointing at their successors. Locations, meanings, origins and histories are
synthetic (labelled so); names of divisions are real.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from .. import pinyin
from . import geo, geography, sources
from .divisions import HISTORICAL, LONGFENGBA, QINGXICHANG_JIEDAO, YONGDONG_ZHEN, Layout
from .network import Network

HERITAGE_TOWNSHIPS = ("洪安", "石堤", "梅江", "清溪场", "龙凤坝")

# Natural features (自然地理实体): name, meaning, village-level unit to stand in (None: county-wide), origin.
NATURAL = (
    ("梅江河", None, "因流经梅江而得名。", "酉水支流，由南向北纵贯县境，经县城西侧，于石堤注入酉水。"),
    ("酉水", "石堤社区", "古称酉溪，以水出酉阳得名。", "县境东北界河，沿秀山与湖南龙山、保靖县界流过。"),
    ("平江河", "平邑村", "因河谷平缓得名。", "梅江河支流，流经县境西部。"),
    ("溶溪河", "晨光社区", "因流经溶溪得名。", "梅江河支流，流经溶溪镇。"),
    ("龙潭河", "水源村", "因河源有龙潭得名。", "流经县境北部，汇入梅江河。"),
    ("川河盖", "川河村", "“盖”为当地对山顶平台的称呼，因盖上有川河得名。", "县境北部高山台地，海拔一千二百米以上。"),
    ("平阳盖", "平阳村", "因盖顶平坦向阳得名。", "县境中部高山台地，为平阳村所在。"),
    ("太阳山", "太阳山村", "因山势高耸、日出先照得名。", "县境北部山峰，为隘口镇与邻县的界山之一。"),
    ("凤凰山", "凤凰社区", "因山形似凤凰展翅得名。", "县城西北侧山体，已建森林公园。"),
    ("高秀山", "高秀村", "以山高秀丽得名。", "清溪场街道境内山峰。"),
    ("观音山", "观音村", "因山上旧有观音庙得名。", "官庄街道境内山峰。"),
    ("白岩山", "石门村", "因山崖岩石色白得名。", "钟灵镇境内山峰。"),
    ("钟灵山", "马路社区", "以地名钟灵得名。", "钟灵镇境内山峰。"),
    ("大溪", "下大溪村", "因溪流较大得名。", "大溪乡境内溪流。"),
)
MEMORIAL = (
    # name, category, village unit, heritage
    ("洪安边城", "memorial", "边城社区", True),
    ("石堤古镇", "memorial", "石堤社区", True),
    ("凤凰山森林公园", "memorial", "凤凰社区", False),
    ("秀山烈士陵园", "memorial", "官湖社区", False),
    ("川河盖景区", "memorial", "川河村", False),
    ("大寨土家山寨", "memorial", "大寨村", True),
)
FACILITY = (
    ("秀山站", "天桥社区"),
    ("秀山汽车客运站", "东风社区"),
    ("秀山县人民医院", "解放社区"),
)


@dataclass
class _Row:
    name: str
    category: str
    division_code: str | None
    xy: np.ndarray  # EPSG:4545
    meaning: str | None = None
    origin: str | None = None
    history: str | None = None
    status: str = "current"
    successor: int | None = None  # row index of the successor
    heritage_listed: bool = False
    data_source: str = ""


def place_names(layout: Layout, network: Network, rng: np.random.Generator, seed: int) -> gpd.GeoDataFrame:
    tag = f"gis-service demo, seed {seed}"
    synthetic = f"synthetic (gis-service demo, seed {seed})"
    rows: list[_Row] = []
    villages, townships = layout.villages, layout.townships
    village_by_name = {v.name: i for i, v in enumerate(villages)}

    # administrative: county, townships, villages
    seat = geography.county_seat_metric()
    rows.append(
        _Row(
            name=sources.COUNTY_NAME,
            category="administrative",
            division_code=sources.COUNTY_CODE,
            xy=seat,
            meaning="“秀山”因县城北部高秀山得名；以土家族、苗族为主体民族设自治县。",
            origin="清代改土归流后置秀山县，以境内高秀山得名。",
            history="1983年撤销秀山县，设立秀山土家族苗族自治县。1997年起隶属重庆市。",
            data_source=f"name real; meaning, origin and history: short synthetic summaries, not authoritative; "
            f"point: county seat ({tag})",
        )
    )
    township_row: dict[str, int] = {}
    for t, township in enumerate(townships):
        township_row[township.code9] = len(rows)
        rows.append(
            _Row(
                name=township.name,
                category="administrative",
                division_code=township.code,
                xy=layout.seats[t],
                meaning=f"以驻地{township.short_name}得名。",
                origin=f"因{township.kind}人民政府（办事处）驻{township.short_name}而得名。",
                history=_township_history(township),
                heritage_listed=township.short_name in HERITAGE_TOWNSHIPS,
                data_source=f"name real (NBS 2023); point, meaning, origin and history synthetic ({tag})",
            )
        )
    for v, village in enumerate(villages):
        generic = "居民委员会" if village.kind == "社区" else "村民委员会"
        rows.append(
            _Row(
                name=village.name,
                category="administrative",
                division_code=village.code,
                xy=layout.village_anchor[v],
                meaning=f"以{village.short_name}得名。",
                origin=f"因{generic}驻地{village.short_name}而得名。",
                history=f"属{townships[layout.village_township[v]].name}。",
                data_source=f"name real (NBS 2023); point, meaning, origin and history synthetic ({tag})",
            )
        )

    # historical names (2021)
    history_text = {
        "清溪场镇": "2021年撤销清溪场镇，以原清溪场镇部分区域和原孝溪乡设立清溪场街道，析置龙凤坝镇。",
        "孝溪乡": "2021年撤销孝溪乡，并入新设立的清溪场街道。",
        "涌洞乡": "2021年撤销涌洞乡，设立涌洞镇。",
    }
    successor_code = {"清溪场镇": QINGXICHANG_JIEDAO, "孝溪乡": QINGXICHANG_JIEDAO, "涌洞乡": YONGDONG_ZHEN}
    for _, name, short, _kind, _ in HISTORICAL:
        successor = township_row[successor_code[name]]
        t = layout.township_index[successor_code[name]]
        xy = layout.seats[t] if name != "孝溪乡" else layout.village_anchor[layout.xiaoxi_villages[0]]
        rows.append(
            _Row(
                name=name,
                category="administrative",
                division_code=townships[t].code,
                xy=xy,
                meaning=f"以驻地{short}得名。",
                history=history_text[name],
                status="historical",
                successor=successor,
                heritage_listed=name == "清溪场镇",
                data_source=f"historical name (real); point and texts synthetic, 2021 dates approximate ({tag})",
            )
        )
    lfb = township_row[LONGFENGBA]
    rows[lfb].history = "2021年由原清溪场镇析置，设立龙凤坝镇。"

    # settlements
    st = network.settlements
    for s in range(len(st.xy)):
        rows.append(
            _Row(
                name=st.name[s],
                category="settlement",
                division_code=villages[st.village[s]].code,
                xy=st.xy[s],
                data_source=synthetic,
            )
        )

    # roads: one record per distinct name, at the middle of the road
    rows.extend(_road_rows(layout, network, synthetic))

    # natural features, memorials and scenic spots, facilities
    for name, village_name, meaning, history in NATURAL:
        if village_name is None:
            river = geography.river_metric()
            xy = np.asarray(shapely.line_interpolate_point(river, 0.42 * river.length).coords)[0]
            code = sources.COUNTY_CODE
        else:
            v = village_by_name[village_name]
            xy = _inside(layout.village_polygons[v], layout.village_anchor[v], rng)
            code = sources.COUNTY_CODE if name == "酉水" else villages[v].code
        rows.append(
            _Row(
                name=name,
                category="natural",
                division_code=code,
                xy=xy,
                meaning=meaning,
                origin=meaning,
                history=history,
                heritage_listed=name in ("川河盖", "梅江河"),
                data_source=f"real name; location and texts synthetic ({tag})",
            )
        )
    for name, category, village_name, heritage in MEMORIAL:
        v = village_by_name[village_name]
        rows.append(
            _Row(
                name=name,
                category=category,
                division_code=villages[v].code,
                xy=_inside(layout.village_polygons[v], layout.village_anchor[v], rng),
                heritage_listed=heritage,
                data_source=f"location synthetic ({tag})",
            )
        )
    for name, village_name in FACILITY:
        v = village_by_name[village_name]
        rows.append(
            _Row(
                name=name,
                category="facility",
                division_code=villages[v].code,
                xy=_inside(layout.village_polygons[v], layout.village_anchor[v], rng),
                data_source=f"location synthetic ({tag})",
            )
        )

    storage = geo.xy_to_storage(np.array([r.xy for r in rows]))
    romanized: dict[str, str] = {}
    records = []
    for r in rows:
        if r.name not in romanized:
            romanized[r.name] = pinyin.romanize(r.name)
        records.append(
            dict(
                name=r.name,
                pinyin=romanized[r.name],
                category=r.category,
                division_code=r.division_code,
                meaning=r.meaning,
                origin=r.origin,
                history=r.history,
                status=r.status,
                successor_id=None if r.successor is None else int(r.successor + 1),
                heritage_listed=bool(r.heritage_listed),
                data_source=r.data_source,
            )
        )
    frame = gpd.GeoDataFrame(records, geometry=shapely.points(storage), crs=geo.CRS_STORAGE).rename_geometry("geom")
    frame.insert(0, "id", np.arange(1, len(frame) + 1, dtype=np.int64))
    frame["successor_id"] = frame["successor_id"].astype("Int64")
    return frame


def _township_history(township: sources.Township) -> str:
    if township.code9 == QINGXICHANG_JIEDAO:
        return "2021年撤销清溪场镇、孝溪乡，设立清溪场街道。"
    if township.code9 == YONGDONG_ZHEN:
        return "2021年撤销涌洞乡，设立涌洞镇。"
    if township.kind == "街道":
        return f"原为城区一部，后设{township.name}。"
    return f"民国时期为{township.short_name}乡，新中国成立后几经调整，后设{township.name}。"


def _inside(polygon, anchor: np.ndarray, rng: np.random.Generator, radius: float = 800.0) -> np.ndarray:
    inner = polygon.buffer(-30.0)
    for _ in range(50):
        angle = rng.uniform(0, 2 * np.pi)
        xy = anchor + radius * np.sqrt(rng.random()) * np.array([np.cos(angle), np.sin(angle)])
        if inner.contains(shapely.Point(xy)):
            return xy
    return np.asarray(anchor, dtype=float)


def _road_rows(layout: Layout, network: Network, data_source: str) -> list[_Row]:
    """One place name per distinct road name (bridges included: they are named road segments).

    The point is the middle of the segment nearest the centre of all the road's segments. The
    division is the village when the road stays in one village, the township when it stays in one
    township, and the county otherwise.
    """
    nodes, edges = network.nodes, network.edges
    mid = (nodes[edges[:, 0]] + nodes[edges[:, 1]]) / 2
    village = layout.village_at(mid)
    missing = village < 0
    if missing.any():
        village[missing] = layout.village_at(nodes[edges[missing, 0]])
    township = layout.village_township[village]
    names = np.asarray(network.name, dtype=object)
    order = np.argsort(names, kind="stable")
    sorted_names = names[order]
    boundaries = np.flatnonzero(np.r_[True, sorted_names[1:] != sorted_names[:-1], True])
    first_seen = {}
    for k, name in enumerate(network.name):
        first_seen.setdefault(name, k)
    groups = []
    for start, stop in zip(boundaries[:-1], boundaries[1:], strict=True):
        members = order[start:stop]
        groups.append((first_seen[sorted_names[start]], sorted_names[start], members))
    groups.sort(key=lambda g: g[0])
    rows = []
    for _, name, members in groups:
        centre = mid[members].mean(axis=0)
        pick = members[((mid[members] - centre) ** 2).sum(axis=1).argmin()]
        if len(set(township[members].tolist())) > 1:
            code = sources.COUNTY_CODE
        elif len(set(village[members].tolist())) > 1:
            code = layout.townships[township[pick]].code
        else:
            code = layout.villages[village[pick]].code
        rows.append(_Row(name=str(name), category="road", division_code=code, xy=mid[pick], data_source=data_source))
    return rows
