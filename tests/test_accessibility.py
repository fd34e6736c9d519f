"""E2SFCA: hand-computed values, and equality with PySAL `access` on a hand instance and on real data."""

from __future__ import annotations

from pathlib import Path

import access  # PySAL access, a test dependency (pyproject [test])
import numpy as np
import pandas as pd
import pytest

from planner import InvalidValueError, MissingColumnError, datasets
from planner.accessibility import decay_weights, e2sfca
from planner.coverage import compute_study_area
from planner.demand import load_population
from planner.institutions import load_institutions
from planner.travel_time import od_travel_times, snap_points

DATA = Path(__file__).parent / "data"

# Three cells, two clinics with 10 beds each; times in minutes:
#            a    b
#   cell 0   5   10      1,000 persons
#   cell 1   -    5      4,000 persons
#   cell 2  20   25        500 persons


@pytest.fixture
def hand():
    od = pd.DataFrame({"origin_id": [0, 0, 1, 2, 2], "destination_id": ["a", "b", "b", "a", "b"],
                       "travel_time_s": [300.0, 600.0, 300.0, 1200.0, 1500.0]})
    demand = pd.DataFrame({"population": [1000.0, 4000.0, 500.0]}, index=pd.Index([0, 1, 2], name="cell_id"))
    supply = pd.DataFrame({"capacity": [10.0, 10.0]}, index=pd.Index(["a", "b"], name="facility_id"))
    return od, demand, supply


def _pysal(od: pd.DataFrame, demand: pd.DataFrame, supply: pd.DataFrame, *, max_minutes: float, weight_fn) -> pd.Series:
    """PySAL access' E2SFCA on the same inputs, as capacity per 1,000 residents (0 where it gives NaN)."""
    cost = od.assign(minutes=od["travel_time_s"] / 60.0)
    a = access.Access(demand_df=demand, demand_index=True, demand_value="population", supply_df=supply, supply_index=True,
                      supply_value="capacity", cost_df=cost, cost_origin="origin_id", cost_dest="destination_id",
                      cost_name="minutes")
    out = a.enhanced_two_stage_fca(name="e2sfca", max_cost=max_minutes, weight_fn=weight_fn)["e2sfca_capacity"]
    return (out.reindex(demand.index) * 1000).fillna(0.0)


def test_hand_values(hand):
    od, demand, supply = hand
    # 15 min, no decay: a serves cell 0 (1,000), b cells 0 and 1 (5,000); cell 2 reaches nothing
    acc = e2sfca(od, demand, supply, max_minutes=15, decay="none")
    assert acc.index.equals(demand.index) and acc.name == "accessibility_per_1000"
    assert acc.tolist() == pytest.approx([10 / 1000 * 1000 + 10 / 5000 * 1000, 10 / 5000 * 1000, 0.0])
    # 30 min, Luo & Qi steps (1 to 10 min, 0.68 to 20, 0.22 to 30)
    d_a = 1000 * 1 + 500 * 0.68
    d_b = 1000 * 1 + 4000 * 1 + 500 * 0.22
    acc = e2sfca(od, demand, supply, max_minutes=30, decay="step")
    expected = [10 / d_a + 10 / d_b, 10 / d_b, 0.68 * 10 / d_a + 0.22 * 10 / d_b]
    assert acc.tolist() == pytest.approx([1000 * e for e in expected], rel=1e-12)


@pytest.mark.parametrize(("decay", "weight_fn"), [
    ("gaussian", access.weights.gaussian(15)),
    ("step", access.weights.step_fn({10: 1, 20: 0.68, 30: 0.22})),
    ("none", access.weights.step_fn({30: 1})),
    ({12: 1.0, 24: 0.5, 30: 0.1}, access.weights.step_fn({12: 1.0, 24: 0.5, 30: 0.1})),
])
def test_equals_pysal_access_on_hand_instance(hand, decay, weight_fn):
    od, demand, supply = hand
    ours = e2sfca(od, demand, supply, max_minutes=30, decay=decay)
    np.testing.assert_allclose(ours.to_numpy(), _pysal(od, demand, supply, max_minutes=30, weight_fn=weight_fn).to_numpy(),
                               rtol=1e-12, atol=0)


def test_equals_pysal_access_on_real_data(guanggu_walk):
    """Optics Valley walk network, WorldPop cells, four institutions with hand-made bed counts."""
    _, net = guanggu_walk
    inst = load_institutions(DATA / "guanggu_institutions.csv")
    beds = {"tertiary": 1500.0, "secondary": 300.0, "primary": 40.0, "station": 5.0}
    inst["capacity"] = inst["tier"].map(beds)
    cells = load_population(datasets.get_path("wuhan_population"), study_area=compute_study_area(net))
    assert len(cells) > 200
    od = od_travel_times(net, snap_points(net, cells), snap_points(net, inst), max_minutes=30)
    for decay, fn, sigma in [("gaussian", access.weights.gaussian(10), 10.0), ("step", access.weights.step_fn(
            {10: 1, 20: 0.68, 30: 0.22}), None)]:
        ours = e2sfca(od, cells, inst, max_minutes=30, decay=decay, sigma_minutes=sigma)
        theirs = _pysal(od, cells, inst, max_minutes=30, weight_fn=fn)
        assert (ours > 0).sum() > 100
        np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-10, atol=0)


def test_decay_weights():
    t = np.array([0.0, 10.0, 10.0001, 20.0, 30.0, 30.0001])
    assert decay_weights(t, max_minutes=30, decay="step").tolist() == [1.0, 1.0, 0.68, 0.68, 0.22, 0.0]
    assert decay_weights(t, max_minutes=30, decay="none").tolist() == [1.0] * 5 + [0.0]
    g = decay_weights(t, max_minutes=30, decay="gaussian", sigma_minutes=10)
    assert g[3] == pytest.approx(np.exp(-2)) and g[-1] == 0.0
    assert decay_weights(t, max_minutes=30, decay=lambda m: 1 / (1 + m)).tolist()[:2] == [1.0, 1 / 11]


def test_bad_inputs(hand):
    od, demand, supply = hand
    with pytest.raises(InvalidValueError, match=r"institution 'b' has capacity nan .*fix: give beds"):
        e2sfca(od, demand, supply.assign(capacity=[10.0, np.nan]))
    with pytest.raises(MissingColumnError, match="supply has no 'beds' column"):
        e2sfca(od, demand, supply, capacity_column="beds")
    with pytest.raises(InvalidValueError, match="decay='linear' is not known"):
        e2sfca(od, demand, supply, decay="linear")
    with pytest.raises(InvalidValueError, match="max_minutes=0 must be > 0"):
        e2sfca(od, demand, supply, max_minutes=0)
