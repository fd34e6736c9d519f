"""The grid pipeline: consortium grids (网格化布局), one per lead hospital.

:func:`run_grids` is what ``planner grid`` and notebook 05 call. It returns a
frozen :class:`GridRun`; :func:`planner.exports.write_grid_outputs` writes it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .. import assignment as asg
from .. import settings
from .._errors import InvalidValueError, MissingColumnError, PlannerError
from .._validate import check_minutes, find_column
from .._version import __version__
from ..accessibility import e2sfca
from ..coverage import assign_districts
from ..institutions import load_institutions
from ..io import OSM_SUFFIXES, TABLE_SUFFIXES, VECTOR_SUFFIXES, check_input, read_table
from ..travel_time import CompiledNetwork, od_travel_times, snap_points
from . import resources
from .case import _INPUT_KEYS, Case, CaseInputs, _institutions_with_capacity, _warnings_logged, summary_credits
from .summary import GridSummary

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class GridRun:
    """Everything one consortium-grid run produced.

    Attributes
    ----------
    case, net
        Loaded inputs and the compiled network.
    leads
        The lead hospitals in the model (index ``facility_id``; ``lead:<id>``
        for a leads file, with ``institution_id``, its row in the
        institutions, where it has one).
    leads_excluded
        Leads left out, with ``reason`` (not on the network, duplicate).
    members
        The other institutions with ``lead_id`` (the grid each serves) and
        ``lead_name``.
    cells
        Demand cells with ``lead_id``, ``lead_name``, ``travel_time_min``,
        ``baseline_lead_id``, ``baseline_travel_time_min``, ``moved`` and
        ``accessibility_per_1000``.
    grids
        Dissolved grid polygons (index ``facility_id`` of the lead) with the
        per-grid figures of :func:`planner.assignment.grids_summary`.
    baseline_grids
        Dissolved nearest-lead zones, for comparison.
    districts
        Per-district resource balance (:func:`planner.assignment.district_summary`), or None.
    result
        The :class:`planner.assignment.AssignmentResult`.
    summary
        The report figures, written as ``summary.json`` (see
        :class:`planner.pipeline.summary.GridSummary`).
    norms
        The norms checked per district (:func:`planner.norms.check_norms`' table; coverage
        norms on the time to the nearest institution), or None without boundaries or with
        norms off.
    """

    case: CaseInputs
    net: CompiledNetwork
    leads: gpd.GeoDataFrame
    leads_excluded: pd.DataFrame
    members: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    baseline_grids: gpd.GeoDataFrame
    districts: pd.DataFrame | None
    result: asg.AssignmentResult
    summary: GridSummary
    norms: pd.DataFrame | None = None


LEAD_DUPLICATE_M = 2000.0  # metres; leads of the same name closer than this are one hospital mapped twice
LEAD_ID_PREFIX = "lead:"  # ids of a --leads file, kept apart from the institutions' ids (both may be row numbers)
FIXED_LEAD_ALIASES = ("lead", "lead_id", "lead_name", "牵头医院", "牵头单位", "facility_id")
FIXED_KEY_ALIASES = {"district": ("district", "区县", "区", "name"), "cell_id": ("cell_id", "cell", "网格单元")}


def _lead_twins(leads: gpd.GeoDataFrame, inst: gpd.GeoDataFrame, crs: Any) -> pd.DataFrame:
    """Institutions that are a lead of the leads file: the same name (spaces ignored).

    The leads file and the institutions table are two id spaces; a hospital listed in both is one hospital. It
    leads its grid and is not counted again as a member, and neither are its other entries of that name (the
    hospital mapped twice, or its other campuses). An institution is the twin of its nearest same-name lead.

    Returns
    -------
    twins
        Indexed by institution id (``facility_id``): ``lead_id`` and ``distance_m``, nearest first.
    """
    key_l = pd.DataFrame({"lead_id": leads.index, "key": leads["name"].astype(str).str.replace(r"\s+", "", regex=True)})
    key_i = pd.DataFrame({"facility_id": inst.index, "key": inst["name"].astype(str).str.replace(r"\s+", "", regex=True)})
    pairs = key_i.merge(key_l, on="key")
    xl = leads.geometry.to_crs(crs).reindex(pairs["lead_id"]).to_numpy()
    xi = inst.geometry.to_crs(crs).reindex(pairs["facility_id"]).to_numpy()
    pairs["distance_m"] = shapely.distance(xl, xi) if len(pairs) else np.zeros(0)
    pairs = pairs.sort_values(["distance_m", "facility_id", "lead_id"], kind="stable")
    return pairs.drop_duplicates("facility_id").set_index("facility_id")[["lead_id", "distance_m"]]


def _dedupe_leads(leads: gpd.GeoDataFrame, crs: Any) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Drop leads that repeat an earlier lead's name within LEAD_DUPLICATE_M (one hospital mapped twice in OSM)."""
    key = leads["name"].astype(str).str.replace(r"\s+", "", regex=True)
    xy = leads.geometry.to_crs(crs)
    drop: dict[Any, str] = {}
    for _, ids in key.groupby(key, sort=False).groups.items():
        if len(ids) < 2:
            continue
        first = ids[0]
        for other in ids[1:]:
            d = float(xy.loc[first].distance(xy.loc[other]))
            if d <= LEAD_DUPLICATE_M:
                drop[other] = f"same name as lead '{first}', {d:.0f} m away (one hospital mapped twice)"
    excluded = pd.DataFrame({"name": leads.loc[list(drop), "name"], "reason": pd.Series(drop, dtype=object)})
    return leads.drop(index=list(drop)), excluded


