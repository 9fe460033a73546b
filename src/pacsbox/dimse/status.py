"""DIMSE status codes (PS3.7 Annex C, PS3.4 per service): code -> category, meaning, hint.

``describe(code, service)`` is one lookup chain over data tables: the service's own codes, the
general codes of PS3.7 Annex C, the service's ranges (0xA7xx, 0xA9xx, 0xCxxx ...), the general
ranges, then the category rules of PS3.7 C for codes nobody defines ("Unknown status").
"""

from __future__ import annotations

from enum import Enum, StrEnum

from pacsbox.records import record


class StatusCategory(Enum):
    SUCCESS = "Success"
    PENDING = "Pending"
    CANCEL = "Cancel"
    WARNING = "Warning"
    FAILURE = "Failure"


class Service(StrEnum):
    """The DIMSE service a status answers; the same code means different things per service."""

    VERIFICATION = "verification"  # C-ECHO, PS3.4 A
    STORAGE = "storage"  # C-STORE, PS3.4 B.2.3
    FIND = "find"  # C-FIND, PS3.4 C.4.1.1.4 (also worklist, K)
    MOVE = "move"  # C-MOVE, PS3.4 C.4.2.1.5
    GET = "get"  # C-GET, PS3.4 C.4.3.1.4
    NORMALIZED = "normalized"  # N-EVENT-REPORT/GET/SET/ACTION/CREATE/DELETE, PS3.7 10.1


@record(frozen=True)
class StatusInfo:
    code: int
    category: StatusCategory
    meaning: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"0x{self.code:04X} {self.category.value}: {self.meaning}"
        return f"{text}. {self.hint}" if self.hint else text


_S, _P, _C, _W, _F = (
    StatusCategory.SUCCESS,
    StatusCategory.PENDING,
    StatusCategory.CANCEL,
    StatusCategory.WARNING,
    StatusCategory.FAILURE,
)

Entry = tuple[StatusCategory, str, str | None]

_HINT_NO_SOP_CLASS = (
    "The peer does not support this SOP class; check its conformance statement or use a "
    "SOP class it accepts (the association's accepted presentation contexts list them)."
)
_HINT_QUERY_KEYS = (
    "The peer could not process the identifier; add QueryRetrieveLevel or the required "
    "unique keys for that level (e.g. StudyInstanceUID at STUDY level)."
)
_HINT_OUT_OF_RESOURCES = (
    "The peer is out of storage resources (disk, memory or a quota); free space on the "
    "peer or retry later."
)
_HINT_NOT_AUTHORIZED = (
    "The peer refused this calling AE title or user identity; ask its administrator to "
    "allow your AE title or pass the AE title it expects."
)

# PS3.7 Annex C: statuses common to all services (C.1 success, C.2 pending, C.3 cancel,
# C.4 warning, C.5 failure); most are the N-service codes of PS3.7 10.1.
_GENERAL: dict[int, Entry] = {
    0x0000: (_S, "Success", None),
    0xFF00: (_P, "Pending", None),
    0xFE00: (_C, "Cancel: the operation was terminated by a C-CANCEL request", None),
    0x0001: (_W, "Requested optional attributes are not supported", None),
    0x0107: (
        _W,
        "Attribute list error: some attributes were not read or set",
        "See the AttributeIdentifierList of the response for the attributes concerned.",
    ),
    0x0116: (
        _W,
        "Attribute value out of range",
        "A value was outside the range the peer accepts; it may have been coerced.",
    ),
    0x0105: (_F, "No such attribute", "Remove the attribute the peer does not know."),
    0x0106: (_F, "Invalid attribute value", "Correct the value named in OffendingElement."),
    0x0110: (_F, "Processing failure", "See the ErrorComment and ErrorID of the response."),
    0x0111: (
        _F,
        "Duplicate SOP instance",
        "An instance with this SOP Instance UID already exists on the peer; use a new UID.",
    ),
    0x0112: (
        _F,
        "No such SOP instance",
        "The peer does not know this SOP Instance UID; check the UID.",
    ),
    0x0113: (_F, "No such event type", "The peer does not know this EventTypeID."),
    0x0114: (_F, "No such argument", None),
    0x0115: (_F, "Invalid argument value", None),
    0x0117: (_F, "Invalid object instance", "The SOP Instance UID is not a valid UID."),
    0x0118: (
        _F,
        "No such SOP class",
        "The peer does not know this SOP class UID; check the UID.",
    ),
    0x0119: (
        _F,
        "Class-instance conflict",
        "The SOP instance is not an instance of the SOP class given in the request.",
    ),
    0x0120: (
        _F,
        "Missing attribute",
        "A required attribute is missing; add it (OffendingElement names it when the peer sends it).",
    ),
    0x0121: (
        _F,
        "Missing attribute value",
        "A required attribute is present but empty; give it a value.",
    ),
    0x0122: (_F, "Refused: SOP class not supported", _HINT_NO_SOP_CLASS),
    0x0123: (_F, "No such action", "The peer does not know this ActionTypeID."),
    0x0124: (_F, "Refused: not authorized", _HINT_NOT_AUTHORIZED),
    0x0210: (
        _F,
        "Duplicate invocation",
        "A Message ID was reused while its operation was still outstanding.",
    ),
    0x0211: (_F, "Unrecognized operation", "The peer does not support this DIMSE operation."),
    0x0212: (_F, "Mistyped argument", None),
    0x0213: (_F, "Resource limitation", "The peer is short of resources; retry later."),
}

