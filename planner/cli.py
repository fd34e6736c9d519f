"""Command-line interface: ``planner coverage ...``.

Errors in the user's inputs print one line naming the file, column or row and
the fix, and exit with code 2; nothing but ``error.log`` is written to the
output folder then, and earlier results there are left as they were. The
output folder is checked before any input is loaded (see
:func:`planner.io.check_output_dir`) and locked while the command runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import sys
import traceback
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NamedTuple, Optional

import typer

import planner

from . import settings
from ._errors import OutputFolderError, PlannerError
from ._validate import check_limit

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="planner: 15-minute medical service circle (15分钟医疗服务圈) coverage for medical consortiums.",
    # an absent --help reads False, not None: typer would parse None through a pydantic adapter, whose import
    # is a fifth of the time `planner coverage --help` and `planner version` take (tests/test_architecture.py)
    context_settings={"default_map": {"help": False, "version": {"help": False}}},
)
logger = logging.getLogger("planner")


def _choices(name: str, values: tuple[str, ...], doc: str) -> Any:
    """Return a str Enum of `values` (a settings tuple) for typer's choices; ``mean-time`` is member ``mean_time``.

    >>> _choices("Objective", ("coverage", "mean-time"), "Siting objectives.").mean_time.value
    'mean-time'
    """
    enum = Enum(name, {v.replace("-", "_"): v for v in values}, type=str, module=__name__)
    enum.__doc__ = doc
    return enum


# The choices come from settings (a light module), so that `planner --help` imports neither maps/ nor pipeline/.
Mode = _choices("Mode", settings.MODES, "Travel modes.")
Basemap = _choices("Basemap", settings.BASEMAPS, "Basemaps of the interactive map.")
Coords = _choices("Coords", settings.COORDS, "Coordinate datums of input tables.")
Objective = _choices("Objective", settings.OBJECTIVES, "Siting objectives.")
Contiguity = _choices("Contiguity", settings.CONTIGUITIES, "Which touching cells count as neighbours.")
Allocation = _choices("Allocation", settings.ALLOCATIONS, "Capacity allocations.")
_NORMS_HELP = ("Norms file (TOML) checked per district with --boundaries, written to norms.csv; default: the shipped "
               "planner/data/norms_default.toml. Its [capacity_defaults] (persons per tier) make coverage capacity-limited.")
_NO_NORMS_HELP = "Check the norms per district (with --boundaries); --no-norms skips norms.csv."
_BASEMAP_HELP = ("Map basemap: auto (amap in China, osm elsewhere), osm, amap (Gaode; overlays shifted to GCJ-02), "
                 "tianditu (needs TIANDITU_KEY), none.")
_OFFLINE_HELP = ("Embed Leaflet so the maps open with no network (default); --online loads Leaflet from the CDN "
                 "(smaller files). Basemap tiles always need a network.")
_CREDIT_HELP = ("Credit of an input, ROLE=TEXT (roles: network, institutions, population, boundaries, candidates, leads, "
                "competitors, suitability, exclusion); repeat. Shipped and OSM files credit themselves; other data "
                "without one is marked 'source not given'.")


# ECMA-48 escape sequences: control strings (OSC, DCS, SOS, PM, APC) up to BEL or ST, CSI sequences, other escapes
_ANSI_ESCAPE_RE = re.compile(r"\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[ -/]*[0-~]")
_LINE_BREAK_RE = re.compile(r"[\t\n\v\f\r\x85\u2028\u2029]+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1


def _clean_terminal_text(text: str) -> str:
    r"""Make text from the user's files safe to print: no escape sequences, no control characters, one line.

    Cell values (names, ids) reach messages as they are; an ANSI escape or a BEL in them would
    otherwise recolour, retitle or clear the user's terminal. Escape sequences are removed whole,
    line breaks and tabs become one space, and every other C0/C1 control character is dropped.

    >>> _clean_terminal_text("\x1b[31m甲医院\x1b[0m\x07 ok\nnext")
    '甲医院 ok next'
    >>> _clean_terminal_text("\x1b]0;title\x07\x9b2J社区")
    '2J社区'
    """
    return _CONTROL_RE.sub("", _LINE_BREAK_RE.sub(" ", _ANSI_ESCAPE_RE.sub("", text)))


def _echo(message: str, *, err: bool = False) -> None:
    """Print one line to stdout (or stderr) with :func:`_clean_terminal_text`; every CLI line goes through here."""
    typer.echo(_clean_terminal_text(str(message)), err=err)


class _TerminalFormatter(logging.Formatter):
    """Log formatter whose lines are cleaned with :func:`_clean_terminal_text` (one line per record)."""

    def format(self, record: logging.LogRecord) -> str:
        return _clean_terminal_text(super().format(record))


@contextlib.contextmanager
def _logging_to_stderr(quiet: bool) -> Iterator[None]:
    """Send planner's log (and captured warnings) to stderr for one command, and undo it afterwards (notebooks, CliRunner)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TerminalFormatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("planner")
    py_warnings = logging.getLogger("py.warnings")
    saved = (root.handlers[:], root.level, root.propagate)
    saved_warnings = (py_warnings.handlers[:], py_warnings.propagate)
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False
    py_warnings.handlers[:] = [handler]  # else warnings reach stderr raw, through logging's last-resort handler
    py_warnings.propagate = False
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.handlers[:], root.level, root.propagate = saved
        py_warnings.handlers[:], py_warnings.propagate = saved_warnings


