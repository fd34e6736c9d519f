"""Report-ready tables: one registry of columns and one writer for every CSV and XLSX planner writes.

Every table planner writes (``thresholds.csv``, ``by_tier.csv``, ``by_district.csv``, ``tables.xlsx``,
``served.csv``, ``norms.csv``, ``sites.csv``, ``marginal_curve.csv``, ``assignment.csv``, ``grids.csv``,
``districts.csv``, ``referral.csv``, ``compare_by_district.csv``, ``compare_by_tier.csv``, ...) leaves
through :func:`report_table` and :func:`write_table` / :func:`write_tables`:

* each column is declared once in :data:`SCHEMAS` as a :class:`Column` (Chinese name, English name,
  unit and *kind*); a column nobody declared is an error, so no number leaves unlabelled;
* the header is ``中文(单位) English (unit)``, e.g. ``覆盖人口(人) population covered (persons)``,
  ``覆盖率(%) coverage (%)``, ``平均出行时间(分钟) mean travel time (min)``; text columns have no unit
  (``区县 district``);
* the kind decides the rounding (:data:`DECIMALS`): persons, counts, ranks and metres as whole
  numbers (written without ``.0``), percentages, percentage points and minutes to 0.1, km to 0.01,
  degrees to 0.000001; other numeric kinds declare their decimals there too; text, ids and
  yes/no flags are left as they are;
* rounding keeps the books: where a table shows parts and their total, the parts are rounded by the
  largest-remainder method so that they still add up to the rounded total (:func:`largest_remainder`);
  a subtotal of some of the parts is the sum of those rounded parts;
  a column whose values add up to a figure of the run (cell or grid populations) is rounded so that
  its rounded sum is the rounded sum; increments of a cumulative column are the differences of the
  rounded cumulative values; a change (B - A) is the difference of the rounded A and B.

The files themselves are written by :func:`planner.io.write_csv` and :func:`planner.io.write_xlsx`
(UTF-8 with BOM, text made inert for spreadsheets); ``summary.json`` keeps full precision.

Examples
--------
>>> t = report_table(pd.DataFrame({"district": ["甲", "乙"], "population": [1000.4, 2000.4],
...                                "population_covered": [600.6, 1200.3], "gap_population": [399.8, 800.1],
...                                "coverage_pct": [60.04, 60.0]}), "by_district")
>>> list(t.columns)[:3]
['区县 district', '研究区内人口(人) population in study area (persons)', '覆盖人口(人) population covered (persons)']
>>> t.iloc[:, [1, 2, 4]].to_numpy().tolist()  # 600.6 + 399.8 = 1000.4: parts 600 + 400 = 1000
[[1000, 600, 400], [2000, 1200, 800]]
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import settings
from .io import write_csv, write_xlsx

#: Decimals of each numeric kind of column (None: not rounded, not a number to round).
DECIMALS: dict[str, int | None] = {
    "text": None,  # names, labels, statuses: left as they are
    "id": None,  # identifiers (text or integers): left as they are
    "flag": None,  # True/False: left as it is
    "persons": 0,  # whole persons
    "count": 0,  # institutions, cells, grids, sites
    "rank": 0,  # 1, 2, ...
    "metres": 0,  # whole metres
    "pct": 1,  # %, to 0.1
    "pp": 1,  # percentage points, to 0.1
    "minutes": 1,  # minutes, to 0.1
    "seconds": 1,  # seconds, to 0.1
    "km": 2,  # km, to 0.01
    "degrees": 6,  # longitude/latitude, to 0.000001° (about 0.1 m)
    "ratio": 2,  # load ratios (population / target)
    "share": 3,  # shares of 1 (0-1)
    "per_1000": 2,  # per 1,000 residents
    "measure": 2,  # a norm's measured value or bound, in the unit its row names
    "amount": 1,  # a capacity in the unit of the institutions' capacity column
    "gap": 4,  # a solver's relative optimality gap
}
#: The unit (Chinese, English) of a kind, when the column does not give its own.
KIND_UNITS: dict[str, tuple[str, str]] = {
    "persons": ("人", "persons"), "pct": ("%", "%"), "pp": ("百分点", "pp"), "minutes": ("分钟", "min"),
    "seconds": ("秒", "s"), "km": ("公里", "km"), "metres": ("米", "m"), "degrees": ("度", "°"),
    "per_1000": ("每千人", "per 1,000 residents"), "share": ("0-1", "0-1"),
}


@dataclass(frozen=True)
class Column:
    """One declared column of a report table.

    Parameters
    ----------
    zh, en
        Chinese and English names.
    kind
        A key of :data:`DECIMALS`; it decides the rounding and the default unit (:data:`KIND_UNITS`).
    unit_zh, unit_en
        The unit, when the kind's default does not fit (``"所"`` for institutions); ``""`` for none.

    Examples
    --------
    >>> Column("覆盖人口", "population covered", "persons").header
    '覆盖人口(人) population covered (persons)'
    >>> Column("机构数", "institutions", "count", unit_zh="所").header
    '机构数(所) institutions'
    >>> Column("区县", "district").header
    '区县 district'
    """

    zh: str
    en: str
    kind: str = "text"
    unit_zh: str | None = None
    unit_en: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in DECIMALS:
            msg = f"column {self.en!r}: unknown kind {self.kind!r}; fix: use one of {', '.join(DECIMALS)}"
            raise ValueError(msg)

    @property
    def decimals(self) -> int | None:
        """Decimals the column is rounded to (None: not rounded)."""
        return DECIMALS[self.kind]

    @property
    def units(self) -> tuple[str, str]:
        """The unit in Chinese and English (``""`` for none)."""
        zh, en = KIND_UNITS.get(self.kind, ("", ""))
        return (zh if self.unit_zh is None else self.unit_zh, en if self.unit_en is None else self.unit_en)

    @property
    def header(self) -> str:
        """``中文(单位) English (unit)``; without the brackets where there is no unit."""
        uzh, uen = self.units
        return f"{self.zh}{f'({uzh})' if uzh else ''} {self.en}{f' ({uen})' if uen else ''}"


@dataclass(frozen=True)
class Schema:
    """The columns of one table and the sums its rounding must keep.

    Parameters
    ----------
    columns
        Column key (as in the computed table) to its :class:`Column`, in output order.
    parts
        ``(total, (part, ...))``: in each row the rounded parts add up to the rounded total.
    sums
        ``(subtotal, (part, ...))``: the subtotal is the sum of the rounded parts (after `parts`), so that a
        subtotal of some parts of a total agrees with both.
    column_sums
        Columns whose rounded values add up to their rounded sum.
    cumulative
        ``(cumulative, increment)``: each rounded increment is the difference of two rounded cumulative values.
    differences
        ``(change, b, a)``: the change is recomputed as rounded `b` minus rounded `a`.
    """

    columns: dict[str, Column]
    parts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    sums: tuple[tuple[str, tuple[str, ...]], ...] = ()
    column_sums: tuple[str, ...] = ()
    cumulative: tuple[tuple[str, str], ...] = ()
    differences: tuple[tuple[str, str, str], ...] = ()
    extra: dict[str, Column] = field(default_factory=dict)  # columns a table may have beyond `columns`


_TIER_ZH = {"tertiary": "三级医院", "secondary": "二级医院", "primary": "基层医疗卫生机构", "station": "卫生服务站/村卫生室"}
_C = Column
# Columns shared by several tables (a table's schema may override one with its own wording).
COLUMNS: dict[str, Column] = {
    "district": _C("区县", "district"),
    "tier": _C("机构等级", "tier"),
    "label_zh": _C("等级名称", "tier name (Chinese)"),
    "name": _C("机构名称", "name"),
    "facility_id": _C("机构编号", "facility id", "id"),
    "minutes": _C("阈值", "threshold", "minutes"),
    "population": _C("人口", "population", "persons"),
    "population_covered": _C("覆盖人口", "population covered", "persons"),
    "coverage_pct": _C("覆盖率", "coverage", "pct"),
    "institutions": _C("机构数", "institutions", "count", unit_zh="所", unit_en=""),
    "lon": _C("经度", "longitude", "degrees", unit_en="°, WGS-84"),
    "lat": _C("纬度", "latitude", "degrees", unit_en="°, WGS-84"),
    "mean_travel_time_min": _C("平均出行时间", "mean travel time", "minutes"),
    "p95_travel_time_min": _C("95%出行时间", "95th percentile travel time", "minutes"),
    "max_travel_time_min": _C("最长出行时间", "max travel time", "minutes"),
    "travel_time_min": _C("出行时间", "travel time", "minutes"),
    "capacity_per_1000": _C("每千人容量", "capacity per 1,000 residents", "per_1000", unit_zh="", unit_en=""),
}


def _cols(*keys: str, **own: Column) -> dict[str, Column]:
    """Shared columns `keys` (in order) and the table's own columns `own`, in the order given (own last)."""
    return {**{k: COLUMNS[k] for k in keys}, **own}


