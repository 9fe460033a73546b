"""Small data sets (C-FIND identifiers, N-service attribute lists) to and from the bytes of
a transfer syntax, through pydicom. Bulk data (C-STORE) never comes here: it is sent and
received as bytes (dicomfile, storage_scp).
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from .dicomfile import dataset_encoding
from .syntaxes import DEFLATED

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


def encode_dataset(ds: Dataset, transfer_syntax: str) -> bytes:
    """``ds`` encoded in ``transfer_syntax`` (deflated ones deflated, PS3.5 A.5)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    implicit, little = dataset_encoding(transfer_syntax)
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = implicit
    buffer.is_little_endian = little
    write_dataset(buffer, ds)
    raw = buffer.getvalue()
    if transfer_syntax in DEFLATED:
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        raw = compressor.compress(raw) + compressor.flush()
    return raw


def decode_dataset(raw: bytes | bytearray | memoryview, transfer_syntax: str) -> Dataset:
    """The data set in ``raw``; its elements stay raw until used (pydicom decodes text with
    the data set's Specific Character Set when a value is read)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset

    data = bytes(raw)
    if transfer_syntax in DEFLATED:
        data = zlib.decompress(data, -zlib.MAX_WBITS)
    implicit, little = dataset_encoding(transfer_syntax)
    return read_dataset(DicomBytesIO(data), implicit, little)
