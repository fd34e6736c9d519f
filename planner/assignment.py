r"""Consortium grids (网格化布局): give every populated cell to one lead hospital.

An urban medical consortium (城市医联体) divides a city into *grids*, each the
responsibility of one lead (tertiary) hospital. :func:`assign_lead_hospital`
draws grids that are reachable (least population-weighted travel time),
balanced (each lead's population within a tolerance of its capacity share)
and contiguous (each grid is connected in the cell adjacency), honouring
planner-fixed assignments. :func:`nearest_lead_baseline` gives the usual
comparison: every cell to its nearest lead by network time.

Notation: cells :math:`i \in I` with population :math:`a_i` (persons) and
total :math:`A = \sum_i a_i`; leads :math:`j \in J` with capacity share
:math:`s_j` (:math:`\sum_j s_j = 1`); the pairs :math:`P` of the OD table
with travel time :math:`t_{ij}` (seconds); tolerance :math:`\tau`; cell
adjacency :math:`N(i)`. Each lead has a *home cell* :math:`r_j` (its fastest
cell, made distinct between leads by a minimum-time matching) and an order
:math:`d_j(i)`: the shortest-path length in metres from :math:`r_j` to
:math:`i` over the adjacency graph (edge length = distance between cell
centres), restricted to the cells that may join grid :math:`j`. The model:

.. math::

    \min \sum_{(i,j) \in P} a_i t_{ij} x_{ij}
    \quad \text{s.t.} \quad
    \sum_{j : (i,j) \in P} x_{ij} = 1 \;\; \forall i, \qquad
    (1-\tau) s_j A \le \sum_{i} a_i x_{ij} \le (1+\tau) s_j A \;\; \forall j,

.. math::

    x_{ij} \le \sum_{k \in N(i),\, d_j(k) < d_j(i)} x_{kj}
    \;\; \forall (i,j) \in P,\ i \ne r_j, \qquad
    x_{r_j j} = 1, \qquad
    x_{ij} = 1 \;\; \forall (i,j) \in F, \qquad
    x_{ij} \in \{0, 1\}.

The last line of constraints is *ordered* (shortest-path-tree) contiguity
(Zoltners & Sinha, 1983; Mehrotra, Johnson & Nemhauser, 1998): every cell
of grid :math:`j` other than its home has a neighbour in grid :math:`j`
that is strictly closer to the home, so following closer neighbours always
ends at the home and every grid is connected. It is a **sufficient**
condition for contiguity, not a necessary one: it excludes grids that wind
back towards their home (e.g. a U around another grid), which tends to
keep grids compact. It needs one row per pair, where the exact Shirabe
(2005) formulation needs a flow variable per adjacency arc and lead.
"Optimal" below means optimal for this model; every grid returned is
contiguous.

Solution methods (``method``):

* ``"heuristic"``: the LP relaxation (HiGHS) gives a lower bound and, cell
  by cell, its largest fractional assignment; a repair re-attaches cells
  that break the contiguity rule to an adjacent grid at the least added
  cost; single boundary-cell moves and then a large-neighbourhood search
  (the exact sub-MIP over the grids of a lead and its neighbours, all
  other cells held; at most :data:`LNS_MAX_SUBMIPS` of them, each within
  :data:`LNS_SUB_MAX_NODES` branch-and-bound nodes) bring every load within
  tolerance and cut the travel cost. The gap to the LP bound is reported.
* ``"mip"``: the heuristic, then the model above by HiGHS branch and bound,
  warm-started from it, to ``mip_gap`` or :data:`MIP_MAX_NODES` nodes
  (status ``"work_limit"`` with the gap to HiGHS' dual bound).
* ``"auto"`` (default): ``"mip"`` up to :data:`MAX_MIP_PAIRS` pairs, else
  ``"heuristic"``.

Every step ends by a count of work (nodes, sub-problems, moves), never by
the clock, and HiGHS runs serially with a fixed seed, so the same inputs give
the same grids on every run (with the same planner and HiGHS versions).
``time_limit_s`` is only a safety net: a solve it stops has status
``"time_limit"`` (or ``time_limited=True``) and may differ between runs,
which is logged as a warning.

Capacity shares come from the leads' ``capacity`` column (beds, 床位) when
every lead has one, else they are equal (logged). Cells without a route to
any lead (e.g. unsnapped), and cells no lead's grid can reach through
adjacent cells (islands; see ``cell_adjacency(..., link_islands=True)``),
are left unassigned, logged and listed in
:attr:`AssignmentResult.unassigned`; they do not count in the loads.

Layout: this module holds the optimiser and its result; the reduced model, its
checks and the HiGHS solve (through ``planner._highs``) are in
``planner._grid_model``, the heuristic in ``planner._grid_heuristic``, and the
grid inputs and reports (:func:`~planner.grids.cell_adjacency`,
:func:`~planner.grids.grids_summary`, ...) in :mod:`planner.grids`, re-exported
here for existing code.

Examples
--------
A 1 x 4 strip of cells of 100 persons with a lead at each end; the
nearest-lead zones give lead A 300 persons and B 100, but with equal
shares each must carry 200 ± 25 %:

>>> import pandas as pd
>>> od = pd.DataFrame({"origin_id": [0, 1, 2, 3] * 2, "destination_id": ["A"] * 4 + ["B"] * 4,
...                    "travel_time_s": [60, 120, 180, 240, 300, 240, 200, 60]})
>>> demand = pd.DataFrame({"population": [100.0, 100.0, 100.0, 100.0]})
>>> leads = pd.DataFrame(index=pd.Index(["A", "B"], name="facility_id"))
>>> adjacency = pd.DataFrame({"cell_id": [0, 1, 1, 2, 2, 3], "neighbor_id": [1, 0, 2, 1, 3, 2]})
>>> r = assign_lead_hospital(od, demand, leads, adjacency=adjacency, tolerance=0.25)
>>> r.status, r.assignment.tolist(), r.objective
('optimal', ['A', 'A', 'B', 'B'], 44000.0)
>>> r.baseline.tolist(), r.comparison["population_moved"]
(['A', 'A', 'A', 'B'], 100.0)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from . import settings
from ._errors import InfeasibleModelError, InvalidValueError, UnreachableFacilityError
from ._grid_heuristic import _g_from_x, _heuristic, _loads_ok, _valid, _x_from_g
from ._grid_model import (
    LNS_MAX_SUBMIPS,
    LNS_SUB_MAX_NODES,
    MIP_MAX_NODES,
    PROGRESS_EVERY_S,
    Status,
    _build_model,
    _capacity_shares,
    _check_count,
    _check_tolerance,
    _clean_od,
    _diagnose_infeasible,
    _mip_arrays,
    _Model,
    _population,
    _solve,
    _Work,
)
from ._validate import check_solver_args

# the grid inputs and reports, re-exported for code written before they moved to planner.grids
from .grids import P95, attach_members, cell_adjacency, dissolve_grids, district_summary, grids_summary, weighted_quantile

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MIP_GAP",
    "DEFAULT_TIME_LIMIT_S",
    "DEFAULT_TOLERANCE",
    "LNS_MAX_SUBMIPS",
    "LNS_SUB_MAX_NODES",
    "MAX_MIP_PAIRS",
    "MIP_MAX_NODES",
    "P95",
    "PROGRESS_EVERY_S",
    "AssignmentResult",
    "assign_lead_hospital",
    "attach_members",
    "cell_adjacency",
    "dissolve_grids",
    "district_summary",
    "grids_summary",
    "nearest_lead_baseline",
    "weighted_quantile",
]

DEFAULT_TOLERANCE: float = settings.GRID_TOLERANCE  # relative: each load within ±20 % of its capacity share
DEFAULT_TIME_LIMIT_S: float = settings.GRID_TIME_LIMIT_S  # seconds; a safety net only: the work bounds end a normal solve
DEFAULT_MIP_GAP: float = 1e-4  # relative gap at which HiGHS stops and the MIP counts as optimal
MAX_MIP_PAIRS: int = 200_000  # (cell, lead) pairs; above this, method="auto" uses the heuristic

Method = Literal["auto", "mip", "heuristic"]


# --------------------------------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AssignmentResult:
    """Grids of lead hospitals: the solution of :func:`assign_lead_hospital`.

    Attributes
    ----------
    assignment
        Lead id per cell, indexed like the demand (``cell_id``); None for
        cells without a route to any lead (see `unassigned`).
    travel_time_s
        Travel time in seconds from each cell to its lead (NaN if unassigned).
    baseline
        The nearest lead of each cell by network time (same index).
    baseline_travel_time_s
        Travel time in seconds to the nearest lead.
    loads
        One row per lead (index ``facility_id``): ``capacity_share``,
        ``target_population`` (:math:`s_j A`), ``min_population``,
        ``max_population`` (the tolerance band), ``population``,
        ``load_ratio`` (population / target), ``n_cells``, ``home_cell``,
        ``baseline_population`` and ``baseline_load_ratio``.
    status
        ``"optimal"`` (MIP proven within `mip_gap`), ``"work_limit"`` (MIP
        incumbent at its node bound: reproducible), ``"time_limit"`` (MIP
        incumbent when the safety-net time limit stopped it: may differ
        between runs) or ``"heuristic"``.
    method
        ``"mip"`` or ``"heuristic"``: what produced the solution.
    objective
        Population-weighted travel time in person-seconds.
    lower_bound
        A lower bound on the objective of the model in person-seconds: the
        MIP dual bound, or the LP relaxation for the heuristic.
    gap
        Relative gap ``(objective - lower_bound) / objective``.
    seconds
        Wall-clock seconds of the whole call.
    tolerance
        The load tolerance used (relative).
    comparison
        Balanced grids against the nearest-lead baseline: see
        :meth:`summary`.
    unassigned
        Cells without a route to any lead (not in the model).
    time_limited
        True when the safety-net time limit cut any step short: the grids
        may then differ between runs.
    work
        The work done and its bounds: ``mip_nodes`` (of ``mip_max_nodes``)
        and ``lns_submips`` (of ``lns_max_submips``).
    """

    assignment: pd.Series
    travel_time_s: pd.Series
    baseline: pd.Series
    baseline_travel_time_s: pd.Series
    loads: pd.DataFrame
    status: Status
    method: Literal["mip", "heuristic"]
    objective: float
    lower_bound: float
    gap: float
    seconds: float
    tolerance: float
    comparison: dict[str, float]
    unassigned: pd.Index
    time_limited: bool = False
    work: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Report figures, ready for JSON.

        Returns
        -------
        summary
            Keys ``status``, ``method``, ``n_grids``, ``n_cells``,
            ``n_unassigned``, ``population_unassigned``, ``tolerance``,
            ``objective_person_s``, ``lower_bound_person_s``, ``gap``,
            ``time_limited``, ``work``, ``runtime_s``, the `comparison`
            figures and ``loads`` (one dict per lead).
        """
        loads = self.loads.reset_index().astype(object).where(self.loads.reset_index().notna(), None)
        return {
            "status": self.status,
            "method": self.method,
            "n_grids": len(self.loads),
            "n_cells": int(self.assignment.notna().sum()),
            "n_unassigned": len(self.unassigned),
            "population_unassigned": round(float(self.comparison.get("population_unassigned", 0.0)), 1),
            "tolerance": self.tolerance,
            "objective_person_s": round(self.objective, 1),
            "lower_bound_person_s": round(self.lower_bound, 1),
            "gap": round(self.gap, 6),
            "time_limited": self.time_limited,
            "work": dict(self.work),
            "runtime_s": round(self.seconds, 2),
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.comparison.items()
               if k != "population_unassigned"},
            "loads": loads.to_dict(orient="records"),
        }