_TIER_COUNTS = {f"institutions_{t}": _C(f"{_TIER_ZH[t]}数", f"{t} institutions", "count", unit_zh="所", unit_en="")
                for t in settings.TIERS}
_DISTRICT_POPULATION = _C("研究区内人口", "population in study area", "persons")
_CHANGE = _C("覆盖率变化", "change in coverage", "pp")

#: Every table planner writes, by name: its columns and the sums its rounding keeps.
SCHEMAS: dict[str, Schema] = {
    "thresholds": Schema(_cols("minutes", "population_covered", "coverage_pct")),
    "by_tier": Schema(_cols("tier", "label_zh", "institutions", "population_covered", "coverage_pct",
                            population_nearest_covered=_C("最近机构为该等级且覆盖的人口", "covered, nearest of this tier",
                                                          "persons"))),
    "by_district": Schema(
        _cols("district", population=_DISTRICT_POPULATION, population_covered=COLUMNS["population_covered"],
              coverage_pct=COLUMNS["coverage_pct"],
              gap_population=_C("缺口人口", "gap population, not covered", "persons"),
              mean_travel_time_min=COLUMNS["mean_travel_time_min"], institutions=COLUMNS["institutions"],
              district_population_total=_C("区县总人口", "district population", "persons"),
              share_in_study_area_pct=_C("研究区内人口占比", "share in study area", "pct")),
        parts=(("population", ("population_covered", "gap_population")),)),
    "capacity_by_district": Schema(
        _cols("district", population_total=_C("研究区内人口", "population in study area", "persons"),
              population_served=_C("获服务人口", "population served", "persons"),
              population_unserved=_C("未获服务人口", "population unserved", "persons"),
              unserved_out_of_reach=_C("不可达人口", "unserved: out of reach", "persons"),
              unserved_over_capacity=_C("超出容量人口", "unserved: over capacity", "persons"),
              served_pct=_C("获服务率", "served", "pct")),
        parts=(("population_total", ("population_served", "unserved_out_of_reach", "unserved_over_capacity")),),
        sums=(("population_unserved", ("unserved_out_of_reach", "unserved_over_capacity")),)),
    "served": Schema(_cols("facility_id", "name", "tier",
                           capacity=_C("服务能力", "capacity", "persons"),
                           demand_within_t=_C("阈值内需求人口", "demand within the threshold", "persons"),
                           served=_C("服务人口", "served", "persons"),
                           utilisation_pct=_C("利用率", "utilisation", "pct"))),  # rows rounded alone: served <= capacity
    "norms": Schema({
        "district": COLUMNS["district"],
        "norm": _C("指标编号", "norm id"),
        "kind": _C("类型", "kind"),
        "label_zh": _C("指标", "norm (中文)"),
        "label_en": _C("指标", "norm (English)"),
        "measured": _C("实测值", "measured", "measure", unit_zh="见单位列", unit_en="see unit"),
        "comparison": _C("比较", "comparison"),
        "norm_value": _C("标准值", "norm value", "measure", unit_zh="见单位列", unit_en="see unit"),
        "unit": _C("单位", "unit"),
        "passed": _C("是否达标", "pass/fail"),
        "shortfall": _C("缺口", "shortfall", "count", unit_zh="见缺口单位列", unit_en="see shortfall unit"),
        "shortfall_unit": _C("缺口单位", "shortfall unit"),
        "gap_zh": _C("差距说明", "gap (中文)"),
        "gap_en": _C("差距说明", "gap (English)"),
        "source": _C("来源", "source"),
        "standing": _C("依据等级", "standing"),
        "note": _C("备注", "note"),
    }),
    "sites": Schema(_cols(facility_id=_C("站点编号", "site id", "id"), rank=_C("排名", "rank", "rank"),
                          name=COLUMNS["name"], lon=COLUMNS["lon"], lat=COLUMNS["lat"],
                          added_population=_C("新增覆盖人口", "added population", "persons"),
                          cumulative_pct=_C("累计覆盖率", "cumulative coverage", "pct"),
                          adds_population=_C("是否新增人口", "adds population (True/False)", "flag"),
                          district=COLUMNS["district"]),
                    column_sums=("added_population",)),
    "marginal_curve": Schema(
        {"n_sites": _C("新增站点数", "new sites", "count", unit_zh="个", unit_en=""),
         "covered_population": _C("覆盖人口", "population covered", "persons"),
         "covered_pct": COLUMNS["coverage_pct"],
         "added_population": _C("新增覆盖人口", "added population", "persons"),
         "adds_population": _C("是否新增人口", "adds population (True/False)", "flag"),
         "status": _C("求解状态", "solver status"),
         "mip_gap": _C("最优间隙", "MIP gap", "gap", unit_zh="0-1", unit_en="0-1"),
         "solve_s": _C("求解时间", "solve time", "seconds")},
        cumulative=(("covered_population", "added_population"),)),
    "assignment": Schema(
        {"cell_id": _C("单元编号", "cell id", "id"), "lon": COLUMNS["lon"], "lat": COLUMNS["lat"],
         "population": COLUMNS["population"], "district": COLUMNS["district"],
         "lead_id": _C("牵头医院编号", "lead id", "id"), "lead_name": _C("牵头医院", "lead hospital"),
         "travel_time_min": _C("到牵头医院出行时间", "travel time to lead", "minutes"),
         "baseline_lead_id": _C("就近牵头医院编号", "nearest lead id", "id"),
         "baseline_lead_name": _C("就近牵头医院", "nearest lead"),
         "baseline_travel_time_min": _C("到就近牵头医院出行时间", "travel time to nearest lead", "minutes"),
         "moved": _C("是否改划", "moved from nearest lead (True/False)", "flag"),
         "accessibility_per_1000": _C("可达性", "accessibility", "per_1000", unit_zh="每千人", unit_en="per 1,000")},
        column_sums=("population",)),
    "grids": Schema(
        {"facility_id": _C("牵头医院编号", "lead id", "id"), "name": _C("牵头医院", "lead hospital"),
         "population": _C("网格人口", "grid population", "persons"),
         "capacity_share": _C("容量份额", "capacity share", "share"),
         "target_population": _C("目标人口", "target population", "persons"),
         "load_ratio": _C("负荷比", "load ratio (population / target)", "ratio"),
         "baseline_population": _C("就近划分人口", "nearest-lead population", "persons"),
         "baseline_load_ratio": _C("就近划分负荷比", "nearest-lead load ratio", "ratio"),
         "mean_travel_time_min": COLUMNS["mean_travel_time_min"],
         "p95_travel_time_min": COLUMNS["p95_travel_time_min"],
         "max_travel_time_min": COLUMNS["max_travel_time_min"],
         "n_cells": _C("单元数", "cells", "count", unit_zh="个", unit_en=""),
         "members": _C("成员机构数", "members", "count", unit_zh="所", unit_en=""),
         "capacity_per_1000": COLUMNS["capacity_per_1000"]},
        column_sums=("population", "baseline_population", "target_population")),
    "districts": Schema(
        {"district": COLUMNS["district"], "population": _DISTRICT_POPULATION,
         "population_assigned": _C("已划入网格人口", "population assigned to a grid", "persons"),
         "n_grids": _C("网格数", "grids", "count", unit_zh="个", unit_en=""),
         "main_lead": _C("主要牵头医院编号", "main lead id", "id"),
         "main_lead_name": _C("主要牵头医院", "main lead hospital"),
         "mean_travel_time_min": COLUMNS["mean_travel_time_min"],
         "p95_travel_time_min": COLUMNS["p95_travel_time_min"],
         "max_travel_time_min": COLUMNS["max_travel_time_min"],
         "institutions": COLUMNS["institutions"], **_TIER_COUNTS,
         "capacity": _C("容量", "capacity", "amount", unit_zh="容量列单位", unit_en="unit of the capacity column"),
         "capacity_missing": _C("缺容量机构数", "institutions without capacity", "count", unit_zh="所", unit_en=""),
         "capacity_per_1000": COLUMNS["capacity_per_1000"]},
        parts=(("institutions", tuple(_TIER_COUNTS)),)),
    "referral": Schema({
        "from_id": _C("转出机构编号", "from id", "id"), "from_name": _C("转出机构", "from institution"),
        "from_tier": _C("转出机构等级", "from tier"), "to_id": _C("转入机构编号", "to id", "id"),
        "to_name": _C("转入机构", "to institution"), "to_tier": _C("转入机构等级", "to tier"),
        "travel_time_min": _C("转诊出行时间", "referral travel time", "minutes"),
        "distance_km": _C("转诊距离", "referral distance", "km"),
        "within_threshold": _C("是否在阈值内", "within threshold (True/False)", "flag"),
        "status": _C("状态", "status"), "district": COLUMNS["district"],
        "lead_id": _C("牵头医院编号", "lead id", "id"), "lead_name": _C("牵头医院", "lead hospital"),
        "lead_tier": _C("牵头医院等级", "lead tier"),
        "lead_travel_time_min": _C("到牵头医院出行时间", "travel time to lead", "minutes"),
        "lead_distance_km": _C("到牵头医院距离", "distance to lead", "km"),
        "lead_within_threshold": _C("牵头医院是否在阈值内", "lead within threshold (True/False)", "flag"),
        "lead_status": _C("牵头医院状态", "lead status")}),
    "compare_by_district": Schema(
        {"district": COLUMNS["district"], "coverage_pct_a": _C("覆盖率A", "coverage A", "pct"),
         "coverage_pct_b": _C("覆盖率B", "coverage B", "pct"), "change_pp": _CHANGE,
         "population_covered_a": _C("覆盖人口A", "population covered A", "persons"),
         "population_covered_b": _C("覆盖人口B", "population covered B", "persons")},
        differences=(("change_pp", "coverage_pct_b", "coverage_pct_a"),)),
    "compare_by_tier": Schema(
        {"tier": COLUMNS["tier"], "coverage_pct_a": _C("覆盖率A", "coverage A", "pct"),
         "coverage_pct_b": _C("覆盖率B", "coverage B", "pct"), "change_pp": _CHANGE},
        differences=(("change_pp", "coverage_pct_b", "coverage_pct_a"),)),
    "about": Schema({"note": _C("说明", "note")}),
}


