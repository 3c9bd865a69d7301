"""The REST API's answers (controller.web.api) against what the bucket holds, and the HTTP
layer (token, headers, errors) through aiohttp's test client."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from controller.web import api
from controller.web.pages import PageSettings
from controller.web.server import create_app
from tests.unit.web.conftest import Built
from wire.store import DirectoryStore

ROOT = Path(__file__).resolve().parents[3]


def _expected_running(built: Built) -> dict[str, str]:
    """machine -> internal address of every machine the bucket says is live, planned as
    not lost, and not unhealthy: the 'running' state of `bosun machines`."""
    doc = built.cluster()
    out = {}
    for name, m in doc["machines"].items():
        seen = doc["seen"].get(name)
        if m["lost"] or m["health"] == "unhealthy" or seen is None:
            continue
        out[name] = seen["addresses"]["internal"]
    return out


def test_machines_match_the_bucket_and_filter(rolled: Built) -> None:
    """Every machine of status/cluster.json is listed with its mode and service; each
    filter narrows to exactly the rows the bucket says match."""
    fleet = rolled.reader().fleet()
    doc = rolled.cluster()
    rows = api.MachineQuery.parse({}).select(fleet.rows)
    assert {r["machine"]: (r["service"], r["mode"]) for r in rows} == {
        m: (v["service"], v["mode"]) for m, v in doc["machines"].items()
    }
    active = api.MachineQuery.parse({"service": "web", "mode": "active"}).select(fleet.rows)
    assert sorted(r["machine"] for r in active) == sorted(
        m for m, v in doc["machines"].items() if v["service"] == "web" and v["mode"] == "active"
    )
    assert len(active) == 2 and all(r["version"] == "2.0" for r in active)
    by_version = api.MachineQuery.parse({"version": "1.0"}).select(fleet.rows)
    assert by_version and all(r["version"] == "1.0" for r in by_version)
    healthy = api.MachineQuery.parse({"health": "healthy"}).select(fleet.rows)
    assert {r["machine"] for r in healthy} == {
        m for m, v in doc["machines"].items() if v["health"] == "healthy"
    }
    one = next(iter(_expected_running(rolled).items()))
    by_ip = api.MachineQuery.parse({"address": one[1]}).select(fleet.rows)
    assert [r["machine"] for r in by_ip] == [one[0]]
    assert len(api.MachineQuery.parse({"address": "10.0.0.0/8"}).select(fleet.rows)) == len(rows)
    assert api.MachineQuery.parse({"address": "192.168.0.0/16"}).select(fleet.rows) == []


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"status": "sleeping"}, "status='sleeping': use one of running"),
        ({"mode": "on"}, "mode='on'"),
        ({"health": "fine"}, "health='fine'"),
        ({"address": "10.0.0.300"}, "give an IP address or a network"),
    ],
)
def test_bad_filters_are_refused_with_the_fix(params: dict[str, str], needle: str) -> None:
    """A filter value the API does not know is a 400 naming the value and the choices."""
    with pytest.raises(api.ApiError) as err:
        api.MachineQuery.parse(params)
    assert err.value.status == 400 and needle in err.value.message


def test_formats_carry_the_same_rows(rolled: Built) -> None:
    """json, csv and xml list the same machines with the same columns."""
    fleet = rolled.reader().fleet()
    rows = fleet.rows
    as_json = orjson.loads(api.machines_body(fleet, rows, "json"))
    assert as_json["api"] == "v1" and as_json["machines"] == rows
    as_csv = list(csv.DictReader(io.StringIO(api.machines_body(fleet, rows, "csv").decode())))
    assert [r["machine"] for r in as_csv] == [r["machine"] for r in rows]
    assert [r["mode"] for r in as_csv] == [r["mode"] for r in rows]
    xml = ET.fromstring(api.machines_body(fleet, rows, "xml"))
    assert [m.get("id") for m in xml.iter("machine")] == [r["machine"] for r in rows]


def test_firewall_xslt_over_the_api_yields_exactly_the_running_machines(rolled: Built) -> None:
    """examples/firewall.xsl applied to the API's XML allows the internal address of every
    running machine, and nothing else."""
    from lxml import etree

    fleet = rolled.reader().fleet()
    xml = api.machines_body(fleet, api.MachineQuery.parse({}).select(fleet.rows), "xml")
    transform = etree.XSLT(etree.parse(str(ROOT / "examples" / "firewall.xsl")))
    rules = str(transform(etree.fromstring(xml))).splitlines()
    accepted = sorted(line for line in rules if line.endswith("-j ACCEPT"))
    expected = _expected_running(rolled)
    assert len(expected) == 6  # every machine reports in the finished rollout
    assert accepted == sorted(
        f'-A BOSUN-ALLOW -s {ip} -m comment --comment "bosun {m} '
        f'{rolled.cluster()["machines"][m]["service"]}" -j ACCEPT'
        for m, ip in expected.items()
    )


def test_stale_and_blind_are_said(rolled: Built, blind: Built) -> None:
    """A reader whose clock is well past the last cycle calls the view stale; a service held
    static is reported blind, in the API's freshness and problems."""
    fresh = rolled.reader().fleet()
    assert not fresh.stale and not fresh.fresh.controller_silent
    later = rolled.reader(later=600).fleet()
    value = api.status_value(later)
    assert value["stale"] is True and value["controller"]["silent"] is True
    assert "this view is stale" in value["controller"]["describe"]
    assert {r["status"] for r in later.rows} == {"stale"}
    held = api.status_value(blind.reader().fleet())
    assert held["stale"] is True
    assert [p["kind"] for p in held["problems"] if p["kind"] == "blind"] == ["blind"]
    assert api.services_value(blind.reader().fleet())["services"]["web"]["hold"]["silent"] == 4


