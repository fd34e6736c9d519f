"""The ``planner coverage`` command on real data: a valid run and every kind of bad input.

Bad input must give exit code 2 and one ``error: …`` line that names the file
(or option), the column or row where relevant, and the fix; nothing but
``error.log`` may be written to ``--out``, and the inputs are never modified.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pytest
from typer.testing import CliRunner

from planner import datasets
from planner.cli import app

DATA = Path(__file__).parent / "data"
NETWORK = datasets.get_path("guanggu_osm")  # Optics Valley (光谷), Wuhan
POPULATION = datasets.get_path("wuhan_population")
INSTITUTIONS = DATA / "guanggu_institutions.csv"
PLANNER_EXE = Path(sys.executable).with_name("planner")
LOG_PREFIXES = ("INFO: ", "WARNING: ")  # progress log lines the CLI prints to stderr


def _sha256(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _invoke(args: list[str]):
    return CliRunner().invoke(app, ["coverage", *args], catch_exceptions=False)


def _args(network: Path = NETWORK, institutions: Path = INSTITUTIONS, population: Path = POPULATION, *extra: str) -> list[str]:
    return ["--network", str(network), "--institutions", str(institutions), "--population", str(population), *extra]


# --------------------------------------------------------------------------- valid run


@pytest.fixture(scope="module")
def valid_runs(tmp_path_factory) -> dict[str, tuple]:
    """Run the Optics Valley case twice: with and without isochrones."""
    inputs = [NETWORK, INSTITUTIONS, POPULATION]
    before = _sha256(inputs)
    listing = {d: sorted(p.name for p in d.iterdir()) for d in {p.parent for p in inputs}}
    runs = {}
    lg = logging.getLogger("planner")
    saved = (lg.handlers[:], lg.level, lg.propagate)
    for name, flag in (("iso", "--isochrones"), ("noiso", "--no-isochrones")):
        out = tmp_path_factory.mktemp(f"valid_{name}") / "out"
        runs[name] = (_invoke([*_args(), "--out", str(out), flag, "--title", "光谷 15分钟医疗服务圈"]), out)
    # the CLI restores the 'planner' logger, so notebooks and test runners are left as they were
    assert (lg.handlers[:], lg.level, lg.propagate) == saved
    assert _sha256(inputs) == before, "an input file was modified"
    assert {d: sorted(p.name for p in d.iterdir()) for d in listing} == listing, "files appeared next to the inputs"
    return runs


@pytest.mark.parametrize("name", ["iso", "noiso"])
def test_valid_run_writes_outputs(valid_runs, name):
    result, out = valid_runs[name]
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    names = {p.name for p in out.iterdir()}
    assert {"summary.json", "cells.gpkg", "isochrones.gpkg", "map.html"} <= names
    assert not [n for n in names if n.startswith(".partial-")] and "error.log" not in names
    assert all((out / n).stat().st_size > 0 for n in names)

    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["complete"] is True and s["mode"] == "walk"
    total, covered = s["population_total"], s["population_covered"]
    assert total > 50_000 and 0 < covered < total
    assert s["coverage_pct"] == pytest.approx(100 * covered / total, abs=0.01)
    assert [t["minutes"] for t in s["thresholds"]] == [5, 10, 15]
    pcts = [t["coverage_pct"] for t in s["thresholds"]]
    assert pcts == sorted(pcts) and s["thresholds"][-1]["population_covered"] == covered
    for t in s["thresholds"]:
        assert t["coverage_pct"] == pytest.approx(100 * t["population_covered"] / total, abs=0.01)
    assert set(s["by_tier"]) == {"tertiary", "secondary", "primary", "station"}
    assert all(v["institutions"] == 1 for v in s["by_tier"].values())
    assert s["institutions"]["total"] == 4 and s["institutions"]["unsnapped"] == 0
    assert s["institutions"]["tier_source"] == {"column": 3, "name_rule": 1}
    assert isinstance(s["cells"]["unreachable"], int) and 0 <= s["cells"]["unreachable"] < s["cells"]["total"]

    cells = gpd.read_file(out / "cells.gpkg")
    assert len(cells) == s["cells"]["total"]
    assert float(cells["population"].sum()) == pytest.approx(total, abs=0.1)
    inst = gpd.read_file(out / "institutions.gpkg")
    assert "关东街社区卫生服务中心" in set(inst["name"])
    iso = gpd.read_file(out / "isochrones.gpkg")
    if name == "iso":
        assert sorted(set(iso["minutes"])) == [5, 10, 15] and iso["facility_id"].nunique() == 4
    else:
        assert len(iso) == 0
    assert "15-minute walk coverage" in result.stdout


def test_both_runs_agree(valid_runs):
    a = json.loads((valid_runs["iso"][1] / "summary.json").read_text(encoding="utf-8"))
    b = json.loads((valid_runs["noiso"][1] / "summary.json").read_text(encoding="utf-8"))
    for key in ("population_total", "population_covered", "coverage_pct", "thresholds", "cells"):
        assert a[key] == b[key]


# --------------------------------------------------------------------------- bad input

def _copy(src: Path, dst_dir: Path) -> Path:
    dst = dst_dir / src.name
    shutil.copyfile(src, dst)
    return dst


def _write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def _shapefile_without_prj(tmp: Path) -> Path:
    roads = gpd.read_file(datasets.get_path("wuhan_roads"), rows=50)
    shp = tmp / "roads.shp"
    roads.to_file(shp)
    (tmp / "roads.prj").unlink()
    return shp


# Each case: (builder(tmp) -> (args, inputs, named_file_or_option), substrings the error line must contain)
Case = Callable[[Path], tuple[list[str], list[Path], str]]

BAD_CASES: dict[str, tuple[Case, list[str]]] = {
    "missing institutions file": (
        lambda t: (_args(institutions=t / "机构名单.csv"), [], "机构名单.csv"),
        ["file not found", "institutions"]),
    "unknown format .docx": (
        lambda t: (_args(institutions=_write(t, "institutions.docx", "not a table")),
                   [t / "institutions.docx"], "institutions.docx"),
        ["unknown format '.docx'", ".csv"]),
    "unknown format .kml network": (
        lambda t: (_args(network=_write(t, "roads.kml", "<kml/>")), [t / "roads.kml"], "roads.kml"),
        ["unknown format '.kml'", "road network", ".osm.pbf"]),
    "missing lat column": (
        lambda t: (_args(institutions=_write(t, "inst.csv", "name,lon,tier\n关东街社区卫生服务中心,114.5003,一级\n")),
                   [t / "inst.csv"], "inst.csv"),
        ["no latitude column", "columns: name, lon, tier", "name it 'lat'"]),
    "misnamed column latt": (
        lambda t: (_args(institutions=_write(t, "inst.csv", "name,lon,latt\n关东街社区卫生服务中心,114.5003,30.4917\n")),
                   [t / "inst.csv"], "inst.csv"),
        ["no latitude column", "latt", "name it 'lat'"]),
    "non-numeric lon in row 3": (
        lambda t: (_args(institutions=_write(t, "inst.csv", "name,lon,lat\n甲,114.5003,30.4917\n乙,114.5130,30.4811\n"
                                                         "丙,东经114.52,30.4895\n")),
                   [t / "inst.csv"], "inst.csv"),
        ["row 3", "column 'lon'", "东经114.52", "not a number"]),
    "swapped lon/lat": (
        lambda t: (_args(institutions=_write(t, "inst.csv", "name,lon,lat\n甲,30.4917,114.5003\n乙,30.4811,114.5130\n")),
                   [t / "inst.csv"], "inst.csv"),
        ["row 1", "swapped", "'lon'", "'lat'"]),
    "institutions far outside the network (Beijing)": (
        lambda t: (_args(institutions=_write(t, "beijing.csv", "name,lon,lat\n北京协和医院,116.4170,39.9120\n"
                                                             "北京大学第一医院,116.3780,39.9340\n")),
                   [t / "beijing.csv", NETWORK], "beijing.csv"),
        ["none of the 2 institutions", "500 m", "network"]),
    "empty network (no highway ways)": (
        lambda t: (_args(network=DATA / "no_highway.osm"), [DATA / "no_highway.osm"], "no_highway.osm"),
        ["no roads usable", "highway"]),
    "shapefile network without .prj": (
        lambda t: (_args(network=_shapefile_without_prj(t)), [t / "roads.shp", t / "roads.dbf", t / "roads.shx"], "roads.shp"),
        ["no CRS", ".prj"]),
    "missing population raster": (
        lambda t: (_args(population=t / "population.tif"), [NETWORK], "population.tif"),
        ["file not found", "population"]),
    "population raster does not cover the network": (
        lambda t: (_args(network=datasets.get_path("haidian_bupt_osm"),
                         institutions=_write(t, "bupt.csv", "name,lon,lat\n北京邮电大学社区卫生服务中心,116.35067,39.9586\n")),
                   [t / "bupt.csv", datasets.get_path("haidian_bupt_osm")], "population_age20plus_100m.tif"),
        ["no populated cells", "cover the same place"]),
    "unreadable OSM institutions file": (
        lambda t: (_args(institutions=_write(t, "pois.osm", "this is not OSM XML\n")), [t / "pois.osm"], "pois.osm"),
        ["cannot read this OSM file"]),
    "bad --minutes": (
        lambda t: (_args(NETWORK, INSTITUTIONS, POPULATION, "--minutes", "0"), [], "--minutes"),
        ["thresholds", "between 0 and 240"]),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_fails_cleanly(tmp_path, case):
    build, expected = BAD_CASES[case]
    inputs_dir = tmp_path / "inputs"
    inputs_dir.mkdir()
    args, inputs, named = build(inputs_dir)
    inputs = [*inputs, INSTITUTIONS, POPULATION]
    before = _sha256([p for p in inputs if p.exists()])
    listing = sorted(p.name for p in inputs_dir.iterdir())
    out = tmp_path / "out"

    result = _invoke([*args, "--out", str(out), "--no-isochrones"])

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    error_lines = [ln for ln in lines if not ln.startswith(LOG_PREFIXES)]
    assert len(error_lines) == 1, result.stderr  # one line; anything else is a log record
    line = error_lines[0]
    assert line == lines[-1] and line.startswith("error: ")
    assert named in line
    assert "fix:" in line
    for text in expected:
        assert text in line

    # nothing but error.log in --out, and it tells what went wrong
    assert sorted(p.name for p in out.iterdir()) == ["error.log"]
    log = (out / "error.log").read_text(encoding="utf-8")
    assert "FAILED" in log and line.removeprefix("error: ") in log

    # inputs untouched, and nothing new next to them
    assert _sha256([p for p in inputs if p.exists()]) == before
    assert sorted(p.name for p in inputs_dir.iterdir()) == listing


def test_failure_keeps_earlier_results(tmp_path, valid_runs):
    """A failed run into a folder holding earlier results adds error.log and touches nothing else."""
    out = tmp_path / "out"
    shutil.copytree(valid_runs["noiso"][1], out)
    before = _sha256(sorted(out.iterdir()))
    result = _invoke([*_args(institutions=tmp_path / "missing.csv"), "--out", str(out)])
    assert result.exit_code == 2
    assert sorted(p.name for p in out.iterdir()) == sorted([*(p.name for p in before), "error.log"])
    assert _sha256(list(before)) == before
    assert "earlier run" in (out / "error.log").read_text(encoding="utf-8")


@pytest.mark.parametrize(("option", "value"), [("--mode", "bike"), ("--coords", "utm")])
def test_bad_option_value_is_a_usage_error(tmp_path, option, value):
    out = tmp_path / "out"
    result = _invoke([*_args(), "--out", str(out), option, value])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert option in result.stderr and value in result.stderr  # typer's usage box
    assert not out.exists()  # rejected before anything ran: no outputs, no error.log


def test_cli_choices_come_from_settings(tmp_path):
    """The choices `--help` shows are the settings tuples the analyses accept (read without importing maps/)."""
    from planner import cli, maps, settings

    choices = {name: tuple(m.value for m in enum) for name, enum in
               (("mode", cli.Mode), ("basemap", cli.Basemap), ("coords", cli.Coords), ("objective", cli.Objective),
                ("contiguity", cli.Contiguity))}
    assert choices == {"mode": ("walk", "ebike", "drive"), "basemap": ("auto", "osm", "amap", "tianditu", "none"),
                       "coords": ("wgs84", "gcj02", "bd09"), "objective": ("coverage", "mean-time"),
                       "contiguity": ("queen", "rook")}
    assert choices["mode"] == settings.MODES and maps.BASEMAPS is settings.BASEMAPS
    assert cli.Objective.mean_time == "mean-time" and cli.Mode("drive") is cli.Mode.drive
    result = CliRunner().invoke(app, ["site", *_args(), "--out", str(tmp_path / "out"), "--objective", "p-median"])
    assert result.exit_code == 2 and "'coverage', 'mean-time'" in result.stderr and not (tmp_path / "out").exists()


def test_console_script_missing_file(tmp_path):
    """The installed ``planner`` script: exit 2 and exactly one stderr line."""
    out = tmp_path / "out"
    missing = tmp_path / "no_such_institutions.csv"
    proc = subprocess.run(
        [str(PLANNER_EXE), "coverage", *_args(institutions=missing), "--out", str(out)],
        capture_output=True, text=True, encoding="utf-8", timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"error: {missing}: file not found (the institutions file); fix: check the path and spelling"]
    assert sorted(p.name for p in out.iterdir()) == ["error.log"]
