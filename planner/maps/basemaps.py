"""Basemaps, datums, offline Leaflet and the empty map every planner map starts from.

* :func:`get_basemap` - a basemap by name (``auto``, ``osm``, ``amap``,
  ``tianditu``, ``none``), its tiles, attribution and datum;
* :func:`resolve_basemap` - what ``auto`` means for a study area: ``amap``
  inside China, ``osm`` elsewhere;
* :func:`shift_for_basemap` - the one place where overlays are moved into the
  datum of the basemap's tiles (GCJ-02 on ``amap``);
* :func:`new_map` - an empty map with scale bar, full-screen button, the data
  credits (:mod:`planner.credits`), a note shown when the basemap tiles cannot
  load, and (``offline=True``, the default) Leaflet inlined into the page;
* :func:`esc` and :func:`attribution` - the escaping and the credits every
  part of a map uses.
"""

from __future__ import annotations

import base64
import html
import importlib.resources
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import folium
import numpy as np
import shapely
from branca.element import MacroElement, Template

from .._errors import InvalidValueError
from ..credits import credit_lines
from ..datum import out_of_china, wgs84_to_gcj02
from ..settings import BASEMAPS

_BASEMAP_DATUMS = {"osm": "wgs84", "amap": "gcj02", "tianditu": "wgs84", "none": "wgs84"}  # datum of the tiles
TIANDITU_KEY_ENV = "TIANDITU_KEY"  # environment variable holding the Tianditu browser key
# No fixed 审图号 is printed: Amap's SDKs hand the current number out at run time (the amap_flutter_map docs of
# AMapController.getSatelliteImageApprovalNumber: apps using Amap must show the 审图号 they are given), and
# neither Amap nor Tianditu states one number for their raster tiles that could be cited here.
APPROVAL_NOTICE = ("公开发布前请向地图服务商获取审图号 obtain the map approval number (审图号) from the provider "
                   "before publishing")
TILES_NOTE = ("底图瓦片需要联网，现在无法加载；图层与图例不受影响。 Basemap tiles need a network connection and "
              "could not be loaded; the overlays and legend work offline.")
TILES_NOTE_DELAY_MS = 8000  # ms: the note also shows when no tile has loaded by then (a network that hangs)
INSTITUTION_PANE = "planner-institutions"  # above the polygons (overlayPane 400), below tooltips
_DECIMALS = 5  # decimal places of polygon vertices in the page (1e-5 deg, ~1 m); keeps the HTML small

_OSM_ATTR = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors (ODbL)'
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


def attribution(credits: Sequence[dict[str, Any]] | None = None) -> str:
    """Return the data attribution of a map: the credit lines of its data, as HTML.

    Parameters
    ----------
    credits
        A run summary's ``credits`` (see :mod:`planner.credits`); None: no
        data credit.

    Returns
    -------
    attribution
        The escaped lines of :func:`planner.credits.credit_lines`, joined by
        `` | ``.

    Examples
    --------
    >>> attribution([{"inputs": ["network"], "text": "© OpenStreetMap contributors", "licence": "ODbL 1.0", "url": ""}])
    '路网 network: © OpenStreetMap contributors (ODbL 1.0)'
    """
    return " | ".join(_data_attributions(credits))


def _data_attributions(credits: Sequence[dict[str, Any]] | None) -> list[str]:
    return [esc(line) for line in credit_lines(credits)]


def _short_credit(credit: dict[str, Any]) -> str:
    """Return a credit's text up to its first bracket or comma, with its licence: "WorldPop (CC BY 4.0)".

    >>> _short_credit({"text": "WorldPop (www.worldpop.org), University of Southampton", "licence": "CC BY 4.0"})
    'WorldPop (CC BY 4.0)'
    """
    text = re.split(r" \(|, |; ", str(credit.get("text", "")), maxsplit=1)[0]
    return f"{text} ({credit['licence']})" if credit.get("licence") else text


def resolve_basemap(basemap: str, bounds: Sequence[float] | None = None) -> str:
    """Return the basemap name `basemap` stands for on a study area.

    ``auto`` is ``amap`` when the centre of `bounds` lies inside China (by
    :func:`planner.datum.out_of_china`), where OSM tiles are often slow or
    blocked, and ``osm`` elsewhere; other names are returned as they are.

    Parameters
    ----------
    basemap
        One of :data:`BASEMAPS`.
    bounds
        ``(min_lon, min_lat, max_lon, max_lat)`` in WGS-84 degrees; needed for ``auto``.

    Returns
    -------
    name
        A basemap name other than ``auto``.

    Raises
    ------
    InvalidValueError
        For an unknown name, or ``auto`` without bounds.

    Examples
    --------
    >>> resolve_basemap("auto", (114.2, 30.5, 114.4, 30.7)), resolve_basemap("auto", (-0.2, 51.4, 0.0, 51.6))
    ('amap', 'osm')
    """
    name = _basemap_name(basemap)
    if name != "auto":
        return name
    if bounds is None or len(bounds) != 4 or not np.all(np.isfinite(np.asarray(bounds, dtype=float))):
        msg = "basemap 'auto' needs the study area's bounds to choose amap or osm; fix: give bounds, or a basemap name"
        raise InvalidValueError(msg)
    lon, lat = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
    return "osm" if bool(out_of_china(lon, lat)) else "amap"


