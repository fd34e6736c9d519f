"""`planner grid` end to end on two Wuhan districts (江汉区, 硚口区): invariants, outputs, files, bad input."""

from __future__ import annotations

import json

import fiona
import geopandas as gpd
import pandas as pd
import pytest
from typer.testing import CliRunner

from planner import InvalidValueError, PlannerError, datasets, travel_time
from planner.cli import app
from planner.exports import write_grid_outputs
from planner.pipeline import run_grids
from planner.tables import header, read_report_csv

from .test_assignment import _grids_connected
from .test_maps import _unjson

NETWORK = datasets.get_path("wuhan_roads")
INSTITUTIONS = datasets.get_path("wuhan_institutions")
POPULATION = datasets.get_path("wuhan_population")
DISTRICTS = ("江汉区", "硚口区")
# three of their tertiary hospitals (OSM positions), with made-up bed numbers for the capacity shares
LEADS_CSV = """name,lon,lat,beds
武汉协和医院,114.269258,30.586649,3000
武汉同济医院,114.254351,30.582095,2000
<script>alert(1)</script>湖北省中西医结合医院,114.268199,30.610113,1000
"""


@pytest.fixture(scope="module")
def two_districts(tmp_path_factory):
    path = tmp_path_factory.mktemp("grid") / "districts.gpkg"
    d = gpd.read_file(datasets.get_path("wuhan_districts"))
    d[d["name"].isin(DISTRICTS)].to_file(path)
    return path


@pytest.fixture(scope="module")
def grid_run(two_districts):
    return run_grids(NETWORK, INSTITUTIONS, POPULATION, boundaries=two_districts, time_limit_s=20,
                     population_label=datasets.WUHAN_POPULATION_LABEL)


def test_grid_run_invariants(grid_run):
    r, s = grid_run, grid_run.summary
    cells = r.cells
    assert set(cells["district"].dropna()) == set(DISTRICTS) and cells.index.is_unique  # edge cells: centre outside
    assert s["n_grids"] == len(r.leads) == 6  # the six tertiary hospitals of the two districts
    assigned = cells[cells["lead_id"].notna()]
    assert len(assigned) + s["cells_unassigned"] == len(cells) == s["cells"]
    assert set(assigned["lead_id"]) == set(r.leads.index)
    # loads within ±20 % of equal shares, and summary.json agrees with the cells
    pop = assigned.groupby("lead_id")["population"].sum()
    target = pop.sum() / len(r.leads)
    assert ((pop >= 0.8 * target - 1e-6) & (pop <= 1.2 * target + 1e-6)).all()
    for lead in s["leads"]:
        assert lead["population"] == pytest.approx(pop[lead["facility_id"]], abs=0.1)
        assert lead["within_tolerance"]
    assert s["load_ratio_range"][0] >= 0.8 - 1e-3 and s["load_ratio_range"][1] <= 1.2 + 1e-3
    # every grid contiguous (queen adjacency)
    from planner.assignment import cell_adjacency

    assert _grids_connected(cell_adjacency(r.case.cells, contiguity="queen"), cells["lead_id"].where(cells["lead_id"].notna()))
    # the nearest-lead baseline equals the coverage engine's nearest facility (multi-source Dijkstra, another code path)
    snap_c = travel_time.snap_points(r.net, r.case.cells, max_snap_m=1000 * 0.5 ** 0.5)
    near = travel_time.nearest_facility_times(r.net, snap_c, travel_time.snap_points(r.net, r.leads))
    ok = cells["baseline_travel_time_min"].notna()
    assert (cells.loc[ok, "baseline_travel_time_min"] - near.loc[ok, "travel_time_s"] / 60).abs().max() < 0.01
    assert (cells["travel_time_min"][ok] >= cells["baseline_travel_time_min"][ok] - 1e-9).all()
    moved = cells.loc[cells["moved"], "population"].sum()
    assert s["comparison"]["population_moved"] == pytest.approx(moved, rel=1e-6)
    # members: the other institutions of the two districts, each attached to a grid
    assert s["members_unattached"] == 0 and len(r.members) > 0
    assert sum(lead["members"] for lead in s["leads"]) == len(r.members)
    # accessibility per cell (institutions per 1,000 residents within 30 minutes), population-weighted mean reported
    assert (cells["accessibility_per_1000"] >= 0).all() and s["accessibility"]["mean_per_1000"] > 0


