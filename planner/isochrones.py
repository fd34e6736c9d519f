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
from ._validate import check_limit, check_minutes
from .travel_time import (
    CompiledNetwork,
    _origin_times_from_node_times,
    _same_segment_times,
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


_NODE_TIMES_CACHE = 20_000_000  # floats; node times of every institution are kept between the two passes up to this


def _reach_bounds(net: CompiledNetwork, node_t: np.ndarray, seg: int, access_s: float, *, seconds: float,
                  max_snap: float, v_acc: float, seg_bounds: np.ndarray) -> np.ndarray | None:
    """Bounds (xmin, ymin, xmax, ymax) of what an institution can reach within `seconds`, or None.

    A point is reached through a segment with an end reached in time (or the
    institution's own segment), from at most `max_snap` metres and no farther
    than the access walk the time left allows.
    """
    tmin = np.fmin(node_t[net.seg_a], node_t[net.seg_b])
    tmin[seg] = min(tmin[seg], access_s)
    hit = np.flatnonzero(tmin <= seconds)
    if len(hit) == 0:  # the institution's own access leg is longer than the threshold
        return None
    reach = np.minimum(max_snap, (seconds - tmin[hit]) * v_acc)
    b = seg_bounds[hit]
    return np.array([(b[:, 0] - reach).min(), (b[:, 1] - reach).min(), (b[:, 2] + reach).max(), (b[:, 3] + reach).max()])


def _study_grid(net: CompiledNetwork, bounds: np.ndarray, *, cell: float, max_snap: float) -> tuple[_Grid, np.ndarray]:
    """Return the grid over every institution's reach, and which of its cells lie close enough to a road."""
    from scipy.ndimage import distance_transform_edt

    x0, y0 = np.floor(np.nanmin(bounds[:, :2], axis=0) / cell) * cell
    x1, y1 = np.ceil(np.nanmax(bounds[:, 2:], axis=0) / cell) * cell
    grid = _Grid(float(x0), float(y1), cell, max(1, round((y1 - y0) / cell)), max(1, round((x1 - x0) / cell)))
    candidate = np.zeros((grid.n_rows, grid.n_cols), dtype=bool)
    for b in bounds:
        if np.isfinite(b).all():
            r0, r1, c0, c1 = grid.window(b)
            candidate[r0:r1, c0:c1] = True
    # a road point lies within a quarter cell of a vertex of its road densified to half a cell, so a point of a cell
    # within max_snap of a road has its cell centre within max_snap + a diagonal + a quarter cell of a marked centre
    xy = shapely.get_coordinates(shapely.segmentize(net.seg_geom, cell / 2.0))
    r, c = grid.cell_of(xy[:, 0], xy[:, 1])
    keep = (r >= 0) & (r < grid.n_rows) & (c >= 0) & (c < grid.n_cols)
    on_road = np.zeros(candidate.shape, dtype=bool)
    on_road[r[keep], c[keep]] = True
    if on_road.any():
        near = distance_transform_edt(~on_road, sampling=cell) <= max_snap + cell * (np.sqrt(2.0) + 0.25) + 1e-6
        candidate &= near
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


class _Samples(NamedTuple):
    """Snapped grid-cell centres, then demand points: where isochrone times are evaluated."""

    seg: np.ndarray  # segment of each sample
    frac: np.ndarray  # position along it
    acc: np.ndarray  # access leg, seconds
    gidx: np.ndarray  # (rows, cols): the sample of each cell centre, -1 if none (not snapped or far from roads)
    d_idx: np.ndarray  # samples that are snapped demand points, sorted by cell (row-major)
    d_row: np.ndarray
    d_col: np.ndarray
    d_flat: np.ndarray  # row-major cell number of each, ascending
    same_pos: np.ndarray  # direct trips along an institution's own segment: sample, institution, seconds,
    same_fac: np.ndarray  # sorted by institution
    same_t: np.ndarray


def _reach_pass(net: CompiledNetwork, fac: pd.DataFrame, *, seconds: float, max_snap: float, v_acc: float
                ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Each institution's reach bounds (NaN if none), and its node times when they are few enough to keep."""
    seg_bounds = shapely.bounds(net.seg_geom)
    fac_seg, fac_acc = fac["segment"].to_numpy(), fac["access_s"].to_numpy()
    keep = len(fac) * net.n_nodes <= _NODE_TIMES_CACHE
    cached = []
    reach = np.full((len(fac), 4), np.nan)
    pos = 0
    for ids, node_t in facility_node_times(net, fac, max_minutes=seconds / 60.0):
        for k in range(len(ids)):
            b = _reach_bounds(net, node_t[k], fac_seg[pos + k], fac_acc[pos + k], seconds=seconds, max_snap=max_snap,
                              v_acc=v_acc, seg_bounds=seg_bounds)
            if b is not None:
                reach[pos + k] = b
        pos += len(ids)
        if keep:
            cached.append((ids, node_t))
    return reach, cached


def _snap_samples(net: CompiledNetwork, grid: _Grid, candidate: np.ndarray, fac: pd.DataFrame,
                  samples: gpd.GeoSeries | gpd.GeoDataFrame | None, samples_snapped: pd.DataFrame | None, *,
                  max_snap: float, access_speed_kph: float | None) -> _Samples:
    """Snap the candidate cell centres (and the demand points in candidate cells) as coverage snaps cells."""
    cr, cc = np.nonzero(candidate)
    gx, gy = grid.centres(cr, cc)
    cols = ["segment", "frac", "access_s", "snapped"]
    parts = [snap_points(net, gpd.GeoSeries(shapely.points(gx, gy), crs=net.crs), max_snap_m=max_snap,
                         access_speed_kph=access_speed_kph)[cols]]
    rows, colns = [cr], [cc]
    if samples is not None and len(samples):
        geo = samples.geometry if isinstance(samples, gpd.GeoDataFrame) else samples
        dg = geo.to_crs(net.crs).to_numpy()  # what snap_points does to the cells coverage snaps
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
    logger.debug("isochrones: %d x %d grid of %g m, %d cells near roads, %d demand points", grid.n_rows, grid.n_cols,
                 grid.cell, len(gx), sum(len(r) for r in rows[1:]))
    snap = pd.concat(parts, ignore_index=True)
    ok = snap["snapped"].to_numpy(dtype=bool)
    s_row, s_col = np.concatenate(rows), np.concatenate(colns)
    gidx = np.full((grid.n_rows, grid.n_cols), -1, dtype=np.int64)
    g_ok = np.flatnonzero(ok[:len(gx)])
    gidx[cr[g_ok], cc[g_ok]] = g_ok
    d_idx = len(gx) + np.flatnonzero(ok[len(gx):])
    d_idx = d_idx[np.argsort(s_row[d_idx] * grid.n_cols + s_col[d_idx], kind="stable")]
    # direct trips along an institution's own segment, for every sample at once (as od_travel_times does)
    same = _same_segment_times(net, snap.iloc[np.flatnonzero(ok)], fac)
    order = np.argsort(same["fac_pos"].to_numpy(dtype=np.int64), kind="stable")
    return _Samples(
        seg=snap["segment"].to_numpy(dtype=np.int64), frac=snap["frac"].to_numpy(dtype=float),
        acc=snap["access_s"].to_numpy(dtype=float), gidx=gidx, d_idx=d_idx, d_row=s_row[d_idx], d_col=s_col[d_idx],
        d_flat=s_row[d_idx] * grid.n_cols + s_col[d_idx],
        same_pos=np.flatnonzero(ok)[same["origin_pos"].to_numpy(dtype=np.int64)][order],
        same_fac=same["fac_pos"].to_numpy(dtype=np.int64)[order], same_t=same["t"].to_numpy(dtype=float)[order])


def _times_in_window(net: CompiledNetwork, smp: _Samples, node_t: np.ndarray, f: int, window: tuple[int, int, int, int],
                     scratch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Minutes (rounded as coverage rounds them) from the samples in a window to institution `f`.

    Returns the window's cells with a snapped centre (bool), the minutes of
    those centres then of the window's demand points, and the demand
    points' cells (rows, columns in the window).
    """
    r0, r1, c0, c1 = window
    sub = smp.gidx[r0:r1, c0:c1]
    sel = sub >= 0
    in_d = _in_window(smp.d_flat, smp.gidx.shape[1], r0, r1, c0, c1)
    idx = np.concatenate([sub[sel], smp.d_idx[in_d]])
    org = pd.DataFrame({"segment": smp.seg[idx], "frac": smp.frac[idx], "access_s": smp.acc[idx]}, copy=False)
    t, _ = _origin_times_from_node_times(net, org, node_t)
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
    reach, cached = _reach_pass(net, fac, seconds=tmax, max_snap=max_snap, v_acc=v_acc)
    if not np.isfinite(reach).any():
        return IsochroneLayers(_frame(net, institutions, [(fid, m, shapely.Polygon()) for fid in fac.index for m in mins]),
                               _dissolved_frame(net, [(m, t, 0, shapely.Polygon()) for m in mins for t in tiers]))
    grid, candidate = _study_grid(net, reach, cell=cell, max_snap=max_snap)
    smp = _snap_samples(net, grid, candidate, fac, samples, samples_snapped, max_snap=max_snap,
                        access_speed_kph=access_speed_kph)
    union = {(t, m): np.zeros((grid.n_rows, grid.n_cols), dtype=bool) for t in tiers for m in mins}
    scratch = np.full(len(smp.seg), -1, dtype=np.int64)
    bar = tqdm(total=len(fac), desc="isochrones", unit="institution", disable=not progress)
    pos = 0
    # pass 2: times on the grid within each institution's reach
    for ids, node_t in cached or facility_node_times(net, fac, max_minutes=max(mins)):
        for k, fid in enumerate(ids):
            f = pos + k
            bar.update(1)
            if not np.isfinite(reach[f]).all():
                rows.extend((fid, m, shapely.Polygon()) for m in mins)
                continue
            r0, r1, c0, c1 = grid.window(reach[f])
            sel, t_min, dr, dc = _times_in_window(net, smp, node_t[k], f, (r0, r1, c0, c1), scratch)
            n_sub = int(sel.sum())
            for m in mins:
                hit = t_min <= m
                mask = np.zeros(sel.shape, dtype=bool)
                mask[sel] = hit[:n_sub]
                mask[dr[hit[n_sub:]], dc[hit[n_sub:]]] = True  # the cells of reached demand points
                for key in ((_ALL_TIERS, m), (fac_tier[f], m)):
                    if key in union:
                        union[key][r0:r1, c0:c1] |= mask
                rows.append((fid, m, _polygon_from_mask(mask, grid, r0, c0)))
        pos += len(ids)
    bar.close()
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
