"""Interactive Folium maps of coverage results.

One cartography for every map: institutions coloured by tier, cells in
travel-time bands (sequential greens, gaps in orange, unreachable in grey),
districts with coverage in their tooltips, isochrones, a bilingual legend, a
layer control and the data attribution (© OpenStreetMap contributors; WorldPop).

Every string that comes from a user's file (institution and district names)
is HTML-escaped before it reaches the page, so a name cannot inject script.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import MacroElement, Template

from . import settings

if TYPE_CHECKING:
    from .pipeline import CoverageRun

TIER_COLOURS: dict[str, str] = {
    "tertiary": "#7b3294",
    "secondary": "#2166ac",
    "primary": "#d6604d",
    "station": "#4d4d4d",
}
TIER_RADIUS_PX: dict[str, int] = {"tertiary": 8, "secondary": 6, "primary": 5, "station": 3}
BAND_COLOURS = ("#006837", "#31a354", "#78c679", "#c2e699", "#ffffcc")  # sequential, fastest first
GAP_COLOUR = "#f16913"
UNREACHABLE_COLOUR = "#969696"
_PRECISION_DEG = 1e-5  # ~1 m; keeps the HTML small


def esc(value: Any) -> str:
    """HTML-escape a value for display in a map.

    Parameters
    ----------
    value
        Any value; None becomes an empty string.

    Returns
    -------
    text
        Escaped text.

    Examples
    --------
    >>> esc("<script>alert(1)</script>")
    '&lt;script&gt;alert(1)&lt;/script&gt;'
    """
    return "" if value is None else html.escape(str(value), quote=True)


def attribution(population_unit: str | None = None) -> str:
    """Return the attribution line shown on every map.

    Parameters
    ----------
    population_unit
        Population label; WorldPop is credited when it mentions WorldPop.

    Returns
    -------
    attribution
        HTML attribution text.
    """
    parts = ['&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors (ODbL)']
    if population_unit is None or "worldpop" in population_unit.lower():
        parts.append('Population: <a href="https://www.worldpop.org">WorldPop</a> (CC BY 4.0)')
    return " | ".join(parts)


def _bands(max_minutes: float, minutes: list[float]) -> list[tuple[float, float, str, str]]:
    edges = [0.0, *sorted(minutes)]
    out = []
    for i in range(len(edges) - 1):
        colour = BAND_COLOURS[min(i, len(BAND_COLOURS) - 1)] if len(edges) <= 6 else BAND_COLOURS[int(i * 4 / (len(edges) - 2))]
        out.append((edges[i], edges[i + 1], colour, f"{edges[i]:g}–{edges[i + 1]:g} 分钟 min"))
    return out


def _dissolve(geoms: np.ndarray, *, coverage: bool = False) -> shapely.Geometry:
    """Unite polygons; `coverage=True` for non-overlapping ones (grid cells), which is much faster."""
    if len(geoms) == 0:
        return shapely.Polygon()
    if coverage:
        try:
            return shapely.set_precision(shapely.coverage_union_all(geoms), _PRECISION_DEG)
        except shapely.errors.GEOSException:  # not a valid coverage (e.g. overlapping polygons from a layer)
            pass
    merged = shapely.union_all(shapely.set_precision(geoms, _PRECISION_DEG))
    return shapely.set_precision(merged, _PRECISION_DEG)


def render_coverage_map(run: CoverageRun, *, title: str | None = None, isochrone_minutes: float | None = None) -> folium.Map:
    """Draw a coverage run on an interactive map.

    Parameters
    ----------
    run
        Result of :func:`planner.pipeline.run_coverage`.
    title
        Title shown at the top of the map.
    isochrone_minutes
        Threshold whose isochrones are shown at start (the largest by default).

    Returns
    -------
    m
        A Folium map; save it with ``m.save("map.html")``.
    """
    s = run.summary
    minutes = [row["minutes"] for row in s["thresholds"]]
    tmax = max(minutes)
    cells = run.cells
    bounds = cells.total_bounds if len(cells) else run.institutions.total_bounds
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    folium.TileLayer("OpenStreetMap", name="OpenStreetMap", attr=attribution(s.get("population_unit")), control=False).add_to(m)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])

    # travel-time bands
    t = cells["travel_time_min"].to_numpy(dtype=float)
    geoms = cells.geometry.to_numpy()
    pop = cells["population"].to_numpy(dtype=float)
    band_group = folium.FeatureGroup(name=f"出行时间 Travel time ({s['mode']})", show=True)
    for lo, hi, colour, label in _bands(tmax, minutes):
        sel = np.isfinite(t) & (t > lo if lo > 0 else t >= 0) & (t <= hi)
        _add_band(band_group, geoms[sel], colour, f"{label}: {pop[sel].sum():,.0f} 人 persons")
    gap = np.isfinite(t) & (t > tmax)
    _add_band(band_group, geoms[gap], GAP_COLOUR, f"&gt;{tmax:g} 分钟 min (缺口 gap): {pop[gap].sum():,.0f} 人 persons")
    unreach = ~np.isfinite(t)
    _add_band(band_group, geoms[unreach], UNREACHABLE_COLOUR,
              f"不可达 unreachable (&gt;{s['max_snap_m']:g} m from roads / no route): {pop[unreach].sum():,.0f} 人 persons",
              dash=True)
    band_group.add_to(m)

    if run.districts is not None and len(run.districts):
        _add_districts(m, run.districts, tmax)
    _add_isochrones(m, run.isochrones, minutes, isochrone_minutes or tmax)
    _add_institutions(m, run.institutions)
    folium.LayerControl(collapsed=False).add_to(m)
    _add_legend(m, s, minutes, title)
    return m


def _add_band(group: folium.FeatureGroup, geoms: np.ndarray, colour: str, label: str, *, dash: bool = False) -> None:
    shape = _dissolve(geoms, coverage=True)
    if shape.is_empty:
        return
    style = {"fillColor": colour, "color": colour, "weight": 0.5 if not dash else 1, "fillOpacity": 0.55,
             "dashArray": "4 4" if dash else None}
    folium.GeoJson(
        {"type": "Feature", "properties": {"label": label}, "geometry": shapely.geometry.mapping(shape)},
        style_function=lambda _f, st=style: st,
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
    ).add_to(group)


def _add_districts(m: folium.Map, districts: gpd.GeoDataFrame, tmax: float) -> None:
    d = districts.copy()
    d["geometry"] = shapely.simplify(d.geometry.to_numpy(), 0.0002)
    props = gpd.GeoDataFrame(
        {
            "name": [esc(v) for v in d["name"]],
            "coverage": [f"{v:.1f}%" if v == v else "" for v in d.get("coverage_pct", np.nan)],
            "population": [f"{v:,.0f}" if v == v else "" for v in d.get("population", np.nan)],
            "gap": [f"{v:,.0f}" if v == v else "" for v in d.get("gap_population", np.nan)],
            "share": [f"{v:.0f}%" if v == v else "—" for v in d.get("share_in_study_area_pct", np.full(len(d), np.nan))],
        },
        geometry=d.geometry.to_numpy(),
        crs=d.crs,
    )
    folium.GeoJson(
        props.__geo_interface__,
        name="区县 Districts",
        style_function=lambda _f: {"fillOpacity": 0.0, "color": "#252525", "weight": 2, "dashArray": "6 3"},
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "coverage", "population", "gap", "share"],
            aliases=["区县 District", f"{tmax:g}分钟覆盖率 Coverage", "研究区人口 Population", "缺口人口 Gap",
                     "区内人口在研究区占比 Share in study area"],
        ),
    ).add_to(m)


def _add_isochrones(m: folium.Map, iso: gpd.GeoDataFrame, minutes: list[float], shown: float) -> None:
    if iso is None or len(iso) == 0:
        return
    for mins in sorted(minutes, reverse=True):
        sel = iso[iso["minutes"] == mins]
        shape = _dissolve(sel.geometry.to_numpy())
        if shape.is_empty:
            continue
        folium.GeoJson(
            {"type": "Feature", "properties": {"label": f"{mins:g} 分钟等时圈 isochrone ({len(sel)} 机构 institutions)"},
             "geometry": shapely.geometry.mapping(shape)},
            name=f"等时圈 Isochrones {mins:g} min",
            show=(mins == shown),
            style_function=lambda _f: {"fillColor": "#3182bd", "color": "#08519c", "weight": 1, "fillOpacity": 0.15},
            tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
        ).add_to(m)


def _add_institutions(m: folium.Map, inst: gpd.GeoDataFrame) -> None:
    for tier in settings.TIERS:
        sel = inst[inst["tier"] == tier]
        if len(sel) == 0:
            continue
        group = folium.FeatureGroup(name=f"{settings.TIER_LABELS_ZH[tier].split('(')[0]} {tier} ({len(sel)})")
        for fid, row in sel.iterrows():
            snapped = row.get("snap_status", "snapped") == "snapped"
            tip = (f"<b>{esc(row['name'])}</b><br>{esc(tier)} ({esc(settings.TIER_LABELS_ZH[tier])})"
                   f"<br>分级依据 tier source: {esc(row['tier_source'])}<br>id: {esc(fid)}")
            if not snapped:
                tip += f"<br><b>未接入路网 not on the network</b> ({row.get('snap_m', float('nan')):.0f} m)"
            folium.CircleMarker(
                location=[row.geometry.y, row.geometry.x],
                radius=TIER_RADIUS_PX[tier],
                color="#ffffff" if snapped else "#000000",
                weight=1.5,
                fill=True,
                fill_color=TIER_COLOURS[tier],
                fill_opacity=0.95 if snapped else 0.4,
                tooltip=folium.Tooltip(tip),
            ).add_to(group)
        group.add_to(m)


_LEGEND = """
{% macro html(this, kwargs) %}
<div id="planner-legend" style="position: fixed; bottom: 24px; left: 12px; z-index: 9999; background: white;
     padding: 8px 10px; border: 1px solid #999; border-radius: 4px; font: 12px/1.35 sans-serif; max-width: 320px;">
  {{ this.body }}
