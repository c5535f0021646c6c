"""Intake through the whole pipeline (issue #3): a 10,000-grid city with 1,000,000 appeals of
history received over the last 90 days (texts, places, positions, categories; the recent ones
open, so the duplicate search has real work), and new appeals registered through the 12345 REST
API: bulk (POST /api/v1/appeals/bulk, 500 a request, with source_system + external_id as another
system sends them) and single (POST /api/v1/appeals, as an operator's form does).

The HTTP calls go through Django's test client in this process (URL routing, authentication,
DRF validation, appeal_register, the response), so no network or web-server time is in the
figures. Inputs come from the demo history's generator (fixtures.demohistory.AppealMaker): four
in five with a position (app channel in GCJ-02, the others WGS-84), the rest address-only (the
geocoder's path); half with the operator's category, half left to the classifier (a model
trained once on the history, plus the keyword floor); some with real citizen messages from
../shared/data/appeals when that is there. Every step runs: locate, classify, kind and risk,
duplicates, route, clock, with the history row, audit record and outbox events.

The bulk API registers each request's valid items as one batch (gridgov/appeals/intake/batch.py).
Prints bulk throughput (target ≥ 200 appeals/s), single latency p50/p90/p99 (target p99 ≤ 150
ms), queries per appeal, the per-step time of the pipeline's functions on the same inputs, and
what the pipeline decided (states, location methods, duplicates, classifier sources).

    GRIDGOV_BENCH_DB=gridgov_bench_x .venv/bin/python -m tests.bench.bench_intake
"""

import csv
import os
import random
import statistics
import time
from collections import Counter
from pathlib import Path

from tests.bench.common import (
    BENCH_DB,
    SHARED_DATA,
    ensure_city,
    ensure_history,
    header,
    percentiles,
    setup_django,
    timed,
)

GRIDS = int(os.environ.get("BENCH_GRIDS", 10_000))
HISTORY = int(os.environ.get("BENCH_HISTORY", 1_000_000))
BULK = int(os.environ.get("BENCH_BULK", 2_000))
BATCH = int(os.environ.get("BENCH_BATCH", 500))
SINGLE = int(os.environ.get("BENCH_SINGLE", 500))
STEPS = int(os.environ.get("BENCH_STEPS", 200))
REAL_TEXT_SHARE = 0.1
ROOT = Path(__file__).resolve().parents[2]
# The bench trains its own model, beside its own database: never the deployment's file.
MODEL_PATH = ROOT / "var" / "bench" / f"{BENCH_DB}-appeal-classifier.joblib"


def real_texts():
    """Real citizen messages (留言详情), or [] when ../shared/data is not there."""
    path = SHARED_DATA / "appeals" / "labelled_messages_train.csv"
    if not path.exists():
        print(f"  ({path} not there: generated texts only)")
        return []
    with path.open(encoding="utf-8") as f:
        return [" ".join(row["留言详情"].split())[:2000] for row in csv.DictReader(f) if row["留言详情"].strip()]


class Inputs:
    """JSON bodies for the register API, as the hotline's callers and systems send them."""

    def __init__(self, seed):
        from django.utils import timezone

        from fixtures.demohistory import AppealMaker, _City
        from gridgov.appeals.models import Category

        self.now = timezone.now
        self.maker = AppealMaker(_City.from_db(), list(Category.objects.filter(level=3, is_active=True)), seed=seed)
        self.rng = random.Random(seed)
        self.real = real_texts()
        self.run = f"{seed}-{int(time.time())}"
        self.n = 0

    def make(self, external=False):
        data = {k: v for k, v in self.maker.make(self.now()).items() if not k.startswith("_")}
        data.pop("received_at")  # now, on the server
        data.pop("reporter")
        if self.real and self.rng.random() < REAL_TEXT_SHARE:
            data["text"] = self.rng.choice(self.real)
            data.pop("category_code")  # the generated category is not this text's
        elif self.rng.random() < 0.5:
            data.pop("category_code")  # left to the classifier
        if external:
            self.n += 1
            data.update(source_system="bench-intake", external_id=f"{self.run}-{self.n}")
        return data


