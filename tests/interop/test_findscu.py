"""`pacsbox findscu` against DCMTK's dcmqrscp, Orthanc and a pynetdicom C-FIND SCP, and
DCMTK's findscu as the reference for what -v prints.

The archives are filled with three studies (two of them the tutorial's) through DCMTK's
storescu or Orthanc's REST API; queries run at PATIENT, STUDY, SERIES and IMAGE level with
wildcards and date ranges; --json / --csv are parsed as a script would.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from pathlib import Path

import pydicom
import pytest

from tests import peers
from tests.pacsbox_cli import run_pacsbox
from tests.query_data import STUDIES, TUTORIAL_STUDIES, write_study_files

pytestmark = pytest.mark.interop

FIND_SCP_SCRIPT = Path(__file__).with_name("pynetdicom_find_scp.py")
CALL = ("-aec", "ACME_STORE", "-aet", "ACME1")


@contextlib.contextmanager
def _dcmqrscp(tmp: Path, studies):
    port = peers.free_port()
    cfg = peers.tutorial_cfg(tmp, port)
    with peers.DcmtkServer("dcmqrscp", ["-c", cfg], port) as server:
        files = write_study_files(tmp / "files", studies)
        cp = peers.run_dcmtk("storescu", *CALL, "localhost", port, *files)
        assert cp.returncode == 0, f"filling dcmqrscp failed:\n{cp.stderr}"
        yield server


@pytest.fixture(scope="module")
def dcmqrscp(tmp_path_factory):
    """DCMTK's dcmqrscp with the tutorial's config, holding all three studies."""
    with _dcmqrscp(tmp_path_factory.mktemp("dcmqrscp"), STUDIES) as server:
        yield server


@pytest.fixture(scope="module")
def tutorial_pacs(tmp_path_factory):
    """DCMTK's dcmqrscp as in the tutorial: its config and its two studies."""
    with _dcmqrscp(tmp_path_factory.mktemp("tutorial"), TUTORIAL_STUDIES) as server:
        yield server


def findscu_json(port: int, *args: object, files: tuple = ()) -> list[dict]:
    cp = run_pacsbox("findscu", "--json", *args, "localhost", port, *files)
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


# -- the tutorial ----------------------------------------------------------------------------

TUTORIAL_ARGS = (
    "-v", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "localhost", None,
    "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyDate", "-k", "StudyDescription",
    "-k", "StudyInstanceUID",
)  # fmt: skip


def _tutorial_args(port: int) -> list[object]:
    return [port if a is None else a for a in TUTORIAL_ARGS]


def test_the_tutorials_findscu_command(tutorial_pacs):
    cp = run_pacsbox("findscu", *_tutorial_args(tutorial_pacs.port))
    assert cp.returncode == 0, cp.stderr
    log = cp.stderr
    assert "I: Find Response: 1 (Pending)" in log and "I: Find Response: 2 (Pending)" in log
    assert "Find Response: 3" not in log
    for study in TUTORIAL_STUDIES:
        assert f"DA [{study.date}]" in log
        assert study.description in log
        assert f"UI [{study.uid}]" in log
    assert log.count("(0008,0054) AE [ACME_STORE]") == 2  # RetrieveAETitle, added by dcmqrscp
    assert "I: Received Final Find Response (Success)" in log
    assert "I: Releasing Association" in log


