"""Planning norms per district: read a norms file, check each district against it, label the table.

A norms file is TOML with one ``[[norm]]`` table per norm (the shipped default is
:data:`DEFAULT_NORMS_PATH`, ``planner/data/norms_default.toml``)::

    name = "my norms"            # optional

    [[norm]]
    id = "residents_per_centre"  # names the norm in the table; unique
    kind = "residents_per_centre"
    value = 50000
    unit = "residents per centre"
    tiers = ["primary"]          # which institutions count as a centre ...
    name_contains = ["社区卫生服务中心"]  # ... and what their name holds ([] = any name)
    source = "..."               # where the figure comes from
    standing = "secondary"       # verified, secondary, local, example or user
    enabled = true               # false: listed, not checked
    note = "..."                 # optional; label_zh and label_en too

Kinds, their units and what passes:

* ``residents_per_centre`` (unit ``residents per centre``): at most `value` residents per
  centre, i.e. at least ``ceil(population / value)`` centres;
* ``coverage`` (unit ``%``, with ``minutes``): at least `value` % of the residents within
  ``minutes`` minutes of an institution;
* ``beds``, ``doctors``, ``nurses`` (unit ``per 1,000 residents`` or ``per 10,000 residents``):
  at least `value` per 1,000 (10,000) residents.

Per-tier capacities for capacity-limited coverage (:mod:`planner.capacity`) may be given too, in
persons per institution, each a plain number (a user setting) or a table with its source::

    [capacity_defaults]
    primary = 50000              # persons one primary institution serves (a placeholder): a user setting
    tertiary = { value = 400000, source = "...", standing = "local", note = "..." }  # with its source

Tiers are ``tertiary``, ``secondary``, ``primary`` and ``station``. A coverage run with such a file
(``--norms``) is capacity-limited even without ``--capacity-col``: every institution of a listed tier
serves at most its tier's capacity; with ``--capacity-col`` the defaults fill the rows whose value is
empty (:func:`planner.capacity.capacity_from_column`). The shipped default file has none: `planner`
knows no sourced per-tier capacity.

A norm without ``source`` and ``standing`` is a user setting (``source = "user setting"``,
``standing = "user"``): a default that cannot be sourced is not a claim. The file is read by
:func:`planner._toml.read_toml` (UTF-8 with or without BOM, or GB18030/GBK); an unknown key, an
unknown unit or a bad value raises :class:`~planner.InvalidValueError` naming the file, line and key.

:func:`check_norms` checks a per-district table (built by the caller, or by
:func:`build_districts_table` from a coverage run's cells and institutions) and returns one row per
district and enabled norm; :func:`norms_table` gives it bilingual headers for ``norms.csv``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import settings
from ._errors import InvalidValueError, MissingColumnError
from ._toml import TomlSource, read_toml
from ._validate import row_label
from .tables import header, headers, report_table

logger = logging.getLogger(__name__)

#: The shipped default norms file.
DEFAULT_NORMS_PATH = Path(__file__).resolve().parent / "data" / "norms_default.toml"
KINDS: tuple[str, ...] = ("residents_per_centre", "coverage", "beds", "doctors", "nurses")
#: How far a norm's figure is verified, from best to least (see the module docstring).
STANDINGS: tuple[str, ...] = ("verified", "secondary", "local", "example", "user")
CENTRE_NAMES: tuple[str, ...] = ("社区卫生服务中心", "社區衛生服務中心")  # default name rule of a centre
STAFF_KINDS: tuple[str, ...] = ("beds", "doctors", "nurses")

# kind -> {unit as shown: residents the figure is per (1 for the non-ratio units)}
_UNITS: dict[str, dict[str, float]] = {
    "residents_per_centre": {"residents per centre": 1.0},
    "coverage": {"%": 1.0},
    **{k: {"per 1,000 residents": 1000.0, "per 10,000 residents": 10000.0} for k in STAFF_KINDS},
}
# spellings accepted for each unit (compared without case, spaces and commas)
_UNIT_SPELLINGS: dict[str, tuple[str, ...]] = {
    "residents per centre": ("residents per centre", "residents per center", "residents/centre", "residents/center",
                             "人/所", "人/中心", "人/个"),
    "%": ("%", "percent", "pct"),
    "per 1,000 residents": ("per 1,000 residents", "per 1,000", "/1,000", "每千人", "每千人口", "千人"),
    "per 10,000 residents": ("per 10,000 residents", "per 10,000", "/10,000", "每万人", "每万人口", "万人"),
}
# decimals of a measured value or bound in norms.csv, by its unit: residents whole, % to 0.1, ratios to 0.01
UNIT_DECIMALS: dict[str, int] = {"residents per centre": 0, "%": 1, "per 1,000 residents": 2, "per 10,000 residents": 2}
_COMMON_KEYS = {"id", "kind", "value", "unit", "source", "standing", "enabled", "note", "label_zh", "label_en"}
_KIND_KEYS = {"residents_per_centre": {"tiers", "name_contains"}, "coverage": {"minutes"},
              **{k: set() for k in STAFF_KINDS}}
_TOP_KEYS = {"name", "norm", "capacity_defaults"}
_DEFAULT_KEYS = {"value", "source", "standing", "note"}  # keys of one [capacity_defaults] entry written as a table
# kind -> (Chinese name of the count, its measure word, English noun)
_STAFF_WORDS = {"beds": ("床位", "张", "beds"), "doctors": ("执业(助理)医师", "名", "doctors"),
                "nurses": ("注册护士", "名", "nurses")}
_DIGITS = 6  # decimals a shortfall is rounded to before it rounds up, against floating-point noise


@dataclass(frozen=True)
class Norm:
    """One planning norm.

    Attributes
    ----------
    id
        Name of the norm in the table (unique in its file).
    kind
        One of :data:`KINDS`.
    value
        The bound: residents per centre (at most), percent of residents (at least), or beds,
        doctors or nurses per :attr:`per_residents` residents (at least).
    unit
        The unit, as shown: ``"residents per centre"``, ``"%"``, ``"per 1,000 residents"`` or
        ``"per 10,000 residents"``.
    source, standing
        Where the figure comes from and how far it is verified (a tuple of :data:`STANDINGS`).
    enabled
        False for a norm listed for reference only.
    minutes
        Travel-time threshold in minutes (``coverage`` only).
    tiers, name_contains
        Which institutions count as a centre (``residents_per_centre`` only): those of these tiers
        whose name contains one of these texts (any name when empty).
    label_zh, label_en
        Names of the norm in the table.
    note
        Free text about the figure.
    """

    id: str
    kind: str
    value: float
    unit: str
    source: str = "user setting"
    standing: tuple[str, ...] = ("user",)
    enabled: bool = True
    minutes: float | None = None
    tiers: tuple[str, ...] = ("primary",)
    name_contains: tuple[str, ...] = CENTRE_NAMES
    label_zh: str = ""
    label_en: str = ""
    note: str = ""

    @property
    def per_residents(self) -> float:
        """Residents a ``beds``/``doctors``/``nurses`` figure is per (1,000 or 10,000); 1 otherwise."""
        return _UNITS[self.kind][self.unit]

    @property
    def is_claim(self) -> bool:
        """True for a norm (verified, secondary, local), False for a target (an example or a user setting)."""
        return not set(self.standing) <= {"example", "user"}


@dataclass(frozen=True)
class CapacityDefault:
    """The capacity in persons of every institution of one tier, from a norms file's ``[capacity_defaults]``.

    Attributes
    ----------
    tier
        One of :data:`planner.settings.TIERS`.
    persons
        Persons one institution of the tier serves (>= 0).
    source, standing, note
        As for a :class:`Norm`; a plain number is a user setting.
    """

    tier: str
    persons: float
    source: str = "user setting"
    standing: tuple[str, ...] = ("user",)
    note: str = ""


@dataclass(frozen=True)
class Norms:
    """The norms of one file, in file order.

    Attributes
    ----------
    norms
        Every norm, enabled or not.
    name
        The file's ``name``, or None.
    path
        The file read, or None.
    capacity_defaults
        The per-tier capacities of its ``[capacity_defaults]`` table, in file order (none by default).
    """

    norms: tuple[Norm, ...]
    name: str | None = None
    path: Path | None = None
    capacity_defaults: tuple[CapacityDefault, ...] = ()

    @property
    def enabled(self) -> tuple[Norm, ...]:
        """The norms that are checked."""
        return tuple(n for n in self.norms if n.enabled)

    @property
    def tier_capacities(self) -> dict[str, float]:
        """Persons per institution of each tier with a default (for :func:`planner.capacity.capacity_from_column`)."""
        return {d.tier: d.persons for d in self.capacity_defaults}

    def __iter__(self) -> Iterator[Norm]:
        return iter(self.norms)

    def __len__(self) -> int:
        return len(self.norms)

    def __getitem__(self, norm_id: str) -> Norm:
        for n in self.norms:
            if n.id == norm_id:
                return n
        raise KeyError(norm_id)


# ----------------------------------------------------------------------------------------- reading

def load_norms(path: str | os.PathLike[str] | None = None) -> Norms:
    """Read and validate a norms file.

    Parameters
    ----------
    path
        A norms TOML file; the shipped default (:data:`DEFAULT_NORMS_PATH`) when None.

    Returns
    -------
    norms
        The validated norms, in file order.

    Raises
    ------
    InputFileError
        If the file is missing, a folder, not UTF-8 or GB18030/GBK text, or not valid TOML.
    InvalidValueError
        For an unknown key or kind, a unit that does not fit the kind, a missing, non-numeric or
        out-of-range value, an unknown tier or standing (also a tier of ``[capacity_defaults]``), or
        a repeated id, naming the file, line and key.

    Examples
    --------
    >>> norms = load_norms()
    >>> [(n.id, n.value, n.unit) for n in norms.enabled]
    [('residents_per_centre', 50000.0, 'residents per centre'), ('coverage_15min', 90.0, '%')]
    >>> norms["coverage_15min"].minutes, norms["coverage_15min"].standing
    (15.0, ('secondary',))
    """
    p = DEFAULT_NORMS_PATH if path is None else Path(path)
    data, source = read_toml(p, what="norms file")
    for key in data:
        if key not in _TOP_KEYS:
            raise _fail(source, "", 0, key, "is not a known key", f"use one of {', '.join(sorted(_TOP_KEYS))}")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise _fail(source, "", 0, "name", "must be text", 'e.g. name = "my norms"')
    raw = data.get("norm", [])
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise _fail(source, "", 0, "norm", "must be a list of tables", "write each norm as a [[norm]] table")
    defaults = _capacity_defaults(source, data.get("capacity_defaults", {}))
    if not raw and not defaults:
        raise _fail(source, "", 0, "norm", "is missing: the file holds no norm", "add at least one [[norm]] table")
    norms: list[Norm] = []
    for i, table in enumerate(raw):
        norm = _parse_norm(source, i, table)
        if any(n.id == norm.id for n in norms):
            raise _fail(source, "norm", i, "id", f"'{norm.id}' is used twice", "give each norm its own id")
        norms.append(norm)
    return Norms(norms=tuple(norms), name=name, path=p, capacity_defaults=defaults)


def _fail(source: TomlSource, table: str, index: int, key: str, problem: str, fix: str) -> InvalidValueError:
    """Return the error for `key` of the `index`-th ``[[table]]`` (a top-level key when `table` is "")."""
    line = source.line_in(table, index, key) or source.line_of(key)
    shown = f"{table}[{index}].{key}" if table else key
    return InvalidValueError(f"{source.where(line)}: '{shown}' {problem}; fix: {fix}")


def _capacity_defaults(source: TomlSource, raw: Any) -> tuple[CapacityDefault, ...]:
    """Validate the ``[capacity_defaults]`` table: tier = persons, or tier = {value, source, standing, note}."""
    def fail(tier: str | None, key: str | None, problem: str, fix: str) -> InvalidValueError:
        sub = f"capacity_defaults.{tier}"
        own = tier is not None and any(name == sub for name, _ in source.headers)  # written as [capacity_defaults.<tier>]
        line = (source.line_in(sub, 0, key) if own else source.line_in("capacity_defaults", 0, tier)) \
            or source.line_of("capacity_defaults")
        shown = ".".join(k for k in ("capacity_defaults", tier, key) if k)
        return InvalidValueError(f"{source.where(line)}: '{shown}' {problem}; fix: {fix}")

    if not isinstance(raw, dict):
        raise fail(None, None, "must be a table", "write [capacity_defaults] with one line per tier, e.g. primary = 50000")
    out = []
    for tier, entry in raw.items():
        if tier not in settings.TIERS:
            raise fail(tier, None, "is not a tier", f"use {', '.join(settings.TIERS)}")
        table = entry if isinstance(entry, dict) else {"value": entry}
        for key in table:
            if key not in _DEFAULT_KEYS:
                raise fail(tier, key, "is not a known key", f"use one of {', '.join(sorted(_DEFAULT_KEYS))}")
        value = table.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            got = "is missing" if value is None else f"{value!r} is not a number >= 0"
            raise fail(tier, "value" if isinstance(entry, dict) else None, got,
                       f"give the persons one {tier} institution serves, e.g. {tier} = 50000")

        def entry_fail(key: str, problem: str, fix: str, tier: str = tier) -> InvalidValueError:
            return fail(tier, key, problem, fix)

        out.append(CapacityDefault(tier=tier, persons=float(value), source=_text(table, "source", entry_fail) or
                                   "user setting", standing=_standing(table, entry_fail), note=_text(table, "note", entry_fail)))
    return tuple(out)


def _parse_norm(source: TomlSource, i: int, t: dict[str, Any]) -> Norm:
    """Validate the `i`-th ``[[norm]]`` table."""
    def fail(key: str, problem: str, fix: str) -> InvalidValueError:
        return _fail(source, "norm", i, key, problem, fix)

    kind = t.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        got = "is missing" if kind is None else f"'{kind}' is not a kind of norm"
        raise fail("kind", got, f"use one of {', '.join(KINDS)}")
    allowed = _COMMON_KEYS | _KIND_KEYS[kind]
    for key in t:
        if key not in allowed:
            other = [k for k, keys in _KIND_KEYS.items() if key in keys]
            problem = f"is not a key of a '{kind}' norm (only of {', '.join(other)})" if other else "is not a known key"
            raise fail(key, problem, f"use one of {', '.join(sorted(allowed))}")
    norm_id = _text(t, "id", fail, required=True)
    unit = _unit(t, kind, fail)
    value = t.get("value")
    if value is None:
        raise fail("value", "is missing", f"add value = <number> ({unit})")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        e_g = {"residents_per_centre": "50000", "coverage": "90"}.get(kind, "5")
        raise fail("value", f"{value!r} is not a positive number", f"give the norm in {unit} as a number, e.g. value = {e_g}")
    if kind == "coverage" and value > 100:
        raise fail("value", f"{value:g} % is above 100 %", "give a share of residents from 0 to 100")
    extra: dict[str, Any] = {}
    if kind == "coverage":
        extra["minutes"] = _minutes(t, fail)
    if kind == "residents_per_centre":
        extra["tiers"] = _texts(t, "tiers", fail, default=("primary",), choices=settings.TIERS)
        extra["name_contains"] = _texts(t, "name_contains", fail, default=CENTRE_NAMES)
    standing = _standing(t, fail)
    enabled = t.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("enabled", f"{enabled!r} is not true or false", "write enabled = true or enabled = false")
    return Norm(id=norm_id, kind=kind, value=float(value), unit=unit,
                source=_text(t, "source", fail) or "user setting", standing=standing, enabled=enabled,
                label_zh=_text(t, "label_zh", fail), label_en=_text(t, "label_en", fail), note=_text(t, "note", fail),
                **extra)


def _text(t: dict[str, Any], key: str, fail: Any, *, required: bool = False) -> str:
    value = t.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        got = "is missing" if value is None else f"{value!r} is not text"
        raise fail(key, got, f'write {key} = "..."')
    return value.strip()


def _texts(t: dict[str, Any], key: str, fail: Any, *, default: tuple[str, ...],
           choices: tuple[str, ...] | None = None) -> tuple[str, ...]:
    value = t.get(key)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(key, f"{value!r} is not a list of texts", f'e.g. {key} = ["{(choices or default or ("x",))[0]}"]')
    bad = [v for v in value if choices is not None and v not in choices]
    if bad:
        raise fail(key, f"'{bad[0]}' is not a tier", f"use some of {', '.join(choices or ())}")
    if choices is not None and not value:
        raise fail(key, "is empty", f"name at least one of {', '.join(choices)}")
    return tuple(value)


def _unit(t: dict[str, Any], kind: str, fail: Any) -> str:
    fits = tuple(_UNITS[kind])
    raw = t.get("unit")
    if raw is None:
        raise fail("unit", "is missing", f'add unit = "{fits[0]}"')
    if not isinstance(raw, str):
        raise fail("unit", f"{raw!r} is not text", f'write unit = "{fits[0]}"')
    folded = _fold(raw)
    unit = next((u for u, spellings in _UNIT_SPELLINGS.items() if folded in {_fold(s) for s in spellings}), None)
    if unit is None:
        raise fail("unit", f"'{raw}' is not a known unit", f"use {' or '.join(repr(u) for u in fits)}")
    if unit not in fits:
        raise fail("unit", f"'{raw}' does not fit a '{kind}' norm", f"use {' or '.join(repr(u) for u in fits)}")
    return unit


def _fold(text: str) -> str:
    return "".join(text.lower().replace(",", "").replace("，", "").split())


def _minutes(t: dict[str, Any], fail: Any) -> float:
    lim = settings.LIMITS["minutes"]
    m = t.get("minutes")
    if m is None:
        raise fail("minutes", "is missing", "add minutes = 15 (the travel-time threshold)")
    if isinstance(m, bool) or not isinstance(m, (int, float)) or not lim.contains(m):
        raise fail("minutes", f"{m!r} is not a travel time {lim.text()}", "give minutes as a number, e.g. minutes = 15")
    return float(m)


def _standing(t: dict[str, Any], fail: Any) -> tuple[str, ...]:
    raw = t.get("standing", "user")
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise fail("standing", f"{raw!r} is not a standing", f"use one or a list of {', '.join(STANDINGS)}")
    bad = [v for v in values if v not in STANDINGS]
    if bad:
        raise fail("standing", f"'{bad[0]}' is not a standing", f"use one or a list of {', '.join(STANDINGS)}")
    return tuple(values)


# ---------------------------------------------------------------------------------------- checking

def build_districts_table(
    cells: pd.DataFrame,
    institutions: pd.DataFrame,
    *,
    norms: Norms,
    district_population: pd.Series | None = None,
    count_columns: Mapping[str, str] | None = None,
    file: object = "institutions",
) -> pd.DataFrame:
    """Build the per-district table :func:`check_norms` reads, from a coverage run's cells and institutions.

    Parameters
    ----------
    cells
        Demand cells with ``district``, ``population`` and ``travel_time_min`` (a coverage run's
        ``run.cells``, see :func:`planner.coverage.coverage_by_cell`); cells outside every
        district are left out.
    institutions
        Institutions with ``district``, ``tier`` and ``name`` (``run.institutions``), and the
        count columns if any.
    norms
        The norms to be checked: one ``n_centres_<id>`` column is built per enabled
        ``residents_per_centre`` norm and one ``covered_pct_<minutes>min`` per ``coverage`` norm.
    district_population
        Residents of each whole district (e.g. ``CaseInputs.district_totals``), used as
        ``population`` instead of the residents of the study area's cells. Coverage is always
        that of the cells.
    count_columns
        ``{"beds": column, "doctors": column, "nurses": column}``: the institutions' columns to sum
        per district; by default the columns named ``beds``, ``doctors`` and ``nurses`` that exist
        and an enabled norm needs (:func:`planner.institutions.load_institutions` keeps them when the
        file has such columns, see :data:`planner.settings.COUNT_COLUMN_ALIASES`). The values must be
        numbers >= 0 (an empty value leaves that district unchecked).
    file
        Name of the institutions input, for messages.

    Returns
    -------
    districts
        One row per district (sorted by name), in the columns :func:`check_norms` documents.

    Raises
    ------
    MissingColumnError
        If a needed column is missing.
    InvalidValueError
        If a count column holds a negative or non-numeric value, naming the row (position,
        facility id and name) and the column as in :func:`planner.capacity.capacity_from_column`.
    """
    for df, cols, what in ((cells, ("district", "population", "travel_time_min"), "cells"),
                           (institutions, ("district", "tier", "name"), "institutions")):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            msg = f"{what}: no column {', '.join(repr(c) for c in missing)}; fix: give a coverage run's {what} with districts"
            raise MissingColumnError(msg)
    c = cells[cells["district"].notna()]
    t = np.nan_to_num(c["travel_time_min"].to_numpy(dtype=float), nan=np.inf)
    pop = c["population"].to_numpy(dtype=float)
    out = pd.DataFrame({"population": c.groupby("district", sort=True)["population"].sum().astype(float)})
    out.index.name = "district"
    if district_population is not None:
        out["population"] = district_population.reindex(out.index).astype(float).fillna(out["population"])
    inst = institutions[institutions["district"].notna()]
    for n in norms.enabled:
        if n.kind == "residents_per_centre":
            out[f"n_centres_{n.id}"] = count_centres(inst, n).reindex(out.index, fill_value=0).astype(int)
        elif n.kind == "coverage":
            covered = pd.Series(np.where(t <= n.minutes, pop, 0.0), index=c.index).groupby(c["district"]).sum()
            whole = c.groupby("district")["population"].sum()
            pct = (100.0 * covered / whole.where(whole > 0)).reindex(out.index)
            out[f"covered_pct_{n.minutes:g}min"] = pct.fillna(0.0)
    needed = {n.kind for n in norms.enabled}
    cols = dict(count_columns) if count_columns is not None else {
        k: k for k in STAFF_KINDS if k in institutions.columns and k in needed}
    for kind, col in cols.items():
        v = _counts(institutions, kind, col, file=file)[institutions["district"].notna().to_numpy()]
        summed = v.groupby(inst["district"].to_numpy()).sum(min_count=1)
        incomplete = v.isna().groupby(inst["district"].to_numpy()).any()
        # NaN where a figure is missing (not checked); 0 in a district with no institution (as for centres)
        out[kind] = summed.where(~incomplete).reindex(out.index, fill_value=0.0)
    return out.reset_index()


def _counts(institutions: pd.DataFrame, kind: str, col: str, *, file: object) -> pd.Series:
    """Return column `col` of `institutions` as counts >= 0 (NaN where empty), naming the row of a bad value."""
    if col not in institutions.columns:
        msg = f"{file}: no column '{col}' for {kind}; fix: name an existing column or leave {kind} out"
        raise MissingColumnError(msg)
    raw = institutions[col].astype("object")
    blank = raw.map(lambda x: (not isinstance(x, str) and bool(pd.isna(x))) or (isinstance(x, str) and not x.strip()))
    v = pd.to_numeric(raw.where(~blank), errors="coerce").astype(float)
    shown_col = institutions.attrs.get("count_columns", {}).get(kind, col)  # the file's own name (planner.institutions)
    for bad, what in ((v.isna() & ~blank, "is not a number"), (v < 0, "is negative")):
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            msg = (f"{file}: {row_label(institutions, i)}, column '{shown_col}' ({kind}): "
                   f"'{' '.join(str(raw.iloc[i]).split())}' {what} ({int(bad.sum())} such rows in all); "
                   f"fix: give {kind} as a count >= 0, or leave the cell empty")
            raise InvalidValueError(msg)
    return v


def count_centres(institutions: pd.DataFrame, norm: Norm) -> pd.Series:
    """Count the institutions that count as centres for a ``residents_per_centre`` norm, per district.

    Parameters
    ----------
    institutions
        Institutions with ``district``, ``tier`` and ``name``.
    norm
        The norm: its ``tiers`` and ``name_contains`` say what counts.

    Returns
    -------
    n_centres
        Indexed by district (only districts with at least one centre).

    Examples
    --------
    >>> inst = pd.DataFrame({"district": ["洪山区", "洪山区", "江岸区"], "tier": ["primary", "primary", "station"],
    ...                      "name": ["关山街社区卫生服务中心", "武汉大学医院", "车站社区卫生服务站"]})
    >>> count_centres(inst, load_norms()["residents_per_centre"]).to_dict()
    {'洪山区': 1}
    """
    mask = institutions["tier"].isin(norm.tiers)
    if norm.name_contains:
        names = institutions["name"].astype("string").fillna("")
        mask &= np.logical_or.reduce([names.str.contains(s, regex=False).to_numpy() for s in norm.name_contains])
    return institutions.loc[mask, "district"].value_counts().sort_index().rename("n_centres")


def check_norms(norms: Norms, *, districts_table: pd.DataFrame) -> pd.DataFrame:
    """Check every district against every enabled norm.

    Parameters
    ----------
    norms
        From :func:`load_norms`.
    districts_table
        One row per district, built by the caller (e.g. by :func:`build_districts_table`):

        * ``district`` (text, unique) and ``population`` (residents, a number >= 0): required;
        * ``n_centres_<id>`` or else ``n_centres``: the number of centres (a whole number >= 0)
          that the ``residents_per_centre`` norm ``<id>`` counts;
        * ``covered_pct_<minutes>min`` (e.g. ``covered_pct_15min``; minutes written as Python's
          ``:g`` does) or else ``covered_pct``: percent (0-100) of the district's residents within
          the ``coverage`` norm's minutes. A coverage run's ``summary['by_district']`` rows give
          ``coverage_pct`` at the run's largest threshold only, so pass ``covered_pct`` from it only
          when that threshold is the norm's;
        * ``beds``, ``doctors``, ``nurses``: totals of the district's institutions (numbers >= 0).

        A column that an enabled norm needs and the table lacks, or a missing value in it, gives
        that district a row that is "not checked" (``passed`` is NA) rather than an error: the
        per-1,000 norms apply only where capacity figures exist.

    Returns
    -------
    table
        One row per district and enabled norm (districts in table order, norms in file order):
        ``district``, ``norm`` (its id), ``kind``, ``label_zh``, ``label_en``, ``measured``
        (residents per centre, NaN without a centre; %; or per 1,000/10,000 residents),
        ``comparison`` (``"≤"`` or ``"≥"``), ``norm_value``, ``unit``, ``passed`` (nullable
        boolean), ``shortfall`` (whole centres, residents to cover, or beds/doctors/nurses to add;
        0 when it passes) and ``shortfall_unit``, ``gap_zh`` and ``gap_en`` (the gap in words),
        ``source``, ``standing`` (comma-separated) and ``note``.

    Raises
    ------
    MissingColumnError
        If ``district`` or ``population`` is missing.
    InvalidValueError
        If a district is listed twice or has no name, or a population, centre count, coverage
        share or count is negative, non-numeric or out of range (naming the district and column).

    Examples
    --------
    >>> table = pd.DataFrame({"district": ["洪山区"], "population": [252_000], "n_centres": [4],
    ...                       "covered_pct": [95.0]})
    >>> rows = check_norms(load_norms(), districts_table=table)
    >>> print(rows.loc[0, "gap_en"])
    洪山区: 1 centre per 63,000 residents (4 centres, 252,000 residents); norm ≤ 50,000 → 2 more centres
    >>> print(rows.loc[1, "gap_zh"])
    洪山区: 15 分钟内覆盖 95% 的居民; 标准 ≥ 90% → 达标
    """
    d = _checked_table(districts_table)
    rows: list[dict[str, Any]] = []
    for norm in norms.enabled:
        col = _column_for(norm, d)
        for _, r in d.iterrows():
            name, pop = str(r["district"]), float(r["population"])
            value = r[col] if col is not None else np.nan
            row = _row(norm, name, pop, float(value)) if pd.notna(value) else _unchecked(norm, name, col)
            rows.append({"district": name, "norm": norm.id, "kind": norm.kind, "label_zh": _label_zh(norm),
                         "label_en": _label_en(norm), **row, "source": norm.source,
                         "standing": ", ".join(norm.standing), "note": norm.note})
    out = pd.DataFrame(rows, columns=list(_COLUMNS))
    out["passed"] = out["passed"].astype("boolean")
    out["shortfall"] = out["shortfall"].astype("Int64")
    for c in ("measured", "norm_value"):
        out[c] = out[c].astype(float)
    return out


_COLUMNS: tuple[str, ...] = ("district", "norm", "kind", "label_zh", "label_en", "measured", "comparison", "norm_value",
                             "unit", "passed", "shortfall", "shortfall_unit", "gap_zh", "gap_en", "source", "standing",
                             "note")  # check_norms' columns, in the order of norms.csv
#: Bilingual headers of ``norms.csv`` (:func:`norms_table`), from the schema ``norms`` of :mod:`planner.tables`.
NORMS_HEADERS: dict[str, str] = headers("norms")
_PASSED_TEXT = {True: "达标 pass", False: "未达标 fail"}
_NOT_CHECKED_TEXT = "未检查 not checked"


def norms_table(df: pd.DataFrame) -> pd.DataFrame:
    """Give a :func:`check_norms` table the bilingual headers and pass/fail words of ``norms.csv``.

    Parameters
    ----------
    df
        Result of :func:`check_norms`.

    Returns
    -------
    table
        The same rows; ``passed`` as ``"达标 pass"``, ``"未达标 fail"`` or ``"未检查 not checked"``;
        measured values and bounds rounded by their unit (:data:`UNIT_DECIMALS`: residents whole, % to 0.1,
        per 1,000 to 0.01), shortfalls whole; headers in Chinese and English
        (:data:`NORMS_HEADERS`; the schema ``norms`` of :mod:`planner.tables`). Write it with
        :func:`planner.io.write_csv`.

    Examples
    --------
    >>> table = pd.DataFrame({"district": ["江岸区"], "population": [40_000], "n_centres": [1], "covered_pct": [80]})
    >>> t = norms_table(check_norms(load_norms(), districts_table=table))
    >>> t["是否达标 pass/fail"].tolist()
    ['达标 pass', '未达标 fail']
    """
    out = df[[c for c in _COLUMNS if c in df.columns]].copy()
    if "passed" in out:
        out["passed"] = [_NOT_CHECKED_TEXT if pd.isna(v) else _PASSED_TEXT[bool(v)] for v in out["passed"]]
    table = report_table(out, "norms")
    if "unit" in out:  # each row's figures to its unit's decimals (UNIT_DECIMALS), whole ones without ".0"
        places = [UNIT_DECIMALS.get(u, 2) for u in out["unit"]]
        for key in ("measured", "norm_value"):
            if key in out:
                col = header(key, "norms")
                # from the unrounded figure: rounding report_table's 0.01 again could round twice (80.049 → 80.05 → 80.1)
                table[col] = pd.Series([_per_row(v, d) for v, d in zip(out[key].to_numpy(), places, strict=True)],
                                       index=table.index, dtype=object)
    return table


def _per_row(value: Any, decimals: int) -> Any:
    """Round one figure of norms.csv to `decimals`; a whole result is an int, a missing one stays None."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    r = round(float(value), decimals)
    return int(r) if decimals == 0 or r.is_integer() else r


