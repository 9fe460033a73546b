"""Each study keeps the patient's attributes as its latest instance names them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

Patient identity is (Patient ID, Issuer of Patient ID): studies without a Patient ID (many
anonymized ones) share one patients row, whose name is that of the last instance stored, and
a STUDY level query answered every such study with that one name (an outside check: four
studies of pydicom's test files, each with its own name, all answered "Test^S R"; a query
for one of their names found nothing). STUDY, SERIES and IMAGE level queries now match and
return PatientName, PatientBirthDate and PatientSex from the study's own columns, indexed
for name matching as the patients' are. An existing study takes its patient row's values;
its next instance writes its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = {  # study column <- patients column
    "patient_name": "patient_name",
    "patient_name_upper": "patient_name_upper",
    "patient_birth_date": "birth_date",
    "patient_sex": "sex",
}


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column("studies", sa.Column(name, sa.String(), server_default="", nullable=False))
    assignments = ", ".join(
        f"{name} = (SELECT p.{source} FROM patients p WHERE p.id = studies.patient_fk)"
        for name, source in _COLUMNS.items()
    )
    op.execute(f"UPDATE studies SET {assignments}")
    op.create_index(
        op.f("ix_studies_patient_name_upper"),
        "studies",
        ["patient_name_upper"],
        unique=False,
        postgresql_ops={"patient_name_upper": "text_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_studies_patient_name_upper"), table_name="studies")
    for name in _COLUMNS:  # SQLite 3.35+; not a batch copy: dropping studies cascades
        op.execute(f"ALTER TABLE studies DROP COLUMN {name}")
