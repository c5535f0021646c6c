"""Celery: keep the maps' roll-up fresh. Maps stay correct without it (days after the roll-up
are read from the appeals table), only slower as the gap grows."""

from celery import shared_task

from .aggregates import rollup_refresh

REFRESH_SECONDS = 3600.0  # the beat entry "maps-rollup-refresh" is in settings.CELERY_BEAT_SCHEDULE


@shared_task(name="maps.tasks.rollup_refresh")
def refresh_rollup():
    summary = rollup_refresh()
    return {k: str(v) for k, v in summary.items()}
