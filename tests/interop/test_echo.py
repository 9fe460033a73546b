"""C-ECHO both roles against the real DCMTK and pynetdicom, and the diagnosis of rejections."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pacsbox.dimse import CEchoRQ
from pacsbox.net.association import Association
from pacsbox.net.requestor import build_rq
from pacsbox.net.server import Server, ServerConfig
from pacsbox.services.verification import ECHO_PROPOSAL, VERIFICATION, VerificationSCP, echo
from pacsbox.ul.diagnosis import AssociationRejectedError
from pacsbox.ul.negotiation import AcceptorPolicy
from tests import peers
from tests.pacsbox_cli import pacsbox_server, run_pacsbox

pytestmark = pytest.mark.interop


def verification_server(**overrides) -> Server:
    config = ServerConfig(
        ae_title="PACSBOX",
        policy=AcceptorPolicy(abstract_syntaxes=frozenset({VERIFICATION})),
        handlers={CEchoRQ: VerificationSCP()},
        **overrides,
    )
    return Server(config)


async def run_tool(*argv: str) -> tuple[int, str]:
    """A DCMTK tool as a subprocess of the running loop (our server keeps serving meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=peers.dcmtk_env(),
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode()


# -- DCMTK echoscu -> pacsbox ------------------------------------------------------------------


async def test_dcmtk_echoscu_to_pacsbox_scp():
    echoscu = peers.require("echoscu")
    async with verification_server() as server:
        await server.start("127.0.0.1", 0)
        rc, out = await run_tool(echoscu, "-v", "--repeat", "3", "127.0.0.1", str(server.port))
    assert rc == 0, out
    assert out.count("Received Echo Response (Success)") == 3


async def test_dcmtk_echoscu_debug_shows_our_implementation():
    echoscu = peers.require("echoscu")
    async with verification_server() as server:
        await server.start("127.0.0.1", 0)
        rc, out = await run_tool(echoscu, "-d", "127.0.0.1", str(server.port))
    assert rc == 0, out
    assert "Their Implementation Version Name: PACSBOX_010" in out
    assert "Accepted Transfer Syntax: =LittleEndianImplicit" in out


async def test_dcmtk_echoscu_wrong_called_ae_is_rejected_with_the_reason():
    echoscu = peers.require("echoscu")
    async with verification_server(require_called_ae=True) as server:
        await server.start("127.0.0.1", 0)
        rc, out = await run_tool(echoscu, "-aec", "NOT-US", "127.0.0.1", str(server.port))
        assert rc != 0
        assert "Called AE Title Not Recognized" in out
        rc, out = await run_tool(echoscu, "-aec", "PACSBOX", "127.0.0.1", str(server.port))
        assert rc == 0, out


async def test_dcmtk_echoscu_unknown_calling_ae_is_rejected_with_the_right_reason():
    echoscu = peers.require("echoscu")
    async with verification_server(calling_ae_titles=frozenset({"ACME1"})) as server:
        await server.start("127.0.0.1", 0)
        rc, out = await run_tool(echoscu, "-aet", "STRANGER", "127.0.0.1", str(server.port))
        assert rc != 0
        # unlike dcmqrscp, which says "Called AE Title Not Recognized" here
        assert "Calling AE Title Not Recognized" in out
        rc, out = await run_tool(echoscu, "-aet", "ACME1", "127.0.0.1", str(server.port))
        assert rc == 0, out


async def test_max_associations_rejects_transient_local_limit():
    async with verification_server(max_associations=2) as server:
        await server.start("127.0.0.1", 0)
        rq = lambda: build_rq(calling_ae="A", called_ae="B", proposals=[ECHO_PROPOSAL])  # noqa: E731
        held = [await Association.connect("127.0.0.1", server.port, rq()) for _ in range(2)]
        with pytest.raises(AssociationRejectedError) as info:
            await Association.connect("127.0.0.1", server.port, rq())
        assert info.value.transient
        assert "Local Limit Exceeded" in str(info.value)
        for assoc in held:
            assert await echo(assoc) == 0
            await assoc.release()
        # the slots are free again
        assoc = await Association.connect("127.0.0.1", server.port, rq())
        assert await echo(assoc) == 0
        await assoc.release()


# -- pynetdicom -> pacsbox ---------------------------------------------------------------------


async def test_pynetdicom_echo_to_pacsbox_scp():
    from pynetdicom import AE

    async with verification_server() as server:
        await server.start("127.0.0.1", 0)
        port = server.port

        def pynetdicom_echo() -> int:
            ae = AE(ae_title="PYNETDICOM")
            ae.add_requested_context(VERIFICATION)
            assoc = ae.associate("127.0.0.1", port, ae_title="PACSBOX")
            assert assoc.is_established
            status = assoc.send_c_echo()
            assoc.release()
            return status.Status

        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(pynetdicom_echo()))
        thread.start()
        while thread.is_alive():  # keep our loop serving while pynetdicom blocks
            await asyncio.sleep(0.01)
        thread.join()
    assert result == [0]


