import pytest

from gridgov.appeals.workflow import OPEN_STATES, IllegalTransition, State, allowed_events, next_state


def test_the_main_path():
    path = ["locate", "dispatch", "accept", "start", "resolve", "close"]
    state = State.REGISTERED
    for event in path:
        state = next_state(state, event)
    assert state == State.CLOSED


def test_return_and_arbitration():
    assert next_state(State.DISPATCHED, "return") == State.RETURNED
    assert next_state(State.RETURNED, "reassign") == State.DISPATCHED
    assert next_state(State.RETURNED, "reject_return") == State.DISPATCHED


@pytest.mark.parametrize(
    "state,event",
    [
        (State.REGISTERED, "dispatch"),  # never dispatched before it is located
        (State.CLOSED, "accept"),
        (State.DISPATCHED, "resolve"),  # must be accepted first
        (State.MERGED, "merge"),
        (State.RESOLVED, "return"),
    ],
)
def test_illegal_transitions_are_refused(state, event):
    with pytest.raises(IllegalTransition) as exc:
        next_state(state, event)
    assert state in str(exc.value)


def test_every_open_state_can_be_merged_and_closed_cannot():
    assert all(next_state(s, "merge") == State.MERGED for s in OPEN_STATES)
    assert "merge" not in allowed_events(State.CLOSED)
