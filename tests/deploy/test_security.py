"""Production security: `manage.py check --deploy` is clean once DJANGO_HTTPS=1 (and a real secret
key) are set, and every answer, page or API, carries the Content-Security-Policy, the
Permissions-Policy and the other browser protections."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gridgov.accounts.models import Role

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_HTTPS": "1",
    "DJANGO_ALLOWED_HOSTS": "gridgov.example.org",
    "DJANGO_SECRET_KEY": "k3y-" + "Zq8#vR2!mW5@xT9$" * 4,
}


def _env(**extra):
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_DEBUG", "DJANGO_SECRET_KEY", "DJANGO_HTTPS", "DJANGO_TRUST_X_FORWARDED_PROTO")
    }
    return {**base, **extra}


def test_check_deploy_is_clean_in_production():
    r = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=_env(**PRODUCTION),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # drf-spectacular's checks (views it cannot describe) are deploy checks too: none may remain.
    ids = re.findall(r"\(([a-z_]+\.[A-Z]\d{3})\)", r.stdout + r.stderr)
    assert ids == [], (r.stdout + r.stderr)[-3000:]
    assert r.returncode == 0, r.stderr[-2000:]


def test_check_deploy_names_what_is_missing_without_https():
    env = _env(**{**PRODUCTION, "DJANGO_HTTPS": "0"})
    r = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in r.stdout + r.stderr


def _settings(**env):
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({k: "
        "getattr(s, k, None) for k in ('SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', "
        "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_HSTS_PRELOAD', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', "
        "'SECURE_PROXY_SSL_HEADER', 'SECURE_REDIRECT_EXEMPT')}))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(DJANGO_SETTINGS_MODULE="gridgov.settings", **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-500:]
    return json.loads(r.stdout)


def test_one_switch_for_tls_and_the_proxy_header_only_when_trusted():
    on = _settings(**PRODUCTION)
    assert on["SECURE_SSL_REDIRECT"] and on["SESSION_COOKIE_SECURE"] and on["CSRF_COOKIE_SECURE"]
    assert on["SECURE_HSTS_SECONDS"] == 31536000 and on["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and on["SECURE_HSTS_PRELOAD"]
    assert on["SECURE_PROXY_SSL_HEADER"] is None  # a client reaching Daphne directly could claim https
    assert _settings(**PRODUCTION, DJANGO_TRUST_X_FORWARDED_PROTO="1")["SECURE_PROXY_SSL_HEADER"] == [
        "HTTP_X_FORWARDED_PROTO",
        "https",
    ]
    off = _settings(DJANGO_DEBUG="1")
    assert not off["SECURE_SSL_REDIRECT"] and not off["SECURE_HSTS_SECONDS"] and not off["SESSION_COOKIE_SECURE"]


@pytest.mark.django_db
def test_https_redirects_everything_but_the_healthcheck(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = _settings(**PRODUCTION)["SECURE_REDIRECT_EXEMPT"]
    r = client.get("/accounts/login/")
    assert r.status_code == 301 and r["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200


def _csp(response):
    return dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";") if part.strip())


def assert_protected(r):
    assert r["X-Frame-Options"] == "DENY"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert r["Referrer-Policy"] == "same-origin"
    pp = r["Permissions-Policy"]
    assert "geolocation=(self)" in pp and "camera=(self)" in pp and "microphone=()" in pp and "payment=()" in pp
    csp = _csp(r)
    assert csp["default-src"] == "'self'" and csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert csp["connect-src"].split() == ["'self'", "ws://testserver", "wss://testserver"]
    return csp


@pytest.mark.django_db
def test_headers_on_a_page_and_an_api_answer(client, api, city, make_user):
    assert_protected(client.get("/accounts/login/"))
    street = make_user(Role.STREET_OFFICE, area_code="110101001")
    r = api(street).get("/api/v1/appeals")
    assert r.status_code == 200
    assert_protected(r)
    assert_protected(client.get("/api/v1/appeals"))  # the 401 too


@pytest.mark.django_db
def test_a_map_page_nonces_its_inline_blocks(client, city, make_user, settings):
    settings.MAP_BASEMAP = "tianditu"
    settings.TIANDITU_KEY = "abc123"
    client.force_login(make_user(Role.STREET_OFFICE, area_code="110101001"))
    r = client.get("/maps/street/")
    assert r.status_code == 200
    csp = assert_protected(r)
    nonce = re.search(r"'nonce-([^']+)'", csp["script-src"]).group(1)
    html = r.content.decode()
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline and all(f'nonce="{nonce}"' in attrs or "application/json" in attrs for attrs in inline), inline
    assert all(f'nonce="{nonce}"' in attrs for attrs in re.findall(r"<style([^>]*)>", html))
    # The basemap's tiles, every subdomain, and nothing else from outside.
    assert csp["img-src"].split() == ["'self'", "data:", "blob:", *(f"https://t{i}.tianditu.gov.cn" for i in range(8))]
    assert client.get("/maps/street/")["Content-Security-Policy"] != r["Content-Security-Policy"]  # a new nonce
