"""A bounded soak (issue 9): four senders (two DCMTK storescu, two pacsbox storescu) store into
`pacsbox serve` while two clients query (findscu) and retrieve (getscu, and movescu to a DCMTK
storescp) over and over. At the end every instance acknowledged is in the index and on disk:
byte for byte as sent where pacsbox storescu sent the file's own bytes, the same instance and
Pixel Data where DCMTK's storescu re-encoded it. The server is still up. Loops are bounded by
counts, never by time."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from pacsbox.archive import Index
from tests import peers
from tests.pacsbox_cli import pacsbox_server, run_pacsbox
from tests.storage_data import build_samples, dataset_bytes

pytestmark = pytest.mark.e2e

SENDERS, FILES_PER_SENDER, ROUNDS = 4, 250, 4


def make_files(source: Path, directory: Path, count: int) -> list[Path]:
    directory.mkdir(parents=True)
    ds = dcmread(source)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    paths = []
    for n in range(count):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = n + 1
        path = directory / f"{n:04d}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def test_senders_queries_and_retrieves_at_once_lose_nothing(tmp_path):
    samples = build_samples(tmp_path / "samples")
    sets = [
        make_files(samples["ct"].path, tmp_path / f"sender{i}", FILES_PER_SENDER)
        for i in range(SENDERS)
    ]
    receiver_port, port = peers.free_port(), peers.free_port()
    config = tmp_path / "pacs.toml"
    config.write_text(f'[peers.STORESCP]\nhost = "127.0.0.1"\nport = {receiver_port}\n')
    data = tmp_path / "data"
    failures: list[str] = []
    done = {"find": 0, "retrieve": 0}
    senders_done = threading.Event()

    def sender(files: list[Path], ours: bool) -> None:
        for _ in range(ROUNDS):  # later rounds re-send: replaced, not doubled
            if ours:  # pacsbox storescu sends the files' bytes as they are
                cp = run_pacsbox("storescu", "-q", "-aec", "PACSBOX", "127.0.0.1", port, *files,
                                 timeout=600)  # fmt: skip
            else:
                cp = peers.run_dcmtk("storescu", "-aec", "PACSBOX", "127.0.0.1", port, *files,
                                     timeout=600)  # fmt: skip
            if cp.returncode != 0:
                failures.append(f"storescu: {cp.stderr[-500:]}")

    def querier() -> None:
        for n in range(400):  # bounded; stops early once the senders are done
            if senders_done.is_set() and n > 5:
                return
            cp = peers.run_dcmtk("findscu", "-S", "-aec", "PACSBOX", "-k",
                                 "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
                                 "-k", "NumberOfStudyRelatedInstances", "127.0.0.1", port)  # fmt: skip
            if cp.returncode != 0:
                failures.append(f"findscu: {cp.stderr[-500:]}")
            done["find"] += 1

    def retriever() -> None:
        study = str(dcmread(sets[0][0], stop_before_pixels=True).StudyInstanceUID)
        out = tmp_path / "got"
        out.mkdir()
        for n in range(200):  # bounded
            if senders_done.is_set() and n > 3:
                return
            tool = ("getscu", "-od", out) if n % 2 == 0 else ("movescu", "-aem", "STORESCP")
            cp = peers.run_dcmtk(tool[0], "-S", "-aec", "PACSBOX", *tool[1:], "127.0.0.1",
                                 port, "-k", "QueryRetrieveLevel=STUDY",
                                 "-k", f"StudyInstanceUID={study}", timeout=600)  # fmt: skip
            if cp.returncode != 0:
                failures.append(f"{tool[0]}: {cp.stderr[-500:]}")
            done["retrieve"] += 1

    (tmp_path / "moved").mkdir()
    with (
        pacsbox_server(port, "--config", config, data=data) as server,
        peers.DcmtkServer("storescp", ["-od", tmp_path / "moved"], receiver_port),
    ):
        threads = [
            threading.Thread(target=sender, args=(s, i % 2 == 1)) for i, s in enumerate(sets)
        ]
        others = [threading.Thread(target=querier), threading.Thread(target=retriever)]
        for thread in threads + others:
            thread.start()
        for thread in threads:
            thread.join()
        senders_done.set()
        for thread in others:
            thread.join()
        assert server.running()
    assert not failures, failures[:3]
    assert done["find"] > 5 and done["retrieve"] > 3, done  # they ran alongside the senders
    sent = {dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for s in sets for p in s}
    verbatim = {p for i, s in enumerate(sets) if i % 2 == 1 for p in s}
    with Index.open(f"sqlite:///{data / 'index.sqlite'}") as index:
        assert index.stats().instances == len(sent) == SENDERS * FILES_PER_SENDER
        for uid, path in sent.items():
            record = index.get_instance(uid)
            assert record is not None, uid
            if path in verbatim:  # sent as its bytes: stored as those bytes
                assert dataset_bytes(data / "files" / record.path) == dataset_bytes(path), uid
                continue
            stored = dcmread(data / "files" / record.path)
            source = dcmread(path)
            # DCMTK storescu re-encodes what it sends (its own padding, syntax): compare the
            # instance, not the file's bytes
            assert stored.SOPInstanceUID == uid and stored.PixelData == source.PixelData, uid
            assert stored.InstanceNumber == source.InstanceNumber
