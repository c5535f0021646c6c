from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gridgov.realtime.models import outbox_purge


class Command(BaseCommand):
    help = "删除过期的推送事件 / delete outbox events older than REALTIME_OUTBOX_DAYS"

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help=f"default: {settings.REALTIME_OUTBOX_DAYS}")

    def handle(self, *args, days=None, **options):
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1 / 天数至少为 1")
        n = outbox_purge(days)
        self.stdout.write(f"{n} outbox events deleted / 已删除 {n} 条推送事件")
