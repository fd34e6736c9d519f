"""Property tests of the table loaders: whatever a table holds, a loaded table or one PlannerError line.

Tables are generated with hypothesis: ids that collide (also after number parsing: ``1``,
``01``, ``1.0``, 20-digit codes), duplicate and empty names, names holding the separator, quotes
or spreadsheet formulas, swapped, NaN, empty or projected coordinates, and files in UTF-8,
UTF-8 with BOM and GBK, separated by commas, semicolons or tabs, or saved as XLSX.

Two properties per loader:

* **any table**: the loader returns a table whose ids are distinct and whose rows are all
  accounted for (kept, or counted in a message), or it raises a
  :class:`planner.PlannerError` with a one-line message; never another exception;
* **a valid table** (real positions, distinct ids) loads, row for row, with the ids, names and
  coordinates it holds.
"""

from __future__ import annotations

import csv
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import PlannerError
from planner.demand import load_population
from planner.institutions import load_institutions

# deterministic examples (the same on every run and machine) and no example database written into the checkout
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

NAMES = ["关山街社区卫生服务中心", "武汉大学人民医院", "村卫生室", "北京中仁中医医院", "Clinic 1", "123", "医院, 分院",
         "名称;含分号", "引号\"医院\"", "=1+1", "@SUM(A1)", "-2 诊所", "  前后空格  ", "a|b 卫生院", "翠江社区卫生服务中心"]
EMPTY_NAMES = ["", " ", "\t"]
ID_POOL = ["1", "01", "001", "1.0", "2", "A-1", "way/1", "12345678901234567890", "12345678901234567891", "  3", "编号7"]
HEADERS = {"name": ["name", "名称", "机构名称"], "lon": ["lon", "经度", "lng"], "lat": ["lat", "纬度", "latitude"],
           "id": ["id", "编号", "facility_id"], "tier": ["tier", "等级"], "population": ["population", "人口", "pop"]}
FORMATS = [("csv", ",", "utf-8"), ("csv", ",", "utf-8-sig"), ("csv", ",", "gbk"), ("csv", ";", "utf-8"),
           ("tsv", "\t", "gbk"), ("xlsx", None, None)]
TIERS = ["", "三级甲等", "二级", "一级", "无等级", "2", "primary"]

# positions in China (WGS-84 degrees), rounded as tables hold them
LONS = st.floats(min_value=73.5, max_value=134.5, allow_nan=False).map(lambda x: round(x, 6))
LATS = st.floats(min_value=18.2, max_value=53.0, allow_nan=False).map(lambda x: round(x, 6))
BAD_COORDS = st.sampled_from(["", "nan", "NaN", "abc", "114,30", "1e6", "3500000", "-200"])


def _write(folder: Path, fmt: tuple[str, str | None, str | None], header: list[str], rows: list[list[Any]]) -> Path | None:
    """Write a table; None when the text cannot be encoded (e.g. GBK lacks a character)."""
    suffix, sep, encoding = fmt
    path = folder / f"table.{suffix}"
    if suffix == "xlsx":
        pd.DataFrame(rows, columns=header).to_excel(path, index=False)
        return path
    try:
        with path.open("w", newline="", encoding=encoding) as f:
            csv.writer(f, delimiter=sep).writerows([header, *rows])
    except UnicodeEncodeError:
        return None
    return path


def _one_line(exc: PlannerError) -> None:
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text, repr(text)


@st.composite
def institution_tables(draw, *, valid: bool) -> dict[str, Any]:
    n = draw(st.integers(min_value=1, max_value=7))
    names = draw(st.lists(st.sampled_from(NAMES + ([] if valid else EMPTY_NAMES)), min_size=n, max_size=n))
    lon = draw(st.lists(LONS, min_size=n, max_size=n))
    lat = draw(st.lists(LATS, min_size=n, max_size=n))
    if not valid:
        for i in draw(st.sets(st.integers(0, n - 1), max_size=n)):
            kind = draw(st.sampled_from(["swap", "bad_lon", "bad_lat"]))
            if kind == "swap":
                lon[i], lat[i] = lat[i], lon[i]
            elif kind == "bad_lon":
                lon[i] = draw(BAD_COORDS)
            else:
                lat[i] = draw(BAD_COORDS)
    with_id = draw(st.booleans())
    ids = None
    if with_id:
        pool = st.sampled_from(ID_POOL)
        ids = draw(st.lists(pool, min_size=n, max_size=n, unique=valid))
        if valid and len({i.strip() for i in ids}) < n:  # ids differing only by spaces are one id to a planner
            ids = [f"{i.strip()}-{k}" for k, i in enumerate(ids)]
    with_tier = draw(st.booleans())
    tiers = draw(st.lists(st.sampled_from(TIERS), min_size=n, max_size=n)) if with_tier else None
    headers = {k: draw(st.sampled_from(v)) for k, v in HEADERS.items()}
    fmt = draw(st.sampled_from(FORMATS))
    header = ([headers["id"]] if with_id else []) + [headers["name"], headers["lon"], headers["lat"]] + \
        ([headers["tier"]] if with_tier else [])
    rows = [([ids[i]] if with_id else []) + [names[i], lon[i], lat[i]] + ([tiers[i]] if with_tier else []) for i in range(n)]
    return {"n": n, "names": names, "lon": lon, "lat": lat, "ids": ids, "header": header, "rows": rows, "fmt": fmt}


