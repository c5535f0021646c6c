"""Boundary import: one polygon layer (GeoJSON, Shapefile, GeoPackage) → one level of areas.

Small steps with plain inputs and outputs, composed by `areas_import`:

    read_features → to_wgs84 → check_in_china → repair_geometries
      → find_parents (spatial) | check_declared_parents (--parent-field)
      → check_codes → assign_codes (no --code-field) → validate → areas_replace

What stops an import (nothing is written, not even an ImportRun):
* a bad file, raised as `BadFile` before any row is looked at: unreadable, not a polygon
  layer, missing field, unknown CRS, coordinates that cannot be in China, empty layer;
* any error row, raised as `ImportRejected` with the full report: duplicate code, geometry
  that cannot be repaired within 1 % of its area (or is not a polygon), child with no
  parent, code that disagrees with its parent, geometry that cannot be read (a ring not closed), malformed code, empty name, more than 999
  children under one parent.
Warnings (the import goes ahead, the report keeps them): repaired geometries, overlaps
between siblings, children outside their parent, gaps between siblings inside their
parent, each beyond settings.IMPORT_TOLERANCE_M2.

Areas of the level that the file does not mention are left as they are: an import adds and
revises, it never retires.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from django.conf import settings
from django.contrib.gis.gdal import CoordTransform, DataSource, GDALException, OGRGeometry, SpatialReference
from django.contrib.gis.gdal.error import SRSException
from django.contrib.gis.gdal.geojson import ExternalCRSBlocker  # type: ignore[import-untyped]
from django.contrib.gis.geos import GEOSGeometry, Polygon
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.db.models.functions import Left
from tqdm import tqdm

from . import coords
from .models import LEVEL_BY_LENGTH, LEVELS, District
from .services import SAME_GEOMETRY_TOLERANCE, areas_replace

# Where a boundary of a Chinese city can be, in WGS-84 (a little beyond the land borders).
CHINA_BOUNDS = (73.0, 3.0, 136.0, 54.0)
# A repair may change a polygon's area by at most this fraction, or the row is rejected.
MAX_REPAIR_CHANGE = 0.01
CHILD_DIGITS = 3
MAX_CHILD_NUMBER = 10**CHILD_DIGITS - 1

# OGR geometry type numbers, 2D base (25D flag and ISO Z/M thousands stripped).
_POLYGONAL_TYPES = {3, 6, 10, 12}  # Polygon, MultiPolygon, CurvePolygon, MultiSurface
_UNTYPED = {0, 7}  # Unknown, GeometryCollection: look at the features themselves


class BadFile(ValueError):
    """The file cannot be imported at all; the message names the problem (中文 / English)."""


class ImportRejected(Exception):
    """The file has error rows; `report` lists them. Nothing was written."""

    def __init__(self, report):
        self.report = report
        n = len(report["errors"])
        super().__init__(f"导入被拒绝，未做任何修改 / import rejected, nothing changed: {n} error row(s)")


@dataclass
class Feature:
    row: int  # 1-based position in the layer, as a GIS user counts
    name: str
    code: str = ""
    parent: str = ""
    geom: object = None  # shapely geometry; WGS-84 once to_wgs84 has run
    geom_error: str = ""  # why the file's geometry could not be read (then geom is None)


def problem(f, kind, message, **extra):
    return {"row": f.row, "code": f.code, "name": f.name, "problem": kind, "message": message, **extra}


# --- reading --------------------------------------------------------------------------------


def _base_type(num):
    if num & 0x80000000:
        num &= 0x7FFFFFFF
    return num % 1000


def _field_value(value):
    """Codes may come as text or numbers (a .dbf stores 15 digits as a real): '110101001'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _refuse_external_crs(path):
    """GDAL < 3.9 resolves a GeoJSON "crs" by reading files or URLs; refuse such references
    (the same rule Django applies to GeoJSON geometries) before GDAL opens the file."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            doc = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadFile(f"无法读取 GeoJSON 文件 / cannot read GeoJSON file {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise BadFile(f"不是 GeoJSON 对象 / not a GeoJSON object: {path}")
    members = [doc] + [f for f in doc.get("features") or [] if isinstance(f, dict)]
    members += [m["geometry"] for m in members[1:] if isinstance(m.get("geometry"), dict)]
    try:
        for m in members:
            for key, value in m.items():
                if ExternalCRSBlocker.normalize_key(key) == "crs" and value is not None:
                    if not isinstance(value, dict):
                        raise ValueError("GeoJSON CRS must be an object")
                    ExternalCRSBlocker.check_member(value)
    except (SuspiciousOperation, ValueError) as exc:
        raise BadFile(f"GeoJSON 的 crs 引用外部文件或网址，已拒绝 / external CRS reference refused: {exc}") from None


def _open_layer(path, layer):
    p = Path(path)
    if not p.is_file() or not os.access(p, os.R_OK):
        raise BadFile(f"文件不存在或不可读 / file not found or not readable: {path}")
    if p.suffix.lower() in (".geojson", ".json"):
        _refuse_external_crs(p)
    try:
        ds = DataSource(str(p))
    except GDALException as exc:
        raise BadFile(
            f"无法读取文件（支持 GeoJSON、Shapefile、GeoPackage）/ cannot read {path} "
            f"as GeoJSON, Shapefile or GeoPackage: {exc}"
        ) from None
    names = [lyr.name for lyr in ds]  # type: ignore[attr-defined]  # DataSource iterates its layers
    if layer is not None:
        if layer not in names:
            raise BadFile(f"图层 {layer!r} 不存在 / layer {layer!r} not found; layers: {', '.join(names) or '-'}")
        return ds, ds[names.index(layer)]
    if not names:
        raise BadFile(f"文件中没有图层 / no layer in {path}")
    if len(names) > 1:
        raise BadFile(
            f"文件有多个图层，请用 --layer 指定 / several layers, choose one with --layer: {', '.join(names)}"
        )
    return ds, ds[0]


def _layer_kind(lyr):
    try:
        num = lyr.geom_type.num
    except GDALException:
        return "untyped", "?"
    base = _base_type(num)
    if base in _POLYGONAL_TYPES:
        return "polygon", lyr.geom_type.name
    if base in _UNTYPED:
        return "untyped", lyr.geom_type.name
    return "other", lyr.geom_type.name


def _feature_geom(feat):
    """(shapely geometry or None, why it could not be read)."""
    try:
        g = feat.geom
    except GDALException:
        return None, ""
    if g.has_curve:
        g = g.get_linear_geometry()
    try:
        return shapely.force_2d(shapely.from_wkb(bytes(g.wkb))), ""
    except shapely.errors.GEOSException as exc:
        # GDAL reads a ring whose last point is not its first; GEOS cannot make a polygon of it,
        # and closing it here would be a guess at the boundary.
        if "closed linestring" in str(exc):
            return (
                None,
                "多边形的环没有闭合（末点与首点坐标不同）/ polygon ring not closed (last point differs from first)",
            )
        return None, f"几何无法读取 / unreadable geometry: {exc}"


def read_features(path, *, name_field="name", code_field=None, parent_field=None, layer=None, progress=None):
    """Read one polygon layer: (features with source coordinates, info about the file)."""
    ds, lyr = _open_layer(path, layer)
    if lyr.num_feat == 0:  # before the fields: an empty GeoJSON has none to name
        raise BadFile(f"图层为空 / empty layer {lyr.name!r} in {path}")
    fields = lyr.fields
    for option, field in (("--name-field", name_field), ("--code-field", code_field), ("--parent-field", parent_field)):
        if field is not None and field not in fields:
            raise BadFile(
                f"字段 {field!r}（{option}）不存在 / field {field!r} ({option}) not found; "
                f"available fields: {', '.join(fields) or '(none)'}"
            )
    kind, type_name = _layer_kind(lyr)
    if kind == "other":
        raise BadFile(f"不是面图层 / not a polygon layer: layer {lyr.name!r} holds {type_name}")
    features = []
    for i, feat in enumerate(tqdm(lyr, desc="读取 / reading", unit=" feat", file=progress, disable=progress is None)):
        geom, geom_error = _feature_geom(feat)
        features.append(
            Feature(
                row=i + 1,
                name=_field_value(feat.get(name_field)),
                code=_field_value(feat.get(code_field)) if code_field else "",
                parent=_field_value(feat.get(parent_field)) if parent_field else "",
                geom=geom,
                geom_error=geom_error,
            )
        )
    if not features:
        raise BadFile(f"图层为空 / empty layer {lyr.name!r} in {path}")
    if kind == "untyped" and not any(f.geom is not None and _polygons(f.geom) for f in features):
        raise BadFile(f"不是面图层 / not a polygon layer: layer {lyr.name!r} has no polygons")
    srs = lyr.srs
    info = {"layer": lyr.name, "driver": str(ds.driver), "fields": fields, "file_crs": srs.name if srs else None}
    return features, info


# --- coordinates ----------------------------------------------------------------------------


def gdal_srs(crs):
    """SpatialReference of an 'epsg:n' CRS (lng/lat order for geographic ones), or UnknownCRS."""
    try:
        return SpatialReference(int(crs.split(":", 1)[1]))
    except (GDALException, SRSException, ValueError):
        raise coords.UnknownCRS(f"未知坐标系 / unknown CRS {crs!r}: GDAL does not know this EPSG code") from None


def _ogr_transform(geoms, ct):
    """Transform many shapely geometries with one GDAL call (as one collection)."""
    if not geoms:
        return []
    collection = OGRGeometry(memoryview(shapely.to_wkb(shapely.GeometryCollection(geoms))))
    collection.transform(ct)
    return list(shapely.from_wkb(bytes(collection.wkb)).geoms)


def to_wgs84(geoms, crs):
    """Geometries in `crs` (normalised: wgs84, gcj02, bd09 or epsg:n) → WGS-84. None stays None.

    GCJ-02 / BD-09 are converted over all vertices of all geometries in one vectorised call;
    EPSG codes go through GDAL (PROJ)."""
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    if crs == "wgs84":
        return list(arr)
    if crs in ("gcj02", "bd09"):

        def convert(xy):
            lng, lat = coords.to_wgs84(xy[:, 0], xy[:, 1], crs)
            return np.column_stack([lng, lat])

        return list(shapely.transform(arr, convert))
    ct = CoordTransform(gdal_srs(crs), SpatialReference(4326))
    present = [i for i, g in enumerate(arr) if g is not None]
    try:
        out = _ogr_transform([arr[i] for i in present], ct)
    except GDALException as exc:
        raise BadFile(f"坐标转换失败 / cannot transform from {crs}: {exc}") from None
    for i, g in zip(present, out, strict=True):
        arr[i] = g
    return list(arr)


def check_in_china(features):
    """Refuse a file whose converted coordinates cannot be in China (typically projected
    metres declared as wgs84, or swapped lat/lng)."""
    w, s, e, n = CHINA_BOUNDS
    bad = []
    for f in features:
        if f.geom is None or f.geom.is_empty:
            continue
        b = shapely.bounds(f.geom)
        if not (np.isfinite(b).all() and b[0] >= w and b[1] >= s and b[2] <= e and b[3] <= n):
            bad.append(f"#{f.row} ({', '.join(f'{v:.6g}' for v in b)})")
    if bad:
        raise BadFile(
            f"坐标不在中国范围内（{w:g}–{e:g}°E，{s:g}–{n:g}°N），请检查 --crs / coordinates outside China "
            f"after conversion; is the file in projected metres or lat/lng swapped? "
            f"rows (bounds): {'; '.join(bad[:3])}{' …' if len(bad) > 3 else ''}"
        )


# --- geometry repair ------------------------------------------------------------------------


def _polygons(g):
    if g is None:
        return []
    if g.geom_type == "Polygon":
        return [] if g.is_empty else [g]
    if g.geom_type in ("MultiPolygon", "GeometryCollection"):
        return [p for part in g.geoms for p in _polygons(part)]
    return []


def polygon_repair(g):
    """An invalid (Multi)Polygon repaired: (MultiPolygon, reason, area change), with None for
    the geometry when no repair (make_valid or buffer(0), whichever keeps the area closer)
    stays within MAX_REPAIR_CHANGE of the area. Whistle-call areas are checked by it too."""
    reason = shapely.is_valid_reason(g)
    before = g.area
    candidates = [shapely.MultiPolygon(_polygons(c)) for c in (shapely.make_valid(g), g.buffer(0))]
    best = min(candidates, key=lambda c: abs(c.area - before))
    change = abs(best.area - before) / before if before > 0 else float("inf")
    return (None if best.is_empty or change > MAX_REPAIR_CHANGE else best), reason, change


def repair_geometries(features):
    """Make every geometry a valid MultiPolygon, or reject it. Returns (errors, repaired).

    A repair (make_valid or buffer(0), whichever keeps the area closer) is accepted when it
    changes the area by at most 1 %; a bow-tie whose lobes cancel out is rejected, because
    no repair can know which shape was meant."""
    errors, repaired = [], []
    for f in features:
        g = f.geom
        if f.geom_error:
            errors.append(problem(f, "geometry_unreadable", f.geom_error))
            continue
        if g is None or g.is_empty:
            errors.append(problem(f, "geometry_missing", "没有几何 / no geometry"))
            f.geom = None
            continue
        if g.geom_type not in ("Polygon", "MultiPolygon"):
            errors.append(problem(f, "not_polygon", f"不是面 / not a polygon: {g.geom_type}"))
            f.geom = None
            continue
        if not g.is_valid:
            best, reason, change = polygon_repair(g)
            if best is None:
                f.geom = None
                errors.append(
                    problem(
                        f,
                        "geometry_rejected",
                        f"几何无效且无法在面积变化 1% 内修复 / invalid geometry, no repair within 1 % of its area: "
                        f"{reason}",
                        reason=reason,
                        area_change=None if change == float("inf") else round(change, 4),
                    )
                )
                continue
            repaired.append(
                {"row": f.row, "code": f.code, "name": f.name, "reason": reason, "area_change": round(change, 6)}
            )
            g = best
        f.geom = g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])
    return errors, repaired


# --- parents and codes ----------------------------------------------------------------------


def parent_length(model):
    return model.CODE_LENGTH - CHILD_DIGITS if model is not District else 0


def find_parents(features, parents):
    """Set each feature's parent to the current parent-level area covering its point on
    surface; `parents` maps code → WGS-84 geometry. On a shared edge the lowest code wins, as
    in locate(). Returns error rows for children with no parent."""
    todo = [f for f in features if f.geom is not None]
    codes = sorted(parents)
    errors = []
    if todo and codes:
        tree = shapely.STRtree([parents[c] for c in codes])
        points = shapely.point_on_surface([f.geom for f in todo])
        child_idx, parent_idx = tree.query(points, predicate="covered_by")
        best: dict[Any, Any] = {}
        for ci, pi in zip(child_idx.tolist(), parent_idx.tolist(), strict=True):
            best[ci] = min(best.get(ci, pi), pi)  # codes are sorted: lowest index = lowest code
        for ci, f in enumerate(todo):
            if ci in best:
                f.parent = codes[best[ci]]
    for f in todo:
        if not f.parent:
            errors.append(problem(f, "no_parent", "找不到包含它的上级区域 / no current parent area contains it"))
    return errors


def check_declared_parents(features, parents):
    errors = []
    for f in features:
        if not f.parent:
            errors.append(problem(f, "no_parent", "上级编码为空 / parent code is empty"))
        elif f.parent not in parents:
            errors.append(
                problem(
                    f,
                    "no_parent",
                    f"上级编码 {f.parent} 不存在 / parent code {f.parent} is not a current area",
                    parent=f.parent,
                )
            )
    return errors


def check_codes(features, model):
    """Code format, agreement with the parent, duplicates within the file, empty names."""
    errors: list[Any] = []
    seen: dict[Any, Any] = {}
    n, plen = model.CODE_LENGTH, parent_length(model)
    for f in features:
        if not f.name:
            errors.append(problem(f, "empty_name", "名称为空 / name is empty"))
        if not f.code:
            continue
        if not (f.code.isdigit() and len(f.code) == n):
            errors.append(problem(f, "bad_code", f"编码应为 {n} 位数字 / code must be {n} digits"))
            continue
        if f.parent and f.code[:plen] != f.parent:
            errors.append(
                problem(
                    f,
                    "parent_mismatch",
                    f"编码与上级 {f.parent} 不符 / code does not start with its parent's code {f.parent}",
                    parent=f.parent,
                )
            )
        if f.code in seen:
            errors.append(
                problem(
                    f,
                    "duplicate_code",
                    f"编码重复（第 {seen[f.code]} 行）/ duplicate code, first at row {seen[f.code]}",
                    first_row=seen[f.code],
                )
            )
        else:
            seen[f.code] = f.row
    return errors


def reading_order(geoms):
    """Indices of `geoms` west→east, north→south: rows from north to south, each row west to
    east. A geometry joins the current row while its centre lies within half the median
    height of the row's first centre, so slightly ragged rows still read as rows."""
    if not geoms:
        return []
    centres = shapely.get_coordinates(shapely.centroid(geoms))
    b = shapely.bounds(geoms)
    band = float(np.median(b[:, 3] - b[:, 1])) / 2
    order = sorted(range(len(geoms)), key=lambda i: -centres[i, 1])
    rows: list[Any] = []
    top = None
    for i in order:
        if top is None or top - centres[i, 1] > band:
            rows.append([])
            top = centres[i, 1]
        rows[-1].append(i)
    return [i for row in rows for i in sorted(row, key=lambda i: (centres[i, 0], -centres[i, 1]))]


