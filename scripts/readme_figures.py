"""Rebuild the README's result figures from runs of the shipped cases.

Every number README.md quotes from a run of planner lives between marker comments::

    <!-- figures:KEY -->
    ...generated text...
    <!-- /figures -->

and is written there by this script from ``docs/figures.json``, which holds, per run, the command
that produced it and the figures read from its ``summary.json`` (and ``compare.json``).

Usage (from the repository root, with the venv's Python)::

    .venv/bin/python scripts/readme_figures.py            # run every case, write docs/figures.json, regenerate README.md
    .venv/bin/python scripts/readme_figures.py --render   # regenerate README.md from docs/figures.json only (no run)
    .venv/bin/python scripts/readme_figures.py --check    # run every case and compare with docs/figures.json (exit 1)
    .venv/bin/python scripts/readme_figures.py --only walk,referral   # just these runs (kept with the others)

Runs go to a temporary folder, never to ``outputs/``; the inputs in ``geodata/`` and ``scenarios/`` are only
read. The grid run takes two to three minutes on a 2-core machine, the others seconds each.

The same runs give the README's images: ``docs/wuhan_walk_map.png`` and ``docs/wuhan_ebike_map.png`` (the
runs' ``map.png``) and, when Chromium is installed, the offline screenshots in ``docs/screenshots/``
(``scripts/screenshots.py``).

The benchmark sentence of the siting section is read from ``benchmarks/results/results.md`` (written by
``make bench``), not re-run here.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIGURES = ROOT / "docs" / "figures.json"
BENCH_RESULTS = ROOT / "benchmarks" / "results" / "results.md"

WUHAN_ARGS = ["--network", "geodata/wuhan/roads.gpkg", "--institutions", "geodata/wuhan/institutions.geojson",
              "--population", "geodata/wuhan/population_age20plus_100m.tif", "--boundaries", "geodata/wuhan/districts.gpkg"]
#: the population label of `make run` (Makefile WUHAN_ARGS)
WUHAN_LABEL = ["--population-label", "persons aged 20+ (WorldPop; ages 0-19 not included)"]

BLOCK_RE = re.compile(r"<!-- figures:(?P<key>[a-z0-9-]+) -->\n(?P<body>.*?)<!-- /figures -->", re.S)
NBSP = "\u00a0"  # keeps a number with its unit when a paragraph is wrapped
OUT = "{out}"  # the run's output folder, replaced by a temporary path
OUT_ROOT = "{out_root}"  # a scenario run's out-root


# --------------------------------------------------------------------------------------------------------------------
# runs: the command, and which figures are read from its outputs
# --------------------------------------------------------------------------------------------------------------------


def _summary(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def _coverage_figures(out: Path) -> dict[str, Any]:
    s = _summary(out)
    html = (out / "map.html").read_text(encoding="utf-8")
    return {
        "mode": s["mode"],
        "speed_kph": s["speeds_kph"].get("all_roads"),
        "max_minutes": s["max_minutes"],
        "network_nodes": s["network"]["nodes"],
        "institutions_total": s["institutions"]["total"],
        "institutions_snapped": s["institutions"]["snapped"],
        "institutions_by_tier": {t: r["institutions"] for t, r in s["by_tier"].items()},
        "population_input_total": s["study_area"]["population_input_total"],
        "population_outside_study_area": s["study_area"]["population_outside_study_area"],
        "population_total": s["population_total"],
        "population_covered": {f"{t['minutes']:g}": t["population_covered"] for t in s["thresholds"]},
        "districts": {d["district"]: {"population": d["population"], "population_covered": d["population_covered"],
                                      "share_in_study_area_pct": d["share_in_study_area_pct"]} for d in s["by_district"]},
        "files": sorted(p.name for p in out.iterdir() if not p.name.startswith(".")),
        "map_html_mb": round((out / "map.html").stat().st_size / 1e6, 1),  # as the README shows it
        # a map that loads no script or stylesheet from the network opens on a PC without internet
        "map_self_contained": not re.search(r"<(?:script|link)[^>]+(?:src|href)=\"https?://", html),
    }


def _site_figures(out: Path) -> dict[str, Any]:
    s = _summary(out)
    return {
        "model": s["model"], "solver_status": s["solver_status"], "max_minutes": s["max_minutes"], "mode": s["mode"],
        "new_sites_requested": s["new_sites_requested"], "new_sites": s["new_sites"],
        "zero_gain_reason": s["zero_gain_reason"],
        "cells": s["counts"]["cells"], "candidates": s["counts"]["candidates"],
        "existing_sites": s["counts"]["existing_sites"],
        "population_total": s["population_total"],
        "population_covered_before": s["population_covered_before"],
        "population_covered_after": s["population_covered_after"],
        "added_population": [r["added_population"] for r in s["sites"]],
    }


def _grid_figures(out: Path) -> dict[str, Any]:
    s = _summary(out)
    c = s["comparison"]
    return {
        "n_grids": s["n_grids"], "leads_excluded": len(s["leads_excluded"]),
        "solver_status": s["solver_status"], "gap": s["gap"],
        "load_ratio_range": s["load_ratio_range"], "baseline_load_ratio_range": s["baseline_load_ratio_range"],
        "mean_travel_time_min": round(c["mean_travel_time_s"] / 60, 2),
        "baseline_mean_travel_time_min": round(c["baseline_mean_travel_time_s"] / 60, 2),
        "population_moved_pct": c["population_moved_pct"],
        "cells_unassigned": s["cells_unassigned"], "population_unassigned": s["population_unassigned"],
        "runtime_s": s["runtime_s"],
    }


def _referral_figures(out: Path) -> dict[str, Any]:
    s = _summary(out)
    return {
        "from_tiers": s["from_tiers"], "to_tiers": s["to_tiers"], "mode": s["mode"], "max_minutes": s["max_minutes"],
        "n_from": s["n_from"], "n_within": s["n_within"], "n_unsnapped": s["n_unsnapped"],
        "n_unreachable": s["n_unreachable"], "n_outside_study_area": s["n_outside_study_area"],
        "median_travel_time_min": s["median_travel_time_min"], "max_travel_time_min": s["max_travel_time_min"],
        "population_total": s["population"]["total"], "population_within": s["population"]["within"],
    }


def _scenario_figures(folder: Path) -> dict[str, Any]:
    s = _summary(folder)
    return {"name": folder.name, "mode": s["mode"], "speed_kph": s["speeds_kph"].get("all_roads"),
            "population_total": s["population_total"], "population_covered": s["population_covered"],
            "coverage_pct": s["coverage_pct"]}


def _compare_figures(out_root: Path, cmp: Path, a: str, b: str) -> dict[str, Any]:
    comp = json.loads((cmp / "compare.json").read_text(encoding="utf-8"))
    return {"a": _scenario_figures(out_root / a), "b": _scenario_figures(out_root / b),
            "population_newly_covered": comp["population_newly_covered"],
            "population_newly_lost": comp["population_newly_lost"]}


@dataclass(frozen=True)
class Run:
    """One command of the README and how to read its figures."""

    argv: tuple[str, ...]  # after `planner`; OUT / OUT_ROOT are placeholders
    read: Callable[[Path], dict[str, Any]]  # the figures, from the run's folder (the temporary root of this run)
    readme: str  # where the README shows it


def _out(root: Path) -> Path:
    return root / "out"


RUNS: dict[str, Run] = {
    "walk": Run(("coverage", *WUHAN_ARGS, *WUHAN_LABEL, "--mode", "walk",
                 "--title", "武汉中心城区 15分钟医疗服务圈 (步行 walk)", "--out", OUT),
                lambda r: _coverage_figures(_out(r)), "make run (walk)"),
    "ebike": Run(("coverage", *WUHAN_ARGS, *WUHAN_LABEL, "--mode", "ebike",
                  "--title", "武汉中心城区 15分钟医疗服务圈 (电动自行车 e-bike)", "--out", OUT),
                 lambda r: _coverage_figures(_out(r)), "make run (e-bike)"),
    "site": Run(("site", *WUHAN_ARGS, "--new-sites", "10", "--minutes", "15", "--out", OUT),
                lambda r: _site_figures(_out(r)), "Branch siting, first example"),
    "site-county": Run(("site", *WUHAN_ARGS, "--candidates", "institutions:primary", "--service-tier", "secondary",
                        "--service-tier", "tertiary", "--mode", "drive", "--minutes", "30", "--new-sites", "5", "--out", OUT),
                       lambda r: _site_figures(_out(r)), "Branch siting, county example"),
    "grid": Run(("grid", *WUHAN_ARGS, "--out", OUT), lambda r: _grid_figures(_out(r)), "Consortium grids"),
    "referral": Run(("referral", *WUHAN_ARGS, "--from-tier", "primary", "--to-tier", "secondary", "--to-tier", "tertiary",
                     "--mode", "drive", "--minutes", "30", "--out", OUT),
                    lambda r: _referral_figures(_out(r)), "Referral"),
    "scenario-new-centres": Run(("compare", "scenarios/wuhan_baseline.toml", "scenarios/wuhan_new_centres.toml",
                                 "--out-root", OUT_ROOT, "--out", OUT),
                                lambda r: _compare_figures(r / "root", _out(r), "wuhan-baseline", "wuhan-new-centres"),
                                "What-if scenarios"),
    "scenario-elderly": Run(("run", "scenarios/wuhan_elderly_walk.toml", "--out-root", OUT_ROOT),
                            lambda r: _scenario_figures(r / "root" / "wuhan-elderly-walk"), "What-if scenarios"),
    "scenario-bridge": Run(("compare", "scenarios/wuhan_baseline_ebike.toml", "scenarios/wuhan_bridge_closed_ebike.toml",
                            "--out-root", OUT_ROOT, "--out", OUT),
                           lambda r: _compare_figures(r / "root", _out(r), "wuhan-baseline-ebike",
                                                      "wuhan-bridge-closed-ebike"),
                           "What-if scenarios"),
}


def command_text(argv: tuple[str, ...]) -> str:
    """Return the command as a user types it (placeholders for the output folders)."""
    shown = [a.replace(OUT, "OUT").replace(OUT_ROOT, "OUT_ROOT") for a in argv]
    return shlex.join(["planner", *shown])


def run_case(key: str, tmp: Path) -> dict[str, Any]:
    """Run one README command into `tmp` (with this Python's planner) and read its figures."""
    spec = RUNS[key]
    root = tmp / key
    (root / "root").mkdir(parents=True)
    argv = [a.replace(OUT, str(_out(root))).replace(OUT_ROOT, str(root / "root")) for a in spec.argv]
    done = subprocess.run([sys.executable, "-m", "planner", *argv, "--quiet"], cwd=ROOT, capture_output=True,
                          text=True, encoding="utf-8")
    if done.returncode != 0:
        msg = f"{command_text(spec.argv)} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        raise RuntimeError(msg)
    return {"command": command_text(spec.argv), "readme": spec.readme, "figures": spec.read(root)}


#: README images made from the runs: (run, file in its output folder) -> file under docs/
IMAGES = {("walk", "map.png"): "wuhan_walk_map.png", ("ebike", "map.png"): "wuhan_ebike_map.png"}
#: the offline browser screenshots (scripts/screenshots.py) -> the runs they show
SCREENSHOTS = {"coverage": "walk", "site": "site", "grid": "grid"}


def write_images(tmp: Path, keys: list[str]) -> None:
    """Copy the runs' static maps into docs/ and, with all three runs, retake docs/screenshots/ (needs Chromium)."""
    for (key, name), target in IMAGES.items():
        if key in keys:
            shutil.copyfile(_out(tmp / key) / name, ROOT / "docs" / target)
    if all(k in keys for k in SCREENSHOTS.values()):
        argv = [a for kind, key in SCREENSHOTS.items() for a in (f"--{kind}", str(_out(tmp / key)))]
        subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshots.py"), *argv], cwd=ROOT, check=True)


def bench_figures(path: Path = BENCH_RESULTS) -> dict[str, Any]:
    """Read the MCLP benchmark figures (section 5 of ``benchmarks/results/results.md``, written by ``make bench``)."""
    text = path.read_text(encoding="utf-8")
    inst = re.search(r"K = (\d+) new sites.*?Instance: ([\d,]+) cells × ([\d,]+) candidates", text, re.S)
    ours = re.search(r"\| planner MCLP[^|]*\|[^|]*\|[^|]*\| ([\d.]+) \|", text)
    peer = re.search(r"\| spopt MCLP[^|]*\|[^|]*\|[^|]*\| ([\d.]+) \|.*?\| ([\d.]+)× \|", text)
    if not (inst and ours and peer):
        msg = f"{path}: section 5 (Siting (MCLP) vs spopt) not found; fix: re-run `make bench BENCH_ARGS=\"--only siting\"`"
        raise RuntimeError(msg)
    return {"command": "make bench (benchmarks/bench_siting.py; read from benchmarks/results/results.md)",
            "readme": "Branch siting, benchmark sentence",
            "figures": {"n_sites": int(inst[1]), "cells": int(inst[2].replace(",", "")),
                        "candidates": int(inst[3].replace(",", "")), "planner_total_s": float(ours[1]),
                        "spopt_total_s": float(peer[1]), "ratio": float(peer[2])}}


# --------------------------------------------------------------------------------------------------------------------
# rendering: README blocks from the figures
# --------------------------------------------------------------------------------------------------------------------


def _pct(part: float, whole: float, nd: int = 1) -> str:
    """Format a share in per cent, from the unrounded populations (no double rounding)."""
    return f"{100 * part / whole:.{nd}f}{NBSP}%"


def _millions(x: float) -> str:
    return f"{x / 1e6:.2f}{NBSP}M"


def _persons(x: float) -> str:
    return f"{round(x):,}"


def _para(text: str) -> str:
    """Wrap a prose paragraph at 100 columns (no word or code span is split)."""
    wrapped = textwrap.fill(re.sub(r"[ \n]+", " ", text.strip()), width=100, break_long_words=False, break_on_hyphens=False)
    return wrapped + "\n"  # NBSP (a number and its unit) is not a break point: render_blocks makes it a space


def _render_wuhan_case(f: dict[str, Any]) -> str:
    w = f["walk"]["figures"]
    return _para(f"Central Wuhan's road graph ({w['network_nodes']:,} nodes, main streets only: no footpaths or lanes), "
                 f"{w['institutions_total']} OSM hospitals ({w['institutions_snapped']} on the network; tiers from name "
                 f"rules) and the WorldPop raster of adults 20+. The graph covers {_millions(w['population_total'])} of "
                 f"Wuhan's {_millions(w['population_input_total'])} adults; the other "
                 f"{_millions(w['population_outside_study_area'])} live outside its extent and are reported as "
                 "*not analysed*, not as uncovered.")


DISTRICTS = ("江汉区", "武昌区", "洪山区")  # the README's three: the centre, a river-side district, one partly outside


def _render_coverage(f: dict[str, Any]) -> str:
    w, e = f["walk"]["figures"], f["ebike"]["figures"]
    part = [d + (" (part)" if w["districts"][d]["share_in_study_area_pct"] < 95 else "") for d in DISTRICTS]

    def col(r: dict[str, Any], *minutes: str) -> str:
        return " / ".join(_pct(r["population_covered"][m], r["population_total"]) for m in minutes)

    def dist(r: dict[str, Any]) -> str:
        return " / ".join(_pct(r["districts"][d]["population_covered"], r["districts"][d]["population"]) for d in DISTRICTS)

    t = w["institutions_by_tier"]
    return (f"| {w['max_minutes']:g}-minute coverage of adults 20+ | walk ({w['speed_kph']:g} km/h) | "
            f"e-bike ({e['speed_kph']:g} km/h) |\n|---|---|---|\n"
            f"| all institutions | {col(w, '15')} | {col(e, '15')} |\n"
            f"| within 5 / 10 min | {col(w, '5', '10')} | {col(e, '5', '10')} |\n"
            f"| {' / '.join(part)} | {dist(w)} | {dist(e)} |\n\n"
            + _para("The walking figure is low because the OSM sample holds few community health service centres "
                    f"({t['primary']} primary, {t['station']} station) and the graph has no minor streets, so "
                    "residents' access legs are long; a commission's own institution list (with `--coords gcj02` for "
                    "Amap coordinates) is the input that makes it a real assessment. E-bike map: "
                    "[docs/wuhan_ebike_map.png](docs/wuhan_ebike_map.png)."))


def _render_site(f: dict[str, Any]) -> str:
    s, c, b = f["site"]["figures"], f["site-county"]["figures"], f["bench-siting"]["figures"]
    added = " and ".join(f"+{_persons(x)}" for x in c["added_population"])
    stop = (f"not {c['new_sites_requested']} (\"{c['zero_gain_reason']}\")"
            if c["new_sites"] < c["new_sites_requested"] else "as asked")
    return _para(f"On the shipped case the first command chooses {s['new_sites']} sites from {s['candidates']:,} "
                 f"candidates for {s['cells']:,} demand cells and raises {s['max_minutes']:g}-minute walking coverage of "
                 f"adults 20+ from {_pct(s['population_covered_before'], s['population_total'], 2)} to "
                 f"{_pct(s['population_covered_after'], s['population_total'], 2)}; the county example returns "
                 f"{c['new_sites']} sites ({added} adults), {stop}. The benchmark instance ({b['cells']:,} cells × "
                 f"{b['candidates']:,} candidates, road nodes every 400 m, K{NBSP}={NBSP}{b['n_sites']}) is built and solved in "
                 f"{b['planner_total_s']:.2f}{NBSP}s, {b['ratio']:.0f}× faster than spopt at the same objective "
                 "(`benchmarks/results/results.md`).")


def _render_grid(f: dict[str, Any]) -> str:
    g = f["grid"]["figures"]
    lo, hi = g["load_ratio_range"]
    blo, bhi = g["baseline_load_ratio_range"]
    stop = ("the MIP stopped at its 200-node bound" if g["solver_status"] != "optimal" else "the MIP was solved to optimality")
    return _para(f"Wuhan, drive, 1 km cells, the {g['n_grids']} tertiary hospitals on the network ({g['leads_excluded']} "
                 "others are outside the study area or off the main-road network and are listed in `summary.json`), "
                 f"equal shares ±20 %: loads {lo:.2f}–{hi:.2f} of the share against {blo:.2f}–{bhi:.2f} for nearest-lead "
                 f"zones; mean travel time to the lead {g['mean_travel_time_min']:.1f}{NBSP}min against "
                 f"{g['baseline_mean_travel_time_min']:.1f}{NBSP}min; {g['population_moved_pct']:.0f}{NBSP}% of residents change "
                 f"lead; {stop} with a {100 * g['gap']:.1f}{NBSP}% gap (the same grids on every run; the run took "
                 f"{g['runtime_s']:.0f}{NBSP}s on the shared 2-core machine that made these figures). "
                 f"{g['cells_unassigned']} cells ({_persons(g['population_unassigned'])} persons) are more than 700 m "
                 "from a drivable road and are reported as unassigned.")


def _render_referral(f: dict[str, Any]) -> str:
    r = f["referral"]["figures"]
    on = r["n_from"] - r["n_unsnapped"]
    within_on = r["n_within"]  # institutions off the network are never within
    make_it = f"the {on} on it all make it" if within_on == on else f"{within_on} of the {on} on it make it"
    off = (f"the other {r['n_unsnapped']} are outside the road extract" if r["n_unsnapped"] == r["n_outside_study_area"]
           else f"{r['n_unsnapped']} are off the road network")
    return _para(f"Wuhan, primary → secondary/tertiary by car: {r['n_within']} of {r['n_from']} primary institutions "
                 f"within {r['max_minutes']:g}{NBSP}min ({_pct(r['n_within'], r['n_from'])}; {off}; {make_it}, median "
                 f"{r['median_travel_time_min']:.1f}{NBSP}min, longest {r['max_travel_time_min']:.1f}{NBSP}min); "
                 f"population-weighted {_pct(r['population_within'], r['population_total'])} of the "
                 f"{_millions(r['population_total'])} adults.")


def _render_scenarios(f: dict[str, Any]) -> str:
    n, e, b = (f[k]["figures"] for k in ("scenario-new-centres", "scenario-elderly", "scenario-bridge"))

    def cov(s: dict[str, Any]) -> str:
        return _pct(s["population_covered"], s["population_total"], 2)

    lost = "none lost" if n["population_newly_lost"] == 0 else f"{_persons(n['population_newly_lost'])} newly lost"
    return ("| scenario | 15-min coverage (adults 20+) |\n|---|---|\n"
            f"| `wuhan_baseline` (walk) | {cov(n['a'])} |\n"
            f"| `wuhan_new_centres`: three new centres in the largest gaps | {cov(n['b'])} "
            f"(+{_persons(n['population_newly_covered'])} newly covered, {lost}) |\n"
            f"| `wuhan_elderly_walk`: walking at {e['speed_kph']:g} km/h | {cov(e)} |\n"
            "| `wuhan_baseline_ebike` / `wuhan_bridge_closed_ebike` (长江大桥 closed) | "
            f"{cov(b['a'])} / {cov(b['b'])} |\n")


def _render_outputs(f: dict[str, Any]) -> str:
    files = f["walk"]["figures"]["files"]
    if f["ebike"]["figures"]["files"] != files:
        msg = "the walk and e-bike runs of `make run` wrote different files; fix: render them apart"
        raise ValueError(msg)
    kinds = [".json", ".xlsx", ".csv", ".gpkg", ".png"]  # summary, tables, layers, picture; map.html last
    rank = {n: (kinds.index(Path(n).suffix) if Path(n).suffix in kinds else len(kinds), n) for n in files}
    shown = [f"`{n}`" for n in sorted(files, key=rank.__getitem__) if n != "map.html"]
    return _para(f"Each output folder holds {', '.join(shown)} and `map.html` (open it in a browser).")


def _render_map_size(f: dict[str, Any]) -> str:
    w = f["walk"]["figures"]
    how = "with Leaflet embedded" if w["map_self_contained"] else "loading Leaflet from a CDN"
    return _para(f"The Wuhan walk map of `make run` is {w['map_html_mb']:.1f} MB, {how}.")


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "wuhan-case": _render_wuhan_case,
    "coverage": _render_coverage,
    "site": _render_site,
    "grid": _render_grid,
    "referral": _render_referral,
    "scenarios": _render_scenarios,
    "map-size": _render_map_size,
    "outputs": _render_outputs,
}


