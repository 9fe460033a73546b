"""PS3.7 9.3 / 10.3 messages: hypothesis round trips for every message, checked against pydicom."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.multival import MultiValue

from pacsbox.dimse import (
    COMMAND_ELEMENTS,
    DATASET_PRESENT,
    MESSAGE_NAMES,
    MESSAGE_TYPES,
    NO_DATASET,
    CEchoRQ,
    CMoveRQ,
    CStoreRQ,
    CStoreRSP,
    DIMSEError,
    NActionRQ,
    Priority,
    decode_command,
    encode_command,
    message_name,
)
from pacsbox.dimse.messages import FIELD_TAGS, _encode_command_general

UIDS = st.from_regex(r"[1-9][0-9]{0,8}(\.(0|[1-9][0-9]{0,8})){1,7}", fullmatch=True)
_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\")


def _text(max_size: int) -> st.SearchStrategy[str]:
    # PS3.5 6.2: leading and trailing spaces of AE and LO are not significant
    return st.text(_PRINTABLE, min_size=1, max_size=max_size).filter(lambda s: s == s.strip())


BY_VR = {
    "UI": UIDS,
    "AE": _text(16),
    "LO": _text(64),
    "US": st.integers(0, 0xFFFF),
    "AT": st.lists(st.integers(0, 0xFFFF_FFFF), max_size=4).map(tuple),
}


def message_strategy(cls) -> st.SearchStrategy:
    kwargs = {"has_dataset": st.booleans()}
    for f in dataclasses.fields(cls):
        if f.name not in FIELD_TAGS:
            continue
        value = BY_VR[COMMAND_ELEMENTS[FIELD_TAGS[f.name]][1]]
        # None is "absent" only for fields that default to None; mandatory ones with a
        # default (Priority, C-ECHO's SOP class) are always sent
        kwargs[f.name] = st.none() | value if f.default is None else value
    return st.builds(cls, **kwargs)


ALL_TYPES = list(MESSAGE_NAMES)


def test_command_field_table():
    # PS3.7 E.1 values
    expected = {
        "C-STORE-RQ": 0x0001, "C-STORE-RSP": 0x8001, "C-GET-RQ": 0x0010, "C-GET-RSP": 0x8010,
        "C-FIND-RQ": 0x0020, "C-FIND-RSP": 0x8020, "C-MOVE-RQ": 0x0021, "C-MOVE-RSP": 0x8021,
        "C-ECHO-RQ": 0x0030, "C-ECHO-RSP": 0x8030, "N-EVENT-REPORT-RQ": 0x0100,
        "N-EVENT-REPORT-RSP": 0x8100, "N-GET-RQ": 0x0110, "N-GET-RSP": 0x8110,
        "N-SET-RQ": 0x0120, "N-SET-RSP": 0x8120, "N-ACTION-RQ": 0x0130, "N-ACTION-RSP": 0x8130,
        "N-CREATE-RQ": 0x0140, "N-CREATE-RSP": 0x8140, "N-DELETE-RQ": 0x0150,
        "N-DELETE-RSP": 0x8150, "C-CANCEL-RQ": 0x0FFF,
    }  # fmt: skip
    assert {message_name(cls): cls.command_field for cls in ALL_TYPES} == expected
    assert all(MESSAGE_TYPES[cls.command_field] is cls for cls in ALL_TYPES)
    assert message_name(CEchoRQ(message_id=1)) == "C-ECHO-RQ"


def _pydicom_values(encoded: bytes):
    ds = read_dataset(DicomBytesIO(encoded), is_implicit_VR=True, is_little_endian=True)
    return ds, {elem.tag: elem.value for elem in ds}


def _normalize(value):
    if isinstance(value, MultiValue | list):
        return tuple(int(v) for v in value)
    return value


def check_against_pydicom(msg) -> None:
    encoded = encode_command(msg)
    ds, values = _pydicom_values(encoded)
    assert ds.CommandGroupLength == len(encoded) - 12
    assert ds.CommandField == msg.command_field
    assert ds.CommandDataSetType == (DATASET_PRESENT if msg.has_dataset else NO_DATASET)
    expected_tags = {0x0000, 0x0100, 0x0800}
    for f in dataclasses.fields(msg):
        tag = FIELD_TAGS.get(f.name)
        value = getattr(msg, f.name)
        if tag is None or value is None:
            continue
        expected_tags.add(tag)
        got = values[tag]
        if COMMAND_ELEMENTS[tag][1] == "AT":
            got = (
                ()
                if got in (None, "", b"")
                else _normalize(got)
                if isinstance(got, MultiValue | list)
                else (int(got),)
            )
        assert got == value, (f.name, got, value)
    assert set(values) == expected_tags
    assert list(values) == sorted(values)  # PS3.5 7.1: ascending tag order


@pytest.mark.parametrize("cls", ALL_TYPES, ids=lambda c: MESSAGE_NAMES[c])
@given(data=st.data())
def test_round_trip_and_pydicom_agree(cls, data):
    msg = data.draw(message_strategy(cls))
    encoded = encode_command(msg)
    assert len(encoded) % 2 == 0
    assert decode_command(encoded) == msg
    assert decode_command(memoryview(bytearray(encoded))) == msg
    check_against_pydicom(msg)


@pytest.mark.parametrize("cls", ALL_TYPES, ids=lambda c: MESSAGE_NAMES[c])
@given(data=st.data())
def test_planned_encoding_is_the_general_one(cls, data):
    """encode_command's per-class plan writes the bytes the general encoder (dict, sort,
    per-VR encoders) writes, for every message; a message with extras takes that path."""
    msg = data.draw(message_strategy(cls))
    assert encode_command(msg) == _encode_command_general(msg)


def test_unencodable_value_is_worded_by_the_general_path():
    msg = CStoreRSP(message_id_being_responded_to=70000, status=0)  # US takes 0..65535
    with pytest.raises(DIMSEError, match="MessageIDBeingRespondedTo"):
        encode_command(msg)


def test_defaults_and_priority():
    rq = CStoreRQ(message_id=1, affected_sop_class_uid="1.2", affected_sop_instance_uid="1.3")
    assert rq.has_dataset and rq.priority == Priority.MEDIUM
    assert not CEchoRQ(message_id=1).has_dataset
    move = CMoveRQ(
        message_id=2,
        affected_sop_class_uid="1.2",
        move_destination="STORESCP",
        priority=Priority.HIGH,
    )
    ds, _ = _pydicom_values(encode_command(move))
    assert ds.MoveDestination == "STORESCP" and ds.Priority == 1
    assert decode_command(encode_command(move)) == move


def test_optional_fields_absent_are_not_encoded():
    rq = NActionRQ(
        message_id=1,
        requested_sop_class_uid="1.2",
        requested_sop_instance_uid="1.3",
        action_type_id=1,
    )
    _, values = _pydicom_values(encode_command(rq))
    assert 0x0002 not in values and 0x0902 not in values
    assert values[0x1008] == 1
