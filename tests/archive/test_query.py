"""C-FIND matching over the index (PS3.4 C.2.2.2), on SQLite and PostgreSQL: each rule, the
hierarchy, computed attributes, any attribute from the stored header, storage areas."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

from pacsbox.archive import Index
from pacsbox.archive.query import (
    DEFAULT_AREA,
    IDENTIFIER_DOES_NOT_MATCH,
    Query,
    QueryError,
    QueryOptions,
    _from_header,
    _Key,
    retrieve_instances,
    value_matches,
)
from pacsbox.datasets import encode_dataset
from pacsbox.services.qr_models import Model
from tests.archive.headers import EXPLICIT_LE, ct_header, new_uid
from tests.archive.test_index import Database

STUDY_A, STUDY_B, STUDY_C = new_uid(), new_uid(), new_uid()
SERIES_A1, SERIES_A2, SERIES_B1, SERIES_C1 = new_uid(), new_uid(), new_uid(), new_uid()


@pytest.fixture(params=["sqlite", "postgresql"])
def index(request, tmp_path):
    db = Database(request.param, tmp_path)
    idx = db.open()
    add = lambda study, series, n, area=None, **kw: idx.add(  # noqa: E731
        ct_header(study, series, new_uid(), InstanceNumber=n, **kw),
        path=f"{n}.dcm", size=100, transfer_syntax=EXPLICIT_LE, area=area,
    )  # fmt: skip
    patient_a = dict(PatientID="A1", PatientName="Doe^John", StudyDate="20200115",
                     StudyTime="093000", StudyDescription="CT_CHEST 100%", AccessionNumber="ACC1",
                     InstitutionName="St. Mary")  # fmt: skip
    for n in range(3):
        add(STUDY_A, SERIES_A1, n, Modality="CT", SeriesNumber=1, **patient_a)
    add(STUDY_A, SERIES_A2, 9, Modality="SR", SeriesNumber=2, **patient_a)
    add(STUDY_B, SERIES_B1, 1, area="AREA2", PatientID="B2", PatientName="Müller^Jürgen",
        StudyDate="20211231", StudyTime="235959", StudyDescription="CTXCHEST", Modality="MR",
        AccessionNumber="", InstitutionName="Hospital_1")  # fmt: skip
    add(STUDY_C, SERIES_C1, 1, PatientID="C3", PatientName="doe^jane", StudyDate="20190601",
        StudyTime="1200", StudyDescription="", Modality="CT", AccessionNumber="ACC3")  # fmt: skip
    yield idx
    idx.close()
    db.drop()


def find(index: Index, level: str, model=Model.STUDY_ROOT, options=None, **keys) -> list[Dataset]:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    with index.engine.connect() as conn:
        return list(Query(model, identifier, options or QueryOptions("PACSBOX")).run(conn))


def uids(responses, keyword="StudyInstanceUID") -> set[str]:
    return {str(getattr(r, keyword)) for r in responses}


def test_one_response_per_study_with_computed_attributes(index):
    found = find(index, "STUDY", StudyInstanceUID=STUDY_A, ModalitiesInStudy="",
                 NumberOfStudyRelatedSeries="", NumberOfStudyRelatedInstances="",
                 SOPClassesInStudy="")  # fmt: skip
    assert len(found) == 1
    (r,) = found
    assert list(r.ModalitiesInStudy) == ["CT", "SR"]
    assert (r.NumberOfStudyRelatedSeries, r.NumberOfStudyRelatedInstances) == (2, 4)
    assert r.SOPClassesInStudy == "1.2.840.10008.5.1.4.1.1.2"
    assert (r.RetrieveAETitle, r.QueryRetrieveLevel, r.SpecificCharacterSet) == (
        "PACSBOX", "STUDY", "ISO_IR 192",
    )  # fmt: skip


def test_single_value_and_universal_matching(index):
    assert uids(find(index, "STUDY", AccessionNumber="ACC1")) == {STUDY_A}
    assert uids(find(index, "STUDY", AccessionNumber="")) == {STUDY_A, STUDY_B, STUDY_C}
    assert uids(find(index, "STUDY", AccessionNumber="*")) == {STUDY_A, STUDY_B, STUDY_C}


def test_wildcards_and_literal_percent_and_underscore(index):
    assert uids(find(index, "STUDY", StudyDescription="CT?CHEST*")) == {STUDY_A, STUDY_B}
    assert uids(find(index, "STUDY", StudyDescription="CT_CHEST*")) == {STUDY_A}  # _ literal
    assert uids(find(index, "STUDY", StudyDescription="*100%")) == {STUDY_A}
    assert uids(find(index, "STUDY", StudyDescription="*1%0*")) == set()  # % literal
    assert uids(find(index, "STUDY", StudyDescription="ct*")) == set()  # case-sensitive LO


def test_wildcards_only_in_the_vrs_that_have_them(index):
    # PS3.4 C.2.2.2.4: "*" and "?" are wild cards for AE, CS, LO, LT, PN, SH, ST, UC, UR and
    # UT; in a date or a time they are no wild card, and "2020*" is no date
    assert uids(find(index, "STUDY", StudyDate="2020*")) == set()
    assert uids(find(index, "STUDY", StudyDate="20?00115")) == set()
    assert uids(find(index, "STUDY", StudyTime="09*")) == set()
    assert uids(find(index, "STUDY", AccessionNumber="ACC*")) == {STUDY_A, STUDY_C}
    assert not value_matches(["20200115"], _Key(0x00080020, "DA", "STUDY", "2020*"), True)


def test_person_names_match_case_insensitively(index):
    assert uids(find(index, "STUDY", PatientName="DOE*")) == {STUDY_A, STUDY_C}
    assert uids(find(index, "STUDY", PatientName="doe^john")) == {STUDY_A}
    assert uids(find(index, "STUDY", PatientName="MÜLLER*")) == {STUDY_B}
    strict = QueryOptions("PACSBOX", case_insensitive_pn=False)
    assert uids(find(index, "STUDY", options=strict, PatientName="Doe*")) == {STUDY_A}


def test_trailing_name_delimiters_do_not_count(index):
    # PS3.5 6.2: trailing null components and their delimiters may be omitted
    roe = new_uid()
    index.add(
        ct_header(roe, new_uid(), new_uid(), PatientID="R4", PatientName="Roe^Richard^^^"),
        path="roe.dcm", size=100, transfer_syntax=EXPLICIT_LE,
    )  # fmt: skip
    for name in ("ROE^RICHARD", "Roe^Richard^^^", "roe^richard^", "Roe^Richard^^^^="):
        assert uids(find(index, "STUDY", PatientName=name)) == {roe}, name
    assert uids(find(index, "STUDY", PatientName="DOE^JOHN^^")) == {STUDY_A}
    assert find(index, "STUDY", PatientName="ROE^RICH") == []


def test_date_and_time_ranges(index):
    assert uids(find(index, "STUDY", StudyDate="20200101-20211231")) == {STUDY_A, STUDY_B}
    assert uids(find(index, "STUDY", StudyDate="-20191231")) == {STUDY_C}
    assert uids(find(index, "STUDY", StudyDate="20211231-")) == {STUDY_B}
    assert uids(find(index, "STUDY", StudyTime="0900-1200")) == {STUDY_A, STUDY_C}
    assert uids(find(index, "STUDY", StudyTime="-1159")) == {STUDY_A}
    assert uids(find(index, "STUDY", StudyTime="2359-")) == {STUDY_B}


def test_a_single_time_matches_the_same_time_however_spelled(index):
    # PS3.4 C.2.2.2.1: values that match the key's value; 0930 and 093000.000 are 09:30:00
    assert uids(find(index, "STUDY", StudyTime="093000")) == {STUDY_A}
    assert uids(find(index, "STUDY", StudyTime="093000.000")) == {STUDY_A}
    assert uids(find(index, "STUDY", StudyTime="0930")) == {STUDY_A}
    assert uids(find(index, "STUDY", StudyTime="120000")) == {STUDY_C}  # stored as 1200
    assert uids(find(index, "STUDY", StudyTime="093001")) == set()


def test_a_single_date_in_the_acr_nema_form(index):
    # PS3.5 6.2 DA: yyyy.mm.dd is to be understood too; ranges took it already
    assert uids(find(index, "STUDY", StudyDate="2020.01.15")) == {STUDY_A}
    assert uids(find(index, "STUDY", StudyDate="2020.01.01-2020.12.31")) == {STUDY_A}


def test_combined_date_time_when_negotiated(index):
    keys = dict(StudyDate="20200101-20211231", StudyTime="0900-0800")
    assert uids(find(index, "STUDY", **keys)) == set()  # no time is after 9:00 and before 8:00
    combined = QueryOptions("PACSBOX", combined_datetime=True)
    # from 2020-01-01 09:00 to 2021-12-31 08:00: A (2020-01-15 09:30), not B (23:59:59)
    assert uids(find(index, "STUDY", options=combined, **keys)) == {STUDY_A}


def test_uid_list_and_empty_value_matching(index):
    assert uids(find(index, "STUDY", StudyInstanceUID=f"{STUDY_A}\\{STUDY_C}")) == {
        STUDY_A, STUDY_C,
    }  # fmt: skip
    assert uids(find(index, "STUDY", AccessionNumber='""')) == {STUDY_B}


def test_a_key_of_several_values_matches_when_each_is_among_the_stored_ones(index):
    """Without Multiple Value Matching negotiated its semantics are the SCP's (PS3.4
    C.2.2.2.8): here each value of the key must match one of the attribute's, in any order,
    so a multi-valued attribute is found by its whole value (it never was: the key was
    matched whole against each stored value)."""
    study, series, sop = new_uid(), new_uid(), new_uid()
    index.add(ct_header(study, series, sop, ImageType=["ORIGINAL", "PRIMARY", "AXIAL"],
                        PixelSpacing=["0.661468", "0.661468"]),
              path="mv.dcm", size=100, transfer_syntax=EXPLICIT_LE)  # fmt: skip

    def count(**keys) -> int:
        return len(find(index, "IMAGE", SeriesInstanceUID=series, **keys))

    assert count(ImageType="ORIGINAL\\PRIMARY\\AXIAL") == 1
    assert count(ImageType="AXIAL\\ORIGINAL") == 1  # any order, some of them
    assert count(ImageType="AXIAL") == 1
    assert count(ImageType="ORIGINAL\\LOCALIZER") == 0  # each must be there
    assert count(PixelSpacing="0.661468\\0.661468") == 1


def test_any_attribute_from_the_header_private_included(index):
    found = find(index, "STUDY", InstitutionName="Hospital?1")
    assert uids(found) == {STUDY_B} and found[0].InstitutionName == "Hospital_1"
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.SeriesInstanceUID = SERIES_A1
    identifier.add_new(0x00090010, "LO", "GEMS_IDEN_01")
    identifier.add_new(0x00091002, "SH", "CT01")  # CT_small's private Suite Id
    with index.engine.connect() as conn:
        found = list(Query(Model.STUDY_ROOT, identifier, QueryOptions("X")).run(conn))
    assert len(found) == 3 and found[0][0x00091002].value == "CT01"
    # a private creator asked for alone is returned as stored (never matched: the block
    # numbers of an identifier need not be the stored ones)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.SeriesInstanceUID = SERIES_A1
    identifier.add_new(0x00090010, "LO", "")
    identifier.add_new(0x00430010, "LO", "SOMEONE ELSE")
    with index.engine.connect() as conn:
        found = list(Query(Model.STUDY_ROOT, identifier, QueryOptions("X")).run(conn))
    assert [(r[0x00090010].value, r[0x00430010].value) for r in found] == [
        ("GEMS_IDEN_01", "GEMS_PARM_01")
    ] * 3


def test_ds_and_is_are_returned_as_stored(index):
    """A C-FIND answer returns DS and IS values from the header as the instance holds them,
    as Orthanc and dcmqrscp do (they were rewritten through numbers: "5.000000" as "5.0",
    "1234567890123456" as 18 characters, past DS's 16). Series and Instance Number come
    from their integer columns: "007" is answered as "7", the same number."""
    study, series, sop = new_uid(), new_uid(), new_uid()
    index.add(
        ct_header(study, series, sop, SliceThickness="5.000000", SeriesNumber="007",
                  InstanceNumber="+0001", SpacingBetweenSlices="1234567890123456",
                  PixelSpacing=["1e-7", "-0"], EchoNumbers="+02"),
        path="ds.dcm", size=100, transfer_syntax=EXPLICIT_LE,
    )  # fmt: skip
    (r,) = find(index, "IMAGE", SOPInstanceUID=sop, SliceThickness="", SeriesNumber="",
                InstanceNumber="", SpacingBetweenSlices="", PixelSpacing="",
                EchoNumbers="")  # fmt: skip
    encoded = encode_dataset(r, EXPLICIT_LE)
    for text in (b"5.000000", b"1234567890123456", b"1e-7\\-0", b"+02"):
        assert text in encoded, (text, r)
    assert (str(r.SeriesNumber), str(r.InstanceNumber)) == ("7", "1")
    (r,) = find(index, "IMAGE", SOPInstanceUID=sop, SliceThickness="5")  # matched as numbers
    assert b"5.000000" in encode_dataset(r, EXPLICIT_LE)


def test_numbers_in_an_older_header_document_are_returned_as_valid_text():
    """Documents written before the index kept the text (and pydicom's) hold DS and IS as
    JSON Numbers: each comes back as valid DICOM text, at most 16 characters for DS."""
    header = {
        "00180088": {"vr": "DS", "Value": [1234567890123456.0]},
        "00180050": {"vr": "DS", "Value": [5.0]},
        "00280030": {"vr": "DS", "Value": [0.661468, 1e-06]},
        "00200013": {"vr": "IS", "Value": [7]},
        "00081140": {"vr": "SQ", "Value": [{"00180050": {"vr": "DS", "Value": [2.5]}}]},
    }
    ds = Dataset()
    for tag in (0x00180088, 0x00180050, 0x00280030, 0x00200013, 0x00081140):
        _from_header(ds, header, tag, dictionary_VR(tag))
    encoded = encode_dataset(ds, EXPLICIT_LE)
    assert b"1.2345678901e+15" in encoded and b"1234567890123456.0" not in encoded
    for text in (b"5", b"0.661468\\1e-06", b"7", b"2.5"):
        assert text in encoded
    assert float(ds.SpacingBetweenSlices) == pytest.approx(1234567890123456.0, rel=1e-10)


def test_sequence_matching(index):
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.SeriesInstanceUID = SERIES_A1
    item = Dataset()
    item.CodeValue = "no such code"
    identifier.AnatomicRegionSequence = [item]
    with index.engine.connect() as conn:
        assert list(Query(Model.STUDY_ROOT, identifier, QueryOptions("X")).run(conn)) == []


def test_a_sequence_key_of_zero_length_item_keys_is_universal_matching(index):
    """An item whose keys are all zero length asks for the sequence, it does not filter
    (PS3.4 C.2.2.2.3): every instance matches, those without the sequence too (they were
    all dropped, as Orthanc and worklist clients do not expect)."""
    study, series = new_uid(), new_uid()
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "T-D3000", "SRT"
    for n, with_sequence in enumerate((True, False, False)):
        extra = {"AnatomicRegionSequence": [code]} if with_sequence else {}
        index.add(ct_header(study, series, new_uid(), InstanceNumber=n, **extra),
                  path=f"sq{n}.dcm", size=100, transfer_syntax=EXPLICIT_LE)  # fmt: skip

    def image_find(item: Dataset) -> list[Dataset]:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "IMAGE"
        identifier.SeriesInstanceUID = series
        identifier.AnatomicRegionSequence = [item]
        with index.engine.connect() as conn:
            return list(Query(Model.STUDY_ROOT, identifier, QueryOptions("X")).run(conn))

    asked = Dataset()
    asked.CodeValue = ""
    asked.CodingSchemeDesignator = ""
    found = image_find(asked)
    assert len(found) == 3
    returned = sorted(len(r.AnatomicRegionSequence) for r in found)
    assert returned == [0, 0, 1]
    (with_it,) = [r for r in found if len(r.AnatomicRegionSequence)]
    assert with_it.AnatomicRegionSequence[0].CodeValue == "T-D3000"
    nested = Dataset()
    nested.ModifierSequence = [Dataset()]
    nested.ModifierSequence[0].CodeValue = ""
    assert len(image_find(nested)) == 3
    asked.CodeValue = "T-D3000"  # a value: the instances without it do not match
    assert len(image_find(asked)) == 1


def test_series_and_image_levels_patient_root(index):
    found = find(index, "SERIES", Model.PATIENT_ROOT, PatientID="A1", StudyInstanceUID=STUDY_A,
                 SeriesInstanceUID="", Modality="", NumberOfSeriesRelatedInstances="")  # fmt: skip
    assert {(str(r.Modality), r.NumberOfSeriesRelatedInstances) for r in found} == {
        ("CT", 3), ("SR", 1),
    }  # fmt: skip
    found = find(index, "IMAGE", Model.PATIENT_ROOT, SeriesInstanceUID=SERIES_A1,
                 InstanceNumber="2", SOPInstanceUID="")  # fmt: skip
    assert len(found) == 1 and found[0].InstanceNumber == 2
    found = find(index, "PATIENT", Model.PATIENT_ROOT, PatientName="",
                 NumberOfPatientRelatedStudies="", NumberOfPatientRelatedInstances="")  # fmt: skip
    counts = {str(r.PatientName): (r.NumberOfPatientRelatedStudies,
                                   r.NumberOfPatientRelatedInstances) for r in found}  # fmt: skip
    assert counts["Doe^John"] == (1, 4) and len(counts) == 3


def test_a_key_below_the_level_is_refused_with_its_reason(index):
    with pytest.raises(QueryError, match="Modality is a SERIES key") as caught:
        find(index, "STUDY", Modality="CT")
    assert caught.value.status == IDENTIFIER_DOES_NOT_MATCH
    with pytest.raises(QueryError, match="QueryRetrieveLevel"):
        find(index, "SERIES", Model.PATIENT_STUDY_ONLY)
    identifier = Dataset()
    identifier.PatientName = "*"
    with pytest.raises(QueryError, match="add one of"):
        Query(Model.STUDY_ROOT, identifier, QueryOptions())


def test_a_storage_area_sees_its_instances_only(index):
    area = QueryOptions("AREA2", area="AREA2")
    assert uids(find(index, "STUDY", options=area)) == {STUDY_B}
    assert uids(find(index, "SERIES", options=area, StudyInstanceUID=STUDY_A)) == set()


def test_the_default_area_sees_the_instances_of_no_area(index):
    """DEFAULT_AREA: pacsbox serve's own AE title beside its [areas]."""
    default = QueryOptions("PACSBOX", area=DEFAULT_AREA)
    assert uids(find(index, "STUDY", options=default)) == {STUDY_A, STUDY_C}
    assert uids(find(index, "PATIENT", Model.PATIENT_ROOT, default), "PatientID") == {"A1", "C3"}
    found = find(index, "STUDY", options=default, StudyInstanceUID=STUDY_A,
                 NumberOfStudyRelatedInstances="", ModalitiesInStudy="")  # fmt: skip
    assert [(r.NumberOfStudyRelatedInstances, list(r.ModalitiesInStudy)) for r in found] == [
        (4, ["CT", "SR"])
    ]
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = f"{STUDY_A}\\{STUDY_B}"
    with index.engine.connect() as conn:
        _, instances = retrieve_instances(conn, Model.STUDY_ROOT, identifier, DEFAULT_AREA)
        _, in_area2 = retrieve_instances(conn, Model.STUDY_ROOT, identifier, "AREA2")
    assert len(instances) == 4 and {i.area for i in instances} == {None}
    assert [i.area for i in in_area2] == ["AREA2"]


_TEXT = st.text(alphabet="AB%_^ \\.xyz", min_size=1, max_size=12)


@given(value=_TEXT, data=st.data())
def test_a_value_matches_itself_and_its_wildcard_forms(value, data):
    value = value.replace("\\", "")
    if not value.strip():
        return
    key_chars = [
        data.draw(st.sampled_from([c, "?", "*"])) if c != "*" else c for c in value
    ]  # each character kept, or made a wildcard
    for vr in ("LO", "PN"):
        assert value_matches([value], _Key(0, vr, "", value), True)
        assert value_matches([value], _Key(0, vr, "", "".join(key_chars)), True)
        assert not value_matches([value + "Q"], _Key(0, vr, "", value), True)


RELATIONAL = QueryOptions("PACSBOX", relational=True)


def test_relational_queries_match_keys_below_the_level(index):
    assert uids(find(index, "STUDY", options=RELATIONAL, Modality="MR")) == {STUDY_B}
    both = dict(Modality="SR", SeriesNumber="2")
    assert uids(find(index, "STUDY", options=RELATIONAL, **both)) == {STUDY_A}
    # the keys of one level must hold for the same series: no CT series has number 2
    assert uids(find(index, "STUDY", options=RELATIONAL, Modality="CT", SeriesNumber="2")) == set()
    assert uids(find(index, "STUDY", options=RELATIONAL, InstanceNumber="9")) == {STUDY_A}
    found = find(index, "PATIENT", Model.PATIENT_ROOT, options=RELATIONAL, Modality="C*")
    assert {r.PatientID for r in found} == {"A1", "C3"}
    assert all(r.Modality in ("", None) for r in found)  # asked, returned empty
    # a series attribute with no column: refused with the reason, not answered wrongly
    with pytest.raises(QueryError, match="relational key ProtocolName"):
        find(index, "STUDY", options=RELATIONAL, ProtocolName="CHEST")


def test_fuzzy_person_name_matching_when_negotiated(index):
    fuzzy = QueryOptions("PACSBOX", fuzzy_pn=True)
    assert uids(find(index, "STUDY", options=fuzzy, PatientName="muller jurgen")) == {STUDY_B}
    assert uids(find(index, "STUDY", options=fuzzy, PatientName="MULLER*")) == {STUDY_B}
    assert uids(find(index, "STUDY", options=fuzzy, PatientName="doe john")) == {STUDY_A}
    assert uids(find(index, "STUDY", PatientName="muller jurgen")) == set()  # not negotiated


def test_date_time_values_with_utc_offsets():
    """DT (PS3.5 6.2: YYYYMMDDHHMMSS.FFFFFF&ZZXX): two offsets, one instant; ranges in UTC."""
    from pacsbox.archive.query import _text_matches

    stored = "20200101120000+0100"  # 11:00 UTC
    assert _text_matches(stored, "20200101060000-0500", "DT", False)  # 11:00 UTC too
    assert not _text_matches(stored, "20200101120000+0000", "DT", False)
    assert _text_matches(stored, "20200101105900+0000-20200101110100+0000", "DT", False)
    assert _text_matches(stored, "20200101060000-0500-", "DT", False)
    assert not _text_matches(stored, "-20200101055900-0500", "DT", False)
    assert _text_matches("20200101120000", "2020-2020", "DT", False)  # a year covers itself
