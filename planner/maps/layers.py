"""Map overlays and the legend: GeoDataFrames in, Folium layers out, in one style.

* :func:`add_travel_time_cells`, :func:`add_cell_classes`,
  :func:`add_districts`, :func:`add_isochrones`, :func:`add_institutions`,
  :func:`add_grids`, :func:`add_routes` - the overlays (tier colours, a
  sequential travel-time ramp, gaps in orange, unreachable in grey), with
  tooltips that carry units;
  each moves its geometries to the map's basemap datum through
  :func:`planner.maps.shift_for_basemap` and escapes every user string with
  :func:`planner.maps.esc`;
* :func:`add_legend` (bilingual, Chinese and English) with its blocks
  :func:`travel_time_legend`, :func:`tier_legend`, :func:`outline_legend`, :func:`route_legend`,
  and :func:`add_layer_control`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import MacroElement, Template

from .. import settings
from .._errors import InvalidValueError, NoCrsError
from ..isochrones import dissolve_isochrones
from . import _trace
from .basemaps import _DECIMALS, INSTITUTION_PANE, _basemap_of, esc, shift_for_basemap
from .colouring import grid_colours

TIER_COLOURS: dict[str, str] = {
    "tertiary": "#7b3294",
    "secondary": "#2166ac",
    "primary": "#d6604d",
    "station": "#4d4d4d",
}
TIER_RADIUS_PX: dict[str, int] = {"tertiary": 8, "secondary": 6, "primary": 5, "station": 3}  # marker radius, pixels
BAND_COLOURS = ("#006837", "#31a354", "#78c679", "#c2e699", "#ffffcc")  # sequential, fastest first
GAP_COLOUR = "#f16913"
UNREACHABLE_COLOUR = "#969696"
ISOCHRONE_COLOUR = "#3182bd"
DISTRICT_COLOUR = "#252525"
_PRECISION_DEG = 1e-5  # grid for dissolving polygons, degrees (~1 m)
_POINT_DECIMALS = 6  # decimal places of marker positions (1e-6 deg, ~0.1 m)


def _for_map(m: folium.Map, gdf: gpd.GeoDataFrame, *, decimals: int = _DECIMALS) -> np.ndarray:
    """Geometries of `gdf` in EPSG:4326, moved to the map's basemap datum."""
    if gdf.crs is None:
        msg = "a map layer has no CRS; fix: set it, e.g. gdf.set_crs('EPSG:4326')"
        raise NoCrsError(msg)
    geoms = gdf.geometry.to_crs("EPSG:4326").to_numpy() if gdf.crs.to_epsg() != 4326 else gdf.geometry.to_numpy()
    return shift_for_basemap(geoms, _basemap_of(m), decimals=decimals)


def _feature_collection(geoms: np.ndarray, props: list[dict[str, Any]], ids: Iterable[Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": str(i), "properties": p, "geometry": shapely.geometry.mapping(g)}
        for i, p, g in zip(ids, props, geoms, strict=True) if g is not None and not g.is_empty]}


def _bands(max_minutes: float, minutes: list[float]) -> list[tuple[float, float, str, str]]:
    edges = [0.0, *sorted(minutes)]
    out = []
    for i in range(len(edges) - 1):
        colour = BAND_COLOURS[min(i, len(BAND_COLOURS) - 1)] if len(edges) <= 6 else BAND_COLOURS[int(i * 4 / (len(edges) - 2))]
        out.append((edges[i], edges[i + 1], colour, f"{edges[i]:g}–{edges[i + 1]:g} 分钟 min"))
    return out


def _band_masks(t: np.ndarray, tmax: float, minutes: list[float]) -> list[tuple[np.ndarray, str, str]]:
    """Cells of each travel-time band (fastest first), then the gap (beyond `tmax`), then the unreachable (NaN).

    Each entry is (cells, colour, label); the labels of the last two are bare
    (``gap``, ``unreachable``): the callers word them.
    """
    out = [(np.isfinite(t) & (t > lo if lo > 0 else t >= 0) & (t <= hi), colour, label)
           for lo, hi, colour, label in _bands(tmax, minutes)]
    return [*out, (np.isfinite(t) & (t > tmax), GAP_COLOUR, "gap"), (~np.isfinite(t), UNREACHABLE_COLOUR, "unreachable")]