# --------------------------------------------------------------------------------------------------------------------
# baseline
# --------------------------------------------------------------------------------------------------------------------


def nearest_lead_baseline(od: pd.DataFrame, demand: pd.DataFrame, leads: pd.DataFrame) -> pd.DataFrame:
    """Nearest-lead zones: every cell to the lead it reaches fastest.

    These are the non-overlapping responsibility areas a consortium gets
    without balancing; :func:`assign_lead_hospital` reports against them.

    Parameters
    ----------
    od
        Long-form travel times (``origin_id`` = cell, ``destination_id`` =
        lead, ``travel_time_s``).
    demand
        Cells indexed by ``cell_id``.
    leads
        Lead hospitals indexed by ``facility_id``.

    Returns
    -------
    baseline
        Indexed like `demand`: ``lead_id`` (None where no lead is reachable)
        and ``travel_time_s``. Ties go to the lead listed first in `leads`.

    Examples
    --------
    >>> import pandas as pd
    >>> od = pd.DataFrame({"origin_id": [0, 0, 1], "destination_id": ["A", "B", "B"], "travel_time_s": [60.0, 30.0, 90.0]})
    >>> nearest_lead_baseline(od, pd.DataFrame({"population": [1.0, 2.0, 3.0]}), pd.DataFrame(index=["A", "B"]))
      lead_id  travel_time_s
    0       B           30.0
    1       B           90.0
    2    None            NaN
    """
    o = _clean_od(od, demand.index, leads.index)
    o = o.assign(_rank=leads.index.get_indexer(pd.Index(o["destination_id"])))
    best = o.sort_values(["travel_time_s", "_rank"], kind="stable").drop_duplicates("origin_id").set_index("origin_id")
    out = pd.DataFrame({"lead_id": pd.Series([None] * len(demand), index=demand.index, dtype=object),
                        "travel_time_s": np.nan}, index=demand.index)
    if len(best):
        out.loc[best.index, "lead_id"] = best["destination_id"].to_numpy()
        out.loc[best.index, "travel_time_s"] = best["travel_time_s"].to_numpy(dtype=float)
    return out


