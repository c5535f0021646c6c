"""The one place that answers "may this user see / do this?".

A jurisdiction is a list of area-code prefixes: a grid worker's grid codes, a street
office's street code, a district leader's district code. `None` means the whole city. Every
view, the admin and the WebSocket consumers scope through these functions.
"""

from collections.abc import Callable
from typing import TypeGuard, TypeVar

from django.contrib.auth.models import AnonymousUser
from django.db.models import Model, Q, QuerySet

from gridgov.areacodes import ancestor_codes

from .models import Role, User

# Who may be asking: a user, an anonymous visitor, or nobody (a command, a task).
Viewer = User | AnonymousUser | None
# Who acts: a user, or a name such as "system".
Actor = User | str | None
M = TypeVar("M", bound=Model)

CITY_WIDE_ROLES = {Role.OPERATOR, Role.HOTLINE_CENTER, Role.ADMIN}
READ_ONLY_ROLES = {Role.LEADER}


def jurisdiction(user: Viewer) -> list[str] | None:
    """Code prefixes the user is responsible for; None = the whole city; [] = nothing."""
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    if user.is_superuser or user.role in CITY_WIDE_ROLES:
        return None
    if user.role == Role.GRID_WORKER:
        return sorted(set(user.grid_codes))
    if user.role == Role.STREET_OFFICE:
        return [user.area_code] if user.area_code else []
    if user.role == Role.LEADER:
        return [user.area_code] if user.area_code else None
    if user.role == Role.DEPARTMENT:
        dept = user.department
        if dept is None:
            return []
        return [dept.district_code] if dept.district_code else None
    return []


def code_checker(user: Viewer) -> Callable[[str], bool]:
    """code → is it in the user's jurisdiction? The jurisdiction is asked once, so the
    checker suits many codes (a bulk answer)."""
    prefixes = jurisdiction(user)
    if prefixes is None:
        return lambda code: True
    starts = tuple(prefixes)
    return lambda code: code.startswith(starts)


def code_in_jurisdiction(user: Viewer, code: str) -> bool:
    return code_checker(user)(code)


def ancestors(code: str) -> list[str]:
    return ancestor_codes(code)


def scope_codes(queryset: QuerySet[M], user: Viewer, field: str = "code", with_ancestors: bool = False) -> QuerySet[M]:
    """Filter rows whose `field` lies in the user's jurisdiction. With ancestors, the
    enclosing areas of the jurisdiction are kept too (a street office sees its district's
    outline for context, not its sibling streets)."""
    prefixes = jurisdiction(user)
    if prefixes is None:
        return queryset
    if not prefixes:
        return queryset.none()
    cond = Q()
    for p in prefixes:
        cond |= Q(**{f"{field}__startswith": p})
    if with_ancestors:
        anc = {a for p in prefixes for a in ancestors(p)}
        if anc:
            cond |= Q(**{f"{field}__in": sorted(anc)})
    return queryset.filter(cond)


def can_edit_areas(user: Viewer) -> bool:
    return bool(user and user.is_authenticated and (user.is_superuser or user.role == Role.ADMIN))


def can_write(user: Viewer) -> bool:
    """Leaders browse; nobody else is read-only."""
    return bool(user and user.is_authenticated and user.is_active and user.role not in READ_ONLY_ROLES)


# --- who sees by department -------------------------------------------------------------------
# A department's staff see the work addressed to their department (as lead, first receiver or
# assisting unit), never an area: not the appeals, map data or live events of the district it
# serves. The appeals, whistles, maps and channel groups all ask these three questions.


def is_active_user(user: Viewer) -> TypeGuard[User]:
    """A signed-in, active user (the type checker then knows `user` is a User)."""
    return bool(user is not None and user.is_authenticated and user.is_active)


def is_city_wide(user: User) -> bool:
    return bool(user.is_superuser or user.role in CITY_WIDE_ROLES)


def staff_department_id(user: Viewer) -> int | None:
    """The department `user` works for as department staff, or None (any other role)."""
    if not is_active_user(user) or user.role != Role.DEPARTMENT:
        return None
    return user.department_id


def works_for(user: Viewer, department_id: int | None) -> bool:
    """Is `user` staff of the department `department_id`?"""
    return department_id is not None and staff_department_id(user) == department_id


def sees_by_department(user: Viewer) -> bool:
    """Does `user` see by department rather than by area (department staff, not superusers)?"""
    return is_active_user(user) and not user.is_superuser and user.role == Role.DEPARTMENT
