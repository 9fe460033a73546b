"""The DCMTK dump layout, line for line, with lines taken from DCMTK 3.6.7's findscu -v and
dcmdump output (see the module docstring of pacsbox.dataset_dump for where we differ)."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from pacsbox.dataset_dump import dump_lines
from pacsbox.datasets import encode_dataset
from pacsbox.query_keys import build_identifier

EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"


def test_the_tutorials_request_identifiers():
    ds = build_identifier(
        ["QueryRetrieveLevel=STUDY", "StudyDate", "StudyDescription", "StudyInstanceUID"]
    )
    # DCMTK 3.6.7 findscu -v, "Request Identifiers:"
    assert dump_lines(ds, EXPLICIT, request=True) == [
        "# Dicom-Data-Set",
        "# Used TransferSyntax: Little Endian Explicit",
        "(0008,0020) DA (no value available)                     #   0, 0 StudyDate",
        "(0008,0052) CS [STUDY]                                  #   6, 1 QueryRetrieveLevel",
        "(0008,1030) LO (no value available)                     #   0, 0 StudyDescription",
        "(0020,000d) UI (no value available)                     #   0, 0 StudyInstanceUID",
    ]


def test_a_response_as_received_keeps_its_padding():
    ds = Dataset()
    ds.StudyDate = "20140101"
    ds.QueryRetrieveLevel = "STUDY"
    ds.RetrieveAETitle = "ACME_STORE"
    ds.StudyDescription = "General Checkup"
    ds.StudyInstanceUID = "2.16.840.1.113662.2.1.1519.11582.1990505.1105152"
    raw = encode_dataset(ds, EXPLICIT)
    # the tutorial's second Find Response
    assert dump_lines(raw, EXPLICIT, header=False) == [
        "(0008,0020) DA [20140101]                               #   8, 1 StudyDate",
        "(0008,0052) CS [STUDY ]                                 #   6, 1 QueryRetrieveLevel",
        "(0008,0054) AE [ACME_STORE]                             #  10, 1 RetrieveAETitle",
        "(0008,1030) LO [General Checkup ]                       #  16, 1 StudyDescription",
        "(0020,000d) UI [2.16.840.1.113662.2.1.1519.11582.1990505.1105152] #  48, 1 StudyInstanceUID",
    ]


def test_sequences_binary_values_and_private_tags():
    item = Dataset()
    item.ReferencedSOPClassUID = ""
    item.StudyInstanceUID = "1.2"
    ds = Dataset()
    ds.ReferencedStudySequence = Sequence([item, Dataset()])
    ds.add_new(0x00091001, "UN", b"\x01\x02\x03\x04")
    ds.Rows = 512
    ds.add_new(0x00209165, "AT", [0x00100010, 0x00080020])
    ds.add_new(0x00181624, "US", [1, 2, 3])
    ds.add_new(0x00720064, "FD", 1.25)
    # dcmdump of the same data set written by pydicom (explicit length sequences)
    assert dump_lines(ds, EXPLICIT, header=False) == [
        "(0008,1110) SQ (Sequence with explicit length #=2)      #  36, 1 ReferencedStudySequence",
        "  (fffe,e000) na (Item with explicit length #=2)          #  20, 1 Item",
        "    (0008,1150) UI (no value available)                     #   0, 0 ReferencedSOPClassUID",
        "    (0020,000d) UI [1.2]                                    #   4, 1 StudyInstanceUID",
        "  (fffe,e00d) na (ItemDelimitationItem for re-encoding)   #   0, 0 ItemDelimitationItem",
        "  (fffe,e000) na (Item with explicit length #=0)          #   0, 1 Item",
        "  (fffe,e00d) na (ItemDelimitationItem for re-encoding)   #   0, 0 ItemDelimitationItem",
        "(fffe,e0dd) na (SequenceDelimitationItem for re-encod.) #   0, 0 SequenceDelimitationItem",
        "(0009,1001) UN 01\\02\\03\\04                              #   4, 1 Unknown Tag & Data",
        "(0018,1624) US 1\\2\\3                                    #   6, 3 ShutterPresentationColorCIELabValue",
        "(0020,9165) AT (0010,0010)\\(0008,0020)                  #   8, 2 DimensionIndexPointer",
        "(0028,0010) US 512                                      #   2, 1 Rows",
        "(0072,0064) FD 1.25                                     #   8, 1 SelectorISValue",
    ]


def test_undefined_length_sequences_in_implicit_vr():
    item = Dataset()
    item.StudyInstanceUID = "1.2"
    ds = Dataset()
    ds.ReferencedStudySequence = Sequence([item])
    ds["ReferencedStudySequence"].is_undefined_length = True
    item.is_undefined_length_sequence_item = True
    assert dump_lines(ds, IMPLICIT)[1:] == [
        "# Used TransferSyntax: Little Endian Implicit",
        "(0008,1110) SQ (Sequence with undefined length #=1)     # u/l, 1 ReferencedStudySequence",
        "  (fffe,e000) na (Item with undefined length #=1)         # u/l, 1 Item",
        "    (0020,000d) UI [1.2]                                    #   4, 1 StudyInstanceUID",
        "  (fffe,e00d) na (ItemDelimitationItem)                   #   0, 0 ItemDelimitationItem",
        "(fffe,e0dd) na (SequenceDelimitationItem)               #   0, 0 SequenceDelimitationItem",
    ]


def test_text_is_decoded_with_the_character_set():
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "MÜLLER^HANS"
    lines = dump_lines(ds, EXPLICIT, header=False)
    # DCMTK prints the Latin-1 byte as it is ("M\xdcLLER"); we print the character
    assert lines[1] == (
        "(0010,0010) PN [MÜLLER^HANS ]                           #  12, 1 PatientName"
    )
