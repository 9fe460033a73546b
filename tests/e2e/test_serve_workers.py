"""`pacsbox serve --workers 2` as a user runs it: one port, two worker processes sharing the
index (SQLite or PostgreSQL). Four DCMTK storescu at once store one new study: two go to each
worker, each instance is indexed once with its file, one patient, study and series row each;
C-FIND and C-MOVE answer through it. Each worker serves on the shared port (the other one stopped); SIGTERM to
the parent stops every process; a worker killed with -9 is replaced and the server still
answers; a parent killed with -9 takes its workers with it."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests import peers
from tests.e2e.archive_state import Storescu, archive_state, index_db, write_study
from tests.pacsbox_cli import pacsbox_server

pytestmark = pytest.mark.e2e

__all__ = ["index_db"]  # the fixture, used by name

INSTANCES, SENDERS, WORKERS = 320, 4, 2
WAIT = 60.0  # seconds: an upper bound for a log line or a process exit, never a pace

ASSOCIATION = re.compile(r"I: \[worker (\d+), pid (\d+)\] Association Received")


def test_four_senders_two_workers_one_index(tmp_path, index_db):
    flags, url = index_db
    study = write_study(tmp_path / "study", INSTANCES)
    data = tmp_path / "data"
    move_port = peers.free_port()
    config = tmp_path / "pacsbox.toml"
    config.write_text(f'[peers.MOVEDEST]\nhost = "127.0.0.1"\nport = {move_port}\n')
    port = peers.free_port()
    server = pacsbox_server(port, "--workers", WORKERS, "--config", config, *flags, data=data,
                            log_dir=tmp_path / "log")  # fmt: skip
    with server:
        workers = wait_for_workers(server, WORKERS)
        senders = [Storescu(port, [i.path for i in study[n::SENDERS]]) for n in range(SENDERS)]
        status = [sender.finish() for sender in senders]
        for sender, code in zip(senders, status, strict=True):
            assert code == 0, sender.output()[-4000:]
        study_uid = _study_uid(study[0].path)
        found = peers.run_dcmtk(
            "findscu", "-v", "-S", "-aec", "PACSBOX", "127.0.0.1", port,
            "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study_uid}",
            "-k", "SeriesInstanceUID", "-k", "NumberOfSeriesRelatedInstances",
        )  # fmt: skip
        moved = tmp_path / "moved"
        moved.mkdir()
        move = peers.run_dcmtk(
            "movescu", "-S", "-aet", "MOVEDEST", "-aec", "PACSBOX", "-aem", "MOVEDEST",
            "+P", move_port, "-od", moved, "127.0.0.1", port,
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}",
        )  # fmt: skip
        log = server.output()
    assert server.process.returncode == 0, log[-4000:]

    state = archive_state(url, data)
    print(f"\n{state.summary()}")
    assert set(state.rows) == {i.sop_instance_uid for i in study}
    assert state.duplicated_uids == []
    assert (state.patients, state.studies, state.series) == (1, 1, 2)
    assert state.rows_without_file == [] and state.rows_with_wrong_size == []
    assert state.files_without_row == [] and state.temp_files == []

    # Only the least loaded workers accept (LoadShare): the four senders, whose associations
    # overlap, end two on each worker, whichever the kernel wakes first.
    served = [int(pid) for _, pid in ASSOCIATION.findall(log)]
    print(f"associations per worker pid: {dict(Counter(served))}")
    assert len(served) == SENDERS + 2  # the storescu, then findscu and movescu
    assert sorted(Counter(served[:SENDERS]).values()) == [2, 2]
    assert set(served) == set(workers.values())
    assert "E: " not in log and "Traceback" not in log, log[-4000:]

    assert found.returncode == 0, found.stdout + found.stderr
    for series_uid in {i.series_instance_uid for i in study}:
        assert series_uid in found.stderr, found.stderr[-4000:]
    assert move.returncode == 0, move.stdout + move.stderr
    assert len(list(moved.iterdir())) == INSTANCES


def test_workers_are_replaced_stopped_and_never_left_behind(tmp_path):
    port = peers.free_port()
    server = pacsbox_server(port, "--workers", WORKERS, log_dir=tmp_path / "log").start()
    try:  # not `with`: the server is to exit here, which its __exit__ takes for a failure
        parent = server.process.pid
        workers = wait_for_workers(server, WORKERS)
        assert "2 worker processes on this port, up to 16 associations each" in server.stdout()

        # each worker answers on the shared socket: with the other one stopped, it must
        for number, pid in workers.items():
            others = [p for n, p in workers.items() if n != number]
            for other in others:
                os.kill(other, signal.SIGSTOP)
            try:
                echo(port)
            finally:
                for other in others:
                    os.kill(other, signal.SIGCONT)
            assert f"[worker {number}, pid {pid}] Association Received" in server.output()

        # kill -9 of a worker: logged with the signal, replaced under the same number
        os.kill(workers[1], signal.SIGKILL)
        restarted = wait_for_log(server, re.compile(r"I: Worker 1 started \(pid (\d+)\)"), 2)
        new_pid = int(restarted[-1])
        assert new_pid != workers[1]
        assert f"E: Worker 1 (pid {workers[1]}) was killed by SIGKILL" in server.output()
        wait_for_log(server, re.compile(rf"\[worker 1, pid {new_pid}\] Accepting"), 1)
        for _ in range(4):
            echo(port)

        # SIGTERM to the parent alone: it stops the workers, then exits 0
        everyone = [parent, new_pid, workers[2]]
        os.kill(parent, signal.SIGTERM)
        assert server.process.wait(timeout=WAIT) == 0, server.output()[-4000:]
        assert wait_gone(everyone) == [], "processes left running after SIGTERM"
        log = server.output()
    finally:
        server.stop()
    assert "I: SIGTERM: stopping the workers" in log
    assert f"I: Worker 1 (pid {new_pid}) exited with status 0" in log
    assert f"I: Worker 2 (pid {workers[2]}) exited with status 0" in log


def test_workers_stop_when_the_parent_is_killed(tmp_path):
    port = peers.free_port()
    server = pacsbox_server(port, "--workers", WORKERS, log_dir=tmp_path / "log").start()
    try:
        workers = wait_for_workers(server, WORKERS)
        os.kill(server.process.pid, signal.SIGKILL)  # the parent alone, not its group
        server.process.wait(timeout=WAIT)
        assert wait_gone(list(workers.values())) == [], "workers outlived their parent"
        log = server.output()
    finally:
        server.stop()
    assert log.count("The supervising pacsbox serve process is gone") == WORKERS


# --- helpers ---------------------------------------------------------------------------------


def wait_for_log(server, pattern: re.Pattern, count: int) -> list:
    """The matches of ``pattern`` in the server's log once there are ``count`` of them."""
    deadline = time.monotonic() + WAIT
    while True:
        found = pattern.findall(server.output())
        if len(found) >= count:
            return found
        assert server.running(), server.output()[-4000:]
        assert time.monotonic() < deadline, f"no {count} x {pattern.pattern!r} in the log"
        time.sleep(0.05)


def wait_for_workers(server, count: int) -> dict[int, int]:
    """{worker number: pid} once every worker accepts on the port and the parent, told so,
    has printed its banner (it does that after the workers' log lines, in its own time)."""
    ready = re.compile(r"I: \[worker (\d+), pid (\d+)\] Accepting associations on port")
    found = wait_for_log(server, ready, count)
    wait_for_log(server, re.compile(r"Test it with: "), 1)
    return {int(number): int(pid) for number, pid in found}


def wait_gone(pids: list[int]) -> list[int]:
    """The pids still running after at most WAIT seconds (a zombie counts as gone)."""
    deadline = time.monotonic() + WAIT
    while True:
        left = [pid for pid in pids if _running(pid)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def echo(port: int) -> None:
    cp = peers.run_dcmtk("echoscu", "-aec", "PACSBOX", "127.0.0.1", port, timeout=WAIT)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def _study_uid(path: Path) -> str:
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
