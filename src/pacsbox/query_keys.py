"""DCMTK's ``-k`` query keys (findscu, movescu, getscu) to a pydicom Dataset, and back.

A key is ``path[=value]`` as DCMTK 3.6.7's DcmPathProcessor reads it:

- an element is a keyword (``PatientName``), ``(gggg,eeee)`` or ``gggg,eeee``;
- a path goes into sequences with an item number: ``ReferencedStudySequence[0].StudyInstanceUID``
  or ``(0008,1110)[0].(0008,1150)``; ``[*]`` means every item present; missing items are
  created; a path may end in an item (``OtherPatientIDsSequence[0]``: an empty item);
- no ``=``, or nothing after it, is an empty (zero length, "universal") value; a backslash
  separates the values of a multi-valued element (``ModalitiesInStudy=CT\\MR``);
- keys apply in order, a later one replacing what an earlier one (or the query file) set.

Private tags, as DCMTK does: a private creator (gggg,0010-00FF) is LO; an element a
dictionary knows (pydicom's private dictionary, by the creator set in the same data set) has
its VR; any other unknown tag may be given without a value (an empty UN, DCMTK's "??") but
not with one (DCMTK: "Bad override key/path"). Beyond DCMTK, a VR may be named after a
colon to give such an element a value: ``(0009,1001):LO=ACME``.

``dataset_to_keys`` is the inverse (for round trips and for showing a query as keys);
``dataset_to_dict`` turns a data set into plain Python values keyed by keyword.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import PacsboxError

if TYPE_CHECKING:  # pydicom is imported when a key is applied, not at start-up
    from pydicom.dataset import Dataset

EXAMPLE = (
    "e.g. -k PatientName=DOE^JOHN, -k StudyDate=20140101-20141231, -k (0020,000d), "
    "-k ReferencedStudySequence[0].StudyInstanceUID=1.2.3"
)


class QueryKeyError(PacsboxError, ValueError):
    """A -k key that cannot be applied; the message names the key and shows an example."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        example = "" if "e.g." in reason else f" ({EXAMPLE})"
        super().__init__(f"Bad query key {key!r}: {reason}{example}")


ALL_ITEMS = -1  # "[*]"


@dataclass(frozen=True, slots=True)
class Step:
    """One element of a path; ``item`` is the item number after it (ALL_ITEMS for [*])."""

    tag: int
    item: int | None = None


@dataclass(frozen=True, slots=True)
class QueryKey:
    text: str
    steps: tuple[Step, ...]
    vr: str | None = None  # named after a colon (our extension)
    value: str | None = None  # None: no "=" given


_TAG_FORMS = (
    re.compile(r"^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)$"),
    re.compile(r"^([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})$"),
)
_STEP = re.compile(r"^(?P<element>[^\[\]:]+)(?::(?P<vr>[A-Za-z]{2}))?(?:\[(?P<item>\d+|\*)\])?$")

# Text VRs: the value is the string as given (PS3.5 6.2). Single-valued ones keep backslashes.
TEXT_VRS = frozenset(
    ["AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"]
)  # fmt: skip
SINGLE_VALUED_TEXT = frozenset(("LT", "ST", "UT", "UR"))
INT_VRS = frozenset(("US", "SS", "UL", "SL", "UV", "SV"))
FLOAT_VRS = frozenset(("FL", "FD"))
BYTE_VRS = {"OB": 1, "UN": 1, "OW": 2}  # hex values, DCMTK's notation ("00\01" / "0001\0002")
ALL_VRS = TEXT_VRS | INT_VRS | FLOAT_VRS | set(BYTE_VRS) | {"AT", "SQ", "OD", "OF", "OL", "OV"}


def parse_key(text: str) -> QueryKey:
    """One ``-k`` argument as a QueryKey (its path resolved to tags); QueryKeyError if bad."""
    path, eq, value = text.partition("=")
    path = path.strip()
    if not path:
        raise QueryKeyError(text, "no attribute before '='")
    steps: list[Step] = []
    vr = None
    parts = path.split(".")
    for n, part in enumerate(parts):
        match = _STEP.match(part.strip())
        if match is None:
            raise QueryKeyError(text, f"cannot read {part!r} as an attribute with an item number")
        last = n == len(parts) - 1
        if match["vr"]:
            if not last:
                raise QueryKeyError(text, "a VR (':LO') may only follow the last attribute")
            vr = match["vr"].upper()
            if vr not in ALL_VRS:
                raise QueryKeyError(text, f"{match['vr']!r} is not a DICOM VR")
        item = match["item"]
        index = None if item is None else ALL_ITEMS if item == "*" else int(item)
        if not last and index is None:
            raise QueryKeyError(
                text,
                f"{part!r} is followed by '.', so it must be a sequence with an item number "
                f"such as {part}[0]",
            )
        steps.append(Step(_tag_of(text, match["element"].strip()), index))
    if steps[-1].item is not None and eq and value:
        raise QueryKeyError(text, "a path that ends in an item cannot take a value")
    return QueryKey(text, tuple(steps), vr, value if eq else None)


