"""Conversion between WGS-84 and the Chinese "shifted" map datums GCJ-02 and BD-09.

Web maps published in mainland China do not use plain WGS-84 longitude and
latitude:

* **GCJ-02** (国测局坐标, "Mars coordinates") is the datum mandated by the
  national surveying administration for public maps. It is WGS-84 passed
  through a deliberately non-linear, undocumented offset of typically 100-700 m.
  Amap/Gaode (高德), Tencent (腾讯) and Google Maps inside China use it.
* **BD-09** (百度坐标) is Baidu's own second layer of obfuscation applied on top
  of GCJ-02: a small polar-coordinate perturbation plus a fixed shift of
  roughly 0.0065 deg in longitude and 0.006 deg in latitude.

CGCS2000, China's official geodetic datum, agrees with WGS-84 to well below a
metre, which is negligible for service-coverage planning, so it is treated as
WGS-84 here.

The forward direction (WGS-84 -> GCJ-02 -> BD-09) follows the widely used
public reconstruction of the algorithms. There is no official specification;
"accurate" below means agreement with that reconstruction. The GCJ-02 offset is
evaluated on the Krasovsky-1940 ellipsoid from a polynomial-plus-sine series
centred on 105 deg E, 35 deg N.

Neither forward transform has a closed-form inverse. The commonly copied
"inverse" subtracts the offset evaluated at the shifted point, which leaves
errors of up to about a metre. Here the inverses solve ``forward(x) = y`` by
fixed-point iteration, ``x <- x - (forward(x) - y)``, until no coordinate moves
by more than :data:`INVERSE_TOLERANCE_DEG` (1e-10 deg, about 10 micrometres),
with at most :data:`INVERSE_MAX_ITER` iterations. The offsets change slowly
with position, so the iteration contracts by a factor of about 1e-3 (GCJ-02)
or 2e-2 (BD-09) per step and converges in a handful of steps. Round trips
WGS-84 -> GCJ-02/BD-09 -> WGS-84 reproduce the input to well below a
millimetre.

As in the published algorithm, points outside a rough bounding box of mainland
China (longitude 72.004-137.8347 deg, latitude 0.8293-55.8271 deg, bounds
inclusive) are returned unchanged by the GCJ-02 step. The inverse decides this
from the coordinates it is given. The box also contains Taiwan, Hong Kong,
Macau and parts of neighbouring countries, which are shifted as well. Because
the shift jumps at the box edge, a GCJ-02 point within a few hundred metres of
the edge may have no exact WGS-84 preimage; the inverse then warns
(``RuntimeWarning``) and falls back to the published one-step estimate for
those points. The BD-09 step has no such test and applies everywhere.

All functions accept scalars or array-likes of longitude and latitude in
degrees, which are broadcast against each other. They return a pair of
``float64`` numpy arrays of the broadcast shape; scalar input gives 0-d arrays
(use ``float(a)`` to unwrap). NaN propagates.

Examples
--------
>>> lon, lat = wgs84_to_gcj02(114.3, 30.6)
>>> back_lon, back_lat = gcj02_to_wgs84(lon, lat)
>>> abs(float(back_lon) - 114.3) < 1e-9 and abs(float(back_lat) - 30.6) < 1e-9
True
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from planner._errors import InvalidValueError

__all__ = [
    "DATUMS",
    "DATUM_CHECK_MIN_POINTS",
    "DATUM_CHECK_RATIO",
    "DATUM_CHECK_SHIFT_M",
    "DatumSuggestion",
    "INVERSE_MAX_ITER",
    "INVERSE_TOLERANCE_DEG",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "canonical_datum",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "suggest_datum",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray = npt.NDArray[np.float64]
_Transform = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]

# --- GCJ-02 ------------------------------------------------------------------
KRASOVSKY_A = 6378245.0  # m, semi-major axis of the Krasovsky-1940 ellipsoid
KRASOVSKY_EE = 0.00669342162296594323  # dimensionless, first eccentricity squared
GCJ_ORIGIN_LON = 105.0  # deg, longitude at which the offset series is centred
GCJ_ORIGIN_LAT = 35.0  # deg, latitude at which the offset series is centred

# Rough mainland-China box used by the published algorithm; outside it the
# GCJ-02 step is the identity.
CHINA_MIN_LON = 72.004  # deg
CHINA_MAX_LON = 137.8347  # deg
CHINA_MIN_LAT = 0.8293  # deg
CHINA_MAX_LAT = 55.8271  # deg

# --- BD-09 -------------------------------------------------------------------
BD_X_PI = np.pi * 3000.0 / 180.0  # rad per deg, angular frequency of the BD-09 wobble
BD_RADIUS_WOBBLE = 0.00002  # deg, amplitude of the radial perturbation
BD_ANGLE_WOBBLE = 0.000003  # rad, amplitude of the angular perturbation
BD_LON_SHIFT = 0.0065  # deg, constant longitude shift
BD_LAT_SHIFT = 0.006  # deg, constant latitude shift

# --- Iterative inverses ------------------------------------------------------
INVERSE_TOLERANCE_DEG = 1e-10  # deg, stop when no coordinate moves by more than this
INVERSE_MAX_ITER = 30  # iterations, upper bound for the fixed-point loop

# --- Datum names ---------------------------------------------------------------
_CANONICAL_DATUM: dict[str, str] = {
    "wgs84": "wgs84",
    "gcj02": "gcj02",
    "bd09": "bd09",
    "amap": "gcj02",
    "gaode": "gcj02",
    "tencent": "gcj02",
    "baidu": "bd09",
    "cgcs2000": "wgs84",
}
DATUMS: tuple[str, ...] = tuple(_CANONICAL_DATUM)  # accepted ``datum`` names


def _as_lonlat(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Return `lon` and `lat` as broadcast, writable float64 arrays."""
    lon_b, lat_b = np.broadcast_arrays(
        np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    )
    return lon_b.copy(), lat_b.copy()


