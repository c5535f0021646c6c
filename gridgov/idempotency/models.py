"""The first answer to a POST sent with an Idempotency-Key (or a client_id), kept so that a
phone replaying its offline queue gets that answer again instead of a second change.

The row is inserted as the first statement of the request's transaction: a concurrent request
with the same key waits on the unique index until the first one commits, then replays it (see
gridgov/idempotency/replay.py). Only successful answers are kept; a refused request changed
nothing and is answered afresh when retried.
"""

from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class IdempotencyRecord(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(_("幂等键"), max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    # SHA-256 of method, path, fields and file contents: the same key with another body is refused.
    request_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("幂等请求记录")
        verbose_name_plural = _("幂等请求记录")
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_uniq")]

    def __str__(self):
        return f"{self.user_id}:{self.key} → {self.status}"


def idempotency_purge(days=None, batch=10_000):
    """Delete records older than IDEMPOTENCY_KEEP_DAYS, in batches. Returns the number deleted."""
    days = settings.IDEMPOTENCY_KEEP_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    total = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(created_at__lt=cutoff).order_by("id").values_list("id", flat=True)[:batch]
        )
        if not ids:
            return total
        total += IdempotencyRecord.objects.filter(id__in=ids).delete()[0]
