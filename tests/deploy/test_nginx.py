"""deploy/nginx.conf for real: nginx in front of a real Daphne on the test database. Evidence
reaches the phone through Django's check and nginx's internal location (the bytes from nginx,
the type and caching from Django), the internal location itself answers 404 to a client, an
outsider gets 404, and a WebSocket opens through the proxy."""

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from knox.models import AuthToken
from websockets.asyncio.client import connect

from gridgov.appeals.models import Attachment
from gridgov.whistles.models import MusterEvidence
from tests.mobile_api import fieldwork
from tests.mobile_api.fieldwork import photo_bytes, task_url, token_client, upload
from tests.realtime.daphne import ROOT, database_url, free_port, server_command, stop, wait_for_port
from tests.test_files import PDF, muster_evidence  # noqa: F401 — a fixture

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
_field_settings, people, appeals = fieldwork._field_settings, fieldwork.people, fieldwork.appeals
pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (apt-get install nginx-light)"),
]


def site_conf(daphne_port, nginx_port, media_root):
    """deploy/nginx.conf with only the addresses changed: the compose service names and volume
    become this machine's ports and the test's MEDIA_ROOT."""
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for old, new in (
        ("server web:8000;", f"server 127.0.0.1:{daphne_port};"),
        ("listen 80;", f"listen 127.0.0.1:{nginx_port};"),
        ("alias /data/media/;", f"alias {media_root}/;"),
    ):
        assert old in conf, old
        conf = conf.replace(old, new)
    return conf


def nginx(workdir, site):
    (workdir / "site.conf").write_text(site)
    temp = "\n".join(f"    {d}_temp_path {workdir}/{d};" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (workdir / "nginx.conf").write_text(
        f"daemon off;\nuser root;\nworker_processes 1;\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log;\n"
        f"events {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n{temp}\n    include {workdir}/site.conf;\n}}\n"
    )
    return subprocess.Popen(
        [NGINX, "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def get(port, path, token=None, **headers):
    if token:
        headers["Authorization"] = f"Token {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


async def ws_hello(port, token):
    async with connect(
        f"ws://127.0.0.1:{port}/ws/v1/events/",
        subprotocols=["gridgov.v1", f"token.{token}"],
        ping_interval=None,
        proxy=None,
        open_timeout=20,
    ) as conn:
        return json.loads(await asyncio.wait_for(conn.recv(), 20))


def test_evidence_and_websocket_through_nginx(appeals, people, settings, muster_evidence):  # noqa: F811
    a, w = appeals["A"], token_client(people["worker1"])
    assert w.post(task_url(a, "accept"), {}, format="json").status_code == 200
    assert w.post(task_url(a, "check-in"), {"lng": 116.405, "lat": 39.9105}, format="json").status_code == 200
    photo = photo_bytes(size=(800, 600), seed=3)
    ev = w.post(task_url(a, "evidence"), {"file": upload(photo), "purpose": "after"}, format="multipart").json()
    att = Attachment.objects.get(pk=ev["evidence"]["id"])
    with att.file.open("rb") as f:
        stored = f.read()
    # A muster file keeps the name it was uploaded with: Chinese, with a space.
    named = MusterEvidence(
        muster=muster_evidence["evidence"].muster,
        name="处置 报告.pdf",
        content_type="application/pdf",
        size=len(PDF),
        sha256="b" * 64,
    )
    named.file.save("处置 报告.pdf", ContentFile(PDF), save=True)
    _, water_token = AuthToken.objects.create(user=muster_evidence["water"])
    _, worker_token = AuthToken.objects.create(user=people["worker1"])
    _, outsider_token = AuthToken.objects.create(user=people["worker3"])

    workdir = Path(tempfile.mkdtemp(prefix="gridgov-nginx-"))
    daphne_port, nginx_port = free_port(), free_port()
    env = {
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "gridgov.settings",
        "PYTHONPATH": str(ROOT),
        "DJANGO_DEBUG": "1",
        "LOG_LEVEL": "WARNING",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "MEDIA_ACCEL_REDIRECT_PREFIX": "/_protected_media/",
        "DJANGO_TRUST_X_FORWARDED_PROTO": "1",
    }
    with open(workdir / "daphne.log", "w") as log:
        web = subprocess.Popen(
            server_command(daphne_port),
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proxy = None
        try:
            assert wait_for_port(daphne_port, web), (workdir / "daphne.log").read_text()[-2000:]
            proxy = nginx(workdir, site_conf(daphne_port, nginx_port, settings.MEDIA_ROOT))
            assert wait_for_port(nginx_port, proxy), (workdir / "error.log").read_text()[-2000:]

            status, headers, body = get(nginx_port, ev["evidence"]["url"], worker_token)
            assert status == 200, (body[:300], (workdir / "error.log").read_text()[-2000:])
            assert body == stored and headers["Content-Type"] == "image/jpeg"
            assert headers["X-Content-Type-Options"] == "nosniff" and "private" in headers["Cache-Control"]
            assert "X-Accel-Redirect" not in headers
            status, headers, body = get(nginx_port, ev["evidence"]["thumbnail_url"], worker_token)
            assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"

            assert get(nginx_port, ev["evidence"]["url"], outsider_token)[0] == 404
            assert get(nginx_port, ev["evidence"]["url"])[0] == 401
            assert get(nginx_port, f"/_protected_media/{att.file.name}", worker_token)[0] == 404
            assert get(nginx_port, f"/media/{att.file.name}", worker_token)[0] == 404

            status, headers, body = get(nginx_port, f"/media/muster-evidence/{named.pk}", water_token)
            assert status == 200 and body == PDF and headers["Content-Type"] == "application/pdf", (status, body[:200])
            assert get(nginx_port, f"/media/muster-evidence/{named.pk}", outsider_token)[0] == 404

            hello = asyncio.run(ws_hello(nginx_port, worker_token))
            assert hello["type"] == "hello", hello
            # Django sees the host with its port, and the proxy's scheme whatever the client claims
            # (plain HTTP here, so the page's WebSocket is ws:// on this very port).
            status, headers, _ = get(nginx_port, "/healthz", **{"X-Forwarded-Proto": "https"})
            assert status == 200
            assert f"ws://127.0.0.1:{nginx_port} " in headers["Content-Security-Policy"]
        finally:
            if proxy is not None:
                stop(proxy)
            stop(web)
            shutil.rmtree(workdir, ignore_errors=True)
