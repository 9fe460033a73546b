"""PS3.8 9.3.5 / Annex E: fragmentation into P-DATA-TF PDUs and reassembly into messages."""

from __future__ import annotations

import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pacsbox.dimse import (
    CEchoRQ,
    CEchoRSP,
    CommandReceived,
    CStoreRQ,
    CStoreRSP,
    DatasetComplete,
    DIMSEError,
    MessageAssembler,
    MessageReceived,
    encode_command,
    encode_message,
    fragment,
    fragment_size,
)
from pacsbox.dimse.fragment import READ_SIZE
from pacsbox.ul.pdu import PDV, PDataTF, PDUReader, decode_pdu, encode_pdu

STORE = CStoreRQ(
    message_id=7,
    affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
    affected_sop_instance_uid="1.2.826.0.1.3680043.2.1125.1.99",
)
ECHO = CEchoRQ(message_id=1)


def pattern(n: int) -> bytes:
    """n bytes with a period (251) prime to any fragment size: misordering shows."""
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def events_of(assembler: MessageAssembler, pdus, sink_factory=None) -> list:
    events = []
    for pdu in pdus:
        assembler.feed(pdu)
        while (event := assembler.next_event()) is not None:
            events.append(event)
            if (
                sink_factory is not None
                and isinstance(event, CommandReceived)
                and event.message.has_dataset
            ):
                assembler.set_sink(sink_factory())
    return events


def check_limits(pdus: list[PDataTF], max_pdu: int) -> None:
    size = fragment_size(max_pdu)
    for pdu in pdus:
        assert pdu.pdvs
        assert all(len(pdv.data) <= size for pdv in pdu.pdvs)
        if max_pdu:
            assert sum(6 + len(pdv.data) for pdv in pdu.pdvs) <= max_pdu
            assert len(encode_pdu(pdu)) <= max_pdu + 6  # + PDU type, reserved, length


def check_order(pdus: list[PDataTF], context_id: int, has_dataset: bool) -> None:
    pdvs = [pdv for pdu in pdus for pdv in pdu.pdvs]
    kinds = [pdv.is_command for pdv in pdvs]
    n_command = kinds.count(True)
    assert kinds == [True] * n_command + [False] * (len(pdvs) - n_command)
    assert [pdv.is_last for pdv in pdvs[:n_command]] == [False] * (n_command - 1) + [True]
    data = pdvs[n_command:]
    if has_dataset:
        assert [pdv.is_last for pdv in data] == [False] * (len(data) - 1) + [True]
    else:
        assert data == []
    assert {pdv.context_id for pdv in pdvs} == {context_id}


@st.composite
def sizes(draw):
    max_pdu = draw(st.one_of(st.just(0), st.integers(12, 70000), st.integers(7, 40)))
    frag = fragment_size(max_pdu) if max_pdu else 4096
    n = draw(
        st.one_of(
            st.just(0),
            st.integers(0, 3 * frag + 7),
            st.integers(1, 4).map(lambda k: k * frag),  # exact multiples
            st.integers(0, 100_000),
        )
    )
    if max_pdu and max_pdu < 40:
        n = min(n, 5_000)  # keep tiny-PDU cases quick
    return max_pdu, n


SOURCES = ["bytes", "bytearray", "memoryview", "file", "chunks"]


@settings(max_examples=150, deadline=None)
@given(sizes(), st.sampled_from(SOURCES), st.booleans(), st.integers(1, 255), st.data())
def test_round_trip(max_and_size, source, use_sink, context_id, data):
    max_pdu, n = max_and_size
    payload = pattern(n)
    if source == "bytes":
        dataset = payload
    elif source == "bytearray":
        dataset = bytearray(payload)
    elif source == "memoryview":
        dataset = memoryview(b"xx" + payload + b"yy")[2 : 2 + n]
    elif source == "file":
        dataset = io.BytesIO(payload)
    else:
        cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=6)))
        bounds = [0, *cuts, n]
        dataset = iter([payload[a:b] for a, b in itertools.pairwise(bounds)])

    pdus = list(encode_message(context_id, STORE, dataset, max_pdu))
    check_limits(pdus, max_pdu)
    check_order(pdus, context_id, has_dataset=True)

    sinks: list[io.BytesIO] = []

    def new_sink():
        sinks.append(io.BytesIO())
        return sinks[-1]

    # through the PDU codec too, so reassembly sees memoryviews into received buffers
    received = [decode_pdu(encode_pdu(pdu)) for pdu in pdus]
    events = events_of(MessageAssembler(), received, new_sink if use_sink else None)
    assert events[0] == CommandReceived(context_id, STORE)
    assert len(events) == 2
    if use_sink:
        assert events[1] == DatasetComplete(context_id, STORE, sinks[0], n)
        assert sinks[0].getvalue() == payload
    else:
        assert events[1] == MessageReceived(context_id, STORE, bytearray(payload))
        assert isinstance(events[1].dataset, bytearray)


