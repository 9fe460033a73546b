"""Sending side of PS3.8 9.3.5 / Annex E: cut a DIMSE message into P-DATA-TF PDUs.

The command set goes in command PDVs, then the data set in data PDVs; the last fragment of
each has the "last" bit of the message control header (PS3.8 E.2). A data set can be
bytes-like (fragments are memoryview slices of it, never copies), a binary file object or an
iterable of chunks (read or pulled one fragment at a time, so a large file streams through).
Consecutive PDVs share a PDU while it stays within the peer's maximum PDU length.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from pacsbox.dimse.commands import DIMSEError
from pacsbox.dimse.messages import DIMSEMessage, encode_command, message_name
from pacsbox.ul.pdu import PDV, PDataTF

BytesLike = bytes | bytearray | memoryview
DatasetSource = BytesLike | BinaryIO | Iterable[BytesLike]

PDV_HEADER_LENGTH = 6  # PS3.8 9.3.5.1: item length (4), context ID (1), control header (1)
UNLIMITED_FRAGMENT = 0xFFFF_FFF0  # a PDV item length is 32 bits
STREAM_CHUNK = 1 << 20  # read size for streamed data sets when the peer sets no limit


def fragment_size(max_pdu_length: int) -> int:
    """The largest PDV data that fits a P-DATA-TF PDU of the peer's maximum length.

    ``max_pdu_length`` is the Maximum Length Received the peer announced (PS3.8 D.1), the
    length of the PDU's variable field; 0 means no limit.
    """
    if max_pdu_length == 0:
        return UNLIMITED_FRAGMENT
    if max_pdu_length <= PDV_HEADER_LENGTH:
        raise DIMSEError(
            f"maximum PDU length {max_pdu_length} leaves no room for data after the "
            f"{PDV_HEADER_LENGTH}-byte PDV header; the peer's A-ASSOCIATE Maximum Length is unusable"
        )
    return max_pdu_length - PDV_HEADER_LENGTH


def _bytes_view(data: BytesLike) -> memoryview:
    """A flat byte view of ``data``, without copying it."""
    mv = memoryview(data)
    return mv if mv.format == "B" and mv.ndim == 1 else mv.cast("B")


def _slices(context_id: int, is_command: bool, data: BytesLike, size: int) -> Iterator[PDV]:
    mv = _bytes_view(data)
    total = len(mv)
    if total == 0:
        yield PDV(context_id, is_command, True, mv)
        return
    for start in range(0, total, size):
        yield PDV(context_id, is_command, start + size >= total, mv[start : start + size])


READ_SIZE = 1 << 18  # files are read in pieces this large (fewer syscalls), then sliced


def _chunks(source: BinaryIO | Iterable[BytesLike], size: int) -> Iterator[memoryview]:
    """Non-empty pieces of at most ``size`` bytes from a file or an iterable of chunks."""
    read = getattr(source, "read", None)
    step = max(size, READ_SIZE) if size < UNLIMITED_FRAGMENT else STREAM_CHUNK
    chunks = iter(lambda: read(step), b"") if read is not None else iter(source)  # type: ignore[arg-type]
    for chunk in chunks:
        mv = _bytes_view(chunk)
        for start in range(0, len(mv), size):
            yield mv[start : start + size]


def _streamed(context_id: int, source: BinaryIO | Iterable[BytesLike], size: int) -> Iterator[PDV]:
    pending: memoryview | None = None  # held back one piece to know which one is last
    for piece in _chunks(source, size):
        if pending is not None:
            yield PDV(context_id, False, False, pending)
        pending = piece
    yield PDV(context_id, False, True, pending if pending is not None else memoryview(b""))


def _pack(pdvs: Iterator[PDV], limit: int) -> Iterator[PDataTF]:
    """Put consecutive PDVs into one PDU while its variable field stays within ``limit``."""
    batch: list[PDV] = []
    used = 0
    for pdv in pdvs:
        need = PDV_HEADER_LENGTH + len(pdv.data)
        if batch and used + need > limit:
            yield PDataTF(batch)
            batch, used = [], 0
        batch.append(pdv)
        used += need
    if batch:
        yield PDataTF(batch)


def fragment(
    context_id: int,
    command: BytesLike,
    dataset: DatasetSource | None = None,
    max_pdu_length: int = 0,
) -> Iterator[PDataTF]:
    """P-DATA-TF PDUs carrying an encoded command set and its data set, if any.

    Every PDU fits ``max_pdu_length`` (0: unlimited). A generator: a streamed data set is
    read only as the PDUs are taken.
    """
    size = fragment_size(max_pdu_length)
    limit = max_pdu_length or STREAM_CHUNK + PDV_HEADER_LENGTH  # pack small PDVs only

    def pdvs() -> Iterator[PDV]:
        yield from _slices(context_id, True, command, size)
        if dataset is None:
            return
        if isinstance(dataset, bytes | bytearray | memoryview):
            yield from _slices(context_id, False, dataset, size)
        else:
            yield from _streamed(context_id, dataset, min(size, STREAM_CHUNK))

    return _pack(pdvs(), limit)


def encode_message(
    context_id: int,
    message: DIMSEMessage,
    dataset: DatasetSource | None = None,
    max_pdu_length: int = 0,
) -> Iterator[PDataTF]:
    """``fragment`` of ``message``'s command set, checking it agrees on having a data set."""
    if message.has_dataset != (dataset is not None):
        says = "a data set follows" if message.has_dataset else "no data set follows"
        given = "none was given" if dataset is None else "one was given"
        raise DIMSEError(
            f"{message_name(message)}: its has_dataset says {says} but {given}; "
            "pass the data set or set has_dataset accordingly"
        )
    return fragment(context_id, encode_command(message), dataset, max_pdu_length)


# -- the sending fast path ---------------------------------------------------------------------

_ONE_PDV_PDU = struct.Struct(">BxIIBB")  # PDU type, PDU length, PDV length, context, control


def encode_message_buffers(
    context_id: int,
    message: DIMSEMessage,
    dataset: DatasetSource | None = None,
    max_pdu_length: int = 0,
) -> Iterator[tuple[bytes, BytesLike]]:
    """The message as P-DATA-TF PDUs of one PDV each (as DCMTK sends them), each given as
    its 12 header bytes and its data: no PDV or PDU objects on the way to the socket."""
    if message.has_dataset != (dataset is not None):
        return iter(encode_message(context_id, message, dataset, max_pdu_length))  # the error
    size = fragment_size(max_pdu_length)
    pack = _ONE_PDV_PDU.pack

    def pieces() -> Iterator[tuple[bytes, BytesLike]]:
        command = _bytes_view(encode_command(message))
        for start in range(0, len(command), size):
            piece = command[start : start + size]
            last = start + size >= len(command)
            yield pack(4, len(piece) + 6, len(piece) + 2, context_id, 3 if last else 1), piece
        if dataset is None:
            return
        if isinstance(dataset, bytes | bytearray | memoryview):
            chunks: Iterator[memoryview] = (
                iter([_bytes_view(dataset)]) if len(dataset) else iter(())
            )
            source = (mv[s : s + size] for mv in chunks for s in range(0, len(mv), size))
        else:
            source = _chunks(dataset, size)
        pending = None
        for piece in source:
            if pending is not None:
                yield pack(4, len(pending) + 6, len(pending) + 2, context_id, 0), pending
            pending = piece
        if pending is None:
            pending = memoryview(b"")
        yield pack(4, len(pending) + 6, len(pending) + 2, context_id, 2), pending

    return pieces()
