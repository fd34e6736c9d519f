"""Isochrones are the reached cells of a grid timed as coverage times them (toy, by hand); they hold what networkx reaches."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from planner import isochrones, network, settings, travel_time

from .conftest import TOY_CRS, toy_points, toy_xy


def _cells(centres: list[tuple[float, float]], cell: float = 50.0) -> shapely.Geometry:
    """Union of the squares of side `cell` centred on toy coordinates."""
    h = cell / 2
    return shapely.union_all([shapely.box(*toy_xy(x - h, y - h), *toy_xy(x + h, y + h)) for x, y in centres])


@pytest.fixture
def straight_road(tmp_path, one_mps):
    """One straight road A(0,0)-B(1000,0) and an institution at (300, 40): it joins the road after 40 s."""
    path = tmp_path / "straight.gpkg"
    gpd.GeoDataFrame({"road_id": [1]}, geometry=[shapely.LineString([toy_xy(0, 0), toy_xy(1000, 0)])],
                     crs=TOY_CRS).to_file(path, layer="roads")
    net = travel_time.compile_network(network.load_network(path, mode="walk"))
    inst = toy_points([(300, 40)], ["F1"], name=["一号"], tier=["primary"], tier_source=["column"])
    return net, inst, travel_time.snap_points(net, inst)


def test_straight_road_isochrone_is_a_diamond_of_cells(straight_road):
    # at 1 m/s a point (x, y) beside the road takes |y| (walk to the road) + |x - 300| (along it) + 40 s (the
    # institution's own leg): within 5 min iff |x - 300| + |y| <= 260. Cell centres sit at odd multiples of 25 m
    # (the grid is aligned on 50 m), so |x - 300| + |y| is a multiple of 50: the reached centres are those with a
    # sum <= 250, a diamond of 20 + 16 + 12 + 8 + 4 = 60 cells from x = 50 to 550 m and y = -250 to 250 m.
    net, inst, snapped = straight_road
    iso = isochrones.compute_isochrones(net, inst, snapped, minutes=(5,))
    assert iso.columns.tolist() == ["facility_id", "name", "tier", "minutes", "area_km2", "geometry"]
    poly = iso.to_crs(net.crs).geometry.iloc[0]
    centres = [(x, y) for x in np.arange(-975, 1000, 50.0) for y in np.arange(-975, 1000, 50.0)
               if abs(x - 300) + abs(y) <= 260]
    assert len(centres) == 60
    assert poly.area == pytest.approx(60 * 2500.0)
    assert np.allclose(poly.bounds, [*toy_xy(50, -250), *toy_xy(550, 250)])
    assert poly.symmetric_difference(_cells(centres)).area == pytest.approx(0.0, abs=0.01)  # m², round trip through EPSG:4326
    assert iso["area_km2"].iloc[0] == pytest.approx(0.15)


def test_straight_road_demand_point_adds_its_cell(straight_road):
    # a demand point at (555, 2) takes 2 + 255 + 40 = 297 s: reached, though the centre of its cell (575, 25)
    # takes 25 + 275 + 40 = 340 s. Coverage counts it, so its whole cell joins the polygon.
    net, inst, snapped = straight_road
    pts = gpd.GeoSeries([shapely.Point(toy_xy(555, 2))], crs=TOY_CRS)
    od = travel_time.od_travel_times(net, travel_time.snap_points(net, pts), snapped)
    assert od["travel_time_s"].iloc[0] == pytest.approx(297.0)
    layers = isochrones.compute_isochrone_layers(net, inst, snapped, minutes=(5,), samples=pts)
    poly = layers.per_institution.to_crs(net.crs).geometry.iloc[0]
    assert poly.area == pytest.approx(61 * 2500.0)
    assert np.allclose(poly.bounds, [*toy_xy(50, -250), *toy_xy(600, 250)])
    assert poly.contains(shapely.Point(toy_xy(555, 2)))
    dissolved = layers.dissolved.to_crs(net.crs)
    assert dissolved[["minutes", "tier", "institutions"]].values.tolist() == [[5.0, "all", 1]]
    assert dissolved.geometry.iloc[0].symmetric_difference(poly).area == pytest.approx(0.0, abs=0.01)


def test_toy_isochrone_polygons(toy_roads, one_mps):
    # T-shaped network; F1 joins road A-B at x=100 after 20 s. Within 5 min: |y| + |x - 100| <= 280 beside A-B
    # (x >= 0), and within 180 m of A beyond it (x < 0: 180 m walk + 100 m along the road + 20 s); no cell near
    # B-D is reached (there |x - 500| < |y|, so the trip is longer than 400 s either way).
    net = travel_time.compile_network(network.load_network(toy_roads, mode="walk"))
    inst = toy_points([(100, 20)], ["F1"], name=["一号"], tier=["primary"], tier_source=["column"])
    iso = isochrones.compute_isochrones(net, inst, travel_time.snap_points(net, inst), minutes=(5, 10))
    assert iso["minutes"].tolist() == [5.0, 10.0]
    assert iso["name"].tolist() == ["一号", "一号"]
    five, ten = iso.to_crs(net.crs).geometry
    centres = [(x, y) for x in np.arange(-975, 1000, 50.0) for y in np.arange(-975, 1000, 50.0)
               if (x >= 0 and abs(y) + abs(x - 100) <= 280) or (x < 0 and np.hypot(x, y) <= 180)]
    assert five.symmetric_difference(_cells(centres)).area == pytest.approx(0.0, abs=0.01)  # m², round trip through EPSG:4326
    assert np.allclose(five.bounds, [*toy_xy(-200, -250), *toy_xy(350, 250)])
    assert iso["area_km2"].iloc[0] == pytest.approx(five.area / 1e6, abs=1e-4)
    assert ten.covers(five) and ten.area > 2 * five.area


def test_cell_size_setting_and_limit(straight_road, monkeypatch):
    # 100 m cells: centres at odd multiples of 50 m, so |x - 300| + |y| is a multiple of 100 and reached iff <= 200:
    # (u, v) = ((x - 300) / 50, y / 50) odd with |u| + |v| <= 4, i.e. 8 with |u| = 1 and 4 with |u| = 3: 12 cells of 1 ha
    net, inst, snapped = straight_road
    monkeypatch.setattr(settings, "ISOCHRONE_CELL_M", 100.0)
    poly = isochrones.compute_isochrones(net, inst, snapped, minutes=(5,)).to_crs(net.crs).geometry.iloc[0]
    assert poly.area == pytest.approx(12 * 10_000.0)
    with pytest.raises(ValueError, match="cell_m 0.5 m"):
        isochrones.compute_isochrones(net, inst, snapped, minutes=(5,), cell_m=0.5)


def test_real_isochrones_contain_networkx_reached_nodes(guanggu_walk):
    G, net = guanggu_walk
    rng = np.random.default_rng(3)
    nodes = [list(G.nodes)[i] for i in rng.choice(len(G), 4, replace=False)]
    pts = gpd.GeoSeries.from_xy([G.nodes[n]["x"] for n in nodes], [G.nodes[n]["y"] for n in nodes], crs=net.crs)
    inst = gpd.GeoDataFrame({"name": [f"机构{i}" for i in range(4)], "tier": "primary"}, geometry=pts.to_crs(4326).to_numpy(),
                            crs=4326, index=pd.Index([str(n) for n in nodes], name="facility_id"))
    snapped = travel_time.snap_points(net, inst)
    # every road node as a demand point: at a node, the access leg is 0 and the time is the network time
    all_xy = np.array([[d["x"], d["y"]] for _, d in G.nodes(data=True)])
    samples = gpd.GeoSeries.from_xy(all_xy[:, 0], all_xy[:, 1], crs=net.crs)
    iso = isochrones.compute_isochrones(net, inst, snapped, minutes=(5, 10, 15), samples=samples)
    iso_m = iso.to_crs(net.crs)
    Grev = G.reverse(copy=False)
    for n in nodes:
        assert snapped.at[str(n), "snap_m"] < 1e-6  # the institution stands on the node
        times = nx.single_source_dijkstra_path_length(Grev, n, weight="travel_time")
        for m in (5, 10, 15):
            poly = iso_m[(iso_m["facility_id"] == str(n)) & (iso_m["minutes"] == m)].geometry.iloc[0]
            reached = [v for v, t in times.items() if t <= m * 60 - 1]
            xy = np.array([[G.nodes[v]["x"], G.nodes[v]["y"]] for v in reached])
            assert shapely.contains_xy(poly, xy[:, 0], xy[:, 1]).all()
            # built from the network, not a convex hull
            assert poly.area < shapely.convex_hull(poly).area
    # nested exactly (the reached cells of a shorter time are reached within a longer one) and deterministic
    for _fid, grp in iso_m.groupby("facility_id"):
        g = grp.sort_values("minutes").geometry.to_numpy()
        assert 0 < g[0].area < g[1].area < g[2].area
        assert g[0].difference(g[1]).area < 0.01 and g[1].difference(g[2]).area < 0.01  # m², round trip through EPSG:4326
    again = isochrones.compute_isochrones(net, inst, snapped, minutes=(5, 10, 15), samples=samples)
    assert again.geometry.geom_equals_exact(iso.geometry, tolerance=0).all()
