from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from fixtures.democity import STREET_LEADS, load_city, parse_taxonomy, plan_city
from gridgov.accounts.models import Department
from gridgov.appeals.models import TIME_LIMIT_DURATIONS, Category, ResponsibilityRule, TimeLimit
from gridgov.appeals.routing.catalogue import (
    responsibility_rule_add,
    responsibility_rule_end,
    responsibility_rule_replace,
)
from gridgov.appeals.routing.selectors import route_candidates

pytestmark = pytest.mark.django_db

GRID = "110101002003004"  # district 110101, street 110101002
OTHER_STREET_GRID = "110101001001001"
OTHER_DISTRICT_GRID = "110102001001001"


@pytest.fixture
def depts():
    rows = [
        ("chengguan", "市城管执法局", ""),
        ("chengguan-110101", "测试区城管执法局", "110101"),
        ("jiedao-110101002", "乙街道办事处", "110101"),
        ("gongan", "市公安局", ""),
        ("yuanlin", "市园林绿化局", ""),
    ]
    return {code: Department.objects.create(code=code, name=name, district_code=d) for code, name, d in rows}


@pytest.fixture
def leaf(depts):
    top = Category.objects.create(level=1, code="01", name="城市管理")
    mid = Category.objects.create(level=2, code="0103", name="违法建设", parent=top)
    return Category.objects.create(
        level=3,
        code="010301",
        name="违章建筑",
        parent=mid,
        time_limit="15d",
        default_department=depts["yuanlin"],
        keywords=["违建", "私搭乱建"],
    )


def codes(candidates):
    return [(c.department.code, c.role, c.area_code, c.is_default) for c in candidates]


# --- Category ------------------------------------------------------------------------------------


def test_category_constraints(leaf):
    bad = [
        dict(level=4, code="010399", name="x", parent=leaf, time_limit="7d"),  # no fourth level
        dict(level=3, code="010302", name="x", parent=leaf.parent),  # leaf without a time limit
        dict(level=3, code="010303", name="x", parent=leaf.parent, time_limit="3d"),  # not a tier
        dict(level=2, code="0104", name="x", parent=leaf.parent.parent, time_limit="7d"),  # tier on a non-leaf
        dict(level=2, code="0105", name="x"),  # level 2 without a parent
        dict(level=1, code="0106", name="x"),  # code length does not match the level
        dict(level=3, code="010301", name="again", parent=leaf.parent, time_limit="7d"),  # duplicate code
    ]
    for kw in bad:
        with pytest.raises(IntegrityError), transaction.atomic():
            Category.objects.create(**kw)


def test_category_clean_checks_the_parent(leaf):
    wrong = Category(level=3, code="020101", name="停水", parent=leaf.parent, time_limit="24h")
    with pytest.raises(ValidationError):
        wrong.full_clean()
    Category(level=3, code="010309", name="ok", parent=leaf.parent, time_limit="24h").full_clean()


def test_time_limit_tiers():
    assert TimeLimit.values == ["2h", "24h", "7d", "15d"]
    assert TIME_LIMIT_DURATIONS[TimeLimit.HOURS_2] == timedelta(hours=2)
    assert TIME_LIMIT_DURATIONS[TimeLimit.DAYS_15] == timedelta(days=15)


# --- ResponsibilityRule and route_candidates ----------------------------------------------------


def test_two_current_rules_cannot_claim_the_same_slot(leaf, depts):
    rule = responsibility_rule_add(category=leaf, department=depts["chengguan"])
    with pytest.raises(IntegrityError), transaction.atomic():
        responsibility_rule_add(category=leaf, department=depts["chengguan"])
    responsibility_rule_add(category=leaf, department=depts["chengguan"], role="assist")  # other role: fine
    responsibility_rule_end(rule)
    responsibility_rule_add(category=leaf, department=depts["chengguan"])  # the slot is free again
    for kw in (dict(area_code="1101"), dict(area_code="1101010"), dict(area_code="11010100a"), dict(role="owner")):
        with pytest.raises(IntegrityError), transaction.atomic():
            responsibility_rule_add(category=leaf, department=depts["gongan"], **kw)


def test_most_specific_area_comes_first(leaf, depts):
    responsibility_rule_add(category=leaf, department=depts["chengguan"])
    responsibility_rule_add(category=leaf, department=depts["gongan"], role="assist")
    responsibility_rule_add(category=leaf, department=depts["chengguan-110101"], area_code="110101")
    responsibility_rule_add(category=leaf, department=depts["jiedao-110101002"], area_code="110101002")

    assert codes(route_candidates(leaf, GRID)) == [
        ("jiedao-110101002", "lead", "110101002", False),
        ("chengguan-110101", "lead", "110101", False),
        ("chengguan", "lead", "", False),
        ("gongan", "assist", "", False),
    ]
    # Another street of the district: the district unit leads; the street rule does not apply.
    assert [c[0] for c in codes(route_candidates(leaf, OTHER_STREET_GRID))] == [
        "chengguan-110101",
        "chengguan",
        "gongan",
    ]
    # Another district, or no known place: city-wide rules only.
    assert [c[0] for c in codes(route_candidates(leaf, OTHER_DISTRICT_GRID))] == ["chengguan", "gongan"]
    assert [c[0] for c in codes(route_candidates(leaf, ""))] == ["chengguan", "gongan"]
    # A street code (not only a grid's) works as the place.
    assert route_candidates(leaf.pk, "110101002")[0].department.code == "jiedao-110101002"


