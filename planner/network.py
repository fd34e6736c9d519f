"""Load a routable road network for one travel mode.

:func:`load_roads` returns a :class:`RoadNetwork`: arrays, one row per road
piece between junctions. Two sources are supported:

* an OpenStreetMap extract (``.osm`` XML or ``.osm.pbf``), read by libosmium
  and built with numpy (:mod:`planner._osm`): ways filtered by ``highway``
  class for the mode, one-way streets respected for ``ebike`` and ``drive``
  (OSMnx's rules), degree-2 chains contracted into pieces that each keep one
  OSM way id, class and geometry. In a clipped extract (ways referencing
  nodes outside the file), each way is cut where its missing nodes were, and
  one warning counts what was dropped;
* a road-centreline layer (GeoPackage, shapefile, GeoJSON, GeoParquet) of lines
  split at intersections: line endpoints closer than a tolerance become one
  node, every segment is two-way, an optional column gives the road class, and
  an id column (``road_id``, ``id``, ``osm_id`` …; else the row number) is kept
  as ``road_id`` so that what-ifs can close roads by id.

Coordinates are in a metric (UTM) CRS, lengths in metres, speeds per piece.
Only the largest connected component is kept; what was dropped is logged and
stored in ``dropped_nodes`` / ``dropped_edges``. Networks are cached on disk
by file content (:mod:`planner._netcache`).

:func:`load_network` returns the same network as an OSMnx-style
``MultiDiGraph`` (``load_roads(...).to_networkx()``); ``engine="osmnx"`` runs
the former, much slower loader (OSMnx ``graph_from_xml`` and
``simplify_graph``), kept as the reference of the equivalence tests.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from . import _netcache, _osm, settings
from ._errors import EmptyNetworkError, InputFileError, MissingColumnError
from ._validate import check_limit, check_mode
from .io import OSM_SUFFIXES, VECTOR_SUFFIXES, check_input, read_vector, suffix_of, write_osm_subset

logger = logging.getLogger(__name__)

UNCLASSIFIED = "unclassified"
_ID_ALIASES = ("road_id", "id", "osm_id", "osmid", "fid", "objectid")
_CLASS_ALIASES = ("highway", "fclass", "class", "type", "road_class", "roadclass", "道路等级", "等级")


@dataclass(frozen=True)
class RoadNetwork:
    """A road network on arrays: one row per road piece between two junctions.

    This is what the pipeline works on; a networkx graph is built only on
    request (:meth:`to_networkx`). Each piece's geometry runs from node ``a``
    to node ``b``; ``forward`` / ``backward`` say whether the mode may travel
    a→b / b→a (one-way streets have only one of them).

    Attributes
    ----------
    crs
        Metric (UTM) CRS of ``node_xy`` and ``geometry``.
    mode
        ``"walk"``, ``"ebike"`` or ``"drive"``.
    node_id
        Label of each node (OSM node id; a running number for centreline layers).
    node_xy
        Node coordinates in metres, shape (n, 2).
    a, b
        Node indices (0..n-1) of each piece's ends.
    forward, backward
        Whether the piece may be travelled a→b / b→a.
    length_m
        Length of each piece in metres.
    highway
        Road class of each piece (OSM ``highway`` value, or the layer's class).
    road_id
        OSM way id, or the centreline layer's id column (else its row number).
    geometry
        LineString of each piece, from a to b, in ``crs``.
    speed_kph
        Speed of each piece for the mode, km/h.
    source
        File the network was read from.
    dropped_nodes, dropped_edges
        Nodes and directed edges outside the kept largest component.
    speed_kph_override
        The one speed given for every road, or None for per-class speeds.
    """

    crs: CRS
    mode: str
    node_id: np.ndarray
    node_xy: np.ndarray
    a: np.ndarray
    b: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    length_m: np.ndarray
    highway: np.ndarray
    road_id: np.ndarray
    geometry: np.ndarray
    speed_kph: np.ndarray
    source: str = ""
    dropped_nodes: int = 0
    dropped_edges: int = 0
    speed_kph_override: float | None = None

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_id)

    @property
    def n_edges(self) -> int:
        """Number of directed edges (a two-way piece counts twice)."""
        return int(self.forward.sum() + self.backward.sum())

    @property
    def travel_time_s(self) -> np.ndarray:
        """Seconds to travel each piece at its speed."""
        return self.length_m / (self.speed_kph / 3.6)

    def directed_edges(self) -> dict[str, np.ndarray]:
        """Return the directed edges as arrays ``piece``, ``u``, ``v``, ``reverse`` (True when u→v is b→a)."""
        fw = np.flatnonzero(self.forward)
        bw = np.flatnonzero(self.backward)
        piece = np.concatenate([fw, bw])
        return {"piece": piece, "u": np.concatenate([self.a[fw], self.b[bw]]),
                "v": np.concatenate([self.b[fw], self.a[bw]]),
                "reverse": np.concatenate([np.zeros(len(fw), bool), np.ones(len(bw), bool)])}

    def to_networkx(self) -> nx.MultiDiGraph:
        """Build the OSMnx-style ``MultiDiGraph`` (for users who want G; the pipeline does not need it).

        Returns
        -------
        G
            Nodes with ``x``, ``y``; edges with ``length``, ``highway``,
            ``road_id`` (``osmid`` too for OSM sources), ``geometry``,
            ``speed_kph`` and ``travel_time``; ``G.graph`` holds ``crs``,
            ``mode``, ``source``, ``dropped_nodes``, ``dropped_edges`` and
            ``speed_kph_override``.
        """
        G = nx.MultiDiGraph(crs=self.crs, mode=self.mode, source=self.source, dropped_nodes=self.dropped_nodes,
                            dropped_edges=self.dropped_edges, speed_kph_override=self.speed_kph_override)
        G.add_nodes_from((int(i) if isinstance(i, np.integer) else i, {"x": float(x), "y": float(y)})
                         for i, (x, y) in zip(self.node_id, self.node_xy, strict=True))
        d = self.directed_edges()
        geoms = self.geometry[d["piece"]].copy()
        if d["reverse"].any():
            geoms[d["reverse"]] = shapely.reverse(geoms[d["reverse"]])
        tt = self.travel_time_s
        ids = self.node_id
        osm = str(self.source).lower().endswith((".osm", ".pbf"))
        for j, (p, u, v) in enumerate(zip(d["piece"], d["u"], d["v"], strict=True)):
            rid = self.road_id[p].item() if hasattr(self.road_id[p], "item") else self.road_id[p]
            attrs = {"length": float(self.length_m[p]), "highway": self.highway[p], "road_id": rid,
                     "geometry": geoms[j], "speed_kph": float(self.speed_kph[p]), "travel_time": float(tt[p])}
            if osm:
                attrs["osmid"] = rid
            uu, vv = ids[u], ids[v]
            G.add_edge(uu.item() if hasattr(uu, "item") else uu, vv.item() if hasattr(vv, "item") else vv, **attrs)
        return G


def load_roads(
    path: str | os.PathLike[str],
    *,
    mode: str = "walk",
    speed_kph: float | None = None,
    class_column: str | None = None,
    snap_tolerance_m: float | None = None,
    cache: bool = True,
) -> RoadNetwork:
    """Load a road network on arrays from an OSM extract or a road-centreline layer.

    OSM extracts are read by libosmium and built with numpy (see
    :mod:`planner._osm`); no networkx or OSMnx object is made. The result is
    kept in a disk cache keyed by the file's content and the options (see
    :mod:`planner._netcache`), so a second load of the same file skips parsing.

    Parameters
    ----------
    path
        ``.osm``, ``.osm.pbf``, or a line layer (``.gpkg``, ``.shp``,
        ``.geojson``, ``.parquet``).
    mode
        ``"walk"``, ``"ebike"`` or ``"drive"``.
    speed_kph
        One speed in km/h for every road, overriding the per-class speeds.
    class_column
        Road-class column of a centreline layer; by default the first of
        ``highway``, ``fclass``, ``class``, ``type``, ``道路等级`` found.
    snap_tolerance_m
        Endpoint merge distance in metres for centreline layers; defaults to
        ``settings.SNAP_TOLERANCE_M``.
    cache
        Read and write the network cache (``$PLANNER_CACHE_DIR``, else
        ``~/.cache/planner/networks``).

    Returns
    -------
    roads
        The largest connected component, in a metric (UTM) CRS, with speeds.

    Raises
    ------
    InputFileError
        If the file is missing, unreadable, truncated, of an unknown format,
        or too large for the memory.
    EmptyNetworkError
        If no usable road remains for the mode.

    Examples
    --------
    >>> from planner import datasets, network
    >>> roads = network.load_roads(datasets.get_path("guanggu_osm"), mode="walk")
    >>> roads.mode, roads.n_nodes > 400, bool(roads.backward.all())
    ('walk', True, True)
    """
    check_mode(mode)
    p = check_input(path, what="road network", suffixes=OSM_SUFFIXES + VECTOR_SUFFIXES)
    if speed_kph is not None:
        check_limit("speed_kph", speed_kph)
    osm = suffix_of(p) in OSM_SUFFIXES
    tol = None if osm else (settings.SNAP_TOLERANCE_M if snap_tolerance_m is None else float(snap_tolerance_m))
    key = _netcache.cache_key(p, mode=mode, class_column=None if osm else class_column, snap_tolerance_m=tol) if cache else None
    fields = _netcache.load(key) if key is not None else None
    if fields is not None:
        for note in fields["notes"]:
            logger.warning("%s", note)
        fields["source"] = str(p)
    else:
        if osm:
            fields = _osm.roads_from_osm(p, mode=mode)
        else:
            fields = _roads_from_lines(p, mode=mode, class_column=class_column, tolerance_m=float(tol))  # type: ignore[arg-type]
        if key is not None:
            _netcache.store(key, fields)
    fields = {k: val for k, val in fields.items() if k != "notes"}
    return RoadNetwork(**fields, speed_kph=_piece_speeds(fields["highway"], mode=mode, speed_kph=speed_kph),
                       speed_kph_override=speed_kph)


def _piece_speeds(highway: np.ndarray, *, mode: str, speed_kph: float | None) -> np.ndarray:
    """Speed in km/h of each piece: `speed_kph`, else :func:`mode_speed_kph` of its class."""
    if speed_kph is not None:
        return np.full(len(highway), float(speed_kph))
    if len(highway) == 0:
        return np.zeros(0)
    classes, inv = np.unique(np.asarray(highway).astype(str), return_inverse=True)
    return np.array([mode_speed_kph(mode, c) for c in classes], dtype=float)[inv.reshape(-1)]


def load_network(
    path: str | os.PathLike[str],
    *,
    mode: str = "walk",
    speed_kph: float | None = None,
    class_column: str | None = None,
    snap_tolerance_m: float | None = None,
    engine: str = "arrays",
    cache: bool = True,
) -> nx.MultiDiGraph:
    """Load a road network from an OSM extract or a road-centreline layer, as a networkx graph.

    This is ``load_roads(...).to_networkx()``, for users who want an
    OSMnx-style graph; the pipeline works on :func:`load_roads`.

    Parameters
    ----------
    path
        ``.osm``, ``.osm.pbf``, or a line layer (``.gpkg``, ``.shp``,
        ``.geojson``, ``.parquet``).
    mode
        ``"walk"``, ``"ebike"`` or ``"drive"``.
    speed_kph
        One speed in km/h for every edge, overriding the per-class speeds.
    class_column
        Road-class column of a centreline layer; by default the first of
        ``highway``, ``fclass``, ``class``, ``type``, ``道路等级`` found.
    snap_tolerance_m
        Endpoint merge distance in metres for centreline layers; defaults to
        ``settings.SNAP_TOLERANCE_M``.
    engine
        ``"arrays"`` (default): :func:`load_roads`. ``"osmnx"``: the reference
        engine, much slower, kept for the equivalence tests: an OSM extract
        goes through a temporary XML file, ``osmnx.graph_from_xml`` and
        ``simplify_graph``, a centreline layer through networkx. Its edges
        merge chains across OSM ways (lists of ``osmid`` and ``highway``).
    cache
        Use the network cache (``"arrays"`` engine only).

    Returns
    -------
    G
        Projected graph with ``travel_time`` (s) on every edge.

    Raises
    ------
    InputFileError
        If the file is missing, unreadable or of an unknown format.
    EmptyNetworkError
        If no usable road remains for the mode.

    Examples
    --------
    >>> from planner import datasets, network
    >>> G = network.load_network(datasets.get_path("guanggu_osm"), mode="walk")
    >>> G.graph["mode"], len(G) > 400
    ('walk', True)
    """
    if engine == "arrays":
        return load_roads(path, mode=mode, speed_kph=speed_kph, class_column=class_column,
                          snap_tolerance_m=snap_tolerance_m, cache=cache).to_networkx()
    if engine != "osmnx":
        msg = f"load_network: unknown engine {engine!r}; fix: use 'arrays' or 'osmnx'"
        raise ValueError(msg)
    check_mode(mode)
    p = check_input(path, what="road network", suffixes=OSM_SUFFIXES + VECTOR_SUFFIXES)
    if speed_kph is not None:
        check_limit("speed_kph", speed_kph)
    if suffix_of(p) in OSM_SUFFIXES:
        G = _graph_from_osm(p, mode=mode)
    else:
        tol = settings.SNAP_TOLERANCE_M if snap_tolerance_m is None else snap_tolerance_m
        G = _graph_from_lines(p, mode=mode, class_column=class_column, tolerance_m=tol)
    G = _keep_largest_component(G, mode=mode, source=p)
    G = add_edge_travel_times(G, mode=mode, speed_kph=speed_kph)
    G.graph["mode"] = mode
    G.graph["source"] = str(p)
    return G


def add_edge_travel_times(G: nx.MultiDiGraph, *, mode: str, speed_kph: float | None = None) -> nx.MultiDiGraph:
    """Set ``speed_kph`` and ``travel_time`` (s) on every edge for a mode.

    Parameters
    ----------
    G
        Graph with ``length`` (m) and ``highway`` on its edges.
    mode
        ``"walk"``, ``"ebike"`` or ``"drive"``.
    speed_kph
        One speed in km/h for all edges; per-class settings when None.

    Returns
    -------
    G
        The same graph, modified in place and returned.
    """
    check_mode(mode)
    for _, _, data in G.edges(data=True):
        kph = speed_kph if speed_kph is not None else mode_speed_kph(mode, data.get("highway"))
        data["speed_kph"] = float(kph)
        data["travel_time"] = float(data["length"]) / (kph / 3.6)
    G.graph["speed_kph_override"] = speed_kph
    return G


def mode_speed_kph(mode: str, highway: Any) -> float:
    """Return the speed in km/h of a road class for a mode, read from settings.

    Parameters
    ----------
    mode
        ``"walk"``, ``"ebike"`` or ``"drive"``.
    highway
        OSM ``highway`` value, a list of them (simplified OSMnx edges), or None.

    Returns
    -------
    speed_kph
        Walking and e-bike speeds ignore the class; driving uses
        ``settings.DRIVE_SPEEDS_KPH`` and ``DRIVE_DEFAULT_SPEED_KPH``.
    """
    if mode == "walk":
        return settings.WALK_SPEED_KPH
    if mode == "ebike":
        return settings.EBIKE_SPEED_KPH
    classes = highway if isinstance(highway, list) else [highway]
    speeds = [settings.DRIVE_SPEEDS_KPH[c] for c in classes if c in settings.DRIVE_SPEEDS_KPH]
    return float(np.mean(speeds)) if speeds else settings.DRIVE_DEFAULT_SPEED_KPH


def _graph_from_osm(path: Path, *, mode: str) -> nx.MultiDiGraph:
    import osmnx as ox

    excluded = settings.EXCLUDED_HIGHWAYS[mode]

    def keep_way(tags: dict[str, str]) -> bool:
        hw = tags.get("highway")
        if hw is None or hw in excluded or tags.get("area") == "yes":
            return False
        if mode == "walk" and tags.get("foot") == "no":
            return False
        return not (mode == "drive" and tags.get("motor_vehicle") == "no" or tags.get("access") == "private")

    with tempfile.TemporaryDirectory(prefix="planner-osm-") as tmp:
        xml = Path(tmp) / "roads.osm"
        try:
            subset = write_osm_subset(path, xml, keep_way=keep_way)
        except RuntimeError as exc:
            msg = f"{path}: cannot read this OSM file ({exc}); fix: check it is a valid .osm or .osm.pbf extract"
            raise InputFileError(msg.replace("\n", " ")) from None
        if subset.missing_refs:
            logger.warning("%s: clipped extract: dropped %d references to %d nodes missing from the file; "
                           "roads cut where they were: %d; roads dropped (fewer than 2 nodes left): %d",
                           path, subset.missing_refs, subset.missing_nodes, subset.ways_cut, subset.ways_dropped)
        if subset.ways == 0:
            msg = f"{path}: no roads usable for mode '{mode}' (no highway=* ways); fix: use an extract that contains roads"
            raise EmptyNetworkError(msg)
        G = ox.graph_from_xml(xml, bidirectional=(mode == "walk"), simplify=True, retain_all=True)
    if subset.piece_of:
        _restore_way_ids(G, subset.piece_of)
    if len(G.edges) == 0:
        msg = f"{path}: the roads for mode '{mode}' form no edges; fix: use a larger extract"
        raise EmptyNetworkError(msg)
    G = ox.project_graph(G)
    _fill_edge_geometry(G)
    for _, _, data in G.edges(data=True):
        hw = data.get("highway", UNCLASSIFIED)
        data["highway"] = hw[0] if isinstance(hw, list) and len(set(hw)) == 1 else hw
    return G


def _restore_way_ids(G: nx.MultiDiGraph, piece_of: dict[int, int]) -> None:
    """Give the edges of cut ways their OSM way id back, so that closures by way id still find them."""
    for _, _, data in G.edges(data=True):
        ids = data.get("osmid")
        if isinstance(ids, list):
            restored = list(dict.fromkeys(piece_of.get(i, i) for i in ids))
            data["osmid"] = restored[0] if len(restored) == 1 else restored
        elif ids in piece_of:
            data["osmid"] = piece_of[ids]


def _read_lines(path: Path, *, mode: str, class_column: str | None, tolerance_m: float) -> dict[str, Any]:
    """Read a centreline layer: projected lines kept for the mode, their clustered end nodes, degenerate loops."""
    gdf = read_vector(path, what="road network")
    gdf = gdf[~gdf.geometry.isna() & ~gdf.geometry.is_empty]
    types = set(gdf.geom_type.unique())
    if not types <= {"LineString", "MultiLineString"}:
        msg = (f"{path}: the road layer has {', '.join(sorted(types - {'LineString', 'MultiLineString'}))} "
               "geometries; fix: give a layer of road centrelines (LineString)")
        raise EmptyNetworkError(msg)
    col = _find_class_column(gdf, path, class_column)
    lower = {c.lower(): c for c in gdf.columns}
    id_col = next((lower[a] for a in _ID_ALIASES if a in lower), None)
    gdf = gdf.assign(_row=np.arange(len(gdf)))
    gdf = gdf.explode(index_parts=False, ignore_index=True)
    utm = gdf.estimate_utm_crs()
    gdf = gdf.to_crs(utm)
    if col is not None:
        hw = gdf[col].astype("object").where(gdf[col].notna(), UNCLASSIFIED).astype(str)
        keep = ~hw.isin(settings.EXCLUDED_HIGHWAYS[mode])
        gdf, hw = gdf[keep], hw[keep]
    else:
        hw = pd.Series(UNCLASSIFIED, index=gdf.index)
    geoms = gdf.geometry.to_numpy()
    lengths = shapely.length(geoms)
    ok = lengths > 0
    rows = gdf["_row"].to_numpy()[ok]
    road_ids = gdf[id_col].to_numpy()[ok] if id_col is not None else rows
    geoms, hw, lengths = geoms[ok], hw.to_numpy()[ok], lengths[ok]
    if len(geoms) == 0:
        msg = f"{path}: no road lines usable for mode '{mode}'; fix: check the layer and its class column"
        raise EmptyNetworkError(msg)
    starts = shapely.get_coordinates(shapely.get_point(geoms, 0))
    ends = shapely.get_coordinates(shapely.get_point(geoms, -1))
    pts = np.vstack([starts, ends])
    node_of = _cluster_points(pts, tolerance_m)
    n = len(geoms)
    u, v = node_of[:n], node_of[n:]
    loop = (u == v) & (lengths < tolerance_m * 2)
    if loop.any():
        logger.info("%s: skipped %d degenerate loop segments shorter than %.1f m", path, int(loop.sum()), 2 * tolerance_m)
    return {"crs": utm, "geoms": geoms, "highway": hw, "length": lengths, "rows": rows, "road_id": road_ids,
            "u": u, "v": v, "node_xy": pd.DataFrame(pts).groupby(node_of).mean().to_numpy(), "loop": loop}


def _graph_from_lines(path: Path, *, mode: str, class_column: str | None, tolerance_m: float) -> nx.MultiDiGraph:
    r = _read_lines(path, mode=mode, class_column=class_column, tolerance_m=tolerance_m)
    G = nx.MultiDiGraph(crs=r["crs"])
    G.add_nodes_from((i, {"x": float(x), "y": float(y)}) for i, (x, y) in enumerate(r["node_xy"]))
    for i in np.flatnonzero(~r["loop"]):
        geom, rid = r["geoms"][i], r["road_id"][i]
        rid = rid.item() if hasattr(rid, "item") else rid
        attrs = {"length": float(r["length"][i]), "highway": r["highway"][i], "geometry": geom,
                 "source_row": int(r["rows"][i]), "road_id": rid}
        G.add_edge(int(r["u"][i]), int(r["v"][i]), **attrs)
        G.add_edge(int(r["v"][i]), int(r["u"][i]), **{**attrs, "geometry": geom.reverse()})
    G.remove_nodes_from([nd for nd, deg in dict(G.degree()).items() if deg == 0])
    return G


def _roads_from_lines(path: Path, *, mode: str, class_column: str | None, tolerance_m: float) -> dict[str, Any]:
    """Build a centreline layer on arrays: every line a two-way piece between its clustered end nodes."""
    r = _read_lines(path, mode=mode, class_column=class_column, tolerance_m=tolerance_m)
    keep = ~r["loop"]
    u, v = r["u"][keep], r["v"][keep]
    used = np.unique(np.concatenate([u, v]))
    two_way = np.ones(len(u), dtype=bool)
    kept, kept_nodes, notes, dropped = _osm.keep_largest_component(u, v, two_way, two_way, used, mode=mode, source=path)
    idx = np.full(int(used.max()) + 1, -1)
    idx[kept_nodes] = np.arange(len(kept_nodes))
    sel = np.flatnonzero(keep)[kept]
    road_id = r["road_id"][sel]
    return {"crs": r["crs"], "mode": mode, "node_id": kept_nodes.astype(np.int64), "node_xy": r["node_xy"][kept_nodes],
            "a": idx[u[kept]], "b": idx[v[kept]], "forward": two_way[kept], "backward": two_way[kept],
            "length_m": r["length"][sel], "highway": r["highway"][sel].astype(object),
            "road_id": road_id if road_id.dtype.kind in "iuf" else road_id.astype(object), "geometry": r["geoms"][sel],
            "source": str(path), "dropped_nodes": dropped[0], "dropped_edges": dropped[1], "notes": notes}


def _find_class_column(gdf: gpd.GeoDataFrame, path: Path, class_column: str | None) -> str | None:
    if class_column is not None:
        if class_column not in gdf.columns:
            msg = (f"{path}: road-class column '{class_column}' not found (columns: "
                   f"{', '.join(c for c in gdf.columns if c != gdf.geometry.name)}); fix: pass the right --class-column")
            raise MissingColumnError(msg)
        return class_column
    lower = {c.lower(): c for c in gdf.columns}
    for alias in _CLASS_ALIASES:
        if alias in lower:
            return lower[alias]
    return None


def _cluster_points(pts: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Label points so that points within `tolerance_m` (transitively) share a label."""
    tree = cKDTree(pts)
    pairs = tree.query_pairs(r=max(tolerance_m, 1e-9), output_type="ndarray")
    n = len(pts)
    adj = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) if len(pairs) else coo_matrix((n, n))
    _, labels = connected_components(adj, directed=False)
    return labels


