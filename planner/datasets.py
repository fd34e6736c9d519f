"""Paths to the real data shipped in ``geodata/`` (see ``geodata/README.md``).

Examples
--------
>>> from planner import datasets
>>> datasets.get_path("wuhan_roads").name
'roads.gpkg'
"""

from __future__ import annotations

from pathlib import Path

from ._errors import InputFileError

#: Folder holding the shipped data (the repository's ``geodata/``).
GEODATA = Path(__file__).resolve().parent.parent / "geodata"

_FILES: dict[str, str] = {
    "wuhan_roads": "wuhan/roads.gpkg",
    "wuhan_institutions": "wuhan/institutions.geojson",
    "wuhan_population": "wuhan/population_age20plus_100m.tif",
    "wuhan_districts": "wuhan/districts.gpkg",
    "wuhan_boundary": "wuhan/boundary.geojson",
    "guanggu_osm": "osm/wuhan_guanggu_east_lake_hitech.osm",
    "guanggu_pbf": "osm/wuhan_guanggu_east_lake_hitech.osm.pbf",
    "ninghua_osm": "osm/fujian_ninghua_county_town.osm",
    "haidian_bupt_osm": "osm/beijing_haidian_bupt.osm",
    "haidian_bupt_pbf": "osm/beijing_haidian_bupt.osm.pbf",
    "haidian_cau_east_osm": "osm/beijing_haidian_cau_east.osm",
    "haidian_cau_east_pbf": "osm/beijing_haidian_cau_east.osm.pbf",
    "haidian_tsinghua_pku_osm": "osm/beijing_haidian_tsinghua_pku.osm",
    "shenzhen_longgang_osm": "osm/shenzhen_longgang.osm",
}

#: What the Wuhan population raster counts; show it wherever totals appear.
WUHAN_POPULATION_LABEL = "persons aged 20+ (WorldPop; ages 0-19 not included)"


def available() -> list[str]:
    """List the names of the shipped files.

    Returns
    -------
    names
        Names accepted by :func:`get_path`.
    """
    return sorted(_FILES)


def get_path(name: str) -> Path:
    """Return the path of a shipped file.

    Parameters
    ----------
    name
        One of :func:`available`.

    Returns
    -------
    path
        Absolute path inside ``geodata/``.

    Raises
    ------
    InputFileError
        If the name is unknown or the file is missing.
    """
    if name not in _FILES:
        msg = f"unknown dataset '{name}'; fix: choose one of {', '.join(available())}"
        raise InputFileError(msg)
    path = GEODATA / _FILES[name]
    if not path.exists():
        msg = f"{path}: shipped dataset '{name}' is missing; fix: restore geodata/ from the repository"
        raise InputFileError(msg)
    return path
