"""Bulk intake: `appeal_register_many` registers a batch of appeals (the 12345 platform's bulk
API) through the same pipeline and the same transition table as `services.appeal_register`,
with each step run over the whole batch and the writes made in bulk.

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
  final state; their history rows (register, locate or queue_for_location, dispatch), each
  state reached by `workflow.next_state` as `appeal_transition` would; the assignments; the
  audit records, chained in order under one lock of the chain's head; the outbox events.

An appeal dispatched with part of its time limit already gone (a backfill, an import of past
tickets) gets its warning colour with the same history row, audit record and supervision or
escalation notice as services.appeal_colour_refresh gives it.

The batch is one transaction and one commit, so each appeal is announced once, in the state it
commits in (`appeal.changed` with its last event, and the supervision or escalation notice that
event carries), where one by one it would also announce the states that no one could see.
When the batch's writes fail (another delivery of the same ticket committed meanwhile), or a
step fails for the whole batch, every item goes through `appeal_register` in its own
transaction: nothing is lost, nothing doubled.
"""

import logging
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from gridgov.appeals import notices, services
from gridgov.appeals.intake import pipeline
from gridgov.appeals.models import Appeal, Category
from gridgov.appeals.routing.selectors import BatchRouteBook
from gridgov.appeals.workflow import State, next_state
from gridgov.areas.locate import BadPoint
from gridgov.audit.services import audit_record_many
from gridgov.bulk import copy_insert, reserve_ids

logger = logging.getLogger(__name__)


class _Item:
    """One new appeal of the batch on its way: the decisions, then the rows to write."""

    __slots__ = (
        "index",
        "data",
        "received_at",
        "loc",
        "fields",
        "decision",
        "clock",
        "appeal",
        "rows",
        "audits",
        "assignments",
        "last_event",
    )

    def __init__(self, index, data, received_at):
        self.index, self.data, self.received_at = index, data, received_at
        self.loc: Any = None
        self.fields: Any = None
        self.decision: Any = None
        self.clock: Any = None
        self.appeal: Any = None
        self.rows, self.audits, self.assignments, self.last_event = [], [], [], ""

    def record(self, records, event):
        row, audit = records
        self.rows.append(row)
        self.audits.append(audit)
        self.last_event = event

    def step(self, event, actor, *, data=None, department=None):
        """One transition of the new appeal, decided by the transition table as in
        services.appeal_transition, with the same history row and audit record."""
        appeal = self.appeal
        new = next_state(appeal.state, event)  # raises IllegalTransition
        self.record(
            services.transition_records(
                appeal, event, appeal.state, new, actor=actor, data=data, department=department
            ),
            event,
        )
        appeal.state = new


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


def _categories(codes):
    """category_get over a preloaded set: the same answers, one query."""
    found = {c.code: c for c in Category.objects.select_related("default_department").filter(code__in=sorted(codes))}

    def get(code, *, leaf):
        category = found.get(code)
        if category is None or (leaf and category.level != 3):
            raise Category.DoesNotExist(f"no category {code!r}")
        return category

    return get


def appeal_register_many(items, *, actor, classifier=None, geocoder=None, now=None):
    """Register `items` (what appeal_register takes as `data`) in order. Returns one result
    per item: (appeal, created) as appeal_register returns, or the exception that refused it
    (services.AppealError, BadPoint, Category.DoesNotExist, or another error of that item)."""
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
    # ticket committed by another delivery meanwhile), every item goes one by one instead.
    try:
        batch = _decide(todo, results, classifier, geocoder, now)
        _write(batch, actor, now)
        for item in batch:
            results[item.index] = (item.appeal, True)
        late = []
    except Exception as exc:
        log = logger.warning if isinstance(exc, DatabaseError) else logger.error
        log("bulk intake: the batch failed (%s); registering its %s items one by one", exc, len(todo), exc_info=True)
        late = todo
    for item in sorted(late, key=lambda it: it.index):
        results[item.index] = _one(item.data, actor, classifier, geocoder, now)
    for i, j in repeats.items():
        results[i] = (results[j][0], False) if isinstance(results[j], tuple) else results[j]
    return results


