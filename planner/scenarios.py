"""What-if scenarios: TOML files, validated into one frozen :class:`Scenario` type.

A scenario names its inputs and analysis settings and lists edits:

.. code-block:: toml

    name = "wuhan-new-centres"            # output folder outputs/<name>/
    title = "武汉 新增两处社区卫生服务中心"
    extends = "wuhan_baseline.toml"        # optional: inherit inputs, analysis and edits

    [inputs]                               # paths are relative to this file
    network = "../geodata/wuhan/roads.gpkg"
    institutions = "../geodata/wuhan/institutions.geojson"
    population = "../geodata/wuhan/population_age20plus_100m.tif"
    boundaries = "../geodata/wuhan/districts.gpkg"
    coords = "wgs84"                       # datum of the institutions' coordinates
    population_coords = "wgs84"            # datum of a population table's coordinates
    population_label = "persons aged 20+ (WorldPop)"
    credits = {population = "WorldPop, CC BY 4.0"}  # optional: the source of inputs planner cannot credit itself

    [analysis]
    mode = "walk"                          # walk | ebike | drive
    minutes = [5, 10, 15]
    speed_kph = 3.2                        # optional: one speed on every road (e.g. elderly walking)
    max_snap_m = 500
    cell_size_m = 100                      # optional
    isochrones = true
    capacity_column = "beds"               # optional: capacity-limited coverage (persons_per_unit, allocation too)
    norms = "my_norms.toml"                # optional: norms per district (the shipped file by default; false: none)

    [edits]
    remove_institutions = ["way/123"]      # facility ids (see institutions.gpkg)

    [[edits.add_institutions]]
    name = "新建社区卫生服务中心"
    lon = 114.25
    lat = 30.58
    tier = "primary"                       # optional: from the name rules otherwise
    capacity = 50                          # optional
    coords = "gcj02"                       # optional: datum of this point

    [[edits.change_tier]]
    id = "way/456"
    tier = "secondary"

    [[edits.close_roads]]                  # by id (road_id / osmid) or by polygon (lon, lat)
    ids = [1201, 1202]
    polygon = [[114.28, 30.55], [114.29, 30.55], [114.29, 30.56]]

Unknown keys, wrong types, edits that name unknown institutions, and polygons
outside the study area are errors that name the file, the key and the line.
The file may be saved as UTF-8 (with or without BOM) or GB18030/GBK. Before
any input is loaded, a name longer than 100 bytes of UTF-8 (it becomes folder
and file names), an ``extends`` that names a missing file, a folder or a loop,
and a polygon with NaN/inf corners or crossing edges are refused.

Runs are deterministic, and the loaded inputs (network, population cells) are
cached in memory and on disk (``<out_root>/.cache/``), keyed by the input files'
contents and the options, so a what-if after its baseline takes seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import datum, settings
from ._errors import InvalidValueError
from ._toml import TomlSource, name_problem, read_toml
from ._validate import check_minutes, check_same_crs
from ._version import __version__
from .coverage import assign_districts
from .institutions import classify_tier
from .network import RoadNetwork, close_roads, with_speed
from .pipeline import Case, CaseInputs, CoverageRun, analyse_case
from .pipeline.case import ANALYSIS_FIELDS, INPUT_FIELDS, analysis_options, scenario_analysis_keys, scenario_credits
from .pipeline.summary import ClosedRoads, ScenarioEdits, ScenarioSummary

logger = logging.getLogger(__name__)

_CACHE_VERSION = 2  # 2: CaseInputs holds a RoadNetwork and its compiled net, not a networkx graph


@dataclass(frozen=True)
class AddInstitution:
    """A new institution: name, position (degrees) and optional tier and capacity."""

    name: str
    lon: float
    lat: float
    tier: str | None = None
    capacity: float | None = None
    coords: str = "wgs84"
    id: str | None = None


@dataclass(frozen=True)
class ChangeTier:
    """Give an existing institution another tier."""

    id: str
    tier: str


@dataclass(frozen=True)
class CloseRoads:
    """Close roads by id (``road_id`` or ``osmid``) and/or every road crossing a polygon (lon, lat)."""

    ids: tuple[Any, ...] = ()
    polygon: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Edits:
    """Every what-if edit of a scenario."""

    add_institutions: tuple[AddInstitution, ...] = ()
    remove_institutions: tuple[str, ...] = ()
    change_tier: tuple[ChangeTier, ...] = ()
    close_roads: tuple[CloseRoads, ...] = ()

    @property
    def empty(self) -> bool:
        """True when there is no edit."""
        return not (self.add_institutions or self.remove_institutions or self.change_tier or self.close_roads)


class CaseView:
    """A read-only view of one half of a scenario's :class:`~planner.pipeline.Case`: ``inputs`` or ``analysis``.

    ``scenario.inputs.network`` reads ``scenario.case.network``; to change a
    setting, replace the case: ``dataclasses.replace(s, case=dataclasses.replace(s.case, isochrones=False))``.
    """

    __slots__ = ("_case", "_names")

    def __init__(self, case: Case, names: tuple[str, ...]) -> None:
        object.__setattr__(self, "_case", case)
        object.__setattr__(self, "_names", names)

    def __getattr__(self, name: str) -> Any:
        if name in self._names:
            return getattr(self._case, name)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        msg = f"scenario settings are read-only; replace the scenario's case to change '{name}'"
        raise AttributeError(msg)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CaseView) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.to_dict().items()))

    def __repr__(self) -> str:
        return f"CaseView({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def to_dict(self) -> dict[str, Any]:
        """Return the settings of this half, in field order."""
        return {k: getattr(self._case, k) for k in self._names}


@dataclass(frozen=True)
class Scenario:
    """A validated scenario, shared by the CLI and the notebooks: a :class:`~planner.pipeline.Case` plus edits.

    Attributes
    ----------
    name
        Folder name of its outputs.
    case
        What to read and how to analyse it.
    edits
        What to change.
    title
        Title for maps and reports.
    description
        Free text.
    source
        The TOML file it was read from (None when built in code).
    """

    name: str
    case: Case
    edits: Edits = field(default_factory=Edits)
    title: str | None = None
    description: str = ""
    source: str | None = None

    @property
    def inputs(self) -> CaseView:
        """The case's input files and their options (a read-only view of :attr:`case`)."""
        return CaseView(self.case, INPUT_FIELDS)

    @property
    def analysis(self) -> CaseView:
        """The case's analysis settings (a read-only view of :attr:`case`)."""
        return CaseView(self.case, ANALYSIS_FIELDS)

    def to_dict(self) -> dict[str, Any]:
        """Return the scenario as plain data (for ``scenario.json``)."""
        return {"name": self.name, "inputs": self.inputs.to_dict(), "analysis": self.analysis.to_dict(),
                "edits": dataclasses.asdict(self.edits), "title": self.title, "description": self.description,
                "source": self.source}


