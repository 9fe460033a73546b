"""The storage SCP's temp file when the disk is full (/dev/full stands for it): the failed
write is kept, the temp file removed at once, the rest of the data set dropped; the C-STORE's
Error Comment then says the disk is full, whichever layer found it."""

from __future__ import annotations

import errno
import os
import sqlite3

from sqlalchemy.exc import OperationalError

from pacsbox.services.storage_scp import TempFileSink, create_temp, resource_comment


def full_sink(tmp_path) -> TempFileSink:
    """A sink whose temp file exists in tmp_path but whose writes go to /dev/full."""
    path, fd = create_temp(tmp_path)
    os.close(fd)
    return TempFileSink((path, os.open("/dev/full", os.O_WRONLY)), b"meta" * 32)


def test_a_write_that_does_not_fit_removes_the_temp_file_and_drops_the_rest(tmp_path):
    sink = full_sink(tmp_path)
    sink.write(memoryview(bytes(100_000)))  # beyond the 64 KB buffer: written, and fails
    assert sink.error is not None and sink.error.errno == errno.ENOSPC
    assert not os.path.exists(sink.path)
    sink.write(memoryview(bytes(1000)))  # the rest of the data set arrives: dropped
    assert sink.length == 101_000
    sink.close()
    sink.discard()


def test_a_small_write_that_does_not_fit_fails_at_once_nothing_is_buffered(tmp_path):
    sink = full_sink(tmp_path)
    sink.write(memoryview(bytes(1000)))
    assert sink.error is not None and sink.error.errno == errno.ENOSPC
    assert not os.path.exists(sink.path)
    sink.close()  # nothing left to write or to close
    assert sink.error.errno == errno.ENOSPC


def test_an_empty_data_set_writes_its_meta_at_close_and_fails_there(tmp_path):
    sink = full_sink(tmp_path)
    assert sink.error is None  # the meta information waits for the first fragment
    sink.close()
    assert sink.error is not None and sink.error.errno == errno.ENOSPC
    assert not os.path.exists(sink.path)


def test_the_error_comment_says_the_disk_is_full_whoever_found_it():
    no_space = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    sqlite_full = OperationalError(
        "INSERT", {}, sqlite3.OperationalError("database or disk is full")
    )
    for exc, what in ((no_space, "cannot write file"), (sqlite_full, "index unavailable")):
        comment = resource_comment(exc, what)
        assert comment.startswith(f"disk full: {what}") and len(comment) <= 64, comment
    denied = resource_comment(OSError(errno.EACCES, "Permission denied"), "cannot create file")
    assert denied == "cannot create file: Permission denied"
