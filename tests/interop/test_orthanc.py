"""pacsbox against Orthanc 1.10.1, in both roles: C-ECHO, C-STORE and probe.

Orthanc runs with tests/peers.py's minimal config (AE ORTHANC, its storage in tmp_path, no
plugins). Where Orthanc is the SCU it is driven through its REST API, the pacsbox server being
registered in its "DicomModalities". Orthanc 1.10.1 cannot bind its DICOM port to 127.0.0.1
(it listens on all interfaces); everything else listens on 127.0.0.1.

What Orthanc does with the data (checked below):

* received over DICOM, an instance keeps the transfer syntax it came in, compressed ones
  included (Orthanc accepts them all by default); its REST upload (``POST /instances``)
  stores the file as it is;
* as a C-STORE SCU it proposes each instance's own syntax (plus uncompressed ones) and sends
  the data set re-encoded by DCMTK: exactly what ``dcmconv -p`` writes (no data set trailing
  padding), so that is what must arrive byte for byte;
* without plugins it can transcode JPEG Lossless and RLE to uncompressed for an SCP that
  accepts only those, but not JPEG 2000 (the REST call fails with HTTP 500).
"""

from __future__ import annotations

import json
import time
import urllib.error
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tests import peers
from tests.pacsbox_cli import PACSBOX, pacsbox_server, run_pacsbox
from tests.storage_data import (
    CT_IMAGE_STORAGE,
    Sample,
    build_samples,
    dataset_bytes,
    meta,
    pixels,
)

pytestmark = pytest.mark.interop

EXPLICIT = str(ExplicitVRLittleEndian)
IMPLICIT = str(ImplicitVRLittleEndian)

# pacsbox storescu -> Orthanc: uncompressed, RLE (fresh UIDs), JPEG 2000, JPEG Lossless
# (made with dcmcjpeg); each is expected to be stored in its own transfer syntax
TO_ORTHANC = ("ct", "mr_rle", "sc_j2k", "ct_jpeg_lossless")
# Orthanc -> pacsbox storescp +xa: those, JPEG 2000 lossless and an implicit VR RT Plan
FROM_ORTHANC = ("ct", "mr_rle", "sc_j2k", "ct_jpeg_lossless", "mr_j2k_lossless", "rtplan")


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Sample]:
    return build_samples(tmp_path_factory.mktemp("samples"))


def pacsbox_storescp(port: int, out: Path, *options: object) -> peers.PeerProcess:
    """`pacsbox storescp` (AE STORESCP) as a user runs it, on 127.0.0.1:port, into ``out``."""
    argv = [PACSBOX, "storescp", "-v", "--host", "127.0.0.1", *options, "-od", out, port]
    return peers.PeerProcess(argv, port, name="pacsbox-storescp")


def stored_by_uid(orthanc: peers.OrthancServer) -> dict[str, str]:
    """The Orthanc ID of every stored instance, by SOP Instance UID."""
    found = {}
    for orthanc_id in orthanc.instances():
        tags = orthanc.get(f"/instances/{orthanc_id}/simplified-tags")
        found[tags["SOPInstanceUID"]] = orthanc_id
    return found


def upload(orthanc: peers.OrthancServer, s: Sample) -> str:
    """``s`` uploaded through Orthanc's REST API; returns its Orthanc ID."""
    answer = orthanc.post("/instances", s.path.read_bytes())
    assert answer["Status"] == "Success", answer
    return answer["ID"]


def orthanc_file(orthanc: peers.OrthancServer, orthanc_id: str, directory: Path) -> Path:
    """The file Orthanc keeps for an instance, written into ``directory``."""
    path = directory / f"{orthanc_id}.dcm"
    path.write_bytes(orthanc.get(f"/instances/{orthanc_id}/file"))
    return path


def dcmtk_encoded(s: Sample, directory: Path) -> Path:
    """``s`` as DCMTK (so Orthanc as an SCU) puts it on the wire in its own transfer syntax:
    rewritten by dcmconv -p (no data set trailing padding, explicit item lengths)."""
    target = directory / s.path.name
    cp = peers.run_dcmtk("dcmconv", "-p", s.path, target)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return target


