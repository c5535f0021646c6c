"""Field work on phones: the tasks of grid workers and departments' field staff, arriving on
site (check-in inside a geofence), evidence and completion. Grid reports (网格上报/随手拍) are
in grid_reports.py.

State changes go through services.py's one door (appeal_transition and the services built on
it). A check-in and an evidence upload are history rows without a state change (AppealEvent
with old_state == new_state) plus an audit record; the first check-in of a round also starts
the work (accepted → in_progress).

Lock order, as everywhere: the appeal's row, then the audit head (audit_record), then the
outbox (publish). Every service here writes its first audit record before its first publish.

The geofence and the evidence files are the field work's own (gridgov/fieldwork: the same
for whistle musters): files arrive inspected (type sniffed from the bytes, SHA-256, EXIF time
and position, thumbnail); this module stores them, has them compared with the check-in, and
refuses a completion that still lacks what the category needs (field_rules.py).
"""

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Prefetch, Q, QuerySet
from django.db.models.functions import Substr
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gridgov.accounts.models import Department, Role, User
from gridgov.appeals import access, notices, services
from gridgov.appeals.field_rules import (
    current_round,
    geofence_metres,
    missing_evidence,
    missing_message,
    required_evidence,
)
from gridgov.appeals.models import Appeal, AppealEvent, Attachment, Channel
from gridgov.appeals.services import AppealError
from gridgov.appeals.workflow import ClosureType, IllegalTransition, State
from gridgov.areacodes import STREET_LENGTH, street_code_of
from gridgov.audit.services import audit_record
from gridgov.fieldwork import evidence, geofence
from gridgov.fieldwork.evidence import EvidenceFile
from gridgov.realtime import broadcast

logger = logging.getLogger(__name__)

FIELD_ROLES = frozenset({Role.GRID_WORKER, Role.DEPARTMENT})
# What "my tasks" lists unless asked for other states: work to do, not history.
WORK_STATES = (State.DISPATCHED, State.ACCEPTED, State.IN_PROGRESS, State.SUSPENDED)
# States in which the unit is working the appeal: on site, collecting evidence.
ON_SITE_STATES = frozenset({State.ACCEPTED, State.IN_PROGRESS, State.SUSPENDED})
# A field completion is substantive or partial; a procedural closure (an unreasonable request
# answered by procedure) needs no site visit and is the unit desk's, on the web API.
FIELD_CLOSURES = (ClosureType.SUBSTANTIVE, ClosureType.PARTIAL)
FIELD_ACTIONS = ("accept", "return", "check_in", "evidence", "complete")
# Each field action in access.may_act's words (the unit actions of the web API).
_AS_UNIT_ACTION = {
    "accept": "accept",
    "return": "return",
    "check_in": "start",
    "evidence": "resolve",
    "complete": "resolve",
}
ACTION_LABELS = {
    "accept": ("签收", "accept the task"),
    "return": ("退单", "return the task"),
    "check_in": ("现场签到", "check in on site"),
    "evidence": ("上传证据", "upload evidence"),
    "complete": ("办结", "complete the task"),
}
# A client time of a check-in made offline is believed this far back, never ahead of the server.
CLIENT_TIME_WINDOW = timedelta(hours=24)
CLIENT_TIME_SLACK = timedelta(minutes=5)