# the options checked against settings.LIMITS, by parameter name (= LIMITS key): their flags
_LIMITED_OPTIONS = {"speed_kph": "--speed-kph", "max_snap_m": "--max-snap-m", "cell_size_m": "--cell-size",
                    "new_sites": "--new-sites", "target_pct": "--target-pct", "candidate_spacing_m": "--candidate-spacing",
                    "min_spacing_m": "--min-spacing", "new_site_capacity": "--new-site-capacity",
                    "persons_per_unit": "--persons-per-unit",
                    "time_limit_s": "--time-limit", "tolerance": "--tolerance", "max_nodes": "--max-nodes",
                    "workers": "--workers", "retries": "--retries"}


def _check_limits(quiet: bool, **values: Any) -> None:
    """Refuse an option outside ``settings.LIMITS`` with a one-line error (exit 2) before anything is read or written."""
    with _guarded(None, quiet):
        for name, value in values.items():
            if value is not None:
                check_limit(name, value, label=_LIMITED_OPTIONS[name])


_FORCE_HELP = "Replace the output folder even if it holds files planner did not write (they are deleted)."


def _user_credits(values: list[str] | None, quiet: bool) -> tuple[tuple[str, str], ...]:
    """Parse the ``--credit ROLE=TEXT`` options (a bad one: one line, exit 2, before anything is read or written)."""
    pairs: tuple[tuple[str, str], ...] = ()
    with _guarded(None, quiet):
        pairs = planner.credits.parse_credit_options(values)
    return pairs


def _with_credits(scenario: Any, credits: tuple[tuple[str, str], ...]) -> Any:
    """Return `scenario` with the ``--credit`` options added to (and winning over) its file's ``credits``."""
    if not credits:
        return scenario
    merged = {**dict(scenario.case.credits), **dict(credits)}
    return dataclasses.replace(scenario, case=dataclasses.replace(scenario.case, credits=tuple(merged.items())))


def _echo_written(out: Path, paths: list[Path]) -> None:
    """Print the files a command wrote into `out`, by name, in the order written."""
    names = [str(Path(p).relative_to(out)) if Path(p).is_relative_to(out) else str(p) for p in paths]
    _echo(f"wrote {out}/: {', '.join(sorted(names, key=_output_rank))}")


def _output_rank(name: str) -> tuple[int, str]:
    """Sort key of written files: summary first, then maps, tables, layers."""
    kinds = (("summary.json",), (".html", ".png"), (".csv", ".xlsx"))
    return next((i for i, ends in enumerate(kinds) if name.endswith(ends)), len(kinds)), name


class _Out(NamedTuple):
    """An output folder a command writes, with the arguments of :func:`planner.io.check_output_dir`."""

    path: Path
    root: Path | None = None
    keep: tuple[Path, ...] = ()
    files: tuple[str, ...] = ()


def _fail(exc: BaseException, out: Path | None, *, earlier: bool = False) -> None:
    kept = f" (the earlier results in {out} were left as they were)" if earlier else ""
    if isinstance(exc, PlannerError):
        _echo(f"error: {exc}{kept}", err=True)
        raise typer.Exit(2)
    where = f" (details in {out / 'error.log'})" if out is not None else ""
    _echo(f"internal error: {type(exc).__name__}: {exc}{where}{kept}; please report it", err=True)
    raise typer.Exit(1)


@contextlib.contextmanager
def _guarded(out: Path | None, quiet: bool, *, inputs: list[object] | None = None, force: bool = False,
             outs: list[_Out] | None = None) -> Iterator[None]:
    """Run a command body with planner's log on stderr; any failure becomes one line (exit 2 for bad input).

    With `inputs` (the files the command reads), the output folders `outs` (by default `out`) are
    checked before the body loads anything and locked until it ends; a failure then writes
    ``error.log`` into `out`, next to the earlier results, which stay as they were.
    """
    earlier = False
    try:
        with _logging_to_stderr(quiet), contextlib.ExitStack() as held:
            if inputs is not None and out is not None:
                targets = outs if outs is not None else [_Out(out)]
                for t in targets:
                    planner.io.check_output_dir(t.path, inputs=inputs, force=force, keep=t.keep, root=t.root, files=t.files)
                earlier = planner.io.has_results(out)
                for t in targets:
                    held.enter_context(planner.io.lock_output_dir(t.path, root=t.root))
            try:
                yield
            except Exception as exc:
                if out is not None and not isinstance(exc, OutputFolderError):
                    detail = None if isinstance(exc, PlannerError) else "".join(traceback.format_exception(exc))
                    planner.io.write_error_log(out, exc, detail=detail)
                raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        _fail(exc, out, earlier=earlier and not isinstance(exc, OutputFolderError))


@app.callback()
def _main() -> None:
    """Planner command-line interface."""


@app.command()
def version() -> None:
    """Print the planner version."""
    _echo(planner.__version__)


