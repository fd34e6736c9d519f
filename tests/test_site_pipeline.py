"""`planner site` end to end on Optics Valley: candidates, filters, outputs, and bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from planner import InfeasibleModelError, InvalidValueError, datasets, travel_time
from planner.cli import app
from planner.exports import write_siting_outputs
from planner.pipeline import run_siting
from planner.tables import read_report_csv

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
    out = tmp_path / "site"
    write_siting_outputs(siting_run, out, offline=True)
    table = read_report_csv(out / "sites.csv")
    assert table.columns.tolist()[:7] == ["facility_id", "rank", "name", "lon", "lat", "added_population", "cumulative_pct"]
    assert table["rank"].tolist() == [1, 2, 3]
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert {"coverage_pct_before", "coverage_pct_after", "model", "solver_status", "mip_gap", "solve_s"} <= set(s)
    html = (out / "map.html").read_text(encoding="utf-8")
    assert "Proposed sites" in html and "planner-proposed-site" in html
    assert "newly covered" in html and "planner-institution" in html
    assert (out / "marginal_curve.csv").exists()


def test_upgrade_existing_primary_institutions(tmp_path):
    kw = dict(candidates="institutions:primary", service_tiers=("secondary", "tertiary"), n_sites=1, max_minutes=10,
              mode="drive", cell_size_m=300)
    r = run_siting(NETWORK, INSTITUTIONS, POPULATION, **kw)
    assert r.summary["counts"]["existing_sites"] == 2
    # the only primary institution is within 10 minutes' drive of no one the two hospitals do not already reach
    assert r.summary["sites"] == [] and r.summary["new_sites"] == 0 and r.summary["marginal_curve"] == []
    assert r.summary["zero_gain_reason"] == "no candidate reaches anyone still uncovered within 10 min"
    assert r.summary["coverage_pct_after"] == r.summary["coverage_pct_before"]
    out = tmp_path / "none"
    write_siting_outputs(r, out)
    assert read_report_csv(out / "sites.csv").empty
    k = run_siting(NETWORK, INSTITUTIONS, POPULATION, require_k=True, **kw)
    assert [(row["facility_id"], row["added_population"], row["adds_population"]) for row in k.summary["sites"]] == [
        ("1", 0.0, False)]


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
                                   str(POPULATION), "--new-sites", "2", "--minutes", "10", "--cell-size", "300",
                                   "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert "#1 " in res.output and (out / "sites.csv").exists()
    res = CliRunner().invoke(app, ["site", "--network", str(NETWORK), "--institutions", str(INSTITUTIONS), "--population",
                                   str(POPULATION), "--target-pct", "99.5", "--minutes", "10", "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "is not achievable" in res.output
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == ["error.log"]


# Optics Valley by car within 10 minutes, candidates every 400 m: 6 new sites already reach everyone any of the 49
# candidates reaches, so the 7th and 8th of K = 8 would add nobody.
ZERO_GAIN = dict(n_sites=8, max_minutes=10, cell_size_m=300, candidate_spacing_m=400, mode="drive")


@pytest.fixture(scope="module")
def zero_gain_runs():
    return (run_siting(NETWORK, INSTITUTIONS, POPULATION, **ZERO_GAIN),
            run_siting(NETWORK, INSTITUTIONS, POPULATION, require_k=True, **ZERO_GAIN))


def _covered(run, sites) -> float:
    """Count the population within 10 minutes of the nearest of `sites` with the coverage engine (not the model)."""
    snap_c = travel_time.snap_points(run.net, run.cells)
    near = travel_time.nearest_facility_times(run.net, snap_c, travel_time.snap_points(run.net, sites))
    return float(run.cells.loc[near["travel_time_s"] <= 600, "population"].sum())


def test_siting_stops_at_the_last_site_that_adds_population(zero_gain_runs):
    r, s = zero_gain_runs[0], zero_gain_runs[0].summary
    assert s["new_sites_requested"] == 8 and s["new_sites"] == s["new_sites_adding_population"] == 6
    assert s["zero_gain_reason"] == "no candidate reaches anyone still uncovered within 10 min"
    assert all(row["adds_population"] and row["added_population"] > 0 for row in s["sites"])
    assert sum(row["added_population"] for row in s["sites"]) == pytest.approx(
        s["population_covered_after"] - s["population_covered_before"], abs=1.0)
    # the reason holds: the 6 sites cover everyone that all candidates together reach (independent computation)
    six = pd.concat([r.existing[["geometry"]], r.sites[["geometry"]]])
    every = pd.concat([r.existing[["geometry"]], r.candidates[["geometry"]]])
    assert _covered(r, six) == pytest.approx(s["population_covered_after"], abs=0.5)
    assert _covered(r, every) == pytest.approx(s["population_covered_after"], abs=0.5)
    # the marginal curve (an exact solve per k) stops there too, and 5 sites are not enough
    curve = s["marginal_curve"]
    assert [row["n_sites"] for row in curve] == [1, 2, 3, 4, 5, 6] and all(row["adds_population"] for row in curve)
    assert curve[-1]["covered_population"] == pytest.approx(s["population_covered_after"], abs=0.5)
    assert curve[-2]["covered_population"] < curve[-1]["covered_population"] - 1


def test_siting_exact_k_marks_the_sites_adding_nobody(zero_gain_runs, tmp_path):
    r, k = zero_gain_runs
    s = k.summary
    assert s["new_sites"] == 8 and s["new_sites_adding_population"] == 6 and s["require_k"]
    assert [row["adds_population"] for row in s["sites"]] == [True] * 6 + [False] * 2
    assert [row["added_population"] for row in s["sites"][6:]] == [0.0, 0.0]
    assert [row["facility_id"] for row in s["sites"][:6]] == [row["facility_id"] for row in r.summary["sites"]]
    assert s["population_covered_after"] == r.summary["population_covered_after"]
    assert _covered(k, pd.concat([k.existing[["geometry"]], k.sites[["geometry"]]])) == pytest.approx(
        s["population_covered_after"], abs=0.5)
    curve = s["marginal_curve"]
    assert [row["adds_population"] for row in curve] == [True] * 6 + [False] * 2
    assert [row["added_population"] for row in curve[6:]] == [0.0, 0.0]
    out = tmp_path / "k"
    write_siting_outputs(k, out)
    table = read_report_csv(out / "sites.csv")
    assert table["adds_population"].tolist() == [True] * 6 + [False] * 2
    assert read_report_csv(out / "marginal_curve.csv")["adds_population"].tolist() == [True] * 6 + [False] * 2
    saved = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert saved["zero_gain_reason"] == "no candidate reaches anyone still uncovered within 10 min"
    assert [row["adds_population"] for row in saved["sites"]] == [True] * 6 + [False] * 2
    page = (out / "map.html").read_text(encoding="utf-8")
    assert page.count("adds nobody") == 2  # the map marks the same two sites


def test_cli_site_says_why_it_stopped(tmp_path):
    args = ["site", "--network", str(NETWORK), "--institutions", str(INSTITUTIONS), "--population", str(POPULATION),
            "--new-sites", "8", "--minutes", "10", "--cell-size", "300", "--candidate-spacing", "400", "--mode", "drive",
            "-q"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert ("stopped at 6 of the 8 sites asked for: no candidate reaches anyone still uncovered within 10 min; "
            "--exact-k gives all 8") in res.output
    assert ": 6 new sites;" in res.output and "adds nobody" not in res.output
    res = CliRunner().invoke(app, [*args, "--exact-k", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert res.output.count("(adds nobody)") == 2 and ": 8 new sites;" in res.output
    assert "2 of the 8 sites add nobody (marked): no candidate reaches anyone still uncovered within 10 min" in res.output


def test_one_case_feeds_siting_like_the_keyword_form(siting_run):
    """site_case(Case) is run_siting: the same sites and figures from the same case."""
    from planner.pipeline import Case, site_case

    case = Case(network=NETWORK, institutions=INSTITUTIONS, population=POPULATION, minutes=(10,), cell_size_m=300,
                boundaries=datasets.get_path("wuhan_districts"))
    r = site_case(case, n_sites=3, candidate_spacing_m=400)
    drop = {"runtime_s", "solve_s", "build_s"}  # timings
    assert {k: v for k, v in r.summary.items() if k not in drop} == \
        {k: v for k, v in siting_run.summary.items() if k not in drop}
    assert r.summary["max_minutes"] == 10.0 and len(r.sites) == 3
