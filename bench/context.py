"""The context of one benchmark run: a temp directory and the servers scenarios share.

Servers are *fixtures*: started the first time a scenario asks for them, kept for the whole
run (so every repeat of every scenario talks to the same server process), and stopped when
the run ends, whatever happened. Register one with::

    @fixture("dcmtk-storescp")
    def storescp(ctx: Context) -> ServerProcess: ...
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIXTURES: dict[str, Callable[[Context], Any]] = {}

# Where the run's files go (receivers' stores, archives, generated data) unless --tmp says.
# A tmpfs takes the file system's allocator out of the comparison: on this machine's ext4 a
# file create cost 13 us or 800 us depending on the inode group the directory landed in
# (bench/README.md, "Where the receivers write"), and every receiver creates one file an
# instance. The 1 GiB memory scenario needs its instance and the stored copy: 4 GiB free.
TMPFS = "/dev/shm"
TMPFS_NEEDS = 4 << 30


def default_tmp_root(
    candidate: str = TMPFS,
    needs: int = TMPFS_NEEDS,
    statvfs=os.statvfs,
    mounts: str = "/proc/self/mounts",
) -> str | None:
    """``candidate`` if it is a tmpfs mount point with ``needs`` bytes free, else None (the
    system's temp directory)."""
    try:
        with open(mounts) as table:
            kinds = {f[1]: f[2] for f in (line.split() for line in table) if len(f) >= 3}
        st = statvfs(candidate)
    except OSError:
        return None
    if kinds.get(candidate.rstrip("/") or "/") != "tmpfs":
        return None
    return candidate if st.f_bavail * st.f_frsize >= needs else None


def fixture(name: str) -> Callable[[Callable[[Context], Any]], Callable[[Context], Any]]:
    """Register a shared server (or any resource with a ``stop()``) under ``name``."""

    def register(fn: Callable[[Context], Any]) -> Callable[[Context], Any]:
        if name in FIXTURES:
            raise ValueError(f"fixture {name!r} is registered twice")
        FIXTURES[name] = fn
        return fn

    return register


class Context:
    """Use as a context manager; everything started inside is stopped on exit."""

    def __init__(
        self, *, quick: bool = False, keep_tmp: bool = False, tmp_root: str | None = None
    ) -> None:
        self.quick = quick
        self._keep_tmp = keep_tmp
        self.tmp_root = tmp_root  # None: the system's temp directory
        self._stack = contextlib.ExitStack()
        self._fixtures: dict[str, Any] = {}
        self.tmp: Path = Path()

    def __enter__(self) -> Context:
        if self._keep_tmp:
            self.tmp = Path(tempfile.mkdtemp(prefix="pacsbox-bench-", dir=self.tmp_root))
        else:
            self.tmp = Path(
                self._stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="pacsbox-bench-", dir=self.tmp_root)
                )
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()  # stops the fixtures (last started first), then removes tmp

    def fixture(self, name: str) -> Any:
        """The shared resource ``name``, started on first use."""
        if name not in self._fixtures:
            resource = FIXTURES[name](self)
            self._fixtures[name] = resource
            self._stack.callback(resource.stop)
        resource = self._fixtures[name]
        check = getattr(resource, "check_alive", None)
        if check is not None:
            check()  # a server that died would make every later figure meaningless
        return resource

    def logs(self) -> str:
        """What the shared servers logged so far (to explain a failed run)."""
        parts = [r.log() for r in self._fixtures.values() if hasattr(r, "log")]
        return "\n".join(p for p in parts if p)

    def workdir(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path
