"""Report-ready tables: every CSV/XLSX a shipped example writes, read back as text, with openpyxl and with pandas.

The runs are the shipped examples at the smallest settings that exercise every table writer: the Makefile's
``make run`` (Wuhan, walk, with boundaries: coverage tables and norms), a capacity-limited coverage run, a
siting run and two scenarios compared on the Optics Valley (光谷) extract, a grid run on two Wuhan districts and
a referral run on Wuhan by car. Checked: (a) every column of every CSV is declared in
:data:`planner.tables.SCHEMAS` and its numbers have at most the decimals of its kind, read from the raw text;
(b) every header of every table, CSV and XLSX, is bilingual and carries its unit; (c) rounded parts add up to
their rounded totals.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from planner import datasets, tables
from planner.cli import app
from planner.tables import SCHEMAS, largest_remainder, report_table

from .test_referral_pipeline import REFERRAL, WUHAN_ARGS

ROOT = Path(__file__).resolve().parent.parent
GG = datasets.get_path("guanggu_osm")  # Optics Valley (光谷), Wuhan: another shipped extract
GG_INSTITUTIONS = ROOT / "tests" / "data" / "guanggu_institutions.csv"
POPULATION = datasets.get_path("wuhan_population")
DISTRICTS = datasets.get_path("wuhan_districts")
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
NUMBER = re.compile(r"-?\d+(?:\.(\d+))?(?:[eE][-+]?\d+)?")
BY_HEADER = {c.header: c for s in SCHEMAS.values() for c in (*s.columns.values(), *s.extra.values())}


def _ok(args: list[str]) -> None:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Output folders of the shipped examples, one per table writer (see the module docstring)."""
    tmp = tmp_path_factory.mktemp("tables")
    out = tmp / "out"
    out.mkdir()
    _ok(["coverage", *WUHAN_ARGS, "--mode", "walk", "--out", str(out / "walk"), "-q"])  # = make run (walk)
    beds = pd.read_csv(GG_INSTITUTIONS).assign(beds=[2, 1, 5, 30])
    beds.to_csv(tmp / "gg_beds.csv", index=False)
    gg = ["--network", str(GG), "--population", str(POPULATION), "--boundaries", str(DISTRICTS), "-q"]
    _ok(["coverage", *gg, "--institutions", str(tmp / "gg_beds.csv"), "--capacity-col", "beds", "--persons-per-unit",
         "100", "--no-isochrones", "--cell-size", "300", "--out", str(out / "capacity")])
    _ok(["site", *gg, "--institutions", str(GG_INSTITUTIONS), "--new-sites", "3", "--minutes", "10", "--cell-size", "300",
         "--candidate-spacing", "400", "--out", str(out / "site")])
    two = tmp / "two_districts.gpkg"
    d = gpd.read_file(DISTRICTS)
    d[d["name"].isin(["江汉区", "硚口区"])].to_file(two)
    wuhan = dict(zip(WUHAN_ARGS[::2], WUHAN_ARGS[1::2], strict=True))
    _ok(["grid", "--network", wuhan["--network"], "--institutions", wuhan["--institutions"], "--population",
         wuhan["--population"], "--boundaries", str(two), "--time-limit", "20", "--out", str(out / "grid"), "-q"])
    _ok(["referral", *WUHAN_ARGS, *REFERRAL, "--out", str(out / "referral"), "-q"])
    base = tmp / "base.toml"
    base.write_text(f'''name = "tb-base"
title = "光谷 基线"
[inputs]
network = "{GG}"
institutions = "{GG_INSTITUTIONS}"
population = "{POPULATION}"
boundaries = "{DISTRICTS}"
[analysis]
mode = "walk"
minutes = [10, 15]
isochrones = false
''', encoding="utf-8")
    less = tmp / "less.toml"
    less.write_text('extends = "base.toml"\nname = "tb-less"\n[edits]\nremove_institutions = ["1"]\n', encoding="utf-8")
    _ok(["compare", str(base), str(less), "--out-root", str(out / "scen"), "-q"])
    return out


