"""Bulk snapping of many points onto road segments, in vectorised numpy.

The index (:func:`_build_piece_index`) cuts every road segment into short
straight sub-pieces and files them in a regular grid. :func:`_snap_bulk`
first bounds each point's distance to the roads from nearby grid cells, then
checks every sub-piece within that bound, with GEOS's own distance and
projection formulas, so the results equal ``shapely.distance`` and
``shapely.line_locate_point`` to the bit. Points it cannot settle (ties,
points far from every road) are left to the STRtree search of
:func:`planner.travel_time.snap_points`, which is the only caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

if TYPE_CHECKING:
    import geopandas as gpd

_BULK_SNAP_MIN_POINTS = 2_000  # fewer points are snapped by the STRtree search alone
_BULK_SNAP_CHUNK = 8_192  # points per vectorised batch (small enough for the arrays to stay in cache)
_BULK_SNAP_MAX_CANDIDATES = 256  # road sub-pieces per point beyond which the STRtree search takes the point
_GRID_SPACING = 0.3  # bulk snapping grid cell, as a fraction of the mean road spacing (bbox area / road length)
_GRID_MIN_M = 10.0  # metres; smallest grid cell
_GRID_CELLS_PER_PIECE = 2.5  # at most this many grid cells per road piece (dense networks)
_GRID_MAX_CELLS = 2_000_000  # largest grid (bounds the index's memory)
_BLOCK_RADII = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32)  # cells; points with no road within the last: STRtree search
_BULK_SNAP_MAX_ROWS = 96  # rows of grid cells searched per point at most (else: STRtree search)
_TIE_M = 1e-6  # metres; nearest segments closer than this to each other count as a tie
_SLACK_M = 1e-3  # metres; rounding allowance in the bulk index's search radii
_NEAR_M = 1e-7  # metres; pieces this close to the nearest get GEOS's exact distance (search error ~1e-9 m)


def _clamped_m2(ex: np.ndarray, ey: np.ndarray, dx: np.ndarray, dy: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Squared distance from offsets ``(ex, ey)`` (point minus piece start) to pieces ``(dx, dy)``, ``inv = 1/|d|²``.

    The projection parameter is clamped to the piece; `ex` and `ey` are overwritten (they are fresh arrays).
    """
    t = (ex * dx + ey * dy) * inv
    np.clip(t, 0.0, 1.0, out=t)
    ex -= t * dx
    ey -= t * dy
    ex *= ex
    ey *= ey
    ex += ey
    return ex


