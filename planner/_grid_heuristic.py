"""The grid assignment's heuristic: LP rounding, contiguity repair, single-cell moves, large-neighbourhood search.

Public names live in :mod:`planner.assignment`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, dijkstra

from ._errors import InfeasibleModelError
from ._grid_model import (
    _EPS_M,
    LNS_SUB_MAX_NODES,
    PROGRESS_EVERY_S,
    SUB_GAP,
    _diagnose_infeasible,
    _Lp,
    _Model,
    _solve,
    _Work,
)

logger = logging.getLogger("planner.assignment")


def _x_from_g(m: _Model, g: np.ndarray) -> np.ndarray:
    x = np.zeros(len(m.vc))
    x[m.var_of[np.arange(m.n), g]] = 1.0
    return x


def _g_from_x(m: _Model, x: np.ndarray) -> np.ndarray:
    """Lead per cell from a (possibly fractional) pair vector: the largest share, ties to the faster lead."""
    order = np.lexsort((m.vt, -np.round(x, 9), m.vc))
    first = np.ones(len(order), dtype=bool)
    first[1:] = m.vc[order][1:] != m.vc[order][:-1]
    g = np.empty(m.n, dtype=np.int64)
    g[m.vc[order][first]] = m.vl[order][first]
    fx = m.fixed >= 0
    g[fx] = m.fixed[fx]
    return g


def _same_grid_pred_edges(m: _Model, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges k -> i within one grid where k is strictly closer to that grid's home than i."""
    coo = m.adj.tocoo()
    k, i = coo.row, coo.col
    same = g[k] == g[i]
    k, i = k[same], i[same]
    j = g[i]
    closer = m.d[j, k] < m.d[j, i] - _EPS_M
    return k[closer], i[closer]


def _valid(m: _Model, g: np.ndarray) -> np.ndarray:
    """Cells that reach their grid's home by ever-closer neighbours in the same grid."""
    k, i = _same_grid_pred_edges(m, g)
    n = m.n
    home_ok = g[m.roots] == np.arange(m.J)
    src = np.concatenate([np.full(int(home_ok.sum()), n), k])
    dst = np.concatenate([m.roots[home_ok], i])
    G = sp.csr_array((np.ones(len(src)), (src, dst)), shape=(n + 1, n + 1))
    reached = breadth_first_order(G, n, directed=True, return_predecessors=False)
    ok = np.zeros(n + 1, dtype=bool)
    ok[reached] = True
    return ok[:n]


def _heuristic(m: _Model, lp: _Lp, *, work: _Work, tolerance: float) -> tuple[np.ndarray | None, float]:
    """LP bound, and a contiguous assignment: LP rounding, repair, single moves, then sub-MIP neighbourhoods."""
    total = float(m.a.sum())
    try:
        sol = _solve(lp, integer=False, mip_gap=0.0, what="grid assignment LP relaxation", work=work)
    except InfeasibleModelError as err:
        if err.cause != "infeasible":
            raise
        raise _diagnose_infeasible(m, lp, tolerance) from None
    if sol is None:  # pragma: no cover - the LP ran out of time: start from adjacency zones
        g, bound = _voronoi(m), 0.0
    else:
        g, bound = _g_from_x(m, sol[0]), sol[1] * total
    logger.info("grid LP relaxation: lower bound %.2f min mean travel time", bound / total / 60 if total else 0.0)
    repaired = _repair_contiguity(m, g)
    if repaired is None:  # pragma: no cover - rare: leave it to the MIP
        return None, bound
    g = _local_search(m, repaired, balance=True, work=work)
    g = _lns(m, lp, g, work=work, bound=bound)
    g = _local_search(m, g, balance=False, work=work)
    return g, bound


def _violation(m: _Model, g: np.ndarray) -> np.ndarray:
    load = m.loads(g)
    return np.asarray(np.maximum(load - m.upper, 0) + np.maximum(m.lower - load, 0), dtype=float)


