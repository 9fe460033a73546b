"""Storage Commitment Push Model (PS3.4 Annex J), both roles.

The SCU asks with N-ACTION (Request Storage Commitment, a Transaction UID and the SOP
instances); the SCP answers the N-ACTION at once, checks each instance, and reports with
N-EVENT-REPORT (event 1: all committed; 2: some failed, with a Failure Reason each) on the same
association if the SCU kept it open, else on a new association it opens to the SCU's
configured address, as the SCP of the SOP class (role selection, PS3.4 J.3.3).

The archive commits an instance when its index row names that SOP class and its file is on
disk with the indexed size; the file and its directory are fsync'd before success is reported,
so a committed instance survives a power cut.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..datasets import decode_dataset, encode_dataset
from ..dimse import NActionRQ, NActionRSP, NEventReportRQ, NEventReportRSP
from ..log import log
from ..net.association import Association, NetworkError, RequestHandler, Timeouts
from ..syntaxes import UNCOMPRESSED
from ..ul.negotiation import AgreedContext
from ..ul.pdu import RoleSelection

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"  # Storage Commitment Push Model SOP Class
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"  # its well-known SOP instance
REQUEST_COMMITMENT = 1  # Action Type ID (PS3.4 J.3.2.1)
ALL_COMMITTED, SOME_FAILED = 1, 2  # Event Type IDs (PS3.4 J.3.3.1)

# Failure Reason (0008,1197), PS3.4 J.3.3.1.1.1
PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
REFERENCED_SOP_CLASS_NOT_SUPPORTED = 0x0122
RESOURCE_LIMITATION = 0x0213
DUPLICATE_TRANSACTION_UID = 0x0131

NO_SUCH_ACTION_TYPE = 0x0123
MISSING_ATTRIBUTE = 0x0120
INVALID_ATTRIBUTE_VALUE = 0x0106
NO_SUCH_SOP_INSTANCE = 0x0112

FAILURE_REASONS = {
    PROCESSING_FAILURE: "processing failure (file missing or damaged)",
    NO_SUCH_OBJECT_INSTANCE: "no such object instance (not stored here)",
    CLASS_INSTANCE_CONFLICT: "class/instance conflict (stored with another SOP class)",
    REFERENCED_SOP_CLASS_NOT_SUPPORTED: "referenced SOP class not supported",
    RESOURCE_LIMITATION: "resource limitation",
    DUPLICATE_TRANSACTION_UID: "duplicate transaction UID",
}


@dataclass(slots=True)
class CommitmentResult:
    """What the SCP reported: the committed (SOP class, SOP instance) pairs and the failed ones
    with their Failure Reason."""

    transaction_uid: str
    committed: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, int]] = field(default_factory=list)
    same_association: bool = True

    @property
    def ok(self) -> bool:
        return not self.failed


def _references(ds, keyword: str) -> list:
    return list(getattr(ds, keyword, None) or [])


def report_dataset(result: CommitmentResult, retrieve_ae_title: str = ""):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.TransactionUID = result.transaction_uid
    if retrieve_ae_title:
        ds.RetrieveAETitle = retrieve_ae_title
    if result.committed:
        ds.ReferencedSOPSequence = []
        for sop_class, sop_instance in result.committed:
            item = Dataset()
            item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
            ds.ReferencedSOPSequence.append(item)
    if result.failed:
        ds.FailedSOPSequence = []
        for sop_class, sop_instance, reason in result.failed:
            item = Dataset()
            item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
            item.FailureReason = reason
            ds.FailedSOPSequence.append(item)
    return ds


# -- SCP --------------------------------------------------------------------------------------


class StorageCommitmentSCP(RequestHandler):
    """N-ACTION Request Storage Commitment against the archive's index and files.

    locate(area, path): the file of an index row. address_for(ae_title): where to open the
    association for a report the requester did not wait for (None: unknown AE, the report is
    dropped with a log line that says what to configure). area_of(association): the storage
    area whose copies the request is about (dcmqrscp: the called AE title's; None: the default
    area); without it, each instance's most recently received copy, in whichever area.
    """

    def __init__(
        self,
        index,
        *,
        ae_title: str,
        locate: Callable[[str | None, str], Path | None],
        address_for: Callable[[str], tuple[str, int] | None],
        timeouts: Timeouts | None = None,
        area_of: Callable[[Association], str | None] | None = None,
    ) -> None:
        self.index = index
        self.ae_title = ae_title
        self.locate = locate
        self.address_for = address_for
        self.area_of = area_of
        self.timeouts = timeouts or Timeouts(dimse=60)
        self._tasks: set[asyncio.Task] = set()

    async def handle(self, assoc: Association, context: AgreedContext, request, dataset) -> None:
        log.info("Received Storage Commitment Request (MsgID %d)", request.message_id)
        if request.requested_sop_instance_uid != STORAGE_COMMITMENT_INSTANCE:
            await assoc.respond_failure(context, request, NO_SUCH_SOP_INSTANCE,
                                        f"the instance is {STORAGE_COMMITMENT_INSTANCE}")  # fmt: skip
            return
        if request.action_type_id != REQUEST_COMMITMENT:
            await assoc.respond_failure(
                context, request, NO_SUCH_ACTION_TYPE, "only action 1, Request Commitment"
            )
            return
        try:
            ds = decode_dataset(dataset or b"", context.transfer_syntax)
            transaction = str(ds.TransactionUID)
            references = [
                (str(item.ReferencedSOPClassUID), str(item.ReferencedSOPInstanceUID))
                for item in _references(ds, "ReferencedSOPSequence")
            ]
        except Exception as exc:
            await assoc.respond_failure(
                context, request, MISSING_ATTRIBUTE,
                f"needs TransactionUID and ReferencedSOPSequence: {exc}",
            )  # fmt: skip
            return
        await assoc.send(
            context.context_id,
            NActionRSP(
                message_id_being_responded_to=request.message_id,
                status=0x0000,
                affected_sop_class_uid=STORAGE_COMMITMENT,
                affected_sop_instance_uid=STORAGE_COMMITMENT_INSTANCE,
                action_type_id=REQUEST_COMMITMENT,
            ),
        )
        from ..archive.index import ANY_AREA

        area = self.area_of(assoc) if self.area_of is not None else ANY_AREA
        result = await asyncio.to_thread(self.check, transaction, references, area)
        calling = assoc.rq.calling_ae_title if assoc.rq else ""
        log.info("Storage Commitment %s: %d committed, %d failed",
                 transaction, len(result.committed), len(result.failed))  # fmt: skip
        if await self._report(assoc, context, result):
            return
        task = asyncio.get_running_loop().create_task(self._report_anew(calling, result))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def check(
        self, transaction: str, references: Iterable[tuple[str, str]], area=None
    ) -> CommitmentResult:
        """Each instance in the index (its copy in storage area ``area``, None: the default
        one; Index.ANY_AREA: the latest copy), of that SOP class, on disk whole; files
        fsync'd."""
        result = CommitmentResult(transaction)
        directories: set[Path] = set()
        for sop_class, sop_instance in references:
            record = self.index.get_instance(sop_instance, area)
            if record is None:
                result.failed.append((sop_class, sop_instance, NO_SUCH_OBJECT_INSTANCE))
                continue
            if record.sop_class_uid != sop_class:
                result.failed.append((sop_class, sop_instance, CLASS_INSTANCE_CONFLICT))
                continue
            path = self.locate(record.area, record.path)
            try:
                if path is None or path.stat().st_size != record.size:
                    raise OSError("missing, or not the indexed size")
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                directories.add(path.parent)
            except OSError as exc:
                log.error("Cannot commit %s (%s): %s", sop_instance, path, exc)
                result.failed.append((sop_class, sop_instance, PROCESSING_FAILURE))
                continue
            result.committed.append((sop_class, sop_instance))
        for directory in directories:  # the renames that put the files there, durable too
            try:
                fd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                log.warning("Cannot fsync %s: %s", directory, exc)
        return result

    def _event(self, assoc: Association, result: CommitmentResult) -> NEventReportRQ:
        return NEventReportRQ(
            message_id=assoc.next_message_id(),
            affected_sop_class_uid=STORAGE_COMMITMENT,
            affected_sop_instance_uid=STORAGE_COMMITMENT_INSTANCE,
            event_type_id=SOME_FAILED if result.failed else ALL_COMMITTED,
            has_dataset=True,
        )

    async def _report(self, assoc, context, result: CommitmentResult) -> bool:
        """N-EVENT-REPORT on the requester's association; False if it is gone."""
        if assoc.closed.done():
            return False
        try:
            data = encode_dataset(report_dataset(result, self.ae_title), context.transfer_syntax)
            pending = await assoc.begin(context.context_id, self._event(assoc, result), data)
            async with asyncio.timeout(self.timeouts.dimse):
                response, _ = await pending.final()
        except (NetworkError, TimeoutError) as exc:
            log.info("Storage Commitment report: the requester's association is gone (%s); "
                     "opening a new one", exc)  # fmt: skip
            return False
        log.info("Storage Commitment report sent (status 0x%04X)", response.status)  # type: ignore[attr-defined]
        return True

    async def _report_anew(self, calling: str, result: CommitmentResult) -> None:
        from ..net.requestor import build_rq

        address = self.address_for(calling)
        if address is None:
            log.error(
                "Cannot send the Storage Commitment report of %s to '%s': no address is "
                "configured for that AE (serve: [peers.%s] in --config; dcmqrscp: HostTable)",
                result.transaction_uid, calling, calling,
            )  # fmt: skip
            return
        rq = build_rq(
            calling_ae=self.ae_title,
            called_ae=calling,
            proposals=[(STORAGE_COMMITMENT, UNCOMPRESSED)],
            role_selections=[RoleSelection(STORAGE_COMMITMENT, False, True)],
        )
        try:
            assoc = await Association.connect(*address, rq, timeouts=self.timeouts)
        except (NetworkError, OSError) as exc:
            log.error("Cannot send the Storage Commitment report to %s at %s:%d: %s",
                      calling, *address, exc)  # fmt: skip
            return
        try:
            context = assoc.context_for(STORAGE_COMMITMENT)
            if not await self._report(assoc, context, result):
                log.error("The Storage Commitment report to %s was not answered", calling)
        finally:
            if not assoc.closed.done():
                await assoc.release()

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()


