"""Login lockout (django-axes) on the web login, the admin login and the phone login: per account,
per client address, never fooled by X-Forwarded-For, unlocked by an administrator, logged."""

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.core.management import call_command
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from gridgov.accounts.models import Role

pytestmark = pytest.mark.django_db
LOGIN, ADMIN_LOGIN, PHONE_LOGIN = "/accounts/login/", "/admin/login/", "/api/mobile/v1/login"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.LOGIN_LOCKOUT_CLIENT_FAILURES = 8
    # the phone's own throttle (10/min per address and username) stays out of the way
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"throttle-{id(settings)}",
        },
    }


def web_login(username, password, ip="198.51.100.1", path=LOGIN, **headers):
    c = Client(REMOTE_ADDR=ip, **headers)
    return c, c.post(path, {"username": username, "password": password, "next": "/maps/"})


def phone_login(username, password, ip="198.51.100.1"):
    return APIClient(REMOTE_ADDR=ip).post(PHONE_LOGIN, {"username": username, "password": password}, format="json")


def logged_in(c):
    return "_auth_user_id" in c.session


def assert_locked_page(r, *words):
    body = r.content.decode()
    assert r.status_code == 429 and "登录已锁定" in body and "30 分钟后再试" in body, body
    assert r["Retry-After"] == "1800"
    assert all(w in body for w in words), body


def test_an_account_is_locked_after_failures_from_any_address(make_user):
    user = make_user(Role.STREET_OFFICE, area_code="110101001")
    for i in range(4):
        assert web_login(user.username, "wrong", ip=f"198.51.100.{10 + i}")[1].status_code == 200
    c, r = web_login(user.username, "wrong", ip="198.51.100.20")  # the fifth locks
    assert_locked_page(r, f"账号“{user.username}”")
    c, r = web_login(user.username, "pw-123456", ip="203.0.113.99")  # the right password, a fresh address
    assert_locked_page(r, f"账号“{user.username}”")
    assert not logged_in(c)
    # the lock is the account's: another account from the same addresses logs in
    other = make_user(Role.OPERATOR)
    c, r = web_login(other.username, "pw-123456", ip="198.51.100.20")
    assert r.status_code == 302 and logged_in(c)


def test_a_client_address_is_locked_after_failures_for_many_usernames(make_user):
    user = make_user(Role.OPERATOR)
    for i in range(7):  # a password sprayer: other usernames, and a new X-Forwarded-For each time
        r = web_login(f"guess-{i}", "wrong", ip="198.51.100.7", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}")[1]
        assert r.status_code == 200
    r = web_login("guess-7", "wrong", ip="198.51.100.7", HTTP_X_FORWARDED_FOR="10.9.9.7")[1]
    assert_locked_page(r, "网络地址（198.51.100.7）")
    c, r = web_login(user.username, "pw-123456", ip="198.51.100.7", HTTP_X_FORWARDED_FOR="10.9.9.8")
    assert_locked_page(r, "网络地址（198.51.100.7）")
    assert not logged_in(c)
    # the same account from another address is not locked
    c, r = web_login(user.username, "pw-123456", ip="198.51.100.8")
    assert r.status_code == 302 and logged_in(c)


