"""Celery actually runs: a real worker process sweeps the committed test database.

The worker gets a Redis database and a queue of its own (other engineers' workers share this
Redis) and a DATABASE_URL naming the test database; the data is committed (transactional_db) so
that its connections see it.
"""

import os
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from gridgov.appeals.models import Appeal
from gridgov.appeals.tasks import sweep_warning_colours
from gridgov.celery import app

from .timeline import register, tiers  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]
CELERY = ROOT / ".venv" / "bin" / "celery"
BROKER_DB = 9

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _reset_producer():
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.__dict__.pop("amqp", None)  # cached queues, router and producer pool


@contextmanager
def broker(url, queue):
    """This process's Celery app sends to `url` and `queue` inside the block, as before after it."""
    old = app.conf.broker_url, app.conf.task_default_queue
    _reset_producer()
    app.conf.broker_url, app.conf.task_default_queue = url, queue
    try:
        yield
    finally:
        _reset_producer()
        app.conf.broker_url, app.conf.task_default_queue = old


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_a_real_worker_sweeps_the_colours(city, tiers, make_user, settings, tmp_path):  # noqa: F811
    # This process announces changes after commit: keep those in memory, away from shared Redis.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    received = timezone.now() - timedelta(minutes=100)  # 100 of 120 minutes: orange
    appeal = register(make_user("operator"), "2h", received)  # dispatched at receipt: no colour yet
    assert appeal.warning_colour == "none" and appeal.next_colour_at < timezone.now()

    tag = f"gridgov-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    broker_url = urlparse(django_settings.REDIS_URL)._replace(path=f"/{BROKER_DB}").geturl()
    database_url = urlparse(os.environ["DATABASE_URL"])._replace(path=f"/{connection.settings_dict['NAME']}").geturl()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": broker_url,
        "CHANNEL_PREFIX": tag,
        "DJANGO_DEBUG": "1",
    }
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [
                str(CELERY),
                "-A",
                "gridgov",
                "worker",
                "--pool",
                "solo",
                "-l",
                "warning",
                "-Q",
                tag,
                "-n",
                f"{tag}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with broker(broker_url, tag):
            _wait(
                lambda: (
                    worker.poll() is not None
                    or app.control.ping(destination=[f"{tag}@{socket.gethostname()}"], timeout=0.5)
                ),
                60,
                "the worker to start",
            )
            assert worker.poll() is None, log.read_text()
            sweep_warning_colours.delay()
            _wait(lambda: Appeal.objects.get(pk=appeal.pk).warning_colour != "none", 60, "the sweep")
        appeal.refresh_from_db()
        assert appeal.warning_colour == "orange"
        assert appeal.next_colour_at == received + timedelta(hours=2)
        assert appeal.events.filter(event="colour_orange").count() == 1
    except AssertionError:
        print(log.read_text())
        raise
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        client = redis.Redis.from_url(broker_url)
        keys = list(client.scan_iter(match=f"*{tag}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
