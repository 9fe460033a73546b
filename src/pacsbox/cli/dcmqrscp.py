"""`pacsbox dcmqrscp -c dcmqrscp.cfg`: DCMTK's dcmqrscp configuration, served by pacsbox.

Reads DCMTK's own configuration file (NetworkTCPPort, MaxPDUSize, MaxAssociations, HostTable,
VendorTable, AETable). The called AE title selects the storage area; a calling AE title the
area does not admit is refused as "calling AE title not recognized" (dcmqrscp says "called"),
and the log names the table entry that would admit it. Verification and storage are served
now; query and retrieve come with the archive's index.
"""

from __future__ import annotations

import sys

from ..config.dcmqrscp import ConfigError, load
from ..dimse import CEchoRQ, CStoreRQ
from ..log import log
from ..net.association import Timeouts
from ..net.server import Server, ServerConfig
from ..services.areas import AreaStorageSCP, area_admission
from ..services.storage_scp import storage_policy
from ..services.verification import VerificationSCP
from ..syntaxes import ARCHIVE_PREFERENCE
from .common import (
    DcmtkArgumentParser,
    add_general_options,
    report_failure,
    run_tool,
    serve_until_stopped,
)
from .syntax_options import add_scp_syntax_options, scp_preference


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
    p.add_argument("-s", "--single-process", "--fork", action="store_true", dest="process_model",
                   help="accepted for compatibility: associations are always served concurrently")  # fmt: skip
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
    g = p.add_argument_group("preferred network transfer syntaxes")
    add_scp_syntax_options(g, accept_all=False)
    g.set_defaults(prefer=None)  # no +x option: the archive's policy (see ARCHIVE_PREFERENCE)
    return p


def server_config(args, config) -> ServerConfig:
    return ServerConfig(
        ae_title=next(iter(config.areas), "DCMQRSCP"),
        policy=storage_policy(scp_preference(args) if args.prefer else ARCHIVE_PREFERENCE),
        handlers={CEchoRQ: VerificationSCP(), CStoreRQ: AreaStorageSCP(config)},
        max_associations=config.max_associations or 16,
        max_pdu_length=config.max_pdu or 16384,
        timeouts=Timeouts(
            acse=args.acse_timeout, dimse=args.dimse_timeout, idle=args.socket_timeout or None
        ),
        accept=area_admission(config),
    )


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
    for area in config.areas.values():
        log.info("storage area %s: %s (%s)", area.ae_title, area.path, area.access.name)
    return await serve_until_stopped(Server(server_config(args, config)), args.host, port)


def main(argv: list[str]) -> int:
    return run_tool(parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
