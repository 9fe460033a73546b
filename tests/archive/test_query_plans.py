"""The SQL of a C-FIND uses the index's indexes (issue 8): SQLite's plan for each statement a
study-level query runs, on a small index, as a user's index has it (no ANALYZE) and after
ANALYZE. No timing: a plan that SEARCHes an index stays fast as the archive grows, a SCAN
does not. ``python -m bench.query_plans`` shows the same on the 1M-instance bench index.

Also ModalitiesInStudy matching with another key (its SQL is an EXISTS, shaped for the plan),
on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from pydicom.dataset import Dataset
from sqlalchemy import event, insert

from pacsbox.archive import Index
from pacsbox.archive.query import Query, QueryOptions
from pacsbox.archive.schema import instances, patients, series, studies
from pacsbox.services.qr_models import Model
from tests.archive.test_index import Database

FAMILIES = ("ADAMS", "BAKER", "CLARK", "DAVIS", "EVANS", "FISCHER", "GARCIA", "HUGHES",
            "MÜLLER", "NGUYEN", "SMITH", "SMITHSON", "YAMADA")  # fmt: skip
MODALITIES = ("CT", "MR", "US", "CR")
N_STUDIES = 400

# what a study browser asks for: the computed attributes run their own statements
RETURN_KEYS = dict.fromkeys(("PatientID", "StudyInstanceUID", "ModalitiesInStudy",
                             "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
                             "InstitutionName"), "")  # fmt: skip


def fill(index: Index) -> None:
    """400 studies of 130 patients over a year, one or two series each, two instances a
    series, written straight into the tables (Index.add would parse ~1,200 headers)."""
    rows: dict = {patients: [], studies: [], series: [], instances: []}
    names = [f"{FAMILIES[p % len(FAMILIES)]}^GIVEN{p}" for p in range(130)]
    for p, name in enumerate(names):
        rows[patients].append(dict(id=p + 1, patient_id=f"P{p}", patient_name=name,
                                   patient_name_upper=name.upper()))  # fmt: skip
    series_id = instance_id = 0
    for s in range(N_STUDIES):
        day = 20200101 + (s % 12) * 100 + s % 28  # YYYYMMDD over a year
        name = names[s % 130]  # the study's own copy of its patient's name (Index.add)
        rows[studies].append(dict(id=s + 1, study_instance_uid=f"1.2.3.{s}",
                                  patient_fk=s % 130 + 1, study_date=str(day),
                                  patient_name=name, patient_name_upper=name.upper()))  # fmt: skip
        for k in range(1 + s // 3 % 2):
            series_id += 1
            rows[series].append(dict(id=series_id, series_instance_uid=f"1.2.3.{s}.{k}",
                                     study_fk=s + 1, modality=MODALITIES[(s // 12 + k) % 4]))  # fmt: skip
            for n in range(2):
                instance_id += 1
                rows[instances].append(dict(
                    id=instance_id, sop_instance_uid=f"1.2.3.{s}.{k}.{n}", series_fk=series_id,
                    sop_class_uid="1.2.840.10008.5.1.4.1.1.2", instance_number=n,
                    transfer_syntax="1.2.840.10008.1.2.1", path=f"{instance_id}.dcm", size=1,
                    received_at=datetime(2020, 1, 1), calling_ae="",
                    header={"00080080": {"vr": "LO", "Value": [f"HOSPITAL {s % 3}"]}},
                ))  # fmt: skip
    with index.engine.begin() as conn:
        for table, values in rows.items():
            conn.execute(insert(table), values)


def family(s: int) -> str:
    return FAMILIES[(s % 130) % len(FAMILIES)]


def in_march_1_to_10(s: int) -> bool:
    return s % 12 == 2 and s % 28 < 10


def has(s: int, modality: str) -> bool:
    two = s // 3 % 2  # a second series
    return modality in (MODALITIES[s // 12 % 4], MODALITIES[(s // 12 + 1) % 4] if two else "")


def studies_where(test) -> set[str]:
    return {f"1.2.3.{s}" for s in range(N_STUDIES) if test(s)}


def identifier(**keys) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for keyword, value in {**RETURN_KEYS, **keys}.items():
        setattr(ds, keyword, value)
    return ds


def plans(index: Index, **keys) -> tuple[int, list[list[str]]]:
    """(matches, the EXPLAIN QUERY PLAN lines of each SELECT the query ran)."""
    recorded = []
    with index.engine.connect() as conn:

        @event.listens_for(conn, "before_cursor_execute")
        def record(_conn, _cursor, statement, parameters, _context, _many) -> None:
            if statement.lstrip().upper().startswith("SELECT"):
                recorded.append((statement, parameters))

        query = Query(Model.STUDY_ROOT, identifier(**keys), QueryOptions("PACSBOX"))
        matches = sum(1 for _ in query.run(conn))
        event.remove(conn, "before_cursor_execute", record)
        explained = [
            [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
            for sql, params in recorded
        ]
    return matches, explained


def scans(explained: list[list[str]]) -> list[str]:
    return [
        line
        for statement in explained
        for line in statement
        if line.startswith("SCAN ") and "USING" not in line and "anon" not in line
    ]


@pytest.fixture(params=["as-stored", "analyzed"])
def index(request, tmp_path):
    with Database("sqlite", tmp_path).open() as idx:
        fill(idx)
        if request.param == "analyzed":
            with idx.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        yield idx


def test_patient_name_wildcard_starts_from_the_name_index(index):
    matches, explained = plans(index, PatientName="smith*")
    assert matches == len(studies_where(lambda s: family(s) in ("SMITH", "SMITHSON")))
    first = explained[0]
    assert any("SEARCH studies USING INDEX ix_studies_patient_name_upper" in x for x in first)
    assert scans(explained) == [], explained


def test_study_date_range_starts_from_the_date_index(index):
    matches, explained = plans(index, StudyDate="20200301-20200310")
    assert matches == len(studies_where(in_march_1_to_10))
    first = explained[0]
    assert any("SEARCH studies USING INDEX ix_studies_study_date" in x for x in first), first
    assert scans(explained) == [], explained


def test_modalities_with_a_date_range_start_from_the_date_not_the_modality(index):
    matches, explained = plans(index, StudyDate="20200301-20200310", ModalitiesInStudy="MR")
    assert matches > 0
    first = explained[0]
    assert any("SEARCH studies USING INDEX ix_studies_study_date" in x for x in first), first
    assert not any("ix_series_modality" in x for x in first), first
    assert scans(explained) == [], explained


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_modalities_in_study_matching_with_other_keys(backend, tmp_path):
    db = Database(backend, tmp_path)
    try:
        with db.open() as idx:
            fill(idx)
            with idx.engine.connect() as conn:

                def found(**keys) -> set[str]:
                    query = Query(Model.STUDY_ROOT, identifier(**keys), QueryOptions("PACSBOX"))
                    return {str(r.StudyInstanceUID) for r in query.run(conn)}

                march = "20200301-20200310"
                mr = studies_where(lambda s: in_march_1_to_10(s) and has(s, "MR"))
                assert mr and mr != studies_where(in_march_1_to_10)
                assert found(StudyDate=march, ModalitiesInStudy="MR") == mr
                mr_or_cr = studies_where(
                    lambda s: in_march_1_to_10(s) and (has(s, "MR") or has(s, "CR"))
                )
                assert found(StudyDate=march, ModalitiesInStudy="MR\\CR") == mr_or_cr
                assert found(ModalitiesInStudy="US") == studies_where(lambda s: has(s, "US"))
    finally:
        db.drop()
