"""Our association dumps against the text DCMTK 3.6.7 prints for the same PDUs.

The fixtures are DCMTK's -d output ("D: " prefixes removed), captured from echoscu -d and
storescp -d talking to each other, from storescu -d talking to a scripted acceptor, and from
storescp -d receiving a scripted A-ASSOCIATE-RQ. Only the "Our Implementation" lines were
changed from DCMTK's identity to pacsbox's. A '$' marks the end of a line that ends in spaces.
"""

from __future__ import annotations

import pytest

from pacsbox.uids import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    PACSBOX_UID_ROOT,
    transfer_syntax_description,
    uid_name,
)
from pacsbox.ul.dump import (
    dump_associate_ac,
    dump_associate_rj,
    dump_associate_rq,
    dump_pdu_hex,
)
from pacsbox.ul.pdu import (
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
    decode_pdu,
    encode_pdu,
)

ECHOSCU_RQ = """\
====================== BEGIN A-ASSOCIATE-RQ =====================
Our Implementation Class UID:      1.2.826.0.1.3680043.10.1526.1.0.1
Our Implementation Version Name:   PACSBOX_010
Their Implementation Class UID:    $
Their Implementation Version Name: $
Application Context Name:    1.2.840.10008.3.1.1.1
Calling Application Name:    ECHOSCU
Called Application Name:     ANY-SCP
Responding Application Name: ANY-SCP
Our Max PDU Receive Size:    16384
Their Max PDU Receive Size:  0
Presentation Contexts:
  Context ID:        1 (Proposed)
    Abstract Syntax: =VerificationSOPClass
    Proposed SCP/SCU Role: Default
    Proposed Transfer Syntax(es):
      =LittleEndianImplicit
Requested Extended Negotiation: none
Accepted Extended Negotiation:  none
Requested User Identity Negotiation: none
User Identity Negotiation Response:  none
======================= END A-ASSOCIATE-RQ ======================
"""

ECHOSCU_AC_HEX = """\
PDU Type: Associate Accept, PDU Length: 184 + 6 bytes PDU header
  02  00  00  00  00  b8  00  01  00  00  41  4e  59  2d  53  43
  50  20  20  20  20  20  20  20  20  20  45  43  48  4f  53  43
  55  20  20  20  20  20  20  20  20  20  00  00  00  00  00  00
  00  00  00  00  00  00  00  00  00  00  00  00  00  00  00  00
  00  00  00  00  00  00  00  00  00  00  10  00  00  15  31  2e
  32  2e  38  34  30  2e  31  30  30  30  38  2e  33  2e  31  2e
  31  2e  31  21  00  00  19  01  00  00  00  40  00  00  11  31
  2e  32  2e  38  34  30  2e  31  30  30  30  38  2e  31  2e  32
  50  00  00  3a  51  00  00  04  00  00  40  00  52  00  00  1b
  31  2e  32  2e  32  37  36  2e  30  2e  37  32  33  30  30  31
  30  2e  33  2e  30  2e  33  2e  36  2e  37  55  00  00  0f  4f
  46  46  49  53  5f  44  43  4d  54  4b  5f  33  36  37
"""

ECHOSCU_AC = """\
====================== BEGIN A-ASSOCIATE-AC =====================
Our Implementation Class UID:      1.2.826.0.1.3680043.10.1526.1.0.1
Our Implementation Version Name:   PACSBOX_010
Their Implementation Class UID:    1.2.276.0.7230010.3.0.3.6.7
Their Implementation Version Name: OFFIS_DCMTK_367
Application Context Name:    1.2.840.10008.3.1.1.1
Calling Application Name:    ECHOSCU
Called Application Name:     ANY-SCP
Responding Application Name: ANY-SCP
Our Max PDU Receive Size:    16384
Their Max PDU Receive Size:  16384
Presentation Contexts:
  Context ID:        1 (Accepted)
    Abstract Syntax: =VerificationSOPClass
    Proposed SCP/SCU Role: Default
    Accepted SCP/SCU Role: Default
    Accepted Transfer Syntax: =LittleEndianImplicit
Requested Extended Negotiation: none
Accepted Extended Negotiation:  none
Requested User Identity Negotiation: none
User Identity Negotiation Response:  none
======================= END A-ASSOCIATE-AC ======================
"""