@given(st.one_of(st.just(0), st.integers(7, 300)))
def test_message_without_data_set(max_pdu):
    pdus = list(encode_message(3, ECHO, None, max_pdu))
    check_limits(pdus, max_pdu)
    check_order(pdus, 3, has_dataset=False)
    events = events_of(MessageAssembler(), pdus)
    assert events == [CommandReceived(3, ECHO), MessageReceived(3, ECHO, None)]


def test_fragments_of_bytes_are_views_not_copies():
    payload = pattern(10_000)
    pdus = list(fragment(1, encode_command(STORE), payload, 4096))
    data_pdvs = [pdv for pdu in pdus for pdv in pdu.pdvs if not pdv.is_command]
    assert all(isinstance(pdv.data, memoryview) and pdv.data.obj is payload for pdv in data_pdvs)
    assert [len(pdv.data) for pdv in data_pdvs] == [4090, 4090, 1820]


def test_small_message_shares_one_pdu_when_it_fits():
    command = encode_command(STORE)
    (pdu,) = fragment(1, command, b"\x08\x00\x16\x00", 16384)
    assert [(p.is_command, p.is_last) for p in pdu.pdvs] == [(True, True), (False, True)]
    assert len(list(fragment(1, command, b"ab", len(command) + 6 + 6 + 1))) == 2


def test_unlimited_pdu_length_sends_bytes_whole():
    payload = pattern(3_000_000)
    pdus = list(fragment(1, encode_command(STORE), payload, 0))
    assert [len(pdv.data) for pdu in pdus for pdv in pdu.pdvs][1:] == [3_000_000]


def test_streamed_data_set_is_read_lazily():
    pulled = []

    def chunks():
        for i in range(1000):
            pulled.append(i)
            yield b"x" * 1000

    pdus = fragment(1, encode_command(STORE), chunks(), 16384)
    first = next(pdus)
    assert first.pdvs[0].is_command
    next(pdus)
    assert len(pulled) < 40  # a few PDUs' worth, not the whole 1 MB
    rest = list(pdus)
    assert sum(len(pdv.data) for pdu in rest for pdv in pdu.pdvs) > 900_000


def test_file_is_read_in_bounded_pieces_and_sliced_to_fragments():
    class Recorder(io.BytesIO):
        sizes: list[int]

        def read(self, size=-1):
            self.sizes.append(size)
            return super().read(size)

    f = Recorder(pattern(600_000))
    f.sizes = []
    pdus = list(fragment(1, encode_command(STORE), f, 16384))
    # large reads (few syscalls), bounded (memory does not grow with the file)
    assert set(f.sizes) == {READ_SIZE}
    check_limits(pdus, 16384)


def test_several_messages_in_a_row():
    rsp = CStoreRSP(message_id_being_responded_to=7, status=0)
    pdus = [
        *encode_message(1, ECHO, None, 100),
        *encode_message(5, STORE, b"abcdef" * 50, 100),
        *encode_message(5, rsp, None, 100),
    ]
    events = events_of(MessageAssembler(), pdus)
    assert events == [
        CommandReceived(1, ECHO),
        MessageReceived(1, ECHO, None),
        CommandReceived(5, STORE),
        MessageReceived(5, STORE, bytearray(b"abcdef" * 50)),
        CommandReceived(5, rsp),
        MessageReceived(5, rsp, None),
    ]


