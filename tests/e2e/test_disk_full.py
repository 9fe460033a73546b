"""`pacsbox serve` on a disk that fills up: a 2 MB tmpfs as its --data (SQLite index on it
too; with PostgreSQL, the index elsewhere). DCMTK's storescu stores until an instance does
not fit: that C-STORE is answered 0xA700 (Out of Resources) with a comment saying the disk is
full, no half-written file or temp file is left, no index row lacks its file, the instances
stored before are intact, and once space is freed, stores succeed again.

Mounting needs root (CAP_SYS_ADMIN); without it the test is skipped, saying so.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pydicom
import pytest

from tests import peers
from tests.e2e.archive_state import archive_state, index_db, write_study
from tests.pacsbox_cli import pacsbox_server, run_pacsbox

pytestmark = pytest.mark.e2e

__all__ = ["index_db"]  # the fixture, used by name

DISK = "2m"
BALLAST = 400 * 1024  # freed once the disk is full
MAX_INSTANCES = 80  # 39 KB each: the 2 MB disk is full long before


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """tmp_path/data, a 2 MB tmpfs, unmounted afterwards."""
    data = tmp_path / "data"
    data.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip(
            f"cannot mount a {DISK} tmpfs to fill up ({mount.stderr.strip()}): the disk-full "
            "test needs root (or CAP_SYS_ADMIN)"
        )
    try:
        yield data
    finally:
        subprocess.run(["umount", str(data)], check=True)


def store(port: int, path: Path) -> tuple[str, str]:
    """(status line, error comment) of one C-STORE by DCMTK's storescu -d."""
    cp = peers.run_dcmtk("storescu", "-d", "-aec", "PACSBOX", "127.0.0.1", port, path)
    status = next((line for line in cp.stderr.splitlines() if "DIMSE Status" in line), "")
    comment = next((line for line in cp.stderr.splitlines() if "ErrorComment" in line), "")
    assert status, cp.stdout + cp.stderr
    return status, comment


def test_a_full_disk_refuses_the_instance_that_does_not_fit_and_keeps_the_rest(
    tmp_path, small_disk, index_db
):
    flags, url = index_db
    data = small_disk
    study = write_study(tmp_path / "study", MAX_INSTANCES)
    ballast = data / "ballast"
    ballast.write_bytes(bytes(BALLAST))

    with pacsbox_server(peers.free_port(), *flags, data=data, log_dir=tmp_path / "logs") as s:
        stored = []
        for instance in study:
            status, comment = store(s.port, instance.path)
            if "0x0000" not in status:
                break
            stored.append(instance)
        else:
            pytest.fail(f"{MAX_INSTANCES} instances fit on a {DISK} disk: it never filled up")
        full = instance
        print(f"\n{len(stored)} instances stored, then: {status.strip()} {comment.strip()}")
        assert "0xa700" in status.lower(), status
        assert "disk full" in comment, comment
        assert len(stored) >= 3, "the disk filled up before the test began"

        # nothing half-written: no file of the refused instance, no temp file with data in
        # it (the server keeps one empty spare open), no row without its whole file
        files = data / "files"
        assert not list(files.rglob(f"*{full.sop_instance_uid}*"))
        temps = list(files.glob(".incoming-*.part"))
        assert [t for t in temps if t.stat().st_size] == []
        state = archive_state(url, data)
        assert set(state.rows) == {i.sop_instance_uid for i in stored}
        assert state.rows_without_file == [] and state.rows_with_wrong_size == []
        assert state.files_without_row == []
        for instance in stored:  # the instances stored before are whole and unchanged
            (kept,) = files.rglob(f"*.{instance.sop_instance_uid}")
            ours, sent = pydicom.dcmread(kept), pydicom.dcmread(instance.path)
            assert ours.SOPInstanceUID == sent.SOPInstanceUID
            assert ours.PixelData == sent.PixelData
        check = run_pacsbox("check", "--data", data, *flags)
        assert check.returncode == 0, check.stdout + check.stderr

        # still full: refused again, the same way
        status, comment = store(s.port, full.path)
        assert "0xa700" in status.lower() and "disk full" in comment

        # space freed: the refused instance and the next ones are stored
        ballast.unlink()
        again = [full, *study[len(stored) + 1 : len(stored) + 3]]
        for instance in again:
            status, comment = store(s.port, instance.path)
            assert "0x0000" in status, f"{status} {comment}\n{s.output()[-3000:]}"
    # the server's log says what happened: the file did not fit, or the index's next write
    # (SQLite on the same disk) did not, after the file was renamed into place
    logged = [line for line in s.output().splitlines() if line.startswith("E: Cannot")]
    print("\n".join(logged[:2]))
    assert logged and all("disk is full" in e or "No space left" in e for e in logged)
    state = archive_state(url, data)
    assert set(state.rows) == {i.sop_instance_uid for i in stored + again}
    assert state.rows_without_file == [] and state.files_without_row == []
    assert state.temp_files == []  # the spare is removed when serve stops
