"""Referral times between tiers: a hand-solvable network, networkx on real extracts, and bad input."""

from __future__ import annotations

import math

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from planner import datasets, network, settings, travel_time
from planner._errors import InvalidValueError, UnreachableFacilityError
from planner.institutions import load_institutions
from planner.referral import referral_routes, referral_summary, referral_times

CRS = "EPSG:32650"  # UTM 50N, metres
X0, Y0 = 500_000.0, 3_380_000.0
R2 = 1000.0 * math.sqrt(2.0)  # metres, the diagonal roads of the toy network


@pytest.fixture
def one_mps(monkeypatch):
    """Walking (and access) speed of exactly 1 m/s, so access seconds equal metres."""
    monkeypatch.setattr(settings, "WALK_SPEED_KPH", 3.6)
    monkeypatch.setattr(settings, "ACCESS_SPEED_KPH", None)


def _toy_net() -> travel_time.CompiledNetwork:
    """A(0,0) ⇄ B(1000,0) → C(2000,0) (one way), C ⇄ D(1000,1000) ⇄ A; seconds: AB 100, BC 100, CD 300, DA 200."""
    xy = np.array([[0, 0], [1000, 0], [2000, 0], [1000, 1000]], dtype=float) + [X0, Y0]
    edges = [(0, 1, 100, 1000), (1, 0, 100, 1000), (1, 2, 100, 1000),  # no C→B: one-way street
             (2, 3, 300, R2), (3, 2, 300, R2), (3, 0, 200, R2), (0, 3, 200, R2)]
    u, v, tt, length = (np.array(c) for c in zip(*edges, strict=True))
    return travel_time.compile_edges(np.array(list("ABCD"), dtype=object), xy, u, v, tt.astype(float),
                                     length.astype(float), crs=CRS, mode="drive")


def _points(rows: list[tuple[str, str, str, float, float]]) -> gpd.GeoDataFrame:
    ids, names, tiers, x, y = zip(*rows, strict=True)
    return gpd.GeoDataFrame({"name": names, "tier": tiers},
                            geometry=[shapely.Point(X0 + a, Y0 + b) for a, b in zip(x, y, strict=True)], crs=CRS,
                            index=pd.Index(ids, name="facility_id")).to_crs("EPSG:4326")


TOY_INSTITUTIONS = [
    ("p1", "at A", "primary", 0, 0),
    ("p2", "at C", "primary", 2000, 0),
    ("p3", "beside AB", "primary", 500, 100),  # 100 m off the road, half-way along A-B
    ("p4", "far away", "primary", 8000, 8000),  # beyond 500 m of every road
    ("s", "at B", "secondary", 1000, 0),
    ("t", "at D", "tertiary", 1000, 1000),
]


