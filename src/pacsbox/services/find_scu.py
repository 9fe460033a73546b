"""Query service class, SCU side (PS3.4 C.4.1, K for the worklist): C-FIND and C-CANCEL.

``find(assoc, model, identifier)`` sends one C-FIND-RQ and yields a ``FindResult`` per
response: the pending ones with their identifier (a pydicom Dataset, text decoded with its
Specific Character Set), then the final one (Success, or Cancel after a C-CANCEL). A final
failure status raises ``FindError`` instead, whose message says what the status means and
what to change. Log lines read like DCMTK findscu's (``I: Sending Find Request (MsgID 1)``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..dimse import CFindRQ, CFindRSP, Priority
from ..dimse.status import StatusCategory, StatusInfo, category_of, describe
from ..errors import PacsboxError
from ..log import log
from ..net.association import Association
from ..ul.diagnosis import AssociationAbortedError
from ..ul.negotiation import AgreedContext
from ..wording import say
from .qr_models import FIND_MODELS, SOP_CLASSES, Model

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# DCMTK's findscu flag for each model, for messages that say which one to use instead.
MODEL_FLAGS: dict[Model, str] = {
    Model.WORKLIST: "-W",
    Model.PATIENT_ROOT: "-P",
    Model.STUDY_ROOT: "-S",
    Model.PATIENT_STUDY_ONLY: "-O",
}
MODEL_NAMES: dict[Model, str] = {
    Model.WORKLIST: "Modality Worklist",
    Model.PATIENT_ROOT: "Patient Root",
    Model.STUDY_ROOT: "Study Root",
    Model.PATIENT_STUDY_ONLY: "Patient/Study Only",
}

# The words DCMTK 3.6.7's findscu logs for a status ("Received Final Find Response (Success)",
# DU_cfindStatusString); codes it does not name fall to the 0xCxxx rule, then "Unknown Status".
DCMTK_STATUS_WORDS: dict[int, str] = {
    0x0000: "Success",
    0xFF00: "Pending",
    0xFF01: "Pending",
    0xFE00: "Cancel: MatchingTerminatedDueToCancelRequest",
    0xA700: "Refused: OutOfResources",
    0x0122: "Refused: SOPClassNotSupported",
    0xA900: "Failed: IdentifierDoesNotMatchSOPClass",
}


def dcmtk_status_words(status: int) -> str:
    words = DCMTK_STATUS_WORDS.get(status)
    if words is None:
        words = (
            "Failed: UnableToProcess"
            if status & 0xF000 == 0xC000
            else f"Unknown Status: 0x{status:x}"
        )
    return words


def model_alternatives(model: Model) -> str:
    """'-S (Study Root), -P (Patient Root) or ...': the other models, for error messages."""
    others = [
        f"{say(MODEL_FLAGS[m], f'model={m.value!r}')} ({MODEL_NAMES[m]})"
        for m in MODEL_FLAGS
        if m is not model
    ]
    return ", ".join(others[:-1]) + " or " + others[-1]


def find_proposal(model: Model | str, syntaxes: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The presentation context to propose for a C-FIND in ``model``."""
    return SOP_CLASSES[Model(model)].find, syntaxes


class FindError(PacsboxError):
    """The peer ended a C-FIND with a failure status (or the model is not accepted)."""

    def __init__(self, message: str, *, status: int | None = None, model: Model | None = None):
        self.status = status
        self.model = model
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class FindResult:
    """One C-FIND-RSP: ``number`` counts the responses of this request from 1 (DCMTK's
    "Find Response: 1"); ``raw`` is the identifier as received, in ``transfer_syntax``."""

    number: int
    response: CFindRSP
    transfer_syntax: str
    raw: bytes | None = None
    identifier: Dataset | None = field(default=None, repr=False)

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def category(self) -> StatusCategory:
        return category_of(self.status)

    @property
    def pending(self) -> bool:
        return self.category is StatusCategory.PENDING

    @property
    def info(self) -> StatusInfo:
        return describe(self.status, "find")


