r"""Spatial accessibility of capacity: the enhanced two-step floating catchment area (E2SFCA).

:func:`e2sfca` measures, for every cell, how much capacity (beds, doctors)
its residents can reach, net of the other residents competing for it
(Luo & Wang, 2003; Luo & Qi, 2009). With travel times :math:`t_{ij}` in
minutes from cell :math:`i` (population :math:`P_i`) to institution
:math:`j` (capacity :math:`S_j`), threshold :math:`d_0` (``max_minutes``)
and distance-decay weight :math:`w(t)`:

.. math::

    R_j = \frac{S_j}{\sum_{i : t_{ij} \le d_0} P_i \, w(t_{ij})},
    \qquad
    A_i = 1000 \sum_{j : t_{ij} \le d_0} R_j \, w(t_{ij}),

i.e. :math:`A_i` is capacity per 1,000 residents. It equals PySAL
``access``' ``Access.two_stage_fca`` / ``enhanced_two_stage_fca`` (times
1,000) on the same inputs and weight function; the test suite checks this.

Decay weights (``decay``), all with :math:`w(t) = 0` beyond :math:`d_0`:

* ``"gaussian"`` (default): :math:`w(t) = e^{-t^2 / (2\sigma^2)}` with
  :math:`\sigma` = ``sigma_minutes`` (default :math:`d_0 / 2`, so the weight
  at the threshold is :math:`e^{-2} \approx 0.14`); PySAL's
  ``weights.gaussian(sigma)``;
* ``"step"``: Luo & Qi's three zones, weights 1, 0.68 and 0.22 up to
  :math:`d_0/3`, :math:`2 d_0/3` and :math:`d_0` (PySAL's default
  ``step_fn({10: 1, 20: 0.68, 30: 0.22})`` for :math:`d_0` = 30 min);
* ``"none"``: :math:`w = 1`, the original 2SFCA;
* a mapping ``{minutes: weight}`` for other step functions, or any
  vectorised callable of minutes.

Examples
--------
Two cells and two clinics, 10 beds each, times in seconds:

>>> import pandas as pd
>>> od = pd.DataFrame({"origin_id": [0, 0, 1], "destination_id": ["a", "b", "b"],
...                    "travel_time_s": [300.0, 600.0, 300.0]})
>>> demand = pd.DataFrame({"population": [1000.0, 4000.0]})
>>> supply = pd.DataFrame({"capacity": [10.0, 10.0]}, index=["a", "b"])
>>> e2sfca(od, demand, supply, max_minutes=15, decay="none").round(3).tolist()
[12.0, 2.0]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._errors import InvalidValueError, MissingColumnError
from ._validate import check_od

logger = logging.getLogger(__name__)

DEFAULT_MAX_MINUTES: float = 30.0  # minutes; catchment of the E2SFCA
PER_RESIDENTS: float = 1000.0  # accessibility is capacity per this many residents
STEP_WEIGHTS: tuple[tuple[float, float], ...] = ((1 / 3, 1.0), (2 / 3, 0.68), (1.0, 0.22))  # (share of max_minutes, weight)

Decay = str | Mapping[float, float] | Callable[[np.ndarray], Any]


def decay_weights(
    minutes: np.ndarray,
    *,
    max_minutes: float = DEFAULT_MAX_MINUTES,
    decay: Decay = "gaussian",
    sigma_minutes: float | None = None,
) -> np.ndarray:
    """Distance-decay weights of travel times (0 beyond `max_minutes`).

    Parameters
    ----------
    minutes
        Travel times in minutes.
    max_minutes
        Catchment threshold in minutes (inclusive).
    decay
        ``"gaussian"``, ``"step"``, ``"none"``, a ``{minutes: weight}``
        step mapping, or a vectorised callable of minutes.
    sigma_minutes
        Width of the Gaussian in minutes; ``max_minutes / 2`` by default.

    Returns
    -------
    weights
        One weight per time.

    Examples
    --------
    >>> decay_weights(np.array([0.0, 15.0, 30.0, 31.0]), max_minutes=30).round(4).tolist()
    [1.0, 0.6065, 0.1353, 0.0]
    >>> decay_weights(np.array([5.0, 15.0, 25.0]), max_minutes=30, decay="step").tolist()
    [1.0, 0.68, 0.22]
    """
    t = np.asarray(minutes, dtype=float)
    d0 = float(max_minutes)
    if isinstance(decay, str):
        if decay == "gaussian":
            sigma = d0 / 2 if sigma_minutes is None else float(sigma_minutes)
            if not sigma > 0:
                msg = f"sigma_minutes={sigma_minutes!r} must be > 0 minutes; fix: e.g. sigma_minutes={d0 / 2:g}"
                raise InvalidValueError(msg)
            w = np.exp(-t * t / (2 * sigma**2))
        elif decay == "step":
            w = _step(t, {share * d0: weight for share, weight in STEP_WEIGHTS})
        elif decay == "none":
            w = np.ones_like(t)
        else:
            msg = f"decay={decay!r} is not known; fix: use 'gaussian', 'step', 'none', a {{minutes: weight}} dict or a function"
            raise InvalidValueError(msg)
    elif isinstance(decay, Mapping):
        w = _step(t, {float(k): float(v) for k, v in decay.items()})
    elif callable(decay):
        w = np.asarray(decay(t), dtype=float)
    else:
        msg = f"decay of type {type(decay).__name__} is not usable; fix: use 'gaussian', 'step', 'none', a mapping or a function"
        raise InvalidValueError(msg)
    return np.where(t <= d0, w, 0.0)


def _step(t: np.ndarray, steps: Mapping[float, float]) -> np.ndarray:
    """Weight of the first step whose upper bound (inclusive) is at least t; 0 beyond the last (as PySAL's step_fn)."""
    if any(v < 0 for v in steps.values()):
        msg = "step weights must be >= 0; fix: e.g. decay={10: 1, 20: 0.68, 30: 0.22}"
        raise InvalidValueError(msg)
    bounds = np.array(sorted(steps), dtype=float)
    weights = np.array([steps[b] for b in sorted(steps)], dtype=float)
    k = np.searchsorted(bounds, t, side="left")
    return np.where(k < len(bounds), weights[np.minimum(k, len(bounds) - 1)], 0.0)


def e2sfca(
    od: pd.DataFrame,
    demand: pd.DataFrame,
    supply: pd.DataFrame,
    *,
    max_minutes: float = DEFAULT_MAX_MINUTES,
    decay: Decay = "gaussian",
    sigma_minutes: float | None = None,
    capacity_column: str = "capacity",
    population_column: str = "population",
) -> pd.Series:
    """Capacity per 1,000 residents reachable from each cell (E2SFCA).

    Parameters
    ----------
    od
        Long-form travel times from cells to institutions (``origin_id``,
        ``destination_id``, ``travel_time_s``), e.g. from
        :func:`planner.travel_time.od_travel_times` with
        ``max_minutes=max_minutes``.
    demand
        Cells indexed by ``cell_id`` with a population column.
    supply
        Institutions indexed by ``facility_id`` with a capacity column
        (beds, doctors); every one must have a capacity >= 0.
    max_minutes
        Catchment threshold in minutes (inclusive).
    decay, sigma_minutes
        Distance-decay weight, see :func:`decay_weights`.
    capacity_column
        Column of `supply` holding capacity.
    population_column
        Column of `demand` holding persons.

    Returns
    -------
    accessibility
        Indexed like `demand`, named ``accessibility_per_1000``: capacity per
        1,000 residents; 0 where no institution is within `max_minutes`
        (PySAL gives NaN there). An institution nobody lives near (zero
        weighted demand) contributes 0 (PySAL: infinity).

    Raises
    ------
    MissingColumnError
        If a column is missing.
    InvalidValueError
        If a capacity is missing or negative, or a parameter is out of range.
    """
    d0 = float(max_minutes)
    if not d0 > 0:
        msg = f"max_minutes={max_minutes!r} must be > 0; fix: e.g. max_minutes=30"
        raise InvalidValueError(msg)
    for col, df, what in ((population_column, demand, "demand"), (capacity_column, supply, "supply")):
        if col not in df.columns:
            arg = "population_column" if what == "demand" else "capacity_column"
            msg = f"{what} has no '{col}' column; fix: add it or name the column ({arg}=...)"
            raise MissingColumnError(msg)
    check_od(od)
    cap = pd.to_numeric(supply[capacity_column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(cap) | (cap < 0)
    if bad.any():
        fid = supply.index[bad][0]
        msg = (f"institution '{fid}' has capacity {supply[capacity_column].iloc[int(np.flatnonzero(bad)[0])]} "
               f"({int(bad.sum())} of {len(supply)} lack a capacity >= 0); fix: give beds or staff for every institution, "
               "or pass only those with a capacity (e.g. supply[supply['capacity'].notna()])")
        raise InvalidValueError(msg)
    pop = pd.to_numeric(demand[population_column], errors="coerce").to_numpy(dtype=float)

    minutes = pd.to_numeric(od["travel_time_s"], errors="coerce").to_numpy(dtype=float) / 60.0
    ci = demand.index.get_indexer(pd.Index(od["origin_id"]))
    fj = supply.index.get_indexer(pd.Index(od["destination_id"]))
    keep = (ci >= 0) & (fj >= 0) & np.isfinite(minutes) & (minutes <= d0)
    ci, fj, minutes = ci[keep], fj[keep], minutes[keep]
    w = decay_weights(minutes, max_minutes=d0, decay=decay, sigma_minutes=sigma_minutes)
    # step 1: capacity-to-weighted-population ratio of each institution
    weighted_demand = np.bincount(fj, weights=pop[ci] * w, minlength=len(supply))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(weighted_demand > 0, cap / weighted_demand, 0.0)
    # step 2: sum of the reachable ratios at each cell
    acc = np.bincount(ci, weights=ratio[fj] * w, minlength=len(demand)) * PER_RESIDENTS
    return pd.Series(acc, index=demand.index, name="accessibility_per_1000")
