"""`pacsbox findscu`'s options and output formats, without a network."""

from __future__ import annotations

import csv
import io
import json

import pytest
from pydicom.dataset import Dataset

from pacsbox.cli import findscu
from pacsbox.query_keys import build_identifier
from pacsbox.services.find_scu import dcmtk_status_words, model_alternatives
from pacsbox.services.qr_models import Model
from pacsbox.syntaxes import SCU_PROPOSALS
from pacsbox.wording import cli_words


def parse(*argv: str):
    return findscu.parser().parse_args(["localhost", "104", *argv])


def test_defaults_are_dcmtks():
    args = parse()
    assert args.model == "worklist"  # DCMTK 3.6.7: -W is the default
    assert args.aetitle == "FINDSCU" and args.call == "ANY-SCP"
    assert args.propose == "propose-uncompr" and args.max_pdu == 16384
    assert args.output_directory == "." and args.cancel is None and args.repeat == 1


@pytest.mark.parametrize(
    ("flag", "model"),
    [("-W", "worklist"), ("-P", "patient"), ("-S", "study"), ("-O", "patient-study-only")],
)
def test_model_flags(flag, model):
    assert Model(parse(flag).model) is Model(model)


def test_the_tutorials_options_parse():
    args = findscu.parser().parse_args(
        [
            "-v",
            "-S",
            "-aec",
            "ACME_STORE",
            "-aet",
            "ACME1",
            "localhost",
            "11112",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyDate",
            "-k",
            "StudyDescription",
            "-k",
            "StudyInstanceUID",
        ]
    )
    assert args.key == ["QueryRetrieveLevel=STUDY", "StudyDate", "StudyDescription",
                        "StudyInstanceUID"]  # fmt: skip
    assert (args.call, args.aetitle, args.port, args.model) == (
        "ACME_STORE",
        "ACME1",
        11112,
        "study",
    )


def test_other_options():
    args = parse("-xi", "--cancel", "2", "-X", "-Xlo", "5", "-sr", "--repeat", "3", "--abort",
                 "-od", "/tmp", "--json", "q.dcm")  # fmt: skip
    assert SCU_PROPOSALS[args.propose] == ("1.2.840.10008.1.2",)
    assert (args.cancel, args.extract, args.limit_output, args.show_responses) == (
        2,
        True,
        5,
        False,
    )
    assert (args.repeat, args.abort, args.json, args.files) == (3, True, True, ["q.dcm"])


@pytest.mark.parametrize(
    "argv", [("-S", "-P"), ("--json", "--csv"), ("+sr", "-sr"), ("--cancel", "0"), ("-xs",)]
)
def test_conflicting_or_bad_options_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as info:
        parse(*argv)
    assert info.value.code == 2


def test_responses_are_logged_unless_extracted_or_hidden():
    assert findscu._show_in_log(parse())
    assert not findscu._show_in_log(parse("-X"))
    assert findscu._show_in_log(parse("-X", "+sr"))
    assert not findscu._show_in_log(parse("-sr"))


def test_query_files_get_the_keys_on_top(tmp_path):
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = "FROM^FILE"
    path = tmp_path / "q.dcm"
    query.save_as(path, implicit_vr=True, little_endian=True)
    args = parse("-k", "PatientName=DOE*", "-k", "StudyDate", str(path))
    ((label, identifier),) = findscu._identifiers(args)
    assert label == str(path)
    assert identifier.PatientName == "DOE*" and identifier["StudyDate"].is_empty


def test_an_unreadable_query_file_says_what_to_do(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("PatientName=DOE")
    with pytest.raises(ValueError, match=r"Cannot read query file .*-k keys"):
        findscu._identifiers(parse(str(path)))


def test_bad_keys_fail_before_connecting():
    with pytest.raises(ValueError, match="PatientNam"):
        findscu._identifiers(parse("-k", "PatientNam=X"))


def _matches():
    return [
        build_identifier(
            [
                "PatientName=DOE^JOHN",
                "ModalitiesInStudy=CT\\MR",
                "ReferencedStudySequence[0].StudyInstanceUID=1.2",
            ]
        ),
        build_identifier(["PatientName=Müller", "StudyDate=20140101"]),
    ]


def test_json_output(capsys):
    findscu._print_matches(_matches(), parse("--json"), Model.STUDY_ROOT)
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["ModalitiesInStudy"] == ["CT", "MR"]
    assert rows[0]["ReferencedStudySequence"] == [{"StudyInstanceUID": "1.2"}]
    assert rows[1]["PatientName"] == "Müller"


def test_csv_output(capsys):
    findscu._print_matches(_matches(), parse("--csv"), Model.STUDY_ROOT)
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["ModalitiesInStudy"] == "CT\\MR"  # DICOM's own value separator
    assert json.loads(rows[0]["ReferencedStudySequence"]) == [{"StudyInstanceUID": "1.2"}]
    assert rows[1]["StudyDate"] == "20140101" and rows[0]["StudyDate"] == ""


def test_table_output(capsys):
    findscu._print_matches(_matches(), parse(), Model.STUDY_ROOT)
    out = capsys.readouterr().out
    assert "2 matches" in out and "DOE^JOHN" in out and "Müller" in out and "1 item(s)" in out
    assert "SpecificCharacterSet" not in out


def test_dcmtk_status_words():
    assert dcmtk_status_words(0x0000) == "Success"
    assert dcmtk_status_words(0xFE00) == "Cancel: MatchingTerminatedDueToCancelRequest"
    assert dcmtk_status_words(0xC123) == "Failed: UnableToProcess"
    assert dcmtk_status_words(0xA900) == "Failed: IdentifierDoesNotMatchSOPClass"
    assert dcmtk_status_words(0x0211) == "Unknown Status: 0x211"


def test_model_alternatives():
    with cli_words():
        assert model_alternatives(Model.WORKLIST) == (
            "-P (Patient Root), -S (Study Root) or -O (Patient/Study Only)"
        )
    assert model_alternatives(Model.STUDY_ROOT) == (  # the API's words
        "model='worklist' (Modality Worklist), model='patient' (Patient Root) or "
        "model='patient-study-only' (Patient/Study Only)"
    )