def assign_codes(features, existing):
    """Give codes to features without one. `existing` maps parent code → [(code, name,
    is_current)] of every version already stored under it.

    A feature whose name is that of exactly one current child (and of no other feature under
    the same parent in the file) keeps that child's code, so re-importing a file without
    codes revises areas instead of duplicating them. The others are numbered after the
    highest number ever used under the parent (codes are never reused), in reading order."""
    errors: list[Any] = []
    assigned: list[Any] = []
    by_parent: dict[Any, Any] = {}
    for f in features:
        if not f.code and f.parent and f.geom is not None:
            by_parent.setdefault(f.parent, []).append(f)
    for parent, group in sorted(by_parent.items()):
        rows = existing.get(parent, [])
        current_names: dict[Any, Any] = {}
        for code, name, is_current in rows:
            if is_current:
                current_names.setdefault(name, []).append(code)
        file_names: dict[Any, Any] = {}
        for f in group:
            file_names[f.name] = file_names.get(f.name, 0) + 1
        new = []
        for f in group:
            if len(current_names.get(f.name, [])) == 1 and file_names[f.name] == 1:
                f.code = current_names[f.name][0]
                assigned.append({"row": f.row, "name": f.name, "code": f.code, "kept": True})
            else:
                new.append(f)
        number = max((int(code[-CHILD_DIGITS:]) for code, _, _ in rows), default=0)
        for i in reading_order([f.geom for f in new]):
            f = new[i]
            number += 1
            if number > MAX_CHILD_NUMBER:
                errors.append(
                    problem(f, "too_many_children", f"上级 {parent} 下编号已用完 / no code left under {parent}")
                )
                continue
            f.code = f"{parent}{number:0{CHILD_DIGITS}d}"
            assigned.append({"row": f.row, "name": f.name, "code": f.code, "kept": False})
    return errors, sorted(assigned, key=lambda a: a["row"])


