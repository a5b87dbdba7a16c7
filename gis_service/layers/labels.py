"""Chinese labels of the coded values the service stores (``condition = 'intact'`` is shown as 完好): one list,
used by the maps and the exports.

The layer registry's redesign (issue 11) is to carry these on each Layer's fields; until then they live here.
"""

from __future__ import annotations

#: Chinese labels of coded values, per group (a field, or ``<layer>.kind``).
LABELS_ZH: dict[str, dict[str, str]] = {
    "elder_care.kind": {"welfare_institution": "社会福利机构", "township_home": "敬老院",
                        "community_station": "社区养老服务站", "rural_happiness_home": "农村幸福院"},
    "cemeteries.kind": {"public_welfare_cemetery": "公益性公墓", "burial_point": "集中安葬点",
                        "funeral_home": "殡仪馆", "funeral_service_station": "殡葬服务站",
                        "commercial_cemetery": "经营性公墓"},
    "operator": {"government": "公办", "private": "民办", "public_private": "公建民营"},
    "status": {"existing": "现有", "planned": "规划", "closed": "已关闭"},
    "road_class": {"urban_arterial": "城市主干路", "urban_secondary": "城市次干路", "urban_branch": "城市支路",
                   "county": "县道", "township": "乡道", "village": "村道", "path": "小路"},
    "condition": {"intact": "完好", "damaged": "损坏", "missing": "缺失", "displaced": "移位"},
    "line_level": {"county": "县级界线", "township": "乡级界线"},
    "line_status": {"agreed": "已勘定", "disputed": "有争议", "under_survey": "勘界中"},
    "material": {"granite": "花岗岩", "concrete": "混凝土", "steel": "钢质", "plastic": "塑料"},
    "marker_type": {"Q": "单立（Q）", "A": "同号双立（A）", "B": "同号双立（B）", "C": "同号三立（C）",
                    "D": "同号三立（D）", "E": "同号三立（E）"},
    "feature_type": {"boundary_line": "界线", "boundary_marker": "界桩"},
    "mode": {"walk": "步行", "cycle": "骑行", "drive": "驾车"},
    "facility_layer": {"elder_care": "养老服务设施", "community_centres": "城乡社区综合服务设施",
                       "cemeteries": "殡葬设施"},
}


def label_zh(group: str, value: object) -> str:
    """The Chinese label of a coded value (the value itself when there is none)."""
    if value is None:
        return ""
    return LABELS_ZH.get(group, {}).get(str(value), str(value))
