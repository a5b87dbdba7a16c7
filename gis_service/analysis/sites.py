"""Site suggestions (选址建议): where k new facilities would serve the most households not served today.

A maximal covering location problem solved greedily: candidate sites are the unserved settlements themselves (the
largest ``max_candidates`` by households), each would serve the unserved settlements it reaches within the limit
along roads; each step takes the site that newly serves the most households. Greedy is guaranteed at least
1 - (1 - 1/k)^k (≥ 63.2 %) of the best possible; the answer also states an upper bound on the best possible for
this instance, so the gap is known.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import sqlalchemy as sa

from gis_service.analysis import network as net
from gis_service.analysis.coverage import compute_served
from gis_service.analysis.graph import coverage_pairs, greedy_max_cover
from gis_service.analysis.limits import check_time
from gis_service.analysis.travel import AnalysisSettings, check_facilities, make_travel
from gis_service.errors import InvalidInputError

MAX_K = 50
#: Most candidate sites tried (the largest unserved settlements).
MAX_CANDIDATES = 20_000


def check_k(k: int) -> int:
    """A number of new sites: 1 to MAX_K."""
    if not (1 <= k <= MAX_K):
        raise InvalidInputError(f"k must be between 1 and {MAX_K}; got {k}")
    return k


def site_suggestions(conn: sa.Connection, *, layer: str = "elder_care", kind: str | None = None, minutes: float = 15,
                     mode: str = "walk", k: int = 3, max_candidates: int = 3000, county: str | None = None,
                     measure_srid: int = 4545, settings: AnalysisSettings | None = None, use_cache: bool = True,
                     on_progress: Callable[[int, int], None] | None = None) -> dict:
    """``k`` suggested sites with the households and settlements each newly serves (in the order chosen);
    ``county`` (6-digit code): in that county, for its settlements."""
    settings = settings or AnalysisSettings()
    check_facilities(layer, kind)
    county = net.check_county(county, conn)
    check_k(k)
    if not (1 <= max_candidates <= MAX_CANDIDATES):
        raise InvalidInputError(f"max_candidates must be between 1 and {MAX_CANDIDATES}; got {max_candidates}")
    travel = make_travel(settings, mode=mode, minutes=minutes)
    network = net.ensure_network(conn, measure_srid=measure_srid, settings=settings)
    params = (layer, kind or None, travel.mode, travel.minutes, k, max_candidates, county,
              tuple(sorted(travel.speeds_kmh_by_road_class.items())))
    key = ("site_suggestions", params) + network.key("roads", "settlements", "admin_divisions", layer)

    def compute() -> dict:
        started = time.perf_counter()
        served = compute_served(conn, network, travel, layer=layer, kind=kind, method="network", county=county)
        unserved = served.settlements.subset(~served.served & (served.settlements.frame["households"] > 0))
        households = unserved.frame["households"].to_numpy(dtype=float)
        order = np.lexsort((unserved.frame["id"].to_numpy(), -households))[:max_candidates]
        candidates = unserved.subset(np.isin(np.arange(len(households)), order))
        graph, candidate_points, unserved_points = network.graph, candidates.points, unserved.points
        if county is not None:
            region = net.county_region(network, county, [served.settlements, served.facilities], travel)
            graph, candidate_points, unserved_points = (region.graph, region.local(candidates.points),
                                                        region.local(unserved.points))
        s_per_m = graph.seconds_per_metre(travel.speeds_kmh_by_road_class)
        done = [0]

        def progress(n: int) -> None:
            check_time()
            done[0] += n
            if on_progress:
                on_progress(done[0], len(candidates.frame))

        # 32 candidates per chunk: about 1 s of CPU at demo scale 10 when every search covers the whole network
        cover = coverage_pairs(graph, s_per_m, candidate_points, unserved_points, travel.limit_s, chunk=32,
                               on_chunk=progress)
        result = greedy_max_cover(cover, households, k)
        remaining = np.ones(len(households), dtype=bool)
        sites = []
        cumulative = 0.0
        for rank, (choice, gain) in enumerate(zip(result.chosen, result.gains), start=1):
            reached = cover[choice].indices
            newly = reached[remaining[reached]]
            remaining[newly] = False
            cumulative += gain
            row = candidates.frame.iloc[choice]
            sites.append({
                "rank": rank, "at_settlement_id": int(row["id"]), "at_settlement_name": row["name"],
                "village_code": row["village_code"], "township_code": row["township_code"],
                "lon": round(float(row["lon"]), 7), "lat": round(float(row["lat"]), 7),
                "newly_served_households": int(gain), "newly_served_settlements": len(newly),
                "newly_served_settlement_ids": sorted(int(i) for i in unserved.frame["id"].to_numpy()[newly]),
                "cumulative_households": int(cumulative),
            })
        total_unserved = int(households.sum())
        return {
            **travel.describe(), "layer": layer, "kind": kind or None, "method": "network", "k": k, "county": county,
            "candidates": len(candidates.frame), "candidate_sites": "unserved settlements",
            "unserved_households_before": total_unserved,
            "newly_served_households": int(result.total),
            "unserved_households_after": total_unserved - int(result.total),
            "sites": sites,
            "solver": "greedy maximal covering location",
            "bound": {
                "guarantee": f"at least {(1 - (1 - 1 / k) ** k) * 100:.1f} % of the best possible "
                             f"(1 - (1 - 1/k)^k, Nemhauser-Wolsey-Fisher)",
                "upper_bound_households": int(np.floor(result.upper_bound + 1e-6)),
                "share_of_upper_bound": round(result.total / result.upper_bound, 4) if result.upper_bound else 1.0,
            },
            "computed_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    if not use_cache:
        return {**compute(), "cached": False}
    return net.cached_result(key, compute)