def _dissolve(geoms: np.ndarray, *, coverage: bool = False) -> shapely.Geometry:
    """Unite polygons; `coverage=True` for non-overlapping ones (grid cells), which is much faster."""
    if len(geoms) == 0:
        return shapely.Polygon()
    merged = None
    if coverage:
        try:
            merged = shapely.coverage_union_all(geoms)
        except shapely.errors.GEOSException:  # not a valid coverage (e.g. overlapping polygons from a layer)
            pass
    if merged is None:
        merged = shapely.union_all(shapely.set_precision(geoms, _PRECISION_DEG))
    # tolerance 0 drops only the collinear vertices (the corners of every cell along a straight edge)
    return shapely.simplify(shapely.set_precision(merged, _PRECISION_DEG), 0.0)


def _dissolve_cells(geoms: np.ndarray, masks: Sequence[np.ndarray], *, round_traced: bool = True) -> list[shapely.Geometry]:
    """:func:`_dissolve` of the cells of each of several disjoint selections, e.g. the travel-time bands.

    Cells on one grid (from a raster) are traced from a label raster
    (:func:`planner.maps._trace.trace_classes`), the same outline as their
    union without uniting thousands of squares; other cells are united.
    `round_traced=False` keeps the traced vertices on the cells' own corners
    (not rounded to the ~1 m grid of the web map).
    """
    codes = np.full(len(geoms), -1, dtype=np.int64)
    for k, sel in enumerate(masks):
        codes[sel & (codes < 0)] = k
    disjoint = all(int((codes == k).sum()) == int(sel.sum()) for k, sel in enumerate(masks))
    traced = _trace.trace_classes(geoms, codes, len(masks)) if disjoint and len(masks) else None
    if traced is None:
        return [_dissolve(geoms[sel], coverage=True) for sel in masks]
    if not round_traced:
        return traced
    # the traced outlines have no collinear vertex and no sliver: rounding their vertices is all _dissolve does more
    return list(shapely.set_precision(np.asarray(traced, dtype=object), _PRECISION_DEG, mode="pointwise"))


# --------------------------------------------------------------------------- overlays


def add_travel_time_cells(
    m: folium.Map,
    cells: gpd.GeoDataFrame,
    *,
    minutes: Sequence[float],
    time_column: str = "travel_time_min",
    population_column: str = "population",
    max_snap_m: float | None = None,
    name: str = "出行时间 Travel time",
    show: bool = True,
) -> folium.GeoJson:
    """Draw demand cells in travel-time bands (dissolved per band).

    Cells within each threshold get the sequential greens (fastest darkest),
    cells beyond the largest threshold are the gap (orange), cells with no
    time (NaN) are unreachable (grey, dashed). Each band's tooltip gives its
    population.

    Parameters
    ----------
    m
        Map from :func:`new_map`.
    cells
        Cell polygons with `time_column` (minutes) and `population_column`.
    minutes
        Band limits in minutes, e.g. (5, 10, 15).
    time_column
        Travel time in minutes; NaN for unreachable cells.
    population_column
        Persons per cell.
    max_snap_m
        Snap distance in metres, quoted in the unreachable band's label.
    name
        Layer name in the layer control (escaped).
    show
        Whether the layer is on at start.

    Returns
    -------
    layer
        The GeoJSON layer (one feature per non-empty band).
    """
    tmax = max(minutes)
    t = cells[time_column].to_numpy(dtype=float)
    geoms = cells.geometry.to_numpy()
    pop = cells[population_column].to_numpy(dtype=float)
    shapes, props = [], []
    snap = f">{max_snap_m:g} m from roads / no route" if max_snap_m is not None else "no route"
    bands = _band_masks(t, tmax, list(minutes))
    labels = [b[2] for b in bands[:-2]] + [f">{tmax:g} 分钟 min (缺口 gap)", f"不可达 unreachable ({snap})"]
    for i, shape in enumerate(_dissolve_cells(geoms, [b[0] for b in bands])):
        if shape.is_empty:
            continue
        sel, colour = bands[i][:2]
        shapes.append(shape)
        props.append({"label": esc(f"{labels[i]}: {pop[sel].sum():,.0f} 人 persons, {int(sel.sum()):,} 格 cells"),
                      "colour": colour, "dash": i == len(bands) - 1})
    gdf = gpd.GeoDataFrame(geometry=shapes, crs=cells.crs)
    layer = folium.GeoJson(
        _feature_collection(_for_map(m, gdf), props, ids=[f"band-{i}" for i in range(len(props))]),
        name=esc(name),
        show=show,
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"], "color": f["properties"]["colour"], "fillOpacity": 0.55,
            "weight": 1 if f["properties"]["dash"] else 0.5, "dashArray": "4 4" if f["properties"]["dash"] else None,
            "className": "planner-cells"},
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
    )
    layer.add_to(m)
    return layer


