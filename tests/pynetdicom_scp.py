"""A pynetdicom SCP run as a subprocess by tests.peers.PynetdicomSCP (a test peer only).

    python tests/pynetdicom_scp.py --port 11112 [--aet PYNETDICOM] [--verification]
        [--storage --storage-dir DIR] [--max-pdu N] [-v]

Listens on 127.0.0.1 only. Received instances are written as DICOM Part 10 files
``<SOPInstanceUID>.dcm`` (via a ``.part`` file and a rename, so a listed file is complete).
Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--aet", default="PYNETDICOM")
    parser.add_argument("--verification", action="store_true")
    parser.add_argument("--storage", action="store_true")
    parser.add_argument("--storage-dir", type=Path)
    parser.add_argument("--max-pdu", type=int, default=16382)
    parser.add_argument("--status", type=lambda s: int(s, 0), default=0x0000)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.storage and args.storage_dir is None:
        parser.error("--storage needs --storage-dir")
    if not (args.verification or args.storage):
        args.verification = True

    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification

    if args.verbose:
        from pynetdicom import debug_logger

        debug_logger()
    else:
        logging.basicConfig(level=logging.WARNING)

    ae = AE(ae_title=args.aet)
    ae.maximum_pdu_size = args.max_pdu
    handlers = []
    if args.verification:
        ae.add_supported_context(Verification)
    if args.storage:
        storage_dir: Path = args.storage_dir
        storage_dir.mkdir(parents=True, exist_ok=True)
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)

        def handle_store(event: evt.Event) -> int:
            uid = event.request.AffectedSOPInstanceUID
            part = storage_dir / f"{uid}.part"
            with open(part, "wb") as f:
                f.write(event.encoded_dataset())
            os.replace(part, storage_dir / f"{uid}.dcm")
            print(f"received {uid}", flush=True)
            return args.status

        handlers.append((evt.EVT_C_STORE, handle_store))

    server = ae.start_server((args.host, args.port), block=False, evt_handlers=handlers)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"listening on {args.host}:{args.port} as {args.aet}", flush=True)
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
