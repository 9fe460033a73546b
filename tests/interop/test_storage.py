"""C-STORE both roles against DCMTK (storescp, storescu, dcmsend, dcmqrscp) and pynetdicom.

Test data: pydicom's bundled files plus a JPEG Lossless copy made with DCMTK's dcmcjpeg (see
tests/storage_data.py). "Byte-identical" compares the data set part of two Part 10 files,
found through their (0002,0000) group lengths; DCMTK's storescp keeps the received bytes
only with +B (--bit-preserving), and DCMTK's senders re-encode what they send, so files they
send are first normalised with DCMTK's dcmconv.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, JPEGLosslessSV1

from pacsbox.cli import storescp as storescp_cli
from pacsbox.dimse import CStoreRQ, encode_message
from pacsbox.net.association import Association
from pacsbox.net.requestor import build_rq
from pacsbox.net.server import Server, ServerConfig
from pacsbox.uids import IMPLEMENTATION_CLASS_UID
from tests import peers
from tests.pacsbox_cli import PACSBOX, run_pacsbox
from tests.storage_data import (
    COMPRESSED_SAMPLES,
    CT_IMAGE_STORAGE,
    UNCOMPRESSED_SAMPLES,
    Sample,
    build_samples,
    dataset_bytes,
    dcmtk_normalized,
    meta,
    original,
    pixels,
    save_file,
)

pytestmark = pytest.mark.interop

EXPLICIT = str(ExplicitVRLittleEndian)


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Sample]:
    return build_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="module")
def dcmtk_samples(samples, tmp_path_factory) -> dict[str, Sample]:
    """The samples as DCMTK's storescu and dcmsend put them on the wire."""
    directory = tmp_path_factory.mktemp("dcmtk-samples")
    return {name: dcmtk_normalized(s, directory) for name, s in samples.items()}


def stored_file(directory: Path, name: str) -> Path:
    path = directory / name
    assert path.is_file(), f"{name} not stored; {directory} holds {sorted(listing(directory))}"
    return path


def listing(directory: Path) -> list[str]:
    """Every entry of ``directory``, hidden ones (temp files) included, but for the empty
    spare temp file a running storescp keeps ready for the next instance (it holds no data)."""
    return sorted(
        p.name
        for p in directory.iterdir()
        if not (p.name.startswith(".incoming-") and p.stat().st_size == 0)
    )


def read_report(path: Path) -> dict[str, dict]:
    """--report's entries by file name stem."""
    entries = json.loads(path.read_text())
    return {Path(e["path"]).stem: e for e in entries}


def pacsbox_storescp(port: int, out: Path, *options: object) -> peers.PeerProcess:
    """`pacsbox storescp` as a user runs it, on 127.0.0.1:port, writing into ``out``."""
    argv = [PACSBOX, "storescp", "-v", "--host", "127.0.0.1", *options, "-od", out, port]
    return peers.PeerProcess(argv, port, name="pacsbox-storescp")


def in_process_storescp(*options: str) -> Server:
    """The `pacsbox storescp` server built from its own command line, in this event loop."""
    args = storescp_cli.parser().parse_args([*options, "0"])
    return Server(storescp_cli.server_config(args))


def assert_same_dataset(received: Path, sent: Path) -> None:
    got, want = dataset_bytes(received), dataset_bytes(sent)
    assert len(got) == len(want), f"{received.name}: {len(got)} bytes, sent {len(want)}"
    assert got == want, f"{received.name}: the data set differs from {sent.name}"


def wide_env() -> dict[str, str]:
    """A wide terminal for rich's tables, so no cell is wrapped."""
    return {**os.environ, "COLUMNS": "400"}


# -- 1. pacsbox storescu -> DCMTK storescp -----------------------------------------------------


def test_storescu_uncompressed_to_dcmtk_storescp_byte_identical(samples, tmp_path):
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    files = [samples[n] for n in UNCOMPRESSED_SAMPLES]
    with peers.DcmtkServer("storescp", ["+B", "-od", out], port):
        cp = run_pacsbox("storescu", "-v", "127.0.0.1", port, *(s.path for s in files))
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr.count("Received Store Response (Success)") == len(files), cp.stderr
    assert "Converting transfer syntax" not in cp.stderr
    for s in files:
        received = stored_file(out, s.stored_name)
        assert meta(received).TransferSyntaxUID == s.transfer_syntax
        assert_same_dataset(received, s.path)


