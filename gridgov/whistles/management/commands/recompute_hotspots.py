"""Recompute hotspots now (what the beat task does every WHISTLE_RECOMPUTE_SECONDS)."""

import json

from django.core.management.base import BaseCommand, CommandError

from gridgov.cli import parse_now
from gridgov.whistles import compute, rules


class Command(BaseCommand):
    help = "重新计算热点并生成吹哨建议 / recompute hotspots (Gi*, DBSCAN) and apply the whistle rules"

    def add_arguments(self, parser):
        parser.add_argument(
            "--window",
            type=int,
            action="append",
            dest="windows",
            help="time window in days (repeatable); default WHISTLE_WINDOWS",
        )
        parser.add_argument(
            "--category",
            action="append",
            dest="categories",
            help="category group: a code prefix, or codes joined by commas (repeatable); "
            "default every group of WHISTLE_CATEGORY_LEVEL that has appeals",
        )
        parser.add_argument("--now", help="compute as of this past moment (ISO 8601 with offset)")
        parser.add_argument("--no-dbscan", action="store_true", help="skip the sub-grid DBSCAN spots")
        parser.add_argument("--no-rules", action="store_true", help="do not make whistle suggestions")

    def handle(self, *args, windows=None, categories=None, now=None, no_dbscan=False, no_rules=False, **options):
        if windows and min(windows) < 1:
            raise CommandError("--window must be at least 1 day")
        try:
            summary = compute.hotspots_recompute(
                windows, categories, parse_now(now), dbscan=not no_dbscan, actor="manage.py recompute_hotspots"
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not no_rules:
            summary["suggestions"] = len(rules.suggestions_make(parse_now(now)))
        self.stdout.write(json.dumps(summary, ensure_ascii=False))
