"""Many coverage cases in one go, on dask.distributed: ``planner batch``.

A batch file lists cases, for example every district or county of a province,
or a set of what-ifs (modes, speeds, thresholds). Each case is one
:func:`~planner.pipeline.run_coverage` run whose outputs go to
``<out>/<case name>/``, written atomically as by ``planner coverage``.

.. code-block:: toml

    # wuhan_batch.toml; paths are relative to this file's folder
    [defaults]                    # applied to every case; a case's own keys win
    network = "../geodata/wuhan/roads.gpkg"
    institutions = "../geodata/wuhan/institutions.geojson"
    population = "../geodata/wuhan/population_age20plus_100m.tif"
    boundaries = "../geodata/wuhan/districts.gpkg"
    population_label = "persons aged 20+ (WorldPop)"
    minutes = [5, 10, 15]

    [[case]]
    name = "walk"                 # output folder <out>/walk/
    mode = "walk"

    [[case]]
    name = "walk-elderly"
    mode = "walk"
    speed_kph = 3.2
    isochrones = false

    [[case]]
    name = "ebike"
    mode = "ebike"
    title = "武汉 电动自行车 15分钟医疗服务圈"

Keys of a case (and of ``[defaults]``, except ``name``): ``name`` (required;
letters, digits, ``-``, ``_``, ``.``, Chinese characters; at most 100 bytes of
UTF-8), ``network``,
``institutions``, ``population`` (required), ``boundaries``, ``coords``,
``population_coords``, ``mode``, ``speed_kph``, ``minutes``, ``max_snap_m``, ``cell_size_m``,
``population_label``, ``isochrones`` (true/false), ``title``, ``basemap``,
``offline`` and ``credits`` (a table of role = "text", like ``--credit``:
``credits = {population = "统计局 census 2020"}``); they mean what the
options of ``planner coverage`` mean.

:func:`run_batch` runs the cases on a dask.distributed cluster: a local one
(one single-threaded process per worker) by default, or an existing cluster
given by its scheduler address. The cluster's workers must see the same file
system as the caller (the same machine, or a shared folder), since they read
the inputs and write the outputs themselves, and should run one thread each. Results do not depend on where a
case ran: a distributed batch writes the same figures and layers as a serial
one.

A case whose inputs are unusable (any :class:`~planner.PlannerError`) fails at
once, with the usual one-line message, since bad input does not heal on a
retry. Any other error, and a worker process that dies (e.g. out of memory),
makes the case run again, up to `retries` more times. Every case ends up in
``<out>/batch_summary.json`` as ``ok`` or ``failed``, with its attempts; none
is silently lost.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import shutil
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import datum, settings
from ._errors import InputFileError, InvalidValueError, OutputFolderError, PlannerError
from ._toml import TomlSource, name_problem, read_toml
from ._validate import check_minutes
from ._version import __version__
from .exports import write_coverage_outputs
from .io import check_output_dir, lock_output_dir, remove_stale_partials, write_error_log, write_json
from .maps import BASEMAPS
from .pipeline import Case, run_case
from .pipeline.case import scenario_credits

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

BATCH_SUMMARY = "batch_summary.json"  # file name of the batch report in the output folder


@dataclass(frozen=True, kw_only=True)
class BatchCase(Case):
    """One coverage case of a batch: a :class:`~planner.pipeline.Case` with a name and map options.

    The inputs and analysis settings (``network`` … ``isochrones``) are those
    of :class:`~planner.pipeline.Case`, checked when the case is built;
    :func:`load_batch` and :func:`run_batch` make the input paths absolute
    path strings.

    Attributes
    ----------
    name
        Case name, also the name of its output folder.
    title
        Map title, or None for the default.
    basemap
        Basemap of ``map.html`` (``auto``: amap in China, osm elsewhere).
    offline
        Inline Leaflet into ``map.html`` (the default).
    """

    name: str
    title: str | None = None
    basemap: str = "auto"
    offline: bool = True

    @property
    def case(self) -> Case:
        """The inputs and analysis settings alone."""
        return Case(**{f.name: getattr(self, f.name) for f in fields(Case)})


@dataclass(frozen=True)
class CaseResult:
    """How one case of a batch ended.

    Attributes
    ----------
    name
        Case name.
    status
        ``ok`` or ``failed``.
    attempts
        Number of times the case was started (more than 1 after a retry).
    seconds
        Run time in seconds of the last attempt (None if it never finished).
    out
        The case's output folder.
    error
        One-line error message of a failed case, else None.
    error_type
        Class name of that error, e.g. ``InputFileError`` or ``KilledWorker``.
    attempt_errors
        What went wrong in each attempt that raised an error other than a
        :class:`~planner.PlannerError`, or whose worker process died.
    population_unit, population_total, population_covered, coverage_pct, max_minutes, thresholds
        Figures from the case's ``summary.json`` (None for a failed case);
        `thresholds` lists ``minutes``, ``population_covered`` and ``coverage_pct``.
    """

    name: str
    status: str
    attempts: int
    seconds: float | None
    out: str
    error: str | None = None
    error_type: str | None = None
    attempt_errors: tuple[str, ...] = ()
    population_unit: str | None = None
    population_total: float | None = None
    population_covered: float | None = None
    coverage_pct: float | None = None
    max_minutes: float | None = None
    thresholds: tuple[dict[str, float], ...] = ()


@dataclass(frozen=True)
class BatchResult:
    """The outcome of :func:`run_batch`, as written to ``batch_summary.json``.

    Attributes
    ----------
    out_dir
        Output folder of the batch.
    cases
        One result per case, in the order the cases were given.
    scheduler
        Where the cases ran: ``serial``, ``LocalCluster(<n> workers)`` or the scheduler address.
    retries
        Retries allowed per case.
    seconds
        Wall-clock time of the whole batch in seconds.
    complete
        False when the batch stopped (interrupted, or its cluster lost)
        before every case finished; the unfinished cases are then failed.
    """

    out_dir: Path
    cases: tuple[CaseResult, ...]
    scheduler: str
    retries: int
    seconds: float
    complete: bool = True

    @property
    def n_ok(self) -> int:
        """Number of cases that succeeded."""
        return sum(c.status == "ok" for c in self.cases)

    @property
    def n_failed(self) -> int:
        """Number of cases that failed."""
        return sum(c.status != "ok" for c in self.cases)

    @property
    def failed(self) -> tuple[CaseResult, ...]:
        """The cases that failed."""
        return tuple(c for c in self.cases if c.status != "ok")

    @property
    def summary_path(self) -> Path:
        """Path of ``batch_summary.json``."""
        return self.out_dir / BATCH_SUMMARY

    def to_dict(self) -> dict[str, Any]:
        """Return the batch report as plain data (the content of ``batch_summary.json``)."""
        cases = []
        for c in self.cases:
            d = asdict(c)
            d["attempt_errors"] = list(c.attempt_errors)
            d["thresholds"] = [dict(t) for t in c.thresholds]
            cases.append(d)
        return {
            "planner_version": __version__,
            "complete": self.complete,
            "scheduler": self.scheduler,
            "retries": self.retries,
            "cases_total": len(self.cases),
            "cases_ok": self.n_ok,
            "cases_failed": self.n_failed,
            "seconds": round(self.seconds, 2),
            "cases": cases,
        }


# ----------------------------------------------------------------------------------------- loading

_CASE_KEYS = ("name", *(f.name for f in fields(BatchCase) if f.name != "name"))
_FILE_KEYS = ("network", "institutions", "population", "boundaries", "norms")
_REQUIRED = ("network", "institutions", "population")
_STR_KEYS = ("coords", "population_coords", "mode", "population_label", "title", "basemap")
_NUMBER_KEYS = ("speed_kph", "max_snap_m", "cell_size_m", "persons_per_unit")  # ranges in settings.LIMITS
_BOOL_KEYS = ("isochrones", "offline", "norms_enabled")


class _BatchFile:
    """A batch file's lines, to name the line of a key in error messages."""

    def __init__(self, source: TomlSource) -> None:
        self.source, self.path = source, source.path

    def error(self, where: tuple[str, int, str], key: str | None, problem: str, fix: str,
              kind: type[PlannerError] = InvalidValueError) -> PlannerError:
        """Return the error for `key` of the `where` ``(table, 0-based index, label)``, at its line."""
        table, index, label = where
        loc = self.source.where(self.source.line_in(table, index, key))
        what = f"'{key}' " if key else ""
        return kind(f"{loc}: {label}: {what}{problem}; fix: {fix}")


