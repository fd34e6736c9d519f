"""Dissolve grid cells by tracing a label raster, not by uniting cell squares.

Demand cells built from a population raster (or a regular table grid) are
axis-aligned squares on one lattice. For them, the union of the cells of one
class is the outline of that class in a label raster, which
:func:`rasterio.features.shapes` traces in one pass (as
:mod:`planner.isochrones` does for isochrones), far faster than uniting
100,000 squares. :func:`trace_classes` detects the lattice and returns
``None`` when the cells are not on one, so the caller unites them instead.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import shapely

_LATTICE_TOL = 1e-6  # cell corners within this fraction of a cell of the lattice count as on it
_MAX_PIXELS = 25_000_000  # a label raster larger than this (sparse cells over a wide extent): unite instead


class _Lattice(NamedTuple):
    """Where each cell sits on the grid: column and row, with the grid's origin and cell size."""

    col: np.ndarray
    row: np.ndarray
    x0: float  # west edge of column 0
    y1: float  # north edge of row 0
    dx: float
    dy: float
    shape: tuple[int, int]  # rows, columns


def _lattice(geoms: np.ndarray) -> _Lattice | None:
    """Return the grid of `geoms` if all are axis-aligned rectangles of one size on one lattice, else None.

    A polygon with 5 coordinates (4 corners, closed), no hole and the area of
    its bounding box is that box. The cells must also not repeat a grid
    position (the squares must not overlap).

    >>> sq = shapely.box([0.0, 2.0, 2.0], [0.0, 0.0, 2.0], [2.0, 4.0, 4.0], [2.0, 2.0, 4.0])
    >>> g = _lattice(sq)
    >>> g.col.tolist(), g.row.tolist(), g.shape
    ([0, 1, 1], [1, 1, 0], (2, 2))
    >>> _lattice(shapely.box([0.0, 1.0], [0.0, 0.0], [2.0, 3.0], [2.0, 2.0])) is None  # off the lattice
    True
    """
    n = len(geoms)
    if n == 0 or not np.all(shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON):
        return None
    if not (np.all(shapely.get_num_coordinates(geoms) == 5) and np.all(shapely.get_num_interior_rings(geoms) == 0)):
        return None
    b = shapely.bounds(geoms)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    dx, dy = float(np.median(w)), float(np.median(h))
    if not (dx > 0 and dy > 0):
        return None
    if (np.abs(w - dx) > _LATTICE_TOL * dx).any() or (np.abs(h - dy) > _LATTICE_TOL * dy).any():
        return None
    if (np.abs(shapely.area(geoms) - w * h) > _LATTICE_TOL * dx * dy).any():  # not the bounding box: rotated or not a rectangle
        return None
    x0, y1 = float(b[:, 0].min()), float(b[:, 3].max())
    fc, fr = (b[:, 0] - x0) / dx, (y1 - b[:, 3]) / dy
    col, row = np.rint(fc).astype(np.int64), np.rint(fr).astype(np.int64)
    if (np.abs(fc - col) > _LATTICE_TOL).any() or (np.abs(fr - row) > _LATTICE_TOL).any():
        return None
    shape = (int(row.max()) + 1, int(col.max()) + 1)
    if shape[0] * shape[1] > _MAX_PIXELS or len(np.unique(row * shape[1] + col)) != n:
        return None
    return _Lattice(col, row, x0, y1, dx, dy, shape)


def trace_classes(geoms: np.ndarray, codes: np.ndarray, n_classes: int) -> list[shapely.Geometry] | None:
    """Dissolve grid cells per class by tracing; ``None`` when the cells are not on one grid.

    Parameters
    ----------
    geoms
        Cell polygons.
    codes
        Class of each cell, ``0 .. n_classes - 1``; ``-1`` for cells in no class.
    n_classes
        Number of classes.

    Returns
    -------
    shapes
        Per class, the union of its cells (polygons with holes; cells touching
        only at a corner are separate parts); an empty polygon for an empty class.

    >>> sq = shapely.box([0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    >>> [g.wkt for g in trace_classes(sq, np.array([0, 0, 1]), 3)]
    ['POLYGON ((0 1, 0 0, 2 0, 2 1, 0 1))', 'POLYGON ((2 1, 2 0, 3 0, 3 1, 2 1))', 'POLYGON EMPTY']
    """
    from rasterio.features import shapes

    grid = _lattice(geoms)
    if grid is None:
        return None
    dtype = np.uint8 if n_classes < 255 else np.int32
    label = np.zeros(grid.shape, dtype=dtype)
    keep = codes >= 0
    label[grid.row[keep], grid.col[keep]] = codes[keep] + 1
    rings: list[list[list]] = [[] for _ in range(n_classes)]  # per class: its rings
    ring_poly: list[list[int]] = [[] for _ in range(n_classes)]  # per ring: its polygon within the class
    n_poly = [0] * n_classes
    for g, v in shapes(label, mask=label > 0, connectivity=4):
        k = int(v) - 1
        rings[k].extend(g["coordinates"])
        ring_poly[k].extend([n_poly[k]] * len(g["coordinates"]))
        n_poly[k] += 1
    out = []
    for k in range(n_classes):
        if not rings[k]:
            out.append(shapely.Polygon())
            continue
        lengths = np.fromiter((len(q) for q in rings[k]), dtype=np.int64, count=len(rings[k]))
        px = np.fromiter((c for q in rings[k] for pt in q for c in pt), dtype=float,
                         count=2 * int(lengths.sum())).reshape(-1, 2)
        # pixel corners placed on the lattice: the cells' own corners, to float rounding
        xy = np.c_[grid.x0 + px[:, 0] * grid.dx, grid.y1 - px[:, 1] * grid.dy]
        lr = shapely.linearrings(xy, indices=np.repeat(np.arange(len(lengths)), lengths))
        polys = shapely.polygons(lr, indices=np.asarray(ring_poly[k]))
        out.append(polys[0] if len(polys) == 1 else shapely.multipolygons(polys))
    return out
