"""One deterministic ~1 GiB CT instance for the memory benchmark, streamed to disk.

An Enhanced CT Image of 2048 frames of 512 x 512 16-bit pixels (exactly 1 GiB of Pixel Data,
12 bits stored), Explicit VR Little Endian. It is never held in memory: pydicom writes the
header (everything before Pixel Data), then the (7FE0,0010) OW element header and its value are
appended in 8 MiB chunks. The chunks are one block of seeded random pixel values XORed with the
chunk's number, so every chunk differs and two runs write byte-identical files (~2 s).

Made once per bench run, in the warm-up round, into the run's temp directory, or kept between
runs in ``$PACSBOX_BENCH_CACHE`` (like ``bench/datasets.py``). The file is written as ``.part``
and renamed when complete, so an interrupted generation is redone.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from .datasets import CACHE_ENV, _uid

GENERATOR_VERSION = 1  # bump when the file written below changes
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
ROWS = COLUMNS = 512
FRAMES = 2048
PIXEL_BYTES = ROWS * COLUMNS * 2 * FRAMES  # 1 GiB
CHUNK = 8 << 20  # 16 frames


@dataclass(frozen=True, slots=True)
class LargeInstance:
    """The generated file and what a receiver must store: its data set's length and UID."""

    path: Path
    sop_instance_uid: str
    dataset_length: int  # bytes after the File Meta Information: the same in every copy

    def stop(self) -> None:  # a context fixture: nothing to stop
        pass


def write(path: Path, sop_instance_uid: str) -> None:
    """Write the instance to ``path``; at most one 8 MiB chunk is in memory at a time."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENHANCED_CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.SOPClassUID = ENHANCED_CT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = "BENCH1GIB"
    ds.Modality = "CT"
    ds.Manufacturer = "pacsbox bench"
    ds.PatientName = "Bench^Large"
    ds.PatientID = "BENCH-1GIB"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = _uid("ct1g", "study")
    ds.SeriesInstanceUID = _uid("ct1g", "series")
    ds.FrameOfReferenceUID = _uid("ct1g", "frame")
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = FRAMES
    ds.Rows = ROWS
    ds.Columns = COLUMNS
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.save_as(path, enforce_file_format=True)  # everything before Pixel Data
    block = np.random.default_rng(1).integers(0, 4096, size=CHUNK // 2, dtype=np.uint16)
    with open(path, "ab") as f:
        # (7FE0,0010) OW, explicit VR little endian: tag, VR, 2 reserved bytes, 32-bit length
        f.write(struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OW", PIXEL_BYTES))
        for n in range(PIXEL_BYTES // CHUNK):
            f.write((block ^ np.uint16(n & 0x0FFF)).tobytes())  # stays within 12 bits


def large_instance(tmp: Path) -> LargeInstance:
    """The instance (written now unless it is already complete in the cache or ``tmp``)."""
    from pacsbox.dicomfile import read_file_info

    cache = os.environ.get(CACHE_ENV)
    root = Path(cache).expanduser() if cache else tmp / "datasets"
    path = root / f"ct1g-v{GENERATOR_VERSION}-{FRAMES}x{ROWS}x{COLUMNS}.dcm"
    uid = _uid("ct1g", "instance", 0)
    if not path.is_file():
        root.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        write(part, uid)
        os.replace(part, path)
    info = read_file_info(path)
    if info.sop_instance_uid != uid or info.dataset_length <= PIXEL_BYTES:
        raise RuntimeError(
            f"{path} is not the bench's 1 GiB instance (SOP Instance UID "
            f"{info.sop_instance_uid}, {info.dataset_length} bytes of data set); delete it"
        )
    return LargeInstance(path, uid, info.dataset_length)
