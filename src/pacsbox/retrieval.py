"""What a retrieve reports and how it is stopped: ``Retrieved`` (the instances and the
PACS's final response), ``ProgressFeed`` (pending responses and instances received, to the
caller's on_progress), ``CancelToken`` (cancel from any thread) and
``IncompleteRetrieveError`` (instances counted by the PACS that never arrived).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PacsboxError
from .log import log
from .receiver import ReceivedInstance
from .services.retrieve_scu import RetrieveError, RetrieveProgress, RetrieveResult

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


class CancelToken:
    """Cancels a retrieve from any thread: ``token.cancel()``. A cancelled retrieve sends
    C-CANCEL and returns what arrived so far (``Retrieved.cancelled``)."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._lock = threading.Lock()
        self._watchers: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def cancel(self) -> None:
        with self._lock:
            self._flag.set()
            watchers = list(self._watchers)
        for loop, event in watchers:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    @property
    def cancelled(self) -> bool:
        return self._flag.is_set()

    def _watch(self, event: asyncio.Event) -> None:
        with self._lock:
            self._watchers.append((asyncio.get_running_loop(), event))
            if self._flag.is_set():
                event.set()

    def _unwatch(self, event: asyncio.Event) -> None:
        with self._lock:
            self._watchers = [w for w in self._watchers if w[1] is not event]


class IncompleteRetrieveError(RetrieveError):
    """The PACS reported instances sent that never arrived at the built-in receiver;
    ``retrieved`` has what did arrive."""

    def __init__(self, message: str, result: RetrieveResult, retrieved: Retrieved) -> None:
        super().__init__(message, result)
        self.retrieved = retrieved


@dataclass(slots=True)
class Retrieved:
    """What ``retrieve`` brought: the instances (files in ``directory``, or data sets in
    memory), the PACS's final response (``result``) and how it went."""

    method: str  # "get" or "move"
    directory: Path | None
    instances: list[ReceivedInstance] = field(default_factory=list)
    result: RetrieveResult | None = None
    cancelled: bool = False
    cancelled_by: BaseException | None = None  # the progress callback's exception, if that
    error: PacsboxError | None = None  # how a cancelled retrieve ended, if not with 0xFE00
    fallback: str | None = None  # why auto used C-MOVE

    @property
    def files(self) -> list[Path]:
        return [i.path for i in self.instances if i.path is not None]

    @property
    def datasets(self) -> list[Dataset]:
        """The instances as pydicom Datasets (read from the files unless kept in memory)."""
        return [i.read() for i in self.instances]

    @property
    def received(self) -> int:
        return len(self.instances)

    def __len__(self) -> int:
        return len(self.instances)

    def summary(self) -> str:
        where = f"in {self.directory}" if self.directory is not None else "in memory"
        text = f"C-{self.method.upper()}: {self.received} instance(s) received {where}"
        result = self.result
        if result is not None:
            counts = ", ".join(
                f"{name} {'?' if value is None else value}"
                for name, value in (("completed", result.completed), ("failed", result.failed),
                                    ("warning", result.warning))
            )  # fmt: skip
            text += f"; the PACS said {result.meaning} (0x{result.status:04X}: {counts})"
        if self.cancelled:
            why = f" ({self.cancelled_by!r} in on_progress)" if self.cancelled_by else ""
            text += f"; cancelled{why}"
        if self.error is not None:
            text += f"; {self.error}"
        if self.fallback:
            text += f"; C-MOVE because {self.fallback}"
        return text

    def __str__(self) -> str:
        return self.summary()


class ProgressFeed:
    """Feeds the caller's on_progress: pending responses' counters, then one event per
    instance received (so a PACS without pending responses still shows progress). An
    exception from the callback cancels the retrieve instead of breaking it."""

    def __init__(self, callback, cancel: asyncio.Event) -> None:
        self.callback, self.cancel = callback, cancel
        self.latest: RetrieveProgress | None = None
        self.instances: list[ReceivedInstance] = []
        self.error: BaseException | None = None

    def pending(self, progress: RetrieveProgress) -> None:
        if progress.status is None:  # retrieve_scu's C-GET instance event: ours has the path
            return
        self.latest = progress
        self._emit(replace(progress, received=len(self.instances)))

    def instance(self, instance: ReceivedInstance) -> None:
        self.instances.append(instance)
        latest = self.latest
        counters = (
            (latest.remaining, latest.completed, latest.failed, latest.warning)
            if latest is not None
            else (None, None, None, None)
        )
        self._emit(
            RetrieveProgress(
                None, *counters, received=len(self.instances),
                sop_instance_uid=instance.sop_instance_uid, path=instance.path,
            )
        )  # fmt: skip

    def _emit(self, progress: RetrieveProgress) -> None:
        if self.callback is None or self.error is not None:
            return
        try:
            self.callback(progress)
        except BaseException as exc:  # Ctrl-C in it too: raised out of the event loop, it
            self.error = exc  # would stop the loop mid-retrieve (the sync client's: a hang)
            log.warning("on_progress raised %r: cancelling the retrieve", exc)
            self.cancel.set()


class watching:
    """Connects a CancelToken to the retrieve's asyncio.Event while the block runs."""

    def __init__(self, token: CancelToken | None, event: asyncio.Event) -> None:
        if token is not None and not isinstance(token, CancelToken):
            raise TypeError(f"cancel must be a pacsbox.CancelToken, not {type(token).__name__}")
        self.token, self.event = token, event

    def __enter__(self) -> None:
        if self.token is not None:
            self.token._watch(self.event)

    def __exit__(self, *exc) -> None:
        if self.token is not None:
            self.token._unwatch(self.event)


def finished(retrieved: Retrieved, progress: ProgressFeed, event: asyncio.Event) -> Retrieved:
    retrieved.instances = list(progress.instances)
    retrieved.cancelled = event.is_set() or bool(retrieved.result and retrieved.result.cancelled)
    retrieved.cancelled_by = progress.error
    log.info("%s", retrieved.summary())
    return retrieved
