"""Query/Retrieve service class, SCU side of C-MOVE and C-GET (PS3.4 C.4.2, C.4.3).

``move(assoc, model, identifier, destination)`` asks the PACS to send the matching instances
to the AE ``destination`` (over an association the PACS opens); ``get(assoc, model,
identifier)`` asks it to send them back on this association, as C-STOREs to the storage
handler the association was opened with (``get_negotiation`` proposes the contexts and the
SCP role for them). Both return a ``RetrieveResult`` once the final response is in;
``on_progress`` sees every pending response's counters and, for C-GET, every instance
received, since a PACS may send no pending response at all. A failure status raises a
``RetrieveError`` subclass whose message says what to change. ``cancel`` (an
``asyncio.Event`` or a callable) sends a C-CANCEL-RQ; the PACS then ends with 0xFE00.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..dimse import CGetRQ, CMoveRQ, CStoreRQ, Priority
from ..dimse.status import StatusCategory, category_of, describe
from ..errors import PacsboxError
from ..log import log
from ..net.association import Association, RequestHandler
from ..sopclasses import NON_PATIENT_STORAGE_SOP_CLASSES, storage_sop_classes
from ..syntaxes import UNCOMPRESSED
from ..ul.diagnosis import AssociationAbortedError
from ..ul.negotiation import MAX_CONTEXTS, AgreedContext
from ..ul.pdu import RoleSelection
from ..wording import say, see_debug
from .find_scu import MODEL_FLAGS
from .qr_models import SOP_CLASSES, Model

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# What a C-MOVE / C-GET final response may carry (PS3.4 C.4.2.1.4.1): the instances whose
# sub-operation failed, in the identifier's Failed SOP Instance UID List (0008,0058).
FAILED_SOP_INSTANCE_UID_LIST = 0x00080058

# DCMTK 3.6.7's words for a retrieve status (DU_cmoveStatusString, DU_cgetStatusString),
# for log lines that read like movescu's ("Received Final Move Response (Success)").
DCMTK_STATUS_WORDS: dict[int, str] = {
    0x0000: "Success",
    0xFF00: "Pending",
    0xFE00: "Cancel: SubOperationsTerminatedDueToCancelIndication",
    0xA701: "Refused: OutOfResourcesNumberOfMatches",
    0xA702: "Refused: OutOfResourcesSubOperations",
    0xA801: "Refused: MoveDestinationUnknown",
    0xA900: "Failed: IdentifierDoesNotMatchSOPClass",
    0xB000: "Warning: SubOperationsCompleteOneOrMoreFailures",
    0x0122: "Refused: SOPClassNotSupported",
}


def dcmtk_status_words(status: int) -> str:
    words = DCMTK_STATUS_WORDS.get(status)
    if words is None:
        if status & 0xF000 == 0xC000:
            return "Failed: UnableToProcess"
        return f"Unknown Status: 0x{status:x}"
    return words


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetrieveProgress:
    """Where a retrieve stands. ``status`` is the pending response's (None after an instance
    received); the counters are the PACS's latest (None until it sends any); ``received``
    counts the instances received (on this association for C-GET; ``AsyncClient.retrieve``
    counts those of its C-MOVE receiver too)."""

    status: int | None
    remaining: int | None
    completed: int | None
    failed: int | None
    warning: int | None
    received: int = 0
    sop_instance_uid: str | None = None  # the instance just received
    path: object | None = None  # its file (pacsbox.AsyncClient.retrieve), if it has one

    @property
    def total(self) -> int | None:
        """Sub-operations in all, as far as the PACS said (None: it did not say)."""
        counts = (self.remaining, self.completed, self.failed, self.warning)
        if self.remaining is None:
            return None
        return sum(c or 0 for c in counts)

    @property
    def done(self) -> int:
        """Sub-operations done: the PACS's count, or the instances received if larger."""
        counted = sum(c or 0 for c in (self.completed, self.failed, self.warning))
        return max(counted, self.received)


@dataclass(frozen=True, slots=True)
class RetrieveResult:
    """The final response of a C-MOVE or C-GET (Success, Warning or Cancel; failures raise)."""

    status: int
    remaining: int | None
    completed: int | None
    failed: int | None
    warning: int | None
    received: int = 0
    failed_instances: tuple[str, ...] = ()
    error_comment: str | None = None
    pending_responses: int = 0
    service: str = "move"

    @property
    def category(self) -> StatusCategory:
        return category_of(self.status)

    @property
    def cancelled(self) -> bool:
        return self.category is StatusCategory.CANCEL

    @property
    def meaning(self) -> str:
        return describe(self.status, self.service).meaning


