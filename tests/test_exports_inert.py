"""Exports are inert: no spreadsheet formula in any CSV/XLSX, no terminal control sequence from the user's cells.

Real runs on Optics Valley (光谷) with institutions named ``=1+1``, ``+SUM(A1)``, ``@cmd``, ``-2+3`` and
``<tab>=x`` and districts named ``=1+1`` and ``@SUM(1)``: every CSV is read back with the ``csv`` module and
every XLSX with openpyxl, and no cell may begin with a formula trigger (OWASP CSV Injection) or be a formula.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from planner import datasets, tables
from planner.cli import _logging_to_stderr, app
from planner.io import FORMULA_TRIGGERS, neutralise_table, neutralise_text, write_csv, write_xlsx
from planner.tables import read_report_csv

NETWORK = datasets.get_path("guanggu_osm")  # bounds 114.49986-114.5379 E, 30.47688-30.49247 N
POPULATION = datasets.get_path("wuhan_population")
DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parent.parent
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
# name, lon, lat, tier: positions of tests/data/guanggu_institutions.csv plus one tertiary in the west
INSTITUTIONS = [
    ("=1+1", 114.50030, 30.49170, "一级"),
    ("+SUM(A1)", 114.51300, 30.48110, "一级"),
    ("@cmd", 114.52190, 30.48950, "二级"),
    ("-2+3", 114.53570, 30.48540, "三级甲等"),
    ("\t=x", 114.50800, 30.48500, "三级甲等"),
]
DISTRICTS = {"=1+1": (114.48, 30.46, 114.519, 30.51), "@SUM(1)": (114.519, 30.46, 114.56, 30.51)}


# ------------------------------------------------------------------------------------------ the neutraliser


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=x", "\r=x", "\n=x", "=", "-"])
def test_neutralise_text_quotes_every_trigger(text):
    """Each OWASP trigger at the start of a cell gets a leading single quote."""
    assert neutralise_text(text) == "'" + text
    assert FORMULA_TRIGGERS == TRIGGERS  # OWASP's list: = + - @ tab CR LF


@pytest.mark.parametrize("text", ["光谷社区卫生服务中心", "", "a=b", "1-2", " =1+1", "'=1+1", "2+3"])
def test_neutralise_text_leaves_plain_text(text):
    """Text that cannot start a formula is returned as it is."""
    assert neutralise_text(text) == text


def test_neutralise_table_keeps_numbers_and_missing_values():
    """Text cells, headers and the index are neutralised; numbers, booleans and missing values are not."""
    df = pd.DataFrame({"=name": ["=1+1", "甲", "-x"], "change_pp": [-2.5, np.nan, 0.0], "n": [-3, 1, 2],
                       "moved": [True, False, True], "tier": pd.Categorical(["@a", "b", "@a"]),
                       "district": np.array(["+d", None, "乙"], dtype=object)},
                      index=pd.Index(["-1", "2", "3"], name="@id"))
    t = neutralise_table(df, index=True)
    assert t.columns.tolist() == ["'=name", "change_pp", "n", "moved", "tier", "district"]
    assert t["'=name"].tolist() == ["'=1+1", "甲", "'-x"]
    assert t["tier"].tolist() == ["'@a", "b", "'@a"]
    assert t["district"].iloc[0] == "'+d" and pd.isna(t["district"].iloc[1]) and t["district"].iloc[2] == "乙"
    assert t["change_pp"].dtype == np.float64 and t["change_pp"].iloc[0] == -2.5 and math.isnan(t["change_pp"].iloc[1])
    assert t["n"].dtype == np.int64 and t["n"].tolist() == [-3, 1, 2] and t["moved"].dtype == bool
    assert t.index.tolist() == ["'-1", "2", "3"] and t.index.name == "'@id"
    assert neutralise_table(df).index.tolist() == ["-1", "2", "3"]  # index untouched when it is not written
    assert df["=name"].iloc[0] == "=1+1"  # the input is not modified


def test_write_csv_and_xlsx_round_trip(tmp_path):
    """The CSV quotes its text and keeps numbers bare; the XLSX holds strings and numbers, no formula."""
    df = pd.DataFrame({"区县 district": ["=1+1", "a,=2+2", "\x07=3"], "change_pp": [-1.25, np.nan, 4.0], "n": [-7, 0, 1]})
    p = write_csv(df, tmp_path / "t.csv")
    raw = p.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with p.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["区县 district", "change_pp", "n"]
    assert rows[1] == ["'=1+1", "-1.25", "-7"] and rows[2] == ["a,=2+2", "", "0"]
    assert '"a,=2+2"' in raw.decode("utf-8-sig") and ",-1.25," in raw.decode("utf-8-sig")  # text quoted, numbers bare
    back = pd.read_csv(p, encoding="utf-8-sig")
    assert back["change_pp"].iloc[0] == -1.25 and back["n"].tolist() == [-7, 0, 1]

    x = write_xlsx({"about": pd.DataFrame({"=note": ["@x"]}), "by_district": df}, tmp_path / "t.xlsx")
    wb = openpyxl.load_workbook(x)
    assert wb.sheetnames == ["about", "by_district"]
    assert [[c.value for c in r] for r in wb["about"].iter_rows()] == [["'=note"], ["'@x"]]
    cells = {c.coordinate: c for r in wb["by_district"].iter_rows() for c in r}
    assert cells["A2"].value == "'=1+1" and cells["A2"].data_type == "s"
    assert cells["A4"].value == "'=3"  # XLSX cannot hold BEL: dropped first, then neutralised
    assert cells["B2"].value == -1.25 and cells["B2"].data_type == "n" and cells["C2"].value == -7
    assert all(c.data_type != "f" for c in cells.values())


# ------------------------------------------------------------------------------------------ real runs


def _write_inputs(folder: Path) -> tuple[Path, Path]:
    inst = folder / "inst.csv"
    with inst.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(["name", "lon", "lat", "tier"])
        w.writerows(INSTITUTIONS)
    districts = folder / "districts.gpkg"
    gpd.GeoDataFrame({"name": list(DISTRICTS)}, geometry=[shapely.box(*b) for b in DISTRICTS.values()],
                     crs="EPSG:4326").to_file(districts, layer="districts")
    return inst, districts


def _cells(folder: Path) -> dict[str, list[tuple[str, object]]]:
    """Every CSV and XLSX cell under `folder`, as (where, value, data type) per file."""
    found: dict[str, list[tuple[str, object]]] = {}
    for p in sorted(folder.rglob("*.csv")):
        with p.open(encoding="utf-8-sig", newline="") as f:
            found[str(p.relative_to(folder))] = [(f"row {i}", v, "csv") for i, row in enumerate(csv.reader(f)) for v in row]
    for p in sorted(folder.rglob("*.xlsx")):
        wb = openpyxl.load_workbook(p)
        found[str(p.relative_to(folder))] = [(f"{ws.title}!{c.coordinate}", c.value, c.data_type)
                                             for ws in wb.worksheets for r in ws.iter_rows() for c in r]
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`planner site`, `grid` and `compare` (two scenarios) on the hostile names; their output folders."""
    tmp = tmp_path_factory.mktemp("inert")
    inst, districts = _write_inputs(tmp)
    (tmp / "out" / "scen").mkdir(parents=True)
    common = ["--network", str(NETWORK), "--institutions", str(inst), "--population", str(POPULATION),
              "--boundaries", str(districts), "-q"]
    results = {}
    results["site"] = CliRunner().invoke(app, ["site", *common, "--candidates", "institutions:primary",
                                               "--service-tier", "secondary", "--service-tier", "tertiary", "--new-sites", "1",
                                               "--minutes", "10", "--cell-size", "300", "--out", str(tmp / "out" / "site")])
    # 1000 m cells: with 500 m no cell changes lead, and maps.add_cell_classes fails on the empty "moved" layer
    results["grid"] = CliRunner().invoke(app, ["grid", *common, "--time-limit", "10", "--out", str(tmp / "out" / "grid")])
    base = tmp / "base.toml"
    base.write_text(f'''name = "inert-base"
title = "inert"
[inputs]
network = "{NETWORK}"
institutions = "{inst}"
population = "{POPULATION}"
boundaries = "{districts}"
[analysis]
mode = "walk"
minutes = [10, 15]
isochrones = false
''', encoding="utf-8")
    less = tmp / "less.toml"
    less.write_text('extends = "base.toml"\nname = "inert-less"\n[edits]\nremove_institutions = ["1", "2"]\n', encoding="utf-8")
    results["compare"] = CliRunner().invoke(app, ["compare", str(base), str(less), "--out-root", str(tmp / "out" / "scen"),
                                                  "-q", "--offline"])
    return tmp / "out", results


