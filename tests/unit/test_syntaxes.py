"""Transfer syntax groups, DCMTK's -x/+x tables and their argparse options.

The interop tests read what DCMTK 3.6.7 itself proposes and accepts (storescu/storescp -d)
and the option lists of its --help, and compare them with our tables.
"""

from __future__ import annotations

import re

import pytest
from pydicom import uid as pu
from pydicom._uid_dict import UID_dictionary
from pydicom.data import get_testdata_file

from pacsbox.cli.common import DcmtkArgumentParser
from pacsbox.cli.syntax_options import (
    SCP_OPTIONS,
    SCU_OPTIONS,
    add_scp_syntax_options,
    add_scu_syntax_options,
    scp_preference,
    scu_proposal,
)
from pacsbox.syntaxes import (
    DEFLATED,
    ENCAPSULATED,
    LOSSLESS_COMPRESSED,
    LOSSY_COMPRESSED,
    SCP_PREFERENCES,
    SCU_PROPOSALS,
    UNCOMPRESSED,
    is_compressed,
    is_lossy,
    is_retired,
    storescu_contexts,
)
from pacsbox.uids import uid_keyword
from tests import peers

ELE = "1.2.840.10008.1.2.1"
EBE = "1.2.840.10008.1.2.2"
ILE = "1.2.840.10008.1.2"
SV1 = "1.2.840.10008.1.2.4.70"

# --- groups ---------------------------------------------------------------------------------


def test_uncompressed_in_dcmtks_order() -> None:
    assert UNCOMPRESSED == (ELE, EBE, ILE)
    assert not any(is_compressed(ts) or is_lossy(ts) for ts in UNCOMPRESSED)
    assert not set(UNCOMPRESSED) & ENCAPSULATED


def test_lossless_and_lossy_are_disjoint_and_encapsulated() -> None:
    assert not LOSSLESS_COMPRESSED & LOSSY_COMPRESSED
    assert LOSSLESS_COMPRESSED | LOSSY_COMPRESSED <= ENCAPSULATED
    assert not DEFLATED & ENCAPSULATED


@pytest.mark.parametrize(
    ("ts", "compressed", "lossy"),
    [
        (pu.JPEGBaseline8Bit, True, True),
        (pu.JPEGExtended12Bit, True, True),
        (pu.JPEGLosslessSV1, True, False),
        (pu.JPEGLossless, True, False),
        (pu.JPEGLSLossless, True, False),
        (pu.JPEGLSNearLossless, True, True),
        (pu.JPEG2000Lossless, True, False),
        (pu.JPEG2000, True, True),
        (pu.HTJ2KLossless, True, False),
        (pu.HTJ2K, True, True),
        (pu.RLELossless, True, False),
        (pu.MPEG2MPML, True, True),
        (pu.HEVCM10P51, True, True),
        (pu.DeflatedExplicitVRLittleEndian, False, False),
        ("1.2.840.10008.1.2.1.98", False, False),  # Encapsulated Uncompressed
        ("1.2.3.4", False, False),
    ],
)
def test_compressed_and_lossy(ts: str, compressed: bool, lossy: bool) -> None:
    assert is_compressed(ts) is compressed
    assert is_lossy(ts) is lossy


def test_retired() -> None:
    assert is_retired(EBE)
    assert is_retired("1.2.840.10008.1.2.4.52")  # JPEG Extended (Process 3 and 5)
    assert not is_retired(ELE)
    assert not is_retired(ILE)
    assert not is_retired(SV1)
    assert not is_retired("1.2.840.10008.1.2.4.112")  # JPEG XL, newer than pydicom 3.0
    assert not is_retired("1.2.3.4")


def test_every_pixel_encoding_syntax_pydicom_knows_is_classified() -> None:
    # Syntaxes that hold no encoded Pixel Data, or are not a data set encoding at all.
    no_pixel_data = ("JPIP", "SMPTE", "MIME", "XML", "Papyrus")
    for ts, (name, kind, *_rest) in UID_dictionary.items():
        if kind != "Transfer Syntax" or ts in UNCOMPRESSED or ts in DEFLATED:
            continue
        if any(word in name for word in no_pixel_data):
            assert ts not in ENCAPSULATED, name
            continue
        assert ts in ENCAPSULATED, name
        assert pu.UID(ts).is_encapsulated, name


# --- DCMTK's tables -------------------------------------------------------------------------


