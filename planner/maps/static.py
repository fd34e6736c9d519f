"""The static coverage map: a PNG for reports, drawn with matplotlib (no tile server needed).

matplotlib is imported when :func:`render_static_map` is called, so the
interactive maps do not need it. The colours are those of
:mod:`planner.maps.layers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import shapely

from .. import settings
from .._fonts import cjk_font_family
from ..credits import credit_lines
from .layers import (
    DISTRICT_COLOUR,
    GAP_COLOUR,
    TIER_COLOURS,
    TIER_RADIUS_PX,
    UNREACHABLE_COLOUR,
    _band_masks,
    _bands,
    _dissolve_cells,
)
from .symbols import institution_counts

if TYPE_CHECKING:
    from ..pipeline import CoverageRun

_MODES_ZH = {"walk": "步行", "ebike": "电动自行车", "drive": "驾车"}


def _legend_items(run: CoverageRun) -> list[tuple[str, str, str]]:
    """Return the PNG legend, bilingual: (kind, colour, label) per entry, top to bottom (kind: area, line or point).

    Tiers are counted as on the interactive map and in the tables
    (:func:`planner.maps.institution_counts`); the PNG draws those on the
    network and says how many more there are.
    """
    s = run.summary
    minutes = [row["minutes"] for row in s["thresholds"]]
    tmax = max(minutes)
    items = [("area", colour, _band_label(lo, hi)) for lo, hi, colour, _label in _bands(tmax, minutes)]
    items += [("area", GAP_COLOUR, f"缺口 gap (> {tmax:g} 分钟 min)"),
              ("area", UNREACHABLE_COLOUR, "不可达 unreachable (no road or route)")]
    if run.districts is not None and len(run.districts):
        items.append(("line", DISTRICT_COLOUR, "区县界 district boundary"))
    counts = institution_counts(run.institutions, by_tier=s.get("by_tier"))
    for tier, (total, on) in counts.items():
        if on:
            more = f" (另 {total - on} 所不在路网 {total - on} more off the network)" if total > on else ""
            items.append(("point", TIER_COLOURS[tier], f"{settings.TIER_LABELS_ZH[tier].split('(')[0]} {tier}: {on}{more}"))
    return items


def _band_label(lo: float, hi: float) -> str:
    """Return the label of a travel-time band in the PNG legend, bilingual.

    >>> _band_label(0, 5), _band_label(5, 10)
    ('≤ 5 分钟 min', '5–10 分钟 min')
    """
    return f"≤ {hi:g} 分钟 min" if lo <= 0 else f"{lo:g}–{hi:g} 分钟 min"


def _band_shapes(run: CoverageRun) -> tuple[list[tuple[np.ndarray, str, str]], np.ndarray]:
    """Return the cells of each travel-time band, gap and unreachable, and their outlines in the network's CRS.

    The cells are dissolved in their own CRS, where cells from a raster lie on
    one grid and are traced rather than united
    (:func:`planner.maps.layers._dissolve_cells`). The outlines get a vertex
    every cell side before they are projected, so that (square cells) they
    pass through the projected cell corners, as the projected cells' union
    did: the PNG of the 1.4 M-node benchmark run is pixel for pixel the one
    drawn from the projected cells.
    """
    minutes = [row["minutes"] for row in run.summary["thresholds"]]
    t = run.cells["travel_time_min"].to_numpy(dtype=float)
    geoms = run.cells.geometry.to_numpy()
    masks = _band_masks(t, max(minutes), minutes)
    shapes = gpd.GeoSeries(_dissolve_cells(geoms, [m[0] for m in masks], round_traced=False), crs=run.cells.crs)
    side = float(np.sqrt(np.median(shapely.area(geoms)))) if len(geoms) else 0.0
    if side > 0:
        shapes = shapes.segmentize(side * (1 + 1e-6))  # an edge of k cell sides in k pieces, not k + 1
    return masks, shapes.to_crs(run.net.crs).to_numpy()


def render_static_map(run: CoverageRun, path: str, *, title: str | None = None, dpi: int = 150) -> str:
    """Draw a coverage run as a static PNG for reports (no tile server needed).

    Labels are bilingual. The Chinese font is Noto Sans CJK SC from the `mplfonts`
    pip package, registered at run time (:mod:`planner._fonts`), so no system
    font is needed and matplotlib's font cache does not matter.

    Parameters
    ----------
    run
        Result of :func:`planner.pipeline.run_coverage`.
    path
        Output ``.png`` file.
    title
        Figure title.
    dpi
        Resolution in dots per inch.

    Returns
    -------
    path
        The file written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    font = cjk_font_family()  # raises MissingDependencyError rather than draw empty boxes

    def lab(cn: str, en: str) -> str:
        return f"{cn} {en}"

    s = run.summary
    minutes = [row["minutes"] for row in s["thresholds"]]
    tmax = max(minutes)
    masks, shapes = _band_shapes(run)
    drawn = [i for i, (sel, _colour, _label) in enumerate(masks) if sel.any()]
    # every cell is in one band: the outlines span the cells (their projected corners)
    xmin, ymin, xmax, ymax = shapely.total_bounds(shapes[drawn]) if drawn else run.cells.to_crs(run.net.crs).total_bounds
    with plt.rc_context({"font.family": [font, "DejaVu Sans"]}):
        fig, ax = plt.subplots(figsize=(10, 9))
        if drawn:  # dissolved: per-cell polygons leave hairline seams in the PNG; one collection, drawn in band order
            gpd.GeoSeries(shapes[drawn], crs=run.net.crs).plot(ax=ax, color=[masks[i][1] for i in drawn], linewidth=0)
        handles = [Patch(color=colour, label=label) if kind == "area" else
                   Line2D([], [], color=colour, linewidth=0.8, linestyle="--", label=label) if kind == "line" else
                   Line2D([], [], marker="o", linestyle="", color=colour, label=label)
                   for kind, colour, label in _legend_items(run)]
        if run.districts is not None and len(run.districts):
            d = run.districts.to_crs(run.net.crs)
            d.boundary.plot(ax=ax, color=DISTRICT_COLOUR, linewidth=0.8, linestyle="--")
            for _, row in d.iterrows():
                share = row.get("share_in_study_area_pct", 100.0)
                if row.get("population", 0) and (share != share or share >= 20):
                    p = row.geometry.intersection(shapely.box(xmin, ymin, xmax, ymax)).representative_point()
                    pct = row.get("coverage_pct")
                    ax.annotate(f"{row['name']}\n{pct:.0f}%" if pct == pct else row["name"], (p.x, p.y),
                                ha="center", fontsize=8, color=DISTRICT_COLOUR)
        inst = run.institutions[run.institutions["snap_status"] == "snapped"].to_crs(run.net.crs)
        for tier in settings.TIERS:
            sel = inst[inst["tier"] == tier]
            if len(sel):
                sel.plot(ax=ax, color=TIER_COLOURS[tier], markersize=TIER_RADIUS_PX[tier] * 4, edgecolor="white", linewidth=0.5)
        ax.set_xlim(xmin, xmax)
        ax.set_ylim(ymin, ymax)
        ax.set_axis_off()
        ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9, title=lab("图例", "Legend"),
                  title_fontsize=8)
        head = title or lab(f"{tmax:g}分钟医疗服务圈", f"{tmax:g}-minute coverage")
        ax.set_title(f"{head}\n{tmax:g} 分钟 min, {_MODES_ZH.get(s['mode'], '')} {s['mode']}: 覆盖 coverage "
                     f"{s['coverage_pct']:.1f}% / {s['population_total']:,.0f} {s.get('population_unit', '')}", fontsize=11)
        scale_m = 5000 if xmax - xmin > 15000 else 1000
        x0, y0 = xmin + (xmax - xmin) * 0.04, ymin + (ymax - ymin) * 0.04
        ax.plot([x0, x0 + scale_m], [y0, y0], color="black", linewidth=3)
        ax.text(x0 + scale_m / 2, y0 + (ymax - ymin) * 0.01, f"{scale_m / 1000:g} km", ha="center", fontsize=8)
        fig.text(0.01, 0.01, "\n".join(credit_lines(s.get("credits"))), fontsize=7, color="#555555", va="bottom")
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        plt.close(fig)
    return path
