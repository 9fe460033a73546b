"""dcmqrscp.cfg is read as DCMTK 3.6.7's dcmqrscp reads it (dcmqrdb/libsrc/dcmqrcnf.cc).

The grammar facts pinned here were checked against DCMTK's source and against the real
binary; ``test_dcmtk_agrees`` re-checks the "valid or not" verdict with dcmqrscp itself.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacsbox.config import Access, ConfigError, DcmqrscpConfig, Host, dump, load, parse
from pacsbox.config.dcmqrscp import DCMTK_UPPER_MAX_BYTES_PER_STUDY
from pacsbox.errors import PacsboxError
from tests import peers

DEBIAN_CFG = Path("/etc/dcmtk/dcmqrscp.cfg")
MB = 1024 * 1024

# The seed tutorial's final configuration ("Setting up dcmqrscp"), verbatim.
TUTORIAL = """\
NetworkTCPPort  = 11112
MaxPDUSize      = 16384
MaxAssociations = 16

HostTable BEGIN
acme1           = (ACME1, localhost, 1234)
acme2           = (ACME2, localhost, 5678)
acmeCTcompany   = acme1, acme2
HostTable END

VendorTable BEGIN
"Acme CT Company"   = acmeCTcompany
VendorTable END

AETable BEGIN
ACME_STORE   /tmp/database   RW (100, 1024mb)   acmeCTcompany
AETable END
"""

HOSTS = """\
HostTable BEGIN
acme1 = (ACME1, localhost, 1234)
acme2 = (ACME2, localhost, 5678)
acmeCTcompany = acme1, acme2
HostTable END
"""


def with_area(row: str, hosts: str = HOSTS) -> str:
    return f"NetworkTCPPort = 11112\n{hosts}AETable BEGIN\n{row}\nAETable END\n"


# -- the tutorial's configuration -------------------------------------------------------


def test_tutorial_config() -> None:
    config = parse(TUTORIAL)
    assert (config.port, config.max_pdu, config.max_associations) == (11112, 16384, 16)
    acme1 = Host("acme1", "ACME1", "localhost", 1234)
    acme2 = Host("acme2", "ACME2", "localhost", 5678)
    assert config.hosts == {"acme1": (acme1,), "acme2": (acme2,), "acmeCTcompany": (acme1, acme2)}
    assert config.host_table["acmeCTcompany"] == ("acme1", "acme2")
    assert config.vendors == {"Acme CT Company": ("acmeCTcompany",)}
    area = config.area_for("ACME_STORE")
    assert area is not None
    assert (area.path, area.access, area.max_studies) == ("/tmp/database", Access.RW, 100)
    assert area.max_bytes_per_study == 1024 * MB  # binary units: 1mb = 1024 * 1024 bytes
    assert area.peers == frozenset({"ACME1", "ACME2"})
    assert area.peer_names == ("acmeCTcompany",)
    assert area.line == 16
    assert config.may_connect("ACME1", "ACME_STORE")
    assert config.may_connect("ACME2", "ACME_STORE", peer_host="LOCALHOST")  # DNS: no case
    assert not config.may_connect("ECHOSCU", "ACME_STORE")
    assert not config.may_connect("acme1", "ACME_STORE")  # AE titles are case-sensitive
    assert not config.may_connect("ACME1", "ACME_STORE", peer_host="otherhost")
    assert not config.may_connect("ACME1", "OTHER_STORE")
    assert config.peer("ACME1") == acme1
    assert (config.peer("ACME1").hostname, config.peer("ACME1").port) == ("localhost", 1234)
    assert config.peer("NOBODY") is None
    assert config.admitting_entries("ACME2") == [
        "AETable ACME_STORE (line 16) via acmeCTcompany (ACME2 at localhost:5678)"
    ]
    assert config.admitting_entries("ECHOSCU") == []
    assert config.warnings == ()


def test_tutorial_config_as_written_by_the_test_helpers(tmp_path: Path) -> None:
    config = load(peers.tutorial_cfg(tmp_path, 11112))
    assert config.areas["ACME_STORE"].peers == frozenset({"ACME1", "ACME2"})
    assert config.source == str(tmp_path / "dcmqrscp.cfg")


def test_tutorial_default_aetable() -> None:
    """The tutorial's 'default value' AETable: COMMON is readable by ANY peer."""
    hosts = HOSTS.replace(
        "HostTable END",
        "united1 = (UNITED1, unitedhost1, 104)\nunitedMRcompany = united1\nHostTable END",
    )
    rows = (
        "COMMON       /home/dicom/db/COMMON       R  (200, 1024mb) ANY\n"
        "ACME_STORE   /home/dicom/db/ACME_STORE   RW (9, 1024mb)   acmeCTcompany\n"
        "UNITED_STORE /home/dicom/db/UNITED_STORE RW (9, 1024mb)   unitedMRcompany"
    )
    config = parse(with_area(rows, hosts))
    common = config.areas["COMMON"]
    assert (common.access, common.peers, common.max_studies) == (Access.R, None, 200)
    assert common.access.can_read and not common.access.can_write
    assert config.may_connect("ANYONE", "COMMON")
    assert not config.may_connect("ACME1", "UNITED_STORE")
    assert config.admitting_entries("ACME1") == [
        "AETable COMMON (line 10, ANY)",
        "AETable ACME_STORE (line 11) via acmeCTcompany (ACME1 at localhost:1234)",
    ]


