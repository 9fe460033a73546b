"""Errors for people: what a rejection, an abort or a refused presentation context means.

Each outcome the peer can send during association has DCMTK's words (so our log lines match
the ones users know from DCMTK's tools) and a hint that names the fix, in data tables keyed by
the PDU's fields. ``describe_*`` turn a PDU into a ``Diagnosis``; the exceptions carry one and
the structured fields, and their ``str()`` is the whole message.
"""

from __future__ import annotations

from pacsbox.errors import PacsboxError
from pacsbox.records import record
from pacsbox.uids import uid_description, uid_name
from pacsbox.ul.pdu import (
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AbortReason,
    AbortSource,
    ContextResult,
    RejectResult,
    RejectSource,
)
from pacsbox.wording import say


@record
class Diagnosis:
    """``lines``: DCMTK-style log lines; ``hint``: what to change; ``message``: the whole story."""

    lines: list[str]
    hint: str
    message: str = ""

    def __str__(self) -> str:
        return self.message or "\n".join([*self.lines, self.hint])


# ---------------------------------------------------------------------------------------------
# A-ASSOCIATE-RJ, PS3.8 9.3.4 (Table 9-21). Words as DCMTK 3.6.7 prints them.

REJECT_RESULT_WORDS: dict[int, str] = {
    RejectResult.REJECTED_PERMANENT: "Rejected Permanent",
    RejectResult.REJECTED_TRANSIENT: "Rejected Transient",
}

REJECT_SOURCE_WORDS: dict[int, str] = {
    RejectSource.SERVICE_USER: "Service User",
    RejectSource.SERVICE_PROVIDER_ACSE: "Service Provider (ACSE Related)",
    RejectSource.SERVICE_PROVIDER_PRESENTATION: "Service Provider (Presentation Related)",
}

_DCMQRSCP_CALLED_NOTE = (
    " (DCMTK's dcmqrscp sends this reason also when it does not know the calling AE title;"
    " check {aet} too: we sent '{calling}'.)"
)
_BUSY = (
    " Retry later, open fewer associations at once, or raise the peer's limit"
    " (DCMTK's dcmqrscp: MaxAssociations in its config file)."
)

# (source, reason) -> (DCMTK's words, hint). The reason codes depend on the source.
REJECT_REASONS: dict[tuple[int, int], tuple[str, str]] = {
    (RejectSource.SERVICE_USER, 1): (
        "No Reason",
        "The peer's application refused the association without giving a reason. Look at the"
        " peer's log (DCMTK peers say why with -d); frequent causes are AE titles or hosts the"
        " peer is not configured for, or a limit of simultaneous associations.",
    ),
    (RejectSource.SERVICE_USER, 2): (
        "App Context Name Not Supported",
        "The peer does not accept the DICOM application context (1.2.840.10008.3.1.1.1, the"
        " only one DICOM defines, PS3.7 A.2.1). The program at that port is probably not a"
        " DICOM application, or a broken one: check host and port.",
    ),
    (RejectSource.SERVICE_USER, 3): (
        "Calling AE Title Not Recognized",
        "The peer does not accept our AE title '{calling}'. Pass one it is configured for with"
        " {aet}, or add '{calling}' to the peer's configuration (dcmqrscp: HostTable and the"
        " AETable line of the called AE).",
    ),
    (RejectSource.SERVICE_USER, 7): (
        "Called AE Title Not Recognized",
        "The peer does not know the called AE title '{called}' that we sent. Pass the PACS's"
        " own AE title with {aec} (for DCMTK's dcmqrscp: one of the AETable entries in its"
        " config file)." + _DCMQRSCP_CALLED_NOTE,
    ),
    (RejectSource.SERVICE_PROVIDER_ACSE, 1): (
        "No Reason",
        "The peer's DICOM protocol layer (ACSE) refused the association without giving a"
        " reason. Look at the peer's log (DCMTK peers say why with -d).",
    ),
    (RejectSource.SERVICE_PROVIDER_ACSE, 2): (
        "Protocol Version Not Supported",
        "The peer does not support the protocol version of our A-ASSOCIATE-RQ (version 1, the"
        " only one PS3.8 9.3.2 defines). The program at that port is probably not a DICOM"
        " application, or a broken one: check host and port.",
    ),
    (RejectSource.SERVICE_PROVIDER_PRESENTATION, 1): (
        "Temporary Congestion",
        "The peer is too busy to accept another association right now." + _BUSY,
    ),
    (RejectSource.SERVICE_PROVIDER_PRESENTATION, 2): (
        "Local Limit Exceeded",
        "The peer has reached its limit of simultaneous associations." + _BUSY,
    ),
}

