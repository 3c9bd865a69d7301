"""`bosun-agent check`: config, key, state dir and the bucket's behaviour, one line each.

The bucket must honour what Bosun relies on (ARCHITECTURE.md): a conditional GET with the
current ETag answers 304 and with another ETag answers the object; a PUT with a wrong
`If-Match` or with `If-None-Match: *` over an existing object is refused. The write probes
use this machine's own report (the only key it may write): first a real signed snapshot is
sent, then the same bytes with failing conditions.
"""

from __future__ import annotations

import os
import time

from agent.config import AgentConfig
from agent.cycle import Agent
from agent.drivers import ApplyError
from agent.verify import Refused, verify_desired
from wire.errors import StoreAccessDenied, StoreError, WriteConflict
from wire.signing import digest
from wire.store.base import Missing, NotModified, StoredObject


def run_check(cfg: AgentConfig, agent: Agent) -> int:
    failures = 0

    def line(ok: bool, text: str) -> None:
        nonlocal failures
        failures += 0 if ok else 1
        print(f"{'ok  ' if ok else 'FAIL'}  {text}")

    line(True, f"config: machine {cfg.machine}, kid {cfg.kid}, {len(cfg.services)} service(s)")
    line(True, f"key file {cfg.key_file}: readable by its owner only")
    line(os.access(agent.dir.root, os.W_OK), f"state dir {agent.dir.root}: writable")
    for name, svc in sorted(cfg.services.items()):
        for f in svc.files:
            if f.format != "jinja":
                continue
            from agent.templates import compile_jinja

            try:
                compile_jinja(f)
            except ApplyError as exc:
                line(False, f"services.{name}: {exc}")
            else:
                line(True, f"services.{name}: template for {f.path} compiles")
    store = agent.store
    key = agent.desired_key
    try:
        result = store.get(key)
    except StoreAccessDenied as exc:
        # S3 answers 403, not 404, for a missing key to a principal without s3:ListBucket
        # (the agent policy): on a new machine that is "no document yet", as in the cycle
        line(True, f"GET {store.describe(key)}: access denied, taken as no desired document "
             f"yet (S3 without s3:ListBucket answers 403 for a missing key): {exc}")  # fmt: skip
        result = Missing(key)
    except StoreError as exc:
        line(False, f"GET {store.describe(key)}: {exc}")
        return 2
    if isinstance(result, Missing):
        line(
            True, f"GET {store.describe(key)}: no desired document yet (conditional GET not probed)"
        )
    elif isinstance(result, StoredObject):
        try:
            v = verify_desired(
                result.body,
                object_key=key,
                machine=cfg.machine,
                kid=cfg.kid,
                key=agent._key,
                mark=None,
            )
            line(
                True, f"desired document verifies: generation {v.doc.generation}, mode {v.doc.mode}"
            )
        except Refused as exc:
            line(False, f"desired document refused: {exc}")
        try:
            same = store.get(key, if_none_match=result.etag)
            line(
                isinstance(same, NotModified),
                f"conditional GET with the current ETag answers 304 (got {type(same).__name__})",
            )
            other = store.get(key, if_none_match='"' + "0" * 32 + '"')
            line(
                isinstance(other, StoredObject),
                f"conditional GET with another ETag answers the object (got {type(other).__name__})",
            )
        except StoreError as exc:
            line(False, f"conditional GET: {exc}")
    errors: list[str] = []
    now = time.time()
    snap = agent.snapshot(now, "starting", agent.running_doc(), False)
    if not agent._report(snap, now, True, errors):
        line(False, f"PUT {store.describe(agent.report_key)}: {'; '.join(errors)}")
        return 2
    agent.dir.save(agent.state)
    line(True, f"PUT {store.describe(agent.report_key)}: signed snapshot written")
    body = b'{"probe": "bosun-agent check"}'
    for label, kwargs in (
        ("If-Match with a wrong ETag", {"if_match": '"' + digest({"x": 1})[:32] + '"'}),
        ("If-None-Match: * over an existing object", {"if_none_match": "*"}),
    ):
        try:
            store.put(agent.report_key, body, **kwargs)
        except WriteConflict:
            line(True, f"conditional PUT ({label}) is refused")
        except StoreError as exc:
            line(False, f"conditional PUT ({label}): {exc}")
        else:
            line(
                False,
                f"conditional PUT ({label}) was ACCEPTED: this endpoint ignores "
                "conditions; Bosun cannot run safely against it",
            )
            agent._report(snap, time.time(), True, [])  # put a valid report back
            agent.dir.save(agent.state)
    print("check passed" if not failures else f"check FAILED: {failures} problem(s)")
    return 0 if not failures else 2