# -- Debian's /etc/dcmtk/dcmqrscp.cfg ----------------------------------------------------


def debian_text() -> str:
    if not DEBIAN_CFG.exists():
        pytest.fail(
            f"{DEBIAN_CFG} is missing: install DCMTK (`make peers`, Debian package dcmtk)",
            pytrace=False,
        )
    return DEBIAN_CFG.read_text()


def test_debian_config_as_shipped() -> None:
    debian_text()
    config = load(DEBIAN_CFG)
    assert (config.port, config.max_pdu, config.max_associations) == (104, 16384, 16)
    assert (config.user_name, config.group_name) == ("dcmtk", "dcmtk")
    # every table entry is a commented-out example; SpecificCharacterSet too
    assert (config.hosts, config.vendors, config.areas) == ({}, {}, {})
    assert config.character_set is None
    assert config.warnings == ()


def test_debian_config_examples_uncommented() -> None:
    """Uncomment every example entry in Debian's file: it reads as its comments describe."""
    example = re.compile(r'^#(?=\w|"(?:Acme|United))|^# (?=SpecificCharacterSet = ")', re.MULTILINE)
    config = parse(example.sub("", debian_text()), source="debian-uncommented")
    assert config.character_set == ("ISO_IR 192", "override", "discard", "transliterate")
    assert config.hosts["acmeCTcompany"] == (
        Host("acme1", "ACME1", "acmehost1", 5678),
        Host("acme2", "ACME2", "acmehost2", 5678),
    )
    assert config.vendors == {
        "Acme CT Company": ("acmeCTcompany",),
        "United MR Company": ("unitedMRcompany",),
    }
    assert set(config.areas) == {"ACME_STORE", "UNITED_STORE", "READWRITE", "READ"}
    read = config.areas["READ"]
    assert (read.access, read.max_studies, read.max_bytes_per_study) == (Access.R, 200, 1024 * MB)
    assert read.peers is None
    assert config.areas["UNITED_STORE"].peers == frozenset({"UNITED1", "UNITED2"})
    assert config.areas["READWRITE"].path == "/var/lib/dcmtk/db/READWRITE"


# -- grammar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "NetworkTCPPort = 4242",
        "NetworkTCPPort 4242",
        "NetworkTCPPort =4242",
        "NetworkTCPPort\t=\t4242",
        "   NetworkTCPPort = 4242",  # global lines may be indented (table entries may not)
        "NetworkTCPPort = 4242   # a comment after a number is ignored by sscanf",
        "NetworkTCPPort = 4242\r",
    ],
)
def test_global_spellings(line: str) -> None:
    assert parse(line + "\n").port == 4242


