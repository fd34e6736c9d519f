"""Scenario files: validation, every edit's effect on coverage, determinism, caching and comparison."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from planner import InputFileError, InvalidValueError
from planner.exports import write_scenario_outputs
from planner.scenarios import CaseCache, compare_runs, load_scenario, run_scenario

REPO = Path(__file__).resolve().parent.parent
BASE = f"""
name = "gg-base"
title = "光谷 基线"
[inputs]
network = "{REPO}/geodata/osm/wuhan_guanggu_east_lake_hitech.osm"
institutions = "{REPO}/tests/data/guanggu_institutions.csv"
population = "{REPO}/geodata/wuhan/population_age20plus_100m.tif"
boundaries = "{REPO}/geodata/wuhan/districts.gpkg"
population_label = "persons aged 20+ (WorldPop)"
[analysis]
mode = "walk"
minutes = [5, 10, 15]
isochrones = false
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


CACHE = CaseCache()  # the loaded inputs, shared by this module's runs: each what-if reuses the baseline's


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scen")
    path = write(tmp, "base.toml", BASE)
    return tmp, path, run_scenario(path, out_root=None, cache=CACHE)


def whatif(tmp: Path, name: str, body: str):
    path = write(tmp, f"{name}.toml", f'extends = "base.toml"\nname = "{name}"\n{body}')
    return run_scenario(path, out_root=None, cache=CACHE)


# ------------------------------------------------------------------------------------------ validation


def test_shipped_scenarios_load():
    names = {load_scenario(p).name for p in (REPO / "scenarios").glob("*.toml")}
    assert {"wuhan-baseline", "wuhan-new-centres", "wuhan-elderly-walk"} <= names
    s = load_scenario(REPO / "scenarios" / "wuhan_new_centres.toml")
    assert len(s.edits.add_institutions) == 3 and s.inputs.network.endswith("roads.gpkg")
    with pytest.raises(dataclasses.FrozenInstanceError):  # frozen
        s.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(("body", "match"), [
    ('name = "a"\n[inputs]\nnetwork = "x.osm"\n', r"a\.toml, line 3: 'inputs\.network' file not found"),
    ('name = "a"\ncolour = "red"\n', r"line 2: 'colour' is not a known key; fix: use one of"),
    (BASE.replace('mode = "walk"', 'mode = "bus"').replace("gg-base", "a"), r"'analysis\.mode' 'bus' is not a mode"),
    (BASE.replace("minutes = [5, 10, 15]", 'minutes = "15"').replace("gg-base", "a"), r"'analysis\.minutes' must be a list"),
    (BASE.replace("isochrones = false", "isochrones = 1").replace("gg-base", "a"), r"'analysis\.isochrones' must be bool"),
    (BASE.replace("gg-base", "a") + '[edits]\nremove_institutions = "1"\n', r"must be a list of institution ids"),
    (BASE.replace("gg-base", "a") + '[[edits.add_institutions]]\nname = "x"\nlon = 114.5\n',
     r"'edits\.add_institutions\[1\]\.lat' is missing"),
    (BASE.replace("gg-base", "a") + '[[edits.change_tier]]\nid = "1"\ntier = "huge"\n',
     r"line \d+: 'edits\.change_tier\[1\]\.tier' 'huge' is not a tier"),
    (BASE.replace("gg-base", "a") + "[[edits.close_roads]]\n", r"closes nothing"),
    ('name = "a b/c"\n', r"is not usable as a folder name"),
    ('name = ".."\n', r"is not usable as a folder name"),
    ('name = "a"\nextends = "a.toml"\n', r"'extends' forms a loop"),
])
def test_invalid_scenarios(tmp_path, body, match):
    p = write(tmp_path, "a.toml", body)
    with pytest.raises(InvalidValueError, match=match):
        load_scenario(p)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(InputFileError, match="scenario file not found"):
        load_scenario(tmp_path / "nope.toml")
    with pytest.raises(InputFileError, match="not valid TOML"):
        load_scenario(write(tmp_path, "bad.toml", 'name = "a\n'))


