"""StorageReceiver: a storage SCP in the background for unsolicited pushes and C-MOVE results.

    with pacsbox.StorageReceiver("./incoming", port=11113, on_instance=print) as receiver:
        ...                                    # a thread serves the port meanwhile

    async with pacsbox.StorageReceiver("./incoming", port=11113) as receiver:
        ...                                    # a task of the running loop serves it

It wraps ``net.server.Server`` with the same streaming ingest as ``pacsbox storescp`` (each
data set streamed to a temp file, checked, renamed to ``CT.<SOPInstanceUID>``), or, with
``directory=None``, keeps each instance in memory as a pydicom Dataset. ``on_instance`` is
called once per instance stored (in the receiver's thread, or in the loop for async users);
an exception it raises is logged and does not fail the C-STORE.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PacsboxError
from .log import log
from .net.association import Association, RequestHandler, Timeouts

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from .net.server import Server
    from .services.storage_scp import StoredInstance

# How long stop() waits for the receiver's thread to end (a hang, not a pace).
THREAD_STOP_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ReceivedInstance:
    """One instance received: its file (``path``), or its data set in memory (``dataset``,
    with file meta) when the receiver keeps instances in memory."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    study_instance_uid: str
    calling_ae: str
    size: int
    path: Path | None = None
    dataset: Dataset | None = field(default=None, repr=False)

    def read(self) -> Dataset:
        """The instance as a pydicom Dataset (read from its file unless in memory)."""
        if self.dataset is not None:
            return self.dataset
        if self.path is None:
            raise PacsboxError(
                f"instance {self.sop_instance_uid} was received with ignore=True: nothing "
                "was kept; receive without ignore to read it"
            )
        from pydicom import dcmread

        return dcmread(self.path)

    @classmethod
    def from_stored(cls, stored: StoredInstance) -> ReceivedInstance:
        return cls(
            stored.sop_class_uid,
            stored.sop_instance_uid,
            stored.transfer_syntax,
            stored.study_instance_uid,
            stored.calling_ae,
            stored.size,
            path=stored.path,
        )


class MemoryStorage(RequestHandler):
    """A storage SCP that keeps each data set in memory as a pydicom Dataset (with file meta
    naming the transfer syntax it arrived in); ``on_stored`` gets a ReceivedInstance."""

    def __init__(self, on_stored: Callable[[ReceivedInstance], None]) -> None:
        self.on_stored = on_stored

    async def handle(self, assoc: Association, context, request, dataset) -> None:
        from .datasets import decode_dataset
        from .dimse import CStoreRSP

        status, comment = 0x0000, None
        try:
            raw = bytes(dataset or b"")
            ds = decode_dataset(raw, context.transfer_syntax)
            ds.file_meta = _file_meta(request, context.transfer_syntax)
            if str(ds.get("SOPInstanceUID", "")) != request.affected_sop_instance_uid:
                status, comment = 0xC000, "SOP Instance UID differs from the command's"
        except Exception as exc:  # PS3.4 B.2.3: cannot understand
            log.error("Cannot read the data set of %s: %s", request.affected_sop_instance_uid, exc)
            status, comment = 0xC000, f"data set cannot be parsed: {exc}"[:64]
        if status == 0x0000:
            calling = assoc.rq.calling_ae_title if assoc.rq else ""
            self.on_stored(
                ReceivedInstance(
                    request.affected_sop_class_uid,
                    request.affected_sop_instance_uid,
                    context.transfer_syntax,
                    str(ds.get("StudyInstanceUID", "")),
                    calling,
                    len(raw),
                    dataset=ds,
                )
            )
        await assoc.send(
            context.context_id,
            CStoreRSP(
                message_id_being_responded_to=request.message_id,
                status=status,
                affected_sop_class_uid=request.affected_sop_class_uid,
                affected_sop_instance_uid=request.affected_sop_instance_uid,
                error_comment=comment,
            ),
        )


def _file_meta(request, transfer_syntax: str):
    from pydicom.dataset import FileMetaDataset

    from .uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = request.affected_sop_class_uid
    meta.MediaStorageSOPInstanceUID = request.affected_sop_instance_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def storage_handler(
    directory: str | os.PathLike | None,
    on_stored: Callable[[ReceivedInstance], None],
    *,
    sort_by_study: bool = False,
    ignore: bool = False,
) -> RequestHandler:
    """The C-STORE handler of a receiver: files in ``directory`` as storescp writes them, or
    data sets in memory when ``directory`` is None."""
    if directory is None:
        return MemoryStorage(on_stored)
    from .services.storage_scp import StorageSCP

    Path(directory).mkdir(parents=True, exist_ok=True)
    return StorageSCP(
        directory,
        ignore=ignore,
        sort_prefix="" if sort_by_study else None,
        on_stored=lambda stored: on_stored(ReceivedInstance.from_stored(stored)),
    )