# --- validation -----------------------------------------------------------------------------


def areas_m2(geoms):
    """Areas in m² on a Lambert azimuthal equal-area projection centred on the geometries
    (city-sized extents: well under 0.1 % error)."""
    geoms = [g if g is not None else shapely.Polygon() for g in geoms]
    if not geoms:
        return np.array([])
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    if not np.isfinite([x0, y0, x1, y1]).all():
        return np.zeros(len(geoms))
    laea = SpatialReference(
        f"+proj=laea +lat_0={(y0 + y1) / 2:.6f} +lon_0={(x0 + x1) / 2:.6f} +ellps=WGS84 +units=m +no_defs"
    )
    return shapely.area(_ogr_transform(geoms, CoordTransform(SpatialReference(4326), laea)))


def validate(features, parents, siblings, tolerance_m2):
    """Warnings about the boundaries as they will be after the import.

    `parents`: parent code → geometry; `siblings`: code → (parent code, geometry) of current
    areas of the level that the file leaves alone. Returns {overlaps, outside_parent, gaps}."""
    members = [(f.code, f.row, f.parent, f.geom) for f in features if f.geom is not None]
    members += [(code, None, parent, geom) for code, (parent, geom) in sorted(siblings.items())]
    report: dict[str, list[Any]] = {"overlaps": [], "outside_parent": [], "gaps": []}
    if not members:
        return report

    geoms = [m[3] for m in members]
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = [
        (i, j)
        for i, j in zip(left.tolist(), right.tolist(), strict=True)
        if i < j and members[i][2] == members[j][2] and (members[i][1] or members[j][1])
    ]
    if pairs:
        shared = shapely.intersection([geoms[i] for i, _ in pairs], [geoms[j] for _, j in pairs])
        for (i, j), area in zip(pairs, areas_m2(list(shared)), strict=True):
            if area > tolerance_m2:
                report["overlaps"].append(
                    {
                        "codes": [members[i][0], members[j][0]],
                        "rows": [members[i][1], members[j][1]],
                        "parent": members[i][2],
                        "area_m2": round(float(area), 1),
                    }
                )

    inside = [m for m in members if m[1] is not None and m[2] in parents]
    if inside:
        outside = shapely.difference([m[3] for m in inside], [parents[m[2]] for m in inside])
        for m, area in zip(inside, areas_m2(list(outside)), strict=True):
            if area > tolerance_m2:
                report["outside_parent"].append(
                    {"code": m[0], "row": m[1], "parent": m[2], "area_m2": round(float(area), 1)}
                )

    touched = sorted({m[2] for m in members if m[1] is not None and m[2] in parents})
    for parent in touched:
        children = shapely.union_all([m[3] for m in members if m[2] == parent])
        parts = _polygons(shapely.difference(parents[parent], children))
        part_areas = areas_m2(parts)
        big = [(a, p) for a, p in zip(part_areas, parts, strict=True) if a > tolerance_m2]
        if big:
            largest = max(big, key=lambda ap: ap[0])[1]
            at = shapely.get_coordinates(shapely.point_on_surface(largest))[0]
            report["gaps"].append(
                {
                    "parent": parent,
                    "area_m2": round(float(sum(a for a, _ in big)), 1),
                    "parts": len(big),
                    "at": [round(float(at[0]), 6), round(float(at[1]), 6)],
                }
            )
    return report


