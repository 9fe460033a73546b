"""Fuzzing the parsers that read what peers and users send (issue 9): DIMSE command sets, the
header walk at ingest (pacsbox.rawheader), dcmqrscp.cfg and findscu's -k keys. Each either
succeeds or raises its own documented error, never anything else. Hypothesis mutates valid
seeds (a C-STORE-RQ command set, a header with a sequence and Pixel Data, and the dcmqrscp.cfg
in tests/fuzz_corpus/ with every construct of DCMTK's format) and generates random input;
the seeds themselves run as explicit examples. Bounded: 400 examples each, seconds in all."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pacsbox.config.dcmqrscp import ConfigError, parse
from pacsbox.dimse import CStoreRQ, DIMSEError
from pacsbox.dimse.messages import decode_command, encode_command
from pacsbox.query_keys import QueryKeyError, parse_key
from pacsbox.rawheader import RawHeader, Unsupported

CORPUS = Path(__file__).resolve().parent.parent / "fuzz_corpus"
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

STORE_RQ = encode_command(
    CStoreRQ(message_id=7, affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
             affected_sop_instance_uid="1.2.3.4.5")
)  # fmt: skip
HEADER = (
    struct.pack("<HH2sH", 0x0008, 0x0016, b"UI", 26) + b"1.2.840.10008.5.1.4.1.1.2\0"
    + struct.pack("<HH2sH", 0x0010, 0x0010, b"PN", 8) + b"Doe^John"
    + struct.pack("<HH2s2sI", 0x0008, 0x1140, b"SQ", b"\0\0", 0xFFFFFFFF)
    + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    + struct.pack("<HH2sH", 0x0008, 0x1155, b"UI", 6) + b"1.2.3\0"
    + struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    + struct.pack("<HH2s2sI", 0x7FE0, 0x0010, b"OW", b"\0\0", 8) + b"\0" * 8
)  # fmt: skip
CFG = (CORPUS / "dcmqrscp.cfg").read_text()


def _mutations(seed: bytes):
    return st.lists(
        st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), min_size=1, max_size=8
    ).map(lambda changes: _apply(seed, changes))


def _apply(seed: bytes, changes) -> bytes:
    data = bytearray(seed)
    for position, value in changes:
        data[position] = value
    return bytes(data)


@FUZZ
@given(st.one_of(st.binary(max_size=300), _mutations(STORE_RQ)))
@example(STORE_RQ)
@example(b"")
def test_dimse_command_sets(data):
    with contextlib.suppress(DIMSEError):
        decode_command(data)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=400),
        _mutations(HEADER),
        _mutations(HEADER).map(lambda b: b[: len(b) // 2]),
    )
)
@example(HEADER)
@example(HEADER[:70])  # found by this test: a long-VR element header cut after 8 bytes
def test_the_header_walk_at_ingest(data):
    for implicit in (False, True):
        try:
            header = RawHeader(data, implicit)
            header.to_json()
            header.text(0x00100010)
        except Unsupported:
            pass


@FUZZ
@given(st.one_of(
    st.text(max_size=400),
    st.lists(st.integers(0, len(CFG) - 1), min_size=1, max_size=6).map(
        lambda cuts: "".join(c for i, c in enumerate(CFG) if i not in set(cuts))
    ),
))  # fmt: skip
@example(CFG)
def test_dcmqrscp_cfg(text):
    for strict in (True, False):
        with contextlib.suppress(ConfigError):
            parse(text, strict=strict)


@FUZZ
@given(st.one_of(
    st.text(max_size=60),
    st.from_regex(r"\(?[0-9a-fA-F]{4},[0-9a-fA-F]{4}\)?(\[[0-9]\]\.\w+)?(=.{0,20})?", fullmatch=True),
    st.from_regex(r"[A-Z][A-Za-z]{2,30}(\[\d\]\.[A-Z][A-Za-z]{2,30})*(=.{0,20})?", fullmatch=True),
))  # fmt: skip
@example("PatientName=DOE*")
@example("(0008,1110)[0].(0008,1150)")
def test_findscu_keys(text):
    with contextlib.suppress(QueryKeyError):
        parse_key(text)
