"""The siting models' shared machinery: results, the reduced coverage structure, greedy picks, ranking, HiGHS.

Public names live in :mod:`planner.siting`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import _highs as _highs_mod
from . import settings
from ._highs import Lp
from ._siting_base import _Instance, _pct

logger = logging.getLogger("planner.siting")

_ROUND = 6  # decimals of persons compared when ranking (absorbs float summation order)
ADDS_MIN_PERSONS: float = 0.05  # persons; a site newly covering fewer adds nobody (reports give 0.1 persons)

Status = Literal["optimal", "work_limit", "time_limit", "heuristic"]


# --------------------------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SitingResult:
    """The solution of a siting model.

    Attributes
    ----------
    model
        ``"MCLP"``, ``"LSCP"``, ``"PMedian"``, ``"CapacitatedMCLP"`` or
        ``"greedy_mclp"``.
    status
        ``"optimal"`` (proven within `mip_gap`), ``"time_limit"`` (the best
        solution found when the time limit stopped the solver),
        ``"work_limit"`` (the same for a work bound; the siting models set
        none) or ``"heuristic"`` (:func:`~planner.siting.greedy_mclp`).
    objective
        Objective value: covered population in persons (MCLP, greedy,
        capacitated), number of new sites (LSCP) or population-weighted travel
        cost in person × cost units, e.g. person-seconds (PMedian).
    objective_bound
        The solver's proven bound on the optimum (an upper bound when
        maximising, a lower bound when minimising).
    mip_gap
        Relative gap ``abs(objective_bound - objective) / abs(objective)``
        (HiGHS' definition); 0 when proven optimal, inf when no bound is
        known.
    build_s, solve_s
        Seconds spent building the model (pairs, sparse matrix) and inside
        HiGHS.
    sites
        Chosen new site ids, in rank order (see the module docstring).
    added_population
        Persons newly covered by each new site when added in rank order,
        indexed by site id.
    cumulative_pct
        Covered share of the population (%) after each new site in rank order.
    covered_before, covered_after
        Covered population in persons with the existing sites only and with
        the new sites too.
    total_population
        Population of all cells in persons, including excluded ones.
    existing
        Existing site ids kept open.
    assignment
        Site id serving each cell (None if unserved), indexed by cell id: the
        nearest open site within the threshold (coverage models), the p-median
        assignment, or the site serving the largest share (capacitated).
    allocation
        Capacitated model only: long form ``cell_id, site_id, share,
        population`` of the (possibly split) assignment; None otherwise.
    excluded_cells
        Cells no site can reach (no pair within the threshold or no OD pair);
        they stay in `total_population` but cannot be covered.
    n_sites_requested
        The K asked for (None for LSCP). Fewer sites are returned when the
        others would add nobody, unless the solve asked for exactly K
        (``require_k=True``).
    adds_population
        Per site in rank order: True if it adds something where it is ranked
        (at least :data:`ADDS_MIN_PERSONS` newly covered persons; for
        p-median also a shorter trip for someone); False marks a site kept
        only because K sites were required.
    zero_gain_reason
        Why sites were left out or marked (e.g. "no candidate reaches anyone
        still uncovered within 30 min"), None when every requested site adds
        population.
    """

    model: str
    status: Status
    objective: float
    objective_bound: float
    mip_gap: float
    build_s: float
    solve_s: float
    sites: tuple[Hashable, ...]
    added_population: pd.Series
    cumulative_pct: pd.Series
    covered_before: float
    covered_after: float
    total_population: float
    existing: tuple[Hashable, ...]
    assignment: pd.Series
    allocation: pd.DataFrame | None
    excluded_cells: pd.Index
    n_sites_requested: int | None = None
    adds_population: pd.Series | None = None
    zero_gain_reason: str | None = None

    @property
    def covered_pct_before(self) -> float:
        """Covered share of the population (%) with the existing sites only."""
        return _pct(self.covered_before, self.total_population)

    @property
    def covered_pct_after(self) -> float:
        """Covered share of the population (%) with the new sites too."""
        return _pct(self.covered_after, self.total_population)

    @property
    def ranking(self) -> pd.DataFrame:
        """The new sites as a table: ``rank``, ``added_population``, ``cumulative_pct``, ``adds_population``, by site id."""
        adds = self.adds_population if self.adds_population is not None else \
            pd.Series(True, index=self.added_population.index)
        return pd.DataFrame({"rank": np.arange(1, len(self.sites) + 1), "added_population": self.added_population,
                             "cumulative_pct": self.cumulative_pct, "adds_population": adds.astype(bool)},
                            index=self.added_population.index)

    def __repr__(self) -> str:
        return (f"SitingResult(model={self.model!r}, status={self.status!r}, objective={self.objective:.6g}, "
                f"mip_gap={self.mip_gap:.2g}, sites={self.sites!r}, covered_pct_after={self.covered_pct_after:.1f})")


# --------------------------------------------------------------------------------------------------------------------
# HiGHS, through the one wrapper
# --------------------------------------------------------------------------------------------------------------------


def _highs(lp: Lp, *, time_limit_s: float, mip_gap: float, ipm: bool = False) -> Any:
    """Make a Highs object holding `lp`: see :func:`planner._highs.build` (siting sets no work bound)."""
    return _highs_mod.build(lp, what="siting model", time_limit_s=time_limit_s, mip_gap=mip_gap, ipm=ipm)


def _run(h: Any, *, what: str, is_mip: bool, start: np.ndarray | None = None) -> _highs_mod.Solution:
    """Solve: the solution (also one stopped by the time limit), or InfeasibleModelError without one."""
    return _highs_mod.run(h, what=what, is_mip=is_mip, start=start, log=logger,
                          fix_infeasible="check n_sites, targets and capacities",
                          fix_no_solution="raise time_limit_s or use greedy_mclp")


# --------------------------------------------------------------------------------------------------------------------
# reduced coverage structure shared by MCLP, LSCP, greedy and the marginal curve
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Coverage:
    """Cells left to cover (merged by identical coverage sets) × candidate sites."""

    cand: np.ndarray  # reduced column -> instance site position
    before: float  # persons covered by existing sites
    coverable: float  # persons covered when every site is open
    W: np.ndarray  # persons per merged group
    A: sp.csc_array  # groups × candidates, 1 where the candidate covers the group
    A_csr: sp.csr_array


def _coverage(inst: _Instance) -> _Coverage:
    w = inst.weights
    covered0 = inst.covered_by(inst.existing)
    cand = inst.candidates
    col_of = np.full(inst.n_sites_all, -1, dtype=np.int64)
    col_of[cand] = np.arange(len(cand))
    keep = ~inst.existing[inst.site] & ~covered0[inst.cell] & (w[inst.cell] > 0)
    pc, pcol = inst.cell[keep], col_of[inst.site[keep]]  # sorted by cell, then column
    free, row = np.unique(pc, return_inverse=True)
    nf = len(free)
    lens = np.bincount(row, minlength=nf)
    ptr = np.zeros(nf + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(lens)
    group = _merge_identical_rows(ptr, pcol, lens)
    G = int(group.max()) + 1 if nf else 0
    W = np.bincount(group, weights=w[free], minlength=G)
    rep = np.unique(group, return_index=True)[1]
    rlen = lens[rep]
    take = np.repeat(ptr[rep], rlen) + (np.arange(int(rlen.sum())) - np.repeat(np.cumsum(rlen) - rlen, rlen))
    A_csr = sp.csr_array((np.ones(len(take)), (np.repeat(np.arange(G), rlen), pcol[take])), shape=(G, len(cand)))
    return _Coverage(cand=cand, before=float(w[covered0].sum()), coverable=float(w[inst.reachable()].sum()), W=W,
                     A=A_csr.tocsc(), A_csr=A_csr)


def _merge_identical_rows(ptr: np.ndarray, cols: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Group id per row, equal for rows with identical column sets (exact, vectorised).

    Rows are hashed with two random 64-bit keys per column, then every row is compared with its group's first row;
    should a hash collision ever merge different rows, no rows are merged.
    """
    nf = len(lens)
    if nf == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(20240601)
    ncol = int(cols.max()) + 1 if len(cols) else 1
    k1 = rng.integers(0, 2**63, size=ncol, dtype=np.uint64)
    k2 = rng.integers(0, 2**63, size=ncol, dtype=np.uint64)
    row = np.repeat(np.arange(nf), lens)
    h1 = np.zeros(nf, dtype=np.uint64)
    h2 = np.zeros(nf, dtype=np.uint64)
    np.add.at(h1, row, k1[cols])
    np.add.at(h2, row, k2[cols])
    key = pd.MultiIndex.from_arrays([h1, h2, lens])
    group = pd.factorize(key)[0].astype(np.int64)
    rep = np.unique(group, return_index=True)[1][group]  # first row of each row's group
    same = cols == cols[np.repeat(ptr[rep], lens) + (np.arange(len(cols)) - np.repeat(ptr[:-1], lens))]
    if not same.all():  # pragma: no cover - a 128-bit collision
        return np.arange(nf, dtype=np.int64)
    return group


def _greedy(cov: _Coverage, *, k: int | None = None, need: float | None = None) -> tuple[list[int], list[float], float]:
    """Greedy picks (reduced columns), their gains and the tightest submodular upper bound met on the way.

    Stops after `k` picks or once `need` persons (beyond the existing sites) are covered.
    """
    G, nc = cov.A.shape
    covered = np.zeros(G, dtype=bool)
    gains = cov.A.T @ cov.W if G else np.zeros(nc)
    taken = np.zeros(nc, dtype=bool)
    picks: list[int] = []
    got: list[float] = []
    total = 0.0
    bound = math.inf
    while True:
        free_gains = np.where(taken, -np.inf, np.round(gains, _ROUND))
        if k is not None:
            top = np.sort(np.where(taken, 0.0, np.maximum(gains, 0)))[::-1][:k]
            bound = min(bound, total + float(top.sum()))
            if len(picks) >= k:
                break
        if need is not None and (total >= need - 1e-9 * max(need, 1.0) or len(picks) == nc):
            break
        j = int(np.argmax(free_gains))
        if need is not None and free_gains[j] <= 0:
            break
        rows = cov.A.indices[cov.A.indptr[j]:cov.A.indptr[j + 1]]
        new = rows[~covered[rows]]
        covered[new] = True
        taken[j] = True
        gain = float(cov.W[new].sum())
        total += gain
        if len(new):
            gains = gains - cov.A_csr[new].T @ cov.W[new]
        picks.append(j)
        got.append(gain)
    return picks, got, bound


def _weight_bonus(inst: _Instance, n_open: int) -> np.ndarray:
    """Objective coefficient of each candidate's x from its suitability weight (zeros without weights).

    Scaled so that the chosen sites' terms sum to at most :data:`planner.settings.SUITABILITY_TIE_PERSONS`
    (persons): the weights only decide between solutions equal in the model's own objective.
    """
    wt = inst.site_weight
    cand = inst.candidates
    if wt is None or not len(cand) or wt[cand].max() <= 0:
        return np.zeros(len(cand))
    return settings.SUITABILITY_TIE_PERSONS * wt[cand] / (float(wt[cand].max()) * max(int(n_open), 1))


def _mclp_lp(cov: _Coverage, n_sites: int, *, relax: bool = False, bonus: np.ndarray | None = None) -> Lp:
    """Reduced MCLP: columns x (candidates) then y (groups); rows y_g - sum x <= 0, then sum x = p.

    `bonus` (persons per candidate, see :func:`_weight_bonus`) is added to the objective of x.
    """
    G, nc = cov.A.shape
    Ac = cov.A_csr.tocoo()
    rows = np.concatenate([Ac.row, np.arange(G), np.full(nc, G)])
    cols = np.concatenate([Ac.col, nc + np.arange(G), np.arange(nc)])
    vals = np.concatenate([-np.ones(Ac.nnz), np.ones(G), np.ones(nc)])
    integer = np.zeros(nc + G, dtype=bool)
    integer[:nc] = not relax
    x_cost = np.zeros(nc) if bonus is None else bonus
    return Lp.from_coo(cost=np.concatenate([x_cost, cov.W]), lower=np.zeros(nc + G), upper=np.ones(nc + G),
               integer=integer, rows=rows, cols=cols, vals=vals,
               row_lower=np.concatenate([np.full(G, -np.inf), [n_sites]]),
               row_upper=np.concatenate([np.zeros(G), [n_sites]]), maximize=True, offset=cov.before)


def _mclp_start(cov: _Coverage, picks: Iterable[int]) -> np.ndarray:
    G, nc = cov.A.shape
    x = np.zeros(nc)
    x[list(picks)] = 1.0
    y = np.minimum(cov.A_csr @ x, 1.0) if G else np.zeros(0)
    return np.concatenate([x, y])


# --------------------------------------------------------------------------------------------------------------------
# ranking and result assembly
# --------------------------------------------------------------------------------------------------------------------


def _cost_cap(inst: _Instance) -> float:
    """Cost an unserved cell counts at in cost reductions: the threshold or, without one, the largest pair cost."""
    return inst.radius if math.isfinite(inst.radius) else (float(inst.cost.max()) if len(inst.cost) else 0.0)


def _rank(inst: _Instance, chosen: Iterable[int], *, after: Iterable[int] = ()) -> tuple[list[int], list[float], list[float]]:
    """Order chosen site positions greedily by added coverage, then cost reduction, then input order.

    Returns the order, the persons each site newly covers there and its reduction of population-weighted cost
    (an unserved cell counts at :func:`_cost_cap`). Sites in `after` are ranked after all the others.
    """
    w = inst.weights
    covered = inst.covered_by(inst.existing)
    _, best = inst.nearest_open(inst.existing)
    best = np.minimum(best, _cost_cap(inst))
    later = sorted({int(j) for j in after})
    remaining = sorted({int(j) for j in chosen} - set(later))
    order: list[int] = []
    added: list[float] = []
    reduced: list[float] = []
    while remaining or later:
        if not remaining:
            remaining, later = later, []
        keys = []
        for j in remaining:
            s = slice(inst.col_ptr[j], inst.col_ptr[j + 1])
            rows, c = inst.col_cell[s], inst.col_cost[s]
            gain = float(w[rows][~covered[rows]].sum())
            red = float(np.maximum(best[rows] - c, 0.0) @ w[rows])
            keys.append((round(gain, _ROUND), round(red, _ROUND), -j, gain, red))
        i = max(range(len(remaining)), key=lambda q: keys[q][:3])
        j = remaining.pop(i)
        s = slice(inst.col_ptr[j], inst.col_ptr[j + 1])
        rows = inst.col_cell[s]
        covered[rows] = True
        best[rows] = np.minimum(best[rows], inst.col_cost[s])
        order.append(j)
        added.append(keys[i][3])
        reduced.append(keys[i][4])
    return order, added, reduced


def _adds(added: Iterable[float], reduced: Iterable[float] | None = None) -> np.ndarray:
    """Whether each ranked site adds something: newly covered persons (or, given `reduced`, a shorter trip).

    Fewer than :data:`ADDS_MIN_PERSONS` newly covered persons (raster cells hold fractions of persons) count as none.
    """
    a = np.asarray(list(added), dtype=float) >= ADDS_MIN_PERSONS
    if reduced is not None:
        a |= np.round(np.asarray(list(reduced), dtype=float), _ROUND) > 0
    return np.asarray(a, dtype=bool)


def _gains(inst: _Instance, covered: np.ndarray, best: np.ndarray, site_of: np.ndarray | None = None,
           ) -> tuple[np.ndarray, np.ndarray]:
    """Persons each site would newly cover, and its reduction of population-weighted cost, given the open sites."""
    if site_of is None:
        site_of = np.repeat(np.arange(inst.n_sites_all), np.diff(inst.col_ptr))
    c, w = inst.col_cell, inst.weights
    gain = np.bincount(site_of, weights=w[c] * ~covered[c], minlength=inst.n_sites_all)
    red = np.bincount(site_of, weights=w[c] * np.maximum(best[c] - inst.col_cost, 0.0), minlength=inst.n_sites_all)
    return gain, red


def _fill_useless(inst: _Instance, chosen: Iterable[int], *, by_cost: bool = False) -> list[int]:
    """Swap chosen sites that add nothing for candidates that do, best first; the rest stay (they add nothing).

    At a proven optimum there is nothing to swap (a site adding nobody next to a candidate that adds someone
    is not optimal); after a solve stopped by its time limit this makes "no candidate reaches anyone still
    uncovered" true for every site that adds nothing. `by_cost` (p-median) also counts shorter trips.
    """
    order, added, reduced = _rank(inst, chosen)
    useful = _adds(added, reduced if by_cost else None)
    keep = [j for j, u in zip(order, useful, strict=True) if u]
    n_useless = int((~useful).sum())
    if not n_useless:
        return keep
    site_of = np.repeat(np.arange(inst.n_sites_all), np.diff(inst.col_ptr))
    open_mask = inst.site_mask(keep)
    covered = inst.covered_by(open_mask)
    _, best = inst.nearest_open(open_mask)
    best = np.minimum(best, _cost_cap(inst))
    for _ in range(n_useless):
        gain, red = _gains(inst, covered, best, site_of)
        ok = ~open_mask & _adds(gain, red if by_cost else None)
        if not ok.any():
            break
        score = np.round(gain + (red if by_cost else 0.0), _ROUND)
        j = int(np.argmax(np.where(ok, score, -np.inf)))  # ties: the first site
        s = slice(inst.col_ptr[j], inst.col_ptr[j + 1])
        covered[inst.col_cell[s]] = True
        best[inst.col_cell[s]] = np.minimum(best[inst.col_cell[s]], inst.col_cost[s])
        open_mask[j] = True
        keep.append(j)
    swapped = len(keep) - int(useful.sum())
    if swapped:
        logger.info("%d chosen sites added nobody; swapped for candidates that do (the solve was not optimal)", swapped)
    return keep + [j for j, u in zip(order, useful, strict=True) if not u][: n_useless - swapped]


def _assignment_series(inst: _Instance, pos: np.ndarray) -> pd.Series:
    vals = np.full(inst.n_cells, None, dtype=object)
    ok = pos >= 0
    vals[ok] = inst.site_ids.to_numpy(dtype=object)[pos[ok]]
    return pd.Series(vals, index=inst.cell_ids, dtype=object, name="site_id")


def _result(
    inst: _Instance,
    *,
    model: str,
    status: Status,
    objective: float,
    bound: float,
    gap: float,
    build_s: float,
    solve_s: float,
    order: list[int],
    added: list[float],
    covered_before: float,
    covered_after: float,
    assignment: np.ndarray,
    excluded: np.ndarray,
    allocation: pd.DataFrame | None = None,
    adds: np.ndarray | None = None,
    n_requested: int | None = None,
    zero_gain_reason: str | None = None,
) -> SitingResult:
    ids = inst.site_ids[np.asarray(order, dtype=np.int64)].tolist()
    site_index = pd.Index(ids, name=inst.site_ids.name)
    added_s = pd.Series(np.asarray(added, dtype=float), index=site_index, name="added_population")
    adds_s = pd.Series(_adds(added) if adds is None else np.asarray(adds, dtype=bool), index=site_index,
                       name="adds_population")
    cum = pd.Series(100.0 * (covered_before + np.cumsum(np.asarray(added, dtype=float))) / inst.total,
                    index=site_index, name="cumulative_pct")
    return SitingResult(
        model=model, status=status, objective=float(objective), objective_bound=float(bound), mip_gap=float(gap),
        build_s=float(build_s), solve_s=float(solve_s), sites=tuple(ids), added_population=added_s,
        cumulative_pct=cum, covered_before=float(covered_before), covered_after=float(covered_after),
        total_population=inst.total, existing=tuple(inst.site_ids[inst.existing].tolist()),
        assignment=_assignment_series(inst, assignment), allocation=allocation,
        excluded_cells=inst.cell_ids[excluded], n_sites_requested=n_requested, adds_population=adds_s,
        zero_gain_reason=zero_gain_reason if (len(ids) < (n_requested or 0) or not adds_s.all()) else None,
    )


def _no_gain_reason(inst: _Instance, *, by_cost: bool = False) -> str:
    """Why sites add nobody once the others are open (true after :func:`_fill_useless`)."""
    if by_cost:
        return f"no candidate brings anyone closer than the sites already open ({inst.radius_label})"
    return f"no candidate reaches anyone still uncovered within {inst.radius_label}"


def _useful_order(inst: _Instance, chosen: Iterable[int], *, require_k: bool, by_cost: bool = False,
                  after: Iterable[int] = ()) -> tuple[list[int], list[float], np.ndarray]:
    """Rank the chosen sites (`after` last); unless `require_k`, leave out those that add nothing (they come last)."""
    order, added, reduced = _rank(inst, [int(j) for j in chosen], after=after)
    adds = _adds(added, reduced if by_cost else None)
    if not require_k:
        order = [j for j, a in zip(order, adds, strict=True) if a]
        added = [g for g, a in zip(added, adds, strict=True) if a]
        adds = adds[adds]
    return order, added, adds


def _coverage_result(inst: _Instance, *, model: str, chosen: Iterable[int], status: Status, objective: float,
                     bound: float, gap: float, build_s: float, solve_s: float, require_k: bool = True,
                     n_requested: int | None = None, zero_gain_reason: str | None = None,
                     after: Iterable[int] = ()) -> SitingResult:
    order, added, adds = _useful_order(inst, chosen, require_k=require_k, after=after)
    open_mask = inst.site_mask(order)
    before = float(inst.weights[inst.covered_by(inst.existing)].sum())
    after = float(inst.weights[inst.covered_by(open_mask)].sum())
    pos, _ = inst.nearest_open(open_mask)
    return _result(inst, model=model, status=status, objective=objective, bound=bound, gap=gap, build_s=build_s,
                   solve_s=solve_s, order=order, added=added, covered_before=before, covered_after=after,
                   assignment=pos, excluded=~inst.reachable(), adds=adds, n_requested=n_requested,
                   zero_gain_reason=zero_gain_reason or _no_gain_reason(inst))


def _replace(res: SitingResult, **changes: Any) -> SitingResult:
    return replace(res, **changes)


def _rel_gap(objective: float, bound: float) -> float:
    """|bound - objective| / |objective|, HiGHS' definition of the relative MIP gap."""
    diff = abs(bound - objective)
    if diff <= 1e-9 * max(1.0, abs(objective)):
        return 0.0
    return diff / abs(objective) if objective else math.inf
