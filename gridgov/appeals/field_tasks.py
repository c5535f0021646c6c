"""Field work on phones: the tasks of grid workers and departments' field staff, arriving on
site (check-in inside a geofence), evidence, completion, and grid reports (网格上报/随手拍).

State changes go through services.py's one door (appeal_transition and the services built on
it). A check-in and an evidence upload are history rows without a state change (AppealEvent
with old_state == new_state) plus an audit record; the first check-in of a round also starts
the work (accepted → in_progress).

Lock order, as everywhere: the appeal's row, then the audit head (audit_record), then the
outbox (publish). Every service here writes its first audit record before its first publish.

Uploaded files arrive inspected (mobile_api/v1/evidence.py: type sniffed from the bytes,
SHA-256, EXIF time and position, thumbnail); this module stores them, compares them with the
check-in, and decides what a completion still lacks.
"""

import hashlib
import logging
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import F, Prefetch, Q, Value
from django.db.models.functions import Concat, Substr
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gridgov.accounts.models import Department, Role
from gridgov.appeals import access, notices, services
from gridgov.appeals.models import Appeal, AppealEvent, Attachment, Channel
from gridgov.appeals.routing.selectors import locality_department_code
from gridgov.appeals.services import AppealError
from gridgov.appeals.workflow import ClosureType, IllegalTransition, State
from gridgov.areas import coords
from gridgov.areas.locate import check_lnglat
from gridgov.audit.services import audit_record

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
# Events that start a round of work: check-ins and "after" photos count from the latest one.
ROUND_EVENTS = ("accept", "redo", "reopen")
PHOTO = Attachment.Kind.PHOTO
PURPOSE_LABELS = {"before": "处置前", "during": "处置中", "after": "处置后"}
ACTION_LABELS = {
    "accept": ("签收", "accept the task"),
    "return": ("退单", "return the task"),
    "check_in": ("现场签到", "check in on site"),
    "evidence": ("上传证据", "upload evidence"),
    "complete": ("办结", "complete the task"),
}
REPORT_SOURCE = "mobile"
# A client time of a check-in made offline is believed this far back, never ahead of the server.
CLIENT_TIME_WINDOW = timedelta(hours=24)
CLIENT_TIME_SLACK = timedelta(minutes=5)


class FieldError(AppealError):
    """400: a request refused for a reason the caller can fix; `extra` goes into the answer."""

    def __init__(self, code, message, **extra):
        super().__init__(code, message)
        self.extra = extra


class OutOfOrder(FieldError):
    """409: `required_first` must happen before `action`."""

    def __init__(self, action, required_first, state):
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


def is_field_staff(user):
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.role in FIELD_ROLES
        and (user.role != Role.DEPARTMENT or user.department_id)
    )


def _locality_led():
    # The same rule as selectors.locality_department_code: the street office is 'jiedao-<street>'.
    return Q(department__code=Concat(Value("jiedao-"), Substr("grid_code", 1, 9)))


def tasks_visible_to(user, queryset=None):
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


def may_work(user, appeal, action):
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
        and appeal.department_id is not None
        and appeal.department.code == locality_department_code(appeal.grid_code)
    )


TASK_RELATED = ("grid", "category", "department")
# Tasks show the grid's name; its polygon would be fetched and parsed for nothing.
TASK_DEFERRED = ("grid__geom",)


def task_list(user, *, state=None, in_bbox=None):
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


def task_for(user, ticket_no, *, detail=False):
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


# --- the rules per category ---------------------------------------------------------------------


def _by_category(mapping, category_code, default):
    """The value for the longest prefix of the category code in `mapping`, else `default`."""
    code = category_code or ""
    for n in (6, 4, 2):
        if len(code) >= n and code[:n] in mapping:
            return mapping[code[:n]]
    return default


def _category_code(appeal):
    return appeal.category.code if appeal.category_id else ""


def geofence_metres(appeal):
    return float(_by_category(settings.CATEGORY_GEOFENCE_METRES, _category_code(appeal), settings.GEOFENCE_METRES))


def required_evidence(appeal):
    """Purposes of the photos a completion needs, e.g. ("before", "after")."""
    return tuple(
        _by_category(settings.CATEGORY_REQUIRED_EVIDENCE, _category_code(appeal), settings.EVIDENCE_REQUIRED_DEFAULT)
    )


def missing_evidence(required, photos, since=None):
    """Required purposes with no photo. `photos`: (kind, purpose, uploaded_at) triples. An
    "after" photo must come from this round of work (since the latest accept / redo / reopen);
    a "before" photo may be older (a grid report's photo shows the problem as found)."""
    have = {
        purpose
        for kind, purpose, at in photos
        if kind == PHOTO and (purpose != "after" or since is None or at >= since)
    }
    return [p for p in required if p not in have]


