"""Publish output folders whole: build aside, swap in with one rename, lock, manifest.

:func:`output_dir` builds a run's whole output folder under a hidden sibling name, then swaps it in
with one rename (``renameat2`` with ``RENAME_EXCHANGE`` on Linux), so a reader sees either the
complete previous set or the complete new set, and no file of an earlier run survives. A lock file
keeps a second run out of a folder being written, and a manifest (``.planner-manifest.json``) lists
the files planner wrote. Before anything is loaded, :func:`check_output_dir` refuses an output
folder that would delete an input, holds files planner did not write (unless forced), is a file,
is read-only, or has a missing parent or too long a name. The public names are re-exported by
:mod:`planner.io`.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import functools
import hashlib
import json
import logging
import os
import platform
import re
import secrets
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ._errors import OutputFolderError
from ._version import __version__

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------- outputs
#
# An output folder is built whole under a hidden sibling name and swapped in with one rename, so that
# a reader of --out sees either the complete previous set or the complete new set. A sibling lock file
# keeps two runs from writing one folder at once, and a manifest lists the files planner wrote there.

MANIFEST_NAME = ".planner-manifest.json"  # the files planner wrote into an output folder, with sizes and SHA-256
ERROR_LOG_NAME = "error.log"  # why the last run into a folder failed; not in the manifest, gone after a success
_ERROR_LOG_HEAD = "planner run FAILED"
_SIBLING_RESERVE = 26  # bytes a sibling name adds to the folder name: "." ".partial-" pid(7) "-" 8 hex digits
_LEGACY_PARTIAL = re.compile(r"^\.partial-")  # temporary folders that planner 0.1.0 left inside --out
_LEGACY_NAMES = frozenset({  # what planner 0.1.0 wrote, before output folders had a manifest
    "summary.json", "cells.gpkg", "institutions.gpkg", "isochrones.gpkg", "districts.gpkg", "map.html", "map.png",
    "sites.csv", "sites.gpkg", "marginal_curve.csv", "grids.gpkg", "assignment.csv", "grids.csv", "districts.csv",
    "tables.xlsx", "thresholds.csv", "by_tier.csv", "by_district.csv", "scenario.json", "compare.json",
    "compare_cells.gpkg", "compare_by_district.csv", "compare_by_tier.csv", "compare_map.html", "map_a.html",
    "map_b.html", "side_by_side.html", ERROR_LOG_NAME,
})
_RENAME_EXCHANGE = 2  # renameat2 flag (linux/fs.h): swap two paths atomically
_AT_FDCWD = -100  # renameat2: paths relative to the current folder
_RENAMEAT2_SYSCALL = {"x86_64": 316, "aarch64": 276}  # for a C library without the renameat2 wrapper
_HELD: dict[str, int] = {}  # lock files held by this process -> id of the thread holding it
_HELD_GUARD = threading.Lock()
_BUILDING: set[str] = set()  # temporary folders this process is building


def _absolute(path: str | os.PathLike[str]) -> Path:
    """Absolute path with symbolic links resolved (the folder that would really be replaced)."""
    return Path(os.path.realpath(os.path.abspath(Path(path).expanduser())))


def _short(path: Path | str, limit: int = 120) -> str:
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit // 2]}…{text[-limit // 2:]}"


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        value = os.pathconf(path, name)
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or no such setting
        return default
    return value if value > 0 else default


def _stem(name: str) -> str:
    """Folder name as used in its siblings' names, shortened (with a hash) when a sibling name would be too long."""
    raw = os.fsencode(name)
    if len(raw) + _SIBLING_RESERVE <= 255:
        return name
    cut = raw[: 255 - _SIBLING_RESERVE - 9].decode("utf-8", "ignore")
    return f"{cut}~{hashlib.sha1(raw).hexdigest()[:8]}"  # noqa: S324 - a name, not a secret


def _sibling_re(dest: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(_stem(dest.name))}\.(?:partial|old)-\d+-[0-9a-f]{{8}}$")


