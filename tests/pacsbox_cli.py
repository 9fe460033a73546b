"""Running pacsbox's own CLI as a user would: `pacsbox <tool> ...` as a subprocess."""

from __future__ import annotations

import subprocess
import sys
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


def pacsbox_server(port: int, *args: object, **kwargs) -> PeerProcess:
    """`pacsbox serve` on 127.0.0.1:port as a context manager (waits until it listens)."""
    argv = [PACSBOX, "serve", "--host", "127.0.0.1", "--port", port, "-v", *args]
    return PeerProcess(argv, port, name="pacsbox-serve", **kwargs)
