"""quick_init: the same values as a frozen dataclass's own __init__, still frozen, and a
clear refusal for the classes it does not handle."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import FrozenInstanceError, InitVar, dataclass, field

import pytest

from controller.planner.event import Event
from controller.planner.model import MachineMemory, MachineStatus, PutDesired, Skip
from wire.documents import Desired, Drain, Peer, Peers
from wire.frozen import quick_init


def twins() -> tuple[type, type]:
    """The same class twice: with the dataclass's __init__ and with quick_init's."""

    def make() -> type:
        @dataclass(frozen=True, slots=True)
        class Value:
            a: int
            b: str = "b"
            c: dict[str, int] = field(default_factory=dict)
            d: tuple[int, ...] = ()

        return Value

    return make(), quick_init(make())


def test_the_same_values_as_the_dataclass_init() -> None:
    plain, quick = twins()
    calls = [((1,), {}), ((1, "x"), {}), ((1,), {"c": {"k": 2}}), ((), {"a": 3, "d": (4,)})]
    for args, kwargs in calls:
        want, got = plain(*args, **kwargs), quick(*args, **kwargs)
        assert dataclasses.astuple(got) == dataclasses.astuple(want)
    assert quick(1).c is not quick(1).c  # a fresh default from the factory each time
    want, got = inspect.signature(plain), inspect.signature(quick)
    assert got.return_annotation == want.return_annotation
    assert [(p.name, p.kind, p.annotation) for p in got.parameters.values()] == [
        (p.name, p.kind, p.annotation) for p in want.parameters.values()
    ]
    assert [repr(p.default) for p in got.parameters.values()] == [
        repr(p.default) for p in want.parameters.values()
    ]


def test_wrong_calls_fail_as_they_do_for_the_dataclass() -> None:
    plain, quick = twins()
    for args, kwargs in [((), {}), ((1, "x", {}, (), 5), {}), ((1,), {"zz": 1})]:
        with pytest.raises(TypeError):
            plain(*args, **kwargs)
        with pytest.raises(TypeError):
            quick(*args, **kwargs)


def test_still_frozen() -> None:
    _, quick = twins()
    v = quick(1)
    with pytest.raises(FrozenInstanceError):
        v.a = 2
    assert v == quick(1) and v != quick(2)
    assert hash(quick(1, c=None)) == hash(quick(1, c=None))  # type: ignore[arg-type]


def test_the_planner_values_built_through_it_equal_their_fields() -> None:
    peer = Peer("m1", "10.0.0.1", 80, 50, "canary")
    doc = Desired("m1", 3, 1, 10.0, 20.0, 7, "active", "web", "1", {"k": [1]},
                  Peers("web", (peer,)), Drain("x", 1.0, 2.0))  # fmt: skip
    values = [
        peer,
        doc,
        MachineMemory(4, "d", "v", 1.0, "web", "active", "1", 2.0, None, False, None, "c", None),
        PutDesired("m1", doc, 2, "new"),  # type: ignore[arg-type]
        Skip("m1", "unchanged"),  # type: ignore[arg-type]
        MachineStatus("web", "active", "1", "1", "healthy", 1.5, False, 4, 4),
        Event("machine.lost", "why", "m1", "web", {"a": 1}),
    ]
    for v in values:
        assert type(v).__init__.__module__ == type(v).__module__
        names = [f.name for f in dataclasses.fields(v)]
        again = type(v)(**{n: getattr(v, n) for n in names})
        assert again == v and [getattr(again, n) for n in names] == [getattr(v, n) for n in names]
    assert MachineMemory() == MachineMemory(0, "", "", 0.0, None, "standby")
    assert Event("machine.lost", "why").data == {}


def test_refuses_what_it_does_not_handle() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class KwOnly:
        a: int = field(kw_only=True)

    @dataclass(frozen=True, slots=True)
    class HasInitVar:
        a: int
        b: InitVar[int]

    @dataclass(frozen=True, slots=True)
    class NotInInit:
        a: int = field(init=False, default=1)

    for cls in (NoSlots, NotFrozen, PostInit, KwOnly, HasInitVar, NotInInit):
        with pytest.raises(TypeError, match="quick_init"):
            quick_init(cls)
