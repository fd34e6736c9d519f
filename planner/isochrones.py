"""Isochrones: the area from which an institution is reached within a time.

Isochrones are traced from the coverage surface itself. Travel times are
evaluated on a fine square grid (``settings.ISOCHRONE_CELL_M``, 50 m by
default) with exactly the definition coverage uses
(:mod:`planner.travel_time`): each grid-cell centre is snapped onto the
nearest road with :func:`~planner.travel_time.snap_points` (one bulk call for
the whole grid), and its time is the straight-line access leg + the partial
segment + the network time to the institution, including the institution's
own along-segment and access legs (or the direct trip when both lie on one
segment). Demand points handed in as `samples` are evaluated the same way, so
that the cell holding a demand point that coverage counts as reached is
reached too.

The cells reached within a threshold (time in minutes, rounded to 0.001 as
coverage rounds ``travel_time_min``) are traced into filled polygons with
holes by :func:`rasterio.features.shapes`. A reached cell is the unit: the
polygon is the exact union of the reached cells' squares, so every reached
cell centre and every reached demand point lies inside it. The outline is
not simplified further: its vertices are the corners of a staircase of
cells, and a tolerance below half a cell (the most that keeps every
reached centre inside) removes next to none of them (none of the 563,893
on the Wuhan drive run, with a quarter of a cell). Each institution is only evaluated
within its reach (the segments its network times touch, plus the access walk
that time leaves), so the cost grows with the reached area, not with the
city.

The dissolved layers (per threshold, optionally per tier) are traced from the
union of the very same reached cells: no second polygon union is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from tqdm.auto import tqdm

from . import settings
from ._snap import _BULK_SNAP_MIN_POINTS, _metric_xy, _no_road_within, _snap_bulk
from ._validate import check_limit, check_minutes
from .travel_time import (
    CompiledNetwork,
    _partial,
    access_speed_mps,
    facility_node_times,
    snap_points,
)

logger = logging.getLogger(__name__)

_ALL_TIERS = "all"  # tier label of the dissolved layer over every institution


class IsochroneLayers(NamedTuple):
    """Isochrone polygons per institution and their dissolved layers.

    Attributes
    ----------
    per_institution
        As returned by :func:`compute_isochrones`.
    dissolved
        One row per threshold (and tier): ``minutes``, ``tier`` (``"all"``
        or a tier), ``institutions`` (how many were united), ``area_km2``,
        ``geometry`` (EPSG:4326).
    """

    per_institution: gpd.GeoDataFrame
    dissolved: gpd.GeoDataFrame


class _Grid(NamedTuple):
    """A square grid aligned on multiples of `cell` metres; row 0 at the top."""

    x0: float  # metres, left edge
    y1: float  # metres, top edge
    cell: float  # metres
    n_rows: int
    n_cols: int

    def centres(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.x0 + (cols + 0.5) * self.cell, self.y1 - (rows + 0.5) * self.cell

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.floor((self.y1 - y) / self.cell).astype(np.int64), np.floor((x - self.x0) / self.cell).astype(np.int64)

    def window(self, bounds: np.ndarray) -> tuple[int, int, int, int]:
        """Rows r0:r1 and columns c0:c1 of the cells touching `bounds` (xmin, ymin, xmax, ymax), clipped."""
        xmin, ymin, xmax, ymax = bounds
        c0 = max(0, int(np.floor((xmin - self.x0) / self.cell)))
        c1 = min(self.n_cols, int(np.floor((xmax - self.x0) / self.cell)) + 1)
        r0 = max(0, int(np.floor((self.y1 - ymax) / self.cell)))
        r1 = min(self.n_rows, int(np.floor((self.y1 - ymin) / self.cell)) + 1)
        return r0, max(r0, r1), c0, max(c0, c1)


_DIJKSTRA_CHUNK = 32  # institutions per limited Dijkstra call (bounds the dense chunk x nodes array)
_TIME_SLACK_S = 1.0  # seconds; more than the 0.03 s coverage's rounding of minutes to 0.001 can add


class _NodeTimes(NamedTuple):
    """Finite network times to the institutions, sparse: institution `fac` is reached from `node` in `t` seconds."""

    fac: np.ndarray  # ascending
    node: np.ndarray
    t: np.ndarray


def _node_segments(net: CompiledNetwork) -> tuple[np.ndarray, np.ndarray]:
    """Return the segments at each node: those of node i are ``seg[ptr[i]:ptr[i + 1]]``."""
    ends = np.concatenate([net.seg_a, net.seg_b])
    order = np.argsort(ends, kind="stable")
    ptr = np.r_[0, np.cumsum(np.bincount(ends, minlength=net.n_nodes))]
    return ptr, np.tile(np.arange(len(net.seg_a)), 2)[order]


def _ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start[i], start[i] + count[i])``."""
    return np.arange(int(count.sum())) + np.repeat(start - (np.cumsum(count) - count), count)


