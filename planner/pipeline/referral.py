"""The referral pipeline (双向转诊): how long the trip up from each institution of some tiers takes.

:func:`run_referral` is what ``planner referral`` calls; :func:`referral_case`
does the same for a :class:`~planner.pipeline.Case`. Both return a frozen
:class:`ReferralRun`; :func:`planner.exports.write_referral_outputs` writes
it. The figures are those of :mod:`planner.referral`: the trip from every
institution of the from-tiers to the nearest institution of the to-tiers
and, with lead hospitals (a leads file or a ``planner grid`` folder), to its
own lead. Institutions that are off the network or outside the study area
stay in the table with their ``status``; they are never dropped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .. import settings
from .._errors import InputFileError, InvalidValueError
from .._validate import check_minutes
from .._version import __version__
from ..io import MANIFEST_NAME, OSM_SUFFIXES, TABLE_SUFFIXES, VECTOR_SUFFIXES, check_input, read_vector
from ..referral import referral_routes, referral_summary, referral_times
from ..travel_time import CompiledNetwork, nearest_facility_times, snap_points
from .case import _INPUT_KEYS, Case, CaseInputs, summary_credits
from .grid import _dedupe_leads, _grid_leads
from .summary import ReferralSummary

logger = logging.getLogger(__name__)

__all__ = ["ReferralRun", "check_referral_options", "load_grid_leads", "referral_case", "run_referral"]

GRID_KIND = "grids"  # the manifest kind of a `planner grid` output folder
LEAD_RULE_NEAREST = "nearest lead hospital by travel time (the leads file gives no grids)"
LEAD_RULE_GRID = "the lead of the grid each institution is a member of (planner grid)"


@dataclass(frozen=True)
class ReferralRun:
    """Everything one referral run produced.

    Attributes
    ----------
    case, net
        Loaded inputs and the compiled network.
    table
        One row per from-institution, long form (:func:`planner.referral.referral_times`):
        ``from_id`` … ``within_threshold``, ``status``, ``district`` (with
        boundaries) and the ``lead_*`` columns (with leads or a grid).
    routes
        Route lines of the routed trips (:func:`planner.referral.referral_routes`), EPSG:4326.
    leads
        The lead hospitals (index: lead id), or None.
    summary
        The report figures, written as ``summary.json`` (see
        :class:`planner.pipeline.summary.ReferralSummary`).
    """

    case: CaseInputs
    net: CompiledNetwork
    table: pd.DataFrame
    routes: gpd.GeoDataFrame
    leads: gpd.GeoDataFrame | None
    summary: ReferralSummary


def run_referral(
    network: str | os.PathLike[str],
    institutions: str | os.PathLike[str],
    population: str | os.PathLike[str],
    *,
    from_tiers: tuple[str, ...] | list[str] | str = ("primary",),
    to_tiers: tuple[str, ...] | list[str] | str = ("secondary", "tertiary"),
    max_minutes: float = 30.0,
    leads: str | os.PathLike[str] | None = None,
    grid: str | os.PathLike[str] | None = None,
    boundaries: str | os.PathLike[str] | None = None,
    mode: str = "drive",
    speed_kph: float | None = None,
    coords: str = "wgs84",
    population_coords: str = "wgs84",
    max_snap_m: float | None = None,
    cell_size_m: float | None = None,
    population_label: str = "population",
    credits: Any = None,
) -> ReferralRun:
    """Referral times from every institution of the from-tiers to the nearest of the to-tiers (and its own lead).

    Parameters
    ----------
    network, institutions, population, boundaries, mode, speed_kph, coords, population_coords, max_snap_m, cell_size_m
        As in :func:`planner.pipeline.run_coverage` (drive by default: a
        referral is a trip by car or ambulance).
    from_tiers, to_tiers
        Tiers that refer (e.g. ``primary``, ``station``) and tiers that
        receive (e.g. ``secondary``, ``tertiary``).
    max_minutes
        Referral threshold in minutes (30: the "half an hour" of the Jiangmen branch sites).
    leads
        File of lead hospitals (as institutions, in the datum `coords`; ids
        ``lead:<row>``): each institution's own lead is the nearest of them
        by travel time.
    grid
        Output folder of ``planner grid``: each institution's own lead is the
        lead of the grid it is a member of. Not with `leads`.
    population_label
        What the population counts.
    credits
        The user's credits of the inputs, role -> text (see :attr:`~planner.pipeline.Case.credits`).

    Returns
    -------
    run
        The referral table, routes and figures; ``run.summary`` holds the report figures.

    Raises
    ------
    PlannerError
        For unusable inputs: an unknown tier, a tier with no institution, no
        to-tier institution reachable (saying what is), a folder that is not
        a grid output.

    Examples
    --------
    >>> from planner import datasets
    >>> run = run_referral(datasets.get_path("wuhan_roads"), datasets.get_path("wuhan_institutions"),
    ...                    datasets.get_path("wuhan_population"), from_tiers="primary",
    ...                    to_tiers=("secondary", "tertiary"), max_minutes=30, cell_size_m=500)
    >>> run.summary["n_from"] == len(run.table) == int((run.case.institutions["tier"] == "primary").sum())
    True
    """
    case = Case(network=network, institutions=institutions, population=population, boundaries=boundaries, mode=mode,
                speed_kph=speed_kph, minutes=(max_minutes,), coords=coords, population_coords=population_coords,
                max_snap_m=max_snap_m, cell_size_m=cell_size_m, population_label=population_label, isochrones=False,
                credits=credits or ())
    return referral_case(case, from_tiers=from_tiers, to_tiers=to_tiers, max_minutes=max_minutes, leads=leads, grid=grid)


def referral_case(
    case: Case,
    *,
    from_tiers: tuple[str, ...] | list[str] | str,
    to_tiers: tuple[str, ...] | list[str] | str,
    max_minutes: float | None = None,
    leads: str | os.PathLike[str] | None = None,
    grid: str | os.PathLike[str] | None = None,
) -> ReferralRun:
    """Referral times for a :class:`~planner.pipeline.Case`: load its inputs, then route.

    The case gives the files, mode, speeds, datums, snap distance, cell size
    and population label; the keywords are as in :func:`run_referral`.
    `max_minutes` defaults to the case's largest threshold.

    Returns
    -------
    run
        The referral results.

    Raises
    ------
    PlannerError
        As :func:`run_referral`.
    """
    t0 = time.perf_counter()
    minutes = float(max(case.minutes) if max_minutes is None else max_minutes)
    frm_t, to_t = check_referral_options(from_tiers, to_tiers, max_minutes=minutes, leads=leads, grid=grid)
    inputs = case.load()
    net, inst = inputs.net, inputs.institutions
    speed_kph = inputs.options.get("speed_kph")
    access_kph = (speed_kph if case.mode == "walk" and speed_kph is not None else None) or \
        settings.ACCESS_SPEED_KPH or settings.WALK_SPEED_KPH  # as coverage's access legs
    lead_gdf, lead_of, lead_source, lead_rule = None, None, None, None
    if grid is not None:
        lead_gdf, lead_of = load_grid_leads(grid, institutions=inst, institutions_file=case.institutions)
        lead_source, lead_rule = str(grid), LEAD_RULE_GRID
    elif leads is not None:
        lead_gdf, lead_of = _nearest_leads(inputs, net, inst, leads=leads, coords=case.coords, from_tiers=frm_t,
                                           access_kph=access_kph)
        lead_source, lead_rule = str(leads), LEAD_RULE_NEAREST
    table = referral_times(net, inst, from_tiers=frm_t, to_tiers=to_t, max_minutes=minutes, leads=lead_gdf,
                           lead_of=lead_of, max_snap_m=inputs.max_snap_m, access_speed_kph=access_kph)
    cells_snapped = snap_points(net, inputs.cells, max_snap_m=inputs.max_snap_m, access_speed_kph=access_kph)
    figures = referral_summary(table, net=net, institutions=inst, cells=inputs.cells, max_snap_m=inputs.max_snap_m,
                               access_speed_kph=access_kph, cells_snapped=cells_snapped)
    routes = referral_routes(net, inst, table, leads=lead_gdf, max_snap_m=inputs.max_snap_m, access_speed_kph=access_kph)
    frm = inst.loc[table["from_id"].to_numpy()]
    shapely.prepare(inputs.area)
    outside = int((~shapely.contains_xy(inputs.area, frm["lon"].to_numpy(), frm["lat"].to_numpy())).sum())
    summary: ReferralSummary = {  # type: ignore[typeddict-item]  # the figures' keys are checked in the tests
        "planner_version": __version__,
        "complete": True,
        "population_unit": case.population_unit,
        "mode": case.mode,
        **_json_figures(figures),
        "n_outside_study_area": outside,
        "lead_source": lead_source,
        "lead_rule": lead_rule,
        "n_leads": 0 if lead_gdf is None else len(lead_gdf),
        "max_snap_m": inputs.max_snap_m,
        "inputs": {**{k: inputs.options.get(k) for k in _INPUT_KEYS},
                   "leads": None if leads is None else str(leads), "grid": None if grid is None else str(grid)},
        "credits": summary_credits(inputs.options, case.credits, leads=leads),
        "runtime_s": round(time.perf_counter() - t0, 2),
    }
    return ReferralRun(case=inputs, net=net, table=table, routes=routes, leads=lead_gdf, summary=summary)


def check_referral_options(
    from_tiers: tuple[str, ...] | list[str] | str,
    to_tiers: tuple[str, ...] | list[str] | str,
    *,
    max_minutes: float,
    leads: str | os.PathLike[str] | None = None,
    grid: str | os.PathLike[str] | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Check the referral options before anything is loaded; return the from- and to-tiers.

    Raises
    ------
    InvalidValueError
        For an unknown tier (naming the option and the known tiers), a tier
        in both lists, both `leads` and `grid`, or a threshold out of range.
    InputFileError
        If `leads` is missing or of an unknown format.

    Examples
    --------
    >>> check_referral_options(["primary", "station"], "tertiary", max_minutes=30)
    (('primary', 'station'), ('tertiary',))
    >>> check_referral_options("clinic", "tertiary", max_minutes=30)
    Traceback (most recent call last):
    ...
    planner._errors.InvalidValueError: --from-tier clinic is not a tier; fix: use tertiary, secondary, primary or station
    """
    out = []
    for option, tiers in (("--from-tier", from_tiers), ("--to-tier", to_tiers)):
        given = (tiers,) if isinstance(tiers, str) else tuple(dict.fromkeys(str(t) for t in tiers))
        bad = [t for t in given if t not in settings.TIERS]
        if bad or not given:
            known = f"{', '.join(settings.TIERS[:-1])} or {settings.TIERS[-1]}"
            msg = f"{option} {', '.join(bad) or '(none)'} is not a tier; fix: use {known}"
            raise InvalidValueError(msg)
        out.append(given)
    both = sorted(set(out[0]) & set(out[1]), key=settings.TIERS.index)
    if both:
        msg = f"tier {both[0]} is both a --from-tier and a --to-tier; fix: give each tier on one side only"
        raise InvalidValueError(msg)
    if leads is not None and grid is not None:
        msg = "--leads and --grid both give the own lead; fix: give one of them"
        raise InvalidValueError(msg)
    if leads is not None:
        check_input(leads, what="lead hospitals", suffixes=TABLE_SUFFIXES + VECTOR_SUFFIXES + OSM_SUFFIXES)
    if grid is not None:
        _grid_folder(grid)
    check_minutes([max_minutes])
    return out[0], out[1]


