"""Who may see an appeal, see its appellant, and act on it. Built on gridgov.accounts.access,
so an appeal is scoped by the same grid-code prefixes as everything else; the appeals API and
the intake page ask only these questions."""

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.gis.geos import GEOSGeometry
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Prefetch, Q, QuerySet, Value, When

from gridgov.accounts.access import (
    Viewer,
    is_active_user,
    is_city_wide,
    scope_codes,
    sees_by_department,
    works_for,
)
from gridgov.accounts.models import Role, User
from gridgov.appeals.models import Appeal, AppealAssignment, AppealEvent, Attachment
from gridgov.appeals.workflow import PRE_DISPATCH_STATES, State
from gridgov.areacodes import area_codes_of, level_of
from gridgov.areas.models import Community, District, Street

if TYPE_CHECKING:
    pass

# Actions a unit takes on an appeal it holds (lead or first receiver).
UNIT_ACTIONS = frozenset({"accept", "start", "resolve", "return", "suspend", "resume"})
# The centre's decisions.
CENTRE_ACTIONS = frozenset({"arbitrate", "reassign", "reject_return", "merge", "close", "reopen", "redo"})
# Placing and sorting an appeal: the operator who registered it may finish the job.
INTAKE_ACTIONS = frozenset({"locate", "categorise"})
REGISTER_ROLES = frozenset({Role.OPERATOR, Role.HOTLINE_CENTER, Role.ADMIN})


def appeals_visible_to(user: Viewer, queryset: QuerySet[Appeal] | None = None) -> QuerySet[Appeal]:
    """The appeals `user` may read.

    Operator / HotlineCenter / Admin: all. Leader: its district (or the city). StreetOffice:
    its street. GridWorker: its grids, plus whatever it reported itself. Department staff: the
    appeals its department is on now (lead, first receiver or assisting); a unit that returned
    an appeal successfully stops seeing it."""
    qs = Appeal.objects.all() if queryset is None else queryset
    if not is_active_user(user):
        return qs.none()
    if is_city_wide(user):
        return qs
    if user.role in (Role.LEADER, Role.STREET_OFFICE):
        return scope_codes(qs, user, field="grid_code")
    if user.role == Role.GRID_WORKER:
        grids = Q(grid_code__in=sorted(set(user.grid_codes))) if user.grid_codes else Q(pk__in=[])
        return qs.filter(grids | Q(reporter_id=user.pk))
    if sees_by_department(user) and user.department_id:
        on_it = AppealAssignment.objects.filter(
            appeal=OuterRef("pk"), department_id=user.department_id, ended_at__isnull=True
        )
        return qs.filter(Exists(on_it))
    return qs.none()


def may_register(user: Viewer) -> bool:
    return is_active_user(user) and (user.is_superuser or user.role in REGISTER_ROLES)


def may_see_personal_data(user: Viewer, appeal: Appeal) -> bool:
    """Names, phone numbers and numbers in the text: the hotline (who took the call) and the
    lead unit (who must call the citizen back). Assisting units, streets, grid workers and
    leaders work from the masked appeal. No database access: safe per row of a list."""
    if not is_active_user(user):
        return False
    if is_city_wide(user):
        return True
    return works_for(user, appeal.department_id)


def unmasked_ids(user: Viewer, appeals: Iterable[Appeal]) -> set[int]:
    """The ids among `appeals` whose personal data `user` sees unmasked: the `unmasked` every
    appeal serializer (web and phone) takes in its context."""
    return {a.pk for a in appeals if may_see_personal_data(user, a)}


# What taking a call writes; an event beyond these means a unit (or the centre) has acted.
_INTAKE_EVENTS = frozenset({"register", "queue_for_location", "locate", "categorise", "dispatch", "recategorise"})


def own_intake(user: User, appeal: Appeal) -> bool:
    """Is `appeal` the intake `user` registered, with no unit or centre decision on it since?
    The pipeline dispatches at once on the classifier's guess, so the operator's correction
    right after (the intake page's 确认分类) still belongs to taking the call."""
    events = AppealEvent.objects.filter(appeal_id=appeal.pk).values_list("event", "actor_id")
    registered = False
    for event, actor_id in events:
        if event == "register":
            registered = actor_id == user.pk
        elif event not in _INTAKE_EVENTS and not event.startswith("colour_"):
            return False
    return registered


