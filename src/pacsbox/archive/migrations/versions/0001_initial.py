"""The first schema: patients, studies, series, instances.

Revision ID: 0001
Revises:
Create Date: 2026-01-10

Written out in full (not imported from schema.py): a revision is the schema as it was when it
was made, whatever schema.py becomes later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("patient_id", sa.String(), server_default="", nullable=False),
        sa.Column("issuer", sa.String(), server_default="", nullable=False),
        sa.Column("patient_name", sa.String(), server_default="", nullable=False),
        sa.Column("patient_name_upper", sa.String(), server_default="", nullable=False),
        sa.Column("birth_date", sa.String(), server_default="", nullable=False),
        sa.Column("sex", sa.String(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("patient_id", "issuer", name=op.f("uq_patients_patient_id_issuer")),
    )
    op.create_index(op.f("ix_patients_birth_date"), "patients", ["birth_date"], unique=False)
    op.create_index(
        op.f("ix_patients_patient_name_upper"),
        "patients",
        ["patient_name_upper"],
        unique=False,
        postgresql_ops={"patient_name_upper": "text_pattern_ops"},
    )

    op.create_table(
        "studies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("study_instance_uid", sa.String(), nullable=False),
        sa.Column(
            "patient_fk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("study_date", sa.String(), server_default="", nullable=False),
        sa.Column("study_time", sa.String(), server_default="", nullable=False),
        sa.Column("accession_number", sa.String(), server_default="", nullable=False),
        sa.Column("study_id", sa.String(), server_default="", nullable=False),
        sa.Column("description", sa.String(), server_default="", nullable=False),
        sa.Column("referring_physician", sa.String(), server_default="", nullable=False),
        sa.Column("referring_physician_upper", sa.String(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_fk"], ["patients.id"], name=op.f("fk_studies_patient_fk"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studies")),
        sa.UniqueConstraint("study_instance_uid", name=op.f("uq_studies_study_instance_uid")),
    )
    op.create_index(
        op.f("ix_studies_accession_number"), "studies", ["accession_number"], unique=False
    )
    op.create_index(op.f("ix_studies_patient_fk"), "studies", ["patient_fk"], unique=False)
    op.create_index(
        op.f("ix_studies_referring_physician_upper"),
        "studies",
        ["referring_physician_upper"],
        unique=False,
        postgresql_ops={"referring_physician_upper": "text_pattern_ops"},
    )
    op.create_index(op.f("ix_studies_study_date"), "studies", ["study_date"], unique=False)
    op.create_index(op.f("ix_studies_study_id"), "studies", ["study_id"], unique=False)

    op.create_table(
        "series",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("series_instance_uid", sa.String(), nullable=False),
        sa.Column("study_fk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("modality", sa.String(), server_default="", nullable=False),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(), server_default="", nullable=False),
        sa.Column("body_part", sa.String(), server_default="", nullable=False),
        sa.Column("series_date", sa.String(), server_default="", nullable=False),
        sa.Column("series_time", sa.String(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["study_fk"], ["studies.id"], name=op.f("fk_series_study_fk"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series")),
        sa.UniqueConstraint("series_instance_uid", name=op.f("uq_series_series_instance_uid")),
    )
    op.create_index(op.f("ix_series_modality"), "series", ["modality"], unique=False)
    op.create_index(op.f("ix_series_study_fk"), "series", ["study_fk"], unique=False)

    op.create_table(
        "instances",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sop_instance_uid", sa.String(), nullable=False),
        sa.Column(
            "series_fk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("sop_class_uid", sa.String(), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("transfer_syntax", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("calling_ae", sa.String(), server_default="", nullable=False),
        sa.Column("area", sa.String(), nullable=True),
        sa.Column(
            "header",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["series_fk"], ["series.id"], name=op.f("fk_instances_series_fk"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
        sa.UniqueConstraint("sop_instance_uid", name=op.f("uq_instances_sop_instance_uid")),
    )
    op.create_index(
        op.f("ix_instances_area_received_at"), "instances", ["area", "received_at"], unique=False
    )
    op.create_index(op.f("ix_instances_series_fk"), "instances", ["series_fk"], unique=False)
    op.create_index(
        op.f("ix_instances_sop_class_uid"), "instances", ["sop_class_uid"], unique=False
    )


def downgrade() -> None:
    for table in ("instances", "series", "studies", "patients"):
        op.drop_table(table)  # their indexes go with them