@app.command()
def coverage(
    network: Annotated[Path, typer.Option("--network", help="Road network: .osm, .osm.pbf, or a line layer "
                                          "(.gpkg/.shp/.geojson).")],
    institutions: Annotated[Path, typer.Option("--institutions", help="Institutions: CSV/XLSX (name, lon, lat[, tier, "
                                               "capacity]), point layer, or OSM file.")],
    population: Annotated[Path, typer.Option("--population", help="Population: GeoTIFF raster, or CSV/layer with a population "
                                             "column.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (summary.json, cells.gpkg, isochrones.gpkg, map.html).")],
    boundaries: Annotated[Optional[Path], typer.Option("--boundaries", help="District polygons with a name column.")] = None,
    mode: Annotated[Mode, typer.Option("--mode", help="Travel mode.")] = Mode.walk,
    speed_kph: Annotated[Optional[float], typer.Option("--speed-kph", help="One speed for all roads, km/h (e.g. 3.2 for elderly "
                                                       "walking).")] = None,
    minutes: Annotated[Optional[list[float]], typer.Option("--minutes", help="Threshold in minutes; repeat for several. Default "
                                                           "5 10 15.")] = None,
    coords: Annotated[Coords, typer.Option("--coords", help="Datum of the institutions' coordinates: wgs84, gcj02 (Amap), "
                                           "bd09 (Baidu); OSM files are always WGS-84.")] = Coords.wgs84,
    population_coords: Annotated[Coords, typer.Option("--population-coords", help="Datum of a population table's "
                                                      "coordinates (rasters use their own CRS).")] = Coords.wgs84,
    max_snap_m: Annotated[Optional[float], typer.Option("--max-snap-m", help="Largest distance from a point to a road, metres "
                                                        "(default 500).")] = None,
    cell_size_m: Annotated[Optional[float], typer.Option("--cell-size", help="Demand cell size, metres (default: raster pixels; "
                                                         "100 m for points).")] = None,
    population_label: Annotated[str, typer.Option("--population-label", help="What the population counts, shown with "
                                                  "totals.")] = "population",
    title: Annotated[Optional[str], typer.Option("--title", help="Map title.")] = None,
    isochrones: Annotated[bool, typer.Option("--isochrones/--no-isochrones", help="Compute isochrone polygons.")] = True,
    capacity_col: Annotated[Optional[str], typer.Option("--capacity-col", help="Institutions' capacity column: each serves "
                                                        "at most its capacity within the largest threshold (served.csv, "
                                                        "residual-unserved layer).")] = None,
    persons_per_unit: Annotated[Optional[float], typer.Option("--persons-per-unit", help="Persons one unit of "
                                                              "--capacity-col (bed, doctor) serves; default: the column "
                                                              "is in persons.")] = None,
    allocation: Annotated[Allocation, typer.Option("--allocation", help="optimal (the most served) or ordered "
                                                   "(AccessMod's greedy order, to compare).")] = Allocation.optimal,
    norms: Annotated[Optional[Path], typer.Option("--norms", help=_NORMS_HELP)] = None,
    norms_enabled: Annotated[bool, typer.Option("--check-norms/--no-norms", help=_NO_NORMS_HELP)] = True,
    basemap: Annotated[Basemap, typer.Option("--basemap", help=_BASEMAP_HELP)] = Basemap.auto,
    offline: Annotated[bool, typer.Option("--offline/--online", help=_OFFLINE_HELP)] = True,
    credit: Annotated[Optional[list[str]], typer.Option("--credit", help=_CREDIT_HELP)] = None,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print warnings and the result.")] = False,
) -> None:
    """Test the 15-minute medical service circle: who reaches an institution within each threshold."""
    _check_limits(quiet, speed_kph=speed_kph, max_snap_m=max_snap_m, cell_size_m=cell_size_m,
                  persons_per_unit=persons_per_unit)
    credits = _user_credits(credit, quiet)
    with _guarded(out, quiet, inputs=[network, institutions, population, boundaries, norms], force=force):
        planner.maps.get_basemap(basemap.value)  # a missing Tianditu key fails before the analysis, not after it
        if norms is not None and norms_enabled:
            planner.norms.load_norms(norms)  # a bad norms file fails before the analysis
        case = planner.pipeline.Case(
            network=network, institutions=institutions, population=population, boundaries=boundaries,
            mode=mode.value, speed_kph=speed_kph, minutes=tuple(minutes) if minutes else None,
            coords=coords.value, population_coords=population_coords.value, max_snap_m=max_snap_m,
            cell_size_m=cell_size_m, population_label=population_label, isochrones=isochrones,
            capacity_column=capacity_col, persons_per_unit=persons_per_unit, allocation=allocation.value,
            norms=norms, norms_enabled=norms_enabled, credits=credits)
        run = planner.pipeline.run_case(case, progress=not quiet)
        written = planner.exports.write_coverage_outputs(run, out, title=title, basemap=basemap.value, offline=offline,
                                                         force=force)
    s = run.summary
    _echo(
        f"{s['max_minutes']:g}-minute {s['mode']} coverage: {s['coverage_pct']:.1f}% "
        f"({s['population_covered']:,.0f} of {s['population_total']:,.0f} {s['population_unit']}); "
        f"unreachable cells {s['cells']['unreachable']}, unsnapped institutions {s['institutions']['unsnapped']}"
        f" ({s['institutions']['outside_study_area']} outside the network's extent)"
    )
    if s["study_area"]["population_outside_study_area"] > 0:
        _echo(f"  not analysed: {s['study_area']['population_outside_study_area']:,.0f} of the input's "
                   f"{s['study_area']['population_input_total']:,.0f} live outside the road network's extent")
    for row in s["thresholds"]:
        _echo(f"  within {row['minutes']:g} min: {row['coverage_pct']:.1f}%")
    _echo_resources(s)
    _echo_written(out, written)