# --------------------------------------------------------------------------------------------------------------------
# the optimiser
# --------------------------------------------------------------------------------------------------------------------


def assign_lead_hospital(
    od: pd.DataFrame,
    demand: pd.DataFrame,
    leads: pd.DataFrame,
    *,
    adjacency: pd.DataFrame,
    capacity: str | Mapping[Hashable, float] | pd.Series | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    fixed: Mapping[Hashable, Hashable] | None = None,
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S,
    method: Method = "auto",
    mip_gap: float = DEFAULT_MIP_GAP,
    max_nodes: int = MIP_MAX_NODES,
    max_submips: int = LNS_MAX_SUBMIPS,
    population_column: str = "population",
) -> AssignmentResult:
    """Assign every reachable cell to one lead hospital: balanced, contiguous grids.

    The model and the methods are described in the module docstring.

    Parameters
    ----------
    od
        Long-form travel times from cells to leads (``origin_id``,
        ``destination_id``, ``travel_time_s``), e.g. from
        :func:`planner.travel_time.od_travel_times`. Only its pairs may be
        used; capping it with ``max_minutes`` shrinks the model.
    demand
        Cells indexed by ``cell_id`` with a population column, and a
        ``district`` column when `fixed` names districts.
    leads
        Lead hospitals indexed by ``facility_id`` (e.g. the snapped
        ``tertiary`` institutions).
    adjacency
        Cell adjacency in long form (``cell_id``, ``neighbor_id``, optional
        ``distance_m``; hop count if missing), e.g. :func:`cell_adjacency`.
    capacity
        Capacity of each lead (beds or staff; only the shares matter): a
        column of `leads`, a mapping or Series by lead id, or ``"equal"``.
        By default the ``capacity`` column when every lead has one, else
        equal shares.
    tolerance
        Each lead's population must lie within ``±tolerance`` (relative) of
        its capacity share of the assigned population.
    fixed
        Planner-fixed assignments: ``{cell_id: lead_id}`` and/or
        ``{district_name: lead_id}`` (all cells of the district). A cell's
        own entry wins over its district's.
    time_limit_s
        Safety-net wall time in seconds for the whole solve. The work bounds
        end a normal solve; if this limit stops it instead, the result has
        ``time_limited=True`` (status ``"time_limit"`` if it stopped the MIP)
        and may differ between runs. None: no limit.
    method
        ``"auto"``, ``"mip"`` or ``"heuristic"`` (see the module docstring).
    mip_gap
        Relative gap at which the MIP counts as optimal.
    max_nodes
        Branch-and-bound nodes of the MIP at most (its deterministic work
        bound); the gap at that point is reported.
    max_submips
        Neighbourhood sub-MIPs of the heuristic at most.
    population_column
        Column of `demand` holding persons.

    Returns
    -------
    result
        The grids, loads, status, bound and gap, and the comparison with the
        nearest-lead baseline.

    Raises
    ------
    UnreachableFacilityError
        If a lead reaches no cell.
    InfeasibleModelError
        If the loads cannot all lie within the tolerance, or fixed
        assignments contradict contiguity; the message names the lead or
        cell and what to relax.
    MissingColumnError, InvalidValueError
        For unusable inputs.
    """
    t0 = time.perf_counter()
    tol = _check_tolerance(tolerance, method)
    tl, gap_target = check_solver_args(time_limit_s, mip_gap)
    max_nodes, max_submips = _check_count(max_nodes, "max_nodes"), _check_count(max_submips, "max_submips")
    pop = _population(demand, population_column)
    o = _lead_od(od, demand, leads)
    share = _capacity_shares(leads, capacity)
    m, unassigned = _build_model(o, demand, pop, leads.index, share, adjacency=adjacency, fixed=fixed, tolerance=tol)
    logger.info("grid model: %d cells x %d leads, %d pairs, tolerance ±%.0f %%", m.n, m.J, len(m.vc), tol * 100)
    use_mip = method == "mip" or (method == "auto" and len(m.vc) <= MAX_MIP_PAIRS)
    work = _Work(deadline=t0 + tl, max_nodes=max_nodes, max_submips=max_submips)
    g, status, used, bound = _search(m, use_mip=use_mip, work=work, tolerance=tol, mip_gap=gap_target, time_limit_s=tl)
    obj, bound, gap, status = _close(m, g, status=status, bound=bound, work=work, mip_gap=gap_target, time_limit_s=tl)
    return _result(m, g, o, demand, pop, leads.index, unassigned, status=status, method=used, objective=obj,
                   bound=bound, gap=gap, seconds=time.perf_counter() - t0, tolerance=tol, work=work)