# -- errors ------------------------------------------------------------------------------------


class RetrieveError(PacsboxError):
    """The PACS ended a C-MOVE or C-GET with a failure (or 0xB000) status; ``result`` has the
    counters and the failed instances it named."""

    def __init__(self, message: str, result: RetrieveResult) -> None:
        self.result = result
        self.status = result.status
        super().__init__(message)


class MoveDestinationUnknownError(RetrieveError):
    """0xA801: the PACS has no host and port for the move destination AE title."""


class RetrieveOutOfResourcesError(RetrieveError):
    """0xA701 / 0xA702 (and other 0xA7xx): the PACS could not count or start the sub-operations."""


class IdentifierError(RetrieveError):
    """0xA900, 0xCxxx, 0x0120-ish: the PACS could not process the identifier."""


class SubOperationsFailedError(RetrieveError):
    """0xB000, or a failure with failed sub-operations: some or all instances did not arrive."""


class RetrieveRefusedError(RetrieveError):
    """Any other failure status (not authorized, SOP class not supported ...)."""


@dataclass(frozen=True, slots=True)
class _Context:
    """What an error message needs to name: the PACS, the destination, the operation."""

    called_ae: str
    calling_ae: str
    destination: str | None
    service: str  # "move" or "get"


def _destination_unknown(result: RetrieveResult, ctx: _Context) -> str:
    dest = ctx.destination or "?"
    return (
        f"The PACS '{ctx.called_ae}' refused the C-MOVE: it does not know the move destination "
        f"'{dest}' (status 0xA801). Configure AE '{dest}' with host and port on the PACS "
        f"(DCMTK dcmqrscp: a HostTable line such as  name = ({dest}, host, port);  Orthanc: "
        f"DicomModalities), or {_known_destination('pass one it knows')}."
    )


def _known_destination(verb: str) -> str:
    """How to give the PACS a destination it knows: movescu's -aem, or the API's."""
    return say(f"{verb} with -aem", f"{verb} (move(destination=...); retrieve's is calling_ae)")


def _out_of_resources(result: RetrieveResult, ctx: _Context) -> str:
    info = describe(result.status, ctx.service)
    text = (
        f"The PACS '{ctx.called_ae}' refused the C-{ctx.service.upper()} with status "
        f"0x{result.status:04X} ({info.meaning})."
    )
    if result.status == 0xA702 and ctx.service == "move":
        # DCMTK's dcmqrscp (and Orthanc) answer 0xA702 when they cannot open the association
        # to the destination: in practice this is the usual cause, not a full disk.
        return (
            f"{text} Most often the PACS could not connect to the move destination "
            f"'{ctx.destination}': check that a storage SCP listens at the host and port the "
            f"PACS has configured for '{ctx.destination}' (with movescu, --port N must be that "
            "port) and accepts its association; otherwise the PACS is short of resources, "
            "retry later."
        )
    if result.status == 0xA702 and ctx.service == "get":
        # dcmqrscp answers so when it has no context on this association for an instance:
        # its SOP class not proposed, or only in syntaxes it cannot convert its file to
        return (
            f"{text} Most often the PACS could not send the instances back over this "
            "association: it had no accepted storage context for their SOP class in a "
            "transfer syntax it can send them in (a PACS that keeps JPEG files and cannot "
            "decompress them needs +xs, or the +x option of their syntax; a SOP class left "
            "out needs --storage-class); otherwise it is short of resources, retry later."
        )
    return f"{text} {info.hint or 'Retry later or narrow the identifier.'}"


def _identifier_problem(result: RetrieveResult, ctx: _Context) -> str:
    info = describe(result.status, ctx.service)
    text = (
        f"The PACS '{ctx.called_ae}' could not process the C-{ctx.service.upper()}: status "
        f"0x{result.status:04X} ({info.meaning}). Check the identifier: QueryRetrieveLevel and "
        "the unique key of that level and of the levels above it for the model (e.g. "
        + say(
            "-S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=...; -P also needs PatientID",
            "level='STUDY', StudyInstanceUID=...; model='patient' also needs PatientID",
        )
        + ")."
    )
    if ctx.service == "move" and 0xC000 <= result.status <= 0xCFFF:
        # Orthanc 1.10 answers an unknown move destination with 0xC000, not 0xA801
        text += (
            " Some PACS (Orthanc) also answer so when they hold nothing that matches (a C-FIND "
            "with the same keys tells), or when they do not know the move destination "
            f"'{ctx.destination}': configure AE '{ctx.destination}' with host and port on the "
            f"PACS (Orthanc: DicomModalities) or {_known_destination('pass one it knows')}."
        )
    elif 0xC000 <= result.status <= 0xCFFF:
        text += (
            " Some PACS (Orthanc) also answer so when they hold nothing that matches: a C-FIND "
            "with the same keys tells."
        )
    return text


