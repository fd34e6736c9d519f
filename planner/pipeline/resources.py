"""Capacity-limited coverage and planning norms inside the coverage and grid pipelines.

The cores are :mod:`planner.capacity` (who is served under capacities) and :mod:`planner.norms`
(norms per district); this module feeds them a run's cells and institutions and turns their results
into the ``capacity`` and ``norms`` blocks of ``summary.json`` (typed in
:mod:`planner.pipeline.summary`) and the tables and layers :mod:`planner.exports` writes
(``served.csv``, ``norms.csv``, the residual-unserved layer).

Rounding: the blocks give persons to 0.1 and shares to 0.01; they are rounded so that they still add
up exactly (``population_served + population_unserved == population_total`` and
``population_unserved == unserved_out_of_reach + unserved_over_capacity``, overall and per district).
The unrounded figures are in the run's :class:`~planner.capacity.Allocation`.
"""

from __future__ import annotations

import os
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ..capacity import Allocation, capacity_from_column, capacity_summary
from ..institutions import load_institutions
from ..norms import Norms, build_districts_table, check_norms, load_norms
from ..travel_time import CompiledNetwork, od_travel_times, snap_points
from .case import CaseInputs

OUTSIDE_DISTRICTS = "(outside districts)"  # the label coverage's by_district gives cells outside every district
BALANCE_NOTE = ("population_served + population_unserved = population_total; population_unserved = "
                "unserved_out_of_reach + unserved_over_capacity (overall and per district; persons rounded to 0.1 so "
                "that the figures still add up)")


def run_norms(norms: str | os.PathLike[str] | Norms | bool | None) -> Norms | None:
    """Return the norms to check: False for none, None for the shipped default, a path, or loaded norms."""
    if norms is False:
        return None
    if isinstance(norms, Norms):
        return norms
    return load_norms(None if norms is None or norms is True else norms)


def institution_capacity(case: CaseInputs, inst: gpd.GeoDataFrame, *, column: str | None,
                         persons_per_unit: float | None, tier_defaults: dict[str, float] | None = None) -> pd.Series:
    """Return the persons each institution of `inst` can serve, from `column` of the institutions file.

    The file is read again with `column` as its capacity column (non-numeric text there names its row);
    institutions a what-if added (not in the file) keep their own ``capacity``. Rows whose value is empty take
    their tier's capacity from `tier_defaults` (a norms file's ``[capacity_defaults]``); with `column` None every
    row does. Missing or negative values name the row (see :func:`planner.capacity.capacity_from_column`).
    """
    path = case.options.get("institutions")
    if column is None:
        frame = pd.DataFrame({"name": inst["name"], "tier": inst["tier"]}, index=inst.index)
        return capacity_from_column(frame, None, tier_defaults=tier_defaults, file=path)
    from_file = load_institutions(path, coords=case.options.get("coords") or "wgs84", capacity_column=column)
    raw = from_file["capacity"].reindex(inst.index)
    added = ~inst.index.isin(from_file.index)
    if added.any() and "capacity" in inst:
        raw[added] = pd.to_numeric(inst.loc[added, "capacity"], errors="coerce")
    frame = pd.DataFrame({"name": inst["name"], "tier": inst["tier"], column: raw}, index=inst.index)
    return capacity_from_column(frame, column, persons_per_unit=persons_per_unit, tier_defaults=tier_defaults,
                                file=path)


def _r(x: float | None, digits: int = 1) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else round(float(x), digits)


def _balanced(row: dict[str, Any]) -> dict[str, Any]:
    """Return the population figures of `row`, rounded to 0.1 person so that they still add up."""
    # the three parts are rounded (never below 0) and the sums built from them, so the sums hold exactly
    served, far, over = (round(float(row[k]), 1) for k in ("population_served", "unserved_out_of_reach",
                                                            "unserved_over_capacity"))
    unserved = round(far + over, 1)
    return {"population_total": round(served + unserved, 1), "population_served": served, "population_unserved": unserved,
            "unserved_out_of_reach": far, "unserved_over_capacity": over, "served_pct": _r(row["served_pct"], 2)}


def capacity_block(allocation: Allocation, cells: pd.DataFrame, inst: pd.DataFrame, *, column: str | None,
                   persons_per_unit: float | None, tier_defaults: dict[str, float] | None = None) -> dict[str, Any]:
    """Return the ``capacity`` block of a coverage summary (see :class:`~planner.pipeline.summary.CapacityBlock`)."""
    unit = "persons" if persons_per_unit is None else f"units of '{column}' × persons_per_unit"
    basis: dict[str, Any] = {"column": column, "persons_per_unit": persons_per_unit, "unit": unit}
    if tier_defaults:
        basis["unit"] = ("persons per institution of its tier" if column is None
                         else f"{unit}; empty rows: persons per institution of its tier")
        basis["tier_defaults"] = {t: float(v) for t, v in tier_defaults.items()}
    groups = None
    if "district" in cells:
        groups = {"district": cells["district"].astype("object").where(cells["district"].notna(), OUTSIDE_DISTRICTS)}
    s = capacity_summary(allocation, cell_groups=groups, facility_groups={"tier": inst["tier"]})
    fac = allocation.facilities
    full = int(((fac["capacity"] > 0) & (fac["served"] >= fac["capacity"] * (1 - 1e-9))).sum())
    return {
        "method": allocation.method,
        "max_minutes": allocation.max_minutes,
        "status": allocation.status,
        "capacity_basis": basis,
        **_balanced(s),
        "capacity_total": _r(s["capacity_total"]),
        "institutions_full": full,
        "balance": BALANCE_NOTE,
        "by_tier": [{"tier": str(r["tier"]), "institutions": int(r["institutions"]), "capacity": _r(r["capacity"]),
                     "demand_within_t": _r(r["demand_within_t"]), "population_served": _r(r["population_served"]),
                     "utilisation_pct": _r(r["utilisation_pct"], 2)} for r in s["by_tier"]],
        "by_district": [{"district": str(r["district"]), **_balanced(r)} for r in s.get("by_district", [])],
    }


