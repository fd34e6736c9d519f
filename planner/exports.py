"""Every writer: one output layout per run type; each writer returns the files it wrote.

The pipelines (:mod:`planner.pipeline`) and scenarios compute and return
frozen runs; the functions here write them, each into an output folder built
aside and swapped in whole (see :func:`planner.io.output_dir`):

* :func:`write_coverage_outputs` - ``summary.json``, ``cells.gpkg``,
  ``institutions.gpkg``, ``isochrones.gpkg`` (and ``districts.gpkg``),
  the summary tables as ``tables.xlsx`` and CSV, ``map.html``, ``map.png``;
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

Every CSV and XLSX table leaves through :mod:`planner.tables`: bilingual
headers with the unit ("覆盖率(%) coverage (%)"), so that they can be pasted
into Chinese reports as they are; persons as whole persons, percentages and
minutes to 0.1, km to 0.01, with parts rounded so that they still add up to
their totals (``summary.json`` keeps full precision). CSV files are written as
UTF-8 with a byte order mark, which Excel needs to show Chinese correctly. Both
go through :func:`planner.io.write_csv` and :func:`planner.io.write_xlsx`, which
make any text a spreadsheet would run as a formula inert.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from . import maps, tables
from .credits import credit_lines
from .io import check_output_dir, output_dir, write_csv, write_json
from .norms import norms_table
from .pipeline import CoverageRun, GridRun, ReferralRun, SitingRun, resources
from .pipeline.summary import Summary
from .scenarios import CaseCache, Scenario, compare_runs, load_scenario, run_scenario, scenario_input_files


def _summary_frames(summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Return the computed summary tables of a coverage run, by schema name (:data:`planner.tables.SCHEMAS`)."""
    frames = {
        "thresholds": pd.DataFrame(summary["thresholds"]),
        "by_tier": pd.DataFrame([{"tier": t, **v} for t, v in summary["by_tier"].items()]),
    }
    if summary.get("by_district"):  # only with boundaries
        frames["by_district"] = pd.DataFrame(summary["by_district"])
    cap = summary.get("capacity")
    if cap and cap.get("by_district"):
        frames["capacity_by_district"] = pd.DataFrame(cap["by_district"])
    return frames


def summary_tables(summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Turn a run summary into report tables: bilingual headers with units, rounded (:func:`planner.tables.report_table`).

    Parameters
    ----------
    summary
        ``run.summary`` of a coverage run.

    Returns
    -------
    tables
        ``thresholds`` and ``by_tier`` DataFrames; with boundaries ``by_district``, and ``capacity_by_district``
        (persons served, out of reach and over capacity per district) for a run with capacities too.
    """
    return {k: tables.report_table(v, k) for k, v in _summary_frames(summary).items()}


def about_lines(summary: dict[str, Any]) -> list[str]:
    """Return the lines of a ``tables.xlsx`` ``about`` sheet: the run, how its tables are rounded, its data's credits."""
    minutes = summary.get("max_minutes")
    scenario = summary.get("scenario") or {}
    lines = [f"情景 scenario: {scenario.get('title') or scenario.get('name')}"] if scenario.get("name") else []
    lines += [
        f"出行方式 mode: {summary.get('mode')}; 阈值 threshold: {minutes:g} 分钟 min" if isinstance(minutes, (int, float))
        else f"出行方式 mode: {summary.get('mode')}",
        f"人口口径 population: {summary.get('population_unit', '')}",
        "取整 rounding: 人数取整, 百分比与分钟保留1位小数, 公里保留2位; 分项按最大余数法取整, 与合计一致 "
        "persons whole, % and minutes to 0.1, km to 0.01; parts rounded (largest remainder) to add up to their "
        "totals; full precision in summary.json",
        f"planner {summary.get('planner_version', '')}".strip(),
        "数据来源 credits:",
        *credit_lines(summary.get("credits")),
    ]
    return lines


def write_tables(summary: dict[str, Any], folder: Path) -> list[Path]:
    """Write the summary tables as ``tables.xlsx`` (an ``about`` sheet, then one sheet each) and one CSV each.

    Parameters
    ----------
    summary
        ``run.summary`` of a coverage run.
    folder
        Output folder.

    Returns
    -------
    paths
        Files written: ``tables.xlsx``, ``thresholds.csv``, ``by_tier.csv``; with boundaries ``by_district.csv``
        (and ``capacity_by_district.csv`` with capacities too).
    """
    frames = _summary_frames(summary)
    paths = [tables.write_tables(frames, folder / "tables.xlsx", about=about_lines(summary))]
    for name, df in frames.items():
        paths.append(tables.write_table(df, folder / f"{name}.csv", name))
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
        paths.append(tables.write_table(table, folder / "served.csv", "served"))
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
    basemap: str = "auto",
    offline: bool = True,
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
        Basemap of ``map.html``: ``auto`` (``amap`` inside China, ``osm``
        elsewhere), ``osm``, ``amap`` (overlays moved to GCJ-02), ``tianditu``
        (needs ``TIANDITU_KEY``) or ``none``.
    offline
        Inline Leaflet into ``map.html`` so that it opens with no network
        (the default; False loads it from a public CDN).
    force
        Replace `out` even if it holds files planner did not write (see
        :func:`planner.io.check_output_dir`).

    Returns
    -------
    paths
        The files written (in `out`): ``cells.gpkg``, ``institutions.gpkg``,
        ``isochrones.gpkg``, ``districts.gpkg`` (with boundaries),
        ``tables.xlsx``, ``thresholds.csv``, ``by_tier.csv``, ``by_district.csv``
        (with boundaries; see :func:`write_tables`), ``map.html``, ``map.png`` and
        ``summary.json``; with capacities also
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
        write_tables(run.summary, tmp)
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
                         basemap: str = "auto", offline: bool = True, force: bool = False) -> list[Path]:
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
        tables.write_table(run.sites[cols].reset_index(), tmp / "sites.csv", "sites")
        run.sites.reset_index().to_file(tmp / "sites.gpkg", layer="sites", driver="GPKG")
        run.cells.reset_index().to_file(tmp / "sites.gpkg", layer="cells", driver="GPKG")
        if len(run.isochrones):
            run.isochrones.to_file(tmp / "sites.gpkg", layer="isochrones", driver="GPKG")
        if run.curve is not None:
            tables.write_table(run.curve.drop(columns=["sites"]), tmp / "marginal_curve.csv", "marginal_curve",
                               index=True)
        maps.save_map(maps.render_siting_map(run, title=title, basemap=basemap, offline=offline), tmp / "map.html")
        write_summary(run.summary, tmp)
        return _written(tmp, out)


