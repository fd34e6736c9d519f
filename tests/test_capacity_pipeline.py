"""Capacity-limited coverage through the pipeline, the exports and the CLI, on the Wuhan walk case.

The capacities are made up for the test (written into a copy of geodata/wuhan/institutions.geojson in a
temporary folder as a ``beds`` column): per tier 200 / 100 / 50 / 20 beds (tertiary / secondary / primary /
station), at 100 persons per bed - chosen so that capacities bind at 15 minutes' walk, not a norm.
"""

from __future__ import annotations

import json
from pathlib import Path

import fiona
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from planner import InvalidValueError, datasets, settings
from planner.capacity import allocate
from planner.cli import app
from planner.exports import write_coverage_outputs, write_scenario_outputs
from planner.institutions import load_institutions
from planner.pipeline import Case, analyse_case
from planner.pipeline.summary import CoverageSummary, ScenarioSummary
from planner.scenarios import load_scenario, run_scenario
from planner.tables import headers, read_report_csv
from planner.travel_time import od_travel_times, snap_points

from .test_cli import INSTITUTIONS, NETWORK, POPULATION
from .test_maps import _unjson
from .test_summary_schema import _problems

BEDS_BY_TIER = {"tertiary": 200, "secondary": 100, "primary": 50, "station": 20}  # made up for the test
PERSONS_PER_BED = 100.0


@pytest.fixture(scope="module")
def wuhan_beds(tmp_path_factory):
    """A copy of the Wuhan institutions with a made-up ``beds`` column (by tier, as the loader classifies them)."""
    src = datasets.get_path("wuhan_institutions")
    raw = gpd.read_file(src)
    tiers = load_institutions(src)["tier"].to_numpy()
    raw["beds"] = [BEDS_BY_TIER[t] for t in tiers]
    path = tmp_path_factory.mktemp("capacity") / "institutions_beds.geojson"
    raw.to_file(path, driver="GeoJSON")
    return path


@pytest.fixture(scope="module")
def wuhan_case(wuhan_beds):
    return Case(network=datasets.get_path("wuhan_roads"), institutions=wuhan_beds,
                population=datasets.get_path("wuhan_population"), boundaries=datasets.get_path("wuhan_districts"),
                mode="walk", isochrones=False, capacity_column="beds", persons_per_unit=PERSONS_PER_BED)


@pytest.fixture(scope="module")
def wuhan_loaded(wuhan_case):
    return wuhan_case.load()


@pytest.fixture(scope="module")
def wuhan_run(wuhan_loaded):
    return analyse_case(wuhan_loaded, with_isochrones=False, capacity_column="beds", persons_per_unit=PERSONS_PER_BED)


def test_books_balance_on_wuhan_walk(wuhan_run):
    s = wuhan_run.summary
    c = s["capacity"]
    assert not _problems(json.loads(json.dumps(s)), CoverageSummary)
    # the rounded report balances exactly, overall and per district
    assert c["population_served"] + c["population_unserved"] == pytest.approx(c["population_total"], abs=1e-6)
    assert c["unserved_out_of_reach"] + c["unserved_over_capacity"] == pytest.approx(c["population_unserved"], abs=1e-6)
    for r in c["by_district"]:
        assert r["population_served"] + r["unserved_out_of_reach"] + r["unserved_over_capacity"] == pytest.approx(
            r["population_total"], abs=1e-6)
        assert min(r["population_served"], r["unserved_out_of_reach"], r["unserved_over_capacity"]) >= 0
    # and agrees with the exact figures and the coverage report within 1 person
    a = wuhan_run.allocation
    exact = a.cells[["served", "unserved_out_of_reach", "unserved_over_capacity"]].sum()
    assert abs(exact.sum() - s["population_total"]) <= 1
    assert abs(c["population_total"] - s["population_total"]) <= 1
    assert abs(c["unserved_out_of_reach"] - s["cells"]["gap_population"]) <= 1  # out of reach = coverage's 15-min gap
    assert sum(r["population_total"] for r in c["by_district"]) == pytest.approx(c["population_total"], abs=1)
    assert sum(r["population_served"] for r in c["by_tier"]) == pytest.approx(c["population_served"], abs=1)
    assert c["unserved_over_capacity"] > 10_000 and c["institutions_full"] > 0  # the capacities bind
    assert c["capacity_basis"] == {"column": "beds", "persons_per_unit": 100.0, "unit": "units of 'beds' × persons_per_unit"}
    assert (a.facilities["capacity"] == [BEDS_BY_TIER[t] * 100 for t in wuhan_run.institutions["tier"]]).all()


