"""Readable maps: grid colours, lead labels, ranked proposed sites, legends, counts, PNG legend, captions.

Grid colours are checked on the adjacency, every symbol drawn must have a legend entry, every map states
the tables' institution counts, the PNG legend is bilingual and side-by-side captions stay clear of the
controls.

Real runs: the README's Wuhan grid run (one grid per tertiary hospital by car; the heuristic, so the test
does not wait for the MIP), Wuhan coverage/compare/siting, and the Optics Valley extract
(``geodata/osm/wuhan_guanggu_east_lake_hitech.osm`` with ``tests/data/guanggu_institutions.csv``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import networkx as nx
import pytest
import shapely

from planner import datasets, maps, settings
from planner.maps.static import _legend_items
from planner.pipeline import run_coverage, run_grids, run_siting
from planner.scenarios import compare_runs, load_scenario, run_scenario

from .test_browser import browser  # noqa: F401 (the module-scoped Chromium fixture, launched as there)

ROOT = Path(__file__).parents[1]
DATA = Path(__file__).parent / "data"
LABEL = "persons aged 20+ (WorldPop)"
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]{2,}")


def _layer_data(html: str, id_prefix: str) -> tuple[dict, dict[str, str]]:
    """The GeoJSON of the layer whose feature ids start with `id_prefix`, and each feature's fill colour.

    Folium writes a layer's styles as a ``switch(feature.id)`` in a ``_styler`` function and its data in
    an ``_add({...})`` call; both are read back from the saved page.
    """
    for name in re.findall(r"function (geo_json_\w+)_styler\(feature\)", html):
        styler = html[html.index(f"function {name}_styler"):html.index(f"function {name}_onEachFeature")]
        if f'case "{id_prefix}' not in styler:
            continue
        colours = {}
        for cases, style in re.findall(r"((?:case \"[^\"]+\": )+)\s*return (\{[^}]*\});", styler):
            for fid in re.findall(r"case \"([^\"]+)\"", cases):
                colours[fid] = json.loads(style)["fillColor"]
        default = re.search(r"default:\s*return (\{[^}]*\});", styler)
        start = html.index(f"{name}_add(", html.index(f"function {name}_add")+1) + len(f"{name}_add(")
        data, _end = json.JSONDecoder().raw_decode(html[start:])
        for f in data["features"]:
            colours.setdefault(f["id"], json.loads(default.group(1))["fillColor"] if default else None)
        return data, colours
    raise AssertionError(f"no layer with feature ids {id_prefix}*")


def _drawn_adjacency(data: dict) -> nx.Graph:
    """Neighbouring grids as drawn in the page: polygons that share an edge or a corner (queen)."""
    ids = [f["id"] for f in data["features"]]
    geoms = [shapely.geometry.shape(f["geometry"]) for f in data["features"]]
    metric = gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs("EPSG:32650").to_numpy()
    a, b = shapely.STRtree(metric).query(metric, predicate="intersects")
    G = nx.Graph()
    G.add_nodes_from(ids)
    G.add_edges_from((ids[i], ids[j]) for i, j in zip(a, b, strict=True) if i < j)
    return G


@pytest.fixture(scope="module")
def wuhan_grid(tmp_path_factory):
    """The README's `planner grid` example: one grid per tertiary hospital by car (heuristic solve)."""
    run = run_grids(datasets.get_path("wuhan_roads"), datasets.get_path("wuhan_institutions"),
                    datasets.get_path("wuhan_population"), boundaries=datasets.get_path("wuhan_districts"),
                    method="heuristic", population_label=LABEL)
    path = tmp_path_factory.mktemp("wuhan-grid") / "map.html"
    maps.save_map(maps.render_grid_map(run, basemap="amap"), path)
    return run, path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def guanggu_grid(tmp_path_factory):
    """Another extract: Optics Valley, every one of its four institutions a lead, 300 m cells."""
    run = run_grids(datasets.get_path("guanggu_osm"), DATA / "guanggu_institutions.csv", datasets.get_path("wuhan_population"),
                    lead_tiers=settings.TIERS, cell_size_m=300, method="heuristic", population_label=LABEL)
    path = tmp_path_factory.mktemp("guanggu-grid") / "map.html"
    maps.save_map(maps.render_grid_map(run, basemap="none"), path)
    return run, path.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", ["wuhan_grid", "guanggu_grid"])
