"""Association dumps in DCMTK's layout, for -d: the A-ASSOCIATE-RQ/AC blocks and PDU hex.

People compare our logs with DCMTK's side by side, so the lines match DCMTK 3.6.7's wording
and column alignment (checked against echoscu, storescu and storescp output). Functions return
lines; the caller logs them (one "D: " prefix per line), so nothing here does I/O.

"Our" and "Their" are from the point of view of whoever prints: a requestor dumping its own
RQ has no "Their" values yet; an acceptor dumping a received RQ shows its own implementation
and maximum PDU size as "Our" and the requestor's as "Their".
"""

from __future__ import annotations

from pacsbox.uids import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    uid_keyword,
    uid_name,
)
from pacsbox.ul.diagnosis import CONTEXT_RESULT_WORDS, describe_rejection
from pacsbox.ul.pdu import (
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    ContextResult,
    PDUType,
    PresentationContextRQ,
    RoleSelection,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)

# (SCU role, SCP role) of a role selection item, PS3.7 D.3.3.4. Both 0 is invalid; DCMTK warns
# and prints "SCP/SCU" for it, we print what the item says.
_ROLE_WORDS: dict[tuple[bool, bool], str] = {
    (True, True): "SCP/SCU",
    (True, False): "SCU",
    (False, True): "SCP",
    (False, False): "None",
}
_DEFAULT_ROLE = "Default"  # no role selection item: PS3.7 D.3.3.4 default roles

# User identity type -> (DCMTK's words, label of the primary field, whether it is printed).
# PS3.7 D.3.3.7.1 Table D.3-14. Kerberos tickets, SAML assertions and JWTs are not printed.
_IDENTITY_TYPES: dict[int, tuple[str, str, bool]] = {
    1: ("Username", "Username", True),
    2: ("Username/Password", "Username", True),
    3: ("Kerberos", "Kerberos Service Ticket", False),
    4: ("SAML", "SAML Assertion", False),
    5: ("JWT", "JSON Web Token", False),
}

# PS3.8 9.3.1; DCMTK dumps only the A-ASSOCIATE PDUs, the other names are ours.
_PDU_TYPE_WORDS: dict[int, str] = {
    PDUType.A_ASSOCIATE_RQ: "Associate Request",
    PDUType.A_ASSOCIATE_AC: "Associate Accept",
    PDUType.A_ASSOCIATE_RJ: "Associate Reject",
    PDUType.P_DATA_TF: "Data",
    PDUType.A_RELEASE_RQ: "Release Request",
    PDUType.A_RELEASE_RP: "Release Response",
    PDUType.A_ABORT: "Abort",
}

HEX_DUMP_LIMIT = 512  # DCMTK dumps at most this many bytes of a PDU


def _banner(word: str, kind: str) -> str:
    if word == "BEGIN":
        return f"====================== BEGIN A-ASSOCIATE-{kind} ====================="
    return f"======================= END A-ASSOCIATE-{kind} ======================"


def _role(items: list[RoleSelection], abstract_syntax: str) -> str:
    # the first item for a SOP class counts, as in DCMTK
    for item in items:
        if item.sop_class_uid == abstract_syntax:
            return _ROLE_WORDS[(item.scu_role, item.scp_role)]
    return _DEFAULT_ROLE


def _extended(ui: UserInformation | None) -> list[str]:
    """SOP class extended negotiation items (PS3.7 D.3.3.5), each UID then its bytes."""
    lines: list[str] = []
    for item in ui.sop_class_extended if ui else []:
        name = uid_keyword(item.sop_class_uid) or "Unknown-UID"
        values = ", ".join(f"0x{byte:02x}" for byte in item.application_information)
        lines += [f"  ={name} ({item.sop_class_uid})", f"    [{values}]"]
    return lines


