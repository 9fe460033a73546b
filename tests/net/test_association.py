"""Association mechanics over real sockets: pending responses, C-CANCEL, data set sinks,
unsupported services, release."""

from __future__ import annotations

import asyncio
import io

import pytest

from pacsbox.dimse import CCancelRQ, CFindRQ, CFindRSP, CStoreRQ, CStoreRSP
from pacsbox.net.association import LATER, Association, RequestHandler
from pacsbox.net.requestor import build_rq
from pacsbox.net.server import Server, ServerConfig
from pacsbox.ul.negotiation import AcceptorPolicy

FIND = "1.2.840.10008.5.1.4.1.2.2.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"


class CountingFind(RequestHandler):
    """Sends pending responses until cancelled (or 1000 of them), then the final status."""

    def __init__(self, pending: int) -> None:
        self.pending = pending

    async def handle(self, assoc, context, request, dataset) -> None:
        operation = assoc.operation(request.message_id)
        status = 0x0000
        for index in range(self.pending):
            if operation.cancelled.is_set():
                status = 0xFE00
                break
            await assoc.send(
                context.context_id,
                CFindRSP(
                    message_id_being_responded_to=request.message_id,
                    status=0xFF00,
                    affected_sop_class_uid=FIND,
                    has_dataset=True,
                ),
                bytes(dataset) + index.to_bytes(2, "little"),
            )
            await asyncio.sleep(0)  # let the C-CANCEL in
        await assoc.send(
            context.context_id,
            CFindRSP(
                message_id_being_responded_to=request.message_id,
                status=status,
                affected_sop_class_uid=FIND,
            ),
        )


