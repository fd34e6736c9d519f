r"""Branch-site (分支机构) suggestion: coverage and p-median models solved with HiGHS.

Every model chooses ``n_sites`` *new* sites among candidate sites, keeps the
existing institutions open, and is solved to proven optimality (or to the time
limit, which the result says) by HiGHS through :mod:`highspy`. The constraint
matrix is assembled as sparse arrays and passed to HiGHS in one call; no
per-variable Python objects are created, so a model with half a million pairs
is built in about a second (spopt, through PuLP, needs tens of seconds for a
tenth of that). ``from_travel_times`` turns the long-form OD table into a
sparse cells × sites matrix and hands off to ``from_cost_matrix``, which also
accepts dense matrices (NaN or inf where no route exists).

Notation: cells :math:`i \in I` with population :math:`a_i` (persons),
candidate sites :math:`j \in C`, existing sites :math:`E`, travel cost
:math:`d_{ij}` (seconds when built from travel times), service threshold
:math:`S`, and the sparse coverage sets :math:`N_i = \{j \in C \cup E :
d_{ij} \le S\}`. Only pairs within the threshold enter the coverage models.

:class:`MCLP` -- maximal covering location problem (Church & ReVelle, 1974):

.. math::

    \max \sum_{i \in I} a_i y_i
    \quad \text{s.t.} \quad
    y_i \le \sum_{j \in N_i} x_j \;\; \forall i \in I, \qquad
    \sum_{j \in C} x_j = p, \qquad
    x_j = 1 \;\; \forall j \in E, \qquad
    x_j \in \{0, 1\}, \;\; 0 \le y_i \le 1.

:math:`y_i` may be continuous because it is integral at every optimum once
:math:`x` is. Existing sites are fixed open by substitution: cells they cover
are counted as covered and leave the model, as do cells no site can reach.
Cells with identical coverage sets are merged (their populations summed),
which leaves the optimum unchanged.

:class:`LSCP` -- location set covering: fewest new sites such that the covered
share of the population :math:`A = \sum_i a_i` reaches ``target_pct`` :math:`t`:

.. math::

    \min \sum_{j \in C} x_j
    \quad \text{s.t.} \quad
    y_i \le \sum_{j \in N_i} x_j, \qquad
    \sum_{i \in I} a_i y_i \ge \frac{t}{100} A, \qquad
    x_j = 1 \;\; \forall j \in E.

Among the solutions with that fewest number :math:`p^*` of sites, a second
solve (the MCLP with :math:`p = p^*`, started from the first solution) picks
the one covering the most people; this lexicographic order is much faster for
HiGHS than a weighted single objective. Without a target every coverable cell
must be covered: :math:`\sum_{j \in N_i} x_j \ge 1` for all :math:`i` with
:math:`N_i \ne \emptyset`.

:class:`PMedian` -- minimise population-weighted travel cost over the pairs
:math:`P_i` of the (possibly capped) OD table:

.. math::

    \min \sum_{i \in I} \sum_{j \in P_i} a_i d_{ij} z_{ij}
    \quad \text{s.t.} \quad
    \sum_{j \in P_i} z_{ij} = 1, \qquad
    z_{ij} \le x_j, \qquad
    \sum_{j \in C} x_j = p, \qquad
    x_j = 1 \;\; \forall j \in E, \qquad
    z_{ij} \ge 0.

Cells without any pair are excluded and reported; cells of zero population do
not constrain the solution and are assigned to their nearest open site
afterwards. Pairs slower than the cell's nearest existing site are dropped
(they are never used).

:class:`CapacitatedMCLP` -- MCLP in which site :math:`j` serves at most
:math:`c_j` persons; a cell may be split between sites (continuous
:math:`0 \le z_{ij} \le 1`, the default) or served whole
(``binary_assignment=True``, :math:`z_{ij} \in \{0, 1\}`):

.. math::

    \max \sum_{i} \sum_{j \in N_i} a_i z_{ij}
    \quad \text{s.t.} \quad
    \sum_{j \in N_i} z_{ij} \le 1, \qquad
    \sum_{i : j \in N_i} a_i z_{ij} \le c_j x_j, \qquad
    z_{ij} \le x_j, \qquad
    \sum_{j \in C} x_j = p, \qquad
    x_j = 1 \;\; \forall j \in E.

:func:`greedy_mclp` is the greedy heuristic for instances too big for the
solver, with its gap to an upper bound; :func:`marginal_curve` re-solves the
MCLP exactly for 1..K new sites to show diminishing returns.

Suitability weights (``site_weight=`` of the constructors, :math:`s_j \ge 0` per
candidate) prioritise without trading the objective: each model adds
:math:`\epsilon \sum_{j \in C} s_j x_j` to a maximised objective (subtracts it
from a minimised one), with :math:`\epsilon = \tau / (p \max_j s_j)` so that
the chosen sites' term is at most :math:`\tau` =
``settings.SUITABILITY_TIE_PERSONS`` (0.025 persons, half of what counts as
adding somebody). Among solutions equal in the objective the largest weight
sum wins; reported objectives exclude the term. (Scaling each site's covered
population by its weight has no clean linear meaning when sites share cells.)

Every ``solve`` returns a frozen :class:`SitingResult`. Its new sites are
ranked by adding them one at a time, greedily, among the chosen set: first the
site adding the most newly covered population, ties broken by the larger
reduction of population-weighted travel cost and then by input order. The
ranking is therefore deterministic for a given solution. (The capacitated
model ranks by the population each new site serves instead; see
:meth:`CapacitatedMCLP.solve`.) Coverage MIPs start from the greedy solution,
so a solve stopped by its time limit always returns at least the greedy
coverage, with ``status="time_limit"`` and an honest gap.

No site that adds nobody is proposed silently. When the K chosen sites
reach everyone any candidate reaches, the MCLP returns the fewest sites
doing so (a set cover, solved exactly); the p-median and capacitated models
and the greedy leave out the sites ranked last that add nothing (no newly
covered person; for the p-median, no shorter trip). ``zero_gain_reason``
says why, e.g. "no candidate reaches anyone still uncovered within 30 min".
With ``solve(require_k=True)`` all K sites are returned, the idle ones
ranked last and marked ``False`` in ``adds_population``. A site adding
nobody next to a candidate that would add someone (only after a solve
stopped by its time limit) is first swapped for that candidate, so the
reason always holds.

Layout: the models here only add their formulation. The validated instance and
the one constructor path (``from_cost_matrix``/``from_travel_times``) are in
``planner._siting_base``; results, the reduced coverage structure, ranking and
the HiGHS calls (through ``planner._highs``) in ``planner._siting_core``;
:func:`greedy_mclp` and :func:`marginal_curve` in ``planner._siting_greedy``.

Examples
--------
Four cells, three candidate sites, costs in minutes and a 15-minute threshold:

>>> import numpy as np
>>> from planner.siting import MCLP
>>> cost = np.array([[5, 30, 40], [12, 9, 30], [30, 8, 14], [40, 35, 6]])
>>> m = MCLP.from_cost_matrix(cost, [100, 200, 300, 400], service_radius=15, n_sites=2, site_ids=["A", "B", "C"])
>>> r = m.solve()
>>> r.status, r.sites, r.objective
('optimal', ('C', 'A'), 1000.0)
>>> r.added_population.tolist(), r.cumulative_pct.round(1).tolist()
([700.0, 300.0], [70.0, 100.0])
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ._errors import InfeasibleModelError, InvalidValueError
from ._highs import Lp
from ._siting_base import DEFAULT_MIP_GAP, DEFAULT_TIME_LIMIT_S, _check_n_sites, _first, _Instance, _pct, _SitingModel
from ._siting_core import (
    _ROUND,
    ADDS_MIN_PERSONS,
    SitingResult,
    _adds,
    _coverage,
    _coverage_result,
    _fill_useless,
    _gains,
    _greedy,
    _highs,
    _mclp_lp,
    _mclp_start,
    _no_gain_reason,
    _rel_gap,
    _result,
    _run,
    _useful_order,
    _weight_bonus,
)
from ._siting_greedy import greedy_mclp, marginal_curve
from ._validate import check_solver_args

__all__ = [
    "ADDS_MIN_PERSONS",
    "DEFAULT_MIP_GAP",
    "DEFAULT_TIME_LIMIT_S",
    "LSCP",
    "MCLP",
    "CapacitatedMCLP",
    "PMedian",
    "SitingResult",
    "greedy_mclp",
    "marginal_curve",
]


class MCLP(_SitingModel):
    """Maximal covering location problem: the most people within the threshold of ``n_sites`` new sites.

    Build with :meth:`from_cost_matrix` or :meth:`from_travel_times`, passing ``n_sites`` (the number of
    new sites; existing ones are not counted), then call :meth:`solve`.
    """

    _name = "MCLP"

    def __init__(self, inst: _Instance, *, n_sites: int, build_s: float) -> None:
        super().__init__(inst, build_s=build_s)
        self.n_sites = _check_n_sites(n_sites, inst)

    def solve(self, *, time_limit_s: float | None = DEFAULT_TIME_LIMIT_S, mip_gap: float = DEFAULT_MIP_GAP,
              require_k: bool = False) -> SitingResult:
        """Solve with HiGHS.

        When fewer than ``n_sites`` new sites already cover everyone any
        candidate reaches, the others would add nobody: the result then
        holds the fewest sites covering that population (a set cover, solved
        exactly) and says why in ``zero_gain_reason``, unless `require_k`.

        Parameters
        ----------
        time_limit_s
            Time limit in seconds (None: none). When reached, the best
            solution found is returned with ``status="time_limit"``.
        mip_gap
            Relative optimality gap at which HiGHS may stop (0: proven
            optimal).
        require_k
            Return exactly ``n_sites`` sites; those adding nobody are marked
            in ``adds_population``.

        Returns
        -------
        result
            The chosen sites; ``objective`` is the covered population.

        Raises
        ------
        InfeasibleModelError
            If HiGHS fails or finds no solution within the time limit.
        """
        tl, gap = check_solver_args(time_limit_s, mip_gap)
        t0 = time.perf_counter()
        inst = self._inst
        cov = _coverage(inst)
        picks, _, greedy_bound = _greedy(cov, k=self.n_sites)
        h = _highs(_mclp_lp(cov, self.n_sites, bonus=_weight_bonus(inst, self.n_sites)), time_limit_s=tl, mip_gap=gap,
                   ipm=True)
        build_s = self._build_s + time.perf_counter() - t0
        sol = _run(h, what="MCLP", is_mip=True, start=_mclp_start(cov, picks))
        chosen = _fill_useless(inst, cov.cand[np.flatnonzero(sol.x[: len(cov.cand)] > 0.5)])
        status, solve_s = sol.status, sol.solve_s
        extra: list[int] = []
        open_mask = inst.site_mask(chosen)
        gain, _ = _gains(inst, inst.covered_by(open_mask), np.zeros(inst.n_cells))
        if self.n_sites and not (_adds(gain) & ~open_mask).any():
            # everyone any candidate reaches is covered: beyond the fewest sites doing so (a set cover, solved
            # exactly), sites add nobody; they are left out, or with require_k ranked last (and marked)
            fewest = LSCP(inst, target_pct=None, build_s=0.0).solve(time_limit_s=tl, mip_gap=gap)
            solve_s += fewest.solve_s
            if fewest.status != "optimal":
                status = fewest.status
            first = inst.site_ids.get_indexer(pd.Index(fewest.sites)).tolist()
            if len(first) < self.n_sites:
                extra = [j for j in sorted(chosen) if j not in set(first)][: self.n_sites - len(first)]
                chosen = first + extra
        res = _coverage_result(inst, model="MCLP", chosen=chosen, status=status, objective=0.0, bound=0.0, gap=0.0,
                               build_s=build_s, solve_s=solve_s, require_k=require_k, n_requested=self.n_sites,
                               after=extra)
        # the objective is the covered population counted exactly (HiGHS' value differs by float tolerance);
        # the bound is HiGHS' or, if tighter (e.g. stopped before the root LP), the greedy submodularity bound,
        # never above everyone the sites can reach
        obj = res.covered_after
        bound = max(min(sol.bound, cov.before + greedy_bound, cov.before + float(cov.W.sum())), obj)
        return replace(res, objective=obj, objective_bound=bound, mip_gap=_rel_gap(obj, bound))


class LSCP(_SitingModel):
    """Location set covering: the fewest new sites covering ``target_pct`` of the population.

    Build with :meth:`from_cost_matrix` or :meth:`from_travel_times`, passing ``target_pct`` (the share
    of the total population to cover, %, 0-100, counting cells covered by existing sites; None, the
    default, covers every coverable cell), then call :meth:`solve`. A target above the coverable share
    raises :class:`~planner.InfeasibleModelError` naming the largest achievable target.
    """

    _name = "LSCP"

    def __init__(self, inst: _Instance, *, target_pct: float | None = None, build_s: float) -> None:
        super().__init__(inst, build_s=build_s)
        if target_pct is not None:
            try:
                t = float(target_pct)
            except (TypeError, ValueError):
                t = math.nan
            if not 0 <= t <= 100:
                msg = f"target_pct={target_pct!r} is outside 0-100; fix: give the covered share of the population in %, e.g. 90"
                raise InvalidValueError(msg)
            reach = inst.weights[inst.reachable()].sum()
            max_pct = _pct(float(reach), inst.total)
            if t > max_pct + 1e-9:
                shown = math.floor(max_pct * 10) / 10
                msg = (f"target {t:g}% is not achievable: at most {shown:.1f}% of the population is within "
                       f"{inst.radius_label} of any candidate or existing site; fix: lower target_pct (--target-pct) "
                       f"to ≤ {shown:.1f}")
                raise InfeasibleModelError(msg)
            target_pct = t
        self.target_pct = target_pct

    def solve(self, *, time_limit_s: float | None = DEFAULT_TIME_LIMIT_S, mip_gap: float = DEFAULT_MIP_GAP) -> SitingResult:
        """Solve with HiGHS.

        Parameters
        ----------
        time_limit_s
            Time limit in seconds for each of the two solves (None: none).
        mip_gap
            Relative optimality gap at which HiGHS may stop (0: proven
            optimal).

        Returns
        -------
        result
            ``objective`` is the number of new sites; ``objective_bound`` the
            proven lower bound on it and ``mip_gap`` their relative gap.

        Raises
        ------
        InfeasibleModelError
            If HiGHS fails or finds no solution within the time limit.
        """
        tl, gap = check_solver_args(time_limit_s, mip_gap)
        t0 = time.perf_counter()
        inst = self._inst
        cov = _coverage(inst)
        G, nc = cov.A.shape
        Ac = cov.A_csr.tocoo()
        if self.target_pct is None:
            picks, _, _ = _greedy(cov, need=float(cov.W.sum()))
            lp = Lp.from_coo(cost=1.0 - _weight_bonus(inst, nc), lower=np.zeros(nc), upper=np.ones(nc),
                     integer=np.ones(nc, dtype=bool), rows=Ac.row, cols=Ac.col, vals=np.ones(Ac.nnz), row_lower=np.ones(G),
                     row_upper=np.full(G, np.inf), maximize=False)
            start = np.zeros(nc)
            start[picks] = 1.0
        else:
            need = self.target_pct / 100.0 * inst.total - cov.before
            picks, _, _ = _greedy(cov, need=need)
            rows = np.concatenate([Ac.row, np.arange(G), np.full(G, G)])
            cols = np.concatenate([Ac.col, nc + np.arange(G), nc + np.arange(G)])
            vals = np.concatenate([-np.ones(Ac.nnz), np.ones(G), cov.W])
            lp = Lp.from_coo(cost=np.concatenate([np.ones(nc), np.zeros(G)]), lower=np.zeros(nc + G), upper=np.ones(nc + G),
                     integer=np.concatenate([np.ones(nc, dtype=bool), np.zeros(G, dtype=bool)]),
                     rows=rows, cols=cols, vals=vals, row_lower=np.concatenate([np.full(G, -np.inf), [need]]),
                     row_upper=np.concatenate([np.zeros(G), [np.inf]]), maximize=False)
            start = _mclp_start(cov, picks)
        h = _highs(lp, time_limit_s=tl, mip_gap=gap)
        build_s = self._build_s + time.perf_counter() - t0
        sol = _run(h, what="LSCP", is_mip=True, start=start)
        x = np.flatnonzero(sol.x[:nc] > 0.5)
        count = len(x)
        lower = min(max(0.0, float(math.ceil(sol.bound - 1e-6))) if math.isfinite(sol.bound) else 0.0, count)
        status, solve_s = sol.status, sol.solve_s
        if self.target_pct is not None and 0 < count < nc:
            # second stage: the most coverage with that many sites (an MCLP started from the first-stage solution)
            t1 = time.perf_counter()
            h2 = _highs(_mclp_lp(cov, count, bonus=_weight_bonus(inst, count)), time_limit_s=tl, mip_gap=gap, ipm=True)
            build_s += time.perf_counter() - t1
            sol2 = _run(h2, what="LSCP (coverage among the fewest sites)", is_mip=True, start=_mclp_start(cov, x))
            solve_s += sol2.solve_s
            x2 = np.flatnonzero(sol2.x[:nc] > 0.5)
            covered = inst.weights[inst.covered_by(inst.site_mask(cov.cand[x]))].sum()
            covered2 = inst.weights[inst.covered_by(inst.site_mask(cov.cand[x2]))].sum()
            if len(x2) == count and covered2 >= covered:
                x = x2
            if sol2.status != "optimal":
                status = sol2.status
        # a site adding nobody is never needed for the target (only a solve stopped by its time limit leaves one)
        target = "every coverable cell" if self.target_pct is None else f"the target {self.target_pct:g}%"
        res = _coverage_result(inst, model="LSCP", chosen=cov.cand[x], status=status, objective=0.0, bound=0.0, gap=0.0,
                               build_s=build_s, solve_s=solve_s, require_k=False, n_requested=count,
                               zero_gain_reason=f"{target} is met without the sites that add nobody")
        count = len(res.sites)
        lower = min(lower, count)
        return replace(res, objective=float(count), objective_bound=lower, mip_gap=_rel_gap(float(count), lower),
                        n_sites_requested=None)


class PMedian(_SitingModel):
    """p-median: minimise population-weighted travel cost with ``n_sites`` new sites plus the existing ones.

    Build with :meth:`from_cost_matrix` or :meth:`from_travel_times`, passing ``n_sites``, then call
    :meth:`solve`. The threshold (``service_radius`` / ``max_minutes``) is optional here: it only caps the
    pairs, and every cell must then be served within it (or is excluded if it has no pair at all).
    """

    _name = "PMedian"
    _radius_required = False

    def __init__(self, inst: _Instance, *, n_sites: int, build_s: float) -> None:
        super().__init__(inst, build_s=build_s)
        self.n_sites = _check_n_sites(n_sites, inst)

    def solve(self, *, time_limit_s: float | None = DEFAULT_TIME_LIMIT_S, mip_gap: float = DEFAULT_MIP_GAP,
              require_k: bool = False) -> SitingResult:
        """Solve with HiGHS.

        New sites that bring nobody closer (every cell already has an open
        site at least as near) are left out and ``zero_gain_reason`` says
        so, unless `require_k`.

        Parameters
        ----------
        time_limit_s
            Time limit in seconds (None: none).
        mip_gap
            Relative optimality gap at which HiGHS may stop (0: proven
            optimal).
        require_k
            Return exactly ``n_sites`` sites; those adding nothing are marked
            in ``adds_population``.

        Returns
        -------
        result
            ``objective`` is the population-weighted travel cost (persons ×
            cost units); ``assignment`` gives each cell's site.

        Raises
        ------
        InfeasibleModelError
            If ``n_sites`` new sites cannot serve every cell that only
            candidates reach (the message gives the minimum), or HiGHS fails.
        """
        tl, gap = check_solver_args(time_limit_s, mip_gap)
        t0 = time.perf_counter()
        inst = self._inst
        w = inst.weights
        _, best_ex = inst.nearest_open(inst.existing)
        cand = inst.candidates
        nc = len(cand)
        col_of = np.full(inst.n_sites_all, -1, dtype=np.int64)
        col_of[cand] = np.arange(nc)
        keep = ~inst.existing[inst.site] & (inst.cost < best_ex[inst.cell]) & (w[inst.cell] > 0)
        pc, pj, pd_ = inst.cell[keep], col_of[inst.site[keep]], inst.cost[keep]
        cells, crow = np.unique(pc, return_inverse=True)  # cells that may use a candidate
        nz, ncell = len(pc), len(cells)
        fallback = np.isfinite(best_ex[cells])  # may stay with their nearest existing site
        fb_cells = np.flatnonzero(fallback)
        nu = len(fb_cells)
        fixed = np.isfinite(best_ex) & (w > 0)
        fixed[cells] = False
        offset = float((w[fixed] * best_ex[fixed]).sum())
        # columns: x (nc) | z (nz) | u (nu); rows: assignment (ncell) | z - x <= 0 (nz) | sum x = p
        zc, uc = nc + np.arange(nz), nc + nz + np.arange(nu)
        rows = np.concatenate([crow, fb_cells, ncell + np.arange(nz), ncell + np.arange(nz), np.full(nc, ncell + nz)])
        cols = np.concatenate([zc, uc, zc, pj, np.arange(nc)])
        vals = np.concatenate([np.ones(nz), np.ones(nu), np.ones(nz), -np.ones(nz), np.ones(nc)])
        n = nc + nz + nu
        lp = Lp.from_coo(cost=np.concatenate([-_weight_bonus(inst, self.n_sites), w[pc] * pd_,
                                              w[cells[fb_cells]] * best_ex[cells[fb_cells]]]),
                 lower=np.zeros(n), upper=np.ones(n), integer=np.arange(n) < nc, rows=rows, cols=cols, vals=vals,
                 row_lower=np.concatenate([np.ones(ncell), np.full(nz, -np.inf), [self.n_sites]]),
                 row_upper=np.concatenate([np.ones(ncell), np.zeros(nz), [self.n_sites]]), maximize=False,
                 offset=offset)
        h = _highs(lp, time_limit_s=tl, mip_gap=gap)
        build_s = self._build_s + time.perf_counter() - t0
        try:
            sol = _run(h, what="PMedian", is_mip=True)
        except InfeasibleModelError as err:
            if err.cause != "infeasible":
                raise
            need = ~fallback
            sub = keep.copy()
            sub[keep] = need[crow]
            kmin = self._min_sites(inst.cell[sub], col_of[inst.site[sub]], nc, tl)
            msg = (f"PMedian: {self.n_sites} new site(s) cannot serve all {int(need.sum())} populated cells that only "
                   f"candidate sites reach ({inst.radius_label}); at least {kmin} are needed; fix: raise n_sites to "
                   f"≥ {kmin} (or a larger threshold: max_minutes / service_radius)")
            raise InfeasibleModelError(msg) from None
        chosen = _fill_useless(inst, cand[np.flatnonzero(sol.x[:nc] > 0.5)], by_cost=True)
        order, added, adds = _useful_order(inst, chosen, require_k=require_k, by_cost=True)
        open_mask = inst.site_mask(order)
        pos, cost = inst.nearest_open(open_mask)
        served = pos >= 0
        objective = float((w[served] * cost[served]).sum())
        before = float(w[inst.covered_by(inst.existing)].sum())
        return _result(inst, model="PMedian", status=sol.status, objective=objective, bound=min(sol.bound, objective),
                       gap=sol.gap, build_s=build_s, solve_s=sol.solve_s, order=order, added=added,
                       covered_before=before, covered_after=float(w[served].sum()), assignment=pos,
                       excluded=~inst.reachable(), adds=adds, n_requested=self.n_sites,
                       zero_gain_reason=_no_gain_reason(inst, by_cost=True))

    @staticmethod
    def _min_sites(cell: np.ndarray, col: np.ndarray, nc: int, time_limit_s: float) -> int:
        """Fewest candidates covering every listed cell (a set cover), for the infeasibility message."""
        cells, row = np.unique(cell, return_inverse=True)
        lp = Lp.from_coo(cost=np.ones(nc), lower=np.zeros(nc), upper=np.ones(nc), integer=np.ones(nc, dtype=bool), rows=row,
                 cols=col, vals=np.ones(len(row)), row_lower=np.ones(len(cells)), row_upper=np.full(len(cells), np.inf),
                 maximize=False)
        sol = _run(_highs(lp, time_limit_s=time_limit_s, mip_gap=0.0), what="PMedian minimum sites",
                   is_mip=True)
        return int(round(sol.objective)) if sol.status == "optimal" else int(math.ceil(sol.bound - 1e-6))


def _check_capacity(capacity: Any, inst: _Instance) -> np.ndarray:
    sids = inst.site_ids
    if isinstance(capacity, Mapping):
        capacity = pd.Series(capacity, dtype=object)
    if isinstance(capacity, pd.Series):
        cap = pd.to_numeric(capacity.reindex(sids), errors="coerce").to_numpy(dtype=float)
    elif np.ndim(capacity) == 0:
        try:
            cap = np.full(len(sids), float(capacity))
        except (TypeError, ValueError):
            cap = np.full(len(sids), math.nan)
    else:
        try:
            cap = np.asarray(capacity, dtype=float)
        except (TypeError, ValueError):
            cap = np.full(len(sids), math.nan)
        if cap.shape != (len(sids),):
            msg = (f"capacity has {cap.size} values for {len(sids)} sites; fix: pass a Series indexed by site id "
                   "(persons; np.inf for unlimited)")
            raise InvalidValueError(msg)
    miss = np.isnan(cap)
    if miss.any():
        msg = (f"capacity is missing for {int(miss.sum())} site(s) ({_first(sids[miss])}); fix: give every candidate "
               "and existing site a capacity in persons (np.inf for unlimited)")
        raise InvalidValueError(msg)
    neg = cap < 0
    if neg.any():
        msg = (f"capacity is negative for {int(neg.sum())} site(s) ({_first(sids[neg])}); fix: capacities are persons "
               "served, ≥ 0")
        raise InvalidValueError(msg)
    return cap


class CapacitatedMCLP(_SitingModel):
    """MCLP in which each site serves at most its capacity (persons).

    By default a cell may be split between sites (continuous assignment
    shares); ``binary_assignment=True`` serves each cell whole from one site.
    Capacities are required for every site, existing ones included (np.inf
    for unlimited). Build with :meth:`from_cost_matrix` or
    :meth:`from_travel_times`, passing ``n_sites``, ``capacity`` (persons
    each site can serve: a Series or mapping by site id, one number for all
    sites, or, from a cost matrix only, an array aligned with its columns)
    and optionally ``binary_assignment`` (serve each cell whole from one
    site, binary :math:`z_{ij}`, instead of allowing split cells), then call
    :meth:`solve`.
    """

    _name = "CapacitatedMCLP"

    def __init__(self, inst: _Instance, *, n_sites: int, capacity: Any, binary_assignment: bool = False,
                 build_s: float) -> None:
        super().__init__(inst, build_s=build_s)
        self.n_sites = _check_n_sites(n_sites, inst)
        self.capacity = pd.Series(_check_capacity(capacity, inst), index=inst.site_ids, name="capacity")
        self.binary_assignment = bool(binary_assignment)
        self._bonus = _weight_bonus(inst, self.n_sites)

    @classmethod
    def _check_od_params(cls, params: dict[str, Any]) -> None:
        capacity = params.get("capacity")
        if not isinstance(capacity, (pd.Series, Mapping)) and np.ndim(capacity) != 0:
            msg = "capacity must be a Series or mapping by site id (or one number); fix: index capacities by site id"
            raise InvalidValueError(msg)

    def _lp(self) -> tuple[Lp, np.ndarray, np.ndarray]:
        """Columns x (candidates) | z (pairs of populated cells); also the pair mask and candidate positions."""
        inst = self._inst
        w = inst.weights
        cap = self.capacity.to_numpy()
        cand = inst.candidates
        nc = len(cand)
        col_of = np.full(inst.n_sites_all, -1, dtype=np.int64)
        col_of[cand] = np.arange(nc)
        keep = w[inst.cell] > 0
        pc, ps = inst.cell[keep], inst.site[keep]
        cells, crow = np.unique(pc, return_inverse=True)
        nz, ncell = len(pc), len(cells)
        zc = nc + np.arange(nz)
        is_cand = ~inst.existing[ps]
        finite = np.isfinite(cap[ps])
        # capacity rows, one per site with a finite capacity and a pair
        cap_sites, cap_row = np.unique(ps[finite], return_inverse=True)
        ncap = len(cap_sites)
        cand_cap = ~inst.existing[cap_sites]
        link = np.flatnonzero(is_cand)
        r0, r1, r2 = ncell, ncell + ncap, ncell + ncap + len(link)
        rows = np.concatenate([crow, r0 + cap_row, r0 + np.flatnonzero(cand_cap), r1 + np.arange(len(link)),
                               r1 + np.arange(len(link)), np.full(nc, r2)])
        cols = np.concatenate([zc, zc[finite], col_of[cap_sites[cand_cap]], zc[link], col_of[ps[link]], np.arange(nc)])
        vals = np.concatenate([np.ones(nz), w[pc][finite], -cap[cap_sites[cand_cap]], np.ones(len(link)),
                               -np.ones(len(link)), np.ones(nc)])
        cap_upper = np.where(cand_cap, 0.0, cap[cap_sites])
        n = nc + nz
        integer = np.ones(n, dtype=bool) if self.binary_assignment else np.arange(n) < nc
        lp = Lp.from_coo(cost=np.concatenate([self._bonus, w[pc]]), lower=np.zeros(n), upper=np.ones(n), integer=integer,
                 rows=rows, cols=cols, vals=vals,
                 row_lower=np.concatenate([np.full(r2, -np.inf), [self.n_sites]]),
                 row_upper=np.concatenate([np.ones(ncell), cap_upper, np.zeros(len(link)), [self.n_sites]]),
                 maximize=True)
        return lp, keep, cand

    def solve(self, *, time_limit_s: float | None = DEFAULT_TIME_LIMIT_S, mip_gap: float = DEFAULT_MIP_GAP,
              require_k: bool = False) -> SitingResult:
        """Solve with HiGHS.

        The new sites are ranked by the population each serves in the
        optimal allocation; ``added_population`` and ``cumulative_pct`` come
        from re-solving the allocation with the first 1, 2, ... ranked sites
        open (plus the existing ones), so they are exact and never decrease.
        Sites adding nobody at the end of that ranking are left out (and
        ``zero_gain_reason`` says why) unless `require_k`; one adding nobody
        within the ranking is marked in ``adds_population``.

        Parameters
        ----------
        time_limit_s
            Time limit in seconds for each solve (None: none).
        mip_gap
            Relative optimality gap at which HiGHS may stop (0: proven
            optimal).
        require_k
            Return exactly ``n_sites`` sites.

        Returns
        -------
        result
            ``objective`` is the served population; ``allocation`` the
            (possibly split) assignment.

        Raises
        ------
        InfeasibleModelError
            If HiGHS fails or finds no solution within the time limit.
        """
        tl, gap = check_solver_args(time_limit_s, mip_gap)
        t0 = time.perf_counter()
        inst = self._inst
        w = inst.weights
        lp, keep, cand = self._lp()
        nc = len(cand)
        h = _highs(lp, time_limit_s=tl, mip_gap=gap)
        build_s = self._build_s + time.perf_counter() - t0
        sol = _run(h, what="CapacitatedMCLP", is_mip=True)
        xs = sol.x[:nc] > 0.5
        chosen = cand[xs]
        z = sol.x[nc:]
        pc, ps = inst.cell[keep], inst.site[keep]
        served_by_site = np.bincount(ps, weights=w[pc] * z, minlength=inst.n_sites_all)
        order = sorted(chosen.tolist(), key=lambda j: (-round(float(served_by_site[j]), _ROUND), j))
        # exact served population with the existing sites and the first r ranked new sites
        p_row = len(lp.row_lower) - 1
        solve_s = sol.solve_s
        prefix, prefix_z = [], []
        for r in range(len(order) + 1):
            up = np.zeros(nc)
            up[np.searchsorted(cand, order[:r])] = 1.0
            h.changeColsBounds(nc, np.arange(nc, dtype=np.int32), up.copy(), up)
            h.changeRowBounds(p_row, float(r), float(r))
            s = _run(h, what="CapacitatedMCLP (ranking)", is_mip=True)
            solve_s += s.solve_s
            prefix.append(s.objective - float(self._bonus @ s.x[:nc]))
            prefix_z.append(s.x[nc:])
        best_r = [int(np.argmax(prefix[: r + 1])) for r in range(len(prefix))]  # the allocation behind each prefix
        prefix = list(np.maximum.accumulate(prefix))
        after = max(prefix[-1], sol.objective - float(self._bonus @ sol.x[:nc]))
        prefix[-1] = after
        added = list(np.diff(prefix))
        adds = _adds(added)
        if not require_k:  # sites adding nobody at the end of the ranking are left out, with their allocation
            n_keep = int(np.flatnonzero(adds)[-1]) + 1 if adds.any() else 0
            if n_keep < len(order):
                z = prefix_z[best_r[n_keep]]
                after = prefix[n_keep]
                order, added, adds = order[:n_keep], added[:n_keep], adds[:n_keep]
        share = z > 1e-9
        alloc = pd.DataFrame({
            "cell_id": inst.cell_ids.to_numpy()[pc[share]],
            "site_id": inst.site_ids.to_numpy(dtype=object)[ps[share]],
            "share": np.minimum(z[share], 1.0),
            "population": w[pc[share]] * np.minimum(z[share], 1.0),
        })
        # assignment: the site serving the largest share of each cell
        main = np.full(inst.n_cells, -1, dtype=np.int64)
        if share.any():
            o = np.lexsort((ps[share], -z[share], pc[share]))
            c_sorted, s_sorted = pc[share][o], ps[share][o]
            first = np.ones(len(o), dtype=bool)
            first[1:] = c_sorted[1:] != c_sorted[:-1]
            main[c_sorted[first]] = s_sorted[first]
        reason = f"no candidate can serve anyone still unserved within {inst.radius_label} and the capacities"
        if sol.status != "optimal":
            reason += " (not proven: the solve stopped at its time limit)"
        return _result(inst, model="CapacitatedMCLP", status=sol.status, objective=after, bound=sol.bound,
                       gap=sol.gap, build_s=build_s, solve_s=solve_s, order=order, added=added,
                       covered_before=prefix[0], covered_after=after, assignment=main, excluded=~inst.reachable(),
                       allocation=alloc, adds=adds, n_requested=self.n_sites, zero_gain_reason=reason)