def out_of_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Test whether points lie outside the rough mainland-China box.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees; broadcast against each other.

    Returns
    -------
    numpy.ndarray of bool
        ``True`` where the point is outside longitude 72.004-137.8347 deg or
        latitude 0.8293-55.8271 deg (bounds inclusive), or is NaN. These points
        are left unchanged by the GCJ-02 step.
    """
    lon_a, lat_a = _as_lonlat(lon, lat)
    inside = (
        (lon_a >= CHINA_MIN_LON)
        & (lon_a <= CHINA_MAX_LON)
        & (lat_a >= CHINA_MIN_LAT)
        & (lat_a <= CHINA_MAX_LAT)
    )
    return ~inside


def _sine_terms(
    u: FloatArray, amp_1: float, amp_2: float, period_1: float, period_2: float
) -> FloatArray:
    """Return ``(2/3) * (amp_1 sin(pi u / period_1) + amp_2 sin(pi u / period_2))``."""
    return (2.0 / 3.0) * (
        amp_1 * np.sin(np.pi * u / period_1) + amp_2 * np.sin(np.pi * u / period_2)
    )


def _gcj_offset_series(dx: FloatArray, dy: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Evaluate the GCJ-02 offset series before scaling to degrees.

    Parameters
    ----------
    dx, dy : numpy.ndarray
        Longitude minus 105 deg and latitude minus 35 deg.

    Returns
    -------
    east, north : numpy.ndarray
        The eastward and northward offsets in metres along the Krasovsky
        ellipsoid (before conversion to degrees).
    """
    root_abs_dx = np.sqrt(np.abs(dx))
    # Both components share a high-frequency wobble in dx.
    wobble = _sine_terms(dx, 20.0, 20.0, 1.0 / 6.0, 0.5)

    north = -100.0 + 2.0 * dx + 3.0 * dy + 0.2 * dy * dy + 0.1 * dx * dy + 0.2 * root_abs_dx
    north = (
        north
        + wobble
        + _sine_terms(dy, 20.0, 40.0, 1.0, 3.0)
        + _sine_terms(dy, 160.0, 320.0, 12.0, 30.0)
    )

    east = 300.0 + dx + 2.0 * dy + 0.1 * dx * dx + 0.1 * dx * dy + 0.1 * root_abs_dx
    east = (
        east
        + wobble
        + _sine_terms(dx, 20.0, 40.0, 1.0, 3.0)
        + _sine_terms(dx, 150.0, 300.0, 12.0, 30.0)
    )
    return east, north