class FieldError(AppealError):
    """400: a request refused for a reason the caller can fix; `extra` goes into the answer."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(code, message)
        self.extra = extra


class OutOfOrder(FieldError):
    """409: `required_first` must happen before `action`."""

    status_code = 409

    def __init__(self, action: str, required_first: str, state: str) -> None:
        zh_first, en_first = ACTION_LABELS[required_first]
        zh, en = ACTION_LABELS[action]
        super().__init__(
            "out_of_order",
            f"请先{zh_first}，再{zh} / {en_first} before you {en}",
            action=action,
            required_first=required_first,
            state=state,
        )


def _user(actor):
    return actor if getattr(actor, "pk", None) else None


# --- who works what ---------------------------------------------------------------------------


def is_field_staff(user: User | None) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.role in FIELD_ROLES
        and (user.role != Role.DEPARTMENT or user.department_id)
    )


def _locality_led():
    # The same rule as routing.selectors.locality_of: the lead is the grid's street office.
    return Q(department__street_code=Substr("grid_code", 1, STREET_LENGTH))


def tasks_visible_to(user: User, queryset: QuerySet | None = None) -> QuerySet:
    """The appeals that are `user`'s field tasks: never more than access.appeals_visible_to.

    Department staff: what their department is on (lead, first receiver or assisting). Grid
    worker: in its own grids, what the locality (the street office) leads and every grid report;
    plus the grid reports it filed itself, wherever they are."""
    qs = Appeal.objects.all() if queryset is None else queryset
    if not is_field_staff(user):
        return qs.none()
    qs = access.appeals_visible_to(user, qs)
    if user.role == Role.GRID_WORKER:
        mine = Q(grid_code__in=sorted(set(user.grid_codes))) if user.grid_codes else Q(pk__in=[])
        return qs.filter(
            (mine & (_locality_led() | Q(channel=Channel.GRID_REPORT)))
            | Q(reporter_id=user.pk, channel=Channel.GRID_REPORT)
        )
    return qs


def may_work(user: User, appeal: Appeal, action: str) -> bool:
    """May `user` take the field `action` on `appeal` (one of its tasks)? The workflow decides
    separately whether the action fits the appeal's state now."""
    if not is_field_staff(user):
        return False
    if user.role == Role.DEPARTMENT:
        return access.may_act(user, appeal, _AS_UNIT_ACTION[action])
    # A grid worker is the street office's hands in its own grids: it works what the locality
    # leads (first receiver included), not what a department leads there.
    return (
        appeal.grid_code in (user.grid_codes or [])
        and appeal.department is not None
        and appeal.department.street_code != ""
        and appeal.department.street_code == street_code_of(appeal.grid_code)
    )


TASK_RELATED = ("grid", "category", "department")
# Tasks show the grid's name; its polygon would be fetched and parsed for nothing.
TASK_DEFERRED = ("grid__geom",)


def task_list(user: User, *, state: Sequence[str] | None = None, in_bbox: Any = None) -> QuerySet:
    """The user's tasks, red first, then the nearest deadline (the web list's order)."""
    qs = (
        tasks_visible_to(user)
        .select_related(*TASK_RELATED)
        .defer(*TASK_DEFERRED)
        .filter(state__in=state or WORK_STATES)
    )
    if in_bbox is not None:
        qs = qs.filter(position__intersects=in_bbox)
    return qs.annotate(severity=access.COLOUR_SEVERITY).order_by(
        "severity", F("deadline").asc(nulls_last=True), "received_at", "pk"
    )


def task_for(user: User, ticket_no: str, *, detail: bool = False) -> Appeal:
    """One task of `user`, or Appeal.DoesNotExist (404 alike for foreign and missing tickets)."""
    qs = tasks_visible_to(user).select_related(*TASK_RELATED).defer(*TASK_DEFERRED)
    if detail:
        qs = qs.prefetch_related(
            Prefetch("events", queryset=AppealEvent.objects.select_related("actor", "department").order_by("at", "pk")),
            Prefetch(
                "attachments", queryset=Attachment.objects.select_related("uploaded_by").order_by("uploaded_at", "pk")
            ),
        )
    return qs.get(ticket_no=ticket_no)


def allowed_actions(user: User, appeal: Appeal, events_list: object = None) -> list[str]:
    """The field actions `user` may take on `appeal` now, for the phone's buttons."""
    out = []
    if appeal.state == State.DISPATCHED:
        out = ["accept", "return"]
    elif appeal.state == State.ACCEPTED:
        out = ["return", "check_in", "evidence", "complete"]
    elif appeal.state in ON_SITE_STATES:
        out = ["check_in", "evidence", "complete"]
    return [a for a in out if may_work(user, appeal, a)]


# --- the place of the work -----------------------------------------------------------------------


def _distance_to_appeal(appeal_id, at):
    """(metres on the WGS-84 spheroid, what was measured to): the appeal's position, else its
    grid's polygon (0 inside), else (None, None)."""
    to_position, to_grid = geofence.distances(Appeal.objects.filter(pk=appeal_id), at, "position", "grid__geom")
    if to_position is not None:
        return to_position, "position"
    return (to_grid, "grid") if to_grid is not None else (None, None)


def _place(appeal):
    return None if appeal.position is None else (appeal.position.x, appeal.position.y)


# --- realtime -----------------------------------------------------------------------------------


def announce_field(appeal: Appeal, event: str) -> None:
    """notices.appeal_changed reaches the units, the street, the grid and the city; the worker
    who reported the problem also hears on its own user group (after commit)."""
    groups = []
    if appeal.reporter_id and appeal.channel == Channel.GRID_REPORT:
        groups.append(broadcast.user_group(appeal.reporter_id))
    if not groups:
        return
    lead = ""
    if appeal.department_id is not None:
        lead = Department.objects.filter(pk=appeal.department_id).values_list("code", flat=True).first() or ""
    payload = notices.appeal_payload(appeal, event, lead)
    broadcast.publish_many([(g, "appeal.changed", payload) for g in groups])


