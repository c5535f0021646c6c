"""/healthz: status for everyone, versions (which tell an attacker what to try) for staff only."""

import socket

import pytest

from gridgov.accounts.models import Role

pytestmark = pytest.mark.django_db


def test_anonymous_gets_status_only(client):
    r = client.get("/healthz")
    assert r.status_code == 200, r.content
    assert r.json() == {"database": "ok", "postgis": "ok", "redis": "ok", "status": "ok"}
    assert b"version" not in r.content.lower() and b"PostgreSQL" not in r.content


@pytest.mark.parametrize(
    "kind,kw",
    [
        ("grid_worker", {"grid_codes": ["110101001001001"]}),
        ("street_office", {"area_code": "110101001"}),
        ("leader", {}),
        ("hotline_center", {}),
    ],
)
def test_non_staff_users_get_status_only(client, make_user, kind, kw):
    client.force_login(make_user(kind, **kw))
    body = client.get("/healthz").json()
    assert "details" not in body and body["status"] == "ok"


@pytest.mark.parametrize("how", ["is_staff", "admin_role"])
def test_staff_see_versions(client, make_user, how):
    user = make_user(Role.ADMIN) if how == "admin_role" else make_user(Role.OPERATOR, is_staff=True)
    client.force_login(user)
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["details"]["database"]["version"].startswith("PostgreSQL")
    assert body["details"]["postgis"]["version"].startswith("3.")
    assert body["details"]["redis"]["version"]


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_component_down_answers_503_and_names_it_without_the_error(client, make_user, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"database": "ok", "postgis": "ok", "redis": "down", "status": "down"}
    client.force_login(make_user(Role.ADMIN))
    body = client.get("/healthz").json()
    assert body["redis"] == "down" and "error" in body["details"]["redis"]
