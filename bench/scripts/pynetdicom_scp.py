"""A pynetdicom SCP for the benchmarks (a reference peer, never pacsbox's).

    python bench/scripts/pynetdicom_scp.py --port N [--host 127.0.0.1] [--aet PYNETDICOM]
                                          [--store-dir DIR] [--nodelay]

Verification only by default. With ``--store-dir`` it is also a Storage SCP for the storage
SOP classes in Explicit and Implicit VR Little Endian, writing each data set as it was
received ("raw write": ``event.encoded_dataset()``, no decode) to ``DIR/<modality prefix>.
<SOP Instance UID>``, as DCMTK's storescp names its files. ``--nodelay`` sets TCP_NODELAY on
every accepted connection, which pynetdicom 3.0.4 never does (so without it each C-STORE can
wait ~40 ms on Nagle's algorithm and a delayed ACK).

Prints one line when listening; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading

PREFIX = {"1.2.840.10008.5.1.4.1.1.2": "CT", "1.2.840.10008.5.1.4.1.1.4": "MR"}


def patch_nodelay() -> None:
    """TCP_NODELAY on the sockets pynetdicom's server accepts."""
    from pynetdicom.transport import AssociationServer

    get_request = AssociationServer.get_request

    def with_nodelay(self):
        client, address = get_request(self)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address

    AssociationServer.get_request = with_nodelay  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--aet", default="PYNETDICOM")
    parser.add_argument("--store-dir", help="also be a Storage SCP writing files here")
    parser.add_argument("--nodelay", action="store_true", help="set TCP_NODELAY")
    args = parser.parse_args(argv)

    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Verification

    logging.basicConfig(level=logging.WARNING)
    if args.nodelay:
        patch_nodelay()
    ae = AE(ae_title=args.aet)
    ae.add_supported_context(Verification)
    handlers = []
    if args.store_dir:
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
        from pynetdicom import StoragePresentationContexts

        directory = args.store_dir
        for context in StoragePresentationContexts:
            ae.add_supported_context(
                context.abstract_syntax, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
            )

        def on_store(event) -> int:
            rq = event.request
            sop_class = str(rq.AffectedSOPClassUID)
            name = f"{PREFIX.get(sop_class, 'XX')}.{rq.AffectedSOPInstanceUID}"
            path = os.path.join(directory, name)
            with open(path + ".part", "wb") as f:
                f.write(event.encoded_dataset(include_meta=True))
            os.replace(path + ".part", path)
            return 0x0000

        handlers.append((evt.EVT_C_STORE, on_store))
    server = ae.start_server((args.host, args.port), block=False, evt_handlers=handlers)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"listening on {args.host}:{args.port} as {args.aet}", flush=True)
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
