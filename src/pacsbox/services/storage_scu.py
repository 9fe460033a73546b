"""Storage service class, SCU role: propose from the files' content, send, transcode if needed.

Negotiation follows DCMTK's dcmsend: one presentation context per (SOP class, transfer
syntax) found in the files, proposing the file's own syntax plus Explicit and Implicit VR
Little Endian, split over several associations above 128 contexts. A file whose syntax was
accepted is sent as its bytes on disk after the meta header, never decoded; otherwise it is
transcoded to a syntax the peer accepted.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path

from pacsbox.records import record

from ..dicomfile import FileInfo, NotDicomError, read_file_info
from ..dimse import CStoreRQ
from ..dimse.status import StatusCategory, category_of, describe
from ..errors import PacsboxError
from ..log import log
from ..net.association import Association, PendingRequest
from ..sopclasses import modality_prefix
from ..syntaxes import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from ..uids import transfer_syntax_description, uid_description
from ..ul.diagnosis import DCMTK_ACCEPT_OPTIONS
from ..ul.negotiation import MAX_CONTEXTS, AgreedContext
from ..wording import see_debug

# How a file's data set is read: up to READ_LIMIT with one pread into memory (for a 40 KB
# file ~20 us less than opening a file object and mapping it: no fstat/ioctl/lseek of the
# file object, no mmap/munmap and their page faults), up to MAP_LIMIT from a memory map
# (the pages go to the socket with one copy), beyond it streamed in pieces (memory stays flat).
READ_LIMIT = 1 << 20
MAP_LIMIT = 64 << 20
EXPLICIT = ExplicitVRLittleEndian
IMPLICIT = ImplicitVRLittleEndian
FALLBACKS = (EXPLICIT, IMPLICIT)


_CATEGORY_WORDS = {StatusCategory.SUCCESS: "success", StatusCategory.WARNING: "warning"}


@record
class StoreResult:
    """One file's fate: ``status`` is the C-STORE-RSP status, None when it was not sent."""

    path: Path
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    transfer_syntax: str = ""
    sent_as: str = ""
    status: int | None = None
    error: str = ""

    @property
    def category(self) -> str:
        """success, warning, failed or skipped (a cancel counts as failed)."""
        if self.status is None:
            return "skipped" if self.error.startswith("not DICOM") else "failed"
        category = describe(self.status, "storage").category
        return _CATEGORY_WORDS.get(category, "failed")

    @property
    def ok(self) -> bool:
        return self.status is not None and describe(self.status).category in (
            StatusCategory.SUCCESS,
            StatusCategory.WARNING,
        )

    def as_dict(self) -> dict:
        info = describe(self.status, "storage") if self.status is not None else None
        return {
            "path": str(self.path),
            "sop_class_uid": self.sop_class_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "transfer_syntax": self.transfer_syntax,
            "sent_as": self.sent_as,
            "status": f"0x{self.status:04X}" if self.status is not None else None,
            "result": self.category,
            "meaning": info.meaning if info else None,
            "error": self.error or None,
        }


