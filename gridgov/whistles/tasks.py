"""Background work on hotspots and whistles, scheduled by Celery beat (settings.CELERY_BEAT_SCHEDULE).

Both read their work from the database, so a worker that was down catches up on its next run
and running one twice is harmless. The `recompute_hotspots` and `sweep_musters` management
commands do the same from cron or by hand.
"""

from celery import shared_task

from . import compute, rules, services


@shared_task(name="gridgov.whistles.tasks.recompute_hotspots", ignore_result=True)
def recompute_hotspots():
    """Gi* and DBSCAN hotspots over WHISTLE_WINDOWS, then the whistle suggestion rules."""
    summary = compute.hotspots_recompute()
    summary["suggestions"] = len(rules.suggestions_make())
    return summary


@shared_task(name="gridgov.whistles.tasks.sweep_musters", ignore_result=True)
def sweep_musters():
    """Escalate to the district every department not on site by its call's muster deadline."""
    return services.muster_sweep()
