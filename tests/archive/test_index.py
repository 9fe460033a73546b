"""The archive index (pacsbox.archive.Index) on SQLite and PostgreSQL: what ``add`` creates,
replaces, keeps and refuses; the header as DICOM JSON; character sets; removal; migrations;
several processes writing one study at once.

Every test runs on both backends. PostgreSQL is the one at 127.0.0.1:5432 (``make peers``);
each test gets a fresh schema there, dropped afterwards. Without PostgreSQL the PostgreSQL
tests fail, saying how to install it.
"""

from __future__ import annotations

import logging
import multiprocessing
import traceback
import uuid
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydicom import dcmread
from pydicom.data import get_charset_files
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName
from sqlalchemy import event

from pacsbox.archive import (
    AddOutcome,
    ArchiveIndexError,
    HeaderError,
    Index,
    IndexStats,
    NewInstance,
    OnDuplicate,
    migrations,
)
from pacsbox.archive.schema import metadata
from pacsbox.log import log as pacsbox_log
from tests.archive.headers import (
    EXPLICIT_LE,
    ct_dataset,
    ct_header,
    encode,
    new_uid,
    parse,
    pg_admin,
    pg_schema_url,
)


class Database:
    """A fresh, empty database for one test; created on first use, inside the test, so that a
    missing PostgreSQL fails the test itself."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self._tmp_path = tmp_path
        self._schema: str | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            if self.backend == "sqlite":
                self._url = f"sqlite:///{self._tmp_path / 'index.sqlite'}"
            else:
                schema = f"test_{uuid.uuid4().hex[:16]}"
                pg_admin(f"CREATE SCHEMA {schema}")
                self._schema = schema
                self._url = pg_schema_url(schema)
        return self._url

    def open(self) -> Index:
        return Index.open(self.url)

    def drop(self) -> None:
        if self._schema is not None:
            pg_admin(f"DROP SCHEMA {self._schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path: Path):
    database = Database(request.param, tmp_path)
    yield database
    database.drop()


@pytest.fixture
def index(db: Database):
    idx = db.open()
    yield idx
    idx.close()


def add(index: Index, header: Dataset, path: str, **kw):
    return index.add(header, path=path, size=1000, transfer_syntax=EXPLICIT_LE, **kw)


# --- what add creates ------------------------------------------------------------------------


def test_patient_study_series_rows_are_created_once(index: Index):
    study, series1, series2 = new_uid(), new_uid(), new_uid()
    for n, series in enumerate([series1, series1, series1, series2, series2]):
        result = add(index, ct_header(study, series, new_uid(), InstanceNumber=n), f"f{n}")
        assert result.outcome is AddOutcome.ADDED
    assert index.stats() == IndexStats(patients=1, studies=1, series=2, instances=5)
    record = index.get_study(study)
    assert record is not None
    assert (record.patient_id, record.patient_name) == ("1CT1", "CompressedSamples^CT1")
    assert (record.number_of_series, record.number_of_instances) == (2, 5)
    assert record.modalities_in_study == ("CT",)


def test_add_returns_with_the_row_committed(db: Database):
    writer = db.open()
    reader = db.open()  # another connection (another process, as far as the database knows)
    try:
        sop = new_uid()
        add(writer, ct_header(new_uid(), new_uid(), sop), "a/1.dcm", calling_ae="MODALITY")
        record = reader.get_instance(sop)
        assert record is not None
        assert (record.path, record.size, record.calling_ae) == ("a/1.dcm", 1000, "MODALITY")
        assert record.transfer_syntax == EXPLICIT_LE
        assert record.received_at.tzinfo is not None
    finally:
        writer.close()
        reader.close()


def test_latest_instance_updates_attributes_and_patient(index: Index):
    study, series = new_uid(), new_uid()
    add(index, ct_header(study, series, new_uid(), StudyDescription="HEAD"), "1")
    add(index, ct_header(study, series, new_uid(), StudyDescription=""), "2")
    record = index.get_study(study)
    assert record is not None and record.description == "HEAD"  # empty does not erase
    add(index, ct_header(study, series, new_uid(), StudyDescription="HEAD CT"), "3")
    ds = ct_dataset(study, series, new_uid(), PatientID="P2", PatientName="Roe^Jane")
    del ds.StudyDescription
    add(index, parse(encode(ds)), "4")
    record = index.get_study(study)
    assert record is not None
    assert (record.description, record.patient_id, record.patient_name) == (
        "HEAD CT",
        "P2",
        "Roe^Jane",
    )
    assert index.stats().patients == 1  # the patient left without studies is gone


def test_a_name_back_to_an_earlier_one_is_written_again(index: Index):
    """The instances after the first of a series take the short path (one INSERT) while
    they change nothing; one that changes the name, then one that changes it back, must each
    still reach the index."""
    study, series = new_uid(), new_uid()
    for n, name in enumerate(["Doe^John", "Doe^John", "Doe^John", "Roe^Jane", "Doe^John"]):
        add(index, ct_header(study, series, new_uid(), PatientName=name), str(n))
        record = index.get_study(study)
        assert record is not None and record.patient_name == name, n


def test_add_all_commits_together_and_answers_each(index: Index):
    """Index.add_all (the storage SCP's group commit) on either database: new series, known
    ones, the same instance twice and a header that cannot be placed, in one call."""
    study, series = new_uid(), new_uid()
    add(index, ct_header(study, series, new_uid()), "known")
    twice, broken = new_uid(), ct_header(study, series, new_uid())
    del broken.elements[0x0020000D]  # no Study Instance UID
    other_study, other_series = new_uid(), new_uid()
    headers = [
        ct_header(study, series, new_uid()),
        ct_header(other_study, other_series, new_uid()),
        ct_header(study, series, twice),
        broken,
        ct_header(other_study, other_series, twice),
    ]
    placed: list[str] = []
    adds = [
        NewInstance(header, path=f"p{n}", size=10, transfer_syntax=EXPLICIT_LE,
                    before_commit=lambda n=n: placed.append(f"p{n}"))
        for n, header in enumerate(headers)
    ]  # fmt: skip
    results = index.add_all(adds)
    assert isinstance(results[3], HeaderError)
    outcomes = [r.outcome for n, r in enumerate(results) if n != 3]
    assert outcomes == [AddOutcome.ADDED, AddOutcome.ADDED, AddOutcome.ADDED, AddOutcome.REPLACED]
    assert set(placed) == {"p0", "p1", "p2", "p4"}
    record = index.get_instance(twice)
    assert record is not None and record.path == "p4"
    assert record.series_instance_uid == other_series  # moved by the later copy
    assert index.stats() == IndexStats(patients=1, studies=2, series=2, instances=4)


# --- duplicates ------------------------------------------------------------------------------


def test_a_series_another_process_removed_is_created_again(db: Database):
    """An Index remembers where it put a series (one INSERT for its next instances); when
    another process removed that series meanwhile, the next add still lands, whole."""
    writer, other = db.open(), db.open()
    try:
        study, series = new_uid(), new_uid()
        add(writer, ct_header(study, series, new_uid()), "1")
        add(writer, ct_header(study, series, new_uid()), "2")  # the short path
        assert other.remove_study(study) == ["1", "2"]
        sop = new_uid()
        assert add(writer, ct_header(study, series, sop), "3").outcome is AddOutcome.ADDED
        assert other.stats() == IndexStats(patients=1, studies=1, series=1, instances=1)
        record = other.get_instance(sop)
        assert record is not None and record.series_instance_uid == series
    finally:
        writer.close()
        other.close()


def test_attributes_another_process_changed_are_written_again(db: Database, monkeypatch):
    """What an Index remembers of a series' rows is trusted for _PLACEMENT_TTL only."""
    import pacsbox.archive.index as index_module

    first, second = db.open(), db.open()
    try:
        study, series = new_uid(), new_uid()
        add(first, ct_header(study, series, new_uid(), StudyDescription="A"), "1")
        add(second, ct_header(study, series, new_uid(), StudyDescription="B"), "2")
        monkeypatch.setattr(index_module, "_PLACEMENT_TTL", 0.0)
        add(first, ct_header(study, series, new_uid(), StudyDescription="A"), "3")
        record = second.get_study(study)
        assert record is not None and record.description == "A"  # the latest instance's
    finally:
        first.close()
        second.close()


def test_what_an_index_remembers_of_series_stays_bounded(index: Index, monkeypatch):
    """A server indexes series for months: the placements it no longer trusts (older than
    _PLACEMENT_TTL) go once there are more than _PLACEMENTS_MAX, the fresh ones stay."""
    import pacsbox.archive.index as index_module

    monkeypatch.setattr(index_module, "_PLACEMENTS_MAX", 8)
    study = new_uid()
    for n in range(8):
        add(index, ct_header(study, new_uid(), new_uid()), f"old{n}")
    assert len(index._placements) == 8
    monkeypatch.setattr(index_module, "_PLACEMENT_TTL", 0.0)  # all of them expired now
    add(index, ct_header(study, new_uid(), new_uid()), "new")
    assert len(index._placements) == 0
    monkeypatch.setattr(index_module, "_PLACEMENT_TTL", 60.0)
    series = [new_uid() for _ in range(20)]
    for n, uid in enumerate(series):
        add(index, ct_header(study, uid, new_uid()), f"s{n}")
    assert set(index._placements) == set(series)  # all fresh: kept, the short path for each
    assert index.stats().series == 29


def test_duplicate_replaces_by_default(index: Index):
    study, series, sop = new_uid(), new_uid(), new_uid()
    add(index, ct_header(study, series, sop, InstanceNumber=1), "old.dcm")
    result = add(index, ct_header(study, series, sop, InstanceNumber=2), "new.dcm")
    assert result.outcome is AddOutcome.REPLACED
    assert (result.indexed_path, result.old_path) == ("new.dcm", "old.dcm")
    record = index.get_instance(sop)
    assert record is not None
    assert (record.path, record.instance_number) == ("new.dcm", 2)
    assert index.stats() == IndexStats(1, 1, 1, 1)
    # the same file name again: nothing for the caller to delete
    result = add(index, ct_header(study, series, sop), "new.dcm", on_duplicate="replace")
    assert (result.outcome, result.old_path) == (AddOutcome.REPLACED, None)


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [(OnDuplicate.KEEP, AddOutcome.KEPT), ("refuse", AddOutcome.REFUSED)],
)
def test_duplicate_kept_or_refused(index: Index, policy, outcome):
    study, series, sop = new_uid(), new_uid(), new_uid()
    add(index, ct_header(study, series, sop, InstanceNumber=1), "first.dcm")
    # even a header naming another series and patient changes nothing
    header = ct_header(study, new_uid(), sop, InstanceNumber=2, PatientID="OTHER")
    result = add(index, header, "second.dcm", on_duplicate=policy)
    assert (result.outcome, result.indexed_path, result.old_path) == (outcome, "first.dcm", None)
    record = index.get_instance(sop)
    assert record is not None
    assert (record.path, record.instance_number, record.patient_id) == ("first.dcm", 1, "1CT1")
    assert index.stats() == IndexStats(1, 1, 1, 1)