class UndeclaredColumnError(KeyError):
    """A table has a column its schema does not declare (a planner bug: declare it in :data:`SCHEMAS`)."""


def header(key: str, table: str | None = None) -> str:
    """Return the bilingual header of column `key` (of `table`'s schema, else of the shared :data:`COLUMNS`).

    Examples
    --------
    >>> header("coverage_pct")
    '覆盖率(%) coverage (%)'
    >>> header("population", "grids")
    '网格人口(人) grid population (persons)'
    """
    cols = SCHEMAS[table].columns if table is not None else COLUMNS
    return cols[key].header


def headers(table: str) -> dict[str, str]:
    """Return column key to bilingual header, for every column of `table` (to read a written table back by key)."""
    return {k: c.header for k, c in SCHEMAS[table].columns.items()}


def largest_remainder(parts: Sequence[float] | np.ndarray, total: float, decimals: int = 0) -> np.ndarray:
    """Round `parts` to `decimals` so that they add up to `total` rounded to `decimals` (largest-remainder method).

    Each part is rounded down, and the units still missing go to the parts with the largest remainders
    (ties to the earlier part). If the parts do not add up to `total` within one unit per part (they
    are not parts of it), they are rounded one by one instead. NaN parts stay NaN and count as 0.

    Examples
    --------
    >>> largest_remainder([600.6, 399.8], 1000.4).tolist()  # 600 + 399 and one unit more: to .8, the largest
    [600.0, 400.0]
    >>> largest_remainder([33.33, 33.33, 33.34], 100, 1).tolist()
    [33.3, 33.3, 33.4]
    >>> largest_remainder([0.4, 0.4, 0.4, 0.4, 0.4], 2.0).tolist()
    [1.0, 1.0, 0.0, 0.0, 0.0]
    """
    x = np.asarray(parts, dtype=float)
    scale = 10.0 ** decimals
    ok = ~np.isnan(x)
    scaled = np.where(ok, x, 0.0) * scale
    floor = np.floor(scaled + 1e-9)
    target = round(float(total) * scale) if not math.isnan(float(total)) else math.nan
    missing = target - floor.sum()
    if math.isnan(missing) or missing < 0 or missing > int(ok.sum()):
        return np.array([round(v, decimals) if k else np.nan for v, k in zip(x.tolist(), ok.tolist(), strict=True)])
    order = np.argsort(-(scaled - floor), kind="stable")
    order = order[ok[order]]
    floor[order[: int(missing)]] += 1
    out = np.round(floor / scale, decimals)
    return np.where(ok, out, np.nan)


