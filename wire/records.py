"""`@record`: a frozen, slotted dataclass that costs less to define.

`@dataclass(frozen=True, slots=True)` writes the source of six methods per class and
compiles each (`__init__`, `__setattr__`, `__delattr__`, `__eq__`, `__hash__`, `__repr__`):
about 0.6 ms per class at every start of Python 3.11, and a cron agent defines some thirty
classes before its cycle does anything. `@record` leaves `__init__` and the frozen
`__setattr__`/`__delattr__` to `dataclasses` and gives `__eq__`, `__hash__` and `__repr__`
as shared functions that behave as the generated ones do: equal when of the same class
with equal fields (`compare=True`) as tuples; the hash of that tuple (fields with
`hash=`/`compare=`); `Name(field=value, ...)` over the `repr=True` fields, `...` for a
value that contains itself. A method the class defines itself is kept, as `dataclasses`
keeps it. The class is a dataclass in every other way (`fields`, `replace`, `asdict`,
`__match_args__`), and type checkers see a frozen dataclass (PEP 681).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from threading import get_ident
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

_Key = Callable[[Any], tuple[Any, ...]]


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[T]) -> type[T]:
    """A frozen, slotted dataclass of `cls`, its value methods shared (see the module)."""
    body = dict(cls.__dict__)  # before slots: the class as written
    made: type[T] = dataclasses.dataclass(frozen=True, slots=True, eq=False, repr=False)(cls)
    fields = dataclasses.fields(made)  # type: ignore[arg-type]
    methods: dict[str, Callable[..., Any]] = {}
    if "__repr__" not in body:
        methods["__repr__"] = _repr_of([f.name for f in fields if f.repr])
    if "__eq__" not in body:
        methods["__eq__"] = _eq_of(_key([f.name for f in fields if f.compare]))
    # as dataclasses decides for eq=True, frozen=True: a __hash__ the class body wrote is
    # kept, but not the None that Python leaves when the body writes __eq__ alone
    written = body.get("__hash__", _UNSET)
    if written is _UNSET or (written is None and "__eq__" in body):
        hashed = [f.name for f in fields if (f.compare if f.hash is None else f.hash)]
        methods["__hash__"] = _hash_of(_key(hashed))
    for name, fn in methods.items():
        fn.__qualname__ = f"{made.__qualname__}.{name}"
        setattr(made, name, fn)
    return made


_UNSET = object()


def _key(names: list[str]) -> _Key:
    """The fields `names` of an instance as a tuple (attrgetter: C speed, as generated code)."""
    if not names:
        return lambda _self: ()
    if len(names) == 1:
        (name,) = names
        return lambda self: (getattr(self, name),)
    getter: _Key = operator.attrgetter(*names)
    return getter


def _eq_of(key: _Key) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    return __eq__


def _hash_of(key: _Key) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(key(self))

    return __hash__


def _repr_of(names: list[str]) -> Callable[[Any], str]:
    running: set[tuple[int, int]] = set()

    def __repr__(self: Any) -> str:
        mark = (id(self), get_ident())
        if mark in running:
            return "..."
        running.add(mark)
        try:
            inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        finally:
            running.discard(mark)
        return f"{self.__class__.__qualname__}({inner})"

    return __repr__
