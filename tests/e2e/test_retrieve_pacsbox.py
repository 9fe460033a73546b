"""pacsbox on both sides of a retrieve: the tutorial's movescu commands, getscu, an unknown
destination and --cancel, with `pacsbox movescu/getscu` against `pacsbox dcmqrscp`."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests import peers
from tests.interop.test_dcmqrscp import dcmqrscp
from tests.pacsbox_cli import run_pacsbox
from tests.storage_data import build_samples, meta

pytestmark = pytest.mark.e2e

JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return build_samples(tmp_path_factory.mktemp("samples"))


def study_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def test_tutorial_with_pacsbox_on_both_sides(tmp_path, samples):
    ct, jpeg = samples["ct"], samples["ct_jpeg_lossless"]
    port, acme1 = peers.free_port(), peers.free_port()
    cfg = peers.tutorial_cfg(tmp_path, port, acme1_port=acme1, host="127.0.0.1")
    study = tmp_path / "study"
    study.mkdir()
    ds = pydicom.dcmread(ct.path)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    uids = []
    for number in range(6):
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(study / f"{number}.dcm", enforce_file_format=True)
        uids.append(ds.SOPInstanceUID)
    with dcmqrscp(tmp_path, "+xs", "-xs", cfg=cfg, port=port):
        cp = run_pacsbox(
            "storescu", "-aec", "ACME_STORE", "-aet", "ACME1", "127.0.0.1", port,
            ct.path, jpeg.path, study,
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        move = ("-S", "-aec", "ACME_STORE", "-aet", "ACME1", "-aem", "ACME1")
        receive = ("--port", acme1, "--bind", "127.0.0.1")
        for name, sample, extra in (("ct", ct, ()), ("lossless", jpeg, ("+xs",))):
            out = tmp_path / name
            out.mkdir()
            cp = run_pacsbox(
                "movescu", "-v", *move, *receive, "-od", out, "127.0.0.1", port,
                "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_of(sample.path)}",
                *extra,
            )  # fmt: skip
            assert cp.returncode == 0, cp.stderr
            assert "Received Final Move Response (Success)" in cp.stderr
            assert files_in(out) == [sample.stored_name], cp.stderr
            assert meta(out / sample.stored_name).TransferSyntaxUID == sample.transfer_syntax
        got = tmp_path / "got"
        got.mkdir()
        cp = run_pacsbox(
            "getscu", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "-od", got, "127.0.0.1", port,
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_of(study / '0.dcm')}",
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        assert files_in(got) == sorted(f"CT.{uid}" for uid in uids)
        cp = run_pacsbox(
            "movescu", "-S", "-aec", "ACME_STORE", "-aet", "ACME1", "-aem", "NOBODY",
            "127.0.0.1", port, "-k", "QueryRetrieveLevel=STUDY",
            "-k", f"StudyInstanceUID={study_of(ct.path)}",
        )  # fmt: skip
        assert cp.returncode == 1
        assert "Configure AE 'NOBODY' with host and port on the PACS" in cp.stderr, cp.stderr
        cancelled = tmp_path / "cancelled"
        cancelled.mkdir()
        cp = run_pacsbox(
            "movescu", "-v", *move, *receive, "-od", cancelled, "--cancel", "1",
            "127.0.0.1", port, "-k", "QueryRetrieveLevel=STUDY",
            "-k", f"StudyInstanceUID={study_of(study / '0.dcm')}",
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        assert "Sending Cancel Request" in cp.stderr
        assert len(files_in(cancelled)) <= len(uids)
