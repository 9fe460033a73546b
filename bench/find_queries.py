"""The C-FIND identifiers of the ``find-1m`` scenarios and of ``bench.query_plans``, in one place.

Each is a Study Root query as a viewer sends it: the matching keys, and the return keys a
study browser shows (empty values). The values refer to rows that ``bench.fill_index`` makes
with its default seed (patient PB001234, study 4321, ...); the number of matches each gives
on the 1M index is in bench/README.md and in each run's ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .fill_index import study_uid

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"

# what a study list shows
STUDY_RETURN_KEYS: dict[str, str] = {
    "PatientName": "",
    "PatientID": "",
    "PatientBirthDate": "",
    "PatientSex": "",
    "StudyDate": "",
    "StudyTime": "",
    "AccessionNumber": "",
    "StudyID": "",
    "StudyDescription": "",
    "ReferringPhysicianName": "",
    "StudyInstanceUID": "",
    "ModalitiesInStudy": "",
    "NumberOfStudyRelatedSeries": "",
    "NumberOfStudyRelatedInstances": "",
}
SERIES_RETURN_KEYS: dict[str, str] = {
    "StudyInstanceUID": "",
    "SeriesInstanceUID": "",
    "Modality": "",
    "SeriesNumber": "",
    "SeriesDescription": "",
    "BodyPartExamined": "",
    "NumberOfSeriesRelatedInstances": "",
}
MONTH = "20230301-20230331"


@dataclass(frozen=True, slots=True)
class FindQuery:
    id: str  # scenario id suffix
    label: str
    level: str
    keys: dict[str, str]
    full_scan: bool = False  # no index can serve it (a leading wildcard): a scan is expected

    def identifier(self):
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.QueryRetrieveLevel = self.level
        returned = STUDY_RETURN_KEYS if self.level == "STUDY" else SERIES_RETURN_KEYS
        for keyword, value in {**returned, **self.keys}.items():
            setattr(ds, keyword, value)
        return ds


QUERIES: tuple[FindQuery, ...] = (
    FindQuery("patient-name", "study level, PatientName=smith*^j* (wildcard)", "STUDY",
              {"PatientName": "smith*^j*"}),
    FindQuery("study-date", f"study level, StudyDate={MONTH} (a month)", "STUDY",
              {"StudyDate": MONTH}),
    FindQuery("modality-date", f"study level, ModalitiesInStudy=CT, StudyDate={MONTH}",
              "STUDY", {"ModalitiesInStudy": "CT", "StudyDate": MONTH}),
    FindQuery("name-contains", "study level, PatientName=*smith* (leading wildcard)", "STUDY",
              {"PatientName": "*smith*"}, full_scan=True),
    FindQuery("patient-id", "study level, PatientID=PB001234", "STUDY",
              {"PatientID": "PB001234"}),
    FindQuery("study-uid", "study level, StudyInstanceUID of one study", "STUDY",
              {"StudyInstanceUID": study_uid(4321)}),
    FindQuery("series", "series level, the series of one study", "SERIES",
              {"StudyInstanceUID": study_uid(4321)}),
    FindQuery("institution", f"study level, InstitutionName=Klinikum Süd (no column), "
              f"StudyDate={MONTH}", "STUDY",
              {"InstitutionName": "Klinikum Süd", "StudyDate": MONTH}),
)  # fmt: skip
