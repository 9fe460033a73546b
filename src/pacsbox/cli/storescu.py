"""`pacsbox storescu`: DICOM storage (C-STORE) SCU with DCMTK storescu's options.

Unlike DCMTK's storescu it proposes what the files need (as dcmsend does), sends files whose
syntax was accepted as they are on disk, and transcodes the others instead of failing.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from contextlib import aclosing, nullcontext
from pathlib import Path

from ..log import log
from ..net.association import Association
from ..net.requestor import build_rq
from ..services.storage_scu import (
    FALLBACKS,
    StoreResult,
    batches,
    content_proposals,
    find_files,
    scan,
    store_files,
)
from ..sopclasses import storage_sop_classes
from ..syntaxes import SCU_PROPOSALS, storescu_contexts
from ..ul.negotiation import MAX_CONTEXTS
from .common import (
    DcmtkArgumentParser,
    add_general_options,
    add_network_options,
    network_timeouts,
    pdu_size,
    run_tool,
)
from .syntax_options import add_scu_syntax_options


def parser() -> DcmtkArgumentParser:
    p = DcmtkArgumentParser("storescu", "DICOM storage (C-STORE) SCU")
    p.add_argument("peer", help="hostname of DICOM peer")
    p.add_argument("port", type=int, help="tcp/ip port number of peer")
    p.add_argument(
        "files", nargs="+", metavar="dcmfile-in", help="DICOM file or directory to be transmitted"
    )
    add_general_options(p)
    g = p.add_argument_group("input files")
    g.add_argument("+sd", "--scan-directories", action="store_true",
                   help="scan directories for input files (always on)")  # fmt: skip
    g.add_argument("+r", "--recurse", action="store_true", default=True,
                   help="recurse within directories (default)")  # fmt: skip
    g.add_argument("-r", "--no-recurse", dest="recurse", action="store_false",
                   help="do not recurse within directories")  # fmt: skip
    add_network_options(p, aet="STORESCU")
    g = p.add_argument_group("presentation contexts")
    add_scu_syntax_options(g)
    g.add_argument("-R", "--required", action="store_true",
                   help="propose only required presentation contexts (the default here)")  # fmt: skip
    g.add_argument("--propose-all", action="store_true",
                   help="also propose every other storage SOP class, as DCMTK's storescu does")  # fmt: skip
    g.add_argument("+C", "--combine", action="store_true",
                   help="combine the -x? syntaxes in one presentation context")  # fmt: skip
    g.add_argument("--no-transcode", action="store_true",
                   help="never convert a file to another transfer syntax; fail it instead")  # fmt: skip
    g = p.add_argument_group("other options")
    g.add_argument(
        "--max-send-pdu", type=pdu_size, metavar="BYTES", help="restrict max send pdu to n bytes"
    )
    g.add_argument("--repeat", type=int, default=1, metavar="N", help="send the files n times")
    g.add_argument("--abort", action="store_true", help="abort association instead of releasing it")
    g.add_argument("-nh", "--no-halt", action="store_true",
                   help="do not halt if unsuccessful store encountered (the default here)")  # fmt: skip
    g.add_argument("--halt", action="store_true", help="stop at the first file that fails")
    g.add_argument("--report", metavar="FILE", help="write a JSON report with one entry per file")
    return p


def proposals_for(args, infos) -> list[tuple[str, tuple[str, ...]]]:
    extra = storescu_contexts(args.propose, combine=args.combine) if args.propose else ()
    proposals = content_proposals(infos, extra)
    if args.propose_all:
        # DCMTK storescu's old habit: everything it might send, within one association's room
        wanted = SCU_PROPOSALS[args.propose] if args.propose else FALLBACKS
        have = {p[0] for p in proposals}
        for sop_class in sorted(storage_sop_classes() - have):
            if len(proposals) >= MAX_CONTEXTS:
                break
            proposals.append((sop_class, wanted))
    return proposals


async def run(args) -> int:
    paths = list(find_files(args.files, recurse=args.recurse))
    log.info("checking input files ...")
    infos, results = scan(paths)
    if not infos:
        log.critical("No DICOM file to send among %d input file(s)", len(paths))
        return 1
    timeouts = network_timeouts(args)
    progress = _progress(len(infos) * args.repeat)
    halted = False
    with progress or nullcontext():
        task = progress.add_task("Sending", total=len(infos) * args.repeat) if progress else None
        for proposal, files in batches(infos, proposals_for(args, infos)):
            rq = build_rq(
                calling_ae=args.aetitle,
                called_ae=args.call,
                proposals=proposal,
                max_pdu_length=args.max_pdu,
            )
            assoc = await Association.connect(args.peer, args.port, rq, timeouts=timeouts)
            if args.max_send_pdu:
                assoc.limit_send_pdu(args.max_send_pdu)
            try:
                sending = store_files(
                    assoc,
                    files * args.repeat,
                    allow_transcode=not args.no_transcode,
                    send_ahead=True,
                )
                async with aclosing(sending):
                    async for result in sending:
                        results.append(result)
                        if progress:
                            progress.advance(task)
                        if args.halt and not result.ok:
                            halted = True
                            break
            except BaseException:
                assoc.abort()
                raise
            if args.abort:
                log.info("Aborting Association")
                assoc.abort()
            else:
                await assoc.release()
            if halted:
                break
    _summary(results, args)
    if args.report:
        import json  # only for --report: every run would pay its import

        Path(args.report).write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    return 0 if all(r.ok or r.category == "skipped" for r in results) and not halted else 1


def _progress(total: int):
    """A progress bar on a terminal when there is more than one file and no -v/-d log."""
    if total < 2 or not sys.stderr.isatty() or log.isEnabledFor(logging.INFO):
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), transient=True,
    )  # fmt: skip


def _summary(results: list[StoreResult], args) -> None:
    if args.quiet:
        return
    answered = Counter(r.category for r in results if r.status is not None)
    sent = sum(answered.values())
    parts = [f"{answered[c]} {c}" for c in ("success", "warning", "failed") if answered[c]]
    line = f"storescu: {sent} of {len(results)} file(s) sent: {', '.join(parts) or 'none'}"
    not_sent = Counter(r.category for r in results if r.status is None)
    if not_sent["failed"]:  # read, but not sent: no agreed context, cut short, cancelled
        line += f"; {not_sent['failed']} could not be sent"
    if not_sent["skipped"]:
        line += f"; {not_sent['skipped']} skipped (not DICOM)"
    print(line, file=sys.stderr)
    reasons = Counter(r.error.split("\n")[0] for r in results if not r.ok and r.error)
    for reason, n in reasons.most_common():
        print(f"  {n} x {reason}", file=sys.stderr)


def main(argv: list[str]) -> int:
    return run_tool(parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
