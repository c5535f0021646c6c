"""Intake's one driver: `appeal_register_many` registers a batch of appeals (the 12345
platform's bulk API), each step of the pipeline run over the whole batch and the writes made in
bulk; `register_one` is a batch of one, and `services.appeal_register` (the operator's form,
grid reports from phones, simulate, the REST API) goes through it. What each appeal goes
through and what it records is decided in one place, records.intake_records.

What changes against registering the items one after another is only how often the database
is asked, not what is decided or kept:

* idempotency: one query for every (source_system, external_id) of the batch; the same ticket
  twice in one batch is one appeal;
* locate: the positions through the in-process grid index (one call per CRS), the addresses
  through the geocoder one by one;
* classify: the trained model once for all texts, the keyword floor per text;
* duplicates: one query for the history's open appeals around every new one, and each new
  appeal is also compared with the batch's earlier ones, as it would have found them;
* route: the responsibility rules of the batch's categories and areas read once
  (selectors.BatchRouteBook), the same answers as route_candidates;
* writes: ids and ticket numbers reserved in one query each; the appeals inserted in their
  final state; their history rows (register, locate or queue_for_location, dispatch: built by
  records.intake_records, each state reached by `workflow.next_state` as `appeal_transition`
  reaches it); the assignments; the audit records, chained in order under one lock of the
  chain's head; the outbox events.

An appeal dispatched with part of its time limit already gone (a backfill, an import of past
tickets) gets its warning colour with the same history row, audit record and supervision or
escalation notice as services.appeal_colour_refresh gives it.

The batch is one transaction and one commit, so each appeal is announced once, in the state it
commits in (`appeal.changed` with its last event, and the supervision or escalation notice that
event carries); a single appeal, a batch of one, likewise.
When the batch's writes fail (another delivery of the same ticket committed meanwhile), or a
step fails for the whole batch, every item goes again as a batch of one in its own
transaction: nothing is lost, nothing doubled.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from gridgov.appeals import notices
from gridgov.appeals.intake import pipeline, records
from gridgov.appeals.models import Appeal, Category
from gridgov.appeals.routing.selectors import BatchRouteBook
from gridgov.appeals.workflow import AppealError
from gridgov.areas.locate import BadPoint
from gridgov.audit.services import audit_record_many
from gridgov.bulk import copy_insert, reserve_ids
from gridgov.places.geocode import geocode, place_index

logger = logging.getLogger(__name__)

# What refuses one item (and what appeal_register raises for it).
REFUSALS = (AppealError, BadPoint, Category.DoesNotExist)


class _Item:
    """One new appeal of the batch on its way: the decisions, then the rows to write."""

    __slots__ = ("index", "data", "received_at", "loc", "fields", "decision", "clock", "appeal", "records")

    def __init__(self, index, data, received_at):
        self.index, self.data, self.received_at = index, data, received_at
        self.loc: Any = None
        self.fields: Any = None
        self.decision: Any = None
        self.clock: Any = None
        self.appeal: Any = None
        self.records: Any = None


def ticket_nos(received_ats: list[datetime]) -> list[str]:
    """Ticket numbers for appeals received at these times (one query on appeal_ticket_seq)."""
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('appeal_ticket_seq') FROM generate_series(1, %s)", [len(received_ats)])
        numbers = [r[0] for r in cur.fetchall()]
    return [records.ticket_no(at, n) for at, n in zip(received_ats, numbers, strict=True)]


def default_geocoder(pinned: bool = False) -> Callable[[str], Any]:
    """The local place registry's geocoder (gridgov.places).
    `pinned`: bound to the registry as it is now, for a batch (one look at its revision)."""
    if not pinned:
        return geocode
    pinned_index: list[Any] = []  # read at the first address, so a batch of positions never asks

    def geocode_pinned(text: str) -> Any:
        if not pinned_index:
            pinned_index.append(place_index())
        return geocode(text, index=pinned_index[0])

    return geocode_pinned


def _existing(keys):
    """{(source_system, external_id): appeal} of the tickets already registered."""
    ext = sorted({e for _, e in keys})
    if not ext:
        return {}
    # `external_id <> ''` is the predicate of the unique index the lookup needs.
    found = Appeal.objects.filter(external_id__in=ext, source_system__in=sorted({s for s, _ in keys})).exclude(
        external_id=""
    )
    return {(a.source_system, a.external_id): a for a in found if (a.source_system, a.external_id) in keys}


def _registered(data):
    """The appeal already registered for this item's ticket, if any."""
    ext = data.get("external_id", "")
    if not ext:
        return None
    return Appeal.objects.filter(source_system=data.get("source_system", ""), external_id=ext).first()