def _sibling(dest: Path, tag: str) -> Path:
    return dest.parent / f".{_stem(dest.name)}.{tag}-{os.getpid()}-{secrets.token_hex(4)}"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _input_files(inputs: Iterable[Any] | Mapping[str, Any]) -> list[tuple[Path, Path]]:
    """Return the existing files among `inputs` (other values are ignored) as (absolute, resolved) pairs."""
    values = inputs.values() if isinstance(inputs, Mapping) else inputs
    files = []
    for v in values:
        if not isinstance(v, (str, os.PathLike)) or not str(v):
            continue
        p = Path(os.path.abspath(Path(v).expanduser()))
        with contextlib.suppress(OSError, ValueError):
            if p.is_file() or p.is_symlink():
                files.append((p, _absolute(p)))
    return files


def _fail_out(dest: Path, problem: str, fix: str) -> OutputFolderError:
    return OutputFolderError(f"output folder {_short(dest)}: {problem}; fix: {fix}")


def _check_names(dest: Path, files: Iterable[str]) -> None:
    """Every new path component, and every file name to be written, fits the file system's limits."""
    existing = dest
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    name_max = _pathconf(existing, "PC_NAME_MAX", 255)
    path_max = _pathconf(existing, "PC_PATH_MAX", 4096)
    new_parts = dest.parts[len(existing.parts):]
    for part in (*new_parts, *files):
        size = len(os.fsencode(part))
        if size > name_max:
            raise _fail_out(dest, f"the name '{_short(part, 40)}' is {size} bytes long, more than this file system "
                                  f"allows ({name_max} bytes)", "use a shorter name")
    longest = max((len(os.fsencode(str(dest / f))) for f in files), default=len(os.fsencode(str(dest))))
    if longest + _SIBLING_RESERVE >= path_max:
        raise _fail_out(dest, f"the path is {longest} bytes long, more than this file system allows "
                              f"({path_max} bytes)", "use a shorter path")


