"""Site suggestions (选址建议): where k new facilities would serve the most households, proven optimal.

Three methods, on one instance built here from the county:

- ``max_cover`` (default): maximal covering, the k sites that bring the most households not served today within
  the travel time, solved to proven optimality by HiGHS (:mod:`.optimise`);
- ``p_median``: the k sites that lower the household-weighted travel time to the nearest facility most; each
  household's time counts up to the time limit (a household beyond it counts as the limit: not served);
- ``greedy``: the old answer, each step taking the site that adds the most, with the bound it proves itself.

Every answer states whether it is proven optimal or the gap left at the time limit, the objective, and what greedy
would have given on the same candidates.

**The instance.** Demand (:class:`Demand`) is households per settlement of the population the kind is for (the
layer registry declares it: community stations serve urban communities, rural happiness homes rural villages; the
caller may name another, ``population``); for township homes, the households of the township a site stands in
(a pair across a township boundary does not count). Candidate sites (:data:`CANDIDATE_SOURCES`) are those settlements (a
facility is built where its people live), the sites of existing facilities of every layer in their villages (a
station can open in a building the bureau already runs), road junctions (any crossing of the network), or today's
candidates, the unserved settlements. Costs are travel times along the roads (the
connectors included), from each candidate to each demand point, within the limit.

The SQL is in :mod:`.network` (the joined points) and :func:`_describe` (where a chosen site is); the rest is arrays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from scipy import sparse

from gis_service.analysis import network as net
from gis_service.analysis import optimise
from gis_service.analysis.coverage import Served, compute_served
from gis_service.analysis.graph import EdgePoints, RoadGraph, greedy_max_cover, pair_costs
from gis_service.analysis.limits import check_time, remaining_s
from gis_service.analysis.travel import (
    AnalysisSettings,
    Travel,
    check_facilities,
    check_population,
    describe_population,
    travel_for,
)
from gis_service.errors import InvalidInputError
from gis_service.layers import FACILITY_LAYERS

MAX_K = 50
#: Most candidate sites tried (facility sites first, then settlements by households, then road junctions).
MAX_CANDIDATES = 200_000
DEFAULT_MAX_CANDIDATES = 50_000
METHODS = ("max_cover", "p_median", "greedy")
#: Where a new facility may stand. ``unserved_settlements`` is a subset of ``settlements``.
CANDIDATE_SOURCES = ("settlements", "facility_sites", "road_nodes", "unserved_settlements")
DEFAULT_CANDIDATES = ("settlements", "facility_sites")
#: Candidate sites per shortest-path chunk between time checks: about 1 s of CPU at demo scale 10 at most.
_CHUNK = 32
COVER_OBJECTIVE = "households not served today that the new sites bring within the time limit"


def check_k(k: int) -> int:
    """A number of new sites: 1 to MAX_K."""
    if not (1 <= k <= MAX_K):
        raise InvalidInputError(f"k must be between 1 and {MAX_K}; got {k}")
    return k


def check_method(method: str) -> str:
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    return method


def check_candidates(candidates: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Candidate sources from a comma-separated text or a sequence: known names, at least one, no repeats."""
    names = [c.strip() for c in candidates.split(",")] if isinstance(candidates, str) else list(candidates)
    names = [n for n in names if n]
    unknown = [n for n in names if n not in CANDIDATE_SOURCES]
    if not names or unknown:
        raise InvalidInputError(f"candidates must be a comma-separated list of {', '.join(CANDIDATE_SOURCES)}; "
                                f"got {','.join(names)[:80]!r}")
    return tuple(dict.fromkeys(names))


def check_time_limit(time_limit_s: float) -> float:
    if not (0 < time_limit_s <= optimise.MAX_TIME_LIMIT_S):
        raise InvalidInputError(f"time_limit_s must be more than 0 and at most {optimise.MAX_TIME_LIMIT_S:g}; "
                                f"got {time_limit_s}")
    return float(time_limit_s)


@dataclass(frozen=True)
class Demand:
    """Who a new facility is for: households per settlement, in the order of :func:`net.settlements`' frame, and
    words saying who they are (the answer's ``demand.description``)."""

    households: np.ndarray
    description: str


def population_demand(served: Served) -> Demand:
    """The households of the settlements ``served`` counts (its population's)."""
    frame = served.settlements.frame
    households = frame["households"].to_numpy(dtype=float) if len(frame) else np.zeros(0)
    return Demand(np.nan_to_num(households), served.population.description)