def _echo_resources(s: dict) -> None:  # type: ignore[type-arg]
    """Print the capacity and norms lines of a summary, those it has."""
    if "capacity" in s:
        c = s["capacity"]
        _echo(f"  with capacities ({c['method']}): {c['population_served']:,.0f} served ({c['served_pct'] or 0:.1f}%), "
              f"{c['population_unserved']:,.0f} unserved ({c['unserved_out_of_reach']:,.0f} out of reach, "
              f"{c['unserved_over_capacity']:,.0f} over capacity); {c['institutions_full']} institutions full")
    if "norms" in s:
        n = s["norms"]
        _echo(f"  norms per district: {n['passed']} pass, {n['failed']} fail, {n['not_checked']} not checked "
              f"({n['districts']} districts; see norms.csv)")


def _print_summary(s: dict) -> None:  # type: ignore[type-arg]
    _echo(f"  {s['max_minutes']:g}-minute {s['mode']} coverage: {s['coverage_pct']:.1f}% "
               f"({s['population_covered']:,.0f} of {s['population_total']:,.0f} {s['population_unit']})")


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (TOML); see scenarios/ for examples.")],
    out_root: Annotated[Path, typer.Option("--out-root", help="Outputs go to OUT_ROOT/<scenario name>/.")] = Path("outputs"),
    basemap: Annotated[Basemap, typer.Option("--basemap", help=_BASEMAP_HELP)] = Basemap.auto,
    offline: Annotated[bool, typer.Option("--offline/--online", help=_OFFLINE_HELP)] = True,
    credit: Annotated[Optional[list[str]], typer.Option("--credit", help=_CREDIT_HELP)] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Reload every input instead of using OUT_ROOT/.cache/.")] = False,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print warnings and the result.")] = False,
) -> None:
    """Run a scenario (baseline or what-if) and write everything to OUT_ROOT/<name>/."""
    credits = _user_credits(credit, quiet)
    with _guarded(None, quiet):
        s = _with_credits(planner.scenarios.load_scenario(scenario), credits)
    out = out_root / s.name
    with _guarded(out, quiet, inputs=list(planner.scenarios.scenario_input_files(s)), force=force,
                  outs=[_Out(out, root=out_root, files=(f"{s.name}.gpkg",))]):
        result = planner.scenarios.run_scenario(s, out_root=out_root, progress=not quiet, use_cache=not no_cache)
        written = planner.exports.write_scenario_outputs(result, s, out, basemap=basemap.value, offline=offline,
                                                         force=force)
    _echo(f"scenario {s.name} ({result.summary['runtime_s']:.1f} s):")
    _print_summary(result.summary)
    _echo_resources(result.summary)
    _echo_written(out, written)


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="Baseline scenario (TOML).")],
    b: Annotated[Path, typer.Argument(help="What-if scenario (TOML).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for the comparison (default "
                                                "OUT_ROOT/compare-A-vs-B).")] = None,
    out_root: Annotated[Path, typer.Option("--out-root", help="Where both runs and the cache go.")] = Path("outputs"),
    basemap: Annotated[Basemap, typer.Option("--basemap", help=_BASEMAP_HELP)] = Basemap.auto,
    offline: Annotated[bool, typer.Option("--offline/--online", help=_OFFLINE_HELP)] = True,
    credit: Annotated[Optional[list[str]], typer.Option("--credit", help=_CREDIT_HELP)] = None,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print warnings and the result.")] = False,
) -> None:
    """Compare two scenarios: coverage change per district and tier, people newly covered or lost, diff map."""
    credits = _user_credits(credit, quiet)
    with _guarded(None, quiet):
        sa, sb = (_with_credits(planner.scenarios.load_scenario(f), credits) for f in (a, b))
    folder = out if out is not None else out_root / f"compare-{sa.name}-vs-{sb.name}"
    runs = (out_root / sa.name, out_root / sb.name)
    outs = [_Out(folder, root=None if out is not None else out_root, keep=(*runs, out_root / ".cache")),
            *(_Out(r, root=out_root, keep=(folder,), files=(f"{s.name}.gpkg",)) for r, s in zip(runs, (sa, sb), strict=True))]
    inputs = [*planner.scenarios.scenario_input_files(sa), *planner.scenarios.scenario_input_files(sb)]
    with _guarded(folder, quiet, inputs=inputs, force=force, outs=outs):
        comp = planner.exports.compare_scenarios(sa, sb, out=folder, out_root=out_root, progress=not quiet,
                                                 basemap=basemap.value, offline=offline, force=force)
    _echo(f"{sa.name} → {sb.name}: {comp['max_minutes']:g}-minute coverage {comp['coverage_pct_a']:.2f}% → "
               f"{comp['coverage_pct_b']:.2f}% ({comp['change_pp']:+.2f} pp); newly covered "
               f"{comp['population_newly_covered']:,.0f}, newly lost {comp['population_newly_lost']:,.0f}")
    for row in comp["by_district"]:
        if row["change_pp"]:
            _echo(f"  {row['district']}: {row['coverage_pct_a']:.1f}% → {row['coverage_pct_b']:.1f}%")
    _echo(f"wrote {folder}/ (compare.json, compare_map.html, side_by_side.html, compare_*.csv)")