def add_districts(
    m: folium.Map,
    districts: gpd.GeoDataFrame,
    *,
    max_minutes: float | None = None,
    simplify_deg: float = 0.0002,
    name: str = "区县 Districts",
) -> folium.GeoJson:
    """Draw district outlines with their coverage figures in the tooltip.

    Parameters
    ----------
    m
        Map from :func:`new_map`.
    districts
        Polygons with ``name`` and optionally ``coverage_pct``, ``population``,
        ``gap_population``, ``share_in_study_area_pct``.
    max_minutes
        The threshold the coverage columns refer to, in minutes.
    simplify_deg
        Simplification tolerance in degrees (0.0002 deg is about 20 m).
    name
        Layer name in the layer control (escaped).

    Returns
    -------
    layer
        The GeoJSON layer.
    """
    n = len(districts)

    def col(column: str, fmt: str, missing: str = "") -> list[str]:
        values = districts[column] if column in districts else np.full(n, np.nan)
        return [fmt.format(v) if v == v else missing for v in values]

    props = [dict(zip(("name", "coverage", "population", "gap", "share"), row, strict=True)) for row in zip(
        [esc(v) for v in districts["name"]],
        col("coverage_pct", "{:.1f} %"),
        col("population", "{:,.0f} 人 persons"),
        col("gap_population", "{:,.0f} 人 persons"),
        col("share_in_study_area_pct", "{:.0f} %", "—"),
        strict=True,
    )]
    geoms = shapely.simplify(_for_map(m, districts), simplify_deg)
    within = f"{max_minutes:g}分钟覆盖率 {max_minutes:g}-min coverage" if max_minutes is not None else "覆盖率 Coverage"
    layer = folium.GeoJson(
        _feature_collection(geoms, props, ids=[f"district-{i}" for i in range(len(props))]),
        name=esc(name),
        style_function=lambda _f: {"fillOpacity": 0.0, "color": DISTRICT_COLOUR, "weight": 2, "dashArray": "6 3",
                                   "className": "planner-districts"},
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "coverage", "population", "gap", "share"],
            aliases=["区县 District", within, "研究区人口 Population in study area", "缺口人口 Gap population",
                     "区内人口在研究区占比 Share in study area"],
        ),
    )
    layer.add_to(m)
    return layer