class FileSinkStore(RequestHandler):
    """Streams each data set into a BytesIO (the storage SCP will use a temp file)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def open_sink(self, assoc, context, request):
        return io.BytesIO()

    async def handle(self, assoc, context, request, dataset) -> None:
        assert isinstance(dataset, io.BytesIO)
        self.received.append(dataset.getvalue())
        await assoc.send(
            context.context_id,
            CStoreRSP(
                message_id_being_responded_to=request.message_id,
                status=0,
                affected_sop_class_uid=request.affected_sop_class_uid,
                affected_sop_instance_uid=request.affected_sop_instance_uid,
            ),
        )


async def serve(handlers, **kw) -> Server:
    policy = AcceptorPolicy(frozenset({FIND, CT}))
    server = Server(ServerConfig(policy=policy, handlers=handlers, **kw))
    await server.start("127.0.0.1", 0)
    return server


async def connect(port: int, **kw) -> Association:
    rq = build_rq(
        calling_ae="SCU",
        called_ae="SCP",
        proposals=[(FIND, [EXPLICIT]), (CT, [EXPLICIT])],
        **kw,
    )
    return await Association.connect("127.0.0.1", port, rq)


async def test_pending_responses_then_final():
    server = await serve({CFindRQ: CountingFind(5)})
    async with server, await connect(server.port) as assoc:
        ctx = assoc.context_for(FIND)
        rq = CFindRQ(message_id=assoc.next_message_id(), affected_sop_class_uid=FIND)
        statuses, payloads = [], []
        async for rsp, data in assoc.request(ctx.context_id, rq, b"Q"):
            statuses.append(rsp.status)
            payloads.append(bytes(data) if data is not None else None)
    assert statuses == [0xFF00] * 5 + [0x0000]
    assert payloads[:2] == [b"Q\x00\x00", b"Q\x01\x00"] and payloads[-1] is None


async def test_c_cancel_stops_the_operation():
    server = await serve({CFindRQ: CountingFind(1000)})
    async with server, await connect(server.port) as assoc:
        ctx = assoc.context_for(FIND)
        rq = CFindRQ(message_id=assoc.next_message_id(), affected_sop_class_uid=FIND)
        statuses = []
        async for rsp, _ in assoc.request(ctx.context_id, rq, b"Q"):
            statuses.append(rsp.status)
            if len(statuses) == 3:
                await assoc.send(
                    ctx.context_id, CCancelRQ(message_id_being_responded_to=rq.message_id)
                )
    assert statuses[-1] == 0xFE00
    assert len(statuses) < 1000


async def test_dataset_streams_to_the_handlers_sink_across_many_pdus():
    store = FileSinkStore()
    server = await serve({CStoreRQ: store}, max_pdu_length=4096)
    payload = bytes(range(256)) * 1000  # 256 KB: 63 PDUs of 4 KB
    async with server, await connect(server.port) as assoc:
        ctx = assoc.context_for(CT)
        rq = CStoreRQ(
            message_id=assoc.next_message_id(),
            affected_sop_class_uid=CT,
            affected_sop_instance_uid="1.2.3.4",
        )
        rsp, _ = await assoc.request_one(ctx.context_id, rq, payload)
    assert rsp.status == 0
    assert store.received == [payload]


async def test_unsupported_service_gets_unrecognized_operation_and_association_goes_on():
    server = await serve({CStoreRQ: FileSinkStore()})
    async with server, await connect(server.port) as assoc:
        ctx = assoc.context_for(FIND)
        rq = CFindRQ(message_id=assoc.next_message_id(), affected_sop_class_uid=FIND)
        rsp, _ = await assoc.request_one(ctx.context_id, rq, b"Q")
        assert rsp.status == 0x0211
        ct = assoc.context_for(CT)
        store = CStoreRQ(
            message_id=assoc.next_message_id(),
            affected_sop_class_uid=CT,
            affected_sop_instance_uid="1.2",
        )
        rsp, _ = await assoc.request_one(ct.context_id, store, b"x")
        assert rsp.status == 0


class BrokenStore(RequestHandler):
    """A handler with a bug: it raises before answering."""

    async def handle(self, assoc, context, request, dataset) -> None:
        raise RuntimeError("a bug in a handler")


async def test_a_handler_bug_fails_that_request_and_the_association_goes_on():
    server = await serve({CStoreRQ: BrokenStore(), CFindRQ: CountingFind(1)})
    async with server, await connect(server.port) as assoc:
        ct = assoc.context_for(CT)
        store = CStoreRQ(
            message_id=assoc.next_message_id(),
            affected_sop_class_uid=CT,
            affected_sop_instance_uid="1.2",
        )
        rsp, _ = await assoc.request_one(ct.context_id, store, b"x")
        assert rsp.status == 0x0110
        assert "a bug in a handler" in rsp.error_comment
        assert rsp.affected_sop_instance_uid == "1.2"
        find = CFindRQ(message_id=assoc.next_message_id(), affected_sop_class_uid=FIND)
        rsp, _ = await assoc.request_one(assoc.context_for(FIND).context_id, find, b"Q")
        assert rsp.status == 0x0000


class AnsweringStore(RequestHandler):
    """A C-STORE handler answered from the receive callback (answers_now); records the order
    in which requests were served and how."""

    answers_now = True

    def __init__(self, served: list, broken: bool = False) -> None:
        self.served, self.broken = served, broken

    def answer(self, assoc, context, request, dataset):
        if self.broken:
            raise RuntimeError("a bug in answer")
        self.served.append(("store", "now" if not assoc._serving else "task"))
        return CStoreRSP(
            message_id_being_responded_to=request.message_id,
            status=0,
            affected_sop_class_uid=request.affected_sop_class_uid,
            affected_sop_instance_uid=request.affected_sop_instance_uid,
        )

    def answered(self, assoc) -> None:
        self.served.append(("answered", None))


class SlowFind(CountingFind):
    def __init__(self, pending: int, served: list) -> None:
        super().__init__(pending)
        self.served = served

    async def handle(self, assoc, context, request, dataset) -> None:
        self.served.append(("find", "task"))
        await super().handle(assoc, context, request, dataset)


def _store_rq(assoc) -> CStoreRQ:
    return CStoreRQ(
        message_id=assoc.next_message_id(),
        affected_sop_class_uid=CT,
        affected_sop_instance_uid="1.2.3",
    )


async def _begin_find(assoc):
    """A C-FIND sent, its responses not awaited (the PendingRequest)."""
    find_rq = CFindRQ(message_id=assoc.next_message_id(), affected_sop_class_uid=FIND)
    return await assoc.begin(assoc.context_for(FIND).context_id, find_rq, b"Q")


async def test_a_store_is_answered_from_the_receive_callback_when_nothing_else_runs():
    served: list = []
    server = await serve({CStoreRQ: AnsweringStore(served)})
    async with server, await connect(server.port) as assoc:
        rsp, _ = await assoc.request_one(assoc.context_for(CT).context_id, _store_rq(assoc), b"x")
    assert rsp.status == 0
    assert served == [("store", "now"), ("answered", None)]


@pytest.mark.parametrize("store", ["AnsweringStore", "LaterStore"])
async def test_a_store_behind_a_request_in_progress_waits_its_turn(store):
    """The serving task answers it, in order; answer_later() is None there (LaterStore then
    answers at once)."""
    served: list = []
    handler = globals()[store](served)
    server = await serve({CStoreRQ: handler, CFindRQ: SlowFind(20, served)})
    async with server, await connect(server.port) as assoc:
        find = await _begin_find(assoc)
        store = await assoc.begin(assoc.context_for(CT).context_id, _store_rq(assoc), b"x")
        find_rsp, _ = await find.final()
        store_rsp, _ = await store.final()
    assert find_rsp.status == 0 and store_rsp.status == 0
    # served in the order received, the store by the serving task once the find was done
    assert served == [("find", "task"), ("store", "task"), ("answered", None)]


async def test_a_bug_in_answer_fails_that_store_and_the_association_goes_on():
    served: list = []
    server = await serve({CStoreRQ: AnsweringStore(served, broken=True), CFindRQ: CountingFind(1)})
    async with server, await connect(server.port) as assoc:
        rsp, _ = await assoc.request_one(assoc.context_for(CT).context_id, _store_rq(assoc), b"x")
        assert rsp.status == 0x0110 and "a bug in answer" in rsp.error_comment
        assert rsp.affected_sop_instance_uid == "1.2.3"
        find = CFindRQ(message_id=assoc.next_message_id(), affected_sop_class_uid=FIND)
        rsp, _ = await assoc.request_one(assoc.context_for(FIND).context_id, find, b"Q")
        assert rsp.status == 0x0000


class LaterStore(AnsweringStore):
    """Answers each C-STORE two turns of the event loop later, through answer_later (as the
    storage SCP's group commit does)."""

    def answer(self, assoc, context, request, dataset):
        respond = assoc.answer_later()
        if respond is None:  # served by the serving task: at once
            return super().answer(assoc, context, request, dataset)
        self.served.append(("store", "later"))
        response = super().answer(assoc, context, request, dataset)
        self.served.pop()
        loop = asyncio.get_running_loop()
        loop.call_soon(loop.call_soon, respond, response)
        return LATER


async def test_an_answer_given_later_goes_out_before_the_next_request_is_served():
    served: list = []
    server = await serve({CStoreRQ: LaterStore(served), CFindRQ: SlowFind(3, served)})
    async with server, await connect(server.port) as assoc:
        store = await assoc.begin(assoc.context_for(CT).context_id, _store_rq(assoc), b"x")
        find = await _begin_find(assoc)
        store_rsp, _ = await store.final()
        find_rsp, _ = await find.final()
        rsp, _ = await assoc.request_one(assoc.context_for(CT).context_id, _store_rq(assoc), b"y")
    assert store_rsp.status == find_rsp.status == rsp.status == 0
    # the find, which came while the store's answer was pending, waited for it
    assert served == [
        ("store", "later"), ("answered", None), ("find", "task"), ("store", "later"),
        ("answered", None),
    ]  # fmt: skip


class HeldStore(AnsweringStore):
    """Takes answer_later for the first store and holds it: the test decides when (if ever)
    to answer; the others are answered at once."""

    def __init__(self, served: list) -> None:
        super().__init__(served)
        self.held: list = []

    def answer(self, assoc, context, request, dataset):
        respond = None if self.held else assoc.answer_later()
        if respond is None:
            return super().answer(assoc, context, request, dataset)
        self.held.append((respond, super().answer(assoc, context, request, dataset)))
        return LATER


async def test_a_peer_that_aborts_while_an_answer_is_held_ends_the_association():
    """A store answered later, a find queued behind it, then the peer aborts: the association
    ends (its serving task too); answering afterwards sends nothing; the server serves on."""
    served: list = []
    handler = HeldStore(served)
    server = await serve({CStoreRQ: handler, CFindRQ: SlowFind(1, served)})
    async with server:
        assoc = await connect(server.port)
        await assoc.begin(assoc.context_for(CT).context_id, _store_rq(assoc), b"x")
        await _begin_find(assoc)
        for _ in range(100):  # bounded: until the server has the store in hand
            if handler.held:
                break
            await asyncio.sleep(0.01)
        assert len(handler.held) == 1
        assoc.abort()
        await asyncio.wait_for(assoc.wait_closed(), 5)
        for _ in range(100):  # bounded: until the server has seen the abort
            if not server.associations:
                break
            await asyncio.sleep(0.01)
        assert not server.associations
        for _ in range(100):  # bounded: the serving tasks end, none waits on for ever
            serving = [t for t in asyncio.all_tasks() if "_serve_requests" in repr(t)]
            if not serving:
                break
            await asyncio.sleep(0.01)
        assert not serving
        respond, response = handler.held[0]
        respond(response)  # too late: nobody to send it to, and no error
        async with await connect(server.port) as again:
            rsp, _ = await again.request_one(
                again.context_for(CT).context_id, _store_rq(again), b"y"
            )
        assert rsp.status == 0
    assert ("find", "task") not in served  # the queued find was dropped with the association
