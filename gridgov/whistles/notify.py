"""Live pushes about hotspots and whistles, through the realtime outbox.

Every function returns the (group, type, payload) triples it queued. Call them as the last step of a service, after
every audit_record (broadcast.py: the outbox lock is taken by the first publish and held to the
commit; taking the audit head after it while another transaction does the opposite deadlocks).
The events leave after commit.

    whistle.suggestion       a rule proposes a whistle: the street office
    whistle.hotspot          a hotspot was acknowledged, dismissed or whistled: its street
    whistle.summoned         a department is summoned to a call: the department
    whistle.call             a call changed (blown, mustering, on site, closed, cancelled):
                             its street, its district and every summoned department
    whistle.muster           a department acknowledged, checked in or reported: the street and
                             the department
    whistle.escalation       a department is late (not on site by the deadline): the district,
                             the street and the department
    whistle.evaluation       a rating was recorded: the one rated
"""

from collections.abc import Callable, Iterable
from typing import Any

from gridgov.realtime import broadcast


def send(triples: Iterable[tuple[str, str | int, str, dict]]) -> list[tuple[str, str, dict]]:
    """Queue (group level, code, type, payload) items: level is "street", "district",
    "department" (the code is the department's id) or "city"."""
    if not triples:
        return []
    helpers: dict[str, Callable[[Any], str]] = {
        "street": broadcast.street_group,
        "district": broadcast.district_group,
        "department": broadcast.department_group,
        "city": lambda _code: broadcast.city_group(),
    }
    out = [(helpers[level](code), type_, payload) for level, code, type_, payload in triples]
    broadcast.publish_many(out)
    return out


def call_payload(call):
    return {
        "id": call.pk,
        "street_code": call.street_code,
        "state": call.state,
        "problem": call.problem[:200],
        "place": [call.place.x, call.place.y],
        "muster_deadline": call.muster_deadline,
        "meeting_at": call.meeting_at,
    }


def muster_payload(muster, department_code=None):
    return {
        "id": muster.pk,
        "call": muster.call_id,
        "department": department_code or muster.department.code,
        "state": muster.state,
        "late": muster.late,
        "escalated": muster.escalated,
        "distance_m": muster.check_in_distance_m,
        "outside_geofence": muster.outside_geofence,
    }


def call_changed(call, event, department_ids):
    payload = {**call_payload(call), "event": event}
    return send(
        [
            ("street", call.street_code, "whistle.call", payload),
            ("district", call.district_code, "whistle.call", payload),
            *(("department", d, "whistle.call", payload) for d in department_ids),
        ]
    )


def summoned(call, musters):
    return send(
        [("department", m.department_id, "whistle.summoned", {**call_payload(call), "muster": m.pk}) for m in musters]
    )


def muster_changed(call, muster, event):
    payload = {**muster_payload(muster), "event": event}
    return send(
        [
            ("street", call.street_code, "whistle.muster", payload),
            ("department", muster.department_id, "whistle.muster", payload),
        ]
    )


def escalated(call, muster):
    payload = {
        **muster_payload(muster),
        "call_problem": call.problem[:200],
        "muster_deadline": call.muster_deadline,
        "street_code": call.street_code,
    }
    return send(
        [
            ("district", call.district_code, "whistle.escalation", payload),
            ("street", call.street_code, "whistle.escalation", payload),
            ("department", muster.department_id, "whistle.escalation", payload),
        ]
    )


def suggestion_made(suggestion):
    payload = {
        "id": suggestion.pk,
        "street_code": suggestion.street_code,
        "rule": suggestion.rule,
        "hotspot": suggestion.hotspot_id,
        "category": suggestion.category_key,
        **suggestion.evidence,
    }
    return send([("street", suggestion.street_code, "whistle.suggestion", payload)])


def hotspot_changed(hotspot, event):
    payload = {
        "id": hotspot.pk,
        "kind": hotspot.kind,
        "grid_code": hotspot.grid_code,
        "state": hotspot.state,
        "category": hotspot.category_key,
        "event": event,
    }
    return send([("street", hotspot.street_code, "whistle.hotspot", payload)])


def evaluated(evaluation, call):
    payload = {
        "id": evaluation.pk,
        "call": call.pk,
        "direction": evaluation.direction,
        "department": evaluation.department_id,
    }
    if evaluation.direction == "street_to_department":
        return send([("department", evaluation.department_id, "whistle.evaluation", payload)])
    return send([("street", call.street_code, "whistle.evaluation", payload)])
