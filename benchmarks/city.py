"""Section 6 of the benchmarks: the whole city (issue 14).

* City-scale ingestion: planner's OSM loader vs pyrosm ``get_network("walking")`` vs
  ``osmnx.graph_from_xml`` on the shipped Optics Valley extract tiled to about 350 k and 1.4 M
  highway nodes (``make_tiled_pbf.py``; the files go to ``benchmarks/data/`` and are made when missing).
* ``planner coverage`` walk end to end (load, coverage, isochrones, map) on the 1.4 M-node file.
* Isochrone cost: Wuhan drive coverage (15, 30 min) end to end with and without ``--no-isochrones``.
* Wuhan walk cell snapping: ``travel_time.snap_points`` on the ~57,600 cells, best of 5.
* CLI start-up: ``planner --help`` and ``planner version``, best of 5.

Every tool runs in its own process (``python benchmarks/city.py child TOOL FILE``, or the CLI), so its
wall time and peak resident memory (``ru_maxrss`` from ``os.wait4``) are its own. A process is given up
on past its time limit or past ``MEM_LIMIT_MB`` of resident memory, and the table says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
SOURCE = ROOT / "geodata" / "osm" / "wuhan_guanggu_east_lake_hitech.osm.pbf"
SIZES = (("350k", 350_000), ("1.4M", 1_400_000))  # label, target highway nodes
REPEATS = 3  # planner and pyrosm loads and the Wuhan drive runs: best of 3 fresh processes (osmnx runs once)
OSMNX_TIMEOUT_S = 600  # the issue lets osmnx be given up on past 10 minutes
LOAD_TIMEOUT_S = 1800
CLI_TIMEOUT_S = 1800
MEM_LIMIT_MB = 12_000  # a process past this is killed, so the bench cannot take the machine down
BASELINE_SNAP_S = 0.53  # Wuhan walk cell snapping before issue 14 (the figure)
BASELINE = {"help_s": 3.9, "isochrone_added_pct": 790.0}  # the "now" column
WUHAN = ROOT / "geodata" / "wuhan"
WUHAN_ARGS = ["--network", str(WUHAN / "roads.gpkg"), "--institutions", str(WUHAN / "institutions.geojson"),
              "--population", str(WUHAN / "population_age20plus_100m.tif"), "--boundaries", str(WUHAN / "districts.gpkg"),
              "--population-label", "persons aged 20+ (WorldPop; ages 0-19 not included)"]  # the Makefile's WUHAN_ARGS


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


# ----------------------------------------------------------------------------- inputs


def tiled_inputs(target: int) -> dict[str, Any]:
    """Return the tiled files for about `target` highway nodes (made when missing) and their description."""
    sys.path.insert(0, str(HERE))
    import make_tiled_pbf

    src = make_tiled_pbf.read_source(SOURCE)
    n = make_tiled_pbf.pick_n(src, target)
    stem = DATA / f"guanggu_{n}x{n}"
    paths = {"pbf": Path(f"{stem}.osm.pbf"), "xml": Path(f"{stem}_walk.osm"), "institutions": Path(f"{stem}_institutions.csv"),
             "population": Path(f"{stem}_population.tif"), "info": Path(f"{stem}.osm.pbf.json")}
    if not all(p.exists() for p in paths.values()):
        print(f"  generating {paths['pbf'].name} ({n} x {n} copies of {SOURCE.name}) ...", flush=True)
        make_tiled_pbf.main([str(SOURCE), str(paths["pbf"]), "--n", str(n), "--institutions-out", str(paths["institutions"]),
                             "--population-out", str(paths["population"]), "--xml-out", str(paths["xml"])])
    info = json.loads(paths["info"].read_text())
    return {**{k: str(v) for k, v in paths.items()}, "info": info}


# ----------------------------------------------------------------------------- measuring a process


def run_process(argv: list[str], *, timeout_s: float, mem_limit_mb: float = MEM_LIMIT_MB,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `argv`; return wall seconds, peak resident MB (its own, from wait4), exit code and its last JSON line.

    The process is killed past `timeout_s` or past `mem_limit_mb` of resident memory ("gave_up" says which).
    """
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env, text=True)
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    import threading

    readers = [threading.Thread(target=lambda s=s, c=c: c.append(s.read()), daemon=True)
               for s, c in ((p.stdout, out_chunks), (p.stderr, err_chunks))]
    for r in readers:
        r.start()
    gave_up = None
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t0 > timeout_s:
            gave_up = f"gave up after {timeout_s:.0f} s"
        elif _rss_mb(p.pid) > mem_limit_mb:
            gave_up = f"gave up past {mem_limit_mb / 1024:.0f} GB resident"
        if gave_up:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    for r in readers:
        r.join(timeout=10)
    out = {"wall_s": wall, "peak_mb": ru.ru_maxrss / 1024, "rc": p.returncode}
    if gave_up:
        out["gave_up"] = gave_up
        return out
    stdout = "".join(out_chunks)
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            out.update(json.loads(line))
            break
    if p.returncode != 0:
        out["error"] = ("".join(err_chunks).strip().splitlines() or ["(no message)"])[-1][:300]
    return out


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# ----------------------------------------------------------------------------- the tools, each in its own process