def _schema(path: Path) -> str:
    return path.stem


def _raw_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def _xlsx_headers(path: Path) -> dict[str, list[str]]:
    wb = openpyxl.load_workbook(path)
    return {ws.title: [c.value for c in next(ws.iter_rows(max_row=1))] for ws in wb.worksheets}


def test_every_writer_ran(runs):
    """Each writer's tables are there, and `planner coverage` (make run) writes tables.xlsx and the summary CSVs."""
    names = {str(p.relative_to(runs)) for p in runs.rglob("*") if p.suffix in (".csv", ".xlsx")}
    assert {"walk/tables.xlsx", "walk/thresholds.csv", "walk/by_tier.csv", "walk/by_district.csv", "walk/norms.csv",
            "capacity/served.csv", "capacity/capacity_by_district.csv", "capacity/tables.xlsx", "site/sites.csv",
            "site/marginal_curve.csv", "grid/assignment.csv", "grid/grids.csv", "grid/districts.csv", "grid/norms.csv",
            "referral/referral.csv", "scen/tb-base/tables.xlsx", "scen/tb-base/by_district.csv",
            "scen/compare-tb-base-vs-tb-less/compare_by_district.csv",
            "scen/compare-tb-base-vs-tb-less/compare_by_tier.csv"} <= names
    assert {_schema(runs / n) for n in names if n.endswith(".csv")} <= set(SCHEMAS)


def test_csv_numbers_have_at_most_their_kinds_decimals(runs):
    """(a) Every CSV column is declared, and each number in the raw text has at most its kind's decimals."""
    files = sorted(runs.rglob("*.csv"))
    assert len(files) >= 18
    checked = 0
    for path in files:
        rows = _raw_csv(path)
        schema = SCHEMAS[_schema(path)]
        declared = {c.header: c for c in schema.columns.values()}
        assert rows and all(h in declared for h in rows[0]), (path, [h for h in rows[0] if h not in declared])
        for j, head in enumerate(rows[0]):
            col = declared[head]
            values = [r[j] for r in rows[1:] if r[j] != ""]
            if col.kind == "flag":
                assert set(values) <= {"True", "False"}, (path, head)
                continue
            if col.decimals is None:
                numeric = values and all(NUMBER.fullmatch(v) for v in values)
                assert not numeric or col.kind == "id", f"{path.name}: {head} holds numbers but is declared text"
                continue
            for v in values:
                m = NUMBER.fullmatch(v)
                assert m and "e" not in v.lower(), f"{path.name}: {head}: {v!r} is not a plain number"
                places = len(m.group(1) or "")
                if col.decimals == 0:
                    assert "." not in v, f"{path.name}: {head}: {v!r} should be a whole number"
                assert places <= col.decimals, f"{path.name}: {head}: {v!r} has more than {col.decimals} decimals"
                checked += 1
    assert checked > 500


def test_headers_are_bilingual_with_units_in_openpyxl_and_pandas(runs):
    """(b) Every header of every CSV and XLSX sheet has a Chinese character, an English word and its unit."""
    headers: list[tuple[str, str]] = []
    for path in sorted(runs.rglob("*.csv")):
        frame = pd.read_csv(path, encoding="utf-8-sig", nrows=5)
        assert list(frame.columns) == _raw_csv(path)[0]
        headers += [(path.name, h) for h in frame.columns]
    books = sorted(runs.rglob("*.xlsx"))
    assert len(books) == 4  # make run, the capacity run and both scenarios
    for path in books:
        by_openpyxl = _xlsx_headers(path)
        by_pandas = {k: list(v.columns) for k, v in pd.read_excel(path, sheet_name=None).items()}
        assert by_openpyxl == by_pandas and next(iter(by_pandas)) == "about"
        assert {"thresholds", "by_tier", "by_district"} <= set(by_pandas)
        headers += [(f"{path.name}!{s}", h) for s, hs in by_pandas.items() for h in hs]
    assert len(headers) > 150
    for where, h in headers:
        assert CJK.search(h) and LATIN_WORD.search(h), f"{where}: header {h!r} is not bilingual"
        col = BY_HEADER[h]
        uzh, uen = col.units
        if uzh:
            assert f"({uzh})" in h and h.endswith(f"({uen})" if uen else ""), f"{where}: {h!r} lacks its unit"
    # the units named in the issue, in the make run's tables
    walk = {h for w, h in headers if w.startswith(("by_district.csv", "thresholds.csv"))}
    assert {"覆盖人口(人) population covered (persons)", "覆盖率(%) coverage (%)",
            "平均出行时间(分钟) mean travel time (min)"} <= walk