STORESCP_RQ_HEX = """\
PDU Type: Associate Request, PDU Length: 205 + 6 bytes PDU header
  01  00  00  00  00  cd  00  01  00  00  41  4e  59  2d  53  43
  50  20  20  20  20  20  20  20  20  20  45  43  48  4f  53  43
  55  20  20  20  20  20  20  20  20  20  00  00  00  00  00  00
  00  00  00  00  00  00  00  00  00  00  00  00  00  00  00  00
  00  00  00  00  00  00  00  00  00  00  10  00  00  15  31  2e
  32  2e  38  34  30  2e  31  30  30  30  38  2e  33  2e  31  2e
  31  2e  31  20  00  00  2e  01  00  ff  00  30  00  00  11  31
  2e  32  2e  38  34  30  2e  31  30  30  30  38  2e  31  2e  31
  40  00  00  11  31  2e  32  2e  38  34  30  2e  31  30  30  30
  38  2e  31  2e  32  50  00  00  3a  51  00  00  04  00  00  40
  00  52  00  00  1b  31  2e  32  2e  32  37  36  2e  30  2e  37
  32  33  30  30  31  30  2e  33  2e  30  2e  33  2e  36  2e  37
  55  00  00  0f  4f  46  46  49  53  5f  44  43  4d  54  4b  5f
  33  36  37
"""

STORESCP_RQ = """\
====================== BEGIN A-ASSOCIATE-RQ =====================
Our Implementation Class UID:      1.2.826.0.1.3680043.10.1526.1.0.1
Our Implementation Version Name:   PACSBOX_010
Their Implementation Class UID:    1.2.276.0.7230010.3.0.3.6.7
Their Implementation Version Name: OFFIS_DCMTK_367
Application Context Name:    1.2.840.10008.3.1.1.1
Calling Application Name:    ECHOSCU
Called Application Name:     ANY-SCP
Responding Application Name: $
Our Max PDU Receive Size:    16384
Their Max PDU Receive Size:  16384
Presentation Contexts:
  Context ID:        1 (Proposed)
    Abstract Syntax: =VerificationSOPClass
    Proposed SCP/SCU Role: Default
    Proposed Transfer Syntax(es):
      =LittleEndianImplicit
Requested Extended Negotiation: none
Accepted Extended Negotiation:  none
Requested User Identity Negotiation: none
User Identity Negotiation Response:  none
======================= END A-ASSOCIATE-RQ ======================
"""

STORESCU_RQ = """\
====================== BEGIN A-ASSOCIATE-RQ =====================
Our Implementation Class UID:      1.2.826.0.1.3680043.10.1526.1.0.1
Our Implementation Version Name:   PACSBOX_010
Their Implementation Class UID:    $
Their Implementation Version Name: $
Application Context Name:    1.2.840.10008.3.1.1.1
Calling Application Name:    STORESCU
Called Application Name:     ANY-SCP
Responding Application Name: ANY-SCP
Our Max PDU Receive Size:    16384
Their Max PDU Receive Size:  0
Presentation Contexts:
  Context ID:        1 (Proposed)
    Abstract Syntax: =CTImageStorage
    Proposed SCP/SCU Role: Default
    Proposed Transfer Syntax(es):
      =JPEGLossless:Non-hierarchical-1stOrderPrediction
  Context ID:        3 (Proposed)
    Abstract Syntax: =CTImageStorage
    Proposed SCP/SCU Role: Default
    Proposed Transfer Syntax(es):
      =LittleEndianExplicit
      =BigEndianExplicit
      =LittleEndianImplicit
  Context ID:        5 (Proposed)
    Abstract Syntax: =MRImageStorage
    Proposed SCP/SCU Role: Default
    Proposed Transfer Syntax(es):
      =JPEGLossless:Non-hierarchical-1stOrderPrediction
  Context ID:        7 (Proposed)
    Abstract Syntax: =MRImageStorage
    Proposed SCP/SCU Role: Default
    Proposed Transfer Syntax(es):
      =LittleEndianExplicit
      =BigEndianExplicit
      =LittleEndianImplicit
  Context ID:        9 (Proposed)
    Abstract Syntax: =SecondaryCaptureImageStorage
    Proposed SCP/SCU Role: Default
    Proposed Transfer Syntax(es):
      =JPEGLossless:Non-hierarchical-1stOrderPrediction
  Context ID:        11 (Proposed)
    Abstract Syntax: =SecondaryCaptureImageStorage
    Proposed SCP/SCU Role: Default
    Proposed Transfer Syntax(es):
      =LittleEndianExplicit
      =BigEndianExplicit
      =LittleEndianImplicit
Requested Extended Negotiation: none
Accepted Extended Negotiation:  none
Requested User Identity Negotiation:
  Authentication mode 1: Username
  Username: [bob]
  Positive Response requested: Yes
User Identity Negotiation Response:  none
======================= END A-ASSOCIATE-RQ ======================
"""

