"""Siting models: a toy instance solved by hand, invariants, and agreement with spopt on random and real data."""

from __future__ import annotations

import math
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from planner import InfeasibleModelError, InvalidValueError, MissingColumnError, coverage, datasets, demand, travel_time
from planner.siting import LSCP, MCLP, CapacitatedMCLP, PMedian, SitingResult, greedy_mclp, marginal_curve

# ---------------------------------------------------------------------------------------------------------------------
# Toy instance: 7 cells x 4 candidate sites, travel times in minutes, threshold 15 minutes.
#
#            A    B    C    D      pop   within 15 min of
#   c0       5   20   30   40      120   A
#   c1      10   12   25   35       80   A, B
#   c2      18    8   22   30      300   B
#   c3      25   14    6   20      250   B, C
#   c4      35   24   10    9      400   C, D
#   c5      40   30   17   11       60   D
#   c6       -    -    -    -       90   (no route: excluded)           total 1300, coverable 1210 (93.08 %)
#
# Coverage sets: A = {c0, c1} 200, B = {c1, c2, c3} 630, C = {c3, c4} 650, D = {c4, c5} 460.
# MCLP K=1: C (650) beats B (630).
# MCLP K=2: pairs cover AB 750, AC 850, AD 660, BC 1030, BD 1090, CD 710 -> B+D, 1090. (Greedy takes C, then B: 1030.)
#   Rank among {B, D}: B adds 630, then D adds 460.
# MCLP K=3: A+B+D covers every coverable cell, 1210 (B+C+D 1090, A+B+C 1150, A+C+D 910). Rank B 630, D 460, A 120.
# MCLP K=1 with D existing (covers c4, c5 = 460): A +200, B +630, C +250 -> B, 1090.
# MCLP K=2 with D existing: A+B 1210 (A+C 910, B+C 1090) -> A+B; rank B +630, A +120.
# LSCP all coverable: c0 only by A, c2 only by B, c5 only by D -> {A, B, D} (3 sites) covers 1210.
# LSCP 75 % (975 persons): one site covers at most 650, so 2 sites; B+D (1090) and B+C (1030) both reach it and the
#   tie-break on coverage picks B+D.
# LSCP 100 %: c6 is unreachable, so at most 1210 / 1300 = 93.08 % -> infeasible, "at most 93.0%".
# LSCP all coverable with D existing: c0 needs A, c2 needs B -> {A, B}.
# PMedian K=2 on all finite pairs (weighted minutes = pop x minutes to the nearest open site):
#   AB 18700, AC 13320, AD 16060, BC 12280, BD 13520, CD 17960 -> B+C, 12280;
#   c0, c1, c2 -> B; c3, c4, c5 -> C.
# PMedian K=1 with D existing: A+D 16060, B+D 13520, C+D 17960 -> B, 13520.
# PMedian K=3 capped at 15 min: c0 needs A, c2 needs B, c5 needs D -> A, B, D:
#   c0 A 600 + c1 A 800 + c2 B 2400 + c3 B 3500 + c4 D 3600 + c5 D 660 = 11560; with K=2 it is infeasible (needs 3).
# Capacitated K=2, capacity B = 350, others 1000:
#   split cells allowed: B+C: C serves c3 + c4 (650), B serves 350 of c1 + c2 (380) -> 1000
#     (B+D: 350 + 460 = 810, A+C 850, ...) -> B+C, 1000; ranked by persons served: C 650, then B +350.
#   whole cells only: B can take c2 (300) but not c1 + c2 -> 950, c2 -> B, c3 and c4 -> C, c1 unserved.
# ---------------------------------------------------------------------------------------------------------------------
SITES = ["A", "B", "C", "D"]
CELLS = [f"c{i}" for i in range(7)]
COST = np.array([
    [5, 20, 30, 40],
    [10, 12, 25, 35],
    [18, 8, 22, 30],
    [25, 14, 6, 20],
    [35, 24, 10, 9],
    [40, 30, 17, 11],
    [np.nan, np.nan, np.nan, np.nan],
], dtype=float)
POP = pd.Series([120.0, 80, 300, 250, 400, 60, 90], index=pd.Index(CELLS, name="cell_id"), name="population")
TOTAL = 1300.0