def _sub_operations_failed(result: RetrieveResult, ctx: _Context) -> str:
    info = describe(result.status, ctx.service)
    counts = (
        f"{result.completed or 0} completed, {result.failed or 0} failed, "
        f"{result.warning or 0} with warnings"
    )
    where = (
        f"the move destination '{ctx.destination}'"
        if ctx.service == "move"
        else "this getscu (over the C-GET association)"
    )
    text = (
        f"The C-{ctx.service.upper()} ended with status 0x{result.status:04X} ({info.meaning}): "
        f"{counts}. Some instances did not reach {where}; usually their storage SOP class or "
        "transfer syntax was not accepted there"
    )
    if ctx.service == "get":
        text += (
            " here (getscu: the +x option of the syntax the PACS keeps them in, e.g. +xs, "
            "or --storage-class for their SOP class)"
        )
    else:
        text += " (see the destination's log; DCMTK and pacsbox: +xs or +xa on the receiving side)"
    if result.failed_instances:
        shown = ", ".join(result.failed_instances[:5])
        more = len(result.failed_instances) - 5
        text += f". Failed instances: {shown}" + (f" and {more} more" if more > 0 else "")
    return text + "."


def _refused(result: RetrieveResult, ctx: _Context) -> str:
    info = describe(result.status, ctx.service)
    text = (
        f"The PACS '{ctx.called_ae}' ended the C-{ctx.service.upper()} with status "
        f"0x{result.status:04X} ({info.meaning})."
    )
    return f"{text} {info.hint}" if info.hint else text


# (low, high) status range -> (exception class, message builder); first match wins.
_FAILURES: list[tuple[int, int, type[RetrieveError], Callable[[RetrieveResult, _Context], str]]] = [
    (0xA801, 0xA801, MoveDestinationUnknownError, _destination_unknown),
    (0xA700, 0xA7FF, RetrieveOutOfResourcesError, _out_of_resources),
    (0xA900, 0xA9FF, IdentifierError, _identifier_problem),
    (0xC000, 0xCFFF, IdentifierError, _identifier_problem),
    (0x0120, 0x0121, IdentifierError, _identifier_problem),
    (0xB000, 0xBFFF, SubOperationsFailedError, _sub_operations_failed),
]


def failure_for(result: RetrieveResult, ctx: _Context) -> RetrieveError:
    """The exception for a final response that is a failure or 0xBxxx."""
    for low, high, cls, message in _FAILURES:
        if low <= result.status <= high:
            error = cls(message(result, ctx), result)
            break
    else:
        if result.failed:
            error = SubOperationsFailedError(_sub_operations_failed(result, ctx), result)
        else:
            error = RetrieveRefusedError(_refused(result, ctx), result)
    comment = (result.error_comment or "").strip()
    if comment:
        error.args = (f"{error.args[0]} The PACS says: {comment!r}.",)
    return error


# -- negotiation -------------------------------------------------------------------------------

# The storage SOP classes a C-GET proposes first: what PACS hold most (images of every
# modality, presentation states, SR, key objects, encapsulated documents, RT). The rest of the
# standard's non-retired classes follow in UID order while they fit in 128 contexts.
COMMON_STORAGE_CLASSES: tuple[str, ...] = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image - For Processing
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray Image - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # Digital Mammography X-Ray Image - For Processing
    "1.2.840.10008.5.1.4.1.1.1.3",  # Digital Intra-Oral X-Ray Image - For Presentation
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
    "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
    "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic Image
    "1.2.840.10008.5.1.4.1.1.12.2",  # X-Ray Radiofluoroscopic Image
    "1.2.840.10008.5.1.4.1.1.20",  # Nuclear Medicine Image
    "1.2.840.10008.5.1.4.1.1.128",  # Positron Emission Tomography Image
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET Image
    "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic Image
    "1.2.840.10008.5.1.4.1.1.13.1.3",  # Breast Tomosynthesis Image
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection Document
    "1.2.840.10008.5.1.4.1.1.88.67",  # X-Ray Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.66",  # Raw Data
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT Image
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT Structure Set
    "1.2.840.10008.5.1.4.1.1.481.5",  # RT Plan
)


