"""Options shared by the DCMTK-style tools, spelled as DCMTK spells them."""

from __future__ import annotations

import argparse
import logging

from .. import log as pblog


class DcmtkArgumentParser(argparse.ArgumentParser):
    """argparse with DCMTK's '+x' options and no abbreviation guessing (-aet is not -a -e -t)."""

    def __init__(self, prog: str, description: str, **kwargs) -> None:
        super().__init__(
            prog=f"pacsbox {prog}",
            description=description,
            prefix_chars="-+",
            allow_abbrev=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kwargs,
        )


class _NotHere(argparse.Action):
    """A DCMTK option this tool does not have: its values are taken (not read as the
    positional arguments), then the parser says so."""

    def __init__(self, *args, hint: str = "", **kwargs) -> None:
        self.hint = hint
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        tool, long = parser.prog.removeprefix("pacsbox "), self.option_strings[-1]
        named = option_string if option_string == long else f"{option_string} ({long})"
        parser.error(
            f"{named} is an option of DCMTK's {tool} that {parser.prog} does not have{self.hint}"
        )


def add_dcmtk_only_options(
    parser: argparse.ArgumentParser,
    refused: list[tuple[tuple[str, ...], int, str]],
    accepted: list[tuple[tuple[str, ...], str]] = (),  # type: ignore[assignment]
) -> None:
    """DCMTK options of this tool that pacsbox does not have: ``refused`` (flags, number of
    values, a hint after the refusal) end the parse with a sentence naming the option, not
    argparse's 'invalid int value' for the value it took for the port; ``accepted`` (flags,
    why) are what pacsbox always does, taken and ignored. Flags the parser has are skipped."""
    known = parser._option_string_actions
    group = parser.add_argument_group("DCMTK options accepted and ignored")
    for flags, why in accepted:
        if not any(flag in known for flag in flags):
            group.add_argument(*flags, action="store_true", dest=f"dcmtk_{flags[-1].strip('-+=')}",
                               help=f"accepted: {why}")  # fmt: skip
    for flags, nargs, hint in refused:
        flags = tuple(flag for flag in flags if flag not in known)
        if flags:
            parser.add_argument(*flags, nargs=nargs, action=_NotHere, hint=hint,
                                help=argparse.SUPPRESS)  # fmt: skip


def add_general_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("general options")
    group.add_argument(
        "-q", "--quiet", action="store_true", help="quiet mode, print no warnings and errors"
    )
    group.add_argument(
        "-v", "--verbose", action="store_true", help="verbose mode, print processing details"
    )
    group.add_argument(
        "-d", "--debug", action="store_true", help="debug mode, print debug information"
    )
    group.add_argument(
        "-ll", "--log-level", choices=list(pblog.LEVELS), help="use level l for the logger"
    )


def configure_logging(args: argparse.Namespace) -> None:
    if args.log_level:
        level = pblog.LEVELS[args.log_level]
    elif args.debug:
        level = logging.DEBUG
    elif args.verbose:
        level = logging.INFO
    elif args.quiet:
        level = logging.CRITICAL + 1
    else:
        level = logging.WARNING
    pblog.configure(level)


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


# Our SCPs ask for the largest PDUs DCMTK allows: a sender then cuts a 512 KB image into 4
# PDUs instead of 32, and each PDU costs us Python work (peers may always send smaller ones).
SCP_MAX_PDU = 131072


def pdu_size(text: str) -> int:
    value = int(text)
    if not 4096 <= value <= 131072:
        raise argparse.ArgumentTypeError(f"max PDU {value} is outside DCMTK's range 4096..131072")
    return value


def add_network_options(parser: argparse.ArgumentParser, *, aet: str, scu: bool = True) -> None:
    """AE titles, timeouts and max PDU, with DCMTK's spellings and defaults."""
    group = parser.add_argument_group("network options")
    group.add_argument("-aet", "--aetitle", default=aet, metavar="AETITLE",
                       help=f"set my AE title (default: {aet})")  # fmt: skip
    if scu:
        group.add_argument("-aec", "--call", default="ANY-SCP", metavar="AETITLE",
                           help="set called AE title of peer (default: ANY-SCP)")  # fmt: skip
        group.add_argument("-to", "--timeout", type=positive_int, metavar="SECONDS",
                           help="timeout for connection requests (default: unlimited)")  # fmt: skip
    group.add_argument("-ts", "--socket-timeout", type=int, default=60, metavar="SECONDS",
                       help="timeout for network socket (0 for none, default: 60)")  # fmt: skip
    group.add_argument("-ta", "--acse-timeout", type=positive_int, default=30, metavar="SECONDS",
                       help="timeout for ACSE messages (default: 30)")  # fmt: skip
    group.add_argument("-td", "--dimse-timeout", type=positive_int, metavar="SECONDS",
                       help="timeout for DIMSE messages (default: unlimited)")  # fmt: skip
    group.add_argument("-pdu", "--max-pdu", type=pdu_size, default=16384, metavar="BYTES",
                       help="set max receive pdu to n bytes (4096..131072, default: 16384)")  # fmt: skip


