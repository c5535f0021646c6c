"""Real Daphne processes for tests and benchmarks: start on a free port in 18000–18999, wait
until it answers, always stop. They run as deployed: `python -m gridgov.serve` (Daphne with the
platform's answers to oversized requests)."""

import os
import random
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
DAPHNE = Path(sys.executable).with_name("daphne")


def server_command(port, *args):
    """The server as deployed (scripts/run.sh, Dockerfile): Daphne through gridgov.serve."""
    return [
        sys.executable,
        "-m",
        "gridgov.serve",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        *args,
        "gridgov.asgi:application",
    ]


class DaphneUnavailable(Exception):
    pass


def free_port(lo=18000, hi=18999):
    for port in random.sample(range(lo, hi + 1), hi - lo + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise DaphneUnavailable("no free port in 18000–18999")


def database_url():
    """DATABASE_URL naming the database this process uses now (the test database in tests)."""
    base, _, _ = settings.DATABASE_URL.rpartition("/")
    return f"{base}/{connection.settings_dict['NAME']}"


def wait_for_port(port, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def stop(proc, log=None):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if log is not None:
        log.close()


@contextmanager
def daphne_servers(n, env=None, log_dir="/tmp", args=(), pids=None):
    """Start n Daphne processes of gridgov.asgi:application; yields their ports. `env` is added
    to this process's environment (DATABASE_URL defaults to the database in use now); a `pids`
    list gets their process ids."""
    if not DAPHNE.exists():
        raise DaphneUnavailable(f"{DAPHNE} is not installed")
    base_env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "gridgov.settings",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        **(env or {}),
    }
    procs = []
    try:
        for _ in range(n):
            port = free_port()
            log_path = Path(log_dir) / f"gridgov-daphne-{port}.log"
            log = open(log_path, "w")  # noqa: SIM115 — closed in stop()
            proc = subprocess.Popen(
                server_command(port, *args), cwd=ROOT, env=base_env, stdout=log, stderr=subprocess.STDOUT
            )
            procs.append((proc, log, port, log_path))
            if pids is not None:
                pids.append(proc.pid)
            if not wait_for_port(port, proc):
                log.flush()
                raise RuntimeError(f"daphne on port {port} did not start:\n{log_path.read_text()[-3000:]}")
        yield [port for _, _, port, _ in procs]
    finally:
        for proc, log, _, _ in procs:
            stop(proc, log)