@pytest.mark.parametrize("policy", ["replace", "keep", "refuse"])
def test_each_storage_area_holds_its_own_copy(index: Index, policy: str):
    """As DCMTK's dcmqrscp keeps one copy of an instance in each storage area: sent to another
    area (or to the default one) it is added there, whatever the duplicate policy, and the
    first area keeps its copy; a duplicate is one in the same area."""
    study, series, sop = new_uid(), new_uid(), new_uid()
    header = ct_header(study, series, sop)
    assert add(index, header, "a.dcm", area="LOWER").outcome is AddOutcome.ADDED
    assert (
        add(index, header, "b.dcm", area="UPPER", on_duplicate=policy).outcome is AddOutcome.ADDED
    )
    assert add(index, header, "c.dcm", on_duplicate=policy).outcome is AddOutcome.ADDED
    again = add(index, header, "d.dcm", area="UPPER", on_duplicate=policy)
    assert again.outcome is {"replace": AddOutcome.REPLACED, "keep": AddOutcome.KEPT,
                             "refuse": AddOutcome.REFUSED}[policy]  # fmt: skip
    upper = "d.dcm" if policy == "replace" else "b.dcm"
    assert again.indexed_path == upper
    assert index.get_instance(sop, "LOWER").path == "a.dcm"
    assert index.get_instance(sop, "UPPER").path == upper
    assert index.get_instance(sop, None).path == "c.dcm"
    assert index.get_instance(sop, "OTHER") is None
    latest = index.get_instance(sop)  # any area: the most recently received copy
    assert (latest.area, latest.path) == (
        ("UPPER", "d.dcm") if policy == "replace" else (None, "c.dcm")
    )
    assert index.instance_location(sop, "LOWER").path == "a.dcm"
    assert index.stats() == IndexStats(1, 1, 1, 3)
    assert index.remove_instance(sop, "LOWER") == "a.dcm"
    assert index.get_instance(sop, "LOWER") is None
    assert index.get_instance(sop, None).path == "c.dcm"
    assert index.stats() == IndexStats(1, 1, 1, 2)


