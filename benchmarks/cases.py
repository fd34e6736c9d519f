"""Benchmark cases. Each function runs in a fresh process (see _common.run_isolated), loads its
inputs untimed, then times the work and measures the peak memory it adds.

Work compared ("coverage"): the travel time from every demand cell to its nearest institution,
for walking, on the same graph. Peers route between graph nodes, so for them every cell and every
institution is moved to its nearest node (osmnx.distance.nearest_nodes / pandana get_node_ids).
planner runs twice: as it works in the product (cells and institutions snapped onto the nearest
road *segment* within 500 m, plus the walk from the point to the road), and on the peers' exact
work (nearest node, no access leg: `planner_nodes_*`), which must reach the same cells.

Against OSMnx's isochrone recipe (ego_graph per institution and trip time) the output compared is
the product's: which cells are within 5/10/15 minutes (the recipe: cells inside the union of its
convex hulls), and the isochrone polygons themselves (the recipe: its road-band polygons).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _common import Meter

MAX_S = 15 * 60.0


# ----------------------------------------------------------------------------- inputs


def wuhan_inputs(mode: str = "walk") -> dict[str, Any]:
    from planner import coverage, datasets, institutions, network, travel_time
    from planner.demand import load_population

    G = network.load_network(datasets.get_path("wuhan_roads"), mode=mode)
    net = travel_time.compile_network(G)
    inst = institutions.load_institutions(datasets.get_path("wuhan_institutions"))
    area = coverage.compute_study_area(net)
    cells = load_population(datasets.get_path("wuhan_population"), study_area=area)
    snapped = travel_time.snap_points(net, inst)
    inst = inst[snapped["snapped"].to_numpy()]
    cell_pts = cells.to_crs(net.crs).centroid
    inst_pts = inst.to_crs(net.crs).geometry
    return {"G": G, "net": net, "cells": cells, "inst": inst,
            "cell_xy": np.c_[cell_pts.x, cell_pts.y], "inst_xy": np.c_[inst_pts.x, inst_pts.y]}


def synthetic_edges(n_side: int, seed: int = 0) -> dict[str, Any]:
    """A road-like graph: an n_side x n_side grid, 100 m apart with jitter, 8 % of links removed."""
    rng = np.random.default_rng(seed)
    n = n_side * n_side
    ii, jj = np.divmod(np.arange(n), n_side)
    xy = np.c_[jj * 100.0 + rng.uniform(-20, 20, n), ii * 100.0 + rng.uniform(-20, 20, n)] + [500_000.0, 3_300_000.0]
    right = np.flatnonzero(jj < n_side - 1)
    up = np.flatnonzero(ii < n_side - 1)
    a = np.r_[right, up]
    b = np.r_[right + 1, up + n_side]
    keep = rng.random(len(a)) > 0.08
    a, b = a[keep], b[keep]
    length = np.hypot(*(xy[a] - xy[b]).T)
    walk_mps = 4.0 / 3.6
    u, v = np.r_[a, b], np.r_[b, a]
    tt = np.r_[length, length] / walk_mps
    return {"xy": xy, "u": u, "v": v, "tt": tt, "length": np.r_[length, length]}


def synthetic_case(n_side: int, n_inst: int, n_cells: int) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The generated graph with uniformly random cells and institutions (x, y arrays), the same for every method."""
    g = synthetic_edges(n_side)
    rng = np.random.default_rng(1)
    lo, hi = g["xy"].min(axis=0), g["xy"].max(axis=0)
    return g, rng.uniform(lo, hi, (n_cells, 2)), rng.uniform(lo, hi, (n_inst, 2))


def _compile_synthetic(g: dict[str, Any]) -> Any:
    from planner import travel_time

    return travel_time.compile_edges(np.arange(len(g["xy"])), g["xy"], g["u"], g["v"], g["tt"], g["length"], crs=32650)


def _networkx_synthetic(g: dict[str, Any]) -> Any:
    import networkx as nx

    G = nx.DiGraph()
    G.add_weighted_edges_from(zip(g["u"].tolist(), g["v"].tolist(), g["tt"].tolist()), weight="travel_time")
    return G


# ----------------------------------------------------------------------------- planner