def load_batch(path: str | os.PathLike[str]) -> tuple[BatchCase, ...]:
    """Read and validate a batch file (TOML) of coverage cases.

    ``[defaults]`` applies to every ``[[case]]``; a case's own keys win. Input
    paths are resolved against the batch file's folder and checked to exist.

    Parameters
    ----------
    path
        The batch file.

    Returns
    -------
    cases
        The cases, in file order, with absolute input paths.

    Raises
    ------
    InputFileError
        If the batch file or an input file of a case is missing, or the batch
        file is a folder, not UTF-8 or GB18030/GBK text, or not valid TOML.
    InvalidValueError
        For unknown keys, wrong types, invalid values, a missing, duplicate or
        too long case name, or no case at all; the message names the file, the
        case, the key and its line.

    Examples
    --------
    >>> import tempfile
    >>> from planner import datasets
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "batch.toml").write_text(f'''
    ... [defaults]
    ... network = "{datasets.get_path("guanggu_osm").as_posix()}"
    ... institutions = "{datasets.get_path("guanggu_osm").as_posix()}"
    ... population = "{datasets.get_path("wuhan_population").as_posix()}"
    ... minutes = [10, 15]
    ...
    ... [[case]]
    ... name = "walk"
    ...
    ... [[case]]
    ... name = "ebike"
    ... mode = "ebike"
    ... ''', encoding="utf-8")
    >>> [(c.name, c.mode, c.minutes) for c in load_batch(folder / "batch.toml")]
    [('walk', 'walk', (10.0, 15.0)), ('ebike', 'ebike', (10.0, 15.0))]
    """
    p = Path(_absolute(path))
    data, source = read_toml(p, what="batch file")
    src = _BatchFile(source)
    for key in data:
        if key not in ("defaults", "case"):
            raise src.error(("", 0, "batch file"), key, "is not a known table",
                            "put settings under [defaults] and each case under [[case]]")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise src.error(("", 0, "batch file"), "defaults", "must be a table", "write it as [defaults]")
    raw_cases = data.get("case", [])
    if not isinstance(raw_cases, list) or not all(isinstance(c, dict) for c in raw_cases):
        raise src.error(("", 0, "batch file"), "case", "must be a list of tables", "write each case as [[case]]")
    if not raw_cases:
        msg = f"{p}: the batch file has no case; fix: add a [[case]] table with at least name = \"...\""
        raise InvalidValueError(msg)

    base = _parse_table(src, defaults, ("defaults", 0, "[defaults]"), allow_name=False)
    cases: list[BatchCase] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(raw_cases):
        name = raw.get("name")
        label = f"case '{name}'" if isinstance(name, str) else f"case #{i + 1}"
        where = ("case", i, label)
        own = _parse_table(src, raw, where, allow_name=True)
        if "name" not in own:
            raise src.error(where, "name", "is missing", 'add name = "..." (the output folder name)')
        folded = own["name"].casefold()
        if folded in seen:
            raise src.error(where, "name", f"'{own['name']}' is used by another case ('{seen[folded]}')",
                            "give every case its own name")
        seen[folded] = own["name"]
        merged = {**base, **own}
        for key in _REQUIRED:
            if key not in merged:
                raise src.error(where, None, f"'{key}' is missing", f'add {key} = "path" to the case or to [defaults]')
        cases.append(BatchCase(**merged))
    logger.info("%s: %d cases", p, len(cases))
    return tuple(cases)


