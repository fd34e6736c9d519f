"""Grid inputs and reports: cell adjacency for the grid model, grid polygons, members and per-grid/district figures.

:func:`cell_adjacency` builds the adjacency :func:`planner.assignment.assign_lead_hospital` needs; the rest
reports on its result (any object with the ``assignment``, ``travel_time_s`` and ``loads`` of an
:class:`~planner.assignment.AssignmentResult`).
"""

from __future__ import annotations

import math
from typing import Literal, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from . import settings
from ._errors import InvalidValueError, MissingColumnError, NoCrsError

__all__ = ["attach_members", "cell_adjacency", "dissolve_grids", "district_summary", "grids_summary", "weighted_quantile"]

P95: float = 0.95  # quantile of the population-weighted travel-time percentiles


class GridAssignment(Protocol):
    """What the reports read from a grid assignment (an :class:`~planner.assignment.AssignmentResult`)."""

    assignment: pd.Series
    travel_time_s: pd.Series
    loads: pd.DataFrame


# --------------------------------------------------------------------------------------------------------------------
# adjacency
# --------------------------------------------------------------------------------------------------------------------


def cell_adjacency(
    cells: gpd.GeoDataFrame,
    *,
    contiguity: Literal["rook", "queen"] = "rook",
    link_islands: bool = False,
) -> pd.DataFrame:
    """Adjacency of demand cells, in long form.

    Two cells are adjacent when their polygons touch: along an edge
    (``rook``) or also at a corner (``queen``). Polygons must share exact
    coordinates where they meet, as the cells of
    :func:`planner.demand.load_population` do. Computed with a shapely
    STRtree ``touches`` query (vectorised), so no libpysal dependency is
    needed; libpysal's ``Rook``/``Queen`` give the same pairs.

    Parameters
    ----------
    cells
        Demand cells (polygons, any CRS) indexed by ``cell_id``.
    contiguity
        ``"rook"`` (shared edge; the default, so that a grid never hangs
        together by a corner) or ``"queen"`` (edge or corner).
    link_islands
        Join groups of cells that touch no other group (across a river or a
        lake, where empty cells are missing) to the nearest cell of another
        group, until all cells form one group; such pairs have
        ``link=True``.

    Returns
    -------
    adjacency
        Columns ``cell_id``, ``neighbor_id`` (both directions of every pair),
        ``distance_m`` (between cell centres, in metres) and ``link``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> boxes = [shapely.box(x, 0, x + 1, 1) for x in range(3)] + [shapely.box(1, 1, 2, 2)]
    >>> cells = gpd.GeoDataFrame(geometry=boxes, crs="EPSG:32650")
    >>> cell_adjacency(cells)[["cell_id", "neighbor_id"]].values.tolist()
    [[0, 1], [1, 0], [1, 2], [1, 3], [2, 1], [3, 1]]
    >>> len(cell_adjacency(cells, contiguity="queen"))
    10
    """
    if contiguity not in ("rook", "queen"):
        msg = f"contiguity={contiguity!r} is not known; fix: use 'rook' (shared edge) or 'queen' (edge or corner)"
        raise InvalidValueError(msg)
    if cells.crs is None:
        msg = "the cells have no CRS; fix: set it, e.g. cells.set_crs('EPSG:4326')"
        raise NoCrsError(msg)
    geoms = cells.geometry.to_numpy()
    a, b = shapely.STRtree(geoms).query(geoms, predicate="touches")
    if contiguity == "rook" and len(a):
        shared = shapely.intersection(geoms[a], geoms[b])
        keep = shapely.length(shared) > 0
        a, b = a[keep], b[keep]
    metric = cells if cells.crs.is_projected else cells.to_crs(cells.estimate_utm_crs())
    xy = shapely.get_coordinates(shapely.centroid(metric.geometry.to_numpy()))
    link = np.zeros(len(a), dtype=bool)
    if link_islands and len(cells) > 1:
        la, lb = _island_links(len(cells), a, b, xy)
        a, b = np.concatenate([a, la, lb]), np.concatenate([b, lb, la])
        link = np.concatenate([link, np.ones(2 * len(la), dtype=bool)])
    order = np.lexsort((b, a))
    a, b, link = a[order], b[order], link[order]
    ids = cells.index.to_numpy()
    return pd.DataFrame({"cell_id": ids[a], "neighbor_id": ids[b],
                         "distance_m": np.hypot(*(xy[a] - xy[b]).T), "link": link})


