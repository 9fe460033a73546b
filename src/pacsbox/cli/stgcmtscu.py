"""`pacsbox stgcmtscu`: ask a PACS to commit to keeping instances (Storage Commitment Push
Model SCU, PS3.4 Annex J), which DCMTK's tools lack.

    pacsbox stgcmtscu -aec PACSBOX pacs 11112 study/          # report on this association
    pacsbox stgcmtscu -aec PACSBOX --port 11113 pacs 11112 study/   # report on a new one

The files are read for their SOP Class and Instance UIDs only. Without ``--port`` the report
is awaited on the requesting association; with it, the association is released once the
N-ACTION is answered and the report comes on a new association the PACS opens to our port,
which it must know: our AE title (-aet) with this host and port in its configuration.
The exit status is 0 only when every instance was committed.
"""

from __future__ import annotations

import sys

from ..log import log
from .common import (
    DcmtkArgumentParser,
    add_general_options,
    add_network_options,
    network_timeouts,
    run_tool,
)


def parser() -> DcmtkArgumentParser:
    p = DcmtkArgumentParser("stgcmtscu", "DICOM storage commitment (N-ACTION) SCU")
    p.add_argument("peer", help="hostname of DICOM peer")
    p.add_argument("port", type=int, help="tcp/ip port number of peer")
    p.add_argument("files", nargs="+", metavar="dcmfile-in", help="DICOM files or folders")
    add_general_options(p)
    add_network_options(p, aet="STGCMTSCU")
    g = p.add_argument_group("storage commitment")
    g.add_argument("+P", "--port-report", "--port-listen", dest="listen", type=int, metavar="N",
                   help="release after the N-ACTION and receive the report on a new "
                        "association, listening on this port")  # fmt: skip
    g.add_argument("--listen-host", default="0.0.0.0", help="address to listen on with +P")
    g.add_argument("--report-timeout", type=float, default=60, metavar="S",
                   help="seconds to wait for the report (default 60)")  # fmt: skip
    g.add_argument("+sd", "--scan-directories", action="store_true", help="accepted (default)")
    g.add_argument("+r", "--recurse", action="store_true", help="recurse within directories")
    return p


async def run(args) -> int:
    from ..dimse import NEventReportRQ
    from ..net.association import Association
    from ..net.requestor import build_rq
    from ..services.commitment import (
        FAILURE_REASONS,
        STORAGE_COMMITMENT,
        CommitmentReports,
        report_listener,
        request_commitment,
    )
    from ..services.storage_scu import find_files, scan
    from ..syntaxes import UNCOMPRESSED

    infos, skipped = scan(find_files(args.files, recurse=args.recurse))
    if not infos:
        log.critical("No DICOM file among the input (%d skipped)", len(skipped))
        return 1
    references = list(dict.fromkeys((i.sop_class_uid, i.sop_instance_uid) for i in infos))
    timeouts = network_timeouts(args)
    reports = CommitmentReports()
    listener = None
    if args.listen is not None:
        listener = report_listener(args.aetitle, reports, timeouts)
        await listener.start(args.listen_host, args.listen)
        log.info("Listening for the report on port %d", listener.port)
    rq = build_rq(
        calling_ae=args.aetitle,
        called_ae=args.call,
        proposals=[(STORAGE_COMMITMENT, UNCOMPRESSED)],
        max_pdu_length=args.max_pdu,
    )
    try:
        assoc = await Association.connect(
            args.peer, args.port, rq, timeouts=timeouts, handlers={NEventReportRQ: reports}
        )
        try:
            result = await request_commitment(
                assoc, references, reports,
                wait_on_association=listener is None, timeout=args.report_timeout,
            )  # fmt: skip
        finally:
            if not assoc.closed.done():
                await assoc.release()
    finally:
        if listener is not None:
            await listener.close()
    if not args.quiet:
        where = "same" if result.same_association else "a new"
        print(
            f"stgcmtscu: transaction {result.transaction_uid}: {len(result.committed)} of "
            f"{len(references)} instance(s) committed (report on {where} association)",
            file=sys.stderr,
        )
        for _, sop_instance, reason in result.failed:
            meaning = FAILURE_REASONS.get(reason, "unknown reason")
            print(f"  not committed: {sop_instance}: 0x{reason:04X} {meaning}", file=sys.stderr)
    missing = {r[1] for r in references} - {c[1] for c in result.committed}
    return 0 if not result.failed and not missing else 1


def main(argv: list[str]) -> int:
    return run_tool(parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
