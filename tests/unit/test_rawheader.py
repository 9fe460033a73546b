"""The header read from raw bytes (pacsbox.rawheader) against pydicom: the same DICOM JSON on
every test file pydicom ships, or a clean ``Unsupported`` where the fast path hands over."""

from __future__ import annotations

import struct
import warnings
from io import BytesIO
from pathlib import Path

import orjson
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.filereader import _read_file_meta_info, read_preamble

from pacsbox.archive.header import bulk_data_uri
from pacsbox.rawheader import BULK_DATA_THRESHOLD, RawHeader, Unsupported

FILES = sorted(p for p in Path(get_testdata_file("CT_small.dcm")).parent.rglob("*.dcm"))
LITTLE_ENDIAN = {"1.2.840.10008.1.2": True, "1.2.840.10008.1.2.1": False}


def dataset_bytes(path: Path) -> tuple[bytes, bool] | None:
    """The data set after the file meta information, and whether it is implicit VR, for
    little endian files with a meta header; None for the others."""
    data = path.read_bytes()
    fp = BytesIO(data)
    try:
        read_preamble(fp, force=False)
        meta = _read_file_meta_info(fp)
    except Exception:
        return None
    syntax = str(meta.get("TransferSyntaxUID", ""))
    encapsulated = syntax.startswith("1.2.840.10008.1.2.4") or syntax == "1.2.840.10008.1.2.5"
    if syntax not in LITTLE_ENDIAN and not encapsulated:
        return None
    return data[fp.tell() :], LITTLE_ENDIAN.get(syntax, False)


def pydicom_json(path: Path) -> dict:
    ds = dcmread(path, stop_before_pixels=True)
    for tag in (0x7FE00008, 0x7FE00009, 0x7FE00010):
        if tag in ds:
            del ds[tag]
    body = Dataset({tag: ds.get_item(tag) for tag in ds.keys()})  # noqa: SIM118
    return body.to_json_dict(
        bulk_data_threshold=BULK_DATA_THRESHOLD,
        bulk_data_element_handler=bulk_data_uri,
        suppress_invalid_tags=True,
    )


@pytest.mark.filterwarnings("ignore")
def test_raw_json_equals_pydicom_on_its_test_files():
    same = handed_over = 0
    for path in FILES:
        found = dataset_bytes(path)
        if found is None:
            continue
        data, implicit = found
        try:
            fast = RawHeader(data, implicit).to_json()
        except Unsupported:
            handed_over += 1
            continue
        # the index's text of it (element fragments; the second time from their cache)
        for _ in range(2):
            assert RawHeader(data, implicit).to_json_text() == orjson.dumps(fast), path.name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            slow = pydicom_json(path)
        # pydicom's strict reading drops values it finds invalid; we keep them. DS and IS:
        # we keep the text, pydicom writes the number
        numbers = _as_numbers(fast)
        for key, element in slow.items():
            assert numbers.get(key) == element, (
                f"{path.name} {key}: {str(fast.get(key))[:300]} != {str(element)[:300]}"
            )
        extra = set(fast) - set(slow)
        assert len(extra) <= 2, f"{path.name}: only we have {sorted(extra)}"
        same += 1
    assert same > 55, (same, handed_over)


def _as_numbers(document: dict) -> dict:
    """``document`` with its DS and IS strings as pydicom writes them: JSON Numbers."""
    out = {}
    for key, element in document.items():
        values = element.get("Value")
        if values and element["vr"] in ("DS", "IS"):
            kind = float if element["vr"] == "DS" else lambda v: int(float(v))
            element = {**element, "Value": [None if v is None else kind(v) for v in values]}
        elif values and element["vr"] == "SQ":
            element = {**element, "Value": [_as_numbers(item) for item in values]}
        out[key] = element
    return out


