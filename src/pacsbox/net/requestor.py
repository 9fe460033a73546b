"""Building the A-ASSOCIATE-RQ of a requestor (SCU) from what it wants to do."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from ..ul.negotiation import propose
from ..ul.pdu import AAssociateRQ, RoleSelection, UserInformation


def build_rq(
    *,
    calling_ae: str,
    called_ae: str,
    proposals: Iterable[tuple[str, Sequence[str]]],
    max_pdu_length: int = 16384,
    role_selections: Sequence[RoleSelection] = (),
) -> AAssociateRQ:
    """An A-ASSOCIATE-RQ with our implementation identity and one context per proposal."""
    for title, option in ((calling_ae, "-aet"), (called_ae, "-aec")):
        if not title.strip() or len(title) > 16 or "\\" in title:
            raise ValueError(
                f"AE title {title!r} is not valid: 1 to 16 characters, no backslash ({option})"
            )
    return AAssociateRQ(
        called_ae_title=called_ae,
        calling_ae_title=calling_ae,
        presentation_contexts=propose(proposals),
        user_information=UserInformation(
            max_length=max_pdu_length,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            role_selections=list(role_selections),
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        ),
    )
