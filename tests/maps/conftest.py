"""Map test data on the test city (fixtures/testcity.py): street 甲 (110101001, grids …001001001
and …001001002) and street 乙 (110101002, grids …002001001 and …002002001), appeals made
directly in the database with exact times, so counts and rates are known in advance."""

import itertools
from datetime import datetime, timedelta

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from fixtures.testcity import build_test_city
from gridgov.accounts.models import Department, Role
from gridgov.appeals.models import Appeal, AppealAssignment, AppealEvent, Category

JIA, YI = "110101001", "110101002"
JIA_GRIDS = ("110101001001001", "110101001001002")
YI_GRIDS = ("110101002001001", "110101002002001")
# A point well inside each grid.
INSIDE = {
    "110101001001001": (116.405, 39.91),
    "110101001001002": (116.415, 39.91),
    "110101002001001": (116.425, 39.91),
    "110101002002001": (116.435, 39.91),
}
_tickets = itertools.count(1)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # Ten users per test at PBKDF2's production cost is most of a test's time on two cores.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def cats(db):
    l1 = Category.objects.create(level=1, code="01", name="城市管理")
    l2 = Category.objects.create(level=2, code="0101", name="环境卫生", parent=l1)
    l1b = Category.objects.create(level=1, code="02", name="公共服务")
    l2b = Category.objects.create(level=2, code="0201", name="供水", parent=l1b)
    return {
        "010101": Category.objects.create(level=3, code="010101", name="垃圾清运不及时", parent=l2, time_limit="7d"),
        "010102": Category.objects.create(level=3, code="010102", name="楼道堆物", parent=l2, time_limit="7d"),
        "020101": Category.objects.create(level=3, code="020101", name="停水", parent=l2b, time_limit="24h"),
    }


@pytest.fixture
def depts(db):
    return {
        "chengguan": Department.objects.get_or_create(code="chengguan", defaults={"name": "城管委"})[0],
        "shuiwu": Department.objects.create(code="shuiwu", name="自来水集团", kind=Department.Kind.UTILITY),
    }


def local(days_ago, hour=10, now=None):
    """A moment `days_ago` local days before today, at `hour` o'clock Beijing time."""
    today = timezone.localdate(now)
    day = today - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.get_current_timezone())


def make_appeal(
    grid_code,
    *,
    received_at=None,
    category=None,
    state="dispatched",
    colour="none",
    deadline=None,
    department=None,
    dispatched_at=None,
    accepted_at=None,
    ticket=None,
    position=True,
    text="测试诉求",
):
    """One appeal with the history rows the rates read (dispatch, accept)."""
    received_at = received_at or timezone.now() - timedelta(hours=1)
    lng, lat = INSIDE.get(grid_code, (116.41, 39.91))
    n = next(_tickets)
    a = Appeal.objects.create(
        ticket_no=ticket or f"T{n:08d}",
        text=text,
        received_at=received_at,
        grid_code=grid_code,
        position=Point(lng + (n % 7) * 1e-4, lat + (n % 5) * 1e-4, srid=4326) if position else None,
        category=category,
        state=state,
        warning_colour=colour,
        deadline=deadline,
        department=department,
    )
    if department is not None:
        AppealAssignment.objects.create(appeal=a, department=department, role="lead")
    if dispatched_at is not None:
        AppealEvent.objects.create(
            appeal=a,
            at=dispatched_at,
            event="dispatch",
            old_state="located",
            new_state="dispatched",
            department=department,
        )
    if accepted_at is not None:
        AppealEvent.objects.create(
            appeal=a,
            at=accepted_at,
            event="accept",
            old_state="dispatched",
            new_state="accepted",
            department=department,
        )
    return a


@pytest.fixture
def mapdata(db, cats, depts):
    """Both streets with appeals over the last 40 days; returns what was made."""
    build_test_city()
    cg = depts["chengguan"]
    made = {"jia": [], "yi": []}
    now = timezone.now()
    # 甲: 6 appeals in grid 1, 3 in grid 2, various days and categories.
    for days_ago, grid, cat in [
        (0, 0, "010101"),
        (1, 0, "010101"),
        (3, 0, "010102"),
        (9, 0, "020101"),
        (20, 0, "010101"),
        (38, 0, "010101"),
        (2, 1, "010102"),
        (15, 1, "020101"),
        (60, 1, "010101"),
    ]:
        rec = local(days_ago)
        made["jia"].append(
            make_appeal(
                JIA_GRIDS[grid],
                received_at=rec,
                category=cats[cat],
                department=cg,
                deadline=rec + timedelta(days=7),
                dispatched_at=rec + timedelta(minutes=5),
                # Every other one accepted within 2 h, the rest late (5 h).
                accepted_at=rec + timedelta(hours=1 if days_ago % 2 == 0 else 5),
                state="closed" if days_ago >= 15 else "accepted",
                colour="red" if days_ago == 9 else "none",
            )
        )
    # 乙: 4 appeals, one resolved late, one never accepted.
    for days_ago, grid in [(0, 0), (4, 0), (12, 1), (25, 1)]:
        rec = local(days_ago)
        made["yi"].append(
            make_appeal(
                YI_GRIDS[grid],
                received_at=rec,
                category=cats["010101"],
                department=cg,
                deadline=rec + timedelta(days=7),
                dispatched_at=rec + timedelta(minutes=5),
                accepted_at=None if days_ago == 12 else rec + timedelta(minutes=30),
                state="dispatched" if days_ago == 12 else "resolved" if days_ago == 25 else "accepted",
                colour="orange" if days_ago == 4 else "none",
                ticket=f"YI{days_ago:06d}",
            )
        )
    made["now"] = now
    return made


@pytest.fixture
def users(db, make_user, depts):
    return {
        "jia": make_user(Role.STREET_OFFICE, area_code=JIA, username="jia-office"),
        "yi": make_user(Role.STREET_OFFICE, area_code=YI, username="yi-office"),
        "leader": make_user(Role.LEADER, area_code="110101", username="district-leader"),
        "city": make_user(Role.LEADER, username="city-leader"),
        "worker": make_user(Role.GRID_WORKER, grid_codes=[JIA_GRIDS[0]], username="jia-worker"),
        "worker_yi": make_user(Role.GRID_WORKER, grid_codes=[YI_GRIDS[0]], username="yi-worker"),
        "dept": make_user(Role.DEPARTMENT, department=depts["chengguan"], username="chengguan-staff"),
        "water": make_user(Role.DEPARTMENT, department=depts["shuiwu"], username="shuiwu-staff"),
        "operator": make_user(Role.OPERATOR, username="operator"),
        "centre": make_user(Role.HOTLINE_CENTER, username="centre"),
    }