def _island_links(n: int, a: np.ndarray, b: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shortest centre-to-centre links joining all groups of touching cells (Borůvka rounds)."""
    la: list[int] = []
    lb: list[int] = []
    while True:
        g = sp.coo_matrix((np.ones(len(a) + len(la)), (np.concatenate([a, la]).astype(int),
                                                        np.concatenate([b, lb]).astype(int))), shape=(n, n))
        n_comp, label = connected_components(g, directed=False)
        if n_comp == 1:
            return np.asarray(la, dtype=np.int64), np.asarray(lb, dtype=np.int64)
        added = set()
        for c in range(n_comp):  # one query per group, not per cell
            inside = np.flatnonzero(label == c)
            outside = np.flatnonzero(label != c)
            dist, nearest = cKDTree(xy[outside]).query(xy[inside])
            k = np.asarray(nearest, dtype=np.int64)
            m = int(np.argmin(dist))
            pair = (int(inside[m]), int(outside[k[m]]))
            if (pair[1], pair[0]) not in added:
                added.add(pair)
        for u, v in sorted(added):
            la.append(u)
            lb.append(v)


def dissolve_grids(cells: gpd.GeoDataFrame, assignment: pd.Series, *, population_column: str = "population") -> gpd.GeoDataFrame:
    """Grid polygons: the cells of each lead dissolved into one (multi)polygon.

    Parameters
    ----------
    cells
        Demand cells indexed by ``cell_id``.
    assignment
        Lead id per cell (``AssignmentResult.assignment``); unassigned cells
        (None) are left out.
    population_column
        Column of `cells` holding persons.

    Returns
    -------
    grids
        Index ``facility_id`` (the lead), columns ``population``,
        ``n_cells`` and ``geometry`` in EPSG:4326, in the order the leads
        first appear in `assignment`.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> cells = gpd.GeoDataFrame({"population": [1.0, 2.0, 3.0]},
    ...                          geometry=[shapely.box(x, 0, x + 1, 1) for x in range(3)], crs="EPSG:32650")
    >>> g = dissolve_grids(cells, pd.Series(["A", "A", "B"]))
    >>> g["population"].tolist(), g["n_cells"].tolist(), g.geom_type.tolist()
    ([3.0, 3.0], [2, 1], ['Polygon', 'Polygon'])
    """
    lead = assignment.reindex(cells.index)
    keep = lead.notna().to_numpy()
    c = gpd.GeoDataFrame({"facility_id": lead[keep].to_numpy(), "population": cells[population_column].to_numpy()[keep],
                          "n_cells": 1}, geometry=cells.geometry.to_numpy()[keep], crs=cells.crs)
    order = pd.unique(c["facility_id"])
    out = c.dissolve(by="facility_id", aggfunc={"population": "sum", "n_cells": "sum"}).reindex(order)
    out.index.name = "facility_id"
    return out.to_crs("EPSG:4326")


def attach_members(
    institutions: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame,
    assignment: pd.Series,
    *,
    max_distance_m: float | None = None,
) -> pd.DataFrame:
    """Attach each institution (member) to the grid it serves: the grid of the cell it stands in.

    An institution outside every assigned cell joins the grid of the nearest
    assigned cell, up to `max_distance_m`.

    Parameters
    ----------
    institutions
        Institution points indexed by ``facility_id``.
    cells
        Demand cells indexed by ``cell_id``.
    assignment
        Lead id per cell (``AssignmentResult.assignment``).
    max_distance_m
        Largest distance in metres to the nearest assigned cell;
        ``settings.MAX_SNAP_M`` by default.

    Returns
    -------
    members
        Indexed like `institutions`: ``lead_id`` (None beyond
        `max_distance_m`), ``cell_id`` and ``distance_m`` (0 inside a cell).
    """
    max_d = settings.MAX_SNAP_M if max_distance_m is None else float(max_distance_m)
    lead = assignment.reindex(cells.index)
    keep = lead.notna().to_numpy()
    c = cells[keep]
    crs = cells.estimate_utm_crs() if cells.crs is not None and cells.crs.is_geographic else cells.crs
    cg = c.geometry.to_crs(crs).to_numpy()
    pts = institutions.geometry.to_crs(crs).to_numpy()
    out = pd.DataFrame({"lead_id": pd.Series([None] * len(institutions), index=institutions.index, dtype=object),
                        "cell_id": pd.Series([None] * len(institutions), index=institutions.index, dtype=object),
                        "distance_m": np.nan}, index=institutions.index)
    if len(cg) == 0 or len(pts) == 0:
        return out
    (pi, ci), dist = shapely.STRtree(cg).query_nearest(pts, max_distance=max_d, return_distance=True, all_matches=False)
    out.iloc[pi, 0] = lead[keep].to_numpy()[ci]
    out.iloc[pi, 1] = c.index.to_numpy()[ci]
    out.iloc[pi, 2] = np.round(dist, 1)
    return out


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Population-weighted quantile: the smallest value with at least `q` of the weight at or below it.

    Parameters
    ----------
    values
        Values (e.g. seconds); NaN entries are ignored.
    weights
        Weights (e.g. persons), >= 0.
    q
        Quantile in [0, 1].

    Returns
    -------
    quantile
        NaN when there is no weight.

    Examples
    --------
    >>> weighted_quantile(np.array([10.0, 20.0, 30.0]), np.array([50.0, 45.0, 5.0]), 0.95)
    20.0
    """
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    ok = np.isfinite(v) & (w > 0)
    v, w = v[ok], w[ok]
    if w.sum() <= 0:
        return math.nan
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order])
    k = int(np.searchsorted(cum, q * cum[-1] * (1 - 1e-12), side="left"))
    return float(v[order][min(k, len(v) - 1)])