def planner_coverage_wuhan() -> dict[str, Any]:
    import geopandas as gpd

    from planner import travel_time

    d = wuhan_inputs()
    net = d["net"]  # compiled untimed, as the peers' graphs are built untimed
    with Meter() as m:
        sc = travel_time.snap_points(net, d["cells"])
        sf = travel_time.snap_points(net, d["inst"])
        near = travel_time.nearest_facility_times(net, sc, sf)
    # node-level times for the cross-check (institutions exactly at their nearest node)
    node_inst = gpd.GeoSeries.from_xy(*net.node_xy[_nearest_node(net.node_xy, d["inst_xy"])].T, crs=net.crs)
    sn = travel_time.snap_points(net, node_inst)
    R, virt = travel_time._reverse_graph_with_sources(net, sn)
    from scipy.sparse.csgraph import dijkstra

    node_t = dijkstra(R, indices=virt, min_only=True)[: net.n_nodes]
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "cells": len(sc), "institutions": len(sf),
            "reached": int((near["travel_time_s"] <= MAX_S).sum()), "node_times": node_t}


def _node_snaps(net: Any, nodes: np.ndarray, index: Any) -> Any:
    """snap_points-style rows putting each point exactly on a graph node (as the peers do): no access leg."""
    import pandas as pd

    first_a = np.full(net.n_nodes, -1)
    first_a[net.seg_a[::-1]] = np.arange(len(net.seg_a))[::-1]
    first_b = np.full(net.n_nodes, -1)
    first_b[net.seg_b[::-1]] = np.arange(len(net.seg_b))[::-1]
    seg = np.where(first_a[nodes] >= 0, first_a[nodes], first_b[nodes])
    frac = np.where(first_a[nodes] >= 0, 0.0, 1.0)
    return pd.DataFrame({"segment": seg, "frac": frac, "snap_m": 0.0, "access_s": 0.0, "snapped": seg >= 0}, index=index)


def planner_nodes_wuhan() -> dict[str, Any]:
    """planner's engine on the peers' work: cells and institutions at their nearest node."""
    from scipy.spatial import cKDTree

    from planner import travel_time

    d = wuhan_inputs()
    net = d["net"]
    with Meter() as m:
        tree = cKDTree(net.node_xy)
        sc = _node_snaps(net, tree.query(d["cell_xy"])[1], d["cells"].index)
        sf = _node_snaps(net, tree.query(d["inst_xy"])[1], d["inst"].index)
        near = travel_time.nearest_facility_times(net, sc, sf)
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "reached": int((near["travel_time_s"] <= MAX_S).sum())}


def planner_thresholds_wuhan(mode: str, minutes: tuple[float, ...]) -> dict[str, Any]:
    """Cells within each threshold of their nearest institution, as the product computes them."""
    from planner import travel_time

    d = wuhan_inputs(mode)
    with Meter() as m:
        sc = travel_time.snap_points(d["net"], d["cells"])
        sf = travel_time.snap_points(d["net"], d["inst"])
        t = travel_time.nearest_facility_times(d["net"], sc, sf)["travel_time_s"].to_numpy()
        covered = [int((t <= mi * 60.0).sum()) for mi in minutes]
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "covered": covered}


def planner_isochrones_wuhan(mode: str = "walk", minutes: tuple[float, ...] = (15.0,)) -> dict[str, Any]:
    from planner import isochrones, travel_time

    d = wuhan_inputs(mode)
    net = d["net"]
    sf = travel_time.snap_points(net, d["inst"])
    with Meter() as m:
        iso = isochrones.compute_isochrones(net, d["inst"], sf, minutes=minutes)
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "polygons": len(iso)}


def _recipe_ego_graphs(G: Any, inst_xy: np.ndarray, minutes: tuple[float, ...]) -> Any:
    """OSMnx's isochrone recipe: nearest node per institution, then one ego_graph per trip time.

    Yields (minutes, ego graph). The graph is reversed so that times are *to* the institution, as in planner.
    """
    import networkx as nx
    import osmnx as ox

    Grev = G.reverse(copy=False)
    for node in ox.distance.nearest_nodes(G, inst_xy[:, 0], inst_xy[:, 1]):
        for mi in sorted(minutes, reverse=True):
            yield mi, nx.ego_graph(Grev, node, radius=mi * 60.0, distance="travel_time")


def recipe_thresholds_wuhan(mode: str, minutes: tuple[float, ...]) -> dict[str, Any]:
    """OSMnx recipe for the same output: convex hull of each ego graph's nodes, cells inside the union per threshold."""
    import shapely

    d = wuhan_inputs(mode)
    G, cx, cy = d["G"], d["cell_xy"][:, 0], d["cell_xy"][:, 1]
    with Meter() as m:
        hulls: dict[float, list] = {mi: [] for mi in minutes}
        for mi, sub in _recipe_ego_graphs(G, d["inst_xy"], minutes):
            hulls[mi].append(shapely.convex_hull(shapely.multipoints([(G.nodes[n]["x"], G.nodes[n]["y"]) for n in sub])))
        covered = [int(shapely.contains_xy(shapely.union_all(hulls[mi]), cx, cy).sum()) for mi in minutes]
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "covered": covered}