def _checked_table(districts_table: pd.DataFrame) -> pd.DataFrame:
    """Check the caller's per-district table: names, populations and the value columns' ranges."""
    missing = [c for c in ("district", "population") if c not in districts_table.columns]
    if missing:
        msg = (f"districts table: no column {', '.join(repr(c) for c in missing)}; fix: give one row per district with "
               "'district' and 'population' (see planner.norms.check_norms)")
        raise MissingColumnError(msg)
    d = districts_table.reset_index(drop=True)
    names = d["district"]
    if names.isna().any() or names.astype(str).str.strip().eq("").any():
        msg = f"districts table: row {int(np.flatnonzero(names.isna() | names.astype(str).str.strip().eq(''))[0]) + 1} " \
              "has no district name; fix: name every district"
        raise InvalidValueError(msg)
    dup = names[names.duplicated()]
    if len(dup):
        msg = f"districts table: district '{dup.iloc[0]}' is listed twice; fix: give one row per district"
        raise InvalidValueError(msg)
    for col in d.columns:
        if col == "population" or col.startswith(("n_centres", "covered_pct")) or col in STAFF_KINDS:
            _check_range(d, col, required=col == "population")
    return d


def _check_range(d: pd.DataFrame, col: str, *, required: bool) -> None:
    v = pd.to_numeric(d[col], errors="coerce")
    top = 100.0 if col.startswith("covered_pct") else math.inf
    bad = (v.isna() & (d[col].notna() | required)) | (v < 0) | (v > top) | np.isinf(v.astype(float))
    if col.startswith("n_centres"):
        bad |= v.notna() & (v != v.round())
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        what = "a whole number >= 0" if col.startswith("n_centres") else "a percent from 0 to 100" if top == 100 \
            else "a number >= 0"
        raw = d[col].iloc[i]
        shown = repr(raw) if isinstance(raw, str) else f"{raw:g}" if isinstance(raw, (int, float, np.number)) else str(raw)
        msg = (f"districts table: district '{d['district'].iloc[i]}', column '{col}': {shown} is not {what}; "
               f"fix: give {what}")
        raise InvalidValueError(msg)
    d[col] = v.astype(float)


