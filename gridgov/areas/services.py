"""Writes to the boundaries: one door, so every change is versioned and audited."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from django.db import transaction
from django.utils import timezone

from gridgov.audit.services import audit_record

from .models import AreaVersion, ImportRun

# Boundaries closer than this (degrees, ~1 cm) count as unchanged on re-import.
SAME_GEOMETRY_TOLERANCE = 1e-7


def as_multipolygon(geom: GEOSGeometry | str) -> MultiPolygon:
    geom = GEOSGeometry(geom) if not isinstance(geom, GEOSGeometry) else geom
    if geom.geom_type == "Polygon":
        geom = MultiPolygon(geom, srid=geom.srid)
    if geom.srid is None:
        geom.srid = 4326
    return cast(MultiPolygon, geom)  # areas are polygons or multipolygons


def area_save_version(
    model: type[AreaVersion],
    *,
    code: str,
    name: str,
    geom: GEOSGeometry | str,
    run: ImportRun,
    when: datetime | None = None,
) -> str:
    """Create or revise the area `code` of this level. Returns 'created', 'changed' or 'unchanged'.

    A change never edits the current row: it is closed at `when` and a new version starts
    then, so references to the old version (appeals located in it) keep their meaning."""
    when = when or timezone.now()
    geom = as_multipolygon(geom)
    current = model.objects.select_for_update().filter(code=code, valid_to__isnull=True).first()
    if current is None:
        last = model.objects.filter(code=code).order_by("-version").values_list("version", flat=True).first()
        model.objects.create(code=code, name=name, geom=geom, version=(last or 0) + 1, valid_from=when, import_run=run)
        return "created"
    if current.name == name and current.geom.equals_exact(geom, SAME_GEOMETRY_TOLERANCE):
        return "unchanged"
    current.valid_to = when
    current.save(update_fields=["valid_to"])
    model.objects.create(code=code, name=name, geom=geom, version=current.version + 1, valid_from=when, import_run=run)
    return "changed"


@transaction.atomic
def areas_replace(
    model: type[AreaVersion],
    features: Iterable[tuple[str, str, GEOSGeometry | str]],
    *,
    source: str,
    crs: str,
    actor: str = "",
    report: dict[str, Any] | None = None,
    when: datetime | None = None,
) -> ImportRun:
    """Apply (code, name, geom) features to one level in one transaction, with an ImportRun
    as the audit record. Returns the ImportRun."""
    run = ImportRun.objects.create(level=model.LEVEL, source=source, crs=crs, actor=actor, report=report or {})
    counts = {"created": 0, "changed": 0, "unchanged": 0}
    for code, name, geom in features:
        counts[area_save_version(model, code=code, name=name, geom=geom, run=run, when=when)] += 1
    ImportRun.objects.filter(pk=run.pk).update(**counts)
    run.refresh_from_db()
    audit_record(
        actor=actor or "system",
        action="areas.import",
        obj=run,
        data={"level": model.LEVEL, "source": source, "crs": crs, **counts},
    )
    return run
