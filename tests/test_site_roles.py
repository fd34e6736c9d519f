"""Where new sites may go: exclusion zones, suitability weights and competitor sites (issue 15, part 4).

Exclusion zones are checked against polygons read independently of pyosmium (the OSM XML parsed with
ElementTree, shapely ``contains`` on the candidate points); suitability and competitors on hand-solvable cases.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from planner import InputFileError, InvalidValueError, settings, travel_time
from planner.candidates import candidate_suitability, load_exclusion_zones
from planner.cli import app
from planner.pipeline import run_siting
from planner.pipeline.summary import SitingSummary
from planner.siting import LSCP, MCLP, CapacitatedMCLP

from .test_cli import INSTITUTIONS, NETWORK, POPULATION
from .test_summary_schema import _problems

KW = dict(max_minutes=10, cell_size_m=300, marginal=False)


def _osm_polygons(kind_tags: dict[str, list[tuple[str, str | None]]]) -> dict[str, list[shapely.Polygon]]:
    """Closed ways of the Optics Valley extract per kind, parsed with ElementTree (not pyosmium)."""
    root = ET.parse(NETWORK).getroot()
    nodes = {n.get("id"): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    out: dict[str, list[shapely.Polygon]] = {k: [] for k in kind_tags}
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        refs = [nd.get("ref") for nd in way.iter("nd")]
        if len(refs) < 4 or refs[0] != refs[-1] or not all(r in nodes for r in refs):
            continue
        for kind, pairs in kind_tags.items():
            if any(k in tags and v in (None, tags[k]) for k, v in pairs):
                out[kind].append(shapely.Polygon([nodes[r] for r in refs]))
    return out


@pytest.fixture(scope="module")
def water_park():
    polys = _osm_polygons({k: list(settings.EXCLUSION_OSM_TAGS[k]) for k in ("water", "park")})
    assert len(polys["water"]) == 2 and len(polys["park"]) == 6  # natural=water; leisure=park (4), landuse=grass (2)
    return polys


@pytest.fixture(scope="module")
def grid_candidates(tmp_path_factory, water_park):
    """Candidates every ~110 m over the areas' surroundings, plus a point inside each area."""
    allp = [p for ps in water_park.values() for p in ps]
    x0, y0, x1, y1 = shapely.union_all(allp).buffer(0.004).bounds
    xs, ys = np.meshgrid(np.arange(x0, x1, 0.0011), np.arange(y0, y1, 0.001))
    inner = [p.representative_point() for p in allp]
    lon = np.concatenate([xs.ravel(), [p.x for p in inner]])
    lat = np.concatenate([ys.ravel(), [p.y for p in inner]])
    path = tmp_path_factory.mktemp("roles") / "candidates.csv"
    pd.DataFrame({"id": [f"g{i}" for i in range(len(lon))], "name": [f"c{i}" for i in range(len(lon))],
                  "lon": lon.round(7), "lat": lat.round(7)}).to_csv(path, index=False)
    base = run_siting(NETWORK, INSTITUTIONS, POPULATION, candidates=path, n_sites=2, **KW)
    return path, base


def _inside(cands: gpd.GeoDataFrame, polys: list[shapely.Polygon]) -> set[str]:
    pts = cands.geometry.to_numpy()
    hit = np.zeros(len(pts), dtype=bool)
    for p in polys:
        hit |= shapely.contains(p, pts)
    return set(cands.index[hit])


def test_osm_water_and_park_remove_exactly_the_candidates_inside(grid_candidates, water_park):
    path, base = grid_candidates
    r = run_siting(NETWORK, INSTITUTIONS, POPULATION, candidates=path, n_sites=2, exclude=("osm:water,park",), **KW)
    in_water, in_park = _inside(base.candidates, water_park["water"]), _inside(base.candidates, water_park["park"])
    assert len(in_water) >= 2 and len(in_park) >= 4  # the test would pass vacuously otherwise
    assert set(r.candidates.index) == set(base.candidates.index) - in_water - in_park
    assert r.summary["candidates_excluded"] == [{"source": "osm:water", "candidates_removed": len(in_water)},
                                                {"source": "osm:park", "candidates_removed": len(in_park)}]
    assert r.summary["counts"]["candidates"] == len(base.candidates) - len(in_water | in_park)
    assert not set(r.sites.index) & (in_water | in_park)