@app.command()
def site(
    network: Annotated[Path, typer.Option("--network", help="Road network (as for coverage).")],
    institutions: Annotated[Path, typer.Option("--institutions", help="Existing institutions (kept open).")],
    population: Annotated[Path, typer.Option("--population", help="Population raster or table.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (sites.csv, sites.gpkg, summary.json, map.html).")],
    candidates: Annotated[str, typer.Option("--candidates", help="'nodes' (road nodes every --candidate-spacing m), "
                                            "'institutions:<tier>' (e.g. institutions:primary to upgrade), "
                                            "or a file.")] = "nodes",
    new_sites: Annotated[Optional[int], typer.Option("--new-sites", help="K new sites to open (fewer when the others "
                                                     "would add nobody; see --exact-k).")] = None,
    exact_k: Annotated[bool, typer.Option("--exact-k", help="Return exactly K sites; those adding nobody are marked "
                                          "(adds_population = False).")] = False,
    target_pct: Annotated[Optional[float], typer.Option("--target-pct", help="Instead of K: fewest sites to cover P% of "
                                                        "people.")] = None,
    objective: Annotated[Objective, typer.Option("--objective", help="coverage (within --minutes) or mean-time "
                                                 "(p-median).")] = Objective.coverage,
    minutes: Annotated[float, typer.Option("--minutes", help="Service threshold in minutes.")] = 15.0,
    boundaries: Annotated[Optional[Path], typer.Option("--boundaries", help="District polygons.")] = None,
    mode: Annotated[Mode, typer.Option("--mode", help="Travel mode.")] = Mode.walk,
    speed_kph: Annotated[Optional[float], typer.Option("--speed-kph", help="One speed for all roads, km/h.")] = None,
    coords: Annotated[Coords, typer.Option("--coords", help="Datum of the institutions' coordinates.")] = Coords.wgs84,
    population_coords: Annotated[Coords, typer.Option("--population-coords", help="Datum of a population table's "
                                                      "coordinates.")] = Coords.wgs84,
    candidates_coords: Annotated[Coords, typer.Option("--candidates-coords", help="Datum of a candidates file's "
                                                      "coordinates.")] = Coords.wgs84,
    max_snap_m: Annotated[Optional[float], typer.Option("--max-snap-m", help="Largest distance to a road, metres.")] = None,
    cell_size_m: Annotated[float, typer.Option("--cell-size", help="Demand cell size, metres.")] = (
        settings.SITING_CELL_SIZE_M),
    service_tiers: Annotated[Optional[list[str]], typer.Option("--service-tier", help="Tier of existing institutions that "
                                                              "provide the service; repeat (default: all).")] = None,
    candidate_spacing: Annotated[float, typer.Option("--candidate-spacing", help="Spacing of node candidates, metres.")] = (
        settings.CANDIDATE_SPACING_M),
    min_spacing: Annotated[float, typer.Option("--min-spacing", help="Drop candidates closer than this to an existing site, "
                                               "metres.")] = 0.0,
    district: Annotated[Optional[list[str]], typer.Option("--district", help="Only candidates in this district; repeat.")] = None,
    capacity_col: Annotated[Optional[str], typer.Option("--capacity-col", help="Capacity column (persons): capacitated "
                                                        "model.")] = None,
    new_site_capacity: Annotated[Optional[float], typer.Option("--new-site-capacity", help="Capacity of candidates without "
                                                               "one.")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", help="Exclusion zones (no new site inside): a polygon "
                                                         "file, or osm:water,park[,forest,protected] from the OSM "
                                                         "network; repeat.")] = None,
    suitability: Annotated[Optional[Path], typer.Option("--suitability", help="Suitability raster, or polygons with a weight "
                                                        "column: weight 0 excludes a candidate, higher weights win "
                                                        "ties.")] = None,
    suitability_col: Annotated[Optional[str], typer.Option("--suitability-col", help="Weight column of suitability "
                                                           "polygons (default: weight).")] = None,
    competitors: Annotated[Optional[Path], typer.Option("--competitors", help="Competitor sites (e.g. private clinics): "
                                                        "residents they serve are counted apart.")] = None,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Solver time limit per solve, seconds.")] = (
        settings.SITING_TIME_LIMIT_S),
    population_label: Annotated[str, typer.Option("--population-label", help="What the population counts.")] = "population",
    title: Annotated[Optional[str], typer.Option("--title", help="Map title.")] = None,
    basemap: Annotated[Basemap, typer.Option("--basemap", help=_BASEMAP_HELP)] = Basemap.auto,
    offline: Annotated[bool, typer.Option("--offline/--online", help=_OFFLINE_HELP)] = True,
    credit: Annotated[Optional[list[str]], typer.Option("--credit", help=_CREDIT_HELP)] = None,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print warnings and the result.")] = False,
) -> None:
    """Suggest new branch sites (分支机构): K sites covering the most people, or the fewest reaching P%."""
    _check_limits(quiet, new_sites=new_sites, target_pct=target_pct, speed_kph=speed_kph, max_snap_m=max_snap_m,
                  cell_size_m=cell_size_m, candidate_spacing_m=candidate_spacing, min_spacing_m=min_spacing,
                  new_site_capacity=new_site_capacity, time_limit_s=time_limit)
    roles = [*(Path(e) for e in exclude or () if not e.startswith("osm:")), suitability, competitors]
    credits = _user_credits(credit, quiet)
    with _guarded(out, quiet, inputs=[network, institutions, population, boundaries, candidates, *roles], force=force):
        planner.maps.get_basemap(basemap.value)
        run = planner.pipeline.run_siting(
            network, institutions, population, candidates=candidates, n_sites=new_sites, target_pct=target_pct,
            objective=objective.value, max_minutes=minutes, boundaries=boundaries, mode=mode.value, speed_kph=speed_kph,
            coords=coords.value, population_coords=population_coords.value, candidates_coords=candidates_coords.value,
            max_snap_m=max_snap_m, cell_size_m=cell_size_m,
            service_tiers=tuple(service_tiers) if service_tiers else None, candidate_spacing_m=candidate_spacing,
            min_spacing_m=min_spacing, candidate_districts=tuple(district) if district else None,
            capacity_column=capacity_col, new_site_capacity=new_site_capacity, time_limit_s=time_limit,
            population_label=population_label, progress=not quiet, require_k=exact_k, exclude=tuple(exclude or ()),
            suitability=suitability, suitability_column=suitability_col, competitors=competitors, credits=credits,
        )
        written = planner.exports.write_siting_outputs(run, out, title=title, basemap=basemap.value, offline=offline,
                                                       force=force)
    s = run.summary
    _echo(f"{s['model']} ({s['solver_status']}, gap {s['mip_gap']:.2g}, {s['solve_s']:.1f} s): {s['new_sites']} new sites; "
          f"{s['max_minutes']:g}-minute {s['mode']} coverage "
          f"{s['coverage_pct_before']:.2f}% → {s['coverage_pct_after']:.2f}% "
          f"of {s['population_total']:,.0f} {s['population_unit']}")
    for row in s["sites"][:10]:
        mark = "" if row["adds_population"] else " (adds nobody)"
        _echo(f"  #{row['rank']} {row['name']} ({row['lon']:.5f}, {row['lat']:.5f}): +{row['added_population']:,.0f}, "
              f"cumulative {row['cumulative_pct']:.2f}%{mark}")
    if s["zero_gain_reason"]:
        idle = s["new_sites"] - s["new_sites_adding_population"]
        if s["new_sites_requested"] and s["new_sites"] < s["new_sites_requested"]:
            _echo(f"  stopped at {s['new_sites']} of the {s['new_sites_requested']} sites asked for: "
                  f"{s['zero_gain_reason']}; --exact-k gives all {s['new_sites_requested']}")
        elif idle:
            _echo(f"  {idle} of the {s['new_sites']} sites add nobody (marked): {s['zero_gain_reason']}")
        else:  # LSCP: sites adding nobody were left out
            _echo(f"  {s['zero_gain_reason']}")
    _echo_site_roles(s)
    _echo_written(out, written)