STORESCU_AC = """\
====================== BEGIN A-ASSOCIATE-AC =====================
Our Implementation Class UID:      1.2.826.0.1.3680043.10.1526.1.0.1
Our Implementation Version Name:   PACSBOX_010
Their Implementation Class UID:    1.2.3.4.9
Their Implementation Version Name: FAKE
Application Context Name:    1.2.840.10008.3.1.1.1
Calling Application Name:    STORESCU
Called Application Name:     ANY-SCP
Responding Application Name: ANY-SCP
Our Max PDU Receive Size:    16384
Their Max PDU Receive Size:  65536
Presentation Contexts:
  Context ID:        1 (Accepted)
    Abstract Syntax: =CTImageStorage
    Proposed SCP/SCU Role: Default
    Accepted SCP/SCU Role: SCP/SCU
    Accepted Transfer Syntax: =JPEGLossless:Non-hierarchical-1stOrderPrediction
  Context ID:        3 (User Rejection)
    Abstract Syntax: =CTImageStorage
    Proposed SCP/SCU Role: Default
    Accepted SCP/SCU Role: SCP/SCU
  Context ID:        5 (No Reason)
    Abstract Syntax: =MRImageStorage
    Proposed SCP/SCU Role: Default
    Accepted SCP/SCU Role: SCP
  Context ID:        7 (Abstract Syntax Not Supported)
    Abstract Syntax: =MRImageStorage
    Proposed SCP/SCU Role: Default
    Accepted SCP/SCU Role: SCP
  Context ID:        9 (Transfer Syntaxes Not Supported)
    Abstract Syntax: =SecondaryCaptureImageStorage
    Proposed SCP/SCU Role: Default
    Accepted SCP/SCU Role: SCP/SCU
  Context ID:        11 (Accepted)
    Abstract Syntax: =SecondaryCaptureImageStorage
    Proposed SCP/SCU Role: Default
    Accepted SCP/SCU Role: SCP/SCU
    Accepted Transfer Syntax: =LittleEndianExplicit
Requested Extended Negotiation: none
Accepted Extended Negotiation:
  =FINDStudyRootQueryRetrieveInformationModel (1.2.840.10008.5.1.4.1.2.2.1)
    [0x0a, 0x01]
Requested User Identity Negotiation:
  Authentication mode 1: Username
  Username: [bob]
  Positive Response requested: Yes
User Identity Negotiation Response:
  Server Response (not dumped) length: 9
======================= END A-ASSOCIATE-AC ======================
"""

