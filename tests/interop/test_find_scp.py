"""The archive's C-FIND SCP from outside: DCMTK findscu (the tutorial's command among them)
and pynetdicom against `pacsbox dcmqrscp` and `pacsbox serve`, C-CANCEL, refusals."""

from __future__ import annotations

import re

import pytest

from tests import peers
from tests.interop.test_dcmqrscp import dcmqrscp
from tests.pacsbox_cli import pacsbox_server
from tests.storage_data import build_samples

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return build_samples(tmp_path_factory.mktemp("samples"))


def store(port: int, *paths, aec: str = "PACSBOX", aet: str = "STORESCU") -> None:
    cp = peers.run_dcmtk("storescu", "-aec", aec, "-aet", aet, "127.0.0.1", port, *paths)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def findscu(port: int, *args) -> tuple[list[dict[str, str]], str]:
    """DCMTK findscu -v; each response's elements as {keyword: value} and the whole log."""
    cp = peers.run_dcmtk("findscu", "-v", *args, "127.0.0.1", port)
    log = cp.stdout + cp.stderr
    responses = []
    for block in log.split("Find Response: ")[1:]:
        if "(Pending)" not in block.split("\n", 1)[0]:
            continue
        fields = {}
        for name_value in re.finditer(
            r"\) \w\w (?:\[(.*?)\]|\(no value available\)).*?# .*? (\w+)$", block, re.M
        ):
            fields[name_value.group(2)] = (name_value.group(1) or "").strip()
        responses.append(fields)
    return responses, log


def test_the_tutorials_findscu_command_against_pacsbox_dcmqrscp(tmp_path, samples):
    with dcmqrscp(tmp_path) as server:
        store(server.port, samples["ct"].path, samples["mr"].path, aec="ACME_STORE", aet="ACME1")
        responses, log = findscu(server.port, "-S", "-aec", "ACME_STORE", "-aet", "ACME1",
                                 "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyDate",
                                 "-k", "StudyDescription", "-k", "StudyInstanceUID")  # fmt: skip
    assert "Received Final Find Response (Success)" in log, log
    assert len(responses) == 2
    for response in responses:
        assert {"StudyDate", "StudyDescription", "StudyInstanceUID", "RetrieveAETitle"} <= set(
            response
        ), response
        assert response["RetrieveAETitle"] == "ACME_STORE"
        assert response["StudyInstanceUID"]


def test_levels_and_models_against_pacsbox_serve(tmp_path, samples):
    port = peers.free_port()
    with pacsbox_server(port, data=tmp_path / "data"):
        store(port, samples["ct"].path, samples["mr"].path, samples["rtplan"].path)
        patients, log = findscu(port, "-P", "-aec", "PACSBOX", "-k", "QueryRetrieveLevel=PATIENT",
                                "-k", "PatientName=*SAMPLES*", "-k", "PatientID",
                                "-k", "NumberOfPatientRelatedInstances")  # fmt: skip
        assert {r["PatientName"] for r in patients} == {
            "CompressedSamples^CT1", "CompressedSamples^MR1",
        }, log  # fmt: skip
        series, log = findscu(port, "-S", "-aec", "PACSBOX", "-k", "QueryRetrieveLevel=SERIES",
                              "-k", "Modality=MR", "-k", "SeriesInstanceUID",
                              "-k", "NumberOfSeriesRelatedInstances")  # fmt: skip
        assert [(r["Modality"], r["NumberOfSeriesRelatedInstances"]) for r in series] == [
            ("MR", "1")
        ], log
        images, log = findscu(port, "-S", "-aec", "PACSBOX", "-k", "QueryRetrieveLevel=IMAGE",
                              "-k", f"SOPInstanceUID={samples['ct'].sop_instance_uid}",
                              "-k", "(0009,0010)", "-k", "(0009,1002)")  # fmt: skip
        assert len(images) == 1 and images[0].get("SuiteId") == "CT01", log
        # a key below the query level: refused, with the reason
        refused, log = findscu(port, "-S", "-aec", "PACSBOX", "-k", "QueryRetrieveLevel=STUDY",
                               "-k", "Modality=CT")  # fmt: skip
        assert refused == [] and "DataSetDoesNotMatchSOPClass" in log, log