def get_basemap(basemap: str = "auto", *, tile_url: str | None = None, approval_number: str | None = None,
                bounds: Sequence[float] | None = None) -> Basemap:
    """Return a basemap by name, checking that it can be used.

    Parameters
    ----------
    basemap
        One of :data:`BASEMAPS`: ``auto`` (the default: ``amap`` for a study
        area in China, ``osm`` elsewhere; see :func:`resolve_basemap`),
        ``osm`` (OpenStreetMap), ``amap`` (Amap/Gaode 高德, GCJ-02),
        ``tianditu`` (天地图, CGCS2000; needs the ``TIANDITU_KEY``
        environment variable) or ``none``. ``auto`` without `bounds` is only
        checked: the basemap returned then has no tiles and is named ``auto``.
    tile_url
        A Leaflet URL template (``.../{z}/{x}/{y}.png``) that replaces the
        provider's tiles, e.g. an intranet mirror of the same basemap; the
        datum and attribution stay those of `basemap`.
    approval_number
        The map approval number (审图号, e.g. ``GS(2024)0650``) to print on
        Amap/Tianditu maps shown in public; otherwise a sentence asking the
        user to obtain it from the provider before publishing.
    bounds
        Study area ``(min_lon, min_lat, max_lon, max_lat)``, WGS-84 degrees: resolves ``auto``.

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
    planner._errors.InvalidValueError: unknown basemap 'google'; choose one of: auto, osm, amap, tianditu, none
    """
    name = _basemap_name(basemap)
    if name == "auto" and bounds is not None:
        name = resolve_basemap(name, bounds)
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
    elif name == "auto":  # checked only: new_map resolves it from the study area
        return Basemap("auto", "自动 Auto (amap in China, osm elsewhere)", (), "", "", "auto", 18)
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
        A name from :data:`BASEMAPS` (``auto`` is resolved from the
        geometries' bounds) or a :class:`Basemap`.
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
    arr = np.asarray(geoms, dtype=object)
    if isinstance(basemap, Basemap):
        datum = basemap.datum
    else:
        name = _basemap_name(basemap)
        if name == "auto":
            name = resolve_basemap(name, shapely.total_bounds(arr) if arr.size else None)
        datum = _BASEMAP_DATUMS[name]
    if datum not in ("wgs84", "gcj02"):
        msg = "basemap 'auto' was not resolved to a basemap; fix: build it with get_basemap(..., bounds=...)"
        raise InvalidValueError(msg)

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
  {%- if this.tiles_note %}
  // the basemap tiles need the network; everything else is in the page. The note shows on the first tile that
  // fails (or when none has loaded after a while) and goes away once a tile loads.
  var TilesNote = L.Control.extend({
    options: {position: "bottomright"},
    onAdd: function () {
      var div = L.DomUtil.create("div", "leaflet-control planner-tiles-note");
      div.id = "planner-tiles-note"; div.setAttribute("role", "status"); div.style.display = "none";
      div.textContent = {{ this.tiles_note|tojson }};
      return div;
    }
  });
  var note = new TilesNote().addTo(map), loaded = false;
  function show() { if (!loaded) { note.getContainer().style.display = ""; } }
  function watch(layer) {
    if (!(layer instanceof L.TileLayer)) { return; }
    layer.on("tileerror", show);
    layer.on("tileload", function () { loaded = true; note.getContainer().style.display = "none"; });
  }
  map.eachLayer(watch);
  map.on("layeradd", function (e) { watch(e.layer); });
  setTimeout(show, {{ this.tiles_note_delay_ms }});
  {%- endif %}
  {%- for a in this.attributions %}
  map.attributionControl.addAttribution({{ a|tojson }});
  {%- endfor %}
})({{ this._parent.get_name() }});
{% endmacro %}
""")

    def __init__(self, *, offline: bool, basemap: str, attributions: list[str], tiled: bool) -> None:
        super().__init__()
        self._name = "PlannerAssets"
        head = _leaflet_inline() if offline else ""
        self.head = head + f"<style>{_PLANNER_CSS}</style>"
        self.container_class = f"planner-basemap-{basemap}"
        self.attributions = attributions
        self.fullscreen_icon = _FULLSCREEN_SVG
        self.tiles_note = TILES_NOTE if tiled else ""
        self.tiles_note_delay_ms = TILES_NOTE_DELAY_MS


_FULLSCREEN_SVG = ('<svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" style="margin-top:7px">'
                   '<path d="M1 6V1h5M10 1h5v5M15 10v5h-5M6 15H1v-5" fill="none" stroke="#333" stroke-width="2"/></svg>')
_PLANNER_CSS = """
.planner-basemap-none { background: #f4f4f1; }
.planner-fullscreen a { text-align: center; }
.planner-tiles-note { background: #fff8e1; border: 1px solid #c9a227; border-radius: 4px; padding: 5px 8px;
  max-width: 300px; font: 12px/1.35 "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; color: #5d4600; }
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
    basemap: str = "auto",
    offline: bool = True,
    title: str | None = None,
    credits: Sequence[dict[str, Any]] | None = None,
    tile_url: str | None = None,
    approval_number: str | None = None,
) -> folium.Map:
    """Create an empty planner map of an area on a basemap.

    The map has a metric scale bar, a full-screen button and the data
    credits (one line per source, see :func:`planner.credits.credit_lines`),
    plus the basemap's attribution and, for Chinese basemaps, the 审图号
    notice that public display requires. On a tiled basemap a bilingual note
    (``#planner-tiles-note``) says that the tiles need a network when they
    cannot load. Add overlays with the ``add_*`` functions, which move them
    to the basemap's datum.

    Parameters
    ----------
    bounds
        ``(min_lon, min_lat, max_lon, max_lat)`` in WGS-84 degrees, e.g. a
        GeoDataFrame's ``total_bounds``; the map opens on this area.
    basemap
        One of :data:`BASEMAPS` (see :func:`get_basemap`); ``auto`` (the
        default) is ``amap`` when the centre of `bounds` is in China, ``osm``
        elsewhere.
    offline
        Inline Leaflet into the page (the default) so that it works with no
        network; with a tiled basemap only the tiles then need the network.
        False loads Leaflet from a public CDN (a smaller page).
    title
        Page title (the browser tab).
    credits
        The data credits, a run summary's ``credits`` (see
        :func:`planner.credits.case_credits`); None: none shown.
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
    >>> m = new_map((114.2, 30.5, 114.4, 30.7), basemap="none")
    >>> html = m.get_root().render()
    >>> "tile.openstreetmap.org" in html, "cdn.jsdelivr.net" in html
    (False, False)
    >>> new_map((114.2, 30.5, 114.4, 30.7)).planner_basemap.name  # auto, in China
    'amap'
    """
    bm = get_basemap(resolve_basemap(basemap, bounds), tile_url=tile_url, approval_number=approval_number)
    m = folium.Map(location=None, tiles=None, control_scale=False, max_zoom=bm.max_zoom)
    # folium's class-wide CDN list (Leaflet, jQuery, Bootstrap, Awesome Markers, Font Awesome) is replaced
    # for this map only: planner's maps use none but Leaflet, which is inlined when offline.
    m.default_js = [] if offline else [("leaflet", _LEAFLET_CDN_JS)]
    m.default_css = [] if offline else [("leaflet_css", _LEAFLET_CDN_CSS)]
    m.planner_basemap = bm  # type: ignore[attr-defined]
    m.planner_offline = offline  # type: ignore[attr-defined]
    m.planner_attribution = _data_attributions(credits)  # type: ignore[attr-defined]
    m.planner_credits = list(credits or [])  # type: ignore[attr-defined]
    if title:
        m.get_root().title = esc(title)  # type: ignore[attr-defined]
    corners = shift_for_basemap([shapely.Point(bounds[0], bounds[1]), shapely.Point(bounds[2], bounds[3])], bm)
    m.planner_view = [[corners[0].y, corners[0].x], [corners[1].y, corners[1].x]]  # type: ignore[attr-defined]
    m.fit_bounds(m.planner_view)  # type: ignore[attr-defined]  # before the tiles: no world-view requests
    # the attribution bar stays one line: the long sentence asking for a 审图号 is in the legend (add_legend)
    bar = bm.attribution.replace(esc(APPROVAL_NOTICE), "审图号 approval no.: 见图例 see legend")
    for url in bm.tiles:
        folium.TileLayer(url, attr=bar or " ", name=bm.label, control=False, max_zoom=bm.max_zoom,
                         subdomains=bm.subdomains or "abc").add_to(m)
    folium.map.CustomPane(INSTITUTION_PANE, z_index=450).add_to(m)
    # the legend shows the full credit lines; the attribution control (one line at the bottom) their short form
    _Assets(offline=offline, basemap=bm.name, attributions=[esc(_short_credit(c)) for c in credits or ()],
            tiled=bool(bm.tiles)).add_to(m)
    return m


def _basemap_of(m: folium.Map) -> Basemap:
    bm = getattr(m, "planner_basemap", None)
    if bm is None:
        msg = "this map was not made by planner.maps.new_map, so its basemap datum is unknown; fix: create it with new_map()"
        raise TypeError(msg)
    return bm
