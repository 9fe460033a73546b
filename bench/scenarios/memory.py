"""Memory: the receiver's peak RSS growth while it receives one 1 GiB instance.

Issue target: "receiving a 1 GB instance: peak RSS growth < 100 MB" (pacsbox streams each
received data set to a temp file, so its memory must not grow with the data set's size).

The instance (``bench/large_instance.py``: an Enhanced CT of 2048 x 512 x 512 x 16 bit,
Explicit VR Little Endian, made once per bench run) is sent by DCMTK ``storescu`` (TCP_NODELAY=1)
to a receiver started fresh before every run (untimed): ``pacsbox storescp``, ``pacsbox serve``
(files + SQLite index), DCMTK ``storescp`` (which holds the whole data set in memory: the
baseline) and Orthanc 1.10.1. Once it listens, its peak RSS (VmHWM) is reset to its current RSS
by writing 5 to ``/proc/PID/clear_refs`` and VmRSS is read; after the send the growth is VmHWM
minus that VmRSS (when the kernel refuses the reset, VmHWM minus VmHWM before the send, which
is the start-up peak of the fresh process). None of these receivers forks per association with
the options used; a watcher fails the run if the receiver has a child process during the send,
whose memory VmHWM would not show; it also samples VmRSS every 20 ms
(``rss_sampled_growth_MB``, a cross-check).

Timed: the whole storescu run (process start to exit). The figure that matters is
``extra["rss_growth_MB"]`` (MB = 10^6 bytes), shown in the table's rate column. After each
run the receiver must hold one file whose data set (after its own File Meta Information) has
the length of the one sent; it is then deleted with the receiver's store (1 GiB a run).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from ..context import Context, fixture
from ..large_instance import PIXEL_BYTES, LargeInstance, large_instance
from ..peers import (
    HOST,
    ServerProcess,
    dcmtk_env,
    dcmtk_tool,
    pacsbox_cli,
    run_timed,
    start_server,
)
from ..registry import Figure, Measurement, scenario
from ..servers import ArchiveReceiver, OrthancArchive, PacsboxArchive

MB = 1_000_000
TARGET_MB = 100.0  # the absolute target for pacsbox


@fixture("data-1g")
def data_1g(ctx: Context) -> LargeInstance:
    return large_instance(ctx.tmp)


class PacsboxStorescp(ArchiveReceiver):
    """`pacsbox storescp -q --host 127.0.0.1 -od DIR PORT`, files only."""

    def start(self, workdir: Path) -> ServerProcess:
        cli = pacsbox_cli()
        self.store = workdir / "out"
        self.store.mkdir()
        return start_server(
            "pacsbox-storescp-1g",
            lambda port: [*cli, "storescp", "-q", "--host", HOST, "-od", self.store, port],
            workdir=workdir,
        )


class DcmtkStorescp(ArchiveReceiver):
    """DCMTK `storescp -od DIR PORT` with its defaults (single process, TCP_NODELAY=1)."""

    def start(self, workdir: Path) -> ServerProcess:
        tool = dcmtk_tool("storescp")
        self.store = workdir / "out"
        self.store.mkdir()
        return start_server(
            "storescp-1g",
            lambda port: [tool, "-od", str(self.store), str(port)],
            workdir=workdir,
            env=dcmtk_env(),
        )


RECEIVERS = (
    # (id suffix, name, receiver class)
    ("dcmtk-storescp", "DCMTK storescu -> DCMTK storescp (in memory)", DcmtkStorescp),
    ("pacsbox-storescp", "DCMTK storescu -> pacsbox storescp", PacsboxStorescp),
    ("pacsbox-serve", "DCMTK storescu -> pacsbox serve (files + SQLite index)", PacsboxArchive),
    ("orthanc", "DCMTK storescu -> Orthanc 1.10.1 (files + SQLite index)", OrthancArchive),
)
BASELINE = "memory-1g.dcmtk-storescp"

for _suffix, _name, _cls in RECEIVERS:

    def _make(suffix: str, cls: type[ArchiveReceiver]):
        def make(ctx: Context) -> ArchiveReceiver:
            return cls(ctx, f"memory-1g-{suffix}")

        return make

    fixture(f"memory-1g-{_suffix}")(_make(_suffix, _cls))


# -- /proc ------------------------------------------------------------------------------------


def _status_kb(pid: int, field: str) -> int:
    """A ``Vm...`` line of /proc/PID/status, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status (not Linux?)")


