"""Exported maps in a real browser: headless Chromium, with every network request blocked.

Playwright rather than Selenium: it drives Debian's ``chromium`` binary directly
(``executable_path``), with no chromedriver whose version must match the browser,
and it reports every request and console message, which is what proves that an
offline map loads nothing from the network and raises no error. ``playwright
install`` (which downloads its own browsers) is never needed.

Each map of a small real case (Optics Valley, Wuhan) is opened from ``file://``.
Requests to anything else are intercepted: basemap tiles are answered with a
blank local tile, everything else is aborted and fails the test. The maps that
``make run`` writes with the CLI's defaults (and another case's) are also opened
with every request aborted, tiles included, as on a PC with no network: they
must show their overlays, legend and the "tiles need a network" note. Screenshots go
to ``outputs/screenshots/``.

Without Chromium or Playwright the tests are skipped, except on CI (``CI`` set)
and under ``make test`` (which installs Chromium first, with
``scripts/system-deps.sh``, and sets ``PLANNER_REQUIRE_BROWSER=1``), where they
fail.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from planner import datasets, maps
from planner.datum import wgs84_to_gcj02
from planner.exports import write_coverage_outputs
from planner.pipeline import run_coverage

DATA = Path(__file__).parent / "data"
SCREENSHOTS = Path(__file__).parents[1] / "outputs" / "screenshots"
KNOWN_ID = "3"  # 东湖高新区人民医院, tests/data/guanggu_institutions.csv row 3 (WGS-84)
EVIL = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>`${window.__pwned=3}`\\u"
FAKE_TIANDITU_KEY = "0123456789abcdef0123456789abcdef"
TILE_HOSTS = {  # hosts each basemap may request tiles from (answered locally, never sent)
    "none": (),
    "osm": ("tile.openstreetmap.org",),
    "amap": ("is.autonavi.com",),
    "tianditu": ("tianditu.gov.cn",),
}
VIEWPORT = {"width": 1280, "height": 860}


REQUIRE_BROWSER_VARS = ("CI", "PLANNER_REQUIRE_BROWSER")  # either set (not 0/false): a missing browser fails


def _unavailable(why: str) -> None:
    required = [v for v in REQUIRE_BROWSER_VARS if os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no")]
    if required:
        pytest.fail(f"{why} (required: {', '.join(required)} is set)")
    pytest.skip(why)


@pytest.mark.parametrize(("env", "outcome"), [({}, "skip"), ({"CI": "false"}, "skip"), ({"CI": "true"}, "fail"),
                                              ({"PLANNER_REQUIRE_BROWSER": "1"}, "fail")])
def test_missing_browser_fails_when_required(monkeypatch, env, outcome):
    """A developer's plain ``pytest`` may skip the browser tests; CI and ``make test`` may not."""
    for var in REQUIRE_BROWSER_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(BaseException, match="Chromium is not installed") as exc:  # noqa: B017 (Skipped is a BaseException)
        _unavailable("Chromium is not installed")
    assert exc.type is {"skip": pytest.skip.Exception, "fail": pytest.fail.Exception}[outcome]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install playwright")
    exe = os.environ.get("PLANNER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        _unavailable("Chromium is not installed: run `make test` (installs it) or, as root, "
                     "apt-get install --no-install-recommends chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu",
                                                         "--host-resolver-rules=MAP * ~NOTFOUND"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> dict:
    """Export the Optics Valley case, one institution renamed to markup, on every basemap (offline)."""
    tmp = tmp_path_factory.mktemp("browser")
    inst = pd.read_csv(DATA / "guanggu_institutions.csv", dtype=str)
    inst.loc[0, "name"] = EVIL + inst.loc[0, "name"]
    inst.to_csv(tmp / "inst.csv", index=False)
    run = run_coverage(datasets.get_path("guanggu_osm"), tmp / "inst.csv", datasets.get_path("wuhan_population"),
                       boundaries=datasets.get_path("wuhan_districts"), with_isochrones=True,
                       population_label="persons aged 20+ (WorldPop)")
    write_coverage_outputs(run, tmp / "none", title="光谷 Optics Valley", basemap="none", offline=True)
    paths = {"none": tmp / "none" / "map.html"}
    saved = os.environ.get(maps.TIANDITU_KEY_ENV)
    os.environ[maps.TIANDITU_KEY_ENV] = FAKE_TIANDITU_KEY
    try:
        for bm in ("osm", "amap", "tianditu"):
            paths[bm] = tmp / f"{bm}.html"
            maps.save_map(maps.render_coverage_map(run, title="光谷 Optics Valley", basemap=bm, offline=True), paths[bm])
    finally:
        if saved is None:
            del os.environ[maps.TIANDITU_KEY_ENV]
        else:
            os.environ[maps.TIANDITU_KEY_ENV] = saved
    truth = pd.read_csv(DATA / "guanggu_institutions.csv").iloc[int(KNOWN_ID) - 1]
    return {"run": run, "paths": paths, "lonlat": (float(truth["lon"]), float(truth["lat"]))}


def _blank_tile() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (256, 256), (236, 236, 232)).save(buf, "PNG")
    return buf.getvalue()