def toy_mclp(n_sites: int, **kw) -> MCLP:
    return MCLP.from_cost_matrix(COST, POP, service_radius=15, n_sites=n_sites, site_ids=SITES, **kw)


def toy_od() -> pd.DataFrame:
    r, c = np.nonzero(np.isfinite(COST))
    return pd.DataFrame({"origin_id": np.array(CELLS)[r], "destination_id": np.array(SITES)[c],
                         "travel_time_s": COST[r, c] * 60.0})


def random_instance(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cxy, fxy = rng.uniform(0, 10, (n, 2)), rng.uniform(0, 10, (m, 2))
    return np.linalg.norm(cxy[:, None] - fxy[None], axis=2), rng.integers(1, 100, n).astype(float)


def spopt_mclp(cost: np.ndarray, weights: np.ndarray, radius: float, p: int, predefined: np.ndarray | None = None) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pulp
        from spopt.locate import MCLP as SpoptMCLP

        model = SpoptMCLP.from_cost_matrix(cost, weights, radius, p, predefined_facilities_arr=predefined)
        model = model.solve(pulp.HiGHS(msg=False))
        return float(pulp.value(model.problem.objective))


# --- MCLP -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "sites", "added"), [
    (1, ("C",), [650.0]),
    (2, ("B", "D"), [630.0, 460.0]),
    (3, ("B", "D", "A"), [630.0, 460.0, 120.0]),
])
def test_mclp_toy(k, sites, added):
    r = toy_mclp(k).solve()
    assert isinstance(r, SitingResult)
    assert (r.model, r.status, r.mip_gap) == ("MCLP", "optimal", 0.0)
    assert r.sites == sites
    assert r.objective == r.covered_after == sum(added)
    assert r.covered_before == 0.0
    assert r.total_population == TOTAL
    assert r.added_population.tolist() == added
    assert r.added_population.index.tolist() == list(sites)
    np.testing.assert_allclose(r.cumulative_pct, 100 * np.cumsum(added) / TOTAL)
    assert r.excluded_cells.tolist() == ["c6"]
    assert r.assignment.index.equals(POP.index)  # index preserved
    assert r.build_s >= 0 and r.solve_s >= 0


def test_mclp_toy_assignment():
    r = toy_mclp(2).solve()
    # nearest open site within 15 min: c1 is 12 min from B (A is closed), c4 is 9 min from D
    assert r.assignment.tolist() == [None, "B", "B", "B", "D", "D", None]


@pytest.mark.parametrize(("k", "sites", "after"), [(1, ("B",), 1090.0), (2, ("B", "A"), 1210.0)])
def test_mclp_toy_existing_kept(k, sites, after):
    r = toy_mclp(k, existing=["D"]).solve()
    assert r.sites == sites
    assert r.existing == ("D",)
    assert r.covered_before == 460.0  # c4 and c5, already within 15 min of D
    assert r.covered_after == r.objective == after
    assert r.added_population.sum() == after - 460.0
    assert r.cumulative_pct.iloc[-1] == pytest.approx(100 * after / TOTAL)


def test_mclp_from_travel_times_matches_cost_matrix():
    od = toy_od()
    for existing in (None, ["D"]):
        a = MCLP.from_travel_times(od, POP, SITES, max_minutes=15, n_sites=1, existing=existing).solve()
        b = toy_mclp(1, existing=existing).solve()
        assert (a.sites, a.objective, a.covered_before) == (b.sites, b.objective, b.covered_before)
    # demand as cells with a population column, candidates as a GeoDataFrame indexed by id
    cells = POP.to_frame()
    cand = gpd.GeoDataFrame(geometry=gpd.points_from_xy([0, 1, 2, 3], [0, 0, 0, 0]), index=SITES, crs=4326)
    r = MCLP.from_travel_times(od, cells, cand, max_minutes=15, n_sites=2).solve()
    assert r.sites == ("B", "D") and r.objective == 1090.0
    # a tighter threshold drops pairs: within 10 min A = {c0, c1} 200, B = {c2} 300, C = {c3, c4} 650, D = {c4} 400,
    # so the best pair is C + B, 950 (C + A 850)
    r = MCLP.from_travel_times(od, cells, cand, max_minutes=10, n_sites=2).solve()
    assert r.sites == ("C", "B") and r.objective == 950.0


