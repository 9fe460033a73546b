"""`pacsbox serve --config FILE` as a user runs it: the file's AE title, port, calling AE
titles, data folder (relative to the file) and transfer syntaxes are what the server does;
a flag overrides the file; a bad file stops serve with the line to fix."""

from __future__ import annotations

import pytest

from pacsbox.archive import Index
from tests import peers
from tests.pacsbox_cli import PACSBOX, run_pacsbox
from tests.storage_data import build_samples

pytestmark = pytest.mark.e2e


def test_serve_runs_as_its_configuration_file_says(tmp_path):
    samples = build_samples(tmp_path / "samples")
    port = peers.free_port()
    config = tmp_path / "etc" / "pacsbox.toml"
    config.parent.mkdir()
    config.write_text(
        f"""
[server]
ae_title = "CFGPACS"
host = "127.0.0.1"
port = {port}
require_called_ae = true
calling_ae_titles = ["STORESCU", "ECHOSCU"]

[storage]
data = "../archive"   # relative to this file

[transfer_syntaxes]
accept = ["+xi"]      # implicit VR little endian only
"""
    )
    argv = [PACSBOX, "serve", "--config", config, "-v"]
    with peers.PeerProcess(argv, port, name="pacsbox-serve") as server:
        ok = peers.run_dcmtk("echoscu", "-aec", "CFGPACS", "127.0.0.1", port)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        wrong_called = peers.run_dcmtk("echoscu", "-aec", "OTHER", "127.0.0.1", port)
        assert "Called AE Title Not Recognized" in wrong_called.stderr
        unknown_calling = peers.run_dcmtk("echoscu", "-aet", "NOBODY", "-aec", "CFGPACS",
                                          "127.0.0.1", port)  # fmt: skip
        assert "Calling AE Title Not Recognized" in unknown_calling.stderr
        sent = peers.run_dcmtk("storescu", "-v", "-aec", "CFGPACS", "127.0.0.1", port,
                               samples["ct"].path)  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "Configuration: " in server.stdout()
    assert "'NOBODY' is not configured" in server.output()
    with Index.open(f"sqlite:///{tmp_path / 'archive' / 'index.sqlite'}") as index:
        record = index.get_instance(samples["ct"].sop_instance_uid)
    assert record is not None
    assert record.transfer_syntax == "1.2.840.10008.1.2"  # +xi: the file's preference
    assert (tmp_path / "archive" / "files" / record.path).is_file()


def test_a_flag_overrides_the_file(tmp_path):
    port, other = peers.free_port(), peers.free_port()
    config = tmp_path / "pacsbox.toml"
    config.write_text(f'[server]\nae_title = "CFGPACS"\nport = {other}\nhost = "127.0.0.1"\n')
    argv = [PACSBOX, "serve", "--config", config, "--port", port, "--data", tmp_path / "d"]
    with peers.PeerProcess(argv, port, name="pacsbox-serve") as server:
        ok = peers.run_dcmtk("echoscu", "-aec", "CFGPACS", "127.0.0.1", port)
        assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"on port {port}" in server.stdout()


def test_a_bad_file_stops_serve_with_the_line_to_fix(tmp_path):
    config = tmp_path / "pacsbox.toml"
    config.write_text('[server]\nae_title = "CFGPACS"\nport = "11112"\n')
    cp = run_pacsbox("serve", "--config", config)
    assert cp.returncode == 1
    assert f"{config}:3: [server] port: expected an integer from 0 to 65535" in cp.stderr
