"""One association over asyncio: drives the sans-IO ``ul.Connection`` and DIMSE assembly.

``Association`` is the asyncio Protocol of one TCP connection, in either role. It turns
received bytes into DIMSE messages (requests go to the ``RequestHandler`` registered for their
type, responses to the ``request`` that waits for them) and sends messages as P-DATA-TF PDUs
within the peer's max PDU, honouring transport flow control. Timeouts (PS3.8 ARTIM, ACSE, DIMSE,
idle socket) are timers on the loop; nothing sleeps or polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import field

from pacsbox.records import record

from ..dimse import (
    CCancelRQ,
    CommandReceived,
    DatasetComplete,
    DatasetSink,
    DatasetSource,
    DIMSEError,
    DIMSEMessage,
    MessageAssembler,
    MessageReceived,
    encode_message_buffers,
    message_name,
)
from ..dimse.fragment import BytesLike
from ..dimse.status import StatusCategory, category_of
from ..errors import PacsboxError
from ..log import log
from ..ul.connection import (
    AbortIndication,
    AssociateAccepted,
    AssociateIndication,
    AssociateRejected,
    Connection,
    DataIndication,
    LocalProtocolError,
    ProviderAbort,
    ReleaseCollision,
    ReleaseConfirmation,
    ReleaseIndication,
    TransportClosed,
)
from ..ul.diagnosis import (
    AssociationAbortedError,
    AssociationRejectedError,
    NoAcceptedContextError,
    describe_abort,
    describe_refused_contexts,
    describe_rejection,
)
from ..ul.dump import dump_associate_ac, dump_associate_rq, dump_pdu_hex
from ..ul.negotiation import AgreedContext, agreed_contexts, max_send_pdv
from ..ul.pdu import AAssociateAC, AAssociateRJ, AAssociateRQ, AbortSource, encode_pdu
from ..wording import see_debug

DEBUG = logging.DEBUG
WRITE_BATCH = 1 << 18  # bytes of PDUs handed to the transport at once


class NetworkError(PacsboxError):
    """The connection failed or timed out; the message says where and what to check."""


class DIMSETimeoutError(NetworkError):
    """No DIMSE response within the DIMSE timeout (-td)."""


_ASYNCIO_RECV_SIZE = 256 * 1024  # _SelectorTransport.max_size
RECV_SIZE = 127 * 1024  # a bytes object this size stays under glibc's 128 KiB mmap threshold


@record
class Timeouts:
    """DCMTK's four timeouts, in seconds (None: unlimited)."""

    connect: float | None = None  # -to: TCP connection request
    acse: float | None = 30.0  # -ta: association negotiation and release; also ARTIM
    dimse: float | None = None  # -td: waiting for a DIMSE message
    idle: float | None = 60.0  # -ts: no byte from the peer while we wait for one


class RequestHandler:
    """Serves one kind of DIMSE request on an association (a service class provider).

    ``open_sink`` may return a sink for the request's data set, so it is written as it
    arrives instead of collected in memory; ``handle`` then gets that sink as ``dataset``.
    ``handle`` sends the response(s) with ``assoc.send``.

    A handler whose answer needs no awaiting (one response, no C-CANCEL, no I/O on the
    association: a C-STORE) may set ``answers_now`` and implement ``answer``: when no other
    request is being served, the association calls it from the receive callback and sends
    its response at once, without a trip through the event loop to a serving task; then
    ``answered`` runs (work that may follow the response). ``handle`` must give the same
    answer: it serves the request when another one is still in progress.

    ``answer`` may instead take ``assoc.answer_later()`` and return LATER, then call what it
    took with the response before long (the storage SCP commits the index rows of the
    C-STOREs that arrived in one turn of the event loop together, then answers each): the
    association answers nothing else meanwhile.
    """

    answers_now = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "handle" in cls.__dict__ and "answer" not in cls.__dict__:
            cls.answers_now = False  # a subclass's own handle() is what it means to run

    def answer(
        self,
        assoc: Association,
        context: AgreedContext,
        request: DIMSEMessage,
        dataset: bytearray | DatasetSink | None,
    ) -> DIMSEMessage:
        raise NotImplementedError

    def answered(self, assoc: Association) -> None:
        """After ``answer``'s response was sent."""

    def open_sink(
        self, assoc: Association, context: AgreedContext, request: DIMSEMessage
    ) -> DatasetSink | None:
        return None

    async def handle(
        self,
        assoc: Association,
        context: AgreedContext,
        request: DIMSEMessage,
        dataset: bytearray | DatasetSink | None,
    ) -> None:
        """Serve the request; by default the response ``answer`` gives, then ``answered``."""
        await assoc.send(context.context_id, self.answer(assoc, context, request, dataset))
        self.answered(assoc)

    def close(self) -> None:
        """Release what the handler holds (the server is stopping)."""


