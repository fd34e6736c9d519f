"""A case: what to analyse (a :class:`Case`) and its loaded, validated inputs.

:class:`Case` is the one case schema: input files plus analysis settings,
checked against :data:`planner.settings.LIMITS` when it is built. The CLI
builds one from its options, a scenario file is a ``Case`` plus edits, and a
batch row is a ``Case`` with a name. :func:`load_case` reads a road network, institutions and population (and
optionally district boundaries) into a frozen :class:`CaseInputs`; the
coverage, siting and grid pipelines all start from it. The helpers here are
shared by those pipelines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .. import datum, settings
from .._errors import InvalidValueError
from .._validate import check_limit, check_minutes, check_mode, find_column
from ..coverage import assign_districts, compute_study_area
from ..credits import case_credits, check_user_credits, population_counts
from ..demand import load_population, population_by_zone
from ..institutions import load_institutions
from ..io import (
    OSM_SUFFIXES,
    RASTER_SUFFIXES,
    TABLE_SUFFIXES,
    VECTOR_SUFFIXES,
    check_input,
    read_vector,
    suffix_of,
)
from ..network import RoadNetwork, load_roads
from ..travel_time import CompiledNetwork, compile_network, snap_points

if TYPE_CHECKING:
    import networkx as nx

logger = logging.getLogger(__name__)

DISTRICT_NAME_ALIASES = ("name", "名称", "district", "区县", "name_zh", "locname", "NAME")
_INPUT_KEYS = ("network", "institutions", "population", "boundaries", "coords", "population_coords")  # summary "inputs"


@dataclass(frozen=True)
class Case:
    """One coverage case: its input files and analysis settings, validated when built.

    Defaults come from :mod:`planner.settings` when the case is built:
    `minutes` None becomes ``settings.THRESHOLDS_MINUTES`` and `max_snap_m`
    None ``settings.MAX_SNAP_M``. Numbers are checked against
    ``settings.LIMITS``; files are checked when the case is loaded.

    Attributes
    ----------
    network, institutions, population, boundaries
        Input files (see :func:`planner.pipeline.run_coverage`); `boundaries` is optional.
    coords, population_coords
        Datum of the institutions' and of a population table's coordinates.
    mode
        ``walk``, ``ebike`` or ``drive``.
    speed_kph
        One speed on every road in km/h, or None for the mode's speeds.
    minutes
        Thresholds in minutes, sorted.
    max_snap_m
        Largest distance in metres from a point to a road.
    cell_size_m
        Demand cell size in metres, or None for the population input's own.
    population_label
        What the population counts, shown with totals.
    isochrones
        Compute isochrone polygons.
    capacity_column
        Column of the institutions holding each one's capacity, for capacity-limited coverage
        (:mod:`planner.capacity`); None: no allocation, unless the norms file gives per-tier capacities
        (``[capacity_defaults]``, see :mod:`planner.norms`), which also fill the column's empty rows.
    persons_per_unit
        Persons one unit of `capacity_column` serves (beds, doctors); None: the column is in persons.
    allocation
        ``optimal`` (the most served) or ``ordered`` (AccessMod's greedy order).
    norms
        Norms file checked per district (with boundaries); None: the shipped default
        (:data:`planner.norms.DEFAULT_NORMS_PATH`).
    norms_enabled
        Check the norms per district (only with boundaries); False: no ``norms.csv``.
    credits
        The user's credits of the inputs, ``((role, text), ...)`` (a dict is accepted), e.g.
        ``{"population": "第七次全国人口普查 census 2020"}``; they win over the credits planner finds
        itself (see :mod:`planner.credits`) in the summary's ``credits``.

    Examples
    --------
    >>> c = Case(network="roads.osm", institutions="inst.csv", population="pop.tif", minutes=(15, 5))
    >>> c.minutes, c.max_snap_m, c.mode
    ((5.0, 15.0), 500.0, 'walk')
    >>> import dataclasses
    >>> sorted(INPUT_FIELDS + ANALYSIS_FIELDS) == sorted(f.name for f in dataclasses.fields(Case))  # the two halves
    True
    >>> Case(network="roads.osm", institutions="inst.csv", population="pop.tif", speed_kph=900)
    Traceback (most recent call last):
    ...
    planner._errors.InvalidValueError: speed_kph 900 km/h (one speed on every road) is outside 0.5-150 km/h; \
fix: give a value between 0.5 and 150 km/h
    """

    network: str | os.PathLike[str]
    institutions: str | os.PathLike[str]
    population: str | os.PathLike[str]
    boundaries: str | os.PathLike[str] | None = None
    coords: str = "wgs84"
    population_coords: str = "wgs84"
    mode: str = "walk"
    speed_kph: float | None = None
    minutes: tuple[float, ...] | None = None
    max_snap_m: float | None = None
    cell_size_m: float | None = None
    population_label: str = "population"
    isochrones: bool = True
    capacity_column: str | None = None
    persons_per_unit: float | None = None
    allocation: str = "optimal"
    norms: str | os.PathLike[str] | None = None
    norms_enabled: bool = True
    credits: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        check_mode(self.mode)
        set_ = object.__setattr__
        set_(self, "credits", check_user_credits(self.credits))
        set_(self, "minutes", check_minutes(settings.THRESHOLDS_MINUTES if self.minutes is None else self.minutes))
        set_(self, "max_snap_m", check_limit("max_snap_m", settings.MAX_SNAP_M if self.max_snap_m is None
                                             else self.max_snap_m))
        for name in ("speed_kph", "cell_size_m", "persons_per_unit"):
            if getattr(self, name) is not None:
                set_(self, name, check_limit(name, getattr(self, name)))
        check_capacity_options(capacity_column=self.capacity_column, persons_per_unit=self.persons_per_unit,
                               allocation=self.allocation, norms=self.norms if self.norms_enabled else None)

    @property
    def population_unit(self) -> str:
        """What the population counts, printed with every total.

        `population_label`; when that is left at its default and the population file is shipped data, what
        the file counts (``geodata/README.md``; the Wuhan raster counts adults 20+).
        """
        if self.population_label == "population":
            return population_counts(self.population) or self.population_label
        return self.population_label

    def load(self) -> CaseInputs:
        """Load and check the case's inputs (see :func:`load_case`)."""
        return load_case(self.network, self.institutions, self.population, boundaries=self.boundaries, mode=self.mode,
                         speed_kph=self.speed_kph, coords=self.coords, population_coords=self.population_coords,
                         max_snap_m=self.max_snap_m, cell_size_m=self.cell_size_m)


# the two halves of a Case, as a scenario file's [inputs] and [analysis] tables
INPUT_FIELDS = ("network", "institutions", "population", "boundaries", "coords", "population_coords",
                "population_label", "credits")
ANALYSIS_FIELDS = ("mode", "minutes", "speed_kph", "max_snap_m", "cell_size_m", "isochrones", "capacity_column",
                   "persons_per_unit", "allocation", "norms", "norms_enabled")


def check_capacity_options(*, capacity_column: str | None, persons_per_unit: float | None, allocation: str,
                           norms: object = None) -> None:
    """Check the capacity settings of a case (see :class:`Case`), before anything is loaded.

    An allocation other than ``optimal`` needs a capacity column, or a norms file (whose ``[capacity_defaults]``
    may give per-tier capacities; the run checks that it does).

    >>> check_capacity_options(capacity_column=None, persons_per_unit=100, allocation="optimal")
    Traceback (most recent call last):
    ...
    planner._errors.InvalidValueError: persons_per_unit 100 needs a capacity column; fix: give capacity_column \
(--capacity-col), the column the ratio applies to
    """
    if allocation not in settings.ALLOCATIONS:
        msg = f"allocation '{allocation}' is not one of {', '.join(settings.ALLOCATIONS)}; fix: use optimal or ordered"
        raise InvalidValueError(msg)
    if capacity_column is not None and (not isinstance(capacity_column, str) or not capacity_column.strip()):
        msg = f"capacity_column {capacity_column!r} is not a column name; fix: give the institutions' capacity column"
        raise InvalidValueError(msg)
    for name, value in (("persons_per_unit", persons_per_unit), ("allocation", allocation)):
        if capacity_column is None and value is not None and value != "optimal" and not (
                name == "allocation" and norms is not None):
            msg = (f"{name} {value:g} needs a capacity column; fix: give capacity_column (--capacity-col), the column "
                   "the ratio applies to" if name == "persons_per_unit" else
                   f"{name} '{value}' needs a capacity column; fix: give capacity_column (--capacity-col)")
            raise InvalidValueError(msg)


def analysis_options(case: Case) -> dict[str, Any]:
    """Return the capacity and norms settings of `case`, as keywords of :func:`planner.pipeline.analyse_case`."""
    return {"capacity_column": case.capacity_column, "persons_per_unit": case.persons_per_unit,
            "allocation": case.allocation, "norms": case.norms if case.norms_enabled else False,
            "credits": case.credits}


def summary_credits(options: dict[str, Any], user: Any = None, **inputs: Any) -> list[dict[str, Any]]:
    """Return a run summary's ``credits``: the one place where they are made (see :mod:`planner.credits`).

    Parameters
    ----------
    options
        The loaded case's options (:attr:`CaseInputs.options`): its network, institutions, population and
        boundaries files.
    user
        The user's credits (:attr:`Case.credits`, ``--credit``, a scenario's ``credits``).
    **inputs
        The run's other input files by role (``candidates``, ``leads``, ``competitors``, ``suitability``,
        ``exclusion``), None when not used.

    Returns
    -------
    credits
        One entry per source, with the roles that use it.
    """
    files = {k: options.get(k) for k in ("network", "institutions", "population", "boundaries")}
    return case_credits({**files, **inputs}, user)


def scenario_credits(raw: dict[str, Any], *, fail: Any, key: str = "inputs.credits") -> tuple[tuple[str, str], ...]:
    """Read a scenario or batch file's ``credits = {population = "...", ...}`` (role -> text).

    `fail(key, problem, fix)` returns the error to raise, naming the file and line.
    """
    value = raw["credits"]
    if not isinstance(value, dict):
        raise fail(key, f"must be a table of role = \"text\", not {value!r}",
                   'write credits = {population = "统计局 census 2020"}')
    try:
        return check_user_credits(value, where=key)
    except InvalidValueError as exc:
        raise fail(key, str(exc).split(": ", 1)[1].split("; fix:")[0], str(exc).split("; fix: ")[-1]) from None


def scenario_analysis_keys(raw: dict[str, Any], *, fail: Any, folder: Path) -> dict[str, Any]:
    """Read the capacity and norms keys of a scenario file's ``[analysis]`` table.

    ``capacity_column = "beds"``, ``persons_per_unit = 100``, ``allocation = "ordered"``, ``norms = "my.toml"``
    (relative to the scenario file) or ``norms = false`` (no check; so does ``norms_enabled = false``).
    `fail(key, problem, fix)` returns the error to raise, naming the file and line.
    """
    out: dict[str, Any] = {}
    for key, kinds in (("capacity_column", str), ("allocation", str), ("norms", (str, bool)), ("norms_enabled", bool),
                       ("persons_per_unit", (int, float))):
        if key not in raw:
            continue
        v = raw[key]
        if not isinstance(v, kinds) or (isinstance(v, bool) and key == "persons_per_unit") or (key == "norms" and v is True):
            want = {"norms": 'a path or false', "norms_enabled": "true or false", "persons_per_unit": "a number"}
            raise fail(f"analysis.{key}", f"must be {want.get(key, 'text')}, not {v!r}", "fix the value")
        if key == "persons_per_unit" and not settings.LIMITS[key].contains(v):
            raise fail(f"analysis.{key}", f"{v} is not {settings.LIMITS[key].text()}", "give the persons one unit serves")
        if key == "allocation" and v not in settings.ALLOCATIONS:
            raise fail(f"analysis.{key}", f"'{v}' is not an allocation", f"use one of {', '.join(settings.ALLOCATIONS)}")
        if key == "norms" and v is False:
            out["norms_enabled"] = False
            continue
        if key == "norms":
            p = (folder / v).resolve()
            if not p.is_file():
                raise fail(f"analysis.{key}", f"file not found: {p}", "give a norms file relative to the scenario file")
            v = str(p)
        out[key] = float(v) if key == "persons_per_unit" else v
    return out


def load_boundaries(path: str | os.PathLike[str], *, name_column: str | None = None) -> gpd.GeoDataFrame:
    """Load district polygons with a ``name`` column, in EPSG:4326.

    Parameters
    ----------
    path
        Polygon layer.
    name_column
        Column holding names; found among common aliases by default.

    Returns
    -------
    districts
        Columns ``name`` and ``geometry``.
    """
    gdf = read_vector(path, what="boundaries")
    if not gdf.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        msg = f"{path}: the boundaries layer must hold polygons; fix: give district polygons"
        raise InvalidValueError(msg)
    col = find_column(gdf, DISTRICT_NAME_ALIASES, what="district name", file=path, given=name_column)
    out = gpd.GeoDataFrame({"name": gdf[col].astype(str).to_numpy()}, geometry=gdf.geometry.to_numpy(), crs=gdf.crs)
    return out.to_crs("EPSG:4326")


@dataclass(frozen=True)
class CaseInputs:
    """Loaded inputs of a coverage case, before any what-if edit.

    The study area and the demand cells come from the unedited network, so
    that a what-if (closing a road, say) is compared on the same cells.

    Attributes
    ----------
    roads
        Road network for the mode (unedited), on arrays.
    net
        `roads` compiled for routing (:func:`planner.travel_time.compile_network`).
    institutions
        Institutions, with ``district`` when boundaries are given.
    cells
        Demand cells in the study area, with ``district`` when boundaries are given.
    districts
        District polygons, or None.
    district_totals
        Population of each whole district (raster population only), or None.
    area
        Study area polygon (EPSG:4326).
    population_input_total
        Population of the whole population input, inside the study area or not.
    max_snap_m
        Snap distance in metres used for the study area.
    options
        The options the case was loaded with (paths, mode, speeds, datum).
    """

    roads: RoadNetwork
    net: CompiledNetwork
    institutions: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame | None
    district_totals: pd.Series | None
    area: shapely.Geometry
    population_input_total: float
    max_snap_m: float
    options: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def graph(self) -> nx.MultiDiGraph:
        """The road network as an OSMnx-style graph, built on request (``roads.to_networkx()``, then kept).

        For users who want networkx; the pipeline works on :attr:`roads`
        and :attr:`net`.
        """
        return self.roads.to_networkx()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the inputs without the graph built on request."""
        return {k: v for k, v in self.__dict__.items() if k != "graph"}


def load_case(
    network: str | os.PathLike[str],
    institutions: str | os.PathLike[str],
    population: str | os.PathLike[str],
    *,
    boundaries: str | os.PathLike[str] | None = None,
    mode: str = "walk",
    speed_kph: float | None = None,
    coords: str = "wgs84",
    population_coords: str = "wgs84",
    max_snap_m: float | None = None,
    cell_size_m: float | None = None,
) -> CaseInputs:
    """Load and validate the inputs of a coverage case.

    Institutions declared in one datum that fit the roads far better in
    another get a warning naming the fix (see :func:`planner.datum.suggest_datum`).

    Parameters
    ----------
    network, institutions, population, boundaries, mode, speed_kph, coords, population_coords, max_snap_m, cell_size_m
        As in :func:`planner.pipeline.run_coverage`.

    Returns
    -------
    case
        The loaded inputs.

    Raises
    ------
    PlannerError
        For any unusable input, with the file and the fix.
    """
    max_snap = _check_case_options(network, institutions, population, boundaries=boundaries, mode=mode,
                                   max_snap_m=max_snap_m, cell_size_m=cell_size_m)
    inst = load_institutions(institutions, coords=coords)
    districts = load_boundaries(boundaries) if boundaries is not None else None
    roads = load_roads(network, mode=mode, speed_kph=speed_kph)
    net = compile_network(roads)
    area = compute_study_area(net, boundaries=districts, buffer_m=max_snap)
    datum_warning = None
    if suffix_of(institutions) not in OSM_SUFFIXES:  # OSM files are WGS-84 whatever --coords says
        datum_warning = check_datum(net, inst, declared=coords, area=area, what=f"{institutions}: the institutions")
    cells = load_population(population, study_area=area, cell_size_m=cell_size_m, coords=population_coords)
    input_total = float(cells.attrs.get("population_input_total", cells["population"].sum()))
    district_totals = None
    if districts is not None:
        cells["district"] = assign_districts(cells, districts)
        inst["district"] = assign_districts(inst, districts)
        if suffix_of(population) in RASTER_SUFFIXES:
            district_totals = population_by_zone(population, districts)
    options = {"network": str(network), "institutions": str(institutions), "population": str(population),
               "boundaries": None if boundaries is None else str(boundaries), "coords": coords,
               "population_coords": population_coords, "mode": mode, "speed_kph": speed_kph, "cell_size_m": cell_size_m,
               "datum_warning": datum_warning}
    return CaseInputs(roads=roads, net=net, institutions=inst, cells=cells, districts=districts, district_totals=district_totals,
                      area=area, population_input_total=input_total, max_snap_m=max_snap, options=options)


def _check_case_options(
    network: str | os.PathLike[str],
    institutions: str | os.PathLike[str],
    population: str | os.PathLike[str],
    *,
    boundaries: str | os.PathLike[str] | None,
    mode: str,
    max_snap_m: float | None,
    cell_size_m: float | None,
) -> float:
    """Check a case's options and that its files exist, before anything is loaded; return the snap distance (m)."""
    check_mode(mode)
    max_snap = check_limit("max_snap_m", settings.MAX_SNAP_M if max_snap_m is None else max_snap_m)
    # check every path first, so a typo does not cost a network build before it is reported
    check_input(network, what="road network", suffixes=OSM_SUFFIXES + VECTOR_SUFFIXES)
    check_input(institutions, what="institutions", suffixes=TABLE_SUFFIXES + VECTOR_SUFFIXES + OSM_SUFFIXES)
    check_input(population, what="population", suffixes=RASTER_SUFFIXES + TABLE_SUFFIXES + VECTOR_SUFFIXES)
    if boundaries is not None:
        check_input(boundaries, what="boundaries", suffixes=VECTOR_SUFFIXES)
    if cell_size_m is not None:
        check_limit("cell_size_m", cell_size_m)
    return max_snap


def check_datum(
    net: CompiledNetwork,
    points: gpd.GeoDataFrame,
    *,
    declared: str,
    area: shapely.Geometry | None = None,
    what: str = "the institutions",
    option: str = "--coords",
) -> str | None:
    """Warn when points declared in one datum fit the roads far better read in another.

    Compares the median distance to the nearest road of the points as
    declared with that of each other datum's reading (see
    :func:`planner.datum.suggest_datum`), using the bulk snapping of
    :func:`planner.travel_time.snap_points`.

    Parameters
    ----------
    net
        Compiled network.
    points
        Loaded points (WGS-84 ``lon``/``lat``, converted from `declared`).
    declared
        The datum the points were declared in.
    area
        Study area (WGS-84); only points inside it are compared.
    what
        Start of the message, naming the file and the points.
    option
        Option that sets the datum, named in the fix.

    Returns
    -------
    message
        The warning (also logged), or None.
    """
    lon, lat = points["lon"].to_numpy(dtype=float), points["lat"].to_numpy(dtype=float)
    if area is not None:
        shapely.prepare(area)
        keep = shapely.contains_xy(area, lon, lat)
        lon, lat = lon[keep], lat[keep]
    if len(lon) < datum.DATUM_CHECK_MIN_POINTS:
        return None

    def distance_m(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        pts = gpd.GeoSeries.from_xy(x, y, crs="EPSG:4326")
        return snap_points(net, pts, max_snap_m=settings.MAX_SNAP_M)["snap_m"].to_numpy()

    given_lon, given_lat = datum.from_wgs84(lon, lat, datum=declared)  # the coordinates as written in the file
    hint = datum.suggest_datum(given_lon, given_lat, declared=declared, distance_m=distance_m)
    if hint is None:
        return None
    msg = hint.message(what, option=option)
    logger.warning("%s", msg)
    return msg


def _institutions_with_capacity(
    case: CaseInputs, institutions: str | os.PathLike[str], *, coords: str, capacity_column: str | None,
) -> gpd.GeoDataFrame:
    """Return the case's institutions, reloaded with `capacity_column` as ``capacity`` when one is given."""
    if capacity_column is None:
        return case.institutions
    inst = load_institutions(institutions, coords=coords, capacity_column=capacity_column)
    if case.districts is not None:
        inst["district"] = assign_districts(inst, case.districts)
    return inst


def _empty_isochrones() -> gpd.GeoDataFrame:
    """Return an isochrone layer with no polygon."""
    return gpd.GeoDataFrame({"facility_id": [], "minutes": []}, geometry=[], crs="EPSG:4326")


@contextlib.contextmanager
def _warnings_logged() -> Iterator[None]:
    """Turn the warnings of the body into log records (after it ends without error)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        logger.warning("%s", w.message)
