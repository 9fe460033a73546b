"""`pacsbox <tool> ...`: one entry point, one module per tool, DCMTK's names and flags."""

from __future__ import annotations

import importlib
import sys

from ..wording import use_cli_words

# tool name -> module in pacsbox.cli that has main(argv) -> int
TOOLS = {
    "echoscu": ("echoscu", "DICOM verification (C-ECHO) SCU"),
    "storescu": ("storescu", "DICOM storage (C-STORE) SCU"),
    "storescp": ("storescp", "DICOM storage (C-STORE) SCP"),
    "findscu": ("findscu", "DICOM query (C-FIND) SCU"),
    "movescu": ("movescu", "DICOM retrieve (C-MOVE) SCU, with its own storage SCP on +P"),
    "getscu": ("getscu", "DICOM retrieve (C-GET) SCU"),
    "dcmqrscp": ("dcmqrscp", "archive with DCMTK's dcmqrscp.cfg (echo, store, find, move, get)"),
    "stgcmtscu": ("stgcmtscu", "DICOM storage commitment (N-ACTION) SCU"),
    "probe": ("probe", "which storage SOP classes and transfer syntaxes a peer accepts"),
    "serve": ("serve", "run the pacsbox archive (echo, store, find, move, get)"),
    "check": ("check", "check the archive's index against its files; --repair fixes it"),
}

USAGE = "usage: pacsbox <tool> [options] ...\n\ntools:\n" + "\n".join(
    f"  {name:<10} {summary}" for name, (_, summary) in TOOLS.items()
)


def _import_asyncio_without_ssl() -> None:
    """Import asyncio as if ssl were missing: asyncio loads ssl and OpenSSL for TLS
    transports, ~5-10 ms of every tool's start (DCMTK's tools start in ~7 ms in all), and
    pacsbox opens no TLS transport. Only asyncio's own TLS support is left out; ``import
    ssl`` afterwards works as ever. The library API (``import pacsbox``) does not do this:
    an application's asyncio stays whole."""
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # import ssl raises ImportError
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "--version":
        from ..uids import IMPLEMENTATION_VERSION_NAME

        print(f"pacsbox {IMPLEMENTATION_VERSION_NAME}")
        return 0
    entry = TOOLS.get(argv[0])
    if entry is None:
        print(f"pacsbox: unknown tool '{argv[0]}'\n\n{USAGE}", file=sys.stderr)
        return 2
    _import_asyncio_without_ssl()
    use_cli_words()
    module = importlib.import_module(f"pacsbox.cli.{entry[0]}")
    try:
        return module.main(argv[1:])
    except KeyboardInterrupt:
        return 130


# Tools that end when their work is done: their process may skip the interpreter's teardown.
_ONE_SHOT = frozenset(("echoscu", "storescu", "findscu", "movescu", "getscu", "stgcmtscu", "probe"))


def run() -> None:
    """The ``pacsbox`` command: ``main``, then the process's exit. A one-shot tool that has
    finished exits at once after flushing its output and logs, without the interpreter's
    teardown (collecting every object and module: 10-15 ms of a one-file storescu's ~100;
    DCMTK's tools have none). Servers, and any run that ends in an exception, exit the
    usual way."""
    code = main()
    if len(sys.argv) > 1 and sys.argv[1] in _ONE_SHOT:
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> None:
    import logging
    import os

    try:
        logging.shutdown()  # flushes and closes the handlers, as atexit would
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: let the usual exit report it
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    run()
