"""The 15-minute medical service circle: who is covered, by which tier, where the gaps are.

:func:`coverage_by_cell` gives, for every demand cell, the travel time to the
nearest institution of any tier and of each tier, and a status:

* ``reached`` - a route exists;
* ``unsnapped`` - the cell centre is farther than ``max_snap_m`` from any road;
* ``no_route`` - it snaps, but no institution can be reached (e.g. one-way
  streets, or no institution snapped at all).

Cells that are not ``reached``, or are reached in more than the service
threshold, are *gaps*. :func:`coverage_summary` turns this into the figures a
report needs: coverage per threshold, per tier and per district.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import settings
from ._validate import check_minutes
from .travel_time import CompiledNetwork, nearest_facility_times, snap_points

logger = logging.getLogger(__name__)

STATUS_REACHED = "reached"
STATUS_UNSNAPPED = "unsnapped"
STATUS_NO_ROUTE = "no_route"


def compute_study_area(
    net: CompiledNetwork,
    *,
    boundaries: gpd.GeoDataFrame | None = None,
    buffer_m: float | None = None,
) -> shapely.Geometry:
    """Return the area a coverage run speaks for: the network's extent (within boundaries).

    Parameters
    ----------
    net
        Compiled network.
    boundaries
        Optional district polygons; the study area is clipped to their union.
    buffer_m
        Buffer in metres around the convex hull of the network nodes;
        ``settings.MAX_SNAP_M`` by default, so every cell that could snap is in.

    Returns
    -------
    area
        Polygon in EPSG:4326.
    """
    buf = settings.MAX_SNAP_M if buffer_m is None else float(buffer_m)
    hull = shapely.convex_hull(shapely.multipoints(net.node_xy)).buffer(buf)
    area = gpd.GeoSeries([hull], crs=net.crs).to_crs("EPSG:4326").iloc[0]
    if boundaries is not None:
        area = shapely.intersection(area, shapely.union_all(boundaries.to_crs("EPSG:4326").geometry.to_numpy()))
    return area


def assign_districts(cells: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, *, name_column: str = "name") -> pd.Series:
    """Name the district each cell's centre lies in.

    Parameters
    ----------
    cells
        Demand cells.
    districts
        District polygons.
    name_column
        Column with district names.

    Returns
    -------
    district
        Indexed like `cells`; None for cells outside every district.
    """
    d = districts.to_crs(cells.crs)
    centres = gpd.GeoDataFrame(geometry=shapely.centroid(cells.geometry.to_numpy()), index=cells.index, crs=cells.crs)
    joined = gpd.sjoin(centres, d[[name_column, d.geometry.name]], how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    return joined[name_column].astype("object").where(joined[name_column].notna(), None).rename("district")


def coverage_by_cell(
    net: CompiledNetwork,
    cells: gpd.GeoDataFrame,
    institutions: gpd.GeoDataFrame,
    *,
    max_snap_m: float | None = None,
    institutions_snapped: pd.DataFrame | None = None,
    access_speed_kph: float | None = None,
    cells_snapped: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Travel time from every cell to the nearest institution, overall and per tier.

    Parameters
    ----------
    net
        Compiled network.
    cells
        Demand cells indexed by ``cell_id`` with ``population``.
    institutions
        Institutions indexed by ``facility_id`` with ``name`` and ``tier``.
    max_snap_m
        Snap distance in metres; ``settings.MAX_SNAP_M`` by default.
    institutions_snapped
        Precomputed :func:`snap_points` result for `institutions`.
    access_speed_kph
        Speed of the straight-line access legs in km/h (walking speed by default).
    cells_snapped
        Precomputed :func:`snap_points` result for `cells`.

    Returns
    -------
    cells
        A copy of `cells` (same index) with ``snap_m``, ``status``,
        ``facility_id``, ``facility_name``, ``facility_tier``,
        ``travel_time_min`` and ``time_<tier>_min`` for each tier present.
    """
    snap_c = cells_snapped if cells_snapped is not None else snap_points(
        net, cells, max_snap_m=max_snap_m, access_speed_kph=access_speed_kph)
    snap_f = institutions_snapped if institutions_snapped is not None else snap_points(
        net, institutions, max_snap_m=max_snap_m, access_speed_kph=access_speed_kph)
    out = cells.copy()
    out["snap_m"] = snap_c["snap_m"].round(1)
    nearest = nearest_facility_times(net, snap_c, snap_f)
    out["facility_id"] = nearest["facility_id"]
    out["facility_name"] = institutions["name"].reindex(nearest["facility_id"].to_numpy()).to_numpy()
    out["facility_tier"] = institutions["tier"].reindex(nearest["facility_id"].to_numpy()).to_numpy()
    out["travel_time_min"] = (nearest["travel_time_s"] / 60.0).round(3)
    for tier in settings.TIERS:
        members = institutions.index[institutions["tier"] == tier]
        if len(members) == 0:
            continue
        t = nearest_facility_times(net, snap_c, snap_f.loc[members])
        out[f"time_{tier}_min"] = (t["travel_time_s"] / 60.0).round(3)
    status = np.where(~snap_c["snapped"].to_numpy(), STATUS_UNSNAPPED,
                      np.where(out["travel_time_min"].notna().to_numpy(), STATUS_REACHED, STATUS_NO_ROUTE))
    out["status"] = status
    return out


