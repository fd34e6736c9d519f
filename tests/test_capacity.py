"""Capacity-limited coverage: a hand-solved case, an independent max-flow (networkx), real cases, bad capacities."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from planner import datasets
from planner._errors import InvalidValueError, MissingColumnError
from planner.capacity import Allocation, allocate, allocate_cells, capacity_from_column, capacity_summary
from planner.coverage import coverage_by_cell
from planner.pipeline import Case
from planner.travel_time import od_travel_times, snap_points

DATA = Path(__file__).parent / "data"
TOL = 1e-6


def _check_books(a: Allocation, capacity: pd.Series) -> None:
    """Served + out of reach + over capacity = population, per cell and in total; nobody over capacity."""
    c = a.cells
    total = float(c["population"].sum())
    parts = c["served"] + c["unserved_out_of_reach"] + c["unserved_over_capacity"]
    assert np.allclose(parts, c["population"], rtol=0, atol=1e-9)
    assert abs(float(parts.sum()) - total) <= TOL * max(total, 1.0)
    assert (c[["served", "unserved_out_of_reach", "unserved_over_capacity"]] >= 0).all().all()
    assert (a.facilities["served"] <= capacity.reindex(a.facilities.index) + TOL).all()
    assert (a.flows["flow"] > 0).all()
    # the flows are the served figures, seen from both ends
    by_cell = a.flows.groupby("origin_id")["flow"].sum().reindex(c.index, fill_value=0.0)
    by_fac = a.flows.groupby("destination_id")["flow"].sum().reindex(a.facilities.index, fill_value=0.0)
    assert np.allclose(by_cell, c["served"], atol=1e-9) and np.allclose(by_fac, a.facilities["served"], atol=1e-9)
    assert (c.loc[~c["reachable"], "served"] == 0).all() and (c.loc[c["reachable"], "unserved_out_of_reach"] == 0).all()


def _max_flow(od: pd.DataFrame, demand: pd.Series, capacity: pd.Series, max_minutes: float) -> float:
    """Independent max-flow: source → cell (its population) → institution within T (unbounded) → sink (capacity)."""
    G = nx.DiGraph()
    G.add_node("source")
    G.add_node("sink")
    for cell, pop in demand.items():
        G.add_edge("source", ("cell", cell), capacity=float(pop))
    for fac, cap in capacity.items():
        G.add_edge(("fac", fac), "sink", capacity=float(cap))
    within = od[od["travel_time_s"] <= max_minutes * 60]
    for o, d in zip(within["origin_id"], within["destination_id"], strict=True):
        G.add_edge(("cell", o), ("fac", d))  # no capacity attribute: unbounded
    value, _ = nx.maximum_flow(G, "source", "sink")
    return float(value)


# --------------------------------------------------------------------------------------------------------------------
# (a) by hand: 3 cells, 2 institutions
# --------------------------------------------------------------------------------------------------------------------
# x reaches a (2 min) and b (1 min), capacity 150; y reaches only b (5 min), capacity 100; nothing reaches c.
# Optimum: x takes all of a (100) and 50 of b, y the other 50 of b -> 200 served (x's 50 from b is cheaper than
# y's: the tie-break fills x with b up to its room after a). Ordered (x first: larger capacity): x grows from b
# (1 min, takes 100) to a (2 min, takes 50) and is full; y finds b empty -> 150 served.

HAND_OD = pd.DataFrame({"origin_id": ["a", "b", "b"], "destination_id": ["x", "x", "y"],
                        "travel_time_s": [120.0, 60.0, 300.0]})
HAND_DEMAND = pd.Series({"a": 100.0, "b": 100.0, "c": 100.0})
HAND_CAPACITY = pd.Series({"x": 150.0, "y": 100.0})


def test_hand_case_optimal():
    a = allocate(HAND_OD, HAND_DEMAND, HAND_CAPACITY, max_minutes=15)
    assert a.method == "optimal" and a.status == "optimal"
    assert a.cells["served"].round(6).tolist() == [100.0, 100.0, 0.0]
    assert a.cells["unserved_out_of_reach"].tolist() == [0.0, 0.0, 100.0]
    assert a.cells["unserved_over_capacity"].round(6).tolist() == [0.0, 0.0, 0.0]
    assert a.facilities["served"].round(6).tolist() == [150.0, 50.0]
    assert a.facilities["demand_within_t"].tolist() == [200.0, 100.0]
    assert a.facilities["utilisation_pct"].round(6).tolist() == [100.0, 50.0]
    flows = {(o, d): round(f, 6) for o, d, f in a.flows[["origin_id", "destination_id", "flow"]].itertuples(index=False)}
    assert flows == {("a", "x"): 100.0, ("b", "x"): 50.0, ("b", "y"): 50.0}
    assert a.person_seconds == pytest.approx(100 * 120 + 50 * 60 + 50 * 300)
    _check_books(a, HAND_CAPACITY)
    assert a.population_served == pytest.approx(_max_flow(HAND_OD, HAND_DEMAND, HAND_CAPACITY, 15), rel=TOL)


def test_hand_case_ordered_serves_less_than_the_optimum():
    a = allocate(HAND_OD, HAND_DEMAND, HAND_CAPACITY, max_minutes=15, method="ordered")
    assert a.cells["served"].tolist() == [50.0, 100.0, 0.0]
    assert a.cells["unserved_over_capacity"].tolist() == [50.0, 0.0, 0.0]
    assert a.cells["unserved_out_of_reach"].tolist() == [0.0, 0.0, 100.0]
    assert a.facilities["served"].tolist() == [150.0, 0.0]
    assert a.facilities["processing_order"].tolist() == [1, 2]
    assert a.population_served == 150.0 < allocate(HAND_OD, HAND_DEMAND, HAND_CAPACITY, max_minutes=15).population_served
    _check_books(a, HAND_CAPACITY)
    # y first: y takes b, x takes a -> the optimum's 200
    b = allocate(HAND_OD, HAND_DEMAND, HAND_CAPACITY, max_minutes=15, method="ordered", order=["y", "x"])
    assert b.cells["served"].tolist() == [100.0, 100.0, 0.0] and b.facilities["served"].tolist() == [100.0, 100.0]
    assert b.facilities["processing_order"].tolist() == [2, 1]


def test_threshold_and_tie_break():
    # at 1.5 min only b -> x is within T: a becomes out of reach
    a = allocate(HAND_OD, HAND_DEMAND, HAND_CAPACITY, max_minutes=1.5)
    assert a.cells["unserved_out_of_reach"].tolist() == [100.0, 0.0, 100.0]
    assert a.cells["served"].round(6).tolist() == [0.0, 100.0, 0.0]
    # one cell, two institutions with room: the nearer one serves it (and duplicate pairs count their fastest time)
    od = pd.DataFrame({"origin_id": [1, 1, 1], "destination_id": ["far", "near", "near"],
                       "travel_time_s": [100.0, 700.0, 50.0]})
    near = allocate(od, pd.Series({1: 10.0}), pd.Series({"far": 1000.0, "near": 1000.0}), max_minutes=15)
    assert near.facilities["served"].round(6).to_dict() == {"far": 0.0, "near": 10.0}
    assert near.flows["travel_time_s"].tolist() == [50.0]


def test_summary_by_tier_and_district():
    a = allocate(HAND_OD, HAND_DEMAND, HAND_CAPACITY, max_minutes=15)
    s = capacity_summary(a, cell_groups={"district": pd.Series({"a": "east", "b": "east", "c": "west"})},
                         facility_groups={"tier": pd.Series({"x": "primary", "y": "secondary"})})
    assert s["population_total"] == 300.0 and s["unserved_out_of_reach"] == 100.0
    assert s["population_served"] == pytest.approx(200.0) and s["population_unserved"] == pytest.approx(100.0)
    assert s["capacity_total"] == 250.0
    east, west = s["by_district"]
    assert east["district"] == "east" and east["population_served"] == pytest.approx(200.0)
    assert west == {"district": "west", "population_total": 100.0, "population_served": 0.0,
                    "population_unserved": 100.0, "unserved_out_of_reach": 100.0, "unserved_over_capacity": 0.0,
                    "served_pct": 0.0}
    primary, secondary = s["by_tier"]
    assert primary["population_served"] == pytest.approx(150.0) and primary["demand_within_t"] == 200.0
    assert secondary["population_served"] == pytest.approx(50.0) and secondary["utilisation_pct"] == pytest.approx(50.0)
    g = capacity_summary(allocate(HAND_OD, HAND_DEMAND, HAND_CAPACITY, max_minutes=15, method="ordered"),
                         facility_groups={"tier": pd.Series({"x": "primary"})})
    assert [r["tier"] for r in g["by_tier"]] == ["(none)", "primary"] and g["by_tier"][0]["population_served"] == 0.0


# --------------------------------------------------------------------------------------------------------------------
# (b) against an independent max-flow: random cases, and the Optics Valley OSM case
# --------------------------------------------------------------------------------------------------------------------


def _random_case(seed: int) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    n_cells, n_fac = int(rng.integers(3, 40)), int(rng.integers(1, 7))
    cells = [f"c{i}" for i in range(n_cells)]
    facs = [f"f{j}" for j in range(n_fac)]
    pairs = [(c, f) for c in cells for f in facs if rng.random() < 0.4]
    od = pd.DataFrame(pairs, columns=["origin_id", "destination_id"])
    od["travel_time_s"] = rng.integers(0, 1500, len(od)).astype(float)  # some beyond 15 min
    demand = pd.Series(rng.integers(0, 500, n_cells).astype(float), index=cells)
    capacity = pd.Series(rng.integers(0, 2000, n_fac).astype(float), index=facs)
    return od, demand, capacity


@pytest.mark.parametrize("seed", range(40))
def test_optimal_equals_max_flow_and_least_travel_on_random_cases(seed):
    od, demand, capacity = _random_case(seed)
    a = allocate(od, demand, capacity, max_minutes=15)
    expected = _max_flow(od, demand, capacity, 15)
    assert a.population_served == pytest.approx(expected, rel=TOL, abs=TOL)
    _check_books(a, capacity)
    # the tie-break: networkx's min-cost max-flow (integer data) gives the least person-seconds at the maximum
    G = nx.DiGraph()
    for cell, pop in demand.items():
        G.add_edge("s", ("c", cell), capacity=int(pop), weight=0)
    for fac, cap in capacity.items():
        G.add_edge(("f", fac), "t", capacity=int(cap), weight=0)
    within = od[od["travel_time_s"] <= 900]
    for o, d, t in within.itertuples(index=False):
        G.add_edge(("c", o), ("f", d), weight=int(t))
    cost = nx.cost_of_flow(G, nx.max_flow_min_cost(G, "s", "t"))
    assert a.person_seconds == pytest.approx(cost, rel=1e-6, abs=1e-3)
    # the ordered allocation is feasible, balanced and never serves more than the optimum
    g = allocate(od, demand, capacity, max_minutes=15, method="ordered")
    _check_books(g, capacity)
    assert g.population_served <= a.population_served + TOL * max(expected, 1.0)


@pytest.fixture(scope="module")
def guanggu_case():
    case = Case(network=datasets.get_path("guanggu_osm"), institutions=DATA / "guanggu_institutions.csv",
                population=datasets.get_path("wuhan_population")).load()
    snap_c = snap_points(case.net, case.cells, max_snap_m=case.max_snap_m)
    snap_f = snap_points(case.net, case.institutions, max_snap_m=case.max_snap_m)
    return case, snap_c, snap_f, od_travel_times(case.net, snap_c, snap_f, max_minutes=15)


def test_optimal_equals_max_flow_on_optics_valley(guanggu_case):
    case, _, _, od = guanggu_case
    inst = case.institutions
    # a made-up capacity column for this test (persons): 300 to 1,500 by position, small enough to bind
    inst = inst.assign(persons=[300 * (k % 5 + 1) for k in range(len(inst))])
    capacity = capacity_from_column(inst, "persons")
    demand = case.cells["population"]
    a = allocate(od, demand, capacity, max_minutes=15)
    expected = _max_flow(od, demand, capacity, 15)
    assert expected > 0 and a.population_served == pytest.approx(expected, rel=TOL)
    assert a.cells["unserved_over_capacity"].sum() > 1000  # the capacities bind
    _check_books(a, capacity)
    g = allocate(od, demand, capacity, max_minutes=15, method="ordered")
    _check_books(g, capacity)
    assert g.population_served <= a.population_served * (1 + TOL)


# --------------------------------------------------------------------------------------------------------------------
# (c) the books balance on the Wuhan walk case
# --------------------------------------------------------------------------------------------------------------------

# per-tier capacities in persons: a test setting chosen so that capacities bind at 15 minutes' walk, not a norm
WUHAN_TIER_PERSONS = {"tertiary": 20_000.0, "secondary": 10_000.0, "primary": 5_000.0, "station": 2_000.0}


@pytest.fixture(scope="module")
def wuhan_walk():
    return Case(network=datasets.get_path("wuhan_roads"), institutions=datasets.get_path("wuhan_institutions"),
                population=datasets.get_path("wuhan_population"), boundaries=datasets.get_path("wuhan_districts"),
                mode="walk").load()


@pytest.mark.parametrize("method", ["optimal", "ordered"])
def test_books_balance_on_wuhan_walk(wuhan_walk, method):
    case = wuhan_walk
    capacity = capacity_from_column(case.institutions, None, tier_defaults=WUHAN_TIER_PERSONS)
    a = allocate_cells(case.net, case.cells, institutions=case.institutions, capacity=capacity, max_minutes=15,
                       method=method, max_snap_m=case.max_snap_m)
    _check_books(a, capacity)
    # out of reach is exactly coverage's gap at 15 minutes (same snapping and access legs)
    cov = coverage_by_cell(case.net, case.cells, case.institutions, max_snap_m=case.max_snap_m)
    gap = cov.loc[~(cov["travel_time_min"] <= 15), "population"].sum()
    assert a.cells["unserved_out_of_reach"].sum() == pytest.approx(gap, rel=1e-9)
    assert a.cells["unserved_over_capacity"].sum() > 10_000  # the capacities bind
    s = capacity_summary(a, cell_groups={"district": case.cells["district"]},
                         facility_groups={"tier": case.institutions["tier"]})
    assert s["population_served"] + s["population_unserved"] == pytest.approx(s["population_total"], rel=1e-12)
    for key in ("population_total", "population_served", "unserved_out_of_reach", "unserved_over_capacity"):
        assert sum(r[key] for r in s["by_district"]) == pytest.approx(s[key], rel=1e-9)
    assert sum(r["population_served"] for r in s["by_tier"]) == pytest.approx(s["population_served"], rel=1e-9)
    for r in s["by_district"]:
        assert r["population_served"] + r["population_unserved"] == pytest.approx(r["population_total"], rel=1e-9)


def test_ordered_serves_no_more_than_optimal_on_wuhan_walk(wuhan_walk):
    case = wuhan_walk
    capacity = capacity_from_column(case.institutions, None, tier_defaults=WUHAN_TIER_PERSONS)
    snap_c = snap_points(case.net, case.cells, max_snap_m=case.max_snap_m)
    snap_f = snap_points(case.net, case.institutions, max_snap_m=case.max_snap_m)
    od = od_travel_times(case.net, snap_c, snap_f, max_minutes=15)
    best = allocate(od, case.cells["population"], capacity, max_minutes=15)
    greedy = allocate(od, case.cells["population"], capacity, max_minutes=15, method="ordered")
    assert best.population_served == pytest.approx(_max_flow(od, case.cells["population"], capacity, 15), rel=TOL)
    assert greedy.population_served < best.population_served


# --------------------------------------------------------------------------------------------------------------------
# (d) bad capacities name the row
# --------------------------------------------------------------------------------------------------------------------


def _inst(beds: list[object], tiers: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"name": ["关山社区卫生服务中心", "协和医院", "光谷医院"],
                         "tier": tiers or ["primary", "tertiary", "secondary"], "beds": beds},
                        index=pd.Index(["h1", "h2", "h3"], name="facility_id"))


@pytest.mark.parametrize(("beds", "match"), [
    ([10, None, 30], r"row 2 \(facility_id 'h2', name '协和医院'\), column 'beds' \(capacity\): the value is empty"),
    ([10, 20, "many"], r"row 3 \(facility_id 'h3', name '光谷医院'\), column 'beds' \(capacity\): 'many' is missing or not"),
    ([-5, 20, 30], r"row 1 \(facility_id 'h1', name '关山社区卫生服务中心'\), column 'beds' \(capacity\): '-5' is negative"),
    ([10, float("inf"), 30], r"row 2 \(facility_id 'h2'.*'inf' is not finite"),
    ([10, "  ", 30], r"row 2 \(facility_id 'h2'.*the value is empty"),
])
def test_bad_capacities_name_the_row(beds, match):
    with pytest.raises(InvalidValueError, match=match):
        capacity_from_column(_inst(beds), "beds", persons_per_unit=100, file="inst.csv")
    with pytest.raises(InvalidValueError, match=r"^inst\.csv: row"):
        capacity_from_column(_inst(beds), "beds", file="inst.csv")


def test_capacity_units_and_tier_defaults():
    inst = _inst([10, None, "30"])
    assert capacity_from_column(inst.assign(beds=[10, 20, 30]), "beds").tolist() == [10.0, 20.0, 30.0]
    got = capacity_from_column(inst, "beds", persons_per_unit=250, tier_defaults={"tertiary": 90_000})
    assert got.tolist() == [2500.0, 90_000.0, 7500.0] and got.name == "capacity" and got.index.equals(inst.index)
    assert capacity_from_column(inst, None, tier_defaults={"primary": 1, "tertiary": 2, "secondary": 3}).tolist() == [1, 2, 3]
    with pytest.raises(InvalidValueError, match=r"row 3 \(facility_id 'h3'.*its tier has no default"):
        capacity_from_column(inst, None, tier_defaults={"primary": 1, "tertiary": 2})
    with pytest.raises(InvalidValueError, match="'primry' is not a tier"):
        capacity_from_column(inst, "beds", tier_defaults={"primry": 1})
    with pytest.raises(InvalidValueError, match="persons_per_unit 0 is not a positive number"):
        capacity_from_column(inst, "beds", persons_per_unit=0)
    with pytest.raises(InvalidValueError, match="no capacity column and no per-tier capacities"):
        capacity_from_column(inst, None)
    with pytest.raises(MissingColumnError, match=r"inst\.csv: column 'doctors' \(capacity\) not found"):
        capacity_from_column(inst, "doctors", file="inst.csv")


def test_bad_allocation_inputs():
    with pytest.raises(InvalidValueError, match="capacity: facility 'y' has '-1.0', not a finite number >= 0"):
        allocate(HAND_OD, HAND_DEMAND, pd.Series({"x": 150.0, "y": -1.0}), max_minutes=15)
    with pytest.raises(InvalidValueError, match="demand: cell 'b' has 'nan'"):
        allocate(HAND_OD, pd.Series({"a": 1.0, "b": np.nan, "c": 1.0}), HAND_CAPACITY, max_minutes=15)
    with pytest.raises(InvalidValueError, match=r"facility \(e.g. 'y'\) is not in the capacity index"):
        allocate(HAND_OD, HAND_DEMAND, pd.Series({"x": 150.0}), max_minutes=15)
    with pytest.raises(InvalidValueError, match="order: facility 'y' missing"):
        allocate(HAND_OD, HAND_DEMAND, HAND_CAPACITY, max_minutes=15, method="ordered", order=["x"])
    with pytest.raises(InvalidValueError, match="order: unknown facility 'z'"):
        allocate(HAND_OD, HAND_DEMAND, HAND_CAPACITY, max_minutes=15, method="ordered", order=["x", "y", "z"])
    with pytest.raises(InvalidValueError, match="method 'greedy' is not one of"):
        allocate(HAND_OD, HAND_DEMAND, HAND_CAPACITY, max_minutes=15, method="greedy")  # type: ignore[arg-type]