def round_progress(events_list):
    """(start of the current round of work, its latest check-in event) from an appeal's
    history in time order; no database access (the detail view passes prefetched rows)."""
    started, check_in = None, None
    for ev in events_list:
        if ev.event in ROUND_EVENTS:
            started, check_in = ev.at, None
        elif ev.event == "check_in":
            check_in = ev
    return started, check_in


def _round(appeal_id):
    return round_progress(
        AppealEvent.objects.filter(appeal_id=appeal_id, event__in=(*ROUND_EVENTS, "check_in")).order_by("at", "pk")
    )


def missing_message(missing):
    zh = "、".join(PURPOSE_LABELS.get(p, p) for p in missing)
    return f"办结前还需上传{zh}照片 / photos still missing: {', '.join(missing)}"


def allowed_actions(user, appeal, events_list=None):
    """The field actions `user` may take on `appeal` now, for the phone's buttons."""
    out = []
    if appeal.state == State.DISPATCHED:
        out = ["accept", "return"]
    elif appeal.state == State.ACCEPTED:
        out = ["return", "check_in", "evidence", "complete"]
    elif appeal.state in ON_SITE_STATES:
        out = ["check_in", "evidence", "complete"]
    return [a for a in out if may_work(user, appeal, a)]


# --- geometry ---------------------------------------------------------------------------------


def _wgs84(lng, lat, crs):
    lng, lat = check_lnglat(lng, lat)
    crs = coords.normalise_crs(crs)
    wlng, wlat = (float(v) for v in coords.to_wgs84(lng, lat, crs))
    return lng, lat, crs, wlng, wlat


def _distance_to_appeal(appeal_id, lng, lat):
    """(metres on the WGS-84 spheroid, what was measured to): the appeal's position, else its
    grid's polygon (0 inside), else (None, None)."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT CASE WHEN a.position IS NOT NULL THEN ST_Distance(a.position::geography, p::geography) "
            f"            WHEN g.id IS NOT NULL THEN ST_Distance(g.geom::geography, p::geography) END, "
            f"       CASE WHEN a.position IS NOT NULL THEN 'position' WHEN g.id IS NOT NULL THEN 'grid' END "
            f"FROM {Appeal._meta.db_table} a CROSS JOIN ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS p "
            f"LEFT JOIN areas_grid g ON g.id = a.grid_id WHERE a.id = %s",
            [lng, lat, appeal_id],
        )
        distance, reference = cur.fetchone()
    return (None if distance is None else float(distance)), reference


def _geodesic(pairs):
    """Metres on the spheroid for each ((lng, lat), (lng, lat)) pair; None where a side is None."""
    todo = [(i, a, b) for i, (a, b) in enumerate(pairs) if a is not None and b is not None]
    out: list[float | None] = [None] * len(pairs)
    if not todo:
        return out
    cols = ", ".join(
        "ST_Distance(ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, "
        "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)"
        for _ in todo
    )
    params = [float(v) for _, a, b in todo for v in (*a, *b)]
    with connection.cursor() as cur:
        cur.execute(f"SELECT {cols}", params)
        row = cur.fetchone()
    for (i, _, _), d in zip(todo, row):
        out[i] = round(float(d), 1)
    return out


# --- realtime -----------------------------------------------------------------------------------


def _announce_field(appeal, event):
    """notices.appeal_changed reaches the units, the street, the grid and the city; the worker
    who reported the problem also hears on its own user group (after commit)."""
    if not apps.is_installed("gridgov.realtime"):
        return
    from gridgov.realtime import broadcast

    groups = []
    if appeal.reporter_id and appeal.channel == Channel.GRID_REPORT:
        groups.append(broadcast.user_group(appeal.reporter_id))
    if not groups:
        return
    lead = Department.objects.filter(pk=appeal.department_id).values_list("code", flat=True).first() or ""
    payload = notices.appeal_payload(appeal, event, lead)
    broadcast.publish_many([(g, "appeal.changed", payload) for g in groups])


# --- actions ----------------------------------------------------------------------------------


def _locked(appeal_id):
    return Appeal.objects.select_for_update(of=("self",)).select_related("category").get(pk=appeal_id)


def _require_on_site_state(appeal, action):
    if appeal.state == State.DISPATCHED:
        raise OutOfOrder(action, "accept", appeal.state)
    if appeal.state not in ON_SITE_STATES:
        raise IllegalTransition(appeal.state, action)


def task_accept(*, appeal_id, actor, note=""):
    """签收 through services.appeal_accept, announced to the grid too."""
    with transaction.atomic():
        appeal = services.appeal_accept(appeal_id=appeal_id, actor=actor, note=note)
        _announce_field(appeal, "accept")
    return appeal


def task_return(*, appeal_id, actor, reason):
    """退单 through services.appeal_return (a reason is required)."""
    with transaction.atomic():
        appeal = services.appeal_return(appeal_id=appeal_id, actor=actor, reason=reason)
        _announce_field(appeal, "return")
    return appeal


def _client_time(client_at, now):
    """A phone's own time of an offline action, when believable (not ahead, not a day old)."""
    if client_at is None or not (now - CLIENT_TIME_WINDOW <= client_at <= now + CLIENT_TIME_SLACK):
        return None
    return min(client_at, now)