def _one(data, actor, classifier, geocoder, now):
    try:
        with transaction.atomic():
            return services.appeal_register(data=data, actor=actor, classifier=classifier, geocoder=geocoder, now=now)
    except (services.AppealError, BadPoint, Category.DoesNotExist) as exc:
        return exc
    except Exception as exc:  # one broken item must not lose the others
        logger.exception("bulk intake: an item failed")
        return exc


def _decide(todo, results, classifier, geocoder, now):
    """Run the pipeline's steps over the batch; items it refuses get their error in `results`.
    Returns the items that go on, with their decisions."""
    geocoder = geocoder or services.default_geocoder(pinned=True)
    # Located on the boundaries in force now, as appeal_register locates.
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
            item.fields = services.appeal_fields(
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
        if item.decision.lead is None:
            results[item.index] = services.AppealError(
                "no_unit", "找不到承办单位 / no unit can take this appeal: add a responsibility rule"
            )
            refused.add(item.index)
            continue
        item.clock = pipeline.clock_step(item.received_at, f["time_limit"], now)
    return [it for it in ok if it.index not in refused]


def _write(batch, actor, now):
    if not batch:
        return
    ids = reserve_ids(Appeal, len(batch))
    tickets = services.ticket_nos([it.received_at for it in batch])
    for item, pk, ticket_no in zip(batch, ids, tickets, strict=True):
        item.appeal = Appeal(pk=pk, ticket_no=ticket_no, **item.fields)
    sketches = [pipeline.sketch(it.appeal) if it.loc.located else None for it in batch]
    for item, matches in zip(batch, pipeline.duplicates_many(sketches), strict=True):
        if matches:
            item.appeal.duplicates = [m.as_dict() for m in matches[:5]]
    for item in batch:
        _walk(item, actor, now)
    with transaction.atomic():
        copy_insert([it.appeal for it in batch])
        copy_insert([row for it in batch for row in it.rows])
        copy_insert([a for it in batch for a in it.assignments])
        # The audit head's lock before the outbox's (see gridgov.realtime.broadcast).
        audit_record_many([a for it in batch for a in it.audits])
        _announce(batch)


def _walk(item, actor, now):
    """register → locate (or queue_for_location) → dispatch, as appeal_register goes."""
    appeal, loc = item.appeal, item.loc
    appeal.state = State.REGISTERED
    item.record(services.register_records(appeal, actor=actor), "register")
    if not loc.located:
        item.step("queue_for_location", actor, data={"method": loc.method, "confidence": round(loc.confidence, 3)})
        return
    item.step("locate", actor, data={"grid": appeal.grid_code, "method": loc.method})
    decision = item.decision
    if decision is None:
        return
    item.assignments = services.assignments_for(appeal, decision, now)
    due, _colour, next_at = item.clock
    route = services.route_record(decision)
    appeal.department, appeal.route, appeal.deadline, appeal.next_colour_at = decision.lead, route, due, next_at
    item.step(
        "dispatch", actor, data={"lead": decision.lead.code, "assists": route["assists"]}, department=decision.lead
    )
    colour = item.clock[1]
    if colour != appeal.warning_colour:
        # Dispatched after part of its limit had gone (a backfill, an import of past tickets): the
        # colour it already has is recorded, with its supervision or escalation, as
        # services.appeal_colour_refresh records it.
        item.record(services.colour_records(appeal, appeal.warning_colour, colour), f"colour_{colour}")
        appeal.warning_colour = colour


def _announce(batch):
    changes = []
    for item in batch:
        appeal = item.appeal
        units = (
            appeal.department.code if appeal.department_id else "",
            sorted({a.department_id for a in item.assignments} | ({appeal.department_id} - {None})),
        )
        changes.append((appeal, item.last_event, units))
    notices.appeals_changed(changes)
