"""Spec validation of the scaling sections: scale, max_unavailable, provisioner, sessions."""

from __future__ import annotations

import pytest
import yaml

from controller.spec.load import from_value, load_yaml
from controller.spec.model import ClusterSpec
from controller.spec.scale import budget_of
from wire import codec
from wire.errors import SpecError


def _errors(service: dict[str, object], top: dict[str, object] | None = None) -> str:
    value = {"services": {"voice": {"version": "1", **service}}, **(top or {})}
    with pytest.raises(SpecError) as info:
        from_value(value)
    return str(info.value)


def test_a_scaled_service_counts_up_to_max_and_starts_from_count() -> None:
    """With scale:, count is the scaler's start and the service's bound becomes max."""
    spec = load_yaml(
        """
services:
  media:
    version: "1"
    count: 3
    max_unavailable: 25%
    scale: {min: 2, max: 8, metric: "sessions.voice+sessions.sms", target_per_machine: 40,
            up: 0.8, down: 0.3, cooldown: 5m, standby: 2}
    provisioner: {type: ec2-asg, group: media-asg, region: eu-west-1}
provisioner: {type: command, command: [/usr/local/bin/grow], timeout: 30}
"""
    )
    svc = spec.services["media"]
    assert svc.count == 8 and svc.scale is not None and svc.scale.start == 3
    assert svc.scale.metric == ("sessions.voice", "sessions.sms")
    assert svc.scale.cooldown == 300 and svc.max_unavailable == "25%"
    assert spec.provisioner_of("media") == {"type": "ec2-asg", "group": "media-asg",
                                            "region": "eu-west-1"}  # fmt: skip
    again = codec.decode(ClusterSpec, codec.encode(spec), "spec")  # spec/current.json form
    assert again == spec


def test_scale_without_count_starts_from_min() -> None:
    """count may be left out of a scaled service: the scaler starts at min."""
    spec = from_value(yaml.safe_load(
        "services: {v: {version: '1', scale: {min: 2, max: 5, metric: load.cpu, target_per_machine: 0.6}}}"
    ))  # fmt: skip
    assert spec.services["v"].scale.start == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ({"count": 1, "scale": {"max": 4, "metric": "calls", "target_per_machine": 5}},
         "services.voice.scale.metric: unknown metric 'calls'"),
        ({"count": 1, "scale": {"max": 4, "metric": "sessions.voice"}},
         "services.voice.scale.target_per_machine: missing"),
        ({"count": 1, "scale": {"min": 5, "max": 4, "metric": "load", "target_per_machine": 1}},
         "services.voice.scale.min: min 5 is above max 4"),
        ({"count": 9, "scale": {"max": 4, "metric": "load", "target_per_machine": 1}},
         "services.voice.count: 9 is outside scale min..max"),
        ({"count": 1, "scale": {"max": 4, "metric": "load", "target_per_machine": 1, "up": 0.2,
                                "down": 0.5}},
         "services.voice.scale.down: must be below up"),
        ({"count": 1, "scale": {"max": 4, "metric": "load", "target_per_machine": 1, "cooldwn": 1}},
         "services.voice.scale.cooldwn"),
        ({"count": 1, "max_unavailable": "150%"}, "services.voice.max_unavailable"),
        ({"count": 1, "max_unavailable": -1}, "services.voice.max_unavailable"),
        ({"count": 1, "provisioner": {"type": "lambda"}}, "services.voice.provisioner.type"),
        ({"count": 1, "provisioner": {"type": "command", "command": "grow"}},
         "services.voice.provisioner.command: expected the argv list"),
        ({"count": 1, "provisioner": {"type": "ec2-asg"}}, "services.voice.provisioner.group"),
        ({"count": 1, "sessions": {"config_disruptive": "yes"}},
         "services.voice.sessions.config_disruptive: expected true or false"),
    ],
)  # fmt: skip
def test_invalid_sections_are_reported_with_their_path(
    service: dict[str, object], message: str
) -> None:
    """Each mistake in the new sections names its path and what to write instead."""
    assert message in _errors(service)


def test_cluster_provisioner_is_validated() -> None:
    """A top-level provisioner with an unknown key is an error naming the key."""
    assert "provisioner.groop" in _errors(
        {"count": 1}, {"provisioner": {"type": "ec2-asg", "group": "g", "groop": "x"}}
    )


def test_budget_of_counts_and_percents() -> None:
    """max_unavailable: a count as is; a percent of the machines, at least one."""
    assert budget_of(None, 10) is None
    assert budget_of("2", 10) == 2
    assert budget_of("25%", 10) == 2
    assert budget_of("10%", 3) == 1
