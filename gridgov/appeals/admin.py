from django.contrib import admin

from gridgov.accounts.access import can_edit_areas
from gridgov.appeals.models import Category, ResponsibilityRule


class CatalogueAdmin(admin.ModelAdmin):
    """The catalogue is maintained by administrators; everyone else reads it through the app."""

    def has_module_permission(self, request):
        return can_edit_areas(request.user)

    def has_view_permission(self, request, obj=None):
        return can_edit_areas(request.user)

    def has_add_permission(self, request):
        return can_edit_areas(request.user)

    def has_change_permission(self, request, obj=None):
        return can_edit_areas(request.user)

    def has_delete_permission(self, request, obj=None):
        return False  # appeals and rules refer to catalogue rows; retire them instead


@admin.register(Category)
class CategoryAdmin(CatalogueAdmin):
    list_display = ["code", "name", "level", "time_limit", "default_department", "is_active"]
    list_filter = ["level", "time_limit", "is_active"]
    search_fields = ["code", "name"]
    list_select_related = ["default_department"]
    autocomplete_fields = ["parent"]
    raw_id_fields = ["default_department"]


@admin.register(ResponsibilityRule)
class ResponsibilityRuleAdmin(CatalogueAdmin):
    """A rule in force may only be ended here (valid_to); what it says is history. To hand a
    category to another unit, end the rule and add the new one from the same moment."""

    list_display = ["category", "area_code", "department", "role", "valid_from", "valid_to"]
    list_filter = ["role", "valid_to"]
    search_fields = ["category__code", "category__name", "area_code", "department__name"]
    list_select_related = ["category", "department"]
    raw_id_fields = ["category", "department"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        fixed = ("category", "area_code", "department", "role", "valid_from", "note")
        return fixed + (("valid_to",) if obj.valid_to is not None else ())
