"""PS3.8 9.2 state machine: Table 9-10 cell by cell, and Tables 9-6 to 9-9 next states."""

from __future__ import annotations

import pytest

from pacsbox.ul.fsm import (
    ACTION_DESCRIPTIONS,
    ACTION_NEXT_STATE,
    CONDITIONAL_NEXT_STATE,
    TRANSITIONS,
    Action,
    Event,
    InvalidTransition,
    State,
    StateMachine,
    StateMachineError,
)

# PS3.8 Table 9-10, written out independently of the module under test ("." = empty cell).
TABLE_9_10 = """
        Sta1 Sta2 Sta3 Sta4 Sta5 Sta6 Sta7 Sta8 Sta9 Sta10 Sta11 Sta12 Sta13
Evt1    AE-1 .    .    .    .    .    .    .    .    .     .     .     .
Evt2    .    .    .    AE-2 .    .    .    .    .    .     .     .     .
Evt3    .    AA-1 AA-8 .    AE-3 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt4    .    AA-1 AA-8 .    AE-4 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt5    AE-5 .    .    .    .    .    .    .    .    .     .     .     .
Evt6    .    AE-6 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-7
Evt7    .    .    AE-7 .    .    .    .    .    .    .     .     .     .
Evt8    .    .    AE-8 .    .    .    .    .    .    .     .     .     .
Evt9    .    .    .    .    .    DT-1 .    AR-7 .    .     .     .     .
Evt10   .    AA-1 AA-8 .    AA-8 DT-2 AR-6 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt11   .    .    .    .    .    AR-1 .    .    .    .     .     .     .
Evt12   .    AA-1 AA-8 .    AA-8 AR-2 AR-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6
Evt13   .    AA-1 AA-8 .    AA-8 AA-8 AR-3 AA-8 AA-8 AR-10 AR-3  AA-8  AA-6
Evt14   .    .    .    .    .    .    .    AR-4 AR-9 .     .     AR-4  .
Evt15   .    .    AA-1 AA-2 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1  AA-1  AA-1  .
Evt16   .    AA-2 AA-3 .    AA-3 AA-3 AA-3 AA-3 AA-3 AA-3  AA-3  AA-3  AA-2
Evt17   .    AA-5 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4  AA-4  AA-4  AR-5
Evt18   .    AA-2 .    .    .    .    .    .    .    .     .     .     AA-2
Evt19   .    AA-1 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-7
"""

# PS3.8 Tables 9-6 to 9-9, "Next state is StaN" (AE-6 and AR-8 are conditional).
NEXT_STATE = {
    "AE-1": 4, "AE-2": 5, "AE-3": 6, "AE-4": 1, "AE-5": 2, "AE-7": 6, "AE-8": 13,
    "DT-1": 6, "DT-2": 6,
    "AR-1": 7, "AR-2": 8, "AR-3": 1, "AR-4": 13, "AR-5": 1, "AR-6": 7, "AR-7": 8,
    "AR-9": 11, "AR-10": 12,
    "AA-1": 13, "AA-2": 1, "AA-3": 1, "AA-4": 1, "AA-5": 1, "AA-6": 13, "AA-7": 13, "AA-8": 13,
}  # fmt: skip


