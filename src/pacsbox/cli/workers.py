"""`pacsbox serve --workers N`: N worker processes accepting on one listening socket, and the
parent that binds it, starts them, restarts one that dies and stops them all.

Why processes: one event loop runs on one CPU, and a C-STORE costs Python work (PDU parsing,
the header read, the index transaction). Several senders at once gain nothing from one loop;
N loops in N processes use N CPUs. Each worker opens its own Index (its own engine and
connections): SQLite's writers queue on the Index's lock file, PostgreSQL's on row locks, as
for several `pacsbox serve` processes sharing one index (docs/archive.md).

Why one shared socket, not SO_REUSEPORT: the kernel hashes each connection to one of the
SO_REUSEPORT sockets whatever that process is doing, so two of four senders may well land on
one worker while another idles. With one socket every worker's loop may wait on it. Which of
the waiting workers accepts is still the kernel's race (four senders at once ended 3 + 1 as
often as 2 + 2), so the workers share their load (LoadShare): each publishes its number of
open connections in memory the parent shares with them, and only the least loaded ones wait
on the socket. A worker whose count changes tells the others through their pipes, and each
then stops or starts waiting on the socket: nothing polls, and the one that is least loaded
always waits, so a connection is never left in the queue.

Why fork: the parent forks before it has an event loop, a thread or an open database
connection (it opens the index once, to create or upgrade the schema and to fail early with
the reason, and closes it again), so a worker starts from a clean copy with pacsbox and
pydicom already imported, and inherits the listening socket as it is. spawn would re-import
everything in every worker and need the socket passed by descriptor, for nothing in return.

The port opens when the workers are ready: the parent binds the socket before it forks (a
port in use stops serve at once, with the reason) but listens only once every worker has
said, with a queued real-time signal, that it is set to accept on it; then it tells each
worker, with another, to start waiting on the socket (before, a socket that does not listen
reads as ready with nothing to accept, and accept() fails). A connection made meanwhile is
refused rather than left in the queue with no process to take it, and a client that waits
for the port (a health check, a benchmark) finds every worker ready; connections that came
before the last worker started would all have gone to the first.

The parent does no DICOM work. It waits for signals with sigwaitinfo (no polling): SIGCHLD
(a worker exited: logged with its exit status or signal, restarted, at most
RESTART_BURST times per RESTART_WINDOW so a crash loop does not spin), SIGTERM and SIGINT
(forwarded to the workers, which finish as a single server does; those not gone after
STOP_TIMEOUT are killed). A worker notices its parent's death through a pipe: the parent
holds the only write end, and when it goes the worker's loop reads end of file and stops.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import mmap
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from ..log import log
from ..net.server import LISTEN_BACKLOG

RESTART_BURST = 5  # restarts allowed in a row ...
RESTART_WINDOW = 60.0  # ... within this many seconds; more wait until the window allows
STOP_TIMEOUT = 10.0  # seconds for the workers to close their associations on SIGTERM

# A worker tells its parent it accepts on the socket. Real-time: each one is queued (two
# workers ready at once would be one SIGUSR1), with the sender's pid.
_READY = signal.SIGRTMIN
_LISTENING = signal.SIGRTMIN + 1  # parent -> workers: the socket listens now
_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, _READY}

# What a worker runs, in the child, with what its parent gave it -> its exit status
WorkerMain = Callable[["Worker"], int]
_GONE = 2**31 - 1  # the load of a worker that is not running: never the least


def listening_socket(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """A TCP socket bound to host:port and listening, as asyncio's create_server makes it
    (SO_REUSEADDR, and TCP_NODELAY, which accepted sockets inherit). For a host name with
    several addresses, the first IPv4 one: one socket is what the workers share. "::"
    accepts IPv4 too (dual stack). ``listen=False``: bound only (the Supervisor listens
    once its workers are ready)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = min(infos, key=lambda i: i[0] != socket.AF_INET)
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        if listen:
            sock.listen(LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def per_worker(max_associations: int, workers: int) -> int:
    """Each worker's MaxAssociations: the limit shared out, rounded up (a worker cannot know
    how many associations the others have open)."""
    return -(-max_associations // workers)


class LoadShare:
    """Each worker's open connections, in shared memory, and a pipe per worker that says
    "a count changed, look again". Made by the parent before it forks."""

    def __init__(self, count: int) -> None:
        self._memory = mmap.mmap(-1, 4 * count)  # MAP_SHARED: the forked workers see it
        self.counts = memoryview(self._memory).cast("i")
        self.pipes = [os.pipe() for _ in range(count)]
        for read, write in self.pipes:
            os.set_blocking(read, False)
            os.set_blocking(write, False)  # a full pipe has a wake-up pending anyway
        for number in range(count):
            self.counts[number] = _GONE
        self._me = -1
        self._server = None

    def set(self, number: int, load: int) -> None:
        """Worker ``number`` (from 1) has ``load`` connections open; tell the others."""
        self.counts[number - 1] = load
        for other, (_, write) in enumerate(self.pipes):
            if other != number - 1:
                with contextlib.suppress(BlockingIOError):
                    os.write(write, b"!")

    # -- in the worker ---------------------------------------------------------------------

    def attach(self, number: int, server, loop: asyncio.AbstractEventLoop) -> None:
        """Let ``server`` accept only while this worker is among the least loaded."""
        self._me, self._server = number - 1, server
        loop.add_reader(self.pipes[self._me][0], self._woken)
        server.accepting(False)
        self.set(number, 0)
        self._look()

    def changed(self, load: int) -> None:
        self.set(self._me + 1, load)
        self._look()

    def _woken(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.pipes[self._me][0], 4096)
        self._look()

    def _look(self) -> None:
        self._server.accepting(self.counts[self._me] <= min(self.counts))


@dataclass(slots=True)
class Worker:
    """What a worker process gets from its parent: its number (1..N, kept by the worker
    that replaces it), the listening socket, the read end of the pipe that says the parent
    is gone, the load share, and the parent's pid (told when this worker accepts; 0: no
    one to tell)."""

    number: int
    sock: socket.socket
    parent_pipe: int
    load: LoadShare
    parent: int = 0
    _leaving: asyncio.Task | None = None

    async def listen(self, server, stop: asyncio.Event) -> None:
        """serve_until_stopped's start: accept on the shared socket, while among the least
        loaded; stop when the parent is gone."""
        loop = asyncio.get_running_loop()
        # the parent's cue that the socket listens (it listens once every worker is ready),
        # set before start_on looks whether it listens already: no cue can fall in between
        loop.add_signal_handler(_LISTENING, server.listening)
        await server.start_on(self.sock, on_connections=self.load.changed)
        self.load.attach(self.number, server, loop)
        loop.add_reader(self.parent_pipe, self._parent_gone, loop, stop)
        self._leaving = loop.create_task(self._leave(stop))
        if self.parent and os.getppid() == self.parent:  # else it is gone: _parent_gone stops us
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.parent, _READY)

    async def _leave(self, stop: asyncio.Event) -> None:
        """Stopping, this worker takes no more connections: the others must not wait for
        it to (its count would look the least)."""
        await stop.wait()
        self.load.set(self.number, _GONE)

    def _parent_gone(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        """The parent never writes to the pipe: readable means end of file, the parent
        exited or was killed. Without it this worker would serve on, unsupervised."""
        loop.remove_reader(self.parent_pipe)
        log.warning("The supervising pacsbox serve process is gone: stopping this worker")
        stop.set()


@dataclass(slots=True)
class _Worker:
    number: int  # 1..N, kept by the worker that replaces it
    pid: int
    started: float


class Supervisor:
    """Starts ``count`` workers on ``sock`` and keeps them running until SIGTERM/SIGINT.
    A ``sock`` bound but not listening is listened on once every worker is ready; then
    ``on_listening()`` runs (serve's banner)."""

    def __init__(
        self,
        count: int,
        sock: socket.socket,
        main: WorkerMain,
        on_listening: Callable[[], None] | None = None,
    ) -> None:
        self.count = count
        self.sock = sock
        self.main = main
        self.on_listening = on_listening
        self._ready: set[int] = set()  # numbers of the workers that said they accept
        self.workers: dict[int, _Worker] = {}  # by pid
        self._restarts: collections.deque[float] = collections.deque()
        self._due: list[int] = []  # worker numbers waiting for their restart
        self._mask: set[signal.Signals] = set()
        self._pipe_read, self._pipe_write = -1, -1
        self._pid = 0
        self.load = LoadShare(count)

    def run(self) -> int:
        """Start the workers, supervise them; 0 once stopped by SIGTERM or SIGINT, 1 when
        the port could not be listened on once they were ready."""
        # Blocked, these signals wait for sigwaitinfo; a blocked SIGCHLD is kept pending too.
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        self._pid = os.getpid()
        self._pipe_read, self._pipe_write = os.pipe()
        try:
            for number in range(1, self.count + 1):
                self._start(number)
            while True:
                wait = self._restart_wait()
                if wait is None:
                    info = signal.sigwaitinfo(_SIGNALS)
                else:
                    info = signal.sigtimedwait(_SIGNALS, wait)
                if info is None:  # a restart is due
                    self._restart_due()
                elif info.si_signo == signal.SIGCHLD:
                    self._reap(stopping=False)
                    self._restart_due()
                elif info.si_signo == _READY:
                    if not self._worker_ready(info.si_pid):
                        self._stop()
                        return 1
                else:
                    log.info("%s: stopping the workers", signal.Signals(info.si_signo).name)
                    self._stop()
                    return 0
        finally:
            for pid in self.workers:  # only after an exception in the loop above
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            os.close(self._pipe_write)  # the workers' cue, should any be left
            os.close(self._pipe_read)
            # a second SIGTERM or Ctrl-C during the stop is answered already: unblocked, it
            # would kill us (or raise KeyboardInterrupt) after a clean stop
            while signal.sigtimedwait(_SIGNALS, 0) is not None:
                pass
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)

    # -- workers ----------------------------------------------------------------------------

    def _worker_ready(self, pid: int) -> bool:
        """A worker accepts on the socket: once all have, listen. False when that fails."""
        worker = self.workers.get(pid)
        if worker is None or len(self._ready) == self.count:
            return True
        self._ready.add(worker.number)
        if len(self._ready) < self.count:
            return True
        if not self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            try:
                self.sock.listen(LISTEN_BACKLOG)
            except OSError as exc:  # another server bound the port too, and listened first
                host, port = self.sock.getsockname()[:2]
                log.critical(
                    "Cannot listen on %s:%d: %s. Is another DICOM server using that port? "
                    "Pick another port.", host, port, exc.strerror or exc,
                )  # fmt: skip
                return False
            for pid in self.workers:  # they wait on the socket from now on
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, _LISTENING)
        log.info("All %d workers are ready", self.count)
        if self.on_listening is not None:
            self.on_listening()
        return True

    def _start(self, number: int) -> None:
        sys.stdout.flush()  # or the child flushes the parent's buffered output a second time
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(number)  # never returns
        self.workers[pid] = _Worker(number, pid, time.monotonic())
        log.info("Worker %d started (pid %d)", number, pid)

    def _child(self, number: int) -> None:
        status = 1
        try:
            # a cue before Worker.listen sets its handler finds the socket listening there;
            # it must not kill us meanwhile (a real-time signal's default action)
            signal.signal(_LISTENING, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            os.close(self._pipe_write)  # the parent's alone: its exit is our end of file
            status = self.main(Worker(number, self.sock, self._pipe_read, self.load, self._pid))
        except KeyboardInterrupt:
            status = 130
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(status)  # never the parent's cleanup: its finally blocks, atexit

    def _reap(self, *, stopping: bool) -> None:
        """Collect every worker that exited (SIGCHLDs coalesce: one may stand for several)."""
        while self.workers:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self.load.set(worker.number, _GONE)  # its connections went with it
            if stopping:
                log.info("Worker %d (pid %d) %s", worker.number, pid, _how(status))
                continue
            ran = time.monotonic() - worker.started
            log.error(
                "Worker %d (pid %d) %s after %.1f s; starting another in its place",
                worker.number, pid, _how(status), ran,
            )  # fmt: skip
            self._due.append(worker.number)

    def _restart_wait(self) -> float | None:
        """Seconds until the next restart may run; None when none is waiting."""
        if not self._due:
            return None
        now = time.monotonic()
        while self._restarts and now - self._restarts[0] >= RESTART_WINDOW:
            self._restarts.popleft()
        if len(self._restarts) < RESTART_BURST:
            return 0.0
        return self._restarts[0] + RESTART_WINDOW - now

    def _restart_due(self) -> None:
        while self._due:
            wait = self._restart_wait()
            if wait:
                log.warning(
                    "Workers died %d times in %.0f s: the next restart waits %.0f s",
                    len(self._restarts), RESTART_WINDOW, wait,
                )  # fmt: skip
                return
            self._restarts.append(time.monotonic())
            self._start(self._due.pop(0))

    def _stop(self) -> None:
        """SIGTERM to every worker, then wait for them (SIGKILL after STOP_TIMEOUT)."""
        self._due.clear()
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        self._reap(stopping=True)
        while self.workers:
            left = deadline - time.monotonic()
            if left <= 0 or signal.sigtimedwait({signal.SIGCHLD}, left) is None:
                break
            self._reap(stopping=True)
        for worker in self.workers.values():
            log.warning(
                "Worker %d (pid %d) still runs %.0f s after SIGTERM: killing it",
                worker.number, worker.pid, STOP_TIMEOUT,
            )  # fmt: skip
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
        for pid in list(self.workers):
            os.waitpid(pid, 0)
            del self.workers[pid]


def _how(status: int) -> str:
    """A wait status in words: "exited with status 1", "was killed by SIGKILL"."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(sig).name}"
        return f"was killed by signal {sig}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
