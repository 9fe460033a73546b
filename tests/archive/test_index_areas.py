"""The index's storage-area queries behind dcmqrscp's quotas, on SQLite and PostgreSQL:
where an instance is, what a study holds in an area, and removing a study from one area only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsbox.archive import AreaUsage, Index, IndexStats, InstanceLocation
from tests.archive.headers import EXPLICIT_LE, ct_header, new_uid
from tests.archive.test_index import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def index(request, tmp_path: Path):
    database = Database(request.param, tmp_path)
    idx = database.open()
    yield idx
    idx.close()
    database.drop()


def add(index: Index, study: str, sop: str, path: str, area: str | None, size: int = 100):
    header = ct_header(study, f"{study}.1", sop)
    index.add(header, path=path, size=size, transfer_syntax=EXPLICIT_LE, area=area)


def test_instance_location(index: Index):
    study, sop = new_uid()[:60], new_uid()
    assert index.instance_location(sop) is None
    add(index, study, sop, "CT.1", "ACME_STORE", size=1234)
    assert index.instance_location(sop) == InstanceLocation(sop, study, "ACME_STORE", "CT.1", 1234)


def test_area_usage_counts_the_study_in_that_area_only(index: Index):
    a, b = new_uid()[:60], new_uid()[:60]
    add(index, a, new_uid(), "1", "AREA1", size=100)
    add(index, a, new_uid(), "2", "AREA1", size=50)
    add(index, b, new_uid(), "3", "AREA1")
    add(index, b, new_uid(), "4", "AREA2")
    add(index, b, new_uid(), "5", None)
    assert index.area_usage("AREA1", a) == AreaUsage(2, 150, None)  # present: no count
    assert index.area_usage("AREA2", a) == AreaUsage(0, 0, 1)  # absent: AREA2 holds b
    assert index.area_usage("AREA3", a) == AreaUsage(0, 0, 0)
    assert index.area_usage(None, b) == AreaUsage(1, 100, None)
    assert index.area_usage(None, a) == AreaUsage(0, 0, 1)


def test_remove_area_study_leaves_other_areas(index: Index):
    study, other = new_uid()[:60], new_uid()[:60]
    kept = new_uid()
    add(index, study, new_uid(), "1", "AREA1")
    add(index, study, new_uid(), "2", "AREA1")
    add(index, study, kept, "3", "AREA2")
    add(index, other, new_uid(), "4", "AREA1")
    assert sorted(index.remove_area_study(study, "AREA1")) == ["1", "2"]
    assert index.area_usage("AREA1", study).study_instances == 0
    assert index.instance_location(kept) is not None  # the study lives on in AREA2
    assert sorted(index.remove_area_study(study, "AREA2")) == ["3"]
    assert index.get_study(study) is None  # its last instance gone: the study row too
    assert index.stats() == IndexStats(patients=1, studies=1, series=1, instances=1)
    assert index.remove_area_study(study, "AREA1") == []
