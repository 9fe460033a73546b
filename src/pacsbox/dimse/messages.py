"""The DIMSE messages (PS3.7 9.3 and 10.3) as dataclasses, and their command sets as bytes.

One class per message; its fields are the command elements PS3.7 lists for it, in snake_case.
A field that is None is absent and is not encoded. ``has_dataset`` is CommandDataSetType
(PS3.7 E.1: 0x0101 means no data set, any other value means one follows). Elements a peer sends
that the message does not define are kept in ``extra`` (tag -> value) and sent back unchanged.

``encode_command(msg) -> bytes`` and ``decode_command(buffer) -> msg``; the class is chosen by
CommandField from ``MESSAGE_TYPES``.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import field
from enum import IntEnum
from typing import ClassVar

from pacsbox.dimse import commands as c
from pacsbox.dimse.commands import CommandValue, DIMSEError
from pacsbox.records import record

NO_DATASET = 0x0101  # PS3.7 E.1 CommandDataSetType: no data set present
DATASET_PRESENT = 0x0001  # any other value means a data set follows; this is the usual one

VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"  # PS3.4 A.4


class Priority(IntEnum):
    """PS3.7 E.1 Priority (0000,0700)."""

    MEDIUM = 0x0000
    HIGH = 0x0001
    LOW = 0x0002


# Field name -> command element. The same name means the same element in every message.
FIELD_TAGS: dict[str, int] = {
    "affected_sop_class_uid": c.AFFECTED_SOP_CLASS_UID,
    "requested_sop_class_uid": c.REQUESTED_SOP_CLASS_UID,
    "message_id": c.MESSAGE_ID,
    "message_id_being_responded_to": c.MESSAGE_ID_BEING_RESPONDED_TO,
    "move_destination": c.MOVE_DESTINATION,
    "priority": c.PRIORITY,
    "status": c.STATUS,
    "offending_element": c.OFFENDING_ELEMENT,
    "error_comment": c.ERROR_COMMENT,
    "error_id": c.ERROR_ID,
    "affected_sop_instance_uid": c.AFFECTED_SOP_INSTANCE_UID,
    "requested_sop_instance_uid": c.REQUESTED_SOP_INSTANCE_UID,
    "event_type_id": c.EVENT_TYPE_ID,
    "attribute_identifier_list": c.ATTRIBUTE_IDENTIFIER_LIST,
    "action_type_id": c.ACTION_TYPE_ID,
    "number_of_remaining_suboperations": c.NUMBER_OF_REMAINING_SUBOPERATIONS,
    "number_of_completed_suboperations": c.NUMBER_OF_COMPLETED_SUBOPERATIONS,
    "number_of_failed_suboperations": c.NUMBER_OF_FAILED_SUBOPERATIONS,
    "number_of_warning_suboperations": c.NUMBER_OF_WARNING_SUBOPERATIONS,
    "move_originator_ae_title": c.MOVE_ORIGINATOR_AE_TITLE,
    "move_originator_message_id": c.MOVE_ORIGINATOR_MESSAGE_ID,
}

_message = record(kw_only=True)


@_message
class DIMSEMessage:
    """Fields every message has besides CommandField (a class constant)."""

    command_field: ClassVar[int]
    section: ClassVar[str]  # where PS3.7 defines the message's fields
    has_dataset: bool = False
    extra: dict[int, CommandValue] = field(default_factory=dict, repr=False)


@_message
class _Request(DIMSEMessage):
    message_id: int


@_message
class _Response(DIMSEMessage):
    # PS3.7 C: the status-related elements a response may carry with its Status.
    message_id_being_responded_to: int
    status: int
    affected_sop_class_uid: str | None = None
    error_comment: str | None = None
    error_id: int | None = None
    offending_element: tuple[int, ...] | None = None


@_message
class _NResponse(_Response):
    affected_sop_instance_uid: str | None = None
    attribute_identifier_list: tuple[int, ...] | None = None  # PS3.7 C.4.2 attribute list error


# -- C-services, PS3.7 9.3 ------------------------------------------------------------------


@_message
class CStoreRQ(_Request):
    command_field = 0x0001
    section = "PS3.7 9.3.1.1"
    has_dataset: bool = True
    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    priority: int = Priority.MEDIUM
    move_originator_ae_title: str | None = None
    move_originator_message_id: int | None = None


@_message
class CStoreRSP(_Response):
    command_field = 0x8001
    section = "PS3.7 9.3.1.2"
    affected_sop_instance_uid: str | None = None


@_message
class CFindRQ(_Request):
    command_field = 0x0020
    section = "PS3.7 9.3.2.1"
    has_dataset: bool = True
    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM


@_message
class CFindRSP(_Response):
    command_field = 0x8020
    section = "PS3.7 9.3.2.2"


@_message
class CGetRQ(_Request):
    command_field = 0x0010
    section = "PS3.7 9.3.3.1"
    has_dataset: bool = True
    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM


@_message
class _RetrieveRSP(_Response):
    # PS3.7 9.3.3.2 / 9.3.4.2: the sub-operation counters of C-GET and C-MOVE responses
    number_of_remaining_suboperations: int | None = None
    number_of_completed_suboperations: int | None = None
    number_of_failed_suboperations: int | None = None
    number_of_warning_suboperations: int | None = None


@_message
class CGetRSP(_RetrieveRSP):
    command_field = 0x8010
    section = "PS3.7 9.3.3.2"


@_message
class CMoveRQ(_Request):
    command_field = 0x0021
    section = "PS3.7 9.3.4.1"
    has_dataset: bool = True
    affected_sop_class_uid: str
    move_destination: str
    priority: int = Priority.MEDIUM


@_message
class CMoveRSP(_RetrieveRSP):
    command_field = 0x8021
    section = "PS3.7 9.3.4.2"


@_message
class CEchoRQ(_Request):
    command_field = 0x0030
    section = "PS3.7 9.3.5.1"
    affected_sop_class_uid: str = VERIFICATION_SOP_CLASS


@_message
class CEchoRSP(_Response):
    command_field = 0x8030
    section = "PS3.7 9.3.5.2"


@_message
class CCancelRQ(DIMSEMessage):
    command_field = 0x0FFF
    section = "PS3.7 9.3.2.3"
    message_id_being_responded_to: int


# -- N-services, PS3.7 10.3 -----------------------------------------------------------------


@_message
class NEventReportRQ(_Request):
    command_field = 0x0100
    section = "PS3.7 10.3.1.1"
    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    event_type_id: int


@_message
class NEventReportRSP(_NResponse):
    command_field = 0x8100
    section = "PS3.7 10.3.1.2"
    event_type_id: int | None = None


@_message
class NGetRQ(_Request):
    command_field = 0x0110
    section = "PS3.7 10.3.2.1"
    requested_sop_class_uid: str
    requested_sop_instance_uid: str
    attribute_identifier_list: tuple[int, ...] | None = None  # absent: all attributes


@_message
class NGetRSP(_NResponse):
    command_field = 0x8110
    section = "PS3.7 10.3.2.2"


@_message
class NSetRQ(_Request):
    command_field = 0x0120
    section = "PS3.7 10.3.3.1"
    has_dataset: bool = True
    requested_sop_class_uid: str
    requested_sop_instance_uid: str


@_message
class NSetRSP(_NResponse):
    command_field = 0x8120
    section = "PS3.7 10.3.3.2"


@_message
class NActionRQ(_Request):
    command_field = 0x0130
    section = "PS3.7 10.3.4.1"
    requested_sop_class_uid: str
    requested_sop_instance_uid: str
    action_type_id: int


@_message
class NActionRSP(_NResponse):
    command_field = 0x8130
    section = "PS3.7 10.3.4.2"
    action_type_id: int | None = None


@_message
class NCreateRQ(_Request):
    command_field = 0x0140
    section = "PS3.7 10.3.5.1"
    affected_sop_class_uid: str
    affected_sop_instance_uid: str | None = None  # the SCP assigns one when absent


@_message
class NCreateRSP(_NResponse):
    command_field = 0x8140
    section = "PS3.7 10.3.5.2"


@_message
class NDeleteRQ(_Request):
    command_field = 0x0150
    section = "PS3.7 10.3.6.1"
    requested_sop_class_uid: str
    requested_sop_instance_uid: str


@_message
class NDeleteRSP(_NResponse):
    command_field = 0x8150
    section = "PS3.7 10.3.6.2"


# -- tables ----------------------------------------------------------------------------------

MESSAGE_NAMES: dict[type[DIMSEMessage], str] = {
    CStoreRQ: "C-STORE-RQ",
    CStoreRSP: "C-STORE-RSP",
    CGetRQ: "C-GET-RQ",
    CGetRSP: "C-GET-RSP",
    CFindRQ: "C-FIND-RQ",
    CFindRSP: "C-FIND-RSP",
    CMoveRQ: "C-MOVE-RQ",
    CMoveRSP: "C-MOVE-RSP",
    CEchoRQ: "C-ECHO-RQ",
    CEchoRSP: "C-ECHO-RSP",
    CCancelRQ: "C-CANCEL-RQ",
    NEventReportRQ: "N-EVENT-REPORT-RQ",
    NEventReportRSP: "N-EVENT-REPORT-RSP",
    NGetRQ: "N-GET-RQ",
    NGetRSP: "N-GET-RSP",
    NSetRQ: "N-SET-RQ",
    NSetRSP: "N-SET-RSP",
    NActionRQ: "N-ACTION-RQ",
    NActionRSP: "N-ACTION-RSP",
    NCreateRQ: "N-CREATE-RQ",
    NCreateRSP: "N-CREATE-RSP",
    NDeleteRQ: "N-DELETE-RQ",
    NDeleteRSP: "N-DELETE-RSP",
}
MESSAGE_TYPES: dict[int, type[DIMSEMessage]] = {cls.command_field: cls for cls in MESSAGE_NAMES}


def _layout(cls: type[DIMSEMessage]) -> tuple[tuple[tuple[str, int], ...], frozenset[str]]:
    """(field name, tag) of a class's command elements, and the names it requires."""
    fields = [f for f in dataclasses.fields(cls) if f.name in FIELD_TAGS]
    required = frozenset(
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    return tuple((f.name, FIELD_TAGS[f.name]) for f in fields), required


_LAYOUTS = {cls: _layout(cls) for cls in MESSAGE_NAMES}
_NAMES_BY_TAG = {cls: {tag: name for name, tag in fields} for cls, (fields, _) in _LAYOUTS.items()}


def message_name(msg: DIMSEMessage | type[DIMSEMessage]) -> str:
    """``"C-ECHO-RQ"`` and so on, as PS3.7 and DCMTK logs spell them."""
    return MESSAGE_NAMES[msg if isinstance(msg, type) else type(msg)]


def _plan(cls: type[DIMSEMessage]) -> tuple[tuple[str, int, object], ...]:
    """How ``encode_command`` writes a ``cls``, by ascending tag: (field name, tag, value
    encoder) for a field; for CommandField the element's bytes under the name "", for
    CommandDataSetType its bytes without and with a data set under "has_dataset"."""

    def us_element(tag: int, value: int) -> bytes:
        return c.ELEMENT_HEADER.pack(0, tag, 2) + c.US.pack(value)

    data_set_type = c.COMMAND_DATA_SET_TYPE
    steps = [
        (c.COMMAND_FIELD, "", us_element(c.COMMAND_FIELD, cls.command_field)),
        (data_set_type, "has_dataset",
         (us_element(data_set_type, NO_DATASET), us_element(data_set_type, DATASET_PRESENT))),
    ]  # fmt: skip
    steps += [(tag, name, c.encoder_of(tag)) for name, tag in _LAYOUTS[cls][0]]
    return tuple((name, tag, how) for tag, name, how in sorted(steps, key=lambda s: s[0]))


_PLANS = {cls: _plan(cls) for cls in MESSAGE_NAMES}


def encode_command(msg: DIMSEMessage) -> bytes:
    """The command set of ``msg``, Implicit VR Little Endian with its group length.

    The fields are written in the order ``_plan`` worked out once per class, without the
    general encoder's dict, sort and checks (every message sent goes through here); a
    message with ``extra`` elements, or a value that does not encode, takes the general
    path, which merges the extras and words the error."""
    if msg.extra:
        return _encode_command_general(msg)
    parts: list[bytes] = []
    append, header = parts.append, c.ELEMENT_HEADER.pack
    try:
        for name, tag, how in _PLANS[type(msg)]:
            if not name:
                append(how)
            elif name == "has_dataset":
                append(how[msg.has_dataset])
            else:
                value = getattr(msg, name)
                if value is not None:
                    raw = how(value)
                    append(header(0, tag, len(raw)))
                    append(raw)
    except (ValueError, TypeError, AttributeError, OverflowError, struct.error):
        return _encode_command_general(msg)
    body = b"".join(parts)
    return c.GROUP_LENGTH_PREFIX + c.UL.pack(len(body)) + body


def _encode_command_general(msg: DIMSEMessage) -> bytes:
    elements: dict[int, CommandValue] = {
        c.COMMAND_FIELD: msg.command_field,
        c.COMMAND_DATA_SET_TYPE: DATASET_PRESENT if msg.has_dataset else NO_DATASET,
    }
    for name, tag in _LAYOUTS[type(msg)][0]:
        value = getattr(msg, name)
        if value is not None:
            elements[tag] = value
    for tag, value in msg.extra.items():
        elements.setdefault(tag, value)  # a field always wins over an extra of the same tag
    return c.encode_command_set(elements)


def decode_command(buf: bytes | bytearray | memoryview) -> DIMSEMessage:
    """The message whose command set ``buf`` is (one whole command set)."""
    elements = c.decode_command_set(buf)
    command_field = elements.pop(c.COMMAND_FIELD, None)
    cls = MESSAGE_TYPES.get(command_field)  # type: ignore[arg-type]
    if cls is None:
        what = (
            "has no CommandField"
            if command_field is None
            else f"has CommandField {command_field!r}"
        )
        raise DIMSEError(
            f"command set {what}, which is not a DIMSE message of PS3.7 E.1; "
            "the peer sent a command this toolkit does not know"
        )
    data_set_type = elements.pop(c.COMMAND_DATA_SET_TYPE, None)
    if data_set_type is None:
        raise DIMSEError(
            f"{MESSAGE_NAMES[cls]} lacks {c.tag_name(c.COMMAND_DATA_SET_TYPE)}, which every "
            "message must have (PS3.7 E.1); cannot tell whether a data set follows"
        )
    kwargs: dict[str, object] = {"has_dataset": data_set_type != NO_DATASET}
    names = _NAMES_BY_TAG[cls]
    extra: dict[int, CommandValue] = {}
    for tag, value in elements.items():
        name = names.get(tag)
        if name is None:
            extra[tag] = value
        else:
            kwargs[name] = value
    missing = _LAYOUTS[cls][1] - kwargs.keys()
    if missing:
        lacking = ", ".join(sorted(c.tag_name(FIELD_TAGS[n]) for n in missing))
        raise DIMSEError(f"{MESSAGE_NAMES[cls]} lacks {lacking}, required by {cls.section}")
    if extra:
        kwargs["extra"] = extra
    return cls(**kwargs)