def test_mclp_existing_missing_from_od_warns():
    od = toy_od()
    od = od[od["destination_id"] != "D"]
    with pytest.warns(UserWarning, match="existing sites 'D' have no travel times in od"):
        r = MCLP.from_travel_times(od, POP, ["A", "B", "C"], max_minutes=15, n_sites=1, existing=["D"]).solve()
    assert r.covered_before == 0.0 and r.sites == ("C",)


def test_mclp_deterministic():
    cost, w = random_instance(200, 40, seed=3)
    a = MCLP.from_cost_matrix(cost, w, service_radius=1.5, n_sites=6).solve()
    b = MCLP.from_cost_matrix(cost, w, service_radius=1.5, n_sites=6).solve()
    assert a.sites == b.sites
    assert a.added_population.tolist() == b.added_population.tolist()


def test_mclp_time_limit_returns_incumbent():
    # 2000 cells x 300 candidates, K=25 takes HiGHS about 10 s to prove optimal
    cost, w = random_instance(2000, 300, seed=1)
    model = MCLP.from_cost_matrix(cost, w, service_radius=1.0, n_sites=25)
    r = model.solve(time_limit_s=0.2)
    g = greedy_mclp(model, lp_bound=False)
    assert r.status == "time_limit"
    assert len(r.sites) == 25
    assert r.objective >= g.objective  # the greedy solution is the MIP start
    assert r.objective_bound >= r.objective
    assert 0 < r.mip_gap < 1  # finite even if HiGHS stopped before its root LP (greedy bound)
    assert r.mip_gap == pytest.approx((r.objective_bound - r.objective) / r.objective)


# --- invariants and spopt -----------------------------------------------------------------------------------------------


def test_mclp_coverage_never_drops_with_k_or_threshold():
    cost, w = random_instance(300, 60, seed=7)
    by_k = [MCLP.from_cost_matrix(cost, w, service_radius=1.2, n_sites=k).solve().objective for k in range(0, 9)]
    assert (np.diff(by_k) >= 0).all()
    assert by_k[-1] > by_k[0] == 0.0
    by_radius = [MCLP.from_cost_matrix(cost, w, service_radius=r, n_sites=4).solve().objective
                 for r in (0.5, 0.8, 1.2, 1.6, 2.5)]
    assert (np.diff(by_radius) >= 0).all()


def test_marginal_curve_matches_exact_solves():
    cost, w = random_instance(300, 60, seed=7)
    model = MCLP.from_cost_matrix(cost, w, service_radius=1.2, n_sites=8, existing=[0, 1])
    curve = marginal_curve(model)
    assert curve.index.tolist() == list(range(1, 9))
    assert (curve["status"] == "optimal").all()
    assert (curve["added_population"] >= 0).all()
    assert curve["covered_population"].is_monotonic_increasing
    for k in (1, 4, 8):
        exact = MCLP.from_cost_matrix(cost, w, service_radius=1.2, n_sites=k, existing=[0, 1]).solve()
        assert curve.loc[k, "covered_population"] == pytest.approx(exact.objective)
        assert len(curve.loc[k, "sites"]) == k
    before = w[(cost[:, [0, 1]] <= 1.2).any(axis=1)].sum()
    assert curve.loc[1, "added_population"] == pytest.approx(curve.loc[1, "covered_population"] - before)
    # diminishing returns on this instance
    assert curve["added_population"].iloc[0] > curve["added_population"].iloc[-1]


