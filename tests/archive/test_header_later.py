"""The header document written after the C-STORE's answer (Index.add's header_later): the row
is committed without it, ``write_headers`` writes it; a row replaced meanwhile keeps its own;
a query reads the file of a row whose document is not written (a server stopped in between)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

from pydicom.dataset import Dataset

from pacsbox.archive import AddOutcome, Index
from pacsbox.archive.check import check, repair
from pacsbox.archive.header import dumps, header_document, loads
from pacsbox.archive.query import Query, QueryOptions
from pacsbox.dimse import CStoreRQ
from pacsbox.net.association import Association
from pacsbox.net.requestor import build_rq
from pacsbox.net.server import Server, ServerConfig
from pacsbox.services.qr_models import Model
from pacsbox.services.storage_scp import StorageSCP, storage_policy
from pacsbox.services.storage_scu import scan, store_files
from tests.archive.headers import EXPLICIT_LE, ct_dataset, ct_header, new_uid
from tests.archive.test_group_commit import series_index
from tests.storage_data import save_file

CT = "1.2.840.10008.5.1.4.1.1.2"


def documents(db: Path) -> dict[str, dict | None]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {
            uid: None if header is None else json.loads(header)
            for uid, header in conn.execute("SELECT sop_instance_uid, header FROM instances")
        }


def later(index: Index, header, path: str):
    return index.add(header, path=path, size=1, transfer_syntax=EXPLICIT_LE, header_later=True)


def test_the_document_is_written_after_the_commit_as_add_would_have_written_it(tmp_path):
    index, header = series_index(tmp_path)
    uids = [new_uid() for _ in range(3)]
    headers = [header(uid) for uid in uids]
    for n, h in enumerate(headers):
        assert later(index, h, f"p{n}").outcome is AddOutcome.ADDED
    db = tmp_path / "index.sqlite"
    assert [documents(db)[uid] for uid in uids] == [None] * 3  # committed without it
    assert index.write_headers() == 3
    assert index.write_headers() == 0  # nothing left to write
    written = documents(db)
    index.close()
    for uid, h in zip(uids, headers, strict=True):
        assert written[uid] == loads(dumps(header_document(h)))
        assert written[uid]["00080018"]["Value"] == [uid]


def test_closing_the_index_writes_what_is_left(tmp_path):
    index, header = series_index(tmp_path)
    uid = new_uid()
    later(index, header(uid), "a")
    index.close()
    assert documents(tmp_path / "index.sqlite")[uid]["00080018"]["Value"] == [uid]


def test_a_new_series_has_its_document_in_the_row_at_once(tmp_path):
    index = Index.open(f"sqlite:///{tmp_path / 'index.sqlite'}")
    uid = new_uid()
    later(index, ct_header(new_uid(), new_uid(), uid), "a")  # the general path
    assert documents(tmp_path / "index.sqlite")[uid] is not None
    assert index.write_headers() == 0
    index.close()


def test_a_row_replaced_before_its_document_is_written_keeps_its_own(tmp_path):
    db = f"sqlite:///{tmp_path / 'index.sqlite'}"
    first = Index.open(db)
    study, series, uid = new_uid(), new_uid(), new_uid()
    later(first, ct_header(study, series, new_uid()), "placing the series")
    later(first, ct_header(study, series, uid), "old")
    # another process replaces the instance meanwhile: its row and document in one transaction
    other = Index.open(db)
    replacing = ct_header(study, series, uid, Manufacturer="REPLACED")
    assert later(other, replacing, "new").outcome is AddOutcome.REPLACED
    other.close()
    assert first.write_headers() == 0  # the first one's document would be the wrong one
    first.close()
    assert documents(tmp_path / "index.sqlite")[uid]["00080070"]["Value"] == ["REPLACED"]


def stored_series(tmp_path: Path):
    """An index whose instances are files under tmp_path/files and have no header document
    (a server stopped between a commit and write_headers), and its locate."""
    files = tmp_path / "files"
    files.mkdir()
    index = Index.open(f"sqlite:///{tmp_path / 'index.sqlite'}")
    study, series = new_uid(), new_uid()
    for n, manufacturer in enumerate(["ACME", "OTHER"]):
        ds = ct_dataset(study, series, new_uid(), Manufacturer=manufacturer, InstanceNumber=n)
        size = save_file(ds, files / f"{n}.dcm").stat().st_size
        index.add(ct_header(study, series, ds.SOPInstanceUID, Manufacturer=manufacturer,
                            InstanceNumber=n),
                  path=f"{n}.dcm", size=size, transfer_syntax=EXPLICIT_LE)  # fmt: skip
    with index.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE instances SET header = NULL")
    return index, study, series, lambda area, path: files / path


def find(index: Index, options: QueryOptions, level: str, **keys) -> list[Dataset]:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    with index.engine.connect() as conn:
        return list(Query(Model.STUDY_ROOT, identifier, options).run(conn))


def test_a_query_reads_the_file_of_a_row_without_its_document(tmp_path):
    index, study, series, locate = stored_series(tmp_path)
    options = QueryOptions("PACSBOX", locate=locate)
    found = find(index, options, "IMAGE", SeriesInstanceUID=series, Manufacturer="AC*")
    assert [str(ds.Manufacturer) for ds in found] == ["ACME"]
    found = find(index, options, "IMAGE", SeriesInstanceUID=series, SliceThickness="")
    assert len(found) == 2 and all(ds.SliceThickness == 5 for ds in found)  # CT_small's
    found = find(index, options, "SERIES", StudyInstanceUID=study, Manufacturer="")
    assert [str(ds.Manufacturer) for ds in found] == ["OTHER"]  # the latest instance's
    # a file gone meanwhile: the row answers with its indexed attributes
    (tmp_path / "files" / "1.dcm").unlink()
    found = find(index, options, "IMAGE", SeriesInstanceUID=series, InstanceNumber="1",
                 Manufacturer="")  # fmt: skip
    assert len(found) == 1 and found[0].Manufacturer in ("", None)
    # without locate (an Index used on its own): the indexed attributes only
    assert find(index, QueryOptions("X"), "IMAGE", SeriesInstanceUID=series,
                Manufacturer="ACME") == []  # fmt: skip
    index.close()


async def test_a_storage_scp_writes_each_document_once_it_answered(tmp_path):
    """One sender: each instance's row is committed before its answer (on_stored runs
    then), its document written after it (the series' first instance: with its row)."""
    study, series = new_uid(), new_uid()
    (tmp_path / "sent").mkdir()
    uids = []
    for n in range(5):
        ds = ct_dataset(study, series, new_uid(), InstanceNumber=n)
        uids.append(ds.SOPInstanceUID)
        save_file(ds, tmp_path / "sent" / f"{n}.dcm")
    db = tmp_path / "index.sqlite"
    index = Index.open(f"sqlite:///{db}")
    (tmp_path / "out").mkdir()
    scp = StorageSCP(tmp_path / "out", index=index)
    at_commit: list[dict | None] = []
    scp.on_stored = lambda stored: at_commit.append(documents(db)[stored.sop_instance_uid])
    server = Server(ServerConfig(policy=storage_policy((EXPLICIT_LE,)), handlers={CStoreRQ: scp}))
    await server.start("127.0.0.1", 0)
    infos, skipped = scan(sorted((tmp_path / "sent").iterdir()))
    assert not skipped
    rq = build_rq(calling_ae="SCU", called_ae="SCP", proposals=[(CT, [EXPLICIT_LE])])
    async with server:
        assoc = await Association.connect("127.0.0.1", server.port, rq)
        async with contextlib.aclosing(store_files(assoc, infos)) as sending:
            statuses = [result.status async for result in sending]
        await assoc.release()
    scp.close()
    written = documents(db)
    index.close()
    assert statuses == [0] * 5
    assert [doc is None for doc in at_commit] == [False, True, True, True, True]
    assert all(written[uid]["00080018"]["Value"] == [uid] for uid in uids)


def test_check_lists_rows_without_their_document_and_repair_writes_them(tmp_path):
    index, _, series, _ = stored_series(tmp_path)
    roots = {None: tmp_path / "files"}
    report = check(index, roots)
    assert [f.kind for f in report.findings] == ["no_header", "no_header"]
    assert report.consistent  # queries read the files meanwhile
    repair(index, report, roots)
    assert [f.repair for f in report.findings] == ["header document written from the file"] * 2
    assert check(index, roots).findings == []
    found = find(index, QueryOptions("X"), "IMAGE", SeriesInstanceUID=series, Manufacturer="ACME")
    assert len(found) == 1  # from the index now, no locate needed
    index.close()


async def test_a_data_set_without_study_or_series_uid_is_refused_as_not_matching(tmp_path):
    """The index cannot place it: 0xA900 (the data set does not match its SOP class, whose
    IOD requires them) naming what is missing, not 0xA700 (out of resources)."""
    (tmp_path / "sent").mkdir()
    ds = ct_dataset(new_uid(), new_uid(), new_uid())
    del ds.StudyInstanceUID
    save_file(ds, tmp_path / "sent" / "no-study.dcm")
    index = Index.open(f"sqlite:///{tmp_path / 'index.sqlite'}")
    (tmp_path / "out").mkdir()
    scp = StorageSCP(tmp_path / "out", index=index)
    server = Server(ServerConfig(policy=storage_policy((EXPLICIT_LE,)), handlers={CStoreRQ: scp}))
    await server.start("127.0.0.1", 0)
    infos, _ = scan(sorted((tmp_path / "sent").iterdir()))
    rq = build_rq(calling_ae="SCU", called_ae="SCP", proposals=[(CT, [EXPLICIT_LE])])
    async with server:
        assoc = await Association.connect("127.0.0.1", server.port, rq)
        async with contextlib.aclosing(store_files(assoc, infos)) as sending:
            (result,) = [result async for result in sending]
        await assoc.release()
    scp.close()
    index.close()
    assert result.status == 0xA900
    assert "no Study Instance UID" in (result.error or ""), result
    assert [p.name for p in (tmp_path / "out").iterdir() if p.stat().st_size] == []