def _fill_edge_geometry(G: nx.MultiDiGraph) -> None:
    for u, v, data in G.edges(data=True):
        if "geometry" not in data:
            data["geometry"] = shapely.LineString([(G.nodes[u]["x"], G.nodes[u]["y"]), (G.nodes[v]["x"], G.nodes[v]["y"])])


def _keep_largest_component(G: nx.MultiDiGraph, *, mode: str, source: Path) -> nx.MultiDiGraph:
    import osmnx as ox

    n0, m0 = len(G), G.number_of_edges()
    strongly = mode != "walk"
    G = ox.truncate.largest_component(G, strongly=strongly)
    dropped_n, dropped_m = n0 - len(G), m0 - G.number_of_edges()
    if len(G) < 2 or G.number_of_edges() == 0:
        msg = f"{source}: the road network for mode '{mode}' has no connected part with edges; fix: check the file"
        raise EmptyNetworkError(msg)
    if dropped_n:
        logger.warning("%s: kept the largest %s connected component; dropped %d of %d nodes and %d of %d edges",
                       source, "strongly" if strongly else "weakly", dropped_n, n0, dropped_m, m0)
    G.graph["dropped_nodes"] = dropped_n
    G.graph["dropped_edges"] = dropped_m
    return G


def network_stats(G: RoadNetwork | nx.MultiDiGraph) -> dict[str, Any]:
    """Summarise a network for reports.

    Parameters
    ----------
    G
        A :class:`RoadNetwork`, or a graph returned by :func:`load_network`.

    Returns
    -------
    stats
        ``nodes``, ``edges``, ``length_km`` (each two-way road counted once
        per direction), ``dropped_nodes``, ``dropped_edges``, ``mode``.
    """
    if isinstance(G, RoadNetwork):
        return _road_stats(G)
    length_m = sum(float(d["length"]) for _, _, d in G.edges(data=True))
    return {
        "mode": G.graph.get("mode"),
        "nodes": len(G),
        "edges": G.number_of_edges(),
        "edge_length_km": round(length_m / 1000.0, 3),
        "dropped_nodes": int(G.graph.get("dropped_nodes", 0)),
        "dropped_edges": int(G.graph.get("dropped_edges", 0)),
        "crs": str(G.graph["crs"]),
    }


