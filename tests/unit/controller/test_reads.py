"""Operator reads: machines in every output form, firewall.xsl with lxml, history, events."""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from lxml import etree

from controller.cli import cli
from controller.shell.cycle import Controller
from controller.shell.lease import LeaseSettings
from tests.unit.controller.conftest import MASTER, agents
from tests.unit.controller.stores import Recording

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def cluster(spec_store: Recording) -> Recording:
    """Four converged machines, one of them unhealthy, one lost; the last cycle is now
    (the controller is running: readers judge ages against the reader's clock)."""
    fleet = agents(spec_store, n=5)
    wall = [time.time() - 32]
    ctl = Controller(
        spec_store, MASTER, holder="ctl", lease=LeaseSettings(30, 20), wall=lambda: wall[0]
    )
    for _ in range(4):
        ctl.cycle()
        for a in fleet:
            a.pull()
            a.report(now=wall[0])
    ctl.cycle()
    wall[0] += 31
    for a in fleet[:4]:
        a.report(now=wall[0])
    fleet[2].healthy = False
    fleet[2].report(now=wall[0])
    ctl.cycle()
    return spec_store


def bosun(store: Recording, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--store", store.url], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_machines_json_csv_and_filters_agree(cluster: Recording) -> None:
    """-o json and -o csv carry the same rows; --service/--status/--mode filter them."""
    rows = orjson.loads(bosun(cluster, "machines", "-o", "json"))
    assert [r["machine"] for r in rows] == [f"web-{i}" for i in range(5)]
    statuses = {r["machine"]: r["status"] for r in rows}
    assert statuses["web-4"] == "lost" and statuses["web-0"] == "running"
    parsed = list(csv.DictReader(io.StringIO(bosun(cluster, "machines", "-o", "csv"))))
    assert [r["machine"] for r in parsed] == [r["machine"] for r in rows]
    web = orjson.loads(bosun(cluster, "machines", "--service", "web", "-o", "json"))
    assert web and all(r["service"] == "web" for r in web)
    lost = orjson.loads(bosun(cluster, "machines", "--status", "lost", "-o", "json"))
    assert [r["machine"] for r in lost] == ["web-4"]
    standby = orjson.loads(bosun(cluster, "machines", "--mode", "standby", "-o", "json"))
    assert all(r["mode"] == "standby" for r in standby)


def test_firewall_xsl_allows_exactly_the_running_machines(cluster: Recording) -> None:
    """examples/firewall.xsl (lxml XSLT) turns -o xml into iptables rules for running machines."""
    xml = bosun(cluster, "machines", "-o", "xml").encode()
    rows = orjson.loads(bosun(cluster, "machines", "-o", "json"))
    transform = etree.XSLT(etree.parse(str(ROOT / "examples" / "firewall.xsl")))
    rules = str(transform(etree.fromstring(xml)))
    lines = rules.splitlines()
    assert lines[0] == "*filter" and lines[1] == ":BOSUN-ALLOW - [0:0]"
    assert lines[-2:] == ["-A BOSUN-ALLOW -j RETURN", "COMMIT"]
    allowed = [ln for ln in lines if "-j ACCEPT" in ln]
    running = [r for r in rows if r["status"] == "running"]
    assert len(allowed) == len(running) >= 3
    for r in running:
        assert (
            f'-A BOSUN-ALLOW -s {r["internal"]} -m comment --comment "bosun {r["machine"]} '
            in rules
        )
    for r in rows:
        if r["status"] != "running":
            assert f"bosun {r['machine']} " not in rules
    only_web = str(transform(etree.fromstring(xml), service="'web'", port="'8080'"))
    assert all(
        "--dport 8080" in ln and ' web"' in ln for ln in only_web.splitlines() if "ACCEPT" in ln
    )


def test_firewall_xsl_drops_addresses_that_are_not_ip_literals() -> None:
    """An agent-reported address cannot inject iptables options through the stylesheet."""
    xml = (
        b'<machines><machine id="evil" status="running" service="web">'
        b'<address kind="internal">1.2.3.4 -j DROP</address></machine>'
        b'<machine id="ok" status="running" service="web">'
        b'<address kind="internal">10.0.0.1</address></machine></machines>'
    )
    transform = etree.XSLT(etree.parse(str(ROOT / "examples" / "firewall.xsl")))
    rules = str(transform(etree.fromstring(xml)))
    assert "DROP" not in rules and "-s 10.0.0.1 " in rules


def test_status_prints_services_machines_and_rejections(cluster: Recording) -> None:
    """bosun status renders tables, including a rejection when one happened."""
    cluster.inner.put("reports/web-1.json", b"garbage")
    Controller(cluster, MASTER, holder="ctl", lease=LeaseSettings(30, 20)).cycle()
    out = bosun(cluster, "status")
    for word in ("services", "machines", "web-0", "lb", "rejections", "invalid_document"):
        assert word in out
    assert orjson.loads(bosun(cluster, "status", "-o", "json"))["rejected"]["web-1"]


def test_history_lists_and_diffs_archived_snapshots(cluster: Recording) -> None:
    """Accepted snapshots that changed more than liveness are archived and diffable."""
    out = orjson.loads(bosun(cluster, "history", "web-2", "-o", "json"))
    seqs = [e["seq"] for e in out]
    assert len(seqs) >= 2 and seqs == sorted(seqs)
    diff = bosun(cluster, "history", "web-2", "--diff", str(seqs[-2]), str(seqs[-1]))
    lines = diff.splitlines()
    assert any(ln.startswith("-") and '"health": "healthy"' in ln for ln in lines)
    assert any(ln.startswith("+") and '"health": "unhealthy"' in ln for ln in lines)
    assert "web-2" in bosun(cluster, "history", "web-2")


def test_events_since_reads_recent_cycles(cluster: Recording) -> None:
    """bosun events --since returns the decisions written by recent cycles."""
    events = orjson.loads(bosun(cluster, "events", "--since", "1h", "-o", "json"))
    kinds = {e["kind"] for e in events}
    assert "desired.written" in kinds and "machine.assigned" in kinds
    assert all(e["t"] >= time.time() - 3600 for e in events)
    assert "desired.written" in bosun(cluster, "events", "--since", "1d")


def test_events_filters_narrow_and_combine(cluster: Recording) -> None:
    """--kind is a prefix, --machine and --service exact; given together, all must match."""
    everything = orjson.loads(bosun(cluster, "events", "-o", "json"))
    machine = next(e["machine"] for e in everything if e["kind"] == "desired.written")

    def got(*args: str) -> list[dict[str, object]]:
        return list(orjson.loads(bosun(cluster, "events", "-o", "json", *args)))

    machines = got("--kind", "machine.")
    assert machines and {e["kind"] for e in machines} < {e["kind"] for e in everything}
    assert all(str(e["kind"]).startswith("machine.") for e in machines)
    one = got("--machine", machine)
    assert one and all(e["machine"] == machine for e in one)
    both = got("--machine", machine, "--kind", "desired.")
    assert both == [e for e in one if str(e["kind"]).startswith("desired.")]
    assert got("--service", "no-such-service") == []
    assert "no-such" not in bosun(cluster, "events", "--kind", "no-such.")


def test_headers_are_never_cut_and_names_agree(
    cluster: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 100 columns no header is cut to `servi…`; status and machines name their
    columns alike; ages are relative and absolute; versions read `2 on 1.0`."""
    monkeypatch.setenv("COLUMNS", "100")
    status = bosun(cluster, "status")
    machines = bosun(cluster, "machines")
    for out in (status, machines):
        assert "…" not in out and max(len(line) for line in out.splitlines()) <= 100, out
        assert "machine" in out and "applied_" in out and "generation" in out and "age" in out
    monkeypatch.setenv("COLUMNS", "200")
    wide = bosun(cluster, "machines")
    assert re.search(r"\d+s ago \(\d\d:\d\d:\d\dZ\)", wide), wide
    # addresses only where they fit, and the table says they are left out
    assert "internal" in wide and "internal" not in machines.split("narrow terminal")[0]
    assert "internal" in machines.split("narrow terminal: no ")[1]
    assert re.search(r"\d+ on \d", status.replace("\n", " ")), status
    assert "None" not in status + machines


def test_piped_tables_are_not_cut_at_80_columns(
    cluster: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bosun status | less` (no terminal, no COLUMNS): every column of the machines table
    is there, not ellipsised at rich's default 80 columns; COLUMNS still wins."""
    monkeypatch.delenv("COLUMNS", raising=False)
    out = bosun(cluster, "status")
    header = next(line for line in out.splitlines() if "machine" in line and "generation" in line)
    assert "age" in header and "…" not in out, out
    assert max(len(line) for line in out.splitlines()) > 80
    monkeypatch.setenv("COLUMNS", "60")
    narrow = bosun(cluster, "status")
    assert max(len(line) for line in narrow.splitlines()) <= 60


def test_tables_at_80_columns_keep_words_whole(
    cluster: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns (a default terminal) `status` and `machines` fit, no short word (a
    service, a kind, a mode, a status, a health) is split across lines and nothing is cut
    to `…`: low-value columns give way, and the table says which."""
    monkeypatch.setenv("COLUMNS", "80")
    for command in ("status", "machines"):
        out = bosun(cluster, command)
        assert max(len(line) for line in out.splitlines()) <= 80, out
        assert "…" not in out, out
        words = set(re.findall(r"[a-z][a-z0-9_-]*", out))
        for whole in ("service", "running", "unknown", "standby", "healthy", "unhealthy"):
            for cut in range(1, len(whole)):
                part = whole[:cut]
                assert part not in words or part in ("health", "lb", "s"), (
                    f"{command}: {whole!r} split as {part!r}\n{out}"
                )
        assert re.search(r"web-2 +web +active +unhealthy +unhealthy ", out), out
        assert re.search(r"web-3 +lb +standby +running +unknown ", out), out
        assert "age" in out and re.search(r"\d+s ago \(\d\d:\d\d:\d\dZ\)", out), out
        assert "generation" in out.split("narrow terminal: no ")[-1], out  # said, not hidden
    status = bosun(cluster, "status")
    assert re.search(r"lb +loadbalancer +1 ", status), status
    monkeypatch.setenv("COLUMNS", "200")
    assert "narrow terminal" not in bosun(cluster, "status") + bosun(cluster, "machines")
