"""The Python API (pacsbox.connect, AsyncClient, StorageReceiver) as a user calls it: against
`pacsbox serve` filled by DCMTK's storescu, against pynetdicom without C-GET or pending
responses, and against SCPs of our own stack written to misbehave (Success before the
C-STOREs, sub-operations on several associations, C-CANCEL, failure statuses)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

import pacsbox
from pacsbox.dimse import CGetRQ, CGetRSP, CMoveRQ, CMoveRSP, CStoreRQ
from pacsbox.net.association import Association, RequestHandler
from pacsbox.net.requestor import build_rq
from pacsbox.net.server import Server, ServerConfig
from pacsbox.services.qr_models import SOP_CLASSES, Model
from pacsbox.services.retrieve_scu import encode_identifier
from pacsbox.syntaxes import UNCOMPRESSED
from pacsbox.ul.negotiation import AcceptorPolicy
from tests import peers
from tests.pacsbox_cli import pacsbox_server
from tests.storage_data import build_samples

pytestmark = pytest.mark.interop

US = "APITEST"  # our AE title, known to the PACSs of these tests
CT = "1.2.840.10008.5.1.4.1.1.2"
MOVE = SOP_CLASSES[Model.STUDY_ROOT].move
GET = SOP_CLASSES[Model.STUDY_ROOT].get
RETRIEVE_SCP_SCRIPT = Path(__file__).parents[1] / "interop" / "pynetdicom_retrieve_scp.py"
HANG = 60  # seconds: only a hang waits this long


def make_study(directory: Path, count: int) -> tuple[str, list[str]]:
    """``count`` CT files of one new study in ``directory``: (StudyInstanceUID, SOP UIDs)."""
    directory.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID = "API-" + ds.StudyInstanceUID[-6:]
    uids = []
    for number in range(count):
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(directory / f"{number}.dcm", enforce_file_format=True)
        uids.append(ds.SOPInstanceUID)
    return ds.StudyInstanceUID, uids


def names(paths) -> list[str]:
    return sorted(Path(p).name for p in paths)


# -- pacsbox serve, filled by DCMTK's storescu -------------------------------------------------


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """`pacsbox serve` knowing AE APITEST at a receive port; a 3-instance study stored in it
    by DCMTK storescu. Yields (port, receive port, study UID, SOP UIDs, samples)."""
    root = tmp_path_factory.mktemp("api")
    port, receive = peers.free_port(), peers.free_port()
    config = root / "pacsbox.toml"
    config.write_text(f'[peers.{US}]\nhost = "127.0.0.1"\nport = {receive}\n')
    study, uids = make_study(root / "study", 3)
    samples = build_samples(root / "samples")
    with pacsbox_server(port, "--config", config, data=root / "data") as server:
        cp = peers.run_dcmtk("storescu", "-aec", "PACSBOX", "127.0.0.1", port, "+sd",
                             root / "study")  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        yield port, receive, study, uids, samples
        assert server.running(), server.output()


def test_sync_facade_from_plain_code(pacs, tmp_path):
    """Plain code: echo, store a file and a Dataset, find as datasets and as dicts, retrieve
    by C-GET, by C-MOVE with the built-in receiver, and into memory; one association for
    echo, find and move."""
    port, receive, study, uids, samples = pacs
    new = pydicom.dcmread(samples["mr"].path)
    new.SOPInstanceUID = generate_uid()
    with pacsbox.connect(
        "127.0.0.1", port, called_ae="PACSBOX", calling_ae=US, receive_host="127.0.0.1"
    ) as client:
        assert client.echo() == 0
        first = client.async_client._assoc
        found = client.find(StudyInstanceUID=study)
        assert client.async_client._assoc is first, "the association was not reused"
        assert [str(ds.StudyInstanceUID) for ds in found] == [study]
        assert isinstance(found[0], pydicom.Dataset) and found[0].PatientID

        results = client.store(samples["ct_jpeg_lossless"].path, new)
        assert [r.ok for r in results] == [True, True], [r.as_dict() for r in results]
        storing = client.async_client._assoc
        assert storing is not first and client.echo() == 0
        assert client.async_client._assoc is storing  # the store association echoes too
        dicts = client.find(PatientID=str(new.PatientID), as_dict=True)
        assert {d["StudyInstanceUID"] for d in dicts} >= {str(new.StudyInstanceUID)}
        assert all(isinstance(d, dict) and isinstance(d["PatientID"], str) for d in dicts)
        series = client.find(StudyInstanceUID=study, SeriesInstanceUID="", as_dict=True)
        assert series[0]["Modality"] == "CT"
        identifier = pydicom.Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID, identifier.PatientName = study, ""
        (match,) = client.find(identifier)  # a Dataset is sent as it is: no keys added
        assert match.StudyInstanceUID == study and "PatientName" in match
        assert "StudyDate" not in match and "StudyDate" in found[0]

        identifier = pydicom.Dataset()
        identifier.QueryRetrieveLevel, identifier.StudyInstanceUID = "STUDY", study
        got = client.retrieve(identifier, dest=tmp_path / "get", method="get")
        assert got.method == "get" and got.fallback is None
        assert names(got.files) == sorted(f"CT.{uid}" for uid in uids)
        assert got.result.completed == 3 and "3 instance(s) received" in got.summary()

        moved = client.retrieve(
            StudyInstanceUID=study, dest=tmp_path / "move", method="move", port=receive
        )
        assert moved.method == "move"
        assert names(moved.files) == sorted(f"CT.{uid}" for uid in uids)
        assert all(p.parent == tmp_path / "move" for p in moved.files)

        memory = client.retrieve(SOPInstanceUID=str(new.SOPInstanceUID),
                                 StudyInstanceUID=str(new.StudyInstanceUID),
                                 SeriesInstanceUID=str(new.SeriesInstanceUID), dest=None)  # fmt: skip
        assert memory.files == [] and len(memory) == 1
        assert memory.datasets[0].SOPInstanceUID == new.SOPInstanceUID
        assert memory.datasets[0].file_meta.TransferSyntaxUID
        assert client.store(*memory.instances)[0].ok  # what was received can be sent on

        committed = client.commit(*results)
        assert committed.ok and len(committed.committed) == 2

        # a plain C-MOVE to another AE: here a StorageReceiver of ours at that AE's port
        inbox = tmp_path / "inbox"
        with pacsbox.StorageReceiver(inbox, port=receive, host="127.0.0.1", ae_title=US) as rx:
            result = client.move(US, StudyInstanceUID=study)
        assert result.completed == 3 and result.status == 0
        assert sorted(i.sop_instance_uid for i in rx.received) == sorted(uids)


async def test_async_client_progress_and_move_destination_unknown(pacs, tmp_path):
    port, receive, study, uids, _ = pacs
    seen = []
    local = {"called_ae": "PACSBOX", "receive_host": "127.0.0.1"}
    async with pacsbox.AsyncClient(
        "127.0.0.1", port, calling_ae=US, receive_port=receive, **local
    ) as client:
        moved = await client.retrieve(
            StudyInstanceUID=study, dest=tmp_path, method="move", on_progress=seen.append
        )
        assert names(moved.files) == sorted(f"CT.{uid}" for uid in uids)
        instance_events = [p for p in seen if p.status is None]
        assert [p.received for p in instance_events] == [1, 2, 3]
        assert names(p.path for p in instance_events) == names(moved.files)
        memory = await client.retrieve(StudyInstanceUID=study, dest=None, method="move")
        assert sorted(str(ds.SOPInstanceUID) for ds in memory.datasets) == sorted(uids)
        # an AE title the PACS does not know: typed, and says what to configure
        stranger = pacsbox.AsyncClient("127.0.0.1", port, calling_ae="NOBODY", **local)
        with pytest.raises(pacsbox.MoveDestinationUnknownError) as caught:
            await stranger.retrieve(StudyInstanceUID=study, dest=tmp_path, method="move")
        await stranger.close()
        message = str(caught.value)
        assert "'NOBODY'" in message and "[peers.NOBODY]" in message, message


# -- pynetdicom: a PACS without C-GET and without pending responses ----------------------------


def retrieve_scp(port: int, files: Path, *options: object) -> peers.PeerProcess:
    argv = [sys.executable, RETRIEVE_SCP_SCRIPT, "--port", port, "--files", files, *options]
    return peers.PeerProcess(argv, port, name="pynetdicom_retrieve_scp")


def test_auto_falls_back_to_move_and_counts_instances_without_pending(tmp_path):
    study, uids = make_study(tmp_path / "files", 4)
    port, receive = peers.free_port(), peers.free_port()
    seen = []
    options = ("--no-get", "--no-pending", "--destination", f"{US}=127.0.0.1:{receive}")
    with (
        retrieve_scp(port, tmp_path / "files", *options),
        pacsbox.connect(
            "127.0.0.1",
            port,
            called_ae="RETRIEVE_SCP",
            calling_ae=US,
            receive_port=receive,
            receive_host="127.0.0.1",
        ) as client,
    ):
        with pytest.raises(pacsbox.PacsboxError, match="method='auto' or method='move'"):
            client.get(StudyInstanceUID=study, dest=tmp_path / "out")
        result = client.retrieve(StudyInstanceUID=study, dest=tmp_path / "out",
                                 on_progress=seen.append)  # fmt: skip
    assert result.method == "move" and "C-GET" in result.fallback
    assert names(result.files) == sorted(f"CT.{uid}" for uid in uids)
    assert result.result.pending_responses == 0
    assert [(p.status, p.received) for p in seen] == [(None, n) for n in (1, 2, 3, 4)]


def test_get_without_pending_responses_reports_each_instance(tmp_path):
    study, uids = make_study(tmp_path / "files", 3)
    port = peers.free_port()
    seen = []  # the pynetdicom peer sends no pending C-GET-RSP
    with (
        retrieve_scp(port, tmp_path / "files", "--no-pending"),
        pacsbox.connect("127.0.0.1", port, called_ae="RETRIEVE_SCP", calling_ae=US) as client,
    ):
        result = client.get(StudyInstanceUID=study, dest=tmp_path / "out",
                            on_progress=seen.append)  # fmt: skip
    assert result.method == "get"
    assert names(result.files) == sorted(f"CT.{uid}" for uid in uids)
    assert [p.sop_instance_uid for p in seen] == [Path(f).name[3:] for f in result.files]
    assert [p.received for p in seen] == [1, 2, 3]


# -- DCMTK's dcmqrscp: the seed tutorial's PACS ----------------------------------------------


def test_dcmtk_dcmqrscp_move_with_pending_counters_and_get(tmp_path):
    from tests.interop.test_retrieve_scu import dcmtk_dcmqrscp

    study, uids = make_study(tmp_path / "files", 3)
    expected = sorted(f"CT.{uid}" for uid in uids)
    seen = []
    with dcmtk_dcmqrscp(tmp_path, files=[tmp_path / "files"]) as (server, acme1):
        # the tutorial's HostTable says "localhost": the receiver listens as DCMTK's would
        options = {"called_ae": "ACME_STORE", "calling_ae": "ACME1", "receive_port": acme1}
        with pacsbox.connect("localhost", server.port, **options) as client:
            moved = client.retrieve(StudyInstanceUID=study, dest=tmp_path / "move",
                                    method="move", on_progress=seen.append)  # fmt: skip
            got = client.get(StudyInstanceUID=study, dest=tmp_path / "get")
    assert names(moved.files) == expected and names(got.files) == expected
    pending = [p for p in seen if p.status == 0xFF00]
    assert pending and all(p.total == 3 for p in pending), seen
    assert [p.received for p in seen if p.status is None] == [1, 2, 3]


# -- Orthanc: C-GET where the modality may, C-MOVE where it may not -------------------------


def test_orthanc_get_and_auto_move_where_get_is_not_allowed(tmp_path):
    study, uids = make_study(tmp_path / "files", 2)
    receive = peers.free_port()
    modalities = {
        "getter": {"AET": "APIGET", "Host": "127.0.0.1", "Port": peers.free_port()},
        "mover": {"AET": US, "Host": "127.0.0.1", "Port": receive, "AllowGet": False},
    }
    expected = sorted(f"CT.{uid}" for uid in uids)
    with peers.OrthancServer(tmp_path / "orthanc", modalities=modalities) as orthanc:
        cp = peers.run_dcmtk("storescu", "-aec", "ORTHANC", "127.0.0.1", orthanc.dicom_port,
                             "+sd", tmp_path / "files")  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        address = ("127.0.0.1", orthanc.dicom_port)
        with pacsbox.connect(*address, called_ae="ORTHANC", calling_ae="APIGET") as client:
            got = client.retrieve(StudyInstanceUID=study, dest=tmp_path / "get")
        assert got.method == "get" and names(got.files) == expected
        with pacsbox.connect(
            *address,
            called_ae="ORTHANC",
            calling_ae=US,
            receive_port=receive,
            receive_host="127.0.0.1",
        ) as client:
            moved = client.retrieve(StudyInstanceUID=study, dest=tmp_path / "move")
        # Orthanc aborts a C-GET from a modality without AllowGet: auto moves instead
        assert moved.method == "move" and "aborted" in moved.fallback
        assert names(moved.files) == expected


# -- StorageReceiver ---------------------------------------------------------------------------


def test_storage_receiver_in_a_thread_gets_a_dcmtk_push(tmp_path):
    _, uids = make_study(tmp_path / "files", 3)
    port = peers.free_port()
    calls = []
    with pacsbox.StorageReceiver(
        tmp_path / "in", port=port, host="127.0.0.1", ae_title="INBOX", on_instance=calls.append
    ) as receiver:
        assert receiver.port == port
        cp = peers.run_dcmtk("storescu", "-aec", "INBOX", "127.0.0.1", port, "+sd",
                             tmp_path / "files")  # fmt: skip
        assert cp.returncode == 0, cp.stderr
    assert sorted(c.sop_instance_uid for c in calls) == sorted(uids)
    assert all(c.path.parent == tmp_path / "in" and c.path.is_file() for c in calls)
    assert calls[0].read().SOPInstanceUID == calls[0].sop_instance_uid
    assert receiver.received == calls


async def test_storage_receiver_as_a_task_in_memory(tmp_path):
    _, uids = make_study(tmp_path / "files", 2)
    calls = []
    async with pacsbox.StorageReceiver(
        None, port=0, host="127.0.0.1", on_instance=calls.append
    ) as receiver:
        process = await asyncio.create_subprocess_exec(
            peers.require("storescu"), "127.0.0.1", str(receiver.port), "+sd",
            str(tmp_path / "files"), env=peers.dcmtk_env(),
        )  # fmt: skip
        assert await asyncio.wait_for(process.wait(), HANG) == 0
    assert sorted(str(c.dataset.SOPInstanceUID) for c in calls) == sorted(uids)
    assert all(c.path is None for c in calls)


def test_storage_receiver_says_when_the_port_is_taken(tmp_path):
    with pacsbox.StorageReceiver(tmp_path, port=0, host="127.0.0.1") as first:
        second = pacsbox.StorageReceiver(tmp_path, port=first.port, host="127.0.0.1")
        with pytest.raises(pacsbox.PacsboxError, match="port=0 lets the system choose"):
            second.start()


# -- SCPs of our own stack that misbehave ------------------------------------------------------


def ct_dataset() -> pydicom.Dataset:
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.SOPInstanceUID = generate_uid()
    return ds


async def push(port: int, datasets, *, calling: str = "PACS") -> None:
    """C-STORE ``datasets`` to 127.0.0.1:port on one new association (a C-MOVE's
    sub-operations)."""
    rq = build_rq(calling_ae=calling, called_ae=US, proposals=[(CT, UNCOMPRESSED)])
    async with await Association.connect("127.0.0.1", port, rq) as assoc:
        context = assoc.context_for(CT)
        for ds in datasets:
            raw = encode_identifier(ds, context.transfer_syntax)
            store = CStoreRQ(
                message_id=assoc.next_message_id(),
                affected_sop_class_uid=CT,
                affected_sop_instance_uid=ds.SOPInstanceUID,
            )
            rsp, _ = await assoc.request_one(context.context_id, store, raw)
            assert rsp.status == 0


def response(request, status: int, counts=(None, None, None, None)):
    remaining, completed, failed, warning = counts
    rsp_type = CMoveRSP if isinstance(request, CMoveRQ) else CGetRSP
    return rsp_type(
        message_id_being_responded_to=request.message_id,
        status=status,
        affected_sop_class_uid=request.affected_sop_class_uid,
        number_of_remaining_suboperations=remaining,
        number_of_completed_suboperations=completed,
        number_of_failed_suboperations=failed,
        number_of_warning_suboperations=warning,
    )


class SuccessFirst(RequestHandler):
    """C-MOVE: the final Success first, then the C-STOREs, each on an association of its own,
    all at once (two PACS quirks in one)."""

    def __init__(self, port: int, count: int, counted: bool = True) -> None:
        self.port, self.datasets = port, [ct_dataset() for _ in range(count)]
        self.completed = count if counted else 0  # a PACS that counts none it will send
        self.tasks: set[asyncio.Task] = set()

    async def handle(self, assoc, context, request, dataset) -> None:
        await assoc.send(context.context_id, response(request, 0, (0, self.completed, 0, 0)))
        await asyncio.sleep(0.2)  # the client has its final response well before the data

        async def later() -> None:
            with contextlib.suppress(pacsbox.PacsboxError):  # nobody listens: lost, as meant
                await asyncio.gather(*(push(self.port, [ds]) for ds in self.datasets))

        self.tasks.add(asyncio.ensure_future(later()))


async def send_one(assoc, request, port: int | None) -> None:
    """One CT instance for a C-MOVE (to ``port``, an association of its own) or a C-GET
    (over its association)."""
    ds = ct_dataset()
    if isinstance(request, CMoveRQ):
        await push(port, [ds])
        return
    store_context = assoc.context_for(CT)
    store = CStoreRQ(message_id=900, affected_sop_class_uid=CT,
                     affected_sop_instance_uid=ds.SOPInstanceUID)  # fmt: skip
    raw = encode_identifier(ds, store_context.transfer_syntax)
    await assoc.request_one(store_context.context_id, store, raw)


class UntilCancelled(RequestHandler):
    """C-MOVE or C-GET: one instance (with a pending response only if ``pending``), then waits
    for our C-CANCEL and ends with 0xFE00 (or, without ``answer``, never ends)."""

    def __init__(self, port: int | None = None, pending: bool = False, answer: bool = True):
        self.port, self.pending, self.answer = port, pending, answer
        self.cancelled = False

    async def handle(self, assoc, context, request, dataset) -> None:
        await send_one(assoc, request, self.port)
        if self.pending:
            await assoc.send(context.context_id, response(request, 0xFF00, (9, 1, 0, 0)))
        await asyncio.wait_for(assoc.operation(request.message_id).cancelled.wait(), HANG)
        self.cancelled = True
        if not self.answer:  # a PACS that ignores C-CANCEL and never ends
            await asyncio.wait_for(asyncio.shield(assoc.closed), HANG)
            return
        await assoc.send(context.context_id, response(request, 0xFE00, (9, 1, 0, 0)))


class OneThenAbort(RequestHandler):
    """C-MOVE or C-GET: one instance, then the association aborted (a PACS that dies or
    gives up midway)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port

    async def handle(self, assoc, context, request, dataset) -> None:
        await send_one(assoc, request, self.port)
        assoc.abort()