STORESCP_AC = """\
====================== BEGIN A-ASSOCIATE-AC =====================
Our Implementation Class UID:      1.2.826.0.1.3680043.10.1526.1.0.1
Our Implementation Version Name:   PACSBOX_010
Their Implementation Class UID:    1.2.276.0.7230010.3.0.3.6.7
Their Implementation Version Name: OFFIS_DCMTK_367
Application Context Name:    1.2.840.10008.3.1.1.1
Calling Application Name:    ECHOSCU
Called Application Name:     ANY-SCP
Responding Application Name: ANY-SCP
Our Max PDU Receive Size:    16384
Their Max PDU Receive Size:  16384
Presentation Contexts:
  Context ID:        1 (Accepted)
    Abstract Syntax: =VerificationSOPClass
    Proposed SCP/SCU Role: Default
    Accepted SCP/SCU Role: Default
    Accepted Transfer Syntax: =LittleEndianImplicit
Requested Extended Negotiation: none
Accepted Extended Negotiation:  none
Requested User Identity Negotiation: none
User Identity Negotiation Response:  none
======================= END A-ASSOCIATE-AC ======================
"""

STORESCP_RICH_RQ = """\
====================== BEGIN A-ASSOCIATE-RQ =====================
Our Implementation Class UID:      1.2.826.0.1.3680043.10.1526.1.0.1
Our Implementation Version Name:   PACSBOX_010
Their Implementation Class UID:    1.2.3.4.5
Their Implementation Version Name: TESTX
Application Context Name:    1.2.840.10008.3.1.1.1
Calling Application Name:    TESTSCU
Called Application Name:     STORESCP
Responding Application Name: $
Our Max PDU Receive Size:    16384
Their Max PDU Receive Size:  32768
Presentation Contexts:
  Context ID:        1 (Proposed)
    Abstract Syntax: =CTImageStorage
    Proposed SCP/SCU Role: SCP/SCU
    Proposed Transfer Syntax(es):
      =JPEGLossless:Non-hierarchical-1stOrderPrediction
      =LittleEndianExplicit
  Context ID:        3 (Proposed)
    Abstract Syntax: =MRImageStorage
    Proposed SCP/SCU Role: SCP
    Proposed Transfer Syntax(es):
      =LittleEndianImplicit
  Context ID:        5 (Proposed)
    Abstract Syntax: =SecondaryCaptureImageStorage
    Proposed SCP/SCU Role: SCU
    Proposed Transfer Syntax(es):
      =JPEGBaseline
  Context ID:        7 (Proposed)
    Abstract Syntax: =ComputedRadiographyImageStorage
    Proposed SCP/SCU Role: SCP/SCU
    Proposed Transfer Syntax(es):
      =LittleEndianExplicit
  Context ID:        9 (Proposed)
    Abstract Syntax: 1.2.3.4.5.6
    Proposed SCP/SCU Role: Default
    Proposed Transfer Syntax(es):
      =LittleEndianExplicit
  Context ID:        11 (Proposed)
    Abstract Syntax: =FINDStudyRootQueryRetrieveInformationModel
    Proposed SCP/SCU Role: Default
    Proposed Transfer Syntax(es):
      =LittleEndianExplicit
      1.2.3.77
  Context ID:        13 (Proposed)
    Abstract Syntax: =VerificationSOPClass
    Proposed SCP/SCU Role: Default
    Proposed Transfer Syntax(es):
      =DeflatedLittleEndianExplicit
      =BigEndianExplicit
      =JPEG2000LosslessOnly
      =JPEG2000
      =RLELossless
      =JPEGLSLossless
      =JPEGLossless:Non-hierarchical:Process14
      =JPEGExtended:Process2+4
Requested Extended Negotiation:
  =FINDStudyRootQueryRetrieveInformationModel (1.2.840.10008.5.1.4.1.2.2.1)
    [0x01, 0x00, 0x01]
  =Unknown-UID (1.2.3.99)
    [0xff]
Accepted Extended Negotiation:  none
Requested User Identity Negotiation:
  Authentication mode 2: Username/Password
  Username: [alice]
  Password: [secret]
  Positive Response requested: Yes
User Identity Negotiation Response:  none
======================= END A-ASSOCIATE-RQ ======================
"""

