"""The grid assignment's reduced model: input checks, the model arrays, the MIP and its HiGHS solve, diagnoses.

Public names live in :mod:`planner.assignment`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import dijkstra

from . import _highs
from ._errors import InfeasibleModelError, InvalidValueError, MissingColumnError
from ._validate import check_od

logger = logging.getLogger("planner.assignment")

MIP_MAX_NODES: int = 200  # branch-and-bound nodes of the full MIP: its deterministic work bound
LNS_MAX_SUBMIPS: int = 60  # neighbourhood sub-MIPs of the heuristic: its deterministic work bound
LNS_SUB_MAX_NODES: int = 50  # branch-and-bound nodes of one neighbourhood sub-MIP
PROGRESS_EVERY_S: float = 5.0  # seconds between progress lines (logged at INFO; they never change the result)
SUB_GAP = 1e-3  # relative gap of a neighbourhood sub-MIP

Status = Literal["optimal", "work_limit", "time_limit", "heuristic"]
_EPS_M = 1e-6  # metres; two adjacency distances closer than this are equal
_UNASSIGNED = -1


# --------------------------------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Model:
    """Reduced instance: model cells 0..n-1 × leads 0..J-1, with the pairs that may be used."""

    cell_ids: np.ndarray  # model cell -> demand index value
    lead_ids: np.ndarray
    a: np.ndarray  # persons per model cell
    vc: np.ndarray  # pair -> model cell
    vl: np.ndarray  # pair -> lead
    vt: np.ndarray  # pair -> travel time (s)
    var_of: np.ndarray  # (n, J) pair index or -1
    roots: np.ndarray  # (J,) home cell per lead
    fixed: np.ndarray  # (n,) lead fixed by the planner or by being a home cell, else -1
    d: np.ndarray  # (J, n) adjacency distance from each lead's home (inf where the cell may not join)
    adj: sp.csr_array  # (n, n) model-cell adjacency
    lower: np.ndarray  # (J,) persons
    upper: np.ndarray  # (J,) persons
    target: np.ndarray  # (J,) persons
    share: np.ndarray  # (J,)

    @property
    def n(self) -> int:
        return len(self.a)

    @property
    def J(self) -> int:
        return len(self.lead_ids)

    def cost(self, g: np.ndarray) -> float:
        """Person-seconds of an assignment vector (lead per model cell)."""
        return float((self.a * self.vt[self.var_of[np.arange(self.n), g]]).sum())

    def loads(self, g: np.ndarray) -> np.ndarray:
        return np.bincount(g, weights=self.a, minlength=self.J)


# --------------------------------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------------------------------


def _check_tolerance(tolerance: float, method: str) -> float:
    """Check the tolerance and the method; return the tolerance as a float."""
    try:
        tol = float(tolerance)
    except (TypeError, ValueError):
        tol = math.nan
    if not (math.isfinite(tol) and tol >= 0):
        msg = f"tolerance={tolerance!r} must be a relative band >= 0; fix: e.g. tolerance=0.2 for ±20 %"
        raise InvalidValueError(msg)
    if method not in ("auto", "mip", "heuristic"):
        msg = f"method={method!r} is not known; fix: use 'auto', 'mip' or 'heuristic'"
        raise InvalidValueError(msg)
    return tol


def _check_count(value: int, name: str) -> int:
    """Check a work bound is a whole number >= 0; return it as an int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        default = MIP_MAX_NODES if name == "max_nodes" else LNS_MAX_SUBMIPS
        msg = f"{name}={value!r} must be a whole number >= 0; fix: e.g. {name}={default}"
        raise InvalidValueError(msg)
    return int(value)


def _population(demand: pd.DataFrame, column: str) -> pd.Series:
    """Persons per cell, after checking the column, the index and the values."""
    if column not in demand.columns:
        msg = f"demand has no '{column}' column; fix: pass cells from planner.demand.load_population or set population_column"
        raise MissingColumnError(msg)
    if demand.index.has_duplicates:
        dup = demand.index[demand.index.duplicated()][0]
        msg = f"cell_id {dup} appears more than once in demand; fix: give each cell a unique index"
        raise InvalidValueError(msg)
    pop = pd.to_numeric(demand[column], errors="coerce").astype(float)
    bad = ~np.isfinite(pop.to_numpy()) | (pop.to_numpy() < 0)
    if bad.any():
        i = demand.index[bad][0]
        msg = f"cell {i}: population {demand[column][i]} is not a count >= 0; fix: correct or drop the cell"
        raise InvalidValueError(msg)
    return pop