def test_default_department_when_no_lead_rule_applies(leaf, depts):
    assert codes(route_candidates(leaf, GRID)) == [("yuanlin", "lead", "", True)]
    responsibility_rule_add(category=leaf, department=depts["gongan"], role="assist")
    assert codes(route_candidates(leaf, GRID)) == [("gongan", "assist", "", False), ("yuanlin", "lead", "", True)]
    responsibility_rule_add(category=leaf, department=depts["chengguan-110101"], area_code="110101")
    assert codes(route_candidates(leaf, GRID))[0] == ("chengguan-110101", "lead", "110101", False)
    assert all(not c.is_default for c in route_candidates(leaf, GRID))
    assert codes(route_candidates(leaf, OTHER_DISTRICT_GRID))[-1] == ("yuanlin", "lead", "", True)


def test_a_department_appears_once_per_role_at_its_most_specific_rule(leaf, depts):
    responsibility_rule_add(category=leaf, department=depts["chengguan-110101"])
    responsibility_rule_add(category=leaf, department=depts["chengguan-110101"], area_code="110101")
    assert codes(route_candidates(leaf, GRID)) == [("chengguan-110101", "lead", "110101", False)]


def test_a_later_change_does_not_rewrite_what_an_earlier_time_returns(leaf, depts):
    t0 = timezone.now() - timedelta(days=30)
    t1 = t0 + timedelta(days=10)
    rule = responsibility_rule_add(category=leaf, department=depts["chengguan"], when=t0)
    street = responsibility_rule_add(
        category=leaf, department=depts["jiedao-110101002"], area_code="110101002", when=t0
    )
    new = responsibility_rule_replace(rule, department=depts["chengguan-110101"], when=t1, note="职责调整")
    responsibility_rule_end(street, when=t1)

    before = route_candidates(leaf, GRID, at=t0 + timedelta(days=1))
    assert [c.department.code for c in before] == ["jiedao-110101002", "chengguan"]
    assert before[1].rule.pk == rule.pk
    after = route_candidates(leaf, GRID)
    assert [c.department.code for c in after] == ["chengguan-110101"] and after[0].rule.pk == new.pk
    assert [c.department.code for c in route_candidates(leaf, GRID, at=t1)] == ["chengguan-110101"]  # [from, to)
    assert codes(route_candidates(leaf, GRID, at=t0 - timedelta(days=1))) == [("yuanlin", "lead", "", True)]
    # The old rule is kept, closed, unchanged.
    rule.refresh_from_db()
    assert rule.valid_to == t1 and rule.department.code == "chengguan"
    assert ResponsibilityRule.objects.filter(category=leaf).count() == 3
    with pytest.raises(ValueError):
        responsibility_rule_end(rule)


def test_a_rule_that_starts_later_is_not_yet_in_force(leaf, depts):
    responsibility_rule_add(category=leaf, department=depts["gongan"], when=timezone.now() + timedelta(days=1))
    assert codes(route_candidates(leaf, GRID)) == [("yuanlin", "lead", "", True)]


def test_route_candidates_runs_one_query_for_a_loaded_category(leaf, depts, django_assert_num_queries):
    responsibility_rule_add(category=leaf, department=depts["chengguan"])
    responsibility_rule_add(category=leaf, department=depts["chengguan-110101"], area_code="110101")
    leaf = Category.objects.select_related("default_department").get(pk=leaf.pk)
    with django_assert_num_queries(1):
        route_candidates(leaf, GRID)


# --- the demo catalogue -------------------------------------------------------------------------


def test_demo_taxonomy_has_about_a_hundred_leaves_with_tier_and_department():
    cats = parse_taxonomy()
    leaves = [c for c in cats if c.level == 3]
    assert 90 <= len(leaves) <= 110
    assert all(c.time_limit in TimeLimit.values and c.default_department and c.keywords for c in leaves)
    assert {c.time_limit for c in leaves} == set(TimeLimit.values)
    by_code = {c.code: c for c in cats}
    assert all(c.parent_code in by_code and by_code[c.parent_code].level == c.level - 1 for c in cats if c.level > 1)
    assert all(any(k.parent_code == c.code for k in cats) for c in cats if c.level < 3)  # no empty branch
    assert len({c.name for c in leaves}) == len(leaves)


def test_demo_catalogue_routes_by_place():
    city = plan_city(grids=40, seed=2, districts=2, streets=4, communities=8)
    load_city(city)
    leaves = Category.objects.filter(level=3)
    assert 90 <= leaves.count() <= 110
    assert not leaves.filter(default_department__isnull=True).exists()
    assert set(leaves.values_list("time_limit", flat=True)) == set(TimeLimit.values)
    grid = city.areas["grid"][-1].code
    district, street = grid[:6], grid[:9]
    # 属地: the street office leads on its own territory.
    illegal_building = Category.objects.get(code=STREET_LEADS[0])
    first = route_candidates(illegal_building, grid)[0]
    assert (first.department.code, first.area_code) == (f"jiedao-{street}", street)
    # Street vending: the district's enforcement unit before the city's.
    vending = Category.objects.get(name="占道经营")
    assert [c.department.code for c in route_candidates(vending, grid)] == [f"chengguan-{district}", "chengguan"]
    # A gas leak: the gas company leads, firefighters assist, in any district.
    gas = Category.objects.get(name="燃气泄漏")
    assert codes(route_candidates(gas, grid)) == [("ranqi", "lead", "", False), ("xiaofang", "assist", "", False)]
    assert gas.time_limit == "2h"
    assert Category.objects.get(name="停暖").time_limit == "24h"
