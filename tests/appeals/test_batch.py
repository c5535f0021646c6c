"""Bulk intake (batch.appeal_register_many) decides and keeps exactly what registering the same
items one by one (services.appeal_register) does, with far fewer statements; the audit chain
stays intact; a batch whose writes fail loses nothing."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from gridgov.appeals.intake import batch
from gridgov.appeals.models import Appeal, AppealAssignment, AppealEvent, Category, ResponsibilityRule
from gridgov.appeals.services import AppealError, appeal_register
from gridgov.areas import coords
from gridgov.areas.locate import BadPoint
from gridgov.audit.models import AuditEvent
from gridgov.audit.services import audit_verify
from gridgov.realtime.models import OutboxEvent

pytestmark = pytest.mark.django_db

GARBAGE = "小区门口垃圾桶满了好几天没人清运，味道很大"
GARBAGE_AGAIN = "小区门口的垃圾桶满了没人来清运，臭味很大"
GAS = "楼下闻到很浓的煤气味，怀疑燃气泄漏"
HALLWAY = "楼道堆物很多，影响通行"
STREET1 = (116.405, 39.91)
STREET1_GRID2 = (116.415, 39.91)
STREET2 = (116.425, 39.91)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def setup(city, catalogue, make_user):
    op = make_user("operator")
    now = timezone.now()
    # The catalogue's rules take effect as the fixture makes them; the items are received earlier.
    ResponsibilityRule.objects.update(valid_from=now - timedelta(days=30))
    # History: an open appeal that the batch's items may duplicate, and a ticket already in.
    history, _ = appeal_register(
        data={
            "text": GARBAGE,
            "lng": STREET1_GRID2[0],
            "lat": STREET1_GRID2[1],
            "source_system": "12345",
            "external_id": "H-1",
            "received_at": now - timedelta(hours=3),
        },
        actor=op,
        now=now,
    )
    return op, now, history


def items(now):
    t = now - timedelta(hours=1)
    glng, glat = coords.wgs84_to_gcj02(*STREET2)
    rows = [
        {"text": GARBAGE, "lng": STREET1[0], "lat": STREET1[1]},
        {"text": GARBAGE_AGAIN, "lng": 116.4051, "lat": 39.9101},  # a duplicate of the one before
        {
            "text": GAS,
            "lng": STREET1[0],
            "lat": STREET1[1],
            "appellant_name": "张三",
            "appellant_phone": "13812345678",
        },  # risk: 2 h, police and the locality assist
        {"text": GARBAGE, "lng": glng, "lat": glat, "crs": "gcj02"},  # the street's own rule
        {"text": HALLWAY, "lng": STREET1[0], "lat": STREET1[1]},  # no rule: the first receiver
        {"text": GARBAGE, "lng": 100.0, "lat": 30.0},  # in China, on no grid: the location queue
        {"text": GARBAGE, "address_text": "某某小区"},  # an address nothing knows
        {
            "text": "有个事情想问一下",
            "lng": STREET1[0],
            "lat": STREET1[1],
            "category_code": "010101",
            "kind": "consultation",
        },  # the operator's category and kind
        {"text": "小区门口垃圾桶满了，好几天没有清运", "lng": 116.4151, "lat": 39.9101},  # duplicates history
        {"text": "你好", "lng": STREET1[0], "lat": STREET1[1]},  # no category: located, waits
        {"text": GARBAGE, "lng": STREET1_GRID2[0], "lat": STREET1_GRID2[1], "received_at": now - timedelta(days=30)},
        {"text": GARBAGE, "lng": 999, "lat": 39.9},  # a bad point
        {"text": GARBAGE, "lng": STREET1[0], "lat": STREET1[1], "category_code": "999999"},  # no such category
    ]
    out = []
    for i, row in enumerate(rows):
        row.setdefault("received_at", t + timedelta(minutes=i))
        out.append({**row, "source_system": "12345", "external_id": f"B-{i}"})
    out.append({**out[0]})  # the same ticket again in the batch
    out.append(
        {"text": GARBAGE, "lng": STREET1[0], "lat": STREET1[1], "source_system": "12345", "external_id": "H-1"}
    )  # a ticket already registered
    return out


def outcome(result, ext_of):
    """What was decided and kept for one item, without ids, ticket numbers and clock times."""
    if isinstance(result, Exception):
        return type(result).__name__
    appeal, created = result
    a = Appeal.objects.select_related("category", "department").get(pk=appeal.pk)
    events = list(
        AppealEvent.objects.filter(appeal=a)
        .order_by("id")
        .values_list("event", "old_state", "new_state", "department__code", "data", "actor_id")
    )
    audits = [
        (action, {k: v for k, v in data.items() if k != "ticket_no"})
        for action, data in AuditEvent.objects.filter(object_type="appeals.appeal", object_id=str(a.pk))
        .order_by("seq")
        .values_list("action", "data")
    ]
    assignments = sorted(AppealAssignment.objects.filter(appeal=a).values_list("department__code", "role", "rule_id"))
    return {
        "ext": a.external_id,
        "created": created,
        "state": a.state,
        "grid": a.grid_code,
        "position": a.position and (round(a.position.x, 7), round(a.position.y, 7)),
        "location": a.location,
        "position_input": a.position_input,
        "category": a.category and a.category.code,
        "classification": a.classification,
        "kind": a.kind,
        "time_limit": a.time_limit,
        "risk": a.risk,
        "route": a.route,
        "deadline": a.deadline,
        "next_colour_at": a.next_colour_at,
        "colour": a.warning_colour,
        "department": a.department and a.department.code,
        "duplicates": [{**d, "candidate_id": ext_of(d["candidate_id"])} for d in a.duplicates],
        "assignments": assignments,
        "events": events,
        "audit": audits,
        "name": a.appellant_name,
        "phone": a.appellant_phone,
        "channel": a.channel,
    }


def test_a_batch_keeps_what_one_by_one_keeps(setup):
    op, now, history = setup
    data = items(now)

    def ext_of(pk):
        return Appeal.objects.get(pk=pk).external_id

    # One by one, as the old bulk API did (each item in its own transaction), then undone.
    with transaction.atomic():
        one_by_one = []
        for d in data:
            try:
                with transaction.atomic():
                    one_by_one.append(appeal_register(data=dict(d), actor=op, now=now))
            except (AppealError, BadPoint, Category.DoesNotExist) as exc:
                one_by_one.append(exc)
        expected = [outcome(r, ext_of) for r in one_by_one]
        transaction.set_rollback(True)
    assert Appeal.objects.count() == 1 and audit_verify() == []

    results = batch.appeal_register_many([dict(d) for d in data], actor=op, now=now)
    got = [outcome(r, ext_of) for r in results]
    for e, g in zip(expected, got, strict=True):
        assert g == e
    # The cases the batch had to meet, so that the comparison above means something.
    states = [g["state"] if isinstance(g, dict) else g for g in got]
    assert states == [
        "dispatched",
        "dispatched",
        "dispatched",
        "dispatched",
        "dispatched",
        "unlocated",
        "unlocated",
        "dispatched",
        "dispatched",
        "located",
        "dispatched",
        "BadPoint",
        "DoesNotExist",
        "dispatched",
        "dispatched",
    ]
    assert got[1]["duplicates"][0]["candidate_id"] == "B-0"
    assert got[8]["duplicates"][0]["candidate_id"] == "H-1"
    assert got[2]["route"]["double_dispatch"] and got[4]["assignments"][0][1] == "first_receiver"
    assert got[3]["department"] == "jiedao-110101002" and got[10]["colour"] == "red"
    assert (got[13]["created"], got[13]["ext"]) == (False, "B-0") and results[13][0].pk == results[0][0].pk
    assert (got[14]["created"], results[14][0].pk) == (False, history.pk)
    assert Appeal.objects.count() == 1 + 11
    assert audit_verify() == []


def test_a_batch_announces_each_appeal_once_in_its_final_state(setup):
    op, now, _ = setup
    start = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    results = batch.appeal_register_many(items(now)[:5], actor=op, now=now)
    rows = list(OutboxEvent.objects.filter(id__gt=start).order_by("id"))
    for appeal, _created in results:
        mine = [r for r in rows if r.payload["id"] == appeal.pk]
        assert {r.payload["event"] for r in mine} == {"dispatch"} and {r.payload["state"] for r in mine} == {
            "dispatched"
        }
        groups = {r.group for r in mine}
        assert {
            "city",
            f"district.{appeal.grid_code[:6]}",
            f"street.{appeal.grid_code[:9]}",
            f"grid.{appeal.grid_code}",
            f"department.{appeal.department_id}",
        } <= groups
    gas = results[2][0]
    police = gas.assignments.get(role="assist", department__code="gongan")
    assert f"department.{police.department_id}" in {r.group for r in rows if r.payload["id"] == gas.pk}


def test_statements_do_not_grow_with_the_batch(setup, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    op, now, _ = setup

    def batch_of(n, tag):
        data = [
            {
                "text": GARBAGE,
                "lng": STREET1[0] + 0.0001 * (i % 50),
                "lat": STREET1[1],
                "source_system": "12345",
                "external_id": f"{tag}-{i}",
                "received_at": now - timedelta(minutes=i),
            }
            for i in range(n)
        ]
        with CaptureQueriesContext(connection) as ctx:
            results = batch.appeal_register_many(data, actor=op, now=now)
        assert all(r[0].state == "dispatched" for r in results)
        return len(ctx.captured_queries)

    small, large = batch_of(5, "S"), batch_of(60, "L")
    assert large <= small + 2, (small, large)
    assert large < 60  # one by one: about 50 statements an appeal


def test_a_failed_batch_write_loses_nothing(setup, monkeypatch):
    """Another delivery of a ticket commits between the batch's look-up and its insert: the
    batch's INSERT fails on the unique ticket, and every item goes through one by one."""
    op, now, history = setup
    monkeypatch.setattr(batch, "_existing", lambda keys: {})  # the look-up missed the other delivery
    data = [
        {"text": GARBAGE, "lng": STREET1[0], "lat": STREET1[1], "source_system": "12345", "external_id": "H-1"},
        {"text": GAS, "lng": STREET1[0], "lat": STREET1[1], "source_system": "12345", "external_id": "N-1"},
    ]
    results = batch.appeal_register_many(data, actor=op, now=now)
    assert results[0] == (history, False)
    assert results[1][1] is True and results[1][0].state == "dispatched"
    assert Appeal.objects.count() == 2 and audit_verify() == []
    assert AppealEvent.objects.filter(appeal=results[1][0]).count() == 3


