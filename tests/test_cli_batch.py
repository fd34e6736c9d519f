"""`planner batch` on the command line (serial mode; the distributed runs are tested in test_batch.py)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from planner.cli import app

from .test_cli import INSTITUTIONS, NETWORK, POPULATION


def test_cli_batch_serial(tmp_path):
    f = tmp_path / "b.toml"
    f.write_text(f'[defaults]\nnetwork = "{NETWORK}"\ninstitutions = "{INSTITUTIONS}"\npopulation = "{POPULATION}"\n'
                 'isochrones = false\n[[case]]\nname = "walk"\n[[case]]\nname = "broken"\ninstitutions = "missing.csv"\n',
                 encoding="utf-8")
    res = CliRunner().invoke(app, ["batch", str(f), "--out", str(tmp_path / "out"), "--serial", "-q"])
    assert res.exit_code == 2 and "missing.csv" in res.output  # inputs are checked before anything runs
    f.write_text(f.read_text(encoding="utf-8").replace('\n[[case]]\nname = "broken"\ninstitutions = "missing.csv"\n', "\n"),
                 encoding="utf-8")
    res = CliRunner().invoke(app, ["batch", str(f), "--out", str(tmp_path / "out"), "--serial", "-q"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "out" / "batch_summary.json").read_text(encoding="utf-8"))
    (case,) = summary["cases"]
    assert case["status"] == "ok" and f"{case['coverage_pct']:.1f}%" in res.output
