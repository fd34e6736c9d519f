"""Every writer: one output layout per run type; each writer returns the files it wrote.

The pipelines (:mod:`planner.pipeline`) and scenarios compute and return
frozen runs; the functions here write them, each into an output folder built
aside and swapped in whole (see :func:`planner.io.output_dir`):

* :func:`write_coverage_outputs` - ``summary.json``, ``cells.gpkg``,
  ``institutions.gpkg``, ``isochrones.gpkg`` (and ``districts.gpkg``),
  ``map.html``, ``map.png``;
* :func:`write_siting_outputs` - ``sites.csv``, ``sites.gpkg``,
  ``marginal_curve.csv``, ``summary.json``, ``map.html``;
* :func:`write_grid_outputs` - ``grids.gpkg``, ``assignment.csv``,
  ``grids.csv``, ``districts.csv``, ``summary.json``, ``map.html``;
* :func:`write_referral_outputs` - ``referral.csv``, ``routes.gpkg``,
  ``summary.json``, ``map.html``;
* :func:`write_scenario_outputs` - ``<name>.gpkg``, the summary tables as
  ``tables.xlsx`` and CSV, ``map.html``, ``map.png``, ``scenario.json``,
  ``summary.json``;
* :func:`write_comparison_outputs` - the differences of two scenario runs;
* :func:`write_summary` - ``summary.json`` (every writer above uses it).

Table headers are bilingual ("覆盖率 coverage (%)") so that they can be pasted
into Chinese reports as they are. CSV files are written as UTF-8 with a byte
order mark, which Excel needs to show Chinese correctly. Both go through
:func:`planner.io.write_csv` and :func:`planner.io.write_xlsx`, which make any
text a spreadsheet would run as a formula inert.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from . import maps, settings
from .io import check_output_dir, output_dir, write_csv, write_json, write_xlsx
from .norms import norms_table
from .pipeline import CoverageRun, GridRun, ReferralRun, SitingRun, resources
from .pipeline.summary import Summary
from .scenarios import CaseCache, Scenario, compare_runs, load_scenario, run_scenario, scenario_input_files

HEADERS: dict[str, str] = {
    "minutes": "阈值(分钟) threshold (min)",
    "population_covered": "覆盖人口 population covered",
    "coverage_pct": "覆盖率 coverage (%)",
    "tier": "机构等级 tier",
    "label_zh": "等级说明 tier (zh)",
    "institutions": "机构数 institutions",
    "population_nearest_covered": "最近机构为该等级且覆盖的人口 covered, nearest of this tier",
    "district": "区县 district",
    "population": "研究区人口 population (study area)",
    "gap_population": "缺口人口 gap population",
    "mean_travel_time_min": "平均出行时间(分钟) mean travel time (min)",
    "district_population_total": "区县总人口 district population",
    "share_in_study_area_pct": "研究区内人口占比 share in study area (%)",
}


def summary_tables(summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Turn a run summary into report tables with bilingual headers.

    Parameters
    ----------
    summary
        ``run.summary`` of a coverage run.

    Returns
    -------
    tables
        ``thresholds``, ``by_tier`` and ``by_district`` DataFrames.
    """
    thresholds = pd.DataFrame(summary["thresholds"])
    by_tier = pd.DataFrame([{"tier": t, **v} for t, v in summary["by_tier"].items()])
    by_district = pd.DataFrame(summary["by_district"])
    tables = {"thresholds": thresholds, "by_tier": by_tier, "by_district": by_district}
    return {k: v.rename(columns=HEADERS) for k, v in tables.items()}


def write_tables(summary: dict[str, Any], folder: Path) -> list[Path]:
    """Write the summary tables as ``tables.xlsx`` (one sheet each) and one CSV each.

    Parameters
    ----------
    summary
        ``run.summary`` of a coverage run.
    folder
        Output folder.

    Returns
    -------
    paths
        Files written.
    """
    tables = summary_tables(summary)
    paths = []
    xlsx = folder / "tables.xlsx"
    note = pd.DataFrame({"说明 note": [
        f"人口口径 population: {summary.get('population_unit', '')}",
        f"出行方式 mode: {summary.get('mode')}; 阈值 threshold: {summary.get('max_minutes')} min",
        settings.ATTRIBUTION_OSM,
        settings.ATTRIBUTION_WORLDPOP,
    ]})
    write_xlsx({"about": note, **tables}, xlsx)
    paths.append(xlsx)
    for name, df in tables.items():
        paths.append(write_csv(df, folder / f"{name}.csv"))
    return paths


