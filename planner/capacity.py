r"""Capacity-limited coverage: who is served within the threshold when each institution serves at most its capacity.

A 15-minute circle says who *can* reach an institution; with capacities it also says who *is* served. Each
institution :math:`j` serves at most :math:`c_j` persons, each cell :math:`i` holds :math:`d_i` persons, and a
person of cell :math:`i` can be served by :math:`j` only if the trip takes at most :math:`T` (``max_minutes``).
:func:`allocate` splits every cell's population into

* ``served`` - sent to an institution within :math:`T` that has room;
* ``unserved_out_of_reach`` - no institution at all within :math:`T` (the 15-minute circle's gap);
* ``unserved_over_capacity`` - within :math:`T` of some institution, but all of those are full,

and the three add up to the cell's population. Two allocations:

``"optimal"`` (default)
    The most population served, then, among the allocations serving that much, the fewest person-seconds of
    travel. One linear program on the sparse cell → institution pairs within :math:`T` (:math:`P`), solved with
    HiGHS, with the travel-time tie-break as a secondary term that can never cost a served person:

    .. math::

        \min \sum_{(i,j) \in P} \Bigl(\frac{t_{ij}}{T} - M\Bigr) x_{ij} \quad \text{s.t.} \quad
        \sum_{j:(i,j) \in P} x_{ij} \le d_i \;\; \forall i, \qquad
        \sum_{i:(i,j) \in P} x_{ij} \le c_j \;\; \forall j, \qquad x_{ij} \ge 0,

    with :math:`M` = 1 + the number of institutions with pairs. The objective is
    :math:`\sum t_{ij} x_{ij} / T - M \sum x_{ij}`, and this weight makes it lexicographic: serving :math:`\delta`
    more persons means pushing :math:`\delta` along an augmenting path cell → institution ← cell → … → institution
    that visits each institution at most once, so it adds at most (number of institutions) :math:`\cdot\,\delta`
    of :math:`t/T` (each :math:`t_{ij} \le T`) while gaining :math:`M \delta`. An optimum therefore has no augmenting
    path - it serves the maximum (a maximum flow from the cells to the institutions, which the tests check
    against an independent max-flow computation) - and among the maximum allocations it has the least
    person-time (checked against a min-cost max-flow). Ties beyond that are HiGHS' choice (deterministic for a
    given version). When sending every cell to its nearest institution within :math:`T` overfills none, that is
    the optimum (everyone reachable served, each at the least time) and no LP is solved.

``"ordered"``
    The greedy allocation of AccessMod 5's geographic coverage analysis: institutions are processed one after the
    other (by default by capacity, largest first, then by facility id as text; `order` sets another order), and
    each institution's catchment grows by travel time - the cells within :math:`T` in ascending time, ties by the
    cells' order - taking each cell's remaining population until the institution is full (the last cell only in
    part). Population taken is removed before the next institution. AccessMod grows catchments by one-minute
    travel-time bands on a raster; this grows them cell by cell on the road network. The result depends on the
    order and can serve fewer people than the optimum: it is there to compare with AccessMod.

Capacities are persons. :func:`capacity_from_column` turns a column in persons, or in beds or doctors times a
persons-per-unit ratio the user gives, into persons: `planner` ships no national ratio.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from . import _highs, settings
from ._errors import InvalidValueError
from ._validate import check_od, find_column, row_label
from .travel_time import CompiledNetwork, od_travel_times, snap_points

logger = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("optimal", "ordered")


# --------------------------------------------------------------------------------------------------------------------
# capacities in persons
# --------------------------------------------------------------------------------------------------------------------


def capacity_from_column(
    institutions: pd.DataFrame,
    column: str | None,
    *,
    persons_per_unit: float | None = None,
    tier_defaults: Mapping[str, float] | None = None,
    file: object = "institutions",
) -> pd.Series:
    """Return each institution's capacity in persons, from a column and, where it is empty, a per-tier default.

    The column holds persons when `persons_per_unit` is None; otherwise it holds units (beds, doctors) and each is
    worth `persons_per_unit` persons - a ratio the user gives and documents, since `planner` ships none. Rows whose
    column is empty take ``tier_defaults[tier]`` (already in persons); with `column` None every row does.

    Parameters
    ----------
    institutions
        Institutions indexed by ``facility_id``, with ``name`` and, for `tier_defaults`, ``tier``.
    column
        Column holding the capacity (persons, or units with `persons_per_unit`), or None for tier defaults only.
    persons_per_unit
        Persons one unit of `column` serves (e.g. per bed), > 0; None: the column is in persons.
    tier_defaults
        Capacity in persons per tier (``tertiary``, ``secondary``, ``primary``, ``station``) for rows without a
        value, e.g. from a norms file.
    file
        Name of the institutions input, for messages.

    Returns
    -------
    capacity
        Persons (float), indexed like `institutions`, named ``capacity``.

    Raises
    ------
    MissingColumnError
        If `column` is not a column of `institutions`.
    InvalidValueError
        If a value is missing (and its tier has no default), non-numeric, infinite or negative, naming the row
        (position, facility id and name) and the column; or if `persons_per_unit` or `tier_defaults` is unusable.

    Examples
    --------
    >>> import pandas as pd
    >>> inst = pd.DataFrame({"name": ["A", "B", "C"], "tier": ["primary", "tertiary", "primary"],
    ...                      "beds": [40, None, "20"]}, index=pd.Index(["a", "b", "c"], name="facility_id"))
    >>> capacity_from_column(inst, "beds", persons_per_unit=100, tier_defaults={"tertiary": 250_000}).tolist()
    [4000.0, 250000.0, 2000.0]
    >>> capacity_from_column(inst.assign(beds=[40, -1, 20]), "beds", persons_per_unit=100)
    Traceback (most recent call last):
    ...
    planner._errors.InvalidValueError: institutions: row 2 (facility_id 'b', name 'B'), column 'beds' (capacity): \
