"""The storage SCP's temp files (``.incoming-<pid>-<n>.part``) after a kill -9: a server
restarted with the killed one's pid (in a container the pid is the same at every start) meets
the names it left behind, and so may a server on another host sharing the storage root. A
name that is taken is skipped; it must not fail the C-STORE."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pacsbox.services import storage_scp
from pacsbox.services.storage_scp import create_temp


def _number(path) -> int:
    return int(re.fullmatch(r"\.incoming-\d+-(\d+)\.part", os.path.basename(path)).group(1))


def test_names_left_by_a_killed_process_with_our_pid_are_skipped(tmp_path):
    path, fd = create_temp(tmp_path)
    os.close(fd)
    pid, n = os.getpid(), _number(path)
    left = [tmp_path / f".incoming-{pid}-{k}.part" for k in range(n + 1, n + 40)]
    for leftover in left:
        leftover.write_bytes(b"half a data set")  # what a killed server leaves
    path, fd = create_temp(tmp_path)
    os.close(fd)
    assert Path(path) not in left and os.stat(path).st_size == 0
    assert all(leftover.read_bytes() == b"half a data set" for leftover in left)


def test_a_folder_of_taken_names_is_an_error_that_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(storage_scp, "_TEMP_ATTEMPTS", 3)
    path, fd = create_temp(tmp_path)
    os.close(fd)
    pid, n = os.getpid(), _number(path)
    for k in range(n + 1, n + 4):
        (tmp_path / f".incoming-{pid}-{k}.part").touch()
    try:
        create_temp(tmp_path)
    except FileExistsError as exc:
        assert ".incoming-" in str(exc) and "stopped" in str(exc)
    else:
        raise AssertionError("create_temp found a free name where none was")