_RESERVED_REJECT_HINT = (
    "The peer sent a result, source or reason that PS3.8 9.3.4 reserves, so it says nothing"
    " standard. Look at the peer's log (DCMTK peers say why with -d)."
)


def _words(table: dict[int, str], value: int) -> str:
    return table.get(value) or f"Unknown ({value})"


def describe_rejection(rj: AAssociateRJ, called_ae: str, calling_ae: str) -> Diagnosis:
    """DCMTK's three lines for an A-ASSOCIATE-RJ and a hint naming the AE title to change."""
    known = REJECT_REASONS.get((rj.source, rj.reason))
    if known is None:
        reason_words, template = f"Unknown (source {rj.source}, reason {rj.reason})", ""
    else:
        reason_words, template = known
    result_words = _words(REJECT_RESULT_WORDS, rj.result)
    source_words = _words(REJECT_SOURCE_WORDS, rj.source)
    if (
        known is None
        or rj.result not in REJECT_RESULT_WORDS
        or rj.source not in REJECT_SOURCE_WORDS
    ):
        template = _RESERVED_REJECT_HINT
    hint = template.format(called=called_ae, calling=calling_ae, **_ae_flags())
    lines = [
        "Association Rejected:",
        f"Result: {result_words}, Source: {source_words}",
        f"Reason: {reason_words}",
    ]
    message = (
        f"Association rejected by the peer (called AE '{called_ae}', calling AE"
        f" '{calling_ae}'): {result_words}, Source: {source_words}, Reason: {reason_words}.\n"
        + hint
    )
    return Diagnosis(lines, hint, message)


# ---------------------------------------------------------------------------------------------
# A-ABORT, PS3.8 9.3.8 (Table 9-26).

ABORT_SOURCE_WORDS: dict[int, str] = {
    AbortSource.SERVICE_USER: "Service User",
    AbortSource.RESERVED: "Reserved",
    AbortSource.SERVICE_PROVIDER: "Service Provider",
}

# Significant only when the source is the service provider (PS3.8 9.3.8).
ABORT_REASONS: dict[int, tuple[str, str]] = {
    AbortReason.NOT_SPECIFIED: (
        "Reason Not Specified",
        "The peer's DICOM protocol layer aborted without saying why.",
    ),
    AbortReason.UNRECOGNIZED_PDU: (
        "Unrecognized PDU",
        "The peer did not recognize a PDU we sent: the bytes were not DICOM to it (TLS against"
        " a plain port or the other way round, or a non-DICOM program at that port).",
    ),
    AbortReason.UNEXPECTED_PDU: (
        "Unexpected PDU",
        "The peer received a PDU it did not expect in its state of the association"
        " (PS3.8 9.2), e.g. data before the association was accepted or after release began.",
    ),
    AbortReason.RESERVED: ("Reserved", "The peer sent a reason that PS3.8 9.3.8 reserves."),
    AbortReason.UNRECOGNIZED_PDU_PARAMETER: (
        "Unrecognized PDU Parameter",
        "The peer did not recognize an item or sub-item of a PDU we sent.",
    ),
    AbortReason.UNEXPECTED_PDU_PARAMETER: (
        "Unexpected PDU Parameter",
        "The peer found an item or sub-item it did not expect in a PDU we sent.",
    ),
    AbortReason.INVALID_PDU_PARAMETER_VALUE: (
        "Invalid PDU Parameter Value",
        "The peer found an invalid value in a PDU we sent, e.g. a PDU longer than its maximum"
        " PDU length or a presentation context ID it had not accepted.",
    ),
}

_ABORT_USER_HINT = (
    "The peer's application aborted the association; an A-ABORT from the service user carries"
    " no reason (PS3.8 9.3.8)."
)
_ABORT_LOOK = " Look at the peer's log: DCMTK peers say why with -d."
_ABORT_DURING_NEGOTIATION = (
    " Some peers abort instead of rejecting when they refuse our calling or called AE title or"
    " accept no presentation context: check {aet} and {aec} and the peer's configuration."
)


