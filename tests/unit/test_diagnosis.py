"""Rejections, aborts and refused contexts in DCMTK's words, with hints that name the fix.

The expected words are what DCMTK 3.6.7's echoscu printed for each A-ASSOCIATE-RJ a scripted
acceptor sent it (PS3.8 9.3.4, Table 9-21).
"""

from __future__ import annotations

import pytest

from pacsbox.errors import PacsboxError
from pacsbox.ul.diagnosis import (
    ABORT_REASONS,
    REJECT_REASONS,
    AssociationAbortedError,
    AssociationRejectedError,
    NoAcceptedContextError,
    describe_abort,
    describe_refused_contexts,
    describe_rejection,
)
from pacsbox.ul.pdu import (
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    PresentationContextAC,
    PresentationContextRQ,
)
from pacsbox.wording import cli_words


@pytest.fixture(autouse=True)
def _as_the_command_line():
    """These hints as `pacsbox <tool>` words them (DCMTK's flags); the API's are tested below."""
    with cli_words():
        yield


# (result, source, reason) -> the three lines echoscu printed
DCMTK_REJECTIONS = {
    (1, 1, 1): ("Rejected Permanent", "Service User", "No Reason"),
    (1, 1, 2): ("Rejected Permanent", "Service User", "App Context Name Not Supported"),
    (1, 1, 3): ("Rejected Permanent", "Service User", "Calling AE Title Not Recognized"),
    (1, 1, 7): ("Rejected Permanent", "Service User", "Called AE Title Not Recognized"),
    (2, 1, 7): ("Rejected Transient", "Service User", "Called AE Title Not Recognized"),
    (1, 2, 1): ("Rejected Permanent", "Service Provider (ACSE Related)", "No Reason"),
    (1, 2, 2): (
        "Rejected Permanent",
        "Service Provider (ACSE Related)",
        "Protocol Version Not Supported",
    ),
    (1, 3, 1): (
        "Rejected Permanent",
        "Service Provider (Presentation Related)",
        "Temporary Congestion",
    ),
    (2, 3, 1): (
        "Rejected Transient",
        "Service Provider (Presentation Related)",
        "Temporary Congestion",
    ),
    (2, 3, 2): (
        "Rejected Transient",
        "Service Provider (Presentation Related)",
        "Local Limit Exceeded",
    ),
}


@pytest.mark.parametrize(("fields", "words"), DCMTK_REJECTIONS.items())
def test_rejection_lines_are_dcmtks(fields, words):
    result, source, reason = words
    diagnosis = describe_rejection(AAssociateRJ(*fields), "ANY-SCP", "ECHOSCU")
    assert diagnosis.lines == [
        "Association Rejected:",
        f"Result: {result}, Source: {source}",
        f"Reason: {reason}",
    ]


def test_every_reason_of_the_table_has_words_and_a_hint():
    # PS3.8 9.3.4 defines exactly these (source, reason) pairs; the rest is reserved
    assert set(REJECT_REASONS) == {(1, 1), (1, 2), (1, 3), (1, 7), (2, 1), (2, 2), (3, 1), (3, 2)}
    for (source, reason), (words, _) in REJECT_REASONS.items():
        diagnosis = describe_rejection(AAssociateRJ(1, source, reason), "PACS", "ME")
        assert diagnosis.lines[2] == f"Reason: {words}"
        assert diagnosis.hint.rstrip(")").endswith(".")
        assert "{" not in diagnosis.hint


def test_called_ae_not_recognized_names_the_called_ae_and_dcmqrscps_quirk():
    hint = describe_rejection(AAssociateRJ(1, 1, 7), "ANY-SCP", "ECHOSCU").hint
    assert hint.startswith(
        "The peer does not know the called AE title 'ANY-SCP' that we sent. Pass the PACS's"
        " own AE title with -aec (for DCMTK's dcmqrscp: one of the AETable entries in its"
        " config file)."
    )
    # dcmqrscp answers an unknown *calling* AE title with this reason too
    assert (
        "(DCMTK's dcmqrscp sends this reason also when it does not know the calling AE title;"
        " check -aet too" in hint
    )
    assert "'ECHOSCU'" in hint