# --- actions ----------------------------------------------------------------------------------


def _locked(appeal_id):
    return Appeal.objects.select_for_update(of=("self",)).select_related("category").get(pk=appeal_id)


def history_row(appeal: Appeal, event: str, actor: Any, at: datetime, data: dict) -> AppealEvent:
    """A history row without a state change (a check-in, its refusal, evidence)."""
    return AppealEvent.objects.create(
        appeal=appeal,
        at=at,
        actor=_user(actor),
        event=event,
        old_state=appeal.state,
        new_state=appeal.state,
        department_id=appeal.department_id,
        data=data,
    )


def _require_on_site_state(appeal, action):
    if appeal.state == State.DISPATCHED:
        raise OutOfOrder(action, "accept", appeal.state)
    if appeal.state not in ON_SITE_STATES:
        raise IllegalTransition(appeal.state, action)


def task_accept(*, appeal_id: int, actor: Any, note: str = "") -> Appeal:
    """签收 through services.appeal_accept, announced to the grid too."""
    with transaction.atomic():
        appeal = services.appeal_accept(appeal_id=appeal_id, actor=actor, note=note)
        announce_field(appeal, "accept")
    return appeal


def task_return(*, appeal_id: int, actor: Any, reason: str) -> Appeal:
    """退单 through services.appeal_return (a reason is required)."""
    with transaction.atomic():
        appeal = services.appeal_return(appeal_id=appeal_id, actor=actor, reason=reason)
        announce_field(appeal, "return")
    return appeal


def _client_time(client_at, now):
    """A phone's own time of an offline action, when believable (not ahead, not a day old)."""
    if client_at is None or not (now - CLIENT_TIME_WINDOW <= client_at <= now + CLIENT_TIME_SLACK):
        return None
    return min(client_at, now)


