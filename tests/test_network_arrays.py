"""The array engine (``load_roads``) against the OSMnx reference engine (``load_network(engine="osmnx")``).

For every shipped extract (the OSM files of ``geodata/osm`` and the central-Wuhan centreline
layer), the two engines must give:

* the same total directed edge length, within 0.1 % (the array engine sums the same
  great-circle segment lengths, so in practice to 1e-9);
* the same nodes, up to the ones the array engine adds on purpose: where one OSM way meets
  another in the middle of a chain, OSMnx merges the two ways into one edge (with a list of way
  ids and classes), the array engine keeps a node so that every piece has one way id, class
  and one-way rule. Every extra node is such a node: two pieces with different way ids;
* the same node-to-node travel times within 1 s, from 20 shared nodes to every shared node.

The small extracts are checked in every mode, the larger ones in one mode each (the
reference engine takes seconds per load).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from planner import EmptyNetworkError, InputFileError, datasets, network, settings, travel_time

from .test_network_clipped import GUANGGU_CLIP_BBOX, clip_osm

OSM = Path(datasets.get_path("guanggu_osm")).parent
WUHAN_ROADS = Path(datasets.get_path("wuhan_roads"))
ALL_MODES = ("walk", "ebike", "drive")
SMALL = ("beijing_haidian_bupt.osm.pbf", "fujian_ninghua_county_town.osm", "wuhan_guanggu_east_lake_hitech.osm")
ONE_MODE = {  # larger extracts (and the other copy of each XML/PBF pair): one mode each, spread over the modes
    "beijing_haidian_bupt.osm": "walk",
    "beijing_haidian_cau_east.osm": "walk",
    "beijing_haidian_cau_east.osm.pbf": "drive",
    "beijing_haidian_tsinghua_pku.osm": "ebike",
    "shenzhen_longgang.osm": "drive",
    "wuhan_guanggu_east_lake_hitech.osm.pbf": "ebike",
}
CASES = [(OSM / f, m) for f in SMALL for m in ALL_MODES] + [(OSM / f, m) for f, m in ONE_MODE.items()]
CASES += [(WUHAN_ROADS, "walk")]
N_SOURCES = 20
ONE_SPEED_KPH = 30.0  # km/h


def test_every_shipped_extract_is_checked():
    shipped = {p.name for p in OSM.iterdir() if p.name.endswith((".osm", ".osm.pbf"))}
    assert shipped == set(SMALL) | set(ONE_MODE)


def _shared_times(roads: network.RoadNetwork, G) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times (s) from N_SOURCES shared nodes to every shared node, on both networks; and the shared ids."""
    net_a, net_r = travel_time.compile_network(roads), travel_time.compile_network(G)
    ids_a = {nd: i for i, nd in enumerate(net_a.node_ids.tolist())}
    ids_r = {nd: i for i, nd in enumerate(net_r.node_ids.tolist())}
    shared = np.array(sorted(ids_a.keys() & ids_r.keys()))
    sources = shared[np.linspace(0, len(shared) - 1, N_SOURCES).astype(int)]
    ta = dijkstra(net_a.csr, indices=[ids_a[s] for s in sources])[:, [ids_a[s] for s in shared]]
    tr = dijkstra(net_r.csr, indices=[ids_r[s] for s in sources])[:, [ids_r[s] for s in shared]]
    return ta, tr, shared


