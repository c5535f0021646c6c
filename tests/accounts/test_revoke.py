"""An admin revokes all of a user's logins at once (a lost phone): web sessions, knox tokens and
open WebSockets go; another user's stay. Password rules are Django's four, in Chinese."""

import copy
import os

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import translation
from knox.models import AuthToken
from rest_framework.test import APIClient

from gridgov.accounts.models import Role
from gridgov.asgi import application
from gridgov.audit.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)
CHANGELIST = reverse("admin:accounts_user_changelist")
ME = "/api/mobile/v1/me"


def web(user):
    c = Client()
    c.force_login(user)
    return c


def phone(user):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return c


def revoke(admin_client, *users):
    return admin_client.post(
        CHANGELIST, {"action": "revoke_logins", "_selected_action": [u.pk for u in users]}, follow=True
    )


def logged_in(c):
    """The maps page sends the logged-in on to their role's page and the others to the login."""
    r = c.get("/maps/")
    return not (r.status_code == 302 and r.url.startswith(django_settings.LOGIN_URL))


def test_admin_revokes_sessions_tokens_and_websockets(make_user, settings):
    # The real Redis layer, under a prefix of this run's own (the Redis is shared).
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["prefix"] = f"gridgov-test-revoke-{os.getpid()}"
    settings.CHANNEL_LAYERS = layers
    admin = make_user(Role.ADMIN, is_staff=True)
    user, outsider = make_user(Role.OPERATOR), make_user(Role.OPERATOR)
    user_web, user_web2, user_phone = web(user), web(user), phone(user)
    token = AuthToken.objects.create(user=user)[1]
    out_web, out_phone, admin_web = web(outsider), phone(outsider), web(admin)
    assert logged_in(user_web) and user_phone.get(ME).status_code == 200

    async def body():
        comm = WebsocketCommunicator(application, "/ws/v1/events/", subprotocols=["gridgov.v1", f"token.{token}"])
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from(timeout=5))["type"] == "hello"
        response = await database_sync_to_async(revoke)(admin_web, user)
        assert response.status_code == 200
        assert "已吊销 1 个用户的全部登录：2 个网页会话，2 个手机令牌" in response.content.decode()
        assert (await comm.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4401}

    async_to_sync(body)()

    assert not logged_in(user_web) and not logged_in(user_web2)
    assert user_phone.get(ME).status_code == 401
    assert not AuthToken.objects.filter(user=user).exists()
    event = AuditEvent.objects.get(action="auth.revoke_all")
    assert event.actor_id == admin.pk and event.object_id == str(user.pk)
    assert event.data == {"sessions": 2, "tokens": 2}
    # The outsider's logins are untouched.
    assert logged_in(out_web) and out_phone.get(ME).status_code == 200


def test_non_admin_staff_cannot_revoke(make_user):
    staff = make_user(Role.HOTLINE_CENTER, is_staff=True)
    user = make_user(Role.OPERATOR)
    user_web, user_phone = web(user), phone(user)
    response = web(staff).post(CHANGELIST, {"action": "revoke_logins", "_selected_action": [user.pk]})
    assert response.status_code == 403
    assert logged_in(user_web) and user_phone.get(ME).status_code == 200
    assert not AuditEvent.objects.filter(action="auth.revoke_all").exists()


def test_superuser_is_offered_the_action(make_user):
    root = make_user(Role.OPERATOR, is_staff=True, is_superuser=True)
    page = web(root).get(CHANGELIST)
    assert page.status_code == 200 and "吊销全部登录（会话和手机令牌）" in page.content.decode()


@pytest.mark.parametrize(
    "password, message",
    [
        ("12345678", "这个密码太短，至少需要 10 个字符"),
        ("12345678", "这个密码太常见了"),
        ("12345678", "密码只包含数字"),
        ("wangxiaoming1", "密码跟 用户名 太相似了"),
    ],
)
def test_password_rules_refuse_with_chinese_messages(make_user, password, message):
    user = make_user(Role.OPERATOR, username="wangxiaoming")
    with translation.override("zh-hans"), pytest.raises(ValidationError) as refused:
        validate_password(password, user)
    assert any(message in m for m in refused.value.messages), refused.value.messages


def test_a_good_password_passes(make_user):
    validate_password("hotline-grid-2026", make_user(Role.OPERATOR, username="wangxiaoming"))


def test_admin_password_change_form_refuses_in_chinese(make_user):
    admin = make_user(Role.ADMIN, is_staff=True)
    user = make_user(Role.OPERATOR, username="wangxiaoming")
    url = reverse("admin:auth_user_password_change", args=[user.pk])
    page = web(admin).post(url, {"password1": "12345678", "password2": "12345678"})
    text = page.content.decode()
    assert page.status_code == 200 and "这个密码太短，至少需要 10 个字符" in text and "密码只包含数字" in text
    user.refresh_from_db()
    assert user.check_password("pw-123456")