def test_hand_solved_times_distances_and_one_way(one_mps):
    net, inst = _toy_net(), _points(TOY_INSTITUTIONS)
    t = referral_times(net, inst, from_tiers="primary", to_tiers="secondary", max_minutes=5).set_index("from_id")
    assert list(t.index) == ["p1", "p2", "p3", "p4"]  # every from-institution, in order, the unsnapped one too
    # p1: A→B 100 s; p2: C→B is one way the wrong way round, so C→D→A→B = 300 + 200 + 100 s;
    # p3: walks 100 m to the road (100 s at 1 m/s) then half of A→B (50 s); (+ 1 ms: travel_time's least edge time)
    assert t["travel_time_min"].to_numpy()[:3] * 60 == pytest.approx([100, 600, 150], abs=2e-3)
    assert t["distance_km"].to_numpy()[:3] * 1000 == pytest.approx([1000, 2 * R2 + 1000, 600], abs=1e-6)
    assert t["within_threshold"].tolist() == [True, False, True, False]
    assert t["status"].tolist() == ["ok", "ok", "ok", "unsnapped"]
    assert t["to_id"].tolist()[:3] == ["s", "s", "s"] and pd.isna(t.loc["p4", "to_id"])
    assert np.isnan(t.loc["p4", "travel_time_min"]) and np.isnan(t.loc["p4", "distance_km"])
    assert t.loc["p1", "to_name"] == "at B" and t.loc["p1", "to_tier"] == "secondary"
    assert t.attrs == {"max_minutes": 5.0, "from_tiers": ["primary"], "to_tiers": ["secondary"]}

    # with the tertiary at D, p2 refers there instead (C→D 300 s, within 5.5 minutes)
    both = referral_times(net, inst, from_tiers=["primary"], to_tiers=("secondary", "tertiary"),
                          max_minutes=5.5).set_index("from_id")
    assert both.loc["p2", "to_id"] == "t" and both.loc["p2", "travel_time_min"] * 60 == pytest.approx(300, abs=2e-3)
    assert both.loc["p2", "distance_km"] * 1000 == pytest.approx(R2)
    assert both["within_threshold"].tolist() == [True, True, True, False]

    # the other way round (secondary → primary) B→C is allowed: 100 s, not 600
    back = referral_times(net, inst.loc[["p2", "p3", "s"]], from_tiers="secondary", to_tiers="primary", max_minutes=5)
    assert back["to_id"].tolist() == ["p2"] and back["travel_time_min"].iloc[0] * 60 == pytest.approx(100, abs=2e-3)


def test_own_lead_columns(one_mps):
    net, inst = _toy_net(), _points(TOY_INSTITUTIONS)
    leads = _points([("lead:t", "lead at D", "tertiary", 1000, 1000), ("lead:far", "off the roads", "tertiary", -9000, 0)])
    t = referral_times(net, inst, from_tiers="primary", to_tiers="secondary", max_minutes=5.5, leads=leads,
                       lead_of={"p1": "lead:t", "p2": "lead:t", "p3": "lead:far", "p4": "lead:t"}).set_index("from_id")
    # p1: A→D 200 s along the diagonal; p2: C→D 300 s; p3's lead cannot be snapped; p4 itself cannot
    assert t["lead_status"].tolist() == ["ok", "ok", "lead_unsnapped", "unsnapped"]
    assert t["lead_travel_time_min"].to_numpy()[:2] * 60 == pytest.approx([200, 300], abs=2e-3)
    assert t["lead_distance_km"].to_numpy()[:2] * 1000 == pytest.approx([R2, R2])
    assert t["lead_within_threshold"].tolist() == [True, True, False, False]
    assert t.loc["p1", "lead_name"] == "lead at D" and t.loc["p1", "lead_tier"] == "tertiary"
    # the nearest secondary is unchanged by the lead columns
    assert t["travel_time_min"].to_numpy()[:3] * 60 == pytest.approx([100, 600, 150], abs=2e-3)

    s = referral_summary(t.reset_index())
    assert s["lead_within_pct"] == 50.0
    by = {r["lead_id"]: r for r in s["by_lead"]}
    assert by["lead:t"]["n_from"] == 3 and by["lead:t"]["n_lead_within"] == 2 and by["lead:t"]["n_within"] == 1

    no = referral_times(net, inst, from_tiers="primary", to_tiers="secondary", max_minutes=5, leads=leads,
                        lead_of=pd.Series({"p1": "lead:t"}))
    assert no["lead_status"].tolist() == ["ok", "no_lead", "no_lead", "unsnapped"]
    with pytest.raises(InvalidValueError, match=r"lead_of names 1 lead\(s\) not among the 2 leads, e.g. 'lead:x'"):
        referral_times(net, inst, from_tiers="primary", to_tiers="secondary", max_minutes=5, leads=leads,
                       lead_of={"p1": "lead:x"})


