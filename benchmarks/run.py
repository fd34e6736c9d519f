"""Run the benchmarks side by side and write benchmarks/results/results.{md,json}.

Usage:  make bench        (or: .venv/bin/python benchmarks/run.py [--quick] [--only city ...])

``--only SECTION`` (repeatable) runs only those sections and keeps the others' numbers from the
existing results.json; sections: wuhan, recipe, synthetic, scaling, siting, city.

Every case runs in a fresh process; times are wall-clock seconds of the work only (inputs are
loaded untimed), memory is the peak resident memory the work added (MB). Ratios are peer / planner
measured in this one run on this machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import cases  # noqa: E402
import city  # noqa: E402
from _common import run_isolated  # noqa: E402

OUT = Path(__file__).parent / "results"


PANDANA_TIMEOUT_S = 600  # seconds; pandana's contraction-hierarchy set-up on 1 M nodes did not end in 30 min
ROWS = {  # what each row measures
    "planner": "planner, as in the product: segment snapping within 500 m + walk to the road",
    "planner_nodes": "planner engine, the peers' work: nearest node, no access leg",
    "networkx_multisource": "networkx multi-source Dijkstra (nearest node)",
    "pandana": "pandana nearest_pois (nearest node; set-up included)",
    "osmnx_recipe": "OSMnx recipe: ego_graph + convex hull per institution, cells inside the union",
}
SECTIONS = ("wuhan", "recipe", "synthetic", "scaling", "siting", "city")
MODES = (("walk", (5.0, 10.0, 15.0)), ("ebike", (5.0, 10.0, 15.0)), ("drive", (15.0, 30.0)))  # the product's cases


def _fmt(x: float | None, nd: int = 2) -> str:
    return "—" if x is None or x != x else f"{x:,.{nd}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller synthetic graphs (a smoke run)")
    ap.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable); "
                    "the others keep their numbers from the existing results.json")
    ap.add_argument("--city-parts", default=",".join(city.PARTS),
                    help=f"with --only city: the parts to run, comma-separated, of {','.join(city.PARTS)}; "
                    "the others keep their numbers")
    ap.add_argument("--render", action="store_true", help="only rewrite results.md from the existing results.json")
    args = ap.parse_args()
    if args.render:
        (OUT / "results.md").write_text(render(json.loads((OUT / "results.json").read_text())))
        return
    side = 316 if args.quick else 1000
    n_inst, n_cells = 2000, 200_000
    results: dict = {}
    if args.only and (OUT / "results.json").exists():
        results = json.loads((OUT / "results.json").read_text())
    before = {sec: results.get("sections_run", {}).get(sec, results.get("started")) for sec in SECTIONS if sec in results}
    results.update({"machine": {"python": platform.python_version(), "platform": platform.platform(),
                                "cpus": __import__("os").cpu_count()}, "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    results["sections_run"] = {**before, **{sec: results["started"] for sec in SECTIONS if not args.only or sec in args.only}}

    def want(section: str) -> bool:
        return not args.only or section in args.only

    if want("wuhan"):
        run_wuhan(results)
    if want("recipe"):
        run_recipe(results)
    if want("synthetic"):
        run_synthetic(results, side, n_inst, n_cells)
    if want("scaling"):
        run_scaling(results, side)
    if want("siting"):
        run_siting(results)
    if want("city"):
        print("6/6 the whole city (tiled OSM ingestion, coverage end to end, isochrone cost, snapping, start-up) ...",
              flush=True)
        parts = tuple(p for p in args.city_parts.split(",") if p)
        if set(parts) - set(city.PARTS):
            ap.error(f"--city-parts: unknown part(s) {sorted(set(parts) - set(city.PARTS))}; choose from {city.PARTS}")
        results["city"] = city.run(parts, previous=results.get("city") if set(parts) != set(city.PARTS) else None)

    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False, default=float) + "\n")
    (OUT / "results.md").write_text(render(results))
    print((OUT / "results.md").read_text())


def run_wuhan(results: dict) -> None:
    """Section 1: Wuhan walk coverage, planner vs networkx and pandana."""
    print("1/6 Wuhan walk coverage ...", flush=True)
    w = {
        "planner": run_isolated(cases.planner_coverage_wuhan),
        "planner_nodes": run_isolated(cases.planner_nodes_wuhan),
        "networkx_multisource": run_isolated(cases.networkx_multisource_wuhan),
        "pandana": run_isolated(cases.pandana_wuhan),
    }
    for k, v in w.items():
        if "error" in v:
            print(k, v["error"])
    diff = float(np.nanmax(np.abs(np.where(np.isfinite(w["planner"]["node_times"]) & np.isfinite(w["networkx_multisource"]["node_times"]),
                                           w["planner"]["node_times"] - w["networkx_multisource"]["node_times"], 0.0))))
    for v in w.values():
        v.pop("node_times", None)
    w["max_abs_diff_node_times_s_planner_vs_networkx"] = diff
    results["wuhan"] = w


def run_recipe(results: dict) -> None:
    """Section 2: Wuhan per mode, planner vs the OSMnx isochrone recipe."""
    print("2/6 Wuhan, planner vs the OSMnx isochrone recipe (walk, e-bike, drive) ...", flush=True)
    results["recipe"] = [
        {"mode": mode, "minutes": list(mins),
         "planner_coverage": run_isolated(cases.planner_thresholds_wuhan, mode, mins),
         "recipe_coverage": run_isolated(cases.recipe_thresholds_wuhan, mode, mins),
         "planner_isochrones": run_isolated(cases.planner_isochrones_wuhan, mode, mins),
         "recipe_isochrones": run_isolated(cases.recipe_isochrones_wuhan, mode, mins)}
        for mode, mins in MODES]


def run_synthetic(results: dict, side: int, n_inst: int, n_cells: int) -> None:
    """Section 3: the generated 1 M-node graph."""
    print(f"3/6 synthetic {side * side:,} nodes x {n_inst} institutions ...", flush=True)
    s = {
        "planner": run_isolated(cases.planner_coverage_synthetic, side, n_inst, n_cells),
        "planner_nodes": run_isolated(cases.planner_nodes_synthetic, side, n_inst, n_cells),
        "networkx_multisource": run_isolated(cases.networkx_multisource_synthetic, side, n_inst, n_cells),
        "pandana": run_isolated(cases.pandana_synthetic, side, n_inst, n_cells, timeout_s=PANDANA_TIMEOUT_S),
        "osmnx_recipe": run_isolated(cases.osmnx_recipe_synthetic, side, n_inst, n_cells),
    }
    results["synthetic"] = {"nodes": side * side, "institutions": n_inst, "cells": n_cells, **s}


def run_scaling(results: dict, side: int) -> None:
    """Section 4: planner time and memory as nodes and institutions grow."""
    print("4/6 scaling ...", flush=True)
    scaling = []
    for sd in (100, 316, side):
        r = run_isolated(cases.planner_coverage_synthetic, sd, 2000, 50_000)
        scaling.append({"nodes": sd * sd, "institutions": 2000, "cells": 50_000, **r})
    for ni in (100, 2000, 10_000):
        r = run_isolated(cases.planner_coverage_synthetic, 316, ni, 50_000)
        scaling.append({"nodes": 316 * 316, "institutions": ni, "cells": 50_000, **r})
    results["scaling"] = scaling


def run_siting(results: dict) -> None:
    """Section 5: siting vs spopt."""
    print("5/6 siting vs spopt ...", flush=True)
    try:
        import bench_siting

        results["siting"] = bench_siting.run()
    except ImportError as exc:
        results["siting"] = {"error": f"siting benchmark unavailable: {exc}"}


CORE = ("wuhan", "recipe", "synthetic", "scaling")  # sections 1-4, rendered together


def render(r: dict) -> str:
    lines = ["# Benchmark results", "",
             f"Run {r['started']} on {r['machine']['platform']}, {r['machine']['cpus']} CPUs, Python {r['machine']['python']}.",
             "Times are seconds of the work only (inputs loaded and graphs built untimed, except where a build column is shown);",
             "memory is the peak resident memory the work added (MB); ratio = peer time / planner time on the same work,",
             "measured side by side in this run.", ""]
    runs = {sec: t for sec, t in r.get("sections_run", {}).items() if sec in r}
    if len(set(runs.values())) > 1:
        lines += ["Sections run at different times (`run.py --only`): "
                  + ", ".join(f"{sec} {t}" for sec, t in runs.items()) + ".", ""]
    core = all(k in r for k in CORE)
    if core:
        lines += render_core(r)
    else:
        lines += ["Sections 1-5 have not been run (`python benchmarks/run.py`).", ""]
    if "city" in r:
        lines += city.render(r["city"])
    out = lines + [""] + (targets(r) if core else [])
    if "city" in r:
        out += [""] + city.targets(r["city"])
    return "\n".join(out) + "\n"


def render_core(r: dict) -> list[str]:
    """Sections 1-5."""
    lines: list[str] = []
    w = r["wuhan"]
    pn = w.get("planner_nodes", {})
    lines += ["## 1. Wuhan walk coverage (5,300 nodes, 98 institutions, ~57,600 cells)", "",
              "Ratios are to the planner row doing the same work (nearest node); cells reached = within 15 min.", "",
              "| method | seconds | extra MB | ratio to planner (same work) | cells reached |", "|---|---|---|---|---|"]
    for k in ("planner", "planner_nodes", "networkx_multisource", "pandana"):
        v = w.get(k, {})
        ratio = "—" if k == "planner" else _ratio(v, pn)
        lines.append(f"| {ROWS[k]} | {_fmt(v.get('seconds'))} | {_fmt(v.get('extra_mb'), 0)} | {ratio} | "
                     f"{v.get('reached', v.get('error', '—'))} |")
    lines += ["", f"pandana network set-up (contraction hierarchies) is included in its time: "
              f"{_fmt(w['pandana'].get('setup_seconds'))} s.",
              f"Node-level nearest-institution times, planner vs networkx: max |difference| = "
              f"{w['max_abs_diff_node_times_s_planner_vs_networkx']:.2e} s.", ""]
    lines += ["## 2. Wuhan: planner vs OSMnx's isochrone recipe, per mode", "",
              "Coverage = which of the ~57,600 cells are within each threshold of an institution: planner from",
              "per-cell times (segment snapping, access walk, one multi-source Dijkstra); the recipe from one",
              "ego_graph per institution and trip time and the cells inside the union of the convex hulls",
              "(hulls take in land between roads but stop at the last node reached, so the counts differ).",
              "Isochrones = one polygon per institution and threshold: planner's traced from the coverage surface (a 50 m",
              "grid of the same per-cell times as coverage); the recipe's 60 m road band (its make_iso_polys, edges not cut).", "",
              "| mode | thresholds (min) | planner coverage s | recipe coverage s | ratio | cells covered (planner / recipe) "
              "| planner isochrones s | recipe isochrones s | ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for c in r.get("recipe", []):
        pc, rc, pi, ri = c["planner_coverage"], c["recipe_coverage"], c["planner_isochrones"], c["recipe_isochrones"]
        cov = " / ".join(f"{a:,}/{b:,}" for a, b in zip(pc.get("covered", []), rc.get("covered", [])))
        lines.append(f"| {c['mode']} | {', '.join(f'{m:g}' for m in c['minutes'])} | {_fmt(pc.get('seconds'))} | "
                     f"{_fmt(rc.get('seconds'))} | {_ratio(rc, pc)} | {cov} | {_fmt(pi.get('seconds'))} | "
                     f"{_fmt(ri.get('seconds'))} | {_ratio(ri, pi)} |")
    lines.append("")
    s = r["synthetic"]
    lines += [f"## 3. Generated road-like graph: {s['nodes']:,} nodes × {s['institutions']:,} institutions, {s['cells']:,} cells", "",
              "| method | build s | build MB | coverage s | coverage MB | ratio to planner (same work) | cells reached |",
              "|---|---|---|---|---|---|---|"]
    psn = s.get("planner_nodes", {})
    for k in ("planner", "planner_nodes", "networkx_multisource", "pandana", "osmnx_recipe"):
        v = s.get(k, {})
        # nearest-node peers do exactly planner_nodes' work; the recipe's output (cells within 15 min) is the product's
        ratio = "—" if k == "planner" else _ratio(v, s["planner"] if k == "osmnx_recipe" else psn)
        err = f" — {v['error'].strip().splitlines()[-1]}" if "error" in v else ""
        lines.append(f"| {ROWS[k]}{err} | {_fmt(v.get('build_seconds'))} | {_fmt(v.get('build_mb'), 0)} | "
                     f"{_fmt(v.get('seconds'))} | {_fmt(v.get('extra_mb'), 0)} | {ratio} | {v.get('reached', '—')} |")
    lines += ["", "The recipe's ratio is to the first planner row (the product's work: which cells are within 15 minutes).", ""]
    lines += ["## 4. planner scaling (coverage of 50,000 cells)", "",
              "| nodes | institutions | build s | coverage s | coverage MB |", "|---|---|---|---|---|"]
    for v in r["scaling"]:
        lines.append(f"| {v['nodes']:,} | {v['institutions']:,} | {_fmt(v.get('build_seconds'))} | {_fmt(v.get('seconds'))} | {_fmt(v.get('extra_mb'), 0)} |")
    lines += ["", "## 5. Siting (MCLP) vs spopt", ""]
    si = r.get("siting", {})
    if "error" in si:
        lines.append(si["error"])
    else:
        lines += si.get("markdown", [])
    return lines


def _speedup(peer: dict, ours: dict) -> float:
    """Peer seconds / planner seconds (NaN where either is missing)."""
    return peer.get("seconds", np.nan) / ours.get("seconds", np.nan)


def _ratio(peer: dict, ours: dict) -> str:
    return f"{_fmt(_speedup(peer, ours), 1)}×"


def targets(r: dict) -> list[str]:
    """The issue's targets, each with the measured value and met / not met."""
    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    out = ["## Targets", "", "| target | measured | |", "|---|---|---|"]
    for c in r.get("recipe", []):
        for work in ("coverage", "isochrones"):
            ratio = _speedup(c[f"recipe_{work}"], c[f"planner_{work}"])
            out.append(f"| ≥ 30× the OSMnx recipe: Wuhan {c['mode']} {work} | {_fmt(ratio, 1)}× | {verdict(ratio >= 30)} |")
    s = r["synthetic"]
    p, o = s["planner"], s.get("osmnx_recipe", {})
    ratio = _speedup(o, p)
    out.append(f"| ≥ 30× the OSMnx recipe: {s['nodes']:,} nodes, cells within 15 min | {_fmt(ratio, 1)}× | {verdict(ratio >= 30)} |")
    peak_gb = max(p.get("build_peak_mb", np.nan), p.get("peak_mb", np.nan)) / 1024
    out += [f"| coverage of {s['nodes']:,} nodes × {s['institutions']:,} institutions < 10 s | {_fmt(p.get('seconds'))} s "
            f"(+ {_fmt(p.get('build_seconds'))} s to compile the network) | {verdict(p.get('seconds', np.inf) < 10)} |",
            f"| … and < 4 GB | peak resident memory of the whole process {_fmt(peak_gb)} GB | {verdict(peak_gb < 4)} |"]
    si = r.get("siting", {})
    if "ratio" in si:
        out.append(f"| siting ≥ 20× spopt at equal objective | {_fmt(si['ratio'], 1)}×, objectives equal: {si.get('equal')} | "
                   f"{verdict(si['ratio'] >= 20 and bool(si.get('equal')))} |")
    return out


if __name__ == "__main__":
    main()
