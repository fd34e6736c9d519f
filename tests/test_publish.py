"""Output folders: built aside and swapped in whole, locked, checked before any input is loaded.

Library cases use :func:`planner.io.output_dir` with small files; CLI cases run the Optics Valley
extract (``geodata/osm/wuhan_guanggu_east_lake_hitech.osm``) with the four institutions of
``tests/data/guanggu_institutions.csv`` and the Wuhan population raster.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner import OutputFolderError, datasets, io, maps
from planner import _publish as publishing
from planner.cli import app
from planner.io import MANIFEST_NAME, check_output_dir, has_results, lock_output_dir, output_dir

DATA = Path(__file__).parent / "data"
NETWORK = datasets.get_path("guanggu_osm")
POPULATION = datasets.get_path("wuhan_population")
DISTRICTS = datasets.get_path("wuhan_districts")
INSTITUTIONS = DATA / "guanggu_institutions.csv"


def _digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) with its SHA-256."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _publish(out: Path, files: dict[str, str], **kwargs) -> None:
    with output_dir(out, kind="test", **kwargs) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")


def _hidden_siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


# ----------------------------------------------------------------------------------------- publishing


def test_publish_swaps_the_whole_folder_and_lists_its_files(tmp_path):
    out = tmp_path / "results"
    _publish(out, {"summary.json": "{}", "districts.gpkg": "first run"})
    _publish(out, {"summary.json": '{"run": 2}'})
    # nothing of the first run survives, and nothing is left beside the folder
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "summary.json"]
    assert _hidden_siblings(out) == []
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["kind"] == "test" and manifest["planner_version"] == "0.1.0"
    assert manifest["created_utc"].endswith("Z")
    assert manifest["files"] == [{"path": "summary.json", "bytes": 10,
                                  "sha256": hashlib.sha256(b'{"run": 2}').hexdigest()}]
    assert has_results(out)


@pytest.mark.skipif(publishing._renameat2() is None, reason="renameat2 is Linux-only")
def test_exchange_swaps_two_folders_in_one_step(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "new.txt").write_text("new")
    (b / "old.txt").write_text("old")
    ino_a, ino_b = a.stat().st_ino, b.stat().st_ino
    assert publishing._exchange(a, b) is True
    assert [p.name for p in b.iterdir()] == ["new.txt"] and [p.name for p in a.iterdir()] == ["old.txt"]
    assert (b.stat().st_ino, a.stat().st_ino) == (ino_a, ino_b)  # the folders themselves moved, not their files


def test_publish_without_renameat2_uses_two_renames(tmp_path, monkeypatch):
    monkeypatch.setattr(publishing, "_exchange", lambda a, b: False)  # as on macOS, Windows or NFS
    out = tmp_path / "results"
    _publish(out, {"a.txt": "1", "b.txt": "1"})
    _publish(out, {"b.txt": "2"})
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "b.txt"]
    assert (out / "b.txt").read_text() == "2" and _hidden_siblings(out) == []


def test_failure_while_writing_keeps_the_previous_set(tmp_path):
    out = tmp_path / "results"
    _publish(out, {"summary.json": '{"mode": "walk"}', "cells.gpkg": "walk cells"})
    before = _digest(out)
    with pytest.raises(RuntimeError, match="disk full"), output_dir(out, kind="test") as tmp:
        (tmp / "cells.gpkg").write_text("ebike cells")  # one file of the new set is written ...
        raise RuntimeError("disk full")  # ... and the run dies before the next one
    after = _digest(out)
    assert after.pop("error.log")
    assert after == before  # the previous set, complete and unchanged
    log = (out / "error.log").read_text(encoding="utf-8")
    assert log.startswith("planner run FAILED") and "RuntimeError: disk full" in log and "left as they were" in log
    assert _hidden_siblings(out) == []
    _publish(out, {"summary.json": '{"mode": "ebike"}'})  # the next success removes error.log
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "summary.json"]


_PUBLISH_AND_HANG = """
import sys, time
from planner.io import output_dir
with output_dir(sys.argv[1], kind="test") as tmp:
    (tmp / "cells.gpkg").write_text("half of a new run")
    print("writing", flush=True)
    time.sleep(600)
