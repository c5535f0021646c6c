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

from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, QuerySet

from gridgov.accounts.access import CITY_WIDE_ROLES, Viewer, scope_codes
from gridgov.accounts.models import Role, User

from .models import Hotspot, Muster, WhistleCall, WhistleSuggestion

if TYPE_CHECKING:
    from typing_extensions import TypeIs


def _active(user: Viewer) -> "TypeIs[User]":
    return bool(user is not None and user.is_authenticated and user.is_active)


def _city_wide(user: User) -> bool:
    return user.is_superuser or user.role in CITY_WIDE_ROLES


def _summoned(user: User) -> QuerySet[Muster]:
    return Muster.objects.filter(call=OuterRef("pk"), department_id=user.department_id)  # type: ignore[misc]  # asked for department staff only


def hotspots_visible_to(user: Viewer, queryset: QuerySet[Hotspot] | None = None) -> QuerySet[Hotspot]:
    qs = Hotspot.objects.all() if queryset is None else queryset
    if not _active(user):
        return qs.none()
    if _city_wide(user):
        return qs
    if user.role in (Role.LEADER, Role.STREET_OFFICE, Role.GRID_WORKER):
        return scope_codes(qs, user, field="grid_code")
    if user.role == Role.DEPARTMENT and user.department_id:
        calls = WhistleCall.objects.filter(hotspot=OuterRef("pk")).filter(
            Exists(Muster.objects.filter(call=OuterRef("pk"), department_id=user.department_id))
        )
        return qs.filter(Exists(calls))
    return qs.none()


def suggestions_visible_to(
    user: Viewer, queryset: QuerySet[WhistleSuggestion] | None = None
) -> QuerySet[WhistleSuggestion]:
    qs = WhistleSuggestion.objects.all() if queryset is None else queryset
    if not _active(user):
        return qs.none()
    if _city_wide(user):
        return qs
    if user.role in (Role.LEADER, Role.STREET_OFFICE):
        return scope_codes(qs, user, field="street_code")
    return qs.none()


def calls_visible_to(user: Viewer, queryset: QuerySet[WhistleCall] | None = None) -> QuerySet[WhistleCall]:
    qs = WhistleCall.objects.all() if queryset is None else queryset
    if not _active(user):
        return qs.none()
    if _city_wide(user):
        return qs
    if user.role in (Role.LEADER, Role.STREET_OFFICE):
        return scope_codes(qs, user, field="street_code")
    if user.role == Role.GRID_WORKER:
        streets = sorted({c[:9] for c in user.grid_codes})
        return qs.filter(street_code__in=streets) if streets else qs.none()
    if user.role == Role.DEPARTMENT and user.department_id:
        return qs.filter(Exists(_summoned(user)))
    return qs.none()


def is_street_office_of(user: Viewer, street_code: str) -> bool:
    """The street's own office (or an administrator): blows, decides, closes, rates departments."""
    if not _active(user):
        return False
    if user.is_superuser or user.role == Role.ADMIN:
        return True
    return user.role == Role.STREET_OFFICE and user.area_code == street_code


def may_decide_hotspot(user: Viewer, hotspot: Hotspot) -> bool:
    """Acknowledge or dismiss: the street office, or the hotline centre that supervises."""
    return is_street_office_of(user, hotspot.street_code) or (_active(user) and user.role == Role.HOTLINE_CENTER)


def may_answer(user: Viewer, muster: Muster) -> bool:
    """Acknowledge, check in, report and rate the street: staff of the summoned department."""
    return (
        _active(user)
        and user.role == Role.DEPARTMENT
        and user.department_id is not None
        and muster.department_id == user.department_id
    )


def muster_of(user: Viewer, call: WhistleCall) -> Muster | None:
    """The user's department's muster on `call`, or None."""
    if not _active(user) or user.role != Role.DEPARTMENT or not user.department_id:
        return None
    return next((m for m in call.musters.all() if m.department_id == user.department_id), None)


def may_read_district(user: Viewer, district_code: str) -> bool:
    """The monthly topic of a district: city-wide roles and the leaders of the district or city."""
    if not _active(user):
        return False
    if _city_wide(user):
        return True
    return user.role == Role.LEADER and (not user.area_code or district_code.startswith(user.area_code))
