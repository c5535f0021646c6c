"""Phone login with knox tokens: issue, use on REST, expiry, logout, throttling, audit."""

import hashlib
import uuid
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from gridgov.accounts.models import Role
from gridgov.audit.models import AuditEvent
from gridgov.audit.services import audit_verify

pytestmark = pytest.mark.django_db
LOGIN, LOGOUT, LOGOUT_ALL, ME = (
    "/api/mobile/v1/login",
    "/api/mobile/v1/logout",
    "/api/mobile/v1/logout-all",
    "/api/mobile/v1/me",
)


def login(user, password="pw-123456", client=None):
    return (client or APIClient()).post(LOGIN, {"username": user.username, "password": password}, format="json")


def with_token(token):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return c


def test_login_gives_a_token_that_works_on_the_rest_api(make_user, city):
    worker = make_user(Role.GRID_WORKER, grid_codes=["110101001001001"])
    r = login(worker)
    assert r.status_code == 200, r.content
    body = r.json()
    token = body["token"]
    assert body["user"]["username"] == worker.username and body["user"]["role"] == "grid_worker"
    expiry = AuthToken.objects.get(user=worker).expiry
    assert abs((expiry - timezone.now()) - timedelta(hours=72)) < timedelta(minutes=1)
    # the same token on the platform's other endpoints, not only the phone API
    assert with_token(token).get(ME).status_code == 200
    r = with_token(token).get("/api/v1/locate", {"lng": 116.405, "lat": 39.91})
    assert r.status_code == 200 and r.json()["in_jurisdiction"] is True
    ev = AuditEvent.objects.get(action="auth.login")
    assert ev.actor_id == worker.pk and ev.object_id == token[:15] and token not in str(ev.data)
    assert audit_verify() == []


def test_token_ttl_comes_from_settings(make_user, settings):
    settings.MOBILE_TOKEN_TTL_HOURS = 2
    user = make_user(Role.OPERATOR)
    login(user)
    expiry = AuthToken.objects.get(user=user).expiry
    assert abs((expiry - timezone.now()) - timedelta(hours=2)) < timedelta(minutes=1)


@pytest.mark.parametrize("username,password", [("right-user", "wrong"), ("nobody", "pw-123456"), ("", "x")])
def test_bad_login_is_a_clear_400(make_user, username, password):
    make_user(Role.OPERATOR, username="right-user")
    r = APIClient().post(LOGIN, {"username": username, "password": password}, format="json")
    assert r.status_code == 400
    if username:
        assert r.json() == {"detail": "用户名或密码错误 / wrong username or password", "code": "invalid_credentials"}
    assert not AuthToken.objects.exists() and not AuditEvent.objects.filter(action="auth.login").exists()


def test_inactive_user_cannot_log_in_and_its_tokens_stop_working(make_user):
    user = make_user(Role.OPERATOR)
    token = login(user).json()["token"]
    user.is_active = False
    user.save()
    assert login(user).status_code == 400
    assert with_token(token).get(ME).status_code == 401


def test_expired_token_is_refused(make_user):
    user = make_user(Role.OPERATOR)
    token = login(user).json()["token"]
    AuthToken.objects.filter(user=user).update(expiry=timezone.now() - timedelta(seconds=1))
    r = with_token(token).get(ME)
    assert r.status_code == 401
    assert not AuthToken.objects.filter(user=user).exists()  # knox removes it


def test_logout_revokes_only_this_token(make_user):
    user = make_user(Role.STREET_OFFICE, area_code="110101001")
    phone, tablet = login(user).json()["token"], login(user).json()["token"]
    assert with_token(phone).post(LOGOUT).status_code == 204
    assert with_token(phone).get(ME).status_code == 401
    assert with_token(tablet).get(ME).status_code == 200
    ev = AuditEvent.objects.get(action="auth.logout")
    assert ev.actor_id == user.pk and ev.object_id == phone[:15]
    assert with_token(phone).post(LOGOUT).status_code == 401


def test_logout_all_revokes_every_token(make_user):
    user = make_user(Role.GRID_WORKER)
    other = make_user(Role.GRID_WORKER)
    tokens = [login(user).json()["token"] for _ in range(3)]
    other_token = login(other).json()["token"]
    assert with_token(tokens[0]).post(LOGOUT_ALL).status_code == 204
    assert all(with_token(t).get(ME).status_code == 401 for t in tokens)
    assert with_token(other_token).get(ME).status_code == 200
    assert AuditEvent.objects.get(action="auth.logout_all").data["revoked"] == 3
    assert audit_verify() == []


