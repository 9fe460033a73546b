"""Receiving side of PS3.8 9.3.5 / Annex E: PDVs in, DIMSE message events out (sans-IO).

    assembler.feed(pdata_tf)
    while (event := assembler.next_event()) is not None:
        ...

Every message yields ``CommandReceived`` once its command set is whole, then exactly one of:
``MessageReceived`` (no data set, or the data set accumulated in a bytearray) or
``DatasetComplete`` (the data set went to a sink). After ``CommandReceived`` the consumer may
call ``set_sink(sink)`` to stream that message's data set (e.g. to a file) instead of holding
it; the assembler processes nothing beyond an event until ``next_event`` is called again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Protocol

from pacsbox.dimse.commands import DIMSEError
from pacsbox.dimse.messages import DIMSEMessage, decode_command, message_name
from pacsbox.records import record
from pacsbox.ul.pdu import PDV, PDataTF


class DatasetSink(Protocol):
    """Where a streamed data set goes, fragment by fragment (a file opened "wb" is one)."""

    def write(self, data: memoryview, /) -> object: ...


@record(frozen=True)
class CommandReceived:
    context_id: int
    message: DIMSEMessage


@record(frozen=True)
class MessageReceived:
    """A whole message; ``dataset`` is None when the message has none."""

    context_id: int
    message: DIMSEMessage
    dataset: bytearray | None


@record(frozen=True)
class DatasetComplete:
    """The last fragment of a data set was written to ``sink`` (``length`` bytes in all)."""

    context_id: int
    message: DIMSEMessage
    sink: DatasetSink
    length: int


Event = CommandReceived | MessageReceived | DatasetComplete

# States between PDVs: waiting for a command, in a command set, in a data set.
_IDLE, _COMMAND, _DATASET = range(3)


def _label(msg: DIMSEMessage) -> str:
    msg_id = getattr(msg, "message_id", None)
    if msg_id is None:
        msg_id = getattr(msg, "message_id_being_responded_to", "?")
    return f"{message_name(msg)} (message ID {msg_id})"


class MessageAssembler:
    """Reassembles the PDVs of one association into DIMSE messages, one message at a time."""

    __slots__ = (
        "_command",
        "_context_id",
        "_dataset",
        "_events",
        "_message",
        "_pdvs",
        "_previous",
        "_received",
        "_sink",
        "_state",
    )

    def __init__(self) -> None:
        self._pdvs: deque[PDV] = deque()
        self._events: deque[Event] = deque()
        self._state = _IDLE
        self._context_id = 0
        self._command = bytearray()  # fragments of a command set split over several PDVs
        self._message: DIMSEMessage | None = None  # whose data set is being received
        self._previous: DIMSEMessage | None = None  # last complete message, for errors
        self._dataset = bytearray()
        self._sink: DatasetSink | None = None
        self._received = 0

    @property
    def idle(self) -> bool:
        """True between messages (nothing half received)."""
        return self._state == _IDLE and not self._pdvs

    @property
    def active_sink(self) -> DatasetSink | None:
        """The sink of a data set being received (to discard it if the association dies)."""
        return self._sink

    def feed(self, pdvs: PDataTF | Iterable[PDV]) -> None:
        """Queue the PDVs of a received P-DATA-TF; ``next_event`` processes them."""
        self._pdvs.extend(pdvs.pdvs if isinstance(pdvs, PDataTF) else pdvs)

    def next_event(self) -> Event | None:
        """The next event from the queued PDVs, or None when they are used up.

        Raises ``DIMSEError`` on a protocol error (the association should then be aborted).
        """
        if self._events:
            return self._events.popleft()
        pdvs = self._pdvs
        while pdvs:
            event = self._receive(pdvs.popleft())
            if event is not None:
                return event
        return None

    def set_sink(self, sink: DatasetSink) -> None:
        """Stream the data set of the current message to ``sink`` instead of a bytearray.

        Call after ``CommandReceived``; bytes accumulated before the call are written to the
        sink first, so a consumer may also switch to a sink once a data set grows large.
        """
        if self._state != _DATASET or self._message is None:
            raise RuntimeError(
                "set_sink() needs a message whose data set is awaited; call it after a "
                "CommandReceived event for a message that has a data set"
            )
        if self._sink is None and self._dataset:
            sink.write(memoryview(self._dataset))
            self._dataset = bytearray()
        self._sink = sink

    # -- one PDV ----------------------------------------------------------------------------

    def _receive(self, pdv: PDV) -> Event | None:
        if not pdv.is_command:
            if self._state != _DATASET:
                self._unexpected_data(pdv)
            if pdv.context_id != self._context_id:
                self._mixed_contexts(pdv)
            data = pdv.data
            self._received += len(data)
            if self._sink is None:
                self._dataset += data
            else:
                self._sink.write(data if isinstance(data, memoryview) else memoryview(data))
            return self._finish_dataset() if pdv.is_last else None

        if self._state == _DATASET:
            assert self._message is not None
            raise DIMSEError(
                f"received a command PDV (presentation context {pdv.context_id}) while the data "
                f"set of {_label(self._message)} was incomplete ({self._received} bytes, no last "
                "fragment yet): the peer started a new message before finishing the previous one"
            )
        if self._state == _COMMAND:
            if pdv.context_id != self._context_id:
                self._mixed_contexts(pdv)
            self._command += pdv.data
            if not pdv.is_last:
                return None
            command: bytes | bytearray | memoryview = self._command
            self._command = bytearray()
        else:
            self._context_id = pdv.context_id
            if not pdv.is_last:
                self._command += pdv.data
                self._state = _COMMAND
                return None
            command = pdv.data  # the usual case: a whole command in one PDV, decoded in place
        return self._command_complete(command)

    def _command_complete(self, command: bytes | bytearray | memoryview) -> Event:
        try:
            message = decode_command(command)
        except DIMSEError as exc:
            raise DIMSEError(f"command on presentation context {self._context_id}: {exc}") from exc
        received = CommandReceived(self._context_id, message)
        if message.has_dataset:
            self._state = _DATASET
            self._message = message
            self._received = 0
        else:
            self._state = _IDLE
            self._previous = message
            self._events.append(MessageReceived(self._context_id, message, None))
        return received

    def _finish_dataset(self) -> Event:
        message = self._message
        assert message is not None
        event: Event
        if self._sink is None:
            event = MessageReceived(self._context_id, message, self._dataset)
            self._dataset = bytearray()
        else:
            event = DatasetComplete(self._context_id, message, self._sink, self._received)
            self._sink = None
        self._state = _IDLE
        self._message = None
        self._previous = message
        return event

    # -- errors -----------------------------------------------------------------------------

    def _unexpected_data(self, pdv: PDV) -> None:
        where = f"a data set PDV (presentation context {pdv.context_id}, {len(pdv.data)} bytes)"
        if self._state == _COMMAND:
            raise DIMSEError(
                f"received {where} before the last fragment of the command set: a data set "
                "follows a whole command set (PS3.7 6.3.1); the peer's fragmentation is wrong"
            )
        previous = self._previous
        if previous is not None and not previous.has_dataset:
            raise DIMSEError(
                f"received {where} after {_label(previous)}, whose CommandDataSetType (0x0101) "
                "says no data set follows; the peer's command and data disagree"
            )
        raise DIMSEError(
            f"received {where} with no command before it: every DIMSE message starts with "
            "its command set (PS3.7 6.3.1); the peer is out of step"
        )

    def _mixed_contexts(self, pdv: PDV) -> None:
        what = _label(self._message) if self._message is not None else "a command set"
        raise DIMSEError(
            f"received a PDV on presentation context {pdv.context_id} in the middle of {what} "
            f"on presentation context {self._context_id}: all fragments of a message use one "
            "presentation context (PS3.8 9.3.5); the peer interleaved messages"
        )
