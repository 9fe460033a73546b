"""Transfer syntax conversion: pixels survive, lossy history is kept, DCMTK reads the result.

Sources are pydicom's bundled test files and files DCMTK makes from CT_small.dcm into tmp_path.
"""

from __future__ import annotations

import copy
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid as dcm_uid
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info

from pacsbox import transcode as transcode_module
from pacsbox.errors import PacsboxError
from pacsbox.transcode import TranscodeError, can_transcode, transcode

ELE = dcm_uid.ExplicitVRLittleEndian
ILE = dcm_uid.ImplicitVRLittleEndian
EBE = dcm_uid.ExplicitVRBigEndian
DEFLATED = dcm_uid.DeflatedExplicitVRLittleEndian
NATIVE = [ELE, ILE, DEFLATED, EBE]


def _file(name: str) -> str:
    path = get_testdata_file(name)
    assert path, f"pydicom's test file {name} is missing"
    return str(path)


def _dcmtk(
    tool: str, *args: str | Path, warnings: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK tool; it must succeed and print no error (nor warning, unless allowed)."""
    done = subprocess.run([tool, *map(str, args)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{tool} failed: {done.stderr}"
    assert "E: " not in done.stderr and "F: " not in done.stderr, done.stderr
    assert warnings or "W: " not in done.stderr, done.stderr
    return done


def _as_part10(data: bytes, ts: str, sop: pydicom.Dataset) -> bytes:
    """Wrap a transcoded data set in a preamble and file meta, as a storage SCP would."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop.get("SOPClassUID", dcm_uid.SecondaryCaptureImageStorage)
    meta.MediaStorageSOPInstanceUID = sop.get("SOPInstanceUID", dcm_uid.generate_uid())
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = dcm_uid.PYDICOM_IMPLEMENTATION_UID
    fp = DicomBytesIO()
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, meta)
    return fp.getvalue() + data


def _read(data: bytes, ts: str, sop: pydicom.Dataset) -> pydicom.Dataset:
    return pydicom.dcmread(DicomBytesIO(_as_part10(data, ts, sop)))


@pytest.fixture(scope="module")
def dcmtk_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """CT_small.dcm compressed by DCMTK: JPEG lossless SV1, JPEG-LS lossless, RLE."""
    out = tmp_path_factory.mktemp("dcmtk")
    ct = _file("CT_small.dcm")
    files = {"jpeg_lossless": out / "ct_jpeg_sv1.dcm", "jpls": out / "ct_jpls.dcm"}
    files["rle"] = out / "ct_rle.dcm"
    _dcmtk("dcmcjpeg", "+e1", ct, files["jpeg_lossless"])
    _dcmtk("dcmcjpls", "+el", ct, files["jpls"])
    _dcmtk("dcmcrle", ct, files["rle"])
    return files


LOSSLESS_SOURCES = [
    "MR_small_RLE.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",  # multi-frame
    "MR_small_jp2klossless.dcm",
    "GDCMJ2K_TextGBR.dcm",  # YBR_RCT -> RGB
    "MR_small_jpeg_ls_lossless.dcm",
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG Lossless SV1
    "image_dfl.dcm",
    "MR_small_bigendian.dcm",
    "rtdose.dcm",  # 15 frames, 32 bits
]


@pytest.mark.parametrize("target", [ELE, ILE, DEFLATED])
@pytest.mark.parametrize("name", LOSSLESS_SOURCES)
def test_lossless_source_keeps_every_pixel(name: str, target: str) -> None:
    source = pydicom.dcmread(_file(name))
    out = _read(transcode(_file(name), target), target, source)
    assert out.file_meta.TransferSyntaxUID == target
    assert out.SOPInstanceUID == source.SOPInstanceUID
    assert not out["PixelData"].is_undefined_length
    np.testing.assert_array_equal(out.pixel_array, source.pixel_array)
    assert out.get("LossyImageCompression") == source.get("LossyImageCompression")


