"""Interactive Folium maps: one cartography, Chinese basemaps, offline export.

Every planner map (coverage, siting, grids, scenario differences) is built
from the same blocks, so that they look alike and share the same safeguards:

* :func:`new_map` - an empty map on a basemap (``osm``, ``amap``, ``tianditu``
  or ``none``) with scale bar, full-screen button, data attribution and, with
  ``offline=True``, Leaflet inlined into the page so it opens with no network;
* :func:`add_travel_time_cells`, :func:`add_districts`, :func:`add_isochrones`,
  :func:`add_institutions` - the overlays, in one style (tier colours, a
  sequential travel-time ramp, gaps in orange, unreachable in grey), with
  tooltips that carry units;
* :func:`add_legend` (bilingual, Chinese and English) and
  :func:`add_layer_control`;
* :func:`render_coverage_map` assembles them for a coverage run.

**Datums.** Overlays are given in WGS-84 (EPSG:4326). Amap/Gaode tiles are
drawn in GCJ-02, which is WGS-84 moved by a deliberate non-linear offset of
typically 100-700 m, so on the ``amap`` basemap every overlay - cells,
districts, isochrones, markers and the initial view - is moved to GCJ-02 in
one place, :func:`shift_for_basemap`, which every ``add_*`` function calls.
Tianditu (CGCS2000) and OpenStreetMap agree with WGS-84 to well below a metre
and are not shifted.

**Offline.** With ``offline=True`` the HTML carries Leaflet's JavaScript and
CSS (read at run time from the installed ``django-js-lib-leaflet`` package)
and folium's other CDN assets (jQuery, Bootstrap, Font Awesome) are left out:
the page makes no request except for basemap tiles. On an intranet without
internet use ``basemap="none"``, or a locally served tile mirror via
``tile_url``.

**Escaping.** Every string that comes from a user's file (institution and
district names, titles) goes through :func:`esc` before it reaches the page,
so a name cannot inject markup or script.
"""

from __future__ import annotations

import base64
import html
import importlib.resources
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import folium
import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from branca.element import MacroElement, Template

from . import settings
from ._errors import InvalidValueError, NoCrsError
from ._fonts import cjk_font_family
from .datum import wgs84_to_gcj02

if TYPE_CHECKING:
    from .pipeline import CoverageRun

logger = logging.getLogger(__name__)

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
_DECIMALS = 5  # decimal places of polygon vertices in the page (1e-5 deg, ~1 m); keeps the HTML small
_POINT_DECIMALS = 6  # decimal places of marker positions (1e-6 deg, ~0.1 m)

BASEMAPS: tuple[str, ...] = ("osm", "amap", "tianditu", "none")
_BASEMAP_DATUMS = {"osm": "wgs84", "amap": "gcj02", "tianditu": "wgs84", "none": "wgs84"}  # datum of the tiles
TIANDITU_KEY_ENV = "TIANDITU_KEY"  # environment variable holding the Tianditu browser key
APPROVAL_NOTICE = "公开展示需标注审图号 GS(20xx)xxxx — 见地图服务商 see the provider"
EMAIL_SIZE_MB = 5.0  # megabytes; save_map warns above this
INSTITUTION_PANE = "planner-institutions"  # above the polygons (overlayPane 400), below tooltips

_OSM_ATTR = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors (ODbL)'
_WORLDPOP_ATTR = 'Population: <a href="https://www.worldpop.org">WorldPop</a> (CC BY 4.0)'
_LEAFLET_PACKAGE = "js_lib_leaflet"  # from PyPI django-js-lib-leaflet (Leaflet 1.9.4 dist files, BSD-2)
_LEAFLET_CDN_JS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.js"
_LEAFLET_CDN_CSS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.css"


@dataclass(frozen=True)
class Basemap:
    """A basemap: tile URL templates, attribution, datum.

    Attributes
    ----------
    name
        One of :data:`BASEMAPS`.
    label
        Display name.
    tiles
        Leaflet tile URL templates, drawn bottom to top (Tianditu has a road
        layer and a label layer); empty for ``none``.
    subdomains
        Values for ``{s}`` in the templates.
    attribution
        HTML attribution of the tiles, with the notice required for public
        display in China where the provider needs one.
    datum
        ``wgs84`` or ``gcj02``: the datum the tiles are drawn in.
    max_zoom
        Highest zoom level the provider serves.
    """

    name: str
    label: str
    tiles: tuple[str, ...]
    subdomains: str
    attribution: str
    datum: str
    max_zoom: int


