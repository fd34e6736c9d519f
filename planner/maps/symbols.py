"""Symbols that say what they are: lead labels on grids, ranked proposed sites, institution counts and their legend.

* :func:`add_grid_labels` - each grid's lead hospital named inside the grid;
* :func:`add_proposed_sites` - proposed sites as numbered squares (rank 1…K,
  the order of the marginal-value curve) with the persons each adds;
* :func:`institution_counts` and :func:`institution_legend` - the tier
  counts every map states, counted as the tables count them (all
  institutions read, as ``by_tier``), with the faded ones explained;
* :func:`legend_classes` - the symbol classes a legend explains, for checking
  that every symbol drawn is explained.

Every symbol carries a ``planner-*`` CSS class and the legend entry that
explains it names that class (``data-explains``), so a test can check that
nothing is drawn unexplained.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import Element

from .. import settings
from .basemaps import esc
from .layers import _POINT_DECIMALS, TIER_COLOURS, TIER_RADIUS_PX, LegendEntry, LegendSection, _for_map

PROPOSED_COLOUR = "#ffd400"  # fill of the proposed-site squares (existing institutions are circles)
LABEL_CLASS = "planner-grid-label"
SITE_CLASS = "planner-proposed-site"
_LABEL_MIN_M = 1.0  # polylabel tolerance, metres

_CSS = {LABEL_CLASS: f"""
.{LABEL_CLASS} div {{ transform: translate(-50%, -50%); width: max-content; max-width: 9em; text-align: center;
  font: bold 11px/1.15 "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; color: #1a1a1a;
  text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff, 0 0 4px #fff; pointer-events: none; }}
""", SITE_CLASS: f"""
.{SITE_CLASS} .rank {{ position: absolute; left: -11px; top: -11px; height: 18px;
  background: {PROPOSED_COLOUR}; border: 2px solid #000; text-align: center; min-width: 18px; width: auto; padding: 0 2px;
  font: bold 12px/18px sans-serif; color: #000; box-shadow: 0 0 0 1px #fff; }}
.{SITE_CLASS} .gain {{ position: absolute; left: 13px; top: -8px; white-space: nowrap;
  font: bold 11px/16px "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; color: #000;
  text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff; pointer-events: none; }}
.planner-legend .sym.site {{ text-align: center; font: bold 9px/12px sans-serif; }}
"""}


def _add_css(m: folium.Map, symbol: str) -> None:
    """Put the style sheet of `symbol` (a class name) into the page once (only for symbols drawn)."""
    root = m.get_root()
    key = "planner_css_" + symbol.replace("-", "_")
    if key not in root.header._children:
        root.header.add_child(Element(f"<style>{_CSS[symbol]}</style>"), name=key)


# --------------------------------------------------------------------------- grid labels


def label_points(grids: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Return a point inside each grid for its label: the pole of inaccessibility of its largest piece.

    Parameters
    ----------
    grids
        Grid (multi)polygons, any CRS.

    Returns
    -------
    points
        One point per grid, in EPSG:4326, inside the grid (far from its edges).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoDataFrame(geometry=[shapely.MultiPolygon([shapely.box(0, 0, 1000, 1000), shapely.box(2000, 0, 2100, 100)])],
    ...                      crs="EPSG:32650")
    >>> p = label_points(g).to_crs("EPSG:32650").iloc[0]
    >>> round(p.x), round(p.y)
    (500, 500)
    """
    metric = grids if grids.crs.is_projected else grids.to_crs(grids.estimate_utm_crs())
    points = []
    for geom in metric.geometry.to_numpy():
        parts = list(getattr(geom, "geoms", [geom]))
        largest = parts[int(np.argmax([p.area for p in parts]))] if parts else shapely.Polygon()
        points.append(shapely.ops.polylabel(largest, tolerance=_LABEL_MIN_M) if not largest.is_empty else shapely.Point())
    return gpd.GeoSeries(points, index=grids.index, crs=metric.crs).to_crs("EPSG:4326")


def add_grid_labels(m: folium.Map, grids: gpd.GeoDataFrame, *, name: str = "牵头医院名称 Lead names") -> folium.FeatureGroup:
    """Write each grid's lead hospital's name inside the grid (a permanent label with a white halo).

    Parameters
    ----------
    m
        Map from :func:`planner.maps.new_map`.
    grids
        Grid polygons indexed by lead, with ``name`` (the lead's; escaped).
    name
        Layer name (escaped).

    Returns
    -------
    layer
        One label (``div.planner-grid-label``) per grid, at :func:`label_points`.
    """
    _add_css(m, LABEL_CLASS)
    layer = folium.FeatureGroup(name=esc(name))
    pts = _for_map(m, gpd.GeoDataFrame(geometry=label_points(grids)), decimals=_POINT_DECIMALS)
    for label, pt in zip(grids["name"] if "name" in grids else grids.index, pts, strict=True):
        if pt is None or pt.is_empty:
            continue
        folium.Marker([pt.y, pt.x], interactive=False, keyboard=False,
                      icon=folium.DivIcon(html=f"<div>{esc(label)}</div>", icon_size=(0, 0), class_name=LABEL_CLASS),
                      ).add_to(layer)
    layer.add_to(m)
    return layer


def grid_label_legend() -> LegendEntry:
    """Legend entry for :func:`add_grid_labels`."""
    return LegendEntry("医院名 name: 该网格的牵头医院 the grid's lead hospital", "#1a1a1a", "label", explains=LABEL_CLASS)


# --------------------------------------------------------------------------- proposed sites


def add_proposed_sites(m: folium.Map, sites: gpd.GeoDataFrame, *, population_unit: str | None = None,
                       name: str | None = None) -> folium.FeatureGroup:
    """Draw proposed sites as numbered yellow squares (rank 1…K) labelled with the persons each adds.

    Parameters
    ----------
    m
        Map from :func:`planner.maps.new_map`.
    sites
        ``SitingRun.sites``: points with ``rank``, ``name``,
        ``added_population`` (persons), ``cumulative_pct`` (%) and
        ``adds_population``.
    population_unit
        What the population counts, for the tooltips.
    name
        Layer name (escaped); by default "拟建 Proposed sites (K)".

    Returns
    -------
    layer
        One marker (``div.planner-proposed-site``) per site, in rank order.
    """
    _add_css(m, SITE_CLASS)
    ranked = sites.sort_values("rank")
    layer = folium.FeatureGroup(name=esc(name or f"拟建分支机构 Proposed sites ({len(ranked)})"))
    pts = _for_map(m, ranked, decimals=_POINT_DECIMALS)
    for pt, (_fid, r) in zip(pts, ranked.iterrows(), strict=True):
        rank, added = int(r["rank"]), float(r["added_population"])
        idle = not bool(r.get("adds_population", True))
        gain = "+0 无新增 adds nobody" if idle else f"+{added:,.0f}"
        tip = (f"#{rank} {r['name']}: +{added:,.0f} 人 {population_unit or 'persons'}"
               + f"; 累计覆盖 cumulative {float(r.get('cumulative_pct', np.nan)):.1f}%")
        html = f"<div class='rank'>{rank}</div><div class='gain'>{esc(gain)}</div>"
        folium.Marker([pt.y, pt.x], icon=folium.DivIcon(html=html, icon_size=(0, 0), class_name=SITE_CLASS),
                      tooltip=folium.Tooltip(esc(tip))).add_to(layer)
    layer.add_to(m)
    return layer


def proposed_legend(sites: gpd.GeoDataFrame) -> LegendSection:
    """Legend block for :func:`add_proposed_sites`."""
    k = len(sites)
    return LegendSection("拟建分支机构 Proposed sites", (LegendEntry(
        f"1…{k}: 按边际收益排序 rank on the marginal curve; +N = 该点新增覆盖人口 persons it adds", PROPOSED_COLOUR,
        "site", 16, explains=SITE_CLASS),))


# --------------------------------------------------------------------------- institutions


def institution_counts(institutions: gpd.GeoDataFrame, *, by_tier: Mapping[str, Any] | None = None,
                       tiers: tuple[str, ...] = settings.TIERS) -> dict[str, tuple[int, int]]:
    """Institutions per tier, counted as the tables count them: (all read, on the network).

    The first number is the tables' ``institutions`` (a coverage run's
    ``summary["by_tier"][tier]["institutions"]`` when `by_tier` is given,
    else the same count, rows of the tier); the second those with
    ``snap_status == "snapped"`` (all, without the column). The difference is
    drawn faded: outside the study area or too far from a road.

    Examples
    --------
    >>> import geopandas as gpd
    >>> inst = gpd.GeoDataFrame({"tier": ["tertiary", "tertiary", "primary"],
    ...                          "snap_status": ["snapped", "outside_study_area", "snapped"]})
    >>> institution_counts(inst, tiers=("tertiary", "primary"))
    {'tertiary': (2, 1), 'primary': (1, 1)}
    """
    tier = institutions["tier"].to_numpy()
    snapped = (institutions["snap_status"] == "snapped").to_numpy() if "snap_status" in institutions \
        else np.ones(len(institutions), dtype=bool)
    out = {}
    for t in tiers:
        total = int(by_tier[t]["institutions"]) if by_tier is not None and t in by_tier else int((tier == t).sum())
        out[t] = (total, int(((tier == t) & snapped).sum()))
    return out


FADED_LABEL = ("淡色黑边 faded, black edge: 研究区外或离路过远，未计入覆盖 "
               "outside the study area or too far from a road; not in the analysis")


def institution_legend(counts: Mapping[str, tuple[int, int]], *, heading: str = "机构 Institutions",
                       removed: bool = False) -> LegendSection:
    """Legend block for :func:`planner.maps.add_institutions`: tiers with their counts, faded ones explained.

    Parameters
    ----------
    counts
        :func:`institution_counts`; tiers with no institution are left out.
    heading
        Heading of the block (escaped).
    removed
        Also explain the removed institutions of a comparison.

    Returns
    -------
    section
        One circle per tier, "N 所" with the faded ones among them, a line
        saying what is counted, and the faded symbol when any is drawn.
    """
    entries = []
    n_faded = 0
    for t, (total, on) in counts.items():
        if total == 0:
            continue
        n_faded += total - on
        extra = f" (其中淡色 faded {total - on})" if total > on else ""
        entries.append(LegendEntry(f"{settings.TIER_LABELS_ZH[t]} {t}: {total} 所{extra}", TIER_COLOURS[t],
                                   "circle", 2 * TIER_RADIUS_PX[t], explains=f"planner-tier-{t}"))
    if n_faded:
        entries.append(LegendEntry(FADED_LABEL, TIER_COLOURS["secondary"], "faded", 10, explains="planner-faded"))
    if removed:
        entries.append(LegendEntry("虚线 dashed: 方案B撤销 removed in B", "#000000", "removed", 10, explains="planner-removed"))
    lines = ("计数 count: 读入的全部机构 all institutions read (= by_tier 表 table)",)
    return LegendSection(heading, tuple(entries), lines)


_EXPLAINS = re.compile(r"data-explains='([\w -]+)'")
_DRAWN = re.compile(r"planner-(?:cells|districts|isochrones|institution|tier-\w+|faded|removed|grids|nearest-zones|routes"
                    r"|grid-label|proposed-site|added)\b")


def legend_classes(html: str) -> tuple[set[str], set[str]]:
    """Return the ``planner-*`` symbol classes a page draws and those its legend explains.

    Parameters
    ----------
    html
        A saved map page.

    Returns
    -------
    drawn, explained
        Class names (``planner-tier-primary``, ``planner-faded``, ...).
    """
    explained = {c for group in _EXPLAINS.findall(html) for c in group.split()}
    drawn = set(_DRAWN.findall(_EXPLAINS.sub("", html))) - {"planner-institution"}
    return drawn, explained
