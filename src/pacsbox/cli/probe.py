"""`pacsbox probe`: which storage SOP classes and transfer syntaxes a peer accepts.

Proposes one presentation context per (SOP class, transfer syntax), over as many
associations as 128 contexts each need, reads the A-ASSOCIATE-ACs and releases: nothing is
sent. The answer is a table (or JSON with --json).
"""

from __future__ import annotations

import json
import sys

from ..net.association import Association, Timeouts
from ..net.requestor import build_rq
from ..services.verification import VERIFICATION
from ..sopclasses import storage_sop_classes
from ..syntaxes import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)
from ..uids import uid_description, uid_name
from ..ul.negotiation import MAX_CONTEXTS
from .common import (
    DcmtkArgumentParser,
    add_general_options,
    add_network_options,
    run_tool,
)

PROBED_SYNTAXES = [
    str(ts)
    for ts in (
        ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1,
        JPEGLSLossless, JPEG2000Lossless, JPEG2000, RLELossless,
    )
]  # fmt: skip


def parser() -> DcmtkArgumentParser:
    p = DcmtkArgumentParser(
        "probe", "list the storage SOP classes and transfer syntaxes a peer accepts"
    )
    p.add_argument("peer", help="hostname of DICOM peer")
    p.add_argument("port", type=int, help="tcp/ip port number of peer")
    add_general_options(p)
    add_network_options(p, aet="PROBESCU")
    p.add_argument(
        "--sop-class", action="append", metavar="UID", help="probe only these SOP classes"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


async def probe(args) -> dict[str, list[str]]:
    classes = args.sop_class or sorted(storage_sop_classes() | {VERIFICATION})
    pairs = [(sop, ts) for sop in classes for ts in PROBED_SYNTAXES]
    timeouts = Timeouts(
        connect=args.timeout, acse=args.acse_timeout, idle=args.socket_timeout or None
    )
    accepted: dict[str, list[str]] = {sop: [] for sop in classes}
    for start in range(0, len(pairs), MAX_CONTEXTS):
        chunk = pairs[start : start + MAX_CONTEXTS]
        rq = build_rq(
            calling_ae=args.aetitle, called_ae=args.call,
            proposals=[(sop, [ts]) for sop, ts in chunk], max_pdu_length=args.max_pdu,
        )  # fmt: skip
        assoc = await Association.connect(
            args.peer, args.port, rq, timeouts=timeouts, require_context=False
        )
        for context in assoc.contexts.values():
            accepted[context.abstract_syntax].append(context.transfer_syntax)
        await assoc.release()
    return accepted


def show(accepted: dict[str, list[str]], as_json: bool) -> None:
    if as_json:
        print(json.dumps({sop: tss for sop, tss in accepted.items() if tss}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Accepted presentation contexts")
    table.add_column("SOP class")
    table.add_column("transfer syntaxes accepted")
    for sop, tss in accepted.items():
        if tss:
            table.add_row(uid_description(sop), ", ".join(uid_name(ts).lstrip("=") for ts in tss))
    Console().print(table)
    refused = sum(1 for tss in accepted.values() if not tss)
    print(f"{len(accepted) - refused} SOP classes accepted, {refused} refused.")


async def run(args) -> int:
    show(await probe(args), args.json)
    return 0


def main(argv: list[str]) -> int:
    return run_tool(parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
