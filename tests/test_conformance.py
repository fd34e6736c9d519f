"""Conformance suite: ``coverage``, ``site``, ``grid``, ``run`` and ``compare`` on every real extract in ``geodata/``.

Extracts: Beijing Haidian ×3 (BUPT, CAU east campus, Tsinghua/PKU), Shenzhen Longgang, the
Ninghua county seat, Optics Valley (光谷, Wuhan), central Wuhan (``wuhan/roads.gpkg``), and a
clipped copy of the CAU extract, cut with a bounding box through the community health centre
(so that roads and the centre's outline cross the box edge, as ``osmium extract`` leaves them).

Inputs, built once per extract and session:

* **institutions** come both from the extract's own file (the OSM file's medical POIs; for
  central Wuhan the shipped ``wuhan/institutions.geojson``) and from a separate CSV table. The
  table holds the same institutions at the same coordinates (a superset, so it may only cover
  more), plus, for Optics Valley, the made-up ``tests/data/guanggu_institutions.csv`` rows. An
  extract with fewer than :data:`MIN_INSTITUTIONS` gets PROXY sites: its own named schools,
  libraries, town halls… placed where they are, named ``… (代用 proxy)``. The Shenzhen and
  Optics Valley extracts have no medical POI at all.
* **leads** come from a separate CSV with other headers (名称, 经度, 纬度) that repeats two rows
  of the institutions table (the overlap that crashed ``grid --leads``) and adds one place that
  is not in it.
* **population**: only Wuhan has a real population grid (WorldPop, ``wuhan/
  population_age20plus_100m.tif``, which covers Optics Valley too). For Beijing, Shenzhen and
  Ninghua no population file exists (see ``geodata/README.md``), so these use a PROXY derived
  from the extract itself: a point at the centroid of every closed building outline with
  footprint area × ``building:levels`` (else :data:`PROXY_DEFAULT_LEVELS`) ×
  :data:`PROXY_PERSONS_PER_FLOOR_M2` residents, plus :data:`PROXY_PERSONS_PER_STREET_NODE`
  residents at every node of a residential street. The proxy's figures mean nothing about the
  real places; the invariants hold for any population.

Invariants asserted (never snapshots):

* every populated cell is counted once (distinct ids, no overlap, totals add up to the input);
* covered + uncovered + unreachable = total population, at every threshold, from the cells layer
  and from ``summary.json`` alike;
* coverage never falls as the minutes grow, nor when institutions are added;
* every grid is contiguous (checked here from shared cell corners, apart from planner's own check),
  and every cell is in at most one grid;
* every proposed site adds population or is marked as adding nothing;
* ``run`` gives the figures ``coverage`` gives for the same inputs, and ``compare`` of a what-if
  that only adds an institution loses nobody.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from planner import InvalidValueError, datasets
from planner.cli import app
from planner.institutions import load_institutions
from planner.network import load_network
from planner.tables import read_report_csv

from .test_network_clipped import clip_osm

DATA = Path(__file__).parent / "data"

MIN_INSTITUTIONS = 4  # fewer real ones: add proxy sites from the extract's own named amenities
PROXY_AMENITIES = ("townhall", "library", "school", "university", "college", "kindergarten", "community_centre",
                   "research_institute", "post_office", "police")
PROXY_PERSONS_PER_FLOOR_M2 = 1 / 35.0  # residents per m² of floor (about 35 m² of housing per person)
PROXY_DEFAULT_LEVELS = 3  # floors of a building without building:levels
PROXY_PERSONS_PER_STREET_NODE = 10.0  # residents at each node of a highway=residential|living_street way
MINUTES = (5, 10, 15)
LEAD_NEAR_ROAD_M = 300.0  # leads taken from the table lie this close to a road node, so that they snap
GRID_TOLERANCE = 0.9  # loose load band: the proxy populations are lumpy (a few large buildings)
#: Box cut out of the CAU extract (minlon, minlat, maxlon, maxlat), through the outline of way 167169164.
CAU_CLIP_BBOX = (116.3481, 39.9990, 116.3600, 40.0100)


@dataclass(frozen=True)
class Extract:
    """One real extract and how it is run."""

    key: str
    network: str  # dataset name, or "clipped" for the clipped CAU copy
    own_institutions: str  # dataset name of the institutions' own file, or "clipped"
    raster: bool  # WorldPop raster (Wuhan) rather than the proxy population
    cell_m: float  # demand cell size of every run, metres


EXTRACTS = (
    Extract("haidian_bupt", "haidian_bupt_pbf", "haidian_bupt_osm", raster=False, cell_m=250),
    Extract("haidian_cau_east", "haidian_cau_east_pbf", "haidian_cau_east_osm", raster=False, cell_m=500),
    Extract("haidian_tsinghua_pku", "haidian_tsinghua_pku_osm", "haidian_tsinghua_pku_osm", raster=False, cell_m=500),
    Extract("shenzhen_longgang", "shenzhen_longgang_osm", "shenzhen_longgang_osm", raster=False, cell_m=1000),
    Extract("ninghua", "ninghua_osm", "ninghua_osm", raster=False, cell_m=250),
    Extract("guanggu", "guanggu_pbf", "guanggu_osm", raster=True, cell_m=500),
    Extract("wuhan", "wuhan_roads", "wuhan_institutions", raster=True, cell_m=1000),
    Extract("cau_east_clipped", "clipped", "clipped", raster=False, cell_m=500),
)


@dataclass
class Inputs:
    """The files of one extract's runs."""

    extract: Extract
    folder: Path
    network: Path
    own_institutions: Path
    own_count: int  # institutions in the own file (0: none, the own-file run must fail with one line)
    table: Path
    leads: Path
    lead_rows: list[dict[str, Any]]
    population: Path
    population_input_total: float
    new_site: tuple[float, float]  # lon, lat of the what-if's added institution (a road node)
    cut_way_id: int | None  # a road way cut by the clip (clipped extract only)


