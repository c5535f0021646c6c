"""Background work on appeals, scheduled by Celery beat (settings.CELERY_BEAT_SCHEDULE).

Both tasks read their work from the database (deadlines, next_colour_at, review dates), so a
worker or beat that was down catches up on its first run, and running one twice is harmless.
The `sweep` and `review_long_term` management commands do the same from cron or by hand.
"""

import logging

from celery import shared_task
from django.conf import settings

from gridgov.appeals import services
from gridgov.appeals.intake.classifier import RetrainError, classifier_retrain
from gridgov.appeals.timelimits import long_term


@shared_task(name="gridgov.appeals.tasks.sweep_warning_colours", ignore_result=True)
def sweep_warning_colours():
    """三色预警: bring every appeal whose colour change is due up to date (SWEEP_INTERVAL_SECONDS)."""
    return services.appeal_sweep()


@shared_task(name="gridgov.appeals.tasks.review_long_term", ignore_result=True)
def review_long_term():
    """挂账: remind units of long-term items whose review date has come."""
    return long_term.long_term_remind()


@shared_task(name="gridgov.appeals.tasks.retrain_classifier", ignore_result=True)
def retrain_classifier() -> dict:
    """Nightly: retrain the category model on confirmed history (settings.CLASSIFIER_RETRAIN_HOUR).
    Too little history is not an error: the model in place (or the keyword rules) stays."""
    try:
        return classifier_retrain(min_per_class=settings.CLASSIFIER_MIN_PER_CLASS, holdout=0.2, actor="system")
    except RetrainError as exc:
        logging.getLogger(__name__).warning("classifier not retrained: %s", exc)
        return {"written": False, "reason": str(exc)}