class Page:
    """A map opened in Chromium, with its requests and errors recorded.

    With ``tiles=False`` the basemap's tile requests are aborted too (a PC with no network at all): they are
    recorded in ``tiles`` and Chromium's "Failed to load resource" line for each in ``tile_errors``; any
    other console error goes to ``errors``.
    """

    def __init__(self, browser, path: Path, basemap: str, *, tiles: bool = True) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.tiles: list[str] = []
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.tile_errors: list[str] = []
        tile = _blank_tile()

        def is_tile(url: str) -> bool:
            host = urlparse(url).hostname or ""
            return any(host.endswith(h) for h in TILE_HOSTS[basemap])

        def route(r):
            url = r.request.url
            if url.startswith(("file:", "data:", "about:")):
                r.continue_()
            elif is_tile(url):
                self.tiles.append(url)
                if tiles:
                    r.fulfill(status=200, content_type="image/png", body=tile)
                else:
                    r.abort("internetdisconnected")
            else:
                self.blocked.append(url)
                r.abort()

        def console(msg) -> None:
            if msg.type != "error":
                return
            url = (msg.location or {}).get("url", "")
            if not tiles and msg.text.startswith("Failed to load resource") and is_tile(url):
                self.tile_errors.append(url)
            else:
                self.errors.append(msg.text)

        self.context.route("**/*", route)
        self.page.on("console", console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.goto(path.as_uri())
        self.page.wait_for_function("window.plannerMap !== undefined")
        self.page.wait_for_timeout(300)  # let the tiles and tooltips settle

    def js(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def pages(browser, case):
    opened = {bm: Page(browser, path, bm) for bm, path in case["paths"].items()}
    yield opened
    for p in opened.values():
        p.close()


EXPECTED_LAYERS = [
    "出行时间 Travel time (walk)", "区县 Districts", "等时圈 Isochrones 15 min", "等时圈 Isochrones 10 min",
    "等时圈 Isochrones 5 min", "三级医院 tertiary (1)", "二级医院 secondary (1)", "基层医疗卫生机构 primary (1)",
    "社区卫生服务站/村卫生室/诊所 station (1)",
]


@pytest.mark.parametrize("basemap", ["none", "osm", "amap", "tianditu"])
def test_offline_map_renders(pages, case, basemap):
    p = pages[basemap]
    assert p.errors == [], p.errors
    assert p.blocked == [], f"the offline map requested {p.blocked}"
    if basemap == "none":
        assert p.tiles == []
    else:
        assert p.tiles, "the basemap requested no tiles"
    page = p.page
    assert page.locator("#planner-legend").is_visible()
    legend = page.locator("#planner-legend").inner_text()
    for fragment in ("出行时间 Travel time", "机构 Institutions", "OpenStreetMap", "WorldPop", "15-minute coverage"):
        assert fragment in legend, fragment
    # the tiles loaded, so the "tiles need a network" note is hidden (and absent without a basemap)
    assert page.locator("#planner-tiles-note").count() == (0 if basemap == "none" else 1)
    assert not page.locator("#planner-tiles-note").is_visible()
    if basemap in ("amap", "tianditu"):
        assert "审图号" in legend and "审图号" in page.locator(".leaflet-control-attribution").inner_text()
    labels = [t.strip() for t in page.locator(".leaflet-control-layers-overlays label").all_inner_texts()]
    assert labels == EXPECTED_LAYERS
    assert page.locator(".leaflet-control-scale-line").is_visible()
    assert page.locator(".planner-fullscreen a").is_visible()
    assert page.locator("path.planner-cells").count() >= 3  # 0-5, 5-10, 10-15 min bands at least
    assert page.locator("path.planner-districts").count() == 2
    assert page.locator("path.planner-isochrones").count() == 1  # only the 15-min layer is on at start
    assert page.locator("path.planner-institution").count() == len(case["run"].institutions)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"guanggu_{basemap}_offline.png"))