def test_replacement_in_another_study_prunes_the_empty_levels(index: Index):
    sop = new_uid()
    add(index, ct_header(new_uid(), new_uid(), sop, PatientID="A"), "1")
    result = add(index, ct_header(new_uid(), new_uid(), sop, PatientID="B"), "2")
    assert result.outcome is AddOutcome.REPLACED
    assert index.stats() == IndexStats(1, 1, 1, 1)
    record = index.get_instance(sop)
    assert record is not None and record.patient_id == "B"


# --- the header as DICOM JSON ----------------------------------------------------------------


def test_header_json_round_trip_keeps_private_tags_and_drops_pixel_data(index: Index):
    ds = ct_dataset(new_uid(), new_uid(), new_uid(), PatientName="Doe^John")
    block = ds.private_block(0x0011, "PACSBOX TEST", create=True)
    block.add_new(0x01, "LO", "a private value")
    block.add_new(0x02, "OB", b"\x01\x02" * 2000)  # bulk data: a placeholder
    block.add_new(0x03, "OB", b"\x07\x08")  # small: inline
    sop = ds.SOPInstanceUID
    add(index, parse(encode(ds)), "x.dcm")
    record = index.get_instance(sop)
    assert record is not None
    assert "7FE00010" not in record.header
    bulk = f"{block.get_tag(0x02):08X}"
    assert record.header[bulk] == {"vr": "OB", "BulkDataURI": f"bulkdata/{bulk}"}
    back = Dataset.from_json(record.header, bulk_data_uri_handler=lambda uri: b"")
    assert back.PatientName == "Doe^John"
    assert back.SOPInstanceUID == sop
    assert back[block.get_tag(0x01)].value == "a private value"
    assert back[block.get_tag(0x03)].value == b"\x07\x08"
    assert back[0x00090010].value == ds[0x00090010].value  # CT_small's own private creator
    assert back.Rows == ds.Rows and back.ImagePositionPatient == ds.ImagePositionPatient
    assert "PixelData" not in back


