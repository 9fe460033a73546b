"""Shared fixtures. Plain helpers for real peers live in tests/peers.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import peers


@pytest.fixture
def tmp_port() -> int:
    """A TCP port free on 127.0.0.1."""
    return peers.free_port()


@pytest.fixture
def dcmtk() -> SimpleNamespace:
    """The DCMTK helpers in one place: ``dcmtk.run("echoscu", "127.0.0.1", port)``,
    ``with dcmtk.server("storescp", ["-od", d], port): ...``, ``dcmtk.require("findscu")``,
    ``dcmtk.env()``, ``dcmtk.dcmqrscp_cfg(...)``, ``dcmtk.tutorial_cfg(tmp_path, port)``."""
    return SimpleNamespace(
        require=peers.require,
        run=peers.run_dcmtk,
        server=peers.DcmtkServer,
        env=peers.dcmtk_env,
        dcmqrscp_cfg=peers.write_dcmqrscp_cfg,
        tutorial_cfg=peers.tutorial_cfg,
    )


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[peers.OrthancServer]:
    """A running Orthanc (AE ORTHANC) on free ports with its storage in tmp_path; only C-ECHO
    and C-STORE from unknown AEs. For modalities or other settings, use
    ``peers.OrthancServer(tmp_path / "orthanc", modalities=..., config=...)`` directly."""
    with peers.OrthancServer(tmp_path / "orthanc") as server:
        yield server
