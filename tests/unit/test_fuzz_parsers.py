"""Fuzzing the parsers that read what peers and users send (issue 9): DIMSE command sets, the
header walk at ingest (pacsbox.rawheader), dcmqrscp.cfg and findscu's -k keys. Each either
succeeds or raises its own documented error, never anything else. Hypothesis mutates valid
seeds (a C-STORE-RQ command set, a header with a sequence and Pixel Data, and the dcmqrscp.cfg
in tests/fuzz_corpus/ with every construct of DCMTK's format, -k keys of every form) and
generates random input; the seeds themselves run as explicit examples. Bounded: 1500 examples
each, well under a minute in all."""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pacsbox.config.dcmqrscp import ConfigError, parse
from pacsbox.dimse import CStoreRQ, DIMSEError
from pacsbox.dimse.messages import decode_command, encode_command
from pacsbox.query_keys import QueryKeyError, parse_key
from pacsbox.rawheader import RawHeader, Unsupported

CORPUS = Path(__file__).resolve().parent.parent / "fuzz_corpus"
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The seeds, kept in tests/fuzz_corpus/: a C-STORE-RQ command set, an explicit VR little
# endian header with an undefined-length sequence and Pixel Data, DCMTK's dcmqrscp.cfg with
# every construct, and -k keys of every form. test_the_corpus_is_what_the_code_writes keeps
# the two binary ones equal to what pacsbox encodes.
STORE_RQ = (CORPUS / "c-store-rq.bin").read_bytes()
HEADER = (CORPUS / "header-explicit-le.bin").read_bytes()
KEYS = (CORPUS / "findscu-keys.txt").read_text().split()
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
@example(HEADER[:42])  # cut inside the SQ element header (test_rawheader has the bug it found)
def test_the_header_walk_at_ingest(data):
    for implicit in (False, True):
        try:
            header = RawHeader(data, implicit)
            document = header.to_json()
            assert orjson.loads(header.to_json_text()) == orjson.loads(orjson.dumps(document))
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
    st.sampled_from(KEYS),
    st.sampled_from(KEYS).map(lambda key: key[: len(key) // 2]),
    st.text(max_size=60),
    st.from_regex(r"\(?[0-9a-fA-F]{4},[0-9a-fA-F]{4}\)?(\[[0-9]\]\.\w+)?(=.{0,20})?", fullmatch=True),
    st.from_regex(r"[A-Z][A-Za-z]{2,30}(\[\d\]\.[A-Z][A-Za-z]{2,30})*(=.{0,20})?", fullmatch=True),
))  # fmt: skip
def test_findscu_keys(text):
    with contextlib.suppress(QueryKeyError):
        parse_key(text)


def test_the_corpus_is_what_the_code_writes():
    rq = CStoreRQ(message_id=7, affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                  affected_sop_instance_uid="1.2.3.4.5")  # fmt: skip
    assert encode_command(rq) == STORE_RQ
    assert decode_command(STORE_RQ) == rq
    header = RawHeader(HEADER, implicit=False)
    assert header.text(0x00100010) == "Doe^John" and header.pixel_data_at is not None
    assert header.to_json()["00081140"]["Value"] == [{"00081155": {"vr": "UI", "Value": ["1.2.3"]}}]
    for key in KEYS:
        parse_key(key)
