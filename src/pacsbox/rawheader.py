"""A received data set's header read straight from its bytes: the elements up to Pixel Data,
their values decoded only when asked, and the whole header in the DICOM JSON model (PS3.18
F.2) without building pydicom elements.

Every C-STORE to the archive needs three things from the header: the SOP Class/Instance UIDs
(to check them against the command), the indexed attributes, and the header as DICOM JSON.
Through pydicom (``read_dataset`` then ``Dataset.to_json_dict``) that costs ~2 ms for a CT
header, most of it in element objects, value validation and ``Tag`` comparisons; walking the
bytes with ``struct`` and converting each value once costs a tenth of that.

The fast path covers little endian data sets (explicit or implicit VR) whose text is in a
character set without ISO 2022 code extensions. Anything else — big endian, ISO 2022 escapes,
an ambiguous VR that the data set does not resolve, an element received as UN that the
dictionary knows, bytes that do not parse — raises ``Unsupported``, and the caller uses
pydicom, which also phrases the error when the data set is really malformed. The output
equals pydicom's ``to_json_dict`` (a differential test runs both on pydicom's test files),
except that values pydicom's strict validation would drop (e.g. a lower-case CS) are kept,
and that DS and IS values are JSON Strings holding the text received, where pydicom writes
JSON Numbers (PS3.18 allows either since CP-1861; the string keeps "5.000000" and "+0001").
"""

from __future__ import annotations

import base64
import struct
from functools import lru_cache
from typing import Any

