"""Deterministic DICOM data sets for the storage benchmarks, generated once per bench run.

A set is N CT images (CT Image Storage, Explicit VR Little Endian, 16-bit monochrome) of one
study and one series, each with its own SOP Instance UID, written with pydicom into a
directory of the run's temp directory. Everything (UIDs, pixel values) is derived from the
set's parameters, so two runs send byte-identical files.

Generating 2,000 + 400 files takes a few seconds; it happens the first time a scenario
needs a set (in the warm-up round, outside any timing) and the files are shared by every
scenario and every round of the run. With ``PACSBOX_BENCH_CACHE=DIR`` in the environment the
sets are kept in ``DIR`` between runs instead (keyed by their parameters and
``GENERATOR_VERSION``), which is never inside the repository.
"""

from __future__ import annotations

import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

GENERATOR_VERSION = 1  # bump when the files written below change
CACHE_ENV = "PACSBOX_BENCH_CACHE"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
UID_PREFIX = "1.2.826.0.1.3680043.8.498."  # pydicom's root; entropy below makes them ours
_COMPLETE = "complete"  # marker written last, next to files/: else it is regenerated


@dataclass(frozen=True, slots=True)
class DataSet:
    """A generated set: ``count`` files in ``directory``, and what a receiver must store."""

    key: str
    directory: Path
    count: int
    rows: int
    columns: int
    sop_instance_uids: tuple[str, ...]
    total_bytes: int  # of the files on disk

    @property
    def files(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if p.suffix == ".dcm")

    def stop(self) -> None:  # a context fixture: nothing to stop, the temp dir goes away
        pass


def _uid(*parts: object) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(UID_PREFIX, entropy_srcs=["pacsbox-bench", *map(str, parts)]))


def instance_uids(key: str, count: int) -> tuple[str, ...]:
    return tuple(_uid(key, "instance", i) for i in range(count))


def generate(directory: Path, key: str, count: int, rows: int, columns: int) -> None:
    """Write ``count`` CT files of rows x columns 16-bit pixels into ``directory``."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    directory.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = "BENCH0001"
    ds.Modality = "CT"
    ds.Manufacturer = "pacsbox bench"
    ds.PatientName = "Bench^Storage"
    ds.PatientID = "BENCH-" + key
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = _uid(key, "study")
    ds.SeriesInstanceUID = _uid(key, "series")
    ds.FrameOfReferenceUID = _uid(key, "frame")
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.SliceThickness = "1.0"
    ds.KVP = "120"
    ds.PatientPosition = "HFS"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.file_meta = meta
    rng = np.random.default_rng([zlib.crc32(key.encode()), count, rows, columns])
    base = rng.integers(0, 4096, size=(rows, columns), dtype=np.uint16)
    for i, uid in enumerate(instance_uids(key, count)):
        meta.MediaStorageSOPInstanceUID = uid
        ds.SOPInstanceUID = uid
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [0, 0, float(i)]
        ds.SliceLocation = float(i)
        # every image differs (a shifted copy), nothing is compressible across files
        ds.PixelData = np.roll(base, i, axis=None).tobytes()
        ds.save_as(directory / f"CT{i:05d}.dcm", enforce_file_format=True)


def data_set(tmp: Path, key: str, count: int, rows: int, columns: int) -> DataSet:
    """The set ``key`` (generated now unless it is complete in the cache or ``tmp``)."""
    name = f"{key}-v{GENERATOR_VERSION}-{count}x{rows}x{columns}"
    cache = os.environ.get(CACHE_ENV)
    root = (Path(cache).expanduser() if cache else tmp / "datasets") / name
    directory = root / "files"  # only the DICOM files: tools are given the directory
    if not (root / _COMPLETE).is_file():
        if root.exists():
            shutil.rmtree(root)  # an interrupted generation
        generate(directory, key, count, rows, columns)
        (root / _COMPLETE).write_text("ok\n")
    files = sorted(p for p in directory.iterdir() if p.suffix == ".dcm")
    if len(files) != count:
        raise RuntimeError(f"data set {directory} has {len(files)} files, expected {count}")
    return DataSet(
        key=key,
        directory=directory,
        count=count,
        rows=rows,
        columns=columns,
        sop_instance_uids=instance_uids(key, count),
        total_bytes=sum(p.stat().st_size for p in files),
    )
