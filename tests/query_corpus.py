"""A deterministic query corpus: 12 patients, 31 studies across ten years, 74 series (CT,
MR, US, SR, CR) and 225 instances, for differential C-FIND tests against other archives.

What it holds, on purpose:

- family names shared by several patients (DOE, MÜLLER, SMITH) and a prefix trap (DOEBLER),
  one name written with its empty trailing components (``ROE^RICHARD^^^``);
- accents in ISO_IR 100 (Latin-1) and in ISO_IR 192 (UTF-8), ideographic and phonetic
  component groups (``Yamada^Tarou=山田^太郎=やまだ^たろう``) in ISO_IR 192, one name in
  mixed case, one patient without Specific Character Set (plain ASCII);
- study dates from 2015 to 2024, study times with seconds, without them and with a fraction;
- AccessionNumber empty in every third study, ReferringPhysicianName sometimes empty;
- StudyDescription with the SQL wildcards ``%`` and ``_`` and with a space;
- several series per study, several instances per series (one per SR series).

Everything, UIDs included, is derived from the tables below, so a test can name any study,
series or instance (``study_uid("P04", 1)``) and the files are the same on every run.
``write_corpus(directory)`` writes one Part 10 file per instance and returns their paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

_ROOT = "pacsbox query corpus v1"


@dataclass(frozen=True)
class Patient:
    patient_id: str
    name: str
    birth_date: str
    sex: str
    charset: str | None  # Specific Character Set of its files; None: none (ASCII)


PATIENTS = (
    Patient("P01", "DOE^JOHN", "19600412", "M", "ISO_IR 100"),
    Patient("P02", "DOE^JANE", "19650101", "F", "ISO_IR 100"),
    Patient("P03", "DOEBLER^MAX", "19701224", "M", None),
    Patient("P04", "MÜLLER^HANS", "19480229", "M", "ISO_IR 100"),
    Patient("P05", "MÜLLER^GRETA", "19520707", "F", "ISO_IR 192"),
    Patient("P06", "GARCÍA^JOSÉ", "19810315", "M", "ISO_IR 100"),
    Patient("P07", "Yamada^Tarou=山田^太郎=やまだ^たろう", "19900502", "M", "ISO_IR 192"),
    Patient("P08", "Wang^XiaoDong=王^小東", "19851111", "M", "ISO_IR 192"),
    Patient("P09", "Smith^Anna", "19991231", "F", "ISO_IR 100"),
    Patient("P10", "SMITH^JOHN", "20010101", "M", None),
    Patient("P11", "ØRSTED^SØREN", "19770808", "M", "ISO_IR 192"),
    Patient("P12", "ROE^RICHARD^^^", "19590909", "M", None),  # trailing empty components
)


@dataclass(frozen=True)
class Study:
    patient: Patient
    number: int  # 0, 1, 2 within the patient
    date: str
    time: str
    accession: str
    referring: str
    description: str
    modalities: tuple[str, ...]  # one series each

    @property
    def uid(self) -> str:
        return study_uid(self.patient.patient_id, self.number)


_DESCRIPTIONS = (
    "Knee 100% weight_bearing", "CT_ABDOMEN", "Head%Neck", "Chest PA", "Follow-up",
    "knee left", "Brain MRI", "Thorax", "CTXABDOMEN", "Knee right",
)  # fmt: skip
_TIMES = ("083000", "101530", "1415", "120000", "235959", "000000", "093000.250", "170405")
_REFERRING = ("SCHMIDT^KARL", "", "WELBY^MARCUS", "Dupont^Émile", "")
_MODALITIES = (
    ("CT", "SR"), ("MR", "MR", "SR"), ("US", "CT"), ("CR", "CT", "MR"), ("MR", "US"),
)  # fmt: skip


def _studies() -> tuple[Study, ...]:
    out = []
    n = 0
    for i, patient in enumerate(PATIENTS):
        for s in range(2 + i % 2 + (i == 0)):  # 2 or 3 studies, P01 has 3
            referring = _REFERRING[n % len(_REFERRING)]
            if referring == "Dupont^Émile" and patient.charset is None:
                referring = "DUPONT^EMILE"
            out.append(
                Study(
                    patient,
                    s,
                    date=f"{2015 + (i * 3 + s * 4) % 10}{(i + s * 5) % 12 + 1:02d}{(i * 7 + s) % 28 + 1:02d}",
                    time=_TIMES[n % len(_TIMES)],
                    accession="" if n % 3 == 2 else f"A{n + 1:04d}",
                    referring=referring,
                    description=_DESCRIPTIONS[n % len(_DESCRIPTIONS)],
                    modalities=_MODALITIES[n % len(_MODALITIES)],
                )
            )
            n += 1
    return tuple(out)


def study_uid(patient_id: str, number: int) -> str:
    return generate_uid(entropy_srcs=[_ROOT, patient_id, str(number)])


def series_uid(patient_id: str, study: int, series: int) -> str:
    return generate_uid(entropy_srcs=[_ROOT, patient_id, str(study), str(series)])


def instance_uid(patient_id: str, study: int, series: int, instance: int) -> str:
    return generate_uid(entropy_srcs=[_ROOT, patient_id, str(study), str(series), str(instance)])


STUDIES = _studies()

SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "SR": "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
}
_BODY_PARTS = {"CT": "ABDOMEN", "MR": "KNEE", "US": "NECK", "CR": "CHEST", "SR": ""}


@dataclass(frozen=True)
class Instance:
    study: Study
    series: int  # index of the series in its study
    number: int  # InstanceNumber
    modality: str

    @property
    def series_uid(self) -> str:
        return series_uid(self.study.patient.patient_id, self.study.number, self.series)

    @property
    def uid(self) -> str:
        return instance_uid(
            self.study.patient.patient_id, self.study.number, self.series, self.number
        )


def _instances() -> tuple[Instance, ...]:
    out = []
    for n, study in enumerate(STUDIES):
        for s, modality in enumerate(study.modalities):
            count = 1 if modality == "SR" else 2 + (n + s) % 4  # 2 to 5 images
            out += [Instance(study, s, i + 1, modality) for i in range(count)]
    return tuple(out)


INSTANCES = _instances()


def dataset(instance: Instance) -> Dataset:
    """The instance as a data set: patient, study, series and image attributes; 8x8 pixels
    for the images, a minimal document for SR."""
    study, patient = instance.study, instance.study.patient
    ds = Dataset()
    if patient.charset:
        ds.SpecificCharacterSet = patient.charset
    ds.SOPClassUID = SOP_CLASSES[instance.modality]
    ds.SOPInstanceUID = instance.uid
    ds.StudyDate = study.date
    ds.StudyTime = study.time
    ds.AccessionNumber = study.accession
    ds.Modality = instance.modality
    ds.ReferringPhysicianName = study.referring
    ds.StudyDescription = study.description
    ds.SeriesDescription = f"{instance.modality} series {instance.series + 1}"
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    if _BODY_PARTS[instance.modality]:
        ds.BodyPartExamined = _BODY_PARTS[instance.modality]
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = instance.series_uid
    ds.StudyID = f"{study.number + 1}"
    ds.SeriesNumber = instance.series + 1 if instance.modality != "SR" else 100 + instance.series
    ds.InstanceNumber = instance.number
    if instance.modality == "SR":
        ds.ValueType = "CONTAINER"
        ds.ContinuityOfContent = "SEPARATE"
        ds.CompletionFlag = "COMPLETE"
        ds.VerificationFlag = "UNVERIFIED"
    else:
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = 8
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelRepresentation = 0
        ds.PixelData = bytes(range(128))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def write_corpus(directory: Path) -> list[Path]:
    """One Part 10 file per instance (explicit VR little endian) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for instance in INSTANCES:
        study = instance.study
        path = directory / (
            f"{study.patient.patient_id}-{study.number}-{instance.series}-{instance.number}.dcm"
        )
        dataset(instance).save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