def test_crlf_tabs_quotes_and_comments() -> None:
    text = (
        "# comment\r\n\r\n\r\nMaxPDUSize = 32768\r\nHostTable BEGIN\r\n# inside\r\n"
        "acme1\t=\t(ACME1,localhost,1234)\r\n"
        "acme2=(ACME2 , localhost , 5678 )\r\n"
        "'group x' = 'acme1' \"acme2\"\r\n"
        "HostTable END\r\n"
        "AETable BEGIN\r\n"
        '"MY AE" "/data/with space"\tW\t(5,1KB)\t"group x"\r\n'
        "AETable END"  # no final newline
    )
    config = parse(text)
    assert config.max_pdu == 32768
    assert [h.ae_title for h in config.hosts["group x"]] == ["ACME1", "ACME2"]
    area = config.areas["MY AE"]
    assert (area.path, area.access, area.max_studies, area.max_bytes_per_study) == (
        "/data/with space",
        Access.W,
        5,
        1024,
    )
    assert not area.access.can_read and area.access.can_write


@pytest.mark.parametrize(
    ("size", "expected"),
    [("100b", 100), ("100kb", 100 * 1024), ("2GB", 2 * 1024 * MB), ("7Mb", 7 * MB), ("1kB", 1024)],
)
def test_sizes_are_binary_and_case_insensitive(size: str, expected: int) -> None:
    config = parse(with_area(f"S /d RW (9, {size}) ANY"))
    assert config.areas["S"].max_bytes_per_study == expected


def test_size_above_dcmtk_ceiling_is_kept_with_a_warning() -> None:
    config = parse(with_area("S /d RW (501, 2gb) ANY"))
    assert config.areas["S"].max_bytes_per_study == 2 * DCMTK_UPPER_MAX_BYTES_PER_STUDY
    assert len(config.warnings) == 2
    assert "caps it at 500" in config.warnings[0] and "1gb" in config.warnings[1]


def test_groups_of_groups_and_inline_peers() -> None:
    hosts = HOSTS.replace("HostTable END", "all = acmeCTcompany, (X1, xhost, 11)\nHostTable END")
    config = parse(with_area("S /d RW (9, 1mb) all, (INLINE, ihost, 12)", hosts))
    assert [h.ae_title for h in config.hosts["all"]] == ["ACME1", "ACME2", "X1"]
    assert config.hosts["all"][2] == Host("all", "X1", "xhost", 11)
    area = config.areas["S"]
    assert area.peers == frozenset({"ACME1", "ACME2", "X1", "INLINE"})
    assert area.peer_names == ("all", "(INLINE, ihost, 12)")
    # C-MOVE destinations: AETable peers first, then the HostTable (peerForAETitle)
    assert config.peer("INLINE") == Host("", "INLINE", "ihost", 12)
    assert config.may_connect("INLINE", "S", peer_host="IHOST")
    assert config.admitting_entries("INLINE") == [
        "AETable S (line 9) via (INLINE, ihost, 12) (INLINE at ihost:12)"
    ]


def test_wr_is_rw_and_any_may_be_quoted() -> None:
    config = parse(with_area('S /d WR (9, 1mb) "ANY"'))
    assert config.areas["S"].access is Access.RW
    assert config.areas["S"].peers is None


def test_obsolete_keywords_are_ignored_with_a_warning() -> None:
    config = parse("NetworkType = tcp\nDisplayPort = 5\n")
    assert config.warnings == (
        "<string>:1: NetworkType is obsolete and ignored by dcmqrscp; delete the line",
        "<string>:2: DisplayPort is obsolete and ignored by dcmqrscp; delete the line",
    )


def test_a_host_given_by_address_works_here_and_says_dcmqrscp_refuses_it() -> None:
    """dcmqrscp compares the peer's host name with the HostTable's, so a peer written as
    (AE, 127.0.0.1, port) is refused there; pacsbox matches addresses and takes it, and says
    so (the same file may be used with both)."""
    config = parse("HostTable BEGIN\nip = (IPAE, 127.0.0.1, 104)\nHostTable END\n")
    assert [h.hostname for h in config.hosts["ip"]] == ["127.0.0.1"]
    (warning,) = config.warnings
    assert warning.startswith("<string>:2: (IPAE, 127.0.0.1, 104) names its host by address")
    assert "write a host name (e.g. localhost for 127.0.0.1)" in warning
    assert parse("HostTable BEGIN\nh = (A, localhost, 104)\nHostTable END\n").warnings == ()


