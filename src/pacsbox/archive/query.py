"""C-FIND against the index: the matching rules of PS3.4 C.2.2.2 over the patient, study,
series and instance rows, and over each instance's stored header for every other attribute.

How a query runs:

1. The identifier's keys are sorted by level (PS3.4 C.6.1.1 / C.6.2.1 tables). A key of a level
   below the query level is refused (hierarchical query, PS3.4 C.4.1.2.1), naming the key and
   the level it belongs to; keys of the query level and above may match and be returned;
   any attribute the tables do not list (private ones included) is an attribute of the
   entity at the query level, answered from its stored header.
2. SQL narrows the entities with the keys that have columns (single value, UID list,
   wildcard, date range; case-insensitive Patient's Name through the upper-cased column, so
   the indexes serve it). Each candidate is then checked in Python against *every* key, with
   the same rules: the SQL only has to find a superset, and the rules live in one place
   (``matches``).
3. Each match becomes one response: the keys asked for, with the entity's values (columns,
   computed counts, or the header of its most recently received instance), plus
   QueryRetrieveLevel, RetrieveAETitle and Specific Character Set (ISO_IR 192: the index
   holds Unicode).

Choices where the standard leaves one:

- Person names match case-insensitively (PS3.4 C.2.2.2.1 allows it for PN): people type
  ``doe*`` for ``DOE^JOHN``, and Orthanc does the same; dcmqrscp is case-sensitive.
- A partial time as a range bound covers its whole unit: ``-1200`` includes 12:00:59.
- Upper-level keys other than the unique keys are matched too (strictly the standard asks
  only for the unique keys; clients send e.g. PatientName at the STUDY level of Patient Root).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import format_number_as_ds
from sqlalchemy import ColumnElement, and_, exists, func, literal, select
from sqlalchemy.engine import Connection

from ..log import log
from ..services.qr_models import LEVELS, Model
from .schema import in_area, instances, patients, series, studies

# PS3.7 C / PS3.4 C.4.1.1.4 statuses a query may end with
IDENTIFIER_DOES_NOT_MATCH = 0xA900
UNABLE_TO_PROCESS = 0xC000

PATIENT, STUDY, SERIES, IMAGE = "PATIENT", "STUDY", "SERIES", "IMAGE"
_DEPTH = {PATIENT: 0, STUDY: 1, SERIES: 2, IMAGE: 3}

SPECIFIC_CHARACTER_SET = 0x00080005
QUERY_RETRIEVE_LEVEL = 0x00080052
RETRIEVE_AE_TITLE = 0x00080054
INSTANCE_AVAILABILITY = 0x00080056
TIMEZONE_OFFSET = 0x00080201
# returned, never matched
_SPECIAL = frozenset((SPECIFIC_CHARACTER_SET, QUERY_RETRIEVE_LEVEL, RETRIEVE_AE_TITLE,
                      INSTANCE_AVAILABILITY, TIMEZONE_OFFSET))  # fmt: skip

# The level each listed attribute belongs to (PS3.4 tables C.6-1 to C.6-4 and C.6-5).
_LEVEL_OF: dict[int, str] = {}
for _level, _tags in (
    (PATIENT, (0x00100010, 0x00100020, 0x00100021, 0x00100030, 0x00100032, 0x00100040,
               0x00101000, 0x00101001, 0x00102160, 0x00104000, 0x00201200, 0x00201202,
               0x00201204)),
    (STUDY, (0x00080020, 0x00080030, 0x00080050, 0x00200010, 0x0020000D, 0x00080090,
             0x00081030, 0x00080061, 0x00080062, 0x00201206, 0x00201208, 0x00201070,
             0x00081060, 0x00081080, 0x00101010, 0x00101020, 0x00101030, 0x00102180,
             0x001021B0, 0x00081032, 0x00080063)),
    (SERIES, (0x00080060, 0x00200011, 0x0020000E, 0x0008103E, 0x00180015, 0x00080021,
              0x00080031, 0x00201209, 0x00400244, 0x00400245, 0x00400275, 0x00200060,
              0x00181030)),
    (IMAGE, (0x00080018, 0x00080016, 0x00200013)),
):  # fmt: skip
    _LEVEL_OF.update(dict.fromkeys(_tags, _level))

# In Study Root there is no patient level: its attributes belong to the study (PS3.4 C.6.2).
_UNIQUE = {PATIENT: 0x00100020, STUDY: 0x0020000D, SERIES: 0x0020000E, IMAGE: 0x00080018}


@dataclass(frozen=True, slots=True)
class _Column:
    level: str
    column: Any
    upper: Any = None  # the upper-cased twin, for case-insensitive PN


_COLUMNS: dict[int, _Column] = {
    0x00100010: _Column(PATIENT, patients.c.patient_name, patients.c.patient_name_upper),
    0x00100020: _Column(PATIENT, patients.c.patient_id),
    0x00100021: _Column(PATIENT, patients.c.issuer),
    0x00100030: _Column(PATIENT, patients.c.birth_date),
    0x00100040: _Column(PATIENT, patients.c.sex),
    0x0020000D: _Column(STUDY, studies.c.study_instance_uid),
    0x00080020: _Column(STUDY, studies.c.study_date),
    0x00080030: _Column(STUDY, studies.c.study_time),
    0x00080050: _Column(STUDY, studies.c.accession_number),
    0x00200010: _Column(STUDY, studies.c.study_id),
    0x00081030: _Column(STUDY, studies.c.description),
    0x00080090: _Column(STUDY, studies.c.referring_physician, studies.c.referring_physician_upper),
    0x0020000E: _Column(SERIES, series.c.series_instance_uid),
    0x00080060: _Column(SERIES, series.c.modality),
    0x00200011: _Column(SERIES, series.c.series_number),
    0x0008103E: _Column(SERIES, series.c.description),
    0x00180015: _Column(SERIES, series.c.body_part),
    0x00080021: _Column(SERIES, series.c.series_date),
    0x00080031: _Column(SERIES, series.c.series_time),
    0x00080018: _Column(IMAGE, instances.c.sop_instance_uid),
    0x00080016: _Column(IMAGE, instances.c.sop_class_uid),
    0x00200013: _Column(IMAGE, instances.c.instance_number),
}

# Below PATIENT level the patient's attributes are the study's own (schema.studies, 0003):
# studies that share a patients row (no Patient ID) each answer with their own.
_STUDY_COPIES: dict[int, _Column] = {
    0x00100010: _Column(STUDY, studies.c.patient_name, studies.c.patient_name_upper),
    0x00100030: _Column(STUDY, studies.c.patient_birth_date),
    0x00100040: _Column(STUDY, studies.c.patient_sex),
}

# Computed from the levels below (PS3.4 C.3.4): tag -> (level, name)
_COMPUTED = {
    0x00201200: PATIENT,  # Number of Patient Related Studies
    0x00201202: PATIENT,  # ... Series
    0x00201204: PATIENT,  # ... Instances
    0x00201206: STUDY,  # Number of Study Related Series
    0x00201208: STUDY,  # ... Instances
    0x00080061: STUDY,  # Modalities in Study
    0x00080062: STUDY,  # SOP Classes in Study
    0x00201209: SERIES,  # Number of Series Related Instances
}

_TABLE = {PATIENT: patients, STUDY: studies, SERIES: series, IMAGE: instances}
_ABOVE = {STUDY: PATIENT, SERIES: STUDY, IMAGE: SERIES}
_PARENT = {STUDY: studies.c.patient_fk, SERIES: series.c.study_fk, IMAGE: instances.c.series_fk}


class QueryError(Exception):
    """The identifier cannot be answered: ``status`` and a comment for the C-FIND-RSP."""

    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment


# QueryOptions.area (and retrieve_instances' area) for the default storage area: the instances
# indexed without one (pacsbox serve's own AE title beside its [areas]). No AE title is empty.
DEFAULT_AREA = ""


def _area_scope(area: str | None) -> ColumnElement[bool] | None:
    """The instances of storage area ``area`` (DEFAULT_AREA: of none); None: of every area."""
    return None if area is None else in_area(area)


@dataclass(frozen=True, slots=True)
class QueryOptions:
    retrieve_ae_title: str = ""
    # only instances of this storage area (dcmqrscp's AETable; DEFAULT_AREA: of none)
    area: str | None = None
    case_insensitive_pn: bool = True
    # agreed by SOP class extended negotiation (PS3.4 C.5.1.1, see find_scp):
    relational: bool = False  # keys below the query level (PS3.4 C.4.1.2.2)
    combined_datetime: bool = False  # StudyDate + StudyTime as one range (C.2.2.2.5.1)
    fuzzy_pn: bool = False  # person names: case, accents, separators ignored (C.2.2.2.1)
    # locate(area, path): the file of an index row, whose header is read when the row's
    # header document is not written yet (Index.add's header_later); None: such a row
    # matches and returns only its indexed attributes
    locate: Callable[[str | None, str], Path | None] | None = field(default=None, compare=False)


@dataclass(slots=True)
class _Key:
    tag: int
    vr: str
    level: str
    text: str  # the key's value as sent, "" for universal
    items: list[Dataset] = field(default_factory=list)  # sequence matching


def _vr(element: DataElement) -> str:
    vr = element.VR
    if vr in ("UN", None) or " or " in str(vr):
        try:
            vr = dictionary_VR(element.tag)
        except KeyError:
            vr = "UN"
    return "US" if vr == "US or SS" else "OB" if vr == "OB or OW" else str(vr)


def _key_text(element: DataElement) -> str:
    value = element.value
    if value is None or value == "" or value == b"":
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1").strip(" \x00")
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join("" if v is None else str(v) for v in value)
    return str(value).strip()


def parse_identifier(
    model: Model, identifier: Dataset, relational: bool = False
) -> tuple[str, list[_Key]]:
    """The query level and the keys; raises QueryError for what the standard refuses. Keys
    below the query level are kept (with their level) only for a relational query."""
    levels = LEVELS[model]
    if QUERY_RETRIEVE_LEVEL not in identifier:
        raise QueryError(
            IDENTIFIER_DOES_NOT_MATCH,
            f"no QueryRetrieveLevel (0008,0052); add one of {', '.join(levels)}",
        )
    level = _key_text(identifier[QUERY_RETRIEVE_LEVEL]).upper()
    if level not in levels:
        raise QueryError(
            IDENTIFIER_DOES_NOT_MATCH,
            f"QueryRetrieveLevel '{level}' is not one of {'/'.join(levels)} in this model",
        )
    keys = []
    for element in identifier:
        tag = int(element.tag)
        if tag in _SPECIAL or tag & 0xFFFF == 0 or tag >> 16 in (0x0000, 0x0002):
            continue
        if tag >> 16 & 1 and tag & 0xFF00 == 0 and tag & 0xFF >= 0x10:
            # a private creator: returned as stored, never matched (the identifier's block
            # numbers need not be the stored ones); its block's elements bring it anyway
            keys.append(_Key(tag, "LO", level, ""))
            continue
        belongs = _LEVEL_OF.get(tag, level)
        if model is Model.STUDY_ROOT and belongs == PATIENT:
            belongs = STUDY  # Study Root: patient attributes are study attributes
        if _DEPTH[belongs] > _DEPTH[level] and not relational:
            name = keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
            hint = " (ModalitiesInStudy is the STUDY-level key)" if tag == 0x00080060 else ""
            raise QueryError(
                IDENTIFIER_DOES_NOT_MATCH,
                f"{name} is a {belongs} key; not allowed at {level} level{hint}"[:64],
            )
        vr = _vr(element)
        items = list(element.value) if vr == "SQ" and element.value else []
        keys.append(_Key(tag, vr, belongs, "" if vr == "SQ" else _key_text(element), items))
    return level, keys


# -- matching ------------------------------------------------------------------------------

_WILDCARD = re.compile(r"[*?]")
# PS3.4 C.2.2.2.4: "*" and "?" are wild cards in values of these VRs only (UN too: a private
# key of implicit VR arrives as UN, and its stored value is text); "2018*" is no date.
_WILDCARD_VRS = frozenset(("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT", "UN"))


def _is_wildcard(text: str, vr: str) -> bool:
    return vr in _WILDCARD_VRS and _WILDCARD.search(text) is not None


def _normal_time(text: str, upper: bool) -> str:
    """TM as 'HHMMSS.ffffff'; a partial upper bound covers its whole unit ("12" is up to
    12:59:59.999999, "1200" up to 12:00:59.999999)."""
    whole, dot, fraction = text.replace(":", "").strip().partition(".")
    if upper:
        whole = whole + "995959"[len(whole) :] if len(whole) < 6 else whole
        fraction = fraction.ljust(6, "9") if dot or len(whole) else fraction
        return f"{whole[:6]}.{fraction.ljust(6, '9')[:6]}"
    return f"{whole.ljust(6, '0')[:6]}.{fraction.ljust(6, '0')[:6]}"


def _is_range(key: str, vr: str) -> bool:
    if vr in ("DA", "TM"):
        return "-" in key
    if vr == "DT":  # "-0500" may be a UTC offset: a range has its "-" elsewhere
        return re.fullmatch(r"\d{14}(\.\d{1,6})?-\d{4}", key) is None and "-" in key
    return False


def _normal_date(text: str) -> str:
    return text.replace(".", "").replace("-", "").strip()


def _in_range(value: str, key: str, vr: str) -> bool:
    low, _, high = key.partition("-")
    if vr == "DA":
        value = _normal_date(value)
        return (not low or value >= _normal_date(low)) and (not high or value <= _normal_date(high))
    if vr == "TM":
        value = _normal_time(value, False)
        return (not low or value >= _normal_time(low, False)) and (
            not high or value <= _normal_time(high, True)
        )
    low, high = _dt_range(key)
    stored = _normal_datetime(value, False)
    return (not low or stored >= _normal_datetime(low, False)) and (
        not high or stored <= _normal_datetime(high, True)
    )


_DT = r"\d{4,14}(?:\.\d{1,6})?(?:[+-]\d{4})?"
_DT_RANGE = re.compile(rf"(?P<low>{_DT})?-(?P<high>{_DT})?")


def _dt_range(key: str) -> tuple[str, str]:
    """The bounds of a DT range; a bound may carry its own UTC offset ("-0500")."""
    found = _DT_RANGE.fullmatch(key.strip())
    if found is None:
        low, _, high = key.partition("-")
        return low, high
    return found["low"] or "", found["high"] or ""


def _normal_datetime(text: str, upper: bool) -> str:
    """DT as 'YYYYMMDDHHMMSS.ffffff' in UTC when it carries an offset (PS3.5 6.2 DT: &ZZXX)
    and names at least the hour; a partial upper bound covers its whole unit. Values without
    an offset stay as they are (the same local time as the key's, as nothing says otherwise)."""
    found = re.fullmatch(r"(\d{4,14})(?:\.(\d{1,6}))?([+-]\d{4})?", text.strip())
    if found is None:
        return text.strip()
    digits, fraction, offset = found.groups()
    whole = digits + ("1231235959" if upper else "0101000000")[len(digits) - 4 :]
    fraction = (fraction or "").ljust(6, "9" if upper else "0")
    if offset and len(digits) >= 10:
        from datetime import datetime, timedelta

        try:
            moment = datetime.strptime(whole, "%Y%m%d%H%M%S")
        except ValueError:
            return f"{whole}.{fraction}"
        sign = 1 if offset[0] == "+" else -1
        moment -= sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        whole = moment.strftime("%Y%m%d%H%M%S")
    return f"{whole}.{fraction}"


def _pattern(key: str, fold: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in key)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if fold else 0))


