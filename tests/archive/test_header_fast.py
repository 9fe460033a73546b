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


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "SC_rgb_small_odd.dcm", "chrH31.dcm"]
)
def test_dumps_writes_what_the_standard_library_writes(name):
    import json

    from pydicom.data import get_charset_files

    from pacsbox.archive.header import dumps, header_json, loads

    path = get_testdata_file(name) or get_charset_files(name)[0]
    document = header_json(dcmread(path, stop_before_pixels=True))
    text = dumps(document)
    assert text == json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    assert loads(text) == document


def test_dumps_takes_pydicom_numbers_and_writes_json_only():
    from pydicom.valuerep import DSfloat

    from pacsbox.archive.header import dumps, loads

    text = dumps({"00181050": {"vr": "DS", "Value": [DSfloat("1.5"), float("nan")]}})
    assert text == '{"00181050":{"vr":"DS","Value":[1.5,null]}}'  # NaN is not JSON
    assert dumps({"x": ["a\x00b", "Müller"]}) == '{"x":["ab","Müller"]}'
    assert loads(dumps({"n": 2**70})) == {"n": 2**70}  # beyond orjson: the standard library