def may_act(user: Viewer, appeal: Appeal, action: str) -> bool:
    """May `user` take `action` on `appeal` (which it can already see)? The workflow decides
    separately whether the action fits the appeal's state."""
    if not is_active_user(user) or user.role == Role.LEADER:
        return False
    if action in UNIT_ACTIONS:
        # appeal.department is the lead unit, or the first receiver when ownership is unclear.
        return works_for(user, appeal.department_id)
    if action in CENTRE_ACTIONS:
        return user.is_superuser or user.role in (Role.HOTLINE_CENTER, Role.ADMIN)
    if action == "categorise" and appeal.state not in PRE_DISPATCH_STATES:
        # After dispatch a new category re-routes the appeal (改派): the centre's call, or the
        # operator's own correction while the intake is still theirs.
        if user.is_superuser or user.role in (Role.HOTLINE_CENTER, Role.ADMIN):
            return True
        return user.role == Role.OPERATOR and appeal.state == State.DISPATCHED and own_intake(user, appeal)
    if action in INTAKE_ACTIONS:
        return user.is_superuser or user.role in (Role.HOTLINE_CENTER, Role.OPERATOR, Role.ADMIN)
    return False


# --- reads ------------------------------------------------------------------------------------

# Red first: the list is a work queue, the most urgent at the top.
COLOUR_SEVERITY = Case(
    *(When(warning_colour=c, then=Value(i)) for i, c in enumerate(["red", "orange", "yellow", "none"])),
    default=Value(9),
    output_field=IntegerField(),
)
LIST_RELATED = ("grid", "category", "department")


def appeal_list(
    user: Viewer,
    *,
    state: list[str] | None = None,
    colour: list[str] | None = None,
    category: str | None = None,
    grid: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    in_bbox: GEOSGeometry | None = None,
) -> QuerySet[Appeal]:
    """The appeals `user` may read, filtered, by colour severity then the nearest deadline."""
    qs = appeals_visible_to(user).select_related(*LIST_RELATED)
    if state:
        qs = qs.filter(state__in=state)
    if colour:
        qs = qs.filter(warning_colour__in=colour)
    if category:
        qs = qs.filter(category__code__startswith=category)
    if grid:
        qs = qs.filter(grid_code__startswith=grid)
    if since:
        qs = qs.filter(received_at__gte=since)
    if until:
        qs = qs.filter(received_at__lt=until)
    if in_bbox is not None:
        qs = qs.filter(position__intersects=in_bbox)
    return qs.annotate(severity=COLOUR_SEVERITY).order_by(
        "severity", F("deadline").asc(nulls_last=True), "received_at", "pk"
    )


def location_queue(user: Viewer) -> QuerySet[Appeal]:
    """人工定位队列: appeals the pipeline could not place, oldest first."""
    return (
        appeals_visible_to(user)
        .filter(state=State.UNLOCATED)
        .select_related(*LIST_RELATED)
        .order_by("received_at", "pk")
    )


def appeal_for(user: Viewer, ticket_no: str, *, detail: bool = False) -> Appeal:
    """One appeal `user` may read, or Appeal.DoesNotExist (the API answers 404 either way, so
    an outsider cannot tell a foreign ticket from a missing one)."""
    qs = appeals_visible_to(user).select_related(*LIST_RELATED)
    if detail:
        qs = qs.select_related("long_term").prefetch_related(
            Prefetch("events", queryset=AppealEvent.objects.select_related("actor", "department").order_by("at", "pk")),
            Prefetch(
                "assignments",
                queryset=AppealAssignment.objects.select_related("department").order_by("assigned_at", "pk"),
            ),
            Prefetch("attachments", queryset=Attachment.objects.order_by("uploaded_at", "pk")),
        )
    return qs.get(ticket_no=ticket_no)


def area_names(codes: Iterable[str]) -> dict[str, str]:
    """{code: name} for district, street and community codes, in one query; the newest
    version's name where a code has several."""
    by_level: dict[str, set[str]] = {level: set() for level in ("district", "street", "community")}
    for code in codes:
        level = level_of(code)
        if level in by_level:
            by_level[level].add(code)
    parts = [
        model.objects.filter(code__in=sorted(by_level[level])).values_list("code", "name", "version")
        for model, level in ((District, "district"), (Street, "street"), (Community, "community"))
        if by_level[level]
    ]
    if not parts:
        return {}
    rows = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    names: dict[str, str] = {}
    for code, name, _version in sorted(rows, key=lambda r: (r[0], r[2])):
        names[code] = name
    return names


def output_context(user: Viewer, appeals: Iterable[Appeal]) -> dict[str, Any]:
    """What AppealOutput needs for a page of appeals, in a constant number of queries: who is
    unmasked, the grid chain's names, and ticket numbers of duplicates and leads."""
    appeals = list(appeals)
    codes = {c for a in appeals for c in area_codes_of(a.grid_code or "")}
    ids = {d.get("candidate_id") for a in appeals for d in (a.duplicates or [])}
    ids |= {a.lead_appeal_id for a in appeals if a.lead_appeal_id}
    ids.discard(None)
    tickets = dict(Appeal.objects.filter(pk__in=sorted(ids)).values_list("pk", "ticket_no")) if ids else {}
    return {
        "user": user,
        "unmasked": unmasked_ids(user, appeals),
        "area_names": area_names(codes),
        "tickets": tickets,
    }