def test_a_header_read_with_pixel_data_is_indexed_without_it(index: Index):
    ds = ct_dataset(new_uid(), new_uid(), new_uid())
    whole = dcmread(BytesIO(encode(ds)), force=True)
    assert "PixelData" in whole
    add(index, whole, "x.dcm")
    record = index.get_instance(ds.SOPInstanceUID)
    assert record is not None and "7FE00010" not in record.header


def test_nul_characters_are_dropped_on_both_backends(index: Index):
    ds = ct_dataset(new_uid(), new_uid(), new_uid(), StudyDescription="CT\x00\x00")
    ds.add_new(0x00204000, "LT", "a comment\x00 with NUL")
    add(index, parse(encode(ds)), "x.dcm")
    record = index.get_study(ds.StudyInstanceUID)
    assert record is not None and record.description == "CT"
    instance = index.get_instance(ds.SOPInstanceUID)
    assert instance is not None
    assert instance.header["00204000"]["Value"] == ["a comment with NUL"]


def test_header_without_study_uid_is_refused_with_a_reason(index: Index):
    ds = ct_dataset(new_uid(), new_uid(), new_uid())
    del ds.StudyInstanceUID
    header = parse(encode(ds))
    with pytest.raises(HeaderError, match="no Study Instance UID"):
        add(index, header, "x.dcm")
    assert index.stats() == IndexStats(0, 0, 0, 0)


# --- character sets --------------------------------------------------------------------------

