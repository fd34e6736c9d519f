"""Tests for :mod:`planner.datum` (offline).

The forward transforms are checked against two independent implementations
from PyPI, ``coordTransform`` and ``coord_convert``; round trips are measured as
WGS-84 geodesic distances with :class:`pyproj.Geod`.
"""

from __future__ import annotations

import warnings

# independent implementations from PyPI (test dependencies), imported plainly so a missing one fails
import coord_convert.transform as cc
import coordTransform as ct
import numpy as np
import pytest
from pyproj import Geod

from planner import datum
from planner.datum import (
    DATUMS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = Geod(ellps="WGS84")

CITIES = {
    "Wuhan": (114.3, 30.6),
    "Beijing": (116.39, 39.91),
    "Urumqi": (87.62, 43.83),
    "Sanya": (109.51, 18.25),
    "Shanghai": (121.47, 31.23),
    "Guangzhou": (113.26, 23.13),
    "Chengdu": (104.07, 30.67),
    "Harbin": (126.64, 45.76),
    "Lhasa": (91.13, 29.65),
    "Kashgar": (75.99, 39.47),
}


def _china_points() -> tuple[np.ndarray, np.ndarray]:
    """Named cities plus a regular grid over China (inside both libraries' boxes)."""
    grid_lon, grid_lat = np.meshgrid(np.arange(74.0, 135.0, 0.5), np.arange(4.0, 53.5, 0.5))
    city_lon, city_lat = np.array(list(CITIES.values())).T
    return (
        np.concatenate([city_lon, grid_lon.ravel()]),
        np.concatenate([city_lat, grid_lat.ravel()]),
    )


def _distance_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """WGS-84 geodesic distance in metres."""
    lon1, lat1, lon2, lat2 = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (lon1, lat1, lon2, lat2))
    )
    return np.asarray(GEOD.inv(lon1.ravel(), lat1.ravel(), lon2.ravel(), lat2.ravel())[2])


