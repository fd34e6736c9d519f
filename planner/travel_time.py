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

Many points at once (demand cells) are snapped through a k-d tree over short
straight pieces of the roads, which finds each point's nearest segment without
a per-point tree search; GEOS then gives the exact distance. Points whose
nearest segment is not clear-cut (a tie within a micrometre, or a point far
from every road) go through the STRtree search, so the result is the same as
the STRtree search for every point.

All times are *to* the facility (residents travelling to care). Shortest paths
to many facilities come from one multi-source Dijkstra on the reversed graph
(``min_only=True``), so the cost of "nearest institution for every cell" does
not grow with the number of institutions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from . import settings

logger = logging.getLogger(__name__)

_MIN_EDGE_S = 1e-3  # seconds; csgraph would drop explicit zero weights
_PIECE_STEP_M = 100.0  # metres; longest road piece the bulk snapping index holds as one midpoint
_BULK_SNAP_MIN_POINTS = 2_000  # fewer points are snapped by the STRtree search alone
_BULK_SNAP_CHUNK = 32_768  # points per vectorised batch (bounds memory at chunk x k floats)
_BULK_SNAP_K = (8, 32)  # nearest piece midpoints tried per point, in rounds
_TIE_M = 1e-6  # metres; nearest segments closer than this to each other count as a tie
_SLACK_M = 1e-3  # metres; rounding allowance in the bulk index's search radii


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


@dataclass(frozen=True)
class _PieceIndex:
    """Every straight piece (two consecutive vertices) of every road segment.

    The k-d tree holds the midpoints of the pieces cut into sub-pieces of at
    most ``_PIECE_STEP_M``; a point at distance ``d`` from a piece is within
    ``d + half_m`` of one of its midpoints.
    """

    ax: np.ndarray
    ay: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    seg: np.ndarray  # segment of each piece
    piece: np.ndarray  # piece of each midpoint in `kd`
    half_m: float  # largest half-length of a sub-piece, metres
    kd: cKDTree


def _build_piece_index(seg_geom: np.ndarray) -> _PieceIndex | None:
    if len(seg_geom) == 0 or not (shapely.get_type_id(seg_geom) == 1).all() or shapely.is_empty(seg_geom).any():
        return None
    xy, gi = shapely.get_coordinates(seg_geom, return_index=True)
    k = np.flatnonzero(gi[1:] == gi[:-1])
    a, b = xy[k], xy[k + 1]
    length = np.hypot(b[:, 0] - a[:, 0], b[:, 1] - a[:, 1])
    n_sub = np.maximum(np.ceil(length / _PIECE_STEP_M), 1).astype(np.int64)
    piece = np.repeat(np.arange(len(k)), n_sub)
    j = np.arange(len(piece)) - np.repeat(np.cumsum(n_sub) - n_sub, n_sub)
    t = ((j + 0.5) / n_sub[piece])[:, None]
    mid = a[piece] + (b[piece] - a[piece]) * t
    return _PieceIndex(ax=a[:, 0].copy(), ay=a[:, 1].copy(), bx=b[:, 0].copy(), by=b[:, 1].copy(), seg=gi[k],
                       piece=piece, half_m=float((length / n_sub).max()) / 2.0,
                       kd=cKDTree(mid, balanced_tree=False, compact_nodes=False))  # faster to build and to query here