def _categories(codes):
    """The categories the batch names, read once: `get(code, leaf=...)` as records.appeal_fields
    asks (leaf: the operator's choice must be a leaf)."""
    found = {c.code: c for c in Category.objects.select_related("default_department").filter(code__in=sorted(codes))}

    def get(code, *, leaf):
        category = found.get(code)
        if category is None or (leaf and category.level != 3):
            raise Category.DoesNotExist(f"no category {code!r}")
        return category

    return get


def appeal_register_many(
    items: list[dict],
    *,
    actor: Any,
    classifier: Any = None,
    geocoder: Callable | None = None,
    now: datetime | None = None,
) -> list:
    """Register `items` (what appeal_register takes as `data`) in order. Returns one result
    per item: (appeal, created) as appeal_register returns, or the exception that refused it
    (AppealError, BadPoint, Category.DoesNotExist, or another error of that item)."""
    now = now or timezone.now()
    results: list[Any] = [None] * len(items)
    keys = {(d.get("source_system", ""), d["external_id"]) for d in items if d.get("external_id")}
    existing = _existing(keys)
    first: dict[Any, Any] = {}
    repeats: dict[Any, Any] = {}
    todo: list[Any] = []
    for i, data in enumerate(items):
        key = (data.get("source_system", ""), data.get("external_id", ""))
        if key[1] and key in existing:
            results[i] = (existing[key], False)
        elif key[1] and key in first:
            repeats[i] = first[key]  # the same ticket again in this batch: the first one's appeal
        else:
            if key[1]:
                first[key] = i
            todo.append(_Item(i, data, data.get("received_at") or now))
    # The batch's steps and writes; when either fails for the whole batch (a geocoder error, a
    # ticket committed by another delivery meanwhile), every item goes as a batch of one instead.
    try:
        _register(todo, results, actor, classifier, geocoder or default_geocoder(pinned=True), now)
        late = []
    except Exception as exc:
        log = logger.warning if isinstance(exc, DatabaseError) else logger.error
        log("bulk intake: the batch failed (%s); registering its %s items one by one", exc, len(todo), exc_info=True)
        late = todo
    for item in late:
        try:
            results[item.index] = register_one(
                item.data, actor=actor, classifier=classifier, geocoder=geocoder, now=now
            )
        except REFUSALS as exc:
            results[item.index] = exc
        except Exception as exc:  # one broken item must not lose the others
            logger.exception("bulk intake: an item failed")
            results[item.index] = exc
    for i, j in repeats.items():
        results[i] = (results[j][0], False) if isinstance(results[j], tuple) else results[j]
    return results


def register_one(
    data: dict,
    *,
    actor: Any,
    classifier: Any = None,
    geocoder: Callable | None = None,
    now: datetime | None = None,
) -> tuple[Appeal, bool]:
    """One appeal as a batch of one, in its own transaction. Returns (appeal, created): the same
    (source_system, external_id) returns the existing appeal, never a second one. Raises what
    refuses it (REFUSALS)."""
    now = now or timezone.now()
    existing = _registered(data)
    if existing is not None:
        return existing, False
    results: list[Any] = [None]
    item = _Item(0, data, data.get("received_at") or now)
    try:
        with transaction.atomic():
            _register([item], results, actor, classifier, geocoder or default_geocoder(), now)
    except IntegrityError:
        # Two deliveries of one ticket raced; the other one won.
        existing = _registered(data)
        if existing is not None:
            return existing, False
        raise
    if isinstance(results[0], Exception):
        raise results[0]
    return results[0]


