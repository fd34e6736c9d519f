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
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from . import __version__, settings
from ._errors import InvalidValueError, UnreachableFacilityError
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
    write_json,
)
from .isochrones import compute_isochrones
from .network import load_network, network_stats
from .travel_time import CompiledNetwork, compile_network, snap_points

logger = logging.getLogger(__name__)

DISTRICT_NAME_ALIASES = ("name", "名称", "district", "区县", "name_zh", "locname", "NAME")


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
    max_snap_m: float | None = None,
    cell_size_m: float | None = None,
) -> CaseInputs:
    """Load and validate the inputs of a coverage case.

    Parameters
    ----------
    network, institutions, population, boundaries, mode, speed_kph, coords, max_snap_m, cell_size_m
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
    area = compute_study_area(compile_network(G), boundaries=districts, buffer_m=max_snap)
    cells = load_population(population, study_area=area, cell_size_m=cell_size_m, coords=coords)
    input_total = float(cells.attrs.get("population_input_total", cells["population"].sum()))
    district_totals = None
    if districts is not None:
        cells["district"] = assign_districts(cells, districts)
        inst["district"] = assign_districts(inst, districts)
        if suffix_of(population) in RASTER_SUFFIXES:
            district_totals = population_by_zone(population, districts)
    options = {"network": str(network), "institutions": str(institutions), "population": str(population),
               "boundaries": None if boundaries is None else str(boundaries), "coords": coords,
               "mode": mode, "speed_kph": speed_kph, "cell_size_m": cell_size_m}
    return CaseInputs(graph=G, institutions=inst, cells=cells, districts=districts, district_totals=district_totals,
                      area=area, population_input_total=input_total, max_snap_m=max_snap, options=options)


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
        "inputs": {k: case.options.get(k) for k in ("network", "institutions", "population", "boundaries", "coords")},
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
        Datum of institution/population table coordinates.
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
                     coords=coords, max_snap_m=max_snap_m, cell_size_m=cell_size_m)
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

    Returns
    -------
    out
        The output folder.

    Raises
    ------
    InvalidValueError
        For an unknown basemap or a missing Tianditu key (before anything is written).
    """
    from .maps import get_basemap, render_coverage_map, render_static_map, save_map

    get_basemap(basemap)  # fail before writing anything
    with output_dir(out) as tmp:
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
