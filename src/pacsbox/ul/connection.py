"""One DICOM association endpoint, sans-IO: bytes in -> events out, calls in -> bytes out.

``Connection`` runs the PS3.8 9.2 state machine (``pacsbox.ul.fsm``) for one side of one
association and performs the actions of Tables 9-6 to 9-9. It owns no socket, task or clock:

* the I/O layer feeds received bytes to ``receive_data`` and acts on the returned events;
* local primitives (``request``, ``accept``, ``send_pdata``, ``release`` ...) queue bytes that
  the I/O layer drains with ``data_to_send`` (a list for ``writelines``);
* ``should_close`` says the transport must be closed now, ``transport_closed`` reports that it
  was; ``artim_running`` / ``artim_starts`` tell the I/O layer to (re)start or stop a real
  ARTIM timer (PS3.8 9.1.5), whose expiry it reports with ``artim_expired``.

Peer input never raises: an invalid or unexpected PDU becomes an A-ABORT on the wire and a
``ProviderAbort`` event. Calls the local user may not make in the current state are
programming errors and raise ``LocalProtocolError``.

A typical I/O loop::

    events = conn.receive_data(chunk)          # or transport_closed() / artim_expired()
    ...handle events (accept/reject an AssociateIndication, hand DataIndication to DIMSE)...
    writer.writelines(conn.data_to_send())
    if conn.artim_starts != started: started = conn.artim_starts; (re)start the timer
    elif not conn.artim_running: cancel the timer
    if conn.should_close: writer.close()
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable

from pacsbox.records import record
from pacsbox.ul.fsm import (
    Action,
    Event,
    InvalidTransition,
    State,
    StateMachine,
    StateMachineError,
    describe_event,
    describe_state,
)
from pacsbox.ul.pdu import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AbortReason,
    AbortSource,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    PDUError,
    PDUReader,
    PDUType,
    RejectResult,
    RejectSource,
    UnrecognizedPDUError,
    decode_pdu,
    encode_pdata_buffers,
    encode_pdu,
)

Buffer = bytes | bytearray | memoryview


class LocalProtocolError(StateMachineError):
    """The local user called a primitive that is not allowed now (a programming error)."""


# ---------------------------------------------------------------------------------------------
# Events returned to the user (PS3.8 7: the indication and confirmation primitives)


class ConnectionEvent:
    """Base of the events ``Connection`` returns."""

    __slots__ = ()


@record(frozen=True)
class AssociateIndication(ConnectionEvent):
    """A-ASSOCIATE indication (AE-6, acceptor, Sta3): answer with ``accept`` or ``reject``."""

    rq: AAssociateRQ


@record(frozen=True)
class AssociateAccepted(ConnectionEvent):
    """A-ASSOCIATE confirmation, accept (AE-3, requestor, Sta6)."""

    ac: AAssociateAC


@record(frozen=True)
class AssociateRejected(ConnectionEvent):
    """The association was rejected; ``rj`` says by whom and why.

    On the requestor this is the A-ASSOCIATE confirmation (reject) of AE-4: the peer's RJ.
    On the acceptor it reports the RJ the service provider sent by itself because the
    A-ASSOCIATE-RQ was not acceptable (AE-6, e.g. protocol version 1 not offered).
    """

    rj: AAssociateRJ


@record(frozen=True)
class DataIndication(ConnectionEvent):
    """P-DATA indication (DT-2 in Sta6, AR-6 in Sta7). PDV data are views into the receive
    buffer: copy or consume them before the buffer is needed again."""

    pdu: PDataTF


@record(frozen=True)
class ReleaseIndication(ConnectionEvent):
    """A-RELEASE indication (AR-2, Sta8): finish sending, then call ``release_response``."""


@record(frozen=True)
class ReleaseCollision(ConnectionEvent):
    """A-RELEASE indication during a release collision (AR-8): both sides asked to release.

    The association-requestor (``requestor=True``, Sta9) must answer now with
    ``release_response``. The association-acceptor (Sta10) first waits for the peer's
    A-RELEASE-RP, reported as ``ReleaseConfirmation``, and then calls ``release_response``.
    ``Connection.awaiting_release_response`` is True exactly when that call is due.
    """

    requestor: bool


@record(frozen=True)
class ReleaseConfirmation(ConnectionEvent):
    """A-RELEASE confirmation: the peer's A-RELEASE-RP arrived.

    After AR-3 (Sta7 or Sta11) the association is over and the transport must be closed.
    After AR-10 (acceptor side of a release collision, Sta12) the local user still has to
    call ``release_response``.
    """


@record(frozen=True)
class AbortIndication(ConnectionEvent):
    """The peer sent an A-ABORT PDU (AA-3; AA-2 in Sta2): A-ABORT indication if its source
    is the service user (0), A-P-ABORT indication if the peer's service provider (2)."""

    source: int
    reason: int


