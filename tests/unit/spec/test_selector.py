"""Selection expressions of `bosun update --select`."""

from __future__ import annotations

import pytest

from controller.spec.selector import parse_selector
from wire.errors import SpecError


@pytest.mark.parametrize(
    ("expr", "total", "size", "text"),
    [
        ("count=3", 10, 3, "count=3"),
        ("count=30", 10, 10, "count=30"),
        ("percent=25", 10, 3, "percent=25"),
        ("percent=1", 10, 1, "percent=1"),
        ("percent=100", 7, 7, "percent=100"),
        ("max(count=2,percent=50)", 10, 5, "max(count=2,percent=50)"),
        ("max(count=2, percent=10)", 10, 2, "max(count=2,percent=10)"),
        ("min(count=2,percent=50)", 10, 2, "min(count=2,percent=50)"),
    ],
)
def test_sized_selections(expr: str, total: int, size: int, text: str) -> None:
    """count/percent/max/min resolve to a whole number of machines (percent rounds up, >= 1)."""
    sel = parse_selector(expr)
    assert sel.sized
    assert sel.size(total) == size
    assert str(sel) == text


def test_id_and_version_selections() -> None:
    """id= lists machines (deduplicated, sorted); version= names a version."""
    assert parse_selector("id=web-2,web-1,web-2").ids == ("web-1", "web-2")
    assert parse_selector("version=2.4.1").version == "2.4.1"
    assert not parse_selector("version=2").sized


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("half", "is not a selection"),
        ("count=0", "count must be a whole number >= 1"),
        ("count=x", "count must be a whole number >= 1"),
        ("percent=0", "percent must be a number in (0, 100]"),
        ("percent=150", "percent must be a number in (0, 100]"),
        ("id=Web 1", "is not a machine id"),
        ("version=", "is not a selection"),
        ("max(count=2)", "needs at least two terms"),
        ("max(id=a,count=2)", "only count= and percent= go inside"),
        ("colour=red", "unknown selection 'colour'"),
    ],
)
def test_bad_selections(expr: str, message: str) -> None:
    """A malformed expression is refused with what is wrong and the accepted forms."""
    with pytest.raises(SpecError, match="--select") as info:
        parse_selector(expr, where="--select")
    assert message in str(info.value)
