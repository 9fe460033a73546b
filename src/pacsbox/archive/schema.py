"""The index's tables, in SQLAlchemy Core: one schema for SQLite and PostgreSQL.

Four levels as in the PS3.4 C.6.1 Patient Root information model: patients, studies, series,
instances. Each row holds the attributes that matching needs as columns (indexed where queries
filter on them); every instance also keeps its whole header as DICOM JSON (PS3.18 F.2) in
``instances.header``, so any other attribute can be matched and returned from there.

Counts and Modalities in Study are computed from the lower levels when asked (``Index.get_study``)
rather than maintained: maintaining them would write the study row on every C-STORE, and on
PostgreSQL that row lock would serialize every process adding to one study.

This module is the schema as the code sees it; the migrations in ``migrations/versions`` build
it (a test proves that upgrading an empty database to head gives exactly these tables).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    and_,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

# Constraint names are fixed so that later migrations can refer to them on both backends.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGSERIAL.
Id = BigInteger().with_variant(Integer(), "sqlite")

# A partial index's rows: those with a storage area. SQLite uses a partial index only for a
# query whose WHERE holds this very term (area = :name does not imply it there): queries of one
# area add IN_AN_AREA (Index.studies_of_area, archive/query.py).
IN_AN_AREA = text("area <> ''")

# The DICOM JSON header: JSONB on PostgreSQL (indexable with GIN later), JSON text on SQLite.
HeaderJSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _text(name: str, **kw) -> Column:
    """A text attribute: never NULL, "" when the header lacks it (DICOM's empty value), so that
    unique keys and equality matching need no NULL handling."""
    return Column(name, String(), nullable=False, server_default="", **kw)


patients = Table(
    "patients",
    metadata,
    Column("id", Id, primary_key=True),
    # Patient identity is (Patient ID, Issuer of Patient ID); see index.py for the rule.
    _text("patient_id"),
    _text("issuer"),
    _text("patient_name"),  # decoded with the Specific Character Set; "=" separates groups
    _text("patient_name_upper"),  # for case-insensitive matching (wildcards included)
    _text("birth_date"),  # DA as sent: YYYYMMDD sorts and range-matches as text
    _text("sex"),
    UniqueConstraint("patient_id", "issuer"),
    Index(None, "patient_name_upper", postgresql_ops={"patient_name_upper": "text_pattern_ops"}),
    Index(None, "birth_date"),
)

studies = Table(
    "studies",
    metadata,
    Column("id", Id, primary_key=True),
    Column("study_instance_uid", String(), nullable=False, unique=True),
    # RESTRICT: a patient goes only once it has no study left (Index prunes it), never taking
    # studies with it whose files nobody would delete.
    Column(
        "patient_fk", Id, ForeignKey("patients.id", ondelete="RESTRICT"), nullable=False, index=True
    ),
    _text("study_date"),
    _text("study_time"),
    _text("accession_number"),
    _text("study_id"),
    _text("description"),
    _text("referring_physician"),
    _text("referring_physician_upper"),
    # The patient as this study's latest instance names them (0003): a STUDY, SERIES or
    # IMAGE level query matches and returns these, so that studies of one patient row (no
    # Patient ID, which many anonymized studies share; a name corrected in one study) each
    # answer with their own. The patients row serves PATIENT level queries.
    _text("patient_name"),
    _text("patient_name_upper"),
    _text("patient_birth_date"),
    _text("patient_sex"),
    Index(None, "study_date"),
    Index(None, "accession_number"),
    Index(None, "study_id"),
    Index(
        None,
        "referring_physician_upper",
        postgresql_ops={"referring_physician_upper": "text_pattern_ops"},
    ),
    Index(None, "patient_name_upper", postgresql_ops={"patient_name_upper": "text_pattern_ops"}),
)

series = Table(
    "series",
    metadata,
    Column("id", Id, primary_key=True),
    Column("series_instance_uid", String(), nullable=False, unique=True),
    Column(
        "study_fk", Id, ForeignKey("studies.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    _text("modality"),
    Column("series_number", Integer(), nullable=True),
    _text("description"),
    _text("body_part"),
    _text("series_date"),
    _text("series_time"),
    Index(None, "modality"),
)

instances = Table(
    "instances",
    metadata,
    Column("id", Id, primary_key=True),
    Column("sop_instance_uid", String(), nullable=False),
    Column(
        "series_fk", Id, ForeignKey("series.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("sop_class_uid", String(), nullable=False),
    Column("instance_number", Integer(), nullable=True),
    Column("transfer_syntax", String(), nullable=False),
    Column("path", String(), nullable=False),  # relative to the storage root
    Column("size", BigInteger(), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    _text("calling_ae"),
    # The storage area (dcmqrscp's AETable AE title); "" the default one (0004). Each area
    # holds its own copy of an instance, as dcmqrscp's do: the key is (UID, area), and a
    # lookup by UID alone searches the same index.
    _text("area"),
    # Nullable from the first revision: NULL would mean "not converted yet", should the JSON
    # conversion (~4 ms for a CT header, ten times the rest of an add) move off the C-STORE
    # response path. Relaxing NOT NULL later would rebuild the table on SQLite.
    Column("header", HeaderJSON, nullable=True),
    # No index on sop_class_uid: IMAGE-level queries name their series (ix_instances_series_fk).
    # Only rows with a storage area (dcmqrscp's AETable) are in the area index: pacsbox serve
    # stores with none, and each index is a B-tree more to write on every C-STORE (0002).
    UniqueConstraint("sop_instance_uid", "area"),
    Index(None, "area", "received_at", sqlite_where=IN_AN_AREA, postgresql_where=IN_AN_AREA),
)


def in_area(area: str | None):
    """The condition on instances of storage area ``area`` (None or "": the default area),
    worded so that a query of a named area uses the partial area index."""
    same = instances.c.area == (area or "")
    return and_(same, IN_AN_AREA) if area else same
