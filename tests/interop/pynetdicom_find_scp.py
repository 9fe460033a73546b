"""A pynetdicom 3.0.4 C-FIND SCP with fixed answers, run as a subprocess by test_findscu.

    python tests/interop/pynetdicom_find_scp.py --port N [--matches 3] [--status 0x0000]
        [--wait-for-cancel]

Study Root FIND and Modality Worklist FIND, on 127.0.0.1. Each answer echoes the request's keys with values of
match n: PatientName "PYNETDICOM^n" (match 2 is "MÜLLER^HANS" in ISO_IR 100), PatientID
"PID-n", StudyInstanceUID "1.2.3.n", other keys as sent. Ends with --status. With
--wait-for-cancel it waits (a bounded while) after the first match for a C-CANCEL and
answers 0xFE00 when it comes. Prints each request's keywords to stdout.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--aet", default="PYNETDICOM")
    parser.add_argument("--matches", type=int, default=3)
    parser.add_argument("--status", type=lambda s: int(s, 0), default=0x0000)
    parser.add_argument("--wait-for-cancel", action="store_true")
    args = parser.parse_args(argv)

    from pydicom.dataset import Dataset
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import (
        ModalityWorklistInformationFind,
        StudyRootQueryRetrieveInformationModelFind,
    )

    def handle_find(event):
        request = event.identifier
        print("request", " ".join(e.keyword or str(e.tag) for e in request), flush=True)
        cancelled = False  # pynetdicom's is_cancelled is true once: it consumes the C-CANCEL
        for n in range(1, args.matches + 1):
            if cancelled or event.is_cancelled:
                yield 0xFE00, None
                return
            match = Dataset()
            if n == 2:
                match.SpecificCharacterSet = "ISO_IR 100"
            for elem in request:
                match.add_new(elem.tag, elem.VR, elem.value)
            match.PatientName = "MÜLLER^HANS" if n == 2 else f"PYNETDICOM^{n}"
            match.PatientID = f"PID-{n}"
            match.StudyInstanceUID = f"1.2.3.{n}"
            if "QueryRetrieveLevel" in request:
                match.QueryRetrieveLevel = request.QueryRetrieveLevel
            yield 0xFF00, match
            if args.wait_for_cancel and n == 1:
                for _ in range(500):  # at most ~5 s: the test sends the cancel at once
                    if event.is_cancelled:
                        cancelled = True
                        break
                    time.sleep(0.01)
        yield args.status, None

    ae = AE(ae_title=args.aet)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(ModalityWorklistInformationFind)
    server = ae.start_server(
        ("127.0.0.1", args.port), block=False, evt_handlers=[(evt.EVT_C_FIND, handle_find)]
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"listening on 127.0.0.1:{args.port} as {args.aet}", flush=True)
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
