"""PS3.8 9.3 — the seven Upper Layer PDUs and their items, as values and as bytes.

Pure codec: ``encode_pdu(pdu) -> bytes`` and ``decode_pdu(buffer) -> PDU`` over one whole PDU,
and ``PDUReader`` which cuts a byte stream into PDUs. No sockets, no state machine here.

The hot path is P-DATA-TF: ``PDataTF.pdvs`` hold memoryviews into the received buffer (no copy),
and ``encode_pdata_header`` lets a sender write header and payload without concatenating them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import field
from enum import IntEnum

from ..records import record

APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"  # PS3.7 A.2.1, the only one DICOM defines


class PDUError(ValueError):
    """Bytes that are not a valid PDU (PS3.8 9.3: an Evt19, answered with A-ABORT)."""


class UnrecognizedPDUError(PDUError):
    """A PDU type outside 01H-07H (PS3.8 9.3.1): A-ABORT reason 'unrecognized PDU'."""


class PDUType(IntEnum):
    A_ASSOCIATE_RQ = 0x01
    A_ASSOCIATE_AC = 0x02
    A_ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    A_RELEASE_RQ = 0x05
    A_RELEASE_RP = 0x06
    A_ABORT = 0x07


class ItemType(IntEnum):
    APPLICATION_CONTEXT = 0x10
    PRESENTATION_CONTEXT_RQ = 0x20
    PRESENTATION_CONTEXT_AC = 0x21
    ABSTRACT_SYNTAX = 0x30
    TRANSFER_SYNTAX = 0x40
    USER_INFORMATION = 0x50
    MAXIMUM_LENGTH = 0x51
    IMPLEMENTATION_CLASS_UID = 0x52
    ASYNCHRONOUS_OPERATIONS_WINDOW = 0x53
    ROLE_SELECTION = 0x54
    IMPLEMENTATION_VERSION_NAME = 0x55
    SOP_CLASS_EXTENDED_NEGOTIATION = 0x56
    SOP_CLASS_COMMON_EXTENDED_NEGOTIATION = 0x57
    USER_IDENTITY_RQ = 0x58
    USER_IDENTITY_AC = 0x59


class ContextResult(IntEnum):
    """PS3.8 9.3.3.2, Result/Reason of a presentation context item in the A-ASSOCIATE-AC."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2  # provider rejection
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4


class RejectResult(IntEnum):
    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class RejectSource(IntEnum):
    SERVICE_USER = 1
    SERVICE_PROVIDER_ACSE = 2
    SERVICE_PROVIDER_PRESENTATION = 3


class AbortSource(IntEnum):
    SERVICE_USER = 0
    RESERVED = 1
    SERVICE_PROVIDER = 2


class AbortReason(IntEnum):
    """PS3.8 9.3.8, reason/diag. of an A-ABORT whose source is the service provider."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    RESERVED = 3
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6


# ---------------------------------------------------------------------------------------------
# Items and sub-items


@record
class PresentationContextRQ:
    """PS3.8 9.3.2.2: one abstract syntax with the transfer syntaxes proposed for it."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: list[str]


@record
class PresentationContextAC:
    """PS3.8 9.3.3.2: the acceptor's answer for one proposed context.

    ``transfer_syntax`` is meaningful only when ``result`` is ACCEPTANCE; PS3.8 says it is
    sent but not significant otherwise (it may be an empty string then).
    """

    context_id: int
    result: int
    transfer_syntax: str = ""


@record(frozen=True)
class RoleSelection:
    """PS3.7 D.3.3.4: SCP/SCU role selection for one SOP class (1 = role supported)."""

    sop_class_uid: str
    scu_role: bool
    scp_role: bool


@record(frozen=True)
class SOPClassExtendedNegotiation:
    """PS3.7 D.3.3.5: service-class-specific application information (opaque bytes)."""

    sop_class_uid: str
    application_information: bytes


