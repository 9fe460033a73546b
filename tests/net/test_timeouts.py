"""ACSE, DIMSE and ARTIM timeouts, and refused contexts, as the user sees them."""

from __future__ import annotations

import asyncio

import pytest

from pacsbox.dimse import CEchoRQ
from pacsbox.net.association import Association, NetworkError, Timeouts
from pacsbox.net.requestor import build_rq
from pacsbox.net.server import Server, ServerConfig
from pacsbox.services.verification import ECHO_PROPOSAL, VerificationSCP, echo
from pacsbox.ul.diagnosis import AssociationAbortedError, NoAcceptedContextError
from pacsbox.ul.negotiation import AcceptorPolicy
from pacsbox.ul.pdu import PDUReader, PDUType

CT = "1.2.840.10008.5.1.4.1.1.2"


async def silent_server() -> tuple[asyncio.AbstractServer, int, list]:
    """A TCP server that accepts and reads but never answers: no DICOM peer at all."""
    writers: list = []

    async def handle(reader, writer):
        writers.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], writers


async def test_acse_timeout_when_the_peer_never_answers_the_rq():
    server, port, _ = await silent_server()
    async with server:
        rq = build_rq(calling_ae="A", called_ae="B", proposals=[ECHO_PROPOSAL])
        with pytest.raises(NetworkError, match=r"did not answer the association request .*-ta"):
            await Association.connect("127.0.0.1", port, rq, timeouts=Timeouts(acse=0.5))


class SilentEcho(VerificationSCP):
    async def handle(self, assoc, context, request, dataset) -> None:
        return None  # never responds


async def test_dimse_timeout_aborts_and_says_so():
    config = ServerConfig(
        policy=AcceptorPolicy(frozenset({ECHO_PROPOSAL[0]})), handlers={CEchoRQ: SilentEcho()}
    )
    async with Server(config) as server:
        await server.start("127.0.0.1", 0)
        rq = build_rq(calling_ae="A", called_ae="B", proposals=[ECHO_PROPOSAL])
        assoc = await Association.connect(
            "127.0.0.1", server.port, rq, timeouts=Timeouts(dimse=0.5)
        )
        with pytest.raises(NetworkError, match=r"No DIMSE response within 0.5 s \(-td\)"):
            await echo(assoc)
        await asyncio.wait_for(assoc.wait_closed(), 10)


async def test_server_artim_closes_a_connection_that_sends_nothing():
    config = ServerConfig(timeouts=Timeouts(acse=0.3))
    async with Server(config) as server:
        await server.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        data = await asyncio.wait_for(reader.read(), 10)  # EOF when ARTIM fires
        assert data == b""
        writer.close()


async def test_no_accepted_context_lists_what_was_refused():
    config = ServerConfig(policy=AcceptorPolicy(frozenset({CT})))
    async with Server(config) as server:
        await server.start("127.0.0.1", 0)
        rq = build_rq(calling_ae="A", called_ae="B", proposals=[ECHO_PROPOSAL])
        with pytest.raises(NoAcceptedContextError) as info:
            await Association.connect("127.0.0.1", server.port, rq)
    message = str(info.value)
    assert "accepted none of the 1 proposed presentation contexts" in message
    assert "=VerificationSOPClass" in message and "Abstract Syntax Not Supported" in message


def test_echoscu_cli_reports_refused_context(tmp_path):
    """The same, through `pacsbox echoscu`, against a server that serves only CT storage."""

    # run the server in this process and the CLI as a subprocess
    async def with_cli() -> tuple[int, str]:
        from tests.pacsbox_cli import PACSBOX

        config = ServerConfig(policy=AcceptorPolicy(frozenset({CT})))
        async with Server(config) as server:
            await server.start("127.0.0.1", 0)
            proc = await asyncio.create_subprocess_exec(
                PACSBOX, "echoscu", "127.0.0.1", str(server.port),
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await asyncio.wait_for(proc.communicate(), 60)
            return proc.returncode, err.decode()

    rc, err = asyncio.run(with_cli())
    assert rc == 1
    assert "F: No Acceptable Presentation Contexts" in err
    assert "Abstract Syntax Not Supported" in err
    assert "F: Hint:" in err


async def test_a_peer_that_aborts_during_negotiation_is_reported():
    """A raw peer reads our RQ and answers with A-ABORT: the client names the abort."""

    async def handle(reader, writer):
        pdus = PDUReader()
        while (item := pdus.next_raw()) is None:
            pdus.feed(await reader.read(65536))
        assert item[0] == PDUType.A_ASSOCIATE_RQ
        writer.write(bytes.fromhex("07 00 00000004 0000 00 00"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        rq = build_rq(calling_ae="A", called_ae="B", proposals=[ECHO_PROPOSAL])
        with pytest.raises(AssociationAbortedError) as info:
            await Association.connect("127.0.0.1", port, rq, timeouts=Timeouts(acse=10))
    assert "abort" in str(info.value).lower()
