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
ISOCHRONE_BUFFER_M : float
    60 m. Half-width of the band drawn around reached road edges.
"""

from __future__ import annotations

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

MAX_SNAP_M: float = 500.0  # metres
SNAP_WARN_M: float = 300.0  # metres
THRESHOLDS_MINUTES: tuple[float, ...] = (5.0, 10.0, 15.0)  # minutes
ISOCHRONE_BUFFER_M: float = 60.0  # metres

MODES: tuple[str, ...] = ("walk", "ebike", "drive")
TIERS: tuple[str, ...] = ("tertiary", "secondary", "primary", "station")
TIER_LABELS_ZH: dict[str, str] = {
    "tertiary": "三级医院",
    "secondary": "二级医院",
    "primary": "基层医疗卫生机构(社区卫生服务中心/乡镇卫生院)",
    "station": "社区卫生服务站/村卫生室/诊所",
}

ATTRIBUTION_OSM: str = "© OpenStreetMap contributors (ODbL 1.0)"
ATTRIBUTION_WORLDPOP: str = "Population: WorldPop (www.worldpop.org), CC BY 4.0"
