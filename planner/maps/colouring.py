"""Grid colours: a colouring of the grids' adjacency in which no two neighbours share a colour.

:func:`grid_adjacency` (queen contiguity: grids sharing an edge or a corner)
and :func:`grid_colours` (an equitable colouring by networkx, over the whole
palette), used by :func:`planner.maps.add_grids`.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import networkx as nx
import shapely

# ColorBrewer Set3 without its grey (grey means unreachable), then a brown, an olive and a magenta (matplotlib
# tab20, ColorBrewer Set2): 14 light colours, so that a grid with up to 13 neighbours still gets an equitable colouring
GRID_PALETTE = ("#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
                "#bc80bd", "#ccebc5", "#ffed6f", "#c49c94", "#dbdb8d", "#e78ac3")
# grids closer than this (metres) are neighbours (grid_adjacency): more than twice the ~5 m simplification of the
# drawn grids (add_grids, 5e-5 deg), so that grids drawn touching are always neighbours; far below a cell's side
GRID_NEIGHBOUR_M = 12.0
_EQUITABLE_MAX_DEGREE = 24  # neighbours of a grid at most for an equitable colouring (beyond: DSATUR, fewer colours)


def grid_adjacency(grids: gpd.GeoDataFrame, *, tolerance_m: float = GRID_NEIGHBOUR_M) -> nx.Graph:
    """Neighbouring grids: those whose polygons share an edge or a corner (queen contiguity).

    Grids made of cells hang together by corners, so two grids that meet at
    a single corner look joined on a map: they count as neighbours. The test
    runs in a metric CRS with a tolerance of `tolerance_m` metres, so that
    grids whose shared vertices differ by rounding still touch, and so do
    grids that the map's simplification (about 5 m) draws touching.

    Parameters
    ----------
    grids
        Grid polygons (any CRS), one row per lead.
    tolerance_m
        Polygons closer than this, in metres, are neighbours.

    Returns
    -------
    graph
        One node per index value of `grids`, an edge per neighbouring pair.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> boxes = [shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100), shapely.box(200, 100, 300, 200),
    ...          shapely.box(500, 500, 600, 600)]
    >>> sorted(grid_adjacency(gpd.GeoDataFrame(geometry=boxes, index=list("abcd"), crs="EPSG:32650")).edges)
    [('a', 'b'), ('b', 'c')]
    """
    metric = grids if grids.crs is None or grids.crs.is_projected else grids.to_crs(grids.estimate_utm_crs())
    geoms = metric.geometry.to_numpy()
    a, b = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=tolerance_m)
    G = nx.Graph()
    G.add_nodes_from(grids.index)
    ids = grids.index.to_numpy()
    G.add_edges_from((ids[i], ids[j]) for i, j in zip(a, b, strict=True) if i < j)
    return G


def grid_colours(grids: gpd.GeoDataFrame, palette: Sequence[str] = GRID_PALETTE) -> dict[Any, str]:
    """Colour the grids so that no two neighbours (:func:`grid_adjacency`) share a colour, using the whole palette.

    The colouring is equitable (:func:`networkx.equitable_color`): no
    neighbours alike and every colour of the palette used about as often
    (Wuhan's 32 grids on 14 colours: each colour 2 or 3 times), so that
    grids alike in colour are seldom close. It needs one colour more than
    the most neighbours a grid has; beyond the palette, further colours are
    generated (spread hues), never reused. A grid with more than 23
    neighbours gets a DSATUR greedy colouring (:func:`networkx.greedy_color`).

    Parameters
    ----------
    grids
        Grid polygons, one row per lead.
    palette
        Colours, hex.

    Returns
    -------
    colours
        Index value -> hex colour.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoDataFrame(geometry=[shapely.box(x, 0, x + 1, 1) for x in range(3)], crs="EPSG:32650")
    >>> c = grid_colours(g, palette=("#111111", "#222222"))
    >>> c[0] != c[1] and c[1] != c[2]
    True
    """
    G = grid_adjacency(grids)
    if len(G) == 0:
        return {}
    degree = max(d for _n, d in G.degree)
    if degree < _EQUITABLE_MAX_DEGREE:  # equitable needs more colours than any grid has neighbours
        colouring = nx.equitable_color(G, max(len(palette), degree + 1))
    else:
        colouring = nx.greedy_color(G, strategy="DSATUR")
    colours = [*palette, *_more_colours(max(colouring.values()) + 1 - len(palette))]
    return {fid: colours[colouring[fid]] for fid in grids.index}


def _more_colours(n: int) -> list[str]:
    """Return `n` light colours of spread hues, for colourings that outgrow the palette."""
    return ["#{:02x}{:02x}{:02x}".format(*(round(255 * v) for v in colorsys.hls_to_rgb((k * 0.618034) % 1, 0.72, 0.6)))
            for k in range(max(n, 0))]