def served_table(allocation: Allocation, inst: pd.DataFrame) -> pd.DataFrame:
    """Return one row per institution, for ``served.csv``.

    Columns ``facility_id``, ``name``, ``tier``, ``capacity``, ``demand_within_t``, ``served`` (persons) and
    ``utilisation_pct``, unrounded: :func:`planner.tables.report_table` (schema ``served``) rounds them for the file.
    """
    fac = allocation.facilities
    out = pd.DataFrame({"name": inst["name"].reindex(fac.index), "tier": inst["tier"].reindex(fac.index),
                        "capacity": fac["capacity"], "demand_within_t": fac["demand_within_t"],
                        "served": fac["served"], "utilisation_pct": fac["utilisation_pct"]},
                       index=fac.index)
    out.index.name = "facility_id"
    return out.reset_index()


def residual_unserved(cells: gpd.GeoDataFrame, allocation: Allocation) -> gpd.GeoDataFrame:
    """Return the cells with unserved persons (the residual-unserved layer).

    Columns ``population``, ``served``, ``unserved``, ``unserved_out_of_reach``, ``unserved_over_capacity`` and
    ``unserved_reason`` (``out_of_reach`` or ``over_capacity``; a cell is one or the other), with their geometry
    (and ``district`` with boundaries).
    """
    a = allocation.cells
    unserved = a["unserved_out_of_reach"] + a["unserved_over_capacity"]
    keep = (unserved > 1e-9).reindex(cells.index, fill_value=False).to_numpy()
    sel = a.reindex(cells.index[keep])
    out = gpd.GeoDataFrame({
        "population": sel["population"].to_numpy(), "served": sel["served"].to_numpy(),
        "unserved": (sel["unserved_out_of_reach"] + sel["unserved_over_capacity"]).to_numpy(),
        "unserved_out_of_reach": sel["unserved_out_of_reach"].to_numpy(),
        "unserved_over_capacity": sel["unserved_over_capacity"].to_numpy(),
        "unserved_reason": np.where(sel["unserved_out_of_reach"].to_numpy() > 0, "out_of_reach", "over_capacity"),
    }, geometry=cells.geometry.to_numpy()[keep], crs=cells.crs, index=cells.index[keep])
    if "district" in cells:
        out.insert(0, "district", cells["district"].to_numpy()[keep])
    return out


def nearest_institution_minutes(net: CompiledNetwork, cells_snapped: pd.DataFrame, inst: gpd.GeoDataFrame, *,
                                max_snap_m: float, max_minutes: float) -> pd.Series:
    """Minutes from each cell to its nearest institution within `max_minutes` (NaN beyond), for the grid's norms."""
    od = od_travel_times(net, cells_snapped, snap_points(net, inst, max_snap_m=max_snap_m), max_minutes=max_minutes)
    best = od.groupby("origin_id")["travel_time_s"].min() / 60.0
    return best.reindex(cells_snapped.index)


def norms_check(cells: pd.DataFrame, inst: pd.DataFrame, norms: Norms, *,
                file: object = "institutions") -> tuple[pd.DataFrame, dict[str, Any]]:
    """Check the norms per district of a run's cells and institutions (`file`: their input, for messages).

    Beds, doctors and nurses per 1,000 residents are checked from the institutions' ``beds``, ``doctors`` and
    ``nurses`` columns (kept by :func:`planner.institutions.load_institutions` when the file has them).

    Returns
    -------
    table, block
        :func:`planner.norms.check_norms`' table (one row per district and enabled norm) and the ``norms`` block
        of ``summary.json`` (see :class:`~planner.pipeline.summary.NormsBlock`): residents are those of the
        study area's cells.
    """
    districts = build_districts_table(cells, inst, norms=norms, file=file)
    table = check_norms(norms, districts_table=districts)
    rows = []
    for r in table.to_dict("records"):
        rows.append({"district": str(r["district"]), "norm": str(r["norm"]), "kind": str(r["kind"]),
                     "measured": _r(r["measured"], 2), "comparison": str(r["comparison"]),
                     "norm_value": float(r["norm_value"]), "unit": str(r["unit"]),
                     "passed": None if pd.isna(r["passed"]) else bool(r["passed"]),
                     "shortfall": None if pd.isna(r["shortfall"]) else int(r["shortfall"]),
                     "shortfall_unit": str(r["shortfall_unit"]), "gap_zh": str(r["gap_zh"]), "gap_en": str(r["gap_en"]),
                     "standing": str(r["standing"])})
    passed = table["passed"]
    block = {"file": None if norms.path is None else str(norms.path), "name": norms.name,
             "checked": [n.id for n in norms.enabled], "population_basis": "study area",
             "districts": len(districts), "passed": int((passed == True).sum()),  # noqa: E712 - nullable boolean
             "failed": int((passed == False).sum()), "not_checked": int(passed.isna().sum()),  # noqa: E712
             "rows": rows}
    return table, block
