"""Settlements (居民点): where people live, with the households and population of their village.

Inside the street grids of the county town and the township towns they are housing estates
(小区, 花园 …) that the grid streets serve; elsewhere they are hamlets (寨, 湾, 坝 …) that become
nodes of the road network, each with a few lanes (便道) to its houses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import cKDTree

from . import geo, geography, names
from .divisions import Layout, split_integer

SETTLEMENTS_PER_SCALE = 2900  # settlements at scale 1 (about N times as many at scale N)
RIVER_KEEP_OUT_M = 90.0  # no settlement this close to 梅江河


@dataclass
class Settlements:
    xy: np.ndarray  # (n, 2) EPSG:4545
    village: np.ndarray  # village index
    name: list[str]
    estate: np.ndarray  # bool: a housing estate inside a street grid (not itself a network node)
    moved: np.ndarray  # bool: a hamlet that no road could reach, moved next to the network
    households: np.ndarray
    population: np.ndarray


def _settlement_counts(layout: Layout, scale: int) -> np.ndarray:
    areas = np.array([p.area for p in layout.village_polygons])
    hh = layout.village_households.astype(float)
    weight = 0.5 * areas / areas.sum() + 0.5 * hh / hh.sum()
    total = SETTLEMENTS_PER_SCALE * scale
    return np.maximum(split_integer(total, weight), 3 * scale)


def place_settlements(
    layout: Layout,
    rng: np.random.Generator,
    scale: int,
    grid_zones: list,
    keep_out: np.ndarray,
    bridge_keep_out_m: float,
) -> Settlements:
    """Settlement points: housing estates inside street grids, hamlets elsewhere (network nodes)."""
    river = geography.river_metric()
    # inside the county, away from its edge and out of narrow fingers that a road could not reach
    county_inner = geography.county_metric().buffer(-700.0).buffer(550.0)
    county_edge_free = geography.county_metric().buffer(-150.0)
    zones = shapely.union_all(grid_zones)
    zone_inner = zones.buffer(-60.0)
    zone_outer = zones.buffer(120.0)
    for g in (river, county_inner, county_edge_free, zone_inner, zone_outer):
        shapely.prepare(g)
    counts = _settlement_counts(layout, scale)
    xy_all, village_all, name_all, estate_all = [], [], [], []
    for v, polygon in enumerate(layout.village_polygons):
        n = int(counts[v])
        inner = polygon.buffer(-40.0)
        if inner.is_empty:
            inner = polygon
        cand = geo.sample_in_polygon(inner, 8 * n + 60, rng)
        in_grid = shapely.contains_xy(zone_inner, cand[:, 0], cand[:, 1])
        ok = in_grid | ~shapely.contains_xy(zone_outer, cand[:, 0], cand[:, 1])
        ok &= shapely.contains_xy(county_inner, cand[:, 0], cand[:, 1])
        ok &= ~geo.near_line(cand, river, RIVER_KEEP_OUT_M)
        if len(keep_out):
            d = np.sqrt(((cand[:, None, :] - keep_out[None]) ** 2).sum(axis=2)).min(axis=1)
            ok &= d > 2 * bridge_keep_out_m
        if ok.sum() < n:  # a village squeezed against the county edge: fall back to its whole interior
            ok = shapely.contains_xy(county_edge_free, cand[:, 0], cand[:, 1])
            ok &= ~geo.near_line(cand, river, RIVER_KEEP_OUT_M) & (
                in_grid | ~shapely.contains_xy(zone_outer, cand[:, 0], cand[:, 1])
            )
        cand, in_grid = cand[ok], in_grid[ok]
        spacing = float(np.clip(0.45 * np.sqrt(polygon.area / n), 50.0, 600.0))
        picked = _spread(cand, n, spacing)
        if len(picked) < n:
            raise RuntimeError(f"could not place {n} settlements in {layout.villages[v].name}")
        xy = cand[picked]
        estate = in_grid[picked]
        is_community = layout.villages[v].kind == "社区"
        taken: set[str] = set()
        village_names = []
        for is_estate in estate:
            (one,) = names.settlement_names(rng, 1, estates=bool(is_estate and is_community), taken=taken)
            taken.add(one)
            village_names.append(one)
        xy_all.append(xy)
        village_all.append(np.full(n, v))
        name_all.extend(village_names)
        estate_all.append(estate)
    xy = np.concatenate(xy_all)
    village = np.concatenate(village_all)
    estate = np.concatenate(estate_all)
    households = np.zeros(len(xy), dtype=np.int64)
    population = np.zeros(len(xy), dtype=np.int64)
    weight = rng.lognormal(0.0, 0.6, len(xy)) * np.where(estate, 2.5, 1.0)
    noise = rng.uniform(0.9, 1.1, len(xy))
    for v in range(len(layout.villages)):
        members = np.flatnonzero(village == v)
        households[members] = split_integer(int(layout.village_households[v]), weight[members])
        population[members] = split_integer(int(layout.village_population[v]), households[members] * noise[members])
    return Settlements(
        xy=xy,
        village=village,
        name=name_all,
        estate=estate,
        moved=np.zeros(len(xy), dtype=bool),
        households=households,
        population=population,
    )


def _spread(candidates: np.ndarray, n: int, spacing: float) -> list[int]:
    """Greedily pick ``n`` candidates (in order) at least ``spacing`` apart, relaxing it if needed."""
    tree = cKDTree(candidates)
    while spacing > 1.0:
        blocked = np.zeros(len(candidates), dtype=bool)
        picked: list[int] = []
        for k in range(len(candidates)):
            if blocked[k]:
                continue
            picked.append(k)
            if len(picked) == n:
                return picked
            blocked[tree.query_ball_point(candidates[k], spacing)] = True
        spacing *= 0.7
    return picked


def lanes(settlements: Settlements, rng: np.random.Generator, scale: int, blocked) -> tuple[np.ndarray, np.ndarray]:
    """Lane ends around every hamlet (the 便道 that serve its houses): xy and owning settlement."""
    hamlets = np.flatnonzero(~settlements.estate)
    per = rng.integers(2, 6, len(hamlets))
    owner = np.repeat(hamlets, per)
    reach = rng.uniform(50.0, 180.0, len(owner)) / scale**0.25  # shorter lanes where hamlets are denser
    angle = rng.uniform(0, 2 * np.pi, len(owner))
    xy = settlements.xy[owner] + np.column_stack([np.cos(angle), np.sin(angle)]) * reach[:, None]
    ok = ~blocked(xy)
    return xy[ok], owner[ok]


def move_to_network(layout: Layout, settlements: Settlements, stranded: np.ndarray, reachable: np.ndarray, rng) -> None:
    """Move hamlets that no road can reach (cut off by the county edge) next to a reachable node."""
    for s in stranded:
        polygon = layout.village_polygons[settlements.village[s]]
        inner = polygon.buffer(-20.0)
        candidates = reachable[shapely.contains_xy(inner, reachable[:, 0], reachable[:, 1])]
        if not len(candidates):
            raise RuntimeError(f"settlement {settlements.name[s]} cannot be reached by road")
        node = candidates[np.hypot(*(candidates - settlements.xy[s]).T).argmin()]
        for _ in range(20):
            angle = rng.uniform(0, 2 * np.pi)
            xy = node + 15.0 * np.array([np.cos(angle), np.sin(angle)])
            if inner.contains(shapely.Point(xy)):
                break
        else:
            xy = node
        settlements.xy[s] = xy
        settlements.moved[s] = True