CHARSET_CASES = [
    # (file, Specific Character Set, Patient's Name as Unicode)
    ("chrFren.dcm", "ISO_IR 100", "Buc^Jérôme"),
    ("chrGerm.dcm", "ISO_IR 100", "Äneas^Rüdiger"),
    ("chrX1.dcm", "ISO_IR 192", "Wang^XiaoDong=王^小東"),
    ("chrH31.dcm", "ISO 2022 IR 87", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
    ("chrJapMulti.dcm", "ISO 2022 IR 87", "やまだ^たろう"),
]


def reencoded(header: Dataset):
    """``header`` as a C-STORE would carry it, read back by the storage SCP: some charset
    files are implicit VR behind an explicit VR meta header, so every element is converted
    first and the data set written again, in explicit VR."""
    for _ in header.iterall():
        pass
    del header.file_meta
    header.preamble = None
    return parse(encode(header))


@pytest.mark.parametrize(("name", "charset", "expected"), CHARSET_CASES)
def test_names_are_decoded_with_the_specific_character_set(index: Index, name, charset, expected):
    header = dcmread(get_charset_files(name)[0], stop_before_pixels=True)
    assert charset in str(header.get_item(0x00080005).value)  # still raw bytes: undecoded
    header.StudyInstanceUID = header.get("StudyInstanceUID") or new_uid()
    header.SeriesInstanceUID = header.get("SeriesInstanceUID") or new_uid()
    header.SOPInstanceUID = new_uid()
    header.SOPClassUID = header.get("SOPClassUID") or "1.2.840.10008.5.1.4.1.1.7"
    add(index, reencoded(header), name)
    record = index.get_study(header.StudyInstanceUID)
    assert record is not None
    assert record.patient_name == expected
    instance = index.get_instance(header.SOPInstanceUID)
    assert instance is not None
    assert (
        PersonName(expected).components[0] == instance.header["00100010"]["Value"][0]["Alphabetic"]
    )
    assert str(Dataset.from_json(instance.header).PatientName) == expected


def test_sequence_items_with_their_own_character_set(index: Index):
    header = dcmread(get_charset_files("chrSQEncoding.dcm")[0], stop_before_pixels=True)
    header.StudyInstanceUID, header.SeriesInstanceUID = new_uid(), new_uid()
    header.SOPInstanceUID, header.SOPClassUID = new_uid(), "1.2.840.10008.5.1.4.1.1.4"
    add(index, reencoded(header), "sq.dcm")
    instance = index.get_instance(header.SOPInstanceUID)
    assert instance is not None
    item = instance.header["00321064"]["Value"][0]
    assert item["00100010"]["Value"][0] == {
        "Alphabetic": "ﾔﾏﾀﾞ^ﾀﾛｳ",
        "Ideographic": "山田^太郎",
        "Phonetic": "やまだ^たろう",
    }


# --- removal and areas -----------------------------------------------------------------------


def test_remove_study_returns_the_paths(index: Index):
    study, other = new_uid(), new_uid()
    series1, series2 = new_uid(), new_uid()
    paths = set()
    for n in range(6):
        path = f"{study}/{n}.dcm"
        paths.add(path)
        add(index, ct_header(study, series1 if n % 2 else series2, new_uid()), path)
    add(index, ct_header(other, new_uid(), new_uid()), "other.dcm")
    assert set(index.remove_study(study)) == paths
    assert index.get_study(study) is None
    assert index.stats() == IndexStats(1, 1, 1, 1)  # the patient keeps the other study
    assert index.remove_study(study) == []
    assert index.remove_study(other) == ["other.dcm"]
    assert index.stats() == IndexStats(0, 0, 0, 0)


def test_remove_instance_prunes_empty_levels(index: Index):
    study, series = new_uid(), new_uid()
    first, second = new_uid(), new_uid()
    add(index, ct_header(study, series, first), "1")
    add(index, ct_header(study, series, second), "2")
    assert index.remove_instance(first) == "1"
    assert index.stats() == IndexStats(1, 1, 1, 1)
    assert index.remove_instance(first) is None
    assert index.remove_instance(second) == "2"
    assert index.stats() == IndexStats(0, 0, 0, 0)


def test_studies_of_area_least_recently_received_first(index: Index):
    start = datetime(2025, 1, 1, tzinfo=UTC)
    old, new, elsewhere = new_uid()[:60], new_uid()[:60], new_uid()[:60]
    schedule = [(new, 1), (old, 2), (new, 5), (elsewhere, 0)]
    for n, (study, minutes) in enumerate(schedule):
        area = "OTHER" if study == elsewhere else "ARCHIVE"
        at = start + timedelta(minutes=minutes)
        add(index, ct_header(study, study + ".1", new_uid()), f"{n}", area=area, received_at=at)
    studies = index.studies_of_area("ARCHIVE")
    assert [s.study_instance_uid for s in studies] == [old, new]
    assert studies[1].first_received == start + timedelta(minutes=1)
    assert studies[1].last_received == start + timedelta(minutes=5)
    assert (studies[1].instances, studies[1].size) == (2, 2000)
    assert [s.study_instance_uid for s in index.studies_of_area("OTHER")] == [elsewhere]
    assert index.studies_of_area(None) == []


# --- migrations ------------------------------------------------------------------------------


def test_an_empty_database_gets_the_head_revision(db: Database):
    with db.open() as index:
        assert index.schema_revision() == migrations.head_revision()
        with index.engine.connect() as conn:
            context = MigrationContext.configure(conn)
            # the migrations build exactly the tables schema.py describes
            diff = compare_metadata(context, metadata)
            assert [d for d in diff if d[0] != "remove_table"] == []
            assert [d[1].name for d in diff] in ([], [migrations.VERSION_TABLE])


def _instance_indexes(index: Index) -> dict[str, str]:
    """The instances table's indexes: name -> its definition as the database keeps it."""
    with index.engine.connect() as conn:
        if index.dialect == "sqlite":
            rows = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'instances' AND sql IS NOT NULL"
            )
        else:
            rows = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'instances' "
                "AND schemaname = current_schema() AND indexname LIKE 'ix_%%'"
            )
        return dict(rows.all())


