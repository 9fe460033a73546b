"""A pynetdicom storage SCU for the benchmarks (a reference peer, never pacsbox's).

    python bench/scripts/pynetdicom_storescu.py [--nodelay] HOST PORT DIR

Sends every file in DIR (sorted) on ONE association with ``send_c_store(path)``, as a
pynetdicom user would (pynetdicom reads and re-encodes each file), proposing the SOP class of
the first file in Explicit VR Little Endian (the bench data sets hold one SOP class). ``--nodelay`` sets TCP_NODELAY on the connection,
which pynetdicom 3.0.4 never does. Exit status 1 when a store did not return Success.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path


def patch_nodelay() -> None:
    """TCP_NODELAY on the socket pynetdicom's requestor creates."""
    from pynetdicom.transport import AssociationSocket

    create = AssociationSocket._create_socket

    def with_nodelay(self, address):
        sock = create(self, address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    AssociationSocket._create_socket = with_nodelay  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--aec", default="ANY-SCP")
    parser.add_argument("--nodelay", action="store_true", help="set TCP_NODELAY")
    args = parser.parse_args(argv)

    from pydicom import dcmread
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE

    if args.nodelay:
        patch_nodelay()
    files = sorted(p for p in args.directory.iterdir() if p.is_file())
    if not files:
        print(f"no files in {args.directory}", file=sys.stderr)
        return 1
    classes = {str(dcmread(files[0], stop_before_pixels=True).SOPClassUID)}
    ae = AE(ae_title="STORESCU")
    for sop_class in sorted(classes):
        ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = 60
    assoc = ae.associate(args.host, args.port, ae_title=args.aec)
    if not assoc.is_established:
        print("pynetdicom could not establish the association", file=sys.stderr)
        return 1
    failed = 0
    try:
        for path in files:
            status = assoc.send_c_store(path)
            if not status or status.Status != 0:
                failed += 1
                print(f"{path}: {status}", file=sys.stderr)
    finally:
        assoc.release()
    if failed:
        print(f"{failed} of {len(files)} C-STOREs did not return Success", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
