"""A faster `__init__` for the frozen, slotted dataclasses built by the hundred thousand.

A frozen dataclass's generated `__init__` sets each field through `object.__setattr__` (its
own `__setattr__` refuses), which is most of what building one costs. The planner builds
several per machine and cycle (a status, a skip; on a change a desired document, a memory
entry, a write): at 100,000 machines that was ~0.15 s of a steady plan. `quick_init(cls)`
replaces the generated `__init__` with one that sets each slot through the slot's own
descriptor: the same parameters (names, order, defaults, default factories), the same
value built, about 1.7x faster. The class stays frozen: assigning a field afterwards still
raises `FrozenInstanceError`. Only for plain dataclasses: frozen, slotted, every field in
`__init__`, no keyword-only field, no `InitVar`, no `__post_init__` (refused otherwise).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class _Factory:
    """The default of a parameter whose field has a default factory."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def quick_init(cls: type[T]) -> type[T]:
    """Give the frozen, slotted dataclass `cls` the faster `__init__` (see the module)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"quick_init: {cls.__name__} is not a frozen dataclass")
    if "__slots__" not in cls.__dict__:
        raise TypeError(f"quick_init: {cls.__name__} has no slots (dataclass slots=True)")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"quick_init: {cls.__name__} has __post_init__")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if len(fields) != len(cls.__dataclass_fields__):  # type: ignore[attr-defined]
        raise TypeError(f"quick_init: {cls.__name__} has an InitVar or ClassVar field")
    for f in fields:
        if not f.init or f.kw_only:
            raise TypeError(f"quick_init: {cls.__name__}.{f.name} is not a plain init field")
    setattr(cls, "__init__", init_of(cls, through_slots=True))  # noqa: B010 - mypy refuses assigning a method
    return cls


def init_of(cls: type, *, through_slots: bool = False) -> Callable[..., None]:
    """The `__init__` that `dataclass(frozen=True)` writes for `cls`: the same parameters
    (positional, then keyword-only), defaults and factories, the fields with `init=False`
    set from theirs, then `__post_init__` if the class has one. Each field is set through
    `object.__setattr__`, or, `through_slots`, through its slot's own descriptor (faster;
    TypeError if a field is not a slot). wire.records writes its records' `__init__` with
    it too."""
    ns: dict[str, Any] = {"_FACTORY": _FACTORY, "_set": object.__setattr__}
    positional: list[str] = []
    keyword: list[str] = []
    lines: list[str] = []
    fields = dataclasses.fields(cls)
    for i, f in enumerate(fields):
        if through_slots:
            slot = next(k.__dict__[f.name] for k in cls.__mro__ if f.name in k.__dict__)
            if not isinstance(slot, types.MemberDescriptorType):
                raise TypeError(f"quick_init: {cls.__name__}.{f.name} is not a slot")
            ns[f"_set{i}"] = slot.__set__
            set_to = f"_set{i}(self, {{}})"
        else:
            set_to = f"_set(self, {f.name!r}, {{}})"
        has_default = f.default is not dataclasses.MISSING
        has_factory = f.default_factory is not dataclasses.MISSING
        if has_default:
            ns[f"_default{i}"] = f.default
        if has_factory:
            ns[f"_factory{i}"] = f.default_factory
        if not f.init:
            if has_factory:
                lines.append(set_to.format(f"_factory{i}()"))
            elif has_default:
                lines.append(set_to.format(f"_default{i}"))
            continue
        param = f.name
        if has_default:
            param = f"{f.name}=_default{i}"
        elif has_factory:
            param = f"{f.name}=_FACTORY"
            lines.append(f"if {f.name} is _FACTORY: {f.name} = _factory{i}()")
        (keyword if f.kw_only else positional).append(param)
        lines.append(set_to.format(f.name))
    if hasattr(cls, "__post_init__"):
        lines.append("self.__post_init__()")
    params = ["self", *positional, *(["*", *keyword] if keyword else [])]
    text = "\n    ".join(lines or ["pass"])
    exec(f"def __init__({', '.join(params)}):\n    {text}\n", ns)
    init: Callable[..., None] = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = {**{f.name: f.type for f in fields if f.init}, "return": None}
    return init


__all__ = ["init_of", "quick_init"]