def _text_matches(value: str, key: str, vr: str, fold: bool) -> bool:
    """One stored value against one key value (PS3.4 C.2.2.2.1 to C.2.2.2.5)."""
    if _is_range(key, vr):
        return _in_range(value, key, vr)
    if _is_wildcard(key, vr):
        return _pattern(key, fold).fullmatch(value) is not None
    if vr == "TM":  # the time, not its spelling (PS3.4 C.2.2.2.1): 1415 is 141500, .25 .250
        return _normal_time(value, False) == _normal_time(key, False)
    if vr == "DA":  # 2018.02.08 is 20180208 (PS3.5 6.2 DA, kept for ACR-NEMA), as in ranges
        return _normal_date(value) == _normal_date(key)
    if vr == "DT" and re.search(r"[+-]\d{4}$", key + value):  # one instant, two UTC offsets
        return _normal_datetime(value, False) == _normal_datetime(key, False)
    if vr in ("IS", "DS", "US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"):
        try:
            return float(value) == float(key)
        except ValueError:
            return value == key
    if vr == "PN":
        value, key = value.rstrip("^= "), key.rstrip("^= ")
    return value.casefold() == key.casefold() if fold else value == key


def _fuzzy(name: str) -> str:
    """A person name for fuzzy semantic matching: accents, case, and the difference between
    the component separator and a space are ignored (Müller^Jürgen ~ MULLER JURGEN)."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().replace("^", " ").split())


def value_matches(values: Sequence[str], key: _Key, fold_pn: bool, fuzzy_pn: bool = False) -> bool:
    """Whether an attribute with ``values`` (empty: absent or zero length) matches ``key``."""
    text = key.text
    if text == "" or text == "*":
        return True  # universal matching
    if text == '""':
        return not any(values)  # empty value matching (PS3.4 C.2.2.2.7)
    if fuzzy_pn and key.vr == "PN":
        wanted = _fuzzy(text)
        return any(
            _text_matches(_fuzzy(group), wanted, "LO", False)
            for v in values
            if v
            for group in v.split("=")
        )
    fold = fold_pn and key.vr == "PN"
    if key.vr == "UI" or key.tag == 0x00080061:  # a list: any one of them
        wanted = text.split("\\")
        return any(_text_matches(v, w, key.vr, fold) for v in values if v for w in wanted)
    if "\\" in text:  # several values: each matches one of the attribute's (PS3.4 C.2.2.2.8)
        return all(
            any(_text_matches(v, w, key.vr, fold) for v in values if v) for w in text.split("\\")
        )
    return any(_text_matches(v, text, key.vr, fold) for v in values if v)


# -- the header: DICOM JSON elements as text ----------------------------------------------


def _json_texts(element: dict | None) -> list[str]:
    if not element:
        return []
    values = element.get("Value") or []
    texts = []
    for value in values:
        if value is None:
            texts.append("")
        elif isinstance(value, dict):  # PN
            groups = [value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")]
            texts.append("=".join(groups).rstrip("="))
        elif isinstance(value, float) and value.is_integer():
            texts.append(str(int(value)))
        else:
            texts.append(str(value))
    return texts


def _sequence_matches(element: dict | None, key: _Key, fold_pn: bool) -> bool:
    """An item of the key matches when some stored item matches all its keys (PS3.4
    C.2.2.2.6, which makes an empty item universal matching). An item whose keys are all zero
    length, each universal by C.2.2.2.3, is taken as universal here too, as Orthanc does:
    every entity matches, those without the sequence included, and the sequence is only
    asked for (as C-FIND SCUs and worklist clients ask for the items of a sequence)."""
    if not key.items:
        return True
    items = (element or {}).get("Value") or []
    for wanted in key.items:
        sub_keys = _item_keys(wanted)
        if all(_universal(k) for k in sub_keys):
            continue
        if not any(all(_header_key_matches(item, k, fold_pn) for k in sub_keys) for item in items):
            return False
    return True


def _universal(key: _Key) -> bool:
    """A zero-length key, or a sequence key whose items hold only such keys."""
    if key.vr != "SQ":
        return key.text == ""
    return all(_universal(k) for item in key.items for k in _item_keys(item))


def _item_keys(item: Dataset) -> list[_Key]:
    """The keys of an item of a sequence key."""
    return [
        _Key(int(e.tag), _vr(e), "", "" if _vr(e) == "SQ" else _key_text(e),
             list(e.value) if _vr(e) == "SQ" and e.value else [])
        for e in item
    ]  # fmt: skip


def _header_key_matches(header: dict, key: _Key, fold_pn: bool) -> bool:
    element = header.get(f"{key.tag:08X}")
    if key.vr == "SQ":
        return _sequence_matches(element, key, fold_pn)
    return value_matches(_json_texts(element), key, fold_pn)


# -- running ---------------------------------------------------------------------------------


def _lower_condition(key: _Key, options: QueryOptions, dialect: str):
    """The exact SQL condition of a relational key below the query level (None: universal);
    raises QueryError for a key it cannot match exactly in SQL."""
    text = key.text
    if text in ("", "*") or (key.vr == "SQ" and not key.items):
        return None
    column = _COLUMNS.get(key.tag)
    name = keyword_for_tag(key.tag) or f"({key.tag >> 16:04X},{key.tag & 0xFFFF:04X})"
    # TM and DT compare as times, not text (1415 is 141500): SQL cannot do that exactly here
    if column is None or key.vr in ("SQ", "TM", "DT"):
        raise QueryError(
            IDENTIFIER_DOES_NOT_MATCH,
            f"relational key {name} below the query level is not supported; query its level",
        )
    fold = options.case_insensitive_pn and column.upper is not None and not options.fuzzy_pn
    if key.vr == "PN" and options.fuzzy_pn:
        raise QueryError(
            IDENTIFIER_DOES_NOT_MATCH, f"fuzzy {name} below the query level is not supported"
        )
    target = column.upper if fold else column.column
    value = text.upper() if fold else text
    if text == '""':
        return column.column == ""
    if key.tag in _INTEGER_COLUMNS:
        try:
            return column.column == int(text)
        except ValueError:
            raise QueryError(IDENTIFIER_DOES_NOT_MATCH, f"{name} must be a number") from None
    if key.vr == "UI" or (key.tag == 0x00080060 and "\\" in text):
        return column.column.in_([u.strip() for u in text.split("\\")])
    if key.vr == "DA" and _is_range(text, "DA"):
        low, _, high = text.partition("-")
        parts = []
        if low:
            parts.append(column.column >= _normal_date(low))
        if high:
            parts.append(column.column <= _normal_date(high))
        return and_(*parts)
    if _is_wildcard(text, key.vr):
        return _like(target, value, dialect)
    if key.vr == "DA":
        return column.column == _normal_date(text)
    if key.vr == "PN":  # trailing empty components are the same name (PS3.5 6.2)
        return func.rtrim(target, "^= ") == value.rstrip("^= ")
    return target == value


_BATCH = 500
_INTEGER_COLUMNS = frozenset((0x00200011, 0x00200013))


def _joined(level: str):
    """The FROM clause of ``level``: its table joined up to the patient."""
    if level == PATIENT:
        return patients
    joined = studies.join(patients, studies.c.patient_fk == patients.c.id)
    if level in (SERIES, IMAGE):
        joined = series.join(joined, series.c.study_fk == studies.c.id)
    if level == IMAGE:
        joined = instances.join(joined, instances.c.series_fk == series.c.id)
    return joined


def _in_area(level: str, area: str) -> ColumnElement[bool]:
    scope = _area_scope(area)
    assert scope is not None
    if level == IMAGE:
        return scope
    in_area = select(instances.c.series_fk).where(scope)
    if level == SERIES:
        return series.c.id.in_(in_area)
    in_area = select(series.c.study_fk).where(series.c.id.in_(in_area))
    if level == STUDY:
        return studies.c.id.in_(in_area)
    return patients.c.id.in_(select(studies.c.patient_fk).where(studies.c.id.in_(in_area)))


def _like(column, key: str, dialect: str) -> ColumnElement[bool]:
    if dialect == "sqlite":  # GLOB: case-sensitive, * and ?, uses the index for a prefix
        return column.op("GLOB")(key.replace("[", "[[]"))
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped.replace("*", "%").replace("?", "_"), escape="\\")


class Query:
    """One C-FIND identifier against the index: ``run(conn)`` yields the responses."""

    def __init__(self, model: Model, identifier: Dataset, options: QueryOptions) -> None:
        self.model = model
        self.level, keys = parse_identifier(model, identifier, options.relational)
        self.options = options
        depth = _DEPTH[self.level]
        self.keys = [k for k in keys if _DEPTH[k.level] <= depth]
        # relational: keys of lower levels, matched by "some entity below matches them all"
        self.lower = [k for k in keys if _DEPTH[k.level] > depth]
        for key in self.lower:
            _lower_condition(key, options, "sqlite")  # refuses what cannot be matched exactly
        self._columns = {
            tag: c for tag, c in _COLUMNS.items() if _DEPTH[c.level] <= depth
        }  # fmt: skip
        if self.level != PATIENT:
            self._columns.update(_STUDY_COPIES)
        self._computed = {
            k.tag for k in self.keys if k.tag in _COMPUTED and _COMPUTED[k.tag] == self.level
        }
        self._header_keys = [
            k for k in self.keys if k.tag not in self._columns and k.tag not in self._computed
        ]
        self._wants_availability = INSTANCE_AVAILABILITY in identifier
        self._wants_timezone = TIMEZONE_OFFSET in identifier

    # the SQL that narrows

    def _conditions(self, dialect: str) -> list[ColumnElement[bool]]:
        conditions = self._relational(dialect)
        fold = self.options.case_insensitive_pn
        for key in self.keys:
            if key.vr == "PN" and self.options.fuzzy_pn:
                continue  # matched in Python only
            text = key.text
            column = self._columns.get(key.tag)
            if key.tag == 0x00080061 and text and not _WILDCARD.search(text):
                # EXISTS, not IN (subquery): SQLite then starts from the other keys' index (a
                # date range, a name) and looks at each candidate's series, where with IN it
                # started from every series of the modality (6 ms instead of 0.06 on 1M)
                in_study = series.c.study_fk == studies.c.id
                wanted = series.c.modality.in_(text.split("\\"))
                conditions.append(exists().where(in_study, wanted))
                continue
            if column is None or text in ("", "*"):
                continue
            target = column.upper if fold and column.upper is not None else column.column
            value = text.upper() if target is column.upper else text
            if text == '""':
                conditions.append(column.column == "")
            elif key.tag in _INTEGER_COLUMNS:
                if text.strip().lstrip("-").isdigit():
                    conditions.append(column.column == int(text))
            elif key.vr == "UI":
                uids = [u.strip() for u in text.split("\\")]
                conditions.append(
                    column.column.in_(uids) if len(uids) > 1 else column.column == uids[0]
                )
            elif _is_range(text, key.vr):
                low, _, high = text.partition("-")
                if key.vr == "DA":
                    if low:
                        conditions.append(column.column >= _normal_date(low))
                    if high:
                        conditions.append(column.column <= _normal_date(high))
            elif _is_wildcard(text, key.vr):
                conditions.append(_like(target, value, dialect))
            elif key.vr == "DA":
                conditions.append(column.column == _normal_date(text))
            elif key.vr not in ("TM", "DT", "PN"):
                conditions.append(column.column == text)
            elif key.vr == "PN":  # trailing "^" / "=" do not count (_text_matches): a prefix
                conditions.append(_like(target, value.rstrip("^= ") + "*", dialect))
        if self.options.area is not None:
            conditions.append(_in_area(self.level, self.options.area))
        return conditions

    def _relational(self, dialect: str) -> list[ColumnElement[bool]]:
        """EXISTS conditions for the keys below the query level: one entity per lower level
        must match all of that level's keys, inside one entity of the level above it."""
        by_level: dict[str, list[ColumnElement[bool]]] = {}
        for key in self.lower:
            condition = _lower_condition(key, self.options, dialect)
            if condition is not None:
                by_level.setdefault(key.level, []).append(condition)
        if not by_level:
            return []
        chain = [lvl for lvl in (SERIES, IMAGE) if _DEPTH[lvl] > _DEPTH[self.level]]
        if self.level == PATIENT:
            chain.insert(0, STUDY)
        chain = chain[: max(chain.index(lvl) for lvl in by_level) + 1]
        inner: ColumnElement[bool] | None = None
        for lvl in reversed(chain):
            table, parent = _TABLE[lvl], _PARENT[lvl]
            parts = list(by_level.get(lvl, []))
            if inner is not None:
                parts.append(inner)
            inner = (
                select(literal(1)).select_from(table)
                .where(parent == _TABLE[_ABOVE[lvl]].c.id, *parts).exists()
            )  # fmt: skip
        return [inner] if inner is not None else []

    def _select(self, dialect: str):
        table = _TABLE[self.level]
        columns = [table.c.id.label("entity")]
        columns += [c.column.label(f"t{tag:08X}") for tag, c in self._columns.items()]
        if self.level == IMAGE and self._header_keys:
            columns += [instances.c.header.label("header"), instances.c.path.label("path"),
                        instances.c.area.label("area")]  # fmt: skip
        query = select(*columns).select_from(_joined(self.level))
        conditions = self._conditions(dialect)
        if conditions:
            query = query.where(and_(*conditions))
        return query.order_by(table.c.id)

    # what the levels below give

    def _computed_values(self, conn: Connection, ids: list[int]) -> dict[int, dict[int, list[str]]]:
        out: dict[int, dict[int, list[str]]] = {i: {} for i in ids}
        if not self._computed:
            return out
        area = self.options.area
        scope = _area_scope(area)
        if scope is None:
            scope = literal(True)
        if self.level == SERIES:
            rows = conn.execute(
                select(instances.c.series_fk, func.count(instances.c.id))
                .where(instances.c.series_fk.in_(ids), scope)
                .group_by(instances.c.series_fk)
            )
            for entity, count in rows:
                out[entity][0x00201209] = [str(count)]
            for entity in ids:
                out[entity].setdefault(0x00201209, ["0"])
            return out
        below = instances.join(series, instances.c.series_fk == series.c.id)
        if self.level == STUDY:
            owner = series.c.study_fk
        else:
            below = below.join(studies, series.c.study_fk == studies.c.id)
            owner = studies.c.patient_fk
        rows = conn.execute(
            select(owner, func.count(func.distinct(studies.c.id)) if self.level == PATIENT else literal(0),
                   func.count(func.distinct(series.c.id)), func.count(instances.c.id))
            .select_from(below).where(owner.in_(ids), scope).group_by(owner)
        )  # fmt: skip
        for entity, n_studies, n_series, n_instances in rows:
            values = out[entity]
            if self.level == PATIENT:
                values[0x00201200] = [str(n_studies)]
                values[0x00201202] = [str(n_series)]
                values[0x00201204] = [str(n_instances)]
            else:
                values[0x00201206] = [str(n_series)]
                values[0x00201208] = [str(n_instances)]
        if self.level == STUDY and self._computed & {0x00080061, 0x00080062}:
            for tag, column in (
                (0x00080061, series.c.modality),
                (0x00080062, instances.c.sop_class_uid),
            ):
                if tag not in self._computed:
                    continue
                # every series has an instance (the index prunes empty ones): the modalities
                # need the instances only to keep to an area
                source = series if tag == 0x00080061 and area is None else below
                rows = conn.execute(
                    select(owner, column).select_from(source)
                    .where(owner.in_(ids), scope).distinct()
                )  # fmt: skip
                for entity, value in rows:
                    if value:
                        out[entity].setdefault(tag, []).append(value)
                for entity in ids:
                    out[entity][tag] = sorted(out[entity].get(tag, []))
        for entity in ids:
            for tag in self._computed:
                out[entity].setdefault(tag, ["0"] if tag not in (0x00080061, 0x00080062) else [])
        return out

    def _headers(self, conn: Connection, ids: list[int]) -> dict[int, dict]:
        """The header of each entity's most recently indexed instance."""
        if self.level == SERIES:
            owner, below = instances.c.series_fk, instances
        elif self.level == STUDY:
            owner = series.c.study_fk
            below = instances.join(series, instances.c.series_fk == series.c.id)
        else:
            owner = studies.c.patient_fk
            below = instances.join(series, instances.c.series_fk == series.c.id).join(
                studies, series.c.study_fk == studies.c.id
            )
        scope = _area_scope(self.options.area)
        if scope is None:
            scope = literal(True)
        latest = (
            select(owner.label("entity"), func.max(instances.c.id).label("latest"))
            .select_from(below).where(owner.in_(ids), scope).group_by(owner).subquery()
        )  # fmt: skip
        rows = conn.execute(
            select(latest.c.entity, instances.c.header, instances.c.path, instances.c.area).join(
                instances, instances.c.id == latest.c.latest
            )
        )
        return {entity: self._document(header, path, area) for entity, header, path, area in rows}

    def _document(self, header: dict | None, path: str, area: str | None) -> dict:
        """A row's header document; one not written yet (NULL) made from its file."""
        if header is not None:
            return header
        from ..services.storage_scp import read_stored_header
        from .header import dumps, header_document, loads

        locate = self.options.locate
        file = locate(area or None, path) if locate is not None else None  # "": the default
        if file is None:
            return {}
        try:
            return loads(dumps(header_document(read_stored_header(file)[0])))  # as stored
        except Exception as exc:  # gone or replaced meanwhile: its indexed attributes only
            log.warning("Cannot read the header of %s for a query: %s", file, exc)
            return {}

    # the run

    def run(self, conn: Connection) -> Iterator[Dataset]:
        dialect = conn.dialect.name
        result = conn.execute(self._select(dialect))
        while True:
            rows = result.fetchmany(_BATCH)
            if not rows:
                return
            ids = [row.entity for row in rows]
            computed = self._computed_values(conn, ids)
            headers: dict[int, dict] = {}
            if self._header_keys and self.level != IMAGE:
                headers = self._headers(conn, ids)
            for row in rows:
                if self.level == IMAGE:
                    header = (
                        self._document(row.header, row.path, row.area) if self._header_keys else {}
                    )
                else:
                    header = headers.get(row.entity, {})
                mapping = row._mapping
                values = {
                    tag: [] if (v := mapping[f"t{tag:08X}"]) in (None, "") else [str(v)]
                    for tag in self._columns
                }
                values.update(computed.get(row.entity, {}))
                if self._matches(values, header):
                    yield self._response(values, header)

    def _matches(self, values: dict[int, list[str]], header: dict) -> bool:
        fold = self.options.case_insensitive_pn
        fuzzy = self.options.fuzzy_pn
        combined = self._combined()
        for key in self.keys:
            if combined and key.tag in (0x00080020, 0x00080030):
                continue  # matched together below
            if key.tag in values:
                if not value_matches(values[key.tag], key, fold, fuzzy):
                    return False
            elif not _header_key_matches(header, key, fold):
                return False
        return self._datetime_matches(values)

    def _combined(self) -> tuple[_Key, _Key] | None:
        """StudyDate and StudyTime keys to match as one date-time range: when negotiated
        (PS3.4 C.2.2.2.5.1) and both are ranges."""
        if not self.options.combined_datetime:
            return None
        date = next((k for k in self.keys if k.tag == 0x00080020), None)
        time = next((k for k in self.keys if k.tag == 0x00080030), None)
        if not date or not time or "-" not in date.text or "-" not in time.text:
            return None
        return date, time

    def _datetime_matches(self, values: dict[int, list[str]]) -> bool:
        combined = self._combined()
        if combined is None:
            return True
        date, time = combined
        stored = (values.get(0x00080020) or [""])[0] + _normal_time(
            (values.get(0x00080030) or [""])[0], False
        )
        d_low, _, d_high = date.text.partition("-")
        t_low, _, t_high = time.text.partition("-")
        low = _normal_date(d_low) + _normal_time(t_low, False) if d_low else ""
        high = _normal_date(d_high) + _normal_time(t_high, True) if d_high else ""
        return (not low or stored >= low) and (not high or stored <= high)

    def _response(self, values: dict[int, list[str]], header: dict) -> Dataset:
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.QueryRetrieveLevel = self.level
        ds.RetrieveAETitle = self.options.retrieve_ae_title
        if self._wants_availability:
            ds.InstanceAvailability = "ONLINE"
        if self._wants_timezone:
            _from_header(ds, header, TIMEZONE_OFFSET, "SH")
        unique = _UNIQUE[self.level]
        tags = [k for k in self.keys]
        if all(k.tag != unique for k in tags):
            tags.append(_Key(unique, dictionary_VR(unique), self.level, ""))
        tags += [_Key(k.tag, k.vr, k.level, "") for k in self.lower]  # returned empty
        for key in tags:
            if key.tag in values:
                ds.add(_element(key.tag, key.vr, values[key.tag]))
            else:
                _from_header(ds, header, key.tag, key.vr)
        return ds