def _close(m: _Model, g: np.ndarray, *, status: Status, bound: float, work: _Work, mip_gap: float, time_limit_s: float,
           ) -> tuple[float, float, float, Status]:
    """Check the grids, and settle the objective, bound, gap and status (optimal only within `mip_gap`); log them."""
    if not _valid(m, g).all():  # pragma: no cover - guaranteed by the model
        msg = "internal error: a grid is not contiguous; fix: report a bug with the inputs"
        raise InfeasibleModelError(msg, cause="error")
    obj = m.cost(g)
    bound = min(bound, obj)
    gap = (obj - bound) / obj if obj > 0 else 0.0
    if status == "optimal" and gap > mip_gap + 1e-9:
        status = "time_limit" if work.timed_out else "work_limit"
    if work.timed_out:
        logger.warning("grid solve stopped by the time limit of %g s: results may differ between runs; fix: raise "
                       "time_limit_s (--time-limit), or lower max_nodes (--max-nodes) for a quicker reproducible bound",
                       time_limit_s)
    logger.info("grids: %s, gap %.2f %% to the lower bound (%s of at most %s MIP nodes, %d of at most %d sub-MIPs)",
                status, 100 * gap, f"{work.nodes:,}", f"{work.max_nodes:,}", work.submips, work.max_submips)
    return obj, bound, gap, status


