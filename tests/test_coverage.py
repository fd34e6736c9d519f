"""Coverage on a hand-computable toy network, asserted exactly, and invariants on real data."""

from __future__ import annotations

import numpy as np
import pytest

from planner import coverage, network, travel_time

from .conftest import toy_cells, toy_points

# Walking at 1 m/s on the T-shaped toy network (see conftest.toy_roads):
#   cell (x, y)      pop  nearest  time to F1 (primary)     time to F2 (tertiary)
#   c0 (300, 50)     100  F1       50+200+20   = 270 s      50+200+480+30   = 760 s
#   c1 (530, 400)    200  F1       30+400+400+20 = 850 s    30+400+480+30   = 940 s
#   c2 (700, 600)    300  F1       200+600+400+20 = 1220 s  200+600+480+30  = 1310 s
#   c3 (2000, 2000)   50  -        unsnapped (> 500 m from any road)
#   c4 (900, 100)    400  F2       100+400+400+20 = 920 s   100+80+30       = 210 s
CELLS = [(300, 50), (530, 400), (700, 600), (2000, 2000), (900, 100)]
POP = [100, 200, 300, 50, 400]


@pytest.fixture
def toy_run(toy_roads, one_mps):
    G = network.load_network(toy_roads, mode="walk")
    net = travel_time.compile_network(G)
    inst = toy_points([(100, 20), (980, -30)], ["F1", "F2"], name=["一号社区卫生服务中心", "二号医院"],
                      tier=["primary", "tertiary"], tier_source=["column", "column"])
    cells = toy_cells(CELLS, POP)
    snapped = travel_time.snap_points(net, inst)
    cov = coverage.coverage_by_cell(net, cells, inst, institutions_snapped=snapped)
    return net, inst, snapped, cov


def test_toy_cells_exact(toy_run):
    _, _, _, cov = toy_run
    assert cov.index.tolist() == [0, 1, 2, 3, 4]  # input index kept
    assert cov["status"].tolist() == ["reached", "reached", "reached", "unsnapped", "reached"]
    assert cov["facility_id"].tolist() == ["F1", "F1", "F1", None, "F2"]
    assert cov["facility_tier"].tolist()[:3] == ["primary"] * 3
    np.testing.assert_allclose(cov["travel_time_min"], [4.5, 850 / 60, 1220 / 60, np.nan, 3.5], atol=1e-3)
    np.testing.assert_allclose(cov["time_primary_min"], [4.5, 850 / 60, 1220 / 60, np.nan, 920 / 60], atol=1e-3)
    np.testing.assert_allclose(cov["time_tertiary_min"], [760 / 60, 940 / 60, 1310 / 60, np.nan, 3.5], atol=1e-3)


def test_toy_summary_exact(toy_run):
    _, inst, snapped, cov = toy_run
    s = coverage.coverage_summary(cov, inst, snapped, minutes=(5, 10, 15))
    assert s["population_total"] == 1050
    assert [t["population_covered"] for t in s["thresholds"]] == [500, 500, 700]
    assert s["population_covered"] == 700
    assert s["coverage_pct"] == round(100 * 700 / 1050, 2)
    assert s["by_tier"]["primary"]["population_covered"] == 300  # c0, c1
    assert s["by_tier"]["tertiary"]["population_covered"] == 500  # c0 (12.7 min), c4
    assert s["by_tier"]["primary"]["population_nearest_covered"] == 300
    assert s["by_tier"]["tertiary"]["population_nearest_covered"] == 400
    assert s["cells"] == {"total": 5, "reached": 4, "unreachable": 1, "unsnapped": 1, "no_route": 0,
                          "population_unreachable": 50, "gap_cells": 2, "gap_population": 350}
    assert s["institutions"]["snapped"] == 2 and s["institutions"]["unsnapped"] == 0


def test_toy_coverage_grows_with_threshold(toy_run):
    _, inst, snapped, cov = toy_run
    s = coverage.coverage_summary(cov, inst, snapped, minutes=(1, 3.5, 4.5, 14, 15, 20.4, 30))
    covered = [t["population_covered"] for t in s["thresholds"]]
    assert covered == [0, 400, 500, 500, 700, 1000, 1000]


def test_toy_unsnapped_institution_reported(toy_run, one_mps):
    net, inst, _, _ = toy_run
    far = toy_points([(100, 20), (3000, 3000)], ["F1", "FAR"], name=["近", "远"], tier=["primary", "primary"],
                     tier_source=["column", "column"])
    snapped = travel_time.snap_points(net, far)
    cov = coverage.coverage_by_cell(net, toy_cells(CELLS, POP), far, institutions_snapped=snapped)
    s = coverage.coverage_summary(cov, far, snapped)
    assert s["institutions"]["unsnapped"] == 1
    (row,) = s["institutions"]["unsnapped_list"]
    assert row["facility_id"] == "FAR" and row["name"] == "远"
    assert row["nearest_road_m"] == pytest.approx(np.hypot(2500, 2400), abs=0.5)


def test_toy_district_figures(toy_run):
    _, inst, snapped, cov = toy_run
    cov = cov.assign(district=["甲区", "甲区", "乙区", "乙区", "乙区"])
    s = coverage.coverage_summary(cov, inst, snapped, minutes=(15,))
    by = {d["district"]: d for d in s["by_district"]}
    assert by["甲区"]["population"] == 300 and by["甲区"]["population_covered"] == 300
    assert by["乙区"]["population"] == 750 and by["乙区"]["population_covered"] == 400
    assert by["乙区"]["coverage_pct"] == round(100 * 400 / 750, 2)
    # mean over reached cells, population-weighted: (300*1220/60 + 400*3.5) / 700
    assert by["乙区"]["mean_travel_time_min"] == round((300 * 1220 / 60 + 400 * 3.5) / 700, 2)