def test_served_csv_equals_an_independent_allocation(wuhan_run, wuhan_loaded, tmp_path):
    out = tmp_path / "out"
    write_coverage_outputs(wuhan_run, out, offline=True)
    assert pd.read_csv(out / "served.csv", encoding="utf-8-sig", nrows=0).columns.tolist() == [
        "机构编号 facility id", "机构名称 name", "机构等级 tier", "服务能力(人) capacity (persons)",
        "阈值内需求人口(人) demand within the threshold (persons)", "服务人口(人) served (persons)", "利用率(%) utilisation (%)"]
    served = read_report_csv(out / "served.csv", dtype={"facility_id": str})
    assert list(served.columns) == list(headers("served"))
    assert len(served) == len(wuhan_run.institutions)
    assert (served["served"] <= served["capacity"]).all()  # nobody over capacity
    # the same allocation computed apart, on the case's own snapping and travel times
    case = wuhan_loaded
    access = settings.ACCESS_SPEED_KPH or settings.WALK_SPEED_KPH
    od = od_travel_times(case.net, snap_points(case.net, case.cells, max_snap_m=case.max_snap_m, access_speed_kph=access),
                         snap_points(case.net, case.institutions, max_snap_m=case.max_snap_m, access_speed_kph=access),
                         max_minutes=15)
    capacity = pd.Series([BEDS_BY_TIER[t] * 100.0 for t in case.institutions["tier"]], index=case.institutions.index)
    again = allocate(od, case.cells["population"], capacity, max_minutes=15)
    assert served["served"].sum() == pytest.approx(again.population_served, abs=0.05 * len(served))
    assert wuhan_run.allocation.population_served == pytest.approx(again.population_served, rel=1e-9)
    demand = served.set_index("facility_id")["demand_within_t"]  # whole persons
    assert np.allclose(demand.reindex(again.facilities.index), again.facilities["demand_within_t"], atol=0.5)
    # the residual layer: the cells with unserved persons, by reason, in the GeoPackage and on the map
    residual = gpd.read_file(out / "cells.gpkg", layer="residual_unserved")
    assert set(residual["unserved_reason"]) == {"out_of_reach", "over_capacity"}
    assert residual["unserved"].sum() == pytest.approx(wuhan_run.summary["capacity"]["population_unserved"], abs=1)
    assert "residual_unserved" in fiona.listlayers(out / "cells.gpkg")
    html = _unjson((out / "map.html").read_text(encoding="utf-8"))
    assert "Residual unserved (capacity)" in html and "unserved: out of reach" in html


def test_ordered_serves_no_more_than_optimal(wuhan_run, wuhan_loaded):
    greedy = analyse_case(wuhan_loaded, with_isochrones=False, capacity_column="beds", persons_per_unit=PERSONS_PER_BED,
                          allocation="ordered", norms=False)
    g, b = greedy.summary["capacity"], wuhan_run.summary["capacity"]
    assert g["method"] == "ordered" and "norms" not in greedy.summary
    assert g["population_served"] <= b["population_served"]
    assert g["unserved_out_of_reach"] == b["unserved_out_of_reach"]  # the order changes who is served, not who can be
    assert g["population_served"] + g["population_unserved"] == pytest.approx(g["population_total"], abs=1e-6)