def child(tool: str, path: str) -> dict[str, Any]:
    """Run one tool on one file in this process; the imports are made first and not timed."""
    import warnings

    warnings.simplefilter("ignore")
    if tool == "planner":
        from planner import network, travel_time

        t0 = time.perf_counter()
        if hasattr(network, "load_roads"):
            api = 'network.load_roads(path, mode="walk", cache=False)'
            roads = network.load_roads(path, mode="walk", cache=False)
            nodes, edges = roads.n_nodes, roads.n_edges
            dropped = int(getattr(roads, "dropped_nodes", -1))
        else:
            api = 'network.load_network(path, mode="walk")'
            roads = network.load_network(path, mode="walk")
            nodes, edges = roads.number_of_nodes(), roads.number_of_edges()
            dropped = int(roads.graph.get("dropped_nodes", -1))
        out = {"api": api, "seconds": time.perf_counter() - t0, "nodes": int(nodes), "edges": int(edges),
               "dropped_nodes": dropped}  # outside the largest component: few, if the stitches join the copies
        try:
            net = travel_time.compile_network(roads)
        except Exception as exc:  # noqa: BLE001 - the load's time still counts; say why there is no compile time
            return {**out, "compile_error": f"{type(exc).__name__}: {exc}"[:300]}
        return {**out, "compiled_seconds": time.perf_counter() - t0, "compiled_nodes": int(net.n_nodes)}
    if tool == "pyrosm":
        from pyrosm import OSM

        t0 = time.perf_counter()
        edges = OSM(path).get_network("walking")
        return {"api": 'pyrosm.OSM(path).get_network("walking")', "seconds": time.perf_counter() - t0, "edges": len(edges)}
    if tool == "osmnx":
        import osmnx as ox

        t0 = time.perf_counter()
        G = ox.graph_from_xml(path, bidirectional=True, simplify=True, retain_all=False)
        return {"api": "osmnx.graph_from_xml(walk_roads.osm, bidirectional=True, simplify=True)",
                "seconds": time.perf_counter() - t0, "nodes": len(G), "edges": G.number_of_edges()}
    if tool == "snap":
        sys.path.insert(0, str(HERE))
        from cases import wuhan_inputs

        from planner import travel_time

        d = wuhan_inputs("walk")
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            s = travel_time.snap_points(d["net"], d["cells"])
            times.append(time.perf_counter() - t0)
        return {"seconds": min(times), "all_seconds": times, "cells": len(s), "snapped": int(s["snapped"].sum())}
    raise SystemExit(f"unknown tool {tool}")


def _tool(tool: str, path: str, timeout_s: float) -> dict[str, Any]:
    return run_process([sys.executable, str(Path(__file__).resolve()), "child", tool, path], timeout_s=timeout_s)