def test_summary_shares_and_population_weighted(one_mps):
    net, inst = _toy_net(), _points(TOY_INSTITUTIONS)
    inst["district"] = ["west", "east", "west", None, "west", "north"]
    t = referral_times(net, inst, from_tiers="primary", to_tiers="secondary", max_minutes=5)
    cells = _points([("c1", "", "", 0, 50), ("c2", "", "", 2000, 50), ("c3", "", "", 9000, 9000)])
    cells["population"] = [100.0, 300.0, 50.0]
    cells["district"] = ["west", "east", None]
    s = referral_summary(t, net=net, institutions=inst, cells=cells)
    assert (s["n_from"], s["n_within"], s["within_pct"], s["n_unsnapped"], s["n_unreachable"]) == (4, 2, 50.0, 1, 0)
    assert s["within_pct_snapped"] == pytest.approx(66.67)
    assert s["median_travel_time_min"] == 2.5 and s["max_travel_time_min"] == 10.0
    assert s["by_district"] == [
        {"district": "(none)", "n_from": 1, "n_within": 0, "within_pct": 0.0},
        {"district": "east", "n_from": 1, "n_within": 0, "within_pct": 0.0},
        {"district": "west", "n_from": 2, "n_within": 2, "within_pct": 100.0}]
    # c1's nearest primary is p1 (refers in 100 s), c2's is p2 (600 s: not within), c3 reaches no road
    assert s["population"] == {"total": 450.0, "within": 100.0, "within_pct": 22.22, "no_from_institution": 50.0}
    assert s["population_by_district"] == [
        {"district": "(none)", "total": 50.0, "within": 0.0, "within_pct": 0.0},
        {"district": "east", "total": 300.0, "within": 0.0, "within_pct": 0.0},
        {"district": "west", "total": 100.0, "within": 100.0, "within_pct": 100.0}]


def test_bad_input_names_the_tier_and_what_is_reachable(one_mps):
    net, inst = _toy_net(), _points(TOY_INSTITUTIONS)
    with pytest.raises(InvalidValueError, match=r"no institution of from-tier station among the 6 institutions "
                                                r"\(tiers present: tertiary 1, secondary 1, primary 4\)"):
        referral_times(net, inst, from_tiers="station", to_tiers="secondary", max_minutes=30)
    with pytest.raises(InvalidValueError, match="no institution of to-tier station among"):
        referral_times(net, inst, from_tiers="primary", to_tiers=["station"], max_minutes=30)
    with pytest.raises(InvalidValueError, match="tier primary is both a from-tier and a to-tier"):
        referral_times(net, inst, from_tiers="primary", to_tiers=("primary", "secondary"), max_minutes=30)
    with pytest.raises(InvalidValueError, match=r"from_tiers \['clinic'\] must be tiers among"):
        referral_times(net, inst, from_tiers="clinic", to_tiers="secondary", max_minutes=30)
    with pytest.raises(InvalidValueError, match=r"no secondary institution is reachable from any primary one within "
                                                r"1 min; the nearest is 1\.7 min away; fix: raise max_minutes"):
        referral_times(net, inst, from_tiers="primary", to_tiers="secondary", max_minutes=1)
    with pytest.raises(InvalidValueError, match="max_minutes 0 min"):
        referral_times(net, inst, from_tiers="primary", to_tiers="secondary", max_minutes=0)
    # the only tertiary sits on a road that no primary can reach
    far = _points([*TOY_INSTITUTIONS[:4], ("t2", "island", "tertiary", 50_000, 0)])
    island = travel_time.compile_edges(
        np.array(list("ABCDEF"), dtype=object),
        np.array([[0, 0], [1000, 0], [2000, 0], [1000, 1000], [49_000, 0], [51_000, 0]], dtype=float) + [X0, Y0],
        np.array([0, 1, 1, 2, 4, 5]), np.array([1, 0, 2, 1, 5, 4]), np.full(6, 100.0), np.full(6, 1000.0),
        crs=CRS, mode="drive")
    with pytest.raises(InvalidValueError, match=r"no tertiary institution is reachable from any primary one on this "
                                                r"network \(3 primary institutions snapped\)"):
        referral_times(island, far, from_tiers="primary", to_tiers="tertiary", max_minutes=30)
    off = _points([*TOY_INSTITUTIONS[:4], ("t3", "off road", "tertiary", 0, 5000)])
    with pytest.raises(UnreachableFacilityError, match="none of the 1 tertiary institutions lies within 500 m of a road"):
        referral_times(net, off, from_tiers="primary", to_tiers="tertiary", max_minutes=30)


