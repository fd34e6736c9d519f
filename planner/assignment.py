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
import math
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import breadth_first_order, connected_components, dijkstra
from scipy.spatial import cKDTree

from . import settings
from ._errors import InfeasibleModelError, InvalidValueError, MissingColumnError, NoCrsError, UnreachableFacilityError
from ._highs import import_highspy, log_mip_progress, new_highs, set_deterministic

logger = logging.getLogger(__name__)

DEFAULT_TOLERANCE: float = 0.2  # relative: each load within ±20 % of its capacity share
DEFAULT_TIME_LIMIT_S: float = 600.0  # seconds; a safety net only: the work bounds below end a normal solve
DEFAULT_MIP_GAP: float = 1e-4  # relative gap at which HiGHS stops and the MIP counts as optimal
MAX_MIP_PAIRS: int = 200_000  # (cell, lead) pairs; above this, method="auto" uses the heuristic
MIP_MAX_NODES: int = 200  # branch-and-bound nodes of the full MIP: its deterministic work bound
LNS_MAX_SUBMIPS: int = 60  # neighbourhood sub-MIPs of the heuristic: its deterministic work bound
LNS_SUB_MAX_NODES: int = 50  # branch-and-bound nodes of one neighbourhood sub-MIP
P95: float = 0.95  # quantile of the population-weighted travel-time percentiles
PROGRESS_EVERY_S: float = 5.0  # seconds between progress lines (logged at INFO; they never change the result)

Status = Literal["optimal", "work_limit", "time_limit", "heuristic"]
Method = Literal["auto", "mip", "heuristic"]
_OD_COLUMNS = ("origin_id", "destination_id", "travel_time_s")
_EPS_M = 1e-6  # metres; two adjacency distances closer than this are equal
_UNASSIGNED = -1
SUB_GAP = 1e-3


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
# adjacency
# --------------------------------------------------------------------------------------------------------------------


def cell_adjacency(
    cells: gpd.GeoDataFrame,
    *,
    contiguity: Literal["rook", "queen"] = "rook",
    link_islands: bool = False,
) -> pd.DataFrame:
    """Adjacency of demand cells, in long form.

    Two cells are adjacent when their polygons touch: along an edge
    (``rook``) or also at a corner (``queen``). Polygons must share exact
    coordinates where they meet, as the cells of
    :func:`planner.demand.load_population` do. Computed with a shapely
    STRtree ``touches`` query (vectorised), so no libpysal dependency is
    needed; libpysal's ``Rook``/``Queen`` give the same pairs.

    Parameters
    ----------
    cells
        Demand cells (polygons, any CRS) indexed by ``cell_id``.
    contiguity
        ``"rook"`` (shared edge; the default, so that a grid never hangs
        together by a corner) or ``"queen"`` (edge or corner).
    link_islands
        Join groups of cells that touch no other group (across a river or a
        lake, where empty cells are missing) to the nearest cell of another
        group, until all cells form one group; such pairs have
        ``link=True``.

    Returns
    -------
    adjacency
        Columns ``cell_id``, ``neighbor_id`` (both directions of every pair),
        ``distance_m`` (between cell centres, in metres) and ``link``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> boxes = [shapely.box(x, 0, x + 1, 1) for x in range(3)] + [shapely.box(1, 1, 2, 2)]
    >>> cells = gpd.GeoDataFrame(geometry=boxes, crs="EPSG:32650")
    >>> cell_adjacency(cells)[["cell_id", "neighbor_id"]].values.tolist()
    [[0, 1], [1, 0], [1, 2], [1, 3], [2, 1], [3, 1]]
    >>> len(cell_adjacency(cells, contiguity="queen"))
    10
    """
    if contiguity not in ("rook", "queen"):
        msg = f"contiguity={contiguity!r} is not known; fix: use 'rook' (shared edge) or 'queen' (edge or corner)"
        raise InvalidValueError(msg)
    if cells.crs is None:
        msg = "the cells have no CRS; fix: set it, e.g. cells.set_crs('EPSG:4326')"
        raise NoCrsError(msg)
    geoms = cells.geometry.to_numpy()
    a, b = shapely.STRtree(geoms).query(geoms, predicate="touches")
    if contiguity == "rook" and len(a):
        shared = shapely.intersection(geoms[a], geoms[b])
        keep = shapely.length(shared) > 0
        a, b = a[keep], b[keep]
    metric = cells if cells.crs.is_projected else cells.to_crs(cells.estimate_utm_crs())
    xy = shapely.get_coordinates(shapely.centroid(metric.geometry.to_numpy()))
    link = np.zeros(len(a), dtype=bool)
    if link_islands and len(cells) > 1:
        la, lb = _island_links(len(cells), a, b, xy)
        a, b = np.concatenate([a, la, lb]), np.concatenate([b, lb, la])
        link = np.concatenate([link, np.ones(2 * len(la), dtype=bool)])
    order = np.lexsort((b, a))
    a, b, link = a[order], b[order], link[order]
    ids = cells.index.to_numpy()
    return pd.DataFrame({"cell_id": ids[a], "neighbor_id": ids[b],
                         "distance_m": np.hypot(*(xy[a] - xy[b]).T), "link": link})