def write_geopackage(run: CoverageRun, path: Path) -> Path:
    """Write every layer of a run into one GeoPackage.

    Parameters
    ----------
    run
        A coverage run.
    path
        ``.gpkg`` file to write.

    Returns
    -------
    path
        The file written; layers ``cells``, ``institutions``, ``isochrones``
        and (with boundaries) ``districts``.
    """
    run.cells.reset_index().to_file(path, layer="cells", driver="GPKG")
    run.institutions.reset_index().to_file(path, layer="institutions", driver="GPKG")
    if len(run.isochrones):
        run.isochrones.to_file(path, layer="isochrones", driver="GPKG")
    if run.districts is not None:
        run.districts.to_file(path, layer="districts", driver="GPKG")
    if run.allocation is not None:
        run.residual_unserved.reset_index().to_file(path, layer="residual_unserved", driver="GPKG")
    return path


def served_headers(max_minutes: float) -> dict[str, str]:
    """Bilingual headers of ``served.csv`` (:func:`planner.pipeline.resources.served_table`)."""
    return {"facility_id": "机构编号 facility_id", "name": "机构名称 name", "tier": "机构等级 tier",
            "capacity": "服务能力(人) capacity (persons)",
            "demand_within_t": f"{max_minutes:g}分钟内需求人口 demand within {max_minutes:g} min",
            "served": "服务人口 served (persons)", "utilisation_pct": "利用率 utilisation (%)"}


def write_resource_outputs(run: CoverageRun | GridRun, folder: Path, *, gpkg: Path | None = None) -> list[Path]:
    """Write a run's capacity and norms outputs, those it has: ``served.csv``, ``norms.csv``, the residual layer.

    ``served.csv``: one row per institution (capacity, demand within the threshold, served, utilisation);
    ``norms.csv``: one row per district and norm (:func:`planner.norms.norms_table`, Chinese and English
    headers); the layer ``residual_unserved`` (cells with unserved persons, ``unserved_reason``
    ``out_of_reach`` or ``over_capacity``) goes into `gpkg`.
    """
    paths = []
    alloc = getattr(run, "allocation", None)
    if alloc is not None:
        table = resources.served_table(alloc, run.institutions)
        paths.append(write_csv(table.rename(columns=served_headers(alloc.max_minutes)), folder / "served.csv"))
        if gpkg is not None:
            residual = run.residual_unserved.reset_index()
            residual.to_file(gpkg, layer="residual_unserved", driver="GPKG")
    if run.norms is not None:
        paths.append(write_csv(norms_table(run.norms), folder / "norms.csv"))
    return paths


def _written(tmp: Path, out: str | os.PathLike[str]) -> list[Path]:
    """Return the files in `tmp` as they will be in `out` once it is swapped in."""
    return sorted(Path(out) / p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file())


def write_summary(summary: Summary, folder: str | os.PathLike[str]) -> Path:
    """Write a run's summary as ``summary.json``: the one writer of that file.

    Parameters
    ----------
    summary
        ``run.summary`` of a coverage, scenario, siting or grid run (typed in
        :mod:`planner.pipeline.summary`).
    folder
        Output folder (it must exist).

    Returns
    -------
    path
        The file written, ``<folder>/summary.json``: indented UTF-8 JSON with
        the keys in the summary's order.
    """
    path = Path(folder) / "summary.json"
    write_json(dict(summary), path)
    return path


# ------------------------------------------------------------------------------------------- coverage


