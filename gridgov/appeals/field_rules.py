"""What a task's field work needs, per category (CATEGORY_GEOFENCE_METRES,
CATEGORY_REQUIRED_EVIDENCE and their defaults): the check-in geofence, the photos a completion
needs, and which of them the current round of work still lacks. Read by the field actions
(field_tasks.py, grid_reports.py) and the phone's task view alike.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.conf import settings

from gridgov.appeals.models import Appeal, AppealEvent, Attachment

# Events that start a round of work: check-ins and "after" photos count from the latest one.
ROUND_EVENTS = ("accept", "redo", "reopen")
PHOTO = Attachment.Kind.PHOTO
PURPOSE_LABELS = {"before": "处置前", "during": "处置中", "after": "处置后"}


def _by_category(mapping, category_code, default):
    """The value for the longest prefix of the category code in `mapping`, else `default`."""
    code = category_code or ""
    for n in (6, 4, 2):
        if len(code) >= n and code[:n] in mapping:
            return mapping[code[:n]]
    return default


def _category_code(appeal):
    return appeal.category.code if appeal.category_id else ""


def geofence_metres(appeal: Appeal) -> float:
    return float(_by_category(settings.CATEGORY_GEOFENCE_METRES, _category_code(appeal), settings.GEOFENCE_METRES))


def required_evidence(appeal: Appeal) -> tuple[str, ...]:
    """Purposes of the photos a completion needs, e.g. ("before", "after")."""
    return tuple(
        _by_category(settings.CATEGORY_REQUIRED_EVIDENCE, _category_code(appeal), settings.EVIDENCE_REQUIRED_DEFAULT)
    )


def missing_evidence(
    required: Iterable[str], photos: Iterable[tuple[str, str, datetime]], since: datetime | None = None
) -> list[str]:
    """Required purposes with no photo. `photos`: (kind, purpose, uploaded_at) triples. An
    "after" photo must come from this round of work (since the latest accept / redo / reopen);
    a "before" photo may be older (a grid report's photo shows the problem as found)."""
    have = {
        purpose
        for kind, purpose, at in photos
        if kind == PHOTO and (purpose != "after" or since is None or at >= since)
    }
    return [p for p in required if p not in have]


def round_progress(events_list: Iterable[AppealEvent]) -> tuple[datetime | None, AppealEvent | None]:
    """(start of the current round of work, its latest check-in event) from an appeal's
    history in time order; no database access (the detail view passes prefetched rows)."""
    started, check_in = None, None
    for ev in events_list:
        if ev.event in ROUND_EVENTS:
            started, check_in = ev.at, None
        elif ev.event == "check_in":
            check_in = ev
    return started, check_in


def current_round(appeal_id: int) -> tuple[datetime | None, AppealEvent | None]:
    """round_progress of the appeal, read from the database."""
    return round_progress(
        AppealEvent.objects.filter(appeal_id=appeal_id, event__in=(*ROUND_EVENTS, "check_in")).order_by("at", "pk")
    )


def missing_message(missing: Sequence[str]) -> str:
    zh = "、".join(PURPOSE_LABELS.get(p, p) for p in missing)
    return f"办结前还需上传{zh}照片 / photos still missing: {', '.join(missing)}"