# --- database reads -------------------------------------------------------------------------


def _shape(geos):
    return shapely.from_wkb(bytes(geos.wkb))


def _extent(features):
    geoms = [f.geom for f in features if f.geom is not None]
    if not geoms:
        return None
    w, s, e, n = (float(v) for v in shapely.total_bounds(geoms))
    return Polygon.from_bbox((w, s, e, n))


def load_parents(model, features, declared):
    """Current parent-level areas: those named by the file, or those near its extent."""
    plen = parent_length(model)
    if not plen:
        return {}
    qs = LEVEL_BY_LENGTH[plen].objects.current()
    if declared:
        qs = qs.filter(code__in={f.parent for f in features if f.parent})
    else:
        extent = _extent(features)
        if extent is None:
            return {}
        extent.srid = 4326
        qs = qs.filter(geom__bboverlaps=extent)
    return {code: _shape(geom) for code, geom in qs.values_list("code", "geom")}


def load_children(model, parent_codes):
    """Every stored version under these parents: parent → [(code, name, is_current)]."""
    plen = parent_length(model)
    out: dict[Any, Any] = {}
    if not parent_codes:
        return out
    qs = model.objects.annotate(parent_code=Left("code", plen)).filter(parent_code__in=sorted(parent_codes))
    for code, name, valid_to in qs.values_list("code", "name", "valid_to"):
        out.setdefault(code[:plen], []).append((code, name, valid_to is None))
    return out


