"""Transfer syntax conversion of a data set, for when a peer accepted another syntax than ours.

The storage SCU and SCP call ``can_transcode`` while choosing a presentation context and
``transcode`` to get the data set bytes (no preamble, no file meta) to send in the C-STORE.
Pixel data is decoded and encoded by pydicom's codec registry (numpy + pylibjpeg / gdcm);
this module only decides what is possible, keeps the lossy-compression history honest
(PS3.3 C.7.6.1.1.5) and writes the data set in the target encoding (PS3.5 A.1-A.5).
"""

from __future__ import annotations

import copy
import os
import zlib
from array import array
from typing import BinaryIO

from pydicom import Dataset, dcmread
from pydicom import uid as dcm_uid
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr, write_dataset
from pydicom.pixels import get_decoder, get_encoder

from pacsbox.errors import PacsboxError

__all__ = ["TranscodeError", "can_transcode", "transcode"]


class TranscodeError(PacsboxError):
    """A data set cannot be converted to the transfer syntax a peer accepted."""


# Native encodings: (implicit VR, little endian, deflated) -- PS3.5 A.1, A.2, A.3, A.5.
_NATIVE = {
    dcm_uid.ImplicitVRLittleEndian: (True, True, False),
    dcm_uid.ExplicitVRLittleEndian: (False, True, False),
    dcm_uid.DeflatedExplicitVRLittleEndian: (False, True, True),
    dcm_uid.ExplicitVRBigEndian: (False, False, False),
}
# Every encapsulated syntax encodes the data set itself in Explicit VR Little Endian (PS3.5 A.4).
_ENCAPSULATED_ENCODING = (False, True, False)

# Compressed syntaxes pacsbox may encode to, when pydicom has an available encoder: the
# lossless ones only, so a transcode never silently loses information.
_ENCODE_TARGETS = frozenset({dcm_uid.RLELossless, dcm_uid.JPEG2000Lossless, dcm_uid.JPEGLSLossless})

# Syntaxes whose decoded pixels differ from the original: (0028,2114) method, PS3.3 C.7.6.1.1.5.1.
_LOSSY_METHOD = {
    dcm_uid.JPEGBaseline8Bit: "ISO_10918_1",
    dcm_uid.JPEGExtended12Bit: "ISO_10918_1",
    dcm_uid.JPEGLSNearLossless: "ISO_14495_1",
    dcm_uid.JPEG2000: "ISO_15444_1",
    dcm_uid.HTJ2K: "ISO_15444_15",
}

_JPEG_PACKAGES = "pip install numpy pylibjpeg pylibjpeg-libjpeg, or python-gdcm"
_J2K_PACKAGES = "pip install numpy pylibjpeg pylibjpeg-openjpeg, or python-gdcm"
_DECODER_HINT = {
    dcm_uid.JPEGBaseline8Bit: _JPEG_PACKAGES,
    dcm_uid.JPEGExtended12Bit: _JPEG_PACKAGES,
    dcm_uid.JPEGLossless: _JPEG_PACKAGES,
    dcm_uid.JPEGLosslessSV1: _JPEG_PACKAGES,
    dcm_uid.JPEGLSLossless: _JPEG_PACKAGES,
    dcm_uid.JPEGLSNearLossless: _JPEG_PACKAGES,
    dcm_uid.JPEG2000Lossless: _J2K_PACKAGES,
    dcm_uid.JPEG2000: _J2K_PACKAGES,
    dcm_uid.HTJ2KLossless: "pip install numpy pylibjpeg pylibjpeg-openjpeg",
    dcm_uid.HTJ2KLosslessRPCL: "pip install numpy pylibjpeg pylibjpeg-openjpeg",
    dcm_uid.HTJ2K: "pip install numpy pylibjpeg pylibjpeg-openjpeg",
    dcm_uid.RLELossless: "pip install numpy (pydicom decodes RLE itself)",
}
_ENCODER_HINT = {
    dcm_uid.RLELossless: "pip install numpy (pydicom encodes RLE itself)",
    dcm_uid.JPEG2000Lossless: "pip install numpy pylibjpeg pylibjpeg-openjpeg",
    dcm_uid.JPEGLSLossless: "pip install numpy pyjpegls",
}

# gdcm's RLE encoder aborts the whole process (C++ terminate) on some odd-sized images.
_UNSAFE_ENCODER_PLUGINS = {dcm_uid.RLELossless: ("gdcm",)}

# Byte-swap unit of the binary VRs that pydicom keeps as raw bytes (PS3.5 7.3). Pixel Data
# OW is swapped by 16-bit words whatever Bits Allocated is, as DCMTK's dcmconv +tb does.
_SWAP_UNIT = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
_ARRAY_CODE = {2: "H", 4: "I", 8: "Q"}

