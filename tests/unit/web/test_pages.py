"""The dashboard's pages rendered from a bucket: stale and blind said as such, escaping on."""

from __future__ import annotations

from controller.web import pages
from controller.web.pages import PageSettings
from tests.unit.web.conftest import Built

SETTINGS = PageSettings(store="file:///bucket", refresh=5)


def test_fresh_fleet_page_lists_every_machine(rolled: Built) -> None:
    """Every machine of status/cluster.json has a row with its state; nothing is called stale."""
    html = pages.fleet_page(rolled.reader(), SETTINGS)
    for name in rolled.cluster()["machines"]:
        assert f'data-machine="{name}" data-status="running"' in html
    assert "this view is stale" not in html and 'class="blind"' not in html
    assert '<meta http-equiv="refresh" content="5">' in html


def test_silent_controller_makes_every_page_stale(rolled: Built) -> None:
    """Read ten minutes after the last cycle: the banner says stale, machines are stale."""
    reader = rolled.reader(later=600)
    html = pages.fleet_page(reader, SETTINGS)
    assert 'id="freshness" class="stale"' in html and "this view is stale" in html
    assert 'data-status="running"' not in html and 'data-status="stale"' in html
    assert "this view is stale" in pages.machine_page(reader, SETTINGS, "web-1", 5)


def test_blind_service_is_shown_held(blind: Built) -> None:
    """A service held static is announced on every page and marked in the services table."""
    reader = blind.reader()
    html = pages.fleet_page(reader, SETTINGS)
    assert 'data-blind="web"' in html and "blind: web held static" in html
    assert "blind (held static)" in html
    assert 'data-blind="web"' in pages.service_page(reader, SETTINGS, "web")


def test_values_from_the_bucket_are_escaped(rolled: Built) -> None:
    """Text that reached the bucket (a reason, a store URL) cannot inject markup."""
    html = pages.error_page(PageSettings(store="file:///<script>x</script>"), 502, "<b>bad</b>")
    assert "<script>x" not in html and "&lt;script&gt;x" in html
    assert "<b>bad</b>" not in html and "&lt;b&gt;bad&lt;/b&gt;" in html


def test_machine_page_diffs_history(rolled: Built) -> None:
    """The machine page shows the desired document and a diff between archived snapshots."""
    html = pages.machine_page(rolled.reader(), SETTINGS, "web-1", 20)
    assert "desired/web-1.json as stored" in html
    assert 'class="diff"' in html and "@@" in html