@record(frozen=True)
class SOPClassCommonExtendedNegotiation:
    """PS3.7 D.3.3.6 (A-ASSOCIATE-RQ only)."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: tuple[str, ...] = ()


@record(frozen=True)
class UserIdentityRQ:
    """PS3.7 D.3.3.7.1. identity_type: 1 username, 2 username+passcode, 3 Kerberos, 4 SAML, 5 JWT."""

    identity_type: int
    positive_response_requested: bool
    primary_field: bytes
    secondary_field: bytes = b""


@record(frozen=True)
class UserIdentityAC:
    """PS3.7 D.3.3.7.2."""

    server_response: bytes = b""


@record
class UserInformation:
    """PS3.8 9.3.2.3 / PS3.7 D.3.3: the user information item and its sub-items.

    Sub-items are encoded in the order of this class's fields; sub-items of a type we do
    not know are kept, in order, in ``unknown`` as (item type, value bytes) and re-encoded.
    """

    max_length: int | None = None
    implementation_class_uid: str = ""
    async_ops_window: tuple[int, int] | None = None  # (max invoked, max performed)
    role_selections: list[RoleSelection] = field(default_factory=list)
    implementation_version_name: str | None = None
    sop_class_extended: list[SOPClassExtendedNegotiation] = field(default_factory=list)
    sop_class_common_extended: list[SOPClassCommonExtendedNegotiation] = field(default_factory=list)
    user_identity_rq: UserIdentityRQ | None = None
    user_identity_ac: UserIdentityAC | None = None
    unknown: list[tuple[int, bytes]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# PDUs


@record
class AAssociateRQ:
    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: list[PresentationContextRQ]
    user_information: UserInformation = field(default_factory=UserInformation)
    application_context_name: str = APPLICATION_CONTEXT_NAME
    protocol_version: int = 1


@record
class AAssociateAC:
    """The AE title fields of the AC are, by PS3.8 9.3.3, copies of the RQ's (not tested)."""

    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: list[PresentationContextAC]
    user_information: UserInformation = field(default_factory=UserInformation)
    application_context_name: str = APPLICATION_CONTEXT_NAME
    protocol_version: int = 1


@record
class AAssociateRJ:
    result: int
    source: int
    reason: int


@record
class PDV:
    """PS3.8 9.3.5.1 presentation data value: one fragment of a command or a data set.

    ``data`` is a memoryview into the received buffer when decoded (no copy) and any
    bytes-like object when built for sending.
    """

    context_id: int
    is_command: bool
    is_last: bool
    data: bytes | bytearray | memoryview


@record
class PDataTF:
    pdvs: list[PDV]


@record
class AReleaseRQ:
    pass


@record
class AReleaseRP:
    pass


@record
class AAbort:
    source: int = AbortSource.SERVICE_USER
    reason: int = 0


PDU = AAssociateRQ | AAssociateAC | AAssociateRJ | PDataTF | AReleaseRQ | AReleaseRP | AAbort


# ---------------------------------------------------------------------------------------------
# Encoding

_HEADER = struct.Struct(">BxI")  # PDU type, reserved, PDU length
_ITEM = struct.Struct(">BxH")  # item type, reserved, item length
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_PDV_HEADER = struct.Struct(">IBB")  # PDV item length, context ID, message control header


def _ae(title: str) -> bytes:
    """AE titles are 16 bytes, space padded (PS3.8 9.3.2); longer is an error of the caller."""
    raw = title.encode("ascii")
    if len(raw) > 16:
        raise ValueError(f"AE title {title!r} is longer than 16 characters (PS3.5 6.2, VR AE)")
    return raw.ljust(16, b" ")


def _uid(value: str) -> bytes:
    return value.encode("ascii")


def _item(item_type: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"item 0x{item_type:02X} value of {len(value)} bytes exceeds 65535")
    return _ITEM.pack(item_type, len(value)) + value


