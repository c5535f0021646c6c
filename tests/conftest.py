import pytest
from django.contrib.auth import get_user_model

from fixtures.testcity import build_test_city
from gridgov.accounts.models import Department, Role


@pytest.fixture
def city(db):
    build_test_city()


@pytest.fixture
def make_user(db):
    User = get_user_model()
    counter = iter(range(10_000))

    def make(role, **kw):
        username = kw.pop("username", f"{role}-{next(counter)}")
        if role == Role.DEPARTMENT and "department" not in kw:
            kw["department"] = Department.objects.get_or_create(code="chengguan", defaults={"name": "城管委"})[0]
        return User.objects.create_user(username=username, password="pw-123456", role=role, **kw)

    return make


@pytest.fixture
def api(client):
    """A DRF-aware test client logged in as a given user: api(user).get(...)."""
    from rest_framework.test import APIClient

    def for_user(user=None):
        c = APIClient()
        if user is not None:
            c.force_authenticate(user)
        return c

    return for_user


@pytest.fixture
def catalogue(db):
    """A small catalogue on the test city: three units, four leaf categories, a street rule."""
    from gridgov.appeals.models import Category, ResponsibilityRule

    D = Department
    depts = {
        "chengguan": D.objects.get_or_create(code="chengguan", defaults={"name": "城管委"})[0],
        "ranqi": D.objects.create(code="ranqi", name="燃气集团", kind=D.Kind.UTILITY),
        "gongan": D.objects.create(code="gongan", name="公安局", kind=D.Kind.POLICE),
        "jiedao-110101001": D.objects.create(
            code="jiedao-110101001", name="甲街道办事处", district_code="110101", street_code="110101001"
        ),
        "jiedao-110101002": D.objects.create(
            code="jiedao-110101002", name="乙街道办事处", district_code="110101", street_code="110101002"
        ),
    }
    l1 = Category.objects.create(level=1, code="01", name="城市管理")
    l2 = Category.objects.create(level=2, code="0101", name="环境卫生", parent=l1)
    leaves = {
        "010101": Category.objects.create(
            level=3,
            code="010101",
            name="垃圾清运不及时",
            parent=l2,
            time_limit="7d",
            default_department=depts["chengguan"],
            keywords=["垃圾", "清运", "垃圾桶"],
        ),
        "010102": Category.objects.create(
            level=3,
            code="010102",
            name="燃气泄漏",
            parent=l2,
            time_limit="2h",
            default_department=depts["ranqi"],
            keywords=["燃气", "煤气"],
        ),
        "010103": Category.objects.create(
            level=3, code="010103", name="楼道堆物", parent=l2, time_limit="7d", keywords=["楼道", "堆物"]
        ),
        "010104": Category.objects.create(
            level=3,
            code="010104",
            name="噪音扰民",
            parent=l2,
            time_limit="15d",
            default_department=depts["chengguan"],
            keywords=["噪音", "扰民"],
        ),
    }
    ResponsibilityRule.objects.create(
        category=leaves["010101"],
        area_code="110101002",
        department=depts["jiedao-110101002"],
        note="乙街道自管垃圾清运",
    )
    return {"departments": depts, "categories": leaves}


@pytest.fixture(autouse=True)
def _isolated_model_files(settings, tmp_path_factory):
    """Tests never pick up a classifier or address model a developer trained into var/models."""
    models_dir = tmp_path_factory.mktemp("models")
    settings.CLASSIFIER_MODEL_PATH = str(models_dir / "appeal-classifier.joblib")
    settings.ADDRESS_MODEL_PATH = str(models_dir / "address-crf.crfsuite")