def test_polygon_file_in_another_crs_removes_exactly_the_candidates_inside(grid_candidates, tmp_path):
    path, base = grid_candidates
    chosen = base.candidates.iloc[[3, 40, 41]]
    utm = chosen.estimate_utm_crs()
    zones = gpd.GeoDataFrame({"name": ["a", "b", "c"]}, geometry=chosen.to_crs(utm).buffer(150).to_numpy(), crs=utm)
    zones.to_file(tmp_path / "zones.gpkg")
    r = run_siting(NETWORK, INSTITUTIONS, POPULATION, candidates=path, n_sites=2, exclude=(tmp_path / "zones.gpkg",), **KW)
    polys = list(zones.to_crs("EPSG:4326").geometry)
    expected = _inside(base.candidates, polys)
    assert len(expected) >= 3
    assert set(r.candidates.index) == set(base.candidates.index) - expected
    assert r.summary["candidates_excluded"] == [{"source": str(tmp_path / "zones.gpkg"), "candidates_removed": len(expected)}]


def test_exclusions_removing_every_candidate_give_each_polygon_count(grid_candidates, tmp_path):
    path, base = grid_candidates
    bounds = base.candidates.total_bounds
    gpd.GeoDataFrame(geometry=[shapely.box(*bounds).buffer(0.001)], crs="EPSG:4326").to_file(tmp_path / "all.geojson")
    first = base.candidates.iloc[:5]
    gpd.GeoDataFrame(geometry=[shapely.box(*first.total_bounds).buffer(1e-5)], crs="EPSG:4326").to_file(tmp_path / "few.gpkg")
    n_few = len(_inside(base.candidates, [shapely.box(*first.total_bounds).buffer(1e-5)]))
    with pytest.raises(InvalidValueError) as err:
        run_siting(NETWORK, INSTITUTIONS, POPULATION, candidates=path, n_sites=1,
                   exclude=(tmp_path / "all.geojson", tmp_path / "few.gpkg"), **KW)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"every one of the {len(base.candidates)} candidate sites lies in an exclusion zone" in msg
    assert f"all.geojson removed {len(base.candidates)}, " in msg and f"few.gpkg removed {n_few})" in msg


