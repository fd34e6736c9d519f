"""Credits of the data a run used: from the data, never from a label.

Every run summary has a ``credits`` list, one entry per distinct source::

    {"inputs": ["network", "institutions"], "text": "© OpenStreetMap contributors",
     "licence": "ODbL 1.0", "url": "https://www.openstreetmap.org/copyright"}

made by :func:`case_credits` from the run's input files and the user's own
credits:

* a file shipped in ``geodata/`` (or a byte copy of one) gets the credit that
  the "Attribution to display" table of ``geodata/README.md`` gives it
  (:func:`shipped_credits`);
* an OpenStreetMap file (``.osm``, ``.osm.pbf``, ``.pbf``, ``.osm.xml``, and
  the ``osm:`` exclusion zones read from one) is credited to OpenStreetMap;
* the user's credit for a role (``--credit population="..."``, or
  ``credits = {population = "..."}`` in a scenario or batch file) wins over both;
* any other input gets a line saying its source was not given and how to
  give it.

:func:`credit_lines` turns the list into the lines maps, PNGs and the XLSX
``about`` sheet print.

Examples
--------
>>> from planner import datasets
>>> credits = case_credits({"network": datasets.get_path("guanggu_osm"), "population": "my_census.csv"})
>>> for line in credit_lines(credits):
...     print(line)
路网 network: © OpenStreetMap contributors (ODbL 1.0)
人口 population: 来源未注明 source not given — add --credit population="…" before publishing
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._errors import InvalidValueError
from ._publish import file_sha256

__all__ = ["OSM_CREDIT", "ROLES", "case_credits", "check_user_credits", "credit_for_file", "credit_lines",
           "parse_credit_options", "population_counts", "shipped_credits"]

#: Input roles and their bilingual names, in the order credits list them.
ROLES: dict[str, str] = {
    "network": "路网 network",
    "institutions": "机构 institutions",
    "population": "人口 population",
    "boundaries": "行政区 boundaries",
    "candidates": "候选点 candidates",
    "leads": "牵头医院 leads",
    "competitors": "竞争机构 competitors",
    "suitability": "适宜性 suitability",
    "exclusion": "禁建区 exclusion zones",
}
#: The credit of OpenStreetMap data (www.openstreetmap.org/copyright).
OSM_CREDIT: dict[str, str] = {"text": "© OpenStreetMap contributors", "licence": "ODbL 1.0",
                              "url": "https://www.openstreetmap.org/copyright"}
_OSM_SUFFIXES = (".osm", ".osm.pbf", ".pbf", ".osm.xml", ".osm.bz2")
_GEODATA = Path(__file__).resolve().parent.parent / "geodata"  # = planner.datasets.GEODATA (not imported: light module)
_SECTION = "## Attribution to display"
_NOT_GIVEN = "来源未注明 source not given"
CREDIT_TEXT_MAX = 300  # characters of one user credit


def _is_osm(path: str | os.PathLike[str]) -> bool:
    name = str(path).lower()
    return name.startswith("osm:") or name.endswith(_OSM_SUFFIXES)


@functools.lru_cache(maxsize=4)
def shipped_credits(readme: str | os.PathLike[str] | None = None) -> tuple[tuple[tuple[str, ...], dict[str, str]], ...]:
    """Read the "Attribution to display" table of ``geodata/README.md``.

    Its rows are ``| files | credit to display | licence | url |``; the first
    column lists paths under ``geodata/`` in backticks, exact or with ``*``
    patterns (``osm/*.osm``).

    Parameters
    ----------
    readme
        The README to read; ``geodata/README.md`` by default.

    Returns
    -------
    rows
        ``(patterns, {"text", "licence", "url"})`` per row (and ``"counts"``: what a population file
        counts, where the README's fifth column says); empty when the
        README is missing (an installed package without ``geodata/``).

    Examples
    --------
    >>> [c["licence"] for _, c in shipped_credits()]
    ['ODbL 1.0', 'CC BY 4.0']
    """
    path = Path(readme) if readme is not None else _GEODATA / "README.md"
    if not path.is_file():
        return ()
    text = path.read_text(encoding="utf-8")
    start = text.find(_SECTION)
    if start < 0:
        return ()
    end = text.find("\n## ", start + len(_SECTION))
    rows = []
    for line in text[start:end if end > 0 else None].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) not in (4, 5) or not cells[0].startswith("`"):
            continue
        patterns = tuple(re.findall(r"`([^`]+)`", cells[0]))
        credit = {"text": cells[1].replace("**", "").strip(), "licence": cells[2], "url": cells[3]}
        if len(cells) == 5 and cells[4]:
            credit["counts"] = cells[4]
        rows.append((patterns, credit))
    return tuple(rows)


def _shipped_row(path: str | os.PathLike[str]) -> dict[str, str] | None:
    """Return the README row (credit, and ``counts`` for a population file) of a shipped file or a copy of one."""
    name = _shipped_name(Path(path)) if not str(path).lower().startswith("osm:") else None
    if name is not None:
        for patterns, credit in shipped_credits():
            if any(fnmatch.fnmatchcase(name, pat) for pat in patterns):
                return credit
    return None


def population_counts(path: str | os.PathLike[str]) -> str | None:
    """Return what a shipped population file counts (the README's last column), or None for any other file.

    Examples
    --------
    >>> from planner import datasets
    >>> population_counts(datasets.get_path("wuhan_population"))
    'persons aged 20+ (WorldPop; ages 0-19 not included)'
    >>> population_counts("my_census.csv") is None
    True
    """
    row = _shipped_row(path)
    return None if row is None else row.get("counts")


@functools.lru_cache(maxsize=1)
def _shipped_sizes() -> dict[int, list[tuple[str, str]]]:
    """Byte counts and SHA-256 of the shipped files (the README's checksum table): size -> [(sha, path)]."""
    path = _GEODATA / "README.md"
    out: dict[int, list[tuple[str, str]]] = {}
    if not path.is_file():
        return out
    for m in re.finditer(r"^\| `([^`]+)` \| ([\d,]+) \| `([0-9a-f]{64})` \|", path.read_text(encoding="utf-8"), re.M):
        out.setdefault(int(m.group(2).replace(",", "")), []).append((m.group(3), m.group(1)))
    return out


def _shipped_name(path: Path) -> str | None:
    """Return the path under ``geodata/`` of a shipped file, or of a byte copy of one; None otherwise."""
    try:
        p = path.resolve()
        return p.relative_to(_GEODATA).as_posix()
    except (ValueError, OSError):
        pass
    try:
        size = path.stat().st_size
    except OSError:
        return None
    known = _shipped_sizes().get(size)
    if not known or not path.is_file():
        return None
    digest = _sha256(str(path.resolve()), size, path.stat().st_mtime_ns)  # only files of a shipped file's size
    return next((name for sha, name in known if sha == digest), None)


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, computed once per (path, size, modification time): a run asks for its credit and its counts."""
    del size, mtime_ns  # part of the cache key only: a changed file is hashed again
    return file_sha256(Path(path))


def credit_for_file(path: str | os.PathLike[str]) -> dict[str, str] | None:
    """Return the credit of one input file, or None when its source is not known.

    Parameters
    ----------
    path
        An input file, or an ``osm:...`` exclusion source.

    Returns
    -------
    credit
        ``{"text", "licence", "url"}``: the README's for a shipped file, OpenStreetMap's for an OSM file.

    Examples
    --------
    >>> from planner import datasets
    >>> credit_for_file(datasets.get_path("wuhan_population"))["licence"]
    'CC BY 4.0'
    >>> credit_for_file("somewhere/roads.osm.pbf")["text"], credit_for_file("my.csv")
    ('© OpenStreetMap contributors', None)
    """
    row = _shipped_row(path)
    if row is not None:
        return {k: row[k] for k in ("text", "licence", "url")}
    return dict(OSM_CREDIT) if _is_osm(path) else None


def check_user_credits(credits: Mapping[str, Any] | Iterable[tuple[str, Any]] | None, *,
                       where: str = "credits") -> tuple[tuple[str, str], ...]:
    """Check the user's credits (role -> text) and return them as sorted pairs.

    Parameters
    ----------
    credits
        ``{"population": "第七次全国人口普查 Census 2020"}`` or pairs; None: none.
    where
        What to name in an error (an option, or a file and key).

    Returns
    -------
    credits
        ``((role, text), ...)`` in the order of :data:`ROLES`.

    Raises
    ------
    InvalidValueError
        For an unknown role, or an empty or overlong text.

    Examples
    --------
    >>> check_user_credits({"population": " 统计局 census "})
    (('population', '统计局 census'),)
    >>> check_user_credits({"people": "x"})
    Traceback (most recent call last):
    ...
    planner._errors.InvalidValueError: credits: unknown role 'people'; fix: use one of network, institutions, \
population, boundaries, candidates, leads, competitors, suitability, exclusion
    """
    items = list((credits or {}).items()) if isinstance(credits, Mapping) or credits is None else list(credits)
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            msg = f"{where}: {item!r} is not a role and a text; fix: give ROLE=TEXT, e.g. population=\"census 2020\""
            raise InvalidValueError(msg)
        role, text = item
        if role not in ROLES:
            msg = f"{where}: unknown role {role!r}; fix: use one of {', '.join(ROLES)}"
            raise InvalidValueError(msg)
        if not isinstance(text, str) or not text.strip() or len(text.strip()) > CREDIT_TEXT_MAX:
            msg = (f"{where}: the credit of {role} must be a text of 1-{CREDIT_TEXT_MAX} characters, not {text!r}; "
                   f"fix: give the source and licence, e.g. {role}=\"统计局 census 2020\"")
            raise InvalidValueError(msg)
        out[role] = " ".join(text.split())
    return tuple((r, out[r]) for r in ROLES if r in out)


def parse_credit_options(values: Sequence[str] | None) -> tuple[tuple[str, str], ...]:
    """Parse repeated ``--credit ROLE=TEXT`` options.

    Examples
    --------
    >>> parse_credit_options(["population=第七次人口普查 census 2020", "leads = 卫健委 health commission"])
    (('population', '第七次人口普查 census 2020'), ('leads', '卫健委 health commission'))
    """
    pairs = []
    for value in values or ():
        role, sep, text = value.partition("=")
        if not sep:
            msg = f"--credit {value!r} has no '='; fix: give ROLE=TEXT, e.g. --credit population=\"统计局 census 2020\""
            raise InvalidValueError(msg)
        pairs.append((role.strip(), text))
    return check_user_credits(pairs, where="--credit")


def case_credits(inputs: Mapping[str, Any], user: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
                 ) -> list[dict[str, Any]]:
    """Return the credits of a run: one entry per distinct source of its inputs.

    Parameters
    ----------
    inputs
        Role -> input file (None or ``"nodes"`` for none), or a list of files
        for a role with several (exclusion zones).
    user
        The user's credits, role -> text; they win over the files' own.

    Returns
    -------
    credits
        ``{"inputs": [roles], "text", "licence", "url"}`` per source, in the
        order of :data:`ROLES`; inputs whose source is unknown come last in
        one entry whose text says how to credit them (licence and url None).
    """
    own = dict(check_user_credits(user))
    found: dict[tuple[str, str | None, str | None], list[str]] = {}
    missing: list[str] = []
    for role in ROLES:
        value = inputs.get(role)
        files = [v for v in (value if isinstance(value, (list, tuple)) else [value]) if v not in (None, "", "nodes")]
        if not files:
            continue
        if role in own:
            found.setdefault((own[role], None, None), []).append(role)
            continue
        credits = [credit_for_file(f) for f in files]
        if any(c is None for c in credits):
            missing.append(role)
        for c in credits:
            if c is not None:
                roles = found.setdefault((c["text"], c["licence"] or None, c["url"] or None), [])
                if role not in roles:
                    roles.append(role)
    out: list[dict[str, Any]] = [{"inputs": roles, "text": text, "licence": licence, "url": url}
                                 for (text, licence, url), roles in found.items()]
    if missing:
        fix = " ".join(f'--credit {r}="…"' for r in missing)
        out.append({"inputs": missing, "text": f"{_NOT_GIVEN} — add {fix} before publishing", "licence": None,
                    "url": None})
    return out


def credit_lines(credits: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """Return the display lines of a run's credits, one per source (plain text).

    Parameters
    ----------
    credits
        A run summary's ``credits``; None gives no line.

    Returns
    -------
    lines
        ``"<roles>: <text> (<licence>)"``, roles in Chinese and English.

    Examples
    --------
    >>> credit_lines([{"inputs": ["network", "institutions"], "text": "© OpenStreetMap contributors",
    ...                "licence": "ODbL 1.0", "url": "https://www.openstreetmap.org/copyright"}])
    ['路网 network, 机构 institutions: © OpenStreetMap contributors (ODbL 1.0)']
    >>> credit_lines(None)
    []
    """
    lines = []
    for c in credits or ():
        roles = ", ".join(ROLES.get(r, r) for r in c.get("inputs", ()))
        licence = f" ({c['licence']})" if c.get("licence") else ""
        lines.append(f"{roles}: {c['text']}{licence}" if roles else f"{c['text']}{licence}")
    return lines