class FinalStatus(RequestHandler):
    def __init__(self, status: int) -> None:
        self.status = status

    async def handle(self, assoc, context, request, dataset) -> None:
        await assoc.send(context.context_id, response(request, self.status, (None, 0, 0, 0)))


async def misbehaving(handler: RequestHandler, *, get: bool = False) -> Server:
    classes = {MOVE, GET, CT} if get else {MOVE}
    config = ServerConfig(
        ae_title="PACS",
        policy=AcceptorPolicy(
            abstract_syntaxes=frozenset(classes), requestor_may_be_scp=frozenset({CT})
        ),
        handlers={CMoveRQ: handler, CGetRQ: handler},
    )
    server = Server(config)
    await server.start("127.0.0.1", 0)
    return server


def client_for(server: Server, receive: int = 0, **options) -> pacsbox.AsyncClient:
    return pacsbox.AsyncClient(
        "127.0.0.1", server.port, called_ae="PACS", calling_ae=US, receive_port=receive,
        receive_host="127.0.0.1", **options,
    )  # fmt: skip


async def test_success_before_the_c_stores_over_several_associations(tmp_path):
    receive = peers.free_port()
    handler = SuccessFirst(receive, 3)
    seen = []
    async with await misbehaving(handler) as server, client_for(server, receive) as client:
        result = await client.retrieve(StudyInstanceUID="1.2.3", dest=tmp_path,
                                       on_progress=seen.append)  # fmt: skip
    assert result.method == "move" and "C-GET" in result.fallback
    assert names(result.files) == sorted(f"CT.{ds.SOPInstanceUID}" for ds in handler.datasets)
    assert [p.received for p in seen] == [1, 2, 3]


