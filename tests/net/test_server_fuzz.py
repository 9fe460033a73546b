"""Random and mutated PDUs against a running `pacsbox serve`: it answers with A-ABORT or closes
that connection, never dies, and keeps serving a well-behaved client meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacsbox.net.association import Association
from pacsbox.net.requestor import build_rq
from pacsbox.services.verification import ECHO_PROPOSAL, echo
from pacsbox.ul.pdu import (
    PDV,
    AAssociateRQ,
    PDataTF,
    PDUError,
    PDUReader,
    PresentationContextRQ,
    UserInformation,
    encode_pdu,
)
from tests import peers
from tests.pacsbox_cli import pacsbox_server

VALID_RQ = encode_pdu(
    AAssociateRQ(
        "PACSBOX",
        "FUZZER",
        [PresentationContextRQ(1, "1.2.840.10008.1.1", ["1.2.840.10008.1.2"])],
        UserInformation(max_length=16384, implementation_class_uid="1.2.3.4"),
    )
)
ANSWER_TYPES = {0x02, 0x03, 0x04, 0x06, 0x07}  # AC, RJ, P-DATA, RELEASE-RP, ABORT


@pytest.fixture(scope="module")
def server():
    port = peers.free_port()
    with pacsbox_server(port, "-ta", "5") as proc:
        yield port, proc


def exchange(port: int, payload: bytes) -> bytes:
    """Send payload, half-close, and read what the server says until it closes (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(OSError):  # the server may abort before reading it all
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        received = bytearray()
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    return bytes(received)


def assert_only_pdus(answer: bytes) -> None:
    reader = PDUReader()
    reader.feed(answer)
    try:
        types = [item[0] for item in iter(reader.next_raw, None)]
    except PDUError as exc:  # pragma: no cover - shows what the server sent
        raise AssertionError(f"server sent an invalid PDU: {answer[:64].hex()}") from exc
    assert set(types) <= ANSWER_TYPES, types


class EchoLoop(threading.Thread):
    """A well-behaved client echoing on fresh associations while the fuzzing goes on."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.errors: list[BaseException] = []

    def run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        for _ in range(100_000):  # bounded
            if self.stop.is_set():
                return
            try:
                rq = build_rq(calling_ae="GOOD", called_ae="PACSBOX", proposals=[ECHO_PROPOSAL])
                assoc = await Association.connect("127.0.0.1", self.port, rq)
                for _ in range(5):
                    assert await echo(assoc) == 0
                    self.ok += 1
                await assoc.release()
            except Exception as exc:
                self.errors.append(exc)
                return


def mutate(data: bytes, draw) -> bytes:
    raw = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return bytes(raw)


fuzz_settings = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def echo_loop(server):
    loop = EchoLoop(server[0])
    loop.start()
    yield loop
    loop.stop.set()
    loop.join(timeout=30)
    assert not loop.errors, loop.errors
    assert loop.ok > 0


@fuzz_settings
@given(payload=st.binary(min_size=1, max_size=600))
def test_random_bytes(server, echo_loop, payload):
    assert_only_pdus(exchange(server[0], payload))


@fuzz_settings
@given(data=st.data())
def test_mutated_associate_rq(server, echo_loop, data):
    assert_only_pdus(exchange(server[0], mutate(VALID_RQ, data.draw)))


@fuzz_settings
@given(
    pdata=st.lists(
        st.builds(PDV, st.integers(0, 255), st.booleans(), st.booleans(), st.binary(max_size=200)),
        min_size=1,
        max_size=4,
    ),
    tail=st.binary(max_size=64),
)
def test_garbage_after_a_valid_association(server, echo_loop, pdata, tail):
    answer = exchange(server[0], VALID_RQ + encode_pdu(PDataTF(pdata)) + tail)
    assert answer[0] == 0x02  # the association was accepted first
    assert_only_pdus(answer)


def test_server_survived(server, echo_loop):
    port, proc = server
    assert proc.running()
    cp = peers.run_dcmtk("echoscu", "-aec", "PACSBOX", "127.0.0.1", port)
    assert cp.returncode == 0, cp.stderr
