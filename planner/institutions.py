"""Load medical institutions and classify them by tier.

Sources: CSV/Excel tables with longitude and latitude columns, point layers
(GeoJSON, GeoPackage, shapefile, GeoParquet), or OSM extracts (``amenity`` =
hospital/clinic/doctors and ``healthcare`` = hospital/clinic/doctor/centre).
Coordinates may be WGS-84, GCJ-02 (Amap/Gaode, Tencent) or BD-09 (Baidu); they
are converted to WGS-84.

Tiers follow the Chinese hospital grading: ``tertiary`` (三级), ``secondary``
(二级), ``primary`` (一级: 社区卫生服务中心, 乡镇卫生院) and ``station``
(社区卫生服务站, 村卫生室, clinics). A ``tier`` (or grade) column wins; when it
is missing or blank the tier comes from name rules (:data:`TIER_NAME_RULES`),
and ``tier_source`` records which, so a planner can check every guess.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd

from . import datum, settings
from ._errors import InvalidValueError
from ._validate import check_lonlat, check_numeric, find_column
from .io import OSM_SUFFIXES, TABLE_SUFFIXES, VECTOR_SUFFIXES, check_input, read_osm_pois, read_table, suffix_of

logger = logging.getLogger(__name__)

NAME_ALIASES = ("name", "名称", "机构名称", "医疗机构名称", "单位名称", "name:zh", "hospital", "institution")
LON_ALIASES = ("lon", "lng", "long", "longitude", "经度", "x", "gcj_lng", "bd_lng")
LAT_ALIASES = ("lat", "latitude", "纬度", "y", "gcj_lat", "bd_lat")
TIER_ALIASES = ("tier", "级别", "等级", "医院等级", "grade", "level")
CAPACITY_ALIASES = ("capacity", "beds", "床位", "床位数", "编制床位", "实有床位")
ID_ALIASES = ("facility_id", "id", "编号", "机构编码", "code")

#: Ordered (pattern, tier) rules applied to names; the first match wins.
TIER_NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"社区卫生服务站|卫生服务站|村卫生室|卫生室|卫生所|衛生所|诊所|診所|医务室|醫務室|门诊部|門診部|卫生站", "station"),
    (r"社区卫生服务中心|社區衛生服務中心|卫生服务中心|乡镇卫生院|中心卫生院|卫生院|衛生院", "primary"),
    (r"校医院|大学医院|學醫院|学院医院", "primary"),
    (r"职工医院|厂医院|職工醫院", "secondary"),
    (r"三级|三甲|附属|附屬|大学.{0,4}人民医院|协和|協和|同济医院|同濟醫院|中南医院|总医院|總醫院|"
     r"省.{0,8}医院|省.{0,8}醫院|省.{0,6}中医院|区域医疗中心|市第.{1,2}医院|市中心医院|市中医医院|"
     r"儿童医院|肿瘤医院|金银潭", "tertiary"),
    (r"医院|醫院|医疗中心|保健院|专科|中医院|门诊|急诊", "secondary"),
)
_GRADE_RULES: tuple[tuple[str, str], ...] = (
    (r"^(tertiary|3|三级|三甲|三乙|三丙|三级.*)$", "tertiary"),
    (r"^(secondary|2|二级|二甲|二乙|二丙|二级.*)$", "secondary"),
    (r"^(primary|1|一级|一甲|一乙|一丙|一级.*|基层)$", "primary"),
    (r"^(station|0|站|卫生室|村卫生室|社区卫生服务站)$", "station"),
)
_OSM_AMENITY = {"hospital", "clinic", "doctors"}
_OSM_HEALTHCARE = {"hospital", "clinic", "doctor", "centre"}


def classify_tier(name: str | None) -> tuple[str, str]:
    """Classify an institution by its Chinese name.

    Parameters
    ----------
    name
        Institution name.

    Returns
    -------
    tier, tier_source
        The tier and ``"name_rule"`` when a rule matched, else
        ``("secondary", "default")``.

    Examples
    --------
    >>> classify_tier("关山街社区卫生服务中心")
    ('primary', 'name_rule')
    >>> classify_tier("村卫生室")
    ('station', 'name_rule')
    >>> classify_tier("武汉大学人民医院")
    ('tertiary', 'name_rule')
    """
    if name:
        for pattern, tier in TIER_NAME_RULES:
            if re.search(pattern, name):
                return tier, "name_rule"
    return "secondary", "default"


def tier_from_value(value: object) -> str | None:
    """Map a tier or grade value (``tertiary``, ``三级甲等``, ``2`` …) to a tier.

    Parameters
    ----------
    value
        Cell value from a tier/grade column.

    Returns
    -------
    tier
        A tier name, or None when blank or unrecognised (e.g. ``无等级``).
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip().lower()
    if text.endswith(".0"):
        text = text[:-2]
    for pattern, tier in _GRADE_RULES:
        if re.match(pattern, text):
            return tier
    return None


