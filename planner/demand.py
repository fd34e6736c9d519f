"""Population demand as cells.

A cell is a demand unit with a ``population``: a raster pixel (or a block of
pixels), a square of a regular grid that points were summed into, or a polygon
from a layer. Cells keep a stable integer index ``cell_id`` and a WGS-84
polygon; travel times are computed from each cell's centre.

WorldPop-style rasters: nodata, negative and non-finite values are ignored, as
are cells with zero population; negative pixels (other than nodata) are
counted in a warning.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from . import datum
from ._errors import InputFileError, InvalidValueError, NoCrsError
from ._validate import check_limit, check_lonlat, check_numeric, find_column
from .io import RASTER_SUFFIXES, TABLE_SUFFIXES, VECTOR_SUFFIXES, check_input, read_table, suffix_of

logger = logging.getLogger(__name__)

POPULATION_ALIASES = ("population", "pop", "人口", "常住人口", "人口数", "value", "count")
DEFAULT_POINT_CELL_M = 100.0  # metres, grid size for population points


def load_population(
    path: str | os.PathLike[str],
    *,
    study_area: BaseGeometry | None = None,
    cell_size_m: float | None = None,
    population_column: str | None = None,
    coords: str = "wgs84",
) -> gpd.GeoDataFrame:
    """Load population as demand cells.

    Parameters
    ----------
    path
        GeoTIFF raster (persons per pixel), a CSV/XLSX of points with
        ``lon``/``lat`` and a population column, or a point/polygon layer
        with a population column.
    study_area
        WGS-84 polygon; only cells whose centre lies inside are returned.
    cell_size_m
        Cell size in metres. Raster pixels are summed in blocks of about this
        size (native pixels by default); points are summed into squares of
        this size (100 m by default). Polygons are used as they are.
    population_column
        Column holding population for tables and layers.
    coords
        Datum of the coordinates of population tables and layers (``wgs84``,
        ``gcj02``, ``bd09``). Rasters are read in their own CRS.

    Returns
    -------
    cells
        Index ``cell_id``; columns ``population`` and ``geometry`` (EPSG:4326).
        ``cells.attrs["population_input_total"]`` holds the population of the
        whole input, inside the study area or not.

    Raises
    ------
    InputFileError, NoCrsError, MissingColumnError, InvalidValueError
        For unusable inputs.

    Examples
    --------
    >>> import shapely
    >>> from planner import datasets
    >>> box = shapely.box(114.30, 30.55, 114.32, 30.57)
    >>> cells = load_population(datasets.get_path("wuhan_population"), study_area=box)
    >>> round(float(cells["population"].sum()))
    51316
    """
    p = check_input(path, what="population", suffixes=RASTER_SUFFIXES + TABLE_SUFFIXES + VECTOR_SUFFIXES)
    if cell_size_m is not None:
        check_limit("cell_size_m", cell_size_m)
    raster_total = None
    if suffix_of(p) in RASTER_SUFFIXES:
        if datum.canonical_datum(coords) != "wgs84":
            logger.warning("%s: the population datum '%s' applies to tables and layers; a raster is read in its own CRS",
                           p, coords)
        cells = _cells_from_raster(p, study_area=study_area, cell_size_m=cell_size_m)  # raises for unreadable files
        raster_total, n_neg, neg_sum = _raster_totals(p)
        if n_neg:
            logger.warning("%s: %d pixels with negative values (total %.1f) set to 0 (nodata pixels not counted); "
                           "fix: correct them, or declare them the raster's nodata value if they mean 'no data'",
                           p, n_neg, neg_sum)
    else:
        cells = _cells_from_table(p, study_area=study_area, cell_size_m=cell_size_m,
                                  population_column=population_column, coords=coords)
    cells.index = pd.RangeIndex(len(cells), name="cell_id")
    cells.attrs["population_input_total"] = raster_total if raster_total is not None else cells.attrs.get(
        "population_input_total", float(cells["population"].sum()))
    if len(cells) == 0:
        msg = (f"{p}: no populated cells inside the study area (the road network's extent); "
               "fix: check that the population and network files cover the same place")
        raise InvalidValueError(msg)
    logger.info("%s: %d populated cells, %.0f persons", p, len(cells), cells["population"].sum())
    return cells


def input_total(path: str | os.PathLike[str]) -> float:
    """Sum every valid pixel of a population raster, block by block.

    Parameters
    ----------
    path
        Population GeoTIFF.

    Returns
    -------
    total
        Persons in the whole raster (nodata, negative and non-finite ignored).
    """
    return _raster_totals(path)[0]


def _raster_totals(path: str | os.PathLike[str]) -> tuple[float, int, float]:
    """Sum of the positive pixels, and count and sum of the negative ones (nodata and non-finite left out)."""
    import rasterio

    total, n_neg, neg_sum = 0.0, 0, 0.0
    with rasterio.open(path) as src:
        for _, win in src.block_windows(1):
            block = src.read(1, window=win, masked=True).astype("float64").filled(np.nan)
            total += float(block[np.isfinite(block) & (block > 0)].sum())
            neg = block[np.isfinite(block) & (block < 0)]
            n_neg += len(neg)
            neg_sum += float(neg.sum())
    return total, n_neg, neg_sum


def _pixel_window(src: rasterio.io.DatasetReader, bounds: tuple[float, float, float, float]) -> rasterio.windows.Window:  # noqa: F821
    """Window of every pixel that touches `bounds`, clipped to the raster.

    ``from_bounds`` gives fractional offsets; rounding them (as
    ``round_offsets().round_lengths()`` does) can drop the last row and
    column of pixels whose centres lie inside `bounds`. Taking the floor of
    the start and the ceiling of the end keeps them all.
    """
    from rasterio.windows import Window, from_bounds

    w = from_bounds(*bounds, transform=src.transform)
    col0, row0 = math.floor(w.col_off), math.floor(w.row_off)
    col1, row1 = math.ceil(w.col_off + w.width), math.ceil(w.row_off + w.height)
    full = Window(0, 0, src.width, src.height)
    win = Window(col0, row0, max(col1 - col0, 0), max(row1 - row0, 0))
    try:
        return win.intersection(full)
    except Exception:  # noqa: BLE001 - rasterio raises WindowError when they do not overlap
        return Window(0, 0, 0, 0)


def _cells_from_raster(path: Path, *, study_area: BaseGeometry | None, cell_size_m: float | None) -> gpd.GeoDataFrame:
    import rasterio

    try:
        src = rasterio.open(path)
    except Exception as exc:  # noqa: BLE001
        msg = f"{path}: cannot read the population raster ({type(exc).__name__}); fix: give a GeoTIFF"
        raise InputFileError(msg) from None
    with src:
        if src.crs is None:
            msg = f"{path}: the population raster has no CRS; fix: set it (e.g. gdal_edit.py -a_srs EPSG:4326)"
            raise NoCrsError(msg)
        area = study_area
        if area is not None and not src.crs.to_epsg() == 4326:
            area = gpd.GeoSeries([study_area], crs="EPSG:4326").to_crs(src.crs).iloc[0]
        if area is not None:
            win = _pixel_window(src, area.bounds)
        else:
            win = rasterio.windows.Window(0, 0, src.width, src.height)
        if win.width == 0 or win.height == 0:
            data = np.zeros((0, 0))
        else:
            data = src.read(1, window=win, masked=True).astype("float64").filled(np.nan)
        transform = src.window_transform(win)
        crs = src.crs
        res_x = abs(transform.a)
    data[~np.isfinite(data) | (data < 0)] = 0.0
    if area is not None and data.size:
        # keep the pixels whose centre lies inside the study area, before any aggregation,
        # so that the total does not depend on the cell size
        rr, cc = np.mgrid[0:data.shape[0], 0:data.shape[1]]
        cx, cy = transform * (cc + 0.5, rr + 0.5)
        shapely.prepare(area)
        data[~shapely.contains_xy(area, cx, cy)] = 0.0
    k = 1
    if cell_size_m is not None:
        px_m = res_x * 111_320 * np.cos(np.radians(transform.f)) if crs.is_geographic else res_x
        k = max(1, round(cell_size_m / px_m))
    if k > 1:
        # pad with zeros to whole blocks: truncating would drop the last rows and columns
        h, w = -(-data.shape[0] // k) * k, -(-data.shape[1] // k) * k
        data = np.pad(data, ((0, h - data.shape[0]), (0, w - data.shape[1])))
        data = data.reshape(h // k, k, w // k, k).sum(axis=(1, 3))
        transform = transform * transform.scale(k, k)
    rows, cols = np.nonzero(data > 0)
    pop = data[rows, cols]
    x0, y0 = transform * (cols, rows)
    x1, y1 = transform * (cols + 1, rows + 1)
    geoms = shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))
    cells = gpd.GeoDataFrame({"population": pop}, geometry=geoms, crs=crs)
    if not crs.to_epsg() == 4326:
        cells = cells.to_crs("EPSG:4326")
    return cells.reset_index(drop=True)


def _cells_from_table(path: Path, *, study_area: BaseGeometry | None, cell_size_m: float | None,
                      population_column: str | None, coords: str) -> gpd.GeoDataFrame:
    df = read_table(path, what="population")
    pop_col = find_column(df, POPULATION_ALIASES, what="population", file=path, given=population_column)
    assert pop_col is not None
    pop = check_numeric(df, pop_col, file=path, what="population")
    if (pop < 0).any():
        i = int(np.flatnonzero(pop < 0)[0])
        msg = f"{path}: row {i + 1}, column '{pop_col}': population {pop[i]} is negative; fix: use counts >= 0"
        raise InvalidValueError(msg)
    if isinstance(df, gpd.GeoDataFrame):
        gdf = df.to_crs("EPSG:4326")
        if (gdf.geom_type.isin(["Polygon", "MultiPolygon"])).all():
            geoms = gdf.geometry.to_numpy()
            if datum.canonical_datum(coords) != "wgs84":
                geoms = shapely.transform(geoms, lambda xy: np.column_stack(datum.to_wgs84(xy[:, 0], xy[:, 1], datum=coords)))
            cells = gpd.GeoDataFrame({"population": pop}, geometry=geoms, crs="EPSG:4326")
            return _clip(cells[cells["population"] > 0], study_area)
        if not (gdf.geom_type == "Point").all():
            msg = f"{path}: population features must be all points or all polygons; fix: split the layer"
            raise InvalidValueError(msg)
        lon, lat = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    else:
        lon_col = find_column(df, ("lon", "lng", "longitude", "经度", "x"), what="longitude", file=path)
        lat_col = find_column(df, ("lat", "latitude", "纬度", "y"), what="latitude", file=path)
        assert lon_col is not None and lat_col is not None
        lon = check_numeric(df, lon_col, file=path, what="longitude")
        lat = check_numeric(df, lat_col, file=path, what="latitude")
        check_lonlat(lon, lat, file=path, lon_col=lon_col, lat_col=lat_col)
    lon, lat = (np.asarray(a, dtype=float) for a in datum.to_wgs84(lon, lat, datum=coords))
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    utm = pts.estimate_utm_crs()
    xy = shapely.get_coordinates(pts.to_crs(utm).to_numpy())
    size = cell_size_m or DEFAULT_POINT_CELL_M
    ij = np.floor(xy / size).astype(np.int64)
    grid = pd.DataFrame({"i": ij[:, 0], "j": ij[:, 1], "population": pop}).groupby(["i", "j"], as_index=False)["population"].sum()
    grid = grid[grid["population"] > 0]
    # plain arrays: shapely ufuncs on Series return Series, whose index (with gaps where
    # empty cells were dropped) would then misalign geometries and populations
    gi, gj = grid["i"].to_numpy(), grid["j"].to_numpy()
    geoms = shapely.box(gi * size, gj * size, (gi + 1) * size, (gj + 1) * size)
    cells = gpd.GeoDataFrame({"population": grid["population"].to_numpy()}, geometry=geoms, crs=utm).to_crs("EPSG:4326")
    return _clip(cells, study_area)


def _clip(cells: gpd.GeoDataFrame, study_area: BaseGeometry | None) -> gpd.GeoDataFrame:
    total = float(cells["population"].sum())
    if study_area is None:
        out = cells.reset_index(drop=True)
    else:
        centres = shapely.centroid(cells.geometry.to_numpy())
        shapely.prepare(study_area)
        inside = shapely.contains_xy(study_area, shapely.get_x(centres), shapely.get_y(centres))
        out = cells[inside].reset_index(drop=True)
    out.attrs["population_input_total"] = total
    return out


def population_by_zone(path: str | os.PathLike[str], zones: gpd.GeoDataFrame, *, name_column: str = "name") -> pd.Series:
    """Sum a population raster within each zone (pixel centres inside).

    Parameters
    ----------
    path
        Population GeoTIFF.
    zones
        Polygons with a name column.
    name_column
        Column naming the zones.

    Returns
    -------
    totals
        Population per zone name.
    """
    import rasterio
    from rasterio.features import rasterize

    with rasterio.open(path) as src:
        z = zones.to_crs(src.crs)
        win = _pixel_window(src, tuple(z.total_bounds))
        data = src.read(1, window=win, masked=True).astype("float64").filled(0.0)
        transform = src.window_transform(win)
    data[~np.isfinite(data) | (data < 0)] = 0.0
    labels = rasterize(((g, i + 1) for i, g in enumerate(z.geometry)), out_shape=data.shape,
                       transform=transform, fill=0, dtype="int32")
    sums = np.bincount(labels.ravel(), weights=data.ravel(), minlength=len(z) + 1)[1:]
    return pd.Series(sums, index=zones[name_column].to_numpy(), name="population")
