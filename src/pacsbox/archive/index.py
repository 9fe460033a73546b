"""The archive's index: one row per patient, study, series and instance, committed before the
C-STORE response (PS3.4 B.2.3), on SQLite (default) or PostgreSQL.

The rules it keeps:

- Patient identity is (Patient ID, Issuer of Patient ID), both possibly empty. A study belongs
  to one patient: the one its latest indexed instance names. If an instance names another
  patient than the study's (a corrected re-send, say), the study moves to that patient and a
  patient left without studies is removed.
- Patient, study and series attributes are those of the latest instance indexed; an empty value
  in a newer instance does not erase a stored one. Each study also keeps the patient's name,
  birth date and sex as its own latest instance gives them: studies of one patients row (no
  Patient ID) answer queries below PATIENT level each with their own.
- A second instance with an indexed SOP Instance UID replaces the first (``on_duplicate``:
  "replace", the default), or leaves it ("keep"), or is refused ("refuse"). That is within one
  storage area (``area``, dcmqrscp's AETable): as in dcmqrscp, each area holds its own copy,
  under the one patient, study and series rows.

Several processes may share one database. Every write is an INSERT ... ON CONFLICT DO NOTHING
followed by a re-select, so two processes creating the same patient, study or series at once
end with one row. On PostgreSQL, removals lock the parent row (FOR UPDATE) before reading its
children, and the foreign-key checks of a concurrent add hold a KEY SHARE lock on the same
rows: a removal thus sees every committed child, and an add that lost its parent to a removal
gets a foreign-key error and starts over (``_MAX_ATTEMPTS``). On SQLite every write transaction
is BEGIN IMMEDIATE: writers queue on the busy timeout instead of failing to upgrade a read lock.
Before it, an Index on a SQLite file takes an exclusive flock on ``<file>-writer``: SQLite's
busy handler waits by sleeping (1, 2, 5, 10 ms ...) and retrying, so of several processes
writing all the time (`pacsbox serve --workers`) most would sleep through locks long
released; the flock wakes the next writer as the last one releases it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, IntEnum, StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

try:
    import fcntl
except ImportError:  # Windows: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]

from pydicom.dataset import Dataset
from sqlalchemy import bindparam, create_engine, delete, event, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from ..errors import PacsboxError
from ..log import log
from . import migrations
from .header import HeaderValues, dumps, header_document, header_values, loads
from .schema import in_area, instances, patients, series, studies


class _AnyArea(Enum):
    ANY_AREA = "any storage area"


# get_instance's, instance_location's and remove_instance's default: the instance's most
# recently received copy, whichever storage area holds it
ANY_AREA = _AnyArea.ANY_AREA
AreaChoice = str | None | Literal[_AnyArea.ANY_AREA]


class Level(IntEnum):
    SERIES = 0
    STUDY = 1
    PATIENT = 2


# From series up to patient: (table, the key of its parent row, the children's key to it).
# The patient has no parent: its own id keeps the loop uniform and ends it.
_HIERARCHY = (
    (series, series.c.study_fk, instances.c.series_fk),
    (studies, studies.c.patient_fk, series.c.study_fk),
    (patients, patients.c.id, studies.c.patient_fk),
)

DEFAULT_URL = "sqlite:///pacs-data/index.sqlite"

T = TypeVar("T")

# PostgreSQL SQLSTATEs after which the whole transaction is simply run again.
_RETRY_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "23503",  # foreign_key_violation: a concurrent removal took our parent row
        "23505",  # unique_violation: cannot happen with ON CONFLICT, but harmless to retry
    }
)
_MAX_ATTEMPTS = 8
# Connection.info key: on SQLite, the next BEGIN is a write transaction (BEGIN IMMEDIATE).
_IMMEDIATE = "pacsbox.immediate"


class ArchiveIndexError(PacsboxError):
    """The index cannot be opened or written; the message says why and what to do."""


class OnDuplicate(StrEnum):
    """What ``add`` does with an instance whose SOP Instance UID is already indexed."""

    REPLACE = "replace"
    KEEP = "keep"
    REFUSE = "refuse"


class AddOutcome(StrEnum):
    ADDED = "added"
    REPLACED = "replaced"
    KEPT = "kept"  # the indexed instance stays; the new file is not referenced
    REFUSED = "refused"  # as KEPT, and the caller answers the C-STORE with a failure


_WRITTEN = (AddOutcome.ADDED, AddOutcome.REPLACED)


@dataclass(frozen=True, slots=True)
class AddResult:
    """What ``add`` did.

    indexed_path: the file the index holds for the SOP Instance UID in the storage area after
    the call (the new path when added or replaced, the earlier one when kept or refused).
    old_path: when replaced, the earlier file, which the index no longer references and the
    caller may delete; None if nothing was replaced or the earlier path is the new one.
    """

    outcome: AddOutcome
    sop_instance_uid: str
    indexed_path: str
    old_path: str | None = None


@dataclass(slots=True)
class NewInstance:
    """One instance for ``Index.add_all``: ``add``'s arguments."""

    header: Any
    path: str
    size: int
    transfer_syntax: str
    calling_ae: str = ""
    area: str | None = None
    on_duplicate: OnDuplicate | str = OnDuplicate.REPLACE
    received_at: datetime | None = None
    before_commit: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    issuer: str
    instance_number: int | None
    transfer_syntax: str
    path: str
    size: int
    received_at: datetime
    calling_ae: str
    area: str | None
    # DICOM JSON; pydicom.Dataset.from_json(header) rebuilds it. None: not converted (yet)
    header: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class StudyRecord:
    study_instance_uid: str
    patient_id: str
    issuer: str
    patient_name: str
    study_date: str
    study_time: str
    accession_number: str
    study_id: str
    description: str
    referring_physician: str
    modalities_in_study: tuple[str, ...]  # computed, sorted
    number_of_series: int  # computed
    number_of_instances: int  # computed


@dataclass(frozen=True, slots=True)
class AreaStudy:
    """A study's instances in one storage area, for quotas (``studies_of_area``)."""

    study_instance_uid: str
    first_received: datetime
    last_received: datetime
    instances: int
    size: int


@dataclass(frozen=True, slots=True)
class IndexStats:
    patients: int
    studies: int
    series: int
    instances: int


@dataclass(frozen=True, slots=True)
class InstanceLocation:
    """Where an indexed instance is (``instance_location``): its storage area, its path
    (relative to that area's directory) and its size, and its study."""

    sop_instance_uid: str
    study_instance_uid: str
    area: str | None
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class AreaUsage:
    """What one study holds in one storage area (``area_usage``), for dcmqrscp's quotas.

    studies: studies with instances in the area; counted only when the study has none there
    (the question is then whether one more fits), else None.
    """

    study_instances: int
    study_size: int
    studies: int | None


class _Restart(Exception):
    """A concurrent writer changed what this transaction decided on: run it again."""


