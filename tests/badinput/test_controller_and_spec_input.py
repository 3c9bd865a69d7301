"""Hostile snapshots under `reports/` fed to the controller, and hostile specs fed to
`bosun spec validate/apply`: each is refused with a clear message, counted in
status/cluster.json (controller side), and nothing else changes in the bucket."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.cli.spec import spec_group
from controller.shell.cycle import Controller
from controller.spec.document import to_json as spec_to_json
from controller.spec.load import load_yaml
from controller.spec.revisions import read_current
from tests.badinput.corpus import (
    BILLION_LAUGHS,
    HOSTILE_SPECS,
    deep,
    sealed_snapshot,
    signed_with_extra,
    snapshot,
)
from tests.faults.kit import MASTER, agents, controller, round_trip, spec_yaml, start_spec
from tests.unit.controller.sim import SimAgent
from wire.errors import SpecError
from wire.layout import STATUS_CLUSTER, report_key
from wire.store import DirectoryStore, StoredObject

Cluster = tuple[DirectoryStore, Controller, list[SimAgent]]
KEPT = ("desired/", "control/memory.json", "spec/", "control/keys.json")


def kept(store: DirectoryStore, machine: str = "m-0") -> dict[str, str]:
    """The objects hostile input must never change: desired documents, planner memory,
    the spec, the key epochs and the archive of the machine the input pretends to be."""
    return {
        i.key: i.etag for i in store.list("") if i.key.startswith((*KEPT, f"history/{machine}/"))
    }


def status(store: DirectoryStore) -> dict[str, Any]:
    got = store.get(STATUS_CLUSTER, max_bytes=16 * 1024 * 1024)
    assert isinstance(got, StoredObject)
    return dict(orjson.loads(got.body))


def hostile_reports() -> dict[str, tuple[str, bytes, set[str]]]:
    """name -> (target machine, raw bytes at reports/<machine>.json, expected reason)."""
    old = sealed_snapshot(snapshot("m-0", master=MASTER, seq=1000), master=MASTER)
    return {
        "garbage": ("m-0", b"\x00\xffnot json", {"invalid_document"}),
        "oversized": ("m-1", b'{"x": "' + b"y" * (400 * 1024) + b'"}', {"too_large"}),
        "wrong_key": (
            "m-2",
            sealed_snapshot(snapshot("m-2", master=MASTER), master=bytes(32)),
            {"bad_signature"},
        ),
        "cross_machine": (
            "m-3",
            sealed_snapshot(snapshot("m-3", master=MASTER), master=MASTER, as_machine="m-1"),
            {"binding", "unknown_kid"},
        ),
        "replayed_old_seq": ("m-0", old, {"replayed_seq"}),
        "skewed": (
            "m-1",
            sealed_snapshot(
                snapshot("m-1", master=MASTER, sent_at=time.time() + 7200), master=MASTER
            ),
            {"clock_skew"},
        ),
        "deep_nesting": (
            "m-2",
            b'{"format":"bosun.snapshot/1","kid":"m-2@0","sig":"x","body":'
            + b'{"a":' * 500
            + b"1"
            + b"}" * 500
            + b"}",
            {"invalid_document"},
        ),
        # validly signed, so the body's own bounds are what refuses them
        "deep_nesting_signed": (
            "m-3",
            signed_with_extra(snapshot("m-3", master=MASTER), master=MASTER,
                              extra={"capacity": {"cpu": deep(40)}}),
            {"invalid_document"},
        ),
        "huge_list_signed": (
            "m-0",
            signed_with_extra(snapshot("m-0", master=MASTER), master=MASTER,
                              extra={"eligible": ["web"] * 10_001}),
            {"invalid_document"},
        ),
        # validly signed times that no clock gives: refused naming the field
        "time_not_a_time_signed": (
            "m-1",
            signed_with_extra(snapshot("m-1", master=MASTER), master=MASTER,
                              extra={"sent_at": "2026-02-30T10:00:00.000Z"}),
            {"invalid_document"},
        ),
        "time_out_of_range_signed": (
            "m-2",
            signed_with_extra(snapshot("m-2", master=MASTER), master=MASTER,
                              extra={"applied": {"at": 1e300}}),
            {"invalid_document"},
        ),
        "time_with_offset_signed": (
            "m-3",
            signed_with_extra(snapshot("m-3", master=MASTER), master=MASTER,
                              extra={"last_refusal": {"reason": "x", "detail": "y",
                                                      "at": "2026-12-07T18:57:05+01:00"}}),
            {"invalid_document"},
        ),
    }  # fmt: skip


TIME_FIELDS = {
    "time_not_a_time_signed": r"body\.sent_at: '2026-02-30T10:00:00' is not a valid date",
    "time_out_of_range_signed": r"body\.applied\.at: time 1e\+300 is outside years 1970-9999",
    "time_with_offset_signed": r"body\.last_refusal\.at: expected a UTC time like",
}


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    store = DirectoryStore(tmp_path / "bucket")
    start_spec(store)
    fleet = agents(store)
    ctl = controller(store)
    round_trip(ctl, fleet, rounds=3)
    return store, ctl, fleet


@pytest.mark.parametrize("name", sorted(hostile_reports()))
def test_each_hostile_report_is_refused_counted_and_changes_nothing(
    name: str, cluster: Cluster
) -> None:
    """One hostile object under reports/: refused with its reason (and a detail naming the
    object), counted for that machine in status/cluster.json, nothing kept changes, and
    the other machines' reports are still taken in."""
    store, ctl, fleet = cluster
    machine, raw, reason = hostile_reports()[name]
    before = kept(store, machine)
    for a in fleet:
        if a.machine != machine:
            a.report()
    store.put(report_key(machine), raw)
    report = ctl.cycle()
    assert report.rejected == 1, report.summary()
    assert report.accepted == len(fleet) - 1, report.summary()
    st_ = status(store)
    rejected = st_["rejected"][machine]
    [(got, count)] = rejected["counts"].items()
    assert got in reason and count == 1, rejected
    assert report_key(machine) in rejected["last"]["detail"], rejected  # names the object
    if name in TIME_FIELDS:  # the field and what is wrong with it
        detail = rejected["last"]["detail"]
        assert re.search(TIME_FIELDS[name], detail), detail
    elif name.endswith("_signed"):  # refused by the body's types and bounds, not the signature
        detail = rejected["last"]["detail"]
        assert re.search(r"more than 10000 items|nested deeper than 32", detail), detail
    assert kept(store, machine) == before
    ctl.cycle()
    assert status(store)["rejected"][machine]["counts"] == {got: 1}


