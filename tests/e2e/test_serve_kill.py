"""`kill -9` of `pacsbox serve` in the middle of a burst of C-STOREs, on SQLite and on
PostgreSQL: every instance it acknowledged has its index row and its whole file, no index row
lacks its file, and the server restarted on the same data serves and stores again.

Files without a row (renamed into place, killed before the commit) and temp files of the
killed process are allowed: `pacsbox check` finds them and `pacsbox check --repair` indexes
the files and deletes the temp files, after which the archive is consistent. The test prints
how many.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests import peers
from tests.e2e.archive_state import Storescu, archive_state, index_db, write_study
from tests.pacsbox_cli import pacsbox_server, run_pacsbox

pytestmark = pytest.mark.e2e

__all__ = ["index_db"]  # the fixture, used by name

INSTANCES = 300
KILL_AFTER = 60  # acknowledged instances, then the next one is sent and the server killed


def test_kill_9_during_a_burst_loses_no_acknowledged_instance(tmp_path, index_db):
    flags, url = index_db
    study = write_study(tmp_path / "study", INSTANCES)
    uid_of = {i.path: i.sop_instance_uid for i in study}
    data = tmp_path / "data"

    logs = tmp_path / "logs"
    server = pacsbox_server(peers.free_port(), *flags, data=data, log_dir=logs).start()
    try:
        sender = Storescu(server.port, [i.path for i in study])
        # killed while it handles a store: the next request has just been sent whole
        sender.run_until(
            lambda: len(sender.acknowledged) >= KILL_AFTER and sender.log[-1].startswith("XMIT")
        )
        os.killpg(server.process.pid, signal.SIGKILL)  # the server is its group's leader
        server.process.wait(timeout=60)
        acknowledged = {uid_of[path] for path in sender.acknowledged}  # before the kill
        status = sender.finish()
    finally:
        server.stop()
    assert server.process.returncode == -signal.SIGKILL
    assert len(acknowledged) >= KILL_AFTER, sender.output()[-4000:]  # the burst was under way
    assert status != 0 and len(sender.acknowledged) < INSTANCES, (
        "storescu finished before the kill: the burst was too short to interrupt"
    )

    state = archive_state(url, data)
    print(
        f"\nafter kill -9: {len(sender.acknowledged)} acknowledged, {state.summary()}, "
        f"rows not acknowledged: {len(set(state.rows) - acknowledged)}"
    )
    assert acknowledged <= set(state.rows), "an acknowledged instance is not in the index"
    assert state.rows_without_file == [], "index rows without their file"
    assert state.rows_with_wrong_size == [], "index rows whose file is not whole"
    assert state.duplicated_uids == []
    assert (state.patients, state.studies) == (1, 1)

    # pacsbox check finds what the kill left; --repair (temp files: no process has them open,
    # so stale at once with --stale-after 0) makes the archive consistent
    found = run_pacsbox("check", "--data", data, *flags, "--stale-after", "0")
    print(found.stdout, end="")
    left = bool(state.files_without_row or state.temp_files)
    assert found.returncode == (1 if left else 0), found.stdout + found.stderr
    repair = run_pacsbox("check", "--data", data, *flags, "--stale-after", "0", "--repair", "-v")
    print(repair.stdout, end="")
    assert repair.returncode == 0, repair.stdout + repair.stderr
    repaired = archive_state(url, data)
    assert (repaired.files_without_row, repaired.temp_files) == ([], [])
    assert repaired.rows_without_file == [] and repaired.rows_with_wrong_size == []
    # the files without a row, named <prefix>.<SOP Instance UID>: indexed now
    renamed = {path.name.split(".", 1)[1] for path in state.files_without_row}
    assert set(repaired.rows) == set(state.rows) | renamed

    # restarted on the same data: it answers, and takes the whole study (again)
    with pacsbox_server(peers.free_port(), *flags, data=data, log_dir=logs / "again") as again:
        echo = peers.run_dcmtk("echoscu", "-aec", "PACSBOX", "127.0.0.1", again.port)
        assert echo.returncode == 0, echo.stdout + echo.stderr
        resend = Storescu(again.port, [i.path for i in study])
        assert resend.finish() == 0, resend.output()[-4000:]
    assert len(resend.acknowledged) == INSTANCES
    state = archive_state(url, data)
    print(f"after the restart and a resend: {state.summary()}")
    assert set(state.rows) == {i.sop_instance_uid for i in study}
    assert state.rows_without_file == [] and state.rows_with_wrong_size == []
    assert state.files_without_row == []  # the killed server's renamed files: now indexed
    assert (state.patients, state.studies, state.series) == (1, 1, 2)
    assert "Cannot" not in again.output(), again.output()[-4000:]
    final = run_pacsbox("check", "--data", data, *flags)
    assert final.returncode == 0, final.stdout + final.stderr
