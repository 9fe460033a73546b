"""Peer processes for the benchmarks: finding tools, free ports, servers, timed tool runs.

Every server runs in its own process group with its output in a log file, is waited for with
a bounded wait, and is stopped (SIGTERM, then SIGKILL after a few seconds) by the run's
context, also when a scenario failed or the run was interrupted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

HOST = "127.0.0.1"  # loopback only
STARTUP_TIMEOUT = 15.0  # s, for a server to accept connections
STOP_TIMEOUT = 5.0  # s between SIGTERM and SIGKILL
RUN_TIMEOUT = 300.0  # s, for one timed tool run


# CPU pinning (see pin()): None = the scheduler decides
CLIENT_CPUS: set[int] | None = None
SERVER_CPUS: set[int] | None = None
ALL_CPUS: set[int] | None = None  # for a server that is to use every CPU (pinned=False)


def pin(enabled: bool) -> str:
    """Pin clients (this process and the tools it runs) to one CPU and servers to another.

    On loopback a request/response round trip costs much less when client and server
    happen to share a CPU (no cross-CPU wake-up): DCMTK echoscu -> storescp takes ~0.07 s
    for 2,000 echoes on one CPU and ~0.20 s across two here, and unpinned runs flip between
    the two, which makes ratios noisy. Pinned, every pairing runs like two machines would:
    client and server on different CPUs. Returns a description for the report.
    """
    global CLIENT_CPUS, SERVER_CPUS, ALL_CPUS
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not enabled or len(cpus) < 2:
        CLIENT_CPUS = SERVER_CPUS = ALL_CPUS = None
        return "off" if not enabled else "off (fewer than 2 CPUs available)"
    CLIENT_CPUS, SERVER_CPUS, ALL_CPUS = {cpus[0]}, {cpus[1]}, set(cpus)
    os.sched_setaffinity(0, CLIENT_CPUS)  # inherited by the client tools we start
    return f"clients on CPU {cpus[0]}, servers on CPU {cpus[1]}"


class PeerError(RuntimeError):
    """A peer is missing, did not start, or a tool run failed (the message says which)."""


# -- tools ------------------------------------------------------------------------------------


def _venv_bin() -> Path:
    return Path(sys.executable).parent


@cache
def dcmtk_tool(name: str) -> str:
    """Absolute path of DCMTK's ``name`` (echoscu, storescp, ...).

    The venv's bin directory is skipped: pynetdicom installs its own ``echoscu`` and
    ``storescp`` there, which would silently replace DCMTK when the venv is activated. The
    tool found is checked to be DCMTK's (``--version`` mentions dcmtk).
    """
    skip = {_venv_bin().resolve()}
    dirs = [d for d in os.environ.get("PATH", os.defpath).split(os.pathsep) if d]
    dirs += ["/usr/bin", "/usr/local/bin"]
    for d in dirs:
        p = Path(d)
        try:
            if p.resolve() in skip:
                continue
        except OSError:
            continue
        candidate = p / name
        if candidate.is_file() and os.access(candidate, os.X_OK) and _is_dcmtk(str(candidate)):
            return str(candidate)
    raise PeerError(
        f"DCMTK's {name} was not found on PATH (outside the venv). Install the peers with "
        "`make peers` (Debian package dcmtk)."
    )


def _is_dcmtk(path: str) -> bool:
    try:
        cp = subprocess.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=10,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "dcmtk" in (cp.stdout + cp.stderr).lower()


@cache
def dcmtk_version() -> str:
    try:
        cp = subprocess.run(
            [dcmtk_tool("echoscu"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (PeerError, OSError, subprocess.TimeoutExpired):
        return "?"
    for line in (cp.stdout + cp.stderr).splitlines():
        if "dcmtk" in line.lower():  # "$dcmtk: echoscu v3.6.7 2022-04-22 $"
            parts = line.split()
            return parts[2] if len(parts) > 2 else line.strip()
    return "?"


def pacsbox_cli() -> list[str]:
    """The user-facing ``pacsbox`` command of this venv (the console script)."""
    script = _venv_bin() / "pacsbox"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from pacsbox.cli.main import run; run()"]


def dcmtk_env(**extra: str) -> dict[str, str]:
    """os.environ with TCP_NODELAY=1: Debian's DCMTK leaves Nagle on without it."""
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    env.update(extra)
    return env


# -- ports ------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server is started on it at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_port(
    port: int,
    *,
    process: subprocess.Popen | None = None,
    timeout: float = STARTUP_TIMEOUT,
    host: str = HOST,
) -> None:
    """Poll until host:port accepts TCP (bounded); fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise PeerError(f"exited with status {process.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise PeerError(f"nothing accepted connections on {host}:{port} within {timeout} s")
        time.sleep(0.02)


# -- servers ----------------------------------------------------------------------------------


class ServerProcess:
    """A server started on a free port: ``argv_for(port)`` is its command line."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        *,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        kill: bool = False,
        pinned: bool = True,
    ) -> None:
        self.name = name
        # False: every CPU, for a server of several processes (pacsbox serve --workers)
        self.pinned = pinned
        self.kill = kill  # stop with SIGKILL at once (its state is scratch; SIGTERM is slow)
        self.argv = [str(a) for a in argv]
        self.host = HOST
        self.port = port
        self.workdir = workdir
        self.env = dict(env) if env is not None else None
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as logf:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )
        cpus = SERVER_CPUS if self.pinned else ALL_CPUS
        if cpus is not None:
            # at once, before it listens, so the threads (and processes) it starts later
            # inherit it
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.process.pid, cpus)
        try:
            wait_for_port(self.port, process=self.process)
        except PeerError as exc:
            self.stop()
            raise PeerError(f"{self.name} ({' '.join(self.argv)}): {exc}\n{self.log()}") from None
        return self

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise PeerError(f"{self.name} is not running (exit status {code})\n{self.log()}")

    def log(self, limit: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return f"--- {self.name} log ---\n{text[-limit:]}" if text else ""

    def stop(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        if self.kill:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)
            return
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # pid == pgid (start_new_session)
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.send_signal(sig)


def start_server(
    name: str,
    argv_for_port,
    *,
    workdir: Path,
    env: Mapping[str, str] | None = None,
    attempts: int = 3,
    kill: bool = False,
    pinned: bool = True,
) -> ServerProcess:
    """Start a server on a free port; retried on another port if it cannot listen (another
    process may take the free port between the probe and the server's bind)."""
    error: PeerError | None = None
    for _ in range(attempts):
        port = free_port()
        argv = argv_for_port(port)
        server = ServerProcess(name, argv, port, workdir=workdir, env=env, kill=kill, pinned=pinned)
        try:
            return server.start()
        except PeerError as exc:
            error = exc
    assert error is not None
    raise error


# -- timed tool runs --------------------------------------------------------------------------


def run_timed(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = RUN_TIMEOUT,
) -> float:
    """Run a tool to completion and return its wall time in seconds (process start to exit).

    Output is captured (and shown only on failure); a non-zero exit status raises PeerError.
    """
    argv = [str(a) for a in argv]
    t0 = time.perf_counter()
    try:
        cp = subprocess.run(
            argv,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PeerError(f"{' '.join(argv)} did not finish within {timeout} s") from None
    elapsed = time.perf_counter() - t0
    if cp.returncode != 0:
        out = (cp.stdout + cp.stderr).decode(errors="replace")[-4000:]
        raise PeerError(f"{' '.join(argv)} exited with status {cp.returncode}\n{out}")
    return elapsed
