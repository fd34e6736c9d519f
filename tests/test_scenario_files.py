"""Scenario and batch files as users save them: encodings, names, 'extends' and polygons, refused up front in one line."""

from __future__ import annotations

import codecs
import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner import PlannerError
from planner.batch import load_batch
from planner.cli import app
from planner.scenarios import load_scenario, run_scenario

REPO = Path(__file__).resolve().parent.parent
NETWORK = REPO / "geodata" / "osm" / "wuhan_guanggu_east_lake_hitech.osm"
INSTITUTIONS = REPO / "tests" / "data" / "guanggu_institutions.csv"
POPULATION = REPO / "geodata" / "wuhan" / "population_age20plus_100m.tif"
INPUTS = f"""[inputs]
network = "{NETWORK.as_posix()}"
institutions = "{INSTITUTIONS.as_posix()}"
population = "{POPULATION.as_posix()}"
[analysis]
isochrones = false
"""
MISSING_INPUTS = INPUTS.replace(NETWORK.name, "no_such_network.osm")  # a run that got past the file checks would fail on it
BASE = f"""name = "光谷-基线"
title = "光谷 基线 (武汉)"
{INPUTS}
[[edits.add_institutions]]
name = "新建社区卫生服务中心"
lon = 114.52
lat = 30.48
[[edits.close_roads]]
polygon = [[114.51, 30.48], [114.52, 30.48], [114.52, 30.49]]
"""
# a good polygon on line 10, then the one under test on line 13
POLYGON_EDIT = ("\n[[edits.close_roads]]\npolygon = [[114.51, 30.48], [114.52, 30.48], [114.52, 30.49]]\n"
                "\n[[edits.close_roads]]\npolygon = {}\n")


def _run(*args: str):
    return CliRunner().invoke(app, [*args, "-q"])


def _one_line_error(res, *fragments: str) -> str:
    """Assert exit 2 with one line on the terminal, naming every fragment; return the line."""
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------------ encodings


@pytest.mark.parametrize("encode", [
    pytest.param(lambda text: text.encode("gbk"), id="gbk"),
    pytest.param(lambda text: text.encode("gb18030"), id="gb18030"),
    pytest.param(lambda text: codecs.BOM_UTF8 + text.encode("utf-8"), id="utf-8-bom"),
    pytest.param(lambda text: text.replace("\n", "\r\n").encode("gbk"), id="gbk-crlf"),
])
def test_gbk_and_bom_scenarios_load_as_the_utf8_file(tmp_path, encode):
    """A scenario saved as GBK/GB18030 or UTF-8 with BOM gives the same Scenario as the UTF-8 file."""
    utf8 = tmp_path / "utf8.toml"
    utf8.write_text(BASE, encoding="utf-8")
    other = tmp_path / "other.toml"
    other.write_bytes(encode(BASE))
    expected = load_scenario(utf8)
    got = load_scenario(other)
    assert dataclasses.replace(got, source=expected.source) == expected
    assert (got.name, got.title, got.edits.add_institutions[0].name) == ("光谷-基线", "光谷 基线 (武汉)", "新建社区卫生服务中心")


def test_gbk_scenario_errors_name_the_line(tmp_path):
    """Syntax errors, and edits checked after loading, name the line of a GBK file."""
    p = tmp_path / "gbk.toml"
    p.write_bytes(BASE.replace('title = "光谷 基线 (武汉)"', 'title = "光谷 基线').encode("gbk"))
    res = _run("run", str(p), "--out-root", str(tmp_path / "out"))
    _one_line_error(res, f"{p}: not valid TOML", "line 2")
    # an edit checked against the loaded inputs also names its line in a GBK file
    p.write_bytes((BASE + '\n[edits]\nremove_institutions = ["way/9"]\n').encode("gbk"))
    with pytest.raises(PlannerError, match=r"gbk\.toml, line 18: 'edits\.remove_institutions' names unknown"):
        run_scenario(p, out_root=None)