def test_ds_and_is_keep_the_text_received():
    """The header document holds DS and IS as sent (JSON Strings, PS3.18 F.2.3 since
    CP-1861), so a C-FIND answer returns them as stored: as numbers "5.000000" came back
    as "5.0", "+0001" as "1", and "1234567890123456" as an 18-character DS."""
    ds = Dataset()
    ds.SliceThickness = "5.000000"
    ds.KVP = ".5"
    ds.RescaleIntercept = "+1.5E+02"
    ds.PixelSpacing = ["1e-7", "-0"]
    ds.SpacingBetweenSlices = "1234567890123456"
    ds.InstanceNumber = "+0001"
    ds.SeriesNumber = "007"
    ds.add_new(0x00181030, "LO", "x")  # something after them
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_dataset(buf, ds)
    doc = RawHeader(buf.getvalue(), implicit=False).to_json()
    values = {key: element.get("Value") for key, element in doc.items()}
    assert values["00180050"] == ["5.000000"]
    assert values["00180060"] == [".5"]
    assert values["00281052"] == ["+1.5E+02"]
    assert values["00280030"] == ["1e-7", "-0"]
    assert values["00180088"] == ["1234567890123456"]
    assert values["00200013"] == ["+0001"]
    assert values["00200011"] == ["007"]
    assert orjson.loads(RawHeader(buf.getvalue(), implicit=False).to_json_text()) == doc


def test_walk_stops_at_pixel_data_and_reads_sequences():
    ds = Dataset()
    ds.PatientName = "Doe^John"
    ds.ReferencedImageSequence = [Dataset(), Dataset()]
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "1.2.3"
    ds.Rows = 2
    ds.BitsAllocated = 16
    ds.PixelData = b"\0" * 8
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, True
    write_dataset(buf, ds)  # defined lengths
    raw = RawHeader(buf.getvalue(), implicit=True)
    assert 0x7FE00010 not in raw.elements and raw.pixel_data_at is not None
    assert raw.text(0x00100010) == "Doe^John"
    doc = raw.to_json()
    assert doc["00081140"]["Value"][0]["00081155"]["Value"] == ["1.2.3"]
    assert doc["00081140"]["Value"][1] == {}
    assert doc["00280010"] == {"vr": "US", "Value": [2]}


def test_undefined_length_sequences_explicit_vr():
    item = struct.pack("<HH2sH", 0x0008, 0x1155, b"UI", 6) + b"1.2.3\0"
    seq = (
        struct.pack("<HH2s2sI", 0x0008, 0x1140, b"SQ", b"\0\0", 0xFFFFFFFF)
        + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
        + item
        + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
        + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    )
    after = struct.pack("<HH2sH", 0x0010, 0x0010, b"PN", 4) + b"A^B "
    raw = RawHeader(seq + after, implicit=False)
    assert raw.to_json()["00081140"]["Value"] == [{"00081155": {"vr": "UI", "Value": ["1.2.3"]}}]
    assert raw.text(0x00100010) == "A^B"


@pytest.mark.parametrize(
    "data",
    [
        b"\x10\x00\x10\x00PN\x08\x00Doe",  # value runs past the end
        b"\x10\x00\x10\x00ZZ\x02\x00AB",  # not a VR
        b"\x08\x00\x40\x11SQ\0\0\xff\xff\xff\xff",  # sequence without its delimiter
        b"\x10\x00\x10\x00",  # stray bytes
    ],
)
def test_malformed_bytes_are_handed_over(data):
    with pytest.raises(Unsupported):
        RawHeader(data, implicit=False).to_json()


@pytest.mark.filterwarnings("ignore")
def test_indexed_values_from_raw_bytes_equal_pydicom():
    from pacsbox.archive.header import HeaderError, header_values

    def values(header):
        try:
            return header_values(header)
        except HeaderError:
            return "no UIDs"

    compared = 0
    for path in FILES:
        found = dataset_bytes(path)
        if found is None:
            continue
        data, implicit = found
        try:
            raw = RawHeader(data, implicit)
        except Unsupported:
            continue
        assert values(raw) == values(dcmread(path, stop_before_pixels=True)), path.name
        compared += 1
    assert compared > 55


def test_a_head_cut_inside_an_element_header_hands_over():
    """The storage SCP keeps the first 64 KiB of a data set: a long-VR element header cut by
    that boundary must hand over to the file (Unsupported), not fail the C-STORE."""
    data = struct.pack("<HH2sH", 0x0010, 0x0010, b"PN", 4) + b"A^B " + b"\x08\x00\x40\x11SQ\0\0"
    with pytest.raises(Unsupported):
        RawHeader(data, implicit=False)


def _explicit(elements: list[tuple[int, bytes, bytes]]) -> bytes:
    out = b""
    for tag, vr, value in elements:
        out += struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value
    return out


