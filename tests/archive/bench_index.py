"""Timing of Index.add on SQLite and PostgreSQL, and of the DICOM JSON conversion on its own.

    .venv/bin/python -m tests.archive.bench_index [N]

Each add gets a fresh header from the storage SCP's parser (raw elements, as on the C-STORE
path), built before the clock starts. "add without JSON" replaces the header's JSON by {}.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from statistics import median
from unittest import mock

from pacsbox.archive import Index
from pacsbox.archive import index as index_module
from pacsbox.archive.header import dumps, header_json, header_values
from tests.archive.headers import (
    EXPLICIT_LE,
    ct_dataset,
    encode,
    new_uid,
    parse,
    pg_admin,
    pg_schema_url,
)


def headers(n: int):
    study, series = new_uid(), new_uid()
    template = ct_dataset(study, series, new_uid())
    blobs = []
    for i in range(n):
        template.SOPInstanceUID = f"{study[:50]}.{i}"
        template.InstanceNumber = i
        blobs.append(encode(template))
    return [parse(b) for b in blobs]


def per_call(fn, items) -> tuple[float, float]:
    """(mean, median) microseconds of fn(item) over items."""
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return 1e6 * sum(times) / len(times), 1e6 * median(times)


def bench_add(url: str, n: int, *, json: bool) -> tuple[float, float]:
    items = headers(n)
    with Index.open(url) as index:
        add = lambda h: index.add(  # noqa: E731
            h, path=f"x/{h.SOPInstanceUID}", size=500_000, transfer_syntax=EXPLICIT_LE
        )
        if json:
            return per_call(add, items)
        with mock.patch.object(index_module, "header_json", lambda ds: {}):
            return per_call(add, items)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(f"{n} CT headers (pydicom CT_small: {len(headers(1)[0])} elements, private included)")
    items = headers(n)
    print(
        "header_values   mean {:.0f} us, median {:.0f} us".format(*per_call(header_values, items))
    )
    items = headers(n)
    print("to_json_dict    mean {:.0f} us, median {:.0f} us".format(*per_call(header_json, items)))
    docs = [header_json(h) for h in headers(200)]
    print("json dumps      mean {:.0f} us, median {:.0f} us".format(*per_call(dumps, docs)))
    with tempfile.TemporaryDirectory() as tmp:
        for json in (False, True):
            url = f"sqlite:///{tmp}/index-{json}.sqlite"
            label = "add, with JSON   " if json else "add, without JSON"
            print(f"SQLite     {label} mean %.0f us, median %.0f us" % bench_add(url, n, json=json))
    for json in (False, True):
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        pg_admin(f"CREATE SCHEMA {schema}")
        try:
            label = "add, with JSON   " if json else "add, without JSON"
            result = bench_add(pg_schema_url(schema), n, json=json)
            print(f"PostgreSQL {label} mean %.0f us, median %.0f us" % result)
        finally:
            pg_admin(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
