"""Differential C-FIND: the same corpus (tests/query_corpus.py, 225 instances) in DCMTK's
dcmqrscp and in `pacsbox dcmqrscp`, the same queries through `pacsbox findscu -X` against
both (one query file per query, all queries of a model on one association, each response
written to a file), the answers compared.

For each query the matches are compared by their unique key (PatientID, StudyInstanceUID,
SeriesInstanceUID, SOPInstanceUID) and, for the matches both give, every requested key both
answer. What differs is summed up as a few facts (``_differences``). The facts of every query
must be exactly those listed in EXPECTED_DIFFERENCES, where each entry says what dcmqrscp
does and gives the standard's text (PS3.4, PS3.5) that makes pacsbox's answer right, or why
the standard leaves the answer open: an unlisted difference is a bug to fix (or to list, with
the standard's reason), a listed one that vanished means the list is stale. `pacsbox serve`
holds the corpus too and must answer every query as `pacsbox dcmqrscp` does.

Character sets: DCMTK 3.6.7's dcmqrscp converts what it compares to UTF-8 (ISO_IR 100 and
ISO_IR 192 names, '=' component groups and ideographic names all match as in pacsbox) and
answers in the request's character set; the one difference is that its '?' matches a byte of
UTF-8, not a character.
"""

from __future__ import annotations

import contextlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from pacsbox.query_keys import build_identifier, dataset_to_dict, parse_key
from tests import peers
from tests.pacsbox_cli import PACSBOX, pacsbox_server, run_pacsbox
from tests.query_corpus import (
    INSTANCES,
    PATIENTS,
    SOP_CLASSES,
    STUDIES,
    instance_uid,
    series_uid,
    study_uid,
    write_corpus,
)

pytestmark = pytest.mark.interop

CALL = ("-aec", "ACME_STORE", "-aet", "ACME1")
SERVE_CALL = ("-aec", "PACSBOX", "-aet", "ACME1")
UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
# How each side encodes its answer, not what it answers: never compared.
NOT_COMPARED = frozenset(("SpecificCharacterSet", "QueryRetrieveLevel", "RetrieveAETitle"))


@dataclass(frozen=True)
class Query:
    id: str
    model: str  # findscu's flag: -P (Patient Root) or -S (Study Root)
    level: str
    keys: tuple[str, ...]  # findscu -k arguments after QueryRetrieveLevel
    matches: bool = True  # whether pacsbox is expected to find something
    status: str = "Success"  # pacsbox's expected final status

    def identifier(self) -> Dataset:
        """The query as findscu's -k arguments would make it (ISO_IR 192 when not ASCII)."""
        return build_identifier(
            parse_key(key) for key in (f"QueryRetrieveLevel={self.level}", *self.keys)
        )

    def requested(self) -> set[str]:
        return {k.split("=", 1)[0] for k in self.keys} - NOT_COMPARED


def q(
    id: str, root: str, level: str, *keys: str, matches: bool = True, status: str = "Success"
) -> Query:
    return Query(id, {"patient": "-P", "study": "-S"}[root], level, keys, matches, status)


P04_STUDY_0, P07_STUDY_1 = study_uid("P04", 0), study_uid("P07", 1)
P04_SERIES_0 = series_uid("P04", 0, 0)  # CR, 2 images
P02_SERIES_1 = series_uid("P02", 0, 1)  # CT
STUDY_KEYS = ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID")