def _clean_od(od: pd.DataFrame, cells: pd.Index, leads: pd.Index) -> pd.DataFrame:
    """OD rows between known cells and leads with a finite time; the fastest row per pair."""
    t = check_od(od)
    keep = np.isfinite(t) & od["origin_id"].isin(cells).to_numpy() & od["destination_id"].isin(leads).to_numpy()
    o = pd.DataFrame({"origin_id": od["origin_id"].to_numpy()[keep], "destination_id": od["destination_id"].to_numpy()[keep],
                      "travel_time_s": t[keep]})
    return o.sort_values("travel_time_s", kind="stable").drop_duplicates(["origin_id", "destination_id"])


def _capacity_shares(leads: pd.DataFrame, capacity: str | Mapping[Hashable, float] | pd.Series | None) -> np.ndarray:
    """Capacity share of each lead (sums to 1)."""
    n = len(leads)
    if capacity is None:
        if "capacity" not in leads.columns or leads["capacity"].isna().all():
            logger.info("no lead has a capacity: equal shares for %d leads", n)
            return np.full(n, 1.0 / n)
        capacity = "capacity"
    if isinstance(capacity, str):
        if capacity == "equal":
            return np.full(n, 1.0 / n)
        if capacity not in leads.columns:
            msg = f"leads have no '{capacity}' column; fix: name a capacity column (beds, staff) or use capacity='equal'"
            raise MissingColumnError(msg)
        cap = pd.to_numeric(leads[capacity], errors="coerce")
    else:
        cap = pd.Series(capacity, dtype=float).reindex(leads.index)
    c = cap.to_numpy(dtype=float)
    bad = ~np.isfinite(c) | (c <= 0)
    if bad.any():
        lead = leads.index[bad][0]
        msg = (f"lead '{lead}' has capacity {float(c[bad][0]):g} ({int(bad.sum())} of {n} leads lack a capacity > 0); "
               "fix: give every lead its beds or staff, or use capacity='equal' for equal shares")
        raise InvalidValueError(msg)
    return np.asarray(c / c.sum(), dtype=float)


def _resolve_fixed(fixed: Mapping[Hashable, Hashable] | None, demand: pd.DataFrame, leads: pd.Index) -> pd.Series:
    """Lead position fixed for each demand cell (-1 = free); cells' own entries win over districts'."""
    out = pd.Series(_UNASSIGNED, index=demand.index, dtype=np.int64)
    if not fixed:
        return out
    has_district = "district" in demand.columns
    by_cell: dict[Hashable, int] = {}
    by_district: dict[Hashable, int] = {}
    for key, lead in fixed.items():
        if lead not in leads:
            msg = f"fixed[{key!r}] = {lead!r} is not one of the leads; fix: use a facility_id of the leads"
            raise InvalidValueError(msg)
        pos = int(leads.get_indexer(pd.Index([lead]))[0])
        if key in demand.index:
            by_cell[key] = pos
        elif has_district and (demand["district"] == key).any():
            by_district[key] = pos
        else:
            where = "a cell_id or a district name" if has_district else "a cell_id (demand has no 'district' column)"
            msg = f"fixed key {key!r} is not {where}; fix: use cell ids of demand or its district names"
            raise InvalidValueError(msg)
    arr = out.to_numpy(dtype=np.int64, copy=True)
    for district, pos in by_district.items():
        arr[(demand["district"] == district).to_numpy()] = pos
    if by_cell:
        arr[demand.index.get_indexer(pd.Index(list(by_cell)))] = np.array(list(by_cell.values()), dtype=np.int64)
    return pd.Series(arr, index=demand.index)


# --------------------------------------------------------------------------------------------------------------------
# building the model
# --------------------------------------------------------------------------------------------------------------------