# PS3.4 C.4: a missing attribute in a query or retrieve is almost always a missing key.
_QUERY_COMMON: dict[int, Entry] = {0x0120: (_F, "Missing attribute", _HINT_QUERY_KEYS)}

# PS3.4 per service. Only codes whose meaning differs from (or adds to) Annex C.
_BY_SERVICE: dict[Service, dict[int, Entry]] = {
    Service.VERIFICATION: {},  # PS3.4 A.4: Success, or the general failures
    Service.STORAGE: {  # PS3.4 B.2.3
        0xB000: (
            _W,
            "Coercion of data elements: the peer changed some values",
            "The stored instance differs from the one sent; check which elements were coerced.",
        ),
        0xB007: (
            _W,
            "Data set does not match SOP class: stored anyway",
            "The data set lacks attributes its SOP class requires; fix the data set.",
        ),
        0xB006: (
            _W,
            "Elements discarded: some elements were not stored",
            "The peer dropped elements it could not store (e.g. private tags).",
        ),
    },
    Service.FIND: {  # PS3.4 C.4.1.1.4
        **_QUERY_COMMON,
        0x0000: (_S, "Matching is complete", None),
        0xA700: (
            _F,
            "Refused: out of resources",
            "The peer cannot process the query now; retry later.",
        ),
        0xA900: (_F, "Identifier does not match SOP class", _HINT_QUERY_KEYS),
        0xFE00: (_C, "Matching terminated due to cancel request", None),
        0xFF00: (_P, "Matches are continuing: current match is supplied", None),
        0xFF01: (
            _P,
            "Matches are continuing: one or more optional keys were not supported",
            "The peer ignored some optional keys for matching or return; results may be broader.",
        ),
    },
    Service.MOVE: {  # PS3.4 C.4.2.1.5
        **_QUERY_COMMON,
        0x0000: (_S, "Sub-operations complete: no failures", None),
        0xA701: (
            _F,
            "Refused: out of resources, unable to calculate number of matches",
            "The peer cannot process the retrieve now; retry later or narrow the identifier.",
        ),
        0xA702: (
            _F,
            "Refused: out of resources, unable to perform sub-operations",
            "The peer cannot start the C-STORE sub-operations now; retry later.",
        ),
        0xA801: (
            _F,
            "Refused: move destination unknown",
            "The PACS does not know the move destination AE title; configure that AE "
            "(host, port) on the PACS or pass one it knows.",
        ),
        0xA900: (_F, "Identifier does not match SOP class", _HINT_QUERY_KEYS),
        0xB000: (
            _W,
            "Sub-operations complete: one or more failures or warnings",
            "Some instances were not stored at the destination; see the failed-suboperation "
            "count and the destination's log (often a storage SOP class it did not accept).",
        ),
        0xFE00: (_C, "Sub-operations terminated due to cancel indication", None),
        0xFF00: (_P, "Sub-operations are continuing", None),
    },
    Service.NORMALIZED: {},  # PS3.7 10.1 statuses are the Annex C ones
}
_BY_SERVICE[Service.GET] = {  # PS3.4 C.4.3.1.4: as C-MOVE without a move destination
    code: entry for code, entry in _BY_SERVICE[Service.MOVE].items() if code != 0xA801
}
_BY_SERVICE[Service.GET][0xB000] = (
    _W,
    "Sub-operations complete: one or more failures or warnings",
    "Some instances were not sent back; often the C-GET association lacks a presentation "
    "context (with SCP role) for their storage SOP class: propose it.",
)

