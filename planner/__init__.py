"""planner: 15-minute medical service circle coverage for Chinese medical consortiums.

Data flows one way: :mod:`~planner.io` → :mod:`~planner.network` →
:mod:`~planner.travel_time` → analyses (:mod:`~planner.coverage`,
:mod:`~planner.isochrones`, :mod:`~planner.siting`) → :mod:`~planner.pipeline`
→ :mod:`~planner.scenarios` → :mod:`~planner.maps`, :mod:`~planner.exports`
and the CLI.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import (  # noqa: E402
    accessibility,
    assignment,
    candidates,
    coverage,
    datasets,
    datum,
    demand,
    exports,
    institutions,
    io,
    isochrones,
    maps,
    network,
    pipeline,
    scenarios,
    settings,
    siting,
    travel_time,
)
from ._errors import PlannerError  # noqa: E402

__all__ = [
    "PlannerError",
    "__version__",
    "accessibility",
    "assignment",
    "candidates",
    "coverage",
    "datasets",
    "datum",
    "demand",
    "exports",
    "institutions",
    "io",
    "isochrones",
    "maps",
    "network",
    "pipeline",
    "scenarios",
    "settings",
    "siting",
    "travel_time",
]