def load_siblings(model, features):
    """Current areas of the level that share a parent with the file's features (for districts:
    that lie near the file) and that the file does not revise: code → (parent, geometry)."""
    plen = parent_length(model)
    file_codes = {f.code for f in features if f.code}
    qs = model.objects.current().exclude(code__in=file_codes)
    if plen:
        parents = {f.parent for f in features if f.parent}
        if not parents:
            return {}
        qs = qs.annotate(parent_code=Left("code", plen)).filter(parent_code__in=sorted(parents))
    else:
        extent = _extent(features)
        if extent is None:
            return {}
        extent.srid = 4326
        qs = qs.filter(geom__bboverlaps=extent)
    return {code: (code[:plen], _shape(geom)) for code, geom in qs.values_list("code", "geom")}


def _to_store(model, features):
    """(code, name, GEOS geometry) rows. A geometry equal to the stored one up to ring
    orientation and start vertex (a Shapefile reverses rings) is passed as the stored one,
    so it counts as unchanged and makes no new version."""
    stored = dict(model.objects.current().filter(code__in=[f.code for f in features]).values_list("code", "geom"))
    rows = []
    for f in features:
        geom = GEOSGeometry(memoryview(shapely.to_wkb(f.geom)), srid=4326)
        old = stored.get(f.code)
        if old is not None and shapely.equals_exact(
            shapely.normalize(_shape(old)), shapely.normalize(f.geom), SAME_GEOMETRY_TOLERANCE
        ):
            geom = old
        rows.append((f.code, f.name, geom))
    return rows