def esc(value: Any) -> str:
    """HTML-escape a value for display in a map.

    Besides ``& < > " '`` this escapes the backtick, ``$`` and the backslash,
    so that the text is also inert inside a JavaScript template literal (as
    folium writes tooltips).

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
    >>> esc("`${x}`")
    '&#96;&#36;{x}&#96;'
    """
    if value is None:
        return ""
    text = html.escape(str(value), quote=True)
    return text.replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


def attribution(population_unit: str | None = None) -> str:
    """Return the data attribution shown on every map.

    Parameters
    ----------
    population_unit
        Population label; WorldPop is credited when it mentions WorldPop (or
        is None).

    Returns
    -------
    attribution
        HTML attribution text: © OpenStreetMap contributors, and WorldPop
        when used.
    """
    return " | ".join(_data_attributions(population_unit))


def _data_attributions(population_unit: str | None) -> list[str]:
    parts = [_OSM_ATTR]
    if population_unit is None or "worldpop" in population_unit.lower():
        parts.append(_WORLDPOP_ATTR)
    return parts


def get_basemap(basemap: str = "osm", *, tile_url: str | None = None, approval_number: str | None = None) -> Basemap:
    """Return a basemap by name, checking that it can be used.

    Parameters
    ----------
    basemap
        One of :data:`BASEMAPS`: ``osm`` (OpenStreetMap, the default),
        ``amap`` (Amap/Gaode 高德, GCJ-02), ``tianditu`` (天地图, CGCS2000;
        needs the ``TIANDITU_KEY`` environment variable) or ``none``.
    tile_url
        A Leaflet URL template (``.../{z}/{x}/{y}.png``) that replaces the
        provider's tiles, e.g. an intranet mirror of the same basemap; the
        datum and attribution stay those of `basemap`.
    approval_number
        The map approval number (审图号, e.g. ``GS(2024)0650``) to print on
        Amap/Tianditu maps shown in public; a placeholder notice otherwise.

    Returns
    -------
    basemap
        The basemap description.

    Notes
    -----
    Amap's raster tiles are requested directly, without a key, as is common
    practice; publishing maps on them may need an agreement with AutoNavi.
    Tianditu's key ends up in the exported HTML, as with any browser key:
    restrict it to your domains in the Tianditu console.

    Raises
    ------
    InvalidValueError
        For an unknown name (the message lists the choices), a missing or
        malformed Tianditu key, or a tile URL without ``{z}``, ``{x}``,
        ``{y}``.

    Examples
    --------
    >>> get_basemap("amap").datum
    'gcj02'
    >>> get_basemap("google")
    Traceback (most recent call last):
    ...
    planner._errors.InvalidValueError: unknown basemap 'google'; choose one of: osm, amap, tianditu, none
    """
    name = _basemap_name(basemap)
    notice = f"审图号 {esc(approval_number)}" if approval_number else esc(APPROVAL_NOTICE)
    if name == "osm":
        bm = Basemap("osm", "OpenStreetMap", ("https://tile.openstreetmap.org/{z}/{x}/{y}.png",), "",
                     _OSM_ATTR, "wgs84", 19)
    elif name == "amap":
        bm = Basemap("amap", "高德地图 Amap",
                     ("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",),
                     "1234", f"&copy; 高德地图 AutoNavi | {notice}", "gcj02", 18)
    elif name == "tianditu":
        key = os.environ.get(TIANDITU_KEY_ENV, "").strip()
        if not key and tile_url is None:
            msg = (f"the tianditu basemap needs a Tianditu browser key; fix: set the environment variable "
                   f"{TIANDITU_KEY_ENV} (get a key at https://console.tianditu.gov.cn), or choose another basemap")
            raise InvalidValueError(msg)
        if key and not re.fullmatch(r"[A-Za-z0-9]{8,128}", key):
            msg = f"{TIANDITU_KEY_ENV} does not look like a Tianditu key (letters and digits only); fix: copy the key again"
            raise InvalidValueError(msg)
        wmts = ("https://t{s}.tianditu.gov.cn/%s_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=%s"
                "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=" + key)
        bm = Basemap("tianditu", "天地图 Tianditu", (wmts % ("vec", "vec"), wmts % ("cva", "cva")), "01234567",
                     f"&copy; 天地图 Tianditu (国家地理信息公共服务平台) | {notice}", "wgs84", 18)
    else:
        bm = Basemap("none", "无底图 No basemap", (), "", "", "wgs84", 19)
    if tile_url is not None:
        if not all(k in tile_url for k in ("{z}", "{x}", "{y}")):
            msg = f"tile URL {tile_url!r} lacks {{z}}, {{x}} or {{y}}; fix: e.g. http://intranet/tiles/{{z}}/{{x}}/{{y}}.png"
            raise InvalidValueError(msg)
        bm = Basemap(bm.name, bm.label, (tile_url,), "abc", bm.attribution, bm.datum, bm.max_zoom)
    return bm


