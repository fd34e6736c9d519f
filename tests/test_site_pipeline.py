"""`planner site` end to end on Optics Valley: candidates, filters, outputs, and bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from planner import datasets, travel_time
from planner._errors import InfeasibleModelError, InvalidValueError
from planner.cli import app
from planner.pipeline import run_siting, write_siting_outputs

from .test_cli import INSTITUTIONS, NETWORK, POPULATION


@pytest.fixture(scope="module")
def siting_run():
    return run_siting(NETWORK, INSTITUTIONS, POPULATION, n_sites=3, max_minutes=10, cell_size_m=300,
                      boundaries=datasets.get_path("wuhan_districts"), candidate_spacing_m=400)


def test_siting_figures_are_consistent(siting_run):
    r, s = siting_run, siting_run.summary
    assert s["solver_status"] == "optimal" and s["mip_gap"] <= 1e-6 and s["new_sites"] == 3
    cells = r.cells
    assert s["population_covered_before"] == pytest.approx(cells.loc[cells["covered_before"], "population"].sum(), abs=0.5)
    assert s["population_covered_after"] == pytest.approx(cells.loc[cells["covered_after"], "population"].sum(), abs=0.5)
    assert s["coverage_pct_after"] > s["coverage_pct_before"]
    added = [row["added_population"] for row in s["sites"]]
    assert added == sorted(added, reverse=True) and sum(added) == pytest.approx(
        s["population_covered_after"] - s["population_covered_before"], abs=1.0)
    curve = [row["covered_population"] for row in s["marginal_curve"]]
    assert curve == sorted(curve) and curve[-1] == pytest.approx(s["population_covered_after"], abs=0.5)
    # independent check with the coverage engine: nearest open site (existing + proposed) within 10 minutes
    net = r.net
    open_sites = pd.concat([r.existing[["geometry"]], r.sites[["geometry"]]])
    near = travel_time.nearest_facility_times(net, travel_time.snap_points(net, cells), travel_time.snap_points(net, open_sites))
    assert cells.loc[near["travel_time_s"] <= 600, "population"].sum() == pytest.approx(s["population_covered_after"], abs=0.5)


def test_siting_outputs(siting_run, tmp_path):
    out = write_siting_outputs(siting_run, tmp_path / "site", offline=True)
    table = pd.read_csv(out / "sites.csv", encoding="utf-8-sig")
    assert table.columns.tolist()[:7] == ["facility_id", "rank", "name", "lon", "lat", "added_population", "cumulative_pct"]
    assert table["rank"].tolist() == [1, 2, 3]
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert {"coverage_pct_before", "coverage_pct_after", "model", "solver_status", "mip_gap", "solve_s"} <= set(s)
    html = (out / "map.html").read_text(encoding="utf-8")
    assert "proposed: " in html and "newly covered" in html and "planner-institution" in html
    assert (out / "marginal_curve.csv").exists()


def test_upgrade_existing_primary_institutions():
    r = run_siting(NETWORK, INSTITUTIONS, POPULATION, candidates="institutions:primary", service_tiers=("secondary", "tertiary"),
                   n_sites=1, max_minutes=10, mode="drive", cell_size_m=300)
    assert r.summary["sites"][0]["facility_id"] == "1"  # the only primary institution
    assert r.summary["counts"]["existing_sites"] == 2


def test_target_share_and_bad_inputs(siting_run):
    best = siting_run.summary["coverage_pct_before"]
    r = run_siting(NETWORK, INSTITUTIONS, POPULATION, target_pct=best + 1, max_minutes=10, cell_size_m=300,
                   candidate_spacing_m=400, marginal=False)
    assert r.summary["model"] == "LSCP" and r.summary["coverage_pct_after"] >= best + 1
    with pytest.raises(InfeasibleModelError, match=r"target 99% is not achievable: at most .*% .*fix: lower"):
        run_siting(NETWORK, INSTITUTIONS, POPULATION, target_pct=99, max_minutes=10, cell_size_m=300, candidate_spacing_m=400)
    with pytest.raises(InvalidValueError, match=r"--new-sites 500 is more than the \d+ candidate sites"):
        run_siting(NETWORK, INSTITUTIONS, POPULATION, n_sites=500, max_minutes=10, cell_size_m=300, candidate_spacing_m=1000)
    with pytest.raises(InvalidValueError, match=r"no candidate site is left after the filters"):
        run_siting(NETWORK, INSTITUTIONS, POPULATION, n_sites=1, min_spacing_m=50_000, cell_size_m=300)
    with pytest.raises(InvalidValueError, match=r"exactly one of --new-sites K or --target-pct P"):
        run_siting(NETWORK, INSTITUTIONS, POPULATION, n_sites=1, target_pct=50)
    with pytest.raises(InvalidValueError, match=r"unknown district\(s\) 火星区"):
        run_siting(NETWORK, INSTITUTIONS, POPULATION, n_sites=1, boundaries=datasets.get_path("wuhan_districts"),
                   candidate_districts=("火星区",), cell_size_m=300)


def test_capacities(tmp_path):
    inst = pd.read_csv(INSTITUTIONS)
    inst["beds"] = [30_000, 20_000, 40_000, 60_000]
    inst.to_csv(tmp_path / "inst.csv", index=False)
    r = run_siting(NETWORK, tmp_path / "inst.csv", POPULATION, n_sites=2, max_minutes=10, cell_size_m=300,
                   candidate_spacing_m=600, capacity_column="beds", new_site_capacity=5_000, marginal=False)
    assert r.summary["model"] == "CapacitatedMCLP"
    assert all(row["added_population"] <= 5_000 + 1e-6 for row in r.summary["sites"])
    with pytest.raises(InvalidValueError, match=r"have no capacity .*--new-site-capacity"):
        run_siting(NETWORK, tmp_path / "inst.csv", POPULATION, n_sites=2, max_minutes=10, cell_size_m=300,
                   candidate_spacing_m=600, capacity_column="beds")
    inst["beds"] = [-1, 20, 40, 60]
    inst.to_csv(tmp_path / "neg.csv", index=False)
    with pytest.raises(InvalidValueError, match=r"row 1, column 'beds' \(capacity\): -1.0 is negative"):
        run_siting(NETWORK, tmp_path / "neg.csv", POPULATION, n_sites=2, capacity_column="beds")


def test_cli_site(tmp_path):
    out = tmp_path / "site"
    res = CliRunner().invoke(app, ["site", "--network", str(NETWORK), "--institutions", str(INSTITUTIONS), "--population",
                                   str(POPULATION), "--new-sites", "2", "--minutes", "10", "--cell-size", "300", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert "#1 " in res.output and (out / "sites.csv").exists()
    res = CliRunner().invoke(app, ["site", "--network", str(NETWORK), "--institutions", str(INSTITUTIONS), "--population",
                                   str(POPULATION), "--target-pct", "99.5", "--minutes", "10", "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "is not achievable" in res.output
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == ["error.log"]
