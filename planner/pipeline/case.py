"""The coverage job end to end: read inputs, route, summarise, write outputs.

:func:`run_coverage` is what ``planner coverage`` and the notebooks call. It
returns a :class:`CoverageRun` holding every intermediate result, and
:func:`write_coverage_outputs` writes them atomically:

* ``summary.json`` - the figures for a report;
* ``cells.gpkg`` - every demand cell with its travel times and status;
* ``institutions.gpkg`` - institutions with tier, tier source and snap status;
* ``isochrones.gpkg`` - per institution and threshold;
* ``map.html`` - the interactive map;
* ``map.png`` - a static map for reports.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from . import __version__, settings
from ._errors import InvalidValueError, MissingColumnError, PlannerError, UnreachableFacilityError
from ._validate import check_minutes, check_mode, find_column
from .coverage import assign_districts, compute_study_area, coverage_by_cell, coverage_summary
from .demand import load_population, population_by_zone
from .institutions import load_institutions
from .io import (
    OSM_SUFFIXES,
    RASTER_SUFFIXES,
    TABLE_SUFFIXES,
    VECTOR_SUFFIXES,
    check_input,
    output_dir,
    read_vector,
    suffix_of,
    write_csv,
    write_json,
)
from .isochrones import compute_isochrones
from .network import load_network, network_stats
from .travel_time import CompiledNetwork, compile_network, snap_points

logger = logging.getLogger(__name__)

DISTRICT_NAME_ALIASES = ("name", "名称", "district", "区县", "name_zh", "locname", "NAME")
_INPUT_KEYS = ("network", "institutions", "population", "boundaries", "coords", "population_coords")  # summary "inputs"


@dataclass
class CoverageRun:
    """Everything one coverage run produced.

    Attributes
    ----------
    graph, net
        The road network and its compiled form.
    institutions
        Institutions with ``snap_m`` and ``snap_status`` added.
    cells
        Per-cell coverage (see :func:`planner.coverage.coverage_by_cell`).
    isochrones
        Isochrone polygons (empty if not computed).
    districts
        District polygons with coverage columns, or None.
    summary
        The report figures (see :func:`planner.coverage.coverage_summary`).
    """

    graph: nx.MultiDiGraph
    net: CompiledNetwork
    institutions: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    isochrones: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame | None
    summary: dict[str, Any] = field(default_factory=dict)


def load_boundaries(path: str | os.PathLike[str], *, name_column: str | None = None) -> gpd.GeoDataFrame:
    """Load district polygons with a ``name`` column, in EPSG:4326.

    Parameters
    ----------
    path
        Polygon layer.
    name_column
        Column holding names; found among common aliases by default.

    Returns
    -------
    districts
        Columns ``name`` and ``geometry``.
    """
    gdf = read_vector(path, what="boundaries")
    if not gdf.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        msg = f"{path}: the boundaries layer must hold polygons; fix: give district polygons"
        raise InvalidValueError(msg)
    col = find_column(gdf, DISTRICT_NAME_ALIASES, what="district name", file=path, given=name_column)
    out = gpd.GeoDataFrame({"name": gdf[col].astype(str).to_numpy()}, geometry=gdf.geometry.to_numpy(), crs=gdf.crs)
    return out.to_crs("EPSG:4326")


@dataclass
class CaseInputs:
    """Loaded inputs of a coverage case, before any what-if edit.

    The study area and the demand cells come from the unedited network, so
    that a what-if (closing a road, say) is compared on the same cells.

    Attributes
    ----------
    graph
        Road network for the mode (unedited).
    institutions
        Institutions, with ``district`` when boundaries are given.
    cells
        Demand cells in the study area, with ``district`` when boundaries are given.
    districts
        District polygons, or None.
    district_totals
        Population of each whole district (raster population only), or None.
    area
        Study area polygon (EPSG:4326).
    population_input_total
        Population of the whole population input, inside the study area or not.
    max_snap_m
        Snap distance in metres used for the study area.
    options
        The options the case was loaded with (paths, mode, speeds, datum).
    """

    graph: nx.MultiDiGraph
    institutions: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame | None
    district_totals: pd.Series | None
    area: shapely.Geometry
    population_input_total: float
    max_snap_m: float
    options: dict[str, Any] = field(default_factory=dict)


def load_case(
    network: str | os.PathLike[str],
    institutions: str | os.PathLike[str],
    population: str | os.PathLike[str],
    *,
    boundaries: str | os.PathLike[str] | None = None,
    mode: str = "walk",
    speed_kph: float | None = None,
    coords: str = "wgs84",
    population_coords: str = "wgs84",
    max_snap_m: float | None = None,
    cell_size_m: float | None = None,
) -> CaseInputs:
    """Load and validate the inputs of a coverage case.

    Institutions declared in one datum that fit the roads far better in
    another get a warning naming the fix (see :func:`planner.datum.suggest_datum`).

    Parameters
    ----------
    network, institutions, population, boundaries, mode, speed_kph, coords, population_coords, max_snap_m, cell_size_m
        As in :func:`run_coverage`.

    Returns
    -------
    case
        The loaded inputs.

    Raises
    ------
    PlannerError
        For any unusable input, with the file and the fix.
    """
    check_mode(mode)
    max_snap = settings.MAX_SNAP_M if max_snap_m is None else float(max_snap_m)
    if not (0 < max_snap <= 5000):
        msg = f"snap distance {max_snap} m is outside 0-5,000 m; fix: e.g. --max-snap-m 500"
        raise InvalidValueError(msg)
    # check every path first, so a typo does not cost a network build before it is reported
    check_input(network, what="road network", suffixes=OSM_SUFFIXES + VECTOR_SUFFIXES)
    check_input(institutions, what="institutions", suffixes=TABLE_SUFFIXES + VECTOR_SUFFIXES + OSM_SUFFIXES)
    check_input(population, what="population", suffixes=RASTER_SUFFIXES + TABLE_SUFFIXES + VECTOR_SUFFIXES)
    if boundaries is not None:
        check_input(boundaries, what="boundaries", suffixes=VECTOR_SUFFIXES)
    if cell_size_m is not None and not (1 <= cell_size_m <= 10_000):
        msg = f"cell size {cell_size_m} m is outside 1-10,000 m; fix: e.g. --cell-size 250"
        raise InvalidValueError(msg)

    inst = load_institutions(institutions, coords=coords)
    districts = load_boundaries(boundaries) if boundaries is not None else None
    G = load_network(network, mode=mode, speed_kph=speed_kph)
    net = compile_network(G)
    area = compute_study_area(net, boundaries=districts, buffer_m=max_snap)
    datum_warning = None
    if suffix_of(institutions) not in OSM_SUFFIXES:  # OSM files are WGS-84 whatever --coords says
        datum_warning = check_datum(net, inst, declared=coords, area=area, what=f"{institutions}: the institutions")
    cells = load_population(population, study_area=area, cell_size_m=cell_size_m, coords=population_coords)
    input_total = float(cells.attrs.get("population_input_total", cells["population"].sum()))
    district_totals = None
    if districts is not None:
        cells["district"] = assign_districts(cells, districts)
        inst["district"] = assign_districts(inst, districts)
        if suffix_of(population) in RASTER_SUFFIXES:
            district_totals = population_by_zone(population, districts)
    options = {"network": str(network), "institutions": str(institutions), "population": str(population),
               "boundaries": None if boundaries is None else str(boundaries), "coords": coords,
               "population_coords": population_coords, "mode": mode, "speed_kph": speed_kph, "cell_size_m": cell_size_m,
               "datum_warning": datum_warning}
    return CaseInputs(graph=G, institutions=inst, cells=cells, districts=districts, district_totals=district_totals,
                      area=area, population_input_total=input_total, max_snap_m=max_snap, options=options)


def check_datum(
    net: CompiledNetwork,
    points: gpd.GeoDataFrame,
    *,
    declared: str,
    area: shapely.Geometry | None = None,
    what: str = "the institutions",
    option: str = "--coords",
) -> str | None:
    """Warn when points declared in one datum fit the roads far better read in another.

    Compares the median distance to the nearest road of the points as
    declared with that of each other datum's reading (see
    :func:`planner.datum.suggest_datum`), using the bulk snapping of
    :func:`planner.travel_time.snap_points`.

    Parameters
    ----------
    net
        Compiled network.
    points
        Loaded points (WGS-84 ``lon``/``lat``, converted from `declared`).
    declared
        The datum the points were declared in.
    area
        Study area (WGS-84); only points inside it are compared.
    what
        Start of the message, naming the file and the points.
    option
        Option that sets the datum, named in the fix.

    Returns
    -------
    message
        The warning (also logged), or None.
    """
    from . import datum

    lon, lat = points["lon"].to_numpy(dtype=float), points["lat"].to_numpy(dtype=float)
    if area is not None:
        shapely.prepare(area)
        keep = shapely.contains_xy(area, lon, lat)
        lon, lat = lon[keep], lat[keep]
    if len(lon) < datum.DATUM_CHECK_MIN_POINTS:
        return None

    def distance_m(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        pts = gpd.GeoSeries.from_xy(x, y, crs="EPSG:4326")
        return snap_points(net, pts, max_snap_m=settings.MAX_SNAP_M)["snap_m"].to_numpy()

    given_lon, given_lat = datum.from_wgs84(lon, lat, datum=declared)  # the coordinates as written in the file
    hint = datum.suggest_datum(given_lon, given_lat, declared=declared, distance_m=distance_m)
    if hint is None:
        return None
    msg = hint.message(what, option=option)
    logger.warning("%s", msg)
    return msg


def analyse_case(
    case: CaseInputs,
    *,
    graph: nx.MultiDiGraph | None = None,
    institutions: gpd.GeoDataFrame | None = None,
    minutes: tuple[float, ...] | None = None,
    speed_kph: float | None = None,
    access_speed_kph: float | None = None,
    population_label: str = "population",
    with_isochrones: bool = True,
    progress: bool = False,
) -> CoverageRun:
    """Compute coverage for a loaded case, optionally with an edited network or institutions.

    Parameters
    ----------
    case
        Result of :func:`load_case`.
    graph
        A what-if network (e.g. with roads closed or other speeds); the
        case's own network by default.
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

    Returns
    -------
    run
        The results; ``run.summary`` holds the report figures.
    """
    t0 = time.perf_counter()
    mins = check_minutes(settings.THRESHOLDS_MINUTES if minutes is None else minutes)
    G = case.graph if graph is None else graph
    inst = (case.institutions if institutions is None else institutions).copy()
    mode = str(G.graph.get("mode", case.options.get("mode", "walk")))
    speed_kph = case.options.get("speed_kph") if speed_kph is None else speed_kph
    if access_speed_kph is None and mode == "walk" and speed_kph is not None:
        access_speed_kph = speed_kph
    access_kph = access_speed_kph or settings.ACCESS_SPEED_KPH or settings.WALK_SPEED_KPH
    max_snap = case.max_snap_m
    net = compile_network(G)

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

    cov = coverage_by_cell(net, case.cells, inst, max_snap_m=max_snap, institutions_snapped=snap_f,
                           access_speed_kph=access_kph)
    summary = coverage_summary(cov, inst, snap_f, minutes=mins, district_totals=case.district_totals)
    iso = compute_isochrones(net, inst, snap_f, minutes=mins, progress=progress) if with_isochrones else \
        gpd.GeoDataFrame({"facility_id": [], "minutes": []}, geometry=[], crs="EPSG:4326")

    dist_gdf = None
    if case.districts is not None:
        by = pd.DataFrame(summary["by_district"]).set_index("district") if summary["by_district"] else pd.DataFrame()
        dist_gdf = case.districts.join(by, on="name") if len(by) else case.districts
        dist_gdf = dist_gdf[dist_gdf["name"].isin(by.index)] if len(by) else dist_gdf

    n_out = int((inst["snap_status"] == "outside_study_area").sum())
    summary["institutions"]["outside_study_area"] = n_out
    summary["institutions"]["unsnapped_inside_study_area"] = summary["institutions"]["unsnapped"] - n_out
    for row in summary["institutions"]["unsnapped_list"]:
        row["status"] = inst.at[row["facility_id"], "snap_status"]
    area_km2 = float(gpd.GeoSeries([case.area], crs="EPSG:4326").to_crs(net.crs).area.iloc[0] / 1e6)
    summary = {
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
        "network": network_stats(G),
        "inputs": {k: case.options.get(k) for k in _INPUT_KEYS},
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    return CoverageRun(graph=G, net=net, institutions=inst, cells=cov, isochrones=iso, districts=dist_gdf, summary=summary)


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
    mins = check_minutes(settings.THRESHOLDS_MINUTES if minutes is None else minutes)
    case = load_case(network, institutions, population, boundaries=boundaries, mode=mode, speed_kph=speed_kph,
                     coords=coords, population_coords=population_coords, max_snap_m=max_snap_m, cell_size_m=cell_size_m)
    run = analyse_case(case, minutes=mins, population_label=population_label, with_isochrones=with_isochrones,
                       progress=progress)
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


def write_coverage_outputs(
    run: CoverageRun,
    out: str | os.PathLike[str],
    *,
    title: str | None = None,
    basemap: str = "osm",
    offline: bool = False,
    force: bool = False,
) -> Path:
    """Write a run's tables, layers and map into `out`, atomically.

    Parameters
    ----------
    run
        Result of :func:`run_coverage`.
    out
        Output folder.
    title
        Map title.
    basemap
        Basemap of ``map.html``: ``osm``, ``amap`` (overlays moved to GCJ-02),
        ``tianditu`` (needs ``TIANDITU_KEY``) or ``none``.
    offline
        Inline Leaflet into ``map.html`` so that it opens with no network.
    force
        Replace `out` even if it holds files planner did not write (see
        :func:`planner.io.check_output_dir`).

    Returns
    -------
    out
        The output folder.

    Raises
    ------
    InvalidValueError
        For an unknown basemap or a missing Tianditu key (before anything is written).
    OutputFolderError
        If `out` would delete an input or foreign files, or cannot be written
        (see :func:`planner.io.output_dir`); earlier results stay as they were.
    """
    from .maps import get_basemap, render_coverage_map, render_static_map, save_map

    get_basemap(basemap)  # fail before writing anything
    with output_dir(out, kind="coverage", inputs=run.summary.get("inputs", {}), force=force) as tmp:
        _write_layers(run, tmp)
        m = render_coverage_map(run, title=title, basemap=basemap, offline=offline)
        save_map(m, tmp / "map.html")
        render_static_map(run, str(tmp / "map.png"), title=title)
        write_json(run.summary, tmp / "summary.json")
    return Path(out)


def _write_layers(run: CoverageRun, folder: Path) -> None:
    cells = run.cells.reset_index()
    cells.to_file(folder / "cells.gpkg", layer="cells", driver="GPKG")
    inst = run.institutions.reset_index()
    inst.to_file(folder / "institutions.gpkg", layer="institutions", driver="GPKG")
    iso = run.isochrones
    if len(iso):
        iso.to_file(folder / "isochrones.gpkg", layer="isochrones", driver="GPKG")
    else:
        gpd.GeoDataFrame({"facility_id": pd.Series([], dtype=str), "minutes": pd.Series([], dtype=float)},
                         geometry=gpd.GeoSeries([], crs="EPSG:4326")).to_file(folder / "isochrones.gpkg", layer="isochrones", driver="GPKG")
    if run.districts is not None:
        run.districts.to_file(folder / "districts.gpkg", layer="districts", driver="GPKG")


# ------------------------------------------------------------------------------------------- siting


@dataclass
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
        The report figures.
    """

    case: CaseInputs
    net: CompiledNetwork
    existing: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    result: Any
    curve: pd.DataFrame | None
    sites: gpd.GeoDataFrame
    isochrones: gpd.GeoDataFrame
    summary: dict[str, Any] = field(default_factory=dict)