def _basemap_name(basemap: object) -> str:
    name = basemap.strip().lower() if isinstance(basemap, str) else basemap
    if name not in BASEMAPS:
        msg = f"unknown basemap {basemap!r}; choose one of: {', '.join(BASEMAPS)}"
        raise InvalidValueError(msg)
    return str(name)


def shift_for_basemap(geoms: Any, basemap: str | Basemap, *, decimals: int = _DECIMALS) -> np.ndarray:
    """Move WGS-84 geometries into the datum of a basemap's tiles and round them.

    This is the single place where overlays meet the basemap's datum: on
    ``amap`` every vertex goes through
    :func:`planner.datum.wgs84_to_gcj02`; other basemaps are WGS-84.

    Parameters
    ----------
    geoms
        Shapely geometries (array-like) in EPSG:4326.
    basemap
        A name from :data:`BASEMAPS` or a :class:`Basemap`.
    decimals
        Coordinates are rounded to this many decimal places (5: 1e-5 deg,
        about 1 m).

    Returns
    -------
    geoms
        Geometries in the basemap's datum.

    Examples
    --------
    >>> p = shift_for_basemap([shapely.Point(114.3, 30.6)], "amap")[0]
    >>> round(p.x - 114.3, 4), round(p.y - 30.6, 4)
    (0.0054, -0.0024)
    """
    datum = basemap.datum if isinstance(basemap, Basemap) else _BASEMAP_DATUMS[_basemap_name(basemap)]
    arr = np.asarray(geoms, dtype=object)

    def move(xy: np.ndarray) -> np.ndarray:
        if datum == "gcj02":
            lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
            xy = np.column_stack([lon, lat])
        return np.round(xy, decimals)

    return shapely.transform(arr, move)


# --------------------------------------------------------------------------- the map


class _Assets(MacroElement):
    """Leaflet inlined (offline), planner's CSS, and the map's extra controls."""

    _template = Template("""
{% macro header(this, kwargs) %}
{{ this.head }}
{% endmacro %}
{% macro script(this, kwargs) %}
(function (map) {
  window.plannerMap = map;
  L.DomUtil.addClass(map.getContainer(), {{ this.container_class|tojson }});
  L.control.scale({metric: true, imperial: false, maxWidth: 160}).addTo(map);
  var Fullscreen = L.Control.extend({
    options: {position: "topleft"},
    onAdd: function () {
      var bar = L.DomUtil.create("div", "leaflet-bar leaflet-control planner-fullscreen");
      var a = L.DomUtil.create("a", "", bar);
      a.href = "#"; a.title = "全屏 Full screen"; a.setAttribute("role", "button");
      a.innerHTML = {{ this.fullscreen_icon|tojson }};
      L.DomEvent.disableClickPropagation(bar);
      L.DomEvent.on(a, "click", function (e) {
        L.DomEvent.preventDefault(e);
        var c = map.getContainer();
        if (document.fullscreenElement) { document.exitFullscreen(); }
        else if (c.requestFullscreen) { c.requestFullscreen(); }
      });
      document.addEventListener("fullscreenchange", function () { map.invalidateSize(); });
      return bar;
    }
  });
  new Fullscreen().addTo(map);
  {%- for a in this.attributions %}
  map.attributionControl.addAttribution({{ a|tojson }});
  {%- endfor %}
})({{ this._parent.get_name() }});
{% endmacro %}
""")

    def __init__(self, *, offline: bool, basemap: str, attributions: list[str]) -> None:
        super().__init__()
        self._name = "PlannerAssets"
        head = _leaflet_inline() if offline else ""
        self.head = head + f"<style>{_PLANNER_CSS}</style>"
        self.container_class = f"planner-basemap-{basemap}"
        self.attributions = attributions
        self.fullscreen_icon = _FULLSCREEN_SVG


