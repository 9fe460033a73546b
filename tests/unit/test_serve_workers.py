"""`pacsbox serve --workers`' parts that need no worker: the listening socket the parent
binds (and listens on once every worker is ready), MaxAssociations shared out, the restart
throttle and exit statuses in words. The processes themselves are
tests/e2e/test_serve_workers.py's."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time

import pytest

from pacsbox.cli import workers
from pacsbox.cli.workers import RESTART_BURST, RESTART_WINDOW, Supervisor, _Worker
from pacsbox.dimse import CEchoRQ
from pacsbox.log import log as pacsbox_log
from pacsbox.net.association import Association
from pacsbox.net.requestor import build_rq
from pacsbox.net.server import Server, ServerConfig
from pacsbox.services.verification import ECHO_PROPOSAL, VERIFICATION, VerificationSCP, echo
from pacsbox.ul.negotiation import AcceptorPolicy


def test_the_listening_socket_is_bound_before_any_worker():
    with workers.listening_socket("127.0.0.1", 0) as sock:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        with socket.create_connection((host, port), timeout=5):
            pass  # queued by the kernel, before anyone accepts
        with pytest.raises(OSError):  # the port is taken: serve says so and exits 1
            workers.listening_socket("127.0.0.1", port)


def test_the_port_opens_once_every_worker_is_ready(monkeypatch):
    """serve binds before it forks and listens when the last worker says it accepts: a
    client that waits for the port finds them all ready; the banner comes then, once, and
    each worker is told to wait on the socket from then on."""
    told = []  # the pids here are made up: no signal may reach a real process
    monkeypatch.setattr(workers.os, "kill", lambda pid, sig: told.append((pid, sig)))
    with workers.listening_socket("127.0.0.1", 0, listen=False) as sock:
        address = sock.getsockname()
        banners = []
        supervisor = Supervisor(2, sock, lambda *_: 0, on_listening=lambda: banners.append(1))
        supervisor.workers = {101: _Worker(1, 101, 0.0), 102: _Worker(2, 102, 0.0)}
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=5).close()
        assert supervisor._worker_ready(101)
        assert supervisor._worker_ready(999)  # no worker of ours: ignored
        assert supervisor._worker_ready(101)  # said twice: still one worker
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=5).close()
        assert banners == []
        assert told == []
        assert supervisor._worker_ready(102)
        assert banners == [1]
        assert sorted(told) == [(101, workers._LISTENING), (102, workers._LISTENING)]
        with socket.create_connection(address, timeout=5):
            pass  # queued by the kernel until a worker accepts it
        supervisor.workers[103] = _Worker(2, 103, 0.0)  # worker 2 died and was replaced
        assert supervisor._worker_ready(103)
        assert banners == [1]
        assert len(told) == 2  # a new worker finds the socket listening: no cue for it


async def test_a_worker_waits_on_the_socket_only_once_it_listens(caplog):
    """Bound but not listening, the socket reads as ready with nothing to accept, and
    accept() fails with EINVAL: a worker waited on it only after the parent's cue, never
    before (before, a slow parent meant "Cannot accept a connection: [Errno 22]" and that
    worker out of service for a second)."""
    config = ServerConfig(
        policy=AcceptorPolicy(abstract_syntaxes=frozenset({VERIFICATION})),
        handlers={CEchoRQ: VerificationSCP()},
    )
    with workers.listening_socket("127.0.0.1", 0, listen=False) as sock:
        async with Server(config) as server:
            with caplog.at_level(logging.DEBUG, logger=pacsbox_log.name):
                await server.start_on(sock)
                for _ in range(20):  # loop turns in which a readable socket would be seen
                    await asyncio.sleep(0)
                await asyncio.sleep(0.05)
                sock.listen(workers.LISTEN_BACKLOG)
                server.listening()
                assoc = await Association.connect(
                    "127.0.0.1",
                    sock.getsockname()[1],
                    build_rq(calling_ae="ECHOSCU", called_ae="PACSBOX", proposals=[ECHO_PROPOSAL]),
                )
                try:
                    assert await echo(assoc) == 0
                finally:
                    await assoc.release()
    assert "Cannot accept" not in caplog.text, caplog.text


def test_a_port_taken_between_bind_and_listen_stops_serve(caplog):
    """Two servers may both bind one port (SO_REUSEADDR) until one listens: the other says
    the port is taken, as when its bind fails, and stops."""
    with workers.listening_socket("127.0.0.1", 0, listen=False) as sock:
        host, port = sock.getsockname()
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            other.bind((host, port))
            other.listen()
            supervisor = Supervisor(1, sock, lambda *_: 0, on_listening=pytest.fail)
            supervisor.workers = {101: _Worker(1, 101, 0.0)}
            caplog.set_level(logging.INFO, logger=pacsbox_log.name)
            assert not supervisor._worker_ready(101)
    said = [r.getMessage() for r in caplog.records]
    assert said[-1].startswith(f"Cannot listen on 127.0.0.1:{port}: ")
    assert "Is another DICOM server using that port? Pick another port." in said[-1]


def test_workers_where_the_system_cannot_fork_and_wait_are_refused(tmp_path, monkeypatch, capsys):
    """macOS has no sigwaitinfo, Windows no fork: serve says what to run instead."""
    from pacsbox.cli import serve

    monkeypatch.delattr(signal, "sigwaitinfo")
    status = serve.main(["--workers", "2", "--port", "0", "--data", str(tmp_path / "data")])
    assert status == 1
    said = capsys.readouterr().err
    assert "--workers needs fork() and sigwaitinfo()" in said
    assert "Run one pacsbox serve without --workers" in said


@pytest.mark.parametrize(
    ("limit", "count", "each"), [(32, 1, 32), (32, 2, 16), (32, 3, 11), (1, 4, 1), (9, 4, 3)]
)
def test_max_associations_is_shared_out_rounded_up(limit, count, each):
    assert workers.per_worker(limit, count) == each


def test_a_crash_loop_is_throttled():
    supervisor = Supervisor(2, socket.socket(), lambda *_: 0)
    supervisor.sock.close()
    assert supervisor._restart_wait() is None  # nothing to restart
    supervisor._due.append(1)
    assert supervisor._restart_wait() == 0.0
    now = time.monotonic()
    supervisor._restarts.extend(now - 1 for _ in range(RESTART_BURST))
    wait = supervisor._restart_wait()
    assert RESTART_WINDOW - 2 < wait <= RESTART_WINDOW - 1
    supervisor._restarts[0] = now - RESTART_WINDOW  # the oldest leaves the window
    assert supervisor._restart_wait() == 0.0


def test_exit_statuses_in_words():
    assert workers._how(0) == "exited with status 0"
    assert workers._how(3 << 8) == "exited with status 3"
    assert workers._how(signal.SIGKILL) == "was killed by SIGKILL"