def write_coverage_outputs(
    run: CoverageRun,
    out: str | os.PathLike[str],
    *,
    title: str | None = None,
    basemap: str = "osm",
    offline: bool = False,
    force: bool = False,
) -> list[Path]:
    """Write a run's tables, layers and map into `out`, atomically.

    Parameters
    ----------
    run
        Result of :func:`planner.pipeline.run_coverage`.
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
    paths
        The files written (in `out`): ``cells.gpkg``, ``institutions.gpkg``,
        ``isochrones.gpkg``, ``districts.gpkg`` (with boundaries),
        ``map.html``, ``map.png`` and ``summary.json``; with capacities also
        ``served.csv`` and the layer ``residual_unserved`` in ``cells.gpkg``,
        with boundaries and norms on ``norms.csv`` (see :func:`write_resource_outputs`).

    Raises
    ------
    InvalidValueError
        For an unknown basemap or a missing Tianditu key (before anything is written).
    OutputFolderError
        If `out` would delete an input or foreign files, or cannot be written
        (see :func:`planner.io.output_dir`); earlier results stay as they were.
    """
    maps.get_basemap(basemap)  # fail before writing anything
    with output_dir(out, kind="coverage", inputs=run.summary.get("inputs", {}), force=force) as tmp:
        _write_layers(run, tmp)
        write_resource_outputs(run, tmp, gpkg=tmp / "cells.gpkg")
        m = maps.render_coverage_map(run, title=title, basemap=basemap, offline=offline)
        maps.save_map(m, tmp / "map.html")
        maps.render_static_map(run, str(tmp / "map.png"), title=title)
        write_summary(run.summary, tmp)
        return _written(tmp, out)


def _write_layers(run: CoverageRun, folder: Path) -> list[Path]:
    """Write a coverage run's layers, one GeoPackage each.

    Parameters
    ----------
    run
        A coverage run.
    folder
        Folder to write into.

    Returns
    -------
    paths
        ``cells.gpkg``, ``institutions.gpkg``, ``isochrones.gpkg`` (empty
        layer when none was computed) and, with boundaries, ``districts.gpkg``.
    """
    paths = [folder / "cells.gpkg", folder / "institutions.gpkg", folder / "isochrones.gpkg"]
    run.cells.reset_index().to_file(paths[0], layer="cells", driver="GPKG")
    run.institutions.reset_index().to_file(paths[1], layer="institutions", driver="GPKG")
    iso = run.isochrones
    if not len(iso):
        iso = gpd.GeoDataFrame({"facility_id": pd.Series([], dtype=str), "minutes": pd.Series([], dtype=float)},
                               geometry=gpd.GeoSeries([], crs="EPSG:4326"))
    iso.to_file(paths[2], layer="isochrones", driver="GPKG")
    if run.districts is not None:
        paths.append(folder / "districts.gpkg")
        run.districts.to_file(paths[3], layer="districts", driver="GPKG")
    return paths


# --------------------------------------------------------------------------------------------- siting


def write_siting_outputs(run: SitingRun, out: str | os.PathLike[str], *, title: str | None = None,
                         basemap: str = "osm", offline: bool = False, force: bool = False) -> list[Path]:
    """Write a siting run: ``sites.csv``, ``sites.gpkg``, ``summary.json``, ``map.html``, atomically.

    Parameters
    ----------
    run
        Result of :func:`planner.pipeline.run_siting`.
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
    paths
        The files written (in `out`); ``marginal_curve.csv`` too when the
        run has a marginal curve.
    """
    maps.get_basemap(basemap)
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
        maps.save_map(maps.render_siting_map(run, title=title, basemap=basemap, offline=offline), tmp / "map.html")
        write_summary(run.summary, tmp)
        return _written(tmp, out)


# ---------------------------------------------------------------------------------------------- grids


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
ASSIGNMENT_COLUMNS = ("lon", "lat", "population", "district", "lead_id", "lead_name", "travel_time_min", "baseline_lead_id",
                      "baseline_lead_name", "baseline_travel_time_min", "moved", "accessibility_per_1000")


