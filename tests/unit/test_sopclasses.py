"""Storage SOP classes and DCMTK's file name prefixes, checked against DCMTK 3.6.7's tables."""

from __future__ import annotations

import re

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from pacsbox.sopclasses import (
    _MODALITY_PREFIXES,
    NON_PATIENT_STORAGE_SOP_CLASSES,
    STORAGE_SOP_CLASSES,
    UNKNOWN_PREFIX,
    _storage_classes_in_pydicom,
    is_storage,
    modality_prefix,
)
from tests import peers

# A sample of DCMTK 3.6.7's dcmAllStorageSOPClassUIDs (dcmdata/libsrc/dcuid.cc), the classes
# its storescp accepts: every kind of object, retired ones, DICOS and DICONDE included.
DCMTK_367_STORAGE_SAMPLE = [
    "1.2.840.10008.5.1.4.1.1.2",  # CTImageStorage
    "1.2.840.10008.5.1.4.1.1.2.1",  # EnhancedCTImageStorage
    "1.2.840.10008.5.1.4.1.1.4",  # MRImageStorage
    "1.2.840.10008.5.1.4.1.1.4.1",  # EnhancedMRImageStorage
    "1.2.840.10008.5.1.4.1.1.6.1",  # UltrasoundImageStorage
    "1.2.840.10008.5.1.4.1.1.3.1",  # UltrasoundMultiframeImageStorage
    "1.2.840.10008.5.1.4.1.1.1",  # ComputedRadiographyImageStorage
    "1.2.840.10008.5.1.4.1.1.1.1",  # DigitalXRayImageStorageForPresentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # DigitalXRayImageStorageForProcessing
    "1.2.840.10008.5.1.4.1.1.1.2",  # DigitalMammographyXRayImageStorageForPresentation
    "1.2.840.10008.5.1.4.1.1.1.3",  # DigitalIntraOralXRayImageStorageForPresentation
    "1.2.840.10008.5.1.4.1.1.20",  # NuclearMedicineImageStorage
    "1.2.840.10008.5.1.4.1.1.128",  # PositronEmissionTomographyImageStorage
    "1.2.840.10008.5.1.4.1.1.130",  # EnhancedPETImageStorage
    "1.2.840.10008.5.1.4.1.1.481.1",  # RTImageStorage
    "1.2.840.10008.5.1.4.1.1.481.2",  # RTDoseStorage
    "1.2.840.10008.5.1.4.1.1.481.3",  # RTStructureSetStorage
    "1.2.840.10008.5.1.4.1.1.481.5",  # RTPlanStorage
    "1.2.840.10008.5.1.4.1.1.481.4",  # RTBeamsTreatmentRecordStorage
    "1.2.840.10008.5.1.4.1.1.481.8",  # RTIonPlanStorage
    "1.2.840.10008.5.1.4.1.1.7",  # SecondaryCaptureImageStorage
    "1.2.840.10008.5.1.4.1.1.7.1",  # MultiframeSingleBitSecondaryCaptureImageStorage
    "1.2.840.10008.5.1.4.1.1.7.2",  # MultiframeGrayscaleByteSecondaryCaptureImageStorage
    "1.2.840.10008.5.1.4.1.1.7.3",  # MultiframeGrayscaleWordSecondaryCaptureImageStorage
    "1.2.840.10008.5.1.4.1.1.7.4",  # MultiframeTrueColorSecondaryCaptureImageStorage
    "1.2.840.10008.5.1.4.1.1.11.1",  # GrayscaleSoftcopyPresentationStateStorage
    "1.2.840.10008.5.1.4.1.1.11.2",  # ColorSoftcopyPresentationStateStorage
    "1.2.840.10008.5.1.4.1.1.11.3",  # PseudoColorSoftcopyPresentationStateStorage
    "1.2.840.10008.5.1.4.1.1.11.4",  # BlendingSoftcopyPresentationStateStorage
    "1.2.840.10008.5.1.4.1.1.11.5",  # XAXRFGrayscaleSoftcopyPresentationStateStorage
    "1.2.840.10008.5.1.4.1.1.88.11",  # BasicTextSRStorage
    "1.2.840.10008.5.1.4.1.1.88.22",  # EnhancedSRStorage
    "1.2.840.10008.5.1.4.1.1.88.33",  # ComprehensiveSRStorage
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive3DSRStorage
    "1.2.840.10008.5.1.4.1.1.88.67",  # XRayRadiationDoseSRStorage
    "1.2.840.10008.5.1.4.1.1.88.59",  # KeyObjectSelectionDocumentStorage
    "1.2.840.10008.5.1.4.1.1.104.1",  # EncapsulatedPDFStorage
    "1.2.840.10008.5.1.4.1.1.104.2",  # EncapsulatedCDAStorage
    "1.2.840.10008.5.1.4.1.1.104.3",  # EncapsulatedSTLStorage
    "1.2.840.10008.5.1.4.1.1.104.4",  # EncapsulatedOBJStorage
    "1.2.840.10008.5.1.4.1.1.104.5",  # EncapsulatedMTLStorage
    "1.2.840.10008.5.1.4.1.1.77.1.4",  # VLPhotographicImageStorage
    "1.2.840.10008.5.1.4.1.1.77.1.6",  # VLWholeSlideMicroscopyImageStorage
    "1.2.840.10008.5.1.4.1.1.77.1.5.4",  # OphthalmicTomographyImageStorage
    "1.2.840.10008.5.1.4.1.1.77.1.1.1",  # VideoEndoscopicImageStorage
    "1.2.840.10008.5.1.4.1.1.9.1.1",  # TwelveLeadECGWaveformStorage
    "1.2.840.10008.5.1.4.1.1.9.4.2",  # GeneralAudioWaveformStorage
    "1.2.840.10008.5.1.4.1.1.9.2.1",  # HemodynamicWaveformStorage
    "1.2.840.10008.5.1.4.1.1.66.4",  # SegmentationStorage
    "1.2.840.10008.5.1.4.1.1.66.5",  # SurfaceSegmentationStorage
    "1.2.840.10008.5.1.4.1.1.67",  # RealWorldValueMappingStorage
    "1.2.840.10008.5.1.4.1.1.66.1",  # SpatialRegistrationStorage
    "1.2.840.10008.5.1.4.1.1.66.2",  # SpatialFiducialsStorage
    "1.2.840.10008.5.1.4.1.1.66",  # RawDataStorage
    "1.2.840.10008.5.1.4.1.1.30",  # ParametricMapStorage
    "1.2.840.10008.5.1.4.1.1.66.6",  # TractographyResultsStorage
    "1.2.840.10008.5.1.4.1.1.2.2",  # LegacyConvertedEnhancedCTImageStorage
    "1.2.840.10008.5.1.4.1.1.13.1.3",  # BreastTomosynthesisImageStorage
    "1.2.840.10008.5.1.4.1.1.13.1.4",  # BreastProjectionXRayImageStorageForPresentation
    "1.2.840.10008.5.1.4.1.1.14.1",  # IntravascularOpticalCoherenceTomographyImageStorageForPresentation
    "1.2.840.10008.5.1.4.1.1.90.1",  # ContentAssessmentResultsStorage
    "1.2.840.10008.5.1.4.1.1.200.2",  # CTPerformedProcedureProtocolStorage
    "1.2.840.10008.5.1.4.1.1.6",  # RETIRED_UltrasoundImageStorage
    "1.2.840.10008.5.1.4.1.1.5",  # RETIRED_NuclearMedicineImageStorage
    "1.2.840.10008.5.1.4.1.1.9",  # RETIRED_StandaloneCurveStorage
    "1.2.840.10008.5.1.1.29",  # RETIRED_HardcopyGrayscaleImageStorage
    "1.2.840.10008.5.1.4.1.1.501.1",  # DICOS_CTImageStorage
    "1.2.840.10008.5.1.4.1.1.601.1",  # DICONDE_EddyCurrentImageStorage
]

