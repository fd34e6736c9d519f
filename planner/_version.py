"""The installed version of `planner`, read from the package metadata.

Modules that record the version (``summary.json``, the cache keys) import it
from here, not from :mod:`planner`, so that importing them never imports the
package's ``__init__`` in a circle.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__: str = version("planner")
except PackageNotFoundError:  # an uninstalled checkout (e.g. PYTHONPATH=.)
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