_FIX_PEER = "configure the peer to accept Explicit VR Little Endian (DCMTK storescp: +x=)"


def can_transcode(source_ts: str, target_ts: str) -> bool:
    """Whether pacsbox can convert an image in ``source_ts`` to ``target_ts`` on this machine."""
    return _refusal(dcm_uid.UID(source_ts), dcm_uid.UID(target_ts)) is None


def transcode(source: str | os.PathLike | BinaryIO | Dataset, target_ts: str) -> bytes:
    """Return the data set of ``source`` encoded in ``target_ts``, without preamble or file meta.

    ``source`` is a DICOM file (path or binary stream) or a pydicom ``Dataset`` whose
    ``file_meta`` names its transfer syntax; a given ``Dataset`` is not modified.
    Raises ``TranscodeError`` when the conversion is impossible here.
    """
    target = dcm_uid.UID(target_ts)
    if not target.is_transfer_syntax:
        raise TranscodeError(f"{_name(target)} is not a transfer syntax pacsbox knows; {_FIX_PEER}")
    ds = _load(source)
    source_ts = _source_syntax(ds)
    little = source_ts != dcm_uid.ExplicitVRBigEndian  # byte order of the OW/OF/... values
    if "PixelData" in ds and source_ts != target:
        reason = _refusal(source_ts, target)
        if reason is not None:
            raise TranscodeError(f"{_subject(ds)}: {reason}")
        if target not in _NATIVE:
            _encode_pixels(ds, source_ts, target)
        elif source_ts not in _NATIVE:
            _decode_pixels(ds, source_ts)
    implicit, target_little, deflated = _NATIVE.get(target, _ENCAPSULATED_ENCODING)
    data = _write(ds, implicit, target_little, swap=little != target_little)
    if deflated:
        # PS3.5 A.5: raw deflate (no zlib header) of the Explicit VR LE bytes, padded even.
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = compressor.compress(data) + compressor.flush()
        data += b"\x00" * (len(data) % 2)
    return data


def _refusal(source: dcm_uid.UID, target: dcm_uid.UID) -> str | None:
    """Why an image in ``source`` cannot become ``target``; None when it can."""
    if source == target or (source in _NATIVE and target in _NATIVE):
        return None
    if source in _NATIVE:
        if target not in _ENCODE_TARGETS or not _encoder_plugins(target):
            hint = _ENCODER_HINT.get(target)
            todo = f"install an encoder ({hint}) or {_FIX_PEER}" if hint else _FIX_PEER
            return f"the peer accepts only {_name(target)} and pacsbox cannot encode it; {todo}"
        return None
    if target not in _NATIVE:
        return (
            f"pacsbox converts {_name(source)} only to uncompressed syntaxes, not to "
            f"{_name(target)}; {_FIX_PEER}"
        )
    if not _decoder_available(source):
        hint = _DECODER_HINT.get(source, "no pydicom decoder exists for it")
        return f"cannot decompress {_name(source)}: no decoder installed ({hint})"
    return None


def _decoder_available(source: dcm_uid.UID) -> bool:
    try:
        return get_decoder(source).is_available
    except (NotImplementedError, ValueError):  # pydicom has no coder for this syntax at all
        return False


def _load(source: str | os.PathLike | BinaryIO | Dataset) -> Dataset:
    if isinstance(source, Dataset):
        return copy.deepcopy(source)  # decompression works in place; the caller's stays intact
    try:
        return dcmread(source)
    except Exception as exc:  # pydicom raises several types for unreadable input
        raise TranscodeError(
            f"cannot read {source!r} as a DICOM file ({exc}); check that it is a Part 10 file "
            "with a file meta header"
        ) from exc


def _source_syntax(ds: Dataset) -> dcm_uid.UID:
    """The syntax ``ds`` is in, from its file meta or, for a native data set, its encoding."""
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is None:
        ds.file_meta = file_meta = FileMetaDataset()
    if file_meta.get("TransferSyntaxUID"):
        return dcm_uid.UID(file_meta.TransferSyntaxUID)
    by_encoding = {enc[:2]: ts for ts, enc in _NATIVE.items() if not enc[2]}
    encapsulated = "PixelData" in ds and ds["PixelData"].is_undefined_length
    if ds.original_encoding in by_encoding and not encapsulated:
        file_meta.TransferSyntaxUID = by_encoding[ds.original_encoding]
        return file_meta.TransferSyntaxUID
    raise TranscodeError(
        f"{_subject(ds)}: its transfer syntax is unknown (no (0002,0010) in file_meta); "
        "set ds.file_meta.TransferSyntaxUID to the syntax it was received in"
    )


