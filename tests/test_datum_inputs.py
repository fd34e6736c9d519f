"""Datums per input (issue 12): ``--coords`` is the institutions' datum only; datum and raster checks warn.

Real data: the Optics Valley (光谷) OSM extract and the WorldPop Wuhan raster. The roadside points
standing in for geocoded institutions are the four hand-placed institutions of
``tests/data/guanggu_institutions.csv`` (within about 20 m of a road) and the six bus stops of the
extract (OSM nodes on the kerb of 高新大道), all WGS-84; their GCJ-02 version is made with
:mod:`planner.datum`, as Amap would give them.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.windows import from_bounds
from typer.testing import CliRunner

from planner import datasets, datum
from planner.batch import load_batch
from planner.cli import app
from planner.demand import load_population
from planner.pipeline import check_datum
from planner.scenarios import load_scenario

DATA = Path(__file__).parent / "data"
NETWORK = datasets.get_path("guanggu_osm")
POPULATION = datasets.get_path("wuhan_population")
BOUNDS = (114.455, 30.46, 114.565, 30.505)  # lon/lat box around the Optics Valley extract's roads
GCJ_HINT = "look like GCJ-02 (Amap) coordinates, not WGS-84"
WGS_HINT = "look like WGS-84 already, not GCJ-02 (Amap)"


def _roadside_points() -> pd.DataFrame:
    """Return the 4 hand-placed institutions and the 6 bus stops of the extract (WGS-84)."""
    inst = pd.read_csv(DATA / "guanggu_institutions.csv", dtype={"tier": str})
    stops = []
    for node in ET.parse(NETWORK).getroot().iter("node"):
        tags = {t.get("k"): t.get("v") for t in node.iter("tag")}
        if tags.get("highway") == "bus_stop":
            stops.append({"name": f"{tags.get('name')} {node.get('id')} 卫生服务站", "lon": float(node.get("lon")),
                          "lat": float(node.get("lat")), "tier": ""})
    assert len(stops) == 6
    return pd.concat([inst, pd.DataFrame(stops)], ignore_index=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Institutions in WGS-84 and GCJ-02, a WGS-84 population table and a raster with negative pixels."""
    d = tmp_path_factory.mktemp("datum_inputs")
    wgs = _roadside_points()
    wgs.to_csv(d / "inst_wgs.csv", index=False)
    lon, lat = datum.wgs84_to_gcj02(wgs["lon"].to_numpy(), wgs["lat"].to_numpy())
    wgs.assign(lon=lon, lat=lat).to_csv(d / "inst_gcj.csv", index=False)
    lon, lat = datum.wgs84_to_bd09(wgs["lon"].to_numpy(), wgs["lat"].to_numpy())
    wgs.assign(lon=lon, lat=lat).to_csv(d / "inst_bd.csv", index=False)

    with rasterio.open(POPULATION) as src:
        win = from_bounds(*BOUNDS, transform=src.transform).round_offsets().round_lengths()
        band = src.read(1, window=win, masked=True)
        transform = src.window_transform(win)
        profile = {**src.profile, "width": int(win.width), "height": int(win.height), "transform": transform,
                   "tiled": False, "blockxsize": None, "blockysize": None}
    rows, cols = np.nonzero(~band.mask & (band.filled(0) > 0))
    x, y = transform * (cols + 0.5, rows + 0.5)
    pd.DataFrame({"lon": x.round(7), "lat": y.round(7), "population": band[rows, cols].astype(float).round(3)}).to_csv(
        d / "population_wgs.csv", index=False)

    data = band.filled(profile["nodata"]).astype("float32")
    data[10, 10:13] = [-3.5, -12.25, -0.75]  # three negative pixels, total -16.5
    data[20, 20:25] = profile["nodata"]  # five nodata pixels: not counted as negative
    profile = {k: v for k, v in profile.items() if v is not None}
    with rasterio.open(d / "population_neg.tif", "w", **profile) as dst:
        dst.write(data, 1)
    return {"wgs": d / "inst_wgs.csv", "gcj": d / "inst_gcj.csv", "bd": d / "inst_bd.csv",
            "population": d / "population_wgs.csv", "raster": d / "population_neg.tif", "dir": d}