def write_grid_outputs(run: GridRun, out: str | os.PathLike[str], *, title: str | None = None,
                       basemap: str = "osm", offline: bool = False, force: bool = False) -> list[Path]:
    """Write a grid run atomically: ``grids.gpkg``, ``assignment.csv``, ``grids.csv``, ``summary.json``, ``map.html``.

    Parameters
    ----------
    run
        Result of :func:`planner.pipeline.run_grids`.
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
    paths
        The files written (in `out`); ``districts.csv`` and ``norms.csv`` only with boundaries.
    """
    maps.get_basemap(basemap)
    with output_dir(out, kind="grids", inputs=run.summary.get("inputs", {}), force=force) as tmp:
        gpkg = tmp / "grids.gpkg"
        run.grids.reset_index().to_file(gpkg, layer="grids", driver="GPKG")
        run.cells.reset_index().to_file(gpkg, layer="cells", driver="GPKG")
        run.baseline_grids.reset_index().to_file(gpkg, layer="nearest_lead_zones", driver="GPKG")
        run.leads.reset_index().to_file(gpkg, layer="leads", driver="GPKG")
        if len(run.members):
            run.members.reset_index().to_file(gpkg, layer="members", driver="GPKG")
        cells = run.cells.copy()
        centre = cells.geometry.to_crs(run.net.crs).centroid.to_crs("EPSG:4326")
        cells["lon"], cells["lat"] = centre.x.round(6), centre.y.round(6)
        write_csv(cells[[c for c in ASSIGNMENT_COLUMNS if c in cells.columns]], tmp / "assignment.csv", index=True)
        keep = [c for c in GRID_HEADERS if c in run.grids.columns or c == "facility_id"]
        table = run.grids.drop(columns="geometry").reset_index()[keep]
        write_csv(table.rename(columns=GRID_HEADERS), tmp / "grids.csv")
        if run.districts is not None:
            write_csv(run.districts, tmp / "districts.csv", index=True)
        write_resource_outputs(run, tmp)
        maps.save_map(maps.render_grid_map(run, title=title, basemap=basemap, offline=offline), tmp / "map.html")
        write_summary(run.summary, tmp)
        return _written(tmp, out)


# ------------------------------------------------------------------------------------------- referral


REFERRAL_CSV_COLUMNS = ("from_id", "from_name", "from_tier", "to_id", "to_name", "to_tier", "travel_time_min", "distance_km",
                        "within_threshold", "status", "district", "lead_id", "lead_name", "lead_tier", "lead_travel_time_min",
                        "lead_distance_km", "lead_within_threshold", "lead_status")  # those the table has, in this order


def write_referral_outputs(run: ReferralRun, out: str | os.PathLike[str], *, title: str | None = None,
                           basemap: str = "osm", offline: bool = False, force: bool = False) -> list[Path]:
    """Write a referral run atomically: ``referral.csv``, ``routes.gpkg``, ``summary.json``, ``map.html``.

    Parameters
    ----------
    run
        Result of :func:`planner.pipeline.run_referral`.
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
    paths
        The files written (in `out`). ``referral.csv`` has one row per
        from-institution (times in minutes to 0.01, distances in km to
        0.001; empty where not routed, with the reason in ``status``);
        ``routes.gpkg`` has the layers ``routes`` (the route lines) and
        ``institutions`` (the from- and to-institutions with their role).
    """
    maps.get_basemap(basemap)
    with output_dir(out, kind="referral", inputs=run.summary.get("inputs", {}), force=force) as tmp:
        table = run.table[[c for c in REFERRAL_CSV_COLUMNS if c in run.table.columns]].copy()
        for col in ("travel_time_min", "lead_travel_time_min"):
            if col in table:
                table[col] = table[col].round(2)
        for col in ("distance_km", "lead_distance_km"):
            if col in table:
                table[col] = table[col].round(3)
        write_csv(table, tmp / "referral.csv")
        gpkg = tmp / "routes.gpkg"
        routes = run.routes if len(run.routes) else gpd.GeoDataFrame(
            {"kind": pd.Series([], dtype=str)}, geometry=gpd.GeoSeries([], crs="EPSG:4326"))
        routes.to_file(gpkg, layer="routes", driver="GPKG")
        _referral_places(run).reset_index().to_file(gpkg, layer="institutions", driver="GPKG")
        maps.save_map(maps.render_referral_map(run, title=title, basemap=basemap, offline=offline), tmp / "map.html")
        write_summary(run.summary, tmp)
        return _written(tmp, out)


