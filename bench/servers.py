"""The shared servers (fixtures) scenarios talk to; each listens on 127.0.0.1 where it can.

DCMTK 3.6.7's storescp has no bind-address option and listens on all interfaces; the
benchmarks only ever connect to it over loopback.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import sys
import urllib.request
from pathlib import Path

from .context import Context, fixture
from .peers import (
    HOST,
    PeerError,
    ServerProcess,
    dcmtk_env,
    dcmtk_tool,
    free_port,
    pacsbox_cli,
    start_server,
    wait_for_port,
)
from .registry import Skip

SCRIPTS = Path(__file__).resolve().parent / "scripts"


@fixture("dcmtk-storescp")
def dcmtk_storescp(ctx: Context) -> ServerProcess:
    """DCMTK storescp with default options, TCP_NODELAY=1, in its own temp directory."""
    tool = dcmtk_tool("storescp")
    return start_server(
        "storescp",
        lambda port: [tool, str(port)],
        workdir=ctx.workdir("storescp"),
        env=dcmtk_env(),
    )


@fixture("pacsbox-serve")
def pacsbox_serve(ctx: Context) -> ServerProcess:
    """`pacsbox serve -q` on 127.0.0.1, as a user starts it (own process, own event loop)."""
    cli = pacsbox_cli()
    return start_server(
        "pacsbox-serve",
        lambda port: [*cli, "serve", "--host", HOST, "--port", str(port), "-q"],
        workdir=ctx.workdir("pacsbox-serve"),
    )


@fixture("pynetdicom-scp")
def pynetdicom_scp(ctx: Context) -> ServerProcess:
    """A pynetdicom Verification SCP in a subprocess (a reference peer, optional)."""
    try:
        import pynetdicom  # noqa: F401
    except ImportError:
        raise Skip("pynetdicom is not installed (pip install -e '.[test]')") from None
    script = SCRIPTS / "pynetdicom_scp.py"
    return start_server(
        "pynetdicom-scp",
        lambda port: [sys.executable, str(script), "--host", HOST, "--port", str(port)],
        workdir=ctx.workdir("pynetdicom-scp"),
    )


# -- storage receivers: each writes the files it receives to its own ``output_dir`` ----------


def _with_output(server: ServerProcess, output_dir: Path) -> ServerProcess:
    server.output_dir = output_dir  # type: ignore[attr-defined]
    return server


@fixture("dcmtk-storescp-files")
def dcmtk_storescp_files(ctx: Context) -> ServerProcess:
    """DCMTK storescp with default options (TCP_NODELAY=1), writing files to its ``out/``."""
    tool = dcmtk_tool("storescp")
    workdir = ctx.workdir("storescp-files")
    out = ctx.workdir("storescp-files/out")
    server = start_server(
        "storescp-files",
        lambda port: [tool, "-od", str(out), str(port)],
        workdir=workdir,
        env=dcmtk_env(),
    )
    return _with_output(server, out)


@fixture("pacsbox-storescp")
def pacsbox_storescp(ctx: Context) -> ServerProcess:
    """`pacsbox storescp -q --host 127.0.0.1 -od out PORT`, as a user starts it."""
    cli = pacsbox_cli()
    workdir = ctx.workdir("pacsbox-storescp")
    out = ctx.workdir("pacsbox-storescp/out")
    server = start_server(
        "pacsbox-storescp",
        lambda port: [*cli, "storescp", "-q", "--host", HOST, "-od", str(out), str(port)],
        workdir=workdir,
    )
    return _with_output(server, out)


@fixture("pynetdicom-store-scp")
def pynetdicom_store_scp(ctx: Context) -> ServerProcess:
    """A pynetdicom Storage SCP (raw write, TCP_NODELAY patched in) in a subprocess."""
    try:
        import pynetdicom  # noqa: F401
    except ImportError:
        raise Skip("pynetdicom is not installed (pip install -e '.[test]')") from None
    script = SCRIPTS / "pynetdicom_scp.py"
    workdir = ctx.workdir("pynetdicom-store-scp")
    out = ctx.workdir("pynetdicom-store-scp/out")
    server = start_server(
        "pynetdicom-store-scp",
        lambda port: [
            *(sys.executable, str(script), "--host", HOST, "--port", str(port)),
            *("--store-dir", str(out), "--nodelay"),
        ],
        workdir=workdir,
    )
    return _with_output(server, out)


# -- archive receivers: a fresh server (and empty store) for every run -------------------------


class ArchiveReceiver:
    """An archive started anew, on a new empty store, before each run (``fresh()``, untimed),
    so every run stores new instances; ``count()`` says how many it holds after the run.

    ``aet`` is the called AE title the sender uses. The server of the previous run is stopped
    when the next one starts and at the end of the bench run.
    """

    aet = "ANY-SCP"

    def __init__(self, ctx: Context, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.runs = 0
        self.server: ServerProcess | None = None
        self.store: Path = Path()

    def fresh(self) -> ServerProcess:
        self.stop()
        self.runs += 1
        workdir = self.ctx.tmp / self.name
        if workdir.exists():
            shutil.rmtree(workdir)  # the previous run's store
        workdir.mkdir(parents=True)
        self.server = self.start(workdir)
        return self.server

    def start(self, workdir: Path) -> ServerProcess:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def log(self) -> str:
        return self.server.log() if self.server is not None else ""


class PacsboxArchive(ArchiveReceiver):
    """`pacsbox serve -q --host 127.0.0.1 --port P --data DIR`: files + SQLite index.

    ``workers`` > 1: `--workers N`, N processes on the port, and the server may use every
    CPU (pinned to one, N processes would share it: bench/README.md, "Four senders at once").
    """

    aet = "PACSBOX"

    def __init__(self, ctx: Context, name: str, *, workers: int = 1) -> None:
        super().__init__(ctx, name)
        self.workers = workers

    def start(self, workdir: Path) -> ServerProcess:
        cli = pacsbox_cli()
        self.store = workdir / "data"
        extra = ("--workers", str(self.workers)) if self.workers > 1 else ()
        return start_server(
            "pacsbox-archive",
            lambda port: [
                *(*cli, "serve", "-q", "--host", HOST, "--port", str(port)),
                *("--data", str(self.store), *extra),
            ],
            workdir=workdir,
            pinned=self.workers == 1,
        )

    def count(self) -> int:
        files = sum(1 for _ in (self.store / "files").rglob("CT.*"))
        db = self.store / "index.sqlite"
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            (rows,) = con.execute("SELECT count(*) FROM instances").fetchone()
        if rows != files:
            raise RuntimeError(f"pacsbox serve: {files} files under {self.store} but {rows} rows")
        return files


DCMQRSCP_CONFIG = """\
NetworkTCPPort  = {port}
MaxPDUSize      = 16384
MaxAssociations = 16

