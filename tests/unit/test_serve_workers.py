"""`pacsbox serve --workers`' parts that need no worker: the listening socket the parent
binds, MaxAssociations shared out, the restart throttle and exit statuses in words. The
processes themselves are tests/e2e/test_serve_workers.py's."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from pacsbox.cli import workers
from pacsbox.cli.workers import RESTART_BURST, RESTART_WINDOW, Supervisor


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
