"""wire.codec's compiled decoders: the same answers and errors as reading the annotations
each time, for nested, optional, literal and time fields, from many threads at once."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

import pytest

from wire import codec
from wire.codec import Timestamp
from wire.errors import InvalidDocument


@dataclass(frozen=True, slots=True)
class Leaf:
    name: str
    at: Timestamp | None = None


@dataclass(frozen=True, slots=True)
class Node:
    kind: Literal["a", "b"]
    count: int
    leaves: tuple[Leaf, ...] = ()
    by_name: dict[str, Leaf] = field(default_factory=dict)
    parent: Node | None = None  # refers to itself: compiled at its first use


GOOD = {
    "kind": "a",
    "count": 2,
    "leaves": [{"name": "x", "at": "2026-12-07T10:00:00Z"}],
    "by_name": {"y": {"name": "y"}},
    "parent": {"kind": "b", "count": 1},
}


def test_nested_optional_and_self_referring_fields_decode() -> None:
    node = codec.decode(Node, GOOD, "doc")
    assert node.leaves == (Leaf("x", 1796637600.0),)
    assert node.by_name == {"y": Leaf("y")}
    assert node.parent == Node("b", 1)
    assert codec.encode(node)["leaves"][0]["at"].startswith("2026-12-07T10:00:00")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({**GOOD, "surprise": 1}, "doc: unknown field 'surprise' (allowed: by_name, count,"),
        ({"kind": "a"}, "doc: missing required field 'count'"),
        ({**GOOD, "kind": "c"}, "doc.kind: expected one of 'a', 'b', got 'c'"),
        ({**GOOD, "count": True}, "doc.count: expected integer, got boolean"),
        ({**GOOD, "leaves": [{"name": 3}]}, "doc.leaves[0].name: expected string, got integer"),
        ({**GOOD, "by_name": {"y": []}}, "doc.by_name.y: expected object, got array"),
        ({**GOOD, "parent": {"kind": "b", "count": "1"}}, "doc.parent.count: expected integer"),
    ],
)
def test_errors_name_the_path_and_what_was_expected(bad: object, message: str) -> None:
    with pytest.raises(InvalidDocument) as err:
        codec.decode(Node, bad, "doc")
    assert message in str(err.value)


def test_first_decodes_from_many_threads_see_every_field() -> None:
    """A type's decoder is compiled on first use; threads racing to that first use must all
    get whole objects (the intake decodes reports on a thread pool)."""

    @dataclass(frozen=True, slots=True)
    class Fresh:  # a type no decoder has been compiled for yet
        a: int
        b: str = "-"
        c: tuple[int, ...] = ()

    start = threading.Barrier(8)
    got: list[object] = []

    def work() -> None:
        start.wait()
        got.extend(codec.decode(Fresh, {"a": i, "b": "x", "c": [i]}, "f") for i in range(200))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(got) == 1600
    assert all(isinstance(f, Fresh) and f.b == "x" and f.c == (f.a,) for f in got)
