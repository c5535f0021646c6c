"""Writes: hotspot decisions, blowing the whistle, mustering, escalation, closing, evaluation.

One door per object for state changes (hotspot_transition, suggestion_transition,
call_transition, muster_transition): a row lock, the transition table, a WhistleEvent and an
audit record. Services compose them and push live notices as their last step (notify.py).
Authorisation is the caller's (access.py); services keep the domain rules.
"""

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import IntegrityError, transaction
from django.utils import timezone

from gridgov.accounts.access import Actor
from gridgov.accounts.models import Department, User
from gridgov.appeals import services as appeal_services
from gridgov.appeals import workflow as appeal_workflow
from gridgov.appeals.models import Appeal, Category
from gridgov.appeals.routing.selectors import route_candidates
from gridgov.areacodes import level_of
from gridgov.audit.models import AuditHead
from gridgov.audit.services import audit_record
from gridgov.errors import DomainError
from gridgov.fieldwork import evidence, geofence

from . import notify, workflow
from .models import (
    Evaluation,
    Hotspot,
    Muster,
    MusterEvidence,
    WhistleCall,
    WhistleEvent,
    WhistleSuggestion,
)
from .workflow import CALL_DONE, CALL_OPEN, HOTSPOT_OPEN, MUSTER_NOT_ARRIVED, CallState, MusterState

logger = logging.getLogger(__name__)