def _grid_folder(folder: str | os.PathLike[str]) -> Path:
    """Return the GeoPackage of a ``planner grid`` output folder; raise in one line if `folder` is not one."""
    path = Path(folder)
    fix = "fix: give the --out folder of a `planner grid` run"
    if not path.is_dir():
        msg = f"--grid {path}: no such folder; {fix}"
        raise InputFileError(msg)
    try:
        manifest = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    kind = manifest.get("kind") if isinstance(manifest, dict) else None
    gpkg = path / "grids.gpkg"
    if kind != GRID_KIND or not gpkg.is_file():
        what = (f"its {MANIFEST_NAME} says kind '{kind}'" if kind not in (None, GRID_KIND)
                else "it has no grids.gpkg" if kind == GRID_KIND else f"it has no {MANIFEST_NAME} written by planner")
        msg = f"--grid {path}: not the output of `planner grid` ({what}); {fix}"
        raise InputFileError(msg)
    return gpkg


def load_grid_leads(
    folder: str | os.PathLike[str],
    *,
    institutions: gpd.GeoDataFrame,
    institutions_file: str | os.PathLike[str] | None = None,
) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """Read the leads of a ``planner grid`` output folder and each institution's own lead.

    Parameters
    ----------
    folder
        The ``--out`` folder of ``planner grid`` (its manifest says ``kind``
        ``grids``): ``grids.gpkg`` layers ``leads`` and ``members``.
    institutions
        The institutions of this run, indexed by ``facility_id``.
    institutions_file
        Their file: a warning says so when the grid run read another one
        (members are matched by id).

    Returns
    -------
    leads, lead_of
        The lead hospitals indexed by lead id (``name``, ``tier``, point
        geometry), and the lead id of each member institution (a lead that
        is one of `institutions` is its own lead).

    Raises
    ------
    InputFileError
        If `folder` is not a grid output.
    InvalidValueError
        If no member of the grid run is one of `institutions` (another institutions file).
    """
    gpkg = _grid_folder(folder)
    layers = set(gpd.list_layers(gpkg)["name"])
    leads = read_vector(gpkg, what=f"--grid {folder}: leads", layer="leads").to_crs("EPSG:4326")
    leads.index = pd.Index(leads.pop("facility_id").astype(str), name="facility_id")
    if "tier" not in leads.columns:
        leads["tier"] = None
    parts = []
    if "members" in layers:
        members = read_vector(gpkg, what=f"--grid {folder}: members", layer="members")
        parts.append(pd.Series(members["lead_id"].to_numpy(dtype=object), index=members["facility_id"].astype(str)))
    twin = leads["institution_id"] if "institution_id" in leads.columns else pd.Series(leads.index, index=leads.index)
    twin = twin[twin.notna()]
    parts.append(pd.Series(twin.index.to_numpy(dtype=object), index=twin.astype(str).to_numpy()))  # a lead leads itself
    lead_of = pd.concat(parts)
    lead_of = lead_of[lead_of.notna()].astype(str)
    lead_of = lead_of[~lead_of.index.duplicated()]
    if not lead_of.index.isin(institutions.index).any():
        msg = (f"--grid {folder}: none of its {len(lead_of)} member institutions is among the {len(institutions)} "
               "--institutions (another institutions file?); fix: give the --institutions the grid run used")
        raise InvalidValueError(msg)
    try:
        used = json.loads((Path(folder) / "summary.json").read_text(encoding="utf-8"))["inputs"]["institutions"]
    except (OSError, ValueError, KeyError, TypeError):
        used = None
    if institutions_file is not None and used is not None and Path(used).resolve() != Path(institutions_file).resolve():
        logger.warning("--grid %s was computed with the institutions %s, not %s: members are matched by id; "
                       "fix: give the --institutions the grid run used", folder, used, institutions_file)
    return leads, lead_of