def test_runs_succeed_and_write_tables(runs):
    """Every run succeeds and writes its CSV/XLSX tables."""
    out, results = runs
    for name, res in results.items():
        assert res.exit_code == 0, (name, res.output)
    files = set(_cells(out))
    assert {"site/sites.csv", "grid/assignment.csv", "grid/grids.csv", "grid/districts.csv", "scen/inert-base/tables.xlsx",
            "scen/inert-base/by_district.csv", "scen/inert-less/tables.xlsx",
            "scen/compare-inert-base-vs-inert-less/compare_by_district.csv"} <= files


def test_no_cell_is_a_formula(runs):
    """No CSV/XLSX cell of any run begins with a formula trigger or is stored as a formula."""
    out, _ = runs
    found = _cells(out)
    assert len(found) >= 8
    for file, cells in found.items():
        for where, value, kind in cells:
            assert kind != "f", f"{file} {where}: formula {value!r}"
            if isinstance(value, str) and not NUMBER.fullmatch(value):  # a bare "-7.1" in a CSV is a number
                assert not value.startswith(TRIGGERS), f"{file} {where}: {value!r} begins with a formula trigger"


def test_names_arrive_neutralised_and_numbers_stay_numbers(runs):
    """Institution and district names reach every table quoted; negative numbers stay bare numbers."""
    out, _ = runs
    sites = read_report_csv(out / "site" / "sites.csv", dtype={"facility_id": str})
    assert set(sites["district"]) <= {"'=1+1", "'@SUM(1)"} and len(sites) >= 1
    assert set(sites["name"]) <= {"'=1+1", "'+SUM(A1)"}  # the primary institutions were the candidates
    grids = pd.read_csv(out / "grid" / "grids.csv", encoding="utf-8-sig")
    assert set(grids["牵头医院 lead hospital"]) == {"'-2+3", "'=x"}  # "\t=x" loses its tab in loading, not its quote
    assign = read_report_csv(out / "grid" / "assignment.csv")
    assert set(assign["district"].dropna()) == {"'=1+1", "'@SUM(1)"}
    assert set(assign["lead_name"].dropna()) == {"'-2+3", "'=x"}
    assert set(pd.read_csv(out / "grid" / "districts.csv", encoding="utf-8-sig").iloc[:, 0]) == {"'=1+1", "'@SUM(1)"}
    wb = openpyxl.load_workbook(out / "scen" / "inert-base" / "tables.xlsx")
    names = {c.value: c.data_type for r in wb["by_district"].iter_rows(min_row=2, max_col=1) for c in r}
    assert names == {"'=1+1": "s", "'@SUM(1)": "s"}
    comp = read_report_csv(out / "scen" / "compare-inert-base-vs-inert-less" / "compare_by_district.csv")
    west = comp.set_index("district").loc["'=1+1"]
    assert comp["change_pp"].dtype == np.float64 and west["change_pp"] < 0  # removing both western primaries loses people
    with (out / "scen" / "compare-inert-base-vs-inert-less" / "compare_by_district.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, quoting=csv.QUOTE_NONNUMERIC))  # unquoted fields must be numbers
    header = rows[0]
    row = next(r for r in rows[1:] if r[header.index(tables.header("district"))] == "'=1+1")
    change = header.index(tables.header("change_pp", "compare_by_district"))
    assert row[change] == pytest.approx(west["change_pp"])  # a bare, negative number


# ------------------------------------------------------------------------------------------ terminal output


def _clean(text: str, *, progress_bars: bool = False) -> bool:
    """No escape, BEL or other control character; tqdm's own carriage returns allowed on stderr."""
    allowed = {"\n", "\r"} if progress_bars else {"\n"}
    return all(ch in allowed or (" " <= ch < "\x7f") or ch > "\x9f" for ch in text)


def test_escape_sequences_in_a_cell_do_not_reach_stderr(tmp_path):
    """A bad cell quoted in the one-line error arrives without its escape sequences."""
    bad = tmp_path / "inst.csv"
    bad.write_text("name,lon,lat\n甲,114.5003,30.4917\n乙,\x1b[2J\x1b]0;pwned\x07114.5130,30.4811\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["coverage", "--network", str(NETWORK), "--institutions", str(bad), "--population",
                                   str(POPULATION), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert "row 2" in res.stderr and "is not a number" in res.stderr and "114.5130" in res.stderr
    assert _clean(res.stderr) and len(res.stderr.strip().splitlines()) == 1


def test_escape_sequences_in_a_name_do_not_reach_the_terminal(tmp_path):
    """A site's name printed by `planner site` arrives without escapes, BEL or line breaks."""
    inst = pd.read_csv(DATA / "guanggu_institutions.csv")
    inst.loc[0, "name"] = "\x1b[31m红色\x1b[0m\x07社区\x1b]0;pwned\x07\r\n卫生服务中心"  # the only primary institution
    inst.to_csv(tmp_path / "inst.csv", index=False)
    res = CliRunner().invoke(app, ["site", "--network", str(NETWORK), "--institutions", str(tmp_path / "inst.csv"),
                                   "--population", str(POPULATION), "--candidates", "institutions:primary",
                                   "--service-tier", "secondary", "--service-tier", "tertiary", "--new-sites", "1",
                                   "--minutes", "10", "--cell-size", "300", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "#1 红色社区 卫生服务中心 (" in res.stdout  # printed, without its escapes; the line break became a space
    assert _clean(res.stdout) and _clean(res.stderr, progress_bars=True)


def test_log_lines_are_cleaned(capsys):
    """Log records are one clean line each on stderr."""
    with _logging_to_stderr(quiet=False):
        logging.getLogger("planner.institutions").warning("institution %s: far from a road", "\x1b[1m甲\x1b[0m\x07\n乙")
        logging.getLogger("planner.institutions").info("plain %d", 3)
    err = capsys.readouterr().err
    assert err == "WARNING: institution 甲 乙: far from a road\nINFO: plain 3\n"