def _subnetwork(net: CompiledNetwork, keep: np.ndarray) -> tuple[CompiledNetwork, np.ndarray]:
    """Return the network induced by the nodes `keep` (ascending), plus one isolated node for the ends left out.

    Also returns the original index of each of its nodes (-1 for the isolated one).
    """
    new = np.full(net.n_nodes, len(keep), dtype=np.int64)
    new[keep] = np.arange(len(keep))
    csr = net.csr[keep][:, keep]
    csr.resize((len(keep) + 1, len(keep) + 1))
    sub = CompiledNetwork(crs=net.crs, mode=net.mode, node_ids=np.r_[net.node_ids[keep], [None]],
                          node_xy=np.r_[net.node_xy[keep], [[np.nan, np.nan]]], csr=csr, seg_a=new[net.seg_a],
                          seg_b=new[net.seg_b], seg_tt_ab=net.seg_tt_ab, seg_tt_ba=net.seg_tt_ba, seg_geom=net.seg_geom,
                          tree=net.tree)
    return sub, np.r_[keep, -1]


def _reach_pass(net: CompiledNetwork, fac: pd.DataFrame, *, seconds: float, max_snap: float, v_acc: float,
                discs: np.ndarray) -> tuple[np.ndarray, _NodeTimes]:
    """Each institution's reach bounds (xmin, ymin, xmax, ymax; NaN if none), and its finite node times.

    A point is reached through a segment with an end reached in time (or the
    institution's own segment, from its access leg), from at most `max_snap`
    metres and no farther than the access walk the time left allows. The
    searches run on the nodes within an institution's disc (x, y, radius): a
    path within `seconds` never leaves it, so the times are the same.
    """
    from scipy.spatial import cKDTree

    seg_bounds = shapely.bounds(net.seg_geom)
    d, _ = cKDTree(discs[:, :2]).query(net.node_xy, distance_upper_bound=float(np.max(discs[:, 2])))
    keep = np.flatnonzero(np.isfinite(d))
    sub, orig = _subnetwork(net, keep)
    ptr, node_seg = _node_segments(net)
    fac_seg, fac_acc = fac["segment"].to_numpy(dtype=np.int64), fac["access_s"].to_numpy(dtype=float)
    reach = np.full((len(fac), 4), np.nan)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    pos = 0
    for ids, sub_t in facility_node_times(sub, fac, max_minutes=seconds / 60.0, chunk_size=_DIJKSTRA_CHUNK):
        sub_t[:, -1] = np.inf  # the ends outside every disc
        k, node = np.nonzero(np.isfinite(sub_t))  # row-major: by institution, then node
        t_k = sub_t[k, node]
        node = orig[node]
        parts.append((pos + k, node, t_k))
        # (institution, segment) pairs: the segments at every node reached in time, then each one's own segment
        near = t_k <= seconds
        kn, nn = k[near], node[near]
        cnt = ptr[nn + 1] - ptr[nn]
        own = np.arange(len(ids))
        pk = np.concatenate([np.repeat(kn, cnt), own])
        ps = np.concatenate([node_seg[_ranges(ptr[nn], cnt)], fac_seg[pos + own]])
        tmin = np.fmin(sub_t[pk, sub.seg_a[ps]], sub_t[pk, sub.seg_b[ps]])
        tmin[len(pk) - len(own):] = np.minimum(tmin[len(pk) - len(own):], fac_acc[pos + own])
        hit = tmin <= seconds
        pk, ps, tmin = pk[hit], ps[hit], tmin[hit]
        if len(pk):
            order = np.argsort(pk, kind="stable")
            pk, ps, tmin = pk[order], ps[order], tmin[order]
            r = np.minimum(max_snap, (seconds - tmin) * v_acc)
            b = seg_bounds[ps]
            first = np.flatnonzero(np.r_[True, pk[1:] != pk[:-1]])
            reach[pos + pk[first]] = np.c_[np.minimum.reduceat(b[:, 0] - r, first), np.minimum.reduceat(b[:, 1] - r, first),
                                           np.maximum.reduceat(b[:, 2] + r, first), np.maximum.reduceat(b[:, 3] + r, first)]
        pos += len(ids)
    cat = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, dtype=dt)
           for i, dt in enumerate((np.int64, np.int64, float))]
    return reach, _NodeTimes(*cat)