def _apply_pointwise(func, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Call a scalar reference implementation point by point."""
    out = np.array([func(float(x), float(y)) for x, y in zip(lon, lat, strict=True)], dtype=float)
    return out[:, 0], out[:, 1]


# --- round trips ---------------------------------------------------------------


def test_round_trip_gcj02() -> None:
    lon, lat = _china_points()
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    err = _distance_m(lon, lat, back_lon, back_lat)
    assert err.max() < 1e-3  # far below the 0.5 m requirement
    assert np.abs(back_lon - lon).max() < 1e-9
    assert np.abs(back_lat - lat).max() < 1e-9


def test_round_trip_bd09() -> None:
    lon, lat = _china_points()
    back_lon, back_lat = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    err = _distance_m(lon, lat, back_lon, back_lat)
    assert err.max() < 1e-3
    assert np.abs(back_lon - lon).max() < 1e-9
    assert np.abs(back_lat - lat).max() < 1e-9


def test_round_trip_bd09_gcj02_step() -> None:
    lon, lat = _china_points()
    back_lon, back_lat = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert _distance_m(lon, lat, back_lon, back_lat).max() < 1e-3


def test_inverse_then_forward_reproduces_input() -> None:
    gcj_lon, gcj_lat = _china_points()
    fwd_lon, fwd_lat = wgs84_to_gcj02(*gcj02_to_wgs84(gcj_lon, gcj_lat))
    assert np.abs(fwd_lon - gcj_lon).max() < 1e-9
    assert np.abs(fwd_lat - gcj_lat).max() < 1e-9


def test_inverse_converges_without_warning() -> None:
    lon, lat = _china_points()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bd09_to_wgs84(*wgs84_to_bd09(lon, lat))


# --- agreement with independent implementations ------------------------------------


@pytest.mark.parametrize(
    ("ours", "reference"),
    [
        (wgs84_to_gcj02, ct.wgs84_to_gcj02),
        (wgs84_to_gcj02, cc.wgs2gcj),
        (gcj02_to_bd09, ct.gcj02_to_bd09),
        (gcj02_to_bd09, cc.gcj2bd),
        (wgs84_to_bd09, ct.wgs84_to_bd09),
        (wgs84_to_bd09, cc.wgs2bd),
    ],
    ids=[
        "wgs84_to_gcj02-coordTransform",
        "wgs84_to_gcj02-coord_convert",
        "gcj02_to_bd09-coordTransform",
        "gcj02_to_bd09-coord_convert",
        "wgs84_to_bd09-coordTransform",
        "wgs84_to_bd09-coord_convert",
    ],
)
def test_forward_matches_reference(ours, reference) -> None:
    lon, lat = _china_points()
    our_lon, our_lat = ours(lon, lat)
    ref_lon, ref_lat = _apply_pointwise(reference, lon, lat)
    assert np.abs(our_lon - ref_lon).max() < 1e-6
    assert np.abs(our_lat - ref_lat).max() < 1e-6


@pytest.mark.parametrize(
    ("forward", "ours_inverse", "one_step_inverse"),
    [
        (wgs84_to_gcj02, gcj02_to_wgs84, ct.gcj02_to_wgs84),
        (wgs84_to_bd09, bd09_to_wgs84, ct.bd09_to_wgs84),
    ],
    ids=["gcj02", "bd09"],
)
def test_one_step_inverse_is_close_but_worse(forward, ours_inverse, one_step_inverse) -> None:
    """The one-step inverse of coordTransform is metres off; ours round-trips to << 1 mm."""
    lon, lat = _china_points()
    shifted_lon, shifted_lat = forward(lon, lat)

    ours_lon, ours_lat = ours_inverse(shifted_lon, shifted_lat)
    ref_lon, ref_lat = _apply_pointwise(one_step_inverse, shifted_lon, shifted_lat)

    # The two inverses agree to a few metres (about 2 m in the big cities,
    # up to about 5 m at the northern edge of the box) ...
    assert _distance_m(ours_lon, ours_lat, ref_lon, ref_lat).max() < 5.0
    n_cities = len(CITIES)
    city_gap = _distance_m(
        ours_lon[:n_cities], ours_lat[:n_cities], ref_lon[:n_cities], ref_lat[:n_cities]
    )
    assert city_gap.max() < 2.5

    # ... but only the iterated one actually undoes the forward transform.
    ours_err = _distance_m(lon, lat, ours_lon, ours_lat).max()
    one_step_err = _distance_m(lon, lat, ref_lon, ref_lat).max()
    assert ours_err < 1e-3
    assert one_step_err > 1.0
    assert one_step_err > 1000 * ours_err


def test_iterative_reference_inverse_agrees() -> None:
    """coord_convert iterates (to 1e-6 deg); it agrees with ours to centimetres."""
    lon, lat = _china_points()
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    ours = gcj02_to_wgs84(gcj_lon, gcj_lat)
    ref = _apply_pointwise(cc.gcj2wgs, gcj_lon, gcj_lat)
    assert _distance_m(*ours, *ref).max() < 0.05


# --- size of the offset ----------------------------------------------------------------


def test_wuhan_offset_size() -> None:
    lon, lat = CITIES["Wuhan"]
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    offset = _distance_m(lon, lat, gcj_lon, gcj_lat)[0]
    assert 100.0 < offset < 700.0
    # GCJ-02 shifts eastward in Wuhan; BD-09 adds roughly another kilometre.
    assert float(gcj_lon) > lon
    bd_offset = _distance_m(lon, lat, *wgs84_to_bd09(lon, lat))[0]
    assert 700.0 < bd_offset < 2000.0


# --- outside China ---------------------------------------------------------------------

OUTSIDE = np.array(
    [
        (2.35, 48.86),  # Paris
        (-74.0, 40.7),  # New York
        (139.69, 35.69),  # Tokyo, east of the box
        (151.2, -33.87),  # Sydney
        (114.3, 56.0),  # north of the box
        (114.3, 0.5),  # south of the box
        (71.9, 39.0),  # west of the box
    ]
)


@pytest.mark.parametrize("func", [wgs84_to_gcj02, gcj02_to_wgs84])
def test_outside_china_unchanged(func) -> None:
    lon, lat = OUTSIDE.T
    assert out_of_china(lon, lat).all()
    out_lon, out_lat = func(lon, lat)
    np.testing.assert_array_equal(out_lon, lon)
    np.testing.assert_array_equal(out_lat, lat)


def test_outside_china_bd09_step_only() -> None:
    lon, lat = OUTSIDE.T
    np.testing.assert_array_equal(
        np.stack(wgs84_to_bd09(lon, lat)), np.stack(gcj02_to_bd09(lon, lat))
    )
    back_lon, back_lat = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert _distance_m(lon, lat, back_lon, back_lat).max() < 1e-3


def test_mixed_inside_and_outside() -> None:
    lon = np.array([114.3, 2.35, 116.39])
    lat = np.array([30.6, 48.86, 39.91])
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    assert gcj_lon[1] == lon[1] and gcj_lat[1] == lat[1]
    assert gcj_lon[0] != lon[0] and gcj_lon[2] != lon[2]
    assert out_of_china(lon, lat).tolist() == [False, True, False]


def test_edge_of_box_falls_back_with_warning() -> None:
    # Just inside the western edge the GCJ-02 shift jumps by ~0.004 deg, so some
    # GCJ-02 longitudes there have no exact WGS-84 preimage.
    lon = np.linspace(72.004, 72.010, 61)
    lat = np.full_like(lon, 39.0)
    with pytest.warns(RuntimeWarning, match="not converged"):
        back_lon, back_lat = gcj02_to_wgs84(lon, lat)
    assert np.isfinite(back_lon).all() and np.isfinite(back_lat).all()
    assert _distance_m(lon, lat, back_lon, back_lat).max() < 1000.0


# --- to_wgs84 --------------------------------------------------------------------------


def test_datums_constant() -> None:
    expected = {"wgs84", "gcj02", "bd09", "amap", "gaode", "tencent", "baidu", "cgcs2000"}
    assert set(DATUMS) == expected
    assert isinstance(DATUMS, tuple)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wgs84", "wgs84"),
        ("WGS84", "wgs84"),
        ("cgcs2000", "wgs84"),
        ("CGCS2000", "wgs84"),
        ("gcj02", "gcj02"),
        ("GCJ02", "gcj02"),
        ("GCJ-02", "gcj02"),
        ("amap", "gcj02"),
        ("Gaode", "gcj02"),
        ("Tencent", "gcj02"),
        ("bd09", "bd09"),
        ("BD-09", "bd09"),
        ("baidu", "bd09"),
        ("BAIDU", "bd09"),
    ],
)
def test_to_wgs84_names(name: str, expected: str) -> None:
    wgs_lon, wgs_lat = np.array(list(CITIES.values())).T
    source = {
        "wgs84": (wgs_lon, wgs_lat),
        "gcj02": wgs84_to_gcj02(wgs_lon, wgs_lat),
        "bd09": wgs84_to_bd09(wgs_lon, wgs_lat),
    }[expected]
    out_lon, out_lat = to_wgs84(*source, datum=name)
    assert _distance_m(wgs_lon, wgs_lat, out_lon, out_lat).max() < 1e-3


def test_to_wgs84_every_datum_accepted() -> None:
    for name in DATUMS:
        out_lon, out_lat = to_wgs84(114.3, 30.6, datum=name)
        assert np.isfinite(out_lon) and np.isfinite(out_lat)


def test_to_wgs84_wgs84_returns_copy() -> None:
    lon = np.array([114.3, 116.39])
    lat = np.array([30.6, 39.91])
    out_lon, _ = to_wgs84(lon, lat, datum="wgs84")
    np.testing.assert_array_equal(out_lon, lon)
    out_lon[0] = 0.0
    assert lon[0] == 114.3


@pytest.mark.parametrize("bad", ["osgb36", "", "gcj", None, 4326])
def test_to_wgs84_unknown_datum(bad) -> None:
    choices = r"wgs84, gcj02, bd09, amap, gaode, tencent, baidu, cgcs2000"
    with pytest.raises(ValueError, match=choices) as info:
        to_wgs84(114.3, 30.6, datum=bad)
    assert "\n" not in str(info.value)


def test_to_wgs84_datum_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        to_wgs84(114.3, 30.6, "gcj02")  # type: ignore[misc]


# --- shapes and types ------------------------------------------------------------------

ALL_FUNCS = [
    wgs84_to_gcj02,
    gcj02_to_wgs84,
    gcj02_to_bd09,
    bd09_to_gcj02,
    wgs84_to_bd09,
    bd09_to_wgs84,
]


@pytest.mark.parametrize("func", ALL_FUNCS, ids=lambda f: f.__name__)
def test_shape_preserved_2d(func) -> None:
    lon, lat = np.meshgrid(np.linspace(100.0, 120.0, 4), np.linspace(20.0, 45.0, 3))
    out_lon, out_lat = func(lon, lat)
    assert out_lon.shape == (3, 4) and out_lat.shape == (3, 4)
    assert out_lon.dtype == np.float64 and out_lat.dtype == np.float64
    flat_lon, flat_lat = func(lon.ravel(), lat.ravel())
    np.testing.assert_array_equal(out_lon.ravel(), flat_lon)
    np.testing.assert_array_equal(out_lat.ravel(), flat_lat)


@pytest.mark.parametrize("func", ALL_FUNCS, ids=lambda f: f.__name__)
def test_scalar_and_list_input(func) -> None:
    out_lon, out_lat = func(114.3, 30.6)
    assert out_lon.shape == () and out_lat.shape == ()
    list_lon, list_lat = func([114.3, 116.39], [30.6, 39.91])
    assert list_lon.shape == (2,)
    assert float(out_lon) == list_lon[0] and float(out_lat) == list_lat[0]


def test_broadcasting_and_integer_input() -> None:
    out_lon, out_lat = wgs84_to_gcj02([110, 114, 118], 30)
    assert out_lon.shape == (3,) and out_lat.shape == (3,)
    assert out_lon.dtype == np.float64
    np.testing.assert_allclose(out_lat[1], wgs84_to_gcj02(114.0, 30.0)[1])


def test_input_not_modified() -> None:
    lon = np.array([114.3, 116.39])
    lat = np.array([30.6, 39.91])
    gcj02_to_wgs84(lon, lat)
    bd09_to_wgs84(lon, lat)
    np.testing.assert_array_equal(lon, [114.3, 116.39])
    np.testing.assert_array_equal(lat, [30.6, 39.91])


def test_nan_propagates() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out_lon, out_lat = bd09_to_wgs84([np.nan, 114.3], [30.6, 30.6])
    assert np.isnan(out_lon[0]) and np.isfinite(out_lon[1]) and np.isfinite(out_lat[1])


def test_constants_exposed() -> None:
    assert datum.INVERSE_TOLERANCE_DEG == 1e-10
    assert datum.INVERSE_MAX_ITER >= 10