def _build_model(
    o: pd.DataFrame,
    demand: pd.DataFrame,
    pop: pd.Series,
    leads: pd.Index,
    share: np.ndarray,
    *,
    adjacency: pd.DataFrame,
    fixed: Mapping[Hashable, Hashable] | None,
    tolerance: float,
) -> tuple[_Model, pd.Index]:
    """Build the reduced model (routed cells, pairs, home cells, adjacency distances) and list the unassigned cells."""
    fixed_all = _resolve_fixed(fixed, demand, leads)
    routed = pd.Index(o["origin_id"].unique())
    in_model = demand.index.isin(routed)
    unassigned = demand.index[~in_model]
    if len(unassigned):
        logger.warning("%d cells (%.0f persons) have no route to any lead and are left unassigned",
                       len(unassigned), float(pop[~in_model].sum()))
    fixed_unrouted = unassigned[(fixed_all[~in_model] >= 0).to_numpy()]
    if len(fixed_unrouted) and fixed is not None and any(c in fixed for c in fixed_unrouted):
        cell = next(c for c in fixed_unrouted if c in fixed)
        msg = (f"cell {cell} is fixed to lead '{fixed[cell]}' but has no route to any lead; "
               "fix: unfix it, or snap cells with a larger max_snap_m")
        raise InfeasibleModelError(msg)
    cell_ids = demand.index[in_model].to_numpy()
    a = pop[in_model].to_numpy(dtype=float)
    district = demand["district"][in_model] if "district" in demand.columns else None
    fix = fixed_all[in_model].to_numpy()
    T = _pair_times(o, cell_ids, leads, fix, district)
    adj = _adjacency_matrix(adjacency, cell_ids)
    roots, fix = _home_cells(T, fix, leads)
    d = _home_distances(adj, T, fix, roots)
    usable = np.isfinite(d.T)
    _check_stranded(fix, usable, cell_ids, leads, roots, district)
    orphan = ~usable.any(axis=1)
    if orphan.any():
        # islands and cells behind unrouted cells: reported, not dropped silently, and not an error
        idx = np.flatnonzero(orphan)
        logger.warning("%d cells (%.0f persons; e.g. cell %s) cannot join any lead's grid contiguously (islands, or cut off "
                       "by cells without routes) and are left unassigned; cell_adjacency(cells, link_islands=True) joins "
                       "islands", len(idx), a[idx].sum(), cell_ids[idx[0]])
        unassigned = unassigned.append(pd.Index(cell_ids[idx]))
        keep = ~orphan
        new_pos = np.cumsum(keep) - 1
        cell_ids, a, fix, T, d, usable = cell_ids[keep], a[keep], fix[keep], T[keep], d[:, keep], usable[keep]
        adj = sp.csr_array(adj[keep][:, keep])
        roots = new_pos[roots]
    m = _model(cell_ids, leads, a, T, usable, roots=roots, fix=fix, d=d, adj=adj, share=share, tolerance=tolerance)
    _check_loads(m, tolerance, np.isfinite(T).astype(float).T @ a)
    return m, unassigned


def _pair_times(o: pd.DataFrame, cell_ids: np.ndarray, leads: pd.Index, fix: np.ndarray, district: pd.Series | None,
                ) -> np.ndarray:
    """(cells, leads) travel times in seconds (inf without a pair); a cell fixed to a lead it has no pair to raises."""
    n = len(cell_ids)
    pc = pd.Index(cell_ids).get_indexer(pd.Index(o["origin_id"]))
    pl = leads.get_indexer(pd.Index(o["destination_id"]))
    T = np.full((n, len(leads)), np.inf)
    T[pc, pl] = o["travel_time_s"].to_numpy(dtype=float)
    fixed_no_pair = (fix >= 0) & ~np.isfinite(T[np.arange(n), np.maximum(fix, 0)])
    if fixed_no_pair.any():
        i = int(np.flatnonzero(fixed_no_pair)[0])
        where = f" (district {district.iloc[i]})" if district is not None else ""
        msg = (f"cell {cell_ids[i]}{where} is fixed to lead '{leads[fix[i]]}' but the OD table has no route between them; "
               "fix: pass an OD table without max_minutes, or unfix that cell or district")
        raise InfeasibleModelError(msg)
    return T


def _allowed(T: np.ndarray, fix: np.ndarray) -> np.ndarray:
    """(cells, leads): a pair exists and the cell is free or fixed to that lead."""
    return np.isfinite(T) & ((fix[:, None] < 0) | (fix[:, None] == np.arange(T.shape[1])[None, :]))


