"""Writes to appeals. `appeal_transition` is the one door for state changes, and each action
has its service here; `appeal_register` registers one appeal as a batch of one through the
intake driver (intake/batch.py), whose records come from intake/records.py as this door's do."""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from gridgov.accounts.access import Actor
from gridgov.accounts.models import Department
from gridgov.appeals import notices
from gridgov.appeals.intake import batch, pipeline
from gridgov.appeals.intake.records import (
    assignments_for,
    colour_records,
    dispatch_data,
    locate_data,
    route_record,
    transition_records,
)
from gridgov.appeals.models import Appeal, AppealAssignment, Category, LongTermItem
from gridgov.appeals.timelimits import long_term
from gridgov.appeals.workflow import (
    ON_CLOCK_STATES,
    PRE_DISPATCH_STATES,
    AppealError,  # re-exported: callers catch services.AppealError
    ClosureType,
    State,
    next_state,
)
from gridgov.audit.services import audit_record

logger = logging.getLogger(__name__)


def _publish(appeal: Appeal, event: str) -> None:
    # Real-time fan-out after commit (gridgov.realtime, when installed): notices.py writes the
    # outbox rows in this transaction, they are sent after commit.
    notices.appeal_changed(appeal, event)


@transaction.atomic
def appeal_transition(
    *,
    appeal_id: int,
    event: str,
    actor: Actor,
    note: str = "",
    data: dict[str, Any] | None = None,
    department: Department | None = None,
    **changes: Any,
) -> Appeal:
    """Apply `event` to the appeal under a row lock; write the history row and the audit record.
    `changes` are extra fields set in the same save (e.g. closure_type)."""
    appeal = Appeal.objects.select_for_update().get(pk=appeal_id)
    new = next_state(appeal.state, event)  # raises IllegalTransition
    row, audit = transition_records(
        appeal, event, appeal.state, new, actor=actor, note=note, data=data, department=department
    )
    row.save()
    appeal.state = new
    for field, value in changes.items():
        setattr(appeal, field, value)
    appeal.save(update_fields=["state", "updated_at", *changes])
    audit_record(**audit)
    _publish(appeal, event)
    return appeal


def appeal_dispatch(
    appeal: Appeal, *, actor: Actor, now: datetime | None = None, decision: pipeline.RouteDecision | None = None
) -> Appeal:
    """Route a located appeal and put it on the clock."""
    now = now or timezone.now()
    decision = decision or pipeline.route_step(
        appeal.category, appeal.grid_code, appeal.received_at, appeal.risk.get("flags", [])
    )
    pipeline.require_lead(decision)
    return _dispatch_to(appeal, decision, "dispatch", actor=actor, now=now, limit=appeal.time_limit)


def _dispatch_to(
    appeal: Appeal,
    decision: pipeline.RouteDecision,
    event: str,
    *,
    actor: Actor,
    now: datetime,
    limit: str,
    data: dict[str, Any] | None = None,
    **changes: Any,
) -> Appeal:
    """The units of a route decision take the appeal (dispatch, recategorise): their
    assignments, the route it keeps, its deadline, and the colour it already has."""
    AppealAssignment.objects.bulk_create(assignments_for(appeal, decision, now))
    due, colour, next_at = pipeline.clock_step(appeal.received_at, limit, now)
    route = route_record(decision)
    if data is not None:
        data = {**data, "time_limit": limit, "deadline": due.isoformat() if due else None}
    appeal = appeal_transition(
        appeal_id=appeal.pk,
        event=event,
        actor=actor,
        department=decision.lead,
        data={**(data or {}), **dispatch_data(route)},
        route=route,
        department_id=decision.lead.pk,  # type: ignore[union-attr]  # callers ran require_lead
        deadline=due,
        next_colour_at=next_at,
        **changes,
    )
    if colour != appeal.warning_colour:
        # Dispatched after part of its limit had gone (a late petition, a backfill, a category
        # with a shorter limit): the colour it already has is recorded, with its supervision or
        # escalation, not set silently.
        appeal, _ = appeal_colour_refresh(appeal_id=appeal.pk, now=now)
    return appeal


