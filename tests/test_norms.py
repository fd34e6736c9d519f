"""Planning norms per district (planner/norms.py): the norms file, the checks on a hand-built case, the table."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from planner import InvalidValueError, MissingColumnError
from planner.norms import (
    DEFAULT_NORMS_PATH,
    NORMS_HEADERS,
    build_districts_table,
    check_norms,
    count_centres,
    load_norms,
    norms_table,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "scenarios" / "norms" / "xx_city_example.toml"
WUHAN = REPO / "geodata" / "wuhan"

NORMS = """\
name = "hand-built"

[[norm]]
id = "centres"
kind = "residents_per_centre"
value = 50000
unit = "residents per centre"
source = "MoH principles"
standing = "secondary"

[[norm]]
id = "cov15"
kind = "coverage"
value = 90
unit = "%"
minutes = 15
source = "NHC"
standing = "secondary"

[[norm]]
id = "beds"
kind = "beds"
value = 9.51
unit = "per 1,000 residents"
source = "XX city report"
standing = "example"

[[norm]]
id = "doctors"
kind = "doctors"
value = 30
unit = "每万人"

[[norm]]
id = "off"
kind = "nurses"
value = 5.57
unit = "per 1000"
enabled = false
"""

# three districts: one short of centres, coverage and beds; one that passes (doctors exactly at the target);
# one with no centre and no beds figures
DISTRICTS = pd.DataFrame({
    "district": ["洪山区", "江岸区", "汉南区"],
    "population": [252_000, 40_000, 100_000],
    "n_centres": [4, 1, 0],
    "covered_pct": [82.5, 95.0, 60.0],
    "beds": [1800.0, 400.0, np.nan],
    "doctors": [700, 120, 250],
})


def write(tmp: Path, text: str, name: str = "norms.toml") -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def hand_norms(tmp_path):
    return load_norms(write(tmp_path, NORMS))


def test_hand_built_case_rows(hand_norms):
    rows = check_norms(hand_norms, districts_table=DISTRICTS)
    # 4 enabled norms x 3 districts, districts in table order within each norm in file order
    assert rows["norm"].tolist() == ["centres"] * 3 + ["cov15"] * 3 + ["beds"] * 3 + ["doctors"] * 3
    assert rows["district"].tolist() == ["洪山区", "江岸区", "汉南区"] * 4
    r = rows.set_index(["norm", "district"])

    # residents per centre: ceil(252,000 / 50,000) = 6 needed, 4 exist; 40,000 <= 50,000; none for 100,000
    assert r.loc[("centres", "洪山区"), "measured"] == 63_000
    assert r.loc[("centres", "洪山区"), "gap_en"] == (
        "洪山区: 1 centre per 63,000 residents (4 centres, 252,000 residents); norm ≤ 50,000 → 2 more centres")
    assert r.loc[("centres", "洪山区"), "gap_zh"] == (
        "洪山区: 每 63,000 名居民 1 所社区卫生服务中心 (共 4 所, 252,000 人); 标准 ≤ 50,000 人/所 → 需增加 2 所")
    assert r.loc[("centres", "江岸区"), "gap_en"] == (
        "江岸区: 1 centre per 40,000 residents (1 centre, 40,000 residents); norm ≤ 50,000 → meets the norm")
    assert r.loc[("centres", "江岸区"), "gap_zh"].endswith("标准 ≤ 50,000 人/所 → 达标")
    assert math.isnan(r.loc[("centres", "汉南区"), "measured"])
    assert r.loc[("centres", "汉南区"), "gap_en"] == "汉南区: no centre for 100,000 residents; norm ≤ 50,000 → 2 more centres"
    assert r.loc[("centres", "汉南区"), "gap_zh"] == (
        "汉南区: 100,000 名居民, 无社区卫生服务中心; 标准 ≤ 50,000 人/所 → 需增加 2 所")

    # coverage: (90 - 82.5) % of 252,000 = 18,900 residents; (90 - 60) % of 100,000 = 30,000
    assert r.loc[("cov15", "洪山区"), "gap_en"] == (
        "洪山区: 82.5 % of residents within 15 min; norm ≥ 90 % → 18,900 more residents to cover")
    assert r.loc[("cov15", "洪山区"), "gap_zh"] == "洪山区: 15 分钟内覆盖 82.5% 的居民; 标准 ≥ 90% → 需再覆盖 18,900 人"
    assert r.loc[("cov15", "江岸区"), "gap_en"].endswith("→ meets the norm")

    # beds per 1,000 (an example: a target, not a norm): 9.51 x 252 = 2,396.52 -> 597 more than 1,800
    assert r.loc[("beds", "洪山区"), "measured"] == pytest.approx(1800 / 252)
    assert r.loc[("beds", "洪山区"), "gap_en"] == (
        "洪山区: 7.14 beds per 1,000 residents (1,800 for 252,000 residents); target ≥ 9.51 → 597 more beds")
    assert r.loc[("beds", "洪山区"), "gap_zh"] == (
        "洪山区: 每千人床位 7.14 张 (共 1,800 张, 252,000 人); 目标 ≥ 9.51 → 需增加 597 张")
    assert r.loc[("beds", "江岸区"), "measured"] == pytest.approx(10.0)
    assert r.loc[("beds", "汉南区"), "gap_en"] == "汉南区: not checked (no beds figures)"
    assert r.loc[("beds", "汉南区"), "gap_zh"] == "汉南区: 未检查 (无床位数据)"

    # doctors per 10,000 (no source: a user setting): 30 x 25.2 = 756 -> 56 more; 120 for 40,000 is exactly 30
    assert r.loc[("doctors", "洪山区"), "shortfall"] == 56
    assert r.loc[("doctors", "江岸区"), "measured"] == pytest.approx(30.0)
    assert r.loc[("doctors", "江岸区"), "gap_en"] == (
        "江岸区: 30 doctors per 10,000 residents (120 for 40,000 residents); target ≥ 30 → meets the target")
    assert r.loc[("doctors", "汉南区"), "shortfall"] == 50

    assert rows["passed"].tolist() == [False, True, False, False, True, False, False, True, pd.NA, False, True, False]
    assert rows["shortfall"].tolist() == [2, 0, 2, 18_900, 0, 30_000, 597, 0, pd.NA, 56, 0, 50]
    assert rows["shortfall_unit"].tolist()[::3] == ["centres", "residents", "beds", "doctors"]
    assert rows["comparison"].tolist()[::3] == ["≤", "≥", "≥", "≥"]
    assert rows["unit"].tolist()[::3] == ["residents per centre", "%", "per 1,000 residents", "per 10,000 residents"]
    assert rows["standing"].tolist()[::3] == ["secondary", "secondary", "example", "user"]
    assert rows["source"].tolist()[::3] == ["MoH principles", "NHC", "XX city report", "user setting"]


def test_specific_columns_win_and_missing_columns_leave_norms_unchecked(hand_norms):
    table = DISTRICTS[["district", "population"]].assign(n_centres=[0, 0, 0], n_centres_centres=[6, 1, 2],
                                                         covered_pct=[0.0, 0, 0], covered_pct_15min=[90.0, 95, 90])
    rows = check_norms(hand_norms, districts_table=table).set_index(["norm", "district"])
    assert rows.xs("centres")["passed"].tolist() == [True, True, True]
    assert rows.xs("cov15")["passed"].tolist() == [True, True, True]
    assert rows.xs("beds")["passed"].isna().all() and rows.xs("doctors")["passed"].isna().all()
    assert rows.loc[("doctors", "洪山区"), "gap_zh"] == "洪山区: 未检查 (无执业(助理)医师数据)"


def test_norms_table_has_bilingual_headers_and_words(hand_norms):
    table = norms_table(check_norms(hand_norms, districts_table=DISTRICTS))
    assert list(table.columns) == list(NORMS_HEADERS.values())
    assert table.columns[0] == "区县 district" and "是否达标 pass/fail" in table.columns
    assert table["是否达标 pass/fail"].tolist()[6:9] == ["未达标 fail", "达标 pass", "未检查 not checked"]
    assert table["实测值(见单位列) measured (see unit)"].tolist()[6] == 7.14


@pytest.mark.parametrize(("table", "match"), [
    (DISTRICTS.drop(columns="population"), r"no column 'population'"),
    (pd.concat([DISTRICTS, DISTRICTS.iloc[:1]]), r"district '洪山区' is listed twice"),
    (DISTRICTS.assign(population=[1, -5, 3]), r"district '江岸区', column 'population': -5 is not a number >= 0"),
    (DISTRICTS.assign(n_centres=[1.5, 1, 0]), r"district '洪山区', column 'n_centres': 1.5 is not a whole number"),
    (DISTRICTS.assign(covered_pct=[50, 101, 0]), r"'covered_pct': 101 is not a percent from 0 to 100"),
    (DISTRICTS.assign(beds=["x", 1, 2]), r"district '洪山区', column 'beds': 'x' is not a number >= 0"),
])
def test_bad_districts_table(hand_norms, table, match):
    with pytest.raises((InvalidValueError, MissingColumnError), match=match):
        check_norms(hand_norms, districts_table=table)


def test_shipped_default_loads_and_every_norm_is_sourced():
    norms = load_norms()
    assert norms.path == DEFAULT_NORMS_PATH and len(norms) == 6
    raw = tomllib.loads(DEFAULT_NORMS_PATH.read_text(encoding="utf-8"))["norm"]
    assert all(r.get("source") and r.get("standing") in {"secondary", "local", "example"} for r in raw)
    assert [n.id for n in norms.enabled] == ["residents_per_centre", "coverage_15min"]
    centre = norms["residents_per_centre"]
    assert (centre.value, centre.tiers, centre.standing) == (50_000.0, ("primary",), ("secondary",))
    assert "社区卫生服务中心" in centre.name_contains and "城市社区卫生服务机构设置原则" in centre.source
    assert (norms["coverage_15min"].value, norms["coverage_15min"].minutes) == (90.0, 15.0)
    # the seed report's measured values are listed, not checked, and stand as examples
    for nid, value in (("beds_per_1000", 9.51), ("doctors_per_1000", 4.21), ("nurses_per_1000", 5.57)):
        n = norms[nid]
        assert (n.value, n.enabled, n.standing, n.is_claim) == (value, False, ("example",), False)


def test_xx_city_example_loads():
    norms = load_norms(EXAMPLE)
    assert [(n.kind, n.value, n.unit, n.enabled) for n in norms] == [
        ("beds", 9.51, "per 1,000 residents", True), ("doctors", 4.21, "per 1,000 residents", True),
        ("nurses", 5.57, "per 1,000 residents", True)]
    assert all(n.standing == ("example",) and "not a national standard" in n.note for n in norms)


@pytest.mark.parametrize(("body", "match"), [
    (NORMS.replace('minutes = 15\n', 'minutes = 15\ncolour = "red"\n'),
     r"norms\.toml, line 17: 'norm\[1\]\.colour' is not a known key; fix: use one of"),
    (NORMS.replace('value = 9.51\nunit = "per 1,000 residents"', 'value = 9.51\nunit = "beds per hectare"'),
     r"norms\.toml, line 24: 'norm\[2\]\.unit' 'beds per hectare' is not a known unit; fix: use 'per 1,000 residents'"),
    (NORMS.replace('unit = "%"', 'unit = "per 1,000 residents"'),
     r"line 15: 'norm\[1\]\.unit' 'per 1,000 residents' does not fit a 'coverage' norm; fix: use '%'"),
    (NORMS.replace('id = "centres"\nkind = "residents_per_centre"\nvalue = 50000\n',
                   'id = "centres"\nkind = "residents_per_centre"\nvalue = 50000\nminutes = 15\n'),
     r"line 7: 'norm\[0\]\.minutes' is not a key of a 'residents_per_centre' norm \(only of coverage\)"),
    (NORMS.replace("value = 90\n", "value = 190\n"), r"line 14: 'norm\[1\]\.value' 190 % is above 100 %"),
    (NORMS.replace("value = 90\n", 'value = "90"\n'), r"line 14: 'norm\[1\]\.value' '90' is not a positive number"),
    (NORMS.replace('standing = "example"', 'standing = "national"'), r"line 26: 'norm\[2\]\.standing' 'national' is not"),
    (NORMS.replace('kind = "beds"', 'kind = "hospitals"'), r"line 22: 'norm\[2\]\.kind' 'hospitals' is not a kind"),
    (NORMS.replace('id = "off"', 'id = "beds"'), r"line 35: 'norm\[4\]\.id' 'beds' is used twice"),
    ("name = 'x'\ncolour = 1\n",
     r"norms\.toml, line 2: 'colour' is not a known key; fix: use one of capacity_defaults, name, norm"),
])
def test_bad_norms_file_names_file_line_and_key(tmp_path, body, match):
    with pytest.raises(InvalidValueError, match=match):
        load_norms(write(tmp_path, body))


def test_norms_file_in_gbk_reads_as_utf8(tmp_path):
    path = tmp_path / "gbk.toml"
    path.write_bytes(NORMS.replace('unit = "residents per centre"', 'unit = "人/所"').encode("gbk"))
    norms = load_norms(path)
    assert norms["centres"].unit == "residents per centre" and norms["doctors"].per_residents == 10_000


def test_build_districts_table_by_hand(hand_norms):
    cells = pd.DataFrame({"district": ["A", "A", "A", "B", None],
                          "population": [100.0, 300.0, 600.0, 50.0, 999.0],
                          "travel_time_min": [5.0, 15.0, np.nan, 20.0, 1.0]})
    inst = pd.DataFrame({"district": ["A", "A", "B", None, "B"],
                         "tier": ["primary", "primary", "primary", "primary", "station"],
                         "name": ["关山街社区卫生服务中心", "武汉大学医院", "车站社区卫生服务中心", "X社区卫生服务中心",
                                  "Y社区卫生服务站"],
                         "beds": [10, 20, np.nan, 5, 1]})
    table = build_districts_table(cells, inst, norms=hand_norms)
    assert table["district"].tolist() == ["A", "B"]
    assert table["population"].tolist() == [1000.0, 50.0]
    assert table["n_centres_centres"].tolist() == [1, 1]
    assert table["covered_pct_15min"].tolist() == [40.0, 0.0]  # 100 + 300 of 1,000 within 15 min; 20 min > 15
    assert table["beds"].iloc[0] == 30.0 and math.isnan(table["beds"].iloc[1])  # one of B's figures is missing
    whole = build_districts_table(cells, inst, norms=hand_norms, district_population=pd.Series({"A": 4000.0}))
    assert whole["population"].tolist() == [4000.0, 50.0] and whole["covered_pct_15min"].tolist() == [40.0, 0.0]
    rows = check_norms(hand_norms, districts_table=table).set_index(["norm", "district"])
    assert rows.loc[("cov15", "A"), "shortfall"] == 500  # (90 - 40) % of 1,000
    with pytest.raises(InvalidValueError, match=r"row 2 \(facility_id '1', name '武汉大学医院'\), column 'beds' \(beds\): "
                                                r"'-1' is negative"):
        build_districts_table(cells, inst.assign(beds=[1, -1, 0, 0, 0]), norms=hand_norms)


def test_wuhan_norms_from_a_coverage_run():
    from planner import datasets
    from planner.pipeline import load_case
    from planner.pipeline.coverage import analyse_case

    case = load_case(datasets.get_path("wuhan_roads"), datasets.get_path("wuhan_institutions"),
                     datasets.get_path("wuhan_population"), boundaries=datasets.get_path("wuhan_districts"), mode="walk")
    inst = case.institutions
    norms = load_norms()
    # 27 primary institutions in the extract; 6 are named 社区卫生服务中心 (the rest are 卫生院 and university clinics)
    assert int((inst["tier"] == "primary").sum()) == 27
    assert count_centres(inst, norms["residents_per_centre"]).to_dict() == {
        "东西湖区": 1, "江岸区": 1, "江汉区": 1, "洪山区": 1, "青山区": 2}

    run = analyse_case(case, with_isochrones=False)
    table = build_districts_table(run.cells, run.institutions, norms=norms).set_index("district")
    by = {r["district"]: r for r in run.summary["by_district"] if r["district"] in table.index}
    assert len(by) == len(table) == 11
    for name, r in by.items():  # the same cells and threshold (15 min) as the run's own district figures
        assert table.at[name, "population"] == pytest.approx(r["population"], abs=0.05)
        assert table.at[name, "covered_pct_15min"] == pytest.approx(r["coverage_pct"], abs=0.005)
    rows = check_norms(norms, districts_table=table.reset_index()).set_index(["norm", "district"])
    n_hongshan = int(np.ceil(table.at["洪山区", "population"] / 50_000)) - 1
    assert n_hongshan == 20  # about 1,049,000 residents aged 20+ in the study area's part of 洪山区, 1 centre
    assert rows.loc[("residents_per_centre", "洪山区"), "shortfall"] == n_hongshan
    assert rows.loc[("residents_per_centre", "洪山区"), "gap_en"].endswith(f"norm ≤ 50,000 → {n_hongshan} more centres")
    assert not rows["passed"].any()  # no district meets either norm with the centres OpenStreetMap knows


def test_capacity_defaults(tmp_path):
    # the example file's illustration, uncommented, is a valid table; the shipped default has none
    text = EXAMPLE.read_text(encoding="utf-8")
    head, illustration = text.split("# [capacity_defaults]\n")
    body = head + "[capacity_defaults]\n" + "".join(line.removeprefix("# ") + "\n" for line in illustration.splitlines())
    norms = load_norms(write(tmp_path, body))
    assert norms.tier_capacities == {"tertiary": 400000.0, "secondary": 150000.0, "primary": 50000.0, "station": 5000.0}
    tertiary, primary = norms.capacity_defaults[0], norms.capacity_defaults[2]
    assert (tertiary.standing, primary.source, primary.standing) == (("example",), "user setting", ("user",))
    assert load_norms(EXAMPLE).capacity_defaults == () and load_norms().tier_capacities == {}
    alone = load_norms(write(tmp_path, "[capacity_defaults]\nprimary = 0\n", "alone.toml"))  # no [[norm]] needed
    assert alone.norms == () and alone.tier_capacities == {"primary": 0.0}


@pytest.mark.parametrize(("body", "match"), [
    (NORMS + "\n[capacity_defaults]\nprimary = 50000\nclinic = 3000\n",
     r"norms\.toml, line 43: 'capacity_defaults\.clinic' is not a tier; fix: use tertiary, secondary, primary, station"),
    ('[capacity_defaults]\nprimary = 5\n\n[capacity_defaults.station]\nvalue = 300\ncolour = "red"\n',
     r"norms\.toml, line 6: 'capacity_defaults\.station\.colour' is not a known key"),
    ('[capacity_defaults]\nsecondary = { value = -1, source = "x" }\n',
     r"norms\.toml, line 2: 'capacity_defaults\.secondary\.value' -1 is not a number >= 0"),
    ('[capacity_defaults]\nprimary = "many"\n',
     r"norms\.toml, line 2: 'capacity_defaults\.primary' 'many' is not a number >= 0"),
    ('[capacity_defaults]\nprimary = { value = 5, standing = "official" }\n',
     r"norms\.toml, line 2: 'capacity_defaults\.primary\.standing' 'official' is not a standing"),
])
def test_bad_capacity_defaults_name_file_line_and_key(tmp_path, body, match):
    with pytest.raises(InvalidValueError, match=match):
        load_norms(write(tmp_path, body))
