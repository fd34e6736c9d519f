"""OpenStreetMap extract → :class:`~planner.network.RoadNetwork`, on arrays.

The reading is done by libosmium (through pyosmium) in C++: the ways with a
``highway`` tag pass a C++ filter, the node locations are added to them from
a C++ location index, and they are written as OPL text (one line per way,
``n<id>x<lon>y<lat>`` per node) to a temporary file. Python then handles one
line per *way* (its tags), never one object per node: the node lists of all
ways are parsed in one go by numpy. Everything after that is vectorised:

1. the same way filter as the reference engine (``highway`` class excluded
   for the mode, ``area=yes``, ``foot=no`` when walking, ``motor_vehicle=no``
   when driving, ``access=private``);
2. clipped extracts: ways are cut where their nodes are missing from the
   file (a piece with fewer than 2 distinct nodes disappears), counted and
   logged exactly as :func:`planner.io.write_osm_subset` counts them;
3. OSMnx's one-way rules for ``ebike`` and ``drive`` (``oneway`` in
   ``yes/true/1/-1/reverse/T/F``, reversed for ``-1/reverse/T``,
   ``junction=roundabout``); walking ignores one-way tags;
4. degree-2 chains are contracted into pieces between junctions. A node is a
   junction where the road branches or ends, and also where one OSM way (or
   one piece of a cut way) meets another, so that every piece has exactly
   one way id, road class and one-way rule. Isolated rings without any
   junction are dropped, as OSMnx's ``simplify_graph`` drops them;
5. the largest weakly (walk) or strongly (ebike, drive) connected component
   is kept with :func:`scipy.sparse.csgraph.connected_components`;
6. lengths are great-circle distances summed over the node-to-node segments
   (as OSMnx computes ``length``), and coordinates are projected in bulk to
   the UTM zone OSMnx would choose.

Compared with the OSMnx reference engine (``load_network(engine="osmnx")``),
the kept network has the same roads, lengths and travel times; it has more
nodes, because OSMnx merges chains across way boundaries (its edges then carry
lists of way ids and road classes).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import settings
from ._errors import EmptyNetworkError, InputFileError

logger = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_009.0  # metres, the mean radius OSMnx's great_circle uses
ONEWAY_VALUES = frozenset({"yes", "true", "1", "-1", "reverse", "T", "F"})  # OSMnx's "one-way" values
REVERSED_VALUES = frozenset({"-1", "reverse", "T"})  # one-way against the node order
#: Estimated peak memory of reading an extract, bytes per byte of file: measured about 27 (PBF) and 4 (XML)
#: on the 1.4 M-road-node tiled Optics Valley extract of benchmarks/, with a 1.5-2x margin.
MEMORY_PER_FILE_BYTE = {"pbf": 40.0, "xml": 8.0}
_ESCAPE = re.compile(rb"%([0-9a-fA-F]+)%")
_XY_TO_COMMA = bytes.maketrans(b"xy", b",,")


def roads_from_osm(path: Path, *, mode: str) -> dict[str, Any]:
    """Read an ``.osm`` / ``.osm.pbf`` extract into the fields of a RoadNetwork for `mode` (speeds aside).

    Parameters
    ----------
    path
        OSM extract.
    mode
        ``"walk"``, ``"ebike"`` or ``"drive"``.

    Returns
    -------
    fields
        The largest connected component, projected to UTM: the
        :class:`~planner.network.RoadNetwork` fields but ``speed_kph``, and
        ``notes``, the warnings logged.

    Raises
    ------
    InputFileError
        If the file cannot be read (truncated, not OSM) or is too large for the memory.
    EmptyNetworkError
        If no road is usable for the mode.
    """
    check_memory(path)
    return build_roads(read_highway_ways(path, mode=mode), mode=mode, source=path)


def check_memory(path: Path) -> None:
    """Refuse an extract whose estimated reading memory exceeds the available RAM (or ``settings.OSM_MAX_MEMORY_MB``)."""
    size = path.stat().st_size
    kind = "pbf" if path.name.lower().endswith(".pbf") else "xml"
    need = size * MEMORY_PER_FILE_BYTE[kind]
    limit_mb = settings.OSM_MAX_MEMORY_MB
    limit = float(limit_mb) * 2**20 if limit_mb is not None else available_memory()
    if limit is None:  # pragma: no cover - neither /proc/meminfo nor sysconf
        return
    if need > limit:
        msg = (f"{path}: this {size / 2**20:,.0f} MB extract needs about {need / 2**30:,.1f} GB of memory to read, "
               f"more than the {limit / 2**30:,.1f} GB available; fix: clip it to the study area with "
               "`osmium extract -b minlon,minlat,maxlon,maxlat` (or raise settings.OSM_MAX_MEMORY_MB)")
        raise InputFileError(msg)


def available_memory() -> float | None:
    """Return the memory available for new work in bytes: Linux's MemAvailable, else the physical RAM, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


