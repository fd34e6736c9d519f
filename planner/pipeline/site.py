"""The siting pipeline: where new branch sites (分支机构) reach the most people.

:func:`run_siting` is what ``planner site`` and notebook 04 call. It returns a
frozen :class:`SitingRun`; :func:`planner.exports.write_siting_outputs` writes it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from .. import settings, siting
from .._errors import InvalidValueError
from .._validate import check_minutes
from .._version import __version__
from ..candidates import (
    candidate_suitability,
    candidates_from_network,
    exclude_candidates,
    filter_candidates,
    load_candidates,
    load_competitors,
    load_exclusion_zones,
)
from ..coverage import assign_districts
from ..io import RASTER_SUFFIXES, TABLE_SUFFIXES, VECTOR_SUFFIXES, check_input
from ..isochrones import compute_isochrones
from ..travel_time import CompiledNetwork, od_travel_times, snap_points
from .case import (
    _INPUT_KEYS,
    Case,
    CaseInputs,
    _empty_isochrones,
    _institutions_with_capacity,
    _warnings_logged,
    summary_credits,
)
from .summary import SitingSummary

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class SitingRun:
    """Everything one branch-siting run produced.

    Attributes
    ----------
    case, net
        Loaded inputs and the compiled network.
    existing
        Institutions that already provide the service (kept open).
    candidates
        Candidate sites offered to the model (after filters), with snap status.
    cells
        Demand cells with ``covered_before``, ``covered_after`` and ``change``
        (``newly_covered``, ``covered``, ``gap``, ``unreachable``).
    result
        The model's :class:`planner.siting.SitingResult`.
    curve
        Marginal-value curve (covered share after 1..K new sites), or None.
    sites
        The proposed sites, ranked, with ``rank``, ``added_population``,
        ``cumulative_pct`` and ``adds_population`` (False only for sites kept
        by ``require_k`` that add nobody).
    isochrones
        Isochrones of the proposed sites at the threshold.
    summary
        The report figures, written as ``summary.json`` (see
        :class:`planner.pipeline.summary.SitingSummary`).
    """

    case: CaseInputs
    net: CompiledNetwork
    existing: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    result: siting.SitingResult
    curve: pd.DataFrame | None
    sites: gpd.GeoDataFrame
    isochrones: gpd.GeoDataFrame
    summary: SitingSummary


def run_siting(
    network: str | os.PathLike[str],
    institutions: str | os.PathLike[str],
    population: str | os.PathLike[str],
    *,
    candidates: str | os.PathLike[str] = "nodes",
    n_sites: int | None = None,
    target_pct: float | None = None,
    objective: str = "coverage",
    max_minutes: float = 15.0,
    boundaries: str | os.PathLike[str] | None = None,
    mode: str = "walk",
    speed_kph: float | None = None,
    coords: str = "wgs84",
    population_coords: str = "wgs84",
    candidates_coords: str = "wgs84",
    max_snap_m: float | None = None,
    cell_size_m: float | None = settings.SITING_CELL_SIZE_M,
    service_tiers: tuple[str, ...] | None = None,
    candidate_spacing_m: float = settings.CANDIDATE_SPACING_M,
    min_spacing_m: float = 0.0,
    candidate_districts: tuple[str, ...] | None = None,
    capacity_column: str | None = None,
    new_site_capacity: float | None = None,
    exclude: tuple[str | os.PathLike[str], ...] = (),
    suitability: str | os.PathLike[str] | None = None,
    suitability_column: str | None = None,
    competitors: str | os.PathLike[str] | None = None,
    marginal: bool = True,
    require_k: bool = False,
    time_limit_s: float = settings.SITING_TIME_LIMIT_S,
    population_label: str = "population",
    progress: bool = False,
    credits: Any = None,
) -> SitingRun:
    """Suggest new branch sites (分支机构) with the existing institutions kept open.

    Parameters
    ----------
    network, institutions, population, boundaries, mode, speed_kph, coords, population_coords, max_snap_m
        As in :func:`planner.pipeline.run_coverage`.
    candidates
        ``"nodes"`` (road-network nodes every `candidate_spacing_m`),
        ``"institutions:<tier>"`` (existing institutions of a tier, e.g.
        ``institutions:primary`` to upgrade township health centres), or a
        file of candidate points.
    candidates_coords
        Datum of a candidates file's coordinates (``wgs84``, ``gcj02``, ``bd09``).
    n_sites
        Number of new sites (MCLP, capacitated MCLP, p-median).
    target_pct
        Instead of `n_sites`: fewest sites to cover this share (%) of the
        population (LSCP).
    objective
        ``"coverage"`` (maximise population within `max_minutes`) or
        ``"mean-time"`` (p-median: minimise population-weighted travel time,
        over pairs within 3 × `max_minutes`).
    max_minutes
        Service threshold in minutes (e.g. 15 for primary care by walking,
        30 for secondary care by car).
    cell_size_m
        Demand cell size in metres (500 m by default for siting).
    service_tiers
        Tiers of the existing institutions that provide the service (all by
        default); e.g. ``("secondary", "tertiary")`` for secondary care.
    candidate_spacing_m
        Spacing of node candidates in metres.
    min_spacing_m
        Drop candidates closer than this (metres) to an existing site.
    candidate_districts
        Keep only candidates in these districts (needs `boundaries`).
    capacity_column
        Capacity column (persons) of the institutions and candidates: solves
        the capacitated MCLP.
    new_site_capacity
        Capacity (persons) of every candidate without its own.
    exclude
        Exclusion zones where no new site may go: polygon files (any CRS),
        or ``"osm:water,park"`` for the OSM network's areas of these kinds
        (:data:`planner.settings.EXCLUSION_OSM_TAGS`). Candidates inside
        (boundary included) are removed; ``summary["candidates_excluded"]``
        gives per source how many.
    suitability
        A GeoTIFF sampled at the candidates, or polygons with a weight column
        (`suitability_column`, ``weight`` by default): a weight ≥ 0 per
        candidate (:data:`planner.settings.SUITABILITY_DEFAULT_WEIGHT`
        outside them). Weight 0 removes the candidate. Positive weights
        prioritise: the model first maximises its own objective (coverage,
        or the fewest sites, or the mean time), then, among solutions equal
        in it, the sum of the chosen sites' weights (a secondary term worth
        at most :data:`planner.settings.SUITABILITY_TIE_PERSONS` persons in
        all, so it never trades away a covered person).
    suitability_column
        Weight column of suitability polygons.
    competitors
        Competitor sites (e.g. private clinics; a file like `institutions`,
        same datum `coords`, ids ``comp:<id>``). Residents within
        `max_minutes` of a competitor and of no existing site are served by
        competitors: they leave the demand the model can gain and every
        figure (``population_total``, coverage) and are counted apart as
        ``summary["population_served_by_competitors"]``. Existing sites stay
        required (kept open).
    marginal
        Also compute the marginal-value curve for 1..K sites (MCLP only).
    require_k
        Return exactly `n_sites` sites even when some add nobody (they are
        marked ``adds_population=False``). By default the run stops at the
        last site that adds population and ``summary["zero_gain_reason"]``
        says why (e.g. no candidate reaches anyone still uncovered within
        the threshold); the marginal curve stops there too.
    time_limit_s
        Solver time limit per solve, in seconds.
    population_label
        What the population counts.
    progress
        Show progress bars.
    credits
        The user's credits of the inputs, role -> text (see :attr:`~planner.pipeline.Case.credits`).

    Returns
    -------
    run
        The siting results; ``run.summary`` holds the report figures.

    Raises
    ------
    PlannerError
        For unusable inputs, infeasible targets (saying what is achievable)
        and solver failures (with the solver status).
    """
    case = Case(network=network, institutions=institutions, population=population, boundaries=boundaries, mode=mode,
                speed_kph=speed_kph, minutes=(max_minutes,), coords=coords, population_coords=population_coords,
                max_snap_m=max_snap_m, cell_size_m=cell_size_m, population_label=population_label, isochrones=True,
                credits=credits or ())
    return site_case(case, candidates=candidates, n_sites=n_sites, target_pct=target_pct, objective=objective,
                     max_minutes=max_minutes, candidates_coords=candidates_coords, service_tiers=service_tiers,
                     candidate_spacing_m=candidate_spacing_m, min_spacing_m=min_spacing_m,
                     candidate_districts=candidate_districts, capacity_column=capacity_column,
                     new_site_capacity=new_site_capacity, exclude=exclude, suitability=suitability,
                     suitability_column=suitability_column, competitors=competitors, marginal=marginal,
                     require_k=require_k, time_limit_s=time_limit_s, progress=progress)


def site_case(
    case: Case,
    *,
    candidates: str | os.PathLike[str] = "nodes",
    n_sites: int | None = None,
    target_pct: float | None = None,
    objective: str = "coverage",
    max_minutes: float | None = None,
    candidates_coords: str = "wgs84",
    service_tiers: tuple[str, ...] | None = None,
    candidate_spacing_m: float = settings.CANDIDATE_SPACING_M,
    min_spacing_m: float = 0.0,
    candidate_districts: tuple[str, ...] | None = None,
    capacity_column: str | None = None,
    new_site_capacity: float | None = None,
    exclude: tuple[str | os.PathLike[str], ...] = (),
    suitability: str | os.PathLike[str] | None = None,
    suitability_column: str | None = None,
    competitors: str | os.PathLike[str] | None = None,
    marginal: bool = True,
    require_k: bool = False,
    time_limit_s: float = settings.SITING_TIME_LIMIT_S,
    progress: bool = False,
) -> SitingRun:
    """Suggest new branch sites for a :class:`~planner.pipeline.Case`: load its inputs, then solve.

    The case gives the files, the mode, speeds, datums, snap distance, cell
    size and population label; the keywords are the siting choices, as in
    :func:`run_siting`. `max_minutes` defaults to the case's largest threshold.

    Returns
    -------
    run
        The siting results; ``run.summary`` holds the report figures.

    Raises
    ------
    PlannerError
        As :func:`run_siting`.
    """
    t0 = time.perf_counter()
    max_minutes = float(max(case.minutes) if max_minutes is None else max_minutes)
    tiers = _check_siting_options(candidates, n_sites=n_sites, target_pct=target_pct,
                                  objective=objective, service_tiers=service_tiers, max_minutes=max_minutes)
    _check_role_inputs(exclude, suitability=suitability, competitors=competitors)
    mode, cell_size_m, population_label, institutions = case.mode, case.cell_size_m, case.population_unit, case.institutions
    coords = case.coords
    inputs = case.load()
    net = inputs.net
    inst = _institutions_with_capacity(inputs, institutions, coords=coords, capacity_column=capacity_column)
    snap_i = snap_points(net, inst, max_snap_m=inputs.max_snap_m)
    existing = inst[inst["tier"].isin(tiers) & snap_i["snapped"].to_numpy()]
    cand, unsnapped_candidates = _siting_candidates(
        inputs, net, inst, existing, snapped=snap_i["snapped"], candidates=candidates, candidates_coords=candidates_coords,
        candidate_spacing_m=candidate_spacing_m, min_spacing_m=min_spacing_m, candidate_districts=candidate_districts)
    cand, site_weight, roles = _candidate_roles(cand, network=case.network, exclude=exclude, suitability=suitability,
                                                suitability_column=suitability_column)
    if n_sites is not None and n_sites > len(cand):
        msg = (f"--new-sites {n_sites} is more than the {len(cand)} candidate sites; "
               f"fix: ask for at most {len(cand)} or add candidates")
        raise InvalidValueError(msg)

    snap_cells, od = _siting_travel_times(inputs, net, existing, cand,
                                          max_minutes=max_minutes * 3 if objective == "mean-time" else max_minutes)
    demand = inputs.cells["population"]
    if competitors is not None:
        demand, competitor_figures = _competitor_demand(inputs, net, snap_cells, od, existing, competitors,
                                                        coords=coords, max_minutes=max_minutes)
        roles.update(competitor_figures)
    with _warnings_logged():  # the model warns e.g. about existing sites reaching no cell
        model = _siting_model(od, demand, cand, existing, n_sites=n_sites, target_pct=target_pct,
                              objective=objective, max_minutes=max_minutes, capacity_column=capacity_column,
                              new_site_capacity=new_site_capacity, site_weight=site_weight)
    result = model.solve(time_limit_s=time_limit_s, **({} if target_pct is not None else {"require_k": require_k}))
    curve = None
    if marginal and isinstance(model, siting.MCLP) and n_sites:
        curve = siting.marginal_curve(model, time_limit_s=time_limit_s, require_k=require_k)

    cells = _cells_before_after(inputs, od, snap_cells, existing, list(result.sites), max_minutes=max_minutes)
    if competitors is not None:
        cells["served_by_competitor"] = ~cells.index.isin(demand.index)
    sites = _ranked_sites(cand, result)
    snap_new = snap_points(net, sites, max_snap_m=inputs.max_snap_m)
    iso = compute_isochrones(net, sites, snap_new, minutes=(max_minutes,), progress=progress) if len(sites) else \
        _empty_isochrones()
    summary: SitingSummary = {
        "planner_version": __version__,
        "complete": True,
        "population_unit": population_label,
        **_siting_figures(result, demand, objective=objective, max_minutes=max_minutes, mode=mode, tiers=tiers,
                          n_sites=n_sites, target_pct=target_pct, require_k=require_k),
        "sites": [{"rank": int(r["rank"]), "facility_id": str(fid), "name": str(r["name"]), "lon": round(float(r["lon"]), 6),
                   "lat": round(float(r["lat"]), 6), "added_population": float(r["added_population"]),
                   "cumulative_pct": float(r["cumulative_pct"]), "adds_population": bool(r["adds_population"])}
                  for fid, r in sites.sort_values("rank").iterrows()],
        "marginal_curve": [] if curve is None else [
            {"n_sites": int(k), "covered_population": round(float(r["covered_population"]), 1),
             "covered_pct": round(float(r["covered_pct"]), 2), "added_population": round(float(r["added_population"]), 1),
             "adds_population": bool(r["adds_population"]), "status": str(r["status"])} for k, r in curve.iterrows()],
        "counts": {"cells": len(cells), "existing_sites": len(existing), "candidates": len(cand),
                   "candidates_unsnapped": unsnapped_candidates, "od_pairs": len(od)},
        "cell_size_m": cell_size_m,
        "inputs": {**{k: inputs.options.get(k) for k in _INPUT_KEYS},
                   "candidates": str(candidates), "candidates_coords": candidates_coords},
        "credits": summary_credits(inputs.options, case.credits, competitors=competitors, suitability=suitability,
                                   exclusion=[str(e) for e in exclude],
                                   candidates=None if str(candidates) == "nodes"
                                   or str(candidates).startswith("institutions:") else str(candidates)),
        **roles,
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    return SitingRun(case=inputs, net=net, existing=existing, candidates=cand, cells=cells, result=result, curve=curve,
                     sites=sites.sort_values("rank"), isochrones=iso, summary=summary)


def _check_siting_options(candidates: str | os.PathLike[str], *, n_sites: int | None, target_pct: float | None,
                          objective: str, service_tiers: tuple[str, ...] | None, max_minutes: float) -> tuple[str, ...]:
    """Check the siting options before anything is loaded; return the service tiers."""
    if (n_sites is None) == (target_pct is None):
        msg = "give exactly one of --new-sites K or --target-pct P; fix: e.g. --new-sites 10"
        raise InvalidValueError(msg)
    if objective not in ("coverage", "mean-time"):
        msg = f"unknown objective '{objective}'; fix: use coverage or mean-time"
        raise InvalidValueError(msg)
    if target_pct is not None and objective != "coverage":
        msg = "--target-pct finds the fewest sites for a coverage share; fix: drop --objective mean-time"
        raise InvalidValueError(msg)
    tiers = tuple(service_tiers) if service_tiers else settings.TIERS
    unknown = set(tiers) - set(settings.TIERS)
    if unknown:
        msg = f"unknown tier(s) {', '.join(sorted(unknown))}; fix: use {', '.join(settings.TIERS)}"
        raise InvalidValueError(msg)
    check_minutes([max_minutes])
    if not isinstance(candidates, str) or (not candidates.startswith("institutions:") and candidates != "nodes"):
        check_input(candidates, what="candidates", suffixes=TABLE_SUFFIXES + VECTOR_SUFFIXES)
    return tiers


def _siting_candidates(
    case: CaseInputs,
    net: CompiledNetwork,
    inst: gpd.GeoDataFrame,
    existing: gpd.GeoDataFrame,
    *,
    snapped: pd.Series,
    candidates: str | os.PathLike[str],
    candidates_coords: str,
    candidate_spacing_m: float,
    min_spacing_m: float,
    candidate_districts: tuple[str, ...] | None,
) -> tuple[gpd.GeoDataFrame, int]:
    """Return the candidate sites on the network, filtered, in their own id space; and how many were off the network.

    `snapped` says which of `inst` lie on the network.
    """
    max_snap = case.max_snap_m
    if candidates == "nodes":
        cand = candidates_from_network(net, spacing_m=candidate_spacing_m, study_area=case.area)
        if case.districts is not None:
            cand["district"] = assign_districts(cand, case.districts)
    elif isinstance(candidates, str) and candidates.startswith("institutions:"):
        tier = candidates.split(":", 1)[1]
        if tier not in settings.TIERS:
            msg = f"--candidates {candidates}: unknown tier '{tier}'; fix: use institutions:{'|'.join(settings.TIERS)}"
            raise InvalidValueError(msg)
        cand = inst[(inst["tier"] == tier) & snapped.to_numpy()].drop(index=existing.index, errors="ignore")
    else:
        cand = load_candidates(candidates, coords=candidates_coords)
        if case.districts is not None:
            cand["district"] = assign_districts(cand, case.districts)
    cand = filter_candidates(cand, existing=existing, min_spacing_m=min_spacing_m, districts=case.districts,
                             district_names=candidate_districts)
    snap_c = snap_points(net, cand, max_snap_m=max_snap)
    unsnapped_candidates = int((~snap_c["snapped"]).sum())
    cand = cand[snap_c["snapped"].to_numpy()]
    if len(cand) == 0:
        msg = f"no candidate site lies within {max_snap:.0f} m of the road network; fix: check the candidates' coordinates"
        raise InvalidValueError(msg)
    clash = set(cand.index.intersection(existing.index))  # e.g. an institutions id column holding 'cand-1'
    if clash:  # candidates and existing sites are two id spaces, never one index
        cand = cand.set_axis(pd.Index([f"cand:{i}" if i in clash else i for i in cand.index], name="facility_id"))
    return cand, unsnapped_candidates


def _siting_travel_times(case: CaseInputs, net: CompiledNetwork, existing: gpd.GeoDataFrame, cand: gpd.GeoDataFrame, *,
                         max_minutes: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the snapped cells and the OD table from every cell to every existing and candidate site within `max_minutes`."""
    sites_all = pd.concat([existing[["name", "tier", "geometry"]], cand[["name", "geometry"]].assign(tier="candidate")])
    sites_all = gpd.GeoDataFrame(sites_all, geometry="geometry", crs="EPSG:4326")
    snap_s = snap_points(net, sites_all, max_snap_m=case.max_snap_m)
    snap_cells = snap_points(net, case.cells, max_snap_m=case.max_snap_m)
    return snap_cells, od_travel_times(net, snap_cells, snap_s, max_minutes=max_minutes)