def _parse_table(src: _BatchFile, raw: dict[str, Any], where: tuple[str, int, str], *, allow_name: bool) -> dict[str, Any]:
    """Check the keys of a ``[defaults]`` or ``[[case]]`` table and return them converted."""
    allowed = _CASE_KEYS if allow_name else tuple(k for k in _CASE_KEYS if k != "name")
    out: dict[str, Any] = {}
    for key, value in sorted(raw.items(), key=lambda item: item[0] != "name"):  # the name first, then in file order
        if key not in allowed:
            hint = "give each case its name in its [[case]]" if key == "name" else f"use one of {', '.join(allowed)}"
            raise src.error(where, key, "is not a known key here" if key == "name" else "is not a known key", hint)
        if key == "credits":  # credits = {population = "..."}: the user's credits of the inputs
            out[key] = scenario_credits(raw, fail=lambda _k, problem, fix: src.error(where, "credits", problem, fix))
        elif key in _BOOL_KEYS:
            if not isinstance(value, bool):
                raise src.error(where, key, f"must be true or false, not {value!r}", f"write {key} = true or false")
            out[key] = value
        elif key in _NUMBER_KEYS:
            lim = settings.LIMITS[key]
            lo, hi = lim.min, lim.max
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise src.error(where, key, f"must be a number, not {value!r}", f"e.g. {key} = {lo if lo > 1 else 3.2}")
            if not lim.contains(value):
                raise src.error(where, key, f"{value} is outside {lo:g}-{hi:g}",
                                f"give a value between {lo:g} and {hi:g} {lim.unit}")
            out[key] = float(value)
        elif key == "minutes":
            if not isinstance(value, list) or not value or not all(
                    isinstance(m, (int, float)) and not isinstance(m, bool) for m in value):
                raise src.error(where, key, f"must be a list of numbers, not {value!r}", "e.g. minutes = [5, 10, 15]")
            try:
                out[key] = check_minutes(value)
            except InvalidValueError:
                raise src.error(where, key, f"{value} is out of range",
                                f"use minutes {settings.LIMITS['minutes'].text()}") from None
        else:  # strings: names, paths and choices
            if not isinstance(value, str):
                raise src.error(where, key, f"must be a string, not {value!r}", f'write {key} = "..."')
            out[key] = _check_string(src, where, key, value)
    return out


