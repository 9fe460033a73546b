"""pacsbox movescu / getscu against DCMTK's dcmqrscp, Orthanc and a pynetdicom SCP.

The tutorial's two movescu commands run as written (prefixed with `pacsbox `, ports made
free): the CT study, and the JPEG lossless study with +xs on both sides. Then C-GET, C-CANCEL
between sub-operations, the failures a user meets (an unknown move destination, one the PACS
cannot reach) and the PACS quirks a retrieve client must survive: no pending responses at
all, and the final response before the instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import sys
import threading
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests import peers
from tests.pacsbox_cli import PACSBOX, run_pacsbox
from tests.storage_data import build_samples, meta

pytestmark = pytest.mark.interop

JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
RETRIEVE_SCP_SCRIPT = Path(__file__).with_name("pynetdicom_retrieve_scp.py")
STUDY_SIZE = 12


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return build_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="module")
def study(tmp_path_factory, samples) -> tuple[str, Path, list[str]]:
    """(StudyInstanceUID, folder, SOP Instance UIDs): 12 CT images of one study."""
    folder = tmp_path_factory.mktemp("study")
    ds = pydicom.dcmread(samples["ct"].path)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    uids = []
    for number in range(1, STUDY_SIZE + 1):
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        ds.save_as(folder / f"ct{number:02}.dcm", enforce_file_format=True)
        uids.append(ds.SOPInstanceUID)
    return ds.StudyInstanceUID, folder, uids


def study_uid(path: Path) -> str:
    return pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID


def received(directory: Path) -> dict[str, Path]:
    return {p.name: p for p in directory.iterdir() if not p.name.startswith(".")}


@contextlib.contextmanager
def dcmtk_dcmqrscp(tmp_path: Path, *options: str, files=(), jpeg=()):
    """DCMTK's dcmqrscp with the tutorial's configuration (ACME1 at a free port) holding
    ``files`` (stored by DCMTK's storescu) and ``jpeg`` (stored with -xs -R, as the tutorial
    stores ct-compressed.dcm). Yields (server, acme1_port)."""
    port, acme1 = peers.free_port(), peers.free_port()
    cfg = peers.tutorial_cfg(tmp_path, port, acme1_port=acme1)
    with peers.DcmtkServer("dcmqrscp", ["-c", cfg, *options], port, port_arg=False) as server:
        for path in files:
            cp = peers.run_dcmtk(
                "storescu", "+sd", "localhost", port, path, "-aec", "ACME_STORE", "-aet", "ACME1"
            )
            assert cp.returncode == 0, cp.stderr
        for path in jpeg:
            cp = peers.run_dcmtk(
                "storescu", "localhost", port, path, "-aec", "ACME_STORE", "-aet", "ACME1",
                "--required", "--propose-lossless",
            )  # fmt: skip
            assert cp.returncode == 0, cp.stderr
        yield server, acme1


def tutorial_movescu(port: int, acme1: int, out: Path, study: str, *extra: str):
    """The tutorial's command, word for word but for the ports."""
    return run_pacsbox(
        "movescu", "-v", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "-aem", "ACME1",
        "--port", acme1, "-od", f"{out}/", "localhost", port,
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", *extra,
    )  # fmt: skip


# -- the tutorial, against DCMTK's dcmqrscp ----------------------------------------------------


def test_tutorial_movescu_ct_study(tmp_path, samples):
    ct = samples["ct"]
    out = tmp_path / "out"
    out.mkdir()
    with dcmtk_dcmqrscp(tmp_path, files=[ct.path]) as (server, acme1):
        cp = tutorial_movescu(server.port, acme1, out, study_uid(ct.path))
    assert cp.returncode == 0, cp.stderr
    assert list(received(out)) == [ct.stored_name]  # CT.<SOPInstanceUID>, as DCMTK names it
    log = cp.stderr
    for line in (
        "I: Sending Move Request (MsgID 1)",
        "I: (0008,0052) CS [STUDY]",
        "I: Sub-Association Received",  # DCMTK's words for its receiver's association
        "I: Received Store Request (MsgID 1, CT)",
        "I: Received Final Move Response (Success)",
        "I: Releasing Association",
    ):
        assert line in log, log
    got = pydicom.dcmread(out / ct.stored_name)
    assert got.SOPInstanceUID == ct.sop_instance_uid
    assert got.PixelData == pydicom.dcmread(ct.path).PixelData