def _cells_before_after(case: CaseInputs, od: pd.DataFrame, snap_cells: pd.DataFrame, existing: gpd.GeoDataFrame,
                        chosen: list[Any], *, max_minutes: float) -> gpd.GeoDataFrame:
    """Return per-cell coverage before and after the new sites, from the same OD pairs."""
    within = od[od["travel_time_s"] <= max_minutes * 60.0]
    before_ids = set(within.loc[within["destination_id"].isin(existing.index), "origin_id"])
    after_ids = before_ids | set(within.loc[within["destination_id"].isin(chosen), "origin_id"])
    cells = case.cells.copy()
    cells["covered_before"] = cells.index.isin(list(before_ids))
    cells["covered_after"] = cells.index.isin(list(after_ids))
    reach = cells.index.isin(list(set(od["origin_id"])))
    reached = reach | snap_cells["snapped"].to_numpy()
    cells["change"] = np.where(cells["covered_after"] & ~cells["covered_before"], "newly_covered",
                               np.where(cells["covered_before"], "covered", np.where(reached, "gap", "unreachable")))
    return cells


def _ranked_sites(cand: gpd.GeoDataFrame, result: siting.SitingResult) -> gpd.GeoDataFrame:
    """Return the chosen candidates with their rank, added population and cumulative coverage."""
    sites = cand.loc[list(result.sites)].copy()
    rank = result.ranking
    sites["rank"] = rank["rank"].to_numpy()
    sites["added_population"] = rank["added_population"].round(1).to_numpy()
    sites["cumulative_pct"] = rank["cumulative_pct"].round(2).to_numpy()
    sites["adds_population"] = rank["adds_population"].to_numpy()
    sites["tier"] = sites["tier"] if "tier" in sites else "primary"
    sites["tier"] = sites["tier"].fillna("primary")
    sites["tier_source"] = "proposed"
    return sites


