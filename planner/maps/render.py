"""Per-run maps: a typed run in, an assembled Folium map out, and the page writers.

* :func:`render_coverage_map`, :func:`render_compare_map`,
  :func:`render_siting_map`, :func:`render_grid_map`,
  :func:`render_referral_map` - one map per kind of run, built from :mod:`planner.maps.basemaps` and :mod:`planner.maps.layers`;
* :func:`side_by_side_html` - two saved maps in one page;
* :func:`save_map` - write a map and warn when it is too large to mail.

The run types are only named for type checking, so importing this module
never imports :mod:`planner.pipeline`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import folium
import geopandas as gpd
import numpy as np
import shapely

from .. import settings
from .basemaps import esc, new_map
from .colouring import GRID_PALETTE
from .layers import (
    DISTRICT_COLOUR,
    GAP_COLOUR,
    UNREACHABLE_COLOUR,
    LegendEntry,
    LegendSection,
    _feature_collection,
    _for_map,
    add_cell_classes,
    add_districts,
    add_grids,
    add_institutions,
    add_isochrones,
    add_layer_control,
    add_legend,
    add_residual_unserved,
    add_routes,
    add_travel_time_cells,
    outline_legend,
    residual_legend,
    route_legend,
    tier_legend,
    travel_time_legend,
)
from .symbols import (
    add_grid_labels,
    add_proposed_sites,
    grid_label_legend,
    institution_counts,
    institution_legend,
    proposed_legend,
)

if TYPE_CHECKING:
    from ..pipeline import CoverageRun, GridRun, ReferralRun, SitingRun

logger = logging.getLogger(__name__)

EMAIL_SIZE_MB = 5.0  # megabytes; save_map warns above this


CHANGE_CLASSES: dict[str, tuple[str, str]] = {  # value of compare cells' ``change`` -> (colour, label)
    "gained": ("#1a9850", "新覆盖 newly covered"),
    "lost": ("#d73027", "失去覆盖 newly lost"),
    "nearest_changed": ("#74add1", "最近机构改变 nearest institution changed"),
}


SITING_CLASSES: dict[str, tuple[str, str]] = {  # value of siting cells' ``change`` -> (colour, label)
    "newly_covered": ("#1a9850", "新增覆盖 newly covered by the proposed sites"),
    "covered": ("#a6d96a", "已覆盖 already covered"),
    "gap": (GAP_COLOUR, "仍未覆盖 still beyond the threshold"),
    "unreachable": (UNREACHABLE_COLOUR, "不可达 unreachable"),
}


BASELINE_COLOUR = "#54278f"  # nearest-lead zone outlines
MOVED_COLOUR = "#e7298a"  # cells whose lead differs from the nearest one


# --------------------------------------------------------------------------- coverage and scenario maps


def render_coverage_map(
    run: CoverageRun,
    *,
    title: str | None = None,
    isochrone_minutes: float | None = None,
    basemap: str = "auto",
    offline: bool = True,
    tile_url: str | None = None,
    approval_number: str | None = None,
) -> folium.Map:
    """Draw a coverage run on an interactive map.

    Parameters
    ----------
    run
        Result of :func:`planner.pipeline.run_coverage`.
    title
        Title shown at the top of the legend and in the browser tab.
    isochrone_minutes
        Threshold whose isochrones are shown at start (the largest by default).
    basemap
        One of :data:`BASEMAPS`; ``auto`` (the default) is ``amap`` for a study
        area in China, ``osm`` elsewhere; on ``amap`` all overlays are moved to GCJ-02.
    offline
        Inline Leaflet so the map opens with no network (the default; see :func:`new_map`).
    tile_url
        Tile URL template replacing the provider's (e.g. an intranet mirror).
    approval_number
        Map approval number (审图号) printed with Chinese basemaps.

    Returns
    -------
    m
        A Folium map; save it with :func:`save_map` or ``m.save("map.html")``.

    Raises
    ------
    InvalidValueError
        For an unknown basemap or a missing Tianditu key.
    """
    s = run.summary
    minutes = [row["minutes"] for row in s["thresholds"]]
    tmax = max(minutes)
    cells = run.cells
    bounds = cells.total_bounds if len(cells) else run.institutions.total_bounds
    unit = s.get("population_unit")
    m = new_map(bounds, basemap=basemap, offline=offline, title=title or f"{tmax:g}分钟医疗服务圈 {tmax:g}-minute coverage",
                credits=s.get("credits"), tile_url=tile_url, approval_number=approval_number)
    add_travel_time_cells(m, cells, minutes=minutes, max_snap_m=s["max_snap_m"],
                          name=f"出行时间 Travel time ({s['mode']})")
    has_districts = run.districts is not None and len(run.districts) > 0
    if has_districts:
        add_districts(m, run.districts, max_minutes=tmax)
    iso_layers = add_isochrones(m, run.isochrones, minutes=minutes, shown=isochrone_minutes or tmax,
                                dissolved=getattr(run, "isochrones_dissolved", None))
    residual = getattr(run, "residual_unserved", None)
    if residual is not None:
        add_residual_unserved(m, residual)
    add_institutions(m, run.institutions)
    add_layer_control(m)
    summary = LegendSection(
        f"{tmax:g}分钟医疗服务圈 {tmax:g}-minute coverage: {s['coverage_pct']:.1f}%",
        lines=(f"{s['population_covered']:,.0f} / {s['population_total']:,.0f} {unit or ''}",
               f"方式 mode: {s['mode']}"),
    )
    extra = [residual_legend(s["capacity"])] if residual is not None and "capacity" in s else []
    counts = institution_counts(run.institutions, by_tier=s.get("by_tier"))
    add_legend(m, [summary, travel_time_legend(minutes), *extra,
                   outline_legend(districts=has_districts, isochrones=bool(iso_layers)), institution_legend(counts)],
               title=title)
    return m


def render_compare_map(
    a: CoverageRun,
    b: CoverageRun,
    cells: gpd.GeoDataFrame,
    comparison: dict[str, Any],
    *,
    title: str | None = None,
    basemap: str = "auto",
    offline: bool = True,
) -> folium.Map:
    """Draw the difference between two scenario runs.

    Parameters
    ----------
    a, b
        Baseline and what-if runs.
    cells
        Cells with ``change`` from :func:`planner.scenarios.compare_runs`.
    comparison
        Figures from :func:`planner.scenarios.compare_runs`.
    title
        Title of the legend and the page.
    basemap, offline
        As in :func:`new_map`.

    Returns
    -------
    m
        Map with the changed cells (newly covered, newly lost, nearest
        institution changed), both runs' travel-time bands (off at start),
        added and removed institutions, and the what-if's institutions.
    """
    s = b.summary
    minutes = [row["minutes"] for row in s["thresholds"]]
    tmax = comparison["max_minutes"]
    unit = s.get("population_unit")
    m = new_map(cells.total_bounds, basemap=basemap, offline=offline, title=title or "情景比较 scenario comparison",
                credits=s.get("credits"))
    add_travel_time_cells(m, a.cells, minutes=minutes, max_snap_m=a.summary["max_snap_m"],
                          name=f"A 出行时间 travel time: {comparison.get('a') or 'A'}", show=False)
    add_travel_time_cells(m, b.cells, minutes=minutes, max_snap_m=s["max_snap_m"],
                          name=f"B 出行时间 travel time: {comparison.get('b') or 'B'}", show=False)
    add_cell_classes(m, cells, column="change", classes=CHANGE_CLASSES, name="变化 Change A → B")
    if b.districts is not None and len(b.districts):
        add_districts(m, b.districts, max_minutes=tmax)
    added = [r["facility_id"] for r in comparison["institutions_added"]]
    removed = [r["facility_id"] for r in comparison["institutions_removed"]]
    kept = b.institutions.drop(index=added)
    add_institutions(m, kept, name_prefix="B ")
    if added:
        add_institutions(m, b.institutions.loc[added], name_prefix="新增 added: ")
    if removed:
        gone = a.institutions.loc[removed].assign(snap_status="removed")
        add_institutions(m, gone, name_prefix="撤销 removed: ")
    add_layer_control(m)
    head = LegendSection(
        f"{tmax:g}分钟覆盖率 coverage: {comparison['coverage_pct_a']:.1f}% → {comparison['coverage_pct_b']:.1f}% "
        f"({comparison['change_pp']:+.2f} pp)",
        lines=(f"新覆盖 newly covered: {comparison['population_newly_covered']:,.0f} {unit or ''}",
               f"失去覆盖 newly lost: {comparison['population_newly_lost']:,.0f}",
               f"新增/撤销机构 added/removed institutions: {len(added)}/{len(removed)}"),
    )
    change = LegendSection("变化 Change", entries=tuple(LegendEntry(label, colour, explains="planner-cells")
                                                        for colour, label in CHANGE_CLASSES.values()))
    counts = institution_counts(b.institutions, by_tier=s.get("by_tier"))
    add_legend(m, [head, change, outline_legend(districts=b.districts is not None and len(b.districts) > 0),
                   institution_legend(counts, heading="方案B机构 Institutions in B", removed=bool(removed))], title=title)
    return m


def side_by_side_html(left: str, right: str, *, title: str, left_label: str, right_label: str) -> str:
    """Return a page showing two saved maps side by side (each in a frame), for what-if comparisons.

    Parameters
    ----------
    left, right
        File names of the two map pages, relative to the page.
    title, left_label, right_label
        Page title and the captions (escaped).

    Returns
    -------
    html
        The page; it loads nothing but the two files. Each caption is a bar
        above its map (``.planner-caption``), never over it, so it cannot
        cover the map's zoom, full-screen or layer controls.
    """
    cap = ("flex:0 0 auto;padding:3px 8px;background:#f0f0f0;border-bottom:1px solid #999;text-align:center;"
           "font:bold 13px/1.3 'Noto Sans CJK SC','Microsoft YaHei','PingFang SC',sans-serif;"
           "white-space:nowrap;overflow:hidden;text-overflow:ellipsis")
    half = "flex:1;display:flex;flex-direction:column;min-width:0"
    frame = "border:0;width:100%;flex:1 1 auto;min-height:0"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title></head>"
            "<body style='margin:0;display:flex;height:100vh'>"
            f"<div style='{half}'><div class='planner-caption' style='{cap}' title='{esc(left_label)}'>{esc(left_label)}</div>"
            f"<iframe src='{esc(left)}' style='{frame}'></iframe></div>"
            f"<div style='{half};border-left:2px solid #333'>"
            f"<div class='planner-caption' style='{cap}' title='{esc(right_label)}'>{esc(right_label)}</div>"
            f"<iframe src='{esc(right)}' style='{frame}'></iframe></div></body></html>")


# --------------------------------------------------------------------------- siting and grid maps


def render_siting_map(run: SitingRun, *, title: str | None = None, basemap: str = "auto", offline: bool = True) -> folium.Map:
    """Draw a branch-siting run: proposed sites, their isochrones and the newly covered cells.

    Parameters
    ----------
    run
        Result of :func:`planner.pipeline.run_siting`.
    title
        Title of the legend and the page.
    basemap, offline
        As in :func:`new_map`.

    Returns
    -------
    m
        The map.
    """
    s = run.summary
    unit = s.get("population_unit")
    tmax = s["max_minutes"]
    m = new_map(run.cells.total_bounds, basemap=basemap, offline=offline, title=title or "分支机构选址 branch siting",
                credits=s.get("credits"))
    add_cell_classes(m, run.cells, column="change", classes=SITING_CLASSES, name=f"{tmax:g}分钟覆盖 coverage")
    if run.case.districts is not None:
        add_districts(m, run.case.districts, max_minutes=tmax)
    if len(run.isochrones):
        add_isochrones(m, run.isochrones, minutes=[tmax], shown=tmax)
    existing = _siting_institutions(run)
    add_institutions(m, existing, name_prefix="现有 existing: ")
    if len(run.sites):
        add_proposed_sites(m, run.sites, population_unit=unit)
    add_layer_control(m)
    head = LegendSection(
        f"{tmax:g}分钟覆盖率 coverage: {s['coverage_pct_before']:.1f}% → {s['coverage_pct_after']:.1f}%",
        lines=(f"新增 {s['new_sites']} 处分支机构 new sites ({s['model']}, {s['solver_status']})",
               f"新增覆盖 newly covered: {s['population_covered_after'] - s['population_covered_before']:,.0f} {unit or ''}"),
    )
    change = LegendSection("覆盖变化 coverage", entries=tuple(LegendEntry(label, colour, explains="planner-cells")
                                                          for colour, label in SITING_CLASSES.values()))
    iso = outline_legend(districts=run.case.districts is not None, isochrones=bool(len(run.isochrones)))
    if len(run.isochrones):
        iso = LegendSection("", tuple(LegendEntry("拟建点等时圈 isochrone of the proposed sites", e.colour, explains=e.explains)
                                      if e.explains == "planner-isochrones" else e for e in iso.entries))
    add_legend(m, [head, *([proposed_legend(run.sites)] if len(run.sites) else []), change, iso,
                   institution_legend(institution_counts(existing), heading="现有机构 Existing institutions")], title=title)
    return m


def _siting_institutions(run: SitingRun) -> gpd.GeoDataFrame:
    """Return the institutions of the service tiers: the existing sites, and the others (off the network) to fade.

    Counted as a coverage run's ``by_tier`` counts them: every institution of
    the tier read (see :func:`planner.maps.institution_counts`).
    """
    inst = run.case.institutions
    tiers = run.summary.get("service_tiers") or settings.TIERS
    inst = inst[inst["tier"].isin(tiers).to_numpy()].copy()
    inst["snap_status"] = np.where(inst.index.isin(run.existing.index), "snapped", "off_network")
    return inst


#: the grid solve's status, as a planner reads it in the legend
_SOLVE_WORDS = {"optimal": "最优解 optimal", "work_limit": "达到计算量上限 stopped at the work limit",
                "time_limit": "达到时间上限 stopped at the time limit", "heuristic": "启发式 heuristic"}


def _solve_words(status: str, gap: float | None) -> str:
    """How the grid solve ended, in words; with its gap when a limit stopped it (``..., 差距 gap 1.4%``)."""
    words = _SOLVE_WORDS.get(status, status)
    stopped = status in ("work_limit", "time_limit") and gap is not None and 0 < gap < float("inf")
    return f"{words}, 差距 gap {gap:.1%}" if stopped else words


def render_grid_map(run: GridRun, *, title: str | None = None, basemap: str = "auto", offline: bool = True) -> folium.Map:
    """Draw a consortium-grid run: grids, leads, members, nearest-lead zones and moved cells.

    Parameters
    ----------
    run
        Result of :func:`planner.pipeline.run_grids`.
    title
        Title of the legend and the page.
    basemap, offline
        As in :func:`new_map`.

    Returns
    -------
    m
        The map.
    """
    s = run.summary
    unit = s.get("population_unit")
    m = new_map(run.cells.total_bounds, basemap=basemap, offline=offline, title=title or "医联体网格 consortium grids",
                credits=s.get("credits"))
    add_grids(m, run.grids)
    add_grid_labels(m, run.grids)
    base = run.baseline_grids
    if len(base):
        gdf = gpd.GeoDataFrame(geometry=shapely.simplify(base.geometry.to_numpy(), 5e-5), crs=base.crs)
        props = [{"label": esc(f"就近划分 nearest lead: {n} — {p:,.0f} 人 persons")}
                 for n, p in zip(base["name"], base["population"], strict=True)]
        folium.GeoJson(
            _feature_collection(_for_map(m, gdf), props, ids=[f"nearest-{i}" for i in range(len(base))]),
            name=esc("就近划分 Nearest-lead zones"), show=False,
            style_function=lambda _f: {"fill": False, "color": BASELINE_COLOUR, "weight": 2, "dashArray": "4 4",
                                       "className": "planner-nearest-zones"},
            tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
        ).add_to(m)
    moved = run.cells.assign(_moved=np.where(run.cells["moved"], "moved", ""))
    add_cell_classes(m, moved, column="_moved", classes={"moved": (MOVED_COLOUR, "调整归属 moved from the nearest lead")},
                     name="调整归属 Moved cells", show=False)
    if run.case.districts is not None:
        add_districts(m, run.case.districts)
    leads = run.leads.copy()
    leads["tier"] = leads["tier"].where(leads["tier"].isin(settings.TIERS), "tertiary")
    add_institutions(m, leads, name_prefix="牵头 lead: ")
    if len(run.members):
        add_institutions(m, run.members, name_prefix="成员 member: ")
    add_layer_control(m)
    cmp = s["comparison"]
    lo, hi = s["load_ratio_range"]
    blo, bhi = s["baseline_load_ratio_range"]
    head = LegendSection(
        f"{s['n_grids']} 个网格 grids ({_solve_words(s['solver_status'], s.get('gap'))}, ±{s['tolerance']:.0%})",
        lines=(f"负荷比 load ratio {lo:.2f}–{hi:.2f} (就近 nearest {blo:.2f}–{bhi:.2f})",
               f"平均出行 mean time {cmp.get('mean_travel_time_s', float('nan')) / 60:.1f} 分钟 min "
               f"(就近 nearest {cmp.get('baseline_mean_travel_time_s', float('nan')) / 60:.1f})",
               f"调整归属 moved: {cmp.get('population_moved', 0):,.0f} {unit or ''}"),
    )
    lines = LegendSection("图层 Layers", entries=(
        LegendEntry("网格（相邻不同色）grid, neighbours differ in colour", GRID_PALETTE[0], explains="planner-grids"),
        grid_label_legend(),
        LegendEntry("就近划分 nearest-lead zone", BASELINE_COLOUR, "dashed", explains="planner-nearest-zones"),
        LegendEntry("调整归属 moved cell", MOVED_COLOUR, explains="planner-cells"),
        *([LegendEntry("区县 district", DISTRICT_COLOUR, "dashed", explains="planner-districts")]
          if run.case.districts is not None else []),
    ))
    n_out = len(s.get("leads_excluded") or [])
    present = {*leads["tier"], *(run.members["tier"] if len(run.members) else [])}
    who = LegendSection("牵头与成员机构 Leads and members", tuple(
        e for e in tier_legend().entries if e.explains.removeprefix("planner-tier-") in present), (
        f"牵头 leads: {len(run.leads)} (另 {n_out} 所研究区外或离路过远 more outside the study area or off the roads, "
        "见 see summary.json)" if n_out else f"牵头 leads: {len(run.leads)}",
        f"成员 members: {len(run.members)} (研究区内 in the study area)"))
    add_legend(m, [head, lines, who], title=title)
    return m


# --------------------------------------------------------------------------- referral map


def render_referral_map(run: ReferralRun, *, title: str | None = None, basemap: str = "auto",
                        offline: bool = True) -> folium.Map:
    """Draw a referral run: route lines coloured by travel time, the referring and receiving institutions, the leads.

    Parameters
    ----------
    run
        Result of :func:`planner.pipeline.run_referral`.
    title
        Title of the legend and the page.
    basemap, offline
        As in :func:`new_map`.

    Returns
    -------
    m
        The map: routes to the nearest receiving institution (and, with
        leads, to the own lead, off at start) in three travel-time bands up
        to the threshold and the gap colour beyond it; institutions off the
        network have a black outline.
    """
    s = run.summary
    tmax = float(s["max_minutes"])
    bands = (tmax / 3, 2 * tmax / 3, tmax)
    unit = s.get("population_unit")
    inst = run.case.institutions
    frm = inst.loc[run.table["from_id"].to_numpy()].copy()
    frm["snap_status"] = np.where(run.table["status"].to_numpy() == "unsnapped", "unsnapped", "snapped")
    to = inst[inst["tier"].isin(s["to_tiers"]).to_numpy()]
    bounds = run.case.cells.total_bounds if len(run.case.cells) else frm.total_bounds
    m = new_map(bounds, basemap=basemap, offline=offline, title=title or f"{tmax:g}分钟转诊 {tmax:g}-minute referral",
                credits=s.get("credits"))
    has_districts = run.case.districts is not None and len(run.case.districts) > 0
    if has_districts:
        add_districts(m, run.case.districts)
    kind = run.routes["kind"].to_numpy() if len(run.routes) else np.array([], dtype=object)
    add_routes(m, run.routes[kind == "nearest"], bands=bands, name="转诊路线 Routes to the nearest receiving institution")
    if (kind == "lead").any():
        add_routes(m, run.routes[kind == "lead"], bands=bands, name="至牵头医院 Routes to the own lead", show=False)
    add_institutions(m, to, name_prefix="接收 to: ")
    if run.leads is not None and len(run.leads):
        leads = run.leads.copy()
        leads["tier"] = leads["tier"].where(leads["tier"].isin(settings.TIERS), "tertiary")
        add_institutions(m, leads, name_prefix="牵头 lead: ")
    add_institutions(m, frm, name_prefix="转出 from: ")
    add_layer_control(m)
    pop = s["population"]
    lines = [f"{s['n_within']} / {s['n_from']} 机构 institutions ({'+'.join(s['from_tiers'])} → {'+'.join(s['to_tiers'])}, "
             f"{s['mode']})",
             f"人口加权 population-weighted: {_pct_text(pop['within_pct'])} of {pop['total']:,.0f} {unit or ''}",
             f"未接入路网 off the network: {s['n_unsnapped']}; 无路线 no route: {s['n_unreachable']}"]
    if "lead_within_pct" in s:
        lines.append(f"{tmax:g}分钟内到达牵头医院 own lead within {tmax:g} min: {_pct_text(s['lead_within_pct'])}")
    head = LegendSection(f"{tmax:g}分钟内可转诊 referral within {tmax:g} min: {_pct_text(s['within_pct'])}", lines=tuple(lines))
    add_legend(m, [head, route_legend(bands), outline_legend(districts=has_districts), tier_legend()], title=title)
    return m


def _pct_text(pct: float | None) -> str:
    return "—" if pct is None else f"{pct:.1f}%"


# --------------------------------------------------------------------------- saving


def save_map(m: folium.Map, path: str | os.PathLike[str]) -> int:
    """Write a map to an HTML file and log its size.

    Parameters
    ----------
    m
        A map.
    path
        Output ``.html`` file.

    Returns
    -------
    size
        File size in bytes.
    """
    html = m.get_root().render()  # render first: a failing render must not leave a half-written, open file
    Path(path).write_text(html, encoding="utf-8")
    size = Path(path).stat().st_size
    logger.info("wrote %s (%.2f MB)", path, size / 1e6)
    if size > EMAIL_SIZE_MB * 1e6:
        logger.warning("%s is %.1f MB, more than most mail servers accept (%g MB); "
                       "fix: fewer thresholds, --no-isochrones or a larger --cell-size", path, size / 1e6, EMAIL_SIZE_MB)
    return size