# ---------------------------------------------------------------------------------------------- grids


ASSIGNMENT_COLUMNS = tuple(c for c in tables.SCHEMAS["assignment"].columns if c != "cell_id")  # those the cells have
GRID_COLUMNS = tuple(tables.SCHEMAS["grids"].columns)  # those the grids have, in this order


def write_grid_outputs(run: GridRun, out: str | os.PathLike[str], *, title: str | None = None,
                       basemap: str = "auto", offline: bool = True, force: bool = False) -> list[Path]:
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
        cells["lon"], cells["lat"] = centre.x, centre.y
        tables.write_table(cells[[c for c in ASSIGNMENT_COLUMNS if c in cells.columns]], tmp / "assignment.csv",
                           "assignment", index=True)
        grids = run.grids.drop(columns="geometry").reset_index()
        tables.write_table(grids[[c for c in GRID_COLUMNS if c in grids.columns]], tmp / "grids.csv", "grids")
        if run.districts is not None:
            tables.write_table(run.districts, tmp / "districts.csv", "districts", index=True)
        write_resource_outputs(run, tmp)
        maps.save_map(maps.render_grid_map(run, title=title, basemap=basemap, offline=offline), tmp / "map.html")
        write_summary(run.summary, tmp)
        return _written(tmp, out)


# ------------------------------------------------------------------------------------------- referral


REFERRAL_CSV_COLUMNS = tuple(tables.SCHEMAS["referral"].columns)  # those the table has, in this order


def write_referral_outputs(run: ReferralRun, out: str | os.PathLike[str], *, title: str | None = None,
                           basemap: str = "auto", offline: bool = True, force: bool = False) -> list[Path]:
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
        from-institution (times in minutes to 0.1, distances in km to
        0.01; empty where not routed, with the reason in ``status``);
        ``routes.gpkg`` has the layers ``routes`` (the route lines) and
        ``institutions`` (the from- and to-institutions with their role).
    """
    maps.get_basemap(basemap)
    with output_dir(out, kind="referral", inputs=run.summary.get("inputs", {}), force=force) as tmp:
        table = run.table[[c for c in REFERRAL_CSV_COLUMNS if c in run.table.columns]]
        tables.write_table(table, tmp / "referral.csv", "referral")
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


def write_scenario_outputs(run: CoverageRun, scenario: Scenario, out: str | os.PathLike[str], *, basemap: str = "auto",
                           offline: bool = True, force: bool = False) -> list[Path]:
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
        ``thresholds.csv``, ``by_tier.csv``, ``by_district.csv`` (with boundaries; see
        :func:`write_tables`), ``map.html``, ``map.png``, ``scenario.json`` and ``summary.json``; ``served.csv``
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
    basemap: str = "auto",
    offline: bool = True,
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
        for name in ("by_district", "by_tier"):
            frame = pd.DataFrame(comparison[name], columns=None if comparison[name] else [name[3:]])
            tables.write_table(frame, tmp / f"compare_{name}.csv", f"compare_{name}")
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
    basemap: str = "auto",
    offline: bool = True,
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