# -------------------------------------------------------------------------------------------------------------------
# real extracts, against networkx


def _nx_expected(G: nx.MultiDiGraph, net: travel_time.CompiledNetwork, so: pd.Series, dests: pd.DataFrame) -> float:
    """Fastest time (s) from one snapped origin to the nearest snapped destination, networkx between road nodes.

    The partial segments at both ends use the snap output (segment, position) and the segment's times.
    """
    seg = so["segment"]
    f = so["frac"]
    ends_o = [(net.seg_b[seg], 0.0 if f == 1 else (1 - f) * net.seg_tt_ab[seg]),
              (net.seg_a[seg], 0.0 if f == 0 else f * net.seg_tt_ba[seg])]
    best = np.inf
    for node, part in ends_o:
        if not np.isfinite(part):
            continue
        lengths = nx.single_source_dijkstra_path_length(G, net.node_ids[node], weight="travel_time")
        for _, sd in dests.iterrows():
            ds, g = sd["segment"], sd["frac"]
            for end, p_d in ((net.seg_a[ds], 0.0 if g == 0 else g * net.seg_tt_ab[ds]),
                             (net.seg_b[ds], 0.0 if g == 1 else (1 - g) * net.seg_tt_ba[ds])):
                best = min(best, so["access_s"] + part + lengths.get(net.node_ids[end], np.inf) + p_d + sd["access_s"])
    for _, sd in dests[dests["segment"] == seg].iterrows():  # along the one segment, no junction
        d = sd["frac"] - f
        along = d * net.seg_tt_ab[seg] if d > 0 else (-d * net.seg_tt_ba[seg] if d < 0 else 0.0)
        best = min(best, so["access_s"] + along + sd["access_s"])
    return best


def test_times_equal_networkx_on_the_wuhan_drive_network():
    """Real institutions (primary → secondary/tertiary) on the Wuhan roads by car, with their access legs."""
    roads = network.load_roads(datasets.get_path("wuhan_roads"), mode="drive")
    net = travel_time.compile_network(roads)
    G = roads.to_networkx()
    inst = load_institutions(datasets.get_path("wuhan_institutions"))
    t = referral_times(net, inst, from_tiers="primary", to_tiers=("secondary", "tertiary"), max_minutes=30)
    frm = inst[inst["tier"] == "primary"]
    to = inst[inst["tier"].isin(["secondary", "tertiary"])]
    s_frm, s_to = travel_time.snap_points(net, frm), travel_time.snap_points(net, to)
    s_to = s_to[s_to["snapped"]]
    ok = t["status"] == "ok"
    assert ok.sum() >= 10 and (t.loc[~ok, "status"] == "unsnapped").all()
    for _, row in t[ok].iterrows():
        expected = _nx_expected(G, net, s_frm.loc[row["from_id"]], s_to)
        assert row["travel_time_min"] * 60 == pytest.approx(expected, abs=1.0)
    # the same times and institutions as coverage's nearest-facility search
    near = travel_time.nearest_facility_times(net, s_frm, travel_time.snap_points(net, to))
    assert np.allclose(near["travel_time_s"].to_numpy()[ok.to_numpy()] / 60, t.loc[ok, "travel_time_min"], atol=1e-9)
    assert near["facility_id"].to_numpy()[ok.to_numpy()].tolist() == t.loc[ok, "to_id"].tolist()


