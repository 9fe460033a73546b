"""`pacsbox dcmqrscp -c dcmqrscp.cfg`: DCMTK's dcmqrscp configuration, served by pacsbox.

Reads DCMTK's own configuration file (NetworkTCPPort, MaxPDUSize, MaxAssociations, HostTable,
VendorTable, AETable). The called AE title selects the storage area; a calling AE title the
area does not admit is refused as "calling AE title not recognized" (dcmqrscp says "called"),
and the log names the table entry that would admit it. Verification, storage and C-FIND are
served now (a query sees the called area's instances only; W areas refuse it); retrieve
comes next.

Every stored instance goes into the archive's index (``--db``; by default the SQLite file
``pacsbox-index.sqlite`` next to the configuration file), recorded with its area's AE title
and its path relative to that area's directory, committed before the C-STORE response. The
AETable quotas hold (services/quota.py), and ``--on-duplicate`` decides what a re-sent SOP
Instance UID does. A restart finds everything again: files and index rows stay.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..config.dcmqrscp import ConfigError, load
from ..dimse import CEchoRQ, CFindRQ, CGetRQ, CMoveRQ, CStoreRQ, NActionRQ
from ..log import log
from ..net.association import Timeouts
from ..net.server import Server, ServerConfig
from ..services.areas import AreaService, AreaStorageSCP, access_refusal, area_admission
from ..services.commitment import StorageCommitmentSCP, with_commitment
from ..services.find_scp import FindSCP, with_query
from ..services.quota import ON_MAX_STUDIES
from ..services.retrieve_scp import RetrieveSCP
from ..services.storage_scp import ON_DUPLICATE, storage_policy
from ..services.verification import VerificationSCP
from ..syntaxes import ARCHIVE_PREFERENCE, storescu_contexts
from .common import (
    DcmtkArgumentParser,
    add_general_options,
    report_failure,
    run_tool,
    serve_until_stopped,
)
from .syntax_options import add_scp_syntax_options, add_scu_syntax_options, scp_preference


def parser() -> DcmtkArgumentParser:
    p = DcmtkArgumentParser("dcmqrscp", "DICOM image archive (central test node), DCMTK's config")
    p.add_argument(
        "port",
        type=int,
        nargs="?",
        help="tcp/ip port number to listen on (default: the config's NetworkTCPPort)",
    )
    add_general_options(p)
    p.add_argument(
        "-c",
        "--config",
        default="dcmqrscp.cfg",
        help="use configuration file f (default: dcmqrscp.cfg)",
    )
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    p.add_argument("-s", "--single-process", action="store_true", dest="process_model",
                   help="accepted: one process serves every association, concurrently")  # fmt: skip
    p.add_argument("--fork", action="store_true", dest="process_model",
                   help="accepted: associations are served concurrently without a process "
                        "each (pacsbox serve --workers N runs N processes)")  # fmt: skip
    p.add_argument(
        "-ta",
        "--acse-timeout",
        type=int,
        default=30,
        help="timeout for ACSE messages (default: 30)",
    )
    p.add_argument(
        "-td", "--dimse-timeout", type=int, help="timeout for DIMSE messages (default: unlimited)"
    )
    p.add_argument(
        "-ts",
        "--socket-timeout",
        type=int,
        default=60,
        help="timeout for network socket (default: 60)",
    )
    a = p.add_argument_group("archive (pacsbox)")
    a.add_argument(
        "--db",
        metavar="URL",
        help="index database: sqlite:///path/index.sqlite or postgresql://user@host/db "
        "(default: pacsbox-index.sqlite in the configuration file's directory)",
    )
    a.add_argument(
        "--on-duplicate",
        choices=ON_DUPLICATE,
        default="replace",
        help="an instance whose SOP Instance UID is stored already: replace the stored one "
        "(default, as dcmqrscp), keep the stored one and answer success, or refuse it (0x0111)",
    )
    a.add_argument(
        "--on-max-studies",
        choices=ON_MAX_STUDIES,
        default="delete-oldest",
        help="a new study for an area holding its maxStudies: delete the least recently "
        "received study (default, as dcmqrscp) or refuse the new one (0xA700)",
    )
    p.add_argument("--pending-interval", type=float, default=0.0, metavar="SECONDS",
                   help="C-MOVE/C-GET: at most one pending response this often "
                        "(default 0: after every sub-operation but the last, whose counters "
                        "the final response gives; dcmqrscp sends that one too)")  # fmt: skip
    g = p.add_argument_group("preferred network transfer syntaxes")
    add_scp_syntax_options(g, accept_all=False)
    g.set_defaults(prefer=None)  # no +x option: the archive's policy (see ARCHIVE_PREFERENCE)
    g = p.add_argument_group(
        "proposed transmission transfer syntaxes (C-MOVE/C-GET sub-operations; each file's own "
        "syntax and the uncompressed ones are always proposed)"
    )
    add_scu_syntax_options(g)
    return p


def server_config(args, config, index=None) -> ServerConfig:
    store = AreaStorageSCP(
        config,
        index=index,
        on_duplicate=args.on_duplicate,
        on_max_studies=args.on_max_studies,
    )
    handlers = {CEchoRQ: VerificationSCP(), CStoreRQ: store}
    if index is not None:
        handlers[CFindRQ] = FindSCP(index, _query_options(config, AreaService.QUERY, store.locate))
        retrieve = RetrieveSCP(
            index,
            ae_title=next(iter(config.areas), "DCMQRSCP"),
            locate=store.locate,
            destination_for=_destination(config),
            unknown_destination_hint="add it to the HostTable of dcmqrscp.cfg",
            options_for=_query_options(config, AreaService.RETRIEVE, store.locate),
            timeouts=Timeouts(acse=args.acse_timeout, dimse=args.dimse_timeout),
            max_pdu=config.max_pdu or 16384,
            extra_proposals=tuple(storescu_contexts(args.propose)) if args.propose else (),
            pending_interval=args.pending_interval,
        )
        handlers[CMoveRQ] = handlers[CGetRQ] = retrieve
        handlers[NActionRQ] = StorageCommitmentSCP(
            index,
            ae_title=next(iter(config.areas), "DCMQRSCP"),
            locate=store.locate,
            address_for=_destination(config),
            timeouts=Timeouts(acse=args.acse_timeout, dimse=args.dimse_timeout or 60),
            area_of=lambda assoc: assoc.rq.called_ae_title if assoc.rq else None,
        )
    return ServerConfig(
        ae_title=next(iter(config.areas), "DCMQRSCP"),
        policy=with_commitment(
            with_query(storage_policy(scp_preference(args) if args.prefer else ARCHIVE_PREFERENCE))
        ),
        handlers=handlers,
        max_associations=config.max_associations or 16,
        max_pdu_length=config.max_pdu or 16384,
        timeouts=Timeouts(
            acse=args.acse_timeout, dimse=args.dimse_timeout, idle=args.socket_timeout or None
        ),
        accept=area_admission(config),
    )


def _destination(config):
    def destination_for(ae_title: str):
        host = config.peer(ae_title)
        return (host.hostname, host.port) if host is not None else None

    return destination_for


def _query_options(config, service, locate):
    """The called AE title's storage area: its instances only, its AE title as the
    RetrieveAETitle; a W area refuses (dcmqrscp would answer). ``locate``: the storage
    SCP's, for QueryOptions."""
    from ..archive.query import QueryOptions

    def options_for(assoc):
        area = config.area_for(assoc.rq.called_ae_title) if assoc.rq else None
        refusal = access_refusal(area, service)
        if refusal is not None:
            return refusal
        return QueryOptions(retrieve_ae_title=area.ae_title, area=area.ae_title, locate=locate)

    return options_for


