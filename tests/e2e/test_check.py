"""`pacsbox check` on archives filled by `pacsbox serve` (and `pacsbox dcmqrscp`) from DCMTK's
storescu, then damaged by hand: each kind of damage is found (exit 1), `--repair` makes the
archive consistent again (exit 0) and keeps every instance that still had a whole file.
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import delete

from pacsbox.archive import Index
from pacsbox.archive.schema import instances
from tests import peers
from tests.e2e.archive_state import Storescu, archive_state, index_db, write_study
from tests.pacsbox_cli import PACSBOX, pacsbox_server, run_pacsbox

pytestmark = pytest.mark.e2e

__all__ = ["index_db"]  # the fixture, used by name

INSTANCES = 8
HOURS_AGO = 2 * 3600


def fill(tmp_path: Path, flags: tuple[str, ...], count: int = INSTANCES):
    """An archive in tmp_path/data holding ``count`` instances stored by DCMTK's storescu
    through `pacsbox serve` (stopped again); the instances as written."""
    study = write_study(tmp_path / "study", count)
    data = tmp_path / "data"
    with pacsbox_server(peers.free_port(), *flags, data=data, log_dir=tmp_path / "logs") as s:
        sender = Storescu(s.port, [i.path for i in study])
        assert sender.finish() == 0, sender.output()[-4000:]
    return study, data


def check(data: Path, *flags: str, extra: tuple[str, ...] = ()) -> tuple[int, dict, str]:
    """`pacsbox check --json`: exit status, the report, and the text output of the same
    (for the failure message)."""
    cp = run_pacsbox("check", "--data", data, *flags, "--json", *extra)
    assert cp.returncode in (0, 1), cp.stdout + cp.stderr
    return cp.returncode, json.loads(cp.stdout), cp.stdout + cp.stderr


def kinds(report: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for finding in report["findings"]:
        found.setdefault(finding["kind"], []).append(finding)
    return found


def file_of(data: Path, uid: str) -> Path:
    (found,) = (data / "files").glob(f"*/*.{uid}")
    return found


def drop_row(url: str, uid: str) -> None:
    """The instance's row deleted with SQL, behind the index's back."""
    with Index.open(url) as index, index.engine.begin() as conn:
        conn.execute(delete(instances).where(instances.c.sop_instance_uid == uid))


def rewrite_larger(path: Path) -> None:
    """The same instance, whole, with one more element (a re-send that changed)."""
    ds = pydicom.dcmread(path)
    ds.ImageComments = "sent again with a comment"
    ds.save_as(path, enforce_file_format=True)


def aged(path: Path) -> Path:
    then = time.time() - HOURS_AGO
    os.utime(path, (then, then))
    return path


def test_a_consistent_archive_exits_0(tmp_path, index_db):
    flags, _url = index_db
    _study, data = fill(tmp_path, flags)
    status, report, output = check(data, *flags)
    assert status == 0, output
    assert report["consistent"] is True
    assert (report["rows"], report["findings"]) == (INSTANCES, []), output

    cp = run_pacsbox("check", "--data", data, *flags)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert f"archive consistent: {INSTANCES} index rows" in cp.stdout


def test_every_kind_of_damage_is_found_and_repaired(tmp_path, index_db):
    flags, url = index_db
    study, data = fill(tmp_path, flags)
    uids = [i.sop_instance_uid for i in study]
    deleted, truncated, unindexed, grown = uids[:4]
    file_of(data, deleted).unlink()
    with open(file_of(data, truncated), "r+b") as fp:
        fp.truncate(20000)  # cut inside Pixel Data
    drop_row(url, unindexed)
    rewrite_larger(file_of(data, grown))
    (extra,) = write_study(tmp_path / "extra", 1)
    shutil.copy(extra.path, data / "files" / "copied-in.dcm")
    stale = data / "files" / ".incoming-999999-0.part"  # written by nobody for 2 h
    stale.write_bytes(b"half a data set")
    aged(stale)
    fresh = data / "files" / ".incoming-999999-1.part"  # as if being written just now
    fresh.write_bytes(b"")

    status, report, output = check(data, *flags)
    assert status == 1, output
    found = kinds(report)
    uid_of = lambda kind: sorted(f["sop_instance_uid"] for f in found.get(kind, []))  # noqa: E731
    assert uid_of("missing_file") == [deleted], output
    assert uid_of("wrong_size") == sorted([truncated, grown]), output
    assert uid_of("orphan") == sorted([unindexed, extra.sop_instance_uid]), output
    assert [f["path"] for f in found["stale_temp"]] == [str(stale)], output
    assert [f["path"] for f in found["temp_in_use"]] == [str(fresh)], output
    assert set(found) == {"missing_file", "wrong_size", "orphan", "stale_temp", "temp_in_use"}

    text = run_pacsbox("check", "--data", data, *flags, "-v")
    assert text.returncode == 1
    assert "archive INCONSISTENT" in text.stdout and "missing_file: " in text.stdout

    status, report, output = check(data, *flags, extra=("--repair",))
    assert status == 0, output
    assert report["consistent"] is True, output
    repaired = {
        f["sop_instance_uid"] or f["path"]: f["repair"] for f in report["repaired"]["findings"]
    }
    assert repaired[deleted] == "row removed"
    assert repaired[truncated].startswith("not whole") and "set aside" in repaired[truncated]
    assert repaired[grown] == "re-indexed from the file"
    assert repaired[unindexed] == repaired[extra.sop_instance_uid] == "indexed from the file"
    assert repaired[str(stale)] == "deleted"
    assert not stale.exists() and fresh.exists()  # the recent one may be a server's

    state = archive_state(url, data)
    assert state.rows_without_file == [] and state.rows_with_wrong_size == []
    assert state.files_without_row == [] and state.duplicated_uids == []
    had_whole_files = set(uids) - {deleted, truncated} | {extra.sop_instance_uid}
    assert set(state.rows) == had_whole_files
    assert state.rows[extra.sop_instance_uid][0] == "copied-in.dcm"
    assert list((data / "files" / ".damaged").rglob(f"*.{truncated}")), "the cut one is aside"
    with Index.open(url) as index:
        assert index.get_instance(grown).size == file_of(data, grown).stat().st_size
        assert index.get_instance(unindexed).series_instance_uid == study[2].series_instance_uid
        assert index.stats().studies == 2  # the study and the copied-in instance's


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """One SQLite archive, filled once; each test below damages a copy."""
    directory = tmp_path_factory.mktemp("pristine")
    study, data = fill(directory, ())
    return study, data


@pytest.fixture
def copy_of(pristine, tmp_path):
    study, data = pristine
    shutil.copytree(data, tmp_path / "data")
    return study, tmp_path / "data"


def _wrong_instance(study, data: Path) -> str:
    # the second instance's row made to name a copy of the first one's file (not named
    # after the row's UID: the name cannot tell, the file's header does); its own file goes
    url = f"sqlite:///{data / 'index.sqlite'}"
    target = data / "files" / "renamed.dcm"
    shutil.copy(file_of(data, study[0].sop_instance_uid), target)
    file_of(data, study[1].sop_instance_uid).unlink()
    with Index.open(url) as index, index.engine.begin() as conn:
        conn.execute(
            instances.update()
            .where(instances.c.sop_instance_uid == study[1].sop_instance_uid)
            .values(path="renamed.dcm", size=target.stat().st_size)
        )
    return "wrong_instance"


def _stale_temp(study, data: Path) -> str:
    temp = data / "files" / ".incoming-999999-7.part"
    temp.write_bytes(b"half a data set")
    aged(temp)
    return "stale_temp"


DAMAGES = {
    "delete a file": lambda study, data: (
        file_of(data, study[0].sop_instance_uid).unlink(),
        "missing_file",
    )[1],
    "truncate a file": lambda study, data: (
        os.truncate(file_of(data, study[0].sop_instance_uid), 1000),
        "wrong_size",
    )[1],
    "drop a row": lambda study, data: (
        drop_row(f"sqlite:///{data / 'index.sqlite'}", study[0].sop_instance_uid),
        "orphan",
    )[1],
    "copy a file in": lambda study, data: (
        shutil.copy(write_study(data.parent / "x", 1)[0].path, data / "files" / "x.dcm"),
        "orphan",
    )[1],
    "leave a temp file": _stale_temp,
    "another instance's file": _wrong_instance,
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_each_damage_alone_is_found_then_repaired(copy_of, damage):
    study, data = copy_of
    kind = DAMAGES[damage](study, data)
    status, report, output = check(data)
    assert status == 1, output
    assert {f["kind"] for f in report["findings"]} == {kind}, output
    status, report, output = check(data, extra=("--repair",))
    assert status == 0, output
    status, report, output = check(data)
    assert (status, report["findings"]) == (0, []), output


def test_a_series_emptied_behind_the_index_is_found_and_pruned(copy_of):
    study, data = copy_of
    url = f"sqlite:///{data / 'index.sqlite'}"
    gone = [i for i in study if i.series_instance_uid == study[0].series_instance_uid]
    for instance in gone:  # rows and files of one whole series, deleted by hand
        file_of(data, instance.sop_instance_uid).unlink()
        drop_row(url, instance.sop_instance_uid)
    status, report, output = check(data)
    assert status == 1, output
    (finding,) = report["findings"]
    assert finding["kind"] == "empty_level"
    assert finding["detail"] == f"series {study[0].series_instance_uid} is empty"
    status, report, output = check(data, extra=("--repair",))
    assert status == 0, output
    with Index.open(url) as index:
        assert (index.stats().series, index.stats().instances) == (1, len(study) - len(gone))


def test_a_file_that_is_not_dicom_is_reported_and_left_alone(copy_of):
    _study, data = copy_of
    notes = data / "files" / "notes.txt"
    notes.write_text("not DICOM")
    status, report, output = check(data, extra=("--repair",))
    assert status == 1, output  # a person decides
    (finding,) = report["findings"]
    assert finding["kind"] == "not_dicom" and finding["path"] == str(notes)
    assert "left alone" in report["repaired"]["findings"][0]["repair"]
    assert notes.exists()


def test_a_copy_identical_to_the_indexed_file_is_deleted_a_different_one_kept(copy_of):
    study, data = copy_of
    original = file_of(data, study[0].sop_instance_uid)
    same = data / "files" / "same.dcm"
    shutil.copy(original, same)
    status, report, output = check(data, extra=("--repair",))
    assert status == 0, output
    assert not same.exists() and original.exists()

    different = data / "files" / "different.dcm"
    shutil.copy(original, different)
    rewrite_larger(different)
    status, report, output = check(data, extra=("--repair",))
    assert status == 1, output
    assert "content differs" in report["repaired"]["findings"][0]["repair"]
    assert different.exists() and original.exists()


def test_the_running_servers_temp_files_are_never_deleted(tmp_path, copy_of):
    study, data = copy_of
    with pacsbox_server(peers.free_port(), data=data, log_dir=tmp_path / "logs") as server:
        sender = Storescu(server.port, [study[0].path])
        assert sender.finish() == 0, sender.output()
        spares = list((data / "files").glob(".incoming-*.part"))
        assert spares, "serve keeps a spare temp file open"
        for spare in spares:
            aged(spare)
        status, report, output = check(data, extra=("--repair", "--stale-after", "0"))
        assert status == 0, output
        assert all(spare.exists() for spare in spares)
        assert {f["kind"] for f in report["findings"]} == {"temp_in_use"}


def test_a_dcmqrscp_archive_with_areas(tmp_path):
    port = peers.free_port()
    cfg = peers.write_dcmqrscp_cfg(
        tmp_path / "dcmqrscp.cfg",
        port=port,
        storage_dir=tmp_path,
        hosts={"acme1": ("ACME1", "localhost", 1234)},
        ae_table=[
            ("ONE", tmp_path / "one", "RW", (10, "1024mb"), "acme1"),
            ("TWO", tmp_path / "two", "RW", (10, "1024mb"), "acme1"),
        ],
    )
    study = write_study(tmp_path / "study", 4)
    argv = [PACSBOX, "dcmqrscp", "--host", "127.0.0.1", "-c", cfg]
    with peers.PeerProcess(argv, port, name="pacsbox-dcmqrscp", log_dir=tmp_path / "logs"):
        for area, files in (("ONE", study[:2]), ("TWO", study[2:])):
            cp = peers.run_dcmtk(
                "storescu", "-aet", "ACME1", "-aec", area, "127.0.0.1", port,
                *[i.path for i in files],
            )  # fmt: skip
            assert cp.returncode == 0, cp.stderr
    ok = run_pacsbox("check", "-c", cfg, "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["rows"] == 4

    (gone,) = (tmp_path / "two").rglob(f"*{study[2].sop_instance_uid}")
    gone.unlink()
    found = run_pacsbox("check", "-c", cfg, "-v")
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"missing_file [TWO]: {gone}" in found.stdout
    fixed = run_pacsbox("check", "-c", cfg, "--repair")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    with Index.open(f"sqlite:///{tmp_path / 'pacsbox-index.sqlite'}") as index:
        assert index.get_instance(study[2].sop_instance_uid) is None
        assert index.get_instance(study[3].sop_instance_uid).area == "TWO"
        assert index.stats().instances == 3


def test_check_says_what_to_pass_when_there_is_no_archive(tmp_path):
    cp = run_pacsbox("check", "--data", tmp_path / "nothing")
    assert cp.returncode == 2
    assert "no archive there" in cp.stderr and "--data" in cp.stderr
