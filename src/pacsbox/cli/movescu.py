"""`pacsbox movescu`: DICOM retrieve (C-MOVE) SCU with DCMTK movescu's options.

With ``+P/--port N`` it receives the instances itself, as DCMTK's movescu does: a storage
SCP listens on port N from before the C-MOVE-RQ until the PACS is done, accepts whatever
association the PACS opens for the move destination (``-aem``), and writes the files as
DCMTK does (``CT.<SOPInstanceUID>`` in ``-od``). Unlike DCMTK's movescu it also takes the
instances of a PACS that sends its final response before (or without) the C-STOREs: it
waits for the sub-associations still open, and up to the ACSE timeout (-ta) for instances
the PACS counted as sent but that have not arrived.
"""

from __future__ import annotations

import asyncio
import sys

from ..dimse import CEchoRQ, CStoreRQ
from ..log import log
from ..net.association import Association, Timeouts
from ..net.requestor import build_rq
from ..services.qr_models import SOP_CLASSES
from ..services.retrieve_scu import RetrieveError, move
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
    p = RetrieveArgumentParser("movescu", "DICOM retrieve (C-MOVE) SCU")
    add_retrieve_options(p, aet="MOVESCU")
    g = p.add_argument_group("application entity titles")
    g.add_argument("-aem", "--move", default=None, metavar="AETITLE",
                   help="set move destinat. AE title (default: my AE title, -aet; "
                        "DCMTK's movescu does so too, though its help says MOVESCU)")  # fmt: skip
    g = p.add_argument_group("preferred network transfer syntaxes (incoming associations)")
    add_scp_syntax_options(g)
    g = p.add_argument_group("proposed transmission transfer syntaxes (outgoing associations)")
    add_scu_syntax_options(g, storage=False)
    g = p.add_argument_group("port for incoming network associations")
    ports = g.add_mutually_exclusive_group()
    ports.add_argument("--no-port", dest="listen_port", action="store_const", const=None,
                       help="no port for incoming associations (default)")  # fmt: skip
    ports.add_argument("+P", "--port", dest="listen_port", type=int, metavar="N",
                       help="port number for incoming associations")  # fmt: skip
    g.add_argument("--bind", default="0.0.0.0", metavar="ADDRESS",
                   help="address the incoming port listens on (default: all, as DCMTK)")  # fmt: skip
    g = p.add_argument_group("handling of illegal datasets following 'pending' move responses")
    pending = g.add_mutually_exclusive_group()
    pending.add_argument("-pi", "--pending-ignore", action="store_true",
                         help="assume no dataset present (default; a data set is ignored)")  # fmt: skip
    pending.add_argument("-pr", "--pending-read", action="store_true",
                         help="read and ignore dataset (the same here)")  # fmt: skip
    return p