def _encode_user_information(ui: UserInformation) -> bytes:
    parts: list[bytes] = []
    if ui.max_length is not None:
        parts.append(_item(ItemType.MAXIMUM_LENGTH, _U32.pack(ui.max_length)))
    if ui.implementation_class_uid:
        parts.append(_item(ItemType.IMPLEMENTATION_CLASS_UID, _uid(ui.implementation_class_uid)))
    if ui.async_ops_window is not None:
        invoked, performed = ui.async_ops_window
        parts.append(
            _item(
                ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW, _U16.pack(invoked) + _U16.pack(performed)
            )
        )
    for role in ui.role_selections:
        uid = _uid(role.sop_class_uid)
        value = _U16.pack(len(uid)) + uid + bytes((int(role.scu_role), int(role.scp_role)))
        parts.append(_item(ItemType.ROLE_SELECTION, value))
    if ui.implementation_version_name is not None:
        parts.append(
            _item(
                ItemType.IMPLEMENTATION_VERSION_NAME, ui.implementation_version_name.encode("ascii")
            )
        )
    for ext in ui.sop_class_extended:
        uid = _uid(ext.sop_class_uid)
        value = _U16.pack(len(uid)) + uid + bytes(ext.application_information)
        parts.append(_item(ItemType.SOP_CLASS_EXTENDED_NEGOTIATION, value))
    for common in ui.sop_class_common_extended:
        uid = _uid(common.sop_class_uid)
        service = _uid(common.service_class_uid)
        related = b"".join(
            _U16.pack(len(u)) + u for u in (_uid(r) for r in common.related_general_sop_classes)
        )
        value = (
            _U16.pack(len(uid)) + uid + _U16.pack(len(service)) + service
            + _U16.pack(len(related)) + related
        )  # fmt: skip
        parts.append(_item(ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION, value))
    if ui.user_identity_rq is not None:
        ident = ui.user_identity_rq
        value = (
            bytes((ident.identity_type, int(ident.positive_response_requested)))
            + _U16.pack(len(ident.primary_field)) + bytes(ident.primary_field)
            + _U16.pack(len(ident.secondary_field)) + bytes(ident.secondary_field)
        )  # fmt: skip
        parts.append(_item(ItemType.USER_IDENTITY_RQ, value))
    if ui.user_identity_ac is not None:
        response = bytes(ui.user_identity_ac.server_response)
        parts.append(_item(ItemType.USER_IDENTITY_AC, _U16.pack(len(response)) + response))
    for item_type, value in ui.unknown:
        parts.append(_item(item_type, bytes(value)))
    return _item(ItemType.USER_INFORMATION, b"".join(parts))


def _encode_associate(pdu: AAssociateRQ | AAssociateAC) -> bytes:
    is_rq = isinstance(pdu, AAssociateRQ)
    parts = [
        _U16.pack(pdu.protocol_version),
        b"\x00\x00",
        _ae(pdu.called_ae_title),
        _ae(pdu.calling_ae_title),
        bytes(32),
        _item(ItemType.APPLICATION_CONTEXT, _uid(pdu.application_context_name)),
    ]
    for pc in pdu.presentation_contexts:
        if is_rq:
            body = _item(ItemType.ABSTRACT_SYNTAX, _uid(pc.abstract_syntax)) + b"".join(
                _item(ItemType.TRANSFER_SYNTAX, _uid(ts)) for ts in pc.transfer_syntaxes
            )
            head = bytes((pc.context_id, 0, 0, 0))
            parts.append(_item(ItemType.PRESENTATION_CONTEXT_RQ, head + body))
        else:
            head = bytes((pc.context_id, 0, pc.result, 0))
            body = _item(ItemType.TRANSFER_SYNTAX, _uid(pc.transfer_syntax))
            parts.append(_item(ItemType.PRESENTATION_CONTEXT_AC, head + body))
    parts.append(_encode_user_information(pdu.user_information))
    body = b"".join(parts)
    pdu_type = PDUType.A_ASSOCIATE_RQ if is_rq else PDUType.A_ASSOCIATE_AC
    return _HEADER.pack(pdu_type, len(body)) + body


def encode_pdata_header(pdvs_lengths: list[int]) -> bytes:
    """The 6-byte P-DATA-TF header for PDVs whose data have these lengths."""
    return _HEADER.pack(PDUType.P_DATA_TF, sum(pdvs_lengths) + 6 * len(pdvs_lengths))


def pdv_header(pdv: PDV) -> bytes:
    """The 6 bytes that precede a PDV's data: item length, context ID, control header."""
    control = (1 if pdv.is_command else 0) | (2 if pdv.is_last else 0)
    return _PDV_HEADER.pack(len(pdv.data) + 2, pdv.context_id, control)


