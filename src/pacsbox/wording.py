"""Words for whoever reads a message: `pacsbox <tool>`'s flags at the command line, the
Python API's arguments in a program.

The services below the command-line tools and the API (find_scu, retrieve_scu, the
association) word the errors they raise once for both. Where a message names what to change,
it says ``say(cli, api)``: the flag (``-aem``) when the command line runs (``cli.main`` calls
``use_cli_words``), else the argument (``destination=``). A context variable, so the choice
follows the asyncio tasks and threads the command starts.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_CLI = contextvars.ContextVar("pacsbox_cli_words", default=False)

# how a program sees what a tool's -d shows
API_DEBUG = (
    "set the 'pacsbox' logger to DEBUG (logging.getLogger('pacsbox').setLevel(logging.DEBUG))"
)


def use_cli_words() -> None:
    """Messages from here on name the command line's flags."""
    _CLI.set(True)


@contextlib.contextmanager
def cli_words(cli: bool = True) -> Iterator[None]:
    """Messages inside the block name the command line's flags (or, with False, the API's)."""
    token = _CLI.set(cli)
    try:
        yield
    finally:
        _CLI.reset(token)


def say(cli: str, api: str) -> str:
    """``cli`` for the command line, ``api`` for a program."""
    return cli if _CLI.get() else api


def see_debug(what: str, *, capital: bool = False) -> str:
    """'run with -d to see <what>', or the Python way to (a sentence's start: ``capital``)."""
    text = say(f"run with -d to see {what}", f"{API_DEBUG} to see {what}")
    return text[0].upper() + text[1:] if capital else text
