"""Norms per district through coverage and grid: ``norms.csv`` and the ``norms`` block, checked by hand.

Optics Valley (光谷) with the Wuhan district boundaries: its cells fall in 洪山区 and 江夏区. The expected rows
are computed here from the run's own cells and institutions, apart from :mod:`planner.norms`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point
from typer.testing import CliRunner

from planner import InvalidValueError, datasets
from planner.cli import app
from planner.exports import write_coverage_outputs, write_grid_outputs
from planner.institutions import load_institutions
from planner.pipeline import run_coverage, run_grids
from planner.pipeline.summary import CoverageSummary, GridSummary
from planner.travel_time import od_travel_times, snap_points

from .test_cli import INSTITUTIONS, NETWORK, POPULATION
from .test_summary_schema import _problems

DISTRICTS = datasets.get_path("wuhan_districts")
CENTRE = "社区卫生服务中心"
NORMS_TOML = """name = "test norms"
[[norm]]
id = "centres_30k"
kind = "residents_per_centre"
value = 30000
unit = "residents per centre"
tiers = ["primary"]
name_contains = ["社区卫生服务中心"]
[[norm]]
id = "within_10"
kind = "coverage"
value = 50
unit = "%"
minutes = 10
"""


def _by_hand(cells: pd.DataFrame, inst: pd.DataFrame, district: str, minutes: float) -> tuple[float, int, float]:
    """Residents, centres and % within `minutes` of a district, from the cells (with travel_time_min) and institutions."""
    c = cells[cells["district"] == district]
    pop = float(c["population"].sum())
    centres = int(((inst["district"] == district) & (inst["tier"] == "primary")
                   & inst["name"].str.contains(CENTRE, regex=False)).sum())
    within = float(c.loc[c["travel_time_min"].fillna(np.inf) <= minutes, "population"].sum())
    return pop, centres, 100.0 * within / pop


@pytest.fixture(scope="module")
def norms_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("norms") / "norms.toml"
    path.write_text(NORMS_TOML, encoding="utf-8")
    return path


def test_coverage_writes_norms_csv(norms_file, tmp_path):
    run = run_coverage(NETWORK, INSTITUTIONS, POPULATION, boundaries=DISTRICTS, cell_size_m=300, with_isochrones=False,
                       minutes=(10, 15), norms=norms_file)
    s = run.summary
    assert not _problems(json.loads(json.dumps(s)), CoverageSummary)
    out = tmp_path / "out"
    write_coverage_outputs(run, out, offline=True)
    table = pd.read_csv(out / "norms.csv", encoding="utf-8-sig")
    assert {"区县 district", "实测值(见单位列) measured (see unit)", "是否达标 pass/fail",
            "缺口(见缺口单位列) shortfall (see shortfall unit)", "差距说明 gap (English)"} <= set(table)
    assert len(table) == 2 * s["norms"]["districts"] == 4  # two districts, two norms
    pop, centres, pct = _by_hand(run.cells, run.institutions, "洪山区", 10)
    assert centres == 1  # 关东街社区卫生服务中心
    rows = table[table["区县 district"] == "洪山区"].set_index("指标编号 norm id")
    assert rows.at["centres_30k", "实测值(见单位列) measured (see unit)"] == round(pop / centres)  # residents: whole
    need = math.ceil(pop / 30000) - centres
    assert rows.at["centres_30k", "缺口(见缺口单位列) shortfall (see shortfall unit)"] == need
    assert rows.at["centres_30k", "是否达标 pass/fail"] == ("达标 pass" if need == 0 else "未达标 fail")
    assert rows.at["within_10", "实测值(见单位列) measured (see unit)"] == round(pct, 1)  # %: to 0.1
    assert rows.at["within_10", "是否达标 pass/fail"] == ("达标 pass" if pct >= 50 else "未达标 fail")
    block = {(r["district"], r["norm"]): r for r in s["norms"]["rows"]}
    assert block[("洪山区", "within_10")]["measured"] == pytest.approx(pct, abs=0.01)
    assert s["norms"]["file"] == str(norms_file) and s["norms"]["checked"] == ["centres_30k", "within_10"]


def test_default_norms_and_no_norms():
    run = run_coverage(NETWORK, INSTITUTIONS, POPULATION, boundaries=DISTRICTS, cell_size_m=300, with_isochrones=False)
    assert run.summary["norms"]["checked"] == ["residents_per_centre", "coverage_15min"]  # the shipped file
    off = run_coverage(NETWORK, INSTITUTIONS, POPULATION, boundaries=DISTRICTS, cell_size_m=300, with_isochrones=False,
                       norms_enabled=False)
    assert "norms" not in off.summary and off.norms is None
    alone = run_coverage(NETWORK, INSTITUTIONS, POPULATION, cell_size_m=300, with_isochrones=False)
    assert "norms" not in alone.summary  # norms are per district: none without boundaries


def test_grid_writes_norms_csv(norms_file, tmp_path):
    run = run_grids(NETWORK, INSTITUTIONS, POPULATION, lead_tiers=("secondary", "tertiary"), boundaries=DISTRICTS,
                    cell_size_m=500, time_limit_s=20, norms=norms_file)
    assert not _problems(json.loads(json.dumps(run.summary)), GridSummary)
    out = tmp_path / "grid"
    write_grid_outputs(run, out, offline=True)
    table = pd.read_csv(out / "norms.csv", encoding="utf-8-sig")
    rows = table[table["区县 district"] == "洪山区"].set_index("指标编号 norm id")
    # by hand: the grid's cells, and their time to the nearest institution (any tier) computed apart
    case = run.case
    snap_c = snap_points(run.net, case.cells, max_snap_m=max(case.max_snap_m, 500 * math.sqrt(0.5)))
    od = od_travel_times(run.net, snap_c, snap_points(run.net, case.institutions, max_snap_m=case.max_snap_m))
    cells = case.cells.assign(travel_time_min=od.groupby("origin_id")["travel_time_s"].min().reindex(case.cells.index) / 60)
    pop, centres, pct = _by_hand(cells, case.institutions, "洪山区", 10)
    assert rows.at["centres_30k", "实测值(见单位列) measured (see unit)"] == round(pop / centres)  # residents: whole
    assert rows.at["within_10", "实测值(见单位列) measured (see unit)"] == round(pct, 1)  # %: to 0.1
    assert run.summary["norms"]["districts"] == len(table) // 2


def test_bad_norms_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[norm]]\nid = "x"\nkind = "coverage"\nvalue = 90\nunit = "%"\nminutes = 15\ncolour = "red"\n',
                   encoding="utf-8")
    res = CliRunner().invoke(app, ["coverage", "--network", str(NETWORK), "--institutions", str(INSTITUTIONS),
                                   "--population", str(POPULATION), "--boundaries", str(DISTRICTS), "--out",
                                   str(tmp_path / "o"), "--norms", str(bad), "--quiet"])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and "bad.toml" in lines[0] and "colour" in lines[0] and "line 7" in lines[0]
    with pytest.raises(InvalidValueError, match="colour"):
        run_coverage(NETWORK, INSTITUTIONS, POPULATION, boundaries=DISTRICTS, cell_size_m=300, with_isochrones=False,
                     norms=bad)


EXAMPLE_NORMS = Path(__file__).resolve().parents[1] / "scenarios" / "norms" / "xx_city_example.toml"
# made up for the test: beds, doctors and nurses of the four Optics Valley institutions, under Chinese headers
COUNTS = {"床位数": [50, 0, 300, 1200], "执业医师": [20, 3, 110, 520], "注册护士": [30, 4, 150, 700]}


def test_beds_doctors_nurses_per_1000_by_hand(tmp_path):
    path = tmp_path / "inst.csv"
    pd.read_csv(INSTITUTIONS).assign(**COUNTS).to_csv(path, index=False)
    run = run_coverage(NETWORK, path, POPULATION, boundaries=DISTRICTS, cell_size_m=300, with_isochrones=False,
                       norms=EXAMPLE_NORMS)
    out = tmp_path / "out"
    write_coverage_outputs(run, out, offline=True)
    table = pd.read_csv(out / "norms.csv", encoding="utf-8-sig").set_index(["区县 district", "指标编号 norm id"])
    assert not (table["是否达标 pass/fail"] == "未检查 not checked").any()
    # by hand: each institution's district by point in polygon (apart from the run), residents from the run's cells
    inst = pd.read_csv(path)
    polygons = gpd.read_file(DISTRICTS)
    within = {name: [geom.contains(Point(x, y)) for x, y in zip(inst["lon"], inst["lat"], strict=True)]
              for name, geom in zip(polygons["name"], polygons.geometry, strict=True)}
    districts = sorted(run.cells["district"].dropna().unique())
    assert districts == ["江夏区", "洪山区"] and len(table) == 3 * len(districts)
    for district in districts:
        pop = float(run.cells.loc[run.cells["district"] == district, "population"].sum())
        for column, norm_id, value in (("床位数", "beds_per_1000", 9.51), ("执业医师", "doctors_per_1000", 4.21),
                                       ("注册护士", "nurses_per_1000", 5.57)):
            total = float(inst.loc[within[district], column].sum())
            row = table.loc[(district, norm_id)]
            assert row["实测值(见单位列) measured (see unit)"] == pytest.approx(total / pop * 1000, abs=0.005)
            need = max(0, math.ceil(value * pop / 1000 - total))
            assert row["缺口(见缺口单位列) shortfall (see shortfall unit)"] == need
            assert row["是否达标 pass/fail"] == ("达标 pass" if need == 0 else "未达标 fail")
    assert sum(any(within[d]) for d in districts) >= 1  # some district holds institutions: the sums are not all 0


def test_non_numeric_beds_names_the_row(tmp_path):
    path = tmp_path / "inst.csv"
    pd.read_csv(INSTITUTIONS).assign(床位数=["50", "许多", "300", ""]).to_csv(path, index=False)
    inst = load_institutions(path)
    assert inst["beds"].iloc[:3].tolist() == ["50", "许多", "300"] and pd.isna(inst["beds"].iloc[3])
    assert inst.attrs["count_columns"] == {"beds": "床位数"}
    # a run whose norms need no beds goes on; one that checks beds per 1,000 stops in one line naming the row
    res = CliRunner().invoke(app, ["coverage", "--network", str(NETWORK), "--institutions", str(path),
                                   "--population", str(POPULATION), "--boundaries", str(DISTRICTS), "--out",
                                   str(tmp_path / "o"), "--norms", str(EXAMPLE_NORMS), "--cell-size", "300",
                                   "--no-isochrones", "--quiet"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and str(path) in lines[0]
    assert "row 2 (facility_id '2', name '光谷佳园社区卫生服务站'), column '床位数' (beds): '许多' is not a number" in lines[0]


def test_count_columns_of_a_layer(tmp_path):
    raw = pd.read_csv(INSTITUTIONS).assign(beds=[50.0, None, 300.0, 1200.0], 医生=[20, 3, 110, 520])
    path = tmp_path / "inst.geojson"
    gpd.GeoDataFrame(raw, geometry=gpd.points_from_xy(raw["lon"], raw["lat"]), crs=4326).to_file(path, driver="GeoJSON")
    inst = load_institutions(path)
    assert inst["doctors"].tolist() == [20.0, 3.0, 110.0, 520.0] and "nurses" not in inst
    assert inst["beds"].iloc[[0, 2, 3]].tolist() == [50.0, 300.0, 1200.0] and np.isnan(inst["beds"].iloc[1])
    assert inst.attrs["count_columns"] == {"beds": "beds", "doctors": "医生"}