def _lead_od(od: pd.DataFrame, demand: pd.DataFrame, leads: pd.DataFrame) -> pd.DataFrame:
    """Check the leads and return the usable OD rows (fastest per pair); a lead reaching no cell raises."""
    if len(leads) == 0:
        msg = "no lead hospitals were given; fix: pass the tertiary institutions, e.g. inst[inst['tier'] == 'tertiary']"
        raise InvalidValueError(msg)
    if leads.index.has_duplicates:
        dup = leads.index[leads.index.duplicated()][0]
        msg = f"lead id '{dup}' appears more than once in leads; fix: give each lead a unique facility_id"
        raise InvalidValueError(msg)
    o = _clean_od(od, demand.index, leads.index)
    reached = pd.Index(o["destination_id"].unique())
    missing = leads.index.difference(reached, sort=False)
    if len(missing):
        lead = missing[0]
        name = f" ({str(leads.at[lead, 'name'])})" if "name" in leads.columns else ""
        msg = (f"lead '{lead}'{name} reaches no cell: the OD table has no route from any cell to it"
               f"{f' (and {len(missing) - 1} more leads)' if len(missing) > 1 else ''}; "
               "fix: drop it from leads (keep institutions with snap_status == 'snapped') or check its coordinates")
        raise UnreachableFacilityError(msg)
    return o


