"""Checks shared by the loaders: modes, thresholds, ranges (:data:`planner.settings.LIMITS`), columns, coordinates, CRS."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from . import settings
from ._errors import InvalidValueError, MissingColumnError, NoCrsError

if TYPE_CHECKING:  # numpy, pandas and pyproj load inside the checks that use them: the CLI's start-up needs none
    import numpy as np
    import pandas as pd

# China's extent with a margin, degrees (used to detect swapped lon/lat)
_CHINA_LON = (70.0, 140.0)
_CHINA_LAT = (0.0, 56.0)


def check_mode(mode: str) -> str:
    """Return `mode` if it is a known travel mode, else raise.

    Parameters
    ----------
    mode
        Travel mode.

    Returns
    -------
    mode
        The same mode.

    Raises
    ------
    InvalidValueError
        If the mode is unknown.
    """
    if mode not in settings.MODES:
        msg = f"unknown mode '{mode}'; fix: choose one of {', '.join(settings.MODES)}"
        raise InvalidValueError(msg)
    return mode


def check_minutes(minutes: Iterable[float]) -> tuple[float, ...]:
    """Validate and sort travel-time thresholds in minutes.

    Parameters
    ----------
    minutes
        Thresholds in minutes.

    Returns
    -------
    minutes
        Sorted, de-duplicated thresholds.

    Raises
    ------
    InvalidValueError
        If a threshold is not a positive number up to 240 minutes.
    """
    out = sorted({float(m) for m in minutes})
    lim = settings.LIMITS["minutes"]
    if not out or any(not lim.contains(m) for m in out):
        msg = (f"thresholds {list(minutes)} must be numbers of minutes between {lim.min:g} and {lim.max:g}; "
               "fix: e.g. --minutes 5 --minutes 10 --minutes 15")
        raise InvalidValueError(msg)
    return tuple(out)


def check_limit(name: str, value: float, *, label: str | None = None) -> float:
    """Return `value` as a float if it lies in the range ``settings.LIMITS[name]``, else raise.

    Parameters
    ----------
    name
        Key of :data:`planner.settings.LIMITS`, e.g. ``"speed_kph"``.
    value
        The number, in the limit's unit.
    label
        How the caller names the setting in the message (e.g. ``"--speed-kph"``); `name` by default.

    Returns
    -------
    value
        The same number, as a float.

    Raises
    ------
    InvalidValueError
        If `value` is not a number or lies outside the range; the message
        gives the range and its unit.

    Examples
    --------
    >>> check_limit("speed_kph", 3.2)
    3.2
    >>> check_limit("max_snap_m", 9000, label="--max-snap-m")
    Traceback (most recent call last):
    ...
    planner._errors.InvalidValueError: --max-snap-m 9000 m (largest distance from a point to a road) is outside 1-5,000 m; \