def coverage_summary(
    cov: gpd.GeoDataFrame,
    institutions: gpd.GeoDataFrame,
    institutions_snapped: pd.DataFrame,
    *,
    minutes: Iterable[float] | None = None,
    district_totals: pd.Series | None = None,
) -> dict[str, Any]:
    """Summarise coverage for a report.

    Parameters
    ----------
    cov
        Result of :func:`coverage_by_cell`, optionally with a ``district`` column.
    institutions
        Institutions with ``name`` and ``tier``.
    institutions_snapped
        :func:`snap_points` result for `institutions`.
    minutes
        Thresholds in minutes; the largest is the service threshold.
    district_totals
        Population of each whole district (also outside the study area), to
        report the share of each district the run speaks for.

    Returns
    -------
    summary
        ``population_total``, ``population_covered`` and ``coverage_pct`` at
        the largest threshold; ``thresholds`` (one row per threshold);
        ``by_tier``; ``by_district``; ``cells`` (counts, unreachable cells and
        population); ``institutions`` (counts by tier and tier source, and the
        unsnapped ones with their distance to the nearest road).
    """
    mins = check_minutes(settings.THRESHOLDS_MINUTES if minutes is None else minutes)
    tmax = max(mins)
    pop = cov["population"].to_numpy(dtype=float)
    total = float(pop.sum())
    t = cov["travel_time_min"].to_numpy(dtype=float)

    thresholds = []
    for m in mins:
        covered = float(pop[np.nan_to_num(t, nan=np.inf) <= m].sum())
        thresholds.append({"minutes": m, "population_covered": round(covered, 1), "coverage_pct": _pct(covered, total)})
    covered_max = thresholds[-1]["population_covered"]

    by_tier: dict[str, Any] = {}
    for tier in settings.TIERS:
        n_inst = int((institutions["tier"] == tier).sum())
        col = f"time_{tier}_min"
        if col in cov:
            tt = np.nan_to_num(cov[col].to_numpy(dtype=float), nan=np.inf)
            c = float(pop[tt <= tmax].sum())
        else:
            c = 0.0
        nearest = float(pop[(cov["facility_tier"] == tier).to_numpy() & (np.nan_to_num(t, nan=np.inf) <= tmax)].sum())
        by_tier[tier] = {
            "label_zh": settings.TIER_LABELS_ZH[tier],
            "institutions": n_inst,
            "population_covered": round(c, 1),
            "coverage_pct": _pct(c, total),
            "population_nearest_covered": round(nearest, 1),
        }

    by_district = _district_rows(cov, institutions, t, pop, tmax, district_totals) if "district" in cov else []

    status = cov["status"].to_numpy()
    unsnapped = status == STATUS_UNSNAPPED
    no_route = status == STATUS_NO_ROUTE
    gap = ~(np.nan_to_num(t, nan=np.inf) <= tmax)
    bad = institutions_snapped[~institutions_snapped["snapped"]]
    return {
        "population_total": round(total, 1),
        "population_covered": covered_max,
        "coverage_pct": thresholds[-1]["coverage_pct"],
        "max_minutes": tmax,
        "thresholds": thresholds,
        "by_tier": by_tier,
        "by_district": by_district,
        "cells": {
            "total": len(cov),
            "reached": int((status == STATUS_REACHED).sum()),
            "unreachable": int((unsnapped | no_route).sum()),
            "unsnapped": int(unsnapped.sum()),
            "no_route": int(no_route.sum()),
            "population_unreachable": round(float(pop[unsnapped | no_route].sum()), 1),
            "gap_cells": int(gap.sum()),
            "gap_population": round(float(pop[gap].sum()), 1),
        },
        "institutions": {
            "total": len(institutions),
            "snapped": int(institutions_snapped["snapped"].sum()),
            "unsnapped": len(bad),
            "unsnapped_list": [
                {"facility_id": str(fid), "name": str(institutions.at[fid, "name"]),
                 "nearest_road_m": round(float(bad.at[fid, "snap_m"]), 1)}
                for fid in bad.index
            ],
            "by_tier": {tier: int((institutions["tier"] == tier).sum()) for tier in settings.TIERS},
            "tier_source": {k: int(v) for k, v in institutions["tier_source"].value_counts().sort_index().items()},
        },
    }


def _pct(x: float, of: float) -> float:
    """`x` as a percentage of `of`, to 0.01 (0 when `of` is 0)."""
    return round(100.0 * x / of, 2) if of > 0 else 0.0


def _district_rows(cov: gpd.GeoDataFrame, institutions: gpd.GeoDataFrame, t: np.ndarray, pop: np.ndarray, tmax: float,
                   district_totals: pd.Series | None) -> list[dict[str, Any]]:
    """One summary row per district: population, covered within `tmax` minutes, gap, mean time, institutions."""
    by_district = []
    d = cov.assign(_c=np.where(np.nan_to_num(t, nan=np.inf) <= tmax, pop, 0.0),
                   _mean=np.where(np.isfinite(t), t * pop, 0.0), _w=np.where(np.isfinite(t), pop, 0.0))
    d["district"] = d["district"].fillna("(outside districts)")
    for name, grp in d.groupby("district", sort=True):
        p_ = float(grp["population"].sum())
        c_ = float(grp["_c"].sum())
        row: dict[str, Any] = {
            "district": name,
            "population": round(p_, 1),
            "population_covered": round(c_, 1),
            "coverage_pct": _pct(c_, p_),
            "gap_population": round(p_ - c_, 1),
            "mean_travel_time_min": round(float(grp["_mean"].sum() / grp["_w"].sum()), 2) if grp["_w"].sum() > 0 else None,
            "institutions": int((institutions.get("district") == name).sum()) if "district" in institutions else None,
        }
        if district_totals is not None and name in district_totals.index:
            whole = float(district_totals[name])
            row["district_population_total"] = round(whole, 1)
            row["share_in_study_area_pct"] = _pct(p_, whole)
        by_district.append(row)
    return by_district