def encode_pdata_buffers(pdu: PDataTF) -> list[bytes | bytearray | memoryview]:
    """P-DATA-TF as a list of buffers for ``writelines``: headers, then data, never copied."""
    buffers: list[bytes | bytearray | memoryview] = [
        encode_pdata_header([len(p.data) for p in pdu.pdvs])
    ]
    for pdv in pdu.pdvs:
        buffers.append(pdv_header(pdv))
        buffers.append(pdv.data)
    return buffers


def encode_pdu(pdu: PDU) -> bytes:
    """One PDU as bytes (PS3.8 9.3)."""
    match pdu:
        case AAssociateRQ() | AAssociateAC():
            return _encode_associate(pdu)
        case PDataTF():
            return b"".join(encode_pdata_buffers(pdu))
        case AAssociateRJ():
            return _HEADER.pack(PDUType.A_ASSOCIATE_RJ, 4) + bytes(
                (0, pdu.result, pdu.source, pdu.reason)
            )
        case AReleaseRQ():
            return _HEADER.pack(PDUType.A_RELEASE_RQ, 4) + bytes(4)
        case AReleaseRP():
            return _HEADER.pack(PDUType.A_RELEASE_RP, 4) + bytes(4)
        case AAbort():
            return _HEADER.pack(PDUType.A_ABORT, 4) + bytes((0, 0, pdu.source, pdu.reason))
    raise TypeError(f"not a PDU: {pdu!r}")


# ---------------------------------------------------------------------------------------------
# Decoding


def _text(raw: bytes | memoryview, what: str) -> str:
    try:
        text = bytes(raw).decode("ascii")
    except UnicodeDecodeError:
        raise PDUError(f"{what} is not ASCII: {bytes(raw)[:64]!r}") from None
    # PS3.8 9.3.2.2.1: UIDs may be padded with a NUL; AE titles with spaces.
    return text.rstrip("\x00")


def _ae_title(raw: memoryview) -> str:
    return _text(raw, "AE title").strip(" ")


def _items(buf: memoryview, what: str) -> Iterator[tuple[int, memoryview]]:
    """Yield (item type, value) for consecutive items that must fill ``buf`` exactly."""
    pos, end = 0, len(buf)
    while pos < end:
        if end - pos < 4:
            raise PDUError(f"{what}: {end - pos} stray bytes where an item header was expected")
        item_type, length = _ITEM.unpack_from(buf, pos)
        pos += 4
        if pos + length > end:
            raise PDUError(
                f"{what}: item 0x{item_type:02X} claims {length} bytes, only {end - pos} remain"
            )
        yield item_type, buf[pos : pos + length]
        pos += length


def _u16_prefixed(buf: memoryview, pos: int, what: str) -> tuple[memoryview, int]:
    if pos + 2 > len(buf):
        raise PDUError(f"{what}: truncated length field")
    (length,) = _U16.unpack_from(buf, pos)
    pos += 2
    if pos + length > len(buf):
        raise PDUError(f"{what}: field claims {length} bytes, only {len(buf) - pos} remain")
    return buf[pos : pos + length], pos + length