async def test_success_counting_none_before_the_c_stores(tmp_path):
    """The quirk the second seed names: Success at once, then the instances on another
    association, and here with no instance counted in that Success."""
    receive = peers.free_port()
    handler = SuccessFirst(receive, 3, counted=False)
    async with await misbehaving(handler) as server, client_for(server, receive) as client:
        result = await client.retrieve(StudyInstanceUID="1.2.3", dest=tmp_path, method="move")
    assert names(result.files) == sorted(f"CT.{ds.SOPInstanceUID}" for ds in handler.datasets)


async def test_a_pacs_with_nothing_to_send_ends_after_the_grace(tmp_path):
    receive = peers.free_port()
    async with (
        await misbehaving(FinalStatus(0x0000)) as server,
        client_for(server, receive, settle_timeout=0.2) as client,
    ):
        result = await client.retrieve(StudyInstanceUID="1.2.3", dest=tmp_path, method="move")
    assert result.received == 0 and result.result.status == 0


async def test_instances_that_never_come_raise_after_the_settle_timeout(tmp_path):
    receive = peers.free_port()
    handler = SuccessFirst(peers.free_port(), 2)  # it sends them elsewhere
    async with (
        await misbehaving(handler) as server,
        client_for(server, receive, settle_timeout=0.5) as client,
    ):
        with pytest.raises(pacsbox.IncompleteRetrieveError) as caught:
            await client.retrieve(StudyInstanceUID="1.2.3", dest=tmp_path, method="move")
    for task in handler.tasks:
        task.cancel()
    message = str(caught.value)
    assert "reported 2 instance(s) sent" in message and f"port {receive}" in message, message
    assert caught.value.retrieved.received == 0


