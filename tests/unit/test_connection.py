"""Two sans-IO Connections wired back to back in memory: PS3.8 9.2 behaviour end to end."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacsbox.ul.connection import (
    AbortIndication,
    AssociateAccepted,
    AssociateIndication,
    AssociateRejected,
    Connection,
    ConnectionEvent,
    DataIndication,
    LocalProtocolError,
    ProviderAbort,
    ReleaseCollision,
    ReleaseConfirmation,
    ReleaseIndication,
    TransportClosed,
)
from pacsbox.ul.fsm import State
from pacsbox.ul.pdu import (
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AbortReason,
    AbortSource,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    RejectResult,
    RejectSource,
    UserInformation,
    decode_pdu,
    encode_pdu,
)

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"


def make_rq(**kwargs) -> AAssociateRQ:
    return AAssociateRQ(
        called_ae_title="ANY-SCP",
        calling_ae_title="ECHOSCU",
        presentation_contexts=[PresentationContextRQ(1, VERIFICATION, [IMPLICIT_LE])],
        user_information=UserInformation(implementation_class_uid="1.2.3.4"),
        **kwargs,
    )


def make_ac(rq: AAssociateRQ) -> AAssociateAC:
    return AAssociateAC(
        called_ae_title=rq.called_ae_title,
        calling_ae_title=rq.calling_ae_title,
        presentation_contexts=[PresentationContextAC(1, 0, IMPLICIT_LE)],
        user_information=UserInformation(implementation_class_uid="1.2.3.5"),
    )


def pdata(payload: bytes, *, command: bool = False, last: bool = True) -> PDataTF:
    return PDataTF([PDV(1, command, last, payload)])


def wire(conn: Connection) -> bytes:
    return b"".join(bytes(b) for b in conn.data_to_send())


def pump(src: Connection, dst: Connection) -> list[ConnectionEvent]:
    return dst.receive_data(wire(src))


def check_artim_invariant(conn: Connection) -> None:
    # PS3.8 9.2: ARTIM is started on every entry to Sta2/Sta13 and stopped on every exit.
    assert conn.artim_running == (conn.state in (State.STA2, State.STA13))


def associate(req_max: int = 16384, acc_max: int = 16384) -> tuple[Connection, Connection]:
    req = Connection(requestor=True, max_pdu_length=req_max)
    acc = Connection(requestor=False, max_pdu_length=acc_max)
    req.request(make_rq())
    assert req.state is State.STA4 and req.data_to_send() == []
    req.transport_connected()
    acc.transport_connected()
    assert acc.state is State.STA2 and acc.artim_running
    (indication,) = pump(req, acc)
    assert isinstance(indication, AssociateIndication)
    assert acc.state is State.STA3 and not acc.artim_running
    acc.accept(make_ac(indication.rq))
    (accepted,) = pump(acc, req)
    assert isinstance(accepted, AssociateAccepted)
    assert req.state is State.STA6 and acc.state is State.STA6
    return req, acc


# ---------------------------------------------------------------------------------------------
# Normal operation


def test_association_negotiates_max_pdu_length():
    req, acc = associate(req_max=32768, acc_max=0)
    assert req.associate_rq.user_information.max_length == 32768
    assert acc.associate_rq.user_information.max_length == 32768
    assert acc.associate_ac.user_information.max_length == 0
    assert req.associate_ac.user_information.max_length == 0
    assert acc.peer_max_pdu_length == 32768
    assert req.peer_max_pdu_length == 0  # unlimited
    assert not req.should_close and not acc.should_close
    assert req.is_established and acc.is_established
    check_artim_invariant(req)
    check_artim_invariant(acc)


def test_caller_supplied_max_length_is_kept_and_enforced():
    req = Connection(requestor=True, max_pdu_length=16384)
    rq = make_rq()
    rq.user_information.max_length = 100
    req.request(rq)
    assert req.associate_rq is rq and req.max_pdu_length == 100


def test_pdata_both_ways_without_copies():
    req, acc = associate()
    payload = memoryview(b"\x01" * 1000)
    req.send_pdata(pdata(payload, command=True))
    buffers = req.data_to_send()
    assert buffers[-1] is payload  # queued as is, no join
    (ind,) = acc.receive_data(b"".join(bytes(b) for b in buffers))
    assert isinstance(ind, DataIndication)
    (pdv,) = ind.pdu.pdvs
    assert (pdv.context_id, pdv.is_command, pdv.is_last) == (1, True, True)
    assert bytes(pdv.data) == bytes(payload)

    acc.send_pdata(pdata(b"reply", last=False))
    acc.send_pdata(pdata(b"more"))
    events = pump(acc, req)  # two PDUs in one chunk
    assert [bytes(e.pdu.pdvs[0].data) for e in events] == [b"reply", b"more"]


def test_pdus_split_at_every_byte_boundary():
    req, acc = associate()
    req.send_pdata(pdata(b"abcdef"))
    req.release()
    data = wire(req)
    events: list[ConnectionEvent] = []
    for i in range(len(data)):
        events += acc.receive_data(data[i : i + 1])
    assert [type(e) for e in events] == [DataIndication, ReleaseIndication]
    assert bytes(events[0].pdu.pdvs[0].data) == b"abcdef"


def test_release():
    req, acc = associate()
    req.release()
    assert req.state is State.STA7
    (ind,) = pump(req, acc)
    assert isinstance(ind, ReleaseIndication)
    assert acc.state is State.STA8 and acc.awaiting_release_response
    # AR-7 / AR-6: the acceptor may still send P-DATA before answering
    acc.send_pdata(pdata(b"late"))
    acc.release_response()
    assert acc.state is State.STA13 and acc.artim_running and not acc.should_close
    events = pump(acc, req)
    assert [type(e) for e in events] == [DataIndication, ReleaseConfirmation]
    assert req.state is State.STA1 and req.should_close and not req.artim_running
    assert acc.transport_closed() == [TransportClosed(aborted=False)]  # AR-5
    assert acc.state is State.STA1 and acc.should_close and not acc.artim_running
    assert req.transport_closed() == []  # Sta1: we closed it ourselves


@pytest.mark.parametrize("release_first", ["requestor", "acceptor"])
def test_release_collision(release_first: str):
    req, acc = associate()
    req.release()
    acc.release()
    first, second = (req, acc) if release_first == "requestor" else (acc, req)
    # PDUs cross on the wire; deliver them in either order
    first_events = pump(second, first)
    second_events = pump(first, second)
    events = {id(first): first_events, id(second): second_events}
    assert events[id(req)] == [ReleaseCollision(requestor=True)]
    assert events[id(acc)] == [ReleaseCollision(requestor=False)]
    assert req.state is State.STA9 and req.awaiting_release_response
    assert acc.state is State.STA10 and not acc.awaiting_release_response
    with pytest.raises(LocalProtocolError):
        acc.release_response()  # the acceptor waits for the A-RELEASE-RP first
    req.release_response()  # AR-9
    assert req.state is State.STA11
    assert pump(req, acc) == [ReleaseConfirmation()]  # AR-10
    assert acc.state is State.STA12 and acc.awaiting_release_response
    acc.release_response()  # AR-4
    assert acc.state is State.STA13 and acc.artim_running
    assert pump(acc, req) == [ReleaseConfirmation()]  # AR-3
    assert req.state is State.STA1 and req.should_close
    assert acc.transport_closed() == [TransportClosed(aborted=False)]
    assert acc.state is State.STA1


@pytest.mark.parametrize("side", ["requestor", "acceptor"])
def test_abort(side: str):
    req, acc = associate()
    aborter, peer = (req, acc) if side == "requestor" else (acc, req)
    aborter.abort()
    assert aborter.state is State.STA13 and aborter.artim_running
    (ind,) = pump(aborter, peer)
    assert ind == AbortIndication(AbortSource.SERVICE_USER, 0)
    assert peer.state is State.STA1 and peer.should_close
    assert aborter.transport_closed() == [TransportClosed(aborted=False)]
    assert aborter.state is State.STA1


def test_abort_with_provider_source():
    req, acc = associate()
    acc.abort(AbortSource.SERVICE_PROVIDER, AbortReason.UNEXPECTED_PDU_PARAMETER)
    assert pump(acc, req) == [AbortIndication(2, 5)]


def test_abort_while_connecting_just_closes():
    req = Connection(requestor=True)
    req.request(make_rq())
    req.abort()  # Sta4: AA-2
    assert req.state is State.STA1 and req.should_close and req.data_to_send() == []


def test_reject():
    req = Connection(requestor=True)
    acc = Connection(requestor=False)
    req.request(make_rq())
    req.transport_connected()
    acc.transport_connected()
    pump(req, acc)
    rj = AAssociateRJ(RejectResult.REJECTED_PERMANENT, RejectSource.SERVICE_USER, 7)
    acc.reject(rj)
    assert acc.state is State.STA13 and acc.artim_running and not acc.should_close
    assert pump(acc, req) == [AssociateRejected(rj)]
    assert req.state is State.STA1 and req.should_close
    # the requestor closes; had it not, ARTIM would (test_artim_expiry_in_sta13)
    assert acc.transport_closed() == [TransportClosed(aborted=False)]


def test_rq_without_protocol_version_1_is_rejected_by_the_provider():
    req = Connection(requestor=True)
    acc = Connection(requestor=False)
    req.request(make_rq(protocol_version=2))
    req.transport_connected()
    acc.transport_connected()
    starts = acc.artim_starts
    (ev,) = pump(req, acc)
    assert ev == AssociateRejected(AAssociateRJ(1, 2, 2))  # permanent, ACSE, protocol version
    assert acc.state is State.STA13 and acc.artim_running and acc.artim_starts == starts + 1
    (rejected,) = pump(acc, req)
    assert rejected == AssociateRejected(AAssociateRJ(1, 2, 2))


def test_protocol_version_field_is_a_bit_field():
    acc = Connection(requestor=False)
    acc.transport_connected()
    (ev,) = acc.receive_data(encode_pdu(make_rq(protocol_version=0x0003)))
    assert isinstance(ev, AssociateIndication)


# ---------------------------------------------------------------------------------------------
# Protocol errors from the peer


def _abort_on_wire(conn: Connection) -> AAbort:
    pdu = decode_pdu(wire(conn))
    assert isinstance(pdu, AAbort)
    return pdu


def test_garbage_pdu_when_established_is_a_provider_abort():
    req, acc = associate()
    # an A-RELEASE-RQ whose length field is not 4: invalid (Evt19 -> AA-8)
    events = acc.receive_data(b"\x05\x00\x00\x00\x00\x02\x00\x00")
    (ev,) = events
    assert isinstance(ev, ProviderAbort)
    assert ev.reason is AbortReason.INVALID_PDU_PARAMETER_VALUE
    assert "A-RELEASE-RQ" in ev.detail and "4" in ev.detail
    assert _abort_on_wire(acc) == AAbort(AbortSource.SERVICE_PROVIDER, 6)
    assert acc.state is State.STA13 and acc.artim_running and not acc.should_close
    # the rest of the stream cannot be framed any more: ignored
    assert acc.receive_data(encode_pdu(AReleaseRQ())) == []
    assert pump(acc, req) == []
    assert req.receive_data(b"") == []


def test_unrecognized_pdu_type():
    _, acc = associate()
    (ev,) = acc.receive_data(b"\x09\x00\x00\x00\x00\x04\x00\x00\x00\x00")
    assert isinstance(ev, ProviderAbort) and ev.reason is AbortReason.UNRECOGNIZED_PDU
    assert "0x09" in ev.detail
    assert _abort_on_wire(acc) == AAbort(2, 1)


def test_unexpected_pdu_when_established():
    req, _ = associate()
    (ev,) = req.receive_data(encode_pdu(make_ac(make_rq())))  # a second A-ASSOCIATE-AC
    assert ev.reason is AbortReason.UNEXPECTED_PDU
    assert "A-ASSOCIATE-AC" in ev.detail and "Sta6" in ev.detail
    assert _abort_on_wire(req) == AAbort(2, 2)
    assert req.state is State.STA13


def test_pdata_before_association_acceptor_sta2():
    acc = Connection(requestor=False)
    acc.transport_connected()
    starts = acc.artim_starts
    (ev,) = acc.receive_data(encode_pdu(pdata(b"x")))
    assert isinstance(ev, ProviderAbort) and ev.reason is AbortReason.UNEXPECTED_PDU
    assert "P-DATA-TF" in ev.detail and "Sta2" in ev.detail
    # AA-1: A-ABORT with service-user source (PS3.8 Table 9-9), ARTIM restarted
    assert _abort_on_wire(acc) == AAbort(AbortSource.SERVICE_USER, 0)
    assert acc.state is State.STA13 and acc.artim_starts == starts + 1


def test_pdata_before_association_requestor_sta5():
    req = Connection(requestor=True)
    req.request(make_rq())
    req.transport_connected()
    req.data_to_send()
    (ev,) = req.receive_data(encode_pdu(pdata(b"x")))
    assert isinstance(ev, ProviderAbort) and ev.reason is AbortReason.UNEXPECTED_PDU
    assert _abort_on_wire(req) == AAbort(2, 2)
    assert req.state is State.STA13


def test_huge_pdata_before_association_is_refused_from_its_header():
    acc = Connection(requestor=False, max_pdu_length=0)
    acc.transport_connected()
    (ev,) = acc.receive_data(b"\x04\x00\xff\xff\xff\xff")
    assert isinstance(ev, ProviderAbort)
    assert ev.reason is AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_oversize_pdata_is_aborted_and_the_limit_itself_accepted():
    req, acc = associate(acc_max=1000)
    assert req.peer_max_pdu_length == 1000
    # PDU length = 6 (PDV header) + data: exactly at the advertised maximum is fine
    exact = encode_pdu(pdata(b"\x00" * 994))
    assert int.from_bytes(exact[2:6], "big") == 1000
    (ev,) = acc.receive_data(exact)
    assert isinstance(ev, DataIndication)
    (ev,) = acc.receive_data(encode_pdu(pdata(b"\x00" * 995)))
    assert isinstance(ev, ProviderAbort)
    assert ev.reason is AbortReason.INVALID_PDU_PARAMETER_VALUE
    assert "1001" in ev.detail and "1000" in ev.detail
    assert _abort_on_wire(acc) == AAbort(2, 6)
    assert acc.state is State.STA13


def test_sending_more_than_the_peer_accepts_is_a_local_error():
    req, _ = associate(acc_max=1000)
    req.send_pdata(pdata(b"\x00" * 994))
    with pytest.raises(LocalProtocolError, match="1001 bytes exceeds the peer's maximum"):
        req.send_pdata(pdata(b"\x00" * 995))
    assert req.state is State.STA6


def test_sta13_ignores_pdus_and_answers_rq_with_abort():
    _, acc = associate()
    acc.abort()
    acc.data_to_send()
    assert acc.receive_data(encode_pdu(pdata(b"in flight"))) == []  # AA-6
    assert acc.data_to_send() == []
    assert acc.receive_data(encode_pdu(make_rq())) == []  # AA-7
    assert _abort_on_wire(acc) == AAbort(2, 2)
    assert acc.state is State.STA13 and acc.artim_running
    assert acc.receive_data(encode_pdu(AAbort())) == []  # AA-2: just close
    assert acc.state is State.STA1 and acc.should_close and not acc.artim_running


def test_abort_pdu_in_sta2():
    acc = Connection(requestor=False)
    acc.transport_connected()
    assert acc.receive_data(encode_pdu(AAbort(0, 0))) == [AbortIndication(0, 0)]
    assert acc.state is State.STA1 and acc.should_close and not acc.artim_running


def test_input_after_close_is_ignored():
    req, acc = associate()
    acc.abort()
    data = wire(acc) + encode_pdu(pdata(b"x"))
    assert [type(e) for e in req.receive_data(data)] == [AbortIndication]
    assert req.receive_data(encode_pdu(AReleaseRP())) == []
    assert req.state is State.STA1


# ---------------------------------------------------------------------------------------------
# ARTIM and transport closure


def test_artim_expiry_in_sta2():
    acc = Connection(requestor=False)
    acc.transport_connected()
    assert acc.artim_running and acc.artim_starts == 1
    assert acc.artim_expired() == []
    assert acc.state is State.STA1 and acc.should_close and not acc.artim_running
    assert acc.artim_expired() == []  # late callback: no-op
    assert acc.transport_closed() == []


def test_artim_expiry_in_sta13():
    _, acc = associate()
    acc.abort()
    assert acc.state is State.STA13 and acc.artim_running
    assert acc.artim_expired() == []
    assert acc.state is State.STA1 and acc.should_close and not acc.artim_running


def drive_to(state: State) -> Connection:
    """A Connection in ``state``, reached through real traffic with a peer."""
    req = Connection(requestor=True)
    acc = Connection(requestor=False)
    if state is State.STA2:
        acc.transport_connected()
        return acc
    req.request(make_rq())
    if state is State.STA4:
        return req
    req.transport_connected()
    if state is State.STA5:
        return req
    acc.transport_connected()
    (ind,) = pump(req, acc)
    if state is State.STA3:
        return acc
    acc.accept(make_ac(ind.rq))
    pump(acc, req)
    if state is State.STA6:
        return req
    req.release()
    if state is State.STA7:
        return req
    if state is State.STA8:
        pump(req, acc)
        return acc
    acc.release()
    pump(req, acc)
    pump(acc, req)
    if state is State.STA9:
        return req
    if state is State.STA10:
        return acc
    req.release_response()
    if state is State.STA11:
        return req
    pump(req, acc)
    if state is State.STA12:
        return acc
    acc.release_response()
    assert state is State.STA13
    return acc


@pytest.mark.parametrize("state", [s for s in State if s is not State.STA1], ids=lambda s: s.name)
def test_transport_closed_in_each_state(state: State):
    conn = drive_to(state)
    assert conn.state is state
    check_artim_invariant(conn)
    events = conn.transport_closed()
    # AA-5 in Sta2, AR-5 in Sta13: no association is lost; AA-4 elsewhere (A-P-ABORT)
    aborted = state not in (State.STA2, State.STA13)
    assert events == [TransportClosed(aborted=aborted)]
    assert conn.state is State.STA1 and conn.should_close and not conn.artim_running
    assert conn.receive_data(encode_pdu(AReleaseRQ())) == []


# ---------------------------------------------------------------------------------------------
# Local programming errors


def test_send_pdata_in_sta1_is_a_local_error():
    conn = Connection(requestor=True)
    with pytest.raises(LocalProtocolError) as info:
        conn.send_pdata(pdata(b"x"))
    message = str(info.value)
    assert "send_pdata()" in message and "Sta1" in message and "Sta6, Sta8" in message
    assert conn.state is State.STA1 and conn.data_to_send() == []


def test_role_errors_and_reuse():
    req = Connection(requestor=True)
    with pytest.raises(LocalProtocolError, match="association-acceptor"):
        req.accept(make_ac(make_rq()))
    acc = Connection(requestor=False)
    with pytest.raises(LocalProtocolError, match="association-requestor"):
        acc.request(make_rq())
    req.request(make_rq())
    with pytest.raises(LocalProtocolError):
        req.request(make_rq())
    req.transport_closed()  # connect failed: AA-4
    with pytest.raises(LocalProtocolError, match="create a new one"):
        req.request(make_rq())


def test_local_calls_in_wrong_states():
    req, acc = associate()
    with pytest.raises(LocalProtocolError):
        req.release_response()
    with pytest.raises(LocalProtocolError):
        acc.accept(make_ac(make_rq()))
    req.abort()
    with pytest.raises(LocalProtocolError, match="Sta13"):
        req.abort()
    with pytest.raises(LocalProtocolError):
        req.send_pdata(pdata(b"x"))


def test_bad_rq_fails_at_request_time():
    req = Connection(requestor=True)
    with pytest.raises(ValueError, match="longer than 16"):
        req.request(AAssociateRQ("X" * 17, "Y", []))
    assert req.state is State.STA1


# ---------------------------------------------------------------------------------------------
# Peer input never raises (hypothesis)

ALLOWED = (
    AssociateIndication,
    AssociateRejected,
    AbortIndication,
    ProviderAbort,
    TransportClosed,
    DataIndication,
    ReleaseIndication,
    ReleaseCollision,
    ReleaseConfirmation,
    AssociateAccepted,
)


def _valid_stream() -> bytes:
    return b"".join(
        encode_pdu(p)
        for p in (
            make_rq(),
            pdata(b"\x08\x00\x00\x00" * 8, command=True),
            AReleaseRQ(),
            AReleaseRP(),
            AAbort(2, 6),
            make_ac(make_rq()),
            AAssociateRJ(1, 1, 1),
        )
    )


VALID = _valid_stream()


def _feed(conn: Connection, chunks: list[bytes]) -> list[ConnectionEvent]:
    events: list[ConnectionEvent] = []
    for chunk in chunks:
        events += conn.receive_data(chunk)
        check_artim_invariant(conn)
        conn.data_to_send()
    assert all(isinstance(e, ALLOWED) for e in events), events
    return events


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_random_bytes_to_an_acceptor_never_raise(chunks: list[bytes]):
    acc = Connection(requestor=False, max_pdu_length=4096)
    acc.transport_connected()
    events = _feed(acc, chunks)
    if any(isinstance(e, ProviderAbort) for e in events):
        assert acc.state in (State.STA13, State.STA1)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8
    ),
    st.integers(0, len(VALID)),
    st.lists(st.integers(1, 64), max_size=10),
    st.sampled_from(["acceptor in Sta2", "requestor in Sta5"]),
)
def test_mutated_valid_pdus_never_raise(mutations, cut, splits, receiver):
    data = bytearray(VALID)
    for pos, value in mutations:
        data[pos] = value
    data = bytes(data[:cut])
    chunks, pos = [], 0
    for size in splits:
        chunks.append(data[pos : pos + size])
        pos += size
    chunks.append(data[pos:])
    conn = drive_to(State.STA2 if receiver.startswith("acceptor") else State.STA5)
    conn.data_to_send()
    _feed(conn, chunks)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["requestor", "acceptor"]), st.lists(st.binary(max_size=200), max_size=5))
def test_random_bytes_on_an_established_association_never_raise(side, chunks):
    req, acc = associate(req_max=4096, acc_max=4096)
    conn = req if side == "requestor" else acc
    _feed(conn, chunks)
    conn.transport_closed()
    assert conn.state is State.STA1


def test_acceptor_pauses_after_the_rq_until_the_user_decides():
    """An RQ and a P-DATA in one chunk: the P-DATA is processed only after accept()."""
    req = Connection(requestor=True)
    acc = Connection(requestor=False)
    req.request(make_rq())
    req.transport_connected()
    acc.transport_connected()
    rq_bytes = b"".join(bytes(b) for b in req.data_to_send())
    pdata = encode_pdu(PDataTF([PDV(1, True, True, b"\x00")]))
    (ind,) = acc.receive_data(rq_bytes + pdata)
    assert isinstance(ind, AssociateIndication) and acc.state is State.STA3
    acc.accept(make_ac(ind.rq))
    (data,) = acc.receive_data(b"")
    assert isinstance(data, DataIndication) and acc.state is State.STA6