def test_non_numeric_capacity_names_the_row(tmp_path):
    inst = pd.read_csv(INSTITUTIONS).assign(beds=["10", "many", "5", "30"])
    path = tmp_path / "inst.csv"
    inst.to_csv(path, index=False)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["coverage", "--network", str(NETWORK), "--institutions", str(path), "--population",
                                   str(POPULATION), "--out", str(out), "--capacity-col", "beds", "--no-isochrones",
                                   "--quiet"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error")]
    assert len(lines) == 1
    assert "row 2, column 'beds' (capacity): 'many' is not a number" in lines[0] and str(path) in lines[0]


def test_missing_capacity_and_bad_options(tmp_path):
    inst = pd.read_csv(INSTITUTIONS).assign(beds=[10, None, 5, 30])
    path = tmp_path / "inst.csv"
    inst.to_csv(path, index=False)
    case = Case(network=NETWORK, institutions=path, population=POPULATION, isochrones=False, capacity_column="beds")
    with pytest.raises(InvalidValueError, match=r"row 2 \(facility_id '2', name '光谷佳园社区卫生服务站'\), column 'beds'"):
        analyse_case(case.load(), with_isochrones=False, capacity_column="beds")
    with pytest.raises(InvalidValueError, match="persons_per_unit 100 needs a capacity column"):
        Case(network=NETWORK, institutions=path, population=POPULATION, persons_per_unit=100)
    with pytest.raises(InvalidValueError, match="allocation 'greedy' is not one of optimal, ordered"):
        Case(network=NETWORK, institutions=path, population=POPULATION, capacity_column="beds", allocation="greedy")
    res = CliRunner().invoke(app, ["coverage", "--network", str(NETWORK), "--institutions", str(path), "--population",
                                   str(POPULATION), "--out", str(tmp_path / "o"), "--capacity-col", "beds",
                                   "--persons-per-unit", "0"])
    assert res.exit_code == 2 and "--persons-per-unit" in res.output


def test_scenario_file_keys(tmp_path):
    inst = pd.read_csv(INSTITUTIONS).assign(beds=[2, 1, 5, 30])
    inst.to_csv(tmp_path / "inst.csv", index=False)
    (tmp_path / "norms.toml").write_text('[[norm]]\nid = "c"\nkind = "coverage"\nvalue = 90\nunit = "%"\nminutes = 15\n',
                                         encoding="utf-8")
    text = f"""name = "beds"
[inputs]
network = "{NETWORK.as_posix()}"
institutions = "inst.csv"
population = "{Path(POPULATION).as_posix()}"
boundaries = "{Path(datasets.get_path('wuhan_districts')).as_posix()}"
[analysis]
cell_size_m = 300
isochrones = false
capacity_column = "beds"
persons_per_unit = 100
allocation = "ordered"
norms = "norms.toml"
"""
    (tmp_path / "s.toml").write_text(text, encoding="utf-8")
    s = load_scenario(tmp_path / "s.toml")
    assert (s.case.capacity_column, s.case.persons_per_unit, s.case.allocation) == ("beds", 100.0, "ordered")
    assert s.case.norms == str(tmp_path / "norms.toml")
    run = run_scenario(s, out_root=None)
    c = run.summary["capacity"]
    assert c["method"] == "ordered" and c["capacity_total"] == 3800.0 and run.summary["norms"]["checked"] == ["c"]
    assert not _problems(json.loads(json.dumps(run.summary)), ScenarioSummary)
    files = write_scenario_outputs(run, s, tmp_path / "out")
    assert {"served.csv", "norms.csv"} <= {p.name for p in files}
    assert "residual_unserved" in fiona.listlayers(tmp_path / "out" / "beds.gpkg")
    (tmp_path / "bad.toml").write_text(text.replace('"ordered"', '"greedy"'), encoding="utf-8")
    with pytest.raises(InvalidValueError, match=r"bad.toml, line 12: 'analysis.allocation' 'greedy' is not an allocation"):
        load_scenario(tmp_path / "bad.toml")


TIER_PERSONS = {"tertiary": 6000, "secondary": 3000, "primary": 1500, "station": 300}  # made up for the test
# the four Optics Valley institutions: 一级 / a 社区卫生服务站 (no grade: by its name) / 二级 / 三级甲等
GUANGGU_TIERS = ["primary", "station", "secondary", "tertiary"]


@pytest.fixture(scope="module")
def guanggu_loaded():
    return Case(network=NETWORK, institutions=INSTITUTIONS, population=POPULATION, isochrones=False,
                cell_size_m=300).load()


def test_capacity_from_tier_defaults_only(guanggu_loaded, tmp_path):
    norms = tmp_path / "norms.toml"
    norms.write_text("[capacity_defaults]\n" + "".join(f"{t} = {v}\n" for t, v in TIER_PERSONS.items()),
                     encoding="utf-8")
    run = analyse_case(guanggu_loaded, with_isochrones=False, norms=norms)  # no capacity column
    c = run.summary["capacity"]
    assert not _problems(json.loads(json.dumps(run.summary)), CoverageSummary)
    assert c["capacity_basis"] == {"column": None, "persons_per_unit": None, "unit": "persons per institution of its tier",
                                   "tier_defaults": {t: float(v) for t, v in TIER_PERSONS.items()}}
    # the same allocation computed apart: per-tier capacities set here, on the case's own snapping and travel times
    case = guanggu_loaded
    assert case.institutions["tier"].tolist() == GUANGGU_TIERS
    capacity = pd.Series([float(TIER_PERSONS[t]) for t in GUANGGU_TIERS], index=case.institutions.index)
    access = settings.ACCESS_SPEED_KPH or settings.WALK_SPEED_KPH
    od = od_travel_times(case.net, snap_points(case.net, case.cells, max_snap_m=case.max_snap_m, access_speed_kph=access),
                         snap_points(case.net, case.institutions, max_snap_m=case.max_snap_m, access_speed_kph=access),
                         max_minutes=15)
    again = allocate(od, case.cells["population"], capacity, max_minutes=15)
    a = run.allocation
    assert (a.facilities["capacity"] == capacity).all()
    assert a.population_served == pytest.approx(again.population_served, rel=1e-9)
    assert a.population_served <= capacity.sum() + 1e-6 and (a.facilities["served"] <= capacity + 1e-6).all()
    assert c["population_served"] == pytest.approx(again.population_served, abs=0.05)
    exact = again.cells[["unserved_out_of_reach", "unserved_over_capacity"]].sum()
    assert c["unserved_over_capacity"] == pytest.approx(exact["unserved_over_capacity"], abs=0.1) and exact.iloc[1] > 0
    assert c["unserved_out_of_reach"] == pytest.approx(exact["unserved_out_of_reach"], abs=0.1)


def test_tier_defaults_fill_empty_rows(guanggu_loaded, tmp_path):
    inst = pd.read_csv(INSTITUTIONS).assign(cap=[800, None, 2000, None])
    path = tmp_path / "inst.csv"
    inst.to_csv(path, index=False)
    norms = tmp_path / "norms.toml"
    norms.write_text('[capacity_defaults]\nstation = 300\ntertiary = { value = 6000, source = "test", standing = "user" }\n',
                     encoding="utf-8")
    case = Case(network=NETWORK, institutions=path, population=POPULATION, isochrones=False, cell_size_m=300,
                capacity_column="cap", allocation="ordered", norms=norms)
    run = analyse_case(case.load(), with_isochrones=False, capacity_column="cap", allocation="ordered", norms=norms)
    assert run.allocation.facilities["capacity"].tolist() == [800.0, 300.0, 2000.0, 6000.0]
    c = run.summary["capacity"]
    assert c["method"] == "ordered" and c["capacity_total"] == 9100.0
    assert c["capacity_basis"]["tier_defaults"] == {"station": 300.0, "tertiary": 6000.0}
    # a norms file without capacities leaves the ordered allocation nothing to allocate: one line
    plain = tmp_path / "plain.toml"
    plain.write_text('[[norm]]\nid = "c"\nkind = "coverage"\nvalue = 90\nunit = "%"\nminutes = 15\n', encoding="utf-8")
    Case(network=NETWORK, institutions=path, population=POPULATION, allocation="ordered", norms=plain)  # may hold some
    with pytest.raises(InvalidValueError, match=r"allocation 'ordered' needs capacities; fix: give capacity_column"):
        analyse_case(guanggu_loaded, with_isochrones=False, allocation="ordered", norms=plain)