class StorageReceiver:
    """A storage SCP (and Verification SCP) on ``host:port`` as AE ``ae_title``.

    directory: where files go (created if missing); None keeps data sets in memory.
    port: 0 lets the system choose (see ``port`` once started).
    on_instance: called with a ReceivedInstance per instance received.
    transfer_syntaxes: what is accepted, in preference order (default: everything the
        archive accepts, so instances arrive in the syntax the sender has them in).
    sort_by_study: files go to ``<StudyInstanceUID>/`` subfolders.

    ``received`` lists what arrived so far. Sync users: ``start()`` / ``stop()`` or ``with``
    (a thread runs the server); async users: ``await astart()`` / ``await astop()`` or
    ``async with`` (the server runs in the current loop).
    """

    def __init__(
        self,
        directory: str | os.PathLike | None = ".",
        *,
        port: int = 11113,
        host: str = "0.0.0.0",
        ae_title: str = "PACSBOX",
        on_instance: Callable[[ReceivedInstance], object] | None = None,
        transfer_syntaxes: Sequence[str] | None = None,
        sort_by_study: bool = False,
        ignore: bool = False,
        timeouts: Timeouts | None = None,
        max_pdu_length: int = 131072,
    ) -> None:
        self.directory = None if directory is None else Path(directory)
        self.host, self._port = host, port
        self.ae_title = ae_title
        self.on_instance = on_instance
        self.transfer_syntaxes = tuple(transfer_syntaxes) if transfer_syntaxes else None
        self.sort_by_study = sort_by_study
        self.ignore = ignore
        self.timeouts = timeouts or Timeouts()
        self.max_pdu_length = max_pdu_length
        self.received: list[ReceivedInstance] = []
        self.server: Server | None = None
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    @property
    def port(self) -> int:
        """The port listened on (the chosen one when created with port=0)."""
        return self.server.port if self.server is not None else self._port

    @property
    def busy(self) -> bool:
        """An association is open on the receiver (a sender is still at work)."""
        return bool(self.server and self.server.associations)

    # -- async ---------------------------------------------------------------------------------

    async def astart(self) -> StorageReceiver:
        """Start listening in the running loop."""
        from .dimse import CEchoRQ, CStoreRQ
        from .net.server import Server, ServerConfig
        from .services.storage_scp import storage_policy
        from .services.verification import VerificationSCP
        from .syntaxes import ARCHIVE_PREFERENCE

        if self.server is not None:
            raise PacsboxError("this StorageReceiver is started already; stop() it first")
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        handler = storage_handler(
            self.directory, self._stored, sort_by_study=self.sort_by_study, ignore=self.ignore
        )
        server = Server(
            ServerConfig(
                ae_title=self.ae_title,
                policy=storage_policy(self.transfer_syntaxes or ARCHIVE_PREFERENCE),
                handlers={CEchoRQ: VerificationSCP(), CStoreRQ: handler},
                max_pdu_length=self.max_pdu_length,
                timeouts=self.timeouts,
            )
        )
        try:
            await server.start(self.host, self._port)
        except OSError as exc:
            raise PacsboxError(
                f"The storage receiver cannot listen on {self.host}:{self._port}: "
                f"{exc.strerror or exc}. Another program (a storescp?) may use that port: "
                "stop it, or pass another port (port=0 lets the system choose one)."
            ) from None
        self.server = server
        log.info("Storage receiver '%s' listening on %s:%d", self.ae_title, self.host, server.port)
        return self

    async def astop(self) -> None:
        """Stop listening; associations still open are aborted."""
        server, self.server = self.server, None
        if server is not None:
            self._port = server.port
            await server.close()

    async def __aenter__(self) -> StorageReceiver:
        return await self.astart()

    async def __aexit__(self, *exc) -> None:
        await self.astop()

    def _stored(self, instance: ReceivedInstance) -> None:
        self.received.append(instance)
        if self._changed is not None:
            self._changed.set()
        if self.on_instance is not None:
            try:
                self.on_instance(instance)
            except Exception:  # the sender's C-STORE succeeded all the same
                log.exception("on_instance raised for %s", instance.sop_instance_uid)

    async def settle(self, expected: int, grace: float | None) -> bool:
        """Wait until the associations open on the receiver have ended and ``expected``
        instances have arrived, giving late ones ``grace`` seconds after the last change
        (a PACS may answer Success before its C-STOREs). True when they all arrived."""
        loop = asyncio.get_running_loop()
        deadline = None if grace is None else loop.time() + grace
        for _ in range(1_000_000):  # bounded: each turn waits for an event or the deadline
            if self.server is None:
                return len(self.received) >= expected
            busy = self.busy
            if not busy and len(self.received) >= expected:
                return True
            left = None if deadline is None else deadline - loop.time()
            if not busy and left is not None and left <= 0:
                return False
            self._changed.clear()  # type: ignore[union-attr]
            waiters = [asyncio.ensure_future(self._changed.wait())]  # type: ignore[union-attr]
            waiters += [asyncio.ensure_future(a.wait_closed()) for a in self.server.associations]
            await asyncio.wait(
                waiters, timeout=None if busy else left, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()
        return len(self.received) >= expected  # pragma: no cover

    # -- sync: a thread with its own loop ------------------------------------------------------

    def start(self) -> StorageReceiver:
        """Start listening in a background thread; returns once the port is open (or raises
        why it could not be)."""
        if self._thread is not None:
            raise PacsboxError("this StorageReceiver is started already; stop() it first")
        started = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            try:
                await self.astart()
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            self._stop = asyncio.Event()
            started.set()
            try:
                await self._stop.wait()
            finally:
                await self.astop()

        self._thread = threading.Thread(
            target=asyncio.run, args=(main(),), name=f"pacsbox-receiver-{self._port}", daemon=True
        )
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join(THREAD_STOP_TIMEOUT)
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop the background thread's server (and wait for it)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                self._loop.call_soon_threadsafe(self._stop.set)
        thread.join(THREAD_STOP_TIMEOUT)
        if thread.is_alive():
            log.warning("The storage receiver's thread did not end within %.0f s",
                        THREAD_STOP_TIMEOUT)  # fmt: skip

    def __enter__(self) -> StorageReceiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