def load_fixed_assignments(
    path: str | os.PathLike[str],
    *,
    leads: pd.DataFrame,
    cells: pd.DataFrame,
) -> dict[Any, Any]:
    """Read planner-fixed assignments: which district (or cell) must stay with which lead.

    Parameters
    ----------
    path
        CSV/XLSX table with a ``lead`` column (the lead's name or
        ``facility_id``) and either ``district`` (district name) or
        ``cell_id``.
    leads
        Lead hospitals indexed by ``facility_id``, with ``name``.
    cells
        Demand cells indexed by ``cell_id``, with ``district`` when the
        table names districts.

    Returns
    -------
    fixed
        ``{district_name or cell_id: lead facility_id}``, as
        :func:`planner.assignment.assign_lead_hospital` takes it.

    Raises
    ------
    PlannerError
        Naming the file, row and fix for unknown leads, districts or cells.
    """
    df = read_table(path, what="fixed assignments")
    lead_col = find_column(df, FIXED_LEAD_ALIASES, what="lead", file=path)
    dcol = find_column(df, FIXED_KEY_ALIASES["district"], what="district", file=path, required=False)
    ccol = find_column(df, FIXED_KEY_ALIASES["cell_id"], what="cell id", file=path, required=False)
    if dcol is None and ccol is None:
        msg = f"{path}: no 'district' or 'cell_id' column; fix: add a column 'district' (district names) next to 'lead'"
        raise MissingColumnError(msg)
    by_name: dict[str, Any] = {}
    for fid, name in leads["name"].items():
        by_name.setdefault(str(name).strip(), fid)
    ids = {str(f).removeprefix(LEAD_ID_PREFIX): f for f in leads.index} | {str(f): f for f in leads.index}  # 'lead:3' or '3'
    districts = set(cells["district"].dropna()) if "district" in cells.columns else set()
    fixed: dict[Any, Any] = {}
    for row, rec in enumerate(df.to_dict(orient="records"), start=2):  # row 1 is the header
        raw = str(rec[lead_col]).strip()
        lead = ids.get(raw, by_name.get(raw))
        if lead is None:
            sample = "、".join(list(by_name)[:5])
            msg = (f"{path}, row {row}: lead '{raw}' is not one of the {len(leads)} lead hospitals; "
                   f"fix: use a lead's exact name or facility_id (e.g. {sample})")
            raise InvalidValueError(msg)
        if dcol is not None and pd.notna(rec[dcol]) and str(rec[dcol]).strip():
            district = str(rec[dcol]).strip()
            if district not in districts:
                msg = (f"{path}, row {row}: district '{district}' has no populated cell in the study area; "
                       f"fix: use one of {'、'.join(sorted(districts)) or '(give --boundaries)'}")
                raise InvalidValueError(msg)
            fixed[district] = lead
        elif ccol is not None and pd.notna(rec[ccol]):
            cell = pd.to_numeric(pd.Series([rec[ccol]]), errors="coerce").iloc[0]
            if not (cell == cell) or int(cell) not in cells.index:
                msg = f"{path}, row {row}: cell_id '{rec[ccol]}' is not a populated cell; fix: take ids from assignment.csv"
                raise InvalidValueError(msg)
            fixed[int(cell)] = lead
        else:
            msg = f"{path}, row {row}: neither a district nor a cell_id is given; fix: fill one of them"
            raise InvalidValueError(msg)
    return fixed


