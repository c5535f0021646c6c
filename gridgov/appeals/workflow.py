"""The appeal's life as a transition table. No database here: `appeal_transition` in
services.py is the one door that applies it, with a lock, a history row and an audit record.
"""

from django.utils.translation import gettext_lazy as _

from gridgov.errors import Conflict, DomainError


class State:
    REGISTERED = "registered"  # 已登记
    UNLOCATED = "unlocated"  # 待人工定位
    LOCATED = "located"  # 已定位，待派单
    DISPATCHED = "dispatched"  # 已派单
    RETURNED = "returned"  # 已退单，待中心裁定
    ACCEPTED = "accepted"  # 已签收
    IN_PROGRESS = "in_progress"  # 办理中
    SUSPENDED = "suspended"  # 挂账
    RESOLVED = "resolved"  # 已办结，待回访
    CLOSED = "closed"  # 已结案
    MERGED = "merged"  # 已并入主单


STATE_LABELS = {
    State.REGISTERED: _("已登记"),
    State.UNLOCATED: _("待人工定位"),
    State.LOCATED: _("待派单"),
    State.DISPATCHED: _("已派单"),
    State.RETURNED: _("退单待裁定"),
    State.ACCEPTED: _("已签收"),
    State.IN_PROGRESS: _("办理中"),
    State.SUSPENDED: _("挂账"),
    State.RESOLVED: _("已办结"),
    State.CLOSED: _("已结案"),
    State.MERGED: _("已并单"),
}

OPEN_STATES = frozenset(
    {
        State.REGISTERED,
        State.UNLOCATED,
        State.LOCATED,
        State.DISPATCHED,
        State.RETURNED,
        State.ACCEPTED,
        State.IN_PROGRESS,
        State.SUSPENDED,
    }
)
# States in which the time-limit clock runs against a unit.
ON_CLOCK_STATES = frozenset({State.DISPATCHED, State.ACCEPTED, State.IN_PROGRESS})

S = State
TRANSITIONS = {
    (S.REGISTERED, "locate"): S.LOCATED,
    (S.REGISTERED, "queue_for_location"): S.UNLOCATED,
    (S.UNLOCATED, "locate"): S.LOCATED,
    (S.LOCATED, "dispatch"): S.DISPATCHED,
    (S.DISPATCHED, "accept"): S.ACCEPTED,
    (S.DISPATCHED, "return"): S.RETURNED,  # 退单: the unit disputes ownership, with a reason
    (S.ACCEPTED, "return"): S.RETURNED,
    (S.RETURNED, "reassign"): S.DISPATCHED,  # the centre upholds the return and re-dispatches
    (S.RETURNED, "reject_return"): S.DISPATCHED,  # the centre refuses it: the unit keeps the appeal
    (S.ACCEPTED, "start"): S.IN_PROGRESS,
    (S.ACCEPTED, "resolve"): S.RESOLVED,
    (S.IN_PROGRESS, "resolve"): S.RESOLVED,
    (S.IN_PROGRESS, "suspend"): S.SUSPENDED,  # 挂账: cannot be solved within the limit
    (S.SUSPENDED, "resume"): S.IN_PROGRESS,
    (S.SUSPENDED, "resolve"): S.RESOLVED,
    (S.RESOLVED, "close"): S.CLOSED,  # after the callback (回访)
    (S.RESOLVED, "redo"): S.IN_PROGRESS,  # 形式办结: closed on paper only, sent back
    (S.CLOSED, "reopen"): S.IN_PROGRESS,
}
# Merging into a lead appeal is allowed from any open state; a merged appeal is closed with
# its lead, so that its appellant gets the same outcome.
for _state in OPEN_STATES:
    TRANSITIONS[(_state, "merge")] = S.MERGED
TRANSITIONS[(S.MERGED, "close_with_lead")] = S.CLOSED
# The category decides the unit and the time limit (services.appeal_categorise). Before
# dispatch it is set or corrected in place; after dispatch, while a unit still works on the
# appeal, a new category re-routes it, and the new lead signs for it again. Once suspended,
# resolved or merged it stays as it was handled.
PRE_DISPATCH_STATES = frozenset({S.REGISTERED, S.UNLOCATED, S.LOCATED})
for _state in PRE_DISPATCH_STATES:
    TRANSITIONS[(_state, "categorise")] = _state
for _state in (S.DISPATCHED, S.RETURNED, S.ACCEPTED, S.IN_PROGRESS):
    TRANSITIONS[(_state, "recategorise")] = S.DISPATCHED

EVENTS = frozenset(event for _, event in TRANSITIONS)


class ClosureType:
    SUBSTANTIVE = "substantive"  # 实质办结
    PARTIAL = "partial"  # 阶段性办结
    PROCEDURAL = "procedural"  # 程序性办结
    CHOICES = [(SUBSTANTIVE, _("实质办结")), (PARTIAL, _("阶段性办结")), (PROCEDURAL, _("程序性办结"))]


class AppealError(DomainError, ValueError):
    """A request the workflow refuses for a reason the caller can fix (code + message)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class IllegalTransition(Conflict):
    """409: the workflow does not allow `event` in `state`; the answer names what it allows."""

    code = "illegal_transition"

    def __init__(self, state: str, event: str) -> None:
        self.state, self.event = state, event
        super().__init__(
            f"不能在“{STATE_LABELS.get(state, state)}”状态下执行“{event}” / "
            f"event {event!r} is not allowed in state {state!r}"
        )
        self.extra = {"state": state, "allowed": allowed_events(state)}


def next_state(state: str, event: str) -> str:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


def allowed_events(state: str) -> list[str]:
    return sorted(event for (s, event) in TRANSITIONS if s == state)