Range = tuple[int, int, StatusCategory, str, str | None]

# Ranges, searched after the exact codes. PS3.4 B.2.3 and C.4.x.
_STORAGE_RANGES: list[Range] = [
    (0xA700, 0xA7FF, _F, "Refused: out of resources", _HINT_OUT_OF_RESOURCES),
    (
        0xA900,
        0xA9FF,
        _F,
        "Error: data set does not match SOP class",
        "The data set does not fit the SOP class it was sent as; check the SOP Class UID "
        "and the required attributes.",
    ),
    (
        0xC000,
        0xCFFF,
        _F,
        "Error: cannot understand",
        "The peer could not parse or accept the data set; check its encoding and transfer syntax.",
    ),
]
_QUERY_RANGES: list[Range] = [(0xC000, 0xCFFF, _F, "Failed: unable to process", _HINT_QUERY_KEYS)]
_RANGES_BY_SERVICE: dict[Service, list[Range]] = {
    Service.STORAGE: _STORAGE_RANGES,
    Service.FIND: _QUERY_RANGES,
    Service.MOVE: _QUERY_RANGES,
    Service.GET: _QUERY_RANGES,
}
# Without a service: what the C-services agree on.
_GENERAL_RANGES: list[Range] = [
    (0xA700, 0xA7FF, _F, "Refused: out of resources", _HINT_OUT_OF_RESOURCES),
    (0xA900, 0xA9FF, _F, "Data set or identifier does not match SOP class", None),
    (0xC000, 0xCFFF, _F, "Failed: cannot understand or unable to process", None),
]

# Codes whose meaning depends on the service, described when no service is given.
_AMBIGUOUS: dict[int, Entry] = {
    0xB000: (
        _W,
        "Coercion of data elements (C-STORE) or sub-operations complete with one or more "
        "failures or warnings (C-MOVE, C-GET)",
        None,
    ),
}


# PS3.7 C: the category a code has by its value alone, for codes no table defines.
_CATEGORY_RULES: dict[int, StatusCategory] = {
    0x0000: _S,
    0xFF00: _P,
    0xFF01: _P,
    0xFE00: _C,
    0x0001: _W,
    0x0107: _W,
    0x0116: _W,
}


def category_of(code: int) -> StatusCategory:
    """PS3.7 C: the category of any code, defined or not (0xBxxx are warnings)."""
    return _CATEGORY_RULES.get(code) or (_W if 0xB000 <= code <= 0xBFFF else _F)


def _in_ranges(code: int, ranges: list[Range]) -> Entry | None:
    for low, high, category, meaning, hint in ranges:
        if low <= code <= high:
            return category, meaning, hint
    return None


def describe(code: int, service: Service | str | None = None) -> StatusInfo:
    """What a DIMSE status means, for the given service (a ``Service`` or its value).

    >>> describe(0xA801, "move").meaning
    'Refused: move destination unknown'
    """
    svc = Service(service) if service is not None else None
    entry = (
        (_BY_SERVICE[svc].get(code) if svc else _AMBIGUOUS.get(code))
        or _GENERAL.get(code)
        or (_in_ranges(code, _RANGES_BY_SERVICE.get(svc, [])) if svc else None)
        or (_in_ranges(code, _GENERAL_RANGES) if svc is None else None)
    )
    if entry is None:
        return StatusInfo(code, category_of(code), "Unknown status")
    category, meaning, hint = entry
    return StatusInfo(code, category, meaning, hint)


# Which service a response's status belongs to, by CommandField (PS3.7 E.1).
SERVICE_BY_COMMAND_FIELD: dict[int, Service] = {
    0x8001: Service.STORAGE,
    0x8010: Service.GET,
    0x8020: Service.FIND,
    0x8021: Service.MOVE,
    0x8030: Service.VERIFICATION,
    **dict.fromkeys((0x8100, 0x8110, 0x8120, 0x8130, 0x8140, 0x8150), Service.NORMALIZED),
}