def _two_rows_then_revision(index: Index, revision: str) -> tuple[str, str, str, str]:
    """(study, series, in_area, no_area): two instances of one series written by this
    pacsbox, ``in_area`` in storage area ARCHIVE (a.dcm), ``no_area`` in the default one
    (b.dcm); then the schema taken back to ``revision``."""
    study, series_uid, in_area, no_area = new_uid(), new_uid(), new_uid(), new_uid()
    add(index, ct_header(study, series_uid, in_area), "a.dcm", area="ARCHIVE")
    add(index, ct_header(study, series_uid, no_area), "b.dcm")
    with index.engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), revision)
    return study, series_uid, in_area, no_area


def test_0002_writes_two_instance_indexes_fewer_and_keeps_the_rows(db: Database, caplog):
    """An index made by the first release, with instances in and out of storage areas, is
    upgraded when opened: no SOP Class UID index, the area index over area rows only; the rows
    stay, and area and SOP Class matching still work."""
    with db.open() as index:  # a 0001 database with rows
        *_, no_area = _two_rows_then_revision(index, "0001")
        old = _instance_indexes(index)
    assert set(old) == {
        "ix_instances_series_fk", "ix_instances_sop_class_uid", "ix_instances_area_received_at"
    }  # fmt: skip
    assert "NOT NULL" not in old["ix_instances_area_received_at"].upper()

    caplog.set_level(logging.INFO, logger=pacsbox_log.name)
    with db.open() as index:
        assert index.schema_revision() == migrations.head_revision()
        indexes = _instance_indexes(index)
        assert set(indexes) == {"ix_instances_series_fk", "ix_instances_area_received_at"}
        where = indexes["ix_instances_area_received_at"].upper().replace("::TEXT", "")
        assert "AREA) <> ''" in where or "AREA <> ''" in where
        assert index.stats() == IndexStats(1, 1, 1, 2)
        assert [s.instances for s in index.studies_of_area("ARCHIVE")] == [1]
        assert [s.instances for s in index.studies_of_area(None)] == [1]
        assert index.instance_location(no_area).path == "b.dcm"
    said = [r.getMessage() for r in caplog.records]
    head = migrations.head_revision()
    assert f"Upgrading the index schema from revision 0001 to {head}" in said[0]
    assert said[1].startswith(f"Index schema upgraded to revision {head} in ")


