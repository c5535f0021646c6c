from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied

from .access import can_edit_areas
from .models import Department, User
from .services import user_sessions_revoke


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "first_name", "role", "area_code", "department", "is_active"]
    list_filter = ["role", "is_active"]
    actions = ["revoke_logins"]
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("辖区", {"fields": ("role", "area_code", "grid_codes", "department", "phone")}),
    )

    def has_module_permission(self, request):
        return can_edit_areas(request.user)

    has_view_permission = has_change_permission = has_add_permission = lambda self, request, obj=None: can_edit_areas(  # type: ignore[misc]
        request.user
    )  # noqa: E731

    @admin.action(description="吊销全部登录（会话和手机令牌）")
    def revoke_logins(self, request, queryset):
        if not can_edit_areas(request.user):
            raise PermissionDenied
        sessions = tokens = 0
        for user in queryset:
            counts = user_sessions_revoke(user=user, actor=request.user)
            sessions, tokens = sessions + counts["sessions"], tokens + counts["tokens"]
        self.message_user(
            request,
            f"已吊销 {len(queryset)} 个用户的全部登录：{sessions} 个网页会话，{tokens} 个手机令牌。",
            messages.SUCCESS,
        )


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "district_code", "street_code", "phone"]
    search_fields = ["code", "name"]

    def has_module_permission(self, request):
        return can_edit_areas(request.user)

    has_view_permission = has_change_permission = has_add_permission = lambda self, request, obj=None: can_edit_areas(  # type: ignore[misc]
        request.user
    )  # noqa: E731