def task_check_in(*, appeal_id, actor, lng, lat, crs="wgs84", accuracy_m=None, client_at=None, now=None):
    """到达现场: the position (wgs84 / gcj02 / bd09, as the phone's map reports it) is measured on
    the spheroid to the appeal's position (or its grid when it has none). Within the category's
    geofence it is recorded; beyond it, GEOFENCE_MODE=refuse refuses it with the distance (the
    attempt stays on the record) and flag records it flagged. The first check-in of a round
    starts the work. Returns (appeal, check-in event)."""
    now = now or timezone.now()
    lng, lat, crs, wlng, wlat = _wgs84(lng, lat, crs)
    client_at = _client_time(client_at, now)
    with transaction.atomic():
        appeal = _locked(appeal_id)
        _require_on_site_state(appeal, "check_in")
        distance, reference = _distance_to_appeal(appeal.pk, wlng, wlat)
        fence = geofence_metres(appeal)
        mode = settings.GEOFENCE_MODE
        inside = None if distance is None else distance <= fence
        data = {
            "lng": lng,
            "lat": lat,
            "crs": crs,
            "wgs84": [round(wlng, 7), round(wlat, 7)],
            "accuracy_m": accuracy_m,
            "client_at": client_at.isoformat() if client_at else None,
            "reference": reference,
            "distance_m": None if distance is None else round(distance, 1),
            "geofence_m": fence,
            "inside": inside,
            "flagged": inside is False and mode == "flag",
            "mode": mode,
        }
        refused = inside is False and mode == "refuse"
        if not refused:
            ev = AppealEvent.objects.create(
                appeal=appeal,
                at=now,
                actor=_user(actor),
                event="check_in",
                old_state=appeal.state,
                new_state=appeal.state,
                department_id=appeal.department_id,
                data=data,
            )
            audit_record(actor=actor, action="appeal.check_in", obj=appeal, data={"event": ev.pk, **data})
            if appeal.state == State.ACCEPTED:
                appeal = services.appeal_transition(
                    appeal_id=appeal.pk, event="start", actor=actor, note="到达现场 / on site", data={"check_in": ev.pk}
                )
            else:
                notices.appeal_changed(appeal, "check_in")
            _announce_field(appeal, "check_in")
    if refused:
        # Its own transaction: the refusal is kept although the check-in did not happen.
        with transaction.atomic():
            AppealEvent.objects.create(
                appeal=appeal,
                at=now,
                actor=_user(actor),
                event="check_in_refused",
                old_state=appeal.state,
                new_state=appeal.state,
                department_id=appeal.department_id,
                data=data,
            )
            audit_record(actor=actor, action="appeal.check_in_refused", obj=appeal, data=data)
        raise FieldError(
            "outside_geofence",
            f"距诉求位置{distance:.0f}米，超出{fence:.0f}米签到范围 / {distance:.0f} m from the appeal's position, "
            f"beyond the {fence:.0f} m geofence",
            distance_m=round(distance, 1),
            geofence_m=fence,
        )
    return appeal, ev


def _reference_of(appeal, check_in):
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