# -- errors: what dcmqrscp refuses, and what it silently misreads (strict mode) --------

ERRORS = [
    # (text, line, words in the message) -- dcmqrscp refuses all of these
    ("NetworkTCPPort=104\n", 1, ['unknown keyword "NetworkTCPPort=104"', "blank before '='"]),
    ("networktcpport = 104\n", 1, ["case-sensitive: write NetworkTCPPort"]),
    ("Port = 104\n", 1, ['unknown keyword "Port"', "use one of NetworkTCPPort"]),
    ("MaxPDUSize = 16384\n   # note\n", 2, ['unknown keyword "#"', "column 1"]),
    ("\nHostTable BEGIN\nacme1 = (A, h, 1)\n", 2, ['no "HostTable END"', "line 3"]),
    ("HostTable END\n", 1, ['"HostTable END" without "HostTable BEGIN"']),
    ("HostTable begin\n", 1, ['unknown HostTable status "begin"', "upper case"]),
    (with_area("S /d RW (9, 1mb) nobody"), 8, ['"nobody"', "not defined in the HostTable"]),
    (with_area("S /d RW (9, 1mb) ACMEctcompany"), 8, ['did you mean "acmeCTcompany"']),
    (with_area("S /d RW (9, 1mb) acme1 # one"), 8, ['"#"', "a line of its own"]),
    ("AETable BEGIN\nS /d RW (9, 1mb) acme1\nAETable END\n", 2, ["no HostTable entry"]),
    (
        "HostTable BEGIN\ng = a\na = (A, h, 1)\nHostTable END\n",
        2,
        ['"a"', "no HostTable entry is defined before this line"],
    ),
    ("HostTable BEGIN\n  a = (A, h, 1)\nHostTable END\n", 2, ["indented", "column 1"]),
    (  # a group of itself: dcmqrscp dies on it ("Memory allocation")
        "HostTable BEGIN\na = (A, h, 1)\ng = g, a\nHostTable END\n",
        3,
        ['HostTable entry "g" lists itself', "g = entry1, entry2"],
    ),
    (  # a quote inside the parentheses ends the value: dcmqrscp reads an empty name
        'HostTable BEGIN\n"acme q" = ("SPACE AE", localhost, 21304)\nHostTable END\n',
        2,
        ["an empty name", "without quotes"],
    ),
    ("HostTable BEGIN\na = (A, h, 1)\n  \nHostTable END\n", 3, ["a line of blanks"]),
    ("HostTable BEGIN\na = (A, h)\nHostTable END\n", 2, ["has 2 fields", "expected 3"]),
    ("HostTable BEGIN\na =\nHostTable END\n", 2, ["no members"]),
    ("HostTable BEGIN\nAETable BEGIN\n", 2, ['"AETable BEGIN" inside the HostTable']),
    (with_area("S /d RW (0, 1mb) ANY"), 8, ["0 studies"]),
    (with_area("S /d RW (9, 0mb) ANY"), 8, ["zero bytes"]),
    (with_area("S /d RW 9, 1mb ANY"), 8, ["not in parentheses", "(100, 1024mb)"]),
    (with_area("S /d RW (9 1mb) ANY"), 8, ["not (maxStudies, maxBytesPerStudy)"]),
    (with_area("S /d RW (9, 1mb)"), 8, ["has no peers", "ANY"]),
    (with_area("S /d RW"), 8, ["fewer than 5 fields"]),
    ("MaxPDUSize = 1000\n", 1, ["MaxPDUSize 1000 is out of range", "4096 to 131072"]),
    ("X" * 600 + "\n", 1, ["longer than 511 bytes"]),
    # dcmqrscp accepts these, but reads something else than what is written
    (with_area("S /d RWX (9, 1mb) ANY"), 8, ['access mode "RWX"', "expected R, RW or W"]),
    (with_area("S /d rw (9, 1mb) ANY"), 8, ['access mode "rw"', "upper case"]),
    (with_area("S /d RW (9, 1024xb) ANY"), 8, ['unit "xb"', "use b, kb, mb or gb"]),
    (with_area("S /d RW (9, 1024) ANY"), 8, ['"1024" has no unit', "no limit"]),
    (with_area("S /d RW (9, 1024 mb) ANY"), 8, ['ignores "mb"', "no blank between"]),
    (with_area("S /d RW (-1, 1mb) ANY"), 8, ["-1 studies"]),
    (with_area("S /d RW (9, 1mb) ANY\nS /e R (9, 1mb) ANY"), 9, ["second AETable row", "line 8"]),
    (with_area("SEVENTEEN_CHARS_X /d RW (9, 1mb) ANY"), 8, ["17 characters", "at most 16"]),
    ("HostTable BEGIN\na = (A, h, 1)\na = (B, h, 1)\nHostTable END\n", 3, ["defined twice"]),
    ("HostTable BEGIN\na = (A, h, 1, 2)\nHostTable END\n", 2, ["has 4 fields"]),
    ("HostTable BEGIN\na = ( A, h, 1)\nHostTable END\n", 2, ["blank after '('"]),
    ("HostTable BEGIN\na = (A, h, 70000)\nHostTable END\n", 2, ["1 to 65535"]),
    ("HostTable BEGIN\na = (SEVENTEEN_CHARS_X, h, 1)\nHostTable END\n", 2, ["17 characters"]),
    ("NetworkTCPPort = 70000\n", 1, ["70000 is out of range", "listen on 4464"]),
    ("NetworkTCPPort = 0\n", 1, ["0 is out of range"]),
    ("NetworkTCPPort = abc\n", 1, ['"abc" is not a whole number', "its default 104"]),
    ("MaxAssociations = 0\n", 1, ["refuse every association"]),
    ("MaxAssociations = 16 17\n", 1, ['extra text "17"']),
]