_FULLSCREEN_SVG = ('<svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" style="margin-top:7px">'
                   '<path d="M1 6V1h5M10 1h5v5M15 10v5h-5M6 15H1v-5" fill="none" stroke="#333" stroke-width="2"/></svg>')
_PLANNER_CSS = """
.planner-basemap-none { background: #f4f4f1; }
.planner-fullscreen a { text-align: center; }
.planner-legend { background: #fff; padding: 8px 10px; border: 1px solid #999; border-radius: 4px;
  font: 12px/1.35 "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; max-width: 320px;
  max-height: calc(100vh - 140px); overflow-y: auto; }
.planner-legend .sym { display: inline-block; vertical-align: middle; margin-right: 5px; }
.planner-legend h4 { margin: 4px 0 2px; font-size: 12px; }
.planner-legend .title { font-weight: bold; font-size: 14px; margin-bottom: 2px; }
.planner-legend .attr { margin-top: 5px; color: #555; font-size: 11px; }
.leaflet-tooltip table th { text-align: left; padding-right: 6px; font-weight: normal; color: #555; }
"""


def _leaflet_inline() -> str:
    """Leaflet's CSS (its images as data: URIs) and JS, read from the installed package."""
    try:
        root = importlib.resources.files(_LEAFLET_PACKAGE) / "static" / _LEAFLET_PACKAGE
        css = (root / "leaflet.css").read_text(encoding="utf-8")
        js = (root / "leaflet.js").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:  # pragma: no cover - a broken install
        msg = ("offline maps need Leaflet from the package django-js-lib-leaflet; fix: "
               "pip install django-js-lib-leaflet  (conda users: the same pip line inside the environment)")
        raise ImportError(msg) from exc

    def data_uri(match: re.Match[str]) -> str:
        image = root / "images" / match.group(1)
        if not image.is_file():
            return "url()"
        return "url(data:image/png;base64," + base64.b64encode(image.read_bytes()).decode("ascii") + ")"

    css = re.sub(r"url\(images/([\w.-]+)\)", data_uri, css)
    js = js.replace("</script", "<\\/script")  # cannot close the inline <script> early
    return f"<style>{css}</style>\n<script>{js}</script>\n"


