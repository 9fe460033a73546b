"""`pacsbox getscu`: DICOM retrieve (C-GET) SCU with DCMTK getscu's options.

The instances come back on the C-GET association itself: it proposes the GET SOP class of
the model and the storage SOP classes (the common ones first, up to 127; or those named
with --storage-class) with SCP role selection, and writes what arrives as DCMTK does
(``CT.<SOPInstanceUID>`` in ``-od``). The +x options choose the transfer syntaxes proposed
for those storage contexts (DCMTK's "preferred storage transfer syntaxes").
"""

from __future__ import annotations

import sys

from ..dimse import CStoreRQ
from ..errors import PacsboxError
from ..log import log
from ..net.association import Association
from ..net.requestor import build_rq
from ..services.retrieve_scu import RetrieveError, get, get_negotiation
from .common import network_timeouts, run_tool
from .retrieve_common import (
    INTERRUPTED,
    Cancelling,
    ProgressDisplay,
    RetrieveArgumentParser,
    add_retrieve_options,
    check_output_directory,
    identifiers,
    summary,
)
from .syntax_options import add_scp_syntax_options, add_scu_syntax_options, scp_preference


def parser() -> RetrieveArgumentParser:
    p = RetrieveArgumentParser("getscu", "DICOM retrieve (C-GET) SCU")
    add_retrieve_options(p, aet="GETSCU")
    g = p.add_argument_group("preferred storage transfer syntaxes (incoming associations)")
    add_scp_syntax_options(g, accept_all=False)  # as DCMTK 3.6.7's getscu
    g = p.add_argument_group("proposed retrieve transfer syntaxes (outgoing associations)")
    add_scu_syntax_options(g, storage=False)
    g = p.add_argument_group("storage SOP classes")
    g.add_argument("--storage-class", action="append", default=[], metavar="UID",
                   help="propose only this storage SOP class (UID or keyword such as "
                        "CTImageStorage; repeat for more; default: the common ones first, "
                        "up to 127)")  # fmt: skip
    return p


def storage_classes(names: list[str]) -> list[str] | None:
    if not names:
        return None
    from pydicom.uid import UID

    from ..sopclasses import is_storage

    classes = []
    for name in names:
        uid = name
        if not name[:1].isdigit():
            import pydicom.uid as uids

            found = getattr(uids, name, None)
            if not isinstance(found, UID):
                raise PacsboxError(
                    f"--storage-class {name}: not a SOP class UID nor a keyword pydicom knows "
                    "(e.g. CTImageStorage or 1.2.840.10008.5.1.4.1.1.2)"
                )
            uid = str(found)
        if not is_storage(uid):
            log.warning(
                "--storage-class %s is not a storage SOP class we know; proposed anyway", uid
            )
        classes.append(uid)
    return classes


async def run(args) -> int:
    from ..services.storage_scp import StorageSCP
    from ..syntaxes import SCU_PROPOSALS

    if not check_output_directory(args):
        return 1
    requests = identifiers(args)
    proposals, roles = get_negotiation(
        args.model,
        get_syntaxes=SCU_PROPOSALS[args.propose],
        store_syntaxes=scp_preference(args),
        storage_classes=storage_classes(args.storage_class),
    )
    rq = build_rq(
        calling_ae=args.aetitle,
        called_ae=args.call,
        proposals=proposals,
        max_pdu_length=args.max_pdu,
        role_selections=roles,
    )
    timeouts = network_timeouts(args)
    received = [0]
    scp = StorageSCP(
        args.output_directory,
        ignore=args.ignore,
        on_stored=lambda _: received.__setitem__(0, received[0] + 1),
    )
    display = ProgressDisplay("Retrieving (C-GET)")
    failed = False
    last = None
    try:
        with display, Cancelling(args.cancel) as cancelling:
            for _ in range(args.repeat):
                if cancelling.interrupted:
                    break
                assoc = await Association.connect(
                    args.peer, args.port, rq, timeouts=timeouts, handlers={CStoreRQ: scp}
                )
                try:
                    for name, identifier in requests:
                        if name is not None:
                            log.info("Sending query file: %s", name)
                        if cancelling.interrupted:
                            break
                        on_progress, cancel = cancelling.request(display)
                        try:
                            last = await get(
                                assoc,
                                args.model,
                                identifier,
                                on_progress=on_progress,
                                cancel=cancel,
                            )
                        except RetrieveError as exc:
                            last = exc.result
                            failed = True
                            log.critical("%s", exc)
                        cancelling.finished()
                        display.finish(last)
                except BaseException:
                    assoc.abort()
                    raise
                if args.abort:
                    log.info("Aborting Association")
                    assoc.abort()
                else:
                    await assoc.release()
    finally:
        scp.close()
    if not failed:  # else the F: line was the one-line reason
        summary("getscu", last, received[0], args)
    if cancelling.interrupted:  # what arrived is part of what was asked: no success
        return INTERRUPTED
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    return run_tool(parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
