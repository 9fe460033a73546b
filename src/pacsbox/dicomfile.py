"""DICOM files on disk (PS3.10): what a file holds, where its data set starts, and its meta.

The data path never decodes a data set it only moves: ``read_file_info`` reads the file meta
information (or, for a file without one, only the few attributes it needs) and records the
offset where the data set starts, so the bytes after it can be sent as they are.
``file_meta_bytes`` builds the preamble and group 0002 that a received data set is written
behind.
"""

from __future__ import annotations

import functools
import os
import struct
from pathlib import Path

from pacsbox.records import record

from .errors import PacsboxError
from .syntaxes import (
    DEFLATED,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from .uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

PREAMBLE = bytes(128) + b"DICM"


class NotDicomError(PacsboxError):
    """A file that is not DICOM, or lacks what is needed to send it; the message says which."""


@record(frozen=True)
class FileInfo:
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    dataset_offset: int  # where the data set starts (after preamble and meta, or 0)
    size: int

    @property
    def dataset_length(self) -> int:
        return self.size - self.dataset_offset


_ENCODING_TS = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}


def read_file_info(path: str | os.PathLike) -> FileInfo:
    """SOP class, instance, transfer syntax and data set offset of a DICOM file.

    Raises NotDicomError (with the reason) for anything that cannot be sent as it is.
    """
    path = Path(path)
    # a storescu reads every file first: plain descriptor calls, no file object, for the
    # usual file the fast path reads whole from its head
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        head = os.read(fd, _FAST_HEAD)
    finally:
        os.close(fd)
    info = _fast_info(path, head, size)
    if info is not None:
        return info
    with open(path, "rb") as fp:
        from pydicom.filereader import _read_file_meta_info, read_preamble

        if len(head) >= 132 and head[128:132] == b"DICM":
            fp.seek(0)
            read_preamble(fp, force=False)
            try:
                meta = _read_file_meta_info(fp)
            except Exception as exc:  # pydicom raises several kinds for a broken group 2
                raise NotDicomError(f"{path}: unreadable file meta information: {exc}") from None
            offset = fp.tell()
            syntax = meta.get("TransferSyntaxUID")
            if syntax:
                # the data set's own UIDs rule (the meta may disagree: C-STORE names the
                # instance the data set is); they sit near its start, read only that far
                sop_class, sop_instance = _leading_uids(fp, str(syntax))
                sop_class = sop_class or meta.get("MediaStorageSOPClassUID")
                sop_instance = sop_instance or meta.get("MediaStorageSOPInstanceUID")
                if sop_class and sop_instance:
                    return FileInfo(
                        path, str(sop_class), str(sop_instance), str(syntax), offset, size
                    )
            # an incomplete meta: read the data set's own attributes below
        else:
            offset = 0
    return _info_from_dataset(path, offset, size)


# -- the fast path ------------------------------------------------------------------------
# A storescu reads every file before it sends any (to know what to propose); through
# pydicom that costs ~0.2 ms a file, as much as sending it. The usual file (a meta group,
# then a data set whose first elements are plain group 0008 ones) is read here with struct
# in a tenth of that; anything else (no meta, a sequence before (0008,0018), deflate, big
# endian, odd lengths) goes to pydicom below, which remains the reference.

_FAST_HEAD = 4096
_LONG_VRS = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)
_TAG = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


def _explicit_elements(buf: bytes, pos: int):
    """(group, element, value start, value end) of explicit VR LE elements from ``pos``;
    stops at the end of ``buf`` or an undefined length (the caller then falls back)."""
    end = len(buf)
    while pos + 8 <= end:
        group, element = _TAG.unpack_from(buf, pos)
        if buf[pos + 4 : pos + 6] in _LONG_VRS:
            if pos + 12 > end:
                return
            (length,), start = _U32.unpack_from(buf, pos + 8), pos + 12
        else:
            (length,), start = _U16.unpack_from(buf, pos + 6), pos + 8
        if length == 0xFFFFFFFF:
            return
        yield group, element, start, start + length
        pos = start + length


def _implicit_elements(buf: bytes, pos: int):
    end = len(buf)
    while pos + 8 <= end:
        group, element = _TAG.unpack_from(buf, pos)
        (length,) = _U32.unpack_from(buf, pos + 4)
        if length == 0xFFFFFFFF:
            return
        yield group, element, pos + 8, pos + 8 + length
        pos += 8 + length


def _text(buf: bytes, start: int, end: int) -> str:
    return buf[start:end].rstrip(b"\x00 ").decode("ascii")


