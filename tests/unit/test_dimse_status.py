"""PS3.7 Annex C / PS3.4 status table: categories, meanings, hints, unknown codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacsbox.dimse import MESSAGE_TYPES, Service, StatusCategory, category_of, describe
from pacsbox.dimse.status import (
    _AMBIGUOUS,
    _BY_SERVICE,
    _GENERAL,
    _GENERAL_RANGES,
    _RANGES_BY_SERVICE,
    SERVICE_BY_COMMAND_FIELD,
)

S, P, C, W, F = (
    StatusCategory.SUCCESS,
    StatusCategory.PENDING,
    StatusCategory.CANCEL,
    StatusCategory.WARNING,
    StatusCategory.FAILURE,
)

# PS3.7 C.5 / 10.1 failure codes of the N-services
N_FAILURES = (0x0105, 0x0106, 0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0115, 0x0117, 0x0118,
              0x0119, 0x0120, 0x0121, 0x0122, 0x0123, 0x0124, 0x0210, 0x0211, 0x0212, 0x0213)  # fmt: skip


@pytest.mark.parametrize(
    ("code", "service", "category"),
    [
        (0x0000, None, S),
        (0xFF00, None, P),
        (0xFE00, None, C),
        # Storage, PS3.4 B.2.3
        (0xA700, "storage", F),
        (0xA7FF, "storage", F),
        (0xA900, "storage", F),
        (0xA9A1, "storage", F),
        (0xC000, "storage", F),
        (0xCFFF, "storage", F),
        (0xB000, "storage", W),
        (0xB007, "storage", W),
        (0xB006, "storage", W),
        # Query/Retrieve, PS3.4 C.4
        (0xA700, "find", F),
        (0xA900, "find", F),
        (0xC001, "find", F),
        (0xFE00, "find", C),
        (0xFF00, "find", P),
        (0xFF01, "find", P),
        (0xA701, "move", F),
        (0xA702, "move", F),
        (0xA801, "move", F),
        (0xB000, "move", W),
        (0xFF00, "move", P),
        (0xA701, "get", F),
        (0xB000, "get", W),
        (0xC512, "get", F),
        # N-services, PS3.7 C / 10.1
        (0x0001, "normalized", W),
        (0x0107, "normalized", W),
        (0x0116, "normalized", W),
        *[(code, "normalized", F) for code in N_FAILURES],
    ],
)
def test_defined_codes(code, service, category):
    info = describe(code, service)
    assert info.category is category
    assert info.meaning != "Unknown status"
    assert info.code == code


def test_service_changes_the_meaning():
    assert "coercion" in describe(0xB000, Service.STORAGE).meaning.lower()
    assert "sub-operations" in describe(0xB000, Service.MOVE).meaning.lower()
    assert "coercion" in describe(0xB000).meaning.lower()  # both, without a service
    assert "sub-operations" in describe(0xB000).meaning.lower()
    assert describe(0xC123, "storage").meaning == "Error: cannot understand"
    assert describe(0xC123, "find").meaning == "Failed: unable to process"
    assert describe(0xA801, "get").meaning == "Unknown status"  # C-GET has no destination


@pytest.mark.parametrize(
    ("code", "service", "words"),
    [
        (0xA801, "move", "configure that AE (host, port) on the PACS"),
        (0x0122, None, "does not support this SOP class"),
        (0xA700, "storage", "out of storage resources"),
        (0xA7F0, None, "out of storage resources"),
        (0xC000, "find", "add QueryRetrieveLevel or the required unique keys"),
        (0x0120, "find", "add QueryRetrieveLevel"),
        (0x0124, None, "AE title"),
    ],
)
def test_hints_say_what_to_change(code, service, words):
    assert words in describe(code, service).hint


def _all_entries():
    yield from _GENERAL.items()
    yield from _AMBIGUOUS.items()
    for table in _BY_SERVICE.values():
        yield from table.items()
    for ranges in [_GENERAL_RANGES, *_RANGES_BY_SERVICE.values()]:
        for low, _high, *entry in ranges:
            yield low, tuple(entry)


@pytest.mark.parametrize(
    ("code", "entry"), list(_all_entries()), ids=lambda v: f"{v:04X}" if isinstance(v, int) else ""
)
def test_table_entries_are_well_formed(code, entry):
    category, meaning, hint = entry
    assert meaning and meaning[0].isupper()
    assert hint is None or (hint.strip() and hint.endswith("."))
    # the tables agree with the category PS3.7 C gives a code by its value
    assert category is category_of(code)


@given(st.integers(0, 0xFFFF))
def test_unknown_codes_follow_ps37_category_rules(code):
    info = describe(code, "verification")
    if info.meaning == "Unknown status":
        assert info.category is category_of(code)
        assert info.hint is None
    assert describe(code).category is category_of(code)


@pytest.mark.parametrize(
    ("code", "category"),
    [(0x0000, S), (0xFF00, P), (0xFF01, P), (0xFE00, C), (0x0001, W), (0xB123, W),
     (0x0107, W), (0x0116, W), (0x0002, F), (0xD000, F), (0xFFFF, F), (0xA7FF, F)],
)  # fmt: skip
def test_category_rules(code, category):
    assert category_of(code) is category


def test_unknown_code_reads_as_unknown():
    info = describe(0x0999, "storage")
    assert (info.category, info.meaning, info.hint) == (F, "Unknown status", None)
    assert str(info) == "0x0999 Failure: Unknown status"
    assert str(describe(0xA801, "move")).startswith(
        "0xA801 Failure: Refused: move destination unknown. "
    )


def test_bad_service_is_refused():
    with pytest.raises(ValueError):
        describe(0, "c-store")


def test_every_response_has_a_service():
    responses = {cf for cf in MESSAGE_TYPES if cf & 0x8000}
    assert set(SERVICE_BY_COMMAND_FIELD) == responses
