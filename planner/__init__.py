"""planner: 15-minute medical service circle coverage for Chinese medical consortiums.

Data flows one way: :mod:`~planner.io` → :mod:`~planner.network` →
:mod:`~planner.travel_time` → analyses (:mod:`~planner.coverage`,
:mod:`~planner.isochrones`, :mod:`~planner.siting`) → :mod:`~planner.pipeline`
→ :mod:`~planner.scenarios` → :mod:`~planner.maps`, :mod:`~planner.exports`
and the CLI.

The submodules load on first use (PEP 562), so ``import planner`` and
``planner --help`` stay fast and import no heavy dependency (numpy,
pandas, geopandas, osmnx, matplotlib, dask, folium); ``planner.pipeline``
and ``from planner import network`` work as usual, and the CLI reads
``planner.pipeline.run_case`` and the like only when a command runs. Every
public exception is importable from here
(``from planner import InvalidValueError``).

>>> import planner
>>> planner.settings.MODES
('walk', 'ebike', 'drive')
>>> issubclass(planner.InvalidValueError, (ValueError, planner.PlannerError))
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    EmptyNetworkError,
    InfeasibleModelError,
    InputFileError,
    InvalidValueError,
    MissingColumnError,
    MissingDependencyError,
    NoCrsError,
    OutputFolderError,
    PlannerError,
    UnreachableFacilityError,
)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time these load lazily through __getattr__
    from . import (
        accessibility,
        assignment,
        batch,
        candidates,
        capacity,
        coverage,
        credits,
        datasets,
        datum,
        demand,
        exports,
        institutions,
        io,
        isochrones,
        maps,
        network,
        norms,
        pipeline,
        referral,
        scenarios,
        settings,
        siting,
        tables,
        travel_time,
    )
    from ._version import __version__

__all__ = [
    "EmptyNetworkError",
    "InfeasibleModelError",
    "InputFileError",
    "InvalidValueError",
    "MissingColumnError",
    "MissingDependencyError",
    "NoCrsError",
    "OutputFolderError",
    "PlannerError",
    "UnreachableFacilityError",
    "__version__",
    "accessibility",
    "assignment",
    "batch",
    "candidates",
    "capacity",
    "coverage",
    "credits",
    "datasets",
    "datum",
    "demand",
    "exports",
    "institutions",
    "io",
    "isochrones",
    "maps",
    "network",
    "norms",
    "pipeline",
    "referral",
    "scenarios",
    "settings",
    "siting",
    "tables",
    "travel_time",
]

_SUBMODULES = frozenset(__all__[__all__.index("accessibility"):])  # the modules, loaded on first use


def __getattr__(name: str) -> Any:
    """Import a public submodule, or read ``__version__``, on first access (PEP 562)."""
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)  # the import also binds it in this namespace
    if name == "__version__":  # importlib.metadata takes a tenth of `planner --help`: read it when asked
        return importlib.import_module("._version", __name__).__version__
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    """List the public names, including submodules not loaded yet."""
    return sorted(set(globals()) | set(__all__))
