"""Spec error messages stay readable whatever the input."""

from __future__ import annotations

import pytest

from controller.spec.load import load_yaml
from wire.errors import SpecError


def test_a_huge_hostile_value_does_not_make_a_huge_message() -> None:
    """A 10 KB version string is refused with a message of bounded length."""
    with pytest.raises(SpecError) as info:
        load_yaml('services:\n  web: {version: "' + "é" * 10_000 + '", count: 1}\n')
    assert "services.web.version" in str(info.value) and len(str(info.value)) < 1000
