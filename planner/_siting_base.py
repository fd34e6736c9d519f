"""The siting models' shared part: validated instances (cells, sites and the pairs between them) and one constructor path.

:class:`_SitingModel` holds ``from_cost_matrix`` and ``from_travel_times`` once for every model (as
``pysal/spopt:spopt/locate/base.py`` holds the solver glue once); a model only adds its own parameters and
formulation. Public names live in :mod:`planner.siting`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import settings
from ._errors import InvalidValueError, MissingColumnError
from ._validate import check_od

DEFAULT_TIME_LIMIT_S: float = settings.SITING_TIME_LIMIT_S  # seconds per solve
DEFAULT_MIP_GAP: float = 0.0  # relative; 0 asks HiGHS to prove optimality (its absolute gap 1e-6 still applies)


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
    site_weight: np.ndarray | None = None  # suitability weight per site (≥ 0; existing sites 0), None: no weights

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
    site_weight: Any = None,
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
                     radius_label=label, col_ptr=col_ptr, col_cell=r[col_order], col_cost=d[col_order],
                     site_weight=_check_site_weight(site_weight, sids, is_ex))


def _check_site_weight(site_weight: Any, sids: pd.Index, is_ex: np.ndarray) -> np.ndarray | None:
    """Suitability weight per site (existing sites 0), from a Series/mapping by site id or an array by column."""
    if site_weight is None:
        return None
    if isinstance(site_weight, dict):
        site_weight = pd.Series(site_weight, dtype=object)
    if isinstance(site_weight, pd.Series):
        wt = pd.to_numeric(site_weight.reindex(sids), errors="coerce").to_numpy(dtype=float)
    else:
        try:
            wt = np.asarray(site_weight, dtype=float)
        except (TypeError, ValueError):
            wt = np.full(len(sids), math.nan)
        if wt.shape != (len(sids),):
            msg = (f"site_weight has {wt.size} values for {len(sids)} sites; fix: pass a Series indexed by site id "
                   "(weights ≥ 0)")
            raise InvalidValueError(msg)
    wt = np.where(is_ex, 0.0, wt)
    bad = ~(np.isfinite(wt) & (wt >= 0))
    if bad.any():
        msg = (f"site_weight is missing, negative or not a number for {int(bad.sum())} candidate site(s) "
               f"({_first(sids[bad])}); fix: give every candidate a weight ≥ 0 (1 is neutral)")
        raise InvalidValueError(msg)
    return wt


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
    t = check_od(od)
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
    if len(od) and not (r >= 0).any():
        msg = (f"no od origin_id matches a demand cell id (e.g. od has {_first(od['origin_id'].unique())}, demand has "
               f"{_first(cell_ids)}); fix: compute od from the same cells")
        raise InvalidValueError(msg)
    if len(od) and not (c >= 0).any():
        msg = (f"no od destination_id matches a candidate or existing site id (e.g. od has "
               f"{_first(od['destination_id'].unique())}); fix: compute od to the candidate and existing sites")
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
# the one constructor path of every model
# --------------------------------------------------------------------------------------------------------------------

_M = TypeVar("_M", bound="_SitingModel")


class _SitingModel:
    """Shared state and constructors of the siting models.

    A model subclass sets ``_name``, whether it needs a service threshold (``_radius_required``), takes its own
    parameters as keywords in ``__init__`` and adds ``solve``.
    """

    _name = "model"
    _radius_required = True  # False: the threshold only caps the pairs (p-median)

    def __init__(self, inst: _Instance, *, build_s: float) -> None:
        self._inst = inst
        self._build_s = build_s

    @classmethod
    def from_cost_matrix(
        cls: type[_M],
        cost_matrix: Any,
        weights: Any,
        *,
        service_radius: float | None = None,
        existing: Any = None,
        cell_ids: Any = None,
        site_ids: Any = None,
        site_weight: Any = None,
        **params: Any,
    ) -> _M:
        """Build the model from a cells × sites cost matrix.

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
            covers the cell. Required except for :class:`~planner.siting.PMedian`,
            where it is an optional cap: pairs above it are dropped, so every
            cell must be served within it (or is excluded if it has no pair at
            all); None keeps every finite pair.
        existing
            Ids of existing sites (columns) kept open; they are not
            candidates.
        cell_ids, site_ids
            Ids of the rows and columns (default 0..n-1, or the weights'
            index for cells).
        site_weight
            Suitability weight ≥ 0 of each candidate site (a Series or
            mapping by site id, or an array aligned with the columns; None:
            no weights). Weights only break ties: every model first optimises
            its own objective, then, among solutions equal in it, prefers the
            larger sum of the chosen sites' weights (see
            :data:`planner.settings.SUITABILITY_TIE_PERSONS`). A candidate
            of weight 0 is never preferred; drop it to exclude it.
        **params
            The model's own parameters: ``n_sites`` (number of new sites;
            :class:`~planner.siting.MCLP`, :class:`~planner.siting.PMedian`,
            :class:`~planner.siting.CapacitatedMCLP`), ``target_pct``
            (:class:`~planner.siting.LSCP`), ``capacity`` and
            ``binary_assignment`` (:class:`~planner.siting.CapacitatedMCLP`);
            see each class.

        Returns
        -------
        model
            The model, ready to ``solve``.

        Raises
        ------
        InvalidValueError
            For negative or missing populations, negative costs, unknown
            existing ids, no candidates, ``n_sites`` above the candidate
            count, or a bad model parameter (e.g. a target outside 0-100).
        InfeasibleModelError
            For an LSCP target above the coverable share; the message gives
            the largest achievable target.

        Examples
        --------
        >>> import numpy as np
        >>> from planner.siting import MCLP
        >>> cost = np.array([[5, 30, 40], [12, 9, 30], [30, 8, 14], [40, 35, 6]])
        >>> MCLP.from_cost_matrix(cost, [100, 200, 300, 400], service_radius=15, n_sites=2)
        MCLP(cells=4, candidates=3, existing=0, pairs=6, threshold='service radius 15')
        """
        t0 = time.perf_counter()
        inst = _build_instance(cost_matrix, weights, service_radius=service_radius, radius_required=cls._radius_required,
                               existing=existing, cell_ids=cell_ids, site_ids=site_ids, site_weight=site_weight)
        return cls(inst, build_s=time.perf_counter() - t0, **params)

    @classmethod
    def from_travel_times(
        cls: type[_M],
        od: pd.DataFrame,
        demand: pd.Series | pd.DataFrame,
        candidates: Any,
        *,
        max_minutes: float | None = None,
        existing: Any = None,
        site_weight: Any = None,
        **params: Any,
    ) -> _M:
        """Build the model from a long-form OD table.

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
            Service threshold in minutes, e.g. 15. Required except for
            :class:`~planner.siting.PMedian`, where it optionally caps the
            pairs used (None: all pairs in `od`, which may already be capped;
            the objective is in person-seconds).
        existing
            Existing site ids (or a frame indexed by them) kept open.
        site_weight
            Suitability weight ≥ 0 per candidate, a Series or mapping by
            site id; as for :meth:`from_cost_matrix`.
        **params
            The model's own parameters, as for :meth:`from_cost_matrix`. A
            capacity must be a Series or mapping by site id (or one number),
            since the site order is internal.

        Returns
        -------
        model
            The model, ready to ``solve``.

        Examples
        --------
        >>> import pandas as pd
        >>> from planner.siting import MCLP
        >>> od = pd.DataFrame({"origin_id": [0, 0, 1, 2], "destination_id": ["A", "B", "B", "B"],
        ...                    "travel_time_s": [300.0, 1200.0, 600.0, 840.0]})
        >>> m = MCLP.from_travel_times(od, pd.Series([10.0, 20.0, 30.0]), ["A", "B"], max_minutes=15, n_sites=1)
        >>> m.solve().sites
        ('B',)
        """
        t0 = time.perf_counter()
        minutes = _check_minutes_value(max_minutes, required=cls._radius_required)
        mat, pop, sids = _matrix_from_od(od, demand, candidates, existing, max_minutes=minutes)
        cls._check_od_params(params)
        inst = _build_instance(mat, pop, service_radius=None if minutes is None else minutes * 60.0,
                               radius_required=cls._radius_required, existing=existing, cell_ids=None, site_ids=sids,
                               radius_label=None if minutes is None else f"{minutes:g} min",
                               site_weight=None if site_weight is None else pd.Series(site_weight, dtype=object))
        return cls(inst, build_s=time.perf_counter() - t0, **params)

    @classmethod
    def _check_od_params(cls, params: dict[str, Any]) -> None:
        """Check model parameters that must not depend on the internal site order (none by default)."""

    @property
    def instance(self) -> _Instance:
        """The validated cells, sites and pairs: what the heuristics and curves built on a model read."""
        return self._inst

    @property
    def build_s(self) -> float:
        """Seconds spent building the instance."""
        return self._build_s

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