def test_0004_keeps_a_copy_per_area_and_keeps_the_rows(db: Database):
    """An index of revision 0003 (one row per SOP Instance UID; the default area's rows with a
    NULL area) is upgraded when opened: its rows stay where they were, the default area's
    read as None, and an instance of one area can then be stored in another too."""
    with db.open() as index:
        study, series_uid, in_area, no_area = _two_rows_then_revision(index, "0003")
        with index.engine.begin() as conn:
            areas = conn.execute(sa.text("SELECT area FROM instances ORDER BY id")).scalars()
            assert list(areas) == ["ARCHIVE", None]
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                conn.execute(sa.text("INSERT INTO instances (sop_instance_uid, series_fk, "
                                     "sop_class_uid, transfer_syntax, path, size, received_at, "
                                     "area) SELECT sop_instance_uid, series_fk, sop_class_uid, "
                                     "transfer_syntax, 'c.dcm', size, received_at, 'OTHER' "
                                     "FROM instances WHERE area = 'ARCHIVE'"))  # fmt: skip
    with db.open() as index:
        assert index.schema_revision() == migrations.head_revision()
        assert index.get_instance(no_area, None).path == "b.dcm"
        assert index.get_instance(no_area).area is None
        assert [s.instances for s in index.studies_of_area(None)] == [1]
        assert [s.instances for s in index.studies_of_area("ARCHIVE")] == [1]
        result = add(index, ct_header(study, series_uid, in_area), "c.dcm", area="OTHER")
        assert result.outcome is AddOutcome.ADDED
        assert index.get_instance(in_area, "ARCHIVE").path == "a.dcm"
        assert index.stats() == IndexStats(1, 1, 1, 3)
        with (
            index.engine.begin() as conn,  # back to 0003 is refused while copies exist
            pytest.raises(RuntimeError, match="held in several storage areas"),
        ):
            command.downgrade(migrations.alembic_config(conn), "0003")


def test_an_area_query_uses_the_partial_area_index(tmp_path: Path):
    """SQLite's plan for the oldest study of an area (dcmqrscp's quotas) searches the area
    index, which holds only rows with an area."""
    with Database("sqlite", tmp_path).open() as index:
        study, series_uid = new_uid(), new_uid()
        for n in range(3):
            add(index, ct_header(study, series_uid, new_uid()), f"{n}", area="ARCHIVE")
        recorded = []

        @event.listens_for(index.engine, "before_cursor_execute")
        def record(_conn, _cursor, statement, parameters, _context, _many) -> None:
            if "GROUP BY" in statement:
                recorded.append((statement, parameters))

        assert [s.instances for s in index.studies_of_area("ARCHIVE")] == [3]
        event.remove(index.engine, "before_cursor_execute", record)
        ((statement, parameters),) = recorded
        with index.engine.connect() as conn:
            plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                             parameters)]  # fmt: skip
        assert any("USING INDEX ix_instances_area_received_at (area=?)" in line
                   for line in plan), plan  # fmt: skip


def test_reopening_is_a_no_op(db: Database, monkeypatch):
    with db.open() as index:
        add(index, ct_header(new_uid(), new_uid(), new_uid()), "x.dcm")

    def no_upgrade(connection):
        raise AssertionError("the database is at head: nothing to migrate")

    monkeypatch.setattr(migrations, "upgrade", no_upgrade)
    with db.open() as index:
        assert index.schema_revision() == migrations.head_revision()
        assert index.stats() == IndexStats(1, 1, 1, 1)


def test_a_database_from_a_newer_pacsbox_is_refused_with_a_reason(db: Database, caplog):
    with db.open() as index, index.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {migrations.VERSION_TABLE} SET version_num = '9999'")
    with pytest.raises(Exception, match="newer pacsbox"):
        db.open()
    assert "Upgrading" not in caplog.text  # not "from 9999 to 0004": nothing is upgraded


def test_an_index_locked_during_its_upgrade_says_why(tmp_path: Path):
    """Another process holds the write lock (one upgrading a large index does, for as long as
    that takes): the open fails after the busy timeout with words that say so."""
    import sqlite3

    db = Database("sqlite", tmp_path)
    with db.open() as index:
        _two_rows_then_revision(index, "0003")
    holder = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(ArchiveIndexError, match=r"locked by another process.*Upgrading the"):
            Index.open(db.url, busy_timeout=0.2)
    finally:
        holder.close()
    with db.open() as index:  # once it is free, the upgrade runs
        assert index.schema_revision() == migrations.head_revision()


