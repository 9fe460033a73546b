"""Group commit: the C-STOREs of several associations that complete in one turn of the event
loop share one index transaction (Index.add_all), and each is answered once it is committed;
whatever goes wrong with one of them is that one's answer, not the others'."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from pacsbox.archive import AddOutcome, HeaderError, Index, NewInstance
from pacsbox.dimse import CStoreRQ
from pacsbox.net.association import LATER, Association
from pacsbox.net.requestor import build_rq
from pacsbox.net.server import Server, ServerConfig
from pacsbox.services.storage_scp import StorageSCP, storage_policy
from pacsbox.services.storage_scu import scan, store_files
from pacsbox.ul.negotiation import AgreedContext
from tests.archive.headers import EXPLICIT_LE, ct_dataset, ct_header, encode, new_uid
from tests.storage_data import save_file

CT = "1.2.840.10008.5.1.4.1.1.2"


def rows(db: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT sop_instance_uid, path FROM instances"))


def counting(index: Index) -> list[int]:
    """The sizes of the driver transactions ``index`` commits from now on."""
    sizes: list[int] = []
    real = index._add_placed

    def spy(entries, later=None):
        done = real(entries, later)
        if done is not None:
            sizes.append(len(entries))
        return done

    index._add_placed = spy  # type: ignore[method-assign]
    return sizes


def new(header, path: str, before_commit=None) -> NewInstance:
    return NewInstance(header, path=path, size=1, transfer_syntax=EXPLICIT_LE,
                       before_commit=before_commit)  # fmt: skip


def series_index(tmp_path: Path):
    """An index holding one instance of a series (so the next ones take the driver path),
    and a function making headers of more instances of that series."""
    index = Index.open(f"sqlite:///{tmp_path / 'index.sqlite'}")
    study, series_uid = new_uid(), new_uid()
    first = index.add(ct_header(study, series_uid, new_uid()), path="first", size=1,
                      transfer_syntax=EXPLICIT_LE)  # fmt: skip
    assert first.outcome is AddOutcome.ADDED
    return index, lambda uid=None: ct_header(study, series_uid, uid or new_uid())


def test_instances_of_known_series_share_one_transaction(tmp_path):
    index, header = series_index(tmp_path)
    sizes = counting(index)
    placed: list[str] = []
    adds = [new(header(), f"p{n}", lambda n=n: placed.append(f"p{n}")) for n in range(4)]
    results = index.add_all(adds)
    index.close()
    assert [r.outcome for r in results] == [AddOutcome.ADDED] * 4
    assert sizes == [4]  # one commit for the four
    assert placed == ["p0", "p1", "p2", "p3"]  # each file placed inside it
    assert sorted(rows(tmp_path / "index.sqlite").values()) == ["first", "p0", "p1", "p2", "p3"]


def test_a_header_that_cannot_be_placed_fails_alone(tmp_path):
    index, header = series_index(tmp_path)
    broken = header()
    del broken.elements[0x0020000E]  # no Series Instance UID
    results = index.add_all([new(header(), "a"), new(broken, "b"), new(header(), "c")])
    index.close()
    assert isinstance(results[1], HeaderError)
    assert results[0].outcome is results[2].outcome is AddOutcome.ADDED
    assert sorted(rows(tmp_path / "index.sqlite").values()) == ["a", "c", "first"]


def test_the_same_instance_twice_in_a_batch_is_added_then_replaced(tmp_path):
    index, header = series_index(tmp_path)
    uid = new_uid()
    results = index.add_all([new(header(uid), "one"), new(header(uid), "two")])
    index.close()
    assert [r.outcome for r in results] == [AddOutcome.ADDED, AddOutcome.REPLACED]
    assert rows(tmp_path / "index.sqlite")[uid] == "two"


def test_a_failing_before_commit_fails_its_instance_only(tmp_path):
    index, header = series_index(tmp_path)
    calls: list[str] = []

    def place(name: str, fail: bool = False):
        def run() -> None:
            calls.append(name)
            if fail:
                raise OSError(28, "No space left on device")

        return run

    adds = [new(header(), "a", place("a")), new(header(), "b", place("b", fail=True)),
            new(header(), "c", place("c"))]  # fmt: skip
    results = index.add_all(adds)
    index.close()
    assert isinstance(results[1], OSError)
    assert results[0].outcome is results[2].outcome is AddOutcome.ADDED
    assert sorted(rows(tmp_path / "index.sqlite").values()) == ["a", "c", "first"]
    # rolled back at b on the driver path, again on the general path, then each on its own
    assert calls == ["a", "b", "a", "b", "a", "b", "c"]


def test_a_new_series_in_the_batch_takes_the_general_path_together(tmp_path):
    index, header = series_index(tmp_path)
    sizes = counting(index)
    transactions = []
    real = index._write
    index._write = lambda work: transactions.append(work) or real(work)  # type: ignore[method-assign]
    study, series_uid = new_uid(), new_uid()  # not in the index
    adds = [new(header(), "a"), new(ct_header(study, series_uid, new_uid()), "b"),
            new(header(), "c"), new(ct_header(study, series_uid, new_uid()), "d")]  # fmt: skip
    results = index.add_all(adds)
    assert all(r.outcome is AddOutcome.ADDED for r in results)
    assert sizes == [] and len(transactions) == 1  # one SQLAlchemy transaction for the four
    assert len(rows(tmp_path / "index.sqlite")) == 5
    # the new series is placed now: its next instance takes the driver path
    index.add(ct_header(study, series_uid, new_uid()), path="e", size=1,
              transfer_syntax=EXPLICIT_LE)  # fmt: skip
    assert sizes == [1]
    index.close()


def write_series(directory: Path, count: int, study: str, series: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        ds = ct_dataset(study, series, generate_uid(), InstanceNumber=n + 1)
        paths.append(save_file(ds, directory / f"{n:03d}.dcm", EXPLICIT_LE))
    return paths


@pytest.mark.parametrize("senders", [1, 4])
async def test_senders_at_once_are_each_answered_after_their_commit(tmp_path, senders):
    study, series = generate_uid(), generate_uid()
    files = [write_series(tmp_path / f"in{n}", 12, study, series) for n in range(senders)]
    db = tmp_path / "index.sqlite"
    index = Index.open(f"sqlite:///{db}")
    sizes = counting(index)
    (tmp_path / "out").mkdir()
    scp = StorageSCP(tmp_path / "out", index=index)
    config = ServerConfig(policy=storage_policy((EXPLICIT_LE,)), handlers={CStoreRQ: scp})
    server = Server(config)
    await server.start("127.0.0.1", 0)

    async def send(paths: list[Path]) -> list:
        infos, skipped = scan(paths)
        assert not skipped
        rq = build_rq(calling_ae="SCU", called_ae="SCP", proposals=[(CT, [EXPLICIT_LE])])
        assoc = await Association.connect("127.0.0.1", server.port, rq)
        results = []
        async with contextlib.aclosing(store_files(assoc, infos)) as sending:
            async for result in sending:  # answered: the row is committed (another reader)
                results.append((result, result.sop_instance_uid in rows(db)))
        await assoc.release()
        return results

    async with server:
        results = await asyncio.wait_for(asyncio.gather(*(send(p) for p in files)), 60)
    scp.close()
    index.close()
    answered = [r for per_sender in results for r in per_sender]
    assert len(answered) == 12 * senders
    assert all(r.status == 0 for r, _ in answered), [r.status for r, _ in answered]
    assert all(indexed for _, indexed in answered)
    stored = rows(db)
    assert len(stored) == 12 * senders
    for path in stored.values():
        assert (tmp_path / "out" / path).is_file()
    if senders == 1:
        assert set(sizes) == {1}  # alone: answered at once, one row a transaction
    else:
        assert max(sizes) > 1, sizes  # some answers waited for a shared commit


async def test_a_sender_that_aborts_before_its_answer_leaves_row_and_file_together(
    tmp_path, caplog
):
    """B aborts right after its data set, while A keeps its association open (so B's store
    waits for the turn's group commit): B's instance is committed with its file or not at
    all, the server logs no error, and A is served on."""
    study, series = generate_uid(), generate_uid()
    db = tmp_path / "index.sqlite"
    index = Index.open(f"sqlite:///{db}")
    (tmp_path / "out").mkdir()
    scp = StorageSCP(tmp_path / "out", index=index)
    server = Server(ServerConfig(policy=storage_policy((EXPLICIT_LE,)), handlers={CStoreRQ: scp}))
    await server.start("127.0.0.1", 0)
    rq = build_rq(calling_ae="SCU", called_ae="SCP", proposals=[(CT, [EXPLICIT_LE])])

    async def store(assoc: Association, sop: str) -> int:
        request = CStoreRQ(message_id=assoc.next_message_id(), affected_sop_class_uid=CT,
                           affected_sop_instance_uid=sop)  # fmt: skip
        data = encode(ct_dataset(study, series, sop))
        response, _ = await assoc.request_one(assoc.context_for(CT).context_id, request, data)
        return response.status

    async with server:
        a = await Association.connect("127.0.0.1", server.port, rq)
        assert await store(a, generate_uid()) == 0
        b = await Association.connect("127.0.0.1", server.port, rq)
        assert await store(b, generate_uid()) == 0  # B has stored here: A now shares commits
        sop = generate_uid()
        request = CStoreRQ(message_id=b.next_message_id(), affected_sop_class_uid=CT,
                           affected_sop_instance_uid=sop)  # fmt: skip
        await b.send(b.context_for(CT).context_id, request, encode(ct_dataset(study, series, sop)))
        b.abort()
        for _ in range(3):
            assert await store(a, generate_uid()) == 0
        await a.release()
    scp.close()
    index.close()
    stored = rows(db)
    assert len(stored) in (5, 6)  # B's last one committed, or not at all
    for path in stored.values():
        assert (tmp_path / "out" / path).is_file()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [], caplog.text  # the peer's abort is the peer's: a warning


class FakeAssociation:
    """What StorageSCP.answer uses of an association: its request, whether it is open, and
    answer_later (the responses given to it are kept)."""

    def __init__(self, loop) -> None:
        self.rq = build_rq(calling_ae="SCU", called_ae="SCP", proposals=[(CT, [EXPLICIT_LE])])
        self.closed = loop.create_future()
        self.responses: list = []

    def answer_later(self):
        return self.responses.append


async def test_closing_the_scp_commits_what_waits_for_the_group_commit(tmp_path):
    """A server stopping between a C-STORE's arrival and the next turn of the loop: close()
    commits the waiting instance (and answers it, if anyone can still hear)."""
    loop = asyncio.get_running_loop()
    db = tmp_path / "index.sqlite"
    index = Index.open(f"sqlite:///{db}")
    (tmp_path / "out").mkdir()
    scp = StorageSCP(tmp_path / "out", index=index)
    other, sender = FakeAssociation(loop), FakeAssociation(loop)
    context = AgreedContext(1, CT, EXPLICIT_LE)
    sop = generate_uid()
    request = CStoreRQ(message_id=1, affected_sop_class_uid=CT, affected_sop_instance_uid=sop)
    scp.open_sink(other, context, request).discard()  # another association stores here
    sink = scp.open_sink(sender, context, request)
    sink.write(memoryview(encode(ct_dataset(generate_uid(), generate_uid(), sop))))
    assert scp.answer(sender, context, request, sink) is LATER
    assert sender.responses == [] and rows(db) == {}
    scp.close()  # before the loop's next turn
    assert [r.status for r in sender.responses] == [0]
    assert (tmp_path / "out" / rows(db)[sop]).is_file()
    await asyncio.sleep(0)  # the turn comes: nothing is left for it
    assert len(sender.responses) == 1
    index.close()
