"""pacsbox's TOML configuration (`pacsbox serve --config`): the example file, every key, every
kind of error (file, line, key, what to write), and the order defaults < file < flags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pacsbox.cli import serve
from pacsbox.config.native import (
    MAX_WORKERS,
    ON_DUPLICATE,
    NativeConfigError,
    Peer,
    ServeConfig,
    ServerSettings,
    available_cpus,
    dumps,
    load,
    parse,
    resolve_transfer_syntaxes,
)
from pacsbox.syntaxes import ARCHIVE_PREFERENCE, SCP_PREFERENCES, JPEGLosslessSV1, RLELossless

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "pacsbox.example.toml"

FULL = """\
[server]
ae_title = "MYPACS"
host = "127.0.0.1"
port = 4242
max_associations = 4
max_pdu = 16384
acse_timeout = 5
dimse_timeout = 2.5
idle_timeout = 0
require_called_ae = true
calling_ae_titles = ["CT1", "MR 2"]

[storage]
data = "archive"
on_duplicate = "keep"

[database]
url = "postgresql://pacsbox@db.example.org/pacsbox"

[transfer_syntaxes]
accept = ["+xs", "RLELossless", "1.2.840.10008.1.2"]

[peers.CT1]
host = "ct1.example.org"
port = 104

[peers."MR 2"]
host = "10.0.0.2"
port = 11112
"""


def test_the_example_file_loads_and_matches_the_defaults_it_documents():
    config = load(EXAMPLE)
    defaults = ServeConfig()
    assert config.source == EXAMPLE
    assert config.server == defaults.server
    assert config.database == defaults.database
    assert config.transfer_syntaxes.uids == ARCHIVE_PREFERENCE
    # relative to the file's folder, not to the working directory
    assert config.storage.data == EXAMPLE.parent / "pacs-data"
    assert config.peers == {
        "STORESCP": Peer("STORESCP", "127.0.0.1", 11113),
        "ACME CT 1": Peer("ACME CT 1", "ct1.example.org", 104),
    }


def test_an_empty_file_is_the_zero_configuration():
    assert parse("") == ServeConfig()
    assert ServeConfig().database_url == "sqlite:///pacs-data/index.sqlite"


def test_every_key(tmp_path):
    path = tmp_path / "pacsbox.toml"
    path.write_text(FULL)
    config = load(path)
    assert config.server == ServerSettings(
        ae_title="MYPACS",
        host="127.0.0.1",
        port=4242,
        max_associations=4,
        max_pdu=16384,
        acse_timeout=5,
        dimse_timeout=2.5,
        idle_timeout=None,  # 0: never
        require_called_ae=True,
        calling_ae_titles=("CT1", "MR 2"),
    )
    assert config.storage.data == tmp_path / "archive"
    assert config.storage.on_duplicate == "keep"
    assert config.database_url == "postgresql://pacsbox@db.example.org/pacsbox"
    assert config.transfer_syntaxes.uids == (
        *SCP_PREFERENCES["prefer-lossless"],
        RLELossless,
    )  # the implicit VR UID was in +xs already: once
    assert config.peers["MR 2"] == Peer("MR 2", "10.0.0.2", 11112)


@pytest.mark.parametrize(
    ("names", "first"),
    [
        (("archive",), ARCHIVE_PREFERENCE[0]),
        (("+xs", "archive"), JPEGLosslessSV1),
        (("prefer-lossless",), JPEGLosslessSV1),
        (("JPEGLosslessSV1",), JPEGLosslessSV1),
        (("1.2.840.10008.1.2.5",), RLELossless),
    ],
)
def test_transfer_syntax_names(names, first):
    uids = resolve_transfer_syntaxes(names)
    assert uids[0] == first
    assert len(uids) == len(set(uids))


def test_an_absolute_data_folder_stays(tmp_path):
    config = parse(f'[storage]\ndata = "{tmp_path}"\n', base=Path("/elsewhere"))
    assert config.storage.data == tmp_path


# (file, line, what the message must say)
ERRORS = [
    ("[server]\nprot = 104\n", 2, ["[server] prot", "unknown key", "did you mean 'port'",
                                   "the keys of [server] are"]),
    ("[server]\nport = \"104\"\n", 2, ["[server] port", 'not "104" (a string)',
                                       "an integer from 0 to 65535", "default (11112)"]),
    ("[server]\nport = 70000\n", 2, ["[server] port", "not 70000 (an integer)", "from 0 to 65535"]),
    ("[server]\nport = true\n", 2, ["[server] port", "not true (a boolean)"]),
    ("[server]\nmax_pdu = 1024\n", 2, ["[server] max_pdu", "from 4096 to 131072"]),
    ("[server]\nacse_timeout = 0\n", 2, ["[server] acse_timeout", "more than 0"]),
    ("[server]\nidle_timeout = -1\n", 2, ["[server] idle_timeout", "0: never"]),
    ("[server]\nrequire_called_ae = \"yes\"\n", 2, ["require_called_ae", "true or false"]),
    ("[server]\nae_title = \"THIS_IS_FAR_TOO_LONG\"\n", 2,
     ["[server] ae_title", "20 characters", "at most 16"]),
    ("[server]\nae_title = \"   \"\n", 2, ["ae_title", "empty or all spaces"]),
    ("[server]\ncalling_ae_titles = \"CT1\"\n", 2, ["calling_ae_titles", "an array of AE titles"]),
    ("[server]\ncalling_ae_titles = [\"CT1\", 5]\n", 2, ["calling_ae_titles", "5 (an integer)"]),
    ("\n[storage]\ndata = 5\n", 3, ["[storage] data", "a folder"]),
    ("[storage]\non_duplicate = \"skip\"\n", 2, ["on_duplicate", '"replace", "keep" or "refuse"']),
    ("[database]\nurl = \"mysql://x@y/z\"\n", 2, ["[database] url", "postgresql://"]),
    ("[transfer_syntaxes]\naccept = []\n", 2, ["accept", "non-empty array"]),
    ("[transfer_syntaxes]\naccept = [\"+xz\"]\n", 2, ["'+xz' is no transfer syntax"]),
    ("[transfer_syntaxes]\naccept = [\"JPEGLossles\"]\n", 2, ["did you mean 'JPEGLossless'"]),
    ("[transfer_syntaxes]\naccept = [\"1.2.3.4\"]\n", 2, ["'1.2.3.4' is no transfer syntax"]),
    ("[limits]\nmax = 1\n", 1, ["[limits]", "unknown section", "[peers.<AE title>]"]),
    ("sever.port = 1\n", 1, ["[sever]", "did you mean 'server'"]),
    ("server = 1\n", 1, ["server must be a section"]),
    ("[peers.CT1]\nhost = \"ct1\"\n", 1, ["[peers.CT1]", "no port", "add port = ..."]),
    ("[peers.CT1]\nhost = \"ct1\"\nport = 104\naet = \"X\"\n", 4,
     ["[peers.CT1] aet", "unknown key", "host, port"]),
    ("[peers.CT1]\nhost = \"ct1\"\nport = 0\n", 3, ["[peers.CT1] port", "from 1 to 65535"]),
    ("[peers.\"A\\\\B\"]\nhost = \"x\"\nport = 1\n", None, ["backslash"]),
    ("[peers]\nCT1 = 5\n", 2, ["[peers] CT1", "a peer must be a section"]),
    ("[server]\nport = 104\n[server]\n", 3, ["not valid TOML", "Cannot declare"]),
    ("[server]\nport = \n", 2, ["not valid TOML"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "phrases"), ERRORS)
def test_errors_name_the_file_the_line_the_key_and_the_fix(tmp_path, text, line, phrases):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(NativeConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert caught.value.line == line
    prefix = f"{path}:{line}: " if line else f"{path}: "
    assert message.startswith(prefix), message
    for phrase in phrases:
        assert phrase in message, message
    assert "; " in message  # then what to write


def test_a_file_that_cannot_be_read(tmp_path):
    with pytest.raises(NativeConfigError, match=r"cannot read the configuration file.*--config"):
        load(tmp_path / "missing.toml")
    (tmp_path / "latin1.toml").write_bytes(b'[server]\nae_title = "\xe9"\n')
    with pytest.raises(NativeConfigError, match="not UTF-8"):
        load(tmp_path / "latin1.toml")


def effective(*argv: str) -> ServeConfig:
    return serve.effective_config(serve.parser().parse_args(list(argv)))


def test_flags_override_the_file_which_overrides_the_defaults(tmp_path):
    path = tmp_path / "pacsbox.toml"
    path.write_text(FULL)
    assert effective() == ServeConfig()
    from_file = effective("--config", str(path))
    assert from_file == load(path)
    config = effective(
        "--config", str(path), "--port", "5000", "-aet", "FLAGS", "-ts", "30", "-ta", "7",
        "-td", "0", "--max-associations", "9", "-pdu", "32768", "--require-called-aet",
        "--data", "elsewhere", "--db", "sqlite:///x.sqlite", "+xr", "--on-duplicate", "refuse",
    )  # fmt: skip
    assert config.server == ServerSettings(
        ae_title="FLAGS",
        host="127.0.0.1",  # from the file: no flag given
        port=5000,
        max_associations=9,
        max_pdu=32768,
        acse_timeout=7,
        dimse_timeout=None,
        idle_timeout=30,
        require_called_ae=True,
        calling_ae_titles=("CT1", "MR 2"),  # no flag for it: the file's
    )
    assert config.storage.data == Path("elsewhere")  # a flag's path: from the working dir
    assert config.storage.on_duplicate == "refuse"
    assert config.database_url == "sqlite:///x.sqlite"
    assert config.transfer_syntaxes.uids == SCP_PREFERENCES["prefer-rle"]
    assert config.peers == load(path).peers


def test_a_bad_flag_value_names_the_flag():
    with pytest.raises(NativeConfigError, match=r"^command line: --acse-timeout: .*more than 0"):
        effective("-ta", "0")
    with pytest.raises(NativeConfigError, match=r"--aet: .*at most 16"):
        effective("--aet", "X" * 17)


def test_the_printed_configuration_reads_back_the_same(tmp_path):
    path = tmp_path / "pacsbox.toml"
    path.write_text(FULL.replace("pacsbox@db", "pacsbox:secret@db"))
    config = load(path)
    text = dumps(config, comment="a comment")
    assert text.startswith("# a comment\n")
    assert "secret" not in text and "pacsbox:***@db" in text
    again = parse(text.replace(":***@", ":secret@"))
    assert again == config.__class__(**{**_fields(config), "source": None})
    # unset database url: stays unset, the comment says where SQLite is
    zero = dumps(ServeConfig())
    assert "# url not set: the index is sqlite:///" in zero
    assert parse(zero).database.url is None


def _fields(config: ServeConfig) -> dict:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def test_print_config_from_the_command_line(tmp_path):
    path = tmp_path / "pacsbox.toml"
    path.write_text(FULL)
    out = subprocess.run(
        [sys.executable, "-m", "pacsbox.cli.main", "serve", "--config", str(path),
         "--print-config", "--port", "5001"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert out.startswith(f"# pacsbox serve: defaults < {path} < flags\n")
    assert "port = 5001\n" in out and 'ae_title = "MYPACS"\n' in out
    assert parse(out).server.port == 5001


def test_serve_reads_its_configuration_without_pydicom():
    """CLI tools import pydicom only when they need it: a config error answers at once."""
    code = (
        "import sys\n"
        "from pacsbox.cli import serve\n"
        "serve.effective_config(serve.parser().parse_args(['--port', '1']))\n"
        "assert 'pydicom' not in sys.modules, 'pydicom imported'\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_on_duplicate_choices_are_the_storage_scps():
    from pacsbox.services import storage_scp

    assert storage_scp.ON_DUPLICATE == ON_DUPLICATE


def test_workers_from_the_file_or_the_flag(tmp_path):
    assert ServeConfig().server.workers == 1  # this process alone, as before --workers
    assert parse("[server]\nworkers = 4\n").server.workers == 4
    cpus = min(available_cpus(), MAX_WORKERS)
    assert parse('[server]\nworkers = "auto"\n').server.workers == cpus
    path = tmp_path / "pacsbox.toml"
    path.write_text("[server]\nworkers = 4\n")
    assert effective("--config", str(path)).server.workers == 4
    assert effective("--config", str(path), "--workers", "2").server.workers == 2
    assert effective("--workers", "auto").server.workers == cpus
    assert parse(dumps(effective("--workers", "3"))).server.workers == 3
    with pytest.raises(NativeConfigError, match=r":2: \[server\] workers: expected an integer"):
        parse("[server]\nworkers = 0\n")
    with pytest.raises(NativeConfigError, match=r"^command line: --workers: .*\"two\""):
        effective("--workers", "two")