def run_grids(
    network: str | os.PathLike[str],
    institutions: str | os.PathLike[str],
    population: str | os.PathLike[str],
    *,
    leads: str | os.PathLike[str] | None = None,
    lead_tiers: tuple[str, ...] = ("tertiary",),
    boundaries: str | os.PathLike[str] | None = None,
    mode: str = "drive",
    speed_kph: float | None = None,
    coords: str = "wgs84",
    population_coords: str = "wgs84",
    max_snap_m: float | None = None,
    cell_size_m: float = settings.GRID_CELL_SIZE_M,
    capacity_column: str | None = None,
    tolerance: float = settings.GRID_TOLERANCE,
    fixed: str | os.PathLike[str] | dict[Any, Any] | None = None,
    contiguity: str = "queen",
    time_limit_s: float = settings.GRID_TIME_LIMIT_S,
    method: str = "auto",
    max_nodes: int | None = None,
    accessibility_minutes: float = 30.0,
    population_label: str = "population",
    norms: str | os.PathLike[str] | None = None,
    norms_enabled: bool = True,
    credits: Any = None,
) -> GridRun:
    """Divide the city into consortium grids (网格化布局), one per lead hospital.

    Every populated cell goes to one lead: least population-weighted travel
    time, each lead's population within `tolerance` of its capacity share,
    every grid contiguous, planner-fixed assignments honoured (see
    :func:`planner.assignment.assign_lead_hospital`). The other institutions
    join the grid they stand in as members; per grid and per district the
    run reports load, travel time to the lead and resources per 1,000
    residents, and per cell an E2SFCA accessibility index.

    Parameters
    ----------
    network, institutions, population, boundaries, mode, speed_kph, coords, population_coords, max_snap_m
        As in :func:`planner.pipeline.run_coverage` (drive by default: residents' trips to a
        tertiary hospital).
    leads
        File of lead hospitals (as institutions, in the datum `coords`); by
        default the institutions of `lead_tiers`. Its rows are their own id
        space (``lead:<id>``), never mixed with the institutions' ids; an
        institution with a lead's name is that lead (``institution_id`` of
        the lead, the nearest one), not a member.
    lead_tiers
        Tiers whose institutions lead a grid when `leads` is not given.
    cell_size_m
        Demand cell size in metres (1,000 m by default).
    capacity_column
        Column of the leads (and institutions) holding capacity (beds,
        staff); equal shares when None.
    tolerance
        Relative band of each lead's load around its capacity share.
    fixed
        Planner-fixed assignments: a table (see
        :func:`load_fixed_assignments`) or ``{district or cell_id: lead id}``.
    contiguity
        ``"queen"`` (cells touching at a corner are neighbours) or ``"rook"``.
    time_limit_s
        Safety-net solver time limit in seconds. A solve ends at its work
        bound (`max_nodes`), so the same inputs give the same grids (and a
        byte-identical ``assignment.csv``) on every run; a solve stopped by
        this limit instead is reported (``summary["time_limited"]``) as
        possibly different between runs.
    method
        ``auto``, ``mip`` or ``heuristic`` (see :mod:`planner.assignment`).
    max_nodes
        Branch-and-bound nodes of the MIP at most
        (:data:`planner.assignment.MIP_MAX_NODES` by default); the gap at
        that bound is reported.
    accessibility_minutes
        Catchment of the E2SFCA index in minutes.
    population_label
        What the population counts.
    norms, norms_enabled
        Norms file checked per district with boundaries (None: the shipped default), and whether
        to check them (see :class:`~planner.pipeline.Case`).
    credits
        The user's credits of the inputs, role -> text (see :attr:`~planner.pipeline.Case.credits`).

    Returns
    -------
    run
        The grids; ``run.summary`` holds the report figures.

    Raises
    ------
    PlannerError
        For unusable inputs; leads reaching no cell; loads that cannot meet
        the tolerance or fixed assignments that break contiguity (saying
        which lead or cell and what to relax).
    """
    case = Case(network=network, institutions=institutions, population=population, boundaries=boundaries, mode=mode,
                speed_kph=speed_kph, minutes=(accessibility_minutes,), coords=coords,
                population_coords=population_coords, max_snap_m=max_snap_m, cell_size_m=cell_size_m,
                population_label=population_label, isochrones=False, norms=norms, norms_enabled=norms_enabled,
                credits=credits or ())
    return grid_case(case, leads=leads, lead_tiers=lead_tiers, capacity_column=capacity_column, tolerance=tolerance,
                     fixed=fixed, contiguity=contiguity, time_limit_s=time_limit_s, method=method, max_nodes=max_nodes,
                     accessibility_minutes=accessibility_minutes)


