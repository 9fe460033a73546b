"""PostgreSQL stopped in the middle of a run (issue 9): `pacsbox serve` answers the C-STOREs it
cannot index with 0xA700 and a reason, stays up, and indexes again once PostgreSQL is back;
nothing acknowledged is lost. A private PostgreSQL cluster is started for the test (the shared
one at 5432 is never stopped)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pacsbox.archive import Index
from tests import peers
from tests.pacsbox_cli import pacsbox_server
from tests.storage_data import build_samples

pytestmark = pytest.mark.e2e


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   reverse=True)), None)  # fmt: skip
    assert found, f"PostgreSQL's {name} is missing: run `make peers` (it installs postgresql)"
    return found


class Cluster:
    """A throwaway PostgreSQL cluster in ``directory`` on ``port`` (as user postgres when we
    are root: PostgreSQL refuses to run as root)."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory, self.port = directory, port
        self.as_postgres = os.geteuid() == 0
        directory.mkdir(parents=True)
        if self.as_postgres:
            shutil.chown(directory, "postgres", "postgres")
        self._run(_binary("initdb"), "-D", directory, "-A", "trust", "-U", "postgres")

    def _run(self, *argv) -> None:
        command = [str(a) for a in argv]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        cp = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert cp.returncode == 0, cp.stdout + cp.stderr

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._run(_binary("pg_ctl"), "-D", self.directory, "-o", options, "-w", "-t", "60",
                  "-l", self.directory / "log", "start")  # fmt: skip

    def stop(self) -> None:
        self._run(_binary("pg_ctl"), "-D", self.directory, "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def store(port: int, path) -> str:
    cp = peers.run_dcmtk("storescu", "-v", "-aec", "PACSBOX", "127.0.0.1", port, path)
    return cp.stdout + cp.stderr


def test_postgresql_stopped_and_back(tmp_path):
    import tempfile

    samples = build_samples(tmp_path / "samples")
    # not under pytest's tmp_path: that is root's alone, and the cluster runs as postgres
    home = Path(tempfile.mkdtemp(prefix="pacsbox-pg-"))
    os.chmod(home, 0o755)
    cluster = Cluster(home / "pg", peers.free_port())
    cluster.start()
    port = peers.free_port()
    try:
        with pacsbox_server(port, "--db", cluster.url, data=tmp_path / "data") as server:
            assert "Received Store Response (Success)" in store(port, samples["ct"].path)
            cluster.stop()
            log = store(port, samples["mr"].path)
            assert "Received Store Response (Refused: OutOfResources)" in log, log  # 0xA700
            assert server.running()
            cluster.start()
            for name in ("mr", "rtplan"):  # indexed again once PostgreSQL is back
                log = store(port, samples[name].path)
                assert "Received Store Response (Success)" in log, log + server.output()[-2000:]
            output = server.output()
        with Index.open(cluster.url) as index:
            assert index.stats().instances == 3
        assert "Cannot index" in output  # the refusal was logged with its reason
    finally:
        with contextlib.suppress(AssertionError):  # stopped already if the test failed there
            cluster.stop()
        shutil.rmtree(home, ignore_errors=True)
