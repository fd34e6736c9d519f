"""Isochrones cut reached edges exactly (toy) and contain every node networkx says is reached (real)."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from planner import isochrones, network, travel_time

from .conftest import toy_points


@pytest.fixture
def toy_iso(toy_roads, one_mps):
    G = network.load_network(toy_roads, mode="walk")
    net = travel_time.compile_network(G)
    inst = toy_points([(100, 20)], ["F1"], name=["一号"], tier=["primary"], tier_source=["column"])
    snapped = travel_time.snap_points(net, inst)
    return net, inst, snapped


@pytest.mark.parametrize(("minutes", "length_m"), [(5, 380.0), (10, 500 + 180 + 180.0), (0.3, 0.0)])
def test_reached_road_length_exact(toy_iso, minutes, length_m):
    # F1 joins road A-B at x=100 after a 20 s access leg; at 1 m/s it reaches x in [0, 380] within 300 s,
    # and within 600 s all of A-B plus 180 m of B-C and of B-D. Within 18 s it reaches nothing.
    net, _, snapped = toy_iso
    (ids, node_t), = travel_time.facility_node_times(net, snapped)
    own = (int(snapped.at["F1", "segment"]), float(snapped.at["F1", "frac"]), float(snapped.at["F1", "access_s"]))
    pieces = isochrones._pieces(net, *isochrones.reached_intervals(net, node_t[0], minutes * 60.0, own=own))
    assert sum(p.length for p in pieces) == pytest.approx(length_m, abs=0.01)


def test_toy_isochrone_polygons(toy_iso):
    net, inst, snapped = toy_iso
    iso = isochrones.compute_isochrones(net, inst, snapped, minutes=(5, 10), buffer_m=60)
    assert iso["minutes"].tolist() == [5.0, 10.0]
    five = iso.to_crs(net.crs).geometry.iloc[0]
    # a 380 m stadium of half-width 60 m (circle drawn with 16 segments)
    assert five.area == pytest.approx(380 * 120 + 8 * 60**2 * np.sin(2 * np.pi / 16), rel=0.01)
    assert iso["area_km2"].iloc[0] == pytest.approx(five.area / 1e6, abs=1e-4)
    assert iso["name"].tolist() == ["一号", "一号"]


def test_real_isochrones_contain_networkx_reached_nodes(guanggu_walk):
    G, net = guanggu_walk
    rng = np.random.default_rng(3)
    nodes = [list(G.nodes)[i] for i in rng.choice(len(G), 4, replace=False)]
    pts = gpd.GeoSeries.from_xy([G.nodes[n]["x"] for n in nodes], [G.nodes[n]["y"] for n in nodes], crs=net.crs)
    inst = gpd.GeoDataFrame({"name": [f"机构{i}" for i in range(4)], "tier": "primary"}, geometry=pts.to_crs(4326).to_numpy(),
                            crs=4326, index=pd.Index([str(n) for n in nodes], name="facility_id"))
    snapped = travel_time.snap_points(net, inst)
    iso = isochrones.compute_isochrones(net, inst, snapped, minutes=(5, 10, 15))
    iso_m = iso.to_crs(net.crs)
    Grev = G.reverse(copy=False)
    for n in nodes:
        if snapped.at[str(n), "snap_m"] > 1e-6:
            continue
        times = nx.single_source_dijkstra_path_length(Grev, n, weight="travel_time")
        for m in (5, 10, 15):
            poly = iso_m[(iso_m["facility_id"] == str(n)) & (iso_m["minutes"] == m)].geometry.iloc[0]
            reached = [v for v, t in times.items() if t <= m * 60 - 1]
            xy = np.array([[G.nodes[v]["x"], G.nodes[v]["y"]] for v in reached])
            assert shapely.contains_xy(poly.buffer(0.5), xy[:, 0], xy[:, 1]).all()
            # built from the network, not a convex hull
            assert poly.area < shapely.convex_hull(poly).area
    # nested and deterministic
    for _fid, grp in iso_m.groupby("facility_id"):
        g = grp.sort_values("minutes").geometry.to_numpy()
        assert g[0].area <= g[1].area <= g[2].area
        # polygons are simplified with a 2 m tolerance, so nesting holds to within 2 m
        assert g[1].buffer(2.5).contains(g[0]) and g[2].buffer(2.5).contains(g[1])
    again = isochrones.compute_isochrones(net, inst, snapped, minutes=(5, 10, 15))
    assert again.geometry.geom_equals_exact(iso.geometry, tolerance=0).all()
