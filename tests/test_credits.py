"""Credits from the data, not from a label: geodata/README.md for shipped files, OSM for OSM files, the user's own.

Real runs on the shipped data (central Wuhan, Optics Valley) check the ``credits`` of summary.json and
the map's legend; hand cases check the ``auto`` basemap inside and outside China.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from planner import credits, datasets, maps
from planner._errors import InvalidValueError
from planner.cli import app
from planner.datum import wgs84_to_gcj02
from planner.maps.basemaps import resolve_basemap, shift_for_basemap
from planner.pipeline import run_coverage
from planner.scenarios import load_scenario

DATA = Path(__file__).parent / "data"
OSM = {"inputs": ["network", "institutions", "boundaries"], "text": "© OpenStreetMap contributors",
       "licence": "ODbL 1.0", "url": "https://www.openstreetmap.org/copyright"}
WORLDPOP_TEXT = ("WorldPop (www.worldpop.org), School of Geography and Environmental Science, University of "
                 "Southampton; Tatem 2017, Scientific Data 4:170004")
GUANGGU = ["--network", str(datasets.get_path("guanggu_osm")), "--population", str(datasets.get_path("wuhan_population"))]


def test_every_shipped_file_has_a_credit():
    """Each file under geodata/ matches a row of the README's table: the raster is WorldPop's, the rest OSM's."""
    files = sorted(p for p in datasets.GEODATA.rglob("*") if p.is_file() and p.name != "README.md")
    listed = {name for rows in credits._shipped_sizes().values() for _, name in rows}  # the README's checksum table
    assert {p.relative_to(datasets.GEODATA).as_posix() for p in files} == listed and len(files) == 14
    for path in files:
        credit = credits.credit_for_file(path)
        assert credit is not None, path
        want = ("CC BY 4.0", WORLDPOP_TEXT) if path.suffix == ".tif" else ("ODbL 1.0", "© OpenStreetMap contributors")
        assert (credit["licence"], credit["text"]) == want, path
    assert [c["licence"] for _, c in credits.shipped_credits()] == ["ODbL 1.0", "CC BY 4.0"]


def test_wuhan_case_credits():
    """The default case's summary credits OSM for network, institutions and boundaries and WorldPop for the raster."""
    run = run_coverage(datasets.get_path("wuhan_roads"), datasets.get_path("wuhan_institutions"),
                       datasets.get_path("wuhan_population"), boundaries=datasets.get_path("wuhan_districts"),
                       cell_size_m=2000, with_isochrones=False, population_label="20岁及以上常住人口")
    assert run.summary["credits"] == [
        OSM, {"inputs": ["population"], "text": WORLDPOP_TEXT, "licence": "CC BY 4.0", "url": "https://www.worldpop.org"}]
    assert credits.credit_lines(run.summary["credits"]) == [
        "路网 network, 机构 institutions, 行政区 boundaries: © OpenStreetMap contributors (ODbL 1.0)",
        f"人口 population: {WORLDPOP_TEXT} (CC BY 4.0)"]
    # a Chinese population label no longer removes the WorldPop credit from the map
    html = maps.render_coverage_map(run, basemap="none").get_root().render()
    assert "人口 population: WorldPop (www.worldpop.org)" in html and "20岁及以上常住人口" in html


def test_osm_extracts_and_copies(tmp_path):
    """An OSM extract is OSM's wherever it lies; a byte copy of the shipped raster is still WorldPop's."""
    bupt = datasets.get_path("haidian_bupt_osm")
    shutil.copy(bupt, tmp_path / "roads.osm.xml")
    shutil.copy(datasets.get_path("wuhan_population"), tmp_path / "people.tif")
    (tmp_path / "other.tif").write_bytes(b"not the raster")
    got = credits.case_credits({"network": bupt, "institutions": tmp_path / "roads.osm.xml",
                                "population": tmp_path / "people.tif"})
    assert [(c["inputs"], c["licence"]) for c in got] == [(["network", "institutions"], "ODbL 1.0"),
                                                           (["population"], "CC BY 4.0")]
    assert credits.credit_for_file(tmp_path / "other.tif") is None


def _coverage(tmp_path: Path, name: str, *extra: str) -> tuple[dict, str]:
    shutil.copy(DATA / "guanggu_institutions.csv", tmp_path / "my_clinics.csv")
    out = tmp_path / name
    result = CliRunner().invoke(app, ["coverage", *GUANGGU, "--institutions", str(tmp_path / "my_clinics.csv"),
                                      "--out", str(out), "--quiet", *extra])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text(encoding="utf-8")), (out / "map.html").read_text(encoding="utf-8")