# ----------------------------------------------------------------------------------------- loading

_TOP = {"name", "title", "description", "extends", "inputs", "analysis", "edits"}
_INPUTS = set(INPUT_FIELDS)
_ANALYSIS = set(ANALYSIS_FIELDS)
_EDITS = {f.name for f in dataclasses.fields(Edits)}
_ADD = {f.name for f in dataclasses.fields(AddInstitution)}
_TIER = {f.name for f in dataclasses.fields(ChangeTier)}
_CLOSE = {f.name for f in dataclasses.fields(CloseRoads)}


class _Ctx:
    """A scenario file's lines, for error messages that give the line of a key."""

    def __init__(self, source: TomlSource) -> None:
        self.source, self.path = source, source.path

    def fail(self, key: str, problem: str, fix: str, *, token: str | None = None,
             table: tuple[str, int] | None = None) -> InvalidValueError:
        """Return the error for `key`, at the line of `token` in the `table` ``(name, 0-based index)`` if given."""
        token = token or key.split(".")[-1].split("[")[0]
        line = self.source.line_in(table[0], table[1], token) if table else None
        return InvalidValueError(f"{self.source.where(line or self.source.line_of(token))}: '{key}' {problem}; fix: {fix}")


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario TOML file.

    Parameters
    ----------
    path
        Scenario file; relative input paths are resolved against its folder.

    Returns
    -------
    scenario
        The frozen, validated scenario.

    Raises
    ------
    InputFileError
        If the file is missing, a folder, not UTF-8 or GB18030/GBK text, or
        not valid TOML.
    InvalidValueError
        For unknown keys, wrong types or invalid values (a name too long for a
        folder, NaN or self-crossing polygons, an ``extends`` that is missing,
        a folder or a loop), naming the key and line.

    Examples
    --------
    >>> from planner import datasets
    >>> s = load_scenario(datasets.GEODATA.parent / "scenarios" / "wuhan_baseline.toml")
    >>> s.name, s.analysis.mode, s.analysis.minutes
    ('wuhan-baseline', 'walk', (5.0, 10.0, 15.0))
    """
    return _load(Path(path).resolve(), seen=())


def _load(path: Path, *, seen: tuple[Path, ...]) -> Scenario:
    # the file, its name and its 'extends' chain are checked before any key that names an input
    data, source = read_toml(path, what="scenario file")
    ctx = _Ctx(source)
    _unknown(ctx, data, _TOP, "")
    name = _typed(ctx, data, "name", str, required=True)
    problem = name_problem(name)
    if problem:
        raise ctx.fail("name", *problem)
    parent: Scenario | None = None
    if "extends" in data:
        base = (path.parent / _typed(ctx, data, "extends", str)).resolve()
        if base.is_dir():
            raise ctx.fail("extends", f"names a folder ({base}), not a scenario file",
                           "give the path of a .toml file, relative to this scenario file")
        if not base.is_file():
            raise ctx.fail("extends", f"file not found: {base}", "give a path relative to this scenario file")
        if base in (*seen, path):
            chain = " -> ".join(p.name for p in (*seen, path, base))
            raise ctx.fail("extends", f"forms a loop ({chain})", "remove one 'extends'")
        parent = _load(base, seen=(*seen, path))

    raw_in = _table(ctx, data, "inputs")
    _unknown(ctx, raw_in, _INPUTS, "inputs.")
    inputs: dict[str, Any] = parent.inputs.to_dict() if parent else {}
    for key in ("network", "institutions", "population", "boundaries"):
        if key in raw_in:
            value = _typed(ctx, raw_in, key, str, prefix="inputs.")
            p = (path.parent / value).resolve()
            if not p.exists():
                raise ctx.fail(f"inputs.{key}", f"file not found: {p}", "give a path relative to the scenario file")
            inputs[key] = str(p)
    for key in ("network", "institutions", "population"):
        if key not in inputs:
            raise ctx.fail(f"inputs.{key}", "is missing", f"add {key} = \"path\" under [inputs]", token="inputs")
    for key in ("coords", "population_coords"):
        if key in raw_in:
            coords = _typed(ctx, raw_in, key, str, prefix="inputs.")
            try:
                datum.to_wgs84(0.0, 0.0, datum=coords)
            except ValueError:
                raise ctx.fail(f"inputs.{key}", f"'{coords}' is not a known datum", "use wgs84, gcj02 or bd09") from None
            inputs[key] = coords
    if "population_label" in raw_in:
        inputs["population_label"] = _typed(ctx, raw_in, "population_label", str, prefix="inputs.")
    if "credits" in raw_in:  # the user's credits of the inputs, role = "text"; they add to (and win over) the parent's
        inputs["credits"] = (*dict({**dict(inputs.get("credits", ())),
                                    **dict(scenario_credits(raw_in, fail=ctx.fail))}).items(),)

    raw_an = _table(ctx, data, "analysis")
    _unknown(ctx, raw_an, _ANALYSIS, "analysis.")
    an: dict[str, Any] = parent.analysis.to_dict() if parent else {}
    if "mode" in raw_an:
        mode = _typed(ctx, raw_an, "mode", str, prefix="analysis.")
        if mode not in settings.MODES:
            raise ctx.fail("analysis.mode", f"'{mode}' is not a mode", f"use one of {', '.join(settings.MODES)}")
        an["mode"] = mode
    if "minutes" in raw_an:
        mins = raw_an["minutes"]
        if not isinstance(mins, list) or not all(isinstance(m, (int, float)) and not isinstance(m, bool) for m in mins):
            raise ctx.fail("analysis.minutes", "must be a list of numbers", "e.g. minutes = [5, 10, 15]")
        try:
            an["minutes"] = check_minutes(mins)
        except InvalidValueError:
            raise ctx.fail("analysis.minutes", f"{mins} is out of range",
                           f"use minutes {settings.LIMITS['minutes'].text()}") from None
    for key in ("speed_kph", "max_snap_m", "cell_size_m"):
        if key in raw_an:
            v = _typed(ctx, raw_an, key, (int, float), prefix="analysis.")
            lim = settings.LIMITS[key]
            if not lim.contains(v):
                raise ctx.fail(f"analysis.{key}", f"{v} is outside {lim.min:g}-{lim.max:g}",
                               f"give a value between {lim.min:g} and {lim.max:g} {lim.unit}")
            an[key] = float(v)
    if "isochrones" in raw_an:
        an["isochrones"] = _typed(ctx, raw_an, "isochrones", bool, prefix="analysis.")
    an.update(scenario_analysis_keys(raw_an, fail=ctx.fail, folder=path.parent))  # capacity and norms keys

    raw_ed = _table(ctx, data, "edits")
    _unknown(ctx, raw_ed, _EDITS, "edits.")
    edits = _edits(ctx, raw_ed)
    if parent is not None:
        edits = Edits(
            add_institutions=parent.edits.add_institutions + edits.add_institutions,
            remove_institutions=parent.edits.remove_institutions + edits.remove_institutions,
            change_tier=parent.edits.change_tier + edits.change_tier,
            close_roads=parent.edits.close_roads + edits.close_roads,
        )
    return Scenario(
        name=name,
        title=_typed(ctx, data, "title", str) if "title" in data else (parent.title if parent else None),
        description=_typed(ctx, data, "description", str) if "description" in data else "",
        source=str(path),
        case=Case(**inputs, **an),
        edits=edits,
    )


def _edits(ctx: _Ctx, raw: dict[str, Any]) -> Edits:
    adds = []
    for i, item in enumerate(_list_of_tables(ctx, raw, "add_institutions")):
        key = f"edits.add_institutions[{i + 1}]"
        _unknown(ctx, item, _ADD, key + ".")
        name = _typed(ctx, item, "name", str, required=True, prefix=key + ".")
        lon = float(_typed(ctx, item, "lon", (int, float), required=True, prefix=key + "."))
        lat = float(_typed(ctx, item, "lat", (int, float), required=True, prefix=key + "."))
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ctx.fail(key, f"lon={lon}, lat={lat} is not a position", "give decimal degrees, longitude first", token="lon")
        tier = _typed(ctx, item, "tier", str, prefix=key + ".") if "tier" in item else None
        if tier is not None and tier not in settings.TIERS:
            raise ctx.fail(f"{key}.tier", f"'{tier}' is not a tier", f"use one of {', '.join(settings.TIERS)}", token="tier")
        cap = float(_typed(ctx, item, "capacity", (int, float), prefix=key + ".")) if "capacity" in item else None
        if cap is not None and cap < 0:
            raise ctx.fail(f"{key}.capacity", f"{cap} is negative", "give beds or staff >= 0", token="capacity")
        coords = _typed(ctx, item, "coords", str, prefix=key + ".") if "coords" in item else "wgs84"
        try:
            datum.to_wgs84(0.0, 0.0, datum=coords)
        except ValueError:
            raise ctx.fail(f"{key}.coords", f"'{coords}' is not a known datum", "use wgs84, gcj02 or bd09", token="coords",
                           table=("edits.add_institutions", i)) from None
        fid = _typed(ctx, item, "id", str, prefix=key + ".") if "id" in item else None
        adds.append(AddInstitution(name=name, lon=lon, lat=lat, tier=tier, capacity=cap, coords=coords, id=fid))
    removes = raw.get("remove_institutions", [])
    if not isinstance(removes, list) or not all(isinstance(x, (str, int)) for x in removes):
        raise ctx.fail("edits.remove_institutions", "must be a list of institution ids", 'e.g. remove_institutions = ["way/123"]')
    tiers = []
    for i, item in enumerate(_list_of_tables(ctx, raw, "change_tier")):
        key = f"edits.change_tier[{i + 1}]"
        _unknown(ctx, item, _TIER, key + ".")
        tier = _typed(ctx, item, "tier", str, required=True, prefix=key + ".")
        if tier not in settings.TIERS:
            raise ctx.fail(f"{key}.tier", f"'{tier}' is not a tier", f"use one of {', '.join(settings.TIERS)}", token="tier")
        tiers.append(ChangeTier(id=str(_typed(ctx, item, "id", (str, int), required=True, prefix=key + ".")), tier=tier))
    closes = []
    for i, item in enumerate(_list_of_tables(ctx, raw, "close_roads")):
        key = f"edits.close_roads[{i + 1}]"
        _unknown(ctx, item, _CLOSE, key + ".")
        ids = item.get("ids", [])
        if not isinstance(ids, list):
            raise ctx.fail(f"{key}.ids", "must be a list of road ids", "e.g. ids = [1201, 1202]", token="ids")
        poly = item.get("polygon", [])
        if poly and (not isinstance(poly, list) or len(poly) < 3 or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p)
                for p in poly)):
            raise ctx.fail(f"{key}.polygon", "must be a list of at least three [lon, lat] pairs",
                           "e.g. polygon = [[114.28, 30.55], [114.29, 30.55], [114.29, 30.56]]", token="polygon",
                           table=("edits.close_roads", i))
        if not ids and not poly:
            raise ctx.fail(key, "closes nothing", "give ids = [...] or polygon = [[lon, lat], ...]", token="close_roads")
        ring = tuple((float(a), float(b)) for a, b in poly)
        if ring:
            _check_polygon(ctx, f"{key}.polygon", ring, table=("edits.close_roads", i))
        closes.append(CloseRoads(ids=tuple(ids), polygon=ring))
    return Edits(add_institutions=tuple(adds), remove_institutions=tuple(str(x) for x in removes),
                 change_tier=tuple(tiers), close_roads=tuple(closes))


def _check_polygon(ctx: _Ctx, key: str, ring: tuple[tuple[float, float], ...], *, table: tuple[str, int]) -> None:
    """Refuse a polygon (lon, lat corners) with NaN/inf or out-of-range corners, or that GEOS finds invalid."""
    for j, (lon, lat) in enumerate(ring, 1):
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise ctx.fail(key, f"corner {j} [{lon}, {lat}] is not a number", "give finite lon, lat in decimal degrees "
                           "(no nan or inf)", token="polygon", table=table)
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ctx.fail(key, f"corner {j} [{lon}, {lat}] is not a position", "give decimal degrees, longitude first",
                           token="polygon", table=table)
    polygon = shapely.Polygon(ring)
    if not shapely.is_valid(polygon):
        raise ctx.fail(key, f"is not a valid polygon ({shapely.is_valid_reason(polygon)})",
                       "list at least three distinct corners in order around the area, with no edge crossing another",
                       token="polygon", table=table)


def _unknown(ctx: _Ctx, table: dict[str, Any], allowed: set[str], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            raise ctx.fail(prefix + key, "is not a known key", f"use one of {', '.join(sorted(allowed))}", token=key)


def _typed(ctx: _Ctx, table: dict[str, Any], key: str, kind: Any, *, required: bool = False, prefix: str = "") -> Any:
    if key not in table:
        if required:
            raise ctx.fail(prefix + key, "is missing", f"add {key} = ...", token=prefix.rstrip(".").split(".")[-1] or key)
        return None
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ctx.fail(prefix + key, f"must be {' or '.join(k.__name__ for k in kinds)}, not true/false", "fix the value",
                       token=key)
    if not isinstance(value, kinds):
        raise ctx.fail(prefix + key, f"must be {' or '.join(k.__name__ for k in kinds)}, not {type(value).__name__}",
                       "fix the value's type", token=key)
    return value


def _table(ctx: _Ctx, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ctx.fail(key, "must be a table", f"write it as [{key}]")
    return value


def _list_of_tables(ctx: _Ctx, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ctx.fail(f"edits.{key}", "must be a list of tables", f"write each as [[edits.{key}]]", token=key)
    return value


# ----------------------------------------------------------------------------------------- running

def _file_digest(path: str | None) -> str:
    if path is None:
        return "-"
    p = Path(path)
    files = [p] if p.suffix != ".shp" else sorted(p.parent.glob(p.stem + ".*"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _case_key(s: Scenario) -> str:
    c = s.case
    parts = {
        "v": _CACHE_VERSION, "planner": __version__,
        "files": [_file_digest(getattr(c, k)) for k in ("network", "institutions", "population", "boundaries")],
        "coords": c.coords, "population_coords": c.population_coords, "mode": c.mode,
        "max_snap_m": c.max_snap_m, "cell_size_m": c.cell_size_m,
        "settings": [settings.WALK_SPEED_KPH, settings.EBIKE_SPEED_KPH, sorted(settings.DRIVE_SPEEDS_KPH.items()),
                     settings.DRIVE_DEFAULT_SPEED_KPH, settings.SNAP_TOLERANCE_M,
                     {k: sorted(v) for k, v in settings.EXCLUDED_HIGHWAYS.items()}],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class CaseCache:
    """Loaded scenario inputs (before edits), kept in memory; on disk too when given a folder.

    Entries are keyed by the input files' contents and the options that shape
    the loaded case (see :meth:`key`), so scenarios on the same inputs share
    one :class:`~planner.pipeline.CaseInputs` and a what-if after its baseline
    takes seconds. The owner decides how long a cache lives: the CLI keeps one
    per command and a notebook may keep one for a session, passing it to every
    :func:`run_scenario`. There is no process-wide cache.

    Examples
    --------
    >>> cache = CaseCache()
    >>> len(cache)
    0
    """

    def __init__(self) -> None:
        self._cases: dict[str, CaseInputs] = {}

    def __len__(self) -> int:
        return len(self._cases)

    def __contains__(self, scenario: object) -> bool:
        return isinstance(scenario, Scenario) and self.key(scenario) in self._cases

    @staticmethod
    def key(scenario: Scenario) -> str:
        """Return the cache key of a scenario's inputs: a hash of the files' contents and the options."""
        return _case_key(scenario)

    def discard(self, scenario: Scenario) -> None:
        """Forget the scenario's inputs held in memory (the disk cache is left as it is)."""
        self._cases.pop(self.key(scenario), None)

    def clear(self) -> None:
        """Forget every case held in memory (the disk cache is left as it is)."""
        self._cases.clear()

    def load(self, scenario: Scenario, *, cache_dir: str | os.PathLike[str] | None = None) -> CaseInputs:
        """Return a scenario's inputs (before edits): from memory, else from `cache_dir`, else loaded and kept.

        Parameters
        ----------
        scenario
            A validated scenario.
        cache_dir
            Folder of the on-disk cache (``case-<key>.pkl`` files); no disk cache when None.

        Returns
        -------
        case
            The loaded inputs; the same object for every scenario with the
            same input files and options while this cache holds it.
        """
        key = self.key(scenario)
        if key in self._cases:
            return self._cases[key]
        path = Path(cache_dir) / f"case-{key}.pkl" if cache_dir is not None else None
        if path is not None and path.exists():
            try:
                with path.open("rb") as f:
                    case = pickle.load(f)  # noqa: S301 - our own cache file, keyed by content hashes
                self._cases[key] = case
                logger.info("loaded cached inputs %s", path.name)
                if case.options.get("datum_warning"):  # said when the inputs were loaded; say it again for this run
                    logger.warning("%s", case.options["datum_warning"])
                return case
            except Exception:  # noqa: BLE001 - a stale or broken cache is rebuilt
                logger.warning("ignoring unreadable cache file %s", path)
        # the network is loaded with the mode's own speeds: a speed override is an edit (see apply_network_edits)
        case = dataclasses.replace(scenario.case, speed_kph=None).load()
        self._cases[key] = case
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp-{os.getpid()}")
            with tmp.open("wb") as f:
                pickle.dump(case, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        return case


def load_scenario_case(scenario: Scenario, *, cache_dir: str | os.PathLike[str] | None = None,
                       cache: CaseCache | None = None) -> CaseInputs:
    """Load a scenario's inputs (before edits), from the cache when possible.

    Parameters
    ----------
    scenario
        A validated scenario.
    cache_dir
        Folder of the on-disk cache; no disk cache when None.
    cache
        The in-memory cache to read and fill (see :class:`CaseCache`); a new, empty one by default.

    Returns
    -------
    case
        The loaded inputs; the same object for every scenario with the same
        input files and options while `cache` holds it.
    """
    return (CaseCache() if cache is None else cache).load(scenario, cache_dir=cache_dir)


def apply_institution_edits(case: CaseInputs, edits: Edits, *, source: str | None = None) -> gpd.GeoDataFrame:
    """Return the case's institutions with institutions added, removed and re-tiered.

    Parameters
    ----------
    case
        Loaded inputs.
    edits
        The scenario's edits.
    source
        Scenario file, for messages.

    Returns
    -------
    institutions
        A new GeoDataFrame; added rows get ids ``new-1``, ``new-2`` … unless given.

    Raises
    ------
    InvalidValueError
        When an edit names an unknown institution id.
    """
    inst = case.institutions.copy()
    ctx = _ctx_for(source)
    if edits.add_institutions:
        rows = []
        for i, a in enumerate(edits.add_institutions, 1):
            lon, lat = (float(x) for x in datum.to_wgs84(a.lon, a.lat, datum=a.coords))
            tier, tsrc = (a.tier, "scenario") if a.tier else classify_tier(a.name)
            fid = a.id or f"new-{i}"
            if fid in inst.index:
                raise ctx.fail(f"edits.add_institutions[{i}].id", f"'{fid}' already exists", "choose another id", token="id")
            rows.append({"facility_id": fid, "name": a.name, "tier": tier, "tier_source": tsrc,
                         "capacity": np.nan if a.capacity is None else a.capacity, "lon": lon, "lat": lat})
        new = gpd.GeoDataFrame(pd.DataFrame(rows).set_index("facility_id"),
                               geometry=gpd.points_from_xy([r["lon"] for r in rows], [r["lat"] for r in rows]), crs="EPSG:4326")
        if case.districts is not None:
            new["district"] = assign_districts(new, case.districts)
        inst = pd.concat([inst, new])
    for fid in edits.remove_institutions:
        if fid not in inst.index:
            raise ctx.fail("edits.remove_institutions", f"names unknown institution id '{fid}'",
                           "use a facility_id from institutions.gpkg of the baseline run", token=fid)
    inst = inst.drop(index=list(edits.remove_institutions))
    for ch in edits.change_tier:
        if ch.id not in inst.index:
            raise ctx.fail("edits.change_tier.id", f"names unknown institution id '{ch.id}'",
                           "use a facility_id from institutions.gpkg of the baseline run", token=ch.id)
        inst.loc[ch.id, "tier"] = ch.tier
        inst.loc[ch.id, "tier_source"] = "scenario"
    return inst


def apply_network_edits(case: CaseInputs, edits: Edits, *, speed_kph: float | None = None,
                        source: str | None = None) -> tuple[RoadNetwork, dict[str, Any]]:
    """Return the case's network with roads closed and speeds changed.

    Parameters
    ----------
    case
        Loaded inputs.
    edits
        The scenario's edits.
    speed_kph
        One speed for every road (km/h), or None to keep the per-class speeds.
    source
        Scenario file, for messages.

    Returns
    -------
    roads, report
        The edited network (``case.roads`` itself when nothing changed) and
        what was closed: ``closed_edges`` (directed edges) and ``closed_road_ids``.

    Raises
    ------
    InvalidValueError
        When a closure names unknown road ids or a polygon outside the study area.
    """
    roads = case.roads
    report: dict[str, Any] = {"closed_edges": 0, "closed_road_ids": []}
    ctx = _ctx_for(source)
    if edits.close_roads:
        closed = np.zeros(len(roads.a), dtype=bool)
        piece, ids = _road_id_text(roads)
        for i, c in enumerate(edits.close_roads, 1):
            if c.ids:
                wanted = {str(x) for x in c.ids}
                hit = np.isin(ids, list(wanted))
                hits = set(ids[hit].tolist())
                missing = sorted(wanted - hits)
                if missing:
                    raise ctx.fail(f"edits.close_roads[{i}].ids", f"names unknown road ids {', '.join(missing[:5])}",
                                   "use road_id values of the road layer (or OSM way ids)", token="ids")
                closed[piece[hit]] = True
                report["closed_road_ids"] += sorted(hits)
            if c.polygon:
                poly = shapely.Polygon(c.polygon)
                if not poly.intersects(case.area):
                    raise ctx.fail(f"edits.close_roads[{i}].polygon", "lies outside the study area",
                                   "draw the polygon over roads of the network (lon, lat in WGS-84)", token="polygon")
                poly_m = gpd.GeoSeries([poly], crs="EPSG:4326").to_crs(roads.crs).iloc[0]
                closed |= shapely.intersects(roads.geometry, poly_m)
        report["closed_edges"] = int(roads.forward[closed].sum() + roads.backward[closed].sum())
        roads = close_roads(roads, ~closed)
        logger.info("closed %d directed road edges", report["closed_edges"])
    if speed_kph is not None:
        roads = with_speed(roads, speed_kph)
    return roads, report


def _road_id_text(roads: RoadNetwork) -> tuple[np.ndarray, np.ndarray]:
    """Each piece's road ids as text, one row per (piece, id): a piece merged from several OSM ways has several."""
    rid = roads.road_id
    if rid.dtype != object:
        return np.arange(len(rid)), rid.astype(str)
    pairs = [(p, str(x)) for p, ids in enumerate(rid) for x in (ids if isinstance(ids, list) else [ids])]
    return np.array([p for p, _ in pairs], dtype=np.int64), np.array([x for _, x in pairs], dtype=str)


def _ctx_for(source: str | None) -> _Ctx:
    return _Ctx(TomlSource.of(source))


def run_scenario(
    scenario: Scenario | str | os.PathLike[str],
    *,
    out_root: str | os.PathLike[str] | None = "outputs",
    progress: bool = False,
    use_cache: bool = True,
    cache: CaseCache | None = None,
) -> CoverageRun:
    """Run a scenario; it writes nothing but its cache (see :func:`planner.exports.write_scenario_outputs`).

    Parameters
    ----------
    scenario
        A :class:`Scenario` or the path of its TOML file.
    out_root
        Folder whose ``.cache/`` holds loaded inputs between runs; no disk
        cache when None.
    progress
        Show progress bars.
    use_cache
        Reuse loaded inputs from `cache` and ``<out_root>/.cache/``.
    cache
        The in-memory cache of loaded inputs, shared by the runs given the
        same one (see :class:`CaseCache`); a new, empty one by default.

    Returns
    -------
    run
        The coverage run; ``run.summary["scenario"]`` names the scenario and its
        edits (see :class:`planner.pipeline.summary.ScenarioSummary`).
    """
    s = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    t0 = time.perf_counter()
    cache_dir = Path(out_root) / ".cache" if (use_cache and out_root is not None) else None
    cache = CaseCache() if cache is None else cache
    if not use_cache:
        cache.discard(s)
    case = cache.load(s, cache_dir=cache_dir)
    inst = apply_institution_edits(case, s.edits, source=s.source)
    c = s.case
    roads, closed = apply_network_edits(case, s.edits, speed_kph=c.speed_kph, source=s.source)
    run = analyse_case(case, roads=roads, institutions=inst, minutes=c.minutes, speed_kph=c.speed_kph,
                       population_label=c.population_unit, with_isochrones=c.isochrones, progress=progress,
                       **analysis_options(c))
    summary = cast(ScenarioSummary, run.summary)  # the same dict, which now gets its "scenario"
    summary["scenario"] = {"name": s.name, "title": s.title, "source": s.source,
                           "edits": cast(ScenarioEdits, dataclasses.asdict(s.edits)), "closed": cast(ClosedRoads, closed)}
    summary["runtime_s"] = round(time.perf_counter() - t0, 2)
    return run


def scenario_input_files(scenario: Scenario) -> list[str]:
    """Return the files a scenario reads: its TOML file and its inputs.

    An output folder must not hold any of them (see :func:`planner.io.check_output_dir`).

    Parameters
    ----------
    scenario
        The scenario.

    Returns
    -------
    paths
        Absolute paths.
    """
    c = scenario.case
    return [str(p) for p in (scenario.source, c.network, c.institutions, c.population, c.boundaries, c.norms) if p]


# ----------------------------------------------------------------------------------------- comparing


def compare_runs(a: CoverageRun, b: CoverageRun) -> tuple[dict[str, Any], gpd.GeoDataFrame]:
    """Compare two runs on the same cells.

    Parameters
    ----------
    a, b
        Baseline and what-if runs of scenarios with the same population input
        and study area.

    Returns
    -------
    comparison, cells
        Figures (coverage change per threshold, district and tier; population
        newly covered and newly lost; cells whose nearest institution changed;
        added/removed institutions), and the cells with ``change``:
        ``gained``, ``lost``, ``nearest_changed`` or ``same``.

    Raises
    ------
    InvalidValueError
        If the runs are not on the same cells.
    NoCrsError
        If the two runs' cells are not in the same CRS.
    """
    ca, cb = a.cells, b.cells
    check_same_crs(ca.crs, cb.crs, what_a="the first run's cells", what_b="the second run's cells")
    if len(ca) != len(cb) or not ca.index.equals(cb.index) or not np.allclose(ca["population"], cb["population"]):
        msg = ("the two scenarios are not on the same demand cells (different population input, cell size or network "
               "extent); fix: compare scenarios that share [inputs] population/network and analysis.cell_size_m")
        raise InvalidValueError(msg)
    tmax = max(a.summary["max_minutes"], b.summary["max_minutes"])
    ta = np.nan_to_num(ca["travel_time_min"].to_numpy(dtype=float), nan=np.inf)
    tb = np.nan_to_num(cb["travel_time_min"].to_numpy(dtype=float), nan=np.inf)
    pop = ca["population"].to_numpy(dtype=float)
    gained, lost = (ta > tmax) & (tb <= tmax), (ta <= tmax) & (tb > tmax)
    changed = (ca["facility_id"].astype(str).to_numpy() != cb["facility_id"].astype(str).to_numpy())
    change = np.where(gained, "gained", np.where(lost, "lost", np.where(changed, "nearest_changed", "same")))
    cells = cb[["population", "geometry"]].copy()
    cells["district"] = ca["district"] if "district" in ca else None
    cells["time_a_min"], cells["time_b_min"] = ca["travel_time_min"], cb["travel_time_min"]
    cells["facility_a"], cells["facility_b"] = ca["facility_id"], cb["facility_id"]
    cells["change"] = change

    def diff_rows(rows_a: list[dict], rows_b: list[dict], key: str) -> list[dict[str, Any]]:
        ib = {r[key]: r for r in rows_b}
        out = []
        for r in rows_a:
            o = ib.get(r[key], {})
            out.append({key: r[key], "coverage_pct_a": r["coverage_pct"], "coverage_pct_b": o.get("coverage_pct"),
                        "change_pp": None if o.get("coverage_pct") is None else round(o["coverage_pct"] - r["coverage_pct"], 2),
                        "population_covered_a": r["population_covered"], "population_covered_b": o.get("population_covered")})
        return out

    ia, ib = set(a.institutions.index), set(b.institutions.index)
    tier_changed = [fid for fid in sorted(ia & ib) if a.institutions.at[fid, "tier"] != b.institutions.at[fid, "tier"]]
    comp = {
        "a": a.summary.get("scenario", {}).get("name"), "b": b.summary.get("scenario", {}).get("name"),
        "max_minutes": tmax,
        "population_total": a.summary["population_total"],
        "coverage_pct_a": a.summary["coverage_pct"], "coverage_pct_b": b.summary["coverage_pct"],
        "change_pp": round(b.summary["coverage_pct"] - a.summary["coverage_pct"], 2),
        "population_newly_covered": round(float(pop[gained].sum()), 1),
        "population_newly_lost": round(float(pop[lost].sum()), 1),
        "cells_gained": int(gained.sum()), "cells_lost": int(lost.sum()),
        "cells_nearest_changed": int(changed.sum()),
        "population_nearest_changed": round(float(pop[changed].sum()), 1),
        "thresholds": diff_rows(a.summary["thresholds"], b.summary["thresholds"], "minutes"),
        "by_district": diff_rows(a.summary["by_district"], b.summary["by_district"], "district"),
        "by_tier": [{"tier": t, "coverage_pct_a": a.summary["by_tier"][t]["coverage_pct"],
                     "coverage_pct_b": b.summary["by_tier"][t]["coverage_pct"],
                     "change_pp": round(b.summary["by_tier"][t]["coverage_pct"] - a.summary["by_tier"][t]["coverage_pct"], 2)}
                    for t in settings.TIERS],
        "institutions_added": [{"facility_id": f, "name": str(b.institutions.at[f, "name"]),
                                "tier": b.institutions.at[f, "tier"]}
                               for f in sorted(ib - ia)],
        "institutions_removed": [{"facility_id": f, "name": str(a.institutions.at[f, "name"]),
                                  "tier": a.institutions.at[f, "tier"]}
                                 for f in sorted(ia - ib)],
        "institutions_tier_changed": [{"facility_id": f, "tier_a": a.institutions.at[f, "tier"],
                                       "tier_b": b.institutions.at[f, "tier"]}
                                      for f in tier_changed],
    }
    return comp, cells