def add_isochrones(
    m: folium.Map,
    iso: gpd.GeoDataFrame,
    *,
    minutes: Sequence[float],
    shown: float | None = None,
    dissolved: gpd.GeoDataFrame | None = None,
    simplify_deg: float = 5e-5,
) -> list[folium.GeoJson]:
    """Draw isochrones, one layer per threshold (dissolved over institutions).

    Parameters
    ----------
    m
        Map from :func:`new_map`.
    iso
        Polygons with a ``minutes`` column (one per institution and threshold).
    minutes
        Thresholds to draw, in minutes.
    shown
        Threshold whose layer is on at start (the largest by default).
    dissolved
        The layer dissolved with the polygons
        (:func:`planner.isochrones.compute_isochrone_layers`; rows with
        ``tier == "all"`` are drawn as they are). Without it, `iso` is
        dissolved here with :func:`planner.isochrones.dissolve_isochrones`.
    simplify_deg
        Simplification tolerance in degrees for polygons dissolved here
        (5e-5 deg is about 5 m, below a pixel up to zoom 15).

    Returns
    -------
    layers
        One GeoJSON layer per non-empty threshold, largest first.
    """
    layers: list[folium.GeoJson] = []
    if iso is None or len(iso) == 0:
        return layers
    shown = max(minutes) if shown is None else shown
    if dissolved is None:
        dissolved = dissolve_isochrones(iso[iso["minutes"].isin(list(minutes))])
        dissolved["geometry"] = shapely.simplify(dissolved.geometry.to_numpy(), simplify_deg)
    dissolved = dissolved[dissolved["tier"] == "all"]
    for mins in sorted(minutes, reverse=True):
        sel = dissolved[dissolved["minutes"] == mins]
        shape = sel.geometry.iloc[0] if len(sel) else shapely.Polygon()
        if shape is None or shape.is_empty:
            continue
        n_inst = int(sel["institutions"].iloc[0])
        gdf = gpd.GeoDataFrame(geometry=[shape], crs=iso.crs)
        props = [{"label": esc(f"{mins:g} 分钟等时圈 {mins:g}-min isochrone ({n_inst} 机构 institutions)")}]
        layer = folium.GeoJson(
            _feature_collection(_for_map(m, gdf), props, ids=[f"isochrone-{mins:g}"]),
            name=esc(f"等时圈 Isochrones {mins:g} min"),
            show=(mins == shown),
            style_function=lambda _f: {"fillColor": ISOCHRONE_COLOUR, "color": "#08519c", "weight": 1,
                                       "fillOpacity": 0.15, "className": "planner-isochrones"},
            tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
        )
        layer.add_to(m)
        layers.append(layer)
    return layers


def add_institutions(m: folium.Map, inst: gpd.GeoDataFrame, *, name_prefix: str = "") -> list[folium.GeoJson]:
    """Draw institutions as circles coloured and sized by tier, one layer per tier.

    Institutions not on the road network (``snap_status`` other than
    ``snapped``) get a black outline and a pale fill (class
    ``planner-faded``); ``snap_status == "removed"`` (a comparison's
    removed institutions) a dashed one (class ``planner-removed``).

    Parameters
    ----------
    m
        Map from :func:`new_map`.
    inst
        Points with ``name`` and ``tier``; optionally ``tier_source``,
        ``snap_m`` (metres) and ``snap_status``. The index is the facility id.
    name_prefix
        Text put before each layer name, e.g. ``"新增 added: "``.

    Returns
    -------
    layers
        One GeoJSON layer per tier present; each marker is an SVG path with
        the classes ``planner-institution planner-tier-<tier>`` and its
        feature id is the facility id.
    """
    layers: list[folium.GeoJson] = []
    geoms_all = _for_map(m, inst, decimals=_POINT_DECIMALS)
    tiers = inst["tier"].to_numpy()
    for tier in settings.TIERS:
        sel = tiers == tier
        if not sel.any():
            continue
        sub = inst[sel]
        props = []
        for fid, row in sub.iterrows():
            status = row.get("snap_status", "snapped")
            snap = row.get("snap_m", np.nan)
            props.append({
                "name": esc(row["name"]),
                "tier": esc(f"{settings.TIER_LABELS_ZH[tier]} {tier}"),
                "source": esc(row.get("tier_source", "")),
                "snap": esc(f"{snap:.0f} m" if snap == snap else "") +
                (" — <b>未接入路网 not on the network</b>" if status != "snapped" else ""),
                "id": esc(fid),
                "snapped": status == "snapped",
                "removed": status == "removed",
            })
        style = {"radius": TIER_RADIUS_PX[tier], "fillColor": TIER_COLOURS[tier], "weight": 1.5, "fill": True,
                 "pane": INSTITUTION_PANE, "className": f"planner-institution planner-tier-{tier}"}
        layer = folium.GeoJson(
            _feature_collection(geoms_all[sel], props, ids=sub.index),
            name=esc(f"{name_prefix}{settings.TIER_LABELS_ZH[tier].split('(')[0]} {tier} ({len(sub)})"),
            marker=folium.CircleMarker(radius=TIER_RADIUS_PX[tier]),
            style_function=lambda f, st=style: {
                **st, "color": "#ffffff" if f["properties"]["snapped"] else "#000000",
                "fillOpacity": 0.95 if f["properties"]["snapped"] else 0.4,
                **({} if f["properties"]["snapped"] else {
                    "className": st["className"] + (" planner-removed" if f["properties"]["removed"] else " planner-faded"),
                    "dashArray": "2 2" if f["properties"]["removed"] else None})},
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "tier", "source", "snap", "id"],
                aliases=["名称 Name", "级别 Tier", "分级依据 Tier source", "距道路 Distance to road", "id"]),
        )
        layer.add_to(m)
        layers.append(layer)
    return layers