def _decode_user_information(buf: memoryview) -> UserInformation:
    ui = UserInformation()
    for item_type, value in _items(buf, "user information item"):
        if item_type == ItemType.MAXIMUM_LENGTH:
            if len(value) != 4:
                raise PDUError(f"maximum length sub-item has {len(value)} bytes, not 4")
            (ui.max_length,) = _U32.unpack(value)
        elif item_type == ItemType.IMPLEMENTATION_CLASS_UID:
            ui.implementation_class_uid = _text(value, "implementation class UID")
        elif item_type == ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW:
            if len(value) != 4:
                raise PDUError(f"asynchronous operations window has {len(value)} bytes, not 4")
            ui.async_ops_window = (_U16.unpack_from(value, 0)[0], _U16.unpack_from(value, 2)[0])
        elif item_type == ItemType.ROLE_SELECTION:
            uid, pos = _u16_prefixed(value, 0, "role selection")
            if len(value) != pos + 2:
                raise PDUError("role selection sub-item: SCU/SCP role bytes missing")
            ui.role_selections.append(
                RoleSelection(
                    _text(uid, "role selection SOP class UID"), value[pos] == 1, value[pos + 1] == 1
                )
            )
        elif item_type == ItemType.IMPLEMENTATION_VERSION_NAME:
            ui.implementation_version_name = _text(value, "implementation version name")
        elif item_type == ItemType.SOP_CLASS_EXTENDED_NEGOTIATION:
            uid, pos = _u16_prefixed(value, 0, "SOP class extended negotiation")
            ui.sop_class_extended.append(
                SOPClassExtendedNegotiation(_text(uid, "SOP class UID"), bytes(value[pos:]))
            )
        elif item_type == ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION:
            what = "SOP class common extended negotiation"
            uid, pos = _u16_prefixed(value, 0, what)
            service, pos = _u16_prefixed(value, pos, what)
            related_buf, pos = _u16_prefixed(value, pos, what)
            related: list[str] = []
            rpos = 0
            while rpos < len(related_buf):
                one, rpos = _u16_prefixed(related_buf, rpos, what)
                related.append(_text(one, "related general SOP class UID"))
            ui.sop_class_common_extended.append(
                SOPClassCommonExtendedNegotiation(
                    _text(uid, "SOP class UID"), _text(service, "service class UID"), tuple(related)
                )
            )
        elif item_type == ItemType.USER_IDENTITY_RQ:
            if len(value) < 2:
                raise PDUError("user identity sub-item is truncated")
            primary, pos = _u16_prefixed(value, 2, "user identity primary field")
            secondary, pos = _u16_prefixed(value, pos, "user identity secondary field")
            ui.user_identity_rq = UserIdentityRQ(
                value[0], value[1] == 1, bytes(primary), bytes(secondary)
            )
        elif item_type == ItemType.USER_IDENTITY_AC:
            response, _ = _u16_prefixed(value, 0, "user identity server response")
            ui.user_identity_ac = UserIdentityAC(bytes(response))
        else:
            ui.unknown.append((item_type, bytes(value)))  # PS3.7 D.3.3: unknown sub-items ignored
    return ui


def _decode_associate(body: memoryview, is_rq: bool) -> AAssociateRQ | AAssociateAC:
    if len(body) < 68:
        raise PDUError(
            f"A-ASSOCIATE PDU body of {len(body)} bytes is shorter than its 68-byte header"
        )
    (version,) = _U16.unpack_from(body, 0)
    called = _ae_title(body[4:20])
    calling = _ae_title(body[20:36])
    app_context = ""
    contexts: list = []
    user_info: UserInformation | None = None
    for item_type, value in _items(body[68:], "A-ASSOCIATE variable items"):
        if item_type == ItemType.APPLICATION_CONTEXT:
            app_context = _text(value, "application context name")
        elif item_type == ItemType.PRESENTATION_CONTEXT_RQ and is_rq:
            contexts.append(_decode_context_rq(value))
        elif item_type == ItemType.PRESENTATION_CONTEXT_AC and not is_rq:
            contexts.append(_decode_context_ac(value))
        elif item_type == ItemType.USER_INFORMATION:
            user_info = _decode_user_information(value)
        else:
            raise PDUError(
                f"unexpected item 0x{item_type:02X} in an A-ASSOCIATE-{'RQ' if is_rq else 'AC'}"
            )
    if not app_context:
        raise PDUError("A-ASSOCIATE PDU has no application context item")
    cls = AAssociateRQ if is_rq else AAssociateAC
    return cls(
        called_ae_title=called,
        calling_ae_title=calling,
        presentation_contexts=contexts,
        user_information=user_info if user_info is not None else UserInformation(),
        application_context_name=app_context,
        protocol_version=version,
    )


