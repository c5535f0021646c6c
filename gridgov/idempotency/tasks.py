from celery import shared_task

from .models import idempotency_purge as _purge


@shared_task(name="gridgov.idempotency.tasks.idempotency_purge", ignore_result=True)
def idempotency_purge():
    return _purge()
