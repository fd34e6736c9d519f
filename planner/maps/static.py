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
from .layers import DISTRICT_COLOUR, GAP_COLOUR, TIER_COLOURS, TIER_RADIUS_PX, UNREACHABLE_COLOUR, _bands, _dissolve

if TYPE_CHECKING:
    from ..pipeline import CoverageRun


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
    cells = run.cells.to_crs(run.net.crs)
    t = cells["travel_time_min"].to_numpy(dtype=float)
    with plt.rc_context({"font.family": [font, "DejaVu Sans"]}):
        fig, ax = plt.subplots(figsize=(10, 9))
        handles = []

        def draw(sel: np.ndarray, colour: str) -> None:
            if sel.any():  # dissolve first: per-cell polygons leave hairline seams in the PNG
                gpd.GeoSeries([_dissolve(cells.geometry.to_numpy()[sel], coverage=True)], crs=cells.crs).plot(
                    ax=ax, color=colour, linewidth=0)

        for lo, hi, colour, _label in _bands(tmax, minutes):
            draw(np.isfinite(t) & (t > lo if lo > 0 else t >= 0) & (t <= hi), colour)
            handles.append(Patch(color=colour, label=f"{lo:g}–{hi:g} min"))
        draw(np.isfinite(t) & (t > tmax), GAP_COLOUR)
        draw(~np.isfinite(t), UNREACHABLE_COLOUR)
        handles += [Patch(color=GAP_COLOUR, label=lab("缺口", f"gap (>{tmax:g} min)")),
                    Patch(color=UNREACHABLE_COLOUR, label=lab("不可达", "unreachable"))]
        if run.districts is not None and len(run.districts):
            d = run.districts.to_crs(run.net.crs)
            d.boundary.plot(ax=ax, color=DISTRICT_COLOUR, linewidth=0.8, linestyle="--")
            for _, row in d.iterrows():
                share = row.get("share_in_study_area_pct", 100.0)
                if row.get("population", 0) and (share != share or share >= 20):
                    p = row.geometry.intersection(shapely.box(*cells.total_bounds)).representative_point()
                    pct = row.get("coverage_pct")
                    ax.annotate(f"{row['name']}\n{pct:.0f}%" if pct == pct else row["name"], (p.x, p.y),
                                ha="center", fontsize=8, color=DISTRICT_COLOUR)
        inst = run.institutions[run.institutions["snap_status"] == "snapped"].to_crs(run.net.crs)
        for tier in settings.TIERS:
            sel = inst[inst["tier"] == tier]
            if len(sel):
                sel.plot(ax=ax, color=TIER_COLOURS[tier], markersize=TIER_RADIUS_PX[tier] * 4, edgecolor="white", linewidth=0.5)
                handles.append(Line2D([], [], marker="o", linestyle="", color=TIER_COLOURS[tier],
                                      label=lab(settings.TIER_LABELS_ZH[tier].split("(")[0], tier)))
        xmin, ymin, xmax, ymax = cells.total_bounds
        ax.set_xlim(xmin, xmax)
        ax.set_ylim(ymin, ymax)
        ax.set_axis_off()
        ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)
        head = title or lab(f"{tmax:g}分钟医疗服务圈", f"{tmax:g}-minute coverage")
        ax.set_title(f"{head}\n{tmax:g} min {s['mode']}: {s['coverage_pct']:.1f}% of "
                     f"{s['population_total']:,.0f} {s.get('population_unit', '')}", fontsize=11)
        scale_m = 5000 if xmax - xmin > 15000 else 1000
        x0, y0 = xmin + (xmax - xmin) * 0.04, ymin + (ymax - ymin) * 0.04
        ax.plot([x0, x0 + scale_m], [y0, y0], color="black", linewidth=3)
        ax.text(x0 + scale_m / 2, y0 + (ymax - ymin) * 0.01, f"{scale_m / 1000:g} km", ha="center", fontsize=8)
        fig.text(0.01, 0.01, "© OpenStreetMap contributors (ODbL); population: WorldPop (CC BY 4.0)"
                 if "worldpop" in str(s.get("population_unit", "")).lower() or not s.get("population_unit")
                 else "© OpenStreetMap contributors (ODbL)", fontsize=7, color="#555555")
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        plt.close(fig)
    return path
