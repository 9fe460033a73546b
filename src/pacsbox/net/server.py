"""The listener: accepts TCP connections, negotiates associations, runs one Association each.

Acceptance follows PS3.8 9.3.4's reasons in order: application context, called AE title,
calling AE title (an ``accept`` hook can refuse with any reason), then the MaxAssociations
limit (A-ASSOCIATE-RJ transient, local limit exceeded). A protocol error on one association
aborts that association only.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from ..log import log
from ..uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from ..ul.negotiation import AcceptorPolicy, extended_replies, negotiate
from ..ul.pdu import (
    APPLICATION_CONTEXT_NAME,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    RejectResult,
    RejectSource,
    UserInformation,
)
from .association import Association, RequestHandler, Timeouts

# PS3.8 9.3.4 reasons, by (source, reason)
RJ_NO_REASON = AAssociateRJ(RejectResult.REJECTED_PERMANENT, RejectSource.SERVICE_USER, 1)
RJ_APPLICATION_CONTEXT = AAssociateRJ(RejectResult.REJECTED_PERMANENT, RejectSource.SERVICE_USER, 2)
RJ_CALLING_AE = AAssociateRJ(RejectResult.REJECTED_PERMANENT, RejectSource.SERVICE_USER, 3)
RJ_CALLED_AE = AAssociateRJ(RejectResult.REJECTED_PERMANENT, RejectSource.SERVICE_USER, 7)
RJ_LOCAL_LIMIT = AAssociateRJ(
    RejectResult.REJECTED_TRANSIENT, RejectSource.SERVICE_PROVIDER_PRESENTATION, 2
)

# Connections the kernel queues before we accept them: a burst of senders is not refused.
LISTEN_BACKLOG = 256


@dataclass(slots=True)
class ServerConfig:
    """What a server answers to.

    ae_title: our AE title. require_called_ae: refuse an RQ whose called AE is not ours
    (DCMTK's storescp accepts any unless told otherwise; so do we by default).
    calling_ae_titles: accepted calling AE titles (None: any).
    """

    ae_title: str = "PACSBOX"
    policy: AcceptorPolicy = field(default_factory=AcceptorPolicy)
    handlers: dict[type, RequestHandler] = field(default_factory=dict)
    max_associations: int = 32
    max_pdu_length: int = 16384
    timeouts: Timeouts = field(default_factory=Timeouts)
    require_called_ae: bool = False
    calling_ae_titles: frozenset[str] | None = None
    # extra check: return an RJ to refuse (e.g. dcmqrscp's AETable rules), None to go on
    accept: Callable[[AAssociateRQ, tuple[str, int] | None], AAssociateRJ | None] | None = None
    # how the log names an incoming association (DCMTK's movescu: "Sub-Association Received")
    received: str = "Association Received"


class Server:
    """``await Server(config).start(host, port)``; ``await server.close()`` stops it."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.associations: set[Association] = set()  # every connection
        self._admitted: set[Association] = set()  # those whose association we accepted
        self._server: asyncio.base_events.Server | None = None
        self._shared: socket.socket | None = None  # start_on's socket
        self._accepting = False
        self._waiting = False  # start_on's socket does not listen yet (listening())
        self._connections = 0  # on start_on's socket, from accept to close
        self._on_connections: Callable[[int], None] | None = None
        self._connecting: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        if self._shared is not None:
            return self._shared.getsockname()[1]
        assert self._server is not None, "the server is not started"
        return self._server.sockets[0].getsockname()[1]

    async def start(self, host: str = "0.0.0.0", port: int = 11112) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_association, host, port, reuse_address=True, backlog=LISTEN_BACKLOG
        )
        for sock in self._server.sockets:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def start_on(
        self, sock: socket.socket, on_connections: Callable[[int], None] | None = None
    ) -> None:
        """Accept on ``sock``, a bound socket: the one listening socket that `pacsbox serve
        --workers` shares between its worker processes (pacsbox.cli.workers).
        ``on_connections(n)`` is told the number of connections open each time it changes;
        ``accepting(False)`` leaves new ones to the other processes. A socket that does not
        listen yet is waited on only once ``listening()`` says it does (until then the
        kernel reports it readable with no connection to take, and accept() fails with
        EINVAL). The socket stays its owner's: close() does not close it."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self._shared = sock
        self._on_connections = on_connections
        self._waiting = not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        self.accepting(True)

    def listening(self) -> None:
        """start_on's socket listens now: accept on it, if accepting() says to."""
        if self._waiting:
            self._waiting = False
            if self._accepting:
                self._watch(True)

    def accepting(self, on: bool) -> None:
        """Take connections from start_on's socket (the default), or not."""
        if self._shared is None or on == self._accepting:
            return
        self._accepting = on
        if not self._waiting:  # else listening() starts it
            self._watch(on)

    def _watch(self, on: bool) -> None:
        assert self._shared is not None
        loop = asyncio.get_running_loop()
        if on:
            loop.add_reader(self._shared.fileno(), self._accept_one, loop, self._shared)
        else:
            loop.remove_reader(self._shared.fileno())

    def _accept_one(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        """One connection per wake-up, where asyncio's create_server accepts every one
        queued: a burst of connections (four senders started at once) would all go to the
        process that woke first."""
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another process took it
        except OSError as exc:  # out of descriptors or memory: the socket stays readable
            log.error("Cannot accept a connection: %s; accepting again in 1 s", exc)
            self.accepting(False)
            loop.call_later(1.0, self.accepting, True)
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._opened(+1)
        task = loop.create_task(self._connect(loop, conn))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        try:
            _, assoc = await loop.connect_accepted_socket(self._new_association, conn)
        except OSError as exc:  # the peer went already
            conn.close()
            self._opened(-1)
            log.warning("Dropped a connection as it was accepted: %s", exc)
            return
        assoc.closed.add_done_callback(lambda _: self._opened(-1))

    def _opened(self, change: int) -> None:
        self._connections += change
        if self._on_connections is not None:
            self._on_connections(self._connections)

    async def serve_forever(self) -> None:
        assert self._server is not None, "call start() first"
        await self._server.serve_forever()

    async def close(self) -> None:
        """Stop listening and abort the associations still open."""
        if self._server is not None:
            self._server.close()
        self.accepting(False)
        self._on_connections = None
        for assoc in list(self.associations):
            assoc.abort()
        if self.associations:
            await asyncio.wait(
                [asyncio.ensure_future(a.wait_closed()) for a in self.associations], timeout=5
            )
        if self._server is not None:
            await self._server.wait_closed()
        for handler in {id(h): h for h in self.config.handlers.values()}.values():
            handler.close()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- per connection -------------------------------------------------------------------------

    def _new_association(self) -> Association:
        cfg = self.config
        assoc = Association(
            requestor=False,
            max_pdu_length=cfg.max_pdu_length,
            timeouts=cfg.timeouts,
            handlers=cfg.handlers,
            decide=self._decide,
        )
        self.associations.add(assoc)
        assoc.closed.add_done_callback(lambda _: self.associations.discard(assoc))
        return assoc

    def _decide(self, rq: AAssociateRQ, assoc: Association) -> AAssociateAC | AAssociateRJ:
        cfg = self.config
        peer = assoc.peer
        host = peer[0] if peer else "?"
        log.info('%s %s: "%s -> %s"', cfg.received, host, rq.calling_ae_title, rq.called_ae_title)
        rj = self._refusal(rq, peer, assoc)
        if rj is not None:
            return rj
        contexts, roles = negotiate(rq, cfg.policy)
        ui = UserInformation(
            max_length=cfg.max_pdu_length,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            role_selections=roles,
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
            # PS3.7 D.3.3.3: we perform one operation at a time; say so if asked
            async_ops_window=(1, 1) if rq.user_information.async_ops_window else None,
            sop_class_extended=extended_replies(rq, cfg.policy),
        )
        return AAssociateAC(
            called_ae_title=rq.called_ae_title,
            calling_ae_title=rq.calling_ae_title,
            presentation_contexts=contexts,
            user_information=ui,
        )

    def _refusal(
        self, rq: AAssociateRQ, peer: tuple[str, int] | None, assoc: Association
    ) -> AAssociateRJ | None:
        cfg = self.config
        if rq.application_context_name != APPLICATION_CONTEXT_NAME:
            log.warning(
                "Refusing association: unknown application context %s", rq.application_context_name
            )
            return RJ_APPLICATION_CONTEXT
        if cfg.require_called_ae and rq.called_ae_title != cfg.ae_title:
            log.warning(
                "Refusing association: called AE title '%s' is not ours ('%s')",
                rq.called_ae_title,
                cfg.ae_title,
            )
            return RJ_CALLED_AE
        if cfg.calling_ae_titles is not None and rq.calling_ae_title not in cfg.calling_ae_titles:
            log.warning(
                "Refusing association: calling AE title '%s' is not configured (known: %s)",
                rq.calling_ae_title,
                ", ".join(sorted(cfg.calling_ae_titles)) or "none",
            )
            return RJ_CALLING_AE
        if cfg.accept is not None and (rj := cfg.accept(rq, peer)) is not None:
            return rj
        # Only accepted associations count: a storm of connections that have not negotiated
        # yet must not make the first of them be refused too.
        if len(self._admitted) >= cfg.max_associations:
            log.warning(
                "Refusing association from '%s': %d associations open, the limit is %d",
                rq.calling_ae_title,
                len(self._admitted),
                cfg.max_associations,
            )
            return RJ_LOCAL_LIMIT
        self._admitted.add(assoc)
        assoc.closed.add_done_callback(lambda _: self._admitted.discard(assoc))
        return None