@record(frozen=True)
class ProviderAbort(ConnectionEvent):
    """We aborted because of the peer's protocol error (AA-8; AA-1 in Sta2).

    An invalid PDU (Evt19) or a PDU unexpected in the current state: an A-ABORT PDU with
    source service-provider and this ``reason`` is queued, and ``detail`` says what was wrong.
    In Sta2 (before any A-ASSOCIATE-RQ) Table 9-10 applies AA-1 instead, whose A-ABORT has
    service-user source (Table 9-9); ``reason`` and ``detail`` still describe the error.
    """

    reason: AbortReason
    detail: str


@record(frozen=True)
class TransportClosed(ConnectionEvent):
    """The transport connection closed (Evt17).

    ``aborted`` is True when this ended an association (AA-4, an A-P-ABORT indication: data
    in flight may be lost), False when no association existed any more (AR-5 in Sta13) or
    yet (AA-5 in Sta2).
    """

    aborted: bool


# ---------------------------------------------------------------------------------------------

_PDU_EVENTS: dict[int, Event] = {
    PDUType.A_ASSOCIATE_AC: Event.EVT3,
    PDUType.A_ASSOCIATE_RJ: Event.EVT4,
    PDUType.A_ASSOCIATE_RQ: Event.EVT6,
    PDUType.P_DATA_TF: Event.EVT10,
    PDUType.A_RELEASE_RQ: Event.EVT12,
    PDUType.A_RELEASE_RP: Event.EVT13,
    PDUType.A_ABORT: Event.EVT16,
}

_PDU_NAMES: dict[Event, str] = {
    Event.EVT3: "A-ASSOCIATE-AC",
    Event.EVT4: "A-ASSOCIATE-RJ",
    Event.EVT6: "A-ASSOCIATE-RQ",
    Event.EVT10: "P-DATA-TF",
    Event.EVT12: "A-RELEASE-RQ",
    Event.EVT13: "A-RELEASE-RP",
    Event.EVT16: "A-ABORT",
}

_RELEASE_RQ = encode_pdu(AReleaseRQ())
_RELEASE_RP = encode_pdu(AReleaseRP())
_U32 = struct.Struct(">I")

# PS3.8 9.3.4: the RJ of AE-6 when the RQ does not offer protocol version 1.
_PROTOCOL_VERSION_RJ = AAssociateRJ(
    result=RejectResult.REJECTED_PERMANENT,
    source=RejectSource.SERVICE_PROVIDER_ACSE,
    reason=2,  # protocol-version-not-supported
)

# PS3.8 Table 9-9 words AA-1 as "Send A-ABORT PDU (service-user source)", also where Table 9-10
# uses it for a bad PDU in Sta2; the reason field is then not significant (9.3.8).
_AA1_PEER_ERROR_ABORT = encode_pdu(AAbort(AbortSource.SERVICE_USER, 0))

# The states in which the local user owes an A-RELEASE response primitive (Evt14).
_RELEASE_RESPONSE_STATES = frozenset((State.STA8, State.STA9, State.STA12))

# Before the association is established only A-ASSOCIATE/A-RELEASE/A-ABORT PDUs are expected;
# cap an early P-DATA-TF at this when the configured receive limit is 0 (unlimited).
_PRE_ASSOCIATION_PDATA_CAP = PDUReader.MAX_ASSOCIATE_LENGTH


