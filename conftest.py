"""Root pytest hooks, for every item: tests, the doctests in ``planner/`` and the notebooks."""

from __future__ import annotations

import os
import shutil
import tempfile

_CACHE_ENV = "PLANNER_CACHE_DIR"
_state: dict[str, str | None] = {}


def pytest_configure(config):
    """Point the road-network cache to a throwaway folder, so that no test run writes to ~/.cache."""
    _state["old"] = os.environ.get(_CACHE_ENV)
    _state["dir"] = tempfile.mkdtemp(prefix="planner-test-cache-")
    os.environ[_CACHE_ENV] = _state["dir"]


def pytest_unconfigure(config):
    """Restore the environment and remove the folder."""
    if _state.get("old") is None:
        os.environ.pop(_CACHE_ENV, None)
    else:
        os.environ[_CACHE_ENV] = _state["old"]
    if _state.get("dir"):
        shutil.rmtree(_state["dir"], ignore_errors=True)
