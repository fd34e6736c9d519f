"""Read inputs and write outputs safely.

Reading: tables (CSV, Excel) and vector layers (GeoPackage, GeoJSON, shapefile,
GeoParquet) with one-line errors that name the file; OSM extracts (``.osm`` XML
or ``.osm.pbf``) through pyosmium.

Writing: :func:`output_dir` builds a run's whole output folder under a hidden
sibling name, then swaps it in with one rename (``renameat2`` with
``RENAME_EXCHANGE`` on Linux), so a reader sees either the complete previous
set or the complete new set, and no file of an earlier run survives. A lock
file keeps a second run out of a folder being written, and a manifest
(``.planner-manifest.json``) lists the files planner wrote. Before anything
is loaded, :func:`check_output_dir` refuses an output folder that would
delete an input, holds files planner did not write (unless forced), is a
file, is read-only, or has a missing parent or too long a name. Inputs are
only ever opened for reading.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd

from ._errors import InputFileError, NoCrsError

# output folders (built aside and swapped in whole): see planner._publish
from ._publish import (  # noqa: F401 - re-exported as planner.io's public API
    ERROR_LOG_NAME,
    MANIFEST_NAME,
    check_output_dir,
    has_results,
    lock_output_dir,
    output_dir,
    remove_stale_partials,
    write_error_log,
)

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


def read_table(path: str | os.PathLike[str], *, what: str, dtype: Any = None) -> pd.DataFrame:
    """Read a CSV or Excel table, or a vector layer, without modifying it.

    CSV files are tried as UTF-8 (with or without BOM), then GB18030, the
    superset of the GBK encoding that Chinese Excel uses.

    Parameters
    ----------
    path
        Table or vector file.
    what
        What the file is for; used in messages.
    dtype
        Column type(s) for CSV and Excel tables, as pandas takes them; e.g.
        ``str`` keeps codes such as ``001`` as written. Vector layers keep
        their own types.

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
            df = pd.read_excel(p, dtype=dtype)
        else:
            df = None
            for enc in _CSV_ENCODINGS:
                try:
                    sep = "\t" if sfx == ".tsv" else _sniff_separator(p, enc)
                    df = pd.read_csv(p, sep=sep, encoding=enc, dtype=dtype)
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
        msg = (f"{p}: cannot read the {what} table ({type(exc).__name__}: {exc}); "
               "fix: check the file opens in a spreadsheet program")
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


class OsmSubset(NamedTuple):
    """What :func:`write_osm_subset` wrote, and what it had to leave out of a clipped extract."""

    #: Ways written (pieces of cut ways counted separately).
    ways: int
    #: Nodes written.
    nodes: int
    #: References of kept ways to nodes absent from the file (each occurrence).
    missing_refs: int
    #: Distinct node ids referenced by kept ways but absent from the file.
    missing_nodes: int
    #: Kept ways cut into pieces where their missing nodes were.
    ways_cut: int
    #: Kept ways dropped whole: fewer than 2 of their nodes are in the file.
    ways_dropped: int
    #: Original way id of every piece written under a new id (pieces after the first).
    piece_of: dict[int, int]