def _check_string(src: _BatchFile, where: tuple[str, int, str], key: str, value: str) -> str:
    if key == "name":
        _check_name(value, lambda problem, fix: src.error(where, key, problem, fix))
    elif key in _FILE_KEYS:
        f = Path(os.path.abspath(src.path.parent / Path(value).expanduser()))  # relative to the batch file
        if not f.exists():
            raise src.error(where, key, f"file not found: {f}", "give a path relative to the batch file's folder",
                            kind=InputFileError)
        return str(f)
    elif key == "mode" and value not in settings.MODES:
        raise src.error(where, key, f"'{value}' is not a mode", f"use one of {', '.join(settings.MODES)}")
    elif key in ("coords", "population_coords") and value not in datum.DATUMS:
        raise src.error(where, key, f"'{value}' is not a known datum", "use wgs84, gcj02 or bd09")
    elif key == "basemap":
        if value not in BASEMAPS:
            raise src.error(where, key, f"'{value}' is not a basemap", f"use one of {', '.join(BASEMAPS)}")
    return value


def _check_name(name: str, fail: Callable[[str, str], Exception]) -> None:
    problem = name_problem(name, reserved=(BATCH_SUMMARY,))
    if problem:
        raise fail(*problem)


# ----------------------------------------------------------------------------------------- running


