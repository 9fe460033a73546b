"""The instance row of a known series goes straight to SQLite's cursor (_DriverInsert): what it
stores must be what SQLAlchemy's execute stores, and its errors SQLAlchemy's."""

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


def test_a_series_gone_meanwhile_is_sqlalchemys_integrity_error_and_a_retry(tmp_path):
    db = tmp_path / "index.sqlite"
    index = Index.open(f"sqlite:///{db}")
    study, series_uid = new_uid(), new_uid()
    index.add(ct_header(study, series_uid, new_uid()), path="a", size=1,
              transfer_syntax=EXPLICIT_LE)  # fmt: skip
    with sqlite3.connect(db) as other:  # another process removes the series (no instances)
        other.execute("PRAGMA foreign_keys = OFF")
        other.execute(str(delete(series).compile(compile_kwargs={"literal_binds": True})))
    result = index.add(ct_header(study, series_uid, new_uid()), path="b", size=1,
                       transfer_syntax=EXPLICIT_LE)  # fmt: skip
    assert result.outcome is AddOutcome.ADDED  # placed again from the top, series re-created
    assert index.stats().series == 1
    index.close()
