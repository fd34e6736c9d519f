"""Isochrones: the area from which an institution is reached within a time.

Built from the road network, not from convex hulls: every road segment is cut
at the exact position where the travel time to the institution reaches the
threshold (one-way rules respected), and the reached road pieces are drawn
as a band of ``settings.ISOCHRONE_BUFFER_M`` metres on each side. The polygons
are for display; coverage figures come from the per-cell times in
:mod:`planner.coverage`, which also include each resident's access leg.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.ops import substring
from tqdm.auto import tqdm

from . import settings
from ._validate import check_minutes
from .travel_time import CompiledNetwork, facility_node_times

logger = logging.getLogger(__name__)


def reached_intervals(
    net: CompiledNetwork, node_t: np.ndarray, seconds: float, *, own: tuple[int, float, float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the reached part of every touched segment as position intervals.

    Parameters
    ----------
    net
        Compiled network.
    node_t
        Seconds from each node to the facility.
    seconds
        Threshold in seconds.
    own
        ``(segment, frac, access_s)`` of the facility itself, for trips along
        its own segment.

    Returns
    -------
    seg, a_end, b_start, own_lo, own_hi
        Segment indices touched; for each, the reached interval from its a
        end ``[0, a_end]`` and from its b end ``[b_start, 1]`` (empty when
        ``a_end < 0`` or ``b_start > 1``), and the direct interval on the
        facility's own segment ``[own_lo, own_hi]`` (empty if lo > hi).
    """
    da, db = node_t[net.seg_a], node_t[net.seg_b]
    touched = (da <= seconds) | (db <= seconds)
    own_seg = -1
    if own is not None:
        own_seg = own[0]
        touched[own_seg] = True
    seg = np.flatnonzero(touched)
    with np.errstate(invalid="ignore", divide="ignore"):
        a_end = np.where(da[seg] <= seconds, (seconds - da[seg]) / net.seg_tt_ba[seg], -1.0)
        b_start = np.where(db[seg] <= seconds, 1.0 - (seconds - db[seg]) / net.seg_tt_ab[seg], 2.0)
    a_end = np.nan_to_num(a_end, nan=-1.0)
    b_start = np.nan_to_num(b_start, nan=2.0)
    own_lo = np.full(len(seg), 2.0)
    own_hi = np.full(len(seg), -1.0)
    if own is not None:
        _, frac, acc = own
        left = seconds - acc
        if left >= 0:
            j = int(np.searchsorted(seg, own_seg))
            with np.errstate(divide="ignore"):
                own_lo[j] = frac - left / net.seg_tt_ab[own_seg]
                own_hi[j] = frac + left / net.seg_tt_ba[own_seg]
    return seg, a_end, b_start, own_lo, own_hi


def _pieces(net: CompiledNetwork, seg: np.ndarray, a_end: np.ndarray, b_start: np.ndarray,
            own_lo: np.ndarray, own_hi: np.ndarray) -> list[shapely.Geometry]:
    out: list[shapely.Geometry] = []
    for s, ae, bs, lo, hi in zip(seg, a_end, b_start, own_lo, own_hi, strict=True):
        ivs = []
        if ae >= 0:
            ivs.append((0.0, min(1.0, ae)))
        if bs <= 1:
            ivs.append((max(0.0, bs), 1.0))
        if lo <= hi:
            ivs.append((max(0.0, lo), min(1.0, hi)))
        if not ivs:
            continue
        ivs.sort()
        merged = [list(ivs[0])]
        for lo_, hi_ in ivs[1:]:
            if lo_ <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi_)
            else:
                merged.append([lo_, hi_])
        geom = net.seg_geom[s]
        for lo_, hi_ in merged:
            if lo_ <= 0.0 and hi_ >= 1.0:
                out.append(geom)
            elif hi_ > lo_:
                out.append(substring(geom, lo_, hi_, normalized=True))
    return out


def compute_isochrones(
    net: CompiledNetwork,
    institutions: gpd.GeoDataFrame,
    snapped: pd.DataFrame,
    *,
    minutes: Iterable[float] | None = None,
    buffer_m: float | None = None,
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
    buffer_m
        Half-width in metres of the band drawn around reached roads.
    progress
        Show a progress bar.

    Returns
    -------
    isochrones
        One row per snapped institution and threshold: ``facility_id``,
        ``name``, ``tier``, ``minutes``, ``area_km2``, ``geometry`` (EPSG:4326),
        ordered by facility and threshold.
    """
    mins = check_minutes(settings.THRESHOLDS_MINUTES if minutes is None else minutes)
    buf = settings.ISOCHRONE_BUFFER_M if buffer_m is None else float(buffer_m)
    fac = snapped[snapped["snapped"]]
    rows = []
    bar = tqdm(total=len(fac), desc="isochrones", unit="institution", disable=not progress)
    for ids, node_t in facility_node_times(net, fac, max_minutes=max(mins)):
        for k, fid in enumerate(ids):
            own = (int(fac.at[fid, "segment"]), float(fac.at[fid, "frac"]), float(fac.at[fid, "access_s"]))
            for m in mins:
                pieces = _pieces(net, *reached_intervals(net, node_t[k], m * 60.0, own=own))
                # buffering pieces one by one and then uniting them is ~8x faster than buffering a MultiLineString
                poly = shapely.union_all(shapely.buffer(np.asarray(pieces), buf, quad_segs=4)) if pieces else shapely.Polygon()
                rows.append((fid, m, shapely.simplify(poly, 2.0)))
            bar.update(1)
    bar.close()
    geo = gpd.GeoSeries([r[2] for r in rows], crs=net.crs)
    out = gpd.GeoDataFrame(
        {
            "facility_id": [r[0] for r in rows],
            "name": institutions.loc[[r[0] for r in rows], "name"].to_numpy(),
            "tier": institutions.loc[[r[0] for r in rows], "tier"].to_numpy(),
            "minutes": [r[1] for r in rows],
            "area_km2": (geo.area / 1e6).round(4).to_numpy(),
        },
        geometry=geo.to_crs("EPSG:4326").to_numpy(),
        crs="EPSG:4326",
    )
    return out