# DCMTK 3.6.7's dcmNonPatientStorageSOPClassUIDs (complete).
DCMTK_367_NON_PATIENT = [
    "1.2.840.10008.5.1.4.39.1",  # ColorPaletteStorage
    "1.2.840.10008.5.1.4.1.1.200.1",  # CTDefinedProcedureProtocolStorage
    "1.2.840.10008.5.1.4.43.1",  # GenericImplantTemplateStorage
    "1.2.840.10008.5.1.4.38.1",  # HangingProtocolStorage
    "1.2.840.10008.5.1.4.44.1",  # ImplantAssemblyTemplateStorage
    "1.2.840.10008.5.1.4.45.1",  # ImplantTemplateGroupStorage
    "1.2.840.10008.5.1.4.1.1.200.3",  # ProtocolApprovalStorage
    "1.2.840.10008.5.1.4.1.1.200.7",  # XADefinedProcedureProtocolStorage
]

# (SOP class, prefix) from DCMTK 3.6.7's modalities[] table in dcuid.cc.
DCMTK_367_PREFIXES = [
    ("1.2.840.10008.5.1.4.1.1.2", "CT"),  # CTImageStorage
    ("1.2.840.10008.5.1.4.1.1.2.1", "CTe"),  # EnhancedCTImageStorage
    ("1.2.840.10008.5.1.4.1.1.2.2", "CTl"),  # LegacyConvertedEnhancedCTImageStorage
    ("1.2.840.10008.5.1.4.1.1.4", "MR"),  # MRImageStorage
    ("1.2.840.10008.5.1.4.1.1.4.1", "MRe"),  # EnhancedMRImageStorage
    ("1.2.840.10008.5.1.4.1.1.6.1", "US"),  # UltrasoundImageStorage
    ("1.2.840.10008.5.1.4.1.1.3.1", "USm"),  # UltrasoundMultiframeImageStorage
    ("1.2.840.10008.5.1.4.1.1.3", "USf"),  # RETIRED_UltrasoundMultiframeImageStorage
    ("1.2.840.10008.5.1.4.1.1.1", "CR"),  # ComputedRadiographyImageStorage
    ("1.2.840.10008.5.1.4.1.1.1.1", "DX"),  # DigitalXRayImageStorageForPresentation
    ("1.2.840.10008.5.1.4.1.1.1.2", "DXm"),  # DigitalMammographyXRayImageStorageForPresentation
    ("1.2.840.10008.5.1.4.1.1.20", "NM"),  # NuclearMedicineImageStorage
    ("1.2.840.10008.5.1.4.1.1.128", "PI"),  # PositronEmissionTomographyImageStorage
    ("1.2.840.10008.5.1.4.1.1.481.1", "RI"),  # RTImageStorage
    ("1.2.840.10008.5.1.4.1.1.481.2", "RD"),  # RTDoseStorage
    ("1.2.840.10008.5.1.4.1.1.481.3", "RS"),  # RTStructureSetStorage
    ("1.2.840.10008.5.1.4.1.1.481.5", "RP"),  # RTPlanStorage
    ("1.2.840.10008.5.1.4.1.1.481.4", "RTb"),  # RTBeamsTreatmentRecordStorage
    ("1.2.840.10008.5.1.4.1.1.7", "SC"),  # SecondaryCaptureImageStorage
    ("1.2.840.10008.5.1.4.1.1.7.4", "SCc"),  # MultiframeTrueColorSecondaryCaptureImageStorage
    ("1.2.840.10008.5.1.4.1.1.11.1", "PSg"),  # GrayscaleSoftcopyPresentationStateStorage
    ("1.2.840.10008.5.1.4.1.1.88.11", "SRt"),  # BasicTextSRStorage
    ("1.2.840.10008.5.1.4.1.1.88.22", "SRe"),  # EnhancedSRStorage
    ("1.2.840.10008.5.1.4.1.1.88.33", "SRc"),  # ComprehensiveSRStorage
    ("1.2.840.10008.5.1.4.1.1.88.59", "KO"),  # KeyObjectSelectionDocumentStorage
    ("1.2.840.10008.5.1.4.1.1.104.1", "PDF"),  # EncapsulatedPDFStorage
    ("1.2.840.10008.5.1.4.1.1.104.2", "CDA"),  # EncapsulatedCDAStorage
    ("1.2.840.10008.5.1.4.1.1.66.4", "SG"),  # SegmentationStorage
    ("1.2.840.10008.5.1.4.1.1.9.1.1", "TLE"),  # TwelveLeadECGWaveformStorage
    ("1.2.840.10008.5.1.4.1.1.77.1.6", "VLw"),  # VLWholeSlideMicroscopyImageStorage
    ("1.2.840.10008.5.1.4.1.1.12.1", "XA"),  # XRayAngiographicImageStorage
    ("1.2.840.10008.5.1.4.1.1.66", "RAW"),  # RawDataStorage
]


