"""C-ECHO throughput: 2,000 C-ECHOs on ONE association, per client/server pairing.

Each run is one whole association: connect, negotiate, 2,000 C-ECHO-RQ/RSP round trips,
release. For a tool (DCMTK echoscu, the pacsbox CLI) the time is the tool's whole run, from
process start to exit; for an in-process client it is connect to release. Servers run in
their own processes (fixtures, started once per bench run).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from ..context import Context
from ..peers import dcmtk_env, dcmtk_tool, pacsbox_cli, run_timed
from ..registry import Measurement, Skip, scenario

ECHOES = 2000
TIMEOUT = 300.0  # s, bound on one run of an in-process client
BASELINE = "echo.dcmtk-dcmtk"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"


def _per_echo_us(seconds: float) -> dict[str, float]:
    return {"us_per_echo": seconds / ECHOES * 1e6}


# -- clients ----------------------------------------------------------------------------------


def _dcmtk_echoscu(port: int) -> Measurement:
    seconds = run_timed(
        [dcmtk_tool("echoscu"), "--repeat", str(ECHOES), "127.0.0.1", str(port)],
        env=dcmtk_env(),
    )
    return Measurement(seconds, _per_echo_us(seconds))


async def _pacsbox_echoes(host: str, port: int) -> float:
    from pacsbox.net.association import Association, Timeouts
    from pacsbox.net.requestor import build_rq
    from pacsbox.services.verification import echo

    rq = build_rq(
        calling_ae="ECHOSCU",
        called_ae="ANY-SCP",
        proposals=[(VERIFICATION, [IMPLICIT_VR_LE])],
    )
    timeouts = Timeouts(connect=10, acse=30, dimse=30)
    t0 = time.perf_counter()
    assoc = await Association.connect(host, port, rq, timeouts=timeouts)
    failed = 0
    try:
        for _ in range(ECHOES):
            failed += (await echo(assoc)) != 0
    except BaseException:
        assoc.abort()
        raise
    await assoc.release()
    elapsed = time.perf_counter() - t0
    if failed:
        raise RuntimeError(f"{failed} of {ECHOES} C-ECHOs did not return Success")
    return elapsed


def _pacsbox_api(host: str, port: int) -> Measurement:
    """The pacsbox API client in this process, in a fresh event loop (not timed: loop set-up)."""
    seconds = asyncio.run(asyncio.wait_for(_pacsbox_echoes(host, port), TIMEOUT))
    return Measurement(seconds, _per_echo_us(seconds))


def _pynetdicom_echoes(host: str, port: int) -> Measurement:
    """pynetdicom's SCU in this process; the association runs in a worker thread we join
    with a bound (pynetdicom itself runs the association in yet another thread)."""
    try:
        from pynetdicom import AE
    except ImportError:
        raise Skip("pynetdicom is not installed (pip install -e '.[test]')") from None
    ae = AE(ae_title="ECHOSCU")
    ae.add_requested_context(VERIFICATION, IMPLICIT_VR_LE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = 30
    box: dict[str, object] = {}

    def work() -> None:
        try:
            t0 = time.perf_counter()
            assoc = ae.associate(host, port, ae_title="ANY-SCP")
            box["assoc"] = assoc
            if not assoc.is_established:
                raise RuntimeError("pynetdicom could not establish the association")
            failed = 0
            for _ in range(ECHOES):
                status = assoc.send_c_echo()
                failed += not status or status.Status != 0
            assoc.release()
            box["seconds"] = time.perf_counter() - t0
            if failed:
                raise RuntimeError(f"{failed} of {ECHOES} C-ECHOs did not return Success")
        except BaseException as exc:
            box["error"] = exc

    # pynetdicom's own warnings and errors, to explain a failed run
    captured = _Capture()
    pn_log = logging.getLogger("pynetdicom")
    pn_log.addHandler(captured)
    try:
        worker = threading.Thread(target=work, name="bench-pynetdicom-scu", daemon=True)
        worker.start()
        try:
            worker.join(TIMEOUT)
        finally:  # timed out, or interrupted (Ctrl-C, SIGTERM): end the association
            if worker.is_alive():
                assoc = box.get("assoc")
                if assoc is not None:
                    assoc.abort()  # type: ignore[attr-defined]
                worker.join(10)
                box["error"] = TimeoutError(f"pynetdicom SCU did not finish within {TIMEOUT} s")
    finally:
        pn_log.removeHandler(captured)
    if "error" in box:
        raise RuntimeError(f"{box['error']}\n{captured.text()}") from box["error"]  # type: ignore[arg-type]
    seconds = box["seconds"]
    assert isinstance(seconds, float)
    return Measurement(seconds, _per_echo_us(seconds))


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"pynetdicom {record.levelname}: {record.getMessage()}")

    def text(self) -> str:
        return "\n".join(self.lines[-40:])


# -- scenarios --------------------------------------------------------------------------------


@scenario(BASELINE, "echo: DCMTK echoscu -> DCMTK storescp", items=ECHOES, unit="echo")
def dcmtk_to_dcmtk(ctx: Context) -> Measurement:
    return _dcmtk_echoscu(ctx.fixture("dcmtk-storescp").port)


@scenario(
    "echo.pacsbox-pacsbox",
    "echo: pacsbox -> pacsbox",
    items=ECHOES,
    unit="echo",
    baseline=BASELINE,
)
def pacsbox_to_pacsbox(ctx: Context) -> Measurement:
    server = ctx.fixture("pacsbox-serve")
    return _pacsbox_api(server.host, server.port)


@scenario(
    "echo.pacsbox-dcmtk",
    "echo: pacsbox -> DCMTK storescp",
    items=ECHOES,
    unit="echo",
    baseline=BASELINE,
)
def pacsbox_to_dcmtk(ctx: Context) -> Measurement:
    server = ctx.fixture("dcmtk-storescp")
    return _pacsbox_api(server.host, server.port)


@scenario(
    "echo.dcmtk-pacsbox",
    "echo: DCMTK echoscu -> pacsbox serve",
    items=ECHOES,
    unit="echo",
    baseline=BASELINE,
)
def dcmtk_to_pacsbox(ctx: Context) -> Measurement:
    return _dcmtk_echoscu(ctx.fixture("pacsbox-serve").port)


@scenario(
    "echo.pacsbox-cli-pacsbox",
    "echo: pacsbox CLI (pacsbox echoscu --repeat 2000) -> pacsbox serve",
    items=ECHOES,
    unit="echo",
    baseline=BASELINE,
    note="the whole CLI run, interpreter start-up and imports included (the user's figure)",
)
def pacsbox_cli_to_pacsbox(ctx: Context) -> Measurement:
    port = ctx.fixture("pacsbox-serve").port
    seconds = run_timed([*pacsbox_cli(), "echoscu", "--repeat", str(ECHOES), "127.0.0.1", port])
    return Measurement(seconds, _per_echo_us(seconds))


@scenario(
    "echo.pynetdicom-pynetdicom",
    "echo: pynetdicom -> pynetdicom",
    items=ECHOES,
    unit="echo",
    baseline=BASELINE,
    reference=True,
    optional=True,
    note="pynetdicom 3.0.4 sets no TCP_NODELAY, so this figure includes Nagle's algorithm "
    "(SCP in a subprocess, SCU in this process)",
)
def pynetdicom_to_pynetdicom(ctx: Context) -> Measurement:
    server = ctx.fixture("pynetdicom-scp")
    return _pynetdicom_echoes(server.host, server.port)
