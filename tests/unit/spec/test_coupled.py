"""The `coupled:` section: shape, cross-service rules (each error names its path), dependency
order, and the round trip through `spec show` and the stored document."""

from __future__ import annotations

import pytest

from controller.spec.document import from_json, to_json, to_yaml
from controller.spec.load import load_yaml
from wire.errors import SpecError

SERVICES = """
services:
  media: {version: "2.1", count: 2, rollout: {steps: [{canary: 1, bake: 1m}]}}
  router: {version: "3.0", count: 2, depends_on: [media],
           rollout: {steps: [{canary: 1, bake: 2m}]}}
  db: {version: "1", count: 1}
"""


def _load(coupled: str, services: str = SERVICES) -> object:
    return load_yaml(services + coupled)


def test_members_kept_in_dependency_order_and_round_trip() -> None:
    spec = load_yaml(SERVICES + "coupled: {router-media-3: {services: [router, media]}}\n")
    assert spec.coupled["router-media-3"].services == ("media", "router")
    assert spec.coupled_of("router") == "router-media-3"
    assert spec.coupled_of("db") is None
    assert load_yaml(to_yaml(spec)) == spec
    assert from_json(to_json(spec, applied_at=1.0))[0] == spec


def test_no_section_leaves_the_stored_form_unchanged() -> None:
    spec = load_yaml(SERVICES)
    assert spec.coupled == {}
    assert b"coupled" not in to_json(spec, applied_at=1.0)


@pytest.mark.parametrize(
    ("coupled", "path", "words"),
    [
        ("coupled: [router]", "coupled:", "expected a mapping"),
        ("coupled: {rm: {services: [router]}}", "coupled.rm.services:", "at least two"),
        ("coupled: {rm: {services: [router, medai]}}", "coupled.rm.services:", "'media'"),
        ("coupled: {rm: {services: [router, db]}}", "coupled.rm.services:", "no rollout strategy"),
        ("coupled: {rm: {}}", "coupled.rm.services:", "missing"),
        ("coupled: {rm: {services: [router, media], with: 1}}", "coupled.rm.with:", "unknown key"),
        ("coupled: {Bad!: {services: [router, media]}}", "coupled.Bad!:", "release names"),
        (
            "coupled: {a: {services: [router, media]}, b: {services: [media, router]}}",
            "coupled.b.services:",
            "already in coupled release 'a'",
        ),
    ],
)
def test_errors_name_the_path(coupled: str, path: str, words: str) -> None:
    with pytest.raises(SpecError) as err:
        _load(coupled + "\n")
    text = str(err.value)
    assert path in text and words in text, text


def test_steps_must_match() -> None:
    services = """
services:
  media: {version: "2", count: 2, rollout: {steps: [{shadow: 1}, {canary: 1}]}}
  router: {version: "3", count: 2, rollout: {steps: [{canary: 1}], on_failure: halt, watch: 5m}}
"""
    with pytest.raises(SpecError) as err:
        load_yaml(services + "coupled: {rm: {services: [router, media]}}\n")
    text = str(err.value)
    assert "coupled.rm.services: 'media' has steps ['shadow', 'canary', 'percent']" in text, text
    assert "on_failure revert but 'router' has halt" in text
    assert "rollout.watch is set for one of" in text


def test_top_level_rollout_serves_every_member() -> None:
    services = """
rollout: {steps: [{canary: 1, bake: 1m}]}
services:
  media: {version: "2", count: 2}
  router: {version: "3", count: 2, depends_on: [media]}
"""
    spec = load_yaml(services + "coupled: {rm: {services: [router, media]}}\n")
    assert spec.coupled["rm"].services == ("media", "router")
