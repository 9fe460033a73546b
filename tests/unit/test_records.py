"""pacsbox.records.record behaves as dataclass(slots=True) for repr, equality and hashing."""

from __future__ import annotations

import dataclasses

import pytest

from pacsbox.dimse import CStoreRQ, CStoreRSP
from pacsbox.records import record
from pacsbox.ul.connection import AbortIndication
from pacsbox.ul.pdu import PresentationContextRQ


def twins(**options):
    """The same class made by dataclass and by record."""

    def body():
        return {
            "__annotations__": {"a": "int", "b": "str", "hidden": "int"},
            "b": "x",
            "hidden": dataclasses.field(default=0, repr=False),
        }

    made_by_dataclass = dataclasses.dataclass(slots=True, **options)(type("R", (), body()))
    made_by_record = record(type("R", (), body()), **options)
    return made_by_dataclass, made_by_record


@pytest.mark.parametrize("frozen", [False, True])
def test_same_repr_equality_and_hashing_as_dataclass(frozen):
    reference, ours = twins(frozen=frozen)
    for cls in (reference, ours):
        one, same, other = cls(1, "y", 5), cls(1, "y", 5), cls(2)
        assert repr(one) == "R(a=1, b='y')"
        assert one == same and one != other
        assert (one == 1) is False
        assert hasattr(one, "__slots__") and not hasattr(one, "__dict__")
        if frozen:
            assert hash(one) == hash(same)
            with pytest.raises(dataclasses.FrozenInstanceError):
                one.a = 3
        else:
            with pytest.raises(TypeError):
                hash(one)
    assert ours(1) != reference(1)  # different classes never compare equal


def test_messages_pdus_and_events_compare_by_value():
    rq = CStoreRQ(message_id=1, affected_sop_class_uid="1.2", affected_sop_instance_uid="3.4")
    assert rq == dataclasses.replace(rq) and rq != dataclasses.replace(rq, message_id=2)
    assert rq != CStoreRSP(message_id_being_responded_to=1, status=0)
    assert "message_id=1" in repr(rq) and "extra" not in repr(rq)
    assert PresentationContextRQ(1, "1.2", ["1.2.840.10008.1.2"]) == PresentationContextRQ(
        1, "1.2", ["1.2.840.10008.1.2"]
    )
    assert len({AbortIndication(0, 0), AbortIndication(0, 0), AbortIndication(2, 1)}) == 2