def _island_links(n: int, a: np.ndarray, b: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shortest centre-to-centre links joining all groups of touching cells (Borůvka rounds)."""
    la: list[int] = []
    lb: list[int] = []
    while True:
        g = sp.coo_matrix((np.ones(len(a) + len(la)), (np.concatenate([a, la]).astype(int),
                                                        np.concatenate([b, lb]).astype(int))), shape=(n, n))
        n_comp, label = connected_components(g, directed=False)
        if n_comp == 1:
            return np.asarray(la, dtype=np.int64), np.asarray(lb, dtype=np.int64)
        added = set()
        for c in range(n_comp):  # one query per group, not per cell
            inside = np.flatnonzero(label == c)
            outside = np.flatnonzero(label != c)
            dist, nearest = cKDTree(xy[outside]).query(xy[inside])
            k = np.asarray(nearest, dtype=np.int64)
            m = int(np.argmin(dist))
            pair = (int(inside[m]), int(outside[k[m]]))
            if (pair[1], pair[0]) not in added:
                added.add(pair)
        for u, v in sorted(added):
            la.append(u)
            lb.append(v)


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


def assign_lead_hospital(
    od: pd.DataFrame,
    demand: pd.DataFrame,
    leads: pd.DataFrame,
    *,
    adjacency: pd.DataFrame,
    capacity: str | Mapping[Hashable, float] | pd.Series | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    fixed: Mapping[Hashable, Hashable] | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
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
        and may differ between runs.
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
    tol, tl, gap_target = _check_args(tolerance, time_limit_s, mip_gap, method)
    max_nodes, max_submips = _check_count(max_nodes, "max_nodes"), _check_count(max_submips, "max_submips")
    pop = _population(demand, population_column)
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
    share = _capacity_shares(leads, capacity)
    m, unassigned = _build_model(o, demand, pop, leads.index, share, adjacency=adjacency, fixed=fixed, tolerance=tol)
    logger.info("grid model: %d cells x %d leads, %d pairs, tolerance ±%.0f %%", m.n, m.J, len(m.vc), tol * 100)

    mip_lp = _mip_arrays(m)
    use_mip = method == "mip" or (method == "auto" and len(m.vc) <= MAX_MIP_PAIRS)
    work = _Work(deadline=t0 + tl, max_nodes=max_nodes, max_submips=max_submips)
    g, lp_bound = _heuristic(m, mip_lp, work=work, tolerance=tol)
    heur_ok = g is not None and _loads_ok(m, g)
    status: Status
    used: Literal["mip", "heuristic"]
    if use_mip:
        try:
            sol = _solve(mip_lp, integer=True, mip_gap=gap_target, work=work, max_nodes=max_nodes, main=True,
                         start=_x_from_g(m, g) if heur_ok and g is not None else None, what="grid assignment MIP")
        except _Infeasible:
            raise _diagnose_infeasible(m, mip_lp, tol) from None
        if sol is None:
            if not heur_ok:
                msg = (f"no balanced contiguous grids were found within {max_nodes:,} branch-and-bound nodes and "
                       f"{tl:g} s (loads within ±{tol:.0%} of the capacity shares); fix: raise max_nodes (--max-nodes), "
                       f"or relax tolerance (e.g. tolerance={min(tol + 0.1, 0.9):.1f})")
                raise InfeasibleModelError(msg)
            status, used, bound = "heuristic", "heuristic", lp_bound
        else:
            x, _, bound_s, st = sol
            g_mip = _g_from_x(m, x)
            if not (heur_ok and g is not None and m.cost(g) < m.cost(g_mip)):  # HiGHS keeps the start unless it improves
                g = g_mip
            status, used, bound = st, "mip", max(bound_s * m.a.sum(), lp_bound)
    else:
        if not heur_ok:
            msg = (f"the heuristic could not bring every load within ±{tol:.0%} of its capacity share with contiguous grids; "
                   "fix: use method='mip', or relax tolerance (e.g. tolerance="
                   f"{min(tol + 0.1, 0.9):.1f})")
            raise InfeasibleModelError(msg)
        status, used, bound = "heuristic", "heuristic", lp_bound
    assert g is not None
    if not _valid(m, g).all():  # pragma: no cover - guaranteed by the model
        msg = "internal error: a grid is not contiguous; fix: report a bug with the inputs"
        raise InfeasibleModelError(msg)
    obj = m.cost(g)
    bound = min(bound, obj)
    gap = (obj - bound) / obj if obj > 0 else 0.0
    if status == "optimal" and gap > gap_target + 1e-9:
        status = "time_limit" if work.timed_out else "work_limit"
    if work.timed_out:
        logger.warning("grid solve stopped by the time limit of %g s: results may differ between runs; fix: raise "
                       "time_limit_s (--time-limit), or lower max_nodes (--max-nodes) for a quicker reproducible bound", tl)
    logger.info("grids: %s, gap %.2f %% to the lower bound (%s of at most %s MIP nodes, %d of at most %d sub-MIPs)",
                status, 100 * gap, f"{work.nodes:,}", f"{max_nodes:,}", work.submips, max_submips)
    return _result(m, g, o, demand, pop, leads.index, unassigned, status=status, method=used, objective=obj,
                   bound=bound, gap=gap, seconds=time.perf_counter() - t0, tolerance=tol, work=work)


# --------------------------------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------------------------------


def _check_args(tolerance: float, time_limit_s: float, mip_gap: float, method: str) -> tuple[float, float, float]:
    tol = float(tolerance)
    if not (math.isfinite(tol) and tol >= 0):
        msg = f"tolerance={tolerance!r} must be a relative band >= 0; fix: e.g. tolerance=0.2 for ±20 %"
        raise InvalidValueError(msg)
    tl = float(time_limit_s)
    if not tl > 0:
        msg = f"time_limit_s={time_limit_s!r} must be > 0 seconds; fix: e.g. time_limit_s=60"
        raise InvalidValueError(msg)
    g = float(mip_gap)
    if not 0 <= g < 1:
        msg = f"mip_gap={mip_gap!r} must be a relative gap in [0, 1); fix: e.g. mip_gap=1e-4"
        raise InvalidValueError(msg)
    if method not in ("auto", "mip", "heuristic"):
        msg = f"method={method!r} is not known; fix: use 'auto', 'mip' or 'heuristic'"
        raise InvalidValueError(msg)
    return tol, tl, g


def _check_count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        default = MIP_MAX_NODES if name == "max_nodes" else LNS_MAX_SUBMIPS
        msg = f"{name}={value!r} must be a whole number >= 0; fix: e.g. {name}={default}"
        raise InvalidValueError(msg)
    return int(value)


def _population(demand: pd.DataFrame, column: str) -> pd.Series:
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
    miss = [c for c in _OD_COLUMNS if c not in od.columns]
    if miss:
        msg = f"the OD table lacks {', '.join(miss)}; fix: pass planner.travel_time.od_travel_times output (long form)"
        raise MissingColumnError(msg)
    t = pd.to_numeric(od["travel_time_s"], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(t) & od["origin_id"].isin(cells).to_numpy() & od["destination_id"].isin(leads).to_numpy()
    if (t[np.isfinite(t)] < 0).any():
        msg = "the OD table has negative travel times; fix: travel_time_s must be seconds >= 0"
        raise InvalidValueError(msg)
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
    J = len(leads)
    fixed_all = _resolve_fixed(fixed, demand, leads)
    routed = pd.Index(o["origin_id"].unique())
    in_model = demand.index.isin(routed)
    unassigned = demand.index[~in_model]
    if len(unassigned):
        logger.warning("%d cells (%.0f persons) have no route to any lead and are left unassigned",
                       len(unassigned), float(pop[~in_model].sum()))
    district = demand["district"] if "district" in demand.columns else None
    fixed_unrouted = unassigned[(fixed_all[~in_model] >= 0).to_numpy()]
    if len(fixed_unrouted) and fixed is not None and any(c in fixed for c in fixed_unrouted):
        cell = next(c for c in fixed_unrouted if c in fixed)
        msg = (f"cell {cell} is fixed to lead '{fixed[cell]}' but has no route to any lead; "
               "fix: unfix it, or snap cells with a larger max_snap_m")
        raise InfeasibleModelError(msg)
    cell_ids = demand.index[in_model].to_numpy()
    n = len(cell_ids)
    a = pop[in_model].to_numpy(dtype=float)
    fix = fixed_all[in_model].to_numpy()

    # pairs
    pc = pd.Index(cell_ids).get_indexer(pd.Index(o["origin_id"]))
    pl = leads.get_indexer(pd.Index(o["destination_id"]))
    T = np.full((n, J), np.inf)
    T[pc, pl] = o["travel_time_s"].to_numpy(dtype=float)
    fixed_no_pair = (fix >= 0) & ~np.isfinite(T[np.arange(n), np.maximum(fix, 0)])
    if fixed_no_pair.any():
        i = int(np.flatnonzero(fixed_no_pair)[0])
        where = f" (district {district.iloc[np.flatnonzero(in_model)[i]]})" if district is not None else ""
        msg = (f"cell {cell_ids[i]}{where} is fixed to lead '{leads[fix[i]]}' but the OD table has no route between them; "
               "fix: pass an OD table without max_minutes, or unfix that cell or district")
        raise InfeasibleModelError(msg)

    # adjacency among model cells
    adj = _adjacency_matrix(adjacency, cell_ids)

    # home cells: distinct, minimum total time, never a cell fixed to another lead
    allowed = np.isfinite(T) & ((fix[:, None] < 0) | (fix[:, None] == np.arange(J)[None, :]))
    big = 1e12
    cost = np.where(allowed, T, big).T  # (J, n)
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
    allowed = np.isfinite(T) & ((fix[:, None] < 0) | (fix[:, None] == np.arange(J)[None, :]))

    # adjacency distance from each home within the cells that may join that grid
    d = np.full((J, n), np.inf)
    for j in range(J):  # one Dijkstra per lead on its own subgraph
        ok = np.flatnonzero(allowed[:, j])
        sub: Any = adj[ok][:, ok]
        r = int(np.searchsorted(ok, roots[j]))
        d[j, ok] = dijkstra(sub, directed=False, indices=[r])[0]
    usable = np.isfinite(d.T)

    # fixed cells that cannot be joined to their lead's grid
    stranded = (fix >= 0) & ~usable[np.arange(n), np.maximum(fix, 0)]
    if stranded.any():
        i = int(np.flatnonzero(stranded)[0])
        j = int(fix[i])
        where = f" (district {district.iloc[np.flatnonzero(in_model)[i]]})" if district is not None else ""
        msg = (f"cell {cell_ids[i]}{where} is fixed to lead '{leads[j]}' but cannot join its grid contiguously: every "
               f"path of adjacent cells from the lead's home cell {cell_ids[roots[j]]} to it crosses cells fixed to other "
               "leads or without a route to it; fix: unfix that cell or district, or fix the cells between them to the same lead")
        raise InfeasibleModelError(msg)
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
        n = len(cell_ids)

    vc, vl = np.nonzero(usable)
    order = np.lexsort((vl, vc))
    vc, vl = vc[order], vl[order]
    var_of = np.full((n, J), -1, dtype=np.int64)
    var_of[vc, vl] = np.arange(len(vc))
    total = float(a.sum())
    target = share * total
    lower, upper = (1 - tolerance) * target, (1 + tolerance) * target
    m = _Model(cell_ids=cell_ids, lead_ids=leads.to_numpy(), a=a, vc=vc, vl=vl, vt=T[vc, vl], var_of=var_of, roots=roots,
               fixed=fix, d=d, adj=adj, lower=lower, upper=upper, target=target, share=share)
    reach_od = np.isfinite(T).astype(float).T @ a
    _check_loads(m, tolerance, reach_od)
    return m, unassigned


def _adjacency_matrix(adjacency: pd.DataFrame, cell_ids: np.ndarray) -> sp.csr_array:
    miss = [c for c in ("cell_id", "neighbor_id") if c not in adjacency.columns]
    if miss:
        msg = f"the adjacency lacks {', '.join(miss)}; fix: pass planner.assignment.cell_adjacency(cells)"
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
    """Solve with HiGHS within the node bound; (x, objective, bound, status), None without a solution; raise if infeasible.

    Status ``"work_limit"`` when the node bound stopped it (reproducible), ``"time_limit"`` when the safety-net
    deadline did (and ``work.timed_out`` is set). `main` marks the full MIP: its progress is logged and its nodes
    counted in `work`.
    """
    highspy = import_highspy()

    h = new_highs()
    n, nr = len(lp.cost), len(lp.row_lower)
    A = lp.A
    if integrality is None:
        integrality = np.full(n, 1 if integer else 0, dtype=np.int32)
    st = h.passModel(n, nr, int(A.nnz), 1, 1, 0.0,
                     np.ascontiguousarray(lp.cost, dtype=np.float64), np.ascontiguousarray(lp.lower, dtype=np.float64),
                     np.ascontiguousarray(lp.upper, dtype=np.float64), np.ascontiguousarray(lp.row_lower, dtype=np.float64),
                     np.ascontiguousarray(lp.row_upper, dtype=np.float64), np.ascontiguousarray(A.indptr[:-1], dtype=np.int32),
                     np.ascontiguousarray(A.indices, dtype=np.int32), np.ascontiguousarray(A.data, dtype=np.float64),
                     integrality)
    if st == highspy.HighsStatus.kError:  # pragma: no cover - arrays are built consistently
        msg = f"{what}: HiGHS rejected the model; fix: check the inputs for non-finite times or populations"
        raise InfeasibleModelError(msg)
    set_deterministic(h, time_limit_s=work.remaining_s(), max_nodes=max_nodes)
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    if start is not None:
        h.setSolution(n, np.arange(n, dtype=np.int32), np.ascontiguousarray(start, dtype=np.float64))
    if main:  # the objective is the population-weighted mean travel time in seconds
        log_mip_progress(h, logger, what, fmt=lambda v: f"{v / 60:.2f} min mean travel time", max_nodes=max_nodes,
                         every_s=PROGRESS_EVERY_S)
    t0 = time.perf_counter()
    h.run()
    ms = h.getModelStatus()
    info = h.getInfo()
    MS = highspy.HighsModelStatus
    has_solution = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
    nodes = int(info.mip_node_count) if integer and info.mip_node_count >= 0 else 0
    logger.log(logging.INFO if main else logging.DEBUG, "%s: HiGHS %s in %.2f s (%s nodes)", what,
               h.modelStatusToString(ms), time.perf_counter() - t0, f"{nodes:,}")
    if ms == MS.kTimeLimit or (ms == MS.kInterrupt and time.perf_counter() >= work.deadline):
        work.timed_out = True
    if ms in (MS.kInfeasible, MS.kUnboundedOrInfeasible):
        raise _Infeasible(what)
    if ms == MS.kOptimal:
        status: Status = "optimal"
    elif has_solution and ms in (MS.kIterationLimit, MS.kSolutionLimit):
        status = "work_limit"
    elif has_solution and ms in (MS.kTimeLimit, MS.kInterrupt):
        status = "time_limit"
    elif ms in (MS.kTimeLimit, MS.kIterationLimit, MS.kSolutionLimit):
        return None
    else:  # pragma: no cover - numerical trouble
        msg = f"{what}: HiGHS stopped with status '{h.modelStatusToString(ms)}'; fix: check the inputs or report a bug"
        raise InfeasibleModelError(msg)
    if main:
        work.nodes += nodes
    x = np.asarray(h.getSolution().col_value, dtype=float)
    obj = float(info.objective_function_value)
    bound = float(info.mip_dual_bound) if integer else obj
    if not math.isfinite(bound):
        bound = 0.0
    return x, obj, bound, status


class _Infeasible(InfeasibleModelError):
    """HiGHS proved a model infeasible (re-raised with a diagnosis)."""


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
    except _Infeasible:
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


# --------------------------------------------------------------------------------------------------------------------
# heuristic: LP rounding, contiguity repair, local search
# --------------------------------------------------------------------------------------------------------------------


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
    except _Infeasible:
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


# --------------------------------------------------------------------------------------------------------------------
# grids, members and resource balance
# --------------------------------------------------------------------------------------------------------------------


def dissolve_grids(cells: gpd.GeoDataFrame, assignment: pd.Series, *, population_column: str = "population") -> gpd.GeoDataFrame:
    """Grid polygons: the cells of each lead dissolved into one (multi)polygon.

    Parameters
    ----------
    cells
        Demand cells indexed by ``cell_id``.
    assignment
        Lead id per cell (``AssignmentResult.assignment``); unassigned cells
        (None) are left out.
    population_column
        Column of `cells` holding persons.

    Returns
    -------
    grids
        Index ``facility_id`` (the lead), columns ``population``,
        ``n_cells`` and ``geometry`` in EPSG:4326, in the order the leads
        first appear in `assignment`.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> cells = gpd.GeoDataFrame({"population": [1.0, 2.0, 3.0]},
    ...                          geometry=[shapely.box(x, 0, x + 1, 1) for x in range(3)], crs="EPSG:32650")
    >>> g = dissolve_grids(cells, pd.Series(["A", "A", "B"]))
    >>> g["population"].tolist(), g["n_cells"].tolist(), g.geom_type.tolist()
    ([3.0, 3.0], [2, 1], ['Polygon', 'Polygon'])
    """
    lead = assignment.reindex(cells.index)
    keep = lead.notna().to_numpy()
    c = gpd.GeoDataFrame({"facility_id": lead[keep].to_numpy(), "population": cells[population_column].to_numpy()[keep],
                          "n_cells": 1}, geometry=cells.geometry.to_numpy()[keep], crs=cells.crs)
    order = pd.unique(c["facility_id"])
    out = c.dissolve(by="facility_id", aggfunc={"population": "sum", "n_cells": "sum"}).reindex(order)
    out.index.name = "facility_id"
    return out.to_crs("EPSG:4326")


def attach_members(
    institutions: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame,
    assignment: pd.Series,
    *,
    max_distance_m: float | None = None,
) -> pd.DataFrame:
    """Attach each institution (member) to the grid it serves: the grid of the cell it stands in.

    An institution outside every assigned cell joins the grid of the nearest
    assigned cell, up to `max_distance_m`.

    Parameters
    ----------
    institutions
        Institution points indexed by ``facility_id``.
    cells
        Demand cells indexed by ``cell_id``.
    assignment
        Lead id per cell (``AssignmentResult.assignment``).
    max_distance_m
        Largest distance in metres to the nearest assigned cell;
        ``settings.MAX_SNAP_M`` by default.

    Returns
    -------
    members
        Indexed like `institutions`: ``lead_id`` (None beyond
        `max_distance_m`), ``cell_id`` and ``distance_m`` (0 inside a cell).
    """
    max_d = settings.MAX_SNAP_M if max_distance_m is None else float(max_distance_m)
    lead = assignment.reindex(cells.index)
    keep = lead.notna().to_numpy()
    c = cells[keep]
    crs = cells.estimate_utm_crs() if cells.crs is not None and cells.crs.is_geographic else cells.crs
    cg = c.geometry.to_crs(crs).to_numpy()
    pts = institutions.geometry.to_crs(crs).to_numpy()
    out = pd.DataFrame({"lead_id": pd.Series([None] * len(institutions), index=institutions.index, dtype=object),
                        "cell_id": pd.Series([None] * len(institutions), index=institutions.index, dtype=object),
                        "distance_m": np.nan}, index=institutions.index)
    if len(cg) == 0 or len(pts) == 0:
        return out
    (pi, ci), dist = shapely.STRtree(cg).query_nearest(pts, max_distance=max_d, return_distance=True, all_matches=False)
    out.iloc[pi, 0] = lead[keep].to_numpy()[ci]
    out.iloc[pi, 1] = c.index.to_numpy()[ci]
    out.iloc[pi, 2] = np.round(dist, 1)
    return out


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Population-weighted quantile: the smallest value with at least `q` of the weight at or below it.

    Parameters
    ----------
    values
        Values (e.g. seconds); NaN entries are ignored.
    weights
        Weights (e.g. persons), >= 0.
    q
        Quantile in [0, 1].

    Returns
    -------
    quantile
        NaN when there is no weight.

    Examples
    --------
    >>> weighted_quantile(np.array([10.0, 20.0, 30.0]), np.array([50.0, 45.0, 5.0]), 0.95)
    20.0
    """
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    ok = np.isfinite(v) & (w > 0)
    v, w = v[ok], w[ok]
    if w.sum() <= 0:
        return math.nan
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order])
    k = int(np.searchsorted(cum, q * cum[-1] * (1 - 1e-12), side="left"))
    return float(v[order][min(k, len(v) - 1)])