def add_cell_classes(
    m: folium.Map,
    cells: gpd.GeoDataFrame,
    *,
    column: str,
    classes: dict[str, tuple[str, str]],
    name: str,
    population_column: str = "population",
    show: bool = True,
) -> folium.GeoJson:
    """Draw cells of a categorical column, dissolved per class, with population in the tooltips.

    Parameters
    ----------
    m
        Map from :func:`new_map`.
    cells
        Cell polygons with `column` and `population_column`.
    column
        Column holding the class of each cell.
    classes
        Class value -> (hex colour, label); other values are not drawn.
    name
        Layer name (escaped).
    population_column
        Persons per cell.
    show
        Whether the layer is on at start.

    Returns
    -------
    layer
        One GeoJSON feature per non-empty class.
    """
    values = cells[column].to_numpy()
    geoms = cells.geometry.to_numpy()
    pop = cells[population_column].to_numpy(dtype=float)
    shapes, props = [], []
    masks = [values == value for value in classes]
    for sel, (colour, label), shape in zip(masks, classes.values(), _dissolve_cells(geoms, masks), strict=True):
        if shape.is_empty:
            continue
        shapes.append(shape)
        props.append({"label": esc(f"{label}: {pop[sel].sum():,.0f} 人 persons, {int(sel.sum()):,} 格 cells"),
                      "colour": _HEX.fullmatch(colour).group(0) if _HEX.fullmatch(colour) else "#000000"})
    gdf = gpd.GeoDataFrame(geometry=shapes, crs=cells.crs)
    layer = folium.GeoJson(
        _feature_collection(_for_map(m, gdf), props, ids=[f"class-{i}" for i in range(len(props))]),
        name=esc(name),
        show=show,
        style_function=lambda f: {"fillColor": f["properties"]["colour"], "color": f["properties"]["colour"],
                                  "fillOpacity": 0.6, "weight": 0.5, "className": "planner-cells"},
        # folium refuses a tooltip field on an empty collection (e.g. no cell moved lead): no tooltip then
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False) if props else None,
    )
    layer.add_to(m)
    return layer


def add_grids(
    m: folium.Map,
    grids: gpd.GeoDataFrame,
    *,
    name: str = "网格 Grids",
    simplify_deg: float = 5e-5,
) -> folium.GeoJson:
    """Draw consortium grids, neighbours in different colours, with load and travel time in the tooltips.

    Parameters
    ----------
    m
        Map from :func:`new_map`.
    grids
        Grid polygons indexed by lead, with ``name``, ``population``,
        ``load_ratio``, ``mean_travel_time_min``, ``p95_travel_time_min`` and
        optionally ``members``.
    name
        Layer name (escaped).
    simplify_deg
        Simplification tolerance in degrees.

    Returns
    -------
    layer
        One GeoJSON feature per grid (feature id ``grid-<lead id>``).
    """
    colours = grid_colours(grids)
    props = []
    for fid, r in grids.iterrows():
        props.append({
            "name": esc(r.get("name", fid)),
            "population": esc(f"{r['population']:,.0f} 人 persons"),
            "load": esc(f"{r['load_ratio']:.2f} (目标 target {r.get('target_population', float('nan')):,.0f})"),
            "time": esc(f"{r['mean_travel_time_min']:.1f} / {r['p95_travel_time_min']:.1f} 分钟 min"),
            "members": esc(f"{int(r.get('members', 0))}"),
            "colour": colours[fid],
        })
    geoms = shapely.simplify(_for_map(m, grids), simplify_deg)
    layer = folium.GeoJson(
        _feature_collection(geoms, props, ids=[f"grid-{fid}" for fid in grids.index]),
        name=esc(name),
        style_function=lambda f: {"fillColor": f["properties"]["colour"], "color": "#252525", "weight": 2,
                                  "fillOpacity": 0.55, "className": "planner-grids"},
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "population", "load", "time", "members"],
            aliases=["牵头医院 Lead hospital", "网格人口 Population", "负荷比 Load ratio",
                     "平均/95%出行时间 Mean/95th-pct time", "成员机构 Members"]),
    )
    layer.add_to(m)
    return layer


