"""退单 and arbitration counted per unit: returns made, upheld (reassigned), refused."""

from datetime import timedelta

import pytest
from django.utils import timezone

from gridgov.appeals.models import AppealEvent
from gridgov.appeals.services import appeal_arbitrate, appeal_return
from gridgov.appeals.timelimits.supervision import dispute_counts

from .timeline import at, register, tiers  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def disputes(city, tiers, make_user):  # noqa: F811
    op, centre = make_user("operator"), make_user("hotline_center")
    depts = tiers["departments"]
    chengguan = make_user("department", department=depts["chengguan"])
    jiedao = make_user("department", department=depts["jiedao-110101001"])
    x = register(op, "7d", at(2026, 11, 16, 9, 0))
    y = register(op, "15d", at(2026, 11, 16, 10, 0))
    # x: 城管 returns it, the centre agrees and sends it to the street; the street returns it too,
    # and is refused.
    appeal_return(appeal_id=x.pk, actor=chengguan, reason="属地管理事项")
    appeal_arbitrate(appeal_id=x.pk, actor=centre, uphold=True, department="jiedao-110101001", note="改派属地")
    appeal_return(appeal_id=x.pk, actor=jiedao, reason="应由城管执法")
    appeal_arbitrate(appeal_id=x.pk, actor=centre, uphold=False, note="属地兜底")
    # y: 城管 returns it and is refused; its second return is still waiting.
    appeal_return(appeal_id=y.pk, actor=chengguan, reason="非本单位职责")
    appeal_arbitrate(appeal_id=y.pk, actor=centre, uphold=False, note="属本单位职责")
    appeal_return(appeal_id=y.pk, actor=chengguan, reason="仍非本单位职责")
    return x, y


def test_dispute_counts_per_unit(disputes):
    x, _ = disputes
    x.refresh_from_db()
    assert x.state == "dispatched" and x.department.code == "jiedao-110101001"
    assert dispute_counts() == [
        {"department": "chengguan", "name": "城管委", "made": 3, "upheld": 1, "refused": 1},
        {"department": "jiedao-110101001", "name": "甲街道办事处", "made": 1, "upheld": 0, "refused": 1},
    ]


def test_dispute_counts_in_a_window(disputes):
    x, y = disputes
    # Move x's history a month back: only y's returns and decision stay in the window.
    AppealEvent.objects.filter(appeal=x).update(at=timezone.now() - timedelta(days=30))
    since = timezone.now() - timedelta(days=7)
    assert dispute_counts(since=since) == [
        {"department": "chengguan", "name": "城管委", "made": 2, "upheld": 0, "refused": 1}
    ]
    assert dispute_counts(until=since) == [
        {"department": "chengguan", "name": "城管委", "made": 1, "upheld": 1, "refused": 0},
        {"department": "jiedao-110101001", "name": "甲街道办事处", "made": 1, "upheld": 0, "refused": 1},
    ]
    assert dispute_counts(since=timezone.now() + timedelta(days=1)) == []