def test_scu_proposals_from_storescu_source() -> None:
    assert SCU_PROPOSALS["propose-uncompr"] == (ELE, EBE, ILE)
    assert SCU_PROPOSALS["propose-little"] == (ELE, EBE, ILE)
    assert SCU_PROPOSALS["propose-big"] == (EBE, ELE, ILE)
    assert SCU_PROPOSALS["propose-implicit"] == (ILE,)
    assert SCU_PROPOSALS["propose-lossless"] == (SV1, ELE, EBE, ILE)
    assert SCU_PROPOSALS["propose-jpeg8"] == ("1.2.840.10008.1.2.4.50", ELE, EBE, ILE)
    assert SCU_PROPOSALS["propose-jpeg12"] == ("1.2.840.10008.1.2.4.51", ELE, EBE, ILE)
    assert SCU_PROPOSALS["propose-j2k-lossless"] == ("1.2.840.10008.1.2.4.90", ELE, EBE, ILE)
    assert SCU_PROPOSALS["propose-j2k-lossy"] == ("1.2.840.10008.1.2.4.91", ELE, EBE, ILE)
    assert SCU_PROPOSALS["propose-jls-lossless"] == ("1.2.840.10008.1.2.4.80", ELE, EBE, ILE)
    assert SCU_PROPOSALS["propose-jls-lossy"] == ("1.2.840.10008.1.2.4.81", ELE, EBE, ILE)
    assert SCU_PROPOSALS["propose-mpeg2"] == ("1.2.840.10008.1.2.4.100",)
    assert SCU_PROPOSALS["propose-hevc10"] == ("1.2.840.10008.1.2.4.108",)
    assert SCU_PROPOSALS["propose-rle"] == ("1.2.840.10008.1.2.5", ELE, EBE, ILE)
    assert SCU_PROPOSALS["propose-deflated"] == ("1.2.840.10008.1.2.1.99", ELE, EBE, ILE)


def test_storescu_splits_preferred_and_fallback() -> None:
    assert storescu_contexts("propose-lossless") == ((SV1,), (ELE, EBE, ILE))
    assert storescu_contexts("propose-lossless", combine=True) == ((SV1, ELE, EBE, ILE),)
    assert storescu_contexts("propose-uncompr") == ((ELE,), (EBE, ILE))
    assert storescu_contexts("propose-big") == ((EBE,), (ELE, ILE))
    assert storescu_contexts("propose-implicit") == ((ILE,),)
    assert storescu_contexts("propose-mpeg4") == (("1.2.840.10008.1.2.4.102",),)


def test_scp_preferences_from_storescp_source() -> None:
    assert SCP_PREFERENCES["prefer-uncompr"] == (ELE, EBE, ILE)
    assert SCP_PREFERENCES["prefer-little"] == (ELE, EBE, ILE)
    assert SCP_PREFERENCES["prefer-big"] == (EBE, ELE, ILE)
    assert SCP_PREFERENCES["prefer-lossless"] == (SV1, ELE, EBE, ILE)
    assert SCP_PREFERENCES["prefer-mpeg2"] == ("1.2.840.10008.1.2.4.100", ELE, EBE, ILE)
    assert SCP_PREFERENCES["prefer-deflated"] == ("1.2.840.10008.1.2.1.99", ELE, EBE, ILE)
    assert SCP_PREFERENCES["implicit"] == (ILE,)
    accept_all = SCP_PREFERENCES["accept-all"]
    assert len(accept_all) == len(set(accept_all)) == 21
    assert accept_all[:5] == (
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.50",
        SV1,
    )
    assert accept_all[-4:] == ("1.2.840.10008.1.2.1.99", ELE, EBE, ILE)


def test_option_tables_cover_exactly_the_syntax_tables() -> None:
    assert [key for _, key, _ in SCU_OPTIONS] == list(SCU_PROPOSALS)
    assert [key for _, key, _ in SCP_OPTIONS] == list(SCP_PREFERENCES)
    for table in (SCU_PROPOSALS, SCP_PREFERENCES):
        for key, syntaxes in table.items():
            assert len(syntaxes) == len(set(syntaxes)), key


# --- argparse -------------------------------------------------------------------------------


def scu_parser(**kwargs) -> DcmtkArgumentParser:
    parser = DcmtkArgumentParser("storescu", "test")
    add_scu_syntax_options(parser, **kwargs)
    return parser


def scp_parser(**kwargs) -> DcmtkArgumentParser:
    parser = DcmtkArgumentParser("storescp", "test")
    add_scp_syntax_options(parser, **kwargs)
    return parser


@pytest.mark.parametrize(("flag", "key", "_help"), SCU_OPTIONS)
def test_scu_short_and_long_flags_agree(flag: str, key: str, _help: str) -> None:
    parser = scu_parser()
    assert parser.parse_args([flag]).propose == key
    assert parser.parse_args([f"--{key}"]).propose == key
    assert scu_proposal(parser.parse_args([flag])) == SCU_PROPOSALS[key]


