"""Helpers for interop tests against real peers: DCMTK, Orthanc and pynetdicom.

Interop tests are mandatory: a missing peer fails the test (never skips it) and says to run
``make peers``. Everything started here listens on 127.0.0.1 where the peer allows it
(pynetdicom does; DCMTK 3.6.7's storescp/dcmqrscp and Orthanc 1.10.1 have no bind-address
option and listen on all interfaces). Servers run in their own process group and are
terminated (then killed after 5 s) when their context manager exits; their stdout/stderr go
to log files whose content is included in every start-up error.

Typical use::

    from tests.peers import DcmtkServer, free_port, run_dcmtk

    port = free_port()
    with DcmtkServer("storescp", ["-od", tmp_path], port):
        cp = run_dcmtk("echoscu", "127.0.0.1", port)
        assert cp.returncode == 0, cp.stdout + cp.stderr
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "DCMTK_TOOLS",
    "DcmtkServer",
    "OrthancServer",
    "PeerProcess",
    "PeerStartError",
    "PynetdicomSCP",
    "dcmtk_env",
    "free_port",
    "require",
    "run_dcmtk",
    "start_process",
    "tutorial_cfg",
    "wait_for_port",
    "which",
    "write_dcmqrscp_cfg",
]

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
PYNETDICOM_SCP_SCRIPT = TESTS_DIR / "pynetdicom_scp.py"

DCMTK_TOOLS = (
    "echoscu",
    "storescu",
    "storescp",
    "dcmqrscp",
    "dcmsend",
    "dcmcjpeg",
    "findscu",
    "movescu",
    "getscu",
)
# Orthanc lives in /usr/sbin, which is not on every (non-root) PATH.
_EXTRA_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")

STARTUP_TIMEOUT = 10.0  # seconds to wait for a server's port
POLL_INTERVAL = 0.02  # seconds between connection attempts
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL


class PeerStartError(RuntimeError):
    """A peer process did not start listening (the message includes its output)."""


# --------------------------------------------------------------------------------------------
# executables and plain commands
# --------------------------------------------------------------------------------------------


def which(tool: str) -> str | None:
    """Absolute path of ``tool`` on PATH (or in the sbin directories), else None."""
    found = shutil.which(tool)
    if found is None:
        path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_EXTRA_DIRS])
        found = shutil.which(tool, path=path)
    return found


def require(tool: str) -> str:
    """Path of the peer executable ``tool``; fails the test (never skips) when it is missing."""
    found = which(tool)
    if found is None:
        package = "orthanc" if tool.lower() == "orthanc" else "dcmtk"
        pytest.fail(
            f"interop peer {tool!r} is not installed (Debian package {package!r}). "
            "Interop tests are mandatory: run `make peers` "
            "(scripts/install-peers.sh) to install DCMTK, Orthanc and PostgreSQL.",
            pytrace=False,
        )
    return found


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dcmtk_env(**extra: str) -> dict[str, str]:
    """A copy of os.environ for DCMTK tools: ``TCP_NODELAY=1`` (Debian's DCMTK leaves Nagle
    on, which costs ~45 ms per C-STORE), DCMDICTPATH left as the system's. ``extra`` is
    added on top."""
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    env.update(extra)
    return env


def run_dcmtk(
    tool: str,
    *args: object,
    timeout: float = 60,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK tool (never through a shell) and return the completed process.

    Arguments are converted with ``str()`` so ints and Paths can be passed. Output is captured
    as text; DCMTK writes its log (-v, -d, errors) to stderr, so check
    ``cp.stdout + cp.stderr``. A non-zero exit status is *not* raised.
    """
    argv = [require(tool), *map(str, args)]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        cwd=cwd,
        env=dict(env) if env is not None else dcmtk_env(),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        check=False,
    )


