"""Remind units of long-term items (挂账) whose review date has come, once per review date (what
the review_long_term task does hourly)."""

from django.core.management.base import BaseCommand

from gridgov.appeals.timelimits.long_term import long_term_remind
from gridgov.cli import parse_now


class Command(BaseCommand):
    help = "挂账复核提醒：到复核日期的挂账事项提醒承办单位和热线中心 / remind due long-term item reviews"

    def add_arguments(self, parser):
        parser.add_argument("--now", help="as of this past instant (ISO 8601 with offset); default: now")

    def handle(self, *args, now=None, **options):
        result = long_term_remind(now=parse_now(now))
        self.stdout.write(
            f"到期 {result['due']} 件，已提醒 {result['reminded']} 件 / "
            f"due {result['due']}, reminded {result['reminded']}"
        )