def test_dcmtk_findscu_cancel(tmp_path, samples):
    """DCMTK's --cancel 1 sends C-CANCEL after the first response: of 150 matching studies
    only some are sent, then the final status is Cancel."""
    from pydicom import dcmread
    from pydicom.uid import generate_uid

    studies = tmp_path / "studies"
    studies.mkdir()
    ds = dcmread(samples["ct"].path)
    for n in range(150):
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(studies / f"{n}.dcm")
    port = peers.free_port()
    with pacsbox_server(port, data=tmp_path / "data"):
        store(port, "+sd", studies)
        responses, log = findscu(port, "-S", "-aec", "PACSBOX", "--cancel", "1",
                                 "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID")  # fmt: skip
    assert "Received Final Find Response (Cancel" in log, log[-2000:]
    assert 1 <= len(responses) < 150


def test_a_write_only_area_refuses_queries(tmp_path, samples):
    port = peers.free_port()
    cfg = peers.write_dcmqrscp_cfg(
        tmp_path / "dcmqrscp.cfg", port=port, storage_dir=tmp_path / "db",
        hosts={"FINDSCU": ("FINDSCU", "localhost", 1)},
        ae_table=[("WRITER", tmp_path / "db" / "w", "W", (10, "100mb"), "ANY")],
    )  # fmt: skip
    with dcmqrscp(tmp_path, cfg=cfg, port=port) as server:
        responses, log = findscu(server.port, "-S", "-aec", "WRITER",
                                 "-k", "QueryRetrieveLevel=STUDY")  # fmt: skip
    assert responses == [], log
    assert "Unknown Status: 0x124" in log, log  # DCMTK has no name for 0x0124


def test_pynetdicom_find_scu(tmp_path, samples):
    import pynetdicom  # a test dependency (pyproject [test]): missing, the test fails
    from pydicom.dataset import Dataset

    port = peers.free_port()
    with pacsbox_server(port, data=tmp_path / "data"):
        store(port, samples["ct"].path, samples["mr"].path)
        ae = pynetdicom.AE(ae_title="PYNETDICOM")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.2.2.1")
        assoc = ae.associate("127.0.0.1", port, ae_title="PACSBOX")
        assert assoc.is_established
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.PatientName = "compressed*"
        query.StudyInstanceUID = ""
        found = [ds for status, ds in assoc.send_c_find(query, "1.2.840.10008.5.1.4.1.2.2.1")
                 if status and status.Status == 0xFF00]  # fmt: skip
        assoc.release()
    assert {str(ds.StudyInstanceUID) for ds in found} == {
        _study(samples[n].path) for n in ("ct", "mr")
    }


def _study(path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def test_extended_negotiation_relational_and_fuzzy_with_pynetdicom(tmp_path, samples):
    """pynetdicom asks for relational queries, combined date-time and fuzzy names (PS3.4
    C.5.1.1); pacsbox agrees to the three and answers a STUDY query by a SERIES key."""
    import pynetdicom
    from pydicom.dataset import Dataset
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation

    study_root_find = "1.2.840.10008.5.1.4.1.2.2.1"
    port = peers.free_port()
    with pacsbox_server(port, data=tmp_path / "data"):
        store(port, samples["ct"].path, samples["mr"].path)
        ae = pynetdicom.AE(ae_title="PYNETDICOM")
        ae.add_requested_context(study_root_find)
        ext = SOPClassExtendedNegotiation()
        ext.sop_class_uid = study_root_find
        ext.service_class_application_information = bytes((1, 1, 1, 1))
        assoc = ae.associate("127.0.0.1", port, ae_title="PACSBOX", ext_neg=[ext])
        assert assoc.is_established
        agreed = {
            item.sop_class_uid: item.service_class_application_information
            for item in assoc.acceptor.user_information
            if isinstance(item, SOPClassExtendedNegotiation)
        }
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.Modality = "MR"  # a SERIES key: relational
        query.PatientName = "compressedsamples mr1"  # fuzzy: case and separator ignored
        query.StudyInstanceUID = ""
        found = [ds for status, ds in assoc.send_c_find(query, study_root_find)
                 if status and status.Status == 0xFF00]  # fmt: skip
        assoc.release()
    assert agreed[study_root_find] == bytes((1, 1, 1, 0))  # no timezone adjustment
    assert [str(ds.StudyInstanceUID) for ds in found] == [_study(samples["mr"].path)]
