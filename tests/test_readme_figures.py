"""The README's result figures are generated (scripts/readme_figures.py), and agree with runs of the shipped cases."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("_readme_figures", ROOT / "scripts" / "readme_figures.py")
rf = sys.modules.setdefault("_readme_figures", importlib.util.module_from_spec(_spec))  # dataclasses look it up
_spec.loader.exec_module(rf)

README = (ROOT / "README.md").read_text(encoding="utf-8")
FIGURES = json.loads((ROOT / "docs" / "figures.json").read_text(encoding="utf-8"))
FIX = "regenerate with `.venv/bin/python scripts/readme_figures.py` (runs) or `--render` (from docs/figures.json)"


# ------------------------------------------------------------------------------------------- (a) README == JSON


def test_every_block_has_a_renderer_and_every_renderer_a_block():
    assert set(rf.readme_blocks(README)) == set(rf.RENDERERS)


@pytest.mark.parametrize("key", sorted(rf.RENDERERS))
def test_readme_block_equals_rendering_of_committed_figures(key):
    assert rf.readme_blocks(README)[key] == rf.render_blocks(FIGURES)[key], f"README block '{key}' is stale: {FIX}"


def test_figures_json_holds_every_run_with_its_current_command():
    runs = FIGURES["runs"]
    assert set(runs) == {*rf.RUNS, "bench-siting"}
    for key, spec in rf.RUNS.items():
        assert runs[key]["command"] == rf.command_text(spec.argv), f"{key}: the command changed since the last run: {FIX}"


def test_the_known_drift_is_gone():
    """The README once said 1,362 candidates for the 500 m example (that is the benchmark's 400 m instance)."""
    site = FIGURES["runs"]["site"]["figures"]
    block = rf.readme_blocks(README)["site"]
    assert f"{site['candidates']:,} candidates" in block
    bench = FIGURES["runs"]["bench-siting"]["figures"]
    assert site["cells"] == bench["cells"] and site["candidates"] < bench["candidates"]


def test_make_run_is_the_command_of_the_coverage_figures():
    """The walk and e-bike figures come from exactly the commands of `make run` (but the output folder)."""
    dry = subprocess.run(["make", "-n", "-s", "run"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    made = [shlex.split(line)[1:] for line in dry.splitlines() if "planner coverage" in line]

    def without_out(argv):
        i = argv.index("--out")
        return [*argv[:i], *argv[i + 2:]]

    assert [without_out(a) for a in made] == [without_out(list(rf.RUNS[k].argv)) for k in ("walk", "ebike")]


def test_bench_figures_are_read_from_the_committed_results():
    assert rf.bench_figures()["figures"] == FIGURES["runs"]["bench-siting"]["figures"]


def test_runs_write_only_into_their_temporary_folder():
    """Every command names its output folder (and a scenario run its out-root), so nothing goes to outputs/."""
    for key, spec in rf.RUNS.items():
        assert "outputs" not in " ".join(spec.argv), key
        pairs = set(zip(spec.argv, spec.argv[1:], strict=False))
        assert ("--out-root", rf.OUT_ROOT) in pairs if spec.argv[0] in ("run", "compare") else ("--out", rf.OUT) in pairs, key


# ------------------------------------------------------------------------------------------- (b) JSON == a run


def _listing(*folders: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for f in folders if f.exists() for p in f.rglob("*")}


@pytest.mark.parametrize("key", ["walk", "referral"])
def test_committed_figures_agree_with_a_fresh_run(key, tmp_path):
    """The cheap runs (seconds each); `scripts/readme_figures.py --check` re-runs them all, the grid included."""
    watched = (ROOT / "geodata" / "wuhan", ROOT / "scenarios")
    before = _listing(*watched)
    fresh = rf.run_case(key, tmp_path)
    assert _listing(*watched) == before, "the run wrote next to its inputs"
    assert fresh["command"] == FIGURES["runs"][key]["command"]
    assert rf.compare_figures(FIGURES["runs"][key], fresh) == [], FIX


# ------------------------------------------------------------------------------------------- (c) no typed copies

_NUMBER = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])|(?<![\d.,])\d+\.\d+(?![\d.])")


def _outside_benchmarks(text: str) -> str:
    """The README without its marked blocks and without the benchmark section (figures of `make bench`)."""
    return re.sub(r"^## Benchmarks\n.*?(?=^## )", "", rf.outside_blocks(text), flags=re.S | re.M)


#: numbers in the blocks that are also, rightly, typed elsewhere: inputs and versions, not results
NOT_RESULTS = {
    "3.2": "the elderly walking speed (km/h) of wuhan_elderly_walk, an input: `--speed-kph 3.2`",
    "1.0": "licence versions (ODbL 1.0)",
}


def test_no_run_figure_is_typed_outside_the_blocks():
    generated = {n for body in rf.render_blocks(FIGURES).values() for n in _NUMBER.findall(body)} - set(NOT_RESULTS)
    typed = set(_NUMBER.findall(_outside_benchmarks(README)))
    assert generated & typed == set(), "figures of a run typed outside a <!-- figures:… --> block"


def test_the_typed_figure_check_can_fail():
    walk_pct = rf.render_blocks(FIGURES)["coverage"].split("| all institutions | ")[1].split(" %")[0]
    assert walk_pct in _NUMBER.findall(_outside_benchmarks(README + f"\nWalk coverage is {walk_pct} %.\n"))
