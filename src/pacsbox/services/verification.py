"""Verification service class (PS3.4 Annex A): C-ECHO in both roles."""

from __future__ import annotations

from ..dimse import CEchoRQ, CEchoRSP
from ..dimse.status import describe
from ..log import log
from ..net.association import Association, RequestHandler
from ..syntaxes import ImplicitVRLittleEndian
from ..ul.negotiation import AgreedContext

VERIFICATION = "1.2.840.10008.1.1"

# echoscu proposes only Implicit VR Little Endian, the DICOM default (PS3.5 10.1)
ECHO_PROPOSAL = (VERIFICATION, (ImplicitVRLittleEndian,))


class VerificationSCP(RequestHandler):
    answers_now = True  # answered from the receive callback (RequestHandler)

    def answer(self, assoc: Association, context: AgreedContext, request, dataset) -> CEchoRSP:
        log.info("Received Echo Request (MsgID %d)", request.message_id)
        log.info("Sending Echo Response (Success)")
        return CEchoRSP(
            message_id_being_responded_to=request.message_id,
            status=0x0000,
            affected_sop_class_uid=VERIFICATION,
        )


async def echo(assoc: Association) -> int:
    """One C-ECHO; returns the response status (0x0000 is success)."""
    context = assoc.context_for(VERIFICATION)
    message_id = assoc.next_message_id()
    log.info("Sending Echo Request (MsgID %d)", message_id)
    response, _ = await assoc.request_one(context.context_id, CEchoRQ(message_id=message_id))
    status = response.status  # type: ignore[attr-defined]
    if status:
        log.warning("Received Echo Response (%s)", describe(status, "verification"))
    else:
        log.info("Received Echo Response (Success)")
    return status
