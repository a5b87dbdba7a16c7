"""The pure computations: a graph and points on its edges in, costs out; no database."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from scipy import sparse

from gis_service.analysis.graph import (
    EdgePoints,
    RoadGraph,
    coverage_pairs,
    covered_length_m,
    greedy_max_cover,
    nearest_facility_costs,
    nearest_node_costs,
    reached_by_any,
    reached_pieces,
    road_csr,
    single_source_node_costs,
    substrings,
)


def line_graph(lengths: list[float], road_class: str = "village") -> RoadGraph:
    """Nodes 0..n on a line, edge i from node i to i+1 of the given length (metres)."""
    xs = np.concatenate([[0.0], np.cumsum(lengths)])
    geoms = [shapely.LineString([(xs[i], 0), (xs[i + 1], 0)]) for i in range(len(lengths))]
    return RoadGraph.from_edges(np.arange(1, len(lengths) + 1), np.arange(len(lengths)),
                                np.arange(1, len(lengths) + 1), lengths, [road_class] * len(lengths), geoms)


def points(edge, frac, connector) -> EdgePoints:
    return EdgePoints(np.asarray(edge, dtype=np.int64), np.asarray(frac, dtype=float),
                      np.asarray(connector, dtype=float))



def unit(graph: RoadGraph) -> np.ndarray:
    return np.ones(graph.n_edges)


def test_costs_count_connectors_and_the_way_along_a_shared_edge() -> None:
    graph = line_graph([1000, 1000])
    facility = points([0], [0.1], [20])  # 100 m along edge 0, 20 m off it
    people = points([1, 0, 0], [0.27, 0.5, 0.05], [10, 5, 0])
    costs = nearest_facility_costs(graph, unit(graph), facility, people)
    assert costs.cost_s == pytest.approx([20 + 900 + 270 + 10, 20 + 400 + 5, 20 + 50])
    assert costs.facility.tolist() == [0, 0, 0]


def test_the_nearest_of_several_facilities_is_named() -> None:
    graph = line_graph([1000, 1000, 1000])
    facilities = points([0, 2], [0.0, 1.0], [0, 0])
    costs = nearest_facility_costs(graph, unit(graph), facilities, points([1, 1], [0.2, 0.9], [0, 0]))
    assert costs.cost_s == pytest.approx([1200, 1100])
    assert costs.facility.tolist() == [0, 1]


def test_a_limit_leaves_far_points_unreached() -> None:
    graph = line_graph([1000, 1000])
    costs = nearest_facility_costs(graph, unit(graph), points([0], [0], [0]), points([1], [0.5], [0]),
                                   limit_s=1200)
    assert np.isinf(costs.cost_s[0]) and costs.facility[0] == -1


def test_parallel_roads_keep_the_cheapest_and_loops_are_harmless() -> None:
    geoms = [shapely.LineString([(0, 0), (100, 0)]), shapely.LineString([(0, 0), (50, 80), (100, 0)]),
             shapely.LineString([(100, 0), (120, 10), (100, 0)])]
    graph = RoadGraph.from_edges([1, 2, 3], [7, 7, 9], [9, 9, 9], [100, 190, 45], ["village"] * 3, geoms)
    csr = road_csr(graph, unit(graph))
    assert csr[0, 1] == 100 and csr.nnz == 2
    costs = nearest_facility_costs(graph, unit(graph), points([2], [0.5], [0]), points([0], [1.0], [0]))
    assert costs.cost_s[0] == pytest.approx(22.5)  # the loop's point is 22.5 m from its node either way


def test_points_join_the_nearest_point_of_the_nearest_edge() -> None:
    graph = line_graph([1000, 1000])
    joined = graph.join(np.array([[1500, 30], [1000, -5], [-10, 0]]))
    assert joined.edge.tolist() == [1, 0, 0]  # at the shared node the lower id wins
    assert joined.frac == pytest.approx([0.5, 1.0, 0.0])
    assert joined.connector_m == pytest.approx([30, 5, 10])


def test_reached_pieces_include_partial_edges() -> None:
    graph = line_graph([1000, 1000, 1000])
    s_per_m = unit(graph)
    own = points([0], [0.1], [20])
    csr = road_csr(graph, s_per_m, own)
    node_cost = single_source_node_costs(csr, graph.n_nodes, np.array([graph.n_nodes]), 1200)[0]
    edge, start, end = reached_pieces(graph, s_per_m, node_cost, 1200, own)
    pieces = sorted(zip(edge.tolist(), np.round(start, 6).tolist(), np.round(end, 6).tolist()))
    assert pieces == [(0, 0.0, 1.0), (1, 0.0, 0.28)]


def test_reached_pieces_from_both_ends_of_an_edge() -> None:
    graph = line_graph([1000, 1000, 1000])
    s_per_m = unit(graph)
    node_cost = np.array([0.0, 1000.0, 1150.0, 0.0])  # as if facilities sat at both ends of the line
    edge, start, end = reached_pieces(graph, s_per_m, node_cost, 1100, points([0], [0.0], [0]))
    pieces = sorted(zip(edge.tolist(), np.round(start, 6).tolist(), np.round(end, 6).tolist()))
    assert pieces == [(0, 0.0, 1.0), (1, 0.0, 0.1), (2, 0.0, 1.0)]


def covered_metres_by_edge(graph: RoadGraph, edge, start, end) -> dict[int, float]:
    """Metres reached on each edge, overlaps once: by hand, on a 1 mm grid."""
    reached: dict[int, set[int]] = {}
    for e, a, b in zip(edge.tolist(), start.tolist(), end.tolist()):
        length = graph.length_m[e]
        reached.setdefault(e, set()).update(range(round(a * length * 1000), round(b * length * 1000)))
    return {e: len(mm) / 1000 for e, mm in reached.items()}


@pytest.mark.parametrize("limit_s", [300, 1100, 1900])
def test_reached_by_any_facility_is_the_union_of_each_ones_reach(limit_s: float) -> None:
    # two facilities on a line of four roads, one beside its road, one in the middle of another: their reaches
    # overlap on the roads between them at the larger limits
    graph = line_graph([1000, 800, 1200, 1000])
    s_per_m = unit(graph)
    facilities = points([0, 2], [0.3, 0.5], [40, 0])
    each = []
    for i in range(2):
        own = points(facilities.edge[[i]], facilities.frac[[i]], facilities.connector_m[[i]])
        node_cost = single_source_node_costs(road_csr(graph, s_per_m, own), graph.n_nodes,
                                             np.array([graph.n_nodes]), limit_s)[0]
        each.append(reached_pieces(graph, s_per_m, node_cost, limit_s, own))
    union = [np.concatenate(parts) for parts in zip(*each)]
    node_cost, nearest = nearest_node_costs(road_csr(graph, s_per_m, facilities), graph.n_nodes, 2, limit_s=limit_s)
    edge, start, end = reached_by_any(graph, s_per_m, node_cost, limit_s, facilities)
    assert covered_metres_by_edge(graph, edge, start, end) == pytest.approx(covered_metres_by_edge(graph, *union))
    assert covered_length_m(graph, edge, start, end) == pytest.approx(
        sum(covered_metres_by_edge(graph, *union).values()), abs=0.01)
    assert set(nearest[np.isfinite(node_cost)].tolist()) <= {0, 1}


def test_covered_length_counts_overlaps_once() -> None:
    graph = line_graph([1000, 500])
    edge, start, end = np.array([0, 0, 0, 1]), np.array([0.0, 0.2, 0.9, 0.5]), np.array([0.3, 0.5, 1.0, 0.6])
    assert covered_length_m(graph, edge, start, end) == pytest.approx(500 + 100 + 50)
    assert covered_length_m(graph, edge[:0], start[:0], end[:0]) == 0


def test_greedy_cover_states_a_bound_that_holds() -> None:
    # the classic case where greedy is not optimal: one big set overlapping two disjoint halves
    cover = sparse.csr_matrix(np.array([
        [1, 1, 1, 1, 0, 0],  # 4 + 0.5 weight
        [1, 1, 0, 0, 1, 0],
        [0, 0, 1, 1, 0, 1],
    ], dtype=bool))
    weights = np.array([1, 1, 1, 1.5, 1, 1])
    result = greedy_max_cover(cover, weights, 2)
    assert result.chosen[0] == 0
    best = 6.5  # rows 1 and 2 together cover everything
    assert result.total <= best <= result.upper_bound + 1e-9
    assert result.total >= (1 - (1 - 1 / 2) ** 2) * best


def test_coverage_pairs_match_pairwise_costs() -> None:
    graph = line_graph([500, 500, 500, 500])
    s_per_m = unit(graph)
    sites = points([0, 3], [0.5, 0.5], [0, 10])
    people = points([0, 1, 2, 3], [0.9, 0.5, 0.5, 0.0], [0, 0, 0, 0])
    cover = coverage_pairs(graph, s_per_m, sites, people, 600).toarray()
    # from site 0 (250 m): 200, 500, 1000, 1250; from site 1 (1750 m, 10 m off): 1510+10... etc.
    assert cover.tolist() == [[True, True, False, False], [False, False, True, True]]


def test_substrings_cut_lines_at_fractions_of_their_length() -> None:
    lines = np.array([shapely.LineString([(0, 0), (10, 0), (10, 10)]), shapely.LineString([(0, 0), (4, 0)]),
                      shapely.LineString([(0, 0), (3, 0), (6, 0)])], dtype=object)
    cut = substrings(lines, np.array([0.25, 0.0, 0.5]), np.array([0.75, 0.5, 1.0]))
    assert [list(g.coords) for g in cut] == [[(5, 0), (10, 0), (10, 5)], [(0, 0), (2, 0)], [(3, 0), (6, 0)]]