def _identity_rq(ident: UserIdentityRQ) -> list[str]:
    words, label, printed = _IDENTITY_TYPES.get(
        ident.identity_type, ("Unknown", "Primary Field", False)
    )
    lines = [f"  Authentication mode {ident.identity_type}: {words}"]
    if printed:
        lines.append(f"  {label}: [{ident.primary_field.decode('utf-8', 'replace')}]")
    else:
        lines.append(f"  {label} (not dumped) length: {len(ident.primary_field)}")
    if ident.identity_type == 2:
        # DCMTK prints the password; we only say whether one was sent, logs get shared.
        lines.append(f"  Password: [{'********' if ident.secondary_field else ''}]")
    lines.append(
        f"  Positive Response requested: {'Yes' if ident.positive_response_requested else 'No'}"
    )
    return lines


def _identity_ac(ident: UserIdentityAC) -> list[str]:
    return [f"  Server Response (not dumped) length: {len(ident.server_response)}"]


def _optional_block(label: str, pad: str, lines: list[str]) -> list[str]:
    # DCMTK: "label: none" on one line, or "label:" followed by the indented items
    return [f"{label}:", *lines] if lines else [f"{label}:{pad}none"]


def _dump(
    kind: str,
    rq: AAssociateRQ,
    *,
    ours: UserInformation | None,
    theirs: UserInformation | None,
    our_max_pdu: int,
    their_max_pdu: int,
    responding_ae: str,
    contexts: list[str],
    ac_ui: UserInformation | None,
) -> list[str]:
    def impl(ui: UserInformation | None) -> tuple[str, str]:
        if ui is None:
            return "", ""
        return ui.implementation_class_uid, ui.implementation_version_name or ""

    our_uid, our_version = impl(ours)
    their_uid, their_version = impl(theirs)
    rq_ui = rq.user_information
    identity_rq = _identity_rq(rq_ui.user_identity_rq) if rq_ui.user_identity_rq else []
    identity_ac = _identity_ac(ac_ui.user_identity_ac) if ac_ui and ac_ui.user_identity_ac else []
    return [
        _banner("BEGIN", kind),
        f"Our Implementation Class UID:      {our_uid}",
        f"Our Implementation Version Name:   {our_version}",
        f"Their Implementation Class UID:    {their_uid}",
        f"Their Implementation Version Name: {their_version}",
        f"Application Context Name:    {rq.application_context_name}",
        f"Calling Application Name:    {rq.calling_ae_title}",
        f"Called Application Name:     {rq.called_ae_title}",
        f"Responding Application Name: {responding_ae}",
        f"Our Max PDU Receive Size:    {our_max_pdu}",
        f"Their Max PDU Receive Size:  {their_max_pdu}",
        "Presentation Contexts:",
        *contexts,
        *_optional_block("Requested Extended Negotiation", " ", _extended(rq_ui)),
        *_optional_block("Accepted Extended Negotiation", "  ", _extended(ac_ui)),
        *_optional_block("Requested User Identity Negotiation", " ", identity_rq),
        *_optional_block("User Identity Negotiation Response", "  ", identity_ac),
        _banner("END", kind),
    ]


def _context_head(pc: PresentationContextRQ, status: str, rq: AAssociateRQ) -> list[str]:
    return [
        f"  Context ID:        {pc.context_id} ({status})",
        f"    Abstract Syntax: {uid_name(pc.abstract_syntax)}",
        f"    Proposed SCP/SCU Role: {_role(rq.user_information.role_selections, pc.abstract_syntax)}",
    ]


def _proposed_context(pc: PresentationContextRQ, rq: AAssociateRQ) -> list[str]:
    return [
        *_context_head(pc, "Proposed", rq),
        "    Proposed Transfer Syntax(es):",
        *(f"      {uid_name(ts)}" for ts in pc.transfer_syntaxes),
    ]


