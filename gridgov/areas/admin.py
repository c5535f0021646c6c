from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin

from gridgov.accounts.access import can_edit_areas, scope_codes

from .models import LEVELS, ImportRun


class AreaAdmin(GISModelAdmin):
    """Boundaries are browsed here on a map; they change only through import_areas, which
    versions them, so the admin is read-only for the geometry history."""

    list_display = ["code", "name", "version", "valid_from", "valid_to"]
    list_filter = ["valid_to"]
    search_fields = ["code", "name"]
    readonly_fields = ("code", "version", "valid_from", "valid_to", "import_run")

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
        if can_edit_areas(request.user):
            return self.readonly_fields + ("geom",)
        return self.readonly_fields + ("name", "geom")


for _model in LEVELS.values():
    admin.site.register(_model, AreaAdmin)


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = ["id", "level", "source", "crs", "started_at", "created", "changed", "unchanged"]
    readonly_fields = [f.name for f in ImportRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_module_permission(self, request):
        return can_edit_areas(request.user)

    def has_view_permission(self, request, obj=None):
        return can_edit_areas(request.user)