def test_bad_exclusion_input_is_one_line(tmp_path):
    gpd.GeoDataFrame(geometry=gpd.points_from_xy([114.5], [30.5]), crs="EPSG:4326").to_file(tmp_path / "pts.gpkg")
    with pytest.raises(InputFileError, match=r"pts.gpkg: exclusion zones must be polygons, but 1 feature\(s\) are not "
                                             r"\(row 1: Point\)"):
        load_exclusion_zones([tmp_path / "pts.gpkg"])
    with pytest.raises(InputFileError, match="reads the areas of an OSM extract, but the network is roads.gpkg; fix: pass"):
        load_exclusion_zones(["osm:water"], network="roads.gpkg")
    with pytest.raises(InvalidValueError, match="unknown OSM area kind"):
        load_exclusion_zones(["osm:lava"], network=NETWORK)
    assert set(settings.EXCLUSION_OSM_TAGS) >= {"water", "park"}
    res = CliRunner().invoke(app, ["site", "--network", str(NETWORK), "--institutions", str(INSTITUTIONS), "--population",
                                   str(POPULATION), "--new-sites", "1", "--exclude", str(tmp_path / "pts.gpkg"),
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "exclusion zones must be polygons" in res.output


# ---------------------------------------------------------------------------------------------------- suitability


def test_suitability_weights_break_ties_and_never_trade_coverage():
    # cells a (100 persons) and b (50); A and B both reach a only, C reaches b only: A and B tie on coverage
    cost = np.array([[5.0, 6.0, 40.0], [40.0, 40.0, 5.0]])
    ids = ["A", "B", "C"]
    for weight, best in (({"A": 1, "B": 2, "C": 1}, "B"), ({"A": 3, "B": 2, "C": 1}, "A")):
        args = dict(service_radius=15, site_ids=ids, site_weight=weight)
        assert MCLP.from_cost_matrix(cost, [100, 50], n_sites=1, **args).solve().sites == (best,)
        assert LSCP.from_cost_matrix(cost, [100, 50], target_pct=60, **args).solve().sites == (best,)
        cap = CapacitatedMCLP.from_cost_matrix(cost, [100, 50], n_sites=1, capacity=1e6, **args).solve()
        assert cap.sites == (best,) and cap.objective == 100.0
    # a huge weight on C cannot buy it: coverage comes first
    r = MCLP.from_cost_matrix(cost, [100, 50], n_sites=1, service_radius=15, site_ids=ids,
                              site_weight={"A": 1, "B": 1, "C": 1e9}).solve()
    assert r.sites == ("A",) and r.objective == 100.0 and r.mip_gap < 1e-6
    with pytest.raises(InvalidValueError, match="site_weight is missing, negative or not a number for 1 candidate"):
        MCLP.from_cost_matrix(cost, [100, 50], n_sites=1, service_radius=15, site_ids=ids, site_weight={"A": 1, "B": -1, "C": 1})


@pytest.fixture(scope="module")
def twin_candidates(tmp_path_factory):
    """Two candidates 2 m apart (same road node: equal coverage) and a third elsewhere."""
    base = run_siting(NETWORK, INSTITUTIONS, POPULATION, n_sites=1, candidate_spacing_m=400, **KW)
    best = base.sites.iloc[0]
    other = base.candidates.drop(index=base.sites.index).iloc[0]
    d = tmp_path_factory.mktemp("twins")
    pd.DataFrame({"id": ["west", "east", "far"], "name": ["west", "east", "far"],
                  "lon": [best["lon"] - 1e-5, best["lon"] + 1e-5, other["lon"]],
                  "lat": [best["lat"], best["lat"], other["lat"]]}).to_csv(d / "twins.csv", index=False)
    return d


def _weights_file(d, weights: dict[str, float], cands: pd.DataFrame) -> str:
    boxes = [shapely.box(r.lon - 4e-6, r.lat - 4e-6, r.lon + 4e-6, r.lat + 4e-6) for r in cands.itertuples()]
    path = d / f"w{len(list(d.iterdir()))}.gpkg"
    gpd.GeoDataFrame({"w": [weights.get(i, 1.0) for i in cands["id"]]}, geometry=boxes, crs="EPSG:4326").to_file(path)
    return str(path)


def test_suitability_polygons_choose_between_equal_sites_and_weight_zero_removes(twin_candidates):
    d = twin_candidates
    cands = pd.read_csv(d / "twins.csv")
    plain = run_siting(NETWORK, INSTITUTIONS, POPULATION, candidates=d / "twins.csv", n_sites=1, **KW)
    added = plain.summary["sites"][0]["added_population"]
    assert added > 0 and plain.sites.index[0] in ("cand-west", "cand-east")
    for heavy in ("west", "east"):
        f = _weights_file(d, {heavy: 5.0}, cands)
        r = run_siting(NETWORK, INSTITUTIONS, POPULATION, candidates=d / "twins.csv", n_sites=1, suitability=f,
                       suitability_column="w", **KW)
        assert r.sites.index.tolist() == [f"cand-{heavy}"] and r.summary["sites"][0]["added_population"] == added
        assert r.summary["suitability"]["candidates_removed"] == 0 and r.summary["suitability"]["weight_max"] == 5.0
    f = _weights_file(d, {"west": 0.0, "east": 0.0}, cands)
    r = run_siting(NETWORK, INSTITUTIONS, POPULATION, candidates=d / "twins.csv", n_sites=1, suitability=f,
                   suitability_column="w", **KW)
    assert r.candidates.index.tolist() == ["cand-far"] and r.sites.index.tolist() in ([], ["cand-far"])
    assert r.summary["suitability"]["candidates_removed"] == 2


def test_suitability_raster_is_sampled_at_the_candidates(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    data = np.arange(12, dtype="float32").reshape(3, 4)
    data[0, 0] = -9999.0
    with rasterio.open(tmp_path / "s.tif", "w", driver="GTiff", width=4, height=3, count=1, dtype="float32",
                       crs="EPSG:4326", transform=from_origin(114.0, 31.0, 0.1, 0.1), nodata=-9999.0) as dst:
        dst.write(data, 1)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([114.05, 114.35, 114.15, 115.0], [30.95, 30.75, 30.85, 30.0]),
                           crs="EPSG:4326", index=pd.Index(["nodata", "last", "mid", "outside"]))
    w, n_default = candidate_suitability(pts, tmp_path / "s.tif")
    assert w.tolist() == [1.0, 11.0, 5.0, 1.0] and n_default == 2


# ---------------------------------------------------------------------------------------------------- competitors


def test_a_competitor_at_the_best_site_changes_the_choice_and_is_counted_apart(tmp_path):
    base = run_siting(NETWORK, INSTITUTIONS, POPULATION, n_sites=1, candidate_spacing_m=400, **KW)
    best = base.sites.iloc[0]
    pd.DataFrame({"name": ["private clinic"], "lon": [best["lon"]], "lat": [best["lat"]]}).to_csv(
        tmp_path / "comp.csv", index=False)
    r = run_siting(NETWORK, INSTITUTIONS, POPULATION, n_sites=1, candidate_spacing_m=400,
                   competitors=tmp_path / "comp.csv", **KW)
    assert r.sites.index[0] != base.sites.index[0]
    # independently: cells within 10 min of the clinic and of no existing site (the coverage engine's nearest times)
    net, cells = r.net, r.cells
    snap_cells = travel_time.snap_points(net, cells)
    comp = gpd.GeoDataFrame({"name": ["c"]}, geometry=gpd.points_from_xy([best["lon"]], [best["lat"]]), crs="EPSG:4326")
    t_comp = travel_time.nearest_facility_times(net, snap_cells, travel_time.snap_points(net, comp))["travel_time_s"]
    t_ours = travel_time.nearest_facility_times(net, snap_cells, travel_time.snap_points(net, r.existing))["travel_time_s"]
    theirs = (t_comp <= 600).to_numpy() & ~(t_ours <= 600).to_numpy()
    served = float(cells.loc[theirs, "population"].sum())
    s = r.summary
    assert served > 0 and s["population_served_by_competitors"] == pytest.approx(served, abs=0.5)
    assert s["population_total"] == pytest.approx(base.summary["population_total"] - served, abs=0.5)
    assert s["population_covered_before"] == pytest.approx(base.summary["population_covered_before"], abs=0.5)
    assert s["competitors"] == {"source": str(tmp_path / "comp.csv"), "sites": 1, "sites_unsnapped": 0,
                                "cells": int(theirs.sum()), "excluded_from_figures": True}
    assert cells["served_by_competitor"].to_numpy().tolist() == theirs.tolist()
    # the new site's gain counts nobody the competitor serves
    assert s["sites"][0]["added_population"] <= base.summary["sites"][0]["added_population"]


def test_cli_site_with_exclusions_and_competitors(tmp_path):
    pd.DataFrame({"name": ["private clinic"], "lon": [114.5125], "lat": [30.4855]}).to_csv(tmp_path / "comp.csv", index=False)
    gpd.GeoDataFrame({"weight": [2.0]}, geometry=[shapely.box(114.50, 30.47, 114.52, 30.49)], crs="EPSG:4326").to_file(
        tmp_path / "suit.geojson")
    args = ["site", "--network", str(NETWORK), "--institutions", str(INSTITUTIONS), "--population", str(POPULATION),
            "--new-sites", "2", "--minutes", "10", "--cell-size", "300", "--candidate-spacing", "100",
            "--suitability", str(tmp_path / "suit.geojson"),
            "--exclude", "osm:water,park,forest", "--competitors", str(tmp_path / "comp.csv"), "-q"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert _problems(s, SitingSummary) == []  # every new key documented, with its type
    assert s["suitability"]["weight_max"] == 2.0 and s["suitability"]["candidates_default_weight"] > 0
    assert [row["source"] for row in s["candidates_excluded"]] == ["osm:water", "osm:park", "osm:forest"]
    assert s["candidates_excluded"][2]["candidates_removed"] == 1  # the one road-node candidate in the forest relation
    assert s["population_served_by_competitors"] > 0 and s["competitors"]["excluded_from_figures"] is True
    assert "exclusion zone osm:forest: 1 candidates removed" in res.output and "served by competitors" in res.output
    cells = gpd.read_file(tmp_path / "out" / "sites.gpkg", layer="cells")
    assert cells.loc[cells["served_by_competitor"].astype(bool), "population"].sum() == pytest.approx(
        s["population_served_by_competitors"], abs=0.5)
    res = CliRunner().invoke(app, [*args[:-7], "--suitability", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "missing.tif" in res.output and len(res.output.strip().splitlines()) == 1