def write_osm_subset(src: Path, dst: Path, *, keep_way: Any) -> OsmSubset:
    """Copy the ways accepted by `keep_way`, and their nodes, to an OSM XML file.

    Works for ``.osm`` and ``.osm.pbf`` alike (pyosmium reads both). Clipped
    extracts (cut with a bounding box, as ``osmium extract`` or download
    services make them) have ways whose node references lie outside the
    file: those references are dropped and each way is cut where they were,
    so a way A-B-[missing]-C-D becomes the two ways A-B and C-D, and a piece
    with fewer than 2 nodes disappears. The first piece keeps the way's id;
    later pieces get new ids above every way id in the file, listed in
    ``piece_of``.

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
    subset
        Counts of ways and nodes written and of what was left out.
    """
    import osmium

    ways: list[tuple[int, list[int], dict[str, str]]] = []
    wanted: set[int] = set()
    max_way_id = 0
    for obj in osmium.FileProcessor(str(src), osmium.osm.WAY):
        max_way_id = max(max_way_id, obj.id)
        tags = {t.k: t.v for t in obj.tags}
        if keep_way(tags):
            refs = [n.ref for n in obj.nodes]
            ways.append((obj.id, refs, tags))
            wanted.update(refs)
    if dst.exists():
        dst.unlink()
    writer = osmium.SimpleWriter(str(dst))
    present: set[int] = set()
    missing_refs = ways_cut = ways_dropped = n_written = 0
    piece_of: dict[int, int] = {}
    try:
        for obj in osmium.FileProcessor(str(src), osmium.osm.NODE):
            if obj.id in wanted:
                present.add(obj.id)
                writer.add(obj)
        for way_id, refs, tags in ways:
            n_missing = sum(ref not in present for ref in refs)
            if not n_missing:
                writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=refs, tags=tags))
                n_written += 1
                continue
            missing_refs += n_missing
            pieces: list[list[int]] = [[]]
            for ref in refs:
                if ref in present:
                    pieces[-1].append(ref)
                elif pieces[-1]:
                    pieces.append([])
            kept = [nodes for nodes in pieces if len(set(nodes)) >= 2]
            ways_cut += bool(kept)
            ways_dropped += not kept
            for i, nodes in enumerate(kept):
                new_id = way_id
                if i:
                    max_way_id += 1
                    new_id = max_way_id
                    piece_of[new_id] = way_id
                writer.add_way(osmium.osm.mutable.Way(id=new_id, nodes=nodes, tags=tags))
                n_written += 1
    finally:
        writer.close()
    return OsmSubset(ways=n_written, nodes=len(present), missing_refs=missing_refs, missing_nodes=len(wanted - present),
                     ways_cut=ways_cut, ways_dropped=ways_dropped, piece_of=piece_of)


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
        rows, skipped_relations, partial, unplaced = _collect_osm_pois(path, keep=keep)
    except RuntimeError as exc:  # pyosmium reports unreadable XML/PBF as RuntimeError
        msg = f"{path}: cannot read this OSM file ({exc}); fix: check it is a valid .osm or .osm.pbf extract"
        raise InputFileError(msg.replace("\n", " ")) from None
    if skipped_relations:
        logger.warning("%s: %d matching OSM relations were not placed (only nodes and ways are read)",
                       path, skipped_relations)
    if partial or unplaced:
        logger.warning("%s: clipped extract: %d matching ways were placed from the part of their nodes inside the file, "
                       "%d with no node in the file were left out; fix: cut the extract with a larger box to keep them whole",
                       path, partial, unplaced)
    return pd.DataFrame(rows)


def _collect_osm_pois(path: Path, *, keep: Any) -> tuple[list[dict[str, Any]], int, int, int]:
    """Collect the matching nodes and ways of an OSM file; count matching relations, and ways missing nodes (clipped)."""
    import osmium

    rows: list[dict[str, Any]] = []
    skipped_relations = partial = unplaced = 0
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
                unplaced += 1
                continue
            partial += len(pts) < len(obj.nodes)
            arr = np.asarray(pts)
            if len(arr) > 1 and np.allclose(arr[0], arr[-1]):
                arr = arr[:-1]
            lon, lat = float(arr[:, 0].mean()), float(arr[:, 1].mean())
            kind = "way"
        else:
            skipped_relations += 1
            continue
        rows.append({"osm_type": kind, "osm_id": obj.id, "lon": lon, "lat": lat, **tags})
    return rows, skipped_relations, partial, unplaced


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


# Spreadsheet programs (Excel, WPS, LibreOffice) run a cell as a formula when its text begins with one of these
# (OWASP "CSV Injection", owasp.org/www-community/attacks/CSV_Injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise_text(text: str) -> str:
    """Make one spreadsheet cell inert: put a single quote before text that a spreadsheet would run as a formula.

    Follows OWASP's CSV-injection advice: no cell may begin with ``=``, ``+``, ``-``, ``@``, tab (0x09),
    carriage return (0x0D) or line feed (0x0A). Such text gets a leading ``'``, which Excel and WPS read
    as "this cell is text". Other text is returned unchanged.

    Parameters
    ----------
    text
        The cell's text.

    Returns
    -------
    text
        The text, prefixed with ``'`` when it begins with a formula trigger.

    Examples
    --------
    >>> neutralise_text("=1+1"), neutralise_text("-2+3"), neutralise_text("@cmd")
    ("'=1+1", "'-2+3", "'@cmd")
    >>> neutralise_text("光谷社区卫生服务中心"), neutralise_text("")
    ('光谷社区卫生服务中心', '')
    """
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _is_text_dtype(dtype: Any) -> bool:
    return pd.api.types.is_object_dtype(dtype) or isinstance(dtype, (pd.StringDtype, pd.CategoricalDtype))