def _home_cells(T: np.ndarray, fix: np.ndarray, leads: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Home cell per lead (distinct, minimum total time, never a cell fixed to another lead), and `fix` with homes."""
    J = len(leads)
    big = 1e12
    cost = np.where(_allowed(T, fix), T, big).T  # (J, n)
    rows, cols = linear_sum_assignment(cost)
    roots = np.empty(J, dtype=np.int64)
    roots[rows] = cols
    bad = cost[rows, cols] >= big
    if bad.any():
        j = int(rows[bad][0])
        msg = (f"lead '{leads[j]}' has no cell of its own: every cell it reaches is fixed to another lead or is the home cell "
               "of another lead; fix: unfix some of those cells or districts, or drop the lead")
        raise InfeasibleModelError(msg)
    fix = fix.copy()
    home_taken = (fix[roots] >= 0) & (fix[roots] != np.arange(J))
    assert not home_taken.any()
    fix[roots] = np.arange(J)
    return roots, fix


def _home_distances(adj: sp.csr_array, T: np.ndarray, fix: np.ndarray, roots: np.ndarray) -> np.ndarray:
    """(leads, cells) adjacency distance from each home within the cells that may join that grid (inf elsewhere)."""
    allowed = _allowed(T, fix)
    J, n = T.shape[1], T.shape[0]
    d = np.full((J, n), np.inf)
    for j in range(J):  # one Dijkstra per lead on its own subgraph
        ok = np.flatnonzero(allowed[:, j])
        sub: Any = adj[ok][:, ok]
        r = int(np.searchsorted(ok, roots[j]))
        d[j, ok] = dijkstra(sub, directed=False, indices=[r])[0]
    return d


def _check_stranded(fix: np.ndarray, usable: np.ndarray, cell_ids: np.ndarray, leads: pd.Index, roots: np.ndarray,
                    district: pd.Series | None) -> None:
    """Raise for a fixed cell that cannot be joined to its lead's grid."""
    stranded = (fix >= 0) & ~usable[np.arange(len(fix)), np.maximum(fix, 0)]
    if stranded.any():
        i = int(np.flatnonzero(stranded)[0])
        j = int(fix[i])
        where = f" (district {district.iloc[i]})" if district is not None else ""
        msg = (f"cell {cell_ids[i]}{where} is fixed to lead '{leads[j]}' but cannot join its grid contiguously: every "
               f"path of adjacent cells from the lead's home cell {cell_ids[roots[j]]} to it crosses cells fixed to other "
               "leads or without a route to it; fix: unfix that cell or district, or fix the cells between them to the same lead")
        raise InfeasibleModelError(msg)


def _model(cell_ids: np.ndarray, leads: pd.Index, a: np.ndarray, T: np.ndarray, usable: np.ndarray, *, roots: np.ndarray,
           fix: np.ndarray, d: np.ndarray, adj: sp.csr_array, share: np.ndarray, tolerance: float) -> _Model:
    """Make the model from its arrays: the usable pairs sorted by cell then lead, and the load bands."""
    n, J = usable.shape
    vc, vl = np.nonzero(usable)
    order = np.lexsort((vl, vc))
    vc, vl = vc[order], vl[order]
    var_of = np.full((n, J), -1, dtype=np.int64)
    var_of[vc, vl] = np.arange(len(vc))
    total = float(a.sum())
    target = share * total
    lower, upper = (1 - tolerance) * target, (1 + tolerance) * target
    return _Model(cell_ids=cell_ids, lead_ids=leads.to_numpy(), a=a, vc=vc, vl=vl, vt=T[vc, vl], var_of=var_of,
                  roots=roots, fixed=fix, d=d, adj=adj, lower=lower, upper=upper, target=target, share=share)


def _adjacency_matrix(adjacency: pd.DataFrame, cell_ids: np.ndarray) -> sp.csr_array:
    miss = [c for c in ("cell_id", "neighbor_id") if c not in adjacency.columns]
    if miss:
        msg = f"the adjacency lacks {', '.join(miss)}; fix: pass planner.grids.cell_adjacency(cells)"
        raise MissingColumnError(msg)
    ids = pd.Index(cell_ids)
    u = ids.get_indexer(adjacency["cell_id"])
    v = ids.get_indexer(adjacency["neighbor_id"])
    w = (pd.to_numeric(adjacency["distance_m"], errors="coerce").to_numpy(dtype=float)
         if "distance_m" in adjacency.columns else np.ones(len(adjacency)))
    keep = (u >= 0) & (v >= 0) & (u != v)
    u, v, w = u[keep], v[keep], w[keep]
    if not np.isfinite(w).all() or (w <= 0).any():
        msg = "the adjacency has distance_m values that are not > 0; fix: give distances between cell centres in metres"
        raise InvalidValueError(msg)
    n = len(cell_ids)
    uu, vv, ww = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([w, w])  # symmetric
    e = pd.DataFrame({"u": uu, "v": vv, "w": ww}).groupby(["u", "v"], as_index=False)["w"].min()
    return sp.csr_array((e["w"].to_numpy(), (e["u"].to_numpy(), e["v"].to_numpy())), shape=(n, n))


def _check_loads(m: _Model, tolerance: float, reach_od: np.ndarray) -> None:
    """Name the lead whose load band cannot be met, before any solve."""
    reach = np.bincount(m.vl, weights=m.a[m.vc], minlength=m.J)
    short = reach < m.lower - 1e-9
    if short.any():
        j = int(np.argmax(np.where(short, m.lower - reach, -np.inf)))
        need = 1 - reach[j] / m.target[j]
        head = (f"lead '{m.lead_ids[j]}' can serve at most {reach[j]:.0f} persons in a contiguous grid, below its minimum load "
                f"{m.lower[j]:.0f} ({1 - tolerance:.0%} of its capacity share {m.target[j]:.0f})")
        if reach_od[j] >= m.lower[j] - 1e-9:
            inside = np.isfinite(m.d[j])
            rows, cols = m.adj.nonzero()
            edge = inside[rows] & ~inside[cols] & (m.fixed[cols] >= 0) & (m.fixed[cols] != j)
            blockers = pd.unique(m.lead_ids[m.fixed[cols[edge]]])
            names = ", ".join(f"'{b}'" for b in blockers[:4])
            msg = (f"{head}: the home cells or fixed cells of leads {names} box it in; fix: use smaller cells "
                   "(cell_size_m), contiguity='queen', merge it with a lead next to it, or raise tolerance to at least "
                   f"{need:.2f}")
        else:
            msg = (f"{head}; fix: raise tolerance to at least {need:.2f}, lower its capacity, pass an OD table without "
                   "max_minutes, or drop the lead")
        raise InfeasibleModelError(msg)
    fixed_load = np.bincount(m.fixed[m.fixed >= 0], weights=m.a[m.fixed >= 0], minlength=m.J)
    n_opts = np.bincount(m.vc, minlength=m.n)
    captive = (n_opts == 1) | (m.fixed >= 0)
    only = np.where(captive, m.vl[_first_var(m)], -1)
    captive_load = np.bincount(only[only >= 0], weights=m.a[only >= 0], minlength=m.J)
    over = np.maximum(fixed_load, captive_load) > m.upper + 1e-9
    if over.any():
        j = int(np.argmax(np.where(over, np.maximum(fixed_load, captive_load) - m.upper, -np.inf)))
        load = max(fixed_load[j], captive_load[j])
        need = load / m.target[j] - 1
        msg = (f"lead '{m.lead_ids[j]}' must serve {load:.0f} persons (cells fixed to it or reaching no other lead), above "
               f"its maximum load {m.upper[j]:.0f} ({1 + tolerance:.0%} of its capacity share {m.target[j]:.0f}); fix: "
               f"raise tolerance to at least {need:.2f}, raise its capacity, or unfix some of its cells")
        raise InfeasibleModelError(msg)


def _first_var(m: _Model) -> np.ndarray:
    """Return the fixed lead's pair, or else the first pair, of every model cell."""
    first = np.full(m.n, -1, dtype=np.int64)
    first[m.vc[::-1]] = np.arange(len(m.vc))[::-1]
    fx = m.fixed >= 0
    first[fx] = m.var_of[np.flatnonzero(fx), m.fixed[fx]]
    return first


# --------------------------------------------------------------------------------------------------------------------
# HiGHS
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Lp:
    cost: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    A: sp.csc_array
    row_lower: np.ndarray
    row_upper: np.ndarray
    n_load_rows: int
    cont_row: np.ndarray | None = None  # contiguity row of each pair (-1 for home pairs)


def _predecessors(m: _Model) -> tuple[np.ndarray, np.ndarray]:
    """(pair, predecessor pair) for every pair and every neighbour strictly closer to that lead's home."""
    adj = m.adj
    deg = np.diff(adj.indptr)[m.vc]
    src = np.repeat(np.arange(len(m.vc)), deg)
    start = adj.indptr[m.vc]
    k = adj.indices[np.repeat(start, deg) + (np.arange(int(deg.sum())) - np.repeat(np.cumsum(deg) - deg, deg))]
    lead = m.vl[src]
    pv = m.var_of[k, lead]
    keep = (pv >= 0) & (m.d[lead, k] < m.d[lead, m.vc[src]] - _EPS_M)
    return src[keep], pv[keep]


def _mip_arrays(m: _Model) -> _Lp:
    nv = len(m.vc)
    total = float(m.a.sum())
    w = m.a / total  # loads and costs per capita: better scaled for HiGHS
    rows = [m.vc, m.n + m.vl]
    cols = [np.arange(nv), np.arange(nv)]
    vals = [np.ones(nv), w[m.vc]]
    # ordered contiguity: x_ij - sum(closer neighbours' x_kj) <= 0, for every pair that is not a home
    is_home = m.roots[m.vl] == m.vc
    free = np.flatnonzero(~is_home)
    row_of = np.full(nv, -1, dtype=np.int64)
    row_of[free] = m.n + m.J + np.arange(len(free))
    src, pv = _predecessors(m)
    sel = row_of[src] >= 0
    rows += [row_of[free], row_of[src[sel]]]
    cols += [free, pv[sel]]
    vals += [np.ones(len(free)), -np.ones(int(sel.sum()))]
    nr = m.n + m.J + len(free)
    A = sp.csc_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nr, nv))
    A.sum_duplicates()
    A.sort_indices()
    lower = np.zeros(nv)
    fx = m.fixed[m.vc] == m.vl
    lower[fx] = 1.0
    upper = np.ones(nv)
    upper[(m.fixed[m.vc] >= 0) & ~fx] = 0.0
    row_lower = np.concatenate([np.ones(m.n), m.lower / total, np.full(len(free), -np.inf)])
    row_upper = np.concatenate([np.ones(m.n), m.upper / total, np.zeros(len(free))])
    return _Lp(cost=w[m.vc] * m.vt, lower=lower, upper=upper, A=A, row_lower=row_lower, row_upper=row_upper, n_load_rows=m.J,
               cont_row=row_of)