@pytest.mark.parametrize("kind", ["jpeg_lossless", "jpls", "rle"])
@pytest.mark.parametrize("target", [ELE, ILE])
def test_dcmtk_compressed_ct_decodes_to_the_original(
    dcmtk_files: dict[str, Path], kind: str, target: str
) -> None:
    original = pydicom.dcmread(_file("CT_small.dcm"))
    out = _read(transcode(dcmtk_files[kind], target), target, original)
    np.testing.assert_array_equal(out.pixel_array, original.pixel_array)
    assert out.PhotometricInterpretation == "MONOCHROME2"


LOSSY_SOURCES = {
    "JPGExtended.dcm": ("MONOCHROME2", "ISO_10918_1"),
    "SC_rgb_jpeg_dcmtk.dcm": ("RGB", "ISO_10918_1"),  # YBR_FULL baseline
    "SC_rgb_dcmtk_+eb+cy+np.dcm": ("RGB", "ISO_10918_1"),  # YBR_FULL_422 baseline
    "examples_ybr_color.dcm": ("RGB", "ISO_10918_1"),  # 30 frames, YBR_FULL_422
    "JPEG2000.dcm": ("MONOCHROME2", "ISO_15444_1"),
    "SC_rgb_gdcm_KY.dcm": ("RGB", "ISO_15444_1"),
    "JPEGLSNearLossless_08.dcm": ("MONOCHROME2", "ISO_14495_1"),  # no (0028,2110) in source
    "SC_rgb_jls_lossy_sample.dcm": ("RGB", "ISO_14495_1"),
}


@pytest.mark.parametrize("target", [ELE, ILE])
@pytest.mark.parametrize("name", sorted(LOSSY_SOURCES))
def test_lossy_source_is_marked_lossy(name: str, target: str) -> None:
    photometric, method = LOSSY_SOURCES[name]
    source = pydicom.dcmread(_file(name))
    out = _read(transcode(_file(name), target), target, source)
    assert out.LossyImageCompression == "01"
    assert out.PhotometricInterpretation == photometric
    assert out.SOPInstanceUID == source.SOPInstanceUID
    if "LossyImageCompressionMethod" in source:
        assert out.LossyImageCompressionMethod == source.LossyImageCompressionMethod
    else:
        assert out.LossyImageCompressionMethod == method
    if "LossyImageCompressionRatio" in source:
        assert out.LossyImageCompressionRatio == source.LossyImageCompressionRatio
    else:
        assert float(out.LossyImageCompressionRatio) > 1
    assert out.get("NumberOfFrames", 1) == source.get("NumberOfFrames", 1)
    # The same decoders made both arrays, so lossy pixels match too.
    np.testing.assert_array_equal(out.pixel_array, source.pixel_array)


def test_lossy_flag_is_never_reset() -> None:
    ds = pydicom.dcmread(_file("JPEG2000.dcm"))
    ds.LossyImageCompression = "01"
    out = _read(transcode(ds, ELE), ELE, ds)
    assert out.LossyImageCompression == "01"
    # An uncompressed image that was lossy once stays lossy through any native syntax.
    lossy = pydicom.dcmread(_file("SC_ybr_full_422_uncompressed.dcm"))
    for target in (ILE, EBE, DEFLATED):
        assert _read(transcode(lossy, target), target, lossy).LossyImageCompression == "01"


def test_deflated_is_raw_deflate_of_explicit_little_endian() -> None:
    source = pydicom.dcmread(_file("CT_small.dcm"))
    data = transcode(source, DEFLATED)
    assert len(data) % 2 == 0
    with pytest.raises(zlib.error):
        zlib.decompress(data)  # PS3.5 A.5: no zlib header
    inflated = zlib.decompress(data, -zlib.MAX_WBITS)
    assert inflated.rstrip(b"\x00") == transcode(source, ELE).rstrip(b"\x00")
    out = _read(data, DEFLATED, source)
    np.testing.assert_array_equal(out.pixel_array, source.pixel_array)