def _search(m: _Model, *, use_mip: bool, work: _Work, tolerance: float, mip_gap: float, time_limit_s: float,
            ) -> tuple[np.ndarray, Status, Literal["mip", "heuristic"], float]:
    """Run the heuristic, then (with `use_mip`) the MIP warm-started from it: grids, status, method, lower bound."""
    mip_lp = _mip_arrays(m)
    g, lp_bound = _heuristic(m, mip_lp, work=work, tolerance=tolerance)
    heur_ok = g is not None and _loads_ok(m, g)
    relax = f"relax tolerance (e.g. tolerance={min(tolerance + 0.1, 0.9):.1f})"
    if not use_mip:
        if not heur_ok:
            msg = (f"the heuristic could not bring every load within ±{tolerance:.0%} of its capacity share with contiguous "
                   f"grids; fix: use method='mip', or {relax}")
            raise InfeasibleModelError(msg)
        assert g is not None
        return g, "heuristic", "heuristic", lp_bound
    try:
        sol = _solve(mip_lp, integer=True, mip_gap=mip_gap, work=work, max_nodes=work.max_nodes, main=True,
                     start=_x_from_g(m, g) if heur_ok and g is not None else None, what="grid assignment MIP")
    except InfeasibleModelError as err:
        if err.cause != "infeasible":
            raise
        raise _diagnose_infeasible(m, mip_lp, tolerance) from None
    if sol is None:
        if not heur_ok:
            msg = (f"no balanced contiguous grids were found within {work.max_nodes:,} branch-and-bound nodes and "
                   f"{time_limit_s:g} s (loads within ±{tolerance:.0%} of the capacity shares); fix: raise max_nodes "
                   f"(--max-nodes), or {relax}")
            raise InfeasibleModelError(msg, cause="time_limit" if work.timed_out else "work_limit")
        assert g is not None
        return g, "heuristic", "heuristic", lp_bound
    x, _, bound_s, st = sol
    g_mip = _g_from_x(m, x)
    if not (heur_ok and g is not None and m.cost(g) < m.cost(g_mip)):  # HiGHS keeps the start unless it improves
        g = g_mip
    return g, st, "mip", max(bound_s * m.a.sum(), lp_bound)


