"""The root of pacsbox's exceptions.

Every error pacsbox raises for a user derives from ``PacsboxError``. Its ``str()`` is a whole
message for a person: what happened, the likely cause, and what to change. The structured
facts (AE titles, status codes, reasons) stay available as attributes for programs.
"""

from __future__ import annotations


class PacsboxError(Exception):
    """Base class of pacsbox's errors; ``str(error)`` is the full human message."""
