"""Developer tool: ``python -m pacsbox.archive.migrations revision -m MESSAGE DATABASE_URL``
autogenerates the next revision from the difference between schema.py and a database at head."""

from __future__ import annotations

import argparse

from alembic import command
from sqlalchemy import create_engine

from pacsbox.archive.migrations import alembic_config


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pacsbox.archive.migrations")
    parser.add_argument("action", choices=["revision"])
    parser.add_argument("-m", "--message", required=True)
    parser.add_argument("--rev-id", default=None, help="e.g. 0002")
    parser.add_argument("url", help="a database at the current head revision")
    args = parser.parse_args()
    with create_engine(args.url).begin() as connection:
        command.revision(
            alembic_config(connection), message=args.message, autogenerate=True,
            rev_id=args.rev_id,
        )  # fmt: skip


if __name__ == "__main__":
    main()
