"""Clipped extracts: ways that reference nodes outside the file load, cut where the nodes are missing.

A bounding-box cut (``osmium extract --strategy simple``, download services) keeps
the nodes inside the box and every way touching it with its full node list, so
ways reference nodes that are not in the file. :func:`clip_osm` makes such a file
from a shipped extract with pyosmium (no system tool needed); the hand-made
file of :func:`_write_hand_clipped` is small enough to check every count by hand.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from planner import datasets, network
from planner.institutions import load_institutions

#: Box cut out of the Optics Valley extract (minlon, minlat, maxlon, maxlat): inside its <bounds>, so ways cross every edge.
GUANGGU_CLIP_BBOX = (114.505, 30.478, 114.530, 30.490)


def clip_osm(src: Path, dst: Path, bbox: tuple[float, float, float, float]) -> tuple[int, int]:
    """Cut `src` to `bbox` as ``osmium extract --strategy simple`` does: nodes inside, ways touching it whole.

    Returns
    -------
    counts
        Nodes and ways written.
    """
    import osmium

    minlon, minlat, maxlon, maxlat = bbox
    inside = {n.id for n in osmium.FileProcessor(str(src), osmium.osm.NODE)
              if minlon <= n.location.lon <= maxlon and minlat <= n.location.lat <= maxlat}
    ways = {w.id for w in osmium.FileProcessor(str(src), osmium.osm.WAY) if any(r.ref in inside for r in w.nodes)}
    if dst.exists():
        dst.unlink()
    writer = osmium.SimpleWriter(str(dst))
    try:
        for obj in osmium.FileProcessor(str(src), osmium.osm.NODE | osmium.osm.WAY):
            if (obj.is_node() and obj.id in inside) or (obj.is_way() and obj.id in ways):
                writer.add(obj)
    finally:
        writer.close()
    return len(inside), len(ways)


@pytest.fixture(scope="module")
def guanggu_clipped(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clipped") / "guanggu_clipped.osm.pbf"
    clip_osm(datasets.get_path("guanggu_pbf"), path, GUANGGU_CLIP_BBOX)
    return path


def _missing_highway_refs(path: Path) -> tuple[int, int]:
    """Count references of highway ways to nodes absent from the file, and the ways that have any (independently)."""
    import osmium

    present = {n.id for n in osmium.FileProcessor(str(path), osmium.osm.NODE)}
    refs = ways = 0
    for w in osmium.FileProcessor(str(path), osmium.osm.WAY):
        if "highway" in w.tags:
            missing = sum(r.ref not in present for r in w.nodes)
            refs += missing
            ways += missing > 0
    return refs, ways


def _clip_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "clipped extract" in r.getMessage()]


def test_clip_fixture_makes_ways_cross_the_box_edge(guanggu_clipped):
    refs, ways = _missing_highway_refs(guanggu_clipped)
    assert refs > 100 and ways > 20  # a real clipped extract, not a clean one
    assert _missing_highway_refs(datasets.get_path("guanggu_pbf")) == (0, 0)


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_clipped_extract_loads_with_one_warning(guanggu_clipped, caplog, mode):
    full = network.load_network(datasets.get_path("guanggu_pbf"), mode=mode)
    with caplog.at_level(logging.WARNING, logger="planner"):
        G = network.load_network(guanggu_clipped, mode=mode)
    (msg,) = _clip_warnings(caplog)
    refs, _ = _missing_highway_refs(guanggu_clipped)
    dropped_refs = int(msg.split("dropped ")[1].split(" references")[0])
    assert 0 < dropped_refs <= refs  # only the ways kept for the mode count
    assert "roads cut where they were: " in msg and "roads dropped (fewer than 2 nodes left): " in msg
    assert 50 < len(G) < len(full)
    # every clipped edge lies on a road of the unclipped network, and every node inside the box (plus rounding)
    xy = gpd.GeoSeries(gpd.points_from_xy([G.nodes[n]["x"] for n in G], [G.nodes[n]["y"] for n in G]), crs=G.graph["crs"])
    lon, lat = xy.to_crs("EPSG:4326").x.to_numpy(), xy.to_crs("EPSG:4326").y.to_numpy()
    minlon, minlat, maxlon, maxlat = GUANGGU_CLIP_BBOX
    assert ((lon >= minlon - 1e-6) & (lon <= maxlon + 1e-6) & (lat >= minlat - 1e-6) & (lat <= maxlat + 1e-6)).all()
    roads = shapely.union_all([d["geometry"] for _, _, d in full.edges(data=True)]).buffer(1.0)
    clipped = [d["geometry"] for _, _, d in G.edges(data=True)]
    assert shapely.covers(roads, shapely.union_all(clipped))


def _write_hand_clipped(path: Path) -> dict[int, tuple[float, float]]:
    """Roads around node 3, which is missing (as if outside the cut), in metres east/north of a point in Wuhan.

    way 10: 1-2-[3]-4-5 (residential) -> pieces 1-2 and 4-5
    way 11: 5-[6]-[7]  (residential) -> piece 5 alone: dropped
    way 12: 2-8-4      (residential, complete), a detour north of the missing node
    hospital way 20: 1-2-8-[9]-1 (partly in the file); hospital way 21: [6]-[7]-[9]-[6] (no node in the file)
    """
    lat0, lon0 = 30.48, 114.51
    metres = {1: (0, 0), 2: (100, 0), 4: (300, 0), 5: (400, 0), 8: (200, 150)}
    ll = {k: (round(lon0 + x / (111_320 * math.cos(math.radians(lat0))), 7), round(lat0 + y / 110_574, 7))
          for k, (x, y) in metres.items()}  # OSM keeps 7 decimals
    nodes = "\n".join(f'  <node id="{k}" version="1" lat="{la:.7f}" lon="{lo:.7f}"/>' for k, (lo, la) in ll.items())

    def way(wid: int, refs: list[int], tags: dict[str, str]) -> str:
        nds = "".join(f'<nd ref="{r}"/>' for r in refs)
        tgs = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        return f'  <way id="{wid}" version="1">{nds}{tgs}</way>'

    ways = "\n".join([
        way(10, [1, 2, 3, 4, 5], {"highway": "residential"}),
        way(11, [5, 6, 7], {"highway": "residential"}),
        way(12, [2, 8, 4], {"highway": "residential"}),
        way(20, [1, 2, 8, 9, 1], {"amenity": "hospital", "name": "测试社区卫生服务中心"}),
        way(21, [6, 7, 9, 6], {"amenity": "hospital", "name": "盒外医院"}),
    ])
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n{nodes}\n{ways}\n</osm>\n', encoding="utf-8")
    return ll


def test_hand_clipped_way_is_cut_where_nodes_are_missing(tmp_path, caplog):
    path = tmp_path / "hand_clipped.osm"
    ll = _write_hand_clipped(path)
    with caplog.at_level(logging.WARNING, logger="planner"):
        G = network.load_network(path, mode="walk")
    (msg,) = _clip_warnings(caplog)
    # way 10 misses node 3, way 11 nodes 6 and 7: 3 references to 3 nodes; way 10 is cut, way 11 dropped
    assert "dropped 3 references to 3 nodes" in msg
    assert "roads cut where they were: 1;" in msg and "roads dropped (fewer than 2 nodes left): 1" in msg
    # 1-2-8-4-5 is one chain of two-way pieces: 1-2 and 4-5 (way 10), and the detour 2-8-4 (way 12), never across 2-4
    assert sorted(G.nodes) == [1, 2, 4, 5]
    lengths = {(min(u, v), max(u, v)): d["length"] for u, v, d in G.edges(data=True)}
    length = sum(lengths.values())

    def d(a: int, b: int) -> float:
        (lo1, la1), (lo2, la2) = ll[a], ll[b]
        x = math.radians(lo2 - lo1) * math.cos(math.radians((la1 + la2) / 2))
        return 6_371_009 * math.hypot(x, math.radians(la2 - la1))

    via_detour = d(1, 2) + d(2, 8) + d(8, 4) + d(4, 5)
    assert length == pytest.approx(via_detour, abs=0.5)
    assert lengths[(2, 4)] == pytest.approx(d(2, 8) + d(8, 4), abs=0.5)
    assert abs(length - 400.0) > 50  # not the straight line 1-2-4-5 across the missing node
    # the pieces keep their OSM way id, so closing way 10 by id still finds them
    osmids = {(min(u, v), max(u, v)): d["osmid"] for u, v, d in G.edges(data=True)}
    assert osmids == {(1, 2): 10, (2, 4): 12, (4, 5): 10}
    # OSMnx's reference engine merges the chain into one edge 1-5 with both way ids
    R = network.load_network(path, mode="walk", engine="osmnx")
    assert sorted(R.nodes) == [1, 5]
    (ref_ids,) = {tuple(sorted(d["osmid"])) for _, _, d in R.edges(data=True)}
    assert ref_ids == (10, 12)
    assert sum(d["length"] for *_, d in R.edges(data=True)) / 2 == pytest.approx(length, rel=1e-9)


def test_clipped_osm_institutions_are_placed_from_the_nodes_in_the_file(tmp_path, caplog):
    path = tmp_path / "hand_clipped.osm"
    ll = _write_hand_clipped(path)
    with caplog.at_level(logging.WARNING, logger="planner"):
        inst = load_institutions(path)
    (msg,) = _clip_warnings(caplog)
    assert "1 matching ways were placed from the part of their nodes" in msg and "1 with no node in the file" in msg
    assert list(inst.index) == ["way/20"]
    # the ring 1-2-8-[9]-1 without its closing repeat and the missing node: mean of nodes 1, 2, 8
    lon = np.mean([ll[k][0] for k in (1, 2, 8)])
    lat = np.mean([ll[k][1] for k in (1, 2, 8)])
    assert inst.loc["way/20", ["lon", "lat"]].to_numpy(dtype=float) == pytest.approx([lon, lat], abs=1e-9)
    assert inst.loc["way/20", "tier"] == "primary"