def test_calling_ae_not_recognized_names_our_ae():
    hint = describe_rejection(AAssociateRJ(1, 1, 3), "ANY-SCP", "ECHOSCU").hint
    assert hint == (
        "The peer does not accept our AE title 'ECHOSCU'. Pass one it is configured for with"
        " -aet, or add 'ECHOSCU' to the peer's configuration (dcmqrscp: HostTable and the"
        " AETable line of the called AE)."
    )


@pytest.mark.parametrize("reason", [1, 2])
def test_too_many_associations_say_retry_later(reason):
    hint = describe_rejection(AAssociateRJ(2, 3, reason), "PACS", "ME").hint
    assert "Retry later" in hint
    assert "MaxAssociations" in hint


@pytest.mark.parametrize("reason", [2])
def test_application_context_and_protocol_version_point_at_host_and_port(reason):
    for source in (1, 2):
        hint = describe_rejection(AAssociateRJ(1, source, reason), "PACS", "ME").hint
        assert "check host and port" in hint


@pytest.mark.parametrize(
    "fields",
    [(1, 1, 4), (1, 1, 8), (1, 1, 0), (1, 2, 3), (1, 3, 0), (2, 3, 5), (1, 4, 1), (3, 1, 1)],
)
def test_reserved_values_are_reported_as_sent_not_replaced(fields):
    # DCMTK logs an error and prints "No Reason"; we say what arrived
    diagnosis = describe_rejection(AAssociateRJ(*fields), "PACS", "ME")
    assert "Unknown" in "\n".join(diagnosis.lines)
    assert "reserves" in diagnosis.hint


def test_rejected_error_carries_fields_and_tells_the_whole_story():
    error = AssociationRejectedError(AAssociateRJ(1, 1, 7), "ANY-SCP", "ECHOSCU")
    assert isinstance(error, PacsboxError)
    assert (error.result, error.source, error.reason) == (1, 1, 7)
    assert (error.called_ae, error.calling_ae) == ("ANY-SCP", "ECHOSCU")
    assert not error.transient
    message = str(error)
    assert message.startswith("Association rejected by the peer")
    assert "Reason: Called AE Title Not Recognized" in message
    assert "-aec" in message
    assert AssociationRejectedError(AAssociateRJ(2, 3, 2), "A", "B").transient


# ---------------------------------------------------------------------------------------------
# A-ABORT, PS3.8 9.3.8


@pytest.mark.parametrize("reason", sorted(ABORT_REASONS))
def test_provider_abort_reasons_have_words_and_hints(reason):
    diagnosis = describe_abort(2, reason)
    words, hint = ABORT_REASONS[reason]
    assert diagnosis.lines == [
        "Association Aborted:",
        "Source: Service Provider",
        f"Reason: {words}",
    ]
    assert diagnosis.hint.startswith(hint)
    assert "DCMTK peers say why with -d" in diagnosis.hint


def test_user_abort_has_no_reason_and_points_at_the_peers_log():
    diagnosis = describe_abort(0, 0)
    assert diagnosis.lines[1:] == ["Source: Service User", "Reason: Not Significant"]
    assert "look at the peer's log" in diagnosis.hint.lower()
    assert "DCMTK peers say why with -d" in diagnosis.hint


def test_abort_answering_our_request_suggests_ae_titles():
    assert "-aet" not in describe_abort(0, 0).hint
    assert "-aet and -aec" in describe_abort(0, 0, during_negotiation=True).hint


def test_a_program_is_told_the_api_arguments_not_the_flags():
    """Through the Python API the same hints name calling_ae= / called_ae=, not -aet / -aec."""
    with cli_words(False):
        hint = describe_rejection(AAssociateRJ(1, 1, 7), "ANY-SCP", "ECHOSCU").hint
        assert "own AE title with called_ae= (for DCMTK's dcmqrscp" in hint
        assert "check calling_ae= too: we sent 'ECHOSCU'" in hint
        hint = describe_rejection(AAssociateRJ(1, 1, 3), "ANY-SCP", "ECHOSCU").hint
        assert "Pass one it is configured for with calling_ae=, or add 'ECHOSCU'" in hint
        assert (
            "check calling_ae= and called_ae= and"
            in describe_abort(0, 0, during_negotiation=True).hint
        )
        assert (
            "-aet" not in hint and "-aec" not in describe_abort(0, 0, during_negotiation=True).hint
        )
        assert "DCMTK peers say why with -d" in describe_abort(0, 0).hint  # the peer's flag