# --- sites that add nobody ----------------------------------------------------------------------------------------
# Toy K=4: the only 4-site set is A+B+C+D, covering everyone coverable (1210); the fewest sites doing so are A+B+D
# (c0 needs A, c2 needs B, c5 needs D), ranked B 630, D 460, A 120. A 4th site adds nobody: C's cells c3 and c4 are
# B's and D's. (Ranked on its own, A+B+C+D would read C 650, B 380, A 120, D 60: every site "adds", yet one is idle.)


def test_mclp_stops_at_the_last_site_that_adds_population():
    r = toy_mclp(4).solve()
    assert r.sites == ("B", "D", "A") and r.n_sites_requested == 4
    assert r.added_population.tolist() == [630.0, 460.0, 120.0] and r.adds_population.all()
    assert r.objective == r.covered_after == 1210.0 and r.mip_gap == 0.0
    assert r.zero_gain_reason == "no candidate reaches anyone still uncovered within service radius 15"
    assert r.assignment["c3"] == "B" and r.assignment["c4"] == "D"  # C is not open
    assert r.ranking["adds_population"].tolist() == [True, True, True]
    # asked for exactly K: C is kept, ranked last and marked
    k = toy_mclp(4).solve(require_k=True)
    assert k.sites == ("B", "D", "A", "C") and k.added_population.tolist() == [630.0, 460.0, 120.0, 0.0]
    assert k.adds_population.tolist() == [True, True, True, False] and k.covered_after == 1210.0
    assert k.zero_gain_reason == r.zero_gain_reason
    # every site adds population: no reason
    assert toy_mclp(3).solve().zero_gain_reason is None and toy_mclp(3).solve(require_k=True).zero_gain_reason is None


def test_fewest_sites_when_the_others_add_nobody():
    # 4 cells; site X alone covers everything, Y and Z each cover half: K=2 may return {Y, Z} (also all 400 persons),
    # but the fewest sites covering them is {X}
    cost = np.array([[1.0, 1, 9], [1, 1, 9], [1, 9, 1], [1, 9, 1]])
    m = MCLP.from_cost_matrix(cost, [100.0] * 4, service_radius=5, n_sites=2, site_ids=["X", "Y", "Z"])
    r = m.solve()
    assert r.sites == ("X",) and r.covered_after == 400.0 and r.zero_gain_reason is not None
    k = m.solve(require_k=True)
    assert k.sites[0] == "X" and len(k.sites) == 2 and k.adds_population.tolist() == [True, False]
    # the greedy heuristic stops too: after X no candidate adds anyone
    g = greedy_mclp(m)
    assert g.sites == ("X",) and g.zero_gain_reason == r.zero_gain_reason
    assert greedy_mclp(m, require_k=True).adds_population.tolist() == [True, False]


def test_capacitated_leaves_out_a_site_serving_nobody():
    # site T is beyond the threshold of both cells: with K=2 it serves nobody
    m = CapacitatedMCLP.from_cost_matrix(np.array([[1.0, 9], [1, 9]]), [10.0, 10.0], service_radius=5, n_sites=2,
                                         capacity=np.inf, site_ids=["S", "T"])
    r = m.solve()
    assert r.sites == ("S",) and r.objective == pytest.approx(20.0) and set(r.allocation["site_id"]) == {"S"}
    assert r.zero_gain_reason.startswith("no candidate can serve anyone still unserved within service radius 5")
    k = m.solve(require_k=True)
    assert k.sites == ("S", "T") and k.adds_population.tolist() == [True, False]


def test_swap_sites_that_add_nobody_after_a_stopped_solve():
    from planner._siting_core import _fill_useless

    # X covers c0-c3, Y c0-c1, Z c2-c3, W only c4. As a solve stopped early might leave it: X and Y, where Y adds
    # nobody after X but W would add c4's 50 persons
    cost = np.array([[1.0, 1, 9, 9], [1, 1, 9, 9], [1, 9, 1, 9], [1, 9, 1, 9], [9, 9, 9, 1]])
    inst = MCLP.from_cost_matrix(cost, [100.0] * 4 + [50.0], service_radius=5, n_sites=2,
                                 site_ids=["X", "Y", "Z", "W"])._inst
    assert inst.site_ids[_fill_useless(inst, [0, 1])].tolist() == ["X", "W"]
    assert inst.site_ids[_fill_useless(inst, [0, 1, 3])].tolist() == ["X", "W", "Y"]  # nothing left to swap in