STORESCP_RICH_HEX = """\
PDU Type: Associate Request, PDU Length: 949 + 6 bytes PDU header
Only dumping 512 bytes.
  01  00  00  00  03  b5  00  01  00  00  53  54  4f  52  45  53
  43  50  20  20  20  20  20  20  20  20  54  45  53  54  53  43
  55  20  20  20  20  20  20  20  20  20  00  00  00  00  00  00
  00  00  00  00  00  00  00  00  00  00  00  00  00  00  00  00
  00  00  00  00  00  00  00  00  00  00  10  00  00  15  31  2e
  32  2e  38  34  30  2e  31  30  30  30  38  2e  33  2e  31  2e
  31  2e  31  20  00  00  52  01  00  00  00  30  00  00  19  31
  2e  32  2e  38  34  30  2e  31  30  30  30  38  2e  35  2e  31
  2e  34  2e  31  2e  31  2e  32  40  00  00  16  31  2e  32  2e
  38  34  30  2e  31  30  30  30  38  2e  31  2e  32  2e  34  2e
  37  30  40  00  00  13  31  2e  32  2e  38  34  30  2e  31  30
  30  30  38  2e  31  2e  32  2e  31  20  00  00  36  03  00  00
  00  30  00  00  19  31  2e  32  2e  38  34  30  2e  31  30  30
  30  38  2e  35  2e  31  2e  34  2e  31  2e  31  2e  34  40  00
  00  11  31  2e  32  2e  38  34  30  2e  31  30  30  30  38  2e
  31  2e  32  20  00  00  3b  05  00  00  00  30  00  00  19  31
  2e  32  2e  38  34  30  2e  31  30  30  30  38  2e  35  2e  31
  2e  34  2e  31  2e  31  2e  37  40  00  00  16  31  2e  32  2e
  38  34  30  2e  31  30  30  30  38  2e  31  2e  32  2e  34  2e
  35  30  20  00  00  38  07  00  00  00  30  00  00  19  31  2e
  32  2e  38  34  30  2e  31  30  30  30  38  2e  35  2e  31  2e
  34  2e  31  2e  31  2e  31  40  00  00  13  31  2e  32  2e  38
  34  30  2e  31  30  30  30  38  2e  31  2e  32  2e  31  20  00
  00  2a  09  00  00  00  30  00  00  0b  31  2e  32  2e  33  2e
  34  2e  35  2e  36  40  00  00  13  31  2e  32  2e  38  34  30
  2e  31  30  30  30  38  2e  31  2e  32  2e  31  20  00  00  46
  0b  00  00  00  30  00  00  1b  31  2e  32  2e  38  34  30  2e
  31  30  30  30  38  2e  35  2e  31  2e  34  2e  31  2e  32  2e
  32  2e  31  40  00  00  13  31  2e  32  2e  38  34  30  2e  31
  30  30  30  38  2e  31  2e  32  2e  31  40  00  00  08  31  2e
  32  2e  33  2e  37  37  20  00  00  e3  0d  00  00  00  30  00
  00  11  31  2e  32  2e  38  34  30  2e  31  30  30  30  38  2e

"""


VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SC = "1.2.840.10008.5.1.4.1.1.7"
CR = "1.2.840.10008.5.1.4.1.1.1"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG = "1.2.840.10008.1.2.2"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
UNCOMPRESSED = [EXPLICIT, BIG, IMPLICIT]  # storescu's default order


def lines(text: str) -> list[str]:
    return [line.removesuffix("$") for line in text.splitlines()]


def hex_bytes(text: str) -> bytes:
    """The bytes of a DCMTK hex dump (its first line is the PDU type header)."""
    return bytes.fromhex(" ".join(lines(text)[1:]))


def ours(max_length: int = 16384, **fields) -> UserInformation:
    return UserInformation(
        max_length=max_length,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        **fields,
    )


def echo_rq() -> AAssociateRQ:
    return AAssociateRQ(
        "ANY-SCP", "ECHOSCU", [PresentationContextRQ(1, VERIFICATION, [IMPLICIT])], ours()
    )