def _compare(file, appeal, reference, fence):
    """EXIF time and GPS against the reference and the appeal's place. Flags, never refusals:
    many apps strip EXIF, and the reviewer weighs what is left."""
    out = {
        "reference": None,
        "time_diff_s": None,
        "distance_to_reference_m": None,
        "distance_to_appeal_m": None,
        "geofence_m": fence,
        "flags": [],
    }
    if reference is not None:
        out["reference"] = {
            "type": reference["type"],
            "event": reference["event"],
            "at": reference["at"].isoformat(),
            "wgs84": reference["wgs84"],
        }
    if file.kind != PHOTO:
        return out
    flags = out["flags"]
    if file.taken_at is None:
        flags.append("no_exif_time")
    elif reference is not None:
        out["time_diff_s"] = round((file.taken_at - reference["at"]).total_seconds())
        if abs(out["time_diff_s"]) > settings.EVIDENCE_TIME_TOLERANCE_MINUTES * 60:
            flags.append("time_far")
    if file.gps is None:
        flags.append("no_exif_gps")
    else:
        here = appeal.position
        to_ref, to_appeal = _geodesic(
            [
                (file.gps, reference["wgs84"] if reference else None),
                (file.gps, (here.x, here.y) if here is not None else None),
            ]
        )
        out["distance_to_reference_m"], out["distance_to_appeal_m"] = to_ref, to_appeal
        far = to_appeal if to_appeal is not None else to_ref
        if far is not None and far > fence:
            flags.append("gps_far")
    return out


def _attach(appeal, file, purpose, actor, now, reference, fence):
    meta = {**file.meta, "compare": _compare(file, appeal, reference, fence)}
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


def evidence_add(*, appeal_id, actor, file, purpose, now=None):
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
        _started, check_in = _round(appeal.pk)
        att = _attach(appeal, file, purpose, actor, now, _reference_of(appeal, check_in), geofence_metres(appeal))
        data = {
            "attachment": att.pk,
            "kind": att.kind,
            "purpose": purpose,
            "sha256": att.sha256,
            "flags": att.meta["compare"]["flags"],
        }
        AppealEvent.objects.create(
            appeal=appeal,
            at=now,
            actor=_user(actor),
            event="evidence",
            old_state=appeal.state,
            new_state=appeal.state,
            department_id=appeal.department_id,
            data=data,
        )
        audit_record(actor=actor, action="appeal.evidence", obj=appeal, data=data)
        notices.appeal_changed(appeal, "evidence")
        _announce_field(appeal, "evidence")
    return att, True


def task_complete(*, appeal_id, actor, note, closure_type=ClosureType.SUBSTANTIVE):
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
            started, check_in = _round(appeal.pk)
            if check_in is None:
                raise OutOfOrder("complete", "check_in", appeal.state)
            required = required_evidence(appeal)
            photos = Attachment.objects.filter(appeal=appeal).values_list("kind", "purpose", "uploaded_at")
            missing = missing_evidence(required, photos, started)
            if missing:
                raise FieldError("evidence_missing", missing_message(missing), missing=missing, required=list(required))
        # Any other state: appeal_transition answers IllegalTransition (409).
        appeal = services.appeal_resolve(appeal_id=appeal.pk, actor=actor, closure_type=closure_type, note=note)
        _announce_field(appeal, "resolve")
    return appeal


# --- grid reports (网格上报 / 随手拍) ----------------------------------------------------------------


def may_report(user):
    return bool(user is not None and user.is_authenticated and user.is_active and user.role == Role.GRID_WORKER)


def report_external_id(user, key):
    """The report's (source_system, external_id) identity from the client's idempotency key, per
    user (two phones may pick the same key), so appeal_register itself never makes a twin."""
    raw = f"u{user.pk}-{key}"
    return raw if len(raw) <= 64 else f"u{user.pk}-{hashlib.sha256(key.encode()).hexdigest()[:48]}"


def grid_report(
    *,
    actor,
    text,
    lng,
    lat,
    crs="wgs84",
    photos=(),
    after_photos=(),
    category_code="",
    kind="",
    address_text="",
    fixed_on_site=False,
    note="",
    client_key="",
    now=None,
):
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
        reference = _reference_of(appeal, None)
        fence = geofence_metres(appeal)
        at = max(now, timezone.now())  # after the pipeline's own history rows
        attached = [_attach(appeal, f, purpose, actor, at, reference, fence) for f, purpose in files]
        if attached:
            ev_data = {
                "attachments": [
                    {"attachment": a.pk, "purpose": a.purpose, "sha256": a.sha256, "flags": a.meta["compare"]["flags"]}
                    for a in attached
                ]
            }
            AppealEvent.objects.create(
                appeal=appeal,
                at=at,
                actor=_user(actor),
                event="evidence",
                old_state=appeal.state,
                new_state=appeal.state,
                department_id=appeal.department_id,
                data=ev_data,
            )
            audit_record(actor=actor, action="appeal.evidence", obj=appeal, data=ev_data)
        outcome = _close_on_site(appeal, actor, note or text, now) if fixed_on_site else None
        appeal = Appeal.objects.get(pk=appeal.pk)
        _announce_field(appeal, "register")
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