# --------------------------------------------------------------------------------------------------------------------
# result assembly
# --------------------------------------------------------------------------------------------------------------------


def _result(
    m: _Model,
    g: np.ndarray,
    o: pd.DataFrame,
    demand: pd.DataFrame,
    pop: pd.Series,
    leads: pd.Index,
    unassigned: pd.Index,
    *,
    status: Status,
    method: Literal["mip", "heuristic"],
    objective: float,
    bound: float,
    gap: float,
    seconds: float,
    tolerance: float,
    work: _Work | None = None,
) -> AssignmentResult:
    idx = demand.index
    assignment = pd.Series([None] * len(idx), index=idx, dtype=object, name="lead_id")
    assignment.loc[m.cell_ids] = m.lead_ids[g]
    tt = pd.Series(np.nan, index=idx, name="travel_time_s")
    tt.loc[m.cell_ids] = m.vt[m.var_of[np.arange(m.n), g]]
    base = nearest_lead_baseline(o, demand, pd.DataFrame(index=leads))
    b_lead = base["lead_id"].rename("lead_id")
    b_tt = base["travel_time_s"]
    a = pd.Series(m.a, index=m.cell_ids)
    bl = b_lead.loc[m.cell_ids]
    base_load = a.groupby(bl.to_numpy()).sum().reindex(leads, fill_value=0.0).to_numpy()
    load = m.loads(g)
    n_cells = np.bincount(g, minlength=m.J)
    loads = pd.DataFrame({
        "capacity_share": m.share, "target_population": m.target, "min_population": m.lower, "max_population": m.upper,
        "population": load, "load_ratio": load / m.target, "n_cells": n_cells, "home_cell": m.cell_ids[m.roots],
        "baseline_population": base_load, "baseline_load_ratio": base_load / m.target,
    }, index=pd.Index(leads, name="facility_id"))
    total = float(m.a.sum())
    moved = (bl.to_numpy() != m.lead_ids[g])
    base_tt = b_tt.loc[m.cell_ids].to_numpy(dtype=float)
    mean_t = objective / total if total else 0.0
    base_mean = float((m.a * base_tt).sum() / total) if total else 0.0
    within_base = (base_load >= m.lower - 1e-6) & (base_load <= m.upper + 1e-6)
    comparison = {
        "population_total": total,
        "population_unassigned": float(pop.loc[unassigned].sum()),
        "population_moved": float(m.a[moved].sum()),
        "population_moved_pct": 100.0 * float(m.a[moved].sum()) / total if total else 0.0,
        "cells_moved": int(moved.sum()),
        "mean_travel_time_s": mean_t,
        "baseline_mean_travel_time_s": base_mean,
        "mean_travel_time_added_s": mean_t - base_mean,
        "min_load_ratio": float(loads["load_ratio"].min()),
        "max_load_ratio": float(loads["load_ratio"].max()),
        "baseline_min_load_ratio": float(loads["baseline_load_ratio"].min()),
        "baseline_max_load_ratio": float(loads["baseline_load_ratio"].max()),
        "baseline_leads_within_tolerance": int(within_base.sum()),
    }
    return AssignmentResult(assignment=assignment, travel_time_s=tt, baseline=b_lead, baseline_travel_time_s=b_tt,
                            loads=loads, status=status, method=method, objective=objective, lower_bound=bound, gap=gap,
                            seconds=seconds, tolerance=tolerance, comparison=comparison, unassigned=unassigned,
                            time_limited=bool(work is not None and work.timed_out),
                            work={} if work is None else {"mip_nodes": work.nodes, "mip_max_nodes": work.max_nodes,
                                                          "lns_submips": work.submips, "lns_max_submips": work.max_submips})