# ---------------------------------------------------------------------------------------------
# We request (echoscu's side)


def test_requestor_rq_is_echoscus_block():
    assert dump_associate_rq(echo_rq(), ours=True) == lines(ECHOSCU_RQ)


def test_requestor_ac_from_dcmtks_bytes_is_echoscus_block():
    ac = decode_pdu(hex_bytes(ECHOSCU_AC_HEX))
    assert dump_associate_ac(echo_rq(), ac) == lines(ECHOSCU_AC)


def storescu_rq() -> AAssociateRQ:
    contexts = []
    for n, sop_class in enumerate([CT, MR, SC]):
        contexts.append(PresentationContextRQ(4 * n + 1, sop_class, [JPEG_LOSSLESS_SV1]))
        contexts.append(PresentationContextRQ(4 * n + 3, sop_class, UNCOMPRESSED))
    identity = UserIdentityRQ(1, True, b"bob")
    return AAssociateRQ("ANY-SCP", "STORESCU", contexts, ours(user_identity_rq=identity))


def test_requestor_rq_with_user_identity_is_storescus_block():
    assert dump_associate_rq(storescu_rq(), ours=True) == lines(STORESCU_RQ)


def test_every_context_result_role_extended_negotiation_and_identity_response():
    # what the scripted acceptor answered storescu: results 0..4 in turn, role items for
    # each context (the first item of a SOP class counts), one extended negotiation item
    rq = storescu_rq()
    roles = [(True, True), (True, False), (False, True), (False, False)]
    ac = AAssociateAC(
        "ANY-SCP",
        "STORESCU",
        [
            PresentationContextAC(
                pc.context_id, n % 5, pc.transfer_syntaxes[0] if n % 5 == 0 else ""
            )
            for n, pc in enumerate(rq.presentation_contexts)
        ],
        UserInformation(
            max_length=65536,
            implementation_class_uid="1.2.3.4.9",
            implementation_version_name="FAKE",
            role_selections=[
                RoleSelection(pc.abstract_syntax, *roles[n % 4])
                for n, pc in enumerate(rq.presentation_contexts)
            ],
            sop_class_extended=[SOPClassExtendedNegotiation(STUDY_FIND, b"\x0a\x01")],
            user_identity_ac=UserIdentityAC(b"token-xyz"),
        ),
    )
    assert dump_associate_ac(rq, ac) == lines(STORESCU_AC)


# ---------------------------------------------------------------------------------------------
# We accept (storescp's side)


def test_acceptor_dumps_received_rq_from_dcmtks_bytes_as_storescp_does():
    rq = decode_pdu(hex_bytes(STORESCP_RQ_HEX))
    assert dump_associate_rq(rq, ours=False, local_max_pdu=16384) == lines(STORESCP_RQ)


def test_acceptor_ac_is_storescps_block():
    rq = decode_pdu(hex_bytes(STORESCP_RQ_HEX))
    ac = AAssociateAC("ANY-SCP", "ECHOSCU", [PresentationContextAC(1, 0, IMPLICIT)], ours())
    assert dump_associate_ac(rq, ac, ours=False) == lines(STORESCP_AC)


def rich_rq() -> AAssociateRQ:
    ui = UserInformation(
        max_length=32768,
        implementation_class_uid="1.2.3.4.5",
        implementation_version_name="TESTX",
        role_selections=[
            RoleSelection(CT, True, True),
            RoleSelection(MR, False, True),
            RoleSelection(SC, True, False),
            RoleSelection(CR, False, False),
        ],
        sop_class_extended=[
            SOPClassExtendedNegotiation(STUDY_FIND, b"\x01\x00\x01"),
            SOPClassExtendedNegotiation("1.2.3.99", b"\xff"),
        ],
        user_identity_rq=UserIdentityRQ(2, True, b"alice", b"secret"),
    )
    many = ["1.2.840.10008.1.2.1.99", BIG, "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"]
    many += ["1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.57"]
    many += ["1.2.840.10008.1.2.4.51"]
    contexts = [
        PresentationContextRQ(1, CT, [JPEG_LOSSLESS_SV1, EXPLICIT]),
        PresentationContextRQ(3, MR, [IMPLICIT]),
        PresentationContextRQ(5, SC, ["1.2.840.10008.1.2.4.50"]),
        PresentationContextRQ(7, CR, [EXPLICIT]),
        PresentationContextRQ(9, "1.2.3.4.5.6", [EXPLICIT]),
        PresentationContextRQ(11, STUDY_FIND, [EXPLICIT, "1.2.3.77"]),
        PresentationContextRQ(13, VERIFICATION, many),
    ]
    return AAssociateRQ("STORESCP", "TESTSCU", contexts, ui)