def find_files(paths: Iterable[str | os.PathLike], *, recurse: bool = True) -> Iterator[Path]:
    """Files named, and the files in directories named (recursively, sorted as paths sort:
    component by component). Symbolic links to files are followed, to directories not."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found: list[str] = []
            _collect(os.fspath(path), recurse, found)
            found.sort(key=lambda p: p.split(os.sep))
            yield from map(Path, found)
        else:
            yield path


def _collect(directory: str, recurse: bool, found: list[str]) -> None:
    # scandir's entries know their type (no stat a file); 2000 Paths sorted cost ~10 ms
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if recurse:
                    _collect(entry.path, recurse, found)
            elif entry.is_file():
                found.append(entry.path)


def scan(paths: Iterable[Path]) -> tuple[list[FileInfo], list[StoreResult]]:
    """Read what each file is; non-DICOM files become 'skipped' results with the reason."""
    infos: list[FileInfo] = []
    skipped: list[StoreResult] = []
    for path in paths:
        try:
            infos.append(read_file_info(path))
        except NotDicomError as exc:
            reason = str(exc).removeprefix(f"{path}: ")
            log.warning("Skipping %s: %s", path, reason)
            skipped.append(StoreResult(path, error=f"not DICOM: {reason}"))
        except OSError as exc:
            log.warning("Skipping %s: %s", path, exc.strerror or exc)
            skipped.append(StoreResult(path, error=f"unreadable: {exc.strerror or exc}"))
    return infos, skipped


def content_proposals(
    infos: Sequence[FileInfo], extra: Sequence[tuple[str, ...]] = ()
) -> list[tuple[str, tuple[str, ...]]]:
    """The contexts the files need: per (SOP class, syntax) found, a context with only that
    syntax (so an acceptor cannot pick another and force a conversion), and per SOP class
    one with the uncompressed fallbacks to convert to when the peer refuses the file's own.

    ``extra`` (DCMTK's -x? choice, as storescu splits it into contexts) adds those contexts
    for every SOP class.
    """
    seen: dict[tuple[str, tuple[str, ...]], None] = {}
    for info in infos:
        seen.setdefault((info.sop_class_uid, (info.transfer_syntax,)), None)
    for sop_class in dict.fromkeys(info.sop_class_uid for info in infos):
        for syntaxes in extra:
            seen.setdefault((sop_class, tuple(syntaxes)), None)
        seen.setdefault((sop_class, FALLBACKS), None)
    return list(seen)


def batches(
    infos: Sequence[FileInfo], proposals: Sequence[tuple[str, tuple[str, ...]]]
) -> list[tuple[list[tuple[str, tuple[str, ...]]], list[FileInfo]]]:
    """Split over associations of at most 128 contexts; each file goes with its SOP class."""
    by_class: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for proposal in proposals:
        by_class.setdefault(proposal[0], []).append(proposal)
    groups: list[tuple[list, list[FileInfo]]] = []
    current: list = []
    classes: set[str] = set()
    for sop_class, contexts in by_class.items():
        if current and len(current) + len(contexts) > MAX_CONTEXTS:
            groups.append((current, [i for i in infos if i.sop_class_uid in classes]))
            current, classes = [], set()
        current.extend(contexts[:MAX_CONTEXTS])
        classes.add(sop_class)
    if current:
        groups.append((current, [i for i in infos if i.sop_class_uid in classes]))
    return groups


def choose_context(assoc: Association, info: FileInfo) -> tuple[AgreedContext, bool]:
    """The context to send ``info`` on, and whether it must be transcoded; or a clear error."""
    candidates = [c for c in assoc.contexts.values() if c.abstract_syntax == info.sop_class_uid]
    for context in candidates:
        if context.transfer_syntax == info.transfer_syntax:
            return context, False
    # the peer took another syntax: convert, preferring uncompressed explicit, then implicit
    ranked = sorted(
        candidates,
        key=lambda c: (
            c.transfer_syntax not in FALLBACKS,
            FALLBACKS.index(c.transfer_syntax) if c.transfer_syntax in FALLBACKS else 0,
        ),
    )
    from ..transcode import can_transcode  # pydicom's codecs: loaded only when converting

    for context in ranked:
        if can_transcode(info.transfer_syntax, context.transfer_syntax):
            return context, True
    what = uid_description(info.sop_class_uid)
    if not candidates:
        raise PacsboxError(
            f"the peer accepted no presentation context for {what}; it may not store this "
            f"SOP class ({see_debug('its answer')})"
        )
    accepted = ", ".join(transfer_syntax_description(c.transfer_syntax) for c in candidates)
    raise PacsboxError(
        f"the peer accepts {what} only as {accepted}, and pacsbox cannot convert "
        f"{transfer_syntax_description(info.transfer_syntax)} to that; configure the peer to "
        "accept the file's syntax or Explicit VR Little Endian (DCMTK: +x= or +xa)"
    )


class _Ready:
    """A file ready to go: its context chosen, its data set in memory (mapped, or converted)
    or streamed, its C-STORE-RQ encoded. ``close`` releases the mapping and the file."""

    __slots__ = ("_file", "_map", "_view", "context", "encoded", "info", "request", "result")

    def __init__(self, info: FileInfo, result: StoreResult, context: AgreedContext) -> None:
        self.info, self.result, self.context = info, result, context
        self.request: CStoreRQ | None = None
        self.encoded = None
        self._file = self._map = self._view = None

    def close(self) -> None:
        self.encoded = None  # the PDU pieces are views of the mapping: they go first
        if self._view is not None:
            self._view.release()
        if self._map is not None:
            self._map.close()
        if self._file is not None:
            self._file.close()
        self._file = self._map = self._view = None


def _prepare(
    assoc: Association, info: FileInfo, allow_transcode: bool, originator: tuple[str, int] | None
) -> _Ready | StoreResult:
    """Everything for sending ``info`` short of sending it; a StoreResult when it cannot be
    sent (never raises for a per-file problem)."""
    result = StoreResult(info.path, info.sop_class_uid, info.sop_instance_uid, info.transfer_syntax)
    try:
        context, convert = choose_context(assoc, info)
    except PacsboxError as exc:
        result.error = str(exc)
        log.error("Store Failed, file: %s: %s", info.path, exc)
        return result
    result.sent_as = context.transfer_syntax
    ready = _Ready(info, result, context)
    if convert:
        if not allow_transcode:
            option = DCMTK_ACCEPT_OPTIONS.get(info.transfer_syntax)
            result.error = (
                f"the peer did not accept {transfer_syntax_description(info.transfer_syntax)} "
                f"for {uid_description(info.sop_class_uid)} and transcoding is off "
                "(--no-transcode); allow transcoding, or configure the peer to accept the "
                "file's syntax" + (f" (DCMTK storescp/dcmqrscp: {option})" if option else "")
            )
            log.error("Store Failed, file: %s: %s", info.path, result.error)
            return result
        log.info(
            "Converting transfer syntax: %s -> %s",
            transfer_syntax_description(info.transfer_syntax),
            transfer_syntax_description(context.transfer_syntax),
        )
        from ..transcode import TranscodeError, transcode

        try:
            dataset = transcode(info.path, context.transfer_syntax)
        except TranscodeError as exc:
            result.error = str(exc)
            log.error("Store Failed, file: %s: %s", info.path, exc)
            return result
    elif 0 < info.dataset_length <= READ_LIMIT:
        try:
            dataset = _read_dataset(info)
        except OSError as exc:
            result.error = f"cannot read the file: {exc.strerror or exc}"
            log.error("Store Failed, file: %s: %s", info.path, result.error)
            return result
    else:
        try:
            ready._file = fp = open(info.path, "rb")  # noqa: SIM115 - closed by ready.close
            if 0 < info.dataset_length <= MAP_LIMIT:
                # mapped, the file's pages go to the socket with one copy (the transport's);
                # a read this size would fault in a fresh buffer's pages for every file
                ready._map = mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)
                ready._view = memoryview(ready._map)
                dataset = ready._view[info.dataset_offset :]
            else:  # a large file streams through in pieces: memory stays flat
                fp.seek(info.dataset_offset)
                dataset = fp
        except OSError as exc:
            ready.close()
            result.error = f"cannot read the file: {exc.strerror or exc}"
            log.error("Store Failed, file: %s: %s", info.path, result.error)
            return result
    ready.request = CStoreRQ(
        message_id=assoc.next_message_id(),
        affected_sop_class_uid=info.sop_class_uid,
        affected_sop_instance_uid=info.sop_instance_uid,
        has_dataset=True,
        move_originator_ae_title=originator[0] if originator else None,
        move_originator_message_id=originator[1] if originator else None,
    )
    ready.encoded = assoc.encode(ready.context.context_id, ready.request, dataset)
    return ready


def _read_dataset(info: FileInfo) -> memoryview:
    """The data set of a small file, read whole: one pread (no file object, no mapping)."""
    fd = os.open(info.path, os.O_RDONLY | os.O_CLOEXEC)
    try:  # the size now, not at the scan: a file rewritten since is sent as it is now
        return memoryview(os.pread(fd, os.fstat(fd).st_size - info.dataset_offset,
                                   info.dataset_offset))  # fmt: skip
    finally:
        os.close(fd)


def _followable(ready: _Ready) -> bool:
    """Whether ``ready`` can be sent from the receive callback: a few PDUs in memory."""
    return isinstance(ready.encoded, list) and len(ready.encoded) <= 64


def _log_success_then_sending(ready: _Ready) -> None:
    """The log lines of a Success response and of the request that follows it at once."""
    log.info("Received Store Response (Success)")
    _log_sending(ready)


def _log_sending(ready: _Ready) -> None:
    log.info("Sending file: %s", ready.info.path)
    log.info(
        "Sending Store Request (MsgID %d, %s)",
        ready.request.message_id,  # type: ignore[union-attr]
        modality_prefix(ready.info.sop_class_uid),
    )


async def _begin(assoc: Association, ready: _Ready):
    _log_sending(ready)
    return await assoc.begin(
        ready.context.context_id,
        ready.request,  # type: ignore[arg-type]
        encoded=ready.encoded,
    )


def _finish(result: StoreResult, response, *, logged: bool = False) -> StoreResult:
    result.status = response.status
    comment = getattr(response, "error_comment", None) or ""
    status_info = describe(result.status, "storage")  # type: ignore[arg-type]
    if status_info.category is StatusCategory.SUCCESS:
        if not logged:
            log.info("Received Store Response (Success)")
    else:
        result.error = comment or status_info.meaning
        log.warning(
            "Received Store Response (%s)%s", status_info, f": {comment}" if comment else ""
        )
    return result


async def store_file(
    assoc: Association, info: FileInfo, *, allow_transcode: bool = True
) -> StoreResult:
    """Send one file with C-STORE; never raises for a per-file problem (see the result)."""
    async with contextlib.aclosing(
        store_files(assoc, [info], allow_transcode=allow_transcode)
    ) as results:
        async for result in results:
            return result
    raise AssertionError("store_files yields one result per file")  # pragma: no cover


async def store_files(
    assoc: Association,
    infos: Iterable[FileInfo],
    *,
    allow_transcode: bool = True,
    move_originator: tuple[str, int] | None = None,
    send_ahead: bool = False,
    stop: Callable[[], bool] | None = None,
) -> AsyncIterator[StoreResult]:
    """Send the files one C-STORE after the other, yielding each one's result in file order.

    While the peer stores one file, the next is made ready (opened, mapped or converted, its
    request encoded). With ``send_ahead``, a Success response is followed at once by the next
    request, and only then is the result handed over: what the caller does with it (a
    progress bar, a report) happens while the peer stores the next file. A response other
    than Success is yielded before anything else is sent, so a caller that halts on failure
    sends nothing more. Close the generator with ``contextlib.aclosing`` when leaving the
    loop early: a request still in flight is then waited for, so the association is left
    with none outstanding. ``move_originator``: the C-MOVE's (AE title, message ID) these
    C-STOREs are sub-operations of (PS3.7 9.3.1.1).

    ``stop`` is asked before each request goes out (a C-CANCEL's flag): once it says True
    nothing more is sent, the results of what was sent are still yielded, and the generator
    ends; the caller's count of results is then exactly what the peer was sent.
    """
    files = iter(infos)
    stopped = False

    def go_on() -> bool:
        nonlocal stopped
        stopped = stopped or (stop is not None and stop())
        return not stopped

    def prepare_next() -> _Ready | StoreResult | None:
        info = next(files, None) if go_on() else None
        return _prepare(assoc, info, allow_transcode, move_originator) if info else None

    def follow(ready: _Ready) -> bool:
        if not go_on():
            return False
        _log_success_then_sending(ready)
        return True

    ready = prepare_next()
    inflight: tuple[_Ready, PendingRequest] | None = None
    try:
        while ready is not None or inflight is not None:
            if inflight is None:
                current, ready = ready, None
                if isinstance(current, StoreResult):
                    ready = prepare_next()
                    yield current
                    continue
                if not go_on():
                    current.close()  # type: ignore[union-attr]
                    break
                try:
                    inflight = (current, await _begin(assoc, current))  # type: ignore[arg-type]
                except BaseException:
                    current.close()  # type: ignore[union-attr]
                    raise
                ready = prepare_next()
            current, pending = inflight
            following = ready if send_ahead and isinstance(ready, _Ready) else None
            if following is not None and _followable(following):
                pending.follow_with(
                    following.context.context_id,
                    following.request,  # type: ignore[arg-type]
                    following.encoded,  # type: ignore[arg-type]
                    before=functools.partial(follow, following),
                )
            try:
                response, _ = await pending.final()
            except BaseException:
                inflight = None
                current.close()
                raise
            finally:
                pending.unfollow()
            inflight = None
            followed = isinstance(pending.followed_by, PendingRequest)
            if followed:  # it went out from the receive callback, as the response came in
                inflight, ready = (following, pending.followed_by), prepare_next()  # type: ignore[assignment]
            elif pending.followed_by is not None:
                ready = None
                following.close()  # type: ignore[union-attr]
                current.close()
                raise pending.followed_by
            elif (
                following is not None
                and category_of(response.status) is StatusCategory.SUCCESS  # type: ignore[attr-defined]
                and go_on()
            ):
                ready = None
                try:
                    inflight = (following, await _begin(assoc, following))
                except BaseException:
                    following.close()
                    raise
                ready = prepare_next()
            current.close()
            yield _finish(current.result, response, logged=followed)
    finally:
        if isinstance(ready, _Ready):
            ready.close()
        if inflight is not None:
            await _settle(*inflight)


async def _settle(ready: _Ready, pending: PendingRequest) -> None:
    """Wait for the response to a request sent ahead that nobody will read (the caller left
    the loop), so the association has no request outstanding when it is released."""
    try:
        response, _ = await pending.final()
        _finish(ready.result, response)
    except Exception as exc:  # the association's own error; the caller's exception stands
        log.debug("No response to the C-STORE sent ahead of %s: %s", ready.info.path, exc)
    finally:
        ready.close()