@pytest.mark.parametrize(("flag", "key", "_help"), SCP_OPTIONS)
def test_scp_short_and_long_flags_agree(flag: str, key: str, _help: str) -> None:
    parser = scp_parser()
    assert parser.parse_args([flag]).prefer == key
    assert parser.parse_args([f"--{key}"]).prefer == key
    assert scp_preference(parser.parse_args([flag])) == SCP_PREFERENCES[key]


def test_examples_from_the_tutorial() -> None:
    assert scp_parser().parse_args(["+xs"]) == scp_parser().parse_args(["--prefer-lossless"])
    assert scp_parser().parse_args(["+xs"]).prefer == "prefer-lossless"
    assert scu_parser().parse_args(["-xs"]).propose == "propose-lossless"
    assert scp_preference(scp_parser().parse_args(["+xs"]))[0] == SV1


def test_defaults() -> None:
    args = scu_parser().parse_args([])
    assert args.propose is None
    assert scu_proposal(args) is None  # content-based proposal
    args = scp_parser().parse_args([])
    assert args.prefer == "prefer-uncompr"
    assert scp_preference(args) == (ELE, EBE, ILE)


@pytest.mark.parametrize(
    ("make", "argv"),
    [
        (scu_parser, ["-xs", "-xb"]),
        (scu_parser, ["-x=", "--propose-lossless"]),
        (scp_parser, ["+xs", "+xa"]),
        (scp_parser, ["+xi", "--prefer-big"]),
    ],
)
def test_conflicting_options_are_refused(make, argv, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        make().parse_args(argv)
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_scu_and_scp_options_live_together() -> None:
    # dcmqrscp and movescu have both sides.
    parser = scp_parser()
    add_scu_syntax_options(parser)
    args = parser.parse_args(["+xs", "-xb"])
    assert (args.prefer, args.propose) == ("prefer-lossless", "propose-big")


def test_options_can_go_into_the_callers_group(recwarn) -> None:
    parser = DcmtkArgumentParser("storescu", "test")
    group = parser.add_argument_group("presentation contexts")
    add_scu_syntax_options(group)
    add_scp_syntax_options(group)
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
    args = parser.parse_args(["-xs", "+xb"])
    assert (args.propose, args.prefer) == ("propose-lossless", "prefer-big")
    args = parser.parse_args([])
    assert (args.propose, args.prefer) == (None, "prefer-uncompr")
    assert "default: propose each file's own" in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(["-xs", "-xb"])


def test_non_storage_scu_options_are_findscus() -> None:
    parser = scu_parser(storage=False)
    assert parser.parse_args([]).propose == "propose-uncompr"
    assert parser.parse_args(["-xd"]).propose == "propose-deflated"
    with pytest.raises(SystemExit):
        parser.parse_args(["-xs"])


def test_accept_all_can_be_left_out() -> None:
    with pytest.raises(SystemExit):
        scp_parser(accept_all=False).parse_args(["+xa"])


def test_help_mentions_the_content_based_default(capsys) -> None:
    scu_parser().print_help()
    text = capsys.readouterr().out
    assert "default: propose each file's own transfer syntax" in text
    assert "-xs, --propose-lossless" in text


# --- against DCMTK 3.6.7 itself -------------------------------------------------------------

_HELP_LINE = re.compile(r"^\s+([-+]x[=a-z0-9])\s+--([a-z0-9-]+)\s", re.MULTILINE)


def dcmtk_x_options(tool: str, sign: str) -> list[tuple[str, str]]:
    cp = peers.run_dcmtk(tool, "--help")
    found = _HELP_LINE.findall(cp.stdout + cp.stderr)
    return [
        (flag, key) for flag, key in found if flag[0] == sign and not key.endswith("config-file")
    ]


@pytest.mark.interop
@pytest.mark.parametrize(
    ("tool", "sign", "ours"),
    [
        ("storescu", "-", [(f, k) for f, k, _ in SCU_OPTIONS]),
        ("dcmqrscp", "-", [(f, k) for f, k, _ in SCU_OPTIONS]),
        ("storescp", "+", [(f, k) for f, k, _ in SCP_OPTIONS]),
        ("movescu", "+", [(f, k) for f, k, _ in SCP_OPTIONS]),
        ("dcmqrscp", "+", [(f, k) for f, k, _ in SCP_OPTIONS if k != "accept-all"]),
        ("getscu", "+", [(f, k) for f, k, _ in SCP_OPTIONS if k != "accept-all"]),
    ],
)
def test_options_match_dcmtk_help(tool: str, sign: str, ours: list[tuple[str, str]]) -> None:
    theirs = dcmtk_x_options(tool, sign)
    assert sorted(theirs) == sorted(ours)


@pytest.mark.interop
@pytest.mark.parametrize("tool", ["findscu", "movescu", "getscu"])
def test_non_storage_options_match_dcmtk_help(tool: str) -> None:
    parser = scu_parser(storage=False)
    ours = sorted(
        (a.option_strings[0], a.option_strings[1][2:])
        for a in parser._actions
        if getattr(a, "dest", None) == "propose"
    )
    assert sorted(dcmtk_x_options(tool, "-")) == ours


_TS_BY_DCMTK_NAME = {
    uid_keyword(ts): ts for ts, entry in UID_dictionary.items() if entry[1] == "Transfer Syntax"
}
_CONTEXT = re.compile(r"Context ID:\s+(\d+) \((\w+)\)(.*?)(?=Context ID:|Requested Extended)", re.S)


def proposed_and_accepted(log: str) -> tuple[list[tuple[str, ...]], dict[int, str]]:
    """From a storescu -d log: the proposed syntax lists, and context id -> accepted syntax."""
    proposed: list[tuple[str, ...]] = []
    accepted: dict[int, str] = {}
    for pcid, state, body in _CONTEXT.findall(log):
        names = re.findall(r"=(\S+)", body.split("Abstract Syntax:")[1].split("\n", 1)[1])
        syntaxes = tuple(_TS_BY_DCMTK_NAME[name] for name in names)
        if state == "Proposed":
            proposed.append(syntaxes)
        elif state == "Accepted":
            accepted[int(pcid)] = syntaxes[0]
    return proposed, accepted


@pytest.mark.interop
@pytest.mark.parametrize("combine", [False, True])
@pytest.mark.parametrize(
    "key",
    ["propose-uncompr", "propose-big", "propose-implicit", "propose-lossless", "propose-rle",
     "propose-j2k-lossy", "propose-deflated", "propose-mpeg2"],
)  # fmt: skip
def test_storescu_proposes_what_we_say(key: str, combine: bool, tmp_path, tmp_port) -> None:
    flag = next(f for f, k, _ in SCU_OPTIONS if k == key)
    with peers.DcmtkServer("storescp", ["-od", tmp_path, "+xa"], tmp_port):
        argv = ["-d", "-R", flag, *(["+C"] if combine else [])]
        cp = peers.run_dcmtk(
            "storescu", *argv, "127.0.0.1", tmp_port, get_testdata_file("CT_small.dcm")
        )
    proposed, _ = proposed_and_accepted(cp.stderr + cp.stdout)
    assert tuple(proposed) == storescu_contexts(key, combine=combine)


@pytest.mark.interop
@pytest.mark.parametrize(
    "key",
    ["prefer-uncompr", "prefer-little", "prefer-big", "prefer-lossless", "prefer-jpeg8",
     "prefer-j2k-lossless", "prefer-rle", "implicit", "accept-all"],
)  # fmt: skip
def test_storescp_accepts_what_we_say(key: str, tmp_path, tmp_port) -> None:
    flag = next(f for f, k, _ in SCP_OPTIONS if k == key)
    ct = get_testdata_file("CT_small.dcm")
    with peers.DcmtkServer("storescp", ["-od", tmp_path, flag], tmp_port):
        for scu_key in ("propose-lossless", "propose-rle", "propose-big"):
            scu_flag = next(f for f, k, _ in SCU_OPTIONS if k == scu_key)
            cp = peers.run_dcmtk("storescu", "-d", "-R", "+C", scu_flag, "127.0.0.1", tmp_port, ct)
            (offer,), accepted = proposed_and_accepted(cp.stderr + cp.stdout)
            expected = next(ts for ts in SCP_PREFERENCES[key] if ts in offer)
            assert accepted == {1: expected}, (scu_key, cp.stderr)


def test_transfer_syntax_strings_equal_pydicoms_constants():
    """syntaxes.py spells the UIDs out (no pydicom import at start-up); they must not drift."""
    from pydicom import uid as pu

    import pacsbox.syntaxes as syntaxes

    names = [n for n in dir(pu) if hasattr(syntaxes, n) and not n.startswith("_")]
    assert len(names) > 20
    for name in names:
        ours, theirs = getattr(syntaxes, name), getattr(pu, name)
        if isinstance(theirs, list):
            assert list(ours) == [str(u) for u in theirs], name
        elif isinstance(theirs, str):
            assert ours == str(theirs), name