def _better(m: _Model, new: np.ndarray, old: np.ndarray) -> bool:
    """Lexicographic: less load violation (persons), then less cost."""
    vn, vo = float(_violation(m, new).sum()), float(_violation(m, old).sum())
    if vn < vo - 1e-6:
        return True
    return vn <= vo + 1e-6 and m.cost(new) < m.cost(old) * (1 - 1e-9) - 1e-9


def _lns(m: _Model, lp: _Lp, g: np.ndarray, *, work: _Work, bound: float, min_leads: int = 3, max_leads: int = 8,
         sub_nodes: int = LNS_SUB_MAX_NODES) -> np.ndarray:
    """Large-neighbourhood search: re-solve the grids of a lead and its neighbours exactly, the others held.

    A neighbourhood is a seed lead's grid and the grids next to it (those
    sharing most cell borders first, ties by lead order), `k` leads in all.
    Its sub-MIP is the full model restricted to the free cells and these
    leads: every other pair is 0 in the current solution and touches none of
    its rows, so no right-hand side changes. While some load is outside its
    band, the violated leads are seeds, with `max_leads` leads and elastic
    (penalised) bands; then every lead is a seed in turn, `k` growing from
    `min_leads` to `max_leads` each time a whole round improves nothing
    (variable neighbourhood search), until ``work.max_submips`` sub-MIPs
    (each within `sub_nodes` branch-and-bound nodes, three times that while
    balancing) have been solved. With `max_leads` leads or fewer, only the
    balancing runs: the full MIP does the rest.
    """
    assert lp.cont_row is not None
    A = lp.A.tocsr()
    total = float(m.a.sum())
    penalty = 100.0 * float(m.vt.max())  # per unit share of the population outside a band
    rows_adj, cols_adj = m.adj.nonzero()
    g = g.copy()
    k = min_leads
    # neighbourhoods close to all leads are the full MIP: with few leads, only balance here and leave the rest to it
    improve = m.J > max_leads
    last_log = time.perf_counter()
    while work.submips < work.max_submips and ((improve and k <= max_leads) or _violation(m, g).sum() > 1e-6):
        if work.expired():
            break
        viol = _violation(m, g)
        violated = np.flatnonzero(viol > 1e-6)
        balancing = len(violated) > 0
        seeds = violated[np.argsort(-viol[violated], kind="stable")] if balancing else \
            np.argsort(-m.loads(g) / m.target, kind="stable")
        size = max_leads if balancing else k
        improved = False
        for seed in seeds:
            if work.submips >= work.max_submips or work.expired():
                break
            border = (g[rows_adj] == seed) & (g[cols_adj] != seed)
            shared = np.bincount(g[cols_adj[border]], minlength=m.J)
            by_border = np.argsort(-shared, kind="stable")  # most shared borders first, ties by lead order
            nb = np.concatenate([[seed], by_border[shared[by_border] > 0][: size - 1]]).astype(np.int64)
            new = _solve_neighbourhood(m, lp, A, g, nb, penalty=penalty, total=total, elastic=bool(viol[nb].sum() > 1e-6),
                                       work=work, max_nodes=sub_nodes * (3 if balancing else 1))
            work.submips += 1
            if new is not None and _better(m, new, g):
                g = new
                improved = True
                logger.debug("neighbourhood of %d leads around lead %d: violation %.0f persons, cost %.6g person-s",
                             len(nb), seed, _violation(m, g).sum(), m.cost(g))
            if time.perf_counter() - last_log >= PROGRESS_EVERY_S:
                last_log = time.perf_counter()
                cost = m.cost(g)
                logger.info("grid heuristic: %d of at most %d sub-problems, %.2f min mean travel time, %.2f %% above the "
                            "LP bound%s", work.submips, work.max_submips, cost / total / 60,
                            100 * (cost - bound) / cost if cost > 0 else 0.0,
                            f", {_violation(m, g).sum():,.0f} persons outside the load bands" if balancing else "")
            if improved and balancing:
                break  # re-rank the violated leads
        if balancing and not improved:
            break  # the loads cannot be fixed this way
        if not balancing and not improved:
            k += 1
    return g