def database_url(url: str | URL) -> URL:
    """``url`` with pacsbox's drivers: ``postgresql://`` means psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _utc(moment: datetime) -> datetime:
    # SQLite keeps no offset: what we stored there is UTC
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- statements, built once: SQLAlchemy caches their compiled form -------------------------

_SELECT_INSTANCE = (
    select(instances.c.id, instances.c.path, instances.c.series_fk)
    .where(instances.c.sop_instance_uid == bindparam("uid"), instances.c.area == bindparam("area"))
    .with_for_update()
)
_SELECT_PATIENT = select(
    patients.c.id, patients.c.patient_name, patients.c.birth_date, patients.c.sex
).where(patients.c.patient_id == bindparam("patient_id"), patients.c.issuer == bindparam("issuer"))
_SELECT_STUDY = select(
    studies.c.id,
    studies.c.patient_fk,
    studies.c.study_date,
    studies.c.study_time,
    studies.c.accession_number,
    studies.c.study_id,
    studies.c.description,
    studies.c.referring_physician,
    studies.c.patient_name,
    studies.c.patient_birth_date,
    studies.c.patient_sex,
).where(studies.c.study_instance_uid == bindparam("uid"))
_SELECT_SERIES = select(
    series.c.id,
    series.c.study_fk,
    series.c.modality,
    series.c.series_number,
    series.c.description,
    series.c.body_part,
    series.c.series_date,
    series.c.series_time,
).where(series.c.series_instance_uid == bindparam("uid"))

# The attributes compared with the stored row, in the order of the selects above (after ids).
_PATIENT_ATTRIBUTES = ("patient_name", "birth_date", "sex")
_STUDY_ATTRIBUTES = (
    "study_date",
    "study_time",
    "accession_number",
    "study_id",
    "description",
    "referring_physician",
    "patient_name",
    "patient_birth_date",
    "patient_sex",
)
_SERIES_ATTRIBUTES = (
    "modality",
    "series_number",
    "description",
    "body_part",
    "series_date",
    "series_time",
)


def _patient_row(v: HeaderValues) -> dict[str, Any]:
    return {
        "patient_id": v.patient_id,
        "issuer": v.issuer,
        "patient_name": v.patient_name,
        "patient_name_upper": v.patient_name.upper(),
        "birth_date": v.birth_date,
        "sex": v.sex,
    }


def _study_row(v: HeaderValues) -> dict[str, Any]:
    return {
        "study_instance_uid": v.study_instance_uid,
        "study_date": v.study_date,
        "study_time": v.study_time,
        "accession_number": v.accession_number,
        "study_id": v.study_id,
        "description": v.study_description,
        "referring_physician": v.referring_physician,
        "referring_physician_upper": v.referring_physician.upper(),
        "patient_name": v.patient_name,
        "patient_name_upper": v.patient_name.upper(),
        "patient_birth_date": v.birth_date,
        "patient_sex": v.sex,
    }


def _series_row(v: HeaderValues) -> dict[str, Any]:
    return {
        "series_instance_uid": v.series_instance_uid,
        "modality": v.modality,
        "series_number": v.series_number,
        "description": v.series_description,
        "body_part": v.body_part,
        "series_date": v.series_date,
        "series_time": v.series_time,
    }


@dataclass(slots=True)
class _Placement:
    """Where this process last indexed an instance of a series: the patient, study and series
    rows and their attribute values as the index then held them. The next instance of the
    series that names the same patient and study and changes none of those values needs only
    its own row: one INSERT instead of three SELECTs and an INSERT."""

    patient_key: tuple[str, str]
    patient: tuple
    study_uid: str
    study: tuple
    series_id: int
    series: tuple
    at: float  # time.monotonic() when read from the index
    # _placement_key of the last instance found to fit: one with the same key fits too,
    # found in one comparison instead of three rows built and compared (~5 us a C-STORE)
    fitted: tuple | None = None

    def fits(self, v: HeaderValues, patient: dict, study: dict, series_: dict) -> bool:
        return (
            self.patient_key == (v.patient_id, v.issuer)
            and self.study_uid == v.study_instance_uid
            and not _changes(self.series, series_, _SERIES_ATTRIBUTES)
            and not _changes(self.study, study, _STUDY_ATTRIBUTES)
            and not _changes(self.patient, patient, _PATIENT_ATTRIBUTES)
        )


# The values of an instance that its patient, study and series rows hold: all of HeaderValues
# but the instance's own
_placement_key = operator.attrgetter(
    *(
        f.name
        for f in dataclasses.fields(HeaderValues)
        if f.name not in ("sop_instance_uid", "sop_class_uid", "instance_number")
    )
)

# How long a _Placement is trusted. Another process sharing the index may change or remove
# those rows meanwhile: a removal makes our INSERT fail its foreign key (and we start over
# from the index), a changed attribute is seen again after this long.
_PLACEMENT_TTL = 1.0
_PLACEMENTS_MAX = 256  # past this many series, the expired placements go


def _merged(stored, changes: dict[str, Any], names: tuple[str, ...]) -> tuple:
    return tuple(changes.get(name, old) for name, old in zip(names, stored, strict=True))


def _changes(stored, new: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The attributes whose new value is non-empty and differs from the stored one."""
    changes = {}
    for name, old in zip(names, stored, strict=True):
        value = new[name]
        if value not in ("", None) and value != old:
            changes[name] = value
    if "patient_name" in changes:
        changes["patient_name_upper"] = changes["patient_name"].upper()
    if "referring_physician" in changes:
        changes["referring_physician_upper"] = changes["referring_physician"].upper()
    return changes


_INSTANCE_ROW_KEYS = (
    "sop_instance_uid",
    "sop_class_uid",
    "instance_number",
    "transfer_syntax",
    "path",
    "size",
    "received_at",
    "calling_ae",
    "area",
    "header",
    "series_fk",
)  # fmt: skip; what Index.add's instance row holds


# One instance on its way to the index: its column values, its row, the duplicate policy and
# the before_commit callback (Index.add's arguments, prepared)
_Entry = tuple[HeaderValues, dict[str, Any], OnDuplicate, Callable[[], None] | None]

# A header document Index.write_headers is to write: the row's id, its SOP Instance UID, the
# header it is made from
_Later = tuple[int, str, Any]
_WRITE_HEADER = (
    "UPDATE instances SET header = ? WHERE id = ? AND sop_instance_uid = ? AND header IS NULL"
)


class _DriverInsert:
    """The instance row's INSERT ... RETURNING as SQLite's driver takes it: the statement
    SQLAlchemy compiled once, and the same bind processors (the column types' conversions:
    the JSON serializer, DateTime's text form), for Index._add_placed. ``sql`` is None when
    the engine is not SQLite (or the statement is not the one this was written for).
    """

    def __init__(self, statement, engine: Engine, keys: tuple[str, ...]) -> None:
        self.sql: str | None = None
        if engine.dialect.name != "sqlite":
            return
        compiled = statement.compile(dialect=engine.dialect, column_keys=list(keys))
        names = compiled.positiontup or []
        if sorted(names) != sorted(keys):  # not the statement this was written for
            return
        binds = compiled.binds
        self.params = [
            (name, binds[name].type.dialect_impl(engine.dialect).bind_processor(engine.dialect))
            for name in names
        ]
        self.sql = compiled.string

    def values(self, row: dict[str, Any]) -> list:
        """The statement's parameters for ``row``, converted as SQLAlchemy would."""
        return [row[n] if p is None else p(row[n]) for n, p in self.params]


