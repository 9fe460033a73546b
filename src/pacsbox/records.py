"""``record``: ``dataclass(slots=True)`` whose ``__repr__``, ``__eq__`` and ``__hash__`` are
shared functions instead of code generated for each class.

dataclass compiles every method it generates (``exec``), ~0.1 ms each: for the ~60 message,
PDU and event classes a tool imports that was 20-30 ms of every command's start-up, next to
DCMTK's tools that start in a few. The shared methods behave as dataclass's would: repr of the
fields with ``repr=True``, equality of instances of the same class field by field, hashable by
value when frozen, unhashable otherwise.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def _repr(self) -> str:
    shown = ", ".join(
        f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr
    )
    return f"{type(self).__qualname__}({shown})"


def _values(self) -> tuple:
    return tuple(getattr(self, f.name) for f in dataclasses.fields(self) if f.compare)


def _eq(self, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self) -> int:
    return hash(_values(self))


def record(cls: type[T] | None = None, /, *, frozen: bool = False, kw_only: bool = False) -> Any:
    """``@record`` or ``@record(frozen=True, kw_only=True)`` on a class, as ``@dataclass``."""

    def wrap(cls: type[T]) -> type[T]:
        if not cls.__doc__:  # else dataclass renders inspect.signature(cls) into one (~80 us)
            cls.__doc__ = f"{cls.__name__} (pacsbox.records.record)"
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = _repr  # type: ignore[assignment]
        if "__eq__" not in cls.__dict__:
            cls.__eq__ = _eq  # type: ignore[assignment]
            cls.__hash__ = _hash if frozen else None  # type: ignore[assignment]
        return dataclasses.dataclass(  # type: ignore[return-value]
            cls, slots=True, frozen=frozen, kw_only=kw_only, repr=False, eq=False
        )

    return wrap if cls is None else wrap(cls)