def assert_same_content(got: pydicom.Dataset, want: pydicom.Dataset, what: str) -> None:
    """Same elements with the same values; VRs and Data Set Trailing Padding aside (DCMTK
    drops the padding and writes the OW VR that MR_small_jp2klossless.dcm gives its
    encapsulated Pixel Data as OB)."""

    def tags(ds: pydicom.Dataset) -> set[int]:
        return {elem.tag for elem in ds if elem.tag != 0xFFFCFFFC}

    assert tags(got) == tags(want), what
    for tag in tags(want):
        assert got[tag].value == want[tag].value, f"{what}: {want[tag]}"


def wait_for_log(process: peers.PeerProcess, text: str, tries: int = 250) -> str:
    """``process``'s stderr once it holds ``text`` (polled every 20 ms, at most 5 s)."""
    for _ in range(tries):
        log = process.stderr()
        if text in log:
            return log
        time.sleep(0.02)
    raise AssertionError(f"{process.name} never logged {text!r}:\n{process.stderr()}")


def store_to(orthanc: peers.OrthancServer, modality: str, ids: list[str]) -> dict:
    """Orthanc's synchronous C-STORE of ``ids`` to ``modality`` (raises on HTTP errors)."""
    return orthanc.post(f"/modalities/{modality}/store", {"Resources": ids, "Synchronous": True})


# -- 1. pacsbox echoscu -> Orthanc -------------------------------------------------------------


def test_pacsbox_echoscu_to_orthanc(orthanc):
    cp = run_pacsbox("echoscu", "-v", "-aec", "ORTHANC", "127.0.0.1", orthanc.dicom_port)
    assert cp.returncode == 0, cp.stderr + orthanc.output()
    assert "Received Echo Response (Success)" in cp.stderr
    assert "Releasing Association" in cp.stderr


# -- 2. Orthanc -> pacsbox serve: echo ---------------------------------------------------------


def test_orthanc_echo_to_pacsbox_serve(tmp_path):
    port = peers.free_port()
    modalities = {"pacsbox": ("PACSBOX", "127.0.0.1", port)}
    with (
        pacsbox_server(port, data=tmp_path / "data") as server,
        peers.OrthancServer(tmp_path / "orthanc", modalities=modalities) as orthanc,
    ):
        assert orthanc.get("/modalities") == ["pacsbox"]
        # HTTP 200 (urllib raises on anything else) with an empty JSON object
        assert orthanc.post("/modalities/pacsbox/echo", {}) == {}, server.output()
        # Orthanc answers once the echo is done; its release may still be on the way
        log = wait_for_log(server, "Received Association Release Request")
    assert 'Association Received 127.0.0.1: "ORTHANC -> PACSBOX"' in log
    assert "Received Echo Request" in log
    assert "Sending Echo Response (Success)" in log
    assert "Received Association Release Request" in log


def test_orthanc_echo_to_nothing_fails(tmp_path):
    """The counter-check: Orthanc's echo really talks to the modality."""
    modalities = {"pacsbox": ("PACSBOX", "127.0.0.1", peers.free_port())}
    with (
        peers.OrthancServer(tmp_path / "orthanc", modalities=modalities) as orthanc,
        pytest.raises(urllib.error.HTTPError) as info,
    ):
        orthanc.post("/modalities/pacsbox/echo", {})
    assert info.value.code == 500


def test_orthanc_store_to_pacsbox_serve_keeps_every_syntax(samples, tmp_path):
    """The archive accepts every syntax: Orthanc sends each instance in its own."""
    port = peers.free_port()
    data = tmp_path / "data"
    modalities = {"pacsbox": ("PACSBOX", "127.0.0.1", port)}
    with (
        pacsbox_server(port, data=data),
        peers.OrthancServer(tmp_path / "orthanc", modalities=modalities) as orthanc,
    ):
        ids = [upload(orthanc, s) for s in samples.values()]
        answer = store_to(orthanc, "pacsbox", ids)
    assert answer["FailedInstancesCount"] == 0, answer
    assert answer["InstancesCount"] == len(samples), answer
    # the archive keeps files by study under data/files
    found = {
        p.name: p for p in (data / "files").rglob("*") if p.is_file() and not p.name.startswith(".")
    }
    assert sorted(found) == sorted(s.stored_name for s in samples.values())
    for s in samples.values():
        received = found[s.stored_name]
        assert meta(received).TransferSyntaxUID == s.transfer_syntax, s.name
        assert dataset_bytes(received) == dataset_bytes(dcmtk_encoded(s, tmp_path)), s.name


