"""dcmqrscp's quotas (services/quota.py: AreaQuota) on a SQLite index, without the network:
what counts against maxBytesPerStudy, what maxStudies deletes, and that the sizes this
process remembers never cause a refusal the index would not."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsbox.archive import Index
from pacsbox.config.dcmqrscp import parse
from pacsbox.services.quota import AreaQuota
from pacsbox.services.storage_scp import OUT_OF_RESOURCES
from tests.archive.headers import EXPLICIT_LE, ct_header, new_uid


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'index.sqlite'}"


def area_quota(tmp_path: Path, index: Index, quota: str, **options) -> AreaQuota:
    config = parse(f"AETable BEGIN\nSTORE {tmp_path / 'store'} RW {quota} ANY\nAETable END\n")
    (tmp_path / "store").mkdir(exist_ok=True)
    return AreaQuota(index, config.area_for("STORE"), source="dcmqrscp.cfg", **options)


def store(index: Index, quota: AreaQuota, study: str, sop: str, size: int):
    """What StorageSCP does around its quota: admit, then add and count (or the verdict)."""
    header = ct_header(study, f"{study}.1", sop)
    stored = index.instance_location(sop)
    verdict = quota.admit(header, size, stored)
    if verdict is None:
        path = f"CT.{sop}"
        (quota.directory / path).write_bytes(b"x")
        index.add(header, path=path, size=size, transfer_syntax=EXPLICIT_LE, area="STORE")
        quota.added(header, size, stored)
    return verdict


def test_a_replaced_instance_counts_once(tmp_path, url):
    with Index.open(url) as index:
        quota = area_quota(tmp_path, index, "(10, 1kb)")
        study, first = new_uid()[:60], new_uid()
        assert store(index, quota, study, first, 600) is None
        assert store(index, quota, study, first, 600) is None  # re-sent: 600, not 1200
        verdict = store(index, quota, study, new_uid(), 500)
        assert verdict == (OUT_OF_RESOURCES, "study over maxBytesPerStudy 1kb, AETable line 2")
        assert store(index, quota, study, new_uid(), 424) is None  # exactly 1024


def test_what_another_process_removed_is_counted_before_refusing(tmp_path, url):
    with Index.open(url) as index, Index.open(url) as other:
        quota = area_quota(tmp_path, index, "(10, 1kb)")
        study, first = new_uid()[:60], new_uid()
        assert store(index, quota, study, first, 600) is None
        other.remove_instance(first)  # behind this process's back
        assert store(index, quota, study, new_uid(), 600) is None


def test_an_instance_over_the_byte_quota_deletes_no_study(tmp_path, url):
    with Index.open(url) as index:
        quota = area_quota(tmp_path, index, "(1, 1kb)")
        kept = new_uid()[:60]
        assert store(index, quota, kept, new_uid(), 500) is None
        assert store(index, quota, new_uid()[:60], new_uid(), 2000) is not None
        assert [s.study_instance_uid for s in index.studies_of_area("STORE")] == [kept]


def test_max_studies_deletes_the_least_recently_received_rows_and_files(tmp_path, url):
    with Index.open(url) as index:
        quota = area_quota(tmp_path, index, "(2, 1mb)")
        a, b, c = (new_uid()[:60] for _ in range(3))
        store(index, quota, a, new_uid(), 10)
        store(index, quota, b, new_uid(), 10)
        store(index, quota, a, new_uid(), 10)  # a is now the most recent
        assert store(index, quota, c, new_uid(), 10) is None
        held = {s.study_instance_uid: s.instances for s in index.studies_of_area("STORE")}
        assert held == {a: 2, c: 1}
        assert len(list(quota.directory.iterdir())) == 3  # b's file is gone
        assert store(index, quota, b, new_uid(), 10) is None  # b again: a new study, a goes
        assert {s.study_instance_uid for s in index.studies_of_area("STORE")} == {b, c}


def test_refuse_past_max_studies(tmp_path, url):
    with Index.open(url) as index:
        quota = area_quota(tmp_path, index, "(1, 1mb)", on_max_studies="refuse")
        held = new_uid()[:60]
        assert store(index, quota, held, new_uid(), 10) is None
        verdict = store(index, quota, new_uid()[:60], new_uid(), 10)
        assert verdict == (OUT_OF_RESOURCES, "area full: maxStudies 1, AETable line 2")
        assert store(index, quota, held, new_uid(), 10) is None
        assert index.stats().studies == 1