def wait_for_port(
    port: int,
    host: str = "127.0.0.1",
    *,
    timeout: float = STARTUP_TIMEOUT,
    process: subprocess.Popen[Any] | None = None,
) -> None:
    """Poll until ``host:port`` accepts a TCP connection (every 20 ms, at most ``timeout``).

    Raises PeerStartError on timeout or when ``process`` exits first.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise PeerStartError(f"process exited with status {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise PeerStartError(f"nothing accepted connections on {host}:{port} in {timeout} s")
        time.sleep(POLL_INTERVAL)


# --------------------------------------------------------------------------------------------
# server processes
# --------------------------------------------------------------------------------------------


class PeerProcess:
    """A server process started for a test; a context manager yielding itself.

    On enter, starts ``argv`` in its own process group with stdout/stderr written to
    ``log_dir/<name>.stdout|stderr`` (a temporary directory when ``log_dir`` is None) and waits
    until ``port`` accepts connections. On exit, sends ``stop_signal`` (SIGTERM) to the group
    and SIGKILL after 5 s. If the process died before the exit (and the block raised
    nothing), that is an error. ``output()`` returns what it logged so far.
    """

    def __init__(
        self,
        argv: Sequence[object],
        port: int,
        *,
        name: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = STARTUP_TIMEOUT,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.port = port
        self.host = host
        self.name = name or Path(self.argv[0]).name
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.startup_timeout = startup_timeout
        self.stop_signal = stop_signal
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.stdout_path: Path | None = None
        self.stderr_path: Path | None = None
        self._final: tuple[str, str] | None = None  # logs kept when the temp dir goes

    # -- output ------------------------------------------------------------------------------
    def stdout(self) -> str:
        if self._final is not None:
            return self._final[0]
        return _read(self.stdout_path)

    def stderr(self) -> str:
        if self._final is not None:
            return self._final[1]
        return _read(self.stderr_path)

    def output(self) -> str:
        """Everything the process wrote so far (stdout then stderr)."""
        return self.stdout() + self.stderr()

    def _describe(self, reason: str) -> str:
        return (
            f"{self.name} (port {self.port}) {reason}\n"
            f"command: {' '.join(self.argv)}\n"
            f"--- stderr ---\n{self.stderr()[-8000:]}\n"
            f"--- stdout ---\n{self.stdout()[-4000:]}"
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> PeerProcess:
        if self._log_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"pacsbox-{self.name}-")
            self._log_dir = Path(self._tmp.name)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self._log_dir / f"{self.name}.stdout"
        self.stderr_path = self._log_dir / f"{self.name}.stderr"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )
        try:
            wait_for_port(self.port, self.host, timeout=self.startup_timeout, process=self.process)
        except BaseException as exc:
            self.stop()
            message = self._describe(f"did not start: {exc}")
            self._drop_logs()
            if isinstance(exc, PeerStartError):
                raise PeerStartError(message) from None
            raise
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """Terminate the process group (``stop_signal``, SIGKILL after 5 s); returns the
        leader's exit status."""
        proc = self.process
        if proc is None:
            return None
        _signal_group(proc.pid, self.stop_signal)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)
        # forked children (dcmqrscp/storescp --fork) share the group: make sure they are gone
        _signal_group(proc.pid, signal.SIGKILL)
        return proc.returncode

    def __enter__(self) -> PeerProcess:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        died = self.process is not None and self.process.poll() is not None
        try:
            self.stop()
            if died and exc_type is None:
                raise PeerStartError(
                    self._describe(
                        f"exited unexpectedly with status {self.process.returncode}"  # type: ignore[union-attr]
                    )
                )
        finally:
            self._drop_logs()

    def _drop_logs(self) -> None:
        """Keep the logs in memory and remove the temporary log directory (if ours)."""
        self._final = (self.stdout(), self.stderr())
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _read(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def start_process(argv: Sequence[object], port: int, **kwargs: Any) -> PeerProcess:
    """A PeerProcess for ``argv`` (not started yet: use it as a context manager)."""
    return PeerProcess(argv, port, **kwargs)


class DcmtkServer(PeerProcess):
    """A DCMTK server (storescp, dcmqrscp, ...) as a context manager yielding itself.

    ``args`` are the options; ``port`` is appended as the last argument (both storescp and
    dcmqrscp take it positionally; pass ``port_arg=False`` when ``args`` already select it,
    e.g. dcmqrscp using the config file's NetworkTCPPort). Runs with ``dcmtk_env()``
    (TCP_NODELAY=1). DCMTK 3.6.7 has no option to bind to 127.0.0.1: it listens on all
    interfaces.
    """

    def __init__(
        self,
        tool: str,
        args: Iterable[object],
        port: int,
        *,
        port_arg: bool = True,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        argv: list[object] = [require(tool), *args]
        if port_arg:
            argv.append(port)
        super().__init__(
            argv, port, name=tool, env=env if env is not None else dcmtk_env(), **kwargs
        )

    def __enter__(self) -> DcmtkServer:
        self.start()
        return self


# --------------------------------------------------------------------------------------------
# dcmqrscp configuration (DCMTK format)
# --------------------------------------------------------------------------------------------

HostEntry = tuple[str, str, int]  # (AE title, host name, port)


def write_dcmqrscp_cfg(
    path: str | os.PathLike[str],
    *,
    port: int,
    storage_dir: str | os.PathLike[str],
    hosts: Mapping[str, HostEntry | Sequence[str]],
    ae_table: Sequence[tuple[str, str | os.PathLike[str], str, tuple[int, str] | str, object]],
    vendors: Mapping[str, str] | None = None,
    max_pdu: int = 16384,
    max_associations: int = 16,
    extra_globals: Mapping[str, object] | None = None,
) -> Path:
    """Write a dcmqrscp.cfg in DCMTK's format and return its path.

    ``hosts`` maps a symbolic name either to ``(aet, host, port)`` or to a list of other
    symbolic names (a group, e.g. ``"acmeCTcompany": ["acme1", "acme2"]``).
    ``ae_table`` rows are ``(aet, storage_area, access, quota, peers)``: a relative storage
    area is taken inside ``storage_dir`` and every area is created; ``access`` is R, RW or W;
    ``quota`` is ``(max_studies, "1024mb")`` or a string like ``"(100, 1024mb)"``; ``peers``
    is ``"ANY"``, a HostTable name, a list of names, or a list of ``(aet, host, port)``.
    ``vendors`` maps a display name to a HostTable name. No UserName/GroupName is written
    (the system's /etc/dcmtk/dcmqrscp.cfg would make dcmqrscp switch to user dcmtk).
    """
    path = Path(path)
    storage_dir = Path(storage_dir)
    lines = [
        "# dcmqrscp configuration written by tests/peers.py",
        f"NetworkTCPPort  = {int(port)}",
        f"MaxPDUSize      = {int(max_pdu)}",
        f"MaxAssociations = {int(max_associations)}",
    ]
    for key, value in (extra_globals or {}).items():
        lines.append(f"{key} = {value}")
    lines += ["", "HostTable BEGIN"]
    width = max([len(n) for n in hosts] + [15])
    for name, entry in hosts.items():
        lines.append(f"{name:<{width}} = {_host_value(entry)}")
    lines += ["HostTable END", "", "VendorTable BEGIN"]
    for vendor, symbolic in (vendors or {}).items():
        lines.append(f'"{vendor}" = {symbolic}')
    lines += ["VendorTable END", "", "AETable BEGIN"]
    for aet, area, access, quota, peers in ae_table:
        if len(aet) > 16 or not aet or any(c.isspace() for c in aet):
            raise ValueError(f"invalid AE title for dcmqrscp: {aet!r}")
        area_path = Path(area)
        if not area_path.is_absolute():
            area_path = storage_dir / area_path
        if any(c.isspace() for c in str(area_path)):
            raise ValueError(f"dcmqrscp.cfg cannot hold a storage area with spaces: {area_path}")
        if access not in ("R", "RW", "W"):
            raise ValueError(f"access must be R, RW or W, not {access!r}")
        area_path.mkdir(parents=True, exist_ok=True)
        if not isinstance(quota, str):
            quota = f"({int(quota[0])}, {quota[1]})"
        lines.append(f"{aet:<12} {area_path}   {access:<2} {quota}   {_peers_value(peers)}")
    lines += ["AETable END", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def _host_value(entry: HostEntry | Sequence[str]) -> str:
    if _is_host_triple(entry):
        aet, host, port = entry  # type: ignore[misc]
        return f"({aet}, {host}, {int(port)})"
    return ", ".join(str(n) for n in entry)


def _is_host_triple(entry: object) -> bool:
    return (
        isinstance(entry, tuple)
        and len(entry) == 3
        and isinstance(entry[0], str)
        and isinstance(entry[2], int)
    )


def _peers_value(peers: object) -> str:
    if isinstance(peers, str):
        return peers
    if _is_host_triple(peers):
        return _host_value(peers)  # type: ignore[arg-type]
    return ", ".join(_host_value(p) if _is_host_triple(p) else str(p) for p in peers)  # type: ignore[attr-defined]


def tutorial_cfg(
    tmp_path: str | os.PathLike[str],
    port: int,
    *,
    acme1_port: int = 1234,
    acme2_port: int = 5678,
    host: str = "localhost",
    storage_dir: str | os.PathLike[str] | None = None,
    quota: tuple[int, str] = (100, "1024mb"),
) -> Path:
    """The seed tutorial's dcmqrscp.cfg ("Setting up dcmqrscp") in ``tmp_path``.

    HostTable: ACME1 and ACME2 on ``host`` (localhost) at ``acme1_port``/``acme2_port``,
    grouped as acmeCTcompany ("Acme CT Company"); AETable: ACME_STORE in
    ``storage_dir`` (default ``tmp_path/"database"``), RW (100, 1024mb), acmeCTcompany.
    Returns the path of ``tmp_path/"dcmqrscp.cfg"``.
    """
    tmp_path = Path(tmp_path)
    storage = Path(storage_dir) if storage_dir is not None else tmp_path / "database"
    return write_dcmqrscp_cfg(
        tmp_path / "dcmqrscp.cfg",
        port=port,
        storage_dir=storage,
        hosts={
            "acme1": ("ACME1", host, acme1_port),
            "acme2": ("ACME2", host, acme2_port),
            "acmeCTcompany": ["acme1", "acme2"],
        },
        vendors={"Acme CT Company": "acmeCTcompany"},
        ae_table=[("ACME_STORE", storage, "RW", quota, "acmeCTcompany")],
    )


# --------------------------------------------------------------------------------------------
# Orthanc
# --------------------------------------------------------------------------------------------


class OrthancServer:
    """Orthanc on free ports with a minimal JSON config; a context manager yielding itself.

    Attributes: ``aet``, ``dicom_port``, ``http_port``, ``url`` (http://127.0.0.1:port),
    ``workdir``, ``config_path``, ``storage_dir``, ``process`` (a PeerProcess).
    ``modalities`` maps a name to ``(aet, host, port)`` (Orthanc's DicomModalities; needed
    for C-MOVE destinations and for C-FIND/C-GET/C-MOVE from a caller, since only C-ECHO and
    C-STORE are allowed from unknown AEs). ``config`` entries override the defaults.
    Orthanc's log goes to ``workdir/Orthanc.stderr`` (``output()``; ``verbose=True`` for
    more). It is killed at exit (``graceful_stop=True`` sends SIGTERM and waits instead).
    Orthanc 1.10.1 cannot bind its DICOM port to 127.0.0.1: it listens on all interfaces
    (the HTTP server refuses non-local clients: RemoteAccessAllowed is false).
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        *,
        aet: str = "ORTHANC",
        dicom_port: int | None = None,
        http_port: int | None = None,
        modalities: Mapping[str, HostEntry | Sequence[object] | Mapping[str, object]] | None = None,
        config: Mapping[str, Any] | None = None,
        verbose: bool = False,
        graceful_stop: bool = False,
    ) -> None:
        self.aet = aet
        self.dicom_port = dicom_port or free_port()
        self.http_port = http_port or free_port()
        while self.http_port == self.dicom_port:
            self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pacsbox-orthanc-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.storage_dir = self.workdir / "storage"
        self.config_path = self.workdir / "orthanc.json"
        self.modalities = {
            name: list(v) if not isinstance(v, Mapping) else dict(v)
            for name, v in (modalities or {}).items()
        }
        self.config: dict[str, Any] = {
            "Name": "pacsbox-test-orthanc",
            "StorageDirectory": str(self.storage_dir),
            "IndexDirectory": str(self.storage_dir),
            "Plugins": [],  # Debian's /etc/orthanc config would load /usr/share/orthanc/plugins
            "LuaScripts": [],
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False,
            "DicomCheckModalityHost": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomModalities": self.modalities,
            "DicomModalitiesInDatabase": False,
            "OrthancPeers": {},
            "SaveJobs": False,
            "StorageCompression": False,
            "DicomScpTimeout": 30,
        }
        self.config.update(config or {})
        self.verbose = verbose
        self.graceful_stop = graceful_stop
        self.process: PeerProcess | None = None

    def start(self) -> OrthancServer:
        try:
            return self._start()
        except BaseException:
            self._cleanup()
            raise

    def _start(self) -> OrthancServer:
        orthanc = require("Orthanc")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config, indent=2))
        argv = [orthanc, *(["--verbose"] if self.verbose else []), str(self.config_path)]
        self.process = PeerProcess(
            argv,
            self.dicom_port,
            name="Orthanc",
            cwd=self.workdir,
            log_dir=self.workdir,
            # a graceful stop takes Orthanc 1.10.1 ~3.5 s (HTTP and DICOM servers poll);
            # its state lives in a scratch directory, so SIGKILL unless asked otherwise
            stop_signal=signal.SIGTERM if self.graceful_stop else signal.SIGKILL,
        )
        self.process.start()
        # the HTTP server comes up before the DICOM server, but check anyway
        try:
            wait_for_port(self.http_port, timeout=STARTUP_TIMEOUT, process=self.process.process)
        except PeerStartError as exc:
            self.process.stop()
            raise PeerStartError(self.process._describe(f"HTTP port: {exc}")) from None
        return self

    def _cleanup(self) -> None:
        if self.process is not None:
            self.process._drop_logs()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def output(self) -> str:
        return self.process.output() if self.process is not None else ""

    # -- REST API (http://127.0.0.1:<http_port>) ---------------------------------------------
    def rest(self, method: str, path: str, body: object = None, *, timeout: float = 30) -> Any:
        """Call Orthanc's REST API; ``body`` is sent as JSON (bytes as-is); returns the parsed
        JSON answer (or raw bytes when it is not JSON)."""
        raw_body = body is None or isinstance(body, bytes)
        data = body if raw_body else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    def get(self, path: str) -> Any:
        return self.rest("GET", path)

    def post(self, path: str, body: object = None) -> Any:
        return self.rest("POST", path, body)

    def instances(self) -> list[str]:
        """Orthanc IDs of every stored instance."""
        return list(self.get("/instances"))

    def __enter__(self) -> OrthancServer:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if self.process is not None:
                self.process.__exit__(exc_type, exc, tb)
        finally:
            self._cleanup()


# --------------------------------------------------------------------------------------------
# pynetdicom SCP (in a subprocess, so its threads never meet our event loops)
# --------------------------------------------------------------------------------------------


class PynetdicomSCP(PeerProcess):
    """A pynetdicom 3.0.4 SCP in a subprocess (tests/pynetdicom_scp.py) on 127.0.0.1:port.

    ``supported`` may hold ``"verification"`` and ``"storage"`` (every storage SOP class,
    every transfer syntax pynetdicom knows); received files are written as DICOM Part 10
    files named ``<SOPInstanceUID>.dcm`` into ``storage_dir`` (required with "storage").
    ``extra_args`` are passed to the script (see its --help). pynetdicom never sets
    TCP_NODELAY, and this helper does not either.
    """

    def __init__(
        self,
        port: int,
        ae_title: str = "PYNETDICOM",
        supported: Sequence[str] = ("verification",),
        *,
        storage_dir: str | os.PathLike[str] | None = None,
        extra_args: Sequence[object] = (),
        **kwargs: Any,
    ) -> None:
        unknown = set(supported) - {"verification", "storage"}
        if unknown:
            raise ValueError(f"unsupported services for PynetdicomSCP: {sorted(unknown)}")
        if "storage" in supported and storage_dir is None:
            raise ValueError("PynetdicomSCP(supported=['storage']) needs storage_dir")
        argv: list[object] = [
            sys.executable,
            PYNETDICOM_SCP_SCRIPT,
            "--port",
            port,
            "--aet",
            ae_title,
        ]
        for service in supported:
            argv += [f"--{service}"]
        if storage_dir is not None:
            Path(storage_dir).mkdir(parents=True, exist_ok=True)
            argv += ["--storage-dir", storage_dir]
        argv += list(extra_args)
        self.ae_title = ae_title
        self.storage_dir = Path(storage_dir) if storage_dir is not None else None
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        super().__init__(argv, port, name="pynetdicom_scp", env=env, **kwargs)

    def received(self) -> list[Path]:
        """Files received so far (sorted by name)."""
        if self.storage_dir is None:
            return []
        return sorted(self.storage_dir.glob("*.dcm"))

    def __enter__(self) -> PynetdicomSCP:
        self.start()
        return self
