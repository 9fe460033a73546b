"""Storage SOP classes: which abstract syntaxes are "store me" objects, and their file prefixes.

A storage SCP (storescp, dcmqrscp, our archive) accepts every Storage SOP class it knows; the
set here is what we know. It is derived from pydicom's UID dictionary by rule, so it follows
the standard as pydicom does, and it is checked in the tests against DCMTK 3.6.7's
``dcmAllStorageSOPClassUIDs`` (dcmdata/libsrc/dcuid.cc), the list DCMTK's storescp accepts.

``modality_prefix`` gives the short code DCMTK's storescp puts in front of the SOP Instance UID
when it names a received file (``CT.1.2.3...``, ``SRt.1.2.3...``); users' scripts glob on it.
"""

from __future__ import annotations

import functools

# Names that contain "Storage" but are not Storage SOP classes: Storage Commitment (PS3.4 J),
# Storage Management (PS3.4 KK), the DICOMDIR's Media Storage Directory Storage (PS3.10), and
# any query/retrieve model that mentions storage in its name.
_NOT_STORAGE = (
    "Storage Commitment",
    "Storage Management",
    "Media Storage Directory",
    "Query",
    "Retrieve",
    "Information Model",
)

# Storage SOP classes that do not fit the patient/study/series/instance model (PS3.4 Annex T,
# U, V, W, BB, HH): DCMTK's dcmNonPatientStorageSOPClassUIDs. DCMTK 3.6.7's storescp and
# dcmqrscp do not accept them by default; an archive that stores them indexes them apart.
NON_PATIENT_STORAGE_SOP_CLASSES: frozenset[str] = frozenset(
    {
        "1.2.840.10008.5.1.4.39.1",  # Color Palette Storage
        "1.2.840.10008.5.1.4.1.1.200.1",  # CT Defined Procedure Protocol Storage
        "1.2.840.10008.5.1.4.43.1",  # Generic Implant Template Storage
        "1.2.840.10008.5.1.4.38.1",  # Hanging Protocol Storage
        "1.2.840.10008.5.1.4.44.1",  # Implant Assembly Template Storage
        "1.2.840.10008.5.1.4.45.1",  # Implant Template Group Storage
        "1.2.840.10008.5.1.4.1.1.200.3",  # Protocol Approval Storage
        "1.2.840.10008.5.1.4.1.1.200.7",  # XA Defined Procedure Protocol Storage
        "1.2.840.10008.5.1.4.1.1.201.1",  # Inventory Storage (DCMTK 3.7.0 lists it here)
    }
)

