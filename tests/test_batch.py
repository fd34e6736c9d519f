"""Batches of coverage cases: the batch file, serial vs dask.distributed identity, retries and failures.

The distributed tests run on real local clusters of two worker processes. Worker crashes are made by
:func:`_crash_on_first_attempt`, which the workers import from this module (they inherit pytest's
``sys.path``); a marker file on disk tells the first attempt of a case from its retry.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import geopandas as gpd
import pytest
from geopandas.testing import assert_geodataframe_equal

from planner import InputFileError, InvalidValueError, PlannerError, batch, datasets
from planner.batch import BATCH_SUMMARY, BatchCase, load_batch, run_batch

distributed = pytest.importorskip("distributed")

DATA = Path(__file__).parent / "data"
OSM = datasets.get_path("guanggu_osm")
INSTITUTIONS = DATA / "guanggu_institutions.csv"
POPULATION = datasets.get_path("wuhan_population")
DISTRICTS = datasets.get_path("wuhan_districts")

_REAL_RUN_ONE = batch._run_one


def _crash_on_first_attempt(case: BatchCase, out: Path) -> dict:
    """Kill the worker process on the first attempt of 'crash-once' and on every attempt of 'crash-always'.

    Other cases run normally.
    """
    marker = out.parent.parent / f"{case.name}.attempted"  # outside the batch folder
    if case.name == "crash-always" or (case.name == "crash-once" and not marker.exists()):
        marker.touch()
        os._exit(1)
    return _REAL_RUN_ONE(case, out)


def _case(name: str, **kw) -> BatchCase:
    return BatchCase(**{"name": name, "network": OSM, "institutions": INSTITUTIONS, "population": POPULATION, **kw})


@pytest.fixture(scope="module")
def cluster():
    """Start a cluster to reach by its address, as an existing one; a dead worker is allowed once per task."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    with lc:
        yield lc


# ----------------------------------------------------------------------------------------- batch file


def _write(folder: Path, text: str) -> Path:
    path = folder / "batch.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def batch_folder(tmp_path: Path) -> Path:
    """Make a batch folder with inputs beside it, so that the batch file can use relative paths."""
    folder = tmp_path / "plans"
    folder.mkdir()
    (tmp_path / "inputs").mkdir()
    for src in (OSM, INSTITUTIONS):
        (tmp_path / "inputs" / src.name).write_bytes(src.read_bytes())
    return folder


GOOD = """\
# every case inherits [defaults]
[defaults]
network = "../inputs/wuhan_guanggu_east_lake_hitech.osm"
institutions = "../inputs/guanggu_institutions.csv"
population = "{population}"
minutes = [15, 5, 10]
population_label = "persons aged 20+ (WorldPop)"

[[case]]
name = "walk"

[[case]]
name = "光谷-ebike"
mode = "ebike"
speed_kph = 12
isochrones = false
title = "光谷 电动自行车"
"""


def test_load_batch_merges_defaults_and_resolves_paths(batch_folder):
    path = _write(batch_folder, GOOD.format(population=POPULATION.as_posix()))
    walk, ebike = load_batch(path)
    inputs = batch_folder.parent / "inputs"
    assert walk == BatchCase(name="walk", network=str(inputs / OSM.name), institutions=str(inputs / INSTITUTIONS.name),
                             population=str(POPULATION), minutes=(5.0, 10.0, 15.0),
                             population_label="persons aged 20+ (WorldPop)")
    assert (ebike.name, ebike.mode, ebike.speed_kph, ebike.isochrones, ebike.title) == (
        "光谷-ebike", "ebike", 12.0, False, "光谷 电动自行车")
    assert ebike.network == walk.network and ebike.minutes == walk.minutes


def _bad(text: str) -> str:
    return GOOD.format(population=POPULATION.as_posix()) + text


