"""C-FIND latency on a 1,000,000-instance index (``find-1m.*``).

``pacsbox serve`` runs on the cached synthetic index of ``bench.fill_index`` (1,000,000
instances, 10,000 studies, ~3,000 patients, SQLite; filled once, ~25 s, and kept in
``~/.cache/pacsbox-bench``), with an empty temp ``--data`` directory. Each run opens ONE
association from the pacsbox API client in the bench process (not timed) and sends the same
C-FIND 50 times on it (``bench.find_queries``: Study Root, a study browser's return keys);
each C-FIND is timed from the request's send to its final response, every pending response
received (not decoded: that is the client's business). The figure is the median of those 50
(``seconds``, so the table's "median s" is seconds per query and its rate queries/s);
``extra`` has ``ms_median``, ``ms_min``, ``ms_max`` of the run and ``matches``, the number of
pending responses, which must be the same for all 50.

No DCMTK row: dcmqrscp keeps its index in index.dat, filled only by C-STORE of real files
(1M through storescu would take hours and ~1M files); see bench/README.md.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from ..context import Context, fixture
from ..find_queries import QUERIES, STUDY_ROOT_FIND, FindQuery
from ..peers import HOST, ServerProcess, pacsbox_cli, start_server
from ..registry import Measurement, scenario

REPEATS = 50
INSTANCES, STUDIES = 1_000_000, 10_000
TIMEOUT = 300.0
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"


@fixture("pacsbox-serve-1m")
def pacsbox_serve_1m(ctx: Context) -> ServerProcess:
    """`pacsbox serve` on the cached 1M-instance SQLite index (filled on first use)."""
    from ..fill_index import cached_index

    db = cached_index(INSTANCES, STUDIES)
    cli = pacsbox_cli()
    workdir = ctx.workdir("pacsbox-serve-1m")
    return start_server(
        "pacsbox-serve-1m",
        lambda port: [
            *(*cli, "serve", "-q", "--host", HOST, "--port", str(port)),
            *("--db", f"sqlite:///{db}", "--data", str(workdir / "data")),
        ],
        workdir=workdir,
    )


async def _finds(host: str, port: int, query: FindQuery) -> tuple[list[float], set[int]]:
    from pacsbox.datasets import encode_dataset
    from pacsbox.dimse import CFindRQ
    from pacsbox.net.association import Association, Timeouts
    from pacsbox.net.requestor import build_rq

    rq = build_rq(
        calling_ae="FINDSCU",
        called_ae="PACSBOX",
        proposals=[(STUDY_ROOT_FIND, [EXPLICIT_VR_LE])],
    )
    identifier = encode_dataset(query.identifier(), EXPLICIT_VR_LE)
    assoc = await Association.connect(
        host, port, rq, timeouts=Timeouts(connect=10, acse=30, dimse=60)
    )
    times, matches = [], set()
    try:
        context = assoc.context_for(STUDY_ROOT_FIND).context_id
        for _ in range(REPEATS):
            request = CFindRQ(
                message_id=assoc.next_message_id(), affected_sop_class_uid=STUDY_ROOT_FIND
            )
            pending = 0
            t0 = time.perf_counter()
            async for response, _data in assoc.request(context, request, identifier):
                if response.status == 0xFF00:
                    pending += 1
                elif response.status != 0:
                    raise RuntimeError(
                        f"C-FIND {query.id} ended with status 0x{response.status:04X}: "
                        f"{response.error_comment}"
                    )
            times.append(time.perf_counter() - t0)
            matches.add(pending)
    except BaseException:
        assoc.abort()
        raise
    await assoc.release()
    return times, matches


def run_finds(ctx: Context, query: FindQuery) -> Measurement:
    server = ctx.fixture("pacsbox-serve-1m")
    times, matches = asyncio.run(asyncio.wait_for(_finds(server.host, server.port, query), TIMEOUT))
    if len(matches) != 1:
        raise RuntimeError(
            f"C-FIND {query.id} gave different numbers of matches: {sorted(matches)}"
        )
    median = statistics.median(times)
    return Measurement(
        median,
        {
            "ms_median": median * 1e3,
            "ms_min": min(times) * 1e3,
            "ms_max": max(times) * 1e3,
            "matches": float(matches.pop()),
        },
    )


def _register(query: FindQuery) -> None:
    def fn(ctx: Context, _q=query) -> Measurement:
        return run_finds(ctx, _q)

    scenario(
        f"find-1m.{query.id}",
        f"find 1M: {query.label}",
        items=1,
        unit="C-FIND",
        note=""
        if query is not QUERIES[0]
        else "find-1m: median seconds per C-FIND of 50 on one association (pacsbox client -> "
        "pacsbox serve, 1M-instance SQLite index); extra: ms_min/ms_max/matches",
    )(fn)


for _query in QUERIES:
    _register(_query)
