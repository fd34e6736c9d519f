"""Consortium grids: a hand-solvable strip asserted exactly, invariants on a clipped Wuhan case, and bad inputs."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from planner import InfeasibleModelError, InvalidValueError, UnreachableFacilityError, assignment, datasets
from planner.assignment import assign_lead_hospital, nearest_lead_baseline
from planner.grids import cell_adjacency, dissolve_grids, district_summary, grids_summary
from planner.pipeline import load_case
from planner.travel_time import od_travel_times, snap_points

# --------------------------------------------------------------------------------------------------------------------
# a 1 x 6 strip, solvable by hand
# --------------------------------------------------------------------------------------------------------------------
#
#   cell        0    1    2    3    4    5
#   persons    10   20   10   30   30   20     (120 in all; equal shares: 60 ± 20 % = 48..72 each)
#   t to A     60  120  180  240   90  300     (A's home is cell 0; a fast road brings cell 4 close to A)
#   t to B    360  300  240  180  120   60     (B's home is cell 5)
#
# Nearest lead: A gets {0, 1, 2, 4} = 70, B {3, 5} = 50, cost 14,100 person-s, but A's grid is not contiguous.
# Contiguous grids are A = {0..k}, B = the rest; A's load 10, 30, 40, 70, 100: only {0, 1, 2, 3} (70) is in 48..72,
# so A = {0, 1, 2, 3}, B = {4, 5}: cost 600 + 2,400 + 1,800 + 7,200 + 3,600 + 1,200 = 16,800 person-s.

STRIP_POP = [10.0, 20.0, 10.0, 30.0, 30.0, 20.0]
T_A = [60, 120, 180, 240, 90, 300]
T_B = [360, 300, 240, 180, 120, 60]


@pytest.fixture
def strip():
    cells = gpd.GeoDataFrame({"population": STRIP_POP, "district": ["x", "x", "y", "y", "z", "z"]},
                             geometry=[shapely.box(x * 1000, 0, (x + 1) * 1000, 1000) for x in range(6)],
                             crs="EPSG:32650", index=pd.Index(range(6), name="cell_id"))
    od = pd.DataFrame({"origin_id": list(range(6)) * 2, "destination_id": ["A"] * 6 + ["B"] * 6,
                       "travel_time_s": [float(t) for t in T_A + T_B]})
    leads = pd.DataFrame({"name": ["Lead A", "Lead B"], "capacity": [np.nan, np.nan]},
                         index=pd.Index(["A", "B"], name="facility_id"))
    return cells, od, leads, cell_adjacency(cells)


@pytest.mark.parametrize("method", ["mip", "heuristic"])
def test_strip_exact_assignment(strip, method):
    cells, od, leads, adj = strip
    r = assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.2, method=method)
    assert r.assignment.tolist() == ["A", "A", "A", "A", "B", "B"]
    assert r.objective == pytest.approx(16_800.0)
    assert r.loads["population"].tolist() == [70.0, 50.0]
    assert r.loads["home_cell"].tolist() == [0, 5]
    assert r.status == ("optimal" if method == "mip" else "heuristic")
    assert r.lower_bound <= r.objective + 1e-6
    assert r.travel_time_s.tolist() == [60.0, 120.0, 180.0, 240.0, 120.0, 60.0]
    # against the nearest-lead baseline: cells 3 and 4 (60 persons) change lead, +2,700 person-s
    assert r.baseline.tolist() == ["A", "A", "A", "B", "A", "B"]
    assert r.comparison["population_moved"] == 60.0
    assert r.comparison["cells_moved"] == 2
    assert r.comparison["mean_travel_time_added_s"] == pytest.approx((16_800 - 14_100) / 120)
    assert r.comparison["baseline_max_load_ratio"] == pytest.approx(70 / 60)


def test_strip_capacity_shares_and_tolerance(strip):
    cells, od, leads, adj = strip
    # shares 1 : 3 -> A's target 30 (27..33): only A = {0, 1}
    r = assign_lead_hospital(od, cells, leads, adjacency=adj, capacity={"A": 100, "B": 300}, tolerance=0.1)
    assert r.assignment.tolist() == ["A", "A", "B", "B", "B", "B"]
    assert r.objective == pytest.approx(3_000 + 2_400 + 5_400 + 3_600 + 1_200)
    assert r.loads["capacity_share"].tolist() == [0.25, 0.75]
    # a capacity column is used when every lead has one
    r2 = assign_lead_hospital(od, cells, leads.assign(capacity=[100.0, 300.0]), adjacency=adj, tolerance=0.1)
    assert r2.assignment.tolist() == r.assignment.tolist()


def test_strip_fixed_district_is_honoured(strip):
    cells, od, leads, adj = strip
    free = assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.5)
    assert free.assignment.tolist() == ["A", "A", "A", "B", "B", "B"]  # A = {0, 1, 2}: 15,000 person-s
    assert free.objective == pytest.approx(15_000.0)
    fixed = assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.5, fixed={"y": "A"})
    assert fixed.assignment.tolist() == ["A", "A", "A", "A", "B", "B"]
    assert fixed.objective == pytest.approx(16_800.0)
    # a cell's own entry wins over its district's
    cell_wins = assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.5, fixed={"y": "A", 3: "B"})
    assert cell_wins.assignment.tolist() == ["A", "A", "A", "B", "B", "B"]


def test_nearest_lead_baseline(strip):
    cells, od, leads, _ = strip
    base = nearest_lead_baseline(od, cells, leads)
    assert base.index.equals(cells.index)
    assert base["lead_id"].tolist() == ["A", "A", "A", "B", "A", "B"]
    assert base["travel_time_s"].tolist() == [60.0, 120.0, 180.0, 180.0, 90.0, 60.0]


def test_unrouted_cells_are_reported_not_assigned(strip):
    cells, od, leads, adj = strip
    extra = pd.concat([cells, gpd.GeoDataFrame({"population": [5.0], "district": ["z"]},
                                               geometry=[shapely.box(6000, 0, 7000, 1000)], crs=cells.crs,
                                               index=pd.Index([6], name="cell_id"))])
    r = assign_lead_hospital(od, extra, leads, adjacency=cell_adjacency(extra), tolerance=0.2)
    assert r.assignment.index.equals(extra.index)
    assert r.assignment.iloc[-1] is None and np.isnan(r.travel_time_s.iloc[-1])
    assert r.unassigned.tolist() == [6]
    assert r.summary()["n_unassigned"] == 1 and r.summary()["population_unassigned"] == 5.0


def test_dissolve_and_summaries(strip):
    cells, od, leads, adj = strip
    r = assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.2)
    grids = dissolve_grids(cells, r.assignment)
    assert grids.crs == "EPSG:4326"
    assert grids.index.tolist() == ["A", "B"]
    assert grids["population"].tolist() == [70.0, 50.0]
    assert grids.geom_type.tolist() == ["Polygon", "Polygon"]
    inst = gpd.GeoDataFrame({"name": ["Lead A", "Lead B", "CHC 1", "CHC 2", "Station"],
                             "tier": ["tertiary", "tertiary", "primary", "primary", "station"],
                             "capacity": [500.0, 700.0, 20.0, np.nan, np.nan], "district": ["x", "z", "y", "z", "x"]},
                            geometry=gpd.points_from_xy([500, 5500, 3500, 4500, 1500], [500] * 5), crs=cells.crs,
                            index=pd.Index(["A", "B", "c1", "c2", "s1"], name="facility_id"))
    gs = grids_summary(r, cells, institutions=inst)
    assert gs.loc["A", "name"] == "Lead A"
    assert gs["members"].tolist() == [2, 1]  # c1 (cell 3) and s1 (cell 1) in A; c2 (cell 4) in B
    assert gs.loc["A", "members_primary"] == 1 and gs.loc["A", "members_station"] == 1
    assert gs.loc["A", "capacity"] == 520.0 and gs.loc["A", "capacity_missing"] == 1
    assert gs.loc["A", "capacity_per_1000"] == pytest.approx(520 / 70 * 1000)
    assert gs["within_tolerance"].all()
    # population-weighted: A's persons at 1, 2, 3, 4 minutes weigh 10, 20, 10, 30 -> the 95th percentile is 4 minutes
    assert gs.loc["A", "mean_travel_time_min"] == pytest.approx((600 + 2400 + 1800 + 7200) / 70 / 60)
    assert gs.loc["A", "p95_travel_time_min"] == pytest.approx(4.0)
    assert gs.loc["B", "max_travel_time_min"] == pytest.approx(2.0)
    ds = district_summary(r, cells, institutions=inst)
    assert ds.index.tolist() == ["x", "y", "z"]
    assert ds.loc["y", "n_grids"] == 1 and ds.loc["z", "n_grids"] == 1
    assert ds.loc["x", "institutions"] == 2 and ds.loc["x", "institutions_tertiary"] == 1
    assert ds.loc["z", "capacity_per_1000"] == pytest.approx(700 / 50 * 1000)
    s = r.summary()
    assert s["n_grids"] == 2 and s["loads"][0]["facility_id"] == "A"
    assert json.loads(json.dumps(s))["population_moved"] == 60.0  # JSON-ready for summary.json


def test_cell_adjacency_rook_queen_and_islands():
    boxes = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(2, 1, 3, 2), shapely.box(10, 0, 11, 1)]
    cells = gpd.GeoDataFrame(geometry=boxes, crs="EPSG:32650", index=pd.Index([10, 11, 12, 13], name="cell_id"))
    rook = cell_adjacency(cells)
    assert set(map(tuple, rook[["cell_id", "neighbor_id"]].to_numpy().tolist())) == {(10, 11), (11, 10)}
    queen = cell_adjacency(cells, contiguity="queen")
    assert len(queen) == 4 and queen["distance_m"].max() == pytest.approx(np.sqrt(2))
    linked = cell_adjacency(cells, contiguity="queen", link_islands=True)
    assert linked["link"].sum() == 2  # 12 <-> 13, the nearest pair between the two groups
    assert set(map(tuple, linked.loc[linked["link"], ["cell_id", "neighbor_id"]].to_numpy().tolist())) == {(12, 13), (13, 12)}


# --------------------------------------------------------------------------------------------------------------------
# bad inputs: one line naming the lead or cell and what to relax
# --------------------------------------------------------------------------------------------------------------------


def test_lead_reaching_no_cell(strip):
    cells, od, leads, adj = strip
    more = pd.concat([leads, pd.DataFrame({"name": ["Lead C"]}, index=pd.Index(["C"], name="facility_id"))])
    with pytest.raises(UnreachableFacilityError, match=r"lead 'C' \(Lead C\) reaches no cell.*fix: drop it"):
        assign_lead_hospital(od, cells, more, adjacency=adj)


def test_capacity_that_cannot_be_met(strip):
    cells, od, leads, adj = strip
    # B's share is 99 %: A must still hold its home cell (10 persons), far above 1.2 % of 120
    with pytest.raises(InfeasibleModelError, match=r"lead 'A' must serve 10 persons.*fix: raise tolerance to at least"):
        assign_lead_hospital(od, cells, leads, adjacency=adj, capacity={"A": 1, "B": 99})
    # no whole-cell split is within ±5 % of 60 / 60
    with pytest.raises(InfeasibleModelError, match=r"within ±5%.*fix: raise tolerance"):
        assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.05, method="mip")
    with pytest.raises(InfeasibleModelError, match=r"fix: use method='mip', or relax tolerance"):
        assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.05, method="heuristic")


def test_fixed_assignments_that_contradict_contiguity(strip):
    cells, od, leads, adj = strip
    # B's grid cannot reach cell 1 without crossing cell 2, fixed to A
    with pytest.raises(InfeasibleModelError, match=r"cell 1 .* fixed to lead 'B' but cannot join its grid contiguously.*unfix"):
        assign_lead_hospital(od, cells, leads, adjacency=adj, fixed={1: "B", 2: "A"})
    # cell 3 fixed to B leaves A at most cells 0-2 (40 persons), below 48
    with pytest.raises(InfeasibleModelError, match=r"lead 'A' can serve at most 40 persons .*box it in"):
        assign_lead_hospital(od, cells, leads, adjacency=adj, fixed={3: "B"})
    with pytest.raises(InvalidValueError, match=r"fixed key 'nowhere' is not a cell_id or a district name"):
        assign_lead_hospital(od, cells, leads, adjacency=adj, fixed={"nowhere": "A"})
    with pytest.raises(InvalidValueError, match=r"fixed\[0\] = 'Q' is not one of the leads"):
        assign_lead_hospital(od, cells, leads, adjacency=adj, fixed={0: "Q"})


def test_bad_arguments(strip):
    cells, od, leads, adj = strip
    with pytest.raises(InvalidValueError, match="tolerance=-0.1 must be"):
        assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=-0.1)
    with pytest.raises(InvalidValueError, match="lead 'B' has capacity nan"):
        assign_lead_hospital(od, cells, leads.assign(capacity=[10.0, np.nan]), adjacency=adj)
    with pytest.raises(InvalidValueError, match="method='exact' is not known"):
        assign_lead_hospital(od, cells, leads, adjacency=adj, method="exact")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------------------
# invariants on a real case: Jianghan + Qiaokou (Wuhan), 1 km cells, drive times, their tertiary hospitals
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wuhan_core():
    case = load_case(datasets.get_path("wuhan_roads"), datasets.get_path("wuhan_institutions"),
                     datasets.get_path("wuhan_population"), boundaries=datasets.get_path("wuhan_districts"),
                     mode="drive", cell_size_m=1000)
    net = case.net
    districts = ["江汉区", "硚口区"]
    cells = case.cells[case.cells["district"].isin(districts)]
    inst = case.institutions
    snapped = snap_points(net, inst)
    leads = inst[(inst["tier"] == "tertiary") & snapped["snapped"] & inst["district"].isin(districts)]
    od = od_travel_times(net, snap_points(net, cells, max_snap_m=710), snapped.loc[leads.index])
    adj = cell_adjacency(cells, contiguity="queen")
    result = assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.2, time_limit_s=30)
    return cells, inst, leads, od, adj, result


def _grids_connected(adj: pd.DataFrame, assignment: pd.Series) -> bool:
    lead = assignment.reindex(adj["cell_id"]).to_numpy()
    nb = assignment.reindex(adj["neighbor_id"]).to_numpy()
    same = (lead == nb) & pd.notna(lead)
    ids = pd.Index(assignment.index)
    for g in pd.unique(assignment.dropna()):
        members = ids[(assignment == g).to_numpy()]
        pos = pd.Index(members)
        e = same & (lead == g)
        u, v = pos.get_indexer(adj["cell_id"][e]), pos.get_indexer(adj["neighbor_id"][e])
        graph = coo_matrix((np.ones(len(u)), (u, v)), shape=(len(pos), len(pos)))
        if connected_components(graph, directed=False)[0] != 1:
            return False
    return True


def test_real_case_invariants(wuhan_core):
    cells, inst, leads, od, adj, r = wuhan_core
    assert len(leads) >= 5
    assert r.status in ("optimal", "work_limit") and r.method == "mip" and not r.time_limited
    # index preserved; every cell with a route assigned exactly once, to a lead
    assert r.assignment.index.equals(cells.index)
    assigned = r.assignment.dropna()
    assert len(assigned) + len(r.unassigned) == len(cells)
    assert set(assigned) == set(leads.index)
    # loads within tolerance, and the loads table adds up
    lo = r.loads
    assert ((lo["population"] >= lo["min_population"] - 1e-6) & (lo["population"] <= lo["max_population"] + 1e-6)).all()
    assert lo["population"].sum() == pytest.approx(cells["population"].loc[assigned.index].sum())
    assert lo["capacity_share"].tolist() == pytest.approx([1 / len(leads)] * len(leads))
    # every grid contiguous in the cell adjacency
    assert _grids_connected(adj, r.assignment)
    # objective, bound and comparison consistent with the per-cell figures
    pop = cells["population"].loc[assigned.index]
    assert r.objective == pytest.approx(float((pop * r.travel_time_s.loc[assigned.index]).sum()))
    assert r.lower_bound <= r.objective + 1e-6 and 0 <= r.gap <= 0.05
    moved = r.assignment.loc[assigned.index] != r.baseline.loc[assigned.index]
    assert r.comparison["population_moved"] == pytest.approx(float(pop[moved].sum()))
    base_mean = float((pop * r.baseline_travel_time_s.loc[assigned.index]).sum() / pop.sum())
    assert r.comparison["baseline_mean_travel_time_s"] == pytest.approx(base_mean)
    assert r.comparison["mean_travel_time_added_s"] >= -1e-6  # the baseline is the unconstrained optimum
    # the baseline is the nearest lead
    nearest = od.sort_values("travel_time_s").drop_duplicates("origin_id").set_index("origin_id")["destination_id"]
    assert (r.baseline.loc[nearest.index] == nearest).all()


def test_real_case_fixed_cell_is_honoured(wuhan_core):
    cells, inst, leads, od, adj, r = wuhan_core
    # a boundary cell that is not a home cell, moved to the neighbouring grid
    lead = r.assignment.reindex(adj["cell_id"]).to_numpy()
    nb = r.assignment.reindex(adj["neighbor_id"]).to_numpy()
    homes = set(r.loads["home_cell"])
    border = adj[(lead != nb) & pd.notna(lead) & pd.notna(nb) & ~adj["cell_id"].isin(homes)]
    cell, other = border["cell_id"].iloc[0], r.assignment[border["neighbor_id"].iloc[0]]
    r2 = assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.3, fixed={cell: other}, time_limit_s=20)
    assert r2.assignment[cell] == other
    assert _grids_connected(adj, r2.assignment)
    lo = r2.loads
    assert ((lo["population"] >= lo["min_population"] - 1e-6) & (lo["population"] <= lo["max_population"] + 1e-6)).all()


def test_real_case_grids_and_summaries(wuhan_core):
    cells, inst, leads, od, adj, r = wuhan_core
    grids = dissolve_grids(cells, r.assignment)
    assert set(grids.index) == set(leads.index)
    assert grids["population"].sum() == pytest.approx(r.loads["population"].sum())
    gs = grids_summary(r, cells, institutions=inst)
    assert gs.index.equals(r.loads.index)
    assert (gs["p95_travel_time_min"] <= gs["max_travel_time_min"] + 1e-9).all()
    assert (gs["mean_travel_time_min"] <= gs["max_travel_time_min"] + 1e-9).all()
    assert gs["name"].notna().all()
    ds = district_summary(r, cells, institutions=inst)
    assert set(ds.index) == {"江汉区", "硚口区"}
    assert ds["population"].sum() == pytest.approx(cells["population"].sum())


def test_heuristic_on_real_case_meets_the_constraints(wuhan_core):
    cells, inst, leads, od, adj, r = wuhan_core
    h = assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.2, method="heuristic", time_limit_s=10)
    assert h.status == "heuristic" and h.method == "heuristic"
    assert _grids_connected(adj, h.assignment)
    lo = h.loads
    assert ((lo["population"] >= lo["min_population"] - 1e-6) & (lo["population"] <= lo["max_population"] + 1e-6)).all()
    assert h.lower_bound <= r.objective + 1e-6  # the LP bound is below the MIP's solution
    assert h.objective >= r.lower_bound - 1e-6
    assert assignment.MAX_MIP_PAIRS > len(od)


# --------------------------------------------------------------------------------------------------------------------
# reproducible: the solve ends by a work bound, never by the clock
# --------------------------------------------------------------------------------------------------------------------


def test_real_case_mip_is_reproducible_at_its_node_bound(wuhan_core):
    cells, inst, leads, od, adj, r = wuhan_core
    runs = [assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.2, max_nodes=20) for _ in range(2)]
    a, b = runs
    assert a.status == "work_limit" and a.gap > 0 and not a.time_limited  # not optimal at the bound
    assert a.work["mip_nodes"] == a.work["mip_max_nodes"] == 20
    assert a.assignment.equals(b.assignment) and a.objective == b.objective and a.lower_bound == b.lower_bound
    assert _grids_connected(adj, a.assignment) and a.lower_bound <= a.objective
    # more nodes never give a worse incumbent than the heuristic start; the default bound is the 200-node one
    assert r.work["mip_max_nodes"] == assignment.MIP_MAX_NODES and r.objective <= a.objective * (1 + 1e-9)
    with pytest.raises(InvalidValueError, match=r"max_nodes=-1 must be a whole number >= 0"):
        assign_lead_hospital(od, cells, leads, adjacency=adj, max_nodes=-1)


@pytest.fixture(scope="module")
def wuhan_three_districts():
    # 16 tertiary hospitals in three districts: more than 8 leads, so the heuristic's neighbourhood search runs
    case = load_case(datasets.get_path("wuhan_roads"), datasets.get_path("wuhan_institutions"),
                     datasets.get_path("wuhan_population"), boundaries=datasets.get_path("wuhan_districts"),
                     mode="drive", cell_size_m=1000)
    net = case.net
    districts = ["江汉区", "硚口区", "江岸区"]
    cells = case.cells[case.cells["district"].isin(districts)]
    inst = case.institutions
    snapped = snap_points(net, inst)
    leads = inst[(inst["tier"] == "tertiary") & snapped["snapped"] & inst["district"].isin(districts)]
    od = od_travel_times(net, snap_points(net, cells, max_snap_m=710), snapped.loc[leads.index])
    return cells, leads, od, cell_adjacency(cells, contiguity="queen")


def test_heuristic_is_reproducible_at_its_sub_problem_bound(wuhan_three_districts):
    cells, leads, od, adj = wuhan_three_districts
    assert len(leads) == 16
    runs = [assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.6, method="heuristic", max_submips=20)
            for _ in range(2)]
    a, b = runs
    assert a.work["lns_submips"] == 20  # the budget, not convergence, ended the search
    assert a.status == "heuristic" and not a.time_limited and a.assignment.equals(b.assignment)
    assert a.objective == b.objective and _grids_connected(adj, a.assignment)
    lo = a.loads
    assert ((lo["population"] >= lo["min_population"] - 1e-6) & (lo["population"] <= lo["max_population"] + 1e-6)).all()
    fewer = assign_lead_hospital(od, cells, leads, adjacency=adj, tolerance=0.6, method="heuristic", max_submips=2)
    assert fewer.work["lns_submips"] == 2 and fewer.objective >= a.objective - 1e-6