def test_about_sheet_names_the_run_and_its_credits(runs):
    """The ``about`` sheet of make run's tables.xlsx: mode, threshold, population label and the data's credits."""
    summary = json.loads((runs / "walk" / "summary.json").read_text(encoding="utf-8"))
    wb = openpyxl.load_workbook(runs / "walk" / "tables.xlsx")
    lines = [c.value for r in wb["about"].iter_rows(min_row=2) for c in r]
    assert "出行方式 mode: walk; 阈值 threshold: 15 分钟 min" in lines
    assert f"人口口径 population: {summary['population_unit']}" in lines
    from planner.credits import credit_lines  # H1's module (issue 16); the coordinator checks this line lands
    expected = credit_lines(summary.get("credits"))
    assert expected and lines[-len(expected):] == expected
    assert any("OpenStreetMap" in x for x in expected) and any("WorldPop" in x for x in expected)


def _frame(path: Path) -> pd.DataFrame:
    """A written table read back with its columns named by key (:func:`planner.tables.headers`)."""
    return pd.read_csv(path, encoding="utf-8-sig").rename(columns={v: k for k, v in tables.headers(path.stem).items()})


def test_rounded_parts_add_up_to_rounded_totals(runs):
    """(c) Rounded parts add up to their rounded totals.

    Rows: covered + gap = population, served + out of reach + over capacity = total, tiers = institutions;
    columns: cell and grid populations add up to the run's figures; increments and changes follow the totals.
    """
    d = _frame(runs / "walk" / "by_district.csv")
    assert len(d) >= 10 and (d["population_covered"] + d["gap_population"] == d["population"]).all()
    summary = json.loads((runs / "walk" / "summary.json").read_text(encoding="utf-8"))
    raw = pd.DataFrame(summary["by_district"])
    naive = raw["population_covered"].round() + raw["gap_population"].round() != raw["population"].round()
    assert naive.any()  # rounding each figure alone would break the books on this real table
    c = _frame(runs / "capacity" / "capacity_by_district.csv")
    assert len(c) >= 2 and c["unserved_over_capacity"].sum() > 0  # capacity-limited
    assert (c["population_served"] + c["unserved_out_of_reach"] + c["unserved_over_capacity"] == c["population_total"]).all()
    assert (c["unserved_out_of_reach"] + c["unserved_over_capacity"] == c["population_unserved"]).all()
    g = _frame(runs / "grid" / "districts.csv")
    assert (g[[f"institutions_{t}" for t in ("tertiary", "secondary", "primary", "station")]].sum(axis=1)
            == g["institutions"]).all() and g["institutions"].sum() > 0
    gs = json.loads((runs / "grid" / "summary.json").read_text(encoding="utf-8"))
    a = _frame(runs / "grid" / "assignment.csv")
    assert a["population"].dtype == np.int64 and abs(a["population"].sum() - gs["population_total"]) <= 1
    assert abs(_frame(runs / "grid" / "grids.csv")["population"].sum() - gs["population_assigned"]) <= 1
    curve = _frame(runs / "site" / "marginal_curve.csv")
    ss = json.loads((runs / "site" / "summary.json").read_text(encoding="utf-8"))
    cov = [round(ss["population_covered_before"]), *curve["covered_population"]]
    assert len(curve) == 3 and list(curve["added_population"]) == list(np.diff(cov))
    sites = _frame(runs / "site" / "sites.csv")
    assert abs(sites["added_population"].sum() - (ss["population_covered_after"] - ss["population_covered_before"])) <= 1
    for name in ("compare_by_district", "compare_by_tier"):
        t = _frame(runs / "scen" / "compare-tb-base-vs-tb-less" / f"{name}.csv").dropna(subset=["change_pp"])
        tenths = (t["coverage_pct_b"] * 10).round() - (t["coverage_pct_a"] * 10).round()
        assert len(t) and ((t["change_pp"] * 10).round() == tenths).all()
        assert (t["change_pp"] < 0).any()  # removing an institution loses coverage somewhere


