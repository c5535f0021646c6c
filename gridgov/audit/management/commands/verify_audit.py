from django.core.management.base import BaseCommand, CommandError

from gridgov.audit.models import AuditEvent
from gridgov.audit.services import audit_verify


class Command(BaseCommand):
    help = "Verify the tamper-evident audit chain; exits non-zero on any edited or deleted record."

    def handle(self, *args, **opts):
        problems = audit_verify()
        if problems:
            for p in problems:
                self.stderr.write(p)
            raise CommandError(f"审计链校验失败 / audit chain broken: {len(problems)} problem(s)")
        self.stdout.write(f"审计链完整 / audit chain intact: {AuditEvent.objects.count()} records")