def appeal_register(
    *,
    data: dict[str, Any],
    actor: Actor,
    classifier: Any = None,
    geocoder: Callable[..., Any] | None = None,
    now: datetime | None = None,
) -> tuple[Appeal, bool]:
    """Register one appeal through the whole pipeline, as a batch of one (intake/batch.py): what
    it goes through and records cannot differ from bulk intake. Returns (appeal, created): the
    same (source_system, external_id) returns the existing appeal, never a second one. Raises
    AppealError, BadPoint or Category.DoesNotExist for what refuses it."""
    return batch.register_one(data, actor=actor, classifier=classifier, geocoder=geocoder, now=now)


def appeal_locate_manually(*, appeal_id: int, lng: float, lat: float, crs: str, actor: Actor) -> Appeal:
    """The manual-location queue: an operator places the appeal on the map."""
    appeal = Appeal.objects.get(pk=appeal_id)
    loc = pipeline.locate_step(lng=lng, lat=lat, crs=crs)
    if loc.chain is None:
        raise AppealError("outside", "该位置不在任何网格内 / the point is outside every grid")
    with transaction.atomic():
        appeal = appeal_transition(
            appeal_id=appeal_id,
            event="locate",
            actor=actor,
            data=locate_data(loc.chain.grid_code, "manual"),
            position=loc.position,
            grid_id=loc.chain.grid_id,
            grid_code=loc.chain.grid_code,
            location={"method": "manual", "confidence": 1.0, **loc.detail},
        )
        if appeal.category_id:
            appeal = appeal_dispatch(appeal, actor=actor)
    return appeal


# --- return and arbitration -------------------------------------------------------------------


def appeal_return(*, appeal_id: int, actor: Actor, reason: str) -> Appeal:
    """退单: the unit disputes that the appeal is its own. A reason is required."""
    if not (reason or "").strip():
        raise AppealError("reason_required", "退单必须说明理由 / a return needs a reason")
    return appeal_transition(
        appeal_id=appeal_id, event="return", actor=actor, note=reason, department=getattr(actor, "department", None)
    )


def appeal_arbitrate(
    *, appeal_id: int, actor: Actor, uphold: bool, department: Department | str | None = None, note: str = ""
) -> Appeal:
    """The HotlineCenter decides a return: uphold it and re-dispatch to `department`, or refuse it."""
    if not uphold:
        return appeal_transition(appeal_id=appeal_id, event="reject_return", actor=actor, note=note)
    if department is None:
        raise AppealError("department_required", "改派需要指定承办单位 / reassigning needs a department")
    department = department if isinstance(department, Department) else Department.objects.get(code=department)
    now = timezone.now()
    with transaction.atomic():
        appeal = Appeal.objects.select_for_update().get(pk=appeal_id)
        AppealAssignment.objects.filter(
            appeal=appeal, ended_at__isnull=True, role__in=["lead", "first_receiver"]
        ).update(ended_at=now)
        AppealAssignment.objects.filter(appeal=appeal, department=department, ended_at__isnull=True).update(
            ended_at=now
        )
        AppealAssignment.objects.create(appeal=appeal, department=department, role="lead", assigned_at=now)
        return appeal_transition(
            appeal_id=appeal_id,
            event="reassign",
            actor=actor,
            note=note,
            department=department,
            data={"to": department.code},
            department_id=department.pk,
        )


# --- merge, resolve, close ----------------------------------------------------------------------


def appeal_merge(*, appeal_id: int, lead_id: int, actor: Actor) -> Appeal:
    if appeal_id == lead_id:
        raise AppealError("self_merge", "不能并入自身 / an appeal cannot be merged into itself")
    lead = Appeal.objects.get(pk=lead_id)
    if lead.state == State.MERGED:
        raise AppealError("lead_merged", "主单本身已被并单 / the lead is itself merged")
    return appeal_transition(
        appeal_id=appeal_id, event="merge", actor=actor, data={"lead": lead.ticket_no}, lead_appeal_id=lead.pk
    )


