"""Archive ingest: DCMTK storescu sends a data set to an archive that indexes what it stores.

The same two data sets as the storage scenarios (``storage-40k``/``storage-512k``, shared
fixtures) are sent by DCMTK ``storescu -aec AE 127.0.0.1 PORT +sd DIR`` (TCP_NODELAY=1) to:
``pacsbox serve`` (files + SQLite index, each row committed before the C-STORE response),
DCMTK ``dcmqrscp`` (one storage area, its own index.dat) and Orthanc 1.10.1 (files + SQLite
index). Before each run a fresh receiver process is started on a new, empty store (not
timed), so every run stores new instances; the timed part is one whole storescu run. After
it the receiver must hold exactly the N instances sent, else the run is a failure.

The baseline of each data set is ``storage-<set>.dcmtk-dcmtk``, DCMTK storescu -> DCMTK
storescp (files, no index), measured in the same bench run.
"""

from __future__ import annotations

from ..context import Context
from ..datasets import DataSet
from ..peers import HOST, dcmtk_env, dcmtk_tool, run_timed
from ..registry import Measurement, scenario
from ..servers import ArchiveReceiver
from .storage import SETS, SetSpec

RECEIVERS: tuple[tuple[str, str, str], ...] = (
    # (id suffix, name, receiver fixture)
    ("pacsbox", "DCMTK storescu -> pacsbox serve (files + SQLite index)", "archive-pacsbox"),
    ("dcmqrscp", "DCMTK storescu -> DCMTK dcmqrscp (files + index.dat)", "archive-dcmqrscp"),
    ("orthanc", "DCMTK storescu -> Orthanc 1.10.1 (files + SQLite index)", "archive-orthanc"),
)


def run_ingest(ctx: Context, data_key: str, receiver_name: str) -> Measurement:
    data: DataSet = ctx.fixture(f"data-{data_key}")
    receiver: ArchiveReceiver = ctx.fixture(receiver_name)
    server = receiver.fresh()  # untimed: a new process on an empty store
    argv = [
        *(dcmtk_tool("storescu"), "-aec", receiver.aet),
        *(HOST, str(server.port), "+sd", str(data.directory)),
    ]
    seconds = run_timed(argv, env=dcmtk_env())
    server.check_alive()
    stored = receiver.count()
    if stored != data.count:
        raise RuntimeError(f"{receiver.name} holds {stored} of the {data.count} instances sent")
    receiver.stop()  # untimed; the store is removed when the next run starts
    return Measurement(
        seconds,
        {
            "MB_per_s": data.total_bytes / seconds / 1e6,
            "ms_per_file": seconds / data.count * 1e3,
        },
    )


def _register(spec: SetSpec) -> None:
    baseline = f"storage-{spec.key}.dcmtk-dcmtk"
    for suffix, name, receiver in RECEIVERS:

        def fn(ctx: Context, _r=receiver, _k=spec.key) -> Measurement:
            return run_ingest(ctx, _k, _r)

        scenario(
            f"archive-{spec.key}.{suffix}",
            f"archive {spec.label}: {name}",
            items=spec.count,
            unit="file",
            baseline=baseline,
        )(fn)


for _spec in SETS:
    _register(_spec)