@pytest.mark.parametrize(("extra", "error", "pattern"), [
    ('\n[[case]]\nname = "drive"\nspeeed_kph = 30\n', InvalidValueError,
     r"line 21: case 'drive': 'speeed_kph' is not a known key; fix: use one of name, network"),
    ('\n[[case]]\nname = "walk15"\nminutes = "15"\n', InvalidValueError,
     r"line 21: case 'walk15': 'minutes' must be a list of numbers, not '15'; fix: e.g. minutes = \[5, 10, 15\]"),
    ('\n[[case]]\nname = "w"\nisochrones = "yes"\n', InvalidValueError, r"line 21: case 'w': 'isochrones' must be true or false"),
    ('\n[[case]]\nname = "w"\nspeed_kph = 500\n', InvalidValueError, r"line 21: case 'w': 'speed_kph' 500 is outside 0.5-150"),
    ('\n[[case]]\nname = "w"\nmode = "bike"\n', InvalidValueError, r"line 21: case 'w': 'mode' 'bike' is not a mode"),
    ('\n[[case]]\nname = "w"\ncoords = "gcj"\n', InvalidValueError, r"'coords' 'gcj' is not a known datum"),
    ('\n[[case]]\nname = "w"\nbasemap = "google"\n', InvalidValueError, r"'basemap' 'google' is not a basemap"),
    ('\n[[case]]\nname = "WALK"\n', InvalidValueError,
     r"line 20: case 'WALK': 'name' 'WALK' is used by another case \('walk'\); fix: give every case its own name"),
    ('\n[[case]]\nname = "../up"\n', InvalidValueError, r"line 20: case '../up': 'name' '../up' is not usable as a folder name"),
    ('\n[[case]]\nmode = "walk"\n', InvalidValueError, r"line 19: case #3: 'name' is missing"),
    ('\n[[case]]\nname = "other"\nboundaries = "../inputs/districts.gpkg"\n', InputFileError,
     r"line 21: case 'other': 'boundaries' file not found: .*inputs.districts\.gpkg; "
     r"fix: give a path relative to the batch file's folder"),
    ('\n[extra]\nx = 1\n', InvalidValueError, r"line 19: batch file: 'extra' is not a known table"),
    ('\n[[case]]\nname = "x"\nmode = walk\n', InputFileError, r"not valid TOML .*line 21"),
])
def test_load_batch_errors_name_file_case_key_and_line(batch_folder, extra, error, pattern):
    path = _write(batch_folder, _bad(extra))
    with pytest.raises(error, match=pattern) as info:
        load_batch(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert isinstance(info.value, PlannerError)


def test_load_batch_errors_without_cases_or_required_inputs(batch_folder):
    with pytest.raises(InvalidValueError, match=r"batch\.toml: the batch file has no case; fix: add a \[\[case\]\]"):
        load_batch(_write(batch_folder, '[defaults]\nmode = "walk"\n'))
    with pytest.raises(InvalidValueError, match=r"line 3: case 'a': 'population' is missing; fix: add population = "):
        load_batch(_write(batch_folder, '[defaults]\nnetwork = "batch.toml"\n[[case]]\nname = "a"\n'
                                        'institutions = "batch.toml"\n'))
    with pytest.raises(InvalidValueError, match=r"line 2: \[defaults\]: 'name' is not a known key here"):
        load_batch(_write(batch_folder, '[defaults]\nname = "a"\n[[case]]\nname = "a"\n'))
    with pytest.raises(InputFileError, match="batch file not found"):
        load_batch(batch_folder / "nope.toml")


def test_run_batch_checks_cases_before_running(tmp_path):
    with pytest.raises(InvalidValueError, match=r"case 'Walk': the name is used by another case"):
        run_batch([_case("walk"), _case("Walk")], tmp_path, serial=True)
    with pytest.raises(InvalidValueError, match=r"case 'a/b': 'a/b' is not usable as a folder name"):
        run_batch([_case("a/b")], tmp_path, serial=True)
    with pytest.raises(InvalidValueError, match=r"retries=-1 must be a whole number >= 0"):
        run_batch([_case("walk")], tmp_path, serial=True, retries=-1)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------- serial runs, fast


def test_serial_retries_other_errors_and_reports_them(tmp_path, monkeypatch):
    """A non-planner error is retried; the failure is reported with every attempt, and error.log keeps the traceback."""
    calls: list[str] = []

    def flaky(case, out):
        calls.append(case.name)
        if case.name == "broken" or calls.count(case.name) == 1:
            raise RuntimeError(f"boom in {case.name}")
        return {"status": "ok", "error": None, "error_type": None, "seconds": 0.0, "coverage_pct": 50.0,
                "max_minutes": 15.0, "thresholds": [{"minutes": 15.0, "population_covered": 5.0, "coverage_pct": 50.0}]}

    monkeypatch.setattr(batch, "_run_one", flaky)
    result = run_batch([_case("flaky"), _case("broken")], tmp_path, serial=True, retries=2, progress=False)
    flaky_r, broken_r = result.cases
    assert (flaky_r.status, flaky_r.attempts, flaky_r.attempt_errors) == ("ok", 2, ("attempt 1: RuntimeError: boom in flaky",))
    assert (broken_r.status, broken_r.attempts, broken_r.error_type) == ("failed", 3, "RuntimeError")
    assert broken_r.error.startswith("RuntimeError: boom in broken; fix: see the traceback")
    assert len(broken_r.attempt_errors) == 3
    log = (tmp_path / "broken" / "error.log").read_text(encoding="utf-8")
    assert "planner run FAILED" in log and "Traceback" in log and "boom in broken" in log
    assert calls.count("broken") == 3
    report = json.loads((tmp_path / BATCH_SUMMARY).read_text(encoding="utf-8"))
    assert (report["cases_total"], report["cases_ok"], report["cases_failed"], report["complete"]) == (2, 1, 1, True)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_interrupted_batch_reports_unfinished_cases(tmp_path, monkeypatch):
    def interrupt(case, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "_run_one", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_batch([_case("a"), _case("b")], tmp_path, serial=True, progress=False)
    report = json.loads((tmp_path / BATCH_SUMMARY).read_text(encoding="utf-8"))
    assert report["complete"] is False
    assert [(c["name"], c["status"], c["error_type"]) for c in report["cases"]] == [
        ("a", "failed", "BatchStopped"), ("b", "failed", "BatchStopped")]
    assert report["cases"][0]["attempt_errors"] == [] and "interrupted" in report["cases"][0]["error"]


# ----------------------------------------------------------------------------------------- distributed


IDENTITY_CASES = [
    _case("walk", minutes=(5, 10, 15), isochrones=False),
    _case("ebike-iso", mode="ebike", minutes=(10, 15)),
    _case("walk-elderly-districts", speed_kph=3.2, cell_size_m=200, boundaries=DISTRICTS, isochrones=False),
]


def _summary(folder: Path) -> dict:
    s = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    s.pop("runtime_s")
    return s


def test_distributed_results_equal_serial_results(tmp_path, cluster):
    serial = run_batch(IDENTITY_CASES, tmp_path / "serial", serial=True, progress=False)
    dist = run_batch(IDENTITY_CASES, tmp_path / "dist", scheduler=cluster.scheduler_address, progress=True)
    assert (serial.scheduler, dist.scheduler) == ("serial", cluster.scheduler_address)
    assert serial.n_ok == dist.n_ok == 3 and dist.n_failed == 0
    for a, b in zip(serial.cases, dist.cases, strict=True):
        assert (a.name, a.status, a.attempts) == (b.name, b.status, b.attempts) == (a.name, "ok", 1)
        fa, fb = Path(a.out), Path(b.out)
        assert _summary(fa) == _summary(fb)
        assert _summary(fa)["inputs"]["network"] == str(OSM)  # absolute paths reach the workers
        layers = sorted(p.name for p in fa.glob("*.gpkg"))
        assert layers == sorted(p.name for p in fb.glob("*.gpkg")) and "cells.gpkg" in layers
        for name in layers:
            assert_geodataframe_equal(gpd.read_file(fa / name), gpd.read_file(fb / name), check_less_precise=False)
    iso = gpd.read_file(Path(dist.cases[1].out) / "isochrones.gpkg")
    assert len(iso) > 0 and sorted(iso["minutes"].unique()) == [10.0, 15.0]
    assert json.loads((Path(dist.cases[2].out) / "summary.json").read_text(encoding="utf-8"))["by_district"]

    def figures(report: dict) -> list[dict]:
        return [{k: v for k, v in c.items() if k not in ("seconds", "out")} for c in report["cases"]]

    rs, rd = (json.loads(p.read_text(encoding="utf-8")) for p in (serial.summary_path, dist.summary_path))
    assert figures(rs) == figures(rd)
    assert rd["cases"][0]["coverage_pct"] == dist.cases[0].coverage_pct == _summary(Path(dist.cases[0].out))["coverage_pct"]


def test_failures_are_reported_and_dead_workers_retried(tmp_path, monkeypatch):
    """Default local cluster: bad input fails once, a worker that dies is replaced and the case retried."""
    monkeypatch.setattr(batch, "_run_one", _crash_on_first_attempt)
    out = tmp_path / "out"
    cases = [
        _case("walk", isochrones=False),
        _case("missing", population=tmp_path / "no_such_population.tif"),
        _case("crash-once", mode="ebike", isochrones=False),
    ]
    result = run_batch(cases, out, n_workers=2, retries=1, progress=False)
    assert result.scheduler == "LocalCluster(2 workers)"
    walk, missing, crashed = result.cases
    assert (walk.status, walk.attempts, walk.attempt_errors) == ("ok", 1, ())
    assert (missing.status, missing.attempts, missing.error_type) == ("failed", 1, "InputFileError")
    assert re.match(r".*no_such_population\.tif: file not found \(the population file\); fix: ", missing.error)
    assert not missing.attempt_errors and (out / "missing" / "error.log").exists()
    assert (crashed.status, crashed.attempts) == ("ok", 2)
    assert len(crashed.attempt_errors) == 1
    assert re.match(r"attempt 1: the worker process \(pid \d+ on worker tcp://.*\) died while running the case",
                    crashed.attempt_errors[0])
    assert (out / "crash-once" / "cells.gpkg").exists() and not list((out / "crash-once").glob(".partial-*"))
    assert _summary(out / "crash-once")["mode"] == "ebike" and not (out / "crash-once" / "error.log").exists()
    report = json.loads((out / BATCH_SUMMARY).read_text(encoding="utf-8"))
    assert (report["cases_ok"], report["cases_failed"], report["retries"]) == (2, 1, 1)
    assert [(c["name"], c["status"], c["attempts"]) for c in report["cases"]] == [
        ("walk", "ok", 1), ("missing", "failed", 1), ("crash-once", "ok", 2)]


def test_case_whose_worker_always_dies_is_reported(tmp_path, monkeypatch, cluster):
    """A case that kills every worker it runs on ends as failed (KilledWorker), not lost; a Client works as scheduler."""
    monkeypatch.setattr(batch, "_run_one", _crash_on_first_attempt)
    with distributed.Client(cluster) as client:
        result = run_batch([_case("crash-always")], tmp_path / "out", scheduler=client, progress=False)
    (case,) = result.cases
    assert (case.status, case.error_type, case.attempts) == ("failed", "KilledWorker", 2)  # allowed-failures = 1
    assert case.error.startswith("the worker process died on every attempt (") and "fix: " in case.error
    assert len(case.attempt_errors) == 2 and all("died while running the case" in e for e in case.attempt_errors)
    assert "died on every attempt" in (tmp_path / "out" / "crash-always" / "error.log").read_text(encoding="utf-8")
    assert result.scheduler == cluster.scheduler_address
