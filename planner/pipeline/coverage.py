"""The coverage pipeline: who reaches an institution within each threshold.

:func:`run_coverage` (keyword options) and :func:`run_case` (a built
:class:`~planner.pipeline.Case`) are what ``planner coverage``, batch and the notebooks call. They
return a frozen :class:`CoverageRun` holding every intermediate result;
:func:`planner.exports.write_coverage_outputs` writes it. :func:`analyse_case`
computes coverage for a loaded (and possibly edited) case, as scenarios do.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .. import settings
from .._errors import InvalidValueError, UnreachableFacilityError
from .._validate import check_minutes
from .._version import __version__
from ..capacity import Allocation, allocate_cells
from ..coverage import coverage_by_cell, coverage_summary
from ..isochrones import compute_isochrone_layers
from ..network import RoadNetwork, network_stats, roads_from_graph
from ..norms import Norms
from ..travel_time import CompiledNetwork, compile_network, snap_points
from . import resources
from .case import _INPUT_KEYS, Case, CaseInputs, _empty_isochrones, analysis_options, summary_credits
from .summary import CoverageSummary

if TYPE_CHECKING:
    import networkx as nx

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoverageRun:
    """Everything one coverage run produced.

    Attributes
    ----------
    roads, net
        The road network (on arrays; :attr:`graph` builds a networkx graph
        on request) and its compiled form.
    institutions
        Institutions with ``snap_m`` and ``snap_status`` added.
    cells
        Per-cell coverage (see :func:`planner.coverage.coverage_by_cell`).
    isochrones
        Isochrone polygons (empty if not computed).
    districts
        District polygons with coverage columns, or None.
    summary
        The report figures, written as ``summary.json`` (see
        :class:`planner.pipeline.summary.CoverageSummary`).
    isochrones_dissolved
        The isochrones dissolved per threshold, traced from the same reached
        cells (see :func:`planner.isochrones.compute_isochrone_layers`), or
        None if not computed.
    allocation
        The capacity-limited allocation (:class:`planner.capacity.Allocation`) when the case has a
        capacity column or its norms file per-tier capacities, else None; ``summary["capacity"]`` holds its figures.
    norms
        The norms checked per district (:func:`planner.norms.check_norms`' table), or None
        (no boundaries, or norms turned off); ``summary["norms"]`` holds the same rows.
    """

    roads: RoadNetwork
    net: CompiledNetwork
    institutions: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    isochrones: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame | None
    summary: CoverageSummary
    isochrones_dissolved: gpd.GeoDataFrame | None = None
    allocation: Allocation | None = None
    norms: pd.DataFrame | None = None

    @cached_property
    def residual_unserved(self) -> gpd.GeoDataFrame | None:
        """Cells with persons left unserved under capacities, split out of reach / over capacity (None without)."""
        return None if self.allocation is None else resources.residual_unserved(self.cells, self.allocation)

    @cached_property
    def graph(self) -> nx.MultiDiGraph:
        """The road network as an OSMnx-style graph, built on request (``roads.to_networkx()``, then kept)."""
        return self.roads.to_networkx()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the run without the graph built on request."""
        return {k: v for k, v in self.__dict__.items() if k not in ("graph", "residual_unserved")}


def analyse_case(
    case: CaseInputs,
    *,
    roads: RoadNetwork | None = None,
    graph: nx.MultiDiGraph | RoadNetwork | None = None,
    institutions: gpd.GeoDataFrame | None = None,
    minutes: tuple[float, ...] | None = None,
    speed_kph: float | None = None,
    access_speed_kph: float | None = None,
    population_label: str = "population",
    with_isochrones: bool = True,
    progress: bool = False,
    capacity_column: str | None = None,
    persons_per_unit: float | None = None,
    allocation: str = "optimal",
    norms: str | os.PathLike[str] | Norms | bool | None = None,
    credits: Any = None,
) -> CoverageRun:
    """Compute coverage for a loaded case, optionally with an edited network or institutions.

    Parameters
    ----------
    case
        Result of :func:`planner.pipeline.load_case`.
    roads
        A what-if network (e.g. with roads closed or other speeds, see
        :func:`planner.network.close_roads` and :func:`~planner.network.with_speed`);
        the case's own network by default.
    graph
        The same as `roads`, given as a networkx graph (converted with
        :func:`planner.network.roads_from_graph`) or as a RoadNetwork; kept
        for code written before `roads`.
    institutions
        What-if institutions (added, removed, re-tiered); the case's own by
        default. New rows need ``name``, ``tier``, ``tier_source``,
        ``capacity``, ``lon``, ``lat`` and a point geometry.
    minutes
        Thresholds in minutes; (5, 10, 15) by default.
    speed_kph
        The speed override the network was built with, for the summary.
    access_speed_kph
        Speed of residents' straight-line access legs in km/h; walking speed
        by default (for ``walk`` with `speed_kph`, that speed).
    population_label, with_isochrones, progress
        As in :func:`run_coverage`.
    capacity_column, persons_per_unit, allocation
        Capacity-limited coverage at the largest threshold (see :class:`~planner.pipeline.Case`): each
        institution serves at most its capacity; ``run.allocation`` and ``summary["capacity"]``. A norms
        file with ``[capacity_defaults]`` (:mod:`planner.norms`) gives per-tier capacities in persons for
        the rows whose value is empty, or for every row without `capacity_column`.
    norms
        Norms checked per district when the case has boundaries: a norms file, loaded
        :class:`~planner.norms.Norms`, None for the shipped default, or False for none.
    credits
        The user's credits of the inputs, role -> text (see :attr:`~planner.pipeline.Case.credits`); the
        summary's ``credits`` list them with those found for the input files.

    Returns
    -------
    run
        The results; ``run.summary`` holds the report figures.
    """
    t0 = time.perf_counter()
    mins = check_minutes(settings.THRESHOLDS_MINUTES if minutes is None else minutes)
    if graph is not None:
        if roads is not None:
            msg = "analyse_case: give roads= or graph=, not both"
            raise TypeError(msg)
        roads = graph if isinstance(graph, RoadNetwork) else roads_from_graph(graph)
    roads = case.roads if roads is None else roads
    inst = (case.institutions if institutions is None else institutions).copy()
    mode = roads.mode
    speed_kph = case.options.get("speed_kph") if speed_kph is None else speed_kph
    if access_speed_kph is None and mode == "walk" and speed_kph is not None:
        access_speed_kph = speed_kph
    access_kph = access_speed_kph or settings.ACCESS_SPEED_KPH or settings.WALK_SPEED_KPH
    net = case.net if roads is case.roads else compile_network(roads)

    snap_f = _snap_institutions(case, net, inst, access_kph=access_kph)
    snap_c = snap_points(net, case.cells, max_snap_m=case.max_snap_m, access_speed_kph=access_kph)
    cov = coverage_by_cell(net, case.cells, inst, max_snap_m=case.max_snap_m, institutions_snapped=snap_f,
                           access_speed_kph=access_kph, cells_snapped=snap_c)
    summary = coverage_summary(cov, inst, snap_f, minutes=mins, district_totals=case.district_totals)
    # the cells coverage evaluates, snapped the same way, so every cell it counts lies inside the polygons
    layers = compute_isochrone_layers(net, inst, snap_f, minutes=mins, samples=case.cells, samples_snapped=snap_c,
                                      max_snap_m=case.max_snap_m, access_speed_kph=access_kph,
                                      progress=progress) if with_isochrones else None
    iso = layers.per_institution if layers is not None else _empty_isochrones()
    dist_gdf = _district_layer(case, summary)
    summary = _coverage_report(case, roads, net, inst, summary, mode=mode, speed_kph=speed_kph, access_kph=access_kph,
                               population_label=population_label, t0=t0, credits=credits)
    loaded = resources.run_norms(norms)
    alloc = _allocation(case, net, inst, cov, summary, cells_snapped=snap_c, institutions_snapped=snap_f,
                        max_minutes=max(mins), capacity_column=capacity_column, persons_per_unit=persons_per_unit,
                        allocation=allocation, tier_defaults=loaded.tier_capacities if loaded is not None else {})
    checked = loaded if case.districts is not None and loaded is not None and loaded.norms else None
    norms_table = None
    if checked is not None:
        norms_table, summary["norms"] = resources.norms_check(cov, inst, checked, file=case.options.get("institutions"))
    return CoverageRun(roads=roads, net=net, institutions=inst, cells=cov, isochrones=iso, districts=dist_gdf, summary=summary,
                       isochrones_dissolved=layers.dissolved if layers is not None else None, allocation=alloc,
                       norms=norms_table)


def _allocation(case: CaseInputs, net: CompiledNetwork, inst: gpd.GeoDataFrame, cov: gpd.GeoDataFrame,
                summary: dict[str, Any], *, cells_snapped: pd.DataFrame, institutions_snapped: pd.DataFrame,
                max_minutes: float, capacity_column: str | None, persons_per_unit: float | None, allocation: str,
                tier_defaults: dict[str, float]) -> Allocation | None:
    """Allocate under capacities (a column, or the norms file's per-tier ones); add ``summary["capacity"]``.

    Returns None, and adds nothing, without capacities.
    """
    if capacity_column is None and not tier_defaults:
        if allocation != "optimal":
            msg = (f"allocation '{allocation}' needs capacities; fix: give capacity_column (--capacity-col) or "
                   "[capacity_defaults] in the norms file")
            raise InvalidValueError(msg)
        return None
    capacity = resources.institution_capacity(case, inst, column=capacity_column, persons_per_unit=persons_per_unit,
                                              tier_defaults=tier_defaults)
    alloc = allocate_cells(net, case.cells, institutions=inst, capacity=capacity, max_minutes=max_minutes,
                           method=allocation, cells_snapped=cells_snapped,  # type: ignore[arg-type]
                           institutions_snapped=institutions_snapped)
    summary["capacity"] = resources.capacity_block(alloc, cov, inst, column=capacity_column,
                                                   persons_per_unit=persons_per_unit, tier_defaults=tier_defaults)
    return alloc


def _snap_institutions(case: CaseInputs, net: CompiledNetwork, inst: gpd.GeoDataFrame, *,
                       access_kph: float) -> pd.DataFrame:
    """Snap the institutions to the network; add ``snap_m`` and ``snap_status`` to `inst` (in place)."""
    max_snap = case.max_snap_m
    snap_f = snap_points(net, inst, max_snap_m=max_snap, access_speed_kph=access_kph)
    inst["snap_m"] = snap_f["snap_m"].round(1)
    shapely.prepare(case.area)
    inside = shapely.contains_xy(case.area, inst["lon"].to_numpy(), inst["lat"].to_numpy())
    inst["snap_status"] = np.where(snap_f["snapped"], "snapped", np.where(inside, "unsnapped", "outside_study_area"))
    if not snap_f["snapped"].any():
        msg = (f"{case.options.get('institutions')}: none of the {len(inst)} institutions lies within {max_snap:.0f} m of the "
               f"road network (nearest is {snap_f['snap_m'].min():.0f} m away); fix: check the coordinates' datum "
               "(--coords gcj02 or bd09) and that the network covers the same place")
        raise UnreachableFacilityError(msg)
    far = snap_f["snapped"] & (snap_f["snap_m"] > settings.SNAP_WARN_M)
    if far.any():
        logger.warning("%d institutions were snapped from more than %.0f m away; check their coordinates",
                       int(far.sum()), settings.SNAP_WARN_M)
    return snap_f


def _district_layer(case: CaseInputs, summary: dict[str, Any]) -> gpd.GeoDataFrame | None:
    """Return the case's district polygons joined with their coverage figures, or None without boundaries."""
    if case.districts is None:
        return None
    by = pd.DataFrame(summary["by_district"]).set_index("district") if summary["by_district"] else pd.DataFrame()
    dist_gdf = case.districts.join(by, on="name") if len(by) else case.districts
    return dist_gdf[dist_gdf["name"].isin(by.index)] if len(by) else dist_gdf


def _coverage_report(case: CaseInputs, roads: RoadNetwork, net: CompiledNetwork, inst: gpd.GeoDataFrame,
                     summary: dict[str, Any], *,
                     mode: str, speed_kph: float | None, access_kph: float, population_label: str,
                     t0: float, credits: Any = None) -> CoverageSummary:
    """Return the summary of a coverage run: `summary` with the run's options, study area, network and inputs."""
    n_out = int((inst["snap_status"] == "outside_study_area").sum())
    summary["institutions"]["outside_study_area"] = n_out
    summary["institutions"]["unsnapped_inside_study_area"] = summary["institutions"]["unsnapped"] - n_out
    for row in summary["institutions"]["unsnapped_list"]:
        row["status"] = inst.at[row["facility_id"], "snap_status"]
    max_snap = case.max_snap_m
    area_km2 = float(gpd.GeoSeries([case.area], crs="EPSG:4326").to_crs(net.crs).area.iloc[0] / 1e6)
    return {
        "planner_version": __version__,
        "complete": True,
        "population_unit": population_label,
        **summary,
        "mode": mode,
        "speeds_kph": _speeds_used(mode, speed_kph),
        "access_speed_kph": access_kph,
        "max_snap_m": max_snap,
        "study_area": {
            "definition": f"convex hull of the road network buffered by {max_snap:.0f} m"
            + (", within the boundaries" if case.districts is not None else ""),
            "area_km2": round(area_km2, 2),
            "population_input_total": round(case.population_input_total, 1),
            "population_outside_study_area": round(max(case.population_input_total - summary["population_total"], 0.0), 1),
        },
        "network": network_stats(roads),
        "inputs": {k: case.options.get(k) for k in _INPUT_KEYS},
        "credits": summary_credits(case.options, credits),
        "runtime_s": round(time.perf_counter() - t0, 2),
    }


def run_coverage(
    network: str | os.PathLike[str],
    institutions: str | os.PathLike[str],
    population: str | os.PathLike[str],
    *,
    boundaries: str | os.PathLike[str] | None = None,
    mode: str = "walk",
    speed_kph: float | None = None,
    minutes: tuple[float, ...] | None = None,
    coords: str = "wgs84",
    population_coords: str = "wgs84",
    max_snap_m: float | None = None,
    cell_size_m: float | None = None,
    population_label: str = "population",
    with_isochrones: bool = True,
    progress: bool = False,
    capacity_column: str | None = None,
    persons_per_unit: float | None = None,
    allocation: str = "optimal",
    norms: str | os.PathLike[str] | None = None,
    norms_enabled: bool = True,
    credits: Any = None,
) -> CoverageRun:
    """Run the 15-minute coverage analysis on files.

    Parameters
    ----------
    network
        OSM extract or road-centreline layer.
    institutions
        Institutions table, layer or OSM extract.
    population
        Population raster, table or layer.
    boundaries
        District polygons for per-district figures (optional).
    mode
        ``walk``, ``ebike`` or ``drive``.
    speed_kph
        One speed for every road, in km/h (overrides per-class speeds; for
        ``walk`` it is also the speed of the access legs).
    minutes
        Thresholds in minutes; (5, 10, 15) by default.
    coords
        Datum of the institutions' coordinates (tables and layers; OSM files
        are WGS-84): ``wgs84``, ``gcj02`` (Amap) or ``bd09`` (Baidu).
    population_coords
        Datum of the population's coordinates (tables and layers; rasters
        are read in their own CRS).
    max_snap_m
        Largest distance in metres from a point to a road.
    cell_size_m
        Demand cell size in metres (see :func:`planner.demand.load_population`).
    population_label
        What the population counts, shown with totals (e.g. "persons aged
        20+ (WorldPop)").
    with_isochrones
        Compute isochrone polygons.
    progress
        Show progress bars.
    capacity_column, persons_per_unit, allocation, norms, norms_enabled
        Capacity-limited coverage and norms per district (see :class:`~planner.pipeline.Case`).
    credits
        The user's credits of the inputs, e.g. ``{"population": "统计局 census 2020"}`` (see
        :attr:`~planner.pipeline.Case.credits`).

    Returns
    -------
    run
        The results; ``run.summary`` holds the report figures.

    Raises
    ------
    PlannerError
        For any unusable input, with the file and the fix.
    """
    case = Case(network=network, institutions=institutions, population=population, boundaries=boundaries, mode=mode,
                speed_kph=speed_kph, minutes=minutes, coords=coords, population_coords=population_coords,
                max_snap_m=max_snap_m, cell_size_m=cell_size_m, population_label=population_label,
                isochrones=with_isochrones, capacity_column=capacity_column, persons_per_unit=persons_per_unit,
                allocation=allocation, norms=norms, norms_enabled=norms_enabled, credits=credits or ())
    return run_case(case, progress=progress)


def run_case(case: Case, *, progress: bool = False) -> CoverageRun:
    """Run the coverage analysis of a :class:`~planner.pipeline.Case`: load its inputs, then compute.

    Parameters
    ----------
    case
        What to analyse.
    progress
        Show progress bars.

    Returns
    -------
    run
        The results; ``run.summary`` holds the report figures.

    Raises
    ------
    PlannerError
        For any unusable input, with the file and the fix.
    """
    t0 = time.perf_counter()
    loaded = case.load()
    run = analyse_case(loaded, minutes=case.minutes, population_label=case.population_unit,
                       with_isochrones=case.isochrones, progress=progress, **analysis_options(case))
    run.summary["runtime_s"] = round(time.perf_counter() - t0, 2)
    return run


def _speeds_used(mode: str, speed_kph: float | None) -> dict[str, float]:
    if speed_kph is not None:
        return {"all_roads": float(speed_kph)}
    if mode == "walk":
        return {"all_roads": settings.WALK_SPEED_KPH}
    if mode == "ebike":
        return {"all_roads": settings.EBIKE_SPEED_KPH}
    return {**settings.DRIVE_SPEEDS_KPH, "untagged": settings.DRIVE_DEFAULT_SPEED_KPH}

