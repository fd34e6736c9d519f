"""Every cell coverage counts as reached lies inside the isochrone that illustrates it (Wuhan walk and drive)."""

from __future__ import annotations

import folium
import numpy as np
import pytest
import shapely

from planner import datasets, isochrones, maps, settings, travel_time
from planner.pipeline import run_coverage

WUHAN = {"network": "wuhan_roads", "institutions": "wuhan_institutions", "population": "wuhan_population",
         "boundaries": "wuhan_districts"}
CASES = {"walk": (5.0, 10.0, 15.0), "drive": (15.0, 30.0)}  # the Makefile's walk run and the drive run


@pytest.fixture(scope="module", params=sorted(CASES))
def wuhan_run(request):
    mode = request.param
    run = run_coverage(*(datasets.get_path(WUHAN[k]) for k in ("network", "institutions", "population")),
                       boundaries=datasets.get_path(WUHAN["boundaries"]), mode=mode, minutes=CASES[mode])
    return mode, run


def _geojson_layers(element) -> list:
    found = [element] if isinstance(element, folium.GeoJson) else []
    for child in element._children.values():
        found += _geojson_layers(child)
    return found


def _inside(poly: shapely.Geometry, xy: np.ndarray) -> np.ndarray:
    shapely.prepare(poly)
    return shapely.contains_xy(poly, xy[:, 0], xy[:, 1])


def test_each_institution_polygon_holds_the_cells_it_reaches(wuhan_run):
    mode, run = wuhan_run
    net, s = run.net, run.summary
    access_kph = settings.ACCESS_SPEED_KPH or settings.WALK_SPEED_KPH
    snap_c = travel_time.snap_points(net, run.cells, max_snap_m=s["max_snap_m"], access_speed_kph=access_kph)
    snap_f = travel_time.snap_points(net, run.institutions, max_snap_m=s["max_snap_m"], access_speed_kph=access_kph)
    od = travel_time.od_travel_times(net, snap_c, snap_f, max_minutes=max(CASES[mode]) + 0.01)
    od["minutes"] = (od["travel_time_s"] / 60.0).round(3)  # as coverage rounds travel_time_min
    xy = shapely.get_coordinates(run.cells.geometry.to_crs(net.crs).centroid)
    pos = run.cells.index.get_indexer(od["origin_id"])
    iso = run.isochrones.to_crs(net.crs).set_index(["facility_id", "minutes"]).geometry
    assert run.isochrones["facility_id"].nunique() == int(snap_f["snapped"].sum()) > 50
    checked = 0
    for (fid, m), poly in iso.items():
        hit = pos[(od["destination_id"] == fid).to_numpy() & (od["minutes"] <= m).to_numpy()]
        inside = _inside(poly, xy[hit])
        assert inside.all(), f"{mode} {fid} {m} min: {(~inside).sum()} of {len(hit)} reached cells outside"
        checked += len(hit)
    assert checked > 10_000


def test_dissolved_layers_hold_every_covered_cell(wuhan_run):
    mode, run = wuhan_run
    xy = shapely.get_coordinates(run.cells.geometry.to_crs(run.net.crs).centroid)
    diss = run.isochrones_dissolved.to_crs(run.net.crs)
    assert diss["tier"].tolist() == ["all"] * len(CASES[mode]) and diss["minutes"].tolist() == list(CASES[mode])
    t = run.cells["travel_time_min"].to_numpy(dtype=float)
    for m, poly in zip(diss["minutes"], diss.geometry, strict=True):
        covered = np.nan_to_num(t, nan=np.inf) <= m
        row = next(r for r in run.summary["thresholds"] if r["minutes"] == m)
        assert run.cells.loc[covered, "population"].sum() == pytest.approx(row["population_covered"], abs=0.5)
        assert _inside(poly, xy[covered]).all()
        # and little more than them: the polygon is made of the 50 m cells around reached points
        assert poly.area < 1.5 * covered.sum() * float(np.median(run.cells.to_crs(run.net.crs).area))
    # the map draws these very polygons (rounded to 1e-5 degrees), not a second union
    layers = _geojson_layers(maps.render_coverage_map(run, basemap="none"))
    drawn = {f["id"]: shapely.geometry.shape(f["geometry"]) for layer in layers
             for f in layer.data["features"] if str(f["id"]).startswith("isochrone-")}
    for mins, geom in zip(run.isochrones_dissolved["minutes"], run.isochrones_dissolved.geometry, strict=True):
        assert shapely.hausdorff_distance(drawn[f"isochrone-{mins:g}"], geom) < 2e-5


def test_dissolved_per_tier_holds_the_tier_coverage(wuhan_run):
    mode, run = wuhan_run
    s = run.summary
    access_kph = settings.ACCESS_SPEED_KPH or settings.WALK_SPEED_KPH
    snap_f = travel_time.snap_points(run.net, run.institutions, max_snap_m=s["max_snap_m"], access_speed_kph=access_kph)
    layers = isochrones.compute_isochrone_layers(run.net, run.institutions, snap_f, minutes=CASES[mode], samples=run.cells,
                                                 max_snap_m=s["max_snap_m"], access_speed_kph=access_kph, by_tier=True)
    diss = layers.dissolved.to_crs(run.net.crs)
    xy = shapely.get_coordinates(run.cells.geometry.to_crs(run.net.crs).centroid)
    tiers = [t for t in settings.TIERS if f"time_{t}_min" in run.cells]
    assert len(tiers) >= 3 and set(diss["tier"]) == {"all", *tiers}
    for tier, m, poly in zip(diss["tier"], diss["minutes"], diss.geometry, strict=True):
        col = "travel_time_min" if tier == "all" else f"time_{tier}_min"
        covered = np.nan_to_num(run.cells[col].to_numpy(dtype=float), nan=np.inf) <= m
        assert covered.sum() > 0 and _inside(poly, xy[covered]).all(), (tier, m)
    # the per-institution polygons are the ones the pipeline made
    assert layers.per_institution.geometry.geom_equals_exact(run.isochrones.geometry, tolerance=0).all()
