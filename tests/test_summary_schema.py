"""Every ``summary.json`` matches its TypedDict in :mod:`planner.pipeline.summary`, key by key and type by type.

Real coverage, scenario, siting and grid runs on Optics Valley (光谷) are written with
:func:`planner.exports.write_summary` and read back. Each summary must hold exactly the required keys of its
type plus some of the optional ones, recursively, and each value must have the documented type, so a key added
to a summary without documenting it fails here.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any, Union

import pandas as pd
import pytest

from planner import datasets, settings
from planner.exports import write_summary
from planner.pipeline import run_coverage, run_grids, run_siting
from planner.pipeline.summary import (
    CoverageByTier,
    CoverageSummary,
    GridDistrictRow,
    GridSummary,
    LeadRow,
    ScenarioSummary,
    SitingSummary,
    TierCounts,
)
from planner.scenarios import CaseCache, run_scenario

from .test_cli import INSTITUTIONS, NETWORK, POPULATION

DISTRICTS = datasets.get_path("wuhan_districts")


def _problems(value: Any, tp: Any, path: str = "summary") -> list[str]:
    """Return how `value` departs from the type `tp` (TypedDict, list[X], dict[str, X], X | None, scalars)."""
    if typing.is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not a dict ({tp.__name__})"]
        hints = typing.get_type_hints(tp)
        out = [f"{path}: missing key '{k}' of {tp.__name__}" for k in sorted(tp.__required_keys__ - set(value))]
        out += [f"{path}: key '{k}' is not in {tp.__name__}" for k in sorted(set(value) - set(hints))]
        for k in value:
            if k in hints:
                out += _problems(value[k], hints[k], f"{path}.{k}")
        return out
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        found = [_problems(value, a, path) for a in args]
        return [] if any(not f for f in found) else [f"{path}: {value!r} is none of {tp}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__}, not a list"]
        return [p for i, v in enumerate(value) for p in _problems(v, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not a dict"]
        return [p for k, v in value.items() for p in _problems(k, args[0], f"{path} key") + _problems(v, args[1], f"{path}.{k}")]
    if tp is type(None):
        return [] if value is None else [f"{path}: {value!r} is not None"]
    if tp is float:  # JSON writes 300.0 as 300.0 but an int as 300: both are numbers
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    return [] if ok else [f"{path}: {value!r} is a {type(value).__name__}, not {getattr(tp, '__name__', tp)}"]


def _written(summary: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Write `summary` with the one writer and read the file back."""
    path = write_summary(summary, folder)
    assert path == folder / "summary.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert list(data) == list(summary)
    return data


def _assert_matches(summary: dict[str, Any], tp: Any, folder: Path) -> dict[str, Any]:
    data = _written(summary, folder)
    problems = _problems(data, tp)
    assert not problems, "\n".join(problems)
    return data


# ------------------------------------------------------------------------------------------ runs


@pytest.fixture(scope="module")
def coverage_run():
    return run_coverage(NETWORK, INSTITUTIONS, POPULATION, boundaries=DISTRICTS, cell_size_m=300, with_isochrones=False)


@pytest.fixture(scope="module")
def siting_run():
    return run_siting(NETWORK, INSTITUTIONS, POPULATION, n_sites=2, max_minutes=10, cell_size_m=300,
                      boundaries=DISTRICTS, candidate_spacing_m=400)


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """Grids of the two hospitals (二级, 三级甲等) of Optics Valley, with bed numbers for the capacity keys."""
    inst = pd.read_csv(INSTITUTIONS).assign(beds=[100, 50, 400, 1500])
    path = tmp_path_factory.mktemp("grid") / "institutions.csv"
    inst.to_csv(path, index=False)
    return run_grids(NETWORK, path, POPULATION, lead_tiers=("secondary", "tertiary"), boundaries=DISTRICTS,
                     cell_size_m=500, capacity_column="beds", time_limit_s=20)