def _probe_writable(folder: Path, dest: Path) -> None:
    """Create and remove a file in `folder` (permission bits alone say nothing for root or a read-only mount)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".planner-probe-", dir=folder)
    except OSError as exc:
        where = (f"into {_short(folder)}" if folder == dest else
                 f"into its parent folder {_short(folder)}, where planner builds the outputs before swapping them in")
        raise _fail_out(dest, f"cannot write {where} ({exc.strerror or exc})", "choose a writable output folder") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)


def check_output_dir(
    out: str | os.PathLike[str],
    *,
    inputs: Iterable[Any] | Mapping[str, Any] = (),
    force: bool = False,
    keep: Iterable[str | os.PathLike[str]] = (),
    root: str | os.PathLike[str] | None = None,
    files: Iterable[str] = (),
) -> Path:
    """Check, before anything is loaded, that `out` can receive a run's outputs.

    Publishing replaces the whole folder (see :func:`output_dir`), so `out`
    must not hold an input file, and an existing folder must hold only files
    that planner wrote there (listed in its ``.planner-manifest.json``, or the
    outputs of planner 0.1.0, which had no manifest) unless `force` is given.
    An empty folder is fine. Nothing is written, apart from a probe file
    that is removed at once.

    Parameters
    ----------
    out
        Output folder.
    inputs
        The run's inputs: paths (or a mapping whose values are paths); values
        that are not existing files, such as ``"nodes"``, are ignored.
    force
        Accept an existing folder holding other files (they are deleted when
        the new outputs are published).
    keep
        Folders that must survive, such as the other outputs of the same
        command: `out` may neither be, hold, nor lie inside one of them.
    root
        The folder holding `out` (e.g. ``--out-root``), which may be missing
        and is then created; its own parent must exist. Without it, the
        parent of `out` must exist.
    files
        Names of files to be written whose length depends on the user (e.g.
        ``<scenario name>.gpkg``), checked against the file system's limit.

    Returns
    -------
    out
        The absolute folder, symbolic links resolved.

    Raises
    ------
    OutputFolderError
        If `out` is a file, a mount point or the current folder, if its parent
        is missing or not writable, if `out` is not writable, if a name is too
        long for the file system, if `out` holds an input or a `keep` folder,
        or if it holds files planner did not write and `force` is False.

    Examples
    --------
    >>> import tempfile
    >>> base = Path(tempfile.mkdtemp())
    >>> check_output_dir(base / "results") == base.resolve() / "results"
    True
    >>> check_output_dir(base / "missing" / "results")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    planner._errors.OutputFolderError: output folder .../missing/results: the folder .../missing does not exist; ...
    """
    files = tuple(files)
    dest = Path(os.path.abspath(Path(out).expanduser()))
    _check_names(dest, files)
    dest = _absolute(dest)
    root_p = None if root is None else _absolute(root)
    if os.path.lexists(dest) and not dest.is_dir():
        raise _fail_out(dest, "is a file, not a folder", "give a folder for the outputs; planner will not replace that file")
    parent = dest.parent
    base = parent.parent if parent == root_p and not os.path.lexists(parent) else parent
    if not base.is_dir():
        problem = "is a file, not a folder" if os.path.lexists(base) else "does not exist"
        raise _fail_out(dest, f"the folder {_short(base)} {problem}",
                        f"create it first (mkdir -p {_short(base)}) or correct the path")
    _probe_writable(base, dest)
    if dest.is_dir():
        _probe_writable(dest, dest)
        if os.path.ismount(dest):
            raise _fail_out(dest, "is a mount point, and planner replaces the whole output folder",
                            "give a folder inside it")
        with contextlib.suppress(OSError):
            if _inside(_absolute(Path.cwd()), dest):
                raise _fail_out(dest, "is (or holds) the current folder, and planner replaces the whole output folder",
                                "run planner from another folder, or give a new folder for the outputs")
    for path, real in _input_files(inputs):
        if _inside(path, dest) or _inside(real, dest):
            raise _fail_out(dest, f"holds the input {_short(path)}; planner replaces the whole output folder, so the "
                                  "input would be deleted", "move the input out of that folder, or give another "
                                  "output folder (e.g. a new subfolder)")
    for k in keep:
        kp = _absolute(k)
        if _inside(kp, dest) or _inside(dest, kp):
            raise _fail_out(dest, f"overlaps {_short(kp)}, which this command also writes or keeps",
                            "give an output folder outside it")
    if not force:
        _refuse_foreign(dest)
    return dest


def _refuse_foreign(dest: Path) -> None:
    foreign = _foreign_entries(dest) if dest.is_dir() else []
    if foreign:
        shown = ", ".join(_short(f, 60) for f in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise _fail_out(dest, f"holds {len(foreign)} file(s) that planner did not write, or changed since ({shown}); "
                              "planner replaces the whole output folder, so they would be deleted",
                        "move them away, give a new or empty folder, or add --force to replace the folder anyway")


def _read_json_file(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _manifest_sizes(dest: Path) -> dict[str, int] | None:
    """Files listed in the manifest of `dest` with their sizes, or None without a valid manifest."""
    data = _read_json_file(dest / MANIFEST_NAME)
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        return None
    sizes = {}
    for entry in data["files"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("bytes"), int)):
            return None
        sizes[entry["path"]] = entry["bytes"]
    return sizes


def _legacy_names(dest: Path) -> set[str] | None:
    """File names of a planner 0.1.0 output folder (no manifest), or None if `dest` is not one."""
    summary = _read_json_file(dest / "summary.json")
    if isinstance(summary, dict) and "planner_version" in summary:
        scenario = summary.get("scenario")
        name = scenario.get("name") if isinstance(scenario, dict) else None
        return set(_LEGACY_NAMES) | ({f"{name}.gpkg"} if isinstance(name, str) else set())
    compare = _read_json_file(dest / "compare.json")
    if isinstance(compare, dict) and "coverage_pct_a" in compare:
        return set(_LEGACY_NAMES)
    return None


def _is_planner_error_log(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(_ERROR_LOG_HEAD)) == _ERROR_LOG_HEAD.encode()
    except OSError:
        return False


def _foreign_entries(dest: Path) -> list[str]:
    """Files and folders in `dest` that planner did not write (or that changed size since), relative to `dest`."""
    sizes = _manifest_sizes(dest)
    legacy = _legacy_names(dest) if sizes is None else None
    foreign = []
    for dirpath, dirnames, filenames in os.walk(dest):
        here = Path(dirpath)
        rel_dir = here.relative_to(dest).as_posix()
        top = rel_dir == "."
        prefix = "" if top else f"{rel_dir}/"
        for d in sorted(dirnames):
            rel = prefix + d
            link = (here / d).is_symlink()
            if top and not link and _LEGACY_PARTIAL.match(d):
                dirnames.remove(d)  # a temporary folder of planner 0.1.0: removed with the folder
            elif not link and sizes is not None and any(p.startswith(f"{rel}/") for p in sizes):
                continue
            else:
                foreign.append(f"{rel}/")
                dirnames.remove(d)
        for f in sorted(filenames):
            rel = prefix + f
            if top and ((f == MANIFEST_NAME and sizes is not None)
                        or (f == ERROR_LOG_NAME and _is_planner_error_log(here / f))):
                continue
            if sizes is not None:
                if rel in sizes:
                    if os.lstat(here / f).st_size == sizes[rel]:
                        continue
                    rel += " (changed)"
            elif top and legacy is not None and f in legacy:
                continue
            foreign.append(rel)
    return foreign


def has_results(out: str | os.PathLike[str]) -> bool:
    """Say whether `out` holds a complete set of results written by planner.

    Parameters
    ----------
    out
        Output folder.

    Returns
    -------
    found
        True if `out` has a manifest (or is an output folder of planner 0.1.0).
    """
    dest = Path(out)
    return dest.is_dir() and (_manifest_sizes(dest) is not None or _legacy_names(dest) is not None)


def _busy(dest: Path, pid: int | None) -> OutputFolderError:
    who = f" (pid {pid})" if pid else ""
    return _fail_out(dest, f"another planner run{who} is writing it right now",
                     "wait for that run to finish, or give another output folder")


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).decode("ascii").strip() or 0) or None
    return None


def _acquire_lock(lock: Path, dest: Path) -> int:
    """Take the lock file of `dest` without waiting; return its descriptor."""
    try:
        import fcntl
    except ImportError:  # Windows
        fcntl = None  # type: ignore[assignment]
    for _ in range(10):  # another run may remove the lock file between our open and our lock
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _fail_out(dest, f"cannot create the lock file {_short(lock)} ({exc.strerror or exc})",
                            "choose a writable output folder") from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:  # pragma: no cover - Windows
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            pid = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK):
                raise _busy(dest, pid) from None
            raise _fail_out(dest, f"cannot lock {_short(lock)} ({exc.strerror or exc})",
                            "choose an output folder on a local disk") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except OSError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            return fd
        os.close(fd)
    raise _busy(dest, None)


def _release_lock(lock: Path, fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - an open file cannot be removed there
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(lock)
        return
    with contextlib.suppress(OSError):
        os.unlink(lock)  # while still holding the lock, so that no one locks a removed file
    os.close(fd)


@contextlib.contextmanager
def lock_output_dir(out: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """Hold the lock of an output folder: a second run into it is refused at once, never raced.

    The lock is ``.<name>.lock`` next to `out`, held with ``flock`` (the
    operating system releases it when a process dies) and removed on
    release. The same thread may take it again (the CLI holds it for the
    whole command, the writer takes it again to publish).

    Parameters
    ----------
    out
        Output folder (need not exist).
    root
        The folder holding `out`, created if missing (see :func:`check_output_dir`).

    Yields
    ------
    out
        The absolute folder.

    Raises
    ------
    OutputFolderError
        If another process (or another thread of this one) holds the lock,
        or the lock file cannot be created.
    """
    dest = _absolute(out)
    lock = dest.parent / f".{_stem(dest.name)}.lock"
    key, me = str(lock), threading.get_ident()
    with _HELD_GUARD:
        owner = _HELD.get(key)
    if owner is not None:
        if owner != me:
            raise _busy(dest, os.getpid())
        yield dest
        return
    if root is not None and _absolute(root) == dest.parent:
        try:
            dest.parent.mkdir(exist_ok=True)
        except OSError as exc:
            raise _fail_out(dest, f"cannot create {_short(dest.parent)} ({exc.strerror or exc})",
                            "create it first, or correct the path") from None
    fd = _acquire_lock(lock, dest)
    with _HELD_GUARD:
        _HELD[key] = me
    try:
        yield dest
    finally:
        with _HELD_GUARD:
            _HELD.pop(key, None)
        _release_lock(lock, fd)


def _remove_stale(dest: Path) -> int:
    """Remove temporary folders left by dead runs (the caller holds the lock of `dest`)."""
    removed = 0
    pattern = _sibling_re(dest)
    with contextlib.suppress(OSError):
        for entry in list(os.scandir(dest.parent)):
            if pattern.match(entry.name) and entry.path not in _BUILDING and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
    with contextlib.suppress(OSError):
        for entry in list(os.scandir(dest)) if dest.is_dir() else ():
            if _LEGACY_PARTIAL.match(entry.name) and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
    if removed:
        logger.info("removed %d temporary folder(s) left by earlier runs into %s", removed, dest)
    return removed


def remove_stale_partials(out: str | os.PathLike[str]) -> int:
    """Remove the temporary folders that runs into `out` left when they died.

    Does nothing while another run holds the folder's lock.

    Parameters
    ----------
    out
        Output folder.

    Returns
    -------
    removed
        Number of folders removed.
    """
    dest = _absolute(out)
    if not dest.parent.is_dir():
        return 0
    try:
        with lock_output_dir(dest):
            return _remove_stale(dest)
    except OutputFolderError:
        return 0


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file's bytes, read 1 MiB at a time (manifests, the network cache, shipped-data credits)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_manifest(folder: Path, kind: str) -> None:
    entries = [{"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size, "sha256": file_sha256(p)}
               for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()]
    data = {"written_by": "planner", "planner_version": __version__, "kind": kind,
            "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": entries}
    (folder / MANIFEST_NAME).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    """Return the C library's ``renameat2`` (Linux), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to load
        return None
    fn = getattr(libc, "renameat2", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        fn.restype = ctypes.c_int
        return fn  # type: ignore[no-any-return]
    number = _RENAMEAT2_SYSCALL.get(platform.machine())  # pragma: no cover - glibc < 2.28
    if number is None:  # pragma: no cover
        return None

    def call(olddirfd: int, old: bytes, newdirfd: int, new: bytes, flags: int) -> int:  # pragma: no cover
        return int(libc.syscall(ctypes.c_long(number), ctypes.c_int(olddirfd), ctypes.c_char_p(old),
                                ctypes.c_int(newdirfd), ctypes.c_char_p(new), ctypes.c_uint(flags)))

    return call  # pragma: no cover


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    import ctypes

    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):  # the file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(new: Path, dest: Path) -> Path | None:
    """Put the folder `new` at `dest`; return where the previous folder now is (to be removed), if there was one."""
    if not os.path.lexists(dest):
        os.rename(new, dest)
        return None
    if _exchange(new, dest):
        return new
    # elsewhere two renames: for a moment there is no folder at `dest`, but never a mix of two runs
    old = _sibling(dest, "old")
    os.rename(dest, old)
    try:
        os.rename(new, dest)
    except BaseException:
        os.rename(old, dest)
        raise
    return old


