"""The real Xiushan data the demo county is built on (``layers/xiushan``, package data; see its PROVENANCE.md).

Everything here is read-only and real: the county outline, the five county boundary segments and
tri-junctions, the 27 township-level and 268 village-level units with their NBS codes and names,
and the 2020 census population per township. Nothing is synthesised in this module.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache

import shapely
from shapely.geometry import shape

from gis_service.resources import county_sources

DATA_DIR = county_sources("xiushan")

COUNTY_CODE = "500241000000"
COUNTY_NAME = "秀山土家族苗族自治县"
COUNTY_SHORT = "秀山"
COUNTY_ADCODE = "500241"
# The county seat (DataV centre converted from GCJ-02, see PROVENANCE.md), WGS84 ~ CGCS2000.
COUNTY_SEAT_LONLAT = (108.9916, 28.4482)
HOUSEHOLD_SIZE = 3.03  # persons per household used to derive households from the census

# 2021 changes (PROVENANCE.md, "Administrative changes"): 2020 census figures of units that no longer exist.
CENSUS_QINGXICHANG_TOWN = 45392  # 清溪场镇
CENSUS_XIAOXI = 6424  # 孝溪乡
CENSUS_YONGDONG_XIANG = 4580  # 涌洞乡 (now 涌洞镇)


@dataclass(frozen=True)
class Township:
    code9: str
    code: str  # 12 digits
    name: str
    short_name: str
    kind: str  # 街道 / 镇 / 乡
    census_population: int | None  # None for 清溪场街道 and 龙凤坝镇 (not separable)


@dataclass(frozen=True)
class Village:
    code: str  # 12 digits
    name: str  # e.g. 东风社区 (NBS name without 居民委员会 / 村民委员会)
    kind: str  # 村 / 社区
    township_code9: str

    @property
    def short_name(self) -> str:
        """The name without its 社区 / 村 suffix: 东风社区 -> 东风, 大田坝村 -> 大田坝."""
        for suffix in ("社区", "村"):
            if self.name.endswith(suffix) and len(self.name) > len(suffix):
                return self.name[: -len(suffix)]
        return self.name


@dataclass(frozen=True)
class CountySegment:
    neighbour_adcode: str
    neighbour_name: str
    geometry: shapely.LineString  # EPSG:4490 (WGS84 source, treated as CGCS2000)


@dataclass(frozen=True)
class TriJunction:
    adcodes: tuple[str, ...]
    names: tuple[str, ...]
    point: shapely.Point  # EPSG:4490


def _read_csv(name: str) -> list[dict[str, str]]:
    with open(DATA_DIR / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@lru_cache(maxsize=1)
def county_polygon() -> shapely.Polygon:
    """The county outline (AMap boundary converted to WGS84, treated as EPSG:4490)."""
    with open(DATA_DIR / "xiushan_county_amap_wgs84.geojson", encoding="utf-8") as f:
        collection = json.load(f)
    geom = shape(collection["features"][0]["geometry"])
    if geom.geom_type == "MultiPolygon":
        geom = max(geom.geoms, key=lambda g: g.area)
    return shapely.force_2d(geom)


@lru_cache(maxsize=1)
def county_segments() -> tuple[CountySegment, ...]:
    """The five county boundary segments (derived, not statutory), in file order."""
    with open(DATA_DIR / "xiushan_boundary_segments_wgs84.geojson", encoding="utf-8") as f:
        collection = json.load(f)
    return tuple(
        CountySegment(
            neighbour_adcode=feat["properties"]["neighbour_adcode"],
            neighbour_name=feat["properties"]["neighbour_name"],
            geometry=shapely.force_2d(shape(feat["geometry"])),
        )
        for feat in collection["features"]
    )


@lru_cache(maxsize=1)
def tri_junctions() -> tuple[TriJunction, ...]:
    """The five derived tri-junctions where Xiushan meets two neighbouring counties."""
    with open(DATA_DIR / "xiushan_tri_junctions_derived_wgs84.geojson", encoding="utf-8") as f:
        collection = json.load(f)
    return tuple(
        TriJunction(
            adcodes=tuple(feat["properties"]["adcodes"]),
            names=tuple(feat["properties"]["counties"]),
            point=shapely.force_2d(shape(feat["geometry"])),
        )
        for feat in collection["features"]
    )


@lru_cache(maxsize=1)
def townships() -> tuple[Township, ...]:
    """The 27 township-level units (NBS 2023), in code order."""
    rows = _read_csv("xiushan_townships.csv")
    out = [
        Township(
            code9=row["code9"],
            code=row["code12"],
            name=row["name"],
            short_name=row["short_name"],
            kind=row["type"],
            census_population=int(row["census2020_pop"]) if row["census2020_pop"] else None,
        )
        for row in rows
    ]
    return tuple(sorted(out, key=lambda t: t.code))


@lru_cache(maxsize=1)
def villages() -> tuple[Village, ...]:
    """The 268 village-level units (NBS 2023), in code order."""
    rows = _read_csv("xiushan_villages.csv")
    out = [
        Village(code=row["code12"], name=row["short_name"], kind=row["kind"], township_code9=row["township_code9"])
        for row in rows
    ]
    return tuple(sorted(out, key=lambda v: v.code))
