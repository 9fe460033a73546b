"""The rename that puts a received file into place (``rename_over``) tells whether a file was
there; when the index then fails, the storage SCP removes the file only if it was its own
(a re-sent instance's earlier file keeps its place: its row is still there)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from pacsbox.archive import Index
from pacsbox.dimse import CStoreRQ
from pacsbox.net.association import Association
from pacsbox.net.requestor import build_rq
from pacsbox.net.server import Server, ServerConfig
from pacsbox.services import storage_scp
from pacsbox.services.storage_scp import StorageSCP, rename_over, storage_policy
from pacsbox.services.storage_scu import scan, store_files
from tests.archive.headers import EXPLICIT_LE, ct_dataset, new_uid
from tests.storage_data import save_file

CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(params=["renameat2", "stat"])
def way(request, monkeypatch):
    """Both ways rename_over works: Linux's renameat2, and a stat where there is none."""
    if request.param == "stat":
        monkeypatch.setattr(storage_scp, "_noreplace", False)
    return request.param


def test_rename_over_says_whether_a_file_was_there(tmp_path, way):
    (tmp_path / "a").write_text("first")
    (tmp_path / "b").write_text("second")
    assert rename_over(str(tmp_path / "a"), str(tmp_path / "target")) is True
    assert rename_over(str(tmp_path / "b"), str(tmp_path / "target")) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]
    assert (tmp_path / "target").read_text() == "second"


def test_rename_over_raises_naming_both_files(tmp_path, way):
    with pytest.raises(FileNotFoundError) as raised:
        rename_over(str(tmp_path / "gone"), str(tmp_path / "target"))
    assert (raised.value.filename, raised.value.filename2) == (
        str(tmp_path / "gone"),
        str(tmp_path / "target"),
    )


class FailingIndex:
    """A real index whose transaction fails after the file was moved into place (the disk
    filled up at COMMIT, say), while ``failing``."""

    def __init__(self, index: Index) -> None:
        self.index, self.failing = index, False

    def add(self, header, **arguments):
        if not self.failing:
            return self.index.add(header, **arguments)
        arguments["before_commit"]()
        raise sqlite3.OperationalError("database or disk is full")

    def __getattr__(self, name):
        return getattr(self.index, name)


async def send(server: Server, files: list[Path]) -> list[int]:
    infos, skipped = scan(files)
    assert not skipped
    rq = build_rq(calling_ae="SCU", called_ae="SCP", proposals=[(CT, [EXPLICIT_LE])])
    assoc = await Association.connect("127.0.0.1", server.port, rq)
    async with contextlib.aclosing(store_files(assoc, infos)) as sending:
        statuses = [result.status async for result in sending]
    await assoc.release()
    return statuses


async def test_a_failed_index_removes_a_new_file_and_leaves_a_replaced_one(tmp_path, way):
    study, series = new_uid(), new_uid()
    sent = tmp_path / "sent"
    sent.mkdir()
    first = save_file(ct_dataset(study, series, new_uid(), InstanceNumber=1), sent / "1.dcm")
    again = save_file(ct_dataset(study, series, new_uid(), InstanceNumber=2), sent / "2.dcm")
    index = FailingIndex(Index.open(f"sqlite:///{tmp_path / 'index.sqlite'}"))
    out = tmp_path / "out"
    out.mkdir()
    scp = StorageSCP(out, index=index)
    server = Server(ServerConfig(policy=storage_policy((EXPLICIT_LE,)), handlers={CStoreRQ: scp}))
    await server.start("127.0.0.1", 0)
    async with server:
        assert await send(server, [again]) == [0]  # stored and indexed
        stored = {p.name: p.read_bytes() for p in out.rglob("CT.*")}
        index.failing = True
        assert await send(server, [first, again]) == [0xA700, 0xA700]
    scp.close()
    index.close()
    # the new instance's file went with its row; the re-sent one's file stays where its row
    # (still there) points: `pacsbox check` reconciles a content that changed
    assert {p.name for p in out.rglob("CT.*")} == set(stored)
