"""intake/records.py builds what intake and the one door record without the database: these
tests have no database access (pytest-django refuses any query), so a builder that asked it
would fail here."""

from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import Point

from gridgov.accounts.models import Department, User
from gridgov.appeals.intake import records
from gridgov.appeals.intake.pipeline import LocationDecision, RouteDecision
from gridgov.appeals.models import Appeal, Category
from gridgov.appeals.workflow import IllegalTransition

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 18, 9, 30, tzinfo=TZ)
GRID = "110101001001001"

OPERATOR = User(pk=7, username="op")
SANITATION = Department(pk=11, code="huanwei", name="环卫")
POLICE = Department(pk=12, code="gongan", name="公安")
GARBAGE = Category(pk=3, code="010101", name="垃圾清运", level=3, time_limit="7d")


def located(confidence=1.0):
    chain = SimpleNamespace(grid_id=41, grid_code=GRID, match="inside", distance_m=0.0)
    return LocationDecision(chain, Point(116.4, 39.9, srid=4326), "position", confidence, {"input": {"lng": 116.4}})


def unlocated():
    return LocationDecision(None, None, "geocode", 0.0, {"candidates": []})


def decision(first_receiver=False, assists=True):
    rule = SimpleNamespace(pk=99)
    return RouteDecision(
        lead=SANITATION,
        lead_rule=None if first_receiver else rule,
        assists=[(POLICE, None, "risk: police")] if assists else [],
        first_receiver=first_receiver,
        explanation={"candidates": []},
    )


def appeal(**fields):
    return Appeal(pk=5, ticket_no="2026111800000001", received_at=T0, grid_code=GRID, channel="phone", **fields)


def test_a_located_routed_appeal_is_registered_located_and_dispatched():
    a = appeal()
    due = T0 + timedelta(days=7)
    out = records.intake_records(
        a, located(), decision(), (due, "none", T0 + timedelta(days=5)), actor=OPERATOR, now=T0
    )
    assert [(r.event, r.old_state, r.new_state) for r in out.rows] == [
        ("register", "", "registered"),
        ("locate", "registered", "located"),
        ("dispatch", "located", "dispatched"),
    ]
    assert [x["action"] for x in out.audits] == ["appeal.register", "appeal.locate", "appeal.dispatch"]
    assert out.last_event == "dispatch" and a.state == "dispatched" and a.deadline == due
    assert all(r.actor_id == OPERATOR.pk and r.appeal is a for r in out.rows)
    assert out.rows[1].data == {"grid": GRID, "method": "position"}
    assert out.rows[2].department_id == SANITATION.pk
    assert out.rows[2].data == {"lead": "huanwei", "assists": [{"department": "gongan", "why": "risk: police"}]}
    assert a.route["double_dispatch"] and a.route["lead_rule_id"] == 99
    assert [(x.department_id, x.role, x.rule_id, x.assigned_at) for x in out.assignments] == [
        (SANITATION.pk, "lead", 99, T0),
        (POLICE.pk, "assist", None, T0),
    ]


def test_an_appeal_nothing_places_waits_in_the_location_queue():
    a = appeal()
    out = records.intake_records(a, unlocated(), None, None, actor="system", now=T0)
    assert [r.event for r in out.rows] == ["register", "queue_for_location"]
    assert a.state == "unlocated" and out.assignments == [] and out.last_event == "queue_for_location"
    assert out.rows[1].data == {"method": "geocode", "confidence": 0.0}
    assert all(r.actor_id is None for r in out.rows)  # the system names no user
    assert out.audits[0]["actor"] == "system"


def test_a_low_confidence_geocode_is_not_located():
    a = appeal()
    out = records.intake_records(a, located(confidence=0.01), decision(), None, actor=OPERATOR, now=T0)
    assert a.state == "unlocated" and [r.event for r in out.rows] == ["register", "queue_for_location"]


def test_a_located_appeal_without_category_waits_for_one():
    a = appeal()
    out = records.intake_records(a, located(), None, None, actor=OPERATOR, now=T0)
    assert a.state == "located" and [r.event for r in out.rows] == ["register", "locate"]