def test_an_upgraded_sqlite_index_is_compacted(tmp_path: Path, monkeypatch, caplog):
    """0004 copies the instances table: the WAL held the copy and the file the old table's
    pages, free (a 1.2 GB index took 5 GB on disk). After the upgrade the WAL is emptied and
    the file compacted (here for any free space; by default past 16 MB and a quarter)."""
    db = Database("sqlite", tmp_path)
    with db.open() as index:
        for n in range(200):
            add(index, ct_header(new_uid(), new_uid(), new_uid()), f"{n}.dcm")
        _two_rows_then_revision(index, "0003")
    import pacsbox.archive.index as index_module

    monkeypatch.setattr(index_module, "_COMPACT_BYTES", 0)
    caplog.set_level(logging.WARNING, logger=pacsbox_log.name)
    with db.open() as index:
        assert index.stats().instances == 202
        with index.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA freelist_count").scalar() == 0
        wal = tmp_path / "index.sqlite-wal"
        assert not wal.exists() or wal.stat().st_size == 0
    assert "Compacting the index file: the upgrade left" in caplog.text
    assert "Index file compacted in" in caplog.text


# --- several processes -----------------------------------------------------------------------

INSTANCES_PER_PROCESS = 200


def _writer(url, worker, study, series, shared_sops, barrier, results) -> None:
    """One process's share: 200 instances of one study, started together with the other."""
    try:
        index = Index.open(url)  # both processes open the fresh database: both migrate
        try:
            barrier.wait(60)
            outcomes = []
            for n in range(INSTANCES_PER_PROCESS):
                sop = f"{study}.{n}" if shared_sops else f"{study}.{worker}.{n}"
                header = ct_header(study, series[n % len(series)], sop, InstanceNumber=n)
                result = add(index, header, f"{worker}/{n}.dcm")
                outcomes.append(result.outcome.value)
            results.put((worker, outcomes))
        finally:
            index.close()
    except BaseException:
        barrier.abort()  # the other process stops waiting
        results.put((worker, traceback.format_exc()))


@pytest.mark.parametrize("shared_sops", [False, True], ids=["distinct-sops", "same-sops"])
def test_two_processes_add_to_one_new_study(db: Database, shared_sops: bool):
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(2), spawn.Queue()
    study = f"{new_uid()[:50]}"
    series = [f"{study}.1001", f"{study}.1002", f"{study}.1003"]
    url = db.url
    workers = [
        spawn.Process(target=_writer, args=(url, w, study, series, shared_sops, barrier, results))
        for w in (1, 2)
    ]
    for process in workers:
        process.start()
    outcomes = dict(results.get(timeout=240) for _ in workers)
    for process in workers:
        process.join(30)
    for worker, outcome in outcomes.items():
        assert isinstance(outcome, list), f"process {worker} failed:\n{outcome}"
    with db.open() as index:
        expected = INSTANCES_PER_PROCESS * (1 if shared_sops else 2)
        assert index.stats() == IndexStats(1, 1, 3, expected)
        record = index.get_study(study)
        assert record is not None and record.number_of_instances == expected
    every = outcomes[1] + outcomes[2]
    if shared_sops:  # each UID once added, once replaced
        assert every.count("added") == every.count("replaced") == INSTANCES_PER_PROCESS
    else:
        assert every == ["added"] * expected


def test_before_commit_runs_inside_the_transaction(db: Database):
    """The storage SCP renames the file in ``before_commit``: the row is written but not yet
    visible to others, an exception there leaves no row, and a kept duplicate never calls it."""
    writer, reader = db.open(), db.open()
    try:
        sop = new_uid()
        seen = []
        header = ct_header(new_uid(), new_uid(), sop)
        add(writer, header, "1", before_commit=lambda: seen.append(reader.get_instance(sop)))
        assert seen == [None] and reader.get_instance(sop) is not None

        def fail() -> None:
            raise OSError(28, "No space left on device")

        other = new_uid()
        with pytest.raises(OSError):
            add(writer, ct_header(new_uid(), new_uid(), other), "2", before_commit=fail)
        assert reader.get_instance(other) is None
        result = add(writer, header, "3", on_duplicate="keep", before_commit=fail)
        assert result.outcome is AddOutcome.KEPT
    finally:
        writer.close()
        reader.close()