class WhistleError(DomainError, ValueError):
    """A request refused for a reason the caller can fix: a code, a bilingual message, extras
    (e.g. the distance of a refused check-in)."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        self.code, self.extra = code, extra
        super().__init__(message)


def _user(actor: Actor) -> User | None:
    return actor if getattr(actor, "pk", None) else None  # type: ignore[return-value]  # only a user has a pk


def _lock_audit_head() -> None:
    # Services that change appeals publish mid-transaction (appeal_transition does) and audit
    # again afterwards; holding the audit head from the start keeps the lock order audit →
    # outbox that every other writer uses (see realtime/broadcast.py), so no deadlock.
    AuditHead.objects.select_for_update().get_or_create(id=1)


# --- the doors ------------------------------------------------------------------------------------

_MODELS: dict[str, Any] = {"hotspot": Hotspot, "suggestion": WhistleSuggestion, "call": WhistleCall, "muster": Muster}


def _apply(
    kind: str,
    pk: int,
    event: str,
    actor: Actor,
    note: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
    **changes: Any,
) -> Any:
    model = _MODELS[kind]
    obj = model.objects.select_for_update().get(pk=pk)
    new = workflow.next_state(kind, obj.state, event)  # raises IllegalTransition
    old = obj.state
    now = now or timezone.now()
    if kind == "hotspot":
        changes.setdefault("state_changed_at", now)
    call_id = obj.pk if kind == "call" else obj.call_id if kind == "muster" else None
    WhistleEvent.objects.create(
        object_type=kind,
        object_id=obj.pk,
        call_id=call_id,
        at=now,
        actor=_user(actor),
        event=event,
        old_state=old,
        new_state=new,
        note=note,
        data=data or {},
    )
    obj.state = new
    for field, value in changes.items():
        setattr(obj, field, value)
    obj.save(update_fields=["state", *changes])
    audit_record(
        actor=actor,
        action=f"whistles.{kind}.{event}",
        obj=obj,
        data={"old": old, "new": new, "note": note, **(data or {})},
    )
    return obj


@transaction.atomic
def hotspot_transition(
    *, hotspot_id: int, event: str, actor: Actor, note: str = "", data: dict[str, Any] | None = None, **changes: Any
) -> Hotspot:
    return _apply("hotspot", hotspot_id, event, actor, note, data, **changes)


@transaction.atomic
def suggestion_transition(
    *, suggestion_id: int, event: str, actor: Actor, note: str = "", data: dict[str, Any] | None = None, **changes: Any
) -> WhistleSuggestion:
    return _apply("suggestion", suggestion_id, event, actor, note, data, **changes)


@transaction.atomic
def call_transition(
    *,
    call_id: int,
    event: str,
    actor: Actor,
    note: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
    **changes: Any,
) -> WhistleCall:
    return _apply("call", call_id, event, actor, note, data, now=now, **changes)


@transaction.atomic
def muster_transition(
    *,
    muster_id: int,
    event: str,
    actor: Actor,
    note: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
    **changes: Any,
) -> Muster:
    return _apply("muster", muster_id, event, actor, note, data, now=now, **changes)


def _record(
    kind: str,
    obj: Any,
    event: str,
    actor: Actor,
    note: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """History and audit for a change that is not a transition (flags, evidence)."""
    call_id = obj.pk if kind == "call" else getattr(obj, "call_id", None)
    WhistleEvent.objects.create(
        object_type=kind,
        object_id=obj.pk,
        call_id=call_id,
        at=now or timezone.now(),
        actor=_user(actor),
        event=event,
        old_state=obj.state,
        new_state=obj.state,
        note=note,
        data=data or {},
    )
    audit_record(actor=actor, action=f"whistles.{kind}.{event}", obj=obj, data={"note": note, **(data or {})})


def _reason(text: str, what: str) -> str:
    if not (text or "").strip():
        raise WhistleError("reason_required", f"{what}必须说明理由 / a reason is required")
    return text.strip()


# --- hotspots and suggestions --------------------------------------------------------------------


def hotspot_acknowledge(*, hotspot_id: int, actor: Actor, note: str = "") -> Hotspot:
    with transaction.atomic():
        hotspot = hotspot_transition(hotspot_id=hotspot_id, event="acknowledge", actor=actor, note=note)
        notify.hotspot_changed(hotspot, "acknowledge")
    return hotspot


def hotspot_dismiss(*, hotspot_id: int, actor: Actor, reason: str) -> Hotspot:
    reason = _reason(reason, "排除热点")
    with transaction.atomic():
        hotspot = hotspot_transition(
            hotspot_id=hotspot_id, event="dismiss", actor=actor, note=reason, dismiss_reason=reason
        )
        notify.hotspot_changed(hotspot, "dismiss")
    return hotspot


def suggestion_dismiss(
    *, suggestion_id: int, actor: Actor, reason: str, now: datetime | None = None
) -> WhistleSuggestion:
    reason = _reason(reason, "不采纳吹哨建议")
    now = now or timezone.now()
    with transaction.atomic():
        return suggestion_transition(
            suggestion_id=suggestion_id,
            event="dismiss",
            actor=actor,
            note=reason,
            reason=reason,
            decided_by=_user(actor),
            decided_at=now,
        )


# --- blowing the whistle ---------------------------------------------------------------------------

WALK_TO_RESOLVED = ("accept", "start", "resume", "resolve")


def _category_leaves(category_codes: Iterable[str]) -> list[Category]:
    """Leaf categories for codes or prefixes (a hotspot's group when no appeal names one)."""
    out: list[Category] = []
    for code in category_codes:
        out += list(
            Category.objects.filter(level=3, code__startswith=code, is_active=True).select_related("default_department")
        )
    return out


def whistle_proposal(
    *,
    street_code: str,
    appeals: Sequence[Appeal] = (),
    category_codes: Sequence[str] = (),
    exclude_department_ids: Iterable[int] = (),
    at: datetime | None = None,
) -> list[dict[str, Any]]:
    """Departments to summon, from the responsibility catalogue (route_candidates) for every
    category of the linked appeals (or, with none, the given codes), at the grid most of the
    appeals lie in: lead units first, then assisting ones. Each with the categories and rules
    it comes from, so the street office sees why and may edit the list."""
    grids = [a.grid_code for a in appeals if a.grid_code.startswith(street_code)]
    grid_code = max(sorted(set(grids)), key=grids.count) if grids else street_code
    categories: dict[int, Any] = {a.category_id: a.category for a in appeals if a.category_id}
    if not categories and category_codes:
        categories = {c.pk: c for c in _category_leaves(category_codes)}
    proposed: dict[Any, Any] = {}
    for category in sorted(categories.values(), key=lambda c: c.code):
        for cand in route_candidates(category, grid_code, at):
            if cand.department.pk in exclude_department_ids:
                continue
            entry = proposed.setdefault(
                cand.department.pk,
                {
                    "department": cand.department.code,
                    "department_id": cand.department.pk,
                    "name": cand.department.name,
                    "role": cand.role,
                    "categories": [],
                    "rules": [],
                },
            )
            if cand.role == "lead":
                entry["role"] = "lead"
            entry["categories"].append(category.code)
            entry["rules"].append(
                {
                    "category": category.code,
                    "rule_id": cand.rule.pk if cand.rule else None,
                    "area_code": cand.area_code,
                    "role": cand.role,
                    "default": cand.is_default,
                }
            )
    return sorted(proposed.values(), key=lambda e: (e["role"] != "lead", e["department"]))


def _place(
    lng: float | None, lat: float | None, crs: str | None, hotspot: Hotspot | None, appeals: Sequence[Appeal]
) -> Point:
    if lng is not None and lat is not None:
        return geofence.position(lng, lat, crs).point
    if hotspot is not None:
        return hotspot.geom.point_on_surface
    positions = [a.position for a in appeals if a.position is not None]
    if positions:
        # The medoid-ish choice: the appeal nearest the mean, so the place is where people are.
        mx = sum(p.x for p in positions) / len(positions)
        my = sum(p.y for p in positions) / len(positions)
        best = min(positions, key=lambda p: (p.x - mx) ** 2 + (p.y - my) ** 2)
        return Point(best.x, best.y, srid=4326)
    raise WhistleError("place_required", "请指定集合地点 / give the place (lng, lat)")


def whistle_blow(
    *,
    actor: Actor,
    problem: str,
    street_code: str | None = None,
    lng: float | None = None,
    lat: float | None = None,
    crs: str = "wgs84",
    area: Any = None,
    address_text: str = "",
    appeal_ids: Sequence[int] | None = None,
    department_codes: Sequence[str] | None = None,
    muster_deadline: datetime | None = None,
    meeting_at: datetime | None = None,
    suggestion_id: int | None = None,
    hotspot_id: int | None = None,
    now: datetime | None = None,
) -> WhistleCall:
    """吹哨: the street summons departments to one place. From a suggestion (confirming it, with
    its hotspot and appeals) or by hand. Departments: `department_codes` as the street chose
    them, or, when None, the proposal from the responsibility catalogue."""
    now = now or timezone.now()
    problem = (problem or "").strip()
    with transaction.atomic():
        suggestion = hotspot = None
        if suggestion_id is not None:
            suggestion = WhistleSuggestion.objects.select_for_update().get(pk=suggestion_id)
            workflow.next_state("suggestion", suggestion.state, "confirm")
            street_code = suggestion.street_code
            hotspot_id = hotspot_id or suggestion.hotspot_id
            if appeal_ids is None:
                appeal_ids = suggestion.appeal_ids
        if hotspot_id is not None:
            hotspot = Hotspot.objects.get(pk=hotspot_id)
            street_code = street_code or hotspot.street_code
            if hotspot.street_code != street_code:
                raise WhistleError("hotspot_outside_street", "热点不在本街道 / the hotspot is in another street")
            if appeal_ids is None:
                appeal_ids = hotspot.appeal_ids
        if not (street_code and level_of(street_code) == "street" and street_code.isdigit()):
            raise WhistleError("street_required", "请指定街道 / give the street code")
        if not problem:
            raise WhistleError("problem_required", "请描述问题 / describe the problem")
        appeals = list(Appeal.objects.filter(pk__in=sorted(set(appeal_ids or []))).select_related("category"))
        if len(appeals) != len(set(appeal_ids or [])):
            raise WhistleError("unknown_appeal", "有诉求不存在 / some appeals do not exist")
        outside = [a.ticket_no for a in appeals if not a.grid_code.startswith(street_code)]
        if outside:
            raise WhistleError("appeal_outside_street", f"诉求不在本街道 / appeals outside the street: {outside[:5]}")
        place = _place(lng, lat, crs, hotspot, appeals)
        muster_deadline = muster_deadline or now + timedelta(minutes=settings.WHISTLE_MUSTER_MINUTES)
        meeting_at = meeting_at or muster_deadline
        if muster_deadline <= now:
            raise WhistleError("deadline_past", "报到时限须晚于现在 / the muster deadline must be in the future")
        own = getattr(actor, "department_id", None)
        proposal = whistle_proposal(
            street_code=street_code,
            appeals=appeals,
            category_codes=hotspot.category_codes if hotspot else (),
            exclude_department_ids={own} if own else (),
            at=now,
        )
        if department_codes is None:
            departments = list(Department.objects.filter(pk__in=[p["department_id"] for p in proposal]))
        else:
            codes = sorted(set(department_codes))
            departments = list(Department.objects.filter(code__in=codes))
            missing = sorted(set(codes) - {d.code for d in departments})
            if missing:
                raise WhistleError("unknown_department", f"没有这些部门 / unknown departments: {missing}")
        if not departments:
            raise WhistleError("departments_required", "请至少召集一个部门 / summon at least one department")
        proposed_codes = [p["department"] for p in proposal]
        chosen = sorted(d.code for d in departments)
        call = WhistleCall.objects.create(
            street_code=street_code,
            problem=problem,
            place=place,
            area=area,
            address_text=address_text,
            hotspot=hotspot,
            suggestion=suggestion,
            muster_deadline=muster_deadline,
            meeting_at=meeting_at,
            blown_by=_user(actor),
            blown_at=now,
            proposal={
                "proposed": proposal,
                "chosen": chosen,
                "added": sorted(set(chosen) - set(proposed_codes)),
                "removed": sorted(set(proposed_codes) - set(chosen)),
            },
        )
        call.appeals.set(appeals)
        musters = Muster.objects.bulk_create(
            [Muster(call=call, department=d, summoned_at=now) for d in sorted(departments, key=lambda d: d.code)]
        )
        data = {
            "street_code": street_code,
            "departments": chosen,
            "appeals": [a.pk for a in appeals],
            "hotspot": hotspot.pk if hotspot else None,
            "suggestion": suggestion.pk if suggestion else None,
            "muster_deadline": muster_deadline,
            "place": [place.x, place.y],
        }
        WhistleEvent.objects.bulk_create(
            [
                WhistleEvent(
                    object_type="call",
                    object_id=call.pk,
                    call=call,
                    at=now,
                    actor=_user(actor),
                    event="blow",
                    new_state=call.state,
                    note=problem,
                    data=data,
                )
            ]
            + [
                WhistleEvent(
                    object_type="muster",
                    object_id=m.pk,
                    call=call,
                    at=now,
                    actor=_user(actor),
                    event="summon",
                    new_state=m.state,
                    data={"department": m.department.code},
                )
                for m in musters
            ]
        )
        audit_record(actor=actor, action="whistles.call.blow", obj=call, data=data)
        if suggestion is not None:
            suggestion_transition(
                suggestion_id=suggestion.pk,
                event="confirm",
                actor=actor,
                data={"call": call.pk},
                decided_by=_user(actor),
                decided_at=now,
            )
        if hotspot is not None and hotspot.state in HOTSPOT_OPEN:
            hotspot = hotspot_transition(hotspot_id=hotspot.pk, event="whistle", actor=actor, data={"call": call.pk})
        notify.summoned(call, musters)
        notify.call_changed(call, "blow", [m.department_id for m in musters])
        if hotspot is not None:
            notify.hotspot_changed(hotspot, "whistle")
    return call


def suggestion_confirm(*, suggestion_id: int, actor: Actor, problem: str = "", **kw: Any) -> WhistleCall:
    """Confirming a suggestion is blowing the whistle on it."""
    if not problem:
        s = WhistleSuggestion.objects.get(pk=suggestion_id)
        problem = s.evidence.get("summary") or f"热点问题（{s.category_key or '综合'}）"
    return whistle_blow(actor=actor, problem=problem, suggestion_id=suggestion_id, **kw)


# --- mustering ---------------------------------------------------------------------------------------


def _open_call(muster_id: int) -> WhistleCall:
    """Lock the call first (every muster service does, so two departments answering at once
    queue on the call and the first one moves it on), then the muster."""
    call_id = Muster.objects.values_list("call_id", flat=True).get(pk=muster_id)
    call = WhistleCall.objects.select_for_update().get(pk=call_id)
    if call.state not in CALL_OPEN:
        raise WhistleError("call_over", "该吹哨已结束 / the call is already closed or cancelled")
    return call


def _advance_call(
    call: WhistleCall, event: str, actor: Actor, now: datetime, data: dict[str, Any]
) -> tuple[WhistleCall, bool]:
    if (call.state, event) in workflow.CALL_TRANSITIONS:
        return call_transition(call_id=call.pk, event=event, actor=actor, now=now, data=data), True
    return call, False


def muster_acknowledge(*, muster_id: int, actor: Actor, note: str = "", now: datetime | None = None) -> Muster:
    """响应: the department has seen the summons and is on its way."""
    now = now or timezone.now()
    with transaction.atomic():
        call = _open_call(muster_id)
        late = now > call.muster_deadline
        muster = muster_transition(
            muster_id=muster_id,
            event="acknowledge",
            actor=actor,
            note=note,
            now=now,
            data={"late": late},
            acknowledged_at=now,
            acknowledged_by=_user(actor),
            **({"late": True} if late else {}),
        )
        call, moved = _advance_call(call, "muster", actor, now, {"muster": muster.pk})
        notify.muster_changed(call, muster, "acknowledge")
        if moved:
            notify.call_changed(call, "muster", list(call.musters.values_list("department_id", flat=True)))
    return muster


def muster_check_in(
    *, muster_id: int, actor: Any, lng: object, lat: object, crs: str = "wgs84", now: datetime | None = None
) -> Muster:
    """报到: the department is on site. The position (any of wgs84 / gcj02 / bd09, as phones send
    it) must lie within GEOFENCE_METRES of the place (or of the call's area): farther, the
    check-in is refused with the distance (GEOFENCE_MODE=refuse, and the attempt is kept on the
    record) or accepted and flagged (flag)."""
    now = now or timezone.now()
    at = geofence.position(lng, lat, crs)
    with transaction.atomic():
        call = _open_call(muster_id)
        to_place, to_area = geofence.distances(WhistleCall.objects.filter(pk=call.pk), at, "place", "area")
        assert to_place is not None  # a call's place is NOT NULL
        distance = to_place if to_area is None else min(to_place, to_area)
        fence = geofence.decide(distance)
        data = {
            **at.as_sent(),
            "distance_m": round(distance, 1),
            "geofence_m": fence.geofence_m,
            "outside_geofence": fence.inside is False,
        }
        if fence.refused:
            muster = Muster.objects.select_for_update().get(pk=muster_id)
            workflow.next_state("muster", muster.state, "check_in")  # an illegal step says so first
        else:
            muster = Muster.objects.get(pk=muster_id)
            late = now > call.muster_deadline
            changes: dict[str, Any] = {
                "checked_in_at": now,
                "checked_in_by": _user(actor),
                "check_in_position": at.point,
                "check_in_input": at.as_sent(),
                "check_in_distance_m": round(to_place, 1),
                "outside_geofence": fence.inside is False,
            }
            if muster.acknowledged_at is None:
                changes.update(acknowledged_at=now, acknowledged_by=_user(actor))
            if late:
                changes["late"] = True
            muster = muster_transition(
                muster_id=muster_id, event="check_in", actor=actor, now=now, data={**data, "late": late}, **changes
            )
            call, moved = _advance_call(call, "arrive", actor, now, {"muster": muster.pk})
            notify.muster_changed(call, muster, "check_in")
            if moved:
                notify.call_changed(call, "arrive", list(call.musters.values_list("department_id", flat=True)))
    if fence.refused:
        # Its own transaction: the refusal is kept although the check-in did not happen.
        with transaction.atomic():
            _record("muster", muster, "check_in_refused", actor, data=data, now=now)
        message, extra = fence.refusal("集合地点", "the place", "报到")
        raise WhistleError("outside_geofence", message, **extra)
    return muster


def muster_report(
    *, muster_id: int, actor: Any, text: str, files: Sequence[Any] = (), now: datetime | None = None
) -> Muster:
    """反馈: what the department did on site, with photos, videos or PDFs as evidence, each
    inspected as task evidence is (gridgov/fieldwork/evidence.py); the same file twice is kept
    once."""
    now = now or timezone.now()
    text = (text or "").strip()
    if not text:
        raise WhistleError("report_required", "请填写处置情况 / describe what was done")
    with transaction.atomic():
        call = _open_call(muster_id)
        muster = Muster.objects.get(pk=muster_id)
        workflow.next_state("muster", muster.state, "report")
        saved: list[MusterEvidence] = []
        for upload in files:
            try:
                f = evidence.inspect(upload, evidence.MUSTER_KINDS)
            except evidence.EvidenceRefused as exc:
                raise WhistleError(exc.code, str(exc), **exc.extra) from None
            if MusterEvidence.objects.filter(muster=muster, sha256=f.sha256).exists() or f.sha256 in {
                e.sha256 for e in saved
            }:
                continue
            ev = MusterEvidence(
                muster=muster,
                name=f.meta["name"],
                content_type=f.content_type,
                size=f.size,
                sha256=f.sha256,
                uploaded_by=_user(actor),
                uploaded_at=now,
            )
            upload.seek(0)
            ev.file.save(f.storage_name, upload, save=False)
            ev.save()
            saved.append(ev)
        muster = muster_transition(
            muster_id=muster_id,
            event="report",
            actor=actor,
            now=now,
            data={"evidence": [{"sha256": e.sha256, "size": e.size, "type": e.content_type} for e in saved]},
            report=text,
            reported_at=now,
            reported_by=_user(actor),
        )
        notify.muster_changed(call, muster, "report")
    return muster


# --- escalation ------------------------------------------------------------------------------------


def muster_escalate(*, muster_id: int, now: datetime | None = None) -> Muster | None:
    """One late muster: flagged late and escalated to the district (record + notice). Returns
    the muster, or None when it was no longer due (arrived, escalated, call over)."""
    now = now or timezone.now()
    with transaction.atomic():
        muster = Muster.objects.select_for_update().select_related("call", "department").get(pk=muster_id)
        call = muster.call
        if (
            muster.escalated
            or muster.state not in MUSTER_NOT_ARRIVED
            or call.state not in CALL_OPEN
            or call.muster_deadline > now
        ):
            return None
        muster.late, muster.escalated, muster.escalated_at = True, True, now
        muster.save(update_fields=["late", "escalated", "escalated_at"])
        _record(
            "muster",
            muster,
            "escalate",
            "system",
            now=now,
            note="未在报到时限内到场，已提级至区 / not on site by the muster deadline: escalated to the district",
            data={
                "department": muster.department.code,
                "muster_deadline": call.muster_deadline,
                "district_code": call.district_code,
                "state": muster.state,
            },
        )
        notify.escalated(call, muster)
    return muster


def muster_sweep(now: datetime | None = None, limit: int = 1000) -> dict[str, int]:
    """Escalate every muster not on site by its call's deadline. Reads its work from the
    database, so a sweeper that was down catches up; running it twice changes nothing."""
    now = now or timezone.now()
    due = list(
        Muster.objects.filter(
            state__in=MUSTER_NOT_ARRIVED, escalated=False, call__state__in=CALL_OPEN, call__muster_deadline__lte=now
        )
        .order_by("call__muster_deadline", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    escalated = sum(muster_escalate(muster_id=pk, now=now) is not None for pk in due)
    return {"checked": len(due), "escalated": escalated}


# --- closing ----------------------------------------------------------------------------------------


def _walk(state: str) -> list[str] | None:
    """The shortest list of events in WALK_TO_RESOLVED taking an appeal from `state` to
    resolved along the appeals' own transition table, or None (returned, merged, not yet
    dispatched: the call cannot settle those)."""
    table = appeal_workflow.TRANSITIONS
    seen = {state}
    queue: deque[tuple[Any, list[Any]]] = deque([(state, [])])
    while queue:
        s, path = queue.popleft()
        for event in WALK_TO_RESOLVED:
            nxt = table.get((s, event))
            if nxt is None or nxt in seen:
                continue
            if nxt == appeal_workflow.State.RESOLVED:
                return [*path, event]
            seen.add(nxt)
            queue.append((nxt, [*path, event]))
    return None


def _resolve_appeal(appeal_id: int, actor: Actor, call: WhistleCall, note: str) -> tuple[str, str, list[str]]:
    state = Appeal.objects.values_list("state", flat=True).get(pk=appeal_id)
    if state in (appeal_workflow.State.RESOLVED, appeal_workflow.State.CLOSED):
        return "already", state, []
    path = _walk(state)
    if path is None:
        return "skipped", state, []
    text = f"吹哨报到（第{call.pk}号）现场处置：{note}"
    data = {"whistle_call": call.pk}
    for event in path[:-1]:
        appeal_services.appeal_transition(
            appeal_id=appeal_id, event=event, actor=actor, note=text, data={**data, "by": "whistle_close"}
        )
    appeal_services.appeal_resolve(
        appeal_id=appeal_id, actor=actor, note=text, closure_type=appeal_workflow.ClosureType.SUBSTANTIVE
    )
    return "resolved", state, path


def whistle_close(*, call_id: int, actor: Actor, note: str, now: datetime | None = None) -> WhistleCall:
    """办结: the street closes the call when the problem is solved. Every linked appeal is
    resolved as substantive (实质办结) through the appeals' own door, walking accept / start
    first where resolve is not yet legal, each step recorded as done by the call. Appeals
    the call cannot settle (returned, merged, not dispatched) are listed, not forced."""
    note = _reason(note, "办结")
    now = now or timezone.now()
    with transaction.atomic():
        _lock_audit_head()
        call = WhistleCall.objects.select_for_update().get(pk=call_id)
        workflow.next_state("call", call.state, "close")  # refuse before touching any appeal
        result: dict[str, list[Any]] = {"resolved": [], "already": [], "skipped": []}
        for appeal_id in sorted(call.appeals.values_list("pk", flat=True)):
            outcome, state, path = _resolve_appeal(appeal_id, actor, call, note)
            result[outcome].append({"appeal": appeal_id, "from": state, "events": path})
        call = call_transition(
            call_id=call.pk,
            event="close",
            actor=actor,
            note=note,
            now=now,
            data={"appeals": result},
            closed_at=now,
            close_note=note,
            close_result=result,
        )
        notify.call_changed(call, "close", list(call.musters.values_list("department_id", flat=True)))
    return call


def whistle_cancel(*, call_id: int, actor: Actor, reason: str, now: datetime | None = None) -> WhistleCall:
    reason = _reason(reason, "撤销吹哨")
    now = now or timezone.now()
    with transaction.atomic():
        call = call_transition(
            call_id=call_id, event="cancel", actor=actor, note=reason, now=now, cancel_reason=reason, closed_at=now
        )
        notify.call_changed(call, "cancel", list(call.musters.values_list("department_id", flat=True)))
    return call


# --- two-way evaluation ------------------------------------------------------------------------------


def _score(value: Any, name: str) -> int:
    try:
        value = int(value)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= 5:
        raise WhistleError("score", f"{name}须为1–5分 / {name} must be 1–5")
    return value


def _evaluate(call: WhistleCall, actor: Actor, **fields: Any) -> Evaluation:
    try:
        with transaction.atomic():
            ev = Evaluation.objects.create(call=call, by=actor, **fields)  # type: ignore[misc]  # a user rates
    except IntegrityError:
        raise WhistleError("already_evaluated", "已评价过 / already evaluated") from None
    data = {k: (v.pk if hasattr(v, "pk") else v) for k, v in fields.items()}
    audit_record(actor=actor, action=f"whistles.evaluation.{ev.direction}", obj=ev, data=data)
    notify.evaluated(ev, call)
    return ev


def evaluation_rate_department(
    *, muster_id: int, actor: Actor, timeliness: int, action: int, result: int, comment: str = ""
) -> Evaluation:
    """街道评部门: once the call is over, the street rates each summoned department."""
    with transaction.atomic():
        muster = Muster.objects.select_related("call").get(pk=muster_id)
        if muster.call.state not in CALL_DONE:
            raise WhistleError("call_open", "吹哨结束后才能评价 / evaluate once the call is closed")
        return _evaluate(
            muster.call,
            actor,
            department_id=muster.department_id,
            muster=muster,
            direction=Evaluation.Direction.STREET_TO_DEPARTMENT,
            timeliness=_score(timeliness, "响应及时"),
            action=_score(action, "处置得力"),
            result=_score(result, "解决效果"),
            comment=comment or "",
        )


def evaluation_rate_street(*, call_id: int, actor: Actor, justified: bool, comment: str = "") -> Evaluation:
    """部门评街道: a summoned department says whether the whistle was justified."""
    with transaction.atomic():
        call = WhistleCall.objects.get(pk=call_id)
        if call.state not in CALL_DONE:
            raise WhistleError("call_open", "吹哨结束后才能评价 / evaluate once the call is closed")
        department_id = getattr(actor, "department_id", None)
        if not department_id or not call.musters.filter(department_id=department_id).exists():
            raise WhistleError("not_summoned", "本部门未被召集 / your department was not summoned")
        if justified is None:
            raise WhistleError("justified_required", "请评价吹哨是否必要 / say whether the call was justified")
        return _evaluate(
            call,
            actor,
            department_id=department_id,
            muster=None,
            direction=Evaluation.Direction.DEPARTMENT_TO_STREET,
            justified=bool(justified),
            comment=comment or "",
        )


__all__ = ["CallState", "MusterState", "WhistleError"]
