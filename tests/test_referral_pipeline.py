"""``planner referral`` end to end: the Wuhan case by car, own leads from a leads file and a grid run, and bad input.

The Wuhan run (the Makefile's ``WUHAN_ARGS``, primary → secondary + tertiary within 30 minutes by car) is
made once; its figures are checked against :func:`planner.referral.referral_summary` computed here on the
same inputs, and its files against the table.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from typer.testing import CliRunner

from planner import io
from planner.cli import app
from planner.exports import write_grid_outputs
from planner.pipeline import Case, run_grids
from planner.pipeline.summary import ReferralSummary
from planner.referral import referral_summary, referral_times
from planner.tables import read_report_csv
from planner.travel_time import snap_points

from .test_cli import INSTITUTIONS as GG_INSTITUTIONS
from .test_cli import LOG_PREFIXES, POPULATION
from .test_cli import NETWORK as GG_NETWORK
from .test_summary_schema import _problems

ROOT = Path(__file__).resolve().parents[1]
CSV_COLUMNS = ["from_id", "from_name", "from_tier", "to_id", "to_name", "to_tier", "travel_time_min", "distance_km",
               "within_threshold"]
LEAD_CSV_COLUMNS = ["lead_id", "lead_name", "lead_tier", "lead_travel_time_min", "lead_distance_km", "lead_within_threshold"]


def _wuhan_args() -> list[str]:
    """The Makefile's WUHAN_ARGS, with $(WUHAN) expanded and paths made absolute."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    wuhan = re.search(r"^WUHAN\s*:=\s*(\S+)", text, re.M).group(1)
    args = shlex.split(re.search(r"^WUHAN_ARGS\s*:=(.*)$", text, re.M).group(1).replace("$(WUHAN)", wuhan))
    return [str(ROOT / a) if a.startswith(wuhan) else a for a in args]


WUHAN_ARGS = _wuhan_args()
REFERRAL = ["--mode", "drive", "--from-tier", "primary", "--to-tier", "secondary", "--to-tier", "tertiary", "--minutes", "30"]


def _invoke(args: list[str]):
    return CliRunner().invoke(app, ["referral", *args], catch_exceptions=False)