def render_blocks(figures: dict[str, Any]) -> dict[str, str]:
    """Render the text of every README block from the figures."""
    return {key: fn(figures["runs"]).replace(NBSP, " ") for key, fn in RENDERERS.items()}


def readme_blocks(text: str) -> dict[str, str]:
    """Return the README's marked blocks as they stand."""
    found: dict[str, str] = {}
    for m in BLOCK_RE.finditer(text):
        if m["key"] in found:
            msg = f"README.md: block <!-- figures:{m['key']} --> appears twice; fix: keep one"
            raise ValueError(msg)
        found[m["key"]] = m["body"]
    return found


def update_readme(text: str, blocks: dict[str, str]) -> str:
    """`text` with every marked block replaced by its rendered text."""
    missing = set(blocks) - set(readme_blocks(text))
    if missing:
        msg = f"README.md: no <!-- figures:KEY --> block for {sorted(missing)}; fix: add the markers"
        raise ValueError(msg)
    unknown = set(readme_blocks(text)) - set(blocks)
    if unknown:
        msg = f"README.md: blocks {sorted(unknown)} have no renderer in scripts/readme_figures.py"
        raise ValueError(msg)
    return BLOCK_RE.sub(lambda m: f"<!-- figures:{m['key']} -->\n{blocks[m['key']]}<!-- /figures -->", text)