def _tag_of(key: str, element: str) -> int:
    for form in _TAG_FORMS:
        match = form.match(element)
        if match:
            tag = int(match[1], 16) << 16 | int(match[2], 16)
            if tag >> 16 in (0x0000, 0x0002):
                raise QueryKeyError(
                    key,
                    f"{element} belongs to the command set or the file meta information, "
                    "not to an identifier",
                )
            return tag
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(element)
    if tag is None:
        raise QueryKeyError(key, f"{element!r} is not a DICOM keyword{_did_you_mean(element)}")
    return tag


def _did_you_mean(word: str) -> str:
    import difflib

    from pydicom.datadict import keyword_dict

    close = difflib.get_close_matches(word, keyword_dict, n=3, cutoff=0.75)
    lowered = [k for k in keyword_dict if k.lower() == word.lower()]
    close = lowered + [c for c in close if c not in lowered]
    return f"; did you mean {' or '.join(close[:3])}?" if close else ""


# -- applying keys -----------------------------------------------------------------------------


def apply_keys(ds: Dataset, keys: Iterable[str | QueryKey]) -> Dataset:
    """Apply ``keys`` in order to ``ds`` (changed in place and returned).

    A value that is not plain ASCII in a data set without Specific Character Set adds
    ``ISO_IR 192`` (UTF-8): DCMTK sends such bytes without saying their encoding, which the
    peer then reads as ASCII/Latin-1.
    """
    for key in keys:
        apply_key(ds, parse_key(key) if isinstance(key, str) else key)
    if "SpecificCharacterSet" not in ds and _has_non_ascii(ds):
        ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


def build_identifier(keys: Iterable[str | QueryKey], base: Dataset | None = None) -> Dataset:
    """A query identifier: ``base`` (e.g. read from a query file) with ``keys`` on top."""
    from pydicom.dataset import Dataset

    return apply_keys(base if base is not None else Dataset(), keys)


def apply_key(ds: Dataset, key: QueryKey) -> None:
    *inner, last = key.steps
    targets = [ds]
    for step in inner:
        targets = [item for target in targets for item in _items(target, step, key)]
    for target in targets:
        if last.item is not None:
            _items(target, last, key)  # creates the item(s) asked for
        else:
            _set_element(target, last.tag, key)


def _items(ds: Dataset, step: Step, key: QueryKey) -> list[Dataset]:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    elem = ds.get(step.tag)
    if elem is None:
        vr = key.vr if step is key.steps[-1] and key.vr else _vr_for(step.tag, ds) or "SQ"
        if vr != "SQ":
            raise QueryKeyError(key.text, f"{_name(step.tag)} is {vr}, not a sequence")
        ds.add_new(step.tag, "SQ", Sequence())
        elem = ds[step.tag]
    elif elem.VR != "SQ":
        raise QueryKeyError(key.text, f"{_name(step.tag)} is {elem.VR}, not a sequence")
    items = elem.value
    if step.item == ALL_ITEMS:
        if not items:
            raise QueryKeyError(key.text, f"[*] needs items, and {_name(step.tag)} has none")
        return list(items)
    while len(items) <= step.item:  # type: ignore[operator]
        items.append(Dataset())
    return [items[step.item]]


def _set_element(ds: Dataset, tag: int, key: QueryKey) -> None:
    from pydicom.sequence import Sequence

    vr = key.vr or _vr_for(tag, ds)
    value = key.value or ""
    if vr is None:
        if value:
            raise QueryKeyError(
                key.text,
                f"{_name(tag)} is in no dictionary, so its VR is unknown and a value cannot be "
                f"encoded (DCMTK's findscu refuses it too). Name the VR after a colon, "
                f"e.g. -k '({tag >> 16:04x},{tag & 0xFFFF:04x}):LO={value}'",
            )
        vr = "UN"  # DCMTK's "??": an empty element of unknown VR, sent as UN
    if vr == "SQ":
        if value:
            raise QueryKeyError(
                key.text,
                f"{_name(tag)} is a sequence; give values to its items' attributes, "
                f"e.g. {_name(tag)}[0].StudyInstanceUID=1.2.3",
            )
        if tag not in ds or ds[tag].VR != "SQ":
            ds.add_new(tag, "SQ", Sequence())
        return  # an existing sequence keeps its items (a later key about an item adds to it)
    try:
        ds.add_new(tag, vr, _convert(value, vr))
    except (ValueError, TypeError, OverflowError) as exc:
        raise QueryKeyError(key.text, f"{value!r} is not a valid {vr} value: {exc}") from None


def _convert(value: str, vr: str):
    if not value:
        return "" if vr in TEXT_VRS else None
    if vr in TEXT_VRS:
        return value  # pydicom splits multi-valued ones at the backslash
    parts = value.split("\\")
    if vr in INT_VRS:
        numbers = [int(p, 0) for p in parts]
        return numbers[0] if len(numbers) == 1 else numbers
    if vr in FLOAT_VRS:
        floats = [float(p) for p in parts]
        return floats[0] if len(floats) == 1 else floats
    if vr == "AT":
        tags = [_parse_at(p) for p in parts]
        return tags[0] if len(tags) == 1 else tags
    if vr in BYTE_VRS:
        width = BYTE_VRS[vr]
        return b"".join(int(p, 16).to_bytes(width, "little") for p in parts)
    raise ValueError(f"values of VR {vr} cannot be given as text")