def test_foreign_keys_under_reports_are_counted_and_ignored(
    cluster: Cluster,
) -> None:
    """Objects under reports/ with path-like, unicode or non-.json names name no machine:
    they are listed in status/cluster.json as foreign and change nothing else."""
    store, ctl, _fleet = cluster
    before = kept(store, "-")
    for key in (
        "reports/Ünïcode.json",
        "reports/a..b.json",
        "reports/x.txt",
        "reports/m-0.json.bak",
    ):
        store.put(key, b"{}")
    ctl.cycle()
    foreign = status(store)["foreign_reports"]
    assert len(foreign) == 4, foreign
    assert kept(store, "-") == before


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=2048) | st.builds(lambda v: orjson.dumps(v), st.dictionaries(
    st.sampled_from(["format", "kid", "sig", "body", "x"]),
    st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=30),
)))  # fmt: skip
def test_random_reports_are_always_refused_and_counted(raw: bytes, cluster: Cluster) -> None:
    """Random bytes and random envelopes at reports/m-0.json: always refused, each version
    counted once, nothing kept changes."""
    store, ctl, _fleet = cluster
    before = kept(store)
    rejected: Any = status(store).get("rejected", {})
    old = rejected.get("m-0", {}).get("counts", {})
    store.put(report_key("m-0"), raw + b" " + str(time.monotonic_ns()).encode())
    report = ctl.cycle()
    assert report.rejected == 1
    new = status(store)["rejected"]["m-0"]["counts"]
    assert sum(new.values()) == sum(old.values()) + 1
    assert kept(store) == before


@click.group()
def bosun() -> None:
    """`bosun spec`, as the bosun CLI groups it."""


bosun.add_command(spec_group)


@pytest.mark.parametrize("name", sorted(HOSTILE_SPECS))
def test_hostile_specs_are_refused_by_validate_and_apply(name: str, tmp_path: Path) -> None:
    """validate and apply refuse each hostile spec with a one-line `spec:` message (exit
    2 through bosun's main, a SpecError here) and apply writes nothing."""
    path = tmp_path / "spec.yaml"
    path.write_text(HOSTILE_SPECS[name])
    store = DirectoryStore(tmp_path / "bucket")
    start_spec(store)
    before = {i.key: i.etag for i in store.list("")}
    for args in (
        ["spec", "validate", str(path)],
        ["spec", "apply", str(path), "--store", store.url],
    ):
        result = CliRunner().invoke(bosun, args)
        assert result.exit_code != 0, (name, args, result.output)
        assert isinstance(result.exception, SpecError), (name, result.exception)
        # one line, no control or bidi characters echoed (a NUL or U+202E in an id is escaped)
        message = str(result.exception)
        assert "spec" in message and "\n" not in message[:200], message[:300]
        assert message.isprintable(), ascii(message[:300])
    assert {i.key: i.etag for i in store.list("")} == before