'-1' is negative (1 such rows in all); fix: give a capacity >= 0 (persons, or units times persons_per_unit)
    """
    if column is None and not tier_defaults:
        msg = f"{file}: no capacity column and no per-tier capacities; fix: give a capacity column or tier defaults"
        raise InvalidValueError(msg)
    ratio = 1.0 if persons_per_unit is None else float(persons_per_unit)
    if not (math.isfinite(ratio) and ratio > 0):
        msg = f"persons_per_unit {persons_per_unit!r} is not a positive number; fix: give the persons one unit serves, > 0"
        raise InvalidValueError(msg)
    defaults = _check_tier_defaults(tier_defaults)
    n = len(institutions)
    if column is not None:
        col = find_column(institutions, (column,), what="capacity", file=file, given=column)
        raw = institutions[col]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan) * ratio
        blank = raw.isna().to_numpy() | raw.astype("object").map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(bool)
    else:
        col, raw = "(none)", pd.Series([None] * n, index=institutions.index)
        values, blank = np.full(n, np.nan), np.ones(n, dtype=bool)
    if defaults and blank.any():
        if "tier" not in institutions:
            msg = f"{file}: per-tier capacities need a 'tier' column; fix: give institutions a tier"
            raise InvalidValueError(msg)
        fill = institutions["tier"].map(defaults).to_numpy(dtype=float, na_value=np.nan)
        values = np.where(blank, fill, values)
    checks = [
        (np.isnan(values) & blank, "is empty and its tier has no default" if defaults else "is empty",
         "give every institution a capacity" + (" or its tier a default" if defaults else "")),
        (np.isnan(values) & ~blank, "is missing or not a number", "give the capacity as a number"),
        (np.isinf(values), "is not finite", "give the capacity as a finite number"),
        (values < 0, "is negative", "give a capacity >= 0 (persons, or units times persons_per_unit)"),
    ]
    for bad, what, fix in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            shown = f"'{' '.join(str(raw.iloc[i]).split())}'"
            msg = (f"{file}: {row_label(institutions, i)}, column '{col}' (capacity): "
                   f"{'the value' if what.startswith('is empty') else shown} {what} ({int(bad.sum())} such rows in all); "
                   f"fix: {fix}")
            raise InvalidValueError(msg)
    return pd.Series(values, index=institutions.index, name="capacity")


def _check_tier_defaults(tier_defaults: Mapping[str, float] | None) -> dict[str, float]:
    """Return the per-tier capacities as floats, checking the tiers and values."""
    out: dict[str, float] = {}
    for tier, value in (tier_defaults or {}).items():
        if tier not in settings.TIERS:
            msg = f"tier_defaults: '{tier}' is not a tier; fix: use {', '.join(settings.TIERS)}"
            raise InvalidValueError(msg)
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if not (math.isfinite(v) and v >= 0):
            msg = f"tier_defaults: '{tier}' = {value!r} is not a number >= 0; fix: give persons per institution of that tier"
            raise InvalidValueError(msg)
        out[tier] = v
    return out


# --------------------------------------------------------------------------------------------------------------------
# the allocation
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Allocation:
    """Who is served by which institution within the threshold, under capacities (result of :func:`allocate`).

    Attributes
    ----------
    method
        ``"optimal"`` or ``"ordered"``.
    max_minutes
        The threshold in minutes.
    flows
        One row per cell → institution pair carrying persons: ``origin_id``, ``destination_id``,
        ``travel_time_s``, ``flow`` (persons).
    cells
        Indexed like the demand: ``population``, ``served``, ``unserved_out_of_reach``,
        ``unserved_over_capacity`` (persons; the three add up to ``population``) and ``reachable`` (some
        institution within the threshold, whatever its capacity).
    facilities
        Indexed like the capacities: ``capacity``, ``demand_within_t`` (population of the cells within the
        threshold of it, counted again for every institution it can reach), ``served`` (persons) and
        ``utilisation_pct`` (NaN where the capacity is 0); for ``"ordered"`` also ``processing_order`` (1 = first).
    status
        ``"optimal"`` (the LP solved to optimality), ``"complete"`` (the ordered allocation ran through
        every institution; it is not an optimum), or ``"time_limit"`` / ``"work_limit"`` when a limit
        stopped an LP (the allocation is feasible but may serve fewer).
    solve_s
        Seconds spent allocating.
    """

    method: str
    max_minutes: float
    flows: pd.DataFrame
    cells: pd.DataFrame
    facilities: pd.DataFrame
    status: str
    solve_s: float

    @property
    def population_served(self) -> float:
        """Persons served within the threshold."""
        return float(self.cells["served"].sum())

    @property
    def person_seconds(self) -> float:
        """Sum of the served persons' travel times in seconds."""
        return float((self.flows["flow"] * self.flows["travel_time_s"]).sum())


