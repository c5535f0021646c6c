"""Helpers for the time-limit tests: appeals of each tier registered at a chosen instant, on the
test city, with `now` passed explicitly everywhere (no sleeping, no frozen wall clock)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gridgov.accounts.models import Department
from gridgov.appeals.models import Category
from gridgov.appeals.services import appeal_register, appeal_sweep

TZ = ZoneInfo("Asia/Shanghai")
HERE = {"lng": 116.405, "lat": 39.91}  # grid 110101001001001, street 110101001, district 110101

# tier -> (text, category): no risk words, so the category's own limit and unit apply.
TIERS = {
    "2h": ("燃气表读数异常，请派人查看", "010102"),  # ranqi
    "24h": ("小区停水一整天了", "010105"),  # shuiwu (added by the `tiers` fixture)
    "7d": ("小区门口垃圾桶满了没人清运", "010101"),  # chengguan
    "15d": ("晚上施工噪音扰民", "010104"),  # chengguan
}


def at(*args):
    return datetime(*args, tzinfo=TZ)


@pytest.fixture
def tiers(catalogue):
    """The conftest catalogue plus a 24 h category (water) with its own unit."""
    shuiwu = Department.objects.create(code="shuiwu", name="水务集团", kind=Department.Kind.UTILITY)
    Category.objects.create(
        level=3,
        code="010105",
        name="停水",
        parent=Category.objects.get(code="0101"),
        time_limit="24h",
        default_department=shuiwu,
        keywords=["停水"],
    )
    catalogue["departments"]["shuiwu"] = shuiwu
    return catalogue


def register(actor, tier, received_at, now=None, **data):
    """Register an appeal of `tier` received at `received_at`, dispatched at `now` (default: at
    once, as an operator would)."""
    text, code = TIERS[tier]
    data = {"text": text, "category_code": code, **HERE, "received_at": received_at, **data}
    appeal, created = appeal_register(data=data, actor=actor, now=now or received_at)
    assert created
    appeal.refresh_from_db()
    return appeal


def colour_at(appeal, now):
    appeal_sweep(now=now)
    appeal.refresh_from_db()
    return appeal.warning_colour
