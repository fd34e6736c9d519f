"""The coverage map: layers, legend, attribution, and names escaped (rendered HTML fragments)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import folium
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import affinity
from typer.testing import CliRunner

from planner import InvalidValueError, maps
from planner.cli import app
from planner.datum import wgs84_to_gcj02
from planner.exports import write_coverage_outputs
from planner.pipeline import run_coverage

from .conftest import toy_points

EVIL = '<script>alert("x")</script>医院'


def _unjson(html: str) -> str:
    return html.replace("\\u0026", "&").replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0027", "'")


@pytest.fixture
def toy_files(tmp_path, toy_roads):
    inst = toy_points([(100, 20), (980, -30)], ["F1", "F2"])
    pd.DataFrame({"name": [EVIL, "二号社区卫生服务中心"], "lon": inst.geometry.x, "lat": inst.geometry.y,
                  "tier": ["tertiary", ""]}).to_csv(tmp_path / "inst.csv", index=False)
    cells = toy_points([(300, 50), (530, 400), (700, 600), (900, 100)], ["a", "b", "c", "d"])
    pd.DataFrame({"lon": cells.geometry.x, "lat": cells.geometry.y, "population": [100, 200, 300, 400]}).to_csv(
        tmp_path / "pop.csv", index=False)
    return toy_roads, tmp_path / "inst.csv", tmp_path / "pop.csv"


def test_map_html_fragments(toy_files, tmp_path):
    roads, inst, pop = toy_files
    run = run_coverage(roads, inst, pop, minutes=(5, 10, 15), population_label="persons aged 20+ (WorldPop)")
    assert run.institutions.loc["2", "tier"] == "primary"  # blank tier -> name rule
    assert run.institutions.loc["2", "tier_source"] == "name_rule"
    out = tmp_path / "out"
    write_coverage_outputs(run, out, title="测试 <b>title</b>", basemap="osm")  # toy data near Wuhan: auto would be amap
    html = (out / "map.html").read_text(encoding="utf-8")
    text = _unjson(html)  # layer data is embedded as HTML-safe JSON (& < > as \u0026 \u003c \u003e)
    assert "<script>alert" not in text and "&lt;script&gt;alert" in text
    assert "测试 &lt;b&gt;title&lt;/b&gt;" in html
    assert "OpenStreetMap</a> contributors" in html and "WorldPop" in html
    for fragment in ("planner-legend", "出行时间 Travel time", "Isochrones 15 min", "L.control.layers",
                     "缺口 gap", "三级医院", "社区卫生服务中心"):
        assert fragment in html, fragment
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["complete"] is True
    assert summary["population_total"] == 1000
    assert f"{summary['coverage_pct']:.1f}%" in html


def test_escape_helper():
    assert maps.esc(None) == ""
    assert maps.esc('a"b') == "a&quot;b"
    assert maps.attribution(None) == ""  # credits come from the data's sources, never from a population label


# --------------------------------------------------------------------------- basemaps, offline, datum


@pytest.fixture
def toy_run(toy_files):
    roads, inst, pop = toy_files
    return run_coverage(roads, inst, pop, minutes=(5, 10, 15), population_label="persons aged 20+ (WorldPop)")


def _geojson_layers(element) -> list:
    found = [element] if isinstance(element, folium.GeoJson) else []
    for child in element._children.values():
        found += _geojson_layers(child)
    return found


def _coords(geometry: dict) -> np.ndarray:
    return np.array(shapely.get_coordinates(shapely.geometry.shape(geometry)))


def test_unknown_basemap_lists_choices(toy_run):
    with pytest.raises(InvalidValueError, match=r"unknown basemap 'google'; choose one of: auto, osm, amap, tianditu, none"):
        maps.render_coverage_map(toy_run, basemap="google")
    assert maps.get_basemap(" AMap ").name == "amap"


def test_tianditu_key(toy_run, monkeypatch):
    monkeypatch.delenv(maps.TIANDITU_KEY_ENV, raising=False)
    with pytest.raises(InvalidValueError, match="set the environment variable TIANDITU_KEY"):
        maps.render_coverage_map(toy_run, basemap="tianditu")
    monkeypatch.setenv(maps.TIANDITU_KEY_ENV, 'abc"><script>')
    with pytest.raises(InvalidValueError, match="does not look like a Tianditu key"):
        maps.get_basemap("tianditu")
    monkeypatch.setenv(maps.TIANDITU_KEY_ENV, "0123456789abcdef0123456789abcdef")
    html = maps.render_coverage_map(toy_run, basemap="tianditu").get_root().render()
    assert "LAYER=vec" in html and "LAYER=cva" in html and "tk=0123456789abcdef0123456789abcdef" in html
    assert "天地图 Tianditu (国家地理信息公共服务平台)" in html and "审图号" in html


@pytest.mark.parametrize(("basemap", "fragments"), [
    ("osm", ["tile.openstreetmap.org", "OpenStreetMap</a> contributors (ODbL)"]),
    ("amap", ["webrd0{s}.is.autonavi.com", "&copy; 高德地图 AutoNavi", maps.APPROVAL_NOTICE]),
    ("none", []),
])
def test_attribution_on_every_basemap(toy_run, basemap, fragments):
    html = maps.render_coverage_map(toy_run, basemap=basemap).get_root().render()
    for fragment in [*fragments, "来源未注明 source not given"]:  # the toy inputs have no known source
        assert fragment in html, fragment
    assert "GS(20xx)" not in html and "WorldPop" not in html.replace("(WorldPop)", "")  # no placeholder; no credit from a label
    if basemap == "none":
        assert "L.tileLayer" not in html
    numbered = maps.render_coverage_map(toy_run, basemap="amap", approval_number="GS(2024)0650").get_root().render()
    assert "审图号 GS(2024)0650" in numbered and "GS(20xx)" not in numbered


def test_offline_html_is_self_contained(toy_run):
    offline = maps.render_coverage_map(toy_run, basemap="none", offline=True).get_root().render()
    assert "Leaflet 1.9.4" in offline and ".leaflet-control-layers-toggle" in offline  # inlined from the package
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", offline)
    assert "url(images/" not in offline and "data:image/png;base64," in offline
    for cdn in ("jquery", "bootstrap", "awesome-markers", "fontawesome", "cdn.jsdelivr", "cdnjs"):
        assert cdn not in offline.lower(), cdn
    default = maps.render_coverage_map(toy_run).get_root().render()  # offline is the default
    assert "Leaflet 1.9.4" in default and not re.search(r"<script[^>]+src=|<link[^>]+href=", default)
    online = maps.render_coverage_map(toy_run, offline=False).get_root().render()
    assert re.findall(r'<script[^>]+src="([^"]+)"', online) == ["https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.js"]
    assert "jquery" not in online.lower() and "bootstrap" not in online.lower()
    assert "Leaflet 1.9.4, a JS library" not in online


def test_amap_shifts_every_overlay(toy_run):
    """Every vertex of every layer on Amap is the WGS-84 vertex moved to GCJ-02; other basemaps are WGS-84."""
    layers = {bm: _geojson_layers(maps.render_coverage_map(toy_run, basemap=bm)) for bm in ("osm", "amap", "none")}
    kinds = {layer.style_function(layer.data["features"][0])["className"].split()[0] for layer in layers["osm"]}
    assert kinds == {"planner-cells", "planner-isochrones", "planner-institution"}
    assert len(layers["osm"]) == len(layers["amap"]) == len(layers["none"])
    for plain, none, shifted in zip(layers["osm"], layers["none"], layers["amap"], strict=True):
        for f0, f1, f2 in zip(plain.data["features"], none.data["features"], shifted.data["features"], strict=True):
            xy = _coords(f0["geometry"])
            np.testing.assert_array_equal(xy, _coords(f1["geometry"]))
            lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
            moved = _coords(f2["geometry"])
            np.testing.assert_allclose(moved, np.column_stack([lon, lat]), atol=2e-5)  # both rounded to 1e-5 deg
            assert np.abs(moved - xy).max() > 1e-3  # ~100+ m: really moved
    inst = toy_run.institutions.loc["1"]
    marker = next(f for layer in layers["amap"] for f in layer.data["features"] if f["id"] == "1")
    assert marker["geometry"]["type"] == "Point"
    g = wgs84_to_gcj02(inst.geometry.x, inst.geometry.y)
    assert marker["geometry"]["coordinates"] == pytest.approx([float(g[0]), float(g[1])], abs=1e-6)


def test_building_blocks(toy_run):
    """The blocks later maps reuse: escaped layer names and legend text, checked colours."""
    m = maps.new_map(toy_run.cells.total_bounds, basemap="amap", offline=True, title="<i>t</i>")
    layer = maps.add_travel_time_cells(m, toy_run.cells, minutes=(5, 10, 15), name="<b>scenario</b>")
    assert layer.layer_name == "&lt;b&gt;scenario&lt;/b&gt;"
    maps.add_institutions(m, toy_run.institutions)
    maps.add_layer_control(m)
    maps.add_legend(m, [maps.LegendSection("<h1>x</h1>", (maps.LegendEntry("a<b", "#123456", "circle"),), ("1 < 2",)),
                        maps.travel_time_legend([15]), maps.tier_legend()], title="<i>t</i>")
    html = m.get_root().render()
    assert "<title>&lt;i&gt;t&lt;/i&gt;</title>" in html and "&lt;h1&gt;x&lt;/h1&gt;" in html
    assert "a&lt;b" in html and "1 &lt; 2" in html and "<h1>" not in html
    with pytest.raises(InvalidValueError, match="not a hex colour"):
        maps.add_legend(m, [maps.LegendSection("x", (maps.LegendEntry("a", "red;background:url(x)"),))])
    with pytest.raises(TypeError, match="new_map"):
        maps.add_institutions(folium.Map(tiles=None), toy_run.institutions)


def test_cli_basemap_options(toy_files, tmp_path, monkeypatch):
    """``--basemap`` and ``--offline`` reach map.html; a missing Tianditu key stops before the analysis."""
    roads, inst, pop = toy_files
    args = ["coverage", "--network", str(roads), "--institutions", str(inst), "--population", str(pop), "-q"]
    ok = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "amap"), "--basemap", "amap", "--offline"])
    assert ok.exit_code == 0, ok.output
    html = (tmp_path / "amap" / "map.html").read_text(encoding="utf-8")
    assert "is.autonavi.com" in html and "Leaflet 1.9.4" in html and not re.search(r"<script[^>]+src=", html)
    monkeypatch.delenv(maps.TIANDITU_KEY_ENV, raising=False)
    bad = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "tdt"), "--basemap", "tianditu"])
    assert bad.exit_code == 2 and "error: the tianditu basemap needs a Tianditu browser key" in bad.output
    assert "TIANDITU_KEY" in bad.output
    assert sorted(p.name for p in (tmp_path / "tdt").iterdir()) == ["error.log"]
    unknown = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x"), "--basemap", "google"])
    flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", unknown.output).split())  # typer wraps the message in a box
    assert unknown.exit_code == 2 and "'google' is not one of 'auto', 'osm', 'amap', 'tianditu', 'none'" in flat


def test_traced_cells_hand_solved():
    """A ring of 8 cells around a centre cell: one square with a hole, and the centre; diagonal cells stay apart."""
    from planner.maps._trace import trace_classes

    xs, ys = np.meshgrid(np.arange(3.0), np.arange(3.0))
    cells = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + 1, ys.ravel() + 1)
    ring, centre, empty = trace_classes(cells, np.where(np.arange(9) == 4, 1, 0), 3)
    assert (ring.geom_type, len(ring.interiors), ring.area) == ("Polygon", 1, 8.0)
    assert ring.equals(shapely.box(0, 0, 3, 3).difference(shapely.box(1, 1, 2, 2)))
    assert centre.equals(shapely.box(1, 1, 2, 2)) and empty.is_empty
    diagonal = trace_classes(cells, np.array([0, -1, -1, -1, 0, -1, -1, -1, 0]), 1)[0]
    assert (diagonal.geom_type, len(diagonal.geoms), diagonal.area) == ("MultiPolygon", 3, 3.0)
    # off the lattice (one cell moved by a third of a cell), rotated, or overlapping: not traced
    moved = cells.copy()
    moved[0] = affinity.translate(cells[0], xoff=1 / 3)
    assert trace_classes(moved, np.zeros(9, dtype=int), 1) is None
    assert trace_classes(np.array(affinity.rotate(shapely.multipolygons(cells), 10).geoms), np.zeros(9, dtype=int), 1) is None
    assert trace_classes(np.r_[cells, cells[:1]], np.zeros(10, dtype=int), 1) is None


@pytest.fixture(scope="module")
def guanggu_walk_run():
    from planner import datasets

    return run_coverage(datasets.get_path("guanggu_osm"), Path(__file__).parent / "data" / "guanggu_institutions.csv",
                        datasets.get_path("wuhan_population"), mode="walk")


def test_traced_bands_equal_the_union_of_cells(guanggu_walk_run):
    """Optics Valley walk: each travel-time band traced from the raster grid is the union of its cells.

    The bands the map draws (cells of WorldPop 100 m pixels) are the same area
    as the cells' union (:func:`planner.maps.layers._dissolve`), to float rounding.
    """
    from planner.maps._trace import trace_classes
    from planner.maps.layers import _band_masks, _dissolve, _dissolve_cells

    run = guanggu_walk_run
    t = run.cells["travel_time_min"].to_numpy(dtype=float)
    geoms = run.cells.geometry.to_numpy()
    masks = [m[0] for m in _band_masks(t, 15.0, [5.0, 10.0, 15.0])]
    codes = np.select(masks, np.arange(len(masks)), -1)
    traced = trace_classes(geoms, codes, len(masks))
    assert traced is not None  # the raster's cells are recognised as one grid
    drawn = _dissolve_cells(geoms, masks)
    cell_area = shapely.area(geoms)
    assert sum(int(m.sum()) > 0 for m in masks) >= 4  # 3 bands and the gap at least: a real comparison
    for sel, tr, dr in zip(masks, traced, drawn, strict=True):
        exact, union = shapely.coverage_union_all(geoms[sel]), _dissolve(geoms[sel], coverage=True)
        assert tr.area == pytest.approx(cell_area[sel].sum(), rel=1e-9)
        assert shapely.symmetric_difference(tr, exact).area <= 1e-9 * max(exact.area, 1e-12)
        # what the map draws: both rounded to the ~1 m grid of the web map
        assert shapely.symmetric_difference(dr, union).area <= 1e-9 * max(union.area, 1e-12)
    shifted = geoms.copy()
    shifted[0] = affinity.translate(geoms[0], xoff=(geoms[0].bounds[2] - geoms[0].bounds[0]) / 3)
    assert trace_classes(shifted, codes, len(masks)) is None  # off the grid: _dissolve_cells unites
    for sel, dr in zip(masks, _dissolve_cells(shifted, masks), strict=True):
        assert dr.equals(_dissolve(shifted[sel], coverage=True))
