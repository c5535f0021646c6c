"""Bring warning colours up to date once (what the sweep_warning_colours task does every
SWEEP_INTERVAL_SECONDS): for cron, after an outage, or by hand."""

from django.core.management.base import BaseCommand

from gridgov.appeals.services import appeal_sweep
from gridgov.cli import parse_now


class Command(BaseCommand):
    help = "三色预警：刷新到期诉求的预警颜色（橙色督办、红色提级） / refresh due warning colours"

    def add_arguments(self, parser):
        parser.add_argument("--now", help="sweep as of this past instant (ISO 8601 with offset); default: now")

    def handle(self, *args, now=None, **options):
        result = appeal_sweep(now=parse_now(now))
        self.stdout.write(
            f"检查 {result['checked']} 件，变色 {result['changed']} 件，失败 {result['failed']} 件 / "
            f"checked {result['checked']}, changed {result['changed']}, failed {result['failed']}"
        )
