"""`pacsbox echoscu`: DICOM verification (C-ECHO) SCU, with DCMTK echoscu's options."""

from __future__ import annotations

import sys

from ..log import log
from ..net.association import Association
from ..net.requestor import build_rq
from ..services.verification import VERIFICATION, echo
from ..syntaxes import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    RLELossless,
)
from .common import (
    DcmtkArgumentParser,
    add_general_options,
    add_network_options,
    network_timeouts,
    run_tool,
)

# -pts n proposes the first n of these (echoscu's own order starts with the default syntax)
TRANSFER_SYNTAXES = [
    str(uid)
    for uid in (
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
        JPEGBaseline8Bit,
        JPEGLosslessSV1,
        JPEG2000Lossless,
        RLELossless,
    )
]


def parser() -> DcmtkArgumentParser:
    p = DcmtkArgumentParser("echoscu", "DICOM verification (C-ECHO) SCU")
    p.add_argument("peer", help="hostname of DICOM peer")
    p.add_argument("port", type=int, help="tcp/ip port number of peer")
    add_general_options(p)
    add_network_options(p, aet="ECHOSCU")
    g = p.add_argument_group("association negotiation debugging")
    g.add_argument("-pts", "--propose-ts", type=int, choices=range(1, len(TRANSFER_SYNTAXES) + 1),
                   metavar="N", default=1, help="propose n transfer syntaxes")  # fmt: skip
    g.add_argument("-ppc", "--propose-pc", type=int, choices=range(1, 129), metavar="N", default=1,
                   help="propose n presentation contexts (1..128)")  # fmt: skip
    g.add_argument("--repeat", type=int, default=1, metavar="N", help="repeat n times")
    g.add_argument("--abort", action="store_true", help="abort association instead of releasing it")
    return p


async def run(args) -> int:
    syntaxes = TRANSFER_SYNTAXES[: args.propose_ts]
    rq = build_rq(
        calling_ae=args.aetitle,
        called_ae=args.call,
        proposals=[(VERIFICATION, syntaxes)] * args.propose_pc,
        max_pdu_length=args.max_pdu,
    )
    timeouts = network_timeouts(args)
    assoc = await Association.connect(args.peer, args.port, rq, timeouts=timeouts)
    failed = 0
    try:
        for _ in range(args.repeat):
            status = await echo(assoc)
            failed += status != 0
    except BaseException:
        assoc.abort()
        raise
    if args.abort:
        log.info("Aborting Association")
        assoc.abort()
    else:
        await assoc.release()
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    return run_tool(parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
