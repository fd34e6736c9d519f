"""The one HiGHS wrapper of the siting and grid models: build from sparse arrays, solve, status, bound, gap, work.

A solve has one meaning everywhere: :func:`run` returns the solution, also when a limit stopped it (status
``"time_limit"`` and ``time_limited=True`` for the clock, ``"work_limit"`` for a work bound such as the node
bound), and raises :class:`~planner._errors.InfeasibleModelError` only when there is no feasible solution
(``cause`` says why). :func:`set_deterministic` makes a MIP end by work, not by the clock.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from ._errors import InfeasibleModelError

logger = logging.getLogger(__name__)

_BANNER_SHOWN = False  # HiGHS prints a banner to stdout when the first Highs object of a process is made


def import_highspy() -> Any:
    """Import highspy or raise an ImportError with install lines.

    Returns
    -------
    highspy
        The module.
    """
    try:
        import highspy
    except ImportError as err:  # pragma: no cover - depends on the environment
        msg = ("the siting and grid models need the HiGHS solver (highspy); fix: `conda install -c conda-forge highspy` "
               "or `pip install highspy`")
        raise ImportError(msg) from err
    return highspy


def new_highs() -> Any:
    """Make a silent Highs object, sending HiGHS' one-time banner to /dev/null so it never mixes with CLI output.

    Returns
    -------
    h
        A ``highspy.Highs`` with ``output_flag`` off.
    """
    global _BANNER_SHOWN
    hp = import_highspy()
    if _BANNER_SHOWN:
        h = hp.Highs()
    else:
        sys.stdout.flush()
        try:
            saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
        except OSError:  # pragma: no cover - no file descriptor 1
            h = hp.Highs()
        else:
            try:
                os.dup2(devnull, 1)
                h = hp.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
                os.close(devnull)
        _BANNER_SHOWN = True
    h.setOptionValue("output_flag", False)
    return h


def set_deterministic(h: Any, *, time_limit_s: float, max_nodes: int | None = None, random_seed: int = 0) -> None:
    """Make a MIP solve end by work, not by the clock: a node bound, one search thread, a fixed seed.

    HiGHS is deterministic for a given model, options and version as long as nothing stops it by wall time: the
    node bound (``mip_max_nodes``) ends it at the same point on every run, while ``time_limit`` stays as a safety
    net whose stop the caller must report as not reproducible. ``parallel="off"`` keeps the simplex and the MIP
    search serial (the ``threads`` option cannot be changed once HiGHS' thread pool exists in the process).

    Parameters
    ----------
    h
        A ``highspy.Highs`` holding the model.
    time_limit_s
        Safety-net wall-time limit in seconds.
    max_nodes
        Branch-and-bound node bound (None: none).
    random_seed
        HiGHS' random seed.
    """
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("parallel", "off")
    h.setOptionValue("random_seed", int(random_seed))
    if max_nodes is not None:
        h.setOptionValue("mip_max_nodes", int(max_nodes))


def log_mip_progress(h: Any, log: logging.Logger, what: str, *, fmt: Callable[[float], str] = "{:.6g}".format,
                     max_nodes: int | None = None, every_s: float = 5.0) -> None:
    """Log the MIP's nodes, incumbent, bound and gap at most every `every_s` seconds while HiGHS works.

    The callback only reads HiGHS' state (it never interrupts), so the solve is the same with or without it.

    Parameters
    ----------
    h
        A ``highspy.Highs`` about to run.
    log
        Logger receiving the INFO lines.
    what
        Name of the model in the lines.
    fmt
        Formats an objective value (incumbent, bound) for the lines.
    max_nodes
        The node bound, shown with the node count.
    every_s
        Seconds between lines.
    """
    last = [time.perf_counter()]
    of = f" of at most {max_nodes:,}" if max_nodes is not None else ""

    def _report(event: Any) -> None:
        now = time.perf_counter()
        if now - last[0] < every_s:
            return
        last[0] = now
        d = event.data_out
        best = fmt(d.mip_primal_bound) if math.isfinite(d.mip_primal_bound) else "none yet"
        gap = f"{100 * d.mip_gap:.2f} %" if math.isfinite(d.mip_gap) else "-"
        log.info("%s: %s nodes%s, incumbent %s, bound %s, gap %s (%.0f s)", what, f"{d.mip_node_count:,}", of, best,
                 fmt(d.mip_dual_bound), gap, d.running_time)

    h.cbMipInterrupt.subscribe(_report)


# --------------------------------------------------------------------------------------------------------------------
# the one LP/MIP wrapper: build from sparse arrays, solve, read status, bound, gap and work
# --------------------------------------------------------------------------------------------------------------------

SolveStatus = Literal["optimal", "work_limit", "time_limit"]
FailCause = Literal["infeasible", "time_limit", "work_limit", "error"]


@dataclass(frozen=True, eq=False)
class Lp:
    """A linear or mixed-integer program in sparse form: minimise (or maximise) ``cost @ x + offset``.

    Attributes
    ----------
    cost, lower, upper
        Objective coefficient and bounds of each column.
    A
        Constraint matrix, rows × columns (any scipy sparse format; duplicates are summed).
    row_lower, row_upper
        Bounds of each row (``-inf``/``inf`` where open).
    integer
        True for the integer columns; None: all continuous (an LP).
    maximize
        Maximise instead of minimise.
    offset
        Constant added to the objective.
    """

    cost: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    A: Any
    row_lower: np.ndarray
    row_upper: np.ndarray
    integer: np.ndarray | None = None
    maximize: bool = False
    offset: float = 0.0

    @classmethod
    def from_coo(cls, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, **fields: Any) -> Lp:
        """Build from the coordinates of the non-zeros; the shape comes from `row_lower` and `cost`.

        Parameters
        ----------
        rows, cols, vals
            Row, column and value of each non-zero (duplicates are summed).
        **fields
            The other attributes of :class:`Lp`.

        Returns
        -------
        lp
            The program.
        """
        shape = (len(fields["row_lower"]), len(fields["cost"]))
        return cls(A=sp.coo_array((vals, (rows, cols)), shape=shape), **fields)

    @property
    def is_mip(self) -> bool:
        """Whether any column is integer."""
        return self.integer is not None and bool(np.any(self.integer))


@dataclass(frozen=True, eq=False)
class Solution:
    """What HiGHS returned, with one meaning of a stop everywhere.

    Attributes
    ----------
    status
        ``"optimal"`` (proven within the gap), ``"work_limit"`` (a work bound, e.g. ``mip_max_nodes``, stopped
        it: reproducible) or ``"time_limit"`` (the clock stopped it: may differ between runs). A stop returns the
        incumbent; without one, :func:`run` raises instead.
    time_limited
        True when the clock stopped the solve.
    x
        Column values.
    objective
        Objective value (with the offset).
    bound
        The dual bound for a MIP (may be ±inf when unknown), the objective for an LP.
    gap
        Relative gap ``|bound - objective| / |objective|`` (HiGHS' definition; 0 when optimal, inf when unknown).
    solve_s
        Seconds inside HiGHS.
    nodes
        Branch-and-bound nodes (0 for an LP).
    """

    status: SolveStatus
    time_limited: bool
    x: np.ndarray
    objective: float
    bound: float
    gap: float
    solve_s: float
    nodes: int


def _f64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def build(lp: Lp, *, what: str, time_limit_s: float, mip_gap: float, ipm: bool = False, deterministic: bool = False,
          max_nodes: int | None = None) -> Any:
    """Make a silent Highs object holding `lp` (one ``passModel`` call with CSC arrays) and set its options.

    With `ipm`, LPs use the interior-point method without crossover and MIPs solve their root LP with it: on
    large coverage models (tens of thousands of merged cells) the root LP is degenerate and dual simplex can take
    minutes where IPM takes seconds. With `deterministic`, :func:`set_deterministic` applies (serial, fixed seed,
    `max_nodes`), so the node bound and not the clock ends the solve.

    Parameters
    ----------
    lp
        The program.
    what
        Name of the model in messages and log lines.
    time_limit_s
        Wall-time limit in seconds (``inf``: none).
    mip_gap
        Relative gap at which a MIP counts as optimal.
    ipm
        Use the interior-point method (see above).
    deterministic
        End the solve by work: see :func:`set_deterministic`.
    max_nodes
        Branch-and-bound node bound (None: none).

    Returns
    -------
    h
        The ``highspy.Highs`` object, ready to :func:`run`.

    Raises
    ------
    InfeasibleModelError
        If HiGHS rejects the arrays.
    """
    hp = import_highspy()
    h = new_highs()
    n, nr = len(lp.cost), len(lp.row_lower)
    A = sp.csc_array(lp.A)
    A.sum_duplicates()
    A.sort_indices()
    integrality = np.zeros(n, dtype=np.int32) if lp.integer is None else np.ascontiguousarray(lp.integer, dtype=np.int32)
    st = h.passModel(n, nr, int(A.nnz), 1, -1 if lp.maximize else 1, float(lp.offset), _f64(lp.cost), _f64(lp.lower),
                     _f64(lp.upper), _f64(lp.row_lower), _f64(lp.row_upper),
                     np.ascontiguousarray(A.indptr[:-1], dtype=np.int32), np.ascontiguousarray(A.indices, dtype=np.int32),
                     _f64(A.data), integrality)
    if st == hp.HighsStatus.kError:
        msg = f"{what}: HiGHS rejected the model (status 'kError'); fix: check the inputs for non-finite costs or weights"
        raise InfeasibleModelError(msg, cause="error")
    if deterministic:
        set_deterministic(h, time_limit_s=time_limit_s, max_nodes=max_nodes)
    else:
        h.setOptionValue("time_limit", float(time_limit_s))
        if max_nodes is not None:
            h.setOptionValue("mip_max_nodes", int(max_nodes))
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    if ipm:
        h.setOptionValue("mip_lp_solver", "ipm")
        h.setOptionValue("solver", "ipm")
        h.setOptionValue("run_crossover", "off")
    return h


def run(h: Any, *, what: str, is_mip: bool, start: np.ndarray | None = None, log: logging.Logger | None = None,
        level: int = logging.INFO, fix_infeasible: str = "check the inputs",
        fix_no_solution: str = "raise time_limit_s") -> Solution:
    """Run HiGHS and check its status: the solution, or the one :class:`InfeasibleModelError` when there is none.

    A solve stopped by the clock or by a work bound returns its incumbent (status ``"time_limit"`` with
    ``time_limited=True``, or ``"work_limit"``); only a solve with no feasible solution raises, with ``cause``
    ``"infeasible"`` (proven), ``"time_limit"`` or ``"work_limit"`` (stopped before finding one) or ``"error"``.

    Parameters
    ----------
    h
        A ``highspy.Highs`` from :func:`build` (it may be run again after changing bounds).
    what
        Name of the model in messages and log lines.
    is_mip
        Whether the model has integer columns (reads the MIP bound, gap and nodes).
    start
        A starting solution (all columns), e.g. a heuristic one.
    log
        Logger for the result line (``planner._highs``'s by default).
    level
        Logging level of the result line.
    fix_infeasible, fix_no_solution
        The fix given in the message when the model is infeasible, or stopped without a solution.

    Returns
    -------
    solution
        The status, values, objective, bound, gap and work.

    Raises
    ------
    InfeasibleModelError
        When HiGHS returns no feasible solution; ``err.cause`` says why.
    """
    hp = import_highspy()
    if start is not None:
        h.setSolution(len(start), np.arange(len(start), dtype=np.int32), _f64(start))
    t0 = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - t0
    ms = h.getModelStatus()
    name = h.modelStatusToString(ms)
    info = h.getInfo()
    MS = hp.HighsModelStatus
    has_solution = info.primal_solution_status == hp.SolutionStatus.kSolutionStatusFeasible
    nodes = int(info.mip_node_count) if is_mip and info.mip_node_count >= 0 else 0
    clock = ms in (MS.kTimeLimit, MS.kInterrupt)
    work = ms in (MS.kIterationLimit, MS.kSolutionLimit)
    (log or logger).log(level, "%s: HiGHS %s in %.3f s (%s nodes)", what, name, seconds, f"{nodes:,}")
    status: SolveStatus
    if ms == MS.kOptimal:
        status = "optimal"
    elif (clock or work) and has_solution:
        status = "time_limit" if clock else "work_limit"
    elif ms in (MS.kInfeasible, MS.kUnboundedOrInfeasible):
        msg = f"{what}: HiGHS found the model infeasible (status '{name}'); fix: {fix_infeasible}"
        raise InfeasibleModelError(msg, cause="infeasible")
    elif clock or work:
        value = h.getOptionValue("time_limit")  # (status, value) in some highspy versions
        limit = f"the time limit of {float(value[-1] if isinstance(value, tuple) else value):g} s" if clock else \
            "its work bound"
        msg = f"{what}: HiGHS reached {limit} before finding any feasible solution; fix: {fix_no_solution}"
        raise InfeasibleModelError(msg, cause="time_limit" if clock else "work_limit")
    else:
        msg = f"{what}: HiGHS stopped with status '{name}' and no usable solution; fix: check the inputs or report a bug"
        raise InfeasibleModelError(msg, cause="error")
    x = np.asarray(h.getSolution().col_value, dtype=float)
    obj = float(info.objective_function_value)
    if is_mip:
        bound, gap = float(info.mip_dual_bound), float(info.mip_gap)
        if not math.isfinite(gap):
            gap = 0.0 if status == "optimal" else math.inf
    else:
        bound, gap = obj, 0.0 if status == "optimal" else math.inf
    return Solution(status=status, time_limited=clock, x=x, objective=obj, bound=bound, gap=max(gap, 0.0),
                    solve_s=seconds, nodes=nodes)