def new_map(
    bounds: Sequence[float],
    *,
    basemap: str = "osm",
    offline: bool = False,
    title: str | None = None,
    population_unit: str | None = None,
    tile_url: str | None = None,
    approval_number: str | None = None,
) -> folium.Map:
    """Create an empty planner map of an area on a basemap.

    The map has a metric scale bar, a full-screen button and the data
    attribution (© OpenStreetMap contributors; WorldPop when used), plus the
    basemap's attribution and, for Chinese basemaps, the 审图号 notice that
    public display requires. Add overlays with the ``add_*`` functions, which
    move them to the basemap's datum.

    Parameters
    ----------
    bounds
        ``(min_lon, min_lat, max_lon, max_lat)`` in WGS-84 degrees, e.g. a
        GeoDataFrame's ``total_bounds``; the map opens on this area.
    basemap
        One of :data:`BASEMAPS` (see :func:`get_basemap`).
    offline
        Inline Leaflet into the page so that it works with no network; with
        a tiled basemap only the tiles then need the network.
    title
        Page title (the browser tab).
    population_unit
        Population label; WorldPop is credited when it mentions WorldPop (or
        is None).
    tile_url
        Tile URL template replacing the provider's (e.g. an intranet mirror).
    approval_number
        Map approval number (审图号) printed with Chinese basemaps.

    Returns
    -------
    m
        A Folium map; write it with :func:`save_map` or ``m.save(path)``.

    Raises
    ------
    InvalidValueError
        For an unknown basemap or a missing Tianditu key.

    Examples
    --------
    >>> m = new_map((114.2, 30.5, 114.4, 30.7), basemap="none", offline=True)
    >>> "tile.openstreetmap.org" in m.get_root().render()
    False
    """
    bm = get_basemap(basemap, tile_url=tile_url, approval_number=approval_number)
    m = folium.Map(location=None, tiles=None, control_scale=False, max_zoom=bm.max_zoom)
    # folium's class-wide CDN list (Leaflet, jQuery, Bootstrap, Awesome Markers, Font Awesome) is replaced
    # for this map only: planner's maps use none but Leaflet, which is inlined when offline.
    m.default_js = [] if offline else [("leaflet", _LEAFLET_CDN_JS)]
    m.default_css = [] if offline else [("leaflet_css", _LEAFLET_CDN_CSS)]
    m.planner_basemap = bm  # type: ignore[attr-defined]
    m.planner_offline = offline  # type: ignore[attr-defined]
    m.planner_attribution = _data_attributions(population_unit)  # type: ignore[attr-defined]
    if title:
        m.get_root().title = esc(title)  # type: ignore[attr-defined]
    corners = shift_for_basemap([shapely.Point(bounds[0], bounds[1]), shapely.Point(bounds[2], bounds[3])], bm)
    m.fit_bounds([[corners[0].y, corners[0].x], [corners[1].y, corners[1].x]])  # before the tiles: no world-view requests
    for url in bm.tiles:
        folium.TileLayer(url, attr=bm.attribution or " ", name=bm.label, control=False, max_zoom=bm.max_zoom,
                         subdomains=bm.subdomains or "abc").add_to(m)
    folium.map.CustomPane(INSTITUTION_PANE, z_index=450).add_to(m)
    _Assets(offline=offline, basemap=bm.name, attributions=m.planner_attribution).add_to(m)  # type: ignore[attr-defined]
    return m


def _basemap_of(m: folium.Map) -> Basemap:
    bm = getattr(m, "planner_basemap", None)
    if bm is None:
        msg = "this map was not made by planner.maps.new_map, so its basemap datum is unknown; fix: create it with new_map()"
        raise TypeError(msg)
    return bm


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


