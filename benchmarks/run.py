"""Run the benchmarks side by side and write benchmarks/results/results.{md,json}.

Usage:  make bench        (or: .venv/bin/python benchmarks/run.py [--quick])

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
from _common import run_isolated  # noqa: E402

OUT = Path(__file__).parent / "results"


def _fmt(x: float | None, nd: int = 2) -> str:
    return "—" if x is None or x != x else f"{x:,.{nd}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller synthetic graphs (a smoke run)")
    args = ap.parse_args()
    side = 316 if args.quick else 1000
    n_inst, n_cells = 2000, 200_000
    results: dict = {"machine": {"python": platform.python_version(), "platform": platform.platform(),
                                 "cpus": __import__("os").cpu_count()}, "started": time.strftime("%Y-%m-%d %H:%M:%S")}

    print("1/4 Wuhan walk coverage ...", flush=True)
    w = {
        "planner": run_isolated(cases.planner_coverage_wuhan),
        "planner_isochrones": run_isolated(cases.planner_isochrones_wuhan),
        "networkx_multisource": run_isolated(cases.networkx_multisource_wuhan),
        "pandana": run_isolated(cases.pandana_wuhan),
        "osmnx_recipe": run_isolated(cases.osmnx_recipe_wuhan),
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

    print(f"2/4 synthetic {side * side:,} nodes x {n_inst} institutions ...", flush=True)
    s = {
        "planner": run_isolated(cases.planner_coverage_synthetic, side, n_inst, n_cells),
        "networkx_multisource": run_isolated(cases.networkx_multisource_synthetic, side, n_inst, n_cells),
        "pandana": run_isolated(cases.pandana_synthetic, side, n_inst, n_cells),
        "osmnx_recipe": run_isolated(cases.osmnx_recipe_synthetic, side, n_inst, 10),
    }
    results["synthetic"] = {"nodes": side * side, "institutions": n_inst, "cells": n_cells, **s}

    print("3/4 scaling ...", flush=True)
    scaling = []
    for sd in (100, 316, side):
        r = run_isolated(cases.planner_coverage_synthetic, sd, 2000, 50_000)
        scaling.append({"nodes": sd * sd, "institutions": 2000, "cells": 50_000, **r})
    for ni in (100, 2000, 10_000):
        r = run_isolated(cases.planner_coverage_synthetic, 316, ni, 50_000)
        scaling.append({"nodes": 316 * 316, "institutions": ni, "cells": 50_000, **r})
    results["scaling"] = scaling

    print("4/4 siting vs spopt ...", flush=True)
    try:
        import bench_siting

        results["siting"] = bench_siting.run()
    except ImportError as exc:
        results["siting"] = {"error": f"siting benchmark unavailable: {exc}"}

    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False, default=float) + "\n")
    (OUT / "results.md").write_text(render(results))
    print((OUT / "results.md").read_text())


def render(r: dict) -> str:
    lines = ["# Benchmark results", "",
             f"Run {r['started']} on {r['machine']['platform']}, {r['machine']['cpus']} CPUs, Python {r['machine']['python']}.",
             "Times are seconds of the work only; memory is the peak resident memory the work added (MB);",
             "ratio = peer time / planner time, measured side by side in this run.", ""]
    w = r["wuhan"]
    p = w["planner"]
    lines += ["## 1. Wuhan walk coverage (5,300 nodes, 98 institutions, ~57,600 cells)", "",
              "| method | seconds | extra MB | ratio to planner | cells reached |", "|---|---|---|---|---|"]
    for k in ("planner", "networkx_multisource", "pandana"):
        v = w[k]
        lines.append(f"| {k} | {_fmt(v.get('seconds'))} | {_fmt(v.get('extra_mb'), 0)} | "
                     f"{_fmt(v.get('seconds', np.nan) / p['seconds'], 1)}× | {v.get('reached', '—')} |")
    both = p["seconds"] + w["planner_isochrones"]["seconds"]
    o = w["osmnx_recipe"]
    lines += ["", "Coverage **and** a 15-minute isochrone per institution:", "",
              "| method | seconds | extra MB | ratio to planner |", "|---|---|---|---|",
              f"| planner (segment-snapped coverage + network-cut isochrones) | {_fmt(both)} | "
              f"{_fmt(max(p['extra_mb'], w['planner_isochrones']['extra_mb']), 0)} | 1.0× |",
              f"| OSMnx recipe (ego_graph + convex hull per institution, per-institution Dijkstra) | {_fmt(o.get('seconds'))} | "
              f"{_fmt(o.get('extra_mb'), 0)} | {_fmt(o.get('seconds', np.nan) / both, 1)}× |", "",
              f"pandana network set-up (contraction hierarchies) is included in its time: {_fmt(w['pandana'].get('setup_seconds'))} s.",
              f"Node-level nearest-institution times, planner vs networkx: max |difference| = "
              f"{w['max_abs_diff_node_times_s_planner_vs_networkx']:.2e} s.", ""]
    s = r["synthetic"]
    ps = s["planner"]
    lines += [f"## 2. Generated road-like graph: {s['nodes']:,} nodes × {s['institutions']:,} institutions, {s['cells']:,} cells", "",
              "| method | build s | build MB | coverage s | coverage MB | ratio (coverage) |", "|---|---|---|---|---|---|"]
    for k in ("planner", "networkx_multisource", "pandana", "osmnx_recipe"):
        v = s[k]
        note = f" (extrapolated from {v['sample']} institutions)" if v.get("extrapolated") else ""
        lines.append(f"| {k}{note} | {_fmt(v.get('build_seconds'))} | {_fmt(v.get('build_mb'), 0)} | {_fmt(v.get('seconds'))} | "
                     f"{_fmt(v.get('extra_mb'), 0)} | {_fmt(v.get('seconds', np.nan) / ps['seconds'], 1)}× |")
    lines += ["", "## 3. planner scaling (coverage of 50,000 cells)", "",
              "| nodes | institutions | build s | coverage s | coverage MB |", "|---|---|---|---|---|"]
    for v in r["scaling"]:
        lines.append(f"| {v['nodes']:,} | {v['institutions']:,} | {_fmt(v.get('build_seconds'))} | {_fmt(v.get('seconds'))} | {_fmt(v.get('extra_mb'), 0)} |")
    lines += ["", "## 4. Siting (MCLP) vs spopt", ""]
    si = r.get("siting", {})
    if "error" in si:
        lines.append(si["error"])
    else:
        lines += si.get("markdown", [])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
