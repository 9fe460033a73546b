"""DCMTK's -k syntax: what each form builds, what DCMTK refuses, and round trips."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from pacsbox.query_keys import (
    QueryKeyError,
    apply_keys,
    build_identifier,
    dataset_to_dict,
    dataset_to_keys,
    parse_key,
)


def test_the_tutorials_keys():
    ds = build_identifier(
        ["QueryRetrieveLevel=STUDY", "StudyDate", "StudyDescription", "StudyInstanceUID"]
    )
    assert ds.QueryRetrieveLevel == "STUDY"
    for keyword in ("StudyDate", "StudyDescription", "StudyInstanceUID"):
        assert ds[keyword].is_empty  # universal matching: zero length
    assert [e.keyword for e in ds] == [
        "StudyDate",
        "QueryRetrieveLevel",
        "StudyDescription",
        "StudyInstanceUID",
    ]


@pytest.mark.parametrize("key", ["PatientName=DOE^J*", "(0010,0010)=DOE^J*", "0010,0010=DOE^J*"])
def test_keyword_and_both_tag_spellings(key):
    ds = build_identifier([key])
    assert ds[0x00100010].VR == "PN" and ds.PatientName == "DOE^J*"


def test_empty_value_and_no_value_are_both_universal():
    ds = build_identifier(["PatientID=", "PatientName"])
    assert ds["PatientID"].is_empty and ds["PatientName"].is_empty


def test_a_value_may_contain_equals_signs():
    assert build_identifier(["StudyDescription=a=b"]).StudyDescription == "a=b"


def test_backslash_separates_values_except_in_single_valued_vrs():
    ds = build_identifier(["ModalitiesInStudy=CT\\MR", "StudyComments=a\\b"])
    assert list(ds.ModalitiesInStudy) == ["CT", "MR"]
    assert ds[0x00324000].VR == "LT" and ds[0x00324000].value == "a\\b"


def test_date_range_and_numbers():
    ds = build_identifier(["StudyDate=20130101-20141231", "Rows=512", "PixelSpacing=0.5\\0.5"])
    assert ds.StudyDate == "20130101-20141231"
    assert ds.Rows == 512
    assert [float(v) for v in ds.PixelSpacing] == [0.5, 0.5]


def test_nested_paths_as_dcmtk_accepts_them():
    ds = build_identifier(
        ["ReferencedStudySequence[0].StudyInstanceUID=1.2", "(0008,1110)[0].(0008,1150)"]
    )
    (item,) = ds.ReferencedStudySequence
    assert item.StudyInstanceUID == "1.2" and item["ReferencedSOPClassUID"].is_empty


def test_missing_items_are_created_and_a_path_may_end_in_an_item():
    ds = build_identifier(["OtherPatientIDsSequence[2].PatientID=X", "ProcedureCodeSequence[0]"])
    assert len(ds.OtherPatientIDsSequence) == 3
    assert ds.OtherPatientIDsSequence[2].PatientID == "X"
    assert len(ds.ProcedureCodeSequence) == 1 and len(ds.ProcedureCodeSequence[0]) == 0


def test_star_applies_to_every_item():
    ds = build_identifier(
        ["ReferencedSeriesSequence[1].SeriesInstanceUID=2", "ReferencedSeriesSequence[*].Modality"]
    )
    assert all("Modality" in item for item in ds.ReferencedSeriesSequence)


def test_a_sequence_key_without_items_is_an_empty_sequence_and_keeps_items_it_has():
    assert build_identifier(["ReferencedStudySequence"]).ReferencedStudySequence == Sequence()
    ds = build_identifier(
        ["ReferencedStudySequence[0].StudyInstanceUID=1", "ReferencedStudySequence"]
    )
    assert len(ds.ReferencedStudySequence) == 1  # as DCMTK: the key does not wipe the items


def test_later_keys_override_earlier_ones_and_the_query_file():
    base = Dataset()
    base.PatientName = "FROM^FILE"
    base.PatientID = "123"
    ds = build_identifier(["PatientName=A", "PatientName=B", "PatientID"], base)
    assert ds.PatientName == "B"
    assert ds["PatientID"].is_empty  # DCMTK: -k PatientID empties what the file had


def test_private_tags_as_dcmtk_treats_them():
    ds = build_identifier(["(0009,0010)=ACME", "(0009,1001)", "(0011,1001):LO=x"])
    assert ds[0x00090010].VR == "LO" and ds[0x00090010].value == "ACME"  # private creator
    assert ds[0x00091001].VR == "UN" and ds[0x00091001].is_empty  # DCMTK's "??"
    assert ds[0x00111001].VR == "LO" and ds[0x00111001].value == "x"  # our ':VR'


def test_a_private_tag_known_by_its_creator_gets_its_vr():
    ds = build_identifier(["(0019,0010)=GEMS_ACQU_01", "(0019,1002)=5"])
    assert ds[0x00191002].VR == "SL" and ds[0x00191002].value == 5


def test_non_ascii_values_add_utf8_character_set():
    ds = build_identifier(["PatientName=Müller"])
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    base = Dataset()
    base.SpecificCharacterSet = "ISO_IR 100"
    assert build_identifier(["PatientName=Müller"], base).SpecificCharacterSet == "ISO_IR 100"
    assert "SpecificCharacterSet" not in build_identifier(["PatientName=DOE"])


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("PatientNam=x", ["'PatientNam'", "did you mean PatientName"]),
        ("(0009,1002)=x", ["(0009,1002)", "VR", "(0009,1002):LO=x"]),
        ("PatientName.PatientID", ["PatientName[0]"]),
        ("ReferencedStudySequence=1", ["sequence", "ReferencedStudySequence[0]."]),
        ("Rows=abc", ["'abc'", "US"]),
        ("(0002,0010)=1.2", ["file meta"]),
        ("=x", ["no attribute"]),
        ("PatientName:XY=a", ["'XY' is not a DICOM VR"]),
        ("StudyDate[0]", ["StudyDate is DA, not a sequence"]),
        ("ReferencedStudySequence[*].StudyDate", ["[*] needs items"]),
    ],
)
def test_errors_name_the_key_and_show_an_example(key, words):
    with pytest.raises(QueryKeyError) as info:
        build_identifier([key])
    message = str(info.value)
    assert repr(key) in message and "e.g." in message
    for word in words:
        assert word in message


def test_parse_key_keeps_the_path_and_value():
    key = parse_key("(0008,1110)[3].StudyInstanceUID=1.2")
    assert [(s.tag, s.item) for s in key.steps] == [(0x00081110, 3), (0x0020000D, None)]
    assert key.value == "1.2" and parse_key("PatientID").value is None


def test_dataset_to_dict():
    ds = build_identifier(
        [
            "PatientName=DOE^JOHN",
            "ModalitiesInStudy=CT\\MR",
            "StudyDate",
            "Rows=512",
            "ReferencedStudySequence[0].StudyInstanceUID=1.2",
            "(0009,0010)=ACME",
        ]
    )
    assert dataset_to_dict(ds) == {
        "StudyDate": "",
        "ModalitiesInStudy": ["CT", "MR"],
        "ReferencedStudySequence": [{"StudyInstanceUID": "1.2"}],
        "00090010": "ACME",
        "PatientName": "DOE^JOHN",
        "Rows": "512",
    }


def test_dataset_to_dict_decodes_with_the_character_set():
    from pacsbox.datasets import decode_dataset, encode_dataset

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "MÜLLER^HANS"
    raw = encode_dataset(ds, "1.2.840.10008.1.2.1")
    assert b"M\xdcLLER" in raw
    assert dataset_to_dict(decode_dataset(raw, "1.2.840.10008.1.2.1"))["PatientName"] == (
        "MÜLLER^HANS"
    )


# -- round trips: Dataset -> keys -> Dataset -------------------------------------------------

_TEXT = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=0x24F),
    min_size=1,
    max_size=8,
)
_CS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=8)
_UID = st.lists(st.integers(0, 99999), min_size=2, max_size=6).map(
    lambda parts: ".".join(map(str, parts))
)
# keyword -> strategy of its value (a list means multi-valued)
_LEAVES = {
    "PatientName": _TEXT.map(lambda t: f"{t}^{t}"),
    "PatientID": _TEXT,
    "StudyDescription": _TEXT,
    "ModalitiesInStudy": st.lists(_CS, min_size=1, max_size=3),
    "StudyInstanceUID": _UID,
    "StudyDate": st.dates(date(1900, 1, 1), date(2099, 12, 31)).map(lambda d: d.strftime("%Y%m%d")),
    "Rows": st.integers(0, 65535),
    "NumberOfStudyRelatedInstances": st.integers(0, 10**6).map(str),
    "AccessionNumber": st.just(""),
}
_SEQUENCES = ("ReferencedStudySequence", "OtherPatientIDsSequence", "ProcedureCodeSequence")


def _datasets(depth: int) -> st.SearchStrategy[Dataset]:
    leaves = st.dictionaries(st.sampled_from(sorted(_LEAVES)), st.none(), max_size=5).flatmap(
        lambda chosen: st.fixed_dictionaries({k: _LEAVES[k] for k in chosen})
    )
    if depth == 0:
        return leaves.map(_build)
    items = st.lists(_datasets(depth - 1), max_size=2)
    seqs = st.dictionaries(st.sampled_from(_SEQUENCES), items, max_size=2)
    return st.tuples(leaves, seqs).map(lambda t: _build({**t[0], **t[1]}))


def _build(values: dict) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        if keyword in _SEQUENCES:
            setattr(ds, keyword, Sequence(value))
        else:
            setattr(ds, keyword, value)
    return ds


@settings(max_examples=150, deadline=None)
@given(_datasets(2))
def test_round_trip_dataset_keys_dataset(ds):
    keys = dataset_to_keys(ds)
    rebuilt = build_identifier(keys)
    if "SpecificCharacterSet" in rebuilt and "SpecificCharacterSet" not in ds:
        del rebuilt.SpecificCharacterSet  # added for the non-ASCII text
    assert rebuilt == ds, keys
    assert dataset_to_keys(rebuilt) == keys


def test_round_trip_of_private_and_binary_values():
    ds = build_identifier(
        [
            "(0009,0010)=ACME",
            "(0009,1001)",
            "(0011,1001):LO=x",
            "(0011,1002):OB=01\\02",
            "DimensionIndexPointer=(0010,0010)\\(0008,0020)",
            "SelectorFDValue=1.25",
        ]
    )
    keys = dataset_to_keys(ds)
    assert "(0011,1001):LO=x" in keys and "(0009,1001)=" in keys
    assert build_identifier(keys) == ds
    assert apply_keys(Dataset(), keys) == ds
