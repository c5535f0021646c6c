import pytest

from gridgov.accounts.access import jurisdiction
from gridgov.accounts.models import Role

pytestmark = pytest.mark.django_db


def test_every_role_logs_in_on_the_web_page(client, make_user):
    user = make_user(Role.STREET_OFFICE, area_code="110101001")  # not staff: admin login would refuse
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and "登录" in page.content.decode()
    r = client.post("/accounts/login/", {"username": user.username, "password": "pw-123456", "next": "/maps/"})
    assert r.status_code == 302 and r["Location"] == "/maps/"
    assert client.get("/").status_code == 302


def test_wrong_password_stays_on_the_page_with_a_chinese_error(client, make_user):
    user = make_user(Role.OPERATOR)
    r = client.post("/accounts/login/", {"username": user.username, "password": "nope"})
    assert r.status_code == 200 and "用户名或密码不正确" in r.content.decode()


def test_jurisdictions_by_role(make_user):
    assert jurisdiction(make_user(Role.OPERATOR)) is None
    assert jurisdiction(make_user(Role.STREET_OFFICE, area_code="110101001")) == ["110101001"]
    assert jurisdiction(make_user(Role.LEADER, area_code="110101")) == ["110101"]
    assert jurisdiction(make_user(Role.LEADER)) is None
    assert jurisdiction(make_user(Role.GRID_WORKER, grid_codes=["110101002002001"])) == ["110101002002001"]
    inactive = make_user(Role.OPERATOR)
    inactive.is_active = False
    assert jurisdiction(inactive) == []