@pytest.mark.parametrize("method", ["move", "get"])
async def test_cancel_token_from_another_thread(tmp_path, method):
    receive = peers.free_port()
    handler = UntilCancelled(receive)
    token = pacsbox.CancelToken()

    def on_progress(progress) -> None:  # cancels from another thread, as a GUI button would
        threading.Thread(target=token.cancel).start()

    async with (
        await misbehaving(handler, get=True) as server,
        client_for(server, receive) as client,
    ):
        result = await client.retrieve(StudyInstanceUID="1.2.3", dest=tmp_path, method=method,
                                       on_progress=on_progress, cancel=token)  # fmt: skip
    assert handler.cancelled and result.cancelled and result.result.status == 0xFE00
    assert result.received == 1 and result.cancelled_by is None
    assert "cancelled" in result.summary()


async def test_raising_in_the_callback_cancels_and_keeps_what_arrived(tmp_path):
    receive = peers.free_port()
    handler = UntilCancelled(receive, pending=True)

    class Enough(Exception):
        pass

    def on_progress(progress) -> None:
        if progress.status is not None:  # the pending response, after the instance
            raise Enough("the user pressed Cancel")

    async with (
        await misbehaving(handler, get=True) as server,
        client_for(server, receive) as client,
    ):
        result = await client.retrieve(StudyInstanceUID="1.2.3", dest=tmp_path, method="move",
                                       on_progress=on_progress)  # fmt: skip
    assert handler.cancelled and result.cancelled
    assert isinstance(result.cancelled_by, Enough) and result.received == 1
    assert result.files[0].is_file()


