"""The sync facade: ``pacsbox.connect(...)`` returns a ``Client`` whose methods are
``AsyncClient``'s, with the same names and arguments, for plain (non-async) code.

    with pacsbox.connect("pacs.example.org", 11112, called_ae="PACS") as pacs:
        pacs.echo()
        study = pacs.retrieve(StudyInstanceUID=uid, dest="./study")

An event loop runs in a background thread for the client's lifetime; each call waits for its
result there. Callbacks (on_progress) run in that thread. Ctrl-C during a call stops it: the
association is aborted and KeyboardInterrupt goes on. A KeyboardInterrupt (or SystemExit)
raised by on_progress cancels the retrieve as any exception there does, and is raised again
here once the retrieve has stopped, with what arrived as its ``retrieved`` attribute.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from .client import AsyncClient
from .retrieval import Retrieved

# How long close() waits for the loop's thread to end (a hang, not a pace).
THREAD_STOP_TIMEOUT = 30.0


class Client:
    """``AsyncClient``'s API, blocking; see ``pacsbox.AsyncClient`` for the arguments."""

    def __init__(self, host: str, port: int = 11112, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"pacsbox-client-{host}:{port}", daemon=True
        )
        self._thread.start()
        try:
            self._async = self._call(_make(host, port, options))
        except BaseException:
            self._stop_loop()
            raise

    def _call(self, coroutine):
        if self._loop.is_closed():
            coroutine.close()
            raise RuntimeError("this pacsbox client is closed; connect() again")
        if threading.current_thread() is self._thread:  # it would wait for itself forever
            coroutine.close()
            raise RuntimeError(
                "a pacsbox client was called from its own callback (on_progress runs in the "
                "client's thread); call it after the operation returns, or use a CancelToken"
            )
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C: the operation stops, its association is aborted
            raise

    @property
    def async_client(self) -> AsyncClient:
        """The AsyncClient underneath (its coroutines run in this client's loop thread)."""
        return self._async

    def echo(self) -> int:
        return self._call(self._async.echo())

    def store(self, *items, **kwargs):
        return self._call(self._async.store(*items, **kwargs))

    def find(self, identifier=None, **kwargs) -> list:
        return self._call(self._async.find(identifier, **kwargs))

    def move(self, destination: str, identifier=None, **kwargs):
        return _interrupted(self._call(self._async.move(destination, identifier, **kwargs)))

    def get(self, identifier=None, **kwargs) -> Retrieved:
        return _interrupted(self._call(self._async.get(identifier, **kwargs)))

    def retrieve(self, identifier=None, **kwargs) -> Retrieved:
        return _interrupted(self._call(self._async.retrieve(identifier, **kwargs)))

    def commit(self, *items, **kwargs):
        return self._call(self._async.commit(*items, **kwargs))

    def close(self) -> None:
        """Release the association and stop the loop's thread."""
        if self._loop.is_closed():
            return
        try:
            self._call(self._async.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(THREAD_STOP_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Client({self._async.host!r}, {self._async.port}, called_ae={self._async.called_ae!r})"
        )


def _interrupted(result):
    """``result``, or the KeyboardInterrupt / SystemExit its on_progress raised (which
    cancelled it), raised in the caller's thread with ``result`` as its ``retrieved``."""
    raised = getattr(result, "cancelled_by", None)
    if isinstance(raised, BaseException) and not isinstance(raised, Exception):
        raised.retrieved = result  # type: ignore[attr-defined]
        raise raised
    return result


async def _make(host: str, port: int, options: dict[str, Any]) -> AsyncClient:
    return AsyncClient(host, port, **options)


def connect(host: str, port: int = 11112, **options: Any) -> Client:
    """A sync client for the DICOM peer at host:port (``called_ae=``, ``calling_ae=`` ...:
    see ``pacsbox.AsyncClient``). No network traffic until the first call."""
    return Client(host, port, **options)
