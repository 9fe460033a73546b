"""The interop peers are installed and tests/peers.py can drive them.

These tests use only DCMTK, Orthanc and pynetdicom (no pacsbox code): when one fails, the
problem is the machine or the helpers, not pacsbox.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests import peers

pytestmark = pytest.mark.interop


def _out(cp: subprocess.CompletedProcess[str]) -> str:
    return cp.stdout + cp.stderr


@pytest.mark.parametrize("tool", [*peers.DCMTK_TOOLS, "Orthanc"])
def test_required_tools_are_installed(tool: str) -> None:
    path = peers.require(tool)
    assert os.access(path, os.X_OK)


def test_require_fails_with_a_hint_to_make_peers() -> None:
    with pytest.raises(pytest.fail.Exception, match="make peers"):
        peers.require("no-such-dicom-tool-xyz")


def test_free_port_is_bindable_on_loopback() -> None:
    port = peers.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_dcmtk_env_turns_nagle_off() -> None:
    env = peers.dcmtk_env()
    assert env["TCP_NODELAY"] == "1"
    assert env.get("DCMDICTPATH") == os.environ.get("DCMDICTPATH")


def test_echoscu_against_storescp(tmp_path: Path, tmp_port: int) -> None:
    out_dir = tmp_path / "received"
    out_dir.mkdir()
    with peers.DcmtkServer("storescp", ["-aet", "STORESCP", "-od", out_dir], tmp_port) as scp:
        cp = peers.run_dcmtk("echoscu", "-v", "-aec", "STORESCP", "127.0.0.1", tmp_port)
        assert cp.returncode == 0, _out(cp)
        assert "Received Echo Response (Success)" in _out(cp)
        assert scp.running()


def test_server_start_failure_reports_stderr(tmp_path: Path, tmp_port: int) -> None:
    missing = tmp_path / "does-not-exist"
    with (
        pytest.raises(peers.PeerStartError, match="output directory does not exist"),
        peers.DcmtkServer("storescp", ["-od", missing], tmp_port),
    ):
        pass


def test_server_is_stopped_at_exit(tmp_path: Path, tmp_port: int) -> None:
    with peers.DcmtkServer("storescp", ["-od", tmp_path], tmp_port) as scp:
        pass
    assert not scp.running()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", tmp_port), timeout=1).close()


def test_orthanc_starts_and_answers_echo(orthanc: peers.OrthancServer) -> None:
    assert orthanc.get("/system")["Version"]
    assert orthanc.get("/system")["DicomAet"] == orthanc.aet
    cp = peers.run_dcmtk(
        "echoscu", "-v", "-aet", "UNKNOWNSCU", "-aec", orthanc.aet, "127.0.0.1", orthanc.dicom_port
    )
    assert cp.returncode == 0, _out(cp) + orthanc.output()
    assert "Received Echo Response (Success)" in _out(cp)
    assert orthanc.instances() == []


def test_orthanc_with_modalities(tmp_path: Path) -> None:
    modalities = {"acme1": ("ACME1", "127.0.0.1", peers.free_port())}
    with peers.OrthancServer(tmp_path / "o", aet="PACS", modalities=modalities) as orthanc:
        assert orthanc.get("/modalities") == ["acme1"]
        cp = peers.run_dcmtk(
            "echoscu", "-aet", "ACME1", "-aec", "PACS", "127.0.0.1", orthanc.dicom_port
        )
        assert cp.returncode == 0, _out(cp) + orthanc.output()


def test_pynetdicom_scp_answers_echo(tmp_port: int) -> None:
    with peers.PynetdicomSCP(tmp_port) as scp:
        cp = peers.run_dcmtk("echoscu", "-v", "-aec", scp.ae_title, "127.0.0.1", tmp_port)
        assert cp.returncode == 0, _out(cp) + scp.output()
        assert "Received Echo Response (Success)" in _out(cp)


def test_pynetdicom_scp_stores_what_storescu_sends(tmp_path: Path, tmp_port: int) -> None:
    from pydicom.data import get_testdata_file

    ct = get_testdata_file("CT_small.dcm")
    assert ct is not None
    rx = tmp_path / "rx"
    with peers.PynetdicomSCP(
        tmp_port, supported=["verification", "storage"], storage_dir=rx
    ) as scp:
        cp = peers.run_dcmtk("storescu", "-aec", scp.ae_title, "127.0.0.1", tmp_port, ct)
        assert cp.returncode == 0, _out(cp) + scp.output()
        received = scp.received()
    assert len(received) == 1

    import pydicom

    original = pydicom.dcmread(ct)
    stored = pydicom.dcmread(received[0])
    assert stored.SOPInstanceUID == original.SOPInstanceUID
    assert stored.PixelData == original.PixelData


def test_dcmqrscp_tutorial_config(tmp_path: Path, tmp_port: int) -> None:
    cfg = peers.tutorial_cfg(tmp_path, tmp_port)
    text = cfg.read_text()
    assert "acmeCTcompany   = acme1, acme2" in text
    assert f"ACME_STORE   {tmp_path / 'database'}   RW (100, 1024mb)   acmeCTcompany" in text
    assert (tmp_path / "database").is_dir()

    with peers.DcmtkServer("dcmqrscp", ["-c", cfg], tmp_port) as qr:
        ok = peers.run_dcmtk(
            "echoscu", "-v", "127.0.0.1", tmp_port, "-aec", "ACME_STORE", "-aet", "ACME1"
        )
        assert ok.returncode == 0, _out(ok) + qr.output()
        assert "Received Echo Response (Success)" in _out(ok)

        # the tutorial's first two attempts: no -aec, then -aec without the right -aet
        for args in ([], ["-aec", "ACME_STORE"]):
            rejected = peers.run_dcmtk("echoscu", "-v", "127.0.0.1", tmp_port, *args)
            assert rejected.returncode != 0, _out(rejected)
            assert "Association Rejected" in _out(rejected)
            assert "Called AE Title Not Recognized" in _out(rejected)


def test_write_dcmqrscp_cfg_format(tmp_path: Path) -> None:
    cfg = peers.write_dcmqrscp_cfg(
        tmp_path / "qr.cfg",
        port=11112,
        storage_dir=tmp_path / "db",
        hosts={
            "scu": ("SCU", "localhost", 4000),
            "dest": ("DEST", "localhost", 4001),
            "all": ["scu", "dest"],
        },
        ae_table=[
            ("COMMON", "COMMON", "R", (200, "1024mb"), "ANY"),
            ("STORE", "STORE", "RW", "(9, 1024mb)", ["scu", "dest"]),
            ("DIRECT", "DIRECT", "W", (1, "10mb"), [("OTHER", "localhost", 104)]),
        ],
    )
    lines = cfg.read_text().splitlines()
    assert "NetworkTCPPort  = 11112" in lines
    assert "scu             = (SCU, localhost, 4000)" in lines
    assert "all             = scu, dest" in lines
    assert f"COMMON       {tmp_path / 'db' / 'COMMON'}   R  (200, 1024mb)   ANY" in lines
    assert f"STORE        {tmp_path / 'db' / 'STORE'}   RW (9, 1024mb)   scu, dest" in lines
    assert (
        f"DIRECT       {tmp_path / 'db' / 'DIRECT'}   W  (1, 10mb)   (OTHER, localhost, 104)"
        in lines
    )
    assert all((tmp_path / "db" / area).is_dir() for area in ("COMMON", "STORE", "DIRECT"))
    assert not any(line.startswith(("UserName", "GroupName")) for line in lines)