def test_marginal_curve_stops_where_sites_add_nobody():
    curve = marginal_curve(toy_mclp(4))
    assert curve.index.tolist() == [1, 2, 3]
    assert curve["covered_population"].tolist() == [650.0, 1090.0, 1210.0] and curve["adds_population"].all()
    full = marginal_curve(toy_mclp(4), require_k=True)
    assert full.index.tolist() == [1, 2, 3, 4] and full["adds_population"].tolist() == [True, True, True, False]
    assert full.loc[4, "added_population"] == 0.0 and full.loc[4, "covered_population"] == 1210.0


def test_pmedian_leaves_out_sites_that_bring_nobody_closer():
    # site 0 is the nearest for both cells; sites 1 and 2 bring nobody closer
    cost = np.array([[1.0, 5, 3], [2, 6, 9]])
    m = PMedian.from_cost_matrix(cost, [10.0, 10.0], n_sites=3, site_ids=["P", "Q", "R"])
    r = m.solve()
    assert r.sites == ("P",) and r.objective == 30.0 and r.assignment.tolist() == ["P", "P"]
    assert r.zero_gain_reason == "no candidate brings anyone closer than the sites already open (any route)"
    k = m.solve(require_k=True)
    assert len(k.sites) == 3 and k.sites[0] == "P" and k.adds_population.tolist() == [True, False, False]
    assert k.objective == 30.0


def test_mclp_equals_spopt_random():
    cost, w = random_instance(300, 60, seed=11)
    for k in (3, 8):
        ours = MCLP.from_cost_matrix(cost, w, service_radius=1.2, n_sites=k).solve()
        assert ours.status == "optimal" and ours.mip_gap <= 1e-6
        assert ours.objective == pytest.approx(spopt_mclp(cost, w, 1.2, k), rel=1e-9)
    # existing sites: spopt counts predefined facilities in p
    existing = np.zeros(60)
    existing[[5, 17]] = 1
    ours = MCLP.from_cost_matrix(cost, w, service_radius=1.2, n_sites=4, existing=[5, 17]).solve()
    assert ours.objective == pytest.approx(spopt_mclp(cost, w, 1.2, 6, existing), rel=1e-9)


@pytest.fixture(scope="module")
def guanggu_od(guanggu_walk):
    """Optics Valley: 300 m population cells, every 10th walk-network node as a candidate, 10-minute OD pairs."""
    _, net = guanggu_walk
    area = coverage.compute_study_area(net)
    cells = demand.load_population(datasets.get_path("wuhan_population"), study_area=area, cell_size_m=300)
    step = np.arange(0, net.n_nodes, 10)
    cand = gpd.GeoSeries(gpd.points_from_xy(net.node_xy[step, 0], net.node_xy[step, 1]), crs=net.crs,
                         index=pd.Index([f"n{i}" for i in step], name="site_id")).to_crs("EPSG:4326")
    so = travel_time.snap_points(net, cells)
    sc = travel_time.snap_points(net, cand)
    od = travel_time.od_travel_times(net, so, sc, max_minutes=10)
    return od, cells, cand


def test_mclp_equals_spopt_real_guanggu(guanggu_od):
    od, cells, cand = guanggu_od
    assert len(od) > 0 and len(cand) > 5
    ours = MCLP.from_travel_times(od, cells, cand, max_minutes=10, n_sites=5).solve()
    assert ours.status == "optimal"
    assert ours.mip_gap <= 1e-6
    # the same instance as a dense matrix, no route -> a large cost
    dense = np.full((len(cells), len(cand)), 1e9)
    dense[cells.index.get_indexer(od["origin_id"]), cand.index.get_indexer(od["destination_id"])] = od["travel_time_s"]
    theirs = spopt_mclp(dense, cells["population"].to_numpy(), 600.0, 5)
    assert ours.objective == pytest.approx(theirs, rel=1e-6)
    assert ours.assignment.index.equals(cells.index)
    assert 0 < ours.covered_pct_after <= 100


