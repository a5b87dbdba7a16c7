"""The analyses' tables in Chinese (``analyse ... --out FILE.csv|xlsx --labels zh``): a header per column, the
facility kinds, division levels and layers by their Chinese names, yes/no as 是/否.

A column that is a layer's field (name, households, kind, division_code ...) takes the field's ``title_zh`` from
the registry; the analyses' own figures are titled here, once. Pure: no database access.
"""

from __future__ import annotations

import functools

from gis_service.layers import LAYERS, get_layer
from gis_service.layers.base import Layer

#: The analyses' own columns (not a layer's field), in the words of the plan's tables.
TITLES_ZH = {
    # the parameters each row repeats
    "method": "计算方法", "layer": "设施图层", "mode": "出行方式", "speed_kmh": "速度(公里/小时)",
    "speeds_kmh_by_road_class": "各等级道路速度(公里/小时)", "minutes": "时间(分钟)", "limit_s": "时限(秒)",
    "limit_m": "距离上限(米)", "group_by": "统计单元", "k": "选址个数", "buffer_m": "缓冲距离(米)",
    "crs_measured": "量算坐标系", "county": "区县代码",
    # coverage
    "served_households": "覆盖户数", "settlements": "居民点数", "served_settlements": "覆盖居民点数",
    "unserved_households": "未覆盖户数", "unserved_settlements": "未覆盖居民点数", "coverage_rate": "覆盖率",
    "coverage_percent": "覆盖率(%)",
    # facility area
    "households_source": "户数来源", "centres": "综合服务设施数", "target_m2_per_100_households": "目标(平方米/百户)",
    "m2_per_100_households": "每百户面积(平方米)", "meets_target": "是否达标", "shortfall_m2": "缺口(平方米)",
    # indicators
    "id": "指标编号", "title": "指标(英文)", "title_zh": "指标", "value": "数值", "unit": "单位", "target": "目标值",
    "comparison": "比较", "met": "是否达标", "counts": "计数",
    # service areas
    "facility_id": "设施编号", "edges_reached": "可达路段数", "reached_road_m": "可达道路长度(米)",
    "area_m2": "服务区面积(平方米)", "connector_m": "接入距离(米)",
    "households_within_reach": "可达服务对象户数", "settlements_within_reach": "可达服务对象居民点数",
    "travel_chosen": "出行方式与时间来源",
    # site suggestions
    "rank": "序号", "site_source": "选址来源", "site_id": "选址来源编号", "at_name": "建议位置",
    "at_settlement_id": "选址居民点编号", "weighted_minutes_saved": "节省户·分钟",
    "village_code": "所在村(社区)代码", "township_code": "所在乡镇(街道)代码", "lon": "经度", "lat": "纬度",
    "newly_served_households": "新增覆盖户数", "newly_served_settlements": "新增覆盖居民点数",
    "newly_served_settlement_ids": "新增覆盖居民点编号", "cumulative_households": "累计新增覆盖户数",
    # the indicators' counts (``counts``; a count that is a layer's field, beds or households, takes its title)
    "villages": "村(社区)数", "villages_meeting_target": "达标村(社区)数",
    "centres_with_volunteer_point": "设志愿服务站点的设施数", "townships": "乡镇(街道)数",
    "townships_with_station": "设未成年人保护工作站的乡镇数", "with_own_facility": "有本乡镇设施的乡镇数",
    "served_within_reach": "可达邻近设施的乡镇数", "public_welfare_facilities": "公益性设施数",
    "institutions": "养老机构数", "government_operated_beds": "政府运营床位",
    "townships_with_comprehensive": "有综合功能机构的乡镇数", "community_households": "城市社区户数",
    "community_households_served": "城市社区覆盖户数", "communities_with_settlements": "城市社区数",
    "communities_fully_covered": "全部覆盖的社区数", "rural_villages": "农村村庄数",
    "villages_within_reach": "可达的村数", "rural_households": "农村户数", "rural_households_served": "农村覆盖户数",
    "townships_with_home": "有敬老院的乡镇数", "township_homes": "敬老院数",
    "households_served_in_own_township": "本乡镇内覆盖户数",
}
DIVISIONS = get_layer("admin_divisions")
#: Columns whose values are a division level (county, township, village).
LEVEL_COLUMNS = ("level", "group_by")
#: Columns whose values are a layer's id.
LAYER_COLUMNS = ("layer", "households_source")


def rows_in_chinese(rows: list[dict], *, layer: str | None = None) -> list[dict]:
    """``rows`` (one dict per unit, facility or indicator) with Chinese keys and values; ``layer``: the facility
    layer the analysis was run on (its fields title the columns they are, its kinds are written by label)."""
    facilities = get_layer(layer) if layer else None
    return [{title_zh(key, layer=layer): _value(key, value, facilities) for key, value in row.items()}
            for row in rows]


def title_zh(key: str, *, layer: str | None = None) -> str:
    """A column's Chinese title: the analyses' own (``TITLES_ZH``), else that of the field of that name (``layer``'s
    first, then the divisions', then any layer's), else ``key`` itself."""
    spec = next((f for f in _fields(layer) if f.name == key and f.title_zh), None)
    return TITLES_ZH.get(key) or (spec.title_zh if spec else key)


@functools.cache
def _fields(layer: str | None) -> tuple:
    facilities = get_layer(layer) if layer else None
    return tuple(spec for source in (facilities, DIVISIONS, *LAYERS.values()) if source is not None
                 for spec in source.fields)


def _value(key: str, value: object, facilities: Layer | None) -> object:
    if isinstance(value, bool):
        return "是" if value else "否"
    if key == "kind" and facilities is not None and facilities.network and facilities.network.kind:
        return facilities.field_named(facilities.network.kind).written_label(value)
    if key in LEVEL_COLUMNS:
        return DIVISIONS.field_named("level").written_label(value)
    if key in LAYER_COLUMNS and value in LAYERS:
        return LAYERS[value].title_zh
    return value