@pytest.mark.parametrize(("text", "line", "words"), ERRORS)
def test_errors_name_the_line_and_the_fix(text: str, line: int, words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text, source="my.cfg")
    error = caught.value
    assert isinstance(error, PacsboxError)
    assert error.line == line
    message = str(error)
    assert message.startswith(f"my.cfg:{line}: ")
    assert re.fullmatch(r"my\.cfg:\d+: .+; .+", message, re.DOTALL)  # problem; fix
    for word in words:
        assert word in message


def test_lenient_mode_reads_what_dcmqrscp_reads() -> None:
    text = (
        "NetworkTCPPort = 70000\nMaxAssociations = 16 17\n"
        + HOSTS
        + "AETable BEGIN\nS /d RWX (9, 1024xb) ANY extra\nT /e RW (9, 1024) acme1\n"
        + "T /f RW (9, 1kb) ANY\nAETable END\n"
    )
    config = parse(text, strict=False)
    assert config.port == 70000 & 0xFFFF
    assert config.max_associations == 16
    assert config.areas["S"].access is Access.R  # anything but RW/WR/W is read-only
    assert config.areas["S"].max_bytes_per_study == 1024  # "xb": factor 1
    assert config.areas["T"].max_bytes_per_study == -1  # no unit: no limit
    assert config.areas["T"].path == "/e"  # the first row of a duplicate wins
    assert [w.split(":")[1] for w in config.warnings] == ["1", "2", "9", "9", "9", "10", "11"]