RECIPE_BAND_M = 60.0  # metres; the band planner drew before issue 14 (its isochrones are now traced from a 50 m grid)


def recipe_isochrones_wuhan(mode: str, minutes: tuple[float, ...]) -> dict[str, Any]:
    """OSMnx recipe's road-band polygons (its make_iso_polys, edges only): every edge of the ego graph buffered
    by RECIPE_BAND_M and united, one polygon per institution and trip time (edges are not cut)."""
    import shapely

    d = wuhan_inputs(mode)
    G = d["G"]
    with Meter() as m:
        polys = []
        for _, sub in _recipe_ego_graphs(G, d["inst_xy"], minutes):
            lines = [e["geometry"] if "geometry" in e else
                     shapely.LineString([(G.nodes[u]["x"], G.nodes[u]["y"]), (G.nodes[v]["x"], G.nodes[v]["y"])])
                     for u, v, e in sub.edges(data=True)]
            polys.append(shapely.union_all(shapely.buffer(np.asarray(lines), RECIPE_BAND_M, quad_segs=4))
                         if lines else shapely.Polygon())
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "polygons": len(polys)}


def _nearest_node(node_xy: np.ndarray, pts: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    return cKDTree(node_xy).query(pts)[1]


# ----------------------------------------------------------------------------- peers on Wuhan


def networkx_multisource_wuhan() -> dict[str, Any]:
    import networkx as nx
    import osmnx as ox

    d = wuhan_inputs()
    G = d["G"]
    with Meter() as m:
        cell_nodes = ox.distance.nearest_nodes(G, d["cell_xy"][:, 0], d["cell_xy"][:, 1])
        inst_nodes = ox.distance.nearest_nodes(G, d["inst_xy"][:, 0], d["inst_xy"][:, 1])
        dist = nx.multi_source_dijkstra_path_length(G.reverse(copy=False), set(inst_nodes), weight="travel_time")
        times = np.array([dist.get(n, np.nan) for n in cell_nodes])
    node_index = {n: i for i, n in enumerate(G.nodes)}
    node_t = np.full(len(G), np.inf)
    for n, t in dist.items():
        node_t[node_index[n]] = t
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "reached": int((times <= MAX_S).sum()), "node_times": node_t}


def pandana_wuhan() -> dict[str, Any]:
    import pandana
    import pandas as pd

    d = wuhan_inputs()
    G = d["G"]
    nodes = list(G.nodes)
    idx = {n: i for i, n in enumerate(nodes)}
    e = [(idx[u], idx[v], dd["travel_time"]) for u, v, dd in G.edges(data=True)]
    ea = np.array(e)
    with Meter() as m:
        net = pandana.Network(pd.Series(d["net"].node_xy[:, 0]), pd.Series(d["net"].node_xy[:, 1]),
                              pd.Series(ea[:, 0].astype(int)), pd.Series(ea[:, 1].astype(int)),
                              pd.DataFrame({"tt": ea[:, 2]}), twoway=False)
        setup_s = __import__("time").perf_counter() - m.t0
        net.set_pois("inst", maxdist=MAX_S, maxitems=1, x_col=pd.Series(d["inst_xy"][:, 0]), y_col=pd.Series(d["inst_xy"][:, 1]))
        near = net.nearest_pois(MAX_S, "inst", num_pois=1)
        cell_nodes = net.get_node_ids(pd.Series(d["cell_xy"][:, 0]), pd.Series(d["cell_xy"][:, 1]))
        times = near[1].reindex(cell_nodes.to_numpy()).to_numpy()
    # nearest_pois fills "no institution within maxdist" with maxdist itself, so only times below it are reached
    return {"seconds": m.seconds, "setup_seconds": setup_s, "extra_mb": m.extra_mb,
            "reached": int((times < MAX_S).sum())}


# ----------------------------------------------------------------------------- 1 M nodes


def planner_coverage_synthetic(n_side: int, n_inst: int, n_cells: int) -> dict[str, Any]:
    import geopandas as gpd

    from planner import travel_time

    g, cell_xy, inst_xy = synthetic_case(n_side, n_inst, n_cells)
    cells = gpd.GeoSeries.from_xy(*cell_xy.T, crs=32650)
    inst = gpd.GeoSeries.from_xy(*inst_xy.T, crs=32650, index=[f"f{i}" for i in range(n_inst)])
    with Meter() as build:
        net = _compile_synthetic(g)
    with Meter() as m:
        sc = travel_time.snap_points(net, cells)
        sf = travel_time.snap_points(net, inst)
        near = travel_time.nearest_facility_times(net, sc, sf)
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "build_seconds": build.seconds, "build_mb": build.extra_mb,
            "build_peak_mb": build.peak_mb, "peak_mb": m.peak_mb, "nodes": net.n_nodes, "edges": int(net.csr.nnz), "reached": int((near["travel_time_s"] <= MAX_S).sum())}