def _decode_context_rq(value: memoryview) -> PresentationContextRQ:
    if len(value) < 4:
        raise PDUError("presentation context item is truncated")
    abstract = ""
    syntaxes: list[str] = []
    for item_type, sub in _items(value[4:], "presentation context sub-items"):
        if item_type == ItemType.ABSTRACT_SYNTAX:
            abstract = _text(sub, "abstract syntax name")
        elif item_type == ItemType.TRANSFER_SYNTAX:
            syntaxes.append(_text(sub, "transfer syntax name"))
        else:
            raise PDUError(f"unexpected sub-item 0x{item_type:02X} in a presentation context")
    if not abstract:
        raise PDUError(f"presentation context {value[0]} has no abstract syntax")
    return PresentationContextRQ(value[0], abstract, syntaxes)


def _decode_context_ac(value: memoryview) -> PresentationContextAC:
    if len(value) < 4:
        raise PDUError("presentation context item is truncated")
    syntax = ""
    for item_type, sub in _items(value[4:], "presentation context sub-items"):
        if item_type != ItemType.TRANSFER_SYNTAX:
            raise PDUError(f"unexpected sub-item 0x{item_type:02X} in a presentation context")
        syntax = _text(sub, "transfer syntax name")
    return PresentationContextAC(value[0], value[2], syntax)


def _decode_pdata(body: memoryview) -> PDataTF:
    pdvs: list[PDV] = []
    pos, end = 0, len(body)
    while pos < end:
        if end - pos < 6:
            raise PDUError(f"P-DATA-TF: {end - pos} stray bytes where a PDV header was expected")
        length, context_id, control = _PDV_HEADER.unpack_from(body, pos)
        if length < 2 or pos + 4 + length > end:
            raise PDUError(f"P-DATA-TF: PDV item length {length} does not fit the PDU")
        pdvs.append(
            PDV(context_id, bool(control & 1), bool(control & 2), body[pos + 6 : pos + 4 + length])
        )
        pos += 4 + length
    if not pdvs:
        raise PDUError("P-DATA-TF carries no presentation data value")
    return PDataTF(pdvs)


def _decode_fixed(pdu_type: int, body: memoryview) -> PDU:
    if len(body) != 4:
        raise PDUError(f"{PDUType(pdu_type).name} PDU has length {len(body)}, PS3.8 fixes it at 4")
    match pdu_type:
        case PDUType.A_ASSOCIATE_RJ:
            return AAssociateRJ(body[1], body[2], body[3])
        case PDUType.A_RELEASE_RQ:
            return AReleaseRQ()
        case PDUType.A_RELEASE_RP:
            return AReleaseRP()
    return AAbort(body[2], body[3])


def decode_pdu(data: bytes | bytearray | memoryview) -> PDU:
    """Decode exactly one whole PDU (header included). Raises PDUError on anything invalid."""
    buf = memoryview(data)
    if len(buf) < 6:
        raise PDUError(f"{len(buf)} bytes are too few for a PDU header")
    pdu_type, length = _HEADER.unpack_from(buf, 0)
    if length != len(buf) - 6:
        raise PDUError(f"PDU length field says {length} bytes, {len(buf) - 6} follow")
    body = buf[6:]
    match pdu_type:
        case PDUType.P_DATA_TF:
            return _decode_pdata(body)
        case PDUType.A_ASSOCIATE_RQ:
            return _decode_associate(body, True)
        case PDUType.A_ASSOCIATE_AC:
            return _decode_associate(body, False)
        case PDUType.A_ASSOCIATE_RJ | PDUType.A_RELEASE_RQ | PDUType.A_RELEASE_RP | PDUType.A_ABORT:
            return _decode_fixed(pdu_type, body)
    raise UnrecognizedPDUError(
        f"unrecognized PDU type 0x{pdu_type:02X} (PS3.8 9.3.1 defines 01H-07H)"
    )


_KNOWN_TYPES = frozenset(PDUType)
_FIXED_TYPES = frozenset(
    (PDUType.A_ASSOCIATE_RJ, PDUType.A_RELEASE_RQ, PDUType.A_RELEASE_RP, PDUType.A_ABORT)
)


