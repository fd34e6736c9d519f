"""The pipelines: read a case, compute, return a frozen run. They never write files.

* :mod:`~planner.pipeline.case` - :class:`Case` (inputs + analysis settings,
  the one case schema); :func:`load_case` reads and checks the
  inputs into a :class:`CaseInputs` (and :func:`load_boundaries`,
  :func:`check_datum`);
* :mod:`~planner.pipeline.coverage` - :func:`run_coverage` / :func:`run_case` (and
  :func:`analyse_case` for a loaded, possibly edited case) returns a
  :class:`CoverageRun`;
* :mod:`~planner.pipeline.site` - :func:`run_siting` / :func:`site_case` returns a :class:`SitingRun`;
* :mod:`~planner.pipeline.grid` - :func:`run_grids` / :func:`grid_case` returns a :class:`GridRun`;
* :mod:`~planner.pipeline.referral` - :func:`run_referral` / :func:`referral_case` returns a :class:`ReferralRun`.

``run_coverage``, ``run_siting`` and ``run_grids`` take files as keywords and
build a :class:`Case` from them; ``run_case``, ``site_case`` and ``grid_case``
take the :class:`Case` itself, so one case can feed all three analyses.

Writing a run is :mod:`planner.exports`' job (``write_coverage_outputs``,
``write_siting_outputs``, ``write_grid_outputs``,
``write_referral_outputs``).

>>> from planner import pipeline
>>> pipeline.CoverageRun.__dataclass_params__.frozen
True
"""

from __future__ import annotations

from .case import Case, CaseInputs, check_datum, load_boundaries, load_case
from .coverage import CoverageRun, analyse_case, run_case, run_coverage
from .grid import GridRun, grid_case, load_fixed_assignments, run_grids
from .referral import ReferralRun, referral_case, run_referral
from .site import SitingRun, run_siting, site_case

__all__ = [
    "Case",
    "CaseInputs",
    "CoverageRun",
    "GridRun",
    "ReferralRun",
    "SitingRun",
    "analyse_case",
    "check_datum",
    "load_boundaries",
    "load_case",
    "load_fixed_assignments",
    "referral_case",
    "run_case",
    "run_coverage",
    "run_grids",
    "run_referral",
    "run_siting",
    "grid_case",
    "site_case",
]