def test_set_sink_mid_data_set_flushes_what_was_accumulated():
    payload = pattern(1000)
    assembler = MessageAssembler()
    pdus = list(encode_message(1, STORE, payload, 206))  # 200-byte fragments
    for pdu in pdus[:3]:
        assembler.feed(pdu)
    events = []
    while (event := assembler.next_event()) is not None:
        events.append(event)
    assert events == [CommandReceived(1, STORE)]
    sink = io.BytesIO()
    assembler.set_sink(sink)  # e.g. spill to a file once a data set turns out large
    assert events_of(assembler, pdus[3:]) == [DatasetComplete(1, STORE, sink, 1000)]
    assert sink.getvalue() == payload
    assert assembler.idle


def test_set_sink_without_a_data_set_is_a_usage_error():
    assembler = MessageAssembler()
    with pytest.raises(RuntimeError, match="after a CommandReceived"):
        assembler.set_sink(io.BytesIO())
    assembler.feed(fragment(1, encode_command(ECHO)).__next__())
    assert isinstance(assembler.next_event(), CommandReceived)
    with pytest.raises(RuntimeError):
        assembler.set_sink(io.BytesIO())


# -- protocol errors ---------------------------------------------------------------------------

COMMAND = encode_command(STORE)


def pdv(data=b"", *, command=False, last=True, context_id=1):
    return PDV(context_id, command, last, data)


@pytest.mark.parametrize(
    ("pdvs", "words"),
    [
        ([pdv(b"\x08\x00")], "with no command before it"),
        (
            [pdv(COMMAND, command=True), pdv(b"ab", last=False), pdv(COMMAND, command=True)],
            "while the data set of C-STORE-RQ (message ID 7) was incomplete",
        ),
        (
            [pdv(COMMAND[:10], command=True, last=False), pdv(COMMAND[10:], command=True, context_id=3)],
            "presentation context 3 in the middle of a command set on presentation context 1",
        ),
        (
            [pdv(COMMAND, command=True), pdv(b"ab", last=False), pdv(b"cd", context_id=3)],
            "in the middle of C-STORE-RQ (message ID 7) on presentation context 1",
        ),
        (
            [pdv(encode_command(ECHO), command=True), pdv(b"\x08\x00")],
            "after C-ECHO-RQ (message ID 1), whose CommandDataSetType (0x0101) says no data set",
        ),
        (
            [pdv(COMMAND[:10], command=True, last=False), pdv(b"ab")],
            "before the last fragment of the command set",
        ),
        ([pdv(b"\x08\x00\x16\x00\x02\x00\x00\x001\x00", command=True)], "outside group 0000"),
    ],
    ids=["data-first", "command-in-data", "mixed-context-command", "mixed-context-data",
         "data-after-no-dataset", "data-in-command", "undecodable-command"],
)  # fmt: skip
def test_protocol_errors(pdvs, words):
    assembler = MessageAssembler()
    assembler.feed(pdvs)
    with pytest.raises(DIMSEError) as info:
        while assembler.next_event() is not None:
            pass
    assert words in str(info.value)


def test_fragment_errors():
    with pytest.raises(DIMSEError, match="leaves no room"):
        fragment_size(6)
    with pytest.raises(DIMSEError, match="has_dataset says a data set follows but none"):
        encode_message(1, STORE, None, 16384)
    with pytest.raises(DIMSEError, match="no data set follows but one was given"):
        encode_message(1, CEchoRSP(message_id_being_responded_to=1, status=0), b"x", 16384)


@settings(max_examples=150, deadline=None)
@given(
    max_pdu=st.sampled_from([0, 12, 100, 4096, 16384]),
    size=st.integers(0, 70_000),
    as_file=st.booleans(),
)
def test_fast_path_buffers_reassemble_to_the_same_message(max_pdu, size, as_file):
    """encode_message_buffers (header bytes + data, one PDV per PDU) carries exactly what
    encode_message does, within the limit, and decodes with the ordinary codec."""
    from pacsbox.dimse import encode_message_buffers

    data = pattern(size)
    source = io.BytesIO(data) if as_file else data
    raw = b"".join(
        b"".join((h, bytes(d))) for h, d in encode_message_buffers(3, STORE, source, max_pdu)
    )
    reader = PDUReader()
    reader.feed(raw)
    pdus = list(reader.pdus())
    check_limits(pdus, max_pdu)
    events = events_of(MessageAssembler(), pdus)
    assert events[-1].message == STORE
    assert bytes(events[-1].dataset) == data