@pytest.mark.parametrize("uid", DCMTK_367_STORAGE_SAMPLE)
def test_every_class_dcmtk_stores_is_storage(uid: str) -> None:
    assert is_storage(uid)


@pytest.mark.parametrize("uid", DCMTK_367_STORAGE_SAMPLE + DCMTK_367_NON_PATIENT)
def test_the_rule_over_pydicom_alone_finds_dcmtks_classes(uid: str) -> None:
    # The set must not depend on the DCMTK table for classes pydicom knows.
    assert uid in _storage_classes_in_pydicom()


def test_non_patient_classes_are_dcmtks_plus_inventory() -> None:
    inventory = "1.2.840.10008.5.1.4.1.1.201.1"
    assert {*DCMTK_367_NON_PATIENT, inventory} == NON_PATIENT_STORAGE_SOP_CLASSES
    assert NON_PATIENT_STORAGE_SOP_CLASSES <= STORAGE_SOP_CLASSES


@pytest.mark.parametrize(
    ("uid", "name"),
    [
        ("1.2.840.10008.1.20.1", "Storage Commitment Push Model"),
        ("1.2.840.10008.1.20.2", "Storage Commitment Pull Model (retired)"),
        ("1.2.840.10008.1.3.10", "Media Storage Directory Storage (DICOMDIR)"),
        ("1.2.840.10008.1.1", "Verification"),
        ("1.2.840.10008.5.1.4.1.2.2.1", "Study Root Q/R Find"),
        ("1.2.840.10008.5.1.4.1.2.2.3", "Study Root Q/R Get"),
        ("1.2.840.10008.5.1.4.31", "Modality Worklist Find"),
        ("1.2.840.10008.1.2.1", "a transfer syntax"),
        ("1.2.3.4", "an unknown UID"),
    ],
)
def test_what_is_not_storage(uid: str, name: str) -> None:
    assert not is_storage(uid), name


