"""The shared servers (fixtures) scenarios talk to; each listens on 127.0.0.1 where it can.

DCMTK 3.6.7's storescp has no bind-address option and listens on all interfaces; the
benchmarks only ever connect to it over loopback.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .context import Context, fixture
from .peers import HOST, ServerProcess, dcmtk_env, dcmtk_tool, pacsbox_cli, start_server
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