def planner_nodes_synthetic(n_side: int, n_inst: int, n_cells: int) -> dict[str, Any]:
    """planner's engine on the peers' work (nearest node, no access leg) on the generated graph."""
    import pandas as pd
    from scipy.spatial import cKDTree

    from planner import travel_time

    g, cells, inst = synthetic_case(n_side, n_inst, n_cells)
    with Meter() as build:
        net = _compile_synthetic(g)
    with Meter() as m:
        tree = cKDTree(net.node_xy)
        sc = _node_snaps(net, tree.query(cells)[1], pd.RangeIndex(n_cells))
        sf = _node_snaps(net, tree.query(inst)[1], pd.Index([f"f{i}" for i in range(n_inst)]))
        near = travel_time.nearest_facility_times(net, sc, sf)
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "build_seconds": build.seconds, "build_mb": build.extra_mb,
            "reached": int((near["travel_time_s"] <= MAX_S).sum())}


def networkx_multisource_synthetic(n_side: int, n_inst: int, n_cells: int) -> dict[str, Any]:
    import networkx as nx
    from scipy.spatial import cKDTree

    g, cells, inst = synthetic_case(n_side, n_inst, n_cells)
    with Meter() as build:
        G = _networkx_synthetic(g)
    with Meter() as m:
        tree = cKDTree(g["xy"])
        cell_nodes, inst_nodes = tree.query(cells)[1], tree.query(inst)[1]
        dist = nx.multi_source_dijkstra_path_length(G.reverse(copy=False), set(inst_nodes.tolist()), weight="travel_time")
        times = np.array([dist.get(n, np.nan) for n in cell_nodes.tolist()])
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "build_seconds": build.seconds, "build_mb": build.extra_mb,
            "reached": int((times <= MAX_S).sum())}


def pandana_synthetic(n_side: int, n_inst: int, n_cells: int) -> dict[str, Any]:
    import pandana
    import pandas as pd

    g, cells, inst = synthetic_case(n_side, n_inst, n_cells)
    half = len(g["u"]) // 2
    with Meter() as build:
        net = pandana.Network(pd.Series(g["xy"][:, 0]), pd.Series(g["xy"][:, 1]), pd.Series(g["u"][:half]),
                              pd.Series(g["v"][:half]), pd.DataFrame({"tt": g["tt"][:half]}), twoway=True)
    with Meter() as m:
        net.set_pois("inst", maxdist=MAX_S, maxitems=1, x_col=pd.Series(inst[:, 0]), y_col=pd.Series(inst[:, 1]))
        near = net.nearest_pois(MAX_S, "inst", num_pois=1)
        cell_nodes = net.get_node_ids(pd.Series(cells[:, 0]), pd.Series(cells[:, 1]))
        times = near[1].reindex(cell_nodes.to_numpy()).to_numpy()
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "build_seconds": build.seconds, "build_mb": build.extra_mb,
            "reached": int((times < MAX_S).sum())}  # maxdist itself means none within it (see pandana_wuhan)


def osmnx_recipe_synthetic(n_side: int, n_inst: int, n_cells: int) -> dict[str, Any]:
    """OSMnx recipe for the cells within 15 minutes: an ego_graph and the convex hull of its nodes per
    institution, then the cells inside their union (nearest nodes by a k-d tree, as osmnx does)."""
    import networkx as nx
    import shapely
    from scipy.spatial import cKDTree

    g, cells, inst = synthetic_case(n_side, n_inst, n_cells)
    with Meter() as build:
        G = _networkx_synthetic(g)
    with Meter() as m:
        Grev = G.reverse(copy=False)
        hulls = []
        for node in cKDTree(g["xy"]).query(inst)[1].tolist():
            sub = nx.ego_graph(Grev, node, radius=MAX_S, distance="travel_time")
            hulls.append(shapely.convex_hull(shapely.multipoints(g["xy"][list(sub)])))
        reached = int(shapely.contains_xy(shapely.union_all(hulls), cells[:, 0], cells[:, 1]).sum())
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "build_seconds": build.seconds, "build_mb": build.extra_mb,
            "reached": reached}
