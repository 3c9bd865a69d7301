"""Jinja2 file templates and check-then-switch-then-reload, with real files and real hooks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import ConfigError, FileSpec, parse_config
from agent.drivers import ApplyError, Target
from agent.staging import staged_path
from agent.templates import render_jinja
from tests.unit.agent.kit import Machine, desired, make_agent, peers, publish, report
from wire.store import DirectoryStore

POOL = """\
frontend fe
    bind 127.0.0.1:{{ port }}
backend be
{% for b in peers.backends %}
    server {{ b.machine }} {{ b.address }}:{{ b.port }} weight {{ b.weight }}
{% endfor %}
{% for m in peers.mirror %}
    # mirror {{ m.machine }}
{% endfor %}
    timeout server {{ config.timeout_s | default(30) }}s
"""

# A checker that refuses any line with the word "bogus", printing why like a balancer does.
CHECKER = (
    "import sys; t = open(sys.argv[1]).read(); bad = [l for l in t.splitlines() if 'bogus' in l]; "
    "print('[ALERT] parsing: unknown keyword', bad) if bad else None; sys.exit(1 if bad else 0)"
)


def _target(doc_kw: dict[str, object] | None = None) -> Target:
    kw: dict[str, object] = {
        "config": {"timeout_s": 5},
        "peers": peers(("web-1", "10.0.0.1", 8080, 90), ("web-2", "10.0.0.2", 8080, 10)),
        **(doc_kw or {}),
    }
    doc = desired(machine="lb-1", service="lb", **kw)
    return Target("lb-1", "lb", doc.mode, doc.version, doc.config, doc, 9000, "/tmp/s")


def _jinja(text: str, path: str = "/etc/lb/lb.cfg") -> FileSpec:
    return FileSpec(path=path, format="jinja", template=text)


def test_a_jinja_template_loops_over_the_weighted_backends() -> None:
    """Every backend becomes a server line with its address, port and weight."""
    out = render_jinja(_jinja(POOL), _target()).decode()
    assert (
        "    server web-1 10.0.0.1:8080 weight 90\n    server web-2 10.0.0.2:8080 weight 10\n"
        in out
    )
    assert "bind 127.0.0.1:9000" in out and "timeout server 5s" in out
    assert "{%" not in out and "mirror" not in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\nb {{ config.nope }}\n", "line 2 (b {{ config.nope }}): undefined value: 'dict object' has no attribute 'nope'"),
        ("x\n\n{% for b in peers.backends %}", "line 3 ({% for b in peers.backends %}): syntax error: Unexpected end of template"),
        ("{{ backends }}", "line 1 ({{ backends }}): variable 'backends' is undefined"),
        ("{{ port.__class__ }}", "line 1 ({{ port.__class__ }}): refused by the sandbox"),
        ("{{ peers.backends.append(1) }}", "refused by the sandbox: access to attribute 'append'"),
    ],
)  # fmt: skip
def test_template_errors_name_the_file_the_line_and_the_variable(text: str, expected: str) -> None:
    """A missing value, a syntax error or a sandbox escape names file, template line and variable."""
    with pytest.raises(ApplyError) as err:
        render_jinja(_jinja(text), _target())
    assert str(err.value).startswith("/etc/lb/lb.cfg: template /etc/lb/lb.cfg (inline template) ")
    assert expected in str(err.value)


def test_a_template_file_error_names_the_template_file(tmp_path: Path) -> None:
    """With template_file, errors name that file and its line."""
    tpl = tmp_path / "lb.cfg.j2"
    tpl.write_text("global\n  maxconn {{ config.maxconn }}\n")
    spec = FileSpec(path="/etc/lb/lb.cfg", format="jinja", template_file=str(tpl))
    with pytest.raises(ApplyError, match=rf"template {tpl} line 2 \(maxconn"):
        render_jinja(spec, _target())


def test_jinja_is_not_imported_by_the_agent_until_a_template_renders() -> None:
    """The steady cycle's modules do not import jinja2 (it costs CPU on every cron run)."""
    code = (
        "import sys, agent.cycle, agent.cli, agent.staging, agent.templates; "
        "print('jinja2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_config_needs_a_template_for_jinja_and_knows_the_file_placeholder(tmp_path: Path) -> None:
    """format: jinja without a template, or a check with an unknown placeholder, is refused."""
    base = {"machine": "lb-1", "store": f"file://{tmp_path}", "key_file": "/k"}
    with pytest.raises(ConfigError, match=r"files\[0\]: format jinja needs exactly one of"):
        parse_config({**base, "services": {"lb": {"files": [{"path": "/x", "format": "jinja"}]}}})
    bad = {"path": "/x", "format": "jinja", "template": "x", "check": ["haproxy", "-f", "{fil}"]}
    with pytest.raises(ConfigError, match=r"files\[0\].check: unknown placeholder 'fil'"):
        parse_config({**base, "services": {"lb": {"files": [bad]}}})
    good = {**bad, "check": ["haproxy", "-c", "-f", "{file}"]}
    cfg = parse_config({**base, "services": {"lb": {"files": [good]}}})
    assert cfg.services["lb"].files[0].check == ("haproxy", "-c", "-f", "{file}")


def _lb_machine(tmp_path: Path, bucket: DirectoryStore) -> tuple[Machine, Path, Path]:
    out, log = tmp_path / "out", tmp_path / "hooks.log"
    services = {
        "lb": {
            "port": 9000,
            "files": [
                {
                    "path": str(out / "lb.cfg"),
                    "format": "jinja",
                    "template": POOL + "{{ config.extra | default('') }}\n",
                    "check": [sys.executable, "-c", CHECKER, "{file}"],
                }
            ],
            "commands": {"reload": f"echo reload $BOSUN_GENERATION >> {log}", "timeout": 10},
        }
    }
    m = Machine(tmp_path / "m", bucket.url, name="lb-1", services=services).write()
    return m, out / "lb.cfg", log


def _doc(generation: int, extra: str = "", *backends: tuple[str, str, int, int]) -> object:
    return desired(
        machine="lb-1",
        service="lb",
        generation=generation,
        config={"timeout_s": 5, "extra": extra},
        peers=peers(*(backends or (("web-1", "10.0.0.1", 8080, 100),))),
    )


def test_a_refused_config_changes_nothing_is_reported_and_the_next_valid_document_applies(
    tmp_path: Path, bucket: DirectoryStore
) -> None:
    """The check refuses the staged file: live file, hooks untouched; output reported; next applies."""
    m, live, log = _lb_machine(tmp_path, bucket)
    agent = make_agent(m)
    publish(bucket, _doc(1))
    assert agent.cycle().ok
    publish(bucket, _doc(2, "", ("web-1", "10.0.0.1", 8080, 100), ("web-2", "10.0.0.2", 80, 50)))
    assert agent.cycle().ok
    good = live.read_bytes()
    assert b"server web-2 10.0.0.2:80 weight 50" in good
    assert log.read_text().splitlines() == ["reload 2"]  # the first apply started nothing

    publish(bucket, _doc(3, "bogus directive", ("web-3", "10.0.0.3", 80, 100)))
    assert not agent.cycle().ok
    assert live.read_bytes() == good
    assert not staged_path(live).exists()
    assert log.read_text().splitlines() == ["reload 2"]  # no reload, not even a rollback one
    snap = report(bucket, "lb-1")
    assert snap.applied.result == "failed" and snap.applied.generation == 2
    error = snap.applied.error or ""
    assert error.startswith(
        f"{live}: check exited with 1; output: [ALERT] parsing: unknown keyword"
    )
    assert "bogus directive" in error and "left as they were" in error

    publish(bucket, _doc(4, "", ("web-3", "10.0.0.3", 80, 100)))
    assert agent.cycle().ok
    assert b"server web-3 10.0.0.3:80 weight 100" in live.read_bytes()
    assert log.read_text().splitlines() == ["reload 2", "reload 4"]
    assert report(bucket, "lb-1").applied.result == "ok"


def test_a_template_error_changes_nothing_and_is_reported(
    tmp_path: Path, bucket: DirectoryStore
) -> None:
    """A desired value the template needs and lacks is reported with file, line and name."""
    m, live, log = _lb_machine(tmp_path, bucket)
    m.services["lb"]["files"][0]["template"] = POOL + "maxconn {{ config.maxconn }}\n"
    m.write()
    agent = make_agent(m)
    publish(bucket, desired(machine="lb-1", service="lb", generation=1, config={"maxconn": 9}))
    assert agent.cycle().ok
    good = live.read_bytes()
    publish(bucket, desired(machine="lb-1", service="lb", generation=2, config={"maxconn": 7}))
    assert agent.cycle().ok
    assert live.read_bytes() != good
    good = live.read_bytes()
    publish(bucket, desired(machine="lb-1", service="lb", generation=3, config={"max": 5}))
    assert not agent.cycle().ok
    error = report(bucket, "lb-1").applied.error or ""
    assert error == (
        f"{live}: template {live} (inline template) line 11 (maxconn {{{{ config.maxconn }}}}): "
        "undefined value: 'dict object' has no attribute 'maxconn'"
    )
    assert live.read_bytes() == good
    assert log.read_text().splitlines() == ["reload 2"]


def test_an_unchanged_file_is_not_checked_again(tmp_path: Path, bucket: DirectoryStore) -> None:
    """A document that renders the same bytes runs no check and no reload."""
    m, live, log = _lb_machine(tmp_path, bucket)
    calls = tmp_path / "checks.log"
    cfg = m.settings()
    cfg["services"]["lb"]["files"][0]["check"] = f'echo "$BOSUN_FILE" >> {calls}'
    m.services = cfg["services"]
    m.write()
    agent = make_agent(m)
    publish(bucket, _doc(1))
    assert agent.cycle().ok
    publish(bucket, _doc(2))  # same peers and config: same bytes
    assert agent.cycle().ok
    assert calls.read_text().splitlines() == [str(staged_path(live))]
    assert not log.exists()


@pytest.mark.parametrize(
    ("peer", "says"),
    [
        (("web-1", "10.0.0.1:80\n    server evil 6.6.6.6", 80, 1), "is not an IP address or host name"),
        (("web-1", "10.0.0.1 backup", 80, 1), "is not an IP address or host name"),
        (("web-1", "10.0.0.1", 80, -5), "weight -5 is not a non-negative integer"),
    ],
)  # fmt: skip
def test_a_hostile_peer_is_never_rendered(peer: tuple[str, str, int, int], says: str) -> None:
    """A backend's self-reported address cannot write lines into its balancer's config."""
    target = _target({"peers": peers(peer)})
    with pytest.raises(ApplyError) as err:
        render_jinja(_jinja(POOL), target)
    assert str(err.value).startswith("/etc/lb/lb.cfg: peers.backends[0] ('web-1'): ")
    assert says in str(err.value)


def test_host_names_and_ipv6_addresses_are_fine() -> None:
    """Host names and IPv6 literals render as given."""
    target = _target(
        {"peers": peers(("web-1", "web-1.internal", 80, 1), ("web-2", "fd00::2", 80, 1))}
    )
    out = render_jinja(_jinja(POOL), target).decode()
    assert "server web-1 web-1.internal:80 weight 1" in out and "server web-2 fd00::2:80" in out


def test_check_compiles_every_jinja_template(
    tmp_path: Path, bucket: DirectoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bosun-agent check` compiles each Jinja2 template: a good one passes, a syntax error
    fails naming the live file, the template and its line, before any document uses it."""
    from agent.check import run_check

    m, live, _ = _lb_machine(tmp_path, bucket)
    assert run_check(make_agent(m).cfg, make_agent(m)) == 0
    assert f"services.lb: template for {live} compiles" in capsys.readouterr().out
    m.services["lb"]["files"][0]["template"] = "global\n{% for b in %}\n{% endfor %}\n"
    m.write()
    agent = make_agent(m)
    code = run_check(agent.cfg, agent)
    out = capsys.readouterr().out
    assert code != 0, out
    assert f"FAIL  services.lb: {live}: template {live} (inline template) line 2" in out, out
    assert "syntax error" in out