def _fast_info(path: Path, head: bytes, size: int) -> FileInfo | None:
    if len(head) < 144 or head[128:132] != b"DICM":
        return None
    syntax = None
    offset = 132
    for group, element, start, end in _explicit_elements(head, 132):
        if group != 0x0002:
            break
        if end > len(head):
            return None
        if element == 0x0010:
            syntax = _text(head, start, end)
        offset = end
    if not syntax or syntax in DEFLATED or syntax == ExplicitVRBigEndian:
        return None
    walk = _implicit_elements if syntax == ImplicitVRLittleEndian else _explicit_elements
    uids: dict[int, str] = {}
    try:
        for group, element, start, end in walk(head, offset):
            tag = group << 16 | element
            if tag > 0x00080018 or end > len(head):
                break
            if tag in (0x00080016, 0x00080018):
                uids[tag] = _text(head, start, end)
    except UnicodeDecodeError:
        return None
    sop_class, sop_instance = uids.get(0x00080016), uids.get(0x00080018)
    if not sop_class or not sop_instance:
        return None
    return FileInfo(path, sop_class, sop_instance, syntax, offset, size)


_DATASET_ENCODING = {  # transfer syntax -> (implicit VR, little endian); others: explicit LE
    ImplicitVRLittleEndian: (True, True),
    ExplicitVRBigEndian: (False, False),
}


def dataset_encoding(transfer_syntax: str) -> tuple[bool, bool]:
    """(implicit VR, little endian) of a data set's bytes in this transfer syntax."""
    return _DATASET_ENCODING.get(transfer_syntax, (False, True))


def _leading_uids(fp, transfer_syntax: str) -> tuple[str | None, str | None]:
    """SOP Class and Instance UID from the start of the data set at ``fp`` (left unread)."""
    if transfer_syntax in DEFLATED:
        return None, None
    from pydicom.filereader import read_dataset

    start = fp.tell()
    implicit, little = dataset_encoding(transfer_syntax)
    try:
        ds = read_dataset(fp, implicit, little, stop_when=_past_sop_instance_uid)
    except Exception:  # let the full read below report what is wrong
        return None, None
    finally:
        fp.seek(start)
    return ds.get("SOPClassUID"), ds.get("SOPInstanceUID")


def _past_sop_instance_uid(tag, vr, length) -> bool:
    return tag.real > 0x00080018  # .real: a plain int compare, not pydicom's Tag.__gt__


def _info_from_dataset(path: Path, offset: int, size: int) -> FileInfo:
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        ds = dcmread(
            path,
            force=True,
            stop_before_pixels=True,
            specific_tags=["SOPClassUID", "SOPInstanceUID"],
        )
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError) as exc:
        raise NotDicomError(f"{path}: not a DICOM file ({exc})") from None
    sop_class = ds.get("SOPClassUID")
    sop_instance = ds.get("SOPInstanceUID")
    if not sop_class or not sop_instance:
        raise NotDicomError(
            f"{path}: not a DICOM file, or one without SOP Class UID (0008,0016) and "
            "SOP Instance UID (0008,0018)"
        )
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not syntax:
        implicit, little = ds.original_encoding
        syntax = _ENCODING_TS.get((bool(implicit), bool(little)), ImplicitVRLittleEndian)
    return FileInfo(path, str(sop_class), str(sop_instance), str(syntax), offset, size)


def _element(element: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element of group 0002 (PS3.5 7.1.2)."""
    if vr == b"OB":
        return struct.pack("<HH2sxxI", 0x0002, element, vr, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def _padded(text: str, pad: bytes) -> bytes:
    raw = text.encode("ascii")
    return raw + pad if len(raw) % 2 else raw


def file_meta_bytes(
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax: str,
    *,
    source_ae: str = "",
    sending_ae: str = "",
    receiving_ae: str = "",
) -> bytes:
    """Preamble, 'DICM' and the file meta information group (PS3.10 7.1) for a data set.

    Encoded here rather than through pydicom's writer: it is written before every received
    instance, and this is a fixed handful of elements (a tenth of the time).
    """
    before, after = _meta_around_instance(
        sop_class_uid, transfer_syntax, source_ae, sending_ae, receiving_ae
    )
    instance = _element(0x0003, b"UI", _padded(sop_instance_uid, b"\0"))
    length = len(before) + len(instance) + len(after)
    return b"".join(
        (PREAMBLE, _element(0x0000, b"UL", struct.pack("<I", length)), before, instance, after)
    )


@functools.lru_cache(maxsize=256)
def _meta_around_instance(
    sop_class_uid: str, transfer_syntax: str, source_ae: str, sending_ae: str, receiving_ae: str
) -> tuple[bytes, bytes]:
    """The file meta elements before and after Media Storage SOP Instance UID: the same for
    every instance of an association's SOP class and syntax, so made once."""
    before = _element(0x0001, b"OB", b"\x00\x01") + _element(  # File Meta Information Version
        0x0002, b"UI", _padded(sop_class_uid, b"\0")
    )
    after = [
        _element(0x0010, b"UI", _padded(transfer_syntax, b"\0")),
        _element(0x0012, b"UI", _padded(IMPLEMENTATION_CLASS_UID, b"\0")),
        _element(0x0013, b"SH", _padded(IMPLEMENTATION_VERSION_NAME, b" ")),
    ]
    for element, title in ((0x0016, source_ae), (0x0017, sending_ae), (0x0018, receiving_ae)):
        if title:
            after.append(_element(element, b"AE", _padded(title, b" ")))
    return before, b"".join(after)