QUERIES = (
    # -- PATIENT level, Patient Root ---------------------------------------------------------
    q("patient-universal", "patient", "PATIENT", "PatientID", "PatientName", "PatientBirthDate",
      "PatientSex"),
    q("patient-id", "patient", "PATIENT", "PatientID=P04", "PatientName"),
    q("patient-id-wildcard-?", "patient", "PATIENT", "PatientID=P1?", "PatientName"),
    q("patient-id-wildcard-*-first", "patient", "PATIENT", "PatientID=*1", "PatientName"),
    q("name-single-value", "patient", "PATIENT", "PatientName=DOE^JANE", "PatientID"),
    q("name-prefix", "patient", "PATIENT", "PatientName=DOE*", "PatientID"),
    q("name-family-component", "patient", "PATIENT", "PatientName=DOE^*", "PatientID"),
    q("name-?-twice", "patient", "PATIENT", "PatientName=DOE^J?N?", "PatientID"),
    q("name-*-in-the-middle", "patient", "PATIENT", "PatientName=*^J*", "PatientID"),
    q("name-trailing-delimiters-in-the-key", "patient", "PATIENT", "PatientName=DOE^JOHN^^",
      "PatientID"),
    q("name-trailing-delimiters-stored", "patient", "PATIENT", "PatientName=ROE^RICHARD",
      "PatientID"),
    q("name-trailing-delimiters-as-stored", "patient", "PATIENT",
      "PatientName=ROE^RICHARD^^^", "PatientID"),
    q("name-lower-case", "patient", "PATIENT", "PatientName=doe^john", "PatientID"),
    q("name-lower-case-wildcard", "patient", "PATIENT", "PatientName=smith*", "PatientID"),
    q("name-mixed-case-as-stored", "patient", "PATIENT", "PatientName=Smith^Anna", "PatientID"),
    q("name-latin1-accent", "patient", "PATIENT", "PatientName=MÜLLER^HANS", "PatientID"),
    q("name-accent-both-charsets", "patient", "PATIENT", "PatientName=MÜLLER*", "PatientID",
      "PatientName"),
    q("name-accent-?", "patient", "PATIENT", "PatientName=GARC?A*", "PatientID"),
    q("name-?-for-a-two-byte-letter", "patient", "PATIENT", "PatientName=M?LLER*", "PatientID"),
    q("name-??-for-a-two-byte-letter", "patient", "PATIENT", "PatientName=M??LLER*",
      "PatientID", matches=False),
    q("name-ideographic-whole", "patient", "PATIENT",
      "PatientName=Yamada^Tarou=山田^太郎=やまだ^たろう", "PatientID"),
    q("name-ideographic-wildcard", "patient", "PATIENT", "PatientName=*山田*", "PatientID",
      "PatientName"),
    q("name-ideographic-?", "patient", "PATIENT", "PatientName=*=王^小?", "PatientID"),
    q("name-alphabetic-group-only", "patient", "PATIENT", "PatientName=Yamada^Tarou",
      "PatientID", matches=False),
    q("name-no-match", "patient", "PATIENT", "PatientName=NOBODY", "PatientID", matches=False),
    q("patient-sex", "patient", "PATIENT", "PatientSex=F", "PatientID"),
    q("birth-date-range", "patient", "PATIENT", "PatientBirthDate=19600101-19801231",
      "PatientID", "PatientBirthDate"),
    q("patient-computed", "patient", "PATIENT", "PatientID", "NumberOfPatientRelatedStudies",
      "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances"),
    # -- lower levels, Patient Root (the unique keys above given, PS3.4 C.4.1.3.1.1) ---------
    q("patient-root-study", "patient", "STUDY", "PatientID=P01", *STUDY_KEYS,
      "StudyDescription"),
    q("patient-root-study-date-range", "patient", "STUDY", "PatientID=P02",
      "StudyDate=20160101-20191231", "StudyInstanceUID"),
    q("patient-root-series", "patient", "SERIES", "PatientID=P04",
      f"StudyInstanceUID={P04_STUDY_0}", "SeriesInstanceUID", "Modality", "SeriesNumber"),
    q("patient-root-image", "patient", "IMAGE", "PatientID=P04",
      f"StudyInstanceUID={P04_STUDY_0}", f"SeriesInstanceUID={P04_SERIES_0}",
      "SOPInstanceUID", "InstanceNumber"),
    # -- STUDY level, Study Root --------------------------------------------------------------
    q("study-universal", "study", "STUDY", *STUDY_KEYS, "PatientName", "PatientID",
      "StudyDescription", "ReferringPhysicianName", "PatientBirthDate", "PatientSex"),
    q("study-date-single-day", "study", "STUDY", "StudyDate=20180208", "StudyInstanceUID"),
    q("study-date-single-day-acr-nema-form", "study", "STUDY", "StudyDate=2018.02.08",
      "StudyInstanceUID"),
    q("study-date-closed-range", "study", "STUDY", "StudyDate=20180101-20201231",
      "StudyInstanceUID", "StudyDate"),
    q("study-date-open-start", "study", "STUDY", "StudyDate=20230101-", "StudyInstanceUID"),
    q("study-date-open-end", "study", "STUDY", "StudyDate=-20161231", "StudyInstanceUID"),
    q("study-date-range-of-one-day", "study", "STUDY", "StudyDate=20151115-20151115",
      "StudyInstanceUID"),
    q("study-date-*-is-no-wildcard", "study", "STUDY", "StudyDate=2018*", "StudyInstanceUID",
      matches=False),
    q("study-time-*-is-no-wildcard", "study", "STUDY", "StudyTime=14*", "StudyInstanceUID",
      matches=False),
    q("study-time-closed-range", "study", "STUDY", "StudyTime=080000-120000",
      "StudyInstanceUID", "StudyTime"),
    q("study-time-open-end", "study", "STUDY", "StudyTime=-1000", "StudyInstanceUID",
      "StudyTime"),
    q("study-time-open-start", "study", "STUDY", "StudyTime=170000-", "StudyInstanceUID",
      "StudyTime"),
    q("study-time-range-and-hhmm-value", "study", "STUDY", "StudyTime=1400-1420",
      "StudyInstanceUID", "StudyTime"),
    q("study-time-single-value", "study", "STUDY", "StudyTime=1415", "StudyInstanceUID"),
    q("study-time-single-value-fraction", "study", "STUDY", "StudyTime=093000.25",
      "StudyInstanceUID"),
    q("study-time-single-value-seconds", "study", "STUDY", "StudyTime=141500",
      "StudyInstanceUID"),
    q("study-date-and-time-ranges", "study", "STUDY", "StudyDate=20180101-20201231",
      "StudyTime=120000-", "StudyInstanceUID", "StudyDate", "StudyTime"),
    q("accession-single-value", "study", "STUDY", "AccessionNumber=A0010", "StudyInstanceUID"),
    q("accession-wildcard", "study", "STUDY", "AccessionNumber=A001*", "StudyInstanceUID",
      "AccessionNumber"),
    q("accession-empty-value", "study", "STUDY", 'AccessionNumber=""', "StudyInstanceUID"),
    q("description-literal-percent", "study", "STUDY", "StudyDescription=*100%*",
      "StudyInstanceUID"),
    q("description-literal-underscore", "study", "STUDY", "StudyDescription=CT_ABDOMEN",
      "StudyInstanceUID", "StudyDescription"),
    q("description-underscore-then-*", "study", "STUDY", "StudyDescription=CT_*",
      "StudyInstanceUID", "StudyDescription"),
    q("description-case-sensitive", "study", "STUDY", "StudyDescription=knee*",
      "StudyInstanceUID", "StudyDescription"),
    q("description-?", "study", "STUDY", "StudyDescription=Knee ?ight", "StudyInstanceUID"),
    q("description-*-both-ends", "study", "STUDY", "StudyDescription=*ea*",
      "StudyInstanceUID", "StudyDescription"),
    q("referring-single-value", "study", "STUDY", "ReferringPhysicianName=SCHMIDT^KARL",
      "StudyInstanceUID"),
    q("referring-accent", "study", "STUDY", "ReferringPhysicianName=Dupont^Émile",
      "StudyInstanceUID", "PatientID"),
    q("referring-empty-value", "study", "STUDY", 'ReferringPhysicianName=""',
      "StudyInstanceUID"),
    q("study-uid-single", "study", "STUDY", f"StudyInstanceUID={P07_STUDY_1}", "PatientName"),
    q("study-uid-list", "study", "STUDY",
      f"StudyInstanceUID={P04_STUDY_0}\\{P07_STUDY_1}\\{study_uid('P11', 0)}", "PatientID"),
    q("study-id", "study", "STUDY", "StudyID=3", "StudyInstanceUID", "PatientID"),
    q("study-patient-id-wildcard", "study", "STUDY", "PatientID=P0?", "StudyInstanceUID"),
    q("study-patient-name-ideographic", "study", "STUDY", "PatientName=Wang*",
      "StudyInstanceUID", "PatientName"),
    q("study-combined-keys", "study", "STUDY", "PatientName=DOE*", "StudyDate=20160101-",
      "AccessionNumber=A*", "StudyInstanceUID", "AccessionNumber"),
    q("modalities-in-study", "study", "STUDY", "ModalitiesInStudy=US", "StudyInstanceUID"),
    q("modalities-in-study-list", "study", "STUDY", "ModalitiesInStudy=CR\\SR",
      "StudyInstanceUID"),
    q("study-computed", "study", "STUDY", "PatientID=P06", "StudyInstanceUID",
      "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    # -- SERIES level, Study Root ---------------------------------------------------------------
    q("series-of-a-study", "study", "SERIES", f"StudyInstanceUID={P04_STUDY_0}",
      "SeriesInstanceUID", "Modality", "SeriesNumber"),
    q("series-modality", "study", "SERIES", f"StudyInstanceUID={P07_STUDY_1}", "Modality=CT",
      "SeriesInstanceUID"),
    q("series-modality-lower-case", "study", "SERIES", f"StudyInstanceUID={P07_STUDY_1}",
      "Modality=ct", "SeriesInstanceUID", matches=False),
    q("series-number-of-sr", "study", "SERIES", f"StudyInstanceUID={study_uid('P01', 1)}",
      "SeriesNumber=102", "SeriesInstanceUID", "Modality"),
    q("series-number", "study", "SERIES", f"StudyInstanceUID={P04_STUDY_0}", "SeriesNumber=2",
      "SeriesInstanceUID"),
    q("series-uid-list", "study", "SERIES", f"StudyInstanceUID={P04_STUDY_0}",
      f"SeriesInstanceUID={P04_SERIES_0}\\{series_uid('P04', 0, 2)}", "Modality"),
    q("series-description", "study", "SERIES", f"StudyInstanceUID={P04_STUDY_0}",
      "SeriesDescription=MR*", "SeriesInstanceUID"),
    q("series-body-part-not-indexed", "study", "SERIES", f"StudyInstanceUID={P04_STUDY_0}",
      "BodyPartExamined", "SeriesInstanceUID"),
    q("series-computed", "study", "SERIES", f"StudyInstanceUID={P04_STUDY_0}",
      "SeriesInstanceUID", "NumberOfSeriesRelatedInstances"),
    # -- the hierarchy (PS3.4 C.4.1.2.1, C.4.1.3.1.1) ----------------------------------------
    q("upper-level-name-matches", "patient", "STUDY", "PatientID=P01", "PatientName=DOE^JOHN",
      "StudyInstanceUID"),
    q("upper-level-name-mismatch-study", "patient", "STUDY", "PatientID=P01",
      "PatientName=NOBODY", "StudyInstanceUID", matches=False),
    q("upper-level-name-mismatch-series", "study", "SERIES",
      f"StudyInstanceUID={study_uid('P01', 0)}", "PatientName=NOBODY", "SeriesInstanceUID",
      matches=False),
    q("patient-key-below-the-level", "patient", "PATIENT", "StudyDate=20180208", "PatientID",
      status="0xA900"),
    q("study-key-below-the-level", "study", "STUDY", "Modality=CT", "StudyInstanceUID",
      status="0xA900"),
    q("series-without-the-study-uid", "study", "SERIES", "Modality=SR", "SeriesInstanceUID"),
    # -- IMAGE level, Study Root ----------------------------------------------------------------
    q("images-of-a-series", "study", "IMAGE", f"StudyInstanceUID={study_uid('P02', 0)}",
      f"SeriesInstanceUID={P02_SERIES_1}", "SOPInstanceUID", "InstanceNumber"),
    q("image-instance-number", "study", "IMAGE", f"StudyInstanceUID={study_uid('P02', 0)}",
      f"SeriesInstanceUID={P02_SERIES_1}", "InstanceNumber=2", "SOPInstanceUID"),
    q("image-uid-list", "study", "IMAGE", f"StudyInstanceUID={study_uid('P02', 0)}",
      f"SeriesInstanceUID={P02_SERIES_1}",
      f"SOPInstanceUID={instance_uid('P02', 0, 1, 1)}\\{instance_uid('P02', 0, 1, 3)}",
      "InstanceNumber"),
    q("image-sop-class", "study", "IMAGE", f"StudyInstanceUID={study_uid('P01', 0)}",
      f"SeriesInstanceUID={series_uid('P01', 0, 1)}", "SOPClassUID", "SOPInstanceUID"),
)  # fmt: skip


# -- what differs, and why pacsbox is right ---------------------------------------------------


@dataclass(frozen=True)
class Expected:
    differences: frozenset[tuple[str, ...]]
    dcmqrscp: str  # what DCMTK 3.6.7's dcmqrscp does
    standard: str  # the standard's text that makes pacsbox's answer right (or leaves it open)


def expected(*differences: tuple[str, ...], dcmqrscp: str, standard: str) -> Expected:
    return Expected(frozenset(differences), dcmqrscp, standard)


# The standard's words, shared by several entries. Quoted from PS3.4 (2024) where marked
# "quoted", from memory where marked "paraphrased".
PN_CASE = (
    "PS3.4 C.2.2.2.4 (quoted): 'This matching is case sensitive, except for Attributes with a "
    "PN VR (e.g., Patient Name (0010,0010)). For Attributes with a PN VR ... Wild Card "
    "Matching is implementation dependent and shall be specified in the Conformance "
    "Statement.' C.2.2.2.1 (paraphrased): for PN, literal matching may be case-sensitive or "
    "insensitive to case, accents or other encoding variants. pacsbox chooses case-insensitive "
    "person names and documents it (archive/query.py)."
)
ONE_CHARACTER = (
    'PS3.4 C.2.2.2.4 (quoted): \'"*" shall match any sequence of characters (including a zero '
    'length value) and "?" shall match any single character.\' A character, not a byte of its '
    "UTF-8 encoding: Í is two bytes, 東 three."
)
TRAILING_DELIMITERS = (
    "PS3.5 6.2, PN (quoted): 'Delimiters are required for interior null components. Trailing "
    "null components and their delimiters may be omitted.' DOE^JOHN^^ and DOE^JOHN are one "
    "name written two ways; PS3.4 C.2.2.2.1 (paraphrased) lets PN matching be insensitive to "
    "such encoding variants, and pacsbox ignores trailing '^' and '=' in both."
)
BELOW_THE_LEVEL = (
    "PS3.4 C.4.1.2.1 and C.4.1.3.1.1 (paraphrased): in a hierarchical query (no relational "
    "extended negotiation) the Identifier holds keys of the Query/Retrieve Level and of the "
    "levels above it only; a key of a lower level does not belong to the SOP Class's "
    "identifier, and 0xA900 is 'Identifier does not match SOP Class' (C.4.1.1.4). pacsbox "
    "refuses and names the key; ignoring it (dcmqrscp) answers a query that was not asked."
)
UPPER_LEVEL_KEYS = (
    "Not a standard rule, a documented pacsbox choice beyond it (archive/query.py: 'Upper-level "
    "keys other than the unique keys are matched too'). PS3.4 C.4.1.3.1.1 (paraphrased): at "
    "each level above the query level the SCP matches the unique key; the baseline SCU sends "
    "only that key there, so the standard does not say what a PatientName above the level "
    "means. pacsbox matches it as the SCU wrote it; dcmqrscp ignores it."
)
OPTIONAL_KEYS = (
    "PS3.4 C.2.2.1.3 and tables C.6-1 to C.6-5 (paraphrased): this attribute is an Optional "
    "Key; an SCP may support it for matching and return or not, and an SCP that does not "
    "support it ignores it. pacsbox supports it (computed attributes per C.3.4 / C.6.1.1.x, "
    "other attributes from the stored header), so it matches on it and returns it; dcmqrscp's "
    "index knows a fixed list of attributes and drops the others."
)

EXPECTED_DIFFERENCES: dict[str, Expected] = {
    "name-trailing-delimiters-in-the-key": expected(
        ("only pacsbox", "1"),
        dcmqrscp="compares the strings: DOE^JOHN^^ does not find DOE^JOHN",
        standard=TRAILING_DELIMITERS,
    ),
    "name-trailing-delimiters-stored": expected(
        ("only pacsbox", "1"),
        dcmqrscp="compares the strings: ROE^RICHARD does not find ROE^RICHARD^^^",
        standard=TRAILING_DELIMITERS,
    ),
    "name-lower-case": expected(
        ("only pacsbox", "1"),
        dcmqrscp="compares person names case-sensitively: doe^john finds nobody",
        standard=PN_CASE,
    ),
    "name-lower-case-wildcard": expected(
        ("only pacsbox", "2"),
        dcmqrscp="compares person names case-sensitively, wildcards included: smith* finds "
        "neither Smith^Anna nor SMITH^JOHN",
        standard=PN_CASE,
    ),
    "name-accent-?": expected(
        ("only pacsbox", "1"),
        dcmqrscp="matches the UTF-8 bytes (it converts the Latin-1 name): '?' is one byte, so "
        "GARC?A* does not find GARCÍA^JOSÉ (GARC??A* would)",
        standard=ONE_CHARACTER,
    ),
    "name-?-for-a-two-byte-letter": expected(
        ("only pacsbox", "2"),
        dcmqrscp="'?' is one byte of UTF-8: M?LLER* finds neither MÜLLER (ISO_IR 100 or 192)",
        standard=ONE_CHARACTER,
    ),
    "name-??-for-a-two-byte-letter": expected(
        ("only dcmqrscp", "2"),
        dcmqrscp="'??' matches the two bytes of Ü in UTF-8: M??LLER* finds both MÜLLERs",
        standard=ONE_CHARACTER + " Two '?' need two characters; MÜLLER has one between M and LLER.",
    ),
    "name-ideographic-?": expected(
        ("only pacsbox", "1"),
        dcmqrscp="'?' is one byte of UTF-8, so *=王^小? does not find 王^小東 (*=王^小??? would)",
        standard=ONE_CHARACTER,
    ),
    "patient-computed": expected(
        ("dcmqrscp omits", "NumberOfPatientRelatedStudies"),
        ("dcmqrscp omits", "NumberOfPatientRelatedSeries"),
        ("dcmqrscp omits", "NumberOfPatientRelatedInstances"),
        dcmqrscp="does not compute the Number of Patient Related ... attributes and leaves "
        "them out of its responses",
        standard=OPTIONAL_KEYS,
    ),
    "accession-empty-value": expected(
        ("only pacsbox", "10"),
        dcmqrscp='takes "" as the literal value of two quotation marks and finds nothing',
        standard="PS3.4 C.2.2.2.7 Empty Value Matching (paraphrased): a key value of two "
        "QUOTATION MARK characters matches the entities whose attribute is absent or has a zero "
        "length value.",
    ),
    "referring-empty-value": expected(
        ("only pacsbox", "12"),
        dcmqrscp='takes "" as the literal value of two quotation marks and finds nothing',
        standard="PS3.4 C.2.2.2.7 Empty Value Matching (paraphrased): a key value of two "
        "QUOTATION MARK characters matches the entities whose attribute is absent or has a zero "
        "length value.",
    ),
    "modalities-in-study": expected(
        ("only dcmqrscp", "19"),
        ("dcmqrscp omits", "ModalitiesInStudy"),
        dcmqrscp="does not know ModalitiesInStudy: ignores the key, so every study matches, "
        "and leaves it out of the responses",
        standard=OPTIONAL_KEYS,
    ),
    "modalities-in-study-list": expected(
        ("only dcmqrscp", "12"),
        ("dcmqrscp omits", "ModalitiesInStudy"),
        dcmqrscp="does not know ModalitiesInStudy: ignores the key, so every study matches, "
        "and leaves it out of the responses",
        standard=OPTIONAL_KEYS + " For ModalitiesInStudy a list of values matches a study "
        "with any of them (C.6.2.1.2, paraphrased).",
    ),
    "study-computed": expected(
        ("dcmqrscp omits", "ModalitiesInStudy"),
        ("dcmqrscp omits", "NumberOfStudyRelatedSeries"),
        ("dcmqrscp omits", "NumberOfStudyRelatedInstances"),
        dcmqrscp="computes none of them and leaves them out of its responses",
        standard=OPTIONAL_KEYS,
    ),
    "series-description": expected(
        ("only dcmqrscp", "2"),
        ("dcmqrscp omits", "SeriesDescription"),
        dcmqrscp="does not index SeriesDescription: ignores the key (every series of the study "
        "matches) and leaves it out of the responses",
        standard=OPTIONAL_KEYS,
    ),
    "series-body-part-not-indexed": expected(
        ("dcmqrscp omits", "BodyPartExamined"),
        dcmqrscp="does not index BodyPartExamined and leaves it out of its responses",
        standard=OPTIONAL_KEYS,
    ),
    "series-computed": expected(
        ("dcmqrscp omits", "NumberOfSeriesRelatedInstances"),
        dcmqrscp="does not compute NumberOfSeriesRelatedInstances and leaves it out",
        standard=OPTIONAL_KEYS,
    ),
    "upper-level-name-mismatch-study": expected(
        ("only dcmqrscp", "3"),
        dcmqrscp="matches only the unique key (PatientID) above the query level and ignores "
        "PatientName there: the three studies of P01 match although their patient is no NOBODY",
        standard=UPPER_LEVEL_KEYS,
    ),
    "upper-level-name-mismatch-series": expected(
        ("only dcmqrscp", "2"),
        dcmqrscp="matches only StudyInstanceUID above the SERIES level and ignores PatientName "
        "(a study attribute in Study Root): both series match",
        standard=UPPER_LEVEL_KEYS,
    ),
    "patient-key-below-the-level": expected(
        ("status", "Success", "0xA900"),
        ("only dcmqrscp", "12"),
        dcmqrscp="ignores the STUDY key StudyDate in a PATIENT query and answers every patient",
        standard=BELOW_THE_LEVEL,
    ),
    "study-key-below-the-level": expected(
        ("status", "Success", "0xA900"),
        ("only dcmqrscp", "31"),
        dcmqrscp="ignores the SERIES key Modality in a STUDY query and answers every study",
        standard=BELOW_THE_LEVEL,
    ),
    "series-without-the-study-uid": expected(
        ("status", "0xC000", "Success"),
        ("only pacsbox", "13"),
        dcmqrscp="refuses a Study Root SERIES query without StudyInstanceUID (0xC000)",
        standard="Not a matching rule. PS3.4 C.4.1.2.1 / C.4.1.3.1.1 (paraphrased): a baseline "
        "hierarchical query gives the unique key of each level above the query level, and the "
        "SCP matches it at that level; an identifier without one is outside the baseline, so "
        "the standard leaves the answer open. dcmqrscp refuses; pacsbox takes the missing "
        "unique key as universal and answers every SR series.",
    ),
    "image-sop-class": expected(
        ("dcmqrscp omits", "SOPClassUID"),
        dcmqrscp="does not answer SOPClassUID at the IMAGE level and leaves it out",
        standard=OPTIONAL_KEYS,
    ),
}


# -- the two archives -------------------------------------------------------------------------


@contextlib.contextmanager
def _filled(server: peers.PeerProcess, files: list[Path], call=CALL):
    with server:
        cp = peers.run_dcmtk("storescu", *call, "localhost", server.port, *files)
        assert cp.returncode == 0, f"filling {server.name} failed:\n{cp.stderr}"
        yield server


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """DCMTK dcmqrscp and pacsbox dcmqrscp (the tutorial's config) and `pacsbox serve`, the
    corpus stored into each with DCMTK's storescu: {name: (server, calling and called AE)}."""
    tmp = tmp_path_factory.mktemp("differential")
    files = write_corpus(tmp / "files")
    dcmtk_port, pacsbox_port = peers.free_port(), peers.free_port()
    dcmtk = peers.DcmtkServer(
        "dcmqrscp", ["-c", peers.tutorial_cfg(tmp / "dcmtk", dcmtk_port)], dcmtk_port
    )
    pacsbox_cfg = peers.tutorial_cfg(tmp / "pacsbox", pacsbox_port)
    pacsbox = peers.PeerProcess(
        [PACSBOX, "dcmqrscp", "--host", "127.0.0.1", "-c", pacsbox_cfg],
        pacsbox_port,
        name="pacsbox-dcmqrscp",
    )
    serve_port = peers.free_port()
    serve = pacsbox_server(serve_port, data=tmp / "serve-data")
    with _filled(dcmtk, files), _filled(pacsbox, files), _filled(serve, files, SERVE_CALL):
        yield {"dcmqrscp": (dcmtk, CALL), "pacsbox": (pacsbox, CALL), "serve": (serve, SERVE_CALL)}


@dataclass(frozen=True)
class Answer:
    status: str  # "Success" or the failure status, e.g. "0xC000"
    matches: dict[str, dict[str, object]]  # unique key -> the response's values


def _ask(
    port: int, call: tuple[str, ...], model: str, queries: list[Query], directory: Path
) -> dict[str, Answer]:
    """``queries`` (all of one model) through `pacsbox findscu -v -X`, one query file each,
    on one association: each C-FIND's responses are the rsp files written after its
    "Sending Find Request (MsgID n)". findscu stops at a failure status: the queries after the
    failed one go again in a new run."""
    answers: dict[str, Answer] = {}
    pending = list(queries)
    while pending:
        run = directory / f"run{len(answers)}"
        (run / "rsp").mkdir(parents=True)
        files = []
        for n, query in enumerate(pending):
            path = run / f"q{n:03d}.dcm"
            query.identifier().save_as(path, implicit_vr=False, little_endian=True)
            files.append(path)
        cp = run_pacsbox(
            "findscu", "-v", "-X", "-od", run / "rsp", model, *call, "localhost", port, *files
        )
        responses: list[list[Path]] = []
        for line in cp.stderr.splitlines():
            if "Sending Find Request" in line:
                responses.append([])
            elif (written := line.partition("Writing response dataset to file: ")[2]) and responses:
                responses[-1].append(Path(written.strip()))
        assert responses, f"findscu sent nothing:\n{cp.stderr}"
        for n, paths in enumerate(responses):
            status = "Success"
            if cp.returncode != 0 and n == len(responses) - 1:
                found = re.search(r"status (0x[0-9A-F]{4})", cp.stderr)
                assert found, f"findscu failed without a status:\n{cp.stderr}"
                status = found.group(1)
            answers[pending[n].id] = _answer(pending[n], status, paths)
        pending = pending[len(responses) :]
    return answers


def _answer(query: Query, status: str, paths: list[Path]) -> Answer:
    rows = [dataset_to_dict(dcmread(path)) for path in paths]
    unique = UNIQUE[query.level]
    matches = {str(row.get(unique, "")): row for row in rows}
    assert len(matches) == len(rows), f"{query.id}: one {unique} answered twice: {rows}"
    return Answer(status, matches)


def _differences(query: Query, theirs: Answer, ours: Answer) -> frozenset[tuple[str, ...]]:
    """What differs, as facts: ("status", theirs, ours), ("only pacsbox", n),
    ("only dcmqrscp", n), ("dcmqrscp omits", keyword), ("values", keyword)."""
    facts: set[tuple[str, ...]] = set()
    if theirs.status != ours.status:
        facts.add(("status", theirs.status, ours.status))
    only_ours = ours.matches.keys() - theirs.matches.keys()
    only_theirs = theirs.matches.keys() - ours.matches.keys()
    if only_ours:
        facts.add(("only pacsbox", str(len(only_ours))))
    if only_theirs:
        facts.add(("only dcmqrscp", str(len(only_theirs))))
    for unique in ours.matches.keys() & theirs.matches.keys():
        mine, other = ours.matches[unique], theirs.matches[unique]
        for keyword in query.requested():
            if keyword in mine and keyword not in other:
                facts.add(("dcmqrscp omits", keyword))
            elif keyword in mine and _normal(mine[keyword]) != _normal(other[keyword]):
                facts.add(("values", keyword))
    return frozenset(facts)


def _normal(value: object) -> object:
    return [str(v).strip() for v in value] if isinstance(value, list) else str(value).strip()


@pytest.fixture(scope="module")
def answers(archives, tmp_path_factory):
    """Every query against every archive: {archive name: {query id: Answer}}."""
    tmp = tmp_path_factory.mktemp("answers")
    jobs = [(name, model) for name in archives for model in ("-P", "-S")]

    def ask(job: tuple[str, str]) -> dict[str, Answer]:
        name, model = job
        server, call = archives[name]
        queries = [query for query in QUERIES if query.model == model]
        return _ask(server.port, call, model, queries, tmp / f"{name}{model}")

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(ask, jobs))
    out: dict[str, dict[str, Answer]] = {name: {} for name in archives}
    for (name, _), result in zip(jobs, results, strict=True):
        out[name].update(result)
    return out


