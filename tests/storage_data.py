"""Test files for the storage tests, built from pydicom's bundled data, and ways to compare them.

``build_samples(directory)`` writes one file per transfer syntax worth sending (each with its
own SOP Instance UID, so receivers that name files by UID never overwrite one with another)
and returns them by name. ``dataset_bytes(path)`` is a Part 10 file's data set as stored,
i.e. everything after the file meta group (found through (0002,0000), not by parsing).
"""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    JPEG2000,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    RLELossless,
    generate_uid,
)

from tests import peers

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"

# name -> (pydicom test file, transfer syntax it is in, give it new UIDs)
SOURCES: dict[str, tuple[str, str, bool]] = {
    "ct": ("CT_small.dcm", ExplicitVRLittleEndian, False),
    "mr": ("MR_small.dcm", ExplicitVRLittleEndian, False),
    # rtplan.dcm's meta names another SOP Instance UID than its data set: made consistent
    # here (see test_storescu_uses_the_data_sets_sop_instance_uid for the original)
    "rtplan": ("rtplan.dcm", ImplicitVRLittleEndian, False),
    "mr_rle": ("MR_small_RLE.dcm", RLELossless, True),
    "mr_j2k_lossless": ("MR_small_jp2klossless.dcm", JPEG2000Lossless, True),
    "sc_j2k": ("JPEG2000.dcm", JPEG2000, False),
}
UNCOMPRESSED_SAMPLES = ("ct", "mr", "rtplan")
COMPRESSED_SAMPLES = ("ct_jpeg_lossless", "mr_rle", "mr_j2k_lossless", "sc_j2k")


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    modality_prefix: str  # DCMTK storescp's file name prefix: CT, MR, RP, SC

    @property
    def stored_name(self) -> str:
        """The file name DCMTK's storescp (and pacsbox storescp) gives it."""
        return f"{self.modality_prefix}.{self.sop_instance_uid}"


_PREFIX = {
    CT_IMAGE_STORAGE: "CT",
    MR_IMAGE_STORAGE: "MR",
    "1.2.840.10008.5.1.4.1.1.481.5": "RP",
    "1.2.840.10008.5.1.4.1.1.7": "SC",
}


def original(filename: str) -> Path:
    """The path of one of pydicom's bundled test files."""
    return Path(get_testdata_file(filename))


def save_file(
    ds: pydicom.Dataset, path: Path, transfer_syntax: str = ExplicitVRLittleEndian
) -> Path:
    """Write ``ds`` as a DICOM file at ``path``, with the file meta its SOP Class and
    Instance UIDs and ``transfer_syntax`` make."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.save_as(path, enforce_file_format=True)
    return path


def _with_new_uids(source: Path, target: Path, *, study: bool = False) -> None:
    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if study:  # like the tutorial's ct-compressed.dcm: another study altogether
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
    ds.save_as(target, enforce_file_format=True)


def _consistent(source: Path, target: Path) -> None:
    ds = pydicom.dcmread(source)
    if ds.file_meta.MediaStorageSOPInstanceUID != ds.SOPInstanceUID:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(target, enforce_file_format=True)
    else:
        shutil.copyfile(source, target)


def sample(name: str, path: Path) -> Sample:
    meta = pydicom.dcmread(path, stop_before_pixels=True).file_meta
    sop_class = str(meta.MediaStorageSOPClassUID)
    return Sample(
        name,
        path,
        sop_class,
        str(meta.MediaStorageSOPInstanceUID),
        str(meta.TransferSyntaxUID),
        _PREFIX[sop_class],
    )


def jpeg_lossless(source: Path, target: Path) -> None:
    """``source`` with new SOP/Study/Series UIDs, compressed by DCMTK's dcmcjpeg +e1 (JPEG
    Lossless SV1), as the tutorial's ct-compressed.dcm."""
    renamed = target.with_suffix(".uncompressed.tmp")
    _with_new_uids(source, renamed, study=True)
    cp = peers.run_dcmtk("dcmcjpeg", "+e1", renamed, target)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    renamed.unlink()


def build_samples(directory: Path) -> dict[str, Sample]:
    """Every sample file, written into ``directory``; keys as in SOURCES plus
    ``ct_jpeg_lossless``."""
    directory.mkdir(parents=True, exist_ok=True)
    samples: dict[str, Sample] = {}
    for name, (filename, syntax, new_uids) in SOURCES.items():
        path = directory / f"{name}.dcm"
        if new_uids:
            _with_new_uids(original(filename), path)
        else:
            _consistent(original(filename), path)
        samples[name] = sample(name, path)
        assert samples[name].transfer_syntax == syntax, (name, samples[name])
    path = directory / "ct_jpeg_lossless.dcm"
    jpeg_lossless(samples["ct"].path, path)
    samples["ct_jpeg_lossless"] = sample("ct_jpeg_lossless", path)
    assert samples["ct_jpeg_lossless"].transfer_syntax == JPEGLosslessSV1
    return samples


# -- comparing ---------------------------------------------------------------------------------


def dataset_offset(data: bytes) -> int:
    """Where the data set starts in a Part 10 file: after preamble, 'DICM' and the group 0002
    whose length (0002,0000) states (it must be the first element, PS3.10 7.1)."""
    assert data[128:132] == b"DICM", "not a Part 10 file (no DICM prefix)"
    group, element, vr, length, value = struct.unpack_from("<HH2sHI", data, 132)
    assert (group, element, vr, length) == (2, 0, b"UL", 4), "no (0002,0000) group length"
    return 132 + 12 + value


def dataset_bytes(path: Path) -> bytes:
    data = Path(path).read_bytes()
    return data[dataset_offset(data) :]


def meta(path: Path):
    return pydicom.dcmread(path, stop_before_pixels=True).file_meta


def pixels(path: Path):
    """The decoded pixel array (pydicom's codecs)."""
    return pydicom.dcmread(path).pixel_array


def dcmtk_normalized(source: Sample, directory: Path) -> Sample:
    """``source`` rewritten by DCMTK's dcmconv as DCMTK's senders put it on the wire: no
    data set trailing padding, explicit item lengths, and uncompressed data sets in Explicit
    VR Little Endian (what storescu/dcmsend send to an SCP preferring it). A DCMTK sender
    then sends exactly the bytes after this file's meta header."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / source.path.name
    to_explicit = ["+te"] if source.name in UNCOMPRESSED_SAMPLES else []
    cp = peers.run_dcmtk("dcmconv", "-p", *to_explicit, source.path, target)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return sample(source.name, target)
