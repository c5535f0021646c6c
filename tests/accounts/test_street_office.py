"""The street office as a department is a real link, Department.street_code (#12): routing and
field work find a street's office by it, whatever the department is coded; the migration that
added it filled it from the 'jiedao-<street>' codes the offices had."""

import importlib

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction

from gridgov.accounts.models import Department
from gridgov.accounts.selectors import street_office_department, street_office_departments
from gridgov.appeals import field_tasks
from gridgov.appeals.routing.selectors import BatchRouteBook, RouteBook
from gridgov.appeals.services import appeal_register

GRID1 = "110101001001001"  # 甲街道
GAS = "楼下闻到很浓的煤气味，怀疑燃气泄漏"

migration = importlib.import_module("gridgov.accounts.migrations.0002_department_street_code")


@pytest.mark.django_db
def test_the_migration_fills_street_code_from_the_old_codes():
    office = Department.objects.create(code="jiedao-110101003", name="丙街道办事处")
    bureau = Department.objects.create(code="jiedao-office", name="街道工作办公室")  # not a street code
    other = Department.objects.create(code="chengguan", name="城管委")
    migration.fill_street_codes(apps, None)
    for d in (office, bureau, other):
        d.refresh_from_db()
    assert (office.street_code, bureau.street_code, other.street_code) == ("110101003", "", "")


@pytest.mark.django_db
def test_one_office_per_street_and_nine_digits():
    Department.objects.create(code="a", name="甲", street_code="110101001")
    with pytest.raises(IntegrityError), transaction.atomic():
        Department.objects.create(code="b", name="乙", street_code="110101001")
    with pytest.raises(IntegrityError), transaction.atomic():
        Department.objects.create(code="c", name="丙", street_code="1101010")
    Department.objects.create(code="d", name="丁")  # any number of departments of no street


@pytest.fixture
def renamed_office(catalogue):
    """甲街道's office under a code that says nothing about its street."""
    office = catalogue["departments"]["jiedao-110101001"]
    office.code = "jia-street-office"
    office.save(update_fields=["code"])
    return office


def test_routing_finds_the_locality_by_the_link(city, renamed_office):
    assert street_office_department("110101001") == renamed_office
    assert street_office_department("110101009") is None and street_office_department("") is None
    assert street_office_departments(["110101001", "110101002", ""]).keys() == {"110101001", "110101002"}
    assert RouteBook().locality(GRID1) == renamed_office
    assert BatchRouteBook([], [GRID1], []).locality(GRID1) == renamed_office
    assert RouteBook().locality("110101") is None


def test_a_risk_appeal_gets_its_locality_and_the_grid_worker_works_what_it_leads(city, renamed_office, make_user, api):
    operator = make_user("operator")
    appeal = appeal_register(data={"text": GAS, "lng": 116.405, "lat": 39.91}, actor=operator)[0]
    assert appeal.grid_code == GRID1
    assert renamed_office.pk in set(appeal.assignments.values_list("department_id", flat=True))
    appeal.department = renamed_office  # the locality leads (e.g. reassigned to it)
    appeal.save(update_fields=["department"])
    worker = make_user("grid_worker", grid_codes=[GRID1])
    assert field_tasks.tasks_visible_to(worker).filter(pk=appeal.pk).exists()
    assert field_tasks.may_work(worker, appeal, "accept")
    assert api(worker).get(f"/api/mobile/v1/tasks/{appeal.ticket_no}").status_code == 200
    outsider = make_user("grid_worker", grid_codes=["110101002001001"])
    assert not field_tasks.may_work(outsider, appeal, "accept")
    assert api(outsider).get(f"/api/mobile/v1/tasks/{appeal.ticket_no}").status_code == 404
