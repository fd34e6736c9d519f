"""Candidate sites for new branches (分支机构): network nodes on a regular spacing, or given points.

Candidates are filtered the way planners ask: only inside given districts, and
not closer than a minimum spacing to an institution that already provides the
service.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import settings
from ._errors import InvalidValueError
from ._validate import check_limit
from .institutions import load_institutions
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
