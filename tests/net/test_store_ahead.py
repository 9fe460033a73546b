"""store_files(send_ahead=True): the next C-STORE-RQ leaves from the receive callback as a
Success response arrives; anything but Success stops it, and leaving the loop early waits for
the request already sent, so nothing is outstanding at release."""

from __future__ import annotations

import contextlib
import logging

import pydicom
from pydicom.uid import generate_uid

from pacsbox.dimse import CStoreRQ, CStoreRSP
from pacsbox.net.association import Association, RequestHandler
from pacsbox.net.requestor import build_rq
from pacsbox.net.server import Server, ServerConfig
from pacsbox.services.storage_scu import scan, store_files
from pacsbox.ul.negotiation import AcceptorPolicy
from tests.storage_data import save_file

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"


class ScriptedStore(RequestHandler):
    """Answers each C-STORE with the next status of ``statuses`` (Success when they run out)
    and records the SOP Instance UIDs in the order they came."""

    def __init__(self, statuses: dict[int, int] | None = None) -> None:
        self.statuses = statuses or {}
        self.received: list[str] = []

    async def handle(self, assoc, context, request, dataset) -> None:
        self.received.append(request.affected_sop_instance_uid)
        status = self.statuses.get(len(self.received), 0x0000)
        await assoc.send(
            context.context_id,
            CStoreRSP(
                message_id_being_responded_to=request.message_id,
                status=status,
                affected_sop_class_uid=request.affected_sop_class_uid,
                affected_sop_instance_uid=request.affected_sop_instance_uid,
            ),
        )


def write_files(directory, count: int) -> list:
    paths = []
    for n in range(count):
        ds = pydicom.Dataset()
        ds.SOPClassUID = CT
        ds.SOPInstanceUID = generate_uid()
        ds.PatientID = f"P{n}"
        paths.append(save_file(ds, directory / f"{n:03d}.dcm"))
    return paths


async def _send(tmp_path, handler, count: int, stop_after=None):
    """Send ``count`` files with send_ahead; the consumer stops after ``stop_after`` results
    (or at the first failure, as storescu's halt does). Returns (results, uids, assoc)."""
    infos, skipped = scan(write_files(tmp_path, count))
    assert not skipped
    server = Server(
        ServerConfig(policy=AcceptorPolicy(frozenset({CT})), handlers={CStoreRQ: handler})
    )
    await server.start("127.0.0.1", 0)
    results = []
    async with server:
        rq = build_rq(calling_ae="SCU", called_ae="SCP", proposals=[(CT, [EXPLICIT])])
        assoc = await Association.connect("127.0.0.1", server.port, rq)
        sending = store_files(assoc, infos, send_ahead=True)
        async with contextlib.aclosing(sending):
            async for result in sending:
                results.append(result)
                if not result.ok or len(results) == stop_after:
                    break
        outstanding = dict(assoc._responses)
        await assoc.release()
    return results, [i.sop_instance_uid for i in infos], outstanding


async def test_every_file_is_stored_once_and_in_order(tmp_path):
    handler = ScriptedStore()
    results, uids, outstanding = await _send(tmp_path, handler, 25)
    assert [r.sop_instance_uid for r in results] == uids
    assert all(r.status == 0 for r in results)
    assert handler.received == uids
    assert not outstanding


async def test_a_failure_stops_the_sending_ahead(tmp_path):
    handler = ScriptedStore({3: 0xA700})
    results, uids, outstanding = await _send(tmp_path, handler, 10)
    assert [r.status for r in results] == [0, 0, 0xA700]
    # the halted consumer broke out at the failure: nothing after the third was sent
    assert handler.received == uids[:3]
    assert not outstanding


async def test_a_warning_is_handed_over_before_the_next_is_sent(tmp_path):
    handler = ScriptedStore({2: 0xB000})  # coercion of data elements: a Warning
    results, uids, _ = await _send(tmp_path, handler, 4, stop_after=2)
    assert [r.status for r in results] == [0, 0xB000]
    assert handler.received == uids[:2]


async def test_leaving_early_waits_for_the_request_already_sent(tmp_path):
    handler = ScriptedStore()
    results, uids, outstanding = await _send(tmp_path, handler, 10, stop_after=1)
    assert [r.sop_instance_uid for r in results] == uids[:1]
    # the second went out as the first response came in; its response was waited for
    assert handler.received == uids[:2]
    assert not outstanding


async def test_the_log_keeps_request_response_order(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pacsbox")
    await _send(tmp_path, ScriptedStore(), 3)
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith(("Sending file", "Received Store Response"))
    ]
    assert [line.split(":")[0].split(" (")[0] for line in lines] == [
        "Sending file",
        "Received Store Response",
    ] * 3


async def test_stop_ends_the_sending_and_every_request_sent_is_answered(tmp_path):
    """As a C-CANCEL does to C-MOVE sub-operations: what was sent is yielded, nothing after."""
    infos, _ = scan(write_files(tmp_path, 20))
    handler = ScriptedStore()
    server = Server(
        ServerConfig(policy=AcceptorPolicy(frozenset({CT})), handlers={CStoreRQ: handler})
    )
    await server.start("127.0.0.1", 0)
    results = []
    async with server:
        rq = build_rq(calling_ae="SCU", called_ae="SCP", proposals=[(CT, [EXPLICIT])])
        assoc = await Association.connect("127.0.0.1", server.port, rq)
        sending = store_files(assoc, infos, send_ahead=True, stop=lambda: len(results) >= 3)
        async with contextlib.aclosing(sending):
            async for result in sending:
                results.append(result)
        assert not assoc._responses
        await assoc.release()
    assert 3 <= len(results) <= 4  # the fourth may have left with the third's response
    assert handler.received == [r.sop_instance_uid for r in results]
    assert all(r.status == 0 for r in results)


async def test_read_mapped_and_streamed_data_sets_arrive_byte_identical(tmp_path, monkeypatch):
    """A file's data set is read whole (up to READ_LIMIT), mapped (up to MAP_LIMIT) or
    streamed: whichever way, the SCP's file holds the same data set bytes."""
    from pacsbox.services import storage_scu
    from pacsbox.services.storage_scp import StorageSCP

    source, received = tmp_path / "source", tmp_path / "received"
    source.mkdir(), received.mkdir()
    paths = write_files(source, 3)
    for path, size in zip(paths, (100, 3000, 9000), strict=True):
        ds = pydicom.dcmread(path)
        ds.ImageComments = "x" * size  # sizes either side of the limits set below
        ds.save_as(path, enforce_file_format=True)
    monkeypatch.setattr(storage_scu, "READ_LIMIT", 2000)
    monkeypatch.setattr(storage_scu, "MAP_LIMIT", 6000)
    infos, _ = scan(paths)
    server = Server(
        ServerConfig(
            policy=AcceptorPolicy(frozenset({CT})), handlers={CStoreRQ: StorageSCP(received)}
        )
    )
    await server.start("127.0.0.1", 0)
    async with server:
        rq = build_rq(calling_ae="SCU", called_ae="SCP", proposals=[(CT, [EXPLICIT])])
        assoc = await Association.connect("127.0.0.1", server.port, rq)
        results = [r async for r in store_files(assoc, infos, send_ahead=True)]
        await assoc.release()
    assert [r.status for r in results] == [0, 0, 0]
    for info in infos:
        sent = info.path.read_bytes()[info.dataset_offset :]
        stored = (received / f"CT.{info.sop_instance_uid}").read_bytes()
        assert stored.endswith(sent) and len(stored) > len(sent)  # its own meta before
