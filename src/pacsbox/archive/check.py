"""`pacsbox check`'s work: the archive's index rows against its files, and the repair.

What it finds (``Finding.kind``; ``KINDS`` says each in words):

- an index row whose file is missing, or whose file's size differs from the row, or whose
  file holds another SOP instance (read cheaply: the file name when it ends in the row's
  SOP Instance UID, as serve's and dcmqrscp's names do, else the start of the file);
- a file under a storage root with no row (an orphan: renamed into place, then the server
  was killed before the commit), a file there that is not DICOM, a row of an area the
  configuration does not have;
- temp files ``.incoming-<pid>-<n>.part`` left by a stopped server. A temp file counts as
  left over (and ``repair`` deletes it) only when no process of this machine has it open
  and it was not modified for ``stale_after`` seconds: a running server keeps its temp
  files open (the one it receives into and its empty spare), and one on another machine
  sharing the root writes to them at least every idle timeout (serve's default 60 s).

``repair`` removes rows whose file is gone (Index.remove_instance prunes the series, study,
patient left empty), re-indexes a file with a wrong size or no row from the file itself once
it is checked as the storage SCP checks a received data set (header parsed up to Pixel Data,
Pixel Data whole), sets a file that is not whole aside in ``<root>/.damaged/`` (and removes
its row), deletes an orphan identical to the indexed copy of its instance, and deletes stale
temp files. It checks each finding again just before acting on it, so that an archive a
server is writing to is not damaged by a repair; it is meant for a stopped archive all the
same, or a quiet one.
"""

from __future__ import annotations

import filecmp
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import exists, select

from .schema import instances, patients, series, studies

TEMP_PREFIX, TEMP_SUFFIX = ".incoming-", ".part"
DAMAGED = ".damaged"  # folder under a root where repair sets aside files that are not whole

# kind -> (what it is, in words; whether it makes the archive inconsistent)
KINDS: dict[str, tuple[str, bool]] = {
    "missing_file": ("index rows whose file is missing", True),
    "wrong_size": ("files whose size differs from their index row", True),
    "wrong_instance": ("files that hold another SOP instance than their index row", True),
    "orphan": ("files with no index row", True),
    "damaged": ("files that are not whole DICOM data sets", True),
    "stale_temp": ("temp files left by a stopped server", True),
    "empty_level": ("series, studies, patients left without instances", True),
    "unknown_area": ("index rows of a storage area not in the configuration", True),
    "not_dicom": ("files under the storage root that are not DICOM (left alone)", True),
    "temp_in_use": ("temp files of a running server (open, or recently written)", False),
    "no_header": ("index rows without their header document (queries read the file)", False),
}


@dataclass(slots=True)
class Finding:
    kind: str
    path: str  # the file, absolute
    sop_instance_uid: str | None = None
    area: str | None = None
    detail: str = ""
    repair: str | None = None  # what repair did, or why it did not

    @property
    def repaired(self) -> bool:
        """Whether repair dealt with it (a file not whole that was set aside was)."""
        return self.repair is not None and not self.repair.startswith(_NOT_DONE)


# how the repair's sentences start when it did nothing
_NOT_DONE = ("not repaired", "not deleted", "left alone")