# ---------------------------------------------------------------------------------------------------------------------
# RoadNetwork from a graph, and edits on it (helper A2's block: roads_from_graph, close_roads, with_speed)
# ---------------------------------------------------------------------------------------------------------------------


def roads_from_graph(G: nx.MultiDiGraph) -> RoadNetwork:
    """Build a :class:`RoadNetwork` from an OSMnx-style graph, e.g. one edited by hand.

    The two directions of a two-way road (an edge u→v and an edge v→u with
    the reversed geometry and the same length, class, id and travel time)
    become one piece with ``forward`` and ``backward`` set, with the length
    and travel time of the first one (OSMnx's two directions may differ in
    the last bits); every other edge is a one-way piece. Pieces keep the
    order of their first edge in ``G`` and run in its direction, nodes keep
    the order of ``G``, so that ``compile_network(roads_from_graph(G))``
    routes and snaps as ``compile_network(G)`` does.

    Parameters
    ----------
    G
        Projected graph as :func:`load_network` returns: nodes with ``x``,
        ``y``; edges with ``length`` (m) and ``travel_time`` (s), and
        optionally ``geometry`` (straight lines when missing), ``highway``,
        ``road_id`` or ``osmid`` and ``speed_kph`` (derived from length and
        travel time when missing or inconsistent). ``G.graph`` needs ``crs``.

    Returns
    -------
    roads
        The network on arrays.

    Examples
    --------
    >>> from planner import datasets
    >>> G = load_network(datasets.get_path("guanggu_osm"), mode="walk")
    >>> roads = roads_from_graph(G)
    >>> (roads.n_nodes, roads.n_edges) == (len(G), G.number_of_edges()), bool(roads.backward.all())
    (True, True)
    """
    nodes = list(G.nodes)
    index = {nd: i for i, nd in enumerate(nodes)}
    node_xy = np.array([[d["x"], d["y"]] for _, d in G.nodes(data=True)], dtype=float).reshape(-1, 2)
    edges = list(G.edges(data=True))
    u = np.fromiter((index[e[0]] for e in edges), dtype=np.int64, count=len(edges))
    v = np.fromiter((index[e[1]] for e in edges), dtype=np.int64, count=len(edges))
    geoms = np.empty(len(edges), dtype=object)
    geoms[:] = [e[2].get("geometry") for e in edges]
    missing = np.array([g is None for g in geoms], dtype=bool)
    if missing.any():
        geoms[missing] = shapely.linestrings(np.stack([node_xy[u[missing]], node_xy[v[missing]]], axis=1))
    wkb, wkb_rev = shapely.to_wkb(geoms), shapely.to_wkb(shapely.reverse(geoms))
    attrs = [(_canonical(d.get("highway", UNCLASSIFIED)), _canonical(d.get("road_id", d.get("osmid"))))
             for _, _, d in edges]
    cost = np.array([[d["length"], d["travel_time"]] for _, _, d in edges], dtype=float).reshape(-1, 2)
    first: list[int] = []  # edge that starts each piece
    backward: list[bool] = []
    open_: dict[tuple[Any, ...], list[int]] = {}  # what the reverse of a piece still waiting for it looks like -> pieces
    for j in range(len(edges)):
        waiting = open_.get((u[j], v[j], wkb[j], *attrs[j]), [])
        # OSMnx sums a way's two directions in opposite orders: lengths may differ in the last bits
        match = next((w for w in waiting if np.allclose(cost[first[w]], cost[j], rtol=1e-9, atol=1e-9)), None)
        if match is not None:
            waiting.remove(match)
            backward[match] = True
            continue
        open_.setdefault((v[j], u[j], wkb_rev[j], *attrs[j]), []).append(len(first))
        first.append(j)
        backward.append(False)
    f = np.array(first, dtype=np.int64)
    data = [edges[j][2] for j in first]
    length = np.array([d["length"] for d in data], dtype=float)
    tt = np.array([d["travel_time"] for d in data], dtype=float)
    speed = np.array([d.get("speed_kph", np.nan) for d in data], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):  # speeds that give the graph's travel times, bit for bit
        exact = np.isfinite(speed) & (speed > 0) & (length / (speed / 3.6) == tt)
        derived = length * 3.6 / tt
    fix = ~exact & np.isfinite(derived) & (derived > 0)
    speed[fix] = derived[fix]
    unset = ~np.isfinite(speed) | (speed <= 0)  # zero-length edges without a speed
    speed[unset] = [mode_speed_kph(str(G.graph.get("mode", "walk")), data[i].get("highway")) for i in np.flatnonzero(unset)]
    return RoadNetwork(
        crs=CRS.from_user_input(G.graph["crs"]), mode=str(G.graph.get("mode", "walk")),
        node_id=_id_array(nodes), node_xy=node_xy, a=u[f], b=v[f],
        forward=np.ones(len(f), dtype=bool), backward=np.array(backward, dtype=bool), length_m=length,
        highway=_object_array([d.get("highway", UNCLASSIFIED) for d in data]),
        road_id=_id_array([d.get("road_id", d.get("osmid")) for d in data]), geometry=geoms[f], speed_kph=speed,
        source=str(G.graph.get("source", "")), dropped_nodes=int(G.graph.get("dropped_nodes", 0)),
        dropped_edges=int(G.graph.get("dropped_edges", 0)), speed_kph_override=G.graph.get("speed_kph_override"))