def run_batch(
    cases: Sequence[BatchCase] | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    scheduler: str | Client | None = None,
    n_workers: int | None = None,
    retries: int = 2,
    serial: bool = False,
    progress: bool = True,
    force: bool = False,
) -> BatchResult:
    """Run coverage cases on dask.distributed (or serially) and report each one.

    Each case runs :func:`~planner.pipeline.run_coverage` and
    :func:`~planner.exports.write_coverage_outputs` into
    ``<out_dir>/<case name>/``, atomically; ``<out_dir>/batch_summary.json``
    reports every case. A distributed run gives the same ``summary.json``
    figures and layers as a serial one.

    Parameters
    ----------
    cases
        Cases, or the path of a batch file (read with :func:`load_batch`).
        Relative input paths are taken from the current folder and passed to
        the workers as absolute paths.
    out_dir
        Output folder of the batch; created if needed (its parent must exist).
        Before any case runs, every ``<out_dir>/<case name>/`` is checked as
        ``planner coverage`` checks ``--out`` (see
        :func:`planner.io.check_output_dir`), and a second batch into the
        same folder is refused while this one runs.
    scheduler
        Address of a running dask scheduler (e.g. ``tcp://10.0.0.5:8786``) or
        a ``distributed.Client``; by default a local cluster of single-threaded
        worker processes is started and shut down again. The workers of an
        existing cluster must see `out_dir` and the input files at the same
        paths, and should run one thread each (``dask worker ADDRESS
        --nthreads 1``): the static map is drawn with matplotlib's pyplot,
        which is not thread-safe.
    n_workers
        Worker processes of the local cluster; by default one per CPU, at most
        one per case. Ignored with `scheduler`.
    retries
        How many more times a case runs after an error other than a
        :class:`~planner.PlannerError`, or after its worker process died
        (on the local cluster; an existing cluster applies its own
        ``distributed.scheduler.allowed-failures`` to dead workers).
        Cases are handed to the scheduler as threads free up, so that a
        dying worker takes no waiting case down with it; an adaptive
        cluster therefore does not grow on account of a batch.
    serial
        Run the cases one after another in this process, without dask.
    progress
        Show a progress bar (tqdm; a widget in notebooks).
    force
        Replace case folders even if they hold files planner did not write.

    Returns
    -------
    result
        Status, attempts, run time, figures and error of every case.

    Raises
    ------
    InvalidValueError
        For an unusable case name, duplicate case names, no case, or a
        negative `retries` or `n_workers`.
    OutputFolderError
        If a case folder would delete an input or foreign files or cannot be
        written, or another batch is writing `out_dir`.
    ImportError
        If dask.distributed is needed and not installed.

    Examples
    --------
    >>> import dataclasses, tempfile
    >>> from planner import datasets
    >>> good = BatchCase(name="guanggu-walk", network=datasets.get_path("guanggu_osm"),
    ...                  institutions=datasets.get_path("wuhan_institutions"),
    ...                  population=datasets.get_path("wuhan_population"), isochrones=False)
    >>> typo = dataclasses.replace(good, name="typo", population="no_such_file.tif")
    >>> result = run_batch([good, typo], tempfile.mkdtemp(), serial=True, progress=False)
    >>> [(c.name, c.status, c.attempts, c.coverage_pct) for c in result.cases]
    [('guanggu-walk', 'ok', 1, 4.64), ('typo', 'failed', 1, None)]
    >>> result.cases[1].error  # doctest: +ELLIPSIS
    '.../no_such_file.tif: file not found (the population file); fix: check the path and spelling'
    """
    t0 = time.perf_counter()
    batch_file = cases if isinstance(cases, (str, os.PathLike)) else None
    if batch_file is not None:
        cases = load_batch(batch_file)
    todo = _checked_cases(cases)  # type: ignore[arg-type]
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        msg = f"retries={retries!r} must be a whole number >= 0; fix: e.g. retries=2"
        raise InvalidValueError(msg)
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        msg = f"n_workers={n_workers!r} must be a whole number >= 1; fix: e.g. --workers 4"
        raise InvalidValueError(msg)
    out = Path(_absolute(out_dir))
    _check_outputs(todo, out, batch_file=batch_file, force=force)
    runner = functools.partial(_run_one, force=True) if force else _run_one  # looked up now: tests replace _run_one
    with lock_output_dir(out):  # a second batch into `out` is refused, not raced
        out.mkdir(exist_ok=True)
        log_dir = out / f".batch-attempts-{uuid.uuid4().hex[:12]}"
        log_dir.mkdir()
        records: dict[str, dict[str, Any]] = {}
        where = "serial" if serial else scheduler if isinstance(scheduler, str) else "dask"
        try:
            if serial:
                _run_serial(todo, out, log_dir, retries, records, progress, runner=runner)
            else:
                with _client(scheduler, n_workers=n_workers, n_cases=len(todo), retries=retries) as (client, where):
                    _run_distributed(client, todo, out, log_dir, retries, records, progress, runner=runner)
        except BaseException as exc:
            # report what finished, and why the rest did not, before passing the error on
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else _one_line(f"{type(exc).__name__}: {exc}")
            try:
                _finish(todo, out, log_dir, records, where=where, retries=retries, seconds=time.perf_counter() - t0,
                        stopped=reason)
            except Exception:  # noqa: BLE001 - the original error matters more
                logger.exception("batch: could not write %s", out / BATCH_SUMMARY)
            raise
        result = _finish(todo, out, log_dir, records, where=where, retries=retries, seconds=time.perf_counter() - t0)
    logger.info("batch: %d of %d cases ok, %d failed; report in %s", result.n_ok, len(todo), result.n_failed,
                result.summary_path)
    return result


