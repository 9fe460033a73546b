"""What `pacsbox movescu` and `pacsbox getscu` share: DCMTK's options for a retrieve, the
identifier from query files and -k keys, the progress bar and the one-line summary."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from ..log import log
from ..services.qr_models import Model
from .common import DcmtkArgumentParser, add_general_options, add_network_options, positive_int

MODEL_FLAGS = (
    ("-P", "--patient", Model.PATIENT_ROOT, "use patient root information model (default)"),
    ("-S", "--study", Model.STUDY_ROOT, "use study root information model"),
    ("-O", "--psonly", Model.PATIENT_STUDY_ONLY, "use patient/study only information model"),
)


class RetrieveArgumentParser(DcmtkArgumentParser):
    """Query files may come before or after the options, as DCMTK allows."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        return self.parse_intermixed_args(args, namespace)


def add_retrieve_options(parser: argparse.ArgumentParser, *, aet: str) -> None:
    """peer port [dcmfile-in...], -k, -P/-S/-O, the AE titles, timeouts, -od, --cancel ..."""
    parser.add_argument("peer", help="hostname of DICOM peer")
    parser.add_argument("port", type=int, help="tcp/ip port number of peer")
    parser.add_argument("files", nargs="*", metavar="dcmfile-in", help="DICOM query file(s)")
    add_general_options(parser)
    add_network_options(parser, aet=aet)
    g = parser.add_argument_group("override matching keys")
    g.add_argument("-k", "--key", action="append", default=[], metavar="KEY",
                   help='[k]ey: gggg,eeee="str", path or dict. name="str": override matching key')  # fmt: skip
    g = parser.add_argument_group("query information model")
    models = g.add_mutually_exclusive_group()
    for short, long, model, text in MODEL_FLAGS:
        models.add_argument(short, long, dest="model", action="store_const", const=model, help=text)
    parser.set_defaults(model=Model.PATIENT_ROOT)
    g = parser.add_argument_group("other network options")
    g.add_argument("--repeat", type=positive_int, default=1, metavar="N", help="repeat n times")
    g.add_argument("--abort", action="store_true", help="abort association instead of releasing it")
    g.add_argument(
        "--ignore", action="store_true", help="ignore store data, receive but do not store"
    )
    g.add_argument("--cancel", type=positive_int, metavar="N",
                   help="cancel after n responses (default: never); for C-GET an instance "
                        "received counts as a response too")  # fmt: skip
    g = parser.add_argument_group("output options")
    g.add_argument("-od", "--output-directory", default=".", metavar="DIR",
                   help='write received objects to existing directory d (default: ".")')  # fmt: skip


def check_output_directory(args) -> bool:
    if Path(args.output_directory).is_dir():
        return True
    log.critical(
        "specified output directory does not exist: %s (create it, or pass another with -od)",
        args.output_directory,
    )
    return False


# -- the identifier ----------------------------------------------------------------------------


def identifiers(args) -> list[tuple[str | None, object]]:
    """(query file or None, Dataset) of each request: every query file with the -k keys on
    top, or the keys alone; DCMTK's full key syntax (pacsbox.query_keys), as findscu."""
    from .findscu import _identifiers

    return [(None if label == "-k" else label, ds) for label, ds in _identifiers(args)]


# -- cancel ------------------------------------------------------------------------------------


INTERRUPTED = 130  # the exit status of a retrieve cut short by Ctrl-C, as a shell gives


class Cancelling:
    """When a request is cancelled: after --cancel N responses (DCMTK's count: the pending
    responses; C-GET's instances received count as well, since a PACS may send none), or at
    the first Ctrl-C, which sends a C-CANCEL-RQ and waits for the PACS's final response; a
    second Ctrl-C stops at once."""

    def __init__(self, after: int | None) -> None:
        self.after = after
        self.interrupted = False
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> Cancelling:
        self._loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            self._loop.add_signal_handler(signal.SIGINT, self._on_interrupt)
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            self._loop.remove_signal_handler(signal.SIGINT)  # type: ignore[union-attr]

    def _on_interrupt(self) -> None:
        if self.interrupted or self._event is None:  # the second Ctrl-C, or no request yet
            self._loop.remove_signal_handler(signal.SIGINT)  # type: ignore[union-attr]
            os.kill(os.getpid(), signal.SIGINT)  # Python's own handler: KeyboardInterrupt
            return
        self.interrupted = True
        log.warning("Interrupted: cancelling the retrieve (press Ctrl-C again to stop at once)")
        self._event.set()

    def finished(self) -> None:
        """The request has its final response: a Ctrl-C now stops at once."""
        self._event = None

    def request(self, display: ProgressDisplay):
        """(on_progress, cancel event) for the next request."""
        self._event = event = asyncio.Event()
        seen = [0]

        def on_progress(progress) -> None:
            seen[0] += 1
            display.counters(progress)
            if self.after and seen[0] >= self.after:
                event.set()

        return on_progress, event


# -- progress ----------------------------------------------------------------------------------


class ProgressDisplay:
    """A rich progress bar on a terminal (not with -v/-d/-q), fed by the pending responses'
    counters and by the instances received, whichever says more: a PACS that sends no
    pending response still moves the bar, one instance at a time."""

    def __init__(self, description: str) -> None:
        self._progress = None
        self._task = None
        self._streams: list = []
        self.description = description
        self.total: int | None = None
        self.pacs_done = 0
        self.received = 0

    def __enter__(self) -> ProgressDisplay:
        if (
            sys.stderr.isatty()
            and not log.isEnabledFor(logging.INFO)
            and log.isEnabledFor(logging.CRITICAL)
        ):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._progress = Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=Console(stderr=True), transient=True,
            )  # fmt: skip
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=None)
            # rich now writes stderr through a proxy that keeps the bar below other output;
            # our log lines (warnings, the F: line) go through it too
            self._streams = [
                (h, h.setStream(sys.stderr)) for h in log.handlers if hasattr(h, "setStream")
            ]
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            for handler, stream in self._streams:
                handler.setStream(stream)
            self._progress.stop()
            self._progress = None

    def counters(self, progress) -> None:
        """A pending response (or a C-GET store: RetrieveProgress has both)."""
        if progress.total is not None:
            self.total = progress.total
        counted = sum(c or 0 for c in (progress.completed, progress.failed, progress.warning))
        self.pacs_done = max(self.pacs_done, counted)
        self.received = max(self.received, progress.received)
        self._refresh()

    def finish(self, result) -> None:
        """The final response's counters: the bar ends full even without pending responses."""
        if result is None:
            return
        counted = sum(c or 0 for c in (result.completed, result.failed, result.warning))
        self.pacs_done = max(self.pacs_done, counted)
        self.total = max(counted, self.received)
        self._refresh()

    def instance_received(self) -> None:
        self.received += 1
        self._refresh()

    def _refresh(self) -> None:
        if self._progress is None:
            return
        done = max(self.pacs_done, self.received)
        total = self.total if self.total is not None and self.total >= done else None
        self._progress.update(self._task, completed=done, total=total)  # type: ignore[arg-type]


def summary(tool: str, result, received: int | None, args) -> None:
    """One line to stderr (unless -q): what the PACS counted and what arrived here."""
    if args.quiet or result is None:
        return
    counts = (
        f"{_n(result.completed)} completed, {_n(result.failed)} failed, "
        f"{_n(result.warning)} warning"
    )
    here = f"; {received} instance(s) received here" if received is not None else ""
    print(f"{tool}: {result.meaning} ({counts}){here}", file=sys.stderr)


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)