class Index:
    """The archive's index on one database; open it with ``Index.open(url)``.

    One connection per Index, used under a lock (so an Index may be shared by threads, one
    call at a time). For several writers at once, open several Index objects (processes).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(self.dialect)
        if insert is None:
            raise ArchiveIndexError(
                f"the archive index runs on SQLite or PostgreSQL, not {self.dialect}: "
                "pass --db sqlite:///path/index.sqlite or --db postgresql://user@host/db"
            )
        self._insert_patient = (
            insert(patients)
            .on_conflict_do_nothing(index_elements=["patient_id", "issuer"])
            .returning(patients.c.id)
        )
        self._insert_study = (
            insert(studies)
            .on_conflict_do_nothing(index_elements=["study_instance_uid"])
            .returning(studies.c.id)
        )
        self._insert_series = (
            insert(series)
            .on_conflict_do_nothing(index_elements=["series_instance_uid"])
            .returning(series.c.id)
        )
        self._insert_instance = (
            insert(instances)
            .on_conflict_do_nothing(index_elements=["sop_instance_uid", "area"])
            .returning(instances.c.id)
        )
        self._instance_rows = _DriverInsert(self._insert_instance, engine, _INSTANCE_ROW_KEYS)
        self._lock = threading.RLock()
        self._writer_lock = _writer_lock_file(engine)  # SQLite on a file: see the module doc
        self._conn: Connection | None = engine.connect()
        self._placements: dict[str, _Placement] = {}  # by Series Instance UID
        self._later: list[_Later] = []  # header documents for write_headers
        self._placed: _Placement | None = None
        self._checkpointer: _Checkpointer | None = None

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str | URL = DEFAULT_URL, *, busy_timeout: float = 30.0) -> Index:
        """Open (creating if needed) the index at ``url`` and upgrade its schema to the head
        revision. SQLite: ``sqlite:///relative/path`` or ``sqlite:////absolute/path``, in WAL
        mode; PostgreSQL: ``postgresql://user@host:port/database`` (psycopg 3).

        busy_timeout: seconds a SQLite writer waits for another process's write to finish.
        """
        parsed = database_url(url)
        checkpointer = None
        if parsed.get_backend_name() == "sqlite":
            checkpointer = _Checkpointer.for_url(parsed, busy_timeout)
            engine = _sqlite_engine(parsed, busy_timeout, checkpointer)
        elif parsed.get_backend_name() == "postgresql":
            engine = create_engine(
                # the writer's connection, and one per query running (the C-FIND SCP's)
                parsed,
                pool_size=2,
                max_overflow=8,
                pool_pre_ping=True,
                json_serializer=dumps,
                json_deserializer=loads,
            )
        else:
            raise ArchiveIndexError(
                f"the archive index runs on SQLite or PostgreSQL, not {parsed.drivername}: "
                "pass --db sqlite:///path/index.sqlite or --db postgresql://user@host/db"
            )
        try:
            index = cls(engine)
        except OperationalError as exc:
            engine.dispose()
            if checkpointer is not None:
                checkpointer.close()
            raise ArchiveIndexError(
                f"cannot connect to the index database {parsed.render_as_string()}: "
                f"{exc.orig}. Check that the server runs and accepts this user "
                "(for the tests: make peers)"
            ) from exc
        index._checkpointer = checkpointer
        try:
            index._upgrade()
        except BaseException:
            index.close()
            raise
        return index

    def _upgrade(self) -> None:
        """Bring the schema to head; a no-op (one small query) when it is there already."""
        head = migrations.head_revision()
        with self._lock:
            conn = self._connection()
            with conn.begin():
                current = migrations.current_revision(conn)
            if current == head:
                return
            if current is not None and not migrations.is_known(current):
                raise ArchiveIndexError(_newer_index(current, head))
            if current is not None:  # an index of an older pacsbox: say why the start waits
                log.warning("Upgrading the index schema from revision %s to %s (once; on a "
                            "large index this takes a while); a pacsbox older than this one "
                            "will not open it any more", current, head)  # fmt: skip
            started = time.monotonic()
            conn.info[_IMMEDIATE] = True  # SQLite: one process migrates, the others wait
            try:
                with conn.begin():
                    if self.dialect == "postgresql":
                        # one migrating process at a time; the others then find head
                        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7305019920531)")
                    try:
                        migrations.upgrade(conn)
                    except Exception as exc:
                        if "Can't locate revision" in str(exc):  # written meanwhile by a newer one
                            raise ArchiveIndexError(_newer_index(current, head)) from exc
                        raise
            except (OperationalError, sqlite3.OperationalError) as exc:  # BEGIN IMMEDIATE's
                if "locked" not in str(exc):
                    raise
                raise ArchiveIndexError(
                    f"the index is locked by another process ({getattr(exc, 'orig', exc)}): a "
                    "pacsbox upgrading "
                    "its schema holds it for as long as the upgrade takes (its log says "
                    "'Upgrading the index schema'); start again once it is done"
                ) from exc
            finally:
                conn.info[_IMMEDIATE] = False
            if current is not None:
                log.warning("Index schema upgraded to revision %s in %.1f s",
                            head, time.monotonic() - started)  # fmt: skip
                if self.dialect == "sqlite":
                    self._compact(conn)

    def _compact(self, conn: Connection) -> None:
        """After an upgrade that copied a SQLite table (0004 copies instances): the WAL holds
        the whole copy and the file as many free pages as the old table had (a 1.2 GB index
        left 2.5 GB of WAL and a 2.5 GB file). Checkpoint the WAL and, when over a quarter of
        the file is free, VACUUM it (~8 s for 1.2 GB), as the log says."""
        driver = conn.connection.driver_connection
        try:
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # type: ignore[union-attr]
            free = driver.execute("PRAGMA freelist_count").fetchone()[0]  # type: ignore[union-attr]
            pages = driver.execute("PRAGMA page_count").fetchone()[0]  # type: ignore[union-attr]
            size = driver.execute("PRAGMA page_size").fetchone()[0]  # type: ignore[union-attr]
            if free * size < _COMPACT_BYTES or free * 4 < pages:
                return
            log.warning("Compacting the index file: the upgrade left %.0f MB of its %.0f MB "
                        "free", free * size / 1e6, pages * size / 1e6)  # fmt: skip
            started = time.monotonic()
            driver.execute("VACUUM")  # type: ignore[union-attr]
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # type: ignore[union-attr]
            log.warning("Index file compacted in %.1f s", time.monotonic() - started)
        except sqlite3.Error as exc:  # the index works all the same, only larger
            log.warning("Could not compact the index file after the upgrade: %s", exc)

    def schema_revision(self) -> str | None:
        with self._lock:
            conn = self._connection()
            with conn.begin():
                return migrations.current_revision(conn)

    def close(self) -> None:
        if self._later:
            self.write_headers()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
            self.engine.dispose()  # the last connection out checkpoints the rest
            if self._writer_lock is not None:
                os.close(self._writer_lock)
                self._writer_lock = None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _connection(self) -> Connection:
        if self._conn is None:
            raise ArchiveIndexError("this Index is closed; open a new one with Index.open(url)")
        return self._conn

    # --- transactions ----------------------------------------------------------------------

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction, committed on return; again from the start
        when a concurrent writer got in the way (PostgreSQL) or the connection was lost."""
        with self._lock, self._writing():
            for attempt in range(1, _MAX_ATTEMPTS + 1):
                conn = self._connection()
                conn.info[_IMMEDIATE] = True
                try:
                    with conn.begin():
                        result = work(conn)
                    if self._checkpointer is not None and self._checkpointer.due:
                        self._checkpointer.catch_up(conn)
                    return result
                except _Restart:
                    continue
                except DBAPIError as exc:
                    if attempt < _MAX_ATTEMPTS and self._retryable(exc):
                        time.sleep(0.001 * attempt)
                        continue
                    raise self._explain(exc) from exc
                finally:
                    conn.info[_IMMEDIATE] = False
            raise ArchiveIndexError(
                f"the index write did not succeed in {_MAX_ATTEMPTS} attempts: other processes "
                "kept changing the same rows; try again"
            )

    @contextlib.contextmanager
    def _writing(self):
        """Hold the writers' flock (SQLite on a file), waiting in the kernel for it."""
        if self._writer_lock is None:
            yield
            return
        fcntl.flock(self._writer_lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._writer_lock, fcntl.LOCK_UN)

    def _read(self, work: Callable[[Connection], T]) -> T:
        with self._lock:
            conn = self._connection()
            with conn.begin():
                return work(conn)

    def _retryable(self, exc: DBAPIError) -> bool:
        if exc.connection_invalidated:
            return True
        return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES

    def _explain(self, exc: DBAPIError) -> Exception:
        message = str(exc.orig)
        if self.dialect == "sqlite" and ("locked" in message or "busy" in message):
            return ArchiveIndexError(
                "the SQLite index stayed locked by another process longer than the busy "
                f"timeout: {message}. Open it with a longer busy_timeout, or use "
                "PostgreSQL (--db postgresql://...) for many writing processes"
            )
        return exc

    # --- adding ----------------------------------------------------------------------------

    def add(
        self,
        header: Dataset,
        *,
        path: str,
        size: int,
        transfer_syntax: str,
        calling_ae: str = "",
        area: str | None = None,
        on_duplicate: OnDuplicate | Literal["replace", "keep", "refuse"] = OnDuplicate.REPLACE,
        received_at: datetime | None = None,
        before_commit: Callable[[], None] | None = None,
        header_later: bool = False,
    ) -> AddResult:
        """Index one instance from its header (the storage SCP's ``read_header``: elements up
        to Pixel Data), stored at ``path`` (relative to the storage root). The patient, study
        and series rows are created or updated and the instance row written in one
        transaction, committed when this returns: the caller may then answer the C-STORE.

        ``before_commit`` runs inside that transaction once the instance row is written (not
        when the instance is kept or refused), holding the row's lock: the storage SCP moves
        the file into place there, so that of two processes storing the same SOP instance at
        once, the last to rename is the last to commit and row and file agree. It may run
        again if the transaction is retried; an exception from it rolls the row back.

        ``header_later``: the row's header document (``instances.header``) may be written
        by ``write_headers`` after this returns, when the C-STORE has been answered, rather
        than in this transaction: the storage SCP's single sender then does not wait for it
        (making and storing it is ~10 % of an instance's work in serve). Only where the row
        is a new instance of a series this process placed lately (SQLite, ``_add_placed``);
        elsewhere the document is in the row as without it. Until it is written the row's
        header is NULL, and a query that needs it reads the file (Query, QueryOptions.locate);
        a server stopped in between leaves it so, and ``pacsbox check --repair`` writes it.
        ``header`` must not change until ``write_headers`` has run.

        Raises HeaderError (a ValueError) if the header lacks the Study, Series or SOP
        Instance UID.
        """
        policy = OnDuplicate(on_duplicate)
        values, row = self._row(header, path, size, transfer_syntax, calling_ae, area, received_at,
                                document=not header_later)  # fmt: skip
        if not header_later:
            return self._add_row(values, row, policy, before_commit)
        if self._instance_rows.sql is not None:
            done = self._add_placed([(values, row, policy, before_commit)], later=[header])
            if done is not None:
                return done[0]
        row["header"] = header_document(header)
        return self._add_general([(values, row, policy, before_commit)])[0]

    def write_headers(self) -> int:
        """Write the header documents ``add(..., header_later=True)`` left out of their rows,
        in one transaction; how many were written. A row replaced meanwhile (its document
        written with it) keeps its own. When this fails (it logs why), those rows keep a
        NULL header: queries read their files, ``pacsbox check --repair`` writes them."""
        later, self._later = self._later, []
        if not later:
            return 0
        params = []
        for row_id, uid, header in later:
            try:
                params.append((dumps(header_document(header)), row_id, uid))
            except Exception as exc:  # the file is stored and indexed; its query keys are not
                log.warning("Cannot make the header document of %s: %s", uid, exc)
        with self._lock, self._writing():
            try:
                conn = self._connection()
                driver = conn.connection.driver_connection
                if conn.in_transaction():
                    raise sqlite3.OperationalError("the index is inside another transaction")
                driver.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
                try:
                    written = driver.executemany(_WRITE_HEADER, params).rowcount  # type: ignore[union-attr]
                    driver.execute("COMMIT")  # type: ignore[union-attr]
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        driver.execute("ROLLBACK")  # type: ignore[union-attr]
                    raise
            except (sqlite3.Error, ArchiveIndexError) as exc:
                log.warning("Cannot write the header documents of %d instances to the index "
                            "(%s); queries read them from the files until `pacsbox check "
                            "--repair` writes them", len(params), exc)  # fmt: skip
                return 0
            self._driver_committed(conn, len(params))
        return written

    def add_all(self, adds: list[NewInstance]) -> list[AddResult | Exception]:
        """Index several instances in one transaction, one commit for them all (a group
        commit): on SQLite through the driver when each is a new instance of a known series
        (``_add_placed``), else through SQLAlchemy as ``add``'s general path does, on either
        database. If that transaction fails, each goes as ``add`` takes it, so that what
        failed is that instance's result alone. Each result is what ``add`` returns for
        that instance, or the exception it raised (``before_commit`` may have run once
        already then, as on a retried transaction)."""
        results: list[AddResult | Exception | None] = [None] * len(adds)
        numbers, entries = [], []
        for n, new in enumerate(adds):
            try:
                values, row = self._row(new.header, new.path, new.size, new.transfer_syntax,
                                        new.calling_ae, new.area, new.received_at)  # fmt: skip
            except Exception as exc:  # HeaderError: this one's answer, not the others'
                results[n] = exc
                continue
            numbers.append(n)
            entries.append((values, row, OnDuplicate(new.on_duplicate), new.before_commit))
        done = None
        if len(entries) > 1:
            if self._instance_rows.sql is not None:
                done = self._add_placed(entries)
            if done is None:
                with contextlib.suppress(Exception):  # each on its own below: its own error
                    done = self._add_general(entries)
        if done is not None:
            for n, result in zip(numbers, done, strict=True):
                results[n] = result
            return results  # type: ignore[return-value]
        for n, entry in zip(numbers, entries, strict=True):
            try:
                results[n] = self._add_row(*entry)
            except Exception as exc:
                results[n] = exc
        return results  # type: ignore[return-value]

    def write_header(self, sop_instance_uid: str, header, area: str | None = None) -> bool:
        """Write the header document of an instance whose row (in storage area ``area``,
        None: the default one) has none (see ``add``'s header_later: a server stopped before
        writing it), made from ``header`` (its file's); whether it was written."""
        document = header_document(header)
        statement = (
            update(instances)
            .where(instances.c.sop_instance_uid == sop_instance_uid, in_area(area),
                   instances.c.header.is_(None))
            .values(header=document)
        )  # fmt: skip
        return self._write(lambda conn: conn.execute(statement).rowcount) == 1

    def _row(self, header, path, size, transfer_syntax, calling_ae, area, received_at,
             document: bool = True):  # fmt: skip
        """The instance's column values and its row (all but series_fk; the header document
        None unless ``document``); HeaderError when the header cannot be placed."""
        values = header_values(header)
        # serialized by the engine's json_serializer, dumps
        document = header_document(header) if document else None
        return values, {
            "sop_instance_uid": values.sop_instance_uid,
            "sop_class_uid": values.sop_class_uid,
            "instance_number": values.instance_number,
            "transfer_syntax": transfer_syntax,
            "path": path,
            "size": size,
            "received_at": received_at or datetime.now(UTC),
            "calling_ae": calling_ae,
            "area": area or "",  # the column's default area is ""
            "header": document,
        }

    def _add_row(
        self, values: HeaderValues, row: dict[str, Any], policy: OnDuplicate, before_commit
    ) -> AddResult:
        entry = [(values, row, policy, before_commit)]
        if self._instance_rows.sql is not None:  # SQLite: a known series in one driver step
            done = self._add_placed(entry)
            if done is not None:
                return done[0]
        return self._add_general(entry)[0]

    def _add_general(self, entries: list[_Entry]) -> list[AddResult]:
        """``add``'s general path (SQLAlchemy's) for ``entries`` in one transaction, retried
        whole as ``_write`` retries; when it raises, nothing is committed."""
        placements: list[tuple[str, _Placement]] = []  # (series UID, where it is)

        def work(conn: Connection) -> list[AddResult]:
            placements.clear()
            results = []
            for values, row, policy, before_commit in entries:
                self._placed = None
                result = self._add(conn, values, row, policy)
                if before_commit is not None and result.outcome in _WRITTEN:
                    before_commit()
                if self._placed is not None:
                    placements.append((values.series_instance_uid, self._placed))
                results.append(result)
            return results

        results = self._write(work)
        self._placements.update(placements)  # kept once committed
        if len(self._placements) > _PLACEMENTS_MAX:  # a server runs for months: series come
            now = time.monotonic()  # and go, and one not seen for _PLACEMENT_TTL is no help
            self._placements = {
                uid: placed
                for uid, placed in self._placements.items()
                if now - placed.at < _PLACEMENT_TTL
            }
        return results

    def _driver_committed(self, conn: Connection, rows: int) -> None:
        """After a transaction said straight to the driver: what the engine's "commit" event
        does for SQLAlchemy's, the checkpointer told of ``rows`` rows."""
        if self._checkpointer is not None:
            self._checkpointer.committed(rows)
            if self._checkpointer.due:
                self._checkpointer.catch_up(conn)

    def _add_placed(
        self, entries: list[_Entry], later: list | None = None
    ) -> list[AddResult] | None:
        """SQLite: new instances of series whose rows this process placed lately and that
        change none of their values (``_Placement``) are one INSERT each, in a transaction
        said straight to the driver: BEGIN IMMEDIATE, each row and its ``before_commit``,
        COMMIT. Through SQLAlchemy's Connection.begin() and its events, Index.add cost ~20 us
        more (~150 us against ~130 us in-process, tmpfs, bench CT), and the writers' lock
        was held longer; several instances in one transaction (``add_all``) share the BEGIN
        and COMMIT (~25 us of the ~37 us a transaction costs in a loop).

        None when this path does not apply to every entry, or SQLite raised, or (with
        several entries) a ``before_commit`` raised: then nothing is committed, and the
        caller takes ``add``'s general path (SQLAlchemy's, which retries and words the
        errors; ``before_commit`` may run again there, as on any retry). With one entry,
        an exception from its ``before_commit`` rolls the row back and propagates, as on
        the general path.

        ``later``: for each entry, the header whose document ``write_headers`` is to write
        into the row once this committed (the row's is None), or None.
        """
        params = []
        for v, row, _, _ in entries:
            placed = self._placement(v)
            if placed is None:
                return None
            row["series_fk"] = placed.series_id
            params.append(self._instance_rows.values(row))
        with self._lock, self._writing():
            conn = self._connection()
            if conn.in_transaction():
                return None
            driver = conn.connection.driver_connection
            try:
                driver.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
            except sqlite3.Error:
                return None
            ids = []
            try:
                for (*_, before_commit), values in zip(entries, params, strict=True):
                    inserted = driver.execute(self._instance_rows.sql, values).fetchone()  # type: ignore[union-attr]
                    if inserted is None:  # the UID is indexed: the general path decides
                        driver.execute("ROLLBACK")  # type: ignore[union-attr]
                        return None
                    ids.append(inserted[0])
                    if before_commit is not None:
                        before_commit()
                driver.execute("COMMIT")  # type: ignore[union-attr]
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    if driver.in_transaction:  # type: ignore[union-attr]
                        driver.execute("ROLLBACK")  # type: ignore[union-attr]
                if isinstance(exc, sqlite3.IntegrityError):  # the series went meanwhile
                    self._placements.clear()
                if isinstance(exc, sqlite3.Error) or (
                    len(entries) > 1 and isinstance(exc, Exception)
                ):
                    return None
                raise
            if later is not None:
                self._later += [
                    (row_id, v.sop_instance_uid, header)
                    for row_id, (v, *_), header in zip(ids, entries, later, strict=True)
                    if header is not None
                ]
            self._driver_committed(conn, len(entries))
        return [
            AddResult(AddOutcome.ADDED, v.sop_instance_uid, row["path"]) for v, row, _, _ in entries
        ]

    def _placement(
        self, v: HeaderValues, rows: tuple[dict, dict, dict] | None = None
    ) -> _Placement | None:
        """Where this process placed ``v``'s series lately, if those rows still hold these
        values (then the instance's row alone is to be written). ``rows``: v's patient, study
        and series rows, if the caller has them."""
        placed = self._placements.get(v.series_instance_uid)
        if placed is None or time.monotonic() - placed.at >= _PLACEMENT_TTL:
            return None
        key = _placement_key(v)
        if key == placed.fitted:  # the values of the last instance that fitted: this fits
            return placed
        patient, study, series_ = rows or (_patient_row(v), _study_row(v), _series_row(v))
        if not placed.fits(v, patient, study, series_):
            return None
        placed.fitted = key
        return placed

    def _add(
        self, conn: Connection, v: HeaderValues, row: dict[str, Any], policy: OnDuplicate
    ) -> AddResult:
        uid = v.sop_instance_uid
        patient, study, series_ = _patient_row(v), _study_row(v), _series_row(v)
        placed = self._placement(v, (patient, study, series_))
        if placed is not None:  # PostgreSQL's way (SQLite's is _add_placed), or a retry
            row["series_fk"] = placed.series_id
            try:
                if conn.execute(self._insert_instance, row).first() is not None:
                    return AddResult(AddOutcome.ADDED, uid, row["path"])
            except IntegrityError:  # the series went meanwhile (another process removed it)
                self._placements.clear()
                raise _Restart from None
            # the UID is indexed already: the full path below decides what to do
        existing = conn.execute(_SELECT_INSTANCE, {"uid": uid, "area": row["area"]}).first()
        if existing is not None and policy is not OnDuplicate.REPLACE:
            outcome = AddOutcome.KEPT if policy is OnDuplicate.KEEP else AddOutcome.REFUSED
            return AddResult(outcome, uid, existing.path)
        now = time.monotonic()
        patient_fk, patient_values = self._patient(conn, v, patient)
        study_fk, study_values = self._study(conn, v, study, patient_fk)
        series_fk, series_values = self._series(conn, v, series_, study_fk)
        self._placed = _Placement(
            (v.patient_id, v.issuer),
            patient_values,
            v.study_instance_uid,
            study_values,
            series_fk,
            series_values,
            now,
        )  # fmt: skip; kept once committed (_add_general)
        row["series_fk"] = series_fk
        if existing is None:
            if conn.execute(self._insert_instance, row).first() is not None:
                return AddResult(AddOutcome.ADDED, uid, row["path"])
            # another process indexed this UID since our select: decide again, from the top
            raise _Restart
        conn.execute(update(instances).where(instances.c.id == existing.id).values(row))
        if existing.series_fk != series_fk:
            self._prune(conn, Level.SERIES, existing.series_fk)
        old = existing.path if existing.path != row["path"] else None
        return AddResult(AddOutcome.REPLACED, uid, row["path"], old)

    # Each returns the row's id and its attribute values as the index now holds them.

    def _patient(self, conn: Connection, v: HeaderValues, new: dict) -> tuple[int, tuple]:
        key = {"patient_id": v.patient_id, "issuer": v.issuer}
        stored = conn.execute(_SELECT_PATIENT, key).first()
        if stored is None:
            created = conn.execute(self._insert_patient, new).first()
            if created is not None:
                return created.id, tuple(new[name] for name in _PATIENT_ATTRIBUTES)
            stored = conn.execute(_SELECT_PATIENT, key).one()  # a concurrent insert won
        changes = _changes(stored[1:], new, _PATIENT_ATTRIBUTES)
        if changes:
            conn.execute(update(patients).where(patients.c.id == stored.id).values(changes))
        return stored.id, _merged(stored[1:], changes, _PATIENT_ATTRIBUTES)

    def _study(
        self, conn: Connection, v: HeaderValues, new: dict, patient_fk: int
    ) -> tuple[int, tuple]:
        return self._child(conn, Level.STUDY, v.study_instance_uid, new, patient_fk)

    def _series(
        self, conn: Connection, v: HeaderValues, new: dict, study_fk: int
    ) -> tuple[int, tuple]:
        return self._child(conn, Level.SERIES, v.series_instance_uid, new, study_fk)

    def _child(
        self, conn: Connection, level: Level, uid: str, new: dict, parent_fk: int
    ) -> tuple[int, tuple]:
        """The study or series row of ``uid`` under ``parent_fk``, created or updated; a row
        that names another parent follows the latest instance (a study to its patient, a
        series UID reused in another study), and the parent it left is pruned if empty."""
        table, parent_key, _ = _HIERARCHY[level]
        select_stored, insert, names = (
            (_SELECT_STUDY, self._insert_study, _STUDY_ATTRIBUTES)
            if level is Level.STUDY
            else (_SELECT_SERIES, self._insert_series, _SERIES_ATTRIBUTES)
        )
        stored = conn.execute(select_stored, {"uid": uid}).first()
        if stored is None:
            created = conn.execute(insert, {**new, parent_key.name: parent_fk}).first()
            if created is not None:
                return created.id, tuple(new[name] for name in names)
            stored = conn.execute(select_stored, {"uid": uid}).one()  # a concurrent insert won
        changes = _changes(stored[2:], new, names)
        if stored[1] != parent_fk:
            changes[parent_key.name] = parent_fk
        if changes:
            conn.execute(update(table).where(table.c.id == stored.id).values(changes))
            if parent_key.name in changes:
                self._prune(conn, Level(level + 1), stored[1])
        return stored.id, _merged(stored[2:], changes, names)

    # --- removing --------------------------------------------------------------------------
    # Each level locks the parent row, then looks at its children with a fresh statement: on
    # PostgreSQL the FOR UPDATE waits for every add whose foreign-key check holds the row.

    def _prune(self, conn: Connection, level: Level, row_id: int) -> None:
        """Remove the row at ``level`` if no child is left in it, then its parent likewise."""
        for table, parent_key, child_key in _HIERARCHY[level:]:
            locked = select(parent_key).where(table.c.id == row_id).with_for_update()
            parent = conn.execute(locked).scalar()
            if parent is None or conn.execute(select(exists().where(child_key == row_id))).scalar():
                return
            conn.execute(delete(table).where(table.c.id == row_id))
            row_id = parent

    def remove_instance(self, sop_instance_uid: str, area: AreaChoice = ANY_AREA) -> str | None:
        """Remove the instance's copy in storage area ``area`` (None: the default area; by
        default its most recently received copy) and a series, study, patient it leaves
        empty; returns its path, for the caller to delete the file, or None if it was not
        indexed."""
        chosen = _copy(select(instances.c.id, instances.c.path, instances.c.series_fk),
                       sop_instance_uid, area).with_for_update()  # fmt: skip

        def work(conn: Connection) -> str | None:
            self._placements.clear()
            row = conn.execute(chosen).first()
            if row is None:
                return None
            conn.execute(delete(instances).where(instances.c.id == row.id))
            self._prune(conn, Level.SERIES, row.series_fk)
            return row.path

        return self._write(work)

    def remove_empty(self) -> int:
        """Remove the series without instances, the studies without series and the patients
        without studies, which rows deleted behind the index's back leave (the index itself
        never does; `pacsbox check --repair`); returns how many rows went."""

        def rows() -> int:
            stats = self.stats()
            return stats.patients + stats.studies + stats.series

        before = rows()
        self._placements.clear()
        for level, (table, _, child_key) in zip(Level, _HIERARCHY, strict=True):
            empty = select(table.c.id).where(~exists().where(child_key == table.c.id))
            for row_id in self._read(lambda conn, q=empty: list(conn.execute(q).scalars())):
                self._write(lambda conn, i=row_id, lv=level: self._prune(conn, lv, i))
        return before - rows()

    def remove_study(self, study_instance_uid: str) -> list[str]:
        """Remove the study, its series and instances (and its patient if left without
        studies); returns the paths of the instances' files, for the caller to delete."""

        def work(conn: Connection) -> list[str]:
            self._placements.clear()
            study = conn.execute(
                select(studies.c.id, studies.c.patient_fk)
                .where(studies.c.study_instance_uid == study_instance_uid)
                .with_for_update()
            ).first()
            if study is None:
                return []
            series_ids = list(
                conn.execute(
                    select(series.c.id).where(series.c.study_fk == study.id).with_for_update()
                ).scalars()
            )
            paths = list(
                conn.execute(
                    delete(instances)
                    .where(instances.c.series_fk.in_(series_ids))
                    .returning(instances.c.path)
                ).scalars()
            )
            conn.execute(delete(series).where(series.c.study_fk == study.id))
            conn.execute(delete(studies).where(studies.c.id == study.id))
            self._prune(conn, Level.PATIENT, study.patient_fk)
            return paths

        return self._write(work)

    # --- reading ---------------------------------------------------------------------------

    def get_instance(
        self, sop_instance_uid: str, area: AreaChoice = ANY_AREA
    ) -> InstanceRecord | None:
        """The instance's copy in storage area ``area`` (None: the default area; by default its
        most recently received copy, whichever area holds it), or None."""
        query = (
            select(
                instances.c.sop_instance_uid,
                instances.c.sop_class_uid,
                series.c.series_instance_uid,
                studies.c.study_instance_uid,
                patients.c.patient_id,
                patients.c.issuer,
                instances.c.instance_number,
                instances.c.transfer_syntax,
                instances.c.path,
                instances.c.size,
                instances.c.received_at,
                instances.c.calling_ae,
                instances.c.area,
                instances.c.header,
            )
            .join(series, series.c.id == instances.c.series_fk)
            .join(studies, studies.c.id == series.c.study_fk)
            .join(patients, patients.c.id == studies.c.patient_fk)
        )
        row = self._read(lambda conn: conn.execute(_copy(query, sop_instance_uid, area)).first())
        if row is None:
            return None
        fields = row._asdict()
        fields["received_at"] = _utc(row.received_at)
        fields["area"] = row.area or None
        return InstanceRecord(**fields)

    def get_study(self, study_instance_uid: str) -> StudyRecord | None:
        """The study with its patient and the computed Modalities in Study, Number of Study
        Related Series and Number of Study Related Instances (PS3.4 C.3.4)."""
        query = (
            select(
                studies.c.id,
                studies.c.study_instance_uid,
                patients.c.patient_id,
                patients.c.issuer,
                patients.c.patient_name,
                studies.c.study_date,
                studies.c.study_time,
                studies.c.accession_number,
                studies.c.study_id,
                studies.c.description,
                studies.c.referring_physician,
            )
            .join(patients, patients.c.id == studies.c.patient_fk)
            .where(studies.c.study_instance_uid == study_instance_uid)
        )

        def work(conn: Connection) -> StudyRecord | None:
            row = conn.execute(query).first()
            if row is None:
                return None
            modalities = conn.execute(
                select(series.c.modality).where(series.c.study_fk == row.id).distinct()
            ).scalars()
            n_series = conn.execute(
                select(func.count()).select_from(series).where(series.c.study_fk == row.id)
            ).scalar_one()
            n_instances = conn.execute(
                select(func.count())
                .select_from(instances)
                .join(series, series.c.id == instances.c.series_fk)
                .where(series.c.study_fk == row.id)
            ).scalar_one()
            fields = row._asdict()
            del fields["id"]
            return StudyRecord(
                **fields,
                modalities_in_study=tuple(sorted(m for m in modalities if m)),
                number_of_series=n_series,
                number_of_instances=n_instances,
            )

        return self._read(work)

    def studies_of_area(self, area: str | None) -> list[AreaStudy]:
        """The studies with instances in storage area ``area`` (None: the default area),
        least recently received first (as dcmqrscp picks the study to delete past
        maxStudies), with their instance count and size in that area."""
        last = func.max(instances.c.received_at)
        query = (
            select(
                studies.c.study_instance_uid,
                func.min(instances.c.received_at),
                last,
                func.count(instances.c.id),
                func.sum(instances.c.size),
            )
            .select_from(instances)
            .join(series, series.c.id == instances.c.series_fk)
            .join(studies, studies.c.id == series.c.study_fk)
            .where(in_area(area))
            .group_by(studies.c.id, studies.c.study_instance_uid)
            .order_by(last, studies.c.id)
        )
        rows = self._read(lambda conn: conn.execute(query).all())
        return [
            AreaStudy(uid, _utc(first), _utc(latest), int(n), int(size or 0))
            for uid, first, latest, n, size in rows
        ]

    def stats(self) -> IndexStats:
        """Row counts of the four levels."""

        def work(conn: Connection) -> IndexStats:
            counts = [
                conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (patients, studies, series, instances)
            ]
            return IndexStats(*counts)

        return self._read(work)

    # --- storage areas (dcmqrscp's AETable quotas) -------------------------------------------

    def instance_location(
        self, sop_instance_uid: str, area: AreaChoice = ANY_AREA
    ) -> InstanceLocation | None:
        """The area, path, size and study of an indexed instance's copy in storage area
        ``area`` (None: the default area; by default its most recently received copy), or
        None: checked before a received file is renamed into place, so that a kept or
        refused duplicate never overwrites the stored one."""
        query = (
            select(
                instances.c.sop_instance_uid,
                studies.c.study_instance_uid,
                instances.c.area,
                instances.c.path,
                instances.c.size,
            )
            .join(series, series.c.id == instances.c.series_fk)
            .join(studies, studies.c.id == series.c.study_fk)
        )
        row = self._read(lambda conn: conn.execute(_copy(query, sop_instance_uid, area)).first())
        if row is None:
            return None
        uid, study, area_column, path, size = row
        return InstanceLocation(uid, study, area_column or None, path, size)

    def area_usage(self, area: str | None, study_instance_uid: str) -> AreaUsage:
        """The instances and bytes of the study in storage area ``area`` (None: the default
        area) and, when it has none there, the number of studies the area holds."""
        this_area = in_area(area)
        of_study = (
            select(func.count(instances.c.id), func.coalesce(func.sum(instances.c.size), 0))
            .select_from(instances)
            .join(series, series.c.id == instances.c.series_fk)
            .join(studies, studies.c.id == series.c.study_fk)
            .where(studies.c.study_instance_uid == study_instance_uid, this_area)
        )
        count_studies = (
            select(func.count(func.distinct(series.c.study_fk)))
            .select_from(instances)
            .join(series, series.c.id == instances.c.series_fk)
            .where(this_area)
        )

        def work(conn: Connection) -> AreaUsage:
            count, size = conn.execute(of_study).one()
            held = conn.execute(count_studies).scalar_one() if count == 0 else None
            return AreaUsage(int(count), int(size), held)

        return self._read(work)

    def remove_area_study(self, study_instance_uid: str, area: str | None) -> list[str]:
        """Remove the study's instances in storage area ``area`` (and the series, study and
        patient left empty; instances in other areas stay); returns their paths, relative to
        the area's directory, for the caller to delete the files."""
        chosen = (
            select(instances.c.id)
            .join(series, series.c.id == instances.c.series_fk)
            .join(studies, studies.c.id == series.c.study_fk)
            .where(studies.c.study_instance_uid == study_instance_uid, in_area(area))
        )

        def work(conn: Connection) -> list[str]:
            self._placements.clear()
            removed = conn.execute(
                delete(instances)
                .where(instances.c.id.in_(chosen.scalar_subquery()))
                .returning(instances.c.path, instances.c.series_fk)
            ).all()
            for series_fk in {row.series_fk for row in removed}:
                self._prune(conn, Level.SERIES, series_fk)
            return [row.path for row in removed]

        return self._write(work)