def test_node_placed_institutions_match_networkx_time_and_length():
    """Institutions exactly on junctions of the Optics Valley OSM extract (drive, one-way streets): no access legs."""
    roads = network.load_roads(datasets.get_path("guanggu_osm"), mode="drive")
    net = travel_time.compile_network(roads)
    G = roads.to_networkx()
    rng = np.random.default_rng(15)
    pick = rng.choice(net.n_nodes, size=40, replace=False)
    xy = net.node_xy[pick]
    tiers = ["primary"] * 30 + ["tertiary"] * 10
    inst = gpd.GeoDataFrame({"name": [f"n{i}" for i in pick], "tier": tiers}, geometry=gpd.points_from_xy(*xy.T),
                            crs=net.crs, index=pd.Index([str(net.node_ids[i]) for i in pick], name="facility_id"))
    t = referral_times(net, inst, from_tiers="primary", to_tiers="tertiary", max_minutes=15)
    assert (t["status"] == "ok").all()
    targets = [net.node_ids[i] for i in pick[30:]]
    for k, row in t.iterrows():
        lengths, paths = nx.single_source_dijkstra(G, net.node_ids[pick[k]], weight="travel_time")
        reach = {n: lengths[n] for n in targets if n in lengths}
        dest = min(reach, key=reach.get)
        assert row["travel_time_min"] * 60 == pytest.approx(reach[dest], abs=1.0)
        assert row["to_id"] == str(dest)
        path = paths[dest]
        metres = sum(min(d["length"] for d in G[p][q].values() if d["travel_time"] == min(
            e["travel_time"] for e in G[p][q].values())) for p, q in zip(path[:-1], path[1:], strict=True))
        # UTM geometry lengths vs OSMnx's spherical great-circle `length`: they differ by up to ~0.5 %
        assert row["distance_km"] * 1000 == pytest.approx(metres, rel=5e-3, abs=0.5)
        assert row["within_threshold"] == (reach[dest] <= 15 * 60)


def test_route_lines_follow_the_routes(one_mps):
    net, inst = _toy_net(), _points(TOY_INSTITUTIONS)
    leads = _points([("lead:t", "lead at D", "tertiary", 1000, 1000)])
    t = referral_times(net, inst, from_tiers="primary", to_tiers="secondary", max_minutes=5, leads=leads,
                       lead_of={"p1": "lead:t", "p2": "lead:t"})
    r = referral_routes(net, inst, t, leads=leads)
    assert r["kind"].tolist() == ["nearest"] * 3 + ["lead"] * 2 and r.crs == "EPSG:4326"
    m = r.to_crs(CRS)
    assert m.length.to_numpy() == pytest.approx(r["distance_km"].to_numpy() * 1000, abs=1e-6)
    local = [shapely.get_coordinates(g) - [X0, Y0] for g in m.geometry]
    # p2 (at C) cannot take the one-way B-C backwards: its line goes round by D and A
    assert np.allclose(local[1], [[2000, 0], [1000, 1000], [0, 0], [1000, 0]], atol=1e-6)
    # p3 walks 100 m to the road, then half of A-B to B
    assert np.allclose(local[2], [[500, 100], [500, 0], [1000, 0]], atol=1e-6)


def test_route_lines_on_the_wuhan_drive_network_have_the_table_lengths():
    roads = network.load_roads(datasets.get_path("wuhan_roads"), mode="drive")
    net = travel_time.compile_network(roads)
    inst = load_institutions(datasets.get_path("wuhan_institutions"))
    t = referral_times(net, inst, from_tiers="primary", to_tiers=("secondary", "tertiary"), max_minutes=30)
    r = referral_routes(net, inst, t)
    assert len(r) == int((t["status"] == "ok").sum())
    assert r.to_crs(net.crs).length.to_numpy() == pytest.approx(r["distance_km"].to_numpy() * 1000, abs=1e-3)