def test_the_largest_count_is_bounded_by_the_machines(tmp_path: Path) -> None:
    """count: 100,000 (the most a spec may ask) does not make the planner allocate per
    wanted instance: a cycle over four machines stays fast and assigns at most the
    machines there are."""
    store = DirectoryStore(tmp_path / "bucket")
    from controller.spec.load import MAX_COUNT
    from controller.spec.revisions import apply

    spec = load_yaml(f'services:\n  web: {{version: "1", count: {MAX_COUNT}}}\n')
    apply(store, spec, now=time.time())
    fleet = agents(store)
    for a in fleet:
        a.report()
    t0 = time.perf_counter()
    report = controller(store).cycle()
    assert time.perf_counter() - t0 < 5
    assert report.plan is not None and len(report.plan.writes) == len(fleet)


def _bad_current_specs() -> dict[str, bytes]:
    """Bodies that can land at spec/current.json without `bosun spec apply` (a hand-written
    or damaged object): name -> bytes."""
    good = orjson.loads(spec_to_json(load_yaml(spec_yaml("1.0")), applied_at=time.time()))
    cycle = orjson.loads(orjson.dumps(good))
    cycle["services"]["web"]["depends_on"] = ["lb"]
    cycle["services"]["lb"]["depends_on"] = ["web"]
    unicode_id = orjson.loads(orjson.dumps(good))
    unicode_id["services"]["w\u202eb"] = unicode_id["services"].pop("web")
    return {
        "garbage": b"\x00\xffnot json",
        "wrong_format": orjson.dumps({**good, "format": "bosun.spec/99"}),
        "dependency_cycle": orjson.dumps(cycle),
        "unicode_id": orjson.dumps(unicode_id),
        "deep_config": b'{"format":"bosun.spec/1","applied_at":1,"services":{"a":{"version":'
        + b'"1","count":1,"config":'
        + b'{"a":' * 300
        + b"1"
        + b"}" * 303,
        "oversized": b'{"x":"' + b"y" * (17 * 1024 * 1024) + b'"}',
    }


@pytest.mark.parametrize("name", sorted(_bad_current_specs()))
def test_a_bad_spec_in_the_bucket_changes_nothing_and_is_shown(name: str, cluster: Cluster) -> None:
    """A malformed or hostile spec/current.json: the cycle goes on (reports taken in) and
    plans with the revision it last planned with, so no desired document changes; the
    refusal is in status/cluster.json and in one spec.refused event; `bosun spec apply`
    then replaces it and the next cycle plans with the new spec."""
    store, ctl, fleet = cluster
    applied = read_current(store)
    assert applied is not None
    desired = {i.key: i.etag for i in store.list("desired/")}
    store.put("spec/current.json", _bad_current_specs()[name])
    for _ in range(2):
        for a in fleet:
            a.report()
        report = ctl.cycle()
        assert report.accepted == len(fleet), report.summary()
        assert "spec/current.json refused" in report.note, report.summary()
    assert {i.key: i.etag for i in store.list("desired/")} == desired
    refused = status(store)["spec_refused"]
    assert refused["planning_with"] == applied.spec.revision, refused
    assert refused["detail"] and refused["detail"].isprintable(), refused
    events = [
        orjson.loads(line)
        for i in store.list("events/")
        if isinstance(got := store.get(i.key), StoredObject)
        for line in got.body.splitlines()
    ]
    assert [e["kind"] for e in events].count("spec.refused") == 1, events
    # the operator's fix: apply over it (the damaged object's revision is unknown: the
    # next one after spec/history/)
    path = store.root.parent / "spec.yaml"
    path.write_text(spec_yaml("2.0"))
    result = CliRunner().invoke(bosun, ["spec", "apply", str(path), "--store", store.url])
    assert result.exit_code == 0, result.output
    ctl.cycle()
    assert status(store)["spec_refused"] is None
    after = read_current(store)
    assert after is not None and after.spec.revision == applied.spec.revision + 1


def test_yaml_alias_bomb_is_refused() -> None:
    """A spec whose YAML aliases expand to 531,441 items is refused before it is stored."""
    with pytest.raises(SpecError):
        load_yaml(BILLION_LAUGHS)


def test_bosun_spec_validate_is_a_bosun_command(tmp_path: Path) -> None:
    """The installed `bosun` command has `spec validate`."""
    path = tmp_path / "spec.yaml"
    path.write_text('services:\n  a: {version: "1", count: 1}\n')
    bosun_bin = Path(sys.executable).parent / "bosun"
    run = subprocess.run(
        [str(bosun_bin), "spec", "validate", str(path)], capture_output=True, timeout=60
    )
    assert run.returncode == 0, run.stderr.decode()