def _check_amounts(values: pd.Series, *, what: str, key: str) -> np.ndarray:
    """Return `values` as floats >= 0, naming the first bad entry otherwise."""
    if not values.index.is_unique:
        dup = values.index[values.index.duplicated()][0]
        msg = f"{what} has duplicate {key} '{dup}'; fix: give one value per {key}"
        raise InvalidValueError(msg)
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(v) | (v < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = (f"{what}: {key} '{values.index[i]}' has '{values.iloc[i]}', not a finite number >= 0 "
               f"({int(bad.sum())} such entries in all); fix: give persons >= 0 for every {key}")
        raise InvalidValueError(msg)
    return v


def _pairs(od: pd.DataFrame, demand: pd.Series, capacity: pd.Series, limit_s: float) -> tuple[np.ndarray, ...]:
    """Cell and facility positions and seconds of the pairs within `limit_s` (one per pair: the fastest)."""
    t = check_od(od)
    keep = np.isfinite(t) & (t <= limit_s)
    origins, dests, t = od["origin_id"].to_numpy()[keep], od["destination_id"].to_numpy()[keep], t[keep]
    ci = demand.index.get_indexer(origins)
    fj = capacity.index.get_indexer(dests)
    for pos, ids, what, key in ((ci, origins, "demand", "cell"), (fj, dests, "capacity", "facility")):
        if (pos < 0).any():
            msg = (f"od holds {int((pos < 0).sum())} pairs whose {key} (e.g. '{ids[pos < 0][0]}') is not in the {what} "
                   f"index; fix: give the {what} of every {key} in the od table")
            raise InvalidValueError(msg)
    srt = np.lexsort((t, fj, ci))
    ci, fj, t = ci[srt], fj[srt], t[srt]
    first = np.ones(len(ci), dtype=bool)
    first[1:] = (ci[1:] != ci[:-1]) | (fj[1:] != fj[:-1])
    return ci[first], fj[first], t[first]


def allocate(
    od: pd.DataFrame,
    demand: pd.Series,
    capacity: pd.Series,
    *,
    max_minutes: float,
    method: Literal["optimal", "ordered"] = "optimal",
    order: Sequence[Hashable] | None = None,
    time_limit_s: float | None = None,
) -> Allocation:
    """Allocate the cells' population to the institutions within `max_minutes`, each serving at most its capacity.

    See the module docstring for the two methods.

    Parameters
    ----------
    od
        Long-form travel times ``origin_id`` (cell), ``destination_id`` (institution), ``travel_time_s``, as from
        :func:`planner.travel_time.od_travel_times`; pairs beyond `max_minutes` or without a route are ignored.
    demand
        Persons per cell, indexed by cell id (every ``origin_id`` of `od` must be in it).
    capacity
        Persons per institution, indexed by facility id (every ``destination_id`` of `od` must be in it), e.g.
        from :func:`capacity_from_column`.
    max_minutes
        Service threshold in minutes.
    method
        ``"optimal"`` (the most served, then the least travel) or ``"ordered"`` (AccessMod's greedy order).
    order
        ``"ordered"`` only: facility ids in processing order, each of `capacity` once; by default by capacity
        descending, then by facility id as text.
    time_limit_s
        Wall-time limit of each LP solve in seconds (None: none).

    Returns
    -------
    allocation
        Flows, per-cell split and per-institution use (:class:`Allocation`).

    Raises
    ------
    InvalidValueError
        For negative or missing demand or capacity (naming the cell or facility), od ids not in `demand` or
        `capacity`, an unknown `method`, or an `order` that is not a permutation of the facilities.
    MissingColumnError
        If `od` lacks a column.

    Examples
    --------
    Cell ``b`` is the only one institution ``y`` reaches; the optimum sends ``a`` to ``x`` and most of ``b`` to
    ``y``, while the ordered allocation lets ``x`` fill up with ``b`` first:

    >>> import pandas as pd
    >>> od = pd.DataFrame({"origin_id": ["a", "b", "b"], "destination_id": ["x", "x", "y"],
    ...                    "travel_time_s": [120.0, 60.0, 300.0]})
    >>> demand = pd.Series({"a": 100.0, "b": 100.0, "c": 100.0})
    >>> capacity = pd.Series({"x": 150.0, "y": 100.0})
    >>> best = allocate(od, demand, capacity, max_minutes=15)
    >>> best.cells["served"].tolist(), best.facilities["served"].tolist()
    ([100.0, 100.0, 0.0], [150.0, 50.0])
    >>> greedy = allocate(od, demand, capacity, max_minutes=15, method="ordered")
    >>> greedy.cells["served"].tolist(), greedy.cells["unserved_over_capacity"].tolist()
    ([50.0, 100.0, 0.0], [50.0, 0.0, 0.0])
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        msg = f"method '{method}' is not one of {', '.join(METHODS)}; fix: use 'optimal' or 'ordered'"
        raise InvalidValueError(msg)
    if order is not None and method != "ordered":
        msg = "order is for method='ordered' only; fix: drop order or use method='ordered'"
        raise InvalidValueError(msg)
    d = _check_amounts(demand, what="demand", key="cell")
    c = _check_amounts(capacity, what="capacity", key="facility")
    limit_s = float(max_minutes) * 60.0
    ci, fj, t = _pairs(od, demand, capacity, limit_s)
    status = "optimal"
    rank = None
    if method == "optimal":
        flow, status = _solve_optimal(ci, fj, t, d, c, limit_s=limit_s, time_limit_s=time_limit_s)
    else:
        rank = _processing_order(capacity, c, order)
        flow = _solve_ordered(ci, fj, t, d, c, rank)
        status = "complete"
    flow = _clip_flows(flow, ci, fj, d, c)
    alloc = _result(demand, capacity, ci, fj, t, flow, d, c, rank=rank, method=method, max_minutes=float(max_minutes),
                    status=status, seconds=time.perf_counter() - t0)
    logger.info("capacity allocation (%s, %g min): %s of %s persons served, %s out of reach, %s over capacity (%.2f s)",
                method, max_minutes, f"{alloc.population_served:,.0f}", f"{d.sum():,.0f}",
                f"{alloc.cells['unserved_out_of_reach'].sum():,.0f}",
                f"{alloc.cells['unserved_over_capacity'].sum():,.0f}", alloc.solve_s)
    return alloc


def _solve_optimal(ci: np.ndarray, fj: np.ndarray, t: np.ndarray, d: np.ndarray, c: np.ndarray, *, limit_s: float,
                   time_limit_s: float | None) -> tuple[np.ndarray, str]:
    """Flows of the LP (most served, then least person-time: see the module docstring) on the pairs that can carry persons."""
    flow = np.zeros(len(ci))
    if len(ci):
        # every cell at its nearest institution: if no institution is then over capacity, that is the optimum
        # (all reachable persons served, each at the least time) and no LP is needed
        srt = np.lexsort((fj, t, ci))
        nearest = srt[np.r_[True, ci[srt][1:] != ci[srt][:-1]]]
        if (np.bincount(fj[nearest], weights=d[ci[nearest]], minlength=len(c)) <= c).all():
            flow[nearest] = d[ci[nearest]]
            return flow, "optimal"
    use = np.flatnonzero((d[ci] > 0) & (c[fj] > 0))
    if len(use) == 0:
        return flow, "optimal"
    n = len(use)
    cells, cell_row = np.unique(ci[use], return_inverse=True)
    facs, fac_row = np.unique(fj[use], return_inverse=True)
    weight = len(facs) + 1.0  # M: more than any augmenting path's travel time (in units of T) per person
    lp = _highs.Lp.from_coo(np.concatenate([cell_row, len(cells) + fac_row]), np.tile(np.arange(n), 2), np.ones(2 * n),
                            cost=t[use] / limit_s - weight, lower=np.zeros(n), upper=d[ci[use]],
                            row_lower=np.zeros(len(cells) + len(facs)), row_upper=np.concatenate([d[cells], c[facs]]))
    what = "capacity allocation"
    limit = math.inf if time_limit_s is None else float(time_limit_s)
    sol = _highs.run(_highs.build(lp, what=what, time_limit_s=limit, mip_gap=0.0), what=what, is_mip=False, log=logger,
                     level=logging.DEBUG)
    flow[use] = sol.x
    return flow, sol.status


def _processing_order(capacity: pd.Series, c: np.ndarray, order: Sequence[Hashable] | None) -> np.ndarray:
    """Facility positions in processing order: `order`, or capacity descending then id as text."""
    if order is None:
        keys = pd.DataFrame({"cap": c, "id": capacity.index.astype(str)})
        return keys.sort_values(["cap", "id"], ascending=[False, True], kind="stable").index.to_numpy()
    pos = capacity.index.get_indexer(pd.Index(list(order)))
    unknown = [o for o, p in zip(order, pos, strict=True) if p < 0]
    missing = capacity.index[~np.isin(np.arange(len(capacity)), pos)]
    if unknown or len(pos) != len(set(pos.tolist())) or len(missing):
        what = (f"unknown facility '{unknown[0]}'" if unknown else f"facility '{missing[0]}' missing" if len(missing)
                else "a facility listed twice")
        msg = f"order: {what}; fix: list every facility of capacity exactly once"
        raise InvalidValueError(msg)
    return pos


def _solve_ordered(ci: np.ndarray, fj: np.ndarray, t: np.ndarray, d: np.ndarray, c: np.ndarray,
                   rank: np.ndarray) -> np.ndarray:
    """Flows of the greedy allocation: each facility in turn takes its cells' remaining persons, nearest first."""
    flow = np.zeros(len(ci))
    remaining = d.astype(float).copy()
    srt = np.lexsort((ci, t, fj))  # by facility, then time, then the cell's position in the demand
    starts = np.searchsorted(fj[srt], np.arange(len(c) + 1))
    for j in rank:
        idx = srt[starts[j]:starts[j + 1]]
        if len(idx) == 0 or c[j] <= 0:
            continue
        r = remaining[ci[idx]]
        before = np.cumsum(r) - r  # persons taken by the nearer cells
        take = np.clip(c[j] - before, 0.0, r)
        flow[idx] = take
        remaining[ci[idx]] = r - take  # a cell appears once per facility
    return flow


def _clip_flows(flow: np.ndarray, ci: np.ndarray, fj: np.ndarray, d: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Remove solver round-off: flows >= 0, and no cell or facility over its amount (scaled down where it is)."""
    flow = np.clip(np.nan_to_num(flow), 0.0, d[ci])
    for pos, amount in ((ci, d), (fj, c)):
        total = np.bincount(pos, weights=flow, minlength=len(amount))
        over = total > amount
        if over.any():
            scale = np.ones(len(amount))
            scale[over] = amount[over] / total[over]
            flow = flow * scale[pos]
    return flow


def _result(demand: pd.Series, capacity: pd.Series, ci: np.ndarray, fj: np.ndarray, t: np.ndarray, flow: np.ndarray,
            d: np.ndarray, c: np.ndarray, *, rank: np.ndarray | None, method: str, max_minutes: float, status: str,
            seconds: float) -> Allocation:
    """Assemble the flows, the per-cell split and the per-facility use."""
    served = np.minimum(np.bincount(ci, weights=flow, minlength=len(d)), d)
    reachable = np.bincount(ci, minlength=len(d)) > 0
    cells = pd.DataFrame({
        "population": d, "served": served,
        "unserved_out_of_reach": np.where(reachable, 0.0, d),
        "unserved_over_capacity": np.where(reachable, np.maximum(d - served, 0.0), 0.0),
        "reachable": reachable,
    }, index=demand.index)
    fac_served = np.bincount(fj, weights=flow, minlength=len(c))
    with np.errstate(invalid="ignore", divide="ignore"):
        util = np.where(c > 0, 100.0 * fac_served / c, np.nan)
    facilities = pd.DataFrame({"capacity": c, "demand_within_t": np.bincount(fj, weights=d[ci], minlength=len(c)),
                               "served": fac_served, "utilisation_pct": util}, index=capacity.index)
    if rank is not None:
        processing = np.empty(len(c), dtype=np.int64)
        processing[rank] = np.arange(1, len(c) + 1)
        facilities["processing_order"] = processing
    carry = flow > 0
    flows = pd.DataFrame({"origin_id": demand.index.to_numpy()[ci[carry]],
                          "destination_id": capacity.index.to_numpy()[fj[carry]],
                          "travel_time_s": t[carry], "flow": flow[carry]})
    return Allocation(method=method, max_minutes=max_minutes, flows=flows, cells=cells, facilities=facilities,
                      status=status, solve_s=seconds)


def allocate_cells(
    net: CompiledNetwork,
    cells: pd.DataFrame,
    *,
    institutions: pd.DataFrame,
    capacity: pd.Series,
    max_minutes: float,
    method: Literal["optimal", "ordered"] = "optimal",
    order: Sequence[Hashable] | None = None,
    max_snap_m: float | None = None,
    access_speed_kph: float | None = None,
    cells_snapped: pd.DataFrame | None = None,
    institutions_snapped: pd.DataFrame | None = None,
    time_limit_s: float | None = None,
) -> Allocation:
    """Allocate demand cells to institutions on a network: snap, compute the OD pairs within the threshold, allocate.

    The snapping and access legs are those of coverage (:func:`planner.travel_time.snap_points`,
    :func:`~planner.travel_time.od_travel_times`), so a cell is out of reach here exactly when coverage finds no
    institution within `max_minutes`.

    Parameters
    ----------
    net
        Compiled network.
    cells
        Demand cells with ``population`` (persons) and a geometry.
    institutions
        Institutions indexed by ``facility_id``, with a geometry.
    capacity
        Persons per institution, indexed like `institutions` (see :func:`capacity_from_column`).
    max_minutes, method, order, time_limit_s
        As in :func:`allocate`.
    max_snap_m, access_speed_kph
        As in :func:`~planner.travel_time.snap_points`.
    cells_snapped, institutions_snapped
        Precomputed :func:`~planner.travel_time.snap_points` results (then `max_snap_m` and `access_speed_kph`
        are not used).

    Returns
    -------
    allocation
        See :func:`allocate`.
    """
    snap_c = cells_snapped if cells_snapped is not None else snap_points(
        net, cells, max_snap_m=max_snap_m, access_speed_kph=access_speed_kph)
    snap_f = institutions_snapped if institutions_snapped is not None else snap_points(
        net, institutions, max_snap_m=max_snap_m, access_speed_kph=access_speed_kph)
    od = od_travel_times(net, snap_c, snap_f, max_minutes=max_minutes)
    return allocate(od, cells["population"], capacity, max_minutes=max_minutes, method=method, order=order,
                    time_limit_s=time_limit_s)


# --------------------------------------------------------------------------------------------------------------------
# the figures of a report
# --------------------------------------------------------------------------------------------------------------------


def _pct(x: float, of: float) -> float | None:
    return 100.0 * x / of if of > 0 else None


def _split(cells: pd.DataFrame) -> dict[str, Any]:
    total = float(cells["population"].sum())
    served = float(cells["served"].sum())
    out_of_reach = float(cells["unserved_out_of_reach"].sum())
    over = float(cells["unserved_over_capacity"].sum())
    return {"population_total": total, "population_served": served, "population_unserved": out_of_reach + over,
            "unserved_out_of_reach": out_of_reach, "unserved_over_capacity": over, "served_pct": _pct(served, total)}


def capacity_summary(
    allocation: Allocation,
    *,
    cell_groups: Mapping[str, pd.Series] | None = None,
    facility_groups: Mapping[str, pd.Series] | None = None,
) -> dict[str, Any]:
    """Summarise an allocation: served and unserved persons overall, per group of cells and of institutions.

    Unserved persons live in cells, so the unserved split is given per cell group (e.g. district); a facility
    group (e.g. tier) gets the persons its institutions serve (the flows to them), their capacity and use.
    Figures are not rounded, so they add up: ``population_served + population_unserved == population_total``
    overall and in every cell group, and the cell groups (or facility groups) add up to the overall figures.
    Missing labels form their own group ``"(none)"``.

    Parameters
    ----------
    allocation
        Result of :func:`allocate`.
    cell_groups
        Group name → label of each cell, indexed like ``allocation.cells`` (e.g. ``{"district": cells["district"]}``).
    facility_groups
        Group name → label of each institution, indexed like ``allocation.facilities``
        (e.g. ``{"tier": institutions["tier"]}``).

    Returns
    -------
    summary
        ``method``, ``max_minutes``, ``population_total``, ``population_served``, ``population_unserved``,
        ``unserved_out_of_reach``, ``unserved_over_capacity``, ``served_pct`` (None when there is no population),
        ``capacity_total``; and per group ``by_<name>``: a list of rows ``{<name>: label, ...}`` with the same
        population keys for cell groups, and ``institutions``, ``capacity``, ``demand_within_t``,
        ``population_served``, ``utilisation_pct`` for facility groups.
    """
    fac = allocation.facilities
    out: dict[str, Any] = {"method": allocation.method, "max_minutes": allocation.max_minutes,
                           **_split(allocation.cells), "capacity_total": float(fac["capacity"].sum())}
    for name, labels in (cell_groups or {}).items():
        lab = _labels(labels, allocation.cells.index, what=f"cell_groups['{name}']")
        out[f"by_{name}"] = [{name: key, **_split(grp)} for key, grp in allocation.cells.groupby(lab, sort=True)]
    for name, labels in (facility_groups or {}).items():
        lab = _labels(labels, fac.index, what=f"facility_groups['{name}']")
        rows = []
        for key, grp in fac.groupby(lab, sort=True):
            cap, served = float(grp["capacity"].sum()), float(grp["served"].sum())
            rows.append({name: key, "institutions": len(grp), "capacity": cap,
                         "demand_within_t": float(grp["demand_within_t"].sum()), "population_served": served,
                         "utilisation_pct": _pct(served, cap)})
        out[f"by_{name}"] = rows
    return out


def _labels(labels: pd.Series, index: pd.Index, *, what: str) -> np.ndarray:
    """Group labels aligned on `index`, as text, with ``"(none)"`` where missing."""
    aligned = labels.reindex(index)
    if aligned.isna().all() and len(index) and not labels.index.isin(index).any():
        msg = f"{what} shares no index value with the allocation; fix: index the labels like the cells or institutions"
        raise InvalidValueError(msg)
    return aligned.astype("object").where(aligned.notna(), "(none)").astype(str).to_numpy()