def grid_case(
    case: Case,
    *,
    leads: str | os.PathLike[str] | None = None,
    lead_tiers: tuple[str, ...] = ("tertiary",),
    capacity_column: str | None = None,
    tolerance: float = settings.GRID_TOLERANCE,
    fixed: str | os.PathLike[str] | dict[Any, Any] | None = None,
    contiguity: str = "queen",
    time_limit_s: float = settings.GRID_TIME_LIMIT_S,
    method: str = "auto",
    max_nodes: int | None = None,
    accessibility_minutes: float = 30.0,
) -> GridRun:
    """Divide a :class:`~planner.pipeline.Case` into consortium grids: load its inputs, then assign.

    The case gives the files, the mode, speeds, datums, snap distance, cell
    size (``settings.GRID_CELL_SIZE_M`` when the case has none) and
    population label; the keywords are the grid choices, as in
    :func:`run_grids`.

    Returns
    -------
    run
        The grids; ``run.summary`` holds the report figures.

    Raises
    ------
    PlannerError
        As :func:`run_grids`.
    """
    t0 = time.perf_counter()
    _check_grid_options(contiguity=contiguity, lead_tiers=lead_tiers, leads=leads, fixed=fixed,
                        accessibility_minutes=accessibility_minutes)
    if case.cell_size_m is None:
        case = dataclasses.replace(case, cell_size_m=settings.GRID_CELL_SIZE_M)
    mode, cell_size_m, population_label = case.mode, case.cell_size_m, case.population_unit
    institutions, coords = case.institutions, case.coords
    inputs = case.load()
    net = inputs.net
    # with a leads file, the capacity column is the leads'
    inst = _institutions_with_capacity(inputs, institutions, coords=coords,
                                       capacity_column=capacity_column if leads is None else None)
    lead_df, members, lead_source = _grid_leads(inputs, net, inst, leads=leads, lead_tiers=lead_tiers, coords=coords,
                                                capacity_column=capacity_column)
    where = leads or institutions
    if len(lead_df) == 0:
        msg = (f"{where}: no lead hospital ({lead_source}); "
               "fix: give --leads FILE or a --lead-tier present in the institutions (e.g. secondary)")
        raise InvalidValueError(msg)
    lead_ok, excluded = _leads_on_network(inputs, net, lead_df, where=where)

    # members: the other institutions of the study area (those outside it serve no grid)
    in_area = shapely.contains_xy(inputs.area, members["lon"].to_numpy(), members["lat"].to_numpy())
    members_outside = int((~in_area).sum())
    members = members[in_area]

    # travel times: cells to leads (1 km cells: snap from the cell centre, up to half a diagonal further)
    cells = inputs.cells
    snap_cells = snap_points(net, cells, max_snap_m=max(inputs.max_snap_m, cell_size_m * math.sqrt(0.5)))
    od = od_travel_times(net, snap_cells, snap_points(net, lead_ok, max_snap_m=inputs.max_snap_m))
    fixed_map = fixed if isinstance(fixed, dict) or fixed is None else \
        load_fixed_assignments(fixed, leads=lead_ok, cells=cells)
    result = _assign(od, cells, lead_ok, contiguity=contiguity, capacity="capacity" if capacity_column else "equal",
                     tolerance=tolerance, fixed=fixed_map, time_limit_s=time_limit_s, method=method, max_nodes=max_nodes)
    access, access_basis = _accessibility(inputs, net, inst, snap_cells, capacity_column=capacity_column,
                                          max_minutes=accessibility_minutes)
    out_cells = _grid_cells(cells, result, lead_ok, access)
    grids, baseline_grids, members, dist_table = _grid_layers(cells, result, lead_ok, members)

    s = result.summary()
    total = float(cells["population"].sum())
    summary: GridSummary = {
        "planner_version": __version__,
        "complete": True,
        "population_unit": population_label,
        "mode": mode,
        "contiguity": contiguity,
        "tolerance": tolerance,
        "capacity_basis": f"column '{capacity_column}'" if capacity_column else "equal shares",
        "lead_source": lead_source,
        **_solver_figures(s),
        "population_total": round(total, 1),
        "population_assigned": round(total - s["population_unassigned"], 1),
        "population_unassigned": s["population_unassigned"],
        "cells": len(cells),
        "cells_unassigned": s["n_unassigned"],
        "cell_size_m": cell_size_m,
        "load_ratio_range": _range(grids["load_ratio"]),
        "baseline_load_ratio_range": _range(grids["baseline_load_ratio"]),
        "comparison": {k: v for k, v in s.items() if k not in _NOT_COMPARED},
        "leads": _per_lead(grids, members, lead_ok),
        "leads_excluded": [{"facility_id": str(f), "name": str(r["name"]), "reason": str(r["reason"])}
                           for f, r in excluded.iterrows()],
        "members_unattached": int(members["lead_id"].isna().sum()),
        "institutions_outside_study_area": members_outside,
        "fixed_assignments": len(fixed_map or {}),
        "accessibility": {"method": "E2SFCA (Gaussian decay)", "max_minutes": accessibility_minutes, "basis": access_basis,
                          "mean_per_1000": round(float(np.average(access, weights=cells["population"])) if total > 0 else 0.0,
                                                 4)},
        "by_district": _district_rows(dist_table),
        "inputs": {**{k: inputs.options.get(k) for k in _INPUT_KEYS},
                   "leads": None if leads is None else str(leads),
                   "fixed": None if fixed is None or isinstance(fixed, dict) else str(fixed)},
        "credits": summary_credits(inputs.options, case.credits, leads=leads),
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    norms_table = _grid_norms(inputs, net, inst, snap_cells, case=case, summary=summary)
    return GridRun(case=inputs, net=net, leads=lead_ok, leads_excluded=excluded, members=members, cells=out_cells,
                   grids=grids, baseline_grids=baseline_grids, districts=dist_table, result=result, summary=summary,
                   norms=norms_table)


def _grid_norms(inputs: CaseInputs, net: CompiledNetwork, inst: gpd.GeoDataFrame, snap_cells: pd.DataFrame, *,
                case: Case, summary: GridSummary) -> pd.DataFrame | None:
    """Check the norms per district (with boundaries); add ``summary["norms"]``; return the table or None."""
    norms = resources.run_norms(case.norms if case.norms_enabled else False) if inputs.districts is not None else None
    if norms is None or not norms.norms:  # a norms file may hold per-tier capacities only
        return None
    cells = inputs.cells[["district", "population"]].copy()
    limit = max([n.minutes for n in norms.enabled if n.kind == "coverage"], default=None)
    cells["travel_time_min"] = np.nan if limit is None else resources.nearest_institution_minutes(
        net, snap_cells, inst, max_snap_m=inputs.max_snap_m, max_minutes=limit).to_numpy()
    table, summary["norms"] = resources.norms_check(cells, inst, norms, file=inputs.options.get("institutions"))
    return table


_NOT_COMPARED = {"status", "method", "n_grids", "n_cells", "n_unassigned", "population_unassigned", "tolerance",
                 "objective_person_s", "lower_bound_person_s", "gap", "runtime_s", "loads", "time_limited", "work"}


def _check_grid_options(*, contiguity: str, lead_tiers: tuple[str, ...], leads: str | os.PathLike[str] | None,
                        fixed: str | os.PathLike[str] | dict[Any, Any] | None, accessibility_minutes: float) -> None:
    """Check the grid options and files before anything is loaded."""
    if contiguity not in ("queen", "rook"):
        msg = f"unknown contiguity '{contiguity}'; fix: use queen or rook"
        raise InvalidValueError(msg)
    unknown = set(lead_tiers) - set(settings.TIERS)
    if unknown:
        msg = f"unknown lead tier(s) {', '.join(sorted(unknown))}; fix: use {', '.join(settings.TIERS)}"
        raise InvalidValueError(msg)
    if leads is not None:
        check_input(leads, what="lead hospitals", suffixes=TABLE_SUFFIXES + VECTOR_SUFFIXES + OSM_SUFFIXES)
    if fixed is not None and not isinstance(fixed, dict):
        check_input(fixed, what="fixed assignments", suffixes=TABLE_SUFFIXES)
    check_minutes([accessibility_minutes])


def _grid_leads(case: CaseInputs, net: CompiledNetwork, inst: gpd.GeoDataFrame, *,
                leads: str | os.PathLike[str] | None, lead_tiers: tuple[str, ...], coords: str,
                capacity_column: str | None) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, str]:
    """Return the lead hospitals (from `leads` or the institutions of `lead_tiers`), the other institutions, and the source."""
    if leads is None:
        lead_df = inst[inst["tier"].isin(lead_tiers)]
        return lead_df, inst.drop(index=lead_df.index), f"tiers {', '.join(lead_tiers)} of the institutions"
    lead_df = load_institutions(leads, coords=coords, capacity_column=capacity_column)
    lead_df.index = pd.Index([f"{LEAD_ID_PREFIX}{i}" for i in lead_df.index], name="facility_id")  # own id space
    if case.districts is not None:
        lead_df["district"] = assign_districts(lead_df, case.districts)
    twins = _lead_twins(lead_df, inst, net.crs)  # the same hospital in the institutions: the lead, not a member
    nearest_twin = pd.Series(twins.index, index=twins["lead_id"].to_numpy()).groupby(level=0, sort=False).first()
    lead_df["institution_id"] = nearest_twin.reindex(lead_df.index).astype(object)
    return lead_df, inst.drop(index=twins.index), str(leads)