@dataclass(frozen=True)
class HighwayWays:
    """The kept highway ways, cut at missing nodes: ragged node lists and per-piece attributes."""

    way_id: np.ndarray  # OSM way id of each piece (int64)
    offsets: np.ndarray  # piece p has nodes offsets[p]:offsets[p+1]
    ref: np.ndarray  # node ids (int64)
    lon: np.ndarray
    lat: np.ndarray
    highway: np.ndarray  # object str per piece
    oneway: np.ndarray  # int8 per piece: 0 two-way, 1 one-way along the nodes, -1 against them
    notes: tuple[str, ...]  # the warnings logged while reading


def _decode(value: bytes) -> str:
    if b"%" in value:
        value = _ESCAPE.sub(lambda m: chr(int(m[1], 16)).encode("utf-8"), value)
    return value.decode("utf-8", "replace")


def _keep(tags: dict[bytes, bytes], mode: str, excluded: frozenset[str]) -> str | None:
    """Return the way's highway class if the mode keeps it (the reference engine's keep_way), else None."""
    hw = tags.get(b"highway")
    if hw is None:
        return None
    highway = _decode(hw)
    if highway in excluded or tags.get(b"area") == b"yes":
        return None
    if mode == "walk" and tags.get(b"foot") == b"no":
        return None
    if (mode == "drive" and tags.get(b"motor_vehicle") == b"no") or tags.get(b"access") == b"private":
        return None
    return highway


def _oneway(tags: dict[bytes, bytes], mode: str) -> int:
    """OSMnx's one-way rules: 0 two-way, 1 one-way along the node order, -1 against it."""
    if mode == "walk":
        return 0
    ow = tags.get(b"oneway")
    value = _decode(ow) if ow is not None else None
    if value in ONEWAY_VALUES:
        return -1 if value in REVERSED_VALUES else 1
    junction = tags.get(b"junction")
    return 1 if junction is not None and _decode(junction) == "roundabout" else 0


def _verdict(tag_field: bytes, mode: str, excluded: frozenset[str]) -> tuple[str, int] | None:
    """Return (highway class, one-way rule) of a way with this OPL tag field (``Tk=v,...``) if the mode keeps it."""
    tags = dict(kv.split(b"=", 1) for kv in tag_field[1:].split(b",") if b"=" in kv)
    highway = _keep(tags, mode, excluded)
    return None if highway is None else (highway, _oneway(tags, mode))


def _write_opl(path: Path, dst: Path) -> None:
    import osmium
    from osmium.filter import EntityFilter, KeyFilter

    writer = osmium.SimpleWriter(osmium.io.File(str(dst), "opl,add_metadata=false,locations_on_ways=true"))
    try:
        locations = osmium.NodeLocationsForWays(osmium.index.create_map("flex_mem"))
        locations.ignore_errors()
        fmt = "pbf" if path.name.lower().endswith(".pbf") else "osm"  # by name, whatever its case
        osmium.apply(osmium.io.File(str(path), fmt), locations, EntityFilter(osmium.osm.WAY), KeyFilter("highway"), writer)
    finally:
        writer.close()


