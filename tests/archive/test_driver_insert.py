"""The instance row of a known series goes straight to SQLite's driver (Index._add_placed, with
_DriverInsert's statement): what it stores must be what SQLAlchemy stores, and whatever goes
wrong there must leave the add to SQLAlchemy's general path, with nothing committed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from sqlalchemy import delete

from pacsbox.archive import AddOutcome, Index
from pacsbox.archive.schema import series
from tests.archive.headers import EXPLICIT_LE, ct_header, new_uid

COLUMNS = "sop_instance_uid, sop_class_uid, instance_number, transfer_syntax, path, size, " \
    "typeof(received_at), length(received_at), calling_ae, area, header, series_fk"  # fmt: skip


def stored(path: Path, uid: str) -> tuple:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT {COLUMNS} FROM instances WHERE sop_instance_uid = ?",
                            (uid,)).fetchone()  # fmt: skip


def test_rows_through_the_driver_are_the_rows_sqlalchemy_writes(tmp_path):
    db = tmp_path / "index.sqlite"
    index = Index.open(f"sqlite:///{db}")
    assert index._instance_rows.sql is not None  # SQLite: the driver path is on
    study, series_uid = new_uid(), new_uid()
    uids = [new_uid() for _ in range(3)]
    for n, uid in enumerate(uids):  # the first through SQLAlchemy, the others through the driver
        header = ct_header(study, series_uid, uid, InstanceNumber=7)
        result = index.add(header, path="same", size=5, transfer_syntax=EXPLICIT_LE,
                           calling_ae="AE", area="A")  # fmt: skip
        assert result.outcome is AddOutcome.ADDED, n
    index.close()
    rows = [list(stored(db, uid)) for uid in uids]
    for row, uid in zip(rows, uids, strict=True):
        header = json.loads(row[10])
        assert header.pop("00080018")["Value"] == [uid]
        row[10] = header
    first = rows[0]
    for row in rows[1:]:
        assert row[1:] == first[1:], "a column differs between the two ways in"


def placed_series(tmp_path: Path, **open_options):
    """An index on a SQLite file that holds one instance of a new series, so that the next
    ones of the series take the driver path; and ``add(uid, path, **options)``, which adds
    an instance of that series."""
    db = tmp_path / "index.sqlite"
    index = Index.open(f"sqlite:///{db}", **open_options)
    study, series_uid = new_uid(), new_uid()

    def add(uid: str, path: str = "b", **options):
        header = ct_header(study, series_uid, uid)
        return index.add(header, path=path, size=1, transfer_syntax=EXPLICIT_LE, **options)

    add(new_uid(), "a")
    return db, index, add


def test_a_series_gone_meanwhile_is_placed_again_from_the_top(tmp_path):
    db, index, add = placed_series(tmp_path)
    with sqlite3.connect(db) as other:  # another process removes the series (no instances)
        other.execute("PRAGMA foreign_keys = OFF")
        other.execute(str(delete(series).compile(compile_kwargs={"literal_binds": True})))
    result = add(new_uid())
    assert result.outcome is AddOutcome.ADDED  # placed again from the top, series re-created
    assert index.stats().series == 1
    index.close()


def test_a_known_series_is_one_driver_transaction_committed_before_add_returns(tmp_path):
    db, index, add = placed_series(tmp_path)
    general = index._write

    def refuse(work):
        raise AssertionError("took SQLAlchemy's transaction")

    index._write = refuse
    placed: list[str] = []
    uid = new_uid()
    result = add(uid, before_commit=lambda: placed.append("renamed"))
    assert (result.outcome, result.indexed_path, placed) == (AddOutcome.ADDED, "b", ["renamed"])
    assert stored(db, uid) is not None  # another connection sees it: committed
    index._write = general
    index.close()


def test_before_commit_failing_rolls_the_row_back_and_raises(tmp_path):
    db, index, add = placed_series(tmp_path)

    def disk_full():
        raise OSError(28, "No space left on device")

    uid = new_uid()
    try:
        add(uid, before_commit=disk_full)
    except OSError as exc:
        assert exc.errno == 28
    else:
        raise AssertionError("the OSError did not propagate")
    assert stored(db, uid) is None
    assert not index._conn.connection.driver_connection.in_transaction
    assert add(uid).outcome is AddOutcome.ADDED and stored(db, uid) is not None
    index.close()


def test_an_indexed_uid_goes_to_the_general_path_that_applies_the_policy(tmp_path):
    db, index, add = placed_series(tmp_path)
    uid = new_uid()
    add(uid, "b")
    kept = add(uid, "c", on_duplicate="keep")
    assert (kept.outcome, kept.indexed_path) == (AddOutcome.KEPT, "b")
    replaced = add(uid, "c")
    assert (replaced.outcome, replaced.old_path) == (AddOutcome.REPLACED, "b")
    assert stored(db, uid)[4] == "c"
    assert index.stats().instances == 2
    index.close()


def test_a_writer_holding_the_database_sends_the_add_to_the_general_path(tmp_path):
    """BEGIN IMMEDIATE that finds another writer (past the busy timeout) commits nothing on
    the driver path: the general path waits and retries as it always did."""
    db, index, add = placed_series(tmp_path, busy_timeout=0.05)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    calls = []
    general = index._write

    def counted(work):
        calls.append(1)
        other.execute("ROLLBACK")  # the other writer is done by the time the retry runs
        return general(work)

    index._write = counted
    uid = new_uid()
    assert add(uid).outcome is AddOutcome.ADDED and calls == [1]
    other.close()
    index._write = general
    index.close()
