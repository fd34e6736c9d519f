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

import logging
import math
import time
import warnings
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._errors import InfeasibleModelError, InvalidValueError, MissingColumnError
from ._highs import import_highspy, new_highs

logger = logging.getLogger(__name__)

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

DEFAULT_TIME_LIMIT_S: float = 300.0  # seconds per solve
DEFAULT_MIP_GAP: float = 0.0  # relative; 0 asks HiGHS to prove optimality (its absolute gap 1e-6 still applies)
_ROUND = 6  # decimals of persons compared when ranking (absorbs float summation order)
ADDS_MIN_PERSONS: float = 0.05  # persons; a site newly covering fewer adds nobody (reports give 0.1 persons)
_OD_COLUMNS = ("origin_id", "destination_id", "travel_time_s")

Status = Literal["optimal", "time_limit", "heuristic"]



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
        solution found when the time limit stopped the solver) or
        ``"heuristic"`` (:func:`greedy_mclp`).
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


def _pct(x: float, of: float) -> float:
    return 100.0 * x / of if of > 0 else 0.0


# --------------------------------------------------------------------------------------------------------------------
# the instance: validated pairs
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Instance:
    """Validated cells, sites and the sparse pairs between them (sorted by cell, then site)."""

    cell_ids: pd.Index
    site_ids: pd.Index
    weights: np.ndarray  # persons per cell
    cell: np.ndarray  # pair -> cell position
    site: np.ndarray  # pair -> site position
    cost: np.ndarray  # pair -> cost (cost-matrix units)
    existing: np.ndarray  # bool per site
    radius: float  # pairs are within this cost (inf: all finite pairs)
    radius_label: str  # "15 min" or "service radius 900"
    col_ptr: np.ndarray  # site-major view of the pairs: col_ptr[j]:col_ptr[j+1] ...
    col_cell: np.ndarray  # ... cells of site j
    col_cost: np.ndarray  # ... and their costs

    @property
    def n_cells(self) -> int:
        return len(self.cell_ids)

    @property
    def n_sites_all(self) -> int:
        return len(self.site_ids)

    @property
    def candidates(self) -> np.ndarray:
        return np.flatnonzero(~self.existing)

    @property
    def total(self) -> float:
        return float(self.weights.sum())

    def covered_by(self, open_mask: np.ndarray) -> np.ndarray:
        """Cells with a pair to an open site."""
        out = np.zeros(self.n_cells, dtype=bool)
        out[self.cell[open_mask[self.site]]] = True
        return out

    def reachable(self) -> np.ndarray:
        """Cells with at least one pair."""
        out = np.zeros(self.n_cells, dtype=bool)
        out[self.cell] = True
        return out

    def nearest_open(self, open_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position (-1 if none) and cost (inf) of each cell's nearest open site; ties go to the first site."""
        k = open_mask[self.site]
        c, s, d = self.cell[k], self.site[k], self.cost[k]
        order = np.lexsort((s, d, c))
        c, s, d = c[order], s[order], d[order]
        first = np.ones(len(c), dtype=bool)
        first[1:] = c[1:] != c[:-1]
        pos = np.full(self.n_cells, -1, dtype=np.int64)
        cost = np.full(self.n_cells, np.inf)
        pos[c[first]] = s[first]
        cost[c[first]] = d[first]
        return pos, cost

    def site_mask(self, positions: Iterable[int]) -> np.ndarray:
        m = self.existing.copy()
        m[np.asarray(list(positions), dtype=np.int64)] = True
        return m


def _as_ids(obj: object) -> pd.Index:
    """Ids from a (Geo)DataFrame/GeoSeries index, an Index, or any iterable of ids (a plain Series: its values)."""
    if obj is None:
        out = pd.Index([])
    elif isinstance(obj, (pd.DataFrame, gpd.GeoSeries)):
        out = pd.Index(obj.index)
    elif isinstance(obj, pd.Index):
        out = obj
    elif isinstance(obj, (str, bytes)) or not isinstance(obj, Iterable):
        out = pd.Index([obj])
    else:
        out = pd.Index(list(obj))
    return cast(pd.Index, out)


def _first(ids: Iterable[Any], n: int = 3) -> str:
    ids = list(ids)
    shown = ", ".join(repr(x.item() if isinstance(x, np.generic) else x) for x in ids[:n])
    return shown + (", ..." if len(ids) > n else "")


def _check_unique(ids: pd.Index, *, what: str) -> None:
    if not ids.is_unique:
        dup = ids[ids.duplicated()].unique()
        msg = f"{what} ids must be unique, found {len(dup)} duplicated ({_first(dup)}); fix: drop or rename the duplicates"
        raise InvalidValueError(msg)


def _check_weights(weights: Any, n_rows: int, cell_ids: Any) -> tuple[np.ndarray, pd.Index]:
    if isinstance(weights, pd.DataFrame):
        msg = "weights must be one population value per cell, got a table; fix: pass its population column"
        raise InvalidValueError(msg)
    try:
        w = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        msg = "demand weights must be numbers (persons per cell); fix: convert the population column to numbers"
        raise InvalidValueError(msg) from None
    if w.ndim != 1 or len(w) != n_rows:
        msg = f"weights must hold one value per cost-matrix row ({n_rows}), got shape {w.shape}; fix: one row per cell"
        raise InvalidValueError(msg)
    if cell_ids is not None:
        ids = _as_ids(cell_ids)
    elif isinstance(weights, pd.Series):
        ids = weights.index
    else:
        ids = pd.RangeIndex(n_rows)
    if len(ids) != n_rows:
        msg = f"cell_ids has {len(ids)} ids for {n_rows} cost-matrix rows; fix: one id per cell"
        raise InvalidValueError(msg)
    if ids.name is None:
        ids = ids.rename("cell_id")
    _check_unique(ids, what="cell")
    bad = ~np.isfinite(w)
    if bad.any():
        msg = (f"demand has {int(bad.sum())} missing or non-finite population value(s) (cells {_first(ids[bad])}); "
               "fix: fill them with 0 or drop those cells")
        raise InvalidValueError(msg)
    neg = w < 0
    if neg.any():
        k = int(np.flatnonzero(neg)[0])
        msg = (f"demand has {int(neg.sum())} negative population value(s) (first {w[k]:g} at cell {_first([ids[k]])}); "
               "fix: population must be ≥ 0 persons")
        raise InvalidValueError(msg)
    if n_rows and w.sum() <= 0:
        msg = "demand has no population (every cell is 0 persons); fix: check the population column or raster"
        raise InvalidValueError(msg)
    return w, ids


def _check_radius(service_radius: float | None, *, required: bool) -> float:
    if service_radius is None:
        if required:
            msg = "service_radius is required; fix: pass the service threshold in cost-matrix units"
            raise InvalidValueError(msg)
        return math.inf
    try:
        r = float(service_radius)
    except (TypeError, ValueError):
        r = math.nan
    if not (r >= 0 and math.isfinite(r)):
        msg = f"service_radius={service_radius!r} must be a finite number ≥ 0; fix: e.g. 900 seconds for 15 minutes"
        raise InvalidValueError(msg)
    return r


def _pairs_from_matrix(cost_matrix: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """Rows, columns and costs of the finite entries (sparse: stored entries), with shape."""
    if sp.issparse(cost_matrix):
        coo = cast(Any, cost_matrix).tocoo()
        r = np.asarray(coo.row, dtype=np.int64)
        c = np.asarray(coo.col, dtype=np.int64)
        try:
            d = np.asarray(coo.data, dtype=float)
        except (TypeError, ValueError):
            d = np.array([math.nan])
        shape = (int(coo.shape[0]), int(coo.shape[1]))
    else:
        try:
            dense = np.asarray(cost_matrix, dtype=float)
        except (TypeError, ValueError):
            msg = "cost_matrix must be numeric (NaN or inf where no route exists); fix: convert it to numbers"
            raise InvalidValueError(msg) from None
        if dense.ndim != 2:
            msg = f"cost_matrix must be 2-D (cells × sites), got {dense.ndim}-D; fix: one row per cell, one column per site"
            raise InvalidValueError(msg)
        r, c = np.nonzero(~np.isnan(dense))
        d = dense[r, c]
        shape = (int(dense.shape[0]), int(dense.shape[1]))
    if (d < 0).any() or np.isnan(d).any():
        msg = "cost_matrix has negative or non-numeric costs; fix: costs must be ≥ 0 (NaN or inf where no route exists)"
        raise InvalidValueError(msg)
    return r, c, d, shape


def _build_instance(
    cost_matrix: Any,
    weights: Any,
    *,
    service_radius: float | None,
    radius_required: bool,
    existing: Any,
    cell_ids: Any,
    site_ids: Any,
    radius_label: str | None = None,
) -> _Instance:
    radius = _check_radius(service_radius, required=radius_required)
    r, c, d, (n, m) = _pairs_from_matrix(cost_matrix)
    w, cids = _check_weights(weights, n, cell_ids)
    sids = pd.RangeIndex(m) if site_ids is None else _as_ids(site_ids)
    if len(sids) != m:
        msg = f"site_ids has {len(sids)} ids for {m} cost-matrix columns; fix: one id per site"
        raise InvalidValueError(msg)
    if sids.name is None:
        sids = sids.rename("site_id")
    _check_unique(sids, what="site")
    ex_ids = _as_ids(existing)
    pos = sids.get_indexer(ex_ids.unique()) if len(ex_ids) else np.array([], dtype=np.int64)
    if (pos < 0).any():
        msg = (f"existing site ids {_first(ex_ids.unique()[pos < 0])} are not among the {m} sites; "
               "fix: give existing sites a column in the cost matrix (or rows in the OD table)")
        raise InvalidValueError(msg)
    is_ex = np.zeros(m, dtype=bool)
    is_ex[pos] = True
    if m == 0 or is_ex.all():
        msg = "there are no candidate sites (none given, or all are existing); fix: pass at least one candidate site"
        raise InvalidValueError(msg)
    keep = np.isfinite(d) & (d <= radius)
    r, c, d = r[keep], c[keep], d[keep]
    # sort by cell, site, cost; duplicates keep their smallest cost
    order = np.lexsort((d, c, r))
    r, c, d = r[order], c[order], d[order]
    first = np.ones(len(r), dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    r, c, d = r[first], c[first], d[first]
    col_order = np.lexsort((r, c))
    col_ptr = np.zeros(m + 1, dtype=np.int64)
    col_ptr[1:] = np.cumsum(np.bincount(c, minlength=m))
    label = radius_label or ("any route" if math.isinf(radius) else f"service radius {radius:g}")
    return _Instance(cell_ids=cids, site_ids=sids, weights=w, cell=r, site=c, cost=d, existing=is_ex, radius=radius,
                     radius_label=label, col_ptr=col_ptr, col_cell=r[col_order], col_cost=d[col_order])


def _check_n_sites(n_sites: int, inst: _Instance) -> int:
    n_cand = int((~inst.existing).sum())
    if isinstance(n_sites, bool) or not isinstance(n_sites, (int, np.integer)) or n_sites < 0:
        msg = f"n_sites={n_sites!r} must be a whole number ≥ 0; fix: choose n_sites between 0 and {n_cand}"
        raise InvalidValueError(msg)
    if n_sites > n_cand:
        msg = (f"n_sites={n_sites} exceeds the {n_cand} candidate sites (existing sites are not candidates); "
               f"fix: choose n_sites ≤ {n_cand} or add candidates")
        raise InvalidValueError(msg)
    return int(n_sites)


def _check_minutes_value(max_minutes: float | None, *, required: bool) -> float | None:
    if max_minutes is None and not required:
        return None
    try:
        v = float(max_minutes)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        v = math.nan
    if not (v > 0 and math.isfinite(v)):
        msg = f"max_minutes={max_minutes!r} must be a positive number of minutes; fix: e.g. max_minutes=15"
        raise InvalidValueError(msg)
    return v


def _matrix_from_od(
    od: pd.DataFrame,
    demand: pd.Series | pd.DataFrame,
    candidates: Any,
    existing: Any,
    *,
    max_minutes: float | None,
) -> tuple[sp.coo_array, pd.Series, pd.Index]:
    """Sparse cells × sites travel times (seconds) from a long-form OD table."""
    missing = [col for col in _OD_COLUMNS if col not in od.columns]
    if missing:
        msg = (f"od is missing column(s) {', '.join(missing)}; fix: pass the output of "
               "planner.travel_time.od_travel_times (origin_id, destination_id, travel_time_s)")
        raise MissingColumnError(msg)
    if isinstance(demand, pd.DataFrame):
        if "population" not in demand.columns:
            msg = (f"demand has no 'population' column (columns: {', '.join(map(str, demand.columns))}); "
                   "fix: pass the cells of planner.demand.load_population or a Series of persons per cell")
            raise MissingColumnError(msg)
        pop = demand["population"]
    else:
        pop = demand
    cell_ids = pop.index
    _check_unique(cell_ids, what="cell")
    cand = _as_ids(candidates)
    ex = _as_ids(existing)
    if not len(cand):
        msg = "candidates is empty; fix: pass at least one candidate site"
        raise InvalidValueError(msg)
    _check_unique(cand, what="candidate site")
    ex = ex.unique()
    site_ids = cand[~cand.isin(ex)].append(ex)
    site_ids = site_ids.rename(cand.name or "site_id")
    r = cell_ids.get_indexer(pd.Index(od["origin_id"]))
    c = site_ids.get_indexer(pd.Index(od["destination_id"]))
    t = pd.to_numeric(od["travel_time_s"], errors="coerce").to_numpy(dtype=float)
    if len(od) and not (r >= 0).any():
        msg = (f"no od origin_id matches a demand cell id (e.g. od has {_first(od['origin_id'].unique())}, demand has "
               f"{_first(cell_ids)}); fix: compute od from the same cells")
        raise InvalidValueError(msg)
    if len(od) and not (c >= 0).any():
        msg = (f"no od destination_id matches a candidate or existing site id (e.g. od has "
               f"{_first(od['destination_id'].unique())}); fix: compute od to the candidate and existing sites")
        raise InvalidValueError(msg)
    if (t < 0).any():
        msg = "od has negative travel_time_s; fix: recompute od with planner.travel_time.od_travel_times"
        raise InvalidValueError(msg)
    keep = (r >= 0) & (c >= 0) & np.isfinite(t)
    if max_minutes is not None:
        keep &= t <= max_minutes * 60.0
    absent = ex[~ex.isin(od["destination_id"])]
    if len(absent):
        warnings.warn(f"existing sites {_first(absent)} have no travel times in od, so they cover no cell: no populated "
                      "cell is within reach of them, or their ids do not match od's destination_id", UserWarning, stacklevel=3)
    mat = sp.coo_array((t[keep], (r[keep], c[keep])), shape=(len(cell_ids), len(site_ids)))
    return mat, pop, site_ids


# --------------------------------------------------------------------------------------------------------------------
# HiGHS
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Lp:
    """A linear (mixed-integer) program in COO form."""

    cost: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    integer: np.ndarray  # bool per column
    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    maximize: bool
    offset: float = 0.0


@dataclass(frozen=True, eq=False)
class _Solution:
    status: Literal["optimal", "time_limit"]
    x: np.ndarray
    objective: float
    bound: float
    gap: float
    solve_s: float


class _Infeasible(InfeasibleModelError):
    """HiGHS proved the model infeasible (callers may re-raise with a better message)."""


def _check_solve_args(time_limit_s: float | None, mip_gap: float) -> tuple[float, float]:
    tl = math.inf if time_limit_s is None else float(time_limit_s)
    if not tl > 0:
        msg = f"time_limit_s={time_limit_s!r} must be > 0 seconds (or None for no limit); fix: e.g. time_limit_s=60"
        raise InvalidValueError(msg)
    g = float(mip_gap)
    if not 0 <= g < 1:
        msg = f"mip_gap={mip_gap!r} must be a relative gap in [0, 1); fix: 0 for proven optimality, e.g. 0.01 for 1%"
        raise InvalidValueError(msg)
    return tl, g




def _highs(lp: _Lp, *, time_limit_s: float, mip_gap: float, ipm: bool = False) -> Any:
    """Make a silent Highs instance holding `lp` (one passModel call with CSC arrays).

    With `ipm`, LPs use the interior-point method without crossover and MIPs solve their root LP with it: on
    large coverage models (tens of thousands of merged cells) the root LP is degenerate and dual simplex can take
    minutes where IPM takes seconds (50,000 cells x 2,000 candidates: optimal in 11 s instead of no root bound
    after 60 s).
    """
    hp = import_highspy()
    h = new_highs()
    n, nr = len(lp.cost), len(lp.row_lower)
    A = sp.csc_array((lp.vals, (lp.rows, lp.cols)), shape=(nr, n))
    A.sum_duplicates()
    A.sort_indices()
    st = h.passModel(n, nr, int(A.nnz), 1, -1 if lp.maximize else 1, float(lp.offset),
                     np.ascontiguousarray(lp.cost, dtype=np.float64), np.ascontiguousarray(lp.lower, dtype=np.float64),
                     np.ascontiguousarray(lp.upper, dtype=np.float64),
                     np.ascontiguousarray(lp.row_lower, dtype=np.float64),
                     np.ascontiguousarray(lp.row_upper, dtype=np.float64),
                     np.ascontiguousarray(A.indptr[:-1], dtype=np.int32), np.ascontiguousarray(A.indices, dtype=np.int32),
                     np.ascontiguousarray(A.data, dtype=np.float64), np.ascontiguousarray(lp.integer, dtype=np.int32))
    if st == hp.HighsStatus.kError:
        msg = "HiGHS rejected the model (status 'kError'); fix: check the inputs for non-finite costs or weights"
        raise InfeasibleModelError(msg)
    h.setOptionValue("time_limit", time_limit_s)
    h.setOptionValue("mip_rel_gap", mip_gap)
    if ipm:
        h.setOptionValue("mip_lp_solver", "ipm")
        h.setOptionValue("solver", "ipm")
        h.setOptionValue("run_crossover", "off")
    return h


def _run(h: Any, *, what: str, time_limit_s: float, is_mip: bool, start: np.ndarray | None = None) -> _Solution:
    """Run HiGHS and check its status: optimal, time limit with an incumbent, or raise."""
    hp = import_highspy()
    if start is not None:
        idx = np.arange(len(start), dtype=np.int32)
        h.setSolution(len(start), idx, np.ascontiguousarray(start, dtype=np.float64))
    t0 = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - t0
    ms = h.getModelStatus()
    name = h.modelStatusToString(ms)
    info = h.getInfo()
    has_solution = info.primal_solution_status == hp.SolutionStatus.kSolutionStatusFeasible
    MS = hp.HighsModelStatus
    if ms == MS.kOptimal:
        status: Literal["optimal", "time_limit"] = "optimal"
    elif ms in (MS.kTimeLimit, MS.kIterationLimit, MS.kSolutionLimit, MS.kInterrupt) and has_solution:
        status = "time_limit"
    elif ms == MS.kTimeLimit:
        msg = (f"{what}: HiGHS reached the time limit of {time_limit_s:g} s before finding any feasible solution; "
               "fix: raise time_limit_s or use greedy_mclp")
        raise InfeasibleModelError(msg)
    elif ms in (MS.kInfeasible, MS.kUnboundedOrInfeasible):
        msg = f"{what}: HiGHS found the model infeasible (status '{name}'); fix: check n_sites, targets and capacities"
        raise _Infeasible(msg)
    else:
        msg = f"{what}: HiGHS stopped with status '{name}' and no usable solution; fix: check the inputs or report a bug"
        raise InfeasibleModelError(msg)
    x = np.asarray(h.getSolution().col_value, dtype=float)
    obj = float(info.objective_function_value)
    if is_mip:
        bound = float(info.mip_dual_bound)
        gap = float(info.mip_gap)
        if not math.isfinite(gap):
            gap = 0.0 if status == "optimal" else math.inf
    else:
        bound, gap = obj, 0.0 if status == "optimal" else math.inf
    logger.info("%s: HiGHS %s in %.3f s, objective %.6g, gap %.2g", what, name, seconds, obj, gap)
    return _Solution(status=status, x=x, objective=obj, bound=bound, gap=max(gap, 0.0), solve_s=seconds)


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


def _mclp_lp(cov: _Coverage, n_sites: int, *, relax: bool = False) -> _Lp:
    """Reduced MCLP: columns x (candidates) then y (groups); rows y_g - sum x <= 0, then sum x = p."""
    G, nc = cov.A.shape
    Ac = cov.A_csr.tocoo()
    rows = np.concatenate([Ac.row, np.arange(G), np.full(nc, G)])
    cols = np.concatenate([Ac.col, nc + np.arange(G), np.arange(nc)])
    vals = np.concatenate([-np.ones(Ac.nnz), np.ones(G), np.ones(nc)])
    integer = np.zeros(nc + G, dtype=bool)
    integer[:nc] = not relax
    return _Lp(cost=np.concatenate([np.zeros(nc), cov.W]), lower=np.zeros(nc + G), upper=np.ones(nc + G),
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


# --------------------------------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------------------------------


class _SitingModel:
    """Shared state of the siting models; build them with ``from_cost_matrix`` or ``from_travel_times``."""

    _name = "model"

    def __init__(self, inst: _Instance, *, build_s: float) -> None:
        self._inst = inst
        self._build_s = build_s

    @property
    def cell_ids(self) -> pd.Index:
        """Cell ids, in model order."""
        return self._inst.cell_ids

    @property
    def site_ids(self) -> pd.Index:
        """Candidate and existing site ids, in model order."""
        return self._inst.site_ids

    @property
    def candidates(self) -> pd.Index:
        """Candidate site ids (existing sites excluded)."""
        return self._inst.site_ids[~self._inst.existing]

    @property
    def existing(self) -> pd.Index:
        """Existing site ids, kept open."""
        return self._inst.site_ids[self._inst.existing]

    @property
    def n_pairs(self) -> int:
        """Number of cell-site pairs in the model (within the threshold)."""
        return len(self._inst.cell)

    @property
    def total_population(self) -> float:
        """Population of all cells in persons."""
        return self._inst.total

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(cells={self._inst.n_cells}, candidates={len(self.candidates)}, "
                f"existing={len(self.existing)}, pairs={self.n_pairs}, threshold={self._inst.radius_label!r})")


class MCLP(_SitingModel):
    """Maximal covering location problem: the most people within the threshold of ``n_sites`` new sites.

    Build with :meth:`from_cost_matrix` or :meth:`from_travel_times`, then call :meth:`solve`.
    """

    _name = "MCLP"

    def __init__(self, inst: _Instance, *, n_sites: int, build_s: float) -> None:
        super().__init__(inst, build_s=build_s)
        self.n_sites = _check_n_sites(n_sites, inst)

    @classmethod
    def from_cost_matrix(
        cls,
        cost_matrix: Any,
        weights: Any,
        *,
        service_radius: float,
        n_sites: int,
        existing: Any = None,
        cell_ids: Any = None,
        site_ids: Any = None,
    ) -> MCLP:
        """Build an MCLP from a cells × sites cost matrix.

        Parameters
        ----------
        cost_matrix
            Costs (e.g. travel times in seconds), one row per cell and one
            column per site (candidates and existing); NaN or inf where no
            route exists. A scipy sparse matrix is read as its stored entries
            (explicit zeros are pairs; duplicates keep the smallest cost).
        weights
            Population of each cell in persons (≥ 0). A Series also supplies
            the cell ids.
        service_radius
            Service threshold in cost-matrix units; a pair with cost ≤ it
            covers the cell.
        n_sites
            Number of new sites to open (existing ones not counted).
        existing
            Ids of existing sites (columns) kept open; they are not
            candidates.
        cell_ids, site_ids
            Ids of the rows and columns (default 0..n-1, or the weights'
            index for cells).

        Returns
        -------
        model
            The model, ready to :meth:`solve`.

        Raises
        ------
        InvalidValueError
            For negative or missing populations, negative costs, unknown
            existing ids, no candidates, or ``n_sites`` above the candidate
            count.
        """
        t0 = time.perf_counter()
        inst = _build_instance(cost_matrix, weights, service_radius=service_radius, radius_required=True,
                               existing=existing, cell_ids=cell_ids, site_ids=site_ids)
        return cls(inst, n_sites=n_sites, build_s=time.perf_counter() - t0)

    @classmethod
    def from_travel_times(
        cls,
        od: pd.DataFrame,
        demand: pd.Series | pd.DataFrame,
        candidates: Any,
        *,
        max_minutes: float,
        n_sites: int,
        existing: Any = None,
    ) -> MCLP:
        """Build an MCLP from a long-form OD table.

        Parameters
        ----------
        od
            ``origin_id`` (cell), ``destination_id`` (site), ``travel_time_s``
            as from :func:`planner.travel_time.od_travel_times`, to candidate
            and existing sites. Pairs slower than `max_minutes` are dropped.
        demand
            Cells with a ``population`` column (persons), or a Series of
            persons, indexed by cell id. Cells without pairs still count in
            the total population.
        candidates
            Candidate site ids, or a (Geo)DataFrame / GeoSeries indexed by
            them.
        max_minutes
            Service threshold in minutes, e.g. 15.
        n_sites
            Number of new sites to open.
        existing
            Existing site ids (or a frame indexed by them) kept open.

        Returns
        -------
        model
            The model, ready to :meth:`solve`.

        Examples
        --------
        >>> import pandas as pd
        >>> od = pd.DataFrame({"origin_id": [0, 0, 1, 2], "destination_id": ["A", "B", "B", "B"],
        ...                    "travel_time_s": [300.0, 1200.0, 600.0, 840.0]})
        >>> m = MCLP.from_travel_times(od, pd.Series([10.0, 20.0, 30.0]), ["A", "B"], max_minutes=15, n_sites=1)
        >>> m.solve().sites
        ('B',)
        """
        t0 = time.perf_counter()
        minutes = _check_minutes_value(max_minutes, required=True)
        mat, pop, sids = _matrix_from_od(od, demand, candidates, existing, max_minutes=minutes)
        inst = _build_instance(mat, pop, service_radius=float(minutes) * 60.0, radius_required=True,  # type: ignore[arg-type]
                               existing=existing, cell_ids=None, site_ids=sids, radius_label=f"{minutes:g} min")
        return cls(inst, n_sites=n_sites, build_s=time.perf_counter() - t0)

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
        tl, gap = _check_solve_args(time_limit_s, mip_gap)
        t0 = time.perf_counter()
        inst = self._inst
        cov = _coverage(inst)
        picks, _, greedy_bound = _greedy(cov, k=self.n_sites)
        h = _highs(_mclp_lp(cov, self.n_sites), time_limit_s=tl, mip_gap=gap, ipm=True)
        build_s = self._build_s + time.perf_counter() - t0
        sol = _run(h, what="MCLP", time_limit_s=tl, is_mip=True, start=_mclp_start(cov, picks))
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
        return _replace(res, objective=obj, objective_bound=bound, mip_gap=_rel_gap(obj, bound))


def _replace(res: SitingResult, **changes: Any) -> SitingResult:
    return replace(res, **changes)


def _rel_gap(objective: float, bound: float) -> float:
    """|bound - objective| / |objective|, HiGHS' definition of the relative MIP gap."""
    diff = abs(bound - objective)
    if diff <= 1e-9 * max(1.0, abs(objective)):
        return 0.0
    return diff / abs(objective) if objective else math.inf


class LSCP(_SitingModel):
    """Location set covering: the fewest new sites covering ``target_pct`` of the population.

    Build with :meth:`from_cost_matrix` or :meth:`from_travel_times`, then call :meth:`solve`.
    """

    _name = "LSCP"

    def __init__(self, inst: _Instance, *, target_pct: float | None, build_s: float) -> None:
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

    @classmethod
    def from_cost_matrix(
        cls,
        cost_matrix: Any,
        weights: Any,
        *,
        service_radius: float,
        target_pct: float | None = None,
        existing: Any = None,
        cell_ids: Any = None,
        site_ids: Any = None,
    ) -> LSCP:
        """Build an LSCP from a cells × sites cost matrix.

        Parameters
        ----------
        cost_matrix, weights, service_radius, existing, cell_ids, site_ids
            As for :meth:`MCLP.from_cost_matrix`.
        target_pct
            Share of the total population (%, 0-100) to cover, counting cells
            covered by existing sites; None covers every coverable cell.

        Returns
        -------
        model
            The model, ready to :meth:`solve`.

        Raises
        ------
        InvalidValueError
            For bad inputs or a target outside 0-100.
        InfeasibleModelError
            If the target exceeds the coverable share; the message gives the
            largest achievable target.
        """
        t0 = time.perf_counter()
        inst = _build_instance(cost_matrix, weights, service_radius=service_radius, radius_required=True,
                               existing=existing, cell_ids=cell_ids, site_ids=site_ids)
        return cls(inst, target_pct=target_pct, build_s=time.perf_counter() - t0)

    @classmethod
    def from_travel_times(
        cls,
        od: pd.DataFrame,
        demand: pd.Series | pd.DataFrame,
        candidates: Any,
        *,
        max_minutes: float,
        target_pct: float | None = None,
        existing: Any = None,
    ) -> LSCP:
        """Build an LSCP from a long-form OD table.

        Parameters
        ----------
        od, demand, candidates, max_minutes, existing
            As for :meth:`MCLP.from_travel_times`.
        target_pct
            Share of the total population (%, 0-100) to cover; None covers
            every coverable cell.

        Returns
        -------
        model
            The model, ready to :meth:`solve`.
        """
        t0 = time.perf_counter()
        minutes = _check_minutes_value(max_minutes, required=True)
        mat, pop, sids = _matrix_from_od(od, demand, candidates, existing, max_minutes=minutes)
        inst = _build_instance(mat, pop, service_radius=float(minutes) * 60.0, radius_required=True,  # type: ignore[arg-type]
                               existing=existing, cell_ids=None, site_ids=sids, radius_label=f"{minutes:g} min")
        return cls(inst, target_pct=target_pct, build_s=time.perf_counter() - t0)

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
        tl, gap = _check_solve_args(time_limit_s, mip_gap)
        t0 = time.perf_counter()
        inst = self._inst
        cov = _coverage(inst)
        G, nc = cov.A.shape
        Ac = cov.A_csr.tocoo()
        if self.target_pct is None:
            picks, _, _ = _greedy(cov, need=float(cov.W.sum()))
            lp = _Lp(cost=np.ones(nc), lower=np.zeros(nc), upper=np.ones(nc), integer=np.ones(nc, dtype=bool),
                     rows=Ac.row, cols=Ac.col, vals=np.ones(Ac.nnz), row_lower=np.ones(G),
                     row_upper=np.full(G, np.inf), maximize=False)
            start = np.zeros(nc)
            start[picks] = 1.0
        else:
            need = self.target_pct / 100.0 * inst.total - cov.before
            picks, _, _ = _greedy(cov, need=need)
            rows = np.concatenate([Ac.row, np.arange(G), np.full(G, G)])
            cols = np.concatenate([Ac.col, nc + np.arange(G), nc + np.arange(G)])
            vals = np.concatenate([-np.ones(Ac.nnz), np.ones(G), cov.W])
            lp = _Lp(cost=np.concatenate([np.ones(nc), np.zeros(G)]), lower=np.zeros(nc + G), upper=np.ones(nc + G),
                     integer=np.concatenate([np.ones(nc, dtype=bool), np.zeros(G, dtype=bool)]),
                     rows=rows, cols=cols, vals=vals, row_lower=np.concatenate([np.full(G, -np.inf), [need]]),
                     row_upper=np.concatenate([np.zeros(G), [np.inf]]), maximize=False)
            start = _mclp_start(cov, picks)
        h = _highs(lp, time_limit_s=tl, mip_gap=gap)
        build_s = self._build_s + time.perf_counter() - t0
        sol = _run(h, what="LSCP", time_limit_s=tl, is_mip=True, start=start)
        x = np.flatnonzero(sol.x[:nc] > 0.5)
        count = len(x)
        lower = min(max(0.0, float(math.ceil(sol.bound - 1e-6))) if math.isfinite(sol.bound) else 0.0, count)
        status, solve_s = sol.status, sol.solve_s
        if self.target_pct is not None and 0 < count < nc:
            # second stage: the most coverage with that many sites (an MCLP started from the first-stage solution)
            t1 = time.perf_counter()
            h2 = _highs(_mclp_lp(cov, count), time_limit_s=tl, mip_gap=gap, ipm=True)
            build_s += time.perf_counter() - t1
            sol2 = _run(h2, what="LSCP (coverage among the fewest sites)", time_limit_s=tl, is_mip=True,
                        start=_mclp_start(cov, x))
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
        return _replace(res, objective=float(count), objective_bound=lower, mip_gap=_rel_gap(float(count), lower),
                        n_sites_requested=None)


class PMedian(_SitingModel):
    """p-median: minimise population-weighted travel cost with ``n_sites`` new sites plus the existing ones.

    Build with :meth:`from_cost_matrix` or :meth:`from_travel_times`, then call :meth:`solve`.
    """

    _name = "PMedian"

    def __init__(self, inst: _Instance, *, n_sites: int, build_s: float) -> None:
        super().__init__(inst, build_s=build_s)
        self.n_sites = _check_n_sites(n_sites, inst)

    @classmethod
    def from_cost_matrix(
        cls,
        cost_matrix: Any,
        weights: Any,
        *,
        n_sites: int,
        service_radius: float | None = None,
        existing: Any = None,
        cell_ids: Any = None,
        site_ids: Any = None,
    ) -> PMedian:
        """Build a p-median model from a cells × sites cost matrix.

        Parameters
        ----------
        cost_matrix, weights, existing, cell_ids, site_ids
            As for :meth:`MCLP.from_cost_matrix`.
        n_sites
            Number of new sites to open.
        service_radius
            Optional cap in cost-matrix units: pairs above it are dropped, so
            every cell must be served within it (or is excluded if it has no
            pair at all). None keeps every finite pair.

        Returns
        -------
        model
            The model, ready to :meth:`solve`.
        """
        t0 = time.perf_counter()
        inst = _build_instance(cost_matrix, weights, service_radius=service_radius, radius_required=False,
                               existing=existing, cell_ids=cell_ids, site_ids=site_ids)
        return cls(inst, n_sites=n_sites, build_s=time.perf_counter() - t0)

    @classmethod
    def from_travel_times(
        cls,
        od: pd.DataFrame,
        demand: pd.Series | pd.DataFrame,
        candidates: Any,
        *,
        n_sites: int,
        max_minutes: float | None = None,
        existing: Any = None,
    ) -> PMedian:
        """Build a p-median model from a long-form OD table.

        Parameters
        ----------
        od, demand, candidates, existing
            As for :meth:`MCLP.from_travel_times`.
        n_sites
            Number of new sites to open.
        max_minutes
            Optional cap in minutes on the OD pairs used (None: all pairs in
            `od`, which may already be capped).

        Returns
        -------
        model
            The model; its objective is in person-seconds.
        """
        t0 = time.perf_counter()
        minutes = _check_minutes_value(max_minutes, required=False)
        mat, pop, sids = _matrix_from_od(od, demand, candidates, existing, max_minutes=minutes)
        inst = _build_instance(mat, pop, service_radius=None if minutes is None else minutes * 60.0,
                               radius_required=False, existing=existing, cell_ids=None, site_ids=sids,
                               radius_label=None if minutes is None else f"{minutes:g} min")
        return cls(inst, n_sites=n_sites, build_s=time.perf_counter() - t0)

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
        tl, gap = _check_solve_args(time_limit_s, mip_gap)
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
        lp = _Lp(cost=np.concatenate([np.zeros(nc), w[pc] * pd_, w[cells[fb_cells]] * best_ex[cells[fb_cells]]]),
                 lower=np.zeros(n), upper=np.ones(n), integer=np.arange(n) < nc, rows=rows, cols=cols, vals=vals,
                 row_lower=np.concatenate([np.ones(ncell), np.full(nz, -np.inf), [self.n_sites]]),
                 row_upper=np.concatenate([np.ones(ncell), np.zeros(nz), [self.n_sites]]), maximize=False,
                 offset=offset)
        h = _highs(lp, time_limit_s=tl, mip_gap=gap)
        build_s = self._build_s + time.perf_counter() - t0
        try:
            sol = _run(h, what="PMedian", time_limit_s=tl, is_mip=True)
        except _Infeasible:
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
        lp = _Lp(cost=np.ones(nc), lower=np.zeros(nc), upper=np.ones(nc), integer=np.ones(nc, dtype=bool), rows=row,
                 cols=col, vals=np.ones(len(row)), row_lower=np.ones(len(cells)), row_upper=np.full(len(cells), np.inf),
                 maximize=False)
        sol = _run(_highs(lp, time_limit_s=time_limit_s, mip_gap=0.0), what="PMedian minimum sites",
                   time_limit_s=time_limit_s, is_mip=True)
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
    :meth:`from_travel_times`, then call :meth:`solve`.
    """

    _name = "CapacitatedMCLP"

    def __init__(self, inst: _Instance, *, n_sites: int, capacity: Any, binary_assignment: bool,
                 build_s: float) -> None:
        super().__init__(inst, build_s=build_s)
        self.n_sites = _check_n_sites(n_sites, inst)
        self.capacity = pd.Series(_check_capacity(capacity, inst), index=inst.site_ids, name="capacity")
        self.binary_assignment = bool(binary_assignment)

    @classmethod
    def from_cost_matrix(
        cls,
        cost_matrix: Any,
        weights: Any,
        *,
        service_radius: float,
        n_sites: int,
        capacity: Any,
        existing: Any = None,
        binary_assignment: bool = False,
        cell_ids: Any = None,
        site_ids: Any = None,
    ) -> CapacitatedMCLP:
        """Build a capacitated MCLP from a cells × sites cost matrix.

        Parameters
        ----------
        cost_matrix, weights, service_radius, n_sites, existing, cell_ids, site_ids
            As for :meth:`MCLP.from_cost_matrix`.
        capacity
            Persons each site can serve: a Series or mapping by site id, an
            array aligned with the columns, or one number for all sites.
            ``np.inf`` means unlimited.
        binary_assignment
            Serve each cell whole from one site (binary :math:`z_{ij}`)
            instead of allowing split cells (continuous, the default).

        Returns
        -------
        model
            The model, ready to :meth:`solve`.

        Raises
        ------
        InvalidValueError
            For missing or negative capacities and the inputs checked by
            :meth:`MCLP.from_cost_matrix`.
        """
        t0 = time.perf_counter()
        inst = _build_instance(cost_matrix, weights, service_radius=service_radius, radius_required=True,
                               existing=existing, cell_ids=cell_ids, site_ids=site_ids)
        return cls(inst, n_sites=n_sites, capacity=capacity, binary_assignment=binary_assignment,
                   build_s=time.perf_counter() - t0)

    @classmethod
    def from_travel_times(
        cls,
        od: pd.DataFrame,
        demand: pd.Series | pd.DataFrame,
        candidates: Any,
        *,
        max_minutes: float,
        n_sites: int,
        capacity: Any,
        existing: Any = None,
        binary_assignment: bool = False,
    ) -> CapacitatedMCLP:
        """Build a capacitated MCLP from a long-form OD table.

        Parameters
        ----------
        od, demand, candidates, max_minutes, n_sites, existing
            As for :meth:`MCLP.from_travel_times`.
        capacity
            Persons each site can serve, as a Series or mapping by site id
            (or one number for all sites); ``np.inf`` means unlimited.
        binary_assignment
            Serve each cell whole from one site.

        Returns
        -------
        model
            The model, ready to :meth:`solve`.
        """
        t0 = time.perf_counter()
        minutes = _check_minutes_value(max_minutes, required=True)
        mat, pop, sids = _matrix_from_od(od, demand, candidates, existing, max_minutes=minutes)
        if not isinstance(capacity, (pd.Series, Mapping)) and np.ndim(capacity) != 0:
            msg = "capacity must be a Series or mapping by site id (or one number); fix: index capacities by site id"
            raise InvalidValueError(msg)
        inst = _build_instance(mat, pop, service_radius=float(minutes) * 60.0, radius_required=True,  # type: ignore[arg-type]
                               existing=existing, cell_ids=None, site_ids=sids, radius_label=f"{minutes:g} min")
        return cls(inst, n_sites=n_sites, capacity=capacity, binary_assignment=binary_assignment,
                   build_s=time.perf_counter() - t0)

    def _lp(self) -> tuple[_Lp, np.ndarray, np.ndarray]:
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
        lp = _Lp(cost=np.concatenate([np.zeros(nc), w[pc]]), lower=np.zeros(n), upper=np.ones(n), integer=integer,
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
        tl, gap = _check_solve_args(time_limit_s, mip_gap)
        t0 = time.perf_counter()
        inst = self._inst
        w = inst.weights
        lp, keep, cand = self._lp()
        nc = len(cand)
        h = _highs(lp, time_limit_s=tl, mip_gap=gap)
        build_s = self._build_s + time.perf_counter() - t0
        sol = _run(h, what="CapacitatedMCLP", time_limit_s=tl, is_mip=True)
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
            s = _run(h, what="CapacitatedMCLP (ranking)", time_limit_s=tl, is_mip=True)
            solve_s += s.solve_s
            prefix.append(s.objective)
            prefix_z.append(s.x[nc:])
        best_r = [int(np.argmax(prefix[: r + 1])) for r in range(len(prefix))]  # the allocation behind each prefix
        prefix = list(np.maximum.accumulate(prefix))
        after = max(prefix[-1], sol.objective)
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


# --------------------------------------------------------------------------------------------------------------------
# heuristics and curves
# --------------------------------------------------------------------------------------------------------------------


def greedy_mclp(model: MCLP, *, lp_bound: bool = True, time_limit_s: float | None = DEFAULT_TIME_LIMIT_S,
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
    >>> cost = np.array([[5, 30, 40], [12, 9, 30], [30, 8, 14], [40, 35, 6]])
    >>> m = MCLP.from_cost_matrix(cost, [100, 200, 300, 400], service_radius=15, n_sites=2)
    >>> r = greedy_mclp(m)
    >>> r.status, r.objective, r.mip_gap
    ('heuristic', 1000.0, 0.0)
    """
    tl, _ = _check_solve_args(time_limit_s, 0.0)
    t0 = time.perf_counter()
    inst = model._inst
    cov = _coverage(inst)
    build_s = model._build_s + time.perf_counter() - t0
    t1 = time.perf_counter()
    picks, _, bound = _greedy(cov, k=model.n_sites)
    chosen = cov.cand[picks]
    solve_s = time.perf_counter() - t1
    bound = min(bound + cov.before, cov.before + float(cov.W.sum()))  # never above all coverable people
    if lp_bound:
        sol = _run(_highs(_mclp_lp(cov, model.n_sites, relax=True), time_limit_s=tl, mip_gap=0.0, ipm=True),
                   what="MCLP LP relaxation", time_limit_s=tl, is_mip=False)
        solve_s += sol.solve_s
        if sol.status == "optimal":  # IPM without crossover: widen by its tolerance so the bound stays valid
            bound = min(bound, sol.objective + 1e-7 * max(1.0, abs(sol.objective)))
    res = _coverage_result(inst, model="greedy_mclp", chosen=chosen, status="heuristic", objective=0.0, bound=0.0,
                           gap=0.0, build_s=build_s, solve_s=solve_s, require_k=require_k, n_requested=model.n_sites)
    obj = res.covered_after
    bound = max(bound, obj)
    return _replace(res, objective=obj, objective_bound=bound, mip_gap=_rel_gap(obj, bound))


def marginal_curve(
    model: MCLP,
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
    >>> cost = np.array([[5, 30, 40], [12, 9, 30], [30, 8, 14], [40, 35, 6]])
    >>> m = MCLP.from_cost_matrix(cost, [100, 200, 300, 400], service_radius=15, n_sites=3)
    >>> marginal_curve(m)["added_population"].tolist()
    [700.0, 300.0]
    >>> marginal_curve(m, require_k=True)["adds_population"].tolist()
    [True, True, False]
    """
    tl, gap = _check_solve_args(time_limit_s, mip_gap)
    inst = model._inst
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
        sol = _run(h, what=f"MCLP (k={k})", time_limit_s=tl, is_mip=True, start=_mclp_start(cov, start_picks))
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
