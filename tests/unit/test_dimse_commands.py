"""PS3.7 6.3.1 / E.1 command set codec: byte-exact fixtures built from the standard, errors."""

from __future__ import annotations

import struct

import pytest

from pacsbox.dimse import (
    CEchoRQ,
    CEchoRSP,
    CFindRSP,
    CStoreRQ,
    CStoreRSP,
    DIMSEError,
    NGetRQ,
    decode_command,
    decode_command_set,
    encode_command,
    encode_command_set,
)

# C-ECHO-RQ, Message ID 1, as DCMTK's echoscu sends it. Implicit VR LE: tag group, tag element,
# 32-bit length, value. Group length 0x38 = 56 = (8 + 18) + 3 * (8 + 2).
ECHO_RQ = bytes.fromhex(
    "0000 0000 04000000 38000000"  # (0000,0000) UL CommandGroupLength 56
    "0000 0200 12000000 312e322e3834302e31303030382e312e3100"  # (0000,0002) UI "1.2.840.10008.1.1\0"
    "0000 0001 02000000 3000"  # (0000,0100) US CommandField 0x0030 C-ECHO-RQ
    "0000 1001 02000000 0100"  # (0000,0110) US MessageID 1
    "0000 0008 02000000 0101"  # (0000,0800) US CommandDataSetType 0x0101: no data set
)

# C-STORE-RSP, success, for CT Image Storage instance 1.2.3.4. Group length 90 = 0x5A
# = (8 + 26) + 4 * (8 + 2) + (8 + 8).
STORE_RSP = bytes.fromhex(
    "0000 0000 04000000 5a000000"
    "0000 0200 1a000000 312e322e3834302e31303030382e352e312e342e312e312e3200"  # 25 chars + NUL
    "0000 0001 02000000 0180"  # CommandField 0x8001 C-STORE-RSP
    "0000 2001 02000000 0500"  # (0000,0120) MessageIDBeingRespondedTo 5
    "0000 0008 02000000 0101"  # no data set
    "0000 0009 02000000 0000"  # (0000,0900) Status 0x0000
    "0000 0010 08000000 312e322e332e3400"  # (0000,1000) AffectedSOPInstanceUID "1.2.3.4\0"
)

# C-FIND-RSP pending (0xFF00) with an identifier following, Study Root FIND.
# Group length 76 = 0x4C = (8 + 28) + 4 * (8 + 2).
FIND_RSP_PENDING = bytes.fromhex(
    "0000 0000 04000000 4c000000"
    "0000 0200 1c000000 312e322e3834302e31303030382e352e312e342e312e322e322e3100"  # 27 + NUL
    "0000 0001 02000000 2080"  # CommandField 0x8020 C-FIND-RSP
    "0000 2001 02000000 0300"  # MessageIDBeingRespondedTo 3
    "0000 0008 02000000 0100"  # CommandDataSetType 0x0001: a data set follows
    "0000 0009 02000000 00ff"  # Status 0xFF00 pending
)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def element(elem: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0, elem, len(value)) + value


def with_group_length(body: bytes) -> bytes:
    return element(0x0000, struct.pack("<I", len(body))) + body


@pytest.mark.parametrize(
    ("message", "encoded"),
    [
        (CEchoRQ(message_id=1), ECHO_RQ),
        (
            CStoreRSP(
                message_id_being_responded_to=5,
                status=0x0000,
                affected_sop_class_uid=CT_IMAGE_STORAGE,
                affected_sop_instance_uid="1.2.3.4",
            ),
            STORE_RSP,
        ),
        (
            CFindRSP(
                message_id_being_responded_to=3,
                status=0xFF00,
                affected_sop_class_uid=STUDY_ROOT_FIND,
                has_dataset=True,
            ),
            FIND_RSP_PENDING,
        ),
    ],
    ids=["C-ECHO-RQ", "C-STORE-RSP", "C-FIND-RSP-pending"],
)
def test_byte_exact(message, encoded):
    assert encode_command(message) == encoded
    assert decode_command(encoded) == message
    assert decode_command(memoryview(encoded)) == message


def test_echo_rsp_as_a_peer_sends_it():
    body = (
        element(0x0002, b"1.2.840.10008.1.1\0")
        + element(0x0100, b"\x30\x80")
        + element(0x0120, b"\x01\x00")
        + element(0x0800, b"\x01\x01")
        + element(0x0900, b"\x00\x00")
    )
    rsp = decode_command(with_group_length(body))
    assert rsp == CEchoRSP(
        message_id_being_responded_to=1, status=0, affected_sop_class_uid="1.2.840.10008.1.1"
    )


@pytest.mark.parametrize("data_set_type", [0x0000, 0x0001, 0x0102, 0xFEFE])
def test_any_data_set_type_but_0101_means_a_data_set(data_set_type):
    encoded = bytearray(FIND_RSP_PENDING)
    encoded[-12:-10] = struct.pack("<H", data_set_type)
    assert decode_command(encoded).has_dataset


def test_group_length_is_computed_and_a_wrong_one_is_tolerated():
    wrong = bytearray(ECHO_RQ)
    wrong[8:12] = struct.pack("<I", 9999)
    assert decode_command(wrong) == CEchoRQ(message_id=1)
    assert decode_command(ECHO_RQ[12:]) == CEchoRQ(message_id=1)  # no group length at all
    assert encode_command_set({0x0000: 1234, 0x0110: 1})[8:12] == struct.pack("<I", 10)