async def test_a_cancelled_task_aborts_the_association_and_frees_the_port(tmp_path):
    """What Ctrl-C does to the sync facade's call: the retrieve's task is cancelled."""
    receive = peers.free_port()
    arrived = asyncio.Event()
    async with (
        await misbehaving(UntilCancelled(receive)) as server,
        client_for(server, receive) as client,
    ):
        task = asyncio.ensure_future(
            client.retrieve(StudyInstanceUID="1.2.3", dest=tmp_path, method="move",
                            on_progress=lambda p: arrived.set())
        )  # fmt: skip
        await asyncio.wait_for(arrived.wait(), HANG)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client._assoc.closed.done()
        async with pacsbox.StorageReceiver(tmp_path, port=receive, host="127.0.0.1"):
            pass  # the built-in receiver let go of its port


async def test_a_pacs_that_ignores_c_cancel_is_aborted_after_cancel_timeout(tmp_path):
    receive = peers.free_port()
    handler = UntilCancelled(receive, answer=False)
    token = pacsbox.CancelToken()
    async with (
        await misbehaving(handler) as server,
        client_for(server, receive, cancel_timeout=0.5) as client,
    ):
        result = await client.retrieve(StudyInstanceUID="1.2.3", dest=tmp_path, method="move",
                                       on_progress=lambda p: token.cancel(), cancel=token)  # fmt: skip
    assert handler.cancelled and result.cancelled and result.result is None
    assert result.received == 1 and "did not answer our C-CANCEL" in str(result.error)


