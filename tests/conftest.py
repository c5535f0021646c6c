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
