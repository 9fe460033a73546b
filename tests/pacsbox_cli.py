"""Running pacsbox's own CLI as a user would: `pacsbox <tool> ...` as a subprocess."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.peers import PeerProcess

PACSBOX = str(Path(sys.executable).with_name("pacsbox"))


def run_pacsbox(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `pacsbox ARGS`; output is checked by the caller (log lines go to stderr)."""
    return subprocess.run(
        [PACSBOX, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def pacsbox_server(
    port: int, *args: object, data: str | Path | None = None, **kwargs
) -> PeerProcess:
    """`pacsbox serve` on 127.0.0.1:port as a context manager (waits until it listens).

    Its data goes to ``data`` (a fresh temporary directory when None), never the work tree.
    """
    data = data or tempfile.mkdtemp(prefix="pacsbox-serve-")
    argv = [PACSBOX, "serve", "--host", "127.0.0.1", "--port", port, "--data", data, "-v", *args]
    return PeerProcess(argv, port, name="pacsbox-serve", **kwargs)
