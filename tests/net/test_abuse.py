"""Protocol abuse against a running `pacsbox serve` (issue 9): out-of-order PDUs, a PDU
claiming 4 GB, a PDU larger than the negotiated maximum, P-DATA before an association,
bytes trickled slowly, half-open connections, an abort in the middle of a data set, 200
connection attempts at once. The server stays up, answers a well-behaved client during the
abuse, its memory stays bounded and no temp file of an aborted transfer remains."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from pathlib import Path

import pytest

from pacsbox.dimse import CStoreRQ
from pacsbox.dimse.messages import encode_command
from pacsbox.ul.pdu import (
    PDV,
    AAssociateRQ,
    PDataTF,
    PresentationContextRQ,
    UserInformation,
    encode_pdu,
)
from tests import peers
from tests.net.test_server_fuzz import VALID_RQ, EchoLoop, exchange
from tests.pacsbox_cli import pacsbox_server

CT = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    data = tmp_path_factory.mktemp("abuse")
    port = peers.free_port()
    with pacsbox_server(port, "-ta", "3", "--max-associations", "16", data=data) as proc:
        loop = EchoLoop(port)
        loop.start()
        yield port, proc, data, loop
        loop.stop.set()
        loop.join(timeout=60)
        assert not loop.errors, loop.errors
        assert loop.ok > 0


def rss_kb(proc) -> int:
    status = Path(f"/proc/{proc.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))


def last_pdu_type(answer: bytes) -> int | None:
    """The type of the last PDU the server sent before closing (None: it just closed)."""
    position, last = 0, None
    while position + 6 <= len(answer):
        last = answer[position]
        position += 6 + struct.unpack_from(">I", answer, position + 2)[0]
    return last


def test_a_pdu_claiming_4_gb(archive):
    port, proc, _, _ = archive
    before = rss_kb(proc)
    answer = exchange(port, VALID_RQ + struct.pack(">BxI", 4, 0xFFFFFFFF) + b"\0" * 1000)
    assert answer[0] == 0x02 and last_pdu_type(answer) == 0x07  # accepted, then A-ABORT
    assert rss_kb(proc) - before < 20_000  # nothing allocated for the claimed length


def test_a_pdu_larger_than_the_negotiated_maximum(archive):
    port, _, _, _ = archive
    big = encode_pdu(PDataTF([PDV(1, True, True, b"\0" * 300_000)]))  # serve takes 128 KiB
    answer = exchange(port, VALID_RQ + big)
    assert answer[0] == 0x02 and last_pdu_type(answer) == 0x07, answer[-10:]


def test_p_data_before_an_association_and_pdus_out_of_order(archive):
    port, _, _, _ = archive
    for payload in (
        encode_pdu(PDataTF([PDV(1, True, True, b"\0" * 10)])),  # P-DATA first
        bytes.fromhex("06000000000400000000"),  # A-RELEASE-RP nobody asked for
        VALID_RQ + VALID_RQ,  # a second A-ASSOCIATE-RQ on an established association
    ):
        assert last_pdu_type(exchange(port, payload)) in (None, 0x07), payload[:8]


def test_bytes_trickled_slowly_still_make_an_association(archive):
    port, _, _, _ = archive
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for i in range(0, len(VALID_RQ), 16):  # ~20 writes, 20 ms apart (under -ta 3)
            sock.sendall(VALID_RQ[i : i + 16])
            time.sleep(0.02)
        assert sock.recv(1)[0] == 0x02  # A-ASSOCIATE-AC


def test_half_open_connections_are_closed_and_do_not_block_others(archive):
    port, proc, _, loop = archive
    served = loop.ok
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(12)]
    try:
        for sock in sockets[:6]:
            sock.sendall(VALID_RQ[:20])  # half an A-ASSOCIATE-RQ, then nothing
        for _ in range(600):  # bounded: the echo client keeps being served meanwhile
            if loop.ok >= served + 10:
                break
            time.sleep(0.01)
        assert loop.ok >= served + 10
        for sock in sockets:  # ARTIM (-ta 3) closes them all
            sock.settimeout(30)
            with contextlib.suppress(ConnectionResetError):
                while sock.recv(4096):
                    pass
    finally:
        for sock in sockets:
            sock.close()
    assert proc.running()


def test_abort_in_the_middle_of_a_data_set_leaves_no_file(archive):
    port, _, data, _ = archive
    rq = encode_pdu(
        AAssociateRQ(
            "PACSBOX", "ABUSER", [PresentationContextRQ(1, CT, [IMPLICIT])],
            UserInformation(max_length=16384, implementation_class_uid="1.2.3.4"),
        )
    )  # fmt: skip
    command = encode_command(
        CStoreRQ(message_id=1, affected_sop_class_uid=CT, affected_sop_instance_uid="1.2.3.9")
    )
    half = encode_pdu(PDataTF([PDV(1, True, True, command)])) + encode_pdu(
        PDataTF([PDV(1, False, False, b"\x08\x00\x16\x00" + b"\0" * 5000)])
    )
    abort = bytes.fromhex("07000000000400000000")
    before = sorted(p.name for p in (data / "files").rglob("*"))
    answer = exchange(port, rq + half + abort)
    assert answer[0] == 0x02
    for _ in range(200):  # bounded: the server notices the abort and removes the temp file
        after = sorted(p.name for p in (data / "files").rglob("*"))
        if after == before:
            break
        time.sleep(0.01)
    assert after == before


def test_200_connection_attempts_at_once(tmp_path):
    """On its own server: 16 associations at most, the other attempts rejected (transient),
    the server answers an echo right after and its memory stays bounded."""
    port = peers.free_port()
    with pacsbox_server(port, "--max-associations", "16", data=tmp_path) as proc:
        storm(port, proc)


def storm(port: int, proc) -> None:
    before = rss_kb(proc)
    sockets = []
    try:
        for _ in range(200):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(VALID_RQ)
            sockets.append(sock)
        answers = [sock.recv(1) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    accepted = sum(1 for a in answers if a == b"\x02")
    rejected = sum(1 for a in answers if a == b"\x03")  # MaxAssociations: rejected, transient
    assert (accepted, rejected) == (16, 184)  # the first 16 held, the others refused
    cp = peers.run_dcmtk("echoscu", "-aec", "PACSBOX", "127.0.0.1", port)
    assert cp.returncode == 0, cp.stderr
    assert proc.running()
    assert rss_kb(proc) - before < 50_000
