"""The PACS archive. So far its index: patients, studies, series and instances on SQLite or
PostgreSQL, with each instance's header as DICOM JSON (``Index``)."""

from .header import HeaderError
from .index import (
    ANY_AREA,
    DEFAULT_URL,
    AddOutcome,
    AddResult,
    ArchiveIndexError,
    AreaStudy,
    AreaUsage,
    Index,
    IndexStats,
    InstanceLocation,
    InstanceRecord,
    NewInstance,
    OnDuplicate,
    StudyRecord,
)

__all__ = [
    "ANY_AREA",
    "DEFAULT_URL",
    "AddOutcome",
    "AddResult",
    "ArchiveIndexError",
    "AreaStudy",
    "AreaUsage",
    "HeaderError",
    "Index",
    "IndexStats",
    "InstanceLocation",
    "InstanceRecord",
    "NewInstance",
    "OnDuplicate",
    "StudyRecord",
]