@dataclass(frozen=True)
class Candidates:
    """Candidate sites: their join to the network and, per site, ``source``, ``source_id`` (settlement or facility
    id, road node number), ``name`` and ``x``/``y`` (measure CRS)."""

    points: EdgePoints
    frame: pd.DataFrame


def _road_nodes(graph: RoadGraph) -> Candidates:
    """Every junction and end of the network, at the end of one of its edges (no connector)."""
    edge = np.full(graph.n_nodes, -1, dtype=np.int64)
    frac = np.zeros(graph.n_nodes)
    edge[graph.target[::-1]] = np.arange(graph.n_edges)[::-1]
    frac[graph.target] = 1.0
    from_source = np.full(graph.n_nodes, -1, dtype=np.int64)
    from_source[graph.source[::-1]] = np.arange(graph.n_edges)[::-1]
    use_source = from_source >= 0
    edge[use_source], frac[use_source] = from_source[use_source], 0.0
    # the first vertex of the edge a node starts, else the last of the edge it ends
    xy = graph.coords[np.where(frac == 0.0, graph.coord_start[edge], graph.coord_start[edge + 1] - 1)]
    frame = pd.DataFrame({"source": "road_node", "source_id": np.arange(graph.n_nodes), "name": None,
                          "households": 0.0, "x": xy[:, 0], "y": xy[:, 1], "edge": edge})
    return Candidates(EdgePoints(edge, frac, np.zeros(graph.n_nodes)), frame)


