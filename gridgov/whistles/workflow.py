"""The lives of a hotspot, a suggestion, a whistle call and a muster as transition tables.

No database here: services.py applies them through one door per object (hotspot_transition,
suggestion_transition, call_transition, muster_transition), each with a row lock, a history
row (WhistleEvent) and an audit record.
"""

from django.utils.translation import gettext_lazy as _

from gridgov.errors import Conflict


class IllegalTransition(Conflict):
    """409: the workflow of a `kind` does not allow `event` in `state`; the answer names what it allows."""

    code = "illegal_transition"

    def __init__(self, kind: str, state: str, event: str) -> None:
        self.kind, self.state, self.event = kind, state, event
        self.extra = {"state": state, "allowed": allowed_events(kind, state)}
        super().__init__(
            f"{KIND_LABELS.get(kind, kind)}当前为“{LABELS[kind].get(state, state)}”，不能执行“{event}” / "
            f"event {event!r} is not allowed on a {kind} in state {state!r}"
        )


class HotspotState:
    NEW = "new"  # 新发现
    ACKNOWLEDGED = "acknowledged"  # 已关注
    WHISTLED = "whistled"  # 已吹哨
    DISMISSED = "dismissed"  # 已排除（须说明理由）


class SuggestionState:
    PENDING = "pending"
    CONFIRMED = "confirmed"  # the street blew the whistle on it
    DISMISSED = "dismissed"


class CallState:
    BLOWN = "blown"  # 已吹哨: departments summoned
    MUSTERING = "mustering"  # 报到中: at least one department has answered
    ON_SITE = "on_site"  # 现场处置: at least one department is on site
    CLOSED = "closed"  # 已办结
    CANCELLED = "cancelled"  # 已撤销


class MusterState:
    SUMMONED = "summoned"  # 已召集
    ACKNOWLEDGED = "acknowledged"  # 已响应
    CHECKED_IN = "checked_in"  # 已到场报到
    REPORTED = "reported"  # 已反馈处置情况


H, SG, C, M = HotspotState, SuggestionState, CallState, MusterState

HOTSPOT_TRANSITIONS = {
    (H.NEW, "acknowledge"): H.ACKNOWLEDGED,
    (H.NEW, "dismiss"): H.DISMISSED,
    (H.ACKNOWLEDGED, "dismiss"): H.DISMISSED,
    (H.NEW, "whistle"): H.WHISTLED,
    (H.ACKNOWLEDGED, "whistle"): H.WHISTLED,
}
SUGGESTION_TRANSITIONS = {
    (SG.PENDING, "confirm"): SG.CONFIRMED,
    (SG.PENDING, "dismiss"): SG.DISMISSED,
}
CALL_TRANSITIONS = {
    (C.BLOWN, "muster"): C.MUSTERING,  # the first department acknowledges
    (C.BLOWN, "arrive"): C.ON_SITE,  # the first department checks in (without acknowledging first)
    (C.MUSTERING, "arrive"): C.ON_SITE,
    # Solved: on site, or while mustering when the problem was solved before anyone checked in.
    (C.MUSTERING, "close"): C.CLOSED,
    (C.ON_SITE, "close"): C.CLOSED,
    (C.BLOWN, "cancel"): C.CANCELLED,
    (C.MUSTERING, "cancel"): C.CANCELLED,
    (C.ON_SITE, "cancel"): C.CANCELLED,
}
MUSTER_TRANSITIONS = {
    (M.SUMMONED, "acknowledge"): M.ACKNOWLEDGED,
    # Arriving on site answers the summons too: acknowledged_at is set with checked_in_at.
    (M.SUMMONED, "check_in"): M.CHECKED_IN,
    (M.ACKNOWLEDGED, "check_in"): M.CHECKED_IN,
    (M.CHECKED_IN, "report"): M.REPORTED,
}

TABLES = {
    "hotspot": HOTSPOT_TRANSITIONS,
    "suggestion": SUGGESTION_TRANSITIONS,
    "call": CALL_TRANSITIONS,
    "muster": MUSTER_TRANSITIONS,
}

KIND_LABELS = {"hotspot": "热点", "suggestion": "吹哨建议", "call": "吹哨", "muster": "报到"}
LABELS = {
    "hotspot": {H.NEW: _("新发现"), H.ACKNOWLEDGED: _("已关注"), H.WHISTLED: _("已吹哨"), H.DISMISSED: _("已排除")},
    "suggestion": {SG.PENDING: _("待处理"), SG.CONFIRMED: _("已吹哨"), SG.DISMISSED: _("已排除")},
    "call": {
        C.BLOWN: _("已吹哨"),
        C.MUSTERING: _("报到中"),
        C.ON_SITE: _("现场处置"),
        C.CLOSED: _("已办结"),
        C.CANCELLED: _("已撤销"),
    },
    "muster": {
        M.SUMMONED: _("已召集"),
        M.ACKNOWLEDGED: _("已响应"),
        M.CHECKED_IN: _("已到场"),
        M.REPORTED: _("已反馈"),
    },
}

HOTSPOT_OPEN = frozenset({H.NEW, H.ACKNOWLEDGED})
CALL_OPEN = frozenset({C.BLOWN, C.MUSTERING, C.ON_SITE})
CALL_DONE = frozenset({C.CLOSED, C.CANCELLED})
# A muster that has not reached the site yet: what the lateness sweep looks at.
MUSTER_NOT_ARRIVED = frozenset({M.SUMMONED, M.ACKNOWLEDGED})


def next_state(kind: str, state: str, event: str) -> str:
    try:
        return TABLES[kind][(state, event)]
    except KeyError:
        raise IllegalTransition(kind, state, event) from None


def allowed_events(kind: str, state: str) -> list[str]:
    return sorted(event for (s, event) in TABLES[kind] if s == state)


def states(kind: str) -> list[str]:
    return sorted({s for pair in TABLES[kind].items() for s in (pair[0][0], pair[1])})