def test_grid_outputs(grid_run, tmp_path):
    out = tmp_path / "grid"
    write_grid_outputs(grid_run, out, offline=True)
    assert sorted(p.name for p in out.iterdir()) == [".planner-manifest.json", "assignment.csv", "districts.csv", "grids.csv",
                                                    "grids.gpkg", "map.html", "norms.csv", "summary.json"]
    assert set(fiona.listlayers(out / "grids.gpkg")) == {"grids", "cells", "nearest_lead_zones", "leads", "members"}
    grids = gpd.read_file(out / "grids.gpkg", layer="grids")
    assert len(grids) == 6 and grids.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    table = read_report_csv(out / "assignment.csv")
    assert len(table) == len(grid_run.cells) and table["cell_id"].is_unique
    g = pd.read_csv(out / "grids.csv", encoding="utf-8-sig")
    assert header("load_ratio", "grids") in g.columns and len(g) == 6
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["complete"]
    assert {"population", "load_ratio", "mean_travel_time_min", "max_travel_time_min", "members"} <= set(s["leads"][0])
    html = (out / "map.html").read_text(encoding="utf-8")
    assert "planner-grids" in html and "OpenStreetMap" in html and "WorldPop" in html and "cdn.jsdelivr" not in html


def test_leads_file_with_capacities_and_fixed_district(two_districts, tmp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text(LEADS_CSV, encoding="utf-8")
    fixed = tmp_path / "fixed.csv"
    fixed.write_text("district,lead\n硚口区,武汉同济医院\n", encoding="utf-8")
    r = run_grids(NETWORK, INSTITUTIONS, POPULATION, boundaries=two_districts, leads=leads, capacity_column="beds",
                  tolerance=0.6, fixed=fixed, time_limit_s=20)
    s = r.summary
    assert s["capacity_basis"] == "column 'beds'" and s["fixed_assignments"] == 1
    shares = {lead["name"]: lead["capacity_share"] for lead in s["leads"]}
    assert shares["武汉协和医院"] == pytest.approx(0.5) and shares["武汉同济医院"] == pytest.approx(1 / 3, abs=1e-4)
    tongji = r.leads.index[r.leads["name"] == "武汉同济医院"][0]
    qiaokou = r.cells[(r.cells["district"] == "硚口区") & r.cells["lead_id"].notna()]
    assert (qiaokou["lead_id"] == tongji).all()
    for lead in s["leads"]:
        assert lead["within_tolerance"] and 0.4 - 1e-3 <= lead["load_ratio"] <= 1.6 + 1e-3
    # the lead named with markup is drawn as text in the map
    out = tmp_path / "out"
    write_grid_outputs(r, out)
    text = _unjson((out / "map.html").read_text(encoding="utf-8"))
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)" in text


