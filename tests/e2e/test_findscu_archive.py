"""The tutorial with pacsbox on both sides: `pacsbox dcmqrscp -c dcmqrscp.cfg`, filled by
`pacsbox storescu`, queried by `pacsbox findscu` (and DCMTK's findscu, which must print the
same); `pacsbox serve` queried at every level."""

from __future__ import annotations

import json

import pytest

from tests import peers
from tests.pacsbox_cli import PACSBOX, pacsbox_server, run_pacsbox
from tests.query_data import STUDIES, TUTORIAL_STUDIES, write_study_files

pytestmark = pytest.mark.e2e

CALL = ("-aec", "ACME_STORE", "-aet", "ACME1")


@pytest.fixture(scope="module")
def tutorial_archive(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tutorial")
    port = peers.free_port()
    cfg = peers.tutorial_cfg(tmp, port)
    argv = [PACSBOX, "dcmqrscp", "-v", "--host", "127.0.0.1", "-c", cfg]
    with peers.PeerProcess(argv, port, name="pacsbox-dcmqrscp") as server:
        files = write_study_files(tmp / "files", TUTORIAL_STUDIES)
        cp = run_pacsbox("storescu", *CALL, "localhost", port, *files)
        assert cp.returncode == 0, cp.stderr
        yield server


def test_the_tutorials_query_with_pacsbox_on_both_sides(tutorial_archive):
    args = [
        "-v", "-S", *CALL, "localhost", tutorial_archive.port,
        "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyDate", "-k", "StudyDescription",
        "-k", "StudyInstanceUID",
    ]  # fmt: skip
    ours = run_pacsbox("findscu", *args)
    assert ours.returncode == 0, ours.stderr
    for study in TUTORIAL_STUDIES:
        assert f"DA [{study.date}]" in ours.stderr and f"UI [{study.uid}]" in ours.stderr
    assert ours.stderr.count("(0008,0054) AE [ACME_STORE]") == 2
    assert "Received Final Find Response (Success)" in ours.stderr
    theirs = peers.run_dcmtk("findscu", *args)
    assert theirs.returncode == 0, theirs.stderr

    def exchange(log: str) -> list[str]:
        lines = log.replace("\x00", "").splitlines()
        return lines[next(i for i, line in enumerate(lines) if "Sending Find" in line) :]

    assert exchange(ours.stderr) == exchange(theirs.stderr)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    port = peers.free_port()
    with pacsbox_server(port, data=tmp / "data") as server:
        files = write_study_files(tmp / "files")
        cp = run_pacsbox("storescu", "-aec", "PACSBOX", "localhost", port, *files)
        assert cp.returncode == 0, cp.stderr
        yield server


def query(port: int, *args: object) -> list[dict]:
    cp = run_pacsbox("findscu", "--json", "-aec", "PACSBOX", *args, "localhost", port)
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def test_serve_at_every_level(served):
    port = served.port
    patients = query(port, "-P", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID",
                     "-k", "PatientName=*")  # fmt: skip
    assert {r["PatientID"]: r["PatientName"] for r in patients} == {
        s.patient_id: s.patient_name for s in STUDIES
    }
    studies = query(port, "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
                    "-k", "StudyDate=20140101-", "-k", "PatientName=M*")  # fmt: skip
    assert [r["StudyInstanceUID"] for r in studies] == [STUDIES[2].uid]
    series = query(port, "-S", "-k", "QueryRetrieveLevel=SERIES", "-k", "Modality",
                   "-k", f"StudyInstanceUID={STUDIES[2].uid}")  # fmt: skip
    assert sorted(r["Modality"] for r in series) == ["CT", "MR"]
    images = query(port, "-S", "-k", "QueryRetrieveLevel=IMAGE", "-k", "SOPInstanceUID",
                   "-k", f"StudyInstanceUID={STUDIES[0].uid}")  # fmt: skip
    assert len(images) == 2


def test_dcmtk_findscu_typing_utf8_without_a_character_set_finds_the_name(served):
    """DCMTK's findscu sends what the terminal typed (UTF-8) with no Specific Character Set;
    the archive (its names ISO_IR 100) reads such text as UTF-8 when it is that."""
    for name in ("Müller*", "MÜLLER^HANS"):
        cp = peers.run_dcmtk(
            "findscu", "-v", "-S", "-aec", "PACSBOX", "localhost", served.port,
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"PatientName={name}",
            "-k", "StudyInstanceUID",
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        assert cp.stderr.count("Find Response: ") == 1, cp.stderr  # one match
        assert STUDIES[2].uid in cp.stderr


def test_serve_refuses_the_worklist_and_findscu_says_which_flag(served):
    cp = run_pacsbox("findscu", "-aec", "PACSBOX", "localhost", served.port, "-k", "PatientName")
    assert cp.returncode == 1
    assert "-S (Study Root)" in cp.stderr
