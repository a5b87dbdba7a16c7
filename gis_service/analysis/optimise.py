"""Choosing k sites among candidates, proven optimal: maximal covering and p-median as one integer programme.

Pure computations: a value matrix (candidates × demand points, scipy sparse, V_ij > 0 where a facility at j would
do demand point i some good) in, the chosen candidates and what is proven about them out. No database, no road
network: the caller decides who is demand and where a facility may stand (:mod:`.sites` builds both).

Both problems ask for the k candidates S maximising Σ_i max_{j∈S} V_ij:

- **maximal covering** (最大覆盖): V_ij = w_i, the households of demand point i not served today, where j reaches i
  within the time limit: the objective is the households newly served;
- **p-median** (加权出行时间最小), in savings form: V_ij = w_i (t_i − c_ij) where a facility at j would bring i
  closer than its time today t_i: the objective is the household-seconds saved, and today's total minus it the
  household-weighted travel time that remains.

How it is solved, each step keeping the optimum:

1. **Greedy, then swaps** (a site out, another in, while the total grows): a good solution in a fraction of a second.
2. **Lagrangian bound**: relaxing "each demand point counts once" with multipliers λ_i gives
   L(λ) = Σ_i λ_i + (the k largest Σ_i max(0, V_ij − λ_i)), an upper bound on the optimum for every λ; subgradient
   steps bring it to the linear-programme bound (mat-vec products, no LP solve: the LP of the county at demo scale 10
   took HiGHS 54 s). Local search from the candidates the multipliers favour improves the solution on the way.
3. **Fixing**: a candidate j outside the k best can be in no solution better than the best found when
   L(λ) with j forced in is no better than it; such candidates are dropped (at scale 10: 14,729 → about 600).
4. **HiGHS** (:func:`scipy.optimize.milp`, branch and cut, already a dependency through scipy) solves what is left
   exactly. For covering, demand points reached by the same candidates become one group and candidates whose reach
   another's contains are dropped; variables x_j (binary), y_g ≤ Σ_{j reaches g} x_j. For p-median, z_ij ≤ x_j and
   Σ_j z_ij ≤ 1 (the strong formulation). Σ x_j ≤ k.

The optimum is the better of the best solution found and HiGHS's; the proven bound is the smaller of the Lagrangian
bound and the larger of (best found, HiGHS's bound on what was left). ``optimal`` means they meet: within one
household for covering (whole households), within a relative 1e-6 for savings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

#: Seconds the solver may take by default, and at most (the analysis's own budget, GIS_ANALYSIS_TIMEOUT_S, also
#: bounds it).
DEFAULT_TIME_LIMIT_S = 10.0
MAX_TIME_LIMIT_S = 60.0
#: Relative gap at which a non-integral objective (p-median savings) counts as optimal.
REL_TOLERANCE = 1e-6
LAGRANGIAN_ITERATIONS = 1500
#: Share of the time limit the Lagrangian steps may use; the rest is HiGHS's.
LAGRANGIAN_SHARE = 0.5
#: Share of the time limit one local search may use.
LOCAL_SEARCH_SHARE = 0.1
#: Largest problem handed to HiGHS (candidate-demand pairs left after fixing and reduction): HiGHS checks its time
#: limit too seldom on larger ones (2,500 candidates × 4,856 demand groups ran 270 s past a 120 s limit), so the
#: answer states the gap to the Lagrangian bound instead.
MAX_SOLVER_NONZEROS = 400_000


@dataclass(frozen=True)
class Solution:
    """Chosen candidates (positions in the caller's list) in the order greedy would add them, each with its
    marginal value in that order; the objective, the best proven upper bound on it, and how it was found."""

    chosen: list[int]
    gains: list[float]
    objective: float
    bound: float
    optimal: bool
    status: str
    solve_seconds: float
    problem: dict = field(default_factory=dict)

    @property
    def optimality_gap(self) -> float:
        """(bound − objective) ÷ bound: 0 when proven optimal, 1 when nothing is proven."""
        if self.optimal:
            return 0.0
        if not np.isfinite(self.bound) or self.bound <= 0:
            return 1.0
        return max(0.0, (self.bound - self.objective) / self.bound)


def cover_values(cover, weights) -> sparse.csr_matrix:
    """The value matrix of maximal covering: ``weights[i]`` where candidate j reaches demand point i."""
    matrix = sparse.csr_matrix(cover, dtype=np.float64)
    matrix.data[:] = 1.0
    return _clean(matrix @ sparse.diags(np.asarray(weights, dtype=float)))


def _clean(matrix) -> sparse.csr_matrix:
    values = sparse.csr_matrix(matrix, dtype=np.float64)
    values.data[values.data < 0] = 0.0
    values.eliminate_zeros()
    values.sum_duplicates()
    values.sort_indices()
    return values


class Values:
    """A value matrix V (candidates × demand) with the one operation every step needs, :meth:`gains`: what each
    candidate would add to demand points already at ``level``, Σ_i max(0, V_ij − level_i). For covering every
    candidate reaching i has the same V_ij = w_i, so that is one sparse product, reach @ max(0, w − level) (about
    20 times faster than the general gather at demo scale 10)."""

    def __init__(self, matrix):
        self.matrix = _clean(matrix)
        self.shape = self.matrix.shape
        by_column = self.matrix.tocsc()
        nonempty = by_column.indptr[:-1][np.diff(by_column.indptr) > 0]
        low = np.minimum.reduceat(by_column.data, nonempty) if by_column.nnz else np.zeros(0)
        high = np.maximum.reduceat(by_column.data, nonempty) if by_column.nnz else np.zeros(0)
        self.cap = np.asarray(self.matrix.max(axis=0).todense()).ravel()
        self.is_cover = bool(np.allclose(low, high))
        self.reach = self.matrix.copy()
        self.reach.data[:] = 1.0
        self.rows = np.repeat(np.arange(self.shape[0]), np.diff(self.matrix.indptr))
        self.integral = bool(np.allclose(self.matrix.data, np.round(self.matrix.data)))

    def gains(self, level: np.ndarray) -> np.ndarray:
        if self.is_cover:
            return self.reach @ np.maximum(self.cap - level, 0.0)
        extra = np.maximum(self.matrix.data - level[self.matrix.indices], 0.0)
        return np.bincount(self.rows, weights=extra, minlength=self.shape[0])

    def evaluate(self, chosen) -> float:
        """Σ_i max_{j∈chosen} V_ij."""
        chosen = list(chosen)
        return float(self.matrix[chosen].max(axis=0).sum()) if chosen else 0.0


def evaluate(values, chosen) -> float:
    """Σ_i max_{j∈chosen} V_ij."""
    return Values(values).evaluate(chosen)


def greedy_choice(values, k: int, *, stop_at_zero: bool = True) -> tuple[list[int], list[float]]:
    """Greedy: each step the candidate adding most. ``stop_at_zero=False`` takes k even when the last add nothing
    (to put a given set in greedy order)."""
    values = values if isinstance(values, Values) else Values(values)
    matrix = values.matrix
    best = np.zeros(values.shape[1])
    chosen: list[int] = []
    gains: list[float] = []
    for _ in range(min(k, values.shape[0])):
        gain = values.gains(best)
        gain[chosen] = -1.0
        pick = int(np.argmax(gain))
        if gain[pick] <= 0 and stop_at_zero:
            break
        chosen.append(pick)
        gains.append(float(max(gain[pick], 0.0)))
        row = slice(matrix.indptr[pick], matrix.indptr[pick + 1])
        best[matrix.indices[row]] = np.maximum(best[matrix.indices[row]], matrix.data[row])
    return chosen, gains


def local_search(values: Values, chosen, *, deadline: float) -> list[int]:
    """Swap one chosen candidate for another while that raises the total (best swap first), until none does or
    the deadline passes."""
    chosen = list(chosen)
    if not chosen:
        return chosen
    while time.perf_counter() < deadline:
        block = values.matrix[chosen].toarray()
        order = np.argsort(-block, axis=0)
        best = np.take_along_axis(block, order[:1], axis=0)[0]
        second = np.take_along_axis(block, order[1:2], axis=0)[0] if len(chosen) > 1 else np.zeros_like(best)
        swap = (1e-9, None, None)
        for position in range(len(chosen)):
            without = np.where(order[0] == position, second, best)
            gain = values.gains(without) - float((best - without).sum())
            gain[chosen] = -np.inf
            j = int(np.argmax(gain))
            if gain[j] > swap[0]:
                swap = (float(gain[j]), position, j)
        if swap[1] is None:
            break
        chosen[swap[1]] = swap[2]
    return chosen


@dataclass
class _Lagrangian:
    bound: float
    multipliers: np.ndarray
    iterations: int


def lagrangian(values: Values, k: int, incumbent: list[int], *, tolerance: float, deadline: float,
               improve) -> tuple[_Lagrangian, list[int]]:
    """Subgradient descent on L(λ) (module docstring); every so often the k candidates the multipliers favour are
    improved by ``improve`` (local search) and kept when better than ``incumbent``. Returns the best bound and
    multipliers, and the best solution."""
    cap = values.cap
    multipliers = cap / 2
    best_value = values.evaluate(incumbent)
    result = _Lagrangian(np.inf, multipliers.copy(), 0)
    step, stalled = 2.0, 0
    for iteration in range(1, LAGRANGIAN_ITERATIONS + 1):
        rho = values.gains(multipliers)
        top = np.argpartition(-rho, k - 1)[:k] if values.shape[0] > k else np.arange(values.shape[0])
        bound = float(multipliers.sum() + rho[top].sum())
        if bound < result.bound - 1e-9:
            result = _Lagrangian(bound, multipliers.copy(), iteration)
            stalled = 0
        else:
            stalled += 1
            if stalled >= 20:
                step, stalled = step / 2, 0
        if iteration % 100 == 0 or step < 1e-3 or result.bound - best_value <= tolerance:
            candidate = improve(list(map(int, top)))
            value = values.evaluate(candidate)
            if value > best_value:
                incumbent, best_value = candidate, value
        if result.bound - best_value <= tolerance or step < 1e-3 or time.perf_counter() > deadline:
            break
        block = values.matrix[top]
        used = np.bincount(block.indices[block.data >= multipliers[block.indices]], minlength=values.shape[1])
        direction = 1.0 - used
        # projected: a multiplier at a limit of its box does not move further out, nor lengthen the step's norm
        direction[((multipliers <= 0) & (direction > 0)) | ((multipliers >= cap) & (direction < 0))] = 0.0
        norm = float((direction ** 2).sum())
        if norm == 0:
            break
        multipliers = np.clip(multipliers - step * (bound - best_value) / norm * direction, 0.0, cap)
    result.iterations = iteration
    return result, incumbent


def _fixed_out(values: Values, k: int, relaxed: _Lagrangian, best_value: float, tolerance: float) -> np.ndarray:
    """Candidates that can be in no solution better than ``best_value``: the bound with each forced in."""
    rho = values.gains(relaxed.multipliers)
    if values.shape[0] <= k:
        return np.zeros(values.shape[0], dtype=bool)
    ranked = np.sort(rho)[::-1]
    forced = relaxed.multipliers.sum() + ranked[:k].sum() - ranked[k - 1] + rho
    out = forced <= best_value + tolerance
    out[np.argsort(-rho, kind="stable")[:k]] = False
    return out


def _signature_groups(reach: sparse.csc_matrix) -> np.ndarray:
    """A group number per (non-empty) column of ``reach``: equal for columns reached by the same candidates.
    Columns are hashed by two sums of random 64-bit numbers per candidate (wrapping), then grouped."""
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, size=(2, reach.shape[0]), dtype=np.int64).view(np.uint64)
    starts = reach.indptr[:-1]
    with np.errstate(over="ignore"):
        h1 = np.add.reduceat(keys[0][reach.indices], starts)
        h2 = np.add.reduceat(keys[1][reach.indices], starts)
    _, group = np.unique(np.stack([h1, h2], axis=1), axis=0, return_inverse=True)
    return group.ravel()


def _undominated(matrix: sparse.csr_matrix, *, chunk: int = 2048) -> np.ndarray:
    """Positions of the candidates that reach something and whose reach no other contains (of identical ones the
    first). Shared reach is counted in chunks of candidates to bound memory."""
    size = np.asarray(matrix.sum(axis=1)).ravel()
    dominated = size == 0
    transposed = matrix.T.tocsr()
    for lo in range(0, matrix.shape[0], chunk):
        shared = (matrix[lo:lo + chunk] @ transposed).tocoo()
        j, i = shared.row + lo, shared.col
        contains = (i != j) & (shared.data >= size[j]) & ((size[i] > size[j]) | (i < j))
        dominated[j[contains]] = True
    return np.flatnonzero(~dominated)


@dataclass(frozen=True)
class ReducedCover:
    """A maximal covering instance with the same optimum: ``matrix`` (kept candidates × demand groups, 0/1),
    ``weights`` per group, ``candidates`` (positions of the kept candidates in the values' rows)."""

    matrix: sparse.csr_matrix
    weights: np.ndarray
    candidates: np.ndarray


def reduce_cover(values) -> ReducedCover:
    """Demand points reached by the same candidates become one group (weights summed), demand reached by none is
    dropped, and a candidate whose reach another's contains is dropped (of identical ones the first stays)."""
    reach = sparse.csc_matrix(values, dtype=np.float64)
    reach.eliminate_zeros()
    reach = reach[:, np.flatnonzero(np.diff(reach.indptr) > 0)]
    weights = np.asarray(reach.max(axis=0).todense()).ravel()
    reach.data[:] = 1.0
    group = _signature_groups(reach)
    n_groups = int(group.max()) + 1 if len(group) else 0
    group_weights = np.bincount(group, weights=weights, minlength=n_groups)
    grouped = (reach @ sparse.csr_matrix((np.ones(len(group)), (np.arange(len(group)), group)),
                                         shape=(len(group), n_groups))).tocsr()
    grouped.data[:] = 1.0
    keep = _undominated(grouped)
    return ReducedCover(grouped[keep], group_weights, keep)


def _milp_cover(values: sparse.csr_matrix, k: int, time_limit_s: float):
    """Maximal covering on ``values`` after :func:`reduce_cover`: (chosen positions, value, bound, status, sizes)."""
    reduced = reduce_cover(values)
    matrix, group_weights, keep = reduced.matrix, reduced.weights, reduced.candidates
    n, m = matrix.shape
    sizes = {"candidates_to_solver": int(n), "demand_groups": int(m), "nonzeros_to_solver": int(matrix.nnz)}
    if n <= k:
        return keep, float(group_weights.sum()), float(group_weights.sum()), "optimal", sizes
    if matrix.nnz > MAX_SOLVER_NONZEROS:
        return np.zeros(0, dtype=np.int64), -np.inf, np.inf, _too_large(matrix.nnz), sizes
    # no relative gap allowed: HiGHS sees the objective is whole households and stops when its bound, rounded,
    # meets the best solution, so "optimal" means exactly that
    reached = LinearConstraint(sparse.hstack([-matrix.T, sparse.identity(m)]).tocsr(), -np.inf, 0.0)
    count = LinearConstraint(sparse.csr_matrix(np.concatenate([np.ones(n), np.zeros(m)])[None]), 0, k)
    result = milp(np.concatenate([np.zeros(n), -group_weights]), constraints=[reached, count],
                  integrality=np.concatenate([np.ones(n), np.zeros(m)]), bounds=Bounds(0, 1),
                  options={"time_limit": float(time_limit_s), "mip_rel_gap": 0.0})
    return _milp_outcome(result, n, keep, sizes)


def _milp_assignment(values: sparse.csr_matrix, k: int, time_limit_s: float):
    """p-median in savings form on ``values``: (chosen positions, value, bound, status, sizes)."""
    useful = np.flatnonzero(np.diff(values.indptr) > 0)
    pairs = values[useful].tocoo()
    n, p = len(useful), pairs.nnz
    demand, row_of_demand = np.unique(pairs.col, return_inverse=True)
    sizes = {"candidates_to_solver": int(n), "demand_groups": int(len(demand)), "nonzeros_to_solver": int(p)}
    if n <= k:
        return useful, evaluate(values, useful), evaluate(values, useful), "optimal", sizes
    if p > MAX_SOLVER_NONZEROS:
        return np.zeros(0, dtype=np.int64), -np.inf, np.inf, _too_large(p), sizes
    z = n + np.arange(p)
    one_each = sparse.csr_matrix((np.ones(p), (row_of_demand, z)), shape=(len(demand), n + p))
    open_only = sparse.csr_matrix((np.concatenate([np.ones(p), -np.ones(p)]),
                                   (np.tile(np.arange(p), 2), np.concatenate([z, pairs.row]))), shape=(p, n + p))
    count = sparse.csr_matrix(np.concatenate([np.ones(n), np.zeros(p)])[None])
    result = milp(np.concatenate([np.zeros(n), -pairs.data]),
                  constraints=[LinearConstraint(one_each, -np.inf, 1.0), LinearConstraint(open_only, -np.inf, 0.0),
                               LinearConstraint(count, 0, k)],
                  integrality=np.concatenate([np.ones(n), np.zeros(p)]), bounds=Bounds(0, 1),
                  options={"time_limit": float(time_limit_s), "mip_rel_gap": REL_TOLERANCE})
    return _milp_outcome(result, n, useful, sizes)


def _too_large(nonzeros: int) -> str:
    return (f"left too large for the solver after fixing ({nonzeros:,} candidate-demand pairs; at most "
            f"{MAX_SOLVER_NONZEROS:,}): the gap is to the Lagrangian bound")


def _milp_outcome(result, n: int, positions: np.ndarray, sizes: dict):
    dual = getattr(result, "mip_dual_bound", None)
    bound = -float(dual) if dual is not None and np.isfinite(dual) else np.inf
    if result.x is None:
        return np.zeros(0, dtype=np.int64), -np.inf, bound, result.message, sizes
    value = float(-result.fun)
    status = "optimal" if result.status == 0 else ("time limit reached" if result.status == 1 else result.message)
    return positions[np.flatnonzero(result.x[:n] > 0.5)], value, (value if result.status == 0 else bound), status, sizes


def solve(values, k: int, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> Solution:
    """The k candidates with the largest Σ_i max_{j∈S} V_ij (module docstring), with the proof."""
    started = time.perf_counter()
    deadline = started + time_limit_s
    values = Values(values)
    n, m = values.shape
    useful = int((np.diff(values.matrix.indptr) > 0).sum())
    problem = {"candidates": int(n), "demand_points": int(m), "useful_candidates": useful}

    def tolerance(at: float) -> float:
        return 1.0 - 1e-9 if values.integral else REL_TOLERANCE * max(1.0, abs(at))

    greedy, _ = greedy_choice(values, k)
    if useful <= k:
        best = values.evaluate(greedy)
        return _answer(values, greedy, best, best, True, "every useful candidate chosen", started, problem)
    relaxing_until = started + LAGRANGIAN_SHARE * time_limit_s
    searching = LOCAL_SEARCH_SHARE * time_limit_s  # per local search: on large instances a pass takes 0.3 s
    incumbent = local_search(values, greedy, deadline=time.perf_counter() + searching)
    relaxed, incumbent = lagrangian(
        values, k, incumbent, tolerance=tolerance(values.evaluate(incumbent)), deadline=relaxing_until,
        improve=lambda chosen: local_search(values, chosen, deadline=time.perf_counter() + searching))
    best = values.evaluate(incumbent)
    problem.update(lagrangian_iterations=relaxed.iterations, lagrangian_bound=round(relaxed.bound, 3))
    if relaxed.bound - best <= tolerance(best):
        return _answer(values, incumbent, best, best, True, "optimal (Lagrangian bound met)", started, problem)
    kept = np.flatnonzero(~_fixed_out(values, k, relaxed, best, tolerance(best)))
    sub = values.matrix[kept]
    problem.update(candidates_after_fixing=int(len(kept)), nonzeros_after_fixing=int(sub.nnz))
    remaining = deadline - time.perf_counter()
    if remaining < 0.2:
        return _answer(values, incumbent, best, relaxed.bound, False, "time limit reached", started, problem)
    solver = _milp_cover if values.is_cover else _milp_assignment
    picked, found, sub_bound, status, sizes = solver(sub, k, remaining)
    if values.integral and np.isfinite(found):
        found = float(np.round(found))  # the solver's sum of whole households, without its rounding noise
    problem.update(sizes)
    if found > best:
        incumbent, best = kept[picked].tolist(), found
    bound = min(relaxed.bound, max(best, sub_bound))
    optimal = bound - best <= tolerance(best)
    return _answer(values, incumbent, best, best if optimal else bound, optimal,
                   "optimal" if optimal else status, started, problem)


def _answer(values: Values, chosen, objective, bound, optimal, status, started, problem) -> Solution:
    chosen = [int(c) for c in chosen]
    order, gains = greedy_choice(values.matrix[chosen], len(chosen), stop_at_zero=False) if chosen else ([], [])
    return Solution(chosen=[chosen[i] for i in order], gains=gains, objective=float(objective), bound=float(bound),
                    optimal=bool(optimal), status=status, solve_seconds=time.perf_counter() - started,
                    problem=problem)
