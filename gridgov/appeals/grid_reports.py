"""Grid reports (网格上报 / 随手拍): a problem a grid worker found and reported from the phone,
registered through the intake's one door with its photos, and when the worker fixed it on the
spot, closed at once through the services. Photos are stored and compared as task evidence is
(field_tasks.py).
"""

import hashlib
from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from gridgov.accounts.models import Role, User
from gridgov.appeals import services
from gridgov.appeals.field_rules import geofence_metres, missing_evidence, missing_message, required_evidence
from gridgov.appeals.field_tasks import FieldError, announce_field, attach_evidence, evidence_reference, history_row
from gridgov.appeals.models import Appeal, Channel
from gridgov.appeals.services import AppealError
from gridgov.appeals.workflow import ClosureType, State
from gridgov.audit.services import audit_record
from gridgov.fieldwork.evidence import EvidenceFile

REPORT_SOURCE = "mobile"


def may_report(user: User | None) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.role == Role.GRID_WORKER)


def report_external_id(user: User, key: str) -> str:
    """The report's (source_system, external_id) identity from the client's idempotency key, per
    user (two phones may pick the same key), so appeal_register itself never makes a twin."""
    raw = f"u{user.pk}-{key}"
    return raw if len(raw) <= 64 else f"u{user.pk}-{hashlib.sha256(key.encode()).hexdigest()[:48]}"


def grid_report(
    *,
    actor: User,
    text: str,
    lng: object,
    lat: object,
    crs: str = "wgs84",
    photos: Sequence[EvidenceFile] = (),
    after_photos: Sequence[EvidenceFile] = (),
    category_code: str = "",
    kind: str = "",
    address_text: str = "",
    fixed_on_site: bool = False,
    note: str = "",
    client_key: str = "",
    now: datetime | None = None,
) -> tuple[Appeal, bool, dict | None]:
    """A problem a grid worker found, registered through appeal_register (channel grid_report,
    reporter = the worker), with its photos ("before": as found; "after": when fixed).

    fixed_on_site (自处置): closed at once through the services: dispatched → accept → resolve
    (substantive) → close, every step in the history with the worker as actor and
    route["self_handled"] on the appeal. A report the pipeline could not categorise is
    dispatched to the locality (the street office, first receiver) first; one outside every
    grid cannot be dispatched and stays in the location queue (outcome closed=False). The
    photos the category requires are checked before anything is written.

    Returns (appeal, created, outcome); a repeated client_key returns the first appeal."""
    now = now or timezone.now()
    data = {
        "channel": Channel.GRID_REPORT,
        "text": text,
        "lng": lng,
        "lat": lat,
        "crs": crs,
        "reporter": actor,
        "address_text": address_text,
        "category_code": category_code,
        "kind": kind,
    }
    if client_key:
        data.update(source_system=REPORT_SOURCE, external_id=report_external_id(actor, client_key))
    data = {k: v for k, v in data.items() if v not in (None, "")}
    with transaction.atomic():
        appeal, created = services.appeal_register(data=data, actor=actor, now=now)
        if not created:
            return appeal, False, None
        files, seen = [], set()
        for file, purpose in [*((f, "before") for f in photos), *((f, "after") for f in after_photos)]:
            if file.sha256 not in seen:  # the same photo twice in one report is stored once
                seen.add(file.sha256)
                files.append((file, purpose))
        if fixed_on_site:
            missing = missing_evidence(required_evidence(appeal), [(f.kind, p, now) for f, p in files])
            if missing:  # nothing is kept: the phone still holds the report, and adds the photo
                raise FieldError(
                    "evidence_missing",
                    missing_message(missing),
                    missing=missing,
                    required=list(required_evidence(appeal)),
                )
        reference = evidence_reference(appeal, None)
        fence = geofence_metres(appeal)
        at = max(now, timezone.now())  # after the pipeline's own history rows
        attached = [attach_evidence(appeal, f, purpose, actor, at, reference, fence) for f, purpose in files]
        if attached:
            ev_data = {
                "attachments": [
                    {"attachment": a.pk, "purpose": a.purpose, "sha256": a.sha256, "flags": a.meta["compare"]["flags"]}
                    for a in attached
                ]
            }
            history_row(appeal, "evidence", actor, at, ev_data)
            audit_record(actor=actor, action="appeal.evidence", obj=appeal, data=ev_data)
        outcome = _close_on_site(appeal, actor, note or text, now) if fixed_on_site else None
        appeal = Appeal.objects.get(pk=appeal.pk)
        announce_field(appeal, "register")
    return appeal, True, outcome


def _close_on_site(appeal, actor, note, now):
    if appeal.state == State.LOCATED:
        # No category: the locality takes it as first receiver (属地兜底) — its own worker fixed it.
        try:
            with transaction.atomic():
                appeal = services.appeal_dispatch(appeal, actor=actor, now=now)
        except AppealError as exc:
            return {"closed": False, "state": appeal.state, "reason": exc.code, "detail": str(exc)}
    if appeal.state != State.DISPATCHED:
        return {
            "closed": False,
            "state": appeal.state,
            "reason": "not_dispatched",
            "detail": "诉求未能定位到网格，已进入人工定位队列 / the report could not be placed in a grid; it waits in the "
            "manual-location queue",
        }
    route = {
        **Appeal.objects.values_list("route", flat=True).get(pk=appeal.pk),
        "self_handled": {"by": getattr(actor, "username", ""), "at": now.isoformat()},
    }
    note_self = "网格员现场自处置 / fixed on site by the grid worker"
    services.appeal_transition(
        appeal_id=appeal.pk, event="accept", actor=actor, note=note_self, data={"self_handled": True}, route=route
    )
    services.appeal_resolve(appeal_id=appeal.pk, actor=actor, closure_type=ClosureType.SUBSTANTIVE, note=note)
    appeal = services.appeal_close(
        appeal_id=appeal.pk, actor=actor, note="自处置结案，无需回访 / self-handled on report: no callback needed"
    )
    return {"closed": True, "state": appeal.state, "closure_type": ClosureType.SUBSTANTIVE}
