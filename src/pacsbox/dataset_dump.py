"""Data sets dumped as DCMTK prints them (dcmdump, findscu -v): one line per element.

    (0008,0020) DA [20131231]                               #   8, 1 StudyDate

The value column is 40 characters wide, then ``# length, VM keyword``; sequences and items
get DCMTK's "(Sequence with explicit length #=1)" lines and two spaces of indent per level.
The dump is made from the bytes as they were received (or sent): pydicom's raw elements,
so lengths and padding are the ones on the wire.

Deliberate differences from DCMTK 3.6.7, so the log is readable: text is decoded with the
data set's Specific Character Set (DCMTK prints the raw bytes, "M\\xdcLLER" shows as
"M�LLER" on a UTF-8 terminal), a UI value's trailing NUL pad is not printed (DCMTK prints
it as a control character), and values are padded to the column by characters, not bytes.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

VALUE_WIDTH = 40  # DCMTK's DCM_OptPrintValueLength
UNDEFINED = 0xFFFFFFFF
_LONG_VRS = frozenset(
    ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV")
)
_BINARY = {  # VR -> (struct code, size)
    "US": ("H", 2), "SS": ("h", 2), "UL": ("I", 4), "SL": ("i", 4), "UV": ("Q", 8),
    "SV": ("q", 8), "FL": ("f", 4), "FD": ("d", 8), "OF": ("f", 4), "OD": ("d", 8),
    "OL": ("I", 4), "OV": ("Q", 8),
}  # fmt: skip
_SINGLE_VALUED = frozenset(("LT", "ST", "UT", "UR"))
_TEXT_DELIMITERS = {0x5C, 0x0D, 0x0A, 0x09, 0x0C}
_PN_DELIMITERS = _TEXT_DELIMITERS | {0x5E, 0x3D}
_HEX_SHOWN = 64  # DCMTK prints at most this many values of OB/OW/UN before "..."


def dump_lines(
    dataset: Dataset | bytes | bytearray,
    transfer_syntax: str,
    *,
    header: bool = True,
    request: bool = False,
) -> list[str]:
    """DCMTK's dump of a data set: its bytes in ``transfer_syntax``, or a Dataset (then
    encoded in ``transfer_syntax`` first, so the dump shows what goes on the wire).

    ``request``: print it as DCMTK prints a data set it built itself (findscu's "Request
    Identifiers"): text without its trailing pad, sequences and items with length 0 (not
    computed yet), an element of unknown VR as "??".
    """
    from .datasets import decode_dataset, encode_dataset
    from .dicomfile import dataset_encoding
    from .uids import transfer_syntax_description

    raw = dataset if isinstance(dataset, bytes | bytearray) else None
    ds = decode_dataset(raw or encode_dataset(dataset, transfer_syntax), transfer_syntax)  # type: ignore[arg-type]
    implicit, little = dataset_encoding(transfer_syntax)
    lines = []
    if header:
        lines += [
            "# Dicom-Data-Set",
            f"# Used TransferSyntax: {transfer_syntax_description(transfer_syntax)}",
        ]
    _Dumper(implicit, little, request).dataset(ds, 0, None, lines)
    return lines


def _line(indent: int, tag: int, vr: str, value: str, length: str, vm: int, name: str) -> str:
    head = f"{'  ' * indent}({tag >> 16:04x},{tag & 0xFFFF:04x}) {vr} {value:<{VALUE_WIDTH}}"
    return f"{head} # {length:>3}, {vm} {name}"


class _Dumper:
    def __init__(self, implicit: bool, little: bool, request: bool) -> None:
        self.implicit, self.little, self.request = implicit, little, request

    def dataset(self, ds: Dataset, indent: int, encodings, lines: list[str]) -> int:
        """Append the lines of ``ds``; return its encoded length (for explicit-length items)."""
        from pydicom.charset import convert_encodings

        charset = ds.get_item(0x00080005)
        if charset is not None and charset.value:
            raw = charset.value
            text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
            terms = text.split("\\") if isinstance(text, str) else list(text)
            encodings = convert_encodings([t.strip() for t in terms])
        total = 0
        for raw in ds.elements():
            total += self.element(ds, raw, indent, encodings or ["iso8859"], lines)
        return total

    def header_size(self, vr: str) -> int:
        return 8 if self.implicit or vr not in _LONG_VRS else 12

    def element(self, ds: Dataset, raw, indent: int, encodings, lines: list[str]) -> int:
        tag = int(raw.tag)
        vr = self.vr_of(ds, raw)
        name = _keyword(tag)
        if vr == "SQ":
            return self.sequence(ds, raw, indent, encodings, lines, name)
        value = raw.value or b""
        length = len(value)
        text, vm = self.value(vr, bytes(value), encodings)
        if self.request and vr == "UN" and _keyword(tag) == _UNKNOWN:
            vr, vm = "??", 1  # DCMTK: an element it has no VR for, VM 1 even when empty
        lines.append(_line(indent, tag, vr, text, str(length), vm, name))
        return self.header_size(vr) + length

    def sequence(self, ds, raw, indent, encodings, lines, name) -> int:
        tag = int(raw.tag)
        items = ds[tag].value
        # pydicom parses an undefined-length sequence as it reads it (a DataElement), and
        # leaves one of explicit length raw (a RawDataElement with its length)
        length = getattr(raw, "length", None)
        undefined = raw.is_undefined_length if length is None else length == UNDEFINED
        kind = "undefined" if undefined else "explicit"
        head = len(lines)
        lines.append("")  # filled in below, once the items are measured
        content = 0
        for item in items:
            item_undefined = getattr(item, "is_undefined_length_sequence_item", False)
            item_head = len(lines)
            lines.append("")
            body = self.dataset(item, indent + 2, encodings, lines)
            word = "undefined" if item_undefined else "explicit"
            lines[item_head] = _line(
                indent + 1, 0xFFFEE000, "na", f"(Item with {word} length #={len(item)})",
                "u/l" if item_undefined else self.measured(body), 1, "Item",
            )  # fmt: skip
            end = "(ItemDelimitationItem)" if item_undefined else (
                "(ItemDelimitationItem for re-encoding)"
            )  # fmt: skip
            lines.append(_line(indent + 1, 0xFFFEE00D, "na", end, "0", 0, "ItemDelimitationItem"))
            content += 8 + body + (8 if item_undefined else 0)
        lines[head] = _line(
            indent, tag, "SQ", f"(Sequence with {kind} length #={len(items)})",
            "u/l" if undefined else self.measured(content), 1, name,
        )  # fmt: skip
        end = "(SequenceDelimitationItem)" if undefined else (
            "(SequenceDelimitationItem for re-encod.)"
        )  # fmt: skip
        lines.append(_line(indent, 0xFFFEE0DD, "na", end, "0", 0, "SequenceDelimitationItem"))
        return self.header_size("SQ") + content + (8 if undefined else 0)

    def measured(self, length: int) -> str:
        # DCMTK computes the length of a sequence or item only when it writes it
        return "0" if self.request else str(length)

    def vr_of(self, ds: Dataset, raw) -> str:
        if raw.VR:
            return str(raw.VR)
        from .query_keys import _vr_for

        return _vr_for(int(raw.tag), ds) or "UN"

    def value(self, vr: str, value: bytes, encodings) -> tuple[str, int]:
        if not value:
            return "(no value available)", 0
        if vr in _BINARY:
            code, size = _BINARY[vr]
            count = len(value) // size
            order = "<" if self.little else ">"
            numbers = struct.unpack(f"{order}{count}{code}", value[: count * size])
            shown = [f"{n:g}" if code in "fd" else str(n) for n in numbers[:_HEX_SHOWN]]
            return "\\".join(shown) + ("..." if count > _HEX_SHOWN else ""), count
        if vr == "AT":
            order = "<" if self.little else ">"
            count = len(value) // 4
            pairs = struct.unpack(f"{order}{count * 2}H", value[: count * 4])
            tags = [f"({pairs[i]:04x},{pairs[i + 1]:04x})" for i in range(0, len(pairs), 2)]
            return "\\".join(tags), count
        if vr in ("OB", "UN", "OW"):
            size = 2 if vr == "OW" else 1
            order = "little" if self.little else "big"
            words = [
                f"{int.from_bytes(value[i : i + size], order):0{size * 2}x}"
                for i in range(0, len(value), size)
            ]
            more = "..." if len(words) > _HEX_SHOWN else ""
            return "\\".join(words[:_HEX_SHOWN]) + more, 1
        text = self.text(vr, value, encodings)
        vm = 1 if vr in _SINGLE_VALUED else text.count("\\") + 1
        return f"[{text}]", vm

    def text(self, vr: str, value: bytes, encodings) -> str:
        if self.request and value[-1:] in (b" ", b"\0"):
            value = value[:-1]
        if vr == "UI":
            value = value.rstrip(b"\0")
        if value.isascii():
            return value.decode("ascii")
        from pydicom.charset import decode_bytes

        delimiters = _PN_DELIMITERS if vr == "PN" else _TEXT_DELIMITERS
        return decode_bytes(value, encodings, delimiters)


def _keyword(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 and 0x0010 <= element <= 0x00FF:
        return "PrivateCreator"
    return keyword_for_tag(tag) or _UNKNOWN


_UNKNOWN = "Unknown Tag & Data"