def _column_for(norm: Norm, d: pd.DataFrame) -> str | None:
    """Return the districts-table column a norm reads, or None (with a log line) when the table has none."""
    if norm.kind == "residents_per_centre":
        names = (f"n_centres_{norm.id}", "n_centres")
    elif norm.kind == "coverage":
        names = (f"covered_pct_{norm.minutes:g}min", "covered_pct")
    else:
        names = (norm.kind,)
    col = next((c for c in names if c in d.columns), None)
    if col is None:
        logger.warning("norm '%s' is not checked: the districts table has no column %s", norm.id, " or ".join(names))
    return col


def _row(norm: Norm, name: str, pop: float, value: float) -> dict[str, Any]:
    """Measured value, pass/fail, shortfall and the gap in words of one district for one norm."""
    word_en, word_zh = ("norm", "标准") if norm.is_claim else ("target", "目标")
    if norm.kind == "residents_per_centre":
        n = int(value)
        short = max(0, _ceil(pop / norm.value) - n)
        measured = pop / n if n > 0 else math.nan
        if n > 0:
            en = (f"{name}: 1 centre per {_num(measured, 0)} residents ({n} centre{'s' if n != 1 else ''}, "
                  f"{_num(pop, 0)} residents)")
            zh = f"{name}: 每 {_num(measured, 0)} 名居民 1 所社区卫生服务中心 (共 {n} 所, {_num(pop, 0)} 人)"
        else:
            en, zh = f"{name}: no centre for {_num(pop, 0)} residents", f"{name}: {_num(pop, 0)} 名居民, 无社区卫生服务中心"
        en += f"; {word_en} ≤ {_num(norm.value, 0)} → " + (
            f"{short} more centre{'s' if short != 1 else ''}" if short else f"meets the {word_en}")
        zh += f"; {word_zh} ≤ {_num(norm.value, 0)} 人/所 → " + (f"需增加 {short} 所" if short else "达标")
        return _result(norm, measured, "≤", short, "centres", zh, en)
    if norm.kind == "coverage":
        measured = value
        short = max(0, _ceil((norm.value - value) / 100.0 * pop))
        en = (f"{name}: {_num(value, 2)} % of residents within {norm.minutes:g} min; {word_en} ≥ {_num(norm.value, 2)} % → "
              + (f"{short:,} more residents to cover" if short else f"meets the {word_en}"))
        zh = (f"{name}: {norm.minutes:g} 分钟内覆盖 {_num(value, 2)}% 的居民; {word_zh} ≥ {_num(norm.value, 2)}% → "
              + (f"需再覆盖 {short:,} 人" if short else "达标"))
        return _result(norm, measured, "≥", short, "residents", zh, en)
    what_zh, measure, noun = _STAFF_WORDS[norm.kind]
    per, per_zh = norm.per_residents, "每千人" if norm.per_residents == 1000 else "每万人"
    measured = value / pop * per if pop > 0 else math.nan
    short = max(0, _ceil(norm.value * pop / per - value))
    shown = _num(measured, 2) if pop > 0 else "—"
    en = (f"{name}: {shown} {noun} {norm.unit} ({_num(value, 0)} for {_num(pop, 0)} residents); "
          f"{word_en} ≥ {_num(norm.value, 2)} → " + (f"{short:,} more {noun}" if short else f"meets the {word_en}"))
    zh = (f"{name}: {per_zh}{what_zh} {shown} {measure} (共 {_num(value, 0)} {measure}, {_num(pop, 0)} 人); "
          f"{word_zh} ≥ {_num(norm.value, 2)} → " + (f"需增加 {short:,} {measure}" if short else "达标"))
    return _result(norm, measured, "≥", short, noun, zh, en)


