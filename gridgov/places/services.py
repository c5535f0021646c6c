"""Writes to the place registry: reading CSV / GeoJSON files and one upsert door with an
audit record.

A place is the same place on re-import when it has the same name and kind and lies within
SAME_PLACE_M of the stored one: it is updated (position, address, aliases added), not
doubled. Two places of one name further apart stay two places (幸福里小区 exists in many
streets), which is exactly the ambiguity the geocoder must see.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import shapely
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Point
from django.db import transaction
from django.utils import timezone

from gridgov import csvfiles
from gridgov.areas.coords import normalise_crs, to_wgs84
from gridgov.areas.locate import BadPoint, check_lnglat, locate_many
from gridgov.audit.services import audit_record

from .geocode import distance_m
from .models import Place

SAME_PLACE_M = 50.0
CRS_CHOICES = ("wgs84", "gcj02", "bd09")

# Kinds as files spell them, Chinese or English; anything else is a point of interest.
KIND_WORDS = {
    "road": Place.Kind.ROAD,
    "道路": Place.Kind.ROAD,
    "路": Place.Kind.ROAD,
    "街巷": Place.Kind.ROAD,
    "compound": Place.Kind.COMPOUND,
    "小区": Place.Kind.COMPOUND,
    "住宅小区": Place.Kind.COMPOUND,
    "residential": Place.Kind.COMPOUND,
    "居住区": Place.Kind.COMPOUND,
    "building": Place.Kind.BUILDING,
    "楼宇": Place.Kind.BUILDING,
    "建筑": Place.Kind.BUILDING,
    "楼": Place.Kind.BUILDING,
    "poi": Place.Kind.POI,
    "兴趣点": Place.Kind.POI,
}
ALIAS_SEPARATORS = "|;；、,，/"


class BadPlaces(ValueError):
    """A file that cannot be imported as it is; `problems` lists (line or feature, message)."""

    def __init__(self, message: str, problems: Iterable[tuple[str, str]] = ()) -> None:
        self.problems = list(problems)
        super().__init__(message)


@dataclass
class PlaceRow:
    name: str
    kind: str
    lng: float  # in the file's CRS until converted
    lat: float
    address: str = ""
    aliases: list = field(default_factory=list)
    grid_code: str = ""
    polygon: object = None  # shapely geometry in the file's CRS until converted
    where: str = ""  # "line 7" / "feature 3", for messages


def parse_kind(value: str | None, default: str = Place.Kind.POI) -> str:
    value = (value or "").strip()
    return KIND_WORDS.get(value.lower(), KIND_WORDS.get(value, default)) if value else default


def parse_aliases(value: object) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value or "")
    for sep in ALIAS_SEPARATORS[1:]:
        text = text.replace(sep, ALIAS_SEPARATORS[0])
    return [a.strip() for a in text.split(ALIAS_SEPARATORS[0]) if a.strip()]


# --- reading ------------------------------------------------------------------------------------


def read_places(
    path: str | Path, *, name_field: str = "name", kind_field: str = "kind", default_kind: str = Place.Kind.POI
) -> tuple[list[PlaceRow], list[tuple[str, str]]]:
    """Rows from a CSV (columns name, kind, lng, lat, address; optional aliases, grid_code) or a
    GeoJSON FeatureCollection (Point, LineString or Polygon features and the same properties).
    Returns (rows, problems); coordinates are still in the file's CRS."""
    path = Path(path)
    if not path.is_file():
        raise BadPlaces(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        return _read_geojson(path, name_field, kind_field, default_kind)
    if suffix in (".csv", ".txt"):
        return _read_csv(path, name_field, kind_field, default_kind)
    raise BadPlaces(f"{path}: expected .csv or .geojson")


def _read_csv(
    path: Path, name_field: str, kind_field: str, default_kind: str
) -> tuple[list[PlaceRow], list[tuple[str, str]]]:
    rows, problems = [], []
    try:
        header, records = csvfiles.read_table(csvfiles.decode(path.read_bytes())[0])
    except csvfiles.CsvError as exc:
        raise BadPlaces(f"{path}: {exc}") from None
    missing = [c for c in (name_field, "lng", "lat") if c not in header]
    if missing:
        raise BadPlaces(f"{path}: missing columns {missing}; the header has {header}")
    for line, cells in records:
        where = f"line {line}"
        # A row wider or narrower than the header has its cells under the wrong columns.
        width = csvfiles.width_problem(header, cells)
        if width:
            problems.append((where, width))
            continue
        rec = {k: v.strip() for k, v in zip(header, cells, strict=True)}
        name = rec.get(name_field, "")
        if not name:
            problems.append((where, "no name"))
            continue
        try:
            lng, lat = check_lnglat(rec.get("lng"), rec.get("lat"))
        except BadPoint as exc:
            problems.append((where, str(exc)))
            continue
        rows.append(
            PlaceRow(
                name=name,
                kind=parse_kind(rec.get(kind_field), default_kind),
                lng=lng,
                lat=lat,
                address=rec.get("address", ""),
                aliases=parse_aliases(rec.get("aliases", "")),
                grid_code=rec.get("grid_code", ""),
                where=where,
            )
        )
    return rows, problems


def _unclosed_ring(geometry: Any) -> bool:
    """True if a GeoJSON Polygon / MultiPolygon has a ring whose last point is not its first
    (shapely would close it silently: a guess at the outline)."""
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    try:
        return any(ring and list(ring[0]) != list(ring[-1]) for polygon in polygons or () for ring in polygon)
    except TypeError:
        return False  # malformed coordinates: shapely's own error names them


def _read_geojson(
    path: Path, name_field: str, kind_field: str, default_kind: str
) -> tuple[list[PlaceRow], list[tuple[str, str]]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadPlaces(f"{path}: not valid JSON ({exc})") from None
    features = doc.get("features") if isinstance(doc, dict) else None
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        features = [doc]
    if not isinstance(features, list):
        raise BadPlaces(f"{path}: expected a GeoJSON FeatureCollection")
    rows, problems = [], []
    for n, feat in enumerate(features, start=1):
        where = f"feature {n}"
        if not isinstance(feat, dict):
            problems.append((where, "not a GeoJSON feature"))
            continue
        props = feat.get("properties") or {}
        name = str(props.get(name_field) or "").strip()
        if not name:
            problems.append((where, f"no {name_field!r} property"))
            continue
        if isinstance(feat.get("geometry"), dict) and _unclosed_ring(feat["geometry"]):
            problems.append((where, "多边形的环没有闭合（末点与首点坐标不同）/ polygon ring not closed"))
            continue
        try:
            geom = shapely.geometry.shape(feat.get("geometry") or {})
        except (ValueError, AttributeError, TypeError, KeyError, shapely.errors.GEOSException) as exc:
            problems.append((where, f"bad geometry ({exc})"))
            continue
        if geom.is_empty:
            problems.append((where, "empty geometry"))
            continue
        polygon = None
        if geom.geom_type in ("Polygon", "MultiPolygon"):
            polygon = geom if geom.is_valid else shapely.make_valid(geom)
            point = polygon.point_on_surface()
        elif geom.geom_type in ("LineString", "MultiLineString"):
            # A road's point is its middle along the line, which lies on the road.
            point = shapely.line_interpolate_point(shapely.line_merge(geom), 0.5, normalized=True)
            if point.is_empty:
                point = geom.representative_point()
        elif geom.geom_type == "Point":
            point = geom
        else:
            point = geom.representative_point()
        try:
            lng, lat = check_lnglat(point.x, point.y)
        except BadPoint as exc:
            problems.append((where, str(exc)))
            continue
        default = Place.Kind.ROAD if geom.geom_type in ("LineString", "MultiLineString") else default_kind
        rows.append(
            PlaceRow(
                name=name,
                kind=parse_kind(props.get(kind_field), default),
                lng=lng,
                lat=lat,
                address=str(props.get("address") or "").strip(),
                aliases=parse_aliases(props.get("aliases") or ""),
                grid_code=str(props.get("grid_code") or "").strip(),
                polygon=polygon,
                where=where,
            )
        )
    return rows, problems


# --- writing ------------------------------------------------------------------------------------


def _to_wgs84(rows: list[PlaceRow], crs: str) -> None:
    if crs == "wgs84" or not rows:
        return
    lng, lat = to_wgs84(np.array([r.lng for r in rows]), np.array([r.lat for r in rows]), crs)
    for r, x, y in zip(rows, lng.tolist(), lat.tolist(), strict=True):
        r.lng, r.lat = x, y
        if r.polygon is not None:
            r.polygon = shapely.transform(r.polygon, lambda c: np.column_stack(to_wgs84(c[:, 0], c[:, 1], crs)))


def _multipolygon(geom: Any) -> MultiPolygon | None:
    if geom is None:
        return None
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]
    if not parts:
        return None
    return cast(MultiPolygon, GEOSGeometry(memoryview(shapely.to_wkb(shapely.MultiPolygon(parts))), srid=4326))


@transaction.atomic
def places_import(
    rows: Iterable[PlaceRow], *, crs: str = "wgs84", source: str = "", actor: str = "", now: datetime | None = None
) -> dict[str, int]:
    """Create or update places from rows (coordinates in `crs`). Returns the counts, also kept
    in the audit record."""
    crs = normalise_crs(crs)
    if crs not in CRS_CHOICES:
        raise BadPlaces(f"--crs must be one of {', '.join(CRS_CHOICES)}")
    now = now or timezone.now()
    rows = list(rows)
    _to_wgs84(rows, crs)
    need = [r for r in rows if not r.grid_code]
    if need:
        for r, chain in zip(need, locate_many([(r.lng, r.lat) for r in need]), strict=True):
            r.grid_code = chain.grid_code if chain is not None else ""
    existing: dict[Any, Any] = {}
    for p in Place.objects.filter(name__in=sorted({r.name for r in rows})):
        existing.setdefault((p.name, p.kind), []).append(p)
    new, changed, unchanged = [], {}, 0
    for r in rows:
        same = [
            p
            for p in existing.get((r.name, r.kind), [])
            if distance_m(p.point.x, p.point.y, r.lng, r.lat) <= SAME_PLACE_M
        ]
        polygon = _multipolygon(r.polygon)
        if not same:
            place = Place(
                name=r.name,
                kind=r.kind,
                aliases=sorted(set(r.aliases) - {r.name}),
                address=r.address,
                point=Point(r.lng, r.lat, srid=4326),
                polygon=polygon,
                grid_code=r.grid_code,
                source=source,
                created_at=now,
            )
            new.append(place)
            existing.setdefault((r.name, r.kind), []).append(place)
            continue
        p = same[0]
        before = (p.aliases, p.address, round(p.point.x, 7), round(p.point.y, 7), p.grid_code)
        p.aliases = sorted(set(p.aliases) | set(r.aliases) - {p.name})
        p.address = r.address or p.address
        p.point = Point(r.lng, r.lat, srid=4326)
        p.grid_code = r.grid_code
        p.polygon = polygon or p.polygon
        if before != (p.aliases, p.address, round(r.lng, 7), round(r.lat, 7), p.grid_code) or polygon is not None:
            if p.pk:
                changed[p.pk] = p
        else:
            unchanged += 1
    Place.objects.bulk_create(new, batch_size=2000)
    for p in changed.values():
        p.source = source or p.source
        p.save()
    counts = {
        "rows": len(rows),
        "created": len(new),
        "updated": len(changed),
        "unchanged": unchanged,
        "outside_grids": sum(1 for r in rows if not r.grid_code),
    }
    audit_record(
        actor=actor or "system",
        action="places.import",
        object_type="places.place",
        object_id=source[:64],
        data={"source": source, "crs": crs, **counts},
    )
    return counts