class PDUReader:
    """Cut a byte stream into whole PDUs.

    ``feed(data)`` appends; iterating ``pdus()`` yields each complete PDU. A PDU whose length
    field exceeds ``max_pdu_length`` (our advertised receive limit plus slack for the
    A-ASSOCIATE PDUs, which the limit does not cover) raises PDUError before it is buffered.
    """

    # A-ASSOCIATE PDUs are not bound by the negotiated maximum (PS3.8 D.1); cap them anyway.
    MAX_ASSOCIATE_LENGTH = 1 << 20

    def __init__(self, max_pdu_length: int = 0) -> None:
        # What is buffered: the bytes object a recv returned, as it is, while nothing else
        # is (PDUs are then views of it: bytes never change), else a bytearray; or a PDU
        # that straddled two recvs, joined alone, with the later recv's bytes in _next.
        self._buffer: bytes | bytearray = b""
        self._pos = 0
        self._next: bytes | None = None  # what follows _buffer, from _next_pos on
        self._next_pos = 0
        self.max_pdu_length = max_pdu_length  # 0 = unlimited (P-DATA-TF)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._next is not None:  # fed again before all was read: one buffer again
            self._buffer = bytearray(memoryview(self._buffer)[self._pos :])
            self._buffer += memoryview(self._next)[self._next_pos :]
            self._pos, self._next = 0, None
        buf, pos = self._buffer, self._pos
        left = len(buf) - pos
        if type(data) is bytes:
            if not left:
                self._buffer, self._pos = data, 0  # the usual case: no copy
                return
            if left >= 6:  # a PDU straddles the two recvs: copy it alone, not all that came
                need = 6 + _HEADER.unpack_from(buf, pos)[1] - left
                if 0 < need <= len(data):
                    self._buffer = b"".join((memoryview(buf)[pos:], memoryview(data)[:need]))
                    self._pos, self._next, self._next_pos = 0, data, need
                    return
        if type(buf) is bytes:  # views of it may be out there: the rest goes to a new buffer
            self._buffer = bytearray(memoryview(buf)[pos:])
        elif pos:
            del buf[:pos]
        self._pos = 0
        self._buffer += data

    @property
    def buffered(self) -> int:
        pending = len(self._next) - self._next_pos if self._next is not None else 0
        return len(self._buffer) - self._pos + pending

    def next_raw(self) -> tuple[int, memoryview] | None:
        """The next complete PDU as (type, whole PDU bytes), or None if more bytes are needed."""
        buf, pos = self._buffer, self._pos
        if pos == len(buf) and self._next is not None:  # past a joined PDU: the recv after it
            buf, pos = self._buffer, self._pos = self._next, self._next_pos
            self._next = None
        if len(buf) - pos < 6:
            return None
        pdu_type, length = _HEADER.unpack_from(buf, pos)
        if pdu_type not in _KNOWN_TYPES:
            raise UnrecognizedPDUError(
                f"unrecognized PDU type 0x{pdu_type:02X} (PS3.8 9.3.1 defines 01H-07H)"
            )
        if pdu_type in _FIXED_TYPES and length != 4:
            # judged from the header: waiting for a bogus body could stall the association
            raise PDUError(f"{_type_name(pdu_type)} PDU has length {length}, PS3.8 fixes it at 4")
        limit = self.max_pdu_length if pdu_type == PDUType.P_DATA_TF else self.MAX_ASSOCIATE_LENGTH
        if limit and length > limit:
            raise PDUError(
                f"{_type_name(pdu_type)} PDU of {length} bytes exceeds the maximum of {limit}"
            )
        end = pos + 6 + length
        if len(buf) < end:
            return None
        if type(buf) is bytes:  # a view of what recv returned (or of a joined PDU): no copy
            raw = memoryview(buf)[pos:end]
        elif pos == 0 and end == len(buf):  # the buffer is exactly this PDU; hand it over
            raw = memoryview(buf)
            self._buffer = b""
            return pdu_type, raw
        else:
            raw = memoryview(bytes(memoryview(buf)[pos:end]))  # one copy, survives compaction
        self._pos = end
        return pdu_type, raw

    def pdus(self) -> Iterator[PDU]:
        while (item := self.next_raw()) is not None:
            yield decode_pdu(item[1])


def _type_name(pdu_type: int) -> str:
    try:
        return PDUType(pdu_type).name.replace("_", "-")
    except ValueError:
        return f"type 0x{pdu_type:02X}"