def report_listener(ae_title: str, reports: CommitmentReports, timeouts: Timeouts | None = None):
    """A Server (not started) that takes Storage Commitment reports the SCP sends on a new
    association, as that SOP class's SCU (the SCP asks for the SCP role: PS3.4 J.3.3)."""
    from ..dimse import NEventReportRQ
    from ..net.server import Server, ServerConfig
    from ..ul.negotiation import AcceptorPolicy

    return Server(
        ServerConfig(
            ae_title=ae_title,
            policy=AcceptorPolicy(
                abstract_syntaxes=frozenset({STORAGE_COMMITMENT}),
                transfer_syntaxes=UNCOMPRESSED,
                requestor_may_be_scp=frozenset({STORAGE_COMMITMENT}),
            ),
            handlers={NEventReportRQ: reports},
            timeouts=timeouts or Timeouts(),
        )
    )


def with_commitment(policy):
    """``policy`` (an AcceptorPolicy) that also accepts the Storage Commitment Push Model."""
    return policy.serving({STORAGE_COMMITMENT}, UNCOMPRESSED)


# -- SCU --------------------------------------------------------------------------------------


class CommitmentReports(RequestHandler):
    """Receives N-EVENT-REPORTs (on the requesting association or on one the SCP opens) and
    hands each to the request waiting for its Transaction UID."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[asyncio.Future[CommitmentResult], Association]] = {}

    def expect(
        self, transaction_uid: str, requesting: Association
    ) -> asyncio.Future[CommitmentResult]:
        future = asyncio.get_running_loop().create_future()
        self._waiting[transaction_uid] = (future, requesting)
        return future

    async def handle(self, assoc: Association, context: AgreedContext, request, dataset) -> None:
        status = 0x0000
        try:
            ds = decode_dataset(dataset or b"", context.transfer_syntax)
            result = CommitmentResult(str(ds.TransactionUID))
            result.committed = [
                (str(i.ReferencedSOPClassUID), str(i.ReferencedSOPInstanceUID))
                for i in _references(ds, "ReferencedSOPSequence")
            ]
            result.failed = [
                (str(i.ReferencedSOPClassUID), str(i.ReferencedSOPInstanceUID),
                 int(i.get("FailureReason", PROCESSING_FAILURE)))
                for i in _references(ds, "FailedSOPSequence")
            ]  # fmt: skip
        except Exception as exc:
            log.error("Cannot read the Storage Commitment report: %s", exc)
            status, result = INVALID_ATTRIBUTE_VALUE, None
        await assoc.send(
            context.context_id,
            NEventReportRSP(
                message_id_being_responded_to=request.message_id,
                status=status,
                affected_sop_class_uid=STORAGE_COMMITMENT,
                affected_sop_instance_uid=STORAGE_COMMITMENT_INSTANCE,
                event_type_id=request.event_type_id,
            ),
        )
        if result is None:
            return
        waiting = self._waiting.pop(result.transaction_uid, None)
        if waiting is None:
            log.warning("A Storage Commitment report for unknown transaction %s",
                        result.transaction_uid)  # fmt: skip
            return
        future, requesting = waiting
        result.same_association = assoc is requesting
        log.info("Received Storage Commitment report (%s association): %d committed, "
                 "%d failed", "same" if result.same_association else "new",
                 len(result.committed), len(result.failed))  # fmt: skip
        if not future.done():
            future.set_result(result)


async def request_commitment(
    assoc: Association,
    references: Iterable[tuple[str, str]],
    reports: CommitmentReports,
    *,
    transaction_uid: str | None = None,
    wait_on_association: bool = True,
    timeout: float | None = 60,
) -> CommitmentResult:
    """Ask for commitment of (SOP class, SOP instance) pairs and wait for the report.

    ``reports`` must serve NEventReportRQ on ``assoc`` (its handlers) and, when the SCP may
    answer on a new association, on our listening server too. With ``wait_on_association``
    false the association is released once the N-ACTION is answered and the report is awaited
    on the new association the SCP opens.
    """
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    context = assoc.context_for(STORAGE_COMMITMENT)
    transaction = transaction_uid or str(generate_uid())
    ds = Dataset()
    ds.TransactionUID = transaction
    ds.ReferencedSOPSequence = []
    for sop_class, sop_instance in references:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
        ds.ReferencedSOPSequence.append(item)
    future = reports.expect(transaction, assoc)
    message_id = assoc.next_message_id()
    log.info("Sending Storage Commitment Request (MsgID %d, transaction %s, %d instance(s))",
             message_id, transaction, len(ds.ReferencedSOPSequence))  # fmt: skip
    response, _ = await assoc.request_one(
        context.context_id,
        NActionRQ(
            message_id=message_id,
            requested_sop_class_uid=STORAGE_COMMITMENT,
            requested_sop_instance_uid=STORAGE_COMMITMENT_INSTANCE,
            action_type_id=REQUEST_COMMITMENT,
            has_dataset=True,
        ),
        encode_dataset(ds, context.transfer_syntax),
    )
    status = response.status  # type: ignore[attr-defined]
    if status != 0x0000:
        from ..dimse.status import describe
        from ..errors import PacsboxError

        comment = getattr(response, "error_comment", None)
        raise PacsboxError(
            f"the SCP refused the Storage Commitment request: {describe(status)}"
            + (f" ({comment})" if comment else "")
        )
    if not wait_on_association:
        await assoc.release()
    try:
        async with asyncio.timeout(timeout):
            result = await future
    except TimeoutError:
        from ..errors import PacsboxError

        where = (
            "on this association; many SCPs (Orthanc among them) send it on a new one: listen "
            "for it (stgcmtscu +P PORT; commit(..., port=PORT) in the Python API)"
            if wait_on_association
            else "on a new association"
        )
        raise PacsboxError(
            f"no Storage Commitment report within {timeout} s {where}; the SCP must know our "
            "AE title, host and port to connect to us (Orthanc: DicomModalities; pacsbox "
            "serve: [peers.<AE>]), and may send it later than that (stgcmtscu --report-timeout, "
            "commit(..., timeout=S))"
        ) from None
    return result
