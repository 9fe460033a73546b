"""The DIMSE command set codec: group 0000 elements <-> bytes, Implicit VR Little Endian.

PS3.7 6.3.1: a command set is encoded in Implicit VR Little Endian, whatever transfer syntax
the presentation context uses for its data sets. This codec is written by hand over ``struct``
because every DIMSE message passes through it; it knows the VR of each command element from
the table of PS3.7 E.1 and nothing else. ``messages`` maps elements to message fields.

Values: UI, AE, LO -> ``str`` (padding stripped on decode); US, UL -> ``int``; AT -> ``tuple``
of tags as ints (``0xGGGGEEEE``). Elements this table does not know (retired ones of PS3.7
E.2, private additions) decode to their raw value ``bytes`` and encode back unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping

# Tags of group 0000 are plain ints: (0000,eeee) == 0x0000eeee == eeee.
COMMAND_GROUP_LENGTH = 0x0000
AFFECTED_SOP_CLASS_UID = 0x0002
REQUESTED_SOP_CLASS_UID = 0x0003
COMMAND_FIELD = 0x0100
MESSAGE_ID = 0x0110
MESSAGE_ID_BEING_RESPONDED_TO = 0x0120
MOVE_DESTINATION = 0x0600
PRIORITY = 0x0700
COMMAND_DATA_SET_TYPE = 0x0800
STATUS = 0x0900
OFFENDING_ELEMENT = 0x0901
ERROR_COMMENT = 0x0902
ERROR_ID = 0x0903
AFFECTED_SOP_INSTANCE_UID = 0x1000
REQUESTED_SOP_INSTANCE_UID = 0x1001
EVENT_TYPE_ID = 0x1002
ATTRIBUTE_IDENTIFIER_LIST = 0x1005
ACTION_TYPE_ID = 0x1008
NUMBER_OF_REMAINING_SUBOPERATIONS = 0x1020
NUMBER_OF_COMPLETED_SUBOPERATIONS = 0x1021
NUMBER_OF_FAILED_SUBOPERATIONS = 0x1022
NUMBER_OF_WARNING_SUBOPERATIONS = 0x1023
MOVE_ORIGINATOR_AE_TITLE = 0x1030
MOVE_ORIGINATOR_MESSAGE_ID = 0x1031

# PS3.7 E.1: keyword and VR of every command element in use.
COMMAND_ELEMENTS: dict[int, tuple[str, str]] = {
    COMMAND_GROUP_LENGTH: ("CommandGroupLength", "UL"),
    AFFECTED_SOP_CLASS_UID: ("AffectedSOPClassUID", "UI"),
    REQUESTED_SOP_CLASS_UID: ("RequestedSOPClassUID", "UI"),
    COMMAND_FIELD: ("CommandField", "US"),
    MESSAGE_ID: ("MessageID", "US"),
    MESSAGE_ID_BEING_RESPONDED_TO: ("MessageIDBeingRespondedTo", "US"),
    MOVE_DESTINATION: ("MoveDestination", "AE"),
    PRIORITY: ("Priority", "US"),
    COMMAND_DATA_SET_TYPE: ("CommandDataSetType", "US"),
    STATUS: ("Status", "US"),
    OFFENDING_ELEMENT: ("OffendingElement", "AT"),
    ERROR_COMMENT: ("ErrorComment", "LO"),
    ERROR_ID: ("ErrorID", "US"),
    AFFECTED_SOP_INSTANCE_UID: ("AffectedSOPInstanceUID", "UI"),
    REQUESTED_SOP_INSTANCE_UID: ("RequestedSOPInstanceUID", "UI"),
    EVENT_TYPE_ID: ("EventTypeID", "US"),
    ATTRIBUTE_IDENTIFIER_LIST: ("AttributeIdentifierList", "AT"),
    ACTION_TYPE_ID: ("ActionTypeID", "US"),
    NUMBER_OF_REMAINING_SUBOPERATIONS: ("NumberOfRemainingSuboperations", "US"),
    NUMBER_OF_COMPLETED_SUBOPERATIONS: ("NumberOfCompletedSuboperations", "US"),
    NUMBER_OF_FAILED_SUBOPERATIONS: ("NumberOfFailedSuboperations", "US"),
    NUMBER_OF_WARNING_SUBOPERATIONS: ("NumberOfWarningSuboperations", "US"),
    MOVE_ORIGINATOR_AE_TITLE: ("MoveOriginatorApplicationEntityTitle", "AE"),
    MOVE_ORIGINATOR_MESSAGE_ID: ("MoveOriginatorMessageID", "US"),
}

CommandValue = str | int | tuple[int, ...] | bytes

_HEADER = struct.Struct("<HHI")  # PS3.5 7.1.2: group, element, 32-bit value length
_US = struct.Struct("<H")
_UL = struct.Struct("<I")
_AE_MAX = 16  # PS3.5 6.2


class DIMSEError(ValueError):
    """A DIMSE message that cannot be encoded or decoded, or a protocol error between messages."""


def tag_name(tag: int) -> str:
    """``AffectedSOPClassUID (0000,0002)``, for messages to people."""
    keyword = COMMAND_ELEMENTS.get(tag, ("unknown element",))[0]
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


# -- value encoders: value -> bytes of even length (PS3.5 6.2 padding) -------------------------


def _pad(raw: bytes, pad: bytes) -> bytes:
    return raw + pad if len(raw) & 1 else raw


def _enc_ui(value: str) -> bytes:
    return _pad(value.encode("ascii"), b"\0")  # PS3.5 6.2: UI padded with NUL


def _enc_ae(value: str) -> bytes:
    if len(value) > _AE_MAX:
        raise ValueError(f"{value!r} is longer than the 16 characters an AE title may have")
    return _pad(value.encode("ascii"), b" ")


def _enc_lo(value: str) -> bytes:
    # Command sets have no SpecificCharacterSet: default repertoire only; '?' for the rest so
    # a free-text ErrorComment never stops a response from being sent.
    return _pad(value.encode("ascii", "replace"), b" ")


def _enc_at(value: tuple[int, ...]) -> bytes:
    return b"".join(struct.pack("<HH", tag >> 16, tag & 0xFFFF) for tag in value)


_ENCODERS: dict[str, Callable[[object], bytes]] = {
    "UI": _enc_ui,
    "AE": _enc_ae,
    "LO": _enc_lo,
    "US": _US.pack,
    "UL": _UL.pack,
    "AT": _enc_at,
}  # type: ignore[dict-item]


# -- value decoders: raw memoryview -> value ---------------------------------------------------


def _dec_ui(raw: memoryview) -> str:
    return bytes(raw).rstrip(b"\0 ").decode("ascii")  # some peers pad UIDs with a space


def _dec_text(raw: memoryview) -> str:
    # AE and LO: leading and trailing spaces are not significant (PS3.5 6.2)
    return bytes(raw).decode("ascii", "replace").strip(" \0")


def _dec_us(raw: memoryview) -> int:
    return _US.unpack(raw)[0]


def _dec_ul(raw: memoryview) -> int:
    return _UL.unpack(raw)[0]


def _dec_at(raw: memoryview) -> tuple[int, ...]:
    if len(raw) % 4:
        raise ValueError(f"an AT value has a length multiple of 4, not {len(raw)}")
    pairs = struct.unpack(f"<{len(raw) // 2}H", raw)
    return tuple((pairs[i] << 16) | pairs[i + 1] for i in range(0, len(pairs), 2))


_DECODERS: dict[str, Callable[[memoryview], CommandValue]] = {
    "UI": _dec_ui,
    "AE": _dec_text,
    "LO": _dec_text,
    "US": _dec_us,
    "UL": _dec_ul,
    "AT": _dec_at,
}
_VR_OF: dict[int, str] = {tag: vr for tag, (_, vr) in COMMAND_ELEMENTS.items()}

# for messages.encode_command's fast path
ELEMENT_HEADER, US, UL = _HEADER, _US, _UL
GROUP_LENGTH_PREFIX = _HEADER.pack(0, COMMAND_GROUP_LENGTH, 4)


def encoder_of(tag: int) -> Callable[[object], bytes]:
    """The value encoder of a command element (raw bytes for an element we do not know)."""
    vr = _VR_OF.get(tag)
    return _ENCODERS[vr] if vr is not None else bytes  # type: ignore[return-value]


def encode_command_set(elements: Mapping[int, CommandValue]) -> bytes:
    """Encode group 0000 elements, ascending by tag, preceded by CommandGroupLength.

    A given CommandGroupLength is ignored: it is computed (PS3.7 E.1, the length of the
    elements that follow it).
    """
    parts: list[bytes] = []
    for tag in sorted(elements):
        if tag == COMMAND_GROUP_LENGTH:
            continue
        if not 0 <= tag <= 0xFFFF:
            raise DIMSEError(
                f"cannot put element ({tag >> 16:04X},{tag & 0xFFFF:04X}) in a command set: "
                "a command set holds group 0000 only (PS3.7 6.3.1); put it in the data set"
            )
        value = elements[tag]
        vr = _VR_OF.get(tag)
        if vr is None or isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value)  # unknown element kept as raw bytes by the decoder
        else:
            try:
                raw = _ENCODERS[vr](value)
            except (ValueError, TypeError, AttributeError, struct.error) as exc:
                raise DIMSEError(f"cannot encode {tag_name(tag)} = {value!r}: {exc}") from exc
        parts.append(_HEADER.pack(0, tag, len(raw)))
        parts.append(raw)
    body = b"".join(parts)
    return _HEADER.pack(0, COMMAND_GROUP_LENGTH, 4) + _UL.pack(len(body)) + body


def decode_command_set(buf: bytes | bytearray | memoryview) -> dict[int, CommandValue]:
    """Decode a whole command set into ``{tag: value}`` (CommandGroupLength left out).

    CommandGroupLength is checked for form but its value is not trusted: the PDV boundaries
    delimit the command set, and a wrong group length from a peer costs nothing here.
    """
    data = bytes(buf)  # a few hundred bytes: one copy, then plain bytes slices
    end = len(data)
    pos = 0
    elements: dict[int, CommandValue] = {}
    unpack = _HEADER.unpack_from
    vr_of = _VR_OF
    while pos < end:
        if end - pos < 8:
            raise DIMSEError(
                f"command set: {end - pos} stray bytes at offset {pos} where an element "
                "header (8 bytes) was expected; the command set is truncated"
            )
        group, element, length = unpack(data, pos)
        if group != 0x0000:
            raise DIMSEError(
                f"command set: element ({group:04X},{element:04X}) at offset {pos} is "
                "outside group 0000; a command set holds group 0000 only (PS3.7 6.3.1). "
                "The peer may have sent a data set in a command PDV"
            )
        start = pos + 8
        value_end = start + length
        if value_end > end:
            raise DIMSEError(
                f"command set: {tag_name(element)} at offset {pos} has length {length}, "
                f"beyond the end of the {end}-byte command set (Implicit VR Little Endian "
                "expected, PS3.7 6.3.1; undefined length is not allowed)"
            )
        if element in elements:
            raise DIMSEError(f"command set: {tag_name(element)} appears twice")
        vr = vr_of.get(element)
        # the usual values first, without a call: a UID, a US, a UL
        if vr is None:
            elements[element] = data[start:value_end]
        elif vr == "US" and length == 2:
            elements[element] = data[start] | data[start + 1] << 8
        elif vr == "UI" and length:
            try:
                elements[element] = data[start:value_end].rstrip(b"\0 ").decode("ascii")
            except UnicodeDecodeError as exc:
                raise DIMSEError(
                    f"command set: {tag_name(element)} has a value of {length} bytes that is "
                    f"not a valid {vr}: {exc}"
                ) from exc
        elif length or vr in ("UI", "AE", "LO", "AT"):
            try:
                elements[element] = _DECODERS[vr](memoryview(data)[start:value_end])
            except (ValueError, struct.error) as exc:
                raise DIMSEError(
                    f"command set: {tag_name(element)} has a value of {length} bytes that is "
                    f"not a valid {vr}: {exc}"
                ) from exc
        # an empty US/UL carries no value: treated as absent
        pos = value_end
    elements.pop(COMMAND_GROUP_LENGTH, None)
    return elements
