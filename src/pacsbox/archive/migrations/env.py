"""The alembic environment of the index, configured in code (see __init__.py)."""

from __future__ import annotations

from alembic import context

from pacsbox.archive.migrations import VERSION_TABLE
from pacsbox.archive.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "pacsbox's index migrations run on a connection passed in code: use "
        "pacsbox.archive.Index.open(url), or pacsbox.archive.migrations.upgrade(connection)"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
