"""`pacsbox storescp`: DICOM storage (C-STORE) SCP with DCMTK storescp's options.

Data sets stream to disk as they arrive (memory does not grow with their size); several
associations are served at once (DCMTK's --fork is neither needed nor used).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..dimse import CEchoRQ, CStoreRQ
from ..log import log
from ..net.association import Timeouts
from ..net.server import Server, ServerConfig
from ..services.storage_scp import StorageSCP, storage_policy
from ..services.verification import VerificationSCP
from .common import (
    SCP_MAX_PDU,
    DcmtkArgumentParser,
    add_dcmtk_only_options,
    add_general_options,
    pdu_size,
    run_tool,
    serve_until_stopped,
)
from .syntax_options import add_scp_syntax_options, scp_preference


def parser() -> DcmtkArgumentParser:
    p = DcmtkArgumentParser("storescp", "DICOM storage (C-STORE) SCP")
    p.add_argument("port", type=int, help="tcp/ip port number to listen on")
    add_general_options(p)
    g = p.add_argument_group("network options")
    g.add_argument(
        "-aet", "--aetitle", default="STORESCP", help="set my AE title (default: STORESCP)"
    )
    g.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    g.add_argument(
        "-pm",
        "--promiscuous",
        action="store_true",
        help="promiscuous mode, accept unknown SOP classes",
    )
    add_scp_syntax_options(g)
    g.add_argument(
        "-ts",
        "--socket-timeout",
        type=int,
        default=60,
        help="timeout for network socket (default: 60)",
    )
    g.add_argument(
        "-ta",
        "--acse-timeout",
        type=int,
        default=30,
        help="timeout for ACSE messages (default: 30)",
    )
    g.add_argument(
        "-td", "--dimse-timeout", type=int, help="timeout for DIMSE messages (default: unlimited)"
    )
    g.add_argument(
        "-pdu",
        "--max-pdu",
        type=pdu_size,
        default=SCP_MAX_PDU,
        help=f"set max receive pdu (4096..131072, default: {SCP_MAX_PDU}; DCMTK's is 16384)",
    )
    g.add_argument(
        "--max-associations", type=int, default=32, help="simultaneous associations (default: 32)"
    )
    g.add_argument("--single-process", "--fork", action="store_true", dest="process_model",
                   help="accepted for compatibility: associations are always served concurrently")  # fmt: skip
    g = p.add_argument_group("output options")
    g.add_argument(
        "-od",
        "--output-directory",
        default=".",
        help='write received objects to existing directory (default: ".")',
    )
    g.add_argument("-su", "--sort-on-study-uid", metavar="PREFIX",
                   help="sort studies into subdirectories PREFIX_<Study Instance UID>")  # fmt: skip
    g.add_argument(
        "--ignore", action="store_true", help="ignore store data, receive but do not store"
    )
    add_dcmtk_only_options(p, _DCMTK_ONLY, _DCMTK_ALWAYS)
    return p


_WRITES_AS_RECEIVED = (
    "; pacsbox storescp writes each data set as it was received (DCMTK's +B), in its "
    "transfer syntax"
)
_SCRIPT = "; in Python, pacsbox.StorageReceiver(folder, port=..., on_instance=f) calls f for each"
# DCMTK storescp's options that pacsbox storescp does not have: (flags, values, hint)
_DCMTK_ONLY = [
    (("-xf", "--config-file"), 2, "; the transfer syntax options (+x...) choose what is accepted"),
    (("-lc", "--log-config"), 1, "; use -v, -d or -ll"),
    (("+v", "--verbose-pc"), 0, ""),
    (("-ac", "--access-full"), 0, ""),
    (("+ac", "--access-control"), 0, "; pacsbox serve's [peers] and dcmqrscp's AETable do"),
    (("-id", "--inetd"), 0, ""),
    (("--refuse",), 0, ""), (("--reject",), 0, ""),
    (("--sleep-after",), 1, ""), (("--sleep-during",), 1, ""),
    (("--abort-after",), 0, ""), (("--abort-during",), 0, ""),
    (("-up", "--uid-padding"), 0, ""),
    (("+tls", "--enable-tls"), 2, "; TLS is not supported (use a TLS proxy such as stunnel)"),
    (("-B", "--normal"), 0, _WRITES_AS_RECEIVED),
    (("-F", "--write-dataset"), 0, "; it writes DICOM files with their meta information"),
    (("+te", "--write-xfer-little"), 0, _WRITES_AS_RECEIVED),
    (("+tb", "--write-xfer-big"), 0, _WRITES_AS_RECEIVED),
    (("+ti", "--write-xfer-implicit"), 0, _WRITES_AS_RECEIVED),
    (("+td", "--write-xfer-deflated"), 0, _WRITES_AS_RECEIVED),
    (("+u", "--enable-new-vr"), 0, _WRITES_AS_RECEIVED),
    (("-u", "--disable-new-vr"), 0, _WRITES_AS_RECEIVED),
    (("+g=", "--group-length-recalc"), 0, _WRITES_AS_RECEIVED),
    (("+g", "--group-length-create"), 0, _WRITES_AS_RECEIVED),
    (("-g", "--group-length-remove"), 0, _WRITES_AS_RECEIVED),
    (("+e", "--length-explicit"), 0, _WRITES_AS_RECEIVED),
    (("-e", "--length-undefined"), 0, _WRITES_AS_RECEIVED),
    (("-p", "--padding-off"), 0, _WRITES_AS_RECEIVED),
    (("+p", "--padding-create"), 2, _WRITES_AS_RECEIVED),
    (("-uc", "--retain-un"), 0, _WRITES_AS_RECEIVED),
    (("+uc", "--convert-un"), 0, _WRITES_AS_RECEIVED),
    (("+cl", "--compression-level"), 1, _WRITES_AS_RECEIVED),
    (("-ss", "--sort-conc-studies"), 1, "; -su PREFIX sorts by Study Instance UID"),
    (("-sp", "--sort-on-patientname"), 0, "; -su PREFIX sorts by Study Instance UID"),
    (("+uf", "--unique-filenames"), 0, "; files are named <modality>.<SOP Instance UID>"),
    (("-tn", "--timenames"), 0, "; files are named <modality>.<SOP Instance UID>"),
    (("-fe", "--filename-extension"), 1, "; files are named <modality>.<SOP Instance UID>"),
    (("-xcr", "--exec-on-reception"), 1, _SCRIPT),
    (("-xcs", "--exec-on-eostudy"), 1, _SCRIPT),
    (("-rns", "--rename-on-eostudy"), 0, ""),
    (("-tos", "--eostudy-timeout"), 1, ""),
    (("-xs", "--exec-sync"), 0, _SCRIPT),
]  # fmt: skip
# ... and those that are what it always does
_DCMTK_ALWAYS = [
    (("-dhl", "--disable-host-lookup"), "pacsbox never looks up the peer's host name"),
    (("+B", "--bit-preserving"), "data sets are always written as received"),
    (("+t=", "--write-xfer-same"), "data sets are always written in the received syntax"),
    (("+F", "--write-file"), "data sets are always written as DICOM files"),
    (("-uf", "--default-filenames"), "files are named <modality>.<SOP Instance UID>"),
]


def server_config(args) -> ServerConfig:
    return ServerConfig(
        ae_title=args.aetitle,
        policy=storage_policy(scp_preference(args), promiscuous=args.promiscuous),
        handlers={
            CEchoRQ: VerificationSCP(),
            CStoreRQ: StorageSCP(
                args.output_directory, ignore=args.ignore, sort_prefix=args.sort_on_study_uid
            ),
        },
        max_associations=args.max_associations,
        max_pdu_length=args.max_pdu,
        timeouts=Timeouts(
            acse=args.acse_timeout, dimse=args.dimse_timeout, idle=args.socket_timeout or None
        ),
    )


async def run(args) -> int:
    if not Path(args.output_directory).is_dir():
        log.critical(
            "specified output directory does not exist: %s (create it, or pass another with -od)",
            args.output_directory,
        )
        return 1
    return await serve_until_stopped(Server(server_config(args)), args.host, args.port)


def main(argv: list[str]) -> int:
    return run_tool(parser(), run, argv, server=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