class Connection:
    """One side of one association: the PS3.8 9.2 state machine plus its actions, sans-IO.

    ``requestor`` chooses the role (association-requestor or -acceptor). ``max_pdu_length``
    is our receive limit for P-DATA-TF PDUs (the PDU length field, PS3.8 D.1; 0 = unlimited);
    it is advertised in the A-ASSOCIATE-RQ/AC we send when their user information leaves
    ``max_length`` unset. If the caller sets ``max_length`` there, that advertised value is
    the limit we enforce.
    """

    def __init__(self, *, requestor: bool, max_pdu_length: int = 16384) -> None:
        if max_pdu_length < 0:
            raise ValueError(f"max_pdu_length must be >= 0 (0 = unlimited), not {max_pdu_length}")
        self.requestor = requestor
        self.max_pdu_length = max_pdu_length
        self.peer_max_pdu_length = 0  # from the peer's maximum length sub-item; 0 = unlimited
        self.associate_rq: AAssociateRQ | None = None
        self.associate_ac: AAssociateAC | None = None
        self._fsm = StateMachine()
        self._reader = PDUReader(max_pdu_length or _PRE_ASSOCIATION_PDATA_CAP)
        self._out: list[Buffer] = []
        self._artim = False
        self._artim_starts = 0
        self._started = False  # left the initial Sta1: reaching Sta1 again means "close"
        self._input_closed = False  # stream framing lost or transport gone: ignore input
        self._rq_bytes = b""  # the A-ASSOCIATE-RQ, encoded by request(), sent by AE-2
        self._error: tuple[AbortReason, str] = (AbortReason.NOT_SPECIFIED, "")

    # -- observable state -----------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._fsm.state

    @property
    def artim_running(self) -> bool:
        """True while the ARTIM timer must run (PS3.8 9.1.5; in Sta2 and Sta13)."""
        return self._artim

    @property
    def artim_starts(self) -> int:
        """How often ARTIM was started or restarted; a change means "(re)start it now"."""
        return self._artim_starts

    @property
    def should_close(self) -> bool:
        """The transport connection must be closed now (AE-4, AR-3, AA-2, AA-3; or it was)."""
        return self._started and self._fsm.state is State.STA1

    @property
    def awaiting_release_response(self) -> bool:
        """The local user must call ``release_response`` (Sta8, Sta9, Sta12)."""
        return self._fsm.state in _RELEASE_RESPONSE_STATES

    @property
    def is_established(self) -> bool:
        """The association is established and P-DATA may be sent (Sta6, or Sta8 via AR-7)."""
        return self._fsm.state is State.STA6 or self._fsm.state is State.STA8

    def data_to_send(self) -> list[Buffer]:
        """Drain the queued outgoing buffers, in order (for ``writelines``)."""
        out, self._out = self._out, []
        return out

    def __repr__(self) -> str:
        role = "requestor" if self.requestor else "acceptor"
        return f"<Connection {role} {describe_state(self._fsm.state)}>"

    # -- local primitives (raise LocalProtocolError when not allowed) ---------------------

    def request(self, rq: AAssociateRQ) -> None:
        """A-ASSOCIATE request (Evt1, AE-1): the caller must now open the transport
        connection and call ``transport_connected`` (or ``transport_closed`` if it fails)."""
        self._require_role("request", requestor=True)
        rq = self._advertise(rq)
        encoded = encode_pdu(rq)  # encode now: a bad RQ fails here, not at AE-2
        self._local("request", Event.EVT1, None)
        self.associate_rq = rq
        self._rq_bytes = encoded
        self.max_pdu_length = rq.user_information.max_length or 0

    def transport_connected(self) -> None:
        """Requestor: transport connect confirmation (Evt2, AE-2 queues the A-ASSOCIATE-RQ).
        Acceptor: transport connection indication (Evt5, AE-5 starts ARTIM)."""
        if self.requestor:
            self._local("transport_connected", Event.EVT2, self._rq_bytes)
        else:
            self._local("transport_connected", Event.EVT5, None)

    def accept(self, ac: AAssociateAC) -> None:
        """A-ASSOCIATE response, accept (Evt7, AE-7): queue the A-ASSOCIATE-AC."""
        self._require_role("accept", requestor=False)
        ac = self._advertise(ac)
        encoded = encode_pdu(ac)
        self._local("accept", Event.EVT7, (ac, encoded))

    def reject(self, rj: AAssociateRJ) -> None:
        """A-ASSOCIATE response, reject (Evt8, AE-8): queue the A-ASSOCIATE-RJ and start
        ARTIM; the peer should close the transport (or ARTIM expires)."""
        self._require_role("reject", requestor=False)
        self._local("reject", Event.EVT8, encode_pdu(rj))

    def send_pdata(self, pdu: PDataTF) -> None:
        """P-DATA request (Evt9; DT-1 in Sta6, AR-7 in Sta8): queue the P-DATA-TF buffers."""
        buffers = encode_pdata_buffers(pdu)
        limit = self.peer_max_pdu_length
        if limit and (length := _U32.unpack_from(buffers[0], 2)[0]) > limit:  # PDU length field
            raise LocalProtocolError(
                f"send_pdata(): a P-DATA-TF PDU of {length} bytes exceeds the peer's maximum "
                f"PDU length of {limit} (PS3.8 D.1); fragment the message into PDVs that fit"
            )
        self._local("send_pdata", Event.EVT9, buffers)

    def send_pdata_buffers(self, buffers: list[Buffer]) -> None:
        """P-DATA request for P-DATA-TF PDUs the caller has encoded (the sending fast path):
        one state check for the batch. Each PDU must fit the peer's maximum PDU length."""
        self._local("send_pdata", Event.EVT9, buffers)

    def release(self) -> None:
        """A-RELEASE request (Evt11, AR-1): queue the A-RELEASE-RQ."""
        self._local("release", Event.EVT11, None)

    def release_response(self) -> None:
        """A-RELEASE response (Evt14): AR-4 in Sta8/Sta12 (queue A-RELEASE-RP, start ARTIM),
        AR-9 in Sta9 (release collision, requestor side)."""
        self._local("release_response", Event.EVT14, None)

    def abort(self, source: AbortSource | int = AbortSource.SERVICE_USER, reason: int = 0) -> None:
        """A-ABORT request (Evt15): AA-1 queues an A-ABORT PDU and starts ARTIM; in Sta4
        (transport still connecting) AA-2 just closes."""
        self._local("abort", Event.EVT15, encode_pdu(AAbort(source, reason)))

    # -- transport and timer indications ---------------------------------------------------

    def transport_closed(self) -> list[ConnectionEvent]:
        """Transport connection closed indication (Evt17).

        In Sta1 (we closed it ourselves, or it never opened) this is a no-op: Table 9-10 has
        no Evt17 cell there because no transport exists in Sta1.
        """
        events: list[ConnectionEvent] = []
        self._input_closed = True
        if self._fsm.state is not State.STA1:
            self._run(Event.EVT17, None, events)
        return events

    def artim_expired(self) -> list[ConnectionEvent]:
        """ARTIM timer expired (Evt18; AA-2 in Sta2 and Sta13: the transport must be closed).

        A no-op when the timer is not running (a late timer callback after it was stopped).
        """
        events: list[ConnectionEvent] = []
        if self._artim:
            self._run(Event.EVT18, None, events)
        return events

    # -- peer input (never raises) ------------------------------------------------------------

    def receive_data(self, data: Buffer) -> list[ConnectionEvent]:
        """Feed bytes received from the peer; return the events they complete, in order.

        Processing pauses after an ``AssociateIndication``: call ``accept`` or ``reject``,
        then ``receive_data(b"")`` to go on with whatever the peer sent after its RQ.
        """
        events: list[ConnectionEvent] = []
        if self._input_closed:
            return events
        reader = self._reader
        if data:
            reader.feed(data)
        while True:
            try:
                item = reader.next_raw()
                if item is None:
                    break
                pdu_type, raw = item
                event = _PDU_EVENTS[pdu_type]  # PDUReader has refused unknown types
                pdu = decode_pdu(raw)
            except UnrecognizedPDUError as exc:
                self._invalid_pdu(AbortReason.UNRECOGNIZED_PDU, str(exc), events)
                break
            except PDUError as exc:
                self._invalid_pdu(AbortReason.INVALID_PDU_PARAMETER_VALUE, str(exc), events)
                break
            self._run(event, pdu, events)
            if self._fsm.state is State.STA3:
                # the user must accept or reject before later PDUs mean anything; they stay
                # buffered until the next receive_data call (b"" will do)
                break
            if self._fsm.state is State.STA1:  # the transport is being closed: drop the rest
                self._input_closed = True
                break
        return events

    # -- internals --------------------------------------------------------------------------

    def _invalid_pdu(self, reason: AbortReason, detail: str, events: list) -> None:
        # Evt19. The byte stream cannot be re-synchronized after a bad PDU: ignore the rest.
        self._input_closed = True
        self._error = (reason, detail)
        self._run(Event.EVT19, None, events)

    def _run(self, event: Event, arg: object, events: list) -> None:
        fsm = self._fsm
        prev = fsm.state
        # AE-6: "acceptable by the service-provider" = the RQ offers protocol version 1, i.e.
        # bit 0 of the version field is set (PS3.8 9.3.2: the only bit a receiver tests).
        acceptable = bool(arg.protocol_version & 1) if event is Event.EVT6 else None
        try:
            action = fsm.step(event, requestor=self.requestor, acceptable=acceptable)
        except InvalidTransition:
            # Only peer PDUs reach here (local calls are checked first): Table 9-10 has no
            # PDU cells in Sta1 and Sta4, where no transport connection carries data.
            return
        self._started = True
        _ACTIONS[action](self, event, arg, prev, events)

    def _local(self, method: str, event: Event, arg: object) -> None:
        if self._started and self._fsm.state is State.STA1:
            raise LocalProtocolError(
                f"{method}(): this association has ended (Sta1, transport closed); a "
                "Connection serves one association, create a new one"
            )
        prev = self._fsm.state
        try:
            action = self._fsm.step(event, requestor=self.requestor)
        except InvalidTransition as exc:
            raise LocalProtocolError(f"{method}() is not allowed now: {exc}") from None
        self._started = True
        _ACTIONS[action](self, event, arg, prev, [])

    def _require_role(self, method: str, *, requestor: bool) -> None:
        if self.requestor != requestor:
            role = "association-requestor" if requestor else "association-acceptor"
            raise LocalProtocolError(
                f"{method}() is a primitive of the {role}; this Connection was created with "
                f"requestor={self.requestor}"
            )

    def _advertise(self, pdu):  # AAssociateRQ | AAssociateAC -> same type
        """A copy of ``pdu`` whose maximum length sub-item is ours, unless the caller set one."""
        ui = pdu.user_information
        if ui.max_length is not None:
            return pdu
        return dataclasses.replace(
            pdu, user_information=dataclasses.replace(ui, max_length=self.max_pdu_length)
        )

    def _start_artim(self) -> None:
        self._artim = True
        self._artim_starts += 1

    def _established(self, peer_max: int | None) -> None:
        # PS3.8 D.1: from now on P-DATA-TF PDUs are bounded by what we advertised.
        self.peer_max_pdu_length = peer_max or 0
        self._reader.max_pdu_length = self.max_pdu_length

    def _unexpected(self, event: Event, prev: State) -> tuple[AbortReason, str]:
        if event is Event.EVT19:
            return self._error
        return (
            AbortReason.UNEXPECTED_PDU,
            f"unexpected {_PDU_NAMES.get(event, describe_event(event))} PDU in "
            f"{describe_state(prev)}",
        )

    # -- the actions of PS3.8 Tables 9-6 to 9-9 -------------------------------------------
    # Each takes (event, arg, state before the event, events list). ``arg`` is the received
    # PDU for peer events and the encoded outgoing PDU for local primitives.

    def _ae_1(self, event, arg, prev, events) -> None:
        pass  # the I/O layer opens the transport connection (TRANSPORT CONNECT request)

    def _ae_2(self, event, arg, prev, events) -> None:
        self._out.append(arg)

    def _ae_3(self, event, ac, prev, events) -> None:
        self.associate_ac = ac
        self._established(ac.user_information.max_length)
        events.append(AssociateAccepted(ac))

    def _ae_4(self, event, rj, prev, events) -> None:
        events.append(AssociateRejected(rj))  # and close the transport (should_close)

    def _ae_5(self, event, arg, prev, events) -> None:
        self._start_artim()

    def _ae_6(self, event, rq, prev, events) -> None:
        self._artim = False
        self.associate_rq = rq
        if self._fsm.state is State.STA3:  # acceptable by the service-provider
            self.peer_max_pdu_length = rq.user_information.max_length or 0
            events.append(AssociateIndication(rq))
        else:
            self._out.append(encode_pdu(_PROTOCOL_VERSION_RJ))
            self._start_artim()
            events.append(AssociateRejected(_PROTOCOL_VERSION_RJ))

    def _ae_7(self, event, arg, prev, events) -> None:
        ac, encoded = arg
        self.associate_ac = ac
        self.max_pdu_length = ac.user_information.max_length or 0
        self._out.append(encoded)
        assert self.associate_rq is not None  # AE-6 stored it on the way to Sta3
        self._established(self.associate_rq.user_information.max_length)

    def _ae_8(self, event, arg, prev, events) -> None:
        self._out.append(arg)
        self._start_artim()

    def _dt_1(self, event, buffers, prev, events) -> None:  # also AR-7
        self._out.extend(buffers)

    def _dt_2(self, event, pdu, prev, events) -> None:  # also AR-6
        events.append(DataIndication(pdu))

    def _ar_1(self, event, arg, prev, events) -> None:
        self._out.append(_RELEASE_RQ)

    def _ar_2(self, event, arg, prev, events) -> None:
        events.append(ReleaseIndication())

    def _ar_3(self, event, arg, prev, events) -> None:
        events.append(ReleaseConfirmation())  # and close the transport (should_close)

    def _ar_4(self, event, arg, prev, events) -> None:
        self._out.append(_RELEASE_RP)
        self._start_artim()

    def _ar_5(self, event, arg, prev, events) -> None:
        self._artim = False
        events.append(TransportClosed(aborted=False))

    def _ar_8(self, event, arg, prev, events) -> None:
        events.append(ReleaseCollision(requestor=self.requestor))

    def _ar_9(self, event, arg, prev, events) -> None:
        self._out.append(_RELEASE_RP)

    def _ar_10(self, event, arg, prev, events) -> None:
        events.append(ReleaseConfirmation())

    def _aa_1(self, event, arg, prev, events) -> None:
        if event is Event.EVT15:  # the local user's A-ABORT request
            self._out.append(arg)
        else:  # a bad or unexpected PDU in Sta2
            self._out.append(_AA1_PEER_ERROR_ABORT)
            events.append(ProviderAbort(*self._unexpected(event, prev)))
        self._start_artim()

    def _aa_2(self, event, abort, prev, events) -> None:
        self._artim = False  # and close the transport (should_close)
        if event is Event.EVT16 and prev is State.STA2:
            events.append(AbortIndication(abort.source, abort.reason))

    def _aa_3(self, event, abort, prev, events) -> None:
        events.append(AbortIndication(abort.source, abort.reason))  # and close (should_close)

    def _aa_4(self, event, arg, prev, events) -> None:
        events.append(TransportClosed(aborted=True))

    def _aa_5(self, event, arg, prev, events) -> None:
        self._artim = False
        events.append(TransportClosed(aborted=False))

    def _aa_6(self, event, arg, prev, events) -> None:
        pass  # Sta13: the association is gone; ignore the PDU

    def _aa_7(self, event, arg, prev, events) -> None:
        # Sta13: answer an A-ASSOCIATE-RQ or a bad PDU with an A-ABORT; ARTIM keeps running.
        reason, _ = self._unexpected(event, prev)
        self._out.append(encode_pdu(AAbort(AbortSource.SERVICE_PROVIDER, reason)))

    def _aa_8(self, event, arg, prev, events) -> None:
        reason, detail = self._unexpected(event, prev)
        self._out.append(encode_pdu(AAbort(AbortSource.SERVICE_PROVIDER, reason)))
        self._start_artim()
        events.append(ProviderAbort(reason, detail))