def test_neighbouring_grids_differ_in_colour(request, case):
    """In the written map.html, every pair of grids drawn touching (edge or corner) has two different colours."""
    run, html = request.getfixturevalue(case)
    data, colours = _layer_data(html, "grid-")
    assert len(data["features"]) == len(run.grids)
    G = _drawn_adjacency(data)
    assert G.number_of_edges() >= {"wuhan_grid": 100, "guanggu_grid": 2}[case]  # Wuhan: 107 neighbouring pairs
    same = [(a, b) for a, b in G.edges if colours[a] == colours[b]]
    assert same == []
    # the palette is used in full, each colour about equally often (the old greedy colouring drew 32 grids in 5 colours)
    used = list(colours.values())
    n_colours = min(len(run.grids), len(maps.GRID_PALETTE))
    assert len(set(used)) >= n_colours
    counts = [used.count(c) for c in set(used)]
    assert max(counts) - min(counts) <= 1
    # the function's own adjacency (unsimplified, 12 m tolerance) holds every pair drawn touching; in Wuhan also two
    # pairs meeting at a single corner that the ~5 m simplification of the page draws a few metres apart
    own = {frozenset((f"grid-{a}", f"grid-{b}")) for a, b in maps.grid_adjacency(run.grids).edges}
    assert {frozenset(e) for e in G.edges} <= own and len(own) - G.number_of_edges() <= 2


def test_grid_colours_hand_case():
    """A 3 x 3 board of 100 m grids: the centre touches all eight (edges and corners), so 9 colours, all apart."""
    boxes = [shapely.box(100 * x, 100 * y, 100 * x + 100, 100 * y + 100) for x in range(3) for y in range(3)]
    g = gpd.GeoDataFrame(geometry=boxes, crs="EPSG:32650")
    G = maps.grid_adjacency(g)
    assert G.degree[4] == 8 and G.number_of_edges() == 20  # queen on a 3 x 3 board: 12 edge + 8 corner pairs
    c = maps.grid_colours(g)
    assert all(c[a] != c[b] for a, b in G.edges) and len(set(c.values())) == 9
    tiny = maps.grid_colours(g, palette=("#111111", "#222222"))  # too small a palette: colours are added, never reused
    assert all(tiny[a] != tiny[b] for a, b in G.edges)


@pytest.mark.parametrize("case", ["wuhan_grid", "guanggu_grid"])
def test_grids_labelled_with_their_lead(request, case):
    """Each grid carries its lead's name (escaped) on a permanent label placed inside the grid."""
    run, html = request.getfixturevalue(case)
    icons = [json.loads(h) for h in re.findall(
        r'"html": ("(?:[^"\\]|\\.)*"),\s*"iconSize": \[0, 0\],\s*"className": "planner-grid-label"', html)]
    assert len(icons) == len(run.grids)
    icons = [re.fullmatch(r"<div>(.*)</div>", h).group(1) for h in icons]
    assert sorted(icons) == sorted(maps.esc(n) for n in run.grids["name"])
    points = maps.label_points(run.grids)
    assert all(shapely.contains(g, p) for g, p in zip(run.grids.geometry, points, strict=True))
    assert "牵头医院名称 Lead names" in _unescape(html)  # the labels are a layer of their own
    assert "个网格 grids (启发式 heuristic, ±20%)" in _unescape(html)  # the solve in words, not HiGHS's status name


@pytest.fixture(scope="module")
def wuhan_runs(tmp_path_factory):
    """Wuhan baseline and what-if (three new centres) coverage, their comparison, and a 10-site siting run."""
    a = run_scenario(load_scenario(ROOT / "scenarios" / "wuhan_baseline.toml"))
    b = run_scenario(load_scenario(ROOT / "scenarios" / "wuhan_new_centres.toml"))
    comparison, cells = compare_runs(a, b)
    site = run_siting(datasets.get_path("wuhan_roads"), datasets.get_path("wuhan_institutions"),
                      datasets.get_path("wuhan_population"), boundaries=datasets.get_path("wuhan_districts"),
                      n_sites=10, max_minutes=15, population_label=LABEL)
    tmp = tmp_path_factory.mktemp("wuhan-maps")
    pages = {"coverage": maps.render_coverage_map(a), "compare": maps.render_compare_map(a, b, cells, comparison),
             "site": maps.render_siting_map(site)}
    html = {}
    for kind, m in pages.items():
        maps.save_map(m, tmp / f"{kind}.html")
        html[kind] = (tmp / f"{kind}.html").read_text(encoding="utf-8")
    return {"a": a, "b": b, "comparison": comparison, "site": site, "html": html}


def _legend_text(html: str) -> str:
    start = html.index('<div id="planner-legend"')
    return html[start:html.index("</script>", start) if "</script>" in html[start:] else None]


