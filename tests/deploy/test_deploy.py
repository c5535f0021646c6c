"""The deployment files and the settings' refusal of bad values."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_compose_file_validates():
    env = {**os.environ, "DJANGO_SECRET_KEY": "x", "POSTGRES_PASSWORD": "y"}
    r = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        cwd="/tmp",
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
        env=env,
        capture_output=True,
        text=True,
        cwd="/tmp",
    )
    assert set(r.stdout.split()) == {"postgis", "redis", "web", "proxy", "worker", "beat"}
    # without the secrets it refuses to start rather than run with defaults
    bare = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD")}
    r = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env=bare,
        capture_output=True,
        text=True,
        cwd="/tmp",
    )
    assert r.returncode != 0 and "POSTGRES_PASSWORD" in r.stderr + r.stdout


def run_settings(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "DJANGO_SECRET_KEY")}
    base.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=base, cwd=ROOT, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "sqlite:///x.db"}, "postgis"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"DJANGO_DEBUG": "0"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "1", "LOCATE_GAP_TOLERANCE_M": "-5"}, "LOCATE_GAP_TOLERANCE_M"),
        ({"DJANGO_DEBUG": "1", "CHANNEL_CAPACITY": "lots"}, "CHANNEL_CAPACITY"),
        ({"DJANGO_DEBUG": "1", "REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"DJANGO_DEBUG": "1", "CHANNEL_LAYER": "kafka"}, "CHANNEL_LAYER"),
        ({"DJANGO_DEBUG": "1", "REQUEST_LINE_MAX_BYTES": "100000"}, "REQUEST_LINE_MAX_BYTES"),
        ({"DJANGO_DEBUG": "1", "REQUEST_LINE_MAX_BYTES": "10"}, "REQUEST_LINE_MAX_BYTES"),
    ],
)
def test_bad_settings_fail_loudly(env, needle):
    r = run_settings(**env)
    assert r.returncode != 0 and needle in r.stderr, r.stderr[-500:]


def test_good_settings_start():
    r = run_settings(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="s" * 50)
    assert r.returncode == 0, r.stderr[-500:]


def test_channel_layer_never_times_out_idle_consumers():
    from django.conf import settings

    from gridgov.settings import channel_layers

    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["socket_timeout"] is None
    core = channel_layers("redis")["default"]["CONFIG"]
    assert core["hosts"][0]["socket_timeout"] is None and core["capacity"] > 100


def test_asgi_server_defaults_to_pubsub_and_keeps_start_up_objects_out_of_the_gc():
    env = {k: v for k, v in os.environ.items() if k not in ("CHANNEL_LAYER",)}
    code = (
        "import gc, gridgov.asgi; from django.conf import settings; "
        "print(settings.CHANNEL_LAYERS['default']['BACKEND'], gc.get_freeze_count(), gc.get_threshold()[0])"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env={**env, "DJANGO_DEBUG": "1"}, cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-500:]
    backend, frozen, threshold = r.stdout.split()
    assert backend == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert int(frozen) > 10_000 and int(threshold) >= 10_000
