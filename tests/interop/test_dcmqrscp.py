"""`pacsbox dcmqrscp -c dcmqrscp.cfg` with the tutorial's configuration, driven by DCMTK's
tools as in the tutorial: echoscu's rejections (with the *correct* reason), storescu's CT
and its JPEG lossless CT."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import peers
from tests.pacsbox_cli import PACSBOX, run_pacsbox
from tests.storage_data import build_samples, meta

pytestmark = pytest.mark.interop

JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return build_samples(tmp_path_factory.mktemp("samples"))


def dcmqrscp(
    tmp_path: Path, *options: str, cfg: Path | None = None, port: int | None = None
) -> peers.PeerProcess:
    """`pacsbox dcmqrscp -c cfg` (the tutorial's config by default) listening on ``port``."""
    port = port or peers.free_port()
    cfg = cfg or peers.tutorial_cfg(tmp_path, port)
    argv = [PACSBOX, "dcmqrscp", "-v", "--host", "127.0.0.1", "-c", cfg, *options]
    return peers.PeerProcess(argv, port, name="pacsbox-dcmqrscp")


def test_tutorial_echoscu_rejections_and_acceptance(tmp_path):
    with dcmqrscp(tmp_path) as server:
        port = server.port
        cp = peers.run_dcmtk("echoscu", "-v", "localhost", port)
        assert cp.returncode != 0
        assert "Called AE Title Not Recognized" in cp.stderr
        cp = peers.run_dcmtk("echoscu", "-v", "localhost", port, "-aec", "ACME_STORE")
        assert cp.returncode != 0
        # dcmqrscp says "Called AE Title Not Recognized" here, which misled the tutorial
        assert "Calling AE Title Not Recognized" in cp.stderr
        cp = peers.run_dcmtk(
            "echoscu", "-v", "localhost", port, "-aec", "ACME_STORE", "-aet", "ACME1"
        )
        assert cp.returncode == 0, cp.stderr
        assert "Received Echo Response (Success)" in cp.stderr
    log = server.stderr()
    # the server log names what would admit the refused calling AE title
    assert "calling AE title 'ECHOSCU' may not use ACME_STORE" in log
    assert "acmeCTcompany" in log


def test_pacsbox_echoscu_hints_at_the_calling_ae(tmp_path):
    with dcmqrscp(tmp_path) as server:
        cp = run_pacsbox("echoscu", "localhost", server.port, "-aec", "ACME_STORE")
    assert cp.returncode == 1
    assert "Calling AE Title Not Recognized" in cp.stderr
    assert "-aet" in cp.stderr and "'ECHOSCU'" in cp.stderr


@pytest.mark.parametrize("options", [(), ("+xs",)], ids=["default", "+xs"])
def test_tutorial_storescu_ct_and_jpeg_lossless(tmp_path, samples, options):
    """The tutorial's storescu commands, DCMTK's storescu as the client. Against DCMTK's
    dcmqrscp the JPEG lossless store fails without +xs; pacsbox's archive keeps it in its
    syntax either way."""
    ct, compressed = samples["ct"], samples["ct_jpeg_lossless"]
    with dcmqrscp(tmp_path, *options) as server:
        port = server.port
        cp = peers.run_dcmtk(
            "storescu", "localhost", port, ct.path, "-aec", "ACME_STORE", "-aet", "ACME1", "-v"
        )
        assert cp.returncode == 0, cp.stderr
        cp = peers.run_dcmtk(
            "storescu", "localhost", port, compressed.path, "-aec", "ACME_STORE", "-aet", "ACME1",
            "-d", "--required", "--propose-lossless",
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        assert "unable to convert dataset" not in cp.stderr
    database = tmp_path / "database"
    stored = {p.name: p for p in database.iterdir()}
    assert set(stored) == {ct.stored_name, compressed.stored_name}
    assert meta(stored[compressed.stored_name]).TransferSyntaxUID == JPEG_LOSSLESS_SV1


def test_read_only_area_refuses_stores_and_says_which_line(tmp_path, samples):
    port = peers.free_port()
    cfg = peers.write_dcmqrscp_cfg(
        tmp_path / "dcmqrscp.cfg",
        port=port,
        storage_dir=tmp_path / "db",
        hosts={"acme1": ("ACME1", "localhost", 1234)},
        ae_table=[("READONLY", tmp_path / "db" / "ro", "R", (10, "100mb"), "acme1")],
    )
    with dcmqrscp(tmp_path, cfg=cfg, port=port) as server:
        cp = run_pacsbox(
            "storescu",
            "-aec",
            "READONLY",
            "-aet",
            "ACME1",
            "localhost",
            server.port,
            samples["ct"].path,
        )
    assert cp.returncode == 1
    assert "read-only (R)" in cp.stderr and "RW" in cp.stderr
    assert (
        not any((tmp_path / "db" / "ro").iterdir()) if (tmp_path / "db" / "ro").exists() else True
    )


def test_a_bad_config_line_is_reported_with_its_number(tmp_path):
    cfg = tmp_path / "dcmqrscp.cfg"
    cfg.write_text(
        "NetworkTCPPort = 11112\nAETable BEGIN\nACME_STORE /tmp/x RWX (10, 10mb) ANY\nAETable END\n"
    )
    cp = run_pacsbox("dcmqrscp", "-c", cfg)
    assert cp.returncode == 1
    assert f"{cfg}:3:" in cp.stderr
    assert "RWX" in cp.stderr


def test_a_calling_ae_from_another_host_than_its_hosttable_entry_is_refused(tmp_path):
    """dcmqrscp checks the peer's host against the HostTable; so does pacsbox (AE titles are
    no authentication, but a modality cannot borrow another's entry by its title alone)."""
    port = peers.free_port()
    cfg = peers.write_dcmqrscp_cfg(
        tmp_path / "dcmqrscp.cfg", port=port, storage_dir=tmp_path / "db",
        hosts={"elsewhere": ("FARAWAY", "192.0.2.1", 104), "here": ("NEARBY", "localhost", 104)},
        ae_table=[("STORE", tmp_path / "db" / "s", "RW", (10, "10mb"), "elsewhere here")],
    )  # fmt: skip
    with dcmqrscp(tmp_path, cfg=cfg, port=port) as server:
        far = peers.run_dcmtk("echoscu", "-aet", "FARAWAY", "-aec", "STORE", "127.0.0.1", port)
        near = peers.run_dcmtk("echoscu", "-aet", "NEARBY", "-aec", "STORE", "127.0.0.1", port)
    assert far.returncode != 0 and "Calling AE Title Not Recognized" in far.stderr
    assert near.returncode == 0, near.stderr
    assert "connected from 127.0.0.1, but the HostTable puts it on 192.0.2.1" in server.stderr()
