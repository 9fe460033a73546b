"""pacsbox storescp's command line against DCMTK's: an option DCMTK's storescp has and
pacsbox's does not is named as such (not 'invalid int value' for the port it swallowed);
those that are what pacsbox always does are taken and ignored."""

from __future__ import annotations

import shlex

import pytest

from pacsbox.cli import storescp
from tests.pacsbox_cli import run_pacsbox


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ("--exec-on-reception 'echo #f'", "--exec-on-reception is an option of DCMTK's storescp"),
        ("-xcr 'echo #f'", "-xcr (--exec-on-reception) is an option of DCMTK's storescp"),
        ("-tos 5", "-tos (--eostudy-timeout) is an option of DCMTK's storescp"),
        ("-fe .dcm", "files are named <modality>.<SOP Instance UID>"),
        ("-xf storescp.cfg Default", "-xf (--config-file) is an option"),
        ("+te", "writes each data set as it was received"),
    ],
)
def test_a_dcmtk_option_pacsbox_lacks_is_named(options, said, capsys):
    with pytest.raises(SystemExit) as exited:
        storescp.parser().parse_args([*shlex.split(options), "-od", ".", "11112"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert said in err and "pacsbox storescp does not have" in err, err
    assert "invalid int value" not in err


def test_what_pacsbox_always_does_is_accepted():
    args = storescp.parser().parse_args(["-dhl", "+B", "+t=", "+F", "-uf", "-od", "x", "104"])
    assert (args.port, args.output_directory) == (104, "x")


def test_the_cli_says_it_and_exits_2(tmp_path):
    cp = run_pacsbox("storescp", "-xcr", "echo #f", "-od", tmp_path, "11112")
    assert cp.returncode == 2
    assert "pacsbox storescp does not have" in cp.stderr, cp.stderr