# --------------------------------------------------------------------------------------------- building the inputs


def _ring_area_m2(lonlat: np.ndarray) -> float:
    lat0 = math.radians(float(lonlat[:, 1].mean()))
    x = np.radians(lonlat[:, 0]) * 6_371_000 * math.cos(lat0)
    y = np.radians(lonlat[:, 1]) * 6_371_000
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def _float(text: str | None, default: float) -> float:
    try:
        value = float(text) if text is not None else default
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


def _scan_osm(path: Path) -> tuple[list[tuple[float, float, float]], list[dict[str, Any]], tuple[float, float] | None]:
    """Proxy population points, proxy institution sites, and the centroid of the largest building of an OSM file."""
    import osmium

    points: list[tuple[float, float, float]] = []
    sites: list[dict[str, Any]] = []
    largest = (0.0, None)
    for obj in osmium.FileProcessor(str(path)).with_locations():
        tags = {t.k: t.v for t in obj.tags}
        if obj.is_node():
            if tags.get("amenity") in PROXY_AMENITIES and tags.get("name"):
                sites.append({"osm": f"node/{obj.id}", "name": tags["name"], "lon": obj.location.lon, "lat": obj.location.lat})
            continue
        if not obj.is_way():
            continue
        ll = np.array([(n.lon, n.lat) for n in obj.nodes if n.location.valid()], dtype=float).reshape(-1, 2)
        if len(ll) == 0:
            continue
        if tags.get("highway") in ("residential", "living_street"):
            points += [(float(x), float(y), PROXY_PERSONS_PER_STREET_NODE) for x, y in ll]
        closed = len(ll) >= 4 and len(ll) == len(obj.nodes) and (ll[0] == ll[-1]).all()
        centre = ll[:-1].mean(axis=0) if closed else ll.mean(axis=0)
        if tags.get("amenity") in PROXY_AMENITIES and tags.get("name"):
            sites.append({"osm": f"way/{obj.id}", "name": tags["name"], "lon": float(centre[0]), "lat": float(centre[1])})
        if "building" in tags and closed:
            area = _ring_area_m2(ll[:-1])
            levels = _float(tags.get("building:levels"), PROXY_DEFAULT_LEVELS)
            points.append((float(centre[0]), float(centre[1]), area * levels * PROXY_PERSONS_PER_FLOOR_M2))
            if area > largest[0]:
                largest = (area, (float(centre[0]), float(centre[1])))
    sites.sort(key=lambda s: s["osm"])
    return points, sites, largest[1]


