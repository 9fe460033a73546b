"""Query/Retrieve service class, C-FIND SCP role (PS3.4 C.4.1), over the archive's index.

The identifier is decoded with pydicom, the query runs on its own database connection in a
worker thread (a slow query does not stall the other associations), and each match goes back
as a Pending response as soon as it is made. A C-CANCEL-RQ stops the responses at the next
one: the final status is then Cancel (0xFE00).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from pydicom.charset import convert_encodings

from ..datasets import decode_dataset, encode_dataset
from ..dimse import CFindRQ, CFindRSP
from ..log import log
from ..net.association import Association, RequestHandler
from ..ul.negotiation import UNCOMPRESSED, AgreedContext, agreed_extended
from .qr_models import FIND_MODELS, Model

PENDING = 0xFF00
SUCCESS = 0x0000
CANCEL = 0xFE00
SOP_CLASS_NOT_SUPPORTED = 0x0122
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
IDENTIFIER_DOES_NOT_MATCH = 0xA900

# The query models the archive answers (the worklist is not an archive's job).
FIND_SOP_CLASSES = frozenset(uid for uid, model in FIND_MODELS.items() if model != Model.WORKLIST)
FIND_SYNTAXES = UNCOMPRESSED

_BATCH = 64  # responses made per trip to the worker thread


def decode_identifier(data: bytes | bytearray, transfer_syntax: str):
    """A request's identifier as a pydicom Dataset, every element converted now: a malformed
    value fails here (status 0xC000), not in the middle of a query.

    Without a Specific Character Set only ASCII is allowed, but DCMTK's findscu sends what
    the terminal typed (``-k PatientName=Müller*``, UTF-8 on nearly every terminal) with
    none: text that is not ASCII and is valid UTF-8 is read as ISO_IR 192, as Orthanc reads
    it by default; other bytes stay Latin-1, pydicom's fallback."""
    ds = decode_dataset(data, transfer_syntax)
    if not ds.get("SpecificCharacterSet") and _utf8_text(ds):
        log.info("The identifier has no Specific Character Set; its non-ASCII text is valid "
                 "UTF-8: read as ISO_IR 192")  # fmt: skip
        ds.SpecificCharacterSet = "ISO_IR 192"
        implicit, little = ds.original_encoding  # the raw values decode by what it was read
        ds.set_original_encoding(implicit, little, convert_encodings("ISO_IR 192"))  # with
    for _ in ds.iterall():
        pass
    return ds


_TEXT_VRS = frozenset(("PN", "LO", "SH", "LT", "ST", "UT", "UC"))


def _utf8_text(ds) -> bool:
    """Whether a top-level text element, still raw, holds non-ASCII bytes that are UTF-8
    (and none holds bytes that are not)."""
    from pydicom.datadict import dictionary_VR

    found = False
    for tag in list(ds.keys()):  # keys: the elements stay raw (iterating converts them)
        raw = ds.get_item(tag)
        value = getattr(raw, "value", None)
        if raw is None or not isinstance(value, bytes):
            continue
        try:
            vr = raw.VR or dictionary_VR(tag)  # implicit VR: the dictionary's
        except KeyError:
            continue
        if vr not in _TEXT_VRS:
            continue
        if value.isascii():
            continue
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return False
        found = True
    return found


# PS3.4 C.5.1.1.1: the C-FIND service class application information, byte by byte: relational
# queries, combined date-time matching, fuzzy semantic matching of person names, timezone
# query adjustment. We do the first three.
FIND_EXTENDED = bytes((1, 1, 1, 0))
# PS3.4 C.5.2.1.1 / C.5.3.1.1: relational retrieval (C-MOVE, C-GET): a retrieve may name
# instances by a lower level's unique key alone, which retrieve_instances accepts.
RETRIEVE_EXTENDED = bytes((1,))


def negotiated(options, agreed: bytes):
    """``options`` with what the extended negotiation agreed for this SOP class."""
    import dataclasses

    def flag(index: int) -> bool:
        return len(agreed) > index and agreed[index] == 1

    return dataclasses.replace(
        options, relational=flag(0), combined_datetime=flag(1), fuzzy_pn=flag(2)
    )