def test_edits_naming_unknown_ids_or_places(base):
    tmp, _, _ = base
    with pytest.raises(InvalidValueError, match=r"line 4: 'edits\.remove_institutions' names unknown institution id 'way/9'"):
        whatif(tmp, "bad1", '[edits]\nremove_institutions = ["way/9"]\n')
    with pytest.raises(InvalidValueError, match=r"'edits\.close_roads\[1\]\.polygon' lies outside the study area"):
        whatif(tmp, "bad2", "[[edits.close_roads]]\npolygon = [[116.3, 39.9], [116.4, 39.9], [116.4, 40.0]]\n")
    with pytest.raises(InvalidValueError, match=r"names unknown road ids 123"):
        whatif(tmp, "bad3", "[[edits.close_roads]]\nids = [123]\n")


# ------------------------------------------------------------------------------------------ edits


def test_closing_the_only_institution_of_a_district_drops_its_coverage(base):
    tmp, _, b = base
    only = b.institutions.index[b.institutions["district"] == "洪山区"]
    assert list(only) == ["1"]
    r = whatif(tmp, "close1", '[edits]\nremove_institutions = ["1"]\n')
    cov = {d["district"]: d["coverage_pct"] for d in r.summary["by_district"]}
    cov0 = {d["district"]: d["coverage_pct"] for d in b.summary["by_district"]}
    assert cov["洪山区"] < cov0["洪山区"] - 5
    assert cov["江夏区"] == cov0["江夏区"]
    assert "1" not in r.institutions.index


def test_adding_an_institution_in_a_gap_raises_coverage(base):
    tmp, _, b = base
    gap = b.cells[(b.cells["travel_time_min"] > 15) & (b.cells["status"] == "reached")]
    top = gap.sort_values("population").iloc[-1].geometry.centroid
    r = whatif(tmp, "add1", f'[[edits.add_institutions]]\nname = "新社区卫生服务中心"\nlon = {top.x}\nlat = {top.y}\n')
    assert r.institutions.loc["new-1", "tier"] == "primary"  # from the name rules
    assert r.summary["coverage_pct"] > b.summary["coverage_pct"]
    comp, cells = compare_runs(b, r)
    assert comp["population_newly_lost"] == 0 and comp["population_newly_covered"] > 0
    assert comp["population_newly_covered"] - comp["population_newly_lost"] == pytest.approx(
        r.summary["population_covered"] - b.summary["population_covered"], abs=0.5)
    assert comp["institutions_added"] == [{"facility_id": "new-1", "name": "新社区卫生服务中心", "tier": "primary"}]
    assert set(cells["change"]) <= {"gained", "lost", "nearest_changed", "same"}
    assert cells.loc[cells["change"] == "gained", "population"].sum() == pytest.approx(comp["population_newly_covered"], abs=0.5)


def test_added_institution_in_gcj02_is_moved_to_wgs84(base):
    tmp, _, b = base
    from planner.datum import wgs84_to_gcj02

    glon, glat = (float(x) for x in wgs84_to_gcj02(114.5003, 30.4917))
    r = whatif(tmp, "gcj", f'[[edits.add_institutions]]\nname = "x诊所"\nlon = {glon}\nlat = {glat}\ncoords = "gcj02"\n')
    assert r.institutions.loc["new-1", "lon"] == pytest.approx(114.5003, abs=1e-8)
    assert r.institutions.loc["new-1", "tier"] == "station"