</div>
{% endmacro %}
"""


def _add_legend(m: folium.Map, s: dict[str, Any], minutes: list[float], title: str | None) -> None:
    tmax = max(minutes)
    lines = []
    if title:
        lines.append(f"<div style='font-weight:bold;font-size:14px'>{esc(title)}</div>")
    lines.append(
        f"<div><b>{tmax:g}分钟医疗服务圈 {tmax:g}-minute coverage: {s['coverage_pct']:.1f}%</b><br>"
        f"{s['population_covered']:,.0f} / {s['population_total']:,.0f} {esc(s.get('population_unit', ''))}<br>"
        f"方式 mode: {esc(s['mode'])}</div><hr style='margin:4px 0'>"
    )
    lines.append("<div><b>出行时间 Travel time</b></div>")
    for lo, hi, colour, label in _bands(tmax, minutes):
        lines.append(_swatch(colour, label))
    lines.append(_swatch(GAP_COLOUR, f"&gt;{tmax:g} 分钟 min 缺口 gap"))
    lines.append(_swatch(UNREACHABLE_COLOUR, "不可达 unreachable"))
    lines.append("<div style='margin-top:4px'><b>机构 Institutions</b></div>")
    for tier in settings.TIERS:
        lines.append(f"<div><span style='display:inline-block;width:10px;height:10px;border-radius:50%;"
                     f"background:{TIER_COLOURS[tier]};margin-right:4px'></span>{esc(settings.TIER_LABELS_ZH[tier])} {tier}</div>")
    lines.append(f"<div style='margin-top:4px;color:#555'>{attribution(s.get('population_unit'))}</div>")
    legend = MacroElement()
    legend._template = Template(_LEGEND)
    legend.body = "".join(lines)
    m.get_root().add_child(legend)


def _swatch(colour: str, label: str) -> str:
    return (f"<div><span style='display:inline-block;width:14px;height:10px;background:{colour};opacity:.8;"
            f"margin-right:4px'></span>{label}</div>")


_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
              "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")


def _cjk_font() -> str | None:
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((n for n in _CJK_FONTS if n in names), None)


def render_static_map(run: CoverageRun, path: str, *, title: str | None = None, dpi: int = 150) -> str:
    """Draw a coverage run as a static PNG for reports (no tile server needed).

    Chinese labels are used when a CJK font is installed (e.g. Noto Sans CJK,
    SimHei, Microsoft YaHei); otherwise the labels are English only.

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

    font = _cjk_font()
    zh = font is not None

    def lab(cn: str, en: str) -> str:
        return f"{cn} {en}" if zh else en

    s = run.summary
    minutes = [row["minutes"] for row in s["thresholds"]]
    tmax = max(minutes)
    cells = run.cells.to_crs(run.net.crs)
    t = cells["travel_time_min"].to_numpy(dtype=float)
    rc = {"font.family": [font, "DejaVu Sans"]} if zh else {}
    with plt.rc_context(rc):
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
            d.boundary.plot(ax=ax, color="#252525", linewidth=0.8, linestyle="--")
            if zh:
                for _, row in d.iterrows():
                    share = row.get("share_in_study_area_pct", 100.0)
                    if row.get("population", 0) and (share != share or share >= 20):
                        p = row.geometry.intersection(shapely.box(*cells.total_bounds)).representative_point()
                        pct = row.get("coverage_pct")
                        ax.annotate(f"{row['name']}\n{pct:.0f}%" if pct == pct else row["name"], (p.x, p.y),
                                    ha="center", fontsize=8, color="#252525")
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
