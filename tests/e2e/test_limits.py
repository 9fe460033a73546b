"""Limits (issue 9): `pacsbox serve --max-dataset-size` refuses a larger data set with
0xA700 and keeps nothing of it, while the same association goes on storing."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from pacsbox.archive import Index
from tests import peers
from tests.pacsbox_cli import pacsbox_server
from tests.storage_data import build_samples

pytestmark = pytest.mark.e2e


def test_a_data_set_over_the_limit_is_refused_and_leaves_nothing(tmp_path):
    samples = build_samples(tmp_path / "samples")
    big = dcmread(samples["ct"].path)
    big.SOPInstanceUID = big.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    big.Rows, big.Columns = 512, 512
    big.PixelData = np.zeros((512, 512), dtype=np.uint16).tobytes()  # 512 KB
    big.save_as(tmp_path / "big.dcm")
    port = peers.free_port()
    data = tmp_path / "data"
    with pacsbox_server(port, "--max-dataset-size", "200000", data=data):
        cp = peers.run_dcmtk("storescu", "-v", "-nh", "-aec", "PACSBOX", "127.0.0.1", port,
                             tmp_path / "big.dcm", samples["ct"].path)  # fmt: skip
    log = cp.stdout + cp.stderr
    assert "Received Store Response (Refused: OutOfResources)" in log, log  # 0xA700
    with Index.open(f"sqlite:///{data / 'index.sqlite'}") as index:
        assert index.stats().instances == 1  # the small one, on the same association
        assert index.get_instance(samples["ct"].sop_instance_uid) is not None
    files = [p.name for p in (data / "files").rglob("*") if p.is_file()]
    assert [n for n in files if not n.startswith(".incoming-")] == [samples["ct"].stored_name]
    assert len([n for n in files if n.startswith(".incoming-")]) <= 1  # the spare only