# free pages below which an upgraded SQLite index is not compacted
_COMPACT_BYTES = 16_000_000


def _newer_index(current: str, head: str) -> str:
    return (
        f"the index database is at schema revision {current}, which this pacsbox does not know "
        f"(its newest is {head}): it was written by a newer pacsbox. Upgrade pacsbox, or use "
        "another database"
    )


def _copy(query, sop_instance_uid: str, area: AreaChoice):
    """``query`` (a select of instances) narrowed to the instance's copy in ``area``, or with
    ANY_AREA to its most recently received copy first."""
    query = query.where(instances.c.sop_instance_uid == sop_instance_uid)
    if area is ANY_AREA:
        return query.order_by(instances.c.received_at.desc(), instances.c.id.desc()).limit(1)
    return query.where(in_area(area))


def _writer_lock_file(engine: Engine) -> int | None:
    """A descriptor of ``<database>-writer`` to flock around write transactions, for SQLite
    on a file where flock exists; None otherwise (PostgreSQL queues writers on row locks)."""
    database = engine.url.database or ""
    if (
        engine.dialect.name != "sqlite"
        or fcntl is None
        or database in ("", ":memory:")
        or database.startswith("file:")
    ):
        return None
    path = Path(database).expanduser()
    return os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)


class _Checkpointer:
    """SQLite's WAL checkpoints in a thread of their own, off the C-STORE's path.

    By default the commit that takes the WAL past 1000 pages copies them into the database
    file and syncs it, inside that commit: every ~170th C-STORE waited 5-10 ms for it, ~50 us
    an instance on average. Here the connections have ``wal_autocheckpoint=0``, and once
    ``EVERY`` rows are committed this thread runs a PASSIVE checkpoint on a connection of its
    own (it never blocks a writer or a reader; sqlite3 lets the GIL go meanwhile). A crash
    loses nothing: committed transactions are in the WAL.

    The WAL file starts over only when a checkpoint has copied all of it, and one that runs
    while C-STOREs keep committing never quite catches up: past ``LIMIT`` frames the writer
    runs the checkpoint itself after its next commit (``due``), with the bulk of the copying
    done already, so the WAL stays bounded during a long burst.
    """

    EVERY = 100
    LIMIT = 4000  # frames (pages): ~16 MB of WAL

    def __init__(self, database: str, uri: bool, busy_timeout: float) -> None:
        self._database, self._uri, self._timeout = database, uri, busy_timeout
        self._wake = threading.Event()
        self._closing = False
        self._commits = 0
        self.due = False  # the writer should checkpoint after its next commit
        self._thread = threading.Thread(target=self._run, name="pacsbox-checkpoint", daemon=True)
        self._thread.start()

    @classmethod
    def for_url(cls, url: URL, busy_timeout: float) -> _Checkpointer | None:
        database = url.database or ""
        if not database or database == ":memory:" or "memory" in (url.query.get("mode"), database):
            return None
        uri = database.startswith("file:")
        return cls(database if uri else str(Path(database).expanduser()), uri, busy_timeout)

    def committed(self, rows: int = 1) -> None:
        """After a commit of ``rows`` instances (their pages go to the WAL)."""
        self._commits += rows
        if self._commits >= self.EVERY:
            self._commits = 0
            self._wake.set()

    def catch_up(self, conn: Connection) -> None:
        """The writer's checkpoint, when ``due``: after a commit, outside any transaction."""
        self.due = False
        try:
            conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint of the index failed: %s", exc)

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=self._timeout + 5)

    def _run(self) -> None:
        conn = None
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._closing:
                    return
                try:
                    if conn is None:
                        conn = sqlite3.connect(
                            self._database, timeout=self._timeout, uri=self._uri,
                            isolation_level=None, check_same_thread=False,
                        )  # fmt: skip
                    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames > self.LIMIT:
                        self.due = True
                except sqlite3.Error as exc:  # the next one tries again; the WAL keeps all
                    log.warning("WAL checkpoint of the index failed: %s", exc)
        finally:
            if conn is not None:
                conn.close()