def _reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += map(int, (task / "children").read_text().split())
    except OSError:  # the process or a thread went away
        pass
    return found


class ProcessWatch:
    """Polls the receiver every 20 ms while the send runs: its child processes (a forked
    child's memory is not in the parent's VmHWM, so a figure measured that way would be wrong)
    and its VmRSS (the highest sample is a cross-check of VmHWM, which sees every page)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.children: set[int] = set()
        self.rss_peak_kb = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._done.wait(0.02):
            self.children.update(_children(self.pid))
            with contextlib.suppress(OSError, RuntimeError):
                self.rss_peak_kb = max(self.rss_peak_kb, _status_kb(self.pid, "VmRSS"))

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


# -- one run ----------------------------------------------------------------------------------


def _received(store: Path) -> Path:
    """The one file of at least 1 GiB under ``store`` (wherever the receiver puts it)."""
    found = [p for p in store.rglob("*") if p.is_file() and p.stat().st_size > PIXEL_BYTES]
    if len(found) != 1:
        raise RuntimeError(f"expected one file of > 1 GiB under {store}, found {found}")
    return found[0]


def run_memory(ctx: Context, receiver_name: str) -> Measurement:
    from pacsbox.dicomfile import read_file_info

    data: LargeInstance = ctx.fixture("data-1g")
    receiver: ArchiveReceiver = ctx.fixture(receiver_name)
    server = receiver.fresh()  # untimed: a new process on an empty store
    assert server.process is not None
    pid = server.process.pid
    hwm_before = _status_kb(pid, "VmHWM")
    reset = _reset_peak(pid)
    rss_before = _status_kb(pid, "VmRSS")
    argv = [dcmtk_tool("storescu"), "-aec", receiver.aet, HOST, str(server.port), data.path]
    with ProcessWatch(pid) as watch:
        seconds = run_timed(argv, env=dcmtk_env())
    server.check_alive()
    peak = _status_kb(pid, "VmHWM")
    rss_after = _status_kb(pid, "VmRSS")
    if watch.children:
        raise RuntimeError(
            f"{receiver.name} had child processes {sorted(watch.children)} during the send; "
            "their memory is not in its VmHWM, so this figure would be wrong"
        )
    growth_kb = peak - (rss_before if reset else hwm_before)
    stored = _received(receiver.store)
    info = read_file_info(stored)
    if (info.sop_instance_uid, info.dataset_length) != (data.sop_instance_uid, data.dataset_length):
        raise RuntimeError(
            f"{receiver.name} stored {stored} with SOP Instance UID {info.sop_instance_uid} "
            f"and a {info.dataset_length}-byte data set; sent {data.sop_instance_uid}, "
            f"{data.dataset_length} bytes"
        )
    stored.unlink()  # 1 GiB: do not wait for the next run to remove it
    receiver.stop()
    return Measurement(
        seconds,
        {
            "rss_growth_MB": growth_kb * 1024 / MB,
            "rss_before_MB": rss_before * 1024 / MB,
            "rss_after_MB": rss_after * 1024 / MB,
            "rss_sampled_growth_MB": (watch.rss_peak_kb - rss_before) * 1024 / MB,
            "MB_per_s": data.path.stat().st_size / seconds / MB,
            "hwm_reset": float(reset),
        },
    )


for _suffix, _name, _cls in RECEIVERS:

    def _fn(ctx: Context, _r=f"memory-1g-{_suffix}") -> Measurement:
        return run_memory(ctx, _r)

    scenario(
        f"memory-1g.{_suffix}",
        f"memory, 1 GiB instance: {_name}",
        baseline=None if _suffix == "dcmtk-storescp" else BASELINE,
        figure=Figure(
            "rss_growth_MB",
            "MB RSS growth",
            limit=TARGET_MB if _suffix.startswith("pacsbox") else None,
        ),
        note="rate column of the memory-1g rows: the receiver's peak RSS growth during the "
        "receive (MB = 10^6 B); their time ratio: storescu's time / this row's"
        if _suffix == "dcmtk-storescp"
        else "",
    )(_fn)
