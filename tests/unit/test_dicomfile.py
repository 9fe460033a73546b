"""PS3.10 files: the fast struct path of read_file_info agrees with pydicom's on every file,
and the meta we write reads back."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

import pacsbox.dicomfile as dicomfile
from pacsbox.dicomfile import NotDicomError, file_meta_bytes, read_file_info

TEST_FILES = sorted(
    p for p in Path(get_testdata_file("CT_small.dcm")).parent.rglob("*") if p.is_file()
)


def reference(path: Path, monkeypatch):
    """read_file_info through pydicom only (the fast path switched off)."""
    with monkeypatch.context() as m:
        m.setattr(dicomfile, "_fast_info", lambda *args: None)
        try:
            return read_file_info(path)
        except NotDicomError:
            return None


@pytest.mark.filterwarnings("ignore")
def test_fast_path_agrees_with_pydicom_on_every_test_file(monkeypatch):
    taken = 0
    for path in TEST_FILES:
        head = path.read_bytes()[: dicomfile._FAST_HEAD]
        fast = dicomfile._fast_info(path, head, path.stat().st_size)
        if fast is not None:
            taken += 1
            assert fast == reference(path, monkeypatch), path.name
    assert taken > 100  # the fast path is the usual one


def test_meta_disagreeing_with_the_data_set_gives_the_data_sets_uids():
    info = read_file_info(get_testdata_file("rtplan.dcm"))
    assert info.sop_instance_uid == str(dcmread(get_testdata_file("rtplan.dcm")).SOPInstanceUID)


def test_dataset_offset_is_where_the_data_set_starts():
    path = Path(get_testdata_file("CT_small.dcm"))
    info = read_file_info(path)
    raw = path.read_bytes()
    assert raw[info.dataset_offset : info.dataset_offset + 4] == b"\x08\x00\x05\x00"


def test_not_dicom_is_refused_with_a_reason(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(NotDicomError, match="not a DICOM file"):
        read_file_info(text)


def test_written_meta_reads_back_with_pydicom(tmp_path):
    ct = Path(get_testdata_file("CT_small.dcm"))
    info = read_file_info(ct)
    meta = file_meta_bytes(
        info.sop_class_uid, info.sop_instance_uid, info.transfer_syntax,
        source_ae="SRC", sending_ae="SEND", receiving_ae="RECV",
    )  # fmt: skip
    out = tmp_path / "copy.dcm"
    out.write_bytes(meta + ct.read_bytes()[info.dataset_offset :])
    ds = dcmread(out)
    assert ds.file_meta.SendingApplicationEntityTitle == "SEND"
    assert ds.file_meta.ReceivingApplicationEntityTitle == "RECV"
    assert ds.SOPInstanceUID == info.sop_instance_uid
    assert read_file_info(out) == dicomfile.FileInfo(
        out, info.sop_class_uid, info.sop_instance_uid, info.transfer_syntax, len(meta),
        out.stat().st_size,
    )  # fmt: skip