def _sqlite_engine(
    url: URL, busy_timeout: float, checkpointer: _Checkpointer | None = None
) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout},
        json_serializer=dumps,
        json_deserializer=loads,
        pool_size=1,  # the writer's connection; queries take their own (WAL: they never block)
        max_overflow=8,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        # We say BEGIN ourselves (below): pysqlite's implicit BEGIN is DEFERRED, and a
        # deferred transaction that then writes fails at once with SQLITE_BUSY when another
        # process wrote in between, whatever the busy timeout.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        _wal_mode(cursor, busy_timeout)
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never corrupt
        cursor.execute("PRAGMA foreign_keys=ON")
        if checkpointer is not None:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's thread does it
        cursor.close()

    if checkpointer is not None:
        event.listen(engine, "commit", lambda _conn: checkpointer.committed())

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # straight to the driver: exec_driver_sql's statement machinery cost ~40 us a C-STORE
        dbapi = conn.connection.driver_connection
        dbapi.execute("BEGIN IMMEDIATE" if conn.info.get(_IMMEDIATE) else "BEGIN")  # type: ignore[union-attr]

    return engine


def _wal_mode(cursor, busy_timeout: float) -> None:
    """Put the database in WAL mode (readers never block the writer; the mode is kept in the
    file). Switching takes an exclusive lock and SQLite answers "database is locked" at once,
    without its busy handler, while another process is creating the same new file: retry."""
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
