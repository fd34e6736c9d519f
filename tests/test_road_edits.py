"""RoadNetwork from a graph, and what-if edits on it, against the same edits done on the networkx graph."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from planner import network, travel_time
from planner.network import close_roads, network_stats, roads_from_graph, with_speed
from planner.pipeline import analyse_case, load_case
from planner.scenarios import CloseRoads, Edits, apply_network_edits

from .test_cli import INSTITUTIONS, NETWORK, POPULATION


def _same_routing(net_a: travel_time.CompiledNetwork, net_b: travel_time.CompiledNetwork, *, ordered: bool = True) -> None:
    """The two compiled networks have the same nodes, links, segments and times (times to 1e-12).

    `ordered`: the segments come in the same order too (else they are compared sorted).
    """
    assert (net_a.node_ids == net_b.node_ids).all() and np.array_equal(net_a.node_xy, net_b.node_xy)
    assert np.array_equal(net_a.csr.indptr, net_b.csr.indptr) and np.array_equal(net_a.csr.indices, net_b.csr.indices)
    np.testing.assert_allclose(net_a.csr.data, net_b.csr.data, rtol=1e-12)

    def order(net: travel_time.CompiledNetwork) -> np.ndarray:
        n = len(net.seg_a)
        return np.arange(n) if ordered else np.lexsort((np.round(net.seg_tt_ab, 6), net.seg_b, net.seg_a))

    oa, ob = order(net_a), order(net_b)
    assert np.array_equal(net_a.seg_a[oa], net_b.seg_a[ob]) and np.array_equal(net_a.seg_b[oa], net_b.seg_b[ob])
    np.testing.assert_allclose(net_a.seg_tt_ab[oa], net_b.seg_tt_ab[ob], rtol=1e-12)
    np.testing.assert_allclose(net_a.seg_tt_ba[oa], net_b.seg_tt_ba[ob], rtol=1e-12)
    assert shapely.equals_exact(net_a.seg_geom[oa], net_b.seg_geom[ob], 0).all()


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_roads_from_graph_routes_as_the_graph(mode):
    # the reference engine's graph: OSMnx's merged chains (lists of way ids), one-way streets by car
    G = network.load_network(NETWORK, mode=mode, engine="osmnx")
    roads = roads_from_graph(G)
    assert (roads.n_nodes, roads.n_edges) == (len(G), G.number_of_edges())
    assert network_stats(roads) == network_stats(G)
    if mode == "walk":  # every way is two-way on foot: each piece pairs its two directions
        assert roads.backward.all() and 2 * len(roads.a) == G.number_of_edges()
    else:  # Optics Valley by car: 565 pieces, 121 of them two-way (686 directed edges)
        assert (len(roads.a), int(roads.backward.sum())) == (565, 121)
    _same_routing(travel_time.compile_network(G), travel_time.compile_network(roads))
    # to_networkx lists the edges by node, not by piece: the same segments, in another order
    _same_routing(travel_time.compile_network(roads.to_networkx()), travel_time.compile_network(roads), ordered=False)


def test_with_speed_and_close_roads_keep_the_network_as_it_was():
    roads = roads_from_graph(network.load_network(NETWORK, mode="drive", engine="osmnx"))
    slow = with_speed(roads, 20.0)
    np.testing.assert_allclose(slow.travel_time_s, roads.length_m / (20.0 / 3.6))
    assert slow.speed_kph_override == 20.0 and roads.speed_kph_override is None
    np.testing.assert_array_equal(with_speed(slow, None).speed_kph, roads.speed_kph)  # the per-class speeds again
    keep = roads.length_m > 200
    short = close_roads(roads, keep)
    assert short.n_nodes == roads.n_nodes and len(short.a) == int(keep.sum()) and len(roads.a) == 565
    assert short.n_edges == int(roads.forward[keep].sum() + roads.backward[keep].sum())
    with pytest.raises(ValueError, match="one bool per piece"):
        close_roads(roads, keep[:-1])


@pytest.fixture(scope="module")
def guanggu_case():
    return load_case(NETWORK, INSTITUTIONS, POPULATION, mode="walk", cell_size_m=300)


def test_closures_equal_removing_the_graph_edges(guanggu_case):
    """Closing by way id and by polygon removes the same directed edges as the same edit on the networkx graph."""
    case = guanggu_case
    roads = case.roads
    G = case.graph  # built on request, for the reference edit
    way = int(roads.road_id[np.argmax(roads.length_m)])
    c = shapely.get_coordinates(roads.geometry[np.argmax(roads.length_m)]).mean(axis=0)
    box = gpd.GeoSeries.from_xy([c[0] - 100, c[0] + 100], [c[1] - 100, c[1] + 100], crs=roads.crs).to_crs(4326)
    (x0, x1), (y0, y1) = box.x.to_numpy(), box.y.to_numpy()
    poly = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    edits = Edits(close_roads=(CloseRoads(ids=(way, "no-such-id")),))
    with pytest.raises(Exception, match="names unknown road ids no-such-id"):
        apply_network_edits(case, edits)
    edited, report = apply_network_edits(case, Edits(close_roads=(CloseRoads(ids=(way,)), CloseRoads(polygon=poly))),
                                         speed_kph=3.2)
    poly_m = gpd.GeoSeries([shapely.Polygon(poly)], crs=4326).to_crs(roads.crs).iloc[0]
    drop = {(u, v, k) for u, v, k, d in G.edges(keys=True, data=True)
            if d["road_id"] == way or shapely.intersects(d["geometry"], poly_m)}
    H = G.copy()
    H.remove_edges_from(drop)
    H = network.add_edge_travel_times(H, mode="walk", speed_kph=3.2)
    assert report == {"closed_edges": len(drop), "closed_road_ids": [str(way)]} and len(drop) > 2
    assert case.roads is roads and roads.n_edges == G.number_of_edges()  # the case's own network is unchanged
    assert network_stats(edited) == network_stats(H)
    _same_routing(travel_time.compile_network(H), travel_time.compile_network(edited), ordered=False)


def test_analyse_case_takes_a_graph_as_before(guanggu_case):
    """Code written for graphs still runs: analyse_case(graph=G) converts G and gives the same coverage."""
    case = guanggu_case
    own = analyse_case(case, with_isochrones=False)
    via_graph = analyse_case(case, graph=case.graph, with_isochrones=False)
    assert own.roads is case.roads and own.net is case.net  # the case's network is compiled once, when loaded
    assert via_graph.summary["network"] == own.summary["network"]
    assert via_graph.summary["coverage_pct"] == own.summary["coverage_pct"] > 0
    np.testing.assert_allclose(via_graph.cells["travel_time_min"], own.cells["travel_time_min"], rtol=1e-9)
    with pytest.raises(TypeError, match="not both"):
        analyse_case(case, roads=case.roads, graph=case.graph)
