"""Each storage area keeps its own copy of an instance, as DCMTK's dcmqrscp does.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08

The instances table allowed one row per SOP Instance UID across all storage areas: an
instance stored through a second called AE title of ``pacsbox dcmqrscp`` was moved out of the
first area (its file deleted), or with ``--on-duplicate refuse`` refused as stored already,
though that area did not hold it. The key is now (SOP Instance UID, area). ``area`` becomes
NOT NULL, "" for the default area (the rows without one), so that one unique constraint covers
every row: NULLs would be distinct in it, and the default area would lose its uniqueness. The
partial (area, received_at) index keeps the rows with an area: ``area <> ''``.

On SQLite the table is copied (a constraint cannot be dropped in place); on PostgreSQL it is
altered.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_AREA_INDEX = "ix_instances_area_received_at"


def _area_index(where: str) -> None:
    condition = sa.text(where)
    op.create_index(_AREA_INDEX, "instances", ["area", "received_at"], unique=False,
                    sqlite_where=condition, postgresql_where=condition)  # fmt: skip


def upgrade() -> None:
    op.drop_index(_AREA_INDEX, table_name="instances")  # its WHERE changes; not copied
    op.execute("UPDATE instances SET area = '' WHERE area IS NULL")
    with op.batch_alter_table("instances") as batch:
        batch.alter_column("area", existing_type=sa.String(), nullable=False, server_default="")
        batch.drop_constraint("uq_instances_sop_instance_uid", type_="unique")
        batch.create_unique_constraint(
            "uq_instances_sop_instance_uid_area", ["sop_instance_uid", "area"]
        )
    _area_index("area <> ''")


def downgrade() -> None:
    copies = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT count(*) FROM (SELECT sop_instance_uid FROM instances "
            "GROUP BY sop_instance_uid HAVING count(*) > 1) AS copies"
        )
        .scalar()
    )
    if copies:
        raise RuntimeError(
            f"{copies} instances are held in several storage areas; revision 0003 keeps one "
            "copy of each: remove the others (their areas' studies) before downgrading"
        )
    op.drop_index(_AREA_INDEX, table_name="instances")
    with op.batch_alter_table("instances") as batch:
        batch.drop_constraint("uq_instances_sop_instance_uid_area", type_="unique")
        batch.create_unique_constraint("uq_instances_sop_instance_uid", ["sop_instance_uid"])
        batch.alter_column("area", existing_type=sa.String(), nullable=True, server_default=None)
    op.execute("UPDATE instances SET area = NULL WHERE area = ''")
    _area_index("area IS NOT NULL")
