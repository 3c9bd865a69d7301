"""`bosun ui` in a real headless chromium, over a running cluster: a real `bosun controller
run --metrics-port` process and simulated agents with traffic (tests/support/simfleet.py)
on a directory bucket, through a whole release of web 1.0 -> 2.0; a real `bosun ui`
process serves it.

One cluster, one server and one browser for the module. Every page must load without a
console error or a failed request and show what the bucket holds; a screenshot of the
rollout page is kept under test-artifacts/ (its path is printed). The controller's
/metrics is parsed with prometheus_client's parser and checked against the bucket.
"""

from __future__ import annotations

import os
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from controller.shell.key_epochs import keygen, load_master_key
from devkit.demo.procs import ProcessBook
from tests.support.procfleet import BOSUN
from tests.support.simfleet import SimFleet
from wire.layout import STATUS_CLUSTER
from wire.store import DirectoryStore, StoredObject

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True, scope="module")
def _chromium() -> None:
    """Skipped, naming it, where chromium is missing; in CI (which runs scripts/test as root,
    so apt-get installed it) a missing browser fails instead of hiding the tests."""
    if Path(CHROMIUM).exists():
        return
    msg = f"{CHROMIUM} is not installed (apt-get install chromium; scripts/test does as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@dataclass
class Cluster:
    store: DirectoryStore
    url: str
    book: ProcessBook
    ui: str = ""
    metrics: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def status(self) -> dict[str, Any]:
        got = self.store.get(STATUS_CLUSTER)
        return orjson.loads(got.body) if isinstance(got, StoredObject) else {}

    def log_line(self, name: str, pattern: str, timeout: float = 30) -> re.Match[str]:
        path = self.book.log_dir / f"{name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = path.read_text(errors="replace") if path.exists() else ""
            found = re.search(pattern, text)
            if found:
                return found
            proc = self.book.popens[name]
            assert proc.poll() is None, f"{name} exited {proc.returncode}: {text[-2000:]}"
            time.sleep(0.1)
        raise AssertionError(f"{name} never logged {pattern!r}")


