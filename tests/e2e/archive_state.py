"""Helpers for the archive's robustness tests: many instances of one study on disk, DCMTK
storescu run so that each acknowledged instance is known as it is acknowledged, the index
database per test (SQLite or a throwaway PostgreSQL schema), and the archive's state checked
(index rows against files)."""

from __future__ import annotations

import contextlib
import copy
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy import func, select

from pacsbox.archive import Index
from pacsbox.archive.schema import instances, patients, series, studies
from tests import peers
from tests.archive.headers import pg_admin, pg_schema_url


@dataclass(frozen=True, slots=True)
class Instance:
    path: Path
    sop_instance_uid: str
    series_instance_uid: str


def write_study(directory: Path, count: int, *, series_count: int = 2) -> list[Instance]:
    """``count`` CT images (pydicom's CT_small, ~39 KB each) of one patient and one study,
    spread over ``series_count`` series, as Part 10 files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    template.StudyInstanceUID = generate_uid()
    series_uids = [generate_uid() for _ in range(series_count)]
    written = []
    for n in range(count):
        ds = copy.deepcopy(template)
        ds.SeriesInstanceUID = series_uids[n % series_count]
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = n + 1
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = directory / f"ct{n:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(Instance(path, ds.SOPInstanceUID, ds.SeriesInstanceUID))
    return written


class Storescu:
    """DCMTK's storescu -v sending ``files`` in one association, started at once; its log is
    read line by line, so the instances the server acknowledged are known as they are.

    ``acknowledged`` holds the paths of files answered with a success (or warning) status.
    """

    def __init__(self, port: int, files: list[Path], *, called_ae: str = "PACSBOX") -> None:
        argv = [peers.require("storescu"), "-v", "-aec", called_ae, "127.0.0.1", str(port)]
        self.process = subprocess.Popen(
            [*argv, *map(str, files)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=peers.dcmtk_env(),
        )
        self.acknowledged: list[Path] = []
        self.log: list[str] = []
        self._current: Path | None = None

    def lines(self) -> Iterator[str]:
        """storescu's log lines as they come (ends when it exits), noting acknowledgements."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line)
            if line.startswith("I: Sending file: "):
                self._current = Path(line[len("I: Sending file: ") :].strip())
            elif line.startswith("I: Received Store Response (") and self._current:
                if "Success" in line or "Warning" in line:
                    self.acknowledged.append(self._current)
                self._current = None
            yield line

    def run_until(self, condition: Callable[[], bool]) -> None:
        """Read the log until ``condition()`` holds (checked after each line) or it ends."""
        for _ in self.lines():
            if condition():
                return

    def finish(self) -> int:
        """Read the rest of the log; storescu's exit status."""
        for _ in self.lines():
            pass
        return self.process.wait(timeout=120)

    def output(self) -> str:
        return "".join(self.log)


@dataclass
class ArchiveState:
    """What the index holds, checked against the storage root's files."""

    rows: dict[str, tuple[str, int]] = field(default_factory=dict)  # uid -> (path, size)
    duplicated_uids: list[str] = field(default_factory=list)
    patients: int = 0
    studies: int = 0
    series: int = 0
    rows_without_file: list[str] = field(default_factory=list)
    rows_with_wrong_size: list[str] = field(default_factory=list)
    files_without_row: list[Path] = field(default_factory=list)  # DICOM files not indexed
    temp_files: list[Path] = field(default_factory=list)  # .incoming-*.part left behind

    def summary(self) -> str:
        return (
            f"{len(self.rows)} rows ({self.patients} patients, {self.studies} studies, "
            f"{self.series} series); rows without file: {len(self.rows_without_file)}, "
            f"with wrong size: {len(self.rows_with_wrong_size)}; files without row: "
            f"{len(self.files_without_row)}, temp files left: {len(self.temp_files)}"
        )


def archive_state(url: str, data: Path) -> ArchiveState:
    state = ArchiveState()
    with Index.open(url) as index, index.engine.connect() as conn:
        for uid, path, size in conn.execute(
            select(instances.c.sop_instance_uid, instances.c.path, instances.c.size)
        ):
            if uid in state.rows:
                state.duplicated_uids.append(uid)
            state.rows[uid] = (path, size)
        state.duplicated_uids += conn.execute(
            select(instances.c.sop_instance_uid)
            .group_by(instances.c.sop_instance_uid)
            .having(func.count() > 1)
        ).scalars()
        count = lambda table: conn.execute(select(func.count()).select_from(table)).scalar_one()  # noqa: E731
        state.patients, state.studies, state.series = map(count, (patients, studies, series))
    root = data / "files"
    indexed = set()
    for uid, (path, size) in state.rows.items():
        file = root / path
        indexed.add(file)
        if not file.is_file():
            state.rows_without_file.append(uid)
        elif file.stat().st_size != size:
            state.rows_with_wrong_size.append(uid)
    for file in root.rglob("*"):
        if file.relative_to(root).parts[0] == ".damaged":  # set aside by pacsbox check
            continue
        if file.name.startswith(".incoming-"):
            state.temp_files.append(file)
        elif file.is_file() and file not in indexed:
            state.files_without_row.append(file)
    return state


@pytest.fixture(params=["sqlite", "postgresql"])
def index_db(request, tmp_path) -> Iterator[tuple[tuple[str, ...], str]]:
    """(the serve flags for the index, its URL): SQLite in tmp_path/data, or a throwaway
    PostgreSQL schema."""
    if request.param == "sqlite":
        yield (), f"sqlite:///{tmp_path / 'data' / 'index.sqlite'}"
        return
    with pg_schema() as url:
        yield ("--db", url), url


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """A throwaway PostgreSQL schema: its URL, dropped afterwards."""
    name = f"serve_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE SCHEMA {name}")
    try:
        yield pg_schema_url(name)
    finally:
        pg_admin(f"DROP SCHEMA {name} CASCADE")
