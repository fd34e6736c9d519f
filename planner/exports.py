"""Report exports: one GeoPackage with every layer, and summary tables as CSV and XLSX.

Table headers are bilingual ("覆盖率 coverage (%)") so that they can be pasted
into Chinese reports as they are. CSV files are written as UTF-8 with a byte
order mark, which Excel needs to show Chinese correctly. Both go through
:func:`planner.io.write_csv` and :func:`planner.io.write_xlsx`, which make any
text a spreadsheet would run as a formula inert.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import settings
from .io import write_csv, write_xlsx

if TYPE_CHECKING:
    from .pipeline import CoverageRun

HEADERS: dict[str, str] = {
    "minutes": "阈值(分钟) threshold (min)",
    "population_covered": "覆盖人口 population covered",
    "coverage_pct": "覆盖率 coverage (%)",
    "tier": "机构等级 tier",
    "label_zh": "等级说明 tier (zh)",
    "institutions": "机构数 institutions",
    "population_nearest_covered": "最近机构为该等级且覆盖的人口 covered, nearest of this tier",
    "district": "区县 district",
    "population": "研究区人口 population (study area)",
    "gap_population": "缺口人口 gap population",
    "mean_travel_time_min": "平均出行时间(分钟) mean travel time (min)",
    "district_population_total": "区县总人口 district population",
    "share_in_study_area_pct": "研究区内人口占比 share in study area (%)",
}


def summary_tables(summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Turn a run summary into report tables with bilingual headers.

    Parameters
    ----------
    summary
        ``run.summary`` of a coverage run.

    Returns
    -------
    tables
        ``thresholds``, ``by_tier`` and ``by_district`` DataFrames.
    """
    thresholds = pd.DataFrame(summary["thresholds"])
    by_tier = pd.DataFrame([{"tier": t, **v} for t, v in summary["by_tier"].items()])
    by_district = pd.DataFrame(summary["by_district"])
    tables = {"thresholds": thresholds, "by_tier": by_tier, "by_district": by_district}
    return {k: v.rename(columns=HEADERS) for k, v in tables.items()}


def write_tables(summary: dict[str, Any], folder: Path) -> list[Path]:
    """Write the summary tables as ``tables.xlsx`` (one sheet each) and one CSV each.

    Parameters
    ----------
    summary
        ``run.summary`` of a coverage run.
    folder
        Output folder.

    Returns
    -------
    paths
        Files written.
    """
    tables = summary_tables(summary)
    paths = []
    xlsx = folder / "tables.xlsx"
    note = pd.DataFrame({"说明 note": [
        f"人口口径 population: {summary.get('population_unit', '')}",
        f"出行方式 mode: {summary.get('mode')}; 阈值 threshold: {summary.get('max_minutes')} min",
        settings.ATTRIBUTION_OSM,
        settings.ATTRIBUTION_WORLDPOP,
    ]})
    write_xlsx({"about": note, **tables}, xlsx)
    paths.append(xlsx)
    for name, df in tables.items():
        paths.append(write_csv(df, folder / f"{name}.csv"))
    return paths


def write_geopackage(run: CoverageRun, path: Path) -> Path:
    """Write every layer of a run into one GeoPackage.

    Parameters
    ----------
    run
        A coverage run.
    path
        ``.gpkg`` file to write.

    Returns
    -------
    path
        The file written; layers ``cells``, ``institutions``, ``isochrones``
        and (with boundaries) ``districts``.
    """
    run.cells.reset_index().to_file(path, layer="cells", driver="GPKG")
    run.institutions.reset_index().to_file(path, layer="institutions", driver="GPKG")
    if len(run.isochrones):
        run.isochrones.to_file(path, layer="isochrones", driver="GPKG")
    if run.districts is not None:
        run.districts.to_file(path, layer="districts", driver="GPKG")
    return path