@pytest.mark.parametrize("name", ["MR_small.dcm", "SC_rgb_small_odd.dcm", "MR_small_RLE.dcm"])
def test_big_endian_round_trip(name: str) -> None:
    source = pydicom.dcmread(_file(name))
    big = transcode(source, EBE)
    back = transcode(_read(big, EBE, source), ELE)
    np.testing.assert_array_equal(_read(big, EBE, source).pixel_array, source.pixel_array)
    np.testing.assert_array_equal(_read(back, ELE, source).pixel_array, source.pixel_array)


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "SC_rgb_small_odd.dcm",  # gdcm's RLE encoder aborts the process on this one
        "ExplVR_BigEnd.dcm",  # Big Endian, color-by-plane
        "SC_rgb_rle_2frame.dcm",
        "MR_small_implicit.dcm",
    ],
)
def test_uncompressed_to_rle_round_trip(name: str) -> None:
    assert can_transcode(ELE, dcm_uid.RLELossless)
    source = pydicom.dcmread(_file(name))
    if source.file_meta.TransferSyntaxUID == dcm_uid.RLELossless:
        source.decompress(generate_instance_uid=False)
    rle = transcode(source, dcm_uid.RLELossless)
    out = _read(rle, dcm_uid.RLELossless, source)
    assert out["PixelData"].is_undefined_length
    assert out.SOPInstanceUID == source.SOPInstanceUID
    np.testing.assert_array_equal(out.pixel_array, source.pixel_array)
    native = _read(transcode(out, ELE), ELE, source)
    np.testing.assert_array_equal(native.pixel_array, source.pixel_array)


def test_uncompressed_to_jpeg2000_lossless_round_trip() -> None:
    assert can_transcode(ELE, dcm_uid.JPEG2000Lossless)
    source = pydicom.dcmread(_file("CT_small.dcm"))
    out = _read(transcode(source, dcm_uid.JPEG2000Lossless), dcm_uid.JPEG2000Lossless, source)
    np.testing.assert_array_equal(out.pixel_array, source.pixel_array)


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("SC_rgb_dcmtk_+eb+cy+np.dcm", ELE),
        ("MR_small_jpeg_ls_lossless.dcm", ILE),
        ("image_dfl.dcm", DEFLATED),
        ("MR_small.dcm", EBE),
        ("CT_small.dcm", dcm_uid.RLELossless),
        ("rtplan.dcm", ELE),
    ],
)
def test_dcmtk_reads_the_result(tmp_path: Path, name: str, target: str) -> None:
    source = pydicom.dcmread(_file(name))
    path = tmp_path / "out.dcm"
    path.write_bytes(_as_part10(transcode(_file(name), target), target, source))
    dump = _dcmtk("dcmdump", "+L", path).stdout
    assert f"({source.SOPInstanceUID})" in dump.replace("[", "(").replace("]", ")")
    # dcmconv registers no codec; dcmdrle is DCMTK's RLE decoder.
    converter = "dcmdrle" if target == dcm_uid.RLELossless else "dcmconv"
    _dcmtk(converter, "+te", path, tmp_path / "conv.dcm")
    if "PixelData" in source:
        _dcmtk("dcmdump", "+P", "7fe0,0010", tmp_path / "conv.dcm")
        reread = pydicom.dcmread(tmp_path / "conv.dcm")
        np.testing.assert_array_equal(reread.pixel_array, source.pixel_array)


def test_dcmtk_decodes_the_same_pixels_as_pacsbox(tmp_path: Path) -> None:
    # For a lossy JPEG, DCMTK's dcmdjpeg and pydicom's decoders must agree (IJG vs libjpeg).
    name = _file("SC_rgb_jpeg_dcmtk.dcm")
    _dcmtk("dcmdjpeg", name, tmp_path / "dcmtk.dcm")
    theirs = pydicom.dcmread(tmp_path / "dcmtk.dcm")
    ours = _read(transcode(name, ELE), ELE, theirs)
    assert theirs.PhotometricInterpretation == ours.PhotometricInterpretation == "RGB"
    difference = np.abs(theirs.pixel_array.astype(int) - ours.pixel_array.astype(int))
    assert difference.max() <= 2