@dataclass(eq=False)
class _Work:
    """Work bounds of one solve and what was done; the deadline is only the safety net."""

    deadline: float  # time.perf_counter() value
    max_nodes: int = MIP_MAX_NODES
    max_submips: int = LNS_MAX_SUBMIPS
    nodes: int = 0  # branch-and-bound nodes of the full MIP
    submips: int = 0  # neighbourhood sub-MIPs solved
    timed_out: bool = False  # the deadline cut a step short: not reproducible

    def remaining_s(self) -> float:
        return max(self.deadline - time.perf_counter(), 0.01)

    def expired(self) -> bool:
        """Whether the deadline has passed (and note it: the step it cuts is no longer reproducible)."""
        if time.perf_counter() >= self.deadline:
            self.timed_out = True
        return self.timed_out


def _solve(
    lp: _Lp,
    *,
    integer: bool,
    mip_gap: float,
    what: str,
    work: _Work,
    max_nodes: int | None = None,
    start: np.ndarray | None = None,
    integrality: np.ndarray | None = None,
    main: bool = False,
) -> tuple[np.ndarray, float, float, Status] | None:
    """Solve with HiGHS within the node bound: (x, objective, bound, status), or None when a limit left no solution.

    Status ``"work_limit"`` when the node bound stopped it (reproducible), ``"time_limit"`` when the safety-net
    deadline did (and ``work.timed_out`` is set). `main` marks the full MIP: its progress is logged and its nodes
    counted in `work`. A model HiGHS proves infeasible raises :class:`InfeasibleModelError` (``cause="infeasible"``).
    """
    if integrality is None:
        integrality = np.full(len(lp.cost), integer, dtype=bool)
    model = _highs.Lp(cost=lp.cost, lower=lp.lower, upper=lp.upper, A=lp.A, row_lower=lp.row_lower,
                      row_upper=lp.row_upper, integer=integrality)
    h = _highs.build(model, what=what, time_limit_s=work.remaining_s(), mip_gap=mip_gap, deterministic=True,
                     max_nodes=max_nodes)
    if main:  # the objective is the population-weighted mean travel time in seconds
        _highs.log_mip_progress(h, logger, what, fmt=lambda v: f"{v / 60:.2f} min mean travel time", max_nodes=max_nodes,
                                every_s=PROGRESS_EVERY_S)
    try:
        sol = _highs.run(h, what=what, is_mip=integer, start=start, log=logger,
                         level=logging.INFO if main else logging.DEBUG)
    except InfeasibleModelError as err:
        work.timed_out = work.timed_out or err.cause == "time_limit"
        if err.cause in ("time_limit", "work_limit"):
            return None
        raise
    work.timed_out = work.timed_out or sol.time_limited
    if main:
        work.nodes += sol.nodes
    bound = sol.bound if integer else sol.objective
    if not math.isfinite(bound):
        bound = 0.0
    return sol.x, sol.objective, bound, sol.status


