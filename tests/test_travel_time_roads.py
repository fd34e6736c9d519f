"""compile_network on a RoadNetwork (arrays) equals compile_network on the same roads as a graph."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import datasets, network, travel_time


def _roads_from_graph(G) -> network.RoadNetwork:
    """The RoadNetwork of G, built by hand: two-way roads become one piece, one-way ones keep their direction.

    A piece runs from its lower node index to the higher one, so every one-way edge travelled
    from higher to lower is a ``backward``-only piece whose geometry must be reversed again.
    """
    nodes = list(G.nodes)
    idx = {n: i for i, n in enumerate(nodes)}
    e = pd.DataFrame([(idx[u], idx[v], d["length"], d["speed_kph"], d["travel_time"], d["highway"], d["geometry"])
                      for u, v, d in G.edges(data=True)], columns=["u", "v", "length", "speed", "tt", "highway", "geometry"])
    e["a"], e["b"] = np.minimum(e["u"], e["v"]), np.maximum(e["u"], e["v"])
    e["fw"] = e["u"] == e["a"]
    e["key"] = (e["length"] * 10).round().astype(np.int64)
    e["k"] = e.groupby(["a", "b", "key", "fw"]).cumcount()  # pair the n-th forward with the n-th backward
    fw, bw = e[e["fw"]], e[~e["fw"]]
    m = fw.merge(bw[["a", "b", "key", "k", "tt"]], on=["a", "b", "key", "k"], how="outer", suffixes=("", "_bw"),
                 indicator=True)
    only_bw = m["_merge"] == "right_only"
    m = m.drop(columns=["u", "v", "length", "speed", "highway", "geometry", "tt"]).merge(
        pd.concat([fw, bw]).drop_duplicates(["a", "b", "key", "k"])[["a", "b", "key", "k", "length", "speed", "highway",
                                                                      "geometry", "tt"]],
        on=["a", "b", "key", "k"])
    geom = m["geometry"].to_numpy(dtype=object).copy()
    geom[only_bw.to_numpy()] = shapely.reverse(geom[only_bw.to_numpy()])  # stored b->a, the piece runs a->b
    return network.RoadNetwork(
        crs=G.graph["crs"], mode=G.graph["mode"], node_id=np.array(nodes, dtype=np.int64),
        node_xy=np.array([[G.nodes[n]["x"], G.nodes[n]["y"]] for n in nodes]),
        a=m["a"].to_numpy(), b=m["b"].to_numpy(), forward=(m["_merge"] != "right_only").to_numpy(),
        backward=(m["_merge"] != "left_only").to_numpy(), length_m=m["length"].to_numpy(dtype=float),
        highway=m["highway"].to_numpy(dtype=object), road_id=np.arange(len(m)), geometry=geom,
        speed_kph=(m["length"] / m["tt"] * 3.6).to_numpy(dtype=float))


def _segments(net: travel_time.CompiledNetwork) -> pd.DataFrame:
    s = pd.DataFrame({"a": net.seg_a, "b": net.seg_b, "tt_ab": net.seg_tt_ab, "tt_ba": net.seg_tt_ba,
                      "wkb": shapely.to_wkb(net.seg_geom)})
    return s.sort_values(["a", "b", "wkb"]).reset_index(drop=True)


def test_compile_network_from_roads_equals_graph(guanggu_drive):
    G, net = guanggu_drive
    roads = _roads_from_graph(G)
    assert roads.n_edges == G.number_of_edges()
    one_way = roads.forward != roads.backward
    assert one_way.sum() > 100 and (roads.backward & ~roads.forward).sum() > 50  # both kinds of one-way piece
    net2 = travel_time.compile_network(roads)
    assert net2.mode == "drive" and net2.crs == net.crs
    assert list(net2.node_ids) == list(net.node_ids)
    np.testing.assert_array_equal(net2.node_xy, net.node_xy)
    assert net2.csr.shape == net.csr.shape and abs(net2.csr - net.csr).max() < 1e-9
    a, b = _segments(net), _segments(net2)
    assert len(a) == len(b) == len(net.seg_a)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    assert np.isinf(a["tt_ab"]).sum() > 50 and np.isinf(a["tt_ba"]).sum() > 50
    # snapping and routing give the same answers
    rng = np.random.default_rng(3)
    lo, hi = net.node_xy.min(axis=0), net.node_xy.max(axis=0)
    pts = gpd.GeoSeries.from_xy(rng.uniform(lo[0], hi[0], 300), rng.uniform(lo[1], hi[1], 300), crs=net.crs)
    fac = pts.iloc[:6].set_axis([f"f{i}" for i in range(6)])
    s1, s2 = travel_time.snap_points(net, pts), travel_time.snap_points(net2, pts)
    np.testing.assert_allclose(s1["snap_m"], s2["snap_m"], atol=1e-9)
    np.testing.assert_allclose(s1["frac"], s2["frac"], atol=1e-9)
    od1 = travel_time.od_travel_times(net, s1, travel_time.snap_points(net, fac))
    od2 = travel_time.od_travel_times(net2, s2, travel_time.snap_points(net2, fac))
    key = ["origin_id", "destination_id"]
    assert len(od1) > 500
    pd.testing.assert_frame_equal(od1.sort_values(key).reset_index(drop=True), od2.sort_values(key).reset_index(drop=True),
                                  check_exact=False, atol=1e-6)


def test_compile_network_from_loaded_roads_equals_its_graph():
    """The pipeline's path (load_roads -> compile_network) equals compiling the graph users get (to_networkx)."""
    roads = network.load_roads(datasets.get_path("guanggu_osm"), mode="drive", cache=False)
    net = travel_time.compile_network(roads)
    net_g = travel_time.compile_network(roads.to_networkx())
    assert net.n_nodes == net_g.n_nodes == roads.n_nodes and len(net.seg_a) > 300
    assert [str(i) for i in net.node_ids] == [str(i) for i in net_g.node_ids]
    assert abs(net.csr - net_g.csr).max() < 1e-9
    pd.testing.assert_frame_equal(_segments(net), _segments(net_g), check_exact=False, rtol=1e-12)
    assert roads.backward.sum() < len(roads.backward)  # one-way pieces (reversed geometry) are exercised