def appeal_resolve(*, appeal_id: int, actor: Actor, closure_type: str, note: str) -> Appeal:
    if closure_type not in dict(ClosureType.CHOICES):
        raise AppealError("closure_type", "办结类型无效 / unknown closure type")
    if not (note or "").strip():
        raise AppealError("note_required", "办结需填写办理结果 / a resolution needs a note")
    with transaction.atomic():
        appeal = appeal_transition(
            appeal_id=appeal_id,
            event="resolve",
            actor=actor,
            note=note,
            data={"closure_type": closure_type},
            closure_type=closure_type,
        )
        # 挂账 ends when the appeal is solved, whether it was resolved while suspended or after.
        long_term.long_term_close(appeal=appeal, actor=actor)
    return appeal


def appeal_close(*, appeal_id: int, actor: Actor, note: str = "") -> Appeal:
    """Close after the callback; every merged appeal is closed with the same outcome."""
    with transaction.atomic():
        appeal = appeal_transition(appeal_id=appeal_id, event="close", actor=actor, note=note)
        for merged_id in Appeal.objects.filter(lead_appeal=appeal, state=State.MERGED).values_list("pk", flat=True):
            appeal_transition(
                appeal_id=merged_id,
                event="close_with_lead",
                actor=actor,
                note=note,
                data={"lead": appeal.ticket_no},
                closure_type=appeal.closure_type,
            )
    return appeal


def appeal_suspend(*, appeal_id: int, actor: Actor, reason: str, review_at: datetime, plan: str = "") -> Appeal:
    """挂账: cannot be solved within the limit; tracked on the ledger with a review date."""
    if not (reason or "").strip():
        raise AppealError("reason_required", "挂账必须说明原因 / a long-term item needs a reason")
    with transaction.atomic():
        appeal = appeal_transition(
            appeal_id=appeal_id, event="suspend", actor=actor, note=reason, data={"review_at": review_at.isoformat()}
        )
        LongTermItem.objects.update_or_create(
            appeal=appeal, defaults={"reason": reason, "plan": plan, "review_at": review_at, "closed_at": None}
        )
    return appeal


def appeal_colour_refresh(*, appeal_id: int, now: datetime | None = None) -> tuple[Appeal, bool]:
    """Bring one appeal's warning colour up to date; returns (appeal, changed). Red escalates."""
    now = now or timezone.now()
    with transaction.atomic():
        appeal = Appeal.objects.select_for_update().get(pk=appeal_id)
        if appeal.deadline is None or appeal.state not in ON_CLOCK_STATES:
            Appeal.objects.filter(pk=appeal.pk).update(next_colour_at=None)
            return appeal, False
        _, colour, next_at = pipeline.clock_step(appeal.received_at, appeal.time_limit, now, deadline=appeal.deadline)
        changed = colour != appeal.warning_colour
        old = appeal.warning_colour
        appeal.warning_colour, appeal.next_colour_at = colour, next_at
        appeal.save(update_fields=["warning_colour", "next_colour_at", "updated_at"])
        if changed:
            row, audit = colour_records(appeal, old, colour)  # supervision, escalation
            row.save()
            audit_record(**audit)
            _publish(appeal, f"colour_{colour}")
    return appeal, changed


def appeal_sweep(now: datetime | None = None, limit: int = 5000) -> dict[str, int]:
    """Refresh every appeal whose next colour change is due. Deadlines live in the database, so
    a restarted sweeper simply finds what fell due while it was down. Runs in batches of `limit`
    until nothing is due; returns {"checked", "changed", "failed"}."""
    now = now or timezone.now()
    # On the clock again after it stopped (returned, suspended) with no next change set.
    lost = Q(next_colour_at__isnull=True, deadline__isnull=False, state__in=ON_CLOCK_STATES) & ~Q(warning_colour="red")
    checked = changed = failed = 0
    while True:
        # In the order the changes fell due, so the history reads in that order too.
        due = list(
            Appeal.objects.filter(Q(next_colour_at__lte=now) | lost)
            .order_by(F("next_colour_at").asc(nulls_last=True), "pk")
            .values_list("pk", flat=True)[:limit]
        )
        bad = 0
        for pk in due:
            try:
                changed += appeal_colour_refresh(appeal_id=pk, now=now)[1]
            except (ValueError, KeyError):  # a deadline the clock cannot read: log it, sweep the rest
                logger.exception("colour sweep: appeal %s could not be refreshed", pk)
                bad += 1
        checked, failed = checked + len(due), failed + bad
        if len(due) < limit or bad == len(due):
            return {"checked": checked, "changed": changed, "failed": failed}


