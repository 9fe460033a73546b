"""Storage Commitment Push Model (PS3.4 Annex J) in both roles: `pacsbox serve` as SCP for
`pacsbox stgcmtscu` (report on the same association, and on a new one) and for pynetdicom;
`pacsbox stgcmtscu` against Orthanc's SCP."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests import peers
from tests.pacsbox_cli import pacsbox_server, run_pacsbox
from tests.storage_data import build_samples

pytestmark = pytest.mark.interop

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return build_samples(tmp_path_factory.mktemp("samples"))


def store(port: int, *paths, aec: str = "PACSBOX") -> None:
    cp = peers.run_dcmtk("storescu", "-aec", aec, "127.0.0.1", port, *paths)
    assert cp.returncode == 0, cp.stdout + cp.stderr


@pytest.fixture
def archive(tmp_path, samples):
    report_port = peers.free_port()
    config = tmp_path / "pacs.toml"
    config.write_text(f'[peers.STGCMTSCU]\nhost = "127.0.0.1"\nport = {report_port}\n')
    port = peers.free_port()
    with pacsbox_server(port, "--config", config, data=tmp_path / "data") as server:
        store(port, samples["ct"].path, samples["mr"].path)
        yield port, report_port, server


def test_commitment_on_the_same_association(archive, samples):
    port, _, server = archive
    cp = run_pacsbox("stgcmtscu", "-aec", "PACSBOX", "127.0.0.1", port,
                     samples["ct"].path, samples["mr"].path)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert "2 of 2 instance(s) committed (report on same association)" in cp.stderr
    assert "Storage Commitment report sent (status 0x0000)" in server.output()


def test_commitment_report_on_a_new_association(archive, samples):
    port, report_port, _ = archive
    cp = run_pacsbox("stgcmtscu", "-v", "-aec", "PACSBOX", "+P", report_port,
                     "--listen-host", "127.0.0.1", "127.0.0.1", port,
                     samples["ct"].path, samples["mr"].path)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert "report on a new association" in cp.stderr
    assert '"PACSBOX -> STGCMTSCU"' in cp.stderr  # the archive called us back


def test_an_instance_not_stored_is_reported_failed(archive, samples):
    port, _, _ = archive
    cp = run_pacsbox("stgcmtscu", "-aec", "PACSBOX", "127.0.0.1", port,
                     samples["ct"].path, samples["rtplan"].path)  # fmt: skip
    assert cp.returncode == 1
    assert "1 of 2 instance(s) committed" in cp.stderr
    assert f"not committed: {samples['rtplan'].sop_instance_uid}: 0x0112" in cp.stderr


def test_a_file_gone_from_disk_is_not_committed(archive, samples, tmp_path):
    port, _, _ = archive
    (stored,) = (tmp_path / "data" / "files").rglob(samples["mr"].stored_name)
    stored.unlink()
    cp = run_pacsbox("stgcmtscu", "-aec", "PACSBOX", "127.0.0.1", port, samples["mr"].path)
    assert cp.returncode == 1 and "0x0110" in cp.stderr, cp.stderr


def test_pynetdicom_as_scu(archive, samples):
    import threading

    import pynetdicom
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid
    from pynetdicom import evt

    port, _, _ = archive
    reports = []
    arrived = threading.Event()

    def on_report(event):
        reports.append((event.request.EventTypeID, event.event_information))
        arrived.set()
        return 0x0000, None

    ae = pynetdicom.AE(ae_title="PYNETDICOM")
    ae.add_requested_context(STORAGE_COMMITMENT)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSBOX",
                         evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])  # fmt: skip
    assert assoc.is_established
    request = Dataset()
    request.TransactionUID = generate_uid()
    request.ReferencedSOPSequence = []
    for name in ("ct", "rtplan"):
        item = Dataset()
        item.ReferencedSOPClassUID = samples[name].sop_class_uid
        item.ReferencedSOPInstanceUID = samples[name].sop_instance_uid
        request.ReferencedSOPSequence.append(item)
    status, _ = assoc.send_n_action(request, 1, STORAGE_COMMITMENT, "1.2.840.10008.1.20.1.1")
    assert status.Status == 0x0000
    assert arrived.wait(60)  # bounded: the report follows the N-ACTION-RSP, same association
    assoc.release()
    ((event_type, info),) = reports
    assert event_type == 2  # some failed: rtplan was not stored
    assert info.TransactionUID == request.TransactionUID
    assert [i.ReferencedSOPInstanceUID for i in info.ReferencedSOPSequence] == [
        samples["ct"].sop_instance_uid
    ]
    assert [(i.ReferencedSOPInstanceUID, i.FailureReason) for i in info.FailedSOPSequence] == [
        (samples["rtplan"].sop_instance_uid, 0x0112)
    ]


def test_pacsbox_stgcmtscu_against_orthanc(tmp_path, samples):
    report_port = peers.free_port()
    modalities = {
        "stgcmtscu": {"AET": "STGCMTSCU", "Host": "127.0.0.1", "Port": report_port,
                      "AllowStorageCommitment": True},
    }  # fmt: skip
    with peers.OrthancServer(tmp_path / "orthanc", modalities=modalities) as orthanc:
        store(orthanc.dicom_port, samples["ct"].path, aec="ORTHANC")
        cp = run_pacsbox("stgcmtscu", "-v", "-aec", "ORTHANC", "+P", report_port,
                         "--listen-host", "127.0.0.1", "127.0.0.1", orthanc.dicom_port,
                         samples["ct"].path, samples["rtplan"].path)  # fmt: skip
        with urllib.request.urlopen(f"{orthanc.url}/statistics") as response:
            assert json.load(response)["CountInstances"] == 1
    assert "1 of 2 instance(s) committed" in cp.stderr, cp.stderr
    assert cp.returncode == 1


def test_orthanc_as_scu_against_pacsbox(tmp_path, samples):
    """Orthanc asks pacsbox serve for commitment (REST: /modalities/pacs/storage-commitment)
    and releases at once; pacsbox reports on a new association to Orthanc's configured port."""
    import time

    port, orthanc_port = peers.free_port(), peers.free_port()
    config = tmp_path / "pacs.toml"
    config.write_text(f'[peers.ORTHANC]\nhost = "127.0.0.1"\nport = {orthanc_port}\n')
    modalities = {"pacs": {"AET": "PACSBOX", "Host": "127.0.0.1", "Port": port,
                           "AllowStorageCommitment": True}}  # fmt: skip
    with (
        pacsbox_server(port, "--config", config, data=tmp_path / "data") as server,
        peers.OrthancServer(tmp_path / "orthanc", dicom_port=orthanc_port,
                            modalities=modalities) as orthanc,
    ):  # fmt: skip
        store(port, samples["ct"].path)
        instances = [
            {"SOPClassUID": samples[n].sop_class_uid, "SOPInstanceUID": samples[n].sop_instance_uid}
            for n in ("ct", "rtplan")
        ]
        request = urllib.request.Request(
            f"{orthanc.url}/modalities/pacs/storage-commitment",
            data=json.dumps({"DicomInstances": instances, "Timeout": 30}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request) as response:
            job = json.load(response)
        for _ in range(300):  # bounded: the report arrives on Orthanc's DICOM port
            with urllib.request.urlopen(orthanc.url + job["Path"]) as response:
                report = json.load(response)
            if report.get("Status") != "Pending":
                break
            time.sleep(0.1)
        log = server.output()
    assert [i["SOPInstanceUID"] for i in report["Success"]] == [samples["ct"].sop_instance_uid]
    assert [(i["SOPInstanceUID"], i["FailureReason"]) for i in report["Failures"]] == [
        (samples["rtplan"].sop_instance_uid, 0x0112)
    ]
    assert '"ORTHANC -> PACSBOX"' in log and "Storage Commitment report sent" in log
