"""A server started from the command line leaves its start-up objects out of full GC runs."""

from __future__ import annotations

import asyncio
import gc

from pacsbox.cli.common import serve_until_stopped


class FakeServer:
    closed = False

    async def close(self) -> None:
        self.closed = True


def test_start_up_objects_are_frozen_once_the_server_listens():
    server = FakeServer()

    async def listen(server, stop) -> None:
        stop.set()  # stop at once: only what happens on the way matters

    gc.unfreeze()
    try:
        assert asyncio.run(serve_until_stopped(server, "127.0.0.1", 0, listen=listen)) == 0
        assert gc.get_freeze_count() > 0 and server.closed
    finally:
        gc.unfreeze()
