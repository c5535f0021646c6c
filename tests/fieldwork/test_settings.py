"""One set of field-work settings for tasks and musters: the musters' former names stop start-up
with a message naming the one to set instead (silently ignored, a deployment's 500 m fence
would quietly become 200 m); the new document limit is checked like the others."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_settings(**env):
    base = {**os.environ, "DJANGO_DEBUG": "1", **env}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=base, cwd=ROOT, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "old,new",
    [
        ("WHISTLE_GEOFENCE_M", "GEOFENCE_METRES"),
        ("WHISTLE_GEOFENCE_MODE", "GEOFENCE_MODE"),
        ("WHISTLE_EVIDENCE_MAX_BYTES", "EVIDENCE_MAX_PHOTO_BYTES"),
    ],
)
def test_the_musters_former_names_are_refused_naming_the_new_one(old, new):
    r = run_settings(**{old: "300"})
    assert r.returncode != 0 and old in r.stderr and new in r.stderr, r.stderr[-500:]


def test_the_document_limit_is_checked():
    r = run_settings(EVIDENCE_MAX_DOCUMENT_BYTES="12")
    assert r.returncode != 0 and "EVIDENCE_MAX_DOCUMENT_BYTES" in r.stderr, r.stderr[-500:]
    assert run_settings(EVIDENCE_MAX_DOCUMENT_BYTES="4096").returncode == 0
