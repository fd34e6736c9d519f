"""Shared fixtures: real shipped extracts (session-scoped) and a hand-computable toy network."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from planner import datasets, network, settings, travel_time

TOY_CRS = "EPSG:32650"  # UTM 50N, metres
X0, Y0 = 500_000.0, 3_380_000.0  # near Wuhan


@pytest.fixture(scope="session")
def guanggu_walk():
    G = network.load_network(datasets.get_path("guanggu_osm"), mode="walk")
    return G, travel_time.compile_network(G)


@pytest.fixture(scope="session")
def guanggu_drive():
    G = network.load_network(datasets.get_path("guanggu_osm"), mode="drive")
    return G, travel_time.compile_network(G)


@pytest.fixture
def one_mps(monkeypatch):
    """Walking (and access) speed of exactly 1 m/s, so seconds equal metres."""
    monkeypatch.setattr(settings, "WALK_SPEED_KPH", 3.6)
    monkeypatch.setattr(settings, "ACCESS_SPEED_KPH", None)


def toy_xy(x: float, y: float) -> tuple[float, float]:
    return X0 + x, Y0 + y


@pytest.fixture
def toy_roads(tmp_path: Path) -> Path:
    """A T-shaped road network: A(0,0)-B(500,0)-C(1000,0) and B-D(500,600), metres."""
    lines = [
        shapely.LineString([toy_xy(0, 0), toy_xy(500, 0)]),
        shapely.LineString([toy_xy(500, 0), toy_xy(1000, 0)]),
        shapely.LineString([toy_xy(500, 0), toy_xy(500, 600)]),
    ]
    path = tmp_path / "toy_roads.gpkg"
    gpd.GeoDataFrame({"road_id": [1, 2, 3]}, geometry=lines, crs=TOY_CRS).to_file(path, layer="roads")
    return path


def toy_cells(points: list[tuple[float, float]], population: list[float]) -> gpd.GeoDataFrame:
    """Tiny square cells (2 m) centred on toy coordinates, in EPSG:4326."""
    geoms = [shapely.box(*(np.array(toy_xy(x, y)) - 1), *(np.array(toy_xy(x, y)) + 1)) for x, y in points]
    g = gpd.GeoDataFrame({"population": population}, geometry=geoms, crs=TOY_CRS).to_crs("EPSG:4326")
    g.index.name = "cell_id"
    return g


def toy_points(points: list[tuple[float, float]], ids: list[str], **cols) -> gpd.GeoDataFrame:
    g = gpd.GeoDataFrame(cols, geometry=[shapely.Point(toy_xy(x, y)) for x, y in points], crs=TOY_CRS,
                         index=__import__("pandas").Index(ids, name="facility_id")).to_crs("EPSG:4326")
    return g
