"""The greedy MCLP heuristic and the marginal-value curve (exact solves for 1..K sites), on any built MCLP.

Public names live in :mod:`planner.siting`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Protocol

import numpy as np
import pandas as pd

from ._siting_base import DEFAULT_MIP_GAP, DEFAULT_TIME_LIMIT_S, _check_n_sites, _Instance, _pct
from ._siting_core import (
    _ROUND,
    SitingResult,
    _adds,
    _coverage,
    _coverage_result,
    _greedy,
    _highs,
    _mclp_lp,
    _mclp_start,
    _rank,
    _rel_gap,
    _run,
)
from ._validate import check_solver_args


class _KSitesModel(Protocol):
    """What the heuristics read from a model: an :class:`~planner.siting.MCLP` (its instance and K)."""

    n_sites: int

    @property
    def instance(self) -> _Instance: ...

    @property
    def build_s(self) -> float: ...


def greedy_mclp(model: _KSitesModel, *, lp_bound: bool = True, time_limit_s: float | None = DEFAULT_TIME_LIMIT_S,
                require_k: bool = False) -> SitingResult:
    r"""Solve the MCLP with the greedy heuristic and report its gap to an upper bound.

    Opens, one at a time, the candidate adding the most newly covered
    population (ties: input order). Coverage is submodular, so the greedy
    solution covers at least :math:`1 - 1/e \approx 63\%` of the optimum
    (Nemhauser et al., 1978); in practice it is within a few percent. Use it
    when the exact model is too big for the time available.

    Parameters
    ----------
    model
        The MCLP to solve approximately.
    lp_bound
        Solve the LP relaxation (fast even when the MIP is not) for the upper
        bound. The bound reported is the smaller of it and the submodularity
        bound :math:`f(S_t) + \sum` of the ``n_sites`` largest marginal gains
        at any greedy step, which needs no solver.
    time_limit_s
        Time limit in seconds for the LP relaxation.
    require_k
        Return exactly ``n_sites`` sites. By default the greedy stops once
        no candidate reaches anyone still uncovered (``zero_gain_reason``).

    Returns
    -------
    result
        ``status="heuristic"``; ``objective`` is the covered population,
        ``objective_bound`` the upper bound and ``mip_gap`` = (bound -
        objective) / objective, an upper bound on the true relative gap
        (optimum - objective) / objective.

    Examples
    --------
    >>> import numpy as np
    >>> from planner.siting import MCLP
    >>> cost = np.array([[5, 30, 40], [12, 9, 30], [30, 8, 14], [40, 35, 6]])
    >>> m = MCLP.from_cost_matrix(cost, [100, 200, 300, 400], service_radius=15, n_sites=2)
    >>> r = greedy_mclp(m)
    >>> r.status, r.objective, r.mip_gap
    ('heuristic', 1000.0, 0.0)
    """
    tl, _ = check_solver_args(time_limit_s, 0.0)
    t0 = time.perf_counter()
    inst = model.instance
    cov = _coverage(inst)
    build_s = model.build_s + time.perf_counter() - t0
    t1 = time.perf_counter()
    picks, _, bound = _greedy(cov, k=model.n_sites)
    chosen = cov.cand[picks]
    solve_s = time.perf_counter() - t1
    bound = min(bound + cov.before, cov.before + float(cov.W.sum()))  # never above all coverable people
    if lp_bound:
        sol = _run(_highs(_mclp_lp(cov, model.n_sites, relax=True), time_limit_s=tl, mip_gap=0.0, ipm=True),
                   what="MCLP LP relaxation", is_mip=False)
        solve_s += sol.solve_s
        if sol.status == "optimal":  # IPM without crossover: widen by its tolerance so the bound stays valid
            bound = min(bound, sol.objective + 1e-7 * max(1.0, abs(sol.objective)))
    res = _coverage_result(inst, model="greedy_mclp", chosen=chosen, status="heuristic", objective=0.0, bound=0.0,
                           gap=0.0, build_s=build_s, solve_s=solve_s, require_k=require_k, n_requested=model.n_sites)
    obj = res.covered_after
    bound = max(bound, obj)
    return replace(res, objective=obj, objective_bound=bound, mip_gap=_rel_gap(obj, bound))


def marginal_curve(
    model: _KSitesModel,
    *,
    max_sites: int | None = None,
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S,
    mip_gap: float = DEFAULT_MIP_GAP,
    require_k: bool = False,
) -> pd.DataFrame:
    """Covered population after 1..K new sites, each solved exactly.

    Every k is a separate exact MCLP solve (the optimal k-site set need not
    contain the optimal (k-1)-site set), started from the (k-1)-site solution
    plus the best extra site, so coverage never drops as k grows even when a
    solve stops at the time limit. The curve stops at the last k that adds
    population: once a k adds nobody, no candidate reaches anyone still
    uncovered (the start already holds the best extra site), and no larger k
    can add anyone either. With `require_k` it goes on to K, those rows
    marked ``adds_population=False``.

    Parameters
    ----------
    model
        The MCLP (its ``n_sites`` is the default K).
    max_sites
        K, the largest number of new sites.
    time_limit_s
        Time limit in seconds for each solve (None: none).
    mip_gap
        Relative optimality gap for each solve.
    require_k
        Give every k up to K, also those adding nobody.

    Returns
    -------
    curve
        Indexed by ``n_sites`` (1..K, or fewer): ``covered_population``
        (persons), ``covered_pct``, ``added_population`` (over k - 1; k = 1
        over the existing sites), ``adds_population``, ``status``,
        ``mip_gap``, ``solve_s`` and ``sites`` (tuple of ranked site ids).

    Examples
    --------
    >>> import numpy as np
    >>> from planner.siting import MCLP
    >>> cost = np.array([[5, 30, 40], [12, 9, 30], [30, 8, 14], [40, 35, 6]])
    >>> m = MCLP.from_cost_matrix(cost, [100, 200, 300, 400], service_radius=15, n_sites=3)
    >>> marginal_curve(m)["added_population"].tolist()
    [700.0, 300.0]
    >>> marginal_curve(m, require_k=True)["adds_population"].tolist()
    [True, True, False]
    """
    tl, gap = check_solver_args(time_limit_s, mip_gap)
    inst = model.instance
    K = model.n_sites if max_sites is None else _check_n_sites(max_sites, inst)
    cov = _coverage(inst)
    nc = len(cov.cand)
    h = _highs(_mclp_lp(cov, 0), time_limit_s=tl, mip_gap=gap, ipm=True)
    p_row = cov.A.shape[0]
    rows = []
    prev = inst.weights[inst.covered_by(inst.existing)].sum()
    prev_picks: list[int] = []
    for k in range(1, K + 1):
        # start: the previous solution plus the candidate adding the most
        x = np.zeros(nc)
        x[prev_picks] = 1.0
        y = np.minimum(cov.A_csr @ x, 1.0) if cov.A.shape[0] else np.zeros(0)
        gains = cov.A.T @ (cov.W * (1.0 - y)) if cov.A.shape[0] else np.zeros(nc)
        gains[prev_picks] = -np.inf
        start_picks = [*prev_picks, int(np.argmax(np.round(gains, _ROUND)))]
        h.changeRowBounds(p_row, float(k), float(k))
        sol = _run(h, what=f"MCLP (k={k})", is_mip=True, start=_mclp_start(cov, start_picks))
        picks = np.flatnonzero(sol.x[:nc] > 0.5).tolist()
        covered = float(inst.weights[inst.covered_by(inst.site_mask(cov.cand[picks]))].sum())
        start_cov = float(inst.weights[inst.covered_by(inst.site_mask(cov.cand[start_picks]))].sum())
        if start_cov > covered:  # never report less than the start we gave
            picks, covered = start_picks, start_cov
        adds = bool(_adds([covered - prev])[0])
        if not adds and not require_k:
            break
        order = _rank(inst, cov.cand[picks])[0]
        rows.append({"n_sites": k, "covered_population": covered, "covered_pct": _pct(covered, inst.total),
                     "added_population": covered - prev, "adds_population": adds, "status": sol.status,
                     "mip_gap": sol.gap, "solve_s": sol.solve_s, "sites": tuple(inst.site_ids[order].tolist())})
        prev, prev_picks = covered, picks
    cols = ["covered_population", "covered_pct", "added_population", "adds_population", "status", "mip_gap", "solve_s",
            "sites"]
    if not rows:
        return pd.DataFrame(columns=cols, index=pd.RangeIndex(1, 1, name="n_sites"))
    return pd.DataFrame(rows).set_index("n_sites")[cols]