# storescp option -> the compressed samples it takes in their own syntax (the others must be
# transcoded to Explicit VR Little Endian)
AS_IS = {
    "default": ((), ()),
    "+xs": (("+xs",), ("ct_jpeg_lossless",)),
    "+xv": (("+xv",), ("mr_j2k_lossless",)),
    "+xr": (("+xr",), ("mr_rle",)),
    "+xa": (("+xa",), COMPRESSED_SAMPLES),
}


@pytest.mark.parametrize("option", AS_IS)
def test_storescu_compressed_to_dcmtk_storescp(option, samples, tmp_path):
    options, as_is = AS_IS[option]
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    report = tmp_path / "report.json"
    files = [samples[n] for n in COMPRESSED_SAMPLES]
    with peers.DcmtkServer("storescp", [*options, "+B", "-od", out], port):
        cp = run_pacsbox(
            "storescu", "-v", "--report", report, "127.0.0.1", port, *(s.path for s in files)
        )
    assert cp.returncode == 0, cp.stderr
    entries = read_report(report)
    for s in files:
        entry = entries[s.path.stem]
        assert entry["result"] == "success", entry
        received = stored_file(out, s.stored_name)
        stored_syntax = meta(received).TransferSyntaxUID
        if s.name in as_is:
            assert entry["sent_as"] == s.transfer_syntax, entry
            assert stored_syntax == s.transfer_syntax
            assert_same_dataset(received, s.path)
        else:
            assert entry["sent_as"] == EXPLICIT, entry
            assert stored_syntax == EXPLICIT
            ds = pydicom.dcmread(received)
            assert ds.SOPInstanceUID == s.sop_instance_uid
            np.testing.assert_array_equal(ds.pixel_array, pixels(s.path))
    converted = len(files) - len(as_is)
    assert cp.stderr.count("Converting transfer syntax") == converted, cp.stderr


def test_storescu_jpeg_lossless_transcoded_decodes_to_the_original_pixels(samples, tmp_path):
    """Without +xs DCMTK's storescp takes only uncompressed syntaxes: the JPEG Lossless copy
    arrives as Explicit VR Little Endian with exactly the pixels of the uncompressed CT."""
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    jpeg = samples["ct_jpeg_lossless"]
    with peers.DcmtkServer("storescp", ["-od", out], port):
        cp = run_pacsbox("storescu", "-v", "127.0.0.1", port, jpeg.path)
    assert cp.returncode == 0, cp.stderr
    assert (
        "Converting transfer syntax: JPEG Lossless, Non-hierarchical, 1st Order Prediction "
        "-> Little Endian Explicit" in cp.stderr
    )
    received = pydicom.dcmread(stored_file(out, jpeg.stored_name))
    assert received.file_meta.TransferSyntaxUID == EXPLICIT
    np.testing.assert_array_equal(received.pixel_array, pixels(samples["ct"].path))
    assert received.get("LossyImageCompression", "00") == "00"  # lossless stays lossless


def test_storescu_lossy_j2k_transcoded_is_marked_lossy(samples, tmp_path):
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    j2k = samples["sc_j2k"]
    with peers.DcmtkServer("storescp", ["-od", out], port):
        cp = run_pacsbox("storescu", "127.0.0.1", port, j2k.path)
    assert cp.returncode == 0, cp.stderr
    received = pydicom.dcmread(stored_file(out, j2k.stored_name))
    assert received.file_meta.TransferSyntaxUID == EXPLICIT
    assert received.LossyImageCompression == "01"


def test_storescu_sends_the_data_sets_sop_instance_uid(tmp_path):
    """pydicom's rtplan.dcm names another instance in its meta than in its data set; DCMTK's
    storescu and storescp go by the data set, so must we (else: 0xA900 from storescp)."""
    rtplan = original("rtplan.dcm")
    in_dataset = pydicom.dcmread(rtplan).SOPInstanceUID
    assert meta(rtplan).MediaStorageSOPInstanceUID != in_dataset  # the premise
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    report = tmp_path / "report.json"
    with peers.DcmtkServer("storescp", ["-od", out], port):
        cp = run_pacsbox("storescu", "--report", report, "127.0.0.1", port, rtplan)
    assert cp.returncode == 0, cp.stderr
    assert listing(out) == [f"RP.{in_dataset}"]
    assert read_report(report)["rtplan"]["sop_instance_uid"] == in_dataset


# -- 2. pacsbox storescu -> pynetdicom ---------------------------------------------------------