_MEASURE = """([id, lat, lon, zoom]) => {
  // centre the map on the expected position and compare the marker's rendered SVG circle with it
  const map = window.plannerMap;
  map.setView([lat, lon], zoom, {animate: false});
  let marker = null;
  map.eachLayer(l => { if (l instanceof L.CircleMarker && l.feature && l.feature.id === id) marker = l; });
  const box = marker._path.getBoundingClientRect();
  const frame = map.getContainer().getBoundingClientRect();
  const drawn = L.point(box.left + box.width / 2 - frame.left, box.top + box.height / 2 - frame.top);
  const expected = map.latLngToContainerPoint([lat, lon]);  // Leaflet rounds this to whole pixels
  const exact = map.project([lat, lon]).subtract(map.getPixelOrigin()).add(map._getMapPanePos());
  const c = map.getSize().divideBy(2);
  const metresPerPixel = map.distance(map.containerPointToLatLng(c), map.containerPointToLatLng(c.add([1, 0])));
  const px = drawn.distanceTo(expected);
  return {px: px, m: px * metresPerPixel, exact_m: drawn.distanceTo(exact) * metresPerPixel,
          metres_per_px: metresPerPixel, zoom: map.getZoom()};
}"""


def test_marker_alignment_on_amap(pages, case):
    """A known institution's marker lies where its GCJ-02 position falls on the Amap projection.

    The expected screen position is Leaflet's ``latLngToContainerPoint`` of the
    institution's input WGS-84 coordinate moved to GCJ-02 here (independently of
    planner.maps); the pixel error is converted to metres at each zoom. Leaflet
    rounds ``latLngToContainerPoint`` to whole pixels, so up to 0.7 px of that
    error is rounding (1.5 m at zoom 16); ``exact_m`` compares with the unrounded
    projection instead (Leaflet draws markers on whole pixels, so it resolves to
    one screen pixel: 0.5 m at zoom 18).
    """
    lon, lat = case["lonlat"]  # WGS-84, from the input file
    g_lon, g_lat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    results = {}
    for zoom in (16, 17, 18):
        r = pages["amap"].js(_MEASURE, [KNOWN_ID, g_lat, g_lon, zoom])
        assert r["zoom"] == zoom
        assert r["m"] < 5.0 and r["exact_m"] < 1.0, r
        results[f"zoom {zoom}"] = {k: round(v, 3) for k, v in r.items()}
    # the same marker drawn without the shift (the osm map) is far off, so this test can fail
    unshifted = pages["osm"].js(_MEASURE, [KNOWN_ID, g_lat, g_lon, 15])
    assert unshifted["m"] > 100.0, unshifted
    results["unshifted, zoom 15"] = {k: round(v, 3) for k, v in unshifted.items()}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "amap_alignment.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


def test_every_overlay_shifted_on_amap(pages):
    """Every vertex drawn on Amap is the WGS-84 vertex moved to GCJ-02: cells, districts, isochrones, markers."""
    script = """() => {
      const out = {};
      window.plannerMap.eachLayer(l => {
        if (!l.feature) return;
        let v = l.getLatLng ? l.getLatLng() : l.getLatLngs();
        while (Array.isArray(v)) v = v[0];  // first vertex of a polygon
        out[l.options.className + " " + l.feature.id] = [v.lat, v.lng];
      });
      return out;
    }"""
    plain, shifted = pages["none"].js(script), pages["amap"].js(script)
    assert set(plain) == set(shifted)
    assert {k.split()[0] for k in plain} == {"planner-cells", "planner-districts", "planner-isochrones", "planner-institution"}
    for key, (lat, lon) in plain.items():
        g_lon, g_lat = (float(v) for v in wgs84_to_gcj02(lon, lat))
        assert shifted[key] == pytest.approx([g_lat, g_lon], abs=2e-5), key  # within ~2 m (both rounded to 1e-5 deg)