def _max_speed_mps(net: CompiledNetwork, v_acc: float) -> float:
    """Return the fastest any trip moves in a straight line: access walks, partial segments, node-to-node hops."""
    v = v_acc
    tt = np.fmin(net.seg_tt_ab, net.seg_tt_ba)
    ok = np.isfinite(tt) & (tt > 0)
    if ok.any():
        v = max(v, float(np.max(shapely.length(net.seg_geom[ok]) / tt[ok])))
    csr = net.csr.tocoo()
    if csr.nnz:
        d = net.node_xy[csr.row] - net.node_xy[csr.col]
        pos = csr.data > 0
        v = max(v, float(np.max(np.hypot(d[pos, 0], d[pos, 1]) / csr.data[pos], initial=v)))
    return v


def _study_grid(bounds: np.ndarray, discs: np.ndarray, *, cell: float) -> tuple[_Grid, np.ndarray]:
    """Return the grid over every institution's reach, and which of its cells an institution may reach.

    A candidate cell lies in an institution's reach bounds and has a point
    within its disc (x, y, radius: no trip moves farther in the time). Cells
    far from every road are left to the snapping, which tells them at once.
    """
    x0, y0 = np.floor(np.nanmin(bounds[:, :2], axis=0) / cell) * cell
    x1, y1 = np.ceil(np.nanmax(bounds[:, 2:], axis=0) / cell) * cell
    grid = _Grid(float(x0), float(y1), cell, max(1, round((y1 - y0) / cell)), max(1, round((x1 - x0) / cell)))
    candidate = np.zeros((grid.n_rows, grid.n_cols), dtype=bool)
    half_diag = cell * np.sqrt(0.5)
    for b, (qx, qy, rad) in zip(bounds, discs, strict=True):
        if np.isfinite(b).all():
            r0, r1, c0, c1 = grid.window(b)
            reach = rad + half_diag
            if not reach >= 0:  # the institution's own access leg takes longer than the time
                continue
            if r1 > r0 and c1 > c0 and max(abs(grid.x0 + c0 * cell - qx), abs(grid.x0 + c1 * cell - qx)) ** 2 + max(
                    abs(grid.y1 - r0 * cell - qy), abs(grid.y1 - r1 * cell - qy)) ** 2 <= reach * reach:
                candidate[r0:r1, c0:c1] = True  # the disc holds the whole window (fast modes)
                continue
            x, y = grid.centres(np.arange(r0, r1)[:, None], np.arange(c0, c1)[None, :])
            candidate[r0:r1, c0:c1] |= (x - qx) ** 2 + (y - qy) ** 2 <= reach * reach
    return grid, candidate


