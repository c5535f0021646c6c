"""client_ip: the client's address, believing X-Forwarded-For only from TRUSTED_PROXIES."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import RequestFactory

from gridgov.accounts.client_ip import client_ip

ROOT = Path(__file__).resolve().parents[2]


def request(peer="203.0.113.5", forwarded=None):
    meta = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **meta)


def test_without_trusted_proxies_the_peer_is_the_client(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(request(forwarded="1.2.3.4")) == "203.0.113.5"
    assert client_ip(request()) == "203.0.113.5"


def test_a_header_from_an_untrusted_peer_is_ignored(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    assert client_ip(request(peer="203.0.113.5", forwarded="1.2.3.4")) == "203.0.113.5"


@pytest.mark.parametrize(
    "proxies,forwarded,client",
    [
        (["10.0.0.1"], "198.51.100.7", "198.51.100.7"),
        # what the client wrote left of what our proxy appended is not believed
        (["10.0.0.1"], "6.6.6.6, 198.51.100.7", "198.51.100.7"),
        # two proxies of ours (a CIDR): the first untrusted address from the right
        (["10.0.0.0/24"], "6.6.6.6, 198.51.100.7, 10.0.0.9", "198.51.100.7"),
        (["10.0.0.1", "2001:db8::/32"], "2001:db8::5, 198.51.100.7 ,2001:db8::9", "198.51.100.7"),
        # garbage where a proxy's hop should be: the last trusted hop is the best we know
        (["10.0.0.0/24"], "198.51.100.7, not-an-ip, 10.0.0.9", "10.0.0.9"),
        (["10.0.0.1"], "", "10.0.0.1"),
        (["10.0.0.1"], None, "10.0.0.1"),
    ],
)
def test_a_trusted_proxy_names_the_client(settings, proxies, forwarded, client):
    settings.TRUSTED_PROXIES = proxies
    assert client_ip(request(peer="10.0.0.1", forwarded=forwarded)) == client


def test_no_peer_is_no_address(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    req = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="1.2.3.4")
    del req.META["REMOTE_ADDR"]
    assert client_ip(req) is None


@pytest.mark.parametrize(
    "env,message",
    [
        ({"TRUSTED_PROXIES": "10.0.0.1,proxy.local"}, "TRUSTED_PROXIES: 'proxy.local'"),
        ({"LOGIN_LOCKOUT_FAILURES": "0"}, "LOGIN_LOCKOUT_FAILURES"),
        ({"LOGIN_LOCKOUT_MINUTES": "soon"}, "LOGIN_LOCKOUT_MINUTES"),
    ],
)
def test_bad_login_protection_settings_stop_start_up(env, message):
    proc = subprocess.run(
        [sys.executable, "-c", "import gridgov.settings"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "ImproperlyConfigured" in proc.stderr and message in proc.stderr


def test_good_login_protection_settings():
    code = "import gridgov.settings as s; print(s.TRUSTED_PROXIES, s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME)"
    env = {
        **os.environ,
        "TRUSTED_PROXIES": " 10.0.0.1 , 172.16.0.0/12,",
        "LOGIN_LOCKOUT_FAILURES": "5",
        "LOGIN_LOCKOUT_MINUTES": "0",
    }
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.split("\n")[-2] == "['10.0.0.1', '172.16.0.0/12'] 5 None", proc.stderr
