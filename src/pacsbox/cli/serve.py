"""`pacsbox serve`: the archive, with zero configuration or a TOML file (``--config``).

A Verification and Storage SCP that keeps what it receives under the data folder (default
./pacs-data) and indexes it (SQLite there, or PostgreSQL). What it runs with comes from
serve's defaults, then the ``--config`` file (``pacsbox.config.native``), then the flags;
``--print-config`` shows the result. With ``--workers N`` it runs as N processes on one port
(``pacsbox.cli.workers``). docs/archive.md says how to run it.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace

from .. import log as pblog
from ..config.native import ON_DUPLICATE, NativeConfigError, ServeConfig, dumps, load
from ..log import log
from .common import (
    SCP_MAX_PDU,
    DcmtkArgumentParser,
    add_general_options,
    configure_logging,
    pdu_size,
    run_coroutine,
    serve_until_stopped,
)
from .syntax_options import add_scp_syntax_options

# Each flag (its argparse dest) and the configuration key it overrides. Every flag defaults
# to None, "not given": the file's value (or serve's default) stands.
FLAG_KEYS = {
    "aet": ("server.ae_title", "--aet"),
    "host": ("server.host", "--host"),
    "port": ("server.port", "--port"),
    "max_associations": ("server.max_associations", "--max-associations"),
    "max_pdu": ("server.max_pdu", "--max-pdu"),
    "acse_timeout": ("server.acse_timeout", "--acse-timeout"),
    "dimse_timeout": ("server.dimse_timeout", "--dimse-timeout"),
    "socket_timeout": ("server.idle_timeout", "--socket-timeout"),
    "require_called_aet": ("server.require_called_ae", "--require-called-aet"),
    "pending_interval": ("server.pending_interval", "--pending-interval"),
    "workers": ("server.workers", "--workers"),
    "data": ("storage.data", "--data"),
    "on_duplicate": ("storage.on_duplicate", "--on-duplicate"),
    "max_dataset_size": ("storage.max_dataset_size", "--max-dataset-size"),
    "db": ("database.url", "--db"),
}


def parser() -> DcmtkArgumentParser:
    p = DcmtkArgumentParser("serve", "run the pacsbox archive")
    add_general_options(p)
    p.add_argument("--config", metavar="FILE",
                   help="read the configuration from this TOML file; flags override it "
                        "(example: docs/pacsbox.example.toml)")  # fmt: skip
    p.add_argument("--print-config", action="store_true",
                   help="print the effective configuration (defaults, file, flags) as TOML "
                        "and exit")  # fmt: skip
    p.add_argument("--port", "+P", type=int, help="TCP port to listen on (default: 11112)")
    p.add_argument("--max-dataset-size", type=int, metavar="BYTES",
                   help="refuse a data set larger than this with 0xA700 (default: no limit)")  # fmt: skip
    p.add_argument("--pending-interval", type=float, metavar="SECONDS",
                   help="C-MOVE/C-GET: at most one pending response this often (default 0.5; "
                        "0: after every sub-operation but the last)")  # fmt: skip
    p.add_argument("--host", help="address to listen on (default: 0.0.0.0, all)")
    p.add_argument("--aet", "-aet", "--aetitle", dest="aet",
                   help="our AE title (default: PACSBOX)")  # fmt: skip
    p.add_argument(
        "--data",
        help="where received instances and the index are kept (default: ./pacs-data)",
    )
    p.add_argument(
        "--db", metavar="URL",
        help="index database: postgresql://user@host/db (default: sqlite in the --data folder)",
    )  # fmt: skip
    p.add_argument("--max-associations", type=int,
                   help="simultaneous associations (default: 32); with --workers N, each "
                        "worker takes ceil(limit / N) of them")  # fmt: skip
    p.add_argument("--workers", metavar="N", type=_count_or_auto,
                   help="serve with N processes on one port, one CPU each ('auto': one per "
                        "CPU; default 1, this process alone)")  # fmt: skip
    p.add_argument(
        "-pdu",
        "--max-pdu",
        type=pdu_size,
        help=f"max receive PDU (default: {SCP_MAX_PDU})",
    )
    p.add_argument("-ts", "--socket-timeout", type=int,
                   help="abort an association silent for this long (0: never; default 60)")  # fmt: skip
    p.add_argument("-ta", "--acse-timeout", type=int, help="ACSE timeout (default: 30)")
    p.add_argument("-td", "--dimse-timeout", type=int,
                   help="timeout for DIMSE messages (0: never, the default)")  # fmt: skip
    p.add_argument("--on-duplicate", choices=ON_DUPLICATE,
                   help="a re-sent SOP Instance UID: replace (default), keep or refuse it")  # fmt: skip
    p.add_argument("--require-called-aet", action="store_const", const=True,
                   help="refuse associations whose called AE title is not ours")  # fmt: skip
    add_scp_syntax_options(p)
    p.set_defaults(prefer=None)  # no +x option: [transfer_syntaxes] accept, default "archive"
    return p


def _count_or_auto(text: str) -> int | str:
    """--workers: a number, or "auto" (the configuration checks both)."""
    return int(text) if text.lstrip("-").isdigit() else text


def effective_config(args) -> ServeConfig:
    """serve's defaults, then the --config file, then the flags given."""
    config = load(args.config) if args.config else ServeConfig()
    overrides = {key: getattr(args, dest) for dest, (key, _) in FLAG_KEYS.items()}
    overrides["transfer_syntaxes.accept"] = (args.prefer,) if args.prefer else None
    flags = {key: flag for key, flag in FLAG_KEYS.values()}
    return config.with_overrides(overrides, flags=flags)