def read_highway_ways(path: Path, *, mode: str) -> HighwayWays:
    """Read the highway ways kept for `mode`, with node locations, cut where nodes are missing (logged)."""
    excluded = settings.EXCLUDED_HIGHWAYS[mode]
    with tempfile.TemporaryDirectory(prefix="planner-osm-") as tmp:
        opl = Path(tmp) / "ways.opl"
        try:
            _write_opl(path, opl)
        except RuntimeError as exc:
            msg = (f"{path}: cannot read this OSM file ({exc}); fix: check it is a complete .osm or .osm.pbf "
                   "extract (download it again, or clip it with `osmium extract`)")
            raise InputFileError(msg.replace("\n", " ")) from None
        way_ids: list[int] = []
        highways: list[str] = []
        oneways: list[int] = []
        node_lists: list[bytes] = []
        # the verdict per distinct tag field: most ways repeat one (70-80 % of the ways of the shipped extracts)
        verdicts: dict[bytes, tuple[str, int] | None] = {}
        with opl.open("rb") as lines:
            for line in lines:
                if line[:1] != b"w":
                    continue
                head, tag_field, node_field = line.rstrip(b"\n").split(b" ", 2)
                try:
                    verdict = verdicts[tag_field]
                except KeyError:
                    verdict = verdicts[tag_field] = _verdict(tag_field, mode, excluded)
                if verdict is None or len(node_field) < 2:  # noqa: PLR2004 - "N" and at least one node
                    continue
                way_ids.append(int(head[1:]))
                highways.append(verdict[0])
                oneways.append(verdict[1])
                node_lists.append(node_field[1:])
    if not way_ids:
        msg = f"{path}: no roads usable for mode '{mode}' (no highway=* ways); fix: use an extract that contains roads"
        raise EmptyNetworkError(msg)
    counts = np.fromiter((s.count(b",") + 1 for s in node_lists), dtype=np.int64, count=len(node_lists))
    ref, lon, lat = _parse_node_lists(node_lists, int(counts.sum()))
    del node_lists
    present = ~np.isnan(lon)
    return _cut_at_missing(path, np.array(way_ids, dtype=np.int64), counts, ref, lon, lat, present,
                           np.array(highways, dtype=object), np.array(oneways, dtype=np.int8))