def test_newer_classes_than_dcmtk_367_are_storage() -> None:
    for uid in (
        "1.2.840.10008.5.1.4.1.1.6.3",  # Photoacoustic Image Storage
        "1.2.840.10008.5.1.4.1.1.77.1.8",  # Confocal Microscopy Image Storage
        "1.2.840.10008.5.1.4.1.1.201.1",  # Inventory Storage
        "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation Storage (newer than pydicom)
    ):
        assert is_storage(uid), uid


@pytest.mark.parametrize(("uid", "prefix"), DCMTK_367_PREFIXES)
def test_modality_prefix_is_dcmtks(uid: str, prefix: str) -> None:
    assert modality_prefix(uid) == prefix


def test_every_class_dcmtk_names_has_a_prefix() -> None:
    for uid in DCMTK_367_STORAGE_SAMPLE:
        assert modality_prefix(uid) != UNKNOWN_PREFIX, uid


def test_unknown_class_gets_storescps_fallback() -> None:
    assert modality_prefix("1.2.3.4") == "UNKNOWN"
    assert modality_prefix("1.2.840.10008.1.20.1") == "UNKNOWN"


def test_prefixes_are_usable_in_file_names() -> None:
    for uid, prefix in _MODALITY_PREFIXES.items():
        assert re.fullmatch(r"[A-Za-z0-9_]{2,5}", prefix), (uid, prefix)  # e.g. "RB_d"
        assert uid in STORAGE_SOP_CLASSES, uid


@pytest.mark.interop
def test_storescp_names_files_with_these_prefixes(tmp_path, tmp_port) -> None:
    names = ["CT_small.dcm", "MR_small.dcm", "rtdose.dcm", "rtplan.dcm", "reportsi.dcm"]
    files = [get_testdata_file(name) for name in names]
    out = tmp_path / "out"
    out.mkdir()
    with peers.DcmtkServer("storescp", ["-od", out], tmp_port):
        cp = peers.run_dcmtk("storescu", "127.0.0.1", tmp_port, *files)
        assert cp.returncode == 0, cp.stdout + cp.stderr
    written = {p.name for p in out.iterdir()}
    expected = set()
    for path in files:
        ds = dcmread(path, stop_before_pixels=True)
        expected.add(f"{modality_prefix(ds.SOPClassUID)}.{ds.SOPInstanceUID}")
    assert written == expected
    assert {name.split(".")[0] for name in written} == {"CT", "MR", "RD", "RP", "SRt"}