@contextlib.contextmanager
def output_dir(
    out: str | os.PathLike[str],
    *,
    kind: str = "outputs",
    inputs: Iterable[Any] | Mapping[str, Any] = (),
    force: bool = False,
    keep: Iterable[str | os.PathLike[str]] = (),
    root: str | os.PathLike[str] | None = None,
) -> Iterator[Path]:
    """Give a folder to write a run's outputs into; it replaces `out` whole on success.

    The folder is built as a hidden sibling of `out`
    (``.<name>.partial-<pid>-<random>``). When the body ends without error, a
    manifest (``.planner-manifest.json``: planner version, `kind`, UTC time,
    every file with its size and SHA-256) is added and the folder is swapped
    in: in one atomic step on Linux (``renameat2`` with ``RENAME_EXCHANGE``),
    by two renames elsewhere. Then the previous folder is deleted, so no file
    of an earlier run survives into the new set. On an error the previous
    folder stays as it was, the new one is removed, and ``error.log`` in
    `out` says what failed. The folder's lock is held throughout (see
    :func:`lock_output_dir`), and temporary folders of dead runs are removed.

    Parameters
    ----------
    out
        Destination folder; checked with :func:`check_output_dir`.
    kind
        What the run was (``coverage``, ``siting``, ...), for the manifest.
    inputs, force, keep, root
        See :func:`check_output_dir`.

    Yields
    ------
    tmp
        Folder to write outputs into.

    Raises
    ------
    OutputFolderError
        If `out` cannot receive the outputs (see :func:`check_output_dir`),
        or another run is writing it.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "results"
    >>> with output_dir(out, kind="example") as tmp:
    ...     _ = (tmp / "a.txt").write_text("first run")
    >>> with output_dir(out, kind="example") as tmp:
    ...     _ = (tmp / "b.txt").write_text("second run")
    >>> sorted(p.name for p in out.iterdir())  # a.txt of the first run is gone
    ['.planner-manifest.json', 'b.txt']
    """
    dest = check_output_dir(out, inputs=inputs, force=force, keep=keep, root=root)
    with lock_output_dir(dest, root=root):
        _remove_stale(dest)
        tmp = _sibling(dest, "partial")
        try:
            tmp.mkdir()
        except OSError as exc:
            raise _fail_out(dest, f"cannot create {_short(tmp)} ({exc.strerror or exc})",
                            "choose a writable output folder") from None
        _BUILDING.add(str(tmp))
        old: Path | None = None
        published = False
        try:
            yield tmp
            if not force:  # files may have been added to `dest` while the outputs were computed
                _refuse_foreign(dest)
            _write_manifest(tmp, kind)
            old = _swap_in(tmp, dest)
            published = True
        except BaseException as exc:
            if not published:
                shutil.rmtree(tmp, ignore_errors=True)
                if not isinstance(exc, OutputFolderError):
                    write_error_log(dest, exc)
            raise
        finally:
            _BUILDING.discard(str(tmp))
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_error_log(dest: str | os.PathLike[str], exc: BaseException, *, detail: str | None = None) -> None:
    """Write ``error.log`` into `dest` saying the run failed and why.

    Earlier results in `dest` are left as they were; `error.log` is not part
    of them and the next successful run removes it. A missing `dest` is
    created (its parent must exist) to hold only ``error.log``.

    Parameters
    ----------
    dest
        Output folder.
    exc
        The error.
    detail
        More text, e.g. a traceback.
    """
    folder = Path(dest)
    if has_results(folder):
        data = _read_json_file(folder / MANIFEST_NAME)
        when = f" of {data['created_utc']}" if isinstance(data, dict) and isinstance(data.get("created_utc"), str) else ""
        head = (f"{_ERROR_LOG_HEAD}; no new results were written, and the results of an earlier run{when} "
                "in this folder were left as they were.")
    else:
        head = f"{_ERROR_LOG_HEAD}; no results were written."
    text = f"{head}\n{type(exc).__name__}: {exc}\n" + (f"\n{detail}" if detail else "")
    with contextlib.suppress(OSError):
        folder.mkdir(exist_ok=True)
        (folder / ERROR_LOG_NAME).write_text(text, encoding="utf-8")
