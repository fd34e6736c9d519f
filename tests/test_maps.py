"""The coverage map: layers, legend, attribution, and names escaped (rendered HTML fragments)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from planner import maps
from planner.pipeline import run_coverage, write_coverage_outputs

from .conftest import toy_points

EVIL = '<script>alert("x")</script>医院'


@pytest.fixture
def toy_files(tmp_path, toy_roads):
    inst = toy_points([(100, 20), (980, -30)], ["F1", "F2"])
    pd.DataFrame({"name": [EVIL, "二号社区卫生服务中心"], "lon": inst.geometry.x, "lat": inst.geometry.y,
                  "tier": ["tertiary", ""]}).to_csv(tmp_path / "inst.csv", index=False)
    cells = toy_points([(300, 50), (530, 400), (700, 600), (900, 100)], ["a", "b", "c", "d"])
    pd.DataFrame({"lon": cells.geometry.x, "lat": cells.geometry.y, "population": [100, 200, 300, 400]}).to_csv(
        tmp_path / "pop.csv", index=False)
    return toy_roads, tmp_path / "inst.csv", tmp_path / "pop.csv"


def test_map_html_fragments(toy_files, tmp_path):
    roads, inst, pop = toy_files
    run = run_coverage(roads, inst, pop, minutes=(5, 10, 15), population_label="persons aged 20+ (WorldPop)")
    assert run.institutions.loc["2", "tier"] == "primary"  # blank tier -> name rule
    assert run.institutions.loc["2", "tier_source"] == "name_rule"
    out = write_coverage_outputs(run, tmp_path / "out", title="测试 <b>title</b>")
    html = (out / "map.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert "测试 &lt;b&gt;title&lt;/b&gt;" in html
    assert "OpenStreetMap</a> contributors" in html and "WorldPop" in html
    for fragment in ("planner-legend", "出行时间 Travel time", "Isochrones 15 min", "L.control.layers",
                     "缺口 gap", "三级医院", "社区卫生服务中心"):
        assert fragment in html, fragment
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["complete"] is True
    assert summary["population_total"] == 1000
    assert f"{summary['coverage_pct']:.1f}%" in html


def test_escape_helper():
    assert maps.esc(None) == ""
    assert maps.esc('a"b') == "a&quot;b"
    assert "WorldPop" not in maps.attribution("census population")