def test_a_backfilled_appeal_gets_its_colour_recorded_with_the_escalation():
    a = appeal()
    a.received_at = T0 - timedelta(days=30)
    due = T0 - timedelta(days=20)
    out = records.intake_records(
        a, located(), decision(first_receiver=True), (due, "red", None), actor=OPERATOR, now=T0
    )
    assert [r.event for r in out.rows][-2:] == ["dispatch", "colour_red"]
    colour = out.rows[-1]
    assert (colour.old_state, colour.new_state, colour.actor_id) == ("dispatched", "dispatched", None)
    assert colour.data["escalated"] and colour.data["skipped"] == ["yellow", "orange"]
    assert colour.data["escalated_to"] == {"district": "110101"}
    assert out.audits[-1]["action"] == "appeal.colour" and out.audits[-1]["actor"] == "system"
    assert a.warning_colour == "red" and out.last_event == "colour_red"
    assert out.assignments[0].role == "first_receiver" and out.assignments[0].rule_id is None


def test_transition_records_follow_the_unit_and_the_audit_keeps_the_change():
    a = appeal(department=SANITATION)
    row, audit = records.transition_records(a, "accept", "dispatched", "accepted", actor=OPERATOR, note="收到")
    assert (row.event, row.department_id, row.note, row.data) == ("accept", SANITATION.pk, "收到", {})
    assert audit == {
        "actor": OPERATOR,
        "action": "appeal.accept",
        "obj": a,
        "data": {"old": "dispatched", "new": "accepted", "note": "收到"},
    }
    row, _ = records.transition_records(a, "reassign", "returned", "dispatched", actor=OPERATOR, department=POLICE)
    assert row.department_id == POLICE.pk


def test_the_transition_table_decides_intake_too():
    a = appeal()
    a.state = "closed"
    with pytest.raises(IllegalTransition):
        records._step(records.IntakeRecords(), a, "dispatch", OPERATOR)


def test_appeal_fields_keep_the_evidence_and_risk_shortens_the_limit():
    def categories(code, *, leaf):
        if code != GARBAGE.code:
            raise Category.DoesNotExist(code)
        return GARBAGE

    data = {"text": "楼下闻到很浓的煤气味，怀疑燃气泄漏", "category_code": "010101", "external_id": "X-1"}
    f = records.appeal_fields(data, located(), [], received_at=T0, categories=categories)
    assert f["category"] is GARBAGE and f["classification"]["confirmed_by"] == "operator"
    assert f["time_limit"] == "2h" and f["risk"]["flags"][0]["flag"] == "gas_leak"
    assert f["risk"]["transfer"] == [f["risk"]["flags"][0]["transfer"]]
    assert (f["grid_code"], f["grid_id"], f["channel"]) == (GRID, 41, "phone")
    assert f["location"]["method"] == "position" and f["position_input"] == {"lng": 116.4}
    quiet = records.appeal_fields(
        {"text": "垃圾没人清运", "category_code": "010101"}, unlocated(), [], received_at=T0, categories=categories
    )
    assert quiet["time_limit"] == "7d" and quiet["risk"] == {} and quiet["grid_code"] == ""
    with pytest.raises(Category.DoesNotExist):
        records.appeal_fields(
            {"text": "x", "category_code": "999999"}, unlocated(), [], received_at=T0, categories=categories
        )


def test_ticket_numbers_are_the_local_date_and_the_sequence():
    assert records.ticket_no(datetime(2026, 11, 17, 17, 0, tzinfo=ZoneInfo("UTC")), 42) == "2026111800000042"


def test_the_demo_history_rows_are_the_same_columns():
    """The demo history writes event_row / colour_row / assignment_rows dicts with COPY: they
    name exactly the columns the services' instances set."""
    row = records.event_row("locate", "registered", "located", actor_id=7, data={"grid": GRID})
    assert set(row) | {"appeal_id", "at", "id"} == {f.attname for f in records.AppealEvent._meta.concrete_fields}
    rows = records.assignment_rows(decision(), T0)
    fields = {f.attname for f in records.AppealAssignment._meta.concrete_fields}
    assert all(set(r) | {"appeal_id", "id"} == fields for r in rows)
    assert records.colour_row("accepted", 11, {"new": "orange"})["event"] == "colour_orange"
