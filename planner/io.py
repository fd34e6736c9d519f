"""Read inputs and write outputs safely.

Reading: tables (CSV, Excel) and vector layers (GeoPackage, GeoJSON, shapefile,
GeoParquet) with one-line errors that name the file; OSM extracts (``.osm`` XML
or ``.osm.pbf``) through pyosmium.

Writing: :func:`output_dir` gives a temporary folder next to the destination;
files appear in the destination only when every step succeeded, so partial
results never masquerade as complete ones. Inputs are only ever opened for
reading.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ._errors import InputFileError, NoCrsError

logger = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xls")
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".parquet", ".geoparquet", ".fgb")
OSM_SUFFIXES = (".osm", ".osm.pbf", ".pbf", ".osm.xml")
RASTER_SUFFIXES = (".tif", ".tiff")
_CSV_ENCODINGS = ("utf-8-sig", "gb18030")  # Excel in China often saves CSV as GBK


def suffix_of(path: str | os.PathLike[str]) -> str:
    """Return the lower-case suffix of `path`, keeping ``.osm.pbf`` whole.

    Parameters
    ----------
    path
        A file path.

    Returns
    -------
    suffix
        For example ``".gpkg"`` or ``".osm.pbf"``.
    """
    name = Path(path).name.lower()
    for double in (".osm.pbf", ".osm.xml"):
        if name.endswith(double):
            return double
    return Path(name).suffix


def check_input(path: str | os.PathLike[str], *, what: str, suffixes: tuple[str, ...]) -> Path:
    """Check that an input file exists and has a supported format.

    Parameters
    ----------
    path
        The file given by the user.
    what
        What the file is for, e.g. ``"institutions"``; used in messages.
    suffixes
        Accepted suffixes.

    Returns
    -------
    path
        The path as a `Path`.

    Raises
    ------
    InputFileError
        If the file does not exist, is a folder or has another suffix.
    """
    p = Path(path)
    if not p.exists():
        msg = f"{p}: file not found (the {what} file); fix: check the path and spelling"
        raise InputFileError(msg)
    if p.is_dir():
        msg = f"{p}: is a folder, not a file (the {what} file); fix: give the file inside it"
        raise InputFileError(msg)
    sfx = suffix_of(p)
    if sfx not in suffixes:
        msg = (f"{p}: unknown format '{sfx or '(no suffix)'}' for the {what} file; "
               f"fix: use one of {', '.join(suffixes)}")
        raise InputFileError(msg)
    return p


def _sniff_separator(path: Path, encoding: str) -> str:
    """Separator of a delimited text file: comma, semicolon, tab or pipe (comma when unclear, e.g. one column)."""
    with path.open(encoding=encoding, newline="") as f:
        sample = f.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_table(path: str | os.PathLike[str], *, what: str) -> pd.DataFrame:
    """Read a CSV or Excel table, or a vector layer, without modifying it.

    CSV files are tried as UTF-8 (with or without BOM), then GB18030, the
    superset of the GBK encoding that Chinese Excel uses.

    Parameters
    ----------
    path
        Table or vector file.
    what
        What the file is for; used in messages.

    Returns
    -------
    table
        A DataFrame, or a GeoDataFrame for vector formats.

    Raises
    ------
    InputFileError
        If the file is missing, of an unknown format, empty or unreadable.
    NoCrsError
        If a vector layer has no CRS.
    """
    p = check_input(path, what=what, suffixes=TABLE_SUFFIXES + VECTOR_SUFFIXES)
    sfx = suffix_of(p)
    if sfx in VECTOR_SUFFIXES:
        return read_vector(p, what=what)
    try:
        if sfx in (".xlsx", ".xls"):
            df = pd.read_excel(p)
        else:
            df = None
            for enc in _CSV_ENCODINGS:
                try:
                    sep = "\t" if sfx == ".tsv" else _sniff_separator(p, enc)
                    df = pd.read_csv(p, sep=sep, encoding=enc)
                    break
                except UnicodeDecodeError:
                    continue
            if df is None:
                msg = f"{p}: cannot decode the text (tried UTF-8 and GBK); fix: save it as UTF-8 CSV"
                raise InputFileError(msg)
    except InputFileError:
        raise
    except pd.errors.EmptyDataError:
        msg = f"{p}: the {what} file is empty; fix: add a header row and data rows"
        raise InputFileError(msg) from None
    except Exception as exc:  # noqa: BLE001 - report any reader failure in one line
        msg = f"{p}: cannot read the {what} table ({type(exc).__name__}: {exc}); fix: check the file opens in a spreadsheet program"
        raise InputFileError(msg.replace("\n", " ")) from None
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        msg = f"{p}: the {what} table has no data rows; fix: add rows below the header"
        raise InputFileError(msg)
    return df


def read_vector(path: str | os.PathLike[str], *, what: str, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read a vector layer and require a CRS.

    Parameters
    ----------
    path
        GeoPackage, GeoJSON, shapefile, GeoParquet or FlatGeobuf.
    what
        What the file is for; used in messages.
    layer
        Layer name for multi-layer files; the first layer by default.

    Returns
    -------
    gdf
        The features, in their own CRS.

    Raises
    ------
    InputFileError
        If the file is missing, unreadable or empty.
    NoCrsError
        If the layer has no CRS.
    """
    p = check_input(path, what=what, suffixes=VECTOR_SUFFIXES)
    try:
        if suffix_of(p) in (".parquet", ".geoparquet"):
            gdf = gpd.read_parquet(p)
        else:
            gdf = gpd.read_file(p, layer=layer)
    except Exception as exc:  # noqa: BLE001 - report any reader failure in one line
        msg = f"{p}: cannot read the {what} layer ({type(exc).__name__}: {exc}); fix: check it opens in QGIS"
        raise InputFileError(msg.replace("\n", " ")) from None
    if len(gdf) == 0:
        msg = f"{p}: the {what} layer has no features; fix: check the file and layer"
        raise InputFileError(msg)
    if gdf.crs is None:
        hint = "add the missing .prj file" if suffix_of(p) == ".shp" else "set the layer's CRS (e.g. EPSG:4326) in QGIS"
        msg = f"{p}: the {what} layer has no CRS, so its coordinates cannot be placed; fix: {hint}"
        raise NoCrsError(msg)
    gdf.columns = [str(c).strip() if c != gdf.geometry.name else c for c in gdf.columns]
    return gdf