def test_padding_variants_are_stripped():
    body = (
        element(0x0002, b"1.2.840.10008.5.1.4.1.1.2 ")  # a UID padded with a space
        + element(0x0100, b"\x01\x00")
        + element(0x0110, b"\x07\x00")
        + element(0x0700, b"\x00\x00")
        + element(0x0800, b"\x01\x00")
        + element(0x1000, b"1.2\0")
        + element(0x1030, b" STORESCU ")  # AE: leading and trailing spaces not significant
        + element(0x1031, b"\x09\x00")
    )
    rq = decode_command(with_group_length(body))
    assert rq == CStoreRQ(
        message_id=7,
        affected_sop_class_uid=CT_IMAGE_STORAGE,
        affected_sop_instance_uid="1.2",
        move_originator_ae_title="STORESCU",
        move_originator_message_id=9,
    )


def test_strings_are_padded_to_even_length():
    encoded = encode_command(
        CStoreRSP(message_id_being_responded_to=1, status=0xC000, error_comment="bad")
    )
    assert element(0x0902, b"bad ") in encoded
    assert encode_command_set({0x0600: "ABC"}).endswith(element(0x0600, b"ABC "))
    assert encode_command_set({0x0003: "1.2.3"}).endswith(element(0x0003, b"1.2.3\0"))


def test_unknown_and_retired_elements_are_kept_in_extra():
    body = ECHO_RQ[12:] + element(0x0850, b"\x05\x00") + element(0x4000, b"hello ")  # retired
    rq = decode_command(with_group_length(body))
    assert rq.extra == {0x0850: b"\x05\x00", 0x4000: b"hello "}
    assert decode_command(encode_command(rq)) == rq
    assert encode_command(rq) == with_group_length(body)


def test_known_elements_a_message_does_not_define_go_to_extra():
    rsp = CEchoRSP(message_id_being_responded_to=1, status=0, extra={0x1020: 3, 0x0600: "X"})
    back = decode_command(encode_command(rsp))
    assert back.extra == {0x1020: 3, 0x0600: "X"}
    assert back == rsp


def test_empty_at_list_means_all_attributes_present_but_empty():
    rq = NGetRQ(
        message_id=1,
        requested_sop_class_uid="1.2.3",
        requested_sop_instance_uid="4.5.6",
        attribute_identifier_list=(),
    )
    encoded = encode_command(rq)
    assert element(0x1005, b"") in encoded
    assert decode_command(encoded) == rq
    tags = NGetRQ(
        message_id=1,
        requested_sop_class_uid="1.2.3",
        requested_sop_instance_uid="4.5.6",
        attribute_identifier_list=(0x00100010, 0x7FE00010),
    )
    assert element(0x1005, bytes.fromhex("1000 1000 e07f 1000")) in encode_command(tags)


def test_empty_us_is_treated_as_absent():
    body = ECHO_RQ[12:] + element(0x0700, b"")
    assert decode_command_set(body).get(0x0700, "absent") == "absent"


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("buf", "words"),
    [
        (ECHO_RQ[:-1], "beyond the end"),
        (ECHO_RQ + b"\0\0\0", "stray bytes"),
        (ECHO_RQ + struct.pack("<HHI", 0x0008, 0x0016, 2) + b"1\0", "outside group 0000"),
        (ECHO_RQ + element(0x0110, b"\x02\x00"), "appears twice"),
        (with_group_length(element(0x0100, b"\x30")), "not a valid US"),
        (with_group_length(element(0x0901, b"\x10\x00")), "multiple of 4"),
        (with_group_length(element(0x0002, b"1.2\xff\0")), "not a valid UI"),
        (ECHO_RQ[:12] + struct.pack("<HHI", 0, 0x0002, 0xFFFFFFFF), "undefined length"),
        (with_group_length(element(0x0110, b"\x01\x00")), "has no CommandField"),
        (with_group_length(element(0x0100, b"\x99\x09")), "CommandField 2457"),
        (with_group_length(element(0x0100, b"\x30\x00")), "lacks CommandDataSetType"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_decode_errors_say_what_happened(buf, words):
    with pytest.raises(DIMSEError, match=words):
        decode_command(buf)


def test_missing_required_field_is_named_with_its_section():
    body = (
        element(0x0002, b"1.2\0")
        + element(0x0100, b"\x01\x00")
        + element(0x0110, b"\x01\x00")
        + element(0x0800, b"\x01\x00")
    )
    with pytest.raises(DIMSEError) as info:
        decode_command(with_group_length(body))
    assert "C-STORE-RQ lacks AffectedSOPInstanceUID (0000,1000)" in str(info.value)
    assert "PS3.7 9.3.1.1" in str(info.value)


def test_dimse_error_is_a_value_error():
    assert issubclass(DIMSEError, ValueError)


@pytest.mark.parametrize(
    ("elements", "words"),
    [
        ({0x0600: "A" * 17}, "16 characters"),
        ({0x0002: "1.2.é"}, "AffectedSOPClassUID"),
        ({0x0110: 70000}, "MessageID"),
        ({0x0110: "1"}, "MessageID"),
        ({0x00080016: "1.2"}, "group 0000 only"),
    ],
)
def test_encode_errors(elements, words):
    with pytest.raises(DIMSEError, match=words):
        encode_command_set(elements)


def test_error_comment_outside_ascii_is_replaced_not_refused():
    encoded = encode_command_set({0x0902: "fichier réservé"})
    assert decode_command_set(encoded)[0x0902] == "fichier r?serv?"