def test_movescu_without_aem_moves_to_its_own_ae_title(tmp_path, samples):
    """DCMTK's movescu names its calling AE title (-aet) as the move destination when -aem
    is not given (whatever its help says): the same command works with pacsbox movescu."""
    ct = samples["ct"]
    out = tmp_path / "out"
    out.mkdir()
    with dcmtk_dcmqrscp(tmp_path, files=[ct.path]) as (server, acme1):
        for tool in (peers.run_dcmtk, run_pacsbox):
            cp = tool(
                "movescu", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "--port", acme1,
                "-od", f"{out}/", "localhost", server.port,
                "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid(ct.path)}",
            )  # fmt: skip
            assert cp.returncode == 0, cp.stderr
            assert list(received(out)) == [ct.stored_name], tool
            (out / ct.stored_name).unlink()


def test_tutorial_movescu_jpeg_lossless_with_xs_on_both_sides(tmp_path, samples):
    """dcmqrscp +xs -xs, movescu ... +xs: the JPEG lossless CT arrives as it is stored."""
    compressed = samples["ct_jpeg_lossless"]
    out = tmp_path / "out"
    out.mkdir()
    with dcmtk_dcmqrscp(tmp_path, "+xs", "-xs", jpeg=[compressed.path]) as (server, acme1):
        cp = tutorial_movescu(server.port, acme1, out, study_uid(compressed.path), "+xs")
        assert cp.returncode == 0, cp.stderr
        assert list(received(out)) == [compressed.stored_name]
        assert meta(out / compressed.stored_name).TransferSyntaxUID == JPEG_LOSSLESS_SV1
        assert (
            pydicom.dcmread(out / compressed.stored_name).pixel_array
            == pydicom.dcmread(compressed.path).pixel_array
        ).all()
        # without +xs the receiver accepts only uncompressed syntaxes, which dcmqrscp cannot
        # convert to: the sub-operation fails, and the message says what to pass
        again = tmp_path / "again"
        again.mkdir()
        cp = tutorial_movescu(server.port, acme1, again, study_uid(compressed.path))
    assert cp.returncode == 1, cp.stderr
    assert not received(again)
    reason = [line for line in cp.stderr.splitlines() if line.startswith("F: ")]
    assert len(reason) == 1, cp.stderr
    assert f"did connect to our port {acme1}" in reason[0], cp.stderr
    assert "offered JPEG Lossless" in reason[0] and "pass +xs" in reason[0], cp.stderr


# -- C-GET, C-CANCEL and failures against DCMTK's dcmqrscp -------------------------------------