def test_abort_with_reserved_values():
    diagnosis = describe_abort(2, 9)
    assert diagnosis.lines[2] == "Reason: Unknown (9)"
    assert describe_abort(5, 0).lines[1] == "Source: Unknown (5)"


def test_aborted_error():
    error = AssociationAbortedError(2, 6)
    assert isinstance(error, PacsboxError)
    assert (error.source, error.reason) == (2, 6)
    assert "Invalid PDU Parameter Value" in str(error)


# ---------------------------------------------------------------------------------------------
# Refused presentation contexts, PS3.8 9.3.3.2

CT = "1.2.840.10008.5.1.4.1.1.2"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
EXPLICIT = "1.2.840.10008.1.2.1"


def proposal(*contexts: PresentationContextRQ) -> AAssociateRQ:
    return AAssociateRQ("ACME_STORE", "ACME1", list(contexts))


def answer(*results: tuple[int, int]) -> AAssociateAC:
    return AAssociateAC(
        "ACME_STORE", "ACME1", [PresentationContextAC(cid, result, "") for cid, result in results]
    )


def test_abstract_syntax_not_supported():
    rq = proposal(PresentationContextRQ(1, CT, [JPEG_LOSSLESS_SV1]))
    diagnosis = describe_refused_contexts(rq, answer((1, 3)))
    assert diagnosis.lines == [
        "No Acceptable Presentation Contexts",
        "Context ID 1: =CTImageStorage with =JPEGLossless:Non-hierarchical-1stOrderPrediction:"
        " Abstract Syntax Not Supported",
    ]
    assert diagnosis.hint.startswith(
        f"The peer does not support CT Image Storage ({CT}) at AE 'ACME_STORE'"
    )


def test_transfer_syntaxes_not_supported_suggests_uncompressed_and_the_dcmtk_option():
    # the seed tutorial's case: JPEG lossless proposed, dcmqrscp started without +xs
    rq = proposal(PresentationContextRQ(1, CT, [JPEG_LOSSLESS_SV1]))
    hint = describe_refused_contexts(rq, answer((1, 4))).hint
    assert "JPEG Lossless, Non-hierarchical, 1st Order Prediction" in hint
    assert "uncompressed" in hint
    assert "(DCMTK's storescp and dcmqrscp: +xs)" in hint


@pytest.mark.parametrize(
    ("result", "words", "in_hint"),
    [
        (1, "User Rejection", "user rejection"),
        (2, "No Reason", "provider rejection"),
        (9, "Unknown Result (9)", "reserves"),
    ],
)
def test_other_results(result, words, in_hint):
    rq = proposal(PresentationContextRQ(1, CT, [EXPLICIT]))
    diagnosis = describe_refused_contexts(rq, answer((1, result)))
    assert diagnosis.lines[1].endswith(f": {words}")
    assert in_hint in diagnosis.hint


def test_only_refused_contexts_are_listed_and_hints_are_not_repeated():
    rq = proposal(
        PresentationContextRQ(1, CT, [JPEG_LOSSLESS_SV1]),
        PresentationContextRQ(3, CT, [EXPLICIT]),
        PresentationContextRQ(5, CT, [EXPLICIT]),
        PresentationContextRQ(7, CT, [EXPLICIT]),
    )
    diagnosis = describe_refused_contexts(rq, answer((1, 0), (3, 3), (5, 3)))
    assert diagnosis.lines[0] == "Refused Presentation Contexts:"
    assert [line.split(":")[0] for line in diagnosis.lines[1:]] == [
        "Context ID 3",
        "Context ID 5",
        "Context ID 7",
    ]
    assert diagnosis.lines[3].endswith(": No Answer")
    assert diagnosis.hint.count("does not support") == 1


def test_no_accepted_context_error():
    rq = proposal(PresentationContextRQ(1, CT, [JPEG_LOSSLESS_SV1]))
    error = NoAcceptedContextError(rq, answer((1, 4)))
    assert isinstance(error, PacsboxError)
    assert error.rq is rq
    message = str(error)
    assert message.startswith(
        "The peer (called AE 'ACME_STORE') accepted none of the 1 proposed presentation contexts:"
    )
    assert "  Context ID 1: =CTImageStorage" in message
    assert "+xs" in message