# DCMTK's dcmSOPClassUIDToModality table (dcuid.cc ``modalities[]``), UID -> file name prefix.
# Values are those of DCMTK 3.7.0, which equal 3.6.7's for every class 3.6.7 knows except
# Protocol Approval ("PA" -> "PAp", freed for Photoacoustic); 3.6.7's storescp never accepts
# Protocol Approval, so its file names are unchanged. Entries marked [not in DCMTK 3.6.7]
# are classes 3.6.7 does not know (it would reject them).
_MODALITY_PREFIXES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.88.71": "SRa",  # Acquisition Context SR Storage
    "1.2.840.10008.5.1.4.1.1.11.8": "PSa",  # Advanced Blending Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.9.1.3": "ECA",  # Ambulatory ECG Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.5.1": "WVa",  # Arterial Pulse Waveform Storage
    "1.2.840.10008.5.1.4.1.1.78.2": "OPa",  # Autorefraction Measurements Storage
    "1.2.840.10008.5.1.4.1.1.131": "SD",  # Basic Structured Display Storage
    "1.2.840.10008.5.1.4.1.1.88.11": "SRt",  # Basic Text SR Storage
    "1.2.840.10008.5.1.4.1.1.9.4.1": "AUV",  # Basic Voice Audio Waveform Storage
    "1.2.840.10008.5.1.4.1.1.11.4": "PSb",  # Blending Softcopy Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.9.8.1": "WVb",  # Body Position Waveform Storage
    "1.2.840.10008.5.1.4.1.1.13.1.4": "BX",  # Breast Projection X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.13.1.5": "BP",  # Breast Projection X-Ray Image Storage - For Processing
    "1.2.840.10008.5.1.4.1.1.13.1.3": "BT",  # Breast Tomosynthesis Image Storage
    "1.2.840.10008.5.1.4.1.1.9.3.1": "WVc",  # Cardiac Electrophysiology Waveform Storage
    "1.2.840.10008.5.1.4.1.1.481.19": "RRc",  # C-Arm Photon-Electron Radiation Record Storage
    "1.2.840.10008.5.1.4.1.1.481.13": "Rca",  # C-Arm Photon-Electron Radiation Storage
    "1.2.840.10008.5.1.4.1.1.88.65": "SRh",  # Chest CAD SR Storage
    "1.2.840.10008.5.1.4.1.1.88.69": "SRo",  # Colon CAD SR Storage
    "1.2.840.10008.5.1.4.39.1": "CP",  # Color Palette Storage
    "1.2.840.10008.5.1.4.1.1.11.2": "PSc",  # Color Softcopy Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.11.7": "VPc",  # Compositing Planar MPR Volumetric Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.88.34": "SR3",  # Comprehensive 3D SR Storage
    "1.2.840.10008.5.1.4.1.1.88.33": "SRc",  # Comprehensive SR Storage
    "1.2.840.10008.5.1.4.1.1.1": "CR",  # Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.8": "CFm",  # Confocal Microscopy Image Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.77.1.9": "CFt",  # Confocal Microscopy Tiled Pyramidal Image Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.90.1": "AS",  # Content Assessment Results Storage
    "1.2.840.10008.5.1.4.1.1.82.1": "CM",  # Corneal Topography Map Storage
    "1.2.840.10008.5.1.4.1.1.200.1": "PPcd",  # CT Defined Procedure Protocol Storage
    "1.2.840.10008.5.1.4.1.1.2": "CT",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.200.2": "PPcp",  # CT Performed Procedure Protocol Storage
    "1.2.840.10008.5.1.4.1.1.66.3": "RGd",  # Deformable Spatial Registration Storage
    "1.2.840.10008.5.1.4.1.1.77.1.7": "VLd",  # Dermoscopic Photography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.3": "DXo",  # Digital Intra-Oral X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.3.1": "DPo",  # Digital Intra-Oral X-Ray Image Storage - For Processing
    "1.2.840.10008.5.1.4.1.1.1.2": "DXm",  # Digital Mammography X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1": "DPm",  # Digital Mammography X-Ray Image Storage - For Processing
    "1.2.840.10008.5.1.4.1.1.1.1": "DX",  # Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1": "DP",  # Digital X-Ray Image Storage - For Processing
    "1.2.840.10008.5.1.4.1.1.9.7.2": "EMG",  # Electromyogram Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.7.3": "EOG",  # Electrooculogram Waveform Storage
    "1.2.840.10008.5.1.4.1.1.104.2": "CDA",  # Encapsulated CDA Storage
    "1.2.840.10008.5.1.4.1.1.104.5": "MTL",  # Encapsulated MTL Storage
    "1.2.840.10008.5.1.4.1.1.104.4": "OBJ",  # Encapsulated OBJ Storage
    "1.2.840.10008.5.1.4.1.1.104.1": "PDF",  # Encapsulated PDF Storage
    "1.2.840.10008.5.1.4.1.1.104.3": "STL",  # Encapsulated STL Storage
    "1.2.840.10008.5.1.4.1.1.481.24": "RIc",  # Enhanced Continuous RT Image Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.2.1": "CTe",  # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.4.3": "MRc",  # Enhanced MR Color Image Storage
    "1.2.840.10008.5.1.4.1.1.4.1": "MRe",  # Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.130": "PIe",  # Enhanced PET Image Storage
    "1.2.840.10008.5.1.4.1.1.481.23": "RIe",  # Enhanced RT Image Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.88.22": "SRe",  # Enhanced SR Storage
    "1.2.840.10008.5.1.4.1.1.6.2": "USe",  # Enhanced US Volume Storage
    "1.2.840.10008.5.1.4.1.1.12.1.1": "XAe",  # Enhanced XA Image Storage
    "1.2.840.10008.5.1.4.1.1.88.76": "SRde",  # Enhanced X-Ray Radiation Dose SR Storage
    "1.2.840.10008.5.1.4.1.1.12.2.1": "RFe",  # Enhanced XRF Image Storage
    "1.2.840.10008.5.1.4.1.1.88.35": "SRx",  # Extensible SR Storage
    "1.2.840.10008.5.1.4.1.1.9.1.4": "ECGh",  # General 32-bit ECG Waveform Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.9.4.2": "AUG",  # General Audio Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.1.2": "ECG",  # General ECG Waveform Storage
    "1.2.840.10008.5.1.4.43.1": "IT",  # Generic Implant Template Storage
    "1.2.840.10008.5.1.4.1.1.11.6": "VPg",  # Grayscale Planar MPR Volumetric Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.11.1": "PSg",  # Grayscale Softcopy Presentation State Storage
    "1.2.840.10008.5.1.4.38.1": "HP",  # Hanging Protocol Storage
    "1.2.840.10008.5.1.4.1.1.66.8": "SGh",  # Height Map Segmentation Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.9.2.1": "WVh",  # Hemodynamic Waveform Storage
    "1.2.840.10008.5.1.4.44.1": "ITa",  # Implant Assembly Template Storage
    "1.2.840.10008.5.1.4.1.1.88.70": "SRi",  # Implantation Plan SR Storage
    "1.2.840.10008.5.1.4.45.1": "ITg",  # Implant Template Group Storage
    "1.2.840.10008.5.1.4.1.1.78.8": "OPc",  # Intraocular Lens Calculations Storage
    "1.2.840.10008.5.1.4.1.1.14.1": "OCt",  # Intravascular Optical Coherence Tomography Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.14.2": "OCp",  # Intravascular Optical Coherence Tomography Image Storage - For Processing
    "1.2.840.10008.5.1.4.1.1.201.1": "INV",  # Inventory Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.78.3": "OPk",  # Keratometry Measurements Storage
    "1.2.840.10008.5.1.4.1.1.88.59": "KO",  # Key Object Selection Document Storage
    "1.2.840.10008.5.1.4.1.1.66.7": "SGl",  # Label Map Segmentation Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.2.2": "CTl",  # Legacy Converted Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.4.4": "MRl",  # Legacy Converted Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.128.1": "PIl",  # Legacy Converted Enhanced PET Image Storage
    "1.2.840.10008.5.1.4.1.1.78.1": "OPl",  # Lensometry Measurements Storage
    "1.2.840.10008.5.1.4.1.1.79.1": "SRg",  # Macular Grid Thickness and Volume Report Storage
    "1.2.840.10008.5.1.4.1.1.88.50": "SRm",  # Mammography CAD SR Storage
    "1.2.840.10008.5.1.4.1.1.91.1": "MAs",  # Microscopy Bulk Simple Annotations Storage
    "1.2.840.10008.5.1.4.1.1.4": "MR",  # MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.2": "MRs",  # MR Spectroscopy Storage
    "1.2.840.10008.5.1.4.1.1.9.6.2": "WVm",  # Multi-channel Respiratory Waveform Storage
    "1.2.840.10008.5.1.4.1.1.7.2": "SCb",  # Multi-frame Grayscale Byte Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.7.3": "SCw",  # Multi-frame Grayscale Word Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.7.1": "SCs",  # Multi-frame Single Bit Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.7.4": "SCc",  # Multi-frame True Color Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.11.11": "VPm",  # Multiple Volume Rendering Volumetric Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.20": "NM",  # Nuclear Medicine Image Storage
    "1.2.840.10008.5.1.4.1.1.78.7": "OPx",  # Ophthalmic Axial Measurements Storage
    "1.2.840.10008.5.1.4.1.1.77.1.5.8": "OCb",  # Ophthalmic Optical Coherence Tomography B-scan Volume Analysis Storage
    "1.2.840.10008.5.1.4.1.1.77.1.5.7": "OCe",  # Ophthalmic Optical Coherence Tomography En Face Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.5.2": "OPw",  # Ophthalmic Photography 16 Bit Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.5.1": "OPb",  # Ophthalmic Photography 8 Bit Image Storage
    "1.2.840.10008.5.1.4.1.1.81.1": "OPm",  # Ophthalmic Thickness Map Storage
    "1.2.840.10008.5.1.4.1.1.77.1.5.4": "OPt",  # Ophthalmic Tomography Image Storage
    "1.2.840.10008.5.1.4.1.1.80.1": "OPp",  # Ophthalmic Visual Field Static Perimetry Measurements Storage
    "1.2.840.10008.5.1.4.1.1.30": "PM",  # Parametric Map Storage
    "1.2.840.10008.5.1.4.1.1.88.73": "SRq",  # Patient Radiation Dose SR Storage
    "1.2.840.10008.5.1.4.1.1.88.75": "SRi",  # Performed Imaging Agent Administration SR Storage
    "1.2.840.10008.5.1.4.1.1.6.3": "PA",  # Photoacoustic Image Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.88.74": "SRj",  # Planned Imaging Agent Administration SR Storage
    "1.2.840.10008.5.1.4.1.1.128": "PI",  # Positron Emission Tomography Image Storage
    "1.2.840.10008.5.1.4.1.1.88.40": "SRp",  # Procedure Log Storage
    "1.2.840.10008.5.1.4.1.1.200.3": "PAp",  # Protocol Approval Storage ["PA" in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.11.3": "PSp",  # Pseudo-Color Softcopy Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.88.68": "SRr",  # Radiopharmaceutical Radiation Dose SR Storage
    "1.2.840.10008.5.1.4.1.1.66": "RAW",  # Raw Data Storage
    "1.2.840.10008.5.1.4.1.1.67": "RWM",  # Real World Value Mapping Storage
    "1.2.840.10008.5.1.4.1.1.9.6.1": "WVr",  # Respiratory Waveform Storage
    "1.2.840.10008.5.1.4.1.1.481.15": "Rra",  # Robotic-Arm Radiation Storage
    "1.2.840.10008.5.1.4.1.1.481.20": "RRr",  # Robotic Radiation Record Storage
    "1.2.840.10008.5.1.4.1.1.9.7.1": "EEG",  # Routine Scalp Electroencephalogram Waveform Storage
    "1.2.840.10008.5.1.4.34.7": "RTd",  # RT Beams Delivery Instruction Storage
    "1.2.840.10008.5.1.4.1.1.481.4": "RTb",  # RT Beams Treatment Record Storage
    "1.2.840.10008.5.1.4.34.10": "RTa",  # RT Brachy Application Setup Delivery Instruction Storage
    "1.2.840.10008.5.1.4.1.1.481.6": "RTr",  # RT Brachy Treatment Record Storage
    "1.2.840.10008.5.1.4.1.1.481.2": "RD",  # RT Dose Storage
    "1.2.840.10008.5.1.4.1.1.481.1": "RI",  # RT Image Storage
    "1.2.840.10008.5.1.4.1.1.481.9": "RTi",  # RT Ion Beams Treatment Record Storage
    "1.2.840.10008.5.1.4.1.1.481.8": "RPi",  # RT Ion Plan Storage
    "1.2.840.10008.5.1.4.1.1.481.25": "RPp",  # RT Patient Position Acquisition Instruction Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.481.5": "RP",  # RT Plan Storage
    "1.2.840.10008.5.1.4.1.1.481.10": "RIp",  # RT Physician Intent Storage
    "1.2.840.10008.5.1.4.1.1.481.16": "RSr",  # RT Radiation Record Set Storage
    "1.2.840.10008.5.1.4.1.1.481.17": "RRs",  # RT Radiation Salvage Record Storage
    "1.2.840.10008.5.1.4.1.1.481.21": "RSd",  # RT Radiation Set Delivery Instruction Storage
    "1.2.840.10008.5.1.4.1.1.481.12": "RSe",  # RT Radiation Set Storage
    "1.2.840.10008.5.1.4.1.1.481.11": "RAs",  # RT Segment Annotation Storage
    "1.2.840.10008.5.1.4.1.1.481.3": "RS",  # RT Structure Set Storage
    "1.2.840.10008.5.1.4.1.1.481.22": "RTp",  # RT Treatment Preparation Storage
    "1.2.840.10008.5.1.4.1.1.481.7": "RTs",  # RT Treatment Summary Record Storage
    "1.2.840.10008.5.1.4.1.1.7": "SC",  # Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.66.4": "SG",  # Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.11.10": "VPs",  # Segmented Volume Rendering Volumetric Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.88.72": "SRu",  # Simplified Adult Echo SR Storage
    "1.2.840.10008.5.1.4.1.1.9.7.4": "WVs",  # Sleep Electroencephalogram Waveform Storage
    "1.2.840.10008.5.1.4.1.1.66.2": "FID",  # Spatial Fiducials Storage
    "1.2.840.10008.5.1.4.1.1.66.1": "RGs",  # Spatial Registration Storage
    "1.2.840.10008.5.1.4.1.1.78.6": "SRs",  # Spectacle Prescription Report Storage
    "1.2.840.10008.5.1.4.1.1.77.1.5.3": "OPr",  # Stereometric Relationship Storage
    "1.2.840.10008.5.1.4.1.1.78.4": "OPs",  # Subjective Refraction Measurements Storage
    "1.2.840.10008.5.1.4.1.1.68.1": "SSm",  # Surface Scan Mesh Storage
    "1.2.840.10008.5.1.4.1.1.68.2": "SSp",  # Surface Scan Point Cloud Storage
    "1.2.840.10008.5.1.4.1.1.66.5": "SGs",  # Surface Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.481.18": "RRt",  # Tomotherapeutic Radiation Record Storage
    "1.2.840.10008.5.1.4.1.1.481.14": "Rto",  # Tomotherapeutic Radiation Storage
    "1.2.840.10008.5.1.4.1.1.66.6": "TR",  # Tractography Results Storage
    "1.2.840.10008.5.1.4.1.1.9.1.1": "TLE",  # 12-lead ECG Waveform Storage
    "1.2.840.10008.5.1.4.1.1.6.1": "US",  # Ultrasound Image Storage
    "1.2.840.10008.5.1.4.1.1.3.1": "USm",  # Ultrasound Multi-frame Image Storage
    "1.2.840.10008.5.1.4.1.1.11.12": "PSv",  # Variable Modality LUT Softcopy Presentation State Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.77.1.1.1": "VVe",  # Video Endoscopic Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.2.1": "VVm",  # Video Microscopic Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.4.1": "VVp",  # Video Photographic Image Storage
    "1.2.840.10008.5.1.4.1.1.78.5": "OPv",  # Visual Acuity Measurements Storage
    "1.2.840.10008.5.1.4.1.1.77.1.1": "VLe",  # VL Endoscopic Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.2": "VLm",  # VL Microscopic Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.4": "VLp",  # VL Photographic Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.3": "VLs",  # VL Slide-Coordinates Microscopic Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.6": "VLw",  # VL Whole Slide Microscopy Image Storage
    "1.2.840.10008.5.1.4.1.1.11.9": "VPv",  # Volume Rendering Volumetric Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.9.100.2": "PSq",  # Waveform Acquisition Presentation State Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.88.77": "SRw",  # Waveform Annotation SR Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.9.100.1": "PSw",  # Waveform Presentation State Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.77.1.5.5": "OWs",  # Wide Field Ophthalmic Photography Stereographic Projection Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.5.6": "OW3",  # Wide Field Ophthalmic Photography 3D Coordinates Image Storage
    "1.2.840.10008.5.1.4.1.1.200.7": "PPxd",  # XA Defined Procedure Protocol Storage
    "1.2.840.10008.5.1.4.1.1.200.8": "PPxp",  # XA Performed Procedure Protocol Storage
    "1.2.840.10008.5.1.4.1.1.11.5": "PSx",  # XA/XRF Grayscale Softcopy Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.13.1.1": "XA3",  # X-Ray 3D Angiographic Image Storage
    "1.2.840.10008.5.1.4.1.1.13.1.2": "XC3",  # X-Ray 3D Craniofacial Image Storage
    "1.2.840.10008.5.1.4.1.1.12.1": "XA",  # X-Ray Angiographic Image Storage
    "1.2.840.10008.5.1.4.1.1.88.67": "SRd",  # X-Ray Radiation Dose SR Storage
    "1.2.840.10008.5.1.4.1.1.12.2": "RF",  # X-Ray Radiofluoroscopic Image Storage
    "1.2.840.10008.5.1.1.30": "HC",  # Hardcopy Color Image Storage SOP Class (retired)
    "1.2.840.10008.5.1.1.29": "HG",  # Hardcopy Grayscale Image Storage SOP Class (retired)
    "1.2.840.10008.5.1.4.1.1.5": "NMr",  # Nuclear Medicine Image Storage (retired)
    "1.2.840.10008.5.1.4.1.1.9": "CV",  # Standalone Curve Storage (retired)
    "1.2.840.10008.5.1.4.1.1.10": "ML",  # Standalone Modality LUT Storage (retired)
    "1.2.840.10008.5.1.4.1.1.8": "OV",  # Standalone Overlay Storage (retired)
    "1.2.840.10008.5.1.4.1.1.129": "PC",  # Standalone PET Curve Storage (retired)
    "1.2.840.10008.5.1.4.1.1.11": "VO",  # Standalone VOI LUT Storage (retired)
    "1.2.840.10008.5.1.1.27": "SP",  # Stored Print Storage SOP Class (retired)
    "1.2.840.10008.5.1.4.1.1.6": "USr",  # Ultrasound Image Storage (retired)
    "1.2.840.10008.5.1.4.1.1.3": "USf",  # Ultrasound Multi-frame Image Storage (retired)
    "1.2.840.10008.5.1.4.1.1.77.1": "VLr",  # VL Image Storage - Trial (retired)
    "1.2.840.10008.5.1.4.1.1.77.2": "VMr",  # VL Multi-frame Image Storage - Trial (retired)
    "1.2.840.10008.5.1.4.1.1.12.3": "XB",  # X-Ray Angiographic Bi-Plane Image Storage (retired)
    "1.2.840.10008.5.1.4.34.1": "RB_d",  # RT Beams Delivery Instruction Storage - Trial (retired)
    "1.2.840.10008.5.1.4.1.1.88.2": "SR_a",  # Audio SR Storage - Trial (retired)
    "1.2.840.10008.5.1.4.1.1.88.4": "SR_c",  # Comprehensive SR Storage - Trial (retired)
    "1.2.840.10008.5.1.4.1.1.88.3": "SR_d",  # Detail SR Storage - Trial (retired)
    "1.2.840.10008.5.1.4.1.1.88.1": "SR_t",  # Text SR Storage - Trial (retired)
    "1.2.840.10008.5.1.4.1.1.9.1": "WV_d",  # Waveform Storage - Trial (retired)
    "1.2.840.10008.5.1.4.1.1.501.1": "CTs",  # DICOS CT Image Storage
    "1.2.840.10008.5.1.4.1.1.501.2.1": "DXs",  # DICOS Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.501.2.2": "DPs",  # DICOS Digital X-Ray Image Storage - For Processing
    "1.2.840.10008.5.1.4.1.1.501.3": "TDR",  # DICOS Threat Detection Report Storage
    "1.2.840.10008.5.1.4.1.1.501.4": "AI2",  # DICOS 2D AIT Storage
    "1.2.840.10008.5.1.4.1.1.501.5": "AI3",  # DICOS 3D AIT Storage
    "1.2.840.10008.5.1.4.1.1.501.6": "QR",  # DICOS Quadrupole Resonance (QR) Storage
    "1.2.840.10008.5.1.4.1.1.601.1": "EC",  # Eddy Current Image Storage
    "1.2.840.10008.5.1.4.1.1.601.2": "ECm",  # Eddy Current Multi-frame Image Storage
    "1.2.840.10008.5.1.4.1.1.601.3": "TG",  # DICONDE Thermography Image Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.601.4": "TGm",  # DICONDE Thermography Multi-frame Image Storage [not in DCMTK 3.6.7]
    "1.2.840.10008.5.1.4.1.1.601.5": "UW",  # DICONDE Ultrasound Waveform Storage [not in DCMTK 3.6.7]
}

