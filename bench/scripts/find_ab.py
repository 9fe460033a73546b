"""Before/after for the find-1m queries in ONE run: two `pacsbox serve` processes, one on each
source tree, on the same cached 1M index; rounds alternate between them (and which goes
first), so machine noise falls on both alike.

    .venv/bin/python bench/scripts/find_ab.py --before /path/to/main/src --after src [--rounds 5]

Each round sends every query of bench/find_queries.py 50 times on one association to each
server; the figure is the median over rounds of each round's median (ms per C-FIND).
Both trees must accept the index's schema revision (no migration between them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.fill_index import cached_index  # noqa: E402
from bench.find_queries import QUERIES  # noqa: E402
from bench.peers import HOST, free_port, pacsbox_cli, wait_for_port  # noqa: E402
from bench.scenarios.find import _finds  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", required=True, help="src directory of the 'before' pacsbox")
    p.add_argument("--after", required=True, help="src directory of the 'after' pacsbox")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    db = cached_index()
    cpus = sorted(os.sched_getaffinity(0))
    ports, processes = {}, []
    data = Path(f"/tmp/find-ab-{os.getpid()}")  # the servers' empty storage
    try:
        for name in ("before", "after"):
            port = free_port()
            env = dict(os.environ, PYTHONPATH=str(Path(getattr(args, name)).resolve()))
            argv = [*pacsbox_cli(), "serve", "-q", "--host", HOST, "--port", str(port)]
            argv += ["--db", f"sqlite:///{db}", "--data", str(data / name)]
            if len(cpus) > 1:  # servers on the second CPU, this client on the first
                argv = ["taskset", "-c", str(cpus[1]), *argv]
            process = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
            )
            processes.append(process)
            wait_for_port(port, process=process)
            ports[name] = port
        if len(cpus) > 1:
            os.sched_setaffinity(0, {cpus[0]})
        figures: dict[tuple[str, str], list[float]] = {}
        matches: dict[str, set[int]] = {}
        for r in range(args.rounds + 1):  # round 0 warms up
            for query in QUERIES:
                for name in ("before", "after") if r % 2 else ("after", "before"):
                    times, found = asyncio.run(_finds(HOST, ports[name], query))
                    matches.setdefault(query.id, set()).update(found)
                    if r:
                        figures.setdefault((query.id, name), []).append(statistics.median(times))
        for query in QUERIES:
            before = statistics.median(figures[(query.id, "before")]) * 1e3
            after = statistics.median(figures[(query.id, "after")]) * 1e3
            print(f"{query.id:14s} matches {sorted(matches[query.id])}: before {before:6.1f} ms"
                  f"  after {after:6.1f} ms  ({(after - before) / before * 100:+.0f}%)")  # fmt: skip
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