def test_names_render_as_text(pages):
    """A name full of markup and script shows as text in the tooltip, and nothing runs."""
    page = pages["none"].page
    centre = page.evaluate("""() => {
      const map = window.plannerMap;
      let marker = null;
      map.eachLayer(l => { if (l.feature && l.feature.id === "1" && l.getLatLng) marker = l; });
      const box = marker._path.getBoundingClientRect();
      return [box.left + box.width / 2, box.top + box.height / 2];
    }""")
    page.mouse.move(*centre)  # hover as a person would
    tooltip = page.locator(".leaflet-tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.inner_text()
    assert '<img src=x onerror="window.__pwned=1">' in text and "<script>window.__pwned=2</script>" in text
    assert "${window.__pwned=3}" in text and "\\u" in text and "关东街社区卫生服务中心" in text
    assert "距道路 Distance to road" in text and " m" in text  # tooltips carry units
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".leaflet-tooltip img, .leaflet-tooltip script").count() == 0
    assert pages["none"].errors == [] and pages["none"].blocked == []


def test_fullscreen_button(pages):
    """The home-made full-screen control (no plugin needed) puts the map, legend included, full screen."""
    page = pages["tianditu"].page
    page.click(".planner-fullscreen a")
    page.wait_for_function("document.fullscreenElement === window.plannerMap.getContainer()", timeout=5000)
    assert page.locator("#planner-legend").is_visible()
    page.click(".planner-fullscreen a")
    page.wait_for_function("document.fullscreenElement === null", timeout=5000)
    assert pages["tianditu"].errors == []


@pytest.fixture(scope="module")
def other_maps(tmp_path_factory) -> dict:
    """The siting and grid maps of small real cases, exported offline on the Amap basemap."""
    import geopandas as gpd

    from planner.exports import write_grid_outputs, write_siting_outputs
    from planner.pipeline import run_grids, run_siting

    tmp = tmp_path_factory.mktemp("other-maps")
    label = "persons aged 20+ (WorldPop)"
    site = run_siting(datasets.get_path("guanggu_osm"), DATA / "guanggu_institutions.csv", datasets.get_path("wuhan_population"),
                      n_sites=3, max_minutes=10, cell_size_m=300, population_label=label)
    districts = gpd.read_file(datasets.get_path("wuhan_districts"))
    districts[districts["name"].isin(["江汉区", "硚口区"])].to_file(tmp / "two.gpkg")
    grid = run_grids(datasets.get_path("wuhan_roads"), datasets.get_path("wuhan_institutions"),
                     datasets.get_path("wuhan_population"), boundaries=tmp / "two.gpkg", time_limit_s=10, population_label=label)
    write_siting_outputs(site, tmp / "site", basemap="amap", offline=True)
    write_grid_outputs(grid, tmp / "grid", basemap="amap", offline=True)
    return {
        "siting": (tmp / "site" / "map.html", "path.planner-cells",
                   len(site.existing) + len(site.sites)),
        "grid": (tmp / "grid" / "map.html", "path.planner-grids",
                 len(grid.leads) + len(grid.members)),
    }


@pytest.mark.parametrize("kind", ["siting", "grid"])
def test_siting_and_grid_maps_render(browser, other_maps, kind):
    """Every other kind of map also opens offline with no error, its overlays, markers and legend drawn."""
    path, overlay, n_markers = other_maps[kind]
    p = Page(browser, path, "amap")
    try:
        assert p.errors == [] and p.blocked == [], (p.errors, p.blocked)
        page = p.page
        legend = page.locator("#planner-legend").inner_text()
        assert "OpenStreetMap" in legend and "WorldPop" in legend and "审图号" in legend
        assert page.locator(overlay).count() >= 1
        # existing institutions are circles; proposed sites may be their own ranked markers (div.planner-proposed-site)
        assert page.locator("path.planner-institution").count() + page.locator("div.planner-proposed-site").count() \
            == n_markers
        assert page.locator(".leaflet-control-scale-line").is_visible()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{kind}_amap_offline.png"))
    finally:
        p.close()