def load_institutions(
    path: str | os.PathLike[str],
    *,
    coords: str = "wgs84",
    name_column: str | None = None,
    tier_column: str | None = None,
    capacity_column: str | None = None,
) -> gpd.GeoDataFrame:
    """Load institutions as WGS-84 points indexed by ``facility_id``.

    Parameters
    ----------
    path
        CSV/XLSX table, point layer, or OSM extract.
    coords
        Datum of the input coordinates: ``wgs84``, ``gcj02`` (Amap) or
        ``bd09`` (Baidu). Ignored for OSM files (always WGS-84). Vector layers
        in a projected CRS are reprojected and then treated as `coords`.
    name_column, tier_column, capacity_column
        Column names, when they differ from the accepted aliases.

    Returns
    -------
    institutions
        Columns ``name``, ``tier``, ``tier_source`` (``column``,
        ``name_rule`` or ``default``), ``capacity`` (NaN if absent), ``lon``,
        ``lat``, ``geometry`` (EPSG:4326); index ``facility_id`` (str).
        When the file has beds, doctors or nurses columns
        (:data:`planner.settings.COUNT_COLUMN_ALIASES`, e.g. ``床位数``, ``执业医师``,
        ``注册护士``), also ``beds``, ``doctors``, ``nurses``: numbers, or the text as
        written when a cell is not a number (an error only where a norm needs it);
        ``attrs["count_columns"]`` maps each to the file's column name.

    Raises
    ------
    InputFileError, MissingColumnError, InvalidValueError, NoCrsError
        For unusable files, with the file, column or row and the fix.

    Examples
    --------
    >>> from planner import datasets
    >>> inst = load_institutions(datasets.get_path("wuhan_institutions"))
    >>> len(inst), sorted(inst["tier"].unique())
    (200, ['primary', 'secondary', 'station', 'tertiary'])
    """
    p = check_input(path, what="institutions", suffixes=TABLE_SUFFIXES + VECTOR_SUFFIXES + OSM_SUFFIXES)
    datum_name = coords
    if suffix_of(p) in OSM_SUFFIXES:
        df = _osm_institutions(p)
        datum_name = "wgs84"
    else:
        df = read_table(p, what="institutions", dtype=str)  # ids such as 001 or 20-digit codes stay as written
    if isinstance(df, gpd.GeoDataFrame):
        df = _points_from_layer(df, p)
    lon_col = find_column(df, LON_ALIASES, what="longitude", file=p)
    lat_col = find_column(df, LAT_ALIASES, what="latitude", file=p)
    assert lon_col is not None and lat_col is not None
    lon = check_numeric(df, lon_col, file=p, what="longitude")
    lat = check_numeric(df, lat_col, file=p, what="latitude")
    check_lonlat(lon, lat, file=p, lon_col=lon_col, lat_col=lat_col)
    lon, lat = datum.to_wgs84(lon, lat, datum=datum_name)
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)

    name_col = find_column(df, NAME_ALIASES, what="name", file=p, given=name_column)
    id_col = find_column(df, ID_ALIASES, what="id", file=p, required=False)
    if id_col is not None:
        raw_ids = df[id_col].astype("object").where(df[id_col].notna(), "").astype(str).str.strip()
        if (raw_ids == "").any():
            row = int(np.flatnonzero((raw_ids == "").to_numpy())[0]) + 1
            msg = f"{p}: row {row}, column '{id_col}' (id) is empty; fix: give every row an id or remove the column"
            raise InvalidValueError(msg)
        if raw_ids.duplicated().any():
            dup = " ".join(raw_ids[raw_ids.duplicated()].iloc[0].split())
            msg = f"{p}: column '{id_col}' has duplicate id '{dup}'; fix: make ids unique or remove the column"
            raise InvalidValueError(msg)
        ids = raw_ids.to_numpy()
    elif {"osm_type", "osm_id"} <= set(df.columns) and df["osm_id"].notna().all():
        ids = (df["osm_type"].astype(str) + "/" + df["osm_id"].astype("int64").astype(str)).to_numpy()
    else:
        ids = np.array([str(i + 1) for i in range(len(df))])

    names = df[name_col].astype("object").where(df[name_col].notna(), None)
    names = names.map(lambda s: str(s).strip() if s is not None and str(s).strip() else None)
    unnamed = names.isna()
    if unnamed.any():
        names[unnamed] = [f"未命名机构 (unnamed, id {i})" for i in ids[unnamed.to_numpy()]]
        logger.info("%s: %d institutions have no name; labelled '未命名机构 (unnamed, id …)'", p, int(unnamed.sum()))

    t_col = find_column(df, TIER_ALIASES, what="tier", file=p, required=False, given=tier_column)
    tiers, sources = [], []
    for i, nm in enumerate(names):
        tier = tier_from_value(df[t_col].iloc[i]) if t_col else None
        if tier is not None:
            tiers.append(tier)
            sources.append("column")
        else:
            t, s = classify_tier(None if unnamed.iloc[i] else nm)
            tiers.append(t)
            sources.append(s)

    c_col = find_column(df, CAPACITY_ALIASES, what="capacity", file=p, required=False, given=capacity_column)
    if c_col is not None:
        cap = pd.to_numeric(df[c_col], errors="coerce").to_numpy(dtype=float)
        if capacity_column is not None:  # a column the user named: text that is not a number is an error, not NaN
            _check_capacity_text(df[c_col], cap, file=p, column=c_col)
        neg = np.flatnonzero(cap < 0)
        if len(neg):
            msg = (f"{p}: row {neg[0] + 1}, column '{c_col}' (capacity): {cap[neg[0]]} is negative; "
                   "fix: give beds/staff as a number >= 0")
            raise InvalidValueError(msg)
    else:
        cap = np.full(len(df), np.nan)

    out = gpd.GeoDataFrame(
        {"name": names.to_numpy(), "tier": tiers, "tier_source": sources, "capacity": cap, "lon": lon, "lat": lat},
        geometry=gpd.points_from_xy(lon, lat),
        crs="EPSG:4326",
        index=pd.Index(ids, name="facility_id"),
    )
    _add_count_columns(out, df, p)
    counts = out["tier"].value_counts().reindex(settings.TIERS, fill_value=0)
    logger.info("%s: %d institutions (%s)", p, len(out), ", ".join(f"{t} {n}" for t, n in counts.items()))
    return out