@pytest.mark.parametrize("name", ["rtplan.dcm", "test-SR.dcm", "waveform_ecg.dcm"])
@pytest.mark.parametrize("target", [*NATIVE, dcm_uid.JPEGBaseline8Bit])
def test_non_image_only_changes_encoding(name: str, target: str) -> None:
    source = pydicom.dcmread(_file(name))
    out = _read(transcode(source, target), target, source)
    assert out.SOPInstanceUID == source.SOPInstanceUID
    for elem in source:
        if elem.VR == "SQ" or elem.tag.is_private:  # implicit VR reads private tags as UN
            continue
        if target == EBE and elem.VR == "OW":  # raw words, in the peer's byte order
            swapped = np.frombuffer(out[elem.tag].value, ">u2")
            np.testing.assert_array_equal(swapped, np.frombuffer(elem.value, "<u2"))
        else:
            assert out[elem.tag].value == elem.value, elem


def test_non_image_in_a_compressed_syntax_is_reencoded(tmp_path: Path) -> None:
    source = pydicom.dcmread(_file("UN_sequence.dcm"))  # JPEG Lossless SV1, no Pixel Data
    assert "PixelData" not in source
    study = "1.2.840.113619.2.327.3.185221411.476.1398588725.795"  # nested in a private SQ
    for target in NATIVE:
        path = tmp_path / "out.dcm"
        path.write_bytes(_as_part10(transcode(source, target), target, source))
        # Implicit VR: DCMTK warns that it reads the private undefined-length UN as a sequence.
        assert f"[{study}]" in _dcmtk("dcmdump", path, warnings=target == ILE).stdout


def test_result_has_no_file_meta_and_input_dataset_is_untouched() -> None:
    source = pydicom.dcmread(_file("MR_small_RLE.dcm"))
    before = copy.deepcopy(source)
    data = transcode(source, ELE)
    assert not data.startswith(b"\x02\x00")  # no (0002,xxxx) element
    assert b"DICM" not in data[:132]
    assert source.file_meta.TransferSyntaxUID == dcm_uid.RLELossless
    assert source == before


def test_dataset_without_file_meta_uses_its_encoding() -> None:
    source = pydicom.dcmread(_file("CT_small.dcm"))
    del source.file_meta
    out = _read(transcode(source, ILE), ILE, source)
    assert out.PatientName == source.PatientName


def test_same_syntax_is_returned_reencoded() -> None:
    source = pydicom.dcmread(_file("JPEG2000.dcm"))
    out = _read(transcode(source, dcm_uid.JPEG2000), dcm_uid.JPEG2000, source)
    assert out["PixelData"].is_undefined_length
    assert out.PixelData == source.PixelData


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        (ELE, ELE, True),
        (ELE, ILE, True),
        (ILE, DEFLATED, True),
        (DEFLATED, EBE, True),
        (EBE, ELE, True),
        (dcm_uid.JPEG2000, dcm_uid.JPEG2000, True),
        (dcm_uid.JPEGBaseline8Bit, ELE, True),
        (dcm_uid.JPEGExtended12Bit, ILE, True),
        (dcm_uid.JPEGLossless, ELE, True),
        (dcm_uid.JPEGLosslessSV1, DEFLATED, True),
        (dcm_uid.JPEGLSLossless, ELE, True),
        (dcm_uid.JPEGLSNearLossless, EBE, True),
        (dcm_uid.JPEG2000Lossless, ELE, True),
        (dcm_uid.JPEG2000, ILE, True),
        (dcm_uid.RLELossless, ELE, True),
        (dcm_uid.HTJ2KLossless, ELE, True),
        (dcm_uid.HTJ2K, ELE, True),
        (ELE, dcm_uid.RLELossless, True),
        (ILE, dcm_uid.JPEG2000Lossless, True),
        (ELE, dcm_uid.JPEGBaseline8Bit, False),  # lossy: never chosen for the user
        (ELE, dcm_uid.JPEG2000, False),
        (ELE, dcm_uid.JPEGLossless, False),  # pydicom has no encoder
        (ELE, dcm_uid.JPEGLosslessSV1, False),
        (ELE, dcm_uid.HTJ2KLossless, False),
        (dcm_uid.JPEGBaseline8Bit, dcm_uid.RLELossless, False),  # compressed -> compressed
        (dcm_uid.RLELossless, dcm_uid.JPEG2000Lossless, False),
        ("1.2.3.4", ELE, False),  # unknown
        (ELE, "1.2.3.4", False),
    ],
)
def test_can_transcode_table(source: str, target: str, expected: bool) -> None:
    assert can_transcode(source, target) is expected