def candidate_sites(conn: sa.Connection, network: net.Network, served: Served, sources: tuple[str, ...],
                    max_candidates: int, county: str | None = None) -> Candidates:
    """The candidate sites of ``sources`` (in ``county``, when given): existing facility sites first, then
    settlements (the most households first), then road junctions; at most ``max_candidates``."""
    parts: list[Candidates] = []
    if "facility_sites" in sources:
        for layer in FACILITY_LAYERS.values():
            sites = net.facilities(conn, network, layer, None, county)
            if served.population.urban_rural is not None:  # only in the population's villages
                sites = sites.subset(sites.frame["division_code"].isin(set(served.settlements.frame["village_code"]))
                                     .to_numpy())
            sites = net.with_township(conn, sites, layer)
            frame = pd.DataFrame({"source": "facility_site", "source_id": sites.frame["id"].to_numpy(),
                                  "township_code": sites.frame["township_code"].to_numpy(),
                                  "name": sites.frame["name"].to_numpy(), "households": 0.0,
                                  "x": sites.frame["x"].to_numpy(), "y": sites.frame["y"].to_numpy(),
                                  "layer": layer.id, "kind": sites.frame["kind"].to_numpy()})
            parts.append(Candidates(sites.points, frame))
    if "settlements" in sources or "unserved_settlements" in sources:
        people = served.settlements
        households = people.frame["households"].to_numpy(dtype=float)
        eligible = households > 0
        if "settlements" not in sources:
            eligible &= ~served.served
        index = np.flatnonzero(eligible)
        index = index[np.lexsort((people.frame["id"].to_numpy()[index], -households[index]))]
        frame = pd.DataFrame({"source": "settlement", "source_id": people.frame["id"].to_numpy()[index],
                              "township_code": people.frame["township_code"].to_numpy()[index],
                              "name": people.frame["name"].to_numpy()[index], "households": households[index],
                              "x": people.frame["x"].to_numpy()[index], "y": people.frame["y"].to_numpy()[index]})
        parts.append(Candidates(people.points.take(index), frame))
    if "road_nodes" in sources:
        nodes = _road_nodes(network.graph)
        if served.population.own_township:  # which township each junction lies in (one query)
            places = net.places_at(conn, nodes.frame[["x", "y"]].to_numpy(dtype=float), network.srid)
            nodes = Candidates(nodes.points, nodes.frame.assign(township_code=[p["township_code"] for p in places]))
        parts.append(nodes)
    frame = pd.concat([p.frame for p in parts], ignore_index=True) if parts else pd.DataFrame()
    points = EdgePoints.concat(*[p.points for p in parts]) if parts else EdgePoints(
        np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
    if len(frame) > max_candidates:
        frame, points = frame.iloc[:max_candidates].reset_index(drop=True), points.take(np.arange(max_candidates))
    return Candidates(points, frame)


def site_suggestions(conn: sa.Connection, *, layer: str = "elder_care", kind: str | None = None,
                     minutes: float | None = None, mode: str | None = None, k: int = 3, method: str = "max_cover",
                     candidates: str | tuple[str, ...] = DEFAULT_CANDIDATES,
                     max_candidates: int = DEFAULT_MAX_CANDIDATES, county: str | None = None,
                     time_limit_s: float = optimise.DEFAULT_TIME_LIMIT_S, measure_srid: int = 4545,
                     settings: AnalysisSettings | None = None,
                     population: str | None = None, use_cache: bool = True,
                     on_progress: Callable[[int, int], None] | None = None) -> dict:
    """``k`` suggested sites, the households each newly serves (in the order greedy would add them), whether the
    choice is proven optimal, and what greedy would have given. Only the households of ``population`` count
    (default: those ``kind`` is for). ``county`` (6-digit code): in that county, for its settlements."""
    settings = settings or AnalysisSettings()
    spec, kind = check_facilities(layer, kind)
    who_for = check_population(spec, kind, population)
    county = net.check_county(county, conn)
    check_k(k)
    check_method(method)
    sources = check_candidates(candidates)
    check_time_limit(time_limit_s)
    if not (1 <= max_candidates <= MAX_CANDIDATES):
        raise InvalidInputError(f"max_candidates must be between 1 and {MAX_CANDIDATES}; got {max_candidates}")
    travel = travel_for(settings, spec, kind, mode=mode, minutes=minutes)
    network = net.ensure_network(conn, measure_srid=measure_srid, settings=settings)
    params = (layer, kind or None, travel.mode, travel.minutes, k, method, sources, max_candidates, time_limit_s,
              who_for.code, county, tuple(sorted(travel.speeds_kmh_by_road_class.items())))
    tables = ("roads", "settlements", "admin_divisions", *FACILITY_LAYERS)
    key = ("site_suggestions", params) + network.key(*tables)

    def compute() -> dict:
        started = time.perf_counter()
        served = compute_served(conn, network, travel, layer=layer, kind=kind, method="network",
                                county=county, population=who_for.code)
        who = population_demand(served)
        sites = candidate_sites(conn, network, served, sources, max_candidates, county)
        instance = _instance(network.graph, travel, served, who, sites, on_progress)
        budget = remaining_s()
        limit = time_limit_s if budget is None else max(0.5, min(time_limit_s, budget - 1.0))
        answer = _solve(instance, method, k, limit)
        answer["sites"] = _site_rows(conn, network, served, sites, instance, answer.pop("chosen"), answer.pop("gains"),
                                     method)
        answer["greedy"]["sites"] = _site_rows(conn, network, served, sites, instance,
                                               answer["greedy"].pop("chosen"), answer["greedy"].pop("gains"),
                                               method, brief=True)
        unserved_before = float(instance.households[instance.unserved].sum())
        return {
            **travel.describe(), "layer": layer, "kind": kind or None, "method": method, "k": k, "county": county,
            "measured_along": "network",
            "served_population": describe_population(who_for),
            "demand": {"description": who.description, "households": int(instance.households.sum()),
                       "settlements": int((instance.households > 0).sum())},
            "candidate_sites": {"sources": list(sources), "count": len(sites.frame)},
            "candidates": len(sites.frame),
            "unserved_households_before": int(round(unserved_before)),
            "newly_served_households": answer["newly_served_households"],
            "unserved_households_after": int(round(unserved_before)) - answer["newly_served_households"],
            **answer,
            "computed_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    if not use_cache:
        return {**compute(), "cached": False}
    return net.cached_result(key, compute)


@dataclass(frozen=True)
class _Instance:
    """Candidates × demand points (the settlements with households that count): travel seconds within the limit
    (``cost``, sparse; a pair absent is beyond it), households, who is unserved today, and the time today capped
    at the limit."""

    cost: sparse.csr_matrix
    reach: sparse.csr_matrix
    households: np.ndarray
    unserved: np.ndarray
    today_s: np.ndarray
    demand_index: np.ndarray
    limit_s: float


def _instance(graph: RoadGraph, travel: Travel, served: Served, who: Demand, sites: Candidates,
              on_progress: Callable[[int, int], None] | None) -> _Instance:
    households = np.asarray(who.households, dtype=float)
    index = np.flatnonzero(households > 0)
    points = served.settlements.points.take(index)
    s_per_m = graph.seconds_per_metre(travel.speeds_kmh_by_road_class)
    done = [0]

    def progress(n: int) -> None:
        check_time()
        done[0] += n
        if on_progress:
            on_progress(done[0], len(sites.frame))

    row, col, cost = pair_costs(graph, s_per_m, sites.points, points, travel.limit_s, chunk=_CHUNK,
                                on_chunk=progress)
    if served.population.own_township:  # a site serves the households of the township it stands in only
        same = (sites.frame["township_code"].to_numpy(dtype=object)[row]
                == served.settlements.frame["township_code"].to_numpy(dtype=object)[index][col])
        row, col, cost = row[same], col[same], cost[same]
    shape = (len(sites.frame), len(index))
    today = np.minimum(np.nan_to_num(served.minutes[index] * 60.0, nan=np.inf), travel.limit_s)
    return _Instance(
        cost=sparse.csr_matrix((cost + 1e-9, (row, col)), shape=shape),  # + 1e-9: a zero cost is still a pair
        reach=sparse.csr_matrix((np.ones(len(row)), (row, col)), shape=shape),
        households=households[index], unserved=~np.asarray(served.served)[index], today_s=today,
        demand_index=index, limit_s=travel.limit_s)


def _solve(instance: _Instance, method: str, k: int, time_limit_s: float) -> dict:
    """The chosen candidates and everything the answer proves about them, for ``method``, with greedy beside."""
    weights = np.where(instance.unserved, instance.households, 0.0)
    if method == "greedy":
        result = greedy_max_cover(instance.reach, weights, k)
        chosen, gains = list(result.chosen), list(result.gains)
        upper = int(np.floor(result.upper_bound + 1e-6))
        newly = int(round(result.total))
        return {
            "optimal": newly >= upper, "optimality_gap": round(1 - newly / upper, 6) if upper else 0.0,
            "objective": {"kind": COVER_OBJECTIVE, "households": newly, "upper_bound_households": upper},
            "newly_served_households": newly,
            "solver": {"name": "greedy", "status": "greedy",
                       "guarantee": f"at least {(1 - (1 - 1 / k) ** k) * 100:.1f} % of the best possible "
                                    "(1 - (1 - 1/k)^k, Nemhauser-Wolsey-Fisher)"},
            "greedy": {"newly_served_households": newly, "chosen": chosen, "gains": gains},
            "gain_over_greedy_households": 0, "chosen": chosen, "gains": gains,
            "bound": {"upper_bound_households": upper,
                      "share_of_upper_bound": round(newly / upper, 4) if upper else 1.0},
        }
    values = _savings(instance) if method == "p_median" else optimise.cover_values(instance.reach, weights)
    best = optimise.solve(values, k, time_limit_s=time_limit_s)
    greedy_chosen, greedy_gains = optimise.greedy_choice(values, k)
    greedy_newly = _newly_served(instance, weights, greedy_chosen)
    newly = _newly_served(instance, weights, best.chosen)
    answer = {
        "optimal": best.optimal, "optimality_gap": round(best.optimality_gap, 6),
        "newly_served_households": newly,
        "solver": {"name": "HiGHS (scipy.optimize.milp) after a Lagrangian bound",
                   "time_limit_s": round(time_limit_s, 2), "status": best.status,
                   "solve_s": round(best.solve_seconds, 3), "problem": best.problem},
        "greedy": {"newly_served_households": greedy_newly, "chosen": greedy_chosen, "gains": greedy_gains},
        "gain_over_greedy_households": newly - greedy_newly,
        "chosen": best.chosen, "gains": best.gains,
    }
    if method == "max_cover":
        upper = int(np.floor(best.bound + 1e-6))
        answer["objective"] = {"kind": COVER_OBJECTIVE, "households": int(round(best.objective)),
                               "upper_bound_households": upper}
        answer["bound"] = {"upper_bound_households": upper,
                           "share_of_upper_bound": round(best.objective / upper, 4) if upper else 1.0}
        return answer
    before = float((instance.households * instance.today_s).sum())
    total = float(instance.households.sum()) or 1.0

    def minutes(saved: float) -> dict:
        after = before - saved
        return {"household_weighted_minutes": round(after / 60, 1), "mean_minutes": round(after / 60 / total, 3)}

    greedy_saving = optimise.evaluate(values, greedy_chosen)
    answer["objective"] = {
        "kind": "household-weighted travel time to the nearest facility, each household's time counted up to the "
                "time limit", "before": minutes(0.0), "after": minutes(best.objective),
        "minutes_saved": round(best.objective / 60, 1),
        "best_possible_after": minutes(best.bound) if np.isfinite(best.bound) else None}
    answer["greedy"]["objective"] = {"after": minutes(greedy_saving), "minutes_saved": round(greedy_saving / 60, 1)}
    answer["gain_over_greedy_minutes"] = round((best.objective - greedy_saving) / 60, 1)
    answer["solver"]["relative_gap_tolerance"] = optimise.REL_TOLERANCE
    return answer


def _savings(instance: _Instance) -> sparse.csr_matrix:
    """Household-seconds each candidate would save each demand point it brings closer than today."""
    cost = instance.cost.tocoo()
    saving = instance.households[cost.col] * (instance.today_s[cost.col] - (cost.data - 1e-9))
    keep = saving > 1e-6
    return sparse.csr_matrix((saving[keep], (cost.row[keep], cost.col[keep])), shape=instance.cost.shape)


def _newly_served(instance: _Instance, weights: np.ndarray, chosen) -> int:
    if not len(chosen):
        return 0
    reached = np.asarray(instance.reach[list(chosen)].sum(axis=0)).ravel() > 0
    return int(round(float(weights[reached].sum())))


def _site_rows(conn: sa.Connection, network: net.Network, served: Served, sites: Candidates, instance: _Instance,
               chosen: list[int], gains: list[float], method: str, *, brief: bool = False) -> list[dict]:
    """One row per chosen site, in order: where it is, and the unserved households and settlements it newly serves
    given the sites before it (for p_median also the weighted minutes it saves)."""
    where = _describe(conn, network, sites, chosen)
    remaining = instance.unserved.copy()
    settlement_ids = served.settlements.frame["id"].to_numpy()[instance.demand_index]
    rows, cumulative = [], 0
    for rank, (choice, gain) in enumerate(zip(chosen, gains), start=1):
        reached = instance.reach[choice].indices
        newly = reached[remaining[reached]]
        remaining[newly] = False
        households = int(round(float(instance.households[newly].sum())))
        cumulative += households
        site = sites.frame.iloc[choice]
        row = {"rank": rank, "site_source": site["source"], "site_id": int(site["source_id"]), **where[choice]}
        if brief:
            rows.append({**row, "newly_served_households": households})
            continue
        row.update(newly_served_households=households, newly_served_settlements=len(newly),
                   newly_served_settlement_ids=sorted(int(i) for i in settlement_ids[newly]),
                   cumulative_households=cumulative)
        if method == "p_median":
            row["weighted_minutes_saved"] = round(gain / 60, 1)
        rows.append(row)
    return rows


def _describe(conn: sa.Connection, network: net.Network, sites: Candidates, chosen: list[int]) -> dict[int, dict]:
    """Name, village, township and lon/lat (EPSG:4326) of each chosen candidate."""
    if not chosen:
        return {}
    frame = sites.frame.iloc[chosen]
    rows = net.places_at(conn, frame[["x", "y"]].to_numpy(dtype=float), network.srid)
    road_names = {}
    road_ids = [int(network.graph.edge_ids[e]) for e in frame.get("edge", pd.Series(dtype=float)).dropna().astype(int)]
    if road_ids:
        road_names = dict(conn.execute(sa.text("SELECT id, name FROM roads WHERE id = ANY(:ids)"),
                                       {"ids": road_ids}).all())
    out = {}
    for (choice, site), place in zip(frame.iterrows(), rows):
        name = site["name"]
        if site["source"] == "road_node":
            road = road_names.get(int(network.graph.edge_ids[int(site["edge"])]), "")
            name = f"{road}路口（{place['village_name'] or '县境内'}）"
        out[choice] = {"at_name": name,
                       "at_settlement_id": int(site["source_id"]) if site["source"] == "settlement" else None,
                       "village_code": place["village_code"], "township_code": place["township_code"],
                       "lon": round(float(place["lon"]), 7), "lat": round(float(place["lat"]), 7)}
    return out