def test_changing_a_tier_moves_coverage_between_tiers(base):
    tmp, _, b = base
    r = whatif(tmp, "tier", '[[edits.change_tier]]\nid = "2"\ntier = "primary"\n')
    assert r.summary["by_tier"]["station"]["institutions"] == 0
    assert r.summary["by_tier"]["primary"]["coverage_pct"] > b.summary["by_tier"]["primary"]["coverage_pct"]
    assert r.summary["coverage_pct"] == b.summary["coverage_pct"]
    comp, _ = compare_runs(b, r)
    assert comp["institutions_tier_changed"] == [{"facility_id": "2", "tier_a": "station", "tier_b": "primary"}]


def test_slower_walking_lowers_coverage(base):
    tmp, _, b = base
    r = whatif(tmp, "slow", "[analysis]\nspeed_kph = 3.2\n")
    assert r.summary["access_speed_kph"] == 3.2 and r.summary["speeds_kph"] == {"all_roads": 3.2}
    assert r.summary["coverage_pct"] < b.summary["coverage_pct"]
    # times scale exactly with 4.0/3.2 for every reached cell (network and access legs alike)
    t0, t1 = b.cells["travel_time_min"], r.cells["travel_time_min"]
    ok = t0.notna()
    np.testing.assert_allclose(t1[ok], t0[ok] * 4.0 / 3.2, rtol=1e-6, atol=2e-3)


def test_closing_roads_never_shortens_trips(base):
    tmp, _, b = base
    import geopandas as gpd

    # close a junction away from every institution (so that none of them joins the network elsewhere)
    roads = b.roads
    inst_m = b.institutions.to_crs(roads.crs)
    xy = roads.node_xy
    w = roads.forward.astype(int) + roads.backward.astype(int)  # directed edges per piece, at each end
    deg = np.bincount(roads.a, weights=w, minlength=roads.n_nodes) + np.bincount(roads.b, weights=w, minlength=roads.n_nodes)
    far = np.min(np.hypot(xy[:, :1] - inst_m.geometry.x.to_numpy(), xy[:, 1:] - inst_m.geometry.y.to_numpy()), axis=1)
    centre = inst_m.geometry.union_all().centroid
    ok = (deg >= 6) & (far > 800)
    pick = xy[ok][np.argmin(np.hypot(xy[ok, 0] - centre.x, xy[ok, 1] - centre.y))]
    box = gpd.GeoSeries.from_xy([pick[0] - 80, pick[0] + 80], [pick[1] - 80, pick[1] + 80], crs=roads.crs).to_crs(4326)
    (x0, x1), (y0, y1) = box.x.to_numpy(), box.y.to_numpy()
    r = whatif(tmp, "closed", f"[[edits.close_roads]]\npolygon = [[{x0}, {y0}], [{x1}, {y0}], [{x1}, {y1}], [{x0}, {y1}]]\n")
    assert r.summary["scenario"]["closed"]["closed_edges"] > 0
    assert (r.institutions["snap_m"] == b.institutions["snap_m"]).all()
    t0 = np.nan_to_num(b.cells["travel_time_min"].to_numpy(), nan=np.inf)
    t1 = np.nan_to_num(r.cells["travel_time_min"].to_numpy(), nan=np.inf)
    # cells that still join the network where they did: removing roads can only lengthen their trips.
    # (A cell whose nearest road was closed joins the next-nearest one, whose route may happen to be faster.)
    same_join = (b.cells["snap_m"] == r.cells["snap_m"]).to_numpy()
    assert same_join.sum() > 0.9 * len(t0)
    assert (t1[same_join] >= t0[same_join] - 1e-6).all() and (t1[same_join] > t0[same_join] + 1e-6).any()


# ------------------------------------------------------------------------------------------ runs


