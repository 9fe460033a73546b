"""Two B-trees fewer to write on every C-STORE: no index on instances.sop_class_uid, and the
(area, received_at) index only over rows with a storage area.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

Every indexed instance wrote five B-trees (the table and four indexes). Two served no query
of the archive's daily work:

- ``ix_instances_sop_class_uid``: a hierarchical C-FIND at IMAGE level names its study and
  series, so its instances come from ``ix_instances_series_fk`` and SOP Class UID is matched
  on those few rows; only a query by SOP Class UID across the whole archive would use it.
- ``ix_instances_area_received_at``: dcmqrscp's storage areas (quotas, the oldest study) ask
  for one area's rows, ``area = :name``; ``pacsbox serve`` stores with no area (NULL), and its
  rows need not be in that index at all. A partial index (``WHERE area IS NOT NULL``) still
  serves ``area = :name`` on SQLite and PostgreSQL.

Measured with DCMTK senders into one ``pacsbox serve`` (2000 x 40 KB, tmpfs): ~15 us of
server CPU less an instance with one sender, ~20 us with four (bench/README.md, "2026-12-07
(evening)").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_WITH_AREA = sa.text("area IS NOT NULL")


def upgrade() -> None:
    op.drop_index(op.f("ix_instances_sop_class_uid"), table_name="instances")
    op.drop_index(op.f("ix_instances_area_received_at"), table_name="instances")
    op.create_index(
        op.f("ix_instances_area_received_at"),
        "instances",
        ["area", "received_at"],
        unique=False,
        sqlite_where=_WITH_AREA,
        postgresql_where=_WITH_AREA,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_instances_area_received_at"), table_name="instances")
    op.create_index(
        op.f("ix_instances_area_received_at"), "instances", ["area", "received_at"], unique=False
    )
    op.create_index(
        op.f("ix_instances_sop_class_uid"), "instances", ["sop_class_uid"], unique=False
    )
