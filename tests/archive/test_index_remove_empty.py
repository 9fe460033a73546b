"""Index.remove_empty: the series, studies and patients that rows deleted behind the index's
back leave empty go, and nothing else (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import delete

from pacsbox.archive import Index
from pacsbox.archive.schema import instances
from tests.archive.headers import EXPLICIT_LE, ct_header, new_uid
from tests.archive.test_index import db, index

__all__ = ["db", "index"]  # the fixtures, used by name


def test_only_the_levels_left_empty_go(index: Index):
    study_a, study_b = new_uid(), new_uid()
    series_a1, series_a2, series_b = new_uid(), new_uid(), new_uid()
    placed = [
        (study_a, series_a1, new_uid(), "P1"),
        (study_a, series_a2, new_uid(), "P1"),
        (study_b, series_b, new_uid(), "P2"),
    ]
    for study, series, sop, patient in placed:
        header = ct_header(study, series, sop, PatientID=patient)
        index.add(header, path=sop, size=1, transfer_syntax=EXPLICIT_LE)
    assert index.remove_empty() == 0
    # the rows of series a2 and of study b's only series deleted with SQL: a2 is empty, and
    # study b with its series and its patient P2
    with index.engine.begin() as conn:
        gone = [placed[1][2], placed[2][2]]
        conn.execute(delete(instances).where(instances.c.sop_instance_uid.in_(gone)))
    assert index.remove_empty() == 4  # series a2, series b, study b, patient P2
    stats = index.stats()
    assert (stats.patients, stats.studies, stats.series, stats.instances) == (1, 1, 1, 1)
    assert index.get_study(study_a).number_of_series == 1
    assert index.remove_empty() == 0