# -- the tests --------------------------------------------------------------------------------


def test_the_corpus_and_the_queries_are_what_the_issue_asks():
    assert len(INSTANCES) >= 200
    assert len(PATIENTS) >= 8
    assert len({s.date[:4] for s in STUDIES}) >= 5
    assert {i.modality for i in INSTANCES} == set(SOP_CLASSES)
    assert len(QUERIES) >= 50
    assert len({query.id for query in QUERIES}) == len(QUERIES)
    assert set(EXPECTED_DIFFERENCES) <= {query.id for query in QUERIES}


@pytest.mark.parametrize("query", QUERIES, ids=[query.id for query in QUERIES])
def test_same_answers_except_the_listed_differences(answers, query):
    theirs, ours = answers["dcmqrscp"][query.id], answers["pacsbox"][query.id]
    assert ours.status == query.status, f"pacsbox answered {query.id} with {ours.status}"
    assert bool(ours.matches) == (query.matches and query.status == "Success"), ours.matches
    observed = _differences(query, theirs, ours)
    listed = EXPECTED_DIFFERENCES.get(query.id)
    assert observed == (listed.differences if listed else frozenset()), (
        f"{query.id}: dcmqrscp {sorted(theirs.matches)} ({theirs.status}), "
        f"pacsbox {sorted(ours.matches)}; differences {sorted(observed)}"
    )


def test_pacsbox_serve_answers_as_pacsbox_dcmqrscp(answers):
    """One archive, two front doors: the same answers, values included (but the AE title)."""

    def comparable(answer: Answer) -> tuple[str, dict]:
        return answer.status, {
            unique: {k: v for k, v in row.items() if k != "RetrieveAETitle"}
            for unique, row in answer.matches.items()
        }

    different = [
        query.id
        for query in QUERIES
        if comparable(answers["serve"][query.id]) != comparable(answers["pacsbox"][query.id])
    ]
    assert different == []