def test_users_data_without_and_with_a_credit(tmp_path):
    """A user's CSV has no known source until --credit gives one; the map shows what the summary says."""
    summary, html = _coverage(tmp_path, "plain")
    missing = summary["credits"][-1]
    assert missing == {"inputs": ["institutions"], "licence": None, "url": None,
                       "text": '来源未注明 source not given — add --credit institutions="…" before publishing'}
    assert [c["inputs"] for c in summary["credits"]] == [["network"], ["population"], ["institutions"]]
    assert "机构 institutions: 来源未注明 source not given" in html

    summary, html = _coverage(tmp_path, "credited", "--credit", "institutions=武汉市卫健委 2024 health commission",
                              "--population-label", "20岁以上人口", "--basemap", "amap")
    assert {"inputs": ["institutions"], "text": "武汉市卫健委 2024 health commission", "licence": None,
            "url": None} in summary["credits"]
    assert not any("source not given" in c["text"] for c in summary["credits"])
    assert "机构 institutions: 武汉市卫健委 2024 health commission" in html
    assert "WorldPop (www.worldpop.org)" in html  # whatever the label says
    assert "20xx" not in html and "GS(20" not in html and "获取审图号" in html  # no placeholder approval number

    bad = CliRunner().invoke(app, ["coverage", *GUANGGU, "--institutions", str(tmp_path / "my_clinics.csv"),
                                   "--out", str(tmp_path / "bad"), "--credit", "people=census"])
    assert bad.exit_code == 2 and "--credit: unknown role 'people'; fix: use one of network" in bad.output
    assert not (tmp_path / "bad").exists()


def test_approval_number_overrides_the_notice():
    """``--approval-number`` (the user's own 审图号) replaces the sentence asking for one."""
    for name in ("amap", "tianditu"):
        bm = maps.get_basemap(name, tile_url="http://intranet/{z}/{x}/{y}.png", approval_number="GS(2024)0650")
        assert "审图号 GS(2024)0650" in bm.attribution and "获取审图号" not in bm.attribution
        plain = maps.get_basemap(name, tile_url="http://intranet/{z}/{x}/{y}.png").attribution
        assert plain.endswith(maps.basemaps.APPROVAL_NOTICE) and "20xx" not in plain


def test_scenario_and_batch_credits(tmp_path):
    """``credits = {role = "text"}`` in a scenario's [inputs] (added to its parent's) and in a batch case."""
    base = Path(__file__).parents[1] / "scenarios" / "wuhan_baseline.toml"
    (tmp_path / "a.toml").write_text(f'name = "a"\nextends = "{base.as_posix()}"\n[inputs]\n'
                                     'credits = {population = "统计局 census 2020", leads = "卫健委"}\n', encoding="utf-8")
    s = load_scenario(tmp_path / "a.toml")
    assert s.case.credits == (("population", "统计局 census 2020"), ("leads", "卫健委"))
    from planner.cli import _with_credits  # `planner run/compare --credit`: the options win over the file

    assert _with_credits(s, (("population", "普查 census"),)).case.credits == (("population", "普查 census"),
                                                                              ("leads", "卫健委"))
    (tmp_path / "b.toml").write_text('name = "b"\nextends = "a.toml"\n[inputs]\ncredits = {population = "普查"}\n',
                                     encoding="utf-8")
    assert load_scenario(tmp_path / "b.toml").case.credits == (("population", "普查"), ("leads", "卫健委"))
    (tmp_path / "c.toml").write_text(f'name = "c"\nextends = "{base.as_posix()}"\n\n[inputs]\ncredits = {{pop = "x"}}\n',
                                     encoding="utf-8")
    with pytest.raises(InvalidValueError, match=r"c\.toml.*line 5.*'inputs\.credits' unknown role 'pop'; fix: use one of"):
        load_scenario(tmp_path / "c.toml")

    from planner.batch import load_batch

    (tmp_path / "batch.toml").write_text(f'''[defaults]
network = "{datasets.get_path("guanggu_osm").as_posix()}"
institutions = "{(DATA / "guanggu_institutions.csv").as_posix()}"
population = "{datasets.get_path("wuhan_population").as_posix()}"
credits = {{institutions = "hand-made, CC0"}}

[[case]]
name = "walk"
''', encoding="utf-8")
    (case,) = load_batch(tmp_path / "batch.toml")
    assert case.credits == (("institutions", "hand-made, CC0"),) and case.basemap == "auto" and case.offline is True


