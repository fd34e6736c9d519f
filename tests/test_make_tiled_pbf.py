"""benchmarks/make_tiled_pbf.py: the city-scale benchmark input is n x n joined copies of a real extract."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import osmium
import pytest

from planner import datasets, network

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiling():
    spec = importlib.util.spec_from_file_location("make_tiled_pbf", ROOT / "benchmarks" / "make_tiled_pbf.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _highway_nodes(path: Path) -> tuple[int, int, int]:
    """(nodes in the file, distinct node ids, nodes referenced by highway ways)."""
    ids, refs = [], set()
    for obj in osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY):
        if obj.is_node():
            ids.append(obj.id)
        elif "highway" in obj.tags:
            refs.update(r.ref for r in obj.nodes)
    return len(ids), len(set(ids)), len(refs)


def test_two_by_two_tiling_is_four_joined_copies(tiling, tmp_path):
    src = datasets.get_path("guanggu_pbf")
    out = tmp_path / "t.osm.pbf"
    info = tiling.main([str(src), str(out), "--n", "2"])
    n_nodes, n_unique, n_highway = _highway_nodes(out)
    assert (n_nodes, n_unique) == (4 * 5591, 4 * 5591)  # every copy's nodes, ids unique
    assert n_highway == info["highway_nodes"] == 4 * 1624  # the stitch ways add no nodes
    assert info["stitch_ways"] == 4 * tiling.STITCH_PER_SIDE  # 2 east-west and 2 north-south joins
    one = network.load_network(src, mode="walk")
    four = network.load_network(out, mode="walk")
    # the largest walk component spans all four copies (a lone copy would be a quarter of it)
    assert len(four) >= 4 * len(one)
    xy = np.array([(d["x"], d["y"]) for _, d in four.nodes(data=True)])
    span_x, span_y = np.ptp(xy, axis=0)
    one_xy = np.array([(d["x"], d["y"]) for _, d in one.nodes(data=True)])
    assert span_x > 1.9 * np.ptp(one_xy[:, 0]) and span_y > 1.9 * np.ptp(one_xy[:, 1])
    again = tmp_path / "again.osm.pbf"
    tiling.main([str(src), str(again), "--n", "2"])
    assert again.read_bytes() == out.read_bytes()  # deterministic


def test_target_nodes_picks_n(tiling):
    src = tiling.read_source(datasets.get_path("guanggu_pbf"))
    assert tiling.pick_n(src, 350_000) == 15  # 15 * 15 * 1,624 = 365,400 highway nodes
    assert tiling.pick_n(src, 1_400_000) == 29  # 29 * 29 * 1,624 = 1,365,784
