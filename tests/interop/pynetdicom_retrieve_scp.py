"""A pynetdicom C-MOVE / C-GET SCP over a folder of DICOM files, run as a subprocess by the
retrieve SCU tests (a test peer only).

    python tests/interop/pynetdicom_retrieve_scp.py --port N --files DIR
        [--aet RETRIEVE_SCP] [--destination AE=host:port ...] [--no-pending] [--no-get]

Study Root and Patient Root MOVE and GET; an identifier matches on the unique keys it gives
(PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID), nothing else. A move
destination not given with --destination is answered 0xA801, as PS3.4 says. ``--no-pending``
drops every pending C-MOVE-RSP / C-GET-RSP, as some PACS do (the final response still has
the counters). ``--no-get`` supports C-MOVE only (the GET contexts are refused, as PACS
without C-GET do). Listens on 127.0.0.1 only; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

UNIQUE_KEYS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--aet", default="RETRIEVE_SCP")
    parser.add_argument("--files", type=Path, required=True)
    parser.add_argument("--destination", action="append", default=[])
    parser.add_argument("--no-pending", action="store_true")
    parser.add_argument("--no-get", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    import pydicom
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, evt
    from pynetdicom.dimse import DIMSEServiceProvider
    from pynetdicom.dimse_primitives import C_GET, C_MOVE
    from pynetdicom.sop_class import (
        PatientRootQueryRetrieveInformationModelGet,
        PatientRootQueryRetrieveInformationModelMove,
        StudyRootQueryRetrieveInformationModelGet,
        StudyRootQueryRetrieveInformationModelMove,
        Verification,
    )

    if args.verbose:
        from pynetdicom import debug_logger

        debug_logger()
    else:
        logging.basicConfig(level=logging.WARNING)

    if args.no_pending:
        send_msg = DIMSEServiceProvider.send_msg

        def without_pending(self, primitive, context_id):
            if isinstance(primitive, C_MOVE | C_GET) and primitive.Status == 0xFF00:
                return None
            return send_msg(self, primitive, context_id)

        DIMSEServiceProvider.send_msg = without_pending

    destinations = {}
    for entry in args.destination:
        title, _, address = entry.partition("=")
        host, _, port = address.rpartition(":")
        destinations[title] = (host, int(port))

    files = sorted(p for p in args.files.rglob("*") if p.is_file())

    def matching(identifier) -> list:
        found = []
        for path in files:
            ds = pydicom.dcmread(path)
            if all(
                getattr(ds, key, None) == getattr(identifier, key)
                for key in UNIQUE_KEYS
                if getattr(identifier, key, "")
            ):
                found.append(ds)
        return found

    def handle_move(event):
        destination = (
            event.move_destination.decode().strip()
            if isinstance(event.move_destination, bytes)
            else str(event.move_destination).strip()
        )
        if destination not in destinations:
            yield None, None
            return
        host, port = destinations[destination]
        yield host, port, {"contexts": StoragePresentationContexts[:127]}
        found = matching(event.identifier)
        yield len(found)
        for ds in found:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, ds

    def handle_get(event):
        found = matching(event.identifier)
        yield len(found)
        for ds in found:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, ds

    ae = AE(ae_title=args.aet)
    ae.add_supported_context(Verification)
    models = [
        PatientRootQueryRetrieveInformationModelMove,
        StudyRootQueryRetrieveInformationModelMove,
    ]
    if not args.no_get:
        models += [
            PatientRootQueryRetrieveInformationModelGet,
            StudyRootQueryRetrieveInformationModelGet,
        ]
    for model in models:
        ae.add_supported_context(model)
    # C-GET: the storage classes come back with the roles reversed
    for context in StoragePresentationContexts if not args.no_get else ():
        ae.add_supported_context(
            context.abstract_syntax, ALL_TRANSFER_SYNTAXES, scu_role=False, scp_role=True
        )
    handlers = [(evt.EVT_C_MOVE, handle_move), (evt.EVT_C_GET, handle_get)]
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