def close_roads(roads: RoadNetwork, keep_mask: np.ndarray) -> RoadNetwork:
    """Return the network with the pieces where `keep_mask` is False removed (both directions); nodes stay.

    Parameters
    ----------
    roads
        The network.
    keep_mask
        One bool per piece: True keeps it.

    Returns
    -------
    roads
        A new network (`roads` itself is unchanged).

    Examples
    --------
    >>> from planner import datasets
    >>> roads = roads_from_graph(load_network(datasets.get_path("guanggu_osm"), mode="walk"))
    >>> shorter = close_roads(roads, roads.length_m < 500)
    >>> shorter.n_nodes == roads.n_nodes, shorter.n_edges == 2 * int((roads.length_m < 500).sum())
    (True, True)
    """
    keep = np.asarray(keep_mask, dtype=bool)
    if keep.shape != roads.a.shape:
        msg = f"close_roads: keep_mask has shape {keep.shape}, the network {roads.a.shape} pieces; fix: one bool per piece"
        raise ValueError(msg)
    cols = ("a", "b", "forward", "backward", "length_m", "highway", "road_id", "geometry", "speed_kph")
    return replace(roads, **{c: getattr(roads, c)[keep] for c in cols})


def with_speed(roads: RoadNetwork, speed_kph: float | None) -> RoadNetwork:
    """Return the network with one speed on every road, or the mode's per-class speeds when `speed_kph` is None.

    Parameters
    ----------
    roads
        The network.
    speed_kph
        Speed in km/h on every piece (as ``load_network(..., speed_kph=)``),
        or None for :func:`mode_speed_kph` of each piece's class.

    Returns
    -------
    roads
        A new network; its ``travel_time_s`` follow the new speeds.

    Examples
    --------
    >>> from planner import datasets
    >>> roads = roads_from_graph(load_network(datasets.get_path("guanggu_osm"), mode="walk"))
    >>> slow = with_speed(roads, 3.2)
    >>> float(slow.speed_kph.max()), slow.speed_kph_override, bool((slow.travel_time_s > roads.travel_time_s).all())
    (3.2, 3.2, True)
    """
    if speed_kph is None:
        speed = np.array([mode_speed_kph(roads.mode, h) for h in roads.highway], dtype=float)
    else:
        check_limit("speed_kph", speed_kph)
        speed = np.full(len(roads.a), float(speed_kph))
    return replace(roads, speed_kph=speed, speed_kph_override=speed_kph)


def _road_stats(roads: RoadNetwork) -> dict[str, Any]:
    """:func:`network_stats` of a RoadNetwork (lengths summed over directed edges)."""
    length_m = float(roads.length_m[roads.forward].sum() + roads.length_m[roads.backward].sum())
    return {
        "mode": roads.mode,
        "nodes": roads.n_nodes,
        "edges": roads.n_edges,
        "edge_length_km": round(length_m / 1000.0, 3),
        "dropped_nodes": int(roads.dropped_nodes),
        "dropped_edges": int(roads.dropped_edges),
        "crs": str(roads.crs),
    }


def _canonical(value: Any) -> str:
    """Return a road class or id as text, lists in sorted order (OSMnx lists a way's merged ids in travel order)."""
    return repr(sorted(value, key=repr)) if isinstance(value, list) else repr(value)


def _object_array(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _id_array(values: list[Any]) -> np.ndarray:
    """Road ids as int64 when they all are integers, else as objects (e.g. lists of merged OSM way ids)."""
    if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in values):
        return np.array(values, dtype=np.int64)
    return _object_array(values)
