"""Travel times on a compiled network, with scipy.sparse.csgraph.

A network is compiled once (:func:`compile_network`) into a sparse matrix of
edge travel times and a spatial index of road segments. Points (cells and
institutions) are then snapped onto the nearest road segment, not the nearest
node:

* a point's time = straight-line access leg to where it joins the road, at
  walking speed (``settings.ACCESS_SPEED_KPH``), + along-segment time to a
  node + network time + the facility's own along-segment and access legs;
* a point farther than ``max_snap_m`` from every road is *unsnapped*: it is
  reported, never dropped, and gets no travel time;
* one-way streets are honoured on partial segments too.

Many points at once (demand cells) are snapped through a grid over short
straight pieces of the roads, in vectorised numpy: a first upper bound on
each point's distance to the roads, then every piece within it. The distance
and the position along the segment are computed with GEOS's own formulas, so
``snap_m`` and ``frac`` equal ``shapely.distance`` and
``shapely.line_locate_point`` to the bit (polygon centroids too, see
:func:`planner._snap._metric_xy`). Points whose nearest segment is not clear-cut (a tie
within a micrometre) go through the STRtree search, so the result is the same
as the STRtree search for every point.

All times are *to* the facility (residents travelling to care). Shortest paths
to many facilities come from one multi-source Dijkstra on the reversed graph
(``min_only=True``), so the cost of "nearest institution for every cell" does
not grow with the number of institutions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra

from . import settings
from ._snap import _BULK_SNAP_MIN_POINTS, _build_piece_index, _metric_xy, _PieceIndex, _snap_bulk

if TYPE_CHECKING:
    from .network import RoadNetwork

logger = logging.getLogger(__name__)

_MIN_EDGE_S = 1e-3  # seconds; csgraph would drop explicit zero weights


@dataclass(frozen=True)
class CompiledNetwork:
    """A network ready for bulk shortest paths.

    Attributes
    ----------
    crs
        Metric CRS of the graph.
    mode
        Travel mode the travel times are for.
    node_ids
        Graph node label of each matrix index.
    node_xy
        Node coordinates (metric CRS), shape (n, 2).
    csr
        Forward adjacency: ``csr[i, j]`` is the travel time in seconds of the
        fastest edge from node i to node j.
    seg_a, seg_b
        Matrix indices of each road segment's end nodes (a ≤ b).
    seg_tt_ab, seg_tt_ba
        Travel time in seconds along each segment from a to b and from b to
        a; ``inf`` where one-way rules forbid it.
    seg_geom
        Segment geometries oriented from a to b (metric CRS).
    tree
        STRtree over `seg_geom`.
    """

    crs: CRS
    mode: str
    node_ids: np.ndarray
    node_xy: np.ndarray
    csr: csr_matrix
    seg_a: np.ndarray
    seg_b: np.ndarray
    seg_tt_ab: np.ndarray
    seg_tt_ba: np.ndarray
    seg_geom: np.ndarray
    tree: shapely.STRtree

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_ids)

    @cached_property
    def _pieces(self) -> _PieceIndex | None:
        """Index for bulk snapping, built on first use; None if a segment is not a LineString."""
        return _build_piece_index(self.seg_geom)


def compile_network(roads: RoadNetwork | nx.MultiDiGraph) -> CompiledNetwork:
    """Compile a road network for bulk routing.

    Parameters
    ----------
    roads
        A :class:`planner.network.RoadNetwork` (from
        :func:`planner.network.load_roads`), or a projected graph from
        :func:`planner.network.load_network` (metric CRS, edge
        ``travel_time`` in seconds and ``geometry``).

    Returns
    -------
    net
        The compiled network.

    Examples
    --------
    >>> from planner import datasets, network
    >>> G = network.load_network(datasets.get_path("guanggu_osm"), mode="walk")
    >>> net = compile_network(G)
    >>> net.n_nodes == len(G)
    True
    """
    if not isinstance(roads, nx.Graph):
        return _compile_roads(roads)
    G = roads
    nodes = list(G.nodes)
    index = {nd: i for i, nd in enumerate(nodes)}
    node_xy = np.array([[d["x"], d["y"]] for _, d in G.nodes(data=True)], dtype=float).reshape(-1, 2)
    rows = [(index[a], index[b], d["travel_time"], d["length"], d.get("geometry")) for a, b, d in G.edges(data=True)]
    u, v, tt, length, geom = zip(*rows, strict=True) if rows else ((), (), (), (), ())
    geoms = np.empty(len(rows), dtype=object)
    geoms[:] = geom
    u, v = np.array(u, dtype=np.int64), np.array(v, dtype=np.int64)
    tt, length = np.array(tt, dtype=float), np.array(length, dtype=float)
    return compile_edges(np.array(nodes, dtype=object), node_xy, u, v, tt, length, geometry=geoms,
                         crs=G.graph["crs"], mode=str(G.graph.get("mode", "walk")))


def _compile_roads(roads: RoadNetwork) -> CompiledNetwork:
    """Compile a RoadNetwork: its directed edges, geometry reversed for the b→a ones."""
    d = roads.directed_edges()
    piece, rev = d["piece"], d["reverse"]
    geoms = np.asarray(roads.geometry, dtype=object)[piece]  # a copy
    if rev.any():
        geoms[rev] = shapely.reverse(geoms[rev])
    return compile_edges(np.asarray(roads.node_id, dtype=object), roads.node_xy, d["u"], d["v"],
                         np.asarray(roads.travel_time_s, dtype=float)[piece], np.asarray(roads.length_m, dtype=float)[piece],
                         geometry=geoms, crs=roads.crs, mode=str(roads.mode))


def compile_edges(
    node_ids: np.ndarray,
    node_xy: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    travel_time_s: np.ndarray,
    length_m: np.ndarray,
    *,
    geometry: np.ndarray | None = None,
    crs: Any,
    mode: str = "walk",
) -> CompiledNetwork:
    """Compile a network given as arrays of directed edges (no networkx graph needed).

    This is how very large networks (a million nodes) are routed without
    building a networkx graph first.

    Parameters
    ----------
    node_ids
        Label of each node.
    node_xy
        Node coordinates in a metric CRS, shape (n, 2).
    u, v
        Matrix indices (0..n-1) of each directed edge's start and end.
    travel_time_s
        Edge travel times in seconds.
    length_m
        Edge lengths in metres (used to tell parallel roads apart).
    geometry
        Edge LineStrings from u to v (metric CRS); missing entries (None) and
        ``geometry=None`` mean straight lines between the nodes.
    crs
        The metric CRS.
    mode
        Travel mode of the times.

    Returns
    -------
    net
        The compiled network.
    """
    n = len(node_ids)
    u, v = np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)
    tt = np.maximum(np.asarray(travel_time_s, dtype=float), _MIN_EDGE_S)
    e = pd.DataFrame({"u": u, "v": v, "tt": tt})
    best = e.groupby(["u", "v"], as_index=False, sort=False)["tt"].min()
    csr = coo_matrix((best["tt"].to_numpy(), (best["u"].to_numpy(), best["v"].to_numpy())), shape=(n, n)).tocsr()

    # undirected road segments for snapping: one per physical geometry (ends + length to 0.1 m)
    a, b = np.minimum(u, v), np.maximum(u, v)
    forward = u == a
    e = pd.DataFrame({"a": a, "b": b, "len_key": np.round(np.asarray(length_m, dtype=float) * 10).astype(np.int64),
                      "tt_ab": np.where(forward, tt, np.inf), "tt_ba": np.where(forward, np.inf, tt),
                      "row": np.arange(len(u))})
    seg = e.groupby(["a", "b", "len_key"], sort=False).agg(
        tt_ab=("tt_ab", "min"), tt_ba=("tt_ba", "min"), row=("row", "first")).reset_index()
    rows = seg["row"].to_numpy()
    seg_a, seg_b = seg["a"].to_numpy(dtype=np.int64), seg["b"].to_numpy(dtype=np.int64)
    if geometry is None:
        seg_geom = np.empty(len(rows), dtype=object)
    else:
        seg_geom = np.asarray(geometry, dtype=object)[rows].copy()
    missing = np.array([g is None for g in seg_geom], dtype=bool)
    if missing.any():
        pts = np.stack([node_xy[seg_a[missing]], node_xy[seg_b[missing]]], axis=1)
        seg_geom[missing] = shapely.linestrings(pts)
    # orient every geometry from a to b
    flip = ~forward[rows] & ~missing
    if flip.any():
        seg_geom[flip] = shapely.reverse(seg_geom[flip])
    return CompiledNetwork(
        crs=CRS.from_user_input(crs),
        mode=mode,
        node_ids=np.asarray(node_ids, dtype=object),
        node_xy=np.asarray(node_xy, dtype=float),
        csr=csr,
        seg_a=seg_a,
        seg_b=seg_b,
        seg_tt_ab=seg["tt_ab"].to_numpy(dtype=float),
        seg_tt_ba=seg["tt_ba"].to_numpy(dtype=float),
        seg_geom=seg_geom,
        tree=shapely.STRtree(seg_geom),
    )


def access_speed_mps(access_speed_kph: float | None = None) -> float:
    """Return the access-leg speed in m/s (walking speed unless set).

    Parameters
    ----------
    access_speed_kph
        Speed in km/h; ``settings.ACCESS_SPEED_KPH`` or, if that is None,
        ``settings.WALK_SPEED_KPH`` when not given.

    Returns
    -------
    speed_mps
        Speed in metres per second.
    """
    kph = access_speed_kph or settings.ACCESS_SPEED_KPH or settings.WALK_SPEED_KPH
    return float(kph) / 3.6


def snap_points(
    net: CompiledNetwork,
    points: gpd.GeoSeries | gpd.GeoDataFrame,
    *,
    max_snap_m: float | None = None,
    access_speed_kph: float | None = None,
) -> pd.DataFrame:
    """Snap points onto the nearest road segment.

    Parameters
    ----------
    net
        Compiled network.
    points
        Points (any CRS); polygons are represented by their centroids.
    max_snap_m
        Largest straight-line distance in metres to a road; farther points
        are unsnapped. Defaults to ``settings.MAX_SNAP_M``.
    access_speed_kph
        Speed of the access leg in km/h (walking speed by default).

    Returns
    -------
    snapped
        Indexed like `points`: ``segment`` (-1 if unsnapped), ``frac``
        (position along the segment from a to b, 0-1), ``snap_m`` (metres to
        the nearest road, also for unsnapped points), ``access_s`` (seconds;
        NaN if unsnapped) and ``snapped`` (bool).
    """
    max_snap = settings.MAX_SNAP_M if max_snap_m is None else float(max_snap_m)
    geo = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    n = len(geo)
    pieces = net._pieces if n >= _BULK_SNAP_MIN_POINTS else None
    xy = _metric_xy(geo, net.crs) if pieces is not None else None
    geoms = None
    if xy is None:
        geoms = geo.to_crs(net.crs).to_numpy()
        if len(geoms) and not (shapely.get_type_id(geoms) == 0).all():
            geoms = shapely.centroid(geoms)
        if pieces is not None:
            xy = shapely.get_coordinates(geoms)
            if len(xy) != n or not np.isfinite(xy).all():  # not one finite point each (empty geometries)
                xy = None
    seg = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.nan)
    frac = np.full(n, np.nan)
    search = np.arange(n)  # points left to the STRtree search
    if xy is not None:
        seg, dist, frac, done = _snap_bulk(pieces, xy, max_snap)
        search = np.flatnonzero(~done)
    if len(search):
        g = geoms[search] if geoms is not None else shapely.points(xy[search])
        # a bounded search is much faster; only the points it misses get the unbounded one (for reporting)
        (pi, si), d = net.tree.query_nearest(g, max_distance=max_snap, return_distance=True, all_matches=False)
        seg[search[pi]], dist[search[pi]] = si, d
        rest = np.flatnonzero(np.isnan(dist[search]))
        if len(rest):
            (pj, _), dj = net.tree.query_nearest(g[rest], return_distance=True, all_matches=False)
            dist[search[rest[pj]]] = dj
        found = np.flatnonzero(seg[search] >= 0)
        if len(found):
            frac[search[found]] = shapely.line_locate_point(net.seg_geom[seg[search[found]]], g[found], normalized=True)
    ok = seg >= 0
    return pd.DataFrame(
        {"segment": seg, "frac": frac, "snap_m": dist,
         "access_s": np.where(ok, dist / access_speed_mps(access_speed_kph), np.nan), "snapped": ok},
        index=geo.index,
    )


def _partial(frac: np.ndarray, tt: np.ndarray) -> np.ndarray:
    """Seconds to travel `frac` of a segment taking `tt` seconds; 0 for frac 0 even if tt is inf."""
    with np.errstate(invalid="ignore"):
        return np.where(frac == 0, 0.0, frac * tt)


def _reverse_graph_with_sources(net: CompiledNetwork, fac: pd.DataFrame) -> tuple[csr_matrix, np.ndarray]:
    """Reversed graph plus one virtual source node per snapped facility.

    In the reversed graph a path from a facility's virtual node to node i has
    the length of the fastest trip from i to that facility.
    """
    n = net.n_nodes
    k = len(fac)
    virt = np.arange(n, n + k)
    seg = fac["segment"].to_numpy()
    frac = fac["frac"].to_numpy()
    acc = fac["access_s"].to_numpy()
    # reach the facility from a by moving a->b: frac * tt_ab ; from b by moving b->a: (1-frac) * tt_ba
    w_a = acc + _partial(frac, net.seg_tt_ab[seg])
    w_b = acc + _partial(1.0 - frac, net.seg_tt_ba[seg])
    rows = np.concatenate([np.arange(k), np.arange(k)])
    cols = np.concatenate([net.seg_a[seg], net.seg_b[seg]])
    w = np.concatenate([w_a, w_b])
    keep = np.isfinite(w)
    rows, cols, w = rows[keep], cols[keep], np.maximum(w[keep], _MIN_EDGE_S)
    # duplicates (a facility on a loop segment, a == b) must take the minimum, not the sum
    order = np.lexsort((w, cols, rows))
    rows, cols, w = rows[order], cols[order], w[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    V = coo_matrix((w[first], (rows[first], cols[first])), shape=(k, n)).tocsr()
    # stack the reversed road graph (n x n) over the virtual rows (k x n) as one square CSR matrix
    Rt = net.csr.T.tocsr()
    indptr = np.concatenate([Rt.indptr, Rt.indptr[-1] + V.indptr[1:]])
    R = csr_matrix((np.concatenate([Rt.data, V.data]), np.concatenate([Rt.indices, V.indices]), indptr),
                   shape=(n + k, n + k))
    return R, virt


def _origin_times_from_node_times(
    net: CompiledNetwork, org: pd.DataFrame, node_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Time from snapped origins given node→target times; also the node used (-1 if none)."""
    seg = org["segment"].to_numpy()
    frac = org["frac"].to_numpy()
    a, b = net.seg_a[seg], net.seg_b[seg]
    via_b = _partial(1.0 - frac, net.seg_tt_ab[seg]) + node_t[..., b]
    via_a = _partial(frac, net.seg_tt_ba[seg]) + node_t[..., a]
    use_b = via_b <= via_a
    t = np.where(use_b, via_b, via_a) + org["access_s"].to_numpy()
    node = np.where(use_b, b, a)
    node = np.where(np.isfinite(t), node, -1)
    return t, node