def _round(s: pd.Series, decimals: int) -> pd.Series:
    """Round like Python's :func:`round` and ``f"{x:.1f}"`` (on the exact binary value), so a table and the terminal agree.

    NumPy's rounding scales first (``np.round(2.15, 1)`` is 2.2, though 2.15 is stored as 2.1499…; ``f"{2.15:.1f}"``
    prints 2.1).
    """
    return s.map(lambda v: v if math.isnan(v) else round(v, decimals)).astype(float)


def _numeric(s: pd.Series) -> pd.Series:
    return s.astype(float) if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) \
        else pd.to_numeric(s, errors="coerce").astype(float)


def report_table(df: pd.DataFrame, columns: str | Schema, *, index: bool = False) -> pd.DataFrame:
    """Round and label a computed table for a report: the one shape of every CSV/XLSX table planner writes.

    Parameters
    ----------
    df
        The table, with the column keys of its schema (any order, any subset).
    columns
        A name in :data:`SCHEMAS` or a :class:`Schema`.
    index
        Take the index (named by a key of the schema) as the first column(s).

    Returns
    -------
    table
        The columns in the schema's order, rounded by their kinds (whole numbers as integers, with
        empty cells where missing), the sums of the schema kept, headers ``中文(单位) English (unit)``.

    Raises
    ------
    UndeclaredColumnError
        If `df` has a column the schema does not declare.
    """
    schema = SCHEMAS[columns] if isinstance(columns, str) else columns
    cols = {**schema.columns, **schema.extra}
    t = df.reset_index() if index else df.copy()
    unknown = [c for c in t.columns if c not in cols]
    if unknown:
        name = columns if isinstance(columns, str) else "table"
        msg = f"{name}: column(s) {', '.join(map(str, unknown))} not declared in planner.tables.SCHEMAS"
        raise UndeclaredColumnError(msg)
    t = t[[k for k in cols if k in t.columns]]
    rounded: dict[str, pd.Series] = {}
    for k in t.columns:
        d = cols[k].decimals
        if d is not None:
            rounded[k] = _round(_numeric(t[k]), d)
    for k in schema.column_sums:
        if k in rounded:
            v = _numeric(t[k])
            rounded[k] = pd.Series(largest_remainder(v.to_numpy(), v.sum(), cols[k].decimals or 0), index=t.index)
    for total, parts in schema.parts:
        present = [p for p in parts if p in rounded]
        if total not in rounded or not present:
            continue
        raw = np.column_stack([_numeric(t[p]).to_numpy() for p in present])
        d = cols[present[0]].decimals or 0
        for i, tot in enumerate(rounded[total].to_numpy()):
            if not np.isnan(tot) and not np.isnan(raw[i]).any():
                fixed = largest_remainder(raw[i], tot, d)
                for j, p in enumerate(present):
                    rounded[p].iat[i] = fixed[j]
    for total, parts in schema.sums:
        if total in rounded and all(p in rounded for p in parts):
            rounded[total] = _round(sum((rounded[p] for p in parts[1:]), rounded[parts[0]]), cols[total].decimals or 0)
    for cum, inc in schema.cumulative:
        if cum in rounded and inc in rounded and len(t):
            c, a = _numeric(t[cum]).to_numpy(), _numeric(t[inc]).to_numpy()
            d = cols[inc].decimals or 0
            start = round(c[0] - a[0], d) if not (np.isnan(c[0]) or np.isnan(a[0])) else np.nan
            prev = np.concatenate([[start], rounded[cum].to_numpy()[:-1]])
            rounded[inc] = _round(pd.Series(rounded[cum].to_numpy() - prev, index=t.index), d)
    for change, b, a in schema.differences:
        if change in rounded and b in rounded and a in rounded:
            rounded[change] = _round(rounded[b] - rounded[a], cols[change].decimals or 0)
    for k, v in rounded.items():
        t[k] = v.astype("Int64") if cols[k].decimals == 0 else v
    return t.rename(columns={k: cols[k].header for k in t.columns})