def write_osm_subset(src: Path, dst: Path, *, keep_way: Any) -> tuple[int, int]:
    """Copy the ways accepted by `keep_way`, and their nodes, to an OSM XML file.

    Works for ``.osm`` and ``.osm.pbf`` alike (pyosmium reads both).

    Parameters
    ----------
    src
        OSM extract to read.
    dst
        OSM XML file to write.
    keep_way
        Callable taking a tag mapping and returning True to keep the way.

    Returns
    -------
    counts
        Number of ways and nodes written.
    """
    import osmium

    way_ids: set[int] = set()
    node_ids: set[int] = set()
    for obj in osmium.FileProcessor(str(src), osmium.osm.WAY):
        tags = {t.k: t.v for t in obj.tags}
        if keep_way(tags):
            way_ids.add(obj.id)
            node_ids.update(n.ref for n in obj.nodes)
    if dst.exists():
        dst.unlink()
    writer = osmium.SimpleWriter(str(dst))
    try:
        for obj in osmium.FileProcessor(str(src), osmium.osm.NODE | osmium.osm.WAY):
            if (obj.is_node() and obj.id in node_ids) or (obj.is_way() and obj.id in way_ids):
                writer.add(obj)
    finally:
        writer.close()
    return len(way_ids), len(node_ids)