def _same_segment_times(net: CompiledNetwork, org: pd.DataFrame, fac: pd.DataFrame) -> pd.DataFrame:
    """Direct along-segment trips for origins and facilities on one segment."""
    o = org.reset_index(names="origin_pos").assign(origin_pos=np.arange(len(org)))
    f = fac.reset_index(names="fac_pos").assign(fac_pos=np.arange(len(fac)))
    m = o[["origin_pos", "segment", "frac", "access_s"]].merge(
        f[["fac_pos", "segment", "frac", "access_s"]], on="segment", suffixes=("_o", "_f"))
    if m.empty:
        return pd.DataFrame({"origin_pos": [], "fac_pos": [], "t": []})
    seg = m["segment"].to_numpy()
    d = m["frac_f"].to_numpy() - m["frac_o"].to_numpy()
    along = np.where(d >= 0, _partial(np.maximum(d, 0), net.seg_tt_ab[seg]), _partial(np.maximum(-d, 0), net.seg_tt_ba[seg]))
    m["t"] = m["access_s_o"].to_numpy() + along + m["access_s_f"].to_numpy()
    return m[["origin_pos", "fac_pos", "t"]]


def nearest_facility_times(
    net: CompiledNetwork,
    origins: pd.DataFrame,
    facilities: pd.DataFrame,
) -> pd.DataFrame:
    """Travel time from every origin to its nearest facility.

    Parameters
    ----------
    net
        Compiled network.
    origins, facilities
        Output of :func:`snap_points`; unsnapped rows are allowed and get NaN.

    Returns
    -------
    nearest
        Indexed like `origins`: ``facility_id`` (None where unreachable) and
        ``travel_time_s`` (NaN where unreachable).
    """
    out = pd.DataFrame({"facility_id": pd.Series([None] * len(origins), dtype="object"),
                        "travel_time_s": np.nan}, index=origins.index)
    fac = facilities[facilities["snapped"]]
    org_mask = origins["snapped"].to_numpy()
    org = origins[org_mask]
    if fac.empty or org.empty:
        return out
    R, virt = _reverse_graph_with_sources(net, fac)
    dist, _, sources = dijkstra(R, directed=True, indices=virt, min_only=True, return_predecessors=True)
    t, node = _origin_times_from_node_times(net, org, dist[: net.n_nodes])
    fac_pos = np.where(node >= 0, sources[np.maximum(node, 0)] - net.n_nodes, -1)
    same = _same_segment_times(net, org, fac)
    if len(same):
        same = same.sort_values("t").drop_duplicates("origin_pos")
        op = same["origin_pos"].to_numpy(dtype=int)
        better = same["t"].to_numpy() < t[op]
        t[op[better]] = same["t"].to_numpy()[better]
        fac_pos[op[better]] = same["fac_pos"].to_numpy(dtype=int)[better]
    reach = np.isfinite(t) & (fac_pos >= 0)
    ids = np.array([None] * len(org), dtype=object)
    ids[reach] = fac.index.to_numpy()[fac_pos[reach]]
    out.loc[org.index, "facility_id"] = ids
    out.loc[org.index, "travel_time_s"] = np.where(reach, t, np.nan)
    return out


