"""Who may see and do what with hotspots, suggestions and whistle calls. Built on
gridgov.accounts.access: areas are scoped by the same code prefixes as everything else.

    see a hotspot      city-wide roles all; leaders their district (or the city); street offices
                       their street; grid workers their grids; departments only hotspots a call
                       they were summoned to came from
    see a suggestion   the same, without departments: a suggestion is the street's to decide
    see a call         the same areas; a department only the calls it was summoned to
    blow / close / cancel / decide a suggestion / rate departments: the street office of the
                       street (and administrators)
    answer a muster / rate the street: staff of the summoned department
Outside its sight a user gets 404, never 403, so an outsider cannot tell a foreign id from a
missing one; inside its sight but without the right, 403.
"""

from django.db.models import Exists, OuterRef, QuerySet

from gridgov.accounts.access import (
    Viewer,
    is_active_user,
    is_city_wide,
    scope_codes,
    sees_by_department,
    staff_department_id,
    works_for,
)
from gridgov.accounts.models import Role
from gridgov.areacodes import street_code_of

from .models import Hotspot, Muster, WhistleCall, WhistleSuggestion


def _summoned(department_id: int) -> QuerySet[Muster]:
    return Muster.objects.filter(call=OuterRef("pk"), department_id=department_id)


def hotspots_visible_to(user: Viewer, queryset: QuerySet[Hotspot] | None = None) -> QuerySet[Hotspot]:
    qs = Hotspot.objects.all() if queryset is None else queryset
    if not is_active_user(user):
        return qs.none()
    if is_city_wide(user):
        return qs
    if user.role in (Role.LEADER, Role.STREET_OFFICE, Role.GRID_WORKER):
        return scope_codes(qs, user, field="grid_code")
    if sees_by_department(user) and user.department_id:
        calls = WhistleCall.objects.filter(hotspot=OuterRef("pk")).filter(
            Exists(Muster.objects.filter(call=OuterRef("pk"), department_id=user.department_id))
        )
        return qs.filter(Exists(calls))
    return qs.none()


def suggestions_visible_to(
    user: Viewer, queryset: QuerySet[WhistleSuggestion] | None = None
) -> QuerySet[WhistleSuggestion]:
    qs = WhistleSuggestion.objects.all() if queryset is None else queryset
    if not is_active_user(user):
        return qs.none()
    if is_city_wide(user):
        return qs
    if user.role in (Role.LEADER, Role.STREET_OFFICE):
        return scope_codes(qs, user, field="street_code")
    return qs.none()


def calls_visible_to(user: Viewer, queryset: QuerySet[WhistleCall] | None = None) -> QuerySet[WhistleCall]:
    qs = WhistleCall.objects.all() if queryset is None else queryset
    if not is_active_user(user):
        return qs.none()
    if is_city_wide(user):
        return qs
    if user.role in (Role.LEADER, Role.STREET_OFFICE):
        return scope_codes(qs, user, field="street_code")
    if user.role == Role.GRID_WORKER:
        streets = sorted({street_code_of(c) for c in user.grid_codes})
        return qs.filter(street_code__in=streets) if streets else qs.none()
    if sees_by_department(user) and user.department_id:
        return qs.filter(Exists(_summoned(user.department_id)))
    return qs.none()


def is_street_office_of(user: Viewer, street_code: str) -> bool:
    """The street's own office (or an administrator): blows, decides, closes, rates departments."""
    if not is_active_user(user):
        return False
    if user.is_superuser or user.role == Role.ADMIN:
        return True
    return user.role == Role.STREET_OFFICE and user.area_code == street_code


def may_decide_hotspot(user: Viewer, hotspot: Hotspot) -> bool:
    """Acknowledge or dismiss: the street office, or the hotline centre that supervises."""
    return is_street_office_of(user, hotspot.street_code) or (is_active_user(user) and user.role == Role.HOTLINE_CENTER)


def may_answer(user: Viewer, muster: Muster) -> bool:
    """Acknowledge, check in, report and rate the street: staff of the summoned department."""
    return works_for(user, muster.department_id)


def muster_of(user: Viewer, call: WhistleCall) -> Muster | None:
    """The user's department's muster on `call`, or None."""
    department_id = staff_department_id(user)
    if department_id is None:
        return None
    return next((m for m in call.musters.all() if m.department_id == department_id), None)


def may_read_district(user: Viewer, district_code: str) -> bool:
    """The monthly topic of a district: city-wide roles and the leaders of the district or city."""
    if not is_active_user(user):
        return False
    if is_city_wide(user):
        return True
    return user.role == Role.LEADER and (not user.area_code or district_code.startswith(user.area_code))