fix: give a value between 1 and 5,000 m
    """
    lim = settings.LIMITS[name]
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)  # numpy's ints and floats too
    if number and lim.contains(value):
        return float(value)
    unit = f" {lim.unit}" if lim.unit else ""
    shown = f"{float(value):g}{unit}" if number else repr(value)
    if math.isinf(lim.max) or lim.min_exclusive:
        msg = f"{label or name} {shown} ({lim.what}) must be {lim.text()}; fix: give a number {lim.text()}"
    else:
        msg = (f"{label or name} {shown} ({lim.what}) is outside {lim.text()}; "
               f"fix: give a value between {lim.min:,g} and {lim.max:,g}{unit}")
    raise InvalidValueError(msg)


def find_column(df: pd.DataFrame, aliases: Sequence[str], *, what: str, file: object,
                required: bool = True, given: str | None = None) -> str | None:
    """Find a column by exact name or case-insensitive alias.

    Parameters
    ----------
    df
        Table to search.
    aliases
        Accepted names, the canonical one first.
    what
        Human name of the column, e.g. ``"longitude"``.
    file
        File name for messages.
    required
        Raise if missing when True; return None otherwise.
    given
        A column name chosen by the user, which must exist.

    Returns
    -------
    column
        The matching column name, or None.

    Raises
    ------
    MissingColumnError
        If a required column is missing.
    """
    cols = [c for c in df.columns if c != getattr(df, "_geometry_column_name", None)]
    if given is not None:
        if given in df.columns:
            return given
        msg = f"{file}: column '{given}' ({what}) not found (columns: {', '.join(map(str, cols))}); fix: check the column name"
        raise MissingColumnError(msg)
    lower = {str(c).lower(): c for c in cols}
    for alias in aliases:
        if alias.lower() in lower:
            return str(lower[alias.lower()])
    if required:
        msg = (f"{file}: no {what} column (columns: {', '.join(map(str, cols))}); "
               f"fix: name it '{aliases[0]}' (accepted: {', '.join(aliases)})")
        raise MissingColumnError(msg)
    return None


def check_numeric(df: pd.DataFrame, column: str, *, file: object, what: str) -> np.ndarray:
    """Return a numeric column as floats, naming the first bad row otherwise.

    Parameters
    ----------
    df
        Table.
    column
        Column to convert.
    file
        File name for messages.
    what
        Human name of the column.

    Returns
    -------
    values
        Float array.

    Raises
    ------
    InvalidValueError
        If a value is missing or not a number (row numbers count data rows
        from 1, so row 1 is the line after the header).
    """
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raw = " ".join(str(df[column].iloc[i]).split())  # keep the message on one line
        msg = (f"{file}: row {i + 1}, column '{column}' ({what}): '{raw}' is not a number"
               f" ({int(bad.sum())} bad rows in all); fix: enter decimal degrees/numbers, e.g. 114.3055")
        raise InvalidValueError(msg)
    return values.to_numpy(dtype=float)


def check_lonlat(lon: np.ndarray, lat: np.ndarray, *, file: object, lon_col: str = "lon", lat_col: str = "lat") -> None:
    """Check longitudes and latitudes are valid degrees and not swapped.

    Parameters
    ----------
    lon, lat
        Coordinates in degrees.
    file
        File name for messages.
    lon_col, lat_col
        Column names for messages.

    Raises
    ------
    InvalidValueError
        If a latitude is outside -90..90 or a longitude outside -180..180,
        naming the first bad row and whether the columns look swapped.
    """
    import numpy as np

    swapped = ((lon >= _CHINA_LAT[0]) & (lon <= _CHINA_LAT[1]) & (lat >= _CHINA_LON[0]) & (lat <= _CHINA_LON[1]))
    bad = (np.abs(lat) > 90) | (np.abs(lon) > 180) | swapped
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        if swapped[i] or (np.abs(lat[i]) > 90 >= np.abs(lon[i])):
            fix = f"the values look swapped; put longitude (e.g. 114.3) in '{lon_col}' and latitude (e.g. 30.6) in '{lat_col}'"
        else:
            fix = "give WGS-84/GCJ-02/BD-09 decimal degrees, not projected metres"
        msg = (f"{file}: row {i + 1}: lon={lon[i]}, lat={lat[i]} is not a valid position "
               f"({int(bad.sum())} bad rows in all); fix: {fix}")
        raise InvalidValueError(msg)


def check_same_crs(a: object, b: object, *, what_a: str, what_b: str) -> None:
    """Raise if two CRSs differ, naming both and the fix.

    Parameters
    ----------
    a, b
        CRS-like objects.
    what_a, what_b
        What each CRS belongs to.

    Raises
    ------
    NoCrsError
        If either is None or they differ.
    """
    if a is None or b is None:
        msg = f"{what_a if a is None else what_b} has no CRS; fix: set one (EPSG:4326 for lon/lat)"
        raise NoCrsError(msg)
    from pyproj import CRS

    crs_a, crs_b = CRS.from_user_input(a), CRS.from_user_input(b)
    if not crs_a.equals(crs_b):
        msg = (f"CRS mismatch: {what_a} is {crs_a.to_string()} but {what_b} is {crs_b.to_string()}; "
               "fix: reproject one with to_crs()")
        raise NoCrsError(msg)


OD_COLUMNS = ("origin_id", "destination_id", "travel_time_s")  # the long-form OD table of travel_time.od_travel_times


def check_od(od: pd.DataFrame) -> np.ndarray:
    """Check a long-form OD table and return its travel times in seconds (NaN where no route exists).

    Parameters
    ----------
    od
        ``origin_id``, ``destination_id``, ``travel_time_s``, as from
        :func:`planner.travel_time.od_travel_times`.

    Returns
    -------
    travel_time_s
        Float seconds per row; non-numeric entries become NaN (no route).

    Raises
    ------
    MissingColumnError
        If a column is missing.
    InvalidValueError
        If a travel time is negative.

    Examples
    --------
    >>> import pandas as pd
    >>> check_od(pd.DataFrame({"origin_id": [0], "destination_id": ["a"], "travel_time_s": [60]}))
    array([60.])
    """
    missing = [col for col in OD_COLUMNS if col not in od.columns]
    if missing:
        msg = (f"od is missing column(s) {', '.join(missing)}; fix: pass the output of "
               "planner.travel_time.od_travel_times (origin_id, destination_id, travel_time_s)")
        raise MissingColumnError(msg)
    import pandas as pd

    t = pd.to_numeric(od["travel_time_s"], errors="coerce").to_numpy(dtype=float)
    if (t < 0).any():
        msg = (f"od has {int((t < 0).sum())} negative travel_time_s; fix: travel times are seconds ≥ 0, recompute od "
               "with planner.travel_time.od_travel_times")
        raise InvalidValueError(msg)
    return t


def check_solver_args(time_limit_s: float | None, mip_gap: float) -> tuple[float, float]:
    """Check the arguments every solve takes: a time limit and a relative MIP gap.

    Parameters
    ----------
    time_limit_s
        Wall-time limit in seconds, > 0; None for no limit.
    mip_gap
        Relative optimality gap in [0, 1).

    Returns
    -------
    time_limit_s, mip_gap
        As floats, the time limit ``inf`` for None.

    Raises
    ------
    InvalidValueError
        If either is out of range or not a number.

    Examples
    --------
    >>> check_solver_args(None, 0.0)
    (inf, 0.0)
    """
    try:
        tl = math.inf if time_limit_s is None else float(time_limit_s)
    except (TypeError, ValueError):
        tl = math.nan
    if not tl > 0:
        msg = f"time_limit_s={time_limit_s!r} must be > 0 seconds (or None for no limit); fix: e.g. time_limit_s=60"
        raise InvalidValueError(msg)
    try:
        g = float(mip_gap)
    except (TypeError, ValueError):
        g = math.nan
    if not 0 <= g < 1:
        msg = f"mip_gap={mip_gap!r} must be a relative gap in [0, 1); fix: 0 for proven optimality, e.g. 0.01 for 1%"
        raise InvalidValueError(msg)
    return tl, g


def row_label(table: pd.DataFrame, pos: int) -> str:
    """Name a table row in messages: its 1-based position, id (the index) and ``name``.

    >>> import pandas as pd
    >>> row_label(pd.DataFrame({"name": ["协和 医院"]}, index=pd.Index(["h1"], name="facility_id")), 0)
    "row 1 (facility_id 'h1', name '协和 医院')"
    """
    import pandas as pd

    fid = table.index[pos]
    name = table["name"].iloc[pos] if "name" in table else None
    named = f", name '{' '.join(str(name).split())}'" if name is not None and not pd.isna(name) else ""
    return f"row {pos + 1} (facility_id '{fid}'{named})"