def _ae_flags() -> dict[str, str]:
    """How the reader sets our AE title and the called one: the flags, or the arguments."""
    return {"aet": say("-aet", "calling_ae="), "aec": say("-aec", "called_ae=")}


def describe_abort(source: int, reason: int, *, during_negotiation: bool = False) -> Diagnosis:
    """Words for an A-ABORT and a hint. ``during_negotiation``: it answered our A-ASSOCIATE-RQ."""
    source_words = _words(ABORT_SOURCE_WORDS, source)
    if source == AbortSource.SERVICE_PROVIDER:
        reason_words, hint = ABORT_REASONS.get(
            reason, (f"Unknown ({reason})", "The peer sent a reason PS3.8 9.3.8 reserves.")
        )
    else:
        # PS3.8 9.3.8: the reason field is not significant unless the provider aborted
        reason_words, hint = "Not Significant", _ABORT_USER_HINT
    hint += _ABORT_LOOK
    if during_negotiation:
        hint += _ABORT_DURING_NEGOTIATION.format(**_ae_flags())
    lines = ["Association Aborted:", f"Source: {source_words}", f"Reason: {reason_words}"]
    message = (
        f"Association aborted by the peer (Source: {source_words}, Reason: {reason_words}).\n{hint}"
    )
    return Diagnosis(lines, hint, message)


# ---------------------------------------------------------------------------------------------
# Presentation context results, PS3.8 9.3.3.2 (Table 9-18). Words as DCMTK 3.6.7 prints them.

CONTEXT_RESULT_WORDS: dict[int, str] = {
    ContextResult.ACCEPTANCE: "Accepted",
    ContextResult.USER_REJECTION: "User Rejection",
    ContextResult.NO_REASON: "No Reason",  # the provider rejection
    ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED: "Abstract Syntax Not Supported",
    ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED: "Transfer Syntaxes Not Supported",
}

# The DCMTK acceptor option (storescp, dcmqrscp) that makes it accept a transfer syntax.
DCMTK_ACCEPT_OPTIONS: dict[str, str] = {
    "1.2.840.10008.1.2.1.99": "+xd",
    "1.2.840.10008.1.2.2": "+xb",
    "1.2.840.10008.1.2.4.50": "+xy",
    "1.2.840.10008.1.2.4.51": "+xx",
    "1.2.840.10008.1.2.4.57": "+xs",
    "1.2.840.10008.1.2.4.70": "+xs",
    "1.2.840.10008.1.2.4.80": "+xt",
    "1.2.840.10008.1.2.4.81": "+xu",
    "1.2.840.10008.1.2.4.90": "+xv",
    "1.2.840.10008.1.2.4.91": "+xw",
    "1.2.840.10008.1.2.4.100": "+xm",
    "1.2.840.10008.1.2.4.101": "+xh",
    "1.2.840.10008.1.2.4.102": "+xn",
    "1.2.840.10008.1.2.4.103": "+xl",
    "1.2.840.10008.1.2.4.104": "+x2",
    "1.2.840.10008.1.2.4.105": "+x3",
    "1.2.840.10008.1.2.4.106": "+xo",
    "1.2.840.10008.1.2.4.107": "+x4",
    "1.2.840.10008.1.2.4.108": "+x5",
    "1.2.840.10008.1.2.5": "+xr",
}

_NO_ANSWER = "No Answer"  # the AC left the context out, which PS3.8 9.3.3.2 does not allow

CONTEXT_HINTS: dict[int | str, str] = {
    ContextResult.USER_REJECTION: (
        "The peer's application refused {abstract} (user rejection); its log says why."
    ),
    ContextResult.NO_REASON: (
        "The peer's DICOM protocol layer refused {abstract} without a reason (provider"
        " rejection); its log says why."
    ),
    ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED: (
        "The peer does not support {abstract} ({uid}) at AE '{called}': it does not offer this"
        " SOP class or service. Use a peer or AE title that offers it, or configure the peer to"
        " (DCMTK's storescp accepts unknown storage SOP classes with -pm)."
    ),
    ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED: (
        "The peer supports {abstract} but none of the transfer syntaxes we proposed for it"
        " ({syntaxes}). Propose another syntax as well, e.g. uncompressed Little Endian"
        " Explicit or Implicit (every SCP supports Implicit, PS3.5 10.1), or configure the peer"
        " to accept it{options}."
    ),
    _NO_ANSWER: "The peer did not answer for {abstract}, which PS3.8 9.3.3.2 requires it to do.",
}