def _nearest_segments_bulk(idx: _PieceIndex, xy: np.ndarray, max_snap_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Find the nearest segment of each point where it is clear-cut.

    Returns
    -------
    seg, far
        ``seg``: the nearest segment, -1 where it is not settled here (a tie
        within ``_TIE_M``, or not enough candidates); ``far``: the point is
        certainly farther than `max_snap_m` from every road.
    """
    n = len(xy)
    seg = np.full(n, -1, dtype=np.int64)
    far = np.zeros(n, dtype=bool)
    n_mid = len(idx.piece)
    for lo in range(0, n, _BULK_SNAP_CHUNK):
        todo = np.arange(lo, min(lo + _BULK_SNAP_CHUNK, n))
        for k in _BULK_SNAP_K:
            if not len(todo):
                break
            k = min(k, n_mid)
            dk, ik = idx.kd.query(xy[todo], k=k)
            dk, ik = dk.reshape(len(todo), k), ik.reshape(len(todo), k)
            pc = idx.piece[ik]
            ax, ay = idx.ax[pc], idx.ay[pc]
            dx, dy = idx.bx[pc] - ax, idx.by[pc] - ay
            px, py = xy[todo, :1] - ax, xy[todo, 1:] - ay
            l2 = dx * dx + dy * dy
            with np.errstate(invalid="ignore", divide="ignore"):
                t = np.clip(np.where(l2 > 0, (px * dx + py * dy) / l2, 0.0), 0.0, 1.0)
            d = np.hypot(px - t * dx, py - t * dy)
            sg = idx.seg[pc]
            rows = np.arange(len(todo))
            jb = d.argmin(axis=1)
            best_d, best_s = d[rows, jb], sg[rows, jb]
            second = np.where(sg != best_s[:, None], d, np.inf).min(axis=1)
            # every piece within best_d (+ tie margin) has a midpoint within best_d + half: all among the k?
            complete = (k == n_mid) | (dk[:, -1] > best_d + idx.half_m + _TIE_M + _SLACK_M)
            is_far = dk[:, 0] - idx.half_m - _SLACK_M > max_snap_m
            tie = second - best_d <= _TIE_M
            ok = complete & ~tie & ~is_far
            seg[todo[ok]] = best_s[ok]
            far[todo[is_far]] = True
            todo = todo[~ok & ~is_far & ~tie]
    return seg, far


def compile_network(G: nx.MultiDiGraph) -> CompiledNetwork:
    """Compile a projected graph with ``travel_time`` edges for bulk routing.

    Parameters
    ----------
    G
        Graph from :func:`planner.network.load_network` (metric CRS, edge
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
    nodes = list(G.nodes)
    index = {nd: i for i, nd in enumerate(nodes)}
    node_xy = np.array([[G.nodes[nd]["x"], G.nodes[nd]["y"]] for nd in nodes], dtype=float)
    m = G.number_of_edges()
    u = np.empty(m, dtype=np.int64)
    v = np.empty(m, dtype=np.int64)
    tt = np.empty(m)
    length = np.empty(m)
    geoms = np.empty(m, dtype=object)
    for i, (a, b, d) in enumerate(G.edges(data=True)):
        u[i], v[i], tt[i], length[i], geoms[i] = index[a], index[b], d["travel_time"], d["length"], d.get("geometry")
    return compile_edges(np.array(nodes, dtype=object), node_xy, u, v, tt, length, geometry=geoms,
                         crs=G.graph["crs"], mode=str(G.graph.get("mode", "walk")))


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
    geoms = geo.to_crs(net.crs).to_numpy()
    if len(geoms) and not (shapely.get_type_id(geoms) == 0).all():
        geoms = shapely.centroid(geoms)
    n = len(geoms)
    seg = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.nan)
    search = np.arange(n)  # points left to the STRtree search
    pieces = net._pieces if n >= _BULK_SNAP_MIN_POINTS else None
    if pieces is not None:
        xy = shapely.get_coordinates(geoms)
        if len(xy) == n and np.isfinite(xy).all():  # one finite point each (no empty geometries)
            bulk_seg, far = _nearest_segments_bulk(pieces, xy, max_snap)
            done = np.flatnonzero(bulk_seg >= 0)
            d = shapely.distance(geoms[done], net.seg_geom[bulk_seg[done]])  # the STRtree search's own distance
            dist[done] = d
            seg[done[d <= max_snap]] = bulk_seg[done[d <= max_snap]]
            search = np.flatnonzero((bulk_seg < 0) & ~far)
    if len(search):
        # a bounded search is much faster; only the points it misses get the unbounded one (for reporting)
        (pi, si), d = net.tree.query_nearest(geoms[search], max_distance=max_snap, return_distance=True, all_matches=False)
        seg[search[pi]], dist[search[pi]] = si, d
    rest = np.flatnonzero(np.isnan(dist))
    if len(rest):
        (pj, _), dj = net.tree.query_nearest(geoms[rest], return_distance=True, all_matches=False)
        dist[rest[pj]] = dj
    ok = seg >= 0
    frac = np.full(n, np.nan)
    if ok.any():
        frac[ok] = shapely.line_locate_point(net.seg_geom[seg[ok]], geoms[ok], normalized=True)
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
