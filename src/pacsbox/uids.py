"""UID names for people: the short names DCMTK prints in its logs and the pacsbox identity.

DCMTK users read ``=CTImageStorage`` and ``=LittleEndianExplicit`` in every association dump;
we print the same names so a log of ours reads like theirs. Most DCMTK short names equal
pydicom's UID keywords; the tables below hold only the ones that differ and that people meet
in practice (transfer syntaxes, verification, Q/R, worklist, storage commitment). Everything
else comes from pydicom's UID dictionary, and a UID neither knows is printed as-is.
"""

from __future__ import annotations

# Our organisation root, in one place. Placeholder until a registered root is assigned.
PACSBOX_UID_ROOT = "1.2.826.0.1.3680043.10.1526"
# PS3.7 D.3.3.2: identifies the implementation (software and version) in every association.
IMPLEMENTATION_CLASS_UID = f"{PACSBOX_UID_ROOT}.1.0.1"
# PS3.7 D.3.3.2: at most 16 characters of the default repertoire.
IMPLEMENTATION_VERSION_NAME = "PACSBOX_010"

# Transfer syntaxes: UID -> (DCMTK short name, DCMTK description). PS3.5 Section 10 / PS3.6 A.
_TRANSFER_SYNTAXES: dict[str, tuple[str, str]] = {
    "1.2.840.10008.1.2": ("LittleEndianImplicit", "Little Endian Implicit"),
    "1.2.840.10008.1.2.1": ("LittleEndianExplicit", "Little Endian Explicit"),
    "1.2.840.10008.1.2.1.99": (
        "DeflatedLittleEndianExplicit",
        "Deflated Explicit VR Little Endian",
    ),
    "1.2.840.10008.1.2.2": ("BigEndianExplicit", "Big Endian Explicit"),
    "1.2.840.10008.1.2.4.50": ("JPEGBaseline", "JPEG Baseline"),
    "1.2.840.10008.1.2.4.51": ("JPEGExtended:Process2+4", "JPEG Extended, Process 2+4"),
    "1.2.840.10008.1.2.4.57": (
        "JPEGLossless:Non-hierarchical:Process14",
        "JPEG Lossless, Non-hierarchical, Process 14",
    ),
    "1.2.840.10008.1.2.4.70": (
        "JPEGLossless:Non-hierarchical-1stOrderPrediction",
        "JPEG Lossless, Non-hierarchical, 1st Order Prediction",
    ),
    "1.2.840.10008.1.2.4.80": ("JPEGLSLossless", "JPEG-LS Lossless"),
    "1.2.840.10008.1.2.4.81": ("JPEGLSLossy", "JPEG-LS Lossy (Near-lossless)"),
    "1.2.840.10008.1.2.4.90": ("JPEG2000LosslessOnly", "JPEG 2000 (Lossless only)"),
    "1.2.840.10008.1.2.4.91": ("JPEG2000", "JPEG 2000 (Lossless or Lossy)"),
    "1.2.840.10008.1.2.4.92": (
        "JPEG2000MulticomponentLosslessOnly",
        "JPEG 2000 Part 2 Multicomponent Image Compression (Lossless only)",
    ),
    "1.2.840.10008.1.2.4.93": (
        "JPEG2000Multicomponent",
        "JPEG 2000 Part 2 Multicomponent Image Compression (Lossless or Lossy)",
    ),
    "1.2.840.10008.1.2.4.100": ("MPEG2MainProfile@MainLevel", "MPEG2 Main Profile @ Main Level"),
    "1.2.840.10008.1.2.4.101": ("MPEG2MainProfile@HighLevel", "MPEG2 Main Profile @ High Level"),
    "1.2.840.10008.1.2.4.102": (
        "MPEG4HighProfile/Level4.1",
        "MPEG-4 AVC/H.264 High Profile / Level 4.1",
    ),
    "1.2.840.10008.1.2.4.103": (
        "MPEG4BDcompatibleHighProfile/Level4.1",
        "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
    ),
    "1.2.840.10008.1.2.4.104": (
        "MPEG4HighProfile/Level4.2For2DVideo",
        "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
    ),
    "1.2.840.10008.1.2.4.105": (
        "MPEG4HighProfile/Level4.2For3DVideo",
        "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
    ),
    "1.2.840.10008.1.2.4.106": (
        "MPEG4StereoHighProfile/Level4.2",
        "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
    ),
    "1.2.840.10008.1.2.4.107": ("HEVCMainProfile/Level5.1", "HEVC/H.265 Main Profile / Level 5.1"),
    "1.2.840.10008.1.2.4.108": (
        "HEVCMain10Profile/Level5.1",
        "HEVC/H.265 Main 10 Profile / Level 5.1",
    ),
    "1.2.840.10008.1.2.5": ("RLELossless", "RLE Lossless"),
}

