"""`pacsbox serve`: the archive with zero configuration.

Until the archive (index, query, retrieve) lands it is a Verification and Storage SCP that keeps
what it receives under ``--data`` (default ./pacs-data), streamed to disk as it arrives.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..dimse import CEchoRQ, CStoreRQ
from ..net.association import Timeouts
from ..net.server import Server, ServerConfig
from ..services.storage_scp import StorageSCP, storage_policy
from ..services.verification import VerificationSCP
from ..syntaxes import ARCHIVE_PREFERENCE
from .common import (
    SCP_MAX_PDU,
    DcmtkArgumentParser,
    add_general_options,
    pdu_size,
    run_tool,
    serve_until_stopped,
)


def parser() -> DcmtkArgumentParser:
    p = DcmtkArgumentParser("serve", "run the pacsbox archive")
    add_general_options(p)
    p.add_argument(
        "--port", "+P", type=int, default=11112, help="TCP port to listen on (default: 11112)"
    )
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    p.add_argument("--aet", "-aet", "--aetitle", dest="aet", default="PACSBOX",
                   help="our AE title (default: PACSBOX)")  # fmt: skip
    p.add_argument(
        "--data",
        default="pacs-data",
        help="where received instances are kept (default: ./pacs-data)",
    )
    p.add_argument(
        "--max-associations", type=int, default=32, help="simultaneous associations (default: 32)"
    )
    p.add_argument(
        "-pdu",
        "--max-pdu",
        type=pdu_size,
        default=SCP_MAX_PDU,
        help=f"max receive PDU (default: {SCP_MAX_PDU})",
    )
    p.add_argument("-ts", "--socket-timeout", type=int, default=60,
                   help="abort an association silent for this long (0: never; default 60)")  # fmt: skip
    p.add_argument("-ta", "--acse-timeout", type=int, default=30, help="ACSE timeout (default: 30)")
    p.add_argument("--require-called-aet", action="store_true",
                   help="refuse associations whose called AE title is not ours")  # fmt: skip
    return p


def server_config(args) -> ServerConfig:
    return ServerConfig(
        ae_title=args.aet,
        policy=storage_policy(ARCHIVE_PREFERENCE),
        handlers={CEchoRQ: VerificationSCP(), CStoreRQ: StorageSCP(args.data)},
        max_associations=args.max_associations,
        max_pdu_length=args.max_pdu,
        timeouts=Timeouts(acse=args.acse_timeout, idle=args.socket_timeout or None),
        require_called_ae=args.require_called_aet,
    )


async def run(args) -> int:
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    return await serve_until_stopped(
        Server(server_config(args)), args.host, args.port, lambda server: banner(args, server)
    )


def banner(args, server: Server) -> None:
    data = Path(args.data).resolve()
    # after `make serve` pacsbox is in .venv/bin, not on PATH: show the command that works
    exe = "pacsbox" if shutil.which("pacsbox") else os.path.relpath(sys.argv[0])
    print(
        f"pacsbox serving as AE '{args.aet}' on port {server.port} (Verification, Storage).\n"
        f"Received instances go to {data}\n"
        f"Test it with:  {exe} echoscu -aec {args.aet} localhost {server.port}   "
        f"(or DCMTK: echoscu -aec {args.aet} localhost {server.port})",
        flush=True,
    )


def main(argv: list[str]) -> int:
    return run_tool(parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
