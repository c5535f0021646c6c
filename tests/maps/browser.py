"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright without its own browser
download) against a real Daphne of gridgov.asgi on the test database, on a port in 19000–19999.
Every page records its requests, console errors and uncaught exceptions."""

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from tests.realtime.daphne import DAPHNE, ROOT, database_url, free_port, server_command, stop, wait_for_port

CHROMIUM = os.environ.get("GRIDGOV_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "tests" / "screenshots"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def unavailable():
    """Why browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    if not DAPHNE.exists():
        return f"{DAPHNE} is not installed"
    return None


@contextmanager
def daphne(env):
    port = free_port(19000, 19999)
    log_path = Path(tempfile.gettempdir()) / f"gridgov-maps-daphne-{port}.log"
    base_env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "gridgov.settings",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    with open(log_path, "w") as log:
        proc = subprocess.Popen(server_command(port), cwd=ROOT, env=base_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            if not wait_for_port(port, proc):
                log.flush()
                raise RuntimeError(f"daphne on port {port} did not start:\n{log_path.read_text()[-3000:]}")
            yield f"http://127.0.0.1:{port}", log_path
        finally:
            stop(proc)


@contextmanager
def chromium():
    """A Playwright persistent context on a temporary profile; removed afterwards."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="gridgov-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=LAUNCH_ARGS,
                locale="zh-CN",
                timezone_id="Asia/Shanghai",
                viewport={"width": 1280, "height": 800},
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Recorder:
    """What one page did: every request URL, console errors, page errors, API bodies."""

    def __init__(self, page, base):
        self.page, self.base = page, base
        self.requests, self.errors, self.bodies, self.sockets = [], [], {}, []
        page.on("request", lambda req: self.requests.append(req.url))
        page.on("websocket", lambda ws: self.sockets.append(ws.url))
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _failed(self, req):
        # A page navigating away aborts its pending fetches: not an error of the page.
        if "ERR_ABORTED" not in (req.failure or ""):
            self.errors.append(f"requestfailed: {req.url} {req.failure}")

    def _response(self, resp):
        if resp.status >= 400:
            self.errors.append(f"http {resp.status}: {resp.url}")
        if "/maps/api/" in resp.url or "/maps/tiles/" in resp.url or "/api/v1/" in resp.url:
            try:
                self.bodies[resp.url] = resp.body()
            except Exception:  # noqa: BLE001 — a body not kept (redirect, aborted) is not what we test
                pass

    def foreign(self):
        """Requests (and WebSockets) to anything but the test server."""
        own = urlsplit(self.base).netloc
        urls = [*self.requests, *self.sockets]
        return [u for u in urls if urlsplit(u).scheme not in ("data", "blob", "about") and urlsplit(u).netloc != own]


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