def _load(path: Path, loader: Any) -> Any:
    try:
        return loader(path)
    except PlannerError as exc:
        _one_line(exc)
        return exc


@SETTINGS
@given(institution_tables(valid=False))
def test_any_institution_table_loads_or_fails_in_one_line(table):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), table["fmt"], table["header"], table["rows"])
        if path is None:
            return
        out = _load(path, load_institutions)
    if isinstance(out, PlannerError):
        return
    assert out.index.is_unique and out.index.notna().all()
    assert len(out) == table["n"]  # no row dropped silently
    assert out["name"].map(lambda s: isinstance(s, str) and s.strip() != "").all()
    assert np.isfinite(out["lon"]).all() and np.isfinite(out["lat"]).all()
    assert ((out["lon"].abs() <= 180) & (out["lat"].abs() <= 90)).all()
    assert set(out["tier"]) <= {"tertiary", "secondary", "primary", "station"}


@SETTINGS
@given(institution_tables(valid=True))
def test_valid_institution_table_loads_row_for_row(table):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), table["fmt"], table["header"], table["rows"])
        if path is None:
            return
        out = load_institutions(path)
    assert len(out) == table["n"] and out.index.is_unique
    if table["ids"] is not None:
        assert list(out.index) == [i.strip() for i in table["ids"]]
    assert list(out["name"]) == [s.strip() for s in table["names"]]
    assert np.allclose(out["lon"], table["lon"], rtol=0, atol=1e-9)
    assert np.allclose(out["lat"], table["lat"], rtol=0, atol=1e-9)


@st.composite
def population_tables(draw, *, valid: bool) -> dict[str, Any]:
    n = draw(st.integers(min_value=1, max_value=8))
    # points within about 5 km of a city centre, so that they share one UTM zone as a real table does
    lon0, lat0 = draw(st.sampled_from([(114.30, 30.59), (116.35, 39.96), (114.21, 22.69), (116.65, 26.27)]))
    dlon = draw(st.lists(st.floats(-0.05, 0.05), min_size=n, max_size=n))
    dlat = draw(st.lists(st.floats(-0.05, 0.05), min_size=n, max_size=n))
    lon = [round(lon0 + d, 6) for d in dlon]
    lat = [round(lat0 + d, 6) for d in dlat]
    pop: list[Any] = draw(st.lists(st.floats(0, 5000).map(lambda x: round(x, 2)), min_size=n, max_size=n))
    if not valid:
        for i in draw(st.sets(st.integers(0, n - 1), max_size=n)):
            kind = draw(st.sampled_from(["swap", "bad_lon", "bad_lat", "bad_pop", "negative"]))
            if kind == "swap":
                lon[i], lat[i] = lat[i], lon[i]
            elif kind == "bad_lon":
                lon[i] = draw(BAD_COORDS)
            elif kind == "bad_lat":
                lat[i] = draw(BAD_COORDS)
            elif kind == "bad_pop":
                pop[i] = draw(st.sampled_from(["", "nan", "many", "1,000"]))
            else:
                pop[i] = -1.0
    headers = {k: draw(st.sampled_from(v)) for k, v in HEADERS.items()}
    names = draw(st.lists(st.sampled_from(NAMES + EMPTY_NAMES), min_size=n, max_size=n))
    fmt = draw(st.sampled_from(FORMATS))
    header = [headers["name"], headers["lon"], headers["lat"], headers["population"]]
    rows = [[names[i], lon[i], lat[i], pop[i]] for i in range(n)]
    return {"n": n, "lon": lon, "lat": lat, "pop": pop, "header": header, "rows": rows, "fmt": fmt,
            "cell_m": draw(st.sampled_from([None, 100.0, 500.0]))}


def _population_loader(cell_m: float | None) -> Any:
    return lambda path: load_population(path, cell_size_m=cell_m)


@SETTINGS
@given(population_tables(valid=False))
def test_any_population_table_loads_or_fails_in_one_line(table):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), table["fmt"], table["header"], table["rows"])
        if path is None:
            return
        out = _load(path, _population_loader(table["cell_m"]))
    if isinstance(out, PlannerError):
        return
    assert out.index.is_unique and (out["population"] > 0).all()
    # every person accounted for: all of them are in the cells (no study area given)
    total = float(out.attrs["population_input_total"])
    assert float(out["population"].sum()) == pytest.approx(total, rel=1e-9, abs=1e-6)


@SETTINGS
@given(population_tables(valid=True))
def test_valid_population_table_keeps_every_person(table):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), table["fmt"], table["header"], table["rows"])
        if path is None:
            return
        expected = math.fsum(table["pop"])
        try:
            out = load_population(path, cell_size_m=table["cell_m"])
        except PlannerError as exc:
            assert expected == 0 and "no populated cells" in str(exc)
            return
    assert out.index.is_unique and (out["population"] > 0).all()
    assert float(out["population"].sum()) == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert float(out.attrs["population_input_total"]) == pytest.approx(expected, rel=1e-9, abs=1e-6)