class Receiver:
    """movescu's storage SCP on --port: counts what arrives, for the progress bar and for
    knowing when the PACS is done."""

    def __init__(self, args, on_instance) -> None:
        from ..net.server import Server, ServerConfig
        from ..services.storage_scp import StorageSCP, storage_policy
        from ..services.verification import VerificationSCP
        from .common import SCP_MAX_PDU

        self.received = 0
        self._changed = asyncio.Event()
        self._on_instance = on_instance
        self.policy = storage_policy(scp_preference(args))
        self.prefer = args.prefer
        # (SOP class, proposed syntaxes) of contexts we refused: why the PACS failed to send
        self.refused: dict[str, tuple[str, ...]] = {}
        self.passed_over: set[str] = set()
        self.sub_associations = 0
        self.server = Server(
            ServerConfig(
                ae_title=args.move,
                policy=self.policy,
                accept=self._note_refusals,
                received="Sub-Association Received",  # as DCMTK's movescu says it
                handlers={
                    CEchoRQ: VerificationSCP(),
                    CStoreRQ: StorageSCP(
                        args.output_directory, ignore=args.ignore, on_stored=self._stored
                    ),
                },
                max_pdu_length=max(args.max_pdu, SCP_MAX_PDU),
                timeouts=Timeouts(
                    acse=args.acse_timeout,
                    dimse=args.dimse_timeout,
                    idle=args.socket_timeout or None,
                ),
            )
        )

    def _note_refusals(self, rq, peer):
        """Accept any association (as DCMTK's movescu does), remembering the storage
        contexts our +x preference refuses and the compressed syntaxes it passes over."""
        from ..syntaxes import is_compressed
        from ..ul.negotiation import negotiate
        from ..ul.pdu import ContextResult

        self.sub_associations += 1
        answers, _ = negotiate(rq, self.policy)
        proposed = {pc.context_id: pc for pc in rq.presentation_contexts}
        for answer in answers:
            pc = proposed[answer.context_id]
            if answer.result == ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED:
                self.refused[pc.abstract_syntax] = tuple(pc.transfer_syntaxes)
            elif answer.result == ContextResult.ACCEPTANCE:
                self.passed_over.update(
                    ts for ts in pc.transfer_syntaxes
                    if ts != answer.transfer_syntax and is_compressed(ts)
                )  # fmt: skip
        return None

    def refusal_hint(self) -> str:
        """Why the PACS's C-STOREs failed, when our +x option is the likely cause ("" if not:
        then the PACS's status says more)."""
        from ..uids import transfer_syntax_description, uid_description
        from ..ul.diagnosis import DCMTK_ACCEPT_OPTIONS

        def flags(syntaxes) -> str:
            options = {DCMTK_ACCEPT_OPTIONS[ts] for ts in syntaxes if ts in DCMTK_ACCEPT_OPTIONS}
            return " or ".join(sorted(options)) or "+xa"

        port = self.server.port
        if self.refused:
            offers = "; ".join(
                f"{uid_description(sop_class)} in "
                + ", ".join(transfer_syntax_description(ts) for ts in syntaxes)
                for sop_class, syntaxes in self.refused.items()
            )
            return (
                f"The PACS did connect to our port {port}, but proposed {offers}, which this "
                f"movescu does not accept with --{self.prefer}: pass {flags(self.refused_all)} "
                "(or +xa to accept every syntax)."
            )
        if self.sub_associations and self.passed_over:
            names = ", ".join(sorted(transfer_syntax_description(ts) for ts in self.passed_over))
            return (
                f"The PACS did connect to our port {port}, and offered {names}, which this "
                f"movescu passed over for an uncompressed syntax (--{self.prefer}); a PACS that "
                "keeps its files compressed and cannot convert them then fails to send them "
                f"(DCMTK's dcmqrscp does): pass {flags(self.passed_over)} (or +xa)."
            )
        return ""

    @property
    def refused_all(self) -> set[str]:
        return {ts for syntaxes in self.refused.values() for ts in syntaxes}

    def _stored(self, instance) -> None:
        self.received += 1
        self._on_instance()
        self._changed.set()

    async def start(self, host: str, port: int) -> None:
        try:
            await self.server.start(host, port)
        except OSError as exc:
            from ..errors import PacsboxError

            raise PacsboxError(
                f"Cannot listen on {host}:{port} for the incoming association (+P/--port): "
                f"{exc.strerror or exc}. Is another DICOM server (a storescp?) using that "
                "port? Stop it, or let it be the move destination and leave out --port."
            ) from None

    async def settle(self, expected: int, grace: float) -> None:
        """After the final response: let open sub-associations finish, and give instances the
        PACS counted but did not send yet ``grace`` seconds to begin arriving."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        for _ in range(1_000_000):  # bounded: each turn waits for an event or the deadline
            busy = bool(self.server.associations)
            if not busy and self.received >= expected:
                return
            left = deadline - loop.time()
            if not busy and left <= 0:
                log.warning(
                    "The PACS reported %d instance(s) sent but %d arrived on port %d within "
                    "%.0f s after its final response; the others went to another AE or are "
                    "lost (check the move destination's host and port on the PACS)",
                    expected,
                    self.received,
                    self.server.port,
                    grace,
                )
                return
            self._changed.clear()
            waiters = [asyncio.ensure_future(self._changed.wait())]
            waiters += [asyncio.ensure_future(a.wait_closed()) for a in self.server.associations]
            await asyncio.wait(
                waiters, timeout=None if busy else left, return_when="FIRST_COMPLETED"
            )
            for waiter in waiters:
                waiter.cancel()

    async def close(self) -> None:
        await self.server.close()


async def run(args) -> int:
    from ..syntaxes import SCU_PROPOSALS

    if args.move is None:  # as DCMTK's movescu: the destination is the calling AE title
        args.move = args.aetitle

    if args.listen_port is not None and not check_output_directory(args):
        return 1
    requests = identifiers(args)
    rq = build_rq(
        calling_ae=args.aetitle,
        called_ae=args.call,
        proposals=[(SOP_CLASSES[args.model].move, SCU_PROPOSALS[args.propose])],
        max_pdu_length=args.max_pdu,
    )
    timeouts = network_timeouts(args)
    display = ProgressDisplay("Retrieving (C-MOVE)")
    receiver = Receiver(args, display.instance_received) if args.listen_port is not None else None
    failed = False
    last = None
    expected = 0  # instances the PACS counted as sent, over all requests
    with display, Cancelling(args.cancel) as cancelling:
        if receiver is not None:
            await receiver.start(args.bind, args.listen_port)
        try:
            for _ in range(args.repeat):
                if cancelling.interrupted:
                    break
                assoc = await Association.connect(args.peer, args.port, rq, timeouts=timeouts)
                try:
                    for name, identifier in requests:
                        if name is not None:
                            log.info("Sending query file: %s", name)
                        if cancelling.interrupted:
                            break
                        on_progress, cancel = cancelling.request(display)
                        try:
                            last = await move(
                                assoc,
                                args.model,
                                identifier,
                                args.move,
                                on_progress=on_progress,
                                cancel=cancel,
                            )
                        except RetrieveError as exc:
                            last = exc.result
                            failed = True
                            hint = receiver.refusal_hint() if receiver is not None else ""
                            if hint and exc.status == 0xA702:
                                # the PACS did reach us: "could not connect" would mislead
                                status = f"0x{exc.status:04X} ({exc.result.meaning})"
                                log.critical("The C-MOVE failed with status %s. %s", status, hint)
                            else:
                                log.critical("%s", f"{exc} {hint}" if hint else exc)
                        cancelling.finished()
                        display.finish(last)
                        if receiver is not None:
                            expected += (last.completed or 0) + (last.warning or 0)
                            await receiver.settle(expected, float(args.acse_timeout))
                except BaseException:
                    assoc.abort()
                    raise
                if args.abort:
                    log.info("Aborting Association")
                    assoc.abort()
                else:
                    await assoc.release()
        finally:
            if receiver is not None:
                await receiver.close()
    if not failed:  # else the F: line was the one-line reason
        summary("movescu", last, receiver.received if receiver else None, args)
    if cancelling.interrupted:  # what arrived is part of what was asked: no success
        return INTERRUPTED
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    return run_tool(parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
