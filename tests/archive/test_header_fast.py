"""The indexed attributes decoded from raw values agree with pydicom's decoding, on every
test file pydicom ships (character sets included)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

import pacsbox.archive.header as header
from pacsbox.archive.header import HeaderError, header_values

FILES = sorted(p for p in Path(get_testdata_file("CT_small.dcm")).parent.rglob("*.dcm"))


def values(path: Path, monkeypatch, fast: bool):
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(header, "_raw_text", lambda ds, tag: None)
        try:
            ds = dcmread(path, stop_before_pixels=True, force=True)
            return header_values(ds)
        except HeaderError:
            return "no UIDs"
        except Exception as exc:  # unreadable test files: both paths must fail alike
            return type(exc).__name__


@pytest.mark.filterwarnings("ignore")
def test_fast_decoding_agrees_with_pydicom(monkeypatch):
    compared = 0
    for path in FILES:
        fast, slow = values(path, monkeypatch, True), values(path, monkeypatch, False)
        assert fast == slow, path.name
        compared += not isinstance(fast, str)
    assert compared > 50
