"""Escalate late musters now (what the beat task does every SWEEP_INTERVAL_SECONDS)."""

import json

from django.core.management.base import BaseCommand

from gridgov.cli import parse_now
from gridgov.whistles import services


class Command(BaseCommand):
    help = "将超过报到时限未到场的部门提级至区 / escalate departments not on site by the muster deadline"

    def add_arguments(self, parser):
        parser.add_argument("--now", help="sweep as of this past moment (ISO 8601 with offset)")

    def handle(self, *args, now=None, **options):
        self.stdout.write(json.dumps(services.muster_sweep(parse_now(now)), ensure_ascii=False))
