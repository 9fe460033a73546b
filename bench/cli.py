"""`python -m bench [--quick] [--repeats N] [--only NAME] ...` (what `make bench` runs)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import registry, report, runner
from .context import Context, default_tmp_root
from .peers import dcmtk_version, pin

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_REPEATS = 5
QUICK_REPEATS = 3


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="pacsbox benchmarks against DCMTK (and pynetdicom as a reference). "
        "Reports the median of the repeats; never asserts on times.",
    )
    p.add_argument("--repeats", type=int, metavar="N",
                   help=f"measured runs per scenario (default {DEFAULT_REPEATS}, "
                   f"--quick: {QUICK_REPEATS})")  # fmt: skip
    p.add_argument("--warmup", type=int, default=1, metavar="N",
                   help="unrecorded runs per scenario first (default 1)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="fewer repeats, for a quick check")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="only scenarios whose id or name contains NAME (repeatable; the "
                   "baselines they are compared with are added)")  # fmt: skip
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin clients and servers to separate CPUs")  # fmt: skip
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--out", type=Path, default=RESULTS_DIR,
                   help="where latest.json and latest.md go (default bench/results)")  # fmt: skip
    p.add_argument("--no-save", action="store_true", help="print the table only")
    p.add_argument("--tmp", metavar="DIR",
                   help="where the run's files go (default: /dev/shm when it is a tmpfs with 4 GiB free, "
                   "else the system's temp directory); e.g. /var/tmp to measure on disk")  # fmt: skip
    p.add_argument("--keep-tmp", action="store_true",
                   help="keep the temp directory (server logs) after the run")  # fmt: skip
    return p


def _commit() -> str:
    try:  # read-only
        cp = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    commit = cp.stdout.strip() or "?"
    try:  # read-only: are the measured sources (src/) different from that commit?
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "src"],
            capture_output=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent.parent,
            check=False,
        ).returncode
    except (OSError, subprocess.TimeoutExpired):
        return commit
    return commit + (" + uncommitted changes in src/" if dirty == 1 else "")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _file_system(path: Path) -> str:
    """``path``'s mount point and type, from /proc/self/mounts (longest matching mount)."""
    best = ("", "?")
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            inside = len(fields) >= 3 and str(path).startswith(fields[1].rstrip("/") + "/")
            if inside and len(fields[1]) >= len(best[0]):
                best = (fields[1], fields[2])
    return f"{path} ({best[1]} on {best[0] or '?'})"


def meta(repeats: int, warmup: int, pinning: str, tmp: str = "?") -> dict[str, Any]:
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pacsbox": _version("pacsbox"),
        "commit": _commit(),
        "dcmtk": dcmtk_version(),
        "pynetdicom": _version("pynetdicom"),
        "repeats": repeats,
        "warmup": warmup,
        "pinning": pinning,
        "tmp": tmp,
    }


def _progress(phase, s, rnd, rounds, m, error) -> None:
    """One line per run on stderr; a failure's traceback and server logs in full."""
    if phase == "traceback":
        print(error, file=sys.stderr, flush=True)
        return
    head = f"[{rnd}/{rounds} {phase}] {s.name}"
    print(
        f"{head}: {error if error is not None else f'{m.seconds:.3f} s'}",
        file=sys.stderr,
        flush=True,
    )


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C does, so the servers we started are stopped
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        for s in registry.load_all().values():
            tags = [t for t, on in (("reference", s.reference), ("optional", s.optional)) if on]
            extra = f"  [{', '.join(tags)}]" if tags else ""
            print(f"{s.id:28} {s.name}{extra}")
        return 0
    repeats = args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    if repeats < 1 or args.warmup < 0:
        parser().error("--repeats must be >= 1 and --warmup >= 0")
    scenarios = registry.select(args.only)
    signal.signal(signal.SIGTERM, _terminate)
    pinning = pin(args.pin)
    print(
        f"bench: {len(scenarios)} scenario(s), {args.warmup} warm-up + {repeats} measured "
        f"run(s) each, interleaved; CPU pinning: {pinning}",
        file=sys.stderr,
        flush=True,
    )
    tmp_root = args.tmp if args.tmp is not None else default_tmp_root()
    with Context(quick=args.quick, keep_tmp=args.keep_tmp, tmp_root=tmp_root) as ctx:
        where = _file_system(ctx.tmp)
        print(f"bench: files under {where}", file=sys.stderr, flush=True)
        results = runner.run(
            scenarios,
            ctx,
            repeats=repeats,
            warmup=args.warmup,
            progress=_progress,
        )
    info = meta(repeats, args.warmup, pinning, where)
    report.print_table(results, info)
    if not args.no_save:
        for path in report.save(results, info, args.out):
            print(f"bench: wrote {path}", file=sys.stderr)
    failed = [r for r in results.values() if r.status == "failed"]
    return 1 if failed else 0