# What RequestHandler.answer returns when it answers later, through assoc.answer_later()
LATER: DIMSEMessage = object()  # type: ignore[assignment]


@record
class Operation:
    """A request being served; ``cancelled`` is set by a C-CANCEL-RQ for its message ID."""

    context: AgreedContext
    request: DIMSEMessage
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


_END = object()  # sentinel in response queues: the association is gone


def _failure_response(request: DIMSEMessage, status: int, comment: str) -> DIMSEMessage | None:
    """``request``'s own response type with a failure ``status``; None if it has none."""
    from ..dimse.messages import MESSAGE_TYPES

    rsp_type = MESSAGE_TYPES.get(request.command_field | 0x8000)
    if rsp_type is None:
        return None
    fields = {
        "message_id_being_responded_to": request.message_id,  # type: ignore[attr-defined]
        "status": status,
        "affected_sop_class_uid": getattr(request, "affected_sop_class_uid", None),
        "error_comment": comment[:64],
    }
    if hasattr(request, "affected_sop_instance_uid"):
        fields["affected_sop_instance_uid"] = request.affected_sop_instance_uid
    return rsp_type(**fields)


class PendingRequest:
    """A request sent with ``Association.begin``, its responses still to come."""

    __slots__ = ("_assoc", "_message_id", "_queue", "followed_by")

    def __init__(self, assoc: Association, message_id: int, queue: asyncio.Queue) -> None:
        self._assoc, self._message_id, self._queue = assoc, message_id, queue
        self.followed_by: PendingRequest | BaseException | None = None

    def follow_with(
        self,
        context_id: int,
        message: DIMSEMessage,
        encoded: list[tuple[bytes, BytesLike]],
        before: Callable[[], bool] | None = None,
    ) -> None:
        """Send ``message`` (``Association.encode``d, in memory) the moment this request's final
        response arrives with a Success status: from the receive callback itself, before the
        waiting task is even resumed, so the peer gets the next request without a trip
        through the event loop. Afterwards ``followed_by`` is the new PendingRequest (or the
        error that stopped its sending); it stays None when the response was not a Success,
        and then nothing was sent. ``before`` runs just before the sending (a log line, a
        last look at a cancel flag): when it returns False nothing is sent either."""
        assoc = self._assoc

        def send_now() -> None:
            try:
                if before is not None and not before():
                    return
                self.followed_by = assoc._begin_now(context_id, message, encoded)
            except BaseException as exc:  # handed to the waiting task, not to data_received
                self.followed_by = exc

        assoc._follow[self._message_id] = send_now

    def unfollow(self) -> None:
        """Forget ``follow_with`` (when the response did not trigger it)."""
        self._assoc._follow.pop(self._message_id, None)

    async def final(self) -> tuple[DIMSEMessage, bytearray | DatasetSink | None]:
        """The final response (pending ones are skipped)."""
        try:
            while True:
                response = await self._assoc._next_response(self._queue)
                if category_of(response[0].status) is not StatusCategory.PENDING:  # type: ignore[attr-defined]
                    return response
        finally:
            self._assoc._responses.pop(self._message_id, None)