def _coverage(files: dict[str, Path], name: str, institutions: Path, *extra: str, population: Path | None = None):
    out = files["dir"] / name
    res = CliRunner().invoke(app, ["coverage", "--network", str(NETWORK), "--institutions", str(institutions),
                                   "--population", str(population or files["population"]), "--out", str(out),
                                   "--no-isochrones", "-q", *extra])
    assert res.exit_code == 0, res.output
    return res, json.loads((out / "summary.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def baseline(files):
    """Everything in WGS-84, declared so."""
    return _coverage(files, "baseline", files["wgs"])


# ------------------------------------------------------------------ --coords is the institutions' datum


def test_coords_gcj02_leaves_a_wgs84_population_table_alone(files, baseline):
    res0, s0 = baseline
    res, s = _coverage(files, "gcj", files["gcj"], "--coords", "gcj02")
    # before the fix --coords gcj02 also moved the population table by ~574 m: 67,082 people in the study area, not 74,674
    assert s["population_total"] == s0["population_total"] > 70_000
    assert s["coverage_pct"] == pytest.approx(s0["coverage_pct"], abs=1e-6)
    assert [t["coverage_pct"] for t in s["thresholds"]] == pytest.approx([t["coverage_pct"] for t in s0["thresholds"]])
    assert s["inputs"]["coords"] == "gcj02" and s["inputs"]["population_coords"] == "wgs84"
    assert "look like" not in res.stderr and "look like" not in res0.stderr  # declared right: no datum warning


def test_population_coords_shifts_the_population_table(files, baseline):
    _, s0 = baseline
    _, s = _coverage(files, "gcj_pop", files["gcj"], "--coords", "gcj02", "--population-coords", "gcj02")
    assert s["inputs"]["population_coords"] == "gcj02"
    assert s["population_total"] < s0["population_total"] - 5_000  # the table moved ~574 m, partly out of the study area
    wgs = load_population(files["population"])
    gcj = load_population(files["population"], coords="gcj02")
    assert gcj["population"].sum() == pytest.approx(wgs["population"].sum())
    utm = wgs.estimate_utm_crs()
    shift = np.subtract(*[np.asarray(c.to_crs(utm).total_bounds) for c in (wgs, gcj)])
    assert 450 < float(np.hypot(shift[0], shift[1])) < 700  # the GCJ-02 offset at Wuhan is 589 m, on 100 m squares


# ------------------------------------------------------------------ datum check on the institutions


def _hint_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "look like" in ln]


def test_gcj02_institutions_declared_wgs84_warn_with_the_fix(files):
    res, _ = _coverage(files, "gcj_as_wgs", files["gcj"])
    (line,) = _hint_lines(res.stderr)
    assert line.startswith(f"WARNING: {files['gcj']}: the institutions {GCJ_HINT}")
    assert "10 points" in line and line.endswith('fix: pass --coords gcj02 (scenario files: coords = "gcj02")')


def test_wgs84_institutions_declared_gcj02_warn_with_the_fix(files):
    res, _ = _coverage(files, "wgs_as_gcj", files["wgs"], "--coords", "gcj02")
    (line,) = _hint_lines(res.stderr)
    assert WGS_HINT in line and line.endswith('fix: pass --coords wgs84 (scenario files: coords = "wgs84")')


@pytest.mark.parametrize(
    ("which", "declared", "expected"),
    [("gcj", "wgs84", "gcj02"), ("wgs", "gcj02", "wgs84"), ("bd", "wgs84", "bd09"), ("bd", "gcj02", "bd09"),
     ("wgs", "bd09", "wgs84"), ("gcj", "gcj02", None), ("wgs", "wgs84", None), ("bd", "bd09", None)],
)
def test_check_datum_suggests_the_datum_that_puts_points_on_roads(guanggu_walk, files, which, declared, expected):
    from planner.institutions import load_institutions

    _, net = guanggu_walk
    inst = load_institutions(files[which], coords=declared)
    msg = check_datum(net, inst, declared=declared, what="x")
    assert (msg is None) if expected is None else (f"fix: pass --coords {expected} " in msg)


def test_check_datum_needs_five_points(guanggu_walk, files):
    from planner.institutions import load_institutions

    _, net = guanggu_walk
    inst = load_institutions(files["gcj"])
    assert check_datum(net, inst.iloc[:5], declared="wgs84") is not None
    assert check_datum(net, inst.iloc[:4], declared="wgs84") is None


# ------------------------------------------------------------------ negative raster pixels


def test_negative_raster_pixels_warn_once_with_count_and_total(files):
    res, s = _coverage(files, "neg", DATA / "guanggu_institutions.csv", population=files["raster"])
    lines = [ln for ln in res.stderr.splitlines() if "negative values" in ln]
    assert lines == [f"WARNING: {files['raster']}: 3 pixels with negative values (total -16.5) set to 0 (nodata pixels "
                     "not counted); fix: correct them, or declare them the raster's nodata value if they mean 'no data'"]
    with rasterio.open(files["raster"]) as src:
        band = src.read(1, masked=True)
    assert int(band.mask.sum()) >= 5  # the nodata pixels were there, and not counted
    assert s["study_area"]["population_input_total"] == pytest.approx(float(band[band > 0].sum()), abs=0.1)


def test_raster_without_negative_pixels_says_nothing(caplog):
    with caplog.at_level("WARNING", logger="planner"):
        cells = load_population(POPULATION, study_area=shapely.box(114.50, 30.48, 114.52, 30.49))
    assert len(cells) and not [r for r in caplog.records if "negative" in r.getMessage()]


# ------------------------------------------------------------------ scenario and batch keys


def _scenario(tmp_path: Path, files, **inputs: str) -> Path:
    extra = "".join(f'{k} = "{v}"\n' for k, v in inputs.items())
    path = tmp_path / "s.toml"
    path.write_text(f'name = "datum-test"\n[inputs]\nnetwork = "{NETWORK}"\ninstitutions = "{files["gcj"]}"\n'
                    f'population = "{files["population"]}"\n{extra}[analysis]\nisochrones = false\n', encoding="utf-8")
    return path


def test_scenario_population_coords_key(tmp_path, files, baseline):
    from planner import InvalidValueError

    s = load_scenario(_scenario(tmp_path, files, coords="gcj02"))
    assert (s.inputs.coords, s.inputs.population_coords) == ("gcj02", "wgs84")
    assert load_scenario(_scenario(tmp_path, files, population_coords="gcj02")).inputs.population_coords == "gcj02"
    with pytest.raises(InvalidValueError, match=r"line 6: 'inputs.population_coords' 'mars' is not a known datum"):
        load_scenario(_scenario(tmp_path, files, population_coords="mars"))

    res = CliRunner().invoke(app, ["run", str(_scenario(tmp_path, files, coords="gcj02")), "--out-root",
                                   str(tmp_path / "out"), "-q", "--no-cache"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "out" / "datum-test" / "summary.json").read_text(encoding="utf-8"))
    assert summary["population_total"] == baseline[1]["population_total"]
    assert summary["coverage_pct"] == pytest.approx(baseline[1]["coverage_pct"], abs=1e-6)


def test_batch_population_coords_key(tmp_path, files):
    f = tmp_path / "b.toml"
    f.write_text(f'[defaults]\nnetwork = "{NETWORK}"\ninstitutions = "{files["gcj"]}"\npopulation = "{files["population"]}"\n'
                 'coords = "gcj02"\n[[case]]\nname = "a"\n[[case]]\nname = "b"\npopulation_coords = "gcj02"\n', encoding="utf-8")
    a, b = load_batch(f)
    assert (a.coords, a.population_coords, b.population_coords) == ("gcj02", "wgs84", "gcj02")


def test_candidates_coords_is_the_candidates_files_datum(files):
    from planner.pipeline import run_siting

    wgs = pd.read_csv(files["wgs"])
    common = {"n_sites": 1, "marginal": False, "coords": "gcj02"}
    # institutions in GCJ-02, candidates in WGS-84: before the fix --coords moved the candidates too
    run = run_siting(NETWORK, files["gcj"], files["population"], candidates=files["wgs"], **common)
    assert run.summary["inputs"]["candidates_coords"] == "wgs84"
    got = run.candidates.set_index("name").loc[wgs["name"], ["lon", "lat"]].to_numpy()
    assert np.abs(got - wgs[["lon", "lat"]].to_numpy()).max() < 1e-9
    run = run_siting(NETWORK, files["gcj"], files["population"], candidates=files["gcj"], candidates_coords="gcj02", **common)
    got = run.candidates.set_index("name").loc[wgs["name"], ["lon", "lat"]].to_numpy()
    assert np.abs(got - wgs[["lon", "lat"]].to_numpy()).max() < 1e-9
