"""pacsbox.records.record behaves as dataclass(slots=True) for repr, equality and hashing."""

from __future__ import annotations

import dataclasses
import typing

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


def _both(body, **options):
    """``body()`` (a class namespace) made into a class by dataclass and by record."""
    return (
        dataclasses.dataclass(slots=True, **options)(type("R", (), body())),
        record(type("R", (), body()), **options),
    )


def test_inherited_fields_keep_their_place_and_take_new_defaults():
    def base_body():
        return {
            "__annotations__": {"kind": typing.ClassVar[int], "flag": "bool", "extra": "dict"},
            "flag": False,
            "extra": dataclasses.field(default_factory=dict, repr=False),
        }

    reference_base, our_base = _both(base_body, kw_only=True)

    def child(base):
        namespace = {"__annotations__": {"number": "int", "flag": "bool"}, "flag": True}
        namespace["kind"] = 7
        return dataclasses.dataclass(slots=True, kw_only=True)(type("C", (base,), namespace))

    reference = child(reference_base)
    ours = record(type("C", (our_base,), {"__annotations__": {"number": "int", "flag": "bool"},
                                          "flag": True, "kind": 7}), kw_only=True)  # fmt: skip
    for cls in (reference, ours):
        assert [f.name for f in dataclasses.fields(cls)] == ["flag", "extra", "number"]
        one = cls(number=3)
        assert (one.flag, one.extra, one.number, one.kind) == (True, {}, 3, 7)
        assert one.extra is not cls(number=3).extra  # a new dict each time
        assert repr(one) == "C(flag=True, number=3)"
        with pytest.raises(TypeError):
            cls(3)  # keyword-only
        assert dataclasses.replace(one, number=4) == cls(number=4)
        assert dataclasses.asdict(one) == {"flag": True, "extra": {}, "number": 3}
        assert dataclasses.is_dataclass(one)


def test_init_false_post_init_match_args_and_pickling():
    import copy

    def body():
        def __post_init__(self):
            object.__setattr__(self, "derived", self.a * 2)

        return {
            "__annotations__": {"a": "int", "derived": "int", "b": "str"},
            "derived": dataclasses.field(default=0, init=False),
            "b": "x",
            "__post_init__": __post_init__,
        }

    for cls in _both(body, frozen=True):
        one = cls(2, "y")
        assert (one.a, one.derived, one.b) == (2, 4, "y")
        assert cls.__match_args__ == ("a", "b")
        assert copy.deepcopy(one) == one and copy.copy(one) == one
        with pytest.raises(dataclasses.FrozenInstanceError):
            del one.a


def test_a_required_field_after_a_default_is_refused_as_dataclass_does():
    def body():
        return {"__annotations__": {"a": "int", "b": "int"}, "a": 1}

    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        record(type("R", (), body()))
    with pytest.raises(TypeError):
        dataclasses.dataclass(type("R", (), body()))


def test_init_is_compiled_on_first_use_and_then_kept():
    cls = record(type("R", (), {"__annotations__": {"a": "int"}}))
    first = cls.__init__
    cls(1)
    assert cls.__init__ is not first and cls.__init__.__qualname__ == "R.__init__"
    assert cls(5).a == 5