def _siting_figures(result: siting.SitingResult, demand: pd.Series, *, objective: str, max_minutes: float, mode: str,
                    tiers: tuple[str, ...], n_sites: int | None, target_pct: float | None,
                    require_k: bool) -> dict[str, Any]:
    """Return the model, solver and coverage figures of a siting summary."""
    return {
        "model": result.model,
        "objective": objective,
        "solver_status": result.status,
        "objective_value": result.objective,
        "mip_gap": result.mip_gap,
        "build_s": round(result.build_s, 3),
        "solve_s": round(result.solve_s, 3),
        "max_minutes": max_minutes,
        "mode": mode,
        "service_tiers": list(tiers),
        "new_sites_requested": n_sites,
        "target_pct": target_pct,
        "new_sites": len(result.sites),
        "new_sites_adding_population": int(result.ranking["adds_population"].sum()),
        "require_k": require_k,
        "zero_gain_reason": result.zero_gain_reason,
        "population_total": round(float(demand.sum()), 1),
        "population_covered_before": round(result.covered_before, 1),
        "population_covered_after": round(result.covered_after, 1),
        "coverage_pct_before": round(result.covered_pct_before, 2),
        "coverage_pct_after": round(result.covered_pct_after, 2),
        "population_unreachable_by_any_site": round(float(demand.reindex(result.excluded_cells).sum()), 1),
    }