def test_load_reports_the_path(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_bytes(b"NetworkTCPPort = 104\r\nAETable BEGIN\r\n")
    with pytest.raises(ConfigError, match=re.escape(f"{cfg}:2: ")):
        load(cfg)


# -- dcmqrscp itself agrees on "valid or not" -------------------------------------------

DIFFERENTIAL = [
    # (name, config body after NetworkTCPPort, dcmqrscp starts, strict pacsbox accepts)
    ("tutorial", TUTORIAL.split("\n", 1)[1], True, True),
    ("no blank before =", "MaxPDUSize=16384\n", False, False),
    (
        "undefined peer",
        HOSTS + "AETable BEGIN\nS {dir} RW (9, 1mb) nobody\nAETable END\n",
        False,
        False,
    ),
    ("no END", "HostTable BEGIN\nacme1 = (ACME1, localhost, 1234)\n", False, False),
    ("indented entry", "HostTable BEGIN\n  a = (A, h, 1)\nHostTable END\n", False, False),
    (
        "unknown unit",
        HOSTS + "AETable BEGIN\nS {dir} RW (9, 1024xb) ANY\nAETable END\n",
        True,
        False,
    ),
    (
        "unknown access",
        HOSTS + "AETable BEGIN\nS {dir} RWX (9, 1mb) ANY\nAETable END\n",
        True,
        False,
    ),
]


def dcmqrscp_starts(cfg: Path, port: int) -> tuple[bool, str]:
    """Start dcmqrscp on ``cfg``; True once it listens, False if it exits first (<= 3 s)."""
    process = subprocess.Popen(
        [peers.require("dcmqrscp"), "-c", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=peers.dcmtk_env(),
    )
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and process.poll() is None:
            try:
                peers.wait_for_port(port, timeout=0.1)
                return True, ""
            except peers.PeerStartError:
                continue
        assert process.poll() is not None, "dcmqrscp neither listened nor exited in 3 s"
        return False, process.communicate()[0].decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.interop
@pytest.mark.parametrize(("name", "body", "dcmtk_starts", "strict_ok"), DIFFERENTIAL)
def test_dcmtk_agrees(
    tmp_path: Path, name: str, body: str, dcmtk_starts: bool, strict_ok: bool
) -> None:
    port = peers.free_port()
    text = f"NetworkTCPPort = {port}\n" + body.format(dir=tmp_path)
    cfg = tmp_path / "dcmqrscp.cfg"
    cfg.write_text(text)
    started, output = dcmqrscp_starts(cfg, port)
    assert started == dcmtk_starts, output

    def accepted(strict: bool) -> bool:
        try:
            parse(text, strict=strict)
        except ConfigError:
            return False
        return True

    assert accepted(strict=False) == started  # lenient: dcmqrscp's own verdict
    assert accepted(strict=True) == strict_ok  # strict: also refuses silent misreadings
    if not started:
        line = re.search(r"line (\d+)", output)
        with pytest.raises(ConfigError) as caught:
            parse(text)
        if line and 'No "HostTable END"' not in output:
            assert caught.value.line == int(line[1])  # the same line DCMTK names


# -- round trip: parse(dump(config)) == config --------------------------------------------

_RESERVED = {"ANY", "HostTable", "VendorTable", "AETable", "BEGIN", "END"}
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,11}", fullmatch=True).filter(
    lambda n: n not in _RESERVED
)
ae_titles = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,15}", fullmatch=True).filter(
    lambda n: n not in _RESERVED
)
hostnames = st.from_regex(r"[a-z][a-z0-9.-]{0,15}", fullmatch=True)
tcp_ports = st.integers(1, 65535)
gaps = st.sampled_from([" ", "  ", "\t", " \t "])
equals = st.sampled_from([" = ", " =", "\t=\t", " ", "="])


