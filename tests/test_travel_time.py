"""The csgraph engine against networkx Dijkstra on a real OSM extract, and exact toy cases."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from planner import _snap, network, travel_time

from .conftest import toy_cells, toy_points


def _node_points(G, net, nodes):
    pts = gpd.GeoSeries.from_xy([G.nodes[n]["x"] for n in nodes], [G.nodes[n]["y"] for n in nodes], crs=net.crs)
    pts.index = pd.Index([str(n) for n in nodes])
    return pts


def _on_own_node(net, snapped, nodes):
    """Keep points that snapped onto a segment ending at their own node (not a crossing road)."""
    idx = {n: i for i, n in enumerate(net.node_ids)}
    seg = snapped["segment"].to_numpy()
    own = np.array([idx[n] for n in nodes])
    at_a = (net.seg_a[seg] == own) & np.isclose(snapped["frac"], 0.0)
    at_b = (net.seg_b[seg] == own) & np.isclose(snapped["frac"], 1.0)
    return snapped[(at_a | at_b) & (snapped["snap_m"].to_numpy() < 1e-6)]


@pytest.mark.parametrize("fixture", ["guanggu_walk", "guanggu_drive"])
def test_od_times_equal_networkx_dijkstra(request, fixture):
    G, net = request.getfixturevalue(fixture)
    rng = np.random.default_rng(42)
    nodes = list(G.nodes)
    origins = [nodes[i] for i in rng.choice(len(nodes), 80, replace=False)]
    dests = [nodes[i] for i in rng.choice(len(nodes), 12, replace=False)]
    so = _on_own_node(net, travel_time.snap_points(net, _node_points(G, net, origins)), origins)
    sd = _on_own_node(net, travel_time.snap_points(net, _node_points(G, net, dests)), dests)
    assert len(so) > 60 and len(sd) > 8
    od = travel_time.od_travel_times(net, so, sd)
    got = od.set_index(["origin_id", "destination_id"])["travel_time_s"]
    Grev = G.reverse(copy=False)
    n_checked = 0
    for d in sd.index:
        expected = nx.single_source_dijkstra_path_length(Grev, int(d), weight="travel_time")
        for o in so.index:
            if int(o) in expected:
                assert got[(o, d)] == pytest.approx(expected[int(o)], abs=0.01)
                n_checked += 1
            else:  # unreachable in networkx => no row in the long table
                assert (o, d) not in got.index
    assert n_checked > 500


def test_nearest_equals_minimum_of_od_table(guanggu_drive):
    G, net = guanggu_drive
    xmin, ymin, xmax, ymax = net.node_xy[:, 0].min(), net.node_xy[:, 1].min(), net.node_xy[:, 0].max(), net.node_xy[:, 1].max()
    rng = np.random.default_rng(7)
    o = gpd.GeoSeries.from_xy(rng.uniform(xmin, xmax, 300), rng.uniform(ymin, ymax, 300), crs=net.crs)
    f = gpd.GeoSeries.from_xy(rng.uniform(xmin, xmax, 15), rng.uniform(ymin, ymax, 15), crs=net.crs)
    f.index = [f"f{i}" for i in range(15)]
    so, sf = travel_time.snap_points(net, o, max_snap_m=2000), travel_time.snap_points(net, f, max_snap_m=2000)
    near = travel_time.nearest_facility_times(net, so, sf)
    od = travel_time.od_travel_times(net, so, sf)
    best = od.loc[od.groupby("origin_id")["travel_time_s"].idxmin()].set_index("origin_id")
    reached = near["travel_time_s"].notna()
    assert reached.sum() > 250
    np.testing.assert_allclose(near.loc[reached, "travel_time_s"], best.loc[near.index[reached], "travel_time_s"], rtol=1e-9)
    assert (near.loc[reached, "facility_id"] == best.loc[near.index[reached], "destination_id"]).all()


def test_toy_times_exact(toy_roads, one_mps):
    G = network.load_network(toy_roads, mode="walk")
    net = travel_time.compile_network(G)
    fac = toy_points([(100, 20), (980, -30)], ["F1", "F2"])
    cells = toy_cells([(300, 50), (530, 400), (700, 600), (2000, 2000), (900, 100)], [100, 200, 300, 50, 400])
    sc, sf = travel_time.snap_points(net, cells), travel_time.snap_points(net, fac)
    assert sc["snapped"].tolist() == [True, True, True, False, True]
    np.testing.assert_allclose(sc["snap_m"].to_numpy()[[0, 1, 2, 4]], [50, 30, 200, 100], atol=0.01)
    od = travel_time.od_travel_times(net, sc, sf).set_index(["origin_id", "destination_id"])["travel_time_s"]
    expected = {(0, "F1"): 270, (0, "F2"): 760, (1, "F1"): 850, (1, "F2"): 940,
                (2, "F1"): 1220, (2, "F2"): 1310, (4, "F1"): 920, (4, "F2"): 210}
    for key, seconds in expected.items():
        assert od[key] == pytest.approx(seconds, abs=0.05)
    assert len(od) == len(expected)  # the unsnapped cell has no row
    near = travel_time.nearest_facility_times(net, sc, sf)
    assert near["facility_id"].tolist() == ["F1", "F1", "F1", None, "F2"]
    np.testing.assert_allclose(near["travel_time_s"].to_numpy(), [270, 850, 1220, np.nan, 210], atol=0.05)
    limited = travel_time.od_travel_times(net, sc, sf, max_minutes=5)
    assert sorted(zip(limited["origin_id"], limited["destination_id"], strict=True)) == [(0, "F1"), (4, "F2")]


def test_compile_edges_from_arrays_matches_graph(guanggu_drive):
    """The array constructor (used for million-node networks) routes exactly like compile_network."""
    G, net = guanggu_drive
    nodes = list(G.nodes)
    idx = {n: i for i, n in enumerate(nodes)}
    u, v, tt, ln = zip(*[(idx[a], idx[b], d["travel_time"], d["length"]) for a, b, d in G.edges(data=True)], strict=True)
    net2 = travel_time.compile_edges(np.array(nodes, dtype=object), net.node_xy, np.array(u), np.array(v),
                                     np.array(tt), np.array(ln), crs=net.crs, mode="drive")
    assert (net2.csr != net.csr).nnz == 0
    assert len(net2.seg_a) == len(net.seg_a)
    rng = np.random.default_rng(5)
    pts = gpd.GeoSeries.from_xy(*net.node_xy[rng.choice(net.n_nodes, 40, replace=False)].T, crs=net.crs)
    fac = pts.iloc[:5].set_axis([f"f{i}" for i in range(5)])
    a = travel_time.od_travel_times(net, travel_time.snap_points(net, pts), travel_time.snap_points(net, fac))
    b = travel_time.od_travel_times(net2, travel_time.snap_points(net2, pts), travel_time.snap_points(net2, fac))
    key = ["origin_id", "destination_id"]
    pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True),
                                  check_exact=False, atol=1e-6)


def _assert_same_snapping(bulk: pd.DataFrame, tree: pd.DataFrame) -> None:
    """Same segment and flags exactly; frac within 1e-9 and metres within 1e-6 (GEOS's own formulas: equal bits here)."""
    pd.testing.assert_index_equal(bulk.index, tree.index)
    assert (bulk["segment"].to_numpy() == tree["segment"].to_numpy()).all()
    assert (bulk["snapped"].to_numpy() == tree["snapped"].to_numpy()).all()
    np.testing.assert_allclose(bulk["frac"], tree["frac"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(bulk["snap_m"], tree["snap_m"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(bulk["access_s"], tree["access_s"], rtol=0, atol=1e-6)


def test_bulk_snapping_equals_strtree_search(guanggu_walk, monkeypatch):
    """Many points go through the grid over road pieces; every result equals the STRtree search.

    The points include the hard ones: exactly on nodes (ties between the segments meeting there),
    half-way between two roads, and far from every road.
    """
    G, net = guanggu_walk
    xmin, ymin = net.node_xy.min(axis=0)
    xmax, ymax = net.node_xy.max(axis=0)
    rng = np.random.default_rng(11)
    rand = np.c_[rng.uniform(xmin - 1500, xmax + 1500, 6000), rng.uniform(ymin - 1500, ymax + 1500, 6000)]
    on_nodes = net.node_xy  # all 449 nodes
    a, b = net.node_xy[net.seg_a], net.node_xy[net.seg_b]
    midpoints = (a + b) / 2  # on a segment, often also equidistant from a crossing one
    vertices = shapely.get_coordinates(net.seg_geom)  # inner vertices: two pieces of one segment tie
    remote = net.node_xy[:40] + [60_000.0, -45_000.0]  # far outside the grid: left to the STRtree search
    xy = np.r_[rand, on_nodes, midpoints, vertices, remote]
    pts = gpd.GeoSeries.from_xy(xy[:, 0], xy[:, 1], crs=net.crs)
    bulk = travel_time.snap_points(net, pts)
    seg, dist, frac, done = _snap._snap_bulk(net._pieces, xy, 500.0)
    # the fast path settles almost every random point (ties at nodes go to the STRtree search)
    assert done[:6000].mean() > 0.98 and (done & (seg < 0)).sum() > 500 and not done[-40:].any()
    monkeypatch.setattr(travel_time, "_BULK_SNAP_MIN_POINTS", 10**12)  # STRtree search only
    tree = travel_time.snap_points(net, pts)
    _assert_same_snapping(bulk, tree)
    assert bulk["snapped"].sum() > 2500 and (~bulk["snapped"]).sum() > 500
    assert ((bulk["frac"] > 0.01) & (bulk["frac"] < 0.99)).sum() > 1000  # inside segments, not only at their ends


def test_bulk_snapping_of_polygon_cells_equals_geos(guanggu_walk, monkeypatch):
    """A WGS-84 grid of square cells (shared corners, as from a raster): centroids and snapping equal GEOS's."""
    _, net = guanggu_walk
    (xmin, ymin), (xmax, ymax) = net.node_xy.min(axis=0), net.node_xy.max(axis=0)
    x, y = np.meshgrid(np.arange(xmin - 600, xmax + 600, 50.0), np.arange(ymin - 600, ymax + 600, 50.0))
    boxes = shapely.box(x.ravel(), y.ravel(), x.ravel() + 50, y.ravel() + 50)
    cells = gpd.GeoDataFrame({"population": np.ones(len(boxes))}, geometry=boxes, crs=net.crs).to_crs("EPSG:4326")
    cells.index = pd.Index([f"c{i}" for i in range(len(cells))], name="cell_id")
    assert len(cells) > 5000
    xy = _snap._metric_xy(cells.geometry, net.crs)
    expected = shapely.get_coordinates(shapely.centroid(cells.geometry.to_crs(net.crs).to_numpy()))
    np.testing.assert_array_equal(xy, expected)  # to the bit
    bulk = travel_time.snap_points(net, cells)
    monkeypatch.setattr(travel_time, "_BULK_SNAP_MIN_POINTS", 10**12)
    tree = travel_time.snap_points(net, cells)
    _assert_same_snapping(bulk, tree)
    assert bulk["snapped"].sum() > 2000 and (~bulk["snapped"]).sum() > 100


def test_metric_xy_leaves_unusual_geometries_to_geos(guanggu_walk):
    """Mixed types, holes and missing CRS are not handled by the fast path (the caller uses GEOS)."""
    _, net = guanggu_walk
    x0, y0 = net.node_xy[0]
    sq = shapely.box(x0, y0, x0 + 100, y0 + 100)
    holed = sq.difference(shapely.box(x0 + 40, y0 + 40, x0 + 60, y0 + 60))
    assert _snap._metric_xy(gpd.GeoSeries([sq, holed], crs=net.crs), net.crs) is None
    assert _snap._metric_xy(gpd.GeoSeries([sq, shapely.Point(x0, y0)], crs=net.crs), net.crs) is None
    assert _snap._metric_xy(gpd.GeoSeries([sq]), net.crs) is None
    pts = gpd.GeoSeries.from_xy([x0, x0 + 5], [y0, y0 + 5], crs=net.crs)
    np.testing.assert_array_equal(_snap._metric_xy(pts, net.crs), [[x0, y0], [x0 + 5, y0 + 5]])