def _time_stats(t: pd.Series, w: pd.Series, key: pd.Series) -> pd.DataFrame:
    df = pd.DataFrame({"t": t.to_numpy(dtype=float), "w": w.to_numpy(dtype=float), "key": key.to_numpy()})
    df = df[df["key"].notna() & np.isfinite(df["t"])]
    rows = {}
    for k, grp in df.groupby("key", sort=False):  # one row per grid or district
        ww = grp["w"].to_numpy()
        tt = grp["t"].to_numpy()
        rows[k] = {"mean_travel_time_min": float((tt * ww).sum() / ww.sum()) / 60 if ww.sum() > 0 else math.nan,
                   "p95_travel_time_min": weighted_quantile(tt, ww, P95) / 60,
                   "max_travel_time_min": float(tt.max()) / 60}
    return pd.DataFrame.from_dict(rows, orient="index")


def _tier_counts(inst: pd.DataFrame, key: pd.Series, prefix: str) -> pd.DataFrame:
    tiers = inst["tier"] if "tier" in inst.columns else pd.Series("unknown", index=inst.index)
    df = pd.DataFrame({"key": key.to_numpy(), "tier": tiers.to_numpy()})
    df = df[df["key"].notna()]
    out = pd.crosstab(df["key"], df["tier"]).reindex(columns=list(settings.TIERS), fill_value=0)
    out.columns = [f"{prefix}_{t}" for t in out.columns]
    out[prefix] = out.sum(axis=1)
    return out


def _capacity_of(rows: pd.DataFrame, ids: pd.Index) -> np.ndarray:
    """Capacity (NaN where unknown) of the rows with these ids."""
    c = pd.to_numeric(rows["capacity"], errors="coerce") if "capacity" in rows.columns else pd.Series(np.nan, index=rows.index)
    return np.asarray(c.reindex(ids).to_numpy(), dtype=float)


def grids_summary(
    result: GridAssignment,
    cells: pd.DataFrame,
    *,
    institutions: pd.DataFrame | None = None,
    leads: pd.DataFrame | None = None,
    population_column: str = "population",
) -> pd.DataFrame:
    """Per-grid figures: load against the capacity share, travel time to the lead, members by tier.

    Parameters
    ----------
    result
        Output of :func:`assign_lead_hospital`.
    cells
        Demand cells indexed by ``cell_id`` (the `demand` of the call).
    institutions
        Institutions (``tier``, optional ``name``, ``capacity`` and
        geometry), attached to grids as members (:func:`attach_members`,
        which needs point geometry). Without `leads`, the leads are the
        institutions whose id is a lead id, and their names come from here.
    leads
        The leads (``name``, optional ``capacity``) when they have their own
        id space (a leads file): then every row of `institutions` is a
        member, even one whose id equals a lead's id.
    population_column
        Column of `cells` holding persons.

    Returns
    -------
    grids
        Index ``facility_id`` (the lead): ``name``, the `loads` columns,
        ``within_tolerance``, ``mean_travel_time_min``,
        ``p95_travel_time_min`` (population-weighted 95th percentile),
        ``max_travel_time_min``, ``members`` and ``members_<tier>``,
        ``capacity`` (beds of the lead and its members, where known),
        ``capacity_missing`` (how many of them lack one) and
        ``capacity_per_1000`` (per 1,000 residents of the grid).
    """
    loads = result.loads.copy()
    loads["within_tolerance"] = (loads["population"] >= loads["min_population"] - 1e-6) & (
        loads["population"] <= loads["max_population"] + 1e-6)
    stats = _time_stats(result.travel_time_s, cells[population_column], result.assignment)
    out = loads.join(stats)
    if institutions is not None:
        if leads is not None:
            lead_rows, members = leads, institutions
        else:
            is_lead = institutions.index.isin(out.index)
            lead_rows, members = institutions[is_lead], institutions[~is_lead]
        if "name" in lead_rows.columns:
            out.insert(0, "name", lead_rows["name"].reindex(out.index).to_numpy())
        if isinstance(institutions, gpd.GeoDataFrame) and len(members):
            att = attach_members(members, gpd.GeoDataFrame(cells), result.assignment)
            key = att["lead_id"]
        else:
            key = pd.Series([None] * len(members), index=members.index, dtype=object)
        out = out.join(_tier_counts(members, key, "members")).fillna(
            {f"members_{t}": 0 for t in settings.TIERS} | {"members": 0})
        # lead and member capacities stay in their own id spaces: never one index over both
        df = pd.DataFrame({"grid": np.concatenate([out.index.to_numpy(dtype=object), key.to_numpy(dtype=object)]),
                           "cap": np.concatenate([_capacity_of(lead_rows, out.index), _capacity_of(members, members.index)])})
        df = df[df["grid"].notna()]
        agg = df.groupby("grid").agg(capacity=("cap", lambda s: s.sum(min_count=1)),
                                      capacity_missing=("cap", lambda s: int(s.isna().sum())))
        out = out.join(agg)
        out["capacity_per_1000"] = out["capacity"] / out["population"] * 1000
        for c in ["members", *[f"members_{t}" for t in settings.TIERS], "capacity_missing"]:
            out[c] = out[c].fillna(0).astype(int)
    out.index.name = "facility_id"
    return out