# --- the service ----------------------------------------------------------------------------


def areas_import(
    path,
    level,
    crs,
    *,
    name_field="name",
    code_field=None,
    parent_field=None,
    layer=None,
    dry_run=False,
    actor="",
    progress=None,
    tolerance_m2=None,
):
    """Import one layer of boundaries as `level`, all or nothing. Returns the ImportRun (for a
    dry run: an unsaved one whose counts say what would have happened).

    Raises BadFile or ImportRejected; in both cases nothing is written. `progress` is a file
    to draw progress bars on (None: no bars)."""
    model = LEVELS.get(level)
    if model is None:
        raise BadFile(f"未知层级 / unknown level {level!r}: use {', '.join(LEVELS)}")
    try:
        crs_key = coords.normalise_crs(crs)
        if crs_key.startswith("epsg:"):
            gdal_srs(crs_key)
    except coords.UnknownCRS as exc:
        raise BadFile(str(exc)) from None
    if model is District and not code_field:
        raise BadFile("区级导入必须提供编码字段 / districts need --code-field (GB/T 2260 codes)")
    if model is District and parent_field:
        raise BadFile("区没有上级 / districts have no parent: drop --parent-field")
    tolerance_m2 = settings.IMPORT_TOLERANCE_M2 if tolerance_m2 is None else tolerance_m2

    features, info = read_features(
        path, name_field=name_field, code_field=code_field, parent_field=parent_field, layer=layer, progress=progress
    )
    for f, g in zip(features, to_wgs84([f.geom for f in features], crs_key), strict=True):
        f.geom = g
    check_in_china(features)
    errors, repaired = repair_geometries(features)

    parents = load_parents(model, features, declared=bool(parent_field))
    if parent_field:
        errors += check_declared_parents(features, parents)
    elif model is not District:
        errors += find_parents(features, parents)
    errors += check_codes(features, model)
    assigned = []
    if not code_field:
        more, assigned = assign_codes(features, load_children(model, {f.parent for f in features if f.parent}))
        errors += more
    warnings = validate(features, parents, load_siblings(model, features), tolerance_m2)

    report = {
        "file": str(path),
        **info,
        "level": level,
        "crs": crs_key,
        "features": len(features),
        "tolerance_m2": tolerance_m2,
        "dry_run": dry_run,
        "errors": sorted(errors, key=lambda e: e["row"]),
        "repaired": repaired,
        "assigned_codes": assigned,
        **warnings,
    }
    if errors:
        raise ImportRejected(report)

    rows = _to_store(model, features)
    bar = tqdm(rows, desc="写入 / writing", unit=" area", file=progress, disable=progress is None)
    with transaction.atomic():
        run = areas_replace(model, bar, source=str(path)[:500], crs=crs_key, actor=actor, report=report)  # type: ignore[type-abstract]
        if dry_run:
            transaction.set_rollback(True)
    if dry_run:
        run.pk = None
    return run


