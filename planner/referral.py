"""Referral times between tiers (双向转诊): from each institution of some tiers to the nearest of others.

Township health centres and community centres (``primary``) refer patients
up to secondary and tertiary hospitals; the question is how long the trip
takes. :func:`referral_times` answers it for every institution of the
*from* tiers: the fastest trip to the nearest institution of the *to* tiers
and, when a grid run is given, to the institution's own lead hospital.
:func:`referral_summary` turns the table into the report figures, including
the share of residents whose nearest from-tier institution can refer within
the threshold. :func:`referral_routes` gives the route lines, for maps.

Trips are routed exactly as coverage routes residents
(:mod:`planner.travel_time`): both ends are snapped onto the nearest road
segment with :func:`~planner.travel_time.snap_points` (straight-line access
legs at walking speed, partial segments, one-way rules on them too), and
times run *from* the referring institution *to* the receiving one, so one-way
streets count in the direction travelled. The routes come from one
multi-source Dijkstra on the reversed graph (nearest receiving institution)
and one single-source Dijkstra per lead, with predecessors, so the distance
of the fastest route is known as well as its time.

``distance_km`` is the length of that fastest route: both straight-line
access legs plus the road length along the route (the partial segments at
both ends included), measured on the road geometries in the network's
metric CRS (UTM, on the ellipsoid: for a centreline layer this is its
``length``; OSM ``length`` is a spherical great-circle sum, which differs
from it by up to 0.3 % per road in the shipped extracts). Where parallel
roads join the same two junctions, the faster one is the route; of equally
fast ones, the shorter.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.ops
from scipy.sparse.csgraph import dijkstra

from . import settings
from ._errors import InvalidValueError, MissingColumnError, UnreachableFacilityError
from ._validate import check_limit
from .travel_time import (
    CompiledNetwork,
    _origin_times_from_node_times,
    _partial,
    _reverse_graph_with_sources,
    _same_segment_times,
    nearest_facility_times,
    snap_points,
)

logger = logging.getLogger(__name__)

__all__ = ["LEAD_COLUMNS", "REFERRAL_COLUMNS", "referral_routes", "referral_summary", "referral_times"]

REFERRAL_COLUMNS = ("from_id", "from_name", "from_tier", "to_id", "to_name", "to_tier", "travel_time_min",
                    "distance_km", "within_threshold", "status")
LEAD_COLUMNS = ("lead_id", "lead_name", "lead_tier", "lead_travel_time_min", "lead_distance_km",
                "lead_within_threshold", "lead_status")
_LEAD_CHUNK = 32  # leads per Dijkstra call (bounds memory at chunk x nodes floats)
_SAME_VERTEX_M = 1e-4  # metres; consecutive route vertices closer than this are one


def referral_times(
    net: CompiledNetwork,
    institutions: gpd.GeoDataFrame,
    *,
    from_tiers: str | Iterable[str],
    to_tiers: str | Iterable[str],
    max_minutes: float,
    leads: gpd.GeoDataFrame | None = None,
    lead_of: Mapping[Any, Any] | pd.Series | None = None,
    max_snap_m: float | None = None,
    access_speed_kph: float | None = None,
) -> pd.DataFrame:
    """Travel time from every institution of the from-tiers to the nearest of the to-tiers.

    Parameters
    ----------
    net
        Compiled network (:func:`planner.travel_time.compile_network`).
    institutions
        Institutions indexed by ``facility_id`` with ``name``, ``tier`` and a
        point geometry (:func:`planner.institutions.load_institutions`); a
        ``district`` column, when present, is carried into the table.
    from_tiers, to_tiers
        Tiers that refer and tiers that receive (``primary``, ``secondary``,
        ...); one tier or several. No tier may be in both.
    max_minutes
        Referral threshold in minutes (e.g. 30, the "half an hour" of the
        Jiangmen branch sites).
    leads
        Lead hospitals indexed by their id, with ``name`` (and ``tier``, if
        known) and a point geometry, e.g. a grid run's ``leads``.
    lead_of
        Lead id of each from-institution (from id → lead id), e.g. a grid
        run's ``members["lead_id"]``; institutions missing from it get
        ``lead_status`` ``no_lead``.
    max_snap_m
        Largest distance in metres from an institution to a road;
        ``settings.MAX_SNAP_M`` by default.
    access_speed_kph
        Speed of the straight-line access legs in km/h; walking speed by
        default, as in coverage.

    Returns
    -------
    table
        One row per from-institution, in the order of `institutions`:
        ``from_id``, ``from_name``, ``from_tier``, ``to_id``, ``to_name``,
        ``to_tier``, ``travel_time_min``, ``distance_km``,
        ``within_threshold`` (bool) and ``status``: ``ok``, ``unsnapped``
        (farther than `max_snap_m` from a road) or ``unreachable`` (no route
        to any to-tier institution); times and distances are NaN unless
        ``ok``. Plus ``district`` when `institutions` has it, and, with
        `leads` and `lead_of`, the same figures for the own lead:
        ``lead_id``, ``lead_name``, ``lead_tier``, ``lead_travel_time_min``,
        ``lead_distance_km``, ``lead_within_threshold`` and ``lead_status``
        (``ok``, ``unsnapped``, ``no_lead``, ``lead_unsnapped`` or
        ``unreachable``, the first that applies). ``table.attrs`` holds ``max_minutes``,
        ``from_tiers`` and ``to_tiers``.

    Raises
    ------
    MissingColumnError
        If `institutions` lacks ``name`` or ``tier``.
    InvalidValueError
        If a tier is unknown, in both lists, or has no institution; if no
        from-institution can reach a to-tier one within `max_minutes` (the
        message gives the nearest time); if `lead_of` names a lead that is
        not in `leads`.
    UnreachableFacilityError
        If no to-tier institution lies near enough to a road to be routed to.

    Examples
    --------
    >>> from planner import datasets
    >>> from planner.pipeline import Case
    >>> case = Case(network=datasets.get_path("wuhan_roads"), institutions=datasets.get_path("wuhan_institutions"),
    ...             population=datasets.get_path("wuhan_population"), mode="drive").load()
    >>> t = referral_times(case.net, case.institutions, from_tiers="primary", to_tiers=("secondary", "tertiary"),
    ...                    max_minutes=30)
    >>> len(t) == int((case.institutions["tier"] == "primary").sum())
    True
    >>> bool((t["travel_time_min"] <= 30).eq(t["within_threshold"]).all())
    True
    """
    frm_t, to_t = _check_tiers(institutions, from_tiers, to_tiers)
    minutes = check_limit("minutes", max_minutes, label="max_minutes")
    max_snap = check_limit("max_snap_m", settings.MAX_SNAP_M if max_snap_m is None else max_snap_m)
    tier = institutions["tier"].astype(str)
    frm = institutions[tier.isin(frm_t).to_numpy()]
    to = institutions[tier.isin(to_t).to_numpy()]
    s_frm = snap_points(net, frm, max_snap_m=max_snap, access_speed_kph=access_speed_kph)
    s_to = snap_points(net, to, max_snap_m=max_snap, access_speed_kph=access_speed_kph)
    if not s_to["snapped"].any():
        msg = (f"none of the {len(to)} {'/'.join(to_t)} institutions lies within {max_snap:g} m of a road (nearest is "
               f"{s_to['snap_m'].min():.0f} m away); fix: check their coordinates' datum and that the network covers them")
        raise UnreachableFacilityError(msg)

    fac = s_to[s_to["snapped"]]
    t_s, pos, dist_m = _route_nearest(net, s_frm, fac)
    to_id = np.array([None] * len(frm), dtype=object)
    ok = np.isfinite(t_s)
    to_id[ok] = fac.index.to_numpy()[pos[ok]]
    _check_reachable(s_frm, t_s, minutes=minutes, frm_t=frm_t, to_t=to_t)

    status = np.where(~s_frm["snapped"].to_numpy(), "unsnapped", np.where(ok, "ok", "unreachable"))
    to_rows = to.reindex(pd.Index(to_id, dtype=object))
    table = pd.DataFrame({
        "from_id": frm.index.to_numpy(), "from_name": frm["name"].to_numpy(), "from_tier": frm["tier"].to_numpy(),
        "to_id": to_id, "to_name": to_rows["name"].to_numpy(dtype=object), "to_tier": to_rows["tier"].to_numpy(dtype=object),
        "travel_time_min": t_s / 60.0, "distance_km": dist_m / 1000.0,
        "within_threshold": ok & (t_s <= minutes * 60.0), "status": status,
    })
    if "district" in frm.columns:
        table["district"] = frm["district"].to_numpy(dtype=object)
    if leads is not None and lead_of is not None:
        table = pd.concat([table, _lead_columns(net, frm, s_frm, leads, lead_of, minutes=minutes, max_snap_m=max_snap,
                                                access_speed_kph=access_speed_kph)], axis=1)
    elif (leads is None) != (lead_of is None):
        msg = "referral_times: give both leads= and lead_of= (the lead hospitals and each institution's lead), or neither"
        raise TypeError(msg)
    table.attrs.update(max_minutes=minutes, from_tiers=list(frm_t), to_tiers=list(to_t))
    return table


def referral_summary(
    table: pd.DataFrame,
    *,
    net: CompiledNetwork | None = None,
    institutions: gpd.GeoDataFrame | None = None,
    cells: gpd.GeoDataFrame | None = None,
    population_column: str = "population",
    max_snap_m: float | None = None,
    access_speed_kph: float | None = None,
    cells_snapped: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Summarise a referral table: the share within the threshold, overall, per district and lead, per resident.

    Parameters
    ----------
    table
        Output of :func:`referral_times`.
    net, institutions, cells
        For the population-weighted share: the compiled network, the
        institutions the table was computed from and the demand cells (with
        `population_column`, and ``district`` for the per-district share).
        Each cell's nearest from-tier institution is found by the coverage
        travel time from the cell (:func:`planner.travel_time.nearest_facility_times`).
    population_column
        Column of `cells` holding residents.
    max_snap_m, access_speed_kph
        Snapping of the cells, as in coverage (``settings`` defaults).
    cells_snapped
        The cells already snapped (:func:`planner.travel_time.snap_points`), to
        skip snapping them again.

    Returns
    -------
    summary
        ``max_minutes``, ``from_tiers``, ``to_tiers``, ``n_from``,
        ``n_within``, ``within_pct`` (of all from-institutions, unsnapped and
        unreachable ones counted as not within), ``n_unsnapped``,
        ``n_unreachable``, ``within_pct_snapped`` (of the from-institutions
        on the network), ``median_travel_time_min``,
        ``max_travel_time_min``; ``by_district`` (list of dicts: ``district``,
        ``n_from``, ``n_within``, ``within_pct``) when the table has
        ``district``; ``by_lead`` (``lead_id``, ``lead_name``, ``n_from``,
        ``n_within``, ``within_pct`` to the nearest to-tier institution,
        ``n_lead_within``, ``lead_within_pct`` to the own lead) and
        ``lead_within_pct`` when it has lead columns; and, with cells,
        ``population`` (``total``, ``within``, ``within_pct``,
        ``no_from_institution``: residents who reach no from-institution at
        all, counted as not within) and ``population_by_district``.

    Raises
    ------
    MissingColumnError
        If `cells` lacks `population_column`.
    TypeError
        If `cells` is given without `net` and `institutions`.
    """
    within = table["within_threshold"].to_numpy(dtype=bool)
    ok = table["status"].to_numpy() == "ok"
    times = table.loc[ok, "travel_time_min"]
    out: dict[str, Any] = {
        "max_minutes": table.attrs.get("max_minutes"), "from_tiers": table.attrs.get("from_tiers"),
        "to_tiers": table.attrs.get("to_tiers"), "n_from": len(table), "n_within": int(within.sum()),
        "within_pct": _pct(within.sum(), len(table)),
        "n_unsnapped": int((table["status"] == "unsnapped").sum()),
        "n_unreachable": int((table["status"] == "unreachable").sum()),
        "within_pct_snapped": _pct(within.sum(), int((table["status"] != "unsnapped").sum())),
        "median_travel_time_min": _round(times.median()) if len(times) else None,
        "max_travel_time_min": _round(times.max()) if len(times) else None,
    }
    if "district" in table.columns:
        g = table.assign(w=within).groupby(table["district"].fillna("(none)").astype(str), sort=True)["w"]
        out["by_district"] = [{"district": d, "n_from": int(s.size), "n_within": int(s.sum()),
                               "within_pct": _pct(s.sum(), s.size)} for d, s in g]
    if "lead_id" in table.columns:
        lw = table["lead_within_threshold"].to_numpy(dtype=bool)
        has = table["lead_id"].notna().to_numpy()
        out["lead_within_pct"] = _pct(lw[has].sum(), has.sum())
        rows = []
        for lid, sub in table[has].assign(w=within[has], lw=lw[has]).groupby("lead_id", sort=True):
            rows.append({"lead_id": lid, "lead_name": sub["lead_name"].iloc[0], "n_from": len(sub),
                         "n_within": int(sub["w"].sum()), "within_pct": _pct(sub["w"].sum(), len(sub)),
                         "n_lead_within": int(sub["lw"].sum()), "lead_within_pct": _pct(sub["lw"].sum(), len(sub))})
        out["by_lead"] = rows
    if cells is not None:
        if net is None or institutions is None:
            msg = "referral_summary: the population-weighted share needs net= and institutions= with cells="
            raise TypeError(msg)
        out.update(_population_share(table, net, institutions, cells, population_column=population_column,
                                     max_snap_m=max_snap_m, access_speed_kph=access_speed_kph, cells_snapped=cells_snapped))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# checks