def _referral_places(run: ReferralRun) -> gpd.GeoDataFrame:
    """Return the places of a referral run with their ``role`` (``from``, ``to``, ``lead``) and the from-tiers' ``status``."""
    inst = run.case.institutions
    tiers = run.summary["from_tiers"] + run.summary["to_tiers"]
    places = inst[inst["tier"].isin(tiers)].copy()
    places["role"] = ["from" if t in run.summary["from_tiers"] else "to" for t in places["tier"]]
    places["status"] = run.table.set_index("from_id")["status"].reindex(places.index).to_numpy(dtype=object)
    if run.leads is not None and len(run.leads):
        leads = run.leads[["name", "tier", "geometry"]].assign(role="lead", status=None)
        places = gpd.GeoDataFrame(pd.concat([places, leads.to_crs(places.crs)]), geometry="geometry", crs=places.crs)
    return places


# ------------------------------------------------------------------------------------------ scenarios


def write_scenario_outputs(run: CoverageRun, scenario: Scenario, out: str | os.PathLike[str], *, basemap: str = "osm",
                           offline: bool = False, force: bool = False) -> list[Path]:
    """Write a scenario run: summary, tables (CSV/XLSX), one GeoPackage, maps, the scenario itself.

    Parameters
    ----------
    run
        Result of :func:`planner.scenarios.run_scenario`.
    scenario
        The scenario.
    out
        Output folder (written atomically), ``<out_root>/<name>/`` for the
        CLI; its parent is created if missing.
    basemap, offline
        Map options (see :func:`planner.maps.new_map`).
    force
        Replace `out` even if it holds files planner did not write.

    Returns
    -------
    paths
        The files written (in `out`): ``<name>.gpkg``, ``tables.xlsx``,
        ``thresholds.csv``, ``by_tier.csv``, ``by_district.csv``,
        ``map.html``, ``map.png``, ``scenario.json`` and ``summary.json``; ``served.csv``
        and ``norms.csv`` as for :func:`write_coverage_outputs` (the residual layer
        goes into ``<name>.gpkg``).
    """
    Path(out).parent.mkdir(exist_ok=True)
    with output_dir(out, kind="scenario", inputs=scenario_input_files(scenario), force=force) as tmp:
        write_geopackage(run, tmp / f"{scenario.name}.gpkg")
        write_tables(run.summary, tmp)
        write_resource_outputs(run, tmp)
        maps.save_map(maps.render_coverage_map(run, title=scenario.title, basemap=basemap, offline=offline),
                      tmp / "map.html")
        maps.render_static_map(run, str(tmp / "map.png"), title=scenario.title)
        write_json(scenario.to_dict(), tmp / "scenario.json")
        write_summary(run.summary, tmp)
        return _written(tmp, out)