def test_storescu_to_pynetdicom_every_file_in_its_own_syntax(samples, tmp_path):
    port = peers.free_port()
    received_dir = tmp_path / "received"
    report = tmp_path / "report.json"
    with peers.PynetdicomSCP(port, supported=("storage",), storage_dir=received_dir) as scp:
        cp = run_pacsbox(
            "storescu",
            "-aec",
            "PYNETDICOM",
            "--report",
            report,
            "127.0.0.1",
            port,
            *(s.path for s in samples.values()),
        )
        assert cp.returncode == 0, cp.stderr + scp.output()
    entries = read_report(report)
    assert len(entries) == len(samples)
    for s in samples.values():
        assert entries[s.path.stem]["sent_as"] == s.transfer_syntax
        received = stored_file(received_dir, f"{s.sop_instance_uid}.dcm")
        assert meta(received).TransferSyntaxUID == s.transfer_syntax
        assert_same_dataset(received, s.path)


# -- 3. DCMTK storescu / dcmsend -> pacsbox storescp -------------------------------------------


@pytest.mark.parametrize("tool", ["storescu", "dcmsend"])
def test_dcmtk_sender_to_pacsbox_storescp_uncompressed(tool, dcmtk_samples, tmp_path):
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    files = [dcmtk_samples[n] for n in UNCOMPRESSED_SAMPLES]
    with pacsbox_storescp(port, out) as server:
        cp = peers.run_dcmtk(
            tool, "-aet", "ACME1", "-aec", "ARCHIVE", "127.0.0.1", port, *(s.path for s in files)
        )
        assert cp.returncode == 0, cp.stdout + cp.stderr + server.output()
    assert listing(out) == sorted(s.stored_name for s in files)
    for s in files:
        received = stored_file(out, s.stored_name)
        m = meta(received)
        assert m.MediaStorageSOPClassUID == s.sop_class_uid
        assert m.MediaStorageSOPInstanceUID == s.sop_instance_uid
        assert m.TransferSyntaxUID == EXPLICIT
        assert m.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
        assert m.SourceApplicationEntityTitle == "ACME1"
        assert m.SendingApplicationEntityTitle == "ACME1"
        assert m.ReceivingApplicationEntityTitle == "ARCHIVE"
        assert_same_dataset(received, s.path)


def test_dcmtk_storescu_xs_to_pacsbox_storescp_xs_keeps_jpeg_lossless(dcmtk_samples, tmp_path):
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    jpeg = dcmtk_samples["ct_jpeg_lossless"]
    with pacsbox_storescp(port, out, "+xs") as server:
        cp = peers.run_dcmtk("storescu", "-xs", "-v", "127.0.0.1", port, jpeg.path)
        assert cp.returncode == 0, cp.stdout + cp.stderr + server.output()
    received = stored_file(out, jpeg.stored_name)
    assert meta(received).TransferSyntaxUID == JPEGLosslessSV1
    assert_same_dataset(received, jpeg.path)


def test_dcmsend_compressed_to_pacsbox_storescp_accept_all(dcmtk_samples, tmp_path):
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    files = [dcmtk_samples[n] for n in COMPRESSED_SAMPLES]
    with pacsbox_storescp(port, out, "+xa") as server:
        cp = peers.run_dcmtk("dcmsend", "127.0.0.1", port, *(s.path for s in files))
        assert cp.returncode == 0, cp.stdout + cp.stderr + server.output()
    for s in files:
        received = stored_file(out, s.stored_name)
        assert meta(received).TransferSyntaxUID == s.transfer_syntax
        assert_same_dataset(received, s.path)


def test_pacsbox_storescp_files_get_the_same_permissions_as_dcmtk_storescp(samples, tmp_path):
    ct = samples["ct"]
    modes = {}
    for receiver in ("dcmtk", "pacsbox"):
        port = peers.free_port()
        out = tmp_path / receiver
        out.mkdir()
        server = (
            peers.DcmtkServer("storescp", ["-od", out], port)
            if receiver == "dcmtk"
            else pacsbox_storescp(port, out)
        )
        with server:
            cp = peers.run_dcmtk("storescu", "127.0.0.1", port, ct.path)
            assert cp.returncode == 0, cp.stderr
        modes[receiver] = oct(stored_file(out, ct.stored_name).stat().st_mode & 0o777)
    assert modes["pacsbox"] == modes["dcmtk"]


# -- 4. pynetdicom SCU -> pacsbox storescp -----------------------------------------------------


def pynetdicom_store(port: int, files: list[Sample]) -> list[int]:
    """C-STORE each file with pynetdicom (from the file: its data set is sent as it is)."""
    from pynetdicom import AE

    ae = AE(ae_title="PYNETDICOM")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    for s in files:
        ae.add_requested_context(s.sop_class_uid, [s.transfer_syntax])
    assoc = ae.associate("127.0.0.1", port, ae_title="STORESCP")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(s.path).Status) for s in files]
    finally:
        assoc.release()