def report_failure(exc: BaseException) -> None:
    """Print a failure as DCMTK does (F: lines), followed by what to change."""
    from ..ul.diagnosis import AssociationRejectedError, NoAcceptedContextError

    if isinstance(exc, AssociationRejectedError | NoAcceptedContextError):
        lines = exc.diagnosis.lines
        for line in lines:
            pblog.log.critical(line)
        pblog.log.critical("Hint: %s", exc.diagnosis.hint)
        return
    pblog.log.critical(str(exc))


def network_timeouts(args):
    """The Timeouts of DCMTK's -to, -ta, -td and -ts options (add_network_options)."""
    from ..net.association import Timeouts

    return Timeouts(
        connect=getattr(args, "timeout", None),
        acse=args.acse_timeout,
        dimse=getattr(args, "dimse_timeout", None),
        idle=args.socket_timeout or None,
    )


def run_tool(parser: argparse.ArgumentParser, run, argv: list[str], *, server: bool = False) -> int:
    """Parse, set up logging, run the tool's coroutine; failures become DCMTK-style lines.
    ``server``: a long-running SCP (see ``run_coroutine``)."""
    args = parser.parse_args(argv)
    configure_logging(args)
    return run_coroutine(run(args), server=server)


def run_coroutine(coroutine, *, server: bool = False) -> int:
    """Run a tool's coroutine on a new event loop; failures become DCMTK-style lines.
    ``server``: on uvloop's loop where it is installed (``event_loop_factory``)."""
    import asyncio

    from ..errors import PacsboxError
    from ..wording import cli_words

    with cli_words():  # the messages name the tool's flags, also for a tool called in-process
        try:
            with asyncio.Runner(loop_factory=event_loop_factory(server)) as runner:
                return runner.run(coroutine)
        except (PacsboxError, ValueError) as exc:
            report_failure(exc)
            return 1


def event_loop_factory(server: bool):
    """uvloop's event loop for the servers (serve, storescp, dcmqrscp), asyncio's for the
    client tools; PACSBOX_UVLOOP=1 takes uvloop for every tool, PACSBOX_UVLOOP=0 asyncio's.

    With four senders at once, `pacsbox serve` on uvloop spent ~6 % less CPU an instance and
    took ~5 % less time than on asyncio's loop (whose transports and selector are Python);
    2000 C-ECHOs from DCMTK took ~11 % less; one sender's C-STOREs gained nothing, and a
    client tool would pay ~6 ms more start-up for the import (bench/README.md, "2026-12-07
    (evening)"). None (asyncio's loop) where uvloop is not installed: it is a dependency
    only where it builds (not on Windows)."""
    import os

    choice = os.environ.get("PACSBOX_UVLOOP", "")
    if choice == "0" or (choice != "1" and not server):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _freeze_startup_objects() -> None:
    """Leave what start-up made (modules, pydicom's dictionary, SQLAlchemy's tables: a few
    hundred thousand objects that live as long as the server) out of the garbage collector's
    full collections, which otherwise walk all of them every few thousand allocations of
    the data path: ~20 us an instance indexed (Index.add on the bench CT, 2000 instances:
    134-139 us -> 114-118 us). What the server allocates from here on is collected as ever."""
    import gc

    gc.collect()
    gc.freeze()


async def serve_until_stopped(
    server, host: str, port: int, on_listening=None, *, listen=None
) -> int:
    """Listen, call ``on_listening(server)``, serve until SIGINT/SIGTERM, then close.

    ``listen(server, stop)`` replaces ``server.start(host, port)``: a worker of `pacsbox
    serve --workers` starts on its parent's socket there (pacsbox.cli.workers), and may set
    ``stop`` (an asyncio.Event) to stop as on SIGTERM.
    """
    import asyncio
    import contextlib
    import signal

    stop = asyncio.Event()
    try:
        if listen is not None:
            await listen(server, stop)
        else:
            await server.start(host, port)
    except OSError as exc:
        pblog.log.critical(
            "Cannot listen on %s:%d: %s. Is another DICOM server using that port? "
            "Pick another port.",
            host,
            port,
            exc.strerror or exc,
        )
        return 1
    if on_listening is not None:
        on_listening(server)
    _freeze_startup_objects()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    pblog.log.info("Shutting down")
    await server.close()
    return 0
