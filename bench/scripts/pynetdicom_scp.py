"""A pynetdicom Verification SCP for the benchmarks (a reference peer, never pacsbox's).

    python bench/scripts/pynetdicom_scp.py --port N [--host 127.0.0.1] [--aet PYNETDICOM]

Prints one line when listening; stops on SIGTERM/SIGINT. pynetdicom 3.0.4 never sets
TCP_NODELAY, so what it measures includes Nagle's algorithm.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--aet", default="PYNETDICOM")
    args = parser.parse_args(argv)

    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    logging.basicConfig(level=logging.WARNING)
    ae = AE(ae_title=args.aet)
    ae.add_supported_context(Verification)
    server = ae.start_server((args.host, args.port), block=False)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"listening on {args.host}:{args.port} as {args.aet}", flush=True)
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