def test_v_output_is_dcmtk_findscus_line_for_line(tutorial_pacs):
    """From "Sending Find Request" to "Releasing Association" our -v log is DCMTK's."""
    args = _tutorial_args(tutorial_pacs.port)
    ours = run_pacsbox("findscu", *args)
    theirs = peers.run_dcmtk("findscu", *args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr + theirs.stderr

    def exchange(log: str) -> list[str]:
        # DCMTK prints a UI value's NUL padding as it is; we leave it out (dataset_dump)
        lines = log.replace("\x00", "").splitlines()
        start = next(i for i, line in enumerate(lines) if "Sending Find Request" in line)
        return lines[start:]

    assert exchange(ours.stderr) == exchange(theirs.stderr)


def test_request_with_sequences_and_private_tags_is_dumped_as_dcmtk_does(tutorial_pacs):
    args = [
        "-v", "-S", *CALL, "localhost", tutorial_pacs.port, "-k", "QueryRetrieveLevel=STUDY",
        "-k", "ReferencedStudySequence[0].StudyInstanceUID=1.2",
        "-k", "(0008,1110)[0].(0008,1150)", "-k", "ModalitiesInStudy=CT\\MR",
        "-k", "(0009,0010)=ACME", "-k", "0019,0010", "-k", "(0009,1001)", "-k", "Rows=512",
        "-k", "OtherPatientIDsSequence", "-k", "ProcedureCodeSequence[1]",
    ]  # fmt: skip
    ours = run_pacsbox("findscu", *args)
    theirs = peers.run_dcmtk("findscu", *args)
    assert ours.returncode == theirs.returncode == 0, ours.stderr + theirs.stderr

    def exchange(log: str) -> list[str]:
        lines = log.replace("\x00", "").splitlines()
        return lines[next(i for i, line in enumerate(lines) if "Sending Find" in line) :]

    assert exchange(ours.stderr) == exchange(theirs.stderr)
    assert "(0009,1001) ?? (no value available)" in ours.stderr


# -- dcmqrscp: levels, wildcards, ranges, cancel, files ---------------------------------------


def test_patient_level_with_patient_root(dcmqrscp):
    rows = findscu_json(
        dcmqrscp.port, "-P", *CALL, "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientName",
        "-k", "PatientID",
    )  # fmt: skip
    assert sorted(r["PatientID"] for r in rows) == ["P1", "P2", "P3"]
    names = {r["PatientID"]: r["PatientName"] for r in rows}
    assert names["P3"] == "MÜLLER^HANS"  # decoded with the response's ISO_IR 100


def test_study_level_wildcard_and_date_range(dcmqrscp):
    common = ("-S", *CALL, "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID")
    doe = findscu_json(dcmqrscp.port, *common, "-k", "PatientName=DOE*")
    assert {r["StudyInstanceUID"] for r in doe} == {STUDIES[0].uid, STUDIES[1].uid}
    ranged = findscu_json(dcmqrscp.port, *common, "-k", "StudyDate=20140101-20141231")
    assert {r["StudyInstanceUID"] for r in ranged} == {STUDIES[1].uid, STUDIES[2].uid}
    before = findscu_json(dcmqrscp.port, *common, "-k", "StudyDate=-20131231")
    assert [r["StudyInstanceUID"] for r in before] == [STUDIES[0].uid]


def test_series_and_image_levels(dcmqrscp):
    knee = STUDIES[2]
    series = findscu_json(
        dcmqrscp.port, "-S", *CALL, "-k", "QueryRetrieveLevel=SERIES",
        "-k", f"StudyInstanceUID={knee.uid}", "-k", "SeriesInstanceUID", "-k", "Modality",
    )  # fmt: skip
    assert sorted(r["Modality"] for r in series) == ["CT", "MR"]
    ct = next(r for r in series if r["Modality"] == "CT")
    images = findscu_json(
        dcmqrscp.port, "-S", *CALL, "-k", "QueryRetrieveLevel=IMAGE",
        "-k", f"StudyInstanceUID={knee.uid}", "-k", f"SeriesInstanceUID={ct['SeriesInstanceUID']}",
        "-k", "SOPInstanceUID",
    )  # fmt: skip
    assert len(images) == 1 and images[0]["SOPInstanceUID"]


def test_csv_parses(dcmqrscp):
    cp = run_pacsbox(
        "findscu", "--csv", "-S", *CALL, "localhost", dcmqrscp.port,
        "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName", "-k", "StudyDate",
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    rows = list(csv.DictReader(io.StringIO(cp.stdout)))
    assert sorted(r["StudyDate"] for r in rows) == ["20131231", "20140101", "20140215"]
    assert "MÜLLER^HANS" in {r["PatientName"] for r in rows}


def test_extract_writes_one_file_per_response(dcmqrscp, tmp_path):
    cp = run_pacsbox(
        "findscu", "-X", "-od", tmp_path, "-S", *CALL, "localhost", dcmqrscp.port,
        "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "-k", "PatientName",
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["rsp0001.dcm", "rsp0002.dcm", "rsp0003.dcm"]
    uids = {str(pydicom.dcmread(f).StudyInstanceUID) for f in files}
    assert uids == {s.uid for s in STUDIES}
    dump = peers.run_dcmtk("dcmdump", files[0])  # DCMTK reads them as well
    assert dump.returncode == 0 and "StudyInstanceUID" in dump.stdout


def test_repeat_and_extract_number_the_files_of_the_whole_run(dcmqrscp, tmp_path):
    cp = run_pacsbox(
        "findscu", "--repeat", "2", "-X", "-od", tmp_path, "-S", *CALL, "localhost",
        dcmqrscp.port, "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    # DCMTK's findscu would write rsp0001-0003 and rsp0005-0007 (it counts final responses)
    assert sorted(f.name for f in tmp_path.iterdir()) == [f"rsp{n:04d}.dcm" for n in range(1, 7)]


def test_cancel_after_one_response(dcmqrscp):
    cp = run_pacsbox(
        "findscu", "-v", "--cancel", "1", "-S", *CALL, "localhost", dcmqrscp.port,
        "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert "I: Sending Cancel Request (MsgID 1, PresID 1)" in cp.stderr
    # dcmqrscp may have sent every match before the C-CANCEL reached it (as with DCMTK's
    # findscu); either way the query ends with a final response and the association is fine
    assert (
        "Received Final Find Response (Cancel: MatchingTerminatedDueToCancelRequest)" in cp.stderr
        or "Received Final Find Response (Success)" in cp.stderr
    )
    assert "Releasing Association" in cp.stderr


def test_the_default_worklist_model_is_refused_and_the_error_says_which_flag(dcmqrscp):
    cp = run_pacsbox("findscu", *CALL, "localhost", dcmqrscp.port, "-k", "PatientName")
    assert cp.returncode == 1
    assert "No Acceptable Presentation Contexts" in cp.stderr
    assert "-S (Study Root)" in cp.stderr and "(-W)" in cp.stderr


def test_a_failure_status_fails_the_run_with_its_meaning(dcmqrscp):
    # Patient Root at STUDY level without PatientID: dcmqrscp answers 0xC000
    cp = run_pacsbox(
        "findscu", "-P", *CALL, "localhost", dcmqrscp.port,
        "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
    )  # fmt: skip
    assert cp.returncode == 1  # DCMTK's findscu exits 0 here
    assert "0xC000" in cp.stderr and "unable to process" in cp.stderr


def test_a_query_file_with_keys_on_top(dcmqrscp, tmp_path):
    query = pydicom.Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = "NOBODY"
    query.StudyInstanceUID = ""
    path = tmp_path / "query.dcm"
    query.save_as(path, implicit_vr=False, little_endian=True)
    rows = findscu_json(dcmqrscp.port, "-S", *CALL, "-k", "PatientName=DOE^JANE", files=(path,))
    assert [r["StudyInstanceUID"] for r in rows] == [STUDIES[1].uid]


def test_table_without_v(dcmqrscp):
    cp = run_pacsbox(
        "findscu", "-S", *CALL, "localhost", dcmqrscp.port,
        "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyDescription",
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert "3 matches" in cp.stdout
    for study in STUDIES:
        assert study.description in cp.stdout


# -- Orthanc -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("orthanc")
    # C-FIND is allowed from known modalities only: declare our calling AE title
    modalities = {"findscu": ("FINDSCU", "127.0.0.1", peers.free_port())}
    with peers.OrthancServer(tmp / "orthanc", modalities=modalities) as server:
        for path in write_study_files(tmp / "files"):
            server.post("/instances", path.read_bytes())
        yield server


def test_orthanc_levels(orthanc):
    port = orthanc.dicom_port
    call = ("-aec", orthanc.aet)
    patients = findscu_json(
        port, "-P", *call, "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID",
        "-k", "PatientName",
    )  # fmt: skip
    assert {r["PatientID"]: r["PatientName"] for r in patients} == {
        s.patient_id: s.patient_name for s in STUDIES
    }
    studies = findscu_json(
        port, "-S", *call, "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
        "-k", "StudyDate=20140101-", "-k", "PatientName=*JANE",
    )  # fmt: skip
    assert [r["StudyInstanceUID"] for r in studies] == [STUDIES[1].uid]
    series = findscu_json(
        port, "-S", *call, "-k", "QueryRetrieveLevel=SERIES",
        "-k", f"StudyInstanceUID={STUDIES[2].uid}", "-k", "Modality", "-k", "SeriesInstanceUID",
    )  # fmt: skip
    assert sorted(r["Modality"] for r in series) == ["CT", "MR"]
    images = findscu_json(
        port, "-S", *call, "-k", "QueryRetrieveLevel=IMAGE",
        "-k", f"StudyInstanceUID={STUDIES[0].uid}", "-k", "SOPInstanceUID",
    )  # fmt: skip
    assert len(images) == 2


def test_orthanc_refuses_an_unknown_calling_ae(orthanc):
    cp = run_pacsbox(
        "findscu", "-S", "-aet", "STRANGER", "-aec", orthanc.aet, "localhost",
        orthanc.dicom_port, "-k", "QueryRetrieveLevel=STUDY",
    )  # fmt: skip
    assert cp.returncode == 1
    # Orthanc 1.10.1 answers a C-FIND from an AE title it does not know with an A-ABORT
    assert "aborted the association during the C-FIND" in cp.stderr
    assert "'STRANGER'" in cp.stderr and "DicomModalities" in cp.stderr


# -- pynetdicom --------------------------------------------------------------------------------


def _pynetdicom_find(*args: object) -> peers.PeerProcess:
    port = peers.free_port()
    argv = [sys.executable, FIND_SCP_SCRIPT, "--port", port, *args]
    return peers.PeerProcess(argv, port, name="pynetdicom_find_scp")


def test_pynetdicom_find_scp():
    with _pynetdicom_find("--matches", "3") as scp:
        rows = findscu_json(
            scp.port, "-S", "-aec", "PYNETDICOM", "-k", "QueryRetrieveLevel=STUDY",
            "-k", "PatientName", "-k", "ModalitiesInStudy=CT\\MR",
        )  # fmt: skip
    assert [r["PatientName"] for r in rows] == ["PYNETDICOM^1", "MÜLLER^HANS", "PYNETDICOM^3"]
    assert rows[0]["ModalitiesInStudy"] == ["CT", "MR"]
    assert "request SpecificCharacterSet" not in scp.stdout()  # the keys were ASCII
    assert "request QueryRetrieveLevel ModalitiesInStudy PatientName" in scp.stdout()


def test_pynetdicom_worklist_is_the_default_model():
    with _pynetdicom_find("--matches", "2") as scp:
        rows = findscu_json(
            scp.port, "-aec", "PYNETDICOM", "-k", "PatientName",
            "-k", "ScheduledProcedureStepSequence[0].Modality=CT",
            "-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
        )  # fmt: skip
    assert [r["PatientName"] for r in rows] == ["PYNETDICOM^1", "MÜLLER^HANS"]
    assert rows[0]["ScheduledProcedureStepSequence"] == [
        {"Modality": "CT", "ScheduledStationAETitle": ""}
    ]
    assert "QueryRetrieveLevel" not in rows[0]


def test_pynetdicom_honours_cancel():
    with _pynetdicom_find("--matches", "5", "--wait-for-cancel") as scp:
        cp = run_pacsbox(
            "findscu", "-v", "--cancel", "1", "-S", "-aec", "PYNETDICOM", "localhost", scp.port,
            "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName",
        )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr.count("(Pending)") == 1
    assert (
        "Received Final Find Response (Cancel: MatchingTerminatedDueToCancelRequest)" in cp.stderr
    )


def test_pynetdicom_failure_status():
    with _pynetdicom_find("--matches", "1", "--status", "0xA900") as scp:
        cp = run_pacsbox(
            "findscu", "-S", "-aec", "PYNETDICOM", "localhost", scp.port,
            "-k", "QueryRetrieveLevel=STUDY",
        )  # fmt: skip
    assert cp.returncode == 1
    assert "0xA900" in cp.stderr and "Identifier does not match SOP class" in cp.stderr
