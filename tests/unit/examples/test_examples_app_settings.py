"""The example app's settings and failure schedule, without starting a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from examples.app.server import (
    FailureSchedule,
    Settings,
    parse_args,
    read_desired,
    resolve_settings,
)


def settings(*argv: str, **env: str) -> Settings:
    return resolve_settings(parse_args(list(argv)), env)


def test_defaults_bind_localhost_in_active_mode_without_failures() -> None:
    """With nothing configured: 127.0.0.1, active mode, no failures, no latency, no sink."""
    s = settings("--version", "1")
    assert (s.host, s.mode, s.fail_rate, s.latency_ms, s.sink) == (
        "127.0.0.1",
        "active",
        0,
        0,
        None,
    )


def test_options_win_over_bosun_config_and_environment() -> None:
    """Command-line options override BOSUN_CONFIG keys and BOSUN_* variables."""
    env = {
        "BOSUN_CONFIG": json.dumps({"fail_rate": 0.5, "latency_ms": 9}),
        "BOSUN_MODE": "canary",
        "BOSUN_VERSION": "7",
        "BOSUN_MACHINE": "m-env",
    }
    from_env = settings(**env)
    assert (from_env.fail_rate, from_env.latency_ms, from_env.mode) == (0.5, 9.0, "canary")
    assert (from_env.version, from_env.machine) == ("7", "m-env")
    s = settings(
        "--fail-rate",
        "0.1",
        "--latency-ms",
        "1",
        "--mode",
        "active",
        "--version",
        "8",
        "--machine",
        "m-opt",
        **env,
    )
    assert (s.fail_rate, s.latency_ms, s.mode, s.version, s.machine) == (
        0.1,
        1.0,
        "active",
        "8",
        "m-opt",
    )


def test_fail_rate_by_version_picks_the_running_version() -> None:
    """fail_rate as an object applies the entry of the running version, else the '*' entry."""
    env = {"BOSUN_CONFIG": json.dumps({"fail_rate": {"2.0-bad": 0.4, "*": 0.01}})}
    assert settings("--version", "2.0-bad", **env).fail_rate == 0.4
    assert settings("--version", "1.0", **env).fail_rate == 0.01


def test_shadow_mode_never_uses_the_production_sink(tmp_path: Path) -> None:
    """In shadow mode the sink is shadow_sink or none; other modes use sink."""
    both = {"BOSUN_CONFIG": json.dumps({"sink": "/prod", "shadow_sink": str(tmp_path / "t")})}
    assert settings("--mode", "shadow", **both).sink == tmp_path / "t"
    assert settings("--mode", "canary", **both).sink == Path("/prod")
    prod_only = {"BOSUN_CONFIG": json.dumps({"sink": "/prod"})}
    assert settings("--mode", "shadow", **prod_only).sink is None
    assert settings("--mode", "shadow", "--sink", "/prod").sink is None


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ((), {"BOSUN_CONFIG": "{nope"}, "BOSUN_CONFIG is not valid JSON"),
        ((), {"BOSUN_CONFIG": "[1]"}, "BOSUN_CONFIG must be a JSON object"),
        ((), {"BOSUN_MODE": "primary"}, "mode 'primary' is not one of active"),
        (("--fail-rate", "1.5"), {}, "fail rate 1.5 must be between 0 and 1"),
        ((), {"BOSUN_CONFIG": '{"fail_rate": "high"}'}, "fail_rate 'high' must be a number"),
        ((), {"BOSUN_CONFIG": '{"latency_ms": -1}'}, "latency_ms -1 must be a number >= 0"),
        ((), {"BOSUN_CONFIG": '{"latency_ms": true}'}, "latency_ms True must be a number"),
        ((), {"BOSUN_CONFIG": '{"sink": 5}'}, "sink 5 must be a file path"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(
    argv: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    """Invalid config, mode, rate or latency raise ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        settings(*argv, **env)


@pytest.mark.parametrize("rate", [0.0, 0.02, 0.1, 0.25, 1 / 3, 0.5, 1.0])
def test_failure_schedule_fails_exactly_the_share_in_every_window(rate: float) -> None:
    """Any window of k calls holds k * rate failures, give or take one."""
    schedule = FailureSchedule(rate)
    fails = [schedule.next_fails() for _ in range(1000)]
    assert abs(sum(fails) - 1000 * rate) <= 1
    for start in range(0, 900, 37):
        assert abs(sum(fails[start : start + 100]) - 100 * rate) <= 1


def test_the_desired_file_wins_over_the_environment_but_not_over_options() -> None:
    """Mode and config from the desired file replace BOSUN_MODE/BOSUN_CONFIG; --mode still wins."""
    env = {"BOSUN_MODE": "active", "BOSUN_CONFIG": json.dumps({"fail_rate": 0.5, "sink": "/p"})}
    desired = {"mode": "shadow", "config": {"shadow_sink": "/t"}, "version": "ignored"}
    s = resolve_settings(parse_args(["--version", "2"]), env, desired)
    assert (s.mode, s.fail_rate, s.sink, s.version) == ("shadow", 0.0, Path("/t"), "2")
    assert resolve_settings(parse_args(["--mode", "canary"]), env, desired).mode == "canary"
    with pytest.raises(ValueError, match="desired file's 'config' must be a JSON object"):
        resolve_settings(parse_args([]), env, {"mode": "active", "config": [1]})


def test_read_desired_tells_missing_from_broken(tmp_path: Path) -> None:
    """A missing desired file is None (not yet written); a broken one is a clear error."""
    path = tmp_path / "desired.json"
    assert read_desired(path) is None
    path.write_text("{half")
    with pytest.raises(ValueError, match=r"desired file .* is unreadable"):
        read_desired(path)
    path.write_text('{"mode": "canary"}')
    assert read_desired(path) == {"mode": "canary"}