def _check_outputs(cases: list[BatchCase], out: Path, *, batch_file: str | os.PathLike[str] | None, force: bool) -> None:
    """Check every case's output folder before any case runs: no input inside, no foreign files, writable."""
    inputs = [batch_file, *(getattr(c, k) for c in cases for k in ("network", "institutions", "population", "boundaries"))]
    summary = os.path.realpath(out / BATCH_SUMMARY)
    for p in inputs:
        if p is not None and os.path.realpath(p) == summary:
            msg = (f"output folder {out}: the batch would replace the input {p} with its {BATCH_SUMMARY}; "
                   "fix: move the input out of that folder, or give another --out")
            raise OutputFolderError(msg)
    for case in cases:
        check_output_dir(out / case.name, inputs=inputs, force=force, root=out)


def _checked_cases(cases: Sequence[BatchCase]) -> list[BatchCase]:
    """Check names, make paths absolute and thresholds tuples."""
    todo: list[BatchCase] = []
    seen: set[str] = set()
    if not cases:
        msg = "the batch has no case; fix: give at least one case"
        raise InvalidValueError(msg)
    for case in cases:
        if not isinstance(case, BatchCase):
            msg = f"cases must be BatchCase objects, not {type(case).__name__}; fix: build them with BatchCase(...) or load_batch"
            raise InvalidValueError(msg)

        def fail(problem: str, fix: str, name: str = case.name) -> InvalidValueError:
            return InvalidValueError(f"case '{name}': {problem}; fix: {fix}")

        if not isinstance(case.name, str):
            raise fail(f"the name must be a string, not {type(case.name).__name__}", 'e.g. name="walk"', str(case.name))
        _check_name(case.name, fail)
        if case.name.casefold() in seen:
            raise fail("the name is used by another case", "give every case its own name")
        seen.add(case.name.casefold())
        todo.append(replace(case, network=_absolute(case.network), institutions=_absolute(case.institutions),
                            population=_absolute(case.population),
                            boundaries=None if case.boundaries is None else _absolute(case.boundaries)))
    return todo


def _absolute(path: str | os.PathLike[str]) -> str:
    """Absolute path (from the current folder), so that workers need not share it; links are kept."""
    return os.path.abspath(Path(path).expanduser())


@contextlib.contextmanager
def _client(scheduler: str | Client | None, *, n_workers: int | None, n_cases: int,
            retries: int) -> Iterator[tuple[Client, str]]:
    """Connect to `scheduler`, or start a local cluster, and close what was opened here."""
    dask, distributed = _import_distributed()
    if n_workers is None:
        from dask.system import CPU_COUNT  # respects CPU affinity and container quotas

        n_workers = max(1, min(CPU_COUNT, n_cases))
    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler, str(getattr(scheduler.scheduler, "address", "dask client"))
        return
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            msg = f"cannot reach the dask scheduler at {scheduler} ({exc}); fix: check the address and that it runs"
            raise InvalidValueError(msg.replace("\n", " ")) from None
        with client:
            yield client, scheduler
        return
    # a worker that dies while running a case lets the case run `retries` more times, as an error does
    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        # any free port: a fixed one clashes with other clusters (and the HTTP server runs even without a dashboard)
        cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                           dashboard_address=":0")
    with cluster, distributed.Client(cluster) as client:
        logger.info("batch: local dask cluster with %d worker processes%s", n_workers,
                    f"; dashboard {client.dashboard_link}" if importlib.util.find_spec("bokeh") else "")
        client.forward_logging("planner", level=logging.WARNING)  # workers' warnings show up in this process's log
        yield client, f"LocalCluster({n_workers} workers)"


def _import_distributed() -> tuple[Any, Any]:
    try:
        import dask
        import distributed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        msg = ("running a batch on a cluster needs dask.distributed; fix: `conda install -c conda-forge dask distributed` "
               "or `pip install \"dask[distributed]\"`, or run it serially (serial=True, --serial)")
        raise ImportError(msg) from exc
    return dask, distributed


def _run_serial(cases: list[BatchCase], out: Path, log_dir: Path, retries: int,
                records: dict[str, dict[str, Any]], progress: bool, *,
                runner: Callable[[BatchCase, Path], dict[str, Any]] | None = None) -> None:
    with _progress_bar(len(cases), progress) as bar:
        for case in cases:
            for attempt in range(retries + 1):
                try:
                    records[case.name] = _case_task(case, str(out), str(log_dir), runner or _run_one)
                    break
                except Exception as exc:  # noqa: BLE001 - retried, then reported with the case
                    if attempt == retries:
                        records[case.name] = _error_record(exc)
            _report(case.name, records[case.name], bar)