class FindSCP(RequestHandler):
    """C-FIND against ``index`` (pacsbox.archive.Index).

    options_for(assoc) gives the QueryOptions of an association (RetrieveAETitle, the storage
    area); it may instead return (status, comment) to refuse the query (dcmqrscp's W areas).
    """

    def __init__(self, index, options_for: Callable) -> None:
        self.index = index
        self.options_for = options_for

    async def handle(self, assoc: Association, context: AgreedContext, request, dataset) -> None:
        from ..archive.query import Query, QueryError

        model = FIND_MODELS.get(request.affected_sop_class_uid)
        log.info("Received Find Request (MsgID %d)", request.message_id)
        if model is None or model is Model.WORKLIST:
            await assoc.respond_failure(
                context, request, SOP_CLASS_NOT_SUPPORTED,
                "this archive answers Patient Root, Study Root and Patient/Study Only C-FIND",
            )  # fmt: skip
            return
        options = self.options_for(assoc)
        if isinstance(options, tuple):
            await assoc.respond_failure(context, request, *options)
            return
        options = negotiated(options, agreed_extended(assoc.ac, request.affected_sop_class_uid))
        try:
            identifier = decode_identifier(dataset or b"", context.transfer_syntax)
        except Exception as exc:
            log.error("Cannot decode the C-FIND identifier: %s", exc)
            await assoc.respond_failure(
                context, request, CANNOT_UNDERSTAND, f"identifier cannot be decoded: {exc}"
            )
            return
        if log.isEnabledFor(10):
            log.debug("Find identifier:\n%s", identifier)
        try:
            query = Query(model, identifier, options)
        except QueryError as exc:
            log.warning("Refusing C-FIND: %s", exc.comment)
            await assoc.respond_failure(context, request, exc.status, exc.comment)
            return
        status, comment, count = await self._respond(assoc, context, request, query)
        log.info("Find Response: %d match(es), final status 0x%04X", count, status)
        await assoc.send(
            context.context_id,
            CFindRSP(
                message_id_being_responded_to=request.message_id,
                status=status,
                affected_sop_class_uid=request.affected_sop_class_uid,
                error_comment=comment,
            ),
        )

    async def _respond(
        self, assoc, context, request: CFindRQ, query
    ) -> tuple[int, str | None, int]:
        operation = assoc.operation(request.message_id)
        conn = self.index.engine.connect()
        count = 0
        try:
            responses = query.run(conn)
            while True:
                try:
                    batch = await asyncio.to_thread(
                        lambda: [
                            encode_dataset(ds, context.transfer_syntax)
                            for ds in itertools.islice(responses, _BATCH)
                        ]
                    )
                except Exception as exc:
                    log.error("C-FIND failed: %s", exc)
                    return OUT_OF_RESOURCES, f"query failed: {exc}"[:64], count
                if not batch:
                    return SUCCESS, None, count
                for data in batch:
                    if operation is not None and operation.cancelled.is_set():
                        log.info("C-FIND cancelled after %d response(s)", count)
                        return CANCEL, None, count
                    await assoc.send(
                        context.context_id,
                        CFindRSP(
                            message_id_being_responded_to=request.message_id,
                            status=PENDING,
                            affected_sop_class_uid=request.affected_sop_class_uid,
                            has_dataset=True,
                        ),
                        data,
                    )
                    count += 1
                    # let a C-CANCEL-RQ that arrived in the meantime be read before the next
                    await asyncio.sleep(0)
        finally:
            await asyncio.to_thread(conn.close)


def with_query(policy, *, retrieve: bool = True):
    """``policy`` (an AcceptorPolicy) that also accepts the archive's C-FIND (and C-MOVE and
    C-GET) SOP classes in the uncompressed syntaxes, and lets a C-GET requestor be the SCP of
    every storage class its C-STOREs come back on (PS3.4 C.4.3.1, role selection)."""
    from ..sopclasses import storage_sop_classes
    from .qr_models import GET_MODELS, MOVE_MODELS

    policy = policy.serving(
        FIND_SOP_CLASSES, FIND_SYNTAXES, extended=dict.fromkeys(FIND_SOP_CLASSES, FIND_EXTENDED)
    )
    if not retrieve:
        return policy
    retrieving = set(MOVE_MODELS) | set(GET_MODELS)
    return policy.serving(
        retrieving, FIND_SYNTAXES,
        extended=dict.fromkeys(retrieving, RETRIEVE_EXTENDED),
        requestor_may_be_scp=storage_sop_classes(),
    )  # fmt: skip