def test_auto_basemap_inside_and_outside_china():
    """``auto`` is Amap (overlays moved to GCJ-02) for Wuhan's bounds and OSM (no shift) near London."""
    wuhan = datasets.get_path("wuhan_roads")
    import geopandas as gpd

    bounds = gpd.read_file(wuhan).total_bounds
    assert resolve_basemap("auto", bounds) == "amap"
    m = maps.new_map(bounds)
    assert m.planner_basemap.name == "amap" and m.planner_offline is True
    p = shapely.Point(114.3, 30.6)
    moved = shift_for_basemap([p], "auto")[0]
    g_lon, g_lat = (float(v) for v in wgs84_to_gcj02(114.3, 30.6))
    assert (moved.x, moved.y) == pytest.approx((g_lon, g_lat), abs=1e-5) and moved.x - 114.3 > 0.005

    london = (-0.20, 51.45, -0.05, 51.55)
    assert resolve_basemap("auto", london) == "osm"
    html = maps.new_map(london).get_root().render()
    assert "tile.openstreetmap.org" in html and "autonavi" not in html
    q = shift_for_basemap([shapely.Point(-0.1, 51.5)], "auto")[0]
    assert (q.x, q.y) == (-0.1, 51.5)
    assert maps.get_basemap("auto").name == "auto"  # validation only
    assert maps.get_basemap("auto", bounds=london).name == "osm"
    with pytest.raises(InvalidValueError, match="basemap 'auto' needs the study area's bounds"):
        resolve_basemap("auto", (np.nan, 0, 1, 1))


def test_a_study_area_moved_out_of_china_gets_osm(tmp_path):
    """The Optics Valley run drawn with its cells moved to Europe: auto picks OSM and draws them unshifted."""
    run = run_coverage(datasets.get_path("guanggu_osm"), DATA / "guanggu_institutions.csv",
                       datasets.get_path("wuhan_population"), with_isochrones=False)
    shifted = run.cells.copy()
    shifted.geometry = shifted.geometry.translate(-114.5, 21.0)  # about (0, 51.5)
    m = maps.new_map(shifted.total_bounds)
    assert m.planner_basemap.name == "osm"
    maps.add_travel_time_cells(m, shifted, minutes=[5, 10, 15], max_snap_m=500)
    html = m.get_root().render()
    assert "tile.openstreetmap.org" in html and "autonavi" not in html


def test_other_roles_of_site_and_grid_runs(tmp_path):
    """Leads, candidates and exclusion zones are credited like the case's own inputs; `osm:` zones are OSM's."""
    from planner.pipeline.case import summary_credits

    (tmp_path / "leads.csv").write_text("name,lon,lat\n甲医院,114.3,30.6\n", encoding="utf-8")
    got = summary_credits({"network": datasets.get_path("guanggu_osm"), "population": datasets.get_path("wuhan_population")},
                          (("candidates", "规划局 planning bureau"),), leads=tmp_path / "leads.csv",
                          candidates=tmp_path / "cand.csv", exclusion=["osm:water,park"], competitors=None)
    assert credits.credit_lines(got) == [
        "路网 network, 禁建区 exclusion zones: © OpenStreetMap contributors (ODbL 1.0)",
        f"人口 population: {WORLDPOP_TEXT} (CC BY 4.0)",
        "候选点 candidates: 规划局 planning bureau",
        '牵头医院 leads: 来源未注明 source not given — add --credit leads="…" before publishing']


def test_what_the_population_counts_comes_from_the_data(tmp_path):
    """The README's site example gives no --population-label: the shipped raster still says it counts adults 20+."""
    from planner.pipeline import Case

    wuhan = Case(datasets.get_path("wuhan_roads"), datasets.get_path("wuhan_institutions"),
                 datasets.get_path("wuhan_population"))
    assert wuhan.population_unit == "persons aged 20+ (WorldPop; ages 0-19 not included)"
    own = dataclasses.replace(wuhan, population_label="20岁及以上常住人口")
    assert own.population_unit == "20岁及以上常住人口"  # the user's label wins
    census = tmp_path / "census.csv"
    census.write_text("lon,lat,population\n114.3,30.6,100\n", encoding="utf-8")
    assert dataclasses.replace(wuhan, population=census).population_unit == "population"  # unknown data: no claim