def facility_node_times(
    net: CompiledNetwork,
    facilities: pd.DataFrame,
    *,
    max_minutes: float | None = None,
    chunk_size: int = 64,
) -> Any:
    """Yield, per chunk of facilities, the time from every node to each facility.

    Parameters
    ----------
    net
        Compiled network.
    facilities
        Snapped facilities (output of :func:`snap_points`, snapped rows only).
    max_minutes
        Stop searching beyond this many minutes (times beyond are ``inf``).
    chunk_size
        Facilities per Dijkstra call; bounds memory at chunk × nodes floats.

    Yields
    ------
    ids, times
        Facility ids of the chunk and an array (chunk, n_nodes) of seconds.
    """
    fac = facilities[facilities["snapped"]]
    limit = np.inf if max_minutes is None else float(max_minutes) * 60.0
    R, virt = _reverse_graph_with_sources(net, fac)
    for start in range(0, len(fac), chunk_size):
        idx = virt[start:start + chunk_size]
        dist = dijkstra(R, directed=True, indices=idx, limit=limit)
        yield fac.index.to_numpy()[start:start + chunk_size], dist[:, : net.n_nodes]


def od_travel_times(
    net: CompiledNetwork,
    origins: pd.DataFrame,
    destinations: pd.DataFrame,
    *,
    max_minutes: float | None = None,
    chunk_size: int = 64,
) -> pd.DataFrame:
    """Long-form origin-destination travel times.

    Parameters
    ----------
    net
        Compiled network.
    origins, destinations
        Output of :func:`snap_points`.
    max_minutes
        Keep only pairs within this many minutes; all reachable pairs if None.
    chunk_size
        Destinations per Dijkstra call.

    Returns
    -------
    od
        Columns ``origin_id``, ``destination_id``, ``travel_time_s``; one row
        per reachable pair (within `max_minutes` when given).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from planner import datasets, network
    >>> G = network.load_network(datasets.get_path("guanggu_osm"), mode="walk")
    >>> net = compile_network(G)
    >>> pts = gpd.GeoSeries.from_xy([114.510, 114.520], [30.485, 30.486], crs=4326)
    >>> s = snap_points(net, pts)
    >>> od = od_travel_times(net, s, s)
    >>> len(od)
    4
    >>> # a point to itself: its walk to the road and back
    >>> same = od[od["origin_id"] == od["destination_id"]]
    >>> bool(np.allclose(same["travel_time_s"], 2 * s["access_s"]))
    True
    """
    org = origins[origins["snapped"]]
    dst = destinations[destinations["snapped"]]
    limit = np.inf if max_minutes is None else float(max_minutes) * 60.0
    parts = []
    same = _same_segment_times(net, org, dst)
    for ids, node_t in facility_node_times(net, dst, max_minutes=max_minutes, chunk_size=chunk_size):
        t, _ = _origin_times_from_node_times(net, org, node_t)
        start = dst.index.get_indexer(ids)[0]
        if len(same):
            s = same[(same["fac_pos"] >= start) & (same["fac_pos"] < start + len(ids))]
            r, c = s["fac_pos"].to_numpy(dtype=int) - start, s["origin_pos"].to_numpy(dtype=int)
            np.minimum.at(t, (r, c), s["t"].to_numpy())
        r, c = np.nonzero(t <= limit)
        parts.append(pd.DataFrame({"origin_id": org.index.to_numpy()[c], "destination_id": ids[r], "travel_time_s": t[r, c]}))
    if not parts:
        return pd.DataFrame({"origin_id": [], "destination_id": [], "travel_time_s": []})
    return pd.concat(parts, ignore_index=True)