def test_forwarded_for_from_a_trusted_proxy_counts_clients_apart(make_user, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    user = make_user(Role.OPERATOR)
    for i in range(8):
        web_login(f"guess-{i}", "wrong", ip="10.0.0.1", HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 198.51.100.7")
    r = web_login(user.username, "pw-123456", ip="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")[1]
    assert_locked_page(r, "网络地址（198.51.100.7）")
    c, r = web_login(user.username, "pw-123456", ip="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert r.status_code == 302 and logged_in(c)
    assert set(AccessFailureLog.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}


def test_the_admin_login_is_locked_too(make_user):
    admin = make_user(Role.ADMIN, is_staff=True, is_superuser=True)
    for _ in range(5):
        r = web_login(admin.username, "wrong", path=ADMIN_LOGIN)[1]
    assert_locked_page(r, f"账号“{admin.username}”")
    c, r = web_login(admin.username, "pw-123456", path=ADMIN_LOGIN, ip="203.0.113.1")
    assert_locked_page(r)
    assert not logged_in(c)
    # and the web login of the same account with it
    assert_locked_page(web_login(admin.username, "pw-123456", ip="203.0.113.2")[1])


def test_a_lock_from_the_phone_holds_on_the_web_and_back(make_user):
    worker = make_user(Role.GRID_WORKER, grid_codes=["110101001001001"])
    for i in range(5):
        r = phone_login(worker.username, "wrong", ip=f"198.51.100.{30 + i}")
    assert r.status_code == 429 and r.json()["code"] == "locked_out" and "已被锁定" in r.json()["detail"]
    assert_locked_page(web_login(worker.username, "pw-123456", ip="203.0.113.3")[1])

    street = make_user(Role.STREET_OFFICE, area_code="110101001")
    for i in range(5):
        web_login(street.username, "wrong", ip=f"198.51.100.{40 + i}")
    r = phone_login(street.username, "pw-123456", ip="203.0.113.4")
    assert r.status_code == 429 and r.json()["code"] == "locked_out" and r["Retry-After"] == "1800"
    assert "token" not in r.json() and not AuthToken.objects.exists()


@pytest.mark.parametrize("unlock", ["command", "admin"])
def test_an_administrator_unlocks_and_the_log_keeps_the_tries(make_user, unlock):
    user = make_user(Role.STREET_OFFICE, area_code="110101001")
    admin = make_user(Role.ADMIN, is_staff=True, is_superuser=True)
    for i in range(6):
        web_login(user.username, "wrong", ip=f"198.51.100.{50 + i}")
    assert web_login(user.username, "pw-123456")[1].status_code == 429
    # an outsider (staff of a street, not an administrator) can neither see nor clear the lock
    outsider = make_user(Role.STREET_OFFICE, area_code="110101002", is_staff=True)
    oc = Client()
    oc.force_login(outsider)
    assert oc.get("/admin/axes/accessattempt/").status_code == 403
    ids = list(AccessAttempt.objects.filter(username=user.username).values_list("pk", flat=True))
    r = oc.post("/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert r.status_code == 403 and AccessAttempt.objects.filter(username=user.username).count() == len(ids)

    if unlock == "command":
        call_command("axes_reset_username", user.username)
    else:
        ac = Client()
        ac.force_login(admin)
        page = ac.get("/admin/axes/accessattempt/")
        assert page.status_code == 200 and user.username in page.content.decode()
        r = ac.post("/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
        assert r.status_code == 302
    assert not AccessAttempt.objects.filter(username=user.username).exists()
    c, r = web_login(user.username, "pw-123456")
    assert r.status_code == 302 and logged_in(c)

    failures = AccessFailureLog.objects.filter(username=user.username).order_by("attempt_time")
    assert failures.count() == 5  # the sixth wrong try and the right one came while locked
    assert [f.locked_out for f in failures] == [False] * 4 + [True]
    assert failures[0].ip_address == "198.51.100.50" and failures[0].path_info == LOGIN
    assert AccessLog.objects.filter(username=user.username, ip_address="198.51.100.1").count() == 1


def test_without_a_cool_off_the_page_says_whom_to_ask(make_user, settings):
    settings.AXES_COOLOFF_TIME = None  # LOGIN_LOCKOUT_MINUTES=0
    user = make_user(Role.OPERATOR)
    for _ in range(5):
        r = web_login(user.username, "wrong")[1]
    body = r.content.decode()
    assert r.status_code == 429 and "请联系系统管理员解锁" in body and "分钟后再试" not in body
    assert "Retry-After" not in r
    assert web_login(user.username, "pw-123456")[1].status_code == 429


def test_a_logout_without_a_request_is_not_an_error(make_user):
    """Services may be called without a request (commands, tests): there is no client to log."""
    from mobile_api.v1.services import token_login, token_logout

    user = make_user(Role.GRID_WORKER)
    instance, _ = token_login(user=user)
    token_logout(user=user, auth_token=instance)
    assert not AuthToken.objects.exists() and not AccessLog.objects.exists()