@pytest.mark.parametrize("method", ["auto", "get", "move"])
def test_a_token_cancelled_before_the_retrieve_asks_nothing(tmp_path, method):
    """Nothing listens at the port: a retrieve that connected would fail; a cancelled token
    returns at once, cancelled, with nothing received."""
    token = pacsbox.CancelToken()
    token.cancel()
    with pacsbox.connect("127.0.0.1", peers.free_port(), called_ae="PACSBOX") as client:
        result = client.retrieve(StudyInstanceUID="1.2.3", dest=tmp_path, method=method,
                                 cancel=token)  # fmt: skip
    assert result.cancelled and result.result is None and result.received == 0
    assert result.method == ("move" if method == "move" else "get")
    assert "cancelled" in result.summary()


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (0xA801, pacsbox.MoveDestinationUnknownError, ["0xA801", f"'{US}'", "port", "calling_ae"]),
        (0xC001, pacsbox.IdentifierError, ["0xC001", "QueryRetrieveLevel", "level='STUDY'"]),
        (0x0120, pacsbox.IdentifierError, ["0x0120", "identifier"]),
        (0xA702, pacsbox.RetrieveOutOfResourcesError, ["0xA702", "port"]),
        (0xB000, pacsbox.SubOperationsFailedError, ["0xB000", "did not reach"]),
    ],
)
async def test_failure_statuses_are_typed_and_say_what_to_do(tmp_path, status, error, words):
    async with await misbehaving(FinalStatus(status)) as server, client_for(server) as client:
        with pytest.raises(error) as caught:
            await client.retrieve(StudyInstanceUID="1.2.3", dest=tmp_path)
    message = str(caught.value)
    assert isinstance(caught.value, pacsbox.RetrieveError) and caught.value.status == status
    assert caught.value.retrieved.received == 0  # what did arrive stays available
    for word in words:
        assert word.lower() in message.lower(), message
    for flag in ("-aem", "-aet", "-aec", "-S -k", "with -d"):  # the command line's words
        assert flag not in message, message


@pytest.mark.parametrize("method", ["get", "move"])
async def test_a_pacs_that_aborts_midway_leaves_what_arrived_in_the_error(tmp_path, method):
    """Not a failure status but the association aborted (or the connection lost) after some
    instances: the error carries them in ``retrieved`` as RetrieveError does, and says so
    (it had none, and the files in the directory were left unaccounted for)."""
    receive = peers.free_port()
    async with (
        await misbehaving(OneThenAbort(receive), get=method == "get") as server,
        client_for(server, receive) as client,
    ):
        with pytest.raises(pacsbox.PacsboxError) as caught:
            await client.retrieve(StudyInstanceUID="1.2.3", dest=tmp_path, method=method)
    assert caught.value.retrieved.received == 1
    assert caught.value.retrieved.files == list(tmp_path.iterdir())
    assert "1 instance(s) had arrived" in str(caught.value), str(caught.value)


async def test_a_c_get_answered_0xc000_says_the_pacs_may_hold_nothing(tmp_path):
    """Orthanc answers a C-GET of a study it does not hold with 0xC000: the message says so
    (the C-MOVE's did, the C-GET's only said to check the identifier)."""
    async with (
        await misbehaving(FinalStatus(0xC000), get=True) as server,
        client_for(server) as client,
    ):
        with pytest.raises(pacsbox.IdentifierError) as caught:
            await client.retrieve(StudyInstanceUID="1.2.3", dest=tmp_path, method="get")
    assert "hold nothing that matches: a C-FIND with the same keys tells" in str(caught.value)