@st.composite
def configs(draw: st.DrawFn) -> tuple[str, dict]:
    """A valid dcmqrscp.cfg text in varied spelling, and what it should parse to."""
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines: list[str] = []
    expect: dict = {}

    def comment() -> None:
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["# a comment", "#", "", "#HostTable END"])))

    for keyword, values in (
        ("NetworkTCPPort", tcp_ports),
        ("MaxPDUSize", st.integers(4096, 131072)),
        ("MaxAssociations", st.integers(1, 1000)),
    ):
        value = draw(st.none() | values)
        expect[keyword] = value
        if value is not None:
            indent = draw(st.sampled_from(["", " ", "\t"]))
            tail = draw(st.sampled_from(["", "   # why", " "]))
            lines.append(
                f"{indent}{keyword}{draw(st.sampled_from([' = ', ' ', ' =']))}{value}{tail}"
            )
        comment()

    def inline() -> tuple[str, tuple[str, str, int]]:
        peer = (draw(ae_titles), draw(hostnames), draw(tcp_ports))
        sep = draw(st.sampled_from([", ", ",", " , "]))
        return f"({sep.join(map(str, peer))})", peer

    hosts: dict[str, list[tuple[str, str, int]]] = {}
    if draw(st.booleans()):
        lines.append("HostTable BEGIN")
        for name in draw(st.lists(names, max_size=5, unique=True)):
            members, flat = [], []
            for _ in range(draw(st.integers(1, 3))):
                if hosts and draw(st.booleans()):
                    ref = draw(st.sampled_from(sorted(hosts)))
                    members.append(ref)
                    flat += hosts[ref]
                else:
                    text, peer = inline()
                    members.append(text)
                    flat.append(peer)
            hosts[name] = flat
            lines.append(
                name + draw(equals) + draw(st.sampled_from([", ", ",", " "])).join(members)
            )
            comment()
        lines.append("HostTable END")
    expect["hosts"] = hosts

    vendors: dict[str, tuple[str, ...]] = {}
    if hosts and draw(st.booleans()):
        lines.append("VendorTable BEGIN")
        for vendor in draw(
            st.lists(
                st.from_regex(r"[A-Z][a-z]{0,6}( [A-Z]{1,3}){0,2}", fullmatch=True),
                max_size=3,
                unique=True,
            )
        ):
            refs = tuple(draw(st.lists(st.sampled_from(sorted(hosts)), min_size=1, max_size=2)))
            vendors[vendor] = refs
            quote = draw(st.sampled_from(['"', "'"]))
            lines.append(f"{quote}{vendor}{quote}{draw(equals)}{', '.join(refs)}")
        lines.append("VendorTable END")
    expect["vendors"] = vendors

    areas: dict[str, tuple] = {}
    if draw(st.booleans()):
        lines.append("AETable BEGIN")
        comment()
        for ae in draw(st.lists(ae_titles, max_size=3, unique=True)):
            path = draw(st.from_regex(r"/[a-z0-9_/-]{1,20}( [a-z]{1,5})?", fullmatch=True))
            access = draw(st.sampled_from(["R", "RW", "W"]))
            studies = draw(st.integers(1, 500))
            unit = draw(st.sampled_from(["b", "kb", "KB", "mb", "Mb", "gb"]))
            amount = draw(st.integers(1, 1024 if unit.lower() != "gb" else 1))
            peers_text, peer_set = "ANY", None
            if draw(st.booleans()):
                chosen, peer_set = [], set()
                for _ in range(draw(st.integers(1, 2))):
                    if hosts and draw(st.booleans()):
                        ref = draw(st.sampled_from(sorted(hosts)))
                        chosen.append(ref)
                        peer_set |= {h[0] for h in hosts[ref]}
                    else:
                        text, peer = inline()
                        chosen.append(text)
                        peer_set.add(peer[0])
                peers_text = ", ".join(chosen)
            quoted = f'"{path}"' if " " in path else path
            quota = f"({studies},{draw(st.sampled_from([' ', '']))}{amount}{unit})"
            gap = draw(gaps)
            lines.append(gap.join([ae, quoted, access, quota, peers_text]))
            factor = {"b": 1, "kb": 1024, "mb": MB, "gb": 1024 * MB}[unit.lower()]
            areas[ae] = (path, Access(access), studies, amount * factor, peer_set)
        lines.append("AETable END")
    expect["areas"] = areas
    return eol.join(lines) + eol, expect


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_generated_configs_parse_and_round_trip(case: tuple[str, dict]) -> None:
    text, expect = case
    config = parse(text)
    assert config.warnings == ()
    assert (config.port, config.max_pdu, config.max_associations) == (
        expect["NetworkTCPPort"],
        expect["MaxPDUSize"],
        expect["MaxAssociations"],
    )
    assert {
        n: [(h.ae_title, h.hostname, h.port) for h in hs] for n, hs in config.hosts.items()
    } == (expect["hosts"])
    assert config.vendors == expect["vendors"]
    assert {
        ae: (
            a.path,
            a.access,
            a.max_studies,
            a.max_bytes_per_study,
            None if a.peers is None else set(a.peers),
        )
        for ae, a in config.areas.items()
    } == expect["areas"]
    for ae, area in config.areas.items():
        for title in area.peers or ():
            assert config.may_connect(title, ae)
    again = parse(dump(config))
    assert again == config
    assert isinstance(again, DcmqrscpConfig)
