"""Query/Retrieve service class, C-MOVE and C-GET SCP roles (PS3.4 C.4.2, C.4.3), from the
archive's index and files.

The identifier names instances through the unique keys of its level (single values or UID
lists). Their files go out with the storage SCU's machinery: each file's own transfer syntax
proposed with the uncompressed fallbacks, transcoded only when the receiver accepts nothing
else, sent from a memory map without decoding otherwise, over several associations when more
than 128 presentation contexts are needed (C-MOVE); on the requestor's own association, as
SCU of the storage classes it offered to serve, for C-GET (with or without role selection:
Horos and Conquest send none).

Pending responses carry the four counters, one after each sub-operation at most every
``pending_interval`` seconds (0: after every one but the last, whose counters the final
response gives at once; DCMTK's dcmqrscp sends that one too: a pending response is the
SCP's option). A C-CANCEL-RQ is honoured between sub-operations: the final status is Cancel with the true counters. The counters are US (at
most 65,535): beyond that they stay at 65,535 while the sub-operations go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..datasets import encode_dataset
from ..dimse import CGetRSP, CMoveRQ, CMoveRSP
from ..log import log
from ..net.association import Association, NetworkError, RequestHandler, Timeouts
from ..ul.negotiation import AgreedContext
from .find_scp import decode_identifier
from .qr_models import GET_MODELS, MOVE_MODELS, Model

SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
WARNING_SUBOPERATIONS = 0xB000  # sub-operations complete, one or more failures or warnings
MOVE_DESTINATION_UNKNOWN = 0xA801
UNABLE_TO_PERFORM = 0xA702  # refused: out of resources, unable to perform sub-operations
SOP_CLASS_NOT_SUPPORTED = 0x0122
CANNOT_UNDERSTAND = 0xC000

_US_MAX = 0xFFFF


@dataclass(slots=True)
class _Counters:
    total: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.warning

    def fields(self, *, final: bool) -> dict[str, int | None]:
        remaining = None if final and self.done == self.total else self.total - self.done
        return {
            "number_of_remaining_suboperations": None
            if remaining is None
            else min(remaining, _US_MAX),
            "number_of_completed_suboperations": min(self.completed, _US_MAX),
            "number_of_failed_suboperations": min(self.failed, _US_MAX),
            "number_of_warning_suboperations": min(self.warning, _US_MAX),
        }


class RetrieveSCP(RequestHandler):
    """C-MOVE and C-GET from ``index``.

    locate(area, path): the file of an index row (None: its area is gone).
    destination_for(ae_title): (host, port) of a C-MOVE destination, or None.
    unknown_destination_hint: where to configure one, for the 0xA801 comment and the log.
    extra_proposals: syntaxes proposed for every SOP class besides each file's own and the
        uncompressed ones (DCMTK's -x? options, e.g. dcmqrscp -xs).
    options_for(assoc): the QueryOptions of an association (its storage area), or
        (status, comment) to refuse (dcmqrscp's W areas).
    """

    def __init__(
        self,
        index,
        *,
        ae_title: str,
        locate: Callable[[str | None, str], Path | None],
        destination_for: Callable[[str], tuple[str, int] | None],
        unknown_destination_hint: str,
        options_for: Callable,
        pending_interval: float = 0.5,
        timeouts: Timeouts | None = None,
        max_pdu: int = 0,
        extra_proposals: tuple[tuple[str, ...], ...] = (),
    ) -> None:
        self.index = index
        self.ae_title = ae_title
        self.locate = locate
        self.destination_for = destination_for
        self.unknown_destination_hint = unknown_destination_hint
        self.options_for = options_for
        self.pending_interval = pending_interval
        self.timeouts = timeouts or Timeouts()
        self.max_pdu = max_pdu
        self.extra_proposals = extra_proposals  # DCMTK's -x? (dcmqrscp -xs ...)

    async def handle(self, assoc: Association, context: AgreedContext, request, dataset) -> None:
        from ..archive.query import QueryError, retrieve_instances

        is_move = isinstance(request, CMoveRQ)
        what = "Move" if is_move else "Get"
        model = (MOVE_MODELS if is_move else GET_MODELS).get(request.affected_sop_class_uid)
        log.info("Received %s Request (MsgID %d)", what, request.message_id)
        if model is None or model is Model.WORKLIST:
            await assoc.respond_failure(
                context, request, SOP_CLASS_NOT_SUPPORTED,
                f"C-{what.upper()} of this information model is not served here",
            )  # fmt: skip
            return
        options = self.options_for(assoc)
        if isinstance(options, tuple):
            await assoc.respond_failure(context, request, *options)
            return
        try:
            identifier = decode_identifier(dataset or b"", context.transfer_syntax)
        except Exception as exc:
            await assoc.respond_failure(
                context, request, CANNOT_UNDERSTAND, f"identifier cannot be decoded: {exc}"
            )
            return
        destination = None
        if is_move:
            destination = self.destination_for(request.move_destination)
            if destination is None:
                log.warning(
                    "Refusing C-MOVE to '%s': no such AE is configured (%s)",
                    request.move_destination,
                    self.unknown_destination_hint,
                )
                await assoc.respond_failure(
                    context, request, MOVE_DESTINATION_UNKNOWN,
                    f"unknown AE '{request.move_destination}': {self.unknown_destination_hint}",
                )  # fmt: skip
                return

        def find():
            with self.index.engine.connect() as conn:
                return retrieve_instances(conn, model, identifier, options.area)

        try:
            level, found = await asyncio.to_thread(find)
        except QueryError as exc:
            log.warning("Refusing C-%s: %s", what.upper(), exc.comment)
            await assoc.respond_failure(context, request, exc.status, exc.comment)
            return
        infos, counters = await asyncio.to_thread(self._files, found)
        log.info("%s: %d instance(s) at %s level", what, counters.total, level)
        if is_move:
            calling = options.retrieve_ae_title or self.ae_title  # dcmqrscp: the area's AE
            status, comment = await self._move(
                assoc, context, request, destination, infos, counters, calling
            )
        else:
            status, comment = await self._send_all(assoc, context, request, assoc, infos, counters)
        await self._final(assoc, context, request, status, comment, counters)

    def _files(self, found) -> tuple[list, _Counters]:
        """FileInfo of each stored instance; a missing or unreadable file counts as failed."""
        from ..dicomfile import NotDicomError, read_file_info

        counters = _Counters(total=len(found))
        infos = []
        for instance in found:
            path = self.locate(instance.area, instance.path)
            try:
                if path is None:
                    raise FileNotFoundError(f"area {instance.area} is not configured")
                infos.append(read_file_info(path))
            except (OSError, NotDicomError) as exc:
                log.error("Cannot send %s: %s", instance.sop_instance_uid, exc)
                counters.failed += 1
                counters.failed_uids.append(instance.sop_instance_uid)
        return infos, counters

    async def _move(self, assoc, context, request, destination, infos, counters, calling):
        from ..net.requestor import build_rq
        from .storage_scu import batches, content_proposals

        host, port = destination
        for proposals, files in batches(infos, content_proposals(infos, self.extra_proposals)):
            rq = build_rq(
                calling_ae=calling,
                called_ae=request.move_destination,
                proposals=proposals,
                max_pdu_length=self.max_pdu,
            )
            try:
                peer = await Association.connect(host, port, rq, timeouts=self.timeouts)
            except (NetworkError, OSError) as exc:
                log.error("C-MOVE: cannot reach %s at %s:%d: %s",
                          request.move_destination, host, port, exc)  # fmt: skip
                for info in files:
                    counters.failed += 1
                    counters.failed_uids.append(info.sop_instance_uid)
                return UNABLE_TO_PERFORM, f"cannot connect to {request.move_destination}"[:64]
            try:
                status, comment = await self._send_all(
                    assoc, context, request, peer, files, counters
                )
            except BaseException:
                peer.abort()
                raise
            with contextlib.suppress(NetworkError, OSError):
                await peer.release()
            if status == CANCEL:
                return status, comment
        return None, None

    async def _send_all(self, assoc, context, request, receiver, infos, counters):
        """C-STORE ``infos`` on ``receiver``; pending responses on ``assoc``. Returns
        (CANCEL, None) when cancelled, else (None, None)."""
        from .storage_scu import store_files

        originator = (
            (assoc.rq.calling_ae_title if assoc.rq else "", request.message_id)
            if isinstance(request, CMoveRQ)
            else None
        )
        last = time.monotonic()
        sent = 0
        operation = assoc.operation(request.message_id)
        cancelled = operation.cancelled.is_set if operation is not None else None
        # each C-STORE-RQ leaves as the last one's Success response comes in, unless a
        # C-CANCEL-RQ came first: then nothing more is sent, and what was sent is counted
        sending = store_files(
            receiver, infos, move_originator=originator, send_ahead=True, stop=cancelled
        )
        try:
            async with contextlib.aclosing(sending):
                async for result in sending:
                    sent += 1
                    last = (
                        await self._count(assoc, context, request, result, counters, last) or last
                    )
        except NetworkError as exc:  # the receiving association broke: the rest failed
            log.error("Sub-operations stopped: %s", exc)
            for info in infos[sent:]:
                counters.failed += 1
                counters.failed_uids.append(info.sop_instance_uid)
            return UNABLE_TO_PERFORM, f"sub-operations stopped: {exc}"[:64]
        if cancelled is not None and cancelled():
            log.info("C-%s cancelled after %d sub-operation(s)",
                     "MOVE" if originator else "GET", counters.done)  # fmt: skip
            return CANCEL, None
        return None, None

    async def _count(self, assoc, context, request, result, counters, last) -> float | None:
        """Count one sub-operation and send a pending response if it is time; returns when
        it sent one (else None)."""
        if result.category == "success":
            counters.completed += 1
        elif result.category == "warning":
            counters.warning += 1
        else:
            counters.failed += 1
            counters.failed_uids.append(result.sop_instance_uid)
        operation = assoc.operation(request.message_id)
        if operation is not None and operation.cancelled.is_set():
            return None  # no more pending responses: the final one says Cancel
        now = time.monotonic()
        if counters.done < counters.total and now - last >= self.pending_interval:
            await self._respond(assoc, context, request, PENDING, None, counters, False)
            return now
        return None

    async def _final(self, assoc, context, request, status, comment, counters) -> None:
        if status is None:
            status = WARNING_SUBOPERATIONS if counters.failed or counters.warning else SUCCESS
        await self._respond(assoc, context, request, status, comment, counters, True)
        log.info(
            "%s done: %d completed, %d failed, %d warning (status 0x%04X)",
            "Move" if isinstance(request, CMoveRQ) else "Get",
            counters.completed, counters.failed, counters.warning, status,
        )  # fmt: skip

    async def _respond(self, assoc, context, request, status, comment, counters, final):
        data = None
        if final and counters.failed_uids and status != SUCCESS:
            from pydicom.dataset import Dataset

            failed = Dataset()
            failed.FailedSOPInstanceUIDList = counters.failed_uids
            data = encode_dataset(failed, context.transfer_syntax)
        rsp_type = CMoveRSP if isinstance(request, CMoveRQ) else CGetRSP
        await assoc.send(
            context.context_id,
            rsp_type(
                message_id_being_responded_to=request.message_id,
                status=status,
                affected_sop_class_uid=request.affected_sop_class_uid,
                error_comment=comment,
                has_dataset=data is not None,
                **counters.fields(final=final),
            ),
            data,
        )