def _siting_model(od: pd.DataFrame, demand: pd.Series, cand: gpd.GeoDataFrame, existing: gpd.GeoDataFrame, *,
                  n_sites: int | None, target_pct: float | None, objective: str, max_minutes: float,
                  capacity_column: str | None, new_site_capacity: float | None,
                  site_weight: pd.Series | None = None) -> Any:
    """Build the siting model the options ask for (`site_weight`: suitability per candidate, or None)."""
    if target_pct is not None:
        return siting.LSCP.from_travel_times(od, demand, cand.index, max_minutes=max_minutes, target_pct=target_pct,
                                             existing=existing.index, site_weight=site_weight)
    if objective == "mean-time":
        return siting.PMedian.from_travel_times(od, demand, cand.index, n_sites=int(n_sites), existing=existing.index,  # type: ignore[arg-type]
                                                site_weight=site_weight)
    if capacity_column is not None:
        cap = pd.concat([existing["capacity"], cand["capacity"] if "capacity" in cand else pd.Series(np.nan, index=cand.index)])
        if new_site_capacity is not None:
            cap.loc[cand.index] = cap.loc[cand.index].fillna(new_site_capacity)
        missing = cap[cap.isna()]
        if len(missing):
            msg = (f"{len(missing)} sites have no capacity (e.g. '{missing.index[0]}'); fix: fill column '{capacity_column}' "
                   "for every existing institution, and give candidates a capacity or --new-site-capacity")
            raise InvalidValueError(msg)
        return siting.CapacitatedMCLP.from_travel_times(od, demand, cand.index, max_minutes=max_minutes, n_sites=int(n_sites),  # type: ignore[arg-type]
                                                        capacity=cap, existing=existing.index, site_weight=site_weight)
    return siting.MCLP.from_travel_times(od, demand, cand.index, max_minutes=max_minutes, n_sites=int(n_sites),  # type: ignore[arg-type]
                                         existing=existing.index, site_weight=site_weight)