def get_storage_classes(room: int = MAX_CONTEXTS - 1) -> tuple[str, ...]:
    """The storage SOP classes a C-GET proposes by default: the common ones first, then the
    other non-retired patient-model classes, ``room`` at most (one context goes to GET)."""
    from pydicom._uid_dict import UID_dictionary

    known = storage_sop_classes()
    current = sorted(
        (
            uid
            for uid in known
            if uid not in NON_PATIENT_STORAGE_SOP_CLASSES
            and UID_dictionary.get(uid, ("", "", "", ""))[3] != "Retired"
        ),
        key=lambda uid: tuple(int(part) for part in uid.split(".")),
    )
    ordered = dict.fromkeys(uid for uid in COMMON_STORAGE_CLASSES if uid in known)
    ordered.update(dict.fromkeys(current))
    return tuple(ordered)[:room]


def get_negotiation(
    model: Model | str,
    *,
    get_syntaxes: Sequence[str] = UNCOMPRESSED,
    store_syntaxes: Sequence[str] = UNCOMPRESSED,
    storage_classes: Iterable[str] | None = None,
) -> tuple[list[tuple[str, tuple[str, ...]]], list[RoleSelection]]:
    """The contexts and role selection items of a C-GET association (for ``build_rq``).

    One context for the model's GET SOP class, and one per storage SOP class the PACS may
    send back (``storage_classes``, default ``get_storage_classes()``), each with an SCP/SCU
    Role Selection item: SCU role 0, SCP role 1 (PS3.4 C.4.3.1.3.1, PS3.7 D.3.3.4), since
    on those contexts we are the storage SCP.
    """
    get_class = SOP_CLASSES[Model(model)].get
    if get_class is None:
        raise ValueError(f"the {Model(model).value} model has no C-GET SOP class")
    classes = tuple(dict.fromkeys(storage_classes or get_storage_classes()))
    if len(classes) > MAX_CONTEXTS - 1:
        raise ValueError(
            f"{len(classes)} storage SOP classes asked for; one C-GET association holds at "
            f"most {MAX_CONTEXTS - 1} besides the GET context: name fewer"
        )
    proposals = [(get_class, tuple(get_syntaxes))]
    proposals += [(sop_class, tuple(store_syntaxes)) for sop_class in classes]
    roles = [RoleSelection(sop_class, False, True) for sop_class in classes]
    return proposals, roles


# -- the operations ----------------------------------------------------------------------------

Cancel = asyncio.Event | Callable[[], bool] | None
ProgressCallback = Callable[[RetrieveProgress], None] | None


def _retrieve_context(assoc: Association, model: Model, service: str) -> AgreedContext:
    sop_class = getattr(SOP_CLASSES[model], service)
    if sop_class is None:
        raise ValueError(f"the {model.value} model has no C-{service.upper()} SOP class")
    for context in assoc.contexts.values():
        if context.abstract_syntax == sop_class:
            return context
    others = " or ".join(
        say(MODEL_FLAGS[m], f"model={m.value!r}")
        for m in (Model.STUDY_ROOT, Model.PATIENT_ROOT, Model.PATIENT_STUDY_ONLY)
        if m is not model
    )
    move_instead = say("movescu", "move, or retrieve(via='move')")
    raise PacsboxError(
        f"The peer did not accept the {model.value} root C-{service.upper()} SOP class "
        f"({sop_class}). Retrieve with a model it supports ({others})"
        + (f", or use C-MOVE ({move_instead}) instead of C-GET" if service == "get" else "")
        + f"; {see_debug('what it accepted')}."
    )


def encode_identifier(identifier: Dataset | bytes, transfer_syntax: str) -> bytes:
    """The identifier's bytes in the context's transfer syntax (given bytes are sent as-is)."""
    if isinstance(identifier, bytes | bytearray):
        return bytes(identifier)
    from ..datasets import encode_dataset

    return encode_dataset(identifier, transfer_syntax)


