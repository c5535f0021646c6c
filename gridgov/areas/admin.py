from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin
from django.core.exceptions import PermissionDenied
from django.db import transaction

from gridgov.accounts.access import can_edit_areas, scope_codes

from .models import LEVELS, ImportRun
from .services import SAME_GEOMETRY_TOLERANCE, area_save_version
from .widgets import OfflineMapWidget


class AreaAdmin(GISModelAdmin):
    """Boundaries are browsed here on a map. An area administrator may redraw or rename the
    current version; the edit is saved as a new version through area_save_version with an
    ImportRun (source "admin") as its audit record, never in place. Closed versions are
    history and stay read-only."""

    gis_widget_kwargs: dict = {"attrs": {"default_lon": 116.40, "default_lat": 39.90, "default_zoom": 12}}

    list_display = ("code", "name", "version", "valid_from", "valid_to")
    list_filter = ("valid_to",)
    search_fields = ("code", "name")
    readonly_fields = ("code", "version", "valid_from", "valid_to", "import_run")
    gis_widget = OfflineMapWidget

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and isinstance(field.widget, OfflineMapWidget):
            field.widget.csp_nonce = getattr(request, "csp_nonce", None)  # type: ignore[attr-defined]
        return field

    def get_queryset(self, request):
        return scope_codes(super().get_queryset(request), request.user, with_ancestors=True)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def get_readonly_fields(self, request, obj=None):
        if can_edit_areas(request.user) and (obj is None or obj.is_current):
            return self.readonly_fields
        return self.readonly_fields + ("name", "geom")

    def save_model(self, request, obj, form, change):
        if not change:
            raise PermissionDenied  # areas are added by import_areas only
        model = type(obj)
        # `obj` is the stored row with the form's values applied in memory; that row must not
        # change, so compare against what is stored and write a new version instead.
        stored = model.objects.get(pk=obj.pk)
        if stored.name == obj.name and stored.geom.equals_exact(obj.geom, SAME_GEOMETRY_TOLERANCE):
            obj.refresh_from_db()
            return
        if not can_edit_areas(request.user) or not stored.is_current:
            raise PermissionDenied
        with transaction.atomic():
            run = ImportRun.objects.create(
                level=model.LEVEL,
                source="admin",
                crs="wgs84",
                actor=request.user.get_username(),
                report={"edited": obj.code, "fields": sorted(set(form.changed_data) & {"name", "geom"})},
            )
            outcome = area_save_version(model, code=obj.code, name=obj.name, geom=obj.geom, run=run)
            ImportRun.objects.filter(pk=run.pk).update(**{outcome: 1})
        # Hand the new version back to the admin, so "save and continue" opens it and the
        # change log names it.
        obj.pk = model.objects.current().get(code=obj.code).pk
        obj.refresh_from_db()


for _model in LEVELS.values():
    admin.site.register(_model, AreaAdmin)


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = ("id", "level", "source", "crs", "started_at", "created", "changed", "unchanged")
    readonly_fields = tuple(f.name for f in ImportRun._meta.fields)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_module_permission(self, request):
        return can_edit_areas(request.user)

    def has_view_permission(self, request, obj=None):
        return can_edit_areas(request.user)