def _write_csv(path: Path, header: list[str], rows: list[list[Any]], *, encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _cut_way_in_graph(clipped: Path, G: Any) -> int:
    """Return a highway way of the clipped file that lost nodes to the cut and is still an edge of G."""
    import osmium

    present = {n.id for n in osmium.FileProcessor(str(clipped), osmium.osm.NODE)}
    cut = sorted(w.id for w in osmium.FileProcessor(str(clipped), osmium.osm.WAY)
                 if "highway" in w.tags and any(r.ref not in present for r in w.nodes))
    in_graph = set()
    for _, _, d in G.edges(data=True):
        ids = d.get("osmid")
        in_graph.update(ids if isinstance(ids, list) else [ids])
    return next(w for w in cut if w in in_graph)


def _near_road(G: Any, lonlat: list[tuple[float, float]], max_m: float) -> np.ndarray:
    """Tell which points lie within `max_m` metres of a node of G (a node is never nearer than its roads)."""
    from scipy.spatial import cKDTree

    pts = gpd.GeoSeries(gpd.points_from_xy(*zip(*lonlat, strict=False)), crs="EPSG:4326").to_crs(G.graph["crs"])
    tree = cKDTree(np.array([(d["x"], d["y"]) for _, d in G.nodes(data=True)]))
    dist, _ = tree.query(np.column_stack([pts.x, pts.y]))
    return dist <= max_m


def _build_inputs(ext: Extract, folder: Path) -> Inputs:
    if ext.network == "clipped":
        network = folder / "cau_east_clipped.osm.pbf"
        clip_osm(datasets.get_path("haidian_cau_east_pbf"), network, CAU_CLIP_BBOX)
        own = network
    else:
        network = datasets.get_path(ext.network)
        own = datasets.get_path(ext.own_institutions)

    # institutions: the own file's (if any), then the extra real rows, then proxies
    try:
        own_inst = load_institutions(own)
    except InvalidValueError:  # an OSM file without medical POIs (checked as a one-line error in the own-file run)
        own_inst = None
    rows: list[list[Any]] = []
    if own_inst is not None:
        rows += [[fid, n, repr(float(x)), repr(float(y)), t] for fid, n, x, y, t in
                 zip(own_inst.index, own_inst["name"], own_inst["lon"], own_inst["lat"], own_inst["tier"], strict=True)]
    if ext.key == "guanggu":
        made_up = pd.read_csv(DATA / "guanggu_institutions.csv")
        rows += [[f"made-up/{i + 1}", r["name"], repr(float(r["lon"])), repr(float(r["lat"])),
                  r["tier"] if isinstance(r["tier"], str) else ""] for i, r in made_up.iterrows()]
    osm_file = None if ext.raster and ext.key == "wuhan" else (network if ext.network == "clipped" else own)
    points, sites, largest = _scan_osm(osm_file) if osm_file is not None else ([], [], None)
    spare = [s for s in sites if s["name"] not in {r[1] for r in rows}]
    while len(rows) < MIN_INSTITUTIONS and spare:
        s = spare.pop(0)
        rows.append([f"proxy/{s['osm']}", f"{s['name']} (代用 proxy)", repr(s["lon"]), repr(s["lat"]), "primary"])
    table = _write_csv(folder / "institutions.csv", ["id", "name", "lon", "lat", "tier"], rows)

    # leads: two rows of the table (the overlap), and one place that is not in it
    G = load_network(network, mode="drive")
    near = _near_road(G, [(float(r[2]), float(r[3])) for r in rows], LEAD_NEAR_ROAD_M)
    if ext.key == "wuhan":
        picked = [r for r, ok in zip(rows, near, strict=True) if ok and r[4] == "tertiary"][:2]
        made_up = pd.read_csv(DATA / "guanggu_institutions.csv")
        extra = made_up[made_up["tier"].astype(str).str.startswith("三级")].iloc[0]
        extra_row = [extra["name"], repr(float(extra["lon"])), repr(float(extra["lat"]))]  # in Optics Valley: outside
    else:
        picked = [r for r, ok in zip(rows, near, strict=True) if ok][:2]
        assert largest is not None, f"{ext.key}: no building to place the extra lead"
        extra_row = [f"{ext.key} 代用牵头医院 (proxy lead)", repr(largest[0]), repr(largest[1])]
    lead_rows = [[r[1], r[2], r[3]] for r in picked] + [extra_row]
    leads = _write_csv(folder / "leads.csv", ["名称", "经度", "纬度"], lead_rows)

    # population
    if ext.raster:
        population = datasets.get_path("wuhan_population")
        input_total = 9_491_334.0  # geodata/README.md: the whole grid's persons aged 20+
    else:
        population = _write_csv(folder / "population_proxy.csv", ["lon", "lat", "population"],
                                [[repr(x), repr(y), repr(round(p, 3))] for x, y, p in points])
        input_total = float(sum(round(p, 3) for _, _, p in points))

    # the what-if's new institution: the road node farthest from every institution of the table
    xy = gpd.GeoSeries(gpd.points_from_xy([d["x"] for _, d in G.nodes(data=True)], [d["y"] for _, d in G.nodes(data=True)]),
                       crs=G.graph["crs"])
    inst_xy = gpd.GeoSeries(gpd.points_from_xy([float(r[2]) for r in rows], [float(r[3]) for r in rows]),
                            crs="EPSG:4326").to_crs(G.graph["crs"])
    far = np.min(np.hypot(xy.x.to_numpy()[:, None] - inst_xy.x.to_numpy()[None, :],
                          xy.y.to_numpy()[:, None] - inst_xy.y.to_numpy()[None, :]), axis=1)
    node = xy.to_crs("EPSG:4326").iloc[int(np.argmax(far))]
    cut = _cut_way_in_graph(network, load_network(network, mode="walk")) if ext.network == "clipped" else None
    return Inputs(extract=ext, folder=folder, network=network, own_institutions=own,
                  own_count=0 if own_inst is None else len(own_inst), table=table, leads=leads,
                  lead_rows=[dict(zip(["name", "lon", "lat"], r, strict=True)) for r in lead_rows], population=population,
                  population_input_total=input_total, new_site=(float(node.x), float(node.y)), cut_way_id=cut)


# --------------------------------------------------------------------------------------------- running the CLI


def _cli(args: list[str]) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _ok(result: Any, what: str) -> None:
    assert result.exit_code == 0, f"{what}: exit {result.exit_code}\n{result.output}"
    assert "internal error" not in result.output and "Traceback" not in result.output


def _summary(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def _common(inp: Inputs) -> list[Any]:
    return ["--network", inp.network, "--population", inp.population, "--cell-size", inp.extract.cell_m, "--quiet"]


@pytest.fixture(scope="session", params=EXTRACTS, ids=[e.key for e in EXTRACTS])
def inputs(request, tmp_path_factory) -> Inputs:
    return _build_inputs(request.param, tmp_path_factory.mktemp(request.param.key))


@pytest.fixture(scope="session")
def coverage_runs(inputs) -> dict[str, Any]:
    """``coverage`` with the own file's institutions and with the table (walk, 5/10/15 min, no isochrones)."""
    runs = {}
    minutes = [x for m in MINUTES for x in ("--minutes", m)]
    for name, inst in (("own", inputs.own_institutions), ("table", inputs.table)):
        out = inputs.folder / f"coverage_{name}"
        runs[name] = (_cli(["coverage", *_common(inputs), "--institutions", inst, "--out", out, *minutes,
                            "--no-isochrones"]), out)
    return runs


@pytest.fixture(scope="session")
def site_run(inputs) -> tuple[Any, Path]:
    out = inputs.folder / "site"
    return _cli(["site", *_common(inputs), "--institutions", inputs.table, "--out", out, "--new-sites", 2,
                 "--minutes", 10, "--time-limit", 10]), out


@pytest.fixture(scope="session")
def grid_run(inputs) -> tuple[Any, Path]:
    out = inputs.folder / "grid"
    return _cli(["grid", *_common(inputs), "--institutions", inputs.table, "--leads", inputs.leads, "--out", out,
                 "--tolerance", GRID_TOLERANCE, "--time-limit", 10]), out


def _scenario(path: Path, name: str, inp: Inputs, extra: str = "") -> Path:
    text = f"""name = "{name}"
title = "{inp.extract.key} {name}"

[inputs]
network = {json.dumps(str(inp.network))}
institutions = {json.dumps(str(inp.table))}
population = {json.dumps(str(inp.population))}

[analysis]
mode = "walk"
minutes = [{", ".join(str(m) for m in MINUTES)}]
cell_size_m = {inp.extract.cell_m}
isochrones = false
{extra}"""
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def scenario_runs(inputs) -> dict[str, Any]:
    """``run`` of a baseline, and ``compare`` of it with a what-if that adds one institution."""
    root = inputs.folder / "scenarios"
    root.mkdir()
    base = _scenario(root / "baseline.toml", "baseline", inputs)
    lon, lat = inputs.new_site
    whatif = _scenario(root / "whatif.toml", "whatif", inputs, extra=f"""
[[edits.add_institutions]]
id = "new-centre"
name = "新建社区卫生服务中心 (拟)"
lon = {lon!r}
lat = {lat!r}
tier = "primary"
""")
    runs = {"run": (_cli(["run", base, "--out-root", root / "out", "--quiet"]), root / "out" / "baseline"),
            "compare": (_cli(["compare", base, whatif, "--out-root", root / "out", "--out", root / "cmp", "--quiet"]),
                        root / "cmp")}
    if inputs.cut_way_id is not None:
        closed = _scenario(root / "closed.toml", "closed", inputs, extra=f"""
[[edits.close_roads]]
ids = [{inputs.cut_way_id}]
""")
        runs["closed"] = (_cli(["run", closed, "--out-root", root / "out", "--quiet"]), root / "out" / "closed")
    return runs


# --------------------------------------------------------------------------------------------- invariants


def _cells(folder: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(folder / "cells.gpkg")


def _assert_cells_counted_once(cells: gpd.GeoDataFrame, total: float) -> None:
    assert cells["cell_id"].is_unique
    assert (cells["population"] > 0).all()
    assert float(cells["population"].sum()) == pytest.approx(total, abs=0.05 * len(cells) + 0.1)
    metric = cells.to_crs(cells.estimate_utm_crs())
    union = shapely.union_all(metric.geometry.to_numpy())
    assert union.area == pytest.approx(float(metric.area.sum()), rel=1e-6)  # no cell overlaps another


def test_own_institutions_load_or_fail_in_one_line(inputs, coverage_runs):
    result, out = coverage_runs["own"]
    if inputs.own_count == 0:  # an OSM file without medical POIs: exit 2, one line naming the file and the fix
        assert result.exit_code == 2, result.output
        (line,) = [ln for ln in result.output.splitlines() if ln.startswith("error: ")]
        assert "no medical institutions in this OSM file" in line and "fix:" in line
    else:
        _ok(result, "coverage --institutions <own file>")
        assert _summary(out)["institutions"]["total"] == inputs.own_count


@pytest.mark.parametrize("which", ["own", "table"])
def test_coverage_counts_every_cell_once_and_adds_up(inputs, coverage_runs, which):
    result, out = coverage_runs[which]
    if which == "own" and inputs.own_count == 0:
        pytest.skip("no medical POI in this extract (its one-line error is checked above)")
    _ok(result, f"coverage --institutions {which}")
    s = _summary(out)
    cells = _cells(out)
    total = s["population_total"]
    assert total > 0 and len(cells) == s["cells"]["total"]
    _assert_cells_counted_once(cells, total)
    # every person of the input is either in the study area or reported outside it
    st = s["study_area"]
    assert st["population_input_total"] == pytest.approx(inputs.population_input_total, rel=1e-6, abs=1.0)
    assert total + st["population_outside_study_area"] == pytest.approx(st["population_input_total"], abs=1.0)

    pop = cells["population"].to_numpy(dtype=float)
    t = np.nan_to_num(cells["travel_time_min"].to_numpy(dtype=float), nan=np.inf)
    reached = (cells["status"] == "reached").to_numpy()
    unreachable = cells["status"].isin(["unsnapped", "no_route"]).to_numpy()
    assert (reached | unreachable).all() and not (reached & unreachable).any()
    assert np.isfinite(t[reached]).all() and not np.isfinite(t[unreachable]).any()
    assert float(pop[unreachable].sum()) == pytest.approx(s["cells"]["population_unreachable"], abs=0.1)
    by_minutes = {row["minutes"]: row for row in s["thresholds"]}
    assert sorted(by_minutes) == list(MINUTES)
    for m in MINUTES:
        covered = float(pop[reached & (t <= m)].sum())
        uncovered = float(pop[reached & (t > m)].sum())
        assert covered + uncovered + float(pop[unreachable].sum()) == pytest.approx(total, abs=0.1)
        assert covered == pytest.approx(by_minutes[m]["population_covered"], abs=0.1 + 0.05 * len(cells))
    tmax = max(MINUTES)
    assert s["population_covered"] + s["cells"]["gap_population"] == pytest.approx(total, abs=0.2)
    assert s["population_covered"] == by_minutes[tmax]["population_covered"]


@pytest.mark.parametrize("which", ["own", "table"])
def test_coverage_never_falls_as_minutes_grow(inputs, coverage_runs, which):
    result, out = coverage_runs[which]
    if result.exit_code != 0:
        pytest.skip("no medical POI in this extract (its one-line error is checked above)")
    rows = _summary(out)["thresholds"]
    covered = [r["population_covered"] for r in rows]
    pcts = [r["coverage_pct"] for r in rows]
    assert [r["minutes"] for r in rows] == sorted(r["minutes"] for r in rows)
    assert covered == sorted(covered) and pcts == sorted(pcts)


def test_more_institutions_never_cover_fewer(inputs, coverage_runs):
    """The table holds the own file's institutions at the same coordinates, and maybe more."""
    if inputs.own_count == 0:
        pytest.skip("no medical POI in this extract: nothing to compare with")
    (r_own, out_own), (r_tab, out_tab) = coverage_runs["own"], coverage_runs["table"]
    _ok(r_own, "coverage own")
    _ok(r_tab, "coverage table")
    a, b = _cells(out_own).set_index("cell_id"), _cells(out_tab).set_index("cell_id")
    assert a.index.equals(b.index) and np.allclose(a["population"], b["population"])
    ta = np.nan_to_num(a["travel_time_min"].to_numpy(dtype=float), nan=np.inf)
    tb = np.nan_to_num(b["travel_time_min"].to_numpy(dtype=float), nan=np.inf)
    assert (tb <= ta + 1e-6).all()
    for ra, rb in zip(_summary(out_own)["thresholds"], _summary(out_tab)["thresholds"], strict=True):
        assert rb["population_covered"] >= ra["population_covered"]


def test_every_proposed_site_adds_population_or_is_marked(inputs, site_run):
    result, out = site_run
    _ok(result, "site")
    s = _summary(out)
    assert s["coverage_pct_after"] >= s["coverage_pct_before"]
    assert 1 <= s["new_sites"] <= 2 and len(s["sites"]) == s["new_sites"]
    added = [row["added_population"] for row in s["sites"]]
    assert all(a >= 0 for a in added)
    assert sum(added) == pytest.approx(s["population_covered_after"] - s["population_covered_before"], abs=0.5)
    cum = [row["cumulative_pct"] for row in s["sites"]]
    assert cum == sorted(cum)
    curve = [row["covered_population"] for row in s["marginal_curve"]]
    assert curve == sorted(curve)
    sites_csv = read_report_csv(out / "sites.csv")
    assert len(sites_csv) == len(s["sites"])
    for row in s["sites"]:
        marked = row.get("adds_population") is False
        assert row["added_population"] > 0 or marked, (
            f"site #{row['rank']} {row['name']} adds {row['added_population']} people and is not marked in summary.json")
        assert row["adds_population"] == (row["added_population"] > 0)
    assert s["new_sites_adding_population"] == sum(row["adds_population"] for row in s["sites"])
    assert list(sites_csv["adds_population"]) == [row["adds_population"] for row in s["sites"]]
    if s["new_sites"] < s["new_sites_requested"]:  # stopped early: the summary says why
        assert "no candidate reaches anyone still uncovered" in s["zero_gain_reason"]


def _queen_components(cells: gpd.GeoDataFrame, members: np.ndarray) -> int:
    """Count the connected groups of the given cells, neighbours being cells that share a corner (exact coordinates)."""
    corner_cells: dict[tuple[float, float], list[int]] = defaultdict(list)
    for i in members:
        for xy in shapely.get_coordinates(cells.geometry.iloc[i].exterior):
            corner_cells[(float(xy[0]), float(xy[1]))].append(int(i))
    parent = {int(i): int(i) for i in members}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for group in corner_cells.values():
        for j in group[1:]:
            parent[find(j)] = find(group[0])
    return len({find(int(i)) for i in members})


def test_every_grid_is_contiguous_and_cells_are_assigned_once(inputs, grid_run):
    result, out = grid_run
    _ok(result, "grid --leads (leads overlapping the institutions)")
    s = _summary(out)
    cells = gpd.read_file(out / "grids.gpkg", layer="cells")
    assignment = read_report_csv(out / "assignment.csv")
    assert assignment["cell_id"].is_unique and cells["cell_id"].is_unique
    assert set(assignment["cell_id"]) == set(cells["cell_id"])
    _assert_cells_counted_once(cells, s["population_total"])
    assigned = cells["lead_id"].notna().to_numpy()
    assert float(cells.loc[assigned, "population"].sum()) == pytest.approx(s["population_assigned"], abs=0.1 * len(cells) + 0.1)
    assert s["population_assigned"] + s["population_unassigned"] == pytest.approx(s["population_total"], abs=0.2)
    leads = {row["facility_id"]: row for row in s["leads"]}
    assert set(cells.loc[assigned, "lead_id"]) <= set(leads)
    for fid, row in leads.items():
        mine = np.flatnonzero((cells["lead_id"] == fid).to_numpy())
        assert len(mine) == row["n_cells"]
        assert float(cells["population"].iloc[mine].sum()) == pytest.approx(row["population"], abs=0.1 * len(mine) + 0.1)
        if len(mine):
            assert _queen_components(cells, mine) == 1, f"grid of {row['name']} ({fid}) is in pieces"
    # one id space per file: a hospital in both files leads its grid and is no member of any grid
    lead_names = [row["name"] for row in s["leads"]]
    assert len(lead_names) == len(set(lead_names))
    members = [n for row in s["leads"] for n in row["member_names"]]
    assert not set(members) & set(lead_names)
    excluded = {row["name"] for row in s["leads_excluded"]}
    assert {r["name"] for r in inputs.lead_rows} == set(lead_names) | excluded


def test_run_gives_the_coverage_figures(inputs, coverage_runs, scenario_runs):
    result, out = scenario_runs["run"]
    _ok(result, "run baseline.toml")
    _ok(coverage_runs["table"][0], "coverage table")
    s, c = _summary(out), _summary(coverage_runs["table"][1])
    for key in ("population_total", "population_covered", "coverage_pct", "thresholds"):
        assert s[key] == c[key], key
    covered = [r["population_covered"] for r in s["thresholds"]]
    assert covered == sorted(covered)


def test_compare_of_an_added_institution_loses_nobody(inputs, scenario_runs):
    result, out = scenario_runs["compare"]
    _ok(result, "compare baseline.toml whatif.toml")
    comp = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert comp["population_newly_lost"] == 0 and comp["cells_lost"] == 0
    assert comp["coverage_pct_b"] >= comp["coverage_pct_a"]
    total = comp["population_total"]
    assert 100 * comp["population_newly_covered"] / total == pytest.approx(comp["change_pp"], abs=0.02)
    for row in comp["thresholds"]:
        assert row["population_covered_b"] >= row["population_covered_a"]
    assert [r["facility_id"] for r in comp["institutions_added"]] == ["new-centre"]


def test_clipped_extract_closes_a_cut_road_by_its_way_id(inputs, scenario_runs):
    if inputs.cut_way_id is None:
        pytest.skip("only the clipped extract has cut roads")
    result, out = scenario_runs["closed"]
    _ok(result, "run closed.toml")
    closed = _summary(out)["scenario"]["closed"]
    assert closed["closed_edges"] >= 1 and closed["closed_road_ids"] == [str(inputs.cut_way_id)]