@pytest.mark.parametrize(("path", "mode"), CASES, ids=[f"{p.name}-{m}" for p, m in CASES])
def test_arrays_engine_matches_the_osmnx_reference(path, mode):
    roads = network.load_roads(path, mode=mode, cache=False)
    G = network.load_network(path, mode=mode, engine="osmnx")
    # total directed length within 0.1 % (it is the same sum of great-circle segments)
    length_a = float(roads.length_m[roads.forward].sum() + roads.length_m[roads.backward].sum())
    length_r = sum(d["length"] for *_, d in G.edges(data=True))
    assert length_a == pytest.approx(length_r, rel=1e-3)
    assert roads.crs == G.graph["crs"]
    # nodes: the reference's, plus nodes where two OSM ways meet in a chain (two pieces, two way ids)
    ids = roads.node_id.tolist()
    assert set(G.nodes) <= set(ids)
    extra = np.isin(roads.node_id, np.array(list(G.nodes), dtype=roads.node_id.dtype), invert=True)
    ends = np.concatenate([roads.a, roads.b])
    way = np.concatenate([roads.road_id, roads.road_id])
    degree = np.bincount(ends, minlength=roads.n_nodes)
    for i in np.flatnonzero(extra):
        assert degree[i] == 2, f"node {ids[i]}: {degree[i]} pieces"
        assert len(set(way[ends == i].tolist())) == 2, f"node {ids[i]} joins one way"
    # travel times between shared nodes within 1 s, and unreachable on both or neither. An OSMnx edge merged
    # across road classes gets the mean of their speeds over its whole length, where the array engine times each
    # class's piece at its own speed: there (drive, mixed classes), compare at one speed for every road.
    if mode == "drive" and any(isinstance(h, list) for *_, h in G.edges(data="highway")):
        roads = network.with_speed(roads, ONE_SPEED_KPH)
        for *_, d in G.edges(data=True):
            d["travel_time"] = d["length"] / (ONE_SPEED_KPH / 3.6)
    ta, tr, shared = _shared_times(roads, G)
    assert len(shared) == len(G)
    assert np.array_equal(np.isinf(ta), np.isinf(tr))
    finite = np.isfinite(ta)
    assert finite.mean() > 0.5
    assert np.abs(ta[finite] - tr[finite]).max() < 1.0


def test_walk_ignores_one_ways_and_drive_keeps_them():
    walk = network.load_roads(OSM / "wuhan_guanggu_east_lake_hitech.osm", mode="walk", cache=False)
    drive = network.load_roads(OSM / "wuhan_guanggu_east_lake_hitech.osm", mode="drive", cache=False)
    assert walk.forward.all() and walk.backward.all()
    one_way = drive.forward != drive.backward
    assert one_way.sum() > 50  # the extract's dual carriageways
    assert not set(drive.highway.tolist()) & settings.EXCLUDED_HIGHWAYS["drive"]
    # drive speeds per class, from settings
    assert drive.speed_kph[drive.highway == "trunk"] == pytest.approx(settings.DRIVE_SPEEDS_KPH["trunk"])


def test_reversed_one_way_and_roundabout(tmp_path):
    """oneway=-1 runs against the node order, a roundabout is one-way; a plain way stays two-way (hand-made file)."""
    lat0, lon0 = 30.48, 114.51
    ll = {k: (lon0 + x * 1e-3, lat0 + y * 1e-3) for k, (x, y) in
          {1: (0, 0), 2: (1, 0), 3: (2, 0), 4: (2, 1), 5: (3, 1), 6: (3, 0)}.items()}
    nodes = "".join(f'<node id="{k}" version="1" lat="{la:.7f}" lon="{lo:.7f}"/>' for k, (lo, la) in ll.items())

    def way(wid, refs, tags):
        return (f'<way id="{wid}" version="1">' + "".join(f'<nd ref="{r}"/>' for r in refs)
                + "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items()) + "</way>")

    ways = (way(10, [1, 2], {"highway": "residential"}) + way(11, [3, 2], {"highway": "primary", "oneway": "-1"})
            + way(12, [3, 4, 5, 6, 3], {"highway": "primary", "junction": "roundabout"})
            + way(13, [5, 1], {"highway": "secondary", "oneway": "yes"}))
    path = tmp_path / "oneway.osm"
    path.write_text(f"<?xml version='1.0' encoding='UTF-8'?><osm version='0.6'>{nodes}{ways}</osm>", encoding="utf-8")
    roads = network.load_roads(path, mode="drive", cache=False)
    G = network.load_network(path, mode="drive", engine="osmnx")
    edges = {(int(roads.node_id[roads.a[i]]), int(roads.node_id[roads.b[i]])): (bool(roads.forward[i]), bool(roads.backward[i]))
             for i in range(len(roads.a))}
    assert edges == {(1, 2): (True, True),  # two-way
                     (3, 2): (False, True),  # oneway=-1: only against the node order, 2 -> 3
                     (3, 5): (True, False), (5, 3): (True, False),  # the roundabout, split at its junctions 3 and 5
                     (5, 1): (True, False)}
    assert set(G.edges()) == {(1, 2), (2, 1), (2, 3), (3, 5), (5, 3), (5, 1)}
    assert roads.n_edges == G.number_of_edges() == 6
    walk = network.load_roads(path, mode="walk", cache=False)
    assert walk.forward.all() and walk.backward.all()


def test_clipped_extract_loads_with_the_reference_counts(tmp_path, caplog):
    clipped = tmp_path / "guanggu_clipped.osm.pbf"
    clip_osm(datasets.get_path("guanggu_pbf"), clipped, GUANGGU_CLIP_BBOX)
    with caplog.at_level(logging.WARNING, logger="planner"):
        network.load_network(clipped, mode="walk", engine="osmnx")
    (ref_msg,) = [r.getMessage() for r in caplog.records if "clipped extract" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="planner"):
        roads = network.load_roads(clipped, mode="walk", cache=False)
    (msg,) = [r.getMessage() for r in caplog.records if "clipped extract" in r.getMessage()]
    assert msg == ref_msg  # same counts of dropped references, nodes, cut and dropped roads
    G = network.load_network(clipped, mode="walk", engine="osmnx")
    length_r = sum(d["length"] for *_, d in G.edges(data=True))
    assert float(2 * roads.length_m.sum()) == pytest.approx(length_r, rel=1e-9)


def test_pbf_without_roads_for_the_mode(tmp_path):
    import osmium

    path = tmp_path / "footways.osm.pbf"
    w = osmium.SimpleWriter(str(path))
    w.add_node(osmium.osm.mutable.Node(id=1, location=(114.5, 30.5)))
    w.add_node(osmium.osm.mutable.Node(id=2, location=(114.501, 30.5)))
    w.add_way(osmium.osm.mutable.Way(id=1, nodes=[1, 2], tags={"highway": "footway"}))
    w.close()
    assert network.load_roads(path, mode="walk", cache=False).n_edges == 2
    with pytest.raises(EmptyNetworkError, match=r"footways\.osm\.pbf: no roads usable for mode 'drive'.*fix:"):
        network.load_roads(path, mode="drive", cache=False)


def test_truncated_pbf_is_an_input_error(tmp_path):
    src = Path(datasets.get_path("guanggu_pbf"))
    cut = tmp_path / "truncated.osm.pbf"
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match=r"truncated\.osm\.pbf: cannot read this OSM file .*; fix: .*osmium extract"):
        network.load_roads(cut, mode="walk", cache=False)