async def test_pynetdicom_scu_to_pacsbox_storescp(samples, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    files = list(samples.values())
    async with in_process_storescp("+xa", "-od", str(out)) as server:
        await server.start("127.0.0.1", 0)
        # pynetdicom blocks: a thread, while this loop serves it
        statuses = await asyncio.wait_for(
            asyncio.to_thread(pynetdicom_store, server.port, files), 60
        )
    assert statuses == [0] * len(files)
    assert listing(out) == sorted(s.stored_name for s in files)
    for s in files:
        received = stored_file(out, s.stored_name)
        m = meta(received)
        assert m.TransferSyntaxUID == s.transfer_syntax
        assert m.SourceApplicationEntityTitle == "PYNETDICOM"
        assert_same_dataset(received, s.path)


# -- 5. the tutorial's storescu commands against DCMTK's dcmqrscp ------------------------------


@pytest.fixture
def tutorial(samples, tmp_path):
    """The tutorial's working directory: ct.dcm, ct-compressed.dcm and dcmqrscp.cfg; yields
    a function starting dcmqrscp with extra options (a context manager)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "ct.dcm").write_bytes(samples["ct"].path.read_bytes())
    (work / "ct-compressed.dcm").write_bytes(samples["ct_jpeg_lossless"].path.read_bytes())
    port = peers.free_port()
    cfg = peers.tutorial_cfg(tmp_path, port)
    database = tmp_path / "database"

    def dcmqrscp(*options: str) -> peers.DcmtkServer:
        return peers.DcmtkServer("dcmqrscp", ["-c", cfg, *options], port, port_arg=False)

    return SimpleNamespace(work=work, port=port, database=database, dcmqrscp=dcmqrscp)


def run_in(work: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """`pacsbox ARGS` run in ``work``, as the tutorial's commands name files relative to it."""
    return subprocess.run(
        [PACSBOX, *map(str, args)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def dcmqrscp_stored(database: Path, sop_instance_uid: str) -> Path:
    """The file dcmqrscp stored for this instance (its names are its own)."""
    found = [
        p
        for p in database.iterdir()
        if p.is_file()
        and p.name != "index.dat"
        and pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID == sop_instance_uid
    ]
    assert len(found) == 1, f"{sop_instance_uid}: {listing(database)}"
    return found[0]


TUTORIAL_FAILURE = ("unable to convert dataset", "Store Failed", "0006:020e")


def assert_tutorial_success(cp: subprocess.CompletedProcess[str], server) -> None:
    assert cp.returncode == 0, cp.stderr + server.output()
    assert "Received Store Response (Success)" in cp.stderr
    for failure in TUTORIAL_FAILURE:
        assert failure not in cp.stderr


def test_tutorial_storescu_ct(tutorial, samples):
    with tutorial.dcmqrscp() as server:
        cp = run_in(
            tutorial.work, "storescu", "localhost", tutorial.port, "ct.dcm",
            "-aec", "ACME_STORE", "-aet", "ACME1", "-v",
        )  # fmt: skip
        assert_tutorial_success(cp, server)
    stored = dcmqrscp_stored(tutorial.database, samples["ct"].sop_instance_uid)
    assert meta(stored).TransferSyntaxUID == EXPLICIT


@pytest.mark.parametrize("server_options", [(), ("+xs",)], ids=["dcmqrscp", "dcmqrscp+xs"])
def test_tutorial_storescu_ct_compressed(server_options, tutorial, samples):
    """The tutorial's failing command works: transcoded for a plain dcmqrscp, sent as JPEG
    Lossless (the file's own syntax, which we always propose) to one with +xs."""
    with tutorial.dcmqrscp(*server_options) as server:
        cp = run_in(
            tutorial.work, "storescu", "localhost", tutorial.port, "ct-compressed.dcm",
            "-aec", "ACME_STORE", "-aet", "ACME1", "-v",
        )  # fmt: skip
        assert_tutorial_success(cp, server)
    stored = dcmqrscp_stored(tutorial.database, samples["ct_jpeg_lossless"].sop_instance_uid)
    if server_options:
        assert "Converting transfer syntax" not in cp.stderr
        assert meta(stored).TransferSyntaxUID == JPEGLosslessSV1
    else:
        assert "Converting transfer syntax" in cp.stderr
        assert meta(stored).TransferSyntaxUID == EXPLICIT
        np.testing.assert_array_equal(pixels(stored), pixels(samples["ct"].path))


@pytest.mark.parametrize("server_options", [(), ("+xs",)], ids=["dcmqrscp", "dcmqrscp+xs"])
def test_tutorial_storescu_required_propose_lossless(server_options, tutorial, samples):
    with tutorial.dcmqrscp(*server_options) as server:
        cp = run_in(
            tutorial.work, "storescu", "localhost", tutorial.port, "ct-compressed.dcm",
            "-aec", "ACME_STORE", "-aet", "ACME1", "-d", "--required", "--propose-lossless",
        )  # fmt: skip
        assert_tutorial_success(cp, server)
    assert "=JPEGLossless:Non-hierarchical-1stOrderPrediction" in cp.stderr  # proposed
    stored = dcmqrscp_stored(tutorial.database, samples["ct_jpeg_lossless"].sop_instance_uid)
    if server_options:
        assert (
            "Accepted Transfer Syntax: =JPEGLossless:Non-hierarchical-1stOrderPrediction"
            in cp.stderr
        )
        assert "Converting transfer syntax" not in cp.stderr
        assert meta(stored).TransferSyntaxUID == JPEGLosslessSV1
        # dcmqrscp re-encodes the data set (no trailing padding) but keeps the JPEG stream
        sent = pydicom.dcmread(samples["ct_jpeg_lossless"].path)
        assert pydicom.dcmread(stored).PixelData == sent.PixelData
    else:
        assert "Converting transfer syntax" in cp.stderr
        assert meta(stored).TransferSyntaxUID == EXPLICIT


# -- 6. storescp robustness --------------------------------------------------------------------


def store_rq(assoc: Association, s: Sample) -> CStoreRQ:
    return CStoreRQ(
        message_id=assoc.next_message_id(),
        affected_sop_class_uid=s.sop_class_uid,
        affected_sop_instance_uid=s.sop_instance_uid,
    )


async def connect_ct(port: int) -> Association:
    proposals = [(CT_IMAGE_STORAGE, [EXPLICIT])]
    rq = build_rq(calling_ae="ROBUST", called_ae="STORESCP", proposals=proposals)
    return await Association.connect("127.0.0.1", port, rq)


GARBAGE = {
    "random bytes": bytes(range(256)) * 4,
    "element overrunning the end": b"\x08\x00\x16\x00UI\xff\xff" + b"1.2" * 7,
}


@pytest.mark.parametrize("garbage", GARBAGE)
async def test_storescp_unparsable_data_set_fails_and_association_goes_on(
    garbage, samples, tmp_path
):
    ct = samples["ct"]
    async with in_process_storescp("-od", str(tmp_path)) as server:
        await server.start("127.0.0.1", 0)
        async with await connect_ct(server.port) as assoc:
            ctx = assoc.context_for(CT_IMAGE_STORAGE)
            rsp, _ = await assoc.request_one(ctx.context_id, store_rq(assoc, ct), GARBAGE[garbage])
            assert 0xC000 <= rsp.status <= 0xCFFF, hex(rsp.status)
            assert rsp.error_comment
            assert listing(tmp_path) == []
            rsp, _ = await assoc.request_one(
                ctx.context_id, store_rq(assoc, ct), dataset_bytes(ct.path)
            )
            assert rsp.status == 0x0000
    assert listing(tmp_path) == [ct.stored_name]
    assert_same_dataset(tmp_path / ct.stored_name, ct.path)


async def test_storescp_data_set_cut_short_in_pixel_data_is_not_stored(samples, tmp_path):
    ct = samples["ct"]
    whole = dataset_bytes(ct.path)
    async with in_process_storescp("-od", str(tmp_path)) as server:
        await server.start("127.0.0.1", 0)
        async with await connect_ct(server.port) as assoc:
            ctx = assoc.context_for(CT_IMAGE_STORAGE)
            rsp, _ = await assoc.request_one(
                ctx.context_id, store_rq(assoc, ct), whole[: len(whole) // 2]
            )
    stored = listing(tmp_path)
    failed = rsp.status & 0xF000 in (0xA000, 0xC000)
    assert failed and stored == [], f"status {rsp.status:#06x}, stored {stored}"


def without_pixels(path: Path, tmp_path: Path, overlay: int = 0) -> bytes:
    """The data set of ``path`` without Pixel Data (a data set whose end is that of its
    last header element), ``overlay`` bytes of Overlay Data last."""
    ds = pydicom.dcmread(path)
    for tag in [elem.tag for elem in ds if elem.tag >= 0x7FE00000]:  # trailing padding too
        del ds[tag]
    if overlay:
        ds.add_new(0x60003000, "OW", bytes(overlay))
    return dataset_bytes(save_file(ds, tmp_path / "no-pixels.dcm"))


@pytest.mark.parametrize("overlay", [0, 100_000], ids=["in-memory", "past-the-head"])
async def test_storescp_data_set_cut_short_in_its_last_element_is_not_stored(
    samples, tmp_path, overlay
):
    """Without Pixel Data to measure, a data set cut inside its last element (pydicom reads
    the value short without a word) is refused, and the stored copy of that SOP instance
    stays whole: within the 64 KiB kept in memory, and past them (walked in the file)."""
    ct = samples["ct"]
    whole = without_pixels(ct.path, tmp_path, overlay)
    out = tmp_path / "out"
    out.mkdir()
    # 16 KiB PDUs: the data set arrives in fragments, the head holds its first 64 KiB only
    async with in_process_storescp("-od", str(out), "--max-pdu", "16384") as server:
        await server.start("127.0.0.1", 0)
        async with await connect_ct(server.port) as assoc:
            ctx = assoc.context_for(CT_IMAGE_STORAGE)
            rsp, _ = await assoc.request_one(ctx.context_id, store_rq(assoc, ct), whole)
            assert rsp.status == 0x0000
            rsp, _ = await assoc.request_one(ctx.context_id, store_rq(assoc, ct), whole[:-5])
            assert 0xC000 <= rsp.status <= 0xCFFF, hex(rsp.status)
            assert "cut short" in rsp.error_comment
    assert listing(out) == [ct.stored_name]
    assert dataset_bytes(out / ct.stored_name) == whole


async def wait_until(condition, what: str, tries: int = 500) -> None:
    """Yield to the loop until ``condition()`` holds, at most ``tries`` times 10 ms."""
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.mark.parametrize("how", ["A-ABORT", "TCP close"])
async def test_storescp_peer_gone_mid_transfer_leaves_no_file(how, samples, tmp_path):
    ct = samples["ct"]
    data = dataset_bytes(ct.path)
    async with in_process_storescp("-pdu", "4096", "-od", str(tmp_path)) as server:
        await server.start("127.0.0.1", 0)
        assoc = await connect_ct(server.port)
        ctx = assoc.context_for(CT_IMAGE_STORAGE)
        pdus = list(encode_message(ctx.context_id, store_rq(assoc, ct), data, 4096))
        assert len(pdus) > 4
        for pdu in pdus[: len(pdus) // 2]:  # the command and some of the data set
            assoc._conn.send_pdata(pdu)
            assoc._transport.writelines(assoc._conn.data_to_send())
        # the SCP is receiving into its temp file
        await wait_until(
            lambda: any(p.name.startswith(".incoming-") for p in tmp_path.iterdir()),
            "the temp file",
        )
        if how == "A-ABORT":
            assoc.abort()
        else:
            assoc._transport.close()
        await assoc.wait_closed()
        await wait_until(lambda: not server.associations, "the SCP to end the association")
        assert listing(tmp_path) == []
        # and it serves the next association as usual
        async with await connect_ct(server.port) as again:
            rsp, _ = await again.request_one(
                again.context_for(CT_IMAGE_STORAGE).context_id, store_rq(again, ct), data
            )
        assert rsp.status == 0x0000
    assert listing(tmp_path) == [ct.stored_name]


# -- 7. pacsbox probe --------------------------------------------------------------------------


def test_probe_dcmtk_storescp_accept_all(tmp_path):
    port = peers.free_port()
    with peers.DcmtkServer("storescp", ["+xa", "-od", tmp_path], port):
        table = subprocess.run(
            [PACSBOX, "probe", "127.0.0.1", str(port)],
            capture_output=True, text=True, timeout=60, env=wide_env(), check=False,
        )  # fmt: skip
        as_json = run_pacsbox("probe", "--json", "127.0.0.1", port)
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if "│ CT Image Storage " in line]
    assert len(rows) == 1, table.stdout
    for name in (
        "LittleEndianExplicit",
        "LittleEndianImplicit",
        "JPEGLossless:Non-hierarchical-1stOrderPrediction",
        "JPEG2000LosslessOnly",
        "RLELossless",
    ):
        assert name in rows[0]
    assert as_json.returncode == 0, as_json.stderr
    accepted = json.loads(as_json.stdout)
    ct = accepted[CT_IMAGE_STORAGE]
    for uid in (EXPLICIT, "1.2.840.10008.1.2", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.5"):
        assert uid in ct


def test_probe_dcmtk_storescp_default_accepts_only_uncompressed(tmp_path):
    port = peers.free_port()
    with peers.DcmtkServer("storescp", ["-od", tmp_path], port):
        cp = run_pacsbox("probe", "--json", "127.0.0.1", port)
    assert cp.returncode == 0, cp.stderr
    assert set(json.loads(cp.stdout)[CT_IMAGE_STORAGE]) == {
        EXPLICIT,
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.2",
    }


# -- 8. storescu details -----------------------------------------------------------------------


def test_storescu_scans_directories_skips_non_dicom_and_reports(samples, tmp_path):
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "ct.dcm").write_bytes(samples["ct"].path.read_bytes())
    (tree / "a" / "mr.dcm").write_bytes(samples["mr"].path.read_bytes())
    (tree / "a" / "b" / "rtplan.dcm").write_bytes(samples["rtplan"].path.read_bytes())
    (tree / "a" / "notes.txt").write_text("not an image\n")
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    report = tmp_path / "report.json"
    with peers.DcmtkServer("storescp", ["-od", out], port):
        cp = run_pacsbox("storescu", "--report", report, "127.0.0.1", port, tree)
    assert cp.returncode == 0, cp.stderr
    assert listing(out) == sorted(samples[n].stored_name for n in UNCOMPRESSED_SAMPLES)
    skipped = [line for line in cp.stderr.splitlines() if "notes.txt" in line]
    assert len(skipped) == 1, cp.stderr
    assert "Skipping" in skipped[0] and "DICOM" in skipped[0]
    entries = read_report(report)
    assert sorted(entries) == ["ct", "mr", "notes", "rtplan"]
    assert entries["notes"]["result"] == "skipped"
    assert entries["notes"]["error"]
    for name in UNCOMPRESSED_SAMPLES:
        assert entries[name]["result"] == "success"
        assert entries[name]["status"] == "0x0000"


def test_storescu_no_recurse(samples, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "ct.dcm").write_bytes(samples["ct"].path.read_bytes())
    (tree / "sub" / "mr.dcm").write_bytes(samples["mr"].path.read_bytes())
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    with peers.DcmtkServer("storescp", ["-od", out], port):
        cp = run_pacsbox("storescu", "-r", "127.0.0.1", port, tree)
    assert cp.returncode == 0, cp.stderr
    assert listing(out) == [samples["ct"].stored_name]


def test_storescu_failing_file_gives_non_zero_exit(samples, tmp_path):
    """--no-transcode: the JPEG file cannot go to a storescp without +xs; the other one does."""
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    report = tmp_path / "report.json"
    ct, jpeg = samples["ct"], samples["ct_jpeg_lossless"]
    with peers.DcmtkServer("storescp", ["-od", out], port):
        cp = run_pacsbox(
            "storescu", "--no-transcode", "--report", report, "127.0.0.1", port, ct.path, jpeg.path
        )
    assert cp.returncode != 0
    assert listing(out) == [ct.stored_name]
    entries = read_report(report)
    assert entries["ct"]["result"] == "success"
    assert entries["ct_jpeg_lossless"]["result"] == "failed"
    assert "+xs" in entries["ct_jpeg_lossless"]["error"]  # says how to fix the peer


def test_storescu_failure_status_gives_non_zero_exit(samples, tmp_path):
    port = peers.free_port()
    report = tmp_path / "report.json"
    with peers.PynetdicomSCP(
        port, supported=("storage",), storage_dir=tmp_path / "in", extra_args=["--status", "0xA700"]
    ):
        cp = run_pacsbox("storescu", "--report", report, "127.0.0.1", port, samples["ct"].path)
    assert cp.returncode != 0
    entry = read_report(report)["ct"]
    assert entry["status"] == "0xA700"
    assert entry["result"] == "failed"
    assert "Received Store Response (0xA700 Failure: Refused: out of resources" in cp.stderr
    assert "storescu: 1 of 1 file(s) sent: 1 failed" in cp.stderr


def test_storescu_summary_tells_sent_from_not_sent_and_skipped(samples, tmp_path):
    """+sd over a folder with a CT, a DICOMDIR (no storage SOP class: read, never sent) and
    a text file (not DICOM): the summary counts each once, under what happened to it."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "ct.dcm").write_bytes(samples["ct"].path.read_bytes())
    (folder / "DICOMDIR").write_bytes(Path(get_testdata_file("DICOMDIR")).read_bytes())
    (folder / "README.txt").write_text("not DICOM\n")
    port = peers.free_port()
    with peers.PynetdicomSCP(port, supported=("storage",), storage_dir=tmp_path / "in"):
        cp = run_pacsbox("storescu", "+sd", "127.0.0.1", port, folder)
    summary = "storescu: 1 of 3 file(s) sent: 1 success; 1 could not be sent; 1 skipped (not DICOM)"
    assert summary in cp.stderr, cp.stderr


def test_storescu_refused_association_gives_non_zero_exit(samples, tmp_path):
    port = peers.free_port()
    with peers.DcmtkServer("storescp", ["--refuse", "-od", tmp_path], port):
        cp = run_pacsbox("storescu", "127.0.0.1", port, samples["ct"].path)
    assert cp.returncode != 0
    assert "Association Rejected" in cp.stderr
    assert listing(tmp_path) == []


async def test_storescp_survives_its_folder_being_cleaned_and_removed(samples, tmp_path):
    """Someone empties the output folder (spare temp file included), then removes it: the
    next C-STOREs still succeed, then fail with 0xA700 and a reason; nothing crashes."""
    import shutil

    ct = samples["ct"]
    data = dataset_bytes(ct.path)
    out = tmp_path / "out"
    out.mkdir()
    async with in_process_storescp("-od", str(out)) as server:
        await server.start("127.0.0.1", 0)
        async with await connect_ct(server.port) as assoc:
            context = assoc.context_for(CT_IMAGE_STORAGE).context_id
            rsp, _ = await assoc.request_one(context, store_rq(assoc, ct), data)
            assert rsp.status == 0x0000
            for entry in out.iterdir():  # the spare temp file goes too
                entry.unlink()
            rsp, _ = await assoc.request_one(context, store_rq(assoc, ct), data)
            assert rsp.status == 0x0000
            assert listing(out) == [ct.stored_name]
            shutil.rmtree(out)
            rsp, _ = await assoc.request_one(context, store_rq(assoc, ct), data)
            assert rsp.status == 0xA700
            assert "cannot" in rsp.error_comment


def test_storescu_splits_more_than_128_contexts_over_associations(tmp_path):
    """70 SOP classes in two syntaxes each need 210 contexts: storescu opens two
    associations, and the receiver gets every file."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

    from pacsbox.sopclasses import STORAGE_SOP_CLASSES

    source = tmp_path / "in"
    source.mkdir()
    classes = sorted(STORAGE_SOP_CLASSES)[:70]
    for n, sop_class in enumerate(classes):
        for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            ds = Dataset()
            ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
            ds.PatientName, ds.StudyInstanceUID = "MANY^CLASSES", generate_uid()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = syntax
            ds.file_meta.MediaStorageSOPClassUID = sop_class
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.save_as(source / f"{n}-{syntax.name[:8]}.dcm", enforce_file_format=True)
    out = tmp_path / "out"
    out.mkdir()
    port = peers.free_port()
    argv = [PACSBOX, "storescp", "--host", "127.0.0.1", "-od", out, port]
    with peers.PeerProcess(argv, port, name="pacsbox-storescp"):
        cp = run_pacsbox("storescu", "-v", "127.0.0.1", port, source)
    assert cp.returncode == 0, cp.stderr[-3000:]
    assert cp.stderr.count("Requesting Association") >= 2
    assert len(list(out.iterdir())) == 140


async def test_storage_scp_reports_each_stored_instance(samples, tmp_path):
    """StorageSCP(on_stored=...) calls back once per instance, before the response, with
    where it went and who sent it (what a receiver embedded in an application needs)."""
    from pacsbox.dimse import CEchoRQ, CStoreRQ
    from pacsbox.services.storage_scp import StorageSCP, storage_policy
    from pacsbox.services.verification import VerificationSCP
    from pacsbox.syntaxes import ARCHIVE_PREFERENCE

    got = []
    config = ServerConfig(
        policy=storage_policy(ARCHIVE_PREFERENCE),
        handlers={CEchoRQ: VerificationSCP(), CStoreRQ: StorageSCP(tmp_path, on_stored=got.append)},
    )
    ct = samples["ct"]
    async with Server(config) as server:
        await server.start("127.0.0.1", 0)
        async with await connect_ct(server.port) as assoc:
            context = assoc.context_for(CT_IMAGE_STORAGE).context_id
            rsp, _ = await assoc.request_one(context, store_rq(assoc, ct), dataset_bytes(ct.path))
            assert rsp.status == 0x0000
            assert len(got) == 1  # already reported when the response arrived
    (instance,) = got
    assert instance.path == tmp_path.resolve() / ct.stored_name
    assert instance.sop_instance_uid == ct.sop_instance_uid
    assert instance.calling_ae and instance.study_instance_uid
    assert instance.size == len(dataset_bytes(ct.path))
