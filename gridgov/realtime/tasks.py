from celery import shared_task

from .models import outbox_purge as _outbox_purge


@shared_task(name="gridgov.realtime.tasks.outbox_purge", ignore_result=True)
def outbox_purge():
    return _outbox_purge()
