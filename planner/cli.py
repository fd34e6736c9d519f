"""Command-line interface: ``planner coverage ...``.

Errors in the user's inputs print one line naming the file, column or row and
the fix, and exit with code 2; nothing but ``error.log`` is written to the
output folder then.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from ._errors import PlannerError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="planner: 15-minute medical service circle (15分钟医疗服务圈) coverage for medical consortiums.",
)
logger = logging.getLogger("planner")


class Mode(str, Enum):
    """Travel modes."""

    walk = "walk"
    ebike = "ebike"
    drive = "drive"


class Coords(str, Enum):
    """Coordinate datums of input tables."""

    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


@contextlib.contextmanager
def _logging_to_stderr(quiet: bool) -> Iterator[None]:
    """Send planner's log to stderr for one command, and undo it afterwards (notebooks, CliRunner)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("planner")
    saved = (root.handlers[:], root.level, root.propagate)
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.handlers[:], root.level, root.propagate = saved


def _fail(exc: BaseException, out: Path | None) -> None:
    if isinstance(exc, PlannerError):
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    detail = "".join(traceback.format_exception(exc))
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "error.log").write_text(f"planner run FAILED; no results were written.\n{detail}", encoding="utf-8")
        except OSError:
            pass
    where = f" (details in {out / 'error.log'})" if out is not None else ""
    typer.echo(f"internal error: {type(exc).__name__}: {exc}{where}; please report it", err=True)
    raise typer.Exit(1)


@app.callback()
def _main() -> None:
    """planner command-line interface."""


@app.command()
def version() -> None:
    """Print the planner version."""
    typer.echo(__version__)


@app.command()
def coverage(
    network: Annotated[Path, typer.Option("--network", help="Road network: .osm, .osm.pbf, or a line layer (.gpkg/.shp/.geojson).")],
    institutions: Annotated[Path, typer.Option("--institutions", help="Institutions: CSV/XLSX (name, lon, lat[, tier, capacity]), point layer, or OSM file.")],
    population: Annotated[Path, typer.Option("--population", help="Population: GeoTIFF raster, or CSV/layer with a population column.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (summary.json, cells.gpkg, isochrones.gpkg, map.html).")],
    boundaries: Annotated[Optional[Path], typer.Option("--boundaries", help="District polygons with a name column.")] = None,
    mode: Annotated[Mode, typer.Option("--mode", help="Travel mode.")] = Mode.walk,
    speed_kph: Annotated[Optional[float], typer.Option("--speed-kph", help="One speed for all roads, km/h (e.g. 3.2 for elderly walking).")] = None,
    minutes: Annotated[Optional[list[float]], typer.Option("--minutes", help="Threshold in minutes; repeat for several. Default 5 10 15.")] = None,
    coords: Annotated[Coords, typer.Option("--coords", help="Datum of table coordinates: wgs84, gcj02 (Amap), bd09 (Baidu).")] = Coords.wgs84,
    max_snap_m: Annotated[Optional[float], typer.Option("--max-snap-m", help="Largest distance from a point to a road, metres (default 500).")] = None,
    cell_size_m: Annotated[Optional[float], typer.Option("--cell-size", help="Demand cell size, metres (default: raster pixels; 100 m for points).")] = None,
    population_label: Annotated[str, typer.Option("--population-label", help="What the population counts, shown with totals.")] = "population",
    title: Annotated[Optional[str], typer.Option("--title", help="Map title.")] = None,
    isochrones: Annotated[bool, typer.Option("--isochrones/--no-isochrones", help="Compute isochrone polygons.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print warnings and the result.")] = False,
) -> None:
    """Test the 15-minute medical service circle: who reaches an institution within each threshold."""
    from .io import write_error_log
    from .pipeline import run_coverage, write_coverage_outputs

    try:
        with _logging_to_stderr(quiet):
            run = run_coverage(
                network, institutions, population,
                boundaries=boundaries, mode=mode.value, speed_kph=speed_kph,
                minutes=tuple(minutes) if minutes else None, coords=coords.value,
                max_snap_m=max_snap_m, cell_size_m=cell_size_m, population_label=population_label,
                with_isochrones=isochrones, progress=not quiet,
            )
            write_coverage_outputs(run, out, title=title)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        if isinstance(exc, PlannerError):
            write_error_log(out, exc)
        _fail(exc, out)
        return
    s = run.summary
    typer.echo(
        f"{s['max_minutes']:g}-minute {s['mode']} coverage: {s['coverage_pct']:.1f}% "
        f"({s['population_covered']:,.0f} of {s['population_total']:,.0f} {s['population_unit']}); "
        f"unreachable cells {s['cells']['unreachable']}, unsnapped institutions {s['institutions']['unsnapped']}"
        f" ({s['institutions']['outside_study_area']} outside the network's extent)"
    )
    if s["study_area"]["population_outside_study_area"] > 0:
        typer.echo(f"  not analysed: {s['study_area']['population_outside_study_area']:,.0f} of the input's "
                   f"{s['study_area']['population_input_total']:,.0f} live outside the road network's extent")
    for row in s["thresholds"]:
        typer.echo(f"  within {row['minutes']:g} min: {row['coverage_pct']:.1f}%")
    typer.echo(f"wrote {out}/summary.json, cells.gpkg, institutions.gpkg, isochrones.gpkg, map.html, map.png")


def main() -> None:
    """Entry point of the ``planner`` console script."""
    app()