def _time_stats(t: pd.Series, w: pd.Series, key: pd.Series) -> pd.DataFrame:
    df = pd.DataFrame({"t": t.to_numpy(dtype=float), "w": w.to_numpy(dtype=float), "key": key.to_numpy()})
    df = df[df["key"].notna() & np.isfinite(df["t"])]
    rows = {}
    for k, grp in df.groupby("key", sort=False):  # one row per grid or district
        ww = grp["w"].to_numpy()
        tt = grp["t"].to_numpy()
        rows[k] = {"mean_travel_time_min": float((tt * ww).sum() / ww.sum()) / 60 if ww.sum() > 0 else math.nan,
                   "p95_travel_time_min": weighted_quantile(tt, ww, P95) / 60,
                   "max_travel_time_min": float(tt.max()) / 60}
    return pd.DataFrame.from_dict(rows, orient="index")


def _tier_counts(inst: pd.DataFrame, key: pd.Series, prefix: str) -> pd.DataFrame:
    tiers = inst["tier"] if "tier" in inst.columns else pd.Series("unknown", index=inst.index)
    df = pd.DataFrame({"key": key.to_numpy(), "tier": tiers.to_numpy()})
    df = df[df["key"].notna()]
    out = pd.crosstab(df["key"], df["tier"]).reindex(columns=list(settings.TIERS), fill_value=0)
    out.columns = [f"{prefix}_{t}" for t in out.columns]
    out[prefix] = out.sum(axis=1)
    return out