def test_runs_are_deterministic_and_cached(base, tmp_path):
    _, path, b = base
    assert load_scenario(path) in CACHE
    again = run_scenario(path, out_root=None, cache=CACHE)
    sa = {k: v for k, v in b.summary.items() if k != "runtime_s"}
    sb = {k: v for k, v in again.summary.items() if k != "runtime_s"}
    assert json.dumps(sa, sort_keys=True, default=str) == json.dumps(sb, sort_keys=True, default=str)
    assert again.cells.drop(columns="geometry").equals(b.cells.drop(columns="geometry"))
    # on-disk cache: a fresh CaseCache (empty memory) reads it back
    out = tmp_path / "out"
    first = run_scenario(path, out_root=out, cache=CaseCache())
    write_scenario_outputs(first, load_scenario(path), out / "gg-base")
    assert list((out / ".cache").glob("case-*.pkl"))
    fresh = CaseCache()
    second = run_scenario(path, out_root=out, cache=fresh)
    assert len(fresh) == 1
    written = write_scenario_outputs(second, load_scenario(path), out / "gg-base")
    assert second.summary["coverage_pct"] == first.summary["coverage_pct"] == b.summary["coverage_pct"]
    files = sorted(p.name for p in (out / "gg-base").iterdir())
    assert files == [".planner-manifest.json", "by_district.csv", "by_tier.csv", "gg-base.gpkg", "map.html", "map.png",
                     "norms.csv", "scenario.json", "summary.json", "tables.xlsx", "thresholds.csv"]  # norms: it has districts
    assert [p.name for p in written] == files[1:]
    import pandas as pd

    xl = pd.read_excel(out / "gg-base" / "tables.xlsx", sheet_name=None)
    assert set(xl) == {"about", "thresholds", "by_tier", "by_district"}
    assert "覆盖率(%) coverage (%)" in xl["thresholds"].columns
    assert xl["thresholds"]["覆盖率(%) coverage (%)"].iloc[-1] == round(b.summary["coverage_pct"], 1)  # to 0.1
    csv = (out / "gg-base" / "by_district.csv").read_bytes()
    assert csv.startswith(b"\xef\xbb\xbf") and "区县 district".encode() in csv
    import pyogrio

    layers = {name for name, _ in pyogrio.list_layers(out / "gg-base" / "gg-base.gpkg")}
    assert layers == {"cells", "institutions", "districts"}


def test_cli_run_and_compare(base, tmp_path):
    from typer.testing import CliRunner

    from planner.cli import app

    tmp, path, b = base
    add = write(tmp, "cli_add.toml", 'extends = "base.toml"\nname = "cli-add"\n[edits]\nremove_institutions = ["1"]\n')
    out_root = tmp_path / "outputs"
    res = CliRunner().invoke(app, ["run", str(path), "--out-root", str(out_root), "-q"])
    assert res.exit_code == 0, res.output
    assert f"{b.summary['coverage_pct']:.1f}%" in res.output
    res = CliRunner().invoke(app, ["compare", str(path), str(add), "--out-root", str(out_root), "-q", "--offline"])
    assert res.exit_code == 0, res.output
    folder = out_root / "compare-gg-base-vs-cli-add"
    comp = json.loads((folder / "compare.json").read_text(encoding="utf-8"))
    assert comp["institutions_removed"][0]["facility_id"] == "1" and comp["population_newly_lost"] > 0
    assert comp["change_pp"] < 0 and "洪山区" in res.output
    names = {p.name for p in folder.iterdir()}
    assert {"compare.json", "compare_cells.gpkg", "compare_map.html", "map_a.html", "map_b.html", "side_by_side.html",
            "compare_by_district.csv", "compare_by_tier.csv"} <= names
    html = (folder / "compare_map.html").read_text(encoding="utf-8")
    assert "失去覆盖 newly lost" in html and "cdn.jsdelivr" not in html  # offline: Leaflet inlined
    assert "map_a.html" in (folder / "side_by_side.html").read_text(encoding="utf-8")
    # a broken scenario: one line, exit 2, nothing written for it
    bad = write(tmp, "cli_bad.toml", 'name = "x"\nfoo = 1\n')
    res = CliRunner().invoke(app, ["run", str(bad), "--out-root", str(out_root)])
    assert res.exit_code == 2 and "'foo' is not a known key" in res.output
    assert not (out_root / "x").exists()