def _legend_tier_counts(html: str) -> dict[str, int]:
    legend = _legend_text(html)
    return {t: int(n) for t, n in re.findall(r" (tertiary|secondary|primary|station): (\d+) 所", legend)}


def test_counts_agree_across_maps_and_tables(wuhan_runs):
    """Coverage, compare and site maps of Wuhan state the tables' count (summary by_tier), e.g. 51 tertiary."""
    by_tier = {t: v["institutions"] for t, v in wuhan_runs["a"].summary["by_tier"].items()}
    assert by_tier["tertiary"] == 51  # of which 32 on the walk network; the compare and site maps used to say 32
    html = wuhan_runs["html"]
    assert _legend_tier_counts(html["coverage"]) == by_tier
    assert _legend_tier_counts(html["site"]) == by_tier  # all four tiers provide the service by default
    b_tier = {t: v["institutions"] for t, v in wuhan_runs["b"].summary["by_tier"].items()}
    assert b_tier["primary"] == by_tier["primary"] + 3  # the what-if adds three centres
    assert _legend_tier_counts(html["compare"]) == b_tier
    # the layer names count their markers: the same numbers (the added ones in their own layer)
    assert "三级医院 tertiary (51)" in _unescape(html["coverage"])
    assert "现有 existing: 三级医院 tertiary (51)" in _unescape(html["site"])
    assert "B 三级医院 tertiary (51)" in _unescape(html["compare"])
    assert "新增 added: 基层医疗卫生机构 primary (3)" in _unescape(html["compare"])
    # and the legend says what is counted, and what the faded ones are
    for h in html.values():
        legend = _legend_text(h)
        assert "all institutions read" in legend and "faded" in legend and "outside the study area" in legend


def _unescape(html: str) -> str:
    return re.sub(r"\\u([0-9a-f]{4})", lambda m: chr(int(m.group(1), 16)), html)


def test_png_tier_counts_and_bilingual_legend(wuhan_runs):
    """The PNG legend is bilingual (Chinese and English on every line) and counts tiers as the tables do."""
    run = wuhan_runs["a"]
    items = _legend_items(run)
    labels = [label for _kind, _colour, label in items]
    assert labels[:3] == ["≤ 5 分钟 min", "5–10 分钟 min", "10–15 分钟 min"]
    for label in labels:
        assert _CJK.search(label) and _LATIN.search(label), label
    assert "三级医院 tertiary: 32 (另 19 所不在路网 19 more off the network)" in labels
    assert "区县界 district boundary" in labels and "缺口 gap (> 15 分钟 min)" in labels


def test_proposed_sites_have_their_own_ranked_symbol(wuhan_runs):
    """Proposed sites are numbered squares 1…K in the marginal curve's order with the persons each adds."""
    run, html = wuhan_runs["site"], _unescape(wuhan_runs["html"]["site"])
    sites = run.sites.sort_values("rank")
    ranks = [int(r) for r in re.findall(r"<div class='rank'>(\d+)</div>", html)]
    gains = re.findall(r"<div class='gain'>([^<]*)</div>", html)
    assert ranks == list(range(1, len(sites) + 1)) == [int(r) for r in sites["rank"]]
    assert gains == [f"+{p:,.0f}" for p in sites["added_population"]]
    # rank k is the site the marginal curve adds at k sites
    prev: set = set()
    for k, (_n, row) in enumerate(run.curve.iterrows(), start=1):
        added = set(row["sites"]) - prev
        prev = set(row["sites"])
        assert added == {sites.index[k - 1]}, k
    assert sum(sites["added_population"]) == pytest.approx(
        run.summary["population_covered_after"] - run.summary["population_covered_before"], abs=1)
    # not drawn as the existing institutions' circles, and explained in the legend
    assert "拟建 proposed:" not in html
    assert "data-explains='planner-proposed-site'" in html and "拟建分支机构 Proposed sites" in html


@pytest.fixture(scope="module")
def guanggu_pages(tmp_path_factory):
    """Optics Valley: coverage, siting and referral maps."""
    from planner.pipeline import run_referral

    tmp = tmp_path_factory.mktemp("guanggu-pages")
    inst = DATA / "guanggu_institutions.csv"
    cov = run_coverage(datasets.get_path("guanggu_osm"), inst, datasets.get_path("wuhan_population"),
                       boundaries=datasets.get_path("wuhan_districts"), population_label=LABEL)
    site = run_siting(datasets.get_path("guanggu_osm"), inst, datasets.get_path("wuhan_population"), n_sites=3,
                      max_minutes=10, cell_size_m=300, population_label=LABEL)
    ref = run_referral(datasets.get_path("guanggu_osm"), inst, datasets.get_path("wuhan_population"),
                       from_tiers=("primary", "station"), max_minutes=10, population_label=LABEL)
    out = {}
    for kind, m in {"coverage": maps.render_coverage_map(cov), "site": maps.render_siting_map(site),
                    "referral": maps.render_referral_map(ref)}.items():
        maps.save_map(m, tmp / f"{kind}.html")
        out[kind] = tmp / f"{kind}.html"
    return {"coverage": cov, "site": site, "paths": out}