def _diagnose_infeasible(m: _Model, lp: _Lp, tolerance: float) -> InfeasibleModelError:
    """Explain infeasibility: the smallest tolerance the LP relaxation needs, and the lead that binds there."""
    total = float(m.a.sum())
    nv = len(lp.cost)
    # one more column tau: load_j + tau * share_j >= share_j and load_j - tau * share_j <= share_j
    load = lp.A[m.n:m.n + m.J]
    A = sp.vstack([lp.A[:m.n], load, load, lp.A[m.n + m.J:]], format="csc")
    col = np.concatenate([np.zeros(m.n), m.target / total, -m.target / total, np.zeros(lp.A.shape[0] - m.n - m.J)])
    A = sp.hstack([A, sp.csc_array(col[:, None])], format="csc")
    A.sort_indices()
    rl = np.concatenate([np.ones(m.n), m.target / total, np.full(m.J, -np.inf), lp.row_lower[m.n + m.J:]])
    ru = np.concatenate([np.ones(m.n), np.full(m.J, np.inf), m.target / total, lp.row_upper[m.n + m.J:]])
    tau_lp = _Lp(cost=np.concatenate([np.zeros(nv), [1.0]]), lower=np.concatenate([lp.lower, [0.0]]),
                 upper=np.concatenate([lp.upper, [np.inf]]), A=sp.csc_array(A), row_lower=rl, row_upper=ru, n_load_rows=m.J)
    try:
        sol = _solve(tau_lp, integer=False, mip_gap=0.0, what="tolerance LP", work=_Work(deadline=time.perf_counter() + 30.0))
    except InfeasibleModelError as err:
        if err.cause != "infeasible":
            raise
        sol = None
    if sol is None:  # pragma: no cover - the tau LP is always feasible when every cell has a pair
        msg = (f"the loads cannot all lie within ±{tolerance:.0%} of the capacity shares with contiguous grids; "
               "fix: raise tolerance or unfix cells")
        return InfeasibleModelError(msg)
    x = sol[0]
    tau = float(x[-1])
    loads = np.bincount(m.vl, weights=m.a[m.vc] * x[:nv], minlength=m.J)
    j = int(np.argmax(np.abs(loads / m.target - 1)))
    if tau <= tolerance + 1e-6:
        msg = (f"no assignment of whole cells keeps every load within ±{tolerance:.0%} of its capacity share with contiguous "
               f"grids (lead '{m.lead_ids[j]}' binds); fix: raise tolerance (e.g. tolerance={tolerance + 0.05:.2f}), use "
               "smaller cells (cell_size_m), or unfix cells")
    else:
        msg = (f"the loads cannot all lie within ±{tolerance:.0%} of the capacity shares with contiguous grids: even "
               f"splitting cells needs ±{tau:.0%} (lead '{m.lead_ids[j]}' binds, {loads[j]:.0f} persons against a share of "
               f"{m.target[j]:.0f}); fix: raise tolerance to at least {math.ceil(tau * 100) / 100:.2f}, adjust that lead's "
               "capacity, or unfix cells")
    return InfeasibleModelError(msg)