def _solve_neighbourhood(m: _Model, lp: _Lp, A: sp.csr_array, g: np.ndarray, nb: np.ndarray, *, penalty: float,
                         total: float, elastic: bool, work: _Work, max_nodes: int) -> np.ndarray | None:
    assert lp.cont_row is not None
    in_nb = np.zeros(m.J, dtype=bool)
    in_nb[nb] = True
    free = in_nb[g]
    cols = np.flatnonzero(free[m.vc] & in_nb[m.vl])
    cont = lp.cont_row[cols]
    rows = np.concatenate([np.flatnonzero(free), m.n + nb, cont[cont >= 0]])
    sub = A[rows][:, cols]
    k = len(nb) if elastic else 0  # elastic (penalised) load bands only while some load is outside its band
    na = int(free.sum())
    r = np.concatenate([na + np.arange(k), na + np.arange(k)])
    c = np.concatenate([np.arange(k), k + np.arange(k)])
    v = np.concatenate([np.ones(k), -np.ones(k)])
    slack = sp.csc_array((v, (r, c)), shape=(len(rows), 2 * k))
    M = sp.hstack([sp.csc_array(sub), slack], format="csc")
    M.sort_indices()
    ncol = len(cols)
    sub_lp = _Lp(cost=np.concatenate([lp.cost[cols], np.full(2 * k, penalty)]),
                 lower=np.concatenate([lp.lower[cols], np.zeros(2 * k)]),
                 upper=np.concatenate([lp.upper[cols], np.full(2 * k, np.inf)]),
                 A=M, row_lower=lp.row_lower[rows], row_upper=lp.row_upper[rows], n_load_rows=len(nb))
    load = m.loads(g)[nb[:k]]
    start = np.concatenate([(g[m.vc[cols]] == m.vl[cols]).astype(float),
                            np.maximum(m.lower[nb[:k]] - load, 0) / total, np.maximum(load - m.upper[nb[:k]], 0) / total])
    integrality = np.concatenate([np.ones(ncol, dtype=np.int32), np.zeros(2 * k, dtype=np.int32)])
    try:
        sol = _solve(sub_lp, integer=True, mip_gap=SUB_GAP, what="grid neighbourhood", work=work, max_nodes=max_nodes,
                     start=start, integrality=integrality)
    except InfeasibleModelError:  # pragma: no cover - the current solution is feasible for the sub-MIP
        return None
    if sol is None:
        return None
    x = sol[0][:ncol]
    new = g.copy()
    pick = cols[x > 0.5]
    new[m.vc[pick]] = m.vl[pick]
    return new


def _voronoi(m: _Model) -> np.ndarray:
    """Each cell to the lead whose home is nearest over the adjacency (a contiguous start)."""
    dd = np.where(m.var_of.T >= 0, m.d, np.inf)
    g = np.asarray(np.argmin(dd, axis=0), dtype=np.int64)
    fx = m.fixed >= 0
    g[fx] = m.fixed[fx]
    return g


