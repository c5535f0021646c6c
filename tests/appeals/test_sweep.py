"""The sweeper: colour changes that fell due while nothing ran are all recorded by one sweep, in
the order they fell due, once; orange is supervision, red escalation to the district."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from gridgov.appeals.models import Appeal, AppealEvent
from gridgov.appeals.services import appeal_arbitrate, appeal_return, appeal_sweep, appeal_transition
from gridgov.appeals.timelimits.supervision import escalated_to_district, supervision_list
from gridgov.audit.models import AuditEvent
from gridgov.audit.services import audit_verify
from gridgov.realtime.models import OutboxEvent

from .timeline import at, register, tiers  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
T0 = at(2026, 11, 16, 9, 0)  # a Monday


@pytest.fixture
def backlog(city, tiers, make_user):  # noqa: F811
    """Five appeals registered on Monday morning, then nothing ran until Saturday."""
    op = make_user("operator")
    return {
        "a": register(op, "2h", T0),  # ranqi: yellow 10:00, red 11:00
        "e": register(op, "2h", T0 + timedelta(minutes=30)),  # ranqi: yellow 10:30, red 11:30
        "b": register(op, "24h", T0),  # shuiwu: yellow 21:00, red Tuesday 09:00
        "c": register(op, "7d", T0),  # chengguan: due Wed 25 17:30, yellow Sat 21 01:15, orange Mon 23 09:22:30
        "d": register(op, "15d", T0),  # chengguan: due Mon 7 Dec, yellow Fri 27 01:15
    }


def colours():
    return dict(Appeal.objects.values_list("ticket_no", "warning_colour"))


def test_one_sweep_catches_up_in_order_and_a_second_changes_nothing(backlog):
    a, e, b, c, d = (backlog[k] for k in "aebcd")
    assert c.deadline == at(2026, 11, 25, 17, 30) and d.deadline == at(2026, 12, 7, 17, 30)
    saturday = at(2026, 11, 21, 9, 0)
    assert appeal_sweep(now=saturday) == {"checked": 4, "changed": 4, "failed": 0}  # d is not due yet
    assert colours() == {
        a.ticket_no: "red",
        e.ticket_no: "red",
        b.ticket_no: "red",
        c.ticket_no: "yellow",
        d.ticket_no: "none",
    }
    changes = list(AppealEvent.objects.filter(event__startswith="colour_").order_by("id"))
    # Written in the order the first of their changes fell due.
    assert [(ev.appeal_id, ev.event) for ev in changes] == [
        (a.pk, "colour_red"),
        (e.pk, "colour_red"),
        (b.pk, "colour_red"),
        (c.pk, "colour_yellow"),
    ]
    assert [ev.data["due_at"] for ev in changes] == [
        "2026-11-16T11:00:00+08:00",
        "2026-11-16T11:30:00+08:00",
        "2026-11-17T09:00:00+08:00",
        "2026-11-21T01:15:00+08:00",
    ]
    assert changes[0].data["skipped"] == ["yellow", "orange"] and "skipped" not in changes[3].data

    events, audits, outbox = AppealEvent.objects.count(), AuditEvent.objects.count(), OutboxEvent.objects.count()
    assert appeal_sweep(now=saturday) == {"checked": 0, "changed": 0, "failed": 0}
    assert (AppealEvent.objects.count(), AuditEvent.objects.count(), OutboxEvent.objects.count()) == (
        events,
        audits,
        outbox,
    )

    monday = at(2026, 11, 23, 10, 0)
    assert appeal_sweep(now=monday) == {"checked": 1, "changed": 1, "failed": 0}
    assert Appeal.objects.get(pk=c.pk).warning_colour == "orange"
    assert audit_verify() == []


def test_orange_and_red_are_recorded_and_announced(backlog):
    a, c = backlog["a"], backlog["c"]
    e = backlog["e"]
    appeal_sweep(now=at(2026, 11, 16, 10, 40))  # a: 1 h 40 of 2 h, orange; e: 1 h 10, yellow
    appeal_sweep(now=at(2026, 11, 23, 10, 0))  # a and e red; c orange
    orange = AppealEvent.objects.get(appeal=c, event="colour_orange")
    assert orange.data["supervised"] is True and orange.data["escalated"] is False
    assert "escalated_to" not in orange.data
    red = AppealEvent.objects.get(appeal=a, event="colour_red")
    assert red.data["old"] == "orange" and red.data["escalated_to"] == {"district": "110101"}
    assert AuditEvent.objects.filter(action="appeal.colour", object_id=str(a.pk), data__new="red").exists()

    def sent(appeal, type_):
        return set(OutboxEvent.objects.filter(type=type_, payload__id=appeal.pk).values_list("group", flat=True))

    chengguan, ranqi = (backlog["c"].department_id, a.department_id)
    # 督办: the hotline centre (city) and the unit.
    assert sent(c, "appeal.supervision") == {"city", f"department.{chengguan}"}
    # 提级处置: the same, and the district's leaders.
    assert sent(a, "appeal.escalation") == {"city", f"department.{ranqi}", "district.110101"}
    assert sent(a, "appeal.supervision") == {"city", f"department.{ranqi}"}
    # e went from yellow to red between two sweeps: one change recorded, one notice.
    assert AppealEvent.objects.get(appeal=e, event="colour_red").data["skipped"] == ["orange"]
    assert sent(e, "appeal.supervision") == set() and sent(e, "appeal.escalation") != set()
    # Every change also updates the appeal for its units, its street and the city.
    assert {"city", "street.110101001", f"department.{ranqi}"} <= sent(a, "appeal.changed")
    payload = OutboxEvent.objects.filter(type="appeal.escalation", payload__id=a.pk).first().payload
    assert payload == {
        "id": a.pk,
        "ticket_no": a.ticket_no,
        "event": "colour_red",
        "state": "dispatched",
        "warning_colour": "red",
        "deadline": "2026-11-16T03:00:00Z",
        "department": "ranqi",
        "grid_code": "110101001001001",
    }


def test_supervision_list_by_unit_with_time_overdue(backlog, make_user):
    a, e, b, c = (backlog[k] for k in "aebc")
    appeal_sweep(now=at(2026, 11, 21, 9, 0))
    monday = at(2026, 11, 23, 10, 0)
    appeal_sweep(now=monday)
    rows = supervision_list(make_user("hotline_center"), now=monday)
    assert [(u["department"]["code"], u["red"], u["orange"]) for u in rows] == [
        ("ranqi", 2, 0),
        ("shuiwu", 1, 0),
        ("chengguan", 0, 1),
    ]
    ranqi = rows[0]
    assert [x["ticket_no"] for x in ranqi["appeals"]] == [a.ticket_no, e.ticket_no]  # most overdue first
    assert ranqi["appeals"][0]["overdue"] == timedelta(days=6, hours=23)
    assert ranqi["max_overdue"] == timedelta(days=6, hours=23)
    assert rows[1]["appeals"][0]["overdue"] == timedelta(days=6, hours=1)
    orange = rows[2]["appeals"][0]
    assert orange["ticket_no"] == c.ticket_no and orange["overdue"] == timedelta(0)
    assert orange["time_left"] == timedelta(days=2, hours=7, minutes=30)
    assert orange["colour_since"] is not None

    # A resolved appeal leaves the list, whatever its colour.
    for event in ("accept", "resolve"):
        appeal_transition(
            appeal_id=b.pk, event=event, actor=None, **({"closure_type": "substantive"} if event == "resolve" else {})
        )
    assert [u["department"]["code"] for u in supervision_list(make_user("hotline_center"), now=monday)] == [
        "ranqi",
        "chengguan",
    ]


def test_supervision_list_scope(backlog, make_user):
    appeal_sweep(now=at(2026, 11, 23, 10, 0))
    units = backlog["a"].department, backlog["c"].department

    def codes(user):
        return [(u["department"]["code"], u["red"], u["orange"]) for u in supervision_list(user)]

    # The district leader sees what was escalated to the district: red only.
    assert codes(make_user("leader", area_code="110101")) == [("ranqi", 2, 0), ("shuiwu", 1, 0)]
    assert codes(make_user("leader", area_code="110102")) == []
    assert codes(make_user("department", department=units[0])) == [("ranqi", 2, 0)]
    assert codes(make_user("department", department=units[1])) == [("chengguan", 0, 1)]
    assert codes(make_user("street_office", area_code="110101001")) == [
        ("ranqi", 2, 0),
        ("shuiwu", 1, 0),
        ("chengguan", 0, 1),
    ]
    assert codes(make_user("street_office", area_code="110101002")) == []  # another street
    assert codes(make_user("operator")) == [] and codes(make_user("grid_worker")) == []
    assert codes(None) == []
    assert set(escalated_to_district("110101").values_list("pk", flat=True)) == {backlog[k].pk for k in "aeb"}
    assert not escalated_to_district("110102").exists()


def test_an_appeal_back_on_the_clock_is_picked_up_again(city, tiers, make_user):  # noqa: F811
    appeal = register(make_user("operator"), "7d", T0)
    unit = make_user("department", department=appeal.department)
    appeal_return(appeal_id=appeal.pk, actor=unit, reason="不属于本单位职责")
    # The clock stops while the centre decides: the sweep drops the next change.
    appeal_sweep(now=at(2026, 11, 21, 9, 0))
    appeal.refresh_from_db()
    assert appeal.state == "returned" and appeal.warning_colour == "none" and appeal.next_colour_at is None
    appeal_arbitrate(appeal_id=appeal.pk, actor=make_user("hotline_center"), uphold=False, note="属本单位职责")
    appeal_sweep(now=at(2026, 11, 21, 9, 5))
    appeal.refresh_from_db()
    assert appeal.state == "dispatched" and appeal.warning_colour == "yellow"
    assert appeal.next_colour_at == at(2026, 11, 23, 9, 22, 30)


def test_one_unreadable_deadline_does_not_stop_the_sweep(city, tiers, make_user, caplog):  # noqa: F811
    op = make_user("operator")
    bad, good = register(op, "2h", T0), register(op, "2h", T0)
    Appeal.objects.filter(pk=bad.pk).update(deadline=T0 - timedelta(hours=1))  # before receipt
    assert appeal_sweep(now=at(2026, 11, 16, 12, 0)) == {"checked": 2, "changed": 1, "failed": 1}
    assert Appeal.objects.get(pk=good.pk).warning_colour == "red"
    assert f"appeal {bad.pk} could not be refreshed" in caplog.text


def test_the_sweep_works_through_batches(city, tiers, make_user):  # noqa: F811
    op = make_user("operator")
    for i in range(5):
        register(op, "2h", T0 + timedelta(minutes=i))
    assert appeal_sweep(now=at(2026, 11, 16, 12, 0), limit=2) == {"checked": 5, "changed": 5, "failed": 0}
    assert set(colours().values()) == {"red"}


def test_sweep_command(backlog):
    out = StringIO()
    call_command("sweep", now="2026-11-21T09:00:00+08:00", stdout=out)
    assert "checked 4, changed 4, failed 0" in out.getvalue()
    out = StringIO()
    call_command("sweep", now="2026-11-21T09:00:00+08:00", stdout=out)
    assert "checked 0, changed 0" in out.getvalue()
    call_command("sweep", stdout=StringIO())  # the real now (after Tuesday 17 November)
    assert {colours()[backlog[k].ticket_no] for k in "aeb"} == {"red"}
    with pytest.raises(CommandError, match="offset"):
        call_command("sweep", now="2026-11-21T09:00")
    with pytest.raises(CommandError, match="future"):
        call_command("sweep", now="2999-01-01T00:00+08:00")


def test_the_task_runs_the_sweep(backlog):
    from gridgov.appeals.tasks import sweep_warning_colours

    result = sweep_warning_colours.apply().get()  # in-process; test_celery_worker runs a real worker
    assert result["failed"] == 0 and result["changed"] >= 3
    assert {colours()[backlog[k].ticket_no] for k in "aeb"} == {"red"}