def test_gbk_and_bom_batch_files_load_as_the_utf8_file(tmp_path):
    """Batch files are read by the same reader: GBK and BOM files give the same cases."""
    defaults = INPUTS.replace("[inputs]", "").replace("[analysis]", "")
    text = f'[defaults]\n{defaults}[[case]]\nname = "光谷-步行"\ntitle = "光谷 步行"\n'
    (tmp_path / "utf8.toml").write_text(text, encoding="utf-8")
    (tmp_path / "gbk.toml").write_bytes(text.encode("gbk"))
    (tmp_path / "bom.toml").write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    expected = load_batch(tmp_path / "utf8.toml")
    assert expected[0].title == "光谷 步行"
    assert load_batch(tmp_path / "gbk.toml") == expected == load_batch(tmp_path / "bom.toml")


# ------------------------------------------------------------------------------------------ refused up front


SCENARIO_CASES = ("folder", "loop_a", "undecodable", "utf16", "extends_folder", "extends_missing", "long_name",
                  "long_chinese_name", "nan_polygon", "all_nan_polygon", "inf_polygon", "bow_tie_polygon", "flat_polygon",
                  "added_datum")


def _scenario_cases(tmp: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """Write one broken scenario per defect; return {case: (file, fragments its one-line error must name)}."""
    (tmp / "folder").mkdir()
    (tmp / "loop_a.toml").write_text(f'extends = "loop_b.toml"\nname = "a"\n{MISSING_INPUTS}', encoding="utf-8")
    (tmp / "loop_b.toml").write_text(f'extends = "loop_a.toml"\nname = "b"\n{MISSING_INPUTS}', encoding="utf-8")
    files = {
        "undecodable.toml": (b'name = "\x80\xff"\n', ("is not text in UTF-8 or GB18030/GBK; fix: save it as UTF-8",)),
        "utf16.toml": (f'name = "光谷"\n{MISSING_INPUTS}'.encode("utf-16"), ("is saved as UTF-16; fix: save it as UTF-8",)),
        "extends_folder.toml": (f'extends = "folder"\nname = "x"\n{MISSING_INPUTS}'.encode(),
                                ("line 1: 'extends' names a folder", "fix: give the path of a .toml file")),
        "extends_missing.toml": (f'extends = "nope.toml"\nname = "x"\n{MISSING_INPUTS}'.encode(),
                                 ("line 1: 'extends' file not found:", "nope.toml", "fix: ")),
        "long_name.toml": (f'name = "{"a" * 300}"\n{MISSING_INPUTS}'.encode(),
                           ("line 1: 'name'", "300 bytes long", "fix: shorten it to at most 100 bytes")),
        "long_chinese_name.toml": (f'name = "{"社区卫生服务中心" * 5}"\n{MISSING_INPUTS}'.encode(),  # 40 characters, 120 bytes
                                   ("line 1: 'name'", "120 bytes long in UTF-8 (40 characters)")),
        "nan_polygon.toml": (f'name = "x"\n{INPUTS}{POLYGON_EDIT.format("[[114.51, 30.48], [nan, 30.48], [114.52, 30.49]]")}'
                             .encode(), ("line 13: 'edits.close_roads[2].polygon' corner 2 [nan, 30.48] is not a number",)),
        "all_nan_polygon.toml": (f'name = "x"\n{INPUTS}{POLYGON_EDIT.format("[[nan, nan], [nan, nan], [nan, nan]]")}'.encode(),
                                 ("line 13: 'edits.close_roads[2].polygon' corner 1 [nan, nan] is not a number",)),
        "inf_polygon.toml": (f'name = "x"\n{INPUTS}{POLYGON_EDIT.format("[[114.51, 30.48], [114.52, inf], [114.52, 30.49]]")}'
                             .encode(), ("corner 2 [114.52, inf] is not a number",)),
        "bow_tie_polygon.toml": (f'name = "x"\n{INPUTS}'
                                 f'{POLYGON_EDIT.format("[[114.51, 30.48], [114.52, 30.49], [114.52, 30.48], [114.51, 30.49]]")}'
                                 .encode(), ("line 13: 'edits.close_roads[2].polygon' is not a valid polygon "
                                             "(Self-intersection[114.515 30.485])",)),
        "flat_polygon.toml": (f'name = "x"\n{INPUTS}{POLYGON_EDIT.format("[[114.51, 30.48], [114.51, 30.48], [114.51, 30.48]]")}'
                              .encode(), ("is not a valid polygon (Too few points",)),
        "added_datum.toml": (f'name = "x"\n{INPUTS}\n[[edits.add_institutions]]\nname = "新建"\nlon = 114.52\nlat = 30.48\n'
                             'coords = "gcj"\n'.encode(),
                             ("line 13: 'edits.add_institutions[1].coords' 'gcj' is not a known datum",)),
    }
    cases = {"folder": (tmp / "folder", ("is a folder, not a scenario file",)),
             "loop_a": (tmp / "loop_a.toml",
                        ("loop_b.toml, line 1: 'extends' forms a loop (loop_a.toml -> loop_b.toml -> loop_a.toml)",))}
    for name, (raw, fragments) in files.items():
        (tmp / name).write_bytes(raw)
        cases[Path(name).stem] = (tmp / name, fragments)
    assert sorted(cases) == sorted(SCENARIO_CASES)
    return cases


@pytest.mark.parametrize("case", SCENARIO_CASES)
def test_broken_scenario_files_are_one_line_exit_2_before_any_input_is_loaded(tmp_path, case):
    """Each defect is one line naming the file, key and line, exit 2, with nothing loaded or written."""
    path, fragments = _scenario_cases(tmp_path)[case]
    out_root = tmp_path / "out"
    res = _run("run", str(path), "--out-root", str(out_root))
    line = _one_line_error(res, *fragments)
    assert str(path.parent) in line  # names the file (or the file of the loop)
    assert not out_root.exists()  # no cache, no output folder: the inputs were never loaded


def test_compare_refuses_a_broken_scenario_before_running_the_other(tmp_path):
    """`planner compare` checks both files before running either."""
    good = tmp_path / "good.toml"
    good.write_text(BASE, encoding="utf-8")
    long = tmp_path / "long.toml"
    long.write_text(f'name = "{"光谷" * 17}"\n{MISSING_INPUTS}', encoding="utf-8")  # 34 characters, 102 bytes
    res = _run("compare", str(good), str(long), "--out-root", str(tmp_path / "out"))
    _one_line_error(res, f"{long}, line 1: 'name'", "102 bytes long")
    assert not (tmp_path / "out").exists()


def test_broken_batch_files_are_one_line_exit_2(tmp_path):
    """Batch files: GBK syntax errors name the line, undecodable files the encoding, long case names the limit."""
    missing = f'network = "{tmp_path / "no_such_network.osm"}"\ninstitutions = "x.csv"\npopulation = "x.tif"\n'
    cases = {
        "gbk_syntax.toml": ('[defaults]\ntitle = "光谷\n'.encode("gbk"), ("not valid TOML", "line 2")),
        "undecodable.toml": (b'[defaults]\ntitle = "\x80\xff"\n',
                             ("is not text in UTF-8 or GB18030/GBK; fix: save it as UTF-8",)),
        # 36 characters, 108 bytes, given after the (missing) inputs: the name is checked first
        "long_name.toml": (f'[[case]]\n{missing}name = "{"江岸区" * 12}"\n'.encode(),
                           ("line 5: case '江岸区", "'name'", "108 bytes long", "fix: shorten it to at most 100 bytes")),
    }
    for name, (raw, fragments) in cases.items():
        path = tmp_path / name
        path.write_bytes(raw)
        res = _run("batch", str(path), "--out", str(tmp_path / f"out-{path.stem}"), "--serial")
        _one_line_error(res, str(path), *fragments)
        assert not (tmp_path / f"out-{path.stem}").exists()
    res = _run("batch", str(tmp_path), "--out", str(tmp_path / "out"), "--serial")
    _one_line_error(res, f"{tmp_path}: is a folder, not a batch file")