def _tier_tuple(tiers: str | Iterable[str], *, what: str) -> tuple[str, ...]:
    out = (tiers,) if isinstance(tiers, str) else tuple(dict.fromkeys(str(t) for t in tiers))
    bad = [t for t in out if t not in settings.TIERS]
    if not out or bad:
        msg = f"{what} {bad or list(out)} must be tiers among {', '.join(settings.TIERS)}; fix: e.g. {what}=('primary',)"
        raise InvalidValueError(msg)
    return out


def _check_tiers(institutions: gpd.GeoDataFrame, from_tiers: str | Iterable[str],
                 to_tiers: str | Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the from- and to-tiers as tuples; raise if unknown, overlapping or without institutions."""
    for col in ("name", "tier"):
        if col not in institutions.columns:
            msg = f"institutions: column '{col}' is missing; fix: load them with planner.institutions.load_institutions"
            raise MissingColumnError(msg)
    frm, to = _tier_tuple(from_tiers, what="from_tiers"), _tier_tuple(to_tiers, what="to_tiers")
    both = [t for t in frm if t in to]
    if both:
        msg = f"tier {', '.join(both)} is both a from-tier and a to-tier; fix: refer between different tiers"
        raise InvalidValueError(msg)
    counts = institutions["tier"].astype(str).value_counts()
    present = ", ".join(f"{t} {int(counts[t])}" for t in settings.TIERS if t in counts.index) or "none"
    for role, tiers in (("from", frm), ("to", to)):
        if int(counts.reindex(list(tiers), fill_value=0).sum()) == 0:
            msg = (f"no institution of {role}-tier {'/'.join(tiers)} among the {len(institutions)} institutions "
                   f"(tiers present: {present}); fix: choose {role}-tiers that have institutions, or check the tier column")
            raise InvalidValueError(msg)
    return frm, to


def _check_reachable(s_frm: pd.DataFrame, t_s: np.ndarray, *, minutes: float, frm_t: tuple[str, ...],
                     to_t: tuple[str, ...]) -> None:
    """Raise when no from-institution reaches a to-tier institution within `minutes`, naming what is reachable."""
    if np.isfinite(t_s).any() and np.nanmin(t_s) <= minutes * 60.0:
        return
    frm_s, to_s = "/".join(frm_t), "/".join(to_t)
    n_snapped = int(s_frm["snapped"].sum())
    if n_snapped == 0:
        msg = (f"none of the {len(s_frm)} {frm_s} institutions lies within the snap distance of a road (nearest is "
               f"{s_frm['snap_m'].min():.0f} m away), so none can refer to a {to_s} one; fix: check their coordinates")
    elif not np.isfinite(t_s).any():
        msg = (f"no {to_s} institution is reachable from any {frm_s} one on this network ({n_snapped} {frm_s} "
               "institutions snapped); fix: check the mode and that the network connects them")
    else:
        msg = (f"no {to_s} institution is reachable from any {frm_s} one within {minutes:g} min; the nearest is "
               f"{np.nanmin(t_s) / 60.0:.1f} min away; fix: raise max_minutes (--minutes) or check the mode")
    raise InvalidValueError(msg)


# ---------------------------------------------------------------------------------------------------------------------
# routing with distances


def _segment_lengths(net: CompiledNetwork) -> np.ndarray:
    """Length in metres of each road segment (its geometry in the metric CRS)."""
    return np.asarray(shapely.length(net.seg_geom), dtype=float)


def _edge_lookup(net: CompiledNetwork, seg_len: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys ``u * n + v`` of the directed edges and the segment of the fastest (then shortest) one of each.

    The edge chosen is the one whose time equals ``net.csr[u, v]`` (the
    fastest of parallel roads), as Dijkstra used it.
    """
    n = np.int64(net.n_nodes)
    a, b = net.seg_a.astype(np.int64), net.seg_b.astype(np.int64)
    k = len(a)
    e = pd.DataFrame({"key": np.concatenate([a * n + b, b * n + a]),
                      "tt": np.concatenate([net.seg_tt_ab, net.seg_tt_ba]),
                      "len": np.concatenate([seg_len, seg_len]), "seg": np.concatenate([np.arange(k), np.arange(k)])})
    e = e[np.isfinite(e["tt"].to_numpy())].sort_values(["key", "tt", "len"], kind="stable").drop_duplicates("key")
    return e["key"].to_numpy(), e["seg"].to_numpy()


def _edge_segments(net: CompiledNetwork, lookup: tuple[np.ndarray, np.ndarray], x: np.ndarray,
                   p: np.ndarray) -> np.ndarray:
    """Segment of the fastest road edge from node `x` to node `p` (arrays)."""
    keys, segs = lookup
    k = x.astype(np.int64) * np.int64(net.n_nodes) + p.astype(np.int64)
    return segs[np.minimum(np.searchsorted(keys, k), len(keys) - 1)]


def _tree_lengths(net: CompiledNetwork, pred: np.ndarray, fac: pd.DataFrame, seg_len: np.ndarray,
                  lookup: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Route length in metres from every road node to its tree root (a facility), along Dijkstra predecessors.

    `pred` are the predecessors of a Dijkstra on the reversed graph with one
    virtual node per facility (:func:`planner.travel_time._reverse_graph_with_sources`):
    ``pred[x]`` is the next node on the fastest trip from x. The lengths of
    the steps are summed by pointer doubling (log2 of the longest route steps).
    """
    n = net.n_nodes
    m = len(pred)
    idx = np.arange(m)
    parent = np.where(pred >= 0, pred, idx)
    step = np.zeros(m)
    x = np.flatnonzero((pred >= 0) & (idx < n))
    p = parent[x]
    road = p < n
    step[x[road]] = seg_len[_edge_segments(net, lookup, x[road], p[road])]
    # the last step: from a node onto the facility's segment, then its access leg
    xv, j = x[~road], p[~road] - n
    seg, frac = fac["segment"].to_numpy()[j], fac["frac"].to_numpy()[j]
    w_a = _partial(frac, net.seg_tt_ab[seg])
    w_b = _partial(1.0 - frac, net.seg_tt_ba[seg])
    from_a = (xv == net.seg_a[seg]) & ((xv != net.seg_b[seg]) | (w_a <= w_b))
    step[xv] = fac["snap_m"].to_numpy()[j] + np.where(from_a, frac, 1.0 - frac) * seg_len[seg]
    acc = step
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            break
        acc = acc + acc[parent]
        parent = grand
    return acc


def _origin_lengths(net: CompiledNetwork, org: pd.DataFrame, node_t: np.ndarray, node_len: np.ndarray,
                    seg_len: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return times (s) and route lengths (m) from snapped origins, given node times and node route lengths."""
    t, _ = _origin_times_from_node_times(net, org, node_t)
    seg, frac = org["segment"].to_numpy(), org["frac"].to_numpy()
    a, b = net.seg_a[seg], net.seg_b[seg]
    via_b = _partial(1.0 - frac, net.seg_tt_ab[seg]) + node_t[..., b]
    via_a = _partial(frac, net.seg_tt_ba[seg]) + node_t[..., a]
    use_b = via_b <= via_a
    length = org["snap_m"].to_numpy() + np.where(use_b, (1.0 - frac) * seg_len[seg] + node_len[..., b],
                                                 frac * seg_len[seg] + node_len[..., a])
    return t, np.where(np.isfinite(t), length, np.nan)


def _same_segment_lengths(org: pd.DataFrame, fac: pd.DataFrame, same: pd.DataFrame, seg_len: np.ndarray) -> np.ndarray:
    """Route lengths (m) of the direct along-segment trips of :func:`planner.travel_time._same_segment_times`."""
    op, fp = same["origin_pos"].to_numpy(dtype=int), same["fac_pos"].to_numpy(dtype=int)
    seg = org["segment"].to_numpy()[op]
    along = np.abs(fac["frac"].to_numpy()[fp] - org["frac"].to_numpy()[op]) * seg_len[seg]
    return org["snap_m"].to_numpy()[op] + along + fac["snap_m"].to_numpy()[fp]


def _route_nearest(net: CompiledNetwork, origins: pd.DataFrame,
                   fac: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time (s), facility position and route length (m) from every origin to its nearest snapped facility.

    The same computation as :func:`planner.travel_time.nearest_facility_times`, with the predecessors kept.
    """
    t_out = np.full(len(origins), np.nan)
    pos_out = np.full(len(origins), -1)
    len_out = np.full(len(origins), np.nan)
    mask = origins["snapped"].to_numpy()
    org = origins[mask]
    if org.empty or fac.empty:
        return t_out, pos_out, len_out
    seg_len = _segment_lengths(net)
    R, virt = _reverse_graph_with_sources(net, fac)
    dist, pred, sources = dijkstra(R, directed=True, indices=virt, min_only=True, return_predecessors=True)
    node_len = _tree_lengths(net, pred, fac, seg_len, _edge_lookup(net, seg_len))
    t, length = _origin_lengths(net, org, dist[: net.n_nodes], node_len, seg_len)
    _, node = _origin_times_from_node_times(net, org, dist[: net.n_nodes])
    pos = np.where(node >= 0, sources[np.maximum(node, 0)] - net.n_nodes, -1)
    same = _same_segment_times(net, org, fac)
    if len(same):
        same = same.assign(length=_same_segment_lengths(org, fac, same, seg_len)).sort_values("t", kind="stable")
        same = same.drop_duplicates("origin_pos")
        op = same["origin_pos"].to_numpy(dtype=int)
        better = same["t"].to_numpy() < t[op]
        t[op[better]] = same["t"].to_numpy()[better]
        pos[op[better]] = same["fac_pos"].to_numpy(dtype=int)[better]
        length[op[better]] = same["length"].to_numpy()[better]
    reach = np.isfinite(t) & (pos >= 0)
    t_out[mask] = np.where(reach, t, np.nan)
    pos_out[mask] = np.where(reach, pos, -1)
    len_out[mask] = np.where(reach, length, np.nan)
    return t_out, pos_out, len_out


def _route_each(net: CompiledNetwork, origins: pd.DataFrame, fac: pd.DataFrame,
                target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Time (s) and route length (m) from every snapped origin to its own facility (position `target` in `fac`)."""
    t_out = np.full(len(origins), np.nan)
    len_out = np.full(len(origins), np.nan)
    seg_len = _segment_lengths(net)
    lookup = _edge_lookup(net, seg_len)
    R, virt = _reverse_graph_with_sources(net, fac)
    same = _same_segment_times(net, origins, fac)
    if len(same):
        same = same.assign(length=_same_segment_lengths(origins, fac, same, seg_len))
    wanted = np.unique(target[target >= 0])
    for start in range(0, len(wanted), _LEAD_CHUNK):
        chunk = wanted[start:start + _LEAD_CHUNK]
        dist, pred = dijkstra(R, directed=True, indices=virt[chunk], return_predecessors=True)
        for row, f in enumerate(chunk):
            o = np.flatnonzero(target == f)
            node_len = _tree_lengths(net, pred[row], fac, seg_len, lookup)
            t, length = _origin_lengths(net, origins.iloc[o], dist[row, : net.n_nodes], node_len, seg_len)
            if len(same):
                s = same[(same["fac_pos"] == f) & same["origin_pos"].isin(o)]
                for op, st, sl in zip(s["origin_pos"], s["t"], s["length"], strict=True):
                    i = int(np.searchsorted(o, op))
                    if st < t[i]:
                        t[i], length[i] = st, sl
            t_out[o], len_out[o] = t, np.where(np.isfinite(t), length, np.nan)
    return t_out, len_out


def _lead_columns(net: CompiledNetwork, frm: gpd.GeoDataFrame, s_frm: pd.DataFrame, leads: gpd.GeoDataFrame,
                  lead_of: Mapping[Any, Any] | pd.Series, *, minutes: float, max_snap_m: float,
                  access_speed_kph: float | None) -> pd.DataFrame:
    """Return the ``lead_*`` columns: each from-institution's trip to its own lead."""
    if "name" not in leads.columns:
        msg = "leads: column 'name' is missing; fix: give the lead hospitals with a name column"
        raise MissingColumnError(msg)
    lead_s = lead_of if isinstance(lead_of, pd.Series) else pd.Series(dict(lead_of), dtype=object)
    lead_id = lead_s.reindex(frm.index).astype(object).to_numpy()
    lead_id = np.where(pd.isna(lead_id), None, lead_id).astype(object)
    has = np.array([v is not None for v in lead_id], dtype=bool)
    unknown = sorted({str(v) for v in lead_id[has] if v not in leads.index})
    if unknown:
        msg = (f"lead_of names {len(unknown)} lead(s) not among the {len(leads)} leads, e.g. '{unknown[0]}'; "
               "fix: give the leads the lead ids refer to (a grid run's leads and members)")
        raise InvalidValueError(msg)
    s_lead = snap_points(net, leads, max_snap_m=max_snap_m, access_speed_kph=access_speed_kph)
    fac = s_lead[s_lead["snapped"]]
    fac_pos = pd.Series(np.arange(len(fac)), index=fac.index)
    target = np.array([fac_pos.get(v, -1) if v is not None else -1 for v in lead_id], dtype=int)
    snapped = s_frm["snapped"].to_numpy()
    target = np.where(snapped, target, -1)
    t_s = np.full(len(frm), np.nan)
    dist_m = np.full(len(frm), np.nan)
    routed = target >= 0
    if routed.any():
        t_s[routed], dist_m[routed] = _route_each(net, s_frm[routed], fac, target[routed])
    lead_rows = leads.reindex(pd.Index(lead_id, dtype=object))
    lead_unsnapped = has & ~np.array([v in fac_pos.index for v in lead_id], dtype=bool)
    status = np.select([~snapped, ~has, lead_unsnapped, np.isfinite(t_s)],
                       ["unsnapped", "no_lead", "lead_unsnapped", "ok"], default="unreachable")
    tier = lead_rows["tier"].to_numpy(dtype=object) if "tier" in leads.columns else np.full(len(frm), None, dtype=object)
    return pd.DataFrame({
        "lead_id": lead_id, "lead_name": lead_rows["name"].to_numpy(dtype=object), "lead_tier": tier,
        "lead_travel_time_min": t_s / 60.0, "lead_distance_km": dist_m / 1000.0,
        "lead_within_threshold": np.isfinite(t_s) & (t_s <= minutes * 60.0), "lead_status": status,
    })


# ---------------------------------------------------------------------------------------------------------------------
# route lines


def _partial_line(geom: shapely.LineString, start: float, end: float) -> np.ndarray:
    """Coordinates of `geom` from fraction `start` to fraction `end` (reversed when end < start)."""
    if start == end:
        return shapely.get_coordinates(shapely.line_interpolate_point(geom, start, normalized=True))
    return shapely.get_coordinates(shapely.ops.substring(geom, start, end, normalized=True))


def _oriented(net: CompiledNetwork, seg: int, x: int) -> np.ndarray:
    """Coordinates of segment `seg` leaving node `x`."""
    xy = shapely.get_coordinates(net.seg_geom[seg])
    return xy if net.seg_a[seg] == x else xy[::-1]


def _route_lines(net: CompiledNetwork, org: pd.DataFrame, fac: pd.DataFrame, target: np.ndarray,
                 org_xy: np.ndarray, fac_xy: np.ndarray) -> list[shapely.LineString | None]:
    """Line of the fastest trip from each snapped origin to its facility (position `target` in `fac`), metric CRS."""
    n = net.n_nodes
    seg_len = _segment_lengths(net)
    lookup = _edge_lookup(net, seg_len)
    R, virt = _reverse_graph_with_sources(net, fac)
    same = _same_segment_times(net, org, fac).set_index(["origin_pos", "fac_pos"])["t"]
    o_seg, o_frac = org["segment"].to_numpy(), org["frac"].to_numpy()
    f_seg, f_frac = fac["segment"].to_numpy(), fac["frac"].to_numpy()
    lines: list[shapely.LineString | None] = [None] * len(org)
    for f in np.unique(target[target >= 0]):
        dist, pred = dijkstra(R, directed=True, indices=virt[f], return_predecessors=True)
        for i in np.flatnonzero(target == f):
            sg, fr = o_seg[i], o_frac[i]
            a, b = net.seg_a[sg], net.seg_b[sg]
            via_b = _partial(np.array([1.0 - fr]), net.seg_tt_ab[[sg]])[0] + dist[b]
            via_a = _partial(np.array([fr]), net.seg_tt_ba[[sg]])[0] + dist[a]
            t = min(via_a, via_b)
            if (i, f) in same.index and same[(i, f)] - org["access_s"].iloc[i] < t:
                mid = _partial_line(net.seg_geom[sg], fr, f_frac[f])
            elif np.isfinite(t):
                x = b if via_b <= via_a else a
                parts = [_partial_line(net.seg_geom[sg], fr, 1.0 if x == b else 0.0)]
                while pred[x] >= 0 and pred[x] < n:
                    p = pred[x]
                    parts.append(_oriented(net, int(_edge_segments(net, lookup, np.array([x]), np.array([p]))[0]), x))
                    x = p
                fs = f_seg[f]
                w_a = _partial(f_frac[[f]], net.seg_tt_ab[[fs]])[0]
                w_b = _partial(1.0 - f_frac[[f]], net.seg_tt_ba[[fs]])[0]
                from_a = x == net.seg_a[fs] and (x != net.seg_b[fs] or w_a <= w_b)
                parts.append(_partial_line(net.seg_geom[fs], 0.0 if from_a else 1.0, f_frac[f]))
                mid = np.concatenate(parts)
            else:
                continue
            xy = np.concatenate([org_xy[[i]], mid, fac_xy[[f]]])
            keep = np.r_[True, np.hypot(*np.diff(xy, axis=0).T) > _SAME_VERTEX_M]  # no repeated vertex where pieces meet
            lines[i] = shapely.LineString(xy[keep] if keep.sum() >= 2 else xy[[0, -1]])
    return lines


def referral_routes(
    net: CompiledNetwork,
    institutions: gpd.GeoDataFrame,
    table: pd.DataFrame,
    *,
    leads: gpd.GeoDataFrame | None = None,
    max_snap_m: float | None = None,
    access_speed_kph: float | None = None,
) -> gpd.GeoDataFrame:
    """Route lines of a referral table's trips: the fastest routes its times and distances are for.

    Each line runs from the from-institution along its access leg, the
    partial segment, the roads and the receiving institution's partial
    segment and access leg; its length in the network's metric CRS is the
    row's ``distance_km``.

    Parameters
    ----------
    net, institutions
        As given to :func:`referral_times`.
    table
        Output of :func:`referral_times`.
    leads
        The leads given to :func:`referral_times`, for the routes to the own lead.
    max_snap_m, access_speed_kph
        As given to :func:`referral_times`.

    Returns
    -------
    routes
        One line per routed trip (status ``ok``), EPSG:4326: ``kind``
        (``nearest`` or ``lead``), ``from_id``, ``from_name``, ``to_id``,
        ``to_name``, ``travel_time_min``, ``distance_km``,
        ``within_threshold``.
    """
    max_snap = settings.MAX_SNAP_M if max_snap_m is None else float(max_snap_m)
    specs = [("nearest", "", institutions)]
    if leads is not None and "lead_id" in table.columns:
        specs.append(("lead", "lead_", leads))
    frames = []
    for kind, pre, dests in specs:
        ok = table[f"{pre}status"] == "ok"
        sub = table[ok]
        to_col = "to_id" if kind == "nearest" else "lead_id"
        org_pts = institutions.loc[sub["from_id"].to_numpy()]
        dst_pts = dests.loc[pd.unique(sub[to_col].to_numpy())]
        s_o = snap_points(net, org_pts, max_snap_m=max_snap, access_speed_kph=access_speed_kph).reset_index(drop=True)
        s_d = snap_points(net, dst_pts, max_snap_m=max_snap, access_speed_kph=access_speed_kph)
        target = s_d.index.get_indexer(sub[to_col].to_numpy())
        lines = _route_lines(net, s_o, s_d.reset_index(drop=True), target,
                             shapely.get_coordinates(org_pts.geometry.to_crs(net.crs).centroid.to_numpy()),
                             shapely.get_coordinates(dst_pts.geometry.to_crs(net.crs).centroid.to_numpy()))
        frames.append(gpd.GeoDataFrame({
            "kind": kind, "from_id": sub["from_id"].to_numpy(), "from_name": sub["from_name"].to_numpy(),
            "to_id": sub[to_col].to_numpy(), "to_name": sub[f"{pre or 'to_'}name"].to_numpy(),
            "travel_time_min": sub[f"{pre}travel_time_min"].to_numpy(), "distance_km": sub[f"{pre}distance_km"].to_numpy(),
            "within_threshold": sub[f"{pre}within_threshold"].to_numpy(dtype=bool)}, geometry=lines, crs=net.crs))
    return pd.concat(frames, ignore_index=True).to_crs("EPSG:4326")


# ---------------------------------------------------------------------------------------------------------------------
# population-weighted share


def _population_share(table: pd.DataFrame, net: CompiledNetwork, institutions: gpd.GeoDataFrame,
                      cells: gpd.GeoDataFrame, *, population_column: str, max_snap_m: float | None,
                      access_speed_kph: float | None, cells_snapped: pd.DataFrame | None) -> dict[str, Any]:
    """Share of residents whose nearest from-tier institution (by travel time from the cell) refers within T."""
    if population_column not in cells.columns:
        msg = f"cells: column '{population_column}' is missing; fix: give demand cells with a population column"
        raise MissingColumnError(msg)
    max_snap = settings.MAX_SNAP_M if max_snap_m is None else float(max_snap_m)
    frm = institutions.loc[institutions.index.isin(table["from_id"])]
    s_frm = snap_points(net, frm, max_snap_m=max_snap, access_speed_kph=access_speed_kph)
    s_cells = cells_snapped if cells_snapped is not None else snap_points(net, cells, max_snap_m=max_snap,
                                                                           access_speed_kph=access_speed_kph)
    nearest = nearest_facility_times(net, s_cells, s_frm)
    within_of = pd.Series(table["within_threshold"].to_numpy(dtype=bool), index=table["from_id"].to_numpy())
    fid = nearest["facility_id"]
    reach = fid.notna().to_numpy()
    within = np.zeros(len(cells), dtype=bool)
    within[reach] = within_of.reindex(fid[reach].to_numpy()).fillna(False).to_numpy(dtype=bool)
    pop = pd.to_numeric(cells[population_column], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    total = float(pop.sum())
    out: dict[str, Any] = {"population": {
        "total": _round(total, 0), "within": _round(pop[within].sum(), 0), "within_pct": _pct(pop[within].sum(), total),
        "no_from_institution": _round(pop[~reach].sum(), 0)}}
    if "district" in cells.columns:
        df = pd.DataFrame({"district": cells["district"].fillna("(none)").astype(str).to_numpy(), "pop": pop,
                           "w": np.where(within, pop, 0.0)})
        g = df.groupby("district", sort=True)[["pop", "w"]].sum()
        out["population_by_district"] = [{"district": d, "total": _round(r["pop"], 0), "within": _round(r["w"], 0),
                                          "within_pct": _pct(r["w"], r["pop"])} for d, r in g.iterrows()]
    return out


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * float(part) / float(whole), 2) if whole else None


def _round(x: float, nd: int = 2) -> float:
    return round(float(x), nd)