def _register(todo, results, actor, classifier, geocoder, now):
    """The pipeline's steps over `todo`, then its writes in one transaction; (appeal, True) or
    the item's refusal in `results`."""
    batch = _decide(todo, results, classifier, geocoder, now)
    _write(batch, actor, now)
    for item in batch:
        results[item.index] = (item.appeal, True)


def _decide(todo, results, classifier, geocoder, now):
    """Run the pipeline's steps over the batch; items it refuses get their error in `results`.
    Returns the items that go on, with their decisions."""
    # Located on the boundaries in force now, at registration (an appeal received before the
    # last boundary change still lands on today's grids), and it keeps that version.
    locs = pipeline.locate_steps([it.data for it in todo], geocoder=geocoder)
    guesses = pipeline.classify_many([it.data["text"] for it in todo], model=classifier)
    codes = {it.data["category_code"] for it in todo if it.data.get("category_code")}
    codes |= {g[0].code for g in guesses if g}
    categories = _categories(codes)
    ok = []
    for item, loc, guess in zip(todo, locs, guesses, strict=True):
        if isinstance(loc, Exception):
            results[item.index] = loc
            continue
        try:
            item.fields = records.appeal_fields(
                item.data, loc, guess, received_at=item.received_at, categories=categories
            )
        except Category.DoesNotExist as exc:
            results[item.index] = exc
            continue
        item.loc = loc
        ok.append(item)
    routed = [it for it in ok if it.loc.located and it.fields["category"] is not None]
    book = BatchRouteBook(
        {it.fields["category"] for it in routed},
        {it.fields["grid_code"] for it in routed},
        [it.received_at for it in routed],
    )
    refused = set()
    for item in routed:
        f = item.fields
        item.decision = pipeline.route_step(
            f["category"], f["grid_code"], item.received_at, f["risk"].get("flags", []), book=book
        )
        try:
            pipeline.require_lead(item.decision)
        except AppealError as exc:
            results[item.index] = exc
            refused.add(item.index)
            continue
        item.clock = pipeline.clock_step(item.received_at, f["time_limit"], now)
    return [it for it in ok if it.index not in refused]


def _write(batch, actor, now):
    if not batch:
        return
    ids = reserve_ids(Appeal, len(batch))
    tickets = ticket_nos([it.received_at for it in batch])
    for item, pk, ticket_no in zip(batch, ids, tickets, strict=True):
        item.appeal = Appeal(pk=pk, ticket_no=ticket_no, **item.fields)
    sketches = [pipeline.sketch(it.appeal) if it.loc.located else None for it in batch]
    for item, matches in zip(batch, pipeline.duplicates_many(sketches), strict=True):
        if matches:
            item.appeal.duplicates = [m.as_dict() for m in matches[:5]]
    for item in batch:
        item.records = records.intake_records(item.appeal, item.loc, item.decision, item.clock, actor=actor, now=now)
    with transaction.atomic():
        copy_insert([it.appeal for it in batch])
        copy_insert([row for it in batch for row in it.records.rows])
        copy_insert([a for it in batch for a in it.records.assignments])
        # The audit head's lock before the outbox's (see gridgov.realtime.broadcast).
        audit_record_many([a for it in batch for a in it.records.audits])
        _announce(batch)


def _announce(batch):
    changes = []
    for item in batch:
        appeal = item.appeal
        units = (
            appeal.department.code if appeal.department_id else "",
            sorted({a.department_id for a in item.records.assignments} | ({appeal.department_id} - {None})),
        )
        changes.append((appeal, item.records.last_event, units))
    notices.appeals_changed(changes)