async def test_an_empty_series_retrieve_without_the_study_uid_says_what_to_add(tmp_path, caplog):
    """DCMTK's dcmqrscp retrieves hierarchically: a SERIES-level retrieve by the Series
    Instance UID alone matches nothing and ends in Success; the log says to add the Study
    Instance UID (it returned 0 instances without a word)."""
    async with (
        await misbehaving(FinalStatus(0x0000), get=True) as server,
        client_for(server) as client,
    ):
        with caplog.at_level(logging.WARNING, logger="pacsbox"):
            result = await client.retrieve(SeriesInstanceUID="1.2.3", dest=tmp_path,
                                           method="get")  # fmt: skip
            assert result.received == 0
            assert "pass StudyInstanceUID= too" in caplog.text
            caplog.clear()
            await client.retrieve(SeriesInstanceUID="1.2.3", StudyInstanceUID="1.2",
                                  dest=tmp_path, method="get")  # fmt: skip
            assert "StudyInstanceUID" not in caplog.text


def test_keyword_mistakes_are_explained():
    client = pacsbox.AsyncClient("127.0.0.1", 1, called_ae="PACS")
    with pytest.raises(ValueError, match="unique key"):
        asyncio.run(client.retrieve(PatientName="DOE^J"))
    with pytest.raises(pacsbox.PacsboxError, match="StudyInstanceUID"):
        asyncio.run(client.find(StudyInstanceUid="1.2"))
    with pytest.raises(pacsbox.PacsboxError, match="did you mean StudyInstanceUID"):
        asyncio.run(client.retrieve(StudyInstanceUid="1.2"))  # not "needs a unique key"
    with pytest.raises(ValueError, match="auto, get, move"):
        asyncio.run(client.retrieve(StudyInstanceUID="1.2", method="zip"))
    with pytest.raises(pacsbox.PacsboxError, match="is a file, not a directory"):
        asyncio.run(client.retrieve(StudyInstanceUID="1.2", dest=__file__))


def test_keyword_values_become_an_identifier():
    import datetime

    from pacsbox.client import _identifier

    ds = _identifier(
        {"StudyDate": datetime.date(2024, 1, 2), "StudyTime": datetime.time(1, 2, 3),
         "ModalitiesInStudy": ["CT", "MR"], "PatientName": None},
        "STUDY", ("PatientName", "StudyInstanceUID"),
    )  # fmt: skip
    assert (ds.StudyDate, ds.StudyTime, list(ds.ModalitiesInStudy)) == (
        "20240102", "010203", ["CT", "MR"],
    )  # fmt: skip
    assert ds.QueryRetrieveLevel == "STUDY" and ds.PatientName == "" and "StudyInstanceUID" in ds


def test_import_pacsbox_stays_light():
    import subprocess

    code = "import sys, pacsbox; pacsbox.connect; print('pydicom' in sys.modules)"
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert cp.stdout.strip() == "False", cp.stderr


def test_the_readme_example_runs(pacs, tmp_path):
    port, receive, study, _, samples = pacs
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    code = readme.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    for old, new in (
        ('"pacs.example.org", 11112', f'"127.0.0.1", {port}'),
        ('called_ae="PACS", calling_ae="ME"', f'called_ae="PACSBOX", calling_ae="{US}"'),
        ('"ct.dcm", "study-folder/"', f'"{samples["ct"].path}", "{samples["rtplan"].path}"'),
        ('PatientName="DOE^J*"', f'StudyInstanceUID="{study}"'),
        ('dest="./study"', f'dest="{tmp_path}"'),
        ("port=11113", f"port={receive}"),
    ):
        assert old in code, old
        code = code.replace(old, new)
    namespace = {"a_pydicom_dataset": pydicom.dcmread(samples["mr"].path)}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["study"].received == 3 and len(namespace["study"].files) == 3


def _readme_block(index: int) -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    return readme.split("## Python API", 1)[1].split("```python\n")[index].split("```", 1)[0]


def test_the_readme_move_and_store_with_a_progress_bar_runs(pacs, tmp_path):
    port, receive, study, _, _ = pacs
    code = _readme_block(2)
    for old, new in (
        ('"pacs.example.org", 11112', f'"127.0.0.1", {port}'),
        ('called_ae="PACS", calling_ae="ME"', f'called_ae="PACSBOX", calling_ae="{US}"'),
        ('dest="./study"', f'dest="{tmp_path}"'),
        ("port=11113", f"port={receive}"),
    ):
        assert old in code, old
        code = code.replace(old, new)
    namespace = {"uid": study}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["done"].received == 3


def test_the_readme_receiver_runs(tmp_path):
    code = _readme_block(3)
    old = 'input(f"receiving on port {receiver.port}; press Enter to stop\\n")'
    assert old in code
    code = code.replace(old, "push(receiver.port)")
    code = code.replace('"./incoming"', f'"{tmp_path}"').replace("port=11113", "port=0")
    samples = build_samples(tmp_path / "samples")

    def push(port: int) -> None:
        cp = peers.run_dcmtk("storescu", "-aec", "ME", "127.0.0.1", port, samples["ct"].path)
        assert cp.returncode == 0, cp.stderr

    exec(compile(code, "README.md", "exec"), {"push": push})
    assert (tmp_path / samples["ct"].stored_name).is_file()


