"""Siting benchmark: planner's MCLP (sparse model, highspy) vs spopt's MCLP (dense cost matrix, PuLP + HiGHS)
on the Wuhan case: 500 m demand cells x road-node candidates every 400 m, 15-minute walk, K = 20 new sites,
existing institutions kept open (for spopt as predefined facilities, which it counts in p)."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from _common import Meter, run_isolated

K = 20
MINUTES = 15.0


def _instance() -> dict[str, Any]:
    import pandas as pd

    from planner import candidates, datasets, travel_time
    from planner.pipeline import load_case

    case = load_case(datasets.get_path("wuhan_roads"), datasets.get_path("wuhan_institutions"),
                     datasets.get_path("wuhan_population"), mode="walk", cell_size_m=500)
    net = case.net
    snap_i = travel_time.snap_points(net, case.institutions)
    existing = case.institutions[snap_i["snapped"].to_numpy()]
    cand = candidates.candidates_from_network(net, spacing_m=400, study_area=case.area)
    sites = pd.concat([existing[["geometry"]], cand[["geometry"]]])
    od = travel_time.od_travel_times(net, travel_time.snap_points(net, case.cells), travel_time.snap_points(net, sites),
                                     max_minutes=MINUTES)
    return {"od": od, "demand": case.cells["population"], "cand": cand.index, "existing": existing.index}


def planner_mclp() -> dict[str, Any]:
    from planner import siting

    d = _instance()
    with Meter() as m:
        model = siting.MCLP.from_travel_times(d["od"], d["demand"], d["cand"], max_minutes=MINUTES, n_sites=K,
                                              existing=d["existing"])
        r = model.solve()
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "objective": r.objective, "status": r.status,
            "build_s": r.build_s, "solve_s": r.solve_s, "cells": len(d["demand"]), "candidates": len(d["cand"]),
            "existing": len(d["existing"]), "pairs": len(d["od"])}


def spopt_mclp() -> dict[str, Any]:
    import pulp
    from spopt.locate import MCLP as SpoptMCLP

    d = _instance()
    sites = list(d["existing"]) + list(d["cand"])
    col = {s: j for j, s in enumerate(sites)}
    row = {c: i for i, c in enumerate(d["demand"].index)}
    od = d["od"]
    with Meter() as m:
        cost = np.full((len(row), len(col)), 1e9)
        cost[od["origin_id"].map(row).to_numpy(), od["destination_id"].map(col).to_numpy()] = od["travel_time_s"].to_numpy()
        predefined = np.zeros(len(col), dtype=bool)
        predefined[: len(d["existing"])] = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            model = SpoptMCLP.from_cost_matrix(cost, d["demand"].to_numpy(), service_radius=MINUTES * 60,
                                               p_facilities=K + len(d["existing"]), predefined_facilities_arr=predefined,
                                               name="mclp")
            build = time.perf_counter() - t
            model = model.solve(pulp.HiGHS(msg=False))
    return {"seconds": m.seconds, "extra_mb": m.extra_mb, "objective": float(pulp.value(model.problem.objective)),
            "build_s": build, "solve_s": m.seconds - build}


def run() -> dict[str, Any]:
    ours = run_isolated(planner_mclp)
    theirs = run_isolated(spopt_mclp)
    md = ["Wuhan, 15-minute walk, K = 20 new sites, existing institutions kept open.", ""]
    if "error" in ours or "error" in theirs:
        md.append(f"error: {ours.get('error') or theirs.get('error')}")
        return {"planner": ours, "spopt": theirs, "markdown": md}
    equal = abs(ours["objective"] - theirs["objective"]) <= 1e-6 * max(1.0, abs(theirs["objective"]))
    md += [f"Instance: {ours['cells']:,} cells × {ours['candidates']:,} candidates (+{ours['existing']} existing), "
           f"{ours['pairs']:,} pairs within 15 min.", "",
           "| method | build s | solve s | total s | extra MB | objective (persons covered) | ratio |", "|---|---|---|---|---|---|---|",
           f"| planner MCLP (sparse, highspy) | {ours['build_s']:.2f} | {ours['solve_s']:.2f} | {ours['seconds']:.2f} | "
           f"{ours['extra_mb']:.0f} | {ours['objective']:,.1f} | 1.0× |",
           f"| spopt MCLP (dense, PuLP + HiGHS) | {theirs['build_s']:.2f} | {theirs['solve_s']:.2f} | {theirs['seconds']:.2f} | "
           f"{theirs['extra_mb']:.0f} | {theirs['objective']:,.1f} | {theirs['seconds'] / ours['seconds']:.1f}× |", "",
           f"Objectives equal: {equal} "
           f"(difference {ours['objective'] - theirs['objective']:.3g})."]
    return {"planner": ours, "spopt": theirs, "markdown": md, "ratio": theirs["seconds"] / ours["seconds"], "equal": equal}


if __name__ == "__main__":
    print("\n".join(run()["markdown"]))
