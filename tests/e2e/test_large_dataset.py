"""A 1 GiB data set sent with `pacsbox storescu` to `pacsbox storescp`: memory stays flat.

Issue: "A 1 GB dataset received with peak RSS growth under 100 MB." The data set is a
Multi-frame Grayscale Word Secondary Capture image of 2048 frames of 512 x 512 16-bit pixels
(exactly 1 GiB of Pixel Data), built on disk without ever being held in memory: a small header
written with pydicom, then the (7FE0,0010) OW element header and its value in chunks.

Both tools run as a user runs them (subprocesses of the venv's `pacsbox`). Measured:

- receiver: VmHWM (peak RSS) of the storescp process after the transfer minus its VmHWM once
  it listens; must stay under 100 MB;
- sender: the storescu process's peak RSS (ru_maxrss from wait4 on it); must stay under
  300 MB (the aim is < 200 MB);
- the stored file holds the data set sent, byte for byte (same length, same SHA-256, hashed
  in chunks).

The two 1 GiB files are deleted at the end whatever happened (pytest keeps tmp_path dirs of
the last runs otherwise). No assertion on time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacsbox.dicomfile import read_file_info
from tests.pacsbox_cli import PACSBOX
from tests.peers import PeerProcess, free_port

pytestmark = pytest.mark.e2e

MULTIFRAME_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"
ROWS = COLUMNS = 512
FRAMES = 2048
PIXEL_BYTES = ROWS * COLUMNS * 2 * FRAMES  # 1 GiB
CHUNK = 8 << 20
MB = 1_000_000
RECEIVER_GROWTH_LIMIT = 100 * MB
SENDER_PEAK_LIMIT = 300 * MB
SEND_TIMEOUT = 300.0  # s, only so a hang cannot block the suite forever


@pytest.fixture
def big_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for the 1 GiB files, removed at teardown (pytest would keep tmp_path)."""
    directory = tmp_path / "large"
    directory.mkdir()
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def write_large_dicom(path: Path) -> None:
    """A valid 1 GiB multi-frame image; pixel data streamed in chunks, never in memory."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MULTIFRAME_WORD_SC
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MULTIFRAME_WORD_SC
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Large^Dataset"
    ds.PatientID = "LARGE-1GB"
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = FRAMES
    ds.Rows = ROWS
    ds.Columns = COLUMNS
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.save_as(path, enforce_file_format=True)  # everything before Pixel Data
    # a block of random bytes, varied per chunk so no two chunks are alike
    block = bytearray(os.urandom(CHUNK))
    with open(path, "ab") as f:
        # (7FE0,0010) OW, explicit VR little endian: tag, VR, 2 reserved bytes, 32-bit length
        f.write(struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OW", PIXEL_BYTES))
        for n in range(PIXEL_BYTES // CHUNK):
            block[:8] = n.to_bytes(8, "little")
            f.write(block)


def dataset_digest(path: Path, offset: int) -> tuple[int, str]:
    """Length and SHA-256 of the file's bytes from ``offset`` on, read in chunks."""
    digest = hashlib.sha256()
    length = 0
    with open(path, "rb") as f:
        f.seek(offset)
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            length += len(chunk)
    return length, digest.hexdigest()


def peak_rss(pid: int) -> int:
    """VmHWM of a running process, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def run_measured(argv: list[str], timeout: float) -> tuple[int, int, str]:
    """Run ``argv``; return its exit status, its own peak RSS in bytes (wait4) and output."""
    with open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            argv, stdin=devnull, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    # reaped with wait4 for this child's rusage; output is small (-q), read at the end
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    if proc.stdout:
        proc.stdout.close()
    return proc.returncode, usage.ru_maxrss * 1024, output  # ru_maxrss is in KiB on Linux


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and wait4 rusage")
def test_1gb_dataset_streams_through_with_flat_memory(big_dir: Path) -> None:
    t0 = time.perf_counter()
    source = big_dir / "large.dcm"
    write_large_dicom(source)
    info = read_file_info(source)
    assert info.dataset_length > PIXEL_BYTES
    sent_length, sent_hash = dataset_digest(source, info.dataset_offset)
    assert sent_length == info.dataset_length
    t_built = time.perf_counter()

    out = big_dir / "received"
    out.mkdir()
    port = free_port()
    argv = [PACSBOX, "storescp", "-q", "--host", "127.0.0.1", "-od", out, port]
    with PeerProcess(argv, port, name="pacsbox-storescp", log_dir=big_dir / "logs") as server:
        assert server.process is not None
        pid = server.process.pid
        baseline = peak_rss(pid)
        status, sender_peak, output = run_measured(
            [PACSBOX, "storescu", "-q", "127.0.0.1", str(port), str(source)], SEND_TIMEOUT
        )
        t_sent = time.perf_counter()
        assert server.running(), server.output()
        receiver_peak = peak_rss(pid)
    growth = receiver_peak - baseline

    stored = [p for p in out.iterdir()]
    assert len(stored) == 1, f"expected one stored file, found {[p.name for p in stored]}"
    received = read_file_info(stored[0])
    assert received.sop_instance_uid == info.sop_instance_uid
    received_length, received_hash = dataset_digest(stored[0], received.dataset_offset)
    t_checked = time.perf_counter()

    print(
        f"\n1 GiB data set: receiver VmHWM {baseline / MB:.1f} MB after start-up -> "
        f"{receiver_peak / MB:.1f} MB (growth {growth / MB:.1f} MB); sender peak RSS "
        f"{sender_peak / MB:.1f} MB; build+hash {t_built - t0:.1f} s, send "
        f"{t_sent - t_built:.1f} s, verify {t_checked - t_sent:.1f} s"
    )
    assert status == 0, f"pacsbox storescu exited with {status}:\n{output}"
    assert received_length == sent_length
    assert received_hash == sent_hash, "the stored data set differs from the one sent"
    assert growth < RECEIVER_GROWTH_LIMIT, (
        f"storescp's peak RSS grew by {growth / MB:.1f} MB while receiving 1 GiB "
        f"({baseline / MB:.1f} -> {receiver_peak / MB:.1f} MB); the data set must stream to disk"
    )
    assert sender_peak < SENDER_PEAK_LIMIT, (
        f"storescu's peak RSS was {sender_peak / MB:.1f} MB for a 1 GiB file; it must stream "
        "the file instead of reading it whole"
    )