def write_comparison_outputs(
    a: CoverageRun,
    b: CoverageRun,
    comparison: dict[str, Any],
    cells: gpd.GeoDataFrame,
    out: str | os.PathLike[str],
    *,
    titles: tuple[str, str],
    inputs: Iterable[str] = (),
    keep: Iterable[str | os.PathLike[str]] = (),
    basemap: str = "osm",
    offline: bool = False,
    force: bool = False,
) -> list[Path]:
    """Write the differences of two scenario runs, and both runs' maps side by side.

    Parameters
    ----------
    a, b
        Baseline and what-if runs.
    comparison, cells
        Result of :func:`planner.scenarios.compare_runs`.
    out
        Output folder (written atomically).
    titles
        Titles of `a` and `b`.
    inputs, keep
        Files `out` must not hold and folders it must not overlap (see
        :func:`planner.io.check_output_dir`).
    basemap, offline
        Map options (see :func:`planner.maps.new_map`).
    force
        Replace `out` even if it holds files planner did not write.

    Returns
    -------
    paths
        The files written (in `out`): ``compare.json``, ``compare_cells.gpkg``,
        ``compare_by_district.csv``, ``compare_by_tier.csv``,
        ``compare_map.html``, ``map_a.html``, ``map_b.html`` and ``side_by_side.html``.
    """
    title_a, title_b = titles
    title = f"{title_a} → {title_b}"
    with output_dir(out, kind="compare", inputs=inputs, force=force, keep=keep) as tmp:
        write_json(comparison, tmp / "compare.json")
        cells.reset_index().to_file(tmp / "compare_cells.gpkg", layer="cells", driver="GPKG")
        write_csv(pd.DataFrame(comparison["by_district"]), tmp / "compare_by_district.csv")
        write_csv(pd.DataFrame(comparison["by_tier"]), tmp / "compare_by_tier.csv")
        maps.save_map(maps.render_compare_map(a, b, cells, comparison, title=title, basemap=basemap, offline=offline),
                      tmp / "compare_map.html")
        maps.save_map(maps.render_coverage_map(a, title=title_a, basemap=basemap, offline=offline), tmp / "map_a.html")
        maps.save_map(maps.render_coverage_map(b, title=title_b, basemap=basemap, offline=offline), tmp / "map_b.html")
        (tmp / "side_by_side.html").write_text(maps.side_by_side_html(
            "map_a.html", "map_b.html", title=title, left_label=f"A: {title_a}", right_label=f"B: {title_b}"),
            encoding="utf-8")
        return _written(tmp, out)


def compare_scenarios(
    a: Scenario | str | os.PathLike[str],
    b: Scenario | str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    out_root: str | os.PathLike[str] | None = "outputs",
    progress: bool = False,
    basemap: str = "osm",
    offline: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Run two scenarios (cached), write each (unless `out_root` is None) and write their differences.

    Parameters
    ----------
    a, b
        Baseline and what-if (objects or TOML paths).
    out
        Folder for ``compare.json``, ``compare_cells.gpkg``, ``compare_*.csv``,
        ``compare_map.html`` (the differences) and ``side_by_side.html``
        (both runs' maps); ``<out_root>/compare-<a>-vs-<b>/`` by default.
    out_root
        Where the two runs' own outputs and the cache go.
    progress
        Show progress bars.
    basemap, offline
        Map options (see :func:`planner.maps.new_map`).
    force
        Replace the output folders even if they hold files planner did not write.

    Returns
    -------
    comparison
        The figures written to ``compare.json``.

    Raises
    ------
    OutputFolderError
        Before anything is loaded, if an output folder cannot receive the
        outputs, or if the comparison folder overlaps a run's folder or the
        cache (see :func:`planner.io.check_output_dir`).
    """
    sa = a if isinstance(a, Scenario) else load_scenario(a)
    sb = b if isinstance(b, Scenario) else load_scenario(b)
    folder = Path(out) if out is not None else Path(out_root or ".") / f"compare-{sa.name}-vs-{sb.name}"
    root = out_root if out is None else None
    inputs = [*scenario_input_files(sa), *scenario_input_files(sb)]
    runs = [] if out_root is None else [Path(out_root) / sa.name, Path(out_root) / sb.name]
    keep = [*runs, *([] if out_root is None else [Path(out_root) / ".cache"])]
    check_output_dir(folder, inputs=inputs, force=force, keep=keep, root=root)
    if out_root is not None:
        for s in (sa, sb):
            check_output_dir(Path(out_root) / s.name, inputs=inputs, force=force, keep=[folder], root=out_root,
                             files=[f"{s.name}.gpkg"])
    pair, cache = [], CaseCache()  # one cache for both runs: a what-if on the baseline's inputs loads them once
    for s in (sa, sb):
        run = run_scenario(s, out_root=out_root, progress=progress, cache=cache)
        if out_root is not None:
            write_scenario_outputs(run, s, Path(out_root) / s.name, basemap=basemap, offline=offline, force=force)
        pair.append(run)
    ra, rb = pair
    comp, cells = compare_runs(ra, rb)
    if root is not None:
        Path(root).mkdir(exist_ok=True)
    write_comparison_outputs(ra, rb, comp, cells, folder, titles=(sa.title or sa.name, sb.title or sb.name),
                             inputs=inputs, keep=keep, basemap=basemap, offline=offline, force=force)
    return comp
