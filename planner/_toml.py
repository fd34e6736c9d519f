"""Read scenario and batch files: the one TOML reader, line locations for messages, and the name rule.

Scenario files (:mod:`planner.scenarios`) and batch files (:mod:`planner.batch`)
are read here and nowhere else. A file is read as bytes and decoded as the CSV
tables are: UTF-8, with or without a byte-order mark, else GB18030 (the
superset of GBK that editors on Chinese Windows save by default). A UTF-16 file
or anything else that is not text is refused in one line that names the file
and says to save it as UTF-8. Every error is a :class:`~planner.PlannerError`
raised before any input is loaded.

Names of scenarios and batch cases become folder and file names
(``outputs/<name>/``, ``<name>.gpkg``, ``compare-<a>-vs-<b>/``), so
:func:`name_problem` keeps them to letters, digits, Chinese characters, ``-``,
``_`` and ``.`` (not first), and to :data:`MAX_NAME_BYTES` bytes of UTF-8.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ._errors import InputFileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

logger = logging.getLogger(__name__)

# Encodings tried in turn after a UTF-8 byte-order mark is dropped; the CSV loader (planner.io) tries the same two.
TEXT_ENCODINGS = ("utf-8", "gb18030")
# Longest name in bytes of UTF-8 (about 33 Chinese characters). File systems allow 255 bytes per file name;
# 100 leaves room for "compare-<a>-vs-<b>" with two such names and for the temporary suffix of an output folder.
MAX_NAME_BYTES = 100

_NAME_RE = re.compile(r"^[\w\-.一-鿿]+$")
_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]\s]+)\s*\]\]?")


class TomlSource:
    """A TOML file's path and lines, to name the line of a key in error messages.

    Parameters
    ----------
    path
        The file.
    text
        Its decoded text ("" when unknown: every line lookup then gives None).
    """

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.headers: list[tuple[str, int]] = []  # (table name, 0-based line) of every [table] and [[table]]
        for i, line in enumerate(self.lines):
            m = _HEADER_RE.match(line)
            if m:
                self.headers.append((m.group(2), i))

    @classmethod
    def of(cls, path: str | os.PathLike[str] | None) -> TomlSource:
        """Return the lines of a file read earlier, for messages; no lines when it is gone or unreadable."""
        p = Path(path or "<scenario>")
        try:
            return cls(p, _decode(p.read_bytes(), p, what="file"))
        except (OSError, InputFileError):
            return cls(p, "")

    def line_of(self, token: str) -> int | None:
        """1-based line of the first key, table name or quoted value `token` (comments skipped), or None."""
        pat = re.compile(rf"(^|[\s\[\.\"']){re.escape(token)}\s*(=|\]|\"|')")
        for i, line in enumerate(self.lines, 1):
            if pat.search(line.split("#", 1)[0]):
                return i
        return None

    def line_in(self, table: str, index: int, key: str | None) -> int | None:
        """1-based line of `key` in the `index`-th ``[table]``/``[[table]]`` (0-based), or of its header.

        With ``table=""``, the line of a top-level key or table named `key`.
        """
        if not table:
            own = [i for name, i in self.headers if name == key]
            first = self.headers[0][1] if self.headers else len(self.lines)
            top = [i for i in range(first) if key and re.match(rf"^\s*{re.escape(key)}\s*=", self.lines[i])]
            return (own + top)[0] + 1 if own or top else None
        starts = [i for name, i in self.headers if name == table]
        if index >= len(starts):
            return None
        start = starts[index]
        end = next((i for _, i in self.headers if i > start), len(self.lines))
        if key is not None:
            pat = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
            for i in range(start + 1, end):
                if pat.match(self.lines[i].split("#", 1)[0]):
                    return i + 1
        return start + 1

    def where(self, line: int | None) -> str:
        """Return ``"<path>, line <n>"``, or the path alone when the line is unknown."""
        return f"{self.path}" + (f", line {line}" if line else "")


def read_toml(path: str | os.PathLike[str], *, what: str) -> tuple[dict[str, Any], TomlSource]:
    """Read a TOML file in UTF-8 (with or without BOM) or GB18030/GBK.

    Parameters
    ----------
    path
        The file.
    what
        What it is, for messages: ``"scenario file"`` or ``"batch file"``.

    Returns
    -------
    data, source
        The parsed tables and the file's lines (for messages naming a line).

    Raises
    ------
    InputFileError
        If the file is missing, a folder, unreadable, not text in a known
        encoding, or not valid TOML (naming the line).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.toml"
    >>> _ = p.write_bytes('name = "江岸区"'.encode("gbk"))
    >>> data, source = read_toml(p, what="scenario file")
    >>> data["name"], source.line_of("name")
    ('江岸区', 1)
    """
    p = Path(path)
    if p.is_dir():
        msg = f"{p}: is a folder, not a {what}; fix: give the path of the .toml file"
        raise InputFileError(msg)
    if not p.is_file():
        msg = f"{p}: {what} not found; fix: check the path"
        raise InputFileError(msg)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        msg = f"{p}: cannot read the {what} ({exc.strerror or type(exc).__name__}); fix: check that you may read it"
        raise InputFileError(msg) from None
    text = _decode(raw, p, what=what)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        detail = " ".join(str(exc).split())
        msg = f"{p}: not valid TOML ({detail}); fix: check quotes, brackets and '=' on that line"
        raise InputFileError(msg) from None
    return data, TomlSource(p, text)


def _decode(raw: bytes, path: Path, *, what: str) -> str:
    """Decode a text file as the CSV tables are: UTF-8 (a BOM is dropped), else GB18030."""
    if raw.startswith(codecs.BOM_UTF8):
        logger.debug("%s: dropped the UTF-8 byte-order mark (BOM)", path)
        raw = raw[len(codecs.BOM_UTF8):]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        msg = f"{path}: the {what} is saved as UTF-16; fix: save it as UTF-8"
        raise InputFileError(msg)
    for encoding in TEXT_ENCODINGS:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        if encoding != TEXT_ENCODINGS[0]:
            logger.info("%s: read as %s (GBK) text, not UTF-8", path, encoding.upper())
        return text
    msg = f"{path}: the {what} is not text in UTF-8 or GB18030/GBK; fix: save it as UTF-8"
    raise InputFileError(msg)


def name_problem(name: str, *, reserved: Collection[str] = ()) -> tuple[str, str] | None:
    """Say why `name` cannot name an output folder, or return None when it can.

    Parameters
    ----------
    name
        A scenario or batch-case name.
    reserved
        Names taken by files of the output folder (e.g. ``batch_summary.json``).

    Returns
    -------
    problem
        ``(problem, fix)`` for a one-line message, or None.

    Examples
    --------
    >>> name_problem("江岸区-walk") is None
    True
    >>> name_problem("../up")[0]
    "'../up' is not usable as a folder name"
    >>> name_problem("a" * 300)[1]
    'shorten it to at most 100 bytes (about 33 Chinese characters or 100 letters)'
    """
    if not _NAME_RE.match(name) or name.startswith(".") or name in reserved:  # '..' or '.x' would leave or hide
        return (f"'{name}' is not usable as a folder name",
                "use letters, digits, Chinese characters, '-', '_' or '.' (not first)")
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        return (f"'{name[:12]}…' is {size} bytes long in UTF-8 ({len(name)} characters), too long for the names of "
                f"the output folders and files",
                f"shorten it to at most {MAX_NAME_BYTES} bytes (about {MAX_NAME_BYTES // 3} Chinese characters or "
                f"{MAX_NAME_BYTES} letters)")
    return None