def _parse_at(text: str) -> int:
    for form in _TAG_FORMS:
        match = form.match(text.strip())
        if match:
            return int(match[1], 16) << 16 | int(match[2], 16)
    if re.fullmatch(r"[0-9A-Fa-f]{8}", text.strip()):
        return int(text, 16)
    raise ValueError("an AT value is a tag such as (0010,0010)")


def _vr_for(tag: int, ds: Dataset) -> str | None:
    """The VR a dictionary gives ``tag`` (private ones by their creator in ``ds``), else None."""
    from pydicom.datadict import dictionary_VR, private_dictionary_VR

    group, element = tag >> 16, tag & 0xFFFF
    if group % 2:
        if 0x0010 <= element <= 0x00FF:
            return "LO"  # PS3.5 7.8.1 Private Creator
        creator = ds.get(group << 16 | element >> 8)
        if creator is not None and creator.value:
            try:
                return _first_vr(private_dictionary_VR(tag, str(creator.value)))
            except KeyError:
                return None
        return None
    try:
        return _first_vr(dictionary_VR(tag))
    except KeyError:
        return None


def _first_vr(vr: str) -> str:
    # "US or SS", "OB or OW": the first, as DCMTK's dictionary entries list it
    return vr.split(" or ")[0].strip()


def _name(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"({tag >> 16:04x},{tag & 0xFFFF:04x})"


def _has_non_ascii(ds: Dataset) -> bool:
    for elem in ds:
        if elem.VR == "SQ":
            if any(_has_non_ascii(item) for item in elem.value):
                return True
        elif elem.VR in TEXT_VRS and not elem.is_empty:
            values = elem.value if elem.VM > 1 else [elem.value]
            if any(not str(v).isascii() for v in values):
                return True
    return False


# -- back to keys and to plain values ----------------------------------------------------------


def dataset_to_keys(ds: Dataset, prefix: str = "") -> list[str]:
    """The ``-k`` keys that rebuild ``ds`` (a VR is named where a dictionary would not give it)."""
    keys: list[str] = []
    for elem in ds:
        name = _name(elem.tag)
        if elem.VR == "SQ":
            items = elem.value
            if not items:
                keys.append(prefix + name)
            for n, item in enumerate(items):
                inner = dataset_to_keys(item, f"{prefix}{name}[{n}].")
                keys.extend(inner or [f"{prefix}{name}[{n}]"])
            continue
        inferred = _vr_for(elem.tag, ds)
        implied = inferred == elem.VR or (inferred is None and elem.VR == "UN" and elem.is_empty)
        vr = "" if implied else f":{elem.VR}"
        keys.append(f"{prefix}{name}{vr}={value_text(elem)}")
    return keys


def value_text(elem) -> str:
    """An element's value as DCMTK's key syntax writes it (values joined by backslashes)."""
    if elem.is_empty:
        return ""
    if elem.VR in BYTE_VRS:
        width = BYTE_VRS[elem.VR]
        raw = bytes(elem.value)
        return "\\".join(
            f"{int.from_bytes(raw[i : i + width], 'little'):0{width * 2}x}"
            for i in range(0, len(raw), width)
        )
    values = list(elem.value) if elem.VM > 1 else [elem.value]
    if elem.VR == "AT":
        return "\\".join(f"({int(v) >> 16:04x},{int(v) & 0xFFFF:04x})" for v in values)
    if elem.VR in FLOAT_VRS:
        return "\\".join(repr(float(v)) for v in values)
    return "\\".join(str(v) for v in values)


def dataset_to_dict(ds: Dataset) -> dict[str, object]:
    """``ds`` as plain values keyed by keyword (``"00091001"`` for tags without one).

    A value is a string (empty for zero length), a list of strings when multi-valued, and
    a sequence a list of such dicts. Text is already decoded with the data set's Specific
    Character Set; person names are their DICOM string (``"DOE^JOHN"``).
    """
    from pydicom.datadict import keyword_for_tag

    out: dict[str, object] = {}
    for elem in ds:
        key = keyword_for_tag(elem.tag) or f"{elem.tag:08X}"
        if elem.VR == "SQ":
            out[key] = [dataset_to_dict(item) for item in elem.value]
        elif elem.is_empty:
            out[key] = ""
        elif elem.VR in BYTE_VRS:
            out[key] = value_text(elem)
        elif elem.VR in ("OD", "OF", "OL", "OV"):
            out[key] = bytes(elem.value).hex()
        elif elem.VR == "AT":
            tags = value_text(elem).split("\\")
            out[key] = tags if len(tags) > 1 else tags[0]
        elif elem.VM > 1:
            out[key] = [str(v) for v in elem.value]
        else:
            out[key] = str(elem.value)
    return out
