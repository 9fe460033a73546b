"""SQLite's WAL checkpoints run in the index's own thread, off the C-STORE's path, and the WAL
stays bounded through a long burst of adds (pacsbox.archive.index._Checkpointer)."""

from __future__ import annotations

import sqlite3
import threading

from pacsbox.archive import Index
from pacsbox.archive import index as index_module
from tests.archive.headers import EXPLICIT_LE, ct_header, new_uid


def test_the_wal_stays_bounded_and_nothing_is_lost(tmp_path, monkeypatch):
    monkeypatch.setattr(index_module._Checkpointer, "EVERY", 5)
    monkeypatch.setattr(index_module._Checkpointer, "LIMIT", 40)
    database = tmp_path / "index.sqlite"
    wal = tmp_path / "index.sqlite-wal"
    index = Index.open(f"sqlite:///{database}")
    study, series = new_uid(), new_uid()
    largest = 0
    uids = []
    try:
        with index.engine.connect() as conn:  # the index's connections leave checkpoints alone
            raw = conn.connection.driver_connection
            assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        for n in range(400):
            uids.append(new_uid())
            index.add(ct_header(study, series, uids[-1]), path=f"f/{n}", size=1000,
                      transfer_syntax=EXPLICIT_LE)  # fmt: skip
            largest = max(largest, wal.stat().st_size)
        checkpointer = index._checkpointer
        assert checkpointer is not None and checkpointer._thread.is_alive()
    finally:
        index.close()
    # without checkpoints the WAL would hold every page the 400 adds wrote (more than the
    # database file); it went back to its start instead
    assert largest < database.stat().st_size / 4
    assert not checkpointer._thread.is_alive()
    assert "pacsbox-checkpoint" not in {t.name for t in threading.enumerate()}
    with sqlite3.connect(database) as conn:
        stored = {row[0] for row in conn.execute("SELECT sop_instance_uid FROM instances")}
    assert stored == set(uids)


def test_only_sqlite_files_have_a_checkpointer():
    from sqlalchemy.engine import make_url

    for url in ("sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        assert index_module._Checkpointer.for_url(make_url(url), 1.0) is None
