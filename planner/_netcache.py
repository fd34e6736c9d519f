"""Disk cache of road networks, so that a second run on the same city skips parsing.

An entry is one ``.npz`` file (numpy, no pickles) holding a
:class:`~planner.network.RoadNetwork` without its speeds (they are set from
the settings on every load, so a speed change never needs a rebuild), plus
the warnings logged when it was built, which are logged again on a hit.

The key is the SHA-256 of the source file's bytes together with the mode, the
class column, the snap tolerance, the mode's excluded highway classes, the
planner version, :data:`FORMAT_VERSION` and the source code of the modules
that build networks (so that a development checkout whose version does not
change is not served networks built by older code): a changed source,
setting or builder gives another key, so an entry is never used stale. The folder is
``$PLANNER_CACHE_DIR``, else ``~/.cache/planner/networks``. Entries are
written to a temporary file and renamed into place; an unreadable entry is
logged, removed and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS

from . import settings
from ._publish import file_sha256
from ._version import __version__

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the stored arrays or their meaning change
CACHE_ENV = "PLANNER_CACHE_DIR"
_BUILDERS = ("_osm.py", "network.py", "_netcache.py")  # modules whose code shapes a cached network


def cache_dir() -> Path:
    """Return the cache folder: ``$PLANNER_CACHE_DIR``, else ``~/.cache/planner/networks``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "planner" / "networks"


@lru_cache(maxsize=1)
def _code_sha256() -> str:
    h = hashlib.sha256()
    for name in _BUILDERS:
        try:
            h.update((Path(__file__).parent / name).read_bytes())
        except OSError:  # an install without sources: the version alone
            h.update(name.encode())
    return h.hexdigest()


def cache_key(path: Path, *, mode: str, class_column: str | None, snap_tolerance_m: float | None) -> str:
    """Return the entry name for a source file and the options and settings its network depends on."""
    parts = {
        "file": file_sha256(path), "mode": mode, "class_column": class_column,
        "snap_tolerance_m": None if snap_tolerance_m is None else float(snap_tolerance_m),
        "excluded": sorted(settings.EXCLUDED_HIGHWAYS[mode]), "planner": __version__, "format": FORMAT_VERSION,
        "code": _code_sha256(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def load(key: str) -> dict[str, Any] | None:
    """Return the cached RoadNetwork fields (speeds aside) and ``notes``, or None when absent or unreadable."""
    path = cache_dir() / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
            fields = _decode(z)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        logger.warning("%s: ignoring and removing an unreadable road-network cache file (%s)", path, exc)
        path.unlink(missing_ok=True)
        return None
    logger.info("loaded the road network from the cache %s", path)
    return fields


def store(key: str, fields: dict[str, Any]) -> Path | None:
    """Write an entry atomically; return its path, or None (logged) when the folder is not writable."""
    folder = cache_dir()
    arrays = _encode(fields)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, folder / f"{key}.npz")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        logger.warning("%s: cannot write the road-network cache (%s); set %s to a writable folder", folder, exc, CACHE_ENV)
        return None
    return folder / f"{key}.npz"


def _encode(f: dict[str, Any]) -> dict[str, np.ndarray]:
    crs = f["crs"]
    epsg = crs.to_epsg()
    _, coords, (offsets,) = shapely.to_ragged_array(f["geometry"])
    road_id = f["road_id"]
    road_id_text = road_id.dtype == object
    return {
        "crs": np.array(f"EPSG:{epsg}" if epsg else crs.to_wkt()), "mode": np.array(f["mode"]),
        "node_id": f["node_id"], "node_xy": f["node_xy"], "a": f["a"], "b": f["b"],
        "forward": f["forward"], "backward": f["backward"], "length_m": f["length_m"],
        "highway": np.array(f["highway"].astype(str)), "road_id": road_id.astype(str) if road_id_text else road_id,
        "road_id_text": np.array(road_id_text), "coords": coords, "offsets": offsets,
        "dropped": np.array([f["dropped_nodes"], f["dropped_edges"]], dtype=np.int64),
        "notes": np.array(list(f["notes"]), dtype=str),
    }


def _decode(z: Any) -> dict[str, Any]:
    geometry = shapely.from_ragged_array(shapely.GeometryType.LINESTRING, z["coords"], (z["offsets"],))
    road_id = z["road_id"]
    if bool(z["road_id_text"]):
        road_id = road_id.astype(object)
    dropped = z["dropped"]
    fields = {
        "crs": CRS.from_user_input(str(z["crs"])), "mode": str(z["mode"]), "node_id": z["node_id"],
        "node_xy": z["node_xy"], "a": z["a"], "b": z["b"], "forward": z["forward"], "backward": z["backward"],
        "length_m": z["length_m"], "highway": z["highway"].astype(object), "road_id": road_id, "geometry": geometry,
        "dropped_nodes": int(dropped[0]), "dropped_edges": int(dropped[1]), "notes": [str(n) for n in z["notes"]],
    }
    n = len(fields["a"])
    if not all(len(fields[k]) == n for k in ("b", "forward", "backward", "length_m", "highway", "road_id", "geometry")):
        msg = "arrays of different lengths"
        raise ValueError(msg)
    return fields
