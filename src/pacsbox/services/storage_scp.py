"""Storage service class, SCP role (PS3.4 Annex B): C-STORE data sets streamed to files.

Each data set goes to a temp file as it arrives, behind a file meta header we write first;
once whole it is checked (header parsed once, up to Pixel Data), renamed atomically into
place and only then acknowledged. A data set that cannot be parsed gets a failure status and
the association goes on; a peer that aborts mid-transfer leaves no file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import mmap
import os
import struct
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from logging import INFO
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset

from ..dicomfile import dataset_encoding, file_meta_bytes
from ..dimse import CStoreRQ, CStoreRSP
from ..log import log
from ..net.association import LATER, Association, RequestHandler
from ..rawheader import Malformed, RawHeader, Unsupported
from ..services.verification import VERIFICATION
from ..sopclasses import modality_prefix, storage_sop_classes
from ..syntaxes import DEFLATED
from ..ul.negotiation import UNCOMPRESSED, AcceptorPolicy, AgreedContext

# PS3.4 B.2.3 / PS3.7 C: the statuses this SCP sends
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
DATASET_DOES_NOT_MATCH = 0xA900
# "Duplicate SOP Instance", one of PS3.7 Annex C's failure statuses common to all services
# (C.5, like 0x0124 Not Authorized): an instance with this SOP Instance UID exists already.
# The storage statuses of PS3.4 B.2.3 have no code for a refused re-send: A7xx would tell
# the sender to retry later, Cxxx that its data set is broken, both wrong here.
DUPLICATE_SOP_INSTANCE = 0x0111

# What to do with an instance whose SOP Instance UID is indexed already (Index.add's policy)
ON_DUPLICATE = ("replace", "keep", "refuse")

# (status, error comment) to answer a C-STORE with instead of storing the instance
Verdict = tuple[int, str | None]


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """What a StorageSCP stored; ``path`` is None with --ignore."""

    path: Path | None
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    study_instance_uid: str
    calling_ae: str
    size: int


_FILE_MODE = 0o666  # open() applies the umask, as for any file the user creates
_PID = os.getpid()
_SEQUENCE = itertools.count()


def _forked() -> None:
    """A worker process forked by `pacsbox serve --workers` names its temp files by its own
    pid, not its parent's: otherwise the workers' names collide (each collision costs a
    failed O_EXCL open)."""
    global _PID
    _PID = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)

HEAD_BYTES = 1 << 16  # the start of each data set is kept in memory to parse its header


class TempFileSink:
    """A data set's temp file: meta first, fragments as they come; ``commit`` renames it.

    Fragments go to the file with os.write as they arrive (the meta information goes with
    the first, in one writev): no buffer in between, no copy. The start of the data set is
    kept in ``head`` (at least HEAD_BYTES of it when it is that long): the first fragment
    itself (a view of the received PDU, which nothing reuses), copied only when the header
    goes on into the next one. The header is parsed from memory instead of reading the file
    back.

    A write that fails (the disk is full, say) is kept in ``error``: the file is removed at
    once, the rest of the data set is received and dropped, and the C-STORE is answered
    with the reason (0xA700) instead of failing the association.
    """

    __slots__ = (
        "_fd", "_meta", "error", "head", "identity", "length", "limit", "meta_length", "path",
        "tail", "too_large",
    )  # fmt: skip

    def __init__(
        self, temp: tuple[str, int], meta: bytes, limit: int | None = None, stat=None
    ) -> None:
        self.path, fd = temp
        stat = stat or os.fstat(fd)  # the caller may have it already
        self.identity = (stat.st_dev, stat.st_ino)  # the file's, wherever it is renamed to
        self._fd = fd
        self._meta = meta  # written with the first fragment
        self.meta_length = len(meta)
        self.head: bytes | bytearray | memoryview = b""
        self.tail = b""
        self.length = 0  # of the data set
        self.limit = limit  # --max-dataset-size: past it the file goes, the bytes are counted
        self.too_large = False
        self.error: OSError | None = None

    def _fail(self, error: OSError) -> None:
        """Stop writing: keep the first error, remove the file (its space is freed now)."""
        if self.error is None:
            self.error = error
        with contextlib.suppress(OSError):
            self._close_fd()
        _unlink(self.path)

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def _write(self, data: bytes | memoryview) -> None:
        """All of ``data`` after the pending meta, if any (a short write is carried on)."""
        meta, self._meta = self._meta, b""
        written = os.writev(self._fd, (meta, data)) if meta else os.write(self._fd, data)
        if written < len(meta) + len(data):  # rare (a full disk, a signal): carry on
            rest = memoryview(meta + bytes(data))[written:]
            while rest:
                rest = rest[os.write(self._fd, rest) :]

    def write(self, data: memoryview) -> None:
        length = self.length
        if self.limit is not None and length + len(data) > self.limit:
            if not self.too_large:
                self.too_large = True
                self.discard()
            self.length += len(data)
            return
        if self.error is not None:
            self.length += len(data)
            return
        try:
            self._write(data)
        except OSError as exc:
            self._fail(exc)
        if not length:
            self.head = data
        elif len(self.head) < HEAD_BYTES:
            if type(self.head) is not bytearray:
                self.head = bytearray(self.head)
            self.head += data[: HEAD_BYTES - len(self.head)]
        self.length = length + len(data)
        self.tail = (self.tail + bytes(data[-8:]))[-8:]  # to see the final delimiter

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            if self._meta:  # an empty data set: the meta information alone
                self._write(b"")
        except OSError as exc:
            self._fail(exc)
        else:
            self._close_fd()

    def commit(self, target: str) -> bool:
        """Rename the file to ``target`` (atomic: a reader sees no file or the whole one);
        whether no file was there (False: it replaced one)."""
        self.close()
        return rename_over(self.path, target)

    def discard(self) -> None:
        self._meta = b""  # nothing more is written
        with contextlib.suppress(OSError):
            self._close_fd()
        _unlink(self.path)


# renameat2(2) with RENAME_NOREPLACE: (the C function, ctypes.get_errno) once looked up, or
# False where there is none (not Linux, a C library older than glibc 2.28) or the file
# system refused the flag.
_noreplace: Any = None
_AT_FDCWD, _RENAME_NOREPLACE = -100, 1


def rename_over(source: str, target: str) -> bool:
    """``os.replace(source, target)``, and whether no file was at ``target`` before.

    On Linux one system call tells both (renameat2 with RENAME_NOREPLACE, then a replacing
    rename only when a file is there), not a stat and a rename: this is on every C-STORE's
    path. Elsewhere, a stat first."""
    global _noreplace
    noreplace = _noreplace if _noreplace is not None else _find_noreplace()
    if noreplace:
        renameat2, get_errno = noreplace
        if renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target),
                     _RENAME_NOREPLACE) == 0:  # fmt: skip
            return True
        code = get_errno()
        if code == errno.EEXIST:
            os.replace(source, target)
            return False
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), source, None, target)
        _noreplace = False  # this file system does not take the flag: a stat from now on
    existed = os.path.lexists(target)
    os.replace(source, target)
    return not existed


def _find_noreplace():
    global _noreplace
    _noreplace = False
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
        except (OSError, AttributeError):
            return False
        renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                              ctypes.c_uint)  # fmt: skip
        renameat2.restype = ctypes.c_int
        _noreplace = (renameat2, ctypes.get_errno)
    return _noreplace


def _unlink(path: str | os.PathLike) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# Names taken in a row before create_temp gives up: a kill -9 leaves one temp file per open
# association and the spare, so a few at a time.
_TEMP_ATTEMPTS = 1000


def create_temp(directory: str | os.PathLike) -> tuple[str, int]:
    """A new empty temp file (path, descriptor) in ``directory``, where it will be renamed.

    The name is our pid and a counter (cheaper than mkstemp's random names), created
    exclusively all the same. A name that is taken is skipped: a server killed with -9 leaves
    its temp files, and the next one may have its pid (in a container, always the same one);
    a server on another host sharing the storage root may have ours.
    """
    directory = os.fspath(directory)
    for _ in range(_TEMP_ATTEMPTS):
        path = f"{directory}/.incoming-{_PID}-{next(_SEQUENCE)}.part"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
        except FileExistsError:
            continue
        return path, fd
    raise FileExistsError(
        errno.EEXIST,
        f"{_TEMP_ATTEMPTS} temp file names in a row are taken; remove the .incoming-*.part "
        "files of stopped servers (no running server uses them)",
        str(directory),
    )


class FailedSink:
    """The temp file could not be created: the data set is received and dropped, and the
    C-STORE is answered with the reason."""

    __slots__ = ("error",)

    def __init__(self, error: OSError) -> None:
        self.error = error

    def write(self, data: memoryview) -> None:
        pass

    def discard(self) -> None:
        pass


class NullSink:
    """--ignore: receive and count, store nothing."""

    __slots__ = ("size",)

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: memoryview) -> None:
        self.size += len(data)

    def discard(self) -> None:
        pass


def storage_policy(
    transfer_syntaxes: tuple[str, ...], *, promiscuous: bool = False
) -> AcceptorPolicy:
    """What a storage SCP accepts: every Storage SOP class (any class with ``promiscuous``,
    DCMTK's -pm) in ``transfer_syntaxes`` (our preference order), and Verification."""
    classes = None if promiscuous else frozenset(storage_sop_classes() | {VERIFICATION})
    return AcceptorPolicy(
        abstract_syntaxes=classes,
        transfer_syntaxes=transfer_syntaxes,
        transfer_syntaxes_for={VERIFICATION: UNCOMPRESSED},
    )


class StorageSCP(RequestHandler):
    """Receives C-STORE-RQs into ``output_dir`` with DCMTK storescp's file names.

    sort_prefix: DCMTK's --sort-on-study-uid: files go to ``<prefix>_<StudyInstanceUID>/``
        (``""``: to ``<StudyInstanceUID>/``).
    index: the archive's index (``pacsbox.archive.Index``); each instance's row is committed
        before the response, paths relative to ``output_dir``.
    area: the storage area recorded in each index row (dcmqrscp: the AETable's AE title).
    on_duplicate: an instance whose SOP Instance UID is indexed already is stored in place
        of the earlier one ("replace", the default, as DCMTK's dcmqrscp does), dropped with
        a success status while the stored one stays ("keep", Orthanc's default), or refused
        with 0x0111 ("refuse"). Decided before the received file is renamed into place, so a
        kept or refused copy never overwrites the stored file.
    quota: an object with ``admit(header, file size, stored)``, called before the file is
        renamed into place (``stored``: the InstanceLocation of the indexed instance with this
        SOP Instance UID, or None), which returns a Verdict to answer with instead of storing
        or None to store (it may make room first); and ``added(header, file size, stored)``,
        called once the instance's index row is committed (services/quota.py: AreaQuota).
    locate: the file of an index row (area, path), to delete a replaced copy; None when that
        area's directory is unknown. Default: in ``output_dir``.
    on_stored: called with each StoredInstance before the response is sent.
    max_dataset_size: bytes; a larger data set is refused with 0xA700 once it has arrived (its
        temp file is deleted as soon as it passes the limit; the rest is read and dropped).

    The duplicate and quota checks and the index row are one step under a lock: two
    associations of this process never both pass a check the other one's instance breaks.
    Other processes writing the same index are not under it (see services/quota.py).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike = ".",
        *,
        ignore: bool = False,
        sort_prefix: str | None = None,
        on_stored: Callable[[StoredInstance], None] | None = None,
        index=None,
        area: str | None = None,
        on_duplicate: str = "replace",
        quota=None,
        locate: Callable[[str | None, str], Path | None] | None = None,
        max_dataset_size: int | None = None,
    ) -> None:
        if on_duplicate not in ON_DUPLICATE:
            raise ValueError(
                f"on_duplicate is {on_duplicate!r}; use one of {', '.join(ON_DUPLICATE)}"
            )
        self.index = index
        self.area = area
        self.on_duplicate = on_duplicate
        self.quota = quota
        self.max_dataset_size = max_dataset_size
        self._locate = locate
        self._lock = threading.Lock()
        self.output_dir = Path(output_dir).resolve()
        self._root = str(self.output_dir)  # the data path joins strings: Path costs ~5 us a join
        self._directories: set[str] = {self._root}
        # Creating a file costs ~0.3 ms on a journaling file system. One is made ready after
        # each response, while the peer reads it and prepares the next C-STORE, so the
        # creation is off the critical path.
        self._spare: tuple[str, int] | None = None
        self.ignore = ignore
        self.sort_prefix = sort_prefix
        self.on_stored = on_stored
        # Group commit: with replace and no quota nothing is decided before the row is
        # written, so while other associations send too, the rows of the C-STOREs that
        # complete in one turn of the event loop are committed together (Index.add_all),
        # then each is answered. One sender alone is answered at once, without the turn.
        self._group_commit = index is not None and on_duplicate == "replace" and quota is None
        self._senders: set[Association] = set()  # that stored here, while open
        if index is not None:
            from ..archive.index import NewInstance  # not at import: storescp has no index

            self._new_instance = NewInstance
        self._landings: list[tuple[_Landing, CStoreRQ, str, Callable]] = []

    def open_sink(self, assoc: Association, context: AgreedContext, request: CStoreRQ):
        if self.ignore:
            return NullSink()
        if self._group_commit:
            self._senders.add(assoc)
        rq = assoc.rq
        calling, called = (rq.calling_ae_title, rq.called_ae_title) if rq else ("", "")
        meta = file_meta_bytes(
            request.affected_sop_class_uid,
            request.affected_sop_instance_uid,
            context.transfer_syntax,
            source_ae=calling,
            sending_ae=calling,
            receiving_ae=called,
        )
        spare, stat = self._take_spare()
        try:
            temp = spare or create_temp(self._root)
        except OSError as exc:  # answered with 0xA700 once the data set has arrived
            return FailedSink(exc)
        return TempFileSink(temp, meta, self.max_dataset_size, stat)

    def _take_spare(self) -> tuple[tuple[str, int] | None, os.stat_result | None]:
        """The spare temp file and its stat, if it is still there (someone may have cleaned
        the folder)."""
        spare, self._spare = self._spare, None
        if spare is None:
            return None, None
        stat = os.fstat(spare[1])
        if stat.st_nlink == 0:
            os.close(spare[1])
            return None, None
        return spare, stat

    # Storing needs no awaiting: the association answers from its receive callback
    answers_now = True

    def answer(
        self, assoc: Association, context: AgreedContext, request: CStoreRQ, dataset
    ) -> CStoreRSP:
        if log.isEnabledFor(INFO):
            prefix = modality_prefix(request.affected_sop_class_uid)
            log.info("Received Store Request (MsgID %d, %s)", request.message_id, prefix)
        verdict = self._store(assoc, context, request, dataset)
        return verdict if verdict is LATER else _response(request, *verdict)

    def answered(self, assoc: Association) -> None:
        if self.index is not None:  # the answered instance's header document (_index)
            self.index.write_headers()
        if self._spare is None and not self.ignore:
            with contextlib.suppress(OSError):  # no spare: the next instance makes its own
                self._spare = create_temp(self._root)

    def close(self) -> None:
        """Commit what waits for the group commit; remove the spare temp file."""
        if self._landings:  # the loop stopped before its next turn: keep them all the same
            self._commit_landed()
        if self.index is not None:
            self.index.write_headers()
        if self._spare is not None:
            path, fd = self._spare
            self._spare = None
            os.close(fd)
            _unlink(path)

    def _store(self, assoc, context, request: CStoreRQ, sink) -> Verdict | CStoreRSP:
        if isinstance(sink, bytearray):  # a handler-less path gave us memory: write it out
            memory, sink = sink, self.open_sink(assoc, context, request)
            sink.write(memoryview(memory))
        calling = assoc.rq.calling_ae_title if assoc.rq else ""
        if isinstance(sink, FailedSink):
            log.error("Cannot store %s: %s", request.affected_sop_instance_uid, sink.error)
            return OUT_OF_RESOURCES, resource_comment(sink.error, "cannot create file")
        if isinstance(sink, NullSink):
            self._stored(None, request, context, "", calling, sink.size)
            return SUCCESS, None
        sink.close()
        if sink.too_large:
            sink.discard()
            log.error("Refusing %s: its data set is larger than --max-dataset-size (%d bytes)",
                      request.affected_sop_instance_uid, sink.limit)  # fmt: skip
            return OUT_OF_RESOURCES, f"data set over the {sink.limit}-byte limit of this SCP"
        if sink.error is not None:
            sink.discard()
            log.error("Cannot store %s: %s (writing %s; free space there)",
                      request.affected_sop_instance_uid, sink.error,
                      os.path.dirname(sink.path))  # fmt: skip
            return OUT_OF_RESOURCES, resource_comment(sink.error, "cannot write file")
        try:
            header = read_header(sink, context.transfer_syntax)
        except Exception as exc:
            sink.discard()
            log.error("Cannot parse the data set of %s: %s", request.affected_sop_instance_uid, exc)
            return CANNOT_UNDERSTAND, f"data set cannot be parsed: {exc}"[:64]
        sop_class, sop_instance, study = _identity(header)
        problem = _mismatch(sop_class, sop_instance, request)
        if problem is not None:
            sink.discard()
            log.error("Refusing %s: %s", request.affected_sop_instance_uid, problem[1])
            return problem
        directory = self._root
        if self.sort_prefix is not None:
            folder = study or "UNKNOWN"
            directory += f"/{self.sort_prefix}_{folder}" if self.sort_prefix else f"/{folder}"
        prefix = modality_prefix(request.affected_sop_class_uid)
        target = f"{directory}/{prefix}.{request.affected_sop_instance_uid}"
        if self._group_commit and self._others_sending(assoc):
            respond = assoc.answer_later()
            if respond is not None:
                landing = _Landing(self, header, directory, target, sink, context, calling, None)
                self._commit_soon(landing, request, study, respond)
                return LATER  # type: ignore[return-value]
        with self._lock:  # the checks, the rename and the index row: one step (see above)
            verdict, replacing = self._admit(request, header, sink.meta_length + sink.length)
            if verdict is not None:
                sink.discard()
                return verdict
            if self.index is None:
                try:
                    self._place(sink, directory, target)
                except OSError as exc:
                    return self._not_written(sink, target, exc)
            else:
                problem = self._index(header, directory, target, sink, context, calling, replacing)
                if problem is not None:
                    return problem
        self._stored(target, request, context, study, calling, sink.length)
        return SUCCESS, None

    def _admit(self, request: CStoreRQ, header: RawHeader | Dataset, size: int):
        """(what to answer instead of storing, or None to store; the indexed instance the new
        one replaces, if known). A kept or refused duplicate and a quota answer instead; the
        index is asked only when on_duplicate or a quota needs it."""
        if self.index is None or (self.on_duplicate == "replace" and self.quota is None):
            return None, None
        uid = request.affected_sop_instance_uid
        try:
            stored = self.index.instance_location(uid, self.area)
            if stored is not None and self.on_duplicate != "replace":
                return self._duplicate(uid, stored.path), None
            verdict = self.quota.admit(header, size, stored) if self.quota is not None else None
        except Exception as exc:
            log.error("Cannot check %s against the index: %s", uid, exc)
            return (OUT_OF_RESOURCES, f"index unavailable: {exc}"[:64]), None
        return verdict, stored

    def _duplicate(self, uid: str, stored_path: str) -> Verdict:
        where = f"{stored_path} in storage area {self.area}" if self.area else stored_path
        if self.on_duplicate == "keep":
            log.info(
                "Keeping the stored %s (%s), dropping the copy received again "
                "(--on-duplicate keep; pass replace to store re-sends)",
                uid,
                where,
            )
            return SUCCESS, None  # the archive holds this SOP instance, as the sender wants
        log.warning(
            "Refusing %s: an instance with this SOP Instance UID is stored already (%s) and "
            "--on-duplicate is refuse; pass --on-duplicate replace or keep to accept re-sends",
            uid,
            where,
        )
        tail = " stored already (--on-duplicate refuse)"
        return DUPLICATE_SOP_INSTANCE, (
            uid + tail if len(uid + tail) <= 64 else "SOP instance" + tail
        )

    def _place(self, sink: TempFileSink, directory: str, target: str) -> bool:
        """Rename the complete temp file to ``target`` (raises OSError); whether no file was
        there."""
        if directory not in self._directories:
            os.makedirs(directory, exist_ok=True)
            self._directories.add(directory)
        first = sink.commit(target)
        log.info("storing DICOM file: %s", target)
        return first

    def _not_written(self, sink, target: str, exc: OSError) -> Verdict:
        sink.discard()
        log.error("Cannot store %s: %s", target, exc)
        return OUT_OF_RESOURCES, resource_comment(exc, "cannot write file")

    def _index(
        self, header, directory: str, target: str, sink, context, calling: str, replacing
    ) -> Verdict | None:
        """Write the instance's index row and move its file into place in one transaction,
        committed before the response; a failure is the C-STORE's. The row's header document
        is written once the response is sent (``answered``): the sender need not wait for
        it (see Index.add's header_later)."""
        landing = _Landing(self, header, directory, target, sink, context, calling, replacing)
        try:
            result = self.index.add(header, **landing.arguments(), header_later=True)
        except Exception as exc:
            result = exc
        return landing.settle(result)

    def _others_sending(self, assoc: Association) -> bool:
        """Whether an association other than ``assoc`` that stored here is still open."""
        senders = self._senders
        if len(senders) > 1:
            senders.difference_update([a for a in senders if a.closed.done()])
        return len(senders) > 1

    def _commit_soon(self, landing: _Landing, request: CStoreRQ, study: str, respond) -> None:
        """Index ``landing`` with the other instances that arrive in this turn of the event
        loop (the other associations' C-STOREs), in one transaction, then answer each: with
        several senders at once, they share the commit."""
        self._landings.append((landing, request, study, respond))
        if len(self._landings) == 1:
            asyncio.get_running_loop().call_soon(self._commit_landed)

    def _commit_landed(self) -> None:
        landed, self._landings = self._landings, []
        try:
            with self._lock:
                new = self._new_instance
                results = self.index.add_all(
                    [new(landing.header, **landing.arguments()) for landing, *_ in landed]
                )
        except Exception as exc:  # add_all answers each; a bug of ours fails them all
            log.exception("Cannot index %d instances", len(landed))
            results = [exc] * len(landed)
        for (landing, request, study, respond), result in zip(landed, results, strict=True):
            try:
                verdict = landing.settle(result)
                if verdict is None:
                    self._stored(landing.target, request, landing.context, study,
                                 landing.calling, landing.sink.length)  # fmt: skip
            except Exception as exc:
                log.exception("Error while storing %s", request.affected_sop_instance_uid)
                verdict = OUT_OF_RESOURCES, f"pacsbox error: {exc!r}"[:64]
            respond(_response(request, *(verdict or (SUCCESS, None))))

    def _remove_replaced(self, area: str | None, path: str) -> None:
        old = self._locate(area, path) if self._locate else self.output_dir / path
        if old is None:
            log.warning("The replaced copy %s of area %s is left on disk: that area's directory "
                        "is unknown (not in the configuration any more?)", path, area)  # fmt: skip
            return
        old.unlink(missing_ok=True)

    def _stored(self, target: str | None, request: CStoreRQ, context, study: str, calling: str,
                size: int) -> None:  # fmt: skip
        if self.on_stored is not None:
            self.on_stored(StoredInstance(
                None if target is None else Path(target), request.affected_sop_class_uid,
                request.affected_sop_instance_uid, context.transfer_syntax, study, calling, size,
            ))  # fmt: skip


class _Landing:
    """A received instance on its way into place: the index row to write, and the file to
    rename inside that row's transaction (``place``, Index.add's ``before_commit``);
    ``settle`` turns what the index did into the C-STORE's answer, or None for success."""

    __slots__ = (
        "calling", "context", "directory", "header", "ours", "path", "placed", "replacing", "scp",
        "sink", "size", "target",
    )  # fmt: skip

    def __init__(self, scp: StorageSCP, header, directory: str, target: str, sink, context,
                 calling: str, replacing) -> None:  # fmt: skip
        self.scp, self.header, self.directory, self.target = scp, header, directory, target
        self.sink, self.context, self.calling, self.replacing = sink, context, calling, replacing
        self.path = target[len(scp._root) + 1 :]  # relative to the root: target is f"{root}/..."
        self.size = sink.meta_length + sink.length  # of the file
        self.placed = False
        self.ours = None  # (device, inode) of the placed file, when it took no earlier file's place

    def arguments(self) -> dict:
        """Index.add's arguments but the header."""
        return {
            "path": self.path,
            "size": self.size,
            "transfer_syntax": self.context.transfer_syntax,
            "calling_ae": self.calling,
            "area": self.scp.area,
            "on_duplicate": self.scp.on_duplicate,
            "before_commit": self.place,
        }

    def place(self) -> None:
        """Inside the transaction, holding the row: the file goes into place."""
        if not self.placed:  # a retried transaction: the file is in place already
            first = self.scp._place(self.sink, self.directory, self.target)
            self.placed = True
            self.ours = self.sink.identity if first else None

    def settle(self, result) -> Verdict | None:
        """What to answer, given Index.add's result or the exception it raised."""
        scp, sink, target = self.scp, self.sink, self.target
        if isinstance(result, OSError):  # the rename failed: the row was rolled back
            return scp._not_written(sink, target, result)
        if isinstance(result, Exception):
            from ..archive.header import HeaderError  # an index is there: archive is loaded

            if isinstance(result, HeaderError):  # raised before the transaction: not placed
                sink.discard()
                log.error("Refusing %s: %s", target, result)
                return DATASET_DOES_NOT_MATCH, f"no {', no '.join(result.missing)}"[:64]
            if not self.placed:
                sink.discard()
            elif self.ours is not None:
                _remove_if_ours(target, self.ours)
            # else it replaced a file whose row stays: `pacsbox check` reconciles them
            log.error("Cannot index %s: %s", target, result)
            return OUT_OF_RESOURCES, resource_comment(result, "index unavailable")
        if result.outcome in ("kept", "refused"):
            # another process indexed this SOP Instance UID since _admit looked; ours was
            # never moved into place
            sink.discard()
            return scp._duplicate(result.sop_instance_uid, result.indexed_path)
        size, replacing, path = self.size, self.replacing, self.path
        if scp.quota is not None:
            try:
                scp.quota.added(self.header, size, replacing)
            except Exception as exc:  # stored and indexed all the same; it recounts later
                log.error("Cannot count %s against the area's quota: %s", target, exc)
        if replacing is not None and replacing.path != path:
            scp._remove_replaced(replacing.area, replacing.path)
        elif replacing is None and result.old_path and result.old_path != result.indexed_path:
            (scp.output_dir / result.old_path).unlink(missing_ok=True)  # replaced elsewhere
        return None


def _response(request: CStoreRQ, status: int, comment: str | None) -> CStoreRSP:
    return CStoreRSP(
        message_id_being_responded_to=request.message_id,
        status=status,
        affected_sop_class_uid=request.affected_sop_class_uid,
        affected_sop_instance_uid=request.affected_sop_instance_uid,
        error_comment=comment,
    )


def _remove_if_ours(target: str, ours: tuple[int, int]) -> None:
    """Remove the file we renamed to ``target`` when its row was not committed (the index
    failed: the disk is full, say), unless another process has put its own file there
    since (then it is that one's, with its row)."""
    with contextlib.suppress(OSError):
        stat = os.stat(target)
        if (stat.st_dev, stat.st_ino) == ours:
            os.unlink(target)


# SQLite's words when its disk is full (SQLITE_FULL); PostgreSQL's SQLSTATE 53100
_DISK_FULL_WORDS = ("database or disk is full", "No space left on device", "DiskFull")


def resource_comment(exc: BaseException, what: str) -> str:
    """The Error Comment (at most 64 characters, LO) of a 0xA700 answer: a full disk says
    so, whatever layer (file, SQLite, PostgreSQL) found it."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or any(
        word in str(exc) or word in type(getattr(exc, "orig", None)).__name__
        for word in _DISK_FULL_WORDS
    ):
        return f"disk full: {what}; free space on the archive's disk"[:64]
    reason = getattr(exc, "strerror", None) or str(exc)
    return f"{what}: {reason}"[:64]


def read_stored_header(file: Path):
    """(header, FileInfo) of a stored DICOM file, read as ``read_header`` reads a received
    data set (raises as it does: a file cut short, Pixel Data not whole)."""
    from types import SimpleNamespace

    from ..dicomfile import read_file_info

    info = read_file_info(file)
    with open(file, "rb") as fp:
        size = os.fstat(fp.fileno()).st_size
        fp.seek(info.dataset_offset)
        head = bytearray(fp.read(HEAD_BYTES))
        fp.seek(max(info.dataset_offset, size - 8))
        tail = fp.read(8)
    sink = SimpleNamespace(  # what read_header needs of a received data set's sink
        head=head, length=size - info.dataset_offset, tail=tail, path=file,
        meta_length=info.dataset_offset,
    )  # fmt: skip
    return read_header(sink, info.transfer_syntax), info


def read_header(sink: TempFileSink, transfer_syntax: str) -> RawHeader | Dataset:
    """The data set's elements up to Pixel Data, unconverted; raises if they do not parse or
    if Pixel Data did not arrive whole.

    From the in-memory head when it holds them (nearly always), else from the file: walked
    by ``RawHeader`` where it can (little endian, nearly always), else read by pydicom, which
    also inflates deflated data sets and words the error when the bytes are malformed.
    """
    if transfer_syntax not in DEFLATED:
        implicit, little = dataset_encoding(transfer_syntax)
        if little:
            try:
                raw = RawHeader(sink.head, implicit)
            except Malformed as exc:
                if len(sink.head) == sink.length:  # the whole data set, cut or garbled
                    raise ValueError(f"cut short: {exc}") from None
            except Unsupported:
                pass
            else:
                if raw.pixel_data_at is not None:
                    _check_pixel_data(sink, raw.pixel_data_at, implicit, little)
                    return raw
                if len(sink.head) == sink.length and raw.elements:  # the whole data set
                    return raw
        fp = BytesIO(sink.head)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. "Expected explicit VR, but found implicit"
            ds = read_dataset(fp, implicit, little, stop_when=_at_pixel_data)
        at = fp.tell()
        if at < len(sink.head):  # stopped at Pixel Data (or a later element)
            _check_pixel_data(sink, at, implicit, little)
            return ds
        if len(sink.head) == sink.length:  # the whole data set was read
            if not ds:
                raise ValueError("no data element could be read")
            return ds
    ds = _read_file(sink.path)
    if transfer_syntax not in DEFLATED and little:  # pydicom may take a value cut short
        problem = _cut_short(sink.path, sink.meta_length, implicit)
        if problem is not None:
            raise ValueError(f"cut short: {problem}")
    return ds


def _cut_short(path: Path, offset: int, implicit: bool) -> str | None:
    """What makes the data set at ``offset`` of the file not whole, walked as RawHeader
    walks it (mapped, not read: it may be large), or None."""
    with open(path, "rb") as fp, mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return _malformed(mapped, offset, implicit)


def _malformed(buffer, offset: int, implicit: bool) -> str | None:
    try:
        RawHeader(memoryview(buffer)[offset:], implicit)
    except Malformed as exc:
        return str(exc)
    except Unsupported:
        pass
    return None


_LONG_VRS = frozenset(
    (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UR", b"UT", b"UN", b"SV", b"UV")
)
_DELIMITER = {True: b"\xfe\xff\xdd\xe0\0\0\0\0", False: b"\xff\xfe\xe0\xdd\0\0\0\0"}


def _check_pixel_data(sink: TempFileSink, at: int, implicit: bool, little: bool) -> None:
    """Raise if the element at ``at`` (Pixel Data, PS3.5 7.1) ends beyond what arrived."""
    head = sink.head
    if len(head) - at < 12:
        return  # a short trailing element; nothing to measure
    order = "<" if little else ">"
    if implicit:
        (length,), start = struct.unpack_from(order + "I", head, at + 4), at + 8
    elif bytes(head[at + 4 : at + 6]) in _LONG_VRS:
        (length,), start = struct.unpack_from(order + "I", head, at + 8), at + 12
    else:
        (length,), start = struct.unpack_from(order + "H", head, at + 6), at + 8
    if length == 0xFFFFFFFF:  # encapsulated: fragments end with a sequence delimiter
        if sink.tail != _DELIMITER[little]:
            _read_file(sink.path, pixels=True)  # trailing elements? let pydicom judge
        return
    if start + length > sink.length:
        raise ValueError(
            f"Pixel Data claims {length} bytes but {sink.length - start} arrived: "
            "the data set is cut short"
        )


def _read_file(path: Path, *, pixels: bool = False) -> Dataset:
    ds = dcmread(path, stop_before_pixels=not pixels, defer_size=None if not pixels else 1 << 20)
    if pixels and "PixelData" in ds:
        ds.PixelData  # noqa: B018 - reads the fragments; a missing delimiter raises
    return ds


def uid_value(ds: RawHeader | Dataset, tag: int) -> str:
    """A UI element's value straight from the raw bytes ("" if absent): converting it through
    pydicom's element machinery costs more than the whole header walk."""
    if isinstance(ds, RawHeader):
        with contextlib.suppress(Unsupported):
            return ds.text(tag)
        return ""
    if tag not in ds:
        return ""
    raw = ds.get_item(tag)
    value = raw.value if raw is not None else None
    if isinstance(value, bytes):
        return value.rstrip(b"\x00 ").decode("ascii", "replace")
    return str(value or "")


_IDENTITY_TAGS = (0x00080016, 0x00080018, 0x0020000D)  # SOP Class, SOP Instance, Study UIDs


def _identity(header: RawHeader | Dataset) -> tuple[str, str, str]:
    """(SOP Class UID, SOP Instance UID, Study Instance UID) of the data set, "" if absent:
    from a RawHeader in one ``texts`` call (this is on every C-STORE's path)."""
    if isinstance(header, RawHeader):
        with contextlib.suppress(Unsupported):  # a UID of another VR: each on its own below
            sop_class, sop_instance, study = header.texts(_IDENTITY_TAGS)
            return sop_class, sop_instance, study
    sop_class, sop_instance, study = (uid_value(header, tag) for tag in _IDENTITY_TAGS)
    return sop_class, sop_instance, study


def _mismatch(sop_class: str, sop_instance: str, request: CStoreRQ) -> tuple[int, str] | None:
    """PS3.4 B.2.3: the data set must be the instance the command names, of its SOP class."""
    if not sop_class or not sop_instance:
        return CANNOT_UNDERSTAND, "data set has no SOP Class/Instance UID"
    if str(sop_class) != request.affected_sop_class_uid:
        return DATASET_DOES_NOT_MATCH, f"data set is of SOP class {sop_class}"[:64]
    if str(sop_instance) != request.affected_sop_instance_uid:
        return CANNOT_UNDERSTAND, "SOP Instance UID differs from the command's"
    return None


def _at_pixel_data(tag, vr, length) -> bool:
    # .real is the plain int: pydicom's Tag compares in Python, ten times slower per element
    return tag.real >= 0x7FE00010