def server_config(config: ServeConfig, index):
    from ..archive.query import QueryOptions
    from ..dimse import CEchoRQ, CFindRQ, CGetRQ, CMoveRQ, CStoreRQ, NActionRQ
    from ..net.association import Timeouts
    from ..net.server import ServerConfig
    from ..services.commitment import StorageCommitmentSCP, with_commitment
    from ..services.find_scp import FindSCP, with_query
    from ..services.retrieve_scp import RetrieveSCP
    from ..services.storage_scp import StorageSCP, storage_policy
    from ..services.verification import VerificationSCP

    server = config.server
    files = config.storage.data / "files"
    query_options = QueryOptions(
        retrieve_ae_title=server.ae_title, locate=lambda area, path: files / path
    )
    timeouts = Timeouts(
        acse=server.acse_timeout, dimse=server.dimse_timeout, idle=server.idle_timeout
    )

    def destination_for(ae_title: str):
        peer = config.peers.get(ae_title)
        return (peer.host, peer.port) if peer is not None else None

    retrieve = RetrieveSCP(
        index,
        ae_title=server.ae_title,
        locate=lambda area, path: files / path,
        destination_for=destination_for,
        unknown_destination_hint="add [peers.<AE>] host, port to --config",
        options_for=lambda assoc: query_options,
        timeouts=timeouts,
        pending_interval=server.pending_interval,
    )
    zero_config = ServerConfig(
        ae_title=server.ae_title,
        policy=with_commitment(with_query(storage_policy(config.transfer_syntaxes.uids))),
        handlers={
            CEchoRQ: VerificationSCP(),
            CFindRQ: FindSCP(index, lambda assoc: query_options),
            CMoveRQ: retrieve,
            CGetRQ: retrieve,
            NActionRQ: StorageCommitmentSCP(
                index,
                ae_title=server.ae_title,
                locate=lambda area, path: files / path,
                address_for=destination_for,
                timeouts=timeouts,
            ),
            CStoreRQ: StorageSCP(
                config.storage.data / "files",
                sort_prefix="",
                index=index,
                on_duplicate=config.storage.on_duplicate,
                max_dataset_size=config.storage.max_dataset_size,
            ),
        },
        max_associations=server.max_associations,
        max_pdu_length=server.max_pdu,
        timeouts=Timeouts(
            acse=server.acse_timeout, dimse=server.dimse_timeout, idle=server.idle_timeout
        ),
        require_called_ae=server.require_called_ae,
        calling_ae_titles=frozenset(server.calling_ae_titles) or None,
    )
    if not config.areas:
        return zero_config
    # [areas.<AE title>]: storage areas chosen by the called AE title, beside the default
    # area (the data folder, as above)
    from ..services.serve_areas import with_areas

    return with_areas(zero_config, config, index)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    configure_logging(args)
    try:
        config = effective_config(args)
    except NativeConfigError as exc:
        log.critical("%s", exc)
        return 1
    if args.print_config:
        sources = ["defaults", *([str(config.source)] if config.source else []), "flags"]
        print(dumps(config, comment=f"pacsbox serve: {' < '.join(sources)}"), end="")
        return 0
    (config.storage.data / "files").mkdir(parents=True, exist_ok=True)
    for peer in config.peers.values():
        log.info("known peer %s at %s:%d", peer.ae_title, peer.host, peer.port)
    if config.server.workers > 1:
        return serve_with_workers(config)
    return run_coroutine(serve(config, announce=True), server=True)


