"""`pacsbox serve`: the archive with zero configuration.

Until the archive (index, query, retrieve) lands it is a Verification and Storage SCP that keeps
what it receives under ``--data`` (default ./pacs-data), streamed to disk as it arrives.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..archive import Index
from ..dimse import CEchoRQ, CStoreRQ
from ..log import log
from ..net.association import Timeouts
from ..net.server import Server, ServerConfig
from ..services.storage_scp import ON_DUPLICATE, StorageSCP, storage_policy
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
        help="where received instances and the index are kept (default: ./pacs-data)",
    )
    p.add_argument(
        "--db", metavar="URL",
        help="index database: postgresql://user@host/db (default: sqlite in the --data folder)",
    )  # fmt: skip
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
    p.add_argument("--on-duplicate", choices=ON_DUPLICATE, default="replace",
                   help="a re-sent SOP Instance UID: replace (default), keep or refuse it")  # fmt: skip
    p.add_argument("--require-called-aet", action="store_true",
                   help="refuse associations whose called AE title is not ours")  # fmt: skip
    return p


def server_config(args, index) -> ServerConfig:
    return ServerConfig(
        ae_title=args.aet,
        policy=storage_policy(ARCHIVE_PREFERENCE),
        handlers={
            CEchoRQ: VerificationSCP(),
            CStoreRQ: StorageSCP(
                Path(args.data) / "files",
                sort_prefix="",
                index=index,
                on_duplicate=args.on_duplicate,
            ),
        },
        max_associations=args.max_associations,
        max_pdu_length=args.max_pdu,
        timeouts=Timeouts(acse=args.acse_timeout, idle=args.socket_timeout or None),
        require_called_ae=args.require_called_aet,
    )


async def run(args) -> int:
    data = Path(args.data)
    (data / "files").mkdir(parents=True, exist_ok=True)
    url = args.db or f"sqlite:///{data / 'index.sqlite'}"
    try:
        index = Index.open(url)
    except Exception as exc:
        log.critical("Cannot open the index at %s: %s (check --db)", url, exc)
        return 1
    try:
        return await serve_until_stopped(
            Server(server_config(args, index)), args.host, args.port,
            lambda server: banner(args, server, url),
        )  # fmt: skip
    finally:
        index.close()


def banner(args, server: Server, url: str) -> None:
    data = Path(args.data).resolve()
    # after `make serve` pacsbox is in .venv/bin, not on PATH: show the command that works
    exe = "pacsbox"
    if not shutil.which("pacsbox"):
        exe = min(os.path.relpath(sys.argv[0]), os.path.abspath(sys.argv[0]), key=len)
    print(
        f"pacsbox serving as AE '{args.aet}' on port {server.port} (Verification, Storage).\n"
        f"Received instances go to {data / 'files'}, the index is {_safe(url)}\n"
        f"Test it with:  {exe} echoscu -aec {args.aet} localhost {server.port}   "
        f"(or DCMTK: echoscu -aec {args.aet} localhost {server.port})",
        flush=True,
    )


def main(argv: list[str]) -> int:
    return run_tool(parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def _safe(url: str) -> str:
    """The URL without its password, for the banner."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
