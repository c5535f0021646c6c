"""The hotline centre's oversight (督办): what a colour change means, which appeals are under
supervision or escalated, and how units' returns (退单) fared in arbitration. Reads only, except
`colour_change_data`, which services.appeal_colour_refresh records.

Orange is supervision by the hotline centre; red is escalation (提级处置) to the district the
appeal lies in, whose leaders then see it in `supervision_list`. Both stay on the appeal as its
warning_colour and in its history (AppealEvent "colour_orange" / "colour_red").
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from gridgov.accounts.access import Viewer, jurisdiction
from gridgov.accounts.models import Department, Role
from gridgov.appeals.models import Appeal, AppealAssignment, AppealEvent, WarningColour
from gridgov.appeals.timelimits import clock
from gridgov.appeals.workflow import ON_CLOCK_STATES
from gridgov.areacodes import district_code_of

COLOURS = [c.value for c in WarningColour]  # none, yellow, orange, red: rising
SUPERVISED = (WarningColour.ORANGE, WarningColour.RED)
OVERSIGHT_ROLES = {Role.HOTLINE_CENTER, Role.ADMIN}


def district_of(appeal: Appeal) -> str:
    """The district an escalated appeal goes to: its grid's, else its unit's ('' = the city)."""
    if district_code_of(appeal.grid_code or ""):
        return district_code_of(appeal.grid_code)
    dept = appeal.department if appeal.department_id else None
    return dept.district_code if dept is not None else ""


def colour_change_data(appeal: Appeal, old: str, new: str) -> dict[str, Any]:
    """What a colour change records: the colours passed over while nothing ran, when the new
    colour fell due (the sweep may run later), supervision and escalation."""
    lo, hi = COLOURS.index(old), COLOURS.index(new)
    data: dict[str, Any] = {
        "old": old,
        "new": new,
        "supervised": new in SUPERVISED,
        "escalated": new == WarningColour.RED,
    }
    if hi > lo + 1:
        data["skipped"] = COLOURS[lo + 1 : hi]
    if hi > 0 and appeal.deadline is not None:
        due = clock.colour_changes(appeal.received_at, appeal.deadline, settings.WARNING_THRESHOLDS)[hi - 1]
        data["due_at"] = timezone.localtime(due).isoformat()
    if new == WarningColour.RED:
        data["escalated_to"] = {"district": district_of(appeal)}
    return data


# --- who oversees what ------------------------------------------------------------------------


def oversight_appeals(user: Viewer) -> QuerySet[Appeal]:
    """Appeals `user` oversees: everything for the hotline centre and administrators, its own
    (lead or assisting) for a unit's staff, the street's for a street office, the district's
    (or the city's) for a leader; nothing for anyone else."""
    qs = Appeal.objects.all()
    if user is None or not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_superuser or user.role in OVERSIGHT_ROLES:
        return qs
    if user.role == Role.DEPARTMENT:
        if not user.department_id:
            return qs.none()
        assisted = AppealAssignment.objects.filter(department_id=user.department_id, ended_at__isnull=True)
        return qs.filter(Q(department_id=user.department_id) | Q(pk__in=assisted.values("appeal_id")))
    if user.role in (Role.STREET_OFFICE, Role.LEADER):
        prefixes = jurisdiction(user)
        if prefixes is None:
            return qs
        cond = Q(pk__in=[])
        for p in prefixes:
            cond |= Q(grid_code__startswith=p)
        return qs.filter(cond)
    return qs.none()


def supervision_list(user: Viewer, now: datetime | None = None) -> list[dict[str, Any]]:
    """Orange and red appeals on the clock, by unit, most escalated units first; each appeal with
    its deadline, since when it has had its colour, how long it is overdue (zero while orange) and
    the time it has left. Leaders see only red: what was escalated to them.

    [{"department": {"id", "code", "name"}, "orange": n, "red": n, "max_overdue": timedelta,
      "appeals": [{"id", "ticket_no", "state", "warning_colour", "deadline", "grid_code",
                   "colour_since", "overdue", "time_left"}, ...]}, ...]"""
    now = now or timezone.now()
    colours = (
        [WarningColour.RED]
        if getattr(user, "role", None) == Role.LEADER and not user.is_superuser  # type: ignore[union-attr]
        else list(SUPERVISED)
    )
    since = (
        AppealEvent.objects.filter(appeal=OuterRef("pk"), event__startswith="colour_")
        .order_by("-at", "-id")
        .values("at")[:1]
    )
    rows = (
        oversight_appeals(user)
        .filter(state__in=ON_CLOCK_STATES, warning_colour__in=colours)
        .select_related("department")
        .annotate(colour_since=Subquery(since))
        .order_by("deadline", "pk")
    )
    units: dict[Any, Any] = {}
    for a in rows:
        d = a.department
        unit = units.setdefault(
            a.department_id,
            {
                "department": {"id": a.department_id, "code": d.code if d else "", "name": d.name if d else ""},
                "orange": 0,
                "red": 0,
                "max_overdue": timedelta(0),
                "appeals": [],
            },
        )
        late = now - a.deadline if a.deadline else timedelta(0)
        unit[a.warning_colour] += 1
        unit["max_overdue"] = max(unit["max_overdue"], late)
        unit["appeals"].append(
            {
                "id": a.pk,
                "ticket_no": a.ticket_no,
                "state": a.state,
                "warning_colour": a.warning_colour,
                "deadline": a.deadline,
                "grid_code": a.grid_code,
                "colour_since": a.colour_since,
                "overdue": max(late, timedelta(0)),
                "time_left": max(-late, timedelta(0)),
            }
        )
    return sorted(units.values(), key=lambda u: (-u["red"], -u["orange"], -u["max_overdue"], u["department"]["code"]))


def escalated_to_district(district_code: str, now: datetime | None = None) -> QuerySet[Appeal]:
    """Red appeals on the clock in a district: the flag its leaders act on (提级处置)."""
    return (
        Appeal.objects.filter(
            state__in=ON_CLOCK_STATES, warning_colour=WarningColour.RED, grid_code__startswith=district_code
        )
        .select_related("department")
        .order_by("deadline", "pk")
    )


# --- disputes (退单) ----------------------------------------------------------------------------


def dispute_counts(since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """Per unit: returns it made (退单) in [since, until), and how the hotline centre decided the
    returns it made: upheld (reassigned to another unit) or refused (the unit keeps the appeal).
    A decision counts for the unit whose return it answered, and in the window it was taken in.

    [{"department", "name", "made", "upheld", "refused"}, ...], most returns first."""
    window = Q()
    if since is not None:
        window &= Q(at__gte=since)
    if until is not None:
        window &= Q(at__lt=until)
    made = (
        AppealEvent.objects.filter(window, event="return")
        .values("department_id")
        .annotate(n=Count("id"))
        .values_list("department_id", "n")
    )
    # The return a decision answers is the latest one on the same appeal before it.
    returner = Subquery(
        AppealEvent.objects.filter(appeal=OuterRef("appeal"), event="return", id__lt=OuterRef("id"))
        .order_by("-id")
        .values("department_id")[:1]
    )
    decided = (
        AppealEvent.objects.filter(window, event__in=["reassign", "reject_return"])
        .annotate(returner=returner)
        .values("returner", "event")
        .annotate(n=Count("id"))
        .values_list("returner", "event", "n")
    )
    counts: dict[Any, Any] = {}
    for dept_id, n in made:
        counts.setdefault(dept_id, {"made": 0, "upheld": 0, "refused": 0})["made"] += n
    for dept_id, event, n in decided:
        key = "upheld" if event == "reassign" else "refused"
        counts.setdefault(dept_id, {"made": 0, "upheld": 0, "refused": 0})[key] += n
    depts = {
        pk: (code, name)
        for pk, code, name in Department.objects.filter(pk__in=[k for k in counts if k]).values_list(
            "pk", "code", "name"
        )
    }
    out = [{"department": depts.get(k, ("", ""))[0], "name": depts.get(k, ("", ""))[1], **v} for k, v in counts.items()]
    return sorted(out, key=lambda r: (-r["made"], r["department"]))