def _check_role_inputs(exclude: tuple[str | os.PathLike[str], ...], *, suitability: str | os.PathLike[str] | None,
                      competitors: str | os.PathLike[str] | None) -> None:
    """Check the exclusion, suitability and competitor files exist before anything is loaded."""
    for spec in exclude:
        if not (isinstance(spec, str) and spec.startswith("osm:")):
            check_input(spec, what="exclusion zones", suffixes=VECTOR_SUFFIXES)
    if suitability is not None:
        check_input(suitability, what="suitability", suffixes=RASTER_SUFFIXES + VECTOR_SUFFIXES)
    if competitors is not None:
        check_input(competitors, what="competitors", suffixes=TABLE_SUFFIXES + VECTOR_SUFFIXES)


def _candidate_roles(cand: gpd.GeoDataFrame, *, network: str | os.PathLike[str], exclude: tuple[str | os.PathLike[str], ...],
                     suitability: str | os.PathLike[str] | None, suitability_column: str | None,
                     ) -> tuple[gpd.GeoDataFrame, pd.Series | None, dict[str, Any]]:
    """Remove candidates in exclusion zones or of suitability 0; return them, their weights and the summary figures."""
    figures: dict[str, Any] = {}
    if exclude:
        cand, removed = exclude_candidates(cand, load_exclusion_zones(exclude, network=network))
        figures["candidates_excluded"] = [{"source": src, "candidates_removed": n} for src, n in removed.items()]
    if suitability is None:
        return cand, None, figures
    weight, n_default = candidate_suitability(cand, suitability, column=suitability_column)
    zero = weight <= 0
    if zero.all():
        msg = (f"{suitability}: every one of the {len(cand)} candidate sites has suitability 0; "
               "fix: check the weights (0 excludes a candidate)")
        raise InvalidValueError(msg)
    cand, weight = cand[~zero.to_numpy()], weight[~zero]
    figures["suitability"] = {"source": str(suitability), "column": suitability_column, "candidates_removed": int(zero.sum()),
                              "candidates_default_weight": n_default, "weight_min": round(float(weight.min()), 6),
                              "weight_max": round(float(weight.max()), 6)}
    return cand, weight, figures


