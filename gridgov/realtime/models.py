"""The outbox: every event pushed over WebSockets is first a row here, written in the same
transaction as the change it announces. Live delivery goes through the channel layer after
commit; a client that was away replays the rows it missed (`id > last_id`) on reconnect.

Ids are handed out in commit order (broadcast.py holds a transaction-level advisory lock from
the first publish to the commit), so "every event with id > N" has no holes a later commit
could fill: a resumed client never misses an event that committed while it was away.
"""

from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OutboxEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    group = models.CharField(_("推送组"), max_length=100)
    type = models.CharField(_("事件类型"), max_length=60)
    payload = models.JSONField(_("内容"), default=dict, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("推送事件")
        verbose_name_plural = _("推送事件")
        ordering = ["id"]
        # Replay reads "group IN (mine) AND id > N ORDER BY id": one index range per group.
        indexes = [models.Index(fields=["group", "id"], name="realtime_outbox_group_id")]

    def __str__(self):
        return f"#{self.id} {self.group} {self.type}"

    def as_frame(self):
        return event_frame(self.id, self.group, self.type, self.payload, self.created_at)


def event_frame(id, group, type, payload, created_at):
    """What a client receives, live or replayed: the same dict either way."""
    return {
        "type": "event",
        "id": id,
        "group": group,
        "event": type,
        "payload": payload,
        "created_at": created_at.isoformat(),
    }


def outbox_purge(days=None, batch=10_000):
    """Delete outbox rows older than `days` (settings.REALTIME_OUTBOX_DAYS). In batches, so a
    large backlog never holds one long lock against publishers. Returns the number deleted."""
    days = settings.REALTIME_OUTBOX_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    total = 0
    while True:
        ids = list(
            OutboxEvent.objects.filter(created_at__lt=cutoff).order_by("id").values_list("id", flat=True)[:batch]
        )
        if not ids:
            return total
        total += OutboxEvent.objects.filter(id__in=ids).delete()[0]
