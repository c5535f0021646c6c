"""Recount the maps' roll-up (maps.models.AppealCount): the trailing days by default, every
day with --full (after importing old appeals in bulk)."""

from django.core.management.base import BaseCommand

from maps.aggregates import rollup_refresh


class Command(BaseCommand):
    help = "刷新地图汇总表（诉求量与三率）/ refresh the maps' appeal-count roll-up"

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="recount every day, not only the trailing ones")

    def handle(self, *args, full=False, **options):
        summary = rollup_refresh(full=full)
        self.stdout.write(", ".join(f"{k}={v}" for k, v in summary.items()))
