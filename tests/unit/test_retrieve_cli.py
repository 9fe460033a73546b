"""movescu / getscu command lines: DCMTK's spellings parse, -k keys become the identifier,
the progress display counts instances when the PACS sends no counters."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pacsbox.cli import getscu, movescu
from pacsbox.cli.retrieve_common import ProgressDisplay, identifiers
from pacsbox.errors import PacsboxError
from pacsbox.services.qr_models import Model
from pacsbox.services.retrieve_scu import RetrieveProgress, RetrieveResult


def test_tutorial_command_line_parses():
    import shlex

    command = (
        "-v -S -aec ACME_STORE -aet ACME1 -aem ACME1 --port 1234 -od /tmp/ localhost 11112 "
        "-k QueryRetrieveLevel=STUDY -k StudyInstanceUID=1.2.3 +xs"
    )
    args = movescu.parser().parse_args(shlex.split(command))
    assert (args.peer, args.port, args.listen_port, args.output_directory) == (
        "localhost", 11112, 1234, "/tmp/",
    )  # fmt: skip
    assert (args.aetitle, args.call, args.move, args.model) == (
        "ACME1", "ACME_STORE", "ACME1", Model.STUDY_ROOT,
    )  # fmt: skip
    assert args.prefer == "prefer-lossless" and args.propose == "propose-uncompr"
    assert args.verbose and args.files == []


def test_defaults_are_dcmtks():
    args = movescu.parser().parse_args(["host", "104"])
    # no -aem: the move destination is the calling AE title (run sets it), as DCMTK's is
    assert (args.aetitle, args.call, args.move) == ("MOVESCU", "ANY-SCP", None)
    assert args.model is Model.PATIENT_ROOT and args.listen_port is None
    args = getscu.parser().parse_args(["host", "104"])
    assert args.aetitle == "GETSCU" and args.prefer == "prefer-uncompr"
    assert movescu.parser().parse_args(["+P", "4242", "h", "1"]).listen_port == 4242


def test_getscu_has_no_accept_all_like_dcmtk():
    with pytest.raises(SystemExit):
        getscu.parser().parse_args(["h", "1", "+xa"])


def keys(*keys: str, files=()):
    return SimpleNamespace(key=list(keys), files=list(files))


def test_keys_by_keyword_and_tag():
    [(name, ds)] = identifiers(
        keys(
            "QueryRetrieveLevel=SERIES",
            "(0020,000d)=1.2.3",
            "0020,000E",
            "ModalitiesInStudy=CT\\MR",
            "ReferencedStudySequence[0].StudyInstanceUID=1.2.4",
        )
    )
    assert name is None
    assert ds.QueryRetrieveLevel == "SERIES"
    assert ds.StudyInstanceUID == "1.2.3"
    assert ds[0x0020000E].value in (None, "")
    assert list(ds.ModalitiesInStudy) == ["CT", "MR"]
    assert ds.ReferencedStudySequence[0].StudyInstanceUID == "1.2.4"


def test_bad_keys_fail_before_anything_is_sent():
    with pytest.raises(PacsboxError, match="StudyInstanceUit"):
        identifiers(keys("StudyInstanceUit=1"))


def test_query_files_may_follow_the_options():
    args = getscu.parser().parse_args(["-S", "h", "1", "-k", "PatientID=1", "q1.dcm", "q2.dcm"])
    assert args.files == ["q1.dcm", "q2.dcm"] and args.key == ["PatientID=1"]


def test_query_file_with_keys_on_top(tmp_path):
    import pydicom

    ds = pydicom.Dataset()
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientID = "P1"
    path = tmp_path / "query.dcm"
    ds.save_as(path, implicit_vr=False, little_endian=True)
    [(name, identifier)] = identifiers(keys("QueryRetrieveLevel=STUDY", files=[str(path)]))
    assert name == str(path)
    assert (identifier.QueryRetrieveLevel, identifier.PatientID) == ("STUDY", "P1")


def test_progress_display_counts_instances_without_counters():
    display = ProgressDisplay("test")
    for _ in range(3):
        display.instance_received()
    assert (display.received, display.total) == (3, None)
    display.counters(RetrieveProgress(0xFF00, 5, 3, 0, 0))
    assert (display.total, display.pacs_done) == (8, 3)
    display.finish(RetrieveResult(0, None, 8, 0, 0))
    assert display.total == 8 and display.pacs_done == 8
