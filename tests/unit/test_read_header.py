"""read_header: the storage SCP's reading of a received data set's header, from the 64 KiB
head it keeps in memory or from the file; a data set cut short is refused wherever the cut
falls, a header longer than the head is read whole."""

from __future__ import annotations

import struct
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from pacsbox.services.storage_scp import HEAD_BYTES, read_stored_header
from tests.storage_data import dataset_offset, save_file


def header_bytes(tmp_path: Path) -> tuple[pydicom.Dataset, int]:
    """CT_small without its Pixel Data (nor what follows it), and its encoded length."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for tag in [elem.tag for elem in ds if elem.tag >= 0x7FE00000]:
        del ds[tag]
    data = (save_file(ds, tmp_path / "h.dcm")).read_bytes()
    return ds, len(data) - dataset_offset(data)


def test_a_stored_file_cut_in_its_last_element_is_refused(tmp_path):
    ds, _ = header_bytes(tmp_path)
    ds.add_new(0x60003000, "OW", bytes(100_000))  # past the head: the file is walked
    data = save_file(ds, tmp_path / "whole.dcm").read_bytes()
    assert read_stored_header(tmp_path / "whole.dcm")[0] is not None
    (tmp_path / "cut.dcm").write_bytes(data[:-5])
    with pytest.raises(ValueError, match="cut short: element runs past the end"):
        read_stored_header(tmp_path / "cut.dcm")
    (tmp_path / "cut-small.dcm").write_bytes(data[: -100_000 - 5])  # inside the head
    with pytest.raises(ValueError, match="cut short"):
        read_stored_header(tmp_path / "cut-small.dcm")


def test_an_element_header_cut_by_the_end_of_the_head_is_read_from_the_file(tmp_path):
    """pydicom stops without a word at an element header the head's end cuts: that is not
    where Pixel Data starts, so the header is read from the file, every element in it."""
    ds, length = header_bytes(tmp_path)
    # Overlay Data long enough that the next element's header starts 6 bytes before the end
    # of the head (its tag readable, its length not)
    ds.add_new(0x60003000, "OW", bytes(HEAD_BYTES - 6 - length - 12))
    ds.add_new(0x60023000, "OW", bytes(100))
    file = save_file(ds, tmp_path / "long.dcm")
    data = file.read_bytes()
    at = dataset_offset(data) + HEAD_BYTES - 6
    assert struct.unpack_from("<HH", data, at) == (0x6002, 0x3000)
    header, _ = read_stored_header(file)
    assert 0x60023000 in header
