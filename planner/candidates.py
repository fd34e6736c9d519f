"""Candidate sites for new branches (分支机构): network nodes on a regular spacing, or given points.

Candidates are filtered the way planners ask: only inside given districts,
not closer than a minimum spacing to an institution that already provides the
service, and not inside exclusion zones (water, parks, protected land: polygon
files or the OSM extract's areas, :func:`load_exclusion_zones` and
:func:`exclude_candidates`). :func:`candidate_suitability` reads a weight per
candidate from a raster or weighted polygons, and :func:`load_competitors` the
competitor sites (e.g. private clinics) that serve demand but are not ours.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import settings
from ._errors import InputFileError, InvalidValueError, MissingColumnError, NoCrsError
from ._osm import read_osm_areas
from ._validate import check_limit
from .institutions import load_institutions
from .io import RASTER_SUFFIXES, VECTOR_SUFFIXES, check_input, read_vector, suffix_of
from .travel_time import CompiledNetwork

logger = logging.getLogger(__name__)


def candidates_from_network(
    net: CompiledNetwork,
    *,
    spacing_m: float = settings.CANDIDATE_SPACING_M,
    study_area: shapely.Geometry | None = None,
) -> gpd.GeoDataFrame:
    """Pick one road-network node per square of a regular grid as candidate sites.

    In every ``spacing_m`` square holding nodes, the node nearest the square's
    centre is taken, so candidates lie on roads and are spread evenly.

    Parameters
    ----------
    net
        Compiled network.
    spacing_m
        Grid spacing in metres.
    study_area
        WGS-84 polygon; only nodes inside are used.

    Returns
    -------
    candidates
        Points (EPSG:4326) indexed by ``node-<node id>`` with ``name``,
        ``lon`` and ``lat``.

    Examples
    --------
    >>> from planner import datasets, network, travel_time
    >>> net = travel_time.compile_network(network.load_network(datasets.get_path("guanggu_osm")))
    >>> c = candidates_from_network(net, spacing_m=1000)
    >>> 20 < len(c) < 200, c.index[0].startswith("node-")
    (True, True)
    """
    check_limit("candidate_spacing_m", spacing_m, label="spacing_m")
    xy = net.node_xy
    keep = np.ones(len(xy), dtype=bool)
    if study_area is not None:
        area_m = gpd.GeoSeries([study_area], crs="EPSG:4326").to_crs(net.crs).iloc[0]
        shapely.prepare(area_m)
        keep = shapely.contains_xy(area_m, xy[:, 0], xy[:, 1])
    idx = np.flatnonzero(keep)
    cell = np.floor(xy[idx] / spacing_m)
    centre = (cell + 0.5) * spacing_m
    d = np.hypot(*(xy[idx] - centre).T)
    df = pd.DataFrame({"i": cell[:, 0], "j": cell[:, 1], "d": d, "node": idx})
    best = np.sort(df.sort_values(["i", "j", "d", "node"]).drop_duplicates(["i", "j"])["node"].to_numpy())
    pts = gpd.GeoSeries.from_xy(xy[best, 0], xy[best, 1], crs=net.crs).to_crs("EPSG:4326")
    ids = [f"node-{net.node_ids[i]}" for i in best]
    return gpd.GeoDataFrame({"name": [f"候选点 candidate {i}" for i in ids], "lon": pts.x.to_numpy(), "lat": pts.y.to_numpy()},
                            geometry=pts.to_numpy(), crs="EPSG:4326", index=pd.Index(ids, name="facility_id"))


def load_candidates(path: str | os.PathLike[str], *, coords: str = "wgs84") -> gpd.GeoDataFrame:
    """Read candidate sites from a table or point layer (same columns as institutions).

    Parameters
    ----------
    path
        CSV/XLSX with ``name``, ``lon``, ``lat`` (and optionally ``capacity``),
        or a point layer.
    coords
        Datum of the coordinates.

    Returns
    -------
    candidates
        Points indexed by ``facility_id``, prefixed ``cand-`` so they never
        clash with institution ids.
    """
    c = load_institutions(path, coords=coords)
    c.index = pd.Index([f"cand-{i}" for i in c.index], name="facility_id")
    return c


def filter_candidates(
    candidates: gpd.GeoDataFrame,
    *,
    existing: gpd.GeoDataFrame | None = None,
    min_spacing_m: float = 0.0,
    districts: gpd.GeoDataFrame | None = None,
    district_names: Sequence[str] | None = None,
) -> gpd.GeoDataFrame:
    """Keep candidates in the named districts and at least `min_spacing_m` from existing sites.

    Parameters
    ----------
    candidates
        Candidate points (EPSG:4326).
    existing
        Existing institutions providing the service.
    min_spacing_m
        Smallest straight-line distance in metres to an existing site.
    districts
        District polygons with ``name``.
    district_names
        Names of the districts to keep; all when None.

    Returns
    -------
    candidates
        The kept rows (same index).

    Raises
    ------
    InvalidValueError
        For an unknown district name or when no candidate is left.
    """
    out = candidates
    if district_names:
        if districts is None:
            msg = "candidate districts were given but no --boundaries file; fix: add --boundaries districts.gpkg"
            raise InvalidValueError(msg)
        unknown = sorted(set(district_names) - set(districts["name"]))
        if unknown:
            msg = (f"unknown district(s) {', '.join(unknown)}; "
                   f"fix: use names from the boundaries file: {', '.join(districts['name'])}")
            raise InvalidValueError(msg)
        zone = shapely.union_all(districts[districts["name"].isin(district_names)].geometry.to_numpy())
        shapely.prepare(zone)
        out = out[shapely.contains_xy(zone, out.geometry.x.to_numpy(), out.geometry.y.to_numpy())]
    if min_spacing_m > 0 and existing is not None and len(existing):
        utm = out.estimate_utm_crs() if len(out) else "EPSG:3857"
        tree = shapely.STRtree(existing.to_crs(utm).geometry.to_numpy())
        pts = out.to_crs(utm).geometry.to_numpy()
        (pi, _), d = tree.query_nearest(pts, return_distance=True, all_matches=False)
        near = np.full(len(pts), np.inf)
        near[pi] = d
        out = out[near >= min_spacing_m]
    if len(out) == 0:
        msg = (f"no candidate site is left after the filters (districts {list(district_names or [])}, minimum spacing "
               f"{min_spacing_m:g} m); fix: widen the districts, lower --min-spacing or add candidates")
        raise InvalidValueError(msg)
    return out


OSM_SUFFIXES = (".osm", ".pbf", ".osm.pbf")  # network files whose areas --exclude osm:... reads
_POLYGONS = ("Polygon", "MultiPolygon")


def load_competitors(path: str | os.PathLike[str], *, coords: str = "wgs84") -> gpd.GeoDataFrame:
    """Read competitor sites (e.g. private clinics: they serve demand, but are not ours), as institutions.

    Returns
    -------
    competitors
        Points indexed by ``facility_id`` in their own id space, ``comp:<id>``.
    """
    c = load_institutions(path, coords=coords)
    c.index = pd.Index([f"comp:{i}" for i in c.index], name="facility_id")
    return c


def _polygons(path: str | os.PathLike[str], *, what: str) -> gpd.GeoDataFrame:
    """Read a polygon layer in WGS-84, refusing other geometry types in one line."""
    gdf = read_vector(path, what=what)
    kinds = gdf.geometry.geom_type
    bad = ~kinds.isin(_POLYGONS)
    if bad.any():
        k = int(np.flatnonzero(bad.to_numpy())[0])
        msg = (f"{path}: {what} must be polygons, but {int(bad.sum())} feature(s) are not (row {k + 1}: "
               f"{kinds.iloc[k] or 'no geometry'}); fix: keep only Polygon/MultiPolygon features")
        raise InputFileError(msg)
    gdf = gdf.to_crs("EPSG:4326")
    return gdf.set_geometry(shapely.make_valid(gdf.geometry.to_numpy()))


def load_exclusion_zones(
    specs: Sequence[str | os.PathLike[str]],
    *,
    network: str | os.PathLike[str] | None = None,
) -> list[tuple[str, shapely.Geometry]]:
    """Read the zones where no new site may go: polygon files, or the OSM extract's areas.

    Parameters
    ----------
    specs
        Polygon files (GeoPackage, GeoJSON, shapefile, ...; any CRS), or
        ``"osm:water,park"``: the areas of these kinds in the OSM `network`
        file, with the tags of :data:`planner.settings.EXCLUSION_OSM_TAGS`
        (``water``, ``park``, ``forest``, ``protected``), assembled from closed
        ways and multipolygon relations by libosmium.
    network
        The road network file; must be an OSM extract for ``osm:`` specs.

    Returns
    -------
    zones
        One ``(source, geometry)`` per source (the file's path or
        ``osm:<kind>``), the geometry a WGS-84 union of its polygons (empty
        when an OSM kind has no area in the extract).

    Raises
    ------
    InputFileError
        For a missing file, a layer that is not polygons, or a non-OSM network
        with ``osm:`` specs.
    InvalidValueError
        For an unknown OSM kind.
    """
    zones: list[tuple[str, shapely.Geometry]] = []
    for spec in specs:
        if isinstance(spec, str) and spec.startswith("osm:"):
            zones += _osm_zones(spec, network=network)
        else:
            gdf = _polygons(spec, what="exclusion zones")
            zones.append((str(spec), shapely.union_all(gdf.geometry.to_numpy())))
    return zones


def _osm_zones(spec: str, *, network: str | os.PathLike[str] | None) -> list[tuple[str, shapely.Geometry]]:
    known = settings.EXCLUSION_OSM_TAGS
    kinds = [k.strip() for k in spec.split(":", 1)[1].split(",") if k.strip()]
    unknown = [k for k in kinds if k not in known]
    if not kinds or unknown:
        msg = (f"--exclude {spec}: unknown OSM area kind(s) {', '.join(unknown) or '(none given)'}; "
               f"fix: use osm:{','.join(known)} (any of them)")
        raise InvalidValueError(msg)
    if network is None or not str(network).lower().endswith(OSM_SUFFIXES):
        msg = (f"--exclude {spec} reads the areas of an OSM extract, but the network is {network or 'not a file'}; "
               "fix: pass the exclusion zones as a polygon file, e.g. --exclude water.gpkg")
        raise InputFileError(msg)
    areas = read_osm_areas(Path(network), {k: known[k] for k in kinds})
    for k in kinds:
        if not areas[k]:
            logger.warning("--exclude osm:%s: the extract %s has no %s areas", k, network, k)
    return [(f"osm:{k}", shapely.make_valid(shapely.union_all(areas[k])) if areas[k] else shapely.Polygon())
            for k in kinds]


def exclude_candidates(
    candidates: gpd.GeoDataFrame,
    zones: Sequence[tuple[str, shapely.Geometry]],
) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """Drop the candidates inside any exclusion zone (its boundary included).

    Returns
    -------
    kept, removed
        The candidates outside every zone (same index), and per zone source
        how many candidates lie inside it (a candidate inside two zones counts
        for both).

    Raises
    ------
    InvalidValueError
        When every candidate is inside a zone; the message gives each zone's
        count.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> c = gpd.GeoDataFrame(geometry=gpd.points_from_xy([0.5, 2.0], [0.5, 2.0]), crs="EPSG:4326")
    >>> kept, removed = exclude_candidates(c, [("lake", shapely.box(0, 0, 1, 1))])
    >>> len(kept), removed
    (1, {'lake': 1})
    """
    x, y = candidates.geometry.x.to_numpy(), candidates.geometry.y.to_numpy()
    inside = np.zeros(len(candidates), dtype=bool)
    removed: dict[str, int] = {}
    for source, geom in zones:
        shapely.prepare(geom)
        hit = shapely.intersects_xy(geom, x, y)
        removed[source] = int(hit.sum())
        inside |= hit
    if len(candidates) and inside.all():
        counts = ", ".join(f"{src} removed {n}" for src, n in removed.items())
        msg = (f"every one of the {len(candidates)} candidate sites lies in an exclusion zone ({counts}); "
               "fix: check the --exclude polygons, or offer candidates outside them")
        raise InvalidValueError(msg)
    return candidates[~inside], removed


def candidate_suitability(
    candidates: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    *,
    column: str | None = None,
) -> tuple[pd.Series, int]:
    """Read each candidate's suitability weight (≥ 0) from a raster or from polygons with a weight column.

    Parameters
    ----------
    candidates
        Candidate points (EPSG:4326).
    path
        A GeoTIFF (band 1 sampled at the points) or a polygon layer.
    column
        Weight column of a polygon layer (:data:`planner.settings.SUITABILITY_COLUMN` by default).
        A point inside several polygons takes the smallest weight.

    Returns
    -------
    weights, n_default
        Weight per candidate (same index), and how many candidates took
        :data:`planner.settings.SUITABILITY_DEFAULT_WEIGHT` (outside the
        raster or every polygon, or on nodata).

    Raises
    ------
    InputFileError, MissingColumnError, NoCrsError, InvalidValueError
        For an unreadable file, a missing column, a raster without CRS, or
        negative or non-numeric weights (naming the row or candidate).
    """
    p = check_input(path, what="suitability", suffixes=RASTER_SUFFIXES + VECTOR_SUFFIXES)
    if suffix_of(p) in RASTER_SUFFIXES:
        w = _sample_raster(candidates, p)
    else:
        w = _polygon_weights(candidates, p, column=column or settings.SUITABILITY_COLUMN)
    n_default = int(np.isnan(w).sum())
    w = np.where(np.isnan(w), settings.SUITABILITY_DEFAULT_WEIGHT, w)
    neg = w < 0
    if neg.any():
        k = int(np.flatnonzero(neg)[0])
        msg = (f"{path}: suitability weight {w[k]:g} at candidate '{candidates.index[k]}' is negative; "
               "fix: weights are ≥ 0 (0 excludes a candidate)")
        raise InvalidValueError(msg)
    return pd.Series(w, index=candidates.index, name="suitability"), n_default


def _sample_raster(candidates: gpd.GeoDataFrame, path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        if src.crs is None:
            msg = f"{path}: the suitability raster has no CRS; fix: assign one, e.g. gdal_edit.py -a_srs EPSG:4326"
            raise NoCrsError(msg)
        pts = candidates.to_crs(src.crs).geometry
        samples = list(src.sample(zip(pts.x, pts.y, strict=True), indexes=1, masked=True))
    vals = np.array([float(np.ma.getdata(v)[0]) for v in samples], dtype=float)
    mask = np.array([bool(np.ma.getmaskarray(v)[0]) for v in samples], dtype=bool)
    return np.where(mask | ~np.isfinite(vals), np.nan, vals)


def _polygon_weights(candidates: gpd.GeoDataFrame, path: Path, *, column: str) -> np.ndarray:
    gdf = _polygons(path, what="suitability polygons")
    if column not in gdf.columns:
        msg = (f"{path}: no suitability column '{column}' (columns: {', '.join(map(str, gdf.columns))}); "
               "fix: name it 'weight' or pass --suitability-col")
        raise MissingColumnError(msg)
    vals = pd.to_numeric(gdf[column], errors="coerce")
    bad = vals.isna() | (vals < 0)
    if bad.any():
        k = int(np.flatnonzero(bad.to_numpy())[0])
        msg = (f"{path}: row {k + 1}: suitability '{column}' = {gdf[column].iloc[k]!r} is not a number ≥ 0; "
               "fix: give every polygon a weight ≥ 0 (0 excludes)")
        raise InvalidValueError(msg)
    pts = candidates.geometry.reset_index(drop=True)
    pi, gi = shapely.STRtree(gdf.geometry.to_numpy()).query(pts.to_numpy(), predicate="intersects")
    w = np.full(len(pts), np.nan)
    if len(pi):
        hits = pd.Series(vals.to_numpy(dtype=float)[gi]).groupby(pi).min()
        w[hits.index.to_numpy()] = hits.to_numpy()
    return w
