"""Spec validation: every error class names the path and the fix; valid specs load fully."""

from __future__ import annotations

import pytest

from controller.spec.load import load_yaml, parse_duration
from controller.spec.model import ClusterSpec
from wire.errors import SpecError

GOOD = """
settings:
  heartbeat_timeout: 45s
  desired_lifetime: 1h
  skew_window: 5m
  controller_interval: 10s
services:
  media:
    version: "3.1"
    count: 4
    port: 7000
    sessions: {drain_timeout: 10m, channels: [voice, video]}
  router:
    version: "2.4.1"
    count: 3
    depends_on: [media]
    config: {media: {$instances: media}, codec: opus}
    health: {grace: 30s, quarantine: 15m}
    pools: [general]
  lb:
    kind: loadbalancer
    balances: router
    version: "1.9"
    count: 2
"""


def test_a_valid_spec_loads_with_durations_in_seconds() -> None:
    """A complete spec loads into typed values with every duration converted to seconds."""
    spec = load_yaml(GOOD)
    assert isinstance(spec, ClusterSpec)
    assert spec.settings.heartbeat_timeout == 45.0
    assert spec.settings.desired_lifetime == 3600.0
    router = spec.services["router"]
    assert router.depends_on == ("media",)
    assert router.health.quarantine == 900.0
    assert spec.services["media"].sessions.drain_timeout == 600.0
    assert spec.services["lb"].balances == "router"


def test_rollout_steps_end_at_100_percent_and_the_cluster_default_applies() -> None:
    """A final percent 100 step is added; a top-level rollout is every service's default."""
    spec = load_yaml(
        "rollout: {steps: [{canary: 2, weight: 5, bake: 5m}], gates: {max_error_rate: 0.02}}\n"
        "services:\n  a: {version: '1', count: 3}\n"
        "  b: {version: '1', count: 3, rollout: {steps: [{percent: 100}], on_failure: halt}}\n"
    )
    a, b = spec.rollout_of("a"), spec.rollout_of("b")
    assert a is not None and b is not None
    assert [(s.kind, s.number, s.weight, s.bake) for s in a.steps] == [
        ("canary", 2.0, 5, 300.0),
        ("percent", 100.0, None, 0.0),
    ]
    assert a.gates.max_error_rate == 0.02
    assert [s.kind for s in b.steps] == ["percent"] and b.on_failure == "halt"


def test_a_broken_service_is_not_reported_as_unknown_by_its_dependents() -> None:
    """Only the broken service's own problems are listed, not 'unknown service' elsewhere."""
    text = "services: {a: {version: 2, count: 1}, b: {version: '1', count: 1, depends_on: [a]}}"
    with pytest.raises(SpecError) as info:
        load_yaml(text, source="spec.yaml")
    assert "services.a.version" in str(info.value)
    assert "unknown service" not in str(info.value)