def _echo_site_roles(s: dict[str, Any]) -> None:
    """Print what the exclusion zones removed and whom the competitors serve."""
    for row in s.get("candidates_excluded", []):
        _echo(f"  exclusion zone {row['source']}: {row['candidates_removed']} candidates removed")
    if "population_served_by_competitors" in s:
        _echo(f"  {s['population_served_by_competitors']:,.0f} {s['population_unit']} served by competitors "
              "(within reach of a competitor, not of an existing site): left out of the figures")


@app.command()
def grid(
    network: Annotated[Path, typer.Option("--network", help="Road network (as for coverage).")],
    institutions: Annotated[Path, typer.Option("--institutions", help="Institutions (leads and members).")],
    population: Annotated[Path, typer.Option("--population", help="Population raster or table.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (grids.gpkg, assignment.csv, summary.json, map.html).")],
    leads: Annotated[Optional[Path], typer.Option("--leads", help="Lead hospitals file (default: institutions of "
                                                  "--lead-tier).")] = None,
    lead_tier: Annotated[Optional[list[str]], typer.Option("--lead-tier", help="Tier leading a grid when --leads is not given; "
                                                          "repeat (default: tertiary).")] = None,
    capacity_col: Annotated[Optional[str], typer.Option("--capacity-col", help="Capacity column of the leads (beds, staff); "
                                                        "default: equal shares.")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Each lead's load within ± this share of its capacity "
                                             "share.")] = (
        settings.GRID_TOLERANCE),
    fixed: Annotated[Optional[Path], typer.Option("--fixed", help="Table of fixed assignments: columns district (or cell_id) and "
                                                  "lead.")] = None,
    contiguity: Annotated[Contiguity, typer.Option("--contiguity", help="Neighbouring cells: queen (corners too) or "
                                                   "rook.")] = Contiguity.queen,
    boundaries: Annotated[Optional[Path], typer.Option("--boundaries", help="District polygons.")] = None,
    mode: Annotated[Mode, typer.Option("--mode", help="Travel mode.")] = Mode.drive,
    speed_kph: Annotated[Optional[float], typer.Option("--speed-kph", help="One speed for all roads, km/h.")] = None,
    coords: Annotated[Coords, typer.Option("--coords", help="Datum of the institutions' and leads' "
                                           "coordinates.")] = Coords.wgs84,
    population_coords: Annotated[Coords, typer.Option("--population-coords", help="Datum of a population table's "
                                                      "coordinates.")] = Coords.wgs84,
    max_snap_m: Annotated[Optional[float], typer.Option("--max-snap-m", help="Largest distance to a road, metres.")] = None,
    cell_size_m: Annotated[float, typer.Option("--cell-size", help="Demand cell size, metres.")] = (
        settings.GRID_CELL_SIZE_M),
    max_nodes: Annotated[Optional[int], typer.Option("--max-nodes", help="Branch-and-bound nodes of the MIP at most "
                                                     "(default 200): the work bound that makes runs reproducible.")] = None,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Safety-net solver time limit, seconds; a solve it "
                                              "stops may differ between runs (reported).")] = settings.GRID_TIME_LIMIT_S,
    norms: Annotated[Optional[Path], typer.Option("--norms", help=_NORMS_HELP)] = None,
    norms_enabled: Annotated[bool, typer.Option("--check-norms/--no-norms", help=_NO_NORMS_HELP)] = True,
    population_label: Annotated[str, typer.Option("--population-label", help="What the population counts.")] = "population",
    title: Annotated[Optional[str], typer.Option("--title", help="Map title.")] = None,
    basemap: Annotated[Basemap, typer.Option("--basemap", help=_BASEMAP_HELP)] = Basemap.auto,
    offline: Annotated[bool, typer.Option("--offline/--online", help=_OFFLINE_HELP)] = True,
    credit: Annotated[Optional[list[str]], typer.Option("--credit", help=_CREDIT_HELP)] = None,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print warnings and the result (no solver "
                                        "progress).")] = False,
) -> None:
    """Divide the city into consortium grids (网格化布局): balanced, contiguous, one per lead hospital."""
    _check_limits(quiet, tolerance=tolerance, speed_kph=speed_kph, max_snap_m=max_snap_m, cell_size_m=cell_size_m,
                  max_nodes=max_nodes, time_limit_s=time_limit)
    credits = _user_credits(credit, quiet)
    with _guarded(out, quiet, inputs=[network, institutions, population, boundaries, leads, fixed, norms], force=force):
        planner.maps.get_basemap(basemap.value)
        if norms is not None and norms_enabled:
            planner.norms.load_norms(norms)  # a bad norms file fails before the grids are solved
        run = planner.pipeline.run_grids(
            network, institutions, population, leads=leads, lead_tiers=tuple(lead_tier) if lead_tier else ("tertiary",),
            boundaries=boundaries, mode=mode.value, speed_kph=speed_kph, coords=coords.value,
            population_coords=population_coords.value, max_snap_m=max_snap_m,
            cell_size_m=cell_size_m, capacity_column=capacity_col, tolerance=tolerance, fixed=fixed,
            contiguity=contiguity.value, time_limit_s=time_limit, population_label=population_label, max_nodes=max_nodes,
            norms=norms, norms_enabled=norms_enabled, credits=credits,
        )
        written = planner.exports.write_grid_outputs(run, out, title=title, basemap=basemap.value, offline=offline,
                                                     force=force)
    s = run.summary
    c = s["comparison"]
    lo, hi = s["load_ratio_range"]
    blo, bhi = s["baseline_load_ratio_range"]
    w = s["work"]
    bound = f", {w['mip_nodes']:,} of at most {w['mip_max_nodes']:,} nodes" if s["method"] == "mip" and w else ""
    _echo(f"{s['n_grids']} grids ({s['solver_status']}, gap {s['gap']:.2%}{bound}, {s['solve_s']:.0f} s), {s['mode']}, "
          f"loads within ±{s['tolerance']:.0%} of {s['capacity_basis']}")
    if s["time_limited"]:
        _echo(f"  stopped by the time limit ({time_limit:g} s): results may differ between runs; raise --time-limit "
              "or lower --max-nodes")
    _echo(f"  load ratio {lo:.2f}-{hi:.2f} (nearest lead: {blo:.2f}-{bhi:.2f}); mean travel time "
               f"{c['mean_travel_time_s'] / 60:.1f} min (nearest lead: {c['baseline_mean_travel_time_s'] / 60:.1f} min); "
               f"{c['population_moved']:,.0f} {s['population_unit']} ({c['population_moved_pct']:.1f}%) moved")
    if s["population_unassigned"]:
        _echo(f"  {s['cells_unassigned']} cells ({s['population_unassigned']:,.0f}) reach no lead: see assignment.csv")
    if s["leads_excluded"]:
        _echo(f"  {len(s['leads_excluded'])} leads left out (not on the network of the study area): see summary.json")
    _echo_resources(s)
    _echo_written(out, written)


