"""Tile a shipped real OSM extract n x n into one city-sized .osm.pbf, with stitched borders.

Usage::

    python benchmarks/make_tiled_pbf.py SRC OUT --n 4
    python benchmarks/make_tiled_pbf.py SRC OUT --target-nodes 350000 \
        [--institutions-out inst.csv] [--population-out pop.tif] [--xml-out walk.osm]

Copy k = j * n + i of the source (column i, row j) is shifted by (i * dlon, j * dlat), where
(dlon, dlat) is the bounding box of the source's road nodes (nodes of highway ways) rounded up to
whole population pixels (``POP_PIXEL_DEG``), so the copies' road networks never overlap (other
features, such as buildings far out on the extract's edge, may). Ids are renumbered densely: node
(way) r of the source, in id order, is id k * count + r + 1 in copy k, so ids are unique and sorted
(nodes, then ways, as PBF readers expect) and index structures sized by the largest id stay small.
Relations are dropped: road networks do not need them.

Stitching: in the source, the largest connected component of the walkable ways is found, and its
nodes near the box's edges (within ``STITCH_BAND``). Between copy (i, j) and copy (i + 1, j)
the ``STITCH_PER_SIDE`` shortest east-to-west pairs with distinct ends are joined by two-node
``highway=residential`` ways (north-to-south likewise between (i, j) and (i, j + 1)), so the copies'
largest walk components join into one (the source's small components stay apart, as in the source).
On the Optics Valley extract, whose walk network ends unevenly, the stitches are 1.3-4.0 km long.
Stitch ways add no nodes: "highway nodes" (nodes referenced by highway ways) = n**2 * the source's.

Optional companions for the ``planner coverage`` benchmark, tiled the same way:

* ``--institutions-out``: a CSV (name, lon, lat) of the shipped institutions
  (``geodata/wuhan/institutions.geojson``) that lie in the source's node box, each moved onto the
  nearest node of the source's walk network, one set per copy.
* ``--xml-out``: the walkable roads and their nodes as .osm XML, for ``osmnx.graph_from_xml``.
* ``--population-out``: a GeoTIFF with the shipped WorldPop raster's window over the source's box,
  summed into ``POP_PIXEL_DEG`` pixels (about 500 m) and tiled n x n.

Everything is deterministic: the same source and n give byte-identical outputs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STITCH_PER_SIDE = 6  # stitch ways per pair of adjacent copies
STITCH_BAND = 0.15  # stitch ends lie within this fraction of the box's size from its edge
POP_PIXEL_DEG = 0.005  # population pixel (degrees, 6 WorldPop pixels of 1/1200 deg, about 500 m)
WORLDPOP_PIXEL_DEG = 1 / 1200  # the shipped raster's pixel (degrees)
DEFAULT_INSTITUTIONS = ROOT / "geodata" / "wuhan" / "institutions.geojson"
DEFAULT_POPULATION = ROOT / "geodata" / "wuhan" / "population_age20plus_100m.tif"


def read_source(src: Path) -> dict:
    """Nodes (ids, lon, lat, tags) and ways (ids, refs, tags) of an .osm/.osm.pbf file, sorted by id."""
    import osmium

    node_id, lon, lat, node_tags = [], [], [], []
    way_id, way_refs, way_tags = [], [], []
    for obj in osmium.FileProcessor(str(src), osmium.osm.NODE | osmium.osm.WAY):
        if obj.is_node():
            if not obj.location.valid():
                continue
            node_id.append(obj.id)
            lon.append(obj.location.lon)
            lat.append(obj.location.lat)
            node_tags.append({t.k: t.v for t in obj.tags} or None)
        else:
            way_id.append(obj.id)
            way_refs.append([r.ref for r in obj.nodes])
            way_tags.append({t.k: t.v for t in obj.tags})
    n_order = np.argsort(node_id, kind="stable")
    w_order = np.argsort(way_id, kind="stable")
    return {"node_id": np.asarray(node_id, dtype=np.int64)[n_order], "lon": np.asarray(lon)[n_order],
            "lat": np.asarray(lat)[n_order], "node_tags": [node_tags[i] for i in n_order],
            "way_id": np.asarray(way_id, dtype=np.int64)[w_order], "way_refs": [way_refs[i] for i in w_order],
            "way_tags": [way_tags[i] for i in w_order]}


def _walkable(tags: dict) -> bool:
    """Tell whether planner keeps this way for walking (planner.network's rule: excluded classes, area, foot, access)."""
    from planner import settings

    hw = tags.get("highway")
    return (hw is not None and hw not in settings.EXCLUDED_HIGHWAYS["walk"] and tags.get("area") != "yes"
            and tags.get("foot") != "no" and tags.get("access") != "private")


def highway_nodes(src: dict) -> set[int]:
    """Ids of the nodes referenced by highway ways."""
    return {r for refs, tags in zip(src["way_refs"], src["way_tags"], strict=True) if "highway" in tags for r in refs}


def walk_component(src: dict) -> np.ndarray:
    """Row indices (into the node arrays) of the nodes of the source's largest walkable component."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    row = {nid: i for i, nid in enumerate(src["node_id"].tolist())}
    a, b = [], []
    for refs, tags in zip(src["way_refs"], src["way_tags"], strict=True):
        if not _walkable(tags):
            continue
        idx = [row[r] for r in refs if r in row]
        a += idx[:-1]
        b += idx[1:]
    n = len(row)
    _, label = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
    used = np.zeros(n, dtype=bool)
    used[a + b] = True
    biggest = np.bincount(label[used]).argmax()
    return np.flatnonzero(used & (label == biggest))


def tile_box(src: dict) -> tuple[float, float, float, float]:
    """(lon0, lat0, dlon, dlat): the box of the nodes of highway ways, its size rounded up to whole population pixels."""
    hw = np.isin(src["node_id"], np.fromiter(highway_nodes(src), dtype=np.int64))
    lon, lat = src["lon"][hw], src["lat"][hw]
    lon0, lat0 = float(lon.min()), float(lat.min())
    dlon = math.ceil((lon.max() - lon0) / POP_PIXEL_DEG + 1e-9) * POP_PIXEL_DEG
    dlat = math.ceil((lat.max() - lat0) / POP_PIXEL_DEG + 1e-9) * POP_PIXEL_DEG
    return lon0, lat0, dlon, dlat


def pick_n(src: dict, target_nodes: int) -> int:
    """Return the n whose n x n tiling has the number of highway nodes nearest to `target_nodes`."""
    per_tile = len(highway_nodes(src))
    return max(1, round(math.sqrt(target_nodes / per_tile)))


def _haversine_m(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    p1, p2, dl = np.radians(lat1), np.radians(lat2), np.radians(lon2 - lon1)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(h))


def stitch_pairs(src: dict, dlon: float, dlat: float) -> list[tuple[str, int, int, float]]:
    """(side, row in the lower copy, row in the next copy, length m) of the stitch ways between two adjacent copies.

    Candidates are the walk component's nodes within `STITCH_BAND` of the box's east/west (north/south)
    edge; the shortest pairs with distinct ends are taken, up to `STITCH_PER_SIDE` per side.
    """
    road = walk_component(src)
    lon, lat = src["lon"], src["lat"]
    lon0, lat0, _, _ = tile_box(src)
    out = []
    for side, coord, lo, size, dx, dy in (("east", lon, lon0, dlon, dlon, 0.0), ("north", lat, lat0, dlat, 0.0, dlat)):
        band = STITCH_BAND * size
        near_hi = road[coord[road] >= lo + size - band]  # east (north) edge of the lower copy
        near_lo = road[coord[road] <= lo + band]  # west (south) edge of the next copy
        d = _haversine_m(lon[near_hi][:, None], lat[near_hi][:, None], lon[near_lo][None, :] + dx, lat[near_lo][None, :] + dy)
        order = np.lexsort((np.arange(d.size), d.ravel()))  # shortest first, ties by position: deterministic
        used_a, used_b = set(), set()
        for flat in order:
            ia, ib = divmod(int(flat), d.shape[1])
            if ia in used_a or ib in used_b:
                continue
            used_a.add(ia)
            used_b.add(ib)
            out.append((side, int(near_hi[ia]), int(near_lo[ib]), float(d[ia, ib])))
            if len(used_a) == min(STITCH_PER_SIDE, *d.shape):
                break
    return out


def write_tiled(src: dict, out: Path, n: int, xml_out: Path | None = None) -> dict:
    """Write the n x n tiling of `src` to `out` (.osm.pbf); return a description of it.

    Ids are renumbered densely: row r of the source's nodes (ways) is id k * count + r + 1 in copy k.
    With `xml_out`, the walkable highway ways (as planner picks them for walking) and the nodes they
    use are also written there as .osm XML, for ``osmnx.graph_from_xml``, which takes every way of
    its file as a road.
    """
    import contextlib

    import osmium
    from osmium.osm.mutable import Node, Way

    lon0, lat0, dlon, dlat = tile_box(src)
    pairs = stitch_pairs(src, dlon, dlat)
    n_nodes, n_ways = len(src["node_id"]), len(src["way_id"])
    lon, lat, tags = src["lon"].tolist(), src["lat"].tolist(), src["node_tags"]
    row = {nid: i for i, nid in enumerate(src["node_id"].tolist())}
    way_rows = [[row[r] for r in refs if r in row] for refs in src["way_refs"]]  # refs outside the file are dropped
    walk_way = [_walkable(t) for t in src["way_tags"]]
    walk_node = np.zeros(n_nodes, dtype=bool)
    for rows, ok in zip(way_rows, walk_way, strict=True):
        if ok:
            walk_node[rows] = True
    walk_node = walk_node.tolist()
    stitches = []  # (copy of the first end, its row, copy of the second end, its row)
    for j in range(n):
        for i in range(n):
            k = j * n + i
            for side, r_from, r_to, _ in pairs:
                if (side == "east" and i < n - 1) or (side == "north" and j < n - 1):
                    stitches.append((k, r_from, k + 1 if side == "east" else k + n, r_to))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part.osm.pbf")
    tmp.unlink(missing_ok=True)
    with contextlib.ExitStack() as stack:
        w = stack.enter_context(osmium.SimpleWriter(str(tmp)))
        x = None
        if xml_out is not None:
            xml_tmp = xml_out.with_name(xml_out.name + ".part.osm")
            xml_tmp.unlink(missing_ok=True)
            x = stack.enter_context(osmium.SimpleWriter(str(xml_tmp)))
        for j in range(n):
            for i in range(n):
                k, dx, dy = j * n + i, i * dlon, j * dlat
                base = k * n_nodes + 1
                for r in range(n_nodes):
                    node = Node(id=base + r, location=(lon[r] + dx, lat[r] + dy), tags=tags[r] or {})
                    w.add_node(node)
                    if x is not None and walk_node[r]:
                        x.add_node(node)
        for k in range(n * n):
            base, wbase = k * n_nodes + 1, k * n_ways + 1
            for r, (rows, tg) in enumerate(zip(way_rows, src["way_tags"], strict=True)):
                way = Way(id=wbase + r, nodes=[base + q for q in rows], tags=tg)
                w.add_way(way)
                if x is not None and walk_way[r]:
                    x.add_way(way)
        sid = n * n * n_ways + 1
        for s, (ka, ra, kb, rb) in enumerate(stitches):
            way = Way(id=sid + s, nodes=[ka * n_nodes + 1 + ra, kb * n_nodes + 1 + rb],
                      tags={"highway": "residential", "name": "tile stitch"})
            w.add_way(way)
            if x is not None:
                x.add_way(way)
    tmp.replace(out)
    if xml_out is not None:
        xml_tmp.replace(xml_out)
    lengths = [p[3] for p in pairs]
    return {"n": n, "tiles": n * n, "lon0": lon0, "lat0": lat0, "dlon": dlon, "dlat": dlat,
            "bbox": [lon0, lat0, lon0 + n * dlon, lat0 + n * dlat],
            "nodes": n * n * n_nodes, "ways": n * n * n_ways + len(stitches),
            "highway_nodes": n * n * len(highway_nodes(src)), "stitch_ways": len(stitches),
            "stitch_length_m": {"min": min(lengths), "median": float(np.median(lengths)), "max": max(lengths)},
            "xml_ways": None if xml_out is None else n * n * sum(walk_way) + len(stitches)}


def write_institutions(src: dict, out: Path, n: int, institutions: Path = DEFAULT_INSTITUTIONS) -> dict:
    """Write a CSV (name, lon, lat) of the shipped institutions in the source's node box, tiled.

    Each is first moved onto the nearest node of the source's largest walkable component (the shipped
    extracts hold no medical POIs of their own, and the nearest institutions lie off their roads).
    """
    import csv

    import geopandas as gpd

    _, _, dlon, dlat = tile_box(src)
    g = gpd.read_file(institutions)
    pts = g.geometry.representative_point()
    inside = ((pts.x >= src["lon"].min()) & (pts.x <= src["lon"].max())
              & (pts.y >= src["lat"].min()) & (pts.y <= src["lat"].max())).to_numpy()
    g, px, py = g[inside], pts.x.to_numpy()[inside], pts.y.to_numpy()[inside]
    comp = walk_component(src)
    d = _haversine_m(px[:, None], py[:, None], src["lon"][comp][None, :], src["lat"][comp][None, :])
    at = comp[d.argmin(axis=1)]
    names = g["name"].fillna("institution").astype(str).tolist()
    rows = []
    for j in range(n):
        for i in range(n):
            for name, r in zip(names, at.tolist(), strict=True):
                rows.append((f"{name} #{j * n + i}", f"{src['lon'][r] + i * dlon:.7f}", f"{src['lat'][r] + j * dlat:.7f}"))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        wr = csv.writer(f)
        wr.writerow(("name", "lon", "lat"))
        wr.writerows(rows)
    return {"rows": len(rows), "per_tile": len(names), "moved_m": [round(float(x), 1) for x in d.min(axis=1)]}


def write_population(src: dict, out: Path, n: int, population: Path = DEFAULT_POPULATION) -> dict:
    """Write the shipped raster's window over the source box, summed to POP_PIXEL_DEG and tiled n x n."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import from_bounds

    lon0, lat0, dlon, dlat = tile_box(src)
    f = round(POP_PIXEL_DEG / WORLDPOP_PIXEL_DEG)
    with rasterio.open(population) as r:
        win = from_bounds(lon0, lat0, lon0 + dlon, lat0 + dlat, transform=r.transform).round_offsets().round_lengths()
        a = r.read(1, window=win, boundless=True, fill_value=0, masked=True).filled(0).astype("float64")
    a = np.where(a > 0, a, 0.0)
    ny, nx = round(dlat / POP_PIXEL_DEG), round(dlon / POP_PIXEL_DEG)
    a = a[: ny * f, : nx * f]
    a = np.pad(a, ((0, ny * f - a.shape[0]), (0, nx * f - a.shape[1])))
    tile = a.reshape(ny, f, nx, f).sum(axis=(1, 3)).astype("float32")
    big = np.tile(tile, (n, n))
    out.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "dtype": "float32", "count": 1, "width": big.shape[1], "height": big.shape[0],
               "crs": "EPSG:4326", "transform": from_origin(lon0, lat0 + n * dlat, POP_PIXEL_DEG, POP_PIXEL_DEG),
               "nodata": -99999.0, "compress": "deflate", "tiled": True}
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(big, 1)
    return {"pixels": int(big.size), "populated_pixels": int((big > 0).sum()), "population": float(big.sum(dtype="float64"))}


def main(argv: list[str] | None = None) -> dict:
    """Command line: tile SRC into OUT (and the companions asked for); return the description written next to OUT."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="source extract (.osm or .osm.pbf)")
    ap.add_argument("out", type=Path, help="output .osm.pbf")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--n", type=int, help="tiles per side")
    g.add_argument("--target-nodes", type=int, help="pick n for about this many highway nodes")
    ap.add_argument("--institutions-out", type=Path, help="also write the tiled institutions CSV here")
    ap.add_argument("--population-out", type=Path, help="also write the tiled population GeoTIFF here")
    ap.add_argument("--xml-out", type=Path, help="also write its walkable roads as .osm XML here (for OSMnx)")
    args = ap.parse_args(argv)
    src = read_source(args.src)
    n = args.n if args.n is not None else pick_n(src, args.target_nodes or 350_000)
    info = {"source": str(args.src), **write_tiled(src, args.out, n, xml_out=args.xml_out)}
    if args.institutions_out:
        info["institutions"] = write_institutions(src, args.institutions_out, n)
    if args.population_out:
        info["population"] = write_population(src, args.population_out, n)
    args.out.with_name(args.out.name + ".json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info), file=sys.stderr)
    return info


if __name__ == "__main__":
    main()
