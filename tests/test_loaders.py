"""Loaders on real data: institutions, population and road networks.

Expected numbers were measured on the shipped files in ``geodata/`` and, where
possible, checked against ``geodata/README.md`` or an independent computation
(rasterio / geopandas / OSMnx directly).
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely

from planner import EmptyNetworkError, InputFileError, InvalidValueError, MissingColumnError, datasets, datum, network, settings
from planner.demand import load_population
from planner.institutions import load_institutions

DATA = Path(__file__).parent / "data"
GRADED_CSV = DATA / "graded_institutions.csv"


# --------------------------------------------------------------------------- institutions


@pytest.fixture(scope="module")
def wuhan_institutions() -> gpd.GeoDataFrame:
    return load_institutions(datasets.get_path("wuhan_institutions"))


def test_wuhan_institutions_rows_and_ids(wuhan_institutions):
    inst = wuhan_institutions
    assert len(inst) == 200
    assert inst.index.name == "facility_id"
    assert inst.index.is_unique
    assert all(re.fullmatch(r"(way|node)/\d+", i) for i in inst.index)
    # geodata/README.md: 38 OSM nodes and 162 ways, 186 of them named
    assert inst.index.str.startswith("way/").sum() == 162
    assert inst.index.str.startswith("node/").sum() == 38
    assert inst.crs.to_epsg() == 4326
    np.testing.assert_array_equal(inst.geometry.x.to_numpy(), inst["lon"].to_numpy())
    np.testing.assert_array_equal(inst.geometry.y.to_numpy(), inst["lat"].to_numpy())


def test_wuhan_institutions_unnamed_are_labelled(wuhan_institutions):
    inst = wuhan_institutions
    unnamed = inst[inst["name"].str.startswith("未命名机构")]
    assert len(unnamed) == 14
    assert len(inst) - len(unnamed) == 186
    for fid, name in unnamed["name"].items():
        assert name == f"未命名机构 (unnamed, id {fid})"
    # an unnamed institution gets no name-rule guess, only the default tier
    assert set(unnamed["tier_source"]) == {"default"}
    assert set(unnamed["tier"]) == {"secondary"}


def test_wuhan_institutions_tiers(wuhan_institutions):
    inst = wuhan_institutions
    assert inst["tier"].value_counts().to_dict() == {"secondary": 118, "tertiary": 51, "primary": 27, "station": 4}
    # the file has no grade column: every tier is a name rule or the default
    assert inst["tier_source"].value_counts().to_dict() == {"name_rule": 181, "default": 19}
    # 14 unnamed + 5 named that no rule recognises (e.g. 黄石结核病防治院, 武汉市职业病防治院)
    named_default = inst[(inst["tier_source"] == "default") & ~inst["name"].str.startswith("未命名机构")]
    assert sorted(named_default["name"]) == sorted(
        ["黄石结核病防治院", "武汉市职业病防治院", "黄冈市健康管理中心", "湖北精准医学中心", "黄州区疾病预防控制中心"])


@pytest.mark.parametrize(("name", "facility_id", "tier"), [
    ("关山街社区卫生服务站", "node/1282454828", "station"),
    ("左岭社区卫生服务中心", "way/1135390493", "primary"),
    ("武汉协和医院", "way/690674886", "tertiary"),
    ("新洲区中医医院", "way/947982496", "secondary"),
])
def test_wuhan_institutions_tier_by_name(wuhan_institutions, name, facility_id, tier):
    row = wuhan_institutions.loc[facility_id]
    assert row["name"] == name
    assert row["tier"] == tier
    assert row["tier_source"] == "name_rule"


def _graded_expected() -> pd.DataFrame:
    return pd.DataFrame({
        "name": ["武汉协和医院", "武汉市第五医院", "关山街社区卫生服务中心", "关山街社区卫生服务站", "黄石结核病防治院",
                 "光谷佳园社区卫生服务中心"],
        "tier": ["tertiary", "secondary", "primary", "station", "secondary", "primary"],
        # 无等级 (no grade) and a blank cell fall back to the name rules
        "tier_source": ["column", "column", "column", "name_rule", "default", "name_rule"],
    }, index=pd.Index([str(i) for i in range(1, 7)], name="facility_id"))


def test_csv_grade_column_wins_and_falls_back_to_names():
    inst = load_institutions(GRADED_CSV)
    pd.testing.assert_frame_equal(inst[["name", "tier", "tier_source"]], _graded_expected())
    # the grade column beats the name rule: 武汉市第五医院 would be 'tertiary' by name (市第…医院)
    from planner.institutions import classify_tier
    assert classify_tier("武汉市第五医院") == ("tertiary", "name_rule")
    np.testing.assert_array_equal(inst["capacity"].to_numpy(), [5000, 800, 60, np.nan, np.nan, np.nan])
    assert inst["lon"].iloc[0] == pytest.approx(114.2766) and inst["lat"].iloc[0] == pytest.approx(30.5874)


def test_gbk_csv_reads_like_utf8(tmp_path):
    gbk = tmp_path / "机构_gbk.csv"
    gbk.write_bytes(GRADED_CSV.read_text(encoding="utf-8").encode("gbk"))
    with pytest.raises(UnicodeDecodeError):
        gbk.read_bytes().decode("utf-8")  # really not UTF-8
    inst = load_institutions(gbk)
    pd.testing.assert_frame_equal(inst, load_institutions(GRADED_CSV))


def test_xlsx_reads_like_csv(tmp_path):
    import openpyxl

    df = pd.read_csv(GRADED_CSV, encoding="utf-8")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(df.columns))
    for row in df.itertuples(index=False):
        ws.append([None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in row])
    xlsx = tmp_path / "机构.xlsx"
    wb.save(xlsx)
    inst = load_institutions(xlsx)
    pd.testing.assert_frame_equal(inst, load_institutions(GRADED_CSV), check_dtype=False)


@pytest.mark.parametrize(("coords", "forward", "inverse"), [
    ("gcj02", datum.wgs84_to_gcj02, datum.gcj02_to_wgs84),
    ("bd09", datum.wgs84_to_bd09, datum.bd09_to_wgs84),
])
def test_shifted_datum_is_converted_back_to_wgs84(tmp_path, coords, forward, inverse):
    wgs_lon = np.array([114.2766, 114.5003, 116.6544])
    wgs_lat = np.array([30.5874, 30.4917, 26.2633])
    lon, lat = forward(wgs_lon, wgs_lat)
    csv = tmp_path / f"{coords}.csv"
    pd.DataFrame({"name": ["甲医院", "乙社区卫生服务中心", "丙卫生室"], "lon": lon, "lat": lat}).to_csv(csv, index=False)
    inst = load_institutions(csv, coords=coords)
    exp_lon, exp_lat = inverse(lon, lat)
    np.testing.assert_allclose(inst["lon"], exp_lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(inst["lat"], exp_lat, rtol=0, atol=1e-9)
    np.testing.assert_allclose(inst["lon"], wgs_lon, rtol=0, atol=1e-7)  # ~1 cm
    np.testing.assert_allclose(inst["lat"], wgs_lat, rtol=0, atol=1e-7)
    # the shift really was applied: the table's coordinates are hundreds of metres off
    shift_m = np.hypot((lon - wgs_lon) * 111_320 * np.cos(np.radians(wgs_lat)), (lat - wgs_lat) * 110_574)
    assert (shift_m > 100).all()
    # read as WGS-84 they stay where they are
    raw = load_institutions(csv)
    np.testing.assert_allclose(raw["lon"], lon, rtol=0, atol=1e-12)


def test_osm_pois_ninghua_county_centre():
    inst = load_institutions(datasets.get_path("ninghua_osm"))
    assert inst.index.tolist() == ["way/1225596093"]
    row = inst.iloc[0]
    assert row["name"] == "翠江社区卫生服务中心"
    assert (row["tier"], row["tier_source"]) == ("primary", "name_rule")
    # intake notes: ≈ 26.263305 N, 116.654408 E (the way's mean vertex is within ~10 m)
    assert row["lat"] == pytest.approx(26.263305, abs=1e-4)
    assert row["lon"] == pytest.approx(116.654408, abs=1e-4)


def test_osm_pbf_and_xml_give_identical_institutions():
    xml = load_institutions(datasets.get_path("haidian_bupt_osm"))
    pbf = load_institutions(datasets.get_path("haidian_bupt_pbf"))
    pd.testing.assert_frame_equal(xml, pbf)
    assert xml.index.tolist() == ["way/344373140", "way/959801254"]
    assert xml["name"].tolist() == ["校医院（北京邮电大学社区卫生服务中心）", "北京中仁中医医院"]
    assert xml["tier"].tolist() == ["primary", "secondary"]


def test_osm_file_without_medical_pois_is_an_error():
    with pytest.raises(InvalidValueError, match=r"no_highway\.osm: no medical institutions.*fix:"):
        load_institutions(DATA / "no_highway.osm")


@pytest.mark.parametrize("content", [b"", b"this is not OSM XML\n"])
def test_unreadable_osm_institutions_is_an_input_error(tmp_path, content):
    bad = tmp_path / "broken.osm"
    bad.write_bytes(content)
    with pytest.raises(InputFileError, match=r"broken\.osm: cannot read this OSM file .*; fix:"):
        load_institutions(bad)


def test_institution_table_errors_name_column_and_row(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("name,lng,纬度\nA,114.5,30.5\nB,114.6,30.4\nC,114.6 E,30.4\n", encoding="utf-8")
    with pytest.raises(InvalidValueError, match=r"t\.csv: row 3, column 'lng' \(longitude\): '114\.6 E' is not a number"):
        load_institutions(csv)
    csv.write_text("name,lng,lati\nA,114.5,30.5\n", encoding="utf-8")
    with pytest.raises(MissingColumnError, match=r"t\.csv: no latitude column \(columns: name, lng, lati\); fix: name it 'lat'"):
        load_institutions(csv)


# --------------------------------------------------------------------------- population

BOX = shapely.box(114.30, 30.55, 114.32, 30.57)


@pytest.fixture(scope="module")
def raster_truth() -> tuple[float, int]:
    """Independent sum: every pixel of the whole raster whose centre is inside BOX."""
    with rasterio.open(datasets.get_path("wuhan_population")) as src:
        band = src.read(1)
        nodata = src.nodata
        rows, cols = np.mgrid[0:src.height, 0:src.width]
        xs, ys = src.transform * (cols + 0.5, rows + 0.5)
    valid = (band != nodata) & np.isfinite(band) & (band > 0)
    inside = (xs > 114.30) & (xs < 114.32) & (ys > 30.55) & (ys < 30.57)
    sel = band[inside & valid].astype("float64")
    return float(sel.sum()), int(sel.size)


def test_population_in_box_matches_independent_sum(raster_truth):
    cells = load_population(datasets.get_path("wuhan_population"), study_area=BOX)
    total, n = raster_truth
    assert float(cells["population"].sum()) == pytest.approx(51316.46, abs=0.01)
    assert float(cells["population"].sum()) == pytest.approx(total, rel=1e-12)
    assert len(cells) == n == 485
    assert cells.index.name == "cell_id" and cells.crs.to_epsg() == 4326
    # every cell is one ~100 m pixel and its centre is inside the box
    assert np.allclose(cells.geometry.bounds["maxx"] - cells.geometry.bounds["minx"], 1 / 1200, rtol=1e-6)
    c = shapely.centroid(cells.geometry.to_numpy())
    assert shapely.contains(BOX, c).all()


def test_population_aggregation_preserves_total():
    path = datasets.get_path("wuhan_population")
    fine = load_population(path, study_area=BOX)
    coarse = load_population(path, study_area=BOX, cell_size_m=500)
    assert float(coarse["population"].sum()) == pytest.approx(float(fine["population"].sum()), rel=1e-12)
    assert len(coarse) < len(fine)
    # 500 m / (0.000833° ≈ 80 m at 30.6° N) → blocks of 6 x 6 pixels
    width = (coarse.geometry.bounds["maxx"] - coarse.geometry.bounds["minx"]).to_numpy()
    np.testing.assert_allclose(width, 6 / 1200, rtol=1e-6)


def test_population_whole_raster_total_matches_readme():
    cells = load_population(datasets.get_path("wuhan_population"), cell_size_m=500)
    # geodata/README.md: the grid totals 9,491,334 persons aged 20+
    assert round(float(cells["population"].sum())) == 9_491_334


def test_population_points_aggregate_into_100m_cells(tmp_path):
    # points placed at known UTM 50N positions, >= 20 m from any 100 m cell edge
    utm = [(255_020, 3_375_030, 10.0), (255_080, 3_375_070, 5.5),   # same cell (2550, 33750)
           (255_150, 3_375_050, 7.0),                                # east neighbour
           (255_050, 3_375_150, 0.0),                                # empty: dropped
           (256_030, 3_376_040, 12.25), (256_070, 3_376_060, 1.0), (256_040, 3_376_075, 2.0)]
    x, y, pop = (np.array(v) for v in zip(*utm, strict=True))
    pts = gpd.GeoSeries(gpd.points_from_xy(x, y), crs="EPSG:32650").to_crs("EPSG:4326")
    csv = tmp_path / "pop_points.csv"
    pd.DataFrame({"lon": pts.x.round(8), "lat": pts.y.round(8), "人口": pop}).to_csv(csv, index=False)
    cells = load_population(csv)
    assert float(cells["population"].sum()) == pytest.approx(pop.sum())
    assert sorted(cells["population"].round(6).tolist()) == [7.0, 15.25, 15.5]
    # cells are 100 m squares in UTM, each holding its own points' population
    sq = cells.to_crs("EPSG:32650").set_index("population").geometry
    np.testing.assert_allclose(sq.area, 10_000, rtol=1e-6)
    assert sq.loc[15.5].bounds == pytest.approx((255_000, 3_375_000, 255_100, 3_375_100), abs=1e-6)
    assert sq.loc[7.0].bounds == pytest.approx((255_100, 3_375_000, 255_200, 3_375_100), abs=1e-6)
    assert sq.loc[15.25].bounds == pytest.approx((256_000, 3_376_000, 256_100, 3_376_100), abs=1e-6)
    # and 250 m cells merge the first two
    big = load_population(csv, cell_size_m=250)
    assert sorted(big["population"].round(6).tolist()) == [15.25, 22.5]


def test_negative_population_is_an_error(tmp_path):
    csv = tmp_path / "pop.csv"
    csv.write_text("lon,lat,population\n114.50,30.49,100\n114.51,30.48,-5\n", encoding="utf-8")
    with pytest.raises(InvalidValueError, match=r"pop\.csv: row 2, column 'population': population -5\.0 is negative; fix:"):
        load_population(csv)


def test_population_outside_raster_is_an_error():
    far = shapely.box(116.30, 39.90, 116.40, 39.99)  # Beijing, outside the Wuhan raster
    with pytest.raises(InvalidValueError, match=r"population_age20plus_100m\.tif: no populated cells .*fix:"):
        load_population(datasets.get_path("wuhan_population"), study_area=far)


# --------------------------------------------------------------------------- road networks


def _two_way(G: nx.MultiDiGraph) -> bool:
    return all(G.has_edge(v, u) for u, v in G.edges())


def test_osm_xml_and_pbf_give_the_same_walk_graph(guanggu_walk):
    G_xml, _ = guanggu_walk
    G_pbf = network.load_network(datasets.get_path("guanggu_pbf"), mode="walk")
    for G in (G_xml, G_pbf):
        # OSMnx's reference engine, which merges chains across OSM ways, gives 449 nodes and 1,372 edges; the
        # array engine keeps a node where one way meets another, so that each piece has one way id and class
        assert (len(G), G.number_of_edges()) == (474, 1422)
        assert (G.graph["dropped_nodes"], G.graph["dropped_edges"]) == (35, 82)
    assert set(G_xml.nodes) == set(G_pbf.nodes)
    assert network.network_stats(G_xml)["edge_length_km"] == network.network_stats(G_pbf)["edge_length_km"]
    assert nx.is_weakly_connected(G_xml)
    assert _two_way(G_xml)  # walking ignores one-way streets


def test_drive_graph_respects_one_ways(guanggu_walk, guanggu_drive):
    G_walk, _ = guanggu_walk
    G_drive, _ = guanggu_drive
    assert (len(G_drive), G_drive.number_of_edges()) == (374, 705)  # the osmnx reference engine: (356, 686)
    assert G_drive.number_of_edges() < G_walk.number_of_edges()
    assert not _two_way(G_drive)
    assert nx.is_strongly_connected(G_drive)
    # no footways etc. for driving
    classes = {c for _, _, h in G_drive.edges(data="highway") for c in (h if isinstance(h, list) else [h])}
    assert not classes & settings.EXCLUDED_HIGHWAYS["drive"]


def test_centreline_layer_graph():
    G = network.load_network(datasets.get_path("wuhan_roads"), mode="walk")
    # README: snapping endpoints gives 5,315 nodes; the 1 m tolerance merges a few more and the
    # walk mode drops the 4 motorway segments and 3 'construction' ones
    assert len(G) == 5300
    assert G.number_of_edges() == 15818
    assert G.graph["dropped_nodes"] == 0
    assert nx.is_weakly_connected(G)
    assert _two_way(G)
    assert G.graph["crs"].to_epsg() == 32650
    # NULL class → 'unclassified'
    assert sum(1 for *_, h in G.edges(data="highway") if h == "unclassified") > 10_000


def test_speed_override_sets_travel_times():
    G = network.load_network(datasets.get_path("guanggu_osm"), mode="walk", speed_kph=3.2)
    for _, _, d in G.edges(data=True):
        assert d["speed_kph"] == 3.2
        assert d["travel_time"] == pytest.approx(d["length"] / (3.2 / 3.6), rel=1e-12)
    assert G.graph["speed_kph_override"] == 3.2


def test_default_walk_speed(guanggu_walk):
    G, _ = guanggu_walk
    for _, _, d in G.edges(data=True):
        assert d["travel_time"] == pytest.approx(d["length"] / (settings.WALK_SPEED_KPH / 3.6), rel=1e-12)


def test_network_without_roads_is_an_error():
    with pytest.raises(EmptyNetworkError, match=r"no_highway\.osm: no roads usable for mode 'walk'.*fix:"):
        network.load_network(DATA / "no_highway.osm", mode="walk")


@pytest.mark.parametrize(("name", "content"), [("broken.osm", b"<osm version='0.6'><node id="), ("broken.osm.pbf", b"garbage")])
def test_unreadable_osm_network_is_an_input_error(tmp_path, name, content):
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(InputFileError, match=rf"{re.escape(name)}: cannot read this OSM file .*; fix:"):
        network.load_network(bad, mode="walk")