def test_pbf_too_large_for_the_memory_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "city.osm.pbf"
    shutil.copy(datasets.get_path("guanggu_pbf"), path)  # 55 KB: about 3 MB to read
    monkeypatch.setattr(settings, "OSM_MAX_MEMORY_MB", 1.0)
    with pytest.raises(InputFileError, match=r"city\.osm\.pbf: this .* extract needs about .* GB of memory.*"
                                             r"fix: clip it .*`osmium extract -b"):
        network.load_roads(path, mode="walk", cache=False)
    monkeypatch.setattr(settings, "OSM_MAX_MEMORY_MB", 100.0)
    assert network.load_roads(path, mode="walk", cache=False).n_nodes > 400


def test_load_network_is_load_roads_to_networkx():
    roads = network.load_roads(OSM / "fujian_ninghua_county_town.osm", mode="drive", cache=False)
    G = network.load_network(OSM / "fujian_ninghua_county_town.osm", mode="drive", cache=False)
    assert (len(G), G.number_of_edges()) == (roads.n_nodes, roads.n_edges)
    assert sum(d["travel_time"] for *_, d in G.edges(data=True)) == pytest.approx(
        float(roads.travel_time_s[roads.forward].sum() + roads.travel_time_s[roads.backward].sum()))
    assert {d["osmid"] for *_, d in G.edges(data=True)} == set(roads.road_id.tolist())
    with pytest.raises(ValueError, match="unknown engine"):
        network.load_network(OSM / "fujian_ninghua_county_town.osm", engine="pyrosm")


def test_extract_clipped_too_tightly_has_no_roads(tmp_path):
    path = tmp_path / "tight.osm"
    path.write_text("<?xml version='1.0' encoding='UTF-8'?><osm version='0.6'>"
                    "<node id='1' version='1' lat='30.48' lon='114.51'/><node id='2' version='1' lat='30.49' lon='114.51'/>"
                    "<way id='10' version='1'><nd ref='1'/><nd ref='99'/><tag k='highway' v='residential'/></way>"
                    "<way id='11' version='1'><nd ref='98'/><nd ref='2'/><nd ref='97'/><tag k='highway' v='primary'/></way>"
                    "</osm>", encoding="utf-8")
    with pytest.raises(EmptyNetworkError, match=r"tight\.osm: no roads usable .*clipped too tightly.*fix:"):
        network.load_roads(path, mode="walk", cache=False)