# -- pacsbox echoscu -> DCMTK storescp, pynetdicom -----------------------------------------------


def test_pacsbox_echoscu_to_dcmtk_storescp(tmp_path):
    port = peers.free_port()
    with peers.DcmtkServer("storescp", ["-od", str(tmp_path)], port):
        cp = run_pacsbox("echoscu", "-v", "--repeat", "2", "127.0.0.1", port)
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr.count("Received Echo Response (Success)") == 2
    assert "Releasing Association" in cp.stderr


def test_pacsbox_echoscu_debug_dump_shows_dcmtk_peer(tmp_path):
    port = peers.free_port()
    with peers.DcmtkServer("storescp", ["-od", str(tmp_path)], port):
        cp = run_pacsbox("echoscu", "-d", "127.0.0.1", port)
    assert cp.returncode == 0, cp.stderr
    out = cp.stderr
    assert "====================== BEGIN A-ASSOCIATE-RQ =====================" in out
    assert "D: Our Implementation Version Name:   PACSBOX_010" in out
    assert "Their Implementation Version Name: OFFIS_DCMTK_367" in out
    assert "(Accepted)" in out and "Accepted Transfer Syntax: =LittleEndianImplicit" in out


def test_pacsbox_echoscu_to_pynetdicom_scp():
    port = peers.free_port()
    with peers.PynetdicomSCP(port):
        cp = run_pacsbox("echoscu", "-v", "-aec", "PYNETDICOM", "127.0.0.1", port)
    assert cp.returncode == 0, cp.stderr
    assert "Received Echo Response (Success)" in cp.stderr


def test_pacsbox_echoscu_against_nothing_says_what_to_check():
    cp = run_pacsbox("echoscu", "127.0.0.1", peers.free_port())
    assert cp.returncode == 1
    assert "Connection refused" in cp.stderr
    assert "Check host and port" in cp.stderr


# -- the tutorial's rejections, against DCMTK's dcmqrscp ----------------------------------------


@pytest.fixture
def dcmqrscp(tmp_path):
    port = peers.free_port()
    cfg = peers.tutorial_cfg(tmp_path, port)
    with peers.DcmtkServer("dcmqrscp", ["-c", str(cfg)], port, port_arg=False):
        yield port


def test_tutorial_echo_without_called_ae_is_rejected_with_a_hint(dcmqrscp):
    cp = run_pacsbox("echoscu", "-v", "localhost", dcmqrscp)
    assert cp.returncode == 1
    assert "F: Association Rejected:" in cp.stderr
    assert "Result: Rejected Permanent, Source: Service User" in cp.stderr
    assert "Reason: Called AE Title Not Recognized" in cp.stderr
    assert "-aec" in cp.stderr and "'ANY-SCP'" in cp.stderr


def test_tutorial_echo_with_wrong_calling_ae_hints_at_aet(dcmqrscp):
    cp = run_pacsbox("echoscu", "-aec", "ACME_STORE", "localhost", dcmqrscp)
    assert cp.returncode == 1
    # dcmqrscp answers an unknown calling AE with the *called* reason; the hint says so
    assert "Called AE Title Not Recognized" in cp.stderr
    assert "-aet" in cp.stderr and "'ECHOSCU'" in cp.stderr


def test_tutorial_echo_with_both_titles_succeeds(dcmqrscp):
    cp = run_pacsbox("echoscu", "-v", "-aec", "ACME_STORE", "-aet", "ACME1", "localhost", dcmqrscp)
    assert cp.returncode == 0, cp.stderr
    assert "Received Echo Response (Success)" in cp.stderr


# -- pacsbox serve as a user runs it -----------------------------------------------------------


def test_pacsbox_serve_answers_dcmtk_echoscu():
    port = peers.free_port()
    with pacsbox_server(port) as server:
        cp = peers.run_dcmtk("echoscu", "-v", "-aec", "PACSBOX", "127.0.0.1", port)
        assert cp.returncode == 0, cp.stderr + server.output()
    assert "pacsbox echoscu -aec PACSBOX localhost" in server.stdout()
    assert 'Association Received 127.0.0.1: "ECHOSCU -> PACSBOX"' in server.stderr()