# --- intake follow-ups (the appeals API and the intake page) ------------------------------------


def appeal_categorise(*, appeal_id: int, category_code: str, actor: Actor, now: datetime | None = None) -> Appeal:
    """Set, confirm or correct the category, which decides the unit and the time limit. How a
    hotline centre works it (access.may_act says who, the transition table when):

    * Before dispatch (registered, unlocated, located): any operator, or the centre, sets or
      corrects it. The time limit follows the category (a risk keeps its 2 h);
      a located appeal that waited for a category is dispatched now, as appeal_locate_manually
      does for a place. History row "categorise".
    * After dispatch, while a unit works on it (dispatched, returned, accepted, in progress):
      the centre, since a new category is a re-dispatch (改派); and the operator who registered
      it, as long as no unit has acted on it (access.own_intake: the pipeline dispatches on the
      classifier's guess at once, and the operator's correction then ends the call). The new
      category's rules (in force at receipt, as at dispatch) pick the lead and assisting units, which replace the
      old ones; the deadline is recomputed from receipt under the new limit (the citizen was
      promised a limit from the call, not from the correction: a 7-day appeal found to be a gas
      leak is due 2 hours after the call, and is red at once), with its colour recorded; the
      appeal is dispatched again, for the new lead to sign. History row "recategorise". The
      category it already has is only confirmed (history row "categorise"): nothing moves.
    * Suspended (on the 挂账 ledger), resolved, closed or merged: refused (409,
      IllegalTransition): it stays under the category it was handled by.

    Every correction (classification.corrected) is training data for the classifier."""
    now = now or timezone.now()
    category = Category.objects.select_related("default_department").get(code=category_code, level=3)
    with transaction.atomic():
        appeal = Appeal.objects.select_for_update().get(pk=appeal_id)
        old = appeal.category.code if appeal.category_id else ""  # type: ignore[union-attr]
        changes: dict[str, Any] = {
            "category": category,
            "time_limit": appeal.time_limit if appeal.risk.get("flags") else category.time_limit,
            "classification": {
                **appeal.classification,
                "confirmed": category.code,
                "confirmed_by": "operator",
                "corrected": old != category.code,
            },
        }
        change = {"old": old, "new": category.code}
        if appeal.state in PRE_DISPATCH_STATES:
            appeal = appeal_transition(appeal_id=appeal.pk, event="categorise", actor=actor, data=change, **changes)
            if appeal.state == State.LOCATED:
                appeal = appeal_dispatch(appeal, actor=actor, now=now)
            return appeal
        next_state(appeal.state, "recategorise")  # raises IllegalTransition
        if old == category.code:
            row, audit = transition_records(appeal, "categorise", appeal.state, appeal.state, actor=actor, data=change)
            row.save()
            appeal.classification = changes["classification"]
            appeal.save(update_fields=["classification", "updated_at"])
            audit_record(**audit)
            _publish(appeal, "categorise")
            return appeal
        decision = pipeline.route_step(category, appeal.grid_code, appeal.received_at, appeal.risk.get("flags", []))
        pipeline.require_lead(decision)
        AppealAssignment.objects.filter(appeal=appeal, ended_at__isnull=True).update(ended_at=now)
        appeal = _dispatch_to(
            appeal,
            decision,
            "recategorise",
            actor=actor,
            now=now,
            limit=changes["time_limit"],
            data=change,
            **changes,
        )
    return appeal


def appeal_accept(*, appeal_id: int, actor: Actor, note: str = "") -> Appeal:
    """签收: the unit holding the appeal takes it on."""
    return appeal_transition(appeal_id=appeal_id, event="accept", actor=actor, note=note)


def appeal_start(*, appeal_id: int, actor: Actor, note: str = "") -> Appeal:
    return appeal_transition(appeal_id=appeal_id, event="start", actor=actor, note=note)