def _best(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Return the fastest of several fresh-process runs by `key`, with every run's time and the highest peak."""
    ok = [r for r in runs if r.get(key) is not None and "error" not in r and "gave_up" not in r]
    if not ok:
        return runs[-1]
    return {**min(ok, key=lambda r: r[key]), "runs_s": [r.get(key) for r in runs], "peak_mb": max(r["peak_mb"] for r in runs)}


def _cli(args: list[str], out: Path) -> dict[str, Any]:
    env = dict(os.environ)
    cache = Path(tempfile.mkdtemp(prefix="planner-bench-cache-"))
    env["XDG_CACHE_HOME"] = str(cache)  # a cold compiled-network cache: the run parses the file
    env["PLANNER_CACHE_DIR"] = str(cache)
    try:
        r = run_process([_bin("planner"), "coverage", *args, "--quiet", "--out", str(out)], timeout_s=CLI_TIMEOUT_S, env=env)
        log, summary = out / "error.log", out / "summary.json"
        if r["rc"] != 0 and log.exists():  # the folder goes: keep the traceback
            r["error_log"] = log.read_text(errors="replace")[-3000:]
        if summary.exists():  # and what the run saw
            sj = json.loads(summary.read_text())
            r["summary"] = {"runtime_s": sj.get("runtime_s"), "network": sj.get("network"),
                            "cells": (sj.get("cells") or {}).get("total"),
                            "institutions_snapped": (sj.get("institutions") or {}).get("snapped")}
        r["outputs"] = sorted(p.name for p in out.iterdir()) if out.exists() else []
        return r
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


def _best_of(argv: list[str], k: int = 5) -> dict[str, Any]:
    runs = [run_process(argv, timeout_s=60) for _ in range(k)]
    return {"seconds": min(r["wall_s"] for r in runs), "all_seconds": [r["wall_s"] for r in runs],
            "peak_mb": max(r["peak_mb"] for r in runs), "rc": max(r["rc"] for r in runs)}


# ----------------------------------------------------------------------------- the section


PARTS = ("ingestion", "coverage_city", "isochrone_cost", "snap", "startup")


def run(parts: tuple[str, ...] = PARTS, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run section 6 (or only `parts` of it, keeping the rest of `previous`); return its measurements."""
    res: dict[str, Any] = {**(previous or {}), "source": str(SOURCE.relative_to(ROOT))}
    tmp = Path(tempfile.mkdtemp(prefix="planner-bench-"))
    files = {label: tiled_inputs(target) for label, target in SIZES} if {"ingestion", "coverage_city"} & set(parts) else {}
    if "ingestion" in parts:
        res["ingestion"] = []
        for label, _ in SIZES:
            f = files[label]
            print(f"  ingestion {label}: {f['info']['highway_nodes']:,} highway nodes ...", flush=True)
            res["ingestion"].append({"label": label, "file": Path(f["pbf"]).name,
                                     **{k: f["info"][k] for k in ("n", "highway_nodes", "nodes", "ways")},
                                     "planner": _best([_tool("planner", f["pbf"], LOAD_TIMEOUT_S)
                                                       for _ in range(REPEATS)], "compiled_seconds"),
                                     "pyrosm": _best([_tool("pyrosm", f["pbf"], LOAD_TIMEOUT_S) for _ in range(REPEATS)],
                                                     "seconds"),
                                     "osmnx": _tool("osmnx", f["xml"], OSMNX_TIMEOUT_S)})
    if "coverage_city" in parts:
        big = files[SIZES[-1][0]]
        print("  planner coverage walk end to end on the 1.4 M file ...", flush=True)
        args = ["--network", big["pbf"], "--institutions", big["institutions"], "--population", big["population"],
                "--mode", "walk", "--population-label", "persons aged 20+ (WorldPop, tiled)"]
        res["coverage_city"] = {"file": Path(big["pbf"]).name, "highway_nodes": big["info"]["highway_nodes"],
                                "institutions": big["info"]["institutions"]["rows"],
                                "cells_pixels": big["info"]["population"]["pixels"], **_cli(args, tmp / "city")}
    if "isochrone_cost" in parts:
        print("  Wuhan drive coverage with and without isochrones ...", flush=True)
        drive = [*WUHAN_ARGS, "--mode", "drive", "--minutes", "15", "--minutes", "30"]
        runs = [(_cli(drive, tmp / "with"), _cli([*drive, "--no-isochrones"], tmp / "without")) for _ in range(REPEATS)]
        res["isochrone_cost"] = {"with": _best([w for w, _ in runs], "wall_s"),
                                 "without": _best([wo for _, wo in runs], "wall_s")}
    if "snap" in parts:
        print("  Wuhan walk cell snapping ...", flush=True)
        res["snap"] = _tool("snap", "-", 600)
    if "startup" in parts:
        print("  CLI start-up ...", flush=True)
        res["startup"] = {"help": _best_of([_bin("planner"), "--help"]), "version": _best_of([_bin("planner"), "version"])}
    shutil.rmtree(tmp, ignore_errors=True)
    return res


def _f(x: Any, nd: int = 1) -> str:
    return "—" if x is None or x != x else f"{x:,.{nd}f}"


def _cell(r: dict[str, Any], key: str = "seconds") -> str:
    """'seconds (peak MB)' of one process, or why there is no number."""
    if "gave_up" in r:
        return r["gave_up"]
    if "error" in r or r.get(key) is None:
        return f"failed: {r.get('error', 'no result')}"
    return _f(r[key])


def render(c: dict[str, Any]) -> list[str]:
    """Markdown lines of section 6."""
    lines = ["## 6. The whole city: OSM ingestion, coverage end to end, isochrone cost, snapping, start-up", "",
             f"Inputs: `{c['source']}` (Optics Valley, 1,624 highway nodes) tiled n × n as shifted copies with stitched",
             "borders by `benchmarks/make_tiled_pbf.py` (files in `benchmarks/data/`, made when missing). Each tool runs",
             "in its own process: *seconds* is the call itself (imports untimed), *process s* the whole process, *peak MB*",
             "its peak resident memory (ru_maxrss). planner and pyrosm: the best of 3 fresh processes (peak: the highest);",
             "osmnx runs once, on an .osm XML of the same walkable roads (conversion untimed), and is given up on past",
             f"{OSMNX_TIMEOUT_S} s.",
             "", "| file | highway nodes | tool | call | seconds | process s | peak MB | nodes / edges (pyrosm: ways) "
             "| ratio to pyrosm |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in c.get("ingestion", []):
        py = row["pyrosm"].get("seconds")
        for tool in ("planner", "pyrosm", "osmnx"):
            r = row[tool]
            ne = f"{r['nodes']:,} / {r['edges']:,}" if "nodes" in r else (f"— / {r['edges']:,}" if "edges" in r else "—")
            if r.get("dropped_nodes", -1) >= 0:
                ne += f" ({r['dropped_nodes']:,} nodes off the largest component)"
            ratio = "—" if tool == "pyrosm" or r.get("seconds") is None or not py else f"{r['seconds'] / py:,.1f}×"
            lines.append(f"| {row['file']} | {row['highway_nodes']:,} | {tool} | `{r.get('api', '—')}` | {_cell(r)} | "
                         f"{_f(r.get('wall_s'))} | {_f(r.get('peak_mb'), 0)} | {ne} | {ratio} |")
            if tool == "planner" and ("compiled_seconds" in r or "compile_error" in r):
                cs = r.get("compiled_seconds")
                lines.append(f"| | | planner → CompiledNetwork | `… then travel_time.compile_network` | "
                             f"{_f(cs) if cs is not None else 'failed: ' + r['compile_error']} | | | "
                             f"{r.get('compiled_nodes', 0):,} nodes | {_f(cs / py if cs and py else None)}× |")
    cc = c.get("coverage_city", {})
    if cc:
        lines += ["", f"`planner coverage --mode walk` end to end (load, coverage, isochrones, map) on {cc['file']} "
                  f"({cc['highway_nodes']:,} highway nodes, {cc['institutions']:,} institutions: the shipped Wuhan institutions "
                  "in the "
                  f"source's box moved onto its roads, tiled; population: the WorldPop window over the source summed to "
                  f"500 m pixels and tiled, {cc['cells_pixels']:,} pixels, so the size is the road network's): "
                  f"{_secs(cc, 'wall_s')}, peak {_f(cc.get('peak_mb'), 0)} MB."]
        sm = cc.get("summary") or {}
        if sm:
            net = sm.get("network") or {}
            lines[-1] += (f" The run: {net.get('nodes', 0):,} nodes / {net.get('edges', 0):,} edges, "
                          f"{sm.get('cells') or 0:,} cells, {sm.get('institutions_snapped') or 0:,} institutions snapped; "
                          f"outputs: {', '.join(cc.get('outputs', []))}.")
    ic = c.get("isochrone_cost", {})
    if ic:
        w, wo = ic["with"], ic["without"]
        lines += ["", "Wuhan drive coverage end to end (`planner coverage` with the Makefile's WUHAN_ARGS, `--mode drive "
                  "--minutes 15 --minutes 30`; whole process, best of 3, runs alternated, a cold network cache each):", "",
                  "| run | seconds | runs | peak MB |", "|---|---|---|---|",
                  f"| with isochrones | {_cell(w, 'wall_s')} | {', '.join(_f(x) for x in w.get('runs_s', []))} | "
                  f"{_f(w.get('peak_mb'), 0)} |",
                  f"| `--no-isochrones` | {_cell(wo, 'wall_s')} | {', '.join(_f(x) for x in wo.get('runs_s', []))} | "
                  f"{_f(wo.get('peak_mb'), 0)} |",
                  f"| added cost of isochrones | {_f(_added_pct(c), 0)} % | | |"]
    sn = c.get("snap", {})
    if sn:
        best = _secs(sn, "seconds") if "error" in sn or "gave_up" in sn else _f(sn["seconds"], 3) + " s"
        lines += ["", f"Wuhan walk cell snapping (`travel_time.snap_points` on {sn.get('cells', 0):,} cells, best of 5): "
                  f"{best} (runs: {', '.join(_f(x, 3) for x in sn.get('all_seconds', []))}); "
                  f"before issue 14: {BASELINE_SNAP_S} s."]
    st = c.get("startup", {})
    if st:
        lines += ["", "CLI start-up, best of 5 (wall time of the whole process): "
                  f"`planner --help` {_f(st['help']['seconds'], 2)} s, `planner version` {_f(st['version']['seconds'], 2)} s."]
    return lines + [""]


def _added_pct(c: dict[str, Any]) -> float:
    ic = c.get("isochrone_cost", {})
    w, wo = ic.get("with", {}), ic.get("without", {})
    if "error" in w or "error" in wo or "gave_up" in w or "gave_up" in wo or not wo.get("wall_s"):
        return float("nan")
    return (w["wall_s"] - wo["wall_s"]) / wo["wall_s"] * 100


def _secs(r: dict[str, Any], key: str) -> str:
    """'12.3 s', or why there is no number."""
    cell = _cell(r, key)
    return cell if cell.startswith(("gave up", "failed")) else f"{cell} s"


def targets(c: dict[str, Any]) -> list[str]:
    """Rows of the issue-14 targets table, measured, each met or not met from the numbers."""
    nan = float("nan")

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    def ratio_to_pyrosm(row: dict[str, Any]) -> float:
        return row.get("planner", {}).get("compiled_seconds", nan) / row.get("pyrosm", {}).get("seconds", nan)

    out = ["## Targets of issue 14 (section 6)", "", "| work | before (the issue) | target | measured | |",
           "|---|---|---|---|---|"]
    ing = c.get("ingestion", [])
    big = ing[-1] if ing else {}
    py = big.get("pyrosm", {}).get("seconds", nan) if big else nan
    pl = big.get("planner", {}) if big else {}
    ratio = ratio_to_pyrosm(big)
    small = "; ".join(f"{row['highway_nodes']:,} nodes: {_f(ratio_to_pyrosm(row), 2)}×" for row in ing[:-1])
    out.append(f"| PBF → compiled network, {big.get('highway_nodes', 0):,}-node file | not measured (about 24× slower than "
               f"pyrosm at 353 k) | ≤ 1.0× pyrosm `get_network` | {_secs(pl, 'compiled_seconds')} vs pyrosm "
               f"{_secs(big.get('pyrosm', {}), 'seconds')} = {_f(ratio, 2)}× ({small}) | {verdict(ratio <= 1.0)} |")
    cc = c.get("coverage_city", {})
    ok = bool(cc) and "error" not in cc and "gave_up" not in cc
    wall, peak = (cc.get("wall_s", nan), cc.get("peak_mb", nan)) if ok else (nan, nan)
    out.append(f"| `planner coverage` walk end to end, {cc.get('highway_nodes', 0):,} nodes | — | ≤ 3× pyrosm's bare parse, "
               f"peak < 4 GB | {_secs(cc, 'wall_s')} = {_f(wall / py, 2)}× pyrosm, peak {_f(peak / 1024, 2)} GB | "
               f"{verdict(wall / py <= 3 and peak < 4096)} |")
    pct = _added_pct(c)
    ic = c.get("isochrone_cost", {})
    out.append(f"| Wuhan drive coverage: added cost of isochrones | +{BASELINE['isochrone_added_pct']:.0f} % "
               f"(78 s against 8.8 s) | ≤ +50 % | {'+' if pct >= 0 else ''}{_f(pct, 0)} % "
               f"({_secs(ic.get('with', {}), 'wall_s')} against {_secs(ic.get('without', {}), 'wall_s')}) "
               f"| {verdict(pct <= 50)} |")
    sn = c.get("snap", {}).get("seconds", nan)
    out.append(f"| Wuhan walk cell snapping | {BASELINE_SNAP_S} s | ≥ 5× faster | {_f(sn, 3)} s = {_f(BASELINE_SNAP_S / sn, 1)}× "
               f"faster | {verdict(BASELINE_SNAP_S / sn >= 5)} |")
    st = c.get("startup", {})
    for k, cmd in (("help", "planner --help"), ("version", "planner version")):
        s = st.get(k, {}).get("seconds", nan)
        out.append(f"| `{cmd}` | {BASELINE['help_s']} s (`--help`) | < 0.5 s | {_f(s, 2)} s | {verdict(s < 0.5)} |")
    return out


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "child":
        print(json.dumps(child(sys.argv[2], sys.argv[3])), flush=True)
    else:
        print(json.dumps(run(), indent=2, default=float))