def _run_distributed(client: Client, cases: list[BatchCase], out: Path, log_dir: Path, retries: int,
                     records: dict[str, dict[str, Any]], progress: bool, *,
                     runner: Callable[[BatchCase, Path], dict[str, Any]] | None = None) -> None:
    from distributed import as_completed

    token = log_dir.name.rsplit("-", 1)[-1]
    waiting = cases[::-1]
    running: dict[Any, str] = {}
    done = as_completed()  # type: ignore[no-untyped-call]

    def hand_out() -> None:
        # As many cases in flight as the cluster has threads: a case queued on a worker that dies
        # would count that death against its own retries. The runner is passed in, not looked up
        # on the worker, so that tests can make a worker crash.
        capacity = max(1, sum(client.nthreads().values()))  # type: ignore[no-untyped-call]
        while waiting and len(running) < capacity:
            case = waiting.pop()
            fut = client.submit(_case_task, case, str(out), str(log_dir), runner or _run_one, retries=retries, pure=False,
                                key=f"planner-{case.name}-{token}")
            running[fut] = case.name
            done.add(fut)  # type: ignore[no-untyped-call]

    with _progress_bar(len(cases), progress) as bar:
        try:
            hand_out()
            for fut in done:
                name = running.pop(fut)
                try:
                    records[name] = fut.result()
                except Exception as exc:  # noqa: BLE001 - every case is reported, whatever happened
                    records[name] = _error_record(exc)
                fut.release()
                _report(name, records[name], bar)
                hand_out()
        except BaseException:
            client.cancel(list(running))  # type: ignore[no-untyped-call]
            raise


@contextlib.contextmanager
def _progress_bar(total: int, progress: bool) -> Iterator[Any]:
    """Show a tqdm bar over cases (a widget in notebooks), with planner's log lines printed above it."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with contextlib.ExitStack() as stack:
        if progress:
            stack.enter_context(logging_redirect_tqdm(loggers=[logging.getLogger("planner")]))
        yield stack.enter_context(tqdm(total=total, desc="batch", unit="case", disable=not progress))


def _report(name: str, record: dict[str, Any], bar: Any) -> None:
    if record["status"] == "ok":
        logger.info("case '%s': ok, %.2f %% within %g min", name, record["coverage_pct"], record["max_minutes"])
    else:
        logger.warning("case '%s' failed: %s", name, record["error"])
    bar.update(1)
    bar.set_postfix_str(f"last: {name}")


def _error_record(exc: BaseException) -> dict[str, Any]:
    """Record of a case whose last attempt raised, or whose workers all died."""
    kind = type(exc).__name__
    if kind == "KilledWorker":
        text = (f"the worker process died on every attempt ({exc}); "
                "fix: the case may need more memory: use fewer workers (--workers) or a bigger machine")
    elif kind in ("CancelledError", "FutureCancelledError"):
        text = f"the case was cancelled ({exc}); fix: check that the dask scheduler and its workers keep running"
    elif isinstance(exc, PlannerError):
        text = str(exc)
    else:
        text = f"{kind}: {exc}; fix: see the traceback in the case's error.log and report it if it looks like a bug"
    return {"status": "failed", "error": _one_line(text), "error_type": kind, "seconds": None}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _case_task(case: BatchCase, out_root: str, log_dir: str,
               runner: Callable[[BatchCase, Path], dict[str, Any]]) -> dict[str, Any]:
    """Run one attempt of a case (on a worker): log it, run it, and log how it ended.

    Bad input (a PlannerError) becomes a ``failed`` record, which is not
    retried; any other exception propagates so that dask retries the case.
    """
    log = Path(log_dir) / f"{case.name}.jsonl"
    _log_attempt(log, {"event": "start", "pid": os.getpid(), "worker": _worker_address()})
    out = Path(out_root) / case.name
    try:
        record = runner(case, out)
    except PlannerError as exc:
        write_error_log(out, exc)
        record = {"status": "failed", "error": _one_line(str(exc)), "error_type": type(exc).__name__, "seconds": None}
    except Exception as exc:
        write_error_log(out, exc)
        with contextlib.suppress(OSError), open(out / "error.log", "a", encoding="utf-8") as f:
            f.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        _log_attempt(log, {"event": "error", "error": _one_line(f"{type(exc).__name__}: {exc}")})
        raise
    _log_attempt(log, {"event": "end", "status": record["status"]})
    return record


def _run_one(case: BatchCase, out: Path, *, force: bool = False) -> dict[str, Any]:
    """Run one case and write its outputs into `out`; return its key figures."""
    t0 = time.perf_counter()
    run = run_case(case.case, progress=False)
    write_coverage_outputs(run, out, title=case.title, basemap=case.basemap, offline=case.offline, force=force)
    s = run.summary
    return {
        "status": "ok", "error": None, "error_type": None, "seconds": round(time.perf_counter() - t0, 2),
        "population_unit": s.get("population_unit"),
        "population_total": s.get("population_total"),
        "population_covered": s.get("population_covered"),
        "coverage_pct": s.get("coverage_pct"),
        "max_minutes": s.get("max_minutes"),
        "thresholds": [{k: t[k] for k in ("minutes", "population_covered", "coverage_pct") if k in t}
                       for t in s.get("thresholds", [])],
    }


def _worker_address() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):  # not on a dask worker (serial run)
        return None


def _log_attempt(log: Path, entry: dict[str, Any]) -> None:
    """Append one line to a case's attempt log (one small append per write, so lines do not interleave)."""
    line = json.dumps({"time": round(time.time(), 3), **entry}, ensure_ascii=False) + "\n"
    with contextlib.suppress(OSError), open(log, "a", encoding="utf-8") as f:
        f.write(line)