def test_cached_text_values_keep_to_their_character_set():
    """The same value bytes under another Specific Character Set are another value: the
    encoder's cache of text values must not hand one's result to the other."""
    name = b"\xe1\xe2\xe3 "  # Latin-1 and ISO 8859-5 read these three bytes differently
    latin = _explicit([(0x00080005, b"CS", b"ISO_IR 100"), (0x00100010, b"PN", name)])
    cyrillic = _explicit([(0x00080005, b"CS", b"ISO_IR 144"), (0x00100010, b"PN", name)])
    for _ in range(2):  # the second round finds both in the cache
        assert RawHeader(latin, False).to_json()["00100010"]["Value"] == [{"Alphabetic": "áâã"}]
        assert RawHeader(cyrillic, False).to_json()["00100010"]["Value"] == [{"Alphabetic": "сту"}]
    same = [RawHeader(latin, False).to_json() for _ in range(2)]
    assert same[0] == same[1]


def test_the_index_columns_read_the_attributes_their_names_say():
    import dataclasses

    from pydicom.datadict import keyword_for_tag

    from pacsbox.archive.header import _COLUMNS, HeaderValues

    keywords = [keyword_for_tag(tag) for tag, _ in _COLUMNS]
    names = [f.name for f in dataclasses.fields(HeaderValues)]
    assert dict(zip(names, keywords, strict=True)) == {
        "patient_id": "PatientID", "issuer": "IssuerOfPatientID", "patient_name": "PatientName",
        "birth_date": "PatientBirthDate", "sex": "PatientSex",
        "study_instance_uid": "StudyInstanceUID", "study_date": "StudyDate",
        "study_time": "StudyTime", "accession_number": "AccessionNumber", "study_id": "StudyID",
        "study_description": "StudyDescription",
        "referring_physician": "ReferringPhysicianName",
        "series_instance_uid": "SeriesInstanceUID", "modality": "Modality",
        "series_number": "SeriesNumber", "series_description": "SeriesDescription",
        "body_part": "BodyPartExamined", "series_date": "SeriesDate",
        "series_time": "SeriesTime", "sop_instance_uid": "SOPInstanceUID",
        "sop_class_uid": "SOPClassUID", "instance_number": "InstanceNumber",
    }  # fmt: skip
    assert [integer for _, integer in _COLUMNS].count(True) == 2


def _series_header(implicit: bool, number: int, position: str, name: str, extra: bool) -> bytes:
    """A CT-like header of one series: UIDs and numbers change per instance, the rest not."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = f"1.2.3.4.{number}"
    ds.Modality = "CT"
    ds.ReferencedImageSequence = [Dataset()]
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = f"1.2.3.9.{number % 2}"
    ds.PatientName = name
    ds.PatientID = "P1"
    if extra:
        ds.PatientComments = "a comment"
    ds.SeriesInstanceUID = "1.2.3.5"
    ds.InstanceNumber = number
    ds.ImagePositionPatient = position
    # "US or SS": in implicit VR, Pixel Representation says which; the same two bytes
    signed = number % 3 == 0
    ds.SmallestImagePixelValue = number
    ds.LargestImagePixelValue = -1 if signed else 0xFFFF
    ds.PixelRepresentation = int(signed)
    ds.Rows = 2
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, implicit
    write_dataset(buf, ds)
    return buf.getvalue()


@pytest.mark.parametrize("implicit", [False, True])
def test_a_series_written_from_templates_is_written_as_element_by_element(implicit):
    """Headers of one layout reuse the first one's text where their bytes are the same
    (rawheader._Template); every document is still exactly the encoder's: values that
    change length, an element that changes in a stretch thought steady, a sequence, a
    header of another layout in between, Pixel Representation changing "US or SS"."""
    names = ["Doe^John"] * 5 + ["Doe^Johnny", "Roe^Jane"]
    for number in range(1, 30):
        position = f"-{number}.5\\{number * 7}\\{-number * 11.25}"
        name = names[number % len(names)]
        data = _series_header(implicit, number, position, name, extra=number % 10 == 0)
        raw = RawHeader(data, implicit)
        assert raw.to_json_text() == orjson.dumps(raw.to_json()), number