_TIER_HELP = f"one of {', '.join(settings.TIERS)}; repeat for several"


@app.command()
def referral(
    network: Annotated[Path, typer.Option("--network", help="Road network (as for coverage).")],
    institutions: Annotated[Path, typer.Option("--institutions", help="Institutions (both tiers of the referral).")],
    population: Annotated[Path, typer.Option("--population", help="Population raster or table (population-weighted "
                                             "share).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (referral.csv, routes.gpkg, summary.json, map.html).")],
    from_tier: Annotated[list[str], typer.Option("--from-tier", help=f"Tier that refers patients up: {_TIER_HELP}.")],
    to_tier: Annotated[list[str], typer.Option("--to-tier", help=f"Tier that receives them: {_TIER_HELP}.")],
    leads: Annotated[Optional[Path], typer.Option("--leads", help="Lead hospitals file: also the time to the nearest "
                                                  "lead (own lead).")] = None,
    grid: Annotated[Optional[Path], typer.Option("--grid", help="Output folder of `planner grid`: also the time to the "
                                                 "lead of each institution's grid.")] = None,
    minutes: Annotated[float, typer.Option("--minutes", help="Referral threshold in minutes.")] = 30.0,
    boundaries: Annotated[Optional[Path], typer.Option("--boundaries", help="District polygons (per-district "
                                                       "shares).")] = None,
    mode: Annotated[Mode, typer.Option("--mode", help="Travel mode.")] = Mode.drive,
    speed_kph: Annotated[Optional[float], typer.Option("--speed-kph", help="One speed for all roads, km/h.")] = None,
    coords: Annotated[Coords, typer.Option("--coords", help="Datum of the institutions' and leads' "
                                           "coordinates.")] = Coords.wgs84,
    population_coords: Annotated[Coords, typer.Option("--population-coords", help="Datum of a population table's "
                                                      "coordinates.")] = Coords.wgs84,
    max_snap_m: Annotated[Optional[float], typer.Option("--max-snap-m", help="Largest distance to a road, metres.")] = None,
    cell_size_m: Annotated[Optional[float], typer.Option("--cell-size", help="Demand cell size, metres (default: raster "
                                                         "pixels; 100 m for points).")] = None,
    population_label: Annotated[str, typer.Option("--population-label", help="What the population counts.")] = "population",
    title: Annotated[Optional[str], typer.Option("--title", help="Map title.")] = None,
    basemap: Annotated[Basemap, typer.Option("--basemap", help=_BASEMAP_HELP)] = Basemap.auto,
    offline: Annotated[bool, typer.Option("--offline/--online", help=_OFFLINE_HELP)] = True,
    credit: Annotated[Optional[list[str]], typer.Option("--credit", help=_CREDIT_HELP)] = None,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print warnings and the result.")] = False,
) -> None:
    """Referral times (双向转诊): from each institution of the from-tiers to the nearest of the to-tiers (and its lead)."""
    _check_limits(quiet, speed_kph=speed_kph, max_snap_m=max_snap_m, cell_size_m=cell_size_m)
    credits = _user_credits(credit, quiet)
    with _guarded(None, quiet):  # tiers, --leads/--grid and the threshold: before the output folder is touched
        planner.pipeline.referral.check_referral_options(from_tier, to_tier, max_minutes=minutes, leads=leads, grid=grid)
    with _guarded(out, quiet, inputs=[network, institutions, population, boundaries, leads], force=force,
                  outs=[_Out(out, keep=(grid,) if grid is not None else ())]):
        planner.maps.get_basemap(basemap.value)
        run = planner.pipeline.run_referral(
            network, institutions, population, from_tiers=tuple(from_tier), to_tiers=tuple(to_tier), max_minutes=minutes,
            leads=leads, grid=grid, boundaries=boundaries, mode=mode.value, speed_kph=speed_kph, coords=coords.value,
            population_coords=population_coords.value, max_snap_m=max_snap_m, cell_size_m=cell_size_m,
            population_label=population_label, credits=credits)
        written = planner.exports.write_referral_outputs(run, out, title=title, basemap=basemap.value, offline=offline,
                                                         force=force)
    _print_referral(run.summary)
    _echo_written(out, written)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _print_referral(s: dict) -> None:  # type: ignore[type-arg]
    t = s["max_minutes"]
    tiers = f"{'+'.join(s['from_tiers'])} → {'+'.join(s['to_tiers'])}"
    times = "" if s["median_travel_time_min"] is None else \
        f"; median {s['median_travel_time_min']:.1f} min, longest {s['max_travel_time_min']:.1f} min"
    _echo(f"{t:g}-minute {s['mode']} referral {tiers}: {s['n_within']} of {s['n_from']} institutions "
          f"({_pct(s['within_pct'])}) within {t:g} min, {_pct(s['within_pct_snapped'])} of those on the network{times}")
    pop = s["population"]
    _echo(f"  population-weighted: {_pct(pop['within_pct'])} of {pop['total']:,.0f} {s['population_unit']} live nearest to an "
          f"institution that refers within {t:g} min")
    if s["n_unsnapped"] or s["n_unreachable"]:
        _echo(f"  not routed (kept in referral.csv with their status): {s['n_unsnapped']} off the network "
              f"({s['n_outside_study_area']} outside the study area), {s['n_unreachable']} with no route")
    if "lead_within_pct" in s:
        _echo(f"  own lead within {t:g} min: {_pct(s['lead_within_pct'])} ({s['n_leads']} leads; {s['lead_rule']})")