def test_a_failing_step_for_the_batch_falls_back_to_one_by_one(setup):
    """A step that fails for one item (the geocoder breaks on one address) fails the batch's
    steps; every item then goes as a batch of one, and only that item reports the error."""
    op, now, _ = setup

    def geocoder(text):
        raise RuntimeError("the geocoder is unavailable")

    data = [
        {"text": GARBAGE, "lng": STREET1[0], "lat": STREET1[1], "external_id": "F-1", "source_system": "x"},
        {"text": GARBAGE, "address_text": "某某小区", "external_id": "F-2", "source_system": "x"},
    ]
    (appeal, created), failed = batch.appeal_register_many(data, actor=op, now=now, geocoder=geocoder)
    assert created and appeal.state == "dispatched" and audit_verify() == []
    assert isinstance(failed, RuntimeError) and not Appeal.objects.filter(external_id="F-2").exists()
    assert AppealEvent.objects.filter(appeal=appeal).count() == 3


def test_bulk_api_reports_each_item(setup, api):
    op, now, history = setup
    data = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in d.items()} for d in items(now)]
    data[11]["lng"] = 999  # refused by the input check, before the pipeline
    res = api(op).post("/api/v1/appeals/bulk", data, format="json")
    assert res.status_code == 200
    body = res.json()
    assert (body["count"], body["created"], body["existing"], body["failed"]) == (15, 11, 2, 2)
    assert "lng" in body["results"][11]["errors"] and "category_code" in body["results"][12]["errors"]
    assert body["results"][14] == {"index": 14, "created": False, "ticket_no": history.ticket_no}