class Association(asyncio.Protocol):
    """One DICOM association over TCP. Create requestors with ``Association.connect``;
    acceptors are created by ``pacsbox.net.Server``."""

    def __init__(
        self,
        *,
        requestor: bool,
        max_pdu_length: int = 16384,
        timeouts: Timeouts | None = None,
        handlers: dict[type, RequestHandler] | None = None,
        decide: Callable[[AAssociateRQ, Association], AAssociateAC | AAssociateRJ] | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.requestor = requestor
        self.timeouts = timeouts or Timeouts()
        self.handlers = handlers or {}
        self._decide = decide
        self._conn = Connection(requestor=requestor, max_pdu_length=max_pdu_length)
        self._assembler = MessageAssembler()
        self._transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] | None = None
        self.rq: AAssociateRQ | None = None
        self.ac: AAssociateAC | None = None
        self._direct: socket.socket | None = None
        self.contexts: dict[int, AgreedContext] = {}
        self.established: asyncio.Future[None] = self.loop.create_future()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self._release_done: asyncio.Future[None] | None = None
        self._responses: dict[int, asyncio.Queue] = {}
        self._follow: dict[int, Callable[[], None]] = {}  # message ID -> PendingRequest.follow_with
        self._requests: asyncio.Queue = asyncio.Queue()  # (context, request, dataset) | _END
        self._serving = False  # the serving task is busy with a request
        self._answering_now: tuple[RequestHandler, AgreedContext, DIMSEMessage] | None = None
        self._answering_later: asyncio.Future[None] | None = None  # answer_later's, until sent
        self._operations: dict[int, Operation] = {}
        self._worker: asyncio.Task | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._message_id = 0
        self._send_limit = 0
        self._artim: asyncio.TimerHandle | None = None
        self._artim_starts = 0
        self._idle: asyncio.TimerHandle | None = None
        self._last_input = 0.0
        self._error: BaseException | None = None

    # -- establishing --------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        rq: AAssociateRQ,
        *,
        timeouts: Timeouts | None = None,
        handlers: dict[type, RequestHandler] | None = None,
        require_context: bool = True,
    ) -> Association:
        """Open TCP to host:port, send ``rq`` and wait for the peer's answer.

        With ``require_context`` (the default) an association on which the peer accepted no
        presentation context is released and reported as NoAcceptedContextError.

        Raises AssociationRejectedError, AssociationAbortedError or NetworkError, each with a
        message that says what to change.
        """
        timeouts = timeouts or Timeouts()
        max_pdu = rq.user_information.max_length or 0
        loop = asyncio.get_running_loop()
        assoc = cls(requestor=True, max_pdu_length=max_pdu, timeouts=timeouts, handlers=handlers)
        assoc._conn.request(rq)
        if log.isEnabledFor(DEBUG):
            log.debug(
                "Request Parameters:\n"
                + "\n".join(dump_associate_rq(rq, ours=True, local_max_pdu=max_pdu))
            )
        log.info("Requesting Association")
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: assoc, host, port), timeouts.connect
            )
        except TimeoutError:
            raise NetworkError(
                f"No TCP connection to {host}:{port} within {timeouts.connect} s (-to). "
                "Check host and port, and that no firewall drops the connection."
            ) from None
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise NetworkError(
                f"Could not connect to {host}:{port}: {reason}. "
                "Is the DICOM peer running and listening on that port? Check host and port."
            ) from None
        try:
            await asyncio.wait_for(asyncio.shield(assoc.established), timeouts.acse)
        except TimeoutError:
            assoc.abort()
            raise NetworkError(
                f"{host}:{port} accepted the TCP connection but did not answer the association "
                f"request within {timeouts.acse} s (-ta). Is it a DICOM application?"
            ) from None
        if require_context and not assoc.contexts and rq.presentation_contexts:
            await assoc.release()
            raise NoAcceptedContextError(rq, assoc.ac)  # type: ignore[arg-type]
        return assoc

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Nagle + delayed ACK would cost ~40 ms per small DIMSE message
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # our own handle on the socket, for gathered writes (see _write)
            with contextlib.suppress(OSError, AttributeError):
                self._direct = socket.socket(fileno=os.dup(sock.fileno()))
        # asyncio's selector transport receives into a new 256 KiB bytes object each time:
        # above glibc's mmap threshold, so every recv cost an mmap, an mremap, a munmap and
        # page faults (~30 us for a 40 KB message). Under the threshold the heap serves it.
        if getattr(transport, "max_size", None) == _ASYNCIO_RECV_SIZE:
            transport.max_size = RECV_SIZE  # type: ignore[attr-defined]
        self.peer = transport.get_extra_info("peername")
        self._last_input = self.loop.time()
        self._conn.transport_connected()
        self._after_state_change()
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        self._last_input = self.loop.time()
        try:
            for event in self._conn.receive_data(data):
                self._on_event(event)
                if isinstance(event, AssociateIndication):  # decided: go on with what followed
                    for later in self._conn.receive_data(b""):
                        self._on_event(later)
        except Exception as exc:  # a bug on our side: this association ends, the server lives
            log.exception("Internal error while receiving; aborting the association")
            self._error = NetworkError(f"Internal error in pacsbox: {exc!r}")
            self.abort(source=AbortSource.SERVICE_PROVIDER)
            return
        self._after_state_change()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._direct is not None:
            self._direct.close()
            self._direct = None
        for event in self._conn.transport_closed():
            self._on_event(event)
        self._finish(self._error)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- events from the sans-IO connection ----------------------------------------------------

    def _on_event(self, event) -> None:
        if isinstance(event, DataIndication):
            self._on_data(event)
        elif isinstance(event, AssociateIndication):
            self._on_associate_rq(event.rq)
        elif isinstance(event, AssociateAccepted):
            self._on_accepted(event.ac)
        elif isinstance(event, AssociateRejected):
            self._on_rejected(event.rj)
        elif isinstance(event, ReleaseIndication):
            log.info("Received Association Release Request")
            self._conn.release_response()
        elif isinstance(event, ReleaseCollision):
            if event.requestor:
                self._conn.release_response()
        elif isinstance(event, ReleaseConfirmation):
            if self._conn.awaiting_release_response:  # acceptor side of a collision
                self._conn.release_response()
            if self._release_done is not None and not self._release_done.done():
                self._release_done.set_result(None)
        elif isinstance(event, AbortIndication):
            self._error = AssociationAbortedError(
                event.source, event.reason, during_negotiation=not self.established.done()
            )
            # ours to report as a failure when we asked; a sender that gives up on a
            # server (DCMTK's storescu after a file it cannot send) is the sender's to say
            (log.error if self.requestor else log.warning)("Association Aborted by the peer")
            for line in describe_abort(event.source, event.reason).lines:
                log.info(line)
        elif isinstance(event, ProviderAbort):
            self._error = NetworkError(
                f"Protocol error from the peer, association aborted: {event.detail}"
            )
            log.error("Aborting association: %s", event.detail)
        elif isinstance(event, TransportClosed) and event.aborted and self._error is None:
            self._error = NetworkError(
                "The peer closed the connection without releasing the association."
            )

    def _on_associate_rq(self, rq: AAssociateRQ) -> None:
        self.rq = rq
        if log.isEnabledFor(DEBUG):
            log.debug(
                "Association Received:\n"
                + "\n".join(
                    dump_associate_rq(rq, ours=False, local_max_pdu=self._conn.max_pdu_length)
                )
            )
        answer = self._decide(rq, self) if self._decide else AAssociateRJ(1, 1, 1)
        if isinstance(answer, AAssociateRJ):
            self._conn.reject(answer)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "Association Rejected: %s",
                    "; ".join(
                        describe_rejection(answer, rq.called_ae_title, rq.calling_ae_title).lines[
                            1:
                        ]
                    ),
                )
            self._settle_established(
                AssociationRejectedError(answer, rq.called_ae_title, rq.calling_ae_title)
            )
            return
        self._conn.accept(answer)
        self.ac = answer
        self.contexts = agreed_contexts(rq, answer)
        if log.isEnabledFor(DEBUG):
            log.debug(
                "Association Parameters Negotiated:\n"
                + "\n".join(dump_associate_ac(rq, answer, ours=False))
            )
        log.info("Association Acknowledged (Max Send PDV: %d)", self.max_send_pdv)
        self._settle_established(None)
        self._worker = self.loop.create_task(self._serve_requests())

    def _on_accepted(self, ac: AAssociateAC) -> None:
        self.rq = self._conn.associate_rq
        self.ac = ac
        self.contexts = agreed_contexts(self.rq, ac)
        if log.isEnabledFor(DEBUG):
            raw = encode_pdu(ac)
            log.debug("\n".join(dump_pdu_hex(raw)))
            log.debug(
                "Association Parameters Negotiated:\n"
                + "\n".join(dump_associate_ac(self.rq, ac, ours=True))
            )
        log.info("Association Accepted (Max Send PDV: %d)", self.max_send_pdv)
        self._settle_established(None)
        if self.handlers:
            self._worker = self.loop.create_task(self._serve_requests())

    def _on_rejected(self, rj: AAssociateRJ) -> None:
        rq = self._conn.associate_rq or self.rq
        called, calling = (rq.called_ae_title, rq.calling_ae_title) if rq else ("", "")
        self._settle_established(AssociationRejectedError(rj, called, calling))

    def _settle_established(self, error: BaseException | None) -> None:
        if self.established.done():
            return
        if error is None:
            self.established.set_result(None)
        else:
            self.established.set_exception(error)
            self.established.exception()  # retrieved here: a server may never await it

    def _on_data(self, event: DataIndication) -> None:
        assembler = self._assembler
        try:
            assembler.feed(event.pdu)
            while (item := assembler.next_event()) is not None:
                if isinstance(item, CommandReceived):
                    self._on_command(item.context_id, item.message)
                else:
                    self._on_message(item)
        except DIMSEError as exc:
            log.error("DIMSE protocol error from the peer: %s", exc)
            self._error = NetworkError(f"DIMSE protocol error from the peer: {exc}")
            self.abort(source=AbortSource.SERVICE_PROVIDER)

    def _on_command(self, context_id: int, message: DIMSEMessage) -> None:
        if not message.has_dataset:
            return
        handler = self.handlers.get(type(message))
        context = self.contexts.get(context_id)
        if handler is not None and context is not None:
            sink = handler.open_sink(self, context, message)
            if sink is not None:
                self._assembler.set_sink(sink)

    def _on_message(self, item: MessageReceived | DatasetComplete) -> None:
        message = item.message
        dataset = item.dataset if isinstance(item, MessageReceived) else item.sink
        responding_to = getattr(message, "message_id_being_responded_to", None)
        if isinstance(message, CCancelRQ):
            operation = self._operations.get(message.message_id_being_responded_to)
            if operation is not None:
                operation.cancelled.set()
            return
        if responding_to is not None:  # a response: to the request that waits for it
            queue = self._responses.get(responding_to)
            if queue is None:
                log.warning(
                    "Ignoring %s for message ID %d: no request of ours has that ID",
                    message_name(message),
                    responding_to,
                )
            else:
                if self._follow and (
                    category_of(message.status) is StatusCategory.SUCCESS  # type: ignore[attr-defined]
                ):
                    send_next = self._follow.pop(responding_to, None)
                    if send_next is not None:
                        send_next()
                queue.put_nowait((message, dataset))
            return
        context = self.contexts.get(item.context_id)
        if context is None:
            self._error = NetworkError(
                f"The peer sent {message_name(message)} on presentation context "
                f"{item.context_id}, which was not accepted"
            )
            self.abort(source=AbortSource.SERVICE_PROVIDER)
            return
        if not self._serving and self._answering_later is None and self._requests.empty():
            handler = self.handlers.get(type(message))
            if handler is not None and handler.answers_now:
                self._answer_now(handler, context, message, dataset)
                return
        self._requests.put_nowait((context, message, dataset))

    def _answer_now(self, handler: RequestHandler, context: AgreedContext, request, dataset):
        """Serve ``request`` here in the receive callback (``RequestHandler.answers_now``)."""
        self._answering_now = (handler, context, request)
        try:
            response = handler.answer(self, context, request, dataset)
        except Exception as exc:  # a bug of ours: this request fails, the association goes on
            log.exception("Error while serving %s", message_name(request))
            response = _failure_response(request, 0x0110, f"pacsbox error: {exc!r}")
            if response is None:
                self.abort(source=AbortSource.SERVICE_PROVIDER)
                return
        finally:
            self._answering_now = None
        if response is not LATER:
            self._respond_now(handler, context, request, response)

    def answer_later(self) -> Callable[[DIMSEMessage], None] | None:
        """For RequestHandler.answer, called from the receive callback: a function that sends
        the response it is given (once), so that ``answer`` may return LATER; requests that
        arrive meanwhile wait for it. None when the request is not answered from the receive
        callback (a serving task's ``handle`` called ``answer``): then answer now."""
        if self._answering_now is None:
            return None
        handler, context, request = self._answering_now
        waiter = self._answering_later = self.loop.create_future()

        def respond(response: DIMSEMessage) -> None:
            if waiter.done():
                return
            waiter.set_result(None)
            if self._answering_later is waiter:
                self._answering_later = None
            self._respond_now(handler, context, request, response)

        return respond

    def _respond_now(self, handler: RequestHandler, context: AgreedContext, request, response):
        if self.closed.done() or not self._conn.is_established:
            return  # the peer went meanwhile
        self._send_now(
            encode_message_buffers(context.context_id, response, None, self.send_pdu_length)
        )
        try:
            handler.answered(self)
        except Exception:
            log.exception("Error after answering %s", message_name(request))

    # -- serving requests ------------------------------------------------------------------

    async def _serve_requests(self) -> None:
        """Serve received requests in order, one at a time (no asynchronous operations)."""
        while True:
            self._serving = False
            item = await self._requests.get()
            self._serving = True
            if self._answering_later is not None:  # an earlier request's answer comes first
                await asyncio.shield(self._answering_later)
                if self.closed.done() and item is not _END:  # the peer went meanwhile
                    discard = getattr(item[2], "discard", None)  # as _discard_unserved does
                    if discard is not None:
                        discard()
                    continue  # to the _END that the closing queued
            if item is _END:
                return
            context, request, dataset = item
            handler = self.handlers.get(type(request))
            message_id = request.message_id  # type: ignore[attr-defined]
            if handler is None:
                await self._refuse_unsupported(context, request)
                continue
            self._operations[message_id] = Operation(context, request)
            try:
                await handler.handle(self, context, request, dataset)
            except (AssociationAbortedError, NetworkError):
                return
            except Exception as exc:
                # a bug of ours: this request fails with a status, the association goes on
                log.exception("Error while serving %s", message_name(request))
                try:
                    await self.respond_failure(context, request, 0x0110, f"pacsbox error: {exc!r}")
                except (AssociationAbortedError, NetworkError):
                    return
            finally:
                self._operations.pop(message_id, None)

    def operation(self, message_id: int) -> Operation | None:
        """The request being served under this message ID (for its cancel flag)."""
        return self._operations.get(message_id)

    async def _refuse_unsupported(self, context: AgreedContext, request: DIMSEMessage) -> None:
        log.warning("Refusing %s: no service for it here", message_name(request))
        # PS3.7 C.5.5 unrecognized operation
        await self.respond_failure(
            context, request, 0x0211, "This SCP does not provide this DIMSE service"
        )

    async def respond_failure(
        self, context: AgreedContext, request: DIMSEMessage, status: int, comment: str
    ) -> None:
        """Answer ``request`` with a failure ``status`` (its own response type)."""
        response = _failure_response(request, status, comment)
        if response is None:
            self.abort(source=AbortSource.SERVICE_PROVIDER)
            return
        await self.send(context.context_id, response)

    # -- sending -------------------------------------------------------------------------------

    @property
    def peer_max_pdu_length(self) -> int:
        return self._conn.peer_max_pdu_length

    def limit_send_pdu(self, length: int) -> None:
        """Send PDUs of at most ``length`` even if the peer takes more (--max-send-pdu)."""
        self._send_limit = length

    @property
    def send_pdu_length(self) -> int:
        """The largest P-DATA-TF we send: the peer's maximum, or our --max-send-pdu limit."""
        peer = self._conn.peer_max_pdu_length
        if self._send_limit and (not peer or self._send_limit < peer):
            return self._send_limit
        return peer

    @property
    def max_send_pdv(self) -> int:
        return max_send_pdv(self.send_pdu_length)

    def next_message_id(self) -> int:
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    def encode(
        self, context_id: int, message: DIMSEMessage, dataset: DatasetSource | None = None
    ) -> Iterable[tuple[bytes, BytesLike]]:
        """The message's PDUs as ``send`` writes them, for a caller that prepares the next
        message while the peer works on the last one. A data set in memory is cut now; a
        streamed one is read as it is sent."""
        pieces = encode_message_buffers(context_id, message, dataset, self.send_pdu_length)
        if dataset is None or isinstance(dataset, bytes | bytearray | memoryview):
            return list(pieces)
        return pieces

    async def send(
        self,
        context_id: int,
        message: DIMSEMessage,
        dataset: DatasetSource | None = None,
        *,
        encoded: Iterable[tuple[bytes, BytesLike]] | None = None,
    ) -> None:
        """Send one DIMSE message (and its data set) within the peer's max PDU; ``encoded``:
        what ``encode`` made of them beforehand."""
        if self.closed.done() or not self._conn.is_established:
            raise self._error or NetworkError("The association is not established any more.")
        conn = self._conn
        batch: list = []
        queued = 0
        if encoded is None:
            encoded = encode_message_buffers(context_id, message, dataset, self.send_pdu_length)
        for header, data in encoded:
            batch += (header, data)
            queued += len(data)
            if queued >= WRITE_BATCH:  # one write for several PDUs: fewer syscalls
                conn.send_pdata_buffers(batch)
                self._write(conn.data_to_send())
                batch, queued = [], 0
                if not self._writable.is_set():
                    await self._wait_writable()
        if batch:
            conn.send_pdata_buffers(batch)
            self._write(conn.data_to_send())

    def _write(self, buffers: list) -> None:
        """Write ``buffers`` in order: gathered by one sendmsg() straight from them (the file's
        mapped pages included) when nothing is queued in the transport, else through it.
        asyncio 3.11's writelines() first joins them into one new bytes object: a copy of each
        data set, ~20 µs for 40 KB."""
        transport = self._transport
        direct = self._direct
        if (
            direct is None
            or len(buffers) > 512
            or transport.is_closing()  # type: ignore[union-attr]
            or transport.get_write_buffer_size()  # type: ignore[union-attr]
        ):
            transport.writelines(buffers)  # type: ignore[union-attr]
            return
        try:
            sent = direct.sendmsg(buffers)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the transport finds out and reports it the usual way
            transport.writelines(buffers)  # type: ignore[union-attr]
            return
        for index, buffer in enumerate(buffers):
            size = len(buffer)
            if sent < size:
                rest = [memoryview(buffer)[sent:], *buffers[index + 1 :]]
                transport.writelines(rest)  # type: ignore[union-attr]
                return
            sent -= size

    async def _wait_writable(self) -> None:
        waiter = self.loop.create_task(self._writable.wait())
        await asyncio.wait((waiter, self.closed), return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self.closed.done():
            raise self._error or NetworkError("The connection closed while sending.")

    @contextlib.contextmanager
    def _awaiting(self, message: DIMSEMessage) -> Iterator[asyncio.Queue]:
        """A queue that receives the responses to ``message`` while the block runs."""
        message_id = message.message_id  # type: ignore[attr-defined]
        queue: asyncio.Queue = asyncio.Queue()
        self._responses[message_id] = queue
        try:
            yield queue
        finally:
            self._responses.pop(message_id, None)

    async def request(
        self, context_id: int, message: DIMSEMessage, dataset: DatasetSource | None = None
    ) -> AsyncIterator[tuple[DIMSEMessage, bytearray | DatasetSink | None]]:
        """Send a request; yield its responses until the final (non-pending) one."""
        with self._awaiting(message) as queue:
            await self.send(context_id, message, dataset)
            while True:
                response = await self._next_response(queue)
                yield response
                if category_of(response[0].status) is not StatusCategory.PENDING:  # type: ignore[attr-defined]
                    return

    async def request_one(
        self, context_id: int, message: DIMSEMessage, dataset: DatasetSource | None = None
    ) -> tuple[DIMSEMessage, bytearray | DatasetSink | None]:
        """Send a request and return its final response (pending ones are skipped)."""
        return await (await self.begin(context_id, message, dataset)).final()

    async def begin(
        self,
        context_id: int,
        message: DIMSEMessage,
        dataset: DatasetSource | None = None,
        *,
        encoded: Iterable[tuple[bytes, BytesLike]] | None = None,
    ) -> PendingRequest:
        """Send a request and return at once; ``await pending.final()`` gives its final
        response. In between the caller may prepare its next request (``encode``)."""
        message_id = message.message_id  # type: ignore[attr-defined]
        queue: asyncio.Queue = asyncio.Queue()
        self._responses[message_id] = queue
        try:
            await self.send(context_id, message, dataset, encoded=encoded)
        except BaseException:
            self._responses.pop(message_id, None)
            raise
        return PendingRequest(self, message_id, queue)

    def _begin_now(
        self, context_id: int, message: DIMSEMessage, encoded: list[tuple[bytes, BytesLike]]
    ) -> PendingRequest:
        """``begin`` for a message encoded in memory, without awaiting: its PDUs go to the
        socket (or the transport's buffer) now."""
        if self.closed.done() or not self._conn.is_established:
            raise self._error or NetworkError("The association is not established any more.")
        message_id = message.message_id  # type: ignore[attr-defined]
        queue: asyncio.Queue = asyncio.Queue()
        self._responses[message_id] = queue
        self._send_now(encoded)
        return PendingRequest(self, message_id, queue)

    def _send_now(self, pieces: Iterable[tuple[bytes, BytesLike]]) -> None:
        """A message's few PDUs, in memory, written at once: one state check, one gathered
        write (or into the transport's buffer), no awaiting."""
        batch: list = []
        for header, data in pieces:
            batch += (header, data)
        self._conn.send_pdata_buffers(batch)
        self._write(self._conn.data_to_send())

    async def cancel(self, message_id: int, context_id: int) -> None:
        """C-CANCEL-RQ (PS3.7 9.3.2.3) for our request ``message_id`` on ``context_id``.

        Responses to the request go on arriving: the peer may have sent more before it saw
        the cancel, and its final response says whether it stopped (0xFE00) or finished."""
        log.info("Sending Cancel Request (MsgID %d, PresID %d)", message_id, context_id)
        await self.send(context_id, CCancelRQ(message_id_being_responded_to=message_id))

    async def _next_response(self, queue: asyncio.Queue):
        if queue.empty():
            try:
                async with asyncio.timeout(self.timeouts.dimse):
                    item = await queue.get()
            except TimeoutError:
                self.abort()
                raise DIMSETimeoutError(
                    f"No DIMSE response within {self.timeouts.dimse} s (-td); association aborted."
                ) from None
        else:
            item = queue.get_nowait()
        if item[0] is _END:
            raise self._error or NetworkError("The association ended before the response arrived.")
        return item

    # -- ending --------------------------------------------------------------------------------

    async def release(self) -> None:
        """A-RELEASE: ask the peer to end the association and wait until it has."""
        if self.closed.done():
            return
        log.info("Releasing Association")
        self._release_done = self.loop.create_future()
        try:
            self._conn.release()
        except LocalProtocolError:
            self.abort()
            return
        self._after_state_change()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), self.timeouts.acse)
        except TimeoutError:
            log.warning("The peer did not answer the release request; aborting")
            self.abort()

    def abort(self, source: int = AbortSource.SERVICE_USER, reason: int = 0) -> None:
        """A-ABORT: end the association at once (no response is awaited)."""
        if self._transport is None or self.closed.done():
            return
        # whatever the connection queued before (an AC, its own A-ABORT) goes out first
        with contextlib.suppress(LocalProtocolError):  # not allowed: already aborting/closed
            self._conn.abort(source=source, reason=reason)
        self._transport.writelines(self._conn.data_to_send())
        self._transport.close()

    async def wait_closed(self) -> None:
        await asyncio.shield(self.closed)

    def _finish(self, error: BaseException | None) -> None:
        self._cancel_timers()
        if not self.established.done():
            self._settle_established(
                error
                or NetworkError("The peer closed the connection during association negotiation.")
            )
        if not self.closed.done():
            self.closed.set_result(None)
        self._follow.clear()
        for queue in self._responses.values():
            queue.put_nowait((_END, None))
        self._discard_unserved()
        waiter, self._answering_later = self._answering_later, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # nobody to answer now
        self._requests.put_nowait(_END)

    def _discard_unserved(self) -> None:
        """Nothing half received or never answered may be kept (no partial files)."""
        sinks = [self._assembler.active_sink]
        while not self._requests.empty():
            item = self._requests.get_nowait()
            if item is not _END:
                sinks.append(item[2])
        for sink in sinks:
            discard = getattr(sink, "discard", None)
            if discard is not None:
                discard()

    # -- timers and output ---------------------------------------------------------------------

    def _after_state_change(self) -> None:
        conn, transport = self._conn, self._transport
        out = conn.data_to_send()
        if out and transport is not None:
            transport.writelines(out)
        if conn.artim_starts != self._artim_starts:
            self._artim_starts = conn.artim_starts
            if self._artim is not None:
                self._artim.cancel()
            self._artim = self.loop.call_later(self.timeouts.acse or 30.0, self._on_artim)
        elif not conn.artim_running and self._artim is not None:
            self._artim.cancel()
            self._artim = None
        if conn.should_close and transport is not None:
            transport.close()

    def _on_artim(self) -> None:
        self._artim = None
        for event in self._conn.artim_expired():
            self._on_event(event)
        self._after_state_change()

    def _arm_idle(self) -> None:
        if self.timeouts.idle:
            self._idle = self.loop.call_later(self.timeouts.idle, self._on_idle)

    def _on_idle(self) -> None:
        # Re-armed for the rest of the period instead of on every received chunk.
        idle_for = self.loop.time() - self._last_input
        if idle_for < self.timeouts.idle:  # type: ignore[operator]
            self._idle = self.loop.call_later(self.timeouts.idle - idle_for, self._on_idle)  # type: ignore[operator]
            return
        self._idle = None
        if self.closed.done():
            return
        stalled = not self._assembler.idle  # a message began and its rest never came
        idle_acceptor = not self.requestor and not self._operations and self._requests.empty()
        if not (stalled or idle_acceptor or not self._conn.is_established):
            # a requestor waiting for a response is governed by the DIMSE timeout (-td)
            self._arm_idle()
            return
        what = "in the middle of a message" if stalled else "on an idle association"
        self._error = NetworkError(
            f"Nothing received from the peer for {idle_for:.0f} s {what} (-ts); association aborted."
        )
        log.warning(
            "Network timeout: no data from the peer for %.0f s %s, aborting", idle_for, what
        )
        self.abort(source=AbortSource.SERVICE_PROVIDER)

    def _cancel_timers(self) -> None:
        for timer in (self._artim, self._idle):
            if timer is not None:
                timer.cancel()
        self._artim = self._idle = None

    # -- conveniences --------------------------------------------------------------------------

    def context_for(
        self, abstract_syntax: str, transfer_syntax: str | None = None
    ) -> AgreedContext:
        """An accepted context for this SOP class (and transfer syntax), or a clear error."""
        for context in self.contexts.values():
            if context.abstract_syntax == abstract_syntax and (
                transfer_syntax is None or context.transfer_syntax == transfer_syntax
            ):
                return context
        from ..uids import uid_description

        wanted = uid_description(abstract_syntax) + (
            f" in {uid_description(transfer_syntax)}" if transfer_syntax else ""
        )
        detail = ""
        if self.rq is not None and self.ac is not None:
            diagnosis = describe_refused_contexts(self.rq, self.ac)
            detail = "\n" + "\n".join(diagnosis.lines[1:]) + "\n" + diagnosis.hint
        raise PacsboxError(
            f"The peer accepted no presentation context for {wanted}.{detail}\n"
            f"{see_debug('what was proposed and what the peer answered', capital=True)}."
        )

    async def __aenter__(self) -> Association:
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            await self.release()
        else:
            self.abort()