def test_can_transcode_jpeg_ls_lossless_follows_the_encoder_registry() -> None:
    available = pydicom.pixels.get_encoder(dcm_uid.JPEGLSLossless).is_available
    assert can_transcode(ELE, dcm_uid.JPEGLSLossless) is available


class _NoDecoder:
    is_available = False
    available_plugins = ()


def test_missing_decoder_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transcode_module, "get_decoder", lambda ts: _NoDecoder())
    assert not can_transcode(dcm_uid.JPEGLSLossless, ELE)
    with pytest.raises(TranscodeError) as caught:
        transcode(_file("MR_small_jpeg_ls_lossless.dcm"), ELE)
    message = str(caught.value)
    assert "cannot decompress JPEG-LS Lossless Image Compression" in message
    assert "no decoder installed" in message
    assert "pylibjpeg-libjpeg" in message and "python-gdcm" in message
    assert "MR Image Storage" in message
    assert isinstance(caught.value, PacsboxError)


def test_unencodable_target_is_explained() -> None:
    with pytest.raises(TranscodeError) as caught:
        transcode(_file("CT_small.dcm"), dcm_uid.JPEGLossless)
    message = str(caught.value)
    assert message.startswith("CT Image Storage ")
    assert "accepts only JPEG Lossless, Non-Hierarchical (Process 14)" in message
    assert "cannot encode" in message
    assert "Explicit VR Little Endian" in message and "+x=" in message


def test_compressed_to_other_compressed_is_refused() -> None:
    with pytest.raises(TranscodeError, match="only to uncompressed syntaxes"):
        transcode(_file("JPEG2000.dcm"), dcm_uid.RLELossless)


def test_codec_failure_is_a_transcode_error() -> None:
    # RLE cannot carry YBR_FULL_422; pydicom's ValueError becomes a sentence for a person.
    with pytest.raises(TranscodeError, match="could not encode the pixel data as RLE Lossless"):
        transcode(_file("SC_ybr_full_422_uncompressed.dcm"), dcm_uid.RLELossless)


def test_undecodable_pixels_are_a_transcode_error() -> None:
    # Neither libjpeg nor gdcm decodes this 12-bit JPEG; every plugin's reason is reported.
    with pytest.raises(TranscodeError) as caught:
        transcode(_file("JPEG-lossy.dcm"), ELE)
    assert "gdcm:" in str(caught.value) and "pylibjpeg:" in str(caught.value)


def test_unknown_target_and_unreadable_input(tmp_path: Path) -> None:
    with pytest.raises(TranscodeError, match="not a transfer syntax"):
        transcode(_file("CT_small.dcm"), "1.2.840.10008.5.1.4.1.1.2")
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all")
    with pytest.raises(TranscodeError, match="cannot read"):
        transcode(junk, ELE)


def test_encapsulated_dataset_without_transfer_syntax_is_refused() -> None:
    source = pydicom.dcmread(_file("MR_small_RLE.dcm"))
    del source.file_meta.TransferSyntaxUID
    with pytest.raises(TranscodeError, match="transfer syntax is unknown"):
        transcode(source, ELE)
