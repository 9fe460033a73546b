"""Scenario modules; each registers its scenarios on import (add new modules here)."""

from .. import servers  # noqa: F401  (registers the shared server fixtures)
from . import archive, concurrent, echo, find, memory, retrieve, storage  # noqa: F401
