"""Real-time notices about appeals, through the realtime outbox (gridgov.realtime.broadcast).

`appeal_changed(appeal, event)` is called by services._publish after every change, as the last
step of a service (after audit_record: see broadcast.py on lock order). It writes outbox rows in
the caller's transaction; they are sent after commit.

Every change goes out as "appeal.changed" to the appeal's units (lead and assisting) and every
area that watches its grid: grid, community, street, district and the city (the hotline
centre). Some changes are also a notice to someone who must act:

    appeal.supervision    orange (督办): the hotline centre and the lead unit
    appeal.escalation     red (提级处置): the same, and the district of the grid (its leaders)
    appeal.ledger_review  a long-term item (挂账) is due for review: the lead unit, the centre
"""

from collections.abc import Iterable
from typing import Any

from gridgov.accounts.models import Department
from gridgov.appeals.models import Appeal, AppealAssignment
from gridgov.areacodes import district_code_of, level_of
from gridgov.realtime import broadcast

NOTICES = {
    "colour_orange": "appeal.supervision",
    "colour_red": "appeal.escalation",
    "ledger_review_due": "appeal.ledger_review",
}


def _units(appeal: Appeal) -> tuple[str, list[int]]:
    """(lead department id, its code, ids of every unit on the appeal) in one query."""
    rows = list(
        AppealAssignment.objects.filter(appeal_id=appeal.pk, ended_at__isnull=True).values_list(
            "department_id", "department__code"
        )
    )
    codes: dict[int | None, str] = dict(rows)
    lead_code = codes.get(appeal.department_id)
    if appeal.department_id and lead_code is None:
        lead_code = Department.objects.filter(pk=appeal.department_id).values_list("code", flat=True).first()
    ids = sorted({d for d, _ in rows} | ({appeal.department_id} if appeal.department_id else set()))
    return lead_code or "", ids


def appeal_payload(appeal: Appeal, event: str, lead_code: str) -> dict[str, Any]:
    return {
        "id": appeal.pk,
        "ticket_no": appeal.ticket_no,
        "event": event,
        "state": appeal.state,
        "warning_colour": appeal.warning_colour,
        "deadline": appeal.deadline,
        "department": lead_code,
        "grid_code": appeal.grid_code,
    }


def appeal_events(
    appeal: Appeal, event: str, units: tuple[str, list[int]] | None = None
) -> list[tuple[str, str, dict]]:
    """The (group, type, payload) triples that announce `event` on `appeal`. `units` is
    (lead department code, ids of every unit on the appeal) when the caller knows them (bulk
    intake, which has just made the assignments); otherwise they are read."""
    lead_code, unit_ids = units if units is not None else _units(appeal)
    payload = appeal_payload(appeal, event, lead_code)
    unit_groups = [broadcast.department_group(d) for d in unit_ids]
    # Every level that watches the grid: its grid workers, the community, the street office, the
    # district's leaders, the city (the hotline centre).
    code = appeal.grid_code
    areas = broadcast.area_groups(code) if level_of(code) else [broadcast.city_group()]
    out = [(g, "appeal.changed", payload) for g in [*unit_groups, *areas]]
    notice = NOTICES.get(event)
    if notice:
        groups = [broadcast.city_group()]
        if appeal.department_id:
            groups.append(broadcast.department_group(appeal.department_id))
        if event == "colour_red" and district_code_of(appeal.grid_code):
            groups.append(broadcast.district_group(district_code_of(appeal.grid_code)))
        out += [(g, notice, payload) for g in groups]
    return out


def appeal_changed(appeal: Appeal, event: str) -> list[tuple[str, str, dict]]:
    """Announce `event` on `appeal` after commit (outbox rows now, in the caller's transaction)."""
    triples = appeal_events(appeal, event)
    if triples:
        broadcast.publish_many(triples)
    return triples


def appeals_changed(changes: Iterable[tuple[Appeal, str, tuple[str, list[int]] | None]]) -> list[tuple[str, str, dict]]:
    """appeal_changed for many: [(appeal, event, units)] (units as appeal_events takes them),
    with one INSERT into the outbox."""
    triples = [t for appeal, event, units in changes for t in appeal_events(appeal, event, units=units)]
    if triples:
        broadcast.publish_many(triples)
    return triples
