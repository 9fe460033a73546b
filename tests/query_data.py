"""Studies for the query tests: three patients, the first two the tutorial's studies.

``write_study_files(directory)`` writes one DICOM file per image (pydicom's CT_small.dcm
with the study's attributes, ISO_IR 100) and returns their paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid


@dataclass(frozen=True)
class Study:
    patient_name: str
    patient_id: str
    date: str
    description: str
    series: tuple[str, ...]  # modality of each series (one image each, two in the first)
    uid: str


STUDIES = (
    Study("DOE^JOHN", "P1", "20131231", "Multiple Fractures from Skiing", ("CT",), generate_uid()),
    Study("DOE^JANE", "P2", "20140101", "General Checkup", ("MR",), generate_uid()),
    Study("MÜLLER^HANS", "P3", "20140215", "Knee", ("CT", "MR"), generate_uid()),
)
TUTORIAL_STUDIES = STUDIES[:2]


def write_study_files(directory: Path, studies=STUDIES) -> list[Path]:
    """One file per image (CT_small.dcm with the study's attributes); Latin-1 names get
    Specific Character Set ISO_IR 100."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for study in studies:
        for s, modality in enumerate(study.series):
            series_uid = generate_uid()
            for image in range(2 if s == 0 and study.patient_id == "P1" else 1):
                ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
                ds.SpecificCharacterSet = "ISO_IR 100"
                ds.PatientName = study.patient_name
                ds.PatientID = study.patient_id
                ds.StudyDate = study.date
                ds.StudyDescription = study.description
                ds.StudyInstanceUID = study.uid
                ds.SeriesInstanceUID = series_uid
                ds.Modality = modality
                ds.SeriesNumber = s + 1
                ds.InstanceNumber = image + 1
                ds.SOPInstanceUID = generate_uid()
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                path = directory / f"{study.patient_id}-{s}-{image}.dcm"
                ds.save_as(path)
                paths.append(path)
    return paths
