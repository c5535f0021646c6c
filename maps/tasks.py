"""Celery: keep the maps' roll-up fresh. Maps stay correct without it (days after the roll-up
are read from the appeals table), only slower as the gap grows."""

from celery import shared_task

from .aggregates import rollup_refresh

REFRESH_SECONDS = 3600.0


@shared_task(name="maps.tasks.rollup_refresh")
def refresh_rollup():
    summary = rollup_refresh()
    return {k: str(v) for k, v in summary.items()}


def _schedule(sender, **kwargs):
    sender.add_periodic_task(REFRESH_SECONDS, refresh_rollup.s(), name="maps-rollup-refresh",
                             expires=REFRESH_SECONDS)


try:  # registered with the app that autodiscovers this module (gridgov/celery.py)
    from gridgov.celery import app as _app

    _app.on_after_finalize.connect(_schedule, weak=False)
except ImportError:  # pragma: no cover
    pass