def test_acceptor_rq_with_roles_extended_negotiation_and_password():
    expected = lines(STORESCP_RICH_RQ)
    # Two deliberate differences from DCMTK: a role item with both roles 0 (invalid, PS3.7
    # D.3.3.4) reads "None", not "SCP/SCU"; a password is never written into a log.
    cr_role = expected.index("    Abstract Syntax: =ComputedRadiographyImageStorage") + 1
    assert expected[cr_role] == "    Proposed SCP/SCU Role: SCP/SCU"
    expected[cr_role] = "    Proposed SCP/SCU Role: None"
    expected[expected.index("  Password: [secret]")] = "  Password: [********]"
    assert dump_associate_rq(rich_rq(), ours=False, local_max_pdu=16384) == expected


def test_empty_password_is_shown_empty():
    rq = echo_rq()
    rq.user_information.user_identity_rq = UserIdentityRQ(2, False, b"bob", b"")
    dump = dump_associate_rq(rq, ours=True)
    assert "  Password: []" in dump
    assert "  Positive Response requested: No" in dump


def test_identity_types_that_dcmtk_does_not_print():
    # PS3.7 D.3.3.7.1: Kerberos, SAML and JWT are credentials; DCMTK prints their length only
    for kind, label in [
        (3, "  Authentication mode 3: Kerberos"),
        (4, "  Authentication mode 4: SAML"),
        (5, "  Authentication mode 5: JWT"),
    ]:
        rq = echo_rq()
        rq.user_information.user_identity_rq = UserIdentityRQ(kind, False, b"1234567")
        dump = dump_associate_rq(rq, ours=True)
        start = dump.index("Requested User Identity Negotiation:")
        assert dump[start + 1] == label
        assert dump[start + 2].endswith("(not dumped) length: 7")
        assert "1234567" not in "\n".join(dump)


def test_unanswered_context_stays_proposed():
    ac = AAssociateAC("ANY-SCP", "ECHOSCU", [], ours())
    dump = dump_associate_ac(echo_rq(), ac)
    assert "  Context ID:        1 (Proposed)" in dump
    assert "      =LittleEndianImplicit" in dump


def test_rejection_lines_are_dcmtks():
    assert dump_associate_rj(AAssociateRJ(1, 1, 7)) == [
        "Association Rejected:",
        "Result: Rejected Permanent, Source: Service User",
        "Reason: Called AE Title Not Recognized",
    ]


# ---------------------------------------------------------------------------------------------
# PDU hex


def test_hex_dump_of_an_ac_is_echoscus():
    assert dump_pdu_hex(hex_bytes(ECHOSCU_AC_HEX)) == lines(ECHOSCU_AC_HEX)


def test_hex_dump_of_an_rq_is_storescps():
    assert dump_pdu_hex(hex_bytes(STORESCP_RQ_HEX)) == lines(STORESCP_RQ_HEX)


def test_hex_dump_stops_at_512_bytes_like_dcmtk():
    raw = encode_pdu(rich_rq())
    assert len(raw) == 955
    assert dump_pdu_hex(raw) == lines(STORESCP_RICH_HEX)