def _gg(*extra: str) -> list[str]:
    """Optics Valley (光谷): four institutions (primary, station, secondary, tertiary), 500 m cells."""
    return ["--network", str(GG_NETWORK), "--institutions", str(GG_INSTITUTIONS), "--population", str(POPULATION),
            "--cell-size", "500", *extra]


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = [ln for ln in result.stderr.strip().splitlines() if not ln.startswith(LOG_PREFIXES)]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "fix:" in lines[0], result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def wuhan(tmp_path_factory):
    out = tmp_path_factory.mktemp("referral") / "wuhan"
    result = _invoke([*WUHAN_ARGS, *REFERRAL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result, out


@pytest.fixture(scope="module")
def wuhan_expected():
    """The referral table and figures of the core functions on the same inputs as the CLI run."""
    opt = dict(zip(WUHAN_ARGS[::2], WUHAN_ARGS[1::2], strict=True))
    case = Case(network=opt["--network"], institutions=opt["--institutions"], population=opt["--population"],
                boundaries=opt["--boundaries"], mode="drive").load()
    table = referral_times(case.net, case.institutions, from_tiers="primary", to_tiers=("secondary", "tertiary"),
                           max_minutes=30)
    return case, table, referral_summary(table, net=case.net, institutions=case.institutions, cells=case.cells)


def test_wuhan_cli_writes_the_files(wuhan):
    result, out = wuhan
    assert sorted(p.name for p in out.iterdir()) == [io.MANIFEST_NAME, "map.html", "referral.csv", "routes.gpkg",
                                                      "summary.json"]
    assert json.loads((out / io.MANIFEST_NAME).read_text(encoding="utf-8"))["kind"] == "referral"
    table = read_report_csv(out / "referral.csv", dtype={"from_id": str, "to_id": str})
    assert list(table.columns[:9]) == CSV_COLUMNS and {"status", "district"} <= set(table.columns)
    assert not set(LEAD_CSV_COLUMNS) & set(table.columns)  # no leads given
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert not _problems(s, ReferralSummary), _problems(s, ReferralSummary)
    assert f"{s['within_pct']:.1f}%" in result.stdout and f"{s['population']['within_pct']:.1f}%" in result.stdout
    routes = gpd.read_file(out / "routes.gpkg", layer="routes")
    assert len(routes) == int((table["status"] == "ok").sum()) == s["n_from"] - s["n_unsnapped"] - s["n_unreachable"]
    places = gpd.read_file(out / "routes.gpkg", layer="institutions")
    assert sorted(places.loc[places["role"] == "from", "facility_id"]) == sorted(table["from_id"])
    html = (out / "map.html").read_text(encoding="utf-8")
    assert html.count('"id": "route-') == len(routes) and "planner-routes" in html


def test_wuhan_figures_equal_the_core_on_the_same_inputs(wuhan, wuhan_expected):
    _, out = wuhan
    case, table, expected = wuhan_expected
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for key, value in expected.items():
        assert s[key] == value, key
    # the Wuhan figures: 27 primary institutions, 16 of them off the drive network (outside the study area)
    assert (s["n_from"], s["n_unsnapped"], s["n_outside_study_area"], s["n_unreachable"]) == (27, 16, 16, 0)
    assert s["within_pct"] == pytest.approx(100 * 11 / 27, abs=0.01) and s["within_pct_snapped"] == 100.0
    assert s["population"]["total"] == pytest.approx(case.cells["population"].sum(), abs=1)
    assert s["population"]["within"] + s["population"]["no_from_institution"] <= s["population"]["total"]
    assert sum(r["total"] for r in s["population_by_district"]) == pytest.approx(s["population"]["total"], abs=20)
    csv = read_report_csv(out / "referral.csv", dtype={"from_id": str, "to_id": str})
    assert csv["from_id"].tolist() == table["from_id"].tolist()
    assert csv["status"].tolist() == table["status"].tolist()
    assert csv["within_threshold"].tolist() == table["within_threshold"].tolist()
    ok = (table["status"] == "ok").to_numpy()
    assert csv.loc[ok, "to_id"].tolist() == table.loc[ok, "to_id"].tolist()
    assert csv["travel_time_min"].to_numpy()[ok] == pytest.approx(table["travel_time_min"].to_numpy()[ok], abs=0.05)  # to 0.1 min
    assert csv["distance_km"].to_numpy()[ok] == pytest.approx(table["distance_km"].to_numpy()[ok], abs=5e-3)  # to 0.01 km
    assert csv.loc[~ok, "travel_time_min"].isna().all()  # unsnapped ones are kept, without a time
    # they are exactly the primary institutions farther than 500 m from a drive road
    frm = case.institutions[case.institutions["tier"] == "primary"]
    snapped = snap_points(case.net, frm, max_snap_m=500)["snapped"]
    assert sorted(csv.loc[csv["status"] == "unsnapped", "from_id"]) == sorted(frm.index[~snapped.to_numpy()])


def test_own_lead_from_a_leads_file_is_the_nearest_and_names_are_escaped(tmp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text('name,lon,lat,tier\n"<b>同济</b>光谷",114.53570,30.48540,三级甲等\n'
                     "东湖高新区人民医院,114.52190,30.48950,二级\n", encoding="utf-8")
    out = tmp_path / "out"
    result = _invoke([*_gg("--from-tier", "primary", "--from-tier", "station", "--to-tier", "secondary",
                           "--to-tier", "tertiary", "--minutes", "10", "--leads", str(leads), "--out", str(out))])
    assert result.exit_code == 0, result.output
    t = read_report_csv(out / "referral.csv", dtype=str)
    assert list(t.columns) == [*CSV_COLUMNS, "status", *LEAD_CSV_COLUMNS, "lead_status"]
    assert t["lead_id"].str.startswith("lead:").all()  # the leads' own id space
    # the nearest receiving institution is a lead hospital too here: the nearest lead is the same hospital, same time
    assert (t["lead_name"] == t["to_name"]).all()
    assert t["lead_travel_time_min"].tolist() == t["travel_time_min"].tolist()
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert not _problems(s, ReferralSummary), _problems(s, ReferralSummary)
    assert s["lead_rule"].startswith("nearest lead") and s["n_leads"] == 2 and s["lead_within_pct"] == 100.0
    assert sum(r["n_from"] for r in s["by_lead"]) == 2
    html = (out / "map.html").read_text(encoding="utf-8")
    assert "<b>同济" not in html and "\\u0026lt;b\\u0026gt;" in html


def test_own_lead_from_a_grid_run(tmp_path):
    grid_out = tmp_path / "grid"
    run = run_grids(GG_NETWORK, GG_INSTITUTIONS, POPULATION, lead_tiers=("secondary", "tertiary"), cell_size_m=500,
                    time_limit_s=20)
    write_grid_outputs(run, grid_out)
    out = tmp_path / "out"
    result = _invoke([*_gg("--from-tier", "primary", "--from-tier", "station", "--to-tier", "secondary",
                           "--to-tier", "tertiary", "--minutes", "10", "--grid", str(grid_out), "--out", str(out))])
    assert result.exit_code == 0, result.output
    t = read_report_csv(out / "referral.csv", dtype=str).set_index("from_id")
    members = run.members["lead_id"].astype(str)
    assert len(members) == 2 and t.loc[members.index, "lead_id"].tolist() == members.tolist()
    assert t["lead_status"].eq("ok").all()
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert not _problems(s, ReferralSummary), _problems(s, ReferralSummary)
    assert s["lead_rule"].startswith("the lead of the grid") and s["inputs"]["grid"] == str(grid_out)
    assert sorted(r["lead_id"] for r in s["by_lead"]) == sorted(set(members))


def test_unknown_tier_is_one_line(tmp_path):
    line = _one_error_line(_invoke([*_gg("--from-tier", "clinic", "--to-tier", "tertiary", "--out", str(tmp_path / "o"))]))
    assert "--from-tier clinic is not a tier" in line and "tertiary, secondary, primary or station" in line
    assert not (tmp_path / "o").exists()  # refused before the output folder is touched
    line = _one_error_line(_invoke([*_gg("--from-tier", "primary", "--to-tier", "primary", "--out", str(tmp_path / "o"))]))
    assert "tier primary is both a --from-tier and a --to-tier" in line


def test_tier_without_institutions_is_one_line(tmp_path):
    inst = tmp_path / "two.csv"
    pd.read_csv(GG_INSTITUTIONS).iloc[[0, 2]].to_csv(inst, index=False)  # a primary and a secondary: no tertiary
    out = tmp_path / "out"
    args = ["--network", str(GG_NETWORK), "--institutions", str(inst), "--population", str(POPULATION), "--cell-size", "500"]
    line = _one_error_line(_invoke([*args, "--from-tier", "primary", "--to-tier", "tertiary", "--out", str(out)]))
    assert "no institution of to-tier tertiary among the 2 institutions" in line and "secondary 1, primary 1" in line
    assert sorted(p.name for p in out.iterdir()) == ["error.log"]


def test_grid_option_needs_a_grid_folder(tmp_path, wuhan):
    _, referral_out = wuhan
    for folder, why in ((referral_out, "says kind 'referral'"), (tmp_path, "has no .planner-manifest.json"),
                        (tmp_path / "missing", "no such folder")):
        out = tmp_path / "out"
        line = _one_error_line(_invoke([*_gg("--from-tier", "primary", "--to-tier", "tertiary", "--grid", str(folder),
                                             "--out", str(out))]))
        assert f"--grid {folder}" in line and why in line and "planner grid" in line
        assert not out.exists()