def test_rollout_points_come_from_the_events(rolled: Built) -> None:
    """The rollout's chart points hold the numbers each step event judged."""
    from controller.web.pages import rollout_data

    fleet, points = rollout_data(rolled.reader(), "web")
    value = api.rollout_value(fleet, "web", points)
    assert value["rollout"]["state"] == "complete"
    kinds = [p["source"] for p in value["points"]]
    assert kinds.count("rollout.step") == 3, kinds
    assert all(0 < p["new_error_rate"] <= 0.05 for p in value["points"] if "new_error_rate" in p)


# ---- over HTTP ----------------------------------------------------------------------------------


def _with_client(
    store: DirectoryStore, token: str, check: Callable[[TestClient[Any, Any]], Awaitable[None]]
) -> None:
    from controller.web.reader import FleetReader

    async def main() -> None:
        app = create_app(FleetReader(store), PageSettings(store="file:///x", refresh=0), token)
        async with TestClient(TestServer(app)) as client:
            await check(client)

    asyncio.run(main())


def test_a_token_guards_every_request(rolled: Built) -> None:
    """With a token: no answer without it, the API takes a Bearer header, a browser gets a
    cookie from ?token= (and the token leaves the address)."""
    token = "t" * 24

    async def check(client: TestClient[Any, Any]) -> None:
        assert (await client.get("/api/v1/machines")).status == 401
        assert (await client.get("/", allow_redirects=False)).status == 401
        assert (await client.get("/api/v1/machines?token=" + token)).status == 401
        wrong = await client.get("/api/v1/status", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        ok = await client.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert ok.status == 200 and (await ok.json())["status"]["spec_revision"] == 2
        first = await client.get(f"/?token={token}", allow_redirects=False)
        assert first.status == 303 and first.headers["Location"] == "/"
        assert "HttpOnly" in first.headers["Set-Cookie"]
        page = await client.get("/")  # the cookie jar sends it now
        assert page.status == 200 and "web-1" in await page.text()

    _with_client(rolled.store, token, check)


def test_headers_errors_and_read_only(rolled: Built, tmp_path: Path) -> None:
    """Strict CSP on every answer; POST is not served; a bad machine name is a 400; unknown
    parameters a 400; before any cycle the API says so with a 503."""

    async def check(client: TestClient[Any, Any]) -> None:
        got = await client.get("/api/v1/machines?format=csv&service=web")
        assert got.status == 200 and got.headers["Content-Type"].startswith("text/csv")
        assert "script-src" not in got.headers["Content-Security-Policy"]
        assert "default-src 'none'" in got.headers["Content-Security-Policy"]
        assert (await client.post("/api/v1/machines")).status == 405
        bad = await client.get("/api/v1/machines/Bad..Name")
        assert bad.status == 400 and "invalid machine id" in (await bad.json())["error"]
        typo = await client.get("/api/v1/machines?servce=web")
        assert typo.status == 400 and "'servce'" in (await typo.json())["error"]
        gone = await client.get("/api/v1/rollouts/lb")
        assert gone.status == 404
        history = await client.get("/api/v1/machines/web-1/history?limit=3")
        entries = (await history.json())["entries"]
        assert 1 <= len(entries) <= 3 and all(e["snapshot"]["machine"] == "web-1" for e in entries)
        desired = await client.get("/api/v1/machines/web-1/desired")
        assert (await desired.json())["body"]["machine"] == "web-1"
        events = await client.get("/api/v1/events?since=1h&kind=rollout.")
        kinds = [e["kind"] for e in (await events.json())["events"]]
        assert "rollout.started" in kinds and "rollout.completed" in kinds

    _with_client(rolled.store, "", check)

    async def empty(client: TestClient[Any, Any]) -> None:
        got = await client.get("/api/v1/machines")
        assert got.status == 503 and "no controller cycle has run" in (await got.json())["error"]
        page = await client.get("/")
        assert page.status == 503 and "no controller cycle has run" in await page.text()

    _with_client(DirectoryStore(tmp_path / "empty"), "", empty)


def test_the_status_signature_is_checked_as_bosun_status_checks_it(rolled: Built) -> None:
    """Pinned to the controller's key the reader says verified; pinned to another key it
    refuses the document; without a pin it says the check is not verification."""
    from controller.web.reader import FleetReader
    from tests.unit.web.conftest import MASTER
    from wire.errors import BadSignature
    from wire.pubkeys import controller_public

    clock = lambda: rolled.end  # noqa: E731
    pinned = FleetReader(rolled.store, clock, controller_public(MASTER).sign).fleet()
    assert pinned.signature.ok is True and "verified" in pinned.signature.text
    unpinned = FleetReader(rolled.store, clock).fleet()
    assert unpinned.signature.ok is None and "cannot verify" in unpinned.signature.text
    other = controller_public(bytes(32)).sign
    with pytest.raises(BadSignature):
        FleetReader(rolled.store, clock, other).fleet()