def _failed_instances(data, transfer_syntax: str) -> tuple[str, ...]:
    """Failed SOP Instance UID List (0008,0058) of a final response's identifier, if any."""
    if not isinstance(data, bytes | bytearray) or not data:
        return ()
    from ..datasets import decode_dataset

    try:
        element = decode_dataset(data, transfer_syntax).get(FAILED_SOP_INSTANCE_UID_LIST)
    except Exception as exc:  # a malformed identifier must not hide the status
        log.warning("Cannot read the identifier of the final response: %s", exc)
        return ()
    if element is None or element.value in (None, ""):
        return ()
    value = element.value
    values = str(value).split("\\") if isinstance(value, str | bytes) else list(value)
    return tuple(text for v in values if (text := str(v).strip("\0 ")))


class _StoreCounter(RequestHandler):
    """Wraps the C-GET association's storage handler to count the instances as they arrive."""

    def __init__(self, inner: RequestHandler, on_stored: Callable[[CStoreRQ], None]) -> None:
        self.inner, self.on_stored = inner, on_stored

    def open_sink(self, assoc, context, request):
        return self.inner.open_sink(assoc, context, request)

    async def handle(self, assoc, context, request, dataset) -> None:
        await self.inner.handle(assoc, context, request, dataset)
        self.on_stored(request)

    def close(self) -> None:
        self.inner.close()


async def move(
    assoc: Association,
    model: Model | str,
    identifier: Dataset | bytes,
    destination: str,
    *,
    on_progress: ProgressCallback = None,
    cancel: Cancel = None,
    priority: int = Priority.MEDIUM,
) -> RetrieveResult:
    """C-MOVE: the PACS sends the instances matching ``identifier`` to AE ``destination``.

    Returns the final response as a RetrieveResult (Success without failed sub-operations,
    or Cancel); raises a RetrieveError subclass for any other (0xB000 included).
    """
    if not destination.strip() or len(destination) > 16 or "\\" in destination:
        raise ValueError(
            f"move destination {destination!r} is not a valid AE title: 1 to 16 characters, "
            f"no backslash ({say('-aem', 'destination')})"
        )
    return await _retrieve(
        assoc, Model(model), identifier, "move", destination, on_progress, cancel, priority
    )


async def get(
    assoc: Association,
    model: Model | str,
    identifier: Dataset | bytes,
    *,
    on_progress: ProgressCallback = None,
    cancel: Cancel = None,
    priority: int = Priority.MEDIUM,
) -> RetrieveResult:
    """C-GET: the PACS sends the matching instances back on ``assoc`` as C-STOREs, served by
    the association's CStoreRQ handler (open it with ``get_negotiation``'s proposals and
    roles and ``handlers={CStoreRQ: StorageSCP(...)}``). Returns as ``move`` does."""
    if CStoreRQ not in assoc.handlers:
        raise ValueError(
            "C-GET needs a C-STORE handler on the association: connect with "
            "handlers={CStoreRQ: StorageSCP(directory)}"
        )
    model = Model(model)
    if not any(c.requestor_is_scp for c in assoc.contexts.values()):
        log.warning(
            "The peer accepted no storage context with us as SCP: it cannot send any instance "
            "back over this C-GET association"
        )
    return await _retrieve(assoc, model, identifier, "get", None, on_progress, cancel, priority)