def outside_blocks(text: str) -> str:
    """Return the README without its marked blocks."""
    return BLOCK_RE.sub("", text)


# --------------------------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------------------------


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += _differences(old.get(k), new.get(k), f"{where}.{k}" if where else k)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True)) for d in _differences(a, b, f"{where}[{i}]")]
    if isinstance(old, float) and isinstance(new, (int, float)) and math.isclose(old, new, rel_tol=1e-9):
        return []
    return [] if old == new else [f"{where}: {old!r} -> {new!r}"]


#: figures that depend on the machine, not on the data (reported, never compared)
NOT_COMPARED = {"runtime_s"}


def compare_figures(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """List the figures that differ between two runs of a case (machine-dependent timings left out)."""
    def strip(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k not in NOT_COMPARED}
    return _differences(strip(old["figures"]), strip(new["figures"]))


def main(argv: list[str] | None = None) -> int:
    """Run the cases, write docs/figures.json and regenerate README.md (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--render", action="store_true", help="only regenerate README.md from docs/figures.json")
    p.add_argument("--check", action="store_true", help="run and compare with docs/figures.json; write nothing")
    p.add_argument("--only", help=f"comma-separated runs, of: {', '.join(RUNS)}")
    args = p.parse_args(argv)
    stored = json.loads(FIGURES.read_text(encoding="utf-8")) if FIGURES.exists() else {"runs": {}}
    if not args.render:
        keys = args.only.split(",") if args.only else list(RUNS)
        unknown = [k for k in keys if k not in RUNS]
        if unknown:
            p.error(f"unknown runs {unknown}; choose from {', '.join(RUNS)}")
        fresh = {"bench-siting": bench_figures()}
        with tempfile.TemporaryDirectory(prefix="readme-figures-") as tmp:
            for k in keys:
                print(f"running {k}: {command_text(RUNS[k].argv)}", file=sys.stderr)
                fresh[k] = run_case(k, Path(tmp))
            if not args.check:
                write_images(Path(tmp), keys)
        if args.check:
            diffs = [f"{k}: {d}" for k, v in fresh.items() if k in stored["runs"]
                     for d in compare_figures(stored["runs"][k], v)]
            diffs += [f"{k}: not in {FIGURES.name}" for k in fresh if k not in stored["runs"]]
            print("\n".join(diffs) or f"{FIGURES.name} agrees with a fresh run of {', '.join(fresh)}")
            return 1 if diffs else 0
        import planner

        stored = {"generated_by": "scripts/readme_figures.py", "planner_version": planner.__version__,
                  "runs": {**stored["runs"], **fresh}}
        stored["runs"] = {k: stored["runs"][k] for k in ["bench-siting", *RUNS] if k in stored["runs"]}
        FIGURES.write_text(json.dumps(stored, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {FIGURES.relative_to(ROOT)}", file=sys.stderr)
    text = README.read_text(encoding="utf-8")
    new = update_readme(text, render_blocks(stored))
    if new != text:
        README.write_text(new, encoding="utf-8")
        print("README.md: figures regenerated", file=sys.stderr)
    else:
        print("README.md: figures already up to date", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
