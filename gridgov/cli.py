"""--now for the clock commands: a past instant to replay a sweep at, never a future one (a colour
change or a reminder recorded ahead of time cannot be taken back from the audit chain)."""

from datetime import datetime

from django.core.management.base import CommandError
from django.utils import timezone


def parse_now(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--now {text!r}: expected an ISO 8601 time, e.g. 2026-10-08T09:00+08:00") from None
    if timezone.is_naive(moment):
        raise CommandError(f"--now {text!r}: give a UTC offset (e.g. +08:00)")
    if moment > timezone.now():
        raise CommandError(f"--now {text!r} is in the future")
    return moment