def test_a_backfilled_appeal_arrives_red_and_escalated(setup):
    """Received 30 days ago with a 7-working-day limit (past it whatever the weekday or holidays): dispatched in the batch already red, with the
    colour's history row and audit record, and the escalation notice to its district."""
    op, now, _ = setup
    start = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    late = items(now)[10]
    ((appeal, created),) = batch.appeal_register_many([late], actor=op, now=now)
    assert created and appeal.warning_colour == "red" and appeal.state == "dispatched"
    assert list(appeal.events.order_by("id").values_list("event", flat=True)) == [
        "register",
        "locate",
        "dispatch",
        "colour_red",
    ]
    assert AuditEvent.objects.filter(object_id=str(appeal.pk), action="appeal.colour").get().data["escalated"]
    notices = OutboxEvent.objects.filter(id__gt=start, type="appeal.escalation").values_list("group", flat=True)
    assert f"district.{appeal.grid_code[:6]}" in set(notices)
    assert audit_verify() == []


@pytest.mark.django_db(transaction=True)
def test_two_batches_racing_on_the_same_tickets_make_each_appeal_once(city, catalogue, make_user):
    """Two deliveries of overlapping batches at the same time, in two connections: the later
    commit's INSERT meets the unique ticket, that batch goes one by one, and every ticket is one
    appeal; the audit chain stays one chain."""
    import threading

    from django.db import connection

    ResponsibilityRule.objects.update(valid_from=timezone.now() - timedelta(days=30))
    op = make_user("operator")
    now = timezone.now()

    def body(ids):
        return [
            {
                "text": GARBAGE,
                "lng": STREET1[0] + 0.0002 * i,
                "lat": STREET1[1],
                "source_system": "12345",
                "external_id": f"R-{i}",
                "received_at": now - timedelta(minutes=i),
            }
            for i in ids
        ]

    start = threading.Barrier(2)
    out = {}

    def deliver(name, ids):
        try:
            start.wait()
            out[name] = batch.appeal_register_many(body(ids), actor=op, now=now)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=deliver, args=("a", range(0, 30))),
        threading.Thread(target=deliver, args=("b", range(15, 45))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(out) == {"a", "b"}
    by_ticket = {}
    for name in "ab":
        for r in out[name]:
            appeal, _created = r
            by_ticket.setdefault(appeal.external_id, set()).add(appeal.pk)
    assert len(by_ticket) == 45 and all(len(pks) == 1 for pks in by_ticket.values())
    assert Appeal.objects.filter(external_id__startswith="R-").count() == 45
    created = sum(c for name in "ab" for _a, c in out[name])
    assert created == 45
    assert audit_verify() == []