def district_summary(
    result: GridAssignment,
    cells: pd.DataFrame,
    *,
    institutions: pd.DataFrame | None = None,
    population_column: str = "population",
) -> pd.DataFrame:
    """Per-district resource balance: institutions by tier, capacity per 1,000 residents, time to the lead.

    Parameters
    ----------
    result
        Output of :func:`assign_lead_hospital`.
    cells
        Demand cells indexed by ``cell_id`` with a ``district`` column.
    institutions
        All institutions with ``tier``, a ``district`` column and optional
        ``capacity``.
    population_column
        Column of `cells` holding persons.

    Returns
    -------
    districts
        Index ``district``: ``population``, ``population_assigned``,
        ``n_grids`` (leads serving it), ``main_lead`` (the lead serving most
        of its residents), ``mean_travel_time_min``, ``p95_travel_time_min``,
        ``max_travel_time_min`` (to the assigned lead), ``institutions`` and
        ``institutions_<tier>``, ``capacity`` (where known),
        ``capacity_missing`` and ``capacity_per_1000``.

    Raises
    ------
    MissingColumnError
        If `cells` has no ``district`` column.
    """
    if "district" not in cells.columns:
        msg = "cells have no 'district' column; fix: load the case with boundaries (load_case(..., boundaries=...))"
        raise MissingColumnError(msg)
    dist = cells["district"].fillna("(outside districts)")
    pop = cells[population_column].astype(float)
    assigned = result.assignment.reindex(cells.index)
    df = pd.DataFrame({"district": dist.to_numpy(), "pop": pop.to_numpy(), "lead": assigned.to_numpy()})
    base = df.groupby("district", sort=True).agg(population=("pop", "sum"))
    a = df[df["lead"].notna()]
    base["population_assigned"] = a.groupby("district")["pop"].sum()
    base["n_grids"] = a.groupby("district")["lead"].nunique()
    main = a.groupby(["district", "lead"])["pop"].sum().reset_index().sort_values(["district", "pop"], ascending=[True, False])
    base["main_lead"] = main.drop_duplicates("district").set_index("district")["lead"]
    base = base.join(_time_stats(result.travel_time_s.reindex(cells.index), pop, dist.where(assigned.notna())))
    if institutions is not None:
        if "district" not in institutions.columns:
            msg = "institutions have no 'district' column; fix: load the case with boundaries"
            raise MissingColumnError(msg)
        key = institutions["district"]
        base = base.join(_tier_counts(institutions, key, "institutions"))
        cap = pd.to_numeric(institutions["capacity"], errors="coerce") if "capacity" in institutions.columns else \
            pd.Series(np.nan, index=institutions.index)
        c = pd.DataFrame({"district": key.to_numpy(), "cap": cap.to_numpy()})
        c = c[c["district"].notna()]
        base = base.join(c.groupby("district").agg(capacity=("cap", lambda s: s.sum(min_count=1)),
                                                   capacity_missing=("cap", lambda s: int(s.isna().sum()))))
        base["capacity_per_1000"] = base["capacity"] / base["population"] * 1000
        for col in ["institutions", *[f"institutions_{t}" for t in settings.TIERS], "capacity_missing"]:
            base[col] = base[col].fillna(0).astype(int)
    base["population_assigned"] = base["population_assigned"].fillna(0.0)
    base["n_grids"] = base["n_grids"].fillna(0).astype(int)
    base.index.name = "district"
    return base
