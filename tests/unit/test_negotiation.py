"""Presentation context, role and max PDU negotiation (PS3.8 9.3.2.2, PS3.7 D.3.3.4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacsbox.ul.negotiation import (
    UNCOMPRESSED,
    AcceptorPolicy,
    NegotiationError,
    agreed_contexts,
    max_send_pdv,
    negotiate,
    propose,
)
from pacsbox.ul.pdu import AAssociateAC, AAssociateRQ, ContextResult, RoleSelection, UserInformation

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
IMPLICIT, EXPLICIT, BIG = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"


def rq(*proposals, roles=()) -> AAssociateRQ:
    return AAssociateRQ(
        "SCP", "SCU", propose(proposals), UserInformation(role_selections=list(roles))
    )


def ac_for(request: AAssociateRQ, policy: AcceptorPolicy) -> AAssociateAC:
    contexts, roles = negotiate(request, policy)
    return AAssociateAC("SCP", "SCU", contexts, UserInformation(role_selections=roles))


def test_context_ids_are_odd_and_in_order():
    assert [pc.context_id for pc in propose([(CT, [IMPLICIT])] * 4)] == [1, 3, 5, 7]


def test_more_than_128_contexts_is_refused_with_advice():
    with pytest.raises(NegotiationError, match="Split the proposal"):
        propose([(CT, [IMPLICIT])] * 129)


def test_acceptor_picks_its_own_preference_not_the_requestors():
    # the requestor lists implicit first; our preference says explicit LE first
    answers, _ = negotiate(rq((CT, [IMPLICIT, BIG, EXPLICIT])), AcceptorPolicy(frozenset({CT})))
    assert answers[0].result == ContextResult.ACCEPTANCE
    assert answers[0].transfer_syntax == EXPLICIT


def test_prefer_lossless_like_dcmtk_xs():
    policy = AcceptorPolicy(frozenset({CT}), transfer_syntaxes=(JPEG_LOSSLESS, *UNCOMPRESSED))
    answers, _ = negotiate(rq((CT, [EXPLICIT, JPEG_LOSSLESS])), policy)
    assert answers[0].transfer_syntax == JPEG_LOSSLESS


def test_unsupported_abstract_and_transfer_syntaxes_get_their_reasons():
    policy = AcceptorPolicy(frozenset({CT}))
    answers, _ = negotiate(rq((MR, [IMPLICIT]), (CT, [JPEG_LOSSLESS])), policy)
    assert [a.result for a in answers] == [
        ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED,
        ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED,
    ]


def test_promiscuous_policy_accepts_any_sop_class():
    answers, _ = negotiate(rq(("1.2.3.4.5", [IMPLICIT])), AcceptorPolicy(abstract_syntaxes=None))
    assert answers[0].result == ContextResult.ACCEPTANCE


def test_per_sop_class_override():
    policy = AcceptorPolicy(frozenset({CT, MR}), transfer_syntaxes_for={MR: (IMPLICIT,)})
    answers, _ = negotiate(rq((CT, [IMPLICIT, EXPLICIT]), (MR, [EXPLICIT, IMPLICIT])), policy)
    assert [a.transfer_syntax for a in answers] == [EXPLICIT, IMPLICIT]


def test_role_selection_scp_role_only_where_allowed():
    request = rq(
        (CT, [IMPLICIT]),
        (MR, [IMPLICIT]),
        roles=[RoleSelection(CT, True, True), RoleSelection(MR, True, True)],
    )
    policy = AcceptorPolicy(frozenset({CT, MR}), requestor_may_be_scp=frozenset({CT}))
    accepted = agreed_contexts(request, ac_for(request, policy))
    assert (accepted[1].requestor_is_scu, accepted[1].requestor_is_scp) == (True, True)
    assert (accepted[3].requestor_is_scu, accepted[3].requestor_is_scp) == (True, False)


def test_no_role_item_means_default_roles():
    request = rq((CT, [IMPLICIT]))
    accepted = agreed_contexts(request, ac_for(request, AcceptorPolicy(frozenset({CT}))))
    assert (accepted[1].requestor_is_scu, accepted[1].requestor_is_scp) == (True, False)


def test_role_item_not_answered_means_default_roles():
    # PS3.7 D.3.3.4: without the acceptor's reply the default roles apply (C-GET from Horos)
    request = rq((CT, [IMPLICIT]), roles=[RoleSelection(CT, True, True)])
    ac = ac_for(request, AcceptorPolicy(frozenset({CT})))
    ac.user_information.role_selections = []
    assert agreed_contexts(request, ac)[1].requestor_is_scp is False


def test_max_send_pdv():
    assert max_send_pdv(16384) == 16378
    assert max_send_pdv(0) == 0


@given(
    ours=st.lists(
        st.sampled_from([IMPLICIT, EXPLICIT, BIG, JPEG_LOSSLESS]), unique=True, min_size=1
    ),
    theirs=st.lists(
        st.sampled_from([IMPLICIT, EXPLICIT, BIG, JPEG_LOSSLESS]), unique=True, min_size=1
    ),
)
def test_choice_is_the_first_of_ours_that_they_offered(ours, theirs):
    answers, _ = negotiate(rq((CT, theirs)), AcceptorPolicy(frozenset({CT}), tuple(ours)))
    common = [ts for ts in ours if ts in theirs]
    if common:
        assert answers[0].transfer_syntax == common[0]
    else:
        assert answers[0].result == ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED


@given(
    asked=st.binary(min_size=0, max_size=8).map(lambda b: bytes(x % 2 for x in b)),
    ours=st.binary(min_size=0, max_size=8).map(lambda b: bytes(x % 2 for x in b)),
)
def test_extended_negotiation_agrees_only_to_what_both_sides_have(asked, ours):
    from pacsbox.ul.negotiation import agreed_extended, extended_replies
    from pacsbox.ul.pdu import SOPClassExtendedNegotiation

    request = rq((CT, [IMPLICIT]))
    request.user_information.sop_class_extended = [SOPClassExtendedNegotiation(CT, asked)]
    policy = AcceptorPolicy(abstract_syntaxes=frozenset({CT}), extended_negotiation={CT: ours})
    (reply,) = extended_replies(request, policy)
    assert len(reply.application_information) == len(asked)
    for i, byte in enumerate(reply.application_information):
        assert byte == (1 if asked[i] and i < len(ours) and ours[i] else 0)
    ac = AAssociateAC("SCP", "SCU", [], UserInformation(sop_class_extended=[reply]))
    assert agreed_extended(ac, CT) == reply.application_information
    # a SOP class whose options we do not know gets no reply
    assert extended_replies(request, AcceptorPolicy(abstract_syntaxes=frozenset({CT}))) == []
