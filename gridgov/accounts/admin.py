from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .access import can_edit_areas
from .models import Department, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "first_name", "role", "area_code", "department", "is_active"]
    list_filter = ["role", "is_active"]
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("辖区", {"fields": ("role", "area_code", "grid_codes", "department", "phone")}),
    )

    def has_module_permission(self, request):
        return can_edit_areas(request.user)

    has_view_permission = has_change_permission = has_add_permission = lambda self, request, obj=None: can_edit_areas(  # type: ignore[misc]
        request.user
    )  # noqa: E731


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "district_code", "street_code", "phone"]
    search_fields = ["code", "name"]

    def has_module_permission(self, request):
        return can_edit_areas(request.user)

    has_view_permission = has_change_permission = has_add_permission = lambda self, request, obj=None: can_edit_areas(  # type: ignore[misc]
        request.user
    )  # noqa: E731