def _read_attempts(log: Path, *, running_means_died: bool) -> tuple[int, list[str]]:
    """Count a case's attempts and describe each one that raised or whose worker died."""
    try:
        entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError):
        return 0, []
    attempts, problems = 0, []
    current: dict[str, Any] | None = None
    for e in entries:
        if e.get("event") == "start":
            if current is not None:  # started again without ending: the worker died
                problems.append(_died(attempts, current))
            attempts += 1
            current = e
        elif e.get("event") == "error":
            problems.append(f"attempt {attempts}: {e.get('error')}")
            current = None
        elif e.get("event") == "end":
            current = None
    if current is not None and running_means_died:
        problems.append(_died(attempts, current))
    return attempts, problems


def _died(attempt: int, start: dict[str, Any]) -> str:
    on = f" on worker {start['worker']}" if start.get("worker") else ""
    return f"attempt {attempt}: the worker process (pid {start.get('pid')}{on}) died while running the case"


def _finish(cases: list[BatchCase], out: Path, log_dir: Path, records: dict[str, dict[str, Any]], *,
            where: str, retries: int, seconds: float, stopped: str | None = None) -> BatchResult:
    """Assemble the case results, write ``batch_summary.json`` and clean up.

    `stopped` says why the batch stopped early; cases without a record then
    fail with that reason.
    """
    results = []
    for case in cases:
        rec = records.get(case.name)
        if rec is None:
            rec = {"status": "failed", "error": f"the batch stopped before this case finished ({stopped})",
                   "error_type": "BatchStopped", "seconds": None}
        attempts, problems = _read_attempts(log_dir / f"{case.name}.jsonl",
                                            running_means_died=rec["error_type"] != "BatchStopped")
        case_out = out / case.name
        remove_stale_partials(case_out)  # left by a worker that died while writing
        if rec["status"] != "ok" and rec["error_type"] in ("KilledWorker", "CancelledError", "FutureCancelledError"):
            write_error_log(case_out, RuntimeError(rec["error"]))
        results.append(CaseResult(
            name=case.name, status=rec["status"], attempts=attempts, seconds=rec.get("seconds"), out=str(case_out),
            error=rec.get("error"), error_type=rec.get("error_type"), attempt_errors=tuple(problems),
            population_unit=rec.get("population_unit"), population_total=rec.get("population_total"),
            population_covered=rec.get("population_covered"), coverage_pct=rec.get("coverage_pct"),
            max_minutes=rec.get("max_minutes"), thresholds=tuple(rec.get("thresholds", ())),
        ))
    shutil.rmtree(log_dir, ignore_errors=True)
    result = BatchResult(out_dir=out, cases=tuple(results), scheduler=where, retries=retries, seconds=seconds,
                         complete=stopped is None)
    tmp = out / f".{BATCH_SUMMARY}.partial"
    write_json(result.to_dict(), tmp)
    os.replace(tmp, result.summary_path)
    return result