def _check_capacity_text(raw: pd.Series, cap: np.ndarray, *, file: object, column: str) -> None:
    """Raise for the first value of a named capacity column that is text but not a number (empty cells pass)."""
    text = raw.astype("object")
    filled = text.map(lambda v: v is not None and not (isinstance(v, float) and np.isnan(v)) and bool(str(v).strip()))
    bad = np.flatnonzero(np.isnan(cap) & filled.to_numpy(dtype=bool))
    if len(bad):
        shown = " ".join(str(text.iloc[bad[0]]).split())
        msg = (f"{file}: row {bad[0] + 1}, column '{column}' (capacity): '{shown}' is not a number "
               f"({len(bad)} such rows in all); fix: give the capacity as a number, or leave the cell empty")
        raise InvalidValueError(msg)


def _add_count_columns(out: gpd.GeoDataFrame, df: pd.DataFrame, file: object) -> None:
    """Add the file's beds, doctors and nurses columns (:data:`planner.settings.COUNT_COLUMN_ALIASES`) to `out`.

    Each is floats (NaN where empty) when every filled cell is a number, else the text as written (None where
    empty), so that a norm needing it names the row (:func:`planner.norms.build_districts_table`) while runs that
    do not need it go on. ``out.attrs["count_columns"]`` maps each to the file's column name, for messages.
    """
    named: dict[str, str] = {}
    for kind, aliases in settings.COUNT_COLUMN_ALIASES.items():
        col = find_column(df, aliases, what=kind, file=file, required=False)
        if col is None:
            continue
        raw = df[col].astype("object")
        blank = raw.map(lambda v: (not isinstance(v, str) and bool(pd.isna(v))) or (isinstance(v, str) and not v.strip()))
        num = pd.to_numeric(raw.where(~blank), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if (np.isnan(num) & ~blank.to_numpy(dtype=bool)).any():  # keep the text, for the message
            text = [None if b else " ".join(str(v).split()) for v, b in zip(raw, blank, strict=True)]
            out[kind] = np.array(text, dtype=object)
        else:
            out[kind] = num
        named[kind] = col
    out.attrs["count_columns"] = named


def _points_from_layer(gdf: gpd.GeoDataFrame, path: object) -> pd.DataFrame:
    geom = gdf.geometry
    if geom.isna().any() or geom.is_empty.any():
        i = int(np.flatnonzero(geom.isna().to_numpy() | geom.is_empty.to_numpy())[0])
        msg = f"{path}: feature {i + 1} has no geometry; fix: give it a location or remove it"
        raise InvalidValueError(msg)
    if gdf.crs is not None and not gdf.crs.is_geographic:
        gdf = gdf.to_crs("EPSG:4326")
    elif gdf.crs is not None and gdf.crs.to_epsg() not in (4326, 4490, None):
        gdf = gdf.to_crs("EPSG:4326")
    if not (geom.geom_type == "Point").all():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # representative points of lon/lat polygons are fine here
            pts = gdf.geometry.representative_point()
    else:
        pts = gdf.geometry
    df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    for c in [c for c in df.columns if c.lower() in LON_ALIASES + LAT_ALIASES]:
        df = df.drop(columns=c)
    df["lon"] = pts.x.to_numpy()
    df["lat"] = pts.y.to_numpy()
    return df


def _osm_institutions(path: object) -> pd.DataFrame:
    def keep(tags: dict[str, str]) -> bool:
        return tags.get("amenity") in _OSM_AMENITY or tags.get("healthcare") in _OSM_HEALTHCARE

    df = read_osm_pois(path, keep=keep)  # type: ignore[arg-type]
    if df.empty:
        msg = (f"{path}: no medical institutions in this OSM file (amenity=hospital/clinic/doctors or "
               "healthcare=hospital/clinic/doctor/centre); fix: give an institutions table instead")
        raise InvalidValueError(msg)
    if "name" not in df.columns:
        df["name"] = None
    if "name:zh" in df.columns:
        df["name"] = df["name"].where(df["name"].notna(), df["name:zh"])
    return df