# SOP classes whose DCMTK name differs from pydicom's keyword (PS3.4 A, C, K, J; PS3.6 A).
_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.1.1": "VerificationSOPClass",
    "1.2.840.10008.1.20.1": "StorageCommitmentPushModelSOPClass",
    "1.2.840.10008.1.20.1.1": "StorageCommitmentPushModelSOPInstance",
    "1.2.840.10008.3.1.2.3.3": "ModalityPerformedProcedureStepSOPClass",
    "1.2.840.10008.5.1.4.31": "FINDModalityWorklistInformationModel",
    "1.2.840.10008.5.1.4.1.2.1.1": "FINDPatientRootQueryRetrieveInformationModel",
    "1.2.840.10008.5.1.4.1.2.1.2": "MOVEPatientRootQueryRetrieveInformationModel",
    "1.2.840.10008.5.1.4.1.2.1.3": "GETPatientRootQueryRetrieveInformationModel",
    "1.2.840.10008.5.1.4.1.2.2.1": "FINDStudyRootQueryRetrieveInformationModel",
    "1.2.840.10008.5.1.4.1.2.2.2": "MOVEStudyRootQueryRetrieveInformationModel",
    "1.2.840.10008.5.1.4.1.2.2.3": "GETStudyRootQueryRetrieveInformationModel",
    "1.2.840.10008.5.1.4.1.2.3.1": "RETIRED_FINDPatientStudyOnlyQueryRetrieveInformationModel",
    "1.2.840.10008.5.1.4.1.2.3.2": "RETIRED_MOVEPatientStudyOnlyQueryRetrieveInformationModel",
    "1.2.840.10008.5.1.4.1.2.3.3": "RETIRED_GETPatientStudyOnlyQueryRetrieveInformationModel",
    "1.2.840.10008.5.1.4.1.2.4.2": "MOVECompositeInstanceRootRetrieve",
    "1.2.840.10008.5.1.4.1.2.4.3": "GETCompositeInstanceRootRetrieve",
    "1.2.840.10008.5.1.4.1.2.5.3": "GETCompositeInstanceRetrieveWithoutBulkData",
    # storage classes in storescu's default proposal whose spelling differs ("Multiframe")
    "1.2.840.10008.5.1.4.1.1.3.1": "UltrasoundMultiframeImageStorage",
    "1.2.840.10008.5.1.4.1.1.7.1": "MultiframeSingleBitSecondaryCaptureImageStorage",
    "1.2.840.10008.5.1.4.1.1.7.2": "MultiframeGrayscaleByteSecondaryCaptureImageStorage",
    "1.2.840.10008.5.1.4.1.1.7.3": "MultiframeGrayscaleWordSecondaryCaptureImageStorage",
    "1.2.840.10008.5.1.4.1.1.7.4": "MultiframeTrueColorSecondaryCaptureImageStorage",
}

_SHORT_NAMES: dict[str, str] = {uid: names[0] for uid, names in _TRANSFER_SYNTAXES.items()}
_SHORT_NAMES.update(_SOP_CLASSES)


def uid_keyword(uid: str) -> str:
    """The DCMTK-style short name of ``uid`` without the '=', or '' when no name is known."""
    return _SHORT_NAMES.get(uid) or _pydicom_uid(uid).keyword


def uid_name(uid: str) -> str:
    """``uid`` as DCMTK logs it: '=CTImageStorage' when a name is known, else the UID itself."""
    keyword = uid_keyword(uid)
    return f"={keyword}" if keyword else uid


def uid_description(uid: str) -> str:
    """A UID's name for sentences: DCMTK's words for transfer syntaxes ('Little Endian
    Explicit'), the standard's for the rest ('CT Image Storage'); an unknown UID as-is."""
    known = _TRANSFER_SYNTAXES.get(uid)
    return known[1] if known else _pydicom_uid(uid).name


def transfer_syntax_description(uid: str) -> str:
    """DCMTK's long name of a transfer syntax ('JPEG Lossless, Non-hierarchical, 1st Order
    Prediction'), else pydicom's name; a UID neither knows is returned as-is."""
    return uid_description(uid)


def _pydicom_uid(uid: str):
    """pydicom's UID, imported on first use: importing pydicom costs a tool 0.2 s at start-up
    (numpy and the codecs), and most runs print no name that needs its dictionary."""
    from pydicom.uid import UID

    return UID(uid)