SITING_CELL_SIZE_M = 500.0  # metres; default demand cell for siting models (keeps the MIP small)


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
    cell_size_m: float | None = SITING_CELL_SIZE_M,
    service_tiers: tuple[str, ...] | None = None,
    candidate_spacing_m: float = 500.0,
    min_spacing_m: float = 0.0,
    candidate_districts: tuple[str, ...] | None = None,
    capacity_column: str | None = None,
    new_site_capacity: float | None = None,
    marginal: bool = True,
    require_k: bool = False,
    time_limit_s: float = 300.0,
    population_label: str = "population",
    progress: bool = False,
) -> SitingRun:
    """Suggest new branch sites (分支机构) with the existing institutions kept open.

    Parameters
    ----------
    network, institutions, population, boundaries, mode, speed_kph, coords, population_coords, max_snap_m
        As in :func:`run_coverage`.
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
    from . import siting
    from .candidates import candidates_from_network, filter_candidates, load_candidates
    from .travel_time import od_travel_times

    t0 = time.perf_counter()
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

    case = load_case(network, institutions, population, boundaries=boundaries, mode=mode, speed_kph=speed_kph,
                     coords=coords, population_coords=population_coords, max_snap_m=max_snap_m, cell_size_m=cell_size_m)
    net = compile_network(case.graph)
    max_snap = case.max_snap_m
    inst = case.institutions
    if capacity_column is not None:
        inst = load_institutions(institutions, coords=coords, capacity_column=capacity_column)
        if case.districts is not None:
            inst["district"] = assign_districts(inst, case.districts)
    snap_i = snap_points(net, inst, max_snap_m=max_snap)
    existing = inst[inst["tier"].isin(tiers) & snap_i["snapped"].to_numpy()]

    if candidates == "nodes":
        cand = candidates_from_network(net, spacing_m=candidate_spacing_m, study_area=case.area)
        if case.districts is not None:
            cand["district"] = assign_districts(cand, case.districts)
    elif isinstance(candidates, str) and candidates.startswith("institutions:"):
        tier = candidates.split(":", 1)[1]
        if tier not in settings.TIERS:
            msg = f"--candidates {candidates}: unknown tier '{tier}'; fix: use institutions:{'|'.join(settings.TIERS)}"
            raise InvalidValueError(msg)
        cand = inst[(inst["tier"] == tier) & snap_i["snapped"].to_numpy()].drop(index=existing.index, errors="ignore")
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
    if n_sites is not None and n_sites > len(cand):
        msg = f"--new-sites {n_sites} is more than the {len(cand)} candidate sites; fix: ask for at most {len(cand)} or add candidates"
        raise InvalidValueError(msg)

    sites_all = pd.concat([existing[["name", "tier", "geometry"]], cand[["name", "geometry"]].assign(tier="candidate")])
    sites_all = gpd.GeoDataFrame(sites_all, geometry="geometry", crs="EPSG:4326")
    snap_s = snap_points(net, sites_all, max_snap_m=max_snap)
    snap_cells = snap_points(net, case.cells, max_snap_m=max_snap)
    cap_minutes = max_minutes * 3 if objective == "mean-time" else max_minutes
    od = od_travel_times(net, snap_cells, snap_s, max_minutes=cap_minutes)
    demand = case.cells["population"]

    with warnings.catch_warnings(record=True) as caught:  # the model warns e.g. about existing sites reaching no cell
        warnings.simplefilter("always")
        model = _siting_model(siting, od, demand, cand, existing, n_sites=n_sites, target_pct=target_pct,
                              objective=objective, max_minutes=max_minutes, capacity_column=capacity_column,
                              new_site_capacity=new_site_capacity)
    for w in caught:
        logger.warning("%s", w.message)
    result = model.solve(time_limit_s=time_limit_s, **({} if target_pct is not None else {"require_k": require_k}))
    curve = None
    if marginal and isinstance(model, siting.MCLP) and n_sites:
        curve = siting.marginal_curve(model, time_limit_s=time_limit_s, require_k=require_k)

    # per-cell coverage before and after, from the same OD pairs
    within = od[od["travel_time_s"] <= max_minutes * 60.0]
    before_ids = set(within.loc[within["destination_id"].isin(existing.index), "origin_id"])
    chosen = list(result.sites)
    after_ids = before_ids | set(within.loc[within["destination_id"].isin(chosen), "origin_id"])
    cells = case.cells.copy()
    cells["covered_before"] = cells.index.isin(list(before_ids))
    cells["covered_after"] = cells.index.isin(list(after_ids))
    reach = cells.index.isin(list(set(od["origin_id"])))
    cells["change"] = np.where(cells["covered_after"] & ~cells["covered_before"], "newly_covered",
                               np.where(cells["covered_before"], "covered", np.where(reach | snap_cells["snapped"].to_numpy(), "gap", "unreachable")))

    sites = cand.loc[chosen].copy()
    rank = result.ranking
    sites["rank"] = rank["rank"].to_numpy()
    sites["added_population"] = rank["added_population"].round(1).to_numpy()
    sites["cumulative_pct"] = rank["cumulative_pct"].round(2).to_numpy()
    sites["adds_population"] = rank["adds_population"].to_numpy()
    sites["tier"] = sites["tier"] if "tier" in sites else "primary"
    sites["tier"] = sites["tier"].fillna("primary")
    sites["tier_source"] = "proposed"
    snap_new = snap_points(net, sites, max_snap_m=max_snap)
    iso = compute_isochrones(net, sites, snap_new, minutes=(max_minutes,), progress=progress) if len(sites) else \
        gpd.GeoDataFrame({"facility_id": [], "minutes": []}, geometry=[], crs="EPSG:4326")

    total = float(demand.sum())
    summary: dict[str, Any] = {
        "planner_version": __version__,
        "complete": True,
        "population_unit": population_label,
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
        "new_sites": len(chosen),
        "new_sites_adding_population": int(rank["adds_population"].sum()),
        "require_k": require_k,
        "zero_gain_reason": result.zero_gain_reason,
        "population_total": round(total, 1),
        "population_covered_before": round(result.covered_before, 1),
        "population_covered_after": round(result.covered_after, 1),
        "coverage_pct_before": round(result.covered_pct_before, 2),
        "coverage_pct_after": round(result.covered_pct_after, 2),
        "population_unreachable_by_any_site": round(float(demand.reindex(result.excluded_cells).sum()), 1),
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
        "inputs": {**{k: case.options.get(k) for k in _INPUT_KEYS},
                   "candidates": str(candidates), "candidates_coords": candidates_coords},
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    return SitingRun(case=case, net=net, existing=existing, candidates=cand, cells=cells, result=result, curve=curve,
                     sites=sites.sort_values("rank"), isochrones=iso, summary=summary)


def _siting_model(siting: Any, od: pd.DataFrame, demand: pd.Series, cand: gpd.GeoDataFrame, existing: gpd.GeoDataFrame, *,
                  n_sites: int | None, target_pct: float | None, objective: str, max_minutes: float,
                  capacity_column: str | None, new_site_capacity: float | None) -> Any:
    """Build the siting model the options ask for."""
    if target_pct is not None:
        return siting.LSCP.from_travel_times(od, demand, cand.index, max_minutes=max_minutes, target_pct=target_pct,
                                             existing=existing.index)
    if objective == "mean-time":
        return siting.PMedian.from_travel_times(od, demand, cand.index, n_sites=int(n_sites), existing=existing.index)  # type: ignore[arg-type]
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
                                                        capacity=cap, existing=existing.index)
    return siting.MCLP.from_travel_times(od, demand, cand.index, max_minutes=max_minutes, n_sites=int(n_sites),  # type: ignore[arg-type]
                                         existing=existing.index)


def write_siting_outputs(run: SitingRun, out: str | os.PathLike[str], *, title: str | None = None,
                         basemap: str = "osm", offline: bool = False, force: bool = False) -> Path:
    """Write a siting run: ``sites.csv``, ``sites.gpkg``, ``summary.json``, ``map.html``, atomically.

    Parameters
    ----------
    run
        Result of :func:`run_siting`.
    out
        Output folder.
    title
        Map title.
    basemap, offline
        Map options (see :func:`planner.maps.new_map`).
    force
        Replace `out` even if it holds files planner did not write.

    Returns
    -------
    out
        The output folder.
    """
    from .maps import get_basemap, render_siting_map, save_map

    get_basemap(basemap)
    with output_dir(out, kind="siting", inputs=run.summary.get("inputs", {}), force=force) as tmp:
        cols = ["rank", "name", "lon", "lat", "added_population", "cumulative_pct", "adds_population"] + (
            ["district"] if "district" in run.sites else [])
        table = run.sites[cols].reset_index()
        write_csv(table, tmp / "sites.csv")
        run.sites.reset_index().to_file(tmp / "sites.gpkg", layer="sites", driver="GPKG")
        run.cells.reset_index().to_file(tmp / "sites.gpkg", layer="cells", driver="GPKG")
        if len(run.isochrones):
            run.isochrones.to_file(tmp / "sites.gpkg", layer="isochrones", driver="GPKG")
        if run.curve is not None:
            write_csv(run.curve.drop(columns=["sites"]), tmp / "marginal_curve.csv", index=True)
        save_map(render_siting_map(run, title=title, basemap=basemap, offline=offline), tmp / "map.html")
        write_json(run.summary, tmp / "summary.json")
    return Path(out)


# --------------------------------------------------------------------------------------------------------------------
# consortium grids (网格化布局)
# --------------------------------------------------------------------------------------------------------------------


@dataclass
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
        The report figures.
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
    result: Any
    summary: dict[str, Any] = field(default_factory=dict)


GRID_CELL_SIZE_M = 1000.0  # metres; default demand cell for grids (keeps the contiguity MIP small)
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
    from .io import read_table

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
    cell_size_m: float = GRID_CELL_SIZE_M,
    capacity_column: str | None = None,
    tolerance: float = 0.2,
    fixed: str | os.PathLike[str] | dict[Any, Any] | None = None,
    contiguity: str = "queen",
    time_limit_s: float = 600.0,
    method: str = "auto",
    max_nodes: int | None = None,
    accessibility_minutes: float = 30.0,
    population_label: str = "population",
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
        As in :func:`run_coverage` (drive by default: residents' trips to a
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
    from . import assignment as asg
    from .accessibility import e2sfca
    from .travel_time import od_travel_times

    t0 = time.perf_counter()
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

    case = load_case(network, institutions, population, boundaries=boundaries, mode=mode, speed_kph=speed_kph,
                     coords=coords, population_coords=population_coords, max_snap_m=max_snap_m, cell_size_m=cell_size_m)
    net = compile_network(case.graph)
    inst = case.institutions
    if capacity_column is not None and leads is None:  # with a leads file, the capacity column is the leads'
        inst = load_institutions(institutions, coords=coords, capacity_column=capacity_column)
        if case.districts is not None:
            inst["district"] = assign_districts(inst, case.districts)
    if leads is not None:
        lead_df = load_institutions(leads, coords=coords, capacity_column=capacity_column)
        lead_df.index = pd.Index([f"{LEAD_ID_PREFIX}{i}" for i in lead_df.index], name="facility_id")  # own id space
        if case.districts is not None:
            lead_df["district"] = assign_districts(lead_df, case.districts)
        twins = _lead_twins(lead_df, inst, net.crs)  # the same hospital in the institutions: the lead, not a member
        nearest_twin = pd.Series(twins.index, index=twins["lead_id"].to_numpy()).groupby(level=0, sort=False).first()
        lead_df["institution_id"] = nearest_twin.reindex(lead_df.index).astype(object)
        members = inst.drop(index=twins.index)
        lead_source = str(leads)
    else:
        lead_df = inst[inst["tier"].isin(lead_tiers)]
        members = inst.drop(index=lead_df.index)
        lead_source = f"tiers {', '.join(lead_tiers)} of the institutions"
    if len(lead_df) == 0:
        msg = (f"{leads or institutions}: no lead hospital ({lead_source}); "
               "fix: give --leads FILE or a --lead-tier present in the institutions (e.g. secondary)")
        raise InvalidValueError(msg)

    # leads must be on the network; one hospital mapped twice leads one grid
    snap_l = snap_points(net, lead_df, max_snap_m=case.max_snap_m)
    shapely.prepare(case.area)
    inside = shapely.contains_xy(case.area, lead_df["lon"].to_numpy(), lead_df["lat"].to_numpy())
    reason = np.where(~inside, "outside the study area",
                      np.where(snap_l["snapped"], "", f"more than {case.max_snap_m:.0f} m from a road"))
    excluded = pd.DataFrame({"name": lead_df["name"], "reason": reason})[reason != ""]
    lead_ok, dupes = _dedupe_leads(lead_df[reason == ""], net.crs)
    excluded = pd.concat([excluded, dupes])
    if len(excluded):
        logger.warning("%d of %d leads left out (not on the network or duplicates); see summary.json leads_excluded",
                       len(excluded), len(lead_df))
    if len(lead_ok) < 2:
        msg = (f"{leads or institutions}: only {len(lead_ok)} lead hospital lies on the road network of the study area; "
               "fix: give at least two leads (--leads FILE or another --lead-tier)")
        raise InvalidValueError(msg)

    # members: the other institutions of the study area (those outside it serve no grid)
    in_area = shapely.contains_xy(case.area, members["lon"].to_numpy(), members["lat"].to_numpy())
    members_outside = int((~in_area).sum())
    members = members[in_area]

    # travel times: cells to leads (1 km cells: snap from the cell centre, up to half a diagonal further)
    cells = case.cells
    cell_snap_m = max(case.max_snap_m, cell_size_m * math.sqrt(0.5))
    snap_cells = snap_points(net, cells, max_snap_m=cell_snap_m)
    od = od_travel_times(net, snap_cells, snap_points(net, lead_ok, max_snap_m=case.max_snap_m))
    if isinstance(fixed, dict) or fixed is None:
        fixed_map = fixed
    else:
        fixed_map = load_fixed_assignments(fixed, leads=lead_ok, cells=cells)
    adjacency = asg.cell_adjacency(cells, contiguity=contiguity)  # type: ignore[arg-type]
    cap: Any = None
    if capacity_column is not None:
        cap = "capacity"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = asg.assign_lead_hospital(od, cells, lead_ok, adjacency=adjacency, capacity=cap if cap else "equal",
                                              tolerance=tolerance, fixed=fixed_map, time_limit_s=time_limit_s,
                                              method=method,  # type: ignore[arg-type]
                                              **({} if max_nodes is None else {"max_nodes": max_nodes}))
        except PlannerError as exc:  # name the leads, not only their ids
            text = str(exc)
            for fid, name in lead_ok["name"].items():
                text = text.replace(f"'{fid}'", f"'{fid}' ({name})")
            raise type(exc)(text) from None
    for w in caught:
        logger.warning("%s", w.message)

    # accessibility: capacity (or, without capacities, institutions) per 1,000 residents within the catchment
    supply = inst.copy()
    snap_inst = snap_points(net, supply, max_snap_m=case.max_snap_m)
    supply = supply[snap_inst["snapped"].to_numpy()]
    cap_known = pd.to_numeric(supply["capacity"], errors="coerce") if "capacity" in supply else pd.Series(np.nan, index=supply.index)
    if cap_known.notna().any():
        supply = supply[cap_known.notna().to_numpy()].assign(capacity=cap_known.dropna())
        access_basis = f"capacity ('{capacity_column or 'capacity'}') per 1,000 residents"
    else:
        supply = supply.assign(capacity=1.0)
        access_basis = "institutions per 1,000 residents (no capacity column: each institution counts 1)"
    od_acc = od_travel_times(net, snap_cells, snap_inst.loc[supply.index], max_minutes=accessibility_minutes)
    access = e2sfca(od_acc, cells, supply, max_minutes=accessibility_minutes)

    names = lead_ok["name"]  # lead ids only: members are another id space
    out_cells = cells.copy()
    out_cells["lead_id"] = result.assignment.reindex(cells.index)
    out_cells["lead_name"] = out_cells["lead_id"].map(names)
    out_cells["travel_time_min"] = (result.travel_time_s.reindex(cells.index) / 60).round(2)
    out_cells["baseline_lead_id"] = result.baseline.reindex(cells.index)
    out_cells["baseline_lead_name"] = out_cells["baseline_lead_id"].map(names)
    out_cells["baseline_travel_time_min"] = (result.baseline_travel_time_s.reindex(cells.index) / 60).round(2)
    out_cells["moved"] = out_cells["lead_id"].notna() & (out_cells["lead_id"] != out_cells["baseline_lead_id"])
    out_cells["accessibility_per_1000"] = access.reindex(cells.index).round(4)

    table = asg.grids_summary(result, cells, institutions=members, leads=lead_ok)
    grids = asg.dissolve_grids(cells, result.assignment)[["geometry"]].join(table)
    grids["name"] = lead_ok["name"].reindex(grids.index)
    baseline_grids = asg.dissolve_grids(cells, result.baseline)
    baseline_grids["name"] = lead_ok["name"].reindex(baseline_grids.index)
    member_of = asg.attach_members(members, cells, result.assignment) if len(members) else \
        pd.DataFrame({"lead_id": pd.Series(dtype=object)})
    members = members.assign(lead_id=member_of["lead_id"].reindex(members.index))
    members["lead_name"] = members["lead_id"].map(lead_ok["name"])
    dist_table = None
    if "district" in cells.columns:
        places = pd.concat([lead_ok, members], ignore_index=True)  # each place once; ids of two spaces are not mixed
        dist_table = asg.district_summary(result, cells, institutions=places if "district" in places else None)
        dist_table["main_lead_name"] = dist_table["main_lead"].map(lead_ok["name"])

    s = result.summary()
    total = float(cells["population"].sum())
    per_lead = []
    # the lead's id in --institutions: its twin there (leads file), or its own id (leads taken from the institutions)
    twin_of = lead_ok["institution_id"] if "institution_id" in lead_ok else pd.Series(lead_ok.index, index=lead_ok.index)
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
    ratios = grids["load_ratio"].astype(float)
    base_ratios = grids["baseline_load_ratio"].astype(float)
    summary: dict[str, Any] = {
        "planner_version": __version__,
        "complete": True,
        "population_unit": population_label,
        "mode": mode,
        "contiguity": contiguity,
        "tolerance": tolerance,
        "capacity_basis": f"column '{capacity_column}'" if capacity_column else "equal shares",
        "lead_source": lead_source,
        "solver_status": s["status"],
        "method": s["method"],
        "gap": s["gap"],
        "time_limited": s["time_limited"],
        "work": s["work"],
        "objective_person_s": s["objective_person_s"],
        "lower_bound_person_s": s["lower_bound_person_s"],
        "solve_s": s["runtime_s"],
        "n_grids": s["n_grids"],
        "population_total": round(total, 1),
        "population_assigned": round(total - s["population_unassigned"], 1),
        "population_unassigned": s["population_unassigned"],
        "cells": len(cells),
        "cells_unassigned": s["n_unassigned"],
        "cell_size_m": cell_size_m,
        "load_ratio_range": [round(float(ratios.min()), 3), round(float(ratios.max()), 3)],
        "baseline_load_ratio_range": [round(float(base_ratios.min()), 3), round(float(base_ratios.max()), 3)],
        "comparison": {k: v for k, v in s.items() if k not in {
            "status", "method", "n_grids", "n_cells", "n_unassigned", "population_unassigned", "tolerance",
            "objective_person_s", "lower_bound_person_s", "gap", "runtime_s", "loads", "time_limited", "work"}},
        "leads": per_lead,
        "leads_excluded": [{"facility_id": str(f), "name": str(r["name"]), "reason": str(r["reason"])}
                           for f, r in excluded.iterrows()],
        "members_unattached": int(members["lead_id"].isna().sum()),
        "institutions_outside_study_area": members_outside,
        "fixed_assignments": len(fixed_map or {}),
        "accessibility": {"method": "E2SFCA (Gaussian decay)", "max_minutes": accessibility_minutes, "basis": access_basis,
                          "mean_per_1000": round(float(np.average(access, weights=cells["population"])) if total > 0 else 0.0, 4)},
        "by_district": [] if dist_table is None else [
            {"district": str(d), **{k: (None if isinstance(v, float) and v != v else (round(v, 3) if isinstance(v, float) else v))
                                    for k, v in r.items()}}
            for d, r in dist_table.astype(object).iterrows()],
        "inputs": {**{k: case.options.get(k) for k in _INPUT_KEYS},
                   "leads": None if leads is None else str(leads),
                   "fixed": None if fixed is None or isinstance(fixed, dict) else str(fixed)},
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    return GridRun(case=case, net=net, leads=lead_ok, leads_excluded=excluded, members=members, cells=out_cells,
                   grids=grids, baseline_grids=baseline_grids, districts=dist_table, result=result, summary=summary)


GRID_HEADERS = {
    "facility_id": "牵头医院编号 lead id",
    "name": "牵头医院 lead hospital",
    "population": "网格人口 population",
    "capacity_share": "容量份额 capacity share",
    "target_population": "目标人口 target population",
    "load_ratio": "负荷比 load ratio",
    "baseline_population": "就近划分人口 nearest-lead population",
    "baseline_load_ratio": "就近划分负荷比 nearest-lead load ratio",
    "mean_travel_time_min": "平均出行时间(分钟) mean travel time (min)",
    "p95_travel_time_min": "95%出行时间(分钟) 95th pct travel time (min)",
    "max_travel_time_min": "最长出行时间(分钟) max travel time (min)",
    "n_cells": "单元数 cells",
    "members": "成员机构数 members",
    "capacity_per_1000": "每千人容量 capacity per 1,000",
}


def write_grid_outputs(run: GridRun, out: str | os.PathLike[str], *, title: str | None = None,
                       basemap: str = "osm", offline: bool = False, force: bool = False) -> Path:
    """Write a grid run atomically: ``grids.gpkg``, ``assignment.csv``, ``grids.csv``, ``districts.csv``, ``summary.json``, ``map.html``.

    Parameters
    ----------
    run
        Result of :func:`run_grids`.
    out
        Output folder.
    title
        Map title.
    basemap, offline
        Map options (see :func:`planner.maps.new_map`).
    force
        Replace `out` even if it holds files planner did not write.

    Returns
    -------
    out
        The output folder.
    """
    from .maps import get_basemap, render_grid_map, save_map

    get_basemap(basemap)
    with output_dir(out, kind="grids", inputs=run.summary.get("inputs", {}), force=force) as tmp:
        gpkg = tmp / "grids.gpkg"
        run.grids.reset_index().to_file(gpkg, layer="grids", driver="GPKG")
        run.cells.reset_index().to_file(gpkg, layer="cells", driver="GPKG")
        run.baseline_grids.reset_index().to_file(gpkg, layer="nearest_lead_zones", driver="GPKG")
        run.leads.reset_index().to_file(gpkg, layer="leads", driver="GPKG")
        if len(run.members):
            run.members.reset_index().to_file(gpkg, layer="members", driver="GPKG")
        cols = ["lon", "lat", "population", "district", "lead_id", "lead_name", "travel_time_min", "baseline_lead_id",
                "baseline_lead_name", "baseline_travel_time_min", "moved", "accessibility_per_1000"]
        cells = run.cells.copy()
        centre = cells.geometry.to_crs(run.net.crs).centroid.to_crs("EPSG:4326")
        cells["lon"], cells["lat"] = centre.x.round(6), centre.y.round(6)
        write_csv(cells[[c for c in cols if c in cells.columns]], tmp / "assignment.csv", index=True)
        keep = [c for c in GRID_HEADERS if c in run.grids.columns or c == "facility_id"]
        table = run.grids.drop(columns="geometry").reset_index()[keep]
        write_csv(table.rename(columns=GRID_HEADERS), tmp / "grids.csv")
        if run.districts is not None:
            write_csv(run.districts, tmp / "districts.csv", index=True)
        save_map(render_grid_map(run, title=title, basemap=basemap, offline=offline), tmp / "map.html")
        write_json(run.summary, tmp / "summary.json")
    return Path(out)