# What DCMTK's storescp writes for a class missing from its table (storescp.cc:
# ``dcmSOPClassUIDToModality(sopClass, "UNKNOWN")``); only reachable with --promiscuous or a
# profile, since storescp otherwise accepts only classes it knows.
UNKNOWN_PREFIX = "UNKNOWN"


def _storage_classes_in_pydicom() -> frozenset[str]:
    """Every SOP class in pydicom's UID dictionary whose name says it is a Storage SOP class."""
    from pydicom._uid_dict import UID_dictionary  # on first use: pydicom is slow to import

    return frozenset(
        uid
        for uid, (name, uid_type, _info, _retired, _keyword) in UID_dictionary.items()
        if uid_type == "SOP Class"
        and "Storage" in name
        and not any(word in name for word in _NOT_STORAGE)
    )


@functools.cache
def storage_sop_classes() -> frozenset[str]:
    """Every Storage SOP class we know, retired ones included (PS3.4 Annex B and the
    non-patient annexes). The DCMTK table adds the classes newer than the installed pydicom."""
    return _storage_classes_in_pydicom() | frozenset(_MODALITY_PREFIXES)


def __getattr__(name: str):
    # STORAGE_SOP_CLASSES is computed on first use (PEP 562), not at import
    if name == "STORAGE_SOP_CLASSES":
        return storage_sop_classes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_storage(uid: str) -> bool:
    """True if ``uid`` is a Storage SOP class (one a C-STORE may carry as its object)."""
    return uid in storage_sop_classes()


def modality_prefix(sop_class_uid: str) -> str:
    """The file name prefix DCMTK's storescp uses for objects of this SOP class.

    ``"CT"`` for CT Image Storage, ``"SRt"`` for Basic Text SR, ``"UNKNOWN"`` for a class
    DCMTK has no code for (storescp's own fallback).
    """
    return _MODALITY_PREFIXES.get(sop_class_uid, UNKNOWN_PREFIX)