# --- greedy -----------------------------------------------------------------------------------------------------------


def test_greedy_toy_is_suboptimal_but_bounded():
    g = greedy_mclp(toy_mclp(2))
    assert (g.model, g.status) == ("greedy_mclp", "heuristic")
    assert g.sites == ("C", "B") and g.objective == 1030.0  # exact: B+D, 1090
    assert g.objective_bound >= 1090.0
    assert g.mip_gap >= (1090.0 - 1030.0) / 1030.0


@pytest.mark.parametrize("k", [5, 12])
def test_greedy_within_guarantee_and_reports_a_valid_gap(k):
    cost, w = random_instance(300, 60, seed=5)
    model = MCLP.from_cost_matrix(cost, w, service_radius=1.2, n_sites=k)
    exact = model.solve()
    for lp_bound in (True, False):
        g = greedy_mclp(model, lp_bound=lp_bound)
        assert (1 - 1 / math.e) * exact.objective <= g.objective <= exact.objective
        assert len(g.sites) == k
        assert g.objective_bound >= exact.objective - 1e-6
        true_gap = (exact.objective - g.objective) / g.objective
        assert g.mip_gap >= true_gap - 1e-12


# --- LSCP -------------------------------------------------------------------------------------------------------------


def test_lscp_toy_all_coverable():
    r = LSCP.from_cost_matrix(COST, POP, service_radius=15, site_ids=SITES).solve()
    assert (r.model, r.status, r.objective, r.mip_gap) == ("LSCP", "optimal", 3.0, 0.0)
    assert r.sites == ("B", "D", "A")
    assert r.covered_after == 1210.0
    assert r.covered_pct_after == pytest.approx(93.0769, abs=1e-3)


def test_lscp_toy_partial_target_breaks_ties_by_coverage():
    r = LSCP.from_cost_matrix(COST, POP, service_radius=15, target_pct=75, site_ids=SITES).solve()
    assert r.objective == 2.0 and r.objective_bound == 2.0
    assert r.sites == ("B", "D")
    assert r.covered_after == 1090.0  # B+C would also reach 75 % but covers only 1030
    assert LSCP.from_cost_matrix(COST, POP, service_radius=15, target_pct=0, site_ids=SITES).solve().sites == ()


def test_lscp_toy_existing():
    r = LSCP.from_cost_matrix(COST, POP, service_radius=15, existing=["D"], site_ids=SITES).solve()
    assert r.sites == ("B", "A") and r.objective == 2.0
    assert (r.covered_before, r.covered_after) == (460.0, 1210.0)


def test_lscp_target_100_infeasible_says_what_is_achievable():
    with pytest.raises(InfeasibleModelError, match=r"target 100% is not achievable: at most 93\.0% of the population is "
                                                   r"within service radius 15 .*fix: lower target_pct .* ≤ 93\.0"):
        LSCP.from_cost_matrix(COST, POP, service_radius=15, target_pct=100, site_ids=SITES)
    with pytest.raises(InfeasibleModelError, match=r"at most 93\.0% of the population is within 15 min of any candidate"):
        LSCP.from_travel_times(toy_od(), POP, SITES, max_minutes=15, target_pct=95)


def test_lscp_reaches_target_on_random_instance():
    cost, w = random_instance(300, 60, seed=2)
    r = LSCP.from_cost_matrix(cost, w, service_radius=1.5, target_pct=80).solve()
    assert r.covered_pct_after >= 80
    # one site fewer cannot reach 80 %
    best = MCLP.from_cost_matrix(cost, w, service_radius=1.5, n_sites=int(r.objective) - 1).solve()
    assert best.covered_pct_after < 80


# --- PMedian ----------------------------------------------------------------------------------------------------------


