"""`pacsbox serve` as the archive: what DCMTK's storescu sends is on disk and in the index
(SQLite by default, PostgreSQL with --db), committed before the response, and kept across a
restart."""

from __future__ import annotations

import uuid

import pytest

from pacsbox.archive import Index
from tests import peers
from tests.archive.headers import pg_admin, pg_schema_url
from tests.pacsbox_cli import pacsbox_server
from tests.storage_data import build_samples

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return build_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield None, f"sqlite:///{tmp_path / 'data' / 'index.sqlite'}"
        return
    schema = f"serve_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE SCHEMA {schema}")
    try:
        yield pg_schema_url(schema), pg_schema_url(schema)
    finally:
        pg_admin(f"DROP SCHEMA {schema} CASCADE")


def send(port: int, *paths) -> None:
    cp = peers.run_dcmtk("storescu", "-aec", "PACSBOX", "+sd", "127.0.0.1", port, *paths)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_stored_instances_are_indexed_and_survive_a_restart(tmp_path, samples, db_url):
    option, url = db_url
    data = tmp_path / "data"
    extra = ("--db", option) if option else ()
    files = [samples[name].path for name in ("ct", "mr", "rtplan")]
    port = peers.free_port()
    with pacsbox_server(port, *extra, data=data):
        send(port, *files)
        # committed before each response: visible to another connection right away
        with Index.open(url) as index:
            assert index.stats().instances == 3
    port = peers.free_port()
    with pacsbox_server(port, *extra, data=data):
        send(port, samples["ct"].path)  # the same instance again: replaced, not doubled
        with Index.open(url) as index:
            stats = index.stats()
            record = index.get_instance(samples["ct"].sop_instance_uid)
    assert (stats.instances, stats.studies) == (3, 3)
    assert record is not None
    stored = data / "files" / record.path
    assert stored.is_file() and stored.name == samples["ct"].stored_name
    assert record.header["00100010"]["vr"] == "PN"  # the whole header, as DICOM JSON


@pytest.mark.parametrize("policy", ["keep", "refuse"])
def test_on_duplicate_keeps_the_stored_file(tmp_path, samples, db_url, policy):
    option, url = db_url
    data = tmp_path / "data"
    extra = ("--db", option) if option else ()
    port = peers.free_port()
    with pacsbox_server(port, "--on-duplicate", policy, *extra, data=data):
        send(port, samples["ct"].path)
        with Index.open(url) as index:
            path = data / "files" / index.get_instance(samples["ct"].sop_instance_uid).path
        before = path.stat().st_mtime_ns
        cp = peers.run_dcmtk("storescu", "-aec", "PACSBOX", "127.0.0.1", port, samples["ct"].path)
        assert (cp.returncode == 0) is (policy == "keep"), cp.stderr
        with Index.open(url) as index:
            assert index.stats().instances == 1
    assert path.stat().st_mtime_ns == before  # not overwritten by the copy sent again
