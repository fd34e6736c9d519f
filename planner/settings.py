"""Documented, typed defaults for `planner`.

Functions read these values when they are called, never at import, so a user
may change them for a session (``planner.settings.WALK_SPEED_KPH = 3.2``) or
override them per call with keyword arguments.

Speeds
------
WALK_SPEED_KPH : float
    4.0 km/h. GB 50180-2018 (城市居住区规划设计标准) sizes the 15-minute life
    circle at a walking distance of 800-1,000 m, i.e. 3.2-4.0 km/h; we take the
    upper end. Use 3.2 km/h for elderly residents.
EBIKE_SPEED_KPH : float
    15.0 km/h. GB 17761-2018 caps electric bicycles at 25 km/h design speed;
    15 km/h is a typical urban average including intersections.
DRIVE_SPEEDS_KPH : dict[str, float]
    Per OSM ``highway`` class: the lower end of the design-speed ranges of
    CJJ 37-2012 (城市道路工程设计规范: 快速路 60-100, 主干路 40-60, 次干路 30-50,
    支路 20-40 km/h), to reflect congested urban operation.
DRIVE_DEFAULT_SPEED_KPH : float
    25 km/h, for untagged roads (e.g. a road-centreline layer without classes).
ACCESS_SPEED_KPH : float | None
    Speed of the straight-line access leg between a point and the road
    network. ``None`` (default) means walking speed, for every mode.

Network
-------
EXCLUDED_HIGHWAYS : dict[str, frozenset[str]]
    OSM ``highway`` values dropped per mode.
SNAP_TOLERANCE_M : float
    1.0 m. Line endpoints of a road-centreline layer closer than this are
    merged into one node.
OSM_MAX_MEMORY_MB : float | None
    None. Memory an OSM extract may need to be read, in MB; None means the
    RAM available when it is read. A larger extract (estimated from its file
    size) is refused with the advice to clip it with ``osmium extract``.

Points and thresholds
---------------------
MAX_SNAP_M : float
    500 m. Points (cells, institutions) farther than this from any road are
    reported as unsnapped and are never silently dropped.
SNAP_WARN_M : float
    300 m. Institutions snapped from farther than this trigger a warning.
THRESHOLDS_MINUTES : tuple[float, ...]
    (5, 10, 15). The largest is the service threshold: 15 minutes for the
    15-minute medical service circle (15分钟医疗服务圈).
ISOCHRONE_CELL_M : float
    50 m. Cell of the grid on which isochrones are traced from the coverage
    travel times (a reached cell is drawn whole).
Analysis defaults
-----------------
SITING_CELL_SIZE_M : float
    500 m. Default demand cell of ``planner site`` (keeps the MIP small).
GRID_CELL_SIZE_M : float
    1,000 m. Default demand cell of ``planner grid`` (keeps the contiguity
    MIP small).
CANDIDATE_SPACING_M : float
    500 m. Spacing of road-node candidate sites.
SITING_TIME_LIMIT_S : float
    300 s. Solver time limit per siting solve.
GRID_TIME_LIMIT_S : float
    600 s. Safety-net time limit of the grid assignment; its work bounds end a
    normal solve first.
GRID_TOLERANCE : float
    0.2. Each lead hospital's load stays within ±20 % of its capacity share.
EXCLUSION_OSM_TAGS : dict[str, tuple[tuple[str, str | None], ...]]
    Where a new site may not go, read from the OSM extract by ``planner site
    --exclude osm:water,park``: per kind, the (key, value) tags of its areas
    (value None: any value). ``water``: natural=water, water=*,
    landuse=reservoir/basin; ``park``: leisure=park, landuse=grass/
    recreation_ground; ``forest``: landuse=forest, natural=wood;
    ``protected``: boundary=protected_area, leisure=nature_reserve (OSM wiki
    tag definitions).
SUITABILITY_COLUMN : str
    ``"weight"``. Column of a suitability polygon layer holding the weight.
SUITABILITY_DEFAULT_WEIGHT : float
    1.0. Weight of a candidate outside every suitability polygon, or on a
    raster's nodata or outside it (neutral; weight 0 excludes a candidate).
SUITABILITY_TIE_PERSONS : float
    0.025 persons. The most the suitability weights of all chosen sites
    together add to a coverage objective, so they only break ties between
    solutions covering equally many people (a site covering fewer than
    ``planner.siting.ADDS_MIN_PERSONS`` = 0.05 persons already adds nobody).

Institution columns
-------------------
COUNT_COLUMN_ALIASES : dict[str, tuple[str, ...]]
    Column names (compared without case) under which an institutions file
    gives each institution's beds, doctors and nurses: ``planner.institutions``
    keeps them as ``beds``, ``doctors`` and ``nurses`` for the per-1,000-residents
    norms (:mod:`planner.norms`). The first alias that exists wins.

Choices
-------
MODES, TIERS, BASEMAPS, COORDS, OBJECTIVES, CONTIGUITIES, ALLOCATIONS : tuple[str, ...]
    The accepted names of travel modes, institution tiers, map basemaps,
    coordinate datums, siting objectives, grid contiguities and capacity
    allocations (``planner coverage --allocation``, see
    :mod:`planner.capacity`); the CLI's choices come from here. The basemap
    ``auto`` (the default) is ``amap`` for a study area in China and ``osm``
    elsewhere (:func:`planner.maps.basemaps.resolve_basemap`).

Limits
------
LIMITS : dict[str, Limit]
    The accepted range of every number a user sets, by its keyword name
    (``speed_kph``, ``max_snap_m``, ``cell_size_m``, ``minutes``, ...), with
    its unit. The CLI options, scenario files and batch files all check
    against this one table, through :func:`planner._validate.check_limit`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

WALK_SPEED_KPH: float = 4.0  # km/h
EBIKE_SPEED_KPH: float = 15.0  # km/h
DRIVE_SPEEDS_KPH: dict[str, float] = {  # km/h
    "motorway": 60.0,
    "motorway_link": 40.0,
    "trunk": 50.0,
    "trunk_link": 35.0,
    "primary": 40.0,
    "primary_link": 30.0,
    "secondary": 30.0,
    "secondary_link": 25.0,
    "tertiary": 25.0,
    "tertiary_link": 20.0,
    "unclassified": 20.0,
    "residential": 20.0,
    "living_street": 10.0,
    "service": 15.0,
    "road": 20.0,
    "track": 15.0,
}
DRIVE_DEFAULT_SPEED_KPH: float = 25.0  # km/h
ACCESS_SPEED_KPH: float | None = None  # km/h; None = walking speed

_NEVER = frozenset({"construction", "proposed", "abandoned", "raceway", "bus_guideway",
                    "platform", "corridor", "elevator", "escape", "razed", "disused"})
EXCLUDED_HIGHWAYS: dict[str, frozenset[str]] = {
    "walk": _NEVER | {"motorway", "motorway_link"},
    "ebike": _NEVER | {"motorway", "motorway_link", "steps"},
    "drive": _NEVER | {"footway", "pedestrian", "steps", "path", "cycleway", "bridleway",
                       "sidewalk", "crossing"},
}
SNAP_TOLERANCE_M: float = 1.0  # metres
OSM_MAX_MEMORY_MB: float | None = None  # MB; None = the RAM available

MAX_SNAP_M: float = 500.0  # metres
SNAP_WARN_M: float = 300.0  # metres
THRESHOLDS_MINUTES: tuple[float, ...] = (5.0, 10.0, 15.0)  # minutes
ISOCHRONE_CELL_M: float = 50.0  # metres

MODES: tuple[str, ...] = ("walk", "ebike", "drive")
TIERS: tuple[str, ...] = ("tertiary", "secondary", "primary", "station")
# the other choices the CLI offers, here so that `planner --help` reads them without importing maps/ or pipeline/
BASEMAPS: tuple[str, ...] = ("auto", "osm", "amap", "tianditu", "none")  # re-exported by planner.maps; auto: amap in China
COORDS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")  # datums of input coordinates (planner.datum takes aliases too)
OBJECTIVES: tuple[str, ...] = ("coverage", "mean-time")  # of planner.pipeline.run_siting
CONTIGUITIES: tuple[str, ...] = ("queen", "rook")  # of planner.pipeline.run_grids
ALLOCATIONS: tuple[str, ...] = ("optimal", "ordered")  # = planner.capacity.METHODS
TIER_LABELS_ZH: dict[str, str] = {
    "tertiary": "三级医院",
    "secondary": "二级医院",
    "primary": "基层医疗卫生机构(社区卫生服务中心/乡镇卫生院)",
    "station": "社区卫生服务站/村卫生室/诊所",
}

COUNT_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {  # kind of count -> column names, first match wins
    "beds": ("beds", "床位", "床位数", "实有床位", "编制床位"),
    "doctors": ("doctors", "医生", "医生数", "执业医师", "执业医师数", "执业(助理)医师"),
    "nurses": ("nurses", "护士", "护士数", "注册护士", "注册护士数"),
}

ATTRIBUTION_OSM: str = "© OpenStreetMap contributors (ODbL 1.0)"
ATTRIBUTION_WORLDPOP: str = "Population: WorldPop (www.worldpop.org), CC BY 4.0"

SITING_CELL_SIZE_M: float = 500.0  # metres
GRID_CELL_SIZE_M: float = 1000.0  # metres
CANDIDATE_SPACING_M: float = 500.0  # metres
SITING_TIME_LIMIT_S: float = 300.0  # seconds per solve
GRID_TIME_LIMIT_S: float = 600.0  # seconds; a safety net only
GRID_TOLERANCE: float = 0.2  # relative: ±20 % of the capacity share
EXCLUSION_OSM_TAGS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "water": (("natural", "water"), ("water", None), ("landuse", "reservoir"), ("landuse", "basin")),
    "park": (("leisure", "park"), ("landuse", "grass"), ("landuse", "recreation_ground")),
    "forest": (("landuse", "forest"), ("natural", "wood")),
    "protected": (("boundary", "protected_area"), ("leisure", "nature_reserve")),
}
SUITABILITY_COLUMN: str = "weight"
SUITABILITY_DEFAULT_WEIGHT: float = 1.0  # unitless; neutral
SUITABILITY_TIE_PERSONS: float = 0.025  # persons: the largest total weight term of a coverage objective


class Limit(NamedTuple):
    """The accepted range of one user-settable number.

    Attributes
    ----------
    min, max
        Bounds, inclusive (``max`` may be ``math.inf``).
    unit
        Unit of the value, e.g. ``"km/h"``.
    what
        What the number sets, for messages.
    min_exclusive
        When True the value must be strictly above ``min``.
    """

    min: float
    max: float
    unit: str
    what: str
    min_exclusive: bool = False

    def contains(self, value: float) -> bool:
        """Return True if `value` (a finite number or ``math.inf`` when unbounded) lies in the range.

        >>> LIMITS["speed_kph"].contains(3.2), LIMITS["speed_kph"].contains(0)
        (True, False)
        """
        v = float(value)
        if math.isnan(v):
            return False
        above = v > self.min if self.min_exclusive else v >= self.min
        return above and v <= self.max

    def text(self) -> str:
        """Describe the range with its unit.

        >>> LIMITS["max_snap_m"].text(), LIMITS["minutes"].text(), LIMITS["retries"].text()
        ('1-5,000 m', 'above 0 up to 240 min', '≥ 0')
        """
        unit = f" {self.unit}" if self.unit else ""
        if math.isinf(self.max):
            return f"{'>' if self.min_exclusive else '≥'} {self.min:,g}{unit}"
        if self.min_exclusive:
            return f"above {self.min:,g} up to {self.max:,g}{unit}"
        return f"{self.min:,g}-{self.max:,g}{unit}"


LIMITS: dict[str, Limit] = {
    "speed_kph": Limit(0.5, 150.0, "km/h", "one speed on every road"),
    "max_snap_m": Limit(1.0, 5000.0, "m", "largest distance from a point to a road"),
    "cell_size_m": Limit(1.0, 10_000.0, "m", "demand cell size"),
    "minutes": Limit(0.0, 240.0, "min", "travel-time threshold", min_exclusive=True),
    "candidate_spacing_m": Limit(10.0, 50_000.0, "m", "spacing of road-node candidate sites"),
    "min_spacing_m": Limit(0.0, 50_000.0, "m", "smallest distance of a candidate to an existing site"),
    "new_sites": Limit(0.0, math.inf, "", "number of new sites"),
    "target_pct": Limit(0.0, 100.0, "%", "share of the population to cover"),
    "new_site_capacity": Limit(0.0, math.inf, "persons", "capacity of a candidate site without one"),
    "persons_per_unit": Limit(0.0, math.inf, "persons", "persons one capacity unit (bed, doctor) serves",
                              min_exclusive=True),
    "time_limit_s": Limit(0.0, 86_400.0, "s", "solver time limit", min_exclusive=True),
    "tolerance": Limit(0.0, 1.0, "", "load band around each lead's capacity share"),
    "max_nodes": Limit(0.0, math.inf, "", "branch-and-bound nodes of the MIP"),
    "workers": Limit(1.0, math.inf, "", "workers of the local dask cluster"),
    "retries": Limit(0.0, math.inf, "", "retries of a failed batch case"),
    "isochrone_cell_m": Limit(1.0, 1000.0, "m", "isochrone grid cell size"),
}