def _element(tag: int, vr: str, values: list[str]) -> DataElement:
    if not values:
        return DataElement(tag, vr, [] if vr == "SQ" else None)
    if vr in ("IS", "DS", "US", "UL", "SS", "SL"):
        converted: list[Any] = [int(v) if vr in ("US", "UL", "SS", "SL") else v for v in values]
    else:
        converted = list(values)
    return DataElement(tag, vr, converted if len(converted) > 1 else converted[0])


def _from_header(ds: Dataset, header: dict, tag: int, vr: str) -> None:
    key = f"{tag:08X}"
    element = header.get(key)
    if element is None:
        ds.add(DataElement(tag, vr, [] if vr == "SQ" else None))
        return
    document = {key: element}
    if tag >> 16 & 1:  # a private element travels with its creator
        creator = f"{tag >> 16:04X}00{tag >> 8 & 0xFF:02X}"
        if creator in header:
            document[creator] = header[creator]
    decoded = Dataset.from_json(document, bulk_data_uri_handler=lambda *_: b"")
    _number_texts(decoded, document)
    for element_ in decoded:
        ds.add(element_)


def _number_texts(ds: Dataset, document: dict) -> None:
    """DS and IS values as the header document holds their text: pydicom's from_json makes
    numbers of them ("5.000000" would go out as "5.0"). Documents written before the index
    kept the text (and pydicom's) hold JSON Numbers: those become valid DICOM text, where
    pydicom would write 1234567890123456.0, past DS's 16 characters."""
    for key, element in document.items():
        vr, values = element.get("vr"), element.get("Value")
        if not values or vr not in ("DS", "IS", "SQ"):
            continue
        tag = int(key, 16)
        if tag not in ds:
            continue
        if vr == "SQ":
            for item, item_document in zip(ds[tag].value, values, strict=False):
                _number_texts(item, item_document)
            continue
        texts = [
            "" if v is None else _number_text(v, vr) if isinstance(v, (int, float)) else str(v)
            for v in values
        ]
        ds[tag].value = texts if len(texts) > 1 else texts[0]