@app.command()
def batch(
    batch_file: Annotated[Path, typer.Argument(help="Batch file (TOML): [defaults] and one [[case]] per run.")],
    out: Annotated[Path, typer.Option("--out", help="Folder receiving <case name>/ and batch_summary.json.")],
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Address of an existing dask scheduler "
                                                     "(default: a LocalCluster on this machine).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Workers of the LocalCluster (default: one per "
                                                   "CPU).")] = None,
    retries: Annotated[int, typer.Option("--retries", help="Retries of a case whose worker failed.")] = 2,
    serial: Annotated[bool, typer.Option("--serial", help="Run the cases one by one in this process (no dask).")] = False,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print warnings and the result.")] = False,
) -> None:
    """Run many coverage cases (districts, counties, what-ifs) on dask.distributed; results equal serial runs."""
    _check_limits(quiet, workers=workers, retries=retries)
    with _guarded(None, quiet):
        result = planner.batch.run_batch(batch_file, out, scheduler=scheduler, n_workers=workers, retries=retries,
                                         serial=serial, progress=not quiet, force=force)
    for case in result.cases:
        if case.status == "ok":
            _echo(f"  {case.name}: {case.coverage_pct:.1f}% within {case.max_minutes:g} min "
                       f"({case.attempts} attempt{'s' if case.attempts > 1 else ''}, {case.seconds:.1f} s)")
        else:
            _echo(f"  {case.name}: FAILED after {case.attempts} attempt(s): {case.error}", err=True)
    _echo(f"{result.n_ok} of {len(result.cases)} cases done; wrote {result.summary_path}")
    if result.n_failed:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``planner`` console script."""
    app()