"""


def test_killed_run_concurrent_runs_and_stale_folders(tmp_path):
    """A run killed while writing leaves the previous set whole; while it lives, other runs are refused."""
    out = tmp_path / "results"
    _publish(out, {"summary.json": '{"complete": true}', "cells.gpkg": "old cells"})
    before = _digest(out)
    proc = subprocess.Popen([sys.executable, "-c", _PUBLISH_AND_HANG, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        # a second run into the same folder is refused at once, naming the other run; it never races
        with pytest.raises(OutputFolderError, match=rf"another planner run \(pid {proc.pid}\) is writing it"):
            _publish(out, {"summary.json": "{}"})
        res = CliRunner().invoke(app, ["coverage", "--network", str(NETWORK), "--institutions", str(INSTITUTIONS),
                                       "--population", str(POPULATION), "--out", str(out), "-q"])
        assert res.exit_code == 2 and res.stdout == ""
        assert res.stderr.splitlines() == [
            f"error: output folder {out}: another planner run (pid {proc.pid}) is writing it right now; "
            "fix: wait for that run to finish, or give another output folder"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert _digest(out) == before  # killed mid-run: the previous set, complete and unchanged
    assert [n for n in _hidden_siblings(out) if ".partial-" in n] != []  # the dead run's temporary folder
    # the lock died with the process; the next run cleans up after it
    _publish(out, {"summary.json": '{"run": 3}'})
    assert _hidden_siblings(out) == []
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "summary.json"]


def test_other_thread_holding_the_lock_refuses(tmp_path):
    out = tmp_path / "results"
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with lock_output_dir(out):
                held.set()
                release.wait()
        finally:
            held.set()  # never leave the test waiting

    t = threading.Thread(target=hold)
    t.start()
    try:
        held.wait()
        assert t.is_alive()  # the thread holds the lock
        with pytest.raises(OutputFolderError, match="another planner run"):
            _publish(out, {"a.txt": "x"})
    finally:
        release.set()
        t.join()
    _publish(out, {"a.txt": "x"})
    assert (out / "a.txt").exists()


def test_stale_folders_of_planner_010_are_cleaned(tmp_path):
    """An output folder of planner 0.1.0 (no manifest, a .partial-* inside) is planner's own, and gets cleaned."""
    out = tmp_path / "results"
    (out / ".partial-k2j3h4").mkdir(parents=True)
    (out / ".partial-k2j3h4" / "cells.gpkg").write_bytes(b"\0" * 1000)
    (out / "summary.json").write_text('{"planner_version": "0.1.0", "complete": true}', encoding="utf-8")
    (out / "marginal_curve.csv").write_text("n_sites\n1\n", encoding="utf-8")
    dead = tmp_path / ".results.partial-4194305-0badc0de"  # above Linux's largest pid: its process is gone
    dead.mkdir()
    assert has_results(out) and check_output_dir(out) == out.resolve()
    _publish(out, {"summary.json": "{}"})
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "summary.json"]
    assert not dead.exists() and _hidden_siblings(out) == []
    assert io.remove_stale_partials(out) == 0


# ----------------------------------------------------------------------------------------- checks


def test_foreign_files_need_force(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    assert check_output_dir(out) == out.resolve()  # an empty folder is fine
    (out / "报告.docx").write_bytes(b"the planner's own report")
    with pytest.raises(OutputFolderError, match=r"holds 1 file\(s\) that planner did not write.*报告\.docx.*--force"):
        _publish(out, {"summary.json": "{}"})
    assert sorted(p.name for p in out.iterdir()) == ["报告.docx"]
    _publish(out, {"summary.json": "{}"}, force=True)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "summary.json"]
    (out / "summary.json").write_text('{"edited": "in a text editor"}', encoding="utf-8")  # planner's file, changed
    (out / "extra").mkdir()
    with pytest.raises(OutputFolderError, match=r"holds 2 file\(s\).*\(extra/, summary\.json \(changed\)\)"):
        check_output_dir(out)