def dump_associate_rq(rq: AAssociateRQ, *, ours: bool, local_max_pdu: int = 0) -> list[str]:
    """The "BEGIN A-ASSOCIATE-RQ" block DCMTK prints before sending or after receiving an RQ.

    ``ours``: we are the requestor (the RQ's implementation and max PDU are "Our"). Otherwise
    we are the acceptor printing a received RQ: "Our" is pacsbox with ``local_max_pdu``.
    """
    ui = rq.user_information
    contexts = [line for pc in rq.presentation_contexts for line in _proposed_context(pc, rq)]
    if ours:
        # the requestor knows the responding AE only as the one it calls
        return _dump(
            "RQ", rq, ours=ui, theirs=None, our_max_pdu=ui.max_length or 0, their_max_pdu=0,
            responding_ae=rq.called_ae_title, contexts=contexts, ac_ui=None,
        )  # fmt: skip
    local = UserInformation(
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
    )
    return _dump(
        "RQ", rq, ours=local, theirs=ui, our_max_pdu=local_max_pdu,
        their_max_pdu=ui.max_length or 0, responding_ae="", contexts=contexts, ac_ui=None,
    )  # fmt: skip


def dump_associate_ac(rq: AAssociateRQ, ac: AAssociateAC, *, ours: bool = True) -> list[str]:
    """The "BEGIN A-ASSOCIATE-AC" block: the proposal and the answer to each context.

    ``ours``: we sent ``rq`` (and received ``ac``); otherwise we are the acceptor that sent
    ``ac``. Contexts are listed in the order of the RQ.
    """
    answers = {pc.context_id: pc for pc in ac.presentation_contexts}
    ac_roles = ac.user_information.role_selections
    contexts: list[str] = []
    for pc in rq.presentation_contexts:
        answer = answers.get(pc.context_id)
        if answer is None:  # not answered: still only proposed
            contexts += _proposed_context(pc, rq)
            continue
        status = CONTEXT_RESULT_WORDS.get(answer.result, f"Unknown Result {answer.result}")
        contexts += [
            *_context_head(pc, status, rq),
            f"    Accepted SCP/SCU Role: {_role(ac_roles, pc.abstract_syntax)}",
        ]
        if answer.result == ContextResult.ACCEPTANCE:
            contexts.append(f"    Accepted Transfer Syntax: {uid_name(answer.transfer_syntax)}")
    requestor, acceptor = rq.user_information, ac.user_information
    local, remote = (requestor, acceptor) if ours else (acceptor, requestor)
    return _dump(
        "AC", rq, ours=local, theirs=remote, our_max_pdu=local.max_length or 0,
        their_max_pdu=remote.max_length or 0, responding_ae=ac.called_ae_title,
        contexts=contexts, ac_ui=acceptor,
    )  # fmt: skip


def dump_associate_rj(rj: AAssociateRJ) -> list[str]:
    """DCMTK's three lines for a rejection ("Association Rejected:", "Result: ...", "Reason: ...")."""
    return describe_rejection(rj, "", "").lines


def dump_pdu_hex(raw: bytes | bytearray | memoryview, *, limit: int = HEX_DUMP_LIMIT) -> list[str]:
    """A PDU as DCMTK -d shows it: a header line, then 16 bytes per line in hex.

    DCMTK shows at most 512 bytes, and ends a dump whose byte count is a multiple of 16
    with an empty line; both are kept so the logs line up.
    """
    data = bytes(raw)
    pdu_type = data[0] if data else 0
    length = int.from_bytes(data[2:6], "big") if len(data) >= 6 else max(len(data) - 6, 0)
    words = _PDU_TYPE_WORDS.get(pdu_type, f"Unknown (0x{pdu_type:02x})")
    lines = [f"PDU Type: {words}, PDU Length: {length} + 6 bytes PDU header"]
    if len(data) > limit:
        lines.append(f"Only dumping {limit} bytes.")
        data = data[:limit]
    lines += [
        "".join(f"  {byte:02x}" for byte in data[i : i + 16]) for i in range(0, len(data), 16)
    ]
    if len(data) % 16 == 0:
        lines.append("")
    return lines