@contextlib.contextmanager
def serving_a_study(tmp_path: Path, count: int):
    """pacsbox serve holding a study of ``count`` instances (pending responses after every
    sub-operation; US's receiver known at a port of its own): (client, study UID, port)."""
    port, receive = peers.free_port(), peers.free_port()
    config = tmp_path / "pacsbox.toml"
    config.write_text(f'[peers.{US}]\nhost = "127.0.0.1"\nport = {receive}\n')
    study, _ = make_study(tmp_path / "study", count)
    with pacsbox_server(port, "--config", config, "--pending-interval", "0",
                        data=tmp_path / "data"):  # fmt: skip
        cp = peers.run_dcmtk("storescu", "-aec", "PACSBOX", "127.0.0.1", port, "+sd",
                             tmp_path / "study")  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        with pacsbox.connect("127.0.0.1", port, called_ae="PACSBOX", calling_ae=US) as client:
            yield client, study, receive


@pytest.mark.parametrize("method", ["get", "move"])
def test_cancel_midway_against_pacsbox_serve(tmp_path, method):
    """A real archive (pending responses after every sub-operation) and a 60-instance study:
    the token is set after the 5th instance; the retrieve ends Cancelled with what arrived."""
    token = pacsbox.CancelToken()

    def on_progress(progress) -> None:
        if progress.received >= 5:
            token.cancel()

    with serving_a_study(tmp_path, 60) as (client, study, receive):
        result = client.retrieve(StudyInstanceUID=study, dest=tmp_path / "out", method=method,
                                 port=receive, on_progress=on_progress, cancel=token)  # fmt: skip
    assert result.cancelled and result.result.status == 0xFE00, result.summary()
    assert 5 <= result.received < 60 and len(result.files) == result.received


@pytest.mark.parametrize("method", ["get", "move"])
def test_ctrl_c_in_on_progress_cancels_and_is_raised_again(tmp_path, method):
    """KeyboardInterrupt raised by on_progress (Ctrl-C while it runs) cancels the retrieve
    as any exception there does, then goes on in the caller's thread, with what arrived;
    the client's loop survives it (it had stopped, and the call never returned)."""

    def on_progress(progress) -> None:
        if progress.received >= 3:
            raise KeyboardInterrupt

    with serving_a_study(tmp_path, 40) as (client, study, receive):
        with pytest.raises(KeyboardInterrupt) as raised:
            client.retrieve(StudyInstanceUID=study, dest=tmp_path / "out", method=method,
                            port=receive, on_progress=on_progress)  # fmt: skip
        assert client.echo() == 0  # the client goes on
    result = raised.value.retrieved
    assert result.cancelled and isinstance(result.cancelled_by, KeyboardInterrupt)
    assert 3 <= result.received < 40 and len(result.files) == result.received


def test_cancel_midway_against_dcmtk_dcmqrscp(tmp_path):
    from tests.interop.test_retrieve_scu import dcmtk_dcmqrscp

    study, _ = make_study(tmp_path / "files", 60)
    token = pacsbox.CancelToken()

    def on_progress(progress) -> None:
        if progress.received >= 5:
            token.cancel()

    with dcmtk_dcmqrscp(tmp_path, files=[tmp_path / "files"]) as (server, acme1):
        options = {"called_ae": "ACME_STORE", "calling_ae": "ACME1", "receive_port": acme1}
        with pacsbox.connect("localhost", server.port, **options) as client:
            result = client.retrieve(StudyInstanceUID=study, dest=tmp_path / "move",
                                     method="move", on_progress=on_progress, cancel=token)  # fmt: skip
    assert result.cancelled, result.summary()
    assert 5 <= result.received < 60


def test_commit_with_the_report_on_a_new_association(pacs):
    port, receive, _, uids, _ = pacs
    with pacsbox.connect("127.0.0.1", port, called_ae="PACSBOX", calling_ae=US) as client:
        same = client.commit(*[(CT, uid) for uid in uids])
        anew = client.commit(*[(CT, uid) for uid in uids], port=receive)
        assert client.echo() == 0  # the released association is replaced on the next call
    assert same.same_association and not anew.same_association
    assert sorted(u for _, u in anew.committed) == sorted(uids) and not anew.failed


def test_a_misspelt_argument_is_said_as_such_not_as_a_dicom_keyword():
    from pacsbox.client import _identifier
    from pacsbox.query_keys import QueryKeyError

    with pytest.raises(TypeError, match=r"'dset': did you mean dest=\?"):
        _identifier({"StudyInstanceUID": "1.2", "dset": "out"}, "STUDY", ())
    with pytest.raises(TypeError, match="did you mean on_progress="):
        _identifier({"on_progess": print}, "STUDY", ())
    with pytest.raises(QueryKeyError, match="did you mean PatientName"):  # a DICOM keyword's typo
        _identifier({"PatientNme": "DOE*"}, "STUDY", ())
    assert _identifier({"PatientName": "DOE*"}, "STUDY", ()).PatientName == "DOE*"
