"""Exception hierarchy for `planner`.

Every error a user can cause derives from :class:`PlannerError`, and most also
derive from a built-in exception so that callers can catch them naturally.
Messages are single lines that say what went wrong, where (file, column, row)
and how to fix it; the CLI prints them and exits with code 2.
"""

from __future__ import annotations


class PlannerError(Exception):
    """Base class for errors raised by `planner`."""


class InputFileError(ValueError, PlannerError):
    """An input file is missing, unreadable or of an unknown format."""


class MissingColumnError(ValueError, PlannerError):
    """A required column is missing from an input table."""


class InvalidValueError(ValueError, PlannerError):
    """An input value is out of range, non-numeric or otherwise unusable."""


class NoCrsError(ValueError, PlannerError):
    """A spatial input has no coordinate reference system."""


class EmptyNetworkError(ValueError, PlannerError):
    """The road network is empty after loading and filtering."""


class UnreachableFacilityError(ValueError, PlannerError):
    """No facility can be attached to the network or reached."""


class InfeasibleModelError(RuntimeError, PlannerError):
    """An optimisation model is infeasible, or the solver found no feasible solution.

    The one such error of the siting and grid models. ``cause`` tells them apart: ``"infeasible"`` (proven
    by the solver or by a check before it), ``"time_limit"`` or ``"work_limit"`` (stopped before any feasible
    solution was found), ``"error"`` (the solver failed).
    """

    def __init__(self, *args: object, cause: str = "infeasible") -> None:
        super().__init__(*args)
        self.cause = cause


class MissingDependencyError(ImportError, PlannerError):
    """A required package or a file it ships (e.g. the CJK map font) is missing."""


class OutputFolderError(ValueError, PlannerError):
    """An output folder cannot receive a run's results (a file, read-only, holds inputs or foreign files, busy)."""