def test_pmedian_toy():
    r = PMedian.from_cost_matrix(COST, POP, n_sites=2, site_ids=SITES).solve()
    assert (r.model, r.status, r.mip_gap) == ("PMedian", "optimal", 0.0)
    assert set(r.sites) == {"B", "C"}
    assert r.objective == 12280.0  # person-minutes, by hand above
    assert r.assignment.tolist() == ["B", "B", "B", "C", "C", "C", None]
    assert r.excluded_cells.tolist() == ["c6"]
    assert r.covered_after == 1210.0


def test_pmedian_toy_existing_and_cap():
    r = PMedian.from_cost_matrix(COST, POP, n_sites=1, existing=["D"], site_ids=SITES).solve()
    assert r.sites == ("B",) and r.objective == 13520.0
    assert r.assignment["c5"] == "D"
    r = PMedian.from_cost_matrix(COST, POP, n_sites=3, service_radius=15, site_ids=SITES).solve()
    assert set(r.sites) == {"A", "B", "D"} and r.objective == 11560.0
    with pytest.raises(InfeasibleModelError, match=r"2 new site\(s\) cannot serve all 6 populated cells .* at least 3 "
                                                   r"are needed; fix: raise n_sites to ≥ 3"):
        PMedian.from_cost_matrix(COST, POP, n_sites=2, service_radius=15, site_ids=SITES).solve()


def test_pmedian_from_travel_times_person_seconds():
    r = PMedian.from_travel_times(toy_od(), POP, SITES, n_sites=2).solve()
    assert r.objective == 12280.0 * 60


def test_pmedian_beats_or_equals_every_other_pair():
    cost, w = random_instance(60, 8, seed=4)
    r = PMedian.from_cost_matrix(cost, w, n_sites=2).solve()
    brute = min((w * cost[:, [a, b]].min(axis=1)).sum() for a in range(8) for b in range(a + 1, 8))
    assert r.objective == pytest.approx(brute, rel=1e-9)


# --- capacitated ------------------------------------------------------------------------------------------------------

CAPACITY = pd.Series({"A": 1000.0, "B": 350.0, "C": 1000.0, "D": 1000.0})


def test_capacitated_toy_split_cells():
    m = CapacitatedMCLP.from_cost_matrix(COST, POP, service_radius=15, n_sites=2, capacity=CAPACITY, site_ids=SITES)
    r = m.solve()
    assert (r.model, r.status) == ("CapacitatedMCLP", "optimal")
    assert r.sites == ("C", "B")
    assert r.objective == pytest.approx(1000.0)
    assert r.added_population.tolist() == pytest.approx([650.0, 350.0])
    served = r.allocation.groupby("site_id")["population"].sum()
    assert served.to_dict() == pytest.approx({"B": 350.0, "C": 650.0})
    assert (r.allocation["share"] <= 1 + 1e-9).all()


def test_capacitated_toy_whole_cells():
    r = CapacitatedMCLP.from_cost_matrix(COST, POP, service_radius=15, n_sites=2, capacity=CAPACITY,
                                         binary_assignment=True, site_ids=SITES).solve()
    assert set(r.sites) == {"B", "C"}
    assert r.objective == pytest.approx(950.0)
    assert r.assignment.tolist() == [None, None, "B", "C", "C", None, None]


def test_capacitated_unlimited_equals_mclp_and_existing_capacity():
    r = CapacitatedMCLP.from_cost_matrix(COST, POP, service_radius=15, n_sites=2, capacity=np.inf, site_ids=SITES).solve()
    assert set(r.sites) == {"B", "D"} and r.objective == pytest.approx(1090.0)
    # D existing with room for 100 persons: alone it serves c5 (60) and 40 of c4. With one new site, C serves c3 and
    # c4 (650) and D keeps c5 (60): 710 (B: 350 + 100, A: 200 + 100)
    cap = CAPACITY.copy()
    cap["D"] = 100.0
    r = CapacitatedMCLP.from_cost_matrix(COST, POP, service_radius=15, n_sites=1, capacity=cap, existing=["D"],
                                         site_ids=SITES).solve()
    assert r.covered_before == pytest.approx(100.0)
    assert r.sites == ("C",) and r.objective == pytest.approx(710.0)
    assert r.added_population.tolist() == pytest.approx([610.0])


