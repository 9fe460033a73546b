"""``record``: a ``dataclass(slots=True)`` that costs next to nothing to define.

Every command imports ~65 message, PDU and event classes. ``dataclasses.dataclass`` spent
~150 M instructions making them (a third of `pacsbox storescu`'s start-up; DCMTK's tool
starts in 157 M in all): it compiles ``__init__`` (and ``__setattr__`` for frozen classes)
with ``exec`` for every class, checks every string annotation with regular expressions and
builds each slotted class twice. ``record`` makes the same class, to the extent pacsbox uses
them, in a fraction of that:

- fields from the class's own annotations after its record bases' (a field redefined in a
  subclass keeps its place, as in dataclass), defaults as class attributes or
  ``dataclasses.field(default=, default_factory=, repr=, compare=, init=, kw_only=)``;
  ``ClassVar`` annotations are not fields; ``kw_only=True`` for the whole class;
- ``__init__`` is compiled when the class is first instantiated, not when it is defined:
  a tool that never makes an N-EVENT-REPORT never pays for its ``__init__``;
- ``__repr__``, ``__eq__``, ``__hash__`` (by value when frozen, none otherwise) and the
  frozen ``__setattr__`` are functions shared by every record;
- ``__dataclass_fields__`` holds real ``dataclasses.Field`` objects, so
  ``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` work on records.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = dataclasses.MISSING
_FIELD = dataclasses._FIELD  # type: ignore[attr-defined]  # the marker dataclasses.fields() keeps
_FACTORY = object()  # an __init__ default: "call the field's default_factory"


def _repr(self) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_repr__)
    return f"{type(self).__qualname__}({shown})"


def _values(self) -> tuple:
    return tuple(getattr(self, name) for name in self.__record_compare__)


def _eq(self, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self) -> int:
    return hash(_values(self))


def _frozen_setattr(self, name: str, value: object) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self) -> list:
    return [getattr(self, name) for name in self.__dataclass_fields__]


def _setstate(self, state: list) -> None:
    for name, value in zip(self.__dataclass_fields__, state, strict=True):
        object.__setattr__(self, name, value)


def _is_classvar(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))


def _fields(cls: type, kw_only: bool) -> dict[str, dataclasses.Field]:
    """The class's fields in dataclass's order: inherited ones first, then its own."""
    fields: dict[str, dataclasses.Field] = {}
    for base in reversed(cls.__mro__[1:]):
        fields.update(getattr(base, "__dataclass_fields__", {}))
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - as written, never evaluated
    for name, annotation in own.items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, _MISSING)
        f = value if isinstance(value, dataclasses.Field) else dataclasses.field(default=value)
        f.name, f.type, f._field_type = name, annotation, _FIELD  # type: ignore[attr-defined]
        if f.kw_only is _MISSING:
            f.kw_only = kw_only
        fields[name] = f
    return fields


def _slotted(cls: type, fields: dict[str, dataclasses.Field]) -> type:
    """``cls`` made anew with ``__slots__`` for the fields its bases have no slot for."""
    inherited = {s for base in cls.__mro__[1:-1] for s in base.__dict__.get("__slots__", ())}
    namespace = dict(cls.__dict__)
    for name in fields:
        namespace.pop(name, None)  # a default lives in __init__, not as a class attribute
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    namespace["__slots__"] = tuple(n for n in fields if n not in inherited)
    made = type(cls)(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    return made


def _compile_init(cls: type) -> Any:
    """``cls.__init__`` as dataclass would write it."""
    fields: dict[str, dataclasses.Field] = cls.__dataclass_fields__  # type: ignore[attr-defined]
    frozen = cls.__setattr__ is _frozen_setattr
    scope: dict[str, Any] = {"_FACTORY": _FACTORY, "_set": object.__setattr__}
    positional, keyword, body = [], [], []
    for f in fields.values():
        name = f.name
        if f.default_factory is not _MISSING:
            scope[f"_factory_{name}"] = f.default_factory
        if f.init:
            if f.default is not _MISSING:
                scope[f"_default_{name}"] = f.default
                param = f"{name}=_default_{name}"
            elif f.default_factory is not _MISSING:
                param = f"{name}=_FACTORY"
            else:
                param = name
            (keyword if f.kw_only else positional).append(param)
            value = name
            if f.default_factory is not _MISSING:
                value = f"_factory_{name}() if {name} is _FACTORY else {name}"
        elif f.default_factory is not _MISSING:
            value = f"_factory_{name}()"
        elif f.default is not _MISSING:
            scope[f"_default_{name}"] = f.default
            value = f"_default_{name}"
        else:
            continue
        body.append(f"_set(self, {name!r}, {value})" if frozen else f"self.{name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    params = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({params}):\n " + "\n ".join(body or ["pass"])
    exec(source, scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _lazy_init(cls: type) -> Any:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        init = _compile_init(cls)
        cls.__init__ = init  # type: ignore[misc]
        init(self, *args, **kwargs)

    return __init__


def record(cls: type[T] | None = None, /, *, frozen: bool = False, kw_only: bool = False) -> Any:
    """``@record`` or ``@record(frozen=True, kw_only=True)`` on a class, as ``@dataclass``."""

    def wrap(cls: type[T]) -> type[T]:
        fields = _fields(cls, kw_only)
        positional = [f for f in fields.values() if f.init and not f.kw_only]
        seen_default = False
        for f in positional:  # dataclass's rule, checked now rather than at first use
            has_default = f.default is not _MISSING or f.default_factory is not _MISSING
            if seen_default and not has_default:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
            seen_default = seen_default or has_default
        made: Any = _slotted(cls, fields)
        made.__dataclass_fields__ = fields
        made.__match_args__ = tuple(f.name for f in positional)
        made.__record_repr__ = tuple(f.name for f in fields.values() if f.repr)
        made.__record_compare__ = tuple(f.name for f in fields.values() if f.compare)
        if "__repr__" not in cls.__dict__:
            made.__repr__ = _repr
        if "__eq__" not in cls.__dict__:
            made.__eq__ = _eq
            made.__hash__ = _hash if frozen else None
        if frozen:
            made.__setattr__ = _frozen_setattr
            made.__delattr__ = _frozen_delattr
            made.__getstate__ = _getstate
            made.__setstate__ = _setstate
        made.__init__ = _lazy_init(made)
        return made

    return wrap if cls is None else wrap(cls)