def _result(norm: Norm, measured: float, comparison: str, short: int, short_unit: str, zh: str, en: str) -> dict[str, Any]:
    return {"measured": measured, "comparison": comparison, "norm_value": norm.value, "unit": norm.unit,
            "passed": short == 0, "shortfall": short, "shortfall_unit": short_unit, "gap_zh": zh, "gap_en": en}


def _unchecked(norm: Norm, name: str, col: str | None) -> dict[str, Any]:
    what = col or {"residents_per_centre": "n_centres", "coverage": "covered_pct"}.get(norm.kind, norm.kind)
    zh_what = _STAFF_WORDS[norm.kind][0] if norm.kind in _STAFF_WORDS else what
    comparison = "≤" if norm.kind == "residents_per_centre" else "≥"
    return {"measured": math.nan, "comparison": comparison, "norm_value": norm.value, "unit": norm.unit, "passed": None,
            "shortfall": None, "shortfall_unit": "", "gap_zh": f"{name}: 未检查 (无{zh_what}数据)",
            "gap_en": f"{name}: not checked (no {what} figures)"}


def _label_zh(norm: Norm) -> str:
    if norm.label_zh:
        return norm.label_zh
    if norm.kind == "residents_per_centre":
        return "每所社区卫生服务中心服务人口"
    if norm.kind == "coverage":
        return f"{norm.minutes:g}分钟覆盖率"
    return ("每千人口" if norm.per_residents == 1000 else "每万人口") + _STAFF_WORDS[norm.kind][0] + "数"


def _label_en(norm: Norm) -> str:
    if norm.label_en:
        return norm.label_en
    if norm.kind == "residents_per_centre":
        return "residents per community health service centre"
    if norm.kind == "coverage":
        return f"residents within {norm.minutes:g} min (%)"
    return f"{_STAFF_WORDS[norm.kind][2]} {norm.unit}"


def _ceil(x: float) -> int:
    """Round up, ignoring floating-point noise below 10 to the power -:data:`_DIGITS`."""
    return math.ceil(round(x, _DIGITS)) if math.isfinite(x) else 0


def _num(x: float, decimals: int) -> str:
    """`x` with thousands separators and at most `decimals` decimals, trailing zeros dropped."""
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