def route_colour(minutes: float, bands: Sequence[float]) -> str:
    """Colour of a trip of `minutes` on the travel-time ramp with band limits `bands` (beyond the last: the gap colour).

    >>> route_colour(5, (10, 20, 30)), route_colour(25, (10, 20, 30)), route_colour(31, (10, 20, 30))
    ('#006837', '#78c679', '#f16913')
    """
    for _lo, hi, colour, _label in _bands(max(bands), list(bands)):
        if minutes <= hi:
            return colour
    return GAP_COLOUR


def add_routes(
    m: folium.Map,
    routes: gpd.GeoDataFrame,
    *,
    bands: Sequence[float],
    name: str = "转诊路线 Referral routes",
    show: bool = True,
) -> folium.GeoJson:
    """Draw route lines coloured by travel time, with both ends, time and distance in the tooltips.

    Parameters
    ----------
    m
        Map from :func:`new_map`.
    routes
        Lines with ``from_name``, ``to_name``, ``travel_time_min`` (minutes)
        and ``distance_km`` (km), e.g. :func:`planner.referral.referral_routes`.
    bands
        Band limits in minutes, e.g. (10, 20, 30): the sequential greens up
        to the last, the gap colour beyond it (see :func:`route_legend`).
    name
        Layer name (escaped).
    show
        Whether the layer is on at start.

    Returns
    -------
    layer
        One GeoJSON feature per route (feature id ``route-<row>``), class ``planner-routes``.
    """
    props = [{"label": esc(f"{a} → {b}: {t:.1f} 分钟 min, {d:.2f} km"), "colour": route_colour(t, bands)}
             for a, b, t, d in zip(routes["from_name"], routes["to_name"], routes["travel_time_min"], routes["distance_km"],
                                   strict=True)]
    layer = folium.GeoJson(
        _feature_collection(_for_map(m, routes), props, ids=[f"route-{i}" for i in range(len(props))]),
        name=esc(name),
        show=show,
        style_function=lambda f: {"color": f["properties"]["colour"], "weight": 3, "opacity": 0.9,
                                  "className": "planner-routes"},
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False) if props else None,
    )
    layer.add_to(m)
    return layer


def route_legend(bands: Sequence[float]) -> LegendSection:
    """Legend block for :func:`add_routes`.

    Parameters
    ----------
    bands
        Band limits in minutes.

    Returns
    -------
    section
        One line symbol per band and one for trips beyond the last limit.
    """
    tmax = max(bands)
    entries = [LegendEntry(label, colour, "line", explains="planner-routes")
               for _lo, _hi, colour, label in _bands(tmax, list(bands))]
    entries.append(LegendEntry(f">{tmax:g} 分钟 min 超出阈值 beyond the threshold", GAP_COLOUR, "line",
                               explains="planner-routes"))
    return LegendSection("转诊出行时间 Referral travel time", tuple(entries))


def add_layer_control(m: folium.Map) -> folium.LayerControl:
    """Add the (expanded) layer control listing every named overlay.

    Parameters
    ----------
    m
        Map from :func:`new_map`, after its overlays.

    Returns
    -------
    control
        The layer control.
    """
    control = folium.LayerControl(collapsed=False)
    control.add_to(m)
    return control


# --------------------------------------------------------------------------- legend


@dataclass(frozen=True)
class LegendEntry:
    """One symbol and its label in the legend.

    Attributes
    ----------
    label
        Plain text (escaped when drawn).
    colour
        CSS hex colour, e.g. ``#31a354``.
    symbol
        ``box`` (area), ``circle`` (point), ``faded`` (a point outside the
        analysis), ``removed`` (a dashed point), ``site`` (a numbered
        square), ``label`` (a text sample), ``line`` or ``dashed`` (outline).
    size_px
        Symbol size in pixels (circle diameter).
    explains
        The ``planner-*`` CSS classes (space-separated) of the drawn symbols
        this entry explains; written as ``data-explains`` in the page.
    """

    label: str
    colour: str
    symbol: str = "box"
    size_px: int = 10
    explains: str = ""