def test_inputs_inside_the_output_folder_are_refused(tmp_path, monkeypatch):
    out = tmp_path / "results"
    out.mkdir()
    inside = out / "districts.gpkg"
    inside.write_bytes(b"user's districts")
    link = tmp_path / "districts_link.gpkg"
    link.symlink_to(inside)
    for given in (inside, link, str(inside)):
        with pytest.raises(OutputFolderError, match="holds the input .*districts.*would be deleted"):
            check_output_dir(out, inputs=[None, "nodes", given], force=True)  # --force does not override it
    assert check_output_dir(tmp_path / "elsewhere", inputs={"boundaries": str(inside), "coords": "wgs84"})
    with pytest.raises(OutputFolderError, match="overlaps"):
        check_output_dir(tmp_path, keep=[out], force=True)
    monkeypatch.chdir(out)
    with pytest.raises(OutputFolderError, match="current folder"):
        check_output_dir(out, force=True)
    assert inside.read_bytes() == b"user's districts"


def test_output_path_limits(tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    with pytest.raises(OutputFolderError, match=rf"is {name_max + 1} bytes long, more than this file system allows"):
        check_output_dir(tmp_path / ("x" * (name_max + 1)))
    with pytest.raises(OutputFolderError, match=r"is 300 bytes long"):  # 100 three-byte characters
        check_output_dir(tmp_path / ("医" * 100))
    with pytest.raises(OutputFolderError, match=r"the name 'xxx.*\.gpkg' is \d+ bytes long"):
        check_output_dir(tmp_path / "ok", files=["x" * name_max + ".gpkg"])
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(OutputFolderError, match="a.txt: is a file, not a folder"):
        check_output_dir(tmp_path / "a.txt")
    with pytest.raises(OutputFolderError, match=r"the folder .*a\.txt is a file, not a folder"):
        check_output_dir(tmp_path / "a.txt" / "out")
    with pytest.raises(OutputFolderError, match=r"the folder .*missing does not exist; fix: create it first"):
        check_output_dir(tmp_path / "missing" / "out")
    # a root (--out-root) may be missing if its own parent exists
    assert check_output_dir(tmp_path / "root" / "scenario", root=tmp_path / "root")
    with pytest.raises(OutputFolderError, match="does not exist"):
        check_output_dir(tmp_path / "no" / "root" / "scenario", root=tmp_path / "no" / "root")


@pytest.fixture
def read_only_folder(tmp_path):
    """Give a folder nobody may write into: root ignores permission bits, so for root it is a read-only mount."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"root needs a read-only mount for this test, and mount is not permitted: {done.stderr!r}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_read_only_output_folder(read_only_folder):
    with pytest.raises(OutputFolderError, match=r"ro/out: cannot write into its parent folder .*ro"):
        check_output_dir(read_only_folder / "out")
    with pytest.raises(OutputFolderError, match=r"ro: cannot write into .*ro \("):
        check_output_dir(read_only_folder)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_folder_not_even_root_can_write():
    with pytest.raises(OutputFolderError, match=r"/proc/planner-out: cannot write into its parent folder /proc"):
        check_output_dir("/proc/planner-out")


# ----------------------------------------------------------------------------------------- the CLI, up front


def _bogus_inputs(folder: Path) -> dict[str, Path]:
    """Write inputs that exist but would fail to load: an up-front check must stop the run before reading them."""
    network = folder / "roads.osm"
    network.write_text("<osm> not really </osm", encoding="utf-8")
    return {"network": network, "institutions": INSTITUTIONS, "population": POPULATION}


def _scenario(folder: Path, name: str, network: Path, **extra: str) -> Path:
    lines = [f'name = "{name}"', "[inputs]", f'network = "{network}"', f'institutions = "{INSTITUTIONS}"',
             f'population = "{POPULATION}"', *(f'{k} = "{v}"' for k, v in extra.items())]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _command(kind: str, inputs: dict[str, Path], out: Path, tmp_path: Path) -> list[str]:
    files = ["--network", str(inputs["network"]), "--institutions", str(inputs["institutions"]),
             "--population", str(inputs["population"])]
    if kind in ("coverage", "site", "grid"):
        return [kind, *files, "--out", str(out), *(["--new-sites", "1"] if kind == "site" else [])]
    if kind == "run":
        return ["run", str(_scenario(tmp_path, "base", inputs["network"])), "--out-root", str(out)]
    if kind == "compare":
        a, b = _scenario(tmp_path, "base", inputs["network"]), _scenario(tmp_path, "what-if", inputs["network"])
        return ["compare", str(a), str(b), "--out", str(out), "--out-root", str(tmp_path / "runs")]
    batch = tmp_path / "batch.toml"
    batch.write_text(f'[defaults]\nnetwork = "{inputs["network"]}"\ninstitutions = "{INSTITUTIONS}"\n'
                     f'population = "{POPULATION}"\n[[case]]\nname = "walk"\n', encoding="utf-8")
    return ["batch", str(batch), "--out", str(out), "--serial"]


COMMANDS = ["coverage", "site", "grid", "run", "compare", "batch"]


@pytest.mark.parametrize("problem", ["is-a-file", "missing-parent", "name-too-long", "not-writable"])
@pytest.mark.parametrize("kind", COMMANDS)
def test_cli_refuses_a_doomed_out_before_loading_inputs(tmp_path, kind, problem):
    inputs = _bogus_inputs(tmp_path)
    (tmp_path / "afile").write_text("keep me", encoding="utf-8")
    out = {"is-a-file": tmp_path / "afile", "missing-parent": tmp_path / "nope" / "out",
           "name-too-long": tmp_path / ("区" * 90), "not-writable": Path("/proc/planner-out")}[problem]
    res = CliRunner().invoke(app, [*_command(kind, inputs, out, tmp_path), "-q"])
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    (line,) = res.stderr.splitlines()  # one line, and not about the network that could not be read
    assert line.startswith("error: output folder ") and "fix: " in line and "roads.osm" not in line
    expected = {"is-a-file": "is a file, not a folder", "missing-parent": "does not exist",
                "name-too-long": "bytes long, more than this file system allows", "not-writable": "cannot write"}[problem]
    assert expected in line
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "keep me"
    assert not (tmp_path / "nope").exists() and not list(tmp_path.glob("区*"))
    assert not list(tmp_path.glob(".*"))  # no lock, probe or temporary folder left behind


def test_cli_refuses_to_overwrite_an_input_in_out(tmp_path):
    """The reported defect: ``--boundaries DIR/districts.gpkg --out DIR`` replaced the input (exit 0)."""
    folder = tmp_path / "DIR"
    folder.mkdir()
    boundaries = folder / "districts.gpkg"
    boundaries.write_bytes(DISTRICTS.read_bytes())
    before = _digest(folder)
    for force in ([], ["--force"]):
        res = CliRunner().invoke(app, ["coverage", "--network", str(NETWORK), "--institutions", str(INSTITUTIONS),
                                       "--population", str(POPULATION), "--boundaries", str(boundaries),
                                       "--out", str(folder), "-q", *force])
        assert res.exit_code == 2
        assert res.stderr.splitlines() == [
            f"error: output folder {folder.resolve()}: holds the input {boundaries}; planner replaces the whole output "
            "folder, so the input would be deleted; fix: move the input out of that folder, or give another output "
            "folder (e.g. a new subfolder)"]
        assert _digest(folder) == before


def test_cli_run_compare_batch_refuse_inputs_in_their_folders(tmp_path):
    root = tmp_path / "outputs"
    (root / "base").mkdir(parents=True)
    boundaries = root / "base" / "districts.gpkg"
    boundaries.write_bytes(DISTRICTS.read_bytes())
    scenario = _scenario(tmp_path, "base", NETWORK, boundaries=str(boundaries))
    res = CliRunner().invoke(app, ["run", str(scenario), "--out-root", str(root), "-q"])
    assert res.exit_code == 2 and "holds the input" in res.stderr and "districts.gpkg" in res.stderr
    # a scenario file inside its own output folder would be deleted too
    inner = _scenario(root / "base", "base", NETWORK)
    res = CliRunner().invoke(app, ["run", str(inner), "--out-root", str(root), "-q", "--force"])
    assert res.exit_code == 2 and f"holds the input {inner}" in res.stderr
    # a comparison folder that would swallow the runs' folders and the cache
    other = _scenario(tmp_path, "what-if", NETWORK)
    res = CliRunner().invoke(app, ["compare", str(other), str(other), "--out", str(root), "--out-root", str(root), "-q"])
    assert res.exit_code == 2 and "overlaps" in res.stderr
    batch = tmp_path / "batch.toml"
    batch.write_text(f'[defaults]\nnetwork = "{NETWORK}"\ninstitutions = "{INSTITUTIONS}"\npopulation = "{POPULATION}"\n'
                     f'[[case]]\nname = "base"\nboundaries = "{boundaries}"\n', encoding="utf-8")
    res = CliRunner().invoke(app, ["batch", str(batch), "--out", str(root), "--serial", "-q"])
    assert res.exit_code == 2 and "holds the input" in res.stderr
    assert boundaries.read_bytes() == DISTRICTS.read_bytes()
    assert sorted(p.name for p in (root / "base").iterdir()) == ["base.toml", "districts.gpkg"]


# ----------------------------------------------------------------------------------------- the CLI, whole runs


def test_cli_runs_into_one_folder(tmp_path, monkeypatch):
    """Foreign files need --force; a failed run keeps the earlier set; a new run leaves nothing of the old one."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("my notes", encoding="utf-8")
    base = ["coverage", "--network", str(NETWORK), "--institutions", str(INSTITUTIONS), "--population", str(POPULATION),
            "--out", str(out), "--no-isochrones", "-q"]
    res = CliRunner().invoke(app, [*base, "--boundaries", str(DISTRICTS)])
    assert res.exit_code == 2 and "(notes.txt)" in res.stderr and "--force" in res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]

    res = CliRunner().invoke(app, [*base, "--boundaries", str(DISTRICTS), "--force"])
    assert res.exit_code == 0, res.output
    first = _digest(out)
    assert "notes.txt" not in first and "districts.gpkg" in first and "summary.json" in first
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["kind"] == "coverage"
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {k: v for k, v in first.items() if k != MANIFEST_NAME}

    def broken_png(*args, **kwargs):
        raise RuntimeError("simulated crash while drawing map.png")

    monkeypatch.setattr(maps, "render_static_map", broken_png)  # the layers and map.html are already written
    res = CliRunner().invoke(app, base)
    assert res.exit_code == 1
    (line,) = [ln for ln in res.stderr.splitlines() if not ln.startswith("WARNING: ")]  # the rest is the log
    assert line.startswith("internal error: RuntimeError: simulated crash while drawing map.png")
    assert f"(the earlier results in {out} were left as they were)" in line
    after = _digest(out)
    log = (out / "error.log").read_text(encoding="utf-8")
    assert after.pop("error.log") and after == first
    assert "left as they were" in log and "Traceback" in log
    monkeypatch.undo()

    res = CliRunner().invoke(app, [*base, "--institutions", str(tmp_path / "missing.csv")])
    assert res.exit_code == 2 and res.stderr.strip().endswith(f"(the earlier results in {out} were left as they were)")

    res = CliRunner().invoke(app, base)  # without --boundaries this time
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert "districts.gpkg" not in names and "error.log" not in names
    assert names == sorted([MANIFEST_NAME, *(f["path"] for f in json.loads(
        (out / MANIFEST_NAME).read_text(encoding="utf-8"))["files"])])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