@dataclass(frozen=True)
class _PieceIndex:
    """The straight pieces (two consecutive vertices) of every road segment, on a grid, for bulk snapping.

    Pieces are cut into sub-pieces of at most one grid cell, each filed
    under the cell holding its midpoint; a point at distance ``d`` from a
    piece is within ``d + half_m`` of one of its sub-pieces' midpoints.
    ``start_m`` and ``seg_len_m`` are the measures GEOS uses in
    ``line_locate_point`` (lengths summed piece by piece from 0).
    """

    ax: np.ndarray  # piece start / end coordinates
    ay: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    seg: np.ndarray  # segment of each piece (pieces of a segment are consecutive, in line order)
    length_m: np.ndarray  # piece length
    start_m: np.ndarray  # length of the segment before the piece
    seg_len_m: np.ndarray  # length of each segment
    x0: float  # grid origin and cell size, metres
    y0: float
    cell_m: float
    nx: int
    ny: int
    indptr: np.ndarray  # sub-pieces of cell c: indptr[c]:indptr[c + 1] (cell c = ix * ny + iy)
    sat: np.ndarray  # summed-area table of sub-pieces per cell, (nx + 1) x (ny + 1), flattened
    sx: np.ndarray  # sub-piece start, direction and 1 / squared length (0 if empty), sorted by cell
    sy: np.ndarray
    sdx: np.ndarray
    sdy: np.ndarray
    sinv: np.ndarray
    sub_piece: np.ndarray
    sub_seg: np.ndarray
    half_m: float  # largest half-length of a sub-piece (+ slack)
    fx: np.ndarray  # the same in float32, start relative to the grid origin (a first, cheaper pass)
    fy: np.ndarray
    fdx: np.ndarray
    fdy: np.ndarray
    finv: np.ndarray
    f32_err_m: float  # bound on the float32 pass's error in metres (besides 1e-5 of the distance)

    def cells(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid column and row of points (clamped to the grid)."""
        ix = np.clip(np.floor((x - self.x0) / self.cell_m), 0, self.nx - 1).astype(np.int64)
        iy = np.clip(np.floor((y - self.y0) / self.cell_m), 0, self.ny - 1).astype(np.int64)
        return ix, iy

    def approx32_m2(self, owner: np.ndarray, sub: np.ndarray, qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
        """Squared distance in float32 (to about ``f32_err_m``) from grid-local points ``qx, qy`` to sub-pieces."""
        return _clamped_m2(qx[owner] - self.fx[sub], qy[owner] - self.fy[sub], self.fdx[sub], self.fdy[sub],
                           self.finv[sub])

    def approx_m2(self, owner: np.ndarray, sub: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        """Squared distance from point ``owner`` to sub-piece ``sub`` (to about 1e-9 m; for the search only)."""
        return _clamped_m2(px[owner] - self.sx[sub], py[owner] - self.sy[sub], self.sdx[sub], self.sdy[sub],
                           self.sinv[sub])


def _build_piece_index(seg_geom: np.ndarray) -> _PieceIndex | None:
    if len(seg_geom) == 0 or not (shapely.get_type_id(seg_geom) == 1).all() or shapely.is_empty(seg_geom).any():
        return None
    xy, gi = shapely.get_coordinates(seg_geom, return_index=True)
    k = np.flatnonzero(gi[1:] == gi[:-1])
    if not len(k) or not np.isfinite(xy).all():
        return None
    ax, ay, bx, by = xy[k, 0], xy[k, 1], xy[k + 1, 0], xy[k + 1, 1]
    seg = gi[k]
    dx, dy = bx - ax, by - ay
    length = np.sqrt(dx * dx + dy * dy)  # GEOS's piece length, to the bit
    start, seg_len = _piece_starts(seg, length, len(seg_geom))
    # a grid of cells of about a third of the mean road spacing, with a few cells per piece at most
    lo = xy.min(axis=0)
    span = np.maximum(xy.max(axis=0) - lo, 1.0)
    area = float(span[0] * span[1])
    cell = max(_GRID_SPACING * area / max(float(length.sum()), 1.0), float(np.sqrt(area / (_GRID_CELLS_PER_PIECE * len(k)))),
               _GRID_MIN_M, float(np.sqrt(area / _GRID_MAX_CELLS)))
    nx, ny = int(span[0] // cell) + 1, int(span[1] // cell) + 1
    n_sub = np.maximum(np.ceil(length / cell), 1).astype(np.int64)
    piece = np.repeat(np.arange(len(k)), n_sub)
    j = np.arange(len(piece)) - np.repeat(np.cumsum(n_sub) - n_sub, n_sub)
    t0, t1 = j / n_sub[piece], (j + 1) / n_sub[piece]
    sx0, sy0 = ax[piece] + dx[piece] * t0, ay[piece] + dy[piece] * t0
    sx1, sy1 = ax[piece] + dx[piece] * t1, ay[piece] + dy[piece] * t1
    ix = np.clip(np.floor(((sx0 + sx1) / 2 - lo[0]) / cell), 0, nx - 1).astype(np.int64)
    iy = np.clip(np.floor(((sy0 + sy1) / 2 - lo[1]) / cell), 0, ny - 1).astype(np.int64)
    key = ix * ny + iy
    order = np.argsort(key, kind="stable")
    sdx, sdy = (sx1 - sx0)[order], (sy1 - sy0)[order]
    l2 = sdx * sdx + sdy * sdy
    with np.errstate(divide="ignore"):
        sinv = np.where(l2 > 0, 1.0 / np.where(l2 > 0, l2, 1.0), 0.0)
    per_cell = np.bincount(key, minlength=nx * ny)
    indptr = np.r_[0, np.cumsum(per_cell)]
    sat = np.zeros((nx + 1, ny + 1), dtype=np.int64)  # summed-area table of sub-pieces per cell
    sat[1:, 1:] = per_cell.reshape(nx, ny).cumsum(axis=0).cumsum(axis=1)
    return _PieceIndex(ax=ax, ay=ay, bx=bx, by=by, seg=seg, length_m=length, start_m=start, seg_len_m=seg_len,
                       x0=float(lo[0]), y0=float(lo[1]), cell_m=cell, nx=nx, ny=ny, indptr=indptr,
                       sat=sat.ravel(), sx=sx0[order], sy=sy0[order], sdx=sdx, sdy=sdy, sinv=sinv,
                       sub_piece=piece[order], sub_seg=seg[piece[order]], half_m=float(np.sqrt(l2.max())) / 2 + _SLACK_M,
                       fx=(sx0[order] - lo[0]).astype(np.float32), fy=(sy0[order] - lo[1]).astype(np.float32),
                       fdx=sdx.astype(np.float32), fdy=sdy.astype(np.float32), finv=sinv.astype(np.float32),
                       f32_err_m=8 * float(np.spacing(np.float32(span.max() + cell))) + 1e-6 * cell + 1e-4)


def _piece_starts(seg: np.ndarray, length: np.ndarray, n_seg: int) -> tuple[np.ndarray, np.ndarray]:
    """Length before each piece along its segment, and each segment's length, summed in line order from 0 like GEOS."""
    first = np.r_[0, np.flatnonzero(seg[1:] != seg[:-1]) + 1]
    size = np.diff(np.r_[first, len(seg)])
    by_size = np.argsort(-size, kind="stable")
    first, size, owner = first[by_size], size[by_size], seg[first[by_size]]
    acc = np.zeros(n_seg)
    start = np.empty(len(seg))
    n_long = np.searchsorted(-size, -np.arange(1, size[0] + 1), side="right")  # segments with more than j pieces
    for j in range(size[0]):  # the j-th piece of every segment at once (as many rounds as the longest segment)
        k = n_long[j]
        p = first[:k] + j
        start[p] = acc[owner[:k]]
        acc[owner[:k]] += length[p]
    return start, acc


def _geos_point_segment(px: np.ndarray, py: np.ndarray, ax: np.ndarray, ay: np.ndarray, bx: np.ndarray,
                        by: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from points to pieces and the projection factor, computed as GEOS does (same operations, same bits).

    GEOS ``Distance::pointToSegment`` and ``LineSegment::projectionFactor``; this is what keeps the bulk
    snapping's ``snap_m`` and ``frac`` identical to ``shapely.distance`` and ``shapely.line_locate_point``.
    """
    dxab, dyab = bx - ax, by - ay
    l2 = dxab * dxab + dyab * dyab
    with np.errstate(invalid="ignore", divide="ignore"):
        r = ((px - ax) * dxab + (py - ay) * dyab) / l2
        s = ((ay - py) * dxab - (ax - px) * dyab) / l2
        perp = np.abs(s) * np.sqrt(l2)
    ex, ey = px - ax, py - ay
    da = np.sqrt(ex * ex + ey * ey)
    ex, ey = px - bx, py - by
    db = np.sqrt(ex * ex + ey * ey)
    d = np.where(((ax == bx) & (ay == by)) | (r <= 0.0), da, np.where(r >= 1.0, db, perp))
    return d, r


def _group_min(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Minimum of each run of `counts` consecutive values; inf for empty runs."""
    out = np.full(len(counts), np.inf)
    has = counts > 0
    if has.any():
        out[has] = np.minimum.reduceat(values, (np.cumsum(counts) - counts)[has])
    return out


def _ranges(start: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ``arange(start[i], start[i] + count[i])``, and the i of each element."""
    owner = np.repeat(np.arange(len(count)), count)
    return np.arange(len(owner)) + np.repeat(start - (np.cumsum(count) - count), count), owner


def _snap_bulk(idx: _PieceIndex, xy: np.ndarray, max_snap_m: float, *, far_unsnapped: bool = False) -> tuple[np.ndarray, ...]:
    """Snap many points exactly as the STRtree search and GEOS would, where the nearest segment is clear-cut.

    Returns
    -------
    seg, dist, frac, done
        Nearest segment (-1 beyond `max_snap_m`), distance to it (the nearest road),
        position along it and whether the point is settled here; the rest (ties
        within ``_TIE_M``, points with too many candidates) is left to the STRtree search.
        With `far_unsnapped`, points whose nearest road is certainly beyond `max_snap_m`
        are settled too (unsnapped, distance NaN) even when that nearest road is a tie.
    """
    n = len(xy)
    seg = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.nan)
    frac = np.full(n, np.nan)
    done = np.zeros(n, dtype=bool)
    for lo in range(0, n, _BULK_SNAP_CHUNK):  # chunks small enough for the arrays to stay in cache
        sl = slice(lo, min(lo + _BULK_SNAP_CHUNK, n))
        seg[sl], dist[sl], frac[sl], done[sl] = _snap_chunk(idx, xy[sl, 0], xy[sl, 1], max_snap_m, far_unsnapped)
    return seg, dist, frac, done


def _snap_chunk(idx: _PieceIndex, px: np.ndarray, py: np.ndarray, max_snap_m: float,
                far_unsnapped: bool = False) -> tuple[np.ndarray, ...]:
    """:func:`_snap_bulk` on one chunk of points (metric coordinates `px`, `py`)."""
    n = len(px)
    seg = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.nan)
    frac = np.full(n, np.nan)
    done = np.zeros(n, dtype=bool)
    g = idx.cell_m
    # 1. an upper bound U on each point's distance to the roads: the nearest of a few sub-pieces in the
    #    smallest square of cells around the point that holds any (found from the summed-area table)
    ix, iy = idx.cells(px, py)
    rad = np.zeros(n, dtype=np.int64)
    todo = np.arange(n)
    for r in _BLOCK_RADII:
        x0, x1 = np.maximum(ix[todo] - r, 0), np.minimum(ix[todo] + r + 1, idx.nx)
        y0, y1 = np.maximum(iy[todo] - r, 0), np.minimum(iy[todo] + r + 1, idx.ny)
        sat, w = idx.sat, idx.ny + 1
        filled = sat[x1 * w + y1] - sat[x0 * w + y1] - sat[x1 * w + y0] + sat[x0 * w + y0] > 0
        rad[todo[filled]] = r
        todo = todo[~filled]
        if not len(todo):
            break
    found = np.ones(n, dtype=bool)
    found[todo] = False  # no road within the last radius: left to the STRtree search
    x0 = np.maximum(ix - rad, 0)
    qx, rp = _ranges(x0, np.where(found, np.minimum(ix + rad, idx.nx - 1) - x0 + 1, 0))
    row = qx * idx.ny
    first = idx.indptr[row + np.maximum(iy[rp] - rad[rp], 0)]
    count = np.minimum(idx.indptr[row + np.minimum(iy[rp] + rad[rp], idx.ny - 1) + 1] - first, 1)
    ent, k = _ranges(first, count)
    qx32, qy32 = (px - idx.x0).astype(np.float32), (py - idx.y0).astype(np.float32)
    U = np.sqrt(_group_min(idx.approx32_m2(rp[k], ent, qx32, qy32).astype(float), np.bincount(rp[k], minlength=n)))
    U = np.where(found, U + U * 1e-5 + idx.f32_err_m + _TIE_M + _SLACK_M, 0.0)
    # 2. every sub-piece with its midpoint within R = U + half of a point (a piece within U has one):
    #    row by row of cells, each row's cells within R being one range of sub-pieces
    R = U + idx.half_m
    ix0 = np.clip(np.floor((px - R - idx.x0) / g), 0, idx.nx - 1).astype(np.int64)
    ix1 = np.clip(np.floor((px + R - idx.x0) / g), 0, idx.nx - 1).astype(np.int64)
    wide = found & (ix1 - ix0 < _BULK_SNAP_MAX_ROWS)
    qx, rp = _ranges(ix0, np.where(wide, ix1 - ix0 + 1, 0))
    gx = px[rp] - idx.x0
    ddx = np.maximum(np.maximum(qx * g - gx, gx - (qx + 1) * g), 0.0)
    rr = R[rp] + _SLACK_M
    hw = np.sqrt(np.maximum(rr * rr - ddx * ddx, 0.0))
    gy = py[rp] - idx.y0
    row = qx * idx.ny
    first = idx.indptr[row + np.clip(np.floor((gy - hw) / g), 0, idx.ny - 1).astype(np.int64)]
    count = idx.indptr[row + np.clip(np.floor((gy + hw) / g), 0, idx.ny - 1).astype(np.int64) + 1] - first
    cnt = np.bincount(rp, weights=count, minlength=n).astype(np.int64)
    many = cnt > _BULK_SNAP_MAX_CANDIDATES  # left to the STRtree search
    if many.any():
        count[many[rp]] = 0
        cnt[many] = 0
    owner = np.repeat(rp, count)  # non-decreasing: each point's candidates are consecutive
    ent = np.arange(len(owner)) + np.repeat(first - (np.cumsum(count) - count), count)
    # a float32 pass keeps the candidates that may be within the tie margin of the nearest; float64 on those
    d2 = idx.approx32_m2(owner, ent, qx32, qy32)
    lim = np.sqrt(_group_min(d2, cnt))
    lim += lim * 2e-5 + 2 * idx.f32_err_m + _TIE_M
    keep = np.flatnonzero(d2 <= (lim * lim).astype(np.float32)[owner])
    owner, ent = owner[keep], ent[keep]
    cnt = np.bincount(owner, minlength=n)
    d2 = idx.approx_m2(owner, ent, px, py)
    best = np.sqrt(_group_min(d2, cnt))
    # the candidates within the tie margin of the nearest: settled if they are all on one segment
    lim = best + _TIE_M
    near = np.flatnonzero(d2 <= (lim * lim)[owner])
    o, sg = owner[near], idx.sub_seg[ent[near]]
    grp = np.flatnonzero(np.r_[True, o[1:] != o[:-1]]) if len(o) else np.zeros(0, dtype=np.int64)
    one = np.minimum.reduceat(sg, grp) == np.maximum.reduceat(sg, grp) if len(o) else np.zeros(0, dtype=bool)
    ok = np.zeros(n, dtype=bool)
    ok[o[grp[one]]] = True
    if far_unsnapped:  # every sub-piece within R >= the nearest distance was checked: `best` is that distance (to 1e-9 m)
        done |= wide & ~many & (best > max_snap_m + _TIE_M)
    # 3. GEOS's distance and line_locate_point on the nearest pieces of the nearest segment
    lim = best + _NEAR_M
    keep = ok[o] & (d2[near] <= (lim * lim)[o])
    o, p = o[keep], idx.sub_piece[ent[near[keep]]]
    de, r = _geos_point_segment(px[o], py[o], idx.ax[p], idx.ay[p], idx.bx[p], idx.by[p])
    if len(o):
        grp = np.flatnonzero(np.r_[True, o[1:] != o[:-1]])
        size = np.diff(np.r_[grp, len(o)])
        dmin = np.repeat(np.minimum.reduceat(de, grp), size)
        pmin = np.repeat(np.minimum.reduceat(np.where(de == dmin, p, np.iinfo(np.int64).max), grp), size)
        h = np.flatnonzero((de == dmin) & (p == pmin))  # GEOS takes the first piece at the minimum
        h = h[np.r_[True, o[h][1:] != o[h][:-1]]]
        o, p, de, r = o[h], p[h], de[h], r[h]
    s0, ln = idx.start_m[p], idx.length_m[p]
    measure = np.where(r <= 0.0, s0, np.where(r <= 1.0, s0 + r * ln, s0 + ln))  # NaN r (empty piece): s0 + ln
    total = idx.seg_len_m[idx.seg[p]]
    with np.errstate(invalid="ignore", divide="ignore"):
        fr = np.where(total == 0, 0.0, measure / total)
    dist[o] = de
    within = de <= max_snap_m
    seg[o[within]] = idx.seg[p][within]
    frac[o[within]] = fr[within]
    done[o] = True
    return seg, dist, frac, done


def _metric_xy(geo: gpd.GeoSeries, crs: CRS) -> np.ndarray | None:
    """Coordinates in `crs` of points, or of polygon centroids, equal to the bit to ``to_crs`` + ``shapely.centroid``.

    Faster than building the reprojected geometries: each distinct vertex is
    reprojected once (raster cells share their corners), and centroids are
    computed the way GEOS does. None when the geometries are not all points or
    all hole-free polygons with rings of one length (then the caller uses GEOS).
    """
    g = geo.to_numpy()
    if geo.crs is None or not len(g):
        return None
    kind = shapely.get_type_id(g)
    if (kind == 0).all():
        m = 1
    elif (kind == 3).all() and not shapely.get_num_interior_rings(g).any():
        nc = shapely.get_num_coordinates(g)
        m = int(nc[0])
        if m < 4 or (nc != m).any():
            return None
    else:
        return None
    if shapely.has_z(g).any():
        return None
    c = shapely.get_coordinates(g)
    if len(c) != m * len(g) or not np.isfinite(c).all():
        return None
    src = CRS.from_user_input(geo.crs)
    if not src.is_exact_same(crs):
        # reproject each distinct vertex once (by bit pattern, so the result is the same to the bit)
        bx, by = np.ascontiguousarray(c[:, 0]).view(np.int64), np.ascontiguousarray(c[:, 1]).view(np.int64)
        cx, ux = pd.factorize(bx)
        cy, uy = pd.factorize(by)
        code, uniq = pd.factorize(cx.astype(np.int64) * len(uy) + cy)
        x, y = Transformer.from_crs(src, crs, always_xy=True).transform(
            ux.view(np.float64)[uniq // len(uy)], uy.view(np.float64)[uniq % len(uy)])
        c = np.c_[np.asarray(x, dtype=float)[code], np.asarray(y, dtype=float)[code]]
    if m == 1:
        xy = c
    else:
        # GEOS Centroid: triangles fanned from the first vertex, summed in ring order (the ring's
        # orientation only flips the sign of both sums, which cancels exactly)
        x, y = c[:, 0].reshape(-1, m), c[:, 1].reshape(-1, m)
        x0, y0 = x[:, 0], y[:, 0]
        sx, sy, a = np.zeros(len(g)), np.zeros(len(g)), np.zeros(len(g))
        for i in range(1, m - 1):  # the first triangle (p0, p0, p1) adds exact zeros
            x1, y1, x2, y2 = x[:, i], y[:, i], x[:, i + 1], y[:, i + 1]
            a2 = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
            sx += a2 * (x0 + x1 + x2)
            sy += a2 * (y0 + y1 + y2)
            a += a2
        if not (np.abs(a) > 0).all():
            return None  # degenerate polygons: GEOS falls back to line centroids
        xy = np.c_[sx / 3 / a, sy / 3 / a]
    return xy if np.isfinite(xy).all() else None


def _no_road_within(idx: _PieceIndex, xy: np.ndarray, radius_m: float) -> np.ndarray:
    """Whether each point has certainly no road within `radius_m` (no sub-piece midpoint within reach; cheap).

    A point within ``d`` of a piece is within ``d + half_m`` of one of its
    sub-pieces' midpoints, so an empty box of cells around the point proves
    that no road is that close. False means "maybe".
    """
    reach = radius_m + idx.half_m + _SLACK_M
    g, w = idx.cell_m, idx.ny + 1
    x0 = np.clip(np.floor((xy[:, 0] - reach - idx.x0) / g), 0, idx.nx - 1).astype(np.int64)
    x1 = np.clip(np.floor((xy[:, 0] + reach - idx.x0) / g), 0, idx.nx - 1).astype(np.int64) + 1
    y0 = np.clip(np.floor((xy[:, 1] - reach - idx.y0) / g), 0, idx.ny - 1).astype(np.int64)
    y1 = np.clip(np.floor((xy[:, 1] + reach - idx.y0) / g), 0, idx.ny - 1).astype(np.int64) + 1
    sat = idx.sat
    return sat[x1 * w + y1] - sat[x0 * w + y1] - sat[x1 * w + y0] + sat[x0 * w + y0] == 0
