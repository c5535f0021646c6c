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


def ensure_city(grids=10_000, seed=7, *, places=False):
    """The `grids`-grid demo city (no users), loaded once per bench database; with `places`,
    also its named places (小区, roads, POIs: what the geocoder knows). Returns the number of
    current grids."""
    from gridgov.areas.models import Grid

    if Grid.objects.current().count() < grids:
        from fixtures.democity import load_city

        with timed(f"generate + load a {grids:,}-grid city"):
            load_city(grids=grids, seed=seed, users=False)
    if places:
        from fixtures.demohistory import load_places

        with timed("demo places for the geocoder (once)"):
            load_places(seed=seed)
    return Grid.objects.current().count()


HISTORY_COLUMNS = (
    "id",
    "ticket_no",
    "source_system",
    "external_id",
    "channel",
    "kind",
    "text",
    "address_text",
    "appellant_name",
    "appellant_phone",
    "received_at",
    "position",
    "position_input",
    "grid_code",
    "grid_id",
    "location",
    "category_id",
    "classification",
    "time_limit",
    "risk",
    "duplicates",
    "route",
    "department_id",
    "deadline",
    "warning_colour",
    "state",
    "closure_type",
    "created_at",
    "updated_at",
)
_LIMITS = {"2h": 2, "24h": 24, "7d": 7 * 24, "15d": 15 * 24}


def ensure_history(n, *, days=90, seed=7, repeat_share=0.1, unlocated_share=0.03):
    """At least `n` appeals received in the last `days` days, as the intake pipeline meets them:
    texts, places, positions (located on the grids), categories and channels from the demo
    history's generator (fixtures.demohistory.AppealMaker), received by the hour of the day's
    call curve, a share of repeats (same place and category a little later, in other words:
    the duplicate search's work), the recent ones open and the older ones closed. Rows are
    written with COPY; those already there count. Events and assignments are not written
    (nothing in intake reads them). Returns the count in the window."""
    import json
    import math
    import random
    from datetime import timedelta

    import numpy as np
    from django.db import connection, transaction
    from django.utils import timezone

    from fixtures.demohistory import HOUR_WEIGHTS, SHANGHAI, AppealMaker, _City
    from gridgov.appeals.models import Category
    from gridgov.areas.locate import locate_many

    now = timezone.now()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM appeals_appeal WHERE received_at >= %s", [now - timedelta(days=days)])
        (have,) = cur.fetchone()
        cur.execute("SELECT coalesce(max(id), 0) FROM appeals_appeal")
        (max_id,) = cur.fetchone()
    if have >= n:
        print(f"  appeals received in the last {days} days: {have:,} (>= {n:,})", flush=True)
        return have
    add = n - have
    cats = list(Category.objects.filter(level=3, is_active=True).order_by("code"))
    by_code = {c.code: c for c in cats}
    maker = AppealMaker(_City.from_db(), cats, seed=seed + have)
    rng = np.random.default_rng([seed, have])
    r = random.Random(seed + have)
    today = now.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    hour_p = np.array(HOUR_WEIGHTS) / sum(HOUR_WEIGHTS)
    offsets = rng.integers(0, days, add) * -86400.0 + rng.choice(24, add, p=hour_p) * 3600.0 + rng.uniform(0, 3600, add)
    offsets = offsets[offsets <= (now - today).total_seconds()]
    # Today's hours still to come: drawn again from the past.
    offsets = np.sort(np.append(offsets, -rng.uniform(0, days * 86400, add - len(offsets))))
    recent = []

    def plan(at):
        if recent and r.random() < repeat_share:
            prev = r.choice(recent)
            return maker.make(at, code=prev["category_code"], place=prev["_place"], grid_code=prev["_grid"])
        data = maker.make(at)
        recent.append(data)
        if len(recent) > 300:
            recent.pop(0)
        return data

    def row(pk, data, chain):
        at = data["received_at"]
        cat = by_code[data["category_code"]]
        if r.random() < unlocated_share:
            chain = None
        lng, lat = data["_true"]
        limit = cat.time_limit or "7d"
        deadline = at + timedelta(hours=_LIMITS[limit])
        age_days = (now - at).total_seconds() / 86400
        is_open = chain is None or r.random() < math.exp(-max(0.0, age_days - 1) / 4)
        state = (
            "unlocated"
            if chain is None
            else r.choice(("dispatched", "accepted", "in_progress", "in_progress"))
            if is_open
            else "closed"
        )
        method = "geocode" if data["_address_only"] else "position"
        return (
            pk,
            f"BH{pk:012d}",
            "bench-history",
            f"bh-{pk}",
            data["channel"],
            data["kind"],
            data["text"],
            data["address_text"],
            data["appellant_name"],
            data["appellant_phone"],
            at,
            None if chain is None else f"SRID=4326;POINT({lng:.7f} {lat:.7f})",
            "{}" if method == "geocode" else json.dumps({"lng": lng, "lat": lat, "crs": "wgs84"}),
            "" if chain is None else chain.grid_code,
            None if chain is None else chain.grid_id,
            json.dumps({"method": method, "confidence": 1.0 if chain else 0.0}),
            cat.pk,
            json.dumps({"guesses": [], "confirmed_by": "operator"}),
            limit,
            "{}",
            "[]",
            "{}" if chain is None else json.dumps({"lead": "default"}),
            None if chain is None else cat.default_department_id,
            None if chain is None else deadline,
            "red" if is_open and chain is not None and now > deadline else "none",
            state,
            "substantive" if state == "closed" else "",
            at,
            at,
        )

    chunk = 50_000
    with timed(f"generate + COPY {add:,} appeals of history ({have:,} there already)", add, "rows"):
        for start in range(0, add, chunk):
            planned = [plan(today + timedelta(seconds=off)) for off in offsets[start : start + chunk].tolist()]
            chains = locate_many([d["_true"] for d in planned])
            with transaction.atomic(), connection.cursor() as cur:
                with cur.copy(f"COPY appeals_appeal ({', '.join(HISTORY_COLUMNS)}) FROM STDIN") as copy:
                    for i, (data, chain) in enumerate(zip(planned, chains, strict=True)):
                        copy.write_row(row(max_id + 1 + start + i, data, chain))
            print(f"    {have + start + len(planned):,} rows", flush=True)
        with connection.cursor() as cur:
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('appeals_appeal', 'id'), (SELECT max(id) FROM appeals_appeal))"
            )
    with timed("ANALYZE appeals_appeal"), connection.cursor() as cur:
        cur.execute("ANALYZE appeals_appeal")
    return have + add