# --------------------------------------------------------------------------- overlays


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

    def band(sel: np.ndarray, colour: str, label: str, *, dash: bool = False) -> None:
        shape = _dissolve(geoms[sel], coverage=True)
        if shape.is_empty:
            return
        shapes.append(shape)
        props.append({"label": esc(f"{label}: {pop[sel].sum():,.0f} 人 persons, {int(sel.sum()):,} 格 cells"),
                      "colour": colour, "dash": dash})

    for lo, hi, colour, label in _bands(tmax, list(minutes)):
        band(np.isfinite(t) & (t > lo if lo > 0 else t >= 0) & (t <= hi), colour, label)
    band(np.isfinite(t) & (t > tmax), GAP_COLOUR, f">{tmax:g} 分钟 min (缺口 gap)")
    snap = f">{max_snap_m:g} m from roads / no route" if max_snap_m is not None else "no route"
    band(~np.isfinite(t), UNREACHABLE_COLOUR, f"不可达 unreachable ({snap})", dash=True)
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
    simplify_deg
        Simplification tolerance in degrees (5e-5 deg is about 5 m, below a
        pixel up to zoom 15; it halves the size of a city's isochrones).

    Returns
    -------
    layers
        One GeoJSON layer per non-empty threshold, largest first.
    """
    layers: list[folium.GeoJson] = []
    if iso is None or len(iso) == 0:
        return layers
    shown = max(minutes) if shown is None else shown
    for mins in sorted(minutes, reverse=True):
        sel = iso[iso["minutes"] == mins]
        shape = shapely.simplify(_dissolve(sel.geometry.to_numpy()), simplify_deg)
        if shape.is_empty:
            continue
        gdf = gpd.GeoDataFrame(geometry=[shape], crs=iso.crs)
        props = [{"label": esc(f"{mins:g} 分钟等时圈 {mins:g}-min isochrone ({len(sel)} 机构 institutions)")}]
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
    ``snapped``) get a black outline and a pale fill.

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
            })
        style = {"radius": TIER_RADIUS_PX[tier], "fillColor": TIER_COLOURS[tier], "weight": 1.5, "fill": True,
                 "pane": INSTITUTION_PANE, "className": f"planner-institution planner-tier-{tier}"}
        layer = folium.GeoJson(
            _feature_collection(geoms_all[sel], props, ids=sub.index),
            name=esc(f"{name_prefix}{settings.TIER_LABELS_ZH[tier].split('(')[0]} {tier} ({len(sub)})"),
            marker=folium.CircleMarker(radius=TIER_RADIUS_PX[tier]),
            style_function=lambda f, st=style: {
                **st, "color": "#ffffff" if f["properties"]["snapped"] else "#000000",
                "fillOpacity": 0.95 if f["properties"]["snapped"] else 0.4},
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "tier", "source", "snap", "id"],
                aliases=["名称 Name", "级别 Tier", "分级依据 Tier source", "距道路 Distance to road", "id"]),
        )
        layer.add_to(m)
        layers.append(layer)
    return layers


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
        ``box`` (area), ``circle`` (point), ``line`` or ``dashed`` (outline).
    size_px
        Symbol size in pixels (circle diameter).
    """

    label: str
    colour: str
    symbol: str = "box"
    size_px: int = 10


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
    entries = [LegendEntry(label, colour) for _lo, _hi, colour, label in _bands(tmax, list(minutes))]
    entries += [LegendEntry(f">{tmax:g} 分钟 min 缺口 gap", GAP_COLOUR),
                LegendEntry("不可达 unreachable", UNREACHABLE_COLOUR)]
    return LegendSection("出行时间 Travel time", tuple(entries))


def tier_legend() -> LegendSection:
    """Legend block for :func:`add_institutions` (tier colours and marker sizes).

    Returns
    -------
    section
        One circle per tier.
    """
    return LegendSection("机构 Institutions", tuple(
        LegendEntry(f"{settings.TIER_LABELS_ZH[t]} {t}", TIER_COLOURS[t], "circle", 2 * TIER_RADIUS_PX[t])
        for t in settings.TIERS))


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
        entries.append(LegendEntry("等时圈 isochrone (机构可达范围 reach of institutions)", ISOCHRONE_COLOUR))
    if districts:
        entries.append(LegendEntry("区县界 district boundary", DISTRICT_COLOUR, "dashed"))
    return LegendSection("", tuple(entries))


_HEX = re.compile(r"#[0-9a-fA-F]{3,8}")


def _symbol(e: LegendEntry) -> str:
    if not _HEX.fullmatch(e.colour):
        msg = f"legend colour {e.colour!r} is not a hex colour; fix: use e.g. '#31a354'"
        raise InvalidValueError(msg)
    s = int(e.size_px)
    if e.symbol == "circle":
        css = f"width:{s}px;height:{s}px;border-radius:50%;background:{e.colour};border:1px solid #fff;box-shadow:0 0 0 1px #999"
    elif e.symbol in ("line", "dashed"):
        css = f"width:18px;height:0;border-top:2px {'dashed' if e.symbol == 'dashed' else 'solid'} {e.colour}"
    else:
        css = f"width:16px;height:{s}px;background:{e.colour};opacity:.8"
    return f"<div><span class='sym' style='{css}'></span>{esc(e.label)}</div>"


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
})({{ this._parent.get_name() }});
{% endmacro %}
""")

    def __init__(self, body: str) -> None:
        super().__init__()
        self._name = "PlannerLegend"
        self.body = body


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
        The legend element; in the page it is ``<div id="planner-legend">``.
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
    legend = _Legend("".join(parts))
    legend.add_to(m)
    return legend


# --------------------------------------------------------------------------- coverage map


def render_coverage_map(
    run: CoverageRun,
    *,
    title: str | None = None,
    isochrone_minutes: float | None = None,
    basemap: str = "osm",
    offline: bool = False,
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
        One of :data:`BASEMAPS`; on ``amap`` all overlays are moved to GCJ-02.
    offline
        Inline Leaflet so the map opens with no network (see :func:`new_map`).
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
                population_unit=unit, tile_url=tile_url, approval_number=approval_number)
    add_travel_time_cells(m, cells, minutes=minutes, max_snap_m=s["max_snap_m"],
                          name=f"出行时间 Travel time ({s['mode']})")
    has_districts = run.districts is not None and len(run.districts) > 0
    if has_districts:
        add_districts(m, run.districts, max_minutes=tmax)
    iso_layers = add_isochrones(m, run.isochrones, minutes=minutes, shown=isochrone_minutes or tmax)
    add_institutions(m, run.institutions)
    add_layer_control(m)
    summary = LegendSection(
        f"{tmax:g}分钟医疗服务圈 {tmax:g}-minute coverage: {s['coverage_pct']:.1f}%",
        lines=(f"{s['population_covered']:,.0f} / {s['population_total']:,.0f} {unit or ''}",
               f"方式 mode: {s['mode']}"),
    )
    add_legend(m, [summary, travel_time_legend(minutes), outline_legend(districts=has_districts, isochrones=bool(iso_layers)),
                   tier_legend()], title=title)
    return m


CHANGE_CLASSES: dict[str, tuple[str, str]] = {  # value of compare cells' ``change`` -> (colour, label)
    "gained": ("#1a9850", "新覆盖 newly covered"),
    "lost": ("#d73027", "失去覆盖 newly lost"),
    "nearest_changed": ("#74add1", "最近机构改变 nearest institution changed"),
}


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
    for value, (colour, label) in classes.items():
        sel = values == value
        shape = _dissolve(geoms[sel], coverage=True)
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


def render_compare_map(
    a: CoverageRun,
    b: CoverageRun,
    cells: gpd.GeoDataFrame,
    comparison: dict[str, Any],
    *,
    title: str | None = None,
    basemap: str = "osm",
    offline: bool = False,
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
                population_unit=unit)
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
    add_institutions(m, kept[kept["snap_status"] == "snapped"], name_prefix="B ")
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
    change = LegendSection("变化 Change", entries=tuple(LegendEntry(label, colour) for colour, label in CHANGE_CLASSES.values()))
    add_legend(m, [head, change, tier_legend()], title=title)
    return m


SITING_CLASSES: dict[str, tuple[str, str]] = {  # value of siting cells' ``change`` -> (colour, label)
    "newly_covered": ("#1a9850", "新增覆盖 newly covered by the proposed sites"),
    "covered": ("#a6d96a", "已覆盖 already covered"),
    "gap": (GAP_COLOUR, "仍未覆盖 still beyond the threshold"),
    "unreachable": (UNREACHABLE_COLOUR, "不可达 unreachable"),
}


def render_siting_map(run: Any, *, title: str | None = None, basemap: str = "osm", offline: bool = False) -> folium.Map:
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
                population_unit=unit)
    add_cell_classes(m, run.cells, column="change", classes=SITING_CLASSES, name=f"{tmax:g}分钟覆盖 coverage")
    if run.case.districts is not None:
        add_districts(m, run.case.districts, max_minutes=tmax)
    if len(run.isochrones):
        add_isochrones(m, run.isochrones, minutes=[tmax], shown=tmax)
    add_institutions(m, run.existing, name_prefix="现有 existing: ")
    if len(run.sites):
        proposed = run.sites.copy()
        proposed["name"] = [f"#{int(r['rank'])} {r['name']} (+{r['added_population']:,.0f} 人 persons)"
                            for _, r in proposed.iterrows()]
        add_institutions(m, proposed, name_prefix="拟建 proposed: ")
    add_layer_control(m)
    head = LegendSection(
        f"{tmax:g}分钟覆盖率 coverage: {s['coverage_pct_before']:.1f}% → {s['coverage_pct_after']:.1f}%",
        lines=(f"新增 {s['new_sites']} 处分支机构 new sites ({s['model']}, {s['solver_status']})",
               f"新增覆盖 newly covered: {s['population_covered_after'] - s['population_covered_before']:,.0f} {unit or ''}"),
    )
    change = LegendSection("覆盖变化 coverage", entries=tuple(LegendEntry(label, colour) for colour, label in SITING_CLASSES.values()))
    add_legend(m, [head, change, outline_legend(isochrones=bool(len(run.isochrones))), tier_legend()], title=title)
    return m


GRID_PALETTE = ("#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
                "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f")  # ColorBrewer Set3: qualitative, light enough for markers
BASELINE_COLOUR = "#54278f"  # nearest-lead zone outlines
MOVED_COLOUR = "#e7298a"  # cells whose lead differs from the nearest one


def grid_colours(grids: gpd.GeoDataFrame, palette: Sequence[str] = GRID_PALETTE) -> dict[Any, str]:
    """Give neighbouring grids different colours (greedy graph colouring of touching grids).

    Parameters
    ----------
    grids
        Grid polygons, one row per lead.
    palette
        Colours to cycle through.

    Returns
    -------
    colours
        Index value -> hex colour.
    """
    geoms = grids.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    G = nx.Graph()
    G.add_nodes_from(range(len(geoms)))
    G.add_edges_from((int(i), int(j)) for i, j in zip(a, b, strict=True) if i < j)
    colour = nx.greedy_color(G, strategy="largest_first")
    return {grids.index[i]: palette[c % len(palette)] for i, c in colour.items()}


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


def render_grid_map(run: Any, *, title: str | None = None, basemap: str = "osm", offline: bool = False) -> folium.Map:
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
                population_unit=unit)
    add_grids(m, run.grids)
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
        f"{s['n_grids']} 个网格 grids ({s['solver_status']}, ±{s['tolerance']:.0%})",
        lines=(f"负荷比 load ratio {lo:.2f}–{hi:.2f} (就近 nearest {blo:.2f}–{bhi:.2f})",
               f"平均出行 mean time {cmp.get('mean_travel_time_s', float('nan')) / 60:.1f} 分钟 min "
               f"(就近 nearest {cmp.get('baseline_mean_travel_time_s', float('nan')) / 60:.1f})",
               f"调整归属 moved: {cmp.get('population_moved', 0):,.0f} {unit or ''}"),
    )
    lines = LegendSection("图层 Layers", entries=(
        LegendEntry("网格（相邻不同色）grid, neighbours differ", GRID_PALETTE[0]),
        LegendEntry("就近划分 nearest-lead zone", BASELINE_COLOUR, "dashed"),
        LegendEntry("调整归属 moved cell", MOVED_COLOUR),
        LegendEntry("区县 district", DISTRICT_COLOUR, "dashed"),
    ))
    add_legend(m, [head, lines, tier_legend()], title=title)
    return m


def side_by_side_html(left: str, right: str, *, title: str, left_label: str, right_label: str) -> str:
    """A page showing two saved maps side by side (each in a frame), for what-if comparisons.

    Parameters
    ----------
    left, right
        File names of the two map pages, relative to the page.
    title, left_label, right_label
        Page title and the captions (escaped).

    Returns
    -------
    html
        The page; it loads nothing but the two files.
    """
    cap = "position:absolute;top:4px;left:50%;transform:translateX(-50%);z-index:10;background:#fff;padding:2px 8px;font:13px sans-serif"
    frame = "border:0;width:100%;height:100%"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title></head>"
            "<body style='margin:0;display:flex;height:100vh'>"
            f"<div style='flex:1;position:relative'><div style='{cap}'>{esc(left_label)}</div>"
            f"<iframe src='{esc(left)}' style='{frame}'></iframe></div>"
            f"<div style='flex:1;position:relative;border-left:2px solid #333'><div style='{cap}'>{esc(right_label)}</div>"
            f"<iframe src='{esc(right)}' style='{frame}'></iframe></div></body></html>")


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


# --------------------------------------------------------------------------- static map


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
