"""planner: 15-minute medical service circle coverage for Chinese medical consortiums.

Data flows one way: :mod:`~planner.io` → :mod:`~planner.network` →
:mod:`~planner.travel_time` → analyses (:mod:`~planner.coverage`,
:mod:`~planner.isochrones`) → :mod:`~planner.pipeline` → :mod:`~planner.maps`
and the CLI.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import (  # noqa: E402
    coverage,
    datasets,
    datum,
    demand,
    institutions,
    io,
    isochrones,
    network,
    settings,
    travel_time,
)
from ._errors import PlannerError  # noqa: E402

__all__ = [
    "PlannerError",
    "__version__",
    "coverage",
    "datasets",
    "datum",
    "demand",
    "institutions",
    "io",
    "isochrones",
    "network",
    "settings",
    "travel_time",
]
