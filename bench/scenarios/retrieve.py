"""Retrieve: DCMTK movescu / getscu fetch a whole 2000 x 40 KB study from an archive.

Each archive is started once per bench run and loaded once (untimed, DCMTK storescu) with the
``storage-40k`` data set, one study: ``pacsbox serve`` (SQLite index; the move destination in
its TOML ``[peers]``), DCMTK ``dcmqrscp`` (index.dat; the destination in its HostTable) and
Orthanc 1.10.1 (the destination and the getscu AE as modalities). The timed part is one whole
DCMTK run, TCP_NODELAY=1:

- C-MOVE: ``movescu -S -aec AE -aem MOVESCU --port P -od OUT 127.0.0.1 PORT
  -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=...``: movescu receives the C-STOREs on its
  own port (the archive opens the association);
- C-GET: ``getscu -S -aec AE -od OUT ...``: the C-STOREs come back on getscu's association;
- C-MOVE to a separate DCMTK storescp (``-aem STORESCP``, no ``--port``): movescu's built-in
  receiver turned out to bound all three archives alike (~2 ms an instance), so this row
  shows the archives' own sending.

After each run OUT must hold the 2000 instances (emptied before the next run, untimed). The
baselines are DCMTK dcmqrscp's C-MOVE and C-GET of the same run (issue goal: pacsbox at most
0.5 x dcmqrscp).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..context import Context, fixture
from ..datasets import DataSet
from ..peers import HOST, dcmtk_env, dcmtk_tool, free_port, run_timed
from ..registry import Measurement, scenario
from ..servers import DcmqrscpArchive, OrthancArchive, PacsboxArchive

MOVE_DESTINATION = "MOVESCU"  # movescu's default AE title, as in the tutorial's setup
STORESCP = "STORESCP"  # a separate DCMTK storescp: the archive's sending alone, see below
DATA = "40k"


class _Loaded:
    """An archive holding the 40 KB set, and the port movescu listens on for it."""

    def __init__(self, archive, ctx: Context) -> None:
        self.archive = archive
        self.ctx = ctx
        self.server = None

    def stop(self) -> None:
        self.archive.stop()
        self.server = None

    def ensure(self, data: DataSet) -> None:
        if self.server is not None:
            self.server.check_alive()
            return
        self.server = self.archive.fresh()
        run_timed(  # untimed here: loading the archive
            [dcmtk_tool("storescu"), "-aec", self.archive.aet, HOST, str(self.server.port),
             "+sd", str(data.directory)],
            env=dcmtk_env(),
        )  # fmt: skip
        stored = self.archive.count()
        if stored != data.count:
            raise RuntimeError(f"{self.archive.name} holds {stored} of {data.count} instances")


class PacsboxSource(PacsboxArchive):
    def __init__(self, ctx: Context, name: str, destination_port: int, storescp: int) -> None:
        super().__init__(ctx, name)
        self.destination_port, self.storescp_port = destination_port, storescp

    def start(self, workdir: Path):
        from ..peers import pacsbox_cli, start_server

        config = workdir / "pacs.toml"
        config.write_text(
            f'[peers.{MOVE_DESTINATION}]\nhost = "{HOST}"\nport = {self.destination_port}\n'
            f'[peers.{STORESCP}]\nhost = "{HOST}"\nport = {self.storescp_port}\n'
        )
        self.store = workdir / "data"
        cli = pacsbox_cli()
        return start_server(
            "pacsbox-archive",
            lambda port: [
                *(*cli, "serve", "-q", "--host", HOST, "--port", str(port)),
                *("--data", str(self.store), "--config", str(config)),
            ],
            workdir=workdir,
        )


class DcmqrscpSource(DcmqrscpArchive):
    def __init__(self, ctx: Context, name: str, destination_port: int, storescp: int) -> None:
        super().__init__(ctx, name)
        self.destination_port, self.storescp_port = destination_port, storescp

    def start(self, workdir: Path):
        from ..peers import start_server

        tool = dcmtk_tool("dcmqrscp")
        self.store = workdir / "area"
        self.store.mkdir()
        config = workdir / "dcmqrscp.cfg"
        hosts = (
            f"{MOVE_DESTINATION} = ({MOVE_DESTINATION}, {HOST}, {self.destination_port})\n"
            f"{STORESCP} = ({STORESCP}, {HOST}, {self.storescp_port})"
        )

        def argv(port: int) -> list[str]:
            config.write_text(
                f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n\n"
                f"HostTable BEGIN\n{hosts}\nHostTable END\n\nVendorTable BEGIN\nVendorTable END"
                f"\n\nAETable BEGIN\nPACSBOX {self.store} RW (500, 1024mb) ANY\nAETable END\n"
            )
            return [tool, "-c", str(config)]

        return start_server("dcmqrscp", argv, workdir=workdir, env=dcmtk_env())


class OrthancSource(OrthancArchive):
    def __init__(self, ctx: Context, name: str, destination_port: int, storescp: int) -> None:
        super().__init__(ctx, name)
        self.destination_port, self.storescp_port = destination_port, storescp

    def _config(self, port: int) -> dict[str, object]:
        config = super()._config(port)
        config["DicomModalities"] = {
            MOVE_DESTINATION: [MOVE_DESTINATION, HOST, self.destination_port],
            STORESCP: [STORESCP, HOST, self.storescp_port],
            "GETSCU": ["GETSCU", HOST, 104],  # getscu's AE: Orthanc answers known AEs only
        }
        return config


SOURCES = (
    # (id suffix, name, class)
    ("pacsbox", "pacsbox serve (SQLite index)", PacsboxSource),
    ("dcmqrscp", "DCMTK dcmqrscp", DcmqrscpSource),
    ("orthanc", "Orthanc 1.10.1", OrthancSource),
)


def _source_fixture(key: str, cls):
    def make(ctx: Context) -> _Loaded:
        storescp = ctx.fixture("retrieve-storescp")
        return _Loaded(cls(ctx, f"retrieve-{key}", free_port(), storescp.port), ctx)

    fixture(f"retrieve-source-{key}")(make)


for _key, _name, _cls in SOURCES:
    _source_fixture(_key, _cls)


@fixture("retrieve-storescp")
def retrieve_storescp(ctx: Context):
    """The C-MOVE destination of the move-storescp rows: DCMTK storescp on the *client* CPU.
    It stands for a third machine; on the servers' CPU it would compete with the archive
    that sends to it (with two CPUs, the client's is the idle one: movescu only waits)."""
    import os

    from .. import peers

    server = peers.start_server(
        "retrieve-storescp",
        lambda port: [dcmtk_tool("storescp"), str(port)],
        workdir=ctx.workdir("retrieve-storescp"),
        env=dcmtk_env(),
    )
    if peers.CLIENT_CPUS is not None and server.process is not None:
        os.sched_setaffinity(server.process.pid, peers.CLIENT_CPUS)
    return server


def _study_uid(data: DataSet) -> str:
    from pydicom import dcmread

    return str(dcmread(data.files[0], stop_before_pixels=True).StudyInstanceUID)


def run_retrieve(ctx: Context, source_key: str, method: str) -> Measurement:
    data: DataSet = ctx.fixture(f"data-{DATA}")
    source: _Loaded = ctx.fixture(f"retrieve-source-{source_key}")
    source.ensure(data)
    out = ctx.tmp / f"retrieved-{source_key}-{method}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={_study_uid(data)}"]
    port = str(source.server.port)
    if method == "move-storescp":  # the files land in storescp's folder: count them there
        out = ctx.workdir("retrieve-storescp")
        for old in out.glob("CT.*"):
            old.unlink()
        argv = [dcmtk_tool("movescu"), "-S", "-aec", source.archive.aet, "-aem", STORESCP,
                HOST, port, *keys]  # fmt: skip
    elif method == "move":
        argv = [dcmtk_tool("movescu"), "-S", "-aec", source.archive.aet, "-aem", MOVE_DESTINATION,
                "--port", str(source.archive.destination_port), "-od", str(out), HOST, port,
                *keys]  # fmt: skip
    else:
        argv = [dcmtk_tool("getscu"), "-S", "-aec", source.archive.aet, "-od", str(out), HOST,
                port, *keys]  # fmt: skip
    seconds = run_timed(argv, env=dcmtk_env())
    received = sum(1 for p in out.glob("CT.*") if p.is_file())
    if received != data.count:
        raise RuntimeError(
            f"{source.archive.name}: {received} of {data.count} instances arrived by C-"
            f"{method.upper()}\n{source.archive.log()[-2000:]}"
        )
    return Measurement(seconds, {"ms_per_file": seconds / data.count * 1e3,
                                 "MB_per_s": data.total_bytes / seconds / 1e6})  # fmt: skip


_LABELS = {
    "move": "C-MOVE of a 2000 x 40 KB study: DCMTK movescu (its own receiver) <- {}",
    "get": "C-GET of a 2000 x 40 KB study: DCMTK getscu <- {}",
    "move-storescp": "C-MOVE of a 2000 x 40 KB study to a DCMTK storescp <- {}",
}

for _method, _label in _LABELS.items():
    for _key, _name, _cls in SOURCES:

        def _fn(ctx: Context, _k=_key, _m=_method) -> Measurement:
            return run_retrieve(ctx, _k, _m)

        scenario(
            f"retrieve-{_method}.{_key}",
            _label.format(_name),
            items=2000,
            unit="file",
            baseline=f"retrieve-{_method}.dcmqrscp",
        )(_fn)