def _map_text_index(idx: pd.Index, fix: Any) -> pd.Index:
    if isinstance(idx, pd.MultiIndex):
        levels = [_map_text_index(idx.get_level_values(i), fix) for i in range(idx.nlevels)]
        return pd.MultiIndex.from_arrays(levels, names=[fix(n) if isinstance(n, str) else n for n in idx.names])
    out = idx.astype(object).map(lambda v: fix(v) if isinstance(v, str) else v) if _is_text_dtype(idx.dtype) else idx
    return out.rename(fix(idx.name) if isinstance(idx.name, str) else idx.name)


def _map_text(df: pd.DataFrame, fix: Any, *, index: bool) -> pd.DataFrame:
    """Apply `fix` to every text cell, every text column header and (with `index`) the index; numbers stay as they are."""
    out = df.copy()
    for i in range(out.shape[1]):
        col = out.iloc[:, i]
        if _is_text_dtype(col.dtype):
            # a list, not Series.map: map would re-infer the dtype and turn whole numbers beside a None into floats
            out.isetitem(i, pd.Series([fix(v) if isinstance(v, str) else v for v in col], index=col.index, dtype=object))
    out.columns = _map_text_index(out.columns, fix)
    if index:
        out.index = _map_text_index(out.index, fix)
    return out


def neutralise_table(df: pd.DataFrame, *, index: bool = False) -> pd.DataFrame:
    """Neutralise every text cell and text header of a table with :func:`neutralise_text`.

    Numeric, boolean and missing values are left exactly as they are, so a negative number
    stays a number.

    Parameters
    ----------
    df
        The table.
    index
        Also neutralise the index (when it will be written).

    Returns
    -------
    table
        A neutralised copy.

    Examples
    --------
    >>> t = neutralise_table(pd.DataFrame({"name": ["=1+1", "甲"], "change_pp": [-2.5, float("nan")]}))
    >>> t["name"].tolist(), t["change_pp"].tolist()[0], t["change_pp"].dtype
    (["'=1+1", '甲'], -2.5, dtype('float64'))
    """
    return _map_text(df, neutralise_text, index=index)


def write_csv(df: pd.DataFrame, path: Path, *, index: bool = False) -> Path:
    """Write a table as CSV that spreadsheets open safely: UTF-8 with BOM, text inert.

    Every text cell and header goes through :func:`neutralise_text` and is written in double
    quotes (so a separator inside the text cannot start a new cell either); numbers are written
    bare and stay numbers. The byte order mark lets Excel show Chinese correctly.

    Parameters
    ----------
    df
        The table.
    path
        Output file.
    index
        Write the index as the first column(s).

    Returns
    -------
    path
        The file written.
    """
    neutralise_table(df, index=index).to_csv(path, index=index, encoding="utf-8-sig", quoting=csv.QUOTE_NONNUMERIC)
    return path


def write_xlsx(sheets: dict[str, pd.DataFrame], path: Path, *, index: bool = False) -> Path:
    """Write tables as sheets of one ``.xlsx`` workbook; text cells are strings, never formulas.

    Characters that XLSX cannot hold (C0 control characters other than tab, line feed and
    carriage return) are dropped first; then every text cell and header goes through
    :func:`neutralise_text`, and every text cell is stored with the string type, so nothing in
    the workbook is ever a formula. Numbers stay numbers.

    Parameters
    ----------
    sheets
        Sheet name to table, in order.
    path
        Output file.
    index
        Write each table's index as its first column(s).

    Returns
    -------
    path
        The file written.
    """
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def fix(text: str) -> str:
        return neutralise_text(ILLEGAL_CHARACTERS_RE.sub("", text))

    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df in sheets.items():
            _map_text(df, fix, index=index).to_excel(xw, sheet_name=name, index=index)
            for row in xw.sheets[name].iter_rows():
                for cell in row:
                    if isinstance(cell.value, str):
                        cell.data_type = "s"
    return path