@pytest.mark.parametrize(("content", "expected"), [
    ("district,lead\n硚口区,不存在的医院\n", "row 2: lead '不存在的医院' is not one of the"),
    ("district,lead\n江汉区,武汉协和医院\n武昌区,武汉协和医院\n", "row 3: district '武昌区' has no populated cell"),
    ("lead\n武汉协和医院\n", "no 'district' or 'cell_id' column"),
])
def test_bad_fixed_files(two_districts, tmp_path, content, expected):
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(content, encoding="utf-8")
    with pytest.raises(PlannerError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        run_grids(NETWORK, INSTITUTIONS, POPULATION, boundaries=two_districts, fixed=fixed, time_limit_s=5)


def test_cli_grid(two_districts, tmp_path):
    out = tmp_path / "grid"
    args = ["grid", "--network", str(NETWORK), "--institutions", str(INSTITUTIONS), "--population", str(POPULATION),
            "--boundaries", str(two_districts), "--time-limit", "10", "--out", str(out), "-q"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "6 grids" in res.output and "load ratio" in res.output and (out / "map.html").exists()
    # bad input: one line, exit code 2, only error.log written
    far = tmp_path / "far.csv"
    far.write_text("name,lon,lat\n远方医院,116.40,39.90\n远方医院二,116.41,39.91\n", encoding="utf-8")
    bad = tmp_path / "bad"
    res = CliRunner().invoke(app, [*args[:-3], "--leads", str(far), "--out", str(bad)])
    assert res.exit_code == 2 and "only 0 lead hospital" in res.output and "Traceback" not in res.output
    assert res.output.strip().count("\n") == 0 or res.output.strip().splitlines()[-1].startswith("error:")
    assert sorted(p.name for p in bad.iterdir()) == ["error.log"]
    with pytest.raises(InvalidValueError, match="tolerance"):
        run_grids(NETWORK, INSTITUTIONS, POPULATION, boundaries=two_districts, tolerance=-1)


def test_cli_grid_leads_that_are_also_institutions(two_districts, tmp_path):
    # an unseen city's own tables: institutions and leads as CSVs, so both id spaces are row numbers 1, 2, ...;
    # the four leads are also rows of the institutions table (same names and places)
    from planner.institutions import load_institutions

    area = gpd.read_file(two_districts).union_all()
    inst = load_institutions(INSTITUTIONS)
    inst = inst[inst.within(area)].reset_index(drop=True)[["name", "lon", "lat", "tier"]]
    inst.to_csv(tmp_path / "inst.csv", index=False)
    lead_rows = inst.index[inst["tier"] == "tertiary"][:4]
    inst.loc[lead_rows].to_csv(tmp_path / "leads.csv", index=False)
    out = tmp_path / "grid"
    res = CliRunner().invoke(app, ["grid", "--network", str(NETWORK), "--institutions", str(tmp_path / "inst.csv"),
                                   "--leads", str(tmp_path / "leads.csv"), "--population", str(POPULATION),
                                   "--boundaries", str(two_districts), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output  # was: internal error: InvalidIndexError (lead and member ids mixed)
    assert "4 grids" in res.output
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    leads = {lead["facility_id"]: lead for lead in s["leads"]}
    assert sorted(leads) == ["lead:1", "lead:2", "lead:3", "lead:4"]  # the leads file's rows, in their own id space
    # each lead is recognised as its row of the institutions table (CSV ids are 1-based row numbers) ...
    assert sorted((lead["name"], lead["institution_id"]) for lead in leads.values()) == sorted(
        (inst.at[i, "name"], str(i + 1)) for i in lead_rows)
    # ... and is not counted again as a member of a grid: every other institution is a member, once
    lead_names = set(inst.loc[lead_rows, "name"])
    members = [m for lead in leads.values() for m in lead["member_names"]]
    assert not lead_names & set(members)
    assert len(members) + s["members_unattached"] + s["institutions_outside_study_area"] == len(inst) - 4
    layer = gpd.read_file(out / "grids.gpkg", layer="members")
    assert set(layer["facility_id"]) == {str(i + 1) for i in inst.index.difference(lead_rows)}
    assert set(layer["lead_id"].dropna()) <= set(leads) and set(layer["lead_name"].dropna()) <= lead_names
    # cells name their lead from the leads file, never a member that shares its id
    table = read_report_csv(out / "assignment.csv").dropna(subset=["lead_id"])
    assert (table["lead_name"] == table["lead_id"].map({k: v["name"] for k, v in leads.items()})).all()
    assert sum(lead["population"] for lead in leads.values()) == pytest.approx(table["population"].sum(), abs=1)


def test_cli_grid_is_reproducible(two_districts, tmp_path):
    # the six tertiary hospitals of the two districts: the MIP is not solved to optimality within 30 nodes, so the
    # work bound (not the clock) ends it; two runs must write the same assignment.csv, byte for byte
    args = ["grid", "--network", str(NETWORK), "--institutions", str(INSTITUTIONS), "--population", str(POPULATION),
            "--boundaries", str(two_districts), "--max-nodes", "30"]
    outs = []
    for name in ("a", "b"):
        res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        outs.append(tmp_path / name)
    s = json.loads((outs[0] / "summary.json").read_text(encoding="utf-8"))
    assert s["solver_status"] == "work_limit" and s["gap"] > 0 and not s["time_limited"]
    assert s["work"]["mip_nodes"] == s["work"]["mip_max_nodes"] == 30
    assert (outs[0] / "assignment.csv").read_bytes() == (outs[1] / "assignment.csv").read_bytes()
    assert (outs[0] / "grids.csv").read_bytes() == (outs[1] / "grids.csv").read_bytes()
    # the result line reports the bound and its gap; progress lines (not --quiet) name the solver steps
    assert f"6 grids (work_limit, gap {s['gap']:.2%}, 30 of at most 30 nodes" in res.output
    assert "grid LP relaxation: lower bound" in res.output and "grid assignment MIP: HiGHS" in res.output
    quiet = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "q"), "-q"])
    assert quiet.exit_code == 0 and "grid LP relaxation" not in quiet.output
    assert (tmp_path / "q" / "assignment.csv").read_bytes() == (outs[0] / "assignment.csv").read_bytes()