def _leads_on_network(case: CaseInputs, net: CompiledNetwork, lead_df: gpd.GeoDataFrame, *,
                      where: str | os.PathLike[str]) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Return the leads on the network of the study area, one per hospital; and those left out, with ``reason``."""
    snap_l = snap_points(net, lead_df, max_snap_m=case.max_snap_m)
    shapely.prepare(case.area)
    inside = shapely.contains_xy(case.area, lead_df["lon"].to_numpy(), lead_df["lat"].to_numpy())
    reason = np.where(~inside, "outside the study area",
                      np.where(snap_l["snapped"], "", f"more than {case.max_snap_m:.0f} m from a road"))
    excluded = pd.DataFrame({"name": lead_df["name"], "reason": reason})[reason != ""]
    lead_ok, dupes = _dedupe_leads(lead_df[reason == ""], net.crs)  # one hospital mapped twice leads one grid
    excluded = pd.concat([excluded, dupes])
    if len(excluded):
        logger.warning("%d of %d leads left out (not on the network or duplicates); see summary.json leads_excluded",
                       len(excluded), len(lead_df))
    if len(lead_ok) < 2:
        msg = (f"{where}: only {len(lead_ok)} lead hospital lies on the road network of the study area; "
               "fix: give at least two leads (--leads FILE or another --lead-tier)")
        raise InvalidValueError(msg)
    return lead_ok, excluded


def _assign(od: pd.DataFrame, cells: gpd.GeoDataFrame, leads: gpd.GeoDataFrame, *, contiguity: str, capacity: str,
            tolerance: float, fixed: dict[Any, Any] | None, time_limit_s: float, method: str,
            max_nodes: int | None) -> asg.AssignmentResult:
    """Solve the assignment; an error names the leads, not only their ids."""
    adjacency = asg.cell_adjacency(cells, contiguity=contiguity)  # type: ignore[arg-type]
    with _warnings_logged():
        try:
            return asg.assign_lead_hospital(od, cells, leads, adjacency=adjacency, capacity=capacity,
                                            tolerance=tolerance, fixed=fixed, time_limit_s=time_limit_s,
                                            method=method,  # type: ignore[arg-type]
                                            **({} if max_nodes is None else {"max_nodes": max_nodes}))
        except PlannerError as exc:
            text = str(exc)
            for fid, name in leads["name"].items():
                text = text.replace(f"'{fid}'", f"'{fid}' ({name})")
            raise type(exc)(text) from None


def _accessibility(case: CaseInputs, net: CompiledNetwork, inst: gpd.GeoDataFrame, snap_cells: pd.DataFrame, *,
                   capacity_column: str | None, max_minutes: float) -> tuple[pd.Series, str]:
    """Return the E2SFCA index per cell: capacity (or, without capacities, institutions) per 1,000 residents in the catchment."""
    supply = inst.copy()
    snap_inst = snap_points(net, supply, max_snap_m=case.max_snap_m)
    supply = supply[snap_inst["snapped"].to_numpy()]
    cap_known = pd.to_numeric(supply["capacity"], errors="coerce") if "capacity" in supply else \
        pd.Series(np.nan, index=supply.index)
    if cap_known.notna().any():
        supply = supply[cap_known.notna().to_numpy()].assign(capacity=cap_known.dropna())
        access_basis = f"capacity ('{capacity_column or 'capacity'}') per 1,000 residents"
    else:
        supply = supply.assign(capacity=1.0)
        access_basis = "institutions per 1,000 residents (no capacity column: each institution counts 1)"
    od_acc = od_travel_times(net, snap_cells, snap_inst.loc[supply.index], max_minutes=max_minutes)
    return e2sfca(od_acc, case.cells, supply, max_minutes=max_minutes), access_basis


def _grid_cells(cells: gpd.GeoDataFrame, result: asg.AssignmentResult, leads: gpd.GeoDataFrame,
                access: pd.Series) -> gpd.GeoDataFrame:
    """Return the cells with their lead, nearest lead, travel times, ``moved`` and accessibility."""
    names = leads["name"]  # lead ids only: members are another id space
    out_cells = cells.copy()
    out_cells["lead_id"] = result.assignment.reindex(cells.index)
    out_cells["lead_name"] = out_cells["lead_id"].map(names)
    out_cells["travel_time_min"] = (result.travel_time_s.reindex(cells.index) / 60).round(2)
    out_cells["baseline_lead_id"] = result.baseline.reindex(cells.index)
    out_cells["baseline_lead_name"] = out_cells["baseline_lead_id"].map(names)
    out_cells["baseline_travel_time_min"] = (result.baseline_travel_time_s.reindex(cells.index) / 60).round(2)
    out_cells["moved"] = out_cells["lead_id"].notna() & (out_cells["lead_id"] != out_cells["baseline_lead_id"])
    out_cells["accessibility_per_1000"] = access.reindex(cells.index).round(4)
    return out_cells


def _grid_layers(cells: gpd.GeoDataFrame, result: asg.AssignmentResult, leads: gpd.GeoDataFrame,
                 members: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame | None]:
    """Return grid polygons with their figures, nearest-lead zones, members with their lead, and the district table."""
    table = asg.grids_summary(result, cells, institutions=members, leads=leads)
    grids = asg.dissolve_grids(cells, result.assignment)[["geometry"]].join(table)
    grids["name"] = leads["name"].reindex(grids.index)
    baseline_grids = asg.dissolve_grids(cells, result.baseline)
    baseline_grids["name"] = leads["name"].reindex(baseline_grids.index)
    member_of = asg.attach_members(members, cells, result.assignment) if len(members) else \
        pd.DataFrame({"lead_id": pd.Series(dtype=object)})
    members = members.assign(lead_id=member_of["lead_id"].reindex(members.index))
    members["lead_name"] = members["lead_id"].map(leads["name"])
    dist_table = None
    if "district" in cells.columns:
        places = pd.concat([leads, members], ignore_index=True)  # each place once; ids of two spaces are not mixed
        dist_table = asg.district_summary(result, cells, institutions=places if "district" in places else None)
        dist_table["main_lead_name"] = dist_table["main_lead"].map(leads["name"])
    return grids, baseline_grids, members, dist_table


def _solver_figures(s: dict[str, Any]) -> dict[str, Any]:
    """Return the solver figures of a grid summary, from :meth:`planner.assignment.AssignmentResult.summary`."""
    return {
        "solver_status": s["status"],
        "method": s["method"],
        "gap": s["gap"],
        "time_limited": s["time_limited"],
        "work": s["work"],
        "objective_person_s": s["objective_person_s"],
        "lower_bound_person_s": s["lower_bound_person_s"],
        "solve_s": s["runtime_s"],
        "n_grids": s["n_grids"],
    }


def _range(ratios: pd.Series) -> list[float]:
    """Return the smallest and largest load ratio, rounded."""
    r = ratios.astype(float)
    return [round(float(r.min()), 3), round(float(r.max()), 3)]


def _per_lead(grids: gpd.GeoDataFrame, members: gpd.GeoDataFrame, leads: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """Return one summary row per grid: its lead, load, travel times and members."""
    per_lead = []
    # the lead's id in --institutions: its twin there (leads file), or its own id (leads taken from the institutions)
    twin_of = leads["institution_id"] if "institution_id" in leads else pd.Series(leads.index, index=leads.index)
    for fid, r in grids.iterrows():
        mem = members[members["lead_id"] == fid]
        per_lead.append({
            "facility_id": str(fid), "name": str(r["name"]),
            "institution_id": None if pd.isna(twin_of.get(fid)) else str(twin_of.get(fid)),  # same place in --institutions
            "population": round(float(r["population"]), 1),
            "capacity_share": round(float(r["capacity_share"]), 4),
            "target_population": round(float(r["target_population"]), 1),
            "load_ratio": round(float(r["load_ratio"]), 3),
            "within_tolerance": bool(r["within_tolerance"]),
            "baseline_population": round(float(r["baseline_population"]), 1),
            "baseline_load_ratio": round(float(r["baseline_load_ratio"]), 3),
            "mean_travel_time_min": round(float(r["mean_travel_time_min"]), 2),
            "p95_travel_time_min": round(float(r["p95_travel_time_min"]), 2),
            "max_travel_time_min": round(float(r["max_travel_time_min"]), 2),
            "n_cells": int(r["n_cells"]),
            "members": int(r.get("members", 0)),
            **{f"members_{t}": int(r.get(f"members_{t}", 0)) for t in settings.TIERS},
            "member_names": [str(n) for n in mem["name"]],
        })
    return per_lead


def _district_rows(dist_table: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Return the district table as summary rows (NaN as None, floats rounded)."""
    if dist_table is None:
        return []
    return [{"district": str(d), **{k: (None if isinstance(v, float) and v != v else (round(v, 3) if isinstance(v, float) else v))
                                    for k, v in r.items()}}
            for d, r in dist_table.astype(object).iterrows()]