def find_context(assoc: Association, model: Model | str) -> AgreedContext:
    """The accepted context for ``model``'s FIND SOP class, or a FindError naming the flags
    of the other models."""
    model = Model(model)
    sop_class = SOP_CLASSES[model].find
    for context in assoc.contexts.values():
        if context.abstract_syntax == sop_class:
            return context
    raise FindError(
        f"The peer did not accept the {MODEL_NAMES[model]} information model "
        f"({sop_class}) for C-FIND. Query with a model it supports: "
        f"{model_alternatives(model)}.",
        model=model,
    )


async def find(
    assoc: Association,
    model: Model | str,
    identifier: Dataset | bytes,
    *,
    priority: int = Priority.MEDIUM,
    cancel_after: int | None = None,
) -> AsyncIterator[FindResult]:
    """Send a C-FIND-RQ with ``identifier``; yield each response as a FindResult.

    Pending responses come first, each with its identifier; the last result is the final
    response (Success, or Cancel when ``cancel_after`` pending responses led us to send a
    C-CANCEL-RQ and the peer stopped). A failure status raises FindError.

    ``identifier`` bytes must be in the accepted context's transfer syntax. To stop early,
    use ``cancel_after``: leaving the loop sends no C-CANCEL, and the peer's later responses
    are then dropped with a warning by the association.
    """
    from ..dataset_dump import dump_lines
    from ..datasets import encode_dataset

    model = Model(model)
    context = find_context(assoc, model)
    syntax = context.transfer_syntax
    raw = identifier if isinstance(identifier, bytes) else encode_dataset(identifier, syntax)
    message_id = assoc.next_message_id()
    request = CFindRQ(
        message_id=message_id,
        affected_sop_class_uid=SOP_CLASSES[model].find,
        priority=priority,
    )
    log.info("Sending Find Request (MsgID %d)", message_id)
    if log.isEnabledFor(logging.INFO):
        lines = ["Request Identifiers:", "", *dump_lines(raw, syntax, request=True), ""]
        log.info("\n".join(lines))
    try:
        async for result in _responses(assoc, context, request, raw, cancel_after):
            yield result
    except AssociationAbortedError as exc:
        calling = assoc.rq.calling_ae_title if assoc.rq else "?"
        raise FindError(
            f"{exc}\nThe peer aborted the association during the C-FIND. PACS that allow "
            f"queries only from AE titles they know do this (Orthanc: DicomModalities); "
            f"check that the peer knows the calling AE title '{calling}' (-aet).",
            model=model,
        ) from exc


async def _responses(assoc, context, request, raw, cancel_after) -> AsyncIterator[FindResult]:
    from ..datasets import decode_dataset

    model = FIND_MODELS[request.affected_sop_class_uid]
    syntax = context.transfer_syntax
    message_id = request.message_id
    pending = 0
    cancelled = False
    async for response, dataset in assoc.request(context.context_id, request, raw):
        number = pending + 1
        data = bytes(dataset) if isinstance(dataset, bytes | bytearray) else None
        decoded = decode_dataset(data, syntax) if data else None
        result = FindResult(number, response, syntax, data, decoded)  # type: ignore[arg-type]
        if result.pending:
            pending += 1
            yield result
            if cancel_after is not None and pending >= cancel_after and not cancelled:
                cancelled = True
                await assoc.cancel(message_id, context.context_id)
            continue
        words = dcmtk_status_words(result.status)
        if result.category is StatusCategory.FAILURE:
            log.info("Received Final Find Response (%s)", words)
            raise _failure(result, model)
        log.info("Received Final Find Response (%s)", words)
        yield result


def _failure(result: FindResult, model: Model) -> FindError:
    info = result.info
    parts = [f"The C-FIND failed with status 0x{info.code:04X} ({info.meaning})."]
    if info.hint:
        parts.append(info.hint)
    comment = result.response.error_comment
    if comment:
        parts.append(f"The peer says: {comment.strip()!r}.")
    if result.status in (0x0122, 0xA900):
        parts.append(
            f"It may support another information model than {MODEL_NAMES[model]}: "
            f"try {model_alternatives(model)}."
        )
    return FindError(" ".join(parts), status=result.status, model=model)
