"""The coverage question answered with NetworkX: the baseline ``scripts/bench_coverage.py`` times the scipy search
against, and the independent computation ``tests/test_analysis_county.py`` checks it with.

Pass :func:`networkx_costs` as ``path_costs`` to :func:`gis_service.analysis.coverage.compute_served`
(``functools.partial(networkx_costs, limit_s=...)`` for a search that stops at the limit).
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from gis_service.analysis import network as net
from gis_service.analysis.graph import Costs, EdgePoints, RoadGraph, endpoint_arcs, point_costs
from gis_service.analysis.travel import COST_TOLERANCE_S


def networkx_costs(graph: RoadGraph, s_per_m: np.ndarray, facilities: EdgePoints, points: EdgePoints, *,
                   limit_s: float = np.inf) -> Costs:
    """Each point's cost in seconds from its nearest facility, as
    :func:`gis_service.analysis.graph.nearest_facility_costs` gives it: the same graph in NetworkX (built once per
    graph and speeds and kept), each facility a virtual node joined to the ends of its edge, one
    ``multi_source_dijkstra_path_length`` (with ``cutoff=limit_s`` when finite), then the same point formula.
    Points beyond a finite limit get inf; the nearest facility is not tracked (-1)."""
    n = graph.n_nodes
    key = ("networkx", id(graph), float(np.sum(s_per_m)))
    g = net.GRAPHS.get(key)
    if g is None:
        g = nx.Graph()
        g.add_nodes_from(range(n))
        w = graph.length_m * s_per_m
        for u, v, c in zip(graph.source.tolist(), graph.target.tolist(), w.tolist()):
            if u != v and (not g.has_edge(u, v) or g[u][v]["weight"] > c):
                g.add_edge(u, v, weight=c)
        net.GRAPHS.put(key, g)
    to_source, to_target = endpoint_arcs(graph, s_per_m, facilities)
    virtual = [("facility", i) for i in range(len(facilities))]
    try:
        for i, node in enumerate(virtual):
            e = facilities.edge[i]
            g.add_edge(node, int(graph.source[e]), weight=float(to_source[i]))
            g.add_edge(node, int(graph.target[e]), weight=float(to_target[i]))
        cutoff = limit_s + COST_TOLERANCE_S if np.isfinite(limit_s) else None
        dist = nx.multi_source_dijkstra_path_length(g, set(virtual), cutoff=cutoff)
    finally:
        g.remove_nodes_from(virtual)
    node_cost = np.full(n, np.inf)
    for node, cost in dist.items():
        if not isinstance(node, tuple):
            node_cost[node] = cost
    costs = point_costs(graph, s_per_m, node_cost, np.full(n, -1, dtype=np.int64), facilities, points)
    return Costs(np.where(costs.cost_s <= limit_s + COST_TOLERANCE_S, costs.cost_s, np.inf), costs.facility)