def _wait(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    run = tmp_path_factory.mktemp("dashboard")
    bucket = run / "bucket"
    bucket.mkdir()
    key = run / "master.key"
    keygen(key)
    store = DirectoryStore(bucket)
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
    c = Cluster(store, f"file://{bucket}", ProcessBook(run, run / "logs", env))
    fleet = SimFleet.build(store, load_master_key(key))
    fleet.apply("1.0", time.time())
    thread, stop = fleet.drive(0.25)
    try:
        c.book.spawn(
            "controller",
            [*BOSUN, "controller", "run", "--store", c.url, "--master-key", str(key),
             "--every", "0.5s", "--id", "ctl-ui", "--state-dir", str(run / "ctl"),
             "--skip-probe", "--metrics-port", "0"],
        )  # fmt: skip
        c.metrics = c.log_line("controller", r"metrics at (http://\S+)").group(1)

        def converged() -> bool:
            web = c.status().get("services", {}).get("web", {})
            return web.get("healthy") == 2 and web.get("versions") == {"1.0": 5}

        _wait("web 1.0 on 2 healthy machines", converged, 30)
        fleet.apply("2.0", time.time())

        def complete() -> bool:
            r = c.status().get("rollouts", {}).get("web", {})
            assert r.get("state") not in ("reverted", "halted"), r
            return r.get("state") == "complete"

        _wait("the rollout of web 2.0 to complete", complete, 60)
        c.book.spawn(
            "ui", [*BOSUN, "ui", "--store", c.url, "--port", "0", "--refresh", "2"]
        )  # fmt: skip
        c.ui = c.log_line("ui", r"read-only at (http://\S+)").group(1)
        yield c
    finally:
        stop.set()
        thread.join(timeout=5)
        left = c.book.stop_all(grace=5.0, order=("ui", "controller"))
        assert not left, f"{left} processes still running"


@pytest.fixture(scope="module")
def browser(cluster: Cluster) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield b
        finally:
            b.close()


def _open(browser: Any, url: str) -> tuple[Any, Any, list[str]]:
    """A fresh page at `url`; every console error, page error and failed request is kept."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)  # fmt: skip
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 else None)  # fmt: skip
    response = page.goto(url, wait_until="load", timeout=20_000)
    assert response is not None and response.status == 200, url
    return context, page, problems


def test_each_page_loads_cleanly_and_shows_the_bucket(cluster: Cluster, browser: Any) -> None:
    """fleet, service, machine, events: no console error, the machines and the release the
    bucket holds are on the page."""
    status = cluster.status()
    machines = sorted(status["machines"])
    for path, must in [
        ("", [*machines, "web", "lb", "2.0"]),
        ("services/web", [m for m in machines if m.startswith("web-")]),
        ("machines/web-1", ["desired/web-1.json", "snapshot history", '"machine": "web-1"']),
        ("events?since=1h", ["rollout.started", "rollout.completed"]),
    ]:
        context, page, problems = _open(browser, cluster.ui + path)
        try:
            text = page.inner_text("body")
            for word in must:
                assert word in text or word in page.content(), f"{path}: {word!r} missing"
            assert problems == [], f"{path}: {problems}"
        finally:
            context.close()
    context, page, problems = _open(browser, cluster.ui)
    try:
        rows = page.locator("#machines tr[data-machine]")
        shown = {rows.nth(i).get_attribute("data-machine"): rows.nth(i).get_attribute(
            "data-status") for i in range(rows.count())}  # fmt: skip
        assert sorted(shown) == machines
        assert set(shown.values()) == {"running"}
        page.click("a[href='/rollouts/web']")
        page.wait_for_url("**/rollouts/web")
        assert "1.0 → 2.0" in page.inner_text("#rollout-head")
        assert problems == [], problems
    finally:
        context.close()


def test_rollout_page_draws_the_release(cluster: Cluster, browser: Any) -> None:
    """Stages, gates and the chart (new and old series, the max_error_rate line, step
    markers); a screenshot is kept as a test artifact."""
    context, page, problems = _open(browser, cluster.ui + "rollouts/web")
    try:
        rollout = cluster.status()["rollouts"]["web"]
        assert rollout["state"] in page.inner_text("#rollout-head")
        assert page.locator("ol.steps li").count() == rollout["steps"]
        chart = page.locator("#chart svg")
        assert chart.count() == 1
        series = {s.get_attribute("data-series") for s in chart.locator("polyline").all()}
        assert {"new error rate", "old error rate", "new latency ms", "old latency ms"} <= series
        assert chart.locator("line.threshold").count() == 1
        assert chart.locator("line.step").count() >= 3
        assert problems == [], problems
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "rollout.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        print(f"\nscreenshot of the rollout page: {shot}")
    finally:
        context.close()


def test_pages_reload_themselves(cluster: Cluster, browser: Any) -> None:
    """The fleet page reloads on its own (--refresh 2): a second load is seen without a click."""
    context, page, problems = _open(browser, cluster.ui)
    try:
        with page.expect_navigation(timeout=10_000):
            pass
        assert "fleet" in page.title()
        assert problems == [], problems
    finally:
        context.close()


def test_api_answers_what_the_bucket_holds(cluster: Cluster) -> None:
    """The served API's machines (json, csv) and rollout agree with status/cluster.json."""
    status = cluster.status()

    def get(path: str) -> bytes:
        with urllib.request.urlopen(cluster.ui + path, timeout=10) as r:
            assert r.status == 200
            body: bytes = r.read()
            return body

    value = orjson.loads(get("api/v1/machines?service=web&mode=active"))
    expected = sorted(m for m, v in status["machines"].items()
                      if v["service"] == "web" and v["mode"] == "active")  # fmt: skip
    assert sorted(r["machine"] for r in value["machines"]) == expected
    csv_lines = get("api/v1/machines?format=csv").decode().splitlines()
    assert len(csv_lines) == 1 + len(status["machines"])
    rollout = orjson.loads(get("api/v1/rollouts/web"))
    assert rollout["rollout"]["to_version"] == "2.0"
    assert rollout["rollout"]["state"] == status["rollouts"]["web"]["state"]


def test_controller_metrics_parse_and_match(cluster: Cluster) -> None:
    """The daemon's exposition parses with prometheus_client's parser; machines by service
    and the rollout's state are those of the bucket."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(cluster.metrics, timeout=10) as r:
        text = r.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    status = cluster.status()
    by_service: dict[str, float] = {}
    for s in families["bosun_machines"].samples:
        by_service[s.labels["service"]] = by_service.get(s.labels["service"], 0) + s.value
    expected: dict[str, int] = {}
    for m in status["machines"].values():
        expected[m["service"]] = expected.get(m["service"], 0) + 1
    assert by_service == expected
    acted = [s.value for s in families["bosun_controller_cycles"].samples
             if s.labels.get("result") == "acted" and s.name.endswith("_total")]  # fmt: skip
    assert acted and acted[0] >= 5
    state = [s.labels["state"] for s in families["bosun_rollout_state"].samples if s.value == 1]
    assert state == [status["rollouts"]["web"]["state"]]
