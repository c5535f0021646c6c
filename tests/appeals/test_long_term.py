"""挂账: review reminders once per review date, reviews that set the next date, and the item
closed when the appeal is resolved."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from gridgov.appeals.models import AppealEvent, LongTermItem
from gridgov.appeals.services import appeal_resolve, appeal_suspend, appeal_sweep, appeal_transition
from gridgov.appeals.timelimits.long_term import long_term_due, long_term_items, long_term_remind, long_term_review
from gridgov.audit.models import AuditEvent
from gridgov.audit.services import audit_verify
from gridgov.realtime.models import OutboxEvent

from .timeline import at, register, tiers  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
REVIEW = at(2026, 11, 10, 9, 0)


@pytest.fixture
def suspended(city, tiers, make_user):  # noqa: F811
    """A 7-day appeal its unit took on, then put on the ledger with a review date."""
    appeal = register(make_user("operator"), "7d", at(2026, 11, 2, 9, 0))
    unit = make_user("department", department=appeal.department)
    for event in ("accept", "start"):
        appeal_transition(appeal_id=appeal.pk, event=event, actor=unit)
    appeal_suspend(
        appeal_id=appeal.pk, actor=unit, reason="需协调产权单位改造管线", plan="年底前完成改造", review_at=REVIEW
    )
    appeal.refresh_from_db()
    return appeal, unit


def reminders(appeal):
    return list(AppealEvent.objects.filter(appeal=appeal, event="ledger_review_due").order_by("id"))


def test_a_review_reminder_once_per_review_date(suspended):
    appeal, unit = suspended
    assert long_term_remind(now=REVIEW - timedelta(minutes=1)) == {"due": 0, "reminded": 0}
    assert long_term_remind(now=REVIEW + timedelta(hours=1)) == {"due": 1, "reminded": 1}
    (reminder,) = reminders(appeal)
    assert reminder.data["review_at"] == "2026-11-10T01:00:00.000000+00:00"
    assert reminder.department_id == appeal.department_id and reminder.new_state == "suspended"
    assert AuditEvent.objects.filter(action="appeal.ledger_review_due", object_id=str(appeal.pk)).count() == 1
    notice = set(
        OutboxEvent.objects.filter(type="appeal.ledger_review", payload__id=appeal.pk).values_list("group", flat=True)
    )
    assert notice == {"city", f"department.{appeal.department_id}"}
    # Idempotent: later runs for the same date record nothing.
    assert long_term_remind(now=REVIEW + timedelta(days=2)) == {"due": 0, "reminded": 0}
    assert len(reminders(appeal)) == 1

    # The unit reviews and sets the next date: one more reminder when it comes.
    nxt = REVIEW + timedelta(days=14)
    long_term_review(
        appeal_id=appeal.pk,
        actor=unit,
        review_at=nxt,
        note="已完成设计",
        plan="12月施工",
        now=REVIEW + timedelta(days=2),
    )
    item = LongTermItem.objects.get(appeal=appeal)
    assert item.review_at == nxt and item.plan == "12月施工"
    assert appeal.events.filter(event="ledger_review").get().data["previous"] == "2026-11-10T01:00:00.000000+00:00"
    assert long_term_remind(now=nxt - timedelta(seconds=1))["reminded"] == 0
    assert long_term_remind(now=nxt)["reminded"] == 1
    assert len(reminders(appeal)) == 2
    assert audit_verify() == []


def test_review_needs_a_future_date(suspended):
    appeal, unit = suspended
    with pytest.raises(ValueError):
        long_term_review(appeal_id=appeal.pk, actor=unit, review_at=REVIEW, now=REVIEW + timedelta(days=1))


def test_review_long_term_command(suspended):
    out = StringIO()
    call_command("review_long_term", now="2026-11-10T10:00:00+08:00", stdout=out)
    assert "due 1, reminded 1" in out.getvalue()
    out = StringIO()
    call_command("review_long_term", stdout=out)  # the real now: that date was already reminded
    assert "due 0, reminded 0" in out.getvalue()


def test_the_task_reminds(suspended):
    from gridgov.appeals.tasks import review_long_term

    assert review_long_term.apply().get() == {"due": 1, "reminded": 1}


def test_resolving_a_suspended_appeal_closes_the_item(suspended):
    appeal, unit = suspended
    assert [i.appeal_id for i in long_term_items()] == [appeal.pk]
    appeal_resolve(appeal_id=appeal.pk, actor=unit, closure_type="substantive", note="管线改造完成")
    item = LongTermItem.objects.get(appeal=appeal)
    assert item.closed_at is not None
    assert list(appeal.events.values_list("event", flat=True))[-2:] == ["resolve", "ledger_close"]
    assert AuditEvent.objects.filter(action="appeal.ledger_close", object_id=str(appeal.pk)).exists()
    assert list(long_term_items()) == [] and [i.appeal_id for i in long_term_items(open_only=False)] == [appeal.pk]
    assert long_term_due(now=REVIEW + timedelta(days=1)) == []
    assert long_term_remind(now=REVIEW + timedelta(days=1))["reminded"] == 0


def test_resolving_after_resume_closes_the_item_too(suspended):
    appeal, unit = suspended
    appeal_transition(appeal_id=appeal.pk, event="resume", actor=unit)
    # Still open on the ledger until solved: the review date still reminds.
    assert long_term_remind(now=REVIEW)["reminded"] == 1
    appeal_resolve(appeal_id=appeal.pk, actor=unit, closure_type="partial", note="先行处置")
    assert LongTermItem.objects.get(appeal=appeal).closed_at is not None


def test_resolving_an_appeal_never_on_the_ledger_changes_nothing(city, tiers, make_user):  # noqa: F811
    appeal = register(make_user("operator"), "2h", at(2026, 11, 2, 9, 0))
    unit = make_user("department", department=appeal.department)
    appeal_transition(appeal_id=appeal.pk, event="accept", actor=unit)
    appeal_resolve(appeal_id=appeal.pk, actor=unit, closure_type="substantive", note="已处理")
    assert not appeal.events.filter(event="ledger_close").exists()


def test_the_clock_stops_on_the_ledger(suspended):
    appeal, _ = suspended
    appeal_sweep(now=at(2026, 11, 30, 9, 0))
    appeal.refresh_from_db()
    assert appeal.warning_colour == "none" and appeal.next_colour_at is None


def test_ledger_scope(suspended, tiers, make_user):  # noqa: F811
    appeal, unit = suspended
    assert [i.appeal_id for i in long_term_items(unit)] == [appeal.pk]
    assert [i.appeal_id for i in long_term_items(make_user("hotline_center"))] == [appeal.pk]
    assert [i.appeal_id for i in long_term_items(make_user("leader", area_code="110101"))] == [appeal.pk]
    assert list(long_term_items(make_user("department", department=tiers["departments"]["ranqi"]))) == []
    assert list(long_term_items(make_user("street_office", area_code="110101002"))) == []
