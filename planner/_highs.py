"""The HiGHS solver, shared by the siting and grid models: import with install advice, a silent instance, work bounds."""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

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