async def run(args) -> int:
    try:
        config = load(args.config)
    except OSError as exc:
        log.critical(
            "cannot read configuration file %s: %s (pass another with -c)",
            args.config,
            exc.strerror or exc,
        )
        return 1
    except ConfigError as exc:
        report_failure(exc)
        return 1
    for warning in config.warnings:
        log.warning("%s", warning)
    port = args.port or config.port or 104
    index = open_index(args)
    if index is None:
        return 1
    try:
        for area in config.areas.values():
            log.info(
                "storage area %s: %s (%s, at most %d studies, %s each)",
                area.ae_title, area.path, area.access.name, area.max_studies,
                "any size" if area.max_bytes_per_study < 0 else
                f"{area.max_bytes_per_study} bytes",
            )  # fmt: skip
        server = Server(server_config(args, config, index))
        return await serve_until_stopped(server, args.host, port)
    finally:
        index.close()


def index_url(args) -> str:
    """--db, or the SQLite file pacsbox-index.sqlite next to the configuration file."""
    return args.db or f"sqlite:///{Path(args.config).resolve().parent / 'pacsbox-index.sqlite'}"


def open_index(args):
    """The archive's index, or None after a one-line error that says to pass --db."""
    from ..archive import Index

    url = index_url(args)
    shown = _without_password(url)
    try:
        index = Index.open(url)
    except Exception as exc:
        # the driver's own words (ArchiveIndexError's advice is about a database server)
        cause = getattr(exc.__cause__, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        advice = (
            "Pass --db sqlite:///a/writable/path/index.sqlite or --db postgresql://user@host/db"
        )
        log.critical("Cannot open the index %s: %s%s", shown, reason,
                     "" if "--db" in reason else f". {advice}")  # fmt: skip
        return None
    log.info("index: %s", shown)
    return index


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def main(argv: list[str]) -> int:
    return run_tool(parser(), run, argv, server=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