# --- bad inputs -------------------------------------------------------------------------------------------------------


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(InvalidValueError, match=r"n_sites=5 exceeds the 4 candidate sites .*fix: choose n_sites ≤ 4"):
        toy_mclp(5)
    with pytest.raises(InvalidValueError, match=r"n_sites=4 exceeds the 3 candidate sites"):
        toy_mclp(4, existing=["D"])
    with pytest.raises(InvalidValueError, match="no candidate sites"):
        MCLP.from_cost_matrix(COST, POP, service_radius=15, n_sites=0, site_ids=SITES, existing=SITES)
    with pytest.raises(InvalidValueError, match="candidates is empty"):
        MCLP.from_travel_times(toy_od(), POP, [], max_minutes=15, n_sites=1)
    with pytest.raises(InvalidValueError, match=r"1 negative population value\(s\) \(first -5 at cell 'c2'\)"):
        MCLP.from_cost_matrix(COST, POP.replace(300.0, -5.0), service_radius=15, n_sites=1)
    with pytest.raises(InvalidValueError, match=r"1 missing or non-finite population value\(s\) \(cells 'c3'\)"):
        MCLP.from_cost_matrix(COST, POP.replace(250.0, np.nan), service_radius=15, n_sites=1)
    with pytest.raises(InvalidValueError, match=r"target_pct=120 is outside 0-100"):
        LSCP.from_cost_matrix(COST, POP, service_radius=15, target_pct=120)
    with pytest.raises(InvalidValueError, match=r"target_pct=-1 is outside 0-100"):
        LSCP.from_cost_matrix(COST, POP, service_radius=15, target_pct=-1)
    with pytest.raises(InvalidValueError, match=r"capacity is negative for 1 site\(s\) \('B'\)"):
        CapacitatedMCLP.from_cost_matrix(COST, POP, service_radius=15, n_sites=1, capacity=CAPACITY.replace(350.0, -1),
                                         site_ids=SITES)
    with pytest.raises(InvalidValueError, match=r"capacity is missing for 1 site\(s\) \('D'\)"):
        CapacitatedMCLP.from_cost_matrix(COST, POP, service_radius=15, n_sites=1, capacity=CAPACITY.drop("D"),
                                         site_ids=SITES)
    with pytest.raises(InvalidValueError, match=r"existing site ids 'E' are not among the 4 sites"):
        toy_mclp(1, existing=["E"])
    with pytest.raises(InvalidValueError, match="cost_matrix has negative"):
        MCLP.from_cost_matrix(-COST, POP, service_radius=15, n_sites=1)
    with pytest.raises(InvalidValueError, match=r"max_minutes=0 must be a positive number of minutes"):
        MCLP.from_travel_times(toy_od(), POP, SITES, max_minutes=0, n_sites=1)
    with pytest.raises(MissingColumnError, match="od is missing column"):
        MCLP.from_travel_times(toy_od().drop(columns="travel_time_s"), POP, SITES, max_minutes=15, n_sites=1)
    with pytest.raises(InvalidValueError, match=r"time_limit_s=0 must be > 0 seconds"):
        toy_mclp(1).solve(time_limit_s=0)
    with pytest.raises(InvalidValueError, match=r"mip_gap=1.5 must be a relative gap in \[0, 1\)"):
        toy_mclp(1).solve(mip_gap=1.5)
    with pytest.raises(InvalidValueError, match=r"n_sites=9 exceeds the 4 candidate sites"):
        marginal_curve(toy_mclp(1), max_sites=9)


def test_error_messages_are_one_line():
    for call in (lambda: toy_mclp(5), lambda: LSCP.from_cost_matrix(COST, POP, service_radius=15, target_pct=100)):
        with pytest.raises((InvalidValueError, InfeasibleModelError)) as err:
            call()
        assert "\n" not in str(err.value) and "fix:" in str(err.value)
