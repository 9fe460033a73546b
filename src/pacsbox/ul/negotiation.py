"""Presentation context, role and max-PDU negotiation, both sides (PS3.8 9.3.2.2, PS3.7 D.3.3).

The requestor proposes contexts (``propose``); the acceptor answers each with the first
transfer syntax in *its own* preference order that the requestor offered
(``negotiate``); both sides then read the agreement the same way (``agreed_contexts``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import field

from ..records import record
from ..syntaxes import UNCOMPRESSED  # DCMTK's default order: explicit LE, explicit BE, implicit
from .pdu import (
    AAssociateAC,
    AAssociateRQ,
    ContextResult,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassExtendedNegotiation,
)

MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: context IDs are odd integers 1..255

# DCMTK's default: explicit VR in local (little) byte order first, then big endian, then implicit.


class NegotiationError(ValueError):
    """A proposal that cannot be put into an A-ASSOCIATE-RQ."""


@record(frozen=True)
class AgreedContext:
    """One accepted presentation context, as both sides understand it after negotiation.

    ``requestor_is_scu`` / ``requestor_is_scp`` are the roles the *association requestor*
    plays for this SOP class (the acceptor plays the other ones).
    """

    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    requestor_is_scu: bool = True
    requestor_is_scp: bool = False


@record
class AcceptorPolicy:
    """What an acceptor agrees to.

    abstract_syntaxes: the SOP classes we serve; ``None`` accepts any (DCMTK's --promiscuous).
    transfer_syntaxes: accepted syntaxes in *our* preference order (DCMTK's +x= / +xs ...).
    transfer_syntaxes_for: per-SOP-class overrides of that list.
    requestor_may_be_scp: SOP classes for which the requestor may act as SCP (C-GET's
        C-STOREs come back on the same association with the roles reversed).
    extended_negotiation: per SOP class, the service-class application information bytes we
        support (PS3.7 D.3.3.5; for C-FIND PS3.4 C.5.1.1: relational queries, combined
        date-time matching, fuzzy semantic matching of person names, timezone adjustment),
        each byte 1 where we can; the reply agrees to what both sides have.
    """

    abstract_syntaxes: frozenset[str] | None = frozenset()
    transfer_syntaxes: tuple[str, ...] = UNCOMPRESSED
    transfer_syntaxes_for: dict[str, tuple[str, ...]] = field(default_factory=dict)
    requestor_may_be_scp: frozenset[str] = frozenset()
    extended_negotiation: dict[str, bytes] = field(default_factory=dict)

    def serving(
        self,
        classes: Iterable[str],
        syntaxes: tuple[str, ...],
        *,
        extended: dict[str, bytes] | None = None,
        requestor_may_be_scp: Iterable[str] = (),
    ) -> AcceptorPolicy:
        """This policy plus ``classes`` in ``syntaxes`` (and their extended negotiation, and
        SOP classes whose SCP role a requestor may take): a new policy, this one unchanged."""
        classes = frozenset(classes)
        ours = self.abstract_syntaxes
        return AcceptorPolicy(
            abstract_syntaxes=None if ours is None else ours | classes,
            transfer_syntaxes=self.transfer_syntaxes,
            transfer_syntaxes_for={
                **self.transfer_syntaxes_for,
                **dict.fromkeys(classes, syntaxes),
            },
            requestor_may_be_scp=self.requestor_may_be_scp | frozenset(requestor_may_be_scp),
            extended_negotiation={**self.extended_negotiation, **(extended or {})},
        )

    def syntaxes_for(self, abstract_syntax: str) -> tuple[str, ...] | None:
        """Our preference order for this SOP class, or None if we do not support it."""
        if self.abstract_syntaxes is not None and abstract_syntax not in self.abstract_syntaxes:
            return None
        return self.transfer_syntaxes_for.get(abstract_syntax, self.transfer_syntaxes)


def extended_replies(rq: AAssociateRQ, policy: AcceptorPolicy) -> list[SOPClassExtendedNegotiation]:
    """The acceptor's SOP class extended negotiation items (PS3.7 D.3.3.5): for each one the
    requestor sent for a SOP class whose options we know, the same fields, each set only where
    the requestor asked for it and we support it. Items for other SOP classes get no reply:
    the requestor then assumes none of its options (PS3.4 C.5.1.1.1)."""
    replies = []
    for item in rq.user_information.sop_class_extended:
        ours = policy.extended_negotiation.get(item.sop_class_uid)
        if ours is None or policy.syntaxes_for(item.sop_class_uid) is None:
            continue
        asked = item.application_information
        agreed = bytes(
            1 if asked[i] == 1 and i < len(ours) and ours[i] == 1 else 0 for i in range(len(asked))
        )
        replies.append(SOPClassExtendedNegotiation(item.sop_class_uid, agreed))
    return replies


def agreed_extended(ac: AAssociateAC | None, sop_class_uid: str) -> bytes:
    """The extended negotiation both sides agreed for a SOP class (b"" when none)."""
    if ac is None:
        return b""
    return next(
        (
            item.application_information
            for item in ac.user_information.sop_class_extended
            if item.sop_class_uid == sop_class_uid
        ),
        b"",
    )


def propose(
    proposals: Iterable[tuple[str, Sequence[str]]],
) -> list[PresentationContextRQ]:
    """Presentation context items with context IDs 1, 3, 5 ... (PS3.8 9.3.2.2)."""
    contexts = [
        PresentationContextRQ(2 * index + 1, abstract, list(syntaxes))
        for index, (abstract, syntaxes) in enumerate(proposals)
    ]
    if len(contexts) > MAX_CONTEXTS:
        raise NegotiationError(
            f"{len(contexts)} presentation contexts proposed; one association carries at most "
            f"{MAX_CONTEXTS}. Split the proposal over several associations."
        )
    for pc in contexts:
        if not pc.transfer_syntaxes:
            raise NegotiationError(f"no transfer syntax proposed for {pc.abstract_syntax}")
    return contexts


def negotiate(
    rq: AAssociateRQ, policy: AcceptorPolicy
) -> tuple[list[PresentationContextAC], list[RoleSelection]]:
    """The acceptor's answer: one result per proposed context, and the role selection replies."""
    answers: list[PresentationContextAC] = []
    for pc in rq.presentation_contexts:
        ours = policy.syntaxes_for(pc.abstract_syntax)
        if ours is None:
            answers.append(
                PresentationContextAC(pc.context_id, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED)
            )
            continue
        offered = set(pc.transfer_syntaxes)
        chosen = next((ts for ts in ours if ts in offered), None)
        if chosen is None:
            answers.append(
                PresentationContextAC(pc.context_id, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED)
            )
        else:
            answers.append(PresentationContextAC(pc.context_id, ContextResult.ACCEPTANCE, chosen))

    # PS3.7 D.3.3.4: answer every role selection item for a SOP class we serve; the requestor
    # keeps the SCU role it asked for, and gets the SCP role only where the policy allows it.
    roles = [
        RoleSelection(
            item.sop_class_uid,
            item.scu_role,
            item.scp_role and item.sop_class_uid in policy.requestor_may_be_scp,
        )
        for item in rq.user_information.role_selections
        if policy.syntaxes_for(item.sop_class_uid) is not None
    ]
    return answers, roles


def agreed_contexts(rq: AAssociateRQ, ac: AAssociateAC) -> dict[int, AgreedContext]:
    """The accepted contexts by ID, with the roles the requestor plays (PS3.7 D.3.3.4)."""
    proposed = {pc.context_id: pc for pc in rq.presentation_contexts}
    asked = {r.sop_class_uid: r for r in rq.user_information.role_selections}
    answered = {r.sop_class_uid: r for r in ac.user_information.role_selections}
    agreed: dict[int, AgreedContext] = {}
    for answer in ac.presentation_contexts:
        pc = proposed.get(answer.context_id)
        if pc is None or answer.result != ContextResult.ACCEPTANCE:
            continue
        scu, scp = True, False  # the default roles
        ask, reply = asked.get(pc.abstract_syntax), answered.get(pc.abstract_syntax)
        if ask is not None and reply is not None:
            scu, scp = ask.scu_role and reply.scu_role, ask.scp_role and reply.scp_role
        agreed[answer.context_id] = AgreedContext(
            answer.context_id, pc.abstract_syntax, answer.transfer_syntax, scu, scp
        )
    return agreed


def max_send_pdv(peer_max_pdu: int) -> int:
    """The largest PDV data we may send in one P-DATA-TF (DCMTK's 'Max Send PDV')."""
    # One PDV per PDU: the PDU value holds a 4-byte item length, context ID and control byte.
    return peer_max_pdu - 6 if peer_max_pdu else 0