def test_getscu_from_dcmqrscp(tmp_path, samples, study):
    uid, folder, uids = study
    compressed = samples["ct_jpeg_lossless"]
    out = tmp_path / "out"
    out.mkdir()
    with dcmtk_dcmqrscp(tmp_path, "+xs", files=[folder], jpeg=[compressed.path]) as (server, _):
        cp = run_pacsbox(
            "getscu", "-v", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "-od", out,
            "localhost", server.port, "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}",
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        assert sorted(received(out)) == sorted(f"CT.{u}" for u in uids)
        assert "Received C-GET Response (Success)" in cp.stderr
        assert f"getscu: Sub-operations complete: no failures ({STUDY_SIZE} completed" in cp.stderr
        # the JPEG lossless study over C-GET: +xs proposes JPEG lossless for the storage classes
        jpeg_out = tmp_path / "jpeg"
        jpeg_out.mkdir()
        cp = run_pacsbox(
            "getscu", "+xs", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "-od", jpeg_out,
            "localhost", server.port, "-k", "QueryRetrieveLevel=STUDY",
            "-k", f"StudyInstanceUID={study_uid(compressed.path)}",
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        assert list(received(jpeg_out)) == [compressed.stored_name]
        assert meta(jpeg_out / compressed.stored_name).TransferSyntaxUID == JPEG_LOSSLESS_SV1
        # without +xs dcmqrscp has no context to send its JPEG file in: 0xA702, which the
        # message explains
        plain = tmp_path / "plain"
        plain.mkdir()
        cp = run_pacsbox(
            "getscu", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "-od", plain,
            "localhost", server.port, "-k", "QueryRetrieveLevel=STUDY",
            "-k", f"StudyInstanceUID={study_uid(compressed.path)}",
        )  # fmt: skip
    assert cp.returncode == 1
    assert not received(plain)
    assert "0xA702" in cp.stderr and "needs +xs" in cp.stderr, cp.stderr


def test_movescu_cancel_between_sub_operations(tmp_path, study):
    """--cancel 2: a C-CANCEL-RQ after the second pending response; dcmqrscp stops before
    the study is done and ends with 0xFE00, as with DCMTK's movescu."""
    uid, folder, _ = study
    out = tmp_path / "out"
    out.mkdir()
    with dcmtk_dcmqrscp(tmp_path, files=[folder]) as (server, acme1):
        cp = run_pacsbox(
            "movescu", "-v", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "-aem", "ACME1",
            "--port", acme1, "--bind", "127.0.0.1", "-od", out, "--cancel", "2",
            "localhost", server.port, "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}",
        )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert "I: Sending Cancel Request (MsgID 1, PresID 1)" in cp.stderr
    assert (
        "Received Final Move Response (Cancel: SubOperationsTerminatedDueToCancelIndication)"
        in cp.stderr
    )
    assert 2 <= len(received(out)) < STUDY_SIZE, cp.stderr
    assert "movescu: Sub-operations terminated due to cancel indication" in cp.stderr


def test_getscu_cancel(tmp_path, study):
    uid, folder, _ = study
    out = tmp_path / "out"
    out.mkdir()
    with dcmtk_dcmqrscp(tmp_path, files=[folder]) as (server, _):
        cp = run_pacsbox(
            "getscu", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "-od", out, "--cancel", "3",
            "localhost", server.port, "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}",
        )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert 1 <= len(received(out)) < STUDY_SIZE, cp.stderr
    assert "terminated due to cancel" in cp.stderr


def test_unknown_move_destination_names_the_ae_and_what_to_configure(tmp_path, samples):
    ct = samples["ct"]
    with dcmtk_dcmqrscp(tmp_path, files=[ct.path]) as (server, _):
        cp = run_pacsbox(
            "movescu", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "-aem", "NOBODY",
            "localhost", server.port, "-k", "QueryRetrieveLevel=STUDY",
            "-k", f"StudyInstanceUID={study_uid(ct.path)}",
        )  # fmt: skip
    assert cp.returncode == 1
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1, cp.stderr  # one line: the reason
    assert lines[0].startswith("F: ")
    assert "0xA801" in lines[0]
    assert "Configure AE 'NOBODY' with host and port on the PACS" in lines[0]
    assert "HostTable" in lines[0] and "-aem" in lines[0]


def test_destination_the_pacs_cannot_reach(tmp_path, samples):
    """ACME2 is in dcmqrscp's HostTable, but nothing listens on its port: dcmqrscp answers
    0xA702 (out of resources), and the message says what that usually means."""
    ct = samples["ct"]
    with dcmtk_dcmqrscp(tmp_path, files=[ct.path]) as (server, _):
        cp = run_pacsbox(
            "movescu", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "-aem", "ACME1",
            "localhost", server.port, "-k", "QueryRetrieveLevel=STUDY",
            "-k", f"StudyInstanceUID={study_uid(ct.path)}",
        )  # fmt: skip
    assert cp.returncode == 1
    assert "0xA702" in cp.stderr
    assert "could not connect to the move destination 'ACME1'" in cp.stderr
    assert "--port N" in cp.stderr


# -- Orthanc -----------------------------------------------------------------------------------


def test_movescu_and_getscu_with_orthanc(tmp_path, samples, study):
    uid, folder, uids = study
    recv = peers.free_port()
    modalities = {"acme1": ("ACME1", "127.0.0.1", recv)}
    with peers.OrthancServer(tmp_path / "orthanc", modalities=modalities) as orthanc:
        cp = run_pacsbox("storescu", "127.0.0.1", orthanc.dicom_port, folder)
        assert cp.returncode == 0, cp.stderr
        common = ("-S", "-aec", "ORTHANC", "-aet", "ACME1")
        keys = ("-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}")
        moved, got = tmp_path / "moved", tmp_path / "got"
        moved.mkdir()
        got.mkdir()
        cp = run_pacsbox(
            "movescu", "-v", *common, "-aem", "ACME1", "--port", recv, "--bind", "127.0.0.1",
            "-od", moved, "127.0.0.1", orthanc.dicom_port, *keys,
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr + orthanc.output()
        assert sorted(received(moved)) == sorted(f"CT.{u}" for u in uids)
        cp = run_pacsbox(
            "getscu", "-v", *common, "-od", got, "127.0.0.1", orthanc.dicom_port, *keys
        )
        assert cp.returncode == 0, cp.stderr + orthanc.output()
        assert sorted(received(got)) == sorted(f"CT.{u}" for u in uids)
        # Orthanc answers an unknown destination with 0xC000, not 0xA801: the message
        # still names the destination and what to configure
        cp = run_pacsbox(
            "movescu", *common, "-aem", "NOBODY", "127.0.0.1", orthanc.dicom_port, *keys
        )
        assert cp.returncode == 1
        assert "'NOBODY'" in cp.stderr and "DicomModalities" in cp.stderr, cp.stderr
        # and so it answers a study it does not hold: the message says that may be why
        cp = run_pacsbox(
            "movescu", *common, "-aem", "ACME1", "--port", recv, "--bind", "127.0.0.1",
            "-od", moved, "127.0.0.1", orthanc.dicom_port,
            "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=9.9.9",
        )  # fmt: skip
        assert cp.returncode == 1
        assert "0xC000" in cp.stderr and "hold nothing that matches" in cp.stderr, cp.stderr
        # and an AE Orthanc does not know may not retrieve at all: it aborts
        cp = run_pacsbox(
            "getscu", "-S", "-aec", "ORTHANC", "-aet", "STRANGER", "-od", got,
            "127.0.0.1", orthanc.dicom_port, *keys,
        )  # fmt: skip
        assert cp.returncode == 1
        assert "'STRANGER' (-aet)" in cp.stderr, cp.stderr


# -- a PACS that sends no pending responses (pynetdicom) ---------------------------------------


def retrieve_scp(port: int, files: Path, *options: object) -> peers.PeerProcess:
    argv = [sys.executable, RETRIEVE_SCP_SCRIPT, "--port", port, "--files", files, *options]
    return peers.PeerProcess(argv, port, name="pynetdicom_retrieve_scp")


def run_on_a_terminal(*args: object) -> tuple[int, str]:
    """`pacsbox ARGS` with stderr on a pseudo terminal (so the progress bar shows)."""
    import subprocess

    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = dict(os.environ, COLUMNS="120", TERM="xterm")
    proc = subprocess.run(
        [PACSBOX, *map(str, args)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=slave, env=env, timeout=120, check=False,
    )  # fmt: skip
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


def test_no_pending_responses_movescu_counts_instances_received(tmp_path, study):
    uid, folder, uids = study
    port, recv = peers.free_port(), peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    options = ("--destination", f"ACME1=127.0.0.1:{recv}", "--no-pending")
    with retrieve_scp(port, folder, *options):
        cp = run_pacsbox(
            "movescu", "-v", "-S", "-aec", "RETRIEVE_SCP", "-aet", "ACME1", "-aem", "ACME1",
            "--port", recv, "--bind", "127.0.0.1", "-od", out, "127.0.0.1", port,
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}",
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        assert "(Pending)" not in cp.stderr  # the peer really sent none
        assert cp.stderr.count("Received Store Request") == STUDY_SIZE
        assert f"{STUDY_SIZE} instance(s) received here" in cp.stderr
        assert sorted(received(out)) == sorted(f"CT.{u}" for u in uids)
        # on a terminal the bar counts the instances as they come, and ends full
        bar = tmp_path / "bar"
        bar.mkdir()
        code, screen = run_on_a_terminal(
            "movescu", "-S", "-aec", "RETRIEVE_SCP", "-aet", "ACME1", "-aem", "ACME1",
            "--port", recv, "--bind", "127.0.0.1", "-od", bar, "127.0.0.1", port,
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}",
        )  # fmt: skip
    assert code == 0, screen
    assert "Retrieving (C-MOVE)" in screen, screen
    assert f"{STUDY_SIZE}/{STUDY_SIZE}" in screen, screen
    assert len(received(bar)) == STUDY_SIZE


async def test_no_pending_responses_get_reports_each_instance(tmp_path, study):
    """The API: on_progress sees every C-STORE of a C-GET, even without pending responses."""
    from pacsbox.dimse import CStoreRQ
    from pacsbox.net.association import Association
    from pacsbox.net.requestor import build_rq
    from pacsbox.services.retrieve_scu import get, get_negotiation
    from pacsbox.services.storage_scp import StorageSCP

    uid, folder, uids = study
    port = peers.free_port()
    with retrieve_scp(port, folder, "--no-pending"):
        proposals, roles = get_negotiation("study", storage_classes=["1.2.840.10008.5.1.4.1.1.2"])
        rq = build_rq(
            calling_ae="GETSCU", called_ae="RETRIEVE_SCP", proposals=proposals,
            role_selections=roles,
        )  # fmt: skip
        identifier = pydicom.Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = uid
        seen = []
        scp = StorageSCP(tmp_path)
        assoc = await Association.connect("127.0.0.1", port, rq, handlers={CStoreRQ: scp})
        async with assoc:
            result = await get(assoc, "study", identifier, on_progress=seen.append)
        scp.close()
    assert result.status == 0 and result.completed == STUDY_SIZE and result.pending_responses == 0
    assert [p.received for p in seen] == list(range(1, STUDY_SIZE + 1))
    assert [p.status for p in seen] == [None] * STUDY_SIZE
    assert sorted(p.sop_instance_uid for p in seen) == sorted(uids)
    assert result.received == STUDY_SIZE


# -- a PACS that answers Success before it sends the instances ---------------------------------


async def test_final_response_before_the_instances(tmp_path, samples, study):
    """The seed's quirk: "Some PACS sends a success response immediately and only then start
    another association". movescu keeps its receiver up for the instances counted."""
    from pacsbox.dimse import CMoveRQ, CMoveRSP
    from pacsbox.net.association import Association, RequestHandler
    from pacsbox.net.requestor import build_rq
    from pacsbox.net.server import Server, ServerConfig
    from pacsbox.services.storage_scu import scan, store_files
    from pacsbox.ul.negotiation import AcceptorPolicy

    uid, folder, uids = study
    recv = peers.free_port()
    infos, _ = scan(sorted(folder.iterdir()))
    stores: list[asyncio.Task] = []

    async def send_instances() -> None:
        rq = build_rq(
            calling_ae="QUIRKY", called_ae="ACME1",
            proposals=[(infos[0].sop_class_uid, ("1.2.840.10008.1.2.1",))],
        )  # fmt: skip
        async with await Association.connect("127.0.0.1", recv, rq) as sub:
            async for result in store_files(sub, infos):
                assert result.ok, result

    class AnswersFirst(RequestHandler):
        async def handle(self, assoc, context, request, dataset) -> None:
            await assoc.send(
                context.context_id,
                CMoveRSP(
                    message_id_being_responded_to=request.message_id,
                    status=0x0000,
                    affected_sop_class_uid=request.affected_sop_class_uid,
                    number_of_completed_suboperations=len(infos),
                    number_of_failed_suboperations=0,
                    number_of_warning_suboperations=0,
                ),
            )
            stores.append(asyncio.get_running_loop().create_task(send_instances()))

    move_class = "1.2.840.10008.5.1.4.1.2.2.2"
    config = ServerConfig(
        ae_title="QUIRKY",
        policy=AcceptorPolicy(abstract_syntaxes=frozenset({move_class})),
        handlers={CMoveRQ: AnswersFirst()},
    )
    out = tmp_path / "out"
    out.mkdir()
    async with Server(config) as server:
        await server.start("127.0.0.1", 0)
        proc = await asyncio.create_subprocess_exec(
            PACSBOX, "movescu", "-v", "-S", "-aec", "QUIRKY", "-aet", "ACME1", "-aem", "ACME1",
            "--port", str(recv), "--bind", "127.0.0.1", "-od", str(out),
            "127.0.0.1", str(server.port), "-k", "QueryRetrieveLevel=STUDY",
            "-k", f"StudyInstanceUID={uid}",
            stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await proc.communicate()
        await asyncio.gather(*stores)
    log = stderr.decode()
    assert proc.returncode == 0, log
    assert log.index("Received Final Move Response (Success)") < log.index("Received Store Request")
    assert sorted(received(out)) == sorted(f"CT.{u}" for u in uids)


# -- Ctrl-C: a C-CANCEL first, the association kept ---------------------------------------------


async def test_ctrl_c_cancels_the_move():
    """The first SIGINT sends a C-CANCEL-RQ and movescu ends with the PACS's Cancel status."""
    import signal

    from pacsbox.dimse import CMoveRQ, CMoveRSP
    from pacsbox.net.association import RequestHandler
    from pacsbox.net.server import Server, ServerConfig
    from pacsbox.ul.negotiation import AcceptorPolicy

    class PendingUntilCancelled(RequestHandler):
        async def handle(self, assoc, context, request, dataset) -> None:
            for status, remaining in ((0xFF00, 9), (0xFE00, 8)):
                await assoc.send(
                    context.context_id,
                    CMoveRSP(
                        message_id_being_responded_to=request.message_id,
                        status=status,
                        affected_sop_class_uid=request.affected_sop_class_uid,
                        number_of_remaining_suboperations=remaining,
                        number_of_completed_suboperations=1,
                        number_of_failed_suboperations=0,
                        number_of_warning_suboperations=0,
                    ),
                )
                if status == 0xFF00:
                    await assoc.operation(request.message_id).cancelled.wait()

    move_class = "1.2.840.10008.5.1.4.1.2.2.2"
    config = ServerConfig(
        ae_title="SLOW",
        policy=AcceptorPolicy(abstract_syntaxes=frozenset({move_class})),
        handlers={CMoveRQ: PendingUntilCancelled()},
    )
    async with Server(config) as server:
        await server.start("127.0.0.1", 0)
        proc = await asyncio.create_subprocess_exec(
            PACSBOX, "movescu", "-v", "-S", "-aec", "SLOW", "-aem", "ELSEWHERE",
            "127.0.0.1", str(server.port), "-k", "QueryRetrieveLevel=STUDY",
            "-k", "StudyInstanceUID=1.2.3",
            stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        lines = []
        for _ in range(1000):  # bounded: the line comes within the first few dozen
            line = (await proc.stderr.readline()).decode()
            lines.append(line)
            if not line or "Received Move Response 1 (Pending)" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest = (await proc.stderr.read()).decode()
        await proc.wait()
    log = "".join(lines) + rest
    assert proc.returncode == 130, log  # cut short: a script must not go on as if all came
    assert "Interrupted: cancelling the retrieve" in log
    assert "Sending Cancel Request (MsgID 1, PresID 1)" in log
    assert "Received Final Move Response (Cancel" in log
    assert "Releasing Association" in log


def test_port_in_use_says_what_to_do(tmp_path):
    """movescu --port on a port another server holds: one line, before anything is sent."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cp = run_pacsbox(
            "movescu", "-S", "-aem", "ME", "--port", port, "--bind", "127.0.0.1",
            "127.0.0.1", peers.free_port(), "-k", "QueryRetrieveLevel=STUDY",
        )  # fmt: skip
    assert cp.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in cp.stderr
    assert "leave out --port" in cp.stderr
    assert "Could not connect" not in cp.stderr  # it stopped before trying the PACS
