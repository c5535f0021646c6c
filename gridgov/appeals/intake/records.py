"""What an appeal's intake and its changes record, built without the database: the appeal's
fields, its history rows (AppealEvent), the audit records (audit_record's arguments), the
assignments and the route it keeps. `intake_records` is the one place that decides what a
new appeal goes through (register → locate or queue_for_location → dispatch → the colour it
already has) and in which state it ends.

The one door (services.appeal_transition), bulk intake (batch.py, which a single appeal goes
through as a batch of one) and the demo history (fixtures/demohistory.py, which backdates the
same rows and writes them with COPY) all record through these builders, so they cannot
differ. The `*_row` builders give plain dicts of AppealEvent / AppealAssignment columns (the
demo history writes tens of thousands of them); the others wrap them in unsaved instances.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from gridgov.appeals.intake import pipeline
from gridgov.appeals.models import Appeal, AppealAssignment, AppealEvent, Category
from gridgov.appeals.timelimits import supervision
from gridgov.appeals.workflow import State, next_state


def ticket_no(received_at: datetime, number: int) -> str:
    """工单编号: the local date of receipt and a number from appeal_ticket_seq."""
    return f"{timezone.localtime(received_at):%Y%m%d}{number:08d}"


def user_of(actor: Any) -> Any:
    """The user a history row names: nobody for the system or an anonymous channel."""
    return actor if getattr(actor, "pk", None) else None


# --- history rows and audit records -------------------------------------------------------------


def event_row(
    event: str,
    old: str,
    new: str,
    *,
    actor_id: int | None = None,
    department_id: int | None = None,
    note: str = "",
    data: dict | None = None,
) -> dict:
    """The columns of one history row (AppealEvent), without the appeal and the time."""
    return {
        "actor_id": actor_id,
        "event": event,
        "old_state": old,
        "new_state": new,
        "department_id": department_id,
        "note": note,
        "data": data or {},
    }


def _row(appeal: Appeal, row: dict, actor: Any) -> AppealEvent:
    event = AppealEvent(appeal=appeal, **row)
    if row["actor_id"] is not None:
        event.actor = actor  # the instance the caller has: no query to read it back
    return event


def transition_records(
    appeal: Appeal,
    event: str,
    old: str,
    new: str,
    *,
    actor: Any,
    note: str = "",
    data: dict | None = None,
    department: Any = None,
) -> tuple[AppealEvent, dict]:
    """A state change's history row (unsaved) and audit record (audit_record's arguments)."""
    user = user_of(actor)
    row = event_row(
        event,
        old,
        new,
        actor_id=user.pk if user else None,
        department_id=department.pk if department is not None else appeal.department_id,
        note=note,
        data=data,
    )
    audit = {
        "actor": actor,
        "action": f"appeal.{event}",
        "obj": appeal,
        "data": {"old": old, "new": new, "note": note, **(data or {})},
    }
    return _row(appeal, row, user), audit


def register_row(*, actor_id: int | None = None) -> dict:
    return event_row("register", "", State.REGISTERED, actor_id=actor_id)


def register_records(appeal: Appeal, *, actor: Any) -> tuple[AppealEvent, dict]:
    user = user_of(actor)
    row = register_row(actor_id=user.pk if user else None)
    audit = {
        "actor": actor,
        "action": "appeal.register",
        "obj": appeal,
        "data": {"ticket_no": appeal.ticket_no, "channel": appeal.channel},
    }
    return _row(appeal, row, user), audit


def colour_row(state: str, department_id: int | None, data: dict) -> dict:
    """A warning colour reached (data: supervision.colour_change_data), by the system."""
    return event_row(f"colour_{data['new']}", state, state, department_id=department_id, data=data)


def colour_records(appeal: Appeal, old: str, new: str) -> tuple[AppealEvent, dict]:
    """A warning colour reached: recorded with its supervision or escalation, by the system."""
    data = supervision.colour_change_data(appeal, old, new)
    row = colour_row(appeal.state, appeal.department_id, data)
    return _row(appeal, row, None), {"actor": "system", "action": "appeal.colour", "obj": appeal, "data": data}


def locate_data(grid_code: str, method: str) -> dict:
    return {"grid": grid_code, "method": method}


def queue_data(method: str, confidence: float) -> dict:
    return {"method": method, "confidence": round(confidence, 3)}


def dispatch_data(route: dict) -> dict:
    """What the dispatch row keeps of the route (route_record's answer)."""
    return {"lead": route["lead"], "assists": route["assists"]}


# --- route and assignments ----------------------------------------------------------------------


def route_record(decision: pipeline.RouteDecision) -> dict:
    """What the appeal keeps of its route decision (Appeal.route): a dispatcher sees why."""
    return {
        **decision.explanation,
        "lead": decision.lead.code,  # type: ignore[union-attr]  # only a decision with a lead is recorded
        "lead_rule_id": decision.lead_rule.pk if decision.lead_rule else None,
        "assists": [{"department": d.code, "why": why} for d, _r, why in decision.assists],
        "double_dispatch": bool(decision.assists),
    }


def assignment_rows(decision: pipeline.RouteDecision, at: datetime) -> list[dict]:
    """The AppealAssignment columns of a route decision: the lead (or first receiver) and the
    assisting units."""
    rows = []
    if decision.lead is not None:
        role = AppealAssignment.Role.FIRST_RECEIVER if decision.first_receiver else AppealAssignment.Role.LEAD
        rows.append(
            {
                "department_id": decision.lead.pk,
                "role": str(role),
                "rule_id": decision.lead_rule.pk if decision.lead_rule else None,
                "assigned_at": at,
                "ended_at": None,
            }
        )
    rows += [
        {
            "department_id": dept.pk,
            "role": str(AppealAssignment.Role.ASSIST),
            "rule_id": rule.pk if rule else None,
            "assigned_at": at,
            "ended_at": None,
        }
        for dept, rule, _why in decision.assists
    ]
    return rows


def assignments_for(appeal: Appeal, decision: pipeline.RouteDecision, now: datetime) -> list[AppealAssignment]:
    """The unsaved AppealAssignment rows of a route decision."""
    depts = ([decision.lead] if decision.lead is not None else []) + [d for d, _r, _why in decision.assists]
    out = []
    for row, dept in zip(assignment_rows(decision, now), depts, strict=True):
        assignment = AppealAssignment(appeal=appeal, **row)
        assignment.department = dept  # the instance routing found: no query to read it back
        out.append(assignment)
    return out


# --- the new appeal -----------------------------------------------------------------------------


def appeal_fields(
    data: dict,
    loc: pipeline.LocationDecision,
    guesses: list,
    *,
    received_at: datetime,
    categories: Callable[..., Category],
) -> dict:
    """The new appeal's fields from what the pipeline decided: place, category (the operator's,
    or the classifier's best guess), kind, risk and time limit, with the evidence for each.
    `categories(code, leaf=...)` finds a category (raises Category.DoesNotExist)."""
    text = data["text"]
    category = None
    confirmed_by = ""
    if data.get("category_code"):
        category = categories(data["category_code"], leaf=True)
        confirmed_by = "operator"
    elif guesses:
        category = categories(guesses[0].code, leaf=False)
    kind, kind_conf, kind_words = pipeline.kind_step(text)
    if data.get("kind"):
        kind, kind_conf, kind_words = data["kind"], 1.0, []
    flags = pipeline.risk_step(text)
    return dict(
        source_system=data.get("source_system", ""),
        external_id=data.get("external_id", ""),
        channel=data.get("channel") or "phone",
        kind=kind,
        text=text,
        address_text=data.get("address_text", ""),
        appellant_name=data.get("appellant_name", ""),
        appellant_phone=data.get("appellant_phone", ""),
        received_at=received_at,
        reporter=data.get("reporter"),
        position=loc.position,
        position_input=loc.detail.get("input", {}),
        grid_id=loc.chain.grid_id if loc.located else None,  # type: ignore[union-attr]  # located: a chain
        grid_code=loc.chain.grid_code if loc.located else "",  # type: ignore[union-attr]
        location={"method": loc.method, "confidence": round(loc.confidence, 3), **loc.detail},
        category=category,
        classification={
            "guesses": [g.as_dict() for g in guesses],
            "confirmed_by": confirmed_by,
            "kind": {"value": kind, "confidence": round(kind_conf, 3), "words": kind_words},
        },
        time_limit=time_limit(category.time_limit if category else "", flags),
        risk=risk_record(flags),
    )


def time_limit(category_limit: str, flags: list) -> str:
    # A danger to life or property is answered within 2 hours, whatever the category says.
    return "2h" if flags else category_limit


def risk_record(flags: list) -> dict:
    return {"flags": flags, "transfer": sorted({f["transfer"] for f in flags})} if flags else {}


@dataclass
class IntakeRecords:
    """What registering one appeal writes besides the appeal: history rows and audit records in
    order, the assignments, and the last event (the one its announcement names)."""

    rows: list = field(default_factory=list)
    audits: list = field(default_factory=list)
    assignments: list = field(default_factory=list)
    last_event: str = ""

    def add(self, records: tuple[AppealEvent, dict]) -> None:
        row, audit = records
        self.rows.append(row)
        self.audits.append(audit)
        self.last_event = row.event


def _step(out: IntakeRecords, appeal: Appeal, event: str, actor: Any, **kwargs: Any) -> None:
    """One transition of the new appeal, decided by the transition table as appeal_transition
    decides it."""
    new = next_state(appeal.state, event)  # raises IllegalTransition
    out.add(transition_records(appeal, event, appeal.state, new, actor=actor, **kwargs))
    appeal.state = new


def intake_records(
    appeal: Appeal,
    loc: pipeline.LocationDecision,
    decision: pipeline.RouteDecision | None,
    clock: tuple | None,
    *,
    actor: Any,
    now: datetime,
) -> IntakeRecords:
    """register → locate (or queue_for_location) → dispatch (when `decision` has a lead), and
    the warning colour it already has. Sets the appeal's state, unit, route, deadline and colour;
    `clock` is pipeline.clock_step's answer at `now`."""
    out = IntakeRecords()
    appeal.state = State.REGISTERED
    out.add(register_records(appeal, actor=actor))
    if not loc.located:
        _step(out, appeal, "queue_for_location", actor, data=queue_data(loc.method, loc.confidence))
        return out
    _step(out, appeal, "locate", actor, data=locate_data(appeal.grid_code, loc.method))
    if decision is None:
        return out
    out.assignments = assignments_for(appeal, decision, now)
    assert clock is not None  # a route decision comes with its clock
    due, colour, next_at = clock
    route = route_record(decision)
    appeal.department, appeal.route, appeal.deadline, appeal.next_colour_at = decision.lead, route, due, next_at
    _step(out, appeal, "dispatch", actor, data=dispatch_data(route), department=decision.lead)
    if colour != appeal.warning_colour:
        # Dispatched after part of its limit had gone (a backfill, a late petition): the colour
        # it already has is recorded, with its supervision or escalation, not set silently.
        out.add(colour_records(appeal, appeal.warning_colour, colour))
        appeal.warning_colour = colour
    return out
