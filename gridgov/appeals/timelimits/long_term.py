"""挂账: the ledger of appeals that cannot be solved within their limit (LongTermItem).

An item is opened by services.appeal_suspend with a review date. When the date comes,
`long_term_remind` (the `review_long_term` task and command) records a reminder once per review
date and notifies the unit and the hotline centre; the unit reviews with `long_term_review`,
which sets the next date. Resolving the appeal closes the item (`long_term_close`, called by
services.appeal_resolve), whatever state it was resolved from.
"""

from datetime import UTC, datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from gridgov.accounts.access import Actor, Viewer
from gridgov.appeals import notices
from gridgov.appeals.models import Appeal, AppealEvent, LongTermItem
from gridgov.appeals.timelimits.supervision import oversight_appeals
from gridgov.appeals.workflow import OPEN_STATES
from gridgov.audit.services import audit_record

REMINDER = "ledger_review_due"


def _key(moment: datetime) -> str:
    # One spelling of an instant, so a reminder can be matched to the review date it was for.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


# --- selectors --------------------------------------------------------------------------------


def long_term_items(user: Viewer = None, *, open_only: bool = True) -> QuerySet[LongTermItem]:
    """The ledger, oldest review date first; scoped to what `user` oversees when given."""
    qs = LongTermItem.objects.select_related("appeal", "appeal__department").order_by("review_at", "pk")
    if open_only:
        qs = qs.filter(closed_at__isnull=True)
    if user is not None:
        qs = qs.filter(appeal__in=oversight_appeals(user))
    return qs


def long_term_due(now: datetime | None = None) -> list[LongTermItem]:
    """Open items of open appeals whose review date has come and that have had no reminder for
    that date yet."""
    now = now or timezone.now()
    items = list(long_term_items().filter(review_at__lte=now, appeal__state__in=OPEN_STATES))
    reminded = set(
        AppealEvent.objects.filter(event=REMINDER, appeal_id__in=[i.appeal_id for i in items]).values_list(
            "appeal_id", "data__review_at"
        )
    )
    return [i for i in items if (i.appeal_id, _key(i.review_at)) not in reminded]


# --- services ---------------------------------------------------------------------------------


def long_term_remind(now: datetime | None = None) -> dict[str, int]:
    """Record a review reminder for every due item: history row, audit record, notice to the
    unit and the hotline centre. Idempotent: a second run for the same dates records nothing."""
    now = now or timezone.now()
    reminded = 0
    due = long_term_due(now)
    for item in due:
        with transaction.atomic():
            # The item's lock serialises concurrent runs; the check is repeated under it.
            locked = LongTermItem.objects.select_for_update().select_related("appeal").get(pk=item.pk)
            key = _key(locked.review_at)
            appeal = locked.appeal
            if (
                locked.closed_at is not None
                or locked.review_at > now
                or appeal.state not in OPEN_STATES
                or AppealEvent.objects.filter(appeal=appeal, event=REMINDER, data__review_at=key).exists()
            ):
                continue
            data = {
                "review_at": key,
                "opened_at": _key(locked.opened_at),
                "overdue_days": (now - locked.review_at).days,
            }
            AppealEvent.objects.create(
                appeal=appeal,
                event=REMINDER,
                old_state=appeal.state,
                new_state=appeal.state,
                department_id=appeal.department_id,
                data=data,
            )
            audit_record(actor="system", action="appeal.ledger_review_due", obj=appeal, data=data)
            notices.appeal_changed(appeal, REMINDER)
            reminded += 1
    return {"due": len(due), "reminded": reminded}


def long_term_review(
    *,
    appeal_id: int,
    actor: Actor,
    review_at: datetime,
    note: str = "",
    plan: str | None = None,
    now: datetime | None = None,
) -> LongTermItem:
    """The unit has reviewed the item: record it and set the next review date."""
    now = now or timezone.now()
    if review_at <= now:
        raise ValueError("the next review date must be in the future")
    with transaction.atomic():
        item = (
            LongTermItem.objects.select_for_update()
            .select_related("appeal")
            .get(appeal_id=appeal_id, closed_at__isnull=True)
        )
        data = {"previous": _key(item.review_at), "review_at": _key(review_at)}
        item.review_at = review_at
        fields = ["review_at"]
        if plan is not None:
            item.plan, data["plan"] = plan, plan
            fields.append("plan")
        item.save(update_fields=fields)
        appeal = item.appeal
        AppealEvent.objects.create(
            appeal=appeal,
            actor=actor if getattr(actor, "pk", None) else None,  # type: ignore[misc]  # a user, or none
            event="ledger_review",
            old_state=appeal.state,
            new_state=appeal.state,
            department_id=appeal.department_id,
            note=note,
            data=data,
        )
        audit_record(actor=actor, action="appeal.ledger_review", obj=appeal, data={**data, "note": note})
    return item


def long_term_close(*, appeal: Appeal, actor: Actor, now: datetime | None = None) -> LongTermItem | None:
    """Close the appeal's open ledger item, if it has one (the appeal was solved). Returns the
    item or None."""
    now = now or timezone.now()
    with transaction.atomic():
        item = LongTermItem.objects.select_for_update().filter(appeal_id=appeal.pk, closed_at__isnull=True).first()
        if item is None:
            return None
        item.closed_at = now
        item.save(update_fields=["closed_at"])
        data = {"opened_at": _key(item.opened_at), "days_open": (now - item.opened_at).days}
        AppealEvent.objects.create(
            appeal_id=appeal.pk,
            actor=actor if getattr(actor, "pk", None) else None,  # type: ignore[misc]  # a user, or none
            event="ledger_close",
            old_state=appeal.state,
            new_state=appeal.state,
            department_id=appeal.department_id,
            data=data,
        )
        audit_record(actor=actor, action="appeal.ledger_close", obj=appeal, data=data)
    return item
