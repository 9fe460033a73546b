"""C-STORE throughput: a whole directory of CT images sent on ONE association.

Two data sets (``bench/datasets.py``, generated once per bench run): 2,000 images of ~40 KB
(100 x 200 pixels) and 400 of ~512 KB (512 x 512), Explicit VR Little Endian, one study.
Every run is a whole sender tool run, from process start to exit: it reads the directory,
connects, negotiates, sends every file and releases. Receivers are servers started once per
bench run that write every data set to a file; their output directory is emptied before and
after each run (not timed), and after each run it must hold exactly one file per SOP
Instance UID sent: a run that lost a file is a failure, not a figure.

Senders: DCMTK ``storescu +sd DIR`` (its defaults: every storage SOP class proposed with the
uncompressed syntaxes, halt on the first failure), ``pacsbox storescu -q HOST PORT DIR``, and
a pynetdicom ``send_c_store(path)`` loop (reference). Receivers: DCMTK ``storescp -od``,
``pacsbox storescp -q -od`` and a pynetdicom SCP with a raw write (reference).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..context import Context, fixture
from ..datasets import DataSet, data_set
from ..peers import HOST, dcmtk_env, dcmtk_tool, pacsbox_cli, run_timed
from ..registry import Measurement, scenario
from ..servers import SCRIPTS


@dataclass(frozen=True, slots=True)
class SetSpec:
    key: str  # fixture "data-<key>", scenario ids "storage-<key>.<pairing>"
    label: str  # shown in the scenario names
    count: int
    rows: int
    columns: int


SETS = (
    SetSpec("40k", "2000 x 40 KB", 2000, 100, 200),
    SetSpec("512k", "400 x 512 KB", 400, 512, 512),
)

for _spec in SETS:

    def _make(spec: SetSpec) -> Callable[[Context], DataSet]:
        def generate(ctx: Context) -> DataSet:
            return data_set(ctx.tmp, f"ct{spec.key}", spec.count, spec.rows, spec.columns)

        return generate

    fixture(f"data-{_spec.key}")(_make(_spec))


# -- senders: the command line of one whole tool run ------------------------------------------

Sender = Callable[[int, Path], tuple[list[str], dict[str, str] | None]]


def dcmtk_storescu(port: int, directory: Path) -> tuple[list[str], dict[str, str] | None]:
    return [dcmtk_tool("storescu"), HOST, str(port), "+sd", str(directory)], dcmtk_env()


def pacsbox_storescu(port: int, directory: Path) -> tuple[list[str], dict[str, str] | None]:
    return [*pacsbox_cli(), "storescu", "-q", HOST, str(port), str(directory)], None


def pynetdicom_storescu(port: int, directory: Path) -> tuple[list[str], dict[str, str] | None]:
    script = SCRIPTS / "pynetdicom_storescu.py"
    return [sys.executable, str(script), "--nodelay", HOST, str(port), str(directory)], None


# -- one run ----------------------------------------------------------------------------------


def _empty(directory: Path) -> None:
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def _verify(directory: Path, data: DataSet) -> None:
    """Exactly one file per instance sent, named as DCMTK's storescp names it, not empty."""
    expected = {f"CT.{uid}" for uid in data.sop_instance_uids}
    sizes: dict[str, int] = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            size = entry.stat(follow_symlinks=False).st_size
            if entry.name.startswith(".incoming-") and size == 0:
                continue  # pacsbox storescp's spare temp file, ready for the next instance
            sizes[entry.name] = size
    got = set(sizes)
    missing, extra = expected - got, got - expected
    empty = [name for name in expected & got if sizes[name] == 0]
    if missing or extra or empty:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {min(missing)})")
        if extra:
            detail.append(f"{len(extra)} unexpected (e.g. {min(extra)})")
        if empty:
            detail.append(f"{len(empty)} empty")
        raise RuntimeError(
            f"the receiver stored {len(expected & got)} of {data.count} files in {directory}: "
            + "; ".join(detail)
        )


def run_store(ctx: Context, data_key: str, receiver: str, sender: Sender) -> Measurement:
    data: DataSet = ctx.fixture(f"data-{data_key}")
    server = ctx.fixture(receiver)
    out: Path = server.output_dir
    _empty(out)
    argv, env = sender(server.port, data.directory)
    seconds = run_timed(argv, env=env)
    server.check_alive()
    _verify(out, data)
    _empty(out)
    return Measurement(
        seconds,
        {
            "MB_per_s": data.total_bytes / seconds / 1e6,
            "ms_per_file": seconds / data.count * 1e3,
        },
    )


# -- scenarios --------------------------------------------------------------------------------

PAIRINGS: tuple[tuple[str, str, str, Sender, bool], ...] = (
    # (id suffix, name, receiver fixture, sender, reference)
    ("dcmtk-dcmtk", "DCMTK storescu -> DCMTK storescp", "dcmtk-storescp-files",
     dcmtk_storescu, False),
    ("pacsbox-dcmtk", "pacsbox storescu -> DCMTK storescp", "dcmtk-storescp-files",
     pacsbox_storescu, False),
    ("dcmtk-pacsbox", "DCMTK storescu -> pacsbox storescp", "pacsbox-storescp",
     dcmtk_storescu, False),
    ("pacsbox-pacsbox", "pacsbox storescu -> pacsbox storescp", "pacsbox-storescp",
     pacsbox_storescu, False),
    ("pynetdicom", "pynetdicom SCU -> pynetdicom SCP (TCP_NODELAY patched in)",
     "pynetdicom-store-scp", pynetdicom_storescu, True),
)  # fmt: skip

PYNETDICOM_NOTE = (
    "pynetdicom 3.0.4 sets no TCP_NODELAY; it is patched into both sides here (else each "
    "C-STORE waits ~40 ms on Nagle's algorithm); SCU: send_c_store(path) per file (reads and "
    "re-encodes it), SCP: raw write of event.encoded_dataset()"
)


def _register(spec: SetSpec) -> None:
    baseline = f"storage-{spec.key}.dcmtk-dcmtk"
    for suffix, name, receiver, sender, reference in PAIRINGS:
        sid = f"storage-{spec.key}.{suffix}"

        def fn(ctx: Context, _r=receiver, _s=sender, _k=spec.key) -> Measurement:
            return run_store(ctx, _k, _r, _s)

        scenario(
            sid,
            f"storage {spec.label}: {name}",
            items=spec.count,
            unit="file",
            baseline=None if sid == baseline else baseline,
            reference=reference,
            optional=reference,
            note=PYNETDICOM_NOTE if reference else "",
        )(fn)


for _spec in SETS:
    _register(_spec)