# --- the report as text ---------------------------------------------------------------------


def report_text(report, run=None):
    """The validation report for a terminal, Chinese first."""
    head = (
        f"校验报告 / validation report: {report['file']} [{report['layer']}] → {report['level']}, "
        f"crs {report['crs']}, {report['features']} feature(s), tolerance {report['tolerance_m2']} m²"
    )
    lines = [head]
    if run is not None:
        dry = "演练，未写入 / dry run, nothing written: " if report.get("dry_run") else ""
        lines.append(f"  {dry}新建 created {run.created} · 变更 changed {run.changed} · 未变 unchanged {run.unchanged}")
    sections = [
        (
            "errors",
            "错误（导入已拒绝）/ errors (import refused)",
            lambda e: f"#{e['row']} {e['code'] or '-'} {e['name'] or '-'}: {e['problem']} — {e['message']}",
        ),
        (
            "repaired",
            "已修复的几何 / repaired geometries",
            lambda r: (
                f"#{r['row']} {r['code'] or '-'} {r['name']}: {r['reason']} (area changed {r['area_change']:.4%})"
            ),
        ),
        (
            "overlaps",
            "同级重叠 / overlaps between siblings",
            lambda o: f"{o['codes'][0]} × {o['codes'][1]}: {o['area_m2']} m²",
        ),
        (
            "outside_parent",
            "超出上级 / outside the parent",
            lambda o: f"{o['code']} outside {o['parent']}: {o['area_m2']} m²",
        ),
        (
            "gaps",
            "同级之间的空隙 / gaps between siblings",
            lambda g: (
                f"in {g['parent']}: {g['area_m2']} m² in {g['parts']} part(s), e.g. at {g['at'][0]}, {g['at'][1]}"
            ),
        ),
        (
            "assigned_codes",
            "分配的编码 / assigned codes",
            lambda a: f"#{a['row']} {a['name']} → {a['code']}{' (kept)' if a['kept'] else ''}",
        ),
    ]
    for key, title, fmt in sections:
        items = report.get(key) or []
        lines.append(f"  {title}: {len(items) or '无 / none'}")
        lines += [f"    {fmt(item)}" for item in items]
    return "\n".join(lines)