# -- 3. pacsbox storescu -> Orthanc ------------------------------------------------------------


def test_pacsbox_storescu_to_orthanc_keeps_compressed_syntaxes(samples, tmp_path):
    files = [samples[n] for n in TO_ORTHANC]
    report = tmp_path / "report.json"
    with peers.OrthancServer(tmp_path / "orthanc") as orthanc:
        cp = run_pacsbox(
            "storescu", "-v", "--report", report, "-aec", "ORTHANC",
            "127.0.0.1", orthanc.dicom_port, *(s.path for s in files),
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr + orthanc.output()
        stored = stored_by_uid(orthanc)
        assert sorted(stored) == sorted(s.sop_instance_uid for s in files)
        kept = {}
        for s in files:
            orthanc_id = stored[s.sop_instance_uid]
            metadata = orthanc.get(f"/instances/{orthanc_id}/metadata?expand")
            syntax = orthanc.get(f"/instances/{orthanc_id}/metadata/TransferSyntax")
            kept[s.name] = orthanc_file(orthanc, orthanc_id, tmp_path)
            assert syntax.decode() == metadata["TransferSyntax"] == s.transfer_syntax, s.name
            assert metadata["SopClassUid"] == s.sop_class_uid
            assert metadata["RemoteAET"] == "STORESCU"
            assert metadata["CalledAET"] == "ORTHANC"
            assert metadata["Origin"] == "DicomProtocol"
    assert cp.stderr.count("Received Store Response (Success)") == len(files), cp.stderr
    assert "Converting transfer syntax" not in cp.stderr
    assert "storescu: 4 of 4 file(s) sent: 4 success" in cp.stderr
    entries = {Path(e["path"]).stem: e for e in json.loads(report.read_text())}
    for s in files:
        assert entries[s.name]["result"] == "success", entries[s.name]
        assert entries[s.name]["sent_as"] == s.transfer_syntax, entries[s.name]
        # unconverted: the very same pixel data (compressed fragments included)
        got, sent = pydicom.dcmread(kept[s.name]), pydicom.dcmread(s.path)
        assert meta(kept[s.name]).TransferSyntaxUID == s.transfer_syntax
        assert got.SOPInstanceUID == s.sop_instance_uid
        assert got.PixelData == sent.PixelData, s.name
        assert_same_content(got, sent, s.name)
    # the uncompressed CT is kept as it was sent, byte for byte
    assert dataset_bytes(kept["ct"]) == dataset_bytes(samples["ct"].path)


# -- 4. Orthanc -> pacsbox storescp ------------------------------------------------------------


def test_orthanc_store_to_pacsbox_storescp_accept_all(samples, tmp_path):
    files = [samples[n] for n in FROM_ORTHANC]
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    kept_dir = tmp_path / "orthanc-files"
    kept_dir.mkdir()
    modalities = {"storescp": ("STORESCP", "127.0.0.1", port)}
    with (
        pacsbox_storescp(port, out, "+xa") as scp,
        peers.OrthancServer(tmp_path / "orthanc", modalities=modalities) as orthanc,
    ):
        ids = {s.name: upload(orthanc, s) for s in files}
        kept = {name: orthanc_file(orthanc, i, kept_dir) for name, i in ids.items()}
        answer = store_to(orthanc, "storescp", list(ids.values()))
        log = scp.stderr()
    assert answer["FailedInstancesCount"] == 0, answer
    assert answer["InstancesCount"] == len(files), answer
    assert answer["RemoteAet"] == "STORESCP" and answer["LocalAet"] == "ORTHANC"
    assert 'Association Received 127.0.0.1: "ORTHANC -> STORESCP"' in log
    assert log.count("storing DICOM file:") == len(files), log
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == sorted(s.stored_name for s in files)
    for s in files:
        received = out / s.stored_name
        # the REST upload kept the file as it was
        assert dataset_bytes(kept[s.name]) == dataset_bytes(s.path), s.name
        # sent in its own syntax, re-encoded by DCMTK, stored as received
        assert meta(received).TransferSyntaxUID == s.transfer_syntax, s.name
        assert meta(received).MediaStorageSOPInstanceUID == s.sop_instance_uid
        assert dataset_bytes(received) == dataset_bytes(dcmtk_encoded(s, tmp_path)), s.name
        got, want = pydicom.dcmread(received), pydicom.dcmread(kept[s.name])
        assert got.SOPInstanceUID == s.sop_instance_uid
        assert_same_content(got, want, s.name)
        if "PixelData" in want:
            assert got.PixelData == want.PixelData, s.name
            np.testing.assert_array_equal(got.pixel_array, want.pixel_array)


def test_orthanc_transcodes_for_a_default_pacsbox_storescp(samples, tmp_path):
    """A storescp accepting only uncompressed syntaxes: Orthanc decodes JPEG Lossless and RLE
    (its built-in codecs) and sends Explicit VR Little Endian; the pixels are the same."""
    files = [samples[n] for n in ("ct_jpeg_lossless", "mr_rle", "rtplan")]
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    modalities = {"storescp": ("STORESCP", "127.0.0.1", port)}
    with (
        pacsbox_storescp(port, out),
        peers.OrthancServer(tmp_path / "orthanc", modalities=modalities) as orthanc,
    ):
        ids = [upload(orthanc, s) for s in files]
        answer = store_to(orthanc, "storescp", ids)
    assert answer["FailedInstancesCount"] == 0, answer
    for s in files:
        received = out / s.stored_name
        assert received.is_file(), sorted(p.name for p in out.iterdir())
        ds = pydicom.dcmread(received)
        assert ds.SOPInstanceUID == s.sop_instance_uid
        if s.name == "rtplan":  # uncompressed: sent as it is (Implicit VR)
            assert meta(received).TransferSyntaxUID == IMPLICIT
            assert dataset_bytes(received) == dataset_bytes(dcmtk_encoded(s, tmp_path))
        else:
            assert meta(received).TransferSyntaxUID == EXPLICIT, s.name
            np.testing.assert_array_equal(ds.pixel_array, pixels(s.path))


def test_orthanc_cannot_transcode_jpeg2000_for_a_default_pacsbox_storescp(samples, tmp_path):
    """Orthanc 1.10.1 has no JPEG 2000 decoder without plugins: the store fails in Orthanc
    (HTTP 500, "Cannot transcode"); pacsbox storescp stores nothing and keeps serving."""
    port = peers.free_port()
    out = tmp_path / "out"
    out.mkdir()
    modalities = {"storescp": ("STORESCP", "127.0.0.1", port)}
    ct = samples["ct"]
    with (
        pacsbox_storescp(port, out) as scp,
        peers.OrthancServer(tmp_path / "orthanc", modalities=modalities) as orthanc,
    ):
        j2k = upload(orthanc, samples["sc_j2k"])
        with pytest.raises(urllib.error.HTTPError) as info:
            store_to(orthanc, "storescp", [j2k])
        body = info.value.read().decode()
        assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == []
        # the same storescp then takes the next one
        answer = store_to(orthanc, "storescp", [upload(orthanc, ct)])
        assert scp.running()
    assert info.value.code == 500
    assert "Cannot transcode from 1.2.840.10008.1.2.4.91" in body
    assert answer["FailedInstancesCount"] == 0, answer
    assert (out / ct.stored_name).is_file()


# -- 5. pacsbox probe -> Orthanc ---------------------------------------------------------------


def test_probe_orthanc(orthanc):
    cp = run_pacsbox("probe", "127.0.0.1", orthanc.dicom_port, "-aec", "ORTHANC", "--json")
    assert cp.returncode == 0, cp.stderr + orthanc.output()
    accepted = json.loads(cp.stdout)
    ct = accepted[CT_IMAGE_STORAGE]
    assert len(ct) > 2
    for uid in (
        EXPLICIT,
        IMPLICIT,
        "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
        "1.2.840.10008.1.2.4.50",  # JPEG Baseline
        "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
        "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
        "1.2.840.10008.1.2.4.91",  # JPEG 2000
        "1.2.840.10008.1.2.5",  # RLE Lossless
    ):
        assert uid in ct, (uid, ct)
    # Verification too, and storage classes by the dozen
    assert "1.2.840.10008.1.1" in accepted
    assert len(accepted) > 50
    # Orthanc never sees a C-STORE: nothing stored
    assert orthanc.instances() == []
