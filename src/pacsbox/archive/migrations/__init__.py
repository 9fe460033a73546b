"""The index's schema versions: alembic revisions in ``versions/``, run from code.

Users never see alembic: ``Index.open`` calls ``upgrade`` on its connection, which brings any
database (empty, or made by an older pacsbox) to the head revision. The alembic environment is
configured here, in code; no alembic.ini. For developers, a new revision is made with
``python -m pacsbox.archive.migrations revision -m "what changes" DATABASE_URL`` (autogenerate
against a database at the current head).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

# Our own name: a PostgreSQL database shared with another alembic-managed application keeps
# both histories apart.
VERSION_TABLE = "pacsbox_schema_version"
SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config made in code; env.py takes the connection from its attributes."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "pacsbox ships at least one schema revision"
    return head


def is_known(revision: str) -> bool:
    """Whether this pacsbox ships ``revision`` (an index of a newer pacsbox has one it does not)."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic: "No such revision" or a malformed name
        return False


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None for a database pacsbox has not set up."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(connection: Connection) -> None:
    """Bring the database to the head revision, inside the connection's transaction (the
    caller begins and commits it, holding whatever lock keeps other processes out)."""
    command.upgrade(alembic_config(connection), "head")