def _number_text(value: float, vr: str) -> str:
    if vr == "IS" or (float(value).is_integer() and abs(value) < 1e15):
        return str(int(value))
    return format_number_as_ds(float(value))


def run_query(
    conn: Connection, model: Model, identifier: Dataset, options: QueryOptions
) -> Iterator[Dataset]:
    """The responses to ``identifier`` (see Query); raises QueryError before the first."""
    return Query(model, identifier, options).run(conn)


# -- retrieve: which instances an identifier names ---------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredInstance:
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    path: str
    area: str | None


_UNIQUE_KEYWORDS = {
    PATIENT: "PatientID",
    STUDY: "StudyInstanceUID",
    SERIES: "SeriesInstanceUID",
    IMAGE: "SOPInstanceUID",
}


def retrieve_instances(
    conn: Connection, model: Model, identifier: Dataset, area: str | None = None
) -> tuple[str, list[StoredInstance]]:
    """The query level and the instances a C-MOVE/C-GET identifier names (PS3.4 C.4.2.2.1:
    the unique key of the level, a single value or a UID list, and those of the levels above
    where given); raises QueryError when the identifier cannot name anything."""
    levels = LEVELS[model]
    level = (
        _key_text(identifier[QUERY_RETRIEVE_LEVEL]).upper()
        if QUERY_RETRIEVE_LEVEL in identifier
        else ""
    )
    if level not in levels:
        raise QueryError(
            IDENTIFIER_DOES_NOT_MATCH,
            f"QueryRetrieveLevel '{level}' is not one of {'/'.join(levels)}: add or fix it",
        )
    conditions = []
    for above in levels[: levels.index(level) + 1]:
        tag = _UNIQUE[above]
        text = _key_text(identifier[tag]) if tag in identifier else ""
        if not text or text == "*":
            if above == level:
                raise QueryError(
                    IDENTIFIER_DOES_NOT_MATCH,
                    f"a {level} retrieve needs {_UNIQUE_KEYWORDS[level]}; add it",
                )
            continue
        values = [v.strip() for v in text.split("\\") if v.strip()]
        conditions.append(_COLUMNS[tag].column.in_(values))
    if area is not None:
        conditions.append(_area_scope(area))
    rows = conn.execute(
        select(instances.c.sop_class_uid, instances.c.sop_instance_uid,
               instances.c.transfer_syntax, instances.c.path, instances.c.area)
        .select_from(_joined(IMAGE)).where(and_(*conditions)).order_by(instances.c.id)
    )  # fmt: skip
    # Of an instance that several storage areas hold (area None: every area), its most
    # recently indexed copy (the later row replaces the earlier), once
    found: dict[str, StoredInstance] = {}
    for sop_class, uid, syntax, path, row_area in rows:
        found[uid] = StoredInstance(sop_class, uid, syntax, path, row_area or None)
    return level, list(found.values())