def _competitor_demand(case: CaseInputs, net: CompiledNetwork, snap_cells: pd.DataFrame, od: pd.DataFrame,
                       existing: gpd.GeoDataFrame, competitors: str | os.PathLike[str], *, coords: str,
                       max_minutes: float) -> tuple[pd.Series, dict[str, Any]]:
    """Return the demand without the cells competitors serve (within T of one and of no existing site), and the figures."""
    comp = load_competitors(competitors, coords=coords)
    snap = snap_points(net, comp, max_snap_m=case.max_snap_m)
    on_net = comp[snap["snapped"].to_numpy()]
    od_c = od_travel_times(net, snap_cells, snap, max_minutes=max_minutes) if len(on_net) else od.iloc[:0]
    within = od[(od["travel_time_s"] <= max_minutes * 60.0) & od["destination_id"].isin(existing.index)]
    ours = set(within["origin_id"])
    theirs = set(od_c.loc[od_c["travel_time_s"] <= max_minutes * 60.0, "origin_id"]) - ours
    demand = case.cells["population"]
    taken = demand.index.isin(list(theirs))
    figures = {
        "population_served_by_competitors": round(float(demand[taken].sum()), 1),
        "competitors": {"source": str(competitors), "sites": len(comp), "sites_unsnapped": len(comp) - len(on_net),
                        "cells": int(taken.sum()), "excluded_from_figures": True},
    }
    return demand[~taken], figures