def task_check_in(
    *,
    appeal_id: int,
    actor: Any,
    lng: object,
    lat: object,
    crs: str = "wgs84",
    accuracy_m: float | None = None,
    client_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[Appeal, AppealEvent]:
    """到达现场: the position (wgs84 / gcj02 / bd09, as the phone's map reports it) is measured on
    the spheroid to the appeal's position (or its grid when it has none). Within the category's
    geofence it is recorded; beyond it, GEOFENCE_MODE=refuse refuses it with the distance (the
    attempt stays on the record) and flag records it flagged. The first check-in of a round
    starts the work. Returns (appeal, check-in event)."""
    now = now or timezone.now()
    at = geofence.position(lng, lat, crs)
    client_at = _client_time(client_at, now)
    with transaction.atomic():
        appeal = _locked(appeal_id)
        _require_on_site_state(appeal, "check_in")
        distance, reference = _distance_to_appeal(appeal.pk, at)
        fence = geofence.decide(distance, geofence_metres(appeal))
        data = {
            **at.as_sent(),
            "wgs84": [round(at.wgs84[0], 7), round(at.wgs84[1], 7)],
            "accuracy_m": accuracy_m,
            "client_at": client_at.isoformat() if client_at else None,
            "reference": reference,
            "distance_m": None if distance is None else round(distance, 1),
            "geofence_m": fence.geofence_m,
            "inside": fence.inside,
            "flagged": fence.flagged,
            "mode": fence.mode,
        }
        if not fence.refused:
            ev = history_row(appeal, "check_in", actor, now, data)
            audit_record(actor=actor, action="appeal.check_in", obj=appeal, data={"event": ev.pk, **data})
            if appeal.state == State.ACCEPTED:
                appeal = services.appeal_transition(
                    appeal_id=appeal.pk, event="start", actor=actor, note="到达现场 / on site", data={"check_in": ev.pk}
                )
            else:
                notices.appeal_changed(appeal, "check_in")
            announce_field(appeal, "check_in")
    if fence.refused:
        # Its own transaction: the refusal is kept although the check-in did not happen.
        with transaction.atomic():
            history_row(appeal, "check_in_refused", actor, now, data)
            audit_record(actor=actor, action="appeal.check_in_refused", obj=appeal, data=data)
        message, extra = fence.refusal("诉求位置", "the appeal's position", "签到")
        raise FieldError("outside_geofence", message, **extra)
    return appeal, ev


def evidence_reference(appeal: Appeal, check_in: AppealEvent | None) -> dict | None:
    """What evidence is compared with: this round's latest check-in, else (a grid report) the
    report's own position and time."""
    if check_in is not None:
        at = parse_datetime(check_in.data.get("client_at") or "") or check_in.at
        return {"type": "check_in", "event": check_in.pk, "at": at, "wgs84": check_in.data.get("wgs84")}
    if appeal.channel == Channel.GRID_REPORT and appeal.position is not None:
        return {
            "type": "report",
            "event": None,
            "at": appeal.received_at,
            "wgs84": [appeal.position.x, appeal.position.y],
        }
    return None


def attach_evidence(
    appeal: Appeal, file: EvidenceFile, purpose: str, actor: Any, now: datetime, reference: dict | None, fence: float
) -> Attachment:
    """Store one inspected file on the appeal, with how it compares with the reference."""
    meta = {**file.meta, "compare": evidence.compare(file, reference, _place(appeal), fence)}
    if file.thumbnail:
        meta["thumbnail"] = default_storage.save(
            f"appeals/thumbs/{now:%Y/%m}/{file.sha256[:32]}.jpg", ContentFile(file.thumbnail)
        )
    att = Attachment(
        appeal=appeal,
        kind=file.kind,
        content_type=file.content_type,
        size=file.size,
        sha256=file.sha256,
        uploaded_by=_user(actor),
        uploaded_at=now,
        purpose=purpose,
        meta=meta,
    )
    file.upload.seek(0)
    att.file.save(file.storage_name, File(file.upload), save=False)
    att.save()
    return att


def evidence_add(
    *, appeal_id: int, actor: Any, file: EvidenceFile, purpose: str, now: datetime | None = None
) -> tuple[Attachment, bool]:
    """One evidence file on a task being worked. The same bytes twice on one appeal are stored
    once: the original comes back (created False), whatever the state now, so a phone's retry
    after the task moved on still gets its answer. Returns (attachment, created)."""
    now = now or timezone.now()
    with transaction.atomic():
        appeal = _locked(appeal_id)  # also serialises uploads to one appeal: no race on the sha256
        existing = Attachment.objects.filter(appeal=appeal, sha256=file.sha256).first()
        if existing is not None:
            return existing, False
        _require_on_site_state(appeal, "evidence")
        _started, check_in = current_round(appeal.pk)
        reference = evidence_reference(appeal, check_in)
        att = attach_evidence(appeal, file, purpose, actor, now, reference, geofence_metres(appeal))
        data = {
            "attachment": att.pk,
            "kind": att.kind,
            "purpose": purpose,
            "sha256": att.sha256,
            "flags": att.meta["compare"]["flags"],
        }
        history_row(appeal, "evidence", actor, now, data)
        audit_record(actor=actor, action="appeal.evidence", obj=appeal, data=data)
        notices.appeal_changed(appeal, "evidence")
        announce_field(appeal, "evidence")
    return att, True


def task_complete(*, appeal_id: int, actor: Any, note: str, closure_type: str = ClosureType.SUBSTANTIVE) -> Appeal:
    """办结 from the field: after a check-in in this round, with the photos the category needs
    (CATEGORY_REQUIRED_EVIDENCE, default EVIDENCE_REQUIRED_DEFAULT), through appeal_resolve."""
    if closure_type not in FIELD_CLOSURES:
        raise FieldError(
            "closure_type",
            "现场办结只能是实质办结或阶段性办结 / a field completion is substantive or partial",
            allowed=list(FIELD_CLOSURES),
        )
    with transaction.atomic():
        appeal = _locked(appeal_id)
        if appeal.state == State.DISPATCHED:
            raise OutOfOrder("complete", "accept", appeal.state)
        if appeal.state in ON_SITE_STATES:
            started, check_in = current_round(appeal.pk)
            if check_in is None:
                raise OutOfOrder("complete", "check_in", appeal.state)
            required = required_evidence(appeal)
            photos = Attachment.objects.filter(appeal=appeal).values_list("kind", "purpose", "uploaded_at")
            missing = missing_evidence(required, photos, started)
            if missing:
                raise FieldError("evidence_missing", missing_message(missing), missing=missing, required=list(required))
        # Any other state: appeal_transition answers IllegalTransition (409).
        appeal = services.appeal_resolve(appeal_id=appeal.pk, actor=actor, closure_type=closure_type, note=note)
        announce_field(appeal, "resolve")
    return appeal