def _repair_contiguity(m: _Model, g: np.ndarray) -> np.ndarray | None:
    """Re-attach cells that break ordered contiguity to an adjacent grid at the least added cost."""
    g = g.copy()
    locked = m.fixed >= 0
    coo = m.adj.tocoo()
    for _ in range(m.n + 1):
        ok = _valid(m, g)
        if ok.all():
            return g
        # attach invalid cells i to the grid of a valid neighbour k that is closer to that grid's home
        k, i = coo.row, coo.col
        j = g[k]
        v = m.var_of[i, j]
        cand = ok[k] & ~ok[i] & (v >= 0) & ~locked[i] & (m.d[j, k] < m.d[j, i] - _EPS_M)
        if cand.any():
            c = pd.DataFrame({"i": i[cand], "j": j[cand], "t": m.vt[v[cand]]}).sort_values(["i", "t", "j"])
            c = c.drop_duplicates("i")
            g[c["i"].to_numpy()] = c["j"].to_numpy()
            continue
        # stuck: give the whole adjacency path from a home to one invalid cell to that lead, and lock it
        bad = np.flatnonzero(~ok)
        i0 = int(bad[np.argmin(np.nanmin(np.where(m.var_of[bad] >= 0, m.d[:, bad].T, np.inf), axis=1))])
        j0 = int(np.argmin(np.where(m.var_of[i0] >= 0, m.d[:, i0], np.inf)))
        allowed = (m.var_of[:, j0] >= 0) & (~locked | (g == j0))
        idx = np.flatnonzero(allowed)
        sub_adj: Any = m.adj[idx][:, idx]
        _, preds = dijkstra(sub_adj, directed=False, indices=[int(np.searchsorted(idx, m.roots[j0]))],
                            return_predecessors=True)
        pred = preds[0]
        node = int(np.searchsorted(idx, i0))
        if pred[node] < 0 and idx[node] != m.roots[j0]:  # pragma: no cover - locked cells cut the path
            break
        while node >= 0:
            g[idx[node]] = j0
            locked[idx[node]] = True
            node = int(pred[node])
    return None  # pragma: no cover


def _loads_ok(m: _Model, g: np.ndarray) -> bool:
    load = m.loads(g)
    return bool(((load >= m.lower - 1e-6) & (load <= m.upper + 1e-6)).all())


def _local_search(m: _Model, g: np.ndarray, *, balance: bool, work: _Work | None = None) -> np.ndarray:
    """Move single boundary cells between grids, keeping every grid contiguous (ordered rule).

    ``balance=True`` takes the moves that most reduce the total load violation
    (cheapest per person first) until every load is within its band;
    ``balance=False`` then takes the most cost-reducing moves that keep every
    load within its band. At most ``20 n + 100`` moves (a work bound; `work`'s deadline is the safety net).
    """
    g = g.copy()
    coo = m.adj.tocoo()
    k_all, i_all = coo.row, coo.col
    movable = m.fixed < 0
    for _ in range(20 * m.n + 100):
        if work is not None and work.expired():
            break
        load = m.loads(g)
        viol = np.maximum(load - m.upper, 0) + np.maximum(m.lower - load, 0)
        if balance and viol.sum() <= 1e-6:
            break
        # cells whose removal keeps their grid valid: no same-grid dependant relies on them alone
        pk, pi = _same_grid_pred_edges(m, g)
        npred = np.bincount(pi, minlength=m.n)
        sole = np.zeros(m.n, dtype=bool)
        sole[pk[npred[pi] == 1]] = True
        # candidate moves: cell i into the grid j of a neighbour k closer to j's home
        i, k = i_all, k_all
        j = g[k]
        v = m.var_of[i, j]
        cand = (j != g[i]) & (v >= 0) & movable[i] & ~sole[i] & (m.d[j, k] < m.d[j, i] - _EPS_M)
        if not cand.any():
            break
        i, j, v = i[cand], j[cand], v[cand]
        src = g[i]
        ai = m.a[i]
        dcost = ai * (m.vt[v] - m.vt[m.var_of[i, src]])
        new_src, new_dst = load[src] - ai, load[j] + ai

        def _v(x: np.ndarray, jj: np.ndarray) -> np.ndarray:
            return np.asarray(np.maximum(x - m.upper[jj], 0) + np.maximum(m.lower[jj] - x, 0), dtype=float)

        dviol = _v(new_src, src) + _v(new_dst, j) - viol[src] - viol[j]
        if balance:
            ok = dviol < -1e-9
            if not ok.any():
                break
            score = np.where(ok, dcost / -np.minimum(dviol, -1e-12), np.inf)
        else:
            ok = (dcost < -1e-9) & (dviol <= 1e-9)
            if not ok.any():
                break
            score = np.where(ok, dcost, np.inf)
        best = int(np.argmin(score))
        g[i[best]] = j[best]
    return g