# --------------------------------------------------------------------------- the maps `make run` writes, by default


def _make_run_args() -> list[str]:
    """The `planner coverage` arguments of `make run`'s walk line, read from the Makefile (WUHAN_ARGS, --mode walk)."""
    import re
    import shlex

    root = Path(__file__).parents[1]
    text = (root / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    variables = dict(re.findall(r"^(\w+)\s*:=\s*(.*)$", text, flags=re.MULTILINE))
    args = shlex.split(variables["WUHAN_ARGS"].replace("$(WUHAN)", variables["WUHAN"]))
    return [str(root / a) if a.startswith(variables["WUHAN"]) else a for a in args] + ["--mode", "walk"]


def _cli_map(out: Path, args: list[str]) -> Path:
    from typer.testing import CliRunner

    from planner.cli import app

    result = CliRunner().invoke(app, ["coverage", *args, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out / "map.html"


@pytest.fixture(scope="module")
def default_maps(tmp_path_factory) -> dict:
    """Maps written with the CLI's defaults (no --offline, no --basemap): `make run`'s walk case and Optics Valley."""
    tmp = tmp_path_factory.mktemp("default-maps")
    guanggu = ["--network", str(datasets.get_path("guanggu_osm")), "--institutions", str(DATA / "guanggu_institutions.csv"),
               "--population", str(datasets.get_path("wuhan_population"))]
    return {"wuhan": _cli_map(tmp / "wuhan", _make_run_args()), "guanggu": _cli_map(tmp / "guanggu", guanggu)}


def _network_assets(path: Path) -> list[str]:
    """The scripts and stylesheets a page would load from the network: <script src=http…>, <link href=http…>."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Assets(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            url = a.get("src") if tag == "script" else a.get("href") if tag == "link" else None
            if url and not url.startswith(("data:", "#")):
                found.append(url)

    Assets().feed(path.read_text(encoding="utf-8"))
    return found


def test_default_maps_load_nothing_from_the_network(default_maps):
    """`make run`'s map (and another case's) reference no script or stylesheet on the network: Leaflet is inlined."""
    for name, path in default_maps.items():
        assert _network_assets(path) == [], name
        html = path.read_text(encoding="utf-8")
        assert "Leaflet 1.9.4" in html and "cdn.jsdelivr.net" not in html, name
        assert "is.autonavi.com" in html, name  # auto basemap: both study areas are in China, so Amap (GCJ-02)
        assert "GS(20" not in html and "20xx" not in html, name  # no placeholder 审图号


@pytest.mark.parametrize("name", ["wuhan", "guanggu"])
def test_default_maps_open_with_no_network(browser, default_maps, name):
    """With every request aborted, tiles included, the map shows its overlays, legend and the tiles-need-network note."""
    p = Page(browser, default_maps[name], "amap", tiles=False)
    try:
        page = p.page
        page.locator("#planner-tiles-note").wait_for(state="visible", timeout=12000)  # a tile error, or 8 s
        assert p.errors == [], p.errors
        assert p.blocked == [], p.blocked  # nothing but tiles was even requested
        assert p.tiles and len(p.tile_errors) > 0  # the tiles were asked for and failed
        note = page.locator("#planner-tiles-note").inner_text()
        assert "底图瓦片需要联网" in note and "Basemap tiles need a network connection" in note
        assert page.locator("#planner-legend").is_visible()
        legend = page.locator("#planner-legend").inner_text()
        assert "出行时间 Travel time" in legend and "OpenStreetMap" in legend and "WorldPop" in legend
        assert page.locator("path.planner-cells").count() >= 3
        assert page.locator("path.planner-institution").count() > 0
        assert page.locator(".leaflet-control-layers-overlays label").count() > 0
        if name == "wuhan":
            assert page.locator("path.planner-districts").count() > 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}_default_no_network.png"))
    finally:
        p.close()