def write_table(df: pd.DataFrame, path: str | os.PathLike[str], columns: str | Schema, *, index: bool = False) -> Path:
    """Write one table as CSV (:func:`report_table`, then :func:`planner.io.write_csv`).

    Returns
    -------
    path
        The file written.
    """
    return write_csv(report_table(df, columns, index=index), Path(path))


def write_tables(tables: Mapping[str, pd.DataFrame], path: str | os.PathLike[str], *,
                 about: Iterable[str] = ()) -> Path:
    """Write tables as the sheets of one XLSX workbook: first ``about`` (the lines of `about`), then one per table.

    Parameters
    ----------
    tables
        Schema name (:data:`SCHEMAS`) to computed table; the sheet takes the schema's name.
    path
        ``.xlsx`` file.
    about
        Lines of the ``about`` sheet (what the run was, the credits of its data).

    Returns
    -------
    path
        The file written.
    """
    sheets = {"about": report_table(pd.DataFrame({"note": list(about)}), "about")}
    sheets.update({name: report_table(df, name) for name, df in tables.items()})
    return write_xlsx(sheets, Path(path))


def read_report_csv(path: str | os.PathLike[str], table: str | None = None, **kwargs: object) -> pd.DataFrame:
    """Read a CSV planner wrote back with its columns named by key (``population_covered``, not the header).

    Parameters
    ----------
    path
        The CSV file.
    table
        Its schema name in :data:`SCHEMAS`; by default the file's name without ``.csv``.
    **kwargs
        Passed to :func:`pandas.read_csv` (``dtype`` may name columns by key).

    Returns
    -------
    table
        The table, columns named by key.
    """
    name = Path(path).stem if table is None else table
    by_header = {v: k for k, v in headers(name).items()}
    dtype = kwargs.pop("dtype", None)
    if isinstance(dtype, Mapping):
        dtype = {headers(name).get(k, k): v for k, v in dtype.items()}
    frame = pd.read_csv(path, encoding="utf-8-sig", dtype=dtype, **kwargs)  # type: ignore[arg-type]
    return frame.rename(columns=by_header)