def test_largest_remainder_by_hand():
    """Four halves make 2: naive rounding (to even) gives 0, the largest-remainder rounding 1 + 1 + 0 + 0."""
    assert np.round([0.5, 0.5, 0.5, 0.5]).sum() == 0
    assert largest_remainder([0.5, 0.5, 0.5, 0.5], 2.0).tolist() == [1.0, 1.0, 0.0, 0.0]
    assert largest_remainder([1.26, 2.26, 3.48], 7.0, 1).tolist() == [1.3, 2.2, 3.5]
    assert largest_remainder([5.0, np.nan], 5.0).tolist()[0] == 5.0


def test_report_table_rounds_by_kind_and_refuses_undeclared_columns():
    t = report_table(pd.DataFrame({"minutes": [15.0], "population_covered": [109631.54806137085],
                                   "coverage_pct": [21.3449]}), "thresholds")
    assert t.to_dict("records") == [{"阈值(分钟) threshold (min)": 15.0, "覆盖人口(人) population covered (persons)": 109632,
                                     "覆盖率(%) coverage (%)": 21.3}]
    with pytest.raises(tables.UndeclaredColumnError, match="thresholds: column.*speed"):
        report_table(pd.DataFrame({"minutes": [15.0], "speed": [4.0]}), "thresholds")


def test_writers_default_to_offline_maps_on_the_auto_basemap():
    """Every writer's map is self-contained on the basemap of its study area unless asked otherwise (issue 16)."""
    import inspect

    from planner import exports

    writers = [exports.write_coverage_outputs, exports.write_siting_outputs, exports.write_grid_outputs,
               exports.write_referral_outputs, exports.write_scenario_outputs, exports.write_comparison_outputs,
               exports.compare_scenarios]
    for f in writers:
        params = inspect.signature(f).parameters
        assert (params["offline"].default, params["basemap"].default) == (True, "auto"), f.__name__


def test_table_percentages_are_those_the_terminal_prints(runs):
    """thresholds.csv of make run shows each coverage as ``planner coverage`` prints it (f"{pct:.1f}%").

    The 5-minute walk coverage is 2.15% in summary.json, stored as 2.1499…: printed "2.1%"; NumPy's rounding
    would write 2.2 in the table.
    """
    summary = json.loads((runs / "walk" / "summary.json").read_text(encoding="utf-8"))
    rows = _raw_csv(runs / "walk" / "thresholds.csv")[1:]
    assert [r[2] for r in rows] == [f"{t['coverage_pct']:.1f}" for t in summary["thresholds"]]
    assert summary["thresholds"][0]["coverage_pct"] == 2.15 and rows[0][2] == "2.1"


def test_capacity_parts_and_subtotal_by_hand():
    """10.4 served + 0.3 + 0.3 unserved = 11: whole persons 11 + 0 + 0, and the unserved subtotal 0 (not 0.6 → 1)."""
    row = {"district": "甲", "population_total": 11.0, "population_served": 10.4, "population_unserved": 0.6,
           "unserved_out_of_reach": 0.3, "unserved_over_capacity": 0.3, "served_pct": 94.5454}
    t = report_table(pd.DataFrame([row]), "capacity_by_district").iloc[0].tolist()
    assert t == ["甲", 11, 11, 0, 0, 0, 94.5]