def _accept_options(syntaxes: list[str]) -> str:
    options = sorted({DCMTK_ACCEPT_OPTIONS[ts] for ts in syntaxes if ts in DCMTK_ACCEPT_OPTIONS})
    if not options:
        return ""
    return f" (DCMTK's storescp and dcmqrscp: {' or '.join(options)})"


def describe_refused_contexts(rq: AAssociateRQ, ac: AAssociateAC) -> Diagnosis:
    """Each proposed context the peer did not accept: what we proposed and what it answered.

    The first line is DCMTK's "No Acceptable Presentation Contexts" when none was accepted.
    """
    answers = {pc.context_id: pc.result for pc in ac.presentation_contexts}
    refused = [
        pc
        for pc in rq.presentation_contexts
        if answers.get(pc.context_id) != ContextResult.ACCEPTANCE
    ]
    none_accepted = len(refused) == len(rq.presentation_contexts)
    lines = [
        "No Acceptable Presentation Contexts" if none_accepted else "Refused Presentation Contexts:"
    ]
    hints: list[str] = []
    for pc in refused:
        result = answers.get(pc.context_id, _NO_ANSWER)
        answer = CONTEXT_RESULT_WORDS.get(result) or (
            result if isinstance(result, str) else f"Unknown Result ({result})"
        )
        proposed = ", ".join(uid_name(ts) for ts in pc.transfer_syntaxes)
        lines.append(
            f"Context ID {pc.context_id}: {uid_name(pc.abstract_syntax)} with {proposed}: {answer}"
        )
        template = CONTEXT_HINTS.get(result, "The peer sent a result PS3.8 9.3.3.2 reserves.")
        hint = template.format(
            abstract=uid_description(pc.abstract_syntax),
            uid=pc.abstract_syntax,
            called=rq.called_ae_title,
            syntaxes=", ".join(uid_description(ts) for ts in pc.transfer_syntaxes),
            options=_accept_options(pc.transfer_syntaxes),
        )
        if hint not in hints:  # several contexts for one SOP class often share the answer
            hints.append(hint)
    hint = " ".join(hints)
    what = (
        f"The peer (called AE '{rq.called_ae_title}') accepted none of the"
        f" {len(rq.presentation_contexts)} proposed presentation contexts:"
        if none_accepted
        else f"The peer (called AE '{rq.called_ae_title}') refused {len(refused)} of the"
        f" {len(rq.presentation_contexts)} proposed presentation contexts:"
    )
    message = "\n".join([what, *("  " + line for line in lines[1:]), hint])
    return Diagnosis(lines, hint, message)


# ---------------------------------------------------------------------------------------------
# Exceptions


class AssociationRejectedError(PacsboxError):
    """The peer answered our A-ASSOCIATE-RQ with an A-ASSOCIATE-RJ."""

    def __init__(self, rj: AAssociateRJ, called_ae: str, calling_ae: str) -> None:
        self.rj = rj
        self.result = rj.result
        self.source = rj.source
        self.reason = rj.reason
        self.called_ae = called_ae
        self.calling_ae = calling_ae
        self.diagnosis = describe_rejection(rj, called_ae, calling_ae)
        super().__init__(str(self.diagnosis))

    @property
    def transient(self) -> bool:
        """PS3.8 9.3.4: a transient rejection may go away if the same request is retried."""
        return self.result == RejectResult.REJECTED_TRANSIENT


class AssociationAbortedError(PacsboxError):
    """The peer sent an A-ABORT."""

    def __init__(self, source: int, reason: int, *, during_negotiation: bool = False) -> None:
        self.source = source
        self.reason = reason
        self.during_negotiation = during_negotiation
        self.diagnosis = describe_abort(source, reason, during_negotiation=during_negotiation)
        super().__init__(str(self.diagnosis))


class NoAcceptedContextError(PacsboxError):
    """The association was accepted but none of the proposed presentation contexts was."""

    def __init__(self, rq: AAssociateRQ, ac: AAssociateAC) -> None:
        self.rq = rq
        self.ac = ac
        self.diagnosis = describe_refused_contexts(rq, ac)
        super().__init__(str(self.diagnosis))