async def serve(config: ServeConfig, *, announce: bool, listen=None) -> int:
    """Open the index and serve until stopped (``announce``: print the banner once
    listening); a worker passes its ``listen`` (serve_until_stopped's)."""
    from ..net.server import Server

    index = open_index(config)
    if index is None:
        return 1
    url = config.database_url
    try:
        return await serve_until_stopped(
            Server(server_config(config, index)), config.server.host, config.server.port,
            (lambda server: banner(config, server.port, url)) if announce else _accepting,
            listen=listen,
        )  # fmt: skip
    finally:
        index.close()


def _accepting(server) -> None:
    """A worker's banner: it is ready (the parent prints the real one once all are)."""
    log.info("Accepting associations on port %d", server.port)


def open_index(config: ServeConfig):
    """The Index (its schema created or upgraded), or None once the reason is logged."""
    from ..archive import Index

    url = config.database_url
    try:
        return Index.open(url)
    except Exception as exc:
        where = "[database] url in " + str(config.source) if config.database.url else "--db"
        log.critical("Cannot open the index at %s: %s (check %s)", _safe(url), exc, where)
        return None


def serve_with_workers(config: ServeConfig) -> int:
    """`--workers N`: bind the port here, then N forked workers accept on it
    (pacsbox.cli.workers says why fork and why one shared socket)."""
    import signal

    if not hasattr(os, "fork") or not hasattr(signal, "sigwaitinfo"):  # macOS, Windows
        log.critical(
            "--workers needs fork() and sigwaitinfo(), which this system lacks (Linux has "
            "them). Run one pacsbox serve without --workers, or several on their own ports "
            "sharing a PostgreSQL index (docs/archive.md)."
        )
        return 1
    from .workers import Supervisor, listening_socket, per_worker

    server = config.server
    # Here, before any fork: the schema is created or upgraded once, and a database that
    # cannot be opened stops serve with the reason instead of a crash loop of workers. The
    # Index is closed (its engine disposed) before the first fork: no worker inherits a
    # connection.
    index = open_index(config)
    if index is None:
        return 1
    index.close()
    try:
        sock = listening_socket(server.host, server.port, listen=False)  # once all are ready
    except OSError as exc:
        log.critical(
            "Cannot listen on %s:%d: %s. Is another DICOM server using that port? "
            "Pick another port.", server.host, server.port, exc.strerror or exc,
        )  # fmt: skip
        return 1
    worker_config = replace(
        config,
        server=replace(
            server, max_associations=per_worker(server.max_associations, server.workers)
        ),
    )

    def worker(worker) -> int:
        pblog.tag_lines(f"worker {worker.number}, pid {os.getpid()}")
        return run_coroutine(
            serve(worker_config, announce=False, listen=worker.listen), server=True
        )

    def listening() -> None:
        banner(config, sock.getsockname()[1], config.database_url, workers=server.workers)

    with sock:
        return Supervisor(server.workers, sock, worker, on_listening=listening).run()


def banner(config: ServeConfig, port: int, url: str, *, workers: int = 1) -> None:
    data = config.storage.data.resolve()
    aet = config.server.ae_title
    # after `make serve` pacsbox is in .venv/bin, not on PATH: show the command that works
    exe = "pacsbox"
    if not shutil.which("pacsbox"):
        exe = min(os.path.relpath(sys.argv[0]), os.path.abspath(sys.argv[0]), key=len)
    source = f"Configuration: {config.source}\n" if config.source else ""
    processes = ""
    if workers > 1:
        from .workers import per_worker

        each = per_worker(config.server.max_associations, workers)
        processes = f"{workers} worker processes on this port, up to {each} associations each.\n"
    areas = "".join(
        f"  called AE '{area.ae_title}': {area.path} ({area.access})\n"
        for area in config.areas.values()
    )
    if areas:
        areas = f"Storage areas, by the called AE title ([areas] of the configuration):\n{areas}"
    print(
        f"pacsbox serving as AE '{aet}' on port {port} (Verification, Storage, Query/Retrieve).\n"
        f"{processes}{source}"
        f"Received instances go to {data / 'files'}, the index is {_safe(url)}\n"
        f"{areas}"
        f"Test it with:  {exe} echoscu -aec {aet} localhost {port}   "
        f"(or DCMTK: echoscu -aec {aet} localhost {port})",
        flush=True,
    )


def _safe(url: str) -> str:
    """The URL without its password, for the banner."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
