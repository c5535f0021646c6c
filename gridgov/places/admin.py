from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin

from gridgov.accounts.access import can_edit_areas
from gridgov.areas.widgets import OfflineMapWidget

from .models import Place


@admin.register(Place)
class PlaceAdmin(GISModelAdmin):
    """The registry is kept by the administrators who keep the boundaries; the geocoder picks
    up every change on its next lookup."""

    list_display = ("name", "kind", "grid_code", "address", "source", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name", "address", "grid_code")
    readonly_fields = ("created_at", "updated_at")
    gis_widget = OfflineMapWidget
    gis_widget_kwargs: dict = {"attrs": {"default_lon": 116.40, "default_lat": 39.90, "default_zoom": 12}}

    def has_module_permission(self, request):
        return can_edit_areas(request.user)

    def has_view_permission(self, request, obj=None):
        return can_edit_areas(request.user)

    def has_add_permission(self, request):
        return can_edit_areas(request.user)

    def has_change_permission(self, request, obj=None):
        return can_edit_areas(request.user)

    def has_delete_permission(self, request, obj=None):
        return can_edit_areas(request.user)