def read_osm_pois(path: Path, *, keep: Any) -> pd.DataFrame:
    """Read points of interest (nodes and ways) accepted by `keep` from an OSM extract.

    A way becomes the mean of its node coordinates; relations are counted and
    reported in the log but not placed.

    Parameters
    ----------
    path
        ``.osm`` or ``.osm.pbf`` file.
    keep
        Callable taking a tag mapping and returning True to keep the object.

    Returns
    -------
    pois
        Columns ``osm_type, osm_id, lon, lat`` plus every tag.
    """
    try:
        rows, skipped_relations = _collect_osm_pois(path, keep=keep)
    except RuntimeError as exc:  # pyosmium reports unreadable XML/PBF as RuntimeError
        msg = f"{path}: cannot read this OSM file ({exc}); fix: check it is a valid .osm or .osm.pbf extract"
        raise InputFileError(msg.replace("\n", " ")) from None
    if skipped_relations:
        logger.warning("%s: %d matching OSM relations were not placed (only nodes and ways are read)",
                       path, skipped_relations)
    return pd.DataFrame(rows)


def _collect_osm_pois(path: Path, *, keep: Any) -> tuple[list[dict[str, Any]], int]:
    """Collect the matching nodes and ways of an OSM file, and count matching relations."""
    import osmium

    rows: list[dict[str, Any]] = []
    skipped_relations = 0
    fp = osmium.FileProcessor(str(path)).with_locations()
    for obj in fp:
        tags = {t.k: t.v for t in obj.tags}
        if not tags or not keep(tags):
            continue
        if obj.is_node():
            lon, lat = obj.location.lon, obj.location.lat
            kind = "node"
        elif obj.is_way():
            pts = [(n.lon, n.lat) for n in obj.nodes if n.location.valid()]
            if not pts:
                continue
            arr = np.asarray(pts)
            if len(arr) > 1 and np.allclose(arr[0], arr[-1]):
                arr = arr[:-1]
            lon, lat = float(arr[:, 0].mean()), float(arr[:, 1].mean())
            kind = "way"
        else:
            skipped_relations += 1
            continue
        rows.append({"osm_type": kind, "osm_id": obj.id, "lon": lon, "lat": lat, **tags})
    return rows, skipped_relations


@contextlib.contextmanager
def output_dir(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Give a temporary folder whose files move into `out` only on success.

    On an exception nothing is moved; the temporary folder is removed and an
    ``error.log`` naming the error is written to `out`.

    Parameters
    ----------
    out
        Destination folder; created if needed.

    Yields
    ------
    tmp
        Folder to write outputs into.
    """
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=dest))
    try:
        yield tmp
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        write_error_log(dest, exc)
        raise
    for item in sorted(tmp.iterdir()):
        target = dest / item.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(item, target)
    shutil.rmtree(tmp, ignore_errors=True)
    stale = dest / "error.log"
    if stale.exists():
        stale.unlink()


def write_error_log(dest: str | os.PathLike[str], exc: BaseException) -> None:
    """Write ``error.log`` into `dest` saying the run failed and why.

    Parameters
    ----------
    dest
        Output folder (created if needed).
    exc
        The error.
    """
    text = (f"planner run FAILED; no new results were written (any other files here are from an earlier run).\n"
            f"{type(exc).__name__}: {exc}\n")
    with contextlib.suppress(OSError):
        Path(dest).mkdir(parents=True, exist_ok=True)
        (Path(dest) / "error.log").write_text(text, encoding="utf-8")


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write `data` as indented UTF-8 JSON with Chinese characters kept readable.

    Parameters
    ----------
    data
        JSON-serialisable mapping (numpy scalars are converted).
    path
        Output file.
    """
    def _default(o: Any) -> Any:
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return None if np.isnan(o) else float(o)
        if isinstance(o, np.bool_):
            return bool(o)
        if isinstance(o, Path):
            return str(o)
        msg = f"not JSON serialisable: {type(o).__name__}"
        raise TypeError(msg)

    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=_default) + "\n", encoding="utf-8")