def _in_window(flat: np.ndarray, n_cols: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Positions in sorted row-major cell numbers `flat` of those in rows r0:r1 and columns c0:c1."""
    rows = np.arange(r0, r1) * n_cols
    lo, hi = np.searchsorted(flat, rows + c0), np.searchsorted(flat, rows + c1)
    n = hi - lo
    return np.repeat(lo - np.concatenate([[0], np.cumsum(n)[:-1]]), n) + np.arange(int(n.sum()))


def _polygon_from_mask(mask: np.ndarray, grid: _Grid, r0: int, c0: int) -> shapely.Geometry:
    """Trace the reached cells of a window (rows from `r0`, columns from `c0`) into polygons with holes.

    The outline is the exact union of the reached cells' squares: every
    reached cell, and every point in one, is covered. It is not simplified:
    its vertices are the corners of a staircase of cells, and a tolerance
    below half a cell (the most that keeps every reached centre inside)
    removes next to none of them.
    """
    from rasterio.features import shapes
    from rasterio.transform import Affine

    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return shapely.Polygon()
    cols = np.flatnonzero(mask.any(axis=0))
    m = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    r0, c0, cell = r0 + rows[0], c0 + cols[0], grid.cell
    transform = Affine(cell, 0.0, grid.x0 + c0 * cell, 0.0, -cell, grid.y1 - r0 * cell)
    rings, ring_poly = [], []
    for i, (g, _) in enumerate(shapes(m.view(np.uint8), mask=m, connectivity=4, transform=transform)):
        rings.extend(g["coordinates"])
        ring_poly.extend([i] * len(g["coordinates"]))
    # built in bulk: the first ring of each polygon is its shell, the others its holes
    lengths = np.fromiter((len(r) for r in rings), dtype=np.int64, count=len(rings))
    xy = np.fromiter((c for r in rings for p in r for c in p), dtype=float, count=2 * int(lengths.sum())).reshape(-1, 2)
    lr = shapely.linearrings(xy, indices=np.repeat(np.arange(len(rings)), lengths))
    polys = shapely.polygons(lr, indices=np.asarray(ring_poly))
    return polys[0] if len(polys) == 1 else shapely.multipolygons(polys)


_TRACE_BATCH_PIXELS = 4_000_000  # masks traced together in one raster of at most about this many pixels


def _polygons_from_masks(items: list[tuple[np.ndarray, int, int]], grid: _Grid) -> list[shapely.Geometry]:
    """:func:`_polygon_from_mask` of many windows' masks, traced together (one GDAL call per batch).

    Each mask, cropped to its reached cells, gets its own block of rows in one
    labelled raster (an empty row between blocks), traced in pixel units; the
    vertices are then placed as the window's own transform places them
    (``origin + pixel * cell``), so every polygon is the one traced alone.
    """
    from rasterio.features import shapes

    out: list[shapely.Geometry] = [shapely.Polygon()] * len(items)
    crops = []  # (item, cropped mask, x origin, y origin)
    for i, (mask, r0, c0) in enumerate(items):
        rows = np.flatnonzero(mask.any(axis=1))
        if len(rows):
            cols = np.flatnonzero(mask.any(axis=0))
            r, c = r0 + rows[0], c0 + cols[0]
            crops.append((i, mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], grid.x0 + c * grid.cell, grid.y1 - r * grid.cell))
    start = 0
    while start < len(crops):
        stop, width, height = start, 0, 0
        while stop < len(crops) and (stop == start or (height + crops[stop][1].shape[0] + 1) * max(width, crops[stop][1].shape[1])
                                     <= _TRACE_BATCH_PIXELS):
            height += crops[stop][1].shape[0] + 1
            width = max(width, crops[stop][1].shape[1])
            stop += 1
        batch = crops[start:stop]
        label = np.zeros((height, width), dtype=np.int32)
        row0 = np.zeros(len(batch), dtype=np.int64)
        r = 0
        for j, (_, m, _, _) in enumerate(batch):
            label[r:r + m.shape[0], :m.shape[1]][m] = j + 1
            row0[j] = r
            r += m.shape[0] + 1
        rings: list[list[list]] = [[] for _ in batch]  # per mask: its rings
        ring_poly: list[list[int]] = [[] for _ in batch]
        n_poly = [0] * len(batch)
        for g, v in shapes(label, mask=label > 0, connectivity=4):
            j = int(v) - 1
            rings[j].extend(g["coordinates"])
            ring_poly[j].extend([n_poly[j]] * len(g["coordinates"]))
            n_poly[j] += 1
        for j, (i, _, x0, y0) in enumerate(batch):
            lengths = np.fromiter((len(q) for q in rings[j]), dtype=np.int64, count=len(rings[j]))
            px = np.fromiter((c for q in rings[j] for pt in q for c in pt), dtype=float,
                             count=2 * int(lengths.sum())).reshape(-1, 2)
            # as GDAL applies the window's geotransform (cell, 0, x0, 0, -cell, y0) to pixel corners
            xy = np.c_[x0 + px[:, 0] * grid.cell + px[:, 1] * 0.0, y0 + px[:, 0] * 0.0 + (px[:, 1] - row0[j]) * -grid.cell]
            lr = shapely.linearrings(xy, indices=np.repeat(np.arange(len(lengths)), lengths))
            polys = shapely.polygons(lr, indices=np.asarray(ring_poly[j]))
            out[i] = polys[0] if len(polys) == 1 else shapely.multipolygons(polys)
        start = stop
    return out


class _Samples(NamedTuple):
    """Snapped grid-cell centres, then demand points: where isochrone times are evaluated."""

    a: np.ndarray  # segment end nodes of each sample
    b: np.ndarray
    via_a: np.ndarray  # seconds from the sample to node a along its segment, plus its access leg (inf if one-way)
    via_b: np.ndarray  # the same to node b
    acc: np.ndarray  # access leg, seconds
    gidx: np.ndarray  # (rows, cols): the sample of each cell centre, -1 if none (not snapped or far from roads)
    d_idx: np.ndarray  # samples that are snapped demand points, sorted by cell (row-major)
    d_row: np.ndarray
    d_col: np.ndarray
    d_flat: np.ndarray  # row-major cell number of each, ascending
    same_pos: np.ndarray  # direct trips along an institution's own segment: sample, institution, seconds,
    same_fac: np.ndarray  # sorted by institution
    same_t: np.ndarray


def _snap_xy(net: CompiledNetwork, xy: np.ndarray, *, max_snap: float, access_speed_kph: float | None) -> pd.DataFrame:
    """:func:`~planner.travel_time.snap_points` of points given by metric coordinates, without building them.

    ``segment``, ``frac`` and ``access_s`` are those of ``snap_points``; ``snap_m``
    is not computed. Points with certainly no road within `max_snap` are
    unsnapped at once; the bulk snapping settles most others, and the rest
    (ties, points with many candidates) get the STRtree search ``snap_points`` makes.
    """
    pieces = net._pieces if len(xy) >= _BULK_SNAP_MIN_POINTS else None
    if pieces is None:
        return snap_points(net, gpd.GeoSeries(shapely.points(xy), crs=net.crs), max_snap_m=max_snap,
                           access_speed_kph=access_speed_kph)
    seg = np.full(len(xy), -1, dtype=np.int64)
    dist, frac = np.full(len(xy), np.nan), np.full(len(xy), np.nan)
    near = np.flatnonzero(~_no_road_within(pieces, xy, max_snap))
    seg[near], dist[near], frac[near], done = _snap_bulk(pieces, xy[near], max_snap, far_unsnapped=True)
    rest = near[~done]
    if len(rest):  # as snap_points searches them, within max_snap (the distance beyond is not needed)
        g = shapely.points(xy[rest])
        (pi, si), d = net.tree.query_nearest(g, max_distance=max_snap, return_distance=True, all_matches=False)
        seg[rest[pi]], dist[rest[pi]] = si, d
        frac[rest[pi]] = shapely.line_locate_point(net.seg_geom[si], g[pi], normalized=True)
    ok = seg >= 0
    acc = np.where(ok, dist / access_speed_mps(access_speed_kph), np.nan)
    return pd.DataFrame({"segment": seg, "frac": frac, "access_s": acc, "snapped": ok})


def _snap_samples(net: CompiledNetwork, grid: _Grid, candidate: np.ndarray, fac: pd.DataFrame,
                  samples: gpd.GeoSeries | gpd.GeoDataFrame | None, samples_snapped: pd.DataFrame | None, *,
                  max_snap: float, access_speed_kph: float | None) -> _Samples:
    """Snap the candidate cell centres (and the demand points in candidate cells) as coverage snaps cells."""
    cr, cc = np.nonzero(candidate)
    gx, gy = grid.centres(cr, cc)
    cols = ["segment", "frac", "access_s", "snapped"]
    parts = [_snap_xy(net, np.c_[gx, gy], max_snap=max_snap, access_speed_kph=access_speed_kph)[cols]]
    del gx, gy
    rows, colns = [cr], [cc]
    n_grid = len(cr)
    if samples is not None and len(samples):
        geo = samples.geometry if isinstance(samples, gpd.GeoDataFrame) else samples
        dxy = _metric_xy(geo, net.crs)  # what snap_points does to the cells coverage snaps (to the bit)
        if dxy is None:
            dg = geo.to_crs(net.crs).to_numpy()
            if not (shapely.get_type_id(dg) == 0).all():
                dg = shapely.centroid(dg)
            dxy = shapely.get_coordinates(dg).reshape(-1, 2)
        dr, dc = grid.cell_of(dxy[:, 0], dxy[:, 1])
        inside = (dr >= 0) & (dr < grid.n_rows) & (dc >= 0) & (dc < grid.n_cols)
        inside[inside] = candidate[dr[inside], dc[inside]]
        snap_d = samples_snapped.reindex(geo.index)[inside] if samples_snapped is not None else snap_points(
            net, gpd.GeoSeries(shapely.points(dxy[inside]), crs=net.crs), max_snap_m=max_snap,
            access_speed_kph=access_speed_kph)
        parts.append(snap_d[cols])
        rows.append(dr[inside])
        colns.append(dc[inside])
    logger.debug("isochrones: %d x %d grid of %g m, %d candidate cells, %d demand points", grid.n_rows, grid.n_cols,
                 grid.cell, n_grid, sum(len(r) for r in rows[1:]))
    seg = np.concatenate([p["segment"].to_numpy(dtype=np.int64) for p in parts])
    frac = np.concatenate([p["frac"].to_numpy(dtype=float) for p in parts])
    acc = np.concatenate([p["access_s"].to_numpy(dtype=float) for p in parts])
    ok = np.concatenate([p["snapped"].to_numpy(dtype=bool) for p in parts])
    del parts
    s_row, s_col = np.concatenate(rows), np.concatenate(colns)
    del rows, colns
    gidx = np.full((grid.n_rows, grid.n_cols), -1, dtype=np.int32 if len(seg) < 2**31 - 1 else np.int64)
    g_ok = np.flatnonzero(ok[:n_grid])
    gidx[cr[g_ok], cc[g_ok]] = g_ok
    del cr, cc, g_ok
    d_idx = n_grid + np.flatnonzero(ok[n_grid:])
    d_idx = d_idx[np.argsort(s_row[d_idx] * grid.n_cols + s_col[d_idx], kind="stable")]
    # the legs to each end of the segment, as _origin_times_from_node_times adds them (unsnapped: segment 0, unused)
    sg = np.where(ok, seg, 0)
    via_b = _partial(1.0 - frac, net.seg_tt_ab[sg])
    via_a = _partial(frac, net.seg_tt_ba[sg])
    # direct trips along an institution's own segment, for every sample at once (as _same_segment_times does)
    okp = np.flatnonzero(ok)
    f_seg = fac["segment"].to_numpy(dtype=np.int64)
    f_order = np.argsort(f_seg, kind="stable")
    lo, hi = np.searchsorted(f_seg[f_order], seg[okp], "left"), np.searchsorted(f_seg[f_order], seg[okp], "right")
    o = np.repeat(okp, hi - lo)
    fp = f_order[_ranges(lo, hi - lo)]
    f_frac, f_acc = fac["frac"].to_numpy(dtype=float), fac["access_s"].to_numpy(dtype=float)
    d = f_frac[fp] - frac[o]
    os_ = seg[o]
    along = np.where(d >= 0, _partial(np.maximum(d, 0), net.seg_tt_ab[os_]), _partial(np.maximum(-d, 0), net.seg_tt_ba[os_]))
    same_t = acc[o] + along + f_acc[fp]
    order = np.argsort(fp, kind="stable")
    return _Samples(
        a=net.seg_a[sg], b=net.seg_b[sg], via_a=via_a, via_b=via_b, acc=acc, gidx=gidx, d_idx=d_idx,
        d_row=s_row[d_idx], d_col=s_col[d_idx], d_flat=s_row[d_idx] * grid.n_cols + s_col[d_idx],
        same_pos=o[order], same_fac=fp[order], same_t=same_t[order])


def _times_in_window(smp: _Samples, node_t: np.ndarray, f: int, window: tuple[int, int, int, int],
                     scratch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Minutes (rounded as coverage rounds them) from the samples in a window to institution `f`.

    `node_t` holds the network time from every node to `f` (inf if beyond
    reach). Returns the window's cells with a snapped centre (bool), the
    minutes of those centres then of the window's demand points, and the
    demand points' cells (rows, columns in the window).
    """
    r0, r1, c0, c1 = window
    sub = smp.gidx[r0:r1, c0:c1]
    sel = sub >= 0
    in_d = _in_window(smp.d_flat, smp.gidx.shape[1], r0, r1, c0, c1)
    idx = np.concatenate([sub[sel], smp.d_idx[in_d]])
    # as _origin_times_from_node_times: the faster end, then the access leg
    via_b = smp.via_b[idx] + node_t[smp.b[idx]]
    via_a = smp.via_a[idx] + node_t[smp.a[idx]]
    t = np.where(via_b <= via_a, via_b, via_a) + smp.acc[idx]
    lo, hi = np.searchsorted(smp.same_fac, [f, f + 1])
    if hi > lo:
        scratch[idx] = np.arange(len(idx))
        p = scratch[smp.same_pos[lo:hi]]
        np.minimum.at(t, p[p >= 0], smp.same_t[lo:hi][p >= 0])
        scratch[idx] = -1
    return sel, np.round(t / 60.0, 3), smp.d_row[in_d] - r0, smp.d_col[in_d] - c0


def compute_isochrone_layers(
    net: CompiledNetwork,
    institutions: gpd.GeoDataFrame,
    snapped: pd.DataFrame,
    *,
    minutes: Iterable[float] | None = None,
    samples: gpd.GeoSeries | gpd.GeoDataFrame | None = None,
    samples_snapped: pd.DataFrame | None = None,
    cell_m: float | None = None,
    max_snap_m: float | None = None,
    access_speed_kph: float | None = None,
    by_tier: bool = False,
    progress: bool = False,
) -> IsochroneLayers:
    """Compute isochrone polygons per institution and threshold, and their dissolved layers.

    Parameters
    ----------
    net
        Compiled network.
    institutions
        Institutions indexed by ``facility_id`` with ``name`` and ``tier``.
    snapped
        :func:`planner.travel_time.snap_points` result for `institutions`
        (made with the same `max_snap_m` and `access_speed_kph`).
    minutes
        Thresholds in minutes; ``settings.THRESHOLDS_MINUTES`` by default.
    samples
        Demand cells or points (any CRS; polygons by their centroids) that
        coverage evaluates: the grid cell holding each one it reaches is
        reached too, so the polygons contain every cell coverage counts.
    samples_snapped
        :func:`planner.travel_time.snap_points` result for `samples` (made
        with the same `max_snap_m` and `access_speed_kph`), if at hand;
        `samples` are snapped here otherwise.
    cell_m
        Grid cell size in metres; ``settings.ISOCHRONE_CELL_M`` by default.
    max_snap_m, access_speed_kph
        As in :func:`planner.travel_time.snap_points` (the values coverage
        used).
    by_tier
        Also dissolve per tier.
    progress
        Show a progress bar.

    Returns
    -------
    layers
        The per-institution polygons and the dissolved layers.
    """
    mins = check_minutes(settings.THRESHOLDS_MINUTES if minutes is None else minutes)
    cell = check_limit("isochrone_cell_m", settings.ISOCHRONE_CELL_M if cell_m is None else cell_m, label="cell_m")
    max_snap = settings.MAX_SNAP_M if max_snap_m is None else float(max_snap_m)
    v_acc = access_speed_mps(access_speed_kph)
    fac = snapped[snapped["snapped"]]
    tmax = max(mins) * 60.0
    tiers = [_ALL_TIERS, *([t for t in settings.TIERS if (institutions.loc[fac.index, "tier"] == t).any()] if by_tier else [])]
    rows: list[tuple[object, float, shapely.Geometry]] = []
    if fac.empty:
        return IsochroneLayers(_frame(net, institutions, rows), _dissolved_frame(net, []))

    fac_tier = institutions.loc[fac.index, "tier"].to_numpy()
    # no trip moves faster than the fastest leg, so what an institution reaches lies in a disc around its road point
    q = shapely.get_coordinates(shapely.line_interpolate_point(net.seg_geom[fac["segment"].to_numpy(dtype=np.int64)],
                                                               fac["frac"].to_numpy(dtype=float), normalized=True))
    v_max = _max_speed_mps(net, v_acc) * (1.0 + 1e-9)
    radius = (tmax + _TIME_SLACK_S - fac["access_s"].to_numpy(dtype=float)) * v_max + 1e-3
    reach, nt = _reach_pass(net, fac, seconds=tmax, max_snap=max_snap, v_acc=v_acc, discs=np.c_[q, radius])
    if not np.isfinite(reach).any():
        return IsochroneLayers(_frame(net, institutions, [(fid, m, shapely.Polygon()) for fid in fac.index for m in mins]),
                               _dissolved_frame(net, [(m, t, 0, shapely.Polygon()) for m in mins for t in tiers]))
    grid, candidate = _study_grid(reach, np.c_[q, radius], cell=cell)
    smp = _snap_samples(net, grid, candidate, fac, samples, samples_snapped, max_snap=max_snap,
                        access_speed_kph=access_speed_kph)
    del candidate
    union = {(t, m): np.zeros((grid.n_rows, grid.n_cols), dtype=bool) for t in tiers for m in mins}
    scratch = np.full(len(smp.acc), -1, dtype=np.int64)
    node_t = np.full(net.n_nodes, np.inf)
    bounds = np.r_[0, np.cumsum(np.bincount(nt.fac, minlength=len(fac)))]
    bar = tqdm(total=len(fac), desc="isochrones", unit="institution", disable=not progress)
    masks: list[tuple[np.ndarray, int, int]] = []  # reached cells per institution and threshold, cropped
    slots: list[tuple[object, float, int | None]] = []  # institution, threshold, its mask (None: nothing reached)
    # pass 2: times on the grid within each institution's reach
    for f, fid in enumerate(fac.index):
        bar.update(1)
        if not np.isfinite(reach[f]).all():
            slots.extend((fid, m, None) for m in mins)
            continue
        nodes = nt.node[bounds[f]:bounds[f + 1]]
        node_t[nodes] = nt.t[bounds[f]:bounds[f + 1]]
        r0, r1, c0, c1 = grid.window(reach[f])
        sel, t_min, dr, dc = _times_in_window(smp, node_t, f, (r0, r1, c0, c1), scratch)
        node_t[nodes] = np.inf
        n_sub = int(sel.sum())
        for m in mins:
            hit = t_min <= m
            mask = np.zeros(sel.shape, dtype=bool)
            mask[sel] = hit[:n_sub]
            mask[dr[hit[n_sub:]], dc[hit[n_sub:]]] = True  # the cells of reached demand points
            for key in ((_ALL_TIERS, m), (fac_tier[f], m)):
                if key in union:
                    union[key][r0:r1, c0:c1] |= mask
            rr, cc = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            if len(rr):
                mask = mask[rr[0]:rr[-1] + 1, cc[0]:cc[-1] + 1]
                r0_, c0_ = r0 + int(rr[0]), c0 + int(cc[0])
            else:
                r0_, c0_ = r0, c0
            slots.append((fid, m, len(masks)))
            masks.append((mask, r0_, c0_))
    bar.close()
    polys = _polygons_from_masks(masks, grid)
    rows.extend((fid, m, shapely.Polygon() if i is None else polys[i]) for fid, m, i in slots)
    dissolved = [(m, tier, len(fac) if tier == _ALL_TIERS else int((fac_tier == tier).sum()),
                  _polygon_from_mask(union[(tier, m)], grid, 0, 0)) for m in mins for tier in tiers]
    return IsochroneLayers(_frame(net, institutions, rows), _dissolved_frame(net, dissolved))


def _frame(net: CompiledNetwork, institutions: gpd.GeoDataFrame, rows: list[tuple[object, float, shapely.Geometry]]
           ) -> gpd.GeoDataFrame:
    geo = gpd.GeoSeries([r[2] for r in rows], crs=net.crs)
    ids = [r[0] for r in rows]
    return gpd.GeoDataFrame(
        {
            "facility_id": ids,
            "name": institutions.loc[ids, "name"].to_numpy(),
            "tier": institutions.loc[ids, "tier"].to_numpy(),
            "minutes": [r[1] for r in rows],
            "area_km2": (geo.area / 1e6).round(4).to_numpy(),
        },
        geometry=geo.to_crs("EPSG:4326").to_numpy(),
        crs="EPSG:4326",
    )


def _dissolved_frame(net: CompiledNetwork, rows: list[tuple[float, str, int, shapely.Geometry]]) -> gpd.GeoDataFrame:
    geo = gpd.GeoSeries([r[3] for r in rows], crs=net.crs)
    return gpd.GeoDataFrame(
        {
            "minutes": [float(r[0]) for r in rows],
            "tier": [r[1] for r in rows],
            "institutions": [int(r[2]) for r in rows],
            "area_km2": (geo.area / 1e6).round(4).to_numpy(),
        },
        geometry=geo.to_crs("EPSG:4326").to_numpy(),
        crs="EPSG:4326",
    )


def compute_isochrones(
    net: CompiledNetwork,
    institutions: gpd.GeoDataFrame,
    snapped: pd.DataFrame,
    *,
    minutes: Iterable[float] | None = None,
    samples: gpd.GeoSeries | gpd.GeoDataFrame | None = None,
    cell_m: float | None = None,
    max_snap_m: float | None = None,
    access_speed_kph: float | None = None,
    progress: bool = False,
) -> gpd.GeoDataFrame:
    """Compute isochrone polygons per institution and per threshold.

    Parameters
    ----------
    net
        Compiled network.
    institutions
        Institutions indexed by ``facility_id`` with ``name`` and ``tier``.
    snapped
        :func:`planner.travel_time.snap_points` result for `institutions`.
    minutes
        Thresholds in minutes; ``settings.THRESHOLDS_MINUTES`` by default.
    samples, cell_m, max_snap_m, access_speed_kph, progress
        As in :func:`compute_isochrone_layers`.

    Returns
    -------
    isochrones
        One row per snapped institution and threshold: ``facility_id``,
        ``name``, ``tier``, ``minutes``, ``area_km2``, ``geometry`` (EPSG:4326),
        ordered by facility and threshold.
    """
    return compute_isochrone_layers(net, institutions, snapped, minutes=minutes, samples=samples, cell_m=cell_m,
                                    max_snap_m=max_snap_m, access_speed_kph=access_speed_kph, progress=progress
                                    ).per_institution


def dissolve_isochrones(iso: gpd.GeoDataFrame, *, by_tier: bool = False) -> gpd.GeoDataFrame:
    """Unite per-institution isochrones per threshold (and tier).

    For polygons that did not come with their dissolved layer
    (:func:`compute_isochrone_layers` traces it from the reached cells).

    Parameters
    ----------
    iso
        Result of :func:`compute_isochrones`.
    by_tier
        Also unite per tier.

    Returns
    -------
    dissolved
        As ``IsochroneLayers.dissolved``.
    """
    rows = []
    if len(iso):
        for m in sorted(set(iso["minutes"])):
            sel = iso[iso["minutes"] == m]
            groups = [(_ALL_TIERS, sel)] + ([(t, sel[sel["tier"] == t]) for t in settings.TIERS
                                             if (sel["tier"] == t).any()] if by_tier else [])
            for tier, g in groups:
                rows.append((float(m), tier, len(g), shapely.union_all(g.geometry.to_numpy())))
    geo = gpd.GeoSeries([r[3] for r in rows], crs=iso.crs)
    area = pd.Series(0.0, index=geo.index)
    if not geo.is_empty.all():
        area = geo.to_crs(geo[~geo.is_empty].estimate_utm_crs()).area / 1e6
    return gpd.GeoDataFrame({"minutes": [r[0] for r in rows], "tier": [r[1] for r in rows],
                             "institutions": [r[2] for r in rows], "area_km2": area.round(4).to_numpy()},
                            geometry=geo.to_numpy(), crs=iso.crs)
