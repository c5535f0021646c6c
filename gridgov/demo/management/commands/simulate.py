"""A live demo: new appeals through the real intake pipeline, and units working on open ones.

    python manage.py simulate --rate 2 [--duration 60] [--workers] [--seed 1]

Every appeal goes through appeal_register (locate or geocode, classify, duplicates, route,
clock), with texts and places from fixtures/demohistory.py; half of them come with the
operator's category, half are left to the classifier. With --workers the units act too:
accept, start and resolve through the services with a user of the appeal's unit as actor,
and the hotline centre closes resolved appeals after the callback. One line per action;
Ctrl-C (or --duration) stops it with a summary.
"""

import random
import time
from collections import Counter
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError
from django.utils import timezone

from fixtures.demohistory import AppealMaker, _City
from gridgov.appeals import services
from gridgov.appeals.models import Appeal, Category
from gridgov.appeals.services import AppealError
from gridgov.appeals.workflow import IllegalTransition, State

ACTIONS = {
    State.DISPATCHED: ("accept", "签收"),
    State.ACCEPTED: ("start", "开始办理"),
    State.IN_PROGRESS: ("resolve", "办结"),
    State.RESOLVED: ("close", "回访结案"),
}
NOTES = ("已到现场处置，问题已解决。", "已协调责任单位整改到位。", "已电话答复来电人。")


class Command(BaseCommand):
    help = "模拟实时诉求和承办单位办理 / feed appeals through the real pipeline and act as the units"

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=2.0, help="new appeals per second (default 2)")
        parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
        parser.add_argument(
            "--workers",
            action="store_true",
            help="also act as the units: accept, start, resolve and close open appeals",
        )
        parser.add_argument(
            "--actions", type=float, default=1.0, help="unit actions per new appeal with --workers (default 1)"
        )
        parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one each run)")

    def handle(self, *args, rate, duration, workers, actions, seed, **options):
        if rate <= 0:
            raise CommandError("--rate must be positive")
        seed = seed if seed is not None else random.randrange(10**6)
        try:
            city = _City.from_db()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        categories = list(Category.objects.filter(level=3, is_active=True).order_by("code"))
        if not categories:
            raise CommandError("no categories: load the demo city first (manage.py load_demo_city)")
        users = _Users()
        maker = AppealMaker(city, categories, seed=seed, grid_workers=users.grid_workers)
        rng = random.Random(seed)
        counts: Counter[str] = Counter()
        start = time.monotonic()
        self.stdout.write(
            f"模拟开始 / simulating {rate:g} appeals/s, seed {seed}"
            + (", units acting" if workers else "")
            + " — Ctrl-C to stop"
        )
        try:
            n = 0
            while duration is None or time.monotonic() - start < duration:
                wait = start + n / rate - time.monotonic()
                if duration is not None:
                    wait = min(wait, start + duration - time.monotonic())
                if wait > 0:
                    time.sleep(wait)
                    if duration is not None and time.monotonic() - start >= duration:
                        break
                n += 1
                self._register(maker, users, rng, counts)
                if workers:
                    k = int(actions) + (rng.random() < actions - int(actions))
                    for _ in range(k):
                        self._act(users, rng, counts)
        except KeyboardInterrupt:
            self.stdout.write("")
        took = time.monotonic() - start
        self.stdout.write(
            self.style.SUCCESS(
                f"模拟结束 / done in {took:.1f} s: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            )
        )

    def _line(self, verb, appeal, extra=""):
        self.stdout.write(
            f"{timezone.localtime():%H:%M:%S} {verb:<6} {appeal.ticket_no} {appeal.state:<11} "
            f"{appeal.grid_code or '—':<15} {extra}"
        )

    def _register(self, maker, users, rng, counts):
        now = timezone.now()
        data = {k: v for k, v in maker.make(now).items() if not k.startswith("_")}
        data["received_at"] = now
        if rng.random() < 0.5:
            data.pop("category_code")  # left to the classifier
        actor = users.get(data.get("reporter")) or users.operator
        data["reporter"] = users.get(data.get("reporter"))
        appeal, _ = services.appeal_register(data=data, actor=actor)
        counts["registered"] += 1
        counts[f"state:{appeal.state}"] += 1
        cat = appeal.category.name if appeal.category_id else "未分类"  # type: ignore[union-attr]
        self._line(
            "登记",
            appeal,
            f"{appeal.get_channel_display()} {cat} {appeal.location.get('method', '')} "
            f"→ {appeal.department.name if appeal.department_id else '—'}",  # type: ignore[union-attr]
        )

    def _act(self, users, rng, counts):
        state = rng.choice(list(ACTIONS))
        # The longest-waiting appeals in that state are the ones a unit turns to.
        ids = list(Appeal.objects.filter(state=state).order_by("updated_at", "pk").values_list("pk", flat=True)[:20])
        if not ids:
            return
        appeal = Appeal.objects.select_related("department").get(pk=rng.choice(ids))
        event, verb = ACTIONS[state]
        unit = users.unit(appeal.department_id) or users.hotline or users.operator
        # The callback (回访) is the hotline centre's.
        actor = (users.hotline or unit) if event == "close" else unit
        try:
            if event == "accept":
                appeal = services.appeal_accept(appeal_id=appeal.pk, actor=unit)
            elif event == "start":
                appeal = services.appeal_start(appeal_id=appeal.pk, actor=unit)
            elif event == "resolve":
                appeal = services.appeal_resolve(
                    appeal_id=appeal.pk, actor=unit, closure_type="substantive", note=rng.choice(NOTES)
                )
            else:
                appeal = services.appeal_close(appeal_id=appeal.pk, actor=actor, note="已回访，来电人满意。")
        except (IllegalTransition, AppealError) as exc:  # another worker got there first
            counts["skipped"] += 1
            self.stdout.write(f"{timezone.localtime():%H:%M:%S} 跳过   {appeal.ticket_no} {exc}")
            return
        except IntegrityError as exc:
            # A refusal by the database is a bug to see, not a reason to stop the demo.
            counts["failed"] += 1
            self.stderr.write(
                f"{timezone.localtime():%H:%M:%S} 失败   {appeal.ticket_no} {event}: {exc}".splitlines()[0]
            )
            return
        counts[event] += 1
        self._line(verb, appeal, getattr(actor, "username", str(actor)))


class _Users:
    def __init__(self):
        User = get_user_model()
        self.by_id = {u.pk: u for u in User.objects.filter(is_active=True)}
        users = sorted(self.by_id.values(), key=lambda u: u.username)
        self.operator = next((u for u in users if u.role == "operator"), None) or "simulate"
        self.hotline = next((u for u in users if u.role == "hotline_center"), None)
        self.grid_workers = [(u.pk, list(u.grid_codes)) for u in users if u.role == "grid_worker" and u.grid_codes]
        self.units: dict[Any, Any] = {}
        for u in users:
            if u.department_id and u.role in ("department", "street_office"):
                self.units.setdefault(u.department_id, u)

    def get(self, pk):
        return self.by_id.get(pk) if pk else None

    def unit(self, department_id):
        return self.units.get(department_id)
