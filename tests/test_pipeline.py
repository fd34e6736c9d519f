"""End to end on a county town (Ninghua, Fujian) from one OSM file, checked against networkx."""

from __future__ import annotations

import json

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from planner import datasets, travel_time
from planner.exports import write_coverage_outputs
from planner.pipeline import run_coverage


@pytest.fixture(scope="module")
def ninghua(tmp_path_factory):
    """Ninghua county seat: roads and the 翠江社区卫生服务中心 from OSM, with a grid of demand points.

    Demand is a regular grid of hand-made points (100 persons each; no real population data exist
    for this town).
    """
    tmp = tmp_path_factory.mktemp("ninghua")
    lon, lat = np.meshgrid(np.arange(116.640, 116.670, 0.002), np.arange(26.255, 26.275, 0.002))
    pd.DataFrame({"lon": lon.ravel(), "lat": lat.ravel(), "population": 100}).to_csv(tmp / "pop.csv", index=False)
    osm = datasets.get_path("ninghua_osm")
    run = run_coverage(osm, osm, tmp / "pop.csv", mode="walk", minutes=(5, 10, 15))
    return run, tmp


def test_ninghua_institution_from_osm(ninghua):
    run, _ = ninghua
    inst = run.institutions
    assert len(inst) == 1
    row = inst.iloc[0]
    assert inst.index[0] == "way/1225596093"
    assert row["name"] == "翠江社区卫生服务中心"
    assert (row["tier"], row["tier_source"]) == ("primary", "name_rule")
    # SOURCES.md averages all way nodes (closing node twice); planner drops the repeated closing node
    assert row["lat"] == pytest.approx(26.263305, abs=1e-4) and row["lon"] == pytest.approx(116.654408, abs=1e-4)
    assert row["snap_status"] == "snapped"


def test_ninghua_times_equal_networkx_with_facility_spliced_in(ninghua):
    """Cells lying exactly on graph nodes: planner's time = networkx Dijkstra on a spliced graph.

    The graph is a copy in which the institution's snapped point is spliced into its road segment.
    """
    run, _ = ninghua
    G, net = run.graph, run.net
    sf = travel_time.snap_points(net, run.institutions)
    seg, frac, acc = int(sf["segment"].iloc[0]), float(sf["frac"].iloc[0]), float(sf["access_s"].iloc[0])
    a, b = net.node_ids[net.seg_a[seg]], net.node_ids[net.seg_b[seg]]
    H = nx.DiGraph()
    for u, v, d in G.edges(data=True):
        w = d["travel_time"]
        if not H.has_edge(u, v) or H[u][v]["w"] > w:
            H.add_edge(u, v, w=w)
    H.add_edge(a, "F", w=frac * net.seg_tt_ab[seg])
    H.add_edge(b, "F", w=(1 - frac) * net.seg_tt_ba[seg])
    expected = nx.single_source_dijkstra_path_length(H.reverse(copy=False), "F", weight="w")
    nodes = list(G.nodes)
    pts = gpd.GeoSeries.from_xy([G.nodes[n]["x"] for n in nodes], [G.nodes[n]["y"] for n in nodes], crs=net.crs)
    so = travel_time.snap_points(net, pts)
    near = travel_time.nearest_facility_times(net, so, sf)
    checked = 0
    for i, n in enumerate(nodes):
        if so["snap_m"].iloc[i] > 1e-6 or n not in expected:
            continue
        assert near["travel_time_s"].iloc[i] == pytest.approx(expected[n] + acc, abs=0.01)
        checked += 1
    assert checked >= 30


def test_ninghua_outputs(ninghua):
    run, tmp = ninghua
    s = run.summary
    assert s["population_total"] == 100 * len(run.cells)
    covered = [t["population_covered"] for t in s["thresholds"]]
    assert covered == sorted(covered) and 0 < covered[-1] < s["population_total"]
    reached = run.cells["travel_time_min"].to_numpy()
    assert covered[-1] == 100 * int(np.sum(reached <= 15))
    out = tmp / "out"
    written = write_coverage_outputs(run, out)
    names = sorted(p.name for p in out.iterdir())
    assert written == sorted(p for p in out.iterdir() if p.name != ".planner-manifest.json")  # every file it wrote
    assert names == [".planner-manifest.json", "by_tier.csv", "cells.gpkg", "institutions.gpkg", "isochrones.gpkg",
                     "map.html", "map.png", "summary.json", "tables.xlsx", "thresholds.csv"]  # no boundaries: no by_district
    saved = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert saved["coverage_pct"] == s["coverage_pct"] and saved["complete"] is True
    cells = gpd.read_file(out / "cells.gpkg")
    assert len(cells) == len(run.cells) and cells["cell_id"].tolist() == run.cells.index.tolist()