def _capacity_of(rows: pd.DataFrame, ids: pd.Index) -> np.ndarray:
    """Capacity (NaN where unknown) of the rows with these ids."""
    c = pd.to_numeric(rows["capacity"], errors="coerce") if "capacity" in rows.columns else pd.Series(np.nan, index=rows.index)
    return np.asarray(c.reindex(ids).to_numpy(), dtype=float)


def grids_summary(
    result: AssignmentResult,
    cells: pd.DataFrame,
    *,
    institutions: pd.DataFrame | None = None,
    leads: pd.DataFrame | None = None,
    population_column: str = "population",
) -> pd.DataFrame:
    """Per-grid figures: load against the capacity share, travel time to the lead, members by tier.

    Parameters
    ----------
    result
        Output of :func:`assign_lead_hospital`.
    cells
        Demand cells indexed by ``cell_id`` (the `demand` of the call).
    institutions
        Institutions (``tier``, optional ``name``, ``capacity`` and
        geometry), attached to grids as members (:func:`attach_members`,
        which needs point geometry). Without `leads`, the leads are the
        institutions whose id is a lead id, and their names come from here.
    leads
        The leads (``name``, optional ``capacity``) when they have their own
        id space (a leads file): then every row of `institutions` is a
        member, even one whose id equals a lead's id.
    population_column
        Column of `cells` holding persons.

    Returns
    -------
    grids
        Index ``facility_id`` (the lead): ``name``, the `loads` columns,
        ``within_tolerance``, ``mean_travel_time_min``,
        ``p95_travel_time_min`` (population-weighted 95th percentile),
        ``max_travel_time_min``, ``members`` and ``members_<tier>``,
        ``capacity`` (beds of the lead and its members, where known),
        ``capacity_missing`` (how many of them lack one) and
        ``capacity_per_1000`` (per 1,000 residents of the grid).
    """
    loads = result.loads.copy()
    loads["within_tolerance"] = (loads["population"] >= loads["min_population"] - 1e-6) & (
        loads["population"] <= loads["max_population"] + 1e-6)
    stats = _time_stats(result.travel_time_s, cells[population_column], result.assignment)
    out = loads.join(stats)
    if institutions is not None:
        if leads is not None:
            lead_rows, members = leads, institutions
        else:
            is_lead = institutions.index.isin(out.index)
            lead_rows, members = institutions[is_lead], institutions[~is_lead]
        if "name" in lead_rows.columns:
            out.insert(0, "name", lead_rows["name"].reindex(out.index).to_numpy())
        if isinstance(institutions, gpd.GeoDataFrame) and len(members):
            att = attach_members(members, gpd.GeoDataFrame(cells), result.assignment)
            key = att["lead_id"]
        else:
            key = pd.Series([None] * len(members), index=members.index, dtype=object)
        out = out.join(_tier_counts(members, key, "members")).fillna(
            {f"members_{t}": 0 for t in settings.TIERS} | {"members": 0})
        # lead and member capacities stay in their own id spaces: never one index over both
        df = pd.DataFrame({"grid": np.concatenate([out.index.to_numpy(dtype=object), key.to_numpy(dtype=object)]),
                           "cap": np.concatenate([_capacity_of(lead_rows, out.index), _capacity_of(members, members.index)])})
        df = df[df["grid"].notna()]
        agg = df.groupby("grid").agg(capacity=("cap", lambda s: s.sum(min_count=1)),
                                      capacity_missing=("cap", lambda s: int(s.isna().sum())))
        out = out.join(agg)
        out["capacity_per_1000"] = out["capacity"] / out["population"] * 1000
        for c in ["members", *[f"members_{t}" for t in settings.TIERS], "capacity_missing"]:
            out[c] = out[c].fillna(0).astype(int)
    out.index.name = "facility_id"
    return out