def test_logout_needs_a_token_not_a_session(make_user):
    user = make_user(Role.OPERATOR)
    c = APIClient()
    c.force_login(user)
    assert c.post(LOGOUT).status_code == 401
    assert APIClient().post(LOGOUT).status_code == 401


@pytest.fixture
def throttle_only(settings):
    """The lockout (tests/accounts/test_lockout.py) out of the way, to see the throttle alone."""
    settings.AXES_FAILURE_LIMIT = settings.LOGIN_LOCKOUT_CLIENT_FAILURES = 1000


def test_login_is_throttled(make_user, throttle_only):
    user = make_user(Role.OPERATOR)
    for _ in range(10):
        assert login(user, password="wrong").status_code == 400
    r = login(user)  # even the right password, once over the limit
    assert r.status_code == 429 and "Retry-After" in r.headers
    # another account from the same address is not locked out with it
    assert login(make_user(Role.OPERATOR)).status_code == 200


def test_login_throttle_is_shared_through_redis(make_user, settings):
    from django.conf import settings as live

    settings.CACHES = {
        **live.CACHES,
        "throttle": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": live.REDIS_URL,
            "KEY_PREFIX": f"test-throttle-{uuid.uuid4().hex}",
        },
    }
    user = make_user(Role.OPERATOR, username=f"u-{uuid.uuid4().hex[:8]}")
    for _ in range(10):
        login(user, password="wrong")
    assert login(user).status_code == 429
    key = f"throttle_login_127.0.0.1:{hashlib.sha256(user.username.encode()).hexdigest()[:32]}"
    assert caches["throttle"].get(key)
    caches["throttle"].delete(key)


def test_a_new_forwarded_for_on_each_try_is_still_the_same_client(make_user, throttle_only):
    user = make_user(Role.OPERATOR)
    answers = [
        login(user, password="wrong", client=APIClient(HTTP_X_FORWARDED_FOR=f"10.1.2.{i}")).status_code
        for i in range(15)
    ]
    assert answers == [400] * 10 + [429] * 5
    r = login(user, client=APIClient(HTTP_X_FORWARDED_FOR="10.1.3.1"))  # the right password, a fresh header
    assert r.status_code == 429 and "token" not in r.json() and not AuthToken.objects.exists()


def test_behind_a_trusted_proxy_two_clients_are_counted_apart(make_user, throttle_only, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's address
    user = make_user(Role.OPERATOR)
    for i in range(10):  # what the client writes left of the proxy's hop does not make it new
        r = login(user, password="wrong", client=APIClient(HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 203.0.113.1"))
        assert r.status_code == 400
    assert login(user, client=APIClient(HTTP_X_FORWARDED_FOR="203.0.113.1")).status_code == 429
    r = login(user, client=APIClient(HTTP_X_FORWARDED_FOR="203.0.113.2"))
    assert r.status_code == 200 and r.json()["token"]
    assert AuditEvent.objects.get(action="auth.login").data["ip"] == "203.0.113.2"


def test_a_locked_account_gets_429_and_no_token_from_a_fresh_address(make_user):
    """The account-wide lockout (axes, shared with the web login) that the per-address throttle is not."""
    user = make_user(Role.GRID_WORKER)
    for i in range(9):
        assert login(user, password="wrong", client=APIClient(REMOTE_ADDR=f"198.51.100.{i}")).status_code == 400
    r = login(user, password="wrong", client=APIClient(REMOTE_ADDR="198.51.100.9"))
    assert r.status_code == 429 and r.json()["code"] == "locked_out"
    r = login(user, client=APIClient(REMOTE_ADDR="203.0.113.9"))
    assert r.status_code == 429 and r.json() == {
        "detail": f"账号“{user.username}”登录失败次数过多，已被锁定，请在 30 分钟后再试，或联系系统管理员解锁。",
        "code": "locked_out",
    }
    assert not AuthToken.objects.exists() and not AuditEvent.objects.filter(action="auth.login").exists()
    # another account is not locked with it
    assert login(make_user(Role.GRID_WORKER), client=APIClient(REMOTE_ADDR="198.51.100.9")).status_code == 200