def _nearest_leads(case: CaseInputs, net: CompiledNetwork, inst: gpd.GeoDataFrame, *, leads: str | os.PathLike[str],
                   coords: str, from_tiers: tuple[str, ...], access_kph: float) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """Load leads as ``planner grid`` does (ids ``lead:<row>``, one per hospital); each from-institution gets its nearest."""
    lead_df, _members, _source = _grid_leads(case, net, inst, leads=leads, lead_tiers=(), coords=coords,
                                             capacity_column=None)
    lead_df, dupes = _dedupe_leads(lead_df, net.crs)
    if len(dupes):
        logger.warning("%s: %d leads repeat an earlier lead's name within a short distance and were merged",
                       leads, len(dupes))
    frm = inst[inst["tier"].isin(from_tiers).to_numpy()]
    s_frm = snap_points(net, frm, max_snap_m=case.max_snap_m, access_speed_kph=access_kph)
    s_lead = snap_points(net, lead_df, max_snap_m=case.max_snap_m, access_speed_kph=access_kph)
    nearest = nearest_facility_times(net, s_frm, s_lead)["facility_id"]
    return lead_df, nearest[nearest.notna()]


def _json_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """Return :func:`planner.referral.referral_summary`'s figures ready for JSON (ids as text, numbers as Python numbers)."""
    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        return v

    out = plain(figures)
    for row in out.get("by_lead", []):
        row["lead_id"] = str(row["lead_id"])
        row["lead_name"] = None if row["lead_name"] is None or row["lead_name"] != row["lead_name"] else str(row["lead_name"])
    return out