@dataclass(frozen=True)
class LegendSection:
    """A block of the legend: a heading, plain-text lines and symbol entries.

    Attributes
    ----------
    heading
        Plain text (escaped when drawn); empty for none.
    entries
        Symbols with labels.
    lines
        Plain-text lines drawn under the heading (escaped).
    """

    heading: str = ""
    entries: tuple[LegendEntry, ...] = ()
    lines: tuple[str, ...] = ()


def travel_time_legend(minutes: Sequence[float]) -> LegendSection:
    """Legend block for :func:`add_travel_time_cells`.

    Parameters
    ----------
    minutes
        Band limits in minutes.

    Returns
    -------
    section
        The travel-time ramp, the gap and the unreachable colour.
    """
    tmax = max(minutes)
    entries = [LegendEntry(label, colour, explains="planner-cells") for _lo, _hi, colour, label in _bands(tmax, list(minutes))]
    entries += [LegendEntry(f">{tmax:g} 分钟 min 缺口 gap", GAP_COLOUR, explains="planner-cells"),
                LegendEntry("不可达 unreachable (虚线边 dashed edge)", UNREACHABLE_COLOUR, explains="planner-cells")]
    return LegendSection("出行时间 Travel time", tuple(entries))


def tier_legend() -> LegendSection:
    """Legend block for :func:`add_institutions` (tier colours and marker sizes).

    Returns
    -------
    section
        One circle per tier.
    """
    return LegendSection("机构 Institutions", tuple(
        LegendEntry(f"{settings.TIER_LABELS_ZH[t]} {t}", TIER_COLOURS[t], "circle", 2 * TIER_RADIUS_PX[t],
                    explains=f"planner-tier-{t}")
        for t in settings.TIERS))


# the residual-unserved layer of capacity-limited coverage: unserved_reason -> (colour, label)
RESIDUAL_CLASSES: dict[str, tuple[str, str]] = {
    "over_capacity": ("#cb181d", "容量不足未服务 unserved: institutions within reach are full"),
    "out_of_reach": ("#6a51a3", "超出可达范围未服务 unserved: out of reach"),
}


def add_residual_unserved(m: folium.Map, residual: gpd.GeoDataFrame, *, show: bool = True) -> folium.GeoJson:
    """Draw the cells with persons left unserved under capacities, by reason (see :data:`RESIDUAL_CLASSES`).

    Parameters
    ----------
    m
        Map from :func:`new_map`.
    residual
        ``CoverageRun.residual_unserved``: cells with ``unserved`` and ``unserved_reason``.
    show
        Whether the layer is on at start.

    Returns
    -------
    layer
        One feature per reason, with the unserved persons in its tooltip.
    """
    return add_cell_classes(m, residual, column="unserved_reason", classes=RESIDUAL_CLASSES,
                            name="未服务人口 Residual unserved (capacity)", population_column="unserved", show=show)


def residual_legend(block: dict[str, Any]) -> LegendSection:
    """Legend block for :func:`add_residual_unserved`, with the served and unserved totals of a ``capacity`` block."""
    return LegendSection(
        f"按能力服务 Served under capacity: {block['population_served']:,.0f} ({block['served_pct'] or 0:.1f}%)",
        tuple(LegendEntry(f"{label} ({block['unserved_' + key]:,.0f})", colour, explains="planner-cells") for key, (colour, label)
              in RESIDUAL_CLASSES.items()))


def outline_legend(*, districts: bool = False, isochrones: bool = False) -> LegendSection:
    """Legend block for district outlines and isochrones.

    Parameters
    ----------
    districts
        Include the district outline.
    isochrones
        Include the isochrone fill.

    Returns
    -------
    section
        The requested entries (no heading).
    """
    entries = []
    if isochrones:
        entries.append(LegendEntry("等时圈 isochrone (机构可达范围 reach of institutions)", ISOCHRONE_COLOUR,
                                   explains="planner-isochrones"))
    if districts:
        entries.append(LegendEntry("区县界 district boundary", DISTRICT_COLOUR, "dashed", explains="planner-districts"))
    return LegendSection("", tuple(entries))


