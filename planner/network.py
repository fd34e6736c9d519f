"""Load a routable road network for one travel mode.

Two sources are supported:

* an OpenStreetMap extract (``.osm`` XML or ``.osm.pbf``): ways are filtered by
  ``highway`` class for the mode with pyosmium, then built and simplified by
  OSMnx; one-way streets are respected for ``ebike`` and ``drive``. In a
  clipped extract (ways referencing nodes outside the file), each way is cut
  where its missing nodes were, and one warning counts what was dropped;
* a road-centreline layer (GeoPackage, shapefile, GeoJSON, GeoParquet) of lines
  split at intersections: line endpoints closer than a tolerance become one
  node, every segment is two-way, an optional column gives the road class, and
  an id column (``road_id``, ``id``, ``osm_id`` …; else the row number) is kept
  as the edge attribute ``road_id`` so that what-ifs can close roads by id.

The result is an OSMnx-style ``MultiDiGraph`` in a metric (UTM) CRS, with edge
attributes ``length`` (m), ``highway``, ``speed_kph``, ``travel_time`` (s) and
``geometry``. Only the largest connected component is kept; what was dropped is
logged and stored in ``G.graph["dropped_nodes"]`` / ``["dropped_edges"]``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from . import settings
from ._errors import EmptyNetworkError, InputFileError, MissingColumnError
from ._validate import check_limit, check_mode
from .io import OSM_SUFFIXES, VECTOR_SUFFIXES, check_input, read_vector, suffix_of, write_osm_subset

logger = logging.getLogger(__name__)

UNCLASSIFIED = "unclassified"
_ID_ALIASES = ("road_id", "id", "osm_id", "osmid", "fid", "objectid")
_CLASS_ALIASES = ("highway", "fclass", "class", "type", "road_class", "roadclass", "道路等级", "等级")


def load_network(
    path: str | os.PathLike[str],
    *,
    mode: str = "walk",
    speed_kph: float | None = None,
    class_column: str | None = None,
    snap_tolerance_m: float | None = None,
) -> nx.MultiDiGraph:
    """Load a road network from an OSM extract or a road-centreline layer.

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


def _graph_from_lines(path: Path, *, mode: str, class_column: str | None, tolerance_m: float) -> nx.MultiDiGraph:
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
    node_xy = pd.DataFrame(pts).groupby(node_of).mean().to_numpy()
    G = nx.MultiDiGraph(crs=utm)
    G.add_nodes_from((i, {"x": float(x), "y": float(y)}) for i, (x, y) in enumerate(node_xy))
    loops = 0
    for i in range(n):
        if u[i] == v[i] and lengths[i] < tolerance_m * 2:
            loops += 1
            continue
        geom = geoms[i]
        rid = road_ids[i].item() if hasattr(road_ids[i], "item") else road_ids[i]
        attrs = {"length": float(lengths[i]), "highway": hw[i], "geometry": geom, "source_row": int(rows[i]), "road_id": rid}
        G.add_edge(int(u[i]), int(v[i]), **attrs)
        G.add_edge(int(v[i]), int(u[i]), **{**attrs, "geometry": geom.reverse()})
    if loops:
        logger.info("%s: skipped %d degenerate loop segments shorter than %.1f m", path, loops, 2 * tolerance_m)
    G.remove_nodes_from([nd for nd, deg in dict(G.degree()).items() if deg == 0])
    return G


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


def network_stats(G: nx.MultiDiGraph) -> dict[str, Any]:
    """Summarise a network for reports.

    Parameters
    ----------
    G
        Graph returned by :func:`load_network`.

    Returns
    -------
    stats
        ``nodes``, ``edges``, ``length_km`` (each two-way road counted once
        per direction), ``dropped_nodes``, ``dropped_edges``, ``mode``.
    """
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