@pytest.fixture(scope="module")
def scenario_run(tmp_path_factory, coverage_run):
    """A scenario with one edit of each kind: add, remove, re-tier, close a road by id."""
    road = next(d["osmid"] for _, _, d in coverage_run.graph.edges(data=True) if isinstance(d.get("osmid"), int))
    tmp = tmp_path_factory.mktemp("scenario")
    path = tmp / "edits.toml"
    path.write_text(f"""
name = "gg-edits"
title = "光谷 edits"
[inputs]
network = "{NETWORK.as_posix()}"
institutions = "{Path(INSTITUTIONS).as_posix()}"
population = "{Path(POPULATION).as_posix()}"
boundaries = "{Path(DISTRICTS).as_posix()}"
[analysis]
mode = "walk"
minutes = [10, 15]
cell_size_m = 300
isochrones = false
[edits]
remove_institutions = ["1"]
[[edits.add_institutions]]
name = "新社区卫生服务中心"
lon = 114.52
lat = 30.485
capacity = 20
[[edits.change_tier]]
id = "2"
tier = "primary"
[[edits.close_roads]]
ids = [{road}]
""", encoding="utf-8")
    return run_scenario(path, out_root=None, cache=CaseCache())


# ------------------------------------------------------------------------------------------ the schemas


def test_coverage_summary_matches_its_type(coverage_run, tmp_path):
    s = _assert_matches(coverage_run.summary, CoverageSummary, tmp_path)
    assert [t["minutes"] for t in s["thresholds"]] == [5.0, 10.0, 15.0]
    assert s["by_district"] and all("share_in_study_area_pct" in d for d in s["by_district"])  # optional keys seen


def test_scenario_summary_matches_its_type(scenario_run, tmp_path):
    s = _assert_matches(scenario_run.summary, ScenarioSummary, tmp_path)
    edits = s["scenario"]["edits"]
    assert [len(edits[k]) for k in ("add_institutions", "remove_institutions", "change_tier", "close_roads")] == [1, 1, 1, 1]
    assert s["scenario"]["closed"]["closed_edges"] > 0
    # a scenario key in a plain coverage summary is undocumented
    assert _problems(s, CoverageSummary) == ["summary: key 'scenario' is not in CoverageSummary"]


def test_siting_summary_matches_its_type(siting_run, tmp_path):
    s = _assert_matches(siting_run.summary, SitingSummary, tmp_path)
    assert len(s["sites"]) == 2 and len(s["marginal_curve"]) == 2


def test_grid_summary_matches_its_type(grid_run, tmp_path):
    s = _assert_matches(grid_run.summary, GridSummary, tmp_path)
    assert s["n_grids"] == 2 and len(s["leads"]) == 2
    assert s["by_district"] and all("capacity_per_1000" in d for d in s["by_district"])  # optional keys seen


def test_per_tier_types_list_every_tier():
    assert CoverageByTier.__required_keys__ == TierCounts.__required_keys__ == set(settings.TIERS)
    assert {f"members_{t}" for t in settings.TIERS} <= LeadRow.__required_keys__
    assert {f"institutions_{t}" for t in settings.TIERS} <= GridDistrictRow.__optional_keys__


def test_checker_rejects_an_undocumented_key_and_a_wrong_type(siting_run, tmp_path):
    s = _written(siting_run.summary, tmp_path)
    assert _problems({**s, "new_key": 1}, SitingSummary) == ["summary: key 'new_key' is not in SitingSummary"]
    assert _problems({**s, "mode": 3}, SitingSummary) == ["summary.mode: 3 is a int, not str"]
    rows = [{**s["sites"][0], "extra": True}]
    assert _problems({**s, "sites": rows}, SitingSummary) == ["summary.sites[0]: key 'extra' is not in SiteRow"]
    missing = {k: v for k, v in s.items() if k != "runtime_s"}
    assert _problems(missing, SitingSummary) == ["summary: missing key 'runtime_s' of SitingSummary"]
    assert _problems({**s, "mip_gap": None}, SitingSummary) == ["summary.mip_gap: None is a NoneType, not float"]
