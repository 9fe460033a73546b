"""`pacsbox serve --config F` with storage areas (`[areas.<AE title>]`), driven by DCMTK's
storescu, findscu, getscu and echoscu as a modality would: the called AE title selects the
area, a full area (max_studies) gives up its oldest study, a read-only area refuses stores
with 0x0124 and answers queries and retrieves with its own instances only, an area's peers
are the only calling AE titles it admits, and the server's own AE title stays the default
area (data/files)."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from pacsbox.archive import Index
from pacsbox.config.native import load, parse
from tests import peers
from tests.pacsbox_cli import PACSBOX, run_pacsbox
from tests.storage_data import build_samples

pytestmark = pytest.mark.e2e


def write_config(path: Path, port: int, ro_access: str) -> None:
    path.write_text(
        f"""
[server]
ae_title = "AREAPACS"
host = "127.0.0.1"
port = {port}

[storage]
data = "data"

[areas.RWAREA]
path = "rw"
access = "RW"
max_studies = 1

[areas.ROAREA]
path = "ro"
access = "{ro_access}"
peers = ["STORESCU", "FINDSCU", "GETSCU", "ECHOSCU"]   # DCMTK tools' own AE titles
"""
    )


def serve(config: Path, port: int) -> peers.PeerProcess:
    return peers.PeerProcess([PACSBOX, "serve", "--config", config, "-v"], port,
                             name="pacsbox-serve")  # fmt: skip


def storescu(port: int, called: str, *files: Path, options: tuple[str, ...] = ()):
    return peers.run_dcmtk("storescu", "-v", *options, "-aec", called, "127.0.0.1", port, *files)


def studies_found(port: int, called: str) -> set[str]:
    """The Study Instance UIDs a STUDY-level C-FIND to ``called`` returns (findscu must
    succeed)."""
    cp = peers.run_dcmtk("findscu", "-v", "-S", "-aec", called, "-k", "QueryRetrieveLevel=STUDY",
                         "-k", "StudyInstanceUID", "127.0.0.1", port)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert "Received Final Find Response (Success)" in cp.stderr, cp.stderr
    return {
        line.split("[", 1)[1].split("]", 1)[0].rstrip("\0")  # an odd-length UID's padding
        for line in cp.stderr.splitlines()
        if "(0020,000d) UI [" in line
    }


def getscu(port: int, called: str, study: str, into: Path) -> Path:
    """The files a STUDY-level C-GET of ``study`` from ``called`` brings into ``into``."""
    into.mkdir()
    cp = peers.run_dcmtk("getscu", "-v", "-S", "-aec", called, "-od", into, "127.0.0.1", port,
                         "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}")  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    return into


def study_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def test_the_called_ae_title_selects_the_storage_area(tmp_path):
    samples = build_samples(tmp_path / "samples")
    ct, mr, rtplan = samples["ct"], samples["mr"], samples["rtplan"]
    port = peers.free_port()
    config = tmp_path / "pacsbox.toml"
    data = tmp_path / "data"

    # first ROAREA is writable, to put a study into it
    write_config(config, port, ro_access="RW")
    with serve(config, port) as server:
        cp = storescu(port, "ROAREA", ct.path)
        assert cp.returncode == 0 and "Store Response (Success)" in cp.stderr, cp.stderr
        cp = storescu(port, "RWAREA", mr.path)
        assert cp.returncode == 0 and "Store Response (Success)" in cp.stderr, cp.stderr
        assert (tmp_path / "rw" / mr.stored_name).is_file()
        # max_studies = 1: a second study takes the place of the first
        cp = storescu(port, "RWAREA", rtplan.path)
        assert cp.returncode == 0 and "Store Response (Success)" in cp.stderr, cp.stderr
        assert not (tmp_path / "rw" / mr.stored_name).exists()
        assert (tmp_path / "rw" / rtplan.stored_name).is_file()
        assert studies_found(port, "RWAREA") == {study_of(rtplan.path)}
        # the server's own AE title: the default area, data/files, as without [areas]
        cp = storescu(port, "AREAPACS", samples["ct_jpeg_lossless"].path, options=("-xs",))
        assert cp.returncode == 0 and "Store Response (Success)" in cp.stderr, cp.stderr
        assert studies_found(port, "AREAPACS") == {study_of(samples["ct_jpeg_lossless"].path)}
    assert f"called AE 'RWAREA': {tmp_path / 'rw'} (RW)" in server.output()  # the banner
    line = config.read_text().splitlines().index("[areas.RWAREA]") + 1
    assert (
        f"Area RWAREA is full (max_studies 1, [areas] line {line} of {config})" in server.output()
    )

    with Index.open(f"sqlite:///{data / 'index.sqlite'}") as index:
        assert index.get_instance(mr.sop_instance_uid) is None
        assert index.get_instance(rtplan.sop_instance_uid).area == "RWAREA"
        assert index.get_instance(ct.sop_instance_uid).area == "ROAREA"
        default = index.get_instance(samples["ct_jpeg_lossless"].sop_instance_uid)
    assert default.area is None
    assert (data / "files" / default.path).is_file()

    # then read-only: what it holds can be found, nothing more can be stored
    write_config(config, port, ro_access="R")
    with serve(config, port) as server:
        assert studies_found(port, "ROAREA") == {study_of(ct.path)}  # not RWAREA's, nor ours
        refused = storescu(port, "ROAREA", mr.path, options=("-d",))  # -d: the Error Comment
        assert refused.returncode != 0
        assert "DIMSE Status                  : 0x0124: Refused: Not authorized" in refused.stderr
        line = config.read_text().splitlines().index("[areas.ROAREA]") + 1
        assert f"area ROAREA (line {line}) is read-only (R); make it RW" in refused.stderr
        assert not (tmp_path / "ro" / mr.stored_name).exists()
        # retrieve: the area's own files (from its folder), nothing of another area
        got = getscu(port, "ROAREA", study_of(ct.path), tmp_path / "got")
        assert [p.name for p in got.iterdir()] == [ct.stored_name]
        got = getscu(port, "ROAREA", study_of(rtplan.path), tmp_path / "none")
        assert list(got.iterdir()) == []
        # ROAREA's peers: ECHOSCU is one, NOBODY is not; RWAREA admits anyone
        ok = peers.run_dcmtk("echoscu", "-aec", "ROAREA", "127.0.0.1", port)
        assert ok.returncode == 0, ok.stderr
        stranger = peers.run_dcmtk("echoscu", "-aet", "NOBODY", "-aec", "ROAREA",
                                   "127.0.0.1", port)  # fmt: skip
        assert stranger.returncode != 0
        assert "Calling AE Title Not Recognized" in stranger.stderr
        ok = peers.run_dcmtk("echoscu", "-aet", "NOBODY", "-aec", "RWAREA", "127.0.0.1", port)
        assert ok.returncode == 0, ok.stderr
    log = server.output()
    assert f"storage area ROAREA ([areas] line {line} of {config}) is R" in log
    assert "calling AE title 'NOBODY' may not use storage area ROAREA" in log


def test_print_config_shows_the_areas(tmp_path):
    config = tmp_path / "pacsbox.toml"
    write_config(config, 11112, ro_access="R")
    cp = run_pacsbox("serve", "--config", config, "--print-config")
    assert cp.returncode == 0, cp.stderr
    assert f'[areas.ROAREA]\npath = "{tmp_path / "ro"}"\naccess = "R"\n' in cp.stdout
    assert parse(cp.stdout).areas == load(config).areas


def test_storage_commitment_answers_for_the_called_areas_copy(tmp_path):
    """A copy in an area and one in the default area: a Storage Commitment request is
    answered for the copy of the area its called AE title selects."""
    ct = build_samples(tmp_path / "samples")["ct"]
    port = peers.free_port()
    config = tmp_path / "pacsbox.toml"
    write_config(config, port, ro_access="RW")
    with serve(config, port):
        for called in ("RWAREA", "AREAPACS"):
            cp = storescu(port, called, ct.path)
            assert cp.returncode == 0 and "Store Response (Success)" in cp.stderr, cp.stderr
        (tmp_path / "rw" / ct.stored_name).unlink()
        for called, code in (("AREAPACS", 0), ("RWAREA", 1)):
            cp = run_pacsbox("stgcmtscu", "-aec", called, "127.0.0.1", port, ct.path)
            assert cp.returncode == code, cp.stderr
    assert "0x0110" in cp.stderr  # RWAREA: processing failure, its file is gone
    # `pacsbox check --config` checks the [areas] folders too: RWAREA's file is missing
    cp = run_pacsbox("check", "--config", config, "--json")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    report = json.loads(cp.stdout)
    assert [(f["kind"], f["area"]) for f in report["findings"]] == [("missing_file", "RWAREA")]
    assert report["rows"] == 2