def _wgs84_to_gcj02_raw(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Forward GCJ-02 shift on float64 arrays of equal shape."""
    east, north = _gcj_offset_series(lon - GCJ_ORIGIN_LON, lat - GCJ_ORIGIN_LAT)

    phi = np.radians(lat)
    w2 = 1.0 - KRASOVSKY_EE * np.sin(phi) ** 2
    w = np.sqrt(w2)
    # Radii of curvature of the Krasovsky ellipsoid at the input latitude.
    meridian_radius = KRASOVSKY_A * (1.0 - KRASOVSKY_EE) / (w2 * w)
    parallel_radius = KRASOVSKY_A / w * np.cos(phi)

    gcj_lat = lat + np.degrees(north / meridian_radius)
    gcj_lon = lon + np.degrees(east / parallel_radius)

    outside = out_of_china(lon, lat)
    return np.where(outside, lon, gcj_lon), np.where(outside, lat, gcj_lat)


def _gcj02_to_bd09_raw(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Forward BD-09 shift on float64 arrays of equal shape."""
    radius = np.hypot(lon, lat) + BD_RADIUS_WOBBLE * np.sin(lat * BD_X_PI)
    angle = np.arctan2(lat, lon) + BD_ANGLE_WOBBLE * np.cos(lon * BD_X_PI)
    return radius * np.cos(angle) + BD_LON_SHIFT, radius * np.sin(angle) + BD_LAT_SHIFT


def _bd09_to_gcj02_first_guess(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Approximate BD-09 inverse: undo the shift, then the wobble at the shifted point."""
    x = lon - BD_LON_SHIFT
    y = lat - BD_LAT_SHIFT
    radius = np.hypot(x, y) - BD_RADIUS_WOBBLE * np.sin(y * BD_X_PI)
    angle = np.arctan2(y, x) - BD_ANGLE_WOBBLE * np.cos(x * BD_X_PI)
    return radius * np.cos(angle), radius * np.sin(angle)


def _invert(
    forward: _Transform,
    target_lon: FloatArray,
    target_lat: FloatArray,
    guess_lon: FloatArray,
    guess_lat: FloatArray,
    name: str,
) -> tuple[FloatArray, FloatArray]:
    """Solve ``forward(lon, lat) == (target_lon, target_lat)`` by fixed-point iteration.

    Each step moves the estimate by the current residual,
    ``x <- x - (forward(x) - target)``, which converges because the offset
    applied by `forward` varies slowly with position.

    Parameters
    ----------
    forward : callable
        Forward transform on float64 arrays.
    target_lon, target_lat : numpy.ndarray
        Coordinates in the output datum of `forward`.
    guess_lon, guess_lat : numpy.ndarray
        Starting estimate in the input datum of `forward`.
    name : str
        Name of the inverse, for the warning message.

    Returns
    -------
    lon, lat : numpy.ndarray
        Coordinates in the input datum of `forward`.

    Warns
    -----
    RuntimeWarning
        If some point has not converged after :data:`INVERSE_MAX_ITER`
        iterations. This happens only where no exact inverse exists, i.e.
        within a few hundred metres of the edge of the mainland-China box,
        where the GCJ-02 shift jumps; such points get the one-step estimate
        ``guess - (forward(guess) - target)``, as in the published algorithm.
    """
    lon, lat = guess_lon, guess_lat
    first_lon, first_lat = lon, lat
    moved = np.zeros(lon.shape)
    for iteration in range(INVERSE_MAX_ITER):
        fwd_lon, fwd_lat = forward(lon, lat)
        d_lon = fwd_lon - target_lon
        d_lat = fwd_lat - target_lat
        lon = lon - d_lon
        lat = lat - d_lat
        if iteration == 0:
            first_lon, first_lat = lon, lat
        moved = np.maximum(np.abs(d_lon), np.abs(d_lat))
        if not np.any(moved > INVERSE_TOLERANCE_DEG):  # NaN compares False
            return lon, lat
    stuck = moved > INVERSE_TOLERANCE_DEG
    warnings.warn(
        f"{name}: {int(stuck.sum())} point(s) not converged after "
        f"{INVERSE_MAX_ITER} iterations (largest last step "
        f"{float(moved[stuck].max()):.3g} deg); using the one-step estimate there",
        RuntimeWarning,
        stacklevel=3,
    )
    return np.where(stuck, first_lon, lon), np.where(stuck, first_lat, lat)


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert WGS-84 coordinates to GCJ-02 (Amap/Gaode, Tencent).

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 longitude and latitude in degrees; broadcast against each other.

    Returns
    -------
    lon, lat : numpy.ndarray
        GCJ-02 longitude and latitude in degrees, float64, of the broadcast
        shape (0-d for scalar input). Points outside the mainland-China box
        are returned unchanged.
    """
    lon_a, lat_a = _as_lonlat(lon, lat)
    return _wgs84_to_gcj02_raw(lon_a, lat_a)


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert GCJ-02 coordinates (Amap/Gaode, Tencent) to WGS-84.

    The forward transform is inverted iteratively to 1e-10 deg, so that
    ``wgs84_to_gcj02(*gcj02_to_wgs84(lon, lat))`` reproduces the input to
    about 1e-5 m.

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitude and latitude in degrees; broadcast against each other.

    Returns
    -------
    lon, lat : numpy.ndarray
        WGS-84 longitude and latitude in degrees, float64, of the broadcast
        shape (0-d for scalar input). Points outside the mainland-China box
        are returned unchanged.

    Warns
    -----
    RuntimeWarning
        If the iteration does not converge (possible only for points within
        a few hundred metres of the edge of the mainland-China box).
    """
    lon_a, lat_a = _as_lonlat(lon, lat)
    wgs_lon, wgs_lat = _invert(
        _wgs84_to_gcj02_raw, lon_a, lat_a, lon_a, lat_a, "gcj02_to_wgs84"
    )
    outside = out_of_china(lon_a, lat_a)
    return np.where(outside, lon_a, wgs_lon), np.where(outside, lat_a, wgs_lat)


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert GCJ-02 coordinates to BD-09 (Baidu).

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitude and latitude in degrees; broadcast against each other.

    Returns
    -------
    lon, lat : numpy.ndarray
        BD-09 longitude and latitude in degrees, float64, of the broadcast
        shape (0-d for scalar input). This step applies everywhere, also
        outside China.
    """
    lon_a, lat_a = _as_lonlat(lon, lat)
    return _gcj02_to_bd09_raw(lon_a, lat_a)


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert BD-09 coordinates (Baidu) to GCJ-02.

    Starts from the usual one-step approximation and refines it iteratively to
    1e-10 deg.

    Parameters
    ----------
    lon, lat : array_like
        BD-09 longitude and latitude in degrees; broadcast against each other.

    Returns
    -------
    lon, lat : numpy.ndarray
        GCJ-02 longitude and latitude in degrees, float64, of the broadcast
        shape (0-d for scalar input).
    """
    lon_a, lat_a = _as_lonlat(lon, lat)
    guess_lon, guess_lat = _bd09_to_gcj02_first_guess(lon_a, lat_a)
    return _invert(_gcj02_to_bd09_raw, lon_a, lat_a, guess_lon, guess_lat, "bd09_to_gcj02")


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert WGS-84 coordinates to BD-09 (Baidu), via GCJ-02.

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 longitude and latitude in degrees; broadcast against each other.

    Returns
    -------
    lon, lat : numpy.ndarray
        BD-09 longitude and latitude in degrees, float64, of the broadcast
        shape (0-d for scalar input). Outside the mainland-China box only the
        BD-09 step is applied.
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert BD-09 coordinates (Baidu) to WGS-84, via GCJ-02.

    Parameters
    ----------
    lon, lat : array_like
        BD-09 longitude and latitude in degrees; broadcast against each other.

    Returns
    -------
    lon, lat : numpy.ndarray
        WGS-84 longitude and latitude in degrees, float64, of the broadcast
        shape (0-d for scalar input).
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def _canonical_datum(datum: object) -> str:
    """Map a datum name or alias to ``"wgs84"``, ``"gcj02"`` or ``"bd09"``."""
    key = None
    if isinstance(datum, str):
        key = datum.strip().lower().replace("-", "").replace("_", "")
    if key not in _CANONICAL_DATUM:
        raise InvalidValueError(
            f"unknown datum {datum!r}; use one of: {', '.join(DATUMS)} (case-insensitive)"
        )
    return _CANONICAL_DATUM[key]


def canonical_datum(datum: str) -> str:
    """Return the canonical name (``wgs84``, ``gcj02`` or ``bd09``) of a datum name or alias.

    Parameters
    ----------
    datum : str
        Any name :func:`to_wgs84` accepts.

    Returns
    -------
    name : str
        ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.

    Raises
    ------
    planner._errors.InvalidValueError
        If `datum` is not a recognised name.

    Examples
    --------
    >>> canonical_datum("Amap"), canonical_datum("CGCS2000")
    ('gcj02', 'wgs84')
    """
    return _canonical_datum(datum)


def to_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, *, datum: str
) -> tuple[FloatArray, FloatArray]:
    """Convert coordinates in a named datum to WGS-84.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees in `datum`; broadcast against each
        other.
    datum : str
        One of :data:`DATUMS`, case-insensitive; hyphens and underscores are
        ignored, so ``"GCJ-02"`` and ``"BD_09"`` also work. ``"amap"``,
        ``"gaode"`` and ``"tencent"`` mean GCJ-02, ``"baidu"`` means BD-09,
        ``"cgcs2000"`` is treated as WGS-84.

    Returns
    -------
    lon, lat : numpy.ndarray
        WGS-84 longitude and latitude in degrees, float64, of the broadcast
        shape (0-d for scalar input). A WGS-84 input is returned as a copy.

    Raises
    ------
    planner._errors.InvalidValueError
        A :class:`ValueError`, if `datum` is not a recognised name.
    """
    canonical = _canonical_datum(datum)
    if canonical == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if canonical == "bd09":
        return bd09_to_wgs84(lon, lat)
    return _as_lonlat(lon, lat)


def from_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, *, datum: str
) -> tuple[FloatArray, FloatArray]:
    """Convert WGS-84 coordinates to a named datum (the inverse of :func:`to_wgs84`).

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 longitude and latitude in degrees; broadcast against each other.
    datum : str
        Target datum, any name :func:`to_wgs84` accepts.

    Returns
    -------
    lon, lat : numpy.ndarray
        Longitude and latitude in degrees in `datum`, float64.

    Raises
    ------
    planner._errors.InvalidValueError
        If `datum` is not a recognised name.

    Examples
    --------
    >>> lon, lat = from_wgs84(114.3, 30.6, datum="amap")
    >>> [round(float(v), 6) for v in to_wgs84(lon, lat, datum="gcj02")]
    [114.3, 30.6]
    """
    canonical = _canonical_datum(datum)
    if canonical == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if canonical == "bd09":
        return wgs84_to_bd09(lon, lat)
    return _as_lonlat(lon, lat)


# --- Datum check -------------------------------------------------------------------
DATUM_CHECK_MIN_POINTS = 5  # points; fewer are not checked
DATUM_CHECK_RATIO = 0.5  # share; another reading must cut the median road distance to this or less
DATUM_CHECK_SHIFT_M = (100.0, 1500.0)  # m; median shift between the two readings (GCJ-02: 100-700 m, BD-09: 0.7-1.4 km)
_EARTH_RADIUS_M = 6_371_008.8  # m, mean Earth radius (for the shift between two readings)
DATUM_LABELS = {"wgs84": "WGS-84", "gcj02": "GCJ-02 (Amap)", "bd09": "BD-09 (Baidu)"}


@dataclasses.dataclass(frozen=True)
class DatumSuggestion:
    """Another datum that fits points better than the declared one.

    Attributes
    ----------
    declared, suggested
        Canonical datum names (``wgs84``, ``gcj02``, ``bd09``).
    n_points
        Points compared.
    median_m_declared, median_m_suggested
        Median distance in metres from the points to the nearest road, read
        in each datum.
    shift_m
        Median distance in metres between the two readings of a point.
    """

    declared: str
    suggested: str
    n_points: int
    median_m_declared: float
    median_m_suggested: float
    shift_m: float

    def message(self, what: str, *, option: str = "--coords") -> str:
        """One line saying what the points look like and how to fix it.

        Parameters
        ----------
        what
            What the points are, e.g. ``"institutions.csv: the institutions"``.
        option
            The option (and scenario key without its dashes) that sets the datum.

        Returns
        -------
        message
            E.g. ``"… look like GCJ-02 (Amap) coordinates, not WGS-84 …; fix: pass --coords gcj02 …"``.
        """
        looks = "WGS-84 already" if self.suggested == "wgs84" else f"{DATUM_LABELS[self.suggested]} coordinates"
        key = option.lstrip("-").replace("-", "_")
        return (f"{what} look like {looks}, not {DATUM_LABELS[self.declared]}: read as {self.suggested} their median "
                f"distance to a road falls from {self.median_m_declared:.0f} m to {self.median_m_suggested:.0f} m "
                f"({self.n_points} points, shifted {self.shift_m:.0f} m); fix: pass {option} {self.suggested} "
                f"(scenario files: {key} = \"{self.suggested}\")")


def suggest_datum(
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    *,
    declared: str,
    distance_m: Callable[[FloatArray, FloatArray], npt.ArrayLike],
) -> DatumSuggestion | None:
    """Test whether points given in `declared` fit the roads better in another datum.

    Each other datum's reading of the coordinates is converted to WGS-84 and
    its median distance to the roads compared with that of the declared
    reading. A reading that cuts the median by :data:`DATUM_CHECK_RATIO` or
    more, while moving the points by a typical datum shift
    (:data:`DATUM_CHECK_SHIFT_M`), is suggested. With fewer than
    :data:`DATUM_CHECK_MIN_POINTS` finite points there is no suggestion.

    Parameters
    ----------
    lon, lat : array_like
        The coordinates as given in the input, in degrees.
    declared : str
        The datum they were declared in (any name :func:`to_wgs84` accepts).
    distance_m : callable
        ``distance_m(lon, lat)`` gives the distance in metres from WGS-84
        points to the nearest road.

    Returns
    -------
    suggestion : DatumSuggestion or None
        The best fitting other datum, or None when the declared one fits.

    Examples
    --------
    Points lying on the meridian 114.3 deg E, but given in GCJ-02 and declared
    as WGS-84:

    >>> import numpy as np
    >>> lat = np.linspace(30.50, 30.52, 6)
    >>> lon, lat = wgs84_to_gcj02(np.full(6, 114.3), lat)
    >>> road = lambda x, y: np.abs(x - 114.3) * 111_320 * np.cos(np.radians(y))
    >>> suggest_datum(lon, lat, declared="wgs84", distance_m=road).suggested
    'gcj02'
    >>> suggest_datum(lon, lat, declared="gcj02", distance_m=road) is None
    True
    """
    given = _canonical_datum(declared)
    lon_a, lat_a = _as_lonlat(lon, lat)
    ok = np.isfinite(lon_a) & np.isfinite(lat_a)
    lon_a, lat_a = lon_a[ok].ravel(), lat_a[ok].ravel()
    if len(lon_a) < DATUM_CHECK_MIN_POINTS:
        return None
    x0, y0 = to_wgs84(lon_a, lat_a, datum=given)
    d0 = float(np.nanmedian(np.asarray(distance_m(x0, y0), dtype=float)))
    if not np.isfinite(d0) or d0 <= 0:
        return None
    best: DatumSuggestion | None = None
    for other in ("wgs84", "gcj02", "bd09"):
        if other == given:
            continue
        x1, y1 = to_wgs84(lon_a, lat_a, datum=other)
        dlat = np.radians(y1 - y0)
        dlon = np.radians(x1 - x0) * np.cos(np.radians((y0 + y1) / 2))
        shift = float(np.median(np.hypot(dlon, dlat)) * _EARTH_RADIUS_M)
        if not (DATUM_CHECK_SHIFT_M[0] <= shift <= DATUM_CHECK_SHIFT_M[1]):
            continue
        d1 = float(np.nanmedian(np.asarray(distance_m(x1, y1), dtype=float)))
        if np.isfinite(d1) and d1 <= DATUM_CHECK_RATIO * d0 and (best is None or d1 < best.median_m_suggested):
            best = DatumSuggestion(declared=given, suggested=other, n_points=len(lon_a), median_m_declared=d0,
                                   median_m_suggested=d1, shift_m=shift)
    return best