HostTable BEGIN
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
PACSBOX  {area}  RW (500, 1024mb)  ANY
AETable END
"""


class DcmqrscpArchive(ArchiveReceiver):
    """DCMTK `dcmqrscp -c cfg`: one storage area (files + its index.dat), TCP_NODELAY=1."""

    aet = "PACSBOX"

    def start(self, workdir: Path) -> ServerProcess:
        tool = dcmtk_tool("dcmqrscp")
        self.store = workdir / "area"
        self.store.mkdir()
        config = workdir / "dcmqrscp.cfg"

        def argv(port: int) -> list[str]:
            config.write_text(DCMQRSCP_CONFIG.format(port=port, area=self.store))
            return [tool, "-c", str(config)]

        return start_server("dcmqrscp", argv, workdir=workdir, env=dcmtk_env())

    def count(self) -> int:
        return sum(1 for p in self.store.iterdir() if p.is_file() and p.name != "index.dat")


def orthanc_tool() -> str:
    """Orthanc's executable (in /usr/sbin, not on every non-root PATH)."""
    path = shutil.which("Orthanc") or shutil.which(
        "Orthanc", path="/usr/local/sbin:/usr/sbin:/sbin"
    )
    if path is None:
        raise PeerError("Orthanc was not found (make peers installs the Debian package orthanc)")
    return path


class OrthancArchive(ArchiveReceiver):
    """Orthanc (AE ORTHANC, any AE may store, no plugins), storage and SQLite index in a temp
    directory. Killed with SIGKILL: a graceful stop takes Orthanc 1.10.1 ~3.5 s. Debian's Orthanc
    uses Debian's DCMTK for DICOM, so it gets TCP_NODELAY=1 too (without it every C-STORE
    waits ~44 ms on Nagle: 89 s instead of ~3 s for the 40 KB set)."""

    aet = "ORTHANC"
    http_port = 0

    def start(self, workdir: Path) -> ServerProcess:
        tool = orthanc_tool()
        self.store = workdir / "storage"
        self.store.mkdir()
        config = workdir / "orthanc.json"

        def argv(port: int) -> list[str]:
            self.http_port = free_port()
            while self.http_port == port:
                self.http_port = free_port()
            config.write_text(json.dumps(self._config(port)))
            return [tool, str(config)]

        server = start_server("orthanc", argv, workdir=workdir, env=dcmtk_env(), kill=True)
        try:
            wait_for_port(self.http_port, process=server.process)
        except PeerError as exc:
            server.stop()
            raise PeerError(f"orthanc HTTP port: {exc}\n{server.log()}") from None
        return server

    def _config(self, port: int) -> dict[str, object]:
        return {
            "Name": "pacsbox-bench-orthanc",
            "StorageDirectory": str(self.store),
            "IndexDirectory": str(self.store),
            "Plugins": [],  # Debian's /etc/orthanc config would load the plugins
            "LuaScripts": [],
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": self.aet,
            "DicomPort": port,
            "DicomCheckCalledAet": False,
            "DicomCheckModalityHost": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomModalities": {},
            "DicomModalitiesInDatabase": False,
            "OrthancPeers": {},
            "SaveJobs": False,
            "StorageCompression": False,
            "DicomScpTimeout": 30,
        }

    def count(self) -> int:
        url = f"http://{HOST}:{self.http_port}/statistics"
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(json.load(response)["CountInstances"])


@fixture("archive-pacsbox")
def archive_pacsbox(ctx: Context) -> ArchiveReceiver:
    return PacsboxArchive(ctx, "archive-pacsbox")


@fixture("archive-pacsbox-workers2")
def archive_pacsbox_workers2(ctx: Context) -> ArchiveReceiver:
    return PacsboxArchive(ctx, "archive-pacsbox-workers2", workers=2)


@fixture("archive-dcmqrscp")
def archive_dcmqrscp(ctx: Context) -> ArchiveReceiver:
    return DcmqrscpArchive(ctx, "archive-dcmqrscp")


@fixture("archive-orthanc")
def archive_orthanc(ctx: Context) -> ArchiveReceiver:
    return OrthancArchive(ctx, "archive-orthanc")