def history_to_now():
    """Keep the history what the bench means, whenever it runs: appeals received over the 90 days
    up to now, the recent ones open. The history written on an earlier day is moved forward to
    end now, and the appeals earlier runs registered are closed (otherwise each run would add
    thousands of open appeals around 'now' to the duplicate search of the next)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "UPDATE appeals_appeal SET state = 'closed' WHERE source_system <> 'bench-history' AND state <> 'closed'"
        )
        closed = cur.rowcount
        cur.execute("SELECT now() - max(received_at) FROM appeals_appeal WHERE source_system = 'bench-history'")
        (lag,) = cur.fetchone()
        moved = 0
        if lag is not None and lag.total_seconds() > 3600:
            cur.execute(
                "UPDATE appeals_appeal SET received_at = received_at + %s, deadline = deadline + %s "
                "WHERE source_system = 'bench-history'",
                [lag, lag],
            )
            moved = cur.rowcount
            cur.execute("ANALYZE appeals_appeal")
    print(
        f"  earlier runs' appeals closed: {closed:,}; history moved forward by {lag} ({moved:,} rows)"
        if moved
        else f"  earlier runs' appeals closed: {closed:,}",
        flush=True,
    )


def ensure_model():
    from gridgov.appeals.intake.classifier import classifier_retrain, loaded_model

    if loaded_model() is None:
        with timed("train the category model on 10,000 confirmed appeals (once)"):
            summary = classifier_retrain(max_rows=10_000, holdout=0, actor="bench")
        print(f"    {summary['rows']:,} rows, {summary['classes']} classes, {summary['bytes']:,} bytes", flush=True)
    model = loaded_model()
    print(f"  category model: {model.meta.get('rows', 0):,} rows, {model.meta.get('classes')} classes", flush=True)


def operator():
    from gridgov.accounts.models import Role, User

    user, _ = User.objects.get_or_create(username="bench-operator", defaults={"role": Role.OPERATOR})
    return user


def bench_bulk(client, inputs):
    # A running server has its place index, model and caches warm: one small request first,
    # timed apart, warms what this process has not loaded yet (the grid index is already built
    # by ensure_history).
    warm = [inputs.make(external=True) for _ in range(50)]
    t0 = time.perf_counter()
    r = client.post("/api/v1/appeals/bulk", warm, content_type="application/json")
    assert r.status_code == 200, r.content[:300]
    print(f"  {'bulk API: a first request of 50 appeals, timed apart':<58} {time.perf_counter() - t0:8.3f} s")
    bodies = [[inputs.make(external=True) for _ in range(BATCH)] for _ in range(max(1, BULK // BATCH))]
    n = sum(len(b) for b in bodies)
    counts = Counter()
    tickets = []
    t0 = time.perf_counter()
    each = []
    for body in bodies:
        t1 = time.perf_counter()
        r = client.post("/api/v1/appeals/bulk", body, content_type="application/json")
        each.append(len(body) / (time.perf_counter() - t1))
        assert r.status_code == 200, r.content[:300]
        out = r.json()
        counts.update(created=out["created"], existing=out["existing"], failed=out["failed"])
        tickets += [x["ticket_no"] for x in out["results"] if "ticket_no" in x]
    dt = time.perf_counter() - t0
    print(
        f"  {f'bulk API: {len(bodies)} requests x {BATCH} appeals':<58} {dt:8.3f} s  {n / dt:,.1f} appeals/s"
        f"  (target ≥ 200)",
        flush=True,
    )
    print(
        f"    created {counts['created']:,}, existing {counts['existing']:,}, failed {counts['failed']:,}; "
        f"each request: {', '.join(f'{x:,.0f}' for x in each)} appeals/s"
    )
    return tickets


IMPORT_ROWS = int(os.environ.get("BENCH_IMPORT", 2_000))


def bench_import(inputs):
    """`manage.py import_appeals` on a 12345 export as the platform writes it (Chinese headers,
    UTF-8 CSV): every row checked, the good ones registered 500 at a time."""
    import tempfile

    from django.core.management import call_command
    from django.utils import timezone

    columns = {
        "external_id": "工单编号",
        "received_at": "来电时间",
        "text": "诉求内容",
        "address_text": "地址",
        "lng": "经度",
        "lat": "纬度",
        "crs": "坐标系",
        "appellant_name": "来电人",
        "appellant_phone": "联系电话",
        "category_code": "分类编码",
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(columns.values())
            for _ in range(IMPORT_ROWS):
                d = inputs.make(external=True)
                d["received_at"] = f"{timezone.localtime(inputs.now()):%Y-%m-%d %H:%M:%S}"
                w.writerow([d.get(k, "") for k in columns])
        t0 = time.perf_counter()
        call_command(
            "import_appeals",
            str(path),
            "--source-system",
            "bench-import",
            verbosity=0,
            report=str(Path(tmp) / "report.csv"),
        )
        dt = time.perf_counter() - t0
    print(
        f"  {f'import_appeals: a {IMPORT_ROWS:,}-row CSV export':<58} {dt:8.3f} s  {IMPORT_ROWS / dt:,.1f} rows/s",
        flush=True,
    )


def bench_single(client, inputs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    bodies = [inputs.make() for _ in range(SINGLE)]
    samples, tickets = [], []
    for body in bodies:
        t0 = time.perf_counter()
        r = client.post("/api/v1/appeals", body, content_type="application/json")
        samples.append(time.perf_counter() - t0)
        assert r.status_code == 201, r.content[:300]
        tickets.append(r.json()["ticket_no"])
    p = percentiles(samples)
    print(
        f"  {f'single API POST /api/v1/appeals ({SINGLE:,} in turn)':<58} p50 {p['p50']:.1f} ms  p90 {p['p90']:.1f} ms"
        f"  p99 {p['p99']:.1f} ms  max {p['max']:.1f} ms  (target p99 ≤ 150 ms)",
        flush=True,
    )
    print(f"    that is {SINGLE / sum(samples):,.1f} appeals/s one at a time")
    queries = []
    for _ in range(20):
        with CaptureQueriesContext(connection) as ctx:
            client.post("/api/v1/appeals", inputs.make(), content_type="application/json")
        queries.append(len(ctx.captured_queries))
    print(
        f"    SQL statements per single registration: median {statistics.median(queries):.0f}, "
        f"max {max(queries)} (20 appeals)"
    )
    return tickets


def outcomes(tickets):
    from gridgov.appeals.models import Appeal

    rows = list(
        Appeal.objects.filter(ticket_no__in=tickets).values_list(
            "state", "location", "classification", "duplicates", "route", "position_input"
        )
    )
    n = max(len(rows), 1)
    states = Counter(r[0] for r in rows)
    methods = Counter(r[1].get("method") for r in rows)
    crs = Counter(r[5].get("crs", "address only") for r in rows)
    sources = Counter(
        (r[2].get("guesses") or [{}])[0].get("source", "none") if not r[2].get("confirmed_by") else "operator"
        for r in rows
    )
    dup = sum(1 for r in rows if r[3])
    double = sum(1 for r in rows if r[4].get("double_dispatch"))
    print(f"  what the pipeline decided for these {len(rows):,} appeals:")
    print(f"    states: {dict(states.most_common())}")
    print(f"    input: {dict(crs.most_common())}; located by: {dict(methods.most_common())}")
    print(f"    category from: {dict(sources.most_common())}")
    print(f"    with suspected duplicates: {dup:,} ({dup / n:.1%}); double dispatch: {double:,} ({double / n:.1%})")


def bench_steps(inputs, tickets):
    """The pipeline's functions alone, on fresh inputs and on appeals just registered."""
    from django.utils import timezone

    from gridgov.appeals.intake import pipeline
    from gridgov.appeals.intake.batch import default_geocoder
    from gridgov.appeals.intake.duplicates import DuplicateParams, find_duplicates
    from gridgov.appeals.models import Appeal
    from gridgov.appeals.services import appeal_register

    geocoder = default_geocoder()
    bodies = [inputs.make() for _ in range(STEPS)]
    appeals = list(Appeal.objects.filter(ticket_no__in=tickets[-STEPS:], grid_code__gt="").select_related("category"))
    times = {}

    def clock(name, fn, items):
        out = []
        samples = []
        for item in items:
            t0 = time.perf_counter()
            out.append(fn(item))
            samples.append(time.perf_counter() - t0)
        times[name] = samples
        return out

    clock(
        "locate: position (WGS-84 / GCJ-02)",
        lambda b: pipeline.locate_step(lng=b["lng"], lat=b["lat"], crs=b["crs"]),
        [b for b in bodies if "lng" in b],
    )
    clock(
        "locate: address only (geocoder)",
        lambda b: pipeline.locate_step(address_text=b["address_text"], geocoder=geocoder),
        [b for b in bodies if "lng" not in b],
    )
    clock("classify (model + keywords)", lambda b: pipeline.classify_step(b["text"]), bodies)
    clock("kind + risk rules", lambda b: (pipeline.kind_step(b["text"]), pipeline.risk_step(b["text"])), bodies)
    params = DuplicateParams()
    cands = clock(
        "duplicates: candidate query (open, 72 h, box)", lambda a: pipeline.duplicate_candidates(a, params), appeals
    )
    clock(
        "duplicates: compare texts (find_duplicates)",
        lambda ac: find_duplicates(pipeline.sketch(ac[0]), [pipeline.sketch(c) for c in ac[1]], params=params),
        list(zip(appeals, cands, strict=True)),
    )
    now = timezone.now()
    clock(
        "route (responsibility rules)",
        lambda a: pipeline.route_step(a.category, a.grid_code, a.received_at, a.risk.get("flags", [])),
        [a for a in appeals if a.category_id],
    )
    clock(
        "clock (deadline, colour)",
        lambda a: pipeline.clock_step(a.received_at, a.time_limit, now),
        [a for a in appeals if a.time_limit],
    )
    user = operator()
    clock(
        "appeal_register() whole service, no HTTP",
        lambda b: appeal_register(data={**b, "received_at": timezone.now()}, actor=user),
        bodies,
    )
    print(
        f"  per step ({STEPS} inputs; candidates per appeal: median "
        f"{statistics.median([len(c) for c in cands] or [0]):.0f}, max {max([len(c) for c in cands] or [0])}):"
    )
    print(f"    {'step':<48} {'n':>5} {'mean ms':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, samples in times.items():
        if len(samples) < 2:
            continue
        p = percentiles(samples)
        print(
            f"    {name:<48} {len(samples):>5} {statistics.mean(samples) * 1000:>8.2f} {p['p50']:>8.2f}"
            f" {p['p99']:>8.2f}",
            flush=True,
        )


def main():
    os.environ.setdefault("CLASSIFIER_MODEL_PATH", str(MODEL_PATH))
    MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
    setup_django()
    from django.conf import settings
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    header(f"intake: {GRIDS:,} grids, {HISTORY:,} appeals of history, REST API in-process (Django test client)")
    print(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other work slows every figure)")
    print(f"  grids in the city: {ensure_city(GRIDS, places=True):,}", flush=True)
    ensure_history(HISTORY, days=90)
    history_to_now()
    ensure_model()
    client = Client()
    client.force_login(operator())
    inputs = Inputs(seed=int(os.environ.get("BENCH_SEED", random.randrange(10**6))))
    for _ in range(20):  # warm: caches, the grid and place indexes, the model
        client.post("/api/v1/appeals", inputs.make(), content_type="application/json")
    bulk_tickets = bench_bulk(client, inputs)
    bench_import(inputs)
    single_tickets = bench_single(client, inputs)
    outcomes(bulk_tickets + single_tickets)
    bench_steps(inputs, single_tickets)


if __name__ == "__main__":
    main()