@dataclass(slots=True)
class Report:
    roots: dict[str | None, str]
    rows: int = 0
    files: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not any(KINDS[f.kind][1] for f in self.findings)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(KINDS, 0)
        for finding in self.findings:
            counts[finding.kind] += 1
        return counts

    def as_dict(self) -> dict:
        return {
            "consistent": self.consistent,
            "roots": {area or "": path for area, path in self.roots.items()},
            "rows": self.rows,
            "files": self.files,
            "counts": self.counts(),
            "findings": [asdict(f) for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class _Row:
    uid: str
    area: str | None
    path: str
    size: int
    calling_ae: str
    received_at: datetime
    no_header: bool


def check(
    index,
    roots: Mapping[str | None, Path],
    *,
    stale_after: float = 3600.0,
    skip: frozenset[Path] = frozenset(),
) -> Report:
    """The archive's findings: ``roots`` maps each storage area (None: serve's one area) to
    its folder; ``skip``: files under a root that are not the archive's (the SQLite index)."""
    roots = {area: Path(path).resolve() for area, path in roots.items()}
    report = Report({area: str(path) for area, path in roots.items()})
    indexed: set[Path] = set()
    for row in _rows(index):
        report.rows += 1
        root = roots.get(row.area)
        if root is None:
            report.findings.append(
                Finding("unknown_area", row.path, row.uid, row.area,
                        f"area {row.area!r} is not among {sorted(map(str, roots))}")
            )  # fmt: skip
            continue
        file = root / row.path
        indexed.add(file)
        finding = _check_row(row, file)
        if finding is None and row.no_header:  # written after the answer (Index.add's
            finding = Finding("no_header", str(file), row.uid, row.area,  # header_later):
                              "the server stopped before writing it")  # fmt: skip
        if finding is not None:
            report.findings.append(finding)
    report.findings += _empty_levels(index)
    open_files: set[str] | None = None
    now = time.time()
    for area, root in roots.items():
        others = {r for r in roots.values() if r != root and r.is_relative_to(root)}
        for file in _files(root, others):
            if file in skip:
                continue
            report.files += 1
            if file.name.startswith(TEMP_PREFIX) and file.name.endswith(TEMP_SUFFIX):
                if open_files is None:
                    open_files = open_by_processes()
                report.findings.append(_temp_finding(file, area, now, stale_after, open_files))
            elif file not in indexed:
                report.findings.append(_unindexed(file, area))
    return report


def _rows(index) -> Iterator[_Row]:
    query = select(
        instances.c.sop_instance_uid,
        instances.c.area,
        instances.c.path,
        instances.c.size,
        instances.c.calling_ae,
        instances.c.received_at,
        instances.c.header.is_(None),
    ).order_by(instances.c.id)
    with index.engine.connect() as conn:
        for uid, area, *rest in conn.execute(query):
            yield _Row(uid, area or None, *rest)  # "" in the index: the default area


# (level, its table's UID column, its children's key to it)
_LEVELS = (
    ("series", series.c.series_instance_uid, instances.c.series_fk),
    ("study", studies.c.study_instance_uid, series.c.study_fk),
    ("patient", patients.c.patient_id, studies.c.patient_fk),
)


def _empty_levels(index) -> list[Finding]:
    """Series without instances, studies without series, patients without studies (rows
    deleted behind the index's back leave them)."""
    found = []
    with index.engine.connect() as conn:
        for level, uid, child_key in _LEVELS:
            table = uid.table
            query = select(uid).where(~exists().where(child_key == table.c.id))
            for (value,) in conn.execute(query):
                found.append(Finding("empty_level", "", None, None, f"{level} {value} is empty"))
    return found


def _check_row(row: _Row, file: Path) -> Finding | None:
    from ..dicomfile import NotDicomError, read_file_info

    try:
        size = file.stat().st_size
    except FileNotFoundError:
        return Finding("missing_file", str(file), row.uid, row.area, "no such file")
    if size != row.size:
        return Finding("wrong_size", str(file), row.uid, row.area,
                       f"{size} bytes, the row says {row.size}")  # fmt: skip
    if file.name.endswith("." + row.uid):
        return None  # named after its SOP Instance UID, as the storage SCP names files
    try:
        held = read_file_info(file).sop_instance_uid
    except (NotDicomError, OSError) as exc:
        return Finding("damaged", str(file), row.uid, row.area, str(exc).removeprefix(f"{file}: "))
    if held != row.uid:
        return Finding("wrong_instance", str(file), row.uid, row.area, f"the file holds {held}")
    return None


def _files(root: Path, others: set[Path]) -> Iterator[Path]:
    """The files under ``root``, except under the roots of other areas inside it and the
    folder of files set aside."""
    for folder, subfolders, names in os.walk(root):
        here = Path(folder)
        subfolders[:] = sorted(
            name
            for name in subfolders
            if here / name not in others and not (here == root and name == DAMAGED)
        )
        for name in sorted(names):
            yield here / name


def _temp_finding(file: Path, area, now: float, stale_after: float, open_files) -> Finding:
    try:
        age = now - file.stat().st_mtime
    except FileNotFoundError:  # renamed into place or discarded meanwhile
        age = 0.0
    if str(file) in open_files:
        return Finding("temp_in_use", str(file), None, area, "open by a running process")
    if age < stale_after:
        return Finding("temp_in_use", str(file), None, area,
                       f"written {age:.0f} s ago (stale after {stale_after:.0f} s)")  # fmt: skip
    return Finding("stale_temp", str(file), None, area, f"not written for {age:.0f} s")


def _unindexed(file: Path, area) -> Finding:
    from ..dicomfile import NotDicomError, read_file_info

    try:
        uid = read_file_info(file).sop_instance_uid
    except NotDicomError as exc:
        return Finding("not_dicom", str(file), None, area, str(exc).removeprefix(f"{file}: "))
    except OSError as exc:
        return Finding("not_dicom", str(file), None, area, f"unreadable: {exc.strerror or exc}")
    return Finding("orphan", str(file), uid, area, "no index row")


def open_by_processes() -> set[str]:
    """The files some process of this machine has open (from /proc/<pid>/fd; processes we
    may not look into are skipped, so run check as the server's user or root)."""
    found: set[str] = set()
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return found
    for pid in pids:
        fds = f"/proc/{pid}/fd"
        try:
            for fd in os.listdir(fds):
                try:
                    found.add(os.readlink(f"{fds}/{fd}"))
                except OSError:
                    continue
        except OSError:
            continue
    return found


# --- repair -----------------------------------------------------------------------------------


def repair(
    index,
    report: Report,
    roots: Mapping[str | None, Path],
    *,
    stale_after: float = 3600.0,
) -> None:
    """Act on ``report``'s findings (see the module's docstring); each finding's ``repair``
    says what was done. Rows first (so that a re-indexed file may take a removed row's UID),
    then files."""
    roots = {area: Path(path).resolve() for area, path in roots.items()}
    order = ("missing_file", "damaged", "wrong_instance", "wrong_size", "orphan", "no_header",
             "stale_temp")  # fmt: skip
    for kind in order:
        for finding in report.findings:
            if finding.kind != kind:
                continue
            try:
                finding.repair = _REPAIRS[kind](index, finding, roots, stale_after)
            except Exception as exc:  # one finding's failure is reported, the rest go on
                finding.repair = f"not repaired: {type(exc).__name__}: {exc}"
    empty = [f for f in report.findings if f.kind == "empty_level"]
    if empty:
        removed = index.remove_empty()
        for finding in empty:
            finding.repair = f"index pruned: {removed} empty series, study, patient rows went"
    for finding in report.findings:
        if finding.repair is None and KINDS[finding.kind][1]:
            finding.repair = _LEFT_ALONE.get(finding.kind, "left alone")


_LEFT_ALONE = {
    "unknown_area": "left alone: add the area to the configuration (or pass the "
    "configuration it was stored with), then check again",
    "not_dicom": "left alone: not the archive's; move it out of the storage root",
}


def _row_still(index, finding: Finding, roots) -> bool:
    """Whether the index still holds the finding's row, with the same file."""
    record = index.get_instance(finding.sop_instance_uid, finding.area)
    if record is None:
        return False
    return str(roots[record.area] / record.path) == finding.path


def _remove_row(index, finding: Finding, roots, _stale_after) -> str:
    if Path(finding.path).exists() and finding.kind == "missing_file":
        return "not repaired: the file is there again"
    if not _row_still(index, finding, roots):
        return "not repaired: the row changed meanwhile"
    index.remove_instance(finding.sop_instance_uid, finding.area)
    if finding.kind == "damaged":
        return "row removed; " + _set_aside(Path(finding.path), roots[finding.area])
    return "row removed"


def _wrong_instance(index, finding: Finding, roots, _stale_after) -> str:
    if not _row_still(index, finding, roots):
        return "not repaired: the row changed meanwhile"
    index.remove_instance(finding.sop_instance_uid, finding.area)
    file_as = Finding("orphan", finding.path, None, finding.area)
    return "row removed; the file: " + _reindex(index, file_as, roots, _stale_after)


def _reindex(index, finding: Finding, roots, _stale_after) -> str:
    """Index the file from its own header, once checked whole; else set it aside."""
    from ..services.storage_scp import read_stored_header
    from .header import header_values

    file = Path(finding.path)
    root = roots[finding.area]
    try:
        stat = file.stat()
        header, info = read_stored_header(file)
        header_values(header)  # a file cut inside its header lacks the UIDs that place it
    except FileNotFoundError:
        return "not repaired: the file is gone"
    except Exception as exc:
        if finding.sop_instance_uid and finding.kind == "wrong_size":
            if _row_still(index, finding, roots):
                index.remove_instance(finding.sop_instance_uid, finding.area)
            return f"not whole ({exc}): row removed; " + _set_aside(file, root)
        return f"not whole ({exc}): " + _set_aside(file, root)
    if finding.kind == "wrong_size" and info.sop_instance_uid != finding.sop_instance_uid:
        return f"not repaired: the file holds {info.sop_instance_uid}; check again"
    relative = file.relative_to(root).as_posix()
    stored = index.instance_location(info.sop_instance_uid, finding.area)
    if stored is not None and stored.path != relative:
        other_file = root / stored.path
        if other_file.is_file():
            if filecmp.cmp(file, other_file, shallow=False):
                file.unlink()
                return f"deleted: the same bytes as the indexed {other_file}"
            return (
                f"left alone: {info.sop_instance_uid} is indexed as {other_file}, whose "
                "content differs; keep the one you want (delete the other), then check again"
            )
    record = index.get_instance(info.sop_instance_uid, finding.area)
    index.add(
        header,
        path=relative,
        size=stat.st_size,
        transfer_syntax=info.transfer_syntax,
        calling_ae=record.calling_ae if record is not None else "",
        area=finding.area,
        received_at=datetime.fromtimestamp(stat.st_mtime, UTC),
    )
    return "re-indexed from the file" if record is not None else "indexed from the file"


def _write_header(index, finding: Finding, roots, _stale_after) -> str:
    from ..services.storage_scp import read_stored_header

    if not _row_still(index, finding, roots):
        return "not repaired: the row changed meanwhile"
    header, _ = read_stored_header(Path(finding.path))
    if index.write_header(finding.sop_instance_uid, header, finding.area):
        return "header document written from the file"
    return "not repaired: the row has its document now"


def _set_aside(file: Path, root: Path) -> str:
    target = root / DAMAGED / file.relative_to(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(file, target)
    return f"file set aside as {target}"


def _delete_temp(index, finding: Finding, roots, stale_after: float) -> str:
    file = Path(finding.path)
    again = _temp_finding(file, finding.area, time.time(), stale_after, open_by_processes())
    if again.kind != "stale_temp":
        return f"not deleted: {again.detail}"
    file.unlink(missing_ok=True)
    return "deleted"


_REPAIRS = {
    "missing_file": _remove_row,
    "damaged": _remove_row,
    "wrong_instance": _wrong_instance,
    "wrong_size": _reindex,
    "orphan": _reindex,
    "no_header": _write_header,
    "stale_temp": _delete_temp,
}
