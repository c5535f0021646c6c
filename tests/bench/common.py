"""Shared set-up for benchmarks: a separate database (gridgov_bench) so a 10,000-grid city
never disturbs the demo city, and small timing helpers. Benchmarks print; they do not assert."""

import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BENCH_DB = os.environ.get("GRIDGOV_BENCH_DB", "gridgov_bench")


def setup_django(database=BENCH_DB):
    """Point DATABASE_URL at the bench database (created from template1, so with PostGIS),
    migrate it, and set Django up."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    base, _, _ = url.rpartition("/")
    admin = base.replace("postgis://", "postgresql://", 1) + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            conn.execute(f'CREATE DATABASE "{database}" TEMPLATE template1')
    os.environ["DATABASE_URL"] = f"{base}/{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridgov.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


@contextmanager
def timed(label, n=None, unit="items"):
    t0 = time.perf_counter()
    box = {}
    yield box
    dt = time.perf_counter() - t0
    box["seconds"] = dt
    rate = f"  {n / dt:,.0f} {unit}/s" if n else ""
    print(f"  {label:<58} {dt:8.3f} s{rate}", flush=True)


def percentiles(samples_s):
    ms = sorted(x * 1000 for x in samples_s)
    q = statistics.quantiles(ms, n=100)
    return {"p50": statistics.median(ms), "p90": q[89], "p99": q[98], "max": ms[-1]}


def header(title):
    print(f"\n=== {title} ===", flush=True)
