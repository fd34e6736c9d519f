"""The HiGHS solver, shared by the siting and grid models: import with install advice, and a silent instance."""

from __future__ import annotations

import os
import sys
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