_HEX = re.compile(r"#[0-9a-fA-F]{3,8}")


def _symbol(e: LegendEntry) -> str:
    if not _HEX.fullmatch(e.colour):
        msg = f"legend colour {e.colour!r} is not a hex colour; fix: use e.g. '#31a354'"
        raise InvalidValueError(msg)
    s = int(e.size_px)
    inner, cls = "", "sym"
    if e.symbol == "circle":
        css = f"width:{s}px;height:{s}px;border-radius:50%;background:{e.colour};border:1px solid #fff;box-shadow:0 0 0 1px #999"
    elif e.symbol in ("faded", "removed"):
        dash = "dashed" if e.symbol == "removed" else "solid"
        css = f"width:{s}px;height:{s}px;border-radius:50%;background:{e.colour}66;border:1.5px {dash} #000"
    elif e.symbol == "site":
        css, inner, cls = f"width:{s - 4}px;height:{s - 4}px;background:{e.colour};border:2px solid #000", "1", "sym site"
    elif e.symbol == "label":
        css, inner = f"font-weight:bold;color:{e.colour};text-shadow:0 0 2px #fff", esc("名称")
    elif e.symbol in ("line", "dashed"):
        css = f"width:18px;height:0;border-top:2px {'dashed' if e.symbol == 'dashed' else 'solid'} {e.colour}"
    else:
        css = f"width:16px;height:{s}px;background:{e.colour};opacity:.8"
    explains = f" data-explains='{esc(e.explains)}'" if e.explains else ""
    return f"<div{explains}><span class='{cls}' style='{css}'>{inner}</span>{esc(e.label)}</div>"


class _Legend(MacroElement):
    _template = Template("""
{% macro html(this, kwargs) %}
<div id="planner-legend" class="planner-legend leaflet-control">{{ this.body }}</div>
{% endmacro %}
{% macro script(this, kwargs) %}
(function (map) {
  var legend = L.control({position: "bottomleft"});
  legend.onAdd = function () {
    var div = document.getElementById("planner-legend");
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    return div;
  };
  legend.addTo(map);
  // open on the study area beside the legend, not under it, when the map is wide enough for both
  var view = {{ this.view|tojson }}, w = legend.getContainer().offsetWidth + 16;
  if (view && map.getSize().x > 2.5 * w) { map.fitBounds(view, {paddingTopLeft: [w, 0], animate: false}); }
})({{ this._parent.get_name() }});
{% endmacro %}
""")

    def __init__(self, body: str, view: list[list[float]] | None) -> None:
        super().__init__()
        self._name = "PlannerLegend"
        self.body = body
        self.view = view


def add_legend(m: folium.Map, sections: Sequence[LegendSection], *, title: str | None = None) -> MacroElement:
    """Add the bilingual legend (bottom left), ending with the attribution.

    Parameters
    ----------
    m
        Map from :func:`new_map`.
    sections
        Legend blocks, top to bottom (see :func:`travel_time_legend`,
        :func:`tier_legend`, :func:`outline_legend`).
    title
        Bold title at the top (escaped).

    Returns
    -------
    legend
        The legend element; in the page it is ``<div id="planner-legend">``. On a map at
        least 2.5 times as wide as the legend, the opening view is fitted beside it.
    """
    parts = [f"<div class='title'>{esc(title)}</div>"] if title else []
    for sec in sections:
        if sec.heading:
            parts.append(f"<h4>{esc(sec.heading)}</h4>")
        parts += [f"<div>{esc(line)}</div>" for line in sec.lines]
        parts += [_symbol(e) for e in sec.entries]
    bm = _basemap_of(m)
    attrs = [*m.planner_attribution]  # type: ignore[attr-defined]
    if bm.attribution and bm.attribution not in attrs:
        attrs.append(f"底图 Basemap: {bm.attribution}")
    parts.append("<div class='attr'>" + "<br>".join(attrs) + "</div>")
    legend = _Legend("".join(parts), getattr(m, "planner_view", None))
    legend.add_to(m)
    return legend
