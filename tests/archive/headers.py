"""Instance headers for the index tests, parsed the way the storage SCP parses them (raw
elements from ``read_header``), and the databases the tests run on."""

from __future__ import annotations

import copy
import uuid
from functools import cache
from io import BytesIO
from types import SimpleNamespace

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from pacsbox.services.storage_scp import read_header

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
ROOT = "1.2.826.0.1.3680043.8.498"  # pydicom's UID root, for test UIDs

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/pacsbox_test"


@cache
def _ct_small() -> Dataset:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    del ds.file_meta
    ds.preamble = None
    return ds


def encode(ds: Dataset, *, implicit: bool = False) -> bytes:
    """The data set as a C-STORE carries it: explicit (or implicit) VR little endian, no file
    meta."""
    buf = BytesIO()
    dcmwrite(buf, ds, implicit_vr=implicit, little_endian=True)
    return buf.getvalue()


def parse(data: bytes, transfer_syntax: str = EXPLICIT_LE):
    """``data`` through the storage SCP's own header parser: elements up to Pixel Data, raw
    (a ``RawHeader``, or a pydicom Dataset where that fast path hands over)."""
    sink = SimpleNamespace(head=bytearray(data), length=len(data), tail=data[-8:], path=None)
    return read_header(sink, transfer_syntax)


def ct_dataset(study: str, series: str, sop: str, **attributes) -> Dataset:
    """A CT image (pydicom's CT_small, private tags and pixel data included) with these UIDs
    and attributes (keywords)."""
    ds = copy.deepcopy(_ct_small())
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, sop
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def ct_header(study: str, series: str, sop: str, **attributes) -> Dataset:
    return parse(encode(ct_dataset(study, series, sop, **attributes)))


def new_uid() -> str:
    return f"{ROOT}.{uuid.uuid4().int}"[:64]


def pg_schema_url(schema: str) -> str:
    """The test database, with ``schema`` first on the search path."""
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def pg_admin(statement: str) -> None:
    """Run one statement on the PostgreSQL test database; fails the test (never skips) when
    PostgreSQL is not there."""
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    except OperationalError as exc:
        raise AssertionError(
            f"PostgreSQL is not reachable at {PG_URL} ({exc.orig}). The archive tests need it: "
            "run `make peers` (scripts/install-peers.sh installs and starts PostgreSQL 15 and "
            "creates the pacsbox_test database)"
        ) from None
    finally:
        engine.dispose()