async def _retrieve(
    assoc: Association,
    model: Model,
    identifier,
    service: str,
    destination: str | None,
    on_progress: ProgressCallback,
    cancel: Cancel,
    priority: int,
) -> RetrieveResult:
    context = _retrieve_context(assoc, model, service)
    syntax = context.transfer_syntax
    raw = encode_identifier(identifier, syntax)
    message_id = assoc.next_message_id()
    sop_class = getattr(SOP_CLASSES[model], service)
    if service == "move":
        request = CMoveRQ(
            message_id=message_id,
            affected_sop_class_uid=sop_class,
            move_destination=destination,  # type: ignore[arg-type]
            priority=priority,
        )
        log.info("Sending Move Request (MsgID %d)", message_id)
    else:
        request = CGetRQ(message_id=message_id, affected_sop_class_uid=sop_class, priority=priority)
        log.info("Sending C-GET Request (MsgID %d)", message_id)
    if log.isEnabledFor(logging.INFO):
        from ..dataset_dump import dump_lines

        lines = ["Request Identifiers:", "", *dump_lines(raw, syntax, request=True), ""]
        log.info("\n".join(lines))
    rq = assoc.rq
    ctx = _Context(
        called_ae=rq.called_ae_title if rq else "?",
        calling_ae=rq.calling_ae_title if rq else "?",
        destination=destination,
        service=service,
    )
    state = _State()
    cancelled = False

    async def send_cancel() -> None:
        nonlocal cancelled
        if cancelled or assoc.closed.done():
            return
        cancelled = True
        with contextlib.suppress(PacsboxError):  # the association ended: nothing to cancel
            await assoc.cancel(message_id, context.context_id)

    def report(progress: RetrieveProgress) -> bool:
        """Tell the caller; True when its cancel callable now asks to cancel."""
        if on_progress is not None:
            on_progress(progress)
        return (
            cancel is not None
            and not cancelled
            and not isinstance(cancel, asyncio.Event)
            and bool(cancel())
        )

    def stored(store_rq: CStoreRQ) -> None:
        state.received += 1
        if report(state.progress(None, store_rq.affected_sop_instance_uid)):
            tasks.add(assoc.loop.create_task(send_cancel()))  # we are inside the C-STORE handler

    tasks: set[asyncio.Task] = set()

    original_handlers = assoc.handlers
    if service == "get":
        assoc.handlers = {
            **original_handlers,
            CStoreRQ: _StoreCounter(original_handlers[CStoreRQ], stored),
        }
    watcher = None
    if isinstance(cancel, asyncio.Event):

        async def watch() -> None:
            await cancel.wait()
            await send_cancel()

        watcher = assoc.loop.create_task(watch())
    try:
        async for response, data in assoc.request(context.context_id, request, raw):
            status = response.status  # type: ignore[attr-defined]
            state.update(response)
            if category_of(status) is StatusCategory.PENDING:
                state.pending += 1
                if service == "move":
                    log.info("Received Move Response %d (Pending)", state.pending)
                else:
                    log.info("Received C-GET Response (Pending)")
                if report(state.progress(status)):
                    await send_cancel()
                continue
            result = state.result(response, _failed_instances(data, syntax), service)
            if service == "move":
                words = dcmtk_status_words(status)
                log.info("Received Final Move Response (%s)", words)
            else:
                log.info("Received C-GET Response (%s)", dcmtk_status_words(status))
            if service == "get" and log.isEnabledFor(logging.INFO):
                log.info(
                    "Final status report from last C-%s message:\n"
                    "  Number of Remaining Suboperations : %s\n"
                    "  Number of Completed Suboperations : %s\n"
                    "  Number of Failed Suboperations    : %s\n"
                    "  Number of Warning Suboperations   : %s",
                    service.upper(),
                    *(
                        _count(c)
                        for c in (result.remaining, result.completed, result.failed, result.warning)
                    ),
                )
            category = result.category
            if category is StatusCategory.CANCEL or (
                category is StatusCategory.SUCCESS and not result.failed
            ):
                return result
            # 0xB000, a failure, or a "success" that counts failed sub-operations anyway
            raise failure_for(result, ctx)
    except AssociationAbortedError as exc:
        raise PacsboxError(
            f"{str(exc).replace(chr(10), ' ')} The PACS aborted the association during the C-{service.upper()}. PACS "
            "that allow retrieves only from AE titles they know do this (Orthanc: "
            f"DicomModalities); check that the PACS knows the calling AE title "
            f"'{ctx.calling_ae}' (-aet)."
        ) from exc
    finally:
        if watcher is not None:
            watcher.cancel()
        for task in tasks:
            task.cancel()
        assoc.handlers = original_handlers
    raise PacsboxError(
        "the association ended without a final C-MOVE/C-GET response"
    )  # pragma: no cover


def _count(value: int | None) -> str:
    return "none" if value is None else str(value)


@dataclass(slots=True)
class _State:
    remaining: int | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None
    received: int = 0
    pending: int = 0

    def update(self, response) -> None:
        for name in ("remaining", "completed", "failed", "warning"):
            value = getattr(response, f"number_of_{name}_suboperations")
            if value is not None:
                setattr(self, name, value)

    def progress(self, status: int | None, uid: str | None = None) -> RetrieveProgress:
        return RetrieveProgress(
            status, self.remaining, self.completed, self.failed, self.warning, self.received, uid
        )

    def result(self, response, failed_instances: tuple[str, ...], service: str) -> RetrieveResult:
        # PS3.4 C.4.2.1.4.2: a final response may omit Remaining (it is then 0 by definition)
        return RetrieveResult(
            status=response.status,
            remaining=response.number_of_remaining_suboperations,
            completed=response.number_of_completed_suboperations,
            failed=response.number_of_failed_suboperations,
            warning=response.number_of_warning_suboperations,
            received=self.received,
            failed_instances=failed_instances,
            error_comment=response.error_comment,
            pending_responses=self.pending,
            service=service,
        )
