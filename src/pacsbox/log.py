"""Logging that reads like DCMTK's: one letter for the level, a colon, the message."""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "pacsbox"
log = logging.getLogger(LOGGER_NAME)

# DCMTK's level letters (oflog): F fatal, E error, W warning, I info, D debug, T trace.
TRACE = 5
logging.addLevelName(TRACE, "TRACE")
_LETTERS = {
    logging.CRITICAL: "F",
    logging.ERROR: "E",
    logging.WARNING: "W",
    logging.INFO: "I",
    logging.DEBUG: "D",
    TRACE: "T",
}
LEVELS = {
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}


class DcmtkFormatter(logging.Formatter):
    """``I: message``; with a ``tag`` (a worker process's, see tag_lines) ``I: [tag] message``."""

    tag = ""

    def format(self, record: logging.LogRecord) -> str:
        letter = _LETTERS.get(record.levelno, "?")
        lead = f"{letter}: [{self.tag}] " if self.tag else f"{letter}: "
        return "\n".join(lead + line for line in record.getMessage().split("\n"))


def configure(level: int, stream=None) -> None:
    """Send pacsbox's log to ``stream`` (stderr) in DCMTK's format at ``level``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(DcmtkFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def tag_lines(tag: str) -> None:
    """Start every line of pacsbox's log with ``[tag]`` (after the level letter): which of
    several worker processes writing to one stderr said it."""
    DcmtkFormatter.tag = tag