def district_summary(
    result: AssignmentResult,
    cells: pd.DataFrame,
    *,
    institutions: pd.DataFrame | None = None,
    population_column: str = "population",
) -> pd.DataFrame:
    """Per-district resource balance: institutions by tier, capacity per 1,000 residents, time to the lead.

    Parameters
    ----------
    result
        Output of :func:`assign_lead_hospital`.
    cells
        Demand cells indexed by ``cell_id`` with a ``district`` column.
    institutions
        All institutions with ``tier``, a ``district`` column and optional
        ``capacity``.
    population_column
        Column of `cells` holding persons.

    Returns
    -------
    districts
        Index ``district``: ``population``, ``population_assigned``,
        ``n_grids`` (leads serving it), ``main_lead`` (the lead serving most
        of its residents), ``mean_travel_time_min``, ``p95_travel_time_min``,
        ``max_travel_time_min`` (to the assigned lead), ``institutions`` and
        ``institutions_<tier>``, ``capacity`` (where known),
        ``capacity_missing`` and ``capacity_per_1000``.

    Raises
    ------
    MissingColumnError
        If `cells` has no ``district`` column.
    """
    if "district" not in cells.columns:
        msg = "cells have no 'district' column; fix: load the case with boundaries (load_case(..., boundaries=...))"
        raise MissingColumnError(msg)
    dist = cells["district"].fillna("(outside districts)")
    pop = cells[population_column].astype(float)
    assigned = result.assignment.reindex(cells.index)
    df = pd.DataFrame({"district": dist.to_numpy(), "pop": pop.to_numpy(), "lead": assigned.to_numpy()})
    base = df.groupby("district", sort=True).agg(population=("pop", "sum"))
    a = df[df["lead"].notna()]
    base["population_assigned"] = a.groupby("district")["pop"].sum()
    base["n_grids"] = a.groupby("district")["lead"].nunique()
    main = a.groupby(["district", "lead"])["pop"].sum().reset_index().sort_values(["district", "pop"], ascending=[True, False])
    base["main_lead"] = main.drop_duplicates("district").set_index("district")["lead"]
    base = base.join(_time_stats(result.travel_time_s.reindex(cells.index), pop, dist.where(assigned.notna())))
    if institutions is not None:
        if "district" not in institutions.columns:
            msg = "institutions have no 'district' column; fix: load the case with boundaries"
            raise MissingColumnError(msg)
        key = institutions["district"]
        base = base.join(_tier_counts(institutions, key, "institutions"))
        cap = pd.to_numeric(institutions["capacity"], errors="coerce") if "capacity" in institutions.columns else \
            pd.Series(np.nan, index=institutions.index)
        c = pd.DataFrame({"district": key.to_numpy(), "cap": cap.to_numpy()})
        c = c[c["district"].notna()]
        base = base.join(c.groupby("district").agg(capacity=("cap", lambda s: s.sum(min_count=1)),
                                                   capacity_missing=("cap", lambda s: int(s.isna().sum()))))
        base["capacity_per_1000"] = base["capacity"] / base["population"] * 1000
        for col in ["institutions", *[f"institutions_{t}" for t in settings.TIERS], "capacity_missing"]:
            base[col] = base[col].fillna(0).astype(int)
    base["population_assigned"] = base["population_assigned"].fillna(0.0)
    base["n_grids"] = base["n_grids"].fillna(0).astype(int)
    base.index.name = "district"
    return base
