"""Identifiers to bytes and back in every uncompressed transfer syntax findscu proposes."""

from __future__ import annotations

import pytest

from pacsbox.dataset_dump import dump_lines
from pacsbox.datasets import decode_dataset, encode_dataset
from pacsbox.query_keys import build_identifier

SYNTAXES = {
    "1.2.840.10008.1.2": "Little Endian Implicit",
    "1.2.840.10008.1.2.1": "Little Endian Explicit",
    "1.2.840.10008.1.2.2": "Big Endian Explicit",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
}


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_round_trip_and_dump(syntax):
    ds = build_identifier(
        [
            "QueryRetrieveLevel=IMAGE",
            "PatientName=Müller",
            "Rows=512",
            "ReferencedStudySequence[0].StudyInstanceUID=1.2",
            "(0009,0010)=ACME",
        ]
    )
    raw = encode_dataset(ds, syntax)
    back = decode_dataset(raw, syntax)
    assert back == ds
    lines = dump_lines(raw, syntax)
    assert lines[1] == f"# Used TransferSyntax: {SYNTAXES[syntax]}"
    assert "(0028,0010) US 512                                      #   2, 1 Rows" in lines
    assert any("PN [Müller ]" in line for line in lines)  # 7 UTF-8 bytes, padded to 8
