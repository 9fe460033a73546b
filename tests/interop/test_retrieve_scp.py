"""The archive's C-MOVE and C-GET SCP from outside: the tutorial's movescu commands against
`pacsbox dcmqrscp` (the CT study; the JPEG lossless study with +xs on both sides, and without
it, transcoded), DCMTK movescu/getscu against `pacsbox serve`, UID lists, an unknown
destination, C-CANCEL, the counters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydicom import dcmread

from tests import peers
from tests.interop.test_dcmqrscp import dcmqrscp
from tests.pacsbox_cli import pacsbox_server
from tests.storage_data import build_samples, dataset_offset

pytestmark = pytest.mark.interop

JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return build_samples(tmp_path_factory.mktemp("samples"))


def study_of(path) -> str:
    return str(dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def store(port: int, *args, aec="PACSBOX", aet="STORESCU") -> None:
    cp = peers.run_dcmtk("storescu", "-aec", aec, "-aet", aet, "127.0.0.1", port, *args)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def body(path: Path) -> bytes:
    data = path.read_bytes()
    return data[dataset_offset(data) :]


def test_the_tutorials_movescu_commands_against_pacsbox_dcmqrscp(tmp_path, samples):
    acme1 = peers.free_port()
    port = peers.free_port()
    cfg = peers.tutorial_cfg(tmp_path, port, acme1_port=acme1, host="127.0.0.1")
    ct, jpeg = samples["ct"], samples["ct_jpeg_lossless"]
    with dcmqrscp(tmp_path, "+xs", "-xs", cfg=cfg, port=port) as server:
        store(port, ct.path, aec="ACME_STORE", aet="ACME1")
        store(port, "-R", "--propose-lossless", jpeg.path, aec="ACME_STORE", aet="ACME1")
        for name, extra in (("ct", ()), ("lossless", ("+xs",)), ("decompressed", ())):
            out = tmp_path / name
            out.mkdir()
            sample = ct if name == "ct" else jpeg
            cp = peers.run_dcmtk(
                "movescu", "-v", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "-aem", "ACME1",
                "--port", acme1, "-od", out, "127.0.0.1", port,
                "-k", "QueryRetrieveLevel=STUDY",
                "-k", f"StudyInstanceUID={study_of(sample.path)}", *extra,
            )  # fmt: skip
            log = cp.stdout + cp.stderr
            assert cp.returncode == 0, log
            assert "Received Final Move Response (Success)" in log, log
            (received,) = out.iterdir()
            assert received.name == sample.stored_name
            meta = dcmread(received, stop_before_pixels=True).file_meta
            if name == "decompressed":  # movescu without +xs: pacsbox transcodes (dcmqrscp can't)
                assert meta.TransferSyntaxUID != JPEG_LOSSLESS_SV1
                assert (
                    dcmread(received).pixel_array.tobytes()
                    == dcmread(jpeg.path).pixel_array.tobytes()
                )
            else:  # sent as stored (DCMTK re-encodes what it writes: compare the pixels)
                assert meta.TransferSyntaxUID == sample.transfer_syntax
                assert dcmread(received).PixelData == dcmread(sample.path).PixelData
    assert "Move done: 1 completed" in server.stderr()


@pytest.fixture
def archive(tmp_path, samples):
    """pacsbox serve with three studies and DCMTK storescp (STORESCP) as a known peer."""
    receiver_port = peers.free_port()
    config = tmp_path / "pacs.toml"
    config.write_text(f'[peers.STORESCP]\nhost = "127.0.0.1"\nport = {receiver_port}\n')
    received = tmp_path / "received"
    received.mkdir()
    port = peers.free_port()
    with (
        pacsbox_server(port, "--config", config, "--pending-interval", "0", data=tmp_path / "d"),
        peers.DcmtkServer("storescp", ["-od", received], receiver_port),
    ):
        store(port, samples["ct"].path, samples["mr"].path, samples["rtplan"].path)
        yield port, received


def final_status(log: str) -> int:
    """The last DIMSE status movescu -d printed (the final response's)."""
    return int(re.findall(r"DIMSE Status\s*: 0x([0-9a-fA-F]{4})", log)[-1], 16)


def counters(log: str) -> dict[str, int]:
    found = {}
    for name in ("Completed", "Failed", "Warning"):
        values = re.findall(rf"{name} Suboperations\s*: (\d+)", log)
        found[name] = int(values[-1]) if values else -1
    return found


def test_dcmtk_movescu_uid_list_to_a_configured_peer(archive, samples):
    port, received = archive
    studies = "\\".join(study_of(samples[n].path) for n in ("ct", "mr"))
    cp = peers.run_dcmtk("movescu", "-d", "-S", "-aec", "PACSBOX", "-aem", "STORESCP",
                         "127.0.0.1", port, "-k", "QueryRetrieveLevel=STUDY",
                         "-k", f"StudyInstanceUID={studies}")  # fmt: skip
    log = cp.stdout + cp.stderr
    assert final_status(log) == 0x0000, log
    assert sorted(p.name for p in received.iterdir()) == sorted(
        samples[n].stored_name for n in ("ct", "mr")
    )
    assert counters(log) == {"Completed": 2, "Failed": 0, "Warning": 0}


def test_dcmtk_getscu_series_and_image_levels(archive, samples, tmp_path):
    port, _ = archive
    for level, key, name in (
        ("SERIES", "SeriesInstanceUID", "mr"),
        ("IMAGE", "SOPInstanceUID", "rtplan"),
    ):
        out = tmp_path / f"get-{level}"
        out.mkdir()
        ds = dcmread(samples[name].path, stop_before_pixels=True)
        cp = peers.run_dcmtk("getscu", "-v", "-S", "-aec", "PACSBOX", "-od", out, "127.0.0.1",
                             port, "-k", f"QueryRetrieveLevel={level}",
                             "-k", f"StudyInstanceUID={ds.StudyInstanceUID}",
                             "-k", f"SeriesInstanceUID={ds.SeriesInstanceUID}",
                             "-k", f"{key}={getattr(ds, key)}")  # fmt: skip
        log = cp.stdout + cp.stderr
        assert "Received C-GET Response (Success)" in log, log
        (got,) = out.iterdir()
        received, sent = dcmread(got), dcmread(samples[name].path)
        assert received.SOPInstanceUID == sent.SOPInstanceUID
        assert received.get("PixelData") == sent.get("PixelData")  # DCMTK re-encodes the rest


def test_an_unknown_move_destination_is_refused_with_where_to_configure_it(archive, samples):
    port, received = archive
    cp = peers.run_dcmtk("movescu", "-d", "-S", "-aec", "PACSBOX", "-aem", "NOBODY",
                         "127.0.0.1", port, "-k", "QueryRetrieveLevel=STUDY",
                         "-k", f"StudyInstanceUID={study_of(samples['ct'].path)}")  # fmt: skip
    log = cp.stdout + cp.stderr
    assert final_status(log) == 0xA801, log
    assert "unknown AE 'NOBODY': add [peers.<AE>]" in log, log  # the Error Comment
    assert list(received.iterdir()) == []


def test_a_retrieve_without_its_unique_key_is_refused(archive):
    port, _ = archive
    cp = peers.run_dcmtk("getscu", "-v", "-S", "-aec", "PACSBOX", "127.0.0.1", port,
                         "-k", "QueryRetrieveLevel=SERIES")  # fmt: skip
    log = cp.stdout + cp.stderr
    assert "Received C-GET Response" in log, log
    assert "Received C-GET Response (Success)" not in log, log


def test_dcmtk_movescu_cancel_stops_the_sub_operations(tmp_path, samples):
    from pydicom.uid import generate_uid

    studies = tmp_path / "one-study"
    studies.mkdir()
    ds = dcmread(samples["ct"].path)
    ds.StudyInstanceUID = generate_uid()
    for n in range(120):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(studies / f"{n}.dcm")
    receiver_port = peers.free_port()
    config = tmp_path / "pacs.toml"
    config.write_text(f'[peers.STORESCP]\nhost = "127.0.0.1"\nport = {receiver_port}\n')
    received = tmp_path / "received"
    received.mkdir()
    port = peers.free_port()
    with (
        pacsbox_server(port, "--config", config, "--pending-interval", "0", data=tmp_path / "d"),
        peers.DcmtkServer("storescp", ["-od", received], receiver_port),
    ):
        store(port, "+sd", studies)
        cp = peers.run_dcmtk("movescu", "-d", "-S", "-aec", "PACSBOX", "-aem", "STORESCP",
                             "--cancel", "1", "127.0.0.1", port, "-k", "QueryRetrieveLevel=STUDY",
                             "-k", f"StudyInstanceUID={ds.StudyInstanceUID}")  # fmt: skip
    log = cp.stdout + cp.stderr
    assert final_status(log) == 0xFE00, log[-3000:]
    done = counters(log)
    assert 1 <= done["Completed"] < 120
    assert len(list(received.iterdir())) == done["Completed"]
