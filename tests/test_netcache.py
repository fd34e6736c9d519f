"""The road-network disk cache: a second load skips parsing, a changed source or setting rebuilds."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely

from planner import _netcache, _osm, datasets, network, settings

from .test_network_clipped import GUANGGU_CLIP_BBOX, clip_osm

FIELDS = ("node_id", "node_xy", "a", "b", "forward", "backward", "length_m", "highway", "road_id", "speed_kph")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def parses(monkeypatch) -> list[Path]:
    """Record every OSM parse (the real one runs)."""
    calls: list[Path] = []
    real = _osm.read_highway_ways

    def counting(path, **kw):
        calls.append(path)
        return real(path, **kw)

    monkeypatch.setattr(_osm, "read_highway_ways", counting)
    return calls


def assert_same_roads(r1: network.RoadNetwork, r2: network.RoadNetwork) -> None:
    for f in FIELDS:
        x, y = getattr(r1, f), getattr(r2, f)
        assert x.dtype == y.dtype, f
        assert np.array_equal(x, y), f
    assert shapely.equals_exact(r1.geometry, r2.geometry, tolerance=0).all()
    assert (r1.crs, r1.mode, r1.dropped_nodes, r1.dropped_edges) == (r2.crs, r2.mode, r2.dropped_nodes, r2.dropped_edges)


def test_second_load_comes_from_the_cache(cache, parses, caplog):
    src = datasets.get_path("guanggu_pbf")
    first = network.load_roads(src, mode="drive")
    assert len(parses) == 1 and len(list(cache.glob("*.npz"))) == 1
    with caplog.at_level(logging.INFO, logger="planner"):
        second = network.load_roads(src, mode="drive")
    assert len(parses) == 1  # not parsed again
    assert any("loaded the road network from the cache" in r.getMessage() for r in caplog.records)
    assert_same_roads(first, second)
    assert_same_roads(first, network.load_roads(src, mode="drive", cache=False))
    assert len(parses) == 2
    # another mode is another entry
    network.load_roads(src, mode="walk")
    assert len(parses) == 3 and len(list(cache.glob("*.npz"))) == 2


def test_changed_source_is_rebuilt_never_stale(cache, parses, tmp_path):
    path = tmp_path / "guanggu.osm"
    shutil.copy(datasets.get_path("guanggu_osm"), path)
    before = network.load_roads(path, mode="drive")
    # the same bytes under another name hit the cache
    other = tmp_path / "copy.osm"
    shutil.copy(path, other)
    hit = network.load_roads(other, mode="drive")
    assert len(parses) == 1 and hit.source == str(other)
    # make every trunk road a footway: drive loses them
    text = path.read_text(encoding="utf-8")
    assert text.count('v="trunk"') > 5
    path.write_text(text.replace('v="trunk"', 'v="footway"'), encoding="utf-8")
    after = network.load_roads(path, mode="drive")
    assert len(parses) == 2
    assert "trunk" in set(before.highway.tolist()) and "trunk" not in set(after.highway.tolist())
    assert after.length_m.sum() < before.length_m.sum()


def test_changed_settings_are_never_stale(cache, parses, monkeypatch):
    src = datasets.get_path("guanggu_pbf")
    base = network.load_roads(src, mode="drive")
    # speeds are set on every load from the settings of the moment
    monkeypatch.setitem(settings.DRIVE_SPEEDS_KPH, "trunk", 80.0)
    faster = network.load_roads(src, mode="drive")
    assert len(parses) == 1
    assert (faster.speed_kph[faster.highway == "trunk"] == 80.0).all()
    assert faster.travel_time_s.sum() < base.travel_time_s.sum()
    assert network.load_roads(src, mode="drive", speed_kph=20.0).speed_kph.max() == 20.0
    # excluded classes change what is built: another entry
    monkeypatch.setitem(settings.EXCLUDED_HIGHWAYS, "drive", settings.EXCLUDED_HIGHWAYS["drive"] | {"trunk"})
    no_trunk = network.load_roads(src, mode="drive")
    assert len(parses) == 2 and "trunk" not in set(no_trunk.highway.tolist())


def test_corrupt_cache_file_is_removed_and_rebuilt(cache, parses, caplog):
    src = datasets.get_path("guanggu_pbf")
    first = network.load_roads(src, mode="walk")
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING, logger="planner"):
        again = network.load_roads(src, mode="walk")
    assert any("ignoring and removing an unreadable road-network cache file" in r.getMessage() for r in caplog.records)
    assert len(parses) == 2
    assert_same_roads(first, again)
    assert entry.is_file()  # written again, whole
    assert_same_roads(first, network.load_roads(src, mode="walk"))
    assert len(parses) == 2


def test_no_cache_writes_nothing(cache):
    network.load_roads(datasets.get_path("guanggu_pbf"), mode="walk", cache=False)
    assert not cache.exists() or not list(cache.iterdir())


def test_centreline_layer_is_cached_with_its_ids(cache):
    src = datasets.get_path("wuhan_roads")
    first = network.load_roads(src, mode="walk")
    second = network.load_roads(src, mode="walk")
    assert_same_roads(first, second)
    assert first.road_id.dtype.kind in "iu" and first.n_nodes > 5000
    # another snap tolerance is another network
    wide = network.load_roads(src, mode="walk", snap_tolerance_m=20.0)
    assert wide.n_nodes < first.n_nodes
    assert len(list(cache.glob("*.npz"))) == 2


def test_cache_hit_repeats_the_clipped_extract_warning(cache, tmp_path, caplog):
    clipped = tmp_path / "clipped.osm.pbf"
    clip_osm(datasets.get_path("guanggu_pbf"), clipped, GUANGGU_CLIP_BBOX)
    with caplog.at_level(logging.WARNING, logger="planner"):
        network.load_roads(clipped, mode="walk")
        network.load_roads(clipped, mode="walk")
    msgs = [r.getMessage() for r in caplog.records if "clipped extract" in r.getMessage()]
    assert len(msgs) == 2 and msgs[0] == msgs[1]


def test_default_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("PLANNER_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _netcache.cache_dir() == tmp_path / ".cache" / "planner" / "networks"
