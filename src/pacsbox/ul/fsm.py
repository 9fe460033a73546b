"""PS3.8 9.2 — the DICOM Upper Layer state machine, as data.

States (9.2.1), events (9.2.3), actions (9.2.2, Tables 9-6 to 9-9) and the state transition
table (Table 9-10) are plain tables here; ``StateMachine.step`` is one dict lookup. What an
action *does* (send a PDU, issue an indication, start ARTIM) is the job of
``pacsbox.ul.connection``; this module only knows which action a cell names and where it leads.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class State(IntEnum):
    """PS3.8 9.2.1, Tables 9-1 to 9-5."""

    STA1 = 1  # Idle (no association, no transport connection)
    STA2 = 2  # Transport connection open (awaiting A-ASSOCIATE-RQ PDU)
    STA3 = 3  # Awaiting local A-ASSOCIATE response primitive (from local user)
    STA4 = 4  # Awaiting transport connection opening to complete (from local transport service)
    STA5 = 5  # Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU
    STA6 = 6  # Association established and ready for data transfer
    STA7 = 7  # Awaiting A-RELEASE-RP PDU
    STA8 = 8  # Awaiting local A-RELEASE response primitive (from local user)
    STA9 = 9  # Release collision requestor side; awaiting A-RELEASE response (from local user)
    STA10 = 10  # Release collision acceptor side; awaiting A-RELEASE-RP PDU
    STA11 = 11  # Release collision requestor side; awaiting A-RELEASE-RP PDU
    STA12 = 12  # Release collision acceptor side; awaiting local A-RELEASE response primitive
    STA13 = 13  # Awaiting transport connection close indication (association no longer exists)


STATE_DESCRIPTIONS: dict[State, str] = {
    State.STA1: "idle",
    State.STA2: "transport connection open, awaiting A-ASSOCIATE-RQ PDU",
    State.STA3: "awaiting local A-ASSOCIATE response primitive",
    State.STA4: "awaiting transport connection opening to complete",
    State.STA5: "awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU",
    State.STA6: "association established and ready for data transfer",
    State.STA7: "awaiting A-RELEASE-RP PDU",
    State.STA8: "awaiting local A-RELEASE response primitive",
    State.STA9: "release collision requestor side, awaiting local A-RELEASE response",
    State.STA10: "release collision acceptor side, awaiting A-RELEASE-RP PDU",
    State.STA11: "release collision requestor side, awaiting A-RELEASE-RP PDU",
    State.STA12: "release collision acceptor side, awaiting local A-RELEASE response",
    State.STA13: "awaiting transport connection close (association no longer exists)",
}


class Event(IntEnum):
    """PS3.8 9.2.3, the events of Table 9-10 (row labels)."""

    EVT1 = 1  # A-ASSOCIATE request (local user)
    EVT2 = 2  # Transport connect confirmation (local transport service)
    EVT3 = 3  # A-ASSOCIATE-AC PDU (received on transport connection)
    EVT4 = 4  # A-ASSOCIATE-RJ PDU (received on transport connection)
    EVT5 = 5  # Transport connection indication (local transport service)
    EVT6 = 6  # A-ASSOCIATE-RQ PDU (received on transport connection)
    EVT7 = 7  # A-ASSOCIATE response primitive (accept)
    EVT8 = 8  # A-ASSOCIATE response primitive (reject)
    EVT9 = 9  # P-DATA request primitive
    EVT10 = 10  # P-DATA-TF PDU
    EVT11 = 11  # A-RELEASE request primitive
    EVT12 = 12  # A-RELEASE-RQ PDU (received on open transport connection)
    EVT13 = 13  # A-RELEASE-RP PDU (received on transport connection)
    EVT14 = 14  # A-RELEASE response primitive
    EVT15 = 15  # A-ABORT request primitive
    EVT16 = 16  # A-ABORT PDU (received on open transport connection)
    EVT17 = 17  # Transport connection closed indication (local transport service)
    EVT18 = 18  # ARTIM timer expired (association reject/release timer)
    EVT19 = 19  # Unrecognized or invalid PDU received


EVENT_DESCRIPTIONS: dict[Event, str] = {
    Event.EVT1: "A-ASSOCIATE request (local user)",
    Event.EVT2: "transport connect confirmation (local transport service)",
    Event.EVT3: "A-ASSOCIATE-AC PDU received",
    Event.EVT4: "A-ASSOCIATE-RJ PDU received",
    Event.EVT5: "transport connection indication (local transport service)",
    Event.EVT6: "A-ASSOCIATE-RQ PDU received",
    Event.EVT7: "A-ASSOCIATE response primitive (accept)",
    Event.EVT8: "A-ASSOCIATE response primitive (reject)",
    Event.EVT9: "P-DATA request primitive",
    Event.EVT10: "P-DATA-TF PDU received",
    Event.EVT11: "A-RELEASE request primitive",
    Event.EVT12: "A-RELEASE-RQ PDU received",
    Event.EVT13: "A-RELEASE-RP PDU received",
    Event.EVT14: "A-RELEASE response primitive",
    Event.EVT15: "A-ABORT request primitive",
    Event.EVT16: "A-ABORT PDU received",
    Event.EVT17: "transport connection closed indication",
    Event.EVT18: "ARTIM timer expired",
    Event.EVT19: "unrecognized or invalid PDU received",
}


class Action(Enum):
    """PS3.8 9.2.2, Tables 9-6 (AE), 9-7 (DT), 9-8 (AR) and 9-9 (AA)."""

    AE_1 = "AE-1"
    AE_2 = "AE-2"
    AE_3 = "AE-3"
    AE_4 = "AE-4"
    AE_5 = "AE-5"
    AE_6 = "AE-6"
    AE_7 = "AE-7"
    AE_8 = "AE-8"
    DT_1 = "DT-1"
    DT_2 = "DT-2"
    AR_1 = "AR-1"
    AR_2 = "AR-2"
    AR_3 = "AR-3"
    AR_4 = "AR-4"
    AR_5 = "AR-5"
    AR_6 = "AR-6"
    AR_7 = "AR-7"
    AR_8 = "AR-8"
    AR_9 = "AR-9"
    AR_10 = "AR-10"
    AA_1 = "AA-1"
    AA_2 = "AA-2"
    AA_3 = "AA-3"
    AA_4 = "AA-4"
    AA_5 = "AA-5"
    AA_6 = "AA-6"
    AA_7 = "AA-7"
    AA_8 = "AA-8"


ACTION_DESCRIPTIONS: dict[Action, str] = {
    # Table 9-6, association establishment
    Action.AE_1: "Issue TRANSPORT CONNECT request primitive to local transport service",
    Action.AE_2: "Send A-ASSOCIATE-RQ PDU",
    Action.AE_3: "Issue A-ASSOCIATE confirmation (accept) primitive",
    Action.AE_4: "Issue A-ASSOCIATE confirmation (reject) primitive and close transport connection",
    Action.AE_5: "Issue transport connection response primitive; start ARTIM timer",
    Action.AE_6: (
        "Stop ARTIM timer and if A-ASSOCIATE-RQ acceptable by service-provider: issue "
        "A-ASSOCIATE indication primitive; otherwise: issue A-ASSOCIATE-RJ PDU and start "
        "ARTIM timer"
    ),
    Action.AE_7: "Send A-ASSOCIATE-AC PDU",
    Action.AE_8: "Send A-ASSOCIATE-RJ PDU and start ARTIM timer",
    # Table 9-7, data transfer
    Action.DT_1: "Send P-DATA-TF PDU",
    Action.DT_2: "Send P-DATA indication primitive",
    # Table 9-8, association release
    Action.AR_1: "Send A-RELEASE-RQ PDU",
    Action.AR_2: "Issue A-RELEASE indication primitive",
    Action.AR_3: "Issue A-RELEASE confirmation primitive, and close transport connection",
    Action.AR_4: "Issue A-RELEASE-RP PDU and start ARTIM timer",
    Action.AR_5: "Stop ARTIM timer",
    Action.AR_6: "Issue P-DATA indication",
    Action.AR_7: "Issue P-DATA-TF PDU",
    Action.AR_8: "Issue A-RELEASE indication (release collision)",
    Action.AR_9: "Send A-RELEASE-RP PDU",
    Action.AR_10: "Issue A-RELEASE confirmation primitive",
    # Table 9-9, association abort
    Action.AA_1: (
        "Send A-ABORT PDU (service-user source) and start (or restart if already started) "
        "ARTIM timer"
    ),
    Action.AA_2: "Stop ARTIM timer if running. Close transport connection",
    Action.AA_3: (
        "If (service-user initiated abort): issue A-ABORT indication and close transport "
        "connection; otherwise (service-provider initiated abort): issue A-P-ABORT "
        "indication and close transport connection"
    ),
    Action.AA_4: "Issue A-P-ABORT indication primitive",
    Action.AA_5: "Stop ARTIM timer",
    Action.AA_6: "Ignore PDU",
    Action.AA_7: "Send A-ABORT PDU",
    Action.AA_8: (
        "Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, and "
        "start ARTIM timer"
    ),
}

# Tables 9-6 to 9-9, "Next state is ...". AE-6 and AR-8 are conditional: see below.
ACTION_NEXT_STATE: dict[Action, State] = {
    Action.AE_1: State.STA4,
    Action.AE_2: State.STA5,
    Action.AE_3: State.STA6,
    Action.AE_4: State.STA1,
    Action.AE_5: State.STA2,
    Action.AE_7: State.STA6,
    Action.AE_8: State.STA13,
    Action.DT_1: State.STA6,
    Action.DT_2: State.STA6,
    Action.AR_1: State.STA7,
    Action.AR_2: State.STA8,
    Action.AR_3: State.STA1,
    Action.AR_4: State.STA13,
    Action.AR_5: State.STA1,
    Action.AR_6: State.STA7,
    Action.AR_7: State.STA8,
    Action.AR_9: State.STA11,
    Action.AR_10: State.STA12,
    Action.AA_1: State.STA13,
    Action.AA_2: State.STA1,
    Action.AA_3: State.STA1,
    Action.AA_4: State.STA1,
    Action.AA_5: State.STA1,
    Action.AA_6: State.STA13,
    Action.AA_7: State.STA13,
    Action.AA_8: State.STA13,
}

# The two conditional next states, as (flag name, state if flag true, state if flag false):
# AE-6: Sta3 if the A-ASSOCIATE-RQ is acceptable by the service-provider, else Sta13;
# AR-8: Sta9 if this side is the association-requestor, else Sta10.
CONDITIONAL_NEXT_STATE: dict[Action, tuple[str, State, State]] = {
    Action.AE_6: ("acceptable", State.STA3, State.STA13),
    Action.AR_8: ("requestor", State.STA9, State.STA10),
}


# ---------------------------------------------------------------------------------------------
# PS3.8 Table 9-10, one row per event, one column per state (Sta1 .. Sta13); None = empty cell.

_ = None
AE_1, AE_2, AE_3, AE_4, AE_5, AE_6, AE_7, AE_8 = (Action[f"AE_{i}"] for i in range(1, 9))
DT_1, DT_2 = Action.DT_1, Action.DT_2
AR_1, AR_2, AR_3, AR_4, AR_5, AR_6, AR_7, AR_8, AR_9, AR_10 = (
    Action[f"AR_{i}"] for i in range(1, 11)
)
AA_1, AA_2, AA_3, AA_4, AA_5, AA_6, AA_7, AA_8 = (Action[f"AA_{i}"] for i in range(1, 9))

# fmt: off
_TABLE_9_10: dict[Event, tuple[Action | None, ...]] = {
    #            Sta1  Sta2  Sta3  Sta4  Sta5  Sta6  Sta7  Sta8  Sta9  Sta10  Sta11 Sta12 Sta13
    Event.EVT1:  (AE_1, _,    _,    _,    _,    _,    _,    _,    _,    _,     _,    _,    _),
    Event.EVT2:  (_,    _,    _,    AE_2, _,    _,    _,    _,    _,    _,     _,    _,    _),
    Event.EVT3:  (_,    AA_1, AA_8, _,    AE_3, AA_8, AA_8, AA_8, AA_8, AA_8,  AA_8, AA_8, AA_6),
    Event.EVT4:  (_,    AA_1, AA_8, _,    AE_4, AA_8, AA_8, AA_8, AA_8, AA_8,  AA_8, AA_8, AA_6),
    Event.EVT5:  (AE_5, _,    _,    _,    _,    _,    _,    _,    _,    _,     _,    _,    _),
    Event.EVT6:  (_,    AE_6, AA_8, _,    AA_8, AA_8, AA_8, AA_8, AA_8, AA_8,  AA_8, AA_8, AA_7),
    Event.EVT7:  (_,    _,    AE_7, _,    _,    _,    _,    _,    _,    _,     _,    _,    _),
    Event.EVT8:  (_,    _,    AE_8, _,    _,    _,    _,    _,    _,    _,     _,    _,    _),
    Event.EVT9:  (_,    _,    _,    _,    _,    DT_1, _,    AR_7, _,    _,     _,    _,    _),
    Event.EVT10: (_,    AA_1, AA_8, _,    AA_8, DT_2, AR_6, AA_8, AA_8, AA_8,  AA_8, AA_8, AA_6),
    Event.EVT11: (_,    _,    _,    _,    _,    AR_1, _,    _,    _,    _,     _,    _,    _),
    Event.EVT12: (_,    AA_1, AA_8, _,    AA_8, AR_2, AR_8, AA_8, AA_8, AA_8,  AA_8, AA_8, AA_6),
    Event.EVT13: (_,    AA_1, AA_8, _,    AA_8, AA_8, AR_3, AA_8, AA_8, AR_10, AR_3, AA_8, AA_6),
    Event.EVT14: (_,    _,    _,    _,    _,    _,    _,    AR_4, AR_9, _,     _,    AR_4, _),
    Event.EVT15: (_,    _,    AA_1, AA_2, AA_1, AA_1, AA_1, AA_1, AA_1, AA_1,  AA_1, AA_1, _),
    Event.EVT16: (_,    AA_2, AA_3, _,    AA_3, AA_3, AA_3, AA_3, AA_3, AA_3,  AA_3, AA_3, AA_2),
    Event.EVT17: (_,    AA_5, AA_4, AA_4, AA_4, AA_4, AA_4, AA_4, AA_4, AA_4,  AA_4, AA_4, AR_5),
    Event.EVT18: (_,    AA_2, _,    _,    _,    _,    _,    _,    _,    _,     _,    _,    AA_2),
    Event.EVT19: (_,    AA_1, AA_8, _,    AA_8, AA_8, AA_8, AA_8, AA_8, AA_8,  AA_8, AA_8, AA_7),
}
# fmt: on

TRANSITIONS: dict[tuple[State, Event], Action] = {
    (State(column), event): action
    for event, row in _TABLE_9_10.items()
    for column, action in enumerate(row, start=1)
    if action is not None
}

del _, AE_1, AE_2, AE_3, AE_4, AE_5, AE_6, AE_7, AE_8, DT_1, DT_2
del AR_1, AR_2, AR_3, AR_4, AR_5, AR_6, AR_7, AR_8, AR_9, AR_10
del AA_1, AA_2, AA_3, AA_4, AA_5, AA_6, AA_7, AA_8

# Per cell: (action, next state or None when the action's next state is conditional).
_CELLS: dict[tuple[State, Event], tuple[Action, State | None]] = {
    cell: (action, ACTION_NEXT_STATE.get(action)) for cell, action in TRANSITIONS.items()
}


def describe_state(state: State) -> str:
    return f"Sta{int(state)} ({STATE_DESCRIPTIONS[state]})"


def describe_event(event: Event) -> str:
    return f"Evt{int(event)} ({EVENT_DESCRIPTIONS[event]})"


class StateMachineError(Exception):
    """Base of the errors of the Upper Layer state machine."""


class InvalidTransition(StateMachineError):
    """An event arrived in a state whose Table 9-10 cell is empty."""

    def __init__(self, state: State, event: Event) -> None:
        self.state = state
        self.event = event
        valid = [s for s in State if (s, event) in TRANSITIONS]
        where = ", ".join(f"Sta{int(s)}" for s in valid) or "no state"
        super().__init__(
            f"{describe_event(event)} is not valid in {describe_state(state)}; "
            f"PS3.8 Table 9-10 allows it only in {where}"
        )


class StateMachine:
    """The PS3.8 9.2 state machine of one association (one transport connection).

    ``step(event)`` looks up the Table 9-10 cell for (current state, event), moves to the
    action's next state and returns the action; the caller performs the action. For AE-6
    pass ``acceptable`` (is the A-ASSOCIATE-RQ acceptable by the service-provider) and for
    AR-8 pass ``requestor`` (is this side the association-requestor).
    """

    __slots__ = ("state",)

    def __init__(self, state: State = State.STA1) -> None:
        self.state = state

    def step(
        self, event: Event, *, requestor: bool | None = None, acceptable: bool | None = None
    ) -> Action:
        try:
            action, next_state = _CELLS[self.state, event]
        except KeyError:
            raise InvalidTransition(self.state, event) from None
        if next_state is None:
            flag_name, if_true, if_false = CONDITIONAL_NEXT_STATE[action]
            flag = acceptable if flag_name == "acceptable" else requestor
            if flag is None:
                raise TypeError(
                    f"{action.value} in {describe_state(self.state)} has a conditional next "
                    f"state (PS3.8 9.2.2); pass {flag_name}=True or False to step()"
                )
            next_state = if_true if flag else if_false
        self.state = next_state
        return action

    def __repr__(self) -> str:
        return f"StateMachine({describe_state(self.state)})"