def test_every_symbol_drawn_has_a_legend_entry(wuhan_runs, wuhan_grid, guanggu_grid, guanggu_pages):
    """For each map kind, every planner-* symbol class in the page is explained by a legend entry."""
    pages = {f"wuhan {k}": h for k, h in wuhan_runs["html"].items()}
    pages["wuhan grid"] = wuhan_grid[1]
    pages["guanggu grid"] = guanggu_grid[1]
    pages.update({f"guanggu {k}": p.read_text(encoding="utf-8") for k, p in guanggu_pages["paths"].items()})
    expected = {  # symbols each page must draw (so the check cannot pass on an empty page)
        "wuhan coverage": {"planner-cells", "planner-faded", "planner-isochrones", "planner-districts"},
        "wuhan compare": {"planner-cells", "planner-faded", "planner-districts"},
        "wuhan site": {"planner-proposed-site", "planner-faded", "planner-isochrones", "planner-cells"},
        "wuhan grid": {"planner-grids", "planner-grid-label", "planner-nearest-zones", "planner-cells"},
        "guanggu grid": {"planner-grids", "planner-grid-label"},
        "guanggu coverage": {"planner-cells", "planner-districts"},
        "guanggu site": {"planner-proposed-site"},
        "guanggu referral": {"planner-routes"},
    }
    for kind, html in pages.items():
        drawn, explained = maps.legend_classes(html)
        assert expected[kind] <= drawn, (kind, expected[kind] - drawn)
        assert drawn <= explained, (kind, drawn - explained)


def test_faded_explained_only_when_drawn(guanggu_pages):
    """All four Optics Valley institutions are on the network: nothing faded, so no faded entry."""
    html = guanggu_pages["paths"]["coverage"].read_text(encoding="utf-8")
    drawn, explained = maps.legend_classes(html)
    assert "planner-faded" not in drawn and "planner-faded" not in explained
    counts = maps.institution_counts(guanggu_pages["coverage"].institutions,
                                     by_tier=guanggu_pages["coverage"].summary["by_tier"])
    assert counts == {t: (1, 1) for t in settings.TIERS}


CONTROLS = (".leaflet-control-layers", ".leaflet-control-zoom", ".planner-fullscreen", "#planner-legend")


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


@pytest.mark.parametrize("width", [1280, 1024])
def test_side_by_side_captions_clear_of_the_controls(browser, guanggu_pages, tmp_path, width):  # noqa: F811
    """In Chromium, neither A/B caption's box meets any control of either map (layers, zoom, full screen, legend)."""
    import shutil

    for name in ("a", "b"):
        shutil.copy(guanggu_pages["paths"]["coverage"], tmp_path / f"map_{name}.html")
    page_file = tmp_path / "side_by_side.html"
    page_file.write_text(maps.side_by_side_html("map_a.html", "map_b.html", title="A | B",
                                                left_label="A 基线 baseline: wuhan-baseline (光谷 Optics Valley)",
                                                right_label="B 方案 what-if: wuhan-new-centres (光谷 Optics Valley)"),
                         encoding="utf-8")
    context = browser.new_context(viewport={"width": width, "height": 860})
    blocked = []
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "about:"))
                  else (blocked.append(r.request.url), r.abort()))
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        for frame in page.frames[1:]:
            frame.wait_for_function("window.plannerMap !== undefined")
        captions = [page.locator("body > div > div").nth(i).bounding_box() for i in range(2)]  # the two captions
        assert all(c and c["width"] > 50 and c["height"] > 10 for c in captions), captions
        controls = []
        for i in range(2):
            frame = page.frame_locator("iframe").nth(i)
            for sel in CONTROLS:
                box = frame.locator(sel).first.bounding_box()  # in the top page's coordinates
                assert box is not None, sel
                controls.append((i, sel, box))
        hits = [(c, i, sel) for c in captions for i, sel, box in controls if _overlap(c, box)]
        assert hits == []
        assert [u for u in blocked if "is.autonavi.com" not in u] == []  # nothing but the basemap tiles
    finally:
        context.close()
