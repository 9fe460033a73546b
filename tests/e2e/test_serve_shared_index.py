"""Two `pacsbox serve` processes on one index and one storage root, started at the same moment
on an empty database, each sent a study by DCMTK's storescu at the same time (some instances
to one server, some to the other, some to both): every acknowledged instance is indexed once
with its file, and the study, its series and its patient are not duplicated. On PostgreSQL
(servers on several machines) and on SQLite (several processes on one machine)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import peers
from tests.e2e.archive_state import Storescu, archive_state, index_db, write_study
from tests.pacsbox_cli import pacsbox_server

pytestmark = pytest.mark.e2e

__all__ = ["index_db"]  # the fixture, used by name

BOTH, ONLY_FIRST, ONLY_SECOND = 120, 40, 40


def test_two_servers_share_one_index_and_storage_root(tmp_path, index_db):
    flags, url = index_db
    study = write_study(tmp_path / "study", BOTH + ONLY_FIRST + ONLY_SECOND)
    both = [i.path for i in study[:BOTH]]
    first = both + [i.path for i in study[BOTH : BOTH + ONLY_FIRST]]
    second = both + [i.path for i in study[BOTH + ONLY_FIRST :]]
    data = tmp_path / "data"
    servers = [
        pacsbox_server(peers.free_port(), *flags, data=data, log_dir=tmp_path / f"log{n}")
        for n in range(2)
    ]
    try:
        with ThreadPoolExecutor(2) as pool:  # both create the schema at once
            list(pool.map(lambda server: server.start(), servers))
        senders = [Storescu(s.port, f) for s, f in zip(servers, (first, second), strict=True)]
        status = [sender.finish() for sender in senders]
    finally:
        for server in servers:
            server.__exit__(None, None, None)  # raises if it died on its own
    for sender, code in zip(senders, status, strict=True):
        assert code == 0, sender.output()[-4000:]
    logs = [server.output() for server in servers]
    state = archive_state(url, data)

    print(f"\n{state.summary()}")
    acknowledged = {path for sender in senders for path in sender.acknowledged}
    assert acknowledged == set(first) | set(second)
    assert len(senders[0].acknowledged) == len(first)
    assert len(senders[1].acknowledged) == len(second)
    assert set(state.rows) == {i.sop_instance_uid for i in study}
    assert state.duplicated_uids == []
    assert (state.patients, state.studies, state.series) == (1, 1, 2)
    assert state.rows_without_file == [] and state.rows_with_wrong_size == []
    assert state.files_without_row == []
    assert state.temp_files == []  # a server stopped cleanly removes its spare temp file
    for log in logs:
        assert "E: " not in log and "Cannot" not in log, log[-4000:]