def _parse_node_lists(node_lists: list[bytes], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse OPL node lists ``n<id>x<lon>y<lat>,...`` in C (numpy); a node missing from the file has ``xy``: NaN."""
    big = b",".join(node_lists).replace(b"xy", b"x-999y-999").translate(_XY_TO_COMMA, b"n")  # one pass: x, y -> ","; n dropped
    values = np.fromstring(big, dtype=np.float64, sep=",")  # text mode: numbers parsed in C, no Python objects
    del big
    if len(values) != 3 * n:
        msg = f"unexpected node list in libosmium's OPL output ({len(values)} numbers for {n} nodes)"
        raise RuntimeError(msg)
    values = values.reshape(-1, 3)
    ref = values[:, 0].astype(np.int64)  # OSM ids are far below 2**53: exact in float64
    missing = values[:, 1] == -999.0  # noqa: PLR2004 - the marker written above
    lon, lat = values[:, 1].copy(), values[:, 2].copy()
    lon[missing] = np.nan
    lat[missing] = np.nan
    return ref, lon, lat


def _cut_at_missing(path: Path, way_id: np.ndarray, counts: np.ndarray, ref: np.ndarray, lon: np.ndarray,
                    lat: np.ndarray, present: np.ndarray, highway: np.ndarray, oneway: np.ndarray) -> HighwayWays:
    """Cut ways where their nodes are missing, drop pieces with < 2 distinct nodes and consecutive repeats."""
    way_of = np.repeat(np.arange(len(way_id)), counts)
    starts = np.zeros(len(ref), bool)
    starts[np.cumsum(counts)[:-1]] = True
    starts[0] = True
    n_missing = int((~present).sum())
    if n_missing:
        missing_nodes = len(np.unique(ref[~present]))
        ways_missing = np.unique(way_of[~present])
    # a piece starts at each way start and after each missing node
    prev_missing = np.zeros(len(ref), bool)
    prev_missing[1:] = ~present[:-1]
    piece_start = present & (starts | prev_missing)
    keep = present.copy()
    # consecutive repeats of a node inside a piece (OSMnx drops them)
    repeat = np.zeros(len(ref), bool)
    repeat[1:] = (ref[1:] == ref[:-1]) & present[:-1] & ~starts[1:]
    keep &= ~repeat
    piece_of = np.cumsum(piece_start) - 1
    idx = np.flatnonzero(keep)
    piece = piece_of[idx]
    n_pieces = int(piece_start.sum())
    size = np.bincount(piece, minlength=n_pieces)
    ok_piece = size >= 2
    sel = ok_piece[piece]
    idx, piece = idx[sel], piece[sel]
    piece_way = way_of[np.flatnonzero(piece_start)]
    notes: tuple[str, ...] = ()
    if n_missing:
        cut = np.isin(ways_missing, np.unique(piece_way[ok_piece]))
        notes = (f"{path}: clipped extract: dropped {n_missing} references to {missing_nodes} nodes missing from the "
                 f"file; roads cut where they were: {int(cut.sum())}; roads dropped (fewer than 2 nodes left): "
                 f"{int((~cut).sum())}",)
        logger.warning("%s", notes[0])
    if not len(piece):
        msg = (f"{path}: no roads usable (every road lost its nodes: the extract is clipped too tightly); "
               "fix: use an extract that contains roads")
        raise EmptyNetworkError(msg)
    _, piece_new = np.unique(piece, return_inverse=True)
    new_size = np.bincount(piece_new)
    offsets = np.concatenate([[0], np.cumsum(new_size)])
    pw = piece_way[ok_piece]
    return HighwayWays(way_id=way_id[pw], offsets=offsets, ref=ref[idx], lon=lon[idx], lat=lat[idx],
                       highway=highway[pw], oneway=oneway[pw], notes=notes)


def utm_crs(lon: np.ndarray, lat: np.ndarray) -> CRS:
    """Return the UTM CRS OSMnx's ``project_graph`` picks for these points (geopandas' ``estimate_utm_crs`` of their bounds)."""
    x, y = float(np.mean([lon.min(), lon.max()])), float(np.mean([lat.min(), lat.max()]))
    if y < -80:  # noqa: PLR2004 - UTM's south limit, below it OSMnx uses UPS South
        return CRS.from_epsg(32761)
    if y > 84:  # noqa: PLR2004 - UTM's north limit
        return CRS.from_epsg(32661)
    info = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(x, y, x, y))
    return CRS.from_epsg(info[0].code)


def build_roads(ways: HighwayWays, *, mode: str, source: Path) -> dict[str, Any]:
    """Contract the ways into pieces between junctions, keep the largest component, project.

    Returns
    -------
    fields
        The :class:`~planner.network.RoadNetwork` fields but the speeds, and
        ``notes`` (the warnings logged, for the cache to repeat).
    """
    runs = _contract(ways)
    n_nodes = len(runs["node_ids"])
    a, b, forward, backward = runs["a"], runs["b"], runs["forward"], runs["backward"]
    used = np.unique(np.concatenate([a, b]))
    if not len(used):
        msg = f"{source}: the roads for mode '{mode}' form no edges; fix: use a larger extract"
        raise EmptyNetworkError(msg)
    lon_n, lat_n = np.empty(n_nodes), np.empty(n_nodes)
    lon_n[runs["node_of"]], lat_n[runs["node_of"]] = ways.lon, ways.lat
    crs = utm_crs(lon_n[used], lat_n[used])
    keep, kept_nodes, notes, dropped = keep_largest_component(a, b, forward, backward, used, mode=mode, source=source)
    idx = np.full(n_nodes, -1)
    idx[kept_nodes] = np.arange(len(kept_nodes))
    kr = np.flatnonzero(keep)
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = to_utm.transform(ways.lon[runs["pos"]], ways.lat[runs["pos"]])
    line = runs["line"]
    sel = np.isin(line, kr)
    geometry = np.empty(len(a), dtype=object)
    geometry[kr] = shapely.linestrings(np.column_stack([x[sel], y[sel]]), indices=np.searchsorted(kr, line[sel]))
    nx_, ny_ = to_utm.transform(lon_n[kept_nodes], lat_n[kept_nodes])
    piece = runs["piece"][kr]
    return {"crs": crs, "mode": mode, "node_id": runs["node_ids"][kept_nodes], "node_xy": np.column_stack([nx_, ny_]),
            "a": idx[a[kr]], "b": idx[b[kr]], "forward": forward[kr], "backward": backward[kr],
            "length_m": runs["length"][kr], "highway": ways.highway[piece], "road_id": ways.way_id[piece],
            "geometry": geometry[kr], "source": str(source), "dropped_nodes": dropped[0], "dropped_edges": dropped[1],
            "notes": [*ways.notes, *notes]}


def keep_largest_component(a: np.ndarray, b: np.ndarray, forward: np.ndarray, backward: np.ndarray, used: np.ndarray,
                           *, mode: str, source: Path) -> tuple[np.ndarray, np.ndarray, list[str], tuple[int, int]]:
    """Find the pieces and nodes of the largest weakly (walk) or strongly (ebike, drive) connected component.

    Returns
    -------
    keep, kept_nodes, notes, (dropped_nodes, dropped_edges)
        Mask of kept pieces, the kept node indices (sorted), the warning logged, and what was dropped.
    """
    n = int(max(a.max(), b.max())) + 1
    remap = np.full(n, -1)
    remap[used] = np.arange(len(used))
    ra, rb = remap[a], remap[b]
    du = np.concatenate([ra[forward], rb[backward]])
    dv = np.concatenate([rb[forward], ra[backward]])
    m = len(used)
    adj = coo_matrix((np.ones(len(du)), (du, dv)), shape=(m, m)).tocsr()
    strongly = mode != "walk"
    _, labels = connected_components(adj, directed=True, connection="strong" if strongly else "weak")
    in_big = labels == np.argmax(np.bincount(labels))
    keep = in_big[ra] & in_big[rb]
    kept_nodes = used[in_big]
    if len(kept_nodes) < 2 or not keep.any():
        msg = f"{source}: the road network for mode '{mode}' has no connected part with edges; fix: check the file"
        raise EmptyNetworkError(msg)
    n_edges = int(forward[keep].sum() + backward[keep].sum())
    dropped_n, dropped_m = len(used) - len(kept_nodes), len(du) - n_edges
    notes = []
    if dropped_n:
        notes.append(f"{source}: kept the largest {'strongly' if strongly else 'weakly'} connected component; dropped "
                     f"{dropped_n} of {len(used)} nodes and {dropped_m} of {len(du)} edges")
        logger.warning("%s", notes[-1])
    return keep, kept_nodes, notes, (dropped_n, dropped_m)


def _contract(ways: HighwayWays) -> dict[str, np.ndarray]:
    """Pieces between junctions ("runs" of node-to-node segments), with their lengths and geometry node positions."""
    ref, off = ways.ref, ways.offsets
    n_pieces = len(off) - 1
    seg_count = np.diff(off) - 1
    seg_piece = np.repeat(np.arange(n_pieces), seg_count)
    last = np.zeros(len(ref), bool)
    last[off[1:] - 1] = True
    s0 = np.flatnonzero(~last)  # segment k joins the node positions s0[k] and s0[k] + 1
    node_ids, node_of = np.unique(ref, return_inverse=True)
    u, v = node_of[s0], node_of[s0 + 1]
    junction = _junctions(u, v, seg_piece, len(node_ids))
    n_seg = len(s0)
    first_idx = np.concatenate([[0], np.cumsum(seg_count)[:-1]])
    run_start = np.zeros(n_seg, bool)
    run_start[first_idx] = True
    run_start |= junction[u]
    run = np.cumsum(run_start) - 1
    order_key = np.arange(n_seg, dtype=np.int64)
    # a closed piece whose closing node is no junction: its last run goes on into its first run
    first_node, last_node = node_of[off[:-1]], node_of[off[1:] - 1]
    cp = np.flatnonzero((first_node == last_node) & ~junction[first_node])
    ring = np.zeros(n_pieces, bool)
    if len(cp):
        fr, lr = run[first_idx[cp]], run[first_idx[cp] + seg_count[cp] - 1]
        ring[cp[fr == lr]] = True  # no junction at all: an isolated ring, dropped as OSMnx drops it
        wrap = fr != lr
        relabel = np.arange(int(run[-1]) + 1)
        relabel[lr[wrap]] = fr[wrap]
        order_key[np.isin(run, lr[wrap])] -= n_seg + 1  # the wrapped run's segments come first
        run = relabel[run]
    seg = np.flatnonzero(~ring[seg_piece])
    seg = seg[np.lexsort((order_key[seg], run[seg]))]
    _, run_s = np.unique(run[seg], return_inverse=True)
    first_of_run = np.flatnonzero(np.r_[True, np.diff(run_s) != 0]) if len(seg) else np.zeros(0, np.int64)
    last_of_run = np.r_[first_of_run[1:] - 1, len(seg) - 1] if len(seg) else first_of_run
    piece = seg_piece[seg[first_of_run]]
    # great-circle length of every segment, summed per run (OSMnx's `length`)
    lon, lat = ways.lon, ways.lat
    y1, y2 = np.deg2rad(lat[s0[seg]]), np.deg2rad(lat[s0[seg] + 1])
    dx = np.deg2rad(lon[s0[seg] + 1] - lon[s0[seg]])
    h = np.sin((y2 - y1) / 2) ** 2 + np.cos(y1) * np.cos(y2) * np.sin(dx / 2) ** 2
    seg_len = 2 * np.arcsin(np.sqrt(np.minimum(1.0, h))) * EARTH_RADIUS_M
    ow = ways.oneway[piece]
    # geometry: the start node of each segment of a run, then the run's end node
    pos = np.concatenate([s0[seg], s0[seg[last_of_run]] + 1])
    line = np.concatenate([run_s, run_s[last_of_run]])
    o = np.lexsort((np.concatenate([np.arange(len(seg)) * 2, last_of_run * 2 + 1]), line))
    return {"node_ids": node_ids, "node_of": node_of, "a": u[seg[first_of_run]], "b": v[seg[last_of_run]],
            "forward": ow >= 0, "backward": ow <= 0, "piece": piece,
            "length": np.bincount(run_s, weights=seg_len, minlength=len(first_of_run)), "pos": pos[o], "line": line[o]}


def _junctions(u: np.ndarray, v: np.ndarray, seg_piece: np.ndarray, n: int) -> np.ndarray:
    """Nodes where a piece between junctions must end: not exactly two segment ends to two neighbours of one way piece."""
    ends, other = np.concatenate([u, v]), np.concatenate([v, u])
    piece = np.concatenate([seg_piece, seg_piece])
    big = np.iinfo(np.int64).max
    lo_nb, hi_nb, lo_p, hi_p = np.full(n, big), np.full(n, -1), np.full(n, big), np.full(n, -1)
    np.minimum.at(lo_nb, ends, other)
    np.maximum.at(hi_nb, ends, other)
    np.minimum.at(lo_p, ends, piece)
    np.maximum.at(hi_p, ends, piece)
    return (np.bincount(ends, minlength=n) != 2) | (lo_nb == hi_nb) | (lo_p != hi_p)  # noqa: PLR2004


def read_osm_areas(path: Path, kinds: dict[str, tuple[tuple[str, str | None], ...]]) -> dict[str, list[Any]]:
    """Read the areas (closed ways and multipolygon relations, assembled by libosmium) of each kind.

    `kinds` maps a kind (e.g. ``"water"``) to the (key, value) tags of its areas (value None: any value), as in
    :data:`planner.settings.EXCLUSION_OSM_TAGS`. Returns WGS-84 shapely (multi)polygons per kind; an area with
    tags of two kinds is in both.
    """
    import osmium
    from osmium.filter import KeyFilter

    keys = sorted({k for tags in kinds.values() for k, _ in tags})
    out: dict[str, list[Any]] = {k: [] for k in kinds}
    wkb = osmium.geom.WKBFactory()
    fmt = "pbf" if path.name.lower().endswith(".pbf") else "osm"
    try:
        for area in osmium.FileProcessor(osmium.io.File(str(path), fmt)).with_areas().with_filter(KeyFilter(*keys)):
            if not area.is_area():
                continue
            tags = {t.k: t.v for t in area.tags}
            hit = [k for k, pairs in kinds.items() if any(t in tags and v in (None, tags[t]) for t, v in pairs)]
            if not hit:
                continue
            try:
                geom = shapely.from_wkb(wkb.create_multipolygon(area))
            except RuntimeError:  # an area libosmium could not assemble into valid rings
                continue
            for k in hit:
                out[k].append(geom)
    except RuntimeError as exc:
        msg = (f"{path}: cannot read the areas of this OSM file ({exc}); fix: check it is a complete .osm or .osm.pbf "
               "extract")
        raise InputFileError(msg.replace("\n", " ")) from None
    return out
