"""PS3.8 9.3 PDU codec: byte-exact fixtures and hypothesis round trips for every PDU and item."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacsbox.ul.pdu import (
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    PDUError,
    PDUReader,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
    decode_pdu,
    encode_pdu,
)

# The A-ASSOCIATE-AC that DCMTK's dcmqrscp sent in the seed tutorial (echoscu -d, third try).
TUTORIAL_AC = bytes.fromhex(
    "0200000000b80001000041434d455f53544f524520202020202041434d453120"
    "2020202020202020202000000000000000000000000000000000000000000000"
    "0000000000000000000010000015312e322e3834302e31303030382e332e312e"
    "312e31210000190100000040000011312e322e3834302e31303030382e312e32"
    "5000003a51000004000040005200001b312e322e3237362e302e373233303031"
    "302e332e302e332e362e315500000f4f464649535f44434d544b5f333631"
)


def test_tutorial_associate_ac_decodes_and_reencodes_exactly():
    ac = decode_pdu(TUTORIAL_AC)
    assert isinstance(ac, AAssociateAC)
    assert ac.called_ae_title == "ACME_STORE"
    assert ac.calling_ae_title == "ACME1"
    assert ac.presentation_contexts == [PresentationContextAC(1, 0, "1.2.840.10008.1.2")]
    ui = ac.user_information
    assert ui.max_length == 16384
    assert ui.implementation_class_uid == "1.2.276.0.7230010.3.0.3.6.1"
    assert ui.implementation_version_name == "OFFIS_DCMTK_361"
    assert encode_pdu(ac) == TUTORIAL_AC


def test_fixed_length_pdus_are_byte_exact():
    assert encode_pdu(AReleaseRQ()) == bytes.fromhex("05 00 00000004 00000000")
    assert encode_pdu(AReleaseRP()) == bytes.fromhex("06 00 00000004 00000000")
    assert encode_pdu(AAbort(2, 6)) == bytes.fromhex("07 00 00000004 0000 02 06")
    assert encode_pdu(AAssociateRJ(1, 1, 7)) == bytes.fromhex("03 00 00000004 00 01 01 07")


def test_pdata_is_byte_exact():
    pdu = PDataTF([PDV(1, True, True, b"\x01\x02"), PDV(3, False, False, b"")])
    raw = bytes.fromhex("04 00 0000000e 00000004 01 03 0102 00000002 03 00")
    assert encode_pdu(pdu) == raw
    back = decode_pdu(raw)
    assert [(p.context_id, p.is_command, p.is_last, bytes(p.data)) for p in back.pdvs] == [
        (1, True, True, b"\x01\x02"),
        (3, False, False, b""),
    ]


def test_uid_padded_with_nul_is_accepted():
    # PS3.8 Annex F: a receiver accepts a UID padded with a trailing NUL
    padded = encode_pdu(AAssociateRQ("A", "B", [PresentationContextRQ(1, "1.2.3\0", ["1.2"])]))
    assert decode_pdu(padded).presentation_contexts[0].abstract_syntax == "1.2.3"


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x01\x00", "too few"),
        (bytes.fromhex("09 00 00000004 00000000"), "unrecognized PDU type"),
        (bytes.fromhex("05 00 00000005 0000000000"), "fixes it at 4"),
        (bytes.fromhex("04 00 00000006 00000001 0100"), "PDV item length"),
        (bytes.fromhex("04 00 00000000"), "no presentation data value"),
        (bytes.fromhex("05 00 00000008 00000000"), "length field says"),
        (bytes.fromhex("01 00 00000004 00010000"), "shorter than its 68-byte header"),
    ],
)
def test_invalid_pdus_raise_pdu_error(raw, message):
    with pytest.raises(PDUError, match=message):
        decode_pdu(raw)


def test_reader_splits_a_stream_at_any_boundary():
    stream = b"".join(
        encode_pdu(p) for p in (AReleaseRQ(), PDataTF([PDV(1, False, True, b"x" * 50)]), AAbort())
    )
    for cut in range(len(stream) + 1):
        reader = PDUReader()
        reader.feed(stream[:cut])
        got = list(reader.pdus())
        reader.feed(stream[cut:])
        got += list(reader.pdus())
        assert [type(p) for p in got] == [AReleaseRQ, PDataTF, AAbort]
        assert reader.buffered == 0


@given(
    cuts=st.lists(st.integers(0, 400), max_size=6),
    kinds=st.lists(st.sampled_from([bytes, bytearray, memoryview]), min_size=7, max_size=7),
    reads=st.lists(st.booleans(), min_size=7, max_size=7),
)
def test_reader_pdus_stay_intact_whatever_the_chunks_and_their_types(cuts, kinds, reads):
    """Fed as recv returns them (bytes, kept without a copy) or as buffers the caller will
    reuse (copied), read after each feed or not: every PDU handed out keeps its bytes after
    later feeds, and they come in order."""
    pdus = [PDataTF([PDV(1, False, i % 2 == 0, bytes([i]) * (20 + 30 * i))]) for i in range(5)]
    stream = b"".join(encode_pdu(p) for p in pdus)
    bounds = [0, *sorted(min(c, len(stream)) for c in cuts), len(stream)]
    reader, raws = PDUReader(), []
    for (start, end), kind in zip(itertools.pairwise(bounds), kinds, strict=False):
        chunk = kind(stream[start:end])
        reader.feed(chunk)
        if isinstance(chunk, bytearray):
            chunk[:] = b"\xee" * len(chunk)  # the caller reuses its buffer
        while reads[len(raws) % 7] and (item := reader.next_raw()) is not None:
            raws.append(item[1])
    while (item := reader.next_raw()) is not None:
        raws.append(item[1])
    assert [decode_pdu(raw) for raw in raws] == pdus
    assert reader.buffered == 0


def test_a_pdu_across_two_recvs_is_copied_alone_and_the_rest_stay_views():
    """recv's chunks rarely end on a PDU boundary (256 KB reads of 16 KB PDUs): the PDU that
    straddles two of them is joined alone, the later ones are views of the chunk they came
    in, not copied (a 512 KB data set was copied twice more, in and out of a bytearray)."""
    pdus = [PDataTF([PDV(1, False, False, bytes([i]) * 1000)]) for i in range(6)]
    stream = b"".join(encode_pdu(p) for p in pdus)
    cut = len(stream) // 2 + 7  # inside the fourth PDU, past its header
    first, second = stream[:cut], stream[cut:]
    reader, raws = PDUReader(), []
    for chunk in (first, second, first[:3]):
        reader.feed(chunk)
        while (item := reader.next_raw()) is not None:
            raws.append(item[1])
    assert [decode_pdu(raw) for raw in raws] == pdus
    assert [raw.obj is first for raw in raws] == [True] * 3 + [False] * 3
    assert [raw.obj is second for raw in raws] == [False] * 4 + [True] * 2
    assert reader.buffered == 3


def test_reader_fed_twice_before_reading_keeps_the_order():
    pdus = [PDataTF([PDV(1, False, False, bytes([i]) * 100)]) for i in range(3)]
    stream = b"".join(encode_pdu(p) for p in pdus)
    reader = PDUReader()
    for start, end in ((0, 50), (50, 150), (150, 200), (200, len(stream))):
        reader.feed(stream[start:end])  # the second feed joins a PDU; the third comes unread
    assert list(reader.pdus()) == pdus and reader.buffered == 0


def test_reader_refuses_oversize_pdata_before_buffering_it():
    reader = PDUReader(max_pdu_length=1000)
    reader.feed(bytes.fromhex("04 00 ffffffff"))
    with pytest.raises(PDUError, match="exceeds the maximum of 1000"):
        reader.next_raw()


def test_ae_title_too_long_is_a_caller_error():
    with pytest.raises(ValueError, match="longer than 16"):
        encode_pdu(AAssociateRQ("X" * 17, "B", []))


# ---------------------------------------------------------------------------------------------
# hypothesis round trips

uids = st.from_regex(r"\A[12](\.[1-9][0-9]{0,8}){1,12}\Z").filter(lambda u: len(u) <= 64)
ae_titles = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\\"),
    min_size=1,
    max_size=16,
)
u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
small_bytes = st.binary(max_size=40)

role_selections = st.builds(RoleSelection, uids, st.booleans(), st.booleans())
user_information = st.builds(
    UserInformation,
    max_length=st.none() | st.integers(0, 0xFFFFFFFF),
    implementation_class_uid=st.just("") | uids,
    async_ops_window=st.none() | st.tuples(u16, u16),
    role_selections=st.lists(role_selections, max_size=3),
    implementation_version_name=st.none() | st.text("ABCXYZ_0123", min_size=1, max_size=16),
    sop_class_extended=st.lists(
        st.builds(SOPClassExtendedNegotiation, uids, small_bytes), max_size=2
    ),
    sop_class_common_extended=st.lists(
        st.builds(
            SOPClassCommonExtendedNegotiation, uids, uids, st.lists(uids, max_size=3).map(tuple)
        ),
        max_size=2,
    ),
    user_identity_rq=st.none()
    | st.builds(UserIdentityRQ, st.integers(1, 5), st.booleans(), small_bytes, small_bytes),
    user_identity_ac=st.none() | st.builds(UserIdentityAC, small_bytes),
    unknown=st.lists(st.tuples(st.integers(0x5A, 0xFF), small_bytes), max_size=2),
)
contexts_rq = st.lists(
    st.builds(PresentationContextRQ, u8, uids, st.lists(uids, min_size=1, max_size=4)), max_size=5
)
contexts_ac = st.lists(
    st.builds(PresentationContextAC, u8, st.integers(0, 4), st.just("") | uids), max_size=5
)
associate_rq = st.builds(
    AAssociateRQ, ae_titles, ae_titles, contexts_rq, user_information, uids, u16
)
associate_ac = st.builds(
    AAssociateAC, ae_titles, ae_titles, contexts_ac, user_information, uids, u16
)
pdvs = st.builds(PDV, u8, st.booleans(), st.booleans(), st.binary(max_size=300))
pdata = st.builds(PDataTF, st.lists(pdvs, min_size=1, max_size=4))
fixed = (
    st.builds(AAssociateRJ, u8, u8, u8)
    | st.builds(AAbort, u8, u8)
    | st.just(AReleaseRQ())
    | st.just(AReleaseRP())
)


def _plain(pdu):
    """PDVs decode to memoryviews; compare their bytes."""
    if isinstance(pdu, PDataTF):
        return [(p.context_id, p.is_command, p.is_last, bytes(p.data)) for p in pdu.pdvs]
    return pdu


@given(associate_rq | associate_ac | pdata | fixed)
def test_every_pdu_round_trips(pdu):
    raw = encode_pdu(pdu)
    back = decode_pdu(raw)
    assert _plain(back) == _plain(pdu)
    assert encode_pdu(back) == raw


@given(st.binary(max_size=400))
def test_random_bytes_never_raise_anything_but_pdu_error(raw):
    with contextlib.suppress(PDUError):
        decode_pdu(raw)


@given(associate_rq, st.data())
def test_mutated_associate_rq_raises_only_pdu_error(rq, data):
    raw = bytearray(encode_pdu(rq))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(u8)
    with contextlib.suppress(PDUError):
        decode_pdu(bytes(raw))
