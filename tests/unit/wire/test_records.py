"""`@record` behaves as `@dataclass(frozen=True, slots=True)`: the same class written both
ways gives the same equality, hashes, repr, immutability and dataclass helpers."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from wire.records import record


@record
class Point:
    """A record under test."""

    x: float
    y: float = 0.0
    tags: tuple[str, ...] = ()
    note: str = field(default="", compare=False)
    secret: str = field(default="", repr=False)
    extra: dict[str, int] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class PointDC:
    """The same class as a plain frozen dataclass, the reference."""

    x: float
    y: float = 0.0
    tags: tuple[str, ...] = ()
    note: str = field(default="", compare=False)
    secret: str = field(default="", repr=False)
    extra: dict[str, int] = field(default_factory=dict, hash=False)


@record
class Single:
    """One field: equality through a 1-tuple, as dataclasses compares."""

    value: Any


@record
class Empty:
    """No fields."""


@record
class OwnRepr:
    """Methods the class writes are kept."""

    key: str

    def __repr__(self) -> str:
        return "OwnRepr(<hidden>)"


def both(**kw: Any) -> tuple[Point, PointDC]:
    return Point(**kw), PointDC(**kw)


def test_equality_and_hash_as_dataclasses() -> None:
    cases = [
        {"x": 1.0},
        {"x": 1.0, "y": 2.0, "tags": ("a",)},
        {"x": 1.0, "note": "other note"},  # compare=False: still equal
        {"x": 1.0, "secret": "s", "extra": {"a": 1}},
        {"x": 2.0, "tags": ("a", "b")},
    ]
    for a in cases:
        for b in cases:
            ra, da = both(**a)
            rb, db = both(**b)
            assert (ra == rb) == (da == db), (a, b)
            assert (ra != rb) == (da != db), (a, b)
        r, d = both(**a)
        if not a.get("extra"):
            assert hash(r) == hash(d)
    assert Point(1.0) != PointDC(1.0)
    assert Point(1.0).__eq__(PointDC(1.0)) is NotImplemented
    assert len({Point(1.0), Point(1.0, note="n"), Point(2.0)}) == 2


def test_nan_compares_as_dataclasses_do() -> None:
    """Tuples compare items by identity first: the same NaN object is equal to itself."""
    nan = float("nan")
    assert Single(nan) == Single(nan)
    assert Single(nan) != Single(float("nan"))
    assert Point(nan) == Point(nan)


def test_repr_as_dataclasses() -> None:
    r, d = both(x=1.5, y=-2.0, tags=("a",), note="n", secret="hidden", extra={"k": 1})
    assert repr(r) == repr(d).replace("PointDC(", "Point(")
    assert "hidden" not in repr(r)
    assert repr(Empty()) == "Empty()"
    assert repr(OwnRepr("k")) == "OwnRepr(<hidden>)"
    assert OwnRepr("k") == OwnRepr("k")


def test_repr_of_a_value_holding_itself() -> None:
    box: list[Any] = []
    s = Single(box)
    box.append(s)
    assert repr(s) == "Single(value=[...])"


def test_frozen_slotted_and_a_dataclass() -> None:
    p = Point(1.0, tags=("a",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.x  # type: ignore[misc]
    assert not hasattr(p, "__dict__")
    assert dataclasses.is_dataclass(p)
    assert [f.name for f in dataclasses.fields(p)] == [
        "x",
        "y",
        "tags",
        "note",
        "secret",
        "extra",
    ]
    assert dataclasses.replace(p, y=3.0) == Point(1.0, 3.0, ("a",))
    assert dataclasses.asdict(p)["tags"] == ("a",)
    assert Point.__match_args__ == PointDC.__match_args__
    assert pickle.loads(pickle.dumps(p)) == p
    assert Point.__doc__ == "A record under test."


def test_unhashable_field_fails_as_in_dataclasses() -> None:
    with pytest.raises(TypeError):
        hash(Single({"a": 1}))
    with pytest.raises(TypeError):
        hash(PointDC(1.0, tags=[]))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash(Point(1.0, tags=[]))  # type: ignore[arg-type]


def test_init_as_dataclasses_writes_it() -> None:
    """`__init__` is written on the first instantiation with the dataclass's parameters:
    keyword-only fields, `init=False` fields, default factories and `__post_init__`."""
    import inspect

    seen: list[str] = []

    @record
    class Late:
        """Late init under test."""

        a: int
        b: list[int] = field(default_factory=list)
        c: str = field(default="c", init=False)
        d: dict[str, int] = field(default_factory=dict, init=False)
        _: dataclasses.KW_ONLY
        e: int = 5
        f: int = field(default=0, kw_only=True)

        def __post_init__(self) -> None:
            seen.append(f"post {self.a}")

    @dataclass(frozen=True, slots=True)
    class LateDC:
        a: int
        b: list[int] = field(default_factory=list)
        c: str = field(default="c", init=False)
        d: dict[str, int] = field(default_factory=dict, init=False)
        _: dataclasses.KW_ONLY
        e: int = 5
        f: int = field(default=0, kw_only=True)

    first = Late(1)
    assert seen == ["post 1"]
    assert (first.a, first.b, first.c, first.d, first.e, first.f) == (1, [], "c", {}, 5, 0)
    assert Late(1).b is not first.b  # a new list each time
    again = Late(2, [3], e=6, f=7)
    assert (again.a, again.b, again.e, again.f) == (2, [3], 6, 7)
    with pytest.raises(TypeError):
        Late(1, [], 6)  # type: ignore[call-arg]  # e is keyword-only
    with pytest.raises(TypeError):
        Late(1, c="x")  # type: ignore[call-arg]  # c is not a parameter
    with pytest.raises(TypeError):
        Late()  # type: ignore[call-arg]
    assert str(inspect.signature(Late)).replace("Late", "X") == str(
        inspect.signature(LateDC)
    ).replace("LateDC", "X")
    assert Late.__dataclass_params__.frozen  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.e = 1  # type: ignore[misc]


def test_a_subclass_and_the_errors_of_dataclasses() -> None:
    class Sub(Point):
        pass

    s = Sub(1.0, 2.0)  # the parent's __init__, written on this first call
    assert (s.x, s.y) == (1.0, 2.0)
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):

        @record
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]

    @record
    class Child(Point):  # a record of a record: the dataclass way, as before
        z: int = 0

    c = Child(1.0, z=3)
    assert (c.x, c.z) == (1.0, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.z = 1  # type: ignore[misc]