def test_hex_dump_of_a_multiple_of_16_bytes_ends_with_an_empty_line():
    # what storescp -d printed for a 176-byte A-ASSOCIATE-RQ
    raw = bytes([1, 0, 0, 0, 0, 170]) + bytes(170)
    dump = dump_pdu_hex(raw)
    assert dump[0] == "PDU Type: Associate Request, PDU Length: 170 + 6 bytes PDU header"
    assert len(dump) == 1 + 11 + 1
    assert dump[-1] == ""
    assert dump_pdu_hex(raw[:-1])[-1] != ""


# ---------------------------------------------------------------------------------------------
# UID names (as storescp -d printed them for these UIDs)


@pytest.mark.parametrize(
    ("uid", "name"),
    [
        ("1.2.840.10008.1.1", "=VerificationSOPClass"),
        ("1.2.840.10008.5.1.4.1.1.2", "=CTImageStorage"),
        ("1.2.840.10008.5.1.4.1.1.7", "=SecondaryCaptureImageStorage"),
        ("1.2.840.10008.5.1.4.1.1.3.1", "=UltrasoundMultiframeImageStorage"),
        ("1.2.840.10008.1.2", "=LittleEndianImplicit"),
        ("1.2.840.10008.1.2.1", "=LittleEndianExplicit"),
        ("1.2.840.10008.1.2.2", "=BigEndianExplicit"),
        ("1.2.840.10008.1.2.1.99", "=DeflatedLittleEndianExplicit"),
        ("1.2.840.10008.1.2.4.50", "=JPEGBaseline"),
        ("1.2.840.10008.1.2.4.57", "=JPEGLossless:Non-hierarchical:Process14"),
        ("1.2.840.10008.1.2.4.70", "=JPEGLossless:Non-hierarchical-1stOrderPrediction"),
        ("1.2.840.10008.1.2.4.80", "=JPEGLSLossless"),
        ("1.2.840.10008.1.2.4.90", "=JPEG2000LosslessOnly"),
        ("1.2.840.10008.1.2.4.91", "=JPEG2000"),
        ("1.2.840.10008.1.2.5", "=RLELossless"),
        ("1.2.840.10008.5.1.4.1.2.2.1", "=FINDStudyRootQueryRetrieveInformationModel"),
        ("1.2.840.10008.5.1.4.1.2.2.2", "=MOVEStudyRootQueryRetrieveInformationModel"),
        ("1.2.840.10008.5.1.4.1.2.1.3", "=GETPatientRootQueryRetrieveInformationModel"),
        ("1.2.840.10008.5.1.4.31", "=FINDModalityWorklistInformationModel"),
        ("1.2.840.10008.1.20.1", "=StorageCommitmentPushModelSOPClass"),
        ("1.2.3.4.5.6", "1.2.3.4.5.6"),
    ],
)
def test_uid_names_are_dcmtks(uid, name):
    assert uid_name(uid) == name


@pytest.mark.parametrize(
    ("uid", "description"),
    [
        ("1.2.840.10008.1.2", "Little Endian Implicit"),
        ("1.2.840.10008.1.2.1", "Little Endian Explicit"),
        ("1.2.840.10008.1.2.2", "Big Endian Explicit"),
        ("1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-hierarchical, 1st Order Prediction"),
        ("1.2.840.10008.1.2.4.90", "JPEG 2000 (Lossless only)"),
        ("1.2.840.10008.1.2.5", "RLE Lossless"),
        # unknown to DCMTK 3.6.7: pydicom's name
        ("1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Image Compression (Lossless Only)"),
        ("1.2.3.77", "1.2.3.77"),
    ],
)
def test_transfer_syntax_descriptions_are_dcmtks(uid, description):
    assert transfer_syntax_description(uid) == description


def test_our_identity_fits_ps37():
    # PS3.7 D.3.3.2: a UID of at most 64 characters; a version name of at most 16
    assert IMPLEMENTATION_CLASS_UID.startswith(PACSBOX_UID_ROOT + ".")
    assert len(IMPLEMENTATION_CLASS_UID) <= 64
    assert 1 <= len(IMPLEMENTATION_VERSION_NAME) <= 16