# Binary values longer than this (base64 characters) become a BulkDataURI placeholder in the
# JSON header instead of InlineBinary: the bytes stay in the file.
BULK_DATA_THRESHOLD = 1024
_INLINE_MAX = (BULK_DATA_THRESHOLD // 4) * 3  # pydicom's rule: base64 grows by 4/3

PIXEL_DATA = 0x7FE00010
_PIXEL_DATA_TAGS = (0x7FE00008, 0x7FE00009, PIXEL_DATA)
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF

_LONG_VRS = frozenset(
    ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV")
)
_VRS = frozenset(
    (
        *_LONG_VRS,
        *("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN"),
        *("SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"),
    )
)
_VR_NAMES = {vr.encode("ascii"): vr for vr in _VRS}
# An element header in one unpack: group, element, then the VR and 16-bit length (explicit)
# or the 32-bit length (implicit); a long VR's 32-bit length is read after
_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_IMPLICIT_HEADER = struct.Struct("<HHI")
_BINARY_VRS = frozenset(("OB", "OD", "OF", "OL", "OV", "OW", "UN"))
_NUMBERS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_SIZES = {vr: struct.calcsize(code) for vr, code in _NUMBERS.items()}
# Text decoded as ASCII-compatible default repertoire whatever the character set
# (PS3.5 6.1.2.3), split into values at backslashes.
_STRING_VRS = frozenset(("AE", "AS", "CS", "DA", "DT", "TM", "UI"))
_CHARSET_VRS = frozenset(("LO", "SH", "UC", "PN", "LT", "ST", "UT"))
_SINGLE_VALUED = frozenset(("LT", "ST", "UT", "UR"))
_PLAIN_TEXT_VRS = frozenset(("DS", "IS", "UR"))  # text() decodes these as ISO 8859-1 too

# Character sets (0008,0005 single value) that decode without code extensions.
_ENCODINGS = {
    "": "latin-1",  # pydicom's default repertoire: ASCII, other bytes kept as latin-1
    "ISO_IR 6": "latin-1",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 144": "iso_ir_144",
    "ISO_IR 127": "iso_ir_127",
    "ISO_IR 126": "iso_ir_126",
    "ISO_IR 138": "iso_ir_138",
    "ISO_IR 148": "latin_5",
    "ISO_IR 203": "latin_9",
    "ISO_IR 166": "iso_ir_166",
    "ISO_IR 192": "UTF8",
}


class Unsupported(Exception):
    """The fast path does not handle this data set: use pydicom."""


class Malformed(Unsupported):
    """The bytes walked do not form a data set (an element or item runs past the end, an
    element header is cut short): where they are the whole data set, it is damaged (pydicom
    may read such bytes without a word, a value short); where they are only its start,
    the walk went past what was there."""


class RawHeader:
    """The top-level elements of a little endian data set up to Pixel Data.

    ``elements`` maps each tag to (VR or None when implicit, value offset, value length);
    ``pixel_data_at`` is the offset of the Pixel Data element (or of the first element after
    it), None when the data set has none.
    """

    __slots__ = (
        "_ds",
        "_encoding",
        "_head",
        "buffer",
        "elements",
        "end",
        "implicit",
        "pixel_data_at",
    )

    def __init__(self, buffer, implicit: bool) -> None:
        self.buffer = memoryview(buffer).toreadonly()
        self.implicit = implicit
        self.elements, self.end = _walk(self.buffer, 0, len(self.buffer), implicit, _TOP)
        self.pixel_data_at = self.end if self.end < len(self.buffer) else None
        self._encoding: str | None = None
        self._ds = None
        self._head: bytes | None = None

    @property
    def head(self) -> bytes:
        """The bytes up to where the walk stopped (Pixel Data), copied once: values are
        sliced from bytes in one step, not through a view and a copy each."""
        if self._head is None:
            self._head = self.buffer[: self.end].tobytes()
        return self._head

    def __contains__(self, tag: int) -> bool:
        return tag in self.elements

    def raw(self, tag: int) -> bytes | None:
        found = self.elements.get(tag)
        if found is None:
            return None
        _, start, length = found
        return bytes(self.buffer[start : start + length])

    @property
    def encoding(self) -> str:
        if self._encoding is None:
            self._encoding = _encoding_of(self.raw(0x00080005))
        return self._encoding

    def text(self, tag: int) -> str:
        """The value as one string ("" if absent), values joined by backslashes, padding
        stripped, NUL characters dropped. Raises Unsupported when the VR is not text."""
        return self.texts((tag,))[0]

    def texts(self, tags) -> list[str]:
        """``text`` of each tag, in one loop (the index reads ~20 of them an instance)."""
        out: list[str] = []
        get, head = self.elements.get, self.head
        for tag in tags:
            found = get(tag)
            if found is None:
                out.append("")
                continue
            vr, start, length = found
            vr = vr or _implicit_vr(tag)
            raw = head[start : start + length]
            if vr in _STRING_VRS or vr in _PLAIN_TEXT_VRS:
                out.append(raw.decode("latin-1").replace("\x00", "").strip())
            elif vr in _CHARSET_VRS:
                try:
                    out.append(raw.decode(self.encoding).replace("\x00", "").strip())
                except UnicodeDecodeError as exc:
                    raise Unsupported(str(exc)) from None
            else:
                raise Unsupported(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) has VR {vr}, not text")
        return out

    def to_json(self) -> dict[str, Any]:
        """The header in the DICOM JSON model, Pixel Data left out."""
        encoder = _Encoder(self.buffer, self.implicit, self.encoding, self.head)
        return encoder.dataset(self.elements, True)

    def to_json_text(self) -> bytes:
        """``to_json()`` as orjson writes it (UTF-8 JSON, no spaces), without building it."""
        encoder = _Encoder(self.buffer, self.implicit, self.encoding, self.head)
        try:
            return encoder.text_of(self.elements)
        except TypeError as exc:  # orjson: an integer beyond 64 bits
            raise Unsupported(str(exc)) from None

    def dataset(self):
        """The same elements read by pydicom (raw, converted when accessed): the fallback
        for what the fast path does not handle."""
        if self._ds is None:
            from io import BytesIO

            from pydicom.filereader import read_dataset

            fp = BytesIO(self.buffer[: self.end])
            self._ds = read_dataset(fp, self.implicit, True)
        return self._ds


_TOP, _DELIMITED, _DEFINED = 0, 1, 2  # what a walk reads: the data set, or an item


def _walk(buf: memoryview, pos: int, end: int, implicit: bool, mode: int):
    """The elements from ``pos`` to ``end`` (or to an item delimiter): {tag: (vr, start,
    length)} and where the walk stopped. At the top level it stops at Pixel Data."""
    if not implicit:
        return _walk_explicit(buf, pos, end, mode)
    top = mode == _TOP
    unpack = struct.unpack_from
    # each element header in one unpack (_EXPLICIT_HEADER, _IMPLICIT_HEADER)
    header = _IMPLICIT_HEADER.unpack_from if implicit else _EXPLICIT_HEADER.unpack_from
    vr_names = _VR_NAMES
    elements: dict[int, tuple[str | None, int, int]] = {}
    last = -1
    while pos < end:
        if end - pos < 8:
            raise Malformed(f"{end - pos} stray bytes at the end of the data set")
        if implicit:
            group, element, length = header(buf, pos)
            vr = None
        else:
            group, element, raw_vr, length = header(buf, pos)
            vr = vr_names.get(raw_vr)
        tag = group << 16 | element
        start = pos + 8
        if tag == _ITEM_END and mode == _DELIMITED:
            return elements, pos + 8
        if top and tag >= 0x7FE00008:
            return elements, pos
        if tag <= last:
            raise Unsupported("elements out of order")
        last = tag
        if not implicit:
            if vr is None:
                raise Unsupported(f"unknown VR {raw_vr.decode('latin-1')!r}")
            if vr in _LONG_VRS:
                if end - pos < 12:
                    raise Malformed("element header cut short")
                (length,) = unpack("<I", buf, pos + 8)
                start = pos + 12
        if length == _UNDEFINED:
            if (vr or _implicit_vr(tag)) != "SQ":
                raise Unsupported("undefined length outside a sequence")
            length = _sequence_length(buf, start, end, implicit)
        elif start + length > end:
            raise Malformed("element runs past the end of the data set")
        elements[tag] = (vr, start, length)
        pos = start + length
    if mode == _DELIMITED:
        raise Unsupported("item without its delimiter")
    return elements, pos


# Explicit VR: the VR read as a 16-bit number, looked up by int (no bytes object to hash)
_EXPLICIT_HEADER_CODE = struct.Struct("<HHHH")
_VR_CODES = {int.from_bytes(vr.encode("ascii"), "little"): (vr, vr in _LONG_VRS) for vr in _VRS}
_LENGTH32 = struct.Struct("<I")


def _walk_explicit(buf: memoryview, pos: int, end: int, mode: int):
    """``_walk`` for explicit VR little endian (nearly every data set), ~25 % faster."""
    top = mode == _TOP
    header, codes, length32 = _EXPLICIT_HEADER_CODE.unpack_from, _VR_CODES, _LENGTH32.unpack_from
    elements: dict[int, tuple[str | None, int, int]] = {}
    last = -1
    while pos < end:
        if end - pos < 8:
            raise Malformed(f"{end - pos} stray bytes at the end of the data set")
        group, element, code, length = header(buf, pos)
        tag = group << 16 | element
        if tag >= 0x7FE00008:
            if tag == _ITEM_END and mode == _DELIMITED:
                return elements, pos + 8
            if top:
                return elements, pos
        if tag <= last:
            raise Unsupported("elements out of order")
        last = tag
        kind = codes.get(code)
        if kind is None:
            raise Unsupported(f"unknown VR {code.to_bytes(2, 'little').decode('latin-1')!r}")
        vr, is_long = kind
        if is_long:
            if end - pos < 12:
                raise Malformed("element header cut short")
            (length,) = length32(buf, pos + 8)
            start = pos + 12
        else:
            start = pos + 8
        if length == _UNDEFINED:
            if vr != "SQ":
                raise Unsupported("undefined length outside a sequence")
            length = _sequence_length(buf, start, end, False)
        elif start + length > end:
            raise Malformed("element runs past the end of the data set")
        elements[tag] = (vr, start, length)
        pos = start + length
    if mode == _DELIMITED:
        raise Unsupported("item without its delimiter")
    return elements, pos


def _sequence_length(buf: memoryview, start: int, end: int, implicit: bool) -> int:
    """The length of an undefined-length sequence's value, its delimiter included."""
    pos = start
    while pos + 8 <= end:
        tag, length = _item_header(buf, pos)
        if tag == _SEQUENCE_END:
            return pos + 8 - start
        if tag != _ITEM:
            raise Unsupported("a sequence holds something else than items")
        if length == _UNDEFINED:
            _, pos = _walk(buf, pos + 8, end, implicit, _DELIMITED)
        else:
            pos += 8 + length
    raise Unsupported("sequence without its delimiter")


def _item_header(buf: memoryview, pos: int) -> tuple[int, int]:
    group, element, length = struct.unpack_from("<HHI", buf, pos)
    return group << 16 | element, length


def _items(buf: memoryview, start: int, length: int, implicit: bool):
    """Each item of a sequence value as its elements."""
    pos, end = start, start + length
    while pos + 8 <= end:
        tag, item_length = _item_header(buf, pos)
        if tag == _SEQUENCE_END:
            return
        if tag != _ITEM:
            raise Unsupported("a sequence holds something else than items")
        if item_length == _UNDEFINED:
            elements, pos = _walk(buf, pos + 8, end, implicit, _DELIMITED)
        else:
            item_end = pos + 8 + item_length
            if item_end > end:
                raise Malformed("item runs past its sequence")
            elements, _ = _walk(buf, pos + 8, item_end, implicit, _DEFINED)
            pos = item_end
        yield elements


def _encoding_of(raw: bytes | None) -> str:
    name = (raw or b"").decode("ascii", "replace").strip(" \x00")
    encoding = _ENCODINGS.get(name)
    if encoding is None:
        raise Unsupported(f"Specific Character Set {name!r}")
    return encoding


@lru_cache(maxsize=4096)
def _public_vr(tag: int) -> str | None:
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _implicit_vr(tag: int) -> str:
    """The VR of an implicit VR element of a public tag, as pydicom gives it."""
    if tag >> 16 & 1:
        raise Unsupported("private element in implicit VR")  # pydicom's private dictionary
    if tag & 0xFFFF == 0:
        return "UL"  # group length
    vr = _public_vr(tag)
    if vr is None:
        raise Unsupported("implicit VR element not in the dictionary")
    if vr not in _VRS:
        raise Unsupported(f"ambiguous VR {vr}")
    return vr


# "GGGGEEEE", the DICOM JSON key of a tag: the same few hundred tags come in every header
_KEYS: dict[int, str] = {}
_KEYS_MAX = 1 << 16  # private tags vary: the cache stops growing here

# What the encoder does with a VR's value: one lookup instead of a chain of set tests
_TEXT_SPLIT, _TEXT_CHARSET_SPLIT, _TEXT_SINGLE, _PERSON, _DECIMAL, _INTEGER_STRING = range(6)
_NUMBER, _BINARY, _TAGS, _SEQUENCE, _AE = range(6, 11)
_KIND = {
    **dict.fromkeys(("AS", "CS", "UI", "DA", "DT", "TM"), _TEXT_SPLIT),
    **dict.fromkeys(("LO", "SH", "UC"), _TEXT_CHARSET_SPLIT),
    **dict.fromkeys(("LT", "ST", "UT", "UR"), _TEXT_SINGLE),
    "PN": _PERSON,
    "DS": _DECIMAL,
    "IS": _INTEGER_STRING,
    **dict.fromkeys(_NUMBERS, _NUMBER),
    **dict.fromkeys(_BINARY_VRS, _BINARY),
    "AT": _TAGS,
    "SQ": _SEQUENCE,
    "AE": _AE,
}


def _key(tag: int) -> str:
    key = _KEYS.get(tag)
    if key is None:
        key = f"{tag:08X}"
        if len(_KEYS) < _KEYS_MAX:
            _KEYS[tag] = key
    return key


# Elements already written as JSON text (``"GGGGEEEE":{...}``), by (tag, VR, bytes, character
# set), for _Encoder.text_of: values up to _FRAGMENT_MAX bytes, sequences never (their items
# are elements of their own).
_FRAGMENTS: dict[tuple[int, str, bytes, str], bytes] = {}
_FRAGMENTS_MAX = 16384
_FIRST_PIXEL_DATA_TAG = min(_PIXEL_DATA_TAGS)
_dumps = None  # orjson.dumps, once text_of first runs
_FRAGMENT_MAX = 256

# Headers of one layout (the same tags in the same order, character set, VR encoding, and
# Pixel Representation, which gives implicit VR's "US or SS" elements theirs): the text of
# the first, and which stretches of elements later ones repeat byte for byte (_Template).
# Most headers of a series differ from the one before in a few elements (SOP Instance UID,
# Instance Number, position); the rest is compared a stretch at a time instead of looked up
# element by element in _FRAGMENTS.
_TEMPLATES: dict[tuple, _Template] = {}
_TEMPLATES_MAX = 64
_TEMPLATE_BYTES_MAX = 1 << 18  # a larger header (multi-frame functional groups) gets none
_SEEN_MAX = 8  # values of a changing element remembered (two series of one layout at once)

# Text values already encoded, by (bytes, VR, character set): the instances of a series
# repeat most of theirs (names, dates, modality, spacing, ...), and encoding one costs more
# than finding it (~1.3 us against ~0.2 us). The documents share these dicts: nothing
# changes a header's document once made (it goes to JSON text for the index).
_TEXT_CACHE: dict[tuple[bytes, str, str], dict[str, Any]] = {}
_TEXT_CACHE_MAX = 8192


class _Encoder:
    __slots__ = ("buf", "data", "encoding", "implicit")

    def __init__(self, buf: memoryview, implicit: bool, encoding: str, data: bytes) -> None:
        self.buf, self.implicit, self.encoding = buf, implicit, encoding
        self.data = data  # buf's bytes up to Pixel Data: values are sliced from bytes

    def dataset(self, elements, top: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        data = self.data
        for tag, (vr, start, length) in elements.items():
            if top and tag in _PIXEL_DATA_TAGS:  # an icon's Pixel Data in an item stays
                continue
            vr = self.vr(tag, vr, elements, top)
            out[_key(tag)] = self.value(tag, vr, start, length, data)
        return out

    def vr(self, tag: int, vr: str | None, elements, top: bool) -> str:
        if vr is None:
            return self.implicit_vr(tag, elements, top)
        if vr == "UN" and not tag >> 16 & 1 and _public_vr(tag):
            raise Unsupported("UN element the dictionary knows")  # pydicom converts it
        return vr

    def value(
        self, tag: int, vr: str, start: int, length: int, data: bytes, cache: bool = True
    ) -> dict[str, Any]:
        """One element's value in the DICOM JSON model (a text value through _TEXT_CACHE
        unless ``cache`` is False)."""
        kind = _KIND[vr]
        if length == 0 and kind != _SEQUENCE:
            return {"vr": vr}
        if kind <= _INTEGER_STRING or kind == _AE:
            raw = data[start : start + length]
            if not cache:
                return self.text(vr, kind, raw)
            cached = _TEXT_CACHE.get((raw, vr, self.encoding))
            if cached is None:
                cached = self.text(vr, kind, raw)
                if len(_TEXT_CACHE) >= _TEXT_CACHE_MAX:
                    _TEXT_CACHE.clear()
                _TEXT_CACHE[raw, vr, self.encoding] = cached
            return cached
        return self.element(tag, vr, kind, start, length)

    def text_of(self, elements) -> bytes:
        """``dataset(elements, True)`` as JSON text (UTF-8), written as orjson writes the
        dict, so the document is neither built nor serialized whole: from the template of
        the header's layout when one came before (``_Template``: in a series, all but a few
        elements), else element by element (``fragment``), and the template kept."""
        global _dumps
        if _dumps is None:  # not at import: storescp walks headers but writes no JSON
            from orjson import dumps as _dumps

        representation = None  # Pixel Representation's bytes: "US or SS" in implicit VR
        if self.implicit and 0x00280103 in elements:
            _, start, length = elements[0x00280103]
            representation = self.data[start : start + length]
        layout = (tuple(elements), self.encoding, self.implicit, representation)
        template = _TEMPLATES.get(layout)
        if template is not None:
            return b"{" + b",".join(template.fragments(self, elements)) + b"}"
        fragment = self.fragment
        out = [
            fragment(tag, vr, start, length, elements)
            for tag, (vr, start, length) in elements.items()
            if tag < _FIRST_PIXEL_DATA_TAG or tag not in _PIXEL_DATA_TAGS
        ]
        if len(out) == len(elements) and len(self.data) <= _TEMPLATE_BYTES_MAX:
            if len(_TEMPLATES) >= _TEMPLATES_MAX:
                _TEMPLATES.clear()
            _TEMPLATES[layout] = _Template(self, elements, out)
        return b"{" + b",".join(out) + b"}"

    def fragment(
        self, tag: int, vr: str | None, start: int, length: int, elements, cache: bool = True
    ) -> bytes:
        """One element's ``"GGGGEEEE":{...}``, from ``_FRAGMENTS`` when the same tag, VR and
        bytes came before; ``cache`` False: written anew, the caches left alone (a value
        that will not come again)."""
        data, encoding = self.data, self.encoding
        if vr is None or vr == "UN":  # else self.vr() gives vr itself
            vr = self.vr(tag, vr, elements, True)
        cached = cache and length <= _FRAGMENT_MAX and vr != "SQ"
        if cached:
            raw = data[start : start + length]
            fragment = _FRAGMENTS.get((tag, vr, raw, encoding))
            if fragment is not None:
                return fragment
        value = self.value(tag, vr, start, length, data, cache)
        fragment = _dumps({_key(tag): value})[1:-1]  # type: ignore[misc]
        if cached:
            if len(_FRAGMENTS) >= _FRAGMENTS_MAX:
                _FRAGMENTS.clear()
            _FRAGMENTS[tag, vr, raw, encoding] = fragment
        return fragment
        fragment = _dumps({_key(tag): self.value(tag, vr, start, length, data)})[1:-1]  # type: ignore[misc]
        if cached:
            if len(_FRAGMENTS) >= _FRAGMENTS_MAX:
                _FRAGMENTS.clear()
            _FRAGMENTS[tag, vr, raw, encoding] = fragment
        return fragment

    def element(self, tag: int, vr: str, kind: int, start: int, length: int) -> dict[str, Any]:
        if kind == _SEQUENCE:
            items = _items(self.buf, start, length, self.implicit)
            return {"vr": vr, "Value": [self.item(elements) for elements in items]}
        if kind == _BINARY:
            if length > _INLINE_MAX:
                return {"vr": vr, "BulkDataURI": f"bulkdata/{tag:08X}"}
            raw = self.data[start : start + length]
            return {"vr": vr, "InlineBinary": base64.b64encode(raw).decode("ascii")}
        if kind == _NUMBER:
            count, rest = divmod(length, _SIZES[vr])
            if rest:
                raise Unsupported(f"{vr} value of {length} bytes")
            values = list(struct.unpack_from(f"<{count}{_NUMBERS[vr]}", self.data, start))
            return {"vr": vr, "Value": values}
        # AT
        if length % 4:
            raise Unsupported("AT value not a multiple of 4 bytes")
        pairs = struct.unpack_from(f"<{length // 2}H", self.data, start)
        tags = [f"{pairs[i] << 16 | pairs[i + 1]:08X}" for i in range(0, len(pairs), 2)]
        return {"vr": vr, "Value": tags}

    def implicit_vr(self, tag: int, elements, top: bool) -> str:
        """As ``_implicit_vr``; "US or SS" resolved by Pixel Representation (PS3.5 A.1 note)
        when the element sits next to it in the data set, as pydicom does."""
        if _public_vr(tag) != "US or SS" or not top or 0x00280103 not in elements:
            return _implicit_vr(tag)
        from pydicom.filewriter import _AMBIGUOUS_US_SS_TAGS

        if tag not in _AMBIGUOUS_US_SS_TAGS:
            raise Unsupported(f"ambiguous VR of ({tag >> 16:04X},{tag & 0xFFFF:04X})")
        _, start, length = elements[0x00280103]
        if length != 2:
            raise Unsupported("Pixel Representation is not one US value")
        (representation,) = struct.unpack_from("<H", self.buf, start)
        return "US" if representation == 0 else "SS"

    def item(self, elements) -> dict[str, Any]:
        if 0x00080005 in elements:
            raise Unsupported("Specific Character Set inside a sequence item")
        return self.dataset(elements)

    def text(self, vr: str, kind: int, raw: bytes) -> dict[str, Any]:
        if vr in _CHARSET_VRS:
            try:
                decoded = raw.decode(self.encoding)
            except UnicodeDecodeError as exc:
                raise Unsupported(str(exc)) from None
        else:
            decoded = raw.decode("latin-1")
        if kind == _TEXT_SPLIT:
            if vr == "UI":
                values = decoded.rstrip("\x00 ").split("\\")
            elif vr in ("DA", "TM", "DT"):
                values = [v.rstrip() for v in decoded.rstrip(" \x00").split("\\")]
            else:  # AS, CS
                values = decoded.rstrip(" \x00").split("\\")
        elif kind in (_DECIMAL, _INTEGER_STRING):
            # as the text received (a JSON String, PS3.18 F.2.3 since CP-1861): a number
            # would come back as another spelling ("5.000000" as 5.0, "+0001" as 1) and
            # could pass DS's 16 characters ("1234567890123456" as 1234567890123456.0)
            strings = [v.strip() for v in decoded.strip(" \x00").split("\\")]
            number = float if kind == _DECIMAL else _integer
            try:
                for v in strings:
                    if v:
                        number(v)
            except ValueError:
                raise Unsupported(f"{vr} value {decoded!r}") from None
            if strings == [""]:
                return {"vr": vr}
            return {"vr": vr, "Value": [v or None for v in strings]}
        elif kind == _TEXT_CHARSET_SPLIT:
            values = [v.rstrip("\x00 ") for v in decoded.split("\\")]
        elif kind == _PERSON:
            stripped = decoded.rstrip("\x00 ")
            if not stripped:
                return {"vr": vr}
            return {"vr": vr, "Value": [_person_name(v) for v in stripped.split("\\")]}
        elif kind == _TEXT_SINGLE:
            value = decoded.rstrip("\x00 ") if vr != "UR" else decoded.rstrip()
            return {"vr": vr, "Value": [value]} if value else {"vr": vr}
        else:  # AE
            values = [v.strip() for v in decoded.rstrip(" \x00").split("\\")]
        if values == [""]:
            return {"vr": vr}
        return {"vr": vr, "Value": values}


def _element_start(vr: str | None, value_start: int) -> int:
    """Where an element whose value starts at ``value_start`` begins (VR None: implicit)."""
    return value_start - (12 if vr in _LONG_VRS else 8)


class _Template:
    """The JSON text of one header, for the next ones of its layout (``_TEMPLATES``).

    An element's text depends on nothing but its bytes (tag, VR, length, value) and what
    the layout holds the same (character set, implicit VR, Pixel Representation). So a
    stretch of elements whose bytes equal the template's, compared in one slice, has the
    template's text. The stretches start as the whole header; an element that differs (in
    the second header of a series: its UIDs, number, position) is marked as changing and
    written on its own from then on, its last few values remembered here (``seen``), not in
    _FRAGMENTS: values that never come again would fill that cache and push out the ones
    that do (measured: ~10 % of serve's CPU an instance).
    """

    __slots__ = ("raws", "seen", "stretches", "tags", "texts")

    def __init__(self, encoder: _Encoder, elements, texts: list[bytes]) -> None:
        data = encoder.data  # the element headers are in it: top-level elements are contiguous
        self.tags = tuple(elements)
        self.raws = [
            data[_element_start(vr, start) : start + length]
            for vr, start, length in elements.values()
        ]
        self.texts = texts
        self.seen: dict[int, dict[bytes, bytes]] = {}  # a changing element's: bytes -> text
        self.stretches: list[tuple[int, int, bytes | None, bytes]] = []
        self._split()

    def _split(self) -> None:
        """Stretches of the steady elements, and each changing one alone: (first, last,
        bytes or None for a changing one, text)."""
        stretches, first, count = [], 0, len(self.tags)
        for i in range(count + 1):
            if i < count and i not in self.seen:
                continue
            if first < i:
                stretches.append((first, i - 1, b"".join(self.raws[first:i]),
                                  b",".join(self.texts[first:i])))  # fmt: skip
            if i < count:
                stretches.append((i, i, None, b""))
            first = i + 1
        self.stretches = stretches

    def fragments(self, encoder: _Encoder, elements) -> list[bytes]:
        """The text of each stretch of a header of this layout."""
        data, tags, raws = encoder.data, self.tags, self.raws
        out: list[bytes] = []
        changed = False
        for first, last, raw, text in self.stretches:
            if raw is not None:
                vr, start, _ = elements[tags[first]]
                _, end, length = elements[tags[last]]
                if data[_element_start(vr, start) : end + length] == raw:
                    out.append(text)
                    continue
            for i in range(first, last + 1):  # a changing element, or a stretch that broke
                vr, start, length = elements[tags[i]]
                element = data[_element_start(vr, start) : start + length]
                if raw is not None:
                    if element == raws[i]:
                        out.append(self.texts[i])
                        continue
                    self.seen[i] = {}
                    changed = True
                seen = self.seen[i]
                fragment = seen.get(element)
                if fragment is None:
                    fragment = encoder.fragment(tags[i], vr, start, length, elements, False)
                    if len(seen) >= _SEEN_MAX:
                        seen.clear()
                    seen[element] = fragment
                out.append(fragment)
        if changed:
            self._split()
        return out


def _integer(text: str) -> int:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        number = float(text)  # IS "12.0": pydicom accepts integral decimals
        if number != int(number):
            raise
        return int(number)


def _person_name(value: str) -> dict[str, str]:
    groups = value.split("=")
    name = {"Alphabetic": groups[0]}
    if len(groups) > 1:
        name["Ideographic"] = groups[1]
    if len(groups) > 2:
        name["Phonetic"] = groups[2]
    return name
