"""`@record`: a frozen, slotted dataclass that costs less to define.

`@dataclass(frozen=True, slots=True)` writes the source of six methods per class and
compiles each (`__init__`, `__setattr__`, `__delattr__`, `__eq__`, `__hash__`, `__repr__`):
about 0.6 ms per class at every start of Python 3.11, and a cron agent defines some thirty
classes before its cycle does anything. `@record` lets `dataclasses` collect the fields and
add the slots, and compiles nothing when the class is defined:

- `__eq__`, `__hash__` and `__repr__` are shared functions that behave as the generated ones
  do: equal when of the same class with equal fields (`compare=True`) as tuples; the hash of
  that tuple (fields with `hash=`/`compare=`); `Name(field=value, ...)` over the `repr=True`
  fields, `...` for a value that contains itself.
- `__setattr__`/`__delattr__` are shared functions that refuse as the frozen ones do
  (`FrozenInstanceError`), and pickling goes through `__getstate__`/`__setstate__` as for a
  frozen, slotted dataclass.
- `__init__` is written and compiled when the class is first instantiated, with the
  parameters the dataclass's own would have (names, order, defaults, default factories,
  keyword-only fields, fields with `init=False`, `__post_init__`): a cron cycle builds
  instances of a third of the classes it defines. A class with an `InitVar` gets the
  dataclass's `__init__` at once.

A method the class defines itself is kept, as `dataclasses` keeps it. The class is a frozen
dataclass in every other way (`fields`, `replace`, `asdict`, `__match_args__`,
`__dataclass_params__.frozen`), and type checkers see one (PEP 681).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from threading import get_ident
from typing import Any, TypeVar, dataclass_transform

from wire.frozen import init_of

T = TypeVar("T")

_Key = Callable[[Any], tuple[Any, ...]]


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[T]) -> type[T]:
    """A frozen, slotted dataclass of `cls`, its methods shared or made late (see the module)."""
    body = dict(cls.__dict__)  # before slots: the class as written
    if not _plain(cls, body):
        made: type[T] = dataclasses.dataclass(frozen=True, slots=True, eq=False, repr=False)(cls)
    else:
        # nothing compiled here: no __init__, and the class is frozen by the functions below
        made = dataclasses.dataclass(init=False, slots=True, eq=False, repr=False)(cls)
        made.__dataclass_params__ = _FROZEN  # type: ignore[attr-defined]
    fields = dataclasses.fields(made)  # type: ignore[arg-type]
    methods: dict[str, Callable[..., Any]] = {}
    if _FROZEN is not None and made.__dataclass_params__ is _FROZEN:  # type: ignore[attr-defined]
        names = frozenset(f.name for f in fields)
        methods["__setattr__"] = _setattr_of(made, names)
        methods["__delattr__"] = _delattr_of(made, names)
        methods["__getstate__"] = _getstate
        methods["__setstate__"] = _setstate
        if "__init__" not in body:
            _check_defaults(made, fields)
            methods["__init__"] = _late_init(made)
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
        if name in ("__getstate__", "__setstate__"):
            if name in body:
                continue
            setattr(made, name, fn)
            continue
        fn.__qualname__ = f"{made.__qualname__}.{name}"
        setattr(made, name, fn)
    return made


def _plain(cls: type, body: dict[str, Any]) -> bool:
    """True when `record` can make the class itself: no dataclass base (frozen or not:
    dataclasses checks the two agree), no `__setattr__`/`__delattr__` of its own (refused by
    dataclasses for a frozen class) and no `InitVar` (given to `__post_init__`)."""
    if _FROZEN is None or "__setattr__" in body or "__delattr__" in body:
        return False
    if any(hasattr(base, "__dataclass_fields__") for base in cls.__mro__[1:]):
        return False
    notes = body.get("__annotations__", {})
    return not any("InitVar" in str(note) for note in notes.values())


def _frozen_params() -> Any:
    """The `__dataclass_params__` of a frozen dataclass with an `__init__`, `eq=False` and
    `repr=False` (what `dataclass(frozen=True, slots=True, eq=False, repr=False)` records),
    made from a plain one without compiling anything; None if this Python's differs."""

    class _Probe:
        """A class to read the parameters from."""

    plain = dataclasses.dataclass(init=False, slots=True, eq=False, repr=False)(_Probe)
    params = plain.__dataclass_params__  # type: ignore[attr-defined]
    kind = type(params)
    try:
        values = {name: getattr(params, name) for name in kind.__slots__}
        frozen = kind(**{**values, "init": True, "frozen": True})
    except (AttributeError, TypeError):
        return None
    return frozen if frozen.frozen and frozen.init else None


def _setattr_of(owner: type, names: frozenset[str]) -> Callable[[Any, str, Any], None]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is owner or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(owner, self).__setattr__(name, value)  # type: ignore[arg-type]

    return __setattr__


def _delattr_of(owner: type, names: frozenset[str]) -> Callable[[Any, str], None]:
    def __delattr__(self: Any, name: str) -> None:
        if type(self) is owner or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(owner, self).__delattr__(name)  # type: ignore[arg-type]

    return __delattr__


def _getstate(self: Any) -> list[Any]:
    """As a frozen, slotted dataclass pickles: the field values in order."""
    return [getattr(self, f.name) for f in dataclasses.fields(self)]


def _setstate(self: Any, state: list[Any]) -> None:
    for f, value in zip(dataclasses.fields(self), state, strict=False):
        object.__setattr__(self, f.name, value)


def _check_defaults(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> None:
    """The error `dataclasses` raises when the class is defined: a positional parameter
    without a default after one with a default."""
    seen = False
    for f in fields:
        if not f.init or f.kw_only:
            continue
        has = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if seen and not has:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
        seen = seen or has


def _late_init(cls: type) -> Callable[..., None]:
    """An `__init__` that writes the real one on the first call and puts it in its place."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init = cls.__dict__["__init__"]
        if init is __init__:
            init = init_of(cls)
            type.__setattr__(cls, "__init__", init)
        init(self, *args, **kwargs)

    return __init__


_UNSET = object()
_FROZEN = _frozen_params()


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