def test_an_empty_file_is_an_empty_spec() -> None:
    """An empty document is a spec with default settings and no services."""
    assert load_yaml("") == ClusterSpec()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # unknown keys, with a suggestion
        ("services: {web: {version: '1', count: 1, cuont: 2}}",
         "services.web.cuont: unknown key (did you mean 'count'?)"),
        ("setings: {}", "setings: unknown key (did you mean 'settings'?)"),
        ("settings: {heartbeat: 10s}", "settings.heartbeat: unknown key"),
        # wrong types
        ("services: {web: {version: 1.0, count: 1}}",
         'services.web.version: expected a string, got number 1.0; quote it: "1.0"'),
        ("services: {web: {version: '1', count: two}}",
         "services.web.count: expected a whole number of machines, got string 'two'"),
        ("services: {web: {version: '1', count: 1, depends_on: 5}}",
         "services.web.depends_on: expected a list of names"),
        ("services: {web: {version: '1', count: 1, config: [1]}}", "services.web.config: expected a mapping"),
        ("services: {web: {version: '1', count: 1, port: 70000}}", "services.web.port: expected a port number"),
        ("services: [web]", "services: expected a mapping of service name to service"),
        ("services: {web: {version: '1', count: 1, config: {1: x}}}", "services.web.config.1: config keys must be strings"),
        # missing
        ("services: {web: {count: 1}}", "services.web.version: missing"),
        ("services: {web: {version: '1'}}", "services.web.count: missing"),
        # unknown targets
        ("services: {web: {version: '1', count: 1, depends_on: [dbb]}, db: {version: '1', count: 1}}",
         "services.web.depends_on: unknown service 'dbb' (did you mean 'db'?)"),
        ("services: {lb: {kind: loadbalancer, balances: webb, version: '1', count: 1}, web: {version: '1', count: 1}}",
         "services.lb.balances: unknown service 'webb' (did you mean 'web'?)"),
        ("services: {lb: {kind: loadbalancer, version: '1', count: 1}}", "services.lb.balances: a loadbalancer needs"),
        ("services: {web: {balances: x, version: '1', count: 1}}", "only a service with 'kind: loadbalancer'"),
        ("services: {web: {version: '1', count: 1, config: {m: {$instances: nope}}}}",
         "services.web.config: $instances names unknown service 'nope'"),
        # cycles
        ("services: {router: {version: '1', count: 1, depends_on: [media]}, media: {version: '1', count: 1, depends_on: [router]}}",
         "services.media.depends_on: cycle media -> router -> media"),
        ("services: {a: {version: '1', count: 1, depends_on: [b]}, b: {version: '1', count: 1, depends_on: [c]}, c: {version: '1', count: 1, depends_on: [a]}}",
         "cycle a -> b -> c -> a"),
        ("services: {a: {version: '1', count: 1, depends_on: [a]}}", "cycle a -> a"),
        # impossible counts
        ("services: {web: {version: '1', count: -1}}", "services.web.count: impossible count -1"),
        ("services: {web: {version: '1', count: 0}, lb: {kind: loadbalancer, balances: web, version: '1', count: 2}}",
         "services.lb.count: impossible: 2 load balancers for 'web', which has count 0"),
        ("services: {web: {version: '1', count: 2, overrides: [{id: 2, select: count=3, version: '2'}]}}",
         "impossible selection 'count=3': web has only 2 machines"),
        ("settings: {heartbeat_timeout: 10s, controller_interval: 10s}",
         "settings.heartbeat_timeout: 10s is under two controller intervals"),
        # bad durations
        ("settings: {heartbeat_timeout: 10 minutes}",
         "settings.heartbeat_timeout: bad duration '10 minutes': use a number of seconds or 10s, 5m, 1h, 1d"),
        ("services: {web: {version: '1', count: 1, sessions: {drain_timeout: -5}}}", "services.web.sessions.drain_timeout: bad duration -5"),
        # selections
        ("services: {web: {version: '1', count: 2, overrides: [{id: 2, select: 'half', version: '2'}]}}",
         "services.web.overrides[0].select: 'half' is not a selection"),
        # names
        ("services: {Web_UI: {version: '1', count: 1}}", "services.Web_UI: service names use"),
        ("services: {web: {version: '1', count: 1, pools: [db]}, db: {version: '1', count: 1}}",
         "pool 'db' has the name of a service"),
        # rollouts
        ("services: {web: {version: '1', count: 2, rollout: {steps: [{canary: 1, percent: 5}]}}}",
         "services.web.rollout.steps[0]: give exactly one of shadow: N, canary: N, percent: P, select: EXPR"),
        ("services: {web: {version: '1', count: 2, rollout: {steps: [{percent: 150}]}}}",
         "services.web.rollout.steps[0].percent: expected a number in (0, 100]"),
        ("services: {web: {version: '1', count: 2, rollout: {steps: [{shadow: 1, weight: 5}]}}}",
         "services.web.rollout.steps[0].weight: weight applies to canary steps only"),
        ("services: {web: {version: '1', count: 2, rollout: {steps: [{select: 'id=a'}]}}}",
         "a step needs a sized selection"),
        ("services: {web: {version: '1', count: 2, rollout: {on_failure: panic}}}",
         "services.web.rollout.on_failure: expected 'revert' or 'halt'"),
        ("rollout: {gates: {min_requests: 0}}", "rollout.gates.min_requests: expected a whole number >= 1"),
        ("rollout: {gates: {max_error_rat: 0.1}}", "rollout.gates.max_error_rat: unknown key (did you mean 'max_error_rate'?)"),
        ("rollout: {watch: soon}", "rollout.watch: bad duration 'soon'"),
        # YAML itself
        ("services: {web: [", "not valid YAML"),
    ],
)  # fmt: skip
def test_every_error_names_its_path_and_fix(text: str, message: str) -> None:
    """Each class of bad input is refused with a message naming the path and what to do."""
    with pytest.raises(SpecError) as info:
        load_yaml(text, source="spec.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("spec.yaml")


def test_all_problems_are_reported_together() -> None:
    """Several problems are listed in one error, one line each."""
    text = "services: {web: {version: 2, count: -1, colour: red}}"
    with pytest.raises(SpecError) as info:
        load_yaml(text, source="spec.yaml")
    msg = str(info.value)
    assert msg.startswith("spec.yaml: 3 problems:")
    for part in ("services.web.version", "services.web.count", "services.web.colour"):
        assert part in msg


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("5m", 300.0), ("1h", 3600.0), ("1d", 86400.0), ("250ms", 0.25), (30, 30.0),
     ("1.5h", 5400.0), ("10 minutes", None), ("-1s", None), (True, None), ("", None)],
)  # fmt: skip
def test_durations(text: object, seconds: float | None) -> None:
    """Durations accept s/m/h/d/ms suffixes or plain seconds and nothing else."""
    assert parse_duration(text) == seconds


def test_rollout_controls_are_recorded_for_the_current_target_version() -> None:
    """add_control stamps the next revision and the service's version; bad uses are refused."""
    from dataclasses import replace

    from controller.spec.rollout import add_control

    spec = replace(
        load_yaml("services: {web: {version: '2', count: 2, rollout: {steps: [{canary: 1}]}}, "
                  "db: {version: '1', count: 1}}"),
        revision=7,
    )  # fmt: skip
    ctl = add_control(spec, "web", "pause").services["web"].control
    assert ctl is not None and (ctl.id, ctl.action, ctl.version) == (8, "pause", "2")
    with pytest.raises(SpecError, match="db has no rollout strategy"):
        add_control(spec, "db", "pause")
    with pytest.raises(SpecError, match="unknown service 'nope'"):
        add_control(spec, "nope", "abort")
    with pytest.raises(SpecError, match="unknown action 'explode'"):
        add_control(spec, "web", "explode")
    with pytest.raises(SpecError, match=r"services\.web\.control\.action: expected one of pause"):
        load_yaml(
            "services: {web: {version: '1', count: 1, control: {id: 2, action: stop, version: '1'}}}"
        )