def _parse_table() -> dict[tuple[int, int], str | None]:
    lines = [line.split() for line in TABLE_9_10.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert header == [f"Sta{i}" for i in range(1, 14)]
    cells: dict[tuple[int, int], str | None] = {}
    for row in rows:
        event = int(row[0].removeprefix("Evt"))
        assert len(row) == 14, row
        for state, cell in enumerate(row[1:], start=1):
            cells[state, event] = None if cell == "." else cell
    assert len(rows) == 19
    return cells


EXPECTED = _parse_table()
ALL_CELLS = sorted(EXPECTED)


def _flags_for(action: str) -> list[dict[str, bool]]:
    if action == "AE-6":
        return [{"acceptable": True}, {"acceptable": False}]
    if action == "AR-8":
        return [{"requestor": True}, {"requestor": False}]
    return [{}]


def test_enums_cover_the_standard():
    assert [int(s) for s in State] == list(range(1, 14))
    assert [int(e) for e in Event] == list(range(1, 20))
    assert {a.value for a in Action} == set(NEXT_STATE) | {"AE-6", "AR-8"}
    assert set(ACTION_DESCRIPTIONS) == set(Action)
    assert all(ACTION_DESCRIPTIONS[a] for a in Action)


def test_transitions_match_table_9_10_cell_for_cell():
    actual = {(int(s), int(e)): a.value for (s, e), a in TRANSITIONS.items()}
    expected = {cell: action for cell, action in EXPECTED.items() if action is not None}
    assert actual == expected
    assert len(TRANSITIONS) == 123


def test_next_states_match_tables_9_6_to_9_9():
    assert {a.value: int(s) for a, s in ACTION_NEXT_STATE.items()} == NEXT_STATE
    assert CONDITIONAL_NEXT_STATE == {
        Action.AE_6: ("acceptable", State.STA3, State.STA13),
        Action.AR_8: ("requestor", State.STA9, State.STA10),
    }


@pytest.mark.parametrize(("state", "event"), ALL_CELLS, ids=lambda v: str(v))
def test_every_cell_steps_or_raises(state: int, event: int):
    expected = EXPECTED[state, event]
    if expected is None:
        fsm = StateMachine(State(state))
        with pytest.raises(InvalidTransition) as info:
            fsm.step(Event(event), requestor=True, acceptable=True)
        assert fsm.state == state  # unchanged
        assert isinstance(info.value, StateMachineError)
        assert info.value.state == state and info.value.event == event
        message = str(info.value)
        assert f"Evt{event} " in message and f"Sta{state} " in message
        return
    for flags in _flags_for(expected):
        fsm = StateMachine(State(state))
        action = fsm.step(Event(event), **flags)
        assert action.value == expected
        if expected == "AE-6":
            assert fsm.state == (State.STA3 if flags["acceptable"] else State.STA13)
        elif expected == "AR-8":
            assert fsm.state == (State.STA9 if flags["requestor"] else State.STA10)
        else:
            assert fsm.state == NEXT_STATE[expected]


def test_conditional_actions_need_their_flag():
    fsm = StateMachine(State.STA2)
    with pytest.raises(TypeError, match="acceptable"):
        fsm.step(Event.EVT6)
    assert fsm.state is State.STA2
    fsm = StateMachine(State.STA7)
    with pytest.raises(TypeError, match="requestor"):
        fsm.step(Event.EVT12, acceptable=True)
    assert fsm.state is State.STA7


def test_invalid_transition_message_names_state_and_event_in_words():
    fsm = StateMachine()
    with pytest.raises(InvalidTransition) as info:
        fsm.step(Event.EVT9)
    message = str(info.value)
    assert "P-DATA request primitive" in message
    assert "idle" in message
    assert "Sta6, Sta8" in message  # where Evt9 is allowed


def test_normal_lifecycle_requestor_and_acceptor():
    requestor = StateMachine()
    for event, action, state in [
        (Event.EVT1, Action.AE_1, State.STA4),
        (Event.EVT2, Action.AE_2, State.STA5),
        (Event.EVT3, Action.AE_3, State.STA6),
        (Event.EVT9, Action.DT_1, State.STA6),
        (Event.EVT10, Action.DT_2, State.STA6),
        (Event.EVT11, Action.AR_1, State.STA7),
        (Event.EVT10, Action.AR_6, State.STA7),
        (Event.EVT13, Action.AR_3, State.STA1),
    ]:
        assert requestor.step(event, requestor=True) is action
        assert requestor.state is state
    acceptor = StateMachine()
    for event, action, state in [
        (Event.EVT5, Action.AE_5, State.STA2),
        (Event.EVT6, Action.AE_6, State.STA3),
        (Event.EVT7, Action.AE_7, State.STA6),
        (Event.EVT12, Action.AR_2, State.STA8),
        (Event.EVT9, Action.AR_7, State.STA8),
        (Event.EVT14, Action.AR_4, State.STA13),
        (Event.EVT17, Action.AR_5, State.STA1),
    ]:
        assert acceptor.step(event, requestor=False, acceptable=True) is action
        assert acceptor.state is state


def test_release_collision_both_roles():
    # PS3.8 9.2: both users issue A-RELEASE at once; Sta9/11 requestor, Sta10/12 acceptor.
    req, acc = StateMachine(State.STA6), StateMachine(State.STA6)
    assert req.step(Event.EVT11) is Action.AR_1 and acc.step(Event.EVT11) is Action.AR_1
    assert req.step(Event.EVT12, requestor=True) is Action.AR_8 and req.state is State.STA9
    assert acc.step(Event.EVT12, requestor=False) is Action.AR_8 and acc.state is State.STA10
    assert req.step(Event.EVT14) is Action.AR_9 and req.state is State.STA11
    assert acc.step(Event.EVT13) is Action.AR_10 and acc.state is State.STA12
    assert acc.step(Event.EVT14) is Action.AR_4 and acc.state is State.STA13
    assert req.step(Event.EVT13) is Action.AR_3 and req.state is State.STA1
    assert acc.step(Event.EVT17) is Action.AR_5 and acc.state is State.STA1