_ACTIONS: dict[Action, Callable[..., None]] = {
    Action.AE_1: Connection._ae_1,
    Action.AE_2: Connection._ae_2,
    Action.AE_3: Connection._ae_3,
    Action.AE_4: Connection._ae_4,
    Action.AE_5: Connection._ae_5,
    Action.AE_6: Connection._ae_6,
    Action.AE_7: Connection._ae_7,
    Action.AE_8: Connection._ae_8,
    Action.DT_1: Connection._dt_1,
    Action.DT_2: Connection._dt_2,
    Action.AR_1: Connection._ar_1,
    Action.AR_2: Connection._ar_2,
    Action.AR_3: Connection._ar_3,
    Action.AR_4: Connection._ar_4,
    Action.AR_5: Connection._ar_5,
    Action.AR_6: Connection._dt_2,  # P-DATA indication while awaiting A-RELEASE-RP
    Action.AR_7: Connection._dt_1,  # P-DATA-TF while awaiting the local A-RELEASE response
    Action.AR_8: Connection._ar_8,
    Action.AR_9: Connection._ar_9,
    Action.AR_10: Connection._ar_10,
    Action.AA_1: Connection._aa_1,
    Action.AA_2: Connection._aa_2,
    Action.AA_3: Connection._aa_3,
    Action.AA_4: Connection._aa_4,
    Action.AA_5: Connection._aa_5,
    Action.AA_6: Connection._aa_6,
    Action.AA_7: Connection._aa_7,
    Action.AA_8: Connection._aa_8,
}