def _encode_pixels(ds: Dataset, source: dcm_uid.UID, target: dcm_uid.UID) -> None:
    try:
        # Encode from the decoded array: pydicom 3.0's encoders misread Big Endian and
        # color-by-plane Pixel Data, while its native decoder reads both right.
        arr, _ = get_decoder(source).as_array(ds, as_rgb=False)
        if ds.get("SamplesPerPixel", 1) > 1:
            ds.PlanarConfiguration = 0  # the array is color-by-pixel
        # Lossless only (_ENCODE_TARGETS), so the SOP Instance UID stays (PS3.5 8.2).
        plugin = _encoder_plugins(target)[0]
        ds.compress(target, arr, encoding_plugin=plugin, generate_instance_uid=False)
    except Exception as exc:  # a codec's failure, whatever its type, is a failed transcode
        raise TranscodeError(
            f"{_subject(ds)}: could not encode the pixel data as {_name(target)} "
            f"({type(exc).__name__}: {exc}); {_FIX_PEER}"
        ) from exc


def _decode_pixels(ds: Dataset, source: dcm_uid.UID) -> None:
    compressed_size = len(ds.PixelData)
    errors = []
    # One plugin at a time: pydicom gives up after some plugin failures (e.g. gdcm's
    # "output array is read-only") instead of trying the next plugin.
    for plugin in get_decoder(source).available_plugins:
        try:
            # Same SOP Instance UID, as DCMTK's dcmdjpeg does by default; YBR -> RGB.
            ds.decompress(as_rgb=True, generate_instance_uid=False, decoding_plugin=plugin)
            break
        except Exception as exc:  # a codec's failure, whatever its type, means "next plugin"
            errors.append(f"{plugin}: {type(exc).__name__}: {exc}")
    else:
        raise TranscodeError(
            f"{_subject(ds)}: could not decode the {_name(source)} pixel data "
            f"({'; '.join(errors)}); send it in its own syntax or {_FIX_PEER}"
        )
    if source in _LOSSY_METHOD:
        _mark_lossy(ds, _LOSSY_METHOD[source], compressed_size)


def _encoder_plugins(target: dcm_uid.UID) -> list[str]:
    """pydicom's available encoder plugins for ``target`` that are safe to run in a server."""
    try:
        available = get_encoder(target).available_plugins
    except (NotImplementedError, ValueError):  # pydicom has no encoder for this syntax
        return []
    return [name for name in available if name not in _UNSAFE_ENCODER_PLUGINS.get(target, ())]


def _mark_lossy(ds: Dataset, method: str, compressed_size: int) -> None:
    """Record that these pixels went through lossy compression (PS3.3 C.7.6.1.1.5)."""
    ds.LossyImageCompression = "01"
    if "LossyImageCompressionMethod" not in ds:
        ds.LossyImageCompressionMethod = method
    if "LossyImageCompressionRatio" not in ds and compressed_size:
        ds.LossyImageCompressionRatio = f"{len(ds.PixelData) / compressed_size:.6g}"


def _write(ds: Dataset, implicit: bool, little: bool, *, swap: bool) -> bytes:
    stale = [elem.tag for elem in ds if elem.tag.group == 0x0002 or elem.tag.element == 0x0000]
    for tag in stale:
        del ds[tag]  # file meta never goes in a C-STORE; group lengths would be stale
    if swap:
        # Resolve 'US or SS' / 'OB or OW' with the bytes' own order before swapping them.
        correct_ambiguous_vr(ds, not little)
        _swap_binary_values(ds)
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = implicit
    buffer.is_little_endian = little
    write_dataset(buffer, ds)
    return buffer.getvalue()


def _swap_binary_values(ds: Dataset) -> None:
    """Reverse the byte order of OW/OF/OL/OD/OV values, recursing into sequences."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _swap_binary_values(item)
        elif elem.VR in _SWAP_UNIT and isinstance(elem.value, bytes | bytearray):
            unit = _SWAP_UNIT[elem.VR]
            whole = len(elem.value) - len(elem.value) % unit
            words = array(_ARRAY_CODE[unit], bytes(elem.value[:whole]))
            words.byteswap()
            elem.value = words.tobytes() + bytes(elem.value[whole:])


def _subject(ds: Dataset) -> str:
    sop_class = ds.get("SOPClassUID")
    what = dcm_uid.UID(sop_class).name if sop_class else "data set"
    return f"{what} {ds.get('SOPInstanceUID', '(no SOP Instance UID)')}"


def _name(ts: dcm_uid.UID) -> str:
    return ts.name if ts.name != ts else f"transfer syntax {ts}"
