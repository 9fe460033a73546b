"""`pacsbox dcmqrscp -c dcmqrscp.cfg` as an archive, driven by DCMTK's storescu and echoscu:
every instance in the index (SQLite next to the config by default, PostgreSQL with --db), the
AETable quotas, access rights, the duplicate policy, the tutorial's flow, and a restart.

Every test runs on both backends.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest

from pacsbox.archive import Index
from tests import peers
from tests.archive.headers import pg_admin, pg_schema_url
from tests.pacsbox_cli import PACSBOX, run_pacsbox
from tests.storage_data import build_samples, meta

pytestmark = pytest.mark.e2e

JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
A700 = "Refused: OutOfResources"  # how DCMTK's storescu -v shows 0xA700


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """The storage samples (ct, mr, rtplan: three studies; ct_jpeg_lossless: a fourth) and
    variants of ct: ``ct2`` (another instance of its study), ``ct_renamed`` (the same SOP
    Instance UID with another Patient's Name, to tell which copy the archive kept) and
    ``ct_study2`` (a study of its own, uncompressed)."""
    directory = tmp_path_factory.mktemp("samples")
    found = build_samples(directory)
    ct = pydicom.dcmread(found["ct"].path)
    ct.SOPInstanceUID = pydicom.uid.generate_uid()
    ct.file_meta.MediaStorageSOPInstanceUID = ct.SOPInstanceUID
    ct.save_as(directory / "ct2.dcm", enforce_file_format=True)
    renamed = pydicom.dcmread(found["ct"].path)
    renamed.PatientName = "Replaced^Name"
    renamed.save_as(directory / "ct_renamed.dcm", enforce_file_format=True)
    other = pydicom.dcmread(found["ct"].path)
    other.StudyInstanceUID = pydicom.uid.generate_uid()
    other.SeriesInstanceUID = pydicom.uid.generate_uid()
    other.SOPInstanceUID = pydicom.uid.generate_uid()
    other.file_meta.MediaStorageSOPInstanceUID = other.SOPInstanceUID
    other.save_as(directory / "ct_study2.dcm", enforce_file_format=True)
    paths = {name: sample.path for name, sample in found.items()}
    for name in ("ct2", "ct_renamed", "ct_study2"):
        paths[name] = directory / f"{name}.dcm"
    return paths


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """(options for pacsbox dcmqrscp, the index URL). SQLite: the default, no --db (the file
    next to the configuration file, which the tests write into tmp_path)."""
    if request.param == "sqlite":
        yield (), f"sqlite:///{tmp_path / 'pacsbox-index.sqlite'}"
        return
    schema = f"dcmqrscp_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE SCHEMA {schema}")
    try:
        yield ("--db", pg_schema_url(schema)), pg_schema_url(schema)
    finally:
        pg_admin(f"DROP SCHEMA {schema} CASCADE")


def config(tmp_path: Path, port: int, *areas) -> Path:
    """A dcmqrscp.cfg in tmp_path: ACME1 (and OTHER, admitted nowhere) in the HostTable,
    ``areas`` as (AE title, access, (maxStudies, maxBytesPerStudy)), each in
    tmp_path/<AE title> and admitting ACME1."""
    return peers.write_dcmqrscp_cfg(
        tmp_path / "dcmqrscp.cfg",
        port=port,
        storage_dir=tmp_path,
        hosts={"acme1": ("ACME1", "localhost", 1234), "other": ("OTHER", "localhost", 1235)},
        ae_table=[(ae, tmp_path / ae, access, quota, "acme1") for ae, access, quota in areas],
    )


def line_of(cfg: Path, ae_title: str) -> int:
    lines = cfg.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(ae_title + " "))


def dcmqrscp(cfg: Path, port: int, *options: str) -> peers.PeerProcess:
    argv = [PACSBOX, "dcmqrscp", "-v", "--host", "127.0.0.1", "-c", cfg, *options]
    return peers.PeerProcess(argv, port, name="pacsbox-dcmqrscp")


def storescu(port: int, called: str, *files, calling: str = "ACME1", debug: bool = False):
    """DCMTK's storescu; -d shows the C-STORE-RSP's Error Comment."""
    return peers.run_dcmtk(
        "storescu", "-d" if debug else "-v", "-aec", called, "-aet", calling, "localhost", port,
        *files,
    )  # fmt: skip


def stored(cp) -> None:
    assert cp.returncode == 0, cp.stderr
    assert "Received Store Response (Success)" in cp.stderr


def error_comment(cp) -> str:
    """The Error Comment of the C-STORE-RSP in storescu -d's dump."""
    for line in cp.stderr.splitlines():
        if "ErrorComment" in line:
            return line.split("[", 1)[1].rsplit("]", 1)[0]
    raise AssertionError(f"no Error Comment in storescu's output:\n{cp.stderr[-3000:]}")


def sop_uid(path: Path) -> str:
    return str(meta(path).MediaStorageSOPInstanceUID)


def study_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


# --- quotas ----------------------------------------------------------------------------------


def test_max_studies_deletes_the_least_recently_received_study(tmp_path, samples, db):
    options, url = db
    port = peers.free_port()
    cfg = config(tmp_path, port, ("STORE", "RW", (2, "10mb")))
    area = tmp_path / "STORE"
    with dcmqrscp(cfg, port, *options) as server:
        stored(storescu(port, "STORE", samples["ct"]))
        stored(storescu(port, "STORE", samples["mr"]))
        # the CT's study again: now the MR's study is the least recently received one
        stored(storescu(port, "STORE", samples["ct"]))
        stored(storescu(port, "STORE", samples["rtplan"]))  # a third study: the MR goes
        with Index.open(url) as index:
            assert index.get_instance(sop_uid(samples["mr"])) is None
            assert index.get_study(study_uid(samples["mr"])) is None
            kept = {s.study_instance_uid for s in index.studies_of_area("STORE")}
            assert kept == {study_uid(samples["ct"]), study_uid(samples["rtplan"])}
            assert index.stats().instances == 2
            files = {index.get_instance(sop_uid(samples[n])).path for n in ("ct", "rtplan")}
    assert {p.name for p in area.iterdir()} == files  # the MR's file is deleted too
    log = server.stderr()
    assert f"deleted its least recently received study {study_uid(samples['mr'])}" in log
    assert f"maxStudies 2, AETable line {line_of(cfg, 'STORE')}" in log


def test_max_bytes_per_study_refuses_with_a700_and_says_which_quota(tmp_path, samples, db):
    options, url = db
    port = peers.free_port()
    # CT_small is ~39 KB: one fits in 50kb, two of its study do not
    cfg = config(tmp_path, port, ("STORE", "RW", (10, "50kb")))
    with dcmqrscp(cfg, port, *options) as server:
        stored(storescu(port, "STORE", samples["ct"]))
        cp = storescu(port, "STORE", samples["ct2"], debug=True)
        assert cp.returncode != 0
        assert "0xa700" in cp.stderr.lower()
        line = line_of(cfg, "STORE")
        assert error_comment(cp) == f"study over maxBytesPerStudy 50kb, AETable line {line}"
        stored(storescu(port, "STORE", samples["mr"]))  # another study has its own 50kb
        with Index.open(url) as index:
            assert index.get_instance(sop_uid(samples["ct2"])) is None
            assert index.stats().instances == 2
    names = {p.name for p in (tmp_path / "STORE").iterdir()}
    assert not any(sop_uid(samples["ct2"]) in name for name in names)
    assert len(names) == 2
    assert "maxBytesPerStudy 50kb" in server.stderr()


def test_on_max_studies_refuse_keeps_the_old_study(tmp_path, samples, db):
    options, url = db
    port = peers.free_port()
    cfg = config(tmp_path, port, ("STORE", "RW", (1, "10mb")))
    with dcmqrscp(cfg, port, "--on-max-studies", "refuse", *options):
        stored(storescu(port, "STORE", samples["ct"]))
        cp = storescu(port, "STORE", samples["mr"], debug=True)
        assert cp.returncode != 0 and "0xa700" in cp.stderr.lower()
        line = line_of(cfg, "STORE")
        assert error_comment(cp) == f"area full: maxStudies 1, AETable line {line}"
        stored(storescu(port, "STORE", samples["ct2"]))  # the study it holds still grows
        with Index.open(url) as index:
            assert index.get_instance(sop_uid(samples["mr"])) is None
            assert index.get_instance(sop_uid(samples["ct"])) is not None
            assert index.stats().instances == 2
    assert len(list((tmp_path / "STORE").iterdir())) == 2


# --- access rights ---------------------------------------------------------------------------


def test_access_rights(tmp_path, samples, db):
    options, url = db
    port = peers.free_port()
    cfg = config(
        tmp_path,
        port,
        ("READER", "R", (10, "10mb")),
        ("BOTH", "RW", (10, "10mb")),
        ("WRITER", "W", (10, "10mb")),
    )
    with dcmqrscp(cfg, port, *options):
        cp = storescu(port, "READER", samples["ct"], debug=True)
        assert cp.returncode != 0 and "0x0124" in cp.stderr
        line = line_of(cfg, "READER")
        assert error_comment(cp) == f"area READER (line {line}) is read-only (R); make it RW"
        stored(storescu(port, "BOTH", samples["ct"]))
        stored(storescu(port, "WRITER", samples["mr"]))
        cp = storescu(port, "BOTH", samples["rtplan"], calling="OTHER")
        assert cp.returncode != 0
        assert "Calling AE Title Not Recognized" in cp.stderr
        with Index.open(url) as index:
            assert index.get_instance(sop_uid(samples["ct"])).area == "BOTH"
            assert index.get_instance(sop_uid(samples["mr"])).area == "WRITER"
            assert index.get_instance(sop_uid(samples["rtplan"])) is None
            assert index.stats().instances == 2
    assert not any((tmp_path / "READER").iterdir())
    assert len(list((tmp_path / "BOTH").iterdir())) == 1


# --- duplicates ------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["replace", "keep", "refuse"])
def test_on_duplicate(tmp_path, samples, db, policy):
    options, url = db
    port = peers.free_port()
    cfg = config(tmp_path, port, ("STORE", "RW", (10, "10mb")))
    with dcmqrscp(cfg, port, "--on-duplicate", policy, *options) as server:
        stored(storescu(port, "STORE", samples["ct"]))
        cp = storescu(port, "STORE", samples["ct_renamed"], debug=True)  # the same SOP UID
        with Index.open(url) as index:
            record = index.get_instance(sop_uid(samples["ct"]))
            study = index.get_study(record.study_instance_uid)
            assert index.stats().instances == 1
    files = list((tmp_path / "STORE").iterdir())
    assert [f.name for f in files] == [record.path]
    on_disk = str(pydicom.dcmread(files[0], stop_before_pixels=True).PatientName)
    expected = "Replaced^Name" if policy == "replace" else "CompressedSamples^CT1"
    assert (on_disk, study.patient_name) == (expected, expected)
    if policy == "refuse":
        assert cp.returncode != 0 and "0x0111" in cp.stderr
        assert error_comment(cp).endswith("stored already (--on-duplicate refuse)")
        assert f"Refusing {sop_uid(samples['ct'])}" in server.stderr()
        assert "--on-duplicate replace or keep" in server.stderr()
    else:  # kept: the archive holds the instance, which is what the sender asked for
        assert cp.returncode == 0, cp.stderr
        assert "DIMSE Status                  : 0x0000: Success" in cp.stderr


@pytest.mark.parametrize("policy", ["replace", "refuse"])
def test_each_area_keeps_its_own_copy(tmp_path, samples, db, policy):
    """As in DCMTK's dcmqrscp, each storage area holds its own copy of an instance: the same
    SOP Instance UID stored through a second called AE title is no duplicate there (not
    refused with --on-duplicate refuse), the first area keeps its copy and file, and each
    area's C-FIND and C-GET answer from its own copy. (The patient, study and series rows
    are shared by the areas, with the latest instance's attributes: a re-send with other
    patient attributes renames the study in both areas.)"""
    options, url = db
    port = peers.free_port()
    cfg = config(tmp_path, port, ("FIRST", "RW", (10, "10mb")), ("SECOND", "RW", (10, "10mb")))
    sop = sop_uid(samples["ct"])
    with dcmqrscp(cfg, port, "--on-duplicate", policy, *options) as server:
        stored(storescu(port, "FIRST", samples["ct"]))
        stored(storescu(port, "SECOND", samples["ct"]))
        for area in ("FIRST", "SECOND"):
            cp = peers.run_dcmtk(
                "findscu", "-v", "-S", "-aec", area, "-aet", "ACME1", "localhost", port,
                "-k", "QueryRetrieveLevel=IMAGE", "-k", f"StudyInstanceUID={study_uid(samples['ct'])}",
                "-k", "SeriesInstanceUID", "-k", f"SOPInstanceUID={sop}", "-k", "PatientName",
            )  # fmt: skip
            assert cp.returncode == 0, cp.stderr
            assert cp.stderr.count("Find Response: ") == 1, cp.stderr
            got = tmp_path / f"got-{area}"
            got.mkdir()
            cp = peers.run_dcmtk(
                "getscu", "-v", "-aec", area, "-aet", "ACME1", "-od", got, "localhost", port,
                "-k", "QueryRetrieveLevel=IMAGE", "-k", f"StudyInstanceUID={study_uid(samples['ct'])}",
                "-k", f"SOPInstanceUID={sop}",
            )  # fmt: skip
            assert cp.returncode == 0, cp.stderr
            assert len(list(got.iterdir())) == 1, cp.stderr
        with Index.open(url) as index:
            first, second = (index.get_instance(sop, area) for area in ("FIRST", "SECOND"))
            assert [s.instances for s in index.studies_of_area("FIRST")] == [1]
            assert [s.instances for s in index.studies_of_area("SECOND")] == [1]
        assert "Refusing" not in server.stderr()
    assert [p.name for p in (tmp_path / "FIRST").iterdir()] == [first.path]
    assert [p.name for p in (tmp_path / "SECOND").iterdir()] == [second.path]


def test_storage_commitment_answers_for_the_called_areas_copy(tmp_path, samples, db):
    """A Storage Commitment request through one area's AE title is about that area's copy:
    with the second area's file gone, the first area commits and the second does not."""
    options, _ = db
    port = peers.free_port()
    cfg = config(tmp_path, port, ("FIRST", "RW", (10, "10mb")), ("SECOND", "RW", (10, "10mb")))
    with dcmqrscp(cfg, port, *options):
        for area in ("FIRST", "SECOND"):
            stored(storescu(port, area, samples["ct"]))
        (gone,) = (tmp_path / "SECOND").glob(f"*{sop_uid(samples['ct'])}")
        gone.unlink()
        for area, code in (("FIRST", 0), ("SECOND", 1)):
            cp = run_pacsbox("stgcmtscu", "-aec", area, "-aet", "ACME1", "127.0.0.1", port,
                             samples["ct"])  # fmt: skip
            assert cp.returncode == code, cp.stderr
        assert "0x0110" in cp.stderr  # SECOND: processing failure, its file is gone


# --- the tutorial ----------------------------------------------------------------------------


def test_tutorial_flow_ends_in_the_index(tmp_path, samples, db):
    """The seed tutorial's dcmqrscp.cfg and commands: echoscu refused without -aec, refused
    with the wrong -aet (the correct reason), accepted with both; storescu's CT and its JPEG
    lossless CT (-R --propose-lossless, the server started with +xs) both indexed."""
    options, url = db
    port = peers.free_port()
    cfg = peers.tutorial_cfg(tmp_path, port)
    with dcmqrscp(cfg, port, "+xs", *options):
        cp = peers.run_dcmtk("echoscu", "-v", "localhost", port)
        assert cp.returncode != 0 and "Called AE Title Not Recognized" in cp.stderr
        cp = peers.run_dcmtk("echoscu", "-v", "localhost", port, "-aec", "ACME_STORE")
        assert cp.returncode != 0 and "Calling AE Title Not Recognized" in cp.stderr
        cp = peers.run_dcmtk(
            "echoscu", "-v", "localhost", port, "-aec", "ACME_STORE", "-aet", "ACME1"
        )
        assert cp.returncode == 0, cp.stderr
        stored(storescu(port, "ACME_STORE", samples["ct"]))
        cp = peers.run_dcmtk(
            "storescu", "-v", "-R", "--propose-lossless", "-aec", "ACME_STORE", "-aet", "ACME1",
            "localhost", port, samples["ct_jpeg_lossless"],
        )  # fmt: skip
        stored(cp)
        with Index.open(url) as index:
            ct = index.get_instance(sop_uid(samples["ct"]))
            compressed = index.get_instance(sop_uid(samples["ct_jpeg_lossless"]))
            assert index.stats().instances == 2
    assert (ct.area, compressed.area) == ("ACME_STORE", "ACME_STORE")
    assert compressed.transfer_syntax == JPEG_LOSSLESS_SV1
    database = tmp_path / "database"  # the tutorial's storage area
    assert meta(database / compressed.path).TransferSyntaxUID == JPEG_LOSSLESS_SV1
    assert (database / ct.path).is_file()


# --- restart ---------------------------------------------------------------------------------


def test_a_restart_keeps_index_and_files(tmp_path, samples, db):
    options, url = db
    port = peers.free_port()
    cfg = config(tmp_path, port, ("STORE", "RW", (2, "10mb")))
    with dcmqrscp(cfg, port, *options):
        stored(storescu(port, "STORE", samples["ct"]))
        stored(storescu(port, "STORE", samples["mr"]))
    # the restarted server knows what the first one stored: the duplicate is refused, and
    # a third study deletes the oldest of the two it finds
    with dcmqrscp(cfg, port, "--on-duplicate", "refuse", *options):
        with Index.open(url) as index:
            assert index.stats().instances == 2
        assert storescu(port, "STORE", samples["mr"]).returncode != 0
        stored(storescu(port, "STORE", samples["rtplan"]))
        with Index.open(url) as index:
            assert index.get_instance(sop_uid(samples["ct"])) is None
            paths = {index.get_instance(sop_uid(samples[n])).path for n in ("mr", "rtplan")}
    assert {p.name for p in (tmp_path / "STORE").iterdir()} == paths


# --- the index ---------------------------------------------------------------------------------


def test_an_index_that_cannot_be_created_is_one_line_that_says_to_pass_db(tmp_path):
    port = peers.free_port()
    cfg = config(tmp_path, port, ("STORE", "RW", (2, "10mb")))
    (tmp_path / "pacsbox-index.sqlite").mkdir()  # where the default index would go
    cp = run_pacsbox("dcmqrscp", "-c", cfg)
    assert cp.returncode == 1
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1, cp.stderr
    assert "pacsbox-index.sqlite" in lines[0] and "--db" in lines[0]


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.parametrize("when_full", ["delete-oldest", "refuse"])
def test_concurrent_new_studies_keep_max_studies(tmp_path, samples, db, when_full):
    """Four storescu at once, each with a study of its own, into an area of maxStudies 2:
    the check and the add are one step per instance, so the area ends with 2 studies (all
    four stored and two deleted, or two stored and two refused)."""
    options, url = db
    port = peers.free_port()
    cfg = config(tmp_path, port, ("STORE", "RW", (2, "10mb")))
    names = ("ct", "mr", "rtplan", "ct_study2")
    with dcmqrscp(cfg, port, "--on-max-studies", when_full, *options) as server:
        with ThreadPoolExecutor(len(names)) as pool:
            results = list(pool.map(lambda n: storescu(port, "STORE", samples[n]), names))
        with Index.open(url) as index:
            held = index.studies_of_area("STORE")
            paths = {
                record.path
                for record in (index.get_instance(sop_uid(samples[n])) for n in names)
                if record is not None
            }
    succeeded = sum(cp.returncode == 0 for cp in results)
    assert succeeded == (4 if when_full == "delete-oldest" else 2), server.stderr()[-4000:]
    assert len(held) == 2 and len(paths) == 2
    assert {p.name for p in (tmp_path / "STORE").iterdir()} == paths
